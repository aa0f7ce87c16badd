/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/xalloc.h"
#include "store/writer.h"
#include "support.h"

/* ---- helpers ---- */

static sqlite3 *open_db(const char *dir)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *path = sc_path_join(dir, "t.db");
	sqlite3 *db = NULL;
	ck_assert_ok(sc_store_open(path, 0, &db, &err), err);
	ck_assert_ok(sc_store_exec(db, "CREATE TABLE IF NOT EXISTS t(x INTEGER PRIMARY KEY)", &err), err);
	return db;
}

static long long query_int(sqlite3 *db, const char *sql)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_stmt sqlite3_stmt *st = NULL;
	ck_assert_ok(sc_store_prepare(db, sql, &st, &err), err);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	return sqlite3_column_int64(st, 0);
}

/* One write: inserts x (unless x < 0), then fails when fail is set;
 * the first of a test may block until the test lets it go. */
typedef struct {
	int x;
	bool fail;
	int block_in, started_out; /* >= 0: tell started, then wait for a byte */
	int *order;                /* where done appends its index */
	size_t *n_order;
	size_t index;
	char *error; /* the error done got, or NULL */
	bool done;
} wr;

static int apply_insert(sqlite3 *db, void *arg, sconify_error_t *err)
{
	wr *w = arg;
	if (w->started_out >= 0) {
		char c = 1;
		ck_assert_int_eq(write(w->started_out, &c, 1), 1);
		ck_assert_int_eq(read(w->block_in, &c, 1), 1);
	}
	if (w->x >= 0) {
		cleanup_stmt sqlite3_stmt *st = NULL;
		if (sc_store_prepare(db, "INSERT INTO t(x) VALUES (?)", &st, err) < 0)
			return -1;
		sqlite3_bind_int(st, 1, w->x);
		if (sc_store_run(st, "inserting", err) < 0)
			return -1;
	}
	if (w->fail)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "write %d refused on purpose", w->x);
	return 0;
}

static void done_record(void *arg, sconify_error_t err)
{
	wr *w = arg;
	ck_assert(!w->done);
	w->done = true;
	if (err)
		w->error = xstrdup(sconify_error_message(err));
	if (w->order)
		w->order[(*w->n_order)++] = (int)w->index;
}

static void new_wr(wr *w, int x)
{
	*w = (wr){.x = x, .block_in = -1, .started_out = -1};
}

/* Waits on the writer's fd and completes until every write has its done. */
static void wait_done(sc_store_writer *sw, wr *ws, size_t n)
{
	for (;;) {
		bool all = true;
		for (size_t i = 0; i < n; i++)
			all = all && ws[i].done;
		if (all)
			return;
		struct pollfd p = {.fd = sc_store_writer_fd(sw), .events = POLLIN};
		ck_assert_int_ge(poll(&p, 1, -1), 0);
		sc_store_writer_complete(sw);
	}
}

/* A first write that holds the writer inside its transaction until
 * release() is called: whatever is submitted meanwhile is one batch. */
typedef struct {
	int block[2], started[2];
} gate;

static void gate_open(gate *g, wr *first)
{
	ck_assert_int_eq(pipe(g->block), 0);
	ck_assert_int_eq(pipe(g->started), 0);
	first->block_in = g->block[0];
	first->started_out = g->started[1];
}

static void gate_wait_started(gate *g)
{
	char c;
	ck_assert_int_eq(read(g->started[0], &c, 1), 1);
}

static void gate_release(gate *g)
{
	char c = 1;
	ck_assert_int_eq(write(g->block[1], &c, 1), 1);
}

static void gate_close(gate *g)
{
	for (int i = 0; i < 2; i++)
		close(g->block[i]), close(g->started[i]);
}

/* ---- connections ---- */

START_TEST(open_sets_wal_full_and_a_busy_timeout)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_sqlite sqlite3 *db = open_db(dir);
	cleanup_error sconify_error_t err = NULL;
	cleanup_stmt sqlite3_stmt *st = NULL;
	ck_assert_ok(sc_store_prepare(db, "PRAGMA journal_mode", &st, &err), err);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
	ck_assert_int_eq(query_int(db, "PRAGMA synchronous"), 2); /* FULL */
	ck_assert_int_gt(query_int(db, "PRAGMA busy_timeout"), 0);
	ck_assert_int_eq(query_int(db, "PRAGMA foreign_keys"), 1);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(read_only_connection_sees_commits_and_refuses_writes)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_sqlite sqlite3 *db = open_db(dir);
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *path = sc_path_join(dir, "t.db");
	cleanup_sqlite sqlite3 *ro = NULL;
	ck_assert_ok(sc_store_open(path, SC_STORE_READ_ONLY, &ro, &err), err);
	ck_assert_ok(sc_store_exec(db, "INSERT INTO t(x) VALUES (7)", &err), err);
	ck_assert_int_eq(query_int(ro, "SELECT x FROM t"), 7);
	int r = sc_store_exec(ro, "INSERT INTO t(x) VALUES (8)", &err);
	ck_assert_fails(r, err, SCONIFY_ERR_IO, "readonly");
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(open_names_the_file_it_cannot_open)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_free char *path = sc_path_join(dir, "missing/t.db");
	cleanup_error sconify_error_t err = NULL;
	sqlite3 *db = NULL;
	int r = sc_store_open(path, 0, &db, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_IO, "missing/t.db'");
	ck_assert_ptr_null(db);
	sconify_error_free(&err);
	/* Read-only never creates the database. */
	cleanup_free char *path2 = sc_path_join(dir, "none.db");
	r = sc_store_open(path2, SC_STORE_READ_ONLY, &db, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_IO, "none.db'");
	ck_assert(!sc_path_exists(path2));
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

