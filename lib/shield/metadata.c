/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shield metadata: regions and protected files, serialised in the
 * canonical binary body of docs/shield.md and sealed with AES-256-GCM under a
 * key derived from the volume key. The body is outside input when opened: the
 * parser is strict, capped, and accepts only the canonical encoding.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "shield-internal.h"

struct region {
	char *path;
	sc_shield_kind kind;
};

struct mpath {
	char *path; /* first: find_by_path */
	uint32_t entry;
};

/* A symbolic link in a protected region: the target the runtime follows. */
struct mlink {
	char *path; /* first: find_by_path */
	char *target;
};

struct sc_shield_metadata {
	uint32_t chunk_size;
	struct region *regions;
	size_t n_regions;
	sc_shield_entry *entries;
	size_t n_entries;
	struct mpath *paths;
	size_t n_paths;
	struct mlink *links;
	size_t n_links;
	uint8_t *body; /* parsed metadata: entries' macs point into it */
	size_t body_len;
};

bool sc_shield_path_valid(const char *p, size_t len)
{
	if (len == 0 || len > SC_SHIELD_PATH_MAX || p[0] != '/' || memchr(p, '\0', len) != NULL)
		return false;
	if (len == 1)
		return true;
	if (p[len - 1] == '/')
		return false;
	size_t start = 1;
	for (size_t i = 1; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		size_t n = i - start;
		if (n == 0 || (n == 1 && p[start] == '.') ||
		    (n == 2 && p[start] == '.' && p[start + 1] == '.'))
			return false;
		start = i + 1;
	}
	return true;
}

static int path_cmp(const char *a, const char *b)
{
	return strcmp(a, b);
}

static int check_path(const char *path, sconify_error_t *err)
{
	if (sc_shield_path_valid(path, strlen(path)))
		return 0;
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	return sc_error(err, SCONIFY_ERR_INVALID, 0,
	                "path `%s': not an absolute normal path of at most %u bytes", q, SC_SHIELD_PATH_MAX);
}

/* Longest component-wise prefix: `/app' covers `/app' and `/app/x', not `/apple'. */
static bool covers(const char *region, const char *path)
{
	size_t n = strlen(region);
	if (n == 1)
		return true; /* `/' */
	return strncmp(region, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* regions sorted ascending: binary search each prefix of path, longest first */
static const struct region *region_lookup(const struct region *regions, size_t n, const char *path)
{
	size_t len = strlen(path);
	cleanup_free char *prefix = xstrdup(path);
	for (;;) {
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = strcmp(regions[mid].path, prefix);
			if (c == 0)
				return &regions[mid];
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (len <= 1)
			return NULL;
		while (len > 1 && prefix[len - 1] != '/')
			len--;
		if (len > 1)
			len--; /* drop the slash, unless it is the root */
		prefix[len] = '\0';
	}
}

/* Longest covering region by a scan: regions in any order, `/' first. */
static const struct region *region_scan(const struct region *regions, size_t n, const char *path)
{
	const struct region *best = &regions[0];
	size_t best_len = 1;
	for (size_t i = 1; i < n; i++) {
		size_t len = strlen(regions[i].path);
		if (len > best_len && covers(regions[i].path, path)) {
			best = &regions[i];
			best_len = len;
		}
	}
	return best;
}

/* The same answer as region_lookup, without copying path: the usual handful
 * of regions is scanned, as the runtime asks once per path component. */
static const struct region *region_find(const struct region *regions, size_t n, const char *path)
{
	return n > 64 ? region_lookup(regions, n, path) : region_scan(regions, n, path);
}

/* bsearch over a sorted array of structs whose first member is their path. */
static int path_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, *(char *const *)elem);
}

static const void *find_by_path(const void *base, size_t n, size_t size, const char *path)
{
	return n ? bsearch(path, base, n, size, path_key_cmp) : NULL;
}

bool sc_shield_link_target_valid(const char *t, size_t len)
{
	return len > 0 && len < SC_SHIELD_PATH_MAX && memchr(t, '\0', len) == NULL;
}

/* ---- the body codec ---- */

struct rd {
	const uint8_t *p;
	size_t left;
};

