/* SPDX-License-Identifier: Apache-2.0 */
#include "tarindex.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/strutil.h"
#include "core/xalloc.h"

#define BLOCK 512
#define READAHEAD (64 * 1024)
#define MAX_LINKS 16

/* Header field offsets (POSIX ustar; GNU and v7 share the first 257 bytes). */
#define H_NAME 0
#define H_SIZE 124
#define H_CHKSUM 148
#define H_TYPE 156
#define H_LINKNAME 157
#define H_MAGIC 257
#define H_PREFIX 345
#define H_GNU_ISEXTENDED 482     /* old GNU sparse header: more sparse blocks follow */
#define H_GNU_EXT_ISEXTENDED 504 /* the same flag in a sparse extension block */

struct sc_tar_index {
	int fd;
	char *what;
	sc_tar_entry *entries;
	size_t n, alloc;
	size_t *slots; /* open addressing: entry index + 1, 0 = empty */
	size_t nslots;
};

void sc_tar_index_free(sc_tar_index *ix)
{
	if (ix == NULL)
		return;
	for (size_t i = 0; i < ix->n; i++) {
		free(ix->entries[i].name);
		free(ix->entries[i].link);
	}
	free(ix->entries);
	free(ix->slots);
	free(ix->what);
	if (ix->fd >= 0)
		close(ix->fd);
	free(ix);
}

size_t sc_tar_index_count(const sc_tar_index *ix)
{
	return ix->n;
}

const sc_tar_entry *sc_tar_index_entry(const sc_tar_index *ix, size_t i)
{
	return i < ix->n ? &ix->entries[i] : NULL;
}

sc_reader *sc_tar_index_open_entry(sc_tar_index *ix, const sc_tar_entry *e)
{
	if (e->type != SC_TAR_FILE)
		return sc_fd_reader_new(ix->fd, false, 0, 0);
	return sc_fd_reader_new(ix->fd, false, (int64_t)e->offset, (int64_t)e->size);
}

/* ---- the name table ---- */

static uint64_t hash_name(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static const sc_tar_entry *find(const sc_tar_index *ix, const char *name, size_t len)
{
	if (ix->nslots == 0)
		return NULL;
	size_t mask = ix->nslots - 1;
	for (size_t i = (size_t)hash_name(name, len) & mask;; i = (i + 1) & mask) {
		size_t slot = ix->slots[i];
		if (slot == 0)
			return NULL;
		const sc_tar_entry *e = &ix->entries[slot - 1];
		if (strncmp(e->name, name, len) == 0 && e->name[len] == '\0')
			return e;
	}
}

static void slot_put(size_t *slots, size_t nslots, const char *name, size_t idx)
{
	size_t mask = nslots - 1;
	size_t i = (size_t)hash_name(name, strlen(name)) & mask;
	while (slots[i] != 0)
		i = (i + 1) & mask;
	slots[i] = idx + 1;
}

/* Adds e (taking its strings) to the array and the name table. */
static void add_entry(sc_tar_index *ix, sc_tar_entry *e)
{
	if ((ix->n + 1) * 10 > ix->nslots * 7) {
		size_t nslots = ix->nslots ? ix->nslots * 2 : 64;
		size_t *slots = xcalloc(nslots, sizeof(*slots));
		for (size_t i = 0; i < ix->n; i++)
			slot_put(slots, nslots, ix->entries[i].name, i);
		free(ix->slots);
		ix->slots = slots;
		ix->nslots = nslots;
	}
	if (ix->n == ix->alloc) {
		ix->alloc = ix->alloc ? ix->alloc * 2 : 64;
		ix->entries = xreallocarray(ix->entries, ix->alloc, sizeof(*ix->entries));
	}
	ix->entries[ix->n] = *e;
	slot_put(ix->slots, ix->nslots, e->name, ix->n);
	ix->n++;
	memset(e, 0, sizeof(*e));
}

/* ---- names ---- */

/* Drops empty and "." components; fails (returns -1) on a ".." component.
 * The result may be empty: the root. */
static int normalise(const char *in, size_t len, char **ret)
{
	sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, "");
	size_t i = 0;
	while (i < len) {
		while (i < len && in[i] == '/')
			i++;
		size_t start = i;
		while (i < len && in[i] != '/')
			i++;
		size_t n = i - start;
		if (n == 0 || (n == 1 && in[start] == '.'))
			continue;
		if (n == 2 && in[start] == '.' && in[start + 1] == '.') {
			sc_buf_free(&b);
			return -1;
		}
		if (b.len > 0)
			sc_buf_putc(&b, '/');
		for (size_t k = start; k < i; k++)
			sc_buf_putc(&b, in[k]);
	}
	*ret = sc_buf_steal(&b, NULL);
	return 0;
}

