/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/httpd against raw sockets on loopback: each test runs a server on an
 * event loop in a thread of its own (127.0.0.1, port 0) and talks to it with
 * blocking sockets (receive timeout 10 s, so that a bug hangs no test).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/hex.h"
#include "core/xalloc.h"
#include "httpd/httpd.h"
#include "support.h"

/* ---- the server under test ---- */

#define BIG_REPLY (16u << 20)

typedef struct {
	struct event_base *base;
	struct event *stop;
	sc_httpd *h;
	SSL_CTX *tls;
	pthread_t thread;
	int pipe[2];
	unsigned port;
} server;

/* /hello: text; /header: X-Token and whether it came twice; /whoami: peer,
 * TLS and the client key's hash; anything else: the body's size. */
static void handler(struct evhttp_request *req, void *arg)
{
	(void)arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (strcmp(path, "/hello") == 0) {
		sc_httpd_reply_text(req, 200, "text/plain", "hello\n", 6);
	} else if (strcmp(path, "/header") == 0) {
		bool repeated = true;
		const char *v = sc_httpd_header(req, "X-Token", &repeated);
		json_t *j = json_pack("{s:s?,s:b}", "value", v, "repeated", repeated);
		sc_httpd_reply_json(req, 200, j, false);
		json_decref(j);
	} else if (strcmp(path, "/big") == 0) {
		/* More than a loopback socket buffers, sent before the close. */
		size_t n = BIG_REPLY;
		char *big = xmalloc(n);
		memset(big, 'z', n);
		sc_httpd_reply_text(req, 200, "application/octet-stream", big, n);
		free(big);
	} else if (strcmp(path, "/whoami") == 0) {
		json_t *j = json_pack("{s:s,s:b,s:s?}", "peer", sc_httpd_peer(req), "tls",
		                      sc_httpd_ssl(req) != NULL, "key", sc_httpd_client_key_hash(req));
		sc_httpd_reply_json(req, 200, j, true);
		json_decref(j);
	} else {
		size_t n = evbuffer_get_length(evhttp_request_get_input_buffer(req));
		sc_httpd_reply_error(req, 404, "handler saw %zu body bytes", n);
	}
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	event_base_loopbreak(arg);
}

static void *loop_thread(void *arg)
{
	server *s = arg;
	event_base_dispatch(s->base);
	return NULL;
}

static sc_httpd_limits default_limits(void)
{
	return (sc_httpd_limits){.name = "test",
	                         .max_body = 1024,
	                         .max_header_bytes = 4096,
	                         .max_headers = 16,
	                         .max_connections = 64,
	                         .max_per_ip = 32,
	                         .request_timeout_ms = 10000,
	                         .allowed_methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST};
}

static server *server_start(const sc_httpd_limits *lim, SSL_CTX *tls)
{
	signal(SIGPIPE, SIG_IGN);
	server *s = xzalloc(sizeof(*s));
	sconify_error_t err = NULL;
	s->tls = tls;
	s->base = event_base_new();
	ck_assert_ptr_nonnull(s->base);
	ck_assert_int_eq(pipe(s->pipe), 0);
	s->stop = event_new(s->base, s->pipe[0], EV_READ, stop_cb, s->base);
	event_add(s->stop, NULL);
	ck_assert_ok(sc_httpd_new(s->base, lim, tls, handler, s, &s->h, &err), err);
	char *bound = NULL;
	ck_assert_ok(sc_httpd_listen(s->h, "127.0.0.1:0", &bound, &err), err);
	ck_assert(strncmp(bound, "127.0.0.1:", 10) == 0);
	s->port = (unsigned)atoi(bound + 10);
	ck_assert_uint_ne(s->port, 0);
	free(bound);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, loop_thread, s), 0);
	return s;
}

static void server_stop(server *s)
{
	ck_assert_int_eq(write(s->pipe[1], "x", 1), 1);
	pthread_join(s->thread, NULL);
	sc_httpd_free(s->h);
	event_free(s->stop);
	event_base_free(s->base); /* finalizes the connections, and the server with the last */
	close(s->pipe[0]);
	close(s->pipe[1]);
	if (s->tls)
		SSL_CTX_free(s->tls);
	free(s);
}

/* ---- raw clients ---- */

static int tcp_connect(unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static bool send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		p += n, len -= (size_t)n;
	}
	return true;
}

