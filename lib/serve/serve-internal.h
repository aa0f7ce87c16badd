/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `sconify serve' inside: server.c owns the event loop, the HTTP endpoints,
 * metrics, logs and the shutdown; runner.c runs the queue's jobs, one child
 * process (`sconify image', `inspect', `sign') at a time per worker slot.
 * Everything here runs on the loop thread; the queue's writer thread is
 * reached only through lib/serve/queue.h.
 */
#ifndef SC_SERVE_INTERNAL_H
#define SC_SERVE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "core/buf.h"
#include "serve/config.h"
#include "serve/queue.h"

struct event_base;
struct event;
typedef struct sc_httpd sc_httpd;
typedef struct ssl_ctx_st SSL_CTX;

/* Outcomes of a delivery, for metrics. */
typedef enum {
	EV_ACCEPTED,
	EV_REPLAYED,
	EV_UNAUTHORIZED,
	EV_TOO_LARGE,
	EV_MALFORMED,
	EV_UNAVAILABLE,
	EV_ERROR,
	EV__N,
} sc_event_outcome;

/* What became of one push in a delivery. */
typedef enum {
	PUSH_QUEUED,    /* a new job */
	PUSH_REPEAT,    /* the (rule, digest) pair had a job already */
	PUSH_SELF,      /* made by sconify (our own output, a signature) */
	PUSH_UNMATCHED, /* no rule matches */
	PUSH__N,
} sc_push_outcome;

typedef enum {
	JOB_DONE,
	JOB_RETRY,
	JOB_FAILED,
	JOB_REQUEUED,
	JOB__N,
} sc_job_outcome;

#define SC_SERVE_DURATION_BUCKETS 10

typedef enum {
	RUN_IDLE,
	RUN_CLAIMING, /* the queue is marking it running */
	RUN_CHECK,    /* a run before was cut short: is the destination there already? */
	RUN_CONVERT,  /* sconify image */
	RUN_SIGN,     /* sconify sign, after a check found the conversion done */
	RUN_FINISHING /* the queue is writing the outcome */
} sc_run_phase;

typedef struct sc_serve sc_serve;

typedef struct {
	sc_serve *s;
	sc_run_phase phase;
	sc_job *job;
	const sc_serve_rule *rule;
	pid_t pid;
	int status;
	bool exited, aborted, timed_out;
	bool forget;         /* the outcome is final: the digest file goes once it is stored */
	struct event *timer; /* the run's wall-clock limit (limits.job) */
	int out_fd, err_fd;
	struct event *out_ev, *err_ev;
	sc_buf out; /* stdout: the child's JSON */
	char *err;  /* the tail of stderr */
	size_t err_len;
	int64_t started_ms;
	char *found_digest; /* the digest an earlier run wrote before its tag moved */
	char *digest_file;  /* where this conversion's runs write it (runner.c) */
} sc_run;

struct sc_serve {
	const sconify_serve_options_t *o;
	sc_serve_config *cfg;
	sc_queue *q;
	struct event_base *base;
	sc_httpd *httpd;
	SSL_CTX *tls;
	struct event *queue_ev, *tick, *kick, *grace, *sigterm, *sigint, *sigchld;
	bool stopping;
	bool aborting; /* running jobs were sent SIGTERM: the next step is SIGKILL */
	unsigned ticks;
	int lock_fd;    /* STATE_DIR/lock, held (flock) while the service runs */
	size_t pending; /* deliveries waiting for their commit */
	sc_run *runs;   /* cfg->workers slots */
	/* metrics */
	uint64_t events[SC_SOURCE__N][EV__N];
	uint64_t pushes[SC_SOURCE__N][PUSH__N];
	uint64_t jobs[JOB__N];
	uint64_t duration_buckets[SC_SERVE_DURATION_BUCKETS];
	uint64_t duration_count;
	double duration_sum;
};

int64_t sc_serve_now_ms(void);
/* A log line: level "info", "warn", "error"; fields (may be NULL) are
 * stolen. */
void sc_serve_log(sc_serve *s, const char *level, const char *msg, json_t *fields);

/* runner.c */
void sc_runner_init(sc_serve *s);
/* Starts queued jobs on free slots (not while stopping). */
void sc_runner_schedule(sc_serve *s);
/* SIGCHLD: collects exited children. */
void sc_runner_reap(sc_serve *s);
/* Shutdown: the grace time is over; running children are stopped and their
 * jobs requeued; hard: SIGKILL instead of SIGTERM. */
void sc_runner_abort(sc_serve *s, bool hard);
/* Requeues jobs the queue says are running but no slot holds. */
void sc_runner_sweep(sc_serve *s);
bool sc_runner_idle(sc_serve *s);
size_t sc_runner_busy(sc_serve *s);
void sc_runner_free(sc_serve *s);
/* Called by runner.c when a run ends (metrics). */
void sc_serve_observe_run(sc_serve *s, sc_job_outcome outcome, double seconds);
/* Called by runner.c whenever a slot became idle. */
void sc_serve_check_stopped(sc_serve *s);

#endif
