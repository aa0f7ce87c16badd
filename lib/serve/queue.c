/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The durable job queue (queue.h). Tables:
 *   jobs        one row per (rule, source digest), UNIQUE; `state' holds
 *               sc_job_state's numbers (they are the file format);
 *   job_counts  jobs per state, kept by triggers, so counts are one read
 *               however many jobs there are;
 *   deliveries  (source, delivery id) seen within the replay window;
 *   outputs     digests the service's jobs produced.
 * Indexes: jobs_due (state, next_run_ms, id: runnable and next_run read the
 * head of the QUEUED part; not a partial index, which the planner passes
 * over for jobs_state without ANALYZE statistics), jobs_state (state, id: listing by state, newest first),
 * deliveries_seen (pruning reads only what it deletes).
 *
 * Two connections: the writer thread's (lib/store), and the loop's, which
 * only reads; each of them keeps its prepared statements.
 */
#include "serve/queue.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fsutil.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "store/writer.h"

#define SCHEMA_VERSION 1
#define MAX_ERROR_BYTES 4096
#define MAX_DELIVERY_ID 256

static const char *const state_names[SC_JOB__N] = {"queued", "running", "done", "failed"};

const char *sc_job_state_name(sc_job_state s)
{
	return (unsigned)s < SC_JOB__N ? state_names[s] : "unknown";
}

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS jobs("
        " id INTEGER PRIMARY KEY,"
        " rule TEXT NOT NULL, source INTEGER NOT NULL,"
        " registry TEXT NOT NULL, repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,"
        " destination TEXT NOT NULL, session TEXT,"
        " state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 1,"
        " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, next_run_ms INTEGER NOT NULL,"
        " started_ms INTEGER NOT NULL DEFAULT 0, finished_ms INTEGER NOT NULL DEFAULT 0,"
        " last_error TEXT, result TEXT,"
        " UNIQUE(rule, digest));"
        "CREATE INDEX IF NOT EXISTS jobs_due ON jobs(state, next_run_ms, id);"
        "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);"
        "CREATE INDEX IF NOT EXISTS jobs_destination ON jobs(destination);"
        "CREATE TABLE IF NOT EXISTS job_counts(state INTEGER PRIMARY KEY, n INTEGER NOT NULL);"
        "INSERT OR IGNORE INTO job_counts(state, n) VALUES (0, 0), (1, 0), (2, 0), (3, 0);"
        "CREATE TRIGGER IF NOT EXISTS jobs_counts_insert AFTER INSERT ON jobs BEGIN"
        " UPDATE job_counts SET n = n + 1 WHERE state = NEW.state; END;"
        "CREATE TRIGGER IF NOT EXISTS jobs_counts_update AFTER UPDATE OF state ON jobs"
        " WHEN OLD.state <> NEW.state BEGIN"
        " UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;"
        " UPDATE job_counts SET n = n + 1 WHERE state = NEW.state; END;"
        "CREATE TRIGGER IF NOT EXISTS jobs_counts_delete AFTER DELETE ON jobs BEGIN"
        " UPDATE job_counts SET n = n - 1 WHERE state = OLD.state; END;"
        "CREATE TABLE IF NOT EXISTS deliveries(source INTEGER NOT NULL, id TEXT NOT NULL,"
        " seen_ms INTEGER NOT NULL, PRIMARY KEY(source, id)) WITHOUT ROWID;"
        "CREATE INDEX IF NOT EXISTS deliveries_seen ON deliveries(seen_ms);"
        "CREATE TABLE IF NOT EXISTS outputs(digest TEXT PRIMARY KEY, job INTEGER NOT NULL) WITHOUT ROWID;";

#define JOB_COLUMNS                                                                                    \
	"id, rule, source, registry, repository, tag, digest, destination, session, state, attempts, " \
	"deliveries, created_ms, updated_ms, next_run_ms, started_ms, finished_ms, last_error, result"

/* The writer thread's statements (on wdb). */
enum {
	W_PRUNE,
	W_DELIVERY,
	W_UPSERT,
	W_STATE_OF,
	W_START,
	W_SUCCEED,
	W_OUTPUT,
	W_FAIL,
	W_REQUEUE,
	W__N,
};
static const char *const w_sql[W__N] = {
        [W_PRUNE] = "DELETE FROM deliveries WHERE seen_ms < ?1",
        [W_DELIVERY] =
                "INSERT INTO deliveries(source, id, seen_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        [W_UPSERT] = "INSERT INTO jobs(rule, source, registry, repository, tag, digest, destination, session,"
                     " state, created_ms, updated_ms, next_run_ms)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?9, ?9)"
                     " ON CONFLICT(rule, digest) DO UPDATE SET deliveries = deliveries + 1, updated_ms = ?9"
                     " RETURNING id, deliveries",
        [W_STATE_OF] = "SELECT state FROM jobs WHERE id = ?1",
        [W_START] = "UPDATE jobs SET state = 1, attempts = attempts + 1, started_ms = ?2, updated_ms = ?2,"
                    " finished_ms = 0 WHERE id = ?1 AND state = 0",
        [W_SUCCEED] = "UPDATE jobs SET state = 2, result = ?2, finished_ms = ?3, updated_ms = ?3"
                      " WHERE id = ?1 AND state = 1",
        [W_OUTPUT] = "INSERT INTO outputs(digest, job) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        [W_FAIL] = "UPDATE jobs SET state = CASE WHEN ?4 >= 0 THEN 0 ELSE 3 END,"
                   " next_run_ms = CASE WHEN ?4 >= 0 THEN ?4 ELSE next_run_ms END,"
                   " last_error = ?2, finished_ms = ?3, updated_ms = ?3 WHERE id = ?1 AND state = 1",
        [W_REQUEUE] = "UPDATE jobs SET state = 0, attempts = max(attempts - 1, 0), next_run_ms = ?2,"
                      " updated_ms = ?2, started_ms = 0 WHERE id = ?1 AND state = 1",
};

/* The loop's statements (on rdb). */
enum {
	R_GET,
	R_LIST,
	R_LIST_STATE,
	R_RUNNABLE,
	R_NEXT_RUN,
	R_COUNTS,
	R_IS_OUTPUT,
	R_IS_DESTINATION,
	R__N,
};
static const char *const r_sql[R__N] = {
        [R_GET] = "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1",
        [R_LIST] = "SELECT " JOB_COLUMNS " FROM jobs WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        [R_LIST_STATE] =
                "SELECT " JOB_COLUMNS " FROM jobs WHERE state = ?3 AND id < ?1 ORDER BY id DESC LIMIT ?2",
        [R_RUNNABLE] = "SELECT " JOB_COLUMNS " FROM jobs WHERE state = 0 AND next_run_ms <= ?1"
                       " ORDER BY next_run_ms, id LIMIT ?2",
        [R_NEXT_RUN] = "SELECT next_run_ms FROM jobs WHERE state = 0 ORDER BY next_run_ms LIMIT 1",
        [R_COUNTS] = "SELECT state, n FROM job_counts",
        [R_IS_OUTPUT] = "SELECT 1 FROM outputs WHERE digest = ?1",
        [R_IS_DESTINATION] = "SELECT 1 FROM jobs WHERE destination = ?1 LIMIT 1",
};

struct sc_queue {
	sqlite3 *wdb; /* the writer thread's */
	sqlite3 *rdb; /* the loop's: reads only */
	sc_store_writer *writer;
	sqlite3_stmt *w[W__N];
	sqlite3_stmt *r[R__N];
};

/* ---- jobs ---- */

void sc_job_free(sc_job *j)
{
	if (j == NULL)
		return;
	free(j->rule);
	free(j->registry);
	free(j->repository);
	free(j->tag);
	free(j->digest);
	free(j->destination);
	free(j->session);
	free(j->last_error);
	free(j->result);
	free(j);
}

void sc_jobs_free(sc_job **jobs, size_t n)
{
	if (jobs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		sc_job_free(jobs[i]);
	free(jobs);
}

static char *column_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? xstrndup((const char *)t, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

static int job_from_row(sqlite3_stmt *st, sc_job **ret, sconify_error_t *err)
{
	cleanup_job sc_job *j = xzalloc(sizeof(*j));
	j->id = sqlite3_column_int64(st, 0);
	sqlite3_int64 source = sqlite3_column_int64(st, 2), state = sqlite3_column_int64(st, 9);
	if (source < 0 || source >= SC_SOURCE__N || state < 0 || state >= SC_JOB__N)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
		                "queue: job %lld: stored source or state is invalid", (long long)j->id);
	j->rule = column_dup(st, 1);
	j->source = (sc_source_kind)source;
	j->registry = column_dup(st, 3);
	j->repository = column_dup(st, 4);
	j->tag = column_dup(st, 5);
	j->digest = column_dup(st, 6);
	j->destination = column_dup(st, 7);
	j->session = column_dup(st, 8);
	j->state = (sc_job_state)state;
	j->attempts = (unsigned)sqlite3_column_int64(st, 10);
	j->deliveries = (unsigned)sqlite3_column_int64(st, 11);
	j->created_ms = sqlite3_column_int64(st, 12);
	j->updated_ms = sqlite3_column_int64(st, 13);
	j->next_run_ms = sqlite3_column_int64(st, 14);
	j->started_ms = sqlite3_column_int64(st, 15);
	j->finished_ms = sqlite3_column_int64(st, 16);
	j->last_error = column_dup(st, 17);
	j->result = column_dup(st, 18);
	if (!j->rule || !j->registry || !j->repository || !j->tag || !j->digest || !j->destination)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "queue: job %lld: stored row is incomplete",
		                (long long)j->id);
	*ret = steal_pointer(&j);
	return 0;
}

/* A cached statement goes back to its start when the scope ends: an
 * unfinished read would hold its snapshot (and the WAL) open. */
static void stmt_resetp(sqlite3_stmt **st)
{
	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
	}
}
#define cleanup_reset _cleanup_(stmt_resetp)

static int read_jobs(sqlite3_stmt *st, size_t limit, sc_job ***ret, size_t *ret_n, sconify_error_t *err)
{
	sc_job **jobs = NULL;
	size_t n = 0, cap = 0;
	int r = SQLITE_DONE;
	while (n < limit && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			jobs = xreallocarray(jobs, cap, sizeof(*jobs));
		}
		if (job_from_row(st, &jobs[n], err) < 0) {
			sc_jobs_free(jobs, n);
			return -1;
		}
		n++;
	}
	if (n < limit && r != SQLITE_DONE) {
		sc_jobs_free(jobs, n);
		return sc_store_error(sqlite3_db_handle(st), "reading jobs", err);
	}
	*ret = jobs;
	*ret_n = n;
	return 0;
}

static int bind_limit(size_t limit)
{
	return limit > INT_MAX ? INT_MAX : (int)limit;
}

/* ---- open, close ---- */

void sc_queue_free(sc_queue *q)
{
	if (q == NULL)
		return;
	sc_store_writer_free(q->writer);
	for (size_t i = 0; i < W__N; i++)
		sqlite3_finalize(q->w[i]);
	for (size_t i = 0; i < R__N; i++)
		sqlite3_finalize(q->r[i]);
	sqlite3_close(q->rdb);
	sqlite3_close(q->wdb);
	free(q);
}

/* Inside the opening transaction. */
static int create_schema_in(sqlite3 *db, int64_t now_ms, sconify_error_t *err)
{
	cleanup_stmt sqlite3_stmt *ver = NULL;
	if (sc_store_prepare(db, "PRAGMA user_version", &ver, err) < 0)
		return -1;
	if (sqlite3_step(ver) != SQLITE_ROW)
		return sc_store_error(db, "reading the schema version", err);
	int version = sqlite3_column_int(ver, 0);
	if (version > SCHEMA_VERSION)
		return sc_error(
		        err, SCONIFY_ERR_UNSUPPORTED, 0,
		        "queue.db has schema version %d: written by a newer sconify (this one knows %d)",
		        version, SCHEMA_VERSION);
	if (sc_store_exec(db, schema, err) < 0)
		return -1;
	if (version < SCHEMA_VERSION) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
		if (sc_store_exec(db, sql, err) < 0)
			return -1;
	}
	/* A process that died left its running jobs RUNNING: they resume.
	 * The run counts as an attempt (it may be what killed the process). */
	cleanup_stmt sqlite3_stmt *rec = NULL;
	if (sc_store_prepare(db, "UPDATE jobs SET state = 0, updated_ms = ?1 WHERE state = 1", &rec, err) < 0)
		return -1;
	sqlite3_bind_int64(rec, 1, now_ms);
	return sc_store_run(rec, "requeueing running jobs", err);
}

static int create_schema(sqlite3 *db, int64_t now_ms, sconify_error_t *err)
{
	if (sc_store_exec(db, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if (create_schema_in(db, now_ms, err) < 0 || sc_store_exec(db, "COMMIT", err) < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sc_queue_open(const char *state_dir, sc_queue **ret, sconify_error_t *err)
{
	cleanup_free char *qdir = sc_quote(state_dir, SC_QUOTE_MAX);
	if (sc_mkdir_p(state_dir, 0700, err) < 0)
		return sc_error_wrap(err, "queue: state directory `%s'", qdir);
	cleanup_free char *path = sc_path_join(state_dir, "queue.db");
	_cleanup_(sc_queue_freep) sc_queue *q = xzalloc(sizeof(*q));
	if (sc_store_open(path, 0, &q->wdb, err) < 0 || create_schema(q->wdb, wall_ms(), err) < 0 ||
	    sc_store_open(path, SC_STORE_READ_ONLY, &q->rdb, err) < 0)
		return sc_error_wrap(err, "opening the queue in `%s'", qdir);
	for (size_t i = 0; i < W__N; i++)
		if (sc_store_prepare(q->wdb, w_sql[i], &q->w[i], err) < 0)
			return sc_error_wrap(err, "opening the queue in `%s'", qdir);
	for (size_t i = 0; i < R__N; i++)
		if (sc_store_prepare(q->rdb, r_sql[i], &q->r[i], err) < 0)
			return sc_error_wrap(err, "opening the queue in `%s'", qdir);
	if (sc_store_writer_start(q->wdb, &q->writer, err) < 0)
		return sc_error_wrap(err, "opening the queue in `%s'", qdir);
	*ret = steal_pointer(&q);
	return 0;
}

