/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "core/cleanup.h"
#include "core/json-util.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "image/document.h"
#include "support.h"

#define D1 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define D2 "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#define CONFIG "{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":0}"
#define LAYER \
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2 "\",\"size\":2}"
#define MANIFEST_BODY "\"config\":" CONFIG ",\"layers\":[" LAYER "]"
#define OCI_MANIFEST \
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," MANIFEST_BODY "}"
#define ENTRY(p)                                                                         \
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 \
	"\",\"size\":1,\"platform\":" p "}"

static sconify_limits_t limits(void)
{
	sconify_limits_t l = {0};
	sc_limits_fill(&l);
	return l;
}

static int parse(const char *json, const char *declared, sc_document **ret, sconify_error_t *err)
{
	sconify_limits_t l = limits();
	return sc_document_parse(json, strlen(json), declared, "doc", &l, ret, err);
}

START_TEST(manifest_keeps_exact_bytes_and_digest)
{
	cleanup_error sconify_error_t err = NULL;
	const char *json = " " OCI_MANIFEST "\n";
	cleanup_document sc_document *d = NULL;
	ck_assert_ok(parse(json, NULL, &d, &err), err);
	ck_assert_int_eq(d->kind, SC_DOC_OCI_MANIFEST);
	ck_assert_uint_eq(d->len, strlen(json));
	ck_assert_int_eq(memcmp(d->data, json, d->len), 0);
	sc_digest want;
	sc_digest_of(SC_SHA256, json, strlen(json), &want);
	ck_assert_str_eq(d->digest.str, want.str);
	ck_assert_uint_eq(d->n_layers, 1);
	ck_assert_str_eq(d->layers[0].digest.str, D2);
	ck_assert_uint_eq(d->layers[0].size, 2);
	ck_assert_str_eq(d->config.media_type, "application/vnd.oci.image.config.v1+json");
}
END_TEST

START_TEST(index_with_platforms_parses)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_document sc_document *d = NULL;
	ck_assert_ok(parse("{\"schemaVersion\":2,\"manifests\":[" ENTRY(
	                           "{\"os\":\"linux\",\"architecture\":\"aarch64\"}") "]}",
	                   "application/vnd.oci.image.index.v1+json", &d, &err),
	             err);
	ck_assert_int_eq(d->kind, SC_DOC_OCI_INDEX);
	ck_assert_uint_eq(d->n_manifests, 1);
	ck_assert_str_eq(d->manifests[0].platform->arch, "arm64");
}
END_TEST

START_TEST(structure_decides_without_media_type)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_document sc_document *d = NULL;
	ck_assert_ok(parse("{\"schemaVersion\":2," MANIFEST_BODY "}", NULL, &d, &err), err);
	ck_assert_int_eq(d->kind, SC_DOC_OCI_MANIFEST);
}
END_TEST

