/* SPDX-License-Identifier: Apache-2.0 */
#include "registry.h"

#include <curl/curl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/json-util.h"
#include "core/retry.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "image/mediatype.h"

#define TOKEN_RESPONSE_MAX (1u << 20)
#define ERROR_BODY_MAX (1u << 20)
#define SMALL_BLOB_MAX (1u << 20) /* buffered and sent with one PUT */
#define CHUNK_DEFAULT (8u << 20)

static const char *const manifest_accept =
        "Accept: " SC_MT_OCI_MANIFEST ", " SC_MT_OCI_INDEX ", " SC_MT_DOCKER_MANIFEST ", " SC_MT_DOCKER_LIST;

typedef enum { AUTH_UNKNOWN, AUTH_NONE, AUTH_BASIC, AUTH_BEARER } auth_scheme;

struct token {
	char *scope;
	char *value;
	time_t expires;
};

struct sc_registry {
	sc_http *http;
	char *domain;
	char *base; /* "https://host[:port]" or "http://..." */
	bool tls_verify;
	sconify_limits_t limits;
	sc_credentials creds;
	pthread_mutex_t lock; /* guards everything below */
	bool pinged;
	auth_scheme scheme;
	char *realm, *service;
	struct token *tokens;
	size_t n_tokens;
};

const char *sc_registry_domain(const sc_registry *r)
{
	return r->domain;
}

int sc_registry_open(const char *domain, const char *repository, const sc_registry_options *o,
                     sc_registry **ret, sconify_error_t *err)
{
	sc_http_options ho = {
	        .tls_verify = o->tls_verify,
	        .cert_dir = o->cert_dir,
	        .retries = o->retries,
	        .stall_timeout_ms = o->stall_timeout_ms,
	        .debug = o->debug,
	        .debug_userdata = o->debug_userdata,
	};
	sc_registry *r = xzalloc(sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->domain = xstrdup(domain);
	r->tls_verify = o->tls_verify;
	r->limits = o->limits;
	/* Docker Hub's API lives on another host than its name. */
	const char *host = strcmp(domain, "docker.io") == 0 ? "registry-1.docker.io" : domain;
	r->base = xasprintf("https://%s", host);
	if (sc_http_new(&ho, &r->http, err) < 0 ||
	    sc_credentials_lookup(&o->creds, domain, repository, &r->creds, err) < 0) {
		sc_registry_free(r);
		return sc_error_wrap(err, "registry `%s'", domain);
	}
	*ret = r;
	return 0;
}

void sc_registry_free(sc_registry *r)
{
	if (r == NULL)
		return;
	sc_http_free(r->http);
	sc_credentials_clear(&r->creds);
	for (size_t i = 0; i < r->n_tokens; i++) {
		free(r->tokens[i].scope);
		OPENSSL_cleanse(r->tokens[i].value, strlen(r->tokens[i].value));
		free(r->tokens[i].value);
	}
	free(r->tokens);
	free(r->realm);
	free(r->service);
	free(r->domain);
	free(r->base);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* ---- error messages ---- */

/* "CODE: message; CODE: message" from the registry's error JSON, or the
 * start of a non-JSON body. */
static char *error_detail(const sc_http_response *resp)
{
	if (resp->body == NULL || resp->body_len == 0)
		return NULL;
	cleanup_json json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
	json_t *errors = json_object_get(j, "errors");
	if (json_is_array(errors) && json_array_size(errors) > 0) {
		sc_buf b;
		sc_buf_init(&b, SIZE_MAX);
		size_t i;
		json_t *e;
		json_array_foreach (errors, i, e) {
			if (i == 4)
				break;
			const char *code = json_string_value(json_object_get(e, "code"));
			const char *msg = json_string_value(json_object_get(e, "message"));
			cleanup_free char *qc = sc_quote(code ? code : "?", 64);
			cleanup_free char *qm = sc_quote(msg ? msg : "", 200);
			sc_buf_printf(&b, "%s%s%s%s", i ? "; " : "", qc, *qm ? ": " : "", qm);
		}
		return sc_buf_steal(&b, NULL);
	}
	return sc_quote_n(resp->body, resp->body_len, 200);
}

/* An error for a response we did not expect: names the registry, what we
 * were doing and the repository, and says why in the registry's words. */
static int response_error(sc_registry *r, const sc_http_response *resp, const char *action, const char *repo,
                          sconify_error_t *err)
{
	cleanup_free char *detail = error_detail(resp);
	sconify_error_kind_t kind;
	const char *what;
	switch (resp->status) {
	case 401:
		kind = SCONIFY_ERR_AUTH;
		what = r->creds.username || r->creds.identity_token
		               ? "was denied: the credentials were refused"
		               : "needs credentials";
		break;
	case 403:
		kind = SCONIFY_ERR_AUTH;
		what = "was denied";
		break;
	case 404:
		kind = SCONIFY_ERR_NOT_FOUND;
		what = "found nothing";
		break;
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		kind = SCONIFY_ERR_NETWORK;
		what = "kept failing";
		break;
	default:
		kind = SCONIFY_ERR_INVALID;
		what = "failed";
		break;
	}
	return sc_error(err, kind, 0, "registry `%s': %s `%s' %s (HTTP %ld%s%s)", r->domain, action, repo,
	                what, resp->status, detail ? ": " : "", detail ? detail : "");
}

/* ---- origins ---- */

/* "scheme://host:port" of url, lowercase, the default port filled in; NULL
 * when it does not parse. */
static char *origin_of(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		out = xasprintf("%s://%s:%s", scheme, host, port);
		for (char *c = out; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

static bool same_origin(const char *a, const char *b)
{
	cleanup_free char *oa = origin_of(a);
	cleanup_free char *ob = origin_of(b);
	return oa && ob && strcmp(oa, ob) == 0;
}

/* ---- authentication ---- */

/* One parameter of a WWW-Authenticate challenge (RFC 7235 auth-param). */
static char *challenge_param(const char *h, const char *name)
{
	const char *p = strchr(h, ' ');
	while (p && *p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		const char *k = p;
		while (*p && *p != '=' && *p != ' ' && *p != ',')
			p++;
		size_t klen = (size_t)(p - k);
		while (*p == ' ')
			p++;
		if (*p != '=')
			break;
		p++;
		while (*p == ' ')
			p++;
		sc_buf v;
		sc_buf_init(&v, 8192);
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				if (sc_buf_append(&v, p, 1, "challenge", NULL) < 0)
					break;
			}
			if (*p == '"')
				p++;
		} else {
			const char *s = p;
			while (*p && *p != ',' && *p != ' ')
				p++;
			sc_buf_append(&v, s, (size_t)(p - s), "challenge", NULL);
		}
		if (klen == strlen(name) && strncasecmp(k, name, klen) == 0)
			return sc_buf_steal(&v, NULL);
		sc_buf_free(&v);
	}
	return NULL;
}

/* Learns the scheme from a challenge. Lock held. */
static int take_challenge(sc_registry *r, const char *challenge, sconify_error_t *err)
{
	if (challenge == NULL)
		return sc_error(err, SCONIFY_ERR_AUTH, 0, "registry `%s' answered 401 without a challenge",
		                r->domain);
	if (strncasecmp(challenge, "basic", 5) == 0) {
		r->scheme = AUTH_BASIC;
		return 0;
	}
	if (strncasecmp(challenge, "bearer", 6) != 0) {
		cleanup_free char *q = sc_quote(challenge, 64);
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
		                "registry `%s': unsupported authentication `%s'", r->domain, q);
	}
	cleanup_free char *realm = challenge_param(challenge, "realm");
	if (realm == NULL || *realm == '\0')
		return sc_error(err, SCONIFY_ERR_AUTH, 0, "registry `%s': its token challenge names no realm",
		                r->domain);
	/* Tokens travel to the realm with our credentials: never over plain
	 * http unless the user turned verification off for this registry. */
	if (!sc_startswith(realm, "https://") && !(sc_startswith(realm, "http://") && !r->tls_verify)) {
		cleanup_free char *q = sc_quote(realm, 128);
		return sc_error(err, SCONIFY_ERR_AUTH, 0,
		                "registry `%s': refusing token realm `%s' (not https; --tls-verify=false "
		                "allows http)",
		                r->domain, q);
	}
	free(r->realm);
	free(r->service);
	r->realm = steal_pointer(&realm);
	r->service = challenge_param(challenge, "service");
	r->scheme = AUTH_BEARER;
	return 0;
}

/* GET /v2/: whether the registry answers, over which scheme, and how it
 * wants us to authenticate. Lock held. */
static int ping(sc_registry *r, sconify_error_t *err)
{
	if (r->pinged)
		return 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		cleanup_free char *url = xasprintf("%s/v2/", r->base);
		sc_http_request req = {.url = url, .max_response = ERROR_BODY_MAX};
		sc_http_response resp = {0};
		sconify_error_t e = NULL;
		if (sc_http_do(r->http, &req, &resp, &e) < 0) {
			/* --tls-verify=false also means: plain http when https is not spoken. */
			if (attempt == 0 && !r->tls_verify && sc_startswith(r->base, "https://")) {
				sconify_error_free(&e);
				char *b = xasprintf("http://%s", r->base + 8);
				free(r->base);
				r->base = b;
				continue;
			}
			sc_error_move(err, &e);
			return sc_error_wrap(err, "registry `%s'", r->domain);
		}
		int rc = 0;
		if (resp.status == 200)
			r->scheme = AUTH_NONE;
		else if (resp.status == 401)
			rc = take_challenge(r, sc_http_header_get(&resp, "www-authenticate"), err);
		else
			rc = response_error(r, &resp, "checking API support of", "/v2/", err);
		sc_http_response_clear(&resp);
		if (rc < 0)
			return -1;
		r->pinged = true;
		return 0;
	}
	return -1;
}