/* Everything until the server closes (or 10 s of silence). */
static char *read_all(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = xmalloc(cap);
	for (;;) {
		if (cap - len < 1024)
			buf = xrealloc(buf, cap *= 2);
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* One exchange on a fresh connection: the request should say
 * `Connection: close' so that the reply ends with the connection. */
static char *exchange(unsigned port, const char *request, size_t len)
{
	int fd = tcp_connect(port);
	ck_assert(send_all(fd, request, len));
	char *r = read_all(fd);
	close(fd);
	return r;
}

static char *get(unsigned port, const char *path, const char *headers)
{
	char *req = xasprintf("GET %s HTTP/1.1\r\nHost: test\r\n%sConnection: close\r\n\r\n", path,
	                      headers ? headers : "");
	char *r = exchange(port, req, strlen(req));
	free(req);
	return r;
}

static int status_of(const char *response)
{
	int code = 0;
	if (sscanf(response, "HTTP/1.%*d %d", &code) != 1)
		return 0;
	return code;
}

static json_t *body_json(const char *response)
{
	const char *b = strstr(response, "\r\n\r\n");
	ck_assert_ptr_nonnull(b);
	json_t *j = json_loads(b + 4, 0, NULL);
	ck_assert_msg(j != NULL, "not JSON: %s", b + 4);
	return j;
}

/* Whether the server closes the connection: true when a read ends (EOF or
 * reset) within about 10 s, while the client goes on trickling `trickle'
 * one byte at a time (NULL: sends nothing). */
static bool closed_by_server(int fd, const char *trickle)
{
	size_t sent = 0, tlen = trickle ? strlen(trickle) : 0;
	for (int i = 0; i < 200; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) > 0) {
			char c;
			ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
				return true;
		}
		if (trickle && sent < tlen) {
			if (send(fd, trickle + sent, 1, MSG_NOSIGNAL) != 1)
				return true;
			sent++;
		}
	}
	return false;
}

/* ---- TLS ---- */

static void make_cert(EVP_PKEY **ret_key, X509 **ret_cert)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(k);
	X509 *x = X509_new();
	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, n);
	ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);
	*ret_key = k;
	*ret_cert = x;
}

static int accept_any_cert(int ok, X509_STORE_CTX *ctx)
{
	(void)ok, (void)ctx;
	return 1;
}

/* As the CAS sets its context up: any client certificate, identity = key. */
static SSL_CTX *server_ctx(void)
{
	EVP_PKEY *k;
	X509 *x;
	make_cert(&k, &x);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, x), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, k), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	X509_free(x);
	EVP_PKEY_free(k);
	return ctx;
}

/* A GET over TLS, with the client certificate of key (NULL: none). */
static char *tls_get(unsigned port, const char *path, EVP_PKEY *key, X509 *cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (key) {
		ck_assert_int_eq(SSL_CTX_use_certificate(ctx, cert), 1);
		ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
	}
	int fd = tcp_connect(port);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	ck_assert_int_eq(SSL_connect(ssl), 1);
	char *req = xasprintf("GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", path);
	ck_assert_int_eq(SSL_write(ssl, req, (int)strlen(req)), (int)strlen(req));
	free(req);
	size_t len = 0, cap = 8192;
	char *buf = xmalloc(cap);
	for (;;) {
		int n = SSL_read(ssl, buf + len, (int)(cap - len - 1));
		if (n <= 0)
			break;
		len += (size_t)n;
		if (cap - len < 1024)
			buf = xrealloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	return buf;
}

/* ---- tests ---- */

START_TEST(plain_get_runs_the_handler)
{
	sc_httpd_limits lim = default_limits();
	server *s = server_start(&lim, NULL);
	char *r = get(s->port, "/hello", NULL);
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_ptr_nonnull(strstr(r, "Content-Type: text/plain"));
	ck_assert_ptr_nonnull(strstr(r, "\r\n\r\nhello\n"));
	free(r);
	r = get(s->port, "/whoami", NULL);
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_ptr_nonnull(strstr(r, "Cache-Control: no-store"));
	json_t *j = body_json(r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "peer")), "127.0.0.1");
	ck_assert(json_is_false(json_object_get(j, "tls")));
	ck_assert(json_is_null(json_object_get(j, "key")));
	json_decref(j);
	free(r);
	/* Keep-alive: two requests on one connection. */
	int fd = tcp_connect(s->port);
	const char *two = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /nothing HTTP/1.1\r\nHost: t\r\n"
	                  "Connection: close\r\n\r\n";
	ck_assert(send_all(fd, two, strlen(two)));
	r = read_all(fd);
	close(fd);
	ck_assert_int_eq(status_of(r), 200);
	char *second = strstr(r + 1, "HTTP/1.1 ");
	ck_assert_ptr_nonnull(second);
	ck_assert_int_eq(status_of(second), 404);
	ck_assert_ptr_nonnull(strstr(second, "handler saw 0 body bytes"));
	free(r);
	/* A reply larger than the socket takes at once, then the close. */
	fd = tcp_connect(s->port);
	const char *big = "GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	ck_assert(send_all(fd, big, strlen(big)));
	r = read_all(fd);
	close(fd);
	ck_assert_int_eq(status_of(r), 200);
	const char *body = strstr(r, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	ck_assert_uint_eq(strlen(body + 4), BIG_REPLY);
	free(r);
	server_stop(s);
}
END_TEST

