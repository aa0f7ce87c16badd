/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the runtime is about to run, and its measurement (lib/measure,
 * docs/measurement.md): argv[0] resolved to one executable in the root file
 * system (the policy's PATH, never the runtime's), its plaintext (through the
 * shield when the metadata lists it), the runtime binary itself, the metadata
 * pin, the command, environment, working directory and the regions. The
 * application is then started from exactly what was hashed: a protected
 * executable from its verified memfd, any other from the resolved path.
 */
#ifndef SC_RT_LAUNCH_H
#define SC_RT_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "measure/measure.h"
#include "session.h"
#include "shieldfs.h"

#define SC_RT_USER_FILE_MAX (1u << 20) /* /etc/passwd, /etc/group */
#define SC_RT_USER_MAX_GROUPS 256      /* supplementary groups */

/* Who the application runs as, resolved before it starts. */
typedef struct {
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary, from /etc/group; may be none */
	size_t n_groups;
} sc_rt_user;

typedef struct {
	char *exe_path; /* absolute, canonical */
	int exe_fd;     /* -1: execve(exe_path); else the verified plaintext to execveat */
	bool script;    /* exe_fd holds a `#!' script: its interpreter reopens /dev/fd/N */
	char measurement[SC_MEASURE_HEX + 1];
	bool switch_user; /* the child switches to user before the exec */
	sc_rt_user user;
} sc_rt_launch;

/* Resolves the executable and measures. self: the runtime binary to hash
 * (/proc/self/exe). sh: the opened shield, NULL without one. */
int sc_rt_launch_prepare(const sc_rt_session *s, sc_rt_shield *sh, const char *self, sc_rt_launch **ret,
                         sconify_error_t *err);
/* Fails unless l's measurement is one that s accepts; the message names the
 * computed value and the accepted ones. */
int sc_rt_launch_check(const sc_rt_launch *l, const sc_rt_session *s, sconify_error_t *err);
/* In the child, after the filter: returns only when the exec failed, with
 * *ret_errno saying why. */
void sc_rt_launch_exec(const sc_rt_launch *l, const sc_rt_session *s, int *ret_errno);
/* Resolves user ("uid[:gid]" or "name[:group]", sc_policy_valid_user())
 * against the texts of /etc/passwd and /etc/group (either may be empty):
 * a name must be in passwd and a group name in group; a numeric uid takes
 * its primary group from passwd when listed there (else 0) unless gid is
 * given; supplementary groups are those of /etc/group that list the user's
 * name. The runtime parses the files itself: static glibc's NSS is not to be
 * trusted. Kind NOT_FOUND for an unknown name, INVALID for a bad number,
 * LIMIT beyond SC_RT_USER_MAX_GROUPS. */
int sc_rt_user_lookup(const char *user, const char *passwd, size_t passwd_len, const char *group,
                      size_t group_len, sc_rt_user *ret, sconify_error_t *err);
void sc_rt_user_clear(sc_rt_user *u);

/* Resolves s->user against root's /etc/passwd and /etc/group (injected
 * files first, then the shield's plaintext when the shield protects them,
 * else the files on disk; a missing file reads as empty; each at most
 * SC_RT_USER_FILE_MAX bytes) and sets l->switch_user. No user: nothing to
 * do. A runtime that is not root can only run as itself: another user is an
 * error (kind USAGE). root: "" for the running system's root. */
int sc_rt_launch_user(sc_rt_launch *l, const sc_rt_session *s, sc_rt_shield *sh, const char *root,
                      sconify_error_t *err);
/* In the child, before the exec: setgroups, setgid, setuid, in that order. */
int sc_rt_launch_switch_user(const sc_rt_launch *l, sconify_error_t *err);
void sc_rt_launch_free(sc_rt_launch *l);
SC_DEFINE_CLEANUP(sc_rt_launch *, sc_rt_launch_free)
#define cleanup_launch _cleanup_(sc_rt_launch_freep)

#endif