/* ---- numbers ---- */

/* Parses a numeric header field as GNU tar does: octal digits after an
 * optional leading NUL and leading spaces, ended by a space or NUL; or GNU
 * base-256 (first byte 0x80, big-endian, positive only). Returns -1 if the
 * field is neither or the value does not fit in 63 bits. */
static int parse_number(const unsigned char *f, size_t w, uint64_t *ret)
{
	uint64_t v = 0;
	if (f[0] & 0x80) {
		if (f[0] != 0x80)
			return -1; /* negative (0xff) or an unknown encoding */
		for (size_t i = 1; i < w; i++) {
			if (v >> 55)
				return -1;
			v = (v << 8) | f[i];
		}
		if (v > INT64_MAX)
			return -1;
		*ret = v;
		return 0;
	}
	size_t i = f[0] == '\0' ? 1 : 0;
	while (i < w && f[i] == ' ')
		i++;
	for (; i < w && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return -1;
		v = (v << 3) | (uint64_t)(f[i] - '0');
	}
	if (i < w && f[i] != '\0' && f[i] != ' ')
		return -1;
	if (v > INT64_MAX)
		return -1;
	*ret = v;
	return 0;
}

static bool checksum_ok(const unsigned char *h)
{
	uint64_t recorded;
	if ((h[H_CHKSUM] & 0x80) || parse_number(h + H_CHKSUM, 8, &recorded) < 0)
		return false;
	uint64_t usum = 0;
	int64_t ssum = 0;
	for (size_t i = 0; i < BLOCK; i++) {
		unsigned char c = (i >= H_CHKSUM && i < H_CHKSUM + 8) ? ' ' : h[i];
		usum += c;
		ssum += (signed char)c;
	}
	return recorded == usum || (ssum >= 0 && recorded == (uint64_t)ssum);
}

static bool is_zero_block(const unsigned char *h)
{
	for (size_t i = 0; i < BLOCK; i++)
		if (h[i])
			return false;
	return true;
}

/* ---- reading ---- */

struct scan {
	int fd;
	const char *what;
	uint64_t fsize;
	unsigned char *buf;
	uint64_t boff;
	size_t blen;
};

