/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "core/cleanup.h"
#include "digest/digest.h"
#include "support.h"

#define EMPTY_SHA256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_SHA512                                                                                \
	"sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a8" \
	"36ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"

START_TEST(parse_accepts_sha256_and_sha512)
{
	cleanup_error sconify_error_t err = NULL;
	sc_digest d;
	ck_assert_ok(sc_digest_parse(EMPTY_SHA256, &d, &err), err);
	ck_assert_int_eq(d.alg, SC_SHA256);
	ck_assert_str_eq(sc_digest_hex(&d), &EMPTY_SHA256[7]);
	ck_assert_ok(sc_digest_parse(ABC_SHA512, &d, &err), err);
	ck_assert_int_eq(d.alg, SC_SHA512);
}
END_TEST

static const struct {
	const char *in;
	sconify_error_kind_t kind;
	const char *needle;
} bad[] = {
        {"sha256:../../etc/passwd", SCONIFY_ERR_INVALID, "64 lowercase hex digits"},
        {"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", SCONIFY_ERR_INVALID,
         "lowercase"},
        {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", SCONIFY_ERR_INVALID,
         "64 lowercase"},
        {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", SCONIFY_ERR_INVALID,
         "64 lowercase"},
        {"md5:d41d8cd98f00b204e9800998ecf8427e", SCONIFY_ERR_UNSUPPORTED, "unsupported digest algorithm"},
        {"", SCONIFY_ERR_INVALID, "invalid digest"},
        {"sha256", SCONIFY_ERR_INVALID, "invalid digest"},
        {":abc", SCONIFY_ERR_INVALID, "invalid digest"},
        {"SHA256:abc", SCONIFY_ERR_INVALID, "invalid digest"},
        {"sha256+:abc", SCONIFY_ERR_INVALID, "invalid digest"},
        {"sha256:", SCONIFY_ERR_INVALID, "64 lowercase"},
        {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/", SCONIFY_ERR_INVALID,
         "64 lowercase"},
};

START_TEST(parse_rejects_bad_digests)
{
	cleanup_error sconify_error_t err = NULL;
	sc_digest d;
	int r = sc_digest_parse(bad[_i].in, &d, &err);
	ck_assert_fails(r, err, bad[_i].kind, bad[_i].needle);
	ck_assert(!sc_digest_valid(bad[_i].in));
}
END_TEST

START_TEST(hasher_matches_known_values)
{
	sc_digest d;
	sc_digest_of(SC_SHA256, "", 0, &d);
	ck_assert_str_eq(d.str, EMPTY_SHA256);
	sc_digest_of(SC_SHA512, "abc", 3, &d);
	ck_assert_str_eq(d.str, ABC_SHA512);
}
END_TEST

static int read_through(sc_reader *r, sconify_error_t *err)
{
	char buf[3];
	for (;;) {
		ssize_t n = sc_reader_read(r, buf, sizeof(buf), err);
		if (n <= 0)
			return (int)n;
	}
}

START_TEST(verified_reader_accepts_matching_blob)
{
	cleanup_error sconify_error_t err = NULL;
	sc_digest d;
	sc_digest_of(SC_SHA256, "hello", 5, &d);
	cleanup_reader sc_reader *r = sc_verified_reader_new(sc_mem_reader_new("hello", 5), &d, 5, "blob x");
	ck_assert_ok(read_through(r, &err), err);
}
END_TEST

START_TEST(verified_reader_rejects_other_content)
{
	cleanup_error sconify_error_t err = NULL;
	sc_digest d;
	sc_digest_of(SC_SHA256, "hello", 5, &d);
	cleanup_reader sc_reader *r = sc_verified_reader_new(sc_mem_reader_new("hellO", 5), &d, 5, "blob x");
	ck_assert_fails(read_through(r, &err), err, SCONIFY_ERR_INTEGRITY, "blob x: digest mismatch");
}
END_TEST

START_TEST(verified_reader_rejects_short_and_long)
{
	cleanup_error sconify_error_t err = NULL;
	sc_digest d;
	sc_digest_of(SC_SHA256, "hello", 5, &d);
	cleanup_reader sc_reader *r = sc_verified_reader_new(sc_mem_reader_new("hell", 4), &d, 5, "blob x");
	ck_assert_fails(read_through(r, &err), err, SCONIFY_ERR_INTEGRITY,
	                "4 bytes, its descriptor declares 5");
	sconify_error_free(&err);
	cleanup_reader sc_reader *r2 =
	        sc_verified_reader_new(sc_mem_reader_new("hello!", 6), &d, 5, "blob x");
	ck_assert_fails(read_through(r2, &err), err, SCONIFY_ERR_INTEGRITY, "more than the 5 bytes");
}
END_TEST

START_TEST(hash_reader_and_writer_agree)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_reader sc_reader *r = sc_hash_reader_new(sc_mem_reader_new("abc", 3), SC_SHA512);
	cleanup_writer sc_writer *w = sc_hash_writer_new(NULL, SC_SHA512);
	sc_digest a, b;
	uint64_t n = 0;
	ck_assert(!sc_hash_reader_result(r, &a, NULL));
	ck_assert_ok(sc_stream_pump(r, w, &n, &err), err);
	ck_assert(sc_hash_reader_result(r, &a, NULL));
	sc_hash_writer_result(w, &b, NULL);
	ck_assert_str_eq(a.str, ABC_SHA512);
	ck_assert_str_eq(b.str, ABC_SHA512);
	ck_assert_uint_eq(n, 3);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("digest");
	TCase *tc = tcase_create("digest");
	tcase_add_test(tc, parse_accepts_sha256_and_sha512);
	tcase_add_loop_test(tc, parse_rejects_bad_digests, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, hasher_matches_known_values);
	tcase_add_test(tc, verified_reader_accepts_matching_blob);
	tcase_add_test(tc, verified_reader_rejects_other_content);
	tcase_add_test(tc, verified_reader_rejects_short_and_long);
	tcase_add_test(tc, hash_reader_and_writer_agree);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
