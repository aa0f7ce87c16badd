/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cas/cas.h"
#include "core/cleanup.h"
#include "core/openssl-util.h"
#include "core/xalloc.h"
#include "support.h"

static const char ID_A[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char ID_B[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/* ---- envelope ---- */

static void roundtrip(sc_cas_key_type type)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_pkey EVP_PKEY *key = NULL;
	cleanup_free uint8_t *pub = NULL;
	size_t pub_len = 0;
	ck_assert_ok(sc_cas_keypair_new(type, &key, &pub, &pub_len, &err), err);
	ck_assert_uint_eq(pub_len, type == SC_CAS_KEY_X25519 ? SC_CAS_X25519_BYTES : SC_CAS_P256_BYTES);
	uint8_t ch[SC_CAS_CHALLENGE_BYTES];
	RAND_bytes(ch, sizeof(ch));
	_cleanup_(sc_cas_envelope_clear) sc_cas_envelope e = {0};
	ck_assert_ok(sc_cas_envelope_seal(pub, pub_len, ch, sizeof(ch), "ns/s/app", "hello", 5, &e, &err),
	             err);
	ck_assert_uint_eq(e.server_pub_len, pub_len);
	cleanup_free uint8_t *plain = NULL;
	size_t len = 0;
	ck_assert_ok(sc_cas_envelope_open(key, ch, sizeof(ch), "ns/s/app", &e, &plain, &len, &err), err);
	ck_assert_uint_eq(len, 5);
	ck_assert_mem_eq(plain, "hello", 5);
}

START_TEST(envelope_opens_with_the_ephemeral_key_x25519_and_p256)
{
	roundtrip(SC_CAS_KEY_X25519);
	roundtrip(SC_CAS_KEY_P256);
}
END_TEST

START_TEST(envelope_refuses_other_challenge_config_id_or_changed_bytes)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_pkey EVP_PKEY *key = NULL;
	cleanup_free uint8_t *pub = NULL;
	size_t pub_len = 0;
	ck_assert_ok(sc_cas_keypair_new(SC_CAS_KEY_X25519, &key, &pub, &pub_len, &err), err);
	uint8_t ch[SC_CAS_CHALLENGE_BYTES] = {1}, other[SC_CAS_CHALLENGE_BYTES] = {2};
	_cleanup_(sc_cas_envelope_clear) sc_cas_envelope e = {0};
	ck_assert_ok(sc_cas_envelope_seal(pub, pub_len, ch, sizeof(ch), "s/app", "secret", 6, &e, &err), err);
	uint8_t *plain = NULL;
	size_t len = 0;
	int r = sc_cas_envelope_open(key, other, sizeof(other), "s/app", &e, &plain, &len, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INTEGRITY, "does not verify");
	sconify_error_free(&err);
	r = sc_cas_envelope_open(key, ch, sizeof(ch), "s/other", &e, &plain, &len, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INTEGRITY, "does not verify");
	sconify_error_free(&err);
	e.ciphertext[0] ^= 1;
	r = sc_cas_envelope_open(key, ch, sizeof(ch), "s/app", &e, &plain, &len, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INTEGRITY, "does not verify");
	ck_assert_ptr_null(plain);
}
END_TEST

START_TEST(public_key_parse_rejects_bad_lengths_and_off_curve_points)
{
	cleanup_error sconify_error_t err = NULL;
	EVP_PKEY *k = NULL;
	uint8_t buf[SC_CAS_P256_BYTES] = {0x04};
	int r = sc_cas_public_key_parse(buf, 31, &k, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "neither X25519");
	sconify_error_free(&err);
	memset(buf + 1, 0x01, sizeof(buf) - 1);
	r = sc_cas_public_key_parse(buf, sizeof(buf), &k, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "not a point on P-256");
	ck_assert_ptr_null(k);
}
END_TEST

