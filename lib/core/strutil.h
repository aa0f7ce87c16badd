/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SC_STRUTIL_H
#define SC_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>

/* A user-supplied string made safe for a message: control and non-ASCII bytes
 * escaped as \xNN, cut after max bytes with "..." (hostile inputs can be huge).
 * Returns a malloc'd string; callers print it inside `...'. */
char *sc_quote(const char *s, size_t max);
char *sc_quote_n(const char *s, size_t len, size_t max);
#define SC_QUOTE_MAX 160

bool sc_startswith(const char *s, const char *prefix);
bool sc_endswith(const char *s, const char *suffix);
/* Parses a decimal uint64 with no sign, spaces or trailing garbage. */
bool sc_parse_u64(const char *s, unsigned long long *ret);

#endif
