/* SPDX-License-Identifier: Apache-2.0 */
#include "base64.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

char *sc_base64_encode(const void *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	/* EVP_EncodeBlock takes an int: encode in pieces a multiple of 3 long. */
	const unsigned char *p = data;
	size_t done = 0, o = 0;
	while (done < len) {
		size_t n = len - done < (size_t)3 << 20 ? len - done : (size_t)3 << 20;
		o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, p + done, (int)n);
		done += n;
	}
	out[o] = '\0';
	return out;
}

static int value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool sc_base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len)
{
	size_t alloc = 3 * (len / 4 + 1) + 1;
	uint8_t *out = xmalloc(alloc);
	size_t o = 0, nq = 0;
	unsigned char quad[4];
	bool ended = false; /* padding seen: only CR/LF may follow */
	bool ok = true;

	for (size_t i = 0; i < len && ok; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '\r' || c == '\n')
			continue;
		if (ended) {
			ok = false;
			break;
		}
		quad[nq++] = c;
		if (nq < 4)
			continue;
		nq = 0;
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4 && ok; k++) {
			if (quad[k] == '=') {
				/* only "xx==" and "xxx=" */
				if (k < 2 || (k == 2 && quad[3] != '='))
					ok = false;
				pad++;
				v[k] = 0;
			} else if (pad > 0 || (v[k] = value(quad[k])) < 0) {
				ok = false;
			}
		}
		if (!ok)
			break;
		out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		out[o++] = (uint8_t)((v[1] & 0xf) << 4 | v[2] >> 2);
		out[o++] = (uint8_t)((v[2] & 0x3) << 6 | v[3]);
		o -= (size_t)pad;
		for (int k = 0; k < pad; k++)
			out[o + (size_t)k] = 0; /* held bits of the last byte */
		ended = pad > 0;
	}
	OPENSSL_cleanse(quad, sizeof(quad));
	if (!ok || nq != 0) {
		OPENSSL_cleanse(out, alloc);
		free(out);
		return false;
	}
	out[o] = '\0';
	*ret = out;
	*ret_len = o;
	return true;
}