static bool take(struct rd *r, size_t n, const uint8_t **ret)
{
	if (r->left < n)
		return false;
	*ret = r->p;
	r->p += n, r->left -= n;
	return true;
}

static bool get_u8(struct rd *r, uint8_t *v)
{
	const uint8_t *p;
	if (!take(r, 1, &p))
		return false;
	*v = p[0];
	return true;
}

static bool get_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *p;
	if (!take(r, 2, &p))
		return false;
	*v = (uint16_t)(p[0] << 8 | p[1]);
	return true;
}

static bool get_u32(struct rd *r, uint32_t *v)
{
	const uint8_t *p;
	if (!take(r, 4, &p))
		return false;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return true;
}

static bool get_u64(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;
	if (!get_u32(r, &hi) || !get_u32(r, &lo))
		return false;
	*v = (uint64_t)hi << 32 | lo;
	return true;
}

static int get_path(struct rd *r, const char *what, char **ret, sconify_error_t *err)
{
	uint16_t len;
	const uint8_t *p;
	if (!get_u16(r, &len) || !take(r, len, &p))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "shield metadata: %s: truncated", what);
	if (!sc_shield_path_valid((const char *)p, len)) {
		cleanup_free char *q = sc_quote_n((const char *)p, len, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "shield metadata: %s `%s': not an absolute normal path", what, q);
	}
	*ret = xstrndup((const char *)p, len);
	return 0;
}

void sc_shield_metadata_free(sc_shield_metadata *md)
{
	if (md == NULL)
		return;
	for (size_t i = 0; i < md->n_regions; i++)
		free(md->regions[i].path);
	for (size_t i = 0; i < md->n_paths; i++)
		free(md->paths[i].path);
	for (size_t i = 0; i < md->n_links; i++) {
		free(md->links[i].path);
		free(md->links[i].target);
	}
	free(md->regions);
	free(md->paths);
	free(md->links);
	free(md->entries);
	if (md->body) {
		OPENSSL_cleanse(md->body, md->body_len);
		free(md->body);
	}
	free(md);
}

/* The index of path in md->paths, or SIZE_MAX. */
static size_t file_index(const sc_shield_metadata *md, const char *path)
{
	const struct mpath *m = find_by_path(md->paths, md->n_paths, sizeof(*md->paths), path);
	return m ? (size_t)(m - md->paths) : SIZE_MAX;
}

