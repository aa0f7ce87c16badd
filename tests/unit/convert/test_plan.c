/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pass 1 of a conversion: layers written here header by header, regions
 * given, and the plan's decisions (what is encrypted, hashed, dropped, where
 * in each layer's stream) checked against what the layers hold.
 */
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
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
