/* SPDX-License-Identifier: Apache-2.0 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/tarindex.h"
#include "archive/tarwriter.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "support.h"

/* ---- building archives byte by byte ---- */

enum { USTAR, GNU, V7 };
static const char ustar_magic[8] = {'u', 's', 't', 'a', 'r', '\0', '0', '0'};

static char *tmpdir;
static sconify_limits_t limits;

static void setup(void)
{
	tmpdir = sc_test_tmpdir();
	memset(&limits, 0, sizeof(limits));
	sc_limits_fill(&limits);
}

static void teardown(void)
{
	sc_test_tmpdir_cleanup(tmpdir);
	tmpdir = NULL;
}

static void octal(unsigned char *f, size_t w, uint64_t v)
{
	snprintf((char *)f, w, "%0*llo", (int)(w - 1), (unsigned long long)v);
}

static void fix_checksum(unsigned char *h, bool sgn)
{
	memset(h + 148, ' ', 8);
	long sum = 0;
	for (int i = 0; i < 512; i++)
		sum += sgn ? (signed char)h[i] : h[i];
	snprintf((char *)h + 148, 8, "%06lo", (unsigned long)sum & 0777777ul); /* six octal digits */
}

/* Appends a header; returns its offset in b. */
static size_t hdr_fmt(sc_buf *b, int fmt, char type, const char *name, uint64_t size, const char *link)
{
	unsigned char h[512] = {0};
	memcpy(h, name, strnlen(name, 100));
	octal(h + 100, 8, 0644);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, size);
	octal(h + 136, 12, 0);
	h[156] = (unsigned char)type;
	if (link)
		memcpy(h + 157, link, strnlen(link, 100));
	if (fmt == USTAR)
		memcpy(h + 257, ustar_magic, 8);
	else if (fmt == GNU)
		memcpy(h + 257, "ustar  \0", 8);
	fix_checksum(h, false);
	size_t off = b->len;
	sc_buf_append(b, h, 512, "tar", NULL);
	return off;
}

static size_t hdr(sc_buf *b, char type, const char *name, uint64_t size, const char *link)
{
	return hdr_fmt(b, USTAR, type, name, size, link);
}

static void data(sc_buf *b, const void *d, size_t n)
{
	static const char zeros[512];
	sc_buf_append(b, d, n, "tar", NULL);
	sc_buf_append(b, zeros, (512 - n % 512) % 512, "tar", NULL);
}

static void file(sc_buf *b, const char *name, const char *content)
{
	hdr(b, '0', name, strlen(content), NULL);
	data(b, content, strlen(content));
}

static void ext(sc_buf *b, char type, const char *payload, size_t n)
{
	hdr(b, type, type == 'x' ? "PaxHeaders.0/x" : "././@LongLink", n, NULL);
	data(b, payload, n);
}

static void pax(sc_buf *b, const char *records)
{
	ext(b, 'x', records, strlen(records));
}

static void end(sc_buf *b)
{
	static const char zeros[1024];
	sc_buf_append(b, zeros, sizeof(zeros), "tar", NULL);
}

static char *write_tmp(const char *name, const void *d, size_t n)
{
	char *path = sc_path_join(tmpdir, name);
	ck_assert_ok(sc_write_file_atomic(path, d, n, 0644, NULL), NULL);
	return path;
}

static int open_buf(sc_buf *b, sc_tar_index **ix, sconify_error_t *err)
{
	cleanup_free char *path = write_tmp("a.tar", b->data ? b->data : "", b->len);
	return sc_tar_index_open(path, &limits, ix, err);
}

/* The content of the regular file name resolves to. */
static char *read_name(sc_tar_index *ix, const char *name)
{
	cleanup_error sconify_error_t err = NULL;
	const sc_tar_entry *e;
	ck_assert_ok(sc_tar_index_lookup(ix, name, &e, &err), err);
	cleanup_reader sc_reader *r = sc_tar_index_open_entry(ix, e);
	char *d;
	size_t n;
	ck_assert_ok(sc_reader_read_all(r, 1 << 20, "entry", &d, &n, &err), err);
	ck_assert_uint_eq(n, e->size);
	return d;
}

static void assert_content(sc_tar_index *ix, const char *name, const char *want)
{
	cleanup_free char *d = read_name(ix, name);
	ck_assert_str_eq(d, want);
}

static int lookup(sc_tar_index *ix, const char *name, sconify_error_t *err)
{
	const sc_tar_entry *e;
	return sc_tar_index_lookup(ix, name, &e, err);
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *cmd = xvasprintf(fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* ---- formats ---- */

START_TEST(index_reads_ustar_entries_and_offsets)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	hdr(&b, '5', "dir/", 0, NULL);
	file(&b, "dir/a", "hello");
	hdr(&b, '2', "dir/s", 0, "a");
	hdr(&b, '1', "h", 0, "dir/a");
	hdr(&b, '6', "fifo", 0, NULL);
	file(&b, "empty", "");
	hdr(&b, '7', "contig", 3, NULL);
	data(&b, "abc", 3);
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);

	ck_assert_uint_eq(sc_tar_index_count(ix), 7);
	static const struct {
		const char *name;
		sc_tar_type type;
		uint64_t size, offset;
		const char *link;
	} want[] = {
	        {"dir", SC_TAR_DIR, 0, 0, NULL},        {"dir/a", SC_TAR_FILE, 5, 1024, NULL},
	        {"dir/s", SC_TAR_SYMLINK, 0, 0, "a"},   {"h", SC_TAR_HARDLINK, 0, 0, "dir/a"},
	        {"fifo", SC_TAR_OTHER, 0, 0, NULL},     {"empty", SC_TAR_FILE, 0, 3584, NULL},
	        {"contig", SC_TAR_FILE, 3, 4096, NULL},
	};
	for (size_t i = 0; i < 7; i++) {
		const sc_tar_entry *e = sc_tar_index_entry(ix, i);
		ck_assert_str_eq(e->name, want[i].name);
		ck_assert_int_eq(e->type, want[i].type);
		ck_assert_uint_eq(e->size, want[i].size);
		if (e->type == SC_TAR_FILE)
			ck_assert_uint_eq(e->offset, want[i].offset);
		if (want[i].link)
			ck_assert_str_eq(e->link, want[i].link);
		else
			ck_assert_ptr_null(e->link);
	}
	ck_assert_ptr_null(sc_tar_index_entry(ix, 7));
	assert_content(ix, "dir/a", "hello");
	assert_content(ix, "dir/s", "hello");
	assert_content(ix, "h", "hello");
	assert_content(ix, "empty", "");
	assert_content(ix, "contig", "abc");
}
END_TEST

