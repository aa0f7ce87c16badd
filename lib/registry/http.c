/* SPDX-License-Identifier: Apache-2.0 */
#include "http.h"

#include "config.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/fsutil.h"
#include "core/retry.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include <openssl/crypto.h>

#define DEFAULT_MAX_RESPONSE (1u << 20)
#define MAX_HEADERS 256
#define MAX_HEADER_BYTES (64u << 10)
#define STREAM_BUFFER (512u << 10)
#define RETRY_AFTER_CAP_MS 60000L

struct sc_http {
	sc_http_options o;
	char *cert_dir;
	struct curl_blob ca_blob; /* system CAs + --cert-dir CAs, when there are extra ones */
	char *ca_file;            /* SSL_CERT_FILE */
	char *client_cert, *client_key;
	pthread_mutex_t lock; /* guards pool */
	CURL **pool;          /* idle easy handles */
	size_t n_pool, pool_alloc;
	/* Connections, DNS answers and TLS sessions are shared by every
	 * transfer of this client, streamed ones (each on its own multi
	 * handle) included: one handshake per connection, not per blob. */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *ud)
{
	(void)c, (void)access;
	pthread_mutex_lock(&((sc_http *)ud)->share_locks[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *ud)
{
	(void)c;
	pthread_mutex_unlock(&((sc_http *)ud)->share_locks[data]);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result;

static void global_init(void)
{
	global_result = curl_global_init(CURL_GLOBAL_ALL);
}

/* ---- TLS material from --cert-dir ---- */

static bool has_suffix(const char *s, const char *suffix)
{
	return sc_endswith(s, suffix);
}

/* The system CA bundle: SSL_CERT_FILE, or the one libcurl was built with. */
static char *system_ca_file(void)
{
	const char *env = getenv("SSL_CERT_FILE");
	if (env && *env)
		return xstrdup(env);
	CURL *c = curl_easy_init();
	char *path = NULL;
	if (c && curl_easy_getinfo(c, CURLINFO_CAINFO, &path) == CURLE_OK && path)
		path = xstrdup(path);
	else
		path = NULL;
	curl_easy_cleanup(c);
	return path;
}

static int load_cert_dir(sc_http *h, const char *dir, sconify_error_t *err)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return sc_error(err, errno == ENOENT ? SCONIFY_ERR_NOT_FOUND : SCONIFY_ERR_IO, errno,
		                "reading --cert-dir `%s'", dir);
	sc_buf cas;
	sc_buf_init(&cas, 64u << 20);
	int r = 0;
	bool extra = false;
	struct dirent *de;
	while (r == 0 && (de = readdir(d)) != NULL) {
		cleanup_free char *path = sc_path_join(dir, de->d_name);
		if (has_suffix(de->d_name, ".crt")) {
			cleanup_free char *pem = NULL;
			size_t len = 0;
			r = sc_read_file(path, 4u << 20, &pem, &len, err);
			if (r == 0) {
				r = sc_buf_append(&cas, pem, len, "CA certificates", err);
				if (r == 0)
					sc_buf_putc(&cas, '\n');
				extra = true;
			}
		} else if (has_suffix(de->d_name, ".cert")) {
			cleanup_free char *base = xstrndup(de->d_name, strlen(de->d_name) - 5);
			cleanup_free char *key = xasprintf("%s/%s.key", dir, base);
			if (!sc_path_exists(key)) {
				r = sc_error(err, SCONIFY_ERR_INVALID, 0,
				             "--cert-dir: `%s' has no matching `%s.key'", path, base);
				break;
			}
			free(h->client_cert);
			free(h->client_key);
			h->client_cert = steal_pointer(&path);
			h->client_key = steal_pointer(&key);
		}
	}
	closedir(d);
	if (r == 0 && extra) {
		/* CURLOPT_CAINFO_BLOB replaces the default bundle: add it back. */
		cleanup_free char *sys = system_ca_file();
		cleanup_free char *pem = NULL;
		size_t len = 0;
		if (sys && sc_read_file(sys, 16u << 20, &pem, &len, NULL) == 0)
			r = sc_buf_append(&cas, pem, len, "CA certificates", err);
		if (r == 0) {
			size_t n = 0;
			h->ca_blob.data = sc_buf_steal(&cas, &n);
			h->ca_blob.len = n;
			h->ca_blob.flags = CURL_BLOB_NOCOPY;
		}
	}
	sc_buf_free(&cas);
	return r;
}

int sc_http_new(const sc_http_options *o, sc_http **ret, sconify_error_t *err)
{
	pthread_once(&global_once, global_init);
	if (global_result != CURLE_OK)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "initialising libcurl: %s",
		                curl_easy_strerror(global_result));
	sc_http *h = xzalloc(sizeof(*h));
	h->o = *o;
	h->o.retries = sc_retry_count(o->retries);
	if (h->o.connect_timeout_ms <= 0)
		h->o.connect_timeout_ms = 30000;
	/* Tuning knobs for slow networks (and for tests that stall on purpose). */
	unsigned long long v;
	const char *e = getenv("SCONIFY_STALL_TIMEOUT_MS");
	if (h->o.stall_timeout_ms <= 0 && e && sc_parse_u64(e, &v) && v > 0 && v < 3600000)
		h->o.stall_timeout_ms = (long)v;
	if (h->o.stall_timeout_ms <= 0)
		h->o.stall_timeout_ms = 60000;
	pthread_mutex_init(&h->lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	h->share = curl_share_init();
	if (h->share == NULL)
		abort();
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	const char *env = getenv("SSL_CERT_FILE");
	if (env && *env)
		h->ca_file = xstrdup(env);
	if (o->cert_dir) {
		h->cert_dir = xstrdup(o->cert_dir);
		if (load_cert_dir(h, o->cert_dir, err) < 0) {
			sc_http_free(h);
			return -1;
		}
	}
	*ret = h;
	return 0;
}

void sc_http_free(sc_http *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n_pool; i++)
		curl_easy_cleanup(h->pool[i]);
	free(h->pool);
	/* after every easy handle: they hold the share */
	if (h->share)
		curl_share_cleanup(h->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->share_locks[i]);
	free(h->ca_blob.data);
	free(h->ca_file);
	free(h->cert_dir);
	free(h->client_cert);
	free(h->client_key);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static CURL *take_easy(sc_http *h)
{
	pthread_mutex_lock(&h->lock);
	CURL *c = h->n_pool ? h->pool[--h->n_pool] : NULL;
	pthread_mutex_unlock(&h->lock);
	if (c == NULL && (c = curl_easy_init()) == NULL)
		abort(); /* only on allocation failure */
	curl_easy_reset(c);
	return c;
}

static void give_easy(sc_http *h, CURL *c)
{
	pthread_mutex_lock(&h->lock);
	if (h->n_pool == h->pool_alloc) {
		h->pool_alloc = h->pool_alloc ? h->pool_alloc * 2 : 8;
		h->pool = xreallocarray(h->pool, h->pool_alloc, sizeof(*h->pool));
	}
	h->pool[h->n_pool++] = c;
	pthread_mutex_unlock(&h->lock);
}

/* ---- responses ---- */

const char *sc_http_header_get(const sc_http_response *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static void clear_headers(sc_http_response *r)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	r->headers = NULL;
	r->n_headers = 0;
}

void sc_http_response_clear(sc_http_response *r)
{
	clear_headers(r);
	free(r->body);
	free(r->url);
	memset(r, 0, sizeof(*r));
}

/* State of one transfer. */
typedef struct {
	sc_http *h;
	sc_http_response *resp;
	size_t header_bytes;
	bool header_overflow;
	/* body kept in memory (sc_http_do, error bodies) */
	sc_buf body;
	bool keep_body;
	/* body streamed (sc_http_stream) */
	char *sbuf;
	size_t slen, soff;
	bool streaming;
	bool paused;
	/* body uploaded (sc_http_upload) */
	const char *pending;
	size_t pending_len;
	bool upload_eof;
	bool upload_paused;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
} xfer;

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	size_t len = size * n;
	x->header_bytes += len;
	if (x->header_bytes > MAX_HEADER_BYTES || x->resp->n_headers >= MAX_HEADERS) {
		x->header_overflow = true;
		return 0;
	}
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new response (after a redirect or a 100 Continue): forget the old headers */
		clear_headers(x->resp);
		x->header_bytes = len;
		return len;
	}
	const char *colon = memchr(data, ':', len);
	if (colon == NULL)
		return len;
	size_t nlen = (size_t)(colon - data);
	const char *v = colon + 1, *end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	sc_http_header hd = {xstrndup(data, nlen), xstrndup(v, (size_t)(end - v))};
	for (char *c = hd.name; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	x->resp->headers = xreallocarray(x->resp->headers, x->resp->n_headers + 1, sizeof(sc_http_header));
	x->resp->headers[x->resp->n_headers++] = hd;
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	size_t len = size * n;
	if (x->streaming) {
		if (x->slen + len > STREAM_BUFFER) {
			x->paused = true;
			return CURL_WRITEFUNC_PAUSE; /* curl keeps the data and offers it again */
		}
		memcpy(x->sbuf + x->slen, data, len);
		x->slen += len;
		return len;
	}
	if (!x->keep_body)
		return len;
	size_t room = x->body.cap - x->body.len;
	if (len > room) {
		/* Keep what fits and end the transfer: a hostile server must not
		 * keep us reading (the caller sees body_truncated). */
		if (room)
			sc_buf_append(&x->body, data, room, "response", NULL);
		x->resp->body_truncated = true;
		return 0;
	}
	if (len)
		sc_buf_append(&x->body, data, len, "response", NULL);
	return len;
}

static size_t on_upload(char *buf, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	size_t room = size * n;
	if (x->pending_len == 0) {
		if (x->upload_eof)
			return 0;
		x->upload_paused = true;
		return CURL_READFUNC_PAUSE;
	}
	size_t k = x->pending_len < room ? x->pending_len : room;
	memcpy(buf, x->pending, k);
	x->pending += k;
	x->pending_len -= k;
	return k;
}

/* A trace line with any URL query replaced by "?...": presigned redirect
 * URLs and upload state carry signatures there. */
static char *without_query(const char *prefix, const char *p, size_t len)
{
	sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, prefix);
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '?') {
			sc_buf_puts(&b, "?...");
			while (i + 1 < len && p[i + 1] != ' ')
				i++;
			continue;
		}
		sc_buf_putc(&b, p[i]);
	}
	return sc_buf_steal(&b, NULL);
}

