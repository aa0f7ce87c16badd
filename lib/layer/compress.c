/* SPDX-License-Identifier: Apache-2.0 */
#include "compress.h"

#include <assert.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "core/limits.h"
#include "core/xalloc.h"

/* The decoder refuses zstd frames whose window exceeds this (128 MiB), which
 * is also libzstd's default and what `zstd --long` without a value uses. */
#define ZSTD_WINDOW_LOG_MAX 27
/* Compressed bytes read from inner at a time. */
#define DEC_IN_CHUNK (64 * 1024)
/* gzip members that fit these buffers whole (ours: at most 1 MiB of input;
 * pigz --independent: 128 KiB by default) are decoded by libdeflate in one
 * call, about twice as fast as zlib. A member that does not fit, or that
 * libdeflate refuses for any reason, is decoded again from its start by
 * zlib, whose verdict stands, and zlib keeps the rest of the stream. */
#define LD_IN_MAX (2u << 20)
#define LD_OUT_MAX (2u << 20)
/* FLG bit of a gzip header CRC: zlib checks it, libdeflate skips it. */
#define GZIP_FHCRC 0x02

static const unsigned char gzip_magic[] = {0x1f, 0x8b, 0x08};
static const unsigned char zstd_magic[] = {0x28, 0xb5, 0x2f, 0xfd};

const char *sc_compression_name(sc_compression c)
{
	switch (c) {
	case SC_COMP_GZIP:
		return "gzip";
	case SC_COMP_ZSTD:
		return "zstd";
	case SC_COMP_NONE:
		break;
	}
	return "none";
}

sc_compression sc_compression_detect(const void *head, size_t len)
{
	if (len >= sizeof(gzip_magic) && memcmp(head, gzip_magic, sizeof(gzip_magic)) == 0)
		return SC_COMP_GZIP;
	if (len >= sizeof(zstd_magic) && memcmp(head, zstd_magic, sizeof(zstd_magic)) == 0)
		return SC_COMP_ZSTD;
	return SC_COMP_NONE;
}

/* ---- sniffing: a reader that replays the bytes already read ---- */

#define SNIFF_BYTES 4

struct replay_reader {
	sc_reader base;
	sc_reader *inner;
	unsigned char head[SNIFF_BYTES];
	size_t len, pos;
};

static ssize_t replay_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	struct replay_reader *r = (struct replay_reader *)base;
	if (r->pos < r->len) {
		size_t n = r->len - r->pos;
		if (n > len)
			n = len;
		memcpy(buf, r->head + r->pos, n);
		r->pos += n;
		return (ssize_t)n;
	}
	return sc_reader_read(r->inner, buf, len, err);
}

static void replay_free(sc_reader *base)
{
	struct replay_reader *r = (struct replay_reader *)base;
	sc_reader_free(r->inner);
	free(r);
}

static const struct sc_reader_ops replay_ops = {.read = replay_read, .free = replay_free};

int sc_compression_sniff(sc_reader *inner, sc_compression *ret_comp, sc_reader **ret_reader,
                         sconify_error_t *err)
{
	cleanup_reader sc_reader *owned = inner;
	unsigned char head[SNIFF_BYTES];
	size_t got = 0;
	if (sc_reader_read_full(owned, head, sizeof(head), &got, err) < 0)
		return -1;
	struct replay_reader *r = xzalloc(sizeof(*r));
	r->base.ops = &replay_ops;
	r->inner = steal_pointer(&owned);
	memcpy(r->head, head, got);
	r->len = got;
	*ret_comp = sc_compression_detect(head, got);
	*ret_reader = &r->base;
	return 0;
}

/* ---- decompression ---- */

struct dec_reader {
	sc_reader base;
	sc_reader *inner;
	sc_compression comp;
	sconify_limits_t limits;
	char *what;

	unsigned char *in; /* in_cap bytes; unused for NONE */
	size_t in_cap, in_pos, in_len;
	bool in_eof;

	uint64_t consumed; /* compressed bytes the decoder took */
	uint64_t produced; /* uncompressed bytes handed out */
	bool in_unit;      /* inside a gzip member or zstd frame */
	uint64_t units;    /* members or frames seen to their end */
	bool done;

	/* After a failure, every read repeats it. */
	sconify_error_kind_t fail_kind; /* 0 while healthy */
	char *fail_msg;

	z_stream zs;
	bool zs_ready;
	ZSTD_DCtx *zd;

	/* gzip members decoded whole by libdeflate (NULL once it gave up) and
	 * the output not handed out yet */
	struct libdeflate_decompressor *ld;
	unsigned char *ld_out;
	size_t ld_out_pos, ld_out_len;
};

