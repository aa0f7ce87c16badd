/* SPDX-License-Identifier: Apache-2.0 */
/* The volume key, its key file, the key schedule and file ids. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hex.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "shield-internal.h"

#define KEYFILE_PREFIX "sconify-shield-key-v1:"
#define KEYFILE_PREFIX_LEN (sizeof(KEYFILE_PREFIX) - 1)
#define KEYFILE_LEN (KEYFILE_PREFIX_LEN + 2 * SC_SHIELD_KEY_BYTES + 1)

const char *sc_shield_kind_name(sc_shield_kind kind)
{
	switch (kind) {
	case SC_SHIELD_NOT_PROTECTED:
		return "not-protected";
	case SC_SHIELD_ENCRYPTED:
		return "encrypted";
	case SC_SHIELD_AUTHENTICATED:
		return "authenticated";
	}
	return "unknown";
}

int sc_shield_kind_parse(const char *s, sc_shield_kind *ret, sconify_error_t *err)
{
	for (sc_shield_kind k = SC_SHIELD_NOT_PROTECTED; k <= SC_SHIELD_AUTHENTICATED; k++)
		if (strcmp(s, sc_shield_kind_name(k)) == 0) {
			*ret = k;
			return 0;
		}
	cleanup_free char *q = sc_quote(s, SC_QUOTE_MAX);
	return sc_error(err, SCONIFY_ERR_INVALID, 0,
	                "unknown region kind `%s' (encrypted, authenticated and not-protected are)", q);
}

/* ---- hex ---- */

void sc_shield_hex(const uint8_t *in, size_t n, char *out)
{
	sc_hex_encode(in, n, out);
}

bool sc_shield_unhex(const char *in, uint8_t *out, size_t n)
{
	return strnlen(in, 2 * n + 1) == 2 * n && sc_hex_decode(in, 2 * n, out, false);
}

/* ---- key schedule ---- */

static void hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 0;
	if (HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) == NULL || n != 32)
		abort(); /* only fails on allocation */
}

static void key_init(sc_shield_key *k)
{
	/* HKDF-Extract with no salt: HMAC(32 zero bytes, IKM) (RFC 5869 2.2). */
	static const uint8_t zero_salt[32];
	hmac_sha256(zero_salt, sizeof(zero_salt), k->key, sizeof(k->key), k->prk);
}

void sc_shield_kdf(const sc_shield_key *key, const char *label, const void *ctx, size_t ctx_len,
                   uint8_t out[32])
{
	/* HKDF-Expand for L = 32: T(1) = HMAC(PRK, info || 0x01). */
	size_t label_len = strlen(label);
	uint8_t info[128];
	if (label_len + ctx_len + 1 > sizeof(info))
		abort();
	memcpy(info, label, label_len);
	if (ctx_len > 0)
		memcpy(info + label_len, ctx, ctx_len);
	info[label_len + ctx_len] = 0x01;
	hmac_sha256(key->prk, sizeof(key->prk), info, label_len + ctx_len + 1, out);
}

void sc_shield_file_key(const sc_shield_key *key, const uint8_t file_id[SC_SHIELD_FILE_ID_BYTES],
                        uint8_t out[32])
{
	sc_shield_kdf(key, SC_SHIELD_LABEL_FILE_KEY, file_id, SC_SHIELD_FILE_ID_BYTES, out);
}

/* ---- keys ---- */

sc_shield_key *sc_shield_key_new(const uint8_t bytes[SC_SHIELD_KEY_BYTES])
{
	sc_shield_key *k = xzalloc(sizeof(*k));
	memcpy(k->key, bytes, SC_SHIELD_KEY_BYTES);
	key_init(k);
	return k;
}

int sc_shield_key_generate(sc_shield_key **ret, sconify_error_t *err)
{
	uint8_t bytes[SC_SHIELD_KEY_BYTES];
	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "generating a volume key: no random bytes");
	*ret = sc_shield_key_new(bytes);
	OPENSSL_cleanse(bytes, sizeof(bytes));
	return 0;
}