static int parse(sc_shield_metadata *md, struct rd *r, sconify_error_t *err)
{
#define TRUNC(what) sc_error(err, SCONIFY_ERR_INVALID, 0, "shield metadata: %s: truncated", what)
	uint32_t n;
	if (!get_u32(r, &md->chunk_size))
		return TRUNC("chunk size");
	if (!sc_shield_chunk_size_valid(md->chunk_size))
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "shield metadata: chunk size %u is not a power of two from %u to %u",
		                md->chunk_size, SC_SHIELD_CHUNK_MIN, SC_SHIELD_CHUNK_MAX);

	if (!get_u32(r, &n))
		return TRUNC("region count");
	if (n == 0 || n > SC_SHIELD_REGIONS_MAX)
		return sc_error(err, n == 0 ? SCONIFY_ERR_INVALID : SCONIFY_ERR_LIMIT, 0,
		                "shield metadata: %u regions (from 1 to %u are allowed)", n,
		                SC_SHIELD_REGIONS_MAX);
	md->regions = xcalloc(n, sizeof(*md->regions));
	for (uint32_t i = 0; i < n; i++) {
		struct region *rg = &md->regions[i];
		uint8_t kind;
		if (!get_u8(r, &kind))
			return TRUNC("region");
		if (kind > SC_SHIELD_AUTHENTICATED)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "shield metadata: region %u has kind %u",
			                i, kind);
		rg->kind = (sc_shield_kind)kind;
		if (get_path(r, "region", &rg->path, err) < 0)
			return -1;
		md->n_regions++;
		if (i == 0 && strcmp(rg->path, "/") != 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "shield metadata: the first region is not `/'");
		if (i > 0 && path_cmp(md->regions[i - 1].path, rg->path) >= 0) {
			cleanup_free char *q = sc_quote(rg->path, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "shield metadata: region `%s': duplicate or out of order", q);
		}
	}

	if (!get_u32(r, &n))
		return TRUNC("entry count");
	/* Every entry takes at least 1 + 8 + 32 bytes: the input bounds the count. */
	if (n > r->left / (1 + 8 + SC_SHIELD_TAG_BYTES))
		return TRUNC("entries");
	md->entries = xcalloc(n ? n : 1, sizeof(*md->entries));
	for (uint32_t i = 0; i < n; i++) {
		sc_shield_entry *e = &md->entries[i];
		uint8_t kind;
		const uint8_t *p;
		if (!get_u8(r, &kind) || !get_u64(r, &e->size))
			return TRUNC("entry");
		if (kind != SC_SHIELD_ENCRYPTED && kind != SC_SHIELD_AUTHENTICATED)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "shield metadata: entry %u has kind %u",
			                i, kind);
		e->kind = (sc_shield_kind)kind;
		if (e->size > SC_SHIELD_FILE_SIZE_MAX)
			return sc_error(err, SCONIFY_ERR_LIMIT, 0,
			                "shield metadata: entry %u: %llu bytes is larger than the limit", i,
			                (unsigned long long)e->size);
		if (kind == SC_SHIELD_ENCRYPTED) {
			if (!take(r, SC_SHIELD_FILE_ID_BYTES, &p))
				return TRUNC("file id");
			memcpy(e->file_id, p, SC_SHIELD_FILE_ID_BYTES);
		}
		e->chunk_size = md->chunk_size;
		e->n_chunks = sc_shield_chunks(e->size, md->chunk_size);
		size_t mb = kind == SC_SHIELD_ENCRYPTED ? SC_SHIELD_TAG_BYTES : SC_SHIELD_HASH_BYTES;
		if (e->n_chunks > r->left / mb || !take(r, (size_t)e->n_chunks * mb, &p))
			return TRUNC("chunk tags");
		e->macs = (uint8_t *)p;
		md->n_entries++;
	}

	if (!get_u32(r, &n))
		return TRUNC("path count");
	if (n > r->left / (2 + 1 + 4))
		return TRUNC("paths");
	md->paths = xcalloc(n ? n : 1, sizeof(*md->paths));
	uint32_t next_new = 0; /* canonical: entries appear in order of first use */
	for (uint32_t i = 0; i < n; i++) {
		struct mpath *mp = &md->paths[i];
		if (get_path(r, "path", &mp->path, err) < 0)
			return -1;
		md->n_paths++;
		cleanup_free char *q = sc_quote(mp->path, SC_QUOTE_MAX);
		if (strcmp(mp->path, "/") == 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "shield metadata: `/' cannot be a protected file");
		if (!get_u32(r, &mp->entry))
			return TRUNC("path");
		if (i > 0 && path_cmp(md->paths[i - 1].path, mp->path) >= 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "shield metadata: path `%s': duplicate entry or out of order", q);
		if (mp->entry > next_new || mp->entry >= md->n_entries)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "shield metadata: path `%s': entry %u out of order or missing", q,
			                mp->entry);
		if (mp->entry == next_new)
			next_new++;
		const struct region *rg = region_lookup(md->regions, md->n_regions, mp->path);
		sc_shield_kind want = md->entries[mp->entry].kind;
		if (rg->kind != want)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "shield metadata: path `%s': %s file in a %s region", q,
			                sc_shield_kind_name(want), sc_shield_kind_name(rg->kind));
	}
	if (next_new != md->n_entries)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "shield metadata: %zu entries no path uses",
		                md->n_entries - next_new);

	if (!get_u32(r, &n))
		return TRUNC("symlink count");
	if (n > r->left / (2 + 2 + 2))
		return TRUNC("symlinks");
	md->links = xcalloc(n ? n : 1, sizeof(*md->links));
	for (uint32_t i = 0; i < n; i++) {
		struct mlink *ml = &md->links[i];
		if (get_path(r, "symlink", &ml->path, err) < 0)
			return -1;
		md->n_links++;
		cleanup_free char *q = sc_quote(ml->path, SC_QUOTE_MAX);
		uint16_t len;
		const uint8_t *p;
		if (!get_u16(r, &len) || !take(r, len, &p))
			return TRUNC("symlink target");
		if (!sc_shield_link_target_valid((const char *)p, len))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "shield metadata: symlink `%s': the target is empty, holds a NUL or "
			                "is longer than %u bytes",
			                q, SC_SHIELD_PATH_MAX - 1);
		ml->target = xstrndup((const char *)p, len);
		if (i > 0 && path_cmp(md->links[i - 1].path, ml->path) >= 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "shield metadata: symlink `%s': duplicate or out of order", q);
		if (region_lookup(md->regions, md->n_regions, ml->path)->kind == SC_SHIELD_NOT_PROTECTED)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "shield metadata: symlink `%s' in a not-protected region", q);
		if (strcmp(ml->path, "/") == 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "shield metadata: `/' cannot be a symlink");
		if (file_index(md, ml->path) != SIZE_MAX)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "shield metadata: symlink `%s' is also a protected file", q);
	}
	if (r->left != 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "shield metadata: %zu bytes of trailing data",
		                r->left);
	return 0;
