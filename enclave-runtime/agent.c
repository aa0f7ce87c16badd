/* SPDX-License-Identifier: Apache-2.0 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/base64.h"
#include "core/json-util.h"
#include "core/openssl-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "measure/measure.h"
#include "policy/policy.h"

SC_DEFINE_CLEANUP(SSL_CTX *, SSL_CTX_free)
SC_DEFINE_CLEANUP(SSL *, SSL_free)
SC_DEFINE_CLEANUP(X509 *, X509_free)
SC_DEFINE_CLEANUP(struct addrinfo *, freeaddrinfo)

/* ---- the address ---- */

void sc_rt_agent_addr_clear(sc_rt_agent_addr *a)
{
	free(a->host);
	free(a->port);
	a->host = a->port = NULL;
}

int sc_rt_agent_addr_parse(const char *s, sc_rt_agent_addr *ret, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(s, SC_QUOTE_MAX);
	const char *p = s;
	if (strncmp(p, "https://", 8) == 0)
		p += 8;
	size_t n = strlen(p);
	if (n > 0 && p[n - 1] == '/')
		n--;
	cleanup_free char *host = NULL;
	const char *rest;
	if (n > 0 && p[0] == '[') {
		const char *close = memchr(p, ']', n);
		if (close == NULL || close == p + 1)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "SCONE_CAS_ADDR `%s': unclosed `['", q);
		host = xstrndup(p + 1, (size_t)(close - p - 1));
		rest = close + 1;
	} else {
		const char *colon = memchr(p, ':', n);
		host = xstrndup(p, colon ? (size_t)(colon - p) : n);
		rest = colon ? colon : p + n;
	}
	size_t rest_len = n - (size_t)(rest - p);
	cleanup_free char *port = NULL;
	if (rest_len == 0) {
		port = xstrdup(SC_RT_AGENT_DEFAULT_PORT);
	} else if (rest[0] == ':' && rest_len >= 2 && rest_len <= 6) {
		port = xstrndup(rest + 1, rest_len - 1);
		unsigned long long v;
		if (!sc_parse_u64(port, &v) || v == 0 || v > 65535)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "SCONE_CAS_ADDR `%s': invalid port", q);
	} else {
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "SCONE_CAS_ADDR `%s' is not HOST[:PORT] (a path is not allowed)", q);
	}
	if (host[0] == '\0' || strpbrk(host, "/?#@ \t") != NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "SCONE_CAS_ADDR `%s': invalid host", q);
	ret->host = steal_pointer(&host);
	ret->port = steal_pointer(&port);
	return 0;
}

/* ---- options ---- */

static bool is_hex64(const char *s)
{
	if (s == NULL || strlen(s) != 64)
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
			return false;
	return true;
}

int sc_rt_agent_options_from_env(sc_rt_agent_options *o, sconify_error_t *err)
{
	*o = (sc_rt_agent_options){.tries = SC_RT_AGENT_DEFAULT_TRIES,
	                           .first_delay_ms = SC_RT_AGENT_FIRST_DELAY_MS,
	                           .timeout_ms = SC_RT_AGENT_TIMEOUT_MS};
	o->addr = getenv("SCONE_CAS_ADDR");
	if (o->addr == NULL || o->addr[0] == '\0')
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "SCONE_CAS_ADDR is not set");
	o->config_id = getenv("SCONE_CONFIG_ID");
	if (o->config_id == NULL || o->config_id[0] == '\0')
		return sc_error(
		        err, SCONIFY_ERR_USAGE, 0,
		        "SCONE_CONFIG_ID is not set: it names the service ([namespace/]session/service)");
	const char *insecure = getenv("SCONIFY_CAS_INSECURE");
	o->insecure = insecure && strcmp(insecure, "1") == 0;
	const char *pin = getenv("SCONE_CAS_KEY_HASH");
	if (pin && pin[0] != '\0') {
		if (!is_hex64(pin)) {
			cleanup_free char *q = sc_quote(pin, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "SCONE_CAS_KEY_HASH `%s' is not 64 lowercase hex digits (the SHA-256 "
			                "of the CAS's public key, `key-hash:' of sconify-cas serve)",
			                q);
		}
		o->key_hash = pin;
	} else if (!o->insecure) {
		return sc_error(err, SCONIFY_ERR_AUTH, 0,
		                "SCONE_CAS_KEY_HASH is not set: the runtime talks only to the CAS whose key "
		                "hash the image pins (sconify image --cas-key-hash); SCONIFY_CAS_INSECURE=1 "
		                "accepts any CAS (development only)");
	}
	o->measurement = getenv("SCONE_MEASUREMENT");
	if (o->measurement == NULL || !is_hex64(o->measurement))
		return sc_error(
		        err, SCONIFY_ERR_USAGE, 0,
		        "SCONE_MEASUREMENT is %s: the image states the measurement the runtime claims "
		        "to the CAS (docs/runtime.md)",
		        o->measurement ? "not 64 lowercase hex digits" : "not set");
	const char *tries = getenv("SCONIFY_CAS_RETRIES");
	if (tries && tries[0] != '\0') {
		unsigned long long v;
		if (!sc_parse_u64(tries, &v) || v < 1 || v > SC_RT_AGENT_MAX_TRIES) {
			cleanup_free char *q = sc_quote(tries, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_USAGE, 0,
			                "SCONIFY_CAS_RETRIES `%s' is not a number of tries from 1 to %d", q,
			                SC_RT_AGENT_MAX_TRIES);
		}
		o->tries = (unsigned)v;
	}
	return 0;
}

