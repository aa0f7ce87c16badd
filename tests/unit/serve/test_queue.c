/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/xalloc.h"
#include "serve/queue.h"
#include "support.h"

#define T0 1700000000000LL /* a fixed "now" */
#define WINDOW_S 60

/* ---- helpers: the async calls, waited for ---- */

typedef struct {
	bool done;
	sconify_error_t err;
	sc_queue_accepted r;
	int64_t ids[16];
} result;

static void accepted_cb(void *arg, sconify_error_t err, const sc_queue_accepted *r)
{
	result *res = arg;
	ck_assert(!res->done);
	res->done = true;
	if (err) {
		ck_assert_ptr_null(r);
		sc_error(&res->err, sconify_error_kind(err), 0, "%s", sconify_error_message(err));
		return;
	}
	ck_assert_uint_le(r->n, 16);
	res->r = *r;
	if (r->n)
		memcpy(res->ids, r->ids, r->n * sizeof(*r->ids));
	res->r.ids = res->ids;
}

static void done_cb(void *arg, sconify_error_t err)
{
	result *res = arg;
	ck_assert(!res->done);
	res->done = true;
	if (err)
		sc_error(&res->err, sconify_error_kind(err), 0, "%s", sconify_error_message(err));
}

static void wait_for(sc_queue *q, result *res)
{
	while (!res->done) {
		struct pollfd p = {.fd = sc_queue_fd(q), .events = POLLIN};
		ck_assert_int_ge(poll(&p, 1, -1), 0);
		sc_queue_complete(q);
	}
}

static sc_job_new job_new(const char *rule, const char *digest)
{
	return (sc_job_new){.rule = rule,
	                    .source = SC_SOURCE_DISTRIBUTION,
	                    .registry = "registry.example:5000",
	                    .repository = "apps/web",
	                    .tag = "v1",
	                    .digest = digest,
	                    .destination = "registry.example:5000/confidential/apps/web:v1",
	                    .session = NULL};
}

/* accept, waited for; the result's err must be freed. */
static result accept_at(sc_queue *q, sc_source_kind source, const char *delivery, const sc_job_new *jobs,
                        size_t n, int64_t now)
{
	result res = {0};
	sc_queue_accept_async(q, source, delivery, jobs, n, now, WINDOW_S, accepted_cb, &res);
	wait_for(q, &res);
	return res;
}

static result accept1(sc_queue *q, const char *delivery, const char *rule, const char *digest)
{
	sc_job_new j = job_new(rule, digest);
	result res = accept_at(q, SC_SOURCE_GITHUB, delivery, &j, 1, T0);
	ck_assert_msg(res.err == NULL, "%s", sconify_error_message(res.err));
	return res;
}