#undef TRUNC
}

int sc_shield_metadata_parse(const uint8_t *body, size_t len, sc_shield_metadata **ret, sconify_error_t *err)
{
	sc_shield_metadata *md = xzalloc(sizeof(*md));
	md->body = len ? xmemdup(body, len) : xzalloc(1);
	md->body_len = len;
	struct rd r = {md->body, len};
	if (parse(md, &r, err) < 0) {
		sc_shield_metadata_free(md);
		return -1;
	}
	*ret = md;
	return 0;
}

static void put(sc_buf *b, const void *p, size_t n)
{
	if (sc_buf_append(b, p, n, "shield metadata", NULL) < 0)
		abort(); /* uncapped */
}

static void put_u32(sc_buf *b, uint32_t v)
{
	uint8_t x[4];
	sc_put_be32(x, v);
	put(b, x, 4);
}

static void put_path(sc_buf *b, const char *path)
{
	size_t n = strlen(path);
	uint8_t x[2] = {(uint8_t)(n >> 8), (uint8_t)n};
	put(b, x, 2);
	put(b, path, n);
}

void sc_shield_metadata_serialize(const sc_shield_metadata *md, uint8_t **ret, size_t *ret_len)
{
	sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	put_u32(&b, md->chunk_size);
	put_u32(&b, (uint32_t)md->n_regions);
	for (size_t i = 0; i < md->n_regions; i++) {
		uint8_t k = (uint8_t)md->regions[i].kind;
		put(&b, &k, 1);
		put_path(&b, md->regions[i].path);
	}
	put_u32(&b, (uint32_t)md->n_entries);
	for (size_t i = 0; i < md->n_entries; i++) {
		const sc_shield_entry *e = &md->entries[i];
		uint8_t x[9];
		x[0] = (uint8_t)e->kind;
		sc_put_be64(x + 1, e->size);
		put(&b, x, 9);
		if (e->kind == SC_SHIELD_ENCRYPTED)
			put(&b, e->file_id, SC_SHIELD_FILE_ID_BYTES);
		put(&b, e->macs, (size_t)e->n_chunks * sc_shield_mac_bytes(e->kind));
	}
	put_u32(&b, (uint32_t)md->n_paths);
	for (size_t i = 0; i < md->n_paths; i++) {
		put_path(&b, md->paths[i].path);
		put_u32(&b, md->paths[i].entry);
	}
	put_u32(&b, (uint32_t)md->n_links);
	for (size_t i = 0; i < md->n_links; i++) {
		put_path(&b, md->links[i].path);
		put_path(&b, md->links[i].target);
	}
	*ret = (uint8_t *)sc_buf_steal(&b, ret_len);
}

/* ---- sealing ---- */

static void meta_key(const sc_shield_key *key, uint8_t out[32])
{
	sc_shield_kdf(key, SC_SHIELD_LABEL_META_KEY, NULL, 0, out);
}

static void header(const uint8_t nonce[SC_SHIELD_NONCE_BYTES], uint8_t out[SC_SHIELD_HEADER_BYTES])
{
	memcpy(out, SC_SHIELD_MAGIC, SC_SHIELD_MAGIC_BYTES);
	sc_put_be32(out + SC_SHIELD_MAGIC_BYTES, SC_SHIELD_VERSION);
	memcpy(out + SC_SHIELD_MAGIC_BYTES + 4, nonce, SC_SHIELD_NONCE_BYTES);
}

