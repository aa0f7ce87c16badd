/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hardened HTTP server (httpd.h): evhttp over plain or OpenSSL
 * bufferevents, with a state per connection (struct conn) for the deadline,
 * the admission caps and the client's identity.
 *
 * Where that state hangs, so that it is freed exactly once whichever way the
 * connection ends (client gone, deadline, eviction, evhttp_free()):
 *   - TLS: off the SSL object (ex_data), freed with it (libevent finalizes
 *     bufferevents from the loop, or in event_base_free(), so this comes a
 *     loop turn after evhttp let the connection go);
 *   - plain: evhttp's close callback of the connection, which evhttp runs
 *     in evhttp_connection_free() for every connection it accepted. It can
 *     only be set once evhttp has made the connection, after our
 *     bufferevent callback returned: anchor() sets it at admission (the
 *     loop turn after accept, or the first request if that comes first),
 *     finding the connection as the argument evhttp gave the bufferevent's
 *     callbacks. A connection evhttp dropped before that (a client that
 *     reset at once) has had its callbacks cleared by bufferevent_free(),
 *     and the bufferevent is finalized only after the callbacks already
 *     due on that turn, admission among them: anchor() frees the state
 *     then. A pass-through bufferevent_filter_new(), whose free_context
 *     would be the other anchor, does not work with evhttp in libevent
 *     2.1: it stalls replies and drops the last one when evhttp closes
 *     (evhttp sees the bytes handed down as written, and shuts the socket).
 * The server itself is freed with its last connection (see sc_httpd_free()).
 *
 * From a request to its conn: a table keyed by the bufferevent evhttp owns.
 * It is global (evhttp 2.1 has no user data on a connection nor on the
 * server), guarded by a mutex for servers on several threads.
 *
 * Deadlines: evhttp's own timeouts restart with every byte, so a client
 * trickling one byte at a time (slowloris) would outlive them; the deadline
 * does not. It ends a connection by shutdown(2) of its socket, which evhttp
 * sees as the client leaving and cleans up after.
 *
 * Admission runs on the loop turn after accept (evhttp hands the socket to
 * the bufferevent only after our callback made it), or at the first request
 * if that comes first: at most max_per_ip connections from one address (the
 * newest is closed), at most max_connections in all: past it the oldest
 * connection that has not completed a request is closed, so idle sockets
 * cannot keep real clients out.
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
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/cleanup.h"
#include "core/hex.h"
#include "core/json-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "httpd/httpd.h"

#define PEER_BUCKETS 4096
#define CONN_BUCKETS 4096
#define KEY_HASH_HEX 64
/* Closed sockets are freed on a later loop turn; past this margin over
 * max_connections the newcomer goes instead of an older connection (the CAS
 * keeps max_connections + 64 below RLIMIT_NOFILE). */
#define CLOSING_MARGIN 32

typedef struct peer {
	struct peer *next;
	size_t count;
	char addr[INET6_ADDRSTRLEN];
} peer;

typedef struct conn conn;
TAILQ_HEAD(conn_list, conn);

struct sc_httpd {
	struct event_base *base;
	struct evhttp *http;
	SSL_CTX *tls;
	sc_httpd_limits limits;
	char *name;
	sc_httpd_handler handler;
	void *arg;
	size_t active, closing;
	struct conn_list conns; /* oldest first */
	peer *peers[PEER_BUCKETS];
	struct evhttp_bound_socket **bound;
	size_t n_bound;
	bool freed; /* sc_httpd_free() ran: the last connection frees the rest */
};

struct conn {
	sc_httpd *h;
	struct bufferevent *bev;
	bool anchored; /* its freeing is tied to the connection's end */
	struct event *deadline;
	struct event *admit;
	TAILQ_ENTRY(conn) link;
	conn *bucket_next;
	peer *peer;
	bool admitted;
	bool headers_seen; /* has sent the headers of a request */
	bool closing;
	bool id_known;
	bool has_id;
	char id[KEY_HASH_HEX + 1];
};

/* ---- from a bufferevent to its conn ---- */

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static conn *table[CONN_BUCKETS];

