/* SPDX-License-Identifier: Apache-2.0 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/json-util.h"
#include "core/secret.h"
#include "core/xalloc.h"
#include "serve/events.h"
#include "support.h"

#define MAN_DIGEST "sha256:77cd300ffdf16f18318d6059f680f509a8b4572bfd4bfff182497390575a108e"
#define IDX_DIGEST "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6"
#define HARBOR_DIGEST "sha256:97c8399621692a62a92594a8d4955321829fd2b010346f2c1478d0126f22bc8f"
#define GHCR_DIGEST "sha256:1bebcb22d4c7c246165b313358b185fd412f5d014b7f9948f189687591aca664"
#define OTHER_DIGEST "sha256:0000000000000000000000000000000000000000000000000000000000000001"

#define V1_TYPE "application/vnd.docker.distribution.events.v1+json"
#define V2_TYPE "application/vnd.docker.distribution.events.v2+json"
#define DELIVERY "72d3162e-cc78-11e3-81ab-4c9367dc0958"

/* ---- a request: a few headers and a body ---- */

#define MAX_HEADERS 8

typedef struct {
	const char *name[MAX_HEADERS];
	const char *value[MAX_HEADERS];
	size_t n;
	const char *repeated; /* a header the "server" saw twice */
} headers;

static const char *get_header(void *arg, const char *name)
{
	headers *h = arg;
	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->name[i], name) == 0)
			return h->value[i];
	return NULL;
}

static bool header_repeated(void *arg, const char *name)
{
	headers *h = arg;
	return h->repeated && strcasecmp(h->repeated, name) == 0;
}

static void set(headers *h, const char *name, const char *value)
{
	ck_assert_uint_lt(h->n, MAX_HEADERS);
	h->name[h->n] = name;
	h->value[h->n] = value;
	h->n++;
}

static sc_serve_request request(headers *h, const char *body)
{
	return (sc_serve_request){.get_header = get_header,
	                          .arg = h,
	                          .body = (const uint8_t *)body,
	                          .body_len = strlen(body),
	                          .header_repeated = header_repeated};
}

static char *fixture(const char *name)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *rel = xasprintf("serve/events/%s", name);
	cleanup_free char *path = sc_test_data(rel);
	char *data = NULL;
	size_t len = 0;
	ck_assert_ok(sc_read_file(path, 1 << 20, &data, &len, &err), err);
	return data;
}

static json_t *fixture_json(const char *name)
{
	cleanup_free char *text = fixture(name);
	json_t *j = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(j);
	return j;
}

/* Sets (value NULL: deletes) the member at a dotted path whose numeric parts
 * index arrays: "events.3.target.digest". Takes value. */
static void set_path(json_t *root, const char *path, json_t *value)
{
	cleanup_free char *p = xstrdup(path);
	json_t *cur = root;
	char *save = NULL;
	char *part = strtok_r(p, ".", &save);
	for (;;) {
		char *next = strtok_r(NULL, ".", &save);
		bool index = part[0] >= '0' && part[0] <= '9';
		if (next == NULL) {
			if (index) {
				ck_assert(value != NULL);
				json_array_set_new(cur, strtoul(part, NULL, 10), value);
			} else if (value) {
				json_object_set_new(cur, part, value);
			} else {
				json_object_del(cur, part);
			}
			return;
		}
		cur = index ? json_array_get(cur, strtoul(part, NULL, 10)) : json_object_get(cur, part);
		ck_assert_msg(cur != NULL, "no `%s' in `%s'", part, path);
		part = next;
	}
}

static char *dump(json_t *j)
{
	return sc_json_dump(j, NULL);
}

/* A fixture with one member changed, as a body. */
static char *fixture_with(const char *name, const char *path, json_t *value)
{
	cleanup_json json_t *j = fixture_json(name);
	set_path(j, path, value);
	return dump(j);
}

static headers distribution_headers(const char *content_type)
{
	headers h = {0};
	set(&h, "Content-Type", content_type);
	return h;
}

static headers github_headers(const char *event)
{
	headers h = {0};
	set(&h, "Content-Type", "application/json");
	set(&h, "X-GitHub-Event", event);
	set(&h, "X-GitHub-Delivery", DELIVERY);
	return h;
}

static int parse(sc_source_kind source, headers *h, const char *body, sc_serve_event **ret,
                 sconify_error_t *err)
{
	sc_serve_request req = request(h, body);
	return sc_serve_event_parse(source, &req, ret, err);
}

/* Parses body and expects INVALID with needle in the message. */
static void expect_invalid(sc_source_kind source, headers *h, const char *body, const char *needle)
{
	cleanup_error sconify_error_t err = NULL;
	sc_serve_event *e = NULL;
	int r = parse(source, h, body, &e, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, needle);
	ck_assert_ptr_null(e);
}

/* ---- source names ---- */

START_TEST(source_kind_names_round_trip)
{
	for (int k = 0; k < SC_SOURCE__N; k++)
		ck_assert_int_eq(sc_source_kind_from_name(sc_source_kind_name((sc_source_kind)k)), k);
	ck_assert_str_eq(sc_source_kind_name(SC_SOURCE_DISTRIBUTION), "distribution");
	ck_assert_str_eq(sc_source_kind_name(SC_SOURCE_HARBOR), "harbor");
	ck_assert_str_eq(sc_source_kind_name(SC_SOURCE_GITHUB), "github");
	ck_assert_int_eq(sc_source_kind_from_name("gitlab"), -1);
	ck_assert_int_eq(sc_source_kind_from_name("GitHub"), -1);
	ck_assert_int_eq(sc_source_kind_from_name(""), -1);
	ck_assert_int_eq(sc_source_kind_from_name(NULL), -1);
}
END_TEST

/* ---- authentication ---- */

typedef struct {
	sc_serve_auth a;
	sc_secret bearer[2], header_value[2], hmac[2];
} auth_fixture;

static void secret_set(sc_secret *s, const char *v)
{
	ck_assert(sc_secret_append(s, v, strlen(v), 4096));
}

static void auth_fixture_free(auth_fixture *f)
{
	for (size_t i = 0; i < 2; i++) {
		sc_secret_free(&f->bearer[i]);
		sc_secret_free(&f->header_value[i]);
		sc_secret_free(&f->hmac[i]);
	}
}
#define cleanup_auth _cleanup_(auth_fixture_free)

static void with_bearer(auth_fixture *f, const char *t1, const char *t2)
{
	f->a.configured = true;
	secret_set(&f->bearer[0], t1);
	if (t2)
		secret_set(&f->bearer[1], t2);
	f->a.bearer = f->bearer;
	f->a.n_bearer = t2 ? 2 : 1;
}

