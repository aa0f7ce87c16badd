/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File providers: who answers when the application opens a path. The
 * supervisor (supervisor.h) resolves the path the application asked for into
 * an absolute, normalised path with symbolic links followed, then asks the
 * provider, which gives one of three answers:
 *   continue  the kernel performs the open as if nothing had happened;
 *   errno     the open fails with that error;
 *   fd        the application receives a new descriptor for this open file
 *             description (its own offset), e.g. a sealed memfd.
 * Plaintext of protected content exists only in descriptors a provider hands
 * out, so "continue" can never expose it, whatever races the application runs.
 *
 * The files provider below serves the session's injected files from memory and
 * asks a second provider (the file shield, shieldfs.h) about every other path.
 */
#ifndef SC_RT_PROVIDER_H
#define SC_RT_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "session.h"

typedef enum {
	SC_RT_CONTINUE = 0,
	SC_RT_ERRNO,
	SC_RT_FD,
} sc_rt_verdict;

typedef struct {
	sc_rt_verdict verdict;
	int error; /* SC_RT_ERRNO: a positive errno */
	int fd;    /* SC_RT_FD: owned by the caller, who closes it after handing it over */
} sc_rt_answer;

typedef struct sc_rt_provider sc_rt_provider;
struct sc_rt_provider {
	/* path: absolute, normalised, symlinks resolved. flags: the open(2)
	 * flags (O_CLOEXEC is applied by the caller). Fails (< 0) only when
	 * the provider itself broke; the caller then gives the application
	 * EIO and logs err. A protected file that fails verification is an
	 * answer (SC_RT_ERRNO, EIO), with a message in *err left for the log. */
	int (*open)(sc_rt_provider *p, const char *path, int flags, sc_rt_answer *ret, sconify_error_t *err);
	/* For the walk (resolve.h), component by component: 1 when path lies
	 * in a protected region, with *ret_target the symlink the image records
	 * there or NULL; 0 when it does not. NULL: no path is protected. */
	int (*protected_link)(sc_rt_provider *p, const char *path, const char **ret_target);
	void (*free)(sc_rt_provider *p);
};

void sc_rt_provider_free(sc_rt_provider *p);
SC_DEFINE_CLEANUP(sc_rt_provider *, sc_rt_provider_free)
#define cleanup_provider _cleanup_(sc_rt_provider_freep)

/* Serves s's injected files (read only, from sealed memfds, never from disk)
 * and asks shield (owned, may be NULL) about every other path; continue when
 * there is no shield. Borrows s, which must outlive the provider. */
sc_rt_provider *sc_rt_files_provider_new(const sc_rt_session *s, sc_rt_provider *shield);

/* A memfd named sconify:NAME (close-on-exec, sealable) that may be executed
 * even where vm.memfd_noexec makes memfds non-executable by default
 * (MFD_EXEC, Linux 6.3; older kernels know neither). */
int sc_rt_memfd_create(const char *name);

/* A sealed (read-only, fixed-size) memfd holding data, named after name. */
int sc_rt_sealed_memfd(const char *name, const void *data, size_t len, int *ret_fd, sconify_error_t *err);

/* A new open file description of memfd for one open(2) with flags: refuses
 * writing (EROFS), O_CREAT|O_EXCL (EEXIST) and O_DIRECTORY (ENOTDIR) as the
 * kernel would for a read-only file, honours O_PATH. Fills ret. */
int sc_rt_serve_memfd(int memfd, int flags, sc_rt_answer *ret, sconify_error_t *err);

#endif