START_TEST(report_data_is_sha256_of_challenge_and_key)
{
	uint8_t out[32], want[32];
	unsigned int n = 0;
	sc_cas_report_data((const uint8_t *)"ab", 2, (const uint8_t *)"cd", 2, out);
	EVP_Digest("abcd", 4, want, &n, EVP_sha256(), NULL);
	ck_assert_mem_eq(out, want, 32);
}
END_TEST

/* ---- configuration ---- */

static sc_policy_config *sample_config(void)
{
	sc_policy_config *c = xzalloc(sizeof(*c));
	c->argv = xcalloc(3, sizeof(char *));
	c->argv[0] = xstrdup("/bin/app");
	c->argv[1] = xstrdup("two words");
	c->env = xcalloc(2, sizeof(char *));
	c->env[0] = xstrdup("K=v");
	c->pwd = xstrdup("/app");
	c->user = xstrdup("1000:1000");
	c->fspf_path = xstrdup("/.sconify/fspf");
	memset(c->fspf_key, 7, sizeof(c->fspf_key));
	memset(c->fspf_tag, 9, 32);
	c->fspf_tag_len = 32;
	c->files = xcalloc(1, sizeof(*c->files));
	c->files[0].path = xstrdup("/etc/x");
	c->files[0].content = xmemdup("a\0b", 3);
	c->files[0].len = 3;
	c->n_files = 1;
	return c;
}

START_TEST(config_roundtrips_every_field)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_policy_config_freep) sc_policy_config *c = sample_config();
	cleanup_free uint8_t *enc = NULL;
	size_t len = 0;
	sc_cas_config_encode("s/app", "00", c, &enc, &len);
	_cleanup_(sc_cas_config_freep) sc_cas_config *d = NULL;
	ck_assert_ok(sc_cas_config_decode(enc, len, &d, &err), err);
	ck_assert_str_eq(d->config_id, "s/app");
	ck_assert_str_eq(d->config->argv[1], "two words");
	ck_assert_ptr_null(d->config->argv[2]);
	ck_assert_str_eq(d->config->env[0], "K=v");
	ck_assert_str_eq(d->config->pwd, "/app");
	ck_assert_str_eq(d->config->user, "1000:1000");
	ck_assert_mem_eq(d->config->fspf_key, c->fspf_key, 32);
	ck_assert_uint_eq(d->config->fspf_tag_len, 32);
	ck_assert_uint_eq(d->config->files[0].len, 3);
	ck_assert_mem_eq(d->config->files[0].content, "a\0b", 3);
}
END_TEST

START_TEST(config_decode_rejects_every_truncation_and_trailing_bytes)
{
	_cleanup_(sc_policy_config_freep) sc_policy_config *c = sample_config();
	cleanup_free uint8_t *enc = NULL;
	size_t len = 0;
	sc_cas_config_encode("s/app", "00", c, &enc, &len);
	for (size_t n = 0; n < len; n++) {
		cleanup_error sconify_error_t err = NULL;
		sc_cas_config *d = NULL;
		ck_assert_int_lt(sc_cas_config_decode(enc, n, &d, &err), 0);
		ck_assert_ptr_null(d);
	}
	cleanup_free uint8_t *more = xmalloc(len + 1);
	memcpy(more, enc, len);
	more[len] = 0;
	cleanup_error sconify_error_t err = NULL;
	sc_cas_config *d = NULL;
	int r = sc_cas_config_decode(more, len + 1, &d, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "trailing data");
}
END_TEST

START_TEST(config_without_user_decodes_to_null_and_bad_user_is_refused)
{
	_cleanup_(sc_policy_config_freep) sc_policy_config *c = sample_config();
	free(c->user);
	c->user = NULL;
	cleanup_free uint8_t *enc = NULL;
	size_t len = 0;
	sc_cas_config_encode("s/app", "00", c, &enc, &len);
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_cas_config_freep) sc_cas_config *d = NULL;
	ck_assert_ok(sc_cas_config_decode(enc, len, &d, &err), err);
	ck_assert_ptr_null(d->config->user);
	c->user = xstrdup("a\nb");
	cleanup_free uint8_t *bad = NULL;
	sc_cas_config_encode("s/app", "00", c, &bad, &len);
	sc_cas_config *d2 = NULL;
	int r = sc_cas_config_decode(bad, len, &d2, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "user: not");
	ck_assert_ptr_null(d2);
}
END_TEST

