/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/xalloc.h"
#include "shield/shield-internal.h"
#include "shield/shield.h"
#include "support.h"

#define CS 4096u /* small chunks keep the cases small */

static const uint8_t key_bytes[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                      17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static uint8_t *pattern(size_t n, uint32_t seed)
{
	uint8_t *p = xmalloc(n ? n : 1);
	uint32_t s = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13, s ^= s >> 17, s ^= s << 5;
		p[i] = (uint8_t)s;
	}
	return p;
}

static void id_of(uint8_t id[SC_SHIELD_FILE_ID_BYTES], uint8_t v)
{
	memset(id, v, SC_SHIELD_FILE_ID_BYTES);
}

/* Encrypts (or hashes) data in update calls of random length (seeded). */
static sc_shield_entry *protect(const sc_shield_key *key, sc_shield_kind kind, const uint8_t *id,
                                const uint8_t *data, size_t size, uint32_t cs, unsigned seed,
                                uint8_t **ret_ct)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_encoder sc_shield_encoder *enc = NULL;
	if (kind == SC_SHIELD_ENCRYPTED)
		ck_assert_ok(sc_shield_encryptor_new(key, id, size, cs, &enc, &err), err);
	else
		ck_assert_ok(sc_shield_hasher_new(size, cs, &enc, &err), err);
	uint8_t *ct = xmalloc(size ? size : 1);
	srand(seed);
	for (size_t off = 0; off < size;) {
		size_t n = seed == 0 ? size : (size_t)rand() % (2 * cs + 3);
		if (n > size - off)
			n = size - off;
		ck_assert_ok(sc_shield_encoder_update(enc, data + off, n,
		                                      kind == SC_SHIELD_ENCRYPTED ? ct + off : NULL, &err),
		             err);
		off += n;
	}
	if (kind == SC_SHIELD_AUTHENTICATED)
		memcpy(ct, data, size);
	sc_shield_entry *e = NULL;
	ck_assert_ok(sc_shield_encoder_finish(enc, &e, &err), err);
	if (ret_ct)
		*ret_ct = ct;
	else
		free(ct);
	return e;
}

static int tmp_fd(void)
{
	char *t = xasprintf("%s/shield-test-XXXXXX", sc_tmpdir());
	int fd = mkstemp(t);
	ck_assert_int_ge(fd, 0);
	unlink(t);
	free(t);
	return fd;
}

static off_t fd_size(int fd)
{
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	return st.st_size;
}

/* Runs sc_shield_file_to_fd over stored bytes into a fresh file; the output
 * fd is returned so the caller can look at what was released. */
static int to_fd(const sc_shield_key *key, const sc_shield_entry *e, const uint8_t *stored, size_t len,
                 int *ret_fd, sconify_error_t *err)
{
	cleanup_shield_file sc_shield_file *f = NULL;
	if (sc_shield_file_new(key, e, &f, err) < 0)
		return -1;
	int fd = tmp_fd();
	/* Something in the output beforehand: a failure must leave nothing. */
	ck_assert_int_eq(write(fd, "stale", 5), 5);
	cleanup_reader sc_reader *r = sc_mem_reader_new(stored, len);
	int ret = sc_shield_file_to_fd(f, r, fd, err);
	*ret_fd = fd;
	return ret;
}

/* The same through sc_shield_file_to_fd_parallel: the stored bytes in a
 * file read with pread (its offset must stay where it was), the chunks split
 * into threads ranges. */
static int to_fd_parallel(const sc_shield_key *key, const sc_shield_entry *e, const uint8_t *stored,
                          size_t len, unsigned threads, int *ret_fd, sconify_error_t *err)
{
	cleanup_shield_file sc_shield_file *f = NULL;
	if (sc_shield_file_new(key, e, &f, err) < 0)
		return -1;
	cleanup_close int in = tmp_fd();
	ck_assert_int_eq(write(in, stored, len), (ssize_t)len);
	ck_assert_int_eq(lseek(in, 1, SEEK_SET), 1);
	int fd = tmp_fd();
	ck_assert_int_eq(write(fd, "stale", 5), 5);
	int ret = sc_shield_file_to_fd_parallel(f, in, fd, threads, err);
	ck_assert_int_eq(lseek(in, 0, SEEK_CUR), 1);
	*ret_fd = fd;
	return ret;
}

#define ck_assert_released_nothing(fd) ck_assert_int_eq(fd_size(fd), 0)

/* Thread counts every stored-bytes case runs with: no thread started, one
 * range per chunk (or fewer chunks than threads), uneven ranges. */
static const unsigned thread_counts[] = {0, 1, 2, 3, 7, SC_SHIELD_THREADS_MAX + 5};
#define N_THREAD_COUNTS (sizeof(thread_counts) / sizeof(thread_counts[0]))

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- key schedule ---- */

static int cmp12(const void *a, const void *b)
{
	return memcmp(a, b, 12);
}

static int cmp16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

static int cmp32(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

START_TEST(kdf_is_rfc5869_hkdf_sha256)
{
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	uint8_t ours[32], theirs[32], id[16];
	id_of(id, 7);
	sc_shield_file_key(key, id, ours);

	char info[64];
	size_t n = strlen(SC_SHIELD_LABEL_FILE_KEY);
	memcpy(info, SC_SHIELD_LABEL_FILE_KEY, n);
	memcpy(info + n, id, 16);
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key_bytes, 32),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n + 16),
	        OSSL_PARAM_construct_end(),
	};
	ck_assert_int_eq(EVP_KDF_derive(ctx, theirs, 32, params), 1);
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	ck_assert_mem_eq(ours, theirs, 32);
}
END_TEST

START_TEST(derived_file_keys_and_nonces_never_repeat)
{
	enum { N = 100000 };
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	cleanup_free uint8_t *keys = xmalloc((size_t)N * 32);
	cleanup_free uint8_t *ids = xmalloc((size_t)N * 16);
	for (uint32_t i = 0; i < N; i++) {
		/* ids as the reproducible mode makes them: one per path */
		char path[32];
		snprintf(path, sizeof(path), "/app/f%u", i);
		sc_shield_file_id_derive(key, "sha256:00", 512, path, ids + (size_t)i * 16);
		sc_shield_file_key(key, ids + (size_t)i * 16, keys + (size_t)i * 32);
	}
	/* one path of one layer, two entries (a lower layer's symlink decided
	 * where each landed): two ids */
	uint8_t a[16], b[16];
	sc_shield_file_id_derive(key, "sha256:00", 512, "/app/x", a);
	sc_shield_file_id_derive(key, "sha256:00", 2048, "/app/x", b);
	ck_assert_msg(memcmp(a, b, 16) != 0, "entries at two offsets share an id");
	qsort(ids, N, 16, cmp16);
	qsort(keys, N, 32, cmp32);
	for (size_t i = 1; i < N; i++) {
		ck_assert_msg(memcmp(ids + (i - 1) * 16, ids + i * 16, 16) != 0, "file id repeated");
		ck_assert_msg(memcmp(keys + (i - 1) * 32, keys + i * 32, 32) != 0, "file key repeated");
	}
	/* Within a file: (index, final) -> nonce is injective. */
	cleanup_free uint8_t *nonces = xmalloc((size_t)2 * N * 12);
	for (uint32_t i = 0; i < N; i++) {
		sc_shield_chunk_nonce(i, false, nonces + (size_t)(2 * i) * 12);
		sc_shield_chunk_nonce(i, true, nonces + (size_t)(2 * i + 1) * 12);
	}
	qsort(nonces, 2 * N, 12, cmp12);
	for (size_t i = 1; i < 2 * N; i++)
		ck_assert(memcmp(nonces + (i - 1) * 12, nonces + i * 12, 12) != 0);
}
END_TEST

/* ---- round trips ---- */

static const size_t sizes[] = {0, 1, CS - 1, CS, CS + 1, 3 * CS, 3 * CS + 7};

