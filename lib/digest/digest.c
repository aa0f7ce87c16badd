/* SPDX-License-Identifier: Apache-2.0 */
#include "digest.h"

#include <openssl/evp.h>
#include <string.h>

#include "core/strutil.h"
#include "core/xalloc.h"

static const struct {
	const char *name;
	size_t hexlen;
} algs[] = {
        [SC_SHA256] = {"sha256", 64},
        [SC_SHA512] = {"sha512", 128},
};

const char *sc_digest_alg_name(sc_digest_alg alg)
{
	return algs[alg].name;
}

/* OCI grammar: algorithm-component ([+._-] algorithm-component)* */
static bool alg_grammar(const char *s, size_t n)
{
	if (n == 0)
		return false;
	bool need_component = true;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			need_component = false;
		} else if (c == '+' || c == '.' || c == '_' || c == '-') {
			if (need_component)
				return false;
			need_component = true;
		} else {
			return false;
		}
	}
	return !need_component;
}

static bool lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int sc_digest_parse(const char *s, sc_digest *ret, sconify_error_t *err)
{
	const char *colon = strchr(s, ':');
	if (colon == NULL || !alg_grammar(s, (size_t)(colon - s))) {
		cleanup_free char *q = sc_quote(s, 80);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "invalid digest `%s': expected algorithm:hex",
		                q);
	}
	size_t alen = (size_t)(colon - s);
	const char *hex = colon + 1;
	for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
		if (strlen(algs[a].name) != alen || memcmp(s, algs[a].name, alen) != 0)
			continue;
		size_t n = strlen(hex);
		if (n != algs[a].hexlen || !lower_hex(hex, n)) {
			cleanup_free char *q = sc_quote(s, 80);
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "invalid digest `%s': %s needs %zu lowercase hex digits", q,
			                algs[a].name, algs[a].hexlen);
		}
		ret->alg = (sc_digest_alg)a;
		memcpy(ret->str, s, alen + 1 + n + 1);
		return 0;
	}
	cleanup_free char *q = sc_quote(s, 80);
	return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
	                "unsupported digest algorithm in `%s' (sha256 and sha512 are)", q);
}

bool sc_digest_valid(const char *s)
{
	sc_digest d;
	return sc_digest_parse(s, &d, NULL) == 0;
}

const char *sc_digest_hex(const sc_digest *d)
{
	return d->str + strlen(algs[d->alg].name) + 1;
}

bool sc_digest_equal(const sc_digest *a, const sc_digest *b)
{
	return a->alg == b->alg && strcmp(a->str, b->str) == 0;
}

/* ---- hashing ---- */

struct sc_hasher {
	sc_digest_alg alg;
	EVP_MD_CTX *ctx;
};

sc_hasher *sc_hasher_new(sc_digest_alg alg)
{
	sc_hasher *h = xzalloc(sizeof(*h));
	h->alg = alg;
	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL ||
	    EVP_DigestInit_ex(h->ctx, alg == SC_SHA256 ? EVP_sha256() : EVP_sha512(), NULL) != 1)
		abort(); /* only fails on allocation */
	return h;
}

void sc_hasher_update(sc_hasher *h, const void *data, size_t len)
{
	if (EVP_DigestUpdate(h->ctx, data, len) != 1)
		abort();
}

void sc_hasher_final(sc_hasher *h, sc_digest *ret)
{
	static const char hexd[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1)
		abort();
	const char *name = algs[h->alg].name;
	size_t alen = strlen(name);
	memcpy(ret->str, name, alen);
	ret->str[alen] = ':';
	for (unsigned i = 0; i < n; i++) {
		ret->str[alen + 1 + 2 * i] = hexd[md[i] >> 4];
		ret->str[alen + 2 + 2 * i] = hexd[md[i] & 15];
	}
	ret->str[alen + 1 + 2 * n] = '\0';
	ret->alg = h->alg;
}

