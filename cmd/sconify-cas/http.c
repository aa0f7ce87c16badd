/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The REST API (docs/cas.md) on lib/httpd over TLS. lib/httpd holds the
 * limits against hostile and slow clients (security.md §4): request bodies
 * and headers capped (413), a deadline per connection covering the TLS
 * handshake and one whole request (slowloris), per-address and global
 * connection caps with eviction of idle connections, libevent's log at most
 * once a second. The body cap is one for all routes: libevent 2.1 has no
 * hook between a request's headers and its body (2.2's evhttp_set_newreqcb
 * + evhttp_request_set_header_cb would give one).
 *
 * Here: the TLS context (any client certificate is accepted: the identity is
 * its key, see sc_httpd_client_key_hash()), routing, the session and
 * attestation calls, the audit of refusals and the replies held for a
 * commit.
 */
#include <sys/queue.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cas-server.h"
#include "core/base64.h"
#include "core/json-util.h"
#include "core/openssl-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "httpd/httpd.h"
#include "policy/policy-internal.h"

#define MAX_REFUSAL_KEYS 4096
#define PEER_MAX 64 /* an IPv6 address and then some */

typedef struct refusal {
	struct refusal *next;
	char *client, *action, *target, *detail;
	size_t count;
	char first[32];
} refusal;

/* A session change waiting for the one in flight. */
typedef struct deferred {
	TAILQ_ENTRY(deferred) link;
	struct evhttp_request *req;
	enum evhttp_cmd_type cmd;
	char *name; /* NULL: POST /v1/sessions */
	char id[SC_CAS_ID_HEX + 1];
	char peer[PEER_MAX];
} deferred;

