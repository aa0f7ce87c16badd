/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One protected file: chunked AES-256-GCM (encrypted) or per-chunk SHA-256
 * (authenticated), both directions. The chunk layout is in docs/shield.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/xalloc.h"
#include "shield-internal.h"

static void cipher_ctx_freep(EVP_CIPHER_CTX **p)
{
	EVP_CIPHER_CTX_free(*p);
}
#define cleanup_cipher_ctx _cleanup_(cipher_ctx_freep)

uint64_t sc_shield_chunks(uint64_t size, uint32_t chunk_size)
{
	if (size == 0)
		return 1;
	return size / chunk_size + (size % chunk_size != 0);
}

size_t sc_shield_chunk_len(uint64_t size, uint32_t chunk_size, uint64_t index)
{
	uint64_t start = index * chunk_size;
	if (start >= size)
		return 0;
	return size - start < chunk_size ? (size_t)(size - start) : chunk_size;
}

bool sc_shield_chunk_size_valid(uint32_t chunk_size)
{
	return chunk_size >= SC_SHIELD_CHUNK_MIN && chunk_size <= SC_SHIELD_CHUNK_MAX &&
	       (chunk_size & (chunk_size - 1)) == 0;
}

void sc_shield_chunk_nonce(uint64_t index, bool final, uint8_t out[SC_SHIELD_NONCE_BYTES])
{
	sc_put_be64(out, index);
	out[8] = out[9] = out[10] = 0;
	out[11] = final ? 1 : 0;
}

void sc_shield_chunk_aad(const uint8_t file_id[SC_SHIELD_FILE_ID_BYTES], uint64_t size, uint32_t chunk_size,
                         uint8_t out[SC_SHIELD_CHUNK_AAD_BYTES])
{
	memcpy(out, file_id, SC_SHIELD_FILE_ID_BYTES);
	sc_put_be64(out + SC_SHIELD_FILE_ID_BYTES, size);
	sc_put_be32(out + SC_SHIELD_FILE_ID_BYTES + 8, chunk_size);
}

void sc_shield_entry_free(sc_shield_entry *e)
{
	if (e == NULL)
		return;
	free(e->macs);
	free(e);
}

static EVP_CIPHER_CTX *gcm_new(const uint8_t key[32], bool encrypt)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL || EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, NULL, encrypt) != 1)
		abort(); /* only fails on allocation */
	return ctx;
}

/* Starts a chunk: nonce (index, final) and the AAD. The key stays set. */
static void gcm_start(EVP_CIPHER_CTX *ctx, const uint8_t *aad, uint64_t index, bool final, bool encrypt)
{
	uint8_t nonce[SC_SHIELD_NONCE_BYTES];
	int outl = 0;
	sc_shield_chunk_nonce(index, final, nonce);
	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, encrypt) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &outl, aad, SC_SHIELD_CHUNK_AAD_BYTES) != 1)
		abort();
}

static void gcm_update(EVP_CIPHER_CTX *ctx, const void *in, size_t n, void *out)
{
	int outl = 0;
	/* GCM is a stream mode: n bytes in, n bytes out, at once. n <= chunk size. */
	if (n > 0 && (EVP_CipherUpdate(ctx, out, &outl, in, (int)n) != 1 || (size_t)outl != n))
		abort();
}

static void gcm_seal_finish(EVP_CIPHER_CTX *ctx, uint8_t tag[SC_SHIELD_TAG_BYTES])
{
	uint8_t dummy[16];
	int outl = 0;
	if (EVP_EncryptFinal_ex(ctx, dummy, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SC_SHIELD_TAG_BYTES, tag) != 1)
		abort();
}

/* Decrypts and checks one chunk; false when the tag does not match. */
static bool gcm_open(EVP_CIPHER_CTX *ctx, const uint8_t *aad, uint64_t index, bool final, const void *in,
                     size_t n, void *out, const uint8_t tag[SC_SHIELD_TAG_BYTES])
{
	uint8_t dummy[16];
	int outl = 0;
	gcm_start(ctx, aad, index, final, false);
	gcm_update(ctx, in, n, out);
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SC_SHIELD_TAG_BYTES, (void *)tag) != 1)
		abort();
	/* 1 only if the full 16-byte tag matched; our callers fixed its length. */
	return EVP_DecryptFinal_ex(ctx, dummy, &outl) == 1;
}