static int on_debug(CURL *c, curl_infotype type, char *data, size_t size, void *ud)
{
	(void)c;
	xfer *x = ud;
	if (type != CURLINFO_HEADER_OUT && type != CURLINFO_HEADER_IN && type != CURLINFO_TEXT)
		return 0;
	const char *prefix = type == CURLINFO_HEADER_OUT ? "> " : type == CURLINFO_HEADER_IN ? "< " : "* ";
	const char *p = data, *end = data + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		size_t len = (size_t)(e - p);
		if (len && p[len - 1] == '\r')
			len--;
		if (len) {
			cleanup_free char *line = NULL;
			/* Credentials never reach the trace. */
			if (len >= 14 && (strncasecmp(p, "authorization:", 14) == 0 ||
			                  (len >= 20 && strncasecmp(p, "proxy-authorization:", 20) == 0)))
				line = xasprintf("%s%.*s <redacted>", prefix,
				                 (int)((const char *)memchr(p, ':', len) - p + 1), p);
			else
				line = without_query(prefix, p, len);
			x->h->o.debug(x->h->o.debug_userdata, line);
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}

static int setup(sc_http *h, CURL *c, const sc_http_request *req, xfer *x, sconify_error_t *err)
{
	const char *method = req->method ? req->method : "GET";
	bool https = sc_startswith(req->url, "https://");
	if (!https && !sc_startswith(req->url, "http://"))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "not an http(s) URL: `%s'", req->url);

	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_SHARE, h->share);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sconify/" SCONIFY_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
	/* Stalls: under 1 KiB/s for stall_timeout fails the transfer. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (h->o.stall_timeout_ms + 999) / 1000);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
	if (req->follow_redirects) {
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
		/* No downgrade from https to http while certificates are checked. */
		curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR,
		                 https && h->o.tls_verify ? "https" : "http,https");
	}
	if (!h->o.tls_verify) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (h->ca_blob.data) {
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &h->ca_blob);
	} else if (h->ca_file) {
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	}
	if (h->client_cert) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, h->client_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, h->client_key);
	}

	/* "Expect:" turns off 100-continue: a round trip per upload for nothing. */
	x->headers = curl_slist_append(x->headers, "Expect:");
	if (req->authorization) {
		char *a = xasprintf("Authorization: %s", req->authorization);
		x->headers = curl_slist_append(x->headers, a);
		OPENSSL_cleanse(a, strlen(a));
		free(a);
	}
	for (const char *const *hd = req->headers; hd && *hd; hd++)
		x->headers = curl_slist_append(x->headers, *hd);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);

	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	if (req->body || strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
	}

	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	if (h->o.debug) {
		curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
		curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, on_debug);
		curl_easy_setopt(c, CURLOPT_DEBUGDATA, x);
	}
	return 0;
}

