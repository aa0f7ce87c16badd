/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `sconify serve' (docs/serve.md): the event loop, the endpoints and the
 * service's life.
 *
 *   POST /v1/events/{distribution,harbor,github}   a delivery
 *   GET  /v1/jobs, /v1/jobs/<id>                   the queue
 *   GET  /healthz, /metrics
 *
 * A delivery is checked in this order: the source is configured (404), the
 * service is not stopping and its write backlog is bounded (503), the
 * credentials (401), the body (evhttp's cap: 413; format: 400). Its pushes
 * are matched against the rules and handed to the queue as one write; the
 * reply (202) is sent only when that write has committed, so an
 * acknowledged delivery survives `kill -9'. A refused delivery writes
 * nothing.
 */
#include <sys/queue.h>

#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/hex.h"
#include "core/json-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "httpd/httpd.h"
#include "policy/policy.h"
#include "serve-internal.h"
#include "serve/events.h"

/* Deliveries waiting for their commit, at most: past it 503 (the disk is
 * behind; senders retry). */
#define MAX_PENDING 8192
/* Buckets of the job duration histogram, seconds. */
static const double duration_bounds[SC_SERVE_DURATION_BUCKETS] = {1,   5,   10,  30,   60,
                                                                  120, 300, 600, 1800, 3600};

static const char *const event_outcome_names[EV__N] = {
        "accepted", "replayed", "unauthorized", "too_large", "malformed", "unavailable", "error"};
static const char *const push_outcome_names[PUSH__N] = {"queued", "repeat", "self", "unmatched"};
static const char *const job_outcome_names[JOB__N] = {"done", "retry", "failed", "requeued"};

int64_t sc_serve_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void format_time(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* ---- logs ---- */

void sc_serve_log(sc_serve *s, const char *level, const char *msg, json_t *fields)
{
	cleanup_json json_t *f = fields ? fields : json_object();
	if (s->o->log == NULL)
		return;
	char when[32];
	format_time(sc_serve_now_ms(), when);
	if (s->o->log_json) {
		cleanup_json json_t *line =
		        json_pack("{s:s,s:s,s:s}", "time", when, "level", level, "msg", msg);
		json_object_update_missing(line, f);
		cleanup_free char *text = sc_json_dump(line, NULL);
		s->o->log(s->o->log_userdata, text);
		return;
	}
	sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, when);
	sc_buf_putc(&b, ' ');
	sc_buf_puts(&b, level);
	sc_buf_putc(&b, ' ');
	sc_buf_puts(&b, msg);
	const char *key;
	json_t *v;
	json_object_foreach (f, key, v) {
		if (json_is_null(v))
			continue;
		sc_buf_putc(&b, ' ');
		sc_buf_puts(&b, key);
		sc_buf_putc(&b, '=');
		if (json_is_string(v)) {
			/* Values come from outside (repositories, errors): quoted,
			 * control bytes escaped, bounded. */
			cleanup_free char *q = sc_quote(json_string_value(v), 400);
			bool plain = strcspn(q, " \"=") == strlen(q) && *q;
			if (!plain)
				sc_buf_putc(&b, '"');
			sc_buf_puts(&b, q);
			if (!plain)
				sc_buf_putc(&b, '"');
		} else {
			cleanup_free char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			sc_buf_puts(&b, t ? t : "?");
		}
	}
	sc_buf_putc(&b, '\0');
	s->o->log(s->o->log_userdata, b.data);
	sc_buf_free(&b);
}

/* ---- deliveries ---- */

static const char *header_cb(void *arg, const char *name)
{
	return sc_httpd_header(arg, name, NULL);
}

/* A header sent twice is ambiguous for authentication and parsing alike. */
static const char *const single_headers[] = {"Authorization",     "Content-Type",   "X-Hub-Signature-256",
                                             "X-GitHub-Delivery", "X-GitHub-Event", NULL};

/* sha256-<hex>, optionally .sig/.att/.sbom: cosign's artifacts, ours among them. */
static bool is_cosign_tag(const char *tag)
{
	return fnmatch("sha256-*", tag, 0) == 0 && (strchr(tag, '.') == NULL || sc_endswith(tag, ".sig") ||
	                                            sc_endswith(tag, ".att") || sc_endswith(tag, ".sbom"));
}

typedef struct {
	sc_serve *s;
	struct evhttp_request *req;
	sc_source_kind source;
	size_t n_pushes;
	size_t counts[PUSH__N]; /* before the commit: self, unmatched */
	char *delivery;
	char peer[64];
} pending;

