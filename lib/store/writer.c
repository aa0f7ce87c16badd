/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite the house way and the group-commit writer (writer.h). */
#include "store/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/strutil.h"
#include "core/xalloc.h"

#define BUSY_TIMEOUT_MS 5000
#define FATAL_STATUS 70 /* EX_SOFTWARE */

static void default_fatal(const char *message)
{
	/* write(2), not stdio: the process may be in any state. */
	static const char prefix[] = "fatal: ";
	ssize_t r = write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
	r = write(STDERR_FILENO, message, strlen(message));
	r = write(STDERR_FILENO, "\n", 1);
	(void)r;
	_exit(FATAL_STATUS);
}

static sc_store_fatal_fn fatal_handler = default_fatal;

void sc_store_set_fatal_handler(sc_store_fatal_fn fn)
{
	fatal_handler = fn ? fn : default_fatal;
}

void sc_store_fatal_if_io(sqlite3 *db)
{
	if (db == NULL || (sqlite3_extended_errcode(db) & 0xff) != SQLITE_IOERR)
		return;
	char msg[512];
	snprintf(msg, sizeof(msg), "store I/O error (%s, code %d): stopping; no write is retried",
	         sqlite3_errmsg(db), sqlite3_extended_errcode(db));
	fatal_handler(msg);
	_exit(FATAL_STATUS); /* a handler that returned */
}

int sc_store_error(sqlite3 *db, const char *what, sconify_error_t *err)
{
	sc_store_fatal_if_io(db);
	int code = sqlite3_errcode(db);
	return sc_error(err, code == SQLITE_FULL ? SCONIFY_ERR_LIMIT : SCONIFY_ERR_IO, 0, "store: %s: %s",
	                what, sqlite3_errmsg(db));
}

int sc_store_exec(sqlite3 *db, const char *sql, sconify_error_t *err)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	sc_store_fatal_if_io(db);
	int code = sqlite3_errcode(db);
	sc_error(err, code == SQLITE_FULL ? SCONIFY_ERR_LIMIT : SCONIFY_ERR_IO, 0, "store: %s",
	         msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -1;
}

int sc_store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret, sconify_error_t *err)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return sc_store_error(db, "prepare", err);
	*ret = st;
	return 0;
}

int sc_store_run(sqlite3_stmt *st, const char *what, sconify_error_t *err)
{
	int r = sqlite3_step(st);
	sqlite3_reset(st);
	if (r == SQLITE_DONE || r == SQLITE_ROW)
		return 0;
	return sc_store_error(sqlite3_db_handle(st), what, err);
}

int sc_store_open(const char *path, unsigned flags, sqlite3 **ret, sconify_error_t *err)
{
	bool ro = flags & SC_STORE_READ_ONLY;
	cleanup_sqlite sqlite3 *db = NULL;
	/* READWRITE even to read: a WAL reader writes the -shm index. */
	int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (ro ? 0 : SQLITE_OPEN_CREATE);
	if (sqlite3_open_v2(path, &db, oflags, NULL) != SQLITE_OK) {
		cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_IO, 0, "store `%s': %s", q,
		                db ? sqlite3_errmsg(db) : "cannot open");
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	/* WAL + FULL: a commit is on disk (the WAL fsynced) before COMMIT
	 * returns. journal_mode is kept in the file; synchronous is not. */
	if ((!ro && sc_store_exec(db, "PRAGMA journal_mode=WAL", err) < 0) ||
	    sc_store_exec(db, "PRAGMA synchronous=FULL", err) < 0 ||
	    sc_store_exec(db, "PRAGMA foreign_keys=ON", err) < 0 ||
	    (ro && sc_store_exec(db, "PRAGMA query_only=1", err) < 0)) {
		cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
		return sc_error_wrap(err, "store `%s'", q);
	}
	*ret = steal_pointer(&db);
	return 0;
}

/* ---- the writer ---- */

typedef struct wreq {
	struct wreq *next;
	sc_store_apply_fn apply;
	sc_store_done_fn done;
	void *arg;
	sconify_error_t err;
	bool applied; /* inside the open transaction, not committed yet */
} wreq;