static int pread_full(struct scan *s, void *dst, size_t len, uint64_t off, sconify_error_t *err)
{
	char *p = dst;
	while (len > 0) {
		ssize_t n = pread(s->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sc_error_errno(err, errno, "%s: reading at offset %llu", s->what,
			                      (unsigned long long)off);
		if (n == 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: truncated at offset %llu", s->what,
			                (unsigned long long)off);
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads [off, off + len) which the caller checked lies inside the file. */
static int read_at(struct scan *s, void *dst, size_t len, uint64_t off, sconify_error_t *err)
{
	if (off >= s->boff && off - s->boff <= s->blen && len <= s->blen - (off - s->boff)) {
		memcpy(dst, s->buf + (off - s->boff), len);
		return 0;
	}
	if (len >= READAHEAD)
		return pread_full(s, dst, len, off, err);
	size_t want = s->fsize - off < READAHEAD ? (size_t)(s->fsize - off) : READAHEAD;
	s->blen = 0;
	if (pread_full(s, s->buf, want, off, err) < 0)
		return -1;
	s->boff = off;
	s->blen = want;
	memcpy(dst, s->buf, len);
	return 0;
}

/* ---- extended headers ---- */

/* What pax and GNU long-name headers say about the next entry. */
struct pending {
	bool any;
	char *long_name; /* 'L' */
	char *long_link; /* 'K' */
	char *pax_path;
	char *pax_link;
	char *sparse_name;
	bool has_size;
	uint64_t size;
	bool sparse;
};

static void pending_clear(struct pending *p)
{
	free(p->long_name);
	free(p->long_link);
	free(p->pax_path);
	free(p->pax_link);
	free(p->sparse_name);
	memset(p, 0, sizeof(*p));
}

static void set_str(char **dst, const char *v, size_t n)
{
	free(*dst);
	/* An empty pax value unsets the key (POSIX), so the header field counts again. */
	*dst = n ? xstrndup(v, n) : NULL;
}

/* Parses pax records "<len> <key>=<value>\n" into p. */
static int parse_pax(struct scan *s, uint64_t hoff, const char *data, size_t len, struct pending *p,
                     sconify_error_t *err)
{
	size_t pos = 0;
	while (pos < len) {
		const char *rec = data + pos;
		size_t avail = len - pos;
		size_t i = 0;
		uint64_t rlen = 0;
		while (i < avail && i < 20 && rec[i] >= '0' && rec[i] <= '9')
			rlen = rlen * 10 + (uint64_t)(rec[i++] - '0');
		if (i == 0 || i == 20 || i >= avail || rec[i] != ' ' || rlen > avail || rlen < i + 4 ||
		    rec[rlen - 1] != '\n')
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: pax header at offset %llu: malformed record at byte %zu",
			                s->what, (unsigned long long)hoff, pos);
		const char *key = rec + i + 1;
		const char *end = rec + rlen - 1; /* the newline */
		const char *eq = memchr(key, '=', (size_t)(end - key));
		if (eq == NULL || eq == key)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: pax header at offset %llu: record at byte %zu has no key",
			                s->what, (unsigned long long)hoff, pos);
		size_t klen = (size_t)(eq - key);
		const char *val = eq + 1;
		size_t vlen = (size_t)(end - val);
#define KEY(k) (klen == strlen(k) && memcmp(key, k, klen) == 0)
		bool is_name = KEY("path") || KEY("linkpath") || KEY("GNU.sparse.name");
		if (is_name && memchr(val, '\0', vlen))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: pax header at offset %llu: %.*s has a NUL byte", s->what,
			                (unsigned long long)hoff, (int)klen, key);
		if (KEY("path")) {
			set_str(&p->pax_path, val, vlen);
		} else if (KEY("linkpath")) {
			set_str(&p->pax_link, val, vlen);
		} else if (KEY("GNU.sparse.name")) {
			set_str(&p->sparse_name, val, vlen);
			p->sparse = true;
		} else if (klen > 11 && memcmp(key, "GNU.sparse.", 11) == 0) {
			p->sparse = true;
		} else if (KEY("size")) {
			if (vlen == 0) {
				p->has_size = false;
			} else {
				cleanup_free char *v = xstrndup(val, vlen);
				unsigned long long n;
				if (strlen(v) != vlen || !sc_parse_u64(v, &n) || n > INT64_MAX) {
					cleanup_free char *q = sc_quote(v, 40);
					return sc_error(err, SCONIFY_ERR_INVALID, 0,
					                "%s: pax header at offset %llu: invalid size `%s'",
					                s->what, (unsigned long long)hoff, q);
				}
				p->has_size = true;
				p->size = n;
			}
		}
#undef KEY
		pos += (size_t)rlen;
	}
	return 0;
}

/* ---- the scan ---- */

