/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "layer/compress.h"
#include "support.h"

#define MiB (1024u * 1024u)
#define WHAT "layer sha256:abc"

/* ---- helpers ---- */

/* Half random, half text, in alternating 4 KiB blocks: compresses like a layer. */
static char *gen_data(size_t len, uint32_t seed)
{
	char *d = xmalloc(len ? len : 1);
	uint32_t s = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		s ^= s << 13, s ^= s >> 17, s ^= s << 5;
		d[i] = (i / 4096) % 2 ? (char)(s >> 24) : "usr/bin/ lib etc\n"[(i * 7 + seed) % 17];
	}
	return d;
}

/* Bytes no compressor can shrink, as ciphertext. */
static void fill_random(char *d, size_t len, uint32_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < len; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		d[i] = (char)(s >> 56);
	}
}

/* Collects what is written; fails once more than fail_after bytes came. */
struct mem_writer {
	sc_writer base;
	sc_buf b;
	size_t fail_after;
};

static int mem_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	struct mem_writer *w = (struct mem_writer *)base;
	if (w->b.len + len > w->fail_after)
		return sc_error(err, SCONIFY_ERR_IO, 0, "disk full (test)");
	return sc_buf_append(&w->b, buf, len, "test output", err);
}

static void mem_writer_free(sc_writer *base)
{
	struct mem_writer *w = (struct mem_writer *)base;
	sc_buf_free(&w->b);
	free(w);
}

static const struct sc_writer_ops mem_writer_ops = {.write = mem_write, .free = mem_writer_free};

static struct mem_writer *mem_writer_new(size_t fail_after)
{
	struct mem_writer *w = xzalloc(sizeof(*w));
	w->base.ops = &mem_writer_ops;
	sc_buf_init(&w->b, SIZE_MAX);
	w->fail_after = fail_after;
	return w;
}

/* Compresses data, written in pieces of chunk bytes. */
static char *compress_mem(sc_compression c, int threads, const char *data, size_t len, size_t chunk,
                          size_t *ret_len)
{
	cleanup_error sconify_error_t err = NULL;
	struct mem_writer *mw = mem_writer_new(SIZE_MAX);
	cleanup_writer sc_writer *next = &mw->base;
	cleanup_writer sc_writer *w = sc_compress_writer_new(next, c, threads);
	for (size_t off = 0; off < len; off += chunk) {
		size_t k = len - off < chunk ? len - off : chunk;
		ck_assert_ok(sc_writer_write(w, data + off, k, &err), err);
	}
	ck_assert_ok(sc_writer_finish(w, &err), err);
	return sc_buf_steal(&mw->b, ret_len);
}

static sconify_limits_t default_limits(void)
{
	sconify_limits_t l;
	sconify_limits_default(&l);
	return l;
}

/* Decompresses in reads of bufsize bytes; on failure *ret_got says how many
 * bytes came out before it. */
static int decompress_mem(sc_compression c, const sconify_limits_t *l, const void *data, size_t len,
                          size_t bufsize, char **ret_out, size_t *ret_len, sconify_error_t *err)
{
	cleanup_reader sc_reader *r = sc_decompress_reader_new(sc_mem_reader_new(data, len), c, l, WHAT);
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	cleanup_free char *buf = xmalloc(bufsize);
	for (;;) {
		ssize_t n = sc_reader_read(r, buf, bufsize, err);
		if (n < 0) {
			*ret_len = b.len;
			return -1;
		}
		if (n == 0)
			break;
		sc_buf_append(&b, buf, (size_t)n, "out", NULL);
	}
	/* The end stays the end. */
	ck_assert_int_eq(sc_reader_read(r, buf, bufsize, err), 0);
	*ret_out = sc_buf_steal(&b, ret_len);
	return 0;
}

static void assert_decompresses_to(sc_compression c, const void *z, size_t zlen, const char *want,
                                   size_t want_len)
{
	cleanup_error sconify_error_t err = NULL;
	sconify_limits_t l = default_limits();
	cleanup_free char *out = NULL;
	size_t out_len = 0;
	ck_assert_ok(decompress_mem(c, &l, z, zlen, 100003, &out, &out_len, &err), err);
	ck_assert_uint_eq(out_len, want_len);
	ck_assert(memcmp(out, want, want_len) == 0);
}

static void assert_decompress_fails(sc_compression c, const sconify_limits_t *l, const void *z, size_t zlen,
                                    sconify_error_kind_t kind, const char *needle)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *out = NULL;
	size_t out_len = 0;
	int r = decompress_mem(c, l, z, zlen, 65536, &out, &out_len, &err);
	ck_assert_fails(r, err, kind, needle);
	ck_assert_msg(strncmp(sconify_error_message(err), WHAT ": ", strlen(WHAT) + 2) == 0,
	              "message does not start with what: %s", sconify_error_message(err));
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *p = sc_path_join(dir, name);
	ck_assert_ok(sc_write_file_atomic(p, data, len, 0644, &err), err);
}

static char *read_file(const char *dir, const char *name, size_t *ret_len)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *p = sc_path_join(dir, name);
	char *data = NULL;
	ck_assert_ok(sc_read_file(p, SIZE_MAX, &data, ret_len, &err), err);
	return data;
}

/* Runs a shell command in dir; the test fails unless it succeeds. */
__attribute__((format(printf, 2, 3))) static void sh(const char *dir, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *cmd = xvasprintf(fmt, ap);
	va_end(ap);
	cleanup_free char *full = xasprintf("cd '%s' && %s", dir, cmd);
	int r = system(full);
	ck_assert_msg(r == 0, "`%s' failed (%d)", cmd, r);
}

/* ---- detection ---- */

