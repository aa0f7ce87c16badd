/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTPS with libevent's evhttp over OpenSSL bufferevents, and the REST API
 * (docs/cas.md). Limits against hostile and slow clients:
 *   - request bodies and header bytes capped by evhttp (413), the number of
 *     headers here (413). The body cap is one for all routes: libevent 2.1
 *     has no hook between a request's headers and its body (2.2's
 *     evhttp_set_newreqcb + evhttp_request_set_header_cb would give one);
 *   - every connection has a deadline: the TLS handshake plus one whole
 *     request must arrive within request_timeout, and after each reply the
 *     next request (or the client reading the reply) gets the same time.
 *     evhttp's own timeouts restart with every byte, so a client trickling
 *     one byte at a time (slowloris) would outlive them; the deadline does
 *     not. It ends a connection by shutdown(2) of its socket, which evhttp
 *     sees as the client leaving and cleans up after;
 *   - on the loop turn after accept (admit_cb): at most max_per_ip
 *     connections from one address (the newest is closed), and at most
 *     max_connections in all: past it the oldest connection that has not
 *     completed a request is closed, so idle sockets cannot keep real clients
 *     out (security review item 4);
 *   - libevent's own log (accept errors) at most once a second (item 3).
 * Per-connection state hangs off the SSL object (ex_data) and is freed with
 * it, whichever way the connection ends.
 */
#include <sys/queue.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
#include "policy/policy-internal.h"

#define PEER_BUCKETS 4096
#define MAX_REFUSAL_KEYS 4096

typedef struct peer {
	struct peer *next;
	size_t count;
	char addr[INET6_ADDRSTRLEN];
} peer;

typedef struct refusal {
	struct refusal *next;
	char *client, *action, *target, *detail;
	size_t count;
	char first[32];
} refusal;

typedef struct conn conn;
TAILQ_HEAD(conn_list, conn);

/* A session change waiting for the one in flight. */
typedef struct deferred {
	TAILQ_ENTRY(deferred) link;
	struct evhttp_request *req;
	enum evhttp_cmd_type cmd;
	char *name; /* NULL: POST /v1/sessions */
	char id[SC_CAS_ID_HEX + 1];
	char peer[INET6_ADDRSTRLEN];
} deferred;

struct cas_server {
	const cas_options *o;
	cas_store *store;
	struct event_base *base;
	struct evhttp *http;
	SSL_CTX *ctx;
	sc_cas_challenges *challenges;
	size_t active, closing;
	struct conn_list conns; /* oldest first */
	peer *peers[PEER_BUCKETS];
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

struct conn {
	cas_server *s;
	struct bufferevent *bev;
	struct event *deadline;
	struct event *admit;
	TAILQ_ENTRY(conn) link;
	peer *peer;
	bool headers_seen; /* has sent the headers of a request */
	bool closing;
	bool id_known;
	bool has_id;
	char id[SC_CAS_ID_HEX + 1];
};

static int conn_index = -1;

static void conn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	conn *c = ptr;
	if (c == NULL)
		return;
	if (c->deadline)
		event_free(c->deadline);
	if (c->admit)
		event_free(c->admit);
	if (c->peer)
		c->peer->count--; /* peers stay allocated: at most one per address seen, reused */
	if (c->closing)
		c->s->closing--;
	TAILQ_REMOVE(&c->s->conns, c, link);
	c->s->active--;
	free(c);
}

static void close_conn(conn *c)
{
	evutil_socket_t sfd = bufferevent_getfd(c->bev);
	if (!c->closing) {
		c->closing = true;
		c->s->closing++;
	}
	if (sfd >= 0)
		shutdown(sfd, SHUT_RDWR);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	close_conn(arg);
}

static void arm(conn *c, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	evtimer_add(c->deadline, &tv);
}

/* ---- admission: addresses, caps, caps ---- */

static peer *peer_get(cas_server *s, const char *addr)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a: addresses are not secret, buckets chain */
	for (const char *p = addr; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	peer **b = &s->peers[h % PEER_BUCKETS];
	for (peer *p = *b; p; p = p->next)
		if (strcmp(p->addr, addr) == 0)
			return p;
	/* Reuse a peer with no connection in this bucket before adding one, so
	 * the table stays as large as the addresses connected at once. */
	for (peer *p = *b; p; p = p->next)
		if (p->count == 0) {
			snprintf(p->addr, sizeof(p->addr), "%s", addr);
			return p;
		}
	peer *p = xzalloc(sizeof(*p));
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	p->next = *b;
	*b = p;
	return p;
}