static const char *type_word(sc_tar_type t)
{
	switch (t) {
	case SC_TAR_DIR:
		return "directory";
	case SC_TAR_SYMLINK:
		return "symlink";
	case SC_TAR_HARDLINK:
		return "hard link";
	case SC_TAR_FILE:
		return "file";
	default:
		return "special file";
	}
}

static int check_compressed(struct scan *s, sconify_error_t *err)
{
	static const struct {
		const char *magic;
		size_t len;
		const char *name;
	} magics[] = {
	        {"\x1f\x8b", 2, "gzip"},
	        {"\x28\xb5\x2f\xfd", 4, "zstd"},
	        {"\xfd\x37\x7a\x58\x5a\x00", 6, "xz"},
	        {"BZh", 3, "bzip2"},
	};
	unsigned char head[6];
	size_t n = s->fsize < sizeof(head) ? (size_t)s->fsize : sizeof(head);
	if (n == 0)
		return 0;
	if (read_at(s, head, n, 0, err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (n >= magics[i].len && memcmp(head, magics[i].magic, magics[i].len) == 0)
			return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
			                "%s: compressed archive (%s): decompress it first", s->what,
			                magics[i].name);
	return 0;
}

/* Reads an extended header's payload of size bytes at off into *ret (NUL-terminated). */
static int read_payload(struct scan *s, const sconify_limits_t *limits, uint64_t hoff, uint64_t off,
                        uint64_t size, char **ret, sconify_error_t *err)
{
	if (size > limits->max_pax_bytes)
		return sc_error(
		        err, SCONIFY_ERR_LIMIT, 0,
		        "%s: extended header at offset %llu: %llu bytes, larger than the limit of %llu",
		        s->what, (unsigned long long)hoff, (unsigned long long)size,
		        (unsigned long long)limits->max_pax_bytes);
	char *data = xmalloc((size_t)size + 1);
	if (read_at(s, data, (size_t)size, off, err) < 0) {
		free(data);
		return -1;
	}
	data[size] = '\0';
	*ret = data;
	return 0;
}

/* After a zero block at end - BLOCK: the archive ends there if EOF or a
 * second zero block follows (what comes after two is never read, as by every
 * tar reader). A header after a lone zero block is refused: GNU tar and
 * libarchive stop at the zero block, Go's archive/tar (skopeo) fails, so such
 * an archive reads differently depending on the tool. */
static int check_end(struct scan *s, uint64_t end, sconify_error_t *err)
{
	unsigned char h[BLOCK];
	if (end == s->fsize)
		return 0;
	if (s->fsize - end < BLOCK)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "%s: truncated: %llu bytes after the zero block at offset %llu", s->what,
		                (unsigned long long)(s->fsize - end), (unsigned long long)(end - BLOCK));
	if (read_at(s, h, BLOCK, end, err) < 0)
		return -1;
	if (!is_zero_block(h))
		return sc_error(
		        err, SCONIFY_ERR_INVALID, 0,
		        "%s: a lone zero block at offset %llu, then data after the end of the archive",
		        s->what, (unsigned long long)(end - BLOCK));
	return 0;
}

