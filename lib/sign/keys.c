/* SPDX-License-Identifier: Apache-2.0 */
#include "keys.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sodium.h>
#include <string.h>

#include "core/base64.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json-util.h"
#include "core/openssl-util.h"
#include "core/secret.h"
#include "core/strutil.h"
#include "core/xalloc.h"

const sc_scrypt_params sc_cosign_scrypt_default = {.n = 65536, .r = 8, .p = 1};

#define SALT_BYTES 32
#define KEY_FILE_MAX (64 * 1024)
/* scrypt needs 128 * r * N bytes: a key file may not ask for more than this. */
#define SCRYPT_MAX_MEMORY ((uint64_t)256 << 20)
#define SCRYPT_MAX_P 16

static const char *const cosign_pem_names[] = {"ENCRYPTED SIGSTORE PRIVATE KEY",
                                               "ENCRYPTED COSIGN PRIVATE KEY"};

int sc_key_generate(EVP_PKEY **ret, sconify_error_t *err)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (key == NULL) {
		ERR_clear_error();
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "generating an ECDSA P-256 key failed");
	}
	*ret = key;
	return 0;
}

static int derive(const char *password, const uint8_t *salt, size_t salt_len, const sc_scrypt_params *p,
                  uint8_t key[crypto_secretbox_KEYBYTES], sconify_error_t *err)
{
	if (EVP_PBE_scrypt(password, strlen(password), salt, salt_len, p->n, p->r, p->p,
	                   SCRYPT_MAX_MEMORY + ((uint64_t)64 << 20), key, crypto_secretbox_KEYBYTES) != 1) {
		ERR_clear_error();
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "scrypt failed");
	}
	return 0;
}

static int pkcs8_der(EVP_PKEY *key, sc_secret *ret, sconify_error_t *err)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
	unsigned char *der = NULL;
	int n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (n <= 0) {
		ERR_clear_error();
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "encoding the private key failed");
	}
	ret->data = xmemdup(der, (size_t)n);
	ret->len = ret->alloc = (size_t)n;
	OPENSSL_clear_free(der, (size_t)n);
	return 0;
}

/* What a memory BIO holds, as a string. */
static char *bio_string(BIO *bio)
{
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	char *out = xmalloc((size_t)n + 1);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	return out;
}

static char *pem_encode(const char *name, const void *data, size_t len)
{
	cleanup_bio BIO *bio = BIO_new(BIO_s_mem());
	if (bio == NULL || PEM_write_bio(bio, name, "", data, (long)len) <= 0)
		abort(); /* memory BIOs fail only when out of memory */
	return bio_string(bio);
}

int sc_cosign_key_encrypt(EVP_PKEY *key, const char *password, const sc_scrypt_params *params, char **ret_pem,
                          sconify_error_t *err)
{
	if (sodium_init() < 0)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "libsodium failed to initialise");
	cleanup_secret sc_secret der = {0};
	if (pkcs8_der(key, &der, err) < 0)
		return -1;
	uint8_t salt[SALT_BYTES], nonce[crypto_secretbox_NONCEBYTES], box_key[crypto_secretbox_KEYBYTES];
	if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1) {
		ERR_clear_error();
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "no random bytes for the key file");
	}
	if (derive(password, salt, sizeof(salt), params, box_key, err) < 0)
		return -1;
	size_t ct_len = der.len + crypto_secretbox_MACBYTES;
	cleanup_free uint8_t *ct = xmalloc(ct_len);
	crypto_secretbox_easy(ct, (const uint8_t *)der.data, der.len, nonce, box_key);
	OPENSSL_cleanse(box_key, sizeof(box_key));

	cleanup_free char *salt64 = sc_base64_encode(salt, sizeof(salt));
	cleanup_free char *nonce64 = sc_base64_encode(nonce, sizeof(nonce));
	cleanup_free char *ct64 = sc_base64_encode(ct, ct_len);
	cleanup_json json_t *doc = json_pack(
	        "{s:{s:s,s:{s:I,s:I,s:I},s:s},s:{s:s,s:s},s:s}", "kdf", "name", "scrypt", "params", "N",
	        (json_int_t)params->n, "r", (json_int_t)params->r, "p", (json_int_t)params->p, "salt", salt64,
	        "cipher", "name", "nacl/secretbox", "nonce", nonce64, "ciphertext", ct64);
	if (doc == NULL)
		abort();
	size_t json_len;
	cleanup_free char *json = sc_json_dump(doc, &json_len);
	*ret_pem = pem_encode(cosign_pem_names[0], json, json_len);
	return 0;
}