START_TEST(config_decode_caps_counts_before_allocating)
{
	/* magic, config_id, hash, then argc = 0xffffffff */
	static const char magic[] = "sconify-cas-config-v2";
	uint8_t buf[64] = {0};
	size_t n = 0;
	buf[3] = (uint8_t)strlen(magic);
	n = 4;
	memcpy(buf + n, magic, strlen(magic));
	n += strlen(magic);
	n += 8; /* two empty strings */
	memset(buf + n, 0xff, 4);
	n += 4;
	cleanup_error sconify_error_t err = NULL;
	sc_cas_config *d = NULL;
	int r = sc_cas_config_decode(buf, n, &d, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_LIMIT, "too many entries");
}
END_TEST

/* ---- sealing ---- */

START_TEST(seal_detects_any_flipped_byte_and_other_aad)
{
	uint8_t key[SC_CAS_DB_KEY_BYTES] = {3};
	cleanup_free uint8_t *sealed = NULL;
	size_t len = 0;
	sc_cas_seal(key, "sessions\0a", 10, "policy", 6, &sealed, &len);
	ck_assert_uint_eq(len, 6 + SC_CAS_SEAL_OVERHEAD);
	cleanup_error sconify_error_t err = NULL;
	cleanup_free uint8_t *plain = NULL;
	size_t plen = 0;
	ck_assert_ok(sc_cas_unseal(key, "sessions\0a", 10, sealed, len, "row", &plain, &plen, &err), err);
	ck_assert_mem_eq(plain, "policy", 6);
	for (size_t i = 0; i < len; i++) {
		sealed[i] ^= 0x40;
		uint8_t *p = NULL;
		int r = sc_cas_unseal(key, "sessions\0a", 10, sealed, len, "row", &p, &plen, &err);
		ck_assert_fails(r, err, SCONIFY_ERR_INTEGRITY, "does not verify");
		sconify_error_free(&err);
		sealed[i] ^= 0x40;
	}
	uint8_t *p = NULL;
	int r = sc_cas_unseal(key, "sessions\0b", 10, sealed, len, "row", &p, &plen, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INTEGRITY, "does not verify");
	sconify_error_free(&err);
	key[0] ^= 1;
	r = sc_cas_unseal(key, "sessions\0a", 10, sealed, len, "row", &p, &plen, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INTEGRITY, "does not verify");
}
END_TEST

/* ---- access ---- */

START_TEST(access_creator_any_none_and_hashes)
{
	char *creator[] = {(char *)"CREATOR"};
	char *any[] = {(char *)"ANY"};
	char *none[] = {(char *)"NONE"};
	char *hashes[] = {(char *)ID_B};
	ck_assert(sc_cas_access_allowed(creator, 1, ID_A, ID_A));
	ck_assert(!sc_cas_access_allowed(creator, 1, ID_A, ID_B));
	ck_assert(!sc_cas_access_allowed(creator, 1, ID_A, NULL));
	ck_assert(sc_cas_access_allowed(any, 1, ID_A, ID_B));
	ck_assert(sc_cas_access_allowed(any, 1, ID_A, NULL));
	ck_assert(!sc_cas_access_allowed(none, 1, ID_A, ID_A));
	ck_assert(sc_cas_access_allowed(hashes, 1, ID_A, ID_B));
	ck_assert(!sc_cas_access_allowed(hashes, 1, ID_A, ID_A));
	ck_assert(!sc_cas_access_allowed(NULL, 0, ID_A, ID_A));
}
END_TEST