__attribute__((format(printf, 4, 5))) static int dec_fail(struct dec_reader *r, sconify_error_t *err,
                                                          sconify_error_kind_t kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *detail = xvasprintf(fmt, ap);
	va_end(ap);
	free(r->fail_msg);
	r->fail_kind = kind;
	r->fail_msg = xasprintf("%s: %s", r->what, detail);
	return sc_error(err, kind, 0, "%s", r->fail_msg);
}

/* inner failed: its message already names what failed; keep it for later reads. */
static int dec_inner_failed(struct dec_reader *r, sconify_error_t *err)
{
	free(r->fail_msg);
	if (err && *err) {
		r->fail_kind = sconify_error_kind(*err);
		r->fail_msg = xstrdup(sconify_error_message(*err));
	} else {
		r->fail_kind = SCONIFY_ERR_GENERIC;
		r->fail_msg = xasprintf("%s: reading the compressed stream failed", r->what);
	}
	return -1;
}

static size_t dec_avail(const struct dec_reader *r)
{
	return r->in_len - r->in_pos;
}

/* Reads from inner until want bytes are buffered or inner ends, keeping the
 * bytes not consumed yet. */
static int dec_fill(struct dec_reader *r, size_t want, sconify_error_t *err)
{
	if (r->in_pos > 0) {
		memmove(r->in, r->in + r->in_pos, dec_avail(r));
		r->in_len -= r->in_pos;
		r->in_pos = 0;
	}
	while (!r->in_eof && r->in_len < want) {
		ssize_t n = sc_reader_read(r->inner, r->in + r->in_len, r->in_cap - r->in_len, err);
		if (n < 0)
			return dec_inner_failed(r, err);
		if (n == 0)
			r->in_eof = true;
		r->in_len += (size_t)n;
	}
	return 0;
}

/* Whether p (n bytes) starts a gzip member (1), could start one but is cut
 * short (0), or cannot (-1). */
static int gzip_starts_member(const unsigned char *p, size_t n)
{
	size_t k = n < sizeof(gzip_magic) ? n : sizeof(gzip_magic);
	if (memcmp(p, gzip_magic, k) != 0)
		return -1;
	return k == sizeof(gzip_magic) ? 1 : 0;
}

/* The same for a zstd frame: the zstd magic or a skippable frame's
 * (0x184D2A50..5F, little-endian). */
static int zstd_starts_frame(const unsigned char *p, size_t n)
{
	size_t k = n < sizeof(zstd_magic) ? n : sizeof(zstd_magic);
	bool zstd = memcmp(p, zstd_magic, k) == 0;
	bool skippable = (p[0] & 0xf0) == 0x50 && (k < 2 || p[1] == 0x2a) && (k < 3 || p[2] == 0x4d) &&
	                 (k < 4 || p[3] == 0x18);
	if (!zstd && !skippable)
		return -1;
	return k == sizeof(zstd_magic) ? 1 : 0;
}

/* At the start of the stream or after a member/frame: 1 when another one
 * starts, 0 at a clean end (r->done set), -1 on failure. */
static int dec_boundary(struct dec_reader *r, size_t need, int (*starts)(const unsigned char *, size_t),
                        const char *unit, sconify_error_t *err)
{
	const char *name = sc_compression_name(r->comp);
	if (dec_avail(r) < need && dec_fill(r, need, err) < 0)
		return -1;
	size_t n = dec_avail(r);
	if (n == 0) {
		if (r->units == 0)
			return dec_fail(r, err, SCONIFY_ERR_INVALID, "%s stream is truncated: it is empty",
			                name);
		r->done = true;
		return 0;
	}
	int s = starts(r->in + r->in_pos, n);
	if (s > 0)
		return 1;
	if (s == 0)
		return dec_fail(r, err, SCONIFY_ERR_INVALID,
		                "%s stream is truncated in the header of %s %llu", name, unit,
		                (unsigned long long)r->units + 1);
	if (r->units == 0)
		return dec_fail(r, err, SCONIFY_ERR_INVALID,
		                "%s stream is corrupt: it does not start with a %s %s", name, name, unit);
	return dec_fail(r, err, SCONIFY_ERR_INVALID, "%s stream has trailing data after %s %llu", name, unit,
	                (unsigned long long)r->units);
}

static int dec_truncated(struct dec_reader *r, const char *unit, sconify_error_t *err)
{
	return dec_fail(r, err, SCONIFY_ERR_INVALID, "%s stream is truncated in %s %llu",
	                sc_compression_name(r->comp), unit, (unsigned long long)r->units + 1);
}

static void ld_give_up(struct dec_reader *r)
{
	libdeflate_free_decompressor(r->ld);
	r->ld = NULL;
	free(r->ld_out);
	r->ld_out = NULL;
}

/* Decodes the member starting at the input position with libdeflate: true
 * when it did (its output is in ld_out), false when zlib must. */