START_TEST(index_joins_the_ustar_prefix)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	size_t off = hdr(&b, '0', "name", 2, NULL);
	memcpy(b.data + off + 345, "some/prefix", 11);
	fix_checksum((unsigned char *)b.data + off, false);
	data(&b, "xy", 2);
	/* GNU headers use that area for times: no prefix there. */
	off = hdr_fmt(&b, GNU, '0', "gnu", 1, NULL);
	memcpy(b.data + off + 345, "00000000000", 11);
	fix_checksum((unsigned char *)b.data + off, false);
	data(&b, "g", 1);
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	assert_content(ix, "some/prefix/name", "xy");
	assert_content(ix, "gnu", "g");
}
END_TEST

START_TEST(index_reads_v7_headers)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	hdr_fmt(&b, V7, '\0', "d/", 0, NULL); /* v7 directories end in a slash */
	hdr_fmt(&b, V7, '0', "d/f", 3, NULL);
	data(&b, "v7!", 3);
	hdr_fmt(&b, V7, '2', "d/l", 0, "f");
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix), 3);
	ck_assert_int_eq(sc_tar_index_entry(ix, 0)->type, SC_TAR_DIR);
	ck_assert_str_eq(sc_tar_index_entry(ix, 0)->name, "d");
	assert_content(ix, "d/l", "v7!");
}
END_TEST

START_TEST(index_reads_gnu_long_names_and_links)
{
	cleanup_error sconify_error_t err = NULL;
	char longname[301], longlink[310];
	memset(longname, 'n', 300);
	longname[300] = '\0';
	memcpy(longname, "dir/", 4);
	snprintf(longlink, sizeof(longlink), "../%s", longname);
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	ext(&b, 'L', longname, 301); /* with its NUL, as GNU tar writes it */
	hdr_fmt(&b, GNU, '0', "truncated-name", 4, NULL);
	data(&b, "long", 4);
	ext(&b, 'L', "other/link", 10);
	ext(&b, 'K', longlink, strlen(longlink)); /* without */
	hdr_fmt(&b, GNU, '2', "x", 0, "truncated-link");
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix), 2);
	ck_assert_str_eq(sc_tar_index_entry(ix, 0)->name, longname);
	ck_assert_str_eq(sc_tar_index_entry(ix, 1)->name, "other/link");
	ck_assert_str_eq(sc_tar_index_entry(ix, 1)->link, longlink);
	assert_content(ix, "other/link", "long");
}
END_TEST

START_TEST(index_reads_pax_path_linkpath_and_size)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	char name[201];
	memset(name, 'p', 200);
	name[200] = '\0';
	cleanup_free char *rec = xasprintf("210 path=%s\n20 mtime=1700000000\n", name);
	pax(&b, rec);
	/* pax size beats the header's size field, even an invalid one */
	pax(&b, "27 SCHILY.xattr.user.k=v w\n9 size=6\n");
	size_t off = hdr(&b, '0', "ignored", 0, NULL);
	memcpy(b.data + off + 124, "garbage!!!!", 11);
	fix_checksum((unsigned char *)b.data + off, false);
	data(&b, "sixsix", 6);
	pax(&b, "21 linkpath=pppppppp\n");
	hdr(&b, '2', "link", 0, "ignored");
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix), 2);
	ck_assert_str_eq(sc_tar_index_entry(ix, 0)->name, name);
	ck_assert_uint_eq(sc_tar_index_entry(ix, 0)->size, 6);
	ck_assert_str_eq(sc_tar_index_entry(ix, 1)->link, "pppppppp");
	assert_content(ix, name, "sixsix");
}
END_TEST

START_TEST(index_ignores_pax_global_headers)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	ext(&b, 'g', "15 path=global\n", 15);
	file(&b, "a", "1");
	/* An empty pax value unsets the key: the header name counts again. */
	pax(&b, "12 path=zzz\n8 path=\n");
	file(&b, "b", "2");
	ext(&b, 'g', "15 path=global\n", 15); /* stands alone: not an entry without its file */
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix), 2);
	assert_content(ix, "a", "1");
	assert_content(ix, "b", "2");
}
END_TEST

START_TEST(index_reads_base256_sizes)
{
	cleanup_error sconify_error_t err = NULL;
	uint64_t big = (8ull << 30) + 1;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	size_t off = hdr_fmt(&b, GNU, '0', "big", 0, NULL);
	sc_tar_put_number(b.data + off + 124, 12, big);
	ck_assert_uint_eq((unsigned char)b.data[off + 124], 0x80);
	fix_checksum((unsigned char *)b.data + off, false);
	/* The data is a hole: the file is made sparse by ftruncate. */
	cleanup_free char *path = sc_path_join(tmpdir, "big.tar");
	cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, b.data, b.len), 512);
	uint64_t total = 512 + (big + 511) / 512 * 512 + 1024;
	ck_assert_int_eq(ftruncate(fd, (off_t)total), 0);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(sc_tar_index_open_fd(dup(fd), "big.tar", &limits, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix), 1);
	ck_assert_uint_eq(sc_tar_index_entry(ix, 0)->size, big);
	ck_assert_uint_eq(sc_tar_index_entry(ix, 0)->offset, 512);

	/* negative base-256 numbers are refused */
	b.data[off + 124] = (char)0xff;
	fix_checksum((unsigned char *)b.data + off, false);
	ck_assert_int_eq(pwrite(fd, b.data, 512, 0), 512);
	sc_tar_index *ix2 = NULL;
	ck_assert_fails(sc_tar_index_open_fd(dup(fd), "big.tar", &limits, &ix2, &err), err,
	                SCONIFY_ERR_INVALID, "invalid size field");
}
END_TEST