void sc_hasher_free(sc_hasher *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void sc_digest_of(sc_digest_alg alg, const void *data, size_t len, sc_digest *ret)
{
	cleanup_hasher sc_hasher *h = sc_hasher_new(alg);
	sc_hasher_update(h, data, len);
	sc_hasher_final(h, ret);
}

/* ---- verified reader ---- */

struct verified_reader {
	sc_reader base;
	sc_reader *inner;
	sc_hasher *h;
	sc_digest expected;
	uint64_t size, seen;
	char *what;
	bool done;
};

static ssize_t verified_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	struct verified_reader *r = (struct verified_reader *)base;
	if (r->done)
		return 0;
	/* Never ask for more than one byte past the declared size: an endless
	 * source is cut off right there. */
	uint64_t room = r->size - r->seen + 1;
	if (len > room)
		len = (size_t)room;
	ssize_t n = sc_reader_read(r->inner, buf, len, err);
	if (n < 0)
		return sc_error_wrap(err, "reading %s", r->what);
	if (n > 0) {
		if ((uint64_t)n > r->size - r->seen)
			return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
			                "%s: size mismatch: more than the %llu bytes its descriptor declares",
			                r->what, (unsigned long long)r->size);
		r->seen += (uint64_t)n;
		sc_hasher_update(r->h, buf, (size_t)n);
		return n;
	}
	if (r->seen != r->size)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
		                "%s: size mismatch: %llu bytes, its descriptor declares %llu", r->what,
		                (unsigned long long)r->seen, (unsigned long long)r->size);
	sc_digest got;
	sc_hasher_final(r->h, &got);
	if (!sc_digest_equal(&got, &r->expected))
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "%s: digest mismatch: content hashes to %s",
		                r->what, got.str);
	r->done = true;
	return 0;
}

static void verified_free(sc_reader *base)
{
	struct verified_reader *r = (struct verified_reader *)base;
	sc_reader_free(r->inner);
	sc_hasher_free(r->h);
	free(r->what);
	free(r);
}

static const struct sc_reader_ops verified_ops = {.read = verified_read, .free = verified_free};

sc_reader *sc_verified_reader_new(sc_reader *inner, const sc_digest *expected, uint64_t size,
                                  const char *what)
{
	struct verified_reader *r = xzalloc(sizeof(*r));
	r->base.ops = &verified_ops;
	r->inner = inner;
	r->h = sc_hasher_new(expected->alg);
	r->expected = *expected;
	r->size = size;
	r->what = xstrdup(what);
	return &r->base;
}

bool sc_verified_reader_done(sc_reader *base)
{
	return base->ops == &verified_ops && ((struct verified_reader *)base)->done;
}

/* ---- hashing pass-through reader ---- */

struct hash_reader {
	sc_reader base;
	sc_reader *inner;
	sc_hasher *h;
	uint64_t n;
	bool done;
	sc_digest result;
};

static ssize_t hash_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	struct hash_reader *r = (struct hash_reader *)base;
	if (r->done)
		return 0;
	ssize_t n = sc_reader_read(r->inner, buf, len, err);
	if (n < 0)
		return -1;
	if (n == 0) {
		sc_hasher_final(r->h, &r->result);
		r->done = true;
		return 0;
	}
	sc_hasher_update(r->h, buf, (size_t)n);
	r->n += (uint64_t)n;
	return n;
}

static void hash_free(sc_reader *base)
{
	struct hash_reader *r = (struct hash_reader *)base;
	sc_reader_free(r->inner);
	sc_hasher_free(r->h);
	free(r);
}

static const struct sc_reader_ops hash_ops = {.read = hash_read, .free = hash_free};

sc_reader *sc_hash_reader_new(sc_reader *inner, sc_digest_alg alg)
{
	struct hash_reader *r = xzalloc(sizeof(*r));
	r->base.ops = &hash_ops;
	r->inner = inner;
	r->h = sc_hasher_new(alg);
	return &r->base;
}

bool sc_hash_reader_result(sc_reader *base, sc_digest *ret_digest, uint64_t *ret_size)
{
	struct hash_reader *r = (struct hash_reader *)base;
	if (!r->done)
		return false;
	if (ret_digest)
		*ret_digest = r->result;
	if (ret_size)
		*ret_size = r->n;
	return true;
}

/* ---- hashing writer ---- */

struct hash_writer {
	sc_writer base;
	sc_writer *next;
	sc_hasher *h;
	uint64_t n;
};

static int hash_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	struct hash_writer *w = (struct hash_writer *)base;
	sc_hasher_update(w->h, buf, len);
	w->n += len;
	return w->next ? sc_writer_write(w->next, buf, len, err) : 0;
}

static void hash_writer_free(sc_writer *base)
{
	struct hash_writer *w = (struct hash_writer *)base;
	sc_hasher_free(w->h);
	free(w);
}

static const struct sc_writer_ops hash_writer_ops = {.write = hash_write, .free = hash_writer_free};

sc_writer *sc_hash_writer_new(sc_writer *next, sc_digest_alg alg)
{
	struct hash_writer *w = xzalloc(sizeof(*w));
	w->base.ops = &hash_writer_ops;
	w->next = next;
	w->h = sc_hasher_new(alg);
	return &w->base;
}

void sc_hash_writer_result(sc_writer *base, sc_digest *ret_digest, uint64_t *ret_size)
{
	struct hash_writer *w = (struct hash_writer *)base;
	sc_hasher_final(w->h, ret_digest);
	if (ret_size)
		*ret_size = w->n;
}
