/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pass 2 on one layer: planned with the real planner, rewritten with real
 * shield encoders, and the output read back with the layer scanner and the
 * shield's verifier.
 */
#include <stdlib.h>
#include <string.h>

#include "convert/plan.h"
#include "convert/rewrite.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "layer/scan.h"
#include "layer/tree.h"
#include "support.h"
#include "tarbuild.h"

/* ---- the conversion's side, reduced to what pass 2 needs ---- */

struct conv {
	sc_shield_key *key;
	const sc_plan *plan;
	sc_shield_entry **results; /* by plan file */
	unsigned begun, ended;
};

static int begin(void *userdata, const sc_plan_entry *e, sc_shield_encoder **ret, sconify_error_t *err)
{
	struct conv *c = userdata;
	c->begun++;
	if (e->action == SC_PLAN_HASH)
		return sc_shield_hasher_new(e->size, 0, ret, err);
	uint8_t id[SC_SHIELD_FILE_ID_BYTES];
	sc_shield_file_id_derive(c->key, "sha256:layer", e->data_offset, c->plan->files[e->file].names[0],
	                         id);
	return sc_shield_encryptor_new(c->key, id, e->size, 0, ret, err);
}

static int end(void *userdata, const sc_plan_entry *e, sc_shield_entry *result, sconify_error_t *err)
{
	(void)err;
	struct conv *c = userdata;
	c->ended++;
	sc_shield_entry_free(c->results[e->file]);
	c->results[e->file] = result;
	return 0;
}

static sconify_limits_t limits;

static sc_plan *plan_of(const tarb *layers, size_t n, const char *encrypted, const char *authenticated)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_builder sc_shield_builder *regions = NULL;
	ck_assert_ok(sc_shield_builder_new(0, &regions, &err), err);
	if (encrypted)
		ck_assert_ok(sc_shield_builder_add_region(regions, encrypted, SC_SHIELD_ENCRYPTED, &err),
		             err);
	if (authenticated)
		ck_assert_ok(
		        sc_shield_builder_add_region(regions, authenticated, SC_SHIELD_AUTHENTICATED, &err),
		        err);
	cleanup_planner sc_planner *p = sc_planner_new(regions, &limits);
	for (size_t i = 0; i < n; i++) {
		cleanup_reader sc_reader *r = sc_mem_reader_new(layers[i].data, layers[i].len);
		ck_assert_ok(sc_planner_add_layer(p, r, "layer", NULL, &err), err);
	}
	sc_plan *plan = NULL;
	ck_assert_ok(sc_planner_finish(p, &plan, &err), err);
	return plan;
}

/* Rewrites layer (feeding it in pieces of at most step bytes); returns the output. */
static char *rewrite(const sc_plan *plan, unsigned layer, const tarb *in, size_t step, struct conv *c,
                     size_t *ret_len)
{
	cleanup_error sconify_error_t err = NULL;
	sc_test_memw *out = sc_test_memw_new();
	sc_rewrite_hooks hooks = {.begin = begin, .end = end, .userdata = c};
	cleanup_writer sc_writer *rw = sc_layer_rewriter_new(&plan->layers[layer], &out->base, &hooks);
	for (size_t off = 0; off < in->len;) {
		size_t k = in->len - off < step ? in->len - off : step;
		ck_assert_ok(sc_writer_write(rw, in->data + off, k, &err), err);
		off += k;
	}
	ck_assert_ok(sc_writer_finish(rw, &err), err);
	char *data = sc_buf_steal(&out->buf, ret_len);
	sc_writer_free(&out->base);
	return data;
}

static bool contains(const char *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return true;
	return false;
}

static int walk(void *ud, const sc_tree_item *it, sconify_error_t *e)
{
	(void)e;
	sc_buf_printf(ud, "%s %llu;", it->path, (unsigned long long)it->size);
	return 0;
}