static bool ld_member(struct dec_reader *r)
{
	if (r->in_len - r->in_pos < r->in_cap && !r->in_eof)
		return false; /* dec_fill failed to fill: cannot happen */
	const unsigned char *p = r->in + r->in_pos;
	size_t avail = dec_avail(r), used = 0, got = 0;
	if (avail < 10 || (p[3] & GZIP_FHCRC) != 0)
		return false;
	if (libdeflate_gzip_decompress_ex(r->ld, p, avail, r->ld_out, LD_OUT_MAX, &used, &got) !=
	    LIBDEFLATE_SUCCESS)
		return false;
	r->in_pos += used;
	r->consumed += used;
	r->units++;
	r->ld_out_pos = 0;
	r->ld_out_len = got;
	return true;
}

/* Each step returns the bytes it wrote to out (0: nothing yet, call again,
 * unless r->done) or -1. */
static ssize_t gzip_step(struct dec_reader *r, unsigned char *out, size_t len, sconify_error_t *err)
{
	if (r->ld_out_pos < r->ld_out_len) {
		size_t n = r->ld_out_len - r->ld_out_pos;
		if (n > len)
			n = len;
		memcpy(out, r->ld_out + r->ld_out_pos, n);
		r->ld_out_pos += n;
		return (ssize_t)n;
	}
	if (!r->in_unit) {
		int s = dec_boundary(r, sizeof(gzip_magic), gzip_starts_member, "member", err);
		if (s <= 0)
			return s;
		if (r->ld) {
			if (dec_fill(r, r->in_cap, err) < 0)
				return -1;
			if (ld_member(r))
				return 0; /* handed out from ld_out by the next call */
			/* Most likely a stream of large members: zlib from here on. */
			ld_give_up(r);
		}
		if (r->zs_ready) {
			if (inflateReset(&r->zs) != Z_OK)
				abort();
		} else {
			if (inflateInit2(&r->zs, 16 + 15) != Z_OK)
				abort(); /* only fails on allocation */
			r->zs_ready = true;
		}
		r->in_unit = true;
	}
	if (dec_avail(r) == 0 && dec_fill(r, 1, err) < 0)
		return -1;
	size_t avail = dec_avail(r);
	r->zs.next_in = r->in + r->in_pos;
	r->zs.avail_in = (uInt)avail;
	r->zs.next_out = out;
	r->zs.avail_out = (uInt)len;
	int zr = inflate(&r->zs, Z_NO_FLUSH);
	size_t used = avail - r->zs.avail_in;
	size_t got = len - r->zs.avail_out;
	r->in_pos += used;
	r->consumed += used;
	switch (zr) {
	case Z_STREAM_END:
		r->in_unit = false;
		r->units++;
		return (ssize_t)got;
	case Z_OK:
	case Z_BUF_ERROR: /* no progress possible: only when the input ran out */
		if (got == 0 && used == 0) {
			if (r->in_eof && dec_avail(r) == 0)
				return dec_truncated(r, "member", err);
			/* never seen: zlib progresses while it has input and room */
			return dec_fail(r, err, SCONIFY_ERR_INVALID, "gzip stream is corrupt in member %llu",
			                (unsigned long long)r->units + 1);
		}
		return (ssize_t)got;
	case Z_MEM_ERROR:
		abort();
	default:
		return dec_fail(r, err, SCONIFY_ERR_INVALID, "gzip stream is corrupt in member %llu (%s)",
		                (unsigned long long)r->units + 1, r->zs.msg ? r->zs.msg : "bad data");
	}
}

static ssize_t zstd_step(struct dec_reader *r, unsigned char *out, size_t len, sconify_error_t *err)
{
	if (!r->in_unit) {
		int s = dec_boundary(r, sizeof(zstd_magic), zstd_starts_frame, "frame", err);
		if (s <= 0)
			return s;
		r->in_unit = true;
	}
	if (dec_avail(r) == 0 && dec_fill(r, 1, err) < 0)
		return -1;
	ZSTD_inBuffer ib = {r->in + r->in_pos, dec_avail(r), 0};
	ZSTD_outBuffer ob = {out, len, 0};
	size_t zr = ZSTD_decompressStream(r->zd, &ob, &ib);
	r->in_pos += ib.pos;
	r->consumed += ib.pos;
	if (ZSTD_isError(zr)) {
		if (ZSTD_getErrorCode(zr) == ZSTD_error_frameParameter_windowTooLarge)
			return dec_fail(
			        r, err, SCONIFY_ERR_LIMIT,
			        "zstd frame %llu needs a window above the limit of %u MiB (2^%d bytes)",
			        (unsigned long long)r->units + 1, 1u << (ZSTD_WINDOW_LOG_MAX - 20),
			        ZSTD_WINDOW_LOG_MAX);
		if (ZSTD_getErrorCode(zr) == ZSTD_error_memory_allocation)
			abort();
		return dec_fail(r, err, SCONIFY_ERR_INVALID, "zstd stream is corrupt in frame %llu (%s)",
		                (unsigned long long)r->units + 1, ZSTD_getErrorName(zr));
	}
	if (zr == 0) { /* the frame is decoded and flushed */
		r->in_unit = false;
		r->units++;
	} else if (ob.pos == 0 && ib.pos == 0) {
		if (r->in_eof && dec_avail(r) == 0)
			return dec_truncated(r, "frame", err);
		/* never seen: libzstd progresses while it has input and room */
		return dec_fail(r, err, SCONIFY_ERR_INVALID, "zstd stream is corrupt in frame %llu",
		                (unsigned long long)r->units + 1);
	}
	return (ssize_t)ob.pos;
}

