/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation. The out-of-memory policy is decided once, here: abort. Nothing in
 * the library checks malloc's result; everything calls these.
 */
#ifndef SC_XALLOC_H
#define SC_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t size);
void *xzalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* realloc to n * size bytes, aborting on overflow */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
__attribute__((format(printf, 1, 2))) char *xasprintf(const char *fmt, ...);
__attribute__((format(printf, 1, 0))) char *xvasprintf(const char *fmt, va_list ap);

#endif