static void peer_name(evutil_socket_t fd, char out[INET6_ADDRSTRLEN])
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	snprintf(out, INET6_ADDRSTRLEN, "?");
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, INET6_ADDRSTRLEN);
	else if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, INET6_ADDRSTRLEN);
}

/* Runs on the loop turn after accept, when evhttp has given the bufferevent
 * its socket: the per-address and global caps. */
static void admit_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	conn *c = arg;
	cas_server *s = c->s;
	char addr[INET6_ADDRSTRLEN];
	peer_name(bufferevent_getfd(c->bev), addr);
	c->peer = peer_get(s, addr);
	c->peer->count++;
	if (c->peer->count > s->o->max_per_ip)
		return close_conn(c);
	if (s->active - s->closing > s->o->max_connections) {
		/* Evict the oldest connection that has not completed a request. */
		conn *victim = NULL;
		TAILQ_FOREACH(victim, &s->conns, link)
		if (victim != c && !victim->closing && !victim->headers_seen)
			break;
		/* Closed sockets are freed on a later loop turn; past a margin
		 * (kept below RLIMIT_NOFILE by main.c) the newcomer goes. */
		if (victim == NULL || s->active > s->o->max_connections + 32)
			return close_conn(c);
		close_conn(victim);
	}
}

static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
	cas_server *s = arg;
	SSL *ssl = SSL_new(s->ctx);
	if (ssl == NULL)
		abort();
	conn *c = xzalloc(sizeof(*c));
	c->s = s;
	s->active++;
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	SSL_set_ex_data(ssl, conn_index, c);
	c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                        BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		abort();
	c->deadline = evtimer_new(base, deadline_cb, c);
	arm(c, s->o->request_timeout_ms);
	c->admit = evtimer_new(base, admit_cb, c);
	struct timeval zero = {0, 0};
	evtimer_add(c->admit, &zero);
	return c->bev;
}

static conn *conn_of(struct evhttp_request *req)
{
	struct evhttp_connection *evc = evhttp_request_get_connection(req);
	struct bufferevent *bev = evc ? evhttp_connection_get_bufferevent(evc) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	return ssl ? SSL_get_ex_data(ssl, conn_index) : NULL;
}

/* The client's identity: SHA-256 of its certificate's SubjectPublicKeyInfo.
 * The certificate is not checked against any CA (any client may have one);
 * the TLS handshake proved the client holds its private key. */
static const char *client_id(conn *c)
{
	if (c->id_known)
		return c->has_id ? c->id : NULL;
	c->id_known = true;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	EVP_PKEY *pk = cert ? X509_get0_pubkey(cert) : NULL;
	if (pk == NULL)
		return NULL;
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pk, &der);
	if (n <= 0)
		return NULL;
	uint8_t md[32];
	unsigned int mdlen = 0;
	EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	sc_policy_hex_encode(md, sizeof(md), c->id);
	c->has_id = true;
	return c->id;
}

/* libevent's own messages ("Error from accept() call") at most once a
 * second: under EMFILE it would otherwise write megabytes a second. */
static void log_cb(int severity, const char *msg)
{
	static uint64_t last_ms;
	static unsigned long suppressed;
	(void)severity;
	uint64_t now = now_ms();
	if (last_ms != 0 && now - last_ms < 1000) {
		suppressed++;
		return;
	}
	last_ms = now;
	if (suppressed)
		fprintf(stderr, "sconify-cas: libevent: %s (%lu similar messages suppressed)\n", msg,
		        suppressed);
	else
		fprintf(stderr, "sconify-cas: libevent: %s\n", msg);
	suppressed = 0;
}

/* ---- replies ---- */

static void wipe_free_cb(const void *data, size_t len, void *arg)
{
	(void)arg;
	OPENSSL_cleanse((void *)data, len);
	free((void *)data);
}