static int scan_archive(sc_tar_index *ix, struct scan *s, const sconify_limits_t *limits,
                        sconify_error_t *err)
{
	unsigned char h[BLOCK];
	uint64_t pos = 0;
	uint64_t count = 0;
	_cleanup_(pending_clear) struct pending p = {0};

	for (;;) {
		if (pos == s->fsize) {
			if (p.any)
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: truncated: extended header without its entry at the end",
				                s->what);
			return 0; /* a clean end without end-of-archive blocks */
		}
		if (s->fsize - pos < BLOCK)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: truncated: %llu bytes where a header should be at offset %llu",
			                s->what, (unsigned long long)(s->fsize - pos),
			                (unsigned long long)pos);
		if (read_at(s, h, BLOCK, pos, err) < 0)
			return -1;
		if (is_zero_block(h)) {
			if (p.any)
				return sc_error(
				        err, SCONIFY_ERR_INVALID, 0,
				        "%s: truncated: extended header without its entry at offset %llu",
				        s->what, (unsigned long long)pos);
			return check_end(s, pos + BLOCK, err);
		}
		if (!checksum_ok(h)) {
			if (pos == 0)
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: not a tar archive (header checksum mismatch)", s->what);
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: header checksum mismatch at offset %llu", s->what,
			                (unsigned long long)pos);
		}

		char type = (char)h[H_TYPE];
		uint64_t hoff = pos;
		uint64_t data_off = pos + BLOCK;
		uint64_t size;
		bool meta = type == 'L' || type == 'K' || type == 'x' || type == 'g';
		if (!meta && p.has_size) {
			size = p.size;
		} else if (parse_number(h + H_SIZE, 12, &size) < 0) {
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: header at offset %llu: invalid size field", s->what,
			                (unsigned long long)hoff);
		}

		/* Old GNU sparse headers are followed by extension blocks before the data. */
		if (type == 'S' && h[H_GNU_ISEXTENDED]) {
			unsigned char ext[BLOCK];
			do {
				if (s->fsize - data_off < BLOCK)
					return sc_error(err, SCONIFY_ERR_INVALID, 0,
					                "%s: truncated sparse header at offset %llu", s->what,
					                (unsigned long long)hoff);
				if (read_at(s, ext, BLOCK, data_off, err) < 0)
					return -1;
				data_off += BLOCK;
			} while (ext[H_GNU_EXT_ISEXTENDED]);
		}

		if (size > s->fsize - data_off)
			return sc_error(
			        err, SCONIFY_ERR_INVALID, 0,
			        "%s: truncated: the entry at offset %llu declares %llu bytes, %llu remain",
			        s->what, (unsigned long long)hoff, (unsigned long long)size,
			        (unsigned long long)(s->fsize - data_off));
		uint64_t padded = (size + BLOCK - 1) / BLOCK * BLOCK;
		uint64_t next = padded <= s->fsize - data_off ? data_off + padded : s->fsize + 1;
		if (next > s->fsize)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: truncated: the padding of the entry at offset %llu is missing",
			                s->what, (unsigned long long)hoff);

		if (type == 'g') {
			pos = next; /* global pax headers stand alone and are ignored */
			continue;
		}
		if (meta) {
			p.any = true;
			cleanup_free char *data = NULL;
			if (read_payload(s, limits, hoff, data_off, size, &data, err) < 0)
				return -1;
			if (type == 'x') {
				if (parse_pax(s, hoff, data, (size_t)size, &p, err) < 0)
					return -1;
			} else {
				/* GNU long names end at the first NUL. */
				size_t n = strlen(data);
				set_str(type == 'L' ? &p.long_name : &p.long_link, data, n);
			}
			pos = next;
			continue;
		}
		if (type == 'V') { /* GNU volume label: not an entry */
			pending_clear(&p);
			pos = next;
			continue;
		}

		/* The name: pax beats GNU long name beats the header. */
		cleanup_free char *hname = NULL;
		const char *raw = p.sparse_name ? p.sparse_name : p.pax_path ? p.pax_path : p.long_name;
		if (raw == NULL) {
			size_t nlen = strnlen((const char *)h + H_NAME, 100);
			bool posix = memcmp(h + H_MAGIC, "ustar\0", 6) == 0;
			size_t plen = posix ? strnlen((const char *)h + H_PREFIX, 155) : 0;
			if (plen)
				hname = xasprintf("%.*s/%.*s", (int)plen, (const char *)h + H_PREFIX,
				                  (int)nlen, (const char *)h + H_NAME);
			else
				hname = xstrndup((const char *)h + H_NAME, nlen);
			raw = hname;
		}
		cleanup_free char *hlink = NULL;
		const char *rawlink = p.pax_link ? p.pax_link : p.long_link;
		if (rawlink == NULL) {
			hlink = xstrndup((const char *)h + H_LINKNAME,
			                 strnlen((const char *)h + H_LINKNAME, 100));
			rawlink = hlink;
		}

		cleanup_free char *q = sc_quote(raw, SC_QUOTE_MAX);
		size_t rawlen = strlen(raw);
		if (rawlen == 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: entry at offset %llu: empty path",
			                s->what, (unsigned long long)hoff);
		if (rawlen > limits->max_path_bytes || strlen(rawlink) > limits->max_path_bytes)
			return sc_error(err, SCONIFY_ERR_LIMIT, 0,
			                "%s: entry `%s': path longer than %llu bytes", s->what, q,
			                (unsigned long long)limits->max_path_bytes);
		if (++count > limits->max_entries)
			return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s: too many entries (the limit is %llu)",
			                s->what, (unsigned long long)limits->max_entries);

		sc_tar_entry e = {0};
		switch (type) {
		case '0':
		case '\0':
		case '7':
			/* v7 and old GNU tars mark directories by a trailing slash. */
			e.type = raw[rawlen - 1] == '/' ? SC_TAR_DIR : SC_TAR_FILE;
			break;
		case '1':
			e.type = SC_TAR_HARDLINK;
			break;
		case '2':
			e.type = SC_TAR_SYMLINK;
			break;
		case '5':
			e.type = SC_TAR_DIR;
			break;
		default:
			e.type = SC_TAR_OTHER;
			break;
		}
		if (p.sparse)
			e.type = SC_TAR_OTHER;
		/* Readers disagree on whether data follows these headers (GNU tar
		 * skips it, libarchive does not), so an archive that has some means
		 * two different things: refuse it. Hard links may carry data
		 * (pax), which everyone skips. */
		if (size > 0 && (e.type == SC_TAR_DIR || e.type == SC_TAR_SYMLINK ||
		                 (e.type == SC_TAR_OTHER && (type == '3' || type == '4' || type == '6'))))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: entry `%s': a %s with %llu data bytes", s->what, q,
			                type_word(e.type), (unsigned long long)size);
		if (e.type == SC_TAR_FILE) {
			e.size = size;
			e.offset = data_off;
		}

		if (normalise(raw, rawlen, &e.name) < 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: entry `%s': path has a `..' component, outside the archive",
			                s->what, q);
		if (e.name[0] == '\0') {
			free(e.name);
			if (e.type != SC_TAR_DIR)
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: entry `%s': root must be a directory", s->what, q);
			pending_clear(&p);
			pos = next;
			continue;
		}
		const sc_tar_entry *old = find(ix, e.name, strlen(e.name));
		if (old) {
			bool both_dirs = old->type == SC_TAR_DIR && e.type == SC_TAR_DIR;
			free(e.name);
			if (!both_dirs)
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: entry `%s': duplicate entry", s->what, q);
			pending_clear(&p);
			pos = next;
			continue;
		}
		if (e.type == SC_TAR_SYMLINK || e.type == SC_TAR_HARDLINK)
			e.link = xstrdup(rawlink);
		add_entry(ix, &e);
		pending_clear(&p);
		pos = next;
	}
}