void sc_shield_chunk_seal(const uint8_t file_key[32], const uint8_t file_id[SC_SHIELD_FILE_ID_BYTES],
                          uint64_t size, uint32_t chunk_size, uint64_t index, bool final, const void *in,
                          size_t n, void *out, uint8_t tag[SC_SHIELD_TAG_BYTES])
{
	uint8_t aad[SC_SHIELD_CHUNK_AAD_BYTES];
	sc_shield_chunk_aad(file_id, size, chunk_size, aad);
	cleanup_cipher_ctx EVP_CIPHER_CTX *ctx = gcm_new(file_key, true);
	gcm_start(ctx, aad, index, final, true);
	gcm_update(ctx, in, n, out);
	gcm_seal_finish(ctx, tag);
}

int sc_shield_chunk_open(const uint8_t file_key[32], const uint8_t file_id[SC_SHIELD_FILE_ID_BYTES],
                         uint64_t size, uint32_t chunk_size, uint64_t index, bool final, const void *in,
                         size_t n, void *out, const uint8_t *tag, size_t tag_len, sconify_error_t *err)
{
	/* OpenSSL accepts a tag of any length from 1 to 16 and compares only
	 * that many bytes: a 1-byte tag would be a 1-in-256 forgery. */
	if (tag_len != SC_SHIELD_TAG_BYTES) {
		memset(out, 0, n);
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "chunk %llu: tag length %zu, expected %d",
		                (unsigned long long)index, tag_len, SC_SHIELD_TAG_BYTES);
	}
	uint8_t aad[SC_SHIELD_CHUNK_AAD_BYTES];
	sc_shield_chunk_aad(file_id, size, chunk_size, aad);
	cleanup_cipher_ctx EVP_CIPHER_CTX *ctx = gcm_new(file_key, false);
	if (!gcm_open(ctx, aad, index, final, in, n, out, tag)) {
		memset(out, 0, n);
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "chunk %llu: authentication failed",
		                (unsigned long long)index);
	}
	return 0;
}

static void sha256(const void *data, size_t n, uint8_t out[SC_SHIELD_HASH_BYTES])
{
	unsigned int len = 0;
	if (EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) != 1)
		abort();
}

/* ---- the encoder ---- */

struct sc_shield_encoder {
	sc_shield_kind kind;
	uint64_t size, pos, n_chunks;
	uint32_t chunk_size;
	uint8_t file_id[SC_SHIELD_FILE_ID_BYTES];
	uint8_t aad[SC_SHIELD_CHUNK_AAD_BYTES];
	EVP_CIPHER_CTX *gcm; /* encrypted */
	EVP_MD_CTX *md;      /* authenticated */
	uint64_t cur;        /* chunk being filled */
	bool in_chunk;
	bool done;
	uint8_t *macs;
};

static int encoder_new(sc_shield_kind kind, uint64_t size, uint32_t chunk_size, sc_shield_encoder **ret,
                       sconify_error_t *err)
{
	if (chunk_size == 0)
		chunk_size = SC_SHIELD_CHUNK_DEFAULT;
	if (!sc_shield_chunk_size_valid(chunk_size))
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "chunk size %u: must be a power of two from %u to %u bytes", chunk_size,
		                SC_SHIELD_CHUNK_MIN, SC_SHIELD_CHUNK_MAX);
	if (size > SC_SHIELD_FILE_SIZE_MAX)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0,
		                "file of %llu bytes: larger than the %llu a shield holds",
		                (unsigned long long)size, (unsigned long long)SC_SHIELD_FILE_SIZE_MAX);
	sc_shield_encoder *e = xzalloc(sizeof(*e));
	e->kind = kind;
	e->size = size;
	e->chunk_size = chunk_size;
	e->n_chunks = sc_shield_chunks(size, chunk_size);
	e->macs = xcalloc((size_t)e->n_chunks, sc_shield_mac_bytes(kind));
	*ret = e;
	return 0;
}