/* Every operation starts here: the first one learns the scheme (https, or
 * http under --tls-verify=false) and the authentication; r->base is fixed
 * from then on. */
static int ready(sc_registry *r, sconify_error_t *err)
{
	pthread_mutex_lock(&r->lock);
	int rc = ping(r, err);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static char *basic_value(const sc_credentials *c)
{
	size_t ul = strlen(c->username), pl = c->password ? strlen(c->password) : 0;
	cleanup_free char *plain = xmalloc(ul + 1 + pl + 1);
	memcpy(plain, c->username, ul);
	plain[ul] = ':';
	if (pl)
		memcpy(plain + ul + 1, c->password, pl);
	size_t n = ul + 1 + pl;
	char *out = xmalloc(6 + 4 * ((n + 2) / 3) + 1);
	memcpy(out, "Basic ", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, (unsigned char *)plain, (int)n);
	OPENSSL_cleanse(plain, n);
	return out;
}

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* URL-encodes s; curl's buffer is wiped (s may be a secret). */
static char *escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	if (e == NULL)
		abort();
	char *r = xstrdup(e);
	OPENSSL_cleanse(e, strlen(e));
	curl_free(e);
	return r;
}

/* Asks the realm for a token covering scopes (space-separated). Lock held. */
static int fetch_token(sc_registry *r, const char *scopes, char **ret, time_t *ret_expires,
                       sconify_error_t *err)
{
	sc_http_response resp = {0};
	cleanup_free char *service = r->service ? escape(r->service) : NULL;
	bool done = false;

	if (r->creds.identity_token) {
		/* An identity token is an OAuth2 refresh token: POST it; a realm
		 * without the OAuth2 endpoint (404/405) gets the GET flow. */
		char *rt = escape(r->creds.identity_token);
		cleanup_free char *sc = escape(scopes);
		/* One allocation of the exact size: no reallocation leaves a copy. */
		size_t n = (size_t)snprintf(
		        NULL, 0, "grant_type=refresh_token&client_id=sconify&refresh_token=%s%s%s%s%s", rt,
		        service ? "&service=" : "", service ? service : "", *scopes ? "&scope=" : "",
		        *scopes ? sc : "");
		char *form = xmalloc(n + 1);
		snprintf(form, n + 1, "grant_type=refresh_token&client_id=sconify&refresh_token=%s%s%s%s%s",
		         rt, service ? "&service=" : "", service ? service : "", *scopes ? "&scope=" : "",
		         *scopes ? sc : "");
		free_secret(rt);
		const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
		sc_http_request req = {.method = "POST",
		                       .url = r->realm,
		                       .headers = headers,
		                       .body = form,
		                       .body_len = n,
		                       .max_response = TOKEN_RESPONSE_MAX,
		                       .secret_response = true};
		int rc = sc_http_do(r->http, &req, &resp, err);
		free_secret(form);
		if (rc < 0)
			return sc_error_wrap(err, "registry `%s': getting a token", r->domain);
		done = resp.status != 404 && resp.status != 405;
		if (!done)
			sc_http_response_clear(&resp);
	}
	if (!done) {
		sc_buf url;
		sc_buf_init(&url, SIZE_MAX);
		sc_buf_puts(&url, r->realm);
		char sep = strchr(r->realm, '?') ? '&' : '?';
		if (service) {
			sc_buf_printf(&url, "%cservice=%s", sep, service);
			sep = '&';
		}
		/* One scope parameter per scope, as the token spec wants. */
		cleanup_free char *copy = xstrdup(scopes);
		for (char *save = NULL, *s = strtok_r(copy, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
			cleanup_free char *e = escape(s);
			sc_buf_printf(&url, "%cscope=%s", sep, e);
			sep = '&';
		}
		cleanup_free char *u = sc_buf_steal(&url, NULL);
		cleanup_free char *auth =
		        r->creds.username && r->creds.password ? basic_value(&r->creds) : NULL;
		sc_http_request req = {.url = u,
		                       .authorization = auth,
		                       .max_response = TOKEN_RESPONSE_MAX,
		                       .secret_response = true};
		int rc = sc_http_do(r->http, &req, &resp, err);
		if (auth)
			OPENSSL_cleanse(auth, strlen(auth));
		if (rc < 0)
			return sc_error_wrap(err, "registry `%s': getting a token", r->domain);
	}

	int rc = 0;
	if (resp.status != 200) {
		cleanup_free char *detail = error_detail(&resp);
		rc = sc_error(err, SCONIFY_ERR_AUTH, 0,
		              "registry `%s': the token server refused %s (HTTP %ld%s%s)", r->domain,
		              r->creds.username ? "the credentials" : "an anonymous token", resp.status,
		              detail ? ": " : "", detail ? detail : "");
	} else {
		cleanup_json json_t *j = json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, NULL);
		const char *tok = json_string_value(json_object_get(j, "token"));
		if (tok == NULL || *tok == '\0')
			tok = json_string_value(json_object_get(j, "access_token"));
		json_t *exp = json_object_get(j, "expires_in");
		long long expires_in = json_is_integer(exp) ? json_integer_value(exp) : 60;
		/* A day at most: a hostile number must not overflow or pin a token. */
		if (expires_in <= 0)
			expires_in = 60;
		if (expires_in > 86400)
			expires_in = 86400;
		if (tok == NULL || *tok == '\0') {
			rc = sc_error(err, SCONIFY_ERR_AUTH, 0,
			              "registry `%s': the token server's answer holds no token", r->domain);
		} else {
			*ret = xstrdup(tok);
			/* Renew a little early: the clock of the token server is not ours. */
			long long margin = expires_in > 20 ? 10 : expires_in / 2;
			*ret_expires = time(NULL) + (time_t)(expires_in - margin);
		}
	}
	if (resp.body)
		OPENSSL_cleanse(resp.body, resp.body_len);
	sc_http_response_clear(&resp);
	return rc;
}

