/* SPDX-License-Identifier: Apache-2.0 */
#include "tarwriter.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/strutil.h"
#include "core/xalloc.h"

#define BLOCK 512
#define NAME_MAX_USTAR 100

static const char ustar_magic[8] = {'u', 's', 't', 'a', 'r', '\0', '0', '0'};

struct content_writer {
	sc_writer base;
	sc_tar_writer *tw;
};

struct sc_tar_writer {
	int fd;
	uint64_t off; /* where the next byte goes */
	bool failed, finished, open;
	/* the open file's header, patched by end_file */
	unsigned char hdr[BLOCK];
	uint64_t entry_off; /* where its pax header (or header) starts */
	uint64_t hdr_off;
	uint64_t content_size;
	struct content_writer content;
};

void sc_tar_put_number(char *field, size_t width, uint64_t v)
{
	/* width - 1 octal digits and a NUL, if v fits */
	if (width - 1 >= 22 || v < (1ull << (3 * (width - 1)))) {
		for (size_t i = width - 1; i-- > 0; v >>= 3)
			field[i] = (char)('0' + (v & 7));
		field[width - 1] = '\0';
		return;
	}
	field[0] = (char)0x80;
	for (size_t i = width - 1; i >= 1; i--, v >>= 8)
		field[i] = (char)(v & 0xff);
}

static void set_checksum(unsigned char *h)
{
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (size_t i = 0; i < BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum & 0777777);
	h[155] = ' ';
}

static void make_header(unsigned char *h, const char *name, char type, mode_t mode, uint64_t size,
                        const char *link)
{
	memset(h, 0, BLOCK);
	/* A name or link over 100 bytes is in the pax header before; the
	 * field keeps its first 100 bytes for readers that ignore pax. */
	memcpy(h, name, strnlen(name, NAME_MAX_USTAR));
	sc_tar_put_number((char *)h + 100, 8, mode & 07777);
	sc_tar_put_number((char *)h + 108, 8, 0);
	sc_tar_put_number((char *)h + 116, 8, 0);
	sc_tar_put_number((char *)h + 124, 12, size);
	sc_tar_put_number((char *)h + 136, 12, 0);
	h[156] = (unsigned char)type;
	if (link)
		memcpy(h + 157, link, strnlen(link, NAME_MAX_USTAR));
	memcpy(h + 257, ustar_magic, sizeof(ustar_magic));
	sc_tar_put_number((char *)h + 329, 8, 0);
	sc_tar_put_number((char *)h + 337, 8, 0);
	set_checksum(h);
}

static int pwrite_all(sc_tar_writer *w, const void *data, size_t len, uint64_t off, sconify_error_t *err)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = pwrite(w->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			w->failed = true;
			return sc_error_errno(err, errno, "writing the archive at offset %llu",
			                      (unsigned long long)off);
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int append(sc_tar_writer *w, const void *data, size_t len, sconify_error_t *err)
{
	if (pwrite_all(w, data, len, w->off, err) < 0)
		return -1;
	w->off += len;
	return 0;
}

static int pad(sc_tar_writer *w, uint64_t size, sconify_error_t *err)
{
	static const char zeros[BLOCK];
	size_t n = (size_t)((BLOCK - size % BLOCK) % BLOCK);
	return append(w, zeros, n, err);
}

static int check_state(sc_tar_writer *w, bool want_open, sconify_error_t *err)
{
	if (w->failed)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "tar writer: an earlier write failed");
	if (w->finished)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "tar writer: the archive is finished");
	if (w->open && !want_open)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "tar writer: a file is still open");
	if (!w->open && want_open)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "tar writer: no file is open");
	return 0;
}

static int check_name(const char *name, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(name, SC_QUOTE_MAX);
	if (name[0] == '\0')
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "tar writer: empty path");
	if (name[0] == '/')
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "tar writer: entry `%s': absolute path", q);
	for (const char *c = name;;) {
		const char *slash = strchr(c, '/');
		size_t n = slash ? (size_t)(slash - c) : strlen(c);
		if (n == 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "tar writer: entry `%s': empty path component", q);
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "tar writer: entry `%s': path has a `%.*s' component", q, (int)n, c);
		if (slash == NULL)
			return 0;
		c = slash + 1;
	}
}

static size_t decimal_len(size_t n)
{
	size_t d = 1;
	while (n >= 10)
		n /= 10, d++;
	return d;
}

static void pax_record(sc_buf *b, const char *key, const char *value)
{
	size_t body = 1 + strlen(key) + 1 + strlen(value) + 1; /* " key=value\n" */
	size_t len = body + decimal_len(body);
	if (decimal_len(len) != decimal_len(body))
		len++;
	sc_buf_printf(b, "%zu %s=%s\n", len, key, value);
}