static ssize_t none_step(struct dec_reader *r, unsigned char *out, size_t len, sconify_error_t *err)
{
	ssize_t n = sc_reader_read(r->inner, out, len, err);
	if (n < 0)
		return dec_inner_failed(r, err);
	if (n == 0)
		r->done = true;
	r->consumed += (uint64_t)n;
	return n;
}

/* output > ratio * input, without overflowing */
static bool expands_too_much(uint64_t output, uint64_t input, uint64_t ratio)
{
	uint64_t allowed;
	if (__builtin_mul_overflow(input, ratio, &allowed))
		return false;
	return output > allowed;
}

static ssize_t dec_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	struct dec_reader *r = (struct dec_reader *)base;
	if (r->fail_kind != 0)
		return sc_error(err, r->fail_kind, 0, "%s", r->fail_msg);
	/* Never produce more than one byte past the cap, so a bomb is stopped
	 * before it fills the caller's buffer. */
	uint64_t left = r->limits.max_layer_bytes - r->produced;
	if (left < len)
		len = (size_t)left + 1;
	if (len > (1u << 30)) /* zlib counts in uInt */
		len = 1u << 30;
	for (;;) {
		if (r->done || len == 0)
			return 0;
		ssize_t n;
		switch (r->comp) {
		case SC_COMP_GZIP:
			n = gzip_step(r, buf, len, err);
			break;
		case SC_COMP_ZSTD:
			n = zstd_step(r, buf, len, err);
			break;
		default:
			n = none_step(r, buf, len, err);
			break;
		}
		if (n < 0)
			return -1;
		if (n == 0)
			continue;
		r->produced += (uint64_t)n;
		if (r->produced > r->limits.max_layer_bytes)
			return dec_fail(r, err, SCONIFY_ERR_LIMIT,
			                "uncompressed data is larger than the limit of %llu bytes",
			                (unsigned long long)r->limits.max_layer_bytes);
		if (r->produced > r->limits.ratio_floor_bytes &&
		    expands_too_much(r->produced, r->consumed, r->limits.max_expansion_ratio))
			return dec_fail(r, err, SCONIFY_ERR_LIMIT,
			                "%s data expands more than %llu times (%llu bytes from %llu)",
			                sc_compression_name(r->comp),
			                (unsigned long long)r->limits.max_expansion_ratio,
			                (unsigned long long)r->produced, (unsigned long long)r->consumed);
		return n;
	}
}

static void dec_free(sc_reader *base)
{
	struct dec_reader *r = (struct dec_reader *)base;
	if (r->zs_ready)
		inflateEnd(&r->zs);
	ZSTD_freeDCtx(r->zd);
	ld_give_up(r);
	sc_reader_free(r->inner);
	free(r->in);
	free(r->what);
	free(r->fail_msg);
	free(r);
}

static const struct sc_reader_ops dec_ops = {.read = dec_read, .free = dec_free};

sc_reader *sc_decompress_reader_new(sc_reader *inner, sc_compression c, const sconify_limits_t *limits,
                                    const char *what)
{
	struct dec_reader *r = xzalloc(sizeof(*r));
	r->base.ops = &dec_ops;
	r->inner = inner;
	r->comp = c;
	r->limits = *limits;
	sc_limits_fill(&r->limits); /* a zero cap would read as "nothing allowed" */
	r->what = xstrdup(what);
	r->in_cap = DEC_IN_CHUNK;
	if (c == SC_COMP_GZIP) {
		r->ld = libdeflate_alloc_decompressor();
		if (r->ld == NULL)
			abort(); /* only fails on allocation */
		r->ld_out = xmalloc(LD_OUT_MAX);
		r->in_cap = LD_IN_MAX;
	}
	if (c == SC_COMP_GZIP || c == SC_COMP_ZSTD)
		r->in = xmalloc(r->in_cap);
	if (c == SC_COMP_ZSTD) {
		r->zd = ZSTD_createDCtx();
		if (r->zd == NULL ||
		    ZSTD_isError(ZSTD_DCtx_setParameter(r->zd, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX)))
			abort();
	}
	return &r->base;
}