int sc_shield_encryptor_new(const sc_shield_key *key, const uint8_t file_id[SC_SHIELD_FILE_ID_BYTES],
                            uint64_t size, uint32_t chunk_size, sc_shield_encoder **ret, sconify_error_t *err)
{
	sc_shield_encoder *e = NULL;
	if (encoder_new(SC_SHIELD_ENCRYPTED, size, chunk_size, &e, err) < 0)
		return -1;
	memcpy(e->file_id, file_id, SC_SHIELD_FILE_ID_BYTES);
	sc_shield_chunk_aad(file_id, size, e->chunk_size, e->aad);
	uint8_t file_key[32];
	sc_shield_file_key(key, file_id, file_key);
	e->gcm = gcm_new(file_key, true);
	OPENSSL_cleanse(file_key, sizeof(file_key));
	*ret = e;
	return 0;
}

int sc_shield_hasher_new(uint64_t size, uint32_t chunk_size, sc_shield_encoder **ret, sconify_error_t *err)
{
	sc_shield_encoder *e = NULL;
	if (encoder_new(SC_SHIELD_AUTHENTICATED, size, chunk_size, &e, err) < 0)
		return -1;
	e->md = EVP_MD_CTX_new();
	if (e->md == NULL)
		abort();
	*ret = e;
	return 0;
}

static void chunk_begin(sc_shield_encoder *e)
{
	if (e->kind == SC_SHIELD_ENCRYPTED)
		gcm_start(e->gcm, e->aad, e->cur, e->cur == e->n_chunks - 1, true);
	else if (EVP_DigestInit_ex(e->md, EVP_sha256(), NULL) != 1)
		abort();
	e->in_chunk = true;
}

static void chunk_end(sc_shield_encoder *e)
{
	uint8_t *mac = e->macs + e->cur * sc_shield_mac_bytes(e->kind);
	if (e->kind == SC_SHIELD_ENCRYPTED) {
		gcm_seal_finish(e->gcm, mac);
	} else {
		unsigned int n = 0;
		if (EVP_DigestFinal_ex(e->md, mac, &n) != 1)
			abort();
	}
	e->cur++;
	e->in_chunk = false;
}

int sc_shield_encoder_update(sc_shield_encoder *e, const void *in, size_t n, void *out, sconify_error_t *err)
{
	if (e->done)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "shield encoder used after finish");
	if (n > e->size - e->pos)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "size mismatch: more than the %llu bytes the file was declared with",
		                (unsigned long long)e->size);
	const uint8_t *src = in;
	uint8_t *dst = out;
	while (n > 0) {
		if (!e->in_chunk)
			chunk_begin(e);
		uint64_t end = (e->cur + 1) * (uint64_t)e->chunk_size;
		if (end > e->size)
			end = e->size;
		size_t take = end - e->pos < n ? (size_t)(end - e->pos) : n;
		if (e->kind == SC_SHIELD_ENCRYPTED)
			gcm_update(e->gcm, src, take, dst);
		else if (EVP_DigestUpdate(e->md, src, take) != 1)
			abort();
		src += take;
		if (dst)
			dst += take;
		n -= take;
		e->pos += take;
		if (e->pos == end)
			chunk_end(e);
	}
	return 0;
}

int sc_shield_encoder_finish(sc_shield_encoder *e, sc_shield_entry **ret, sconify_error_t *err)
{
	if (e->done)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "shield encoder finished twice");
	if (e->pos != e->size)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "size mismatch: %llu bytes, the file was declared with %llu",
		                (unsigned long long)e->pos, (unsigned long long)e->size);
	if (e->size == 0) {
		/* The one chunk of an empty file: empty, final, with its own tag. */
		chunk_begin(e);
		chunk_end(e);
	}
	e->done = true;
	sc_shield_entry *entry = xzalloc(sizeof(*entry));
	entry->kind = e->kind;
	entry->size = e->size;
	entry->chunk_size = e->chunk_size;
	memcpy(entry->file_id, e->file_id, SC_SHIELD_FILE_ID_BYTES);
	entry->n_chunks = e->n_chunks;
	entry->macs = steal_pointer(&e->macs);
	*ret = entry;
	return 0;
}

void sc_shield_encoder_free(sc_shield_encoder *e)
{
	if (e == NULL)
		return;
	EVP_CIPHER_CTX_free(e->gcm); /* wipes the key schedule */
	EVP_MD_CTX_free(e->md);
	free(e->macs);
	OPENSSL_cleanse(e, sizeof(*e));
	free(e);
}

/* ---- reading ---- */