struct cas_server {
	const cas_options *o;
	cas_store *store;
	struct event_base *base;
	sc_httpd *httpd;
	SSL_CTX *ctx;
	sc_cas_challenges *challenges;
	refusal *refusals;
	size_t n_refusals;
	struct event *flush;
	struct event *written; /* the store's writer finished a transaction */
	const char *cur_peer;  /* address of the request being handled */
	/* Session changes read, check and write: one at a time, so that each
	 * reads what the one before it committed (docs/cas.md). */
	bool session_busy;
	bool stopping; /* the loop has ended: deferred changes are refused */
	TAILQ_HEAD(deferred_list, deferred) deferred;
	char key_hash[SC_CAS_ID_HEX + 1];
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- replies ---- */

static int status_of(sconify_error_t err)
{
	switch (sconify_error_kind(err)) {
	case SCONIFY_ERR_INVALID:
	case SCONIFY_ERR_UNSUPPORTED:
	case SCONIFY_ERR_USAGE:
		return 400;
	case SCONIFY_ERR_NOT_FOUND:
		return 404;
	case SCONIFY_ERR_LIMIT:
		return 413;
	case SCONIFY_ERR_AUTH:
		return 401;
	default:
		return 500;
	}
}

static void reply_failure(struct evhttp_request *req, sconify_error_t err)
{
	int code = status_of(err);
	if (code == 500)
		fprintf(stderr, "sconify-cas: error: %s\n", sconify_error_message(err));
	sc_httpd_reply_error(req, code, "%s", sconify_error_message(err));
}

/* ---- sessions ---- */

static void refusals_flush(cas_server *s)
{
	if (s->n_refusals == 0)
		return;
	cas_audit *a = xcalloc(s->n_refusals, sizeof(*a));
	char **details = xcalloc(s->n_refusals, sizeof(char *));
	size_t n = 0;
	for (refusal *r = s->refusals; r; r = r->next, n++) {
		details[n] = r->count == 1
		                     ? xstrdup(r->detail)
		                     : xasprintf("%s (%zu times since %s)", r->detail, r->count, r->first);
		a[n] = (cas_audit){r->client, r->action, r->target, "refused", details[n]};
	}
	cas_store_audit_async(s->store, a, n, s->o->max_audit_rows, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		free(details[i]);
	free(details);
	free(a);
	while (s->refusals) {
		refusal *r = s->refusals;
		s->refusals = r->next;
		free(r->client), free(r->action), free(r->target), free(r->detail);
		free(r);
	}
	s->n_refusals = 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	refusals_flush(arg);
}

/* Audit entries. Refusals are counted by (client and address, action,
 * target, reason) and written every audit_flush_ms and at exit, one row per
 * distinct refusal with its count: a client hammering a refused call costs
 * one row per period, not one fsync per request (review item 8). Changes and
 * releases are written in the transaction of the change, or before the
 * reply, as before. */
static void audit(cas_server *s, const char *client, const char *action, const char *target,
                  const char *outcome, const char *detail)
{
	if (strcmp(outcome, "refused") == 0) {
		cleanup_free char *who = NULL;
		who = xstrdup(client ? client : "-");
		const char *addr = s->cur_peer ? s->cur_peer : "?";
		cleanup_free char *d = xasprintf("from %s: %s", addr, detail ? detail : "");
		for (refusal *r = s->refusals; r; r = r->next)
			if (strcmp(r->client, who) == 0 && strcmp(r->action, action) == 0 &&
			    strcmp(r->target, target ? target : "") == 0 && strcmp(r->detail, d) == 0) {
				r->count++;
				return;
			}
		refusal *r = xzalloc(sizeof(*r));
		r->client = steal_pointer(&who);
		r->action = xstrdup(action);
		r->target = xstrdup(target ? target : "");
		r->detail = steal_pointer(&d);
		r->count = 1;
		time_t t = time(NULL);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(r->first, sizeof(r->first), "%Y-%m-%dT%H:%M:%SZ", &tm);
		r->next = s->refusals;
		s->refusals = r;
		if (++s->n_refusals >= MAX_REFUSAL_KEYS)
			refusals_flush(s);
		return;
	}
	cas_audit a = {client, action, target, outcome, detail};
	cas_store_audit_async(s->store, &a, 1, 0, NULL, NULL);
}

/* ---- replies after a commit ---- */

/* A reply held until the write it acknowledges has committed. The request
 * stays valid while held: if its connection goes, evhttp detaches it and
 * the reply frees it unsent. */
typedef struct held {
	cas_server *s;
	struct evhttp_request *req;
	json_t *body;
	int code;
	bool session; /* a session change: ends session_busy */
} held;

static void run_deferred(cas_server *s);

static void held_done(void *arg, sconify_error_t err)
{
	held *h = arg;
	if (err)
		reply_failure(h->req, err);
	else
		sc_httpd_reply_json(h->req, h->code, h->body, false);
	json_decref(h->body);
	cas_server *s = h->s;
	bool session = h->session;
	free(h);
	if (session) {
		s->session_busy = false;
		run_deferred(s);
	}
}

static held *hold(cas_server *s, struct evhttp_request *req, int code, json_t *body, bool session)
{
	held *h = xzalloc(sizeof(*h));
	h->s = s;
	h->req = req;
	h->code = code;
	h->body = json_incref(body);
	h->session = session;
	if (session)
		s->session_busy = true;
	return h;
}

/* Values for the secrets the CAS generates: kept from the version an update
 * replaces when name, kind and size and the attestation mode stay, fresh
 * otherwise. A mode change regenerates them: a value released under sim
 * evidence (to anyone who can reach the port) must not protect a hardware
 * policy, and a value made for a hardware policy must not be released to sim
 * evidence (review item 6). */
static int generate_secrets(sc_policy *p, const sc_policy *old, sconify_error_t *err)
{
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (size_t i = 0; i < p->n_secrets; i++) {
		sc_policy_secret *sec = &p->secrets[i];
		if (!sec->generated || sec->value)
			continue;
		const sc_policy_secret *prev =
		        old && old->mode == p->mode ? sc_policy_find_secret(old, sec->name) : NULL;
		if (prev && prev->generated && prev->value && prev->kind == sec->kind &&
		    prev->size == sec->size) {
			sc_policy_secret_set_value(sec, prev->value, prev->len);
			continue;
		}
		uint8_t *v = xmalloc(sec->size ? sec->size : 1);
		if (RAND_bytes(v, (int)sec->size) != 1) {
			free(v);
			return sc_error(err, SCONIFY_ERR_GENERIC, 0, "no random bytes for secret `%s'",
			                sec->name);
		}
		if (sec->kind == SC_POLICY_SECRET_ASCII)
			for (size_t k = 0; k < sec->size;
			     k++) /* 256 % 62 bias: 4 of 256; fine for this use */
				v[k] = (uint8_t)alnum[v[k] % (sizeof(alnum) - 1)];
		sc_policy_secret_set_value(sec, v, sec->size);
		sc_policy_wipe(v, sec->size);
		free(v);
	}
	return 0;
}

/* The answer to a client that may not read a session: the same whether the
 * session exists or not, so that names cannot be enumerated (docs/cas.md,
 * "Sessions: rules"). */
static void reply_unknown(struct evhttp_request *req, const char *name)
{
	sc_httpd_reply_error(req, 404, "session `%s' not found, or this client may not read it", name);
}

/* The stored session name, or NULL once the request is answered: missing
 * is the same 404 as not readable, a store failure its own answer. */
static cas_session *find_session(cas_server *s, struct evhttp_request *req, const char *name)
{
	cleanup_error sconify_error_t err = NULL;
	cas_session *sess = NULL;
	if (cas_store_get(s->store, name, &sess, &err) == 0)
		return sess;
	if (sconify_error_kind(err) == SCONIFY_ERR_NOT_FOUND)
		reply_unknown(req, name);
	else
		reply_failure(req, err);
	return NULL;
}

static bool may_read(const cas_session *sess, const char *id)
{
	const sc_policy *p = sess->policy;
	return sc_cas_session_access(p, p->read, p->n_read, sess->creator, id);
}

static bool may_update(const cas_session *sess, const char *id)
{
	const sc_policy *p = sess->policy;
	return sc_cas_session_access(p, p->update, p->n_update, sess->creator, id);
}

/* Whether client id may learn whether session ns exists: top-level names
 * are public (a create tells); a nested one only to clients that may create
 * sessions in its namespace, or learn that the namespace is missing. */
static bool may_learn(cas_server *s, const char *id, const char *ns, unsigned depth)
{
	cleanup_free char *parent = sc_cas_session_namespace(ns);
	if (parent == NULL)
		return true;
	if (depth > 64)
		return false;
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(cas_session_freep) cas_session *ps = NULL;
	if (cas_store_get(s->store, parent, &ps, &err) < 0)
		return sconify_error_kind(err) == SCONIFY_ERR_NOT_FOUND &&
		       may_learn(s, id, parent, depth + 1);
	return sc_cas_access_allowed(ps->policy->create_sessions, ps->policy->n_create_sessions, ps->creator,
	                             id);
}

/* Whether client id may create sessions in the namespace of name (true for
 * a top-level name); if not, the refusal has been answered (and audited). */
static bool namespace_allows(cas_server *s, struct evhttp_request *req, const char *id, const char *action,
                             const char *name)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *ns = sc_cas_session_namespace(name);
	if (ns == NULL)
		return true;
	_cleanup_(cas_session_freep) cas_session *nss = NULL;
	if (cas_store_get(s->store, ns, &nss, &err) < 0) {
		if (sconify_error_kind(err) == SCONIFY_ERR_NOT_FOUND && may_learn(s, id, ns, 0)) {
			sc_httpd_reply_error(req, 404, "namespace `%s' not found", ns);
		} else if (sconify_error_kind(err) == SCONIFY_ERR_NOT_FOUND) {
			/* As for an existing namespace this client may not use: a
			 * missing nested one must not be told apart. */
			audit(s, id, action, name, "refused", "no create_sessions right in the namespace");
			sc_httpd_reply_error(req, 403,
			                     "namespace `%s': this client may not create sessions in it", ns);
		} else
			reply_failure(req, err);
		return false;
	}
	if (!sc_cas_access_allowed(nss->policy->create_sessions, nss->policy->n_create_sessions, nss->creator,
	                           id)) {
		audit(s, id, action, name, "refused", "no create_sessions right in the namespace");
		sc_httpd_reply_error(req, 403, "namespace `%s': this client may not create sessions in it",
		                     ns);
		return false;
	}
	return true;
}

static void post_session(cas_server *s, struct evhttp_request *req, const char *id, const char *body,
                         size_t len)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;
	if (sc_policy_parse(body, len, "session", &p, &err) < 0 || sc_cas_check_access_policy(p, &err) < 0)
		return reply_failure(req, err);
	const char *name = p->name;
	_cleanup_(cas_session_freep) cas_session *old = NULL;
	if (cas_store_get(s->store, name, &old, &err) < 0) {
		if (sconify_error_kind(err) != SCONIFY_ERR_NOT_FOUND)
			return reply_failure(req, err);
		sconify_error_free(&err);
	}
	_cleanup_(cas_session_freep) cas_session *n = xzalloc(sizeof(*n));
	const char *action = old ? "session.update" : "session.create";
	if (old) {
		if (!may_update(old, id)) {
			/* A client that may not read it hears what a create would:
			 * in a namespace where it may not create sessions, the
			 * namespace's refusal; elsewhere a create cannot hide that
			 * the name is taken. */
			if (!may_read(old, id) && !namespace_allows(s, req, id, action, name))
				return;
			audit(s, id, action, name, "refused", "not allowed to update");
			return sc_httpd_reply_error(req, 403, "session `%s': this client may not update it",
			                            name);
		}
		if (p->predecessor == NULL) {
			audit(s, id, action, name, "refused", "no predecessor");
			return sc_httpd_reply_error(
			        req, 409, "session `%s' exists: an update names its hash as `predecessor'",
			        name);
		}
		if (strcmp(p->predecessor, old->hash) != 0) {
			audit(s, id, action, name, "refused", "predecessor is not the current hash");
			return sc_httpd_reply_error(req, 409,
			                            "session `%s': predecessor is not the current hash (%s)",
			                            name, old->hash);
		}
		strcpy(n->creator, old->creator);
	} else {
		if (!namespace_allows(s, req, id, action, name))
			return;
		if (p->predecessor != NULL)
			return sc_httpd_reply_error(
			        req, 409, "session `%s' not found, but the document names a predecessor",
			        name);
		strcpy(n->creator, id);
	}
	size_t n_mine = 0, bytes_mine = 0;
	if (cas_store_usage(s->store, n->creator, &n_mine, &bytes_mine, &err) < 0)
		return reply_failure(req, err);
	if (old == NULL && n_mine >= s->o->max_client_sessions) {
		audit(s, id, action, name, "refused", "session quota");
		return sc_httpd_reply_error(
		        req, 429, "the creator of `%s' has %zu sessions, the most allowed", name, n_mine);
	}
	if (bytes_mine + len > s->o->max_client_bytes) {
		audit(s, id, action, name, "refused", "byte quota");
		return sc_httpd_reply_error(
		        req, 429,
		        "the creator of `%s' has sessions of %zu bytes: this one would pass the "
		        "limit of %zu",
		        name, bytes_mine, s->o->max_client_bytes);
	}
	if (generate_secrets(p, old ? old->policy : NULL, &err) < 0 || sc_policy_hash(p, n->hash, &err) < 0)
		return reply_failure(req, err);
	n->name = xstrdup(name);
	n->policy = steal_pointer(&p);
	cleanup_free char *detail = xasprintf("hash %s", n->hash);
	cas_audit a = {id, action, n->name, "ok", detail};
	cleanup_json json_t *j = json_pack("{s:s,s:s}", "name", n->name, "hash", n->hash);
	held *h = hold(s, req, old ? 200 : 201, j, true);
	cleanup_free char *nm = xstrdup(n->name);
	cas_store_put_async(s->store, nm, steal_pointer(&n), &a, held_done, h);
}