/* Writes a pax 'x' header for a name or link that does not fit in ustar. */
static int write_pax(sc_tar_writer *w, const char *name, const char *link, sconify_error_t *err)
{
	bool long_name = strlen(name) > NAME_MAX_USTAR;
	bool long_link = link && strlen(link) > NAME_MAX_USTAR;
	if (!long_name && !long_link)
		return 0;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	if (long_name)
		pax_record(&b, "path", name);
	if (long_link)
		pax_record(&b, "linkpath", link);

	/* The header's own name, as Go's archive/tar: dir/PaxHeaders.0/base. */
	const char *slash = strrchr(name, '/');
	cleanup_free char *xname =
	        slash ? xasprintf("%.*s/PaxHeaders.0/%s", (int)(slash - name), name, slash + 1)
	              : xasprintf("PaxHeaders.0/%s", name);
	unsigned char h[BLOCK];
	make_header(h, xname, 'x', 0644, b.len, NULL);
	if (append(w, h, BLOCK, err) < 0 || append(w, b.data, b.len, err) < 0)
		return -1;
	return pad(w, b.len, err);
}

static int write_entry(sc_tar_writer *w, const char *name, char type, mode_t mode, uint64_t size,
                       const char *link, unsigned char *ret_hdr, sconify_error_t *err)
{
	if (check_state(w, false, err) < 0 || check_name(name, err) < 0)
		return -1;
	cleanup_free char *tname = type == '5' ? xasprintf("%s/", name) : xstrdup(name);
	if (write_pax(w, tname, link, err) < 0)
		return -1;
	unsigned char h[BLOCK];
	make_header(h, tname, type, mode, size, link);
	if (ret_hdr)
		memcpy(ret_hdr, h, BLOCK);
	return append(w, h, BLOCK, err);
}

int sc_tar_writer_add_dir(sc_tar_writer *w, const char *name, mode_t mode, sconify_error_t *err)
{
	return write_entry(w, name, '5', mode, 0, NULL, NULL, err);
}

int sc_tar_writer_add_symlink(sc_tar_writer *w, const char *name, const char *target, sconify_error_t *err)
{
	if (target[0] == '\0') {
		cleanup_free char *q = sc_quote(name, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "tar writer: entry `%s': empty symlink target",
		                q);
	}
	return write_entry(w, name, '2', 0777, 0, target, NULL, err);
}

int sc_tar_writer_add_bytes(sc_tar_writer *w, const char *name, mode_t mode, const void *data, size_t len,
                            sconify_error_t *err)
{
	if (write_entry(w, name, '0', mode, len, NULL, NULL, err) < 0 || append(w, data, len, err) < 0)
		return -1;
	return pad(w, len, err);
}

static int content_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	sc_tar_writer *w = ((struct content_writer *)base)->tw;
	if (check_state(w, true, err) < 0)
		return -1;
	if (append(w, buf, len, err) < 0)
		return -1;
	w->content_size += len;
	return 0;
}

static void content_free(sc_writer *base)
{
	(void)base; /* part of the tar writer */
}

static const struct sc_writer_ops content_ops = {.write = content_write, .free = content_free};

int sc_tar_writer_begin_file(sc_tar_writer *w, const char *name, mode_t mode, sc_writer **ret_content,
                             sconify_error_t *err)
{
	uint64_t entry_off = w->off;
	/* The header is written now with size 0 and patched in end_file; the
	 * pax header (name only) does not depend on the size. */
	if (write_entry(w, name, '0', mode, 0, NULL, w->hdr, err) < 0)
		return -1;
	w->entry_off = entry_off;
	w->hdr_off = w->off - BLOCK;
	w->content_size = 0;
	w->open = true;
	*ret_content = &w->content.base;
	return 0;
}

int sc_tar_writer_end_file(sc_tar_writer *w, sconify_error_t *err)
{
	if (check_state(w, true, err) < 0)
		return -1;
	sc_tar_put_number((char *)w->hdr + 124, 12, w->content_size);
	set_checksum(w->hdr);
	if (pwrite_all(w, w->hdr, BLOCK, w->hdr_off, err) < 0 || pad(w, w->content_size, err) < 0)
		return -1;
	w->open = false;
	return 0;
}

void sc_tar_writer_abort_file(sc_tar_writer *w)
{
	if (!w->open)
		return;
	/* What was written after entry_off is overwritten by the next entry
	 * or cut by finish's ftruncate. */
	w->off = w->entry_off;
	w->open = false;
}

int sc_tar_writer_finish(sc_tar_writer *w, sconify_error_t *err)
{
	static const char zeros[2 * BLOCK];
	if (check_state(w, false, err) < 0 || append(w, zeros, sizeof(zeros), err) < 0)
		return -1;
	if (ftruncate(w->fd, (off_t)w->off) < 0) {
		w->failed = true;
		return sc_error_errno(err, errno, "truncating the archive");
	}
	w->finished = true;
	return 0;
}

sc_tar_writer *sc_tar_writer_new(int fd)
{
	sc_tar_writer *w = xzalloc(sizeof(*w));
	w->fd = fd;
	w->content.base.ops = &content_ops;
	w->content.tw = w;
	return w;
}

void sc_tar_writer_free(sc_tar_writer *w)
{
	free(w);
}