/* AES-256-GCM over a whole buffer; len may exceed INT_MAX, so it is fed in steps. */
static bool gcm_whole(const uint8_t key[32], bool encrypt, const uint8_t *nonce, const uint8_t *aad,
                      size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl = 0;
	if (ctx == NULL || EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, encrypt) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1)
		abort();
	for (size_t off = 0; off < len;) {
		size_t n = len - off < (1u << 30) ? len - off : (1u << 30);
		if (EVP_CipherUpdate(ctx, out + off, &outl, in + off, (int)n) != 1)
			abort();
		off += n;
	}
	bool ok;
	uint8_t dummy[16];
	if (encrypt) {
		ok = EVP_EncryptFinal_ex(ctx, dummy, &outl) == 1 &&
		     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
		if (!ok)
			abort();
	} else {
		if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1)
			abort();
		ok = EVP_DecryptFinal_ex(ctx, dummy, &outl) == 1;
	}
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

void sc_shield_seal_body(const sc_shield_key *key, const uint8_t *body, size_t len,
                         const uint8_t nonce[SC_SHIELD_NONCE_BYTES], uint8_t **ret, size_t *ret_len,
                         sc_shield_pin *ret_pin)
{
	size_t total = SC_SHIELD_HEADER_BYTES + len + SC_SHIELD_TAG_BYTES;
	uint8_t *out = xmalloc(total);
	header(nonce, out);
	uint8_t k[32];
	meta_key(key, k);
	gcm_whole(k, true, nonce, out, SC_SHIELD_HEADER_BYTES, body, len, out + SC_SHIELD_HEADER_BYTES,
	          out + SC_SHIELD_HEADER_BYTES + len);
	OPENSSL_cleanse(k, sizeof(k));
	sc_shield_pin_of(out, total, ret_pin);
	*ret = out;
	*ret_len = total;
}

int sc_shield_metadata_open(const sc_shield_key *key, const void *data, size_t len, const sc_shield_pin *pin,
                            sc_shield_metadata **ret, sconify_error_t *err)
{
	const uint8_t *in = data;
	if (len > SC_SHIELD_METADATA_MAX)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0,
		                "shield metadata: %zu bytes is larger than the limit of %u", len,
		                SC_SHIELD_METADATA_MAX);
	/* The pin first: it needs no key and it commits to every byte. */
	sc_shield_pin got;
	sc_shield_pin_of(data, len, &got);
	if (CRYPTO_memcmp(got.bytes, pin->bytes, SC_SHIELD_PIN_BYTES) != 0)
		return sc_error(
		        err, SCONIFY_ERR_INTEGRITY, 0,
		        "shield metadata does not match the pinned value (tampered, or from another image)");
	if (len < SC_SHIELD_HEADER_BYTES + SC_SHIELD_TAG_BYTES)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "shield metadata: truncated: %zu bytes", len);
	if (memcmp(in, SC_SHIELD_MAGIC, SC_SHIELD_MAGIC_BYTES) != 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "not shield metadata (no `" SC_SHIELD_MAGIC "' magic)");
	uint32_t version = (uint32_t)in[8] << 24 | (uint32_t)in[9] << 16 | (uint32_t)in[10] << 8 | in[11];
	if (version != SC_SHIELD_VERSION)
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0, "shield metadata version %u (this is %u)",
		                version, SC_SHIELD_VERSION);
	size_t body_len = len - SC_SHIELD_HEADER_BYTES - SC_SHIELD_TAG_BYTES;
	uint8_t *body = xmalloc(body_len ? body_len : 1);
	uint8_t k[32];
	meta_key(key, k);
	bool ok = gcm_whole(k, false, in + SC_SHIELD_MAGIC_BYTES + 4, in, SC_SHIELD_HEADER_BYTES,
	                    in + SC_SHIELD_HEADER_BYTES, body_len, body,
	                    (uint8_t *)in + len - SC_SHIELD_TAG_BYTES);
	OPENSSL_cleanse(k, sizeof(k));
	int r;
	if (!ok)
		r = sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
		             "shield metadata: authentication failed (wrong key, or tampered)");
	else
		r = sc_shield_metadata_parse(body, body_len, ret, err);
	OPENSSL_cleanse(body, body_len);
	free(body);
	return r;
}

