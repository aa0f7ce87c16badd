/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The durable job queue of `sconify serve` (docs/serve.md, "The queue"):
 * STATE_DIR/queue.db in SQLite, WAL with synchronous=FULL. A delivery is
 * acknowledged only after the transaction holding its jobs has committed, so
 * `kill -9' at any moment loses no acknowledged event. Writes go through the
 * group-commit writer (lib/store/): everything queued while one COMMIT runs
 * is the next transaction, which is what lets the service accept thousands
 * of events a second on one fsync each batch.
 *
 * A job is one (rule, source digest) pair: UNIQUE in the table, so however
 * often a push is delivered it is converted once; a repeated delivery only
 * counts. Delivery ids (GitHub's X-GitHub-Delivery) are remembered for the
 * replay window: a delivery id seen before is refused and writes nothing.
 * Digests a job produced (its destination manifests) are remembered, so the
 * service's own pushes never become jobs.
 *
 * Threads: every function is called from the service's event loop thread;
 * the writer runs on its own thread and the loop learns of finished writes
 * when sc_queue_fd() becomes readable, then calls sc_queue_complete(), which
 * runs the done callbacks on the loop thread.
 */
#ifndef SC_SERVE_QUEUE_H
#define SC_SERVE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "serve/config.h"

typedef enum {
	SC_JOB_QUEUED,  /* waiting, possibly for next_run_ms (a retry's backoff) */
	SC_JOB_RUNNING, /* a worker has it */
	SC_JOB_DONE,    /* converted: result holds `sconify image --output json' */
	SC_JOB_FAILED,  /* gave up after the rule's attempts */
	SC_JOB__N,
} sc_job_state;

const char *sc_job_state_name(sc_job_state s); /* "queued", "running", "done", "failed" */

typedef struct {
	int64_t id;
	char *rule;
	sc_source_kind source;
	char *registry, *repository, *tag, *digest;
	char *destination; /* expanded when queued */
	char *session;     /* expanded session name, or NULL */
	sc_job_state state;
	unsigned attempts;                           /* runs started */
	unsigned deliveries;                         /* times the pair was delivered (1 for a new job) */
	int64_t created_ms, updated_ms, next_run_ms; /* Unix time in ms */
	int64_t started_ms, finished_ms;             /* of the last run; 0: none */
	char *last_error;                            /* NULL when none; never holds a secret */
	char *result;                                /* JSON text, NULL unless done */
} sc_job;

void sc_job_free(sc_job *j);
SC_DEFINE_CLEANUP(sc_job *, sc_job_free)
#define cleanup_job _cleanup_(sc_job_freep)
void sc_jobs_free(sc_job **jobs, size_t n);

typedef struct sc_queue sc_queue;

/* Creates state_dir (0700) if needed and opens STATE_DIR/queue.db. Jobs
 * left RUNNING by a process that died go back to QUEUED (they resume; the
 * run that died keeps counting in attempts, so a job that kills the
 * service every time still reaches the attempts limit). UNSUPPORTED when
 * the file has a newer schema. Starts the writer thread. */
int sc_queue_open(const char *state_dir, sc_queue **ret, sconify_error_t *err);
/* Commits what is queued, runs the completions (which must not queue
 * writes any more), stops the writer, closes. */
void sc_queue_free(sc_queue *q);
SC_DEFINE_CLEANUP(sc_queue *, sc_queue_free)
#define cleanup_queue _cleanup_(sc_queue_freep)

/* Readable when writes have finished: then call sc_queue_complete(). */
int sc_queue_fd(sc_queue *q);
void sc_queue_complete(sc_queue *q);

/* ---- reads (synchronous, the loop's own read connection) ---- */

int sc_queue_get(sc_queue *q, int64_t id, sc_job **ret, sconify_error_t *err); /* NOT_FOUND */
/* Jobs by id descending, below before_id (0: from the newest), at most
 * limit; state -1 for all. */
int sc_queue_list(sc_queue *q, int state, int64_t before_id, size_t limit, sc_job ***ret, size_t *ret_n,
                  sconify_error_t *err);
