/* SPDX-License-Identifier: Apache-2.0 */
/* Hexadecimal, as keys, pins, measurements and hashes are written. */
#ifndef SC_HEX_H
#define SC_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes 2 * n lowercase digits and a NUL to out. */
void sc_hex_encode(const void *in, size_t n, char *out);
/* Decodes exactly len digits (len even) into len / 2 bytes at out (NULL:
 * only check). lower_only refuses A-F. Nothing is written unless every
 * digit is valid. */
bool sc_hex_decode(const char *in, size_t len, uint8_t *out, bool lower_only);

#endif