/* ---- the writer ---- */

START_TEST(writer_batches_what_queued_during_a_commit)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_sqlite sqlite3 *db = open_db(dir);
	cleanup_error sconify_error_t err = NULL;
	sc_store_writer *sw = NULL;
	ck_assert_ok(sc_store_writer_start(db, &sw, &err), err);
	enum { N = 40 };
	wr ws[N + 1];
	gate g;
	new_wr(&ws[0], 0);
	gate_open(&g, &ws[0]);
	sc_store_writer_submit(sw, apply_insert, done_record, &ws[0]);
	gate_wait_started(&g);
	for (int i = 1; i <= N; i++) {
		new_wr(&ws[i], i);
		sc_store_writer_submit(sw, apply_insert, done_record, &ws[i]);
	}
	sc_store_stats st;
	sc_store_writer_stats(sw, &st);
	ck_assert_uint_eq(st.submitted, N + 1);
	ck_assert_uint_eq(st.pending, N + 1);
	gate_release(&g);
	wait_done(sw, ws, N + 1);
	sc_store_writer_stats(sw, &st);
	/* The first alone, then the N that queued behind it in one. */
	ck_assert_uint_eq(st.transactions, 2);
	ck_assert_uint_eq(st.max_batch, N);
	ck_assert_uint_eq(st.writes, N + 1);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.pending, 0);
	for (int i = 0; i <= N; i++)
		ck_assert_ptr_null(ws[i].error);
	sc_store_writer_free(sw);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), N + 1);
	gate_close(&g);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(writer_failing_apply_rolls_back_only_its_own_savepoint)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_sqlite sqlite3 *db = open_db(dir);
	cleanup_error sconify_error_t err = NULL;
	sc_store_writer *sw = NULL;
	ck_assert_ok(sc_store_writer_start(db, &sw, &err), err);
	wr ws[5];
	gate g;
	new_wr(&ws[0], 1);
	gate_open(&g, &ws[0]);
	sc_store_writer_submit(sw, apply_insert, done_record, &ws[0]);
	gate_wait_started(&g);
	new_wr(&ws[1], 2);
	new_wr(&ws[2], 3);
	ws[2].fail = true; /* inserted 3, then failed: 3 must not stay */
	new_wr(&ws[3], 2); /* a constraint error: the duplicate of 2 */
	new_wr(&ws[4], 4);
	for (int i = 1; i < 5; i++)
		sc_store_writer_submit(sw, apply_insert, done_record, &ws[i]);
	gate_release(&g);
	wait_done(sw, ws, 5);
	ck_assert_ptr_null(ws[0].error);
	ck_assert_ptr_null(ws[1].error);
	ck_assert_str_eq(ws[2].error, "write 3 refused on purpose");
	ck_assert_ptr_nonnull(strstr(ws[3].error, "UNIQUE"));
	ck_assert_ptr_null(ws[4].error);
	sc_store_stats st;
	sc_store_writer_stats(sw, &st);
	ck_assert_uint_eq(st.transactions, 2);
	ck_assert_uint_eq(st.max_batch, 4);
	ck_assert_uint_eq(st.failed, 2);
	sc_store_writer_free(sw);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), 3);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t WHERE x IN (1, 2, 4)"), 3);
	for (int i = 0; i < 5; i++)
		free(ws[i].error);
	gate_close(&g);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

static int apply_fail_silently(sqlite3 *db, void *arg, sconify_error_t *err)
{
	(void)db, (void)arg, (void)err;
	return -1;
}

START_TEST(writer_failure_without_a_message_still_reports_one)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_sqlite sqlite3 *db = open_db(dir);
	cleanup_error sconify_error_t err = NULL;
	sc_store_writer *sw = NULL;
	ck_assert_ok(sc_store_writer_start(db, &sw, &err), err);
	wr w;
	new_wr(&w, -1);
	sc_store_writer_submit(sw, apply_fail_silently, done_record, &w);
	wait_done(sw, &w, 1);
	ck_assert_str_eq(w.error, "store: a write failed");
	free(w.error);
	sc_store_writer_free(sw);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

/* A done callback that submits another write: completions run outside the
 * writer's lock. */
typedef struct {
	sc_store_writer *sw;
	wr *next;
} chain;

static void done_then_submit(void *arg, sconify_error_t err)
{
	chain *c = arg;
	ck_assert_ptr_null(err);
	sc_store_writer_submit(c->sw, apply_insert, done_record, c->next);
}