/* Input the decoders may have taken without decoding it yet, and output they
 * may have decoded without handing it out: a zstd block buffered whole (at
 * most 128 KiB with its header) or decoded and not flushed (128 KiB), zlib's
 * bit buffer (8 bytes) and a pending match (258 bytes). libdeflate's held
 * output is counted exactly. */
#define SETTLE_IN_SLACK (128u * 1024 + 64)
#define SETTLE_OUT_SLACK (256u * 1024)

void sc_decompress_progress(sc_reader *base, uint64_t *ret_in, uint64_t *ret_out_bound)
{
	assert(base->ops == &dec_ops);
	const struct dec_reader *r = (const struct dec_reader *)base;
	if (r->comp == SC_COMP_NONE) {
		*ret_in = r->consumed;
		*ret_out_bound = r->produced;
		return;
	}
	*ret_in = r->consumed > SETTLE_IN_SLACK ? r->consumed - SETTLE_IN_SLACK : 0;
	*ret_out_bound = r->produced + (r->ld_out_len - r->ld_out_pos) + SETTLE_OUT_SLACK;
}

/* ---- compression ---- */

static int writer_finished_error(const char *name, sconify_error_t *err)
{
	return sc_error(err, SCONIFY_ERR_USAGE, 0, "%s stream written to after it was finished", name);
}

static int writer_failed_error(const char *name, sconify_error_t *err)
{
	return sc_error(err, SCONIFY_ERR_GENERIC, 0, "%s stream: an earlier write failed", name);
}

/* NONE */

struct plain_writer {
	sc_writer base;
	sc_writer *next;
	bool finished, failed;
};

static int plain_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	struct plain_writer *w = (struct plain_writer *)base;
	if (w->failed)
		return writer_failed_error("uncompressed", err);
	if (w->finished)
		return writer_finished_error("uncompressed", err);
	if (sc_writer_write(w->next, buf, len, err) < 0) {
		w->failed = true;
		return -1;
	}
	return 0;
}

static int plain_finish(sc_writer *base, sconify_error_t *err)
{
	struct plain_writer *w = (struct plain_writer *)base;
	if (w->failed)
		return writer_failed_error("uncompressed", err);
	w->finished = true;
	return 0;
}

static void plain_free(sc_writer *base)
{
	free(base);
}

static const struct sc_writer_ops plain_ops = {
        .write = plain_write, .finish = plain_finish, .free = plain_free};

/* gzip: independent members compressed by libdeflate, in order, from slots
 * of SC_GZIP_MEMBER input bytes. Slots are held in a ring; ring entry
 * (seq % nslots) holds slot seq. Slots in [head, tail) are queued or being
 * compressed or done and not yet written, slot tail is being filled. Workers
 * take slots from next_job on. */

struct gz_slot {
	unsigned char *in, *out;
	size_t in_len, out_len;
	bool done; /* under mu */
};

struct gzip_writer {
	sc_writer base;
	sc_writer *next;
	struct gz_slot *slots;
	size_t nslots;
	size_t out_cap;
	uint64_t head, tail;
	bool finished, failed;

	struct gz_comp *comp; /* no workers: compress in the caller */
	pthread_t *workers;
	size_t nworkers;
	pthread_mutex_t mu;
	pthread_cond_t work_cv, done_cv;
	uint64_t next_job; /* under mu, as is tail for the workers */
	bool quit;         /* under mu */
};

/* Data that deflate cannot shrink (ciphertext, compressed files) costs level
 * 6 most of its time in a vain search for matches (libdeflate: about 100 MB/s
 * on random data here), and it ends up in stored blocks anyway. So samples
 * are compressed at level 1 first, and data whose samples all stay above 97 %
 * of their size is written with stored blocks (level 0):
 *  - a slot whose GZ_SAMPLES windows of GZ_SAMPLE_BYTES all do is one stored
 *    member (ciphertext: the cheapest test, one sixteenth of the bytes);
 *  - else each SC_GZIP_SEGMENT of it is tested with GZ_SAMPLES windows of
 *    GZ_SEGMENT_SAMPLE_BYTES, and each run of segments of one kind is a
 *    member of its own, stored or at SC_GZIP_LEVEL. Layers mix the two more
 *    finely than a slot: a tar header or a short text file before random
 *    data. When one decision covered the whole MiB, such a header sent all of
 *    it through level 6 (case a of bench/image.sh spent 0.6 CPU-s there).
 *    Fewer windows per segment store more of what level 6 could shrink:
 *    against one decision per slot, a tar of /usr/include, /usr/share/doc
 *    and shared libraries came out 3.5 % larger with one window, 0.25 %
 *    with four.
 * The decisions depend only on the bytes, so the output stays the same for
 * any thread count. */
