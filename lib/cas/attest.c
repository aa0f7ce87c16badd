/* SPDX-License-Identifier: Apache-2.0 */
/* Attestation messages: report data, ephemeral keys and the configuration
 * envelope (docs/attestation.md). OpenSSL only. */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "cas/cas.h"
#include "core/openssl-util.h"
#include "core/xalloc.h"

#define ENVELOPE_INFO "sconify-cas v1 config key"

SC_DEFINE_CLEANUP(EVP_KDF_CTX *, EVP_KDF_CTX_free)
SC_DEFINE_CLEANUP(EVP_KDF *, EVP_KDF_free)

void sc_cas_report_data(const uint8_t *challenge, size_t challenge_len, const uint8_t *pub, size_t pub_len,
                        uint8_t out[SC_CAS_REPORT_DATA_BYTES])
{
	cleanup_md_ctx EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int n = 0;
	/* Only allocation can fail here, and OOM aborts everywhere else too. */
	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, challenge, challenge_len) != 1 || EVP_DigestUpdate(c, pub, pub_len) != 1 ||
	    EVP_DigestFinal_ex(c, out, &n) != 1)
		abort();
}

static int public_bytes(EVP_PKEY *key, uint8_t **ret, size_t *ret_len, sconify_error_t *err)
{
	uint8_t buf[SC_CAS_P256_BYTES];
	size_t len = 0;
	if (EVP_PKEY_is_a(key, "X25519")) {
		len = SC_CAS_X25519_BYTES;
		if (EVP_PKEY_get_raw_public_key(key, buf, &len) != 1 || len != SC_CAS_X25519_BYTES)
			return sc_error(err, SCONIFY_ERR_GENERIC, 0, "cannot read an X25519 public key");
	} else if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof(buf),
	                                           &len) != 1 ||
	           len != SC_CAS_P256_BYTES) {
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "cannot read a P-256 public key");
	}
	*ret = xmemdup(buf, len);
	*ret_len = len;
	return 0;
}

int sc_cas_keypair_new(sc_cas_key_type type, EVP_PKEY **ret_key, uint8_t **ret_pub, size_t *ret_pub_len,
                       sconify_error_t *err)
{
	cleanup_pkey EVP_PKEY *key = type == SC_CAS_KEY_X25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "X25519")
	                                                       : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (key == NULL)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "cannot generate an ephemeral key");
	if (public_bytes(key, ret_pub, ret_pub_len, err) < 0)
		return -1;
	*ret_key = steal_pointer(&key);
	return 0;
}

int sc_cas_public_key_parse(const uint8_t *pub, size_t len, EVP_PKEY **ret, sconify_error_t *err)
{
	if (len == SC_CAS_X25519_BYTES) {
		EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, len);
		if (key == NULL)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "public key: not an X25519 key");
		*ret = key;
		return 0;
	}
	if (len != SC_CAS_P256_BYTES || pub[0] != 0x04)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "public key: %zu bytes, neither X25519 (32 bytes) nor an uncompressed P-256 "
		                "point (65 bytes starting with 04)",
		                len);
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
	        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pub, len),
	        OSSL_PARAM_construct_end(),
	};
	cleanup_pkey_ctx EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *key = NULL;
	/* Importing decodes the point, which fails unless it is on the curve. */
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "public key: not a point on P-256");
	*ret = key;
	return 0;
}

void sc_cas_envelope_clear(sc_cas_envelope *e)
{
	free(e->server_pub);
	free(e->ciphertext);
	memset(e, 0, sizeof(*e));
}

/* key = HKDF-SHA256(salt = challenge, ikm = ECDH(own, peer),
 *                   info = ENVELOPE_INFO || client_pub || server_pub) */
static int derive_key(EVP_PKEY *own, EVP_PKEY *peer, const uint8_t *challenge, size_t challenge_len,
                      const uint8_t *client_pub, size_t client_len, const uint8_t *server_pub,
                      size_t server_len, uint8_t key[32], sconify_error_t *err)
{
	uint8_t shared[66];
	size_t shared_len = sizeof(shared);
	cleanup_pkey_ctx EVP_PKEY_CTX *dctx = EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL);
	if (dctx == NULL || EVP_PKEY_derive_init(dctx) != 1 || EVP_PKEY_derive_set_peer(dctx, peer) != 1 ||
	    EVP_PKEY_derive(dctx, shared, &shared_len) != 1)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "key agreement with the peer's public key failed");

	size_t info_len = strlen(ENVELOPE_INFO) + client_len + server_len;
	cleanup_free uint8_t *info = xmalloc(info_len);
	memcpy(info, ENVELOPE_INFO, strlen(ENVELOPE_INFO));
	memcpy(info + strlen(ENVELOPE_INFO), client_pub, client_len);
	memcpy(info + strlen(ENVELOPE_INFO) + client_len, server_pub, server_len);

	_cleanup_(EVP_KDF_freep) EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	_cleanup_(EVP_KDF_CTX_freep) EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared, shared_len),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)challenge, challenge_len),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, info_len),
	        OSSL_PARAM_construct_end(),
	};
	int ok = kctx != NULL && EVP_KDF_derive(kctx, key, 32, params) == 1;
	OPENSSL_cleanse(shared, sizeof(shared));
	if (!ok)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "HKDF-SHA256 failed");
	return 0;
}

