/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layer scanner. libarchive parses the tar stream; every byte reaches it
 * through scan_read(), which also hashes the byte, hands it to the tee and
 * keeps the last few chunks so that the raw header blocks of the current
 * entry can be read back. libarchive is lenient where other readers (Go's
 * archive/tar, which containerd and Docker use) are strict or different:
 * unknown typeflags become regular files, a pax "size" on a directory skips
 * data, a volume header is dropped silently, a NUL ends a pax path. Looking at
 * the raw headers lets the scanner refuse every layer that two readers could
 * read differently. docs/layers.md lists the rules.
 */
#include "layer/scan.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/strutil.h"
#include "core/xalloc.h"
#include "layer/path.h"

/* Big reads keep libarchive's per-call overhead and the hashing efficient. */
#define SCAN_CHUNK (1u << 20)
/* Chunks kept: the one libarchive reads from and the ones before it, so the
 * headers of one entry (at most max_pax_bytes each) can be read back. */
#define SCAN_NCHUNKS 3
#define BLOCK 512
/* Extended headers in front of one entry: a pax global header, a pax header
 * or GNU long name and link make 3; libarchive stops (with a mere warning) at
 * 32. */
#define MAX_EXTENDED_HEADERS 8

struct chunk {
	char *data;
	uint64_t off;
	size_t len; /* 0: holds nothing */
};

struct scan {
	sc_reader *r;
	sc_writer *tee;
	const sconify_limits_t *l;
	const char *what;
	sc_hasher *hasher;
	struct chunk chunks[SCAN_NCHUNKS];
	unsigned cur;   /* chunk handed to libarchive last */
	bool pending;   /* chunks[cur] is filled but not handed over yet */
	bool eof;       /* r has ended */
	uint64_t total; /* bytes read from r */
	char *body;     /* scratch for an extended header's body */
	size_t body_alloc;
	sconify_error_t err; /* failure of r or the tee, passed on as it is */
};

static void scan_release(struct scan *s)
{
	for (unsigned i = 0; i < SCAN_NCHUNKS; i++)
		free(s->chunks[i].data);
	free(s->body);
	sc_hasher_free(s->hasher);
	sconify_error_free(&s->err);
}

SC_DEFINE_CLEANUP(struct archive *, archive_read_free)

/* Reads the next chunk of r into the oldest slot, hashing and teeing it.
 * *ret_c is NULL at the end of r. */
static int fill(struct scan *s, struct chunk **ret_c)
{
	*ret_c = NULL;
	if (s->eof)
		return 0;
	unsigned i = (s->cur + 1) % SCAN_NCHUNKS;
	struct chunk *c = &s->chunks[i];
	if (c->data == NULL)
		c->data = xmalloc(SCAN_CHUNK);
	size_t got;
	if (sc_reader_read_full(s->r, c->data, SCAN_CHUNK, &got, &s->err) < 0)
		return -1;
	if (got == 0) {
		s->eof = true;
		return 0;
	}
	if (got < SCAN_CHUNK)
		s->eof = true;
	sc_hasher_update(s->hasher, c->data, got);
	if (s->tee && sc_writer_write(s->tee, c->data, got, &s->err) < 0)
		return -1;
	c->off = s->total;
	c->len = got;
	s->total += got;
	s->cur = i;
	*ret_c = c;
	return 0;
}

static la_ssize_t scan_read(struct archive *a, void *userdata, const void **ret_buf)
{
	struct scan *s = userdata;
	struct chunk *c;
	if (s->pending) {
		s->pending = false;
		c = &s->chunks[s->cur];
	} else if (fill(s, &c) < 0) {
		archive_set_error(a, EIO, "%s", sconify_error_message(s->err));
		return -1;
	}
	if (c == NULL)
		return 0;
	*ret_buf = c->data;
	return (la_ssize_t)c->len;
}

/* Copies stream bytes [off, off+len) into dst; false unless all of them are
 * still held. */