#define WAIT_OK(q, call)                                                                           \
	do {                                                                                       \
		result res_ = {0};                                                                 \
		call;                                                                              \
		wait_for(q, &res_);                                                                \
		ck_assert_msg(res_.err == NULL, "%s: %s", #call, sconify_error_message(res_.err)); \
	} while (0)

static int64_t new_job(sc_queue *q, const char *digest)
{
	result r = accept1(q, NULL, "rule-1", digest);
	ck_assert_uint_eq(r.r.n_new, 1);
	return r.ids[0];
}

static sc_job *get(sc_queue *q, int64_t id)
{
	cleanup_error sconify_error_t err = NULL;
	sc_job *j = NULL;
	ck_assert_ok(sc_queue_get(q, id, &j, &err), err);
	return j;
}

static sc_queue *open_queue(const char *dir)
{
	cleanup_error sconify_error_t err = NULL;
	sc_queue *q = NULL;
	ck_assert_ok(sc_queue_open(dir, &q, &err), err);
	return q;
}

static const char D1[] = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
static const char D2[] = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
static const char D3[] = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

/* ---- accept ---- */

START_TEST(accept_creates_jobs_and_reports_them)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_free char *state = sc_path_join(dir, "state/sub");
	cleanup_queue sc_queue *q = open_queue(state);
	struct stat stt;
	ck_assert_int_eq(stat(state, &stt), 0);
	ck_assert_int_eq(stt.st_mode & 0777, 0700);
	sc_job_new jobs[2] = {job_new("rule-1", D1), job_new("rule-2", D2)};
	jobs[1].source = SC_SOURCE_HARBOR;
	jobs[1].tag = "v2";
	jobs[1].session = "ns/web-v2";
	result r = accept_at(q, SC_SOURCE_DISTRIBUTION, "d-1", jobs, 2, T0);
	ck_assert_ptr_null(r.err);
	ck_assert(!r.r.replayed);
	ck_assert_uint_eq(r.r.n_new, 2);
	ck_assert_uint_eq(r.r.n_repeats, 0);
	ck_assert_uint_eq(r.r.n, 2);
	ck_assert_int_ne(r.ids[0], r.ids[1]);
	cleanup_job sc_job *a = get(q, r.ids[0]);
	ck_assert_str_eq(a->rule, "rule-1");
	ck_assert_int_eq(a->source, SC_SOURCE_DISTRIBUTION);
	ck_assert_str_eq(a->registry, "registry.example:5000");
	ck_assert_str_eq(a->repository, "apps/web");
	ck_assert_str_eq(a->tag, "v1");
	ck_assert_str_eq(a->digest, D1);
	ck_assert_str_eq(a->destination, "registry.example:5000/confidential/apps/web:v1");
	ck_assert_ptr_null(a->session);
	ck_assert_int_eq(a->state, SC_JOB_QUEUED);
	ck_assert_uint_eq(a->attempts, 0);
	ck_assert_uint_eq(a->deliveries, 1);
	ck_assert_int_eq(a->created_ms, T0);
	ck_assert_int_eq(a->next_run_ms, T0);
	ck_assert_int_eq(a->started_ms, 0);
	ck_assert_ptr_null(a->last_error);
	ck_assert_ptr_null(a->result);
	cleanup_job sc_job *b = get(q, r.ids[1]);
	ck_assert_int_eq(b->source, SC_SOURCE_HARBOR);
	ck_assert_str_eq(b->tag, "v2");
	ck_assert_str_eq(b->session, "ns/web-v2");
	cleanup_error sconify_error_t err = NULL;
	sc_job *none = NULL;
	int rr = sc_queue_get(q, 12345, &none, &err);
	ck_assert_fails(rr, err, SCONIFY_ERR_NOT_FOUND, "job 12345 not found");
	ck_assert_ptr_null(none);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(accept_converts_a_rule_digest_pair_once)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_queue sc_queue *q = open_queue(dir);
	result a = accept1(q, "d-1", "rule-1", D1);
	/* Another delivery of the same push: the same job, counted. */
	result b = accept1(q, "d-2", "rule-1", D1);
	ck_assert_uint_eq(b.r.n_new, 0);
	ck_assert_uint_eq(b.r.n_repeats, 1);
	ck_assert_int_eq(b.ids[0], a.ids[0]);
	result c = accept1(q, NULL, "rule-1", D1);
	ck_assert_int_eq(c.ids[0], a.ids[0]);
	cleanup_job sc_job *j = get(q, a.ids[0]);
	ck_assert_uint_eq(j->deliveries, 3);
	/* The same pair twice in one delivery, and another rule for the digest. */
	sc_job_new jobs[3] = {job_new("rule-1", D2), job_new("rule-1", D2), job_new("rule-2", D1)};
	result d = accept_at(q, SC_SOURCE_GITHUB, "d-3", jobs, 3, T0);
	ck_assert_ptr_null(d.err);
	ck_assert_uint_eq(d.r.n_new, 2);
	ck_assert_uint_eq(d.r.n_repeats, 1);
	ck_assert_int_eq(d.ids[0], d.ids[1]);
	ck_assert_int_ne(d.ids[2], a.ids[0]);
	size_t counts[SC_JOB__N];
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_queue_counts(q, counts, &err), err);
	ck_assert_uint_eq(counts[SC_JOB_QUEUED], 3);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(accept_refuses_a_replayed_delivery_and_writes_nothing)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_queue sc_queue *q = open_queue(dir);
	result a = accept1(q, "delivery-1", "rule-1", D1);
	ck_assert(!a.r.replayed);
	sc_job_new more[2] = {job_new("rule-1", D1), job_new("rule-1", D2)};
	result b = accept_at(q, SC_SOURCE_GITHUB, "delivery-1", more, 2, T0 + 1000);
	ck_assert_ptr_null(b.err);
	ck_assert(b.r.replayed);
	ck_assert_uint_eq(b.r.n_new, 0);
	ck_assert_uint_eq(b.r.n, 0);
	cleanup_job sc_job *j = get(q, a.ids[0]);
	ck_assert_uint_eq(j->deliveries, 1); /* not even counted */
	size_t counts[SC_JOB__N];
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_queue_counts(q, counts, &err), err);
	ck_assert_uint_eq(counts[SC_JOB_QUEUED], 1); /* D2 was not queued */
	/* The id is per source. */
	result c = accept_at(q, SC_SOURCE_HARBOR, "delivery-1", more, 2, T0 + 1000);
	ck_assert_ptr_null(c.err);
	ck_assert(!c.r.replayed);
	ck_assert_uint_eq(c.r.n_new, 1);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(accept_forgets_delivery_ids_past_the_window)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_queue sc_queue *q = open_queue(dir);
	/* A delivery with no push for any rule still records its id. */
	result a = accept_at(q, SC_SOURCE_GITHUB, "old", NULL, 0, T0);
	ck_assert_ptr_null(a.err);
	ck_assert(!a.r.replayed);
	ck_assert_uint_eq(a.r.n, 0);
	result b = accept_at(q, SC_SOURCE_GITHUB, "recent", NULL, 0, T0 + (WINDOW_S - 10) * 1000LL);
	ck_assert(!b.r.replayed);
	result c = accept_at(q, SC_SOURCE_GITHUB, "old", NULL, 0, T0 + (WINDOW_S - 1) * 1000LL);
	ck_assert(c.r.replayed);
	/* Past the window of "old" (it is pruned in this very write), inside
	 * the one of "recent". */
	int64_t later = T0 + (WINDOW_S + 1) * 1000LL;
	result d = accept_at(q, SC_SOURCE_GITHUB, "recent", NULL, 0, later);
	ck_assert_ptr_null(d.err);
	ck_assert(d.r.replayed);
	result e = accept_at(q, SC_SOURCE_GITHUB, "old", NULL, 0, later);
	ck_assert_ptr_null(e.err);
	ck_assert(!e.r.replayed);
	/* The table holds only ids within the window. */
	sc_queue_free(steal_pointer(&q));
	cleanup_free char *path = sc_path_join(dir, "queue.db");
	sqlite3 *db = NULL;
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *st = NULL;
	ck_assert_int_eq(
	        sqlite3_prepare_v2(db, "SELECT group_concat(id) FROM (SELECT id FROM deliveries ORDER BY id)",
	                           -1, &st, NULL),
	        SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "old,recent");
	sqlite3_finalize(st);
	sqlite3_close(db);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(accept_refuses_an_overlong_delivery_id)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_queue sc_queue *q = open_queue(dir);
	char id[300];
	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = 0;
	sc_job_new j = job_new("rule-1", D1);
	result r = accept_at(q, SC_SOURCE_GITHUB, id, &j, 1, T0);
	ck_assert_fails(-1, r.err, SCONIFY_ERR_LIMIT, "delivery id longer than");
	sconify_error_free(&r.err);
	size_t counts[SC_JOB__N];
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_queue_counts(q, counts, &err), err);
	ck_assert_uint_eq(counts[SC_JOB_QUEUED], 0);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

