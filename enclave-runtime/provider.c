/* SPDX-License-Identifier: Apache-2.0 */
#include "provider.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/strutil.h"
#include "core/xalloc.h"

void sc_rt_provider_free(sc_rt_provider *p)
{
	if (p)
		p->free(p);
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

int sc_rt_memfd_create(const char *name)
{
	cleanup_free char *mname = xasprintf("sconify:%.200s", name);
	int fd = memfd_create(mname, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create(mname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	return fd;
}

int sc_rt_sealed_memfd(const char *name, const void *data, size_t len, int *ret_fd, sconify_error_t *err)
{
	cleanup_close int fd = sc_rt_memfd_create(name);
	if (fd < 0)
		return sc_error_errno(err, errno, "memfd_create");
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sc_error_errno(err, errno, "filling a memfd");
		p += n;
		left -= (size_t)n;
	}
	/* Sealed, the content cannot change even through a read-write reopen
	 * of /proc/<pid>/fd/N by the application: every open sees the same bytes. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		return sc_error_errno(err, errno, "sealing a memfd");
	*ret_fd = steal_fd(&fd);
	return 0;
}

int sc_rt_serve_memfd(int memfd, int flags, sc_rt_answer *ret, sconify_error_t *err)
{
	int accmode = flags & O_ACCMODE;
	if ((flags & O_PATH) == 0) {
		if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
			*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EEXIST};
			return 0;
		}
		if ((flags & O_DIRECTORY) == O_DIRECTORY) { /* O_TMPFILE includes it */
			*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = ENOTDIR};
			return 0;
		}
		/* Linux truncates even with O_RDONLY|O_TRUNC: that is writing too. */
		if (accmode != O_RDONLY || (flags & O_TRUNC)) {
			*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EROFS};
			return 0;
		}
	} else if ((flags & O_DIRECTORY) == O_DIRECTORY) {
		*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = ENOTDIR};
		return 0;
	}
	/* A reopen, not a dup: each open(2) gets its own file offset. */
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", memfd);
	int oflags = O_CLOEXEC | ((flags & O_PATH) ? O_PATH : O_RDONLY | (flags & O_NONBLOCK));
	int fd = open(proc, oflags);
	if (fd < 0)
		return sc_error_errno(err, errno, "reopening a memfd through /proc/self/fd");
	*ret = (sc_rt_answer){.verdict = SC_RT_FD, .fd = fd};
	return 0;
}

typedef struct {
	sc_rt_provider base;
	const sc_rt_session *session;
	sc_rt_provider *shield;
	int *memfds; /* per injected file, created on first open; -1 before */
} files_provider;

static int files_open(sc_rt_provider *p, const char *path, int flags, sc_rt_answer *ret, sconify_error_t *err)
{
	files_provider *fp = (files_provider *)p;
	const sc_rt_session *s = fp->session;
	for (size_t i = 0; i < s->n_files; i++) {
		if (strcmp(s->files[i].path, path) != 0)
			continue;
		if (fp->memfds[i] < 0) {
			const char *base = strrchr(path, '/') + 1;
			if (sc_rt_sealed_memfd(base, s->files[i].data, s->files[i].len, &fp->memfds[i], err) <
			    0) {
				cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
				return sc_error_wrap(err, "injected file `%s'", q);
			}
		}
		return sc_rt_serve_memfd(fp->memfds[i], flags, ret, err);
	}

	if (fp->shield)
		return fp->shield->open(fp->shield, path, flags, ret, err);
	*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
	return 0;
}

static int files_protected_link(sc_rt_provider *p, const char *path, const char **ret_target)
{
	files_provider *fp = (files_provider *)p;
	*ret_target = NULL;
	if (fp->shield == NULL || fp->shield->protected_link == NULL)
		return 0;
	return fp->shield->protected_link(fp->shield, path, ret_target);
}

static void files_free(sc_rt_provider *p)
{
	files_provider *fp = (files_provider *)p;
	for (size_t i = 0; i < fp->session->n_files; i++)
		if (fp->memfds[i] >= 0)
			close(fp->memfds[i]);
	free(fp->memfds);
	sc_rt_provider_free(fp->shield);
	free(fp);
}

sc_rt_provider *sc_rt_files_provider_new(const sc_rt_session *s, sc_rt_provider *shield)
{
	files_provider *fp = xzalloc(sizeof(*fp));
	fp->base.open = files_open;
	fp->base.protected_link = files_protected_link;
	fp->base.free = files_free;
	fp->session = s;
	fp->shield = shield;
	fp->memfds = xcalloc(s->n_files ? s->n_files : 1, sizeof(int));
	for (size_t i = 0; i < s->n_files; i++)
		fp->memfds[i] = -1;
	return &fp->base;
}