/* ---- the connection ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef struct {
	const sc_rt_agent_options *o;
	const sc_rt_agent_addr *addr;
	char *what; /* "CAS `host:port'" */
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	uint64_t deadline;
} conn;

static void conn_clear(conn *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c->what);
}

/* Waits until fd is ready for events or the try's deadline passes. */
static int wait_fd(conn *c, short events, const char *doing, sconify_error_t *err)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= c->deadline)
			return sc_error(err, SCONIFY_ERR_NETWORK, ETIMEDOUT, "%s: %s: timed out after %u ms",
			                c->what, doing, c->o->timeout_ms);
		struct pollfd p = {.fd = c->fd, .events = events};
		int r = poll(&p, 1, (int)(c->deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return sc_error(err, SCONIFY_ERR_NETWORK, errno, "%s: %s", c->what, doing);
		if (r > 0)
			return 0;
	}
}

static int tcp_connect(conn *c, sconify_error_t *err)
{
	struct addrinfo hints = {
	        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	_cleanup_(freeaddrinfop) struct addrinfo *res = NULL;
	int r = getaddrinfo(c->addr->host, c->addr->port, &hints, &res);
	if (r != 0)
		return sc_error(err, SCONIFY_ERR_NETWORK, r == EAI_SYSTEM ? errno : 0, "%s: resolving: %s",
		                c->what, gai_strerror(r));
	int last = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		cleanup_close int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		                              ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			if (errno != EINPROGRESS) {
				last = errno;
				continue;
			}
			c->fd = fd;
			int w = wait_fd(c, POLLOUT, "connecting", err);
			c->fd = -1;
			if (w < 0)
				return -1;
			int soerr = 0;
			socklen_t len = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
				soerr = errno;
			if (soerr != 0) {
				last = soerr;
				continue;
			}
		}
		c->fd = steal_fd(&fd);
		return 0;
	}
	return sc_error(err, SCONIFY_ERR_NETWORK, last, "%s: connecting", c->what);
}

static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "TLS failure";
}

/* Drives one SSL call in non-blocking mode until it is done or the
 * deadline passes. Returns the call's positive result, 0 for a clean end
 * of the stream (reads), -1 with err set. */
#define SSL_RETRY(c, doing, call, err)                                                                     \
	({                                                                                                 \
		int _r;                                                                                    \
		for (;;) {                                                                                 \
			ERR_clear_error();                                                                 \
			_r = (call);                                                                       \
			if (_r > 0)                                                                        \
				break;                                                                     \
			int _e = SSL_get_error((c)->ssl, _r);                                              \
			if (_e == SSL_ERROR_WANT_READ || _e == SSL_ERROR_WANT_WRITE) {                     \
				if (wait_fd((c), _e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, (doing),    \
				            (err)) < 0) {                                                  \
					_r = -1;                                                           \
					break;                                                             \
				}                                                                          \
				continue;                                                                  \
			}                                                                                  \
			if (_e == SSL_ERROR_ZERO_RETURN) {                                                 \
				_r = 0;                                                                    \
				break;                                                                     \
			}                                                                                  \
			if (_e == SSL_ERROR_SYSCALL && errno != 0)                                         \
				sc_error((err), SCONIFY_ERR_NETWORK, errno, "%s: %s", (c)->what, (doing)); \
			else if (_e == SSL_ERROR_SYSCALL)                                                  \
				sc_error((err), SCONIFY_ERR_NETWORK, 0, "%s: %s: connection closed",       \
				         (c)->what, (doing));                                              \
			else                                                                               \
				sc_error((err), SCONIFY_ERR_NETWORK, 0, "%s: %s: %s", (c)->what, (doing),  \
				         ssl_reason());                                                    \
			_r = -1;                                                                           \
			break;                                                                             \
		}                                                                                          \
		_r;                                                                                        \
	})