static const struct {
	const char *name, *json, *declared;
	sconify_error_kind_t kind;
	const char *needle;
} bad[] = {
        {"manifest with manifests",
         "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," MANIFEST_BODY
         ",\"manifests\":[]}",
         NULL, SCONIFY_ERR_INVALID, "ambiguous"},
        {"index with layers",
         "{\"schemaVersion\":2,\"mediaType\":\"application/"
         "vnd.oci.image.index.v1+json\",\"manifests\":[],\"layers\":[]}",
         NULL, SCONIFY_ERR_INVALID, "ambiguous"},
        {"index with config", "{\"schemaVersion\":2,\"manifests\":[],\"config\":" CONFIG "}",
         "application/vnd.oci.image.index.v1+json", SCONIFY_ERR_INVALID, "ambiguous"},
        {"both shapes no type", "{\"schemaVersion\":2,\"manifests\":[]," MANIFEST_BODY "}", NULL,
         SCONIFY_ERR_INVALID, "ambiguous"},
        {"body contradicts declared", OCI_MANIFEST, "application/vnd.oci.image.index.v1+json",
         SCONIFY_ERR_INVALID, "media type"},
        {"unknown media type", "{\"schemaVersion\":2,\"mediaType\":\"text/plain\"," MANIFEST_BODY "}", NULL,
         SCONIFY_ERR_UNSUPPORTED, "media type"},
        {"docker without body type", "{\"schemaVersion\":2," MANIFEST_BODY "}",
         "application/vnd.docker.distribution.manifest.v2+json", SCONIFY_ERR_INVALID, "no media type"},
        {"schema 1", "{\"schemaVersion\":1,\"name\":\"x\"}", NULL, SCONIFY_ERR_UNSUPPORTED, "schemaVersion"},
        {"schemaVersion string", "{\"schemaVersion\":\"2\"," MANIFEST_BODY "}", NULL, SCONIFY_ERR_UNSUPPORTED,
         "schemaVersion"},
        {"duplicate key", "{\"schemaVersion\":2,\"schemaVersion\":2," MANIFEST_BODY "}", NULL,
         SCONIFY_ERR_INVALID, "duplicate key"},
        {"not json", "{\"schemaVersion\":2,", NULL, SCONIFY_ERR_INVALID, "not valid JSON"},
        {"array", "[]", NULL, SCONIFY_ERR_INVALID, "not a JSON object"},
        {"nul in string", "{\"schemaVersion\":2,\"x\":\"a\\u0000b\"," MANIFEST_BODY "}", NULL,
         SCONIFY_ERR_INVALID, "not valid JSON"},
        {"bad layer digest",
         "{\"schemaVersion\":2,\"config\":" CONFIG
         ",\"layers\":[{\"mediaType\":\"a/b\",\"digest\":\"sha256:../x\",\"size\":1}]}",
         NULL, SCONIFY_ERR_INVALID, "invalid digest"},
        {"negative size",
         "{\"schemaVersion\":2,\"config\":" CONFIG ",\"layers\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
         "\",\"size\":-1}]}",
         NULL, SCONIFY_ERR_INVALID, "negative"},
        {"size as string",
         "{\"schemaVersion\":2,\"config\":" CONFIG ",\"layers\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
         "\",\"size\":\"1\"}]}",
         NULL, SCONIFY_ERR_INVALID, "not an integer"},
        {"bad media type",
         "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"nonsense\",\"digest\":\"" D1
         "\",\"size\":1},\"layers\":[]}",
         NULL, SCONIFY_ERR_INVALID, "invalid media type"},
        {"missing layers", "{\"schemaVersion\":2,\"config\":" CONFIG "}",
         "application/vnd.oci.image.manifest.v1+json", SCONIFY_ERR_INVALID, "lacks `layers'"},
        {"annotation not string",
         "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1
         "\",\"size\":1,\"annotations\":{\"k\":1}},\"layers\":[]}",
         NULL, SCONIFY_ERR_INVALID, "not a string"},
        {"platform without os",
         "{\"schemaVersion\":2,\"manifests\":[" ENTRY("{\"architecture\":\"amd64\"}") "]}", NULL,
         SCONIFY_ERR_INVALID, "lacks `os'"},
        {"list entry that is not a manifest",
         "{\"schemaVersion\":2,\"mediaType\":\"application/"
         "vnd.docker.distribution.manifest.list.v2+json\",\"manifests\":[{\"mediaType\":\"text/"
         "plain\",\"digest\":\"" D1 "\",\"size\":1}]}",
         NULL, SCONIFY_ERR_INVALID, "manifest list"},
};

START_TEST(rejects_bad_documents)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_document sc_document *d = NULL;
	int r = parse(bad[_i].json, bad[_i].declared, &d, &err);
	if (r == 0)
		ck_abort_msg("%s: parsed", bad[_i].name);
	ck_assert_fails(r, err, bad[_i].kind, bad[_i].needle);
	ck_assert_ptr_null(d);
}
END_TEST

START_TEST(oversized_document_is_refused_before_parsing)
{
	cleanup_error sconify_error_t err = NULL;
	sconify_limits_t l = limits();
	l.max_document_bytes = 16;
	cleanup_document sc_document *d = NULL;
	int r = sc_document_parse(OCI_MANIFEST, strlen(OCI_MANIFEST), NULL, "doc", &l, &d, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_LIMIT, "larger than the limit of 16 bytes");
}
END_TEST

START_TEST(too_many_layers_are_refused)
{
	cleanup_error sconify_error_t err = NULL;
	sconify_limits_t l = limits();
	l.max_descriptors = 2;
	const char *json =
	        "{\"schemaVersion\":2,\"config\":" CONFIG ",\"layers\":[" LAYER "," LAYER "," LAYER "]}";
	cleanup_document sc_document *d = NULL;
	int r = sc_document_parse(json, strlen(json), NULL, "doc", &l, &d, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_LIMIT, "too many layers");
}
END_TEST