static void accepted_cb(void *arg, sconify_error_t err, const sc_queue_accepted *r)
{
	pending *p = arg;
	sc_serve *s = p->s;
	s->pending--;
	if (err) {
		s->events[p->source][EV_ERROR]++;
		sc_serve_log(s, "error", "delivery not stored",
		             json_pack("{s:s,s:s,s:s}", "source", sc_source_kind_name(p->source), "peer",
		                       p->peer, "error", sconify_error_message(err)));
		sc_httpd_reply_error(p->req, 500, "the delivery could not be stored; send it again");
	} else if (r->replayed) {
		s->events[p->source][EV_REPLAYED]++;
		sc_serve_log(s, "warn", "delivery refused: replayed",
		             json_pack("{s:s,s:s,s:s?}", "source", sc_source_kind_name(p->source), "peer",
		                       p->peer, "delivery", p->delivery));
		sc_httpd_reply_error(p->req, 409, "delivery already received");
	} else {
		s->events[p->source][EV_ACCEPTED]++;
		s->pushes[p->source][PUSH_QUEUED] += r->n_new;
		s->pushes[p->source][PUSH_REPEAT] += r->n_repeats;
		s->pushes[p->source][PUSH_SELF] += p->counts[PUSH_SELF];
		s->pushes[p->source][PUSH_UNMATCHED] += p->counts[PUSH_UNMATCHED];
		json_t *ids = json_array();
		for (size_t i = 0; i < r->n; i++)
			json_array_append_new(ids, json_integer(r->ids[i]));
		cleanup_json json_t *body =
		        json_pack("{s:I,s:I,s:I,s:I,s:I,s:o}", "pushes", (json_int_t)p->n_pushes, "queued",
		                  (json_int_t)r->n_new, "repeats", (json_int_t)r->n_repeats, "self",
		                  (json_int_t)p->counts[PUSH_SELF], "unmatched",
		                  (json_int_t)p->counts[PUSH_UNMATCHED], "jobs", ids);
		if (r->n_new || r->n_repeats)
			sc_serve_log(s, "info", "delivery accepted",
			             json_pack("{s:s,s:s,s:s?,s:I,s:I}", "source",
			                       sc_source_kind_name(p->source), "peer", p->peer, "delivery",
			                       p->delivery, "queued", (json_int_t)r->n_new, "repeats",
			                       (json_int_t)r->n_repeats));
		sc_httpd_reply_json(p->req, 202, body, false);
		if (r->n_new)
			event_active(s->kick, 0, 0);
	}
	free(p->delivery);
	free(p);
	sc_serve_check_stopped(s);
}

static void refuse(sc_serve *s, struct evhttp_request *req, sc_source_kind source, sc_event_outcome outcome,
                   int code, sconify_error_t err)
{
	s->events[source][outcome]++;
	const char *msg = sconify_error_message(err);
	sc_serve_log(s, "warn", "delivery refused",
	             json_pack("{s:s,s:s,s:i,s:s}", "source", sc_source_kind_name(source), "peer",
	                       sc_httpd_peer(req), "status", code, "error", msg));
	sc_httpd_reply_error(req, code, "%s", msg);
}

/* The session of a rule without a `session:' template: the destination's
 * repository and tag with every character a session name may not hold as
 * `-', then `-' and 16 hex of the SHA-256 of the whole destination
 * (registry included), so that no two destinations share a session
 * (confidential/apps/web:v1.0 -> confidential-apps-web-v1-0-<hash>); a long
 * start is cut to fit the name cap. */
static char *default_session(const char *destination)
{
	const char *slash = strchr(destination, '/');
	const char *p = slash ? slash + 1 : destination;
	uint8_t md[32];
	SHA256((const unsigned char *)destination, strlen(destination), md);
	char name[SC_POLICY_MAX_NAME + 1];
	size_t keep = SC_POLICY_MAX_NAME - 17, n = strlen(p) < keep ? strlen(p) : keep;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		          c == '_';
		name[i] = ok ? c : '-';
	}
	name[n] = '-';
	sc_hex_encode(md, 8, name + n + 1);
	return xstrdup(name);
}