static void with_header(auth_fixture *f, const char *name, const char *v1, const char *v2)
{
	f->a.configured = true;
	f->a.header_name = (char *)name;
	secret_set(&f->header_value[0], v1);
	if (v2)
		secret_set(&f->header_value[1], v2);
	f->a.header_value = f->header_value;
	f->a.n_header_value = v2 ? 2 : 1;
}

static void with_hmac(auth_fixture *f, const char *s1, const char *s2)
{
	f->a.configured = true;
	secret_set(&f->hmac[0], s1);
	if (s2)
		secret_set(&f->hmac[1], s2);
	f->a.hmac = f->hmac;
	f->a.n_hmac = s2 ? 2 : 1;
}

static int authenticate(sc_source_kind source, const auth_fixture *f, headers *h, const char *body,
                        sconify_error_t *err)
{
	sc_serve_request req = request(h, body);
	return sc_serve_authenticate(source, &f->a, &req, err);
}

/* Fails with AUTH, needle in the message, and none of the secrets in it. */
static void expect_refused(sc_source_kind source, const auth_fixture *f, headers *h, const char *body,
                           const char *needle)
{
	cleanup_error sconify_error_t err = NULL;
	int r = authenticate(source, f, h, body, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_AUTH, needle);
	const char *msg = sconify_error_message(err);
	for (size_t i = 0; i < 2; i++) {
		const sc_secret *all[] = {&f->bearer[i], &f->header_value[i], &f->hmac[i]};
		for (size_t k = 0; k < 3; k++)
			if (all[k]->data)
				ck_assert_msg(strstr(msg, all[k]->data) == NULL, "`%s' shows a secret", msg);
	}
	/* What the request presented stays out too: it may be a near miss. */
	const char *authz = get_header(h, "Authorization");
	if (authz && strlen(authz) > 7)
		ck_assert_msg(strstr(msg, authz + 7) == NULL, "`%s' shows the presented token", msg);
}

START_TEST(auth_bearer_accepts_every_active_token)
{
	cleanup_auth auth_fixture f = {0};
	with_bearer(&f, "old-token-0123456789", "new-token-abcdefghij");
	const char *ok[] = {"Bearer old-token-0123456789", "Bearer new-token-abcdefghij",
	                    "bearer new-token-abcdefghij", "BEARER   old-token-0123456789"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cleanup_error sconify_error_t err = NULL;
		headers h = {0};
		set(&h, "Authorization", ok[i]);
		ck_assert_ok(authenticate(SC_SOURCE_DISTRIBUTION, &f, &h, "{}", &err), err);
	}
}
END_TEST

START_TEST(auth_bearer_refuses_wrong_near_miss_and_missing_tokens)
{
	cleanup_auth auth_fixture f = {0};
	with_bearer(&f, "a-shared-token", NULL);
	const char *wrong[] = {"Bearer a-shared-toke", "Bearer a-shared-token-", "Bearer A-SHARED-TOKEN",
	                       "Bearer a-shared-token ", "Bearer xa-shared-token"};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		headers h = {0};
		set(&h, "Authorization", wrong[i]);
		expect_refused(SC_SOURCE_DISTRIBUTION, &f, &h, "{}", "bearer token does not match");
	}
	headers none = {0};
	expect_refused(SC_SOURCE_DISTRIBUTION, &f, &none, "{}", "no Authorization header");
	headers basic = {0};
	set(&basic, "Authorization", "Basic YS1zaGFyZWQtdG9rZW4=");
	expect_refused(SC_SOURCE_DISTRIBUTION, &f, &basic, "{}", "is not a bearer token");
	headers bare = {0};
	set(&bare, "Authorization", "a-shared-token");
	expect_refused(SC_SOURCE_DISTRIBUTION, &f, &bare, "{}", "is not a bearer token");
	headers empty = {0};
	set(&empty, "Authorization", "Bearer   ");
	expect_refused(SC_SOURCE_DISTRIBUTION, &f, &empty, "{}", "empty bearer token");
	/* The source is named, so the operator knows which endpoint it was. */
	expect_refused(SC_SOURCE_DISTRIBUTION, &f, &none, "{}", "distribution delivery not authenticated");
}
END_TEST