int sc_shield_key_from_hex(const char *hex, sc_shield_key **ret, sconify_error_t *err)
{
	uint8_t bytes[SC_SHIELD_KEY_BYTES];
	/* Never quote the input: it is (close to) a secret. */
	if (strnlen(hex, 2 * SC_SHIELD_KEY_BYTES + 1) != 2 * SC_SHIELD_KEY_BYTES ||
	    !sc_shield_unhex(hex, bytes, sizeof(bytes))) {
		OPENSSL_cleanse(bytes, sizeof(bytes));
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "invalid volume key: expected %d hex digits",
		                2 * SC_SHIELD_KEY_BYTES);
	}
	*ret = sc_shield_key_new(bytes);
	OPENSSL_cleanse(bytes, sizeof(bytes));
	return 0;
}

void sc_shield_key_bytes(const sc_shield_key *key, uint8_t out[SC_SHIELD_KEY_BYTES])
{
	memcpy(out, key->key, SC_SHIELD_KEY_BYTES);
}

void sc_shield_key_hex(const sc_shield_key *key, char out[2 * SC_SHIELD_KEY_BYTES + 1])
{
	sc_shield_hex(key->key, SC_SHIELD_KEY_BYTES, out);
}

void sc_shield_key_free(sc_shield_key *key)
{
	if (key == NULL)
		return;
	OPENSSL_cleanse(key, sizeof(*key));
	free(key);
}

int sc_shield_key_load(const char *path, sc_shield_key **ret, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	cleanup_close int fd = open(path, O_RDONLY | O_NOCTTY);
	if (fd < 0)
		return sc_error(err, errno == ENOENT ? SCONIFY_ERR_NOT_FOUND : SCONIFY_ERR_IO, errno,
		                "opening key file `%s'", q);
	/* One byte more than a valid file, to tell "too long" apart. */
	char buf[KEYFILE_LEN + 2];
	size_t got = 0;
	while (got < sizeof(buf)) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			OPENSSL_cleanse(buf, sizeof(buf));
			return sc_error(err, SCONIFY_ERR_IO, e, "reading key file `%s'", q);
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	/* "<prefix><64 hex>\n", the newline optional. */
	size_t body = KEYFILE_PREFIX_LEN + 2 * SC_SHIELD_KEY_BYTES;
	bool ok = (got == body || (got == body + 1 && buf[body] == '\n')) &&
	          memcmp(buf, KEYFILE_PREFIX, KEYFILE_PREFIX_LEN) == 0;
	uint8_t bytes[SC_SHIELD_KEY_BYTES];
	if (ok) {
		buf[body] = '\0';
		ok = sc_shield_unhex(buf + KEYFILE_PREFIX_LEN, bytes, sizeof(bytes));
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	if (!ok) {
		OPENSSL_cleanse(bytes, sizeof(bytes));
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "key file `%s' is not a volume key: expected one line `" KEYFILE_PREFIX
		                "' and %d hex digits",
		                q, 2 * SC_SHIELD_KEY_BYTES);
	}
	*ret = sc_shield_key_new(bytes);
	OPENSSL_cleanse(bytes, sizeof(bytes));
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w, n -= (size_t)w;
	}
	return 0;
}