/* The jobs one push makes: one per matching rule. */
static void match_push(sc_serve *s, const sc_serve_event_push *ep, sc_source_kind source, sc_job_new **jobs,
                       size_t *n_jobs, char ***strs, size_t *n_strs, size_t counts[PUSH__N])
{
	sc_serve_push push = {.source = source,
	                      .registry = ep->registry,
	                      .repository = ep->repository,
	                      .tag = ep->tag,
	                      .digest = ep->digest};
	bool self = (ep->user_agent && sc_startswith(ep->user_agent, "sconify/")) || is_cosign_tag(ep->tag);
	if (!self) {
		/* A job's destination, even before the job is done (the registry
		 * reports the tag as it moves), or a digest a job produced. */
		sconify_error_t err = NULL;
		cleanup_free char *ref = xasprintf("%s/%s:%s", ep->registry, ep->repository, ep->tag);
		if (sc_queue_is_destination(s->q, ref, &self, &err) < 0 ||
		    (!self && sc_queue_is_output(s->q, ep->digest, &self, &err) < 0)) {
			sc_serve_log(s, "error", "queue lookup failed",
			             json_pack("{s:s}", "error", sconify_error_message(err)));
			sconify_error_free(&err);
		}
	}
	if (self) {
		counts[PUSH_SELF]++;
		return;
	}
	bool matched = false;
	for (size_t i = 0; i < s->cfg->n_rules; i++) {
		const sc_serve_rule *r = &s->cfg->rules[i];
		if (!sc_serve_rule_matches(r, &push))
			continue;
		sconify_error_t err = NULL;
		char *dest = NULL, *session = NULL;
		if (sc_serve_expand(r->destination, r, &push, &dest, &err) < 0 ||
		    (r->session && sc_serve_expand(r->session, r, &push, &session, &err) < 0)) {
			sc_serve_log(s, "warn", "rule skipped",
			             json_pack("{s:s,s:s,s:s}", "rule", r->name, "repository", ep->repository,
			                       "error", sconify_error_message(err)));
			sconify_error_free(&err);
			free(dest);
			continue;
		}
		if (session == NULL)
			session = default_session(dest);
		if (!sc_policy_valid_session_name(session)) {
			cleanup_free char *q = sc_quote(session, 80);
			sc_serve_log(s, "warn", "rule skipped: not a session name",
			             json_pack("{s:s,s:s,s:s}", "rule", r->name, "repository", ep->repository,
			                       "session", q));
			free(dest);
			free(session);
			continue;
		}
		cleanup_free char *src = xasprintf("%s/%s:%s", ep->registry, ep->repository, ep->tag);
		if (strcmp(src, dest) == 0) {
			/* Converting onto the source would replace what was pushed. */
			sc_serve_log(s, "warn", "rule skipped: destination is the source",
			             json_pack("{s:s,s:s}", "rule", r->name, "destination", dest));
			free(dest);
			free(session);
			continue;
		}
		matched = true;
		*jobs = xreallocarray(*jobs, *n_jobs + 1, sizeof(**jobs));
		(*jobs)[(*n_jobs)++] = (sc_job_new){.rule = r->name,
		                                    .source = source,
		                                    .registry = ep->registry,
		                                    .repository = ep->repository,
		                                    .tag = ep->tag,
		                                    .digest = ep->digest,
		                                    .destination = dest,
		                                    .session = session};
		*strs = xreallocarray(*strs, *n_strs + 2, sizeof(**strs));
		(*strs)[(*n_strs)++] = dest;
		if (session)
			(*strs)[(*n_strs)++] = session;
	}
	if (!matched)
		counts[PUSH_UNMATCHED]++;
}

