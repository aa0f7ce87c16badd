/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "core/cleanup.h"
#include "core/xalloc.h"
#include "ref/reference.h"
#include "support.h"

#define H256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define H512                                                                               \
	"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a8" \
	"36ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
#define A10 "aaaaaaaaaa"
#define A50 A10 A10 A10 A10 A10
#define A250 A50 A50 A50 A50 A50
#define T10 "tttttttttt"
#define T128 T10 T10 T10 T10 T10 T10 T10 T10 T10 T10 T10 T10 "tttttttt"

/* in -> normalised string and familiar form (NULL: the same as the string). */
static const struct {
	const char *in, *want, *familiar;
} good[] = {
        {"alpine", "docker.io/library/alpine:latest", "alpine:latest"},
        {"alpine:3.19", "docker.io/library/alpine:3.19", "alpine:3.19"},
        {"library/alpine", "docker.io/library/alpine:latest", "alpine:latest"},
        {"docker.io/alpine", "docker.io/library/alpine:latest", "alpine:latest"},
        {"docker.io/library/alpine:edge", "docker.io/library/alpine:edge", "alpine:edge"},
        {"index.docker.io/alpine", "docker.io/library/alpine:latest", "alpine:latest"},
        {"index.docker.io/user/app:1", "docker.io/user/app:1", "user/app:1"},
        {"user/app", "docker.io/user/app:latest", "user/app:latest"},
        {"docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"},
        {"localhost/x", "localhost/x:latest", NULL},
        {"localhost:5000/x:y", "localhost:5000/x:y", NULL},
        {"localhost", "docker.io/library/localhost:latest", "localhost:latest"},
        {"host:5000/ns/repo:tag@sha256:" H256, "host:5000/ns/repo:tag@sha256:" H256, NULL},
        {"x@sha256:" H256, "docker.io/library/x@sha256:" H256, "x@sha256:" H256},
        {"x:1@sha512:" H512, "docker.io/library/x:1@sha512:" H512, "x:1@sha512:" H512},
        {"a/b/c/d", "docker.io/a/b/c/d:latest", "a/b/c/d:latest"},
        {"[::1]:5000/x", "[::1]:5000/x:latest", NULL},
        {"[fe80::1]/x:t", "[fe80::1]/x:t", NULL},
        {"example.com/a.b_c__d-e---f/g0", "example.com/a.b_c__d-e---f/g0:latest", NULL},
        {"Example.COM/x", "Example.COM/x:latest", NULL},
        {"192.168.0.1:5000/x", "192.168.0.1:5000/x:latest", NULL},
        {"registry-1.docker.io/library/x", "registry-1.docker.io/library/x:latest", NULL},
        {"host:5000", "docker.io/library/host:5000", "host:5000"},
        {"x:_tag", "docker.io/library/x:_tag", "x:_tag"},
        {"x:Tag.1-rc", "docker.io/library/x:Tag.1-rc", "x:Tag.1-rc"},
        {"x:" T128, "docker.io/library/x:" T128, "x:" T128},
        /* docker would print "a.b/c", which reads back as registry a.b */
        {"docker.io/a.b/c", "docker.io/a.b/c:latest", NULL},
        {"docker.io/localhost/x", "docker.io/localhost/x:latest", NULL},
        {"h.io/" A250, "h.io/" A250 ":latest", NULL}, /* 255 bytes of name */
        {"UPPER.io/x", "UPPER.io/x:latest", NULL},
};

static const struct {
	const char *in;
	sconify_error_kind_t kind;
	const char *needle;
} bad[] = {
        {"", SCONIFY_ERR_INVALID, "empty reference"},
        {"UPPER/x", SCONIFY_ERR_INVALID, "repository name must be lowercase"},
        {"Alpine", SCONIFY_ERR_INVALID, "repository name must be lowercase"},
        {"ns/Repo:tag", SCONIFY_ERR_INVALID, "repository name must be lowercase"},
        {"x:", SCONIFY_ERR_INVALID, "invalid tag `'"},
        {"x:.tag", SCONIFY_ERR_INVALID, "invalid tag"},
        {"x:-tag", SCONIFY_ERR_INVALID, "invalid tag"},
        {"x:t/ag", SCONIFY_ERR_INVALID, "invalid registry `x:t'"},
        {"x:" T128 "t", SCONIFY_ERR_INVALID, "invalid tag"},
        {"x@sha256:abc", SCONIFY_ERR_INVALID, "invalid digest"},
        {"x@sha256:../../etc", SCONIFY_ERR_INVALID, "invalid digest"},
        {"x@sha256:" H256 "/", SCONIFY_ERR_INVALID, "invalid digest"},
        {"x@", SCONIFY_ERR_INVALID, "invalid digest"},
        {"x@md5:d41d8cd98f00b204e9800998ecf8427e", SCONIFY_ERR_UNSUPPORTED, "unsupported digest algorithm"},
        {":tag", SCONIFY_ERR_INVALID, "repository name must have at least one component"},
        {"@sha256:" H256, SCONIFY_ERR_INVALID, "repository name must have at least one component"},
        {"a//b", SCONIFY_ERR_INVALID, "empty path component"},
        {"x/", SCONIFY_ERR_INVALID, "empty path component"},
        {"/x", SCONIFY_ERR_INVALID, "empty path component"},
        {"host.com/", SCONIFY_ERR_INVALID, "empty path component"},
        {"-a/b", SCONIFY_ERR_INVALID, "invalid path component `-a'"},
        {"a/b-", SCONIFY_ERR_INVALID, "invalid path component `b-'"},
        {"a..b", SCONIFY_ERR_INVALID, "invalid path component"},
        {"a___b", SCONIFY_ERR_INVALID, "invalid path component"},
        {"a._b", SCONIFY_ERR_INVALID, "invalid path component"},
        {"x y", SCONIFY_ERR_INVALID, "invalid path component"},
        {"x\n", SCONIFY_ERR_INVALID, "`x\\x0a'"},
        {"a/b:c/d", SCONIFY_ERR_INVALID, "invalid path component `b:c'"},
        {"host:port/x", SCONIFY_ERR_INVALID, "invalid registry `host:port'"},
        {"-host.com/x", SCONIFY_ERR_INVALID, "invalid registry"},
        {"host-.com/x", SCONIFY_ERR_INVALID, "invalid registry"},
        {"host..com/x", SCONIFY_ERR_INVALID, "invalid registry"},
        {"host.com:/x", SCONIFY_ERR_INVALID, "invalid registry"},
        {"ho_st.com/x", SCONIFY_ERR_INVALID, "invalid registry"},
        {"[::1/x", SCONIFY_ERR_INVALID, "invalid registry"},
        {"[]:5000/x", SCONIFY_ERR_INVALID, "invalid registry"},
        {"[::g]/x", SCONIFY_ERR_INVALID, "invalid registry"},
        {"h.io/" A250 "a", SCONIFY_ERR_INVALID, "must not be more than 255 characters"},
        /* docker.io/library/ (18 bytes) + 238 = 256 */
        {A50 A50 A50 A50 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", SCONIFY_ERR_INVALID,
         "must not be more than 255 characters"},
        {H256, SCONIFY_ERR_INVALID, "64-byte hexadecimal"},
};

