/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Driver for bench/compress.sh: moves stdin to stdout through the layer
 * compression code, so the script can time it like the command line tools.
 *
 *   compress_driver gen BYTES                  deterministic half-random data
 *   compress_driver compress gzip|zstd|none THREADS
 *   compress_driver decompress gzip|zstd|none  (default limits)
 *
 * stdin must be a regular file: sc_fd_reader reads with pread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/stream.h"
#include "core/xalloc.h"
#include "layer/compress.h"

static int usage(void)
{
	fprintf(stderr, "usage: compress_driver gen BYTES\n"
	                "       compress_driver compress gzip|zstd|none THREADS\n"
	                "       compress_driver decompress gzip|zstd|none\n");
	return 2;
}

static int parse_comp(const char *s, sc_compression *ret)
{
	for (sc_compression c = SC_COMP_NONE; c <= SC_COMP_ZSTD; c++)
		if (strcmp(s, sc_compression_name(c)) == 0) {
			*ret = c;
			return 0;
		}
	return -1;
}

/* Alternating 64 KiB blocks of xorshift noise and of text cut from a small
 * vocabulary: compresses about 2:1, like a typical layer. */
static int gen(unsigned long long bytes)
{
	static const char *words[] = {
	        "usr",     "lib",       "bin",     "etc",    "share",   "x86_64-linux-gnu",
	        "python3", "libc.so.6", "include", "README", "LICENSE", "0.1.0",
	        "var",     "log",       "\n",      "/",      " ",       "="};
	enum { BLOCK = 64 * 1024 };
	cleanup_free char *buf = xmalloc(BLOCK);
	uint64_t s = 0x9e3779b97f4a7c15ull;
	for (unsigned long long off = 0, i = 0; off < bytes; off += BLOCK, i++) {
		size_t n = bytes - off < BLOCK ? (size_t)(bytes - off) : BLOCK;
		size_t k = 0;
		while (k < n) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			if (i % 2) {
				for (int b = 0; b < 8 && k < n; b++)
					buf[k++] = (char)(s >> (8 * b));
			} else {
				const char *w = words[s % (sizeof(words) / sizeof(words[0]))];
				for (; *w && k < n; w++)
					buf[k++] = *w;
			}
		}
		if (fwrite(buf, 1, n, stdout) != n)
			return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	cleanup_error sconify_error_t err = NULL;
	sc_compression c;
	if (argc == 3 && strcmp(argv[1], "gen") == 0)
		return gen(strtoull(argv[2], NULL, 10));
	if (argc < 3 || parse_comp(argv[2], &c) < 0)
		return usage();
	cleanup_reader sc_reader *in = sc_fd_reader_new(STDIN_FILENO, false, 0, -1);
	cleanup_writer sc_writer *out = sc_fd_writer_new(STDOUT_FILENO, false);
	if (argc == 4 && strcmp(argv[1], "compress") == 0) {
		cleanup_writer sc_writer *w = sc_compress_writer_new(out, c, atoi(argv[3]));
		if (sc_stream_pump(in, w, NULL, &err) < 0 || sc_writer_finish(w, &err) < 0)
			goto fail;
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "decompress") == 0) {
		sconify_limits_t l;
		sconify_limits_default(&l);
		cleanup_reader sc_reader *r = sc_decompress_reader_new(steal_pointer(&in), c, &l, "stdin");
		if (sc_stream_pump(r, out, NULL, &err) < 0)
			goto fail;
		return 0;
	}
	return usage();
fail:
	fprintf(stderr, "compress_driver: %s\n", sconify_error_message(err));
	return 1;
}