START_TEST(more_headers_than_the_cap_get_413)
{
	sc_httpd_limits lim = default_limits();
	lim.max_headers = 8;
	server *s = server_start(&lim, NULL);
	char headers[1024] = "";
	for (int i = 0; i < 12; i++) {
		size_t n = strlen(headers);
		snprintf(headers + n, sizeof(headers) - n, "X-H%d: v\r\n", i);
	}
	char *r = get(s->port, "/hello", headers);
	ck_assert_int_eq(status_of(r), 413);
	ck_assert_ptr_nonnull(strstr(r, "more than 8 request headers"));
	ck_assert_ptr_null(strstr(r, "hello"));
	free(r);
	/* Within the cap (Host, Connection and 6): the handler runs. */
	headers[0] = '\0';
	for (int i = 0; i < 6; i++) {
		size_t n = strlen(headers);
		snprintf(headers + n, sizeof(headers) - n, "X-H%d: v\r\n", i);
	}
	r = get(s->port, "/hello", headers);
	ck_assert_int_eq(status_of(r), 200);
	free(r);
	server_stop(s);
}
END_TEST

START_TEST(header_bytes_over_the_cap_get_413)
{
	sc_httpd_limits lim = default_limits();
	lim.max_header_bytes = 256;
	server *s = server_start(&lim, NULL);
	char big[600];
	memset(big, 'a', sizeof(big));
	memcpy(big, "X-Big: ", 7);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	char *r = get(s->port, "/hello", big);
	ck_assert_int_eq(status_of(r), 413);
	ck_assert_ptr_nonnull(strstr(r, "request headers larger than 256 bytes"));
	free(r);
	server_stop(s);
}
END_TEST

