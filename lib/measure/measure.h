/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The measurement (docs/measurement.md): one SHA-256 that names "what will
 * run" in a converted image: the runtime binary, the application executable
 * (resolved path and plaintext content), the shield metadata pin, the command,
 * environment and working directory, and the regions. `sconify image` computes
 * it and writes it into the session policy and a label; the enclave runtime
 * (linked statically: lib/core + lib/shield + this module + OpenSSL only)
 * recomputes it at start from what is really there.
 *
 * Owns: the canonical encoding (version prefix, field order, length prefixes,
 * sorting of the environment and the regions), the rules that turn a command's
 * argv[0] into the executable's path, and hashing an executable file. Depends
 * on lib/core and OpenSSL only.
 */
#ifndef SC_MEASURE_H
#define SC_MEASURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/stream.h"

#define SC_MEASURE_BYTES 32 /* SHA-256 */
#define SC_MEASURE_HEX (2 * SC_MEASURE_BYTES)

/* Caps on the inputs (they come from a policy or an image config). They are at
 * least the policy's own caps (lib/policy/policy.h) so that every policy the
 * CAS accepts can be measured. */
#define SC_MEASURE_PATH_MAX 4096u          /* bytes of a path (executable, cwd, region, PATH candidate) */
#define SC_MEASURE_STRING_MAX (128u << 10) /* bytes of one argv or environment string */
#define SC_MEASURE_LIST_MAX 16384u         /* argv elements; environment entries */
#define SC_MEASURE_TOTAL_MAX (16u << 20)   /* bytes of all argv and environment strings */
#define SC_MEASURE_REGIONS_MAX 4096u       /* as SC_SHIELD_REGIONS_MAX */

/* Used when the environment has no PATH entry at all. */
#define SC_MEASURE_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Region kinds as encoded (one byte). The values are those of sc_shield_kind
 * (lib/shield/shield.h), so a caller converts with a cast; this module does not
 * depend on the shield. */
typedef enum {
	SC_MEASURE_REGION_NOT_PROTECTED = 0,
	SC_MEASURE_REGION_ENCRYPTED = 1,
	SC_MEASURE_REGION_AUTHENTICATED = 2,
} sc_measure_region_kind;

/* ---- the builder --------------------------------------------------------- */

typedef struct sc_measure sc_measure;

sc_measure *sc_measure_new(void);
void sc_measure_free(sc_measure *m);
SC_DEFINE_CLEANUP(sc_measure *, sc_measure_free)
#define cleanup_measure _cleanup_(sc_measure_freep)

/* SHA-256 of the runtime binary (the file the conversion injects; the runtime
 * hashes /proc/self/exe with sc_measure_hash_file()). Required. */
void sc_measure_set_runtime(sc_measure *m, const uint8_t sha256[SC_MEASURE_BYTES]);

/* The application executable's absolute, normal path (`/a/b': no `.', `..',
 * empty component or trailing slash), as sc_measure_resolve_command() gives
 * it. Required. */
int sc_measure_set_exe_path(sc_measure *m, const char *path, sconify_error_t *err);
/* The executable's plaintext content, streamed: any split gives the same
 * value; no call at all is an error at finish (an empty file is one call with
 * len 0). Cannot be mixed with sc_measure_set_exe_sha256(). */
void sc_measure_exe_update(sc_measure *m, const void *data, size_t len);
/* A writer that feeds sc_measure_exe_update() and passes the bytes on to next
 * (not owned; NULL to only hash), so the conversion hashes while it streams a
 * layer. m must outlive the writer. */
sc_writer *sc_measure_exe_writer_new(sc_measure *m, sc_writer *next);
/* The executable's content hash when it is already known. */
void sc_measure_set_exe_sha256(sc_measure *m, const uint8_t sha256[SC_MEASURE_BYTES]);

/* The shield metadata pin; NULL: the image has no protected region (32 zero
 * bytes). Required, so that forgetting it cannot pass for "no metadata". */
void sc_measure_set_pin(sc_measure *m, const uint8_t pin[SC_MEASURE_BYTES]);