static void forget_token(sc_registry *r, const char *scopes)
{
	for (size_t i = 0; i < r->n_tokens; i++)
		if (strcmp(r->tokens[i].scope, scopes) == 0)
			r->tokens[i].expires = 0;
}

/* The Authorization header value for a request needing scopes, or NULL. */
static int authorization(sc_registry *r, const char *scopes, char **ret, sconify_error_t *err)
{
	pthread_mutex_lock(&r->lock);
	int rc = ping(r, err);
	*ret = NULL;
	if (rc == 0 && r->scheme == AUTH_BASIC && r->creds.username)
		*ret = basic_value(&r->creds);
	if (rc == 0 && r->scheme == AUTH_BEARER) {
		time_t now = time(NULL);
		struct token *t = NULL;
		for (size_t i = 0; i < r->n_tokens; i++)
			if (strcmp(r->tokens[i].scope, scopes) == 0)
				t = &r->tokens[i];
		if (t == NULL || t->expires <= now) {
			char *value = NULL;
			time_t expires = 0;
			rc = fetch_token(r, scopes, &value, &expires, err);
			if (rc == 0 && t == NULL) {
				r->tokens = xreallocarray(r->tokens, r->n_tokens + 1, sizeof(*r->tokens));
				t = &r->tokens[r->n_tokens++];
				t->scope = xstrdup(scopes);
				t->value = NULL;
			}
			if (rc == 0) {
				if (t->value) {
					OPENSSL_cleanse(t->value, strlen(t->value));
					free(t->value);
				}
				t->value = value;
				t->expires = expires;
			}
		}
		if (rc == 0)
			*ret = xasprintf("Bearer %s", t->value);
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* A request with authentication: a 401 once renews the token (or learns a
 * new challenge) and tries again. */
static int authed(sc_registry *r, const char *scopes, sc_http_request *req, sc_http_response *resp,
                  sconify_error_t *err)
{
	for (int attempt = 0;; attempt++) {
		char *auth = NULL;
		if (authorization(r, scopes, &auth, err) < 0)
			return -1;
		req->authorization = auth;
		int rc = sc_http_do(r->http, req, resp, err);
		req->authorization = NULL;
		free_secret(auth);
		if (rc < 0)
			return -1;
		if (resp->status != 401 || attempt == 1)
			return 0;
		/* A 401 from where a redirect led (a CDN, a storage host) is not the
		 * registry speaking: its challenge must not redirect our credentials. */
		if (resp->url && !same_origin(resp->url, r->base))
			return 0;
		pthread_mutex_lock(&r->lock);
		const char *challenge = sc_http_header_get(resp, "www-authenticate");
		forget_token(r, scopes);
		int crc = challenge ? take_challenge(r, challenge, NULL) : 0;
		pthread_mutex_unlock(&r->lock);
		if (crc < 0)
			return 0;
		sc_http_response_clear(resp);
	}
}

static char *pull_scope(const char *repo)
{
	return xasprintf("repository:%s:pull", repo);
}

static char *push_scope(const char *repo)
{
	return xasprintf("repository:%s:pull,push", repo);
}

/* ---- manifests ---- */

static char *strip_params(const char *content_type)
{
	if (content_type == NULL)
		return NULL;
	size_t n = strcspn(content_type, "; \t");
	return xstrndup(content_type, n);
}

int sc_registry_get_manifest(sc_registry *r, const char *repo, const char *reference, char **ret_data,
                             size_t *ret_len, char **ret_media_type, sc_digest *ret_digest,
                             sconify_error_t *err)
{
	if (ready(r, err) < 0)
		return -1;
	cleanup_free char *url = xasprintf("%s/v2/%s/manifests/%s", r->base, repo, reference);
	cleanup_free char *scope = pull_scope(repo);
	const char *headers[] = {manifest_accept, NULL};
	sc_http_request req = {.url = url,
	                       .headers = headers,
	                       .follow_redirects = true,
	                       .max_response = (size_t)r->limits.max_document_bytes + 1};
	sc_http_response resp = {0};
	if (authed(r, scope, &req, &resp, err) < 0)
		return -1;
	cleanup_free char *action = xasprintf("reading manifest `%s' of", reference);
	int rc = 0;
	if (resp.status != 200) {
		rc = response_error(r, &resp, action, repo, err);
	} else if (resp.body_truncated || resp.body_len > r->limits.max_document_bytes) {
		rc = sc_error(err, SCONIFY_ERR_LIMIT, 0,
		              "registry `%s': manifest `%s' of `%s' is larger than the limit of %llu bytes",
		              r->domain, reference, repo, (unsigned long long)r->limits.max_document_bytes);
	} else {
		/* The header, when there, must be the digest of what we got; a
		 * digest reference must be too. */
		const char *header = sc_http_header_get(&resp, "docker-content-digest");
		sc_digest want, got;
		bool by_digest = sc_digest_parse(reference, &want, NULL) == 0;
		if (!by_digest && header && sc_digest_parse(header, &want, err) < 0)
			rc = sc_error_wrap(err, "registry `%s': Docker-Content-Digest of `%s'", r->domain,
			                   repo);
		if (rc == 0) {
			sc_digest_of(by_digest || header ? want.alg : SC_SHA256, resp.body, resp.body_len,
			             &got);
			if ((by_digest || header) && !sc_digest_equal(&got, &want))
				rc = sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
				              "registry `%s': manifest `%s' of `%s': digest mismatch: "
				              "content hashes to %s, %s %s",
				              r->domain, reference, repo, got.str,
				              by_digest ? "it was asked for as" : "the registry says",
				              want.str);
		}
		if (rc == 0) {
			if (got.alg != SC_SHA256)
				sc_digest_of(SC_SHA256, resp.body, resp.body_len, &got);
			*ret_media_type = strip_params(sc_http_header_get(&resp, "content-type"));
			*ret_digest = got;
			*ret_len = resp.body_len;
			*ret_data = steal_pointer(&resp.body);
		}
	}
	sc_http_response_clear(&resp);
	return rc;
}

int sc_registry_put_manifest(sc_registry *r, const char *repo, const char *reference, const char *data,
                             size_t len, const char *media_type, sconify_error_t *err)
{
	if (ready(r, err) < 0)
		return -1;
	cleanup_free char *url = xasprintf("%s/v2/%s/manifests/%s", r->base, repo, reference);
	cleanup_free char *scope = push_scope(repo);
	cleanup_free char *ct = xasprintf("Content-Type: %s", media_type);
	const char *headers[] = {ct, NULL};
	sc_http_request req = {.method = "PUT",
	                       .url = url,
	                       .headers = headers,
	                       .body = data,
	                       .body_len = len,
	                       .max_response = ERROR_BODY_MAX};
	sc_http_response resp = {0};
	if (authed(r, scope, &req, &resp, err) < 0)
		return -1;
	int rc = 0;
	if (resp.status != 201 && resp.status != 200) {
		cleanup_free char *action = xasprintf("pushing manifest `%s' to", reference);
		rc = response_error(r, &resp, action, repo, err);
	} else {
		const char *header = sc_http_header_get(&resp, "docker-content-digest");
		sc_digest want, got;
		sc_digest_of(SC_SHA256, data, len, &got);
		if (header && sc_digest_parse(header, &want, NULL) == 0 && want.alg == SC_SHA256 &&
		    !sc_digest_equal(&want, &got))
			rc = sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
			              "registry `%s': stored manifest `%s' of `%s' as %s, but we sent %s",
			              r->domain, reference, repo, want.str, got.str);
	}
	sc_http_response_clear(&resp);
	return rc;
}