static void xfer_init(xfer *x, sc_http *h, sc_http_response *resp, const sc_http_request *req)
{
	memset(x, 0, sizeof(*x));
	x->h = h;
	x->resp = resp;
	sc_buf_init(&x->body, req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE);
	x->keep_body = true;
	if (req->secret_response) {
		/* No reallocation may leave copies of a secret behind. */
		x->body.data = xmalloc(x->body.cap + 1);
		x->body.alloc = x->body.cap + 1;
		x->body.data[0] = '\0';
	}
}

static void xfer_done(xfer *x)
{
	for (struct curl_slist *l = x->headers; l; l = l->next)
		if (strncasecmp(l->data, "authorization:", 14) == 0)
			OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	sc_buf_free(&x->body);
	free(x->sbuf);
	x->sbuf = NULL;
}

static void finish_response(xfer *x, CURL *c)
{
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	x->resp->status = status;
	char *url = NULL;
	curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &url);
	free(x->resp->url);
	x->resp->url = url ? xstrdup(url) : NULL;
	free(x->resp->body);
	x->resp->body = sc_buf_steal(&x->body, &x->resp->body_len);
}

/* A failed transfer as an error: the URL without its query (which may carry
 * upload state), and curl's reason. */
static int transfer_error(const sc_http_request *req, CURLcode rc, const xfer *x, sconify_error_t *err)
{
	cleanup_free char *url = xstrdup(req->url);
	char *q = strchr(url, '?');
	if (q)
		*q = '\0';
	if (x->header_overflow)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0,
		                "%s %s: the response headers are larger than %u bytes or %u lines",
		                req->method ? req->method : "GET", url, MAX_HEADER_BYTES, MAX_HEADERS);
	sconify_error_kind_t kind = SCONIFY_ERR_NETWORK;
	switch (rc) {
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_TOO_MANY_REDIRECTS:
		kind = SCONIFY_ERR_INVALID;
		break;
	default:
		break;
	}
	const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
	return sc_error(err, kind, 0, "%s %s: %s", req->method ? req->method : "GET", url, why);
}