/* A policy read and updated by CREATOR, holding nothing secret. */
static sc_policy *public_policy(void)
{
	sc_policy *p = sc_policy_new("open");
	sc_policy_service *svc = sc_policy_add_service(p, "app");
	const char *argv[] = {"/bin/app", NULL};
	sc_policy_service_set_argv(svc, argv);
	sc_policy_service_add_measurement(svc, ID_A);
	return p;
}

static void set_entry(char **list, const char *entry)
{
	free(list[0]);
	list[0] = xstrdup(entry);
}

START_TEST(policy_holds_secrets_sees_key_values_generated_secrets_and_files)
{
	uint8_t key[SC_POLICY_KEY_BYTES] = {1}, tag[SC_POLICY_TAG_MIN_BYTES] = {2};
	cleanup_policy sc_policy *p = public_policy();
	ck_assert(!sc_cas_policy_holds_secrets(p));
	sc_policy_service_set_fspf(&p->services[0], "/.sconify/fspf", key, tag, sizeof(tag));
	ck_assert(sc_cas_policy_holds_secrets(p));
	cleanup_policy sc_policy *given = public_policy();
	sc_policy_add_secret(given, "pw", SC_POLICY_SECRET_ASCII, "hunter2", 7);
	ck_assert(sc_cas_policy_holds_secrets(given));
	cleanup_policy sc_policy *generated = public_policy();
	sc_policy_add_secret(generated, "pw", SC_POLICY_SECRET_HEX, NULL, 16);
	ck_assert(sc_cas_policy_holds_secrets(generated));
	cleanup_policy sc_policy *files = public_policy();
	sc_policy_image_add_file(sc_policy_add_image(files, "img"), "/etc/app.conf", "x=1", 3);
	ck_assert(sc_cas_policy_holds_secrets(files));
}
END_TEST

START_TEST(any_lets_clients_into_a_session_only_while_it_holds_no_secret)
{
	cleanup_policy sc_policy *p = public_policy();
	set_entry(p->read, "ANY");
	ck_assert(sc_cas_session_access(p, p->read, p->n_read, ID_A, ID_B));
	sc_policy_add_secret(p, "pw", SC_POLICY_SECRET_ASCII, "hunter2", 7);
	ck_assert(!sc_cas_session_access(p, p->read, p->n_read, ID_A, ID_B));
	ck_assert(!sc_cas_session_access(p, p->read, p->n_read, ID_A, ID_A)); /* ANY is not CREATOR */
	/* Named clients keep their right beside ANY. */
	char *list[] = {(char *)"ANY", (char *)"CREATOR", (char *)ID_B};
	ck_assert(sc_cas_session_access(p, list, 3, ID_A, ID_A));
	ck_assert(sc_cas_session_access(p, list, 3, ID_A, ID_B));
	ck_assert(!sc_cas_session_access(p, list, 3, ID_A, NULL));
	char *none[] = {(char *)"NONE"};
	ck_assert(!sc_cas_session_access(p, none, 1, ID_A, ID_A));
}
END_TEST

START_TEST(access_policy_with_any_and_secrets_is_refused_naming_the_part)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = public_policy();
	set_entry(p->read, "ANY");
	set_entry(p->update, "ANY");
	ck_assert_ok(sc_cas_check_access_policy(p, &err), err);
	sc_policy_add_secret(p, "pw", SC_POLICY_SECRET_ASCII, "hunter2", 7);
	int r = sc_cas_check_access_policy(p, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "access_policy.read lists ANY, but the session holds");
	ck_assert_ptr_nonnull(strstr(sconify_error_message(err), "the value of secret `pw'"));
	ck_assert_ptr_null(strstr(sconify_error_message(err), "hunter2"));
	sconify_error_free(&err);
	set_entry(p->read, "CREATOR");
	r = sc_cas_check_access_policy(p, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "access_policy.update lists ANY");
	sconify_error_free(&err);
	set_entry(p->update, ID_B);
	ck_assert_ok(sc_cas_check_access_policy(p, &err), err);
	uint8_t key[SC_POLICY_KEY_BYTES] = {1}, tag[SC_POLICY_TAG_MIN_BYTES] = {2};
	cleanup_policy sc_policy *q = public_policy();
	sc_policy_service_set_fspf(&q->services[0], "/.sconify/fspf", key, tag, sizeof(tag));
	set_entry(q->read, "ANY");
	r = sc_cas_check_access_policy(q, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "the volume key (fspf_key) of service `app'");
}
END_TEST