struct sc_store_writer {
	sqlite3 *db;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool running, stop;
	wreq *queue, **queue_tail; /* submitted, not yet taken by the thread */
	wreq *done, **done_tail;   /* finished, done callback not run yet */
	int fds[2];                /* a byte when done went from empty to not */
	sc_store_stats stats;
	/* the thread's statements */
	sqlite3_stmt *begin, *commit, *rollback, *savepoint, *release, *rollback_to;
};

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The transaction went away under us (SQLite rolls a whole transaction back
 * on some errors: SQLITE_FULL, SQLITE_NOMEM...): the writes applied in it
 * are lost, say so. */
static void fail_applied(wreq *batch, wreq *upto, sconify_error_t why)
{
	for (wreq *r = batch; r != upto; r = r->next) {
		if (!r->applied)
			continue;
		r->applied = false;
		sc_error(&r->err, sconify_error_kind(why), 0, "the batch's transaction was rolled back: %s",
		         sconify_error_message(why));
	}
}

static void commit_batch(sc_store_writer *w, wreq *batch)
{
	wreq *r = batch;
	while (r) {
		cleanup_error sconify_error_t err = NULL;
		if (sc_store_run(w->begin, "BEGIN", &err) < 0) {
			for (; r; r = r->next)
				sc_error(&r->err, sconify_error_kind(err), 0, "%s",
				         sconify_error_message(err));
			return;
		}
		wreq *first = r;
		bool lost = false;
		for (; r && !lost; r = r->next) {
			if (sc_store_run(w->savepoint, "SAVEPOINT", &r->err) < 0)
				continue;
			if (r->apply(w->db, r->arg, &r->err) == 0) {
				if (sc_store_run(w->release, "RELEASE", &r->err) == 0) {
					r->applied = true;
					continue;
				}
			} else if (r->err == NULL) {
				sc_error(&r->err, SCONIFY_ERR_GENERIC, 0, "store: a write failed");
			}
			if (sqlite3_get_autocommit(w->db)) {
				/* Not in a transaction any more: everything of it is gone. */
				fail_applied(first, r, r->err);
				lost = true;
				continue;
			}
			sqlite3_step(w->rollback_to), sqlite3_reset(w->rollback_to);
			sqlite3_step(w->release), sqlite3_reset(w->release);
		}
		if (lost)
			continue; /* the rest in a transaction of their own */
		if (sc_store_run(w->commit, "COMMIT", &err) < 0) {
			if (!sqlite3_get_autocommit(w->db))
				sqlite3_step(w->rollback), sqlite3_reset(w->rollback);
			fail_applied(first, r, err);
		}
		for (wreq *x = first; x != r; x = x->next)
			x->applied = false;
	}
}

static void *writer_main(void *arg)
{
	sc_store_writer *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->queue == NULL && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->queue == NULL)
			break;
		/* Everything that queued while the last commit was in flight. */
		wreq *batch = w->queue;
		w->queue = NULL;
		w->queue_tail = &w->queue;
		pthread_mutex_unlock(&w->mu);

		double t0 = mono_ms();
		commit_batch(w, batch);
		double dt = mono_ms() - t0;
		size_t n = 0, failed = 0;
		wreq *last = batch;
		for (wreq *r = batch; r; r = r->next, n++) {
			failed += r->err != NULL;
			last = r;
		}

		pthread_mutex_lock(&w->mu);
		w->stats.transactions++;
		w->stats.writes += n;
		w->stats.failed += failed;
		w->stats.commit_ms += dt;
		if (n > w->stats.max_batch)
			w->stats.max_batch = n;
		bool was_empty = w->done == NULL;
		*w->done_tail = batch;
		w->done_tail = &last->next;
		pthread_mutex_unlock(&w->mu);
		/* One byte while done is not empty is enough: complete() reads
		 * the pipe before it takes the list. */
		if (was_empty) {
			char one = 1;
			while (write(w->fds[1], &one, 1) < 0 && errno == EINTR)
				;
		}
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void finalize_statements(sc_store_writer *w)
{
	sqlite3_finalize(w->begin), sqlite3_finalize(w->commit), sqlite3_finalize(w->rollback);
	sqlite3_finalize(w->savepoint), sqlite3_finalize(w->release), sqlite3_finalize(w->rollback_to);
	w->begin = w->commit = w->rollback = w->savepoint = w->release = w->rollback_to = NULL;
}