static bool copy_range(const struct scan *s, uint64_t off, size_t len, void *dst)
{
	size_t covered = 0;
	for (unsigned i = 0; i < SCAN_NCHUNKS; i++) {
		const struct chunk *c = &s->chunks[i];
		if (c->len == 0)
			continue;
		uint64_t lo = off > c->off ? off : c->off;
		uint64_t hi = off + len < c->off + c->len ? off + len : c->off + c->len;
		if (lo >= hi)
			continue;
		memcpy((char *)dst + (lo - off), c->data + (lo - c->off), (size_t)(hi - lo));
		covered += (size_t)(hi - lo);
	}
	return covered == len;
}

static bool all_zero(const char *p, size_t n)
{
	static const char zero[4096];
	while (n > 0) {
		size_t k = n < sizeof(zero) ? n : sizeof(zero);
		if (memcmp(p, zero, k) != 0)
			return false;
		p += k;
		n -= k;
	}
	return true;
}

/* A numeric header field as libarchive's tar_atol reads it: base-256 when the
 * top bit of the first byte is set, else octal after optional blanks. */
bool sc_tar_number(const unsigned char *p, size_t n, uint64_t *ret)
{
	uint64_t v = 0;
	if (p[0] & 0x80) {
		if (p[0] == 0xff)
			return false; /* negative */
		v = p[0] & 0x7f;
		for (size_t i = 1; i < n; i++) {
			if (v > (UINT64_MAX >> 8))
				return false;
			v = (v << 8) | p[i];
		}
		*ret = v;
		return true;
	}
	size_t i = 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
		if (v > (UINT64_MAX >> 3))
			return false;
		v = (v << 3) | (uint64_t)(p[i] - '0');
	}
	*ret = v;
	return true;
}

static uint64_t round_block(uint64_t n)
{
	return (n + BLOCK - 1) & ~(uint64_t)(BLOCK - 1);
}

static const char *what_of(const struct scan *s)
{
	return s->what ? s->what : "layer";
}

/* "<what>: entry `<raw>': <problem>" */
__attribute__((format(printf, 5, 6))) static int entry_error(const struct scan *s, const char *raw,
                                                             sconify_error_kind_t kind, sconify_error_t *err,
                                                             const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	cleanup_free char *q = sc_quote(raw, SC_QUOTE_MAX);
	return sc_error(err, kind, 0, "%s: entry `%s': %s", what_of(s), q, msg);
}

static int wrap_entry(const struct scan *s, const char *raw, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(raw, SC_QUOTE_MAX);
	return sc_error_wrap(err, "%s: entry `%s'", what_of(s), q);
}

static const char *typeflag_str(char t, char buf[8])
{
	if (t >= 0x21 && t < 0x7f)
		snprintf(buf, 8, "%c", t);
	else
		snprintf(buf, 8, "\\x%02x", (unsigned char)t);
	return buf;
}

static bool key_is(const char *k, size_t klen, const char *want)
{
	return klen == strlen(want) && memcmp(k, want, klen) == 0;
}

/* One pax record "<len> <key>=<value>\n" at p (n bytes left). Returns false if
 * it does not parse; libarchive then decides what the body means. */
static bool pax_record(const char *p, size_t n, size_t *ret_len, const char **ret_key, size_t *ret_klen,
                       const char **ret_val, size_t *ret_vlen)
{
	size_t i = 0, len = 0;
	while (i < n && i < 20 && p[i] >= '0' && p[i] <= '9')
		len = len * 10 + (size_t)(p[i++] - '0');
	if (i == 0 || i >= n || p[i] != ' ' || len <= i + 1 || len > n)
		return false;
	/* the key ends at the first '=' before the record's last byte */
	const char *key = p + i + 1;
	const char *eq = memchr(key, '=', len - i - 2);
	if (eq == NULL)
		return false;
	*ret_len = len;
	*ret_key = key;
	*ret_klen = (size_t)(eq - key);
	*ret_val = eq + 1;
	*ret_vlen = (size_t)(p + len - 1 - (eq + 1)); /* without the '\n' */
	return true;
}

