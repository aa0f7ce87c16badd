/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP over libcurl for the registry client: requests with retries (backoff
 * with jitter on connection errors, 5xx and 429, honouring Retry-After),
 * capped response bodies, streamed downloads (a reader) and streamed uploads
 * (a writer) without threads (curl's multi interface, paused and resumed as
 * the stream is pulled or pushed), TLS verified by default with extra CAs and
 * client certificates from a --cert-dir, proxies from the environment.
 *
 * Credentials travel only in `authorization`, which libcurl never forwards to
 * another host, port or scheme when it follows a redirect (we never set
 * CURLOPT_UNRESTRICTED_AUTH), and which the debug trace never prints.
 */
#ifndef SC_HTTP_H
#define SC_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/stream.h"
#include "sconify.h"

typedef struct sc_http sc_http;

typedef void (*sc_http_debug_fn)(void *userdata, const char *line);

typedef struct {
	bool tls_verify;         /* false: accept any certificate */
	const char *cert_dir;    /* *.crt: extra CAs; NAME.cert + NAME.key: client certificate */
	int retries;             /* further attempts: < 0 none, 0 the default (4), > 0 that many */
	long connect_timeout_ms; /* default 30 s */
	long stall_timeout_ms;   /* a transfer that moves no byte for this long fails (default 60 s) */
	sc_http_debug_fn debug;  /* request/response trace, credentials redacted */
	void *debug_userdata;
} sc_http_options;

int sc_http_new(const sc_http_options *o, sc_http **ret, sconify_error_t *err);
void sc_http_free(sc_http *h);
SC_DEFINE_CLEANUP(sc_http *, sc_http_free)
#define cleanup_http _cleanup_(sc_http_freep)

typedef struct {
	const char *method; /* "GET" when NULL */
	const char *url;
	const char *authorization;  /* the Authorization header's value, or NULL */
	const char *const *headers; /* more "Name: value" lines, NULL-terminated, or NULL */
	const void *body;           /* a body held in memory */
	size_t body_len;
	bool follow_redirects;
	size_t max_response;  /* cap on a kept response body (default 1 MiB; larger bodies are cut) */
	bool no_retry;        /* send once: the caller handles failures */
	bool secret_response; /* the body holds a secret (a token): never copied around */
} sc_http_request;

typedef struct {
	char *name; /* lowercase */
	char *value;
} sc_http_header;

typedef struct {
	long status;
	char *body; /* NUL-terminated, at most max_response bytes */
	size_t body_len;
	bool body_truncated;
	sc_http_header *headers; /* of the final response */
	size_t n_headers;
	char *url; /* where the final response came from */
} sc_http_response;

const char *sc_http_header_get(const sc_http_response *r, const char *name);
void sc_http_response_clear(sc_http_response *r);

/* Performs a request and keeps the response. Retries transient failures
 * (unless no_retry): no connection, a dropped one, a timeout, 429, 500, 502,
 * 503, 504. Returns 0 whenever a response arrived, whatever its status (the
 * last one after the retries); < 0 with SCONIFY_ERR_NETWORK when none did. */
int sc_http_do(sc_http *h, const sc_http_request *req, sc_http_response *ret, sconify_error_t *err);

/* Starts a request whose response body is streamed: returns once the
 * response's status and headers arrived (in *ret_head, without body). For a
 * 2xx status *ret_body reads the body; for any other status the body is read
 * into ret_head->body and *ret_body is NULL. Not retried. */
int sc_http_stream(sc_http *h, const sc_http_request *req, sc_http_response *ret_head, sc_reader **ret_body,
                   sconify_error_t *err);

/* Starts a request whose body is pushed through *ret_writer (size < 0:
 * unknown, sent chunked). sc_http_upload_finish() ends the body and waits for
 * the response. Not retried: the body is gone once sent. */
typedef struct sc_http_upload sc_http_upload;
int sc_http_upload_begin(sc_http *h, const sc_http_request *req, int64_t size, sc_http_upload **ret,
                         sc_writer **ret_writer, sconify_error_t *err);
int sc_http_upload_finish(sc_http_upload *u, sc_http_response *ret, sconify_error_t *err);
void sc_http_upload_free(sc_http_upload *u);

/* How long to wait before the attempt-th retry (0-based): Retry-After when the
 * response carries one (capped at 60 s), else sc_backoff_ms(). */
long sc_http_retry_delay_ms(unsigned attempt, const sc_http_response *r);
/* Further attempts this client makes (the options' retries, resolved). */
int sc_http_retries(const sc_http *h);
/* When the server answered an upload before its body was complete: that
 * answer (a refusal, usually), else NULL. */
const sc_http_response *sc_http_upload_early_answer(const sc_http_upload *u);
/* Whether a status is worth another attempt. */
bool sc_http_status_transient(long status);

#endif