START_TEST(body_over_the_cap_gets_413)
{
	sc_httpd_limits lim = default_limits();
	lim.max_body = 1024;
	server *s = server_start(&lim, NULL);
	size_t n = 2048;
	char *head = xasprintf(
	        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", n);
	size_t hl = strlen(head);
	char *req = xmalloc(hl + n);
	memcpy(req, head, hl);
	memset(req + hl, 'b', n);
	char *r = exchange(s->port, req, hl + n);
	ck_assert_int_eq(status_of(r), 413);
	ck_assert_ptr_null(strstr(r, "handler saw"));
	free(r);
	/* At the cap: the handler gets it all. */
	free(head);
	head = xasprintf(
	        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n");
	hl = strlen(head);
	memcpy(req, head, hl);
	memset(req + hl, 'b', 1024);
	r = exchange(s->port, req, hl + 1024);
	ck_assert_ptr_nonnull(strstr(r, "handler saw 1024 body bytes"));
	free(r);
	free(req);
	free(head);
	server_stop(s);
}
END_TEST

START_TEST(slowloris_is_cut_off_at_the_deadline)
{
	sc_httpd_limits lim = default_limits();
	lim.request_timeout_ms = 300;
	lim.max_header_bytes = 1 << 20; /* the deadline, not a size cap, must end it */
	server *s = server_start(&lim, NULL);
	int fd = tcp_connect(s->port);
	const char *start = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: ";
	ck_assert(send_all(fd, start, strlen(start)));
	/* One byte every 50 ms: evhttp's own read timeout (300 ms between
	 * reads) never fires; 200 bytes take 10 s. */
	char trickle[201];
	memset(trickle, 'a', 200);
	trickle[200] = '\0';
	ck_assert_msg(closed_by_server(fd, trickle), "a client trickling header bytes kept its connection");
	close(fd);
	/* A client that sends nothing at all is cut off too. */
	fd = tcp_connect(s->port);
	ck_assert(closed_by_server(fd, NULL));
	close(fd);
	/* The server still serves. */
	char *r = get(s->port, "/hello", NULL);
	ck_assert_int_eq(status_of(r), 200);
	free(r);
	server_stop(s);
}
END_TEST

START_TEST(per_ip_cap_closes_the_newest_connection)
{
	sc_httpd_limits lim = default_limits();
	lim.max_per_ip = 2;
	server *s = server_start(&lim, NULL);
	int a = tcp_connect(s->port);
	int b = tcp_connect(s->port);
	int c = tcp_connect(s->port);
	ck_assert_msg(closed_by_server(c, NULL), "a third connection from one address was kept");
	close(c);
	/* The first two are served. */
	const char *req = "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	int fds[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		ck_assert(send_all(fds[i], req, strlen(req)));
		char *r = read_all(fds[i]);
		ck_assert_int_eq(status_of(r), 200);
		free(r);
		close(fds[i]);
	}
	server_stop(s);
}
END_TEST

START_TEST(global_cap_evicts_the_oldest_idle_connection)
{
	sc_httpd_limits lim = default_limits();
	lim.max_connections = 2;
	server *s = server_start(&lim, NULL);
	int idle = tcp_connect(s->port);
	/* busy has completed a request (keep-alive): not a candidate. */
	int busy = tcp_connect(s->port);
	const char *keep = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
	ck_assert(send_all(busy, keep, strlen(keep)));
	char buf[512];
	ck_assert_int_gt(recv(busy, buf, sizeof(buf), 0), 0);
	int fresh = tcp_connect(s->port);
	ck_assert_msg(closed_by_server(idle, NULL), "the idle connection was not evicted");
	close(idle);
	const char *req = "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	int fds[2] = {busy, fresh};
	for (int i = 0; i < 2; i++) {
		ck_assert(send_all(fds[i], req, strlen(req)));
		char *r = read_all(fds[i]);
		ck_assert_ptr_nonnull(strstr(r, "hello\n"));
		free(r);
		close(fds[i]);
	}
	server_stop(s);
}
END_TEST

START_TEST(tls_server_serves_and_hashes_the_client_key)
{
	sc_httpd_limits lim = default_limits();
	server *s = server_start(&lim, server_ctx());
	/* Without a client certificate: no identity. */
	char *r = tls_get(s->port, "/whoami", NULL, NULL);
	ck_assert_int_eq(status_of(r), 200);
	json_t *j = body_json(r);
	ck_assert(json_is_true(json_object_get(j, "tls")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "peer")), "127.0.0.1");
	ck_assert(json_is_null(json_object_get(j, "key")));
	json_decref(j);
	free(r);
	/* With one: SHA-256 of its SubjectPublicKeyInfo. */
	EVP_PKEY *k;
	X509 *x;
	make_cert(&k, &x);
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	ck_assert_int_gt(n, 0);
	unsigned char md[32];
	unsigned mdlen = 0;
	ck_assert(EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL));
	OPENSSL_free(der);
	char want[65];
	sc_hex_encode(md, sizeof(md), want);
	r = tls_get(s->port, "/whoami", k, x);
	ck_assert_int_eq(status_of(r), 200);
	j = body_json(r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "key")), want);
	json_decref(j);
	free(r);
	r = tls_get(s->port, "/hello", k, x);
	ck_assert_ptr_nonnull(strstr(r, "\r\n\r\nhello\n"));
	free(r);
	X509_free(x);
	EVP_PKEY_free(k);
	/* A plain-text client gets nowhere and the server goes on. */
	r = get(s->port, "/hello", NULL);
	ck_assert_int_eq(status_of(r), 0);
	free(r);
	r = tls_get(s->port, "/hello", NULL, NULL);
	ck_assert_int_eq(status_of(r), 200);
	free(r);
	server_stop(s);
}
END_TEST

START_TEST(tls_handshake_counts_against_the_deadline)
{
	sc_httpd_limits lim = default_limits();
	lim.request_timeout_ms = 300;
	server *s = server_start(&lim, server_ctx());
	/* The start of a 512-byte ClientHello record, then its bytes one at a
	 * time: each read restarts evhttp's timeout, not the deadline. */
	int fd = tcp_connect(s->port);
	const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03};
	ck_assert(send_all(fd, (const char *)hello, sizeof(hello)));
	char trickle[201];
	memset(trickle, 0x41, 200);
	trickle[200] = '\0';
	ck_assert_msg(closed_by_server(fd, trickle), "a client trickling its handshake kept its connection");
	close(fd);
	server_stop(s);
}
END_TEST