int sc_tar_index_open_fd(int fd, const char *what, const sconify_limits_t *limits, sc_tar_index **ret,
                         sconify_error_t *err)
{
	cleanup_close int owned = fd;
	struct stat st;
	if (fstat(owned, &st) < 0)
		return sc_error_errno(err, errno, "%s", what);
	if (!S_ISREG(st.st_mode))
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0, "%s: not a regular file", what);

	cleanup_free unsigned char *buf = xmalloc(READAHEAD);
	struct scan s = {.fd = owned, .what = what, .fsize = (uint64_t)st.st_size, .buf = buf};
	if (check_compressed(&s, err) < 0)
		return -1;

	_cleanup_(sc_tar_index_freep) sc_tar_index *ix = xzalloc(sizeof(*ix));
	ix->fd = -1;
	ix->what = xstrdup(what);
	if (scan_archive(ix, &s, limits, err) < 0)
		return -1;
	ix->fd = steal_fd(&owned);
	*ret = steal_pointer(&ix);
	return 0;
}

int sc_tar_index_open(const char *path, const sconify_limits_t *limits, sc_tar_index **ret,
                      sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(path, SIZE_MAX);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sc_error(err, errno == ENOENT ? SCONIFY_ERR_NOT_FOUND : SCONIFY_ERR_IO, errno,
		                "opening `%s'", q);
	cleanup_free char *what = xasprintf("`%s'", q);
	return sc_tar_index_open_fd(fd, what, limits, ret, err);
}

