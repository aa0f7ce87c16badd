/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "core/cleanup.h"
#include "support.h"
#include "transport/transport.h"

static const struct {
	const char *in;
	sc_transport_kind kind;
	const char *path, *ref;
	int index;
} good[] = {
        {"oci:/tmp/x", SC_TRANSPORT_OCI, "/tmp/x", NULL, -1},
        {"oci:/tmp/x:latest", SC_TRANSPORT_OCI, "/tmp/x", "latest", -1},
        {"oci:rel/dir:v1.2-rc.3", SC_TRANSPORT_OCI, "rel/dir", "v1.2-rc.3", -1},
        {"oci:d:a/b:c@d+e", SC_TRANSPORT_OCI, "d", "a/b:c@d+e", -1},
        {"oci:d:@2", SC_TRANSPORT_OCI, "d", NULL, 2},
        {"oci-archive:/a.tar:tag", SC_TRANSPORT_OCI_ARCHIVE, "/a.tar", "tag", -1},
        {"docker-archive:/a.tar", SC_TRANSPORT_DOCKER_ARCHIVE, "/a.tar", NULL, -1},
        {"docker-archive:/a.tar:alpine", SC_TRANSPORT_DOCKER_ARCHIVE, "/a.tar",
         "docker.io/library/alpine:latest", -1},
        {"docker-archive:/a.tar:localhost:5000/x:1", SC_TRANSPORT_DOCKER_ARCHIVE, "/a.tar",
         "localhost:5000/x:1", -1},
        {"docker-archive:/a.tar:@0", SC_TRANSPORT_DOCKER_ARCHIVE, "/a.tar", NULL, 0},
};

static const struct {
	const char *in, *domain, *repository, *tag, *digest;
} docker[] = {
        {"docker://alpine", "docker.io", "library/alpine", "latest", NULL},
        {"alpine", "docker.io", "library/alpine", "latest", NULL},
        {"alpine:3.19", "docker.io", "library/alpine", "3.19", NULL},
        {"ftp:x", "docker.io", "library/ftp", "x", NULL},
        {"docker://127.0.0.1:5000/ns/app:v1", "127.0.0.1:5000", "ns/app", "v1", NULL},
        {"localhost:5000/app", "localhost:5000", "app", "latest", NULL},
        {"docker://ghcr.io/o/r@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "ghcr.io", "o/r", NULL, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
};

START_TEST(parses_docker_references)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_image_ref sc_image_ref *r = NULL;
	ck_assert_ok(sc_image_ref_parse(docker[_i].in, &r, &err), err);
	ck_assert_int_eq(r->kind, SC_TRANSPORT_DOCKER);
	ck_assert_str_eq(r->domain, docker[_i].domain);
	ck_assert_str_eq(r->repository, docker[_i].repository);
	if (docker[_i].tag)
		ck_assert_str_eq(r->tag, docker[_i].tag);
	else
		ck_assert_ptr_null(r->tag);
	if (docker[_i].digest)
		ck_assert_str_eq(r->digest, docker[_i].digest);
	else
		ck_assert_ptr_null(r->digest);
}
END_TEST

START_TEST(parses_skopeo_syntax)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_image_ref sc_image_ref *r = NULL;
	ck_assert_ok(sc_image_ref_parse(good[_i].in, &r, &err), err);
	ck_assert_int_eq(r->kind, good[_i].kind);
	ck_assert_str_eq(r->path, good[_i].path);
	if (good[_i].ref)
		ck_assert_str_eq(r->ref, good[_i].ref);
	else
		ck_assert_ptr_null(r->ref);
	ck_assert_int_eq(r->index, good[_i].index);
}
END_TEST

static const struct {
	const char *in;
	sconify_error_kind_t kind;
	const char *needle;
} bad[] = {
        {"oci:", SCONIFY_ERR_INVALID, "no path given"},
        {"oci::x", SCONIFY_ERR_INVALID, "no path given"},
        {"oci:d:bad name", SCONIFY_ERR_INVALID, "invalid image name"},
        {"oci:d:-x", SCONIFY_ERR_INVALID, "invalid image name"},
        {"oci:d:x/", SCONIFY_ERR_INVALID, "invalid image name"},
        {"oci:d:", SCONIFY_ERR_INVALID, "invalid image name"},
        {"docker-archive:a:UPPER/x", SCONIFY_ERR_INVALID, "lowercase"},
        {"docker-archive:a:x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         SCONIFY_ERR_INVALID, "not a digest"},
        {"dir:/tmp/x", SCONIFY_ERR_UNSUPPORTED, "the dir transport is not supported"},
        {"containers-storage:x", SCONIFY_ERR_UNSUPPORTED, "not supported"},
        {"docker://UPPER/x", SCONIFY_ERR_INVALID, "lowercase"},
        {"docker://x@sha256:abc", SCONIFY_ERR_INVALID, "invalid digest"},
        {"docker://", SCONIFY_ERR_INVALID, "docker://"},
};

START_TEST(rejects_bad_references)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_image_ref sc_image_ref *r = NULL;
	int ret = sc_image_ref_parse(bad[_i].in, &r, &err);
	ck_assert_fails(ret, err, bad[_i].kind, bad[_i].needle);
	ck_assert_ptr_null(r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("imageref");
	TCase *tc = tcase_create("imageref");
	tcase_add_loop_test(tc, parses_skopeo_syntax, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_loop_test(tc, rejects_bad_references, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_loop_test(tc, parses_docker_references, 0, sizeof(docker) / sizeof(docker[0]));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