static void get_session(cas_server *s, struct evhttp_request *req, const char *id, const char *name)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(cas_session_freep) cas_session *sess = find_session(s, req, name);
	if (sess == NULL)
		return;
	if (!may_read(sess, id)) {
		audit(s, id, "session.read", name, "refused", "not allowed to read");
		return reply_unknown(req, name);
	}
	const char *yaml = NULL;
	size_t len = 0;
	if (cas_session_yaml(sess, &yaml, &len, &err) < 0)
		return reply_failure(req, err);
	json_t *j = json_pack("{s:s,s:s,s:s%}", "name", name, "hash", sess->hash, "session", yaml, len);
	if (j == NULL)
		return sc_httpd_reply_error(req, 500, "session `%s': not representable as JSON", name);
	sc_httpd_reply_json(req, 200, j, true);
	json_t *text = json_object_get(j, "session");
	OPENSSL_cleanse((char *)json_string_value(text), json_string_length(text));
	json_decref(j);
}

static void delete_session(cas_server *s, struct evhttp_request *req, const char *id, const char *name)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(cas_session_freep) cas_session *sess = find_session(s, req, name);
	if (sess == NULL)
		return;
	if (!may_update(sess, id)) {
		audit(s, id, "session.delete", name, "refused", "not allowed to update");
		if (!may_read(sess, id))
			return reply_unknown(req, name);
		return sc_httpd_reply_error(req, 403, "session `%s': this client may not delete it", name);
	}
	bool children = false;
	if (cas_store_has_children(s->store, name, &children, &err) < 0)
		return reply_failure(req, err);
	if (children)
		return sc_httpd_reply_error(
		        req, 409, "session `%s' has sessions in its namespace: delete them first", name);
	cas_audit a = {id, "session.delete", name, "ok", sess->hash};
	cleanup_json json_t *j = json_pack("{s:s,s:b}", "name", name, "deleted", 1);
	cas_store_put_async(s->store, name, NULL, &a, held_done, hold(s, req, 200, j, true));
}