static size_t bucket_of(const struct bufferevent *bev)
{
	uint64_t v = (uint64_t)(uintptr_t)bev;
	return (size_t)((v * 0x9e3779b97f4a7c15ull) >> 52) % CONN_BUCKETS;
}

static void table_add(conn *c)
{
	size_t b = bucket_of(c->bev);
	pthread_mutex_lock(&table_lock);
	c->bucket_next = table[b];
	table[b] = c;
	pthread_mutex_unlock(&table_lock);
}

static void table_remove(conn *c)
{
	size_t b = bucket_of(c->bev);
	pthread_mutex_lock(&table_lock);
	for (conn **p = &table[b]; *p; p = &(*p)->bucket_next)
		if (*p == c) {
			*p = c->bucket_next;
			break;
		}
	pthread_mutex_unlock(&table_lock);
}

static conn *conn_of(struct evhttp_request *req)
{
	struct evhttp_connection *evc = req ? evhttp_request_get_connection(req) : NULL;
	struct bufferevent *bev = evc ? evhttp_connection_get_bufferevent(evc) : NULL;
	if (bev == NULL)
		return NULL;
	conn *c = NULL;
	pthread_mutex_lock(&table_lock);
	for (c = table[bucket_of(bev)]; c; c = c->bucket_next)
		if (c->bev == bev)
			break;
	pthread_mutex_unlock(&table_lock);
	return c;
}

/* ---- connections ---- */

static void httpd_destroy(sc_httpd *h)
{
	for (size_t i = 0; i < PEER_BUCKETS; i++)
		while (h->peers[i]) {
			peer *p = h->peers[i];
			h->peers[i] = p->next;
			free(p);
		}
	free(h->bound);
	free(h->name);
	free(h);
}

static void conn_free(conn *c)
{
	if (c == NULL)
		return;
	sc_httpd *h = c->h;
	if (c->bev)
		table_remove(c);
	if (c->deadline)
		event_free(c->deadline);
	if (c->admit)
		event_free(c->admit);
	if (c->peer)
		c->peer->count--; /* peers stay allocated: at most one per address seen, reused */
	if (c->closing)
		h->closing--;
	TAILQ_REMOVE(&h->conns, c, link);
	h->active--;
	free(c);
	if (h->freed && h->active == 0)
		httpd_destroy(h);
}

static void ssl_conn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	conn_free(ptr);
}

static void evcon_close_cb(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	conn_free(arg);
}

/* Plain connections: ties c to evhttp's connection (see the top). False
 * when evhttp has dropped it already: c is freed. */
static bool anchor(conn *c)
{
	if (c->anchored)
		return true;
	void (*readcb)(struct bufferevent *, void *) = NULL;
	void *evcon = NULL;
	bufferevent_getcb(c->bev, &readcb, NULL, NULL, &evcon);
	if (evcon == NULL) {
		conn_free(c);
		return false;
	}
	evhttp_connection_set_closecb(evcon, evcon_close_cb, c);
	c->anchored = true;
	return true;
}

static CRYPTO_ONCE ex_once = CRYPTO_ONCE_STATIC_INIT;
static int ex_index = -1;

static void ex_init(void)
{
	ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_conn_free_cb);
}