#define GZ_SAMPLES 4
#define GZ_SAMPLE_BYTES (16u * 1024)
#define GZ_SEGMENTS (SC_GZIP_MEMBER / SC_GZIP_SEGMENT)
#define GZ_SEGMENT_SAMPLE_BYTES (4u * 1024)
/* Level 1 returns 0 when its output does not fit in 97 % of the sample. */
#define GZ_PROBE_OUT (GZ_SAMPLE_BYTES * 97 / 100)

/* The compressors of one thread. */
struct gz_comp {
	struct libdeflate_compressor *plain, *probe, *stored;
	unsigned char probe_out[GZ_PROBE_OUT];
};

static struct libdeflate_compressor *gz_alloc(int level)
{
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
	if (c == NULL)
		abort(); /* only fails on allocation */
	return c;
}

static struct gz_comp *gz_comp_new(void)
{
	struct gz_comp *g = xzalloc(sizeof(*g));
	g->plain = gz_alloc(SC_GZIP_LEVEL);
	g->probe = gz_alloc(1);
	g->stored = gz_alloc(0);
	return g;
}

static void gz_comp_free(struct gz_comp *g)
{
	if (g == NULL)
		return;
	libdeflate_free_compressor(g->plain);
	libdeflate_free_compressor(g->probe);
	libdeflate_free_compressor(g->stored);
	free(g);
}

/* Whether GZ_SAMPLES windows of sample bytes, spread over in, all stay above
 * 97 % of their size at level 1. Data too short to sample (the end of a
 * layer) is compressed normally. */
static bool gz_incompressible(struct gz_comp *g, const unsigned char *in, size_t len, size_t sample)
{
	if (len < GZ_SAMPLES * sample)
		return false;
	for (size_t i = 0; i < GZ_SAMPLES; i++) {
		size_t off = (len - sample) / (GZ_SAMPLES - 1) * i;
		if (libdeflate_deflate_compress(g->probe, in + off, sample, g->probe_out,
		                                sample * 97 / 100) != 0)
			return false;
	}
	return true;
}

/* Compresses a slot into one member per run of segments of one kind. out_cap
 * is GZ_SEGMENTS bounds of a segment: libdeflate's bound is the input plus a
 * few bytes per started 5000 and a constant, so a run of k segments never
 * needs more than k segment bounds (should a libdeflate differ, the abort
 * below fires before anything overflows). An empty slot gives one empty
 * member. */
static void gz_compress(struct gz_comp *g, struct gz_slot *s, size_t out_cap)
{
	bool stored[GZ_SEGMENTS];
	size_t n = (s->in_len + SC_GZIP_SEGMENT - 1) / SC_GZIP_SEGMENT;
	bool whole = gz_incompressible(g, s->in, s->in_len, GZ_SAMPLE_BYTES);
	for (size_t i = 0; i < n; i++) {
		size_t off = i * SC_GZIP_SEGMENT;
		size_t len = s->in_len - off < SC_GZIP_SEGMENT ? s->in_len - off : SC_GZIP_SEGMENT;
		stored[i] = whole || gz_incompressible(g, s->in + off, len, GZ_SEGMENT_SAMPLE_BYTES);
	}
	s->out_len = 0;
	size_t i = 0;
	do {
		size_t j = i + 1;
		while (j < n && stored[j] == stored[i])
			j++;
		size_t off = i * SC_GZIP_SEGMENT;
		size_t end = j * SC_GZIP_SEGMENT < s->in_len ? j * SC_GZIP_SEGMENT : s->in_len;
		unsigned char *out = s->out + s->out_len;
		size_t got = libdeflate_gzip_compress(n && stored[i] ? g->stored : g->plain, s->in + off,
		                                      end - off, out, out_cap - s->out_len);
		if (got == 0)
			abort(); /* cannot happen: out holds the bound */
		/* libdeflate's XFL says "fastest" for level 0; every member gets the
		 * same header (XFL 0) whichever compressor made it. No checksum
		 * covers it. */
		out[8] = 0;
		s->out_len += got;
		i = j;
	} while (i < n);
}

static void *gz_worker(void *arg)
{
	struct gzip_writer *w = arg;
	struct gz_comp *g = gz_comp_new();
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->quit && w->next_job == w->tail)
			pthread_cond_wait(&w->work_cv, &w->mu);
		if (w->quit)
			break;
		struct gz_slot *s = &w->slots[w->next_job++ % w->nslots];
		pthread_mutex_unlock(&w->mu);
		gz_compress(g, s, w->out_cap);
		pthread_mutex_lock(&w->mu);
		s->done = true;
		pthread_cond_signal(&w->done_cv);
	}
	pthread_mutex_unlock(&w->mu);
	gz_comp_free(g);
	return NULL;
}