START_TEST(encrypted_round_trip_over_sizes_and_splits)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	size_t size = sizes[_i];
	uint8_t id[16];
	id_of(id, 1);
	cleanup_free uint8_t *plain = pattern(size, (uint32_t)size);
	cleanup_free uint8_t *ct0 = NULL;
	cleanup_shield_entry sc_shield_entry *e0 =
	        protect(key, SC_SHIELD_ENCRYPTED, id, plain, size, CS, 0, &ct0);
	ck_assert_uint_eq(e0->n_chunks, size == 0 ? 1 : (size + CS - 1) / CS);
	if (size >= 16)
		ck_assert(memcmp(ct0, plain, size) != 0);
	/* any split of the input gives the same bytes */
	for (unsigned seed = 1; seed <= 5; seed++) {
		cleanup_free uint8_t *ct = NULL;
		cleanup_shield_entry sc_shield_entry *e =
		        protect(key, SC_SHIELD_ENCRYPTED, id, plain, size, CS, seed, &ct);
		ck_assert_mem_eq(ct, ct0, size);
		ck_assert_mem_eq(e->macs, e0->macs, e0->n_chunks * SC_SHIELD_TAG_BYTES);
	}
	/* every chunk alone */
	cleanup_shield_file sc_shield_file *f = NULL;
	ck_assert_ok(sc_shield_file_new(key, e0, &f, &err), err);
	cleanup_free uint8_t *out = xmalloc(CS);
	for (uint64_t i = 0; i < e0->n_chunks; i++) {
		size_t n = sc_shield_chunk_len(size, CS, i);
		ck_assert_ok(sc_shield_file_read_chunk(f, i, ct0 + i * CS, n, out, &err), err);
		ck_assert_mem_eq(out, plain + i * CS, n);
	}
	/* the whole file */
	cleanup_close int fd = -1;
	ck_assert_ok(to_fd(key, e0, ct0, size, &fd, &err), err);
	ck_assert_int_eq(fd_size(fd), (off_t)size);
	cleanup_free uint8_t *back = xmalloc(size + 1);
	ck_assert_int_eq(pread(fd, back, size + 1, 0), (ssize_t)size);
	ck_assert_mem_eq(back, plain, size);
	/* the whole file, split over threads */
	for (size_t t = 0; t < N_THREAD_COUNTS; t++) {
		cleanup_close int pfd = -1;
		ck_assert_ok(to_fd_parallel(key, e0, ct0, size, thread_counts[t], &pfd, &err), err);
		ck_assert_int_eq(fd_size(pfd), (off_t)size);
		memset(back, 0, size + 1);
		ck_assert_int_eq(pread(pfd, back, size + 1, 0), (ssize_t)size);
		ck_assert_mem_eq(back, plain, size);
	}
}
END_TEST

START_TEST(default_chunk_size_round_trips)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	size_t size = 3 * SC_SHIELD_CHUNK_DEFAULT + 1;
	uint8_t id[16];
	id_of(id, 2);
	cleanup_free uint8_t *plain = pattern(size, 9);
	cleanup_free uint8_t *ct = NULL;
	cleanup_shield_entry sc_shield_entry *e =
	        protect(key, SC_SHIELD_ENCRYPTED, id, plain, size, 0, 3, &ct);
	ck_assert_uint_eq(e->chunk_size, SC_SHIELD_CHUNK_DEFAULT);
	ck_assert_uint_eq(e->n_chunks, 4);
	cleanup_close int fd = -1;
	ck_assert_ok(to_fd(key, e, ct, size, &fd, &err), err);
	cleanup_free uint8_t *back = xmalloc(size);
	ck_assert_int_eq(pread(fd, back, size, 0), (ssize_t)size);
	ck_assert_mem_eq(back, plain, size);
}
END_TEST

START_TEST(authenticated_round_trip_over_sizes)
{
	cleanup_error sconify_error_t err = NULL;
	size_t size = sizes[_i];
	cleanup_free uint8_t *plain = pattern(size, (uint32_t)size + 1);
	cleanup_shield_entry sc_shield_entry *e =
	        protect(NULL, SC_SHIELD_AUTHENTICATED, NULL, plain, size, CS, 4, NULL);
	ck_assert_int_eq(e->kind, SC_SHIELD_AUTHENTICATED);
	cleanup_close int fd = -1;
	ck_assert_ok(to_fd(NULL, e, plain, size, &fd, &err), err);
	ck_assert_int_eq(fd_size(fd), (off_t)size);
}
END_TEST

START_TEST(encoder_rejects_size_mismatch)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	uint8_t id[16], buf[10] = {0};
	id_of(id, 3);
	cleanup_shield_encoder sc_shield_encoder *enc = NULL;
	ck_assert_ok(sc_shield_encryptor_new(key, id, 5, CS, &enc, &err), err);
	ck_assert_fails(sc_shield_encoder_update(enc, buf, 6, buf, &err), err, SCONIFY_ERR_INVALID,
	                "size mismatch");
	ck_assert_ok(sc_shield_encoder_update(enc, buf, 4, buf, &err), err);
	sc_shield_entry *e = NULL;
	ck_assert_fails(sc_shield_encoder_finish(enc, &e, &err), err, SCONIFY_ERR_INVALID,
	                "size mismatch: 4 bytes, the file was declared with 5");
	ck_assert_ptr_null(e);
	ck_assert_fails(sc_shield_encryptor_new(key, id, 5, 1000, &enc, &err), err, SCONIFY_ERR_USAGE,
	                "power of two");
}
END_TEST

/* ---- what an attacker may do to stored files ---- */

struct forged {
	sc_shield_entry e;
	uint8_t tags[8 * SC_SHIELD_TAG_BYTES];
	uint8_t ct[8 * CS];
	size_t len;
};

/* Seals chunks one by one with explicit final flags: encodings the encryptor
 * never makes. sizes: bytes of each chunk; final: its flag. */
static void forge(const sc_shield_key *key, uint8_t id_byte, uint64_t declared_size, const uint8_t *plain,
                  size_t n, const size_t *lens, const bool *final, struct forged *out)
{
	uint8_t fk[32];
	memset(out, 0, sizeof(*out));
	id_of(out->e.file_id, id_byte);
	sc_shield_file_key(key, out->e.file_id, fk);
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		sc_shield_chunk_seal(fk, out->e.file_id, declared_size, CS, i, final[i], plain + off, lens[i],
		                     out->ct + off, out->tags + i * SC_SHIELD_TAG_BYTES);
		off += lens[i];
	}
	out->len = off;
	out->e.kind = SC_SHIELD_ENCRYPTED;
	out->e.size = declared_size;
	out->e.chunk_size = CS;
	out->e.n_chunks = n;
	out->e.macs = out->tags;
}

/* Every negative case below: detected, and nothing released. */
static void assert_rejected(const sc_shield_key *key, const sc_shield_entry *e, const uint8_t *stored,
                            size_t len, sconify_error_kind_t kind, const char *needle)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_close int fd = -1;
	int r = to_fd(key, e, stored, len, &fd, &err);
	ck_assert_fails(r, err, kind, needle);
	if (fd >= 0)
		ck_assert_released_nothing(fd);
	/* and split over threads: a range that verified wrote its plaintext,
	 * which must be gone as well */
	for (size_t t = 0; t < N_THREAD_COUNTS; t++) {
		cleanup_error sconify_error_t perr = NULL;
		cleanup_close int pfd = -1;
		r = to_fd_parallel(key, e, stored, len, thread_counts[t], &pfd, &perr);
		ck_assert_fails(r, perr, kind, needle);
		if (pfd >= 0)
			ck_assert_released_nothing(pfd);
	}
}

START_TEST(no_final_chunk_is_detected)
{
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	cleanup_free uint8_t *plain = pattern(2 * CS, 5);
	struct forged f;
	forge(key, 5, 2 * CS, plain, 2, (size_t[]){CS, CS}, (bool[]){false, false}, &f);
	assert_rejected(key, &f.e, f.ct, f.len, SCONIFY_ERR_INTEGRITY, "chunk 1: authentication failed");
	/* and chunk 1 alone, random access */
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_file sc_shield_file *sf = NULL;
	ck_assert_ok(sc_shield_file_new(key, &f.e, &sf, &err), err);
	uint8_t out[CS];
	ck_assert_fails(sc_shield_file_read_chunk(sf, 1, f.ct + CS, CS, out, &err), err,
	                SCONIFY_ERR_INTEGRITY, "authentication failed");
	ck_assert(all_zero(out, CS));
}
END_TEST

START_TEST(two_final_chunks_are_detected)
{
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	cleanup_free uint8_t *plain = pattern(2 * CS, 6);
	struct forged f;
	forge(key, 6, 2 * CS, plain, 2, (size_t[]){CS, CS}, (bool[]){true, true}, &f);
	assert_rejected(key, &f.e, f.ct, f.len, SCONIFY_ERR_INTEGRITY, "chunk 0: authentication failed");
}
END_TEST

START_TEST(empty_last_chunk_is_detected)
{
	/* age's old ambiguity: a full chunk, then an empty final one. Our chunk
	 * count is a function of the size, so that third tag has no place. */
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	cleanup_free uint8_t *plain = pattern(2 * CS, 7);
	struct forged f;
	forge(key, 7, 2 * CS, plain, 3, (size_t[]){CS, CS, 0}, (bool[]){false, false, true}, &f);
	cleanup_shield_file sc_shield_file *sf = NULL;
	ck_assert_fails(sc_shield_file_new(key, &f.e, &sf, &err), err, SCONIFY_ERR_INVALID,
	                "3 chunks do not fit 8192 bytes");
	/* with the count the size implies, chunk 1 is not final */
	f.e.n_chunks = 2;
	assert_rejected(key, &f.e, f.ct, f.len, SCONIFY_ERR_INTEGRITY, "chunk 1: authentication failed");
}
END_TEST