int sc_shield_key_save(const sc_shield_key *key, const char *path, bool overwrite, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	struct stat st;
	if (!overwrite && lstat(path, &st) == 0)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "key file `%s' already exists; not overwriting it",
		                q);

	/* Temporary file beside the target (mkstemp makes it 0600), fsync,
	 * then rename (overwrite) or link (fails if the name appeared since). */
	cleanup_free char *tmp = xasprintf("%s.tmpXXXXXX", path);
	cleanup_close int fd = mkstemp(tmp);
	if (fd < 0)
		return sc_error(err, SCONIFY_ERR_IO, errno, "creating key file `%s'", q);
	char line[KEYFILE_LEN + 1];
	memcpy(line, KEYFILE_PREFIX, KEYFILE_PREFIX_LEN);
	sc_shield_hex(key->key, SC_SHIELD_KEY_BYTES, line + KEYFILE_PREFIX_LEN);
	line[KEYFILE_LEN - 1] = '\n';
	int r = fchmod(fd, 0600) < 0 || write_all(fd, line, KEYFILE_LEN) < 0 || fsync(fd) < 0 ? -1 : 0;
	int e = errno;
	OPENSSL_cleanse(line, sizeof(line));
	if (r == 0 && close(steal_fd(&fd)) < 0)
		r = -1, e = errno;
	if (r == 0) {
		if (overwrite)
			r = rename(tmp, path);
		else if ((r = link(tmp, path)) == 0)
			unlink(tmp);
		e = errno;
	}
	if (r < 0) {
		unlink(tmp);
		if (!overwrite && e == EEXIST)
			return sc_error(err, SCONIFY_ERR_USAGE, 0,
			                "key file `%s' already exists; not overwriting it", q);
		return sc_error(err, SCONIFY_ERR_IO, e, "writing key file `%s'", q);
	}
	cleanup_free char *dir = dir_of(path);
	cleanup_close int dfd = open(dir, O_RDONLY);
	/* Some systems cannot fsync a directory (EINVAL); the file itself is synced. */
	if (dfd >= 0 && fsync(dfd) < 0 && errno != EINVAL && errno != EBADF && errno != EACCES)
		return sc_error(err, SCONIFY_ERR_IO, errno, "syncing the directory of key file `%s'", q);
	return 0;
}

/* ---- file ids ---- */

int sc_shield_file_id_random(uint8_t ret[SC_SHIELD_FILE_ID_BYTES], sconify_error_t *err)
{
	if (RAND_bytes(ret, SC_SHIELD_FILE_ID_BYTES) != 1)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "generating a file id: no random bytes");
	return 0;
}

void sc_shield_file_id_derive(const sc_shield_key *key, const char *diff_id, uint64_t data_offset,
                              const char *path, uint8_t ret[SC_SHIELD_FILE_ID_BYTES])
{
	/* HMAC(k, be32(len(diff_id)) || diff_id || be64(offset) || be32(len(path)) || path) */
	size_t dl = strlen(diff_id), pl = strlen(path);
	size_t len = 4 + dl + 8 + 4 + pl;
	cleanup_free uint8_t *msg = xmalloc(len);
	sc_put_be32(msg, (uint32_t)dl);
	memcpy(msg + 4, diff_id, dl);
	sc_put_be64(msg + 4 + dl, data_offset);
	sc_put_be32(msg + 12 + dl, (uint32_t)pl);
	memcpy(msg + 16 + dl, path, pl);
	uint8_t k[32], out[32];
	sc_shield_kdf(key, SC_SHIELD_LABEL_FILE_ID, NULL, 0, k);
	hmac_sha256(k, sizeof(k), msg, len, out);
	memcpy(ret, out, SC_SHIELD_FILE_ID_BYTES);
	OPENSSL_cleanse(k, sizeof(k));
}

/* ---- pins ---- */

void sc_shield_pin_of(const void *data, size_t len, sc_shield_pin *ret)
{
	unsigned int n = 0;
	if (EVP_Digest(data, len, ret->bytes, &n, EVP_sha256(), NULL) != 1 || n != SC_SHIELD_PIN_BYTES)
		abort();
}

void sc_shield_pin_hex(const sc_shield_pin *pin, char out[2 * SC_SHIELD_PIN_BYTES + 1])
{
	sc_shield_hex(pin->bytes, SC_SHIELD_PIN_BYTES, out);
}

int sc_shield_pin_parse(const char *hex, sc_shield_pin *ret, sconify_error_t *err)
{
	sc_shield_pin p;
	if (strnlen(hex, 2 * SC_SHIELD_PIN_BYTES + 1) != 2 * SC_SHIELD_PIN_BYTES ||
	    !sc_shield_unhex(hex, p.bytes, sizeof(p.bytes))) {
		cleanup_free char *q = sc_quote(hex, 80);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "invalid metadata pin `%s': expected %d hex digits", q,
		                2 * SC_SHIELD_PIN_BYTES);
	}
	*ret = p;
	return 0;
}
