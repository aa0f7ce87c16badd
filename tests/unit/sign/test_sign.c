/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>
#include <sys/stat.h>

#include "core/base64.h"
#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/json-util.h"
#include "core/openssl-util.h"
#include "core/xalloc.h"
#include "sign/keys.h"
#include "sign/payload.h"
#include "support.h"

#define DIGEST "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Cheap work factors: these tests check the format, not scrypt's cost. */
static const sc_scrypt_params fast = {.n = 1024, .r = 8, .p = 1};

static char *fixed_password(void *userdata, const char *key_file)
{
	(void)key_file;
	return userdata ? xstrdup(userdata) : NULL;
}

static char *write_temp(const char *dir, const char *name, const char *text)
{
	cleanup_error sconify_error_t err = NULL;
	char *path = sc_path_join(dir, name);
	ck_assert_ok(sc_write_file_atomic(path, text, strlen(text), 0600, &err), err);
	return path;
}

static bool same_public_key(EVP_PKEY *a, EVP_PKEY *b)
{
	cleanup_free char *pa = sc_public_key_pem(a), *pb = sc_public_key_pem(b);
	return strcmp(pa, pb) == 0;
}

/* ---- base64 (Go's StdEncoding) ---- */

START_TEST(base64_round_trips_every_length)
{
	uint8_t data[40];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 37 + 1);
	for (size_t n = 0; n <= sizeof(data); n++) {
		cleanup_free char *enc = sc_base64_encode(data, n);
		ck_assert_uint_eq(strlen(enc), 4 * ((n + 2) / 3));
		cleanup_free uint8_t *dec = NULL;
		size_t len;
		ck_assert(sc_base64_decode(enc, strlen(enc), &dec, &len));
		ck_assert_uint_eq(len, n);
		ck_assert(memcmp(dec, data, n) == 0);
	}
}
END_TEST

START_TEST(base64_rejects_what_go_rejects)
{
	static const char *const bad[] = {"QQ",       "QQ=",   "Q===", "QQ==QQ==", "QQ=A",
	                                  "QUJD\x01", "QU JD", "QUJ-", "=QUJ"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		uint8_t *dec = NULL;
		size_t len;
		ck_assert_msg(!sc_base64_decode(bad[i], strlen(bad[i]), &dec, &len), "accepted %s", bad[i]);
		ck_assert_ptr_null(dec);
	}
	cleanup_free uint8_t *dec = NULL;
	size_t len;
	ck_assert(sc_base64_decode("QU\r\nJD\n", 7, &dec, &len)); /* CR and LF are skipped */
	ck_assert_uint_eq(len, 3);
	ck_assert(memcmp(dec, "ABC", 3) == 0);
}
END_TEST

/* ---- payload ---- */

START_TEST(payload_is_cosigns_bytes)
{
	sc_digest d;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_digest_parse(DIGEST, &d, &err), err);
	size_t len;
	cleanup_free char *p = sc_sig_payload_build("reg.example/app", &d, NULL, &len);
	ck_assert_str_eq(p,
	                 "{\"critical\":{\"identity\":{\"docker-reference\":\"reg.example/app\"},\"image\":{"
	                 "\"docker-manifest-digest\":\"" DIGEST "\"},\"type\":\"cosign container image "
	                 "signature\"},\"optional\":null}");
	_cleanup_(sc_sig_payload_clear) sc_sig_payload parsed = {0};
	ck_assert_ok(sc_sig_payload_parse(p, len, &parsed, &err), err);
	ck_assert_str_eq(parsed.reference, "reg.example/app");
	ck_assert_str_eq(parsed.digest.str, DIGEST);
	ck_assert_ptr_null(parsed.optional);
}
END_TEST

START_TEST(payload_keeps_annotations)
{
	sc_digest d;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_digest_parse(DIGEST, &d, &err), err);
	cleanup_json json_t *opt = json_pack("{s:s,s:s}", "a", "1", "b", "two");
	size_t len;
	cleanup_free char *p = sc_sig_payload_build("r/app", &d, opt, &len);
	ck_assert_ptr_nonnull(strstr(p, "\"optional\":{\"a\":\"1\",\"b\":\"two\"}"));
	_cleanup_(sc_sig_payload_clear) sc_sig_payload parsed = {0};
	ck_assert_ok(sc_sig_payload_parse(p, len, &parsed, &err), err);
	ck_assert_str_eq(json_string_value(json_object_get(parsed.optional, "b")), "two");
}
END_TEST