/* ---- blobs ---- */

int sc_registry_blob_exists(sc_registry *r, const char *repo, const sc_digest *d, bool *ret,
                            sconify_error_t *err)
{
	if (ready(r, err) < 0)
		return -1;
	cleanup_free char *url = xasprintf("%s/v2/%s/blobs/%s", r->base, repo, d->str);
	cleanup_free char *scope = pull_scope(repo);
	sc_http_request req = {.method = "HEAD", .url = url, .follow_redirects = true};
	sc_http_response resp = {0};
	if (authed(r, scope, &req, &resp, err) < 0)
		return -1;
	int rc = 0;
	if (resp.status == 200)
		*ret = true;
	else if (resp.status == 404)
		*ret = false;
	else
		rc = response_error(r, &resp, "checking a blob of", repo, err);
	sc_http_response_clear(&resp);
	return rc;
}

struct blob_reader {
	sc_reader base;
	sc_registry *r;
	char *repo;
	char *url;
	char *scope;
	sc_digest digest;
	uint64_t size;
	uint64_t offset;
	sc_reader *cur;
	int resumes;
};

/* Digits only (no sign, no space) into *ret; the first byte after them. */
static const char *digits(const char *p, unsigned long long *ret)
{
	if (*p < '0' || *p > '9')
		return NULL;
	unsigned long long v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (ULLONG_MAX - 9) / 10)
			return NULL;
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	*ret = v;
	return p;
}