START_TEST(auth_refuses_a_credential_header_sent_twice)
{
	cleanup_auth auth_fixture f = {0};
	with_bearer(&f, "a-shared-token", NULL);
	headers h = {0};
	set(&h, "Authorization", "Bearer a-shared-token");
	h.repeated = "authorization";
	expect_refused(SC_SOURCE_DISTRIBUTION, &f, &h, "{}", "Authorization header sent more than once");

	cleanup_auth auth_fixture g = {0};
	with_hmac(&g, "It's a Secret to Everybody", NULL);
	headers s = {0};
	set(&s, "X-Hub-Signature-256",
	    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
	s.repeated = "X-Hub-Signature-256";
	expect_refused(SC_SOURCE_GITHUB, &g, &s, "Hello, World!",
	               "X-Hub-Signature-256 header sent more than once");
}
END_TEST

START_TEST(auth_static_header_matches_verbatim_with_rotation)
{
	cleanup_auth auth_fixture f = {0};
	/* Harbor sends its "Auth Header" verbatim as Authorization. */
	with_header(&f, "Authorization", "Basic aGFyYm9yOnMzY3JldA==", "harbor-secret-2");
	const char *ok[] = {"Basic aGFyYm9yOnMzY3JldA==", "harbor-secret-2"};
	for (size_t i = 0; i < 2; i++) {
		cleanup_error sconify_error_t err = NULL;
		headers h = {0};
		set(&h, "Authorization", ok[i]);
		ck_assert_ok(authenticate(SC_SOURCE_HARBOR, &f, &h, "{}", &err), err);
	}
	headers wrong = {0};
	set(&wrong, "Authorization", "Basic aGFyYm9yOnMzY3JldA");
	expect_refused(SC_SOURCE_HARBOR, &f, &wrong, "{}", "Authorization header does not match");
	headers none = {0};
	expect_refused(SC_SOURCE_HARBOR, &f, &none, "{}", "no Authorization header");

	cleanup_auth auth_fixture g = {0};
	with_header(&g, "X-Registry-Secret", "s3cret-value", NULL);
	headers custom = {0};
	set(&custom, "x-registry-secret", "s3cret-value");
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(authenticate(SC_SOURCE_DISTRIBUTION, &g, &custom, "{}", &err), err);
	headers other = {0};
	set(&other, "Authorization", "s3cret-value");
	expect_refused(SC_SOURCE_DISTRIBUTION, &g, &other, "{}", "no X-Registry-Secret header");
}
END_TEST

START_TEST(auth_hmac_matches_the_github_test_vector)
{
	cleanup_auth auth_fixture f = {0};
	with_hmac(&f, "It's a Secret to Everybody", NULL);
	const char *sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
	headers h = {0};
	set(&h, "X-Hub-Signature-256", sig);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(authenticate(SC_SOURCE_GITHUB, &f, &h, "Hello, World!", &err), err);
	/* One byte of the body more or less, or another secret, and it fails. */
	expect_refused(SC_SOURCE_GITHUB, &f, &h, "Hello, World!\n",
	               "X-Hub-Signature-256 does not match the body");
	expect_refused(SC_SOURCE_GITHUB, &f, &h, "Hello, World",
	               "X-Hub-Signature-256 does not match the body");
	expect_refused(SC_SOURCE_GITHUB, &f, &h, "", "X-Hub-Signature-256 does not match the body");
	cleanup_auth auth_fixture other = {0};
	with_hmac(&other, "It's a secret to everybody", NULL);
	expect_refused(SC_SOURCE_GITHUB, &other, &h, "Hello, World!",
	               "X-Hub-Signature-256 does not match the body");
}
END_TEST

START_TEST(auth_hmac_accepts_every_active_secret)
{
	cleanup_auth auth_fixture f = {0};
	with_hmac(&f, "rotated-out-soon", "It's a Secret to Everybody");
	headers h = {0};
	set(&h, "X-Hub-Signature-256",
	    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(authenticate(SC_SOURCE_GITHUB, &f, &h, "Hello, World!", &err), err);
	/* Upper-case hex is the same signature. */
	headers upper = {0};
	set(&upper, "X-Hub-Signature-256",
	    "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17");
	ck_assert_ok(authenticate(SC_SOURCE_GITHUB, &f, &upper, "Hello, World!", &err), err);
}
END_TEST

START_TEST(auth_hmac_refuses_missing_and_malformed_signatures)
{
	cleanup_auth auth_fixture f = {0};
	with_hmac(&f, "It's a Secret to Everybody", NULL);
	headers none = {0};
	expect_refused(SC_SOURCE_GITHUB, &f, &none, "Hello, World!", "no X-Hub-Signature-256 header");
	const char *bad[] = {
	        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",      /* no sha256= */
	        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", /* other algorithm */
	        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",   /* 63 digits */
	        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e177", /* 65 digits */
	        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g",  /* not hex */
	        "sha256=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		headers h = {0};
		set(&h, "X-Hub-Signature-256", bad[i]);
		expect_refused(SC_SOURCE_GITHUB, &f, &h, "Hello, World!",
		               "X-Hub-Signature-256 is not `sha256=<64 hex");
	}
	/* A valid-looking signature of another body. */
	headers h = {0};
	set(&h, "X-Hub-Signature-256",
	    "sha256=0000000000000000000000000000000000000000000000000000000000000000");
	expect_refused(SC_SOURCE_GITHUB, &f, &h, "Hello, World!", "does not match the body");
}
END_TEST

START_TEST(auth_passes_on_any_configured_kind_and_lists_every_reason)
{
	cleanup_auth auth_fixture f = {0};
	with_bearer(&f, "a-shared-token", NULL);
	with_hmac(&f, "It's a Secret to Everybody", NULL);
	cleanup_error sconify_error_t err = NULL;
	headers sig = {0};
	set(&sig, "X-Hub-Signature-256",
	    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
	ck_assert_ok(authenticate(SC_SOURCE_GITHUB, &f, &sig, "Hello, World!", &err), err);
	headers tok = {0};
	set(&tok, "Authorization", "Bearer a-shared-token");
	ck_assert_ok(authenticate(SC_SOURCE_GITHUB, &f, &tok, "Hello, World!", &err), err);
	headers none = {0};
	expect_refused(SC_SOURCE_GITHUB, &f, &none, "x",
	               "no Authorization header; no X-Hub-Signature-256 header");
	/* Bearer and a static Authorization header: the missing header is said once. */
	cleanup_auth auth_fixture g = {0};
	with_bearer(&g, "a-shared-token", NULL);
	with_header(&g, "Authorization", "verbatim-value", NULL);
	int r = authenticate(SC_SOURCE_HARBOR, &g, &none, "{}", &err);
	ck_assert_fails(r, err, SCONIFY_ERR_AUTH, "not authenticated: no Authorization header");
	ck_assert_ptr_null(
	        strstr(strstr(sconify_error_message(err), "no Authorization") + 1, "no Authorization"));
}
END_TEST

START_TEST(auth_without_configuration_is_a_usage_error)
{
	cleanup_auth auth_fixture f = {0};
	headers h = {0};
	set(&h, "Authorization", "Bearer x");
	cleanup_error sconify_error_t err = NULL;
	int r = authenticate(SC_SOURCE_HARBOR, &f, &h, "{}", &err);
	ck_assert_fails(r, err, SCONIFY_ERR_USAGE, "no authentication is configured for harbor");
	sconify_error_free(&err);
	sc_serve_request req = request(&h, "{}");
	r = sc_serve_authenticate(SC_SOURCE_GITHUB, NULL, &req, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_USAGE, "no authentication is configured for github");
	sconify_error_free(&err);
	/* `configured' with no credential at all is not an open door. */
	f.a.configured = true;
	r = authenticate(SC_SOURCE_HARBOR, &f, &h, "{}", &err);
	ck_assert_fails(r, err, SCONIFY_ERR_USAGE, "no authentication is configured");
}
END_TEST

START_TEST(auth_empty_secret_never_matches)
{
	cleanup_auth auth_fixture f = {0};
	f.a.configured = true;
	f.a.bearer = f.bearer;
	f.a.n_bearer = 1; /* an empty sc_secret */
	headers h = {0};
	set(&h, "Authorization", "Bearer x");
	expect_refused(SC_SOURCE_DISTRIBUTION, &f, &h, "{}", "bearer token does not match");
}
END_TEST

/* ---- CNCF distribution ---- */

START_TEST(distribution_v1_docker_push_gives_the_tagged_manifest)
{
	cleanup_free char *body = fixture("distribution-v1-push.json");
	headers h = distribution_headers(V1_TYPE);
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, body, &e, &err), err);
	ck_assert_int_eq(e->source, SC_SOURCE_DISTRIBUTION);
	ck_assert_uint_eq(e->n_pushes, 1);
	ck_assert_uint_eq(e->n_skipped, 3); /* two layers and the config */
	ck_assert_ptr_null(e->delivery_id);
	sc_serve_event_push *p = &e->pushes[0];
	ck_assert_str_eq(p->registry, "registry.example:5000");
	ck_assert_str_eq(p->repository, "apps/web");
	ck_assert_str_eq(p->tag, "v1.2.3");
	ck_assert_str_eq(p->digest, MAN_DIGEST);
	ck_assert_str_eq(p->media_type, "application/vnd.docker.distribution.manifest.v2+json");
	ck_assert_ptr_nonnull(p->user_agent);
	ck_assert(strncmp(p->user_agent, "docker/24.0.7 ", 14) == 0);
}
END_TEST

START_TEST(distribution_v2_index_push_skips_blobs_and_untagged_manifests)
{
	cleanup_free char *body = fixture("distribution-v2-push.json");
	headers h = distribution_headers(V2_TYPE);
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, body, &e, &err), err);
	ck_assert_uint_eq(e->n_pushes, 1);
	ck_assert_uint_eq(e->n_skipped, 4);
	ck_assert_str_eq(e->pushes[0].digest, IDX_DIGEST);
	ck_assert_str_eq(e->pushes[0].tag, "2.0");
	ck_assert_str_eq(e->pushes[0].media_type, "application/vnd.oci.image.index.v1+json");
	ck_assert_str_eq(e->pushes[0].user_agent, "skopeo/1.9.3");
}
END_TEST