/* secret: the text is wiped when evhttp is done with it (review item 16). */
static void reply_json_ex(struct evhttp_request *req, int code, json_t *body, bool secret)
{
	size_t len = 0;
	char *text = sc_json_dump(body, &len);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	struct evbuffer *out = evbuffer_new();
	if (secret) {
		evbuffer_add_reference(out, text, len, wipe_free_cb, NULL);
	} else {
		evbuffer_add(out, text, len);
		free(text);
	}
	evbuffer_add(out, "\n", 1);
	const char *reason = code == 200   ? "OK"
	                     : code == 201 ? "Created"
	                     : code == 400 ? "Bad Request"
	                     : code == 401 ? "Unauthorized"
	                     : code == 403 ? "Forbidden"
	                     : code == 404 ? "Not Found"
	                     : code == 405 ? "Method Not Allowed"
	                     : code == 409 ? "Conflict"
	                     : code == 413 ? "Payload Too Large"
	                     : code == 429 ? "Too Many Requests"
	                     : code == 503 ? "Service Unavailable"
	                                   : "Internal Server Error";
	evhttp_send_reply(req, code, reason, out);
	evbuffer_free(out);
}

static void reply_json(struct evhttp_request *req, int code, json_t *body)
{
	reply_json_ex(req, code, body, false);
}

__attribute__((format(printf, 3, 4))) static void reply_error(struct evhttp_request *req, int code,
                                                              const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	cleanup_json json_t *j = json_pack("{s:s}", "error", msg);
	if (j == NULL) /* not UTF-8: our messages quote outside strings, so only a bug gets here */
		j = json_pack("{s:s}", "error", "internal error");
	reply_json(req, code, j);
}

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
	reply_error(req, code, "%s", sconify_error_message(err));
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
		reply_json(h->req, h->code, h->body);
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

