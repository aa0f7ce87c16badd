/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Layer compression: detection by magic bytes, bounded streaming
 * decompression, deterministic (optionally parallel) compression.
 */
#ifndef SC_COMPRESS_H
#define SC_COMPRESS_H

#include <stddef.h>

#include "core/stream.h"
#include "sconify.h"

typedef enum {
	SC_COMP_NONE = 0,
	SC_COMP_GZIP,
	SC_COMP_ZSTD,
} sc_compression;

const char *sc_compression_name(sc_compression c); /* "none", "gzip", "zstd" */

/* gzip: 1f 8b 08; zstd: 28 b5 2f fd; anything else (and short input) is NONE. */
sc_compression sc_compression_detect(const void *head, size_t len);

/* Reads the first bytes of inner (owned) to detect its compression and returns,
 * through ret_reader, a reader that yields the whole stream from its start. */
int sc_compression_sniff(sc_reader *inner, sc_compression *ret_comp, sc_reader **ret_reader,
                         sconify_error_t *err);

/* Decompresses inner (owned). NONE passes through but still counts bytes
 * against max_layer_bytes. Enforced (limits must be filled):
 *  - output beyond limits->max_layer_bytes fails (SCONIFY_ERR_LIMIT, "larger than");
 *  - once output passes ratio_floor_bytes, output / compressed-input-consumed must
 *    stay <= max_expansion_ratio (SCONIFY_ERR_LIMIT, "expands more than");
 *  - zstd frames needing a window above 2^27 fail (SCONIFY_ERR_LIMIT, "window");
 *  - gzip: concatenated members are one stream; anything after the last member
 *    that is not another member fails (SCONIFY_ERR_INVALID); corrupt data and a
 *    stream that ends mid-member fail (SCONIFY_ERR_INVALID, "truncated" for the latter).
 * what names the blob in messages ("layer sha256:..."). */
sc_reader *sc_decompress_reader_new(sc_reader *inner, sc_compression c, const sconify_limits_t *limits,
                                    const char *what);

/* Compresses onto next (not owned); sc_writer_finish() flushes the end of the
 * stream. Output depends only on the input bytes and the library versions
 * (no names, no timestamps; the same for any thread count), so reruns give the
 * same digests. gzip is written as a series of members of SC_GZIP_MEMBER input
 * bytes each (a valid gzip stream, as pigz --independent and estargz produce);
 * threads > 1 compresses members (gzip) or jobs (zstd) in parallel. */
#define SC_GZIP_MEMBER (1u << 20)
#define SC_GZIP_LEVEL 6
#define SC_ZSTD_LEVEL 3
sc_writer *sc_compress_writer_new(sc_writer *next, sc_compression c, int threads);

#endif