START_TEST(distribution_pull_and_delete_are_skipped_and_counted)
{
	const struct {
		const char *file;
		size_t skipped;
	} cases[] = {{"distribution-pull.json", 2}, {"distribution-delete.json", 1}};
	for (size_t i = 0; i < 2; i++) {
		cleanup_free char *body = fixture(cases[i].file);
		headers h = distribution_headers(V2_TYPE);
		cleanup_error sconify_error_t err = NULL;
		cleanup_serve_event sc_serve_event *e = NULL;
		ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, body, &e, &err), err);
		ck_assert_uint_eq(e->n_pushes, 0);
		ck_assert_uint_eq(e->n_skipped, cases[i].skipped);
	}
	/* An empty envelope is a delivery of nothing. */
	headers h = distribution_headers(V2_TYPE);
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, "{\"events\":[]}", &e, &err), err);
	ck_assert_uint_eq(e->n_pushes + e->n_skipped, 0);
}
END_TEST

START_TEST(distribution_schema1_and_mount_are_skipped)
{
	cleanup_free char *schema1 =
	        fixture_with("distribution-v1-push.json", "events.3.target.mediaType",
	                     json_string("application/vnd.docker.distribution.manifest.v1+prettyjws"));
	cleanup_free char *mount =
	        fixture_with("distribution-v1-push.json", "events.3.action", json_string("mount"));
	cleanup_free char *no_type =
	        fixture_with("distribution-v1-push.json", "events.3.target.mediaType", NULL);
	const char *bodies[] = {schema1, mount, no_type};
	for (size_t i = 0; i < 3; i++) {
		headers h = distribution_headers(V1_TYPE);
		cleanup_error sconify_error_t err = NULL;
		cleanup_serve_event sc_serve_event *e = NULL;
		ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, bodies[i], &e, &err), err);
		ck_assert_uint_eq(e->n_pushes, 0);
		ck_assert_uint_eq(e->n_skipped, 4);
	}
}
END_TEST

START_TEST(distribution_content_type_must_be_an_events_type)
{
	cleanup_free char *body = fixture("distribution-v1-push.json");
	const char *ok[] = {V1_TYPE, V2_TYPE, "application/json", "application/json; charset=utf-8",
	                    "Application/VND.Docker.Distribution.Events.V2+JSON"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		headers h = distribution_headers(ok[i]);
		cleanup_error sconify_error_t err = NULL;
		cleanup_serve_event sc_serve_event *e = NULL;
		ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, body, &e, &err), err);
		ck_assert_uint_eq(e->n_pushes, 1);
	}
	headers text = distribution_headers("text/plain");
	expect_invalid(SC_SOURCE_DISTRIBUTION, &text, body,
	               "Content-Type `text/plain' is not a distribution");
	headers prefix = distribution_headers("application/jsonx");
	expect_invalid(SC_SOURCE_DISTRIBUTION, &prefix, body, "is not a distribution notification");
	headers none = {0};
	expect_invalid(SC_SOURCE_DISTRIBUTION, &none, body, "has no Content-Type");
}
END_TEST

START_TEST(distribution_registry_comes_from_target_url_without_request_host)
{
	cleanup_json json_t *j = fixture_json("distribution-v1-push.json");
	set_path(j, "events.3.request", NULL);
	set_path(j, "events.3.target.url",
	         json_string("https://mirror.example.org:8443/v2/apps/web/manifests/" MAN_DIGEST));
	cleanup_free char *body = dump(j);
	headers h = distribution_headers(V1_TYPE);
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, body, &e, &err), err);
	ck_assert_str_eq(e->pushes[0].registry, "mirror.example.org:8443");
	ck_assert_ptr_null(e->pushes[0].user_agent);

	set_path(j, "events.3.target.url", NULL);
	cleanup_free char *no_url = dump(j);
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, no_url, "names no registry");
	set_path(j, "events.3.target.url", json_string("/v2/apps/web/manifests/v1"));
	cleanup_free char *relative = dump(j);
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, relative, "is not an http(s) URL");
	set_path(j, "events.3.target.url", json_string("http://user@evil/v2/x"));
	cleanup_free char *userinfo = dump(j);
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, userinfo, "is not a registry host");
}
END_TEST