static void post_event(sc_serve *s, struct evhttp_request *req, sc_source_kind source)
{
	sconify_error_t err = NULL;
	size_t counts[SC_JOB__N] = {0};
	bool full = false;
	if (!s->stopping && s->pending < MAX_PENDING && sc_queue_counts(s->q, counts, &err) == 0)
		full = counts[SC_JOB_QUEUED] >= s->cfg->max_queued;
	sconify_error_free(&err);
	if (s->stopping || s->pending >= MAX_PENDING || full) {
		s->events[source][EV_UNAVAILABLE]++;
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
		sc_httpd_reply_error(req, 503, "%s",
		                     s->stopping ? "the service is stopping"
		                     : full      ? "the queue is full (limits.queue)"
		                                 : "too many deliveries in flight");
		return;
	}
	for (size_t i = 0; single_headers[i]; i++) {
		bool repeated = false;
		sc_httpd_header(req, single_headers[i], &repeated);
		if (repeated) {
			sc_error(&err, SCONIFY_ERR_INVALID, 0, "header %s sent more than once",
			         single_headers[i]);
			refuse(s, req, source, EV_MALFORMED, 400, err);
			sconify_error_free(&err);
			return;
		}
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	sc_serve_request sr = {.get_header = header_cb,
	                       .arg = req,
	                       .body = len ? evbuffer_pullup(in, -1) : (const uint8_t *)"",
	                       .body_len = len};
	if (sc_serve_authenticate(source, &s->cfg->auth[source], &sr, &err) < 0) {
		refuse(s, req, source, EV_UNAUTHORIZED, 401, err);
		sconify_error_free(&err);
		return;
	}
	cleanup_serve_event sc_serve_event *e = NULL;
	if (sc_serve_event_parse(source, &sr, &e, &err) < 0) {
		bool limit = sconify_error_kind(err) == SCONIFY_ERR_LIMIT;
		refuse(s, req, source, limit ? EV_TOO_LARGE : EV_MALFORMED, limit ? 413 : 400, err);
		sconify_error_free(&err);
		return;
	}
	pending *p = xzalloc(sizeof(*p));
	p->s = s;
	p->req = req;
	p->source = source;
	p->n_pushes = e->n_pushes;
	p->delivery = e->delivery_id ? xstrdup(e->delivery_id) : NULL;
	snprintf(p->peer, sizeof(p->peer), "%s", sc_httpd_peer(req));
	sc_job_new *jobs = NULL;
	size_t n_jobs = 0, n_strs = 0;
	char **strs = NULL;
	for (size_t i = 0; i < e->n_pushes; i++)
		match_push(s, &e->pushes[i], source, &jobs, &n_jobs, &strs, &n_strs, p->counts);
	s->pending++;
	/* The queue copies the strings. */
	sc_queue_accept_async(s->q, source, e->delivery_id, jobs, n_jobs, sc_serve_now_ms(),
	                      s->cfg->replay_window_s, accepted_cb, p);
	for (size_t i = 0; i < n_strs; i++)
		free(strs[i]);
	free(strs);
	free(jobs);
}

/* ---- the queue, for operators ---- */

static json_t *job_json(const sc_job *j)
{
	char created[32], updated[32];
	format_time(j->created_ms, created);
	format_time(j->updated_ms, updated);
	json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s?,s:s,s:i,s:i,s:s,s:s,s:s?}", "id",
	                      (json_int_t)j->id, "rule", j->rule, "source", sc_source_kind_name(j->source),
	                      "registry", j->registry, "repository", j->repository, "tag", j->tag, "digest",
	                      j->digest, "destination", j->destination, "session", j->session, "state",
	                      sc_job_state_name(j->state), "attempts", (int)j->attempts, "deliveries",
	                      (int)j->deliveries, "created", created, "updated", updated, "last_error",
	                      j->last_error);
	if (o == NULL) /* not UTF-8: the queue holds only what the parsers accepted */
		return json_pack("{s:I,s:s}", "id", (json_int_t)j->id, "error", "not representable");
	if (j->state == SC_JOB_QUEUED && j->next_run_ms > j->updated_ms) {
		char next[32];
		format_time(j->next_run_ms, next);
		json_object_set_new(o, "next_run", json_string(next));
	}
	if (j->started_ms) {
		char t[32];
		format_time(j->started_ms, t);
		json_object_set_new(o, "started", json_string(t));
	}
	if (j->finished_ms) {
		char t[32];
		format_time(j->finished_ms, t);
		json_object_set_new(o, "finished", json_string(t));
	}
	if (j->result) {
		json_t *r = json_loads(j->result, 0, NULL);
		json_object_set_new(o, "result", r ? r : json_string(j->result));
	}
	return o;
}

static bool operator_allowed(sc_serve *s, struct evhttp_request *req)
{
	if (!s->cfg->operator_.configured)
		return true;
	sc_serve_request sr = {
	        .get_header = header_cb, .arg = req, .body = (const uint8_t *)"", .body_len = 0};
	sconify_error_t err = NULL;
	if (sc_serve_authenticate(SC_SOURCE_DISTRIBUTION, &s->cfg->operator_, &sr, &err) == 0)
		return true;
	sconify_error_free(&err);
	sc_httpd_reply_error(req, 401, "this endpoint needs the operator's token (Authorization: Bearer)");
	return false;
}