int sc_shield_lookup(const sc_shield_metadata *md, const char *path, sc_shield_kind *ret_kind,
                     const sc_shield_entry **ret_entry, sconify_error_t *err)
{
	if (check_path(path, err) < 0)
		return -1;
	const struct region *rg = region_lookup(md->regions, md->n_regions, path);
	const sc_shield_entry *entry = NULL;
	if (rg->kind != SC_SHIELD_NOT_PROTECTED) {
		size_t i = file_index(md, path);
		if (i != SIZE_MAX)
			entry = &md->entries[md->paths[i].entry];
	}
	*ret_kind = rg->kind;
	*ret_entry = entry;
	return 0;
}

/* Whether a protected region lies strictly below path. */
static bool above_protected(const sc_shield_metadata *md, const char *path)
{
	size_t len = strlen(path);
	for (size_t i = 1; i < md->n_regions; i++) {
		const struct region *rg = &md->regions[i];
		if (rg->kind != SC_SHIELD_NOT_PROTECTED && strncmp(rg->path, path, len) == 0 &&
		    rg->path[len] == '/')
			return true;
	}
	return false;
}

const char *sc_shield_symlink_at(const sc_shield_metadata *md, const char *path)
{
	const struct mlink *l = find_by_path(md->links, md->n_links, sizeof(*md->links), path);
	return l ? l->target : NULL;
}

bool sc_shield_walk_checks(const sc_shield_metadata *md, const char *path, const char **ret_target)
{
	*ret_target = NULL;
	if (region_find(md->regions, md->n_regions, path)->kind == SC_SHIELD_NOT_PROTECTED)
		return above_protected(md, path);
	*ret_target = sc_shield_symlink_at(md, path);
	return true;
}

size_t sc_shield_metadata_symlinks(const sc_shield_metadata *md)
{
	return md->n_links;
}

uint32_t sc_shield_metadata_chunk_size(const sc_shield_metadata *md)
{
	return md->chunk_size;
}

size_t sc_shield_metadata_regions(const sc_shield_metadata *md)
{
	return md->n_regions;
}

void sc_shield_metadata_region(const sc_shield_metadata *md, size_t i, const char **ret_path,
                               sc_shield_kind *ret_kind)
{
	*ret_path = md->regions[i].path;
	*ret_kind = md->regions[i].kind;
}

/* ---- the builder ---- */

struct bfile {
	char *path;
	sc_shield_entry entry; /* macs owned; link: kind NOT_PROTECTED */
	char *target;          /* hard links */
};

struct sc_shield_builder {
	uint32_t chunk_size;
	struct region *regions;
	size_t n_regions;
	struct bfile *files;
	size_t n_files;
	struct mlink *links;
	size_t n_links;
};

int sc_shield_builder_new(uint32_t chunk_size, sc_shield_builder **ret, sconify_error_t *err)
{
	if (chunk_size == 0)
		chunk_size = SC_SHIELD_CHUNK_DEFAULT;
	if (!sc_shield_chunk_size_valid(chunk_size))
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "chunk size %u: must be a power of two from %u to %u bytes", chunk_size,
		                SC_SHIELD_CHUNK_MIN, SC_SHIELD_CHUNK_MAX);
	sc_shield_builder *b = xzalloc(sizeof(*b));
	b->chunk_size = chunk_size;
	b->regions = xzalloc(sizeof(*b->regions));
	b->regions[0].path = xstrdup("/");
	b->regions[0].kind = SC_SHIELD_NOT_PROTECTED;
	b->n_regions = 1;
	*ret = b;
	return 0;
}

void sc_shield_builder_free(sc_shield_builder *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n_regions; i++)
		free(b->regions[i].path);
	for (size_t i = 0; i < b->n_files; i++) {
		free(b->files[i].path);
		free(b->files[i].entry.macs);
		free(b->files[i].target);
	}
	for (size_t i = 0; i < b->n_links; i++) {
		free(b->links[i].path);
		free(b->links[i].target);
	}
	free(b->regions);
	free(b->files);
	free(b->links);
	free(b);
}