START_TEST(distribution_malformed_pushes_are_invalid)
{
	const struct {
		const char *path;
		json_t *value;
		const char *needle;
	} cases[] = {
	        {"events.3.target.digest", json_string(MAN_DIGEST "0"), "is not a sha256 digest"},
	        {"events.3.target.digest",
	         json_string("sha256:77CD300FFDF16F18318D6059F680F509A8B4572BFD4BFFF182497390575A108E"),
	         "is not a sha256 digest"},
	        {"events.3.target.digest",
	         json_string("sha512:77cd300ffdf16f18318d6059f680f509a8b4572bfd4bfff182497390575a108e"),
	         "is not a sha256 digest"},
	        {"events.3.target.digest", json_integer(7), "`digest' is an integer, not a string"},
	        {"events.3.target.digest", NULL, "events[3].target lacks `digest'"},
	        {"events.3.target.repository", json_string("Apps/Web"), "is not a repository name"},
	        {"events.3.target.repository", json_string("apps//web"), "is not a repository name"},
	        {"events.3.target.repository", json_string("apps/web/"), "is not a repository name"},
	        {"events.3.target.repository", json_string("-apps"), "is not a repository name"},
	        {"events.3.target.repository", json_string("../etc"), "is not a repository name"},
	        {"events.3.target.repository", NULL, "lacks `repository'"},
	        {"events.3.target.tag", json_string("-v1"), "`tag' value `-v1' is not a tag"},
	        {"events.3.target.tag", json_string("v1/../x"), "is not a tag"},
	        {"events.3.target.tag", json_string("v1\nx"), "`v1\\x0ax' is not a tag"},
	        {"events.3.target.tag", json_true(), "`tag' is a boolean"},
	        {"events.3.request.host", json_string("registry.example:5000/x"), "is not a registry host"},
	        {"events.3.request.host", json_string("registry.example:99999"), "is not a registry host"},
	        {"events.3.request.host", json_string("-registry"), "is not a registry host"},
	        {"events.3.request", json_string("x"), "`request' is a string, not an object"},
	        {"events.3.action", json_integer(1), "`action' is an integer"},
	        {"events.3.action", NULL, "events[3] lacks `action'"},
	        {"events.3.target", NULL, "events[3] lacks `target'"},
	        {"events.3.target", json_array(), "`target' is an array"},
	        {"events.3", json_string("push"), "events[3] is not an object"},
	        {"events", json_object(), "`events' is an object, not an array"},
	        {"events", NULL, "lacks `events'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_free char *body =
		        fixture_with("distribution-v1-push.json", cases[i].path, cases[i].value);
		headers h = distribution_headers(V1_TYPE);
		expect_invalid(SC_SOURCE_DISTRIBUTION, &h, body, cases[i].needle);
	}
	/* A 129-character tag. */
	char long_tag[130];
	memset(long_tag, 'a', 129);
	long_tag[129] = '\0';
	cleanup_free char *body =
	        fixture_with("distribution-v1-push.json", "events.3.target.tag", json_string(long_tag));
	headers h = distribution_headers(V1_TYPE);
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, body, "is not a tag");
	long_tag[128] = '\0';
	cleanup_free char *ok =
	        fixture_with("distribution-v1-push.json", "events.3.target.tag", json_string(long_tag));
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, ok, &e, &err), err);
}
END_TEST

START_TEST(distribution_what_is_skipped_is_not_checked)
{
	/* A pull with a digest we would refuse in a push: not ours to judge. */
	cleanup_free char *body =
	        fixture_with("distribution-pull.json", "events.0.target.digest", json_string("md5:x"));
	headers h = distribution_headers(V2_TYPE);
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, body, &e, &err), err);
	ck_assert_uint_eq(e->n_skipped, 2);
	/* Unknown members anywhere are ignored. */
	cleanup_free char *extra = fixture_with("distribution-v1-push.json", "events.3.target.annotations",
	                                        json_pack("{s:s}", "a", "b"));
	sc_serve_event_free(e);
	e = NULL;
	ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, extra, &e, &err), err);
	ck_assert_uint_eq(e->n_pushes, 1);
}
END_TEST

START_TEST(malformed_bodies_are_invalid)
{
	headers h = distribution_headers(V2_TYPE);
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, "", "empty body");
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, "{\"events\":[", "is not valid JSON");
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, "{\"events\":[]} x", "is not valid JSON");
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, "[]", "is not a JSON object");
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, "\"events\"", "is not valid JSON");
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, "{\"events\":[],\"events\":[]}", "duplicate key");
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, "{\"events\":[{\"action\":\"pu\\u0000sh\"}]}",
	               "not valid JSON");
	/* Deep nesting is refused before the recursive parser sees it. */
	size_t depth = 100000;
	cleanup_free char *deep = xmalloc(2 * depth + 1);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	deep[2 * depth] = '\0';
	expect_invalid(SC_SOURCE_DISTRIBUTION, &h, deep, "nests deeper than");
	/* Brackets inside strings do not count. */
	cleanup_free char *brackets = xmalloc(depth + 64);
	strcpy(brackets, "{\"events\":[],\"x\":\"");
	size_t n = strlen(brackets);
	memset(brackets + n, '[', 1000);
	strcpy(brackets + n + 1000, "\\\"\"}");
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, brackets, &e, &err), err);
}
END_TEST

/* {"events":[U,U,...]} with n copies of unit */
static char *envelope_of(const char *unit, size_t n)
{
	size_t ulen = strlen(unit);
	char *b = xmalloc(n * (ulen + 1) + 32);
	size_t k = (size_t)sprintf(b, "{\"events\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			b[k++] = ',';
		memcpy(b + k, unit, ulen);
		k += ulen;
	}
	strcpy(b + k, "]}");
	return b;
}

START_TEST(bodies_holding_more_json_than_a_delivery_needs_are_refused)
{
	headers h = distribution_headers(V2_TYPE);
	cleanup_error sconify_error_t err = NULL;
	sc_serve_event *e = NULL;
	/* 40000 empty objects: 120 KB that jansson would make ~9 MB of. */
	cleanup_free char *objects = envelope_of("{}", 40000);
	int r = parse(SC_SOURCE_DISTRIBUTION, &h, objects, &e, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_LIMIT, "more than 32768 JSON objects and arrays");
	ck_assert_ptr_null(e);
	sconify_error_free(&err);
	cleanup_free char *values = envelope_of("0", 300000);
	r = parse(SC_SOURCE_DISTRIBUTION, &h, values, &e, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_LIMIT, "more than 262144 JSON values");
	sconify_error_free(&err);
	/* Below the bounds the same shapes parse (and are not events). */
	cleanup_free char *fewer = envelope_of("{\"action\":\"pull\"}", 30000);
	ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, fewer, &e, &err), err);
	ck_assert_uint_eq(e->n_skipped, 30000);
	sc_serve_event_free(e);
}
END_TEST

static char *many_pushes(size_t n_push, size_t n_pull)
{
	cleanup_json json_t *proto = fixture_json("distribution-v1-push.json");
	json_t *push = json_array_get(json_object_get(proto, "events"), 3);
	cleanup_json json_t *env = json_pack("{s:[]}", "events");
	json_t *events = json_object_get(env, "events");
	for (size_t i = 0; i < n_push + n_pull; i++) {
		json_t *ev = json_deep_copy(push);
		if (i >= n_push)
			json_object_set_new(ev, "action", json_string("pull"));
		json_array_append_new(events, ev);
	}
	return dump(env);
}

START_TEST(pushes_are_capped_per_delivery)
{
	headers h = distribution_headers(V2_TYPE);
	cleanup_free char *at_cap = many_pushes(SC_SERVE_MAX_PUSHES, 300);
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_DISTRIBUTION, &h, at_cap, &e, &err), err);
	ck_assert_uint_eq(e->n_pushes, SC_SERVE_MAX_PUSHES);
	ck_assert_uint_eq(e->n_skipped, 300);
	cleanup_free char *over = many_pushes(SC_SERVE_MAX_PUSHES + 1, 0);
	sc_serve_event *none = NULL;
	int r = parse(SC_SOURCE_DISTRIBUTION, &h, over, &none, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_LIMIT, "more than 256 pushes");
	ck_assert_ptr_null(none);
}
END_TEST

/* ---- Harbor ---- */