static void get_jobs(sc_serve *s, struct evhttp_request *req)
{
	struct evkeyvalq query;
	TAILQ_INIT(&query);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *qs = evhttp_uri_get_query(uri);
	if (qs && evhttp_parse_query_str(qs, &query) != 0) {
		sc_httpd_reply_error(req, 400, "malformed query");
		return;
	}
	int state = -1;
	unsigned long long before = 0, limit = 100;
	const char *v;
	int code = 0;
	if ((v = evhttp_find_header(&query, "state"))) {
		for (int i = 0; i < SC_JOB__N; i++)
			if (strcmp(v, sc_job_state_name(i)) == 0)
				state = i;
		if (state < 0)
			code = 400;
	}
	if ((v = evhttp_find_header(&query, "before")) && !sc_parse_u64(v, &before))
		code = 400;
	if ((v = evhttp_find_header(&query, "limit")) &&
	    (!sc_parse_u64(v, &limit) || limit == 0 || limit > 1000))
		code = 400;
	evhttp_clear_headers(&query);
	if (code) {
		sc_httpd_reply_error(req, 400,
		                     "query: state is queued, running, done or failed; before an id; "
		                     "limit 1 to 1000");
		return;
	}
	sc_job **jobs = NULL;
	size_t n = 0;
	sconify_error_t err = NULL;
	if (sc_queue_list(s->q, state, (int64_t)before, (size_t)limit, &jobs, &n, &err) < 0) {
		sc_httpd_reply_error(req, 500, "%s", sconify_error_message(err));
		sconify_error_free(&err);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, job_json(jobs[i]));
	cleanup_json json_t *body = json_pack("{s:o}", "jobs", arr);
	if (n == limit)
		json_object_set_new(body, "next", json_integer(jobs[n - 1]->id));
	sc_jobs_free(jobs, n);
	sc_httpd_reply_json(req, 200, body, false);
}

static void get_job(sc_serve *s, struct evhttp_request *req, const char *id_text)
{
	unsigned long long id = 0;
	if (!sc_parse_u64(id_text, &id) || id == 0 || id > INT64_MAX) {
		cleanup_free char *q = sc_quote(id_text, 40);
		sc_httpd_reply_error(req, 400, "`%s' is not a job id", q);
		return;
	}
	cleanup_job sc_job *j = NULL;
	sconify_error_t err = NULL;
	if (sc_queue_get(s->q, (int64_t)id, &j, &err) < 0) {
		bool missing = sconify_error_kind(err) == SCONIFY_ERR_NOT_FOUND;
		sc_httpd_reply_error(req, missing ? 404 : 500, "%s", sconify_error_message(err));
		sconify_error_free(&err);
		return;
	}
	cleanup_json json_t *body = job_json(j);
	sc_httpd_reply_json(req, 200, body, false);
}

/* ---- metrics (Prometheus text format 0.0.4) ---- */

