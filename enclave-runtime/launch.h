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

#include "core/cleanup.h"
#include "core/error.h"
#include "measure/measure.h"
#include "session.h"
#include "shieldfs.h"

typedef struct {
	char *exe_path; /* absolute, canonical */
	int exe_fd;     /* -1: execve(exe_path); else the verified plaintext to execveat */
	bool script;    /* exe_fd holds a `#!' script: its interpreter reopens /dev/fd/N */
	char measurement[SC_MEASURE_HEX + 1];
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
void sc_rt_launch_free(sc_rt_launch *l);
SC_DEFINE_CLEANUP(sc_rt_launch *, sc_rt_launch_free)
#define cleanup_launch _cleanup_(sc_rt_launch_freep)

#endif