static void close_conn(conn *c)
{
	evutil_socket_t sfd = bufferevent_getfd(c->bev);
	if (!c->closing) {
		c->closing = true;
		c->h->closing++;
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

static void arm(conn *c)
{
	unsigned ms = c->h->limits.request_timeout_ms;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	evtimer_add(c->deadline, &tv);
}

/* ---- admission ---- */

static peer *peer_get(sc_httpd *h, const char *addr)
{
	uint64_t v = 1469598103934665603ull; /* FNV-1a: addresses are not secret, buckets chain */
	for (const char *p = addr; *p; p++)
		v = (v ^ (uint8_t)*p) * 1099511628211ull;
	peer **b = &h->peers[v % PEER_BUCKETS];
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

static void admit(conn *c)
{
	sc_httpd *h = c->h;
	if (c->admitted)
		return;
	c->admitted = true;
	evtimer_del(c->admit);
	if (!anchor(c))
		return;
	evutil_socket_t fd = bufferevent_getfd(c->bev);
#ifndef __linux__
	/* Linux copies TCP_NODELAY from the listening socket; others may not. */
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
#endif
	char addr[INET6_ADDRSTRLEN];
	peer_name(fd, addr);
	c->peer = peer_get(h, addr);
	c->peer->count++;
	if (c->peer->count > h->limits.max_per_ip)
		return close_conn(c);
	if (h->active - h->closing > h->limits.max_connections) {
		/* Evict the oldest connection that has not completed a request. */
		conn *victim = NULL;
		TAILQ_FOREACH(victim, &h->conns, link)
		if (victim != c && !victim->closing && !victim->headers_seen)
			break;
		if (victim == NULL || h->active > h->limits.max_connections + CLOSING_MARGIN)
			return close_conn(c);
		close_conn(victim);
	}
}

static void admit_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	admit(arg);
}

static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
	sc_httpd *h = arg;
	conn *c = xzalloc(sizeof(*c));
	c->h = h;
	h->active++;
	TAILQ_INSERT_TAIL(&h->conns, c, link);
	c->deadline = evtimer_new(base, deadline_cb, c);
	c->admit = evtimer_new(base, admit_cb, c);
	if (c->deadline == NULL || c->admit == NULL)
		abort();
	/* From here on the bufferevent owns c: freeing it frees c. */
	if (h->tls) {
		SSL *ssl = SSL_new(h->tls);
		if (ssl == NULL)
			abort();
		SSL_set_ex_data(ssl, ex_index, c);
		c->anchored = true;
		c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
		                                        BEV_OPT_CLOSE_ON_FREE);
	} else {
		c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (c->bev == NULL)
		abort();
	table_add(c);
	arm(c);
	struct timeval zero = {0, 0};
	evtimer_add(c->admit, &zero);
	return c->bev;
}

/* ---- libevent's log ---- */

static char log_name[64] = "httpd";

/* libevent's own messages ("Error from accept() call") at most once a
 * second: under EMFILE it would otherwise write megabytes a second. It is
 * the process's one log callback (libevent has no other). */
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
		fprintf(stderr, "%s: libevent: %s (%lu similar messages suppressed)\n", log_name, msg,
		        suppressed);
	else
		fprintf(stderr, "%s: libevent: %s\n", log_name, msg);
	suppressed = 0;
}

/* ---- requests ---- */

static void request_cb(struct evhttp_request *req, void *arg)
{
	sc_httpd *h = arg;
	conn *c = conn_of(req);
	if (c) {
		evtimer_del(c->deadline);
		admit(c);
		c->headers_seen = true;
	}
	size_t n_headers = 0, header_bytes = 0;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
	{
		n_headers++;
		header_bytes += strlen(kv->key) + strlen(kv->value) + 4;
	}
	if (c && c->closing)
		sc_httpd_reply_error(req, 503, "too many connections");
	else if (n_headers > h->limits.max_headers)
		sc_httpd_reply_error(req, 413, "more than %zu request headers", h->limits.max_headers);
	else if (header_bytes > h->limits.max_header_bytes)
		sc_httpd_reply_error(req, 413, "request headers larger than %zu bytes",
		                     h->limits.max_header_bytes);
	else
		h->handler(req, h->arg);
	/* The reply (now or later) and the next request get the same time.
	 * Replies are written on later loop turns, so c is still there. */
	if (c)
		arm(c);
}

/* ---- the server ---- */