#define CRIT(type, digest)                                                                             \
	"{\"identity\":{\"docker-reference\":\"r/a\"},\"image\":{\"docker-manifest-digest\":\"" digest \
	"\"},"                                                                                         \
	"\"type\":\"" type "\"}"
static const struct {
	const char *json;
	const char *needle;
} bad_payloads[] = {
        {"{\"critical\":" CRIT("cosign container image signature", DIGEST) "}", "has no `optional'"},
        {"{\"critical\":" CRIT("cosign container image signature", DIGEST) ",\"optional\":null,\"x\":1}",
         "unknown member `x'"},
        {"{\"critical\":" CRIT("atomic container signature", DIGEST) ",\"optional\":null}", "type"},
        {"{\"critical\":" CRIT("cosign container image signature", "sha256:abc") ",\"optional\":null}",
         "docker-manifest-digest"},
        {"{\"critical\":" CRIT("cosign container image signature", DIGEST) ",\"optional\":\"x\"}",
         "neither an object nor null"},
        {"{\"critical\":" CRIT("cosign container image signature",
                               DIGEST) ",\"optional\":{\"timestamp\":1.5}}",
         "timestamp"},
        {"{\"critical\":{\"identity\":{\"docker-reference\":\"r/"
         "a\"},\"image\":{\"Docker-manifest-digest\":\"" DIGEST
         "\"},\"type\":\"cosign container image signature\"},\"optional\":null}",
         "unknown member `Docker-manifest-digest'"},
        {"{\"critical\":" CRIT("cosign container image signature",
                               DIGEST) ",\"optional\":null,\"optional\":null}",
         "duplicate key"},
        {"[]", "not an object"},
        {"{\"critical\":", "not valid JSON"},
};

START_TEST(payload_parse_is_strict)
{
	cleanup_error sconify_error_t err = NULL;
	sc_sig_payload p = {0};
	const char *j = bad_payloads[_i].json;
	ck_assert_fails(sc_sig_payload_parse(j, strlen(j), &p, &err), err, SCONIFY_ERR_INVALID,
	                bad_payloads[_i].needle);
	ck_assert_ptr_null(p.root);
}
END_TEST

/* ---- keys ---- */

START_TEST(cosign_key_round_trips)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_pkey EVP_PKEY *key = NULL, *back = NULL;
	cleanup_free char *pem = NULL;
	ck_assert_ok(sc_key_generate(&key, &err), err);
	ck_assert_ok(sc_cosign_key_encrypt(key, "s3cret", &fast, &pem, &err), err);
	ck_assert(strncmp(pem, "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n", 47) == 0);

	char *dir = sc_test_tmpdir();
	cleanup_free char *path = write_temp(dir, "k.key", pem);
	ck_assert_ok(sc_private_key_load(path, fixed_password, (void *)"s3cret", &back, &err), err);
	ck_assert(same_public_key(key, back));
	ck_assert(EVP_PKEY_eq(key, back) == 1);
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

START_TEST(cosign_key_wrong_password_is_auth_error)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_pkey EVP_PKEY *key = NULL, *back = NULL;
	cleanup_free char *pem = NULL;
	ck_assert_ok(sc_key_generate(&key, &err), err);
	ck_assert_ok(sc_cosign_key_encrypt(key, "right", &fast, &pem, &err), err);
	char *dir = sc_test_tmpdir();
	cleanup_free char *path = write_temp(dir, "k.key", pem);
	ck_assert_fails(sc_private_key_load(path, fixed_password, (void *)"wrong", &back, &err), err,
	                SCONIFY_ERR_AUTH, "wrong password");
	ck_assert(strstr(sconify_error_message(err), "wrong\"") == NULL);
	sconify_error_free(&err);
	ck_assert_fails(sc_private_key_load(path, fixed_password, NULL, &back, &err), err, SCONIFY_ERR_AUTH,
	                "no password");
	ck_assert_ptr_null(back);
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

START_TEST(cosign_test_vector_opens_with_empty_password)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *key_path = sc_test_data("cosign/cosign-empty-password.key");
	cleanup_free char *pub_path = sc_test_data("cosign/cosign-empty-password.pub");
	cleanup_pkey EVP_PKEY *key = NULL, *pub = NULL;
	ck_assert_ok(sc_private_key_load(key_path, fixed_password, (void *)"", &key, &err), err);
	ck_assert_ok(sc_public_key_load(pub_path, &pub, &err), err);
	ck_assert(EVP_PKEY_eq(key, pub) == 1);
	ck_assert_ptr_eq(sc_key_digest(key), EVP_sha256());
}
END_TEST

