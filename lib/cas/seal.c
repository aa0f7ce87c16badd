/* SPDX-License-Identifier: Apache-2.0 */
/* Store rows sealed under the database key (docs/cas.md):
 *   01 || nonce (12, random) || AES-256-GCM(key, nonce, aad, plain) || tag (16) */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cas/cas.h"
#include "core/openssl-util.h"
#include "core/xalloc.h"

#define SEAL_VERSION 1

void sc_cas_seal(const uint8_t key[SC_CAS_DB_KEY_BYTES], const void *aad, size_t aad_len, const void *plain,
                 size_t plain_len, uint8_t **ret, size_t *ret_len)
{
	size_t len = SC_CAS_SEAL_OVERHEAD + plain_len;
	uint8_t *out = xmalloc(len);
	out[0] = SEAL_VERSION;
	uint8_t *nonce = out + 1, *ct = out + 1 + SC_CAS_NONCE_BYTES, *tag = ct + plain_len;
	cleanup_cipher_ctx EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0;
	/* A random 96-bit nonce per row: far below the 2^32 messages under one
	 * key where random GCM nonces become a concern. Failures here are
	 * allocation or a broken RNG, which nothing can recover from. */
	if (c == NULL || plain_len > INT32_MAX || aad_len > INT32_MAX ||
	    RAND_bytes(nonce, SC_CAS_NONCE_BYTES) != 1 ||
	    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1 ||
	    EVP_EncryptUpdate(c, ct, &n, plain, (int)plain_len) != 1 ||
	    EVP_EncryptFinal_ex(c, ct + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SC_CAS_TAG_BYTES, tag) != 1)
		abort();
	*ret = out;
	*ret_len = len;
}

int sc_cas_unseal(const uint8_t key[SC_CAS_DB_KEY_BYTES], const void *aad, size_t aad_len,
                  const uint8_t *sealed, size_t sealed_len, const char *what, uint8_t **ret, size_t *ret_len,
                  sconify_error_t *err)
{
	if (sealed_len < SC_CAS_SEAL_OVERHEAD || sealed[0] != SEAL_VERSION || sealed_len > INT32_MAX ||
	    aad_len > INT32_MAX)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "sealed value %s does not verify (malformed)",
		                what);
	size_t len = sealed_len - SC_CAS_SEAL_OVERHEAD;
	const uint8_t *nonce = sealed + 1, *ct = sealed + 1 + SC_CAS_NONCE_BYTES, *tag = ct + len;
	uint8_t *plain = xmalloc(len + 1);
	cleanup_cipher_ctx EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0;
	int ok = c != NULL && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
	         EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1 &&
	         EVP_DecryptUpdate(c, plain, &n, ct, (int)len) == 1 &&
	         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SC_CAS_TAG_BYTES, (void *)tag) == 1 &&
	         EVP_DecryptFinal_ex(c, plain + n, &m) == 1;
	if (!ok) {
		OPENSSL_cleanse(plain, len);
		free(plain);
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
		                "sealed value %s does not verify: changed, moved or sealed under another key",
		                what);
	}
	plain[len] = 0;
	*ret = plain;
	*ret_len = len;
	return 0;
}
