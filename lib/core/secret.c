/* SPDX-License-Identifier: Apache-2.0 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

void sc_secret_free(sc_secret *s)
{
	if (s->data) {
		OPENSSL_cleanse(s->data, s->alloc);
		free(s->data);
	}
	*s = (sc_secret){0};
}

bool sc_secret_append(sc_secret *s, const void *p, size_t n, size_t cap)
{
	if (s->len > cap || n > cap - s->len)
		return false;
	if (s->data == NULL || s->len + n + 1 > s->alloc) {
		size_t want = s->alloc ? s->alloc : 1024;
		while (want < s->len + n + 1)
			want *= 2;
		if (want > cap + 1)
			want = cap + 1;
		char *nd = xmalloc(want);
		if (s->data) {
			memcpy(nd, s->data, s->len);
			OPENSSL_cleanse(s->data, s->alloc);
			free(s->data);
		}
		s->data = nd;
		s->alloc = want;
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->data[s->len] = '\0';
	return true;
}

int sc_read_secret_file(const char *path, size_t cap, const char *what, sc_secret *out, bool *ret_missing,
                        sconify_error_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && ret_missing) {
			*ret_missing = true;
			return 0;
		}
		if (errno == ENOENT)
			return sc_error(err, SCONIFY_ERR_NOT_FOUND, ENOENT, "%s does not exist", what);
		return sc_error_errno(err, errno, "%s: opening it", what);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sc_error_errno(err, errno, "%s", what);
	if (S_ISDIR(st.st_mode))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is a directory", what);
	char chunk[8192];
	int r = 0;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = sc_error_errno(err, errno, "%s: reading it", what);
			break;
		}
		if (n == 0)
			break;
		if (!sc_secret_append(out, chunk, (size_t)n, cap)) {
			r = sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s is larger than %zu bytes", what, cap);
			break;
		}
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	if (r < 0) {
		sc_secret_free(out);
		return -1;
	}
	if (ret_missing)
		*ret_missing = false;
	return 0;
}

void sc_secret_string_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}
