/* SPDX-License-Identifier: Apache-2.0 */
#include "stream.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "xalloc.h"

ssize_t sc_reader_read(sc_reader *r, void *buf, size_t len, sconify_error_t *err)
{
	return r->ops->read(r, buf, len, err);
}

int sc_reader_read_full(sc_reader *r, void *buf, size_t len, size_t *ret_got, sconify_error_t *err)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = sc_reader_read(r, (char *)buf + got, len - got, err);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*ret_got = got;
	return 0;
}

int sc_reader_read_all(sc_reader *r, size_t cap, const char *what, char **ret_data, size_t *ret_len,
                       sconify_error_t *err)
{
	cleanup_buf sc_buf b;
	sc_buf_init(&b, cap);
	char chunk[16384];
	for (;;) {
		ssize_t n = sc_reader_read(r, chunk, sizeof(chunk), err);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (sc_buf_append(&b, chunk, (size_t)n, what, err) < 0)
			return -1;
	}
	*ret_data = sc_buf_steal(&b, ret_len);
	return 0;
}

void sc_reader_free(sc_reader *r)
{
	if (r)
		r->ops->free(r);
}

/* ---- fd reader ---- */

struct fd_reader {
	sc_reader base;
	int fd;
	bool own;
	int64_t pos;
	int64_t end; /* < 0: to the end of the file */
};

static ssize_t fd_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	struct fd_reader *r = (struct fd_reader *)base;
	if (r->end >= 0) {
		if (r->pos >= r->end)
			return 0;
		if ((int64_t)len > r->end - r->pos)
			len = (size_t)(r->end - r->pos);
	}
	for (;;) {
		ssize_t n = pread(r->fd, buf, len, (off_t)r->pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sc_error_errno(err, errno, "read");
		if (n == 0 && r->end >= 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "file ends %lld bytes early",
			                (long long)(r->end - r->pos));
		r->pos += n;
		return n;
	}
}

static void fd_free(sc_reader *base)
{
	struct fd_reader *r = (struct fd_reader *)base;
	if (r->own)
		close(r->fd);
	free(r);
}

static const struct sc_reader_ops fd_reader_ops = {.read = fd_read, .free = fd_free};

sc_reader *sc_fd_reader_new(int fd, bool own, int64_t offset, int64_t length)
{
	struct fd_reader *r = xzalloc(sizeof(*r));
	r->base.ops = &fd_reader_ops;
	r->fd = fd;
	r->own = own;
	r->pos = offset;
	r->end = length < 0 ? -1 : offset + length;
	return &r->base;
}

/* ---- memory reader ---- */

struct mem_reader {
	sc_reader base;
	const char *data;
	size_t len, pos;
};

static ssize_t mem_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	(void)err;
	struct mem_reader *r = (struct mem_reader *)base;
	size_t n = r->len - r->pos;
	if (n > len)
		n = len;
	if (n)
		memcpy(buf, r->data + r->pos, n);
	r->pos += n;
	return (ssize_t)n;
}

static void mem_free(sc_reader *base)
{
	free(base);
}

static const struct sc_reader_ops mem_reader_ops = {.read = mem_read, .free = mem_free};

sc_reader *sc_mem_reader_new(const void *data, size_t len)
{
	struct mem_reader *r = xzalloc(sizeof(*r));
	r->base.ops = &mem_reader_ops;
	r->data = data;
	r->len = len;
	return &r->base;
}

/* ---- writers ---- */

int sc_writer_write(sc_writer *w, const void *buf, size_t len, sconify_error_t *err)
{
	return w->ops->write(w, buf, len, err);
}

int sc_writer_finish(sc_writer *w, sconify_error_t *err)
{
	return w->ops->finish ? w->ops->finish(w, err) : 0;
}

void sc_writer_free(sc_writer *w)
{
	if (w)
		w->ops->free(w);
}

struct fd_writer {
	sc_writer base;
	int fd;
	bool own;
};

static int fd_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	struct fd_writer *w = (struct fd_writer *)base;
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sc_error_errno(err, errno, "write");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void fd_writer_free(sc_writer *base)
{
	struct fd_writer *w = (struct fd_writer *)base;
	if (w->own)
		close(w->fd);
	free(w);
}

static const struct sc_writer_ops fd_writer_ops = {.write = fd_write, .free = fd_writer_free};

sc_writer *sc_fd_writer_new(int fd, bool own)
{
	struct fd_writer *w = xzalloc(sizeof(*w));
	w->base.ops = &fd_writer_ops;
	w->fd = fd;
	w->own = own;
	return &w->base;
}

static int null_write(sc_writer *w, const void *buf, size_t len, sconify_error_t *err)
{
	(void)w, (void)buf, (void)len, (void)err;
	return 0;
}

static void null_free(sc_writer *w)
{
	free(w);
}

static const struct sc_writer_ops null_writer_ops = {.write = null_write, .free = null_free};

sc_writer *sc_null_writer_new(void)
{
	sc_writer *w = xzalloc(sizeof(*w));
	w->ops = &null_writer_ops;
	return w;
}

int sc_stream_pump(sc_reader *r, sc_writer *w, uint64_t *ret_n, sconify_error_t *err)
{
	cleanup_free char *buf = xmalloc(SC_STREAM_CHUNK);
	uint64_t total = 0;
	for (;;) {
		ssize_t n = sc_reader_read(r, buf, SC_STREAM_CHUNK, err);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (sc_writer_write(w, buf, (size_t)n, err) < 0)
			return -1;
		total += (uint64_t)n;
	}
	if (ret_n)
		*ret_n = total;
	return 0;
}