static bool sparse_key(const char *k, size_t klen)
{
	return (klen >= 11 && memcmp(k, "GNU.sparse.", 11) == 0) || key_is(k, klen, "SCHILY.realsize") ||
	       key_is(k, klen, "SUN.holesdata");
}

/* Checks the records of a pax extended header ('x'). */
static int check_pax(const struct scan *s, const char *raw, const char *body, size_t n, sconify_error_t *err)
{
	size_t pos = 0, len, klen, vlen;
	const char *key, *val;
	while (pos < n && pax_record(body + pos, n - pos, &len, &key, &klen, &val, &vlen)) {
		if (memchr(key, '\0', klen))
			return entry_error(s, raw, SCONIFY_ERR_INVALID, err,
			                   "pax header has a key with a NUL byte");
		if (sparse_key(key, klen))
			return entry_error(s, raw, SCONIFY_ERR_UNSUPPORTED, err,
			                   "sparse entries are not supported (pax `%.*s')", (int)klen, key);
		/* libarchive cuts these at the NUL, Go's archive/tar refuses them:
		 * the two would disagree on the name. */
		if ((key_is(key, klen, "path") || key_is(key, klen, "linkpath") ||
		     key_is(key, klen, "uname") || key_is(key, klen, "gname")) &&
		    memchr(val, '\0', vlen))
			return entry_error(s, raw, SCONIFY_ERR_INVALID, err, "pax `%.*s' has a NUL byte",
			                   (int)klen, key);
		pos += len;
	}
	return 0;
}

/* An extended header larger than max_pax_bytes: say what it carries when the
 * start of its body is still held (a long path, usually). */
static int oversize_error(const struct scan *s, const char *raw, char t, uint64_t body_off, uint64_t size,
                          sconify_error_t *err)
{
	unsigned long long max_path = (unsigned long long)s->l->max_path_bytes;
	if (t == 'L')
		return entry_error(s, raw, SCONIFY_ERR_LIMIT, err,
		                   "path longer than %llu bytes (GNU long name of %llu bytes)", max_path,
		                   (unsigned long long)size);
	if (t == 'K')
		return entry_error(s, raw, SCONIFY_ERR_LIMIT, err,
		                   "link target: path longer than %llu bytes (GNU long link of %llu bytes)",
		                   max_path, (unsigned long long)size);
	uint64_t pos = body_off, end = body_off + size;
	for (int i = 0; i < 1000 && pos < end; i++) {
		char head[64];
		size_t n = end - pos < sizeof(head) ? (size_t)(end - pos) : sizeof(head);
		if (!copy_range(s, pos, n, head))
			break;
		size_t j = 0;
		uint64_t len = 0;
		while (j < n && j < 19 && head[j] >= '0' && head[j] <= '9')
			len = len * 10 + (uint64_t)(head[j++] - '0');
		if (j == 0 || j >= n || head[j] != ' ' || len <= j)
			break;
		const char *key = head + j + 1;
		const char *eq = memchr(key, '=', n - j - 1);
		if (eq == NULL)
			break;
		size_t klen = (size_t)(eq - key);
		if ((key_is(key, klen, "path") || key_is(key, klen, "linkpath")) && len > max_path)
			return entry_error(s, raw, SCONIFY_ERR_LIMIT, err,
			                   "%spath longer than %llu bytes (pax `%.*s' record of %llu bytes)",
			                   key_is(key, klen, "linkpath") ? "link target: " : "", max_path,
			                   (int)klen, key, (unsigned long long)len);
		pos += len;
	}
	return entry_error(s, raw, SCONIFY_ERR_LIMIT, err,
	                   "extended header of %llu bytes is larger than the limit of %llu bytes",
	                   (unsigned long long)size, (unsigned long long)s->l->max_pax_bytes);
}

/* The ustar prefix field (155 bytes at 345) goes in front of the name. libarchive
 * uses it whenever the magic starts with "ustar" and is not GNU's "ustar  \0";
 * Go's archive/tar only for the magic "ustar\0", and for star headers (the
 * trailer "tar\0" at 508) only its first 131 bytes. Where they could build
 * different names, the header is refused. */
