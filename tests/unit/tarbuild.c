/* SPDX-License-Identifier: Apache-2.0 */
#include "tarbuild.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

void tb_raw(tarb *b, const void *p, size_t n)
{
	if (b->len + n > b->alloc) {
		b->alloc = (b->len + n) * 2 + 4096;
		b->data = xrealloc(b->data, b->alloc);
	}
	if (p)
		memcpy(b->data + b->len, p, n);
	else
		memset(b->data + b->len, 0, n);
	b->len += n;
}

void tb_pad(tarb *b)
{
	size_t pad = (512 - b->len % 512) % 512;
	tb_raw(b, NULL, pad);
}

void tb_block(tarb *b, const char *name, size_t name_len, char type, uint64_t size, const char *link,
              unsigned mode, const char *magic)
{
	unsigned char h[512] = {0};
	memcpy(h, name, name_len > 100 ? 100 : name_len);
	snprintf((char *)h + 100, 8, "%07o", mode);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	snprintf((char *)h + 136, 12, "%011o", 0);
	h[156] = (unsigned char)type;
	if (link)
		memcpy(h + 157, link, strlen(link) > 100 ? 100 : strlen(link));
	memcpy(h + 257, magic, 8);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	tb_raw(b, h, 512);
}

void tb_pax(tarb *b, int type, ...)
{
	tarb body = {0};
	va_list ap;
	va_start(ap, type);
	for (;;) {
		const char *key = va_arg(ap, const char *);
		if (key == NULL)
			break;
		const char *val = va_arg(ap, const char *);
		size_t vlen = va_arg(ap, size_t);
		size_t rest = 1 + strlen(key) + 1 + vlen + 1, n = rest + 1;
		char digits[32];
		for (;;) {
			int d = snprintf(digits, sizeof(digits), "%zu", n);
			if ((size_t)d + rest == n)
				break;
			n = (size_t)d + rest;
		}
		tb_raw(&body, digits, strlen(digits));
		tb_raw(&body, " ", 1);
		tb_raw(&body, key, strlen(key));
		tb_raw(&body, "=", 1);
		tb_raw(&body, val, vlen);
		tb_raw(&body, "\n", 1);
	}
	va_end(ap);
	tb_block(b, "PaxHeaders/x", 12, (char)type, body.len, NULL, 0644, USTAR);
	tb_raw(b, body.data, body.len);
	tb_pad(b);
	free(body.data);
}

void tb_entry(tarb *b, const char *name, char type, const void *data, size_t size, const char *link,
              unsigned mode)
{
	size_t nl = strlen(name), ll = link ? strlen(link) : 0;
	if (nl > 100 && ll > 100)
		tb_pax(b, 'x', "path", name, nl, "linkpath", link, ll, NULL);
	else if (nl > 100)
		tb_pax(b, 'x', "path", name, nl, NULL);
	else if (ll > 100)
		tb_pax(b, 'x', "linkpath", link, ll, NULL);
	tb_block(b, name, nl, type, size, ll > 100 ? "" : link, mode, USTAR);
	if (size) {
		tb_raw(b, data, size);
		tb_pad(b);
	}
}

void tb_file(tarb *b, const char *name, const char *content)
{
	tb_entry(b, name, '0', content, strlen(content), NULL, 0644);
}

void tb_dir(tarb *b, const char *name)
{
	tb_entry(b, name, '5', NULL, 0, NULL, 0755);
}

void tb_symlink(tarb *b, const char *name, const char *target)
{
	tb_entry(b, name, '2', NULL, 0, target, 0777);
}

void tb_link(tarb *b, const char *name, const char *target)
{
	tb_entry(b, name, '1', NULL, 0, target, 0644);
}

void tb_end(tarb *b)
{
	tb_raw(b, NULL, 1024);
}