START_TEST(index_accepts_signed_checksums)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	size_t off = hdr(&b, '0', "caf\xc3\xa9", 1, NULL);
	fix_checksum((unsigned char *)b.data + off, true); /* old Sun tar sums signed bytes */
	data(&b, "s", 1);
	off = hdr(&b, '0', "caf\xc3\xa9-unsigned", 1, NULL);
	data(&b, "u", 1);
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	assert_content(ix, "caf\xc3\xa9", "s");
	assert_content(ix, "caf\xc3\xa9-unsigned", "u");
}
END_TEST

START_TEST(index_rejects_bad_checksums)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	file(&b, "a", "1");
	size_t off = hdr(&b, '0', "b", 1, NULL);
	data(&b, "2", 1);
	end(&b);
	b.data[off + 1] = 'X'; /* changes the sum */
	sc_tar_index *ix = NULL;
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID,
	                "checksum mismatch at offset 1024");

	sc_buf_free(&b);
	sc_buf_puts(&b,
	            "{\"this is\": \"not a tar archive at all, but it is long enough to hold a header\"}");
	while (b.len < 2048)
		sc_buf_putc(&b, ' ');
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID,
	                "not a tar archive (header checksum mismatch)");

	/* a checksum field that is not a number */
	sc_buf_free(&b);
	off = hdr(&b, '0', "a", 0, NULL);
	memcpy(b.data + off + 148, "zzzzzz", 6);
	end(&b);
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "checksum");
}
END_TEST

START_TEST(index_rejects_truncated_archives)
{
	cleanup_error sconify_error_t err = NULL;
	sc_tar_index *ix = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);

	/* data short of the declared size */
	hdr(&b, '0', "a", 1000, NULL);
	char hundred[100] = {0};
	sc_buf_append(&b, hundred, sizeof(hundred), "tar", NULL);
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "truncated");

	/* a partial header */
	sc_buf_free(&b);
	file(&b, "a", "1");
	sc_buf_append(&b, "abcdefgh", 8, "tar", NULL);
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "truncated");

	/* the data's padding is missing */
	sc_buf_free(&b);
	hdr(&b, '0', "a", 3, NULL);
	sc_buf_append(&b, "abc", 3, "tar", NULL);
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "truncated");

	/* an extended header and then nothing */
	sc_buf_free(&b);
	file(&b, "a", "1");
	pax(&b, "10 path=b\n");
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "truncated");
	end(&b);
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "truncated");

	/* a pax payload cut short */
	sc_buf_free(&b);
	hdr(&b, 'x', "PaxHeaders/a", 600, NULL);
	sc_buf_append(&b, "10 path=b\n", 10, "tar", NULL);
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "truncated");
}
END_TEST

START_TEST(index_accepts_a_clean_end_without_zero_blocks)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	file(&b, "a", "1");
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix), 1);

	/* an empty file is an empty archive */
	sc_buf_free(&b);
	cleanup_tar_index sc_tar_index *ix2 = NULL;
	ck_assert_ok(open_buf(&b, &ix2, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix2), 0);
}
END_TEST

START_TEST(index_ignores_what_follows_two_zero_blocks)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	file(&b, "a", "1");
	end(&b);
	file(&b, "hidden", "2"); /* no tar reader looks past the end */
	sc_buf_append(&b, "trailing garbage", 16, "tar", NULL);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix), 1);
	ck_assert_fails(lookup(ix, "hidden", &err), err, SCONIFY_ERR_NOT_FOUND, "not found");

	/* one zero block and the end of the file is an end too */
	sc_buf_free(&b);
	file(&b, "a", "1");
	static const char zeros[512];
	sc_buf_append(&b, zeros, 512, "tar", NULL);
	cleanup_tar_index sc_tar_index *ix2 = NULL;
	ck_assert_ok(open_buf(&b, &ix2, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix2), 1);
}
END_TEST

START_TEST(index_rejects_a_lone_zero_block_before_more_entries)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	file(&b, "a", "1");
	static const char zeros[512];
	sc_buf_append(&b, zeros, 512, "tar", NULL);
	file(&b, "hidden", "2"); /* GNU tar stops before it, Go's archive/tar fails */
	end(&b);
	sc_tar_index *ix = NULL;
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID,
	                "a lone zero block at offset 1024, then data after the end of the archive");

	sc_buf_free(&b);
	file(&b, "a", "1");
	sc_buf_append(&b, zeros, 512, "tar", NULL);
	sc_buf_append(&b, zeros, 100, "tar", NULL);
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "truncated");
}
END_TEST

static const struct {
	const char *rec;
	size_t len; /* 0: strlen */
} bad_pax[] = {
        {"12 path=ab\n", 0},                      /* length says 12, record is 11 */
        {"10 path=ab\n", 0},                      /* length says 10 */
        {"x path=ab\n", 0},                       /* no length */
        {" 10 path=a\n", 0},                      /* no length */
        {"10path=abc\n", 0},                      /* no space */
        {"10 path=abc", 0},                       /* no newline */
        {"6 =ab\n", 0},                           /* empty key */
        {"9 pathab\n", 0},                        /* no '=' */
        {"99 path=a\n", 0},                       /* longer than the payload */
        {"0 \n", 0},                              /* impossible length */
        {"16 size=12abc34\n", 0},                 /* size not a number */
        {"29 size=99999999999999999999\n", 0},    /* size overflows */
        {"11 size=-1\n", 0},                      /* negative size */
        {"12 path=a\0b\n", 12},                   /* NUL in a path */
        {"999999999999999999999999 path=a\n", 0}, /* absurd length */
        {"10 path=a\n10 path=b\nxx", 0},          /* garbage after records */
};