/* ---- the state machine ---- */

START_TEST(job_runs_and_succeeds_with_outputs)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_queue sc_queue *q = open_queue(dir);
	cleanup_error sconify_error_t err = NULL;
	int64_t id = new_job(q, D1);
	WAIT_OK(q, sc_queue_start_async(q, id, T0 + 10, done_cb, &res_));
	cleanup_job sc_job *j = get(q, id);
	ck_assert_int_eq(j->state, SC_JOB_RUNNING);
	ck_assert_uint_eq(j->attempts, 1);
	ck_assert_int_eq(j->started_ms, T0 + 10);
	/* Started twice: refused, and the job is untouched. */
	result twice = {0};
	sc_queue_start_async(q, id, T0 + 11, done_cb, &twice);
	wait_for(q, &twice);
	ck_assert_fails(-1, twice.err, SCONIFY_ERR_INVALID, "is running, not queued");
	sconify_error_free(&twice.err);
	const char *outputs[] = {D2, D3};
	bool self = true;
	ck_assert_ok(sc_queue_is_output(q, D2, &self, &err), err);
	ck_assert(!self);
	WAIT_OK(q, sc_queue_succeed_async(q, id, "{\"digest\":\"x\"}", outputs, 2, T0 + 20, done_cb, &res_));
	cleanup_job sc_job *k = get(q, id);
	ck_assert_int_eq(k->state, SC_JOB_DONE);
	ck_assert_str_eq(k->result, "{\"digest\":\"x\"}");
	ck_assert_int_eq(k->finished_ms, T0 + 20);
	ck_assert_uint_eq(k->attempts, 1);
	ck_assert_ok(sc_queue_is_output(q, D2, &self, &err), err);
	ck_assert(self);
	ck_assert_ok(sc_queue_is_output(q, D3, &self, &err), err);
	ck_assert(self);
	ck_assert_ok(sc_queue_is_output(q, D1, &self, &err), err);
	ck_assert(!self);
	/* Done is final. */
	result again = {0};
	sc_queue_succeed_async(q, id, "{}", NULL, 0, T0 + 30, done_cb, &again);
	wait_for(q, &again);
	ck_assert_fails(-1, again.err, SCONIFY_ERR_INVALID, "is done, not running");
	sconify_error_free(&again.err);
	result missing = {0};
	sc_queue_start_async(q, 999, T0, done_cb, &missing);
	wait_for(q, &missing);
	ck_assert_fails(-1, missing.err, SCONIFY_ERR_NOT_FOUND, "job 999 not found");
	sconify_error_free(&missing.err);
	size_t counts[SC_JOB__N];
	ck_assert_ok(sc_queue_counts(q, counts, &err), err);
	ck_assert_uint_eq(counts[SC_JOB_DONE], 1);
	ck_assert_uint_eq(counts[SC_JOB_RUNNING], 0);
	ck_assert_uint_eq(counts[SC_JOB_QUEUED], 0);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(job_fails_with_retry_then_for_good)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_queue sc_queue *q = open_queue(dir);
	cleanup_error sconify_error_t err = NULL;
	int64_t id = new_job(q, D1);
	WAIT_OK(q, sc_queue_start_async(q, id, T0, done_cb, &res_));
	WAIT_OK(q, sc_queue_fail_async(q, id, "registry said 503", T0 + 5, T0 + 10000, done_cb, &res_));
	cleanup_job sc_job *j = get(q, id);
	ck_assert_int_eq(j->state, SC_JOB_QUEUED);
	ck_assert_int_eq(j->next_run_ms, T0 + 10000);
	ck_assert_str_eq(j->last_error, "registry said 503");
	ck_assert_uint_eq(j->attempts, 1);
	/* Not runnable before its backoff. */
	sc_job **jobs = NULL;
	size_t n = 0;
	ck_assert_ok(sc_queue_runnable(q, T0 + 9999, 10, &jobs, &n, &err), err);
	ck_assert_uint_eq(n, 0);
	sc_jobs_free(jobs, n);
	int64_t next = 0;
	ck_assert_ok(sc_queue_next_run(q, &next, &err), err);
	ck_assert_int_eq(next, T0 + 10000);
	ck_assert_ok(sc_queue_runnable(q, T0 + 10000, 10, &jobs, &n, &err), err);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(jobs[0]->id, id);
	sc_jobs_free(jobs, n);
	WAIT_OK(q, sc_queue_start_async(q, id, T0 + 10000, done_cb, &res_));
	WAIT_OK(q, sc_queue_fail_async(q, id, "still 503", T0 + 10005, -1, done_cb, &res_));
	cleanup_job sc_job *k = get(q, id);
	ck_assert_int_eq(k->state, SC_JOB_FAILED);
	ck_assert_uint_eq(k->attempts, 2);
	ck_assert_str_eq(k->last_error, "still 503");
	ck_assert_int_eq(k->finished_ms, T0 + 10005);
	ck_assert_ok(sc_queue_next_run(q, &next, &err), err);
	ck_assert_int_eq(next, -1);
	/* Failed stays failed: a new delivery only counts. */
	result again = accept1(q, NULL, "rule-1", D1);
	ck_assert_uint_eq(again.r.n_repeats, 1);
	cleanup_job sc_job *l = get(q, id);
	ck_assert_int_eq(l->state, SC_JOB_FAILED);
	size_t counts[SC_JOB__N];
	ck_assert_ok(sc_queue_counts(q, counts, &err), err);
	ck_assert_uint_eq(counts[SC_JOB_FAILED], 1);
	ck_assert_uint_eq(counts[SC_JOB_QUEUED], 0);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(job_fail_caps_the_error_at_4_kib_on_a_character)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_queue sc_queue *q = open_queue(dir);
	int64_t id = new_job(q, D1);
	WAIT_OK(q, sc_queue_start_async(q, id, T0, done_cb, &res_));
	/* 4095 bytes of x, then two-byte characters across the cap. */
	cleanup_free char *long_error = xmalloc(4095 + 200 + 1);
	memset(long_error, 'x', 4095);
	for (size_t i = 0; i < 100; i++)
		memcpy(long_error + 4095 + 2 * i, "\xc3\xa9", 2);
	long_error[4095 + 200] = 0;
	WAIT_OK(q, sc_queue_fail_async(q, id, long_error, T0, -1, done_cb, &res_));
	cleanup_job sc_job *j = get(q, id);
	ck_assert_uint_eq(strlen(j->last_error), 4095);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(job_requeue_gives_the_attempt_back)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_queue sc_queue *q = open_queue(dir);
	int64_t id = new_job(q, D1);
	WAIT_OK(q, sc_queue_start_async(q, id, T0, done_cb, &res_));
	WAIT_OK(q, sc_queue_requeue_async(q, id, T0 + 50, done_cb, &res_));
	cleanup_job sc_job *j = get(q, id);
	ck_assert_int_eq(j->state, SC_JOB_QUEUED);
	ck_assert_uint_eq(j->attempts, 0);
	ck_assert_int_eq(j->next_run_ms, T0 + 50);
	result bad = {0};
	sc_queue_requeue_async(q, id, T0 + 60, done_cb, &bad);
	wait_for(q, &bad);
	ck_assert_fails(-1, bad.err, SCONIFY_ERR_INVALID, "is queued, not running");
	sconify_error_free(&bad.err);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(runnable_list_and_counts_follow_the_jobs)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_queue sc_queue *q = open_queue(dir);
	cleanup_error sconify_error_t err = NULL;
	int64_t ids[6];
	for (int i = 0; i < 6; i++) {
		char digest[80];
		snprintf(digest, sizeof(digest), "sha256:%064d", i);
		ids[i] = new_job(q, digest);
	}
	/* ids[1] runs, ids[2] is done, ids[3] waits for a retry. */
	WAIT_OK(q, sc_queue_start_async(q, ids[1], T0, done_cb, &res_));
	WAIT_OK(q, sc_queue_start_async(q, ids[2], T0, done_cb, &res_));
	WAIT_OK(q, sc_queue_succeed_async(q, ids[2], "{}", NULL, 0, T0, done_cb, &res_));
	WAIT_OK(q, sc_queue_start_async(q, ids[3], T0, done_cb, &res_));
	WAIT_OK(q, sc_queue_fail_async(q, ids[3], "e", T0, T0 + 100, done_cb, &res_));
	sc_job **jobs = NULL;
	size_t n = 0;
	ck_assert_ok(sc_queue_runnable(q, T0, 2, &jobs, &n, &err), err);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(jobs[0]->id, ids[0]);
	ck_assert_int_eq(jobs[1]->id, ids[4]);
	sc_jobs_free(jobs, n);
	ck_assert_ok(sc_queue_runnable(q, T0 + 100, 10, &jobs, &n, &err), err);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(jobs[3]->id, ids[3]); /* due last */
	sc_jobs_free(jobs, n);
	ck_assert_ok(sc_queue_list(q, -1, 0, 100, &jobs, &n, &err), err);
	ck_assert_uint_eq(n, 6);
	ck_assert_int_eq(jobs[0]->id, ids[5]); /* newest first */
	sc_jobs_free(jobs, n);
	ck_assert_ok(sc_queue_list(q, -1, ids[4], 2, &jobs, &n, &err), err);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(jobs[0]->id, ids[3]);
	ck_assert_int_eq(jobs[1]->id, ids[2]);
	sc_jobs_free(jobs, n);
	ck_assert_ok(sc_queue_list(q, SC_JOB_QUEUED, 0, 100, &jobs, &n, &err), err);
	ck_assert_uint_eq(n, 4);
	sc_jobs_free(jobs, n);
	ck_assert_ok(sc_queue_list(q, SC_JOB_DONE, 0, 100, &jobs, &n, &err), err);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(jobs[0]->id, ids[2]);
	sc_jobs_free(jobs, n);
	size_t counts[SC_JOB__N];
	ck_assert_ok(sc_queue_counts(q, counts, &err), err);
	ck_assert_uint_eq(counts[SC_JOB_QUEUED], 4);
	ck_assert_uint_eq(counts[SC_JOB_RUNNING], 1);
	ck_assert_uint_eq(counts[SC_JOB_DONE], 1);
	ck_assert_uint_eq(counts[SC_JOB_FAILED], 0);
	int64_t next = 0;
	ck_assert_ok(sc_queue_next_run(q, &next, &err), err);
	ck_assert_int_eq(next, T0);
	ck_assert_str_eq(sc_job_state_name(SC_JOB_FAILED), "failed");
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