static bool prefix_agrees(const unsigned char *h)
{
	const unsigned char *prefix = h + 345;
	if (prefix[0] == '\0' || memcmp(h + 257, "ustar", 5) != 0 || memcmp(h + 257, "ustar  \0", 8) == 0)
		return true; /* libarchive does not use it */
	if (memcmp(h + 257, "ustar\0", 6) != 0)
		return false; /* Go reads a v7 header: no prefix */
	if (memcmp(h + 508, "tar\0", 4) == 0)
		return memchr(prefix, '\0', 131) != NULL;
	return true;
}

struct raw_info {
	char typeflag; /* of the header that carries the entry */
};

/* Reads back the header blocks of one entry, [start, end) of the stream, as
 * libarchive consumed them: extended headers ('x', 'g', 'L', 'K') and then the
 * entry's own header. raw names the entry in messages. diagnose: libarchive
 * failed on these headers and end is only where the held data ends; find a
 * reason of ours (an oversized or unsupported header) or return 0. */
static int inspect(struct scan *s, const char *raw, uint64_t start, uint64_t end, bool diagnose,
                   struct raw_info *ret, sconify_error_t *err)
{
	unsigned char blk[BLOCK];
	uint64_t off = start;
	unsigned n_x = 0, n_long = 0, n_longlink = 0;
	char tb[8];
	for (unsigned i = 0;; i++) {
		if (diagnose && (i > 64 || off + BLOCK > end))
			return 0;
		if (!copy_range(s, off, BLOCK, blk)) {
			if (diagnose)
				return 0;
			return entry_error(s, raw, SCONIFY_ERR_LIMIT, err,
			                   "extended headers larger than the limit of %llu bytes",
			                   (unsigned long long)s->l->max_pax_bytes);
		}
		char t = (char)blk[156];
		uint64_t size;
		bool size_ok = sc_tar_number(blk + 124, 12, &size);
		if (!diagnose && off + BLOCK == end) {
			/* libarchive reads a negative size as 0 with a warning, Go
			 * refuses the header */
			if (!size_ok)
				return entry_error(s, raw, SCONIFY_ERR_INVALID, err,
				                   "not a tar archive: bad size field");
			if (!prefix_agrees(blk))
				return entry_error(s, raw, SCONIFY_ERR_UNSUPPORTED, err,
				                   "unsupported entry type (a name prefix readers join "
				                   "differently)");
			ret->typeflag = t;
			break;
		}
		if (i >= MAX_EXTENDED_HEADERS)
			return entry_error(s, raw, SCONIFY_ERR_INVALID, err,
			                   "conflicting extended headers (more than %d)",
			                   MAX_EXTENDED_HEADERS);
		if (!size_ok) {
			if (diagnose)
				return 0;
			return entry_error(s, raw, SCONIFY_ERR_INVALID, err,
			                   "not a tar archive: bad size field");
		}
		switch (t) {
		case 'x':
		case 'g':
		case 'L':
		case 'K':
			break;
		case 'S':
			return entry_error(s, raw, SCONIFY_ERR_UNSUPPORTED, err,
			                   "sparse entries are not supported (GNU sparse header)");
		default:
			if (diagnose)
				return 0;
			/* libarchive drops 'V' volume headers and reads unknown types as
			 * regular files; Go-based readers do neither. */
			return entry_error(s, raw, SCONIFY_ERR_UNSUPPORTED, err,
			                   "unsupported entry type (typeflag `%s' before the entry's header)",
			                   typeflag_str(t, tb));
		}
		if (size > s->l->max_pax_bytes)
			return oversize_error(s, raw, t, off + BLOCK, size, err);
		if (t == 'x') {
			if (s->body_alloc < size + 1) {
				s->body = xrealloc(s->body, size + 1);
				s->body_alloc = size + 1;
			}
			if (!copy_range(s, off + BLOCK, (size_t)size, s->body)) {
				if (diagnose)
					return 0;
				return entry_error(s, raw, SCONIFY_ERR_LIMIT, err,
				                   "extended headers larger than the limit of %llu bytes",
				                   (unsigned long long)s->l->max_pax_bytes);
			}
			if (check_pax(s, raw, s->body, (size_t)size, err) < 0)
				return -1;
			n_x++;
		} else if (t == 'L') {
			n_long++;
		} else if (t == 'K') {
			n_longlink++;
		}
		off += BLOCK + round_block(size);
		if (!diagnose && off >= end)
			return entry_error(s, raw, SCONIFY_ERR_INVALID, err,
			                   "not a tar archive: headers end past the entry's data");
	}
	/* Readers disagree on which of several name sources wins (libarchive:
	 * the outermost header; Go: a GNU long name over pax). */
	if (n_x > 1 || n_long > 1 || n_longlink > 1 || (n_x > 0 && n_long + n_longlink > 0))
		return entry_error(s, raw, SCONIFY_ERR_INVALID, err,
		                   "conflicting extended headers (%u pax, %u long name, %u long link)", n_x,
		                   n_long, n_longlink);
	return 0;
}