START_TEST(config_id_splits_at_the_last_slash)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *sess = NULL, *svc = NULL;
	ck_assert_ok(sc_cas_parse_config_id("ns/sess/app", &sess, &svc, &err), err);
	ck_assert_str_eq(sess, "ns/sess");
	ck_assert_str_eq(svc, "app");
	static const char *bad[] = {"app", "/app", "s/", "s//app", "s/../app", "s/a pp", "s/app\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *a = NULL, *b = NULL;
		int r = sc_cas_parse_config_id(bad[i], &a, &b, &err);
		ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "not [namespace/]session/service");
		sconify_error_free(&err);
	}
	cleanup_free char *ns = sc_cas_session_namespace("a/b/c");
	ck_assert_str_eq(ns, "a/b");
	ck_assert_ptr_null(sc_cas_session_namespace("a"));
}
END_TEST

/* ---- challenges ---- */

START_TEST(challenge_is_single_use)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_cas_challenges_freep) sc_cas_challenges *t = sc_cas_challenges_new(4, 1000);
	uint8_t ch[SC_CAS_CHALLENGE_BYTES];
	ck_assert_ok(sc_cas_challenge_issue(t, 0, ch, &err), err);
	ck_assert_uint_eq(sc_cas_challenges_outstanding(t), 0); /* issuing stores nothing */
	ck_assert_ok(sc_cas_challenge_consume(t, 10, ch, sizeof(ch), &err), err);
	int r = sc_cas_challenge_consume(t, 10, ch, sizeof(ch), &err);
	ck_assert_fails(r, err, SCONIFY_ERR_AUTH, "unknown or already used");
	ck_assert_uint_eq(sc_cas_challenges_outstanding(t), 1); /* remembered until it expires */
}
END_TEST

START_TEST(challenge_expires)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_cas_challenges_freep) sc_cas_challenges *t = sc_cas_challenges_new(4, 1000);
	uint8_t ch[SC_CAS_CHALLENGE_BYTES];
	ck_assert_ok(sc_cas_challenge_issue(t, 0, ch, &err), err);
	int r = sc_cas_challenge_consume(t, 1000, ch, sizeof(ch), &err);
	ck_assert_fails(r, err, SCONIFY_ERR_AUTH, "expired");
}
END_TEST

START_TEST(challenge_forged_or_from_another_table_refused)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_cas_challenges_freep) sc_cas_challenges *t = sc_cas_challenges_new(4, 1000);
	_cleanup_(sc_cas_challenges_freep) sc_cas_challenges *other = sc_cas_challenges_new(4, 1000);
	uint8_t ch[SC_CAS_CHALLENGE_BYTES];
	ck_assert_ok(sc_cas_challenge_issue(other, 0, ch, &err), err);
	int r = sc_cas_challenge_consume(t, 1, ch, sizeof(ch), &err);
	ck_assert_fails(r, err, SCONIFY_ERR_AUTH, "unknown or already used");
	sconify_error_free(&err);
	ck_assert_ok(sc_cas_challenge_issue(t, 0, ch, &err), err);
	for (size_t i = 0; i < sizeof(ch); i++) { /* the time, the random part or the MAC */
		ch[i] ^= 1;
		r = sc_cas_challenge_consume(t, 1, ch, sizeof(ch), &err);
		ck_assert_int_lt(r, 0);
		ck_assert_int_eq(sconify_error_kind(err), SCONIFY_ERR_AUTH);
		sconify_error_free(&err);
		ch[i] ^= 1;
	}
	ck_assert_ok(sc_cas_challenge_consume(t, 1, ch, sizeof(ch), &err), err);
}
END_TEST