START_TEST(harbor_default_push_skips_the_untagged_resource)
{
	cleanup_free char *body = fixture("harbor-default-push.json");
	headers h = distribution_headers("application/json");
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_HARBOR, &h, body, &e, &err), err);
	ck_assert_uint_eq(e->n_pushes, 1);
	ck_assert_uint_eq(e->n_skipped, 1);
	sc_serve_event_push *p = &e->pushes[0];
	ck_assert_str_eq(p->registry, "harbor.example.com");
	ck_assert_str_eq(p->repository, "library/busybox");
	ck_assert_str_eq(p->tag, "v1");
	ck_assert_str_eq(p->digest, HARBOR_DIGEST);
	ck_assert_ptr_null(p->media_type);
	ck_assert_ptr_null(p->user_agent);
	ck_assert_ptr_null(e->delivery_id);
}
END_TEST

START_TEST(harbor_cloudevents_push_and_pull)
{
	cleanup_free char *body = fixture("harbor-cloudevents-push.json");
	headers h = distribution_headers("application/cloudevents+json");
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_HARBOR, &h, body, &e, &err), err);
	ck_assert_uint_eq(e->n_pushes, 1);
	ck_assert_uint_eq(e->n_skipped, 0);
	ck_assert_str_eq(e->pushes[0].registry, "harbor.example.com:8443");
	ck_assert_str_eq(e->pushes[0].repository, "team-a/api/server");
	ck_assert_str_eq(e->pushes[0].tag, "2024.05");

	cleanup_free char *pull = fixture("harbor-cloudevents-pull.json");
	cleanup_serve_event sc_serve_event *p = NULL;
	ck_assert_ok(parse(SC_SOURCE_HARBOR, &h, pull, &p, &err), err);
	ck_assert_uint_eq(p->n_pushes, 0);
	ck_assert_uint_eq(p->n_skipped, 1);
}
END_TEST

START_TEST(harbor_other_types_are_skipped)
{
	/* Each format's own push type only: the other's is not a push. */
	const struct {
		const char *file, *type;
	} cases[] = {
	        {"harbor-default-push.json", "DELETE_ARTIFACT"},
	        {"harbor-default-push.json", "harbor.artifact.pushed"},
	        {"harbor-cloudevents-push.json", "PUSH_ARTIFACT"},
	        {"harbor-cloudevents-push.json", "harbor.scan.completed"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_free char *body = fixture_with(cases[i].file, "type", json_string(cases[i].type));
		headers h = {0};
		cleanup_error sconify_error_t err = NULL;
		cleanup_serve_event sc_serve_event *e = NULL;
		ck_assert_ok(parse(SC_SOURCE_HARBOR, &h, body, &e, &err), err);
		ck_assert_uint_eq(e->n_pushes, 0);
		ck_assert_uint_eq(e->n_skipped, 1);
	}
}
END_TEST

START_TEST(harbor_malformed_pushes_are_invalid)
{
	const struct {
		const char *file, *path;
		json_t *value;
		const char *needle;
	} cases[] = {
	        {"harbor-default-push.json", "event_data.resources.0.digest", json_string("sha256:abc"),
	         "is not a sha256 digest"},
	        {"harbor-default-push.json", "event_data.resources.0.digest", NULL,
	         "event_data.resources[0] lacks `digest'"},
	        {"harbor-default-push.json", "event_data.resources.0.tag", json_string(".v1"),
	         "is not a tag"},
	        {"harbor-default-push.json", "event_data.resources.0.resource_url", NULL,
	         "lacks `resource_url'"},
	        {"harbor-default-push.json", "event_data.resources.0.resource_url",
	         json_string("/library/busybox:v1"), "is not a registry/repository reference"},
	        {"harbor-default-push.json", "event_data.resources.0.resource_url",
	         json_string("harbor_example/library/busybox:v1"), "is not a registry host"},
	        {"harbor-default-push.json", "event_data.resources.0", json_integer(1), "is not an object"},
	        {"harbor-default-push.json", "event_data.repository.repo_full_name",
	         json_string("Library/BusyBox"), "is not a repository name"},
	        {"harbor-default-push.json", "event_data.repository", NULL, "lacks `repository'"},
	        {"harbor-default-push.json", "event_data.resources", NULL, "lacks `resources'"},
	        {"harbor-default-push.json", "event_data", NULL, "lacks `event_data'"},
	        {"harbor-default-push.json", "type", NULL, "lacks `type'"},
	        {"harbor-cloudevents-push.json", "data", json_string("{}"),
	         "`data' is a string, not an object"},
	        {"harbor-cloudevents-push.json", "specversion", json_integer(1),
	         "`specversion' is an integer"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_free char *body = fixture_with(cases[i].file, cases[i].path, cases[i].value);
		headers h = {0};
		expect_invalid(SC_SOURCE_HARBOR, &h, body, cases[i].needle);
	}
}
END_TEST

/* ---- GitHub ---- */

#define GH_FILE "github-registry-package-published.json"
#define GH_VERSION "registry_package.package_version"

START_TEST(github_registry_package_published_gives_the_tag)
{
	cleanup_free char *body = fixture(GH_FILE);
	headers h = github_headers("registry_package");
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_GITHUB, &h, body, &e, &err), err);
	ck_assert_int_eq(e->source, SC_SOURCE_GITHUB);
	ck_assert_str_eq(e->delivery_id, DELIVERY);
	ck_assert_uint_eq(e->n_pushes, 1);
	ck_assert_uint_eq(e->n_skipped, 0);
	sc_serve_event_push *p = &e->pushes[0];
	ck_assert_str_eq(p->registry, "ghcr.io");
	ck_assert_str_eq(p->repository, "octo-org/hello-app");
	ck_assert_str_eq(p->tag, "v3.1.0");
	ck_assert_str_eq(p->digest, GHCR_DIGEST);
}
END_TEST

START_TEST(github_package_event_and_updated_action_are_pushes)
{
	cleanup_json json_t *j = fixture_json(GH_FILE);
	json_t *pkg = json_incref(json_object_get(j, "registry_package"));
	json_object_del(j, "registry_package");
	json_object_set_new(j, "package", pkg);
	json_object_set_new(pkg, "package_type", json_string("container"));
	json_object_set_new(j, "action", json_string("updated"));
	cleanup_free char *body = dump(j);
	headers h = github_headers("package");
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_GITHUB, &h, body, &e, &err), err);
	ck_assert_uint_eq(e->n_pushes, 1);
	ck_assert_str_eq(e->pushes[0].repository, "octo-org/hello-app");
	/* The body's object must be the one the header names. */
	headers other = github_headers("registry_package");
	expect_invalid(SC_SOURCE_GITHUB, &other, body, "lacks `registry_package'");
}
END_TEST