static int archive_failure(struct scan *s, struct archive *a, sconify_error_t *err)
{
	if (s->err) {
		sc_error_move(err, &s->err);
		return -1;
	}
	const char *m = archive_error_string(a);
	if ((m && strstr(m, "runcated")) || (m == NULL && s->eof))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: truncated: %s", what_of(s),
		                m ? m : "the stream ends inside the archive");
	return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: not a tar archive: %s", what_of(s),
	                m ? m : "libarchive failed");
}

static bool conversion_warning(struct archive *a)
{
	/* libarchive converts pax names from UTF-8 to the locale's charset; when
	 * that fails it keeps the raw bytes and warns. We want the bytes. */
	const char *m = archive_error_string(a);
	return m && strstr(m, "can't be converted");
}

static int check_type(const struct scan *s, const char *raw, struct archive_entry *ae, char t,
                      sc_entry_type *ret_type, sconify_error_t *err)
{
	mode_t ft = archive_entry_filetype(ae);
	const char *hl = archive_entry_hardlink(ae);
	const char *sl = archive_entry_symlink(ae);
	char tb[8];
	sc_entry_type type;
	bool ok;
	switch (t) {
	case '0':
		type = SC_ENTRY_FILE;
		ok = ft == AE_IFREG && !hl && !sl;
		break;
	case '\0':
		/* the old "regular" flag; a name ending in '/' makes it a directory
		 * for libarchive and Go alike */
		type = ft == AE_IFDIR ? SC_ENTRY_DIR : SC_ENTRY_FILE;
		ok = (ft == AE_IFREG || ft == AE_IFDIR) && !hl && !sl;
		break;
	case '1':
		type = SC_ENTRY_HARDLINK;
		/* an empty link name leaves hl NULL: reported below */
		ok = !sl && (ft == 0 || ft == AE_IFREG);
		break;
	case '2':
		type = SC_ENTRY_SYMLINK;
		ok = ft == AE_IFLNK && !hl;
		break;
	case '3':
		type = SC_ENTRY_CHAR;
		ok = ft == AE_IFCHR && !hl && !sl;
		break;
	case '4':
		type = SC_ENTRY_BLOCK;
		ok = ft == AE_IFBLK && !hl && !sl;
		break;
	case '5':
		type = SC_ENTRY_DIR;
		ok = ft == AE_IFDIR && !hl && !sl;
		break;
	case '6':
		type = SC_ENTRY_FIFO;
		ok = ft == AE_IFIFO && !hl && !sl;
		break;
	case 'S':
		return entry_error(s, raw, SCONIFY_ERR_UNSUPPORTED, err,
		                   "sparse entries are not supported (GNU sparse header)");
	default:
		return entry_error(s, raw, SCONIFY_ERR_UNSUPPORTED, err,
		                   "unsupported entry type (typeflag `%s')", typeflag_str(t, tb));
	}
	if (!ok)
		/* e.g. typeflag '0' with a name ending in '/': a directory for
		 * libarchive, a file for Go */
		return entry_error(
		        s, raw, SCONIFY_ERR_UNSUPPORTED, err,
		        "unsupported entry type (typeflag `%s' that libarchive reads as another type)",
		        typeflag_str(t, tb));
	/* Only regular files carry data. libarchive skips a pax "size" on any
	 * type, Go ignores it on all but files: they would read different
	 * entries after it. */
	if (type != SC_ENTRY_FILE && archive_entry_size(ae) != 0)
		return entry_error(s, raw, SCONIFY_ERR_UNSUPPORTED, err,
		                   "unsupported entry type (typeflag `%s' with %lld bytes of data)",
		                   typeflag_str(t, tb), (long long)archive_entry_size(ae));
	*ret_type = type;
	return 0;
}