int sc_httpd_new(struct event_base *base, const sc_httpd_limits *limits, SSL_CTX *tls,
                 sc_httpd_handler handler, void *arg, sc_httpd **ret, sconify_error_t *err)
{
	if (base == NULL || limits == NULL || handler == NULL)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "httpd: no event loop, limits or handler");
	if (limits->max_connections == 0 || limits->max_per_ip == 0 || limits->request_timeout_ms == 0 ||
	    limits->max_headers == 0 || limits->max_header_bytes == 0)
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "httpd: connection caps, header caps and the request timeout must not be 0");
	if (tls && (!CRYPTO_THREAD_run_once(&ex_once, ex_init) || ex_index < 0))
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "httpd: no SSL ex_data index");
	struct evhttp *http = evhttp_new(base);
	if (http == NULL)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "httpd: cannot create the HTTP server");
	sc_httpd *h = xzalloc(sizeof(*h));
	h->base = base;
	h->http = http;
	h->tls = tls;
	h->limits = *limits;
	h->name = xstrdup(limits->name ? limits->name : "httpd");
	h->limits.name = h->name;
	h->handler = handler;
	h->arg = arg;
	TAILQ_INIT(&h->conns);
	snprintf(log_name, sizeof(log_name), "%s", h->name);
	event_set_log_callback(log_cb);

	evhttp_set_bevcb(http, bev_cb, h);
	evhttp_set_gencb(http, request_cb, h);
	evhttp_set_max_body_size(http, (ev_ssize_t)limits->max_body);
	/* evhttp's own cap answers 400 and stops reading; ours (request_cb)
	 * answers 413 for anything between. */
	evhttp_set_max_headers_size(http, (ev_ssize_t)(4 * limits->max_header_bytes));
	evhttp_set_allowed_methods(http, limits->allowed_methods
	                                         ? limits->allowed_methods
	                                         : EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                                   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	struct timeval tv = {.tv_sec = limits->request_timeout_ms / 1000,
	                     .tv_usec = (limits->request_timeout_ms % 1000) * 1000};
	evhttp_set_timeout_tv(http, &tv);
	/* Read the rest of a refused body so that the client sees the 413. */
	evhttp_set_flags(http, EVHTTP_SERVER_LINGERING_CLOSE);
	*ret = h;
	return 0;
}

int sc_httpd_split_listen(const char *listen, char **ret_host, unsigned *ret_port, sconify_error_t *err)
{
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	unsigned long long port = 0;
	if (colon == NULL || colon == listen || !sc_parse_u64(colon + 1, &port) || port > 65535) {
		cleanup_free char *q = sc_quote(listen ? listen : "", 80);
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "listen address `%s': not ADDR:PORT", q);
	}
	const char *host = listen;
	size_t len = (size_t)(colon - listen);
	if (host[0] == '[') { /* [::1]:443 */
		if (len < 3 || host[len - 1] != ']') {
			cleanup_free char *q = sc_quote(listen, 80);
			return sc_error(err, SCONIFY_ERR_USAGE, 0, "listen address `%s': not [ADDR]:PORT", q);
		}
		host++, len -= 2;
	}
	*ret_host = xstrndup(host, len);
	*ret_port = (unsigned)port;
	return 0;
}

int sc_httpd_listen(sc_httpd *h, const char *listen, char **ret_bound, sconify_error_t *err)
{
	cleanup_free char *host = NULL;
	unsigned port = 0;
	if (sc_httpd_split_listen(listen, &host, &port, err) < 0)
		return -1;
	errno = 0;
	struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(h->http, host, (uint16_t)port);
	if (bound == NULL) {
		int e = errno;
		cleanup_free char *q = sc_quote(listen, 80);
		return sc_error(err, SCONIFY_ERR_IO, e, "cannot listen on `%s'", q);
	}
	evutil_socket_t fd = evhttp_bound_socket_get_fd(bound);
	/* Accepted sockets inherit TCP_NODELAY on Linux (elsewhere admit()
	 * sets it): without it a reply written in two segments waits for the
	 * client's delayed ACK (40 ms a request). */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	h->bound = xreallocarray(h->bound, h->n_bound + 1, sizeof(*h->bound));
	h->bound[h->n_bound++] = bound;
	if (ret_bound) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char addr[INET6_ADDRSTRLEN] = "?";
		unsigned bound_port = port;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			if (ss.ss_family == AF_INET6) {
				struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
				inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof(addr));
				bound_port = ntohs(a->sin6_port);
			} else if (ss.ss_family == AF_INET) {
				struct sockaddr_in *a = (struct sockaddr_in *)&ss;
				inet_ntop(AF_INET, &a->sin_addr, addr, sizeof(addr));
				bound_port = ntohs(a->sin_port);
			}
		}
		bool v6 = ss.ss_family == AF_INET6;
		*ret_bound = xasprintf("%s%s%s:%u", v6 ? "[" : "", addr, v6 ? "]" : "", bound_port);
	}
	return 0;
}