static bool curl_transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

bool sc_http_status_transient(long status)
{
	return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

static long parse_retry_after(const char *v)
{
	if (v == NULL)
		return -1;
	unsigned long long secs;
	if (sc_parse_u64(v, &secs))
		return secs > RETRY_AFTER_CAP_MS / 1000 ? RETRY_AFTER_CAP_MS : (long)secs * 1000;
	time_t when = curl_getdate(v, NULL);
	if (when < 0)
		return -1;
	time_t now = time(NULL);
	long ms = when > now ? (long)(when - now) * 1000 : 0;
	return ms > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : ms;
}

long sc_http_retry_delay_ms(unsigned attempt, const sc_http_response *r)
{
	long after = r ? parse_retry_after(sc_http_header_get(r, "retry-after")) : -1;
	return after >= 0 ? after : sc_backoff_ms(attempt);
}

int sc_http_retries(const sc_http *h)
{
	return h->o.retries;
}

int sc_http_do(sc_http *h, const sc_http_request *req, sc_http_response *ret, sconify_error_t *err)
{
	int attempts = req->no_retry ? 1 : h->o.retries + 1;
	sc_http_response resp = {0};
	for (int attempt = 0;; attempt++) {
		sc_http_response_clear(&resp);
		CURL *c = take_easy(h);
		xfer x;
		xfer_init(&x, h, &resp, req);
		int r = setup(h, c, req, &x, err);
		/* A body kept in memory is small: a server dripping it a byte at a
		 * time (faster than the stall limit) still ends here. */
		if (r == 0)
			curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10L * 60 * 1000);
		CURLcode rc = r < 0 ? CURLE_OK : curl_easy_perform(c);
		if (r == 0)
			finish_response(&x, c);
		bool last = attempt + 1 >= attempts;
		/* Cut at the cap: the response is what we keep, marked truncated. */
		if (rc == CURLE_WRITE_ERROR && resp.body_truncated)
			rc = CURLE_OK;
		if (r == 0 && rc != CURLE_OK) {
			if (!curl_transient(rc) || x.header_overflow || last) {
				r = transfer_error(req, rc, &x, err);
			} else {
				xfer_done(&x);
				give_easy(h, c);
				sc_sleep_ms(sc_http_retry_delay_ms((unsigned)attempt, NULL));
				continue;
			}
		}
		xfer_done(&x);
		give_easy(h, c);
		if (r < 0) {
			sc_http_response_clear(&resp);
			return -1;
		}
		if (sc_http_status_transient(resp.status) && !last) {
			sc_sleep_ms(sc_http_retry_delay_ms((unsigned)attempt, &resp));
			continue;
		}
		*ret = resp;
		return 0;
	}
}

