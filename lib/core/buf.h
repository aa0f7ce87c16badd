/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer with a hard cap (curl's dynbuf): every buffer filled
 * from outside says up front how large it may become, and appending past that
 * fails with SCONIFY_ERR_LIMIT instead of growing.
 */
#ifndef SC_BUF_H
#define SC_BUF_H

#include <stddef.h>

#include "error.h"

typedef struct {
	char *data; /* always NUL-terminated after data[len] */
	size_t len;
	size_t alloc;
	size_t cap;
} sc_buf;

void sc_buf_init(sc_buf *b, size_t cap);
void sc_buf_free(sc_buf *b);
/* what: names the content for the error message ("manifest `x'") */
int sc_buf_append(sc_buf *b, const void *data, size_t len, const char *what, sconify_error_t *err);
/* For our own text, where no cap applies (cap is SIZE_MAX). */
__attribute__((format(printf, 2, 3))) void sc_buf_printf(sc_buf *b, const char *fmt, ...);
void sc_buf_putc(sc_buf *b, char c);
void sc_buf_puts(sc_buf *b, const char *s);
/* Hands the data over to the caller, leaving b empty. */
char *sc_buf_steal(sc_buf *b, size_t *ret_len);

#define cleanup_buf _cleanup_(sc_buf_free)

#endif