/* Validates one entry and hands it to the callback. */
static int scan_entry(struct scan *s, struct archive_entry *ae, uint64_t start, uint64_t end,
                      const sc_layer_scan_opts *o, sconify_error_t *err)
{
	const char *raw = archive_entry_pathname(ae);
	if (raw == NULL)
		raw = "";
	struct raw_info ri = {0};
	if (inspect(s, raw, start, end, false, &ri, err) < 0)
		return -1;

	if (archive_entry_sparse_count(ae) > 0)
		return entry_error(s, raw, SCONIFY_ERR_UNSUPPORTED, err, "sparse entries are not supported");

	sc_layer_entry e = {0};
	if (check_type(s, raw, ae, ri.typeflag, &e.type, err) < 0)
		return -1;

	cleanup_free char *path = NULL;
	if (sc_layer_path_normalize(raw, s->l, &path, err) < 0)
		return wrap_entry(s, raw, err);
	if (path[0] == '\0' && e.type != SC_ENTRY_DIR)
		/* umoci CVE-2021-29136: a symlink as the root sent later layers to the host */
		return entry_error(s, raw, SCONIFY_ERR_INVALID, err, "root must be a directory");

	cleanup_free char *hardlink = NULL;
	if (e.type == SC_ENTRY_SYMLINK) {
		const char *target = archive_entry_symlink(ae);
		if (target == NULL || target[0] == '\0')
			return entry_error(s, raw, SCONIFY_ERR_INVALID, err, "empty symlink target");
		if (strlen(target) > s->l->max_path_bytes)
			return entry_error(s, raw, SCONIFY_ERR_LIMIT, err,
			                   "symlink target: path longer than %llu bytes",
			                   (unsigned long long)s->l->max_path_bytes);
		if (sc_layer_symlink_escapes(path, target)) {
			cleanup_free char *q = sc_quote(target, SC_QUOTE_MAX);
			return entry_error(s, raw, SCONIFY_ERR_INVALID, err,
			                   "symlink target escapes the root: `%s'", q);
		}
		e.link = target;
	} else if (e.type == SC_ENTRY_HARDLINK) {
		const char *target = archive_entry_hardlink(ae);
		if (target == NULL)
			target = "";
		cleanup_free char *q = sc_quote(target, SC_QUOTE_MAX);
		if (target[0] == '\0')
			return entry_error(s, raw, SCONIFY_ERR_INVALID, err,
			                   "hard link target `': empty path");
		if (target[0] == '/')
			return entry_error(s, raw, SCONIFY_ERR_INVALID, err,
			                   "hard link target `%s' is absolute", q);
		if (sc_layer_path_normalize(target, s->l, &hardlink, err) < 0) {
			sc_error_wrap(err, "hard link target `%s'", q);
			return wrap_entry(s, raw, err);
		}
		if (hardlink[0] == '\0')
			return entry_error(s, raw, SCONIFY_ERR_INVALID, err,
			                   "hard link target `%s' is a directory (the root)", q);
		e.link = hardlink;
	}

	sc_path_whiteout wh;
	cleanup_free char *wh_target = NULL;
	if (sc_layer_path_whiteout(path, &wh, &wh_target, err) < 0)
		return wrap_entry(s, raw, err);

	if (o->on_entry == NULL)
		return 0;
	e.path = path;
	e.raw_path = raw;
	e.size = e.type == SC_ENTRY_FILE ? (uint64_t)archive_entry_size(ae) : 0;
	e.mode = (uint32_t)(archive_entry_mode(ae) & 07777);
	e.uid = (uint64_t)archive_entry_uid(ae);
	e.gid = (uint64_t)archive_entry_gid(ae);
	e.mtime = (int64_t)archive_entry_mtime(ae);
	if (e.type == SC_ENTRY_CHAR || e.type == SC_ENTRY_BLOCK) {
		e.devmajor = (uint32_t)archive_entry_rdevmajor(ae);
		e.devminor = (uint32_t)archive_entry_rdevminor(ae);
	}
	e.whiteout = wh == SC_PATH_WH_FILE     ? SC_WH_FILE
	             : wh == SC_PATH_WH_OPAQUE ? SC_WH_OPAQUE
	             : wh == SC_PATH_WH_META   ? SC_WH_META
	                                       : SC_WH_NONE;
	e.whiteout_target = wh_target;
	e.n_xattrs = (size_t)archive_entry_xattr_count(ae);
	e.offset = start;
	e.data_offset = end;
	e.ae = ae;
	int r = o->on_entry(o->userdata, &e, err);
	if (r < 0)
		return sc_error_wrap(err, "%s", what_of(s));
	return r == SC_SCAN_WANT_DATA && o->on_data && e.type == SC_ENTRY_FILE && e.size > 0
	               ? SC_SCAN_WANT_DATA
	               : 0;
}