static struct gz_slot *gz_current(struct gzip_writer *w)
{
	struct gz_slot *s = &w->slots[w->tail % w->nslots];
	if (s->in == NULL) { /* slots are allocated on first use: small layers stay small */
		s->in = xmalloc(SC_GZIP_MEMBER);
		s->out = xmalloc(w->out_cap);
	}
	return s;
}

/* Writes finished slots in order; waits for the oldest while more than keep
 * slots are in flight. */
static int gz_collect(struct gzip_writer *w, uint64_t keep, sconify_error_t *err)
{
	while (w->head < w->tail) {
		struct gz_slot *s = &w->slots[w->head % w->nslots];
		pthread_mutex_lock(&w->mu);
		while (!s->done && w->tail - w->head > keep)
			pthread_cond_wait(&w->done_cv, &w->mu);
		bool done = s->done;
		s->done = false;
		pthread_mutex_unlock(&w->mu);
		if (!done)
			return 0;
		w->head++;
		s->in_len = 0;
		if (sc_writer_write(w->next, s->out, s->out_len, err) < 0) {
			w->failed = true;
			return -1;
		}
	}
	return 0;
}

/* Hands the slot being filled over for compression. */
static int gz_submit(struct gzip_writer *w, sconify_error_t *err)
{
	if (w->nworkers == 0) {
		struct gz_slot *s = gz_current(w);
		gz_compress(w->comp, s, w->out_cap);
		s->in_len = 0;
		w->tail++;
		w->head++;
		if (sc_writer_write(w->next, s->out, s->out_len, err) < 0) {
			w->failed = true;
			return -1;
		}
		return 0;
	}
	pthread_mutex_lock(&w->mu);
	w->tail++;
	pthread_cond_signal(&w->work_cv);
	pthread_mutex_unlock(&w->mu);
	/* Free the slot the next input goes into. */
	return gz_collect(w, w->nslots - 1, err);
}

static int gz_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	struct gzip_writer *w = (struct gzip_writer *)base;
	if (w->failed)
		return writer_failed_error("gzip", err);
	if (w->finished)
		return writer_finished_error("gzip", err);
	const unsigned char *p = buf;
	while (len > 0) {
		struct gz_slot *s = gz_current(w);
		size_t k = SC_GZIP_MEMBER - s->in_len;
		if (k > len)
			k = len;
		memcpy(s->in + s->in_len, p, k);
		s->in_len += k;
		p += k;
		len -= k;
		if (s->in_len == SC_GZIP_MEMBER && gz_submit(w, err) < 0)
			return -1;
	}
	return 0;
}

static int gz_finish(sc_writer *base, sconify_error_t *err)
{
	struct gzip_writer *w = (struct gzip_writer *)base;
	if (w->failed)
		return writer_failed_error("gzip", err);
	if (w->finished)
		return 0;
	/* The empty input still gets one (empty) member: zero bytes are not gzip. */
	if ((gz_current(w)->in_len > 0 || w->tail == 0) && gz_submit(w, err) < 0)
		return -1;
	if (gz_collect(w, 0, err) < 0)
		return -1;
	w->finished = true;
	return 0;
}

static void gz_free(sc_writer *base)
{
	struct gzip_writer *w = (struct gzip_writer *)base;
	if (w->workers) {
		pthread_mutex_lock(&w->mu);
		w->quit = true;
		pthread_cond_broadcast(&w->work_cv);
		pthread_mutex_unlock(&w->mu);
		for (size_t i = 0; i < w->nworkers; i++)
			pthread_join(w->workers[i], NULL);
		free(w->workers);
	}
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->work_cv);
	pthread_cond_destroy(&w->done_cv);
	for (size_t i = 0; i < w->nslots; i++) {
		free(w->slots[i].in);
		free(w->slots[i].out);
	}
	free(w->slots);
	gz_comp_free(w->comp);
	free(w);
}

static const struct sc_writer_ops gzip_ops = {.write = gz_write, .finish = gz_finish, .free = gz_free};

static sc_writer *gzip_writer_new(sc_writer *next, int threads)
{
	struct gzip_writer *w = xzalloc(sizeof(*w));
	w->base.ops = &gzip_ops;
	w->next = next;
	w->out_cap = GZ_SEGMENTS * libdeflate_gzip_compress_bound(NULL, SC_GZIP_SEGMENT);
	if (pthread_mutex_init(&w->mu, NULL) != 0 || pthread_cond_init(&w->work_cv, NULL) != 0 ||
	    pthread_cond_init(&w->done_cv, NULL) != 0)
		abort();
	size_t want = threads > SC_COMPRESS_MAX_THREADS ? SC_COMPRESS_MAX_THREADS
	              : threads > 1                     ? (size_t)threads
	                                                : 0;
	if (want > 0) {
		w->nslots = 2 * want;
		w->slots = xcalloc(w->nslots, sizeof(*w->slots));
		w->workers = xcalloc(want, sizeof(*w->workers));
		/* Workers only look at slots once one is queued. If the system
		 * refuses threads, the ones we got do the work (none: the caller). */
		while (w->nworkers < want &&
		       pthread_create(&w->workers[w->nworkers], NULL, gz_worker, w) == 0)
			w->nworkers++;
		if (w->nworkers > 0)
			return &w->base;
		free(w->workers);
		w->workers = NULL;
		free(w->slots);
	}
	w->nslots = 1;
	w->slots = xcalloc(1, sizeof(*w->slots));
	w->comp = gz_comp_new();
	return &w->base;
}