static int b64_member(json_t *obj, const char *key, const char *what, sc_secret *ret, sconify_error_t *err)
{
	const char *s;
	if (sc_json_get_string(obj, key, false, what, &s, err) < 0)
		return -1;
	uint8_t *dec = NULL;
	if (!sc_base64_decode(s, strlen(s), &dec, &ret->len))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `%s' is not valid base64", what, key);
	ret->data = (char *)dec;
	ret->alloc = ret->len + 1;
	return 0;
}

static int scrypt_params(json_t *kdf, const char *what, sc_scrypt_params *ret, sconify_error_t *err)
{
	json_t *params;
	uint64_t n = 0, r = 0, p = 0;
	if (sc_json_get_object(kdf, "params", false, what, &params, err) < 0 ||
	    sc_json_get_uint(params, "N", what, &n, err) < 0 ||
	    sc_json_get_uint(params, "r", what, &r, err) < 0 ||
	    sc_json_get_uint(params, "p", what, &p, err) < 0)
		return -1;
	if (n < 2 || (n & (n - 1)) != 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: scrypt N must be a power of two", what);
	if (r == 0 || p == 0 || p > SCRYPT_MAX_P || r > SCRYPT_MAX_MEMORY / 128 / n)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0,
		                "%s: scrypt parameters N=%llu r=%llu p=%llu are out of range (at most %llu "
		                "MiB, p <= %d)",
		                what, (unsigned long long)n, (unsigned long long)r, (unsigned long long)p,
		                (unsigned long long)(SCRYPT_MAX_MEMORY >> 20), SCRYPT_MAX_P);
	*ret = (sc_scrypt_params){.n = n, .r = (uint32_t)r, .p = (uint32_t)p};
	return 0;
}

static int expect_name(json_t *obj, const char *want, const char *what, sconify_error_t *err)
{
	const char *name;
	if (sc_json_get_string(obj, "name", false, what, &name, err) < 0)
		return -1;
	if (strcmp(name, want) != 0) {
		cleanup_free char *q = sc_quote(name, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0, "%s: `%s' is not supported (only `%s')",
		                what, q, want);
	}
	return 0;
}

static int from_pkcs8(const char *name, const uint8_t *der, size_t len, EVP_PKEY **ret, sconify_error_t *err)
{
	const unsigned char *p = der;
	PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
	EVP_PKEY *key = p8 && p == der + len ? EVP_PKCS82PKEY(p8) : NULL;
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (key == NULL) {
		ERR_clear_error();
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "key file `%s': the decrypted key is not a PKCS#8 key", name);
	}
	*ret = key;
	return 0;
}

int sc_cosign_key_decrypt(const char *name, const uint8_t *json, size_t len, const char *password,
                          EVP_PKEY **ret, sconify_error_t *err)
{
	if (sodium_init() < 0)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "libsodium failed to initialise");
	cleanup_free char *what = xasprintf("key file `%s'", name);
	cleanup_json json_t *doc = NULL;
	if (sc_json_parse((const char *)json, len, what, &doc, err) < 0)
		return -1;
	json_t *kdf, *cipher;
	sc_scrypt_params params = {0};
	cleanup_secret sc_secret salt = {0};
	cleanup_secret sc_secret nonce = {0};
	cleanup_secret sc_secret ct = {0};
	if (sc_json_get_object(doc, "kdf", false, what, &kdf, err) < 0 ||
	    expect_name(kdf, "scrypt", what, err) < 0 || scrypt_params(kdf, what, &params, err) < 0 ||
	    b64_member(kdf, "salt", what, &salt, err) < 0 ||
	    sc_json_get_object(doc, "cipher", false, what, &cipher, err) < 0 ||
	    expect_name(cipher, "nacl/secretbox", what, err) < 0 ||
	    b64_member(cipher, "nonce", what, &nonce, err) < 0 ||
	    b64_member(doc, "ciphertext", what, &ct, err) < 0)
		return -1;
	if (nonce.len != crypto_secretbox_NONCEBYTES)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: the nonce is %zu bytes, not %d", what,
		                nonce.len, crypto_secretbox_NONCEBYTES);
	if (ct.len < crypto_secretbox_MACBYTES || ct.len > KEY_FILE_MAX)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: the ciphertext is %zu bytes", what, ct.len);

	uint8_t box_key[crypto_secretbox_KEYBYTES];
	if (derive(password, (const uint8_t *)salt.data, salt.len, &params, box_key, err) < 0)
		return sc_error_wrap(err, "%s", what);
	cleanup_secret sc_secret der = {
	        .data = xmalloc(ct.len), .len = ct.len - crypto_secretbox_MACBYTES, .alloc = ct.len};
	int r = crypto_secretbox_open_easy((uint8_t *)der.data, (const uint8_t *)ct.data, ct.len,
	                                   (const uint8_t *)nonce.data, box_key);
	OPENSSL_cleanse(box_key, sizeof(box_key));
	if (r != 0)
		return sc_error(err, SCONIFY_ERR_AUTH, 0, "%s: wrong password (or the file was altered)",
		                what);
	return from_pkcs8(name, (const uint8_t *)der.data, der.len, ret, err);
}

/* OpenSSL's password callback for PEM keys encrypted the PKCS#8 way. */
typedef struct {
	sconify_password_fn fn;
	void *userdata;
	const char *path;
	bool asked;
} pem_pass;

static int ask_pem_password(char *buf, int size, int rwflag, void *u)
{
	(void)rwflag;
	pem_pass *pp = u;
	pp->asked = true;
	if (pp->fn == NULL)
		return -1;
	char *pw = pp->fn(pp->userdata, pp->path);
	if (pw == NULL)
		return -1;
	size_t n = strlen(pw);
	int r = n < (size_t)size ? (int)n : -1;
	if (r >= 0)
		memcpy(buf, pw, n);
	sc_secret_string_free(pw);
	return r;
}