/* "bytes START-(SIZE-1)/SIZE" exactly: the rest of this very blob. */
static bool content_range_ok(const char *cr, uint64_t start, uint64_t size)
{
	unsigned long long a, b, t;
	const char *p = cr && strncmp(cr, "bytes ", 6) == 0 ? cr + 6 : NULL;
	if (p == NULL || (p = digits(p, &a)) == NULL || *p++ != '-' || (p = digits(p, &b)) == NULL ||
	    *p++ != '/' || (p = digits(p, &t)) == NULL || *p != '\0')
		return false;
	return a == start && t == size && size > 0 && b == size - 1;
}

/* (Re)starts the download at b->offset. */
static int blob_start(struct blob_reader *b, sconify_error_t *err)
{
	int retries = sc_http_retries(b->r->http);
	for (int attempt = 0;; attempt++) {
		char *auth = NULL;
		if (authorization(b->r, b->scope, &auth, err) < 0)
			return -1;
		cleanup_free char *range =
		        b->offset ? xasprintf("Range: bytes=%llu-", (unsigned long long)b->offset) : NULL;
		const char *headers[] = {range, NULL};
		sc_http_request req = {.url = b->url,
		                       .authorization = auth,
		                       .headers = range ? headers : NULL,
		                       .follow_redirects = true,
		                       .max_response = ERROR_BODY_MAX};
		sc_http_response head = {0};
		sc_reader *body = NULL;
		int rc = sc_http_stream(b->r->http, &req, &head, &body, err);
		free_secret(auth);
		if (rc < 0)
			return -1;
		if (head.status == 401 && attempt == 0 &&
		    (head.url == NULL || same_origin(head.url, b->r->base))) {
			pthread_mutex_lock(&b->r->lock);
			forget_token(b->r, b->scope);
			pthread_mutex_unlock(&b->r->lock);
			sc_http_response_clear(&head);
			continue;
		}
		if (sc_http_status_transient(head.status) && attempt < retries) {
			sc_sleep_ms(sc_http_retry_delay_ms((unsigned)attempt, &head));
			sc_http_response_clear(&head);
			continue;
		}
		if (head.status == 206) {
			/* Only asked for when resuming, and exactly the rest of this blob. */
			if (b->offset == 0 || !content_range_ok(sc_http_header_get(&head, "content-range"),
			                                        b->offset, b->size)) {
				sc_reader_free(body);
				sc_http_response_clear(&head);
				return sc_error(err, SCONIFY_ERR_NETWORK, 0,
				                "registry `%s': resuming blob %s of `%s' at byte %llu got "
				                "the wrong range",
				                b->r->domain, b->digest.str, b->repo,
				                (unsigned long long)b->offset);
			}
		} else if (head.status == 200 && b->offset > 0) {
			/* No Range support: read again from the start, drop what we have. */
			char skip[16384];
			uint64_t left = b->offset;
			while (left > 0 && rc == 0) {
				ssize_t n = sc_reader_read(
				        body, skip, left < sizeof(skip) ? (size_t)left : sizeof(skip), err);
				if (n <= 0)
					rc = n < 0 ? -1
					           : sc_error(err, SCONIFY_ERR_NETWORK, 0,
					                      "blob %s ended early", b->digest.str);
				else
					left -= (uint64_t)n;
			}
			if (rc < 0) {
				sc_reader_free(body);
				sc_http_response_clear(&head);
				return -1;
			}
		} else if (head.status != 200) {
			cleanup_free char *action = xasprintf("reading blob %s of", b->digest.str);
			rc = response_error(b->r, &head, action, b->repo, err);
			sc_reader_free(body);
			sc_http_response_clear(&head);
			return rc;
		}
		sc_http_response_clear(&head);
		b->cur = body;
		return 0;
	}
}