int sc_shield_builder_add_region(sc_shield_builder *b, const char *path, sc_shield_kind kind,
                                 sconify_error_t *err)
{
	if (check_path(path, err) < 0)
		return sc_error_wrap(err, "adding a shield region");
	if (kind > SC_SHIELD_AUTHENTICATED)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "region kind %d", (int)kind);
	if (strcmp(path, "/") == 0) {
		b->regions[0].kind = kind;
		return 0;
	}
	for (size_t i = 1; i < b->n_regions; i++)
		if (strcmp(b->regions[i].path, path) == 0) {
			cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_USAGE, 0, "region `%s' given twice", q);
		}
	if (b->n_regions >= SC_SHIELD_REGIONS_MAX)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "too many shield regions (at most %u)",
		                SC_SHIELD_REGIONS_MAX);
	b->regions = xreallocarray(b->regions, b->n_regions + 1, sizeof(*b->regions));
	b->regions[b->n_regions++] = (struct region){xstrdup(path), kind};
	return 0;
}

sc_shield_kind sc_shield_builder_region_of(const sc_shield_builder *b, const char *path)
{
	return region_scan(b->regions, b->n_regions, path)->kind; /* unsorted until sealed */
}

static struct bfile *add(sc_shield_builder *b, const char *path)
{
	if ((b->n_files & (b->n_files - 1)) == 0) /* grow at powers of two */
		b->files = xreallocarray(b->files, b->n_files ? 2 * b->n_files : 1, sizeof(*b->files));
	struct bfile *f = &b->files[b->n_files++];
	memset(f, 0, sizeof(*f));
	f->path = xstrdup(path);
	return f;
}

int sc_shield_builder_add_file(sc_shield_builder *b, const char *path, const sc_shield_entry *entry,
                               sconify_error_t *err)
{
	if (check_path(path, err) < 0)
		return sc_error_wrap(err, "adding a protected file");
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	if (strcmp(path, "/") == 0)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "`/' cannot be a protected file");
	if (entry->kind != SC_SHIELD_ENCRYPTED && entry->kind != SC_SHIELD_AUTHENTICATED)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "`%s': entry is not of a protected kind", q);
	if (entry->chunk_size != b->chunk_size ||
	    entry->n_chunks != sc_shield_chunks(entry->size, b->chunk_size))
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "`%s': entry made with chunks of %u, the metadata has %u", q,
		                entry->chunk_size, b->chunk_size);
	struct bfile *f = add(b, path);
	f->entry = *entry;
	f->entry.macs = xmemdup(entry->macs, (size_t)entry->n_chunks * sc_shield_mac_bytes(entry->kind));
	return 0;
}

int sc_shield_builder_add_link(sc_shield_builder *b, const char *path, const char *target,
                               sconify_error_t *err)
{
	if (check_path(path, err) < 0 || check_path(target, err) < 0)
		return sc_error_wrap(err, "adding a hard link");
	struct bfile *f = add(b, path);
	f->target = xstrdup(target);
	return 0;
}

int sc_shield_builder_add_symlink(sc_shield_builder *b, const char *path, const char *target,
                                  sconify_error_t *err)
{
	if (check_path(path, err) < 0)
		return sc_error_wrap(err, "adding a symlink");
	if (!sc_shield_link_target_valid(target, strlen(target))) {
		cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
		                "symlink `%s': a target of %zu bytes cannot be protected (1 to %u bytes)", q,
		                strlen(target), SC_SHIELD_PATH_MAX - 1);
	}
	if ((b->n_links & (b->n_links - 1)) == 0)
		b->links = xreallocarray(b->links, b->n_links ? 2 * b->n_links : 1, sizeof(*b->links));
	b->links[b->n_links++] = (struct mlink){xstrdup(path), xstrdup(target)};
	return 0;
}

static int mlink_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mlink *)a)->path, ((const struct mlink *)b)->path);
}

static int bfile_cmp(const void *a, const void *b)
{
	return strcmp((*(struct bfile *const *)a)->path, (*(struct bfile *const *)b)->path);
}

static int region_cmp(const void *a, const void *b)
{
	return strcmp(((const struct region *)a)->path, ((const struct region *)b)->path);
}