START_TEST(index_rejects_malformed_pax_records)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	const char *rec = bad_pax[_i].rec;
	ext(&b, 'x', rec, bad_pax[_i].len ? bad_pax[_i].len : strlen(rec));
	file(&b, "a", "1");
	end(&b);
	sc_tar_index *ix = NULL;
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "pax header at offset 0");
}
END_TEST

START_TEST(index_rejects_bad_numeric_fields)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	size_t off = hdr(&b, '0', "a", 0, NULL);
	memcpy(b.data + off + 124, "0000001x000", 11);
	fix_checksum((unsigned char *)b.data + off, false);
	end(&b);
	sc_tar_index *ix = NULL;
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "invalid size field");

	/* leading spaces and a space terminator are fine, as in old tars */
	sc_buf_free(&b);
	off = hdr(&b, '0', "a", 0, NULL);
	memcpy(b.data + off + 124, "         3 ", 11);
	fix_checksum((unsigned char *)b.data + off, false);
	data(&b, "old", 3);
	end(&b);
	cleanup_tar_index sc_tar_index *ix2 = NULL;
	ck_assert_ok(open_buf(&b, &ix2, &err), err);
	assert_content(ix2, "a", "old");
}
END_TEST

START_TEST(index_finds_every_one_of_many_entries)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	for (int i = 0; i < 5000; i++) {
		char name[32], content[16];
		snprintf(name, sizeof(name), "d%d/f%d", i % 7, i);
		snprintf(content, sizeof(content), "%d", i);
		file(&b, name, content);
	}
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix), 5000);
	for (int i = 0; i < 5000; i += 7) {
		char name[32], content[16];
		snprintf(name, sizeof(name), "d%d/f%d", i % 7, i);
		snprintf(content, sizeof(content), "%d", i);
		assert_content(ix, name, content);
	}
}
END_TEST

START_TEST(index_skips_gnu_volume_labels)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	hdr_fmt(&b, GNU, 'V', "../not a path", 0, NULL);
	file(&b, "a", "1");
	/* pax size= unsets an earlier size: the header's counts */
	pax(&b, "9 size=9\n8 size=\n");
	file(&b, "b", "22");
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix), 2);
	assert_content(ix, "a", "1");
	assert_content(ix, "b", "22");
}
END_TEST

/* ---- limits ---- */

START_TEST(index_enforces_max_entries)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	for (int i = 0; i < 11; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		file(&b, name, "x");
	}
	end(&b);
	limits.max_entries = 11;
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	limits.max_entries = 10;
	sc_tar_index *ix2 = NULL;
	ck_assert_fails(open_buf(&b, &ix2, &err), err, SCONIFY_ERR_LIMIT, "too many entries");
}
END_TEST

START_TEST(index_enforces_max_pax_bytes)
{
	cleanup_error sconify_error_t err = NULL;
	limits.max_pax_bytes = 100;
	char big[200];
	memset(big, 'a', sizeof(big));
	sc_tar_index *ix = NULL;
	static const char types[] = {'x', 'L', 'K'};
	for (size_t t = 0; t < sizeof(types); t++) {
		cleanup_buf sc_buf b;
		sc_buf_init(&b, SIZE_MAX);
		ext(&b, types[t], big, 101);
		file(&b, "a", "1");
		end(&b);
		ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_LIMIT,
		                "larger than the limit of 100");
	}
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	ext(&b, 'L', big, 100);
	file(&b, "a", "1");
	end(&b);
	cleanup_tar_index sc_tar_index *ok = NULL;
	ck_assert_ok(open_buf(&b, &ok, &err), err);
}
END_TEST

START_TEST(index_enforces_max_path_bytes)
{
	cleanup_error sconify_error_t err = NULL;
	limits.max_path_bytes = 50;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	hdr(&b, '2', "l", 0, "0123456789012345678901234567890123456789012345678901234567890");
	end(&b);
	sc_tar_index *ix = NULL;
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_LIMIT, "path longer than 50 bytes");
}
END_TEST

/* ---- sparse files ---- */

START_TEST(index_marks_sparse_entries_as_other)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	/* old GNU sparse: the header says one extension block follows, which
	 * says none follows; then 4 data bytes */
	size_t off = hdr_fmt(&b, GNU, 'S', "old", 4, NULL);
	b.data[off + 482] = 1;
	fix_checksum((unsigned char *)b.data + off, false);
	static const char zeros[512];
	sc_buf_append(&b, zeros, 512, "tar", NULL);
	data(&b, "SSSS", 4);
	/* pax sparse 1.0 */
	pax(&b, "22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n23 GNU.sparse.name=new\n"
	        "27 GNU.sparse.realsize=100\n");
	hdr(&b, '0', "GNUSparseFile.0/new", 4, NULL);
	data(&b, "PPPP", 4);
	file(&b, "after", "ok");
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix), 3);
	ck_assert_int_eq(sc_tar_index_entry(ix, 0)->type, SC_TAR_OTHER);
	ck_assert_str_eq(sc_tar_index_entry(ix, 1)->name, "new");
	ck_assert_int_eq(sc_tar_index_entry(ix, 1)->type, SC_TAR_OTHER);
	ck_assert_fails(lookup(ix, "old", &err), err, SCONIFY_ERR_INVALID, "not a regular file");
	ck_assert_fails(lookup(ix, "new", &err), err, SCONIFY_ERR_INVALID, "not a regular file");
	assert_content(ix, "after", "ok");
	/* a reader over a non-file is empty */
	cleanup_reader sc_reader *r = sc_tar_index_open_entry(ix, sc_tar_index_entry(ix, 0));
	char c;
	ck_assert_int_eq(sc_reader_read(r, &c, 1, &err), 0);
}
END_TEST

