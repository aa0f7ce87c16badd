/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Layer compression: detection by magic bytes, bounded streaming
 * decompression, deterministic (optionally parallel) compression.
 * The formats and the limits are described in docs/limits.md.
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
 * through ret_reader, a reader that yields the whole stream from its start.
 * inner is freed when this fails (a read error of inner is passed on). */
int sc_compression_sniff(sc_reader *inner, sc_compression *ret_comp, sc_reader **ret_reader,
                         sconify_error_t *err);

/* Decompresses inner (owned). NONE passes through but still counts bytes
 * against max_layer_bytes. Enforced (limits must be filled):
 *  - output beyond limits->max_layer_bytes fails (SCONIFY_ERR_LIMIT, "larger than");
 *    the reader never hands out more than one byte past the cap;
 *  - once output passes ratio_floor_bytes, output / compressed-input-consumed must
 *    stay <= max_expansion_ratio (SCONIFY_ERR_LIMIT, "expands more than");
 *  - zstd frames needing a window above 2^27 fail (SCONIFY_ERR_LIMIT, "window");
 *  - gzip: concatenated members are one stream; zstd: so are frames, skippable
 *    ones included. Anything after the last member or frame that does not start
 *    another one fails (SCONIFY_ERR_INVALID, "trailing data"); so does the
 *    stream's start ("corrupt"; legacy zstd formats are refused this way).
 *  - corrupt data fails (SCONIFY_ERR_INVALID, "corrupt"), an empty stream or
 *    one that ends mid-member or mid-frame too ("truncated").
 * Errors from inner are passed on unchanged. After a failure every further read
 * fails the same way. Memory is fixed: a 64 KiB input buffer plus the decoder's
 * state (for zstd, at most the 128 MiB window); for gzip, 2 MiB of input and
 * 2 MiB of output instead: members that fit them whole are decoded by
 * libdeflate, the others by zlib (which also has the last word on any member
 * libdeflate refuses, so errors are zlib's).
 * what names the blob in messages ("layer sha256:..."); messages start with it. */
sc_reader *sc_decompress_reader_new(sc_reader *inner, sc_compression c, const sconify_limits_t *limits,
                                    const char *what);

/* How far the compressed input of a reader from sc_decompress_reader_new()
 * is settled: every byte of it before *ret_in is decoded, and what those
 * bytes decode to lies before *ret_out_bound in the uncompressed stream (the
 * bytes handed out so far, what the decoder holds back, and a margin for a
 * block it is still buffering). So a consumer that has seen the uncompressed
 * stream up to *ret_out_bound knows everything the compressed bytes before
 * *ret_in can tell. Both are offsets from the start of either stream. */
void sc_decompress_progress(sc_reader *r, uint64_t *ret_in, uint64_t *ret_out_bound);

/* Compresses onto next (not owned); sc_writer_finish() writes the end of the
 * stream onto next (it does not finish next itself; writing after it fails).
 * Output depends only on the input bytes and the library versions (no names,
 * no timestamps; the same for any thread count and however the input is split
 * into writes), so reruns give the same digests. An empty input gives a valid
 * stream. Errors of next are passed on; after one, every call fails.
 *  - gzip is written as a series of independent members (a valid gzip stream,
 *    as pigz --independent and estargz produce), compressed with libdeflate:
 *    mtime 0, no name, XFL 0, OS 255. The input is cut into slots of
 *    SC_GZIP_MEMBER bytes (the last one shorter), and each slot into
 *    SC_GZIP_SEGMENT segments; each run of segments that all look
 *    incompressible, or all not, is one member: of stored blocks, or at
 *    SC_GZIP_LEVEL. threads > 1 compresses slots on that many threads (at
 *    most SC_COMPRESS_MAX_THREADS), holding at most 2 * threads slots in
 *    memory.
 *  - zstd is one frame with a checksum, written by libzstd's multithreaded
 *    compressor with max(threads, 1) workers: libzstd cuts jobs the same way for
 *    any worker count >= 1 (but not for 0, the single-threaded mode, which is
 *    never used).
 *  - NONE passes bytes through. */
#define SC_GZIP_MEMBER (1u << 20)
#define SC_GZIP_SEGMENT (64u * 1024)
#define SC_GZIP_LEVEL 6
#define SC_ZSTD_LEVEL 3
#define SC_COMPRESS_MAX_THREADS 32
sc_writer *sc_compress_writer_new(sc_writer *next, sc_compression c, int threads);

#endif