int sc_queue_fd(sc_queue *q)
{
	return sc_store_writer_fd(q->writer);
}

void sc_queue_complete(sc_queue *q)
{
	sc_store_writer_complete(q->writer);
}

/* ---- reads ---- */

int sc_queue_get(sc_queue *q, int64_t id, sc_job **ret, sconify_error_t *err)
{
	cleanup_reset sqlite3_stmt *st = q->r[R_GET];
	sqlite3_bind_int64(st, 1, id);
	int r = sqlite3_step(st);
	if (r == SQLITE_DONE)
		return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "job %lld not found", (long long)id);
	if (r != SQLITE_ROW)
		return sc_store_error(q->rdb, "reading a job", err);
	return job_from_row(st, ret, err);
}

int sc_queue_list(sc_queue *q, int state, int64_t before_id, size_t limit, sc_job ***ret, size_t *ret_n,
                  sconify_error_t *err)
{
	if (state >= SC_JOB__N)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "queue: no job state %d", state);
	cleanup_reset sqlite3_stmt *st = q->r[state < 0 ? R_LIST : R_LIST_STATE];
	sqlite3_bind_int64(st, 1, before_id > 0 ? before_id : INT64_MAX);
	sqlite3_bind_int(st, 2, bind_limit(limit));
	if (state >= 0)
		sqlite3_bind_int(st, 3, state);
	return read_jobs(st, limit, ret, ret_n, err);
}