/* ---- streamed downloads ---- */

struct stream_reader {
	sc_reader base;
	sc_http *h;
	CURLM *multi;
	CURL *easy;
	xfer x;
	sc_http_response head;
	sc_http_request req; /* for messages; url and method are copies */
	char *url;
	bool done;
	CURLcode result;
};

/* Drives the transfer until cond(x) or its end. */
static int drive(CURLM *m, bool *done, CURLcode *result, bool (*cond)(void *), void *ud, sconify_error_t *err)
{
	while (!*done && !cond(ud)) {
		int running = 0;
		CURLMcode mc = curl_multi_perform(m, &running);
		if (mc != CURLM_OK)
			return sc_error(err, SCONIFY_ERR_GENERIC, 0, "libcurl: %s", curl_multi_strerror(mc));
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE) {
				*done = true;
				*result = msg->data.result;
			}
		if (*done || cond(ud))
			break;
		mc = curl_multi_poll(m, NULL, 0, 1000, NULL);
		if (mc != CURLM_OK)
			return sc_error(err, SCONIFY_ERR_GENERIC, 0, "libcurl: %s", curl_multi_strerror(mc));
	}
	return 0;
}

static bool have_data(void *ud)
{
	struct stream_reader *s = ud;
	return s->x.slen > s->x.soff;
}

static ssize_t stream_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	struct stream_reader *s = (struct stream_reader *)base;
	if (s->x.soff == s->x.slen) {
		s->x.soff = s->x.slen = 0;
		if (s->x.paused) {
			s->x.paused = false;
			curl_easy_pause(s->easy, CURLPAUSE_CONT);
		}
		if (drive(s->multi, &s->done, &s->result, have_data, s, err) < 0)
			return -1;
		if (s->x.soff == s->x.slen) {
			if (s->result != CURLE_OK)
				return transfer_error(&s->req, s->result, &s->x, err);
			return 0;
		}
	}
	size_t n = s->x.slen - s->x.soff;
	if (n > len)
		n = len;
	memcpy(buf, s->x.sbuf + s->x.soff, n);
	s->x.soff += n;
	return (ssize_t)n;
}

/* Ends a streamed transfer's handles. One stopped halfway leaves its
 * connection in an unknown state: that easy handle is not reused. */
static void release_transfer(sc_http *h, CURLM *multi, CURL *easy, bool finished)
{
	if (multi) {
		curl_multi_remove_handle(multi, easy);
		curl_multi_cleanup(multi);
	}
	if (easy && finished)
		give_easy(h, easy);
	else if (easy)
		curl_easy_cleanup(easy);
}