/* ---- attestation ---- */

static void post_challenge(cas_server *s, struct evhttp_request *req)
{
	cleanup_error sconify_error_t err = NULL;
	uint8_t ch[SC_CAS_CHALLENGE_BYTES];
	if (sc_cas_challenge_issue(s->challenges, now_ms(), ch, &err) < 0) {
		if (sconify_error_kind(err) == SCONIFY_ERR_LIMIT)
			return sc_httpd_reply_error(req, 429, "%s: try again shortly",
			                            sconify_error_message(err));
		return reply_failure(req, err);
	}
	cleanup_free char *b64 = sc_base64_encode(ch, sizeof(ch));
	cleanup_json json_t *j =
	        json_pack("{s:s,s:f}", "challenge", b64, "expires_in", s->o->challenge_ttl_ms / 1000.0);
	sc_httpd_reply_json(req, 200, j, false);
}

static int b64_field(json_t *body, const char *key, uint8_t **ret, size_t *ret_len, sconify_error_t *err)
{
	const char *v = NULL;
	if (sc_json_get_string(body, key, false, "request", &v, err) < 0)
		return -1;
	if (!sc_base64_decode(v, strlen(v), ret, ret_len))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "request: `%s' is not base64", key);
	return 0;
}

static void post_attest(cas_server *s, struct evhttp_request *req, const char *id, const char *body,
                        size_t len)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_json json_t *j = NULL;
	if (sc_json_parse(body, len, "request", &j, &err) < 0)
		return reply_failure(req, err);
	if (!json_is_object(j))
		return sc_httpd_reply_error(req, 400, "request: not a JSON object");
	cleanup_free uint8_t *challenge = NULL, *pub = NULL;
	size_t challenge_len = 0, pub_len = 0;
	const char *config_id = NULL, *provider_name = NULL;
	json_t *evidence = NULL;
	if (b64_field(j, "challenge", &challenge, &challenge_len, &err) < 0 ||
	    sc_json_get_string(j, "config_id", false, "request", &config_id, &err) < 0 ||
	    sc_json_get_string(j, "provider", false, "request", &provider_name, &err) < 0 ||
	    sc_json_get_object(j, "evidence", false, "request", &evidence, &err) < 0 ||
	    b64_field(j, "public_key", &pub, &pub_len, &err) < 0)
		return reply_failure(req, err);
	/* Single use: the challenge is gone from here on, whatever the outcome. */
	if (sc_cas_challenge_consume(s->challenges, now_ms(), challenge, challenge_len, &err) < 0) {
		if (sconify_error_kind(err) == SCONIFY_ERR_LIMIT)
			return sc_httpd_reply_error(req, 503, "%s: try again shortly",
			                            sconify_error_message(err));
		return reply_failure(req, err);
	}
	/* From here on every refusal is audited (review item 14). */
	cleanup_free char *qid = sc_quote(config_id, SC_QUOTE_MAX);
	const cas_provider *prov = cas_provider_find(provider_name);
	if (prov == NULL) {
		cleanup_free char *q = sc_quote(provider_name, 40);
		cleanup_free char *detail = xasprintf("unknown evidence provider `%s'", q);
		audit(s, id, "attest", qid, "refused", detail);
		return sc_httpd_reply_error(req, 400, "%s", detail);
	}
	if (prov->mode == SC_POLICY_MODE_SIM && !s->o->allow_sim) {
		audit(s, id, "attest", qid, "refused", "sim evidence without --allow-sim");
		return sc_httpd_reply_error(
		        req, 403, "`sim' evidence is refused: this CAS was not started with --allow-sim");
	}
	cleanup_pkey EVP_PKEY *pk = NULL;
	cleanup_free char *session = NULL, *service = NULL;
	if (sc_cas_public_key_parse(pub, pub_len, &pk, &err) < 0 ||
	    sc_cas_parse_config_id(config_id, &session, &service, &err) < 0) {
		audit(s, id, "attest", qid, "refused", sconify_error_message(err));
		return reply_failure(req, err);
	}
	uint8_t rd[SC_CAS_REPORT_DATA_BYTES];
	sc_cas_report_data(challenge, challenge_len, pub, pub_len, rd);
	char measurement[SC_POLICY_HASH_HEX + 1];
	if (prov->verify(evidence, rd, measurement, &err) < 0) {
		audit(s, id, "attest", qid, "refused", sconify_error_message(err));
		if (sconify_error_kind(err) == SCONIFY_ERR_AUTH)
			return sc_httpd_reply_error(req, 403, "%s", sconify_error_message(err));
		return reply_failure(req, err);
	}
	_cleanup_(cas_session_freep) cas_session *sess = NULL;
	if (cas_store_get(s->store, session, &sess, &err) < 0) {
		audit(s, id, "attest", qid, "refused", sconify_error_message(err));
		return reply_failure(req, err);
	}
	if (prov->mode == SC_POLICY_MODE_SIM && sess->policy->mode != SC_POLICY_MODE_SIM) {
		audit(s, id, "attest", qid, "refused", "sim evidence for a hardware policy");
		return sc_httpd_reply_error(
		        req, 403, "session `%s' requires hardware attestation: `%s' evidence is refused",
		        session, prov->name);
	}
	const sc_policy_service *svc = sc_policy_find_service(sess->policy, service);
	if (svc == NULL) {
		audit(s, id, "attest", qid, "refused", "no such service");
		return sc_httpd_reply_error(req, 404, "session `%s': service `%s' not found", session,
		                            service);
	}
	bool accepted = false;
	for (size_t i = 0; i < svc->n_measurements && !accepted; i++)
		accepted = strcmp(svc->measurements[i], measurement) == 0;
	if (!accepted) {
		cleanup_free char *detail = xasprintf("measurement %s not accepted", measurement);
		audit(s, id, "attest", qid, "refused", detail);
		return sc_httpd_reply_error(req, 403, "%s/%s: measurement %s is not accepted by the policy",
		                            session, service, measurement);
	}
	_cleanup_(sc_policy_config_freep) sc_policy_config *cfg = NULL;
	if (sc_policy_resolve(sess->policy, service, &cfg, &err) < 0) {
		audit(s, id, "attest", qid, "refused", sconify_error_message(err));
		return reply_failure(req, err);
	}
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	sc_cas_config_encode(config_id, sess->hash, cfg, &plain, &plain_len);
	_cleanup_(sc_cas_envelope_clear) sc_cas_envelope env = {0};
	int r = sc_cas_envelope_seal(pub, pub_len, challenge, challenge_len, config_id, plain, plain_len,
	                             &env, &err);
	sc_policy_wipe(plain, plain_len);
	free(plain);
	if (r < 0)
		return reply_failure(req, err);
	cleanup_free char *detail = xasprintf("provider %s, measurement %s, session hash %s", prov->name,
	                                      measurement, sess->hash);
	cas_audit a = {id, "attest", config_id, "released", detail};
	cleanup_free char *spub = sc_base64_encode(env.server_pub, env.server_pub_len);
	cleanup_free char *nonce = sc_base64_encode(env.nonce, sizeof(env.nonce));
	cleanup_free char *ct = sc_base64_encode(env.ciphertext, env.ciphertext_len);
	cleanup_json json_t *out =
	        json_pack("{s:s,s:s,s:s,s:s,s:s}", "config_id", config_id, "session_hash", sess->hash,
	                  "ephemeral_public_key", spub, "nonce", nonce, "ciphertext", ct);
	/* The release is on record before the configuration leaves: the reply
	 * waits for the commit of the audit row. */
	cas_store_audit_async(s->store, &a, 1, 0, held_done, hold(s, req, 200, out, false));
}

