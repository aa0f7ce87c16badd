/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service configuration the runtime starts: command, environment, working
 * directory, injected files, the file shield's key and metadata pin, and the
 * measurements the service accepts. Today it comes from one source only, a
 * session policy (lib/policy, docs/policy.md) named by SCONIFY_SESSION_FILE,
 * accepted in sim mode (development, no hardware protection); the attestation
 * client will fill the same structure from what the CAS releases.
 */
#ifndef SC_RT_SESSION_H
#define SC_RT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "policy/policy.h"

#define SC_RT_PATH_MAX 4096
#define SC_RT_KEY_BYTES 32 /* the shield's volume key */
#define SC_RT_PIN_BYTES 32 /* the shield's metadata pin */

typedef struct {
	char *path; /* absolute and normalised: no `.', `..', `//' or trailing `/' */
	char *data;
	size_t len;
} sc_rt_file;

typedef struct {
	char *session; /* the policy's name, [ns/]session */
	char *service;
	char **argv; /* NULL-terminated, at least one element */
	size_t argc;
	char **env; /* NULL-terminated "NAME=value", sorted; exactly the application's environment */
	size_t n_env;
	char *workdir; /* absolute and normal; `/' when the policy has no pwd */
	/* Who the application runs as: "uid[:gid]" or "name[:group]"
	 * (sc_policy_valid_user()); NULL: as the runtime (root). Comes with the
	 * configuration, not the measurement (docs/runtime.md). */
	char *user;
	sc_rt_file *files;
	size_t n_files;
	/* The file shield: fspf_path NULL when the service has none. */
	char *fspf_path;
	uint8_t fspf_key[SC_RT_KEY_BYTES]; /* secret: wiped when freed */
	uint8_t fspf_pin[SC_RT_PIN_BYTES];
	char **measurements; /* accepted values, lowercase hex, NULL-terminated */
	size_t n_measurements;
} sc_rt_session;

/* Reads the session policy at path (at most SC_POLICY_MAX_BYTES), checks
 * that it allows sim mode and that its name is config_id without the last
 * component, and resolves the service config_id's last component names
 * (secret references expanded; secrets the CAS would generate are generated
 * here, sim mode standing in for the CAS). */
int sc_rt_session_load(const char *path, const char *config_id, sc_rt_session **ret, sconify_error_t *err);
/* Fills s's command, environment, working directory, user, injected files and
 * shield from a service's configuration (from a session file or the CAS);
 * s->service is set already. what names the source in messages. */
int sc_rt_session_fill(sc_rt_session *s, const sc_policy_config *c, const char *what, sconify_error_t *err);

/* The same for a document in memory; what names it in messages. */
int sc_rt_session_parse(const char *data, size_t len, const char *what, const char *config_id,
                        sc_rt_session **ret, sconify_error_t *err);
void sc_rt_session_free(sc_rt_session *s);
SC_DEFINE_CLEANUP(sc_rt_session *, sc_rt_session_free)
#define cleanup_session _cleanup_(sc_rt_session_freep)

/* Normalises an absolute path lexically (`.', `..' at the root, repeated and
 * trailing slashes). Returns NULL when path is not absolute, is longer than
 * SC_RT_PATH_MAX or, unless allow_dotdot, has a `..' component. */
char *sc_rt_path_normalize(const char *path, bool allow_dotdot);
/* True when path is prefix or lies below it (both normalised). */
bool sc_rt_path_under(const char *path, const char *prefix);
/* True for /proc, /sys, /dev and what lies below: the kernel's own file
 * systems, which a container runtime mounts over whatever the image holds
 * there. Their names change without inotify events and they are no image
 * content: never cached (linkcache.h), never protected (shieldfs.h). */
bool sc_rt_path_kernel_fs(const char *path);

#endif