int sc_queue_runnable(sc_queue *q, int64_t now_ms, size_t limit, sc_job ***ret, size_t *ret_n,
                      sconify_error_t *err)
{
	cleanup_reset sqlite3_stmt *st = q->r[R_RUNNABLE];
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int(st, 2, bind_limit(limit));
	return read_jobs(st, limit, ret, ret_n, err);
}

int sc_queue_next_run(sc_queue *q, int64_t *ret_ms, sconify_error_t *err)
{
	cleanup_reset sqlite3_stmt *st = q->r[R_NEXT_RUN];
	int r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		*ret_ms = -1;
		return 0;
	}
	if (r != SQLITE_ROW)
		return sc_store_error(q->rdb, "reading jobs", err);
	*ret_ms = sqlite3_column_int64(st, 0);
	return 0;
}

int sc_queue_counts(sc_queue *q, size_t ret_counts[SC_JOB__N], sconify_error_t *err)
{
	cleanup_reset sqlite3_stmt *st = q->r[R_COUNTS];
	size_t counts[SC_JOB__N] = {0};
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 s = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 1);
		if (s >= 0 && s < SC_JOB__N && n >= 0)
			counts[s] = (size_t)n;
	}
	if (r != SQLITE_DONE)
		return sc_store_error(q->rdb, "counting jobs", err);
	memcpy(ret_counts, counts, sizeof(counts));
	return 0;
}