/* The output is a valid layer; returns its final tree's listing "path size;". */
static char *listing(const char *data, size_t len)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_tree sc_tree *t = sc_tree_new(&limits);
	cleanup_reader sc_reader *r = sc_mem_reader_new(data, len);
	ck_assert_ok(sc_tree_add_layer(t, r, "rewritten", &err), err);
	sc_buf out;
	sc_buf_init(&out, SIZE_MAX);
	ck_assert_ok(sc_tree_walk(t, walk, &out, &err), err);
	return sc_buf_steal(&out, NULL);
}

static void setup(void)
{
	memset(&limits, 0, sizeof(limits));
	sc_limits_fill(&limits);
}

#define SECRET "the secret: 0123456789abcdef0123456789abcdef"

START_TEST(encrypted_data_replaces_plaintext_byte_for_byte)
{
	cleanup_error sconify_error_t err = NULL;
	tarb b = {0};
	tb_file(&b, "etc/motd", "hello");
	tb_file(&b, "app/secret", SECRET);
	tb_file(&b, "etc/after", "after");
	tb_end(&b);
	cleanup_plan sc_plan *plan = plan_of(&b, 1, "/app", NULL);
	cleanup_shield_key sc_shield_key *key = NULL;
	ck_assert_ok(sc_shield_key_generate(&key, &err), err);
	sc_shield_entry *results[1] = {0};
	struct conv c = {.key = key, .plan = plan, .results = results};

	for (size_t step = 1; step <= b.len; step = step * 3 + 1) {
		size_t len;
		cleanup_free char *out = rewrite(plan, 0, &b, step, &c, &len);
		ck_assert_uint_eq(len, b.len);
		ck_assert(!contains(out, len, "the secret"));
		/* everything but the secret's data is unchanged */
		const sc_plan_entry *e = &plan->layers[0].entries[0];
		ck_assert(memcmp(out, b.data, (size_t)e->data_offset) == 0);
		ck_assert(memcmp(out + e->data_offset + e->size, b.data + e->data_offset + e->size,
		                 len - (size_t)(e->data_offset + e->size)) == 0);
		cleanup_free char *l = listing(out, len);
		ck_assert_str_eq(l, " 0;app 0;app/secret 44;etc 0;etc/after 5;etc/motd 5;");
		/* and the shield opens it */
		cleanup_shield_file sc_shield_file *f = NULL;
		ck_assert_ok(sc_shield_file_new(key, results[0], &f, &err), err);
		char plain[64];
		ck_assert_ok(
		        sc_shield_file_read_chunk(f, 0, out + e->data_offset, (size_t)e->size, plain, &err),
		        err);
		ck_assert(memcmp(plain, SECRET, strlen(SECRET)) == 0);
	}
	ck_assert_uint_eq(c.begun, c.ended);
	sc_shield_entry_free(results[0]);
	free(b.data);
}
END_TEST

START_TEST(dropped_entries_leave_no_trace_but_global_headers_stay)
{
	tarb l0 = {0}, l1 = {0};
	tb_pax(&l0, 'g', "comment", "kept for the entries after", (size_t)26, NULL);
	tb_file(&l0, "app/old", "OLD PLAINTEXT OF A SECRET");
	tb_link(&l0, "app/old-link", "app/old");
	tb_file(&l0, "usr/bin/tool", "a tool");
	tb_end(&l0);
	tb_file(&l1, ".wh.app", "");
	tb_end(&l1);
	tarb layers[2] = {l0, l1};
	cleanup_plan sc_plan *plan = plan_of(layers, 2, "/app", NULL);
	ck_assert_uint_eq(plan->dropped, 2);
	ck_assert(!plan->layers[1].rewrite);
	struct conv c = {.plan = plan};
	size_t len;
	cleanup_free char *out = rewrite(plan, 0, &l0, 4096, &c, &len);
	ck_assert(!contains(out, len, "OLD PLAINTEXT"));
	ck_assert(!contains(out, len, "app/old"));
	ck_assert(contains(out, len, "kept for the entries after"));
	ck_assert_uint_eq(len, l0.len - 3 * 512);
	cleanup_free char *l = listing(out, len);
	ck_assert_str_eq(l, " 0;usr 0;usr/bin 0;usr/bin/tool 6;");
	ck_assert_uint_eq(c.begun, 0);
	free(l0.data);
	free(l1.data);
}
END_TEST