static ssize_t blob_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	struct blob_reader *b = (struct blob_reader *)base;
	for (;;) {
		sconify_error_t e = NULL;
		ssize_t n = -1;
		if (b->cur != NULL || blob_start(b, &e) == 0)
			n = sc_reader_read(b->cur, buf, len, &e);
		if (n >= 0) {
			b->offset += (uint64_t)n;
			return n;
		}
		/* A dropped connection, or one that failed to come back: go on
		 * from where it stopped, as often as the retries allow. */
		sc_reader_free(b->cur);
		b->cur = NULL;
		if (sconify_error_kind(e) != SCONIFY_ERR_NETWORK ||
		    b->resumes >= sc_http_retries(b->r->http)) {
			sc_error_move(err, &e);
			return sc_error_wrap(err, "registry `%s': reading blob %s of `%s'", b->r->domain,
			                     b->digest.str, b->repo);
		}
		sconify_error_free(&e);
		sc_sleep_ms(sc_http_retry_delay_ms((unsigned)b->resumes, NULL));
		b->resumes++;
	}
}

static void blob_free(sc_reader *base)
{
	struct blob_reader *b = (struct blob_reader *)base;
	sc_reader_free(b->cur);
	free(b->repo);
	free(b->url);
	free(b->scope);
	free(b);
}

static const struct sc_reader_ops blob_ops = {.read = blob_read, .free = blob_free};

int sc_registry_open_blob(sc_registry *r, const char *repo, const sc_digest *d, uint64_t size,
                          sc_reader **ret, sconify_error_t *err)
{
	if (ready(r, err) < 0)
		return -1;
	struct blob_reader *b = xzalloc(sizeof(*b));
	b->base.ops = &blob_ops;
	b->size = size;
	b->r = r;
	b->repo = xstrdup(repo);
	b->url = xasprintf("%s/v2/%s/blobs/%s", r->base, repo, d->str);
	b->scope = pull_scope(repo);
	b->digest = *d;
	/* Start now: a missing blob or a refusal shows up here, not mid-copy. */
	if (blob_start(b, err) < 0) {
		blob_free(&b->base);
		return -1;
	}
	*ret = &b->base;
	return 0;
}

/* ---- uploads ---- */

/* An upload location from a Location header: absolute, or relative to the
 * registry. Credentials go only to the registry's own origin. */
static int upload_location(sc_registry *r, const sc_http_response *resp, const char *repo, char **ret,
                           sconify_error_t *err)
{
	const char *loc = sc_http_header_get(resp, "location");
	if (loc == NULL || *loc == '\0')
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "registry `%s': an upload to `%s' got no Location", r->domain, repo);
	/* Absolute, absolute-path or relative alike: resolve against the
	 * request with curl's parser (the one that will use it), then compare
	 * origins. No string prefix decides what is "another host". */
	CURLU *u = curl_url();
	char *out = NULL;
	cleanup_free char *req = xasprintf("%s/v2/%s/blobs/uploads/", r->base, repo);
	if (u == NULL || curl_url_set(u, CURLUPART_URL, req, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_URL, loc, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK) {
		curl_url_cleanup(u);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "registry `%s': unusable upload Location",
		                r->domain);
	}
	curl_url_cleanup(u);
	bool same = same_origin(out, r->base);
	if (!same) {
		curl_free(out);
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
		                "registry `%s': the upload Location points at another host; not sending "
		                "credentials there",
		                r->domain);
	}
	*ret = xstrdup(out);
	curl_free(out);
	return 0;
}

static char *with_digest(const char *location, const sc_digest *d)
{
	return xasprintf("%s%cdigest=%s", location, strchr(location, '?') ? '&' : '?', d->str);
}

int sc_registry_mount_blob(sc_registry *r, const char *repo, const sc_digest *d, const char *from_repo,
                           bool *ret, sconify_error_t *err)
{
	if (ready(r, err) < 0)
		return -1;
	(void)err;
	*ret = false;
	cleanup_free char *url =
	        xasprintf("%s/v2/%s/blobs/uploads/?mount=%s&from=%s", r->base, repo, d->str, from_repo);
	/* One token for both repositories. */
	cleanup_free char *scope = xasprintf("repository:%s:pull,push repository:%s:pull", repo, from_repo);
	sc_http_request req = {.method = "POST", .url = url, .max_response = ERROR_BODY_MAX};
	sc_http_response resp = {0};
	sconify_error_t e = NULL;
	if (authed(r, scope, &req, &resp, &e) == 0 && resp.status == 201)
		*ret = true;
	if (resp.status == 202) {
		/* The registry opened an upload instead; let it expire rather
		 * than spend a request cancelling it. */
	}
	sconify_error_free(&e);
	sc_http_response_clear(&resp);
	return 0;
}

typedef enum { UP_SMALL, UP_STREAM, UP_CHUNKED } upload_mode;

struct sc_registry_upload {
	sc_writer base;
	sc_registry *r;
	char *repo;
	char *scope;
	char *location;
	upload_mode mode;
	/* UP_SMALL and UP_CHUNKED: bytes held until sent */
	sc_buf held;
	size_t chunk;
	uint64_t sent;
	/* UP_STREAM */
	sc_http_upload *http;
	sc_writer *hw;
	int64_t size;
	bool failed;
	bool sealed;      /* no more writes: UP_STREAM's PATCH is finished */
	bool min_chunked; /* UP_CHUNKED because the registry asked for a chunk size */
};