/* ---- session changes, one at a time ---- */

static void do_session_change(cas_server *s, struct evhttp_request *req, const char *id,
                              enum evhttp_cmd_type cmd, const char *name)
{
	if (cmd == EVHTTP_REQ_DELETE)
		return delete_session(s, req, id, name);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	post_session(s, req, id, body, len);
}

/* Releases are not held back: an attestation reads the committed version
 * of its session, and a change is not acknowledged before its commit. */
static void session_change(cas_server *s, struct evhttp_request *req, const char *id,
                           enum evhttp_cmd_type cmd, const char *name)
{
	if (!s->session_busy)
		return do_session_change(s, req, id, cmd, name);
	deferred *d = xzalloc(sizeof(*d));
	d->req = req;
	d->cmd = cmd;
	d->name = name ? xstrdup(name) : NULL;
	snprintf(d->id, sizeof(d->id), "%s", id);
	snprintf(d->peer, sizeof(d->peer), "%s", s->cur_peer ? s->cur_peer : "?");
	TAILQ_INSERT_TAIL(&s->deferred, d, link);
}

static void run_deferred(cas_server *s)
{
	while (!s->session_busy && !s->stopping && !TAILQ_EMPTY(&s->deferred)) {
		deferred *d = TAILQ_FIRST(&s->deferred);
		TAILQ_REMOVE(&s->deferred, d, link);
		const char *saved = s->cur_peer;
		s->cur_peer = d->peer;
		do_session_change(s, d->req, d->id, d->cmd, d->name);
		s->cur_peer = saved;
		free(d->name);
		free(d);
	}
}

