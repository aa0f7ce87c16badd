/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An HTTP/1.1 server for services facing hostile clients: libevent's evhttp,
 * plain or over OpenSSL, with the limits the CAS and `sconify serve' share
 * (security.md §4):
 *   - request bodies and header bytes capped by evhttp, the number of
 *     headers and the header bytes checked before the handler runs (413);
 *     a header sent twice where the handler asked for one (see
 *     sc_httpd_header()) is the handler's to refuse;
 *   - every connection has a deadline: the TLS handshake plus one whole
 *     request must arrive within request_timeout, and after each reply the
 *     next request gets the same time (a client trickling bytes cannot
 *     outlive it, unlike evhttp's own per-read timeouts);
 *   - at most max_per_ip connections from one address, at most
 *     max_connections in all: past it the oldest connection that has not
 *     completed a request is closed;
 *   - libevent's own log (accept errors) at most once a second.
 * The handler runs on the loop thread, once per request within the limits;
 * it replies at once or later (evhttp_send_reply on the same loop). A
 * request whose connection has gone stays valid until replied to (evhttp
 * frees it then, unsent).
 *
 * Handlers leave the connection's close callback alone: plain connections
 * use it (evhttp_connection_set_closecb() would replace it).
 *
 * The caller ignores SIGPIPE (a library does not touch signal dispositions):
 * a client may close its socket before the reply is written.
 */
#ifndef SC_HTTPD_H
#define SC_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

struct event_base;
struct evhttp_request;
struct json_t;
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

typedef struct {
	const char *name; /* for log lines: "sconify-cas", "sconify serve" */
	size_t max_body;
	size_t max_header_bytes;
	size_t max_headers;
	size_t max_connections;
	size_t max_per_ip;
	unsigned request_timeout_ms;
	unsigned allowed_methods; /* EVHTTP_REQ_* bits; 0: GET, POST, HEAD, PUT, DELETE */
} sc_httpd_limits;

typedef void (*sc_httpd_handler)(struct evhttp_request *req, void *arg);

typedef struct sc_httpd sc_httpd;

/* tls: NULL for plain HTTP, else the server's context (the caller keeps it
 * alive until sc_httpd_free()), with its certificate and its verify mode:
 * client certificates are the context's to ask for and to check. The caps
 * and the timeout must not be 0 (USAGE). libevent's log callback is the
 * process's: the last server created names the lines. */
int sc_httpd_new(struct event_base *base, const sc_httpd_limits *limits, SSL_CTX *tls,
                 sc_httpd_handler handler, void *arg, sc_httpd **ret, sconify_error_t *err);
/* Binds ADDR:PORT (IPv6 as [::1]:PORT; port 0 picks one); ret_bound (may be
 * NULL) gets the address bound, "127.0.0.1:41234". */
int sc_httpd_listen(sc_httpd *h, const char *listen, char **ret_bound, sconify_error_t *err);
/* Stops accepting new connections (graceful shutdown); open ones go on. */
void sc_httpd_stop_accepting(sc_httpd *h);
/* Closes every connection. Requests the handler still holds are freed with
 * them: reply to those first. The state of the connections is released as
 * libevent finalizes them, on the loop or in event_base_free(); the rest of
 * the server goes with the last of them. */
void sc_httpd_free(sc_httpd *h);

/* In a handler (or later, while the request is held): the client's address
 * ("?" when unknown or the connection has gone). */
const char *sc_httpd_peer(struct evhttp_request *req);
/* The TLS connection, NULL for plain HTTP (or the connection has gone). */
SSL *sc_httpd_ssl(struct evhttp_request *req);
/* SHA-256 (lowercase hex) of the client certificate's SubjectPublicKeyInfo,
 * cached per connection; NULL without a client certificate. */
const char *sc_httpd_client_key_hash(struct evhttp_request *req);
/* A request header, case-insensitive; NULL when absent. *ret_repeated is
 * set when it was sent more than once (NULL is allowed). */
const char *sc_httpd_header(struct evhttp_request *req, const char *name, bool *ret_repeated);

/* Replies: JSON body + "\n", Content-Type application/json, Cache-Control
 * no-store. secret: the body text is wiped once sent. */
void sc_httpd_reply_json(struct evhttp_request *req, int code, struct json_t *body, bool secret);
/* {"error": MESSAGE} */
__attribute__((format(printf, 3, 4))) void sc_httpd_reply_error(struct evhttp_request *req, int code,
                                                                const char *fmt, ...);
/* Any body with the given content type. */
void sc_httpd_reply_text(struct evhttp_request *req, int code, const char *content_type, const char *text,
                         size_t len);
const char *sc_httpd_reason(int code);

/* Splits ADDR:PORT ([v6]:PORT); USAGE naming listen when malformed. */
int sc_httpd_split_listen(const char *listen, char **ret_host, unsigned *ret_port, sconify_error_t *err);

#endif