static int check_signing_key(const char *path, EVP_PKEY *key, sconify_error_t *err)
{
	if (sc_key_digest(key) == NULL)
		return sc_error(
		        err, SCONIFY_ERR_UNSUPPORTED, 0,
		        "key file `%s': a %s key; sconify signs with ECDSA (P-256, P-384, P-521) or RSA keys",
		        path, EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "unknown");
	return 0;
}

int sc_private_key_load(const char *path, sconify_password_fn password, void *userdata, EVP_PKEY **ret,
                        sconify_error_t *err)
{
	cleanup_free char *qpath = sc_quote(path, SC_QUOTE_MAX);
	cleanup_free char *what = xasprintf("key file `%s'", qpath);
	cleanup_secret sc_secret file = {0};
	if (sc_read_secret_file(path, KEY_FILE_MAX, what, &file, NULL, err) < 0)
		return -1;

	/* PEM_FLAG_SECURE: the decoded body lives in OpenSSL's secure heap,
	 * wiped when freed. */
	cleanup_bio BIO *bio = BIO_new_mem_buf(file.data, (int)file.len);
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	if (bio == NULL || PEM_read_bio_ex(bio, &name, &header, &data, &len, PEM_FLAG_SECURE) != 1) {
		ERR_clear_error();
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "key file `%s': no PEM block", qpath);
	}
	bool cosign = false;
	for (size_t i = 0; i < sizeof(cosign_pem_names) / sizeof(*cosign_pem_names); i++)
		cosign |= strcmp(name, cosign_pem_names[i]) == 0;
	OPENSSL_secure_free(name);
	OPENSSL_secure_free(header);

	EVP_PKEY *key = NULL;
	if (cosign) {
		char *pw = password ? password(userdata, path) : NULL;
		if (pw == NULL) {
			OPENSSL_secure_clear_free(data, (size_t)len);
			return sc_error(
			        err, SCONIFY_ERR_AUTH, 0,
			        "key file `%s' is encrypted and no password was given (COSIGN_PASSWORD)",
			        qpath);
		}
		int r = sc_cosign_key_decrypt(qpath, data, (size_t)len, pw, &key, err);
		sc_secret_string_free(pw);
		OPENSSL_secure_clear_free(data, (size_t)len);
		if (r < 0)
			return -1;
	} else {
		OPENSSL_secure_clear_free(data, (size_t)len);
		cleanup_bio BIO *again = BIO_new_mem_buf(file.data, (int)file.len);
		pem_pass pp = {.fn = password, .userdata = userdata, .path = path};
		key = again ? PEM_read_bio_PrivateKey(again, NULL, ask_pem_password, &pp) : NULL;
		if (key == NULL) {
			ERR_clear_error();
			return sc_error(err, pp.asked ? SCONIFY_ERR_AUTH : SCONIFY_ERR_INVALID, 0,
			                "key file `%s': %s", qpath,
			                pp.asked ? "wrong or missing password"
			                         : "not a private key (cosign's format, PKCS#8 or SEC1 PEM)");
		}
	}
	if (check_signing_key(qpath, key, err) < 0) {
		EVP_PKEY_free(key);
		return -1;
	}
	*ret = key;
	return 0;
}

int sc_public_key_load(const char *path, EVP_PKEY **ret, sconify_error_t *err)
{
	cleanup_free char *qpath = sc_quote(path, SC_QUOTE_MAX);
	cleanup_free char *what = xasprintf("key file `%s'", qpath);
	cleanup_secret sc_secret file = {0};
	if (sc_read_secret_file(path, KEY_FILE_MAX, what, &file, NULL, err) < 0)
		return -1;
	const char *data = file.data ? file.data : "";
	size_t len = file.len;
	cleanup_bio BIO *bio = BIO_new_mem_buf(data, (int)len);
	EVP_PKEY *key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	if (key == NULL) {
		ERR_clear_error();
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "key file `%s': not a PEM public key (`PUBLIC KEY')", qpath);
	}
	if (sc_key_digest(key) == NULL) {
		EVP_PKEY_free(key);
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
		                "key file `%s': only ECDSA (P-256, P-384, P-521) and RSA public keys verify",
		                qpath);
	}
	*ret = key;
	return 0;
}

char *sc_public_key_pem(EVP_PKEY *key)
{
	cleanup_bio BIO *bio = BIO_new(BIO_s_mem());
	if (bio == NULL || PEM_write_bio_PUBKEY(bio, key) != 1)
		abort();
	return bio_string(bio);
}

const EVP_MD *sc_key_digest(EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "RSA"))
		return EVP_PKEY_get_bits(key) >= 2048 ? EVP_sha256() : NULL;
	if (!EVP_PKEY_is_a(key, "EC"))
		return NULL;
	char group[64];
	if (EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) != 1)
		return NULL;
	if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
		return EVP_sha256();
	if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
		return EVP_sha384();
	if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
		return EVP_sha512();
	return NULL;
}