struct sc_shield_file {
	const sc_shield_entry *e;
	uint8_t aad[SC_SHIELD_CHUNK_AAD_BYTES];
	EVP_CIPHER_CTX *gcm;
};

int sc_shield_file_new(const sc_shield_key *key, const sc_shield_entry *entry, sc_shield_file **ret,
                       sconify_error_t *err)
{
	if (entry->kind != SC_SHIELD_ENCRYPTED && entry->kind != SC_SHIELD_AUTHENTICATED)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "shield entry of kind %d is not a protected file",
		                (int)entry->kind);
	if (!sc_shield_chunk_size_valid(entry->chunk_size) || entry->size > SC_SHIELD_FILE_SIZE_MAX ||
	    entry->n_chunks != sc_shield_chunks(entry->size, entry->chunk_size))
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "shield entry: %llu chunks do not fit %llu bytes in chunks of %u",
		                (unsigned long long)entry->n_chunks, (unsigned long long)entry->size,
		                entry->chunk_size);
	if (entry->kind == SC_SHIELD_ENCRYPTED && key == NULL)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "an encrypted file needs the volume key");
	sc_shield_file *f = xzalloc(sizeof(*f));
	f->e = entry;
	if (entry->kind == SC_SHIELD_ENCRYPTED) {
		uint8_t file_key[32];
		sc_shield_file_key(key, entry->file_id, file_key);
		f->gcm = gcm_new(file_key, false);
		OPENSSL_cleanse(file_key, sizeof(file_key));
		sc_shield_chunk_aad(entry->file_id, entry->size, entry->chunk_size, f->aad);
	}
	*ret = f;
	return 0;
}

int sc_shield_file_read_chunk(sc_shield_file *f, uint64_t index, const void *in, size_t n, void *out,
                              sconify_error_t *err)
{
	const sc_shield_entry *e = f->e;
	if (index >= e->n_chunks) {
		memset(out, 0, n);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "chunk %llu of a file of %llu chunks",
		                (unsigned long long)index, (unsigned long long)e->n_chunks);
	}
	size_t want = sc_shield_chunk_len(e->size, e->chunk_size, index);
	if (n != want) {
		memset(out, 0, n);
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
		                "chunk %llu: size mismatch: %zu bytes, expected %zu",
		                (unsigned long long)index, n, want);
	}
	if (e->kind == SC_SHIELD_ENCRYPTED) {
		const uint8_t *tag = e->macs + index * SC_SHIELD_TAG_BYTES;
		if (!gcm_open(f->gcm, f->aad, index, index == e->n_chunks - 1, in, n, out, tag)) {
			OPENSSL_cleanse(out, n);
			memset(out, 0, n);
			return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "chunk %llu: authentication failed",
			                (unsigned long long)index);
		}
		return 0;
	}
	uint8_t h[SC_SHIELD_HASH_BYTES];
	sha256(in, n, h);
	if (CRYPTO_memcmp(h, e->macs + index * SC_SHIELD_HASH_BYTES, SC_SHIELD_HASH_BYTES) != 0) {
		memset(out, 0, n);
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "chunk %llu: hash mismatch",
		                (unsigned long long)index);
	}
	if (out != in)
		memmove(out, in, n);
	return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w, n -= (size_t)w, off += (uint64_t)w;
	}
	return 0;
}

static int to_fd(sc_shield_file *f, sc_reader *in, int out_fd, uint8_t *buf, sconify_error_t *err)
{
	const sc_shield_entry *e = f->e;
	uint64_t off = 0;
	for (uint64_t i = 0; i < e->n_chunks; i++) {
		size_t len = sc_shield_chunk_len(e->size, e->chunk_size, i), got = 0;
		if (sc_reader_read_full(in, buf, len, &got, err) < 0)
			return -1;
		if (got < len)
			return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
			                "truncated: %llu bytes, the metadata says %llu",
			                (unsigned long long)(off + got), (unsigned long long)e->size);
		if (sc_shield_file_read_chunk(f, i, buf, len, buf, err) < 0)
			return -1;
		if (pwrite_all(out_fd, buf, len, off) < 0)
			return sc_error(err, SCONIFY_ERR_IO, errno, "writing the plaintext");
		off += len;
	}
	uint8_t extra;
	ssize_t n = sc_reader_read(in, &extra, 1, err);
	if (n < 0)
		return -1;
	if (n > 0)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
		                "trailing data: longer than the %llu bytes the metadata says",
		                (unsigned long long)e->size);
	return 0;
}

