/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Base64 with the standard alphabet and padding, decoded the way Go's
 * encoding/base64 StdEncoding does (CR and LF skipped, everything else
 * strict), because the documents we read (docker auth files, cosign
 * signatures and keys) are written and checked by Go programs.
 */
#ifndef SC_BASE64_H
#define SC_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* NUL-terminated, malloc'd. */
char *sc_base64_encode(const void *data, size_t len);

/* Decodes in[0..len) into a malloc'd buffer (NUL-terminated, for callers
 * that decode text). On failure nothing is allocated; the scratch that held
 * decoded bytes is wiped, as decoded data may be a secret. */
bool sc_base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len);

#endif
