/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service configuration the runtime starts: command, environment, working
 * directory, injected files and protected regions. Today it comes from one
 * source only, a session file named by SCONIFY_SESSION_FILE, accepted in sim
 * mode (development, no hardware protection); the attestation client will
 * fill the same structure from the CAS. The format is docs/runtime.md.
 */
#ifndef SC_RT_SESSION_H
#define SC_RT_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "core/cleanup.h"
#include "core/error.h"

/* Caps on a session file: it is small, and what it holds stays in memory. */
#define SC_RT_SESSION_MAX_BYTES (16u << 20)
#define SC_RT_SESSION_MAX_FILES 4096
#define SC_RT_SESSION_MAX_REGIONS 1024
#define SC_RT_SESSION_MAX_ARGS 4096
#define SC_RT_PATH_MAX 4096

typedef struct {
	char *path; /* absolute and normalised: no `.', `..', `//' or trailing `/' */
	char *data;
	size_t len;
} sc_rt_file;

typedef struct {
	char *mode;    /* "sim" */
	char **argv;   /* NULL-terminated, at least one element */
	char **env;    /* NULL-terminated "NAME=value"; exactly the application's environment */
	char *workdir; /* absolute */
	sc_rt_file *files;
	size_t n_files;
	char **regions; /* absolute and normalised, NULL-terminated */
	size_t n_regions;
} sc_rt_session;

/* Reads and validates the session file at path (at most SC_RT_SESSION_MAX_BYTES). */
int sc_rt_session_load(const char *path, sc_rt_session **ret, sconify_error_t *err);
/* The same for a document in memory; what names it in messages. */
int sc_rt_session_parse(const char *data, size_t len, const char *what, sc_rt_session **ret,
                        sconify_error_t *err);
void sc_rt_session_free(sc_rt_session *s);
SC_DEFINE_CLEANUP(sc_rt_session *, sc_rt_session_free)
#define cleanup_session _cleanup_(sc_rt_session_freep)

/* Normalises an absolute path lexically (`.', `..' at the root, repeated and
 * trailing slashes). Returns NULL when path is not absolute, is longer than
 * SC_RT_PATH_MAX or, unless allow_dotdot, has a `..' component. */
char *sc_rt_path_normalize(const char *path, bool allow_dotdot);
/* True when path is prefix or lies below it (both normalised). */
bool sc_rt_path_under(const char *path, const char *prefix);

#endif