int sc_cas_envelope_seal(const uint8_t *client_pub, size_t client_pub_len, const uint8_t *challenge,
                         size_t challenge_len, const char *config_id, const void *plain, size_t plain_len,
                         sc_cas_envelope *ret, sconify_error_t *err)
{
	cleanup_pkey EVP_PKEY *peer = NULL;
	if (sc_cas_public_key_parse(client_pub, client_pub_len, &peer, err) < 0)
		return -1;
	sc_cas_key_type type = client_pub_len == SC_CAS_X25519_BYTES ? SC_CAS_KEY_X25519 : SC_CAS_KEY_P256;
	cleanup_pkey EVP_PKEY *own = NULL;
	_cleanup_(sc_cas_envelope_clear) sc_cas_envelope e = {0};
	if (sc_cas_keypair_new(type, &own, &e.server_pub, &e.server_pub_len, err) < 0)
		return -1;
	uint8_t key[32];
	if (derive_key(own, peer, challenge, challenge_len, client_pub, client_pub_len, e.server_pub,
	               e.server_pub_len, key, err) < 0)
		return -1;
	if (RAND_bytes(e.nonce, sizeof(e.nonce)) != 1) {
		OPENSSL_cleanse(key, sizeof(key));
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "no random bytes for a nonce");
	}
	e.ciphertext = xmalloc(plain_len + SC_CAS_TAG_BYTES);
	cleanup_cipher_ctx EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0;
	int ok =
	        c != NULL && plain_len <= INT32_MAX &&
	        EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, e.nonce) == 1 &&
	        EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)config_id, (int)strlen(config_id)) == 1 &&
	        EVP_EncryptUpdate(c, e.ciphertext, &n, plain, (int)plain_len) == 1 &&
	        EVP_EncryptFinal_ex(c, e.ciphertext + n, &m) == 1 &&
	        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SC_CAS_TAG_BYTES, e.ciphertext + plain_len) == 1;
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "AES-256-GCM encryption failed");
	e.ciphertext_len = plain_len + SC_CAS_TAG_BYTES;
	*ret = e;
	memset(&e, 0, sizeof(e));
	return 0;
}

int sc_cas_envelope_open(EVP_PKEY *key, const uint8_t *challenge, size_t challenge_len, const char *config_id,
                         const sc_cas_envelope *e, uint8_t **ret_plain, size_t *ret_len, sconify_error_t *err)
{
	cleanup_pkey EVP_PKEY *peer = NULL;
	if (sc_cas_public_key_parse(e->server_pub, e->server_pub_len, &peer, err) < 0)
		return sc_error_wrap(err, "the CAS's ephemeral key");
	if (EVP_PKEY_is_a(key, "X25519") != EVP_PKEY_is_a(peer, "X25519"))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "the CAS answered with another type of key");
	if (e->ciphertext_len < SC_CAS_TAG_BYTES || e->ciphertext_len - SC_CAS_TAG_BYTES > INT32_MAX)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "envelope: ciphertext shorter than its tag");
	cleanup_free uint8_t *own_pub = NULL;
	size_t own_len = 0;
	if (public_bytes(key, &own_pub, &own_len, err) < 0)
		return -1;
	uint8_t k[32];
	if (derive_key(key, peer, challenge, challenge_len, own_pub, own_len, e->server_pub,
	               e->server_pub_len, k, err) < 0)
		return -1;
	size_t len = e->ciphertext_len - SC_CAS_TAG_BYTES;
	uint8_t *plain = xmalloc(len + 1);
	cleanup_cipher_ctx EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0;
	/* The tag length is ours to check: OpenSSL accepts a truncated tag. It is
	 * fixed here by construction (the last 16 bytes). */
	int ok = c != NULL && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k, e->nonce) == 1 &&
	         EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)config_id, (int)strlen(config_id)) == 1 &&
	         EVP_DecryptUpdate(c, plain, &n, e->ciphertext, (int)len) == 1 &&
	         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SC_CAS_TAG_BYTES, e->ciphertext + len) == 1 &&
	         EVP_DecryptFinal_ex(c, plain + n, &m) == 1;
	OPENSSL_cleanse(k, sizeof(k));
	if (!ok) {
		OPENSSL_cleanse(plain, len);
		free(plain);
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "the configuration envelope does not verify");
	}
	plain[len] = 0;
	*ret_plain = plain;
	*ret_len = len;
	return 0;
}