START_TEST(truncation_at_a_chunk_boundary_is_detected)
{
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	uint8_t id[16];
	id_of(id, 8);
	cleanup_free uint8_t *plain = pattern(3 * CS, 8);
	cleanup_free uint8_t *ct = NULL;
	cleanup_shield_entry sc_shield_entry *e =
	        protect(key, SC_SHIELD_ENCRYPTED, id, plain, 3 * CS, CS, 1, &ct);
	/* the stored file cut short */
	assert_rejected(key, e, ct, 2 * CS, SCONIFY_ERR_INTEGRITY, "truncated");
	/* the stored file and the entry both cut (the entry would need the key) */
	sc_shield_entry cut = *e;
	cut.size = 2 * CS;
	cut.n_chunks = 2;
	assert_rejected(key, &cut, ct, 2 * CS, SCONIFY_ERR_INTEGRITY, "chunk 0: authentication failed");
}
END_TEST

START_TEST(extension_by_a_chunk_is_detected)
{
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	uint8_t id[16];
	id_of(id, 9);
	cleanup_free uint8_t *plain = pattern(4 * CS, 9);
	cleanup_free uint8_t *ct = NULL;
	/* a file of 3 chunks, then a 4th appended (the ciphertext of a 4-chunk encoding) */
	cleanup_shield_entry sc_shield_entry *e =
	        protect(key, SC_SHIELD_ENCRYPTED, id, plain, 3 * CS, CS, 2, &ct);
	cleanup_free uint8_t *ct4 = NULL;
	cleanup_shield_entry sc_shield_entry *e4 =
	        protect(key, SC_SHIELD_ENCRYPTED, id, plain, 4 * CS, CS, 2, &ct4);
	cleanup_free uint8_t *ext = xmalloc(4 * CS);
	memcpy(ext, ct, 3 * CS);
	memcpy(ext + 3 * CS, ct4 + 3 * CS, CS);
	assert_rejected(key, e, ext, 4 * CS, SCONIFY_ERR_INTEGRITY, "trailing data");
	/* an entry extended by the 4th tag */
	sc_shield_entry longer = *e4;
	memcpy(longer.macs, e->macs, 3 * SC_SHIELD_TAG_BYTES);
	assert_rejected(key, &longer, ext, 4 * CS, SCONIFY_ERR_INTEGRITY, "chunk 0: authentication failed");
}
END_TEST

START_TEST(swapped_chunks_are_detected)
{
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	uint8_t id[16];
	id_of(id, 10);
	cleanup_free uint8_t *plain = pattern(3 * CS, 10);
	cleanup_free uint8_t *ct = NULL;
	cleanup_shield_entry sc_shield_entry *e =
	        protect(key, SC_SHIELD_ENCRYPTED, id, plain, 3 * CS, CS, 3, &ct);
	uint8_t tmp[CS];
	memcpy(tmp, ct, CS);
	memcpy(ct, ct + CS, CS);
	memcpy(ct + CS, tmp, CS);
	assert_rejected(key, e, ct, 3 * CS, SCONIFY_ERR_INTEGRITY, "chunk 0: authentication failed");
	/* with their tags swapped too */
	uint8_t t[SC_SHIELD_TAG_BYTES];
	memcpy(t, e->macs, 16);
	memcpy(e->macs, e->macs + 16, 16);
	memcpy(e->macs + 16, t, 16);
	assert_rejected(key, e, ct, 3 * CS, SCONIFY_ERR_INTEGRITY, "chunk 0: authentication failed");
}
END_TEST

START_TEST(chunk_from_another_file_is_detected)
{
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	uint8_t ida[16], idb[16];
	id_of(ida, 11);
	id_of(idb, 12);
	cleanup_free uint8_t *plain = pattern(2 * CS, 11);
	cleanup_free uint8_t *cta = NULL, *ctb = NULL;
	/* same key, same size, even the same plaintext */
	cleanup_shield_entry sc_shield_entry *a =
	        protect(key, SC_SHIELD_ENCRYPTED, ida, plain, 2 * CS, CS, 1, &cta);
	cleanup_shield_entry sc_shield_entry *b =
	        protect(key, SC_SHIELD_ENCRYPTED, idb, plain, 2 * CS, CS, 1, &ctb);
	memcpy(cta + CS, ctb + CS, CS);
	assert_rejected(key, a, cta, 2 * CS, SCONIFY_ERR_INTEGRITY, "chunk 1: authentication failed");
	memcpy(a->macs + 16, b->macs + 16, 16);
	assert_rejected(key, a, cta, 2 * CS, SCONIFY_ERR_INTEGRITY, "chunk 1: authentication failed");
}
END_TEST

START_TEST(flipped_ciphertext_byte_is_detected)
{
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	uint8_t id[16];
	id_of(id, 13);
	cleanup_free uint8_t *plain = pattern(2 * CS + 5, 13);
	cleanup_free uint8_t *ct = NULL;
	cleanup_shield_entry sc_shield_entry *e =
	        protect(key, SC_SHIELD_ENCRYPTED, id, plain, 2 * CS + 5, CS, 1, &ct);
	ct[2 * CS + 4] ^= 1; /* the last chunk: two verified chunks were written first */
	assert_rejected(key, e, ct, 2 * CS + 5, SCONIFY_ERR_INTEGRITY, "chunk 2: authentication failed");
}
END_TEST

START_TEST(wrong_key_is_detected)
{
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	uint8_t other_bytes[32];
	memcpy(other_bytes, key_bytes, 32);
	other_bytes[31] ^= 0x80;
	cleanup_shield_key sc_shield_key *other = sc_shield_key_new(other_bytes);
	uint8_t id[16];
	id_of(id, 14);
	cleanup_free uint8_t *plain = pattern(CS + 1, 14);
	cleanup_free uint8_t *ct = NULL;
	cleanup_shield_entry sc_shield_entry *e =
	        protect(key, SC_SHIELD_ENCRYPTED, id, plain, CS + 1, CS, 1, &ct);
	assert_rejected(other, e, ct, CS + 1, SCONIFY_ERR_INTEGRITY, "chunk 0: authentication failed");
}
END_TEST

START_TEST(truncated_tags_are_rejected)
{
	static const size_t cut[] = {12, 4, 1, 0, 17};
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	uint8_t id[16], fk[32], ct[100], tag[32], out[100];
	id_of(id, 15);
	sc_shield_file_key(key, id, fk);
	cleanup_free uint8_t *plain = pattern(100, 15);
	sc_shield_chunk_seal(fk, id, 100, CS, 0, true, plain, 100, ct, tag);
	memset(tag + 16, 0, 16);
	ck_assert_ok(sc_shield_chunk_open(fk, id, 100, CS, 0, true, ct, 100, out, tag, 16, &err), err);
	ck_assert_mem_eq(out, plain, 100);
	/* OpenSSL would accept each prefix of the real tag; we do not. */
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		memset(out, 0xaa, sizeof(out));
		ck_assert_fails(
		        sc_shield_chunk_open(fk, id, 100, CS, 0, true, ct, 100, out, tag, cut[i], &err), err,
		        SCONIFY_ERR_INTEGRITY, "tag length");
		ck_assert(all_zero(out, sizeof(out)));
		sconify_error_free(&err);
	}
}
END_TEST

START_TEST(flipped_authenticated_byte_is_detected)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free uint8_t *plain = pattern(3 * CS, 16);
	cleanup_shield_entry sc_shield_entry *e =
	        protect(NULL, SC_SHIELD_AUTHENTICATED, NULL, plain, 3 * CS, CS, 2, NULL);
	plain[2 * CS + 100] ^= 4;
	assert_rejected(NULL, e, plain, 3 * CS, SCONIFY_ERR_INTEGRITY, "chunk 2: hash mismatch");
	cleanup_shield_file sc_shield_file *f = NULL;
	ck_assert_ok(sc_shield_file_new(NULL, e, &f, &err), err);
	uint8_t out[CS];
	ck_assert_fails(sc_shield_file_read_chunk(f, 2, plain + 2 * CS, CS, out, &err), err,
	                SCONIFY_ERR_INTEGRITY, "hash mismatch");
	ck_assert(all_zero(out, CS));
	ck_assert_fails(sc_shield_file_read_chunk(f, 1, plain + CS, CS - 1, out, &err), err,
	                SCONIFY_ERR_INTEGRITY, "size mismatch");
	ck_assert_fails(sc_shield_file_read_chunk(f, 3, plain, CS, out, &err), err, SCONIFY_ERR_INVALID,
	                "chunk 3 of a file of 3 chunks");
}
END_TEST