static void stream_free(sc_reader *base)
{
	struct stream_reader *s = (struct stream_reader *)base;
	release_transfer(s->h, s->multi, s->easy, s->done && s->result == CURLE_OK);
	xfer_done(&s->x);
	sc_http_response_clear(&s->head);
	free(s->url);
	free(s);
}

static const struct sc_reader_ops stream_ops = {.read = stream_read, .free = stream_free};

static bool body_started(void *ud)
{
	struct stream_reader *s = ud;
	return s->x.slen > 0;
}

int sc_http_stream(sc_http *h, const sc_http_request *req, sc_http_response *ret_head, sc_reader **ret_body,
                   sconify_error_t *err)
{
	struct stream_reader *s = xzalloc(sizeof(*s));
	s->base.ops = &stream_ops;
	s->h = h;
	s->url = xstrdup(req->url);
	s->req = *req;
	s->req.url = s->url;
	s->req.headers = NULL;
	s->req.authorization = NULL;
	xfer_init(&s->x, h, &s->head, req);
	s->x.streaming = true;
	s->x.sbuf = xmalloc(STREAM_BUFFER);
	s->easy = take_easy(h);
	if (setup(h, s->easy, req, &s->x, err) < 0) {
		stream_free(&s->base);
		return -1;
	}
	s->multi = curl_multi_init();
	if (s->multi == NULL)
		abort();
	curl_multi_add_handle(s->multi, s->easy);
	/* Run until the body starts or the transfer ends: then the final
	 * response's status and headers are known. */
	if (drive(s->multi, &s->done, &s->result, body_started, s, err) < 0) {
		stream_free(&s->base);
		return -1;
	}
	if (s->done && s->result != CURLE_OK) {
		transfer_error(req, s->result, &s->x, err);
		stream_free(&s->base);
		return -1;
	}
	long status = 0;
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	s->head.status = status;
	char *url = NULL;
	curl_easy_getinfo(s->easy, CURLINFO_EFFECTIVE_URL, &url);
	s->head.url = url ? xstrdup(url) : NULL;

	sc_http_response head = {0};
	head.status = status;
	head.url = s->head.url ? xstrdup(s->head.url) : NULL;
	head.headers = xcalloc(s->head.n_headers ? s->head.n_headers : 1, sizeof(sc_http_header));
	for (size_t i = 0; i < s->head.n_headers; i++) {
		head.headers[i].name = xstrdup(s->head.headers[i].name);
		head.headers[i].value = xstrdup(s->head.headers[i].value);
	}
	head.n_headers = s->head.n_headers;

	if (status >= 200 && status < 300) {
		*ret_head = head;
		*ret_body = &s->base;
		return 0;
	}
	/* Not a success: keep a capped copy of the body for the message. */
	sc_buf b;
	sc_buf_init(&b, req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE);
	char chunk[16384];
	ssize_t n;
	sconify_error_t ignore = NULL;
	while ((n = stream_read(&s->base, chunk, sizeof(chunk), &ignore)) > 0)
		if (sc_buf_append(&b, chunk, (size_t)n, "response", NULL) < 0) {
			head.body_truncated = true;
			break;
		}
	sconify_error_free(&ignore);
	head.body = sc_buf_steal(&b, &head.body_len);
	stream_free(&s->base);
	*ret_head = head;
	*ret_body = NULL;
	return 0;
}

/* ---- streamed uploads ---- */

struct sc_http_upload {
	sc_writer base;
	sc_http *h;
	CURLM *multi;
	CURL *easy;
	xfer x;
	sc_http_response resp;
	sc_http_request req;
	char *url;
	bool done;
	CURLcode result;
	bool finished;
	bool early; /* the server answered before the body was complete: resp holds it */
};

const sc_http_response *sc_http_upload_early_answer(const sc_http_upload *u)
{
	return u->early ? &u->resp : NULL;
}

/* The upload could not go on. A lost connection loses the bytes already
 * streamed: only starting over helps. An answer before the end (a refusal)
 * is kept for the caller to read. */
