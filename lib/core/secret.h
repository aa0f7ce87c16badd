/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Buffers that hold secrets (passwords, tokens, private keys): grown by
 * copying into a new block and wiping the old one (realloc would leave the
 * secret in freed memory), wiped when freed, always NUL-terminated.
 */
#ifndef SC_SECRET_H
#define SC_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"
#include "error.h"

typedef struct {
	char *data; /* NUL-terminated once anything was appended */
	size_t len;
	size_t alloc;
} sc_secret;

void sc_secret_free(sc_secret *s);
#define cleanup_secret _cleanup_(sc_secret_free)
/* Appends unless the content would pass cap bytes. */
bool sc_secret_append(sc_secret *s, const void *p, size_t n, size_t cap);

/* Reads a whole file of at most cap bytes into *out with read(2) only (no
 * stdio buffer keeps a copy). what names the file in messages ("key file
 * `x'"); a missing file is NOT_FOUND, or *ret_missing when that is not NULL. */
int sc_read_secret_file(const char *path, size_t cap, const char *what, sc_secret *out, bool *ret_missing,
                        sconify_error_t *err);

/* Wipes and frees a NUL-terminated secret string; accepts NULL. */
void sc_secret_string_free(char *s);

#endif