/* The target's own file (a file, not a link), by binary search over sorted. */
static struct bfile *find(struct bfile **sorted, size_t n, const char *path)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(sorted[mid]->path, path);
		if (c == 0)
			return sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int sc_shield_builder_seal(sc_shield_builder *b, const sc_shield_key *key, bool reproducible,
                           uint8_t **ret_data, size_t *ret_len, sc_shield_pin *ret_pin, sconify_error_t *err)
{
	qsort(b->regions, b->n_regions, sizeof(*b->regions), region_cmp);
	if (b->n_links)
		qsort(b->links, b->n_links, sizeof(*b->links), mlink_cmp);
	cleanup_free struct bfile **sorted = xcalloc(b->n_files ? b->n_files : 1, sizeof(*sorted));
	for (size_t i = 0; i < b->n_files; i++)
		sorted[i] = &b->files[i];
	qsort(sorted, b->n_files, sizeof(*sorted), bfile_cmp);
	for (size_t i = 1; i < b->n_files; i++)
		if (strcmp(sorted[i - 1]->path, sorted[i]->path) == 0) {
			cleanup_free char *q = sc_quote(sorted[i]->path, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_USAGE, 0, "protected path `%s' given twice", q);
		}

	/* Entries numbered in order of first use by the sorted paths. */
	cleanup_free uint32_t *index = xcalloc(b->n_files ? b->n_files : 1, sizeof(*index));
	cleanup_free sc_shield_entry *entries = xcalloc(b->n_files ? b->n_files : 1, sizeof(*entries));
	cleanup_free struct mpath *paths = xcalloc(b->n_files ? b->n_files : 1, sizeof(*paths));
	for (size_t i = 0; i < b->n_files; i++)
		index[i] = UINT32_MAX;
	uint32_t n_entries = 0;
	for (size_t i = 0; i < b->n_files; i++) {
		struct bfile *f = sorted[i];
		if (f->target) {
			struct bfile *t = find(sorted, b->n_files, f->target);
			if (t == NULL || t->target != NULL) {
				cleanup_free char *q = sc_quote(f->path, SC_QUOTE_MAX);
				cleanup_free char *qt = sc_quote(f->target, SC_QUOTE_MAX);
				return sc_error(err, SCONIFY_ERR_USAGE, 0,
				                "hard link `%s': target `%s' is not a protected file", q, qt);
			}
			f = t;
		}
		size_t fi = (size_t)(f - b->files);
		if (index[fi] == UINT32_MAX) {
			index[fi] = n_entries;
			entries[n_entries++] = f->entry;
		}
		paths[i] = (struct mpath){sorted[i]->path, index[fi]};
	}
	sc_shield_metadata md = {
	        .chunk_size = b->chunk_size,
	        .regions = b->regions,
	        .n_regions = b->n_regions,
	        .entries = entries,
	        .n_entries = n_entries,
	        .paths = paths,
	        .n_paths = b->n_files,
	        .links = b->links,
	        .n_links = b->n_links,
	};
	uint8_t *body;
	size_t body_len;
	sc_shield_metadata_serialize(&md, &body, &body_len);

	/* What we seal must be what open() accepts: the parser checks the rest
	 * (region kinds, canonical order). */
	sc_shield_metadata *check = NULL;
	int r = sc_shield_metadata_parse(body, body_len, &check, err);
	sc_shield_metadata_free(check);
	if (r < 0) {
		free(body);
		return sc_error_wrap(err, "sealing the shield metadata");
	}

	uint8_t nonce[SC_SHIELD_NONCE_BYTES];
	if (reproducible) {
		/* SIV-style: the nonce is a MAC of the body, so it repeats only
		 * for the very same body, which then seals to the same bytes. */
		uint8_t k[32], mac[32];
		unsigned int n = 0;
		sc_shield_kdf(key, SC_SHIELD_LABEL_META_NONCE, NULL, 0, k);
		if (HMAC(EVP_sha256(), k, sizeof(k), body, body_len, mac, &n) == NULL)
			abort();
		memcpy(nonce, mac, sizeof(nonce));
		OPENSSL_cleanse(k, sizeof(k));
	} else if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		free(body);
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "sealing the shield metadata: no random bytes");
	}
	sc_shield_seal_body(key, body, body_len, nonce, ret_data, ret_len, ret_pin);
	OPENSSL_cleanse(body, body_len);
	free(body);
	return 0;
}
