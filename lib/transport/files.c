/* SPDX-License-Identifier: Apache-2.0 */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/tarindex.h"
#include "core/fsutil.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "layer/compress.h"

struct sc_files {
	char *dir;         /* directory layouts */
	sc_tar_index *tar; /* archive layouts */
	char *name;        /* for messages */
};

int sc_files_open_dir(const char *dir, sc_files **ret, sconify_error_t *err)
{
	struct stat st;
	if (stat(dir, &st) < 0)
		return sc_error(err, errno == ENOENT ? SCONIFY_ERR_NOT_FOUND : SCONIFY_ERR_IO, errno,
		                "opening `%s'", dir);
	if (!S_ISDIR(st.st_mode))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "`%s' is not a directory", dir);
	sc_files *f = xzalloc(sizeof(*f));
	f->dir = xstrdup(dir);
	f->name = xstrdup(dir);
	*ret = f;
	return 0;
}

/* An archive compressed as a whole (`docker save | gzip`) is decompressed into
 * an unlinked temporary file first: the index needs offsets into plain tar.
 * The decompression limits apply as to a layer. Returns an fd of plain tar. */
static int plain_archive_fd(const char *path, const sconify_limits_t *limits, int *ret_fd,
                            sconify_error_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sc_error(err, errno == ENOENT ? SCONIFY_ERR_NOT_FOUND : SCONIFY_ERR_IO, errno,
		                "opening `%s'", path);
	unsigned char head[8];
	ssize_t n = pread(fd, head, sizeof(head), 0);
	if (n < 0)
		return sc_error_errno(err, errno, "reading `%s'", path);
	sc_compression c = sc_compression_detect(head, (size_t)n);
	if (c == SC_COMP_NONE) {
		*ret_fd = steal_fd(&fd);
		return 0;
	}

	cleanup_free char *tmp = NULL;
	cleanup_close int out = -1;
	if (sc_tmpfile(sc_tmpdir(), "sconify-archive-", &tmp, &out, err) < 0)
		return -1;
	unlink(tmp);
	cleanup_free char *what = xasprintf("`%s'", path);
	cleanup_reader sc_reader *plain =
	        sc_decompress_reader_new(sc_fd_reader_new(steal_fd(&fd), true, 0, -1), c, limits, what);
	cleanup_writer sc_writer *w = sc_fd_writer_new(out, false);
	if (sc_stream_pump(plain, w, NULL, err) < 0)
		return -1;
	*ret_fd = steal_fd(&out);
	return 0;
}

int sc_files_open_tar(const char *path, const sconify_limits_t *limits, sc_files **ret, sconify_error_t *err)
{
	sc_tar_index *ix = NULL;
	int fd = -1;
	cleanup_free char *what = xasprintf("`%s'", path);
	if (plain_archive_fd(path, limits, &fd, err) < 0 ||
	    sc_tar_index_open_fd(fd, what, limits, &ix, err) < 0)
		return -1;
	sc_files *f = xzalloc(sizeof(*f));
	f->tar = ix;
	f->name = xstrdup(path);
	*ret = f;
	return 0;
}

void sc_files_free(sc_files *f)
{
	if (f == NULL)
		return;
	free(f->dir);
	sc_tar_index_free(f->tar);
	free(f->name);
	free(f);
}

int sc_files_open(sc_files *f, const char *rel, sc_reader **ret, uint64_t *ret_size, sconify_error_t *err)
{
	if (f->tar) {
		const sc_tar_entry *e;
		if (sc_tar_index_lookup(f->tar, rel, &e, err) < 0)
			return sc_error_wrap(err, "`%s'", f->name);
		*ret = sc_tar_index_open_entry(f->tar, e);
		if (ret_size)
			*ret_size = e->size;
		return 0;
	}

	cleanup_free char *path = sc_path_join(f->dir, rel);
	/* O_NONBLOCK: opening a FIFO planted in the layout must not hang us. */
	cleanup_close int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "`%s' not found", path);
		if (errno == ELOOP)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "`%s' is a symlink", path);
		return sc_error_errno(err, errno, "opening `%s'", path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sc_error_errno(err, errno, "stat `%s'", path);
	if (!S_ISREG(st.st_mode))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "`%s' is not a regular file", path);
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		return sc_error_errno(err, errno, "fcntl `%s'", path);
	*ret = sc_fd_reader_new(steal_fd(&fd), true, 0, st.st_size);
	if (ret_size)
		*ret_size = (uint64_t)st.st_size;
	return 0;
}

int sc_files_read(sc_files *f, const char *rel, size_t cap, const char *what, char **ret_data,
                  size_t *ret_len, sconify_error_t *err)
{
	cleanup_reader sc_reader *r = NULL;
	uint64_t size = 0;
	if (sc_files_open(f, rel, &r, &size, err) < 0)
		return -1;
	if (size > cap)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s is larger than the limit of %zu bytes", what,
		                cap);
	return sc_reader_read_all(r, cap, what, ret_data, ret_len, err);
}

bool sc_files_exists(sc_files *f, const char *rel)
{
	if (f->tar) {
		const sc_tar_entry *e;
		return sc_tar_index_lookup(f->tar, rel, &e, NULL) == 0;
	}
	cleanup_free char *path = sc_path_join(f->dir, rel);
	return sc_path_exists(path);
}