START_TEST(github_ping_and_other_events_give_no_push)
{
	const char *events[] = {"ping", "push", "workflow_run"};
	for (size_t i = 0; i < 3; i++) {
		cleanup_free char *body = fixture(i == 0 ? "github-ping.json" : GH_FILE);
		headers h = github_headers(events[i]);
		cleanup_error sconify_error_t err = NULL;
		cleanup_serve_event sc_serve_event *e = NULL;
		ck_assert_ok(parse(SC_SOURCE_GITHUB, &h, body, &e, &err), err);
		ck_assert_uint_eq(e->n_pushes, 0);
		ck_assert_uint_eq(e->n_skipped, 1);
		ck_assert_str_eq(e->delivery_id, DELIVERY); /* replays are refused for these too */
	}
	/* A ping still has to be JSON. */
	headers h = github_headers("ping");
	expect_invalid(SC_SOURCE_GITHUB, &h, "zen", "is not valid JSON");
}
END_TEST

START_TEST(github_skips_untagged_versions_other_actions_and_other_package_types)
{
	const struct {
		const char *path;
		json_t *value;
	} cases[] = {
	        {GH_VERSION ".container_metadata.tag.name", json_string("")},
	        {GH_VERSION ".container_metadata.tag.name", NULL},
	        {GH_VERSION ".container_metadata.tag", NULL},
	        {GH_VERSION ".container_metadata", NULL},
	        {"action", json_string("deleted")},
	        {"registry_package.package_type", json_string("npm")},
	        {"registry_package.package_type", json_string("docker")},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_free char *body = fixture_with(GH_FILE, cases[i].path, cases[i].value);
		headers h = github_headers("registry_package");
		cleanup_error sconify_error_t err = NULL;
		cleanup_serve_event sc_serve_event *e = NULL;
		ck_assert_ok(parse(SC_SOURCE_GITHUB, &h, body, &e, &err), err);
		ck_assert_uint_eq(e->n_pushes, 0);
		ck_assert_uint_eq(e->n_skipped, 1);
	}
}
END_TEST

START_TEST(github_digest_falls_back_to_the_version_name)
{
	cleanup_json json_t *j = fixture_json(GH_FILE);
	set_path(j, GH_VERSION ".container_metadata.tag.digest", NULL);
	set_path(j, GH_VERSION ".name", json_string(OTHER_DIGEST));
	cleanup_free char *body = dump(j);
	headers h = github_headers("registry_package");
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_GITHUB, &h, body, &e, &err), err);
	ck_assert_str_eq(e->pushes[0].digest, OTHER_DIGEST);
	/* The tag's digest wins when both are there. */
	set_path(j, GH_VERSION ".container_metadata.tag.digest", json_string(GHCR_DIGEST));
	cleanup_free char *both = dump(j);
	cleanup_serve_event sc_serve_event *b = NULL;
	ck_assert_ok(parse(SC_SOURCE_GITHUB, &h, both, &b, &err), err);
	ck_assert_str_eq(b->pushes[0].digest, GHCR_DIGEST);
	/* Neither: refused. */
	set_path(j, GH_VERSION ".container_metadata.tag.digest", json_string(""));
	set_path(j, GH_VERSION ".name", json_string("v3.1.0"));
	cleanup_free char *neither = dump(j);
	expect_invalid(SC_SOURCE_GITHUB, &h, neither, "names no digest");
	set_path(j, GH_VERSION ".name", json_string("sha256:1234"));
	cleanup_free char *short_name = dump(j);
	expect_invalid(SC_SOURCE_GITHUB, &h, short_name, "`name' value `sha256:1234' is not a sha256 digest");
}
END_TEST

START_TEST(github_repository_falls_back_to_owner_and_name)
{
	cleanup_json json_t *j = fixture_json(GH_FILE);
	set_path(j, GH_VERSION ".package_url", NULL);
	cleanup_free char *body = dump(j);
	headers h = github_headers("registry_package");
	cleanup_error sconify_error_t err = NULL;
	cleanup_serve_event sc_serve_event *e = NULL;
	ck_assert_ok(parse(SC_SOURCE_GITHUB, &h, body, &e, &err), err);
	ck_assert_str_eq(e->pushes[0].registry, "ghcr.io");
	ck_assert_str_eq(e->pushes[0].repository, "octo-org/hello-app"); /* ghcr.io lowercases */
	/* Without the namespace, the owner's login. */
	set_path(j, "registry_package.namespace", NULL);
	set_path(j, "registry_package.owner.login", json_string("Someone"));
	cleanup_free char *login = dump(j);
	cleanup_serve_event sc_serve_event *l = NULL;
	ck_assert_ok(parse(SC_SOURCE_GITHUB, &h, login, &l, &err), err);
	ck_assert_str_eq(l->pushes[0].repository, "someone/hello-app");
	set_path(j, "registry_package.owner", NULL);
	cleanup_free char *no_owner = dump(j);
	expect_invalid(SC_SOURCE_GITHUB, &h, no_owner, "lacks `owner'");
	set_path(j, "registry_package.namespace", json_string("octo org"));
	cleanup_free char *bad = dump(j);
	expect_invalid(SC_SOURCE_GITHUB, &h, bad, "is not a repository name");
}
END_TEST

