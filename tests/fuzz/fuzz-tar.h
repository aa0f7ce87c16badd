/* SPDX-License-Identifier: Apache-2.0 */
/* What the tar fuzz targets share. */
#ifndef SC_FUZZ_TAR_H
#define SC_FUZZ_TAR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* libFuzzer cannot get a header checksum right: recompute it for every
 * 512-byte block (only those carrying the ustar magic when only_ustar), so
 * mutations reach the parser instead of dying at the checksum. Blocks whose
 * bytes are all zero stay zero. Bad checksums stay reachable through the
 * blocks left alone, and the unit tests. */
static inline void fuzz_fix_tar_checksums(uint8_t *p, size_t n, bool only_ustar)
{
	for (size_t off = 0; off + 512 <= n; off += 512) {
		uint8_t *h = p + off;
		if (only_ustar && memcmp(h + 257, "ustar", 5) != 0)
			continue;
		memset(h + 148, ' ', 8);
		unsigned sum = 0;
		for (int i = 0; i < 512; i++)
			sum += h[i];
		if (sum == 8 * ' ')
			memset(h + 148, 0, 8);
		else
			snprintf((char *)h + 148, 8, "%06o", sum);
	}
}

#endif