static void written_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	cas_server *s = arg;
	cas_store_writer_complete(s->store);
}

/* ---- routing ---- */

/* lib/httpd has checked the header caps and holds the connection's deadline. */
static void handle(struct evhttp_request *req, void *arg)
{
	cas_server *s = arg;
	s->cur_peer = sc_httpd_peer(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	const char *id = sc_httpd_client_key_hash(req);

	if (path == NULL) {
		sc_httpd_reply_error(req, 400, "no path");
	} else if (strcmp(path, "/v1/health") == 0) {
		cleanup_json json_t *j = json_pack("{s:s}", "status", "ok");
		cmd == EVHTTP_REQ_GET ? sc_httpd_reply_json(req, 200, j, false)
		                      : sc_httpd_reply_error(req, 405, "use GET");
	} else if (strcmp(path, "/v1/version") == 0) {
		cleanup_json json_t *j = json_pack("{s:s,s:s,s:s}", "name", "sconify-cas", "version",
		                                   sconify_version(), "api", "v1");
		cmd == EVHTTP_REQ_GET ? sc_httpd_reply_json(req, 200, j, false)
		                      : sc_httpd_reply_error(req, 405, "use GET");
	} else if (strcmp(path, "/v1/attest/challenge") == 0) {
		cmd == EVHTTP_REQ_POST ? post_challenge(s, req) : sc_httpd_reply_error(req, 405, "use POST");
	} else if (strcmp(path, "/v1/attest") == 0) {
		cmd == EVHTTP_REQ_POST ? post_attest(s, req, id, body, len)
		                       : sc_httpd_reply_error(req, 405, "use POST");
	} else if (strcmp(path, "/v1/sessions") == 0 || sc_startswith(path, "/v1/sessions/")) {
		const char *name = path[strlen("/v1/sessions")] ? path + strlen("/v1/sessions/") : NULL;
		if (id == NULL) {
			sc_httpd_reply_error(req, 401, "sessions need a client certificate (mutual TLS)");
		} else if (name == NULL) {
			cmd == EVHTTP_REQ_POST ? session_change(s, req, id, cmd, NULL)
			                       : sc_httpd_reply_error(req, 405, "use POST");
		} else if (!sc_policy_valid_session_name(name)) {
			cleanup_free char *q = sc_quote(name, 80);
			sc_httpd_reply_error(req, 400, "`%s' is not a session name", q);
		} else if (cmd == EVHTTP_REQ_GET) {
			get_session(s, req, id, name);
		} else if (cmd == EVHTTP_REQ_DELETE) {
			session_change(s, req, id, cmd, name);
		} else {
			sc_httpd_reply_error(req, 405, "use GET or DELETE");
		}
	} else {
		cleanup_free char *q = sc_quote(path, 80);
		sc_httpd_reply_error(req, 404, "no such endpoint `%s'", q);
	}
	s->cur_peer = NULL;
}

/* ---- setup ---- */

static int accept_any_cert(int ok, X509_STORE_CTX *ctx)
{
	(void)ok, (void)ctx;
	return 1;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig, (void)what;
	event_base_loopbreak(arg);
}

static int tls_setup(cas_server *s, const char *cert_path, const char *key_path, sconify_error_t *err)
{
	s->ctx = SSL_CTX_new(TLS_server_method());
	if (s->ctx == NULL || SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(s->ctx, cert_path) != 1 ||
	    SSL_CTX_use_PrivateKey_file(s->ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(s->ctx) != 1) {
		char buf[256];
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		SSL_CTX_free(s->ctx);
		s->ctx = NULL;
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "TLS setup: %s", buf);
	}
	/* Ask every client for a certificate, accept any: the identity is its key. */
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, accept_any_cert);
	SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
	/* The identity is cached per connection: no renegotiation (review item 13). */
	SSL_CTX_set_options(s->ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_num_tickets(s->ctx, 0);
	return 0;
}

int cas_server_run(const cas_options *o, cas_store *store, const char *cert_path, const char *key_path,
                   const char *key_hash, sconify_error_t *err)
{
	cas_server s = {.o = o, .store = store};
	snprintf(s.key_hash, sizeof(s.key_hash), "%s", key_hash);
	if (tls_setup(&s, cert_path, key_path, err) < 0)
		return -1;
	int rc = -1;
	int wfd = -1;
	if (cas_store_writer_start(store, &wfd, err) < 0) {
		SSL_CTX_free(s.ctx);
		return -1;
	}
	s.challenges = sc_cas_challenges_new(o->max_challenges, o->challenge_ttl_ms);
	TAILQ_INIT(&s.deferred);
	s.base = event_base_new();
	s.flush = event_new(s.base, -1, EV_PERSIST, flush_cb, &s);
	struct timeval ftv = {.tv_sec = o->audit_flush_ms / 1000,
	                      .tv_usec = (o->audit_flush_ms % 1000) * 1000};
	event_add(s.flush, &ftv);
	s.written = event_new(s.base, wfd, EV_READ | EV_PERSIST, written_cb, &s);
	event_add(s.written, NULL);
	struct event *sigint = evsignal_new(s.base, SIGINT, on_signal, s.base);
	struct event *sigterm = evsignal_new(s.base, SIGTERM, on_signal, s.base);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	sc_httpd_limits limits = {
	        .name = "sconify-cas",
	        .max_body = o->max_body,
	        .max_header_bytes = o->max_header_bytes,
	        .max_headers = o->max_headers,
	        .max_connections = o->max_connections,
	        .max_per_ip = o->max_per_ip,
	        .request_timeout_ms = o->request_timeout_ms,
	        .allowed_methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE,
	};
	cleanup_free char *bound = NULL;
	if (sc_httpd_new(s.base, &limits, s.ctx, handle, &s, &s.httpd, err) >= 0 &&
	    sc_httpd_listen(s.httpd, o->listen, &bound, err) >= 0) {
		printf("listening: %s\n", bound);
		fflush(stdout);
		event_base_dispatch(s.base);
		rc = 0;
	}
	/* Queued writes commit and their replies are handed to evhttp (sent
	 * only if the connection still takes them) before it closes all. */
	s.stopping = true;
	refusals_flush(&s);
	cas_store_writer_stop(store);
	while (!TAILQ_EMPTY(&s.deferred)) {
		deferred *d = TAILQ_FIRST(&s.deferred);
		TAILQ_REMOVE(&s.deferred, d, link);
		sc_httpd_reply_error(d->req, 503, "the CAS is stopping");
		free(d->name);
		free(d);
	}
	if (getenv("SCONIFY_CAS_STATS")) {
		cas_writer_stats st;
		cas_store_writer_stats(store, &st);
		fprintf(stderr,
		        "sconify-cas: stats: %zu transactions, %zu writes (%.2f a transaction, at most "
		        "%zu), %.2f ms a transaction\n",
		        st.transactions, st.writes,
		        st.transactions ? (double)st.writes / st.transactions : 0.0, st.max_batch,
		        st.transactions ? st.commit_ms / st.transactions : 0.0);
	}
	sc_httpd_free(s.httpd);
	event_free(s.written);
	event_free(s.flush);
	event_free(sigint);
	event_free(sigterm);
	event_base_free(s.base); /* finalizes the connections */
	sc_cas_challenges_free(s.challenges);
	SSL_CTX_free(s.ctx);
	return rc;
}