int sc_store_writer_start(sqlite3 *db, sc_store_writer **ret, sconify_error_t *err)
{
	if (!sqlite3_get_autocommit(db))
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "store: the writer needs a connection outside a transaction");
	sc_store_writer *w = xzalloc(sizeof(*w));
	w->db = db;
	w->fds[0] = w->fds[1] = -1;
	/* IMMEDIATE: take the write lock at BEGIN, so a busy database shows
	 * there (under the busy timeout), not halfway through a batch. */
	if (sc_store_prepare(db, "BEGIN IMMEDIATE", &w->begin, err) < 0 ||
	    sc_store_prepare(db, "COMMIT", &w->commit, err) < 0 ||
	    sc_store_prepare(db, "ROLLBACK", &w->rollback, err) < 0 ||
	    sc_store_prepare(db, "SAVEPOINT w", &w->savepoint, err) < 0 ||
	    sc_store_prepare(db, "RELEASE w", &w->release, err) < 0 ||
	    sc_store_prepare(db, "ROLLBACK TO w", &w->rollback_to, err) < 0)
		goto fail;
	if (pipe(w->fds) != 0) {
		sc_error(err, SCONIFY_ERR_IO, errno, "store: pipe");
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(w->fds[i], F_SETFD, FD_CLOEXEC);
		fcntl(w->fds[i], F_SETFL, fcntl(w->fds[i], F_GETFL) | O_NONBLOCK);
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->queue_tail = &w->queue;
	w->done_tail = &w->done;
	int r = pthread_create(&w->thread, NULL, writer_main, w);
	if (r != 0) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		sc_error(err, SCONIFY_ERR_GENERIC, r, "store: cannot start the writer thread");
		goto fail;
	}
	w->running = true;
	*ret = w;
	return 0;
fail:
	finalize_statements(w);
	for (int i = 0; i < 2; i++)
		if (w->fds[i] >= 0)
			close(w->fds[i]);
	free(w);
	return -1;
}

void sc_store_writer_submit(sc_store_writer *w, sc_store_apply_fn apply, sc_store_done_fn done, void *arg)
{
	if (!w->running)
		abort(); /* after sc_store_writer_stop() */
	wreq *r = xzalloc(sizeof(*r));
	r->apply = apply;
	r->done = done;
	r->arg = arg;
	pthread_mutex_lock(&w->mu);
	*w->queue_tail = r;
	w->queue_tail = &r->next;
	w->stats.submitted++;
	w->stats.pending++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int sc_store_writer_fd(const sc_store_writer *w)
{
	return w->fds[0];
}

void sc_store_writer_complete(sc_store_writer *w)
{
	char buf[64];
	if (w->fds[0] >= 0)
		while (read(w->fds[0], buf, sizeof(buf)) > 0)
			;
	bool locked = w->running;
	if (locked)
		pthread_mutex_lock(&w->mu);
	wreq *done = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	if (locked)
		pthread_mutex_unlock(&w->mu);
	size_t n = 0;
	while (done) {
		wreq *r = done;
		done = r->next;
		if (r->done)
			r->done(r->arg, r->err);
		sconify_error_free(&r->err);
		free(r);
		n++;
	}
	if (n == 0)
		return;
	if (locked)
		pthread_mutex_lock(&w->mu);
	w->stats.pending -= n;
	if (locked)
		pthread_mutex_unlock(&w->mu);
}

void sc_store_writer_stop(sc_store_writer *w)
{
	if (w == NULL || !w->running)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	w->running = false;
	sc_store_writer_complete(w);
	finalize_statements(w);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
}

void sc_store_writer_stats(sc_store_writer *w, sc_store_stats *ret)
{
	if (!w->running) {
		*ret = w->stats;
		return;
	}
	pthread_mutex_lock(&w->mu);
	*ret = w->stats;
	pthread_mutex_unlock(&w->mu);
}

void sc_store_writer_free(sc_store_writer *w)
{
	if (w == NULL)
		return;
	sc_store_writer_stop(w);
	for (int i = 0; i < 2; i++)
		if (w->fds[i] >= 0)
			close(w->fds[i]);
	free(w);
}