START_TEST(detect_recognises_magic_bytes)
{
	ck_assert_int_eq(sc_compression_detect("\x1f\x8b\x08\x00", 4), SC_COMP_GZIP);
	ck_assert_int_eq(sc_compression_detect("\x1f\x8b\x08", 3), SC_COMP_GZIP);
	ck_assert_int_eq(sc_compression_detect("\x1f\x8b", 2), SC_COMP_NONE);
	ck_assert_int_eq(sc_compression_detect("\x1f\x8b\x09", 3), SC_COMP_NONE);
	ck_assert_int_eq(sc_compression_detect("\x28\xb5\x2f\xfd", 4), SC_COMP_ZSTD);
	ck_assert_int_eq(sc_compression_detect("\x28\xb5\x2f", 3), SC_COMP_NONE);
	ck_assert_int_eq(sc_compression_detect("usr/", 4), SC_COMP_NONE);
	ck_assert_int_eq(sc_compression_detect("", 0), SC_COMP_NONE);
	ck_assert_str_eq(sc_compression_name(SC_COMP_NONE), "none");
	ck_assert_str_eq(sc_compression_name(SC_COMP_GZIP), "gzip");
	ck_assert_str_eq(sc_compression_name(SC_COMP_ZSTD), "zstd");
}
END_TEST