static int upload_failed(sc_http_upload *u, sconify_error_t *err)
{
	if (u->result != CURLE_OK) {
		transfer_error(&u->req, u->result, &u->x, err);
		sc_error_set_restartable(err);
		return -1;
	}
	if (!u->early) {
		finish_response(&u->x, u->easy);
		u->early = true;
	}
	return sc_error(err, SCONIFY_ERR_INVALID, 0,
	                "%s: the server answered HTTP %ld before the upload was complete", u->url,
	                u->resp.status);
}

static bool pending_sent(void *ud)
{
	sc_http_upload *u = ud;
	return u->x.pending_len == 0 && u->x.upload_paused;
}

static int upload_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	sc_http_upload *u = (sc_http_upload *)base;
	if (u->finished)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "upload written after it finished");
	if (len == 0)
		return 0;
	if (u->done) /* the transfer ended before the body did */
		return upload_failed(u, err);
	u->x.pending = buf;
	u->x.pending_len = len;
	if (u->x.upload_paused) {
		u->x.upload_paused = false;
		curl_easy_pause(u->easy, CURLPAUSE_CONT);
	}
	if (drive(u->multi, &u->done, &u->result, pending_sent, u, err) < 0)
		return -1;
	if (u->x.pending_len > 0)
		return upload_failed(u, err);
	return 0;
}

static void upload_writer_free(sc_writer *base)
{
	(void)base; /* owned by the sc_http_upload */
}

static const struct sc_writer_ops upload_writer_ops = {.write = upload_write, .free = upload_writer_free};

int sc_http_upload_begin(sc_http *h, const sc_http_request *req, int64_t size, sc_http_upload **ret,
                         sc_writer **ret_writer, sconify_error_t *err)
{
	sc_http_upload *u = xzalloc(sizeof(*u));
	u->base.ops = &upload_writer_ops;
	u->h = h;
	u->url = xstrdup(req->url);
	char *q = strchr(u->url, '?');
	if (q)
		*q = '\0'; /* upload locations carry state in their query: keep it out of messages */
	u->req = *req;
	u->req.url = req->url;
	u->req.headers = NULL;
	u->req.authorization = NULL;
	u->req.body = NULL;
	xfer_init(&u->x, h, &u->resp, req);
	u->easy = take_easy(h);
	sc_http_request r = *req;
	r.body = NULL;
	r.body_len = 0;
	const char *method = req->method ? req->method : "PUT";
	r.method = NULL; /* set below: UPLOAD makes a PUT, CUSTOMREQUEST renames it */
	if (setup(h, u->easy, &r, &u->x, err) < 0) {
		sc_http_upload_free(u);
		return -1;
	}
	u->req.url = u->url;
	curl_easy_setopt(u->easy, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(u->easy, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(u->easy, CURLOPT_READFUNCTION, on_upload);
	curl_easy_setopt(u->easy, CURLOPT_READDATA, &u->x);
	curl_easy_setopt(u->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	u->multi = curl_multi_init();
	if (u->multi == NULL)
		abort();
	curl_multi_add_handle(u->multi, u->easy);
	*ret = u;
	*ret_writer = &u->base;
	return 0;
}

static bool never(void *ud)
{
	(void)ud;
	return false;
}

int sc_http_upload_finish(sc_http_upload *u, sc_http_response *ret, sconify_error_t *err)
{
	u->finished = true;
	u->x.upload_eof = true;
	if (u->x.upload_paused) {
		u->x.upload_paused = false;
		curl_easy_pause(u->easy, CURLPAUSE_CONT);
	}
	if (drive(u->multi, &u->done, &u->result, never, u, err) < 0)
		return -1;
	if (u->result != CURLE_OK) {
		transfer_error(&u->req, u->result, &u->x, err);
		sc_error_set_restartable(err);
		return -1;
	}
	finish_response(&u->x, u->easy);
	*ret = u->resp;
	memset(&u->resp, 0, sizeof(u->resp));
	return 0;
}

void sc_http_upload_free(sc_http_upload *u)
{
	if (u == NULL)
		return;
	release_transfer(u->h, u->multi, u->easy, u->done && u->result == CURLE_OK);
	xfer_done(&u->x);
	sc_http_response_clear(&u->resp);
	free(u->url);
	free(u);
}