START_TEST(parse_normalises_valid_references)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_docker_ref sc_docker_ref *r = NULL;
	ck_assert_ok(sc_docker_ref_parse(good[_i].in, &r, &err), err);
	cleanup_free char *s = sc_docker_ref_string(r);
	cleanup_free char *f = sc_docker_ref_familiar(r);
	ck_assert_str_eq(s, good[_i].want);
	ck_assert_str_eq(f, good[_i].familiar ? good[_i].familiar : good[_i].want);

	/* Both forms read back as the same reference. */
	cleanup_docker_ref sc_docker_ref *r2 = NULL;
	ck_assert_ok(sc_docker_ref_parse(s, &r2, &err), err);
	cleanup_free char *s2 = sc_docker_ref_string(r2);
	ck_assert_str_eq(s2, s);
	cleanup_docker_ref sc_docker_ref *r3 = NULL;
	ck_assert_ok(sc_docker_ref_parse(f, &r3, &err), err);
	cleanup_free char *s3 = sc_docker_ref_string(r3);
	ck_assert_str_eq(s3, s);
}
END_TEST

START_TEST(parse_rejects_invalid_references)
{
	cleanup_error sconify_error_t err = NULL;
	sc_docker_ref *r = NULL;
	int rc = sc_docker_ref_parse(bad[_i].in, &r, &err);
	ck_assert_fails(rc, err, bad[_i].kind, bad[_i].needle);
	ck_assert_ptr_null(r);
	/* The message quotes the input. */
	ck_assert_ptr_nonnull(strstr(sconify_error_message(err), "invalid reference `"));
}
END_TEST

START_TEST(parse_fills_the_fields)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_docker_ref sc_docker_ref *r = NULL;
	ck_assert_ok(sc_docker_ref_parse("host:5000/ns/repo:tag@sha256:" H256, &r, &err), err);
	ck_assert_str_eq(r->domain, "host:5000");
	ck_assert_str_eq(r->path, "ns/repo");
	ck_assert_str_eq(r->tag, "tag");
	ck_assert_str_eq(r->digest, "sha256:" H256);
	cleanup_free char *name = sc_docker_ref_name(r);
	ck_assert_str_eq(name, "host:5000/ns/repo");
}
END_TEST

START_TEST(parse_leaves_tag_empty_when_only_a_digest_is_given)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_docker_ref sc_docker_ref *r = NULL;
	ck_assert_ok(sc_docker_ref_parse("alpine@sha256:" H256, &r, &err), err);
	ck_assert_ptr_null(r->tag);
	ck_assert_str_eq(r->digest, "sha256:" H256);
	cleanup_docker_ref sc_docker_ref *r2 = NULL;
	ck_assert_ok(sc_docker_ref_parse("alpine", &r2, &err), err);
	ck_assert_str_eq(r2->tag, "latest");
	ck_assert_ptr_null(r2->digest);
}
END_TEST

START_TEST(tag_valid_follows_the_grammar)
{
	ck_assert(sc_tag_valid("latest"));
	ck_assert(sc_tag_valid("_"));
	ck_assert(sc_tag_valid("v1.2.3-rc.1_x"));
	ck_assert(sc_tag_valid(T128));
	ck_assert(!sc_tag_valid(T128 "t"));
	ck_assert(!sc_tag_valid(""));
	ck_assert(!sc_tag_valid(".x"));
	ck_assert(!sc_tag_valid("-x"));
	ck_assert(!sc_tag_valid("x:y"));
	ck_assert(!sc_tag_valid("x/y"));
	ck_assert(!sc_tag_valid("x y"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("reference");
	TCase *tc = tcase_create("reference");
	tcase_add_loop_test(tc, parse_normalises_valid_references, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_loop_test(tc, parse_rejects_invalid_references, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, parse_fills_the_fields);
	tcase_add_test(tc, parse_leaves_tag_empty_when_only_a_digest_is_given);
	tcase_add_test(tc, tag_valid_follows_the_grammar);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