/* zstd */

struct zstd_writer {
	sc_writer base;
	sc_writer *next;
	ZSTD_CCtx *cc;
	unsigned char *out;
	size_t out_cap;
	bool finished, failed;
};

/* One round of compressStream2 over in; writes what came out. Returns the
 * libzstd hint (0: everything flushed) or -1. */
static int zstd_run(struct zstd_writer *w, ZSTD_inBuffer *in, ZSTD_EndDirective op, size_t *ret_hint,
                    sconify_error_t *err)
{
	ZSTD_outBuffer ob = {w->out, w->out_cap, 0};
	size_t zr = ZSTD_compressStream2(w->cc, &ob, in, op);
	if (ZSTD_isError(zr)) {
		w->failed = true;
		if (ZSTD_getErrorCode(zr) == ZSTD_error_memory_allocation)
			abort();
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "zstd compression failed: %s",
		                ZSTD_getErrorName(zr));
	}
	if (ob.pos > 0 && sc_writer_write(w->next, w->out, ob.pos, err) < 0) {
		w->failed = true;
		return -1;
	}
	*ret_hint = zr;
	return 0;
}

static int zstd_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	struct zstd_writer *w = (struct zstd_writer *)base;
	if (w->failed)
		return writer_failed_error("zstd", err);
	if (w->finished)
		return writer_finished_error("zstd", err);
	ZSTD_inBuffer in = {buf, len, 0};
	while (in.pos < in.size) {
		size_t hint;
		if (zstd_run(w, &in, ZSTD_e_continue, &hint, err) < 0)
			return -1;
	}
	return 0;
}

static int zstd_finish(sc_writer *base, sconify_error_t *err)
{
	struct zstd_writer *w = (struct zstd_writer *)base;
	if (w->failed)
		return writer_failed_error("zstd", err);
	if (w->finished)
		return 0;
	ZSTD_inBuffer in = {NULL, 0, 0};
	size_t hint;
	do {
		if (zstd_run(w, &in, ZSTD_e_end, &hint, err) < 0)
			return -1;
	} while (hint != 0);
	w->finished = true;
	return 0;
}

static void zstd_writer_free(sc_writer *base)
{
	struct zstd_writer *w = (struct zstd_writer *)base;
	ZSTD_freeCCtx(w->cc);
	free(w->out);
	free(w);
}

static const struct sc_writer_ops zstd_ops = {
        .write = zstd_write, .finish = zstd_finish, .free = zstd_writer_free};

static sc_writer *zstd_writer_new(sc_writer *next, int threads)
{
	struct zstd_writer *w = xzalloc(sizeof(*w));
	w->base.ops = &zstd_ops;
	w->next = next;
	w->cc = ZSTD_createCCtx();
	if (w->cc == NULL)
		abort();
	int workers = threads < 1 ? 1 : threads > SC_COMPRESS_MAX_THREADS ? SC_COMPRESS_MAX_THREADS : threads;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cc, ZSTD_c_compressionLevel, SC_ZSTD_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cc, ZSTD_c_checksumFlag, 1)))
		abort();
	/* Worker count >= 1, always: libzstd's multithreaded mode cuts the input
	 * into jobs the same way for any count, its single-threaded mode does not.
	 * A libzstd built without threads refuses this; it then compresses in the
	 * caller, still the same bytes for every thread count on that build. */
	(void)ZSTD_CCtx_setParameter(w->cc, ZSTD_c_nbWorkers, workers);
	w->out_cap = ZSTD_CStreamOutSize();
	w->out = xmalloc(w->out_cap);
	return &w->base;
}

sc_writer *sc_compress_writer_new(sc_writer *next, sc_compression c, int threads)
{
	switch (c) {
	case SC_COMP_GZIP:
		return gzip_writer_new(next, threads);
	case SC_COMP_ZSTD:
		return zstd_writer_new(next, threads);
	case SC_COMP_NONE:
		break;
	}
	struct plain_writer *w = xzalloc(sizeof(*w));
	w->base.ops = &plain_ops;
	w->next = next;
	return &w->base;
}