START_TEST(output_must_be_a_regular_file)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free uint8_t *plain = pattern(10, 17);
	cleanup_shield_entry sc_shield_entry *e =
	        protect(NULL, SC_SHIELD_AUTHENTICATED, NULL, plain, 10, CS, 0, NULL);
	cleanup_shield_file sc_shield_file *f = NULL;
	ck_assert_ok(sc_shield_file_new(NULL, e, &f, &err), err);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	cleanup_reader sc_reader *r = sc_mem_reader_new(plain, 10);
	ck_assert_fails(sc_shield_file_to_fd(f, r, p[1], &err), err, SCONIFY_ERR_USAGE, "regular files only");
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(parallel_round_trip_over_sizes_kinds_and_threads)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	/* 0..40 chunks, full and short last chunks, each kind */
	size_t size = (size_t)(_i / 2) * CS + ((_i / 2) % 2 ? 123 : 0);
	sc_shield_kind kind = _i % 2 ? SC_SHIELD_AUTHENTICATED : SC_SHIELD_ENCRYPTED;
	uint8_t id[16];
	id_of(id, 21);
	cleanup_free uint8_t *plain = pattern(size, (uint32_t)_i);
	cleanup_free uint8_t *stored = NULL;
	cleanup_shield_entry sc_shield_entry *e =
	        protect(kind == SC_SHIELD_ENCRYPTED ? key : NULL, kind, id, plain, size, CS, 3, &stored);
	cleanup_free uint8_t *back = xmalloc(size + 1);
	for (size_t t = 0; t < N_THREAD_COUNTS; t++) {
		cleanup_close int fd = -1;
		ck_assert_ok(to_fd_parallel(key, e, stored, size, thread_counts[t], &fd, &err), err);
		ck_assert_int_eq(fd_size(fd), (off_t)size);
		ck_assert_int_eq(pread(fd, back, size + 1, 0), (ssize_t)size);
		ck_assert_mem_eq(back, plain, size);
	}
}
END_TEST

START_TEST(parallel_failure_in_one_range_releases_the_others_plaintext_too)
{
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	uint8_t id[16];
	id_of(id, 22);
	size_t size = 40 * CS;
	cleanup_free uint8_t *plain = pattern(size, 22);
	cleanup_free uint8_t *ct = NULL;
	cleanup_shield_entry sc_shield_entry *e =
	        protect(key, SC_SHIELD_ENCRYPTED, id, plain, size, CS, 4, &ct);
	/* The last of 4 ranges fails; the first three verified and were
	 * written: all of it is taken back. */
	ct[39 * CS + 5] ^= 1;
	cleanup_error sconify_error_t err = NULL;
	cleanup_close int fd = -1;
	ck_assert_fails(to_fd_parallel(key, e, ct, size, 4, &fd, &err), err, SCONIFY_ERR_INTEGRITY,
	                "chunk 39: authentication failed");
	ck_assert_released_nothing(fd);
	/* Two ranges fail: the error is the first failing chunk's, whichever
	 * thread got there first. */
	ct[12 * CS] ^= 1;
	cleanup_error sconify_error_t err2 = NULL;
	cleanup_close int fd2 = -1;
	ck_assert_fails(to_fd_parallel(key, e, ct, size, 4, &fd2, &err2), err2, SCONIFY_ERR_INTEGRITY,
	                "chunk 12: authentication failed");
	ck_assert_released_nothing(fd2);
}
END_TEST

START_TEST(parallel_output_must_be_a_regular_file)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free uint8_t *plain = pattern(10, 17);
	cleanup_shield_entry sc_shield_entry *e =
	        protect(NULL, SC_SHIELD_AUTHENTICATED, NULL, plain, 10, CS, 0, NULL);
	cleanup_shield_file sc_shield_file *f = NULL;
	ck_assert_ok(sc_shield_file_new(NULL, e, &f, &err), err);
	cleanup_close int in = tmp_fd();
	ck_assert_int_eq(write(in, plain, 10), 10);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_fails(sc_shield_file_to_fd_parallel(f, in, p[1], 2, &err), err, SCONIFY_ERR_USAGE,
	                "regular files only");
	close(p[0]);
	close(p[1]);
}
END_TEST

/* ---- metadata ---- */

struct sample {
	sc_shield_key *key;
	uint8_t *data;
	size_t len;
	sc_shield_pin pin;
};

static void sample_free(struct sample *s)
{
	sc_shield_key_free(s->key);
	free(s->data);
}

/* /app encrypted, /app/public not protected, /lib authenticated; two files,
 * one hard link, one authenticated file. */
