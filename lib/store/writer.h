/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Durable state in SQLite, the house way (docs/cas.md "The store",
 * docs/serve.md "The queue"), shared by the CAS store and the serve queue:
 *
 *   - sc_store_open(): WAL with synchronous=FULL (a COMMIT that returned is
 *     on disk: the WAL was fsynced), a busy timeout, foreign keys on;
 *   - an I/O error from SQLite (a failed fsync among them) ends the process:
 *     Linux forgets a write error once it reported it, so a retried fsync can
 *     "succeed" over lost data (fsyncgate); only a restart that reads the
 *     database again is safe;
 *   - the group-commit writer: one thread owns the write connection; writes
 *     submitted from an event loop queue up, and every batch (all that
 *     queued while the previous COMMIT ran) is one transaction, each write
 *     in a savepoint of its own, so one fsync covers many writes and a
 *     failing write takes only itself back. When a batch has committed (or
 *     failed), the writer's fd becomes readable; the loop then calls
 *     sc_store_writer_complete(), which runs the done callbacks on the
 *     loop's thread, in submission order.
 *
 * POSIX only (a pipe, pthreads): lib/ builds on macOS.
 */
#ifndef SC_STORE_WRITER_H
#define SC_STORE_WRITER_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/cleanup.h"
#include "core/error.h"

/* ---- connections ---- */

enum {
	/* A connection that only reads (PRAGMA query_only): the loop's. Open it
	 * after the writing one created the database. */
	SC_STORE_READ_ONLY = 1 << 0,
};

/* Opens (creating unless SC_STORE_READ_ONLY) path with the house settings.
 * The connection is not thread-safe (SQLITE_OPEN_NOMUTEX): one thread uses
 * it at a time. IO errors name the file. */
int sc_store_open(const char *path, unsigned flags, sqlite3 **ret, sconify_error_t *err);

/* Ends the process (exit status 70) when db's last error is an I/O error;
 * otherwise returns. Every helper below calls it. */
void sc_store_fatal_if_io(sqlite3 *db);
/* The handler that ends the process: it gets a one-line message and must
 * not return. The default writes "fatal: MESSAGE" to stderr and _exit(70)s
 * (the one place lib/ prints: nobody is left to print the error). A program
 * installs its own to name itself or log as it logs; set it before any
 * store is open. */
typedef void (*sc_store_fatal_fn)(const char *message);
void sc_store_set_fatal_handler(sc_store_fatal_fn fn);

/* Makes err from db's last error: IO kind, "store: WHAT: <sqlite message>";
 * LIMIT for a full disk (SQLITE_FULL). Ends the process on an I/O error.
 * Returns -1. */
int sc_store_error(sqlite3 *db, const char *what, sconify_error_t *err);
/* sqlite3_exec() of sql (no rows) with the above on failure. */
int sc_store_exec(sqlite3 *db, const char *sql, sconify_error_t *err);
int sc_store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret, sconify_error_t *err);
/* Steps a statement that returns no row (then resets it): 0, or the error
 * as sc_store_error(db, what). */
int sc_store_run(sqlite3_stmt *st, const char *what, sconify_error_t *err);

SC_DEFINE_CLEANUP(sqlite3_stmt *, sqlite3_finalize)
#define cleanup_stmt _cleanup_(sqlite3_finalizep)
SC_DEFINE_CLEANUP(sqlite3 *, sqlite3_close)
#define cleanup_sqlite _cleanup_(sqlite3_closep)

/* ---- the group-commit writer ---- */

typedef struct sc_store_writer sc_store_writer;

/* Runs on the writer thread, inside the write's savepoint of the batch's
 * transaction: < 0 (with err set) rolls back to the savepoint, so nothing
 * of this write stays and the batch's other writes are not touched. It
 * must not BEGIN, COMMIT or touch other savepoints; it must not use the
 * loop's objects unless they are the write's own (arg). */
typedef int (*sc_store_apply_fn)(sqlite3 *db, void *arg, sconify_error_t *err);
/* Runs on the loop thread in sc_store_writer_complete() (or _stop()), in
 * submission order: err NULL when the write's transaction committed
 * (durable), otherwise why nothing of it was written; err belongs to the
 * writer (valid during the call). */
typedef void (*sc_store_done_fn)(void *arg, sconify_error_t err);

typedef struct {
	size_t submitted;    /* writes submitted */
	size_t writes;       /* writes the thread has finished (committed or failed) */
	size_t failed;       /* of those, failed */
	size_t transactions; /* batches */
	size_t max_batch;    /* most writes in one transaction */
	size_t pending;      /* submitted, done callback not run yet */
	double commit_ms;    /* time in the writer's transactions, fsync included */
} sc_store_stats;

/* Starts the thread, which owns db until sc_store_writer_stop(): the caller
 * uses db for nothing else meanwhile (neither reads: open another
 * connection). db must not be inside a transaction. */
int sc_store_writer_start(sqlite3 *db, sc_store_writer **ret, sconify_error_t *err);
/* Queues a write: apply(db, arg, err) on the writer thread, then done(arg,
 * err) on the loop (done may be NULL: a failure is then only counted).
 * Called from the loop thread only; aborts after sc_store_writer_stop(). */
void sc_store_writer_submit(sc_store_writer *w, sc_store_apply_fn apply, sc_store_done_fn done, void *arg);
/* Readable when writes have finished: then call sc_store_writer_complete(). */
int sc_store_writer_fd(const sc_store_writer *w);
/* Runs the done callbacks of the finished writes (a callback may submit). */
void sc_store_writer_complete(sc_store_writer *w);
/* Commits what is queued, stops the thread, runs the remaining completions
 * (those may not submit any more); db is the caller's again. Idempotent. */
void sc_store_writer_stop(sc_store_writer *w);
void sc_store_writer_stats(sc_store_writer *w, sc_store_stats *ret);
/* Stops (as above) and frees. NULL is fine. */
void sc_store_writer_free(sc_store_writer *w);
SC_DEFINE_CLEANUP(sc_store_writer *, sc_store_writer_free)
#define cleanup_store_writer _cleanup_(sc_store_writer_freep)

#endif