/* QUEUED jobs with next_run_ms <= now_ms, oldest first, at most limit. */
int sc_queue_runnable(sc_queue *q, int64_t now_ms, size_t limit, sc_job ***ret, size_t *ret_n,
                      sconify_error_t *err);
/* The earliest next_run_ms of a QUEUED job; -1 when none is queued. */
int sc_queue_next_run(sc_queue *q, int64_t *ret_ms, sconify_error_t *err);
int sc_queue_counts(sc_queue *q, size_t ret_counts[SC_JOB__N], sconify_error_t *err);
/* Whether a job converts into reference ("registry/repository:tag", as
 * sc_job.destination): a push there is the service's own, even before the
 * job has finished (Harbor and GitHub name no user agent). */
int sc_queue_is_destination(sc_queue *q, const char *reference, bool *ret, sconify_error_t *err);
/* Whether digest was produced by one of the service's jobs. */
int sc_queue_is_output(sc_queue *q, const char *digest, bool *ret, sconify_error_t *err);

/* ---- writes (queued to the writer; done runs on the loop thread) ---- */

/* One job to create. */
typedef struct {
	const char *rule;
	sc_source_kind source;
	const char *registry, *repository, *tag, *digest;
	const char *destination;
	const char *session; /* NULL */
} sc_job_new;

typedef struct {
	bool replayed;    /* the delivery id was seen before: nothing was written */
	size_t n_new;     /* jobs created */
	size_t n_repeats; /* (rule, digest) pairs that already had a job */
	int64_t *ids;     /* n jobs in the order given: the new or the existing job */
	size_t n;
} sc_queue_accepted;

/* err NULL: committed (durable), r valid during the call. Otherwise nothing of
 * the delivery was written and r is NULL. err belongs to the queue (valid
 * during the call), in both callbacks. */
typedef void (*sc_queue_accept_fn)(void *arg, sconify_error_t err, const sc_queue_accepted *r);
typedef void (*sc_queue_done_fn)(void *arg, sconify_error_t err);

/* One delivery, in one savepoint: records delivery_id (NULL: none; LIMIT
 * when longer than 256 bytes) for source unless already seen (then
 * replayed, nothing else written), then
 * creates each job unless its (rule, digest) exists (then counts a
 * delivery). n may be 0 (a delivery with no push a rule matches: its id is
 * still recorded). Strings are copied. Delivery ids older than
 * replay_window_s are forgotten in the same transaction. */
void sc_queue_accept_async(sc_queue *q, sc_source_kind source, const char *delivery_id,
                           const sc_job_new *jobs, size_t n, int64_t now_ms, unsigned replay_window_s,
                           sc_queue_accept_fn done, void *arg);
/* QUEUED -> RUNNING, attempts + 1, started_ms = now. INVALID if the job is
 * not QUEUED. */
void sc_queue_start_async(sc_queue *q, int64_t id, int64_t now_ms, sc_queue_done_fn done, void *arg);
/* RUNNING -> DONE with result (JSON text) and the digests it produced;
 * last_error stays (the error of the last failed run, if any). INVALID if
 * the job is not RUNNING, NOT_FOUND if there is no such job (the same for
 * fail and requeue). */
void sc_queue_succeed_async(sc_queue *q, int64_t id, const char *result, const char *const *outputs,
                            size_t n_outputs, int64_t now_ms, sc_queue_done_fn done, void *arg);
/* RUNNING -> QUEUED with next_run_ms (retry_at_ms >= 0), or -> FAILED
 * (retry_at_ms < 0); error is kept as last_error (capped at 4 KiB). */
void sc_queue_fail_async(sc_queue *q, int64_t id, const char *error, int64_t now_ms, int64_t retry_at_ms,
                         sc_queue_done_fn done, void *arg);
/* RUNNING -> QUEUED, attempts - 1: a run the service stopped (shutdown)
 * does not count. */
void sc_queue_requeue_async(sc_queue *q, int64_t id, int64_t now_ms, sc_queue_done_fn done, void *arg);

#endif
