/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signing keys as cosign keeps them (docs/signing.md): private keys in
 * cosign's encrypted format (PEM "ENCRYPTED SIGSTORE PRIVATE KEY": scrypt +
 * nacl/secretbox around a PKCS#8 key) or plain PEM (PKCS#8, SEC1); public
 * keys as PEM SubjectPublicKeyInfo.
 */
#ifndef SC_SIGN_KEYS_H
#define SC_SIGN_KEYS_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sconify.h"

/* scrypt work factors: cosign's current defaults. */
typedef struct {
	uint64_t n;
	uint32_t r, p;
} sc_scrypt_params;
extern const sc_scrypt_params sc_cosign_scrypt_default;

/* A fresh ECDSA P-256 key. */
int sc_key_generate(EVP_PKEY **ret, sconify_error_t *err);

/* The private key in cosign's encrypted PEM (malloc'd, NUL-terminated). */
int sc_cosign_key_encrypt(EVP_PKEY *key, const char *password, const sc_scrypt_params *params, char **ret_pem,
                          sconify_error_t *err);
/* Opens the JSON body of an encrypted cosign key. name is the key file
 * for messages. A wrong password is SCONIFY_ERR_AUTH. */
int sc_cosign_key_decrypt(const char *name, const uint8_t *json, size_t len, const char *password,
                          EVP_PKEY **ret, sconify_error_t *err);

/* A private key that can sign: cosign's format or plain PEM. password is
 * asked for only when the file is encrypted. */
int sc_private_key_load(const char *path, sconify_password_fn password, void *userdata, EVP_PKEY **ret,
                        sconify_error_t *err);
int sc_public_key_load(const char *path, EVP_PKEY **ret, sconify_error_t *err);

/* The PEM public key (malloc'd). */
char *sc_public_key_pem(EVP_PKEY *key);

/* The digest cosign uses with this key: SHA-256 for P-256 and RSA, SHA-384
 * for P-384, SHA-512 for P-521; NULL for keys it cannot verify. */
const EVP_MD *sc_key_digest(EVP_PKEY *key);

#endif