/* Whether read statement which finds a row for key. */
static int row_exists(sc_queue *q, int which, const char *key, const char *what, bool *ret,
                      sconify_error_t *err)
{
	cleanup_reset sqlite3_stmt *st = q->r[which];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return sc_store_error(q->rdb, what, err);
	*ret = r == SQLITE_ROW;
	return 0;
}

int sc_queue_is_output(sc_queue *q, const char *digest, bool *ret, sconify_error_t *err)
{
	return row_exists(q, R_IS_OUTPUT, digest, "reading outputs", ret, err);
}

int sc_queue_is_destination(sc_queue *q, const char *reference, bool *ret, sconify_error_t *err)
{
	return row_exists(q, R_IS_DESTINATION, reference, "reading destinations", ret, err);
}

/* ---- writes ---- */

typedef enum { OP_ACCEPT, OP_START, OP_SUCCEED, OP_FAIL, OP_REQUEUE } op_kind;

typedef struct {
	sc_queue *q;
	op_kind kind;
	int64_t id, now_ms;
	/* accept */
	sc_source_kind source;
	char *delivery_id;
	sc_job_new *jobs; /* strings owned */
	size_t n_jobs;
	unsigned replay_window_s;
	sc_queue_accepted accepted;
	/* succeed, fail */
	char *text; /* result or error */
	char **outputs;
	size_t n_outputs;
	int64_t retry_at_ms;
	sc_queue_accept_fn accept_done;
	sc_queue_done_fn done;
	void *arg;
} op;