/* The command, one element at a time, in order. At least one is required. */
int sc_measure_add_arg(sc_measure *m, const char *arg, sconify_error_t *err);
/* One environment entry, `NAME=value' (NAME not empty, without `='). Order
 * does not matter; a NAME given twice fails at finish. */
int sc_measure_add_env(sc_measure *m, const char *entry, sconify_error_t *err);
/* The working directory, absolute and normal. Required. */
int sc_measure_set_cwd(sc_measure *m, const char *cwd, sconify_error_t *err);
/* A region of the shield metadata (`/' included); path absolute and normal.
 * Order does not matter; a path given twice fails. None when there is no
 * metadata. */
int sc_measure_add_region(sc_measure *m, sc_measure_region_kind kind, const char *path, sconify_error_t *err);

/* Checks that every required input is there, encodes and hashes. The builder
 * is spent afterwards (only sc_measure_free() is allowed). */
int sc_measure_finish(sc_measure *m, uint8_t ret[SC_MEASURE_BYTES], sconify_error_t *err);
/* The canonical encoding itself (docs/measurement.md), for tests and tools
 * that want to show it; same checks as finish, same spending. */
int sc_measure_encode(sc_measure *m, uint8_t **ret_data, size_t *ret_len, sconify_error_t *err);

/* ---- hex ------------------------------------------------------------------ */

/* Writes 64 lowercase hex digits and a NUL. */
void sc_measure_hex(const uint8_t bytes[SC_MEASURE_BYTES], char out[SC_MEASURE_HEX + 1]);
/* Accepts exactly 64 lowercase hex digits (the policy's form). */
int sc_measure_parse_hex(const char *hex, uint8_t ret[SC_MEASURE_BYTES], sconify_error_t *err);

/* ---- hashing files (runtime side) ---------------------------------------- */

/* SHA-256 of everything fd holds from its current position to its end. */
int sc_measure_hash_fd(int fd, uint8_t ret[SC_MEASURE_BYTES], sconify_error_t *err);
int sc_measure_hash_file(const char *path, uint8_t ret[SC_MEASURE_BYTES], sconify_error_t *err);

/* ---- resolving the command ------------------------------------------------ */

/* Answers whether the candidate path (absolute, possibly with `..' or
 * symlinks) names a regular file with an execute bit, following symlinks.
 * Returns 1 and *ret_real (malloc'd): the file's canonical absolute path, all
 * symlinks resolved; 0 when it is missing or not such a file (the search goes
 * on); < 0 with err set on a failure that must stop the search. */
typedef int (*sc_measure_exe_check_fn)(void *ctx, const char *path, char **ret_real, sconify_error_t *err);

/* Turns argv0 into the executable's canonical path (docs/measurement.md):
 * - argv0 containing `/': taken as is, relative to cwd when not absolute;
 * - else each absolute entry of path_env in order (empty and relative entries
 *   are skipped: they never mean the working directory); path_env NULL means
 *   SC_MEASURE_DEFAULT_PATH.
 * cwd: absolute. The answer of check must be absolute and normal. Fails with
 * SCONIFY_ERR_NOT_FOUND naming the command when nothing matches. The runtime
 * must execute exactly *ret_path (execv, never execvp). */
int sc_measure_resolve_command(const char *argv0, const char *path_env, const char *cwd,
                               sc_measure_exe_check_fn check, void *ctx, char **ret_path,
                               sconify_error_t *err);

/* The value of the first `PATH=' entry of env (n entries), or NULL. */
const char *sc_measure_env_path(const char *const *env, size_t n);

/* A check for the real file system (the runtime in its root): stat(2)
 * following links, a regular file with any execute bit, realpath(3). ctx is
 * unused. POSIX only. */
int sc_measure_fs_check(void *ctx, const char *path, char **ret_real, sconify_error_t *err);

/* True for `/' and for `/a/b' without `.', `..', empty components or a
 * trailing slash. */
bool sc_measure_path_normal(const char *path);

#endif