START_TEST(index_marks_gnu_tar_sparse_files_as_other)
{
	cleanup_error sconify_error_t err = NULL;
	static const char *formats[] = {"gnu", "posix --sparse-version=1.0", "posix --sparse-version=0.1"};
	ck_assert_int_eq(
	        run("cd '%s' && mkdir src && truncate -s 10M src/sparse && echo tail >>src/sparse && "
	            "echo plain >src/plain",
	            tmpdir),
	        0);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		ck_assert_int_eq(run("cd '%s/src' && tar --format=%s -S -cf ../s.tar sparse plain", tmpdir,
		                     formats[i]),
		                 0);
		cleanup_free char *path = sc_path_join(tmpdir, "s.tar");
		cleanup_tar_index sc_tar_index *ix = NULL;
		ck_assert_ok(sc_tar_index_open(path, &limits, &ix, &err), err);
		ck_assert_fails(lookup(ix, "sparse", &err), err, SCONIFY_ERR_INVALID, "not a regular file");
		assert_content(ix, "plain", "plain\n");
	}
}
END_TEST

/* ---- names ---- */

START_TEST(index_normalises_names)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	hdr(&b, '5', "./", 0, NULL); /* the root: skipped */
	hdr(&b, '5', "/", 0, NULL);
	file(&b, "./a", "1");
	file(&b, "/b", "2");
	file(&b, "c//d", "3");
	file(&b, "e/./f", "4");
	hdr(&b, '5', "g/", 0, NULL);
	hdr(&b, '5', "//./h///", 0, NULL);
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	static const char *want[] = {"a", "b", "c/d", "e/f", "g", "h"};
	ck_assert_uint_eq(sc_tar_index_count(ix), 6);
	for (size_t i = 0; i < 6; i++)
		ck_assert_str_eq(sc_tar_index_entry(ix, i)->name, want[i]);
	/* lookups are normalised the same way */
	assert_content(ix, "./c/./d", "3");
	assert_content(ix, "/e//f/", "4");
}
END_TEST

START_TEST(index_rejects_dotdot_names)
{
	cleanup_error sconify_error_t err = NULL;
	static const char *names[] = {"../x", "a/../../x", "a/..", "..", "./../x"};
	sc_tar_index *ix = NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cleanup_buf sc_buf b;
		sc_buf_init(&b, SIZE_MAX);
		file(&b, names[i], "x");
		end(&b);
		ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "outside the archive");
	}
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	pax(&b, "16 path=a/../..\n");
	file(&b, "fine", "x");
	end(&b);
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID,
	                "entry `a/../..': path has a `..'");
	sc_buf_free(&b);
	ext(&b, 'L', "../long", 7);
	file(&b, "fine", "x");
	end(&b);
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "outside the archive");
}
END_TEST

START_TEST(index_rejects_empty_names_and_non_directory_roots)
{
	cleanup_error sconify_error_t err = NULL;
	sc_tar_index *ix = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	file(&b, "", "x");
	end(&b);
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "empty path");
	sc_buf_free(&b);
	hdr(&b, '2', ".", 0, "/etc"); /* umoci CVE-2021-29136 */
	end(&b);
	ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "root must be a directory");
}
END_TEST

START_TEST(index_rejects_duplicates)
{
	cleanup_error sconify_error_t err = NULL;
	sc_tar_index *ix = NULL;
	static const struct {
		char t1, t2;
		const char *n1, *n2;
	} cases[] = {
	        {'0', '0', "a", "./a"},
	        {'0', '2', "a", "a"},
	        {'5', '0', "a/", "a"},
	        {'0', '1', "a", "a"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_buf sc_buf b;
		sc_buf_init(&b, SIZE_MAX);
		hdr(&b, cases[i].t1, cases[i].n1, 0, "x");
		hdr(&b, cases[i].t2, cases[i].n2, 0, "x");
		end(&b);
		ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "entry `");
		ck_assert_ptr_nonnull(strstr(sconify_error_message(err), "duplicate"));
	}
	/* a directory listed twice is fine, and listed once */
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	hdr(&b, '5', "d/", 0, NULL);
	hdr(&b, '5', "./d", 0, NULL);
	end(&b);
	cleanup_tar_index sc_tar_index *ok = NULL;
	ck_assert_ok(open_buf(&b, &ok, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ok), 1);
}
END_TEST

START_TEST(index_rejects_data_on_dirs_and_symlinks)
{
	cleanup_error sconify_error_t err = NULL;
	sc_tar_index *ix = NULL;
	static const char types[] = {'5', '2', '3', '6'};
	for (size_t i = 0; i < sizeof(types); i++) {
		cleanup_buf sc_buf b;
		sc_buf_init(&b, SIZE_MAX);
		hdr(&b, types[i], "x", 512, "t");
		file(&b, "inside", "looks like a header to some readers");
		end(&b);
		ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_INVALID, "with 512 data bytes");
	}
	/* hard links may carry data, skipped by everyone */
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	file(&b, "t", "target");
	hdr(&b, '1', "h", 5, "t");
	data(&b, "extra", 5);
	end(&b);
	cleanup_tar_index sc_tar_index *ok = NULL;
	ck_assert_ok(open_buf(&b, &ok, &err), err);
	assert_content(ok, "h", "target");
}
END_TEST

/* ---- lookup ---- */

