/* SPDX-License-Identifier: Apache-2.0 */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void sc_buf_init(sc_buf *b, size_t cap)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap;
}

void sc_buf_free(sc_buf *b)
{
	free(b->data);
	sc_buf_init(b, b->cap);
}

static void grow(sc_buf *b, size_t need)
{
	if (need + 1 <= b->alloc)
		return;
	size_t n = b->alloc ? b->alloc : 256;
	while (n < need + 1)
		n = n > SIZE_MAX / 2 ? need + 1 : n * 2;
	b->data = xrealloc(b->data, n);
	b->alloc = n;
}

int sc_buf_append(sc_buf *b, const void *data, size_t len, const char *what, sconify_error_t *err)
{
	if (len > b->cap || b->len > b->cap - len)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s is larger than the limit of %zu bytes", what,
		                b->cap);
	grow(b, b->len + len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

void sc_buf_printf(sc_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	sc_buf_puts(b, s);
	free(s);
}

void sc_buf_putc(sc_buf *b, char c)
{
	grow(b, b->len + 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

void sc_buf_puts(sc_buf *b, const char *s)
{
	size_t n = strlen(s);
	grow(b, b->len + n);
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

char *sc_buf_steal(sc_buf *b, size_t *ret_len)
{
	if (b->data == NULL)
		grow(b, 0), b->data[0] = '\0';
	char *r = b->data;
	if (ret_len)
		*ret_len = b->len;
	sc_buf_init(b, b->cap);
	return r;
}