static void op_free(op *o)
{
	free(o->delivery_id);
	for (size_t i = 0; i < o->n_jobs; i++) {
		sc_job_new *j = &o->jobs[i];
		free((char *)j->rule), free((char *)j->registry), free((char *)j->repository);
		free((char *)j->tag), free((char *)j->digest), free((char *)j->destination);
		free((char *)j->session);
	}
	free(o->jobs);
	free(o->accepted.ids);
	free(o->text);
	for (size_t i = 0; i < o->n_outputs; i++)
		free(o->outputs[i]);
	free(o->outputs);
	free(o);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static sqlite3_stmt *wst(op *o, int which)
{
	return o->q->w[which];
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static int apply_accept(sqlite3 *db, op *o, sconify_error_t *err)
{
	int64_t window_ms = (int64_t)o->replay_window_s * 1000;
	sqlite3_stmt *st = wst(o, W_PRUNE);
	sqlite3_bind_int64(st, 1, o->now_ms - window_ms);
	if (sc_store_run(st, "forgetting old delivery ids", err) < 0)
		return -1;
	if (o->delivery_id) {
		if (strlen(o->delivery_id) > MAX_DELIVERY_ID)
			return sc_error(err, SCONIFY_ERR_LIMIT, 0, "delivery id longer than %d bytes",
			                MAX_DELIVERY_ID);
		st = wst(o, W_DELIVERY);
		sqlite3_bind_int(st, 1, (int)o->source);
		sqlite3_bind_text(st, 2, o->delivery_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, o->now_ms);
		int r = sc_store_run(st, "recording the delivery id", err);
		sqlite3_clear_bindings(st);
		if (r < 0)
			return -1;
		if (sqlite3_changes(db) == 0) {
			o->accepted.replayed = true;
			return 0;
		}
	}
	o->accepted.ids = xcalloc(o->n_jobs ? o->n_jobs : 1, sizeof(*o->accepted.ids));
	st = wst(o, W_UPSERT);
	for (size_t i = 0; i < o->n_jobs; i++) {
		const sc_job_new *j = &o->jobs[i];
		bind_text(st, 1, j->rule);
		sqlite3_bind_int(st, 2, (int)j->source);
		bind_text(st, 3, j->registry);
		bind_text(st, 4, j->repository);
		bind_text(st, 5, j->tag);
		bind_text(st, 6, j->digest);
		bind_text(st, 7, j->destination);
		bind_text(st, 8, j->session);
		sqlite3_bind_int64(st, 9, o->now_ms);
		int r = sqlite3_step(st);
		if (r != SQLITE_ROW) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return sc_store_error(db, "queueing a job", err);
		}
		o->accepted.ids[i] = sqlite3_column_int64(st, 0);
		if (sqlite3_column_int64(st, 1) == 1)
			o->accepted.n_new++;
		else
			o->accepted.n_repeats++;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	o->accepted.n = o->n_jobs;
	return 0;
}

/* Why a state change matched no row. */
static int not_in_state(sqlite3 *db, op *o, sc_job_state want, sconify_error_t *err)
{
	cleanup_reset sqlite3_stmt *st = wst(o, W_STATE_OF);
	sqlite3_bind_int64(st, 1, o->id);
	int r = sqlite3_step(st);
	if (r == SQLITE_DONE)
		return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "job %lld not found", (long long)o->id);
	if (r != SQLITE_ROW)
		return sc_store_error(db, "reading a job", err);
	return sc_error(err, SCONIFY_ERR_INVALID, 0, "job %lld is %s, not %s", (long long)o->id,
	                sc_job_state_name((sc_job_state)sqlite3_column_int(st, 0)), sc_job_state_name(want));
}

/* Runs a bound UPDATE of the job; checks it changed the job. */
static int update_job(sqlite3 *db, op *o, sqlite3_stmt *st, sc_job_state want, const char *what,
                      sconify_error_t *err)
{
	int r = sc_store_run(st, what, err);
	sqlite3_clear_bindings(st);
	if (r < 0)
		return -1;
	if (sqlite3_changes(db) == 0)
		return not_in_state(db, o, want, err);
	return 0;
}

static int apply_op(sqlite3 *db, void *arg, sconify_error_t *err)
{
	op *o = arg;
	sqlite3_stmt *st;
	switch (o->kind) {
	case OP_ACCEPT:
		return apply_accept(db, o, err);
	case OP_START:
		st = wst(o, W_START);
		sqlite3_bind_int64(st, 1, o->id);
		sqlite3_bind_int64(st, 2, o->now_ms);
		return update_job(db, o, st, SC_JOB_QUEUED, "starting a job", err);
	case OP_SUCCEED:
		st = wst(o, W_SUCCEED);
		sqlite3_bind_int64(st, 1, o->id);
		bind_text(st, 2, o->text);
		sqlite3_bind_int64(st, 3, o->now_ms);
		if (update_job(db, o, st, SC_JOB_RUNNING, "finishing a job", err) < 0)
			return -1;
		st = wst(o, W_OUTPUT);
		for (size_t i = 0; i < o->n_outputs; i++) {
			sqlite3_bind_text(st, 1, o->outputs[i], -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, o->id);
			int r = sc_store_run(st, "recording an output", err);
			sqlite3_clear_bindings(st);
			if (r < 0)
				return -1;
		}
		return 0;
	case OP_FAIL:
		st = wst(o, W_FAIL);
		sqlite3_bind_int64(st, 1, o->id);
		bind_text(st, 2, o->text);
		sqlite3_bind_int64(st, 3, o->now_ms);
		sqlite3_bind_int64(st, 4, o->retry_at_ms);
		return update_job(db, o, st, SC_JOB_RUNNING, "failing a job", err);
	case OP_REQUEUE:
		st = wst(o, W_REQUEUE);
		sqlite3_bind_int64(st, 1, o->id);
		sqlite3_bind_int64(st, 2, o->now_ms);
		return update_job(db, o, st, SC_JOB_RUNNING, "requeueing a job", err);
	}
	abort();
}

static void op_done(void *arg, sconify_error_t err)
{
	op *o = arg;
	if (o->kind == OP_ACCEPT) {
		if (o->accept_done)
			o->accept_done(o->arg, err, err ? NULL : &o->accepted);
	} else if (o->done) {
		o->done(o->arg, err);
	}
	op_free(o);
}

static op *op_new(sc_queue *q, op_kind kind, int64_t id, int64_t now_ms)
{
	op *o = xzalloc(sizeof(*o));
	o->q = q;
	o->kind = kind;
	o->id = id;
	o->now_ms = now_ms;
	return o;
}

void sc_queue_accept_async(sc_queue *q, sc_source_kind source, const char *delivery_id,
                           const sc_job_new *jobs, size_t n, int64_t now_ms, unsigned replay_window_s,
                           sc_queue_accept_fn done, void *arg)
{
	op *o = op_new(q, OP_ACCEPT, 0, now_ms);
	o->source = source;
	o->delivery_id = dup_or_null(delivery_id);
	o->replay_window_s = replay_window_s;
	o->jobs = xcalloc(n ? n : 1, sizeof(*o->jobs));
	o->n_jobs = n;
	for (size_t i = 0; i < n; i++)
		o->jobs[i] = (sc_job_new){
		        .rule = xstrdup(jobs[i].rule),
		        .source = jobs[i].source,
		        .registry = xstrdup(jobs[i].registry),
		        .repository = xstrdup(jobs[i].repository),
		        .tag = xstrdup(jobs[i].tag),
		        .digest = xstrdup(jobs[i].digest),
		        .destination = xstrdup(jobs[i].destination),
		        .session = dup_or_null(jobs[i].session),
		};
	o->accept_done = done;
	o->arg = arg;
	sc_store_writer_submit(q->writer, apply_op, op_done, o);
}

void sc_queue_start_async(sc_queue *q, int64_t id, int64_t now_ms, sc_queue_done_fn done, void *arg)
{
	op *o = op_new(q, OP_START, id, now_ms);
	o->done = done;
	o->arg = arg;
	sc_store_writer_submit(q->writer, apply_op, op_done, o);
}

void sc_queue_succeed_async(sc_queue *q, int64_t id, const char *result, const char *const *outputs,
                            size_t n_outputs, int64_t now_ms, sc_queue_done_fn done, void *arg)
{
	op *o = op_new(q, OP_SUCCEED, id, now_ms);
	o->text = dup_or_null(result);
	o->outputs = xcalloc(n_outputs ? n_outputs : 1, sizeof(*o->outputs));
	for (size_t i = 0; i < n_outputs; i++)
		o->outputs[i] = xstrdup(outputs[i]);
	o->n_outputs = n_outputs;
	o->done = done;
	o->arg = arg;
	sc_store_writer_submit(q->writer, apply_op, op_done, o);
}

/* At most MAX_ERROR_BYTES, cut before a UTF-8 sequence, not inside one. */
static char *cap_error(const char *error)
{
	if (error == NULL)
		return NULL;
	size_t len = strlen(error);
	if (len <= MAX_ERROR_BYTES)
		return xstrdup(error);
	len = MAX_ERROR_BYTES;
	while (len > 0 && ((unsigned char)error[len] & 0xc0) == 0x80)
		len--;
	return xstrndup(error, len);
}

void sc_queue_fail_async(sc_queue *q, int64_t id, const char *error, int64_t now_ms, int64_t retry_at_ms,
                         sc_queue_done_fn done, void *arg)
{
	op *o = op_new(q, OP_FAIL, id, now_ms);
	o->text = cap_error(error);
	o->retry_at_ms = retry_at_ms < 0 ? -1 : retry_at_ms;
	o->done = done;
	o->arg = arg;
	sc_store_writer_submit(q->writer, apply_op, op_done, o);
}

void sc_queue_requeue_async(sc_queue *q, int64_t id, int64_t now_ms, sc_queue_done_fn done, void *arg)
{
	op *o = op_new(q, OP_REQUEUE, id, now_ms);
	o->done = done;
	o->arg = arg;
	sc_store_writer_submit(q->writer, apply_op, op_done, o);
}