static sc_tar_index *link_archive(void)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	file(&b, "top", "top");
	hdr(&b, '5', "d/", 0, NULL);
	file(&b, "d/file", "deep");
	hdr(&b, '2', "d/rel", 0, "file");
	hdr(&b, '2', "d/up", 0, "../top");
	hdr(&b, '2', "d/abs", 0, "/d/file");
	hdr(&b, '2', "d/chain", 0, "rel");
	hdr(&b, '2', "d/dotty", 0, "./../d/./file");
	hdr(&b, '2', "dirlink", 0, "d");
	hdr(&b, '2', "e/f/g", 0, "../../d/rel");
	hdr(&b, '1', "hard", 0, "d/file");
	hdr(&b, '1', "hard2sym", 0, "d/up");
	hdr(&b, '1', "e/hardrel", 0, "./top"); /* from the root, not e/ */
	hdr(&b, '2', "escape", 0, "../x");
	hdr(&b, '2', "d/escape", 0, "../../x");
	hdr(&b, '2', "absescape", 0, "/../x");
	hdr(&b, '1', "hardescape", 0, "../top");
	hdr(&b, '2', "dangling", 0, "nothing");
	hdr(&b, '2', "loop1", 0, "loop2");
	hdr(&b, '2', "loop2", 0, "loop1");
	hdr(&b, '2', "self", 0, "self");
	hdr(&b, '2', "todir", 0, "d");
	hdr(&b, '2', "empty", 0, "");
	hdr(&b, '6', "fifo", 0, NULL);
	/* a chain of 16 links to top works, 17 does not */
	for (int i = 0; i < 17; i++) {
		char name[16], target[16];
		snprintf(name, sizeof(name), "c%d", i);
		if (i == 0)
			snprintf(target, sizeof(target), "top");
		else
			snprintf(target, sizeof(target), "c%d", i - 1);
		hdr(&b, '2', name, 0, target);
	}
	end(&b);
	sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	return ix;
}

static const struct {
	const char *name, *want;
} follows[] = {
        {"d/rel", "deep"},        {"d/up", "top"},          {"d/abs", "deep"},     {"d/chain", "deep"},
        {"d/dotty", "deep"},      {"dirlink/file", "deep"}, {"dirlink/up", "top"}, {"e/f/g", "deep"},
        {"hard", "deep"},         {"hard2sym", "top"},      {"e/hardrel", "top"},  {"todir/rel", "deep"},
        {"dirlink/../top", NULL}, /* a `..' in the name itself */
        {"c15", "top"},
};

START_TEST(lookup_follows_symlinks_and_hard_links)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_tar_index sc_tar_index *ix = link_archive();
	if (follows[_i].want == NULL) {
		ck_assert_fails(lookup(ix, follows[_i].name, &err), err, SCONIFY_ERR_INVALID,
		                "outside the archive");
		return;
	}
	assert_content(ix, follows[_i].name, follows[_i].want);
}
END_TEST

static const struct {
	const char *name;
	sconify_error_kind_t kind;
	const char *needle;
} lookup_fails[] = {
        {"escape", SCONIFY_ERR_INVALID, "`escape' leads outside the archive"},
        {"d/escape", SCONIFY_ERR_INVALID, "outside the archive"},
        {"absescape", SCONIFY_ERR_INVALID, "outside the archive"},
        {"hardescape", SCONIFY_ERR_INVALID, "outside the archive"},
        {"../top", SCONIFY_ERR_INVALID, "outside the archive"},
        {"loop1", SCONIFY_ERR_INVALID, "too many levels of symbolic links"},
        {"self", SCONIFY_ERR_INVALID, "too many levels of symbolic links"},
        {"c16", SCONIFY_ERR_INVALID, "too many levels of symbolic links"},
        {"missing", SCONIFY_ERR_NOT_FOUND, "`missing' not found"},
        {"d/missing", SCONIFY_ERR_NOT_FOUND, "not found"},
        {"dangling", SCONIFY_ERR_NOT_FOUND, "`dangling' not found"},
        {"top/x", SCONIFY_ERR_NOT_FOUND, "not found (`top' is a file)"},
        {"d", SCONIFY_ERR_INVALID, "`d' is a directory, not a regular file"},
        {"e", SCONIFY_ERR_NOT_FOUND, "`e' not found"}, /* a directory without an entry */
        {"todir", SCONIFY_ERR_INVALID, "not a regular file"},
        {"empty", SCONIFY_ERR_INVALID, "not a regular file"},
        {"", SCONIFY_ERR_INVALID, "not a regular file"},
        {"fifo", SCONIFY_ERR_INVALID, "is a special file, not a regular file"},
};

START_TEST(lookup_reports_escapes_loops_and_missing_names)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_tar_index sc_tar_index *ix = link_archive();
	ck_assert_fails(lookup(ix, lookup_fails[_i].name, &err), err, lookup_fails[_i].kind,
	                lookup_fails[_i].needle);
	ck_assert_ptr_nonnull(strstr(sconify_error_message(err), "a.tar'"));
}
END_TEST

/* ---- the container ---- */

START_TEST(index_refuses_compressed_archives)
{
	cleanup_error sconify_error_t err = NULL;
	static const struct {
		const char *magic;
		size_t n;
		const char *name;
	} magics[] = {{"\x1f\x8b\x08", 3, "gzip"}, {"\x28\xb5\x2f\xfd\x00", 5, "zstd"}};
	for (size_t i = 0; i < 2; i++) {
		cleanup_buf sc_buf b;
		sc_buf_init(&b, SIZE_MAX);
		sc_buf_append(&b, magics[i].magic, magics[i].n, "x", NULL);
		while (b.len < 1024)
			sc_buf_putc(&b, 'z');
		sc_tar_index *ix = NULL;
		ck_assert_fails(open_buf(&b, &ix, &err), err, SCONIFY_ERR_UNSUPPORTED, "compressed archive");
		ck_assert_ptr_nonnull(strstr(sconify_error_message(err), magics[i].name));
	}
}
END_TEST