static void get_metrics(sc_serve *s, struct evhttp_request *req)
{
	size_t counts[SC_JOB__N] = {0};
	sconify_error_t err = NULL;
	if (sc_queue_counts(s->q, counts, &err) < 0) {
		sc_httpd_reply_error(req, 500, "%s", sconify_error_message(err));
		sconify_error_free(&err);
		return;
	}
	sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
#define LINE(...) sc_buf_printf(&b, __VA_ARGS__)
	LINE("# HELP sconify_serve_events_total Webhook deliveries by source and outcome.\n");
	LINE("# TYPE sconify_serve_events_total counter\n");
	for (int src = 0; src < SC_SOURCE__N; src++)
		for (int o = 0; o < EV__N; o++)
			LINE("sconify_serve_events_total{source=\"%s\",outcome=\"%s\"} %llu\n",
			     sc_source_kind_name(src), event_outcome_names[o],
			     (unsigned long long)s->events[src][o]);
	LINE("# HELP sconify_serve_pushes_total Image pushes in accepted deliveries by what became of "
	     "them.\n");
	LINE("# TYPE sconify_serve_pushes_total counter\n");
	for (int src = 0; src < SC_SOURCE__N; src++)
		for (int o = 0; o < PUSH__N; o++)
			LINE("sconify_serve_pushes_total{source=\"%s\",outcome=\"%s\"} %llu\n",
			     sc_source_kind_name(src), push_outcome_names[o],
			     (unsigned long long)s->pushes[src][o]);
	LINE("# HELP sconify_serve_queue_jobs Jobs in the queue by state.\n");
	LINE("# TYPE sconify_serve_queue_jobs gauge\n");
	for (int st = 0; st < SC_JOB__N; st++)
		LINE("sconify_serve_queue_jobs{state=\"%s\"} %zu\n", sc_job_state_name(st), counts[st]);
	LINE("# HELP sconify_serve_queue_depth Jobs waiting or running.\n");
	LINE("# TYPE sconify_serve_queue_depth gauge\n");
	LINE("sconify_serve_queue_depth %zu\n", counts[SC_JOB_QUEUED] + counts[SC_JOB_RUNNING]);
	LINE("# HELP sconify_serve_workers_busy Worker slots running a job.\n");
	LINE("# TYPE sconify_serve_workers_busy gauge\n");
	LINE("sconify_serve_workers_busy %zu\n", sc_runner_busy(s));
	LINE("# HELP sconify_serve_job_runs_total Finished job runs by outcome.\n");
	LINE("# TYPE sconify_serve_job_runs_total counter\n");
	for (int o = 0; o < JOB__N; o++)
		LINE("sconify_serve_job_runs_total{outcome=\"%s\"} %llu\n", job_outcome_names[o],
		     (unsigned long long)s->jobs[o]);
	LINE("# HELP sconify_serve_job_duration_seconds Duration of job runs.\n");
	LINE("# TYPE sconify_serve_job_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (int i = 0; i < SC_SERVE_DURATION_BUCKETS; i++) {
		cum += s->duration_buckets[i];
		LINE("sconify_serve_job_duration_seconds_bucket{le=\"%g\"} %llu\n", duration_bounds[i],
		     (unsigned long long)cum);
	}
	LINE("sconify_serve_job_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
	     (unsigned long long)s->duration_count);
	LINE("sconify_serve_job_duration_seconds_sum %.3f\n", s->duration_sum);
	LINE("sconify_serve_job_duration_seconds_count %llu\n", (unsigned long long)s->duration_count);
#undef LINE
	sc_httpd_reply_text(req, 200, "text/plain; version=0.0.4", b.data, b.len);
	sc_buf_free(&b);
}

void sc_serve_observe_run(sc_serve *s, sc_job_outcome outcome, double seconds)
{
	s->jobs[outcome]++;
	if (outcome == JOB_REQUEUED)
		return;
	for (int i = 0; i < SC_SERVE_DURATION_BUCKETS; i++)
		if (seconds <= duration_bounds[i]) {
			s->duration_buckets[i]++;
			break;
		}
	s->duration_count++;
	s->duration_sum += seconds;
}

/* ---- routing ---- */

static void handle(struct evhttp_request *req, void *arg)
{
	sc_serve *s = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	if (path == NULL) {
		sc_httpd_reply_error(req, 400, "no path");
	} else if (sc_startswith(path, "/v1/events/")) {
		int source = sc_source_kind_from_name(path + strlen("/v1/events/"));
		if (source < 0 || !s->cfg->auth[source].configured) {
			cleanup_free char *q = sc_quote(path, 80);
			sc_httpd_reply_error(req, 404,
			                     "no such endpoint `%s' (sources are configured under auth:)", q);
		} else if (cmd != EVHTTP_REQ_POST) {
			sc_httpd_reply_error(req, 405, "use POST");
		} else {
			post_event(s, req, (sc_source_kind)source);
		}
	} else if (strcmp(path, "/healthz") == 0) {
		cleanup_json json_t *j = json_pack("{s:s}", "status", s->stopping ? "stopping" : "ok");
		if (cmd != EVHTTP_REQ_GET)
			sc_httpd_reply_error(req, 405, "use GET");
		else
			sc_httpd_reply_json(req, s->stopping ? 503 : 200, j, false);
	} else if (strcmp(path, "/metrics") == 0) {
		if (cmd != EVHTTP_REQ_GET)
			sc_httpd_reply_error(req, 405, "use GET");
		else if (operator_allowed(s, req))
			get_metrics(s, req);
	} else if (strcmp(path, "/v1/jobs") == 0 || sc_startswith(path, "/v1/jobs/")) {
		if (cmd != EVHTTP_REQ_GET)
			sc_httpd_reply_error(req, 405, "use GET");
		else if (!operator_allowed(s, req))
			;
		else if (path[strlen("/v1/jobs")] == '\0')
			get_jobs(s, req);
		else
			get_job(s, req, path + strlen("/v1/jobs/"));
	} else {
		cleanup_free char *q = sc_quote(path, 80);
		sc_httpd_reply_error(req, 404, "no such endpoint `%s'", q);
	}
}