/* Encrypted key JSON bodies with one field wrong. */
static const struct {
	const char *json;
	sconify_error_kind_t kind;
	const char *needle;
} bad_keys[] = {
        {"{\"kdf\":{\"name\":\"argon2\",\"params\":{\"N\":1024,\"r\":8,\"p\":1},\"salt\":\"AAAA\"},"
         "\"cipher\":{"
         "\"name\":\"nacl/"
         "secretbox\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"},\"ciphertext\":\"AAAA\"}",
         SCONIFY_ERR_UNSUPPORTED, "argon2"},
        {"{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":1000,\"r\":8,\"p\":1},\"salt\":\"AAAA\"},"
         "\"cipher\":{"
         "\"name\":\"nacl/"
         "secretbox\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"},\"ciphertext\":\"AAAA\"}",
         SCONIFY_ERR_INVALID, "power of two"},
        {"{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":1073741824,\"r\":8,\"p\":1},\"salt\":\"AAAA\"},"
         "\"cipher\":{\"name\":\"nacl/secretbox\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"},"
         "\"ciphertext\":\"AAAA\"}",
         SCONIFY_ERR_LIMIT, "out of range"},
        {"{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":1024,\"r\":8,\"p\":1},\"salt\":\"AAAA\"},"
         "\"cipher\":{"
         "\"name\":\"nacl/secretbox\",\"nonce\":\"AAAA\"},\"ciphertext\":\"AAAA\"}",
         SCONIFY_ERR_INVALID, "nonce"},
        {"{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":1024,\"r\":8,\"p\":1},\"salt\":\"A*AA\"},"
         "\"cipher\":{"
         "\"name\":\"nacl/"
         "secretbox\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"},\"ciphertext\":\"AAAA\"}",
         SCONIFY_ERR_INVALID, "`salt' is not valid base64"},
        {"{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":1024,\"r\":8,\"p\":1},\"salt\":\"AAAA\"},"
         "\"cipher\":{"
         "\"name\":\"nacl/secretbox\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"},\"ciphertext\":"
         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
         SCONIFY_ERR_AUTH, "wrong password"},
        {"{\"kdf\":{\"name\":\"scrypt\",\"params\":{\"N\":1024,\"r\":8,\"p\":1}},\"cipher\":{"
         "\"name\":\"nacl/"
         "secretbox\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"},\"ciphertext\":\"AAAA\"}",
         SCONIFY_ERR_INVALID, "salt"},
};

START_TEST(cosign_key_json_is_checked)
{
	cleanup_error sconify_error_t err = NULL;
	EVP_PKEY *key = NULL;
	const char *j = bad_keys[_i].json;
	ck_assert_fails(sc_cosign_key_decrypt("k.key", (const uint8_t *)j, strlen(j), "", &key, &err), err,
	                bad_keys[_i].kind, bad_keys[_i].needle);
	ck_assert_ptr_null(key);
}
END_TEST

static char *pem_of(EVP_PKEY *key, bool sec1)
{
	cleanup_bio BIO *bio = BIO_new(BIO_s_mem());
	if (sec1)
		ck_assert(PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL) == 1);
	else
		ck_assert(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1);
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	char *s = xmalloc((size_t)n + 1);
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	return s;
}

START_TEST(plain_pem_keys_load)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_pkey EVP_PKEY *key = NULL;
	ck_assert_ok(sc_key_generate(&key, &err), err);
	char *dir = sc_test_tmpdir();
	for (int sec1 = 0; sec1 < 2; sec1++) {
		cleanup_free char *pem = pem_of(key, sec1);
		ck_assert_ptr_nonnull(strstr(pem, sec1 ? "BEGIN EC PRIVATE KEY" : "BEGIN PRIVATE KEY"));
		cleanup_free char *path = write_temp(dir, "plain.pem", pem);
		cleanup_pkey EVP_PKEY *back = NULL;
		/* no password asked: the callback would fail the load */
		ck_assert_ok(sc_private_key_load(path, NULL, NULL, &back, &err), err);
		ck_assert(EVP_PKEY_eq(key, back) == 1);
	}
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

