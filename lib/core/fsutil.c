/* SPDX-License-Identifier: Apache-2.0 */
#define _XOPEN_SOURCE 700
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "stream.h"
#include "strutil.h"
#include "xalloc.h"

int sc_read_file(const char *path, size_t cap, char **ret_data, size_t *ret_len, sconify_error_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sc_error(err, errno == ENOENT ? SCONIFY_ERR_NOT_FOUND : SCONIFY_ERR_IO, errno,
		                "opening `%s'", path);
	cleanup_reader sc_reader *r = sc_fd_reader_new(fd, false, 0, -1);
	cleanup_free char *what = xasprintf("`%s'", path);
	return sc_reader_read_all(r, cap, what, ret_data, ret_len, err);
}

int sc_mkdir_p(const char *path, mode_t mode, sconify_error_t *err)
{
	cleanup_free char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return sc_error_errno(err, errno, "creating directory `%s'", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return sc_error_errno(err, errno, "creating directory `%s'", p);
	return 0;
}

int sc_tmpfile(const char *dir, const char *prefix, char **ret_path, int *ret_fd, sconify_error_t *err)
{
	cleanup_free char *tmpl = xasprintf("%s/.%sXXXXXX", dir, prefix);
	int fd = mkstemp(tmpl);
	if (fd < 0)
		return sc_error_errno(err, errno, "creating a temporary file in `%s'", dir);
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	*ret_path = steal_pointer(&tmpl);
	*ret_fd = fd;
	return 0;
}

int sc_fsync_dir(const char *dir, sconify_error_t *err)
{
	cleanup_close int fd = open(dir, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sc_error_errno(err, errno, "opening directory `%s'", dir);
	/* Some file systems refuse fsync on directories; the rename is still done. */
	if (fsync(fd) < 0 && errno != EINVAL && errno != ENOTSUP)
		return sc_error_errno(err, errno, "syncing directory `%s'", dir);
	return 0;
}

int sc_commit_tmpfile(int fd, const char *tmp, const char *path, sconify_error_t *err)
{
	if (fsync(fd) < 0)
		return sc_error_errno(err, errno, "syncing `%s'", tmp);
	if (rename(tmp, path) < 0)
		return sc_error_errno(err, errno, "renaming `%s' to `%s'", tmp, path);
	cleanup_free char *dir = sc_dirname(path);
	return sc_fsync_dir(dir, err);
}

int sc_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, sconify_error_t *err)
{
	cleanup_free char *dir = sc_dirname(path);
	cleanup_free char *tmp = NULL;
	cleanup_close int fd = -1;
	if (sc_tmpfile(dir, "tmp-", &tmp, &fd, err) < 0)
		return -1;
	cleanup_writer sc_writer *w = sc_fd_writer_new(fd, false);
	if (sc_writer_write(w, data, len, err) < 0 || fchmod(fd, mode) < 0 ||
	    sc_commit_tmpfile(fd, tmp, path, err) < 0) {
		if (err && *err == NULL)
			sc_error_errno(err, errno, "writing `%s'", path);
		unlink(tmp);
		return sc_error_wrap(err, "writing `%s'", path);
	}
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)ftw;
	int r = (flag == FTW_DP || flag == FTW_D) ? rmdir(path) : unlink(path);
	return r < 0 && errno != ENOENT ? -1 : 0;
}

int sc_rm_rf(const char *path, sconify_error_t *err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : sc_error_errno(err, errno, "removing `%s'", path);
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return sc_error_errno(err, errno, "removing `%s'", path);
	return 0;
}

bool sc_path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

char *sc_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

char *sc_path_join(const char *a, const char *b)
{
	size_t n = strlen(a);
	if (n > 0 && a[n - 1] == '/')
		return xasprintf("%s%s", a, b);
	return xasprintf("%s/%s", a, b);
}

const char *sc_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	return t && *t ? t : "/tmp";
}