/* The CAS's identity: SHA-256 of the DER SubjectPublicKeyInfo of its
 * certificate, the form sconify-cas prints as `key-hash:'. */
static int check_pin(conn *c, sconify_error_t *err)
{
	_cleanup_(X509_freep) X509 *cert = SSL_get1_peer_certificate(c->ssl);
	if (cert == NULL)
		return sc_error(err, SCONIFY_ERR_AUTH, 0, "%s: presented no certificate", c->what);
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len <= 0)
		return sc_error(err, SCONIFY_ERR_AUTH, 0, "%s: unreadable public key", c->what);
	unsigned char md[32];
	unsigned int mdlen = 0;
	int ok = EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	if (!ok || mdlen != sizeof(md))
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "%s: hashing the public key", c->what);
	char hex[65];
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (c->o->key_hash && strcmp(hex, c->o->key_hash) != 0)
		return sc_error(err, SCONIFY_ERR_AUTH, 0,
		                "%s presents key hash %s, SCONE_CAS_KEY_HASH pins %s: not the CAS this image "
		                "trusts",
		                c->what, hex, c->o->key_hash);
	return 0;
}

static int tls_connect(conn *c, sconify_error_t *err)
{
	if (tcp_connect(c, err) < 0)
		return -1;
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL || !SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION))
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "%s: setting up TLS: %s", c->what, ssl_reason());
	/* The CAS's certificate is self-signed: its key is pinned instead of a
	 * chain verified (check_pin). */
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd))
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "%s: setting up TLS: %s", c->what, ssl_reason());
	struct in6_addr a6;
	if (strchr(c->addr->host, ':') == NULL && inet_pton(AF_INET, c->addr->host, &a6) != 1)
		SSL_set_tlsext_host_name(c->ssl, c->addr->host);
	int r = SSL_RETRY(c, "TLS handshake", SSL_connect(c->ssl), err);
	if (r < 0)
		return -1;
	if (r == 0)
		return sc_error(err, SCONIFY_ERR_NETWORK, 0, "%s: TLS handshake: connection closed", c->what);
	return check_pin(c, err);
}

/* ---- HTTP ---- */

int sc_rt_agent_parse_head(const char *head, size_t head_len, size_t max_body, int *ret_status,
                           size_t *ret_length, sconify_error_t *err)
{
	const char *end = head + head_len;
	const char *eol = memchr(head, '\n', head_len);
	if (eol == NULL || head_len < 12 || memcmp(head, "HTTP/1.", 7) != 0 ||
	    (head[7] != '0' && head[7] != '1') || head[8] != ' ')
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "not an HTTP/1.x answer");
	int status = 0;
	for (int i = 9; i < 12; i++) {
		if (head[i] < '0' || head[i] > '9')
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "invalid HTTP status line");
		status = status * 10 + (head[i] - '0');
	}
	if (head + 12 < eol && head[12] != ' ' && head[12] != '\r')
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "invalid HTTP status line");
	bool have_length = false;
	size_t length = 0;
	for (const char *line = eol + 1; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "truncated HTTP header");
		size_t n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n == 0)
			break;
		const char *colon = memchr(line, ':', n);
		if (colon == NULL)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "invalid HTTP header line");
		size_t name_len = (size_t)(colon - line);
		const char *v = colon + 1, *vend = line + n;
		while (v < vend && (*v == ' ' || *v == '\t'))
			v++;
		while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
			vend--;
		if (name_len == 14 && strncasecmp(line, "content-length", 14) == 0) {
			if (have_length)
				return sc_error(err, SCONIFY_ERR_INVALID, 0, "duplicate Content-Length");
			if (v == vend || vend - v > 19)
				return sc_error(err, SCONIFY_ERR_INVALID, 0, "invalid Content-Length");
			size_t len = 0;
			for (const char *d = v; d < vend; d++) {
				if (*d < '0' || *d > '9')
					return sc_error(err, SCONIFY_ERR_INVALID, 0,
					                "invalid Content-Length");
				len = len * 10 + (size_t)(*d - '0');
			}
			have_length = true;
			length = len;
		} else if (name_len == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
			return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
			                "a Transfer-Encoding answer (only Content-Length is read)");
		}
		line = nl + 1;
	}
	if (!have_length)
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0, "an answer without Content-Length");
	if (length > max_body)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0,
		                "answer of %zu bytes is larger than the limit (%zu bytes)", length, max_body);
	*ret_status = status;
	*ret_length = length;
	return 0;
}