/* ---- lookup ---- */

/* Resolves name like a path lookup in a file system rooted at the archive. */
int sc_tar_index_lookup(sc_tar_index *ix, const char *name, const sc_tar_entry **ret, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(name, SC_QUOTE_MAX);
	/* resolved: the directories walked so far; todo: what is left to walk */
	cleanup_buf sc_buf resolved;
	sc_buf_init(&resolved, SIZE_MAX);
	sc_buf_puts(&resolved, "");
	cleanup_free char *todo = NULL;
	if (normalise(name, strlen(name), &todo) < 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "%s: `%s' has a `..' component, outside the archive", ix->what, q);
	size_t at = 0;
	int links = 0;

	for (;;) {
		while (todo[at] == '/')
			at++;
		if (todo[at] == '\0')
			break;
		size_t start = at;
		while (todo[at] && todo[at] != '/')
			at++;
		size_t n = at - start;
		if (n == 1 && todo[start] == '.')
			continue;
		if (n == 2 && todo[start] == '.' && todo[start + 1] == '.') {
			if (resolved.len == 0)
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: `%s' leads outside the archive", ix->what, q);
			char *slash = strrchr(resolved.data, '/');
			resolved.len = slash ? (size_t)(slash - resolved.data) : 0;
			resolved.data[resolved.len] = '\0';
			continue;
		}
		size_t parent_len = resolved.len;
		if (resolved.len)
			sc_buf_putc(&resolved, '/');
		for (size_t k = start; k < at; k++)
			sc_buf_putc(&resolved, todo[k]);

		const sc_tar_entry *e = find(ix, resolved.data, resolved.len);
		size_t k = at;
		while (todo[k] == '/')
			k++;
		bool last = todo[k] == '\0';
		if (e == NULL) {
			if (last)
				return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "%s: `%s' not found", ix->what,
				                q);
			continue; /* a directory without an entry of its own */
		}
		if (e->type == SC_TAR_SYMLINK || e->type == SC_TAR_HARDLINK) {
			if (++links > MAX_LINKS)
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: `%s': too many levels of symbolic links", ix->what, q);
			/* A symlink resolves from its directory (or the root if
			 * absolute), a hard link names an entry from the root. */
			if (e->type == SC_TAR_HARDLINK || e->link[0] == '/')
				parent_len = 0;
			resolved.len = parent_len;
			resolved.data[parent_len] = '\0';
			char *rest = xasprintf("%s/%s", e->link, todo + at);
			free(todo);
			todo = rest;
			at = 0;
			continue;
		}
		if (last) {
			if (e->type != SC_TAR_FILE)
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: `%s' is a %s, not a regular file", ix->what, q,
				                type_word(e->type));
			*ret = e;
			return 0;
		}
		if (e->type != SC_TAR_DIR) {
			cleanup_free char *qe = sc_quote(e->name, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "%s: `%s' not found (`%s' is a %s)",
			                ix->what, q, qe, type_word(e->type));
		}
	}
	/* The name (or a link) ended at a directory, the root included. */
	return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `%s' is a directory, not a regular file", ix->what,
	                q);
}