START_TEST(header_reports_a_repeated_header)
{
	sc_httpd_limits lim = default_limits();
	server *s = server_start(&lim, NULL);
	char *r = get(s->port, "/header", "x-token: one\r\nX-Token: two\r\n");
	json_t *j = body_json(r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "value")), "one");
	ck_assert(json_is_true(json_object_get(j, "repeated")));
	json_decref(j);
	free(r);
	r = get(s->port, "/header", "X-TOKEN: only\r\n");
	j = body_json(r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "value")), "only");
	ck_assert(json_is_false(json_object_get(j, "repeated")));
	json_decref(j);
	free(r);
	r = get(s->port, "/header", NULL);
	j = body_json(r);
	ck_assert(json_is_null(json_object_get(j, "value")));
	ck_assert(json_is_false(json_object_get(j, "repeated")));
	json_decref(j);
	free(r);
	server_stop(s);
}
END_TEST

START_TEST(split_listen_takes_addr_port_and_bracketed_v6)
{
	sconify_error_t err = NULL;
	char *host = NULL;
	unsigned port = 0;
	ck_assert_ok(sc_httpd_split_listen("[::1]:443", &host, &port, &err), err);
	ck_assert_str_eq(host, "::1");
	ck_assert_uint_eq(port, 443);
	free(host);
	ck_assert_ok(sc_httpd_split_listen("0.0.0.0:0", &host, &port, &err), err);
	ck_assert_str_eq(host, "0.0.0.0");
	ck_assert_uint_eq(port, 0);
	free(host);
	const char *bad[] = {"localhost", ":80", "host:", "host:65536", "host:8x", "[::1:80", "[]:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = sc_httpd_split_listen(bad[i], &host, &port, &err);
		ck_assert_fails(r, err, SCONIFY_ERR_USAGE, "not ");
		ck_assert_ptr_nonnull(strstr(sconify_error_message(err), "listen address"));
		sconify_error_free(&err);
	}
}
END_TEST

START_TEST(listen_on_a_busy_port_fails)
{
	sc_httpd_limits lim = default_limits();
	server *s = server_start(&lim, NULL);
	struct event_base *base = event_base_new();
	sc_httpd *h = NULL;
	sconify_error_t err = NULL;
	ck_assert_ok(sc_httpd_new(base, &lim, NULL, handler, NULL, &h, &err), err);
	char *addr = xasprintf("127.0.0.1:%u", s->port);
	int r = sc_httpd_listen(h, addr, NULL, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_IO, "cannot listen on `127.0.0.1:");
	sconify_error_free(&err);
	free(addr);
	sc_httpd_free(h);
	event_base_free(base);
	lim.max_per_ip = 0;
	r = sc_httpd_new(s->base, &lim, NULL, handler, NULL, &h, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_USAGE, "must not be 0");
	sconify_error_free(&err);
	server_stop(s);
}
END_TEST

START_TEST(stop_accepting_refuses_new_connections)
{
	sc_httpd_limits lim = default_limits();
	server *s = server_start(&lim, NULL);
	/* An open connection outlives the listener. */
	int fd = tcp_connect(s->port);
	/* The loop thread owns h: stop it there, through a pipe of its own. */
	ck_assert_int_eq(write(s->pipe[1], "x", 1), 1);
	pthread_join(s->thread, NULL);
	char drain;
	ck_assert_int_eq(read(s->pipe[0], &drain, 1), 1);
	sc_httpd_stop_accepting(s->h);
	event_add(s->stop, NULL);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, loop_thread, s), 0);
	const char *req = "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	ck_assert(send_all(fd, req, strlen(req)));
	char *r = read_all(fd);
	ck_assert_int_eq(status_of(r), 200);
	free(r);
	close(fd);
	int nfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ne(connect(nfd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(nfd);
	server_stop(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("httpd");
	TCase *tc = tcase_create("httpd");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, plain_get_runs_the_handler);
	tcase_add_test(tc, more_headers_than_the_cap_get_413);
	tcase_add_test(tc, header_bytes_over_the_cap_get_413);
	tcase_add_test(tc, body_over_the_cap_gets_413);
	tcase_add_test(tc, slowloris_is_cut_off_at_the_deadline);
	tcase_add_test(tc, per_ip_cap_closes_the_newest_connection);
	tcase_add_test(tc, global_cap_evicts_the_oldest_idle_connection);
	tcase_add_test(tc, tls_server_serves_and_hashes_the_client_key);
	tcase_add_test(tc, tls_handshake_counts_against_the_deadline);
	tcase_add_test(tc, header_reports_a_repeated_header);
	tcase_add_test(tc, split_listen_takes_addr_port_and_bracketed_v6);
	tcase_add_test(tc, listen_on_a_busy_port_fails);
	tcase_add_test(tc, stop_accepting_refuses_new_connections);
	suite_add_tcase(s, tc);
	return sc_test_run(s);
}
