/* SPDX-License-Identifier: Apache-2.0 */
#include "strutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

char *sc_quote_n(const char *s, size_t len, size_t max)
{
	sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, "");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (b.len >= max) {
			sc_buf_puts(&b, "...");
			break;
		}
		if (c == '\\')
			sc_buf_puts(&b, "\\\\");
		else if (c < 0x20 || c >= 0x7f)
			sc_buf_printf(&b, "\\x%02x", c);
		else
			sc_buf_putc(&b, (char)c);
	}
	return sc_buf_steal(&b, NULL);
}

char *sc_quote(const char *s, size_t max)
{
	return sc_quote_n(s ? s : "(null)", s ? strlen(s) : 6, max);
}

bool sc_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool sc_endswith(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool sc_parse_u64(const char *s, unsigned long long *ret)
{
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*ret = v;
	return true;
}
