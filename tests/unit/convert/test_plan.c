/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pass 1 of a conversion: layers written here header by header, regions
 * given, and the plan's decisions (what is encrypted, hashed, dropped, where
 * in each layer's stream) checked against what the layers hold.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "convert/plan.h"
#include "core/cleanup.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "support.h"
#include "tarbuild.h"

static sconify_limits_t limits;
static sc_shield_builder *regions;
static sc_planner *planner;
static tarb layers[4];
static size_t n_layers;

static void setup(void)
{
	memset(&limits, 0, sizeof(limits));
	sc_limits_fill(&limits);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_shield_builder_new(0, &regions, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(regions, "/app", SC_SHIELD_ENCRYPTED, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(regions, "/lib/py", SC_SHIELD_AUTHENTICATED, &err), err);
	planner = sc_planner_new(regions, &limits);
	n_layers = 0;
}

static void teardown(void)
{
	sc_planner_free(planner);
	sc_shield_builder_free(regions);
	for (size_t i = 0; i < n_layers; i++)
		free(layers[i].data);
	memset(layers, 0, sizeof(layers));
}

/* Ends b and plans it as the next layer; keeps the bytes for offset checks. */
static int add(tarb *b, sconify_error_t *err)
{
	tb_end(b);
	layers[n_layers] = *b;
	*b = (tarb){0};
	const tarb *l = &layers[n_layers++];
	cleanup_reader sc_reader *r = sc_mem_reader_new(l->data, l->len);
	return sc_planner_add_layer(planner, r, "layer L", NULL, err);
}

#define ADD_OK(b)                                          \
	do {                                               \
		cleanup_error sconify_error_t err_ = NULL; \
		ck_assert_ok(add((b), &err_), err_);       \
	} while (0)

static sc_plan *finish(void)
{
	cleanup_error sconify_error_t err = NULL;
	sc_plan *p = NULL;
	ck_assert_ok(sc_planner_finish(planner, &p, &err), err);
	ck_assert_uint_eq(p->n_layers, n_layers);
	return p;
}

/* The entry's data in its layer's bytes is content. */
static void assert_data(unsigned layer, const sc_plan_entry *e, const char *content)
{
	ck_assert_uint_eq(e->size, strlen(content));
	ck_assert_uint_le(e->data_offset + e->size, layers[layer].len);
	ck_assert(memcmp(layers[layer].data + e->data_offset, content, e->size) == 0);
	ck_assert_uint_eq(e->offset % 512, 0);
	ck_assert_uint_eq(e->data_offset % 512, 0);
	ck_assert_uint_gt(e->data_offset, e->offset);
}

START_TEST(protected_file_is_encrypted_in_place)
{
	tarb b = {0};
	tb_dir(&b, "app/");
	tb_file(&b, "app/secret", "top secret data");
	tb_file(&b, "etc/hosts", "127.0.0.1 localhost");
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	ck_assert(p->layers[0].rewrite);
	ck_assert_uint_eq(p->layers[0].n_entries, 1);
	const sc_plan_entry *e = &p->layers[0].entries[0];
	ck_assert_int_eq(e->action, SC_PLAN_ENCRYPT);
	assert_data(0, e, "top secret data");
	ck_assert_uint_eq(p->n_files, 1);
	ck_assert_str_eq(p->files[0].names[0], "/app/secret");
	ck_assert_int_eq(p->files[0].kind, SC_SHIELD_ENCRYPTED);
	ck_assert_uint_eq(p->files[0].size, 15);
	ck_assert_uint_eq(p->encrypt_bytes, 15);
	ck_assert_uint_eq(p->dropped, 0);
}
END_TEST

START_TEST(replaced_protected_file_is_dropped_below)
{
	tarb b = {0};
	tb_file(&b, "app/secret", "old secret");
	tb_file(&b, "app/keep", "kept");
	ADD_OK(&b);
	tb_file(&b, "bin/tool", "not protected");
	ADD_OK(&b);
	tb_file(&b, "app/secret", "new secret!");
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	ck_assert(p->layers[0].rewrite);
	ck_assert(!p->layers[1].rewrite);
	ck_assert_uint_eq(p->layers[1].n_entries, 0);
	ck_assert(p->layers[2].rewrite);
	/* layer 0: the old secret goes, the kept file is encrypted, by offset */
	ck_assert_uint_eq(p->layers[0].n_entries, 2);
	ck_assert_int_eq(p->layers[0].entries[0].action, SC_PLAN_DROP);
	assert_data(0, &p->layers[0].entries[0], "old secret");
	ck_assert_int_eq(p->layers[0].entries[1].action, SC_PLAN_ENCRYPT);
	assert_data(0, &p->layers[0].entries[1], "kept");
	ck_assert_int_eq(p->layers[2].entries[0].action, SC_PLAN_ENCRYPT);
	assert_data(2, &p->layers[2].entries[0], "new secret!");
	ck_assert_uint_eq(p->n_files, 2);
	ck_assert_str_eq(p->files[0].names[0], "/app/keep");
	ck_assert_uint_eq(p->files[0].layer, 0);
	ck_assert_str_eq(p->files[1].names[0], "/app/secret");
	ck_assert_uint_eq(p->files[1].layer, 2);
	ck_assert_uint_eq(p->dropped, 1);
}
END_TEST

START_TEST(whited_out_and_hidden_protected_files_are_dropped)
{
	tarb b = {0};
	tb_file(&b, "app/a", "a secret");
	tb_file(&b, "app/d/b", "b secret");
	ADD_OK(&b);
	tb_file(&b, "app/.wh.a", "");
	tb_file(&b, "app/d/.wh..wh..opq", "");
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	ck_assert_uint_eq(p->n_files, 0);
	ck_assert_uint_eq(p->layers[0].n_entries, 2);
	ck_assert_int_eq(p->layers[0].entries[0].action, SC_PLAN_DROP);
	ck_assert_int_eq(p->layers[0].entries[1].action, SC_PLAN_DROP);
	ck_assert(!p->layers[1].rewrite);
	ck_assert_uint_eq(p->dropped, 2);
}
END_TEST

START_TEST(unprotected_shadowed_files_stay)
{
	tarb b = {0};
	tb_file(&b, "etc/conf", "v1");
	ADD_OK(&b);
	tb_file(&b, "etc/conf", "v2");
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	ck_assert(!p->layers[0].rewrite && !p->layers[1].rewrite);
	ck_assert_uint_eq(p->layers[0].n_entries + p->layers[1].n_entries, 0);
}
END_TEST

START_TEST(hard_links_inside_a_region_share_one_file)
{
	tarb b = {0};
	tb_file(&b, "app/a", "linked secret");
	tb_link(&b, "app/b", "app/a");
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	ck_assert_uint_eq(p->n_files, 1);
	ck_assert_uint_eq(p->files[0].n_names, 2);
	ck_assert_str_eq(p->files[0].names[0], "/app/a");
	ck_assert_str_eq(p->files[0].names[1], "/app/b");
	/* the link entry carries no data and stays as it is */
	ck_assert_uint_eq(p->layers[0].n_entries, 1);
	assert_data(0, &p->layers[0].entries[0], "linked secret");
}
END_TEST

START_TEST(hard_link_across_regions_is_refused)
{
	tarb b = {0};
	tb_file(&b, "app/key", "secret");
	tb_link(&b, "tmp/key", "app/key");
	ADD_OK(&b);
	cleanup_error sconify_error_t err = NULL;
	sc_plan *p = NULL;
	ck_assert_fails(sc_planner_finish(planner, &p, &err), err, SCONIFY_ERR_UNSUPPORTED,
	                "hard link joins `/app/key' (encrypted) and `/tmp/key' (not-protected)");
	ck_assert_ptr_null(p);
}
END_TEST

START_TEST(content_that_ends_up_only_under_protected_names_is_encrypted_where_it_lies)
{
	tarb b = {0};
	tb_file(&b, "tmp/x", "moved into the region");
	ADD_OK(&b);
	tb_link(&b, "app/x", "tmp/x");
	tb_file(&b, "tmp/.wh.x", "");
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	ck_assert_uint_eq(p->n_files, 1);
	ck_assert_str_eq(p->files[0].names[0], "/app/x");
	ck_assert_uint_eq(p->files[0].layer, 0);
	ck_assert_uint_eq(p->layers[0].n_entries, 1);
	ck_assert_int_eq(p->layers[0].entries[0].action, SC_PLAN_ENCRYPT);
	assert_data(0, &p->layers[0].entries[0], "moved into the region");
	ck_assert(!p->layers[1].rewrite);
}
END_TEST

START_TEST(links_to_dropped_content_go_too)
{
	tarb b = {0};
	tb_file(&b, "app/a", "gone");
	tb_link(&b, "app/b", "app/a");
	ADD_OK(&b);
	tb_file(&b, ".wh.app", "");
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	ck_assert_uint_eq(p->layers[0].n_entries, 2);
	ck_assert_int_eq(p->layers[0].entries[0].action, SC_PLAN_DROP);
	ck_assert_int_eq(p->layers[0].entries[1].action, SC_PLAN_DROP);
	ck_assert_uint_eq(p->layers[0].entries[1].size, 0);
	ck_assert_uint_gt(p->layers[0].entries[1].offset, p->layers[0].entries[0].data_offset);
}
END_TEST

START_TEST(authenticated_files_are_hashed_without_rewriting)
{
	tarb b = {0};
	tb_file(&b, "lib/py/os.py", "import sys");
	tb_file(&b, "lib/pyx", "not in the region");
	ADD_OK(&b);
	tb_file(&b, "lib/py/os.py", "import sys, os");
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	/* the replaced copy is not secret: it stays */
	ck_assert_uint_eq(p->layers[0].n_entries, 0);
	ck_assert(!p->layers[1].rewrite);
	ck_assert_uint_eq(p->layers[1].n_entries, 1);
	ck_assert_int_eq(p->layers[1].entries[0].action, SC_PLAN_HASH);
	ck_assert_uint_eq(p->n_files, 1);
	ck_assert_int_eq(p->files[0].kind, SC_SHIELD_AUTHENTICATED);
	ck_assert_uint_eq(p->hash_bytes, 14);
}
END_TEST

START_TEST(regions_match_where_entries_land)
{
	/* /data -> app: a file written through the symlink lands in /app */
	tarb b = {0};
	tb_dir(&b, "app/");
	tb_symlink(&b, "data", "app");
	ADD_OK(&b);
	tb_file(&b, "data/x", "through a symlink");
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	ck_assert_uint_eq(p->n_files, 1);
	ck_assert_str_eq(p->files[0].names[0], "/app/x");
	ck_assert_int_eq(p->layers[1].entries[0].action, SC_PLAN_ENCRYPT);
}
END_TEST

START_TEST(symlinks_in_protected_regions_of_the_final_tree_are_listed)
{
	tarb b = {0};
	tb_dir(&b, "app/");
	tb_symlink(&b, "app/cfg", "/etc/app.conf"); /* leaves the region: still listed */
	tb_symlink(&b, "app/old", "gone");
	tb_symlink(&b, "lib/py/os.py", "../../usr/lib/os.py");
	tb_symlink(&b, "usr/lib/libc.so", "libc.so.6"); /* not protected */
	tb_symlink(&b, "data", "app");                  /* not protected: in / */
	ADD_OK(&b);
	tb_file(&b, "app/.wh.old", "");
	tb_symlink(&b, "data/new", "cfg"); /* lands in /app */
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	ck_assert_uint_eq(p->n_symlinks, 3);
	const char *want[][2] = {
	        {"/app/cfg", "/etc/app.conf"}, {"/app/new", "cfg"}, {"/lib/py/os.py", "../../usr/lib/os.py"}};
	bool seen[3] = {false, false, false};
	for (size_t i = 0; i < p->n_symlinks; i++)
		for (size_t k = 0; k < 3; k++)
			if (strcmp(p->symlinks[i].path, want[k][0]) == 0) {
				ck_assert_str_eq(p->symlinks[i].target, want[k][1]);
				seen[k] = true;
			}
	for (size_t k = 0; k < 3; k++)
		ck_assert_msg(seen[k], "%s not listed", want[k][0]);
}
END_TEST

START_TEST(a_symlink_on_a_path_is_found_at_its_first_component)
{
	tarb b = {0};
	tb_dir(&b, "srv/");
	tb_dir(&b, "srv/app/");
	tb_symlink(&b, "app", "srv/app");
	tb_symlink(&b, "srv/app/cur", "v1");
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	char *at = NULL;
	const char *target = NULL;
	ck_assert_int_eq(sc_planner_symlink_on(planner, "/app/cur/x", &at, &target), 1);
	ck_assert_str_eq(at, "/app");
	ck_assert_str_eq(target, "srv/app");
	free(at);
	ck_assert_int_eq(sc_planner_symlink_on(planner, "/srv/app/cur", &at, &target), 1);
	ck_assert_str_eq(at, "/srv/app/cur");
	ck_assert_str_eq(target, "v1");
	free(at);
	ck_assert_int_eq(sc_planner_symlink_on(planner, "/srv/app", &at, &target), 0);
	ck_assert_int_eq(sc_planner_symlink_on(planner, "/srv/missing/x", &at, &target), 0);
	ck_assert_int_eq(sc_planner_symlink_on(planner, "/", &at, &target), 0);
}
END_TEST

START_TEST(empty_protected_file_is_planned)
{
	tarb b = {0};
	tb_file(&b, "app/empty", "");
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	ck_assert_uint_eq(p->n_files, 1);
	ck_assert_uint_eq(p->layers[0].entries[0].size, 0);
	ck_assert(p->layers[0].rewrite);
}
END_TEST

/* ---- the executable's digest ------------------------------------------------------------------- */

static char *pattern(size_t n, unsigned seed)
{
	char *p = xmalloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(i * 131 + (i >> 9) * 7 + seed * 17 + 1);
	return p;
}

/* "sha256:<hex>" of data, by OpenSSL directly rather than lib/digest. */
static void openssl_sha256(const void *data, size_t len, char out[7 + 64 + 1])
{
	unsigned char md[32];
	unsigned int n = 0;
	ck_assert_int_eq(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
	ck_assert_uint_eq(n, 32);
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* Locates path (it must be a regular file) and asks for its digest. */
static bool exe_digest(const char *path, sc_plan_location *loc, sc_digest *ret)
{
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_planner_locate(planner, path, loc, &err), err);
	return sc_planner_digest(planner, loc, ret);
}

/* The digest is the SHA-256 of content, and of the bytes at loc in its
 * layer: what pass 2 hashes when pass 1 did not. */
static void assert_digest(const sc_plan_location *loc, const sc_digest *d, const void *content, size_t size)
{
	char want[7 + 64 + 1];
	openssl_sha256(content, size, want);
	ck_assert_str_eq(d->str, want);
	ck_assert_uint_eq(loc->size, size);
	ck_assert_uint_lt(loc->layer, n_layers);
	ck_assert_uint_le(loc->data_offset + size, layers[loc->layer].len);
	openssl_sha256(layers[loc->layer].data + loc->data_offset, size, want);
	ck_assert_str_eq(d->str, want);
}

START_TEST(digest_is_sha256_of_executable_found_by_exact_name)
{
	/* larger than the scanner's 1 MiB chunks: hashed over many pieces */
	size_t size = (3u << 20) + 17;
	cleanup_free char *exe = pattern(size, 1);
	sc_planner_hash_executables(planner, "app");
	tarb b = {0};
	tb_file(&b, "etc/hosts", "127.0.0.1 localhost");
	tb_entry(&b, "usr/bin/app", '0', exe, size, NULL, 0755);
	tb_file(&b, "usr/bin/other", "more");
	ADD_OK(&b);
	/* as the conversion does it: finish, locate, digest */
	cleanup_plan sc_plan *p = finish();
	_cleanup_(sc_plan_location_clear) sc_plan_location loc = {0};
	sc_digest d;
	ck_assert(exe_digest("/usr/bin/app", &loc, &d));
	ck_assert_str_eq(loc.path, "/usr/bin/app");
	assert_digest(&loc, &d, exe, size);
}
END_TEST

START_TEST(digest_finds_prefixed_executable_behind_symlinks)
{
	/* python3 -> python3.11, reached from /usr/local/bin/python3 too */
	cleanup_free char *exe = pattern(200000, 2);
	sc_planner_hash_executables(planner, "python3");
	tarb b = {0};
	tb_dir(&b, "usr/bin/");
	tb_entry(&b, "usr/bin/python3.11", '0', exe, 200000, NULL, 0755);
	tb_symlink(&b, "usr/bin/python3", "python3.11");
	ADD_OK(&b);
	tb_symlink(&b, "usr/local/bin/python3", "/usr/bin/python3");
	ADD_OK(&b);
	static const char *paths[] = {"/usr/bin/python3", "/usr/local/bin/python3", "/usr/bin/python3.11"};
	for (size_t i = 0; i < 3; i++) {
		_cleanup_(sc_plan_location_clear) sc_plan_location loc = {0};
		sc_digest d;
		ck_assert_msg(exe_digest(paths[i], &loc, &d), "%s: not hashed", paths[i]);
		ck_assert_str_eq(loc.path, "/usr/bin/python3.11");
		assert_digest(&loc, &d, exe, 200000);
	}
}
END_TEST

START_TEST(digest_of_each_candidate_is_its_own)
{
	/* several candidates in a layer, among large files that are not: each
	 * hash is of its own content; a hard link reaches its target's */
	cleanup_free char *a = pattern((1u << 20) + 1, 3), *big = pattern((2u << 20) + 5, 4);
	sc_planner_hash_executables(planner, "python3");
	tarb b = {0};
	tb_entry(&b, "usr/bin/python3.11", '0', a, (1u << 20) + 1, NULL, 0755);
	tb_entry(&b, "usr/lib/libbig.so", '0', big, (2u << 20) + 5, NULL, 0755);
	tb_entry(&b, "usr/bin/python3-config", '0', "#!/bin/sh\n", 10, NULL, 0755);
	tb_entry(&b, "usr/bin/python3.11-empty", '0', NULL, 0, NULL, 0755);
	tb_link(&b, "usr/bin/python3", "usr/bin/python3.11");
	tb_entry(&b, "opt/python3.12", '0', big, 4096, NULL, 0700);
	ADD_OK(&b);
	_cleanup_(sc_plan_location_clear) sc_plan_location l1 = {0}, l2 = {0}, l3 = {0}, l4 = {0}, l5 = {0};
	sc_digest d;
	ck_assert(exe_digest("/usr/bin/python3.11", &l1, &d));
	assert_digest(&l1, &d, a, (1u << 20) + 1);
	ck_assert(exe_digest("/usr/bin/python3-config", &l2, &d));
	assert_digest(&l2, &d, "#!/bin/sh\n", 10);
	ck_assert(exe_digest("/usr/bin/python3.11-empty", &l3, &d));
	assert_digest(&l3, &d, "", 0);
	ck_assert_str_eq(d.str, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert(exe_digest("/usr/bin/python3", &l4, &d));
	assert_digest(&l4, &d, a, (1u << 20) + 1);
	ck_assert(exe_digest("/opt/python3.12", &l5, &d));
	assert_digest(&l5, &d, big, 4096);
}
END_TEST

START_TEST(digest_is_false_for_names_that_do_not_match)
{
	/* the name must start with the command's last component */
	sc_planner_hash_executables(planner, "python3");
	tarb b = {0};
	tb_entry(&b, "usr/bin/py3", '0', "a", 1, NULL, 0755);
	tb_symlink(&b, "usr/bin/python3", "py3");
	tb_entry(&b, "usr/bin/mypython3", '0', "b", 1, NULL, 0755);
	tb_entry(&b, "usr/bin/python", '0', "c", 1, NULL, 0755);
	tb_entry(&b, "usr/bin/Python3", '0', "d", 1, NULL, 0755);
	tb_entry(&b, "python3/bin/run", '0', "e", 1, NULL, 0755);
	ADD_OK(&b);
	static const char *paths[] = {"/usr/bin/python3", "/usr/bin/mypython3", "/usr/bin/python",
	                              "/usr/bin/Python3", "/python3/bin/run"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		_cleanup_(sc_plan_location_clear) sc_plan_location loc = {0};
		sc_digest d;
		ck_assert_msg(!exe_digest(paths[i], &loc, &d), "%s: hashed", paths[i]);
	}
}
END_TEST

START_TEST(digest_is_false_for_file_without_execute_bit)
{
	sc_planner_hash_executables(planner, "tool");
	tarb b = {0};
	tb_entry(&b, "bin/tool", '0', "not executable", 14, NULL, 0644);
	tb_entry(&b, "bin/tool-setuid", '0', "setuid only", 11, NULL, 04644);
	tb_entry(&b, "bin/tool-owner", '0', "owner", 5, NULL, 0100);
	tb_entry(&b, "bin/tool-group", '0', "group", 5, NULL, 0010);
	tb_entry(&b, "bin/tool-other", '0', "other", 5, NULL, 0001);
	ADD_OK(&b);
	_cleanup_(sc_plan_location_clear) sc_plan_location l1 = {0}, l2 = {0};
	sc_digest d;
	ck_assert(!exe_digest("/bin/tool", &l1, &d));
	ck_assert(!exe_digest("/bin/tool-setuid", &l2, &d));
	/* any one execute bit is enough */
	static const char *x[] = {"/bin/tool-owner", "/bin/tool-group", "/bin/tool-other"};
	for (size_t i = 0; i < 3; i++) {
		_cleanup_(sc_plan_location_clear) sc_plan_location loc = {0};
		ck_assert_msg(exe_digest(x[i], &loc, &d), "%s: not hashed", x[i]);
		assert_digest(&loc, &d, x[i] + strlen("/bin/tool-"), 5);
	}
}
END_TEST

START_TEST(digest_is_false_when_hashing_was_not_asked_for)
{
	for (int i = 0; i < 3; i++) {
		teardown();
		setup();
		if (i == 1)
			sc_planner_hash_executables(planner, NULL);
		if (i == 2)
			sc_planner_hash_executables(planner, "");
		tarb b = {0};
		tb_entry(&b, "usr/bin/app", '0', "app", 3, NULL, 0755);
		ADD_OK(&b);
		_cleanup_(sc_plan_location_clear) sc_plan_location loc = {0};
		sc_digest d;
		ck_assert_msg(!exe_digest("/usr/bin/app", &loc, &d), "case %d: hashed", i);
	}
	/* a later call with NULL turns it off again */
	teardown();
	setup();
	sc_planner_hash_executables(planner, "app");
	sc_planner_hash_executables(planner, NULL);
	tarb b = {0};
	tb_entry(&b, "usr/bin/app", '0', "app", 3, NULL, 0755);
	ADD_OK(&b);
	_cleanup_(sc_plan_location_clear) sc_plan_location loc = {0};
	sc_digest d;
	ck_assert(!exe_digest("/usr/bin/app", &loc, &d));
}
END_TEST

START_TEST(digest_of_shadowed_executable_is_the_final_layers)
{
	/* each layer's copy at the same offset of its stream: only the layer
	 * tells them apart */
	sc_planner_hash_executables(planner, "python3");
	static const char *v[] = {"version one!", "version two!", "version 3!!!"};
	for (int i = 0; i < 3; i++) {
		tarb b = {0};
		tb_entry(&b, "usr/bin/python3.11", '0', v[i], 12, NULL, 0755);
		if (i == 0)
			tb_symlink(&b, "usr/bin/python3", "python3.11");
		ADD_OK(&b);
	}
	cleanup_plan sc_plan *p = finish();
	_cleanup_(sc_plan_location_clear) sc_plan_location loc = {0};
	sc_digest d;
	ck_assert(exe_digest("/usr/bin/python3", &loc, &d));
	ck_assert_uint_eq(loc.layer, 2);
	ck_assert_uint_eq(loc.data_offset, 512); /* as in layers 0 and 1 */
	assert_digest(&loc, &d, v[2], 12);
}
END_TEST

START_TEST(digest_of_executable_replaced_through_whiteout_is_the_new_one)
{
	/* removed, then written again in a later layer, then the directory
	 * made opaque and the file written in the same layer */
	sc_planner_hash_executables(planner, "app");
	tarb b = {0};
	tb_entry(&b, "srv/app", '0', "first", 5, NULL, 0755);
	ADD_OK(&b);
	tb_file(&b, "srv/.wh.app", "");
	ADD_OK(&b);
	tb_entry(&b, "srv/app", '0', "second", 6, NULL, 0755);
	ADD_OK(&b);
	_cleanup_(sc_plan_location_clear) sc_plan_location l1 = {0};
	sc_digest d;
	ck_assert(exe_digest("/srv/app", &l1, &d));
	ck_assert_uint_eq(l1.layer, 2);
	assert_digest(&l1, &d, "second", 6);
	tb_file(&b, "srv/.wh..wh..opq", "");
	tb_entry(&b, "srv/app", '0', "third!!", 7, NULL, 0755);
	ADD_OK(&b);
	_cleanup_(sc_plan_location_clear) sc_plan_location l2 = {0};
	ck_assert(exe_digest("/srv/app", &l2, &d));
	ck_assert_uint_eq(l2.layer, 3);
	assert_digest(&l2, &d, "third!!", 7);
}
END_TEST

START_TEST(digest_is_false_when_a_later_layer_replaces_the_executable_unhashed)
{
	/* the hashed lower copy must not stand in for the final content: a hard
	 * link to a file whose name does not match, or a copy without the
	 * execute bit, leaves pass 2 to hash it */
	sc_planner_hash_executables(planner, "python3");
	tarb b = {0};
	tb_entry(&b, "usr/bin/python3.11", '0', "lower, hashed", 13, NULL, 0755);
	tb_entry(&b, "opt/real", '0', "the real one", 12, NULL, 0755);
	tb_entry(&b, "usr/bin/python3.12", '0', "lower 3.12", 10, NULL, 0755);
	ADD_OK(&b);
	tb_link(&b, "usr/bin/python3.11", "opt/real");
	tb_entry(&b, "usr/bin/python3.12", '0', "not exec", 8, NULL, 0644);
	ADD_OK(&b);
	_cleanup_(sc_plan_location_clear) sc_plan_location l1 = {0}, l2 = {0};
	sc_digest d;
	ck_assert(!exe_digest("/usr/bin/python3.11", &l1, &d));
	ck_assert_uint_eq(l1.layer, 0);
	ck_assert(memcmp(layers[0].data + l1.data_offset, "the real one", 12) == 0);
	ck_assert(!exe_digest("/usr/bin/python3.12", &l2, &d));
	ck_assert_uint_eq(l2.layer, 1);
}
END_TEST

START_TEST(digest_of_encrypted_executable_is_of_its_plaintext)
{
	/* the measurement hashes the plaintext; the plan still encrypts it */
	sc_planner_hash_executables(planner, "server");
	tarb b = {0};
	tb_entry(&b, "app/server", '0', "plaintext binary", 16, NULL, 0755);
	ADD_OK(&b);
	cleanup_plan sc_plan *p = finish();
	ck_assert_uint_eq(p->layers[0].n_entries, 1);
	ck_assert_int_eq(p->layers[0].entries[0].action, SC_PLAN_ENCRYPT);
	_cleanup_(sc_plan_location_clear) sc_plan_location loc = {0};
	sc_digest d;
	ck_assert(exe_digest("/app/server", &loc, &d));
	assert_digest(&loc, &d, "plaintext binary", 16);
}
END_TEST

START_TEST(hashing_executables_leaves_the_plan_unchanged)
{
	/* the same layers planned with and without hashing */
	cleanup_free char *big = pattern((2u << 20) + 3, 5);
	size_t n_entries[2], n_files[2];
	uint64_t enc[2];
	for (int i = 0; i < 2; i++) {
		teardown();
		setup();
		if (i == 1)
			sc_planner_hash_executables(planner, "s");
		tarb b = {0};
		tb_entry(&b, "app/secret", '0', big, (2u << 20) + 3, NULL, 0755);
		tb_entry(&b, "app/s2", '0', "x", 1, NULL, 0755);
		tb_entry(&b, "bin/sh", '0', big, 1000, NULL, 0755);
		ADD_OK(&b);
		cleanup_plan sc_plan *p = finish();
		n_entries[i] = p->layers[0].n_entries;
		n_files[i] = p->n_files;
		enc[i] = p->encrypt_bytes;
		assert_data(0, &p->layers[0].entries[1], "x");
	}
	ck_assert_uint_eq(n_entries[0], n_entries[1]);
	ck_assert_uint_eq(n_files[0], n_files[1]);
	ck_assert_uint_eq(enc[0], enc[1]);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("plan");
	TCase *tc = tcase_create("plan");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, protected_file_is_encrypted_in_place);
	tcase_add_test(tc, replaced_protected_file_is_dropped_below);
	tcase_add_test(tc, whited_out_and_hidden_protected_files_are_dropped);
	tcase_add_test(tc, unprotected_shadowed_files_stay);
	tcase_add_test(tc, hard_links_inside_a_region_share_one_file);
	tcase_add_test(tc, hard_link_across_regions_is_refused);
	tcase_add_test(tc, content_that_ends_up_only_under_protected_names_is_encrypted_where_it_lies);
	tcase_add_test(tc, links_to_dropped_content_go_too);
	tcase_add_test(tc, authenticated_files_are_hashed_without_rewriting);
	tcase_add_test(tc, regions_match_where_entries_land);
	tcase_add_test(tc, empty_protected_file_is_planned);
	tcase_add_test(tc, digest_is_sha256_of_executable_found_by_exact_name);
	tcase_add_test(tc, digest_finds_prefixed_executable_behind_symlinks);
	tcase_add_test(tc, symlinks_in_protected_regions_of_the_final_tree_are_listed);
	tcase_add_test(tc, a_symlink_on_a_path_is_found_at_its_first_component);
	tcase_add_test(tc, digest_of_each_candidate_is_its_own);
	tcase_add_test(tc, digest_is_false_for_names_that_do_not_match);
	tcase_add_test(tc, digest_is_false_for_file_without_execute_bit);
	tcase_add_test(tc, digest_is_false_when_hashing_was_not_asked_for);
	tcase_add_test(tc, digest_of_shadowed_executable_is_the_final_layers);
	tcase_add_test(tc, digest_of_executable_replaced_through_whiteout_is_the_new_one);
	tcase_add_test(tc, digest_is_false_when_a_later_layer_replaces_the_executable_unhashed);
	tcase_add_test(tc, digest_of_encrypted_executable_is_of_its_plaintext);
	tcase_add_test(tc, hashing_executables_leaves_the_plan_unchanged);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