void sc_httpd_stop_accepting(sc_httpd *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n_bound; i++)
		evhttp_del_accept_socket(h->http, h->bound[i]);
	h->n_bound = 0;
}

void sc_httpd_free(sc_httpd *h)
{
	if (h == NULL)
		return;
	/* TLS connections' state outlives evhttp_free() until libevent
	 * finalizes their bufferevents: no timer of theirs may fire meanwhile. */
	conn *c;
	TAILQ_FOREACH(c, &h->conns, link)
	{
		evtimer_del(c->deadline);
		evtimer_del(c->admit);
		c->admitted = true;
	}
	evhttp_free(h->http); /* runs the close callbacks of plain ones */
	h->http = NULL;
	/* Plain connections not anchored yet: evhttp has freed them. */
	conn *next;
	for (c = TAILQ_FIRST(&h->conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (!c->anchored)
			conn_free(c);
	}
	h->freed = true;
	if (h->active == 0)
		httpd_destroy(h);
}

/* ---- in a handler ---- */

const char *sc_httpd_peer(struct evhttp_request *req)
{
	conn *c = conn_of(req);
	if (c == NULL)
		return "?";
	admit(c);
	return c->peer ? c->peer->addr : "?";
}

SSL *sc_httpd_ssl(struct evhttp_request *req)
{
	conn *c = conn_of(req);
	if (c == NULL || c->h->tls == NULL)
		return NULL;
	return bufferevent_openssl_get_ssl(c->bev);
}

/* The client's identity: SHA-256 of its certificate's SubjectPublicKeyInfo.
 * The certificate is not checked against any CA here (the caller's SSL_CTX
 * decides); the TLS handshake proved the client holds its private key. */
const char *sc_httpd_client_key_hash(struct evhttp_request *req)
{
	conn *c = conn_of(req);
	if (c == NULL || c->h->tls == NULL)
		return NULL;
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
	int ok = EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	if (!ok || mdlen != sizeof(md))
		return NULL;
	sc_hex_encode(md, sizeof(md), c->id);
	c->has_id = true;
	return c->id;
}

const char *sc_httpd_header(struct evhttp_request *req, const char *name, bool *ret_repeated)
{
	const char *value = NULL;
	bool repeated = false;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
	{
		if (strcasecmp(kv->key, name) != 0)
			continue;
		if (value) {
			repeated = true;
			break;
		}
		value = kv->value;
	}
	if (ret_repeated)
		*ret_repeated = repeated;
	return value;
}

/* ---- replies ---- */

const char *sc_httpd_reason(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	default:
		return code < 300 ? "OK" : code < 500 ? "Bad Request" : "Internal Server Error";
	}
}

static void wipe_free_cb(const void *data, size_t len, void *arg)
{
	(void)arg;
	OPENSSL_cleanse((void *)data, len);
	free((void *)data);
}

void sc_httpd_reply_json(struct evhttp_request *req, int code, json_t *body, bool secret)
{
	size_t len = 0;
	char *text = sc_json_dump(body, &len);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	struct evbuffer *out = evbuffer_new();
	if (out == NULL)
		abort();
	if (secret) {
		/* Wiped when evhttp is done with it, whether sent or not. */
		evbuffer_add_reference(out, text, len, wipe_free_cb, NULL);
	} else {
		evbuffer_add(out, text, len);
		free(text);
	}
	evbuffer_add(out, "\n", 1);
	evhttp_send_reply(req, code, sc_httpd_reason(code), out);
	evbuffer_free(out);
}

void sc_httpd_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	cleanup_json json_t *j = json_pack("{s:s}", "error", msg);
	if (j == NULL) /* not UTF-8: messages quote outside strings, so only a bug gets here */
		j = json_pack("{s:s}", "error", "internal error");
	sc_httpd_reply_json(req, code, j, false);
}

void sc_httpd_reply_text(struct evhttp_request *req, int code, const char *content_type, const char *text,
                         size_t len)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type);
	struct evbuffer *out = evbuffer_new();
	if (out == NULL)
		abort();
	evbuffer_add(out, text, len);
	evhttp_send_reply(req, code, sc_httpd_reason(code), out);
	evbuffer_free(out);
}