static int upload_patch_chunk(sc_registry_upload *u, sconify_error_t *err)
{
	cleanup_free char *range = xasprintf("Content-Range: %llu-%llu", (unsigned long long)u->sent,
	                                     (unsigned long long)(u->sent + u->held.len - 1));
	const char *headers[] = {"Content-Type: application/octet-stream", range, NULL};
	/* Sent once: a PATCH is not idempotent (a chunk re-sent to an old
	 * Location is refused). A lost one restarts the whole upload. */
	sc_http_request req = {.method = "PATCH",
	                       .url = u->location,
	                       .headers = headers,
	                       .body = u->held.data,
	                       .body_len = u->held.len,
	                       .max_response = ERROR_BODY_MAX,
	                       .no_retry = true};
	sc_http_response resp = {0};
	if (authed(u->r, u->scope, &req, &resp, err) < 0) {
		sc_error_set_restartable(err);
		return -1;
	}
	int rc = 0;
	if (resp.status != 202) {
		rc = response_error(u->r, &resp, "uploading a chunk to", u->repo, err);
		if (sc_http_status_transient(resp.status))
			sc_error_set_restartable(err);
	} else {
		char *loc = NULL;
		rc = upload_location(u->r, &resp, u->repo, &loc, err);
		if (rc == 0) {
			free(u->location);
			u->location = loc; /* always the newest */
			u->sent += u->held.len;
			u->held.len = 0;
		}
	}
	sc_http_response_clear(&resp);
	return rc;
}

/* A registry that refuses a streamed upload (401, 403, 413...) answers
 * before reading the body: say what it said, not that the stream broke. */
static void early_refusal(sc_registry_upload *u, sconify_error_t *err)
{
	const sc_http_response *resp = sc_http_upload_early_answer(u->http);
	if (resp == NULL)
		return;
	response_error(u->r, resp, "uploading a blob to", u->repo, err);
	if (sc_http_status_transient(resp->status))
		sc_error_set_restartable(err);
}

static int upload_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	sc_registry_upload *u = (sc_registry_upload *)base;
	if (u->failed)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "upload already failed");
	if (u->sealed)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "upload already sealed");
	int rc = 0;
	switch (u->mode) {
	case UP_STREAM:
		rc = sc_writer_write(u->hw, buf, len, err);
		if (rc < 0)
			early_refusal(u, err);
		break;
	case UP_SMALL:
		rc = sc_buf_append(&u->held, buf, len, "blob", err);
		break;
	case UP_CHUNKED: {
		const char *p = buf;
		while (len > 0 && rc == 0) {
			size_t k = u->chunk - u->held.len < len ? u->chunk - u->held.len : len;
			rc = sc_buf_append(&u->held, p, k, "chunk", err);
			p += k;
			len -= k;
			if (rc == 0 && u->held.len == u->chunk)
				rc = upload_patch_chunk(u, err);
		}
		break;
	}
	}
	if (rc < 0)
		u->failed = true;
	return rc;
}

static void upload_writer_free(sc_writer *base)
{
	(void)base; /* owned by the upload */
}

static const struct sc_writer_ops upload_ops = {.write = upload_write, .free = upload_writer_free};

static int upload_begin(sc_registry *r, const char *repo, int64_t known_size, bool chunks,
                        sc_registry_upload **ret, sc_writer **ret_writer, sconify_error_t *err)
{
	if (ready(r, err) < 0)
		return -1;
	cleanup_free char *url = xasprintf("%s/v2/%s/blobs/uploads/", r->base, repo);
	sc_registry_upload *u = xzalloc(sizeof(*u));
	u->base.ops = &upload_ops;
	u->r = r;
	u->repo = xstrdup(repo);
	u->scope = push_scope(repo);
	u->size = known_size;
	sc_buf_init(&u->held, SMALL_BLOB_MAX);
	sc_http_request req = {.method = "POST", .url = url, .max_response = ERROR_BODY_MAX};
	sc_http_response resp = {0};
	int rc = authed(r, u->scope, &req, &resp, err);
	if (rc == 0 && resp.status != 202)
		rc = response_error(r, &resp, "starting an upload to", repo, err);
	if (rc == 0)
		rc = upload_location(r, &resp, repo, &u->location, err);
	unsigned long long min_chunk = 0;
	const char *min = rc == 0 ? sc_http_header_get(&resp, "oci-chunk-min-length") : NULL;
	if (min && !sc_parse_u64(min, &min_chunk))
		min_chunk = 0;
	sc_http_response_clear(&resp);
	if (rc < 0) {
		sc_registry_upload_free(u);
		return -1;
	}

	if (min_chunk > 0 || chunks) {
		/* The registry wants chunks of at least this size, or the caller
		 * wants an upload that is never in the middle of a request
		 * between writes. */
		u->mode = UP_CHUNKED;
		u->min_chunked = min_chunk > 0;
		u->chunk = min_chunk > CHUNK_DEFAULT ? (size_t)min_chunk : CHUNK_DEFAULT;
		if (min_chunk > (64u << 20)) {
			sc_registry_upload_free(u);
			return sc_error(err, SCONIFY_ERR_LIMIT, 0,
			                "registry `%s' asks for upload chunks of %llu bytes", r->domain,
			                min_chunk);
		}
		sc_buf_init(&u->held, u->chunk);
	} else if (known_size >= 0 && known_size <= (int64_t)SMALL_BLOB_MAX) {
		u->mode = UP_SMALL;
	} else {
		u->mode = UP_STREAM;
		char *auth = NULL;
		if (authorization(r, u->scope, &auth, err) < 0) {
			sc_registry_upload_free(u);
			return -1;
		}
		const char *headers[] = {"Content-Type: application/octet-stream", NULL};
		sc_http_request patch = {.method = "PATCH",
		                         .url = u->location,
		                         .authorization = auth,
		                         .headers = headers,
		                         .max_response = ERROR_BODY_MAX};
		rc = sc_http_upload_begin(r->http, &patch, known_size, &u->http, &u->hw, err);
		free_secret(auth);
		if (rc < 0) {
			sc_registry_upload_free(u);
			return -1;
		}
	}
	*ret = u;
	*ret_writer = &u->base;
	return 0;
}

