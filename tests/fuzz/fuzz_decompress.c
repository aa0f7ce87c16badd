/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The first byte picks the format ((byte & 0x7f) % 3: none, gzip, zstd), the
 * rest is the stream. It is decompressed under small limits (what must hold:
 * no crash, no byte past the cap, a failure says what failed) and sniffed.
 * When the first byte has 0x80 set, the rest is also compressed in all three
 * formats and must come back unchanged: only then, because a zstd writer
 * costs ~10 ms to set up under ASan and would slow the decoding part 50-fold.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "layer/compress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP (4u << 20)

static void decompress(sc_compression c, const uint8_t *z, size_t zlen, const sconify_limits_t *l,
                       const uint8_t *want, size_t want_len)
{
	sconify_error_t err = NULL;
	sc_reader *r = sc_decompress_reader_new(sc_mem_reader_new(z, zlen), c, l, "fuzz");
	static char buf[65536];
	uint64_t total = 0;
	ssize_t n;
	while ((n = sc_reader_read(r, buf, sizeof(buf), &err)) > 0) {
		if (want && (total + (uint64_t)n > want_len || memcmp(buf, want + total, (size_t)n) != 0))
			__builtin_trap(); /* round trip changed the data */
		total += (uint64_t)n;
		if (total > l->max_layer_bytes)
			__builtin_trap(); /* handed out bytes past the cap */
	}
	if (n < 0 && (err == NULL || strncmp(sconify_error_message(err), "fuzz: ", 6) != 0))
		__builtin_trap(); /* a failure must say what failed */
	if (want && (n < 0 || total != want_len))
		__builtin_trap();
	sconify_error_free(&err);
	sc_reader_free(r);
}

/* Writes into an sc_buf. */
struct buf_writer {
	sc_writer base;
	sc_buf b;
};

static int buf_write(sc_writer *base, const void *p, size_t len, sconify_error_t *err)
{
	struct buf_writer *w = (struct buf_writer *)base;
	return sc_buf_append(&w->b, p, len, "fuzz output", err);
}

static void buf_free(sc_writer *base)
{
	(void)base;
}

static const struct sc_writer_ops buf_ops = {.write = buf_write, .free = buf_free};

static void round_trip(sc_compression c, const uint8_t *data, size_t size)
{
	sconify_error_t err = NULL;
	struct buf_writer bw = {.base.ops = &buf_ops};
	sc_buf_init(&bw.b, SIZE_MAX);
	sc_writer *w = sc_compress_writer_new(&bw.base, c, 1);
	/* uneven writes, as a tar stream would make them */
	size_t off = 0, step = 1;
	while (off < size) {
		size_t k = size - off < step ? size - off : step;
		if (sc_writer_write(w, data + off, k, &err) < 0)
			__builtin_trap();
		off += k;
		step = step * 3 + 1;
	}
	if (sc_writer_finish(w, &err) < 0)
		__builtin_trap();
	sc_writer_free(w);
	sconify_limits_t l;
	sconify_limits_default(&l);
	size_t zlen = 0;
	char *z = sc_buf_steal(&bw.b, &zlen);
	decompress(c, (const uint8_t *)z, zlen, &l, data, size);
	free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	sc_compression c = (sc_compression)((data[0] & 0x7f) % 3);
	bool round_trips = data[0] & 0x80;
	data++, size--;

	sconify_limits_t l = {
	        .max_layer_bytes = CAP, .ratio_floor_bytes = 64u << 10, .max_expansion_ratio = 100};
	sc_limits_fill(&l);
	decompress(c, data, size, &l, NULL, 0);

	/* The sniffed reader must give back the same bytes. */
	sconify_error_t err = NULL;
	sc_compression sniffed;
	sc_reader *r = NULL;
	if (sc_compression_sniff(sc_mem_reader_new(data, size), &sniffed, &r, &err) < 0)
		__builtin_trap();
	char *all = NULL;
	size_t all_len = 0;
	if (sc_reader_read_all(r, SIZE_MAX, "fuzz", &all, &all_len, &err) < 0 || all_len != size ||
	    (size && memcmp(all, data, size) != 0) || sniffed != sc_compression_detect(data, size))
		__builtin_trap();
	free(all);
	sc_reader_free(r);

	if (round_trips)
		for (int k = SC_COMP_NONE; k <= SC_COMP_ZSTD; k++)
			round_trip((sc_compression)k, data, size);
	return 0;
}