/* One POST on a fresh connection: Connection: close, so that nothing of a
 * keep-alive state needs handling. The body of a 2xx answer must be JSON;
 * an error answer's "error" string becomes the message. */
static int post(const sc_rt_agent_options *o, const sc_rt_agent_addr *addr, const char *path,
                const char *body, int *ret_status, json_t **ret_json, sconify_error_t *err)
{
	_cleanup_(conn_clear) conn c = {.o = o, .addr = addr, .fd = -1, .deadline = now_ms() + o->timeout_ms};
	cleanup_free char *qh = sc_quote(addr->host, SC_QUOTE_MAX);
	c.what = strchr(addr->host, ':') ? xasprintf("CAS `[%s]:%s'", qh, addr->port)
	                                 : xasprintf("CAS `%s:%s'", qh, addr->port);
	if (tls_connect(&c, err) < 0)
		return -1;
	size_t body_len = strlen(body);
	cleanup_free char *req = xasprintf(
	        "POST %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: sconify-runtime/%s\r\n"
	        "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	        "Connection: close\r\n\r\n%s",
	        path, strchr(addr->host, ':') ? "[" : "", addr->host, strchr(addr->host, ':') ? "]" : "",
	        addr->port, SCONIFY_RUNTIME_VERSION, body_len, body);
	size_t req_len = strlen(req), sent = 0;
	while (sent < req_len) {
		int n = SSL_RETRY(&c, "sending the request",
		                  SSL_write(c.ssl, req + sent, (int)(req_len - sent)), err);
		if (n <= 0)
			return n < 0 ? -1 : sc_error(err, SCONIFY_ERR_NETWORK, 0, "%s: closed", c.what);
		sent += (size_t)n;
	}

	/* The head, capped; then exactly Content-Length bytes, capped. */
	cleanup_free char *buf = xmalloc(SC_RT_AGENT_MAX_HEADER + 1);
	size_t have = 0, head_len = 0;
	while (head_len == 0) {
		if (have == SC_RT_AGENT_MAX_HEADER)
			return sc_error(err, SCONIFY_ERR_LIMIT, 0,
			                "%s: answer header larger than the limit (%u bytes)", c.what,
			                SC_RT_AGENT_MAX_HEADER);
		int n = SSL_RETRY(&c, "reading the answer",
		                  SSL_read(c.ssl, buf + have, (int)(SC_RT_AGENT_MAX_HEADER - have)), err);
		if (n < 0)
			return -1;
		if (n == 0)
			return sc_error(err, SCONIFY_ERR_NETWORK, 0,
			                "%s: connection closed before the answer", c.what);
		size_t from = have > 3 ? have - 3 : 0;
		have += (size_t)n;
		for (size_t i = from; i + 1 < have; i++) {
			if (buf[i] == '\n' && buf[i + 1] == '\n') {
				head_len = i + 2;
				break;
			}
			if (i + 3 < have && memcmp(buf + i, "\r\n\r\n", 4) == 0) {
				head_len = i + 4;
				break;
			}
		}
	}
	int status = 0;
	size_t length = 0;
	if (sc_rt_agent_parse_head(buf, head_len, SC_RT_AGENT_MAX_BODY, &status, &length, err) < 0)
		return sc_error_wrap(err, "%s", c.what);
	if (have - head_len > length)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: more bytes than Content-Length", c.what);
	cleanup_free char *data = xmalloc(length + 1);
	size_t got = have - head_len;
	memcpy(data, buf + head_len, got);
	while (got < length) {
		size_t want = length - got;
		int n = SSL_RETRY(&c, "reading the answer",
		                  SSL_read(c.ssl, data + got, want > INT32_MAX ? INT32_MAX : (int)want), err);
		if (n < 0)
			return -1;
		if (n == 0)
			return sc_error(err, SCONIFY_ERR_NETWORK, 0,
			                "%s: answer truncated after %zu of %zu bytes", c.what, got, length);
		got += (size_t)n;
	}
	data[length] = '\0';

	json_error_t jerr;
	cleanup_json json_t *j = json_loadb(data, length, JSON_REJECT_DUPLICATES, &jerr);
	if (status < 200 || status > 299) {
		const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
		cleanup_free char *qm = sc_quote(msg ? msg : data, 512);
		/* Busy, failing or restarted servers are worth another try (a
		 * challenge is single use and short lived: the next try asks
		 * for a new one); a refusal is final. */
		sconify_error_kind_t kind = status == 429 || status >= 500 || status == 401
		                                    ? SCONIFY_ERR_NETWORK
		                            : status == 403 ? SCONIFY_ERR_AUTH
		                            : status == 404 ? SCONIFY_ERR_NOT_FOUND
		                                            : SCONIFY_ERR_INVALID;
		return sc_error(err, kind, 0, "%s: POST %s: %d: %s", c.what, path, status, qm);
	}
	if (j == NULL || !json_is_object(j))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: POST %s: answer is not valid JSON", c.what,
		                path);
	sc_policy_wipe(data, length);
	*ret_status = status;
	*ret_json = steal_pointer(&j);
	return 0;
}