START_TEST(github_package_url_gives_registry_and_repository)
{
	const struct {
		const char *url, *registry, *repository;
	} cases[] = {
	        {"ghcr.io/octo-org/hello-app:v3.1.0", "ghcr.io", "octo-org/hello-app"},
	        {"https://ghcr.io/octo-org/tools/cli:v1", "ghcr.io", "octo-org/tools/cli"},
	        {"ghes.example.com:8443/team/app@" GHCR_DIGEST, "ghes.example.com:8443", "team/app"},
	        {"containers.ghes.example.com/team/app", "containers.ghes.example.com", "team/app"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_free char *body =
		        fixture_with(GH_FILE, GH_VERSION ".package_url", json_string(cases[i].url));
		headers h = github_headers("registry_package");
		cleanup_error sconify_error_t err = NULL;
		cleanup_serve_event sc_serve_event *e = NULL;
		ck_assert_ok(parse(SC_SOURCE_GITHUB, &h, body, &e, &err), err);
		ck_assert_str_eq(e->pushes[0].registry, cases[i].registry);
		ck_assert_str_eq(e->pushes[0].repository, cases[i].repository);
	}
	const struct {
		const char *url, *needle;
	} bad[] = {
	        {"ghcr.io", "is not a registry/repository reference"},
	        {"/octo-org/hello-app:v1", "is not a registry/repository reference"},
	        {"ghcr.io/Octo-Org/hello-app:v1", "is not a repository name"},
	        {"ghcr.io/octo-org//x:v1", "is not a repository name"},
	        {"gh cr.io/octo-org/x:v1", "is not a registry host"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cleanup_free char *body =
		        fixture_with(GH_FILE, GH_VERSION ".package_url", json_string(bad[i].url));
		headers h = github_headers("registry_package");
		expect_invalid(SC_SOURCE_GITHUB, &h, body, bad[i].needle);
	}
}
END_TEST

START_TEST(github_needs_event_and_delivery_headers)
{
	cleanup_free char *body = fixture(GH_FILE);
	headers no_event = {0};
	set(&no_event, "X-GitHub-Delivery", DELIVERY);
	expect_invalid(SC_SOURCE_GITHUB, &no_event, body, "no X-GitHub-Event header");
	headers no_delivery = {0};
	set(&no_delivery, "X-GitHub-Event", "registry_package");
	expect_invalid(SC_SOURCE_GITHUB, &no_delivery, body, "no X-GitHub-Delivery header");
	const char *bad_ids[] = {"", "a b", "72d3162e/cc78", "id\n"};
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		headers h = {0};
		set(&h, "X-GitHub-Event", "registry_package");
		set(&h, "X-GitHub-Delivery", bad_ids[i]);
		expect_invalid(SC_SOURCE_GITHUB, &h, body, "is not a delivery id");
	}
	char long_id[130];
	memset(long_id, 'a', 129);
	long_id[129] = '\0';
	headers h = {0};
	set(&h, "X-GitHub-Event", "registry_package");
	set(&h, "X-GitHub-Delivery", long_id);
	expect_invalid(SC_SOURCE_GITHUB, &h, body, "is not a delivery id");
}
END_TEST

START_TEST(github_malformed_pushes_are_invalid)
{
	const struct {
		const char *path;
		json_t *value;
		const char *needle;
	} cases[] = {
	        {GH_VERSION ".container_metadata.tag.digest", json_string("sha256:XYZ"),
	         "is not a sha256 digest"},
	        {GH_VERSION ".container_metadata.tag.name", json_string("v1:2"), "is not a tag"},
	        {GH_VERSION ".container_metadata.tag", json_string("v1"), "`tag' is a string, not an object"},
	        {GH_VERSION, NULL, "lacks `package_version'"},
	        {"registry_package.package_type", NULL, NULL}, /* ecosystem says CONTAINER: fine */
	        {"registry_package", json_array(), "`registry_package' is an array"},
	        {"action", NULL, "lacks `action'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_free char *body = fixture_with(GH_FILE, cases[i].path, cases[i].value);
		headers h = github_headers("registry_package");
		if (cases[i].needle) {
			expect_invalid(SC_SOURCE_GITHUB, &h, body, cases[i].needle);
		} else {
			cleanup_error sconify_error_t err = NULL;
			cleanup_serve_event sc_serve_event *e = NULL;
			ck_assert_ok(parse(SC_SOURCE_GITHUB, &h, body, &e, &err), err);
			ck_assert_uint_eq(e->n_pushes, 1);
		}
	}
	cleanup_json json_t *j = fixture_json(GH_FILE);
	set_path(j, "registry_package.package_type", NULL);
	set_path(j, "registry_package.ecosystem", NULL);
	cleanup_free char *untyped = dump(j);
	headers h = github_headers("registry_package");
	expect_invalid(SC_SOURCE_GITHUB, &h, untyped, "has neither `package_type' nor `ecosystem'");
}
END_TEST

START_TEST(parse_refuses_an_unknown_source)
{
	headers h = {0};
	cleanup_error sconify_error_t err = NULL;
	sc_serve_event *e = NULL;
	int r = parse(SC_SOURCE__N, &h, "{}", &e, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_USAGE, "unknown event source");
	ck_assert_ptr_null(e);
	sc_serve_event_free(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("serve-events");
	TCase *tc = tcase_create("events");
	tcase_add_test(tc, source_kind_names_round_trip);
	tcase_add_test(tc, auth_bearer_accepts_every_active_token);
	tcase_add_test(tc, auth_bearer_refuses_wrong_near_miss_and_missing_tokens);
	tcase_add_test(tc, auth_refuses_a_credential_header_sent_twice);
	tcase_add_test(tc, auth_static_header_matches_verbatim_with_rotation);
	tcase_add_test(tc, auth_hmac_matches_the_github_test_vector);
	tcase_add_test(tc, auth_hmac_accepts_every_active_secret);
	tcase_add_test(tc, auth_hmac_refuses_missing_and_malformed_signatures);
	tcase_add_test(tc, auth_passes_on_any_configured_kind_and_lists_every_reason);
	tcase_add_test(tc, auth_without_configuration_is_a_usage_error);
	tcase_add_test(tc, auth_empty_secret_never_matches);
	tcase_add_test(tc, distribution_v1_docker_push_gives_the_tagged_manifest);
	tcase_add_test(tc, distribution_v2_index_push_skips_blobs_and_untagged_manifests);
	tcase_add_test(tc, distribution_pull_and_delete_are_skipped_and_counted);
	tcase_add_test(tc, distribution_schema1_and_mount_are_skipped);
	tcase_add_test(tc, distribution_content_type_must_be_an_events_type);
	tcase_add_test(tc, distribution_registry_comes_from_target_url_without_request_host);
	tcase_add_test(tc, distribution_malformed_pushes_are_invalid);
	tcase_add_test(tc, distribution_what_is_skipped_is_not_checked);
	tcase_add_test(tc, malformed_bodies_are_invalid);
	tcase_add_test(tc, pushes_are_capped_per_delivery);
	tcase_add_test(tc, bodies_holding_more_json_than_a_delivery_needs_are_refused);
	tcase_add_test(tc, harbor_default_push_skips_the_untagged_resource);
	tcase_add_test(tc, harbor_cloudevents_push_and_pull);
	tcase_add_test(tc, harbor_other_types_are_skipped);
	tcase_add_test(tc, harbor_malformed_pushes_are_invalid);
	tcase_add_test(tc, github_registry_package_published_gives_the_tag);
	tcase_add_test(tc, github_package_event_and_updated_action_are_pushes);
	tcase_add_test(tc, github_ping_and_other_events_give_no_push);
	tcase_add_test(tc, github_skips_untagged_versions_other_actions_and_other_package_types);
	tcase_add_test(tc, github_digest_falls_back_to_the_version_name);
	tcase_add_test(tc, github_repository_falls_back_to_owner_and_name);
	tcase_add_test(tc, github_package_url_gives_registry_and_repository);
	tcase_add_test(tc, github_needs_event_and_delivery_headers);
	tcase_add_test(tc, github_malformed_pushes_are_invalid);
	tcase_add_test(tc, parse_refuses_an_unknown_source);
	suite_add_tcase(s, tc);
	return sc_test_run(s);
}