static void make_sample(bool reproducible, struct sample *s)
{
	cleanup_error sconify_error_t err = NULL;
	s->key = sc_shield_key_new(key_bytes);
	cleanup_shield_builder sc_shield_builder *b = NULL;
	ck_assert_ok(sc_shield_builder_new(CS, &b, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(b, "/app", SC_SHIELD_ENCRYPTED, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(b, "/lib", SC_SHIELD_AUTHENTICATED, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(b, "/app/public", SC_SHIELD_NOT_PROTECTED, &err), err);
	ck_assert_int_eq(sc_shield_builder_region_of(b, "/app/x/y"), SC_SHIELD_ENCRYPTED);
	ck_assert_int_eq(sc_shield_builder_region_of(b, "/apple"), SC_SHIELD_NOT_PROTECTED);
	ck_assert_int_eq(sc_shield_builder_region_of(b, "/app/public/a"), SC_SHIELD_NOT_PROTECTED);
	const char *paths[] = {"/app/b", "/app/a/c"};
	for (int i = 0; i < 2; i++) {
		uint8_t id[16];
		if (reproducible)
			sc_shield_file_id_derive(s->key, "sha256:11", 1024 * (uint64_t)i, paths[i], id);
		else
			ck_assert_ok(sc_shield_file_id_random(id, &err), err);
		cleanup_free uint8_t *plain = pattern(CS + (size_t)i, (uint32_t)i);
		cleanup_shield_entry sc_shield_entry *e =
		        protect(s->key, SC_SHIELD_ENCRYPTED, id, plain, CS + (size_t)i, CS, 1, NULL);
		ck_assert_ok(sc_shield_builder_add_file(b, paths[i], e, &err), err);
	}
	ck_assert_ok(sc_shield_builder_add_link(b, "/app/link", "/app/b", &err), err);
	cleanup_free uint8_t *lib = pattern(100, 3);
	cleanup_shield_entry sc_shield_entry *le =
	        protect(NULL, SC_SHIELD_AUTHENTICATED, NULL, lib, 100, CS, 0, NULL);
	ck_assert_ok(sc_shield_builder_add_file(b, "/lib/x.so", le, &err), err);
	ck_assert_ok(sc_shield_builder_add_symlink(b, "/lib/x.so.1", "x.so", &err), err);
	ck_assert_ok(sc_shield_builder_add_symlink(b, "/app/etc", "/etc/app", &err), err);
	ck_assert_ok(sc_shield_builder_seal(b, s->key, reproducible, &s->data, &s->len, &s->pin, &err), err);
}

START_TEST(metadata_round_trip_and_lookup)
{
	cleanup_error sconify_error_t err = NULL;
	struct sample s;
	make_sample(false, &s);
	cleanup_shield_metadata sc_shield_metadata *md = NULL;
	ck_assert_ok(sc_shield_metadata_open(s.key, s.data, s.len, &s.pin, &md, &err), err);
	ck_assert_uint_eq(sc_shield_metadata_chunk_size(md), CS);
	ck_assert_uint_eq(sc_shield_metadata_regions(md), 4);
	const char *rp;
	sc_shield_kind k;
	sc_shield_metadata_region(md, 0, &rp, &k);
	ck_assert_str_eq(rp, "/");
	ck_assert_int_eq(k, SC_SHIELD_NOT_PROTECTED);

	const sc_shield_entry *e, *e2;
	ck_assert_ok(sc_shield_lookup(md, "/app/b", &k, &e, &err), err);
	ck_assert_int_eq(k, SC_SHIELD_ENCRYPTED);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->size, CS);
	/* a hard link: the same entry by either name */
	ck_assert_ok(sc_shield_lookup(md, "/app/link", &k, &e2, &err), err);
	ck_assert_ptr_eq(e, e2);
	ck_assert_ok(sc_shield_lookup(md, "/app/a/c", &k, &e2, &err), err);
	ck_assert_uint_eq(e2->size, CS + 1);
	/* protected region, unknown path: distinguishable */
	ck_assert_ok(sc_shield_lookup(md, "/app/unknown", &k, &e, &err), err);
	ck_assert_int_eq(k, SC_SHIELD_ENCRYPTED);
	ck_assert_ptr_null(e);
	/* /app does not cover /apple; the default region does */
	ck_assert_ok(sc_shield_lookup(md, "/apple", &k, &e, &err), err);
	ck_assert_int_eq(k, SC_SHIELD_NOT_PROTECTED);
	ck_assert_ptr_null(e);
	ck_assert_ok(sc_shield_lookup(md, "/app/public/x", &k, &e, &err), err);
	ck_assert_int_eq(k, SC_SHIELD_NOT_PROTECTED);
	ck_assert_ok(sc_shield_lookup(md, "/lib/x.so", &k, &e, &err), err);
	ck_assert_int_eq(k, SC_SHIELD_AUTHENTICATED);
	ck_assert_int_eq(e->kind, SC_SHIELD_AUTHENTICATED);
	ck_assert_ok(sc_shield_lookup(md, "/", &k, &e, &err), err);
	ck_assert_int_eq(k, SC_SHIELD_NOT_PROTECTED);
	/* symbolic links: recorded in protected regions, looked up by name */
	const char *target;
	ck_assert(sc_shield_walk_checks(md, "/lib/x.so.1", &target));
	ck_assert_str_eq(target, "x.so");
	ck_assert(sc_shield_walk_checks(md, "/app/etc", &target));
	ck_assert_str_eq(target, "/etc/app");
	ck_assert_str_eq(sc_shield_symlink_at(md, "/app/etc"), "/etc/app");
	ck_assert(sc_shield_walk_checks(md, "/app/b", &target));
	ck_assert_ptr_null(target);
	ck_assert(sc_shield_walk_checks(md, "/app", &target)); /* a region's own name */
	ck_assert_ptr_null(target);
	ck_assert(!sc_shield_walk_checks(md, "/app/public/x", &target));
	ck_assert_ptr_null(target);
	ck_assert(!sc_shield_walk_checks(md, "/apple", &target));
	ck_assert(!sc_shield_walk_checks(md, "/", &target));
	ck_assert_ptr_null(sc_shield_symlink_at(md, "/app/b"));
	ck_assert_uint_eq(sc_shield_metadata_symlinks(md), 2);
	ck_assert_fails(sc_shield_lookup(md, "/app/../app/b", &k, &e, &err), err, SCONIFY_ERR_INVALID,
	                "not an absolute normal path");
	ck_assert_fails(sc_shield_lookup(md, "app/b", &k, &e, &err), err, SCONIFY_ERR_INVALID, "normal path");
	ck_assert_fails(sc_shield_lookup(md, "/app/b/", &k, &e, &err), err, SCONIFY_ERR_INVALID,
	                "normal path");
	sample_free(&s);
}
END_TEST

START_TEST(metadata_every_flipped_byte_fails_open)
{
	struct sample s;
	make_sample(true, &s);
	ck_assert_uint_lt(s.len, 2000);
	for (size_t i = 0; i < s.len; i++) {
		for (int repin = 0; repin < 2; repin++) {
			cleanup_error sconify_error_t err = NULL;
			cleanup_shield_metadata sc_shield_metadata *md = NULL;
			s.data[i] ^= 0x01;
			/* repin: an attacker who could also change the pinned value
			 * still cannot forge the seal */
			sc_shield_pin pin = s.pin;
			if (repin)
				sc_shield_pin_of(s.data, s.len, &pin);
			int r = sc_shield_metadata_open(s.key, s.data, s.len, &pin, &md, &err);
			ck_assert_msg(r < 0, "flipping byte %zu (repin %d) went unnoticed", i, repin);
			ck_assert_ptr_null(md);
			if (!repin)
				ck_assert_fails(r, err, SCONIFY_ERR_INTEGRITY, "pinned value");
			s.data[i] ^= 0x01;
		}
	}
	sample_free(&s);
}
END_TEST

START_TEST(metadata_wrong_key_pin_and_cut_tag_fail)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_metadata sc_shield_metadata *md = NULL;
	struct sample s;
	make_sample(false, &s);
	uint8_t other_bytes[32] = {0};
	cleanup_shield_key sc_shield_key *other = sc_shield_key_new(other_bytes);
	ck_assert_fails(sc_shield_metadata_open(other, s.data, s.len, &s.pin, &md, &err), err,
	                SCONIFY_ERR_INTEGRITY, "authentication failed");
	sc_shield_pin bad = s.pin;
	bad.bytes[0] ^= 1;
	ck_assert_fails(sc_shield_metadata_open(s.key, s.data, s.len, &bad, &md, &err), err,
	                SCONIFY_ERR_INTEGRITY, "does not match the pinned value");
	/* the seal's tag cut to 12, 4, 1 bytes (pins recomputed) */
	static const size_t keep[] = {12, 4, 1};
	for (size_t i = 0; i < 3; i++) {
		size_t len = s.len - (SC_SHIELD_TAG_BYTES - keep[i]);
		sc_shield_pin p;
		sc_shield_pin_of(s.data, len, &p);
		ck_assert_fails(sc_shield_metadata_open(s.key, s.data, len, &p, &md, &err), err,
		                SCONIFY_ERR_INTEGRITY, "authentication failed");
	}
	sc_shield_pin p;
	sc_shield_pin_of(s.data, 20, &p);
	ck_assert_fails(sc_shield_metadata_open(s.key, s.data, 20, &p, &md, &err), err, SCONIFY_ERR_INVALID,
	                "truncated");
	ck_assert_ptr_null(md);
	sample_free(&s);
}
END_TEST

START_TEST(reproducible_mode_gives_identical_bytes)
{
	struct sample a, b;
	make_sample(true, &a);
	make_sample(true, &b);
	ck_assert_uint_eq(a.len, b.len);
	ck_assert_mem_eq(a.data, b.data, a.len);
	ck_assert_mem_eq(a.pin.bytes, b.pin.bytes, SC_SHIELD_PIN_BYTES);
	sample_free(&a);
	sample_free(&b);
	make_sample(false, &a);
	make_sample(false, &b);
	ck_assert_uint_eq(a.len, b.len);
	ck_assert(memcmp(a.data, b.data, a.len) != 0);
	/* different nonces at least */
	ck_assert(memcmp(a.data + 12, b.data + 12, SC_SHIELD_NONCE_BYTES) != 0);
	sample_free(&a);
	sample_free(&b);
}
END_TEST

START_TEST(builder_refuses_inconsistent_metadata)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	uint8_t id[16];
	id_of(id, 20);
	cleanup_free uint8_t *plain = pattern(10, 20);
	cleanup_shield_entry sc_shield_entry *e =
	        protect(key, SC_SHIELD_ENCRYPTED, id, plain, 10, CS, 0, NULL);
	uint8_t *data = NULL;
	size_t len = 0;
	sc_shield_pin pin;

	/* an encrypted file outside any encrypted region */
	cleanup_shield_builder sc_shield_builder *b = NULL;
	ck_assert_ok(sc_shield_builder_new(CS, &b, &err), err);
	ck_assert_ok(sc_shield_builder_add_file(b, "/etc/x", e, &err), err);
	ck_assert_fails(sc_shield_builder_seal(b, key, true, &data, &len, &pin, &err), err,
	                SCONIFY_ERR_INVALID, "encrypted file in a not-protected region");
	/* a hard link from an unprotected name to protected content */
	ck_assert_ok(sc_shield_builder_add_region(b, "/etc", SC_SHIELD_ENCRYPTED, &err), err);
	ck_assert_ok(sc_shield_builder_add_link(b, "/tmp/x", "/etc/x", &err), err);
	ck_assert_fails(sc_shield_builder_seal(b, key, true, &data, &len, &pin, &err), err,
	                SCONIFY_ERR_INVALID, "`/tmp/x': encrypted file in a not-protected region");

	cleanup_shield_builder sc_shield_builder *b2 = NULL;
	ck_assert_ok(sc_shield_builder_new(CS, &b2, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(b2, "/", SC_SHIELD_ENCRYPTED, &err), err);
	ck_assert_ok(sc_shield_builder_add_file(b2, "/x", e, &err), err);
	ck_assert_ok(sc_shield_builder_add_file(b2, "/x", e, &err), err);
	ck_assert_fails(sc_shield_builder_seal(b2, key, true, &data, &len, &pin, &err), err,
	                SCONIFY_ERR_USAGE, "given twice");
	cleanup_shield_builder sc_shield_builder *b3 = NULL;
	ck_assert_ok(sc_shield_builder_new(CS, &b3, &err), err);
	ck_assert_ok(sc_shield_builder_add_link(b3, "/y", "/nothing", &err), err);
	ck_assert_fails(sc_shield_builder_seal(b3, key, true, &data, &len, &pin, &err), err,
	                SCONIFY_ERR_USAGE, "is not a protected file");
	ck_assert_fails(sc_shield_builder_add_region(b3, "/a/./b", SC_SHIELD_ENCRYPTED, &err), err,
	                SCONIFY_ERR_INVALID, "not an absolute normal path");
	ck_assert_fails(sc_shield_builder_add_file(b3, "/", e, &err), err, SCONIFY_ERR_USAGE, "cannot be");
	/* symlinks: only in protected regions, never at a file's path, with a
	 * target readlink(2) can return */
	cleanup_shield_builder sc_shield_builder *b5 = NULL;
	ck_assert_ok(sc_shield_builder_new(CS, &b5, &err), err);
	ck_assert_ok(sc_shield_builder_add_symlink(b5, "/etc/l", "x", &err), err);
	ck_assert_fails(sc_shield_builder_seal(b5, key, true, &data, &len, &pin, &err), err,
	                SCONIFY_ERR_INVALID, "symlink `/etc/l' in a not-protected region");
	ck_assert_ok(sc_shield_builder_add_region(b5, "/etc", SC_SHIELD_ENCRYPTED, &err), err);
	ck_assert_ok(sc_shield_builder_add_file(b5, "/etc/l", e, &err), err);
	ck_assert_fails(sc_shield_builder_seal(b5, key, true, &data, &len, &pin, &err), err,
	                SCONIFY_ERR_INVALID, "symlink `/etc/l' is also a protected file");
	ck_assert_fails(sc_shield_builder_add_symlink(b5, "/etc/m", "", &err), err, SCONIFY_ERR_UNSUPPORTED,
	                "a target of 0 bytes");
	cleanup_free char *longt = xmalloc(SC_SHIELD_PATH_MAX + 1);
	memset(longt, 'a', SC_SHIELD_PATH_MAX);
	longt[SC_SHIELD_PATH_MAX] = '\0';
	ck_assert_fails(sc_shield_builder_add_symlink(b5, "/etc/m", longt, &err), err,
	                SCONIFY_ERR_UNSUPPORTED, "a target of 4096 bytes");
	longt[SC_SHIELD_PATH_MAX - 1] = '\0';
	ck_assert_ok(sc_shield_builder_add_symlink(b5, "/etc/m", longt, &err), err);
	ck_assert_fails(sc_shield_builder_add_symlink(b5, "etc/n", "x", &err), err, SCONIFY_ERR_INVALID,
	                "not an absolute normal path");
	cleanup_shield_builder sc_shield_builder *b6 = NULL;
	ck_assert_ok(sc_shield_builder_new(CS, &b6, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(b6, "/etc", SC_SHIELD_ENCRYPTED, &err), err);
	ck_assert_ok(sc_shield_builder_add_symlink(b6, "/etc/l", "x", &err), err);
	ck_assert_ok(sc_shield_builder_add_symlink(b6, "/etc/l", "y", &err), err);
	ck_assert_fails(sc_shield_builder_seal(b6, key, true, &data, &len, &pin, &err), err,
	                SCONIFY_ERR_INVALID, "symlink `/etc/l': duplicate or out of order");
	cleanup_shield_builder sc_shield_builder *b4 = NULL;
	ck_assert_ok(sc_shield_builder_new(2 * CS, &b4, &err), err);
	ck_assert_fails(sc_shield_builder_add_file(b4, "/x", e, &err), err, SCONIFY_ERR_USAGE,
	                "chunks of 4096");
	ck_assert_ptr_null(data);
}
END_TEST

START_TEST(empty_metadata_seals_and_opens)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	cleanup_shield_builder sc_shield_builder *b = NULL;
	ck_assert_ok(sc_shield_builder_new(0, &b, &err), err);
	cleanup_free uint8_t *data = NULL;
	size_t len = 0;
	sc_shield_pin pin;
	ck_assert_ok(sc_shield_builder_seal(b, key, false, &data, &len, &pin, &err), err);
	cleanup_shield_metadata sc_shield_metadata *md = NULL;
	ck_assert_ok(sc_shield_metadata_open(key, data, len, &pin, &md, &err), err);
	sc_shield_kind k;
	const sc_shield_entry *e;
	ck_assert_ok(sc_shield_lookup(md, "/bin/sh", &k, &e, &err), err);
	ck_assert_int_eq(k, SC_SHIELD_NOT_PROTECTED);
	ck_assert_uint_eq(sc_shield_metadata_chunk_size(md), SC_SHIELD_CHUNK_DEFAULT);
}
END_TEST

START_TEST(walk_checks_regions_and_the_directories_above_them)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_key sc_shield_key *key = sc_shield_key_new(key_bytes);
	cleanup_shield_builder sc_shield_builder *b = NULL;
	ck_assert_ok(sc_shield_builder_new(0, &b, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(b, "/srv/data/secret", SC_SHIELD_ENCRYPTED, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(b, "/opt/pub", SC_SHIELD_NOT_PROTECTED, &err), err);
	cleanup_free uint8_t *data = NULL;
	size_t len = 0;
	sc_shield_pin pin;
	ck_assert_ok(sc_shield_builder_seal(b, key, false, &data, &len, &pin, &err), err);
	cleanup_shield_metadata sc_shield_metadata *md = NULL;
	ck_assert_ok(sc_shield_metadata_open(key, data, len, &pin, &md, &err), err);
	const char *target;
	/* a link at a directory above a protected region would move it */
	ck_assert(sc_shield_walk_checks(md, "/srv", &target));
	ck_assert(sc_shield_walk_checks(md, "/srv/data", &target));
	ck_assert(sc_shield_walk_checks(md, "/srv/data/secret", &target));
	ck_assert(sc_shield_walk_checks(md, "/srv/data/secret/x", &target));
	ck_assert_ptr_null(target);
	ck_assert(!sc_shield_walk_checks(md, "/srv/other", &target));
	ck_assert(!sc_shield_walk_checks(md, "/srv/data/secrets", &target));
	ck_assert(!sc_shield_walk_checks(md, "/sr", &target));
	ck_assert(!sc_shield_walk_checks(md, "/opt", &target)); /* above a not-protected one */
}
END_TEST

/* Hand-made bodies the parser must refuse (it is outside input once opened). */
START_TEST(metadata_parser_is_strict)
{
	static const struct {
		const char *name;
		const char *hex;
		const char *needle;
	} bad[] = {
	        {"empty", "", "truncated"},
	        {"chunk size 1000", "000003e8", "chunk size 1000"},
	        {"no regions",
	         "00001000"
	         "00000000",
	         "0 regions"},
	        {"first region not /",
	         "00001000"
	         "00000001"
	         "00"
	         "0002"
	         "2f61",
	         "the first region is not"},
	        {"region kind 3",
	         "00001000"
	         "00000001"
	         "03"
	         "0001"
	         "2f",
	         "has kind 3"},
	        {"regions out of order",
	         "00001000"
	         "00000003"
	         "00"
	         "0001"
	         "2f"
	         "01"
	         "0002"
	         "2f62"
	         "01"
	         "0002"
	         "2f61",
	         "out of order"},
	        {"dot dot region",
	         "00001000"
	         "00000002"
	         "00"
	         "0001"
	         "2f"
	         "01"
	         "0003"
	         "2f2e2e",
	         "normal path"},
	        {"NUL in region",
	         "00001000"
	         "00000002"
	         "00"
	         "0001"
	         "2f"
	         "01"
	         "0003"
	         "2f6100",
	         "normal path"},
	        {"trailing slash",
	         "00001000"
	         "00000002"
	         "00"
	         "0001"
	         "2f"
	         "01"
	         "0003"
	         "2f612f",
	         "normal path"},
	        {"no entry count",
	         "00001000"
	         "00000001"
	         "00"
	         "0001"
	         "2f",
	         "entry count: truncated"},
	        {"too many entries",
	         "00001000"
	         "00000001"
	         "00"
	         "0001"
	         "2f"
	         "ffffffff",
	         "entries: truncated"},
	        {"trailing",
	         "00001000"
	         "00000001"
	         "00"
	         "0001"
	         "2f"
	         "00000000"
	         "00000000"
	         "00000000"
	         "00",
	         "trailing data"},
	        {"no symlink count",
	         "00001000"
	         "00000001"
	         "00"
	         "0001"
	         "2f"
	         "00000000"
	         "00000000",
	         "symlink count: truncated"},
	        {"too many symlinks",
	         "00001000"
	         "00000001"
	         "01"
	         "0001"
	         "2f"
	         "00000000"
	         "00000000"
	         "0000ffff"
	         "0002"
	         "2f61"
	         "0001"
	         "62",
	         "symlinks: truncated"},
	        {"symlink target cut",
	         "00001000"
	         "00000001"
	         "01"
	         "0001"
	         "2f"
	         "00000000"
	         "00000000"
	         "00000001"
	         "0002"
	         "2f61"
	         "0005"
	         "62",
	         "symlink target: truncated"},
	        {"symlink in a not-protected region",
	         "00001000"
	         "00000001"
	         "00"
	         "0001"
	         "2f"
	         "00000000"
	         "00000000"
	         "00000001"
	         "0002"
	         "2f61"
	         "0001"
	         "62",
	         "in a not-protected region"},
	        {"symlink with an empty target",
	         "00001000"
	         "00000001"
	         "01"
	         "0001"
	         "2f"
	         "00000000"
	         "00000000"
	         "00000001"
	         "0002"
	         "2f61"
	         "0000",
	         "the target is empty"},
	        {"symlink target with a NUL",
	         "00001000"
	         "00000001"
	         "01"
	         "0001"
	         "2f"
	         "00000000"
	         "00000000"
	         "00000001"
	         "0002"
	         "2f61"
	         "0002"
	         "6200",
	         "holds a NUL"},
	        {"symlinks out of order",
	         "00001000"
	         "00000001"
	         "01"
	         "0001"
	         "2f"
	         "00000000"
	         "00000000"
	         "00000002"
	         "0002"
	         "2f62"
	         "0001"
	         "62"
	         "0002"
	         "2f61"
	         "0001"
	         "62",
	         "duplicate or out of order"},
	        {"symlink at a file's path",
	         "00001000"
	         "00000001"
	         "02"
	         "0001"
	         "2f"
	         "00000001"
	         "02"
	         "0000000000000000"
	         "0000000000000000000000000000000000000000000000000000000000000000"
	         "00000001"
	         "0002"
	         "2f61"
	         "00000000"
	         "00000001"
	         "0002"
	         "2f61"
	         "0001"
	         "62",
	         "is also a protected file"},
	        {"symlink at /",
	         "00001000"
	         "00000001"
	         "01"
	         "0001"
	         "2f"
	         "00000000"
	         "00000000"
	         "00000001"
	         "0001"
	         "2f"
	         "0001"
	         "62",
	         "cannot be a symlink"},
	        {"unused entry",
	         "00001000"
	         "00000001"
	         "02"
	         "0001"
	         "2f"
	         "00000001"
	         "02"
	         "0000000000000000"
	         "0000000000000000000000000000000000000000000000000000000000000000"
	         "00000000",
	         "1 entries no path uses"},
	        {"huge file",
	         "00001000"
	         "00000001"
	         "02"
	         "0001"
	         "2f"
	         "00000001"
	         "02"
	         "ffffffffffffffff"
	         "0000000000000000000000000000000000000000000000000000000000000000"
	         "00000000",
	         "larger than the limit"},
	        {"missing tags",
	         "00001000"
	         "00000001"
	         "02"
	         "0001"
	         "2f"
	         "00000001"
	         "02"
	         "0000000000002000"
	         "0000000000000000000000000000000000000000000000000000000000000000"
	         "00000000",
	         "chunk tags: truncated"},
	        {"entry kind 0",
	         "00001000"
	         "00000001"
	         "02"
	         "0001"
	         "2f"
	         "00000001"
	         "00"
	         "0000000000000000"
	         "0000000000000000000000000000000000000000000000000000000000000000"
	         "00000000",
	         "entry 0 has kind 0"},
	        {"entry index ahead",
	         "00001000"
	         "00000001"
	         "02"
	         "0001"
	         "2f"
	         "00000001"
	         "02"
	         "0000000000000000"
	         "0000000000000000000000000000000000000000000000000000000000000000"
	         "00000001"
	         "0002"
	         "2f61"
	         "00000001",
	         "out of order or missing"},
	        {"kind against region",
	         "00001000"
	         "00000001"
	         "01"
	         "0001"
	         "2f"
	         "00000001"
	         "02"
	         "0000000000000000"
	         "0000000000000000000000000000000000000000000000000000000000000000"
	         "00000001"
	         "0002"
	         "2f61"
	         "00000000",
	         "authenticated file in a encrypted region"},
	        {"root as a file",
	         "00001000"
	         "00000001"
	         "02"
	         "0001"
	         "2f"
	         "00000001"
	         "02"
	         "0000000000000000"
	         "0000000000000000000000000000000000000000000000000000000000000000"
	         "00000001"
	         "0001"
	         "2f"
	         "00000000",
	         "cannot be a protected file"},
	};
	cleanup_error sconify_error_t err = NULL;
	const char *hex = bad[_i].hex;
	size_t n = strlen(hex) / 2;
	cleanup_free uint8_t *body = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &body[i]);
	sc_shield_metadata *md = NULL;
	int r = sc_shield_metadata_parse(body, n, &md, &err);
	ck_assert_msg(r < 0, "%s: accepted", bad[_i].name);
	ck_assert_fails(r, err, sconify_error_kind(err), bad[_i].needle);
	ck_assert_ptr_null(md);
}
END_TEST

START_TEST(metadata_parser_accepts_only_canonical_bodies)
{
	cleanup_error sconify_error_t err = NULL;
	struct sample s;
	make_sample(true, &s);
	/* take the body back out of the seal, parse it, serialise it again */
	cleanup_shield_metadata sc_shield_metadata *md = NULL;
	ck_assert_ok(sc_shield_metadata_open(s.key, s.data, s.len, &s.pin, &md, &err), err);
	cleanup_free uint8_t *body = NULL;
	size_t len = 0;
	sc_shield_metadata_serialize(md, &body, &len);
	ck_assert_uint_eq(len, s.len - SC_SHIELD_HEADER_BYTES - SC_SHIELD_TAG_BYTES);
	cleanup_free uint8_t *sealed = NULL;
	size_t slen = 0;
	sc_shield_pin pin;
	sc_shield_seal_body(s.key, body, len, s.data + SC_SHIELD_MAGIC_BYTES + 4, &sealed, &slen, &pin);
	ck_assert_uint_eq(slen, s.len);
	ck_assert_mem_eq(sealed, s.data, s.len);
	sample_free(&s);
}
END_TEST

/* ---- keys ---- */

START_TEST(key_file_round_trip_0600_and_no_overwrite)
{
	cleanup_error sconify_error_t err = NULL;
	char *dir = sc_test_tmpdir();
	cleanup_free char *path = sc_path_join(dir, "volume.key");
	cleanup_shield_key sc_shield_key *key = NULL;
	ck_assert_ok(sc_shield_key_generate(&key, &err), err);
	ck_assert_ok(sc_shield_key_save(key, path, false, &err), err);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	cleanup_shield_key sc_shield_key *back = NULL;
	ck_assert_ok(sc_shield_key_load(path, &back, &err), err);
	char a[65], b[65];
	sc_shield_key_hex(key, a);
	sc_shield_key_hex(back, b);
	ck_assert_str_eq(a, b);
	cleanup_shield_key sc_shield_key *other = NULL;
	ck_assert_ok(sc_shield_key_generate(&other, &err), err);
	ck_assert_fails(sc_shield_key_save(other, path, false, &err), err, SCONIFY_ERR_USAGE,
	                "already exists");
	sc_shield_key_free(back);
	back = NULL;
	ck_assert_ok(sc_shield_key_load(path, &back, &err), err);
	sc_shield_key_hex(back, b);
	ck_assert_str_eq(a, b);
	ck_assert_ok(sc_shield_key_save(other, path, true, &err), err);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	sc_shield_key_free(back);
	back = NULL;
	ck_assert_ok(sc_shield_key_load(path, &back, &err), err);
	sc_shield_key_hex(back, b);
	ck_assert_str_ne(a, b);
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

START_TEST(key_file_rejects_garbage_without_echoing_it)
{
	cleanup_error sconify_error_t err = NULL;
	char *dir = sc_test_tmpdir();
	cleanup_free char *path = sc_path_join(dir, "bad.key");
	static const char *bad[] = {
	        "sconify-shield-key-v1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e\n",
	        "sconify-shield-key-v1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1fzz\n",
	        "sconify-shield-key-v1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g\n",
	        "SECRETSECRET:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
	        "sconify-shield-key-v1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\n",
	        "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(sc_write_file_atomic(path, bad[i], strlen(bad[i]), 0600, NULL), 0);
		sc_shield_key *k = NULL;
		ck_assert_fails(sc_shield_key_load(path, &k, &err), err, SCONIFY_ERR_INVALID,
		                "is not a volume key");
		ck_assert_ptr_null(strstr(sconify_error_message(err), "0a0b0c"));
		ck_assert_ptr_null(strstr(sconify_error_message(err), "SECRET"));
		ck_assert_ptr_null(k);
	}
	const char *good =
	        "sconify-shield-key-v1:000102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f";
	ck_assert_int_eq(sc_write_file_atomic(path, good, strlen(good), 0600, NULL), 0);
	cleanup_shield_key sc_shield_key *k = NULL;
	ck_assert_ok(sc_shield_key_load(path, &k, &err), err);
	ck_assert_fails(sc_shield_key_from_hex("00", &k, &err), err, SCONIFY_ERR_INVALID,
	                "invalid volume key");
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

/* ---- vectors from testdata/shield/make_vectors.py ---- */

static uint8_t *vector(const char *name, size_t *ret_len)
{
	cleanup_free char *rel = xasprintf("shield/vectors/%s", name);
	cleanup_free char *path = sc_test_data(rel);
	char *data = NULL;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_read_file(path, 1 << 20, &data, ret_len, &err), err);
	return (uint8_t *)data;
}

START_TEST(vectors_decrypt_and_reencrypt_byte_for_byte)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *keypath = sc_test_data("shield/vectors/key");
	cleanup_shield_key sc_shield_key *key = NULL;
	ck_assert_ok(sc_shield_key_load(keypath, &key, &err), err);
	size_t mlen, plen, flen;
	cleanup_free uint8_t *meta = vector("metadata", &mlen);
	cleanup_free uint8_t *pinhex = vector("metadata.pin", &plen);
	cleanup_free char *files = (char *)vector("files", &flen);
	ck_assert_uint_eq(plen, 65);
	pinhex[64] = '\0';
	sc_shield_pin pin;
	ck_assert_ok(sc_shield_pin_parse((char *)pinhex, &pin, &err), err);
	cleanup_shield_metadata sc_shield_metadata *md = NULL;
	ck_assert_ok(sc_shield_metadata_open(key, meta, mlen, &pin, &md, &err), err);

	cleanup_shield_builder sc_shield_builder *b = NULL;
	char diff_id[512] = "";
	int n_files = 0, n_symlinks = 0;
	char *save = NULL;
	for (char *line = strtok_r(files, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char w1[64], w2[512], w3[512], w4[512];
		unsigned long long offset = 0;
		int n = sscanf(line, "%63s %511s %511s %511s %llu", w1, w2, w3, w4, &offset);
		if (strcmp(w1, "chunk-size") == 0) {
			ck_assert_ok(sc_shield_builder_new((uint32_t)atoi(w2), &b, &err), err);
		} else if (strcmp(w1, "diff-id") == 0) {
			snprintf(diff_id, sizeof(diff_id), "%s", w2);
		} else if (strcmp(w1, "region") == 0) {
			sc_shield_kind k;
			ck_assert_ok(sc_shield_kind_parse(w2, &k, &err), err);
			ck_assert_ok(sc_shield_builder_add_region(b, w3, k, &err), err);
		} else if (strcmp(w1, "link") == 0) {
			ck_assert_ok(sc_shield_builder_add_link(b, w2, w3, &err), err);
			sc_shield_kind k1, k2;
			const sc_shield_entry *e1, *e2;
			ck_assert_ok(sc_shield_lookup(md, w2, &k1, &e1, &err), err);
			ck_assert_ok(sc_shield_lookup(md, w3, &k2, &e2, &err), err);
			ck_assert_ptr_nonnull(e1);
			ck_assert_ptr_eq(e1, e2);
		} else if (strcmp(w1, "symlink") == 0) {
			ck_assert_ok(sc_shield_builder_add_symlink(b, w2, w3, &err), err);
			const char *target;
			ck_assert(sc_shield_walk_checks(md, w2, &target));
			ck_assert_ptr_nonnull(target);
			ck_assert_str_eq(target, w3);
			n_symlinks++;
		} else {
			ck_assert_int_eq(n, 5);
			ck_assert_str_eq(w1, "file");
			sc_shield_kind kind, k;
			ck_assert_ok(sc_shield_kind_parse(w2, &kind, &err), err);
			const sc_shield_entry *e;
			ck_assert_ok(sc_shield_lookup(md, w3, &k, &e, &err), err);
			ck_assert_int_eq(k, kind);
			ck_assert_ptr_nonnull(e);
			cleanup_free char *pname = xasprintf("%s.plain", w4);
			cleanup_free char *cname =
			        xasprintf("%s.%s", w4, kind == SC_SHIELD_ENCRYPTED ? "cipher" : "plain");
			size_t pl, cl;
			cleanup_free uint8_t *plain = vector(pname, &pl);
			cleanup_free uint8_t *stored = vector(cname, &cl);
			ck_assert_uint_eq(pl, e->size);
			/* decrypt */
			cleanup_close int fd = -1;
			ck_assert_ok(to_fd(key, e, stored, cl, &fd, &err), err);
			cleanup_free uint8_t *back = xmalloc(pl + 1);
			ck_assert_int_eq(pread(fd, back, pl + 1, 0), (ssize_t)pl);
			ck_assert_mem_eq(back, plain, pl);
			/* re-encrypt, reproducible */
			uint8_t id[16];
			sc_shield_file_id_derive(key, diff_id, (uint64_t)offset, w3, id);
			cleanup_free uint8_t *ct = NULL;
			cleanup_shield_entry sc_shield_entry *again =
			        protect(key, kind, id, plain, pl, e->chunk_size, 7, &ct);
			if (kind == SC_SHIELD_ENCRYPTED)
				ck_assert_mem_eq(again->file_id, e->file_id, 16);
			ck_assert_mem_eq(ct, stored, cl);
			ck_assert_mem_eq(again->macs, e->macs, e->n_chunks * sc_shield_mac_bytes(kind));
			ck_assert_ok(sc_shield_builder_add_file(b, w3, again, &err), err);
			n_files++;
		}
	}
	ck_assert_int_eq(n_files, 5);
	ck_assert_int_eq(n_symlinks, 2);
	ck_assert_uint_eq(sc_shield_metadata_symlinks(md), 2);
	cleanup_free uint8_t *sealed = NULL;
	size_t slen = 0;
	sc_shield_pin pin2;
	ck_assert_ok(sc_shield_builder_seal(b, key, true, &sealed, &slen, &pin2, &err), err);
	ck_assert_uint_eq(slen, mlen);
	ck_assert_mem_eq(sealed, meta, mlen);
	ck_assert_mem_eq(pin2.bytes, pin.bytes, 32);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("shield");
	TCase *tc = tcase_create("shield");
	tcase_add_test(tc, kdf_is_rfc5869_hkdf_sha256);
	tcase_add_test(tc, derived_file_keys_and_nonces_never_repeat);
	tcase_add_loop_test(tc, encrypted_round_trip_over_sizes_and_splits, 0,
	                    sizeof(sizes) / sizeof(sizes[0]));
	tcase_add_test(tc, default_chunk_size_round_trips);
	tcase_add_loop_test(tc, authenticated_round_trip_over_sizes, 0, sizeof(sizes) / sizeof(sizes[0]));
	tcase_add_test(tc, encoder_rejects_size_mismatch);
	tcase_add_test(tc, no_final_chunk_is_detected);
	tcase_add_test(tc, two_final_chunks_are_detected);
	tcase_add_test(tc, empty_last_chunk_is_detected);
	tcase_add_test(tc, truncation_at_a_chunk_boundary_is_detected);
	tcase_add_test(tc, extension_by_a_chunk_is_detected);
	tcase_add_test(tc, swapped_chunks_are_detected);
	tcase_add_test(tc, chunk_from_another_file_is_detected);
	tcase_add_test(tc, flipped_ciphertext_byte_is_detected);
	tcase_add_test(tc, wrong_key_is_detected);
	tcase_add_test(tc, truncated_tags_are_rejected);
	tcase_add_test(tc, flipped_authenticated_byte_is_detected);
	tcase_add_test(tc, output_must_be_a_regular_file);
	tcase_add_loop_test(tc, parallel_round_trip_over_sizes_kinds_and_threads, 0, 82);
	tcase_add_test(tc, parallel_failure_in_one_range_releases_the_others_plaintext_too);
	tcase_add_test(tc, parallel_output_must_be_a_regular_file);
	tcase_add_test(tc, metadata_round_trip_and_lookup);
	tcase_add_test(tc, metadata_every_flipped_byte_fails_open);
	tcase_add_test(tc, metadata_wrong_key_pin_and_cut_tag_fail);
	tcase_add_test(tc, reproducible_mode_gives_identical_bytes);
	tcase_add_test(tc, builder_refuses_inconsistent_metadata);
	tcase_add_test(tc, empty_metadata_seals_and_opens);
	tcase_add_loop_test(tc, metadata_parser_is_strict, 0, 19);
	tcase_add_test(tc, metadata_parser_accepts_only_canonical_bodies);
	tcase_add_test(tc, key_file_round_trip_0600_and_no_overwrite);
	tcase_add_test(tc, key_file_rejects_garbage_without_echoing_it);
	tcase_add_test(tc, vectors_decrypt_and_reencrypt_byte_for_byte);
	tcase_add_test(tc, walk_checks_regions_and_the_directories_above_them);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