/* ---- life ---- */

void sc_serve_check_stopped(sc_serve *s)
{
	if (s->stopping && s->pending == 0 && sc_runner_idle(s))
		event_base_loopexit(s->base, NULL);
}

static void queue_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	sc_serve *s = arg;
	sc_queue_complete(s->q);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	sc_runner_schedule(arg);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	sc_serve *s = arg;
	if (!sc_runner_idle(s))
		sc_serve_log(s, "warn", "grace time over: stopping running jobs, they are requeued", NULL);
	/* SIGTERM first; the next signal (or the grace's end after an abort
	 * already began) kills. */
	sc_runner_abort(s, s->aborting);
	if (!s->aborting) {
		s->aborting = true;
		struct timeval ten = {10, 0};
		evtimer_add(s->grace, &ten);
	}
	sc_serve_check_stopped(s);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	sc_serve *s = arg;
	if (s->stopping) {
		/* Asked again: no more grace. */
		grace_cb(-1, 0, s);
		return;
	}
	s->stopping = true;
	sc_httpd_stop_accepting(s->httpd);
	sc_serve_log(s, "info", "stopping",
	             json_pack("{s:s,s:I,s:I}", "signal", sig == SIGTERM ? "TERM" : "INT", "running",
	                       (json_int_t)sc_runner_busy(s), "grace_ms", (json_int_t)s->o->grace_ms));
	struct timeval tv = {.tv_sec = s->o->grace_ms / 1000, .tv_usec = (s->o->grace_ms % 1000) * 1000};
	s->grace = evtimer_new(s->base, grace_cb, s);
	evtimer_add(s->grace, &tv);
	sc_serve_check_stopped(s);
}

static void chld_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig, (void)what;
	sc_runner_reap(arg);
}

