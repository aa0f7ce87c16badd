/* SPDX-License-Identifier: Apache-2.0 */
#include "hex.h"

void sc_hex_encode(const void *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = in;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int digit(char c, bool lower_only)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (!lower_only && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool sc_hex_decode(const char *in, size_t len, uint8_t *out, bool lower_only)
{
	if (len % 2)
		return false;
	for (size_t i = 0; i < len; i++)
		if (digit(in[i], lower_only) < 0)
			return false;
	for (size_t i = 0; out && i < len; i += 2)
		out[i / 2] = (uint8_t)(digit(in[i], lower_only) << 4 | digit(in[i + 1], lower_only));
	return true;
}