START_TEST(challenge_issue_is_unbounded_used_set_is_bounded)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_cas_challenges_freep) sc_cas_challenges *t = sc_cas_challenges_new(100, 1000);
	uint8_t all[101][SC_CAS_CHALLENGE_BYTES], ch[SC_CAS_CHALLENGE_BYTES];
	/* A flood of issues takes nothing from anyone (review item 2). */
	for (int i = 0; i < 100000; i++)
		ck_assert_ok(sc_cas_challenge_issue(t, 0, ch, &err), err);
	for (int i = 0; i < 101; i++)
		ck_assert_ok(sc_cas_challenge_issue(t, 0, all[i], &err), err);
	for (int i = 0; i < 100; i++)
		ck_assert_ok(sc_cas_challenge_consume(t, 1, all[i], SC_CAS_CHALLENGE_BYTES, &err), err);
	int r = sc_cas_challenge_consume(t, 2, all[100], SC_CAS_CHALLENGE_BYTES, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_LIMIT, "too many attestations in flight");
	sconify_error_free(&err);
	/* Every used one stays refused whatever the order of the shifts. */
	for (int i = 99; i >= 0; i -= 3) {
		r = sc_cas_challenge_consume(t, 3, all[i], SC_CAS_CHALLENGE_BYTES, &err);
		ck_assert_fails(r, err, SCONIFY_ERR_AUTH, "unknown or already used");
		sconify_error_free(&err);
	}
	/* Expired entries are reclaimed when the set is full. */
	ck_assert_ok(sc_cas_challenge_issue(t, 5000, ch, &err), err);
	ck_assert_ok(sc_cas_challenge_consume(t, 5001, ch, sizeof(ch), &err), err);
	ck_assert_uint_eq(sc_cas_challenges_outstanding(t), 1);
	r = sc_cas_challenge_consume(t, 5001, ch, 31, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_AUTH, "unknown or already used");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cas");
	TCase *tc = tcase_create("cas");
	tcase_add_test(tc, envelope_opens_with_the_ephemeral_key_x25519_and_p256);
	tcase_add_test(tc, envelope_refuses_other_challenge_config_id_or_changed_bytes);
	tcase_add_test(tc, public_key_parse_rejects_bad_lengths_and_off_curve_points);
	tcase_add_test(tc, report_data_is_sha256_of_challenge_and_key);
	tcase_add_test(tc, config_roundtrips_every_field);
	tcase_add_test(tc, config_decode_rejects_every_truncation_and_trailing_bytes);
	tcase_add_test(tc, config_without_user_decodes_to_null_and_bad_user_is_refused);
	tcase_add_test(tc, config_decode_caps_counts_before_allocating);
	tcase_add_test(tc, seal_detects_any_flipped_byte_and_other_aad);
	tcase_add_test(tc, access_creator_any_none_and_hashes);
	tcase_add_test(tc, policy_holds_secrets_sees_key_values_generated_secrets_and_files);
	tcase_add_test(tc, any_lets_clients_into_a_session_only_while_it_holds_no_secret);
	tcase_add_test(tc, access_policy_with_any_and_secrets_is_refused_naming_the_part);
	tcase_add_test(tc, config_id_splits_at_the_last_slash);
	tcase_add_test(tc, challenge_is_single_use);
	tcase_add_test(tc, challenge_expires);
	tcase_add_test(tc, challenge_forged_or_from_another_table_refused);
	tcase_add_test(tc, challenge_issue_is_unbounded_used_set_is_bounded);
	suite_add_tcase(s, tc);
	return sc_test_run(s);
}