START_TEST(open_fd_takes_the_fd)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *path = write_tmp("x.tar", "not a tar", 9);
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	sc_tar_index *ix = NULL;
	ck_assert_fails(sc_tar_index_open_fd(fd, "archive `x'", &limits, &ix, &err), err, SCONIFY_ERR_INVALID,
	                "archive `x': truncated");
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);

	fd = open(path, O_RDWR | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_ok(sc_tar_index_open_fd(fd, "archive `x'", &limits, &ix, &err), err);
	ck_assert_int_ge(fcntl(fd, F_GETFD), 0);
	sc_tar_index_free(ix);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);

	ck_assert_fails(sc_tar_index_open_fd(open(tmpdir, O_RDONLY), "dir", &limits, &ix, &err), err,
	                SCONIFY_ERR_UNSUPPORTED, "not a regular file");
	cleanup_free char *missing = sc_path_join(tmpdir, "missing.tar");
	ck_assert_fails(sc_tar_index_open(missing, &limits, &ix, &err), err, SCONIFY_ERR_NOT_FOUND,
	                "missing.tar");
}
END_TEST

#define HEX1 "1111111111111111111111111111111111111111111111111111111111111111"
#define HEX2 "2222222222222222222222222222222222222222222222222222222222222222"
#define HEXC "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

/* The four shapes of `docker save' output: where manifest.json's Config and
 * Layers paths lead. */
START_TEST(index_reads_docker_archive_shapes)
{
	cleanup_error sconify_error_t err = NULL;
	static const struct {
		const char *config, *layer;
	} paths[] = {
	        {HEXC ".json", HEX1 "/layer.tar"},            /* legacy docker */
	        {HEXC ".json", HEX2 "/layer.tar"},            /* containers/image: symlink */
	        {"blobs/sha256/" HEXC, "blobs/sha256/" HEX1}, /* moby 25 */
	        {"sha256:" HEXC, HEX1 ".tar.gz"},             /* crane */
	};
	for (int shape = 0; shape < 4; shape++) {
		cleanup_buf sc_buf b;
		sc_buf_init(&b, SIZE_MAX);
		switch (shape) {
		case 0:
			hdr(&b, '5', HEX1 "/", 0, NULL);
			file(&b, HEX1 "/VERSION", "1.0");
			file(&b, HEX1 "/json", "{}");
			file(&b, HEX1 "/layer.tar", "LAYER");
			file(&b, HEXC ".json", "CONFIG");
			break;
		case 1:
			file(&b, HEX1 ".tar", "LAYER");
			hdr(&b, '5', HEX2, 0, NULL);
			hdr(&b, '2', HEX2 "/layer.tar", 0, "../" HEX1 ".tar");
			file(&b, HEX2 "/json", "{}");
			file(&b, HEXC ".json", "CONFIG");
			break;
		case 2:
			hdr(&b, '5', "blobs/", 0, NULL);
			hdr(&b, '5', "blobs/sha256/", 0, NULL);
			file(&b, "blobs/sha256/" HEX1, "LAYER");
			file(&b, "blobs/sha256/" HEXC, "CONFIG");
			file(&b, "index.json", "{}");
			file(&b, "oci-layout", "{}");
			hdr(&b, '2', HEX2 "/layer.tar", 0, "../blobs/sha256/" HEX1);
			break;
		case 3:
			file(&b, "sha256:" HEXC, "CONFIG");
			file(&b, HEX1 ".tar.gz", "LAYER");
			break;
		}
		file(&b, "manifest.json", "[]");
		end(&b);
		cleanup_tar_index sc_tar_index *ix = NULL;
		ck_assert_ok(open_buf(&b, &ix, &err), err);
		assert_content(ix, paths[shape].config, "CONFIG");
		assert_content(ix, paths[shape].layer, "LAYER");
		assert_content(ix, "manifest.json", "[]");
		if (shape == 2)
			assert_content(ix, HEX2 "/layer.tar", "LAYER");
	}
}
END_TEST

struct reader_job {
	sc_tar_index *ix;
	int which;
	bool ok;
};

static void *read_many(void *arg)
{
	struct reader_job *j = arg;
	sconify_error_t err = NULL;
	j->ok = true;
	for (int round = 0; round < 50 && j->ok; round++) {
		for (int k = 0; k < 4; k++) {
			char name[16];
			snprintf(name, sizeof(name), "f%d", (j->which + k) % 4);
			const sc_tar_entry *e;
			if (sc_tar_index_lookup(j->ix, name, &e, &err) < 0) {
				j->ok = false;
				break;
			}
			sc_reader *r = sc_tar_index_open_entry(j->ix, e);
			char buf[7000];
			size_t got = 0;
			if (sc_reader_read_full(r, buf, sizeof(buf), &got, &err) < 0 || got != 5000)
				j->ok = false;
			for (size_t i = 0; i < got; i++)
				if (buf[i] != (char)('a' + (j->which + k) % 4))
					j->ok = false;
			sc_reader_free(r);
		}
	}
	sconify_error_free(&err);
	return NULL;
}

START_TEST(readers_work_in_parallel)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	char content[5000];
	for (int i = 0; i < 4; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		memset(content, 'a' + i, sizeof(content));
		hdr(&b, '0', name, sizeof(content), NULL);
		data(&b, content, sizeof(content));
	}
	end(&b);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(open_buf(&b, &ix, &err), err);
	pthread_t t[4];
	struct reader_job jobs[4];
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct reader_job){.ix = ix, .which = i};
		ck_assert_int_eq(pthread_create(&t[i], NULL, read_many, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert(jobs[i].ok);
	}
}
END_TEST

/* ---- archives written by other tools ---- */