/* The data of the current entry, to on_data (libarchive's blocks point into
 * the chunks: no copy). */
static int entry_data(struct scan *s, struct archive *a, const sc_layer_scan_opts *o, sconify_error_t *err)
{
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int rc = archive_read_data_block(a, &buf, &len, &off);
		if (rc == ARCHIVE_EOF)
			return 0;
		if (rc != ARCHIVE_OK)
			return archive_failure(s, a, err);
		if (len > 0 && o->on_data(o->userdata, buf, len, err) < 0)
			return sc_error_wrap(err, "%s", what_of(s));
	}
}

/* After libarchive's end of archive: [start, end) is what it consumed for the
 * end marker (pax global headers may come before it), the rest of the stream
 * may only be zeros, at most max_trailing_bytes of them. */
static int scan_trailer(struct scan *s, uint64_t start, uint64_t end, sconify_error_t *err)
{
	char blk[BLOCK];
	uint64_t off = start;
	bool marker = false;
	while (off + BLOCK <= end) {
		if (!copy_range(s, off, BLOCK, blk))
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: data after the end of the archive",
			                what_of(s));
		if (all_zero(blk, BLOCK)) {
			marker = true;
			off += BLOCK;
			continue;
		}
		/* Go's archive/tar refuses a non-zero block after a zero one */
		uint64_t size;
		if (marker || blk[156] != 'g' || !sc_tar_number((unsigned char *)blk + 124, 12, &size))
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: data after the end of the archive",
			                what_of(s));
		if (size > s->l->max_pax_bytes)
			return oversize_error(s, "(pax global header)", 'g', off + BLOCK, size, err);
		off += BLOCK + round_block(size);
	}

	/* The bytes read past end: the rest of the chunks held. */
	uint64_t trailing = 0;
	for (unsigned i = 0; i < SCAN_NCHUNKS; i++) {
		const struct chunk *c = &s->chunks[i];
		if (c->len == 0 || c->off + c->len <= end)
			continue;
		uint64_t lo = end > c->off ? end : c->off;
		if (!all_zero(c->data + (lo - c->off), (size_t)(c->off + c->len - lo)))
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: data after the end of the archive",
			                what_of(s));
		trailing += c->off + c->len - lo;
	}
	for (;;) {
		if (trailing > s->l->max_trailing_bytes)
			return sc_error(
			        err, SCONIFY_ERR_LIMIT, 0,
			        "%s: data after the end of the archive: more than %llu bytes of padding",
			        what_of(s), (unsigned long long)s->l->max_trailing_bytes);
		struct chunk *c;
		if (fill(s, &c) < 0) {
			sc_error_move(err, &s->err);
			return -1;
		}
		if (c == NULL)
			return 0;
		if (!all_zero(c->data, c->len))
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: data after the end of the archive",
			                what_of(s));
		trailing += c->len;
	}
}

