/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the shield module: the key schedule, the chunk primitives and the
 * metadata body codec. Not for callers outside lib/shield/, except the unit
 * tests and the fuzz target, which build malformed encodings with them.
 */
#ifndef SC_SHIELD_INTERNAL_H
#define SC_SHIELD_INTERNAL_H

#include "shield.h"

#define SC_SHIELD_NONCE_BYTES 12
#define SC_SHIELD_CHUNK_AAD_BYTES (SC_SHIELD_FILE_ID_BYTES + 8 + 4)

/* Sealed metadata: magic, version, nonce, ciphertext of the body, tag. */
#define SC_SHIELD_MAGIC "SCSHIELD"
#define SC_SHIELD_MAGIC_BYTES 8
#define SC_SHIELD_VERSION 2u /* 2: symbolic links in protected regions */
#define SC_SHIELD_HEADER_BYTES (SC_SHIELD_MAGIC_BYTES + 4 + SC_SHIELD_NONCE_BYTES)

/* HKDF labels (docs/shield.md, "Key schedule"). */
#define SC_SHIELD_LABEL_FILE_KEY "sconify-shield v1 file key"
#define SC_SHIELD_LABEL_FILE_ID "sconify-shield v1 file id"
#define SC_SHIELD_LABEL_META_KEY "sconify-shield v1 metadata key"
#define SC_SHIELD_LABEL_META_NONCE "sconify-shield v1 metadata nonce"

struct sc_shield_key {
	uint8_t key[SC_SHIELD_KEY_BYTES];
	uint8_t prk[32]; /* HKDF-Extract(salt = none, IKM = key) */
};

/* HKDF-SHA256 of the volume key with info = label || ctx, 32 bytes out. */
void sc_shield_kdf(const sc_shield_key *key, const char *label, const void *ctx, size_t ctx_len,
                   uint8_t out[32]);
void sc_shield_file_key(const sc_shield_key *key, const uint8_t file_id[SC_SHIELD_FILE_ID_BYTES],
                        uint8_t out[32]);
void sc_shield_chunk_nonce(uint64_t index, bool final, uint8_t out[SC_SHIELD_NONCE_BYTES]);
void sc_shield_chunk_aad(const uint8_t file_id[SC_SHIELD_FILE_ID_BYTES], uint64_t size, uint32_t chunk_size,
                         uint8_t out[SC_SHIELD_CHUNK_AAD_BYTES]);
/* Length of chunk index of a file (the last one may be short or empty). */
size_t sc_shield_chunk_len(uint64_t size, uint32_t chunk_size, uint64_t index);
bool sc_shield_chunk_size_valid(uint32_t chunk_size);
/* Absolute, normal path of at most SC_SHIELD_PATH_MAX bytes, no NUL. */
bool sc_shield_path_valid(const char *p, size_t len);
/* A symlink's target as the metadata keeps it: 1 to SC_SHIELD_PATH_MAX - 1
 * bytes (what readlink(2) can return), no NUL. */
bool sc_shield_link_target_valid(const char *t, size_t len);

/* One chunk with every bound value given explicitly, final flag included: the
 * tests forge encodings the encryptor never makes (no final chunk, two final
 * chunks) with these. open checks tag_len itself (OpenSSL accepts short tags). */
void sc_shield_chunk_seal(const uint8_t file_key[32], const uint8_t file_id[SC_SHIELD_FILE_ID_BYTES],
                          uint64_t size, uint32_t chunk_size, uint64_t index, bool final, const void *in,
                          size_t n, void *out, uint8_t tag[SC_SHIELD_TAG_BYTES]);
int sc_shield_chunk_open(const uint8_t file_key[32], const uint8_t file_id[SC_SHIELD_FILE_ID_BYTES],
                         uint64_t size, uint32_t chunk_size, uint64_t index, bool final, const void *in,
                         size_t n, void *out, const uint8_t *tag, size_t tag_len, sconify_error_t *err);

/* The plaintext body of the metadata (docs/shield.md, "Metadata"). parse is
 * strict: it accepts only the canonical encoding, so
 * serialize(parse(x)) == x for every x it accepts. */
int sc_shield_metadata_parse(const uint8_t *body, size_t len, sc_shield_metadata **ret, sconify_error_t *err);
void sc_shield_metadata_serialize(const sc_shield_metadata *md, uint8_t **ret, size_t *ret_len);
/* Seals body with the given nonce; returns the sealed bytes and their pin. */
void sc_shield_seal_body(const sc_shield_key *key, const uint8_t *body, size_t len,
                         const uint8_t nonce[SC_SHIELD_NONCE_BYTES], uint8_t **ret, size_t *ret_len,
                         sc_shield_pin *ret_pin);
void sc_shield_pin_of(const void *data, size_t len, sc_shield_pin *ret);

/* Hex helpers: lower-case out; in accepts either case. */
void sc_shield_hex(const uint8_t *in, size_t n, char *out);
bool sc_shield_unhex(const char *in, uint8_t *out, size_t n);

static inline size_t sc_shield_mac_bytes(sc_shield_kind kind)
{
	return kind == SC_SHIELD_ENCRYPTED ? SC_SHIELD_TAG_BYTES : SC_SHIELD_HASH_BYTES;
}

static inline void sc_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static inline void sc_put_be64(uint8_t *p, uint64_t v)
{
	sc_put_be32(p, (uint32_t)(v >> 32));
	sc_put_be32(p + 4, (uint32_t)v);
}

#endif