START_TEST(password_protected_pkcs8_key_loads)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_pkey EVP_PKEY *key = NULL;
	ck_assert_ok(sc_key_generate(&key, &err), err);
	cleanup_bio BIO *bio = BIO_new(BIO_s_mem());
	ck_assert(PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), "pw", 2, NULL, NULL) == 1);
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	cleanup_free char *pem = xstrndup(p, (size_t)n);
	ck_assert_ptr_nonnull(strstr(pem, "BEGIN ENCRYPTED PRIVATE KEY"));
	char *dir = sc_test_tmpdir();
	cleanup_free char *path = write_temp(dir, "enc.pem", pem);
	cleanup_pkey EVP_PKEY *back = NULL;
	ck_assert_ok(sc_private_key_load(path, fixed_password, (void *)"pw", &back, &err), err);
	ck_assert(EVP_PKEY_eq(key, back) == 1);
	ck_assert_fails(sc_private_key_load(path, fixed_password, (void *)"nope", &back, &err), err,
	                SCONIFY_ERR_AUTH, "wrong or missing password");
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

START_TEST(unusable_keys_are_refused)
{
	cleanup_error sconify_error_t err = NULL;
	char *dir = sc_test_tmpdir();
	cleanup_pkey EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	cleanup_free char *pem = pem_of(ed, false);
	cleanup_free char *path = write_temp(dir, "ed.pem", pem);
	EVP_PKEY *back = NULL;
	ck_assert_fails(sc_private_key_load(path, NULL, NULL, &back, &err), err, SCONIFY_ERR_UNSUPPORTED,
	                "ED25519 key");
	sconify_error_free(&err);
	cleanup_free char *junk = write_temp(dir, "junk.pem", "not a key\n");
	ck_assert_fails(sc_private_key_load(junk, NULL, NULL, &back, &err), err, SCONIFY_ERR_INVALID,
	                "no PEM block");
	sconify_error_free(&err);
	ck_assert_fails(sc_public_key_load(junk, &back, &err), err, SCONIFY_ERR_INVALID,
	                "not a PEM public key");
	sconify_error_free(&err);
	cleanup_free char *missing = sc_path_join(dir, "missing.pub");
	ck_assert_fails(sc_public_key_load(missing, &back, &err), err, SCONIFY_ERR_NOT_FOUND, "missing.pub");
	ck_assert_ptr_null(back);
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

START_TEST(keygen_writes_a_private_key_file_and_keeps_existing_ones)
{
	cleanup_error sconify_error_t err = NULL;
	char *dir = sc_test_tmpdir();
	cleanup_free char *prefix = sc_path_join(dir, "cosign");
	ck_assert_ok(sconify_keygen(prefix, "pw", false, &err), err);
	cleanup_free char *key_path = xasprintf("%s.key", prefix), *pub_path = xasprintf("%s.pub", prefix);
	struct stat st;
	ck_assert_int_eq(stat(key_path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	cleanup_pkey EVP_PKEY *key = NULL, *pub = NULL;
	ck_assert_ok(sc_private_key_load(key_path, fixed_password, (void *)"pw", &key, &err), err);
	ck_assert_ok(sc_public_key_load(pub_path, &pub, &err), err);
	ck_assert(EVP_PKEY_eq(key, pub) == 1);

	cleanup_free char *before = NULL;
	size_t before_len;
	ck_assert_ok(sc_read_file(key_path, 65536, &before, &before_len, &err), err);
	ck_assert_fails(sconify_keygen(prefix, "pw", false, &err), err, SCONIFY_ERR_USAGE, "exists");
	sconify_error_free(&err);
	cleanup_free char *after = NULL;
	size_t after_len;
	ck_assert_ok(sc_read_file(key_path, 65536, &after, &after_len, &err), err);
	ck_assert(before_len == after_len && memcmp(before, after, before_len) == 0);
	ck_assert_ok(sconify_keygen(prefix, "pw", true, &err), err);
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sign");
	TCase *tc = tcase_create("sign");
	tcase_add_test(tc, base64_round_trips_every_length);
	tcase_add_test(tc, base64_rejects_what_go_rejects);
	tcase_add_test(tc, payload_is_cosigns_bytes);
	tcase_add_test(tc, payload_keeps_annotations);
	tcase_add_loop_test(tc, payload_parse_is_strict, 0, sizeof(bad_payloads) / sizeof(*bad_payloads));
	tcase_add_test(tc, cosign_key_round_trips);
	tcase_add_test(tc, cosign_key_wrong_password_is_auth_error);
	tcase_add_test(tc, cosign_test_vector_opens_with_empty_password);
	tcase_add_loop_test(tc, cosign_key_json_is_checked, 0, sizeof(bad_keys) / sizeof(*bad_keys));
	tcase_add_test(tc, plain_pem_keys_load);
	tcase_add_test(tc, password_protected_pkcs8_key_loads);
	tcase_add_test(tc, unusable_keys_are_refused);
	tcase_add_test(tc, keygen_writes_a_private_key_file_and_keeps_existing_ones);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