START_TEST(hashed_entries_pass_through)
{
	cleanup_error sconify_error_t err = NULL;
	tarb b = {0};
	tb_file(&b, "lib/py/os.py", "import sys");
	tb_end(&b);
	cleanup_plan sc_plan *plan = plan_of(&b, 1, NULL, "/lib/py");
	sc_shield_entry *results[1] = {0};
	struct conv c = {.plan = plan, .results = results};
	size_t len;
	cleanup_free char *out = rewrite(plan, 0, &b, 100, &c, &len);
	ck_assert_uint_eq(len, b.len);
	ck_assert(memcmp(out, b.data, len) == 0);
	ck_assert_ptr_nonnull(results[0]);
	ck_assert_int_eq(results[0]->kind, SC_SHIELD_AUTHENTICATED);
	cleanup_shield_file sc_shield_file *f = NULL;
	ck_assert_ok(sc_shield_file_new(NULL, results[0], &f, &err), err);
	char plain[16];
	const sc_plan_entry *e = &plan->layers[0].entries[0];
	ck_assert_ok(sc_shield_file_read_chunk(f, 0, out + e->data_offset, 10, plain, &err), err);
	sc_shield_entry_free(results[0]);
	free(b.data);
}
END_TEST

START_TEST(empty_protected_file_gets_its_entry)
{
	cleanup_error sconify_error_t err = NULL;
	tarb b = {0};
	tb_file(&b, "app/empty", "");
	tb_end(&b);
	cleanup_plan sc_plan *plan = plan_of(&b, 1, "/app", NULL);
	cleanup_shield_key sc_shield_key *key = NULL;
	ck_assert_ok(sc_shield_key_generate(&key, &err), err);
	sc_shield_entry *results[1] = {0};
	struct conv c = {.key = key, .plan = plan, .results = results};
	size_t len;
	cleanup_free char *out = rewrite(plan, 0, &b, 512, &c, &len);
	ck_assert_uint_eq(len, b.len);
	ck_assert_ptr_nonnull(results[0]);
	ck_assert_uint_eq(results[0]->n_chunks, 1);
	sc_shield_entry_free(results[0]);
	free(b.data);
}
END_TEST

START_TEST(a_layer_shorter_than_planned_fails)
{
	tarb b = {0};
	tb_file(&b, "etc/motd", "hello");
	tb_file(&b, "app/secret", SECRET);
	tb_end(&b);
	cleanup_plan sc_plan *plan = plan_of(&b, 1, "/app", NULL);
	cleanup_error sconify_error_t err = NULL;
	sc_test_memw *out = sc_test_memw_new();
	struct conv c = {.plan = plan};
	sc_rewrite_hooks hooks = {.begin = begin, .end = end, .userdata = &c};
	cleanup_writer sc_writer *rw = sc_layer_rewriter_new(&plan->layers[0], &out->base, &hooks);
	ck_assert_ok(sc_writer_write(rw, b.data, 512, &err), err);
	ck_assert_fails(sc_writer_finish(rw, &err), err, SCONIFY_ERR_INTEGRITY, "before the entry planned");
	sc_writer_free(&out->base);
	free(b.data);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rewrite");
	TCase *tc = tcase_create("rewrite");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, encrypted_data_replaces_plaintext_byte_for_byte);
	tcase_add_test(tc, dropped_entries_leave_no_trace_but_global_headers_stay);
	tcase_add_test(tc, hashed_entries_pass_through);
	tcase_add_test(tc, empty_protected_file_gets_its_entry);
	tcase_add_test(tc, a_layer_shorter_than_planned_fails);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