START_TEST(descriptor_rewrite_keeps_other_fields)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_json json_t *obj = json_pack("{s:s, s:s, s:i, s:{s:s}, s:[s]}", "mediaType", "a/b", "digest",
	                                     D1, "size", 5, "annotations", "k", "v", "urls", "https://x");
	sc_descriptor d;
	ck_assert_ok(sc_descriptor_parse(obj, "d", &d, &err), err);
	ck_assert_str_eq(sc_descriptor_annotation(&d, "k"), "v");
	free(d.media_type);
	d.media_type = xstrdup("c/d");
	sc_digest_parse(D2, &d.digest, &err);
	d.size = 9;
	cleanup_json json_t *out = sc_descriptor_to_json(&d);
	cleanup_free char *s = json_dumps(out, JSON_COMPACT);
	ck_assert_str_eq(s, "{\"mediaType\":\"c/d\",\"digest\":\"" D2
	                    "\",\"size\":9,\"annotations\":{\"k\":\"v\"},"
	                    "\"urls\":[\"https://x\"]}");
	sc_descriptor_clear(&d);
}
END_TEST

START_TEST(config_reads_diff_ids_and_platform)
{
	cleanup_error sconify_error_t err = NULL;
	sconify_limits_t l = limits();
	const char *json =
	        "{\"architecture\":\"arm64\",\"variant\":\"v8\",\"os\":\"linux\",\"rootfs\":{\"type\":"
	        "\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]}}";
	cleanup_config sc_image_config *c = NULL;
	ck_assert_ok(sc_config_parse(json, strlen(json), "cfg", &l, &c, &err), err);
	ck_assert_uint_eq(c->n_diff_ids, 2);
	ck_assert_str_eq(c->diff_ids[1].str, D2);
	ck_assert_str_eq(c->platform.arch, "arm64");
	ck_assert_ptr_null(c->platform.variant); /* v8 is arm64's default */
	ck_assert_uint_eq(c->len, strlen(json));
}
END_TEST

START_TEST(config_with_bad_diff_id_is_refused)
{
	cleanup_error sconify_error_t err = NULL;
	sconify_limits_t l = limits();
	const char *json = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:nope\"]}}";
	cleanup_config sc_image_config *c = NULL;
	int r = sc_config_parse(json, strlen(json), "cfg", &l, &c, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "cfg: diff_id 0: invalid digest");
}
END_TEST

START_TEST(layer_media_types_map_between_docker_and_oci)
{
	sc_layer_type t;
	ck_assert(sc_layer_type_parse("application/vnd.docker.image.rootfs.diff.tar.gzip", &t));
	ck_assert(t.docker && t.compression == SC_COMP_GZIP && t.compression_loose);
	ck_assert_str_eq(sc_layer_media_type(false, t.compression, t.nondistributable),
	                 "application/vnd.oci.image.layer.v1.tar+gzip");
	ck_assert(sc_layer_type_parse("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", &t));
	ck_assert(t.nondistributable && t.compression == SC_COMP_ZSTD);
	ck_assert_ptr_null(sc_layer_media_type(true, SC_COMP_ZSTD, false));
	ck_assert(!sc_layer_type_parse("application/vnd.oci.image.config.v1+json", &t));
	ck_assert(sc_media_type_valid("application/vnd.oci.image.layer.v1.tar+gzip"));
	ck_assert(!sc_media_type_valid("application"));
	ck_assert(!sc_media_type_valid("/x"));
	ck_assert(!sc_media_type_valid("a/b c"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("document");
	TCase *tc = tcase_create("document");
	tcase_add_test(tc, manifest_keeps_exact_bytes_and_digest);
	tcase_add_test(tc, index_with_platforms_parses);
	tcase_add_test(tc, structure_decides_without_media_type);
	tcase_add_loop_test(tc, rejects_bad_documents, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, oversized_document_is_refused_before_parsing);
	tcase_add_test(tc, too_many_layers_are_refused);
	tcase_add_test(tc, descriptor_rewrite_keeps_other_fields);
	tcase_add_test(tc, config_reads_diff_ids_and_platform);
	tcase_add_test(tc, config_with_bad_diff_id_is_refused);
	tcase_add_test(tc, layer_media_types_map_between_docker_and_oci);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
