/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "core/cleanup.h"
#include "image/platform.h"
#include "support.h"

static const struct {
	const char *in, *want;
} norm[] = {
        {"linux/amd64", "linux/amd64"},     {"linux/x86_64", "linux/amd64"},
        {"linux/amd64/v1", "linux/amd64"},  {"linux/amd64/v3", "linux/amd64/v3"},
        {"linux/aarch64", "linux/arm64"},   {"linux/arm64/v8", "linux/arm64"},
        {"linux/arm64/8", "linux/arm64"},   {"linux/arm", "linux/arm/v7"},
        {"linux/armhf", "linux/arm/v7"},    {"linux/armel", "linux/arm/v6"},
        {"linux/arm/6", "linux/arm/v6"},    {"linux/i686", "linux/386"},
        {"Linux/ppc64le", "linux/ppc64le"}, {"windows/amd64", "windows/amd64"},
};

START_TEST(parse_normalises_aliases)
{
	cleanup_error sconify_error_t err = NULL;
	sc_platform p;
	ck_assert_ok(sc_platform_parse(norm[_i].in, &p, &err), err);
	cleanup_free char *s = sc_platform_string(&p);
	ck_assert_str_eq(s, norm[_i].want);
	sc_platform_clear(&p);
}
END_TEST

static const char *const bad[] = {"linux",        "linux/", "/amd64",      "linux//amd64", "linux/amd64/v8/x",
                                  "linux/am d64", "",       "linux/amd64/"};

START_TEST(parse_rejects_malformed)
{
	cleanup_error sconify_error_t err = NULL;
	sc_platform p;
	int r = sc_platform_parse(bad[_i], &p, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "expected os/arch[/variant]");
}
END_TEST

START_TEST(matching_treats_default_variants_as_equal)
{
	cleanup_error sconify_error_t err = NULL;
	sc_platform a, b, c;
	ck_assert_ok(sc_platform_parse("linux/arm64", &a, &err), err);
	ck_assert_ok(sc_platform_parse("linux/arm64/v8", &b, &err), err);
	ck_assert_ok(sc_platform_parse("linux/arm/v6", &c, &err), err);
	ck_assert(sc_platform_matches(&a, &b));
	ck_assert(!sc_platform_matches(&a, &c));
	sc_platform d;
	ck_assert_ok(sc_platform_parse("linux/arm", &d, &err), err);
	ck_assert(!sc_platform_matches(&d, &c));
	sc_platform_clear(&a), sc_platform_clear(&b), sc_platform_clear(&c), sc_platform_clear(&d);
}
END_TEST

START_TEST(host_platform_is_linux_and_known)
{
	sc_platform p;
	sc_platform_host(&p);
	ck_assert_str_eq(p.os, "linux");
#if defined(__x86_64__)
	ck_assert_str_eq(p.arch, "amd64");
#elif defined(__aarch64__)
	ck_assert_str_eq(p.arch, "arm64");
#endif
	sc_platform_clear(&p);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("platform");
	TCase *tc = tcase_create("platform");
	tcase_add_loop_test(tc, parse_normalises_aliases, 0, sizeof(norm) / sizeof(norm[0]));
	tcase_add_loop_test(tc, parse_rejects_malformed, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, matching_treats_default_variants_as_equal);
	tcase_add_test(tc, host_platform_is_linux_and_known);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