int sc_registry_upload_begin(sc_registry *r, const char *repo, int64_t known_size, sc_registry_upload **ret,
                             sc_writer **ret_writer, sconify_error_t *err)
{
	return upload_begin(r, repo, known_size, false, ret, ret_writer, err);
}

int sc_registry_upload_begin_chunks(sc_registry *r, const char *repo, sc_registry_upload **ret,
                                    sc_writer **ret_writer, sconify_error_t *err)
{
	return upload_begin(r, repo, -1, true, ret, ret_writer, err);
}

int sc_registry_upload_seal(sc_registry_upload *u, sconify_error_t *err)
{
	if (u->failed)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "upload already failed");
	if (u->sealed || u->mode == UP_SMALL) {
		u->sealed = true;
		return 0;
	}
	if (u->mode == UP_CHUNKED) {
		/* A registry that asked for a chunk size gets the short last
		 * chunk with the PUT, where the spec allows it; otherwise it goes
		 * now, and the buffer with it. */
		if (u->min_chunked) {
			u->sealed = true;
			return 0;
		}
		if (u->held.len > 0 && upload_patch_chunk(u, err) < 0) {
			u->failed = true;
			return -1;
		}
		sc_buf_free(&u->held);
		sc_buf_init(&u->held, 0);
		u->sealed = true;
		return 0;
	}
	sc_http_response resp = {0};
	int rc = sc_http_upload_finish(u->http, &resp, err);
	if (rc == 0 && resp.status != 202) {
		rc = response_error(u->r, &resp, "uploading a blob to", u->repo, err);
		/* the body is spent: only a new upload can try again */
		if (sc_http_status_transient(resp.status))
			sc_error_set_restartable(err);
	}
	char *loc = NULL;
	if (rc == 0 && upload_location(u->r, &resp, u->repo, &loc, err) == 0) {
		free(u->location);
		u->location = loc;
	} else {
		rc = -1;
	}
	sc_http_response_clear(&resp);
	if (rc < 0) {
		u->failed = true;
		return -1;
	}
	/* the connection goes back to the pool now, not at the commit */
	sc_http_upload_free(u->http);
	u->http = NULL;
	u->sealed = true;
	return 0;
}

int sc_registry_upload_commit(sc_registry_upload *u, const sc_digest *d, uint64_t size, sconify_error_t *err)
{
	(void)size;
	if (u->failed)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "upload already failed");
	sc_http_response resp = {0};
	/* UP_STREAM's PATCH ends here unless it was sealed; a chunked upload
	 * not sealed keeps its last chunk for the PUT. */
	if (u->mode == UP_STREAM && sc_registry_upload_seal(u, err) < 0)
		return -1;
	/* Close with the digest; what is still held (small blobs, the last
	 * chunk) goes in this request. */
	cleanup_free char *url = with_digest(u->location, d);
	cleanup_free char *range =
	        u->mode == UP_CHUNKED && u->held.len
	                ? xasprintf("Content-Range: %llu-%llu", (unsigned long long)u->sent,
	                            (unsigned long long)(u->sent + u->held.len - 1))
	                : NULL;
	const char *headers[] = {"Content-Type: application/octet-stream", range, NULL};
	sc_http_request req = {.method = "PUT",
	                       .url = url,
	                       .headers = headers,
	                       .body = u->held.data ? u->held.data : "",
	                       .body_len = u->held.len,
	                       .max_response = ERROR_BODY_MAX};
	int rc = authed(u->r, u->scope, &req, &resp, err);
	if (rc == 0 && resp.status == 404) {
		/* A retried PUT whose first attempt went through but whose answer
		 * was lost finds its upload session gone: the blob is what counts. */
		bool there = false;
		if (sc_registry_blob_exists(u->r, u->repo, d, &there, NULL) == 0 && there) {
			sc_http_response_clear(&resp);
			return 0;
		}
	}
	if (rc == 0 && resp.status != 201) {
		cleanup_free char *action = xasprintf("finishing the upload of blob %s to", d->str);
		rc = response_error(u->r, &resp, action, u->repo, err);
	}
	sc_http_response_clear(&resp);
	return rc;
}

void sc_registry_upload_cancel(sc_registry_upload *u)
{
	if (u == NULL)
		return;
	/* the streamed body stops here: its connection is closed, not reused */
	sc_http_upload_free(u->http);
	u->http = NULL;
	if (u->location) {
		sc_http_request req = {
		        .method = "DELETE", .url = u->location, .max_response = ERROR_BODY_MAX};
		sc_http_response resp = {0};
		sconify_error_t e = NULL;
		authed(u->r, u->scope, &req, &resp, &e);
		sconify_error_free(&e);
		sc_http_response_clear(&resp);
	}
	sc_registry_upload_free(u);
}

void sc_registry_upload_free(sc_registry_upload *u)
{
	if (u == NULL)
		return;
	sc_http_upload_free(u->http);
	sc_buf_free(&u->held);
	free(u->repo);
	free(u->scope);
	free(u->location);
	free(u);
}