static int apply_nothing(sqlite3 *db, void *arg, sconify_error_t *err)
{
	(void)db, (void)arg, (void)err;
	return 0;
}

START_TEST(writer_runs_completions_in_submission_order)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_sqlite sqlite3 *db = open_db(dir);
	cleanup_error sconify_error_t err = NULL;
	sc_store_writer *sw = NULL;
	ck_assert_ok(sc_store_writer_start(db, &sw, &err), err);
	enum { N = 200 };
	wr ws[N];
	int order[N];
	size_t n_order = 0;
	gate g;
	for (int i = 0; i < N; i++) {
		new_wr(&ws[i], i);
		ws[i].fail = i % 7 == 3; /* failures complete in their place too */
		ws[i].order = order;
		ws[i].n_order = &n_order;
		ws[i].index = (size_t)i;
	}
	gate_open(&g, &ws[0]);
	sc_store_writer_submit(sw, apply_insert, done_record, &ws[0]);
	gate_wait_started(&g);
	/* Several batches: submit in waves while completing. */
	for (int i = 1; i < N; i++) {
		sc_store_writer_submit(sw, apply_insert, done_record, &ws[i]);
		if (i == 10)
			gate_release(&g);
		if (i % 17 == 0)
			sc_store_writer_complete(sw);
	}
	wait_done(sw, ws, N);
	ck_assert_uint_eq(n_order, N);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(order[i], i);
		ck_assert(ws[i].fail == (ws[i].error != NULL));
		free(ws[i].error);
	}
	/* A completion may submit. */
	wr last;
	new_wr(&last, 100000);
	chain c = {sw, &last};
	sc_store_writer_submit(sw, apply_nothing, done_then_submit, &c);
	wait_done(sw, &last, 1);
	ck_assert_ptr_null(last.error);
	sc_store_writer_free(sw);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), N - (N + 3) / 7 + 1);
	gate_close(&g);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(writer_stop_commits_the_queue_and_runs_completions)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_sqlite sqlite3 *db = open_db(dir);
	cleanup_error sconify_error_t err = NULL;
	sc_store_writer *sw = NULL;
	ck_assert_ok(sc_store_writer_start(db, &sw, &err), err);
	enum { N = 300 };
	wr *ws = xcalloc(N, sizeof(*ws));
	gate g;
	new_wr(&ws[0], 0);
	gate_open(&g, &ws[0]);
	sc_store_writer_submit(sw, apply_insert, done_record, &ws[0]);
	gate_wait_started(&g);
	for (int i = 1; i < N; i++) {
		new_wr(&ws[i], i);
		sc_store_writer_submit(sw, apply_insert, done_record, &ws[i]);
	}
	gate_release(&g);
	/* No complete(): stop must commit and complete everything. */
	sc_store_writer_stop(sw);
	for (int i = 0; i < N; i++) {
		ck_assert(ws[i].done);
		ck_assert_ptr_null(ws[i].error);
	}
	sc_store_stats st;
	sc_store_writer_stats(sw, &st);
	ck_assert_uint_eq(st.writes, N);
	ck_assert_uint_eq(st.pending, 0);
	/* The connection is the caller's again, outside any transaction. */
	ck_assert(sqlite3_get_autocommit(db));
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), N);
	sc_store_writer_stop(sw); /* idempotent */
	sc_store_writer_free(sw);
	free(ws);
	gate_close(&g);
	/* And it is on disk: another connection reads it. */
	cleanup_sqlite sqlite3 *again = open_db(dir);
	ck_assert_int_eq(query_int(again, "SELECT count(*) FROM t"), N);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

START_TEST(writer_refuses_a_connection_inside_a_transaction)
{
	cleanup_free char *dir = sc_test_tmpdir();
	cleanup_sqlite sqlite3 *db = open_db(dir);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_store_exec(db, "BEGIN", &err), err);
	sc_store_writer *sw = NULL;
	int r = sc_store_writer_start(db, &sw, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_USAGE, "outside a transaction");
	ck_assert_ptr_null(sw);
	sconify_error_free(&err);
	ck_assert_ok(sc_store_exec(db, "ROLLBACK", &err), err);
	sc_test_tmpdir_cleanup(steal_pointer(&dir));
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, open_sets_wal_full_and_a_busy_timeout);
	tcase_add_test(tc, read_only_connection_sees_commits_and_refuses_writes);
	tcase_add_test(tc, open_names_the_file_it_cannot_open);
	tcase_add_test(tc, writer_batches_what_queued_during_a_commit);
	tcase_add_test(tc, writer_failing_apply_rolls_back_only_its_own_savepoint);
	tcase_add_test(tc, writer_failure_without_a_message_still_reports_one);
	tcase_add_test(tc, writer_runs_completions_in_submission_order);
	tcase_add_test(tc, writer_stop_commits_the_queue_and_runs_completions);
	tcase_add_test(tc, writer_refuses_a_connection_inside_a_transaction);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(store_suite());
}