/* Failure is undone by truncating, so the output must be a regular file.
 * One that already has the file's size is kept as it is: success overwrites
 * every byte of it, failure truncates it to 0 all the same, and the caller
 * may have prepared its pages (the runtime's huge pages). */
static int prepare_out(int out_fd, uint64_t size, sconify_error_t *err)
{
	struct stat st;
	if (fstat(out_fd, &st) < 0)
		return sc_error(err, SCONIFY_ERR_IO, errno, "output of the shield");
	if (!S_ISREG(st.st_mode))
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "the shield writes plaintext to regular files only");
	/* A presized output is written in place, unless it appends: pwrite
	 * to an O_APPEND descriptor appends on Linux. */
	int fl = fcntl(out_fd, F_GETFL);
	if (st.st_size >= 0 && (uint64_t)st.st_size == size && fl >= 0 && !(fl & O_APPEND))
		return 0;
	if (ftruncate(out_fd, 0) < 0)
		return sc_error(err, SCONIFY_ERR_IO, errno, "truncating the output of the shield");
	return 0;
}

static int finish_out(int out_fd, int r, sconify_error_t *err)
{
	if (r < 0 && ftruncate(out_fd, 0) < 0) {
		/* Cannot take back what was written (all of it verified chunks):
		 * say so loudly, the caller must drop the fd. */
		return sc_error_wrap(err, "and truncating the output failed (%s)", strerror(errno));
	}
	return r;
}

int sc_shield_file_to_fd(sc_shield_file *f, sc_reader *in, int out_fd, sconify_error_t *err)
{
	if (prepare_out(out_fd, f->e->size, err) < 0)
		return -1;
	size_t cap = f->e->size < f->e->chunk_size ? (size_t)f->e->size : f->e->chunk_size;
	uint8_t *buf = xmalloc(cap > 0 ? cap : 1);
	int r = to_fd(f, in, out_fd, buf, err);
	OPENSSL_cleanse(buf, cap);
	free(buf);
	return finish_out(out_fd, r, err);
}

static int pread_full(int fd, uint8_t *p, size_t n, uint64_t off, size_t *ret_got)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*ret_got = got;
	return 0;
}

/* One thread's share of sc_shield_file_to_fd_parallel. */
typedef struct {
	sc_shield_file *f; /* this range's own cipher context */
	int in_fd, out_fd;
	uint64_t first, count;
	/* The lowest chunk index that failed so far (UINT64_MAX: none). A range
	 * stops at a chunk past it, and goes on below it, so the error is that of
	 * the first failing chunk in file order, as sc_shield_file_to_fd's. */
	atomic_uint_least64_t *failed_at;
	uint64_t at; /* the chunk being worked on */
	sconify_error_t err;
	int r;
} range_job;

static int range_to_fd(range_job *j, uint8_t *buf)
{
	const sc_shield_entry *e = j->f->e;
	for (uint64_t i = j->first; i < j->first + j->count; i++) {
		if (i > atomic_load_explicit(j->failed_at, memory_order_relaxed))
			return 0; /* an earlier chunk failed: its error is the answer */
		j->at = i;
		uint64_t off = i * e->chunk_size;
		size_t len = sc_shield_chunk_len(e->size, e->chunk_size, i), got = 0;
		if (pread_full(j->in_fd, buf, len, off, &got) < 0)
			return sc_error(&j->err, SCONIFY_ERR_IO, errno, "reading the stored file");
		if (got < len)
			return sc_error(&j->err, SCONIFY_ERR_INTEGRITY, 0,
			                "truncated: %llu bytes, the metadata says %llu",
			                (unsigned long long)(off + got), (unsigned long long)e->size);
		if (sc_shield_file_read_chunk(j->f, i, buf, len, buf, &j->err) < 0)
			return -1;
		if (pwrite_all(j->out_fd, buf, len, off) < 0)
			return sc_error(&j->err, SCONIFY_ERR_IO, errno, "writing the plaintext");
	}
	return 0;
}