static int tls_setup(sc_serve *s, sconify_error_t *err)
{
	if (s->cfg->tls_cert == NULL)
		return 0;
	s->tls = SSL_CTX_new(TLS_server_method());
	if (s->tls == NULL || SSL_CTX_set_min_proto_version(s->tls, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(s->tls, s->cfg->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(s->tls, s->cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(s->tls) != 1) {
		char buf[256];
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: tls: %s", s->cfg->path, buf);
	}
	SSL_CTX_set_options(s->tls, SSL_OP_NO_RENEGOTIATION);
	return 0;
}

/* One service per state directory: two would requeue each other's running
 * jobs. The runs directory holds the digest files (runner.c). */
static int lock_state(sc_serve *s, sconify_error_t *err)
{
	cleanup_free char *runs = xasprintf("%s/runs", s->cfg->state_dir);
	if (sc_mkdir_p(runs, 0700, err) < 0)
		return sc_error_wrap(err, "state_dir");
	cleanup_free char *path = xasprintf("%s/lock", s->cfg->state_dir);
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0)
		return sc_error_errno(err, errno, "opening `%s'", path);
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		cleanup_free char *q = sc_quote(s->cfg->state_dir, 200);
		if (e == EWOULDBLOCK)
			return sc_error(err, SCONIFY_ERR_USAGE, 0,
			                "state_dir `%s' is in use by another sconify serve", q);
		return sc_error_errno(err, e, "locking `%s'", path);
	}
	return 0;
}

static void free_serve(sc_serve *s)
{
	/* The queue first: it commits what is queued and runs the completions,
	 * which reply to held requests (alive until sc_httpd_free()) and end
	 * runs (alive until sc_runner_free()). */
	sc_queue_free(s->q);
	s->q = NULL;
	sc_runner_free(s);
	sc_httpd_free(s->httpd);
	struct event *evs[] = {s->queue_ev, s->tick, s->kick, s->grace, s->sigterm, s->sigint, s->sigchld};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	if (s->base)
		event_base_free(s->base);
	SSL_CTX_free(s->tls);
	sc_serve_config_free(s->cfg);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
}

int sconify_serve_check(const char *config, char **ret_summary, sconify_error_t *err)
{
	cleanup_serve_config sc_serve_config *c = NULL;
	if (sc_serve_config_load(config, &c, err) < 0)
		return -1;
	if (ret_summary) {
		sc_buf b;
		sc_buf_init(&b, SIZE_MAX);
		char line[160];
		snprintf(line, sizeof(line), "%zu rule%s, listen %s, %u worker%s, sources:", c->n_rules,
		         c->n_rules == 1 ? "" : "s", c->listen, c->workers, c->workers == 1 ? "" : "s");
		sc_buf_puts(&b, line);
		bool any = false;
		for (int i = 0; i < SC_SOURCE__N; i++)
			if (c->auth[i].configured) {
				sc_buf_putc(&b, ' ');
				sc_buf_puts(&b, sc_source_kind_name(i));
				any = true;
			}
		if (!any)
			sc_buf_puts(&b, " none (no endpoint accepts events)");
		sc_buf_putc(&b, '\0');
		*ret_summary = sc_buf_steal(&b, NULL);
	}
	return 0;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	sc_serve *s = arg;
	if (++s->ticks % 10 == 0)
		sc_runner_sweep(s);
	sc_runner_schedule(s);
}

int sconify_serve(const sconify_serve_options_t *opts, sconify_error_t *err)
{
	sc_serve s = {.o = opts, .lock_fd = -1};
	int rc = -1;
	if (opts->self_exe == NULL || opts->config == NULL)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "serve: no configuration or no executable");
	if (sc_serve_config_load(opts->config, &s.cfg, err) < 0)
		return -1;
	/* A worker's pipe closed under it must not kill the service. */
	signal(SIGPIPE, SIG_IGN);
	if (tls_setup(&s, err) < 0 || lock_state(&s, err) < 0 ||
	    sc_queue_open(s.cfg->state_dir, &s.q, err) < 0) {
		free_serve(&s);
		return -1;
	}
	s.base = event_base_new();
	if (s.base == NULL) {
		free_serve(&s);
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "serve: cannot create the event loop");
	}
	sc_httpd_limits lim = {.name = "sconify serve",
	                       .max_body = s.cfg->max_body,
	                       .max_header_bytes = 16384,
	                       .max_headers = 64,
	                       .max_connections = s.cfg->max_connections,
	                       .max_per_ip = s.cfg->max_per_ip,
	                       .request_timeout_ms = s.cfg->request_timeout_ms,
	                       .allowed_methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST};
	cleanup_free char *bound = NULL;
	if (sc_httpd_new(s.base, &lim, s.tls, handle, &s, &s.httpd, err) < 0 ||
	    sc_httpd_listen(s.httpd, s.cfg->listen, &bound, err) < 0) {
		free_serve(&s);
		return -1;
	}
	s.queue_ev = event_new(s.base, sc_queue_fd(s.q), EV_READ | EV_PERSIST, queue_cb, &s);
	event_add(s.queue_ev, NULL);
	s.kick = event_new(s.base, -1, 0, kick_cb, &s);
	s.tick = event_new(s.base, -1, EV_PERSIST, tick_cb, &s);
	struct timeval second = {1, 0};
	event_add(s.tick, &second);
	s.sigterm = evsignal_new(s.base, SIGTERM, stop_cb, &s);
	s.sigint = evsignal_new(s.base, SIGINT, stop_cb, &s);
	s.sigchld = evsignal_new(s.base, SIGCHLD, chld_cb, &s);
	evsignal_add(s.sigterm, NULL);
	evsignal_add(s.sigint, NULL);
	evsignal_add(s.sigchld, NULL);
	sc_runner_init(&s);

	size_t counts[SC_JOB__N] = {0};
	sconify_error_t cerr = NULL;
	if (sc_queue_counts(s.q, counts, &cerr) < 0)
		sconify_error_free(&cerr);
	sc_serve_log(&s, "info", "listening",
	             json_pack("{s:s,s:s,s:i,s:I,s:s}", "address", bound, "scheme", s.tls ? "https" : "http",
	                       "workers", (int)s.cfg->workers, "queued", (json_int_t)counts[SC_JOB_QUEUED],
	                       "state_dir", s.cfg->state_dir));
	if (opts->ready)
		opts->ready(opts->log_userdata, bound);
	event_active(s.kick, 0, 0);
	if (event_base_dispatch(s.base) < 0)
		sc_error(err, SCONIFY_ERR_GENERIC, 0, "serve: the event loop failed");
	else
		rc = 0;
	sc_serve_log(&s, "info", "stopped", NULL);
	free_serve(&s);
	return rc;
}
