/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Content digests: strict parsing (a digest becomes a path and a URL, so it is
 * validated before any other use), streaming hashing with OpenSSL, and the
 * verified reader that every blob read goes through.
 */
#ifndef SC_DIGEST_H
#define SC_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/stream.h"

typedef enum {
	SC_SHA256 = 0,
	SC_SHA512,
} sc_digest_alg;

#define SC_DIGEST_MAX 136 /* "sha512:" + 128 hex + NUL, rounded up */

/* A parsed, valid digest: "alg:hex". Plain value type, no allocation. */
typedef struct {
	sc_digest_alg alg;
	char str[SC_DIGEST_MAX];
} sc_digest;

/* Accepts sha256 (64 lowercase hex) and sha512 (128 lowercase hex). Anything
 * else, including digests that fit the OCI grammar with another algorithm, fails. */
int sc_digest_parse(const char *s, sc_digest *ret, sconify_error_t *err);
bool sc_digest_valid(const char *s);
/* The encoded part after "alg:". */
const char *sc_digest_hex(const sc_digest *d);
const char *sc_digest_alg_name(sc_digest_alg alg);
bool sc_digest_equal(const sc_digest *a, const sc_digest *b);

typedef struct sc_hasher sc_hasher;
sc_hasher *sc_hasher_new(sc_digest_alg alg);
void sc_hasher_update(sc_hasher *h, const void *data, size_t len);
/* Finishes and returns the digest; the hasher may not be updated afterwards. */
void sc_hasher_final(sc_hasher *h, sc_digest *ret);
void sc_hasher_free(sc_hasher *h);
SC_DEFINE_CLEANUP(sc_hasher *, sc_hasher_free)
#define cleanup_hasher _cleanup_(sc_hasher_freep)

void sc_digest_of(sc_digest_alg alg, const void *data, size_t len, sc_digest *ret);

/* Wraps inner (owned) so that reading it yields at most size bytes and the end
 * is reported only after the count equals size and the content hashes to
 * expected. what names the blob in messages. */
sc_reader *sc_verified_reader_new(sc_reader *inner, const sc_digest *expected, uint64_t size,
                                  const char *what);

/* True once the verified reader reported its end, i.e. size and digest were
 * checked. Pipelines that hand the reader to someone else (a decompressor)
 * check this afterwards: a consumer that stopped early verified nothing. */
bool sc_verified_reader_done(sc_reader *r);

/* Passes inner (owned) through unchanged while hashing it; the digest and the
 * count are readable once the stream ended (sc_hash_reader_result). */
sc_reader *sc_hash_reader_new(sc_reader *inner, sc_digest_alg alg);
/* Returns false if the stream has not ended yet. */
bool sc_hash_reader_result(sc_reader *r, sc_digest *ret_digest, uint64_t *ret_size);

/* A writer that hashes and counts what it passes on to next (not owned; NULL
 * to only hash). */
sc_writer *sc_hash_writer_new(sc_writer *next, sc_digest_alg alg);
void sc_hash_writer_result(sc_writer *w, sc_digest *ret_digest, uint64_t *ret_size);

#endif