int sc_layer_scan(sc_reader *r, const sc_layer_scan_opts *o, sc_digest *ret_diff_id, uint64_t *ret_size,
                  sconify_error_t *err)
{
	_cleanup_(scan_release) struct scan s = {
	        .r = r,
	        .tee = o->tee,
	        .l = o->limits,
	        .what = o->what,
	        .hasher = sc_hasher_new(SC_SHA256),
	        .cur = SCAN_NCHUNKS - 1,
	};

	/* Read the first chunk here: an empty stream is an empty layer (as Go's
	 * archive/tar reads it), which libarchive would not recognise. */
	struct chunk *first;
	if (fill(&s, &first) < 0) {
		sc_error_move(err, &s.err);
		return -1;
	}
	if (first != NULL) {
		s.pending = true;

		_cleanup_(archive_read_freep) struct archive *a = archive_read_new();
		if (a == NULL)
			abort();
		archive_read_support_format_tar(a);
		archive_read_support_filter_none(a);
		/* On macOS libarchive would fold "._name" entries into the next entry. */
		archive_read_set_options(a, "tar:!mac-ext");
		if (archive_read_open(a, &s, NULL, scan_read, NULL) != ARCHIVE_OK)
			return archive_failure(&s, a, err);

		uint64_t entries = 0, start = 0;
		for (;;) {
			struct archive_entry *ae;
			int rc = archive_read_next_header(a, &ae);
			uint64_t end = (uint64_t)archive_filter_bytes(a, 0);
			if (rc == ARCHIVE_EOF) {
				if (scan_trailer(&s, start, end, err) < 0)
					return -1;
				break;
			}
			/* ARCHIVE_RETRY (a bad checksum) would let libarchive hunt for
			 * the next header: any failure ends the scan */
			if (rc != ARCHIVE_OK && !(rc == ARCHIVE_WARN && conversion_warning(a))) {
				if (s.err == NULL) {
					/* name the entry by its first header (a pax header's
					 * name usually holds the file's) */
					char blk[BLOCK + 1] = {0};
					const char *name = "(unreadable header)";
					if (copy_range(&s, start, BLOCK, blk) && blk[0] != '\0') {
						blk[100] = '\0';
						name = blk;
					}
					struct raw_info ri;
					if (inspect(&s, name, start, s.total, true, &ri, err) < 0)
						return -1;
				}
				return archive_failure(&s, a, err);
			}
			if (++entries > o->limits->max_entries)
				return sc_error(err, SCONIFY_ERR_LIMIT, 0,
				                "%s: too many entries (more than %llu)", what_of(&s),
				                (unsigned long long)o->limits->max_entries);
			uint64_t hstart = (uint64_t)archive_read_header_position(a);
			if (hstart != start)
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: not a tar archive: header at %llu, expected at %llu",
				                what_of(&s), (unsigned long long)hstart,
				                (unsigned long long)start);
			int want = scan_entry(&s, ae, start, end, o, err);
			if (want < 0 || (want == SC_SCAN_WANT_DATA && entry_data(&s, a, o, err) < 0))
				return -1;
			if (archive_read_data_skip(a) != ARCHIVE_OK)
				return archive_failure(&s, a, err);
			start = (uint64_t)archive_filter_bytes(a, 0);
		}
	}

	if (ret_diff_id)
		sc_hasher_final(s.hasher, ret_diff_id);
	if (ret_size)
		*ret_size = s.total;
	return 0;
}