static void *range_run(void *arg)
{
	range_job *j = arg;
	const sc_shield_entry *e = j->f->e;
	size_t cap = e->size < e->chunk_size ? (size_t)e->size : e->chunk_size;
	uint8_t *buf = xmalloc(cap > 0 ? cap : 1);
	j->r = range_to_fd(j, buf);
	if (j->r < 0) {
		uint_least64_t cur = atomic_load(j->failed_at);
		while (j->at < cur && !atomic_compare_exchange_weak(j->failed_at, &cur, j->at))
			;
	}
	OPENSSL_cleanse(buf, cap);
	free(buf);
	return NULL;
}

/* Another reader of the same entry with its own cipher context (the key
 * schedule is copied, the volume key is not needed again). */
static sc_shield_file *file_clone(const sc_shield_file *f)
{
	sc_shield_file *c = xzalloc(sizeof(*c));
	c->e = f->e;
	memcpy(c->aad, f->aad, sizeof(c->aad));
	if (f->gcm) {
		c->gcm = EVP_CIPHER_CTX_new();
		if (c->gcm == NULL || EVP_CIPHER_CTX_copy(c->gcm, f->gcm) != 1)
			abort();
	}
	return c;
}

static int check_end(const sc_shield_entry *e, int in_fd, sconify_error_t *err)
{
	uint8_t extra;
	ssize_t n;
	do
		n = pread(in_fd, &extra, 1, (off_t)e->size);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return sc_error(err, SCONIFY_ERR_IO, errno, "reading the stored file");
	if (n > 0)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
		                "trailing data: longer than the %llu bytes the metadata says",
		                (unsigned long long)e->size);
	return 0;
}

static int to_fd_parallel(sc_shield_file *f, int in_fd, int out_fd, unsigned threads, sconify_error_t *err)
{
	const sc_shield_entry *e = f->e;
	if (threads < 1)
		threads = 1;
	if (threads > SC_SHIELD_THREADS_MAX)
		threads = SC_SHIELD_THREADS_MAX;
	if (threads > e->n_chunks)
		threads = (unsigned)e->n_chunks;
	atomic_uint_least64_t failed_at = UINT64_MAX;
	range_job jobs[SC_SHIELD_THREADS_MAX];
	pthread_t tids[SC_SHIELD_THREADS_MAX];
	bool started[SC_SHIELD_THREADS_MAX] = {false};
	uint64_t per = e->n_chunks / threads, extra = e->n_chunks % threads, next = 0;
	for (unsigned t = 0; t < threads; t++) {
		uint64_t count = per + (t < extra);
		jobs[t] = (range_job){.f = t == 0 ? f : file_clone(f),
		                      .in_fd = in_fd,
		                      .out_fd = out_fd,
		                      .first = next,
		                      .count = count,
		                      .failed_at = &failed_at};
		next += count;
	}
	/* The calling thread takes the first range; a thread that cannot be
	 * started leaves its range to the calling thread. */
	for (unsigned t = 1; t < threads; t++)
		started[t] = pthread_create(&tids[t], NULL, range_run, &jobs[t]) == 0;
	range_run(&jobs[0]);
	for (unsigned t = 1; t < threads; t++)
		if (started[t])
			pthread_join(tids[t], NULL);
		else
			range_run(&jobs[t]);
	int r = 0;
	for (unsigned t = 0; t < threads; t++) {
		/* Ranges are in file order: the first failed one holds the
		 * first failing chunk. */
		if (jobs[t].r < 0 && r == 0) {
			if (err)
				sc_error_move(err, &jobs[t].err);
			r = -1;
		}
		sconify_error_free(&jobs[t].err);
		if (t > 0)
			sc_shield_file_free(jobs[t].f);
	}
	if (r == 0)
		r = check_end(e, in_fd, err);
	return r;
}

int sc_shield_file_to_fd_parallel(sc_shield_file *f, int in_fd, int out_fd, unsigned threads,
                                  sconify_error_t *err)
{
	if (prepare_out(out_fd, f->e->size, err) < 0)
		return -1;
	int r = to_fd_parallel(f, in_fd, out_fd, threads, err);
	return finish_out(out_fd, r, err);
}

void sc_shield_file_free(sc_shield_file *f)
{
	if (f == NULL)
		return;
	EVP_CIPHER_CTX_free(f->gcm);
	free(f);
}