START_TEST(index_reads_gnu_tar_formats)
{
	cleanup_error sconify_error_t err = NULL;
	static const char *formats[] = {"gnu", "oldgnu", "posix", "ustar", "v7"};
	char longname[140];
	memset(longname, 'l', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(
	        run("cd '%s' && mkdir -p src/dir && printf 'content' >src/dir/f && ln -s f src/dir/s "
	            "&& ln src/dir/f src/hard && : >src/empty && printf long >src/dir/%s",
	            tmpdir, longname),
	        0);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		bool long_ok = i < 3; /* ustar and v7 cannot store a 144-byte name */
		ck_assert_int_eq(run("cd '%s/src' && tar --format=%s -cf ../g.tar dir/f dir/s hard empty %s",
		                     tmpdir, formats[i], long_ok ? "dir/l*" : ""),
		                 0);
		cleanup_free char *path = sc_path_join(tmpdir, "g.tar");
		cleanup_tar_index sc_tar_index *ix = NULL;
		ck_assert_ok(sc_tar_index_open(path, &limits, &ix, &err), err);
		assert_content(ix, "dir/f", "content");
		assert_content(ix, "dir/s", "content");
		assert_content(ix, "hard", "content");
		assert_content(ix, "empty", "");
		if (long_ok) {
			cleanup_free char *ln = xasprintf("dir/%s", longname);
			assert_content(ix, ln, "long");
		}
	}
}
END_TEST

static void free_archive_write(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

START_TEST(index_reads_libarchive_formats)
{
	cleanup_error sconify_error_t err = NULL;
	static const char *formats[] = {"paxr", "pax", "gnutar", "ustar", "v7tar"};
	char longname[200];
	memset(longname, 'q', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		bool long_ok = i < 3;
		cleanup_free char *path = sc_path_join(tmpdir, "la.tar");
		{
			_cleanup_(free_archive_write) struct archive *a = archive_write_new();
			ck_assert_int_eq(archive_write_set_format_by_name(a, formats[i]), ARCHIVE_OK);
			ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
			struct archive_entry *e = archive_entry_new();
			static const struct {
				const char *name;
				int type;
				const char *content;
			} items[] = {
			        {"d", AE_IFDIR, NULL},    {"d/f", AE_IFREG, "from libarchive"},
			        {"d/s", AE_IFLNK, "f"},   {"e", AE_IFREG, ""},
			        {NULL, AE_IFREG, "long"},
			};
			for (size_t k = 0; k < 5; k++) {
				if (items[k].name == NULL && !long_ok)
					break;
				archive_entry_clear(e);
				archive_entry_set_pathname(e, items[k].name ? items[k].name : longname);
				archive_entry_set_filetype(e, (unsigned)items[k].type);
				archive_entry_set_perm(e, 0644);
				if (items[k].type == AE_IFLNK)
					archive_entry_set_symlink(e, items[k].content);
				if (items[k].type == AE_IFREG)
					archive_entry_set_size(e, (la_int64_t)strlen(items[k].content));
				ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
				if (items[k].type == AE_IFREG)
					archive_write_data(a, items[k].content, strlen(items[k].content));
			}
			archive_entry_free(e);
			ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
		}
		cleanup_tar_index sc_tar_index *ix = NULL;
		ck_assert_ok(sc_tar_index_open(path, &limits, &ix, &err), err);
		assert_content(ix, "d/f", "from libarchive");
		assert_content(ix, "d/s", "from libarchive");
		assert_content(ix, "e", "");
		if (long_ok)
			assert_content(ix, longname, "long");
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tarindex");
	TCase *tc = tcase_create("tarindex");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, index_reads_ustar_entries_and_offsets);
	tcase_add_test(tc, index_joins_the_ustar_prefix);
	tcase_add_test(tc, index_reads_v7_headers);
	tcase_add_test(tc, index_reads_gnu_long_names_and_links);
	tcase_add_test(tc, index_reads_pax_path_linkpath_and_size);
	tcase_add_test(tc, index_ignores_pax_global_headers);
	tcase_add_test(tc, index_reads_base256_sizes);
	tcase_add_test(tc, index_accepts_signed_checksums);
	tcase_add_test(tc, index_rejects_bad_checksums);
	tcase_add_test(tc, index_rejects_truncated_archives);
	tcase_add_test(tc, index_accepts_a_clean_end_without_zero_blocks);
	tcase_add_test(tc, index_ignores_what_follows_two_zero_blocks);
	tcase_add_test(tc, index_rejects_a_lone_zero_block_before_more_entries);
	tcase_add_loop_test(tc, index_rejects_malformed_pax_records, 0, sizeof(bad_pax) / sizeof(bad_pax[0]));
	tcase_add_test(tc, index_rejects_bad_numeric_fields);
	tcase_add_test(tc, index_finds_every_one_of_many_entries);
	tcase_add_test(tc, index_skips_gnu_volume_labels);
	tcase_add_test(tc, index_enforces_max_entries);
	tcase_add_test(tc, index_enforces_max_pax_bytes);
	tcase_add_test(tc, index_enforces_max_path_bytes);
	tcase_add_test(tc, index_marks_sparse_entries_as_other);
	tcase_add_test(tc, index_marks_gnu_tar_sparse_files_as_other);
	tcase_add_test(tc, index_normalises_names);
	tcase_add_test(tc, index_rejects_dotdot_names);
	tcase_add_test(tc, index_rejects_empty_names_and_non_directory_roots);
	tcase_add_test(tc, index_rejects_duplicates);
	tcase_add_test(tc, index_rejects_data_on_dirs_and_symlinks);
	tcase_add_loop_test(tc, lookup_follows_symlinks_and_hard_links, 0,
	                    sizeof(follows) / sizeof(follows[0]));
	tcase_add_loop_test(tc, lookup_reports_escapes_loops_and_missing_names, 0,
	                    sizeof(lookup_fails) / sizeof(lookup_fails[0]));
	tcase_add_test(tc, index_refuses_compressed_archives);
	tcase_add_test(tc, open_fd_takes_the_fd);
	tcase_add_test(tc, index_reads_docker_archive_shapes);
	tcase_add_test(tc, readers_work_in_parallel);
	tcase_add_test(tc, index_reads_gnu_tar_formats);
	tcase_add_test(tc, index_reads_libarchive_formats);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