static void post_session(cas_server *s, struct evhttp_request *req, const char *id, const char *body,
                         size_t len)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;
	if (sc_policy_parse(body, len, "session", &p, &err) < 0)
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
		if (!sc_cas_access_allowed(old->policy->update, old->policy->n_update, old->creator, id)) {
			audit(s, id, action, name, "refused", "not allowed to update");
			return reply_error(req, 403, "session `%s': this client may not update it", name);
		}
		if (p->predecessor == NULL) {
			audit(s, id, action, name, "refused", "no predecessor");
			return reply_error(req, 409,
			                   "session `%s' exists: an update names its hash as `predecessor'",
			                   name);
		}
		if (strcmp(p->predecessor, old->hash) != 0) {
			audit(s, id, action, name, "refused", "predecessor is not the current hash");
			return reply_error(req, 409, "session `%s': predecessor is not the current hash (%s)",
			                   name, old->hash);
		}
		strcpy(n->creator, old->creator);
	} else {
		if (p->predecessor != NULL)
			return reply_error(req, 409,
			                   "session `%s' not found, but the document names a predecessor",
			                   name);
		cleanup_free char *ns = sc_cas_session_namespace(name);
		if (ns) {
			_cleanup_(cas_session_freep) cas_session *nss = NULL;
			if (cas_store_get(s->store, ns, &nss, &err) < 0) {
				if (sconify_error_kind(err) == SCONIFY_ERR_NOT_FOUND)
					return reply_error(req, 404, "namespace `%s' not found", ns);
				return reply_failure(req, err);
			}
			if (!sc_cas_access_allowed(nss->policy->create_sessions,
			                           nss->policy->n_create_sessions, nss->creator, id)) {
				audit(s, id, action, name, "refused",
				      "no create_sessions right in the namespace");
				return reply_error(
				        req, 403, "namespace `%s': this client may not create sessions in it",
				        ns);
			}
		}
		strcpy(n->creator, id);
	}
	size_t n_mine = 0, bytes_mine = 0;
	if (cas_store_usage(s->store, n->creator, &n_mine, &bytes_mine, &err) < 0)
		return reply_failure(req, err);
	if (old == NULL && n_mine >= s->o->max_client_sessions) {
		audit(s, id, action, name, "refused", "session quota");
		return reply_error(req, 429, "the creator of `%s' has %zu sessions, the most allowed", name,
		                   n_mine);
	}
	if (bytes_mine + len > s->o->max_client_bytes) {
		audit(s, id, action, name, "refused", "byte quota");
		return reply_error(req, 429,
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
	_cleanup_(cas_session_freep) cas_session *sess = NULL;
	if (cas_store_get(s->store, name, &sess, &err) < 0)
		return reply_failure(req, err);
	if (!sc_cas_access_allowed(sess->policy->read, sess->policy->n_read, sess->creator, id))
		return reply_error(req, 403, "session `%s': this client may not read it", name);
	const char *yaml = NULL;
	size_t len = 0;
	if (cas_session_yaml(sess, &yaml, &len, &err) < 0)
		return reply_failure(req, err);
	json_t *j = json_pack("{s:s,s:s,s:s%}", "name", name, "hash", sess->hash, "session", yaml, len);
	if (j == NULL)
		return reply_error(req, 500, "session `%s': not representable as JSON", name);
	reply_json_ex(req, 200, j, true);
	json_t *text = json_object_get(j, "session");
	OPENSSL_cleanse((char *)json_string_value(text), json_string_length(text));
	json_decref(j);
}

static void delete_session(cas_server *s, struct evhttp_request *req, const char *id, const char *name)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(cas_session_freep) cas_session *sess = NULL;
	if (cas_store_get(s->store, name, &sess, &err) < 0)
		return reply_failure(req, err);
	if (!sc_cas_access_allowed(sess->policy->update, sess->policy->n_update, sess->creator, id)) {
		audit(s, id, "session.delete", name, "refused", "not allowed to update");
		return reply_error(req, 403, "session `%s': this client may not delete it", name);
	}
	bool children = false;
	if (cas_store_has_children(s->store, name, &children, &err) < 0)
		return reply_failure(req, err);
	if (children)
		return reply_error(req, 409, "session `%s' has sessions in its namespace: delete them first",
		                   name);
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
			return reply_error(req, 429, "%s: try again shortly", sconify_error_message(err));
		return reply_failure(req, err);
	}
	cleanup_free char *b64 = sc_base64_encode(ch, sizeof(ch));
	cleanup_json json_t *j =
	        json_pack("{s:s,s:f}", "challenge", b64, "expires_in", s->o->challenge_ttl_ms / 1000.0);
	reply_json(req, 200, j);
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
		return reply_error(req, 400, "request: not a JSON object");
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
			return reply_error(req, 503, "%s: try again shortly", sconify_error_message(err));
		return reply_failure(req, err);
	}
	/* From here on every refusal is audited (review item 14). */
	cleanup_free char *qid = sc_quote(config_id, SC_QUOTE_MAX);
	const cas_provider *prov = cas_provider_find(provider_name);
	if (prov == NULL) {
		cleanup_free char *q = sc_quote(provider_name, 40);
		cleanup_free char *detail = xasprintf("unknown evidence provider `%s'", q);
		audit(s, id, "attest", qid, "refused", detail);
		return reply_error(req, 400, "%s", detail);
	}
	if (prov->mode == SC_POLICY_MODE_SIM && !s->o->allow_sim) {
		audit(s, id, "attest", qid, "refused", "sim evidence without --allow-sim");
		return reply_error(req, 403,
		                   "`sim' evidence is refused: this CAS was not started with --allow-sim");
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
			return reply_error(req, 403, "%s", sconify_error_message(err));
		return reply_failure(req, err);
	}
	_cleanup_(cas_session_freep) cas_session *sess = NULL;
	if (cas_store_get(s->store, session, &sess, &err) < 0) {
		audit(s, id, "attest", qid, "refused", sconify_error_message(err));
		return reply_failure(req, err);
	}
	if (prov->mode == SC_POLICY_MODE_SIM && sess->policy->mode != SC_POLICY_MODE_SIM) {
		audit(s, id, "attest", qid, "refused", "sim evidence for a hardware policy");
		return reply_error(req, 403,
		                   "session `%s' requires hardware attestation: `%s' evidence is refused",
		                   session, prov->name);
	}
	const sc_policy_service *svc = sc_policy_find_service(sess->policy, service);
	if (svc == NULL) {
		audit(s, id, "attest", qid, "refused", "no such service");
		return reply_error(req, 404, "session `%s': service `%s' not found", session, service);
	}
	bool accepted = false;
	for (size_t i = 0; i < svc->n_measurements && !accepted; i++)
		accepted = strcmp(svc->measurements[i], measurement) == 0;
	if (!accepted) {
		cleanup_free char *detail = xasprintf("measurement %s not accepted", measurement);
		audit(s, id, "attest", qid, "refused", detail);
		return reply_error(req, 403, "%s/%s: measurement %s is not accepted by the policy", session,
		                   service, measurement);
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

static void handle(struct evhttp_request *req, void *arg)
{
	cas_server *s = arg;
	conn *c = conn_of(req);
	if (c)
		evtimer_del(c->deadline);
	s->cur_peer = c && c->peer ? c->peer->addr : NULL;
	size_t n_headers = 0, header_bytes = 0;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
	{
		n_headers++;
		header_bytes += strlen(kv->key) + strlen(kv->value) + 4;
	}
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	const char *id = c ? client_id(c) : NULL;

	if (c)
		c->headers_seen = true;
	if (n_headers > s->o->max_headers) {
		reply_error(req, 413, "more than %zu request headers", s->o->max_headers);
	} else if (header_bytes > s->o->max_header_bytes) {
		reply_error(req, 413, "request headers larger than %zu bytes", s->o->max_header_bytes);
	} else if (path == NULL) {
		reply_error(req, 400, "no path");
	} else if (strcmp(path, "/v1/health") == 0) {
		cleanup_json json_t *j = json_pack("{s:s}", "status", "ok");
		cmd == EVHTTP_REQ_GET ? reply_json(req, 200, j) : reply_error(req, 405, "use GET");
	} else if (strcmp(path, "/v1/version") == 0) {
		cleanup_json json_t *j = json_pack("{s:s,s:s,s:s}", "name", "sconify-cas", "version",
		                                   sconify_version(), "api", "v1");
		cmd == EVHTTP_REQ_GET ? reply_json(req, 200, j) : reply_error(req, 405, "use GET");
	} else if (strcmp(path, "/v1/attest/challenge") == 0) {
		cmd == EVHTTP_REQ_POST ? post_challenge(s, req) : reply_error(req, 405, "use POST");
	} else if (strcmp(path, "/v1/attest") == 0) {
		cmd == EVHTTP_REQ_POST ? post_attest(s, req, id, body, len)
		                       : reply_error(req, 405, "use POST");
	} else if (strcmp(path, "/v1/sessions") == 0 || sc_startswith(path, "/v1/sessions/")) {
		const char *name = path[strlen("/v1/sessions")] ? path + strlen("/v1/sessions/") : NULL;
		if (id == NULL) {
			reply_error(req, 401, "sessions need a client certificate (mutual TLS)");
		} else if (name == NULL) {
			cmd == EVHTTP_REQ_POST ? session_change(s, req, id, cmd, NULL)
			                       : reply_error(req, 405, "use POST");
		} else if (!sc_policy_valid_session_name(name)) {
			cleanup_free char *q = sc_quote(name, 80);
			reply_error(req, 400, "`%s' is not a session name", q);
		} else if (cmd == EVHTTP_REQ_GET) {
			get_session(s, req, id, name);
		} else if (cmd == EVHTTP_REQ_DELETE) {
			session_change(s, req, id, cmd, name);
		} else {
			reply_error(req, 405, "use GET or DELETE");
		}
	} else {
		cleanup_free char *q = sc_quote(path, 80);
		reply_error(req, 404, "no such endpoint `%s'", q);
	}
	s->cur_peer = NULL;
	if (c)
		arm(c, s->o->request_timeout_ms);
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

static int split_listen(const char *listen, char **ret_host, uint16_t *ret_port, sconify_error_t *err)
{
	const char *colon = strrchr(listen, ':');
	unsigned long long port = 0;
	if (colon == NULL || colon == listen || !sc_parse_u64(colon + 1, &port) || port > 65535) {
		cleanup_free char *q = sc_quote(listen, 80);
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "--listen `%s': not ADDR:PORT", q);
	}
	const char *h = listen;
	size_t hl = (size_t)(colon - listen);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') /* [::1]:443 */
		h++, hl -= 2;
	*ret_host = xstrndup(h, hl);
	*ret_port = (uint16_t)port;
	return 0;
}

int cas_server_run(const cas_options *o, cas_store *store, const char *cert_path, const char *key_path,
                   const char *key_hash, sconify_error_t *err)
{
	cas_server s = {.o = o, .store = store};
	snprintf(s.key_hash, sizeof(s.key_hash), "%s", key_hash);
	if (conn_index < 0)
		conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free_cb);
	s.ctx = SSL_CTX_new(TLS_server_method());
	if (s.ctx == NULL || SSL_CTX_set_min_proto_version(s.ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(s.ctx, cert_path) != 1 ||
	    SSL_CTX_use_PrivateKey_file(s.ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(s.ctx) != 1) {
		char buf[256];
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		SSL_CTX_free(s.ctx);
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "TLS setup: %s", buf);
	}
	/* Ask every client for a certificate, accept any: the identity is its key. */
	SSL_CTX_set_verify(s.ctx, SSL_VERIFY_PEER, accept_any_cert);
	SSL_CTX_set_session_cache_mode(s.ctx, SSL_SESS_CACHE_OFF);
	/* The identity is cached per connection: no renegotiation (review item 13). */
	SSL_CTX_set_options(s.ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_num_tickets(s.ctx, 0);

	cleanup_free char *host = NULL;
	uint16_t port = 0;
	int rc = -1;
	if (split_listen(o->listen, &host, &port, err) < 0) {
		SSL_CTX_free(s.ctx);
		return -1;
	}
	int wfd = -1;
	if (cas_store_writer_start(store, &wfd, err) < 0) {
		SSL_CTX_free(s.ctx);
		return -1;
	}
	s.challenges = sc_cas_challenges_new(o->max_challenges, o->challenge_ttl_ms);
	TAILQ_INIT(&s.conns);
	TAILQ_INIT(&s.deferred);
	event_set_log_callback(log_cb);
	s.base = event_base_new();
	s.flush = event_new(s.base, -1, EV_PERSIST, flush_cb, &s);
	struct timeval ftv = {.tv_sec = o->audit_flush_ms / 1000,
	                      .tv_usec = (o->audit_flush_ms % 1000) * 1000};
	event_add(s.flush, &ftv);
	s.written = event_new(s.base, wfd, EV_READ | EV_PERSIST, written_cb, &s);
	event_add(s.written, NULL);
	s.http = evhttp_new(s.base);
	struct event *sigint = evsignal_new(s.base, SIGINT, on_signal, s.base);
	struct event *sigterm = evsignal_new(s.base, SIGTERM, on_signal, s.base);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	evhttp_set_bevcb(s.http, bev_cb, &s);
	evhttp_set_gencb(s.http, handle, &s);
	evhttp_set_max_body_size(s.http, (ev_ssize_t)o->max_body);
	/* evhttp's own cap answers 400 and stops reading; ours (in handle())
	 * answers 413 for anything between. */
	evhttp_set_max_headers_size(s.http, (ev_ssize_t)(4 * o->max_header_bytes));
	evhttp_set_allowed_methods(s.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
	struct timeval tv = {.tv_sec = o->request_timeout_ms / 1000,
	                     .tv_usec = (o->request_timeout_ms % 1000) * 1000};
	evhttp_set_timeout_tv(s.http, &tv);
	/* Read the rest of a refused body so that the client sees the 413. */
	evhttp_set_flags(s.http, EVHTTP_SERVER_LINGERING_CLOSE);
	struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(s.http, host, port);
	if (bound == NULL) {
		cleanup_free char *q = sc_quote(o->listen, 80);
		sc_error(err, SCONIFY_ERR_IO, errno, "cannot listen on `%s'", q);
	} else {
		/* Accepted sockets inherit TCP_NODELAY on Linux: without it a
		 * reply written in two segments waits for the client's delayed ACK
		 * (40 ms a request). */
		int one = 1;
		setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char addr[INET6_ADDRSTRLEN] = "?";
		uint16_t bound_port = port;
		if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) == 0) {
			if (ss.ss_family == AF_INET6) {
				struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
				inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof(addr));
				bound_port = ntohs(a->sin6_port);
			} else {
				struct sockaddr_in *a = (struct sockaddr_in *)&ss;
				inet_ntop(AF_INET, &a->sin_addr, addr, sizeof(addr));
				bound_port = ntohs(a->sin_port);
			}
		}
		printf("listening: %s%s%s:%u\n", ss.ss_family == AF_INET6 ? "[" : "", addr,
		       ss.ss_family == AF_INET6 ? "]" : "", bound_port);
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
		reply_error(d->req, 503, "the CAS is stopping");
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
	evhttp_free(s.http);
	event_free(s.written);
	event_free(s.flush);
	for (size_t i = 0; i < PEER_BUCKETS; i++)
		while (s.peers[i]) {
			peer *p = s.peers[i];
			s.peers[i] = p->next;
			free(p);
		}
	event_free(sigint);
	event_free(sigterm);
	event_base_free(s.base);
	sc_cas_challenges_free(s.challenges);
	SSL_CTX_free(s.ctx);
	return rc;
}