static char *query_plan(const char *dir, const char *sql)
{
	cleanup_free char *path = sc_path_join(dir, "queue.db");
	sqlite3 *db = NULL;
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	cleanup_free char *explain = xasprintf("EXPLAIN QUERY PLAN %s", sql);
	sqlite3_stmt *st = NULL;
	ck_assert_int_eq(sqlite3_prepare_v2(db, explain, -1, &st, NULL), SQLITE_OK);
	char *plan = xstrdup("");
	while (sqlite3_step(st) == SQLITE_ROW) {
		char *p = xasprintf("%s%s;", plan, (const char *)sqlite3_column_text(st, 3));
		free(plan);
		plan = p;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return plan;
}

/* The reads the service makes on every tick use indexes, never a scan of
 * all jobs (the queries are the ones queue.c prepares). */
START_TEST(queue_reads_use_indexes)
{
	cleanup_free char *dir = sc_test_tmpdir();
	sc_queue_free(open_queue(dir));
	cleanup_free char *runnable =
	        query_plan(dir, "SELECT * FROM jobs WHERE state = 0 AND next_run_ms <= 5"
	                        " ORDER BY next_run_ms, id LIMIT 10");
	ck_assert_msg(strstr(runnable, "USING INDEX jobs_due") && !strstr(runnable, "TEMP B-TREE"), "%s",
	              runnable);
	cleanup_free char *next =
	        query_plan(dir, "SELECT next_run_ms FROM jobs WHERE state = 0 ORDER BY next_run_ms LIMIT 1");
	ck_assert_msg(strstr(next, "jobs_due") && !strstr(next, "TEMP B-TREE"), "%s", next);
	cleanup_free char *list =
	        query_plan(dir, "SELECT * FROM jobs WHERE state = 3 AND id < 99 ORDER BY id DESC"
	                        " LIMIT 10");
	ck_assert_msg(strstr(list, "jobs_state") && !strstr(list, "TEMP B-TREE"), "%s", list);
	cleanup_free char *prune = query_plan(dir, "DELETE FROM deliveries WHERE seen_ms < 5");
	ck_assert_msg(strstr(prune, "deliveries_seen"), "%s", prune);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

/* ---- restarts and crashes ---- */

START_TEST(open_requeues_jobs_left_running)
{
	cleanup_free char *dir = sc_test_tmpdir();
	sc_queue *q = open_queue(dir);
	int64_t a = new_job(q, D1), b = new_job(q, D2);
	WAIT_OK(q, sc_queue_start_async(q, a, T0, done_cb, &res_));
	sc_queue_free(q);
	q = open_queue(dir);
	cleanup_job sc_job *j = get(q, a);
	ck_assert_int_eq(j->state, SC_JOB_QUEUED);
	ck_assert_uint_eq(j->attempts, 1); /* the run counted */
	cleanup_error sconify_error_t err = NULL;
	size_t counts[SC_JOB__N];
	ck_assert_ok(sc_queue_counts(q, counts, &err), err);
	ck_assert_uint_eq(counts[SC_JOB_QUEUED], 2);
	ck_assert_uint_eq(counts[SC_JOB_RUNNING], 0);
	sc_job **jobs = NULL;
	size_t n = 0;
	ck_assert_ok(sc_queue_runnable(q, T0, 10, &jobs, &n, &err), err);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(jobs[0]->id, a);
	ck_assert_int_eq(jobs[1]->id, b);
	sc_jobs_free(jobs, n);
	sc_queue_free(q);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(free_commits_what_is_queued)
{
	cleanup_free char *dir = sc_test_tmpdir();
	sc_queue *q = open_queue(dir);
	enum { N = 50 };
	result res[N];
	memset(res, 0, sizeof(res));
	for (int i = 0; i < N; i++) {
		char digest[80];
		snprintf(digest, sizeof(digest), "sha256:%064d", i);
		sc_job_new j = job_new("rule-1", digest);
		sc_queue_accept_async(q, SC_SOURCE_DISTRIBUTION, NULL, &j, 1, T0, WINDOW_S, accepted_cb,
		                      &res[i]);
	}
	sc_queue_free(q); /* no complete(): free commits and completes */
	for (int i = 0; i < N; i++) {
		ck_assert(res[i].done);
		ck_assert_ptr_null(res[i].err);
	}
	q = open_queue(dir);
	cleanup_error sconify_error_t err = NULL;
	size_t counts[SC_JOB__N];
	ck_assert_ok(sc_queue_counts(q, counts, &err), err);
	ck_assert_uint_eq(counts[SC_JOB_QUEUED], N);
	sc_queue_free(q);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(open_refuses_a_newer_schema)
{
	cleanup_free char *dir = sc_test_tmpdir();
	sc_queue_free(open_queue(dir));
	cleanup_free char *path = sc_path_join(dir, "queue.db");
	sqlite3 *db = NULL;
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cleanup_error sconify_error_t err = NULL;
	sc_queue *q = NULL;
	int r = sc_queue_open(dir, &q, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_UNSUPPORTED, "schema version 99");
	ck_assert_ptr_null(q);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

/* The child: accepts deliveries as fast as it can, several in flight, and
 * writes the number of each acknowledged one (its done callback ran
 * without error) to fd. Never returns. */
typedef struct {
	int fd;
	unsigned n;
	unsigned inflight;
} crash_child;

typedef struct {
	crash_child *c;
	unsigned n;
} crash_arg;

static void crash_accepted(void *arg, sconify_error_t err, const sc_queue_accepted *r)
{
	crash_arg *a = arg;
	a->c->inflight--;
	if (err == NULL && r->n == 1 && r->n_new == 1) {
		uint32_t v = a->n;
		if (write(a->c->fd, &v, sizeof(v)) != sizeof(v))
			_exit(3);
	}
	free(a);
}

/* life: the read end of a pipe the parent holds open; at its EOF the
 * parent is gone and so goes the child (a timed-out test leaves nothing). */
static void crash_child_run(const char *dir, int fd, int life, unsigned base)
{
	sconify_error_t err = NULL;
	sc_queue *q = NULL;
	if (sc_queue_open(dir, &q, &err) < 0)
		_exit(2);
	crash_child c = {fd, base, 0};
	for (;;) {
		while (c.inflight < 32) {
			char digest[80], delivery[32];
			snprintf(digest, sizeof(digest), "sha256:%064u", c.n);
			snprintf(delivery, sizeof(delivery), "delivery-%u", c.n);
			sc_job_new j = job_new("rule-1", digest);
			crash_arg *a = xmalloc(sizeof(*a));
			*a = (crash_arg){&c, c.n};
			c.n++;
			c.inflight++;
			sc_queue_accept_async(q, SC_SOURCE_GITHUB, delivery, &j, 1, T0, WINDOW_S,
			                      crash_accepted, a);
		}
		struct pollfd p[2] = {{.fd = sc_queue_fd(q), .events = POLLIN},
		                      {.fd = life, .events = POLLIN}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			_exit(4);
		if (p[1].revents)
			_exit(5);
		sc_queue_complete(q);
	}
}

START_TEST(kill_9_loses_no_acknowledged_delivery)
{
	cleanup_free char *dir = sc_test_tmpdir();
	srandom((unsigned)getpid());
	enum { ROUNDS = 6 };
	size_t total = 0;
	for (unsigned round = 0; round < ROUNDS; round++) {
		int p[2], life[2];
		ck_assert_int_eq(pipe(p), 0);
		ck_assert_int_eq(pipe(life), 0);
		unsigned base = round * 1000000u;
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(p[0]);
			close(life[1]);
			crash_child_run(dir, p[1], life[0], base);
		}
		close(p[1]);
		close(life[0]);
		/* A random moment: after a random number of acknowledgements,
		 * plus a random pause. */
		unsigned want = 1 + (unsigned)(random() % 400);
		unsigned *acked = xcalloc(want, sizeof(*acked));
		size_t n = 0;
		while (n < want) {
			uint32_t v;
			ssize_t r = read(p[0], &v, sizeof(v));
			ck_assert_int_eq(r, sizeof(v));
			acked[n++] = v;
		}
		usleep((useconds_t)(random() % 3000));
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		/* Acknowledgements written before the kill count too. */
		for (;;) {
			uint32_t v;
			ssize_t r = read(p[0], &v, sizeof(v));
			if (r != sizeof(v))
				break;
			acked = xreallocarray(acked, n + 1, sizeof(*acked));
			acked[n++] = v;
		}
		close(p[0]);
		close(life[1]);
		int status = 0;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		              "child ended with status %d", status);

		sc_queue *q = open_queue(dir);
		cleanup_error sconify_error_t err = NULL;
		/* For each, at once (they commit in a few batches): the delivery
		 * id is remembered, so a redelivery is a replay; and the job
		 * exists, so without the id the push is a repeat. */
		result *replay = xcalloc(n, sizeof(*replay)), *repeat = xcalloc(n, sizeof(*repeat));
		for (size_t i = 0; i < n; i++) {
			char digest[80], delivery[32];
			snprintf(digest, sizeof(digest), "sha256:%064u", acked[i]);
			snprintf(delivery, sizeof(delivery), "delivery-%u", acked[i]);
			sc_job_new j = job_new("rule-1", digest);
			sc_queue_accept_async(q, SC_SOURCE_GITHUB, delivery, &j, 1, T0, WINDOW_S, accepted_cb,
			                      &replay[i]);
			sc_queue_accept_async(q, SC_SOURCE_GITHUB, NULL, &j, 1, T0, WINDOW_S, accepted_cb,
			                      &repeat[i]);
		}
		for (size_t i = 0; i < n; i++) {
			wait_for(q, &replay[i]);
			wait_for(q, &repeat[i]);
			ck_assert_ptr_null(replay[i].err);
			ck_assert_ptr_null(repeat[i].err);
			ck_assert_msg(replay[i].r.replayed, "acknowledged delivery %u lost its id", acked[i]);
			ck_assert_msg(repeat[i].r.n_repeats == 1, "acknowledged delivery %u lost its job",
			              acked[i]);
		}
		free(replay);
		free(repeat);
		size_t counts[SC_JOB__N];
		ck_assert_ok(sc_queue_counts(q, counts, &err), err);
		ck_assert_uint_ge(counts[SC_JOB_QUEUED], total + n);
		total = counts[SC_JOB_QUEUED];
		sc_queue_free(q);
		free(acked);
	}
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

static Suite *queue_suite(void)
{
	Suite *s = suite_create("serve-queue");
	TCase *tc = tcase_create("queue");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, accept_creates_jobs_and_reports_them);
	tcase_add_test(tc, accept_converts_a_rule_digest_pair_once);
	tcase_add_test(tc, accept_refuses_a_replayed_delivery_and_writes_nothing);
	tcase_add_test(tc, accept_forgets_delivery_ids_past_the_window);
	tcase_add_test(tc, accept_refuses_an_overlong_delivery_id);
	tcase_add_test(tc, job_runs_and_succeeds_with_outputs);
	tcase_add_test(tc, job_fails_with_retry_then_for_good);
	tcase_add_test(tc, job_fail_caps_the_error_at_4_kib_on_a_character);
	tcase_add_test(tc, job_requeue_gives_the_attempt_back);
	tcase_add_test(tc, runnable_list_and_counts_follow_the_jobs);
	tcase_add_test(tc, queue_reads_use_indexes);
	tcase_add_test(tc, open_requeues_jobs_left_running);
	tcase_add_test(tc, free_commits_what_is_queued);
	tcase_add_test(tc, open_refuses_a_newer_schema);
	tcase_add_test(tc, kill_9_loses_no_acknowledged_delivery);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(queue_suite());
}