static const struct {
	const char *data;
	size_t len;
	sc_compression want;
} sniff_cases[] = {
        {"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10, SC_COMP_GZIP},
        {"\x28\xb5\x2f\xfd\x00", 5, SC_COMP_ZSTD},
        {"\x28\xb5\x2f\xfd", 4, SC_COMP_ZSTD},
        {"hello world", 11, SC_COMP_NONE},
        {"\x1f\x8b", 2, SC_COMP_NONE},
        {"a", 1, SC_COMP_NONE},
        {"", 0, SC_COMP_NONE},
};

START_TEST(sniff_detects_and_replays_the_whole_stream)
{
	cleanup_error sconify_error_t err = NULL;
	sc_compression c;
	sc_reader *r = NULL;
	ck_assert_ok(sc_compression_sniff(sc_mem_reader_new(sniff_cases[_i].data, sniff_cases[_i].len), &c,
	                                  &r, &err),
	             err);
	cleanup_reader sc_reader *owned = r;
	ck_assert_ptr_eq(owned, r); /* freed at the end of the test */
	ck_assert_int_eq(c, sniff_cases[_i].want);
	/* One byte at a time, across the replayed head and the rest. */
	char got[16];
	size_t n = 0;
	for (;;) {
		ssize_t k = sc_reader_read(r, got + n, 1, &err);
		ck_assert_ok(k, err);
		if (k == 0)
			break;
		n++;
		ck_assert_uint_le(n, sniff_cases[_i].len);
	}
	ck_assert_uint_eq(n, sniff_cases[_i].len);
	ck_assert(memcmp(got, sniff_cases[_i].data, n) == 0);
}
END_TEST

/* ---- round trips ---- */

static const size_t rt_sizes[] = {0, 1, 4096, MiB - 1, MiB, MiB + 1, 3 * MiB + 12345};

static void round_trip(sc_compression c, int threads)
{
	for (size_t i = 0; i < sizeof(rt_sizes) / sizeof(rt_sizes[0]); i++) {
		size_t len = rt_sizes[i];
		cleanup_free char *data = gen_data(len, (uint32_t)i);
		size_t zlen = 0;
		cleanup_free char *z = compress_mem(c, threads, data, len, 65536 + 17, &zlen);
		ck_assert_int_eq(sc_compression_detect(z, zlen),
		                 len == 0 && c == SC_COMP_NONE ? SC_COMP_NONE : c);
		assert_decompresses_to(c, z, zlen, data, len);
	}
}

START_TEST(gzip_round_trips)
{
	round_trip(SC_COMP_GZIP, 1);
	round_trip(SC_COMP_GZIP, 3);
}
END_TEST

START_TEST(zstd_round_trips)
{
	round_trip(SC_COMP_ZSTD, 1);
	round_trip(SC_COMP_ZSTD, 3);
}
END_TEST

START_TEST(none_passes_bytes_through)
{
	round_trip(SC_COMP_NONE, 1);
	cleanup_free char *data = gen_data(100000, 7);
	size_t zlen = 0;
	cleanup_free char *z = compress_mem(SC_COMP_NONE, 2, data, 100000, 999, &zlen);
	ck_assert_uint_eq(zlen, 100000);
	ck_assert(memcmp(z, data, zlen) == 0);
}
END_TEST

START_TEST(reader_works_with_one_byte_reads)
{
	cleanup_error sconify_error_t err = NULL;
	sconify_limits_t l = default_limits();
	cleanup_free char *data = gen_data(40000, 3);
	for (sc_compression c = SC_COMP_NONE; c <= SC_COMP_ZSTD; c++) {
		size_t zlen = 0;
		cleanup_free char *z = compress_mem(c, 1, data, 40000, 40000, &zlen);
		cleanup_free char *out = NULL;
		size_t out_len = 0;
		ck_assert_ok(decompress_mem(c, &l, z, zlen, 1, &out, &out_len, &err), err);
		ck_assert_uint_eq(out_len, 40000);
		ck_assert(memcmp(out, data, out_len) == 0);
	}
}
END_TEST

/* ---- what the writers produce ---- */

/* Walks the gzip members of z with zlib, one inflate stream each, checking
 * each header, that the members hold data in order, and that each starts on
 * a segment and ends on the next segment, a slot's end or the data's end.
 * Fills starts (up to max) with the input offsets the members start at;
 * returns the member count. z may be the output so far: whole says whether it
 * must hold all of data. */
static size_t walk_members(const unsigned char *z, size_t zlen, const char *data, size_t len, bool whole,
                           size_t *starts, size_t max)
{
	static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
	cleanup_free char *out = xmalloc(SC_GZIP_MEMBER);
	size_t off = 0, members = 0, total = 0;
	while (off < zlen) {
		ck_assert_uint_ge(zlen - off, sizeof(header));
		ck_assert_msg(memcmp(z + off, header, sizeof(header)) == 0, "member %zu header differs",
		              members);
		z_stream zs = {0};
		ck_assert_int_eq(inflateInit2(&zs, 16 + 15), Z_OK);
		zs.next_in = (unsigned char *)z + off;
		zs.avail_in = (uInt)(zlen - off);
		zs.next_out = (unsigned char *)out;
		zs.avail_out = SC_GZIP_MEMBER;
		ck_assert_int_eq(inflate(&zs, Z_FINISH), Z_STREAM_END);
		size_t slot_end = (total / SC_GZIP_MEMBER + 1) * SC_GZIP_MEMBER;
		size_t end = total + zs.total_out;
		ck_assert_msg(total % SC_GZIP_SEGMENT == 0, "member %zu starts at %zu", members, total);
		ck_assert_msg(end <= slot_end && (end % SC_GZIP_SEGMENT == 0 || end == len),
		              "member %zu ends at %zu", members, end);
		ck_assert_uint_le(end, len);
		ck_assert(memcmp(out, data + total, zs.total_out) == 0);
		if (members < max)
			starts[members] = total;
		total = end;
		off += zs.total_in;
		members++;
		inflateEnd(&zs);
	}
	if (whole)
		ck_assert_uint_eq(total, len);
	return members;
}

static size_t check_members(const unsigned char *z, size_t zlen, const char *data, size_t len)
{
	return walk_members(z, zlen, data, len, true, NULL, 0);
}

static size_t check_members_so_far(const unsigned char *z, size_t zlen, const char *data, size_t len)
{
	return walk_members(z, zlen, data, len, false, NULL, 0);
}

START_TEST(gzip_writer_cuts_members_with_fixed_headers)
{
	size_t len = 2 * MiB + 500;
	cleanup_free char *data = gen_data(len, 11);
	for (int threads = 1; threads <= 2; threads++) {
		size_t zlen = 0;
		cleanup_free unsigned char *z =
		        (unsigned char *)compress_mem(SC_COMP_GZIP, threads, data, len, 70000, &zlen);
		ck_assert_uint_eq(check_members(z, zlen, data, len), 3);
	}
}
END_TEST

START_TEST(gzip_writer_holds_at_most_two_members_per_thread)
{
	cleanup_error sconify_error_t err = NULL;
	size_t len = 24 * MiB;
	cleanup_free char *data = gen_data(len, 13);
	for (int threads = 1; threads <= 3; threads++) {
		struct mem_writer *mw = mem_writer_new(SIZE_MAX);
		cleanup_writer sc_writer *next = &mw->base;
		cleanup_writer sc_writer *w = sc_compress_writer_new(next, SC_COMP_GZIP, threads);
		for (size_t off = 0; off < len; off += MiB / 2) {
			ck_assert_ok(sc_writer_write(w, data + off, MiB / 2, &err), err);
			/* whatever was written in full has gone out, but for 2 * threads
			 * slots (this data is never cut into several members a slot) */
			size_t in_full = (off + MiB / 2) / MiB;
			size_t held = threads > 1 ? 2 * (size_t)threads : 0;
			size_t out = check_members_so_far((unsigned char *)mw->b.data, mw->b.len, data, len);
			ck_assert_uint_ge(out + held, in_full);
		}
		ck_assert_ok(sc_writer_finish(w, &err), err);
		ck_assert_uint_eq(check_members((unsigned char *)mw->b.data, mw->b.len, data, len), 24);
	}
}
END_TEST

/* The compressed size and the first deflate block type of each member. */
static size_t member_shapes(const unsigned char *z, size_t zlen, size_t *sizes, int *btypes, size_t max)
{
	size_t off = 0, n = 0;
	while (off < zlen && n < max) {
		z_stream zs = {0};
		unsigned char out[4096];
		ck_assert_int_eq(inflateInit2(&zs, 16 + 15), Z_OK);
		zs.next_in = (unsigned char *)z + off;
		zs.avail_in = (uInt)(zlen - off);
		int zr;
		do {
			zs.next_out = out;
			zs.avail_out = sizeof(out);
			zr = inflate(&zs, Z_NO_FLUSH);
		} while (zr == Z_OK);
		ck_assert_int_eq(zr, Z_STREAM_END);
		btypes[n] = (z[off + 10] >> 1) & 3; /* after the 10-byte header, no flags */
		sizes[n++] = zs.total_in;
		off += zs.total_in;
		inflateEnd(&zs);
	}
	return n;
}

START_TEST(gzip_stores_incompressible_segments_and_compresses_the_rest)
{
	const size_t seg = SC_GZIP_SEGMENT;
	/* slot 0: text; slot 1: random around one text segment; slot 2: random
	 * behind 2000 zero bytes (a tar header's padding in front of a compressed
	 * file); slot 3: random, then text; slot 4: random; then a random
	 * segment and a tail of 1000 zero bytes, too short to sample (the zeros
	 * also keep the last slot from being stored whole) */
	size_t len = 5 * MiB + seg + 1000;
	cleanup_free char *data = gen_data(len, 21);
	fill_random(data + MiB, MiB, 22);
	memcpy(data + MiB + 5 * seg, data, seg);
	memset(data + 2 * MiB, 0, 2000);
	fill_random(data + 2 * MiB + 2000, MiB - 2000, 23);
	fill_random(data + 3 * MiB, 4 * seg, 24);
	fill_random(data + 4 * MiB, MiB + seg, 25);
	memset(data + 5 * MiB + seg, 0, 1000);
	/* where each member starts, and whether it is stored */
	const size_t want_start[] = {0,       MiB,           MiB + 5 * seg, MiB + 6 * seg,
	                             2 * MiB, 2 * MiB + seg, 3 * MiB,       3 * MiB + 4 * seg,
	                             4 * MiB, 5 * MiB,       5 * MiB + seg};
	/* 1: stored; 0: compressed to under 3/4; -1: not checked (a segment
	 * mostly random, which level 6 may keep in stored blocks) */
	const int want_stored[] = {0, 1, 0, 1, -1, 1, 1, 0, 1, 1, 0};
	const size_t n = sizeof(want_start) / sizeof(want_start[0]);
	for (int threads = 1; threads <= 2; threads++) {
		size_t zlen = 0;
		cleanup_free unsigned char *z =
		        (unsigned char *)compress_mem(SC_COMP_GZIP, threads, data, len, MiB, &zlen);
		size_t starts[16], sizes[16];
		int btypes[16];
		ck_assert_uint_eq(walk_members(z, zlen, data, len, true, starts, 16), n);
		ck_assert_uint_eq(member_shapes(z, zlen, sizes, btypes, 16), n);
		for (size_t i = 0; i < n; i++) {
			ck_assert_uint_eq(starts[i], want_start[i]);
			size_t in = (i + 1 < n ? want_start[i + 1] : len) - want_start[i];
			if (want_stored[i] == 1) {
				ck_assert_msg(btypes[i] == 0, "member %zu: block type %d, not stored", i,
				              btypes[i]);
				/* stored blocks: 5 bytes per 64 KiB block, 18 for the wrapper */
				ck_assert_uint_le(sizes[i], in + 18 + 5 * (in / 65535 + 1));
			} else if (want_stored[i] == 0) {
				ck_assert_msg(btypes[i] != 0, "member %zu was stored", i);
				ck_assert_uint_lt(sizes[i], in * 3 / 4);
			}
		}
	}
}
END_TEST

/* One gzip member by zlib: a single deflate stream, as gzip(1) writes. */
static size_t zlib_member(const char *data, size_t len, unsigned char *out, size_t cap)
{
	z_stream zs = {0};
	ck_assert_int_eq(deflateInit2(&zs, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (unsigned char *)data;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	size_t n = zs.total_out;
	deflateEnd(&zs);
	return n;
}

START_TEST(reader_decodes_members_too_large_for_one_call_with_zlib)
{
	/* ours (small members), one 5 MiB member, ours again */
	size_t a = 300000, b = 5 * MiB, c = 2 * MiB + 7;
	cleanup_free char *data = gen_data(a + b + c, 71);
	fill_random(data + a, 3 * MiB, 72); /* > 2 MiB compressed, too */
	size_t za = 0, zc = 0;
	cleanup_free char *pa = compress_mem(SC_COMP_GZIP, 1, data, a, a, &za);
	cleanup_free char *pc = compress_mem(SC_COMP_GZIP, 1, data + a + b, c, c, &zc);
	size_t cap = za + b + b / 100 + 1024 + zc;
	cleanup_free unsigned char *z = xmalloc(cap);
	memcpy(z, pa, za);
	size_t zb = zlib_member(data + a, b, z + za, cap - za - zc);
	ck_assert_uint_gt(zb, 2 * MiB);
	memcpy(z + za + zb, pc, zc);
	assert_decompresses_to(SC_COMP_GZIP, z, za + zb + zc, data, a + b + c);
}
END_TEST

/* What the first len bytes of a compressed stream decode to, by zlib or
 * libzstd themselves (a cut stream decodes as far as it can). */
static size_t prefix_output(sc_compression c, const unsigned char *z, size_t len)
{
	static unsigned char out[256 * 1024];
	size_t total = 0;
	if (c == SC_COMP_NONE)
		return len;
	if (c == SC_COMP_GZIP) {
		z_stream zs = {0};
		ck_assert_int_eq(inflateInit2(&zs, 16 + 15), Z_OK);
		zs.next_in = (unsigned char *)z;
		zs.avail_in = (uInt)len;
		for (;;) {
			zs.next_out = out;
			zs.avail_out = sizeof(out);
			int r = inflate(&zs, Z_NO_FLUSH);
			total += sizeof(out) - zs.avail_out;
			if (r == Z_STREAM_END && zs.avail_in > 0) {
				ck_assert_int_eq(inflateReset(&zs), Z_OK); /* the next member */
				continue;
			}
			if (r != Z_OK || (zs.avail_in == 0 && zs.avail_out > 0))
				break;
		}
		inflateEnd(&zs);
		return total;
	}
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = {z, len, 0};
	for (;;) {
		ZSTD_outBuffer ob = {out, sizeof(out), 0};
		size_t r = ZSTD_decompressStream(d, &ob, &ib);
		ck_assert(!ZSTD_isError(r));
		total += ob.pos;
		if (ob.pos < ob.size && ib.pos == ib.size)
			break;
	}
	ZSTD_freeDCtx(d);
	return total;
}

/* The reader says after every read how much of its input is settled; the
 * settled prefix, decoded by zlib or libzstd on their own, must not reach past
 * the bound it gives. And the settled input keeps up with the reading: at the
 * end all but the slack is settled, so a check that nothing was settled could
 * not pass. */
static void assert_progress_bounds(sc_compression c, const unsigned char *z, size_t zlen, size_t plain_len)
{
	cleanup_error sconify_error_t err = NULL;
	sconify_limits_t l = default_limits();
	cleanup_reader sc_reader *r = sc_decompress_reader_new(sc_mem_reader_new(z, zlen), c, &l, WHAT);
	static char buf[7919]; /* reads that cut members and blocks anywhere */
	uint64_t last_in = 0, out = 0, checks = 0;
	for (;;) {
		ssize_t n = sc_reader_read(r, buf, sizeof(buf), &err);
		ck_assert_ok(n < 0 ? -1 : 0, err);
		out += (uint64_t)n;
		uint64_t in = 0, bound = 0;
		sc_decompress_progress(r, &in, &bound);
		ck_assert_uint_ge(in, last_in);
		ck_assert_uint_le(in, zlen);
		ck_assert_uint_ge(bound, out);
		if (in > last_in || n == 0) {
			ck_assert_uint_le(prefix_output(c, z, in), bound);
			checks++;
		}
		last_in = in;
		if (n == 0)
			break;
	}
	ck_assert_uint_eq(out, plain_len);
	ck_assert_uint_ge(last_in + 128 * 1024 + 64, zlen);
	ck_assert_uint_ge(checks, 5);
}

START_TEST(progress_bounds_what_the_settled_input_decodes_to)
{
	/* text, ciphertext and a long run of zeros (a prefix of which decodes to
	 * far more than its size) */
	size_t len = 9 * MiB;
	cleanup_free char *data = gen_data(len, 91);
	fill_random(data + MiB, 2 * MiB, 92);
	memset(data + 4 * MiB, 0, 3 * MiB);
	sc_compression comps[] = {SC_COMP_GZIP, SC_COMP_ZSTD, SC_COMP_NONE};
	for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
		size_t zlen = 0;
		cleanup_free char *z = compress_mem(comps[i], 2, data, len, 65536, &zlen);
		assert_progress_bounds(comps[i], (unsigned char *)z, zlen, len);
	}
	/* one member too large for libdeflate: zlib decodes it in steps */
	size_t cap = len + len / 100 + 1024;
	cleanup_free unsigned char *z = xmalloc(cap);
	size_t zlen = zlib_member(data, len, z, cap);
	assert_progress_bounds(SC_COMP_GZIP, z, zlen, len);
}
END_TEST

START_TEST(reader_checks_the_header_crc_of_a_member)
{
	/* a member with FHCRC and a wrong header CRC: zlib's verdict, corrupt */
	cleanup_free char *data = gen_data(100000, 73);
	cleanup_free unsigned char *z = xmalloc(200000);
	size_t n = zlib_member(data, 100000, z + 2, 200000 - 2);
	memmove(z, z + 2, 10);
	z[3] |= 0x02;                /* FHCRC */
	z[10] = (unsigned char)0xde; /* the CRC16 of the header it is not */
	z[11] = (unsigned char)0xad;
	sconify_limits_t l = default_limits();
	assert_decompress_fails(SC_COMP_GZIP, &l, z, n + 2, SCONIFY_ERR_INVALID, "corrupt");
	/* and with the right CRC it decodes */
	uint32_t crc = (uint32_t)crc32(0, z, 10);
	z[10] = (unsigned char)(crc & 0xff);
	z[11] = (unsigned char)((crc >> 8) & 0xff);
	assert_decompresses_to(SC_COMP_GZIP, z, n + 2, data, 100000);
}
END_TEST

START_TEST(compression_is_deterministic_for_any_thread_count)
{
	/* compressible slots, incompressible ones (stored by gzip) and one cut
	 * into members of both kinds */
	size_t len = 5 * MiB + 333;
	cleanup_free char *data = gen_data(len, 5);
	fill_random(data + 2 * MiB - 200000, 2 * MiB + 200100, 6);
	sc_compression comps[] = {SC_COMP_GZIP, SC_COMP_ZSTD};
	for (size_t ci = 0; ci < 2; ci++) {
		size_t ref_len = 0;
		cleanup_free char *ref = compress_mem(comps[ci], 1, data, len, MiB, &ref_len);
		const struct {
			int threads;
			size_t chunk;
		} runs[] = {{1, MiB}, {1, 4093}, {2, 65536}, {4, 3 * MiB + 1}, {0, 100000}};
		for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
			size_t n = 0;
			cleanup_free char *z =
			        compress_mem(comps[ci], runs[i].threads, data, len, runs[i].chunk, &n);
			ck_assert_msg(n == ref_len && memcmp(z, ref, n) == 0,
			              "%s with %d threads, writes of %zu: output differs",
			              sc_compression_name(comps[ci]), runs[i].threads, runs[i].chunk);
		}
	}
}
END_TEST

START_TEST(empty_input_gives_a_valid_stream)
{
	cleanup_free char *dir = sc_test_tmpdir();
	size_t glen = 0, zlen = 0;
	cleanup_free char *g = compress_mem(SC_COMP_GZIP, 2, "", 0, 1, &glen);
	cleanup_free char *z = compress_mem(SC_COMP_ZSTD, 2, "", 0, 1, &zlen);
	ck_assert_uint_gt(glen, 0);
	ck_assert_uint_gt(zlen, 0);
	assert_decompresses_to(SC_COMP_GZIP, g, glen, "", 0);
	assert_decompresses_to(SC_COMP_ZSTD, z, zlen, "", 0);
	write_file(dir, "e.gz", g, glen);
	write_file(dir, "e.zst", z, zlen);
	sh(dir, "gzip -dc e.gz > e1 && zstd -qdc e.zst > e2 && test ! -s e1 && test ! -s e2");
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(writer_passes_on_errors_of_next)
{
	size_t len = 3 * MiB;
	cleanup_free char *data = gen_data(len, 9);
	const struct {
		sc_compression c;
		int threads;
	} runs[] = {{SC_COMP_GZIP, 1},
	            {SC_COMP_GZIP, 2},
	            {SC_COMP_ZSTD, 1},
	            {SC_COMP_ZSTD, 2},
	            {SC_COMP_NONE, 1}};
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		cleanup_error sconify_error_t err = NULL;
		struct mem_writer *mw = mem_writer_new(100000);
		cleanup_writer sc_writer *next = &mw->base;
		cleanup_writer sc_writer *w = sc_compress_writer_new(next, runs[i].c, runs[i].threads);
		int r = 0;
		for (size_t off = 0; off < len && r == 0; off += 65536)
			r = sc_writer_write(w, data + off, 65536, &err);
		if (r == 0)
			r = sc_writer_finish(w, &err);
		ck_assert_fails(r, err, SCONIFY_ERR_IO, "disk full (test)");
		sconify_error_free(&err);
		/* and it stays failed */
		r = sc_writer_write(w, "x", 1, &err);
		if (r == 0)
			r = sc_writer_finish(w, &err);
		ck_assert_msg(r < 0, "%s: wrote on after a failure", sc_compression_name(runs[i].c));
	}
}
END_TEST

START_TEST(writer_refuses_writes_after_finish)
{
	for (sc_compression c = SC_COMP_NONE; c <= SC_COMP_ZSTD; c++) {
		cleanup_error sconify_error_t err = NULL;
		struct mem_writer *mw = mem_writer_new(SIZE_MAX);
		cleanup_writer sc_writer *next = &mw->base;
		cleanup_writer sc_writer *w = sc_compress_writer_new(next, c, 2);
		ck_assert_ok(sc_writer_write(w, "abc", 3, &err), err);
		ck_assert_ok(sc_writer_finish(w, &err), err);
		ck_assert_fails(sc_writer_write(w, "d", 1, &err), err, SCONIFY_ERR_USAGE,
		                "after it was finished");
	}
}
END_TEST

START_TEST(writer_freed_unfinished_does_not_leak_or_hang)
{
	cleanup_free char *data = gen_data(5 * MiB, 1);
	for (sc_compression c = SC_COMP_GZIP; c <= SC_COMP_ZSTD; c++) {
		cleanup_error sconify_error_t err = NULL;
		struct mem_writer *mw = mem_writer_new(SIZE_MAX);
		cleanup_writer sc_writer *next = &mw->base;
		sc_writer *w = sc_compress_writer_new(next, c, 4);
		ck_assert_ok(sc_writer_write(w, data, 5 * MiB, &err), err);
		sc_writer_free(w);
	}
}
END_TEST

/* ---- interoperability with the command line tools ---- */

START_TEST(our_streams_decompress_with_gzip_and_zstd_tools)
{
	cleanup_free char *dir = sc_test_tmpdir();
	size_t len = 3 * MiB + 77;
	cleanup_free char *data = gen_data(len, 21);
	write_file(dir, "data", data, len);
	for (int threads = 1; threads <= 2; threads++) {
		size_t glen = 0, zlen = 0;
		cleanup_free char *g = compress_mem(SC_COMP_GZIP, threads, data, len, 65536, &glen);
		cleanup_free char *z = compress_mem(SC_COMP_ZSTD, threads, data, len, 65536, &zlen);
		write_file(dir, "d.gz", g, glen);
		write_file(dir, "d.zst", z, zlen);
		sh(dir, "gzip -dc d.gz | cmp -s - data && gzip -t d.gz");
		sh(dir, "zstd -qdc d.zst | cmp -s - data && zstd -qt d.zst");
		/* the checksum flag is on */
		sh(dir, "zstd -lv d.zst 2>&1 | grep -q 'Check: XXH64'");
	}
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(reader_decompresses_gzip_tool_streams)
{
	cleanup_free char *dir = sc_test_tmpdir();
	size_t alen = 2 * MiB + 5, blen = 300000;
	cleanup_free char *ab = gen_data(alen + blen, 31);
	write_file(dir, "a", ab, alen);
	write_file(dir, "b", ab + alen, blen);
	write_file(dir, "empty", "", 0);
	/* -9; a pigz-like concatenation of members, an empty one included; -n
	 * keeps the name out, plain gzip puts it in (FNAME must be skipped) */
	sh(dir, "gzip -9 -c a > a9.gz && gzip -1 -n -c b > b1.gz && gzip -c empty > e.gz && "
	        "cat a9.gz e.gz b1.gz > ab.gz");
	size_t n = 0;
	cleanup_free char *a9 = read_file(dir, "a9.gz", &n);
	assert_decompresses_to(SC_COMP_GZIP, a9, n, ab, alen);
	cleanup_free char *cat = read_file(dir, "ab.gz", &n);
	assert_decompresses_to(SC_COMP_GZIP, cat, n, ab, alen + blen);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(reader_decompresses_zstd_tool_streams)
{
	cleanup_free char *dir = sc_test_tmpdir();
	size_t alen = 2 * MiB + 5, blen = 300000;
	cleanup_free char *ab = gen_data(alen + blen, 41);
	write_file(dir, "a", ab, alen);
	write_file(dir, "b", ab + alen, blen);
	/* --long=27 from a pipe keeps the 128 MiB window in the header: the
	 * largest we accept */
	sh(dir, "zstd -q -19 -c a > a19.zst && cat a | zstd -q --long=27 -c > a27.zst && "
	        "zstd -lv a27.zst 2>/dev/null | grep -q '(134217728 B)' && zstd -q -c b > b.zst && "
	        "cat a19.zst b.zst > ab.zst");
	size_t n = 0, a19_len = 0;
	cleanup_free char *a19 = read_file(dir, "a19.zst", &a19_len);
	assert_decompresses_to(SC_COMP_ZSTD, a19, a19_len, ab, alen);
	cleanup_free char *a27 = read_file(dir, "a27.zst", &n);
	assert_decompresses_to(SC_COMP_ZSTD, a27, n, ab, alen);
	cleanup_free char *cat = read_file(dir, "ab.zst", &n);
	assert_decompresses_to(SC_COMP_ZSTD, cat, n, ab, alen + blen);
	/* skippable frames (magic 0x184D2A5E, 5 bytes) before and after a frame */
	static const char skip[] = "\x5e\x2a\x4d\x18\x05\x00\x00\x00hello";
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_append(&b, skip, sizeof(skip) - 1, "s", NULL);
	sc_buf_append(&b, a19, a19_len, "s", NULL);
	sc_buf_append(&b, skip, sizeof(skip) - 1, "s", NULL);
	assert_decompresses_to(SC_COMP_ZSTD, b.data, b.len, ab, alen);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

/* ---- hostile streams ---- */

/* A stream of len zero bytes, compressed. */
static char *zeros_compressed(sc_compression c, size_t len, size_t *ret_len)
{
	cleanup_error sconify_error_t err = NULL;
	struct mem_writer *mw = mem_writer_new(SIZE_MAX);
	cleanup_writer sc_writer *next = &mw->base;
	cleanup_writer sc_writer *w = sc_compress_writer_new(next, c, 2);
	cleanup_free char *zero = xcalloc(1, MiB);
	for (size_t off = 0; off < len; off += MiB)
		ck_assert_ok(sc_writer_write(w, zero, len - off < MiB ? len - off : MiB, &err), err);
	ck_assert_ok(sc_writer_finish(w, &err), err);
	return sc_buf_steal(&mw->b, ret_len);
}

START_TEST(bomb_fails_on_expansion_ratio)
{
	sconify_limits_t l = {.ratio_floor_bytes = MiB, .max_expansion_ratio = 200};
	sc_limits_fill(&l);
	for (sc_compression c = SC_COMP_GZIP; c <= SC_COMP_ZSTD; c++) {
		size_t zlen = 0;
		cleanup_free char *z = zeros_compressed(c, 64 * MiB, &zlen);
		ck_assert_uint_lt(zlen * 200, 64 * MiB); /* the premise: it is a bomb */
		assert_decompress_fails(c, &l, z, zlen, SCONIFY_ERR_LIMIT, "expands more than 200 times");
	}
	/* zstd goes far beyond the default ratio too */
	sconify_limits_t d = {.ratio_floor_bytes = MiB};
	sc_limits_fill(&d);
	size_t zlen = 0;
	cleanup_free char *z = zeros_compressed(SC_COMP_ZSTD, 64 * MiB, &zlen);
	assert_decompress_fails(SC_COMP_ZSTD, &d, z, zlen, SCONIFY_ERR_LIMIT, "expands more than 1000 times");
}
END_TEST

START_TEST(bomb_fails_on_output_size)
{
	sconify_limits_t l = {.max_layer_bytes = 8 * MiB, .ratio_floor_bytes = 1ull << 40};
	sc_limits_fill(&l);
	for (sc_compression c = SC_COMP_NONE; c <= SC_COMP_ZSTD; c++) {
		/* exactly at the cap passes */
		size_t zlen = 0;
		cleanup_free char *at = zeros_compressed(c, 8 * MiB, &zlen);
		cleanup_error sconify_error_t err = NULL;
		cleanup_free char *out = NULL;
		size_t out_len = 0;
		ck_assert_ok(decompress_mem(c, &l, at, zlen, 65536, &out, &out_len, &err), err);
		ck_assert_uint_eq(out_len, 8 * MiB);
		/* one byte more fails, and no byte past the cap was handed out */
		cleanup_free char *over = zeros_compressed(c, 8 * MiB + 1, &zlen);
		int r = decompress_mem(c, &l, over, zlen, 65536, &out, &out_len, &err);
		ck_assert_fails(r, err, SCONIFY_ERR_LIMIT,
		                WHAT ": uncompressed data is larger than the limit");
		ck_assert_uint_le(out_len, 8 * MiB);
		/* and more than that too */
		free(steal_pointer(&over));
		over = zeros_compressed(c, 64 * MiB, &zlen);
		assert_decompress_fails(c, &l, over, zlen, SCONIFY_ERR_LIMIT,
		                        "larger than the limit of 8388608");
	}
}
END_TEST

START_TEST(none_never_trips_the_ratio)
{
	cleanup_error sconify_error_t err = NULL;
	sconify_limits_t l = {.ratio_floor_bytes = 1024, .max_expansion_ratio = 1};
	sc_limits_fill(&l);
	cleanup_free char *data = gen_data(3 * MiB, 2);
	cleanup_free char *out = NULL;
	size_t out_len = 0;
	ck_assert_ok(decompress_mem(SC_COMP_NONE, &l, data, 3 * MiB, 4096, &out, &out_len, &err), err);
	ck_assert_uint_eq(out_len, 3 * MiB);
}
END_TEST

START_TEST(zstd_window_above_128mib_fails)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_free char *data = gen_data(3 * MiB, 51);
	write_file(dir, "data", data, 3 * MiB);
	/* From a pipe the size is unknown, so the header keeps the 2 GiB window. */
	sh(dir, "cat data | zstd -q --long=31 -c > w.zst && zstd -lv w.zst 2>/dev/null | grep -q "
	        "'(2147483648 B)'");
	size_t n = 0;
	cleanup_free char *z = read_file(dir, "w.zst", &n);
	sconify_limits_t l = default_limits();
	assert_decompress_fails(SC_COMP_ZSTD, &l, z, n, SCONIFY_ERR_LIMIT, "window");
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(data_after_the_last_member_fails)
{
	sconify_limits_t l = default_limits();
	cleanup_free char *data = gen_data(100000, 61);
	for (sc_compression c = SC_COMP_GZIP; c <= SC_COMP_ZSTD; c++) {
		size_t zlen = 0;
		cleanup_free char *z = compress_mem(c, 1, data, 100000, 100000, &zlen);
		static const char *tails[] = {"garbage!", "\0\0\0\0\0\0\0\0", "x", "\x1f\x8b\x09"};
		static const size_t tail_lens[] = {8, 8, 1, 3};
		for (size_t t = 0; t < 4; t++) {
			cleanup_free char *bad = xmalloc(zlen + tail_lens[t]);
			memcpy(bad, z, zlen);
			memcpy(bad + zlen, tails[t], tail_lens[t]);
			assert_decompress_fails(c, &l, bad, zlen + tail_lens[t], SCONIFY_ERR_INVALID,
			                        "trailing data");
		}
	}
}
END_TEST

START_TEST(truncated_streams_fail)
{
	sconify_limits_t l = default_limits();
	cleanup_free char *data = gen_data(2 * MiB + 100, 71);
	for (sc_compression c = SC_COMP_GZIP; c <= SC_COMP_ZSTD; c++) {
		size_t zlen = 0;
		cleanup_free char *z = compress_mem(c, 2, data, 2 * MiB + 100, MiB, &zlen);
		size_t cuts[] = {0,        1,        2,        3,        5,        11,
		                 zlen / 3, zlen / 2, zlen - 9, zlen - 8, zlen - 4, zlen - 1};
		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
			assert_decompress_fails(c, &l, z, cuts[i], SCONIFY_ERR_INVALID, "truncated");
	}
	/* a gzip member cut in its header after a complete one; members are
	 * independent, so the first one is the stream of the first MiB */
	size_t zlen = 0, first = 0;
	cleanup_free char *two = compress_mem(SC_COMP_GZIP, 1, data, MiB + 1, MiB + 1, &zlen);
	free(compress_mem(SC_COMP_GZIP, 1, data, MiB, MiB, &first));
	ck_assert_uint_gt(zlen, first + 10);
	ck_assert_int_eq(sc_compression_detect(two + first, 3), SC_COMP_GZIP);
	assert_decompress_fails(SC_COMP_GZIP, &l, two, first + 2, SCONIFY_ERR_INVALID, "truncated");
	assert_decompress_fails(SC_COMP_GZIP, &l, two, first + 5, SCONIFY_ERR_INVALID, "truncated");
	assert_decompresses_to(SC_COMP_GZIP, two, first, data, MiB);
}
END_TEST

START_TEST(corrupt_streams_fail)
{
	sconify_limits_t l = default_limits();
	cleanup_free char *data = gen_data(300000, 81);
	for (sc_compression c = SC_COMP_GZIP; c <= SC_COMP_ZSTD; c++) {
		size_t zlen = 0;
		cleanup_free char *z = compress_mem(c, 1, data, 300000, 300000, &zlen);
		/* the checksum: gzip's CRC32 is 8 bytes from the end, zstd's XXH64 the last 4 */
		z[zlen - (c == SC_COMP_GZIP ? 8 : 2)] ^= 1;
		assert_decompress_fails(c, &l, z, zlen, SCONIFY_ERR_INVALID, "corrupt");
	}
	/* not the format at all */
	assert_decompress_fails(SC_COMP_GZIP, &l, "hello world", 11, SCONIFY_ERR_INVALID, "corrupt");
	assert_decompress_fails(SC_COMP_ZSTD, &l, "hello world", 11, SCONIFY_ERR_INVALID, "corrupt");
	/* a gzip header with a method other than deflate, a reserved flag */
	assert_decompress_fails(SC_COMP_GZIP, &l, "\x1f\x8b\x07\0\0\0\0\0\0\xff\x03\0\0\0\0\0\0\0\0\0", 20,
	                        SCONIFY_ERR_INVALID, "corrupt");
	assert_decompress_fails(SC_COMP_GZIP, &l, "\x1f\x8b\x08\xe0\0\0\0\0\0\xff\x03\0\0\0\0\0\0\0\0\0", 20,
	                        SCONIFY_ERR_INVALID, "corrupt");
	/* a zstd v0.7 legacy frame is refused by its magic */
	assert_decompress_fails(SC_COMP_ZSTD, &l, "\x27\xb5\x2f\xfd\0\0\0\0", 8, SCONIFY_ERR_INVALID,
	                        "corrupt");
}
END_TEST

START_TEST(failure_repeats_on_later_reads)
{
	cleanup_error sconify_error_t err = NULL;
	sconify_limits_t l = default_limits();
	cleanup_reader sc_reader *r =
	        sc_decompress_reader_new(sc_mem_reader_new("hello", 5), SC_COMP_GZIP, &l, WHAT);
	char buf[16];
	ck_assert_fails(sc_reader_read(r, buf, sizeof(buf), &err), err, SCONIFY_ERR_INVALID, "corrupt");
	sconify_error_free(&err);
	ck_assert_fails(sc_reader_read(r, buf, sizeof(buf), &err), err, SCONIFY_ERR_INVALID, "corrupt");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("compress");
	TCase *tc = tcase_create("compress");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, detect_recognises_magic_bytes);
	tcase_add_loop_test(tc, sniff_detects_and_replays_the_whole_stream, 0,
	                    sizeof(sniff_cases) / sizeof(sniff_cases[0]));
	tcase_add_test(tc, gzip_round_trips);
	tcase_add_test(tc, zstd_round_trips);
	tcase_add_test(tc, none_passes_bytes_through);
	tcase_add_test(tc, reader_works_with_one_byte_reads);
	tcase_add_test(tc, gzip_writer_cuts_members_with_fixed_headers);
	tcase_add_test(tc, gzip_writer_holds_at_most_two_members_per_thread);
	tcase_add_test(tc, gzip_stores_incompressible_segments_and_compresses_the_rest);
	tcase_add_test(tc, reader_decodes_members_too_large_for_one_call_with_zlib);
	tcase_add_test(tc, reader_checks_the_header_crc_of_a_member);
	tcase_add_test(tc, progress_bounds_what_the_settled_input_decodes_to);
	tcase_add_test(tc, compression_is_deterministic_for_any_thread_count);
	tcase_add_test(tc, empty_input_gives_a_valid_stream);
	tcase_add_test(tc, writer_passes_on_errors_of_next);
	tcase_add_test(tc, writer_refuses_writes_after_finish);
	tcase_add_test(tc, writer_freed_unfinished_does_not_leak_or_hang);
	tcase_add_test(tc, our_streams_decompress_with_gzip_and_zstd_tools);
	tcase_add_test(tc, reader_decompresses_gzip_tool_streams);
	tcase_add_test(tc, reader_decompresses_zstd_tool_streams);
	tcase_add_test(tc, bomb_fails_on_expansion_ratio);
	tcase_add_test(tc, bomb_fails_on_output_size);
	tcase_add_test(tc, none_never_trips_the_ratio);
	tcase_add_test(tc, zstd_window_above_128mib_fails);
	tcase_add_test(tc, data_after_the_last_member_fails);
	tcase_add_test(tc, truncated_streams_fail);
	tcase_add_test(tc, corrupt_streams_fail);
	tcase_add_test(tc, failure_repeats_on_later_reads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