/* ---- the attestation ---- */

static int get_b64(const json_t *j, const char *field, const char *what, uint8_t **ret, size_t *ret_len,
                   sconify_error_t *err)
{
	const char *s = json_string_value(json_object_get(j, field));
	if (s == NULL || !sc_base64_decode(s, strlen(s), ret, ret_len))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `%s' is missing or not base64", what,
		                field);
	return 0;
}

static char *hex(const uint8_t *b, size_t n)
{
	char *s = xmalloc(2 * n + 1);
	for (size_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", b[i]);
	return s;
}

int sc_rt_agent_attest_once(const sc_rt_agent_options *o, const sc_rt_agent_addr *addr, sc_rt_session **ret,
                            sconify_error_t *err)
{
	int status = 0;
	cleanup_json json_t *ch = NULL;
	if (post(o, addr, "/v1/attest/challenge", "", &status, &ch, err) < 0)
		return sc_error_wrap(err, "asking for a challenge");
	cleanup_free uint8_t *challenge = NULL;
	size_t challenge_len = 0;
	if (get_b64(ch, "challenge", "the challenge", &challenge, &challenge_len, err) < 0)
		return -1;
	if (challenge_len != SC_CAS_CHALLENGE_BYTES)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "the challenge has %zu bytes, not %d",
		                challenge_len, SC_CAS_CHALLENGE_BYTES);

	/* A key for this attempt only: the configuration opens with it once. */
	cleanup_pkey EVP_PKEY *key = NULL;
	cleanup_free uint8_t *pub = NULL;
	size_t pub_len = 0;
	if (sc_cas_keypair_new(SC_CAS_KEY_X25519, &key, &pub, &pub_len, err) < 0)
		return -1;
	uint8_t rd[SC_CAS_REPORT_DATA_BYTES];
	sc_cas_report_data(challenge, challenge_len, pub, pub_len, rd);

	cleanup_free char *rd_hex = hex(rd, sizeof(rd));
	cleanup_free char *ch_b64 = sc_base64_encode(challenge, challenge_len);
	cleanup_free char *pub_b64 = sc_base64_encode(pub, pub_len);
	cleanup_json json_t *req =
	        json_pack("{s:s,s:s,s:s,s:{s:s,s:s},s:s}", "challenge", ch_b64, "config_id", o->config_id,
	                  "provider", "sim", "evidence", "measurement", o->measurement, "report_data", rd_hex,
	                  "public_key", pub_b64);
	if (req == NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "SCONE_CONFIG_ID is not valid UTF-8");
	cleanup_free char *body = json_dumps(req, JSON_COMPACT);
	cleanup_json json_t *ans = NULL;
	if (post(o, addr, "/v1/attest", body, &status, &ans, err) < 0)
		return sc_error_wrap(err, "attesting");

	const char *id = json_string_value(json_object_get(ans, "config_id"));
	if (id == NULL || strcmp(id, o->config_id) != 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "the CAS answered for another config_id");
	cleanup_cas_envelope sc_cas_envelope env = {0};
	uint8_t *nonce = NULL;
	size_t nonce_len = 0;
	if (get_b64(ans, "ephemeral_public_key", "the answer", &env.server_pub, &env.server_pub_len, err) <
	            0 ||
	    get_b64(ans, "nonce", "the answer", &nonce, &nonce_len, err) < 0)
		return -1;
	bool nonce_ok = nonce_len == SC_CAS_NONCE_BYTES;
	if (nonce_ok)
		memcpy(env.nonce, nonce, SC_CAS_NONCE_BYTES);
	free(nonce);
	if (!nonce_ok)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "the answer's nonce has %zu bytes, not %d",
		                nonce_len, SC_CAS_NONCE_BYTES);
	if (get_b64(ans, "ciphertext", "the answer", &env.ciphertext, &env.ciphertext_len, err) < 0)
		return -1;

	uint8_t *plain = NULL;
	size_t plain_len = 0;
	if (sc_cas_envelope_open(key, challenge, challenge_len, o->config_id, &env, &plain, &plain_len, err) <
	    0)
		return sc_error_wrap(err, "opening the configuration");
	cleanup_cas_config sc_cas_config *cfg = NULL;
	int r = sc_cas_config_decode(plain, plain_len, &cfg, err);
	sc_policy_wipe(plain, plain_len);
	free(plain);
	if (r < 0)
		return sc_error_wrap(err, "the released configuration");
	return sc_rt_agent_session_from_config(cfg, o->config_id, o->measurement, ret, err);
}

int sc_rt_agent_fetch(const sc_rt_agent_options *o, sc_rt_session **ret, sconify_error_t *err)
{
	_cleanup_(sc_rt_agent_addr_clear) sc_rt_agent_addr addr = {0};
	if (sc_rt_agent_addr_parse(o->addr, &addr, err) < 0)
		return -1;
	cleanup_free char *session = NULL, *service = NULL;
	if (sc_cas_parse_config_id(o->config_id, &session, &service, err) < 0)
		return sc_error_wrap(err, "SCONE_CONFIG_ID");
	unsigned delay = o->first_delay_ms;
	for (unsigned i = 1;; i++) {
		cleanup_error sconify_error_t e = NULL;
		if (sc_rt_agent_attest_once(o, &addr, ret, &e) == 0)
			return 0;
		if (sconify_error_kind(e) != SCONIFY_ERR_NETWORK || i >= o->tries) {
			if (i > 1)
				return sc_error(err, sconify_error_kind(e), 0, "after %u tries: %s", i,
				                sconify_error_message(e));
			return sc_error(err, sconify_error_kind(e), 0, "%s", sconify_error_message(e));
		}
		if (o->log) {
			cleanup_free char *line = xasprintf("CAS try %u of %u failed: %s; next in %u ms", i,
			                                    o->tries, sconify_error_message(e), delay);
			o->log(o->userdata, line);
		}
		struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = (long)(delay % 1000) * 1000000};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		delay = delay * 2 > SC_RT_AGENT_MAX_DELAY_MS ? SC_RT_AGENT_MAX_DELAY_MS : delay * 2;
	}
}

/* ---- the released configuration as a session ---- */

int sc_rt_agent_session_from_config(const sc_cas_config *cc, const char *config_id, const char *measurement,
                                    sc_rt_session **ret, sconify_error_t *err)
{
	const char *what = "the released configuration";
	if (strcmp(cc->config_id, config_id) != 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is for another config_id", what);
	cleanup_free char *session = NULL, *service = NULL;
	if (sc_cas_parse_config_id(config_id, &session, &service, err) < 0)
		return -1;
	cleanup_session sc_rt_session *s = xzalloc(sizeof(*s));
	s->session = steal_pointer(&session);
	s->service = steal_pointer(&service);
	if (sc_rt_session_fill(s, cc->config, what, err) < 0)
		return -1;
	/* The CAS accepted the claim; what runs must measure the same. */
	s->measurements = xcalloc(2, sizeof(char *));
	s->measurements[0] = xstrdup(measurement);
	s->n_measurements = 1;
	*ret = steal_pointer(&s);
	return 0;
}
