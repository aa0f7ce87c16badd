/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Authentication compares digests, never the strings themselves: SHA-256 of
 * what the request carries and of each configured secret, with
 * CRYPTO_memcmp, every secret every time. So neither the length of a token
 * nor which of several active secrets matched shows in the timing. GitHub's
 * HMAC is computed over the raw body before anything parses it.
 *
 * Parsing reads the fields it uses with their types and syntax checked
 * (digest, repository, tag, registry host) and ignores the rest, so a sender
 * that adds fields keeps working while a push we would act on is never
 * half-understood. The nesting depth is checked before jansson sees the
 * body: its parser recurses, and a hostile `[[[[...' should cost a scan,
 * not a deep stack.
 */
#include "events.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/hex.h"
#include "core/json-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "ref/reference.h"

/* GitHub's registry_package payloads nest about 7 deep; this leaves room. */
#define MAX_DEPTH 64
#define MAX_CONTAINERS 32768
#define MAX_VALUES 262144
#define NAME_MAX_TOTAL 255
#define DELIVERY_ID_MAX 128
#define SHA256_LEN 32
#define GITHUB_REGISTRY "ghcr.io"

static const char *const source_names[SC_SOURCE__N] = {
        [SC_SOURCE_DISTRIBUTION] = "distribution",
        [SC_SOURCE_HARBOR] = "harbor",
        [SC_SOURCE_GITHUB] = "github",
};

const char *sc_source_kind_name(sc_source_kind k)
{
	return (unsigned)k < SC_SOURCE__N ? source_names[k] : "unknown";
}

int sc_source_kind_from_name(const char *name)
{
	if (name == NULL)
		return -1;
	for (int k = 0; k < SC_SOURCE__N; k++)
		if (strcmp(name, source_names[k]) == 0)
			return k;
	return -1;
}

void sc_serve_event_free(sc_serve_event *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->n_pushes; i++) {
		sc_serve_event_push *p = &e->pushes[i];
		free(p->registry);
		free(p->repository);
		free(p->tag);
		free(p->digest);
		free(p->media_type);
		free(p->user_agent);
	}
	free(e->pushes);
	free(e->delivery_id);
	free(e);
}

/* ---- authentication ---- */

static void sha256(const void *p, size_t n, uint8_t out[SHA256_LEN])
{
	unsigned int len = 0;
	if (EVP_Digest(n ? p : "", n, out, &len, EVP_sha256(), NULL) != 1 || len != SHA256_LEN)
		abort(); /* only on allocation failure */
}

/* Whether cand equals any of the secrets. Empty secrets never match. */
static bool matches_any(const char *cand, size_t n, const sc_secret *secrets, size_t n_secrets)
{
	uint8_t got[SHA256_LEN], want[SHA256_LEN];
	sha256(cand, n, got);
	int ok = 0;
	for (size_t i = 0; i < n_secrets; i++) {
		if (secrets[i].data == NULL || secrets[i].len == 0)
			continue;
		sha256(secrets[i].data, secrets[i].len, want);
		ok |= CRYPTO_memcmp(got, want, SHA256_LEN) == 0;
	}
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	return ok != 0;
}

static bool hmac_matches(const sc_secret *secrets, size_t n_secrets, const uint8_t *body, size_t len,
                         const uint8_t sig[SHA256_LEN])
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	int ok = 0;
	for (size_t i = 0; i < n_secrets; i++) {
		size_t mac_len = 0;
		if (secrets[i].data == NULL || secrets[i].len == 0)
			continue;
		if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secrets[i].data, secrets[i].len,
		              len ? body : (const uint8_t *)"", len, mac, sizeof(mac), &mac_len) == NULL)
			abort(); /* only on allocation failure */
		ok |= mac_len == SHA256_LEN && CRYPTO_memcmp(mac, sig, SHA256_LEN) == 0;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	return ok != 0;
}

/* What was wrong, one phrase per credential kind tried, for the message. */
typedef struct {
	char text[512];
} reasons;

__attribute__((format(printf, 2, 3))) static void reason(reasons *r, const char *fmt, ...)
{
	char phrase[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(phrase, sizeof(phrase), fmt, ap);
	va_end(ap);
	if (strstr(r->text, phrase))
		return; /* bearer and a static `Authorization' header both saw it missing */
	size_t used = strlen(r->text);
	snprintf(r->text + used, sizeof(r->text) - used, "%s%s", used ? "; " : "", phrase);
}

/* The header's value, or NULL with a reason when it is absent or repeated. */
static const char *one_header(const sc_serve_request *req, const char *name, reasons *why)
{
	if (req->header_repeated && req->header_repeated(req->arg, name)) {
		reason(why, "%s header sent more than once", name);
		return NULL;
	}
	const char *v = req->get_header(req->arg, name);
	if (v == NULL)
		reason(why, "no %s header", name);
	return v;
}

static bool check_bearer(const sc_serve_auth *auth, const sc_serve_request *req, reasons *why)
{
	const char *v = one_header(req, "Authorization", why);
	if (v == NULL)
		return false;
	/* RFC 6750: the scheme is case-insensitive, then one or more spaces. */
	if (strncasecmp(v, "Bearer ", 7) != 0) {
		reason(why, "%s header is not a bearer token", "Authorization");
		return false;
	}
	const char *token = v + 7;
	while (*token == ' ')
		token++;
	if (*token == '\0') {
		reason(why, "%s header has an empty bearer token", "Authorization");
		return false;
	}
	if (matches_any(token, strlen(token), auth->bearer, auth->n_bearer))
		return true;
	reason(why, "bearer token does not match");
	return false;
}

static bool check_static_header(const sc_serve_auth *auth, const sc_serve_request *req, reasons *why)
{
	const char *v = one_header(req, auth->header_name, why);
	if (v == NULL)
		return false;
	if (matches_any(v, strlen(v), auth->header_value, auth->n_header_value))
		return true;
	reason(why, "%s header does not match", auth->header_name);
	return false;
}

#define SIGNATURE_HEADER "X-Hub-Signature-256"

static bool check_hmac(const sc_serve_auth *auth, const sc_serve_request *req, reasons *why)
{
	const char *v = one_header(req, SIGNATURE_HEADER, why);
	if (v == NULL)
		return false;
	uint8_t sig[SHA256_LEN];
	if (strncmp(v, "sha256=", 7) != 0 || strlen(v + 7) != 2 * SHA256_LEN ||
	    !sc_hex_decode(v + 7, 2 * SHA256_LEN, sig, false)) {
		reason(why, "%s is not `sha256=<64 hex digits>'", SIGNATURE_HEADER);
		return false;
	}
	if (hmac_matches(auth->hmac, auth->n_hmac, req->body, req->body_len, sig))
		return true;
	reason(why, "%s does not match the body", SIGNATURE_HEADER);
	return false;
}

int sc_serve_authenticate(sc_source_kind source, const sc_serve_auth *auth, const sc_serve_request *req,
                          sconify_error_t *err)
{
	bool has_header = auth && auth->header_name && auth->header_name[0] && auth->n_header_value > 0;
	if (auth == NULL || !auth->configured || (auth->n_bearer == 0 && !has_header && auth->n_hmac == 0))
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "no authentication is configured for %s deliveries",
		                sc_source_kind_name(source));
	reasons why = {{0}};
	if (auth->n_bearer > 0 && check_bearer(auth, req, &why))
		return 0;
	if (has_header && check_static_header(auth, req, &why))
		return 0;
	if (auth->n_hmac > 0 && check_hmac(auth, req, &why))
		return 0;
	return sc_error(err, SCONIFY_ERR_AUTH, 0, "%s delivery not authenticated: %s",
	                sc_source_kind_name(source), why.text);
}

/* ---- syntax of what a push names ---- */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

static bool digest_ok(const char *s)
{
	return sc_startswith(s, "sha256:") && strlen(s) == 7 + 64 && sc_hex_decode(s + 7, 64, NULL, true);
}

/* distribution's repository name: path components joined by `/'. */
static bool repository_ok(const char *s)
{
	size_t len = strlen(s), bad_len;
	return len > 0 && len <= NAME_MAX_TOTAL && sc_ref_path_bad_component(s, &bad_len) == NULL;
}

/* distribution's domain: (domain-name | "[" ipv6 "]") [":" port], where the
 * port is one a registry can listen on (the grammar takes any digits). */
static bool host_ok(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > NAME_MAX_TOTAL || !sc_ref_domain_valid(s))
		return false;
	const char *colon = strchr(s[0] == '[' ? strchr(s, ']') : s, ':');
	unsigned long long port;
	return colon == NULL ||
	       (strlen(colon + 1) <= 5 && sc_parse_u64(colon + 1, &port) && port >= 1 && port <= 65535);
}

static int bad_value(sconify_error_t *err, const char *what, const char *key, const char *value,
                     const char *expect)
{
	cleanup_free char *q = sc_quote(value, SC_QUOTE_MAX);
	return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `%s' value `%s' is not %s", what, key, q, expect);
}

static int check_digest(const char *what, const char *key, const char *v, sconify_error_t *err)
{
	return digest_ok(v) ? 0
	                    : bad_value(err, what, key, v, "a sha256 digest (sha256: and 64 lowercase hex)");
}

static int check_repository(const char *what, const char *key, const char *v, sconify_error_t *err)
{
	return repository_ok(v) ? 0 : bad_value(err, what, key, v, "a repository name");
}

static int check_tag(const char *what, const char *key, const char *v, sconify_error_t *err)
{
	return sc_tag_valid(v) ? 0 : bad_value(err, what, key, v, "a tag");
}

static int check_host(const char *what, const char *key, const char *v, sconify_error_t *err)
{
	return host_ok(v) ? 0 : bad_value(err, what, key, v, "a registry host[:port]");
}

/* The authority of "scheme://host[:port]/..." (the scheme optional unless
 * need_scheme), malloc'd; NULL when there is none. *ret_rest (optional)
 * points after it. */
static char *url_host(const char *url, bool need_scheme, const char **ret_rest)
{
	const char *p = url;
	if (sc_startswith(p, "https://"))
		p += 8;
	else if (sc_startswith(p, "http://"))
		p += 7;
	else if (need_scheme)
		return NULL;
	size_t n = strcspn(p, "/?#");
	if (ret_rest)
		*ret_rest = p + n;
	return n ? xstrndup(p, n) : NULL;
}

/* ---- building the event ---- */

typedef struct {
	sc_serve_event *e;
	size_t alloc;
} builder;

static int add_push(builder *b, const char *registry, const char *repository, const char *tag,
                    const char *digest, const char *media_type, const char *user_agent, sconify_error_t *err)
{
	sc_serve_event *e = b->e;
	if (e->n_pushes >= SC_SERVE_MAX_PUSHES)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "the delivery reports more than %d pushes",
		                SC_SERVE_MAX_PUSHES);
	if (e->n_pushes == b->alloc) {
		b->alloc = b->alloc ? 2 * b->alloc : 4;
		e->pushes = xreallocarray(e->pushes, b->alloc, sizeof(*e->pushes));
	}
	e->pushes[e->n_pushes++] = (sc_serve_event_push){
	        .registry = xstrdup(registry),
	        .repository = xstrdup(repository),
	        .tag = xstrdup(tag),
	        .digest = xstrdup(digest),
	        .media_type = media_type ? xstrdup(media_type) : NULL,
	        .user_agent = user_agent ? xstrdup(user_agent) : NULL,
	};
	return 0;
}

/* An event in the delivery that is not a push we act on. */
static int skip(builder *b)
{
	b->e->n_skipped++;
	return 0;
}

/* Checks the shape of the body before jansson builds it: its parser recurses
 * once per nesting level, and a 1 MiB body of `{},{},...' becomes ~80 MB of
 * objects. The bounds leave room for SC_SERVE_MAX_PUSHES pushes among many
 * skipped events. */
static int shape_ok(const uint8_t *p, size_t n, sconify_error_t *err)
{
	size_t depth = 0, containers = 0, values = 1;
	bool in_string = false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > MAX_DEPTH)
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "the delivery nests deeper than %d levels", MAX_DEPTH);
			if (++containers > MAX_CONTAINERS)
				return sc_error(err, SCONIFY_ERR_LIMIT, 0,
				                "the delivery has more than %d JSON objects and arrays",
				                MAX_CONTAINERS);
		} else if (c == ']' || c == '}') {
			if (depth > 0)
				depth--;
		} else if (c == ',' || c == ':') {
			if (++values > MAX_VALUES)
				return sc_error(err, SCONIFY_ERR_LIMIT, 0,
				                "the delivery has more than %d JSON values", MAX_VALUES);
		}
	}
	return 0;
}

static int parse_body(const sc_serve_request *req, json_t **ret, sconify_error_t *err)
{
	if (req->body_len == 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "the delivery has an empty body");
	if (shape_ok(req->body, req->body_len, err) < 0)
		return -1;
	cleanup_json json_t *root = NULL;
	if (sc_json_parse((const char *)req->body, req->body_len, "the delivery", &root, err) < 0)
		return -1;
	if (!json_is_object(root))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "the delivery is not a JSON object");
	*ret = steal_pointer(&root);
	return 0;
}

/* The media type of a Content-Type value, without parameters. */
static bool content_type_is(const char *v, const char *want)
{
	while (*v == ' ' || *v == '\t')
		v++;
	size_t n = strcspn(v, "; \t");
	return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

/* ---- CNCF distribution ---- */

static bool is_manifest_type(const char *mt)
{
	static const char *const types[] = {
	        "application/vnd.docker.distribution.manifest.v2+json",
	        "application/vnd.docker.distribution.manifest.list.v2+json",
	        "application/vnd.oci.image.manifest.v1+json",
	        "application/vnd.oci.image.index.v1+json",
	};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(mt, types[i]) == 0)
			return true;
	return false;
}

static int distribution_event(builder *b, json_t *ev, const char *what, sconify_error_t *err)
{
	const char *action = NULL, *media_type = NULL, *tag = NULL, *digest = NULL, *repository = NULL;
	const char *host = NULL, *user_agent = NULL, *url = NULL;
	json_t *target = NULL, *request = NULL;
	if (!json_is_object(ev))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is not an object", what);
	if (sc_json_get_string(ev, "action", false, what, &action, err) < 0)
		return -1;
	if (strcmp(action, "push") != 0)
		return skip(b);
	if (sc_json_get_object(ev, "target", false, what, &target, err) < 0)
		return -1;
	cleanup_free char *twhat = xasprintf("%s.target", what);
	if (sc_json_get_string(target, "mediaType", true, twhat, &media_type, err) < 0)
		return -1;
	/* Blob pushes, and manifests we cannot convert (schema 1). */
	if (media_type == NULL || !is_manifest_type(media_type))
		return skip(b);
	if (sc_json_get_string(target, "tag", true, twhat, &tag, err) < 0)
		return -1;
	if (tag == NULL || tag[0] == '\0')
		return skip(b); /* put by digest: an index's children, a referrer */
	if (check_tag(twhat, "tag", tag, err) < 0 ||
	    sc_json_get_string(target, "digest", false, twhat, &digest, err) < 0 ||
	    check_digest(twhat, "digest", digest, err) < 0 ||
	    sc_json_get_string(target, "repository", false, twhat, &repository, err) < 0 ||
	    check_repository(twhat, "repository", repository, err) < 0)
		return -1;
	cleanup_free char *rwhat = xasprintf("%s.request", what);
	if (sc_json_get_object(ev, "request", true, what, &request, err) < 0)
		return -1;
	if (request && (sc_json_get_string(request, "host", true, rwhat, &host, err) < 0 ||
	                sc_json_get_string(request, "useragent", true, rwhat, &user_agent, err) < 0))
		return -1;
	cleanup_free char *url_host_ = NULL;
	if (host && host[0]) {
		if (check_host(rwhat, "host", host, err) < 0)
			return -1;
	} else {
		if (sc_json_get_string(target, "url", true, twhat, &url, err) < 0)
			return -1;
		if (url == NULL)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s names no registry (neither request.host nor target.url)", what);
		url_host_ = url_host(url, true, NULL);
		if (url_host_ == NULL)
			return bad_value(err, twhat, "url", url, "an http(s) URL");
		if (check_host(twhat, "url", url_host_, err) < 0)
			return -1;
		host = url_host_;
	}
	return add_push(b, host, repository, tag, digest, media_type, user_agent, err);
}

static int parse_distribution(builder *b, const sc_serve_request *req, sconify_error_t *err)
{
	const char *ct = req->get_header(req->arg, "Content-Type");
	if (ct == NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "the delivery has no Content-Type");
	if (!content_type_is(ct, "application/vnd.docker.distribution.events.v1+json") &&
	    !content_type_is(ct, "application/vnd.docker.distribution.events.v2+json") &&
	    !content_type_is(ct, "application/json")) {
		cleanup_free char *q = sc_quote(ct, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "Content-Type `%s' is not a distribution notification (events.v1+json, "
		                "events.v2+json or application/json)",
		                q);
	}
	cleanup_json json_t *root = NULL;
	json_t *events = NULL;
	if (parse_body(req, &root, err) < 0 ||
	    sc_json_get_array(root, "events", false, "the notification envelope", &events, err) < 0)
		return -1;
	for (size_t i = 0; i < json_array_size(events); i++) {
		char what[32];
		snprintf(what, sizeof(what), "events[%zu]", i);
		if (distribution_event(b, json_array_get(events, i), what, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- Harbor ---- */

static int harbor_resource(builder *b, json_t *res, const char *what, const char *repository,
                           sconify_error_t *err)
{
	const char *digest = NULL, *tag = NULL, *resource_url = NULL;
	if (!json_is_object(res))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is not an object", what);
	if (sc_json_get_string(res, "tag", true, what, &tag, err) < 0)
		return -1;
	/* An untagged push names the digest as its tag; a tag has no `:'. */
	if (tag == NULL || tag[0] == '\0' || strchr(tag, ':'))
		return skip(b);
	if (check_tag(what, "tag", tag, err) < 0 ||
	    sc_json_get_string(res, "digest", false, what, &digest, err) < 0 ||
	    check_digest(what, "digest", digest, err) < 0 ||
	    sc_json_get_string(res, "resource_url", false, what, &resource_url, err) < 0)
		return -1;
	cleanup_free char *host = url_host(resource_url, false, NULL);
	if (host == NULL)
		return bad_value(err, what, "resource_url", resource_url, "a registry/repository reference");
	if (check_host(what, "resource_url", host, err) < 0)
		return -1;
	return add_push(b, host, repository, tag, digest, NULL, NULL, err);
}

static int parse_harbor(builder *b, const sc_serve_request *req, sconify_error_t *err)
{
	cleanup_json json_t *root = NULL;
	const char *specversion = NULL, *type = NULL, *repository = NULL;
	json_t *data = NULL, *repo = NULL, *resources = NULL;
	if (parse_body(req, &root, err) < 0 ||
	    sc_json_get_string(root, "specversion", true, "the Harbor event", &specversion, err) < 0 ||
	    sc_json_get_string(root, "type", false, "the Harbor event", &type, err) < 0)
		return -1;
	/* CloudEvents (`specversion' present) carries the Default format's
	 * event_data as `data'. */
	const char *data_key = specversion ? "data" : "event_data";
	if (strcmp(type, specversion ? "harbor.artifact.pushed" : "PUSH_ARTIFACT") != 0)
		return skip(b);
	if (sc_json_get_object(root, data_key, false, "the Harbor event", &data, err) < 0 ||
	    sc_json_get_object(data, "repository", false, data_key, &repo, err) < 0 ||
	    sc_json_get_string(repo, "repo_full_name", false, "the Harbor repository", &repository, err) <
	            0 ||
	    check_repository("the Harbor repository", "repo_full_name", repository, err) < 0 ||
	    sc_json_get_array(data, "resources", false, data_key, &resources, err) < 0)
		return -1;
	for (size_t i = 0; i < json_array_size(resources); i++) {
		char what[48];
		snprintf(what, sizeof(what), "%s.resources[%zu]", data_key, i);
		if (harbor_resource(b, json_array_get(resources, i), what, repository, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- GitHub ---- */

static bool delivery_id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > DELIVERY_ID_MAX)
		return false;
	for (const char *c = s; *c; c++)
		if (!is_alnum(*c) && *c != '-')
			return false;
	return true;
}

static char *lowercase(const char *s)
{
	char *r = xstrdup(s);
	for (char *c = r; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return r;
}

/* registry and repository of "[https://]host/path[:tag][@digest]" */
static int split_package_url(const char *url, char **ret_host, char **ret_repository, sconify_error_t *err)
{
	const char *what = "package_version";
	const char *path = NULL;
	cleanup_free char *host = url_host(url, false, &path);
	if (host == NULL)
		return bad_value(err, what, "package_url", url, "a registry/repository reference");
	if (check_host(what, "package_url", host, err) < 0)
		return -1;
	if (*path != '/')
		return bad_value(err, what, "package_url", url, "a registry/repository reference");
	path++;
	size_t n = strcspn(path, "@");
	cleanup_free char *repository = xstrndup(path, n);
	char *slash = strrchr(repository, '/');
	char *colon = strchr(slash ? slash : repository, ':');
	if (colon)
		*colon = '\0';
	if (check_repository(what, "package_url", repository, err) < 0)
		return -1;
	*ret_host = steal_pointer(&host);
	*ret_repository = steal_pointer(&repository);
	return 0;
}

static int parse_github(builder *b, const sc_serve_request *req, sconify_error_t *err)
{
	const char *event = req->get_header(req->arg, "X-GitHub-Event");
	const char *delivery = req->get_header(req->arg, "X-GitHub-Delivery");
	if (event == NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "the delivery has no X-GitHub-Event header");
	if (delivery == NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "the delivery has no X-GitHub-Delivery header");
	if (!delivery_id_ok(delivery)) {
		cleanup_free char *q = sc_quote(delivery, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "X-GitHub-Delivery `%s' is not a delivery id (up to %d letters, digits, `-')",
		                q, DELIVERY_ID_MAX);
	}
	b->e->delivery_id = xstrdup(delivery);

	cleanup_json json_t *root = NULL;
	if (parse_body(req, &root, err) < 0)
		return -1;
	/* ping, and events the hook was also subscribed to. */
	if (strcmp(event, "registry_package") != 0 && strcmp(event, "package") != 0)
		return skip(b);

	const char *action = NULL, *package_type = NULL, *tag = NULL, *digest = NULL, *url = NULL;
	json_t *pkg = NULL, *version = NULL, *meta = NULL, *tag_obj = NULL;
	if (sc_json_get_string(root, "action", false, "the GitHub event", &action, err) < 0)
		return -1;
	if (strcmp(action, "published") != 0 && strcmp(action, "updated") != 0)
		return skip(b);
	if (sc_json_get_object(root, event, false, "the GitHub event", &pkg, err) < 0 ||
	    sc_json_get_string(pkg, "package_type", true, event, &package_type, err) < 0)
		return -1;
	if (package_type == NULL && sc_json_get_string(pkg, "ecosystem", true, event, &package_type, err) < 0)
		return -1;
	if (package_type == NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s has neither `package_type' nor `ecosystem'",
		                event);
	if (strcasecmp(package_type, "container") != 0)
		return skip(b); /* npm, maven, ... */
	if (sc_json_get_object(pkg, "package_version", false, event, &version, err) < 0 ||
	    sc_json_get_object(version, "container_metadata", true, "package_version", &meta, err) < 0 ||
	    (meta && sc_json_get_object(meta, "tag", true, "container_metadata", &tag_obj, err) < 0) ||
	    (tag_obj &&
	     (sc_json_get_string(tag_obj, "name", true, "container_metadata.tag", &tag, err) < 0 ||
	      sc_json_get_string(tag_obj, "digest", true, "container_metadata.tag", &digest, err) < 0)))
		return -1;
	if (tag == NULL || tag[0] == '\0')
		return skip(b); /* an untagged version */
	if (check_tag("container_metadata.tag", "name", tag, err) < 0)
		return -1;
	if (digest && digest[0]) {
		if (check_digest("container_metadata.tag", "digest", digest, err) < 0)
			return -1;
	} else {
		/* A container version's name is its digest. */
		const char *name = NULL;
		if (sc_json_get_string(version, "name", true, "package_version", &name, err) < 0)
			return -1;
		if (name == NULL || !sc_startswith(name, "sha256:"))
			return sc_error(
			        err, SCONIFY_ERR_INVALID, 0,
			        "the GitHub event names no digest (neither container_metadata.tag.digest nor "
			        "package_version.name)");
		if (check_digest("package_version", "name", name, err) < 0)
			return -1;
		digest = name;
	}

	cleanup_free char *registry = NULL;
	cleanup_free char *repository = NULL;
	if (sc_json_get_string(version, "package_url", true, "package_version", &url, err) < 0)
		return -1;
	if (url && url[0]) {
		if (split_package_url(url, &registry, &repository, err) < 0)
			return -1;
	} else {
		/* ghcr.io lowercases the owner and name it stores. */
		const char *name = NULL, *owner = NULL;
		json_t *owner_obj = NULL;
		if (sc_json_get_string(pkg, "name", false, event, &name, err) < 0 ||
		    sc_json_get_string(pkg, "namespace", true, event, &owner, err) < 0)
			return -1;
		if (owner == NULL &&
		    (sc_json_get_object(pkg, "owner", false, event, &owner_obj, err) < 0 ||
		     sc_json_get_string(owner_obj, "login", false, "the package owner", &owner, err) < 0))
			return -1;
		cleanup_free char *lower_owner = lowercase(owner);
		cleanup_free char *lower_name = lowercase(name);
		repository = xasprintf("%s/%s", lower_owner, lower_name);
		if (check_repository(event, "namespace/name", repository, err) < 0)
			return -1;
		registry = xstrdup(GITHUB_REGISTRY);
	}
	return add_push(b, registry, repository, tag, digest, NULL, NULL, err);
}

int sc_serve_event_parse(sc_source_kind source, const sc_serve_request *req, sc_serve_event **ret,
                         sconify_error_t *err)
{
	cleanup_serve_event sc_serve_event *e = xzalloc(sizeof(*e));
	e->source = source;
	builder b = {.e = e};
	int r;
	switch (source) {
	case SC_SOURCE_DISTRIBUTION:
		r = parse_distribution(&b, req, err);
		break;
	case SC_SOURCE_HARBOR:
		r = parse_harbor(&b, req, err);
		break;
	case SC_SOURCE_GITHUB:
		r = parse_github(&b, req, err);
		break;
	default:
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "unknown event source %d", (int)source);
	}
	if (r < 0)
		return -1;
	*ret = steal_pointer(&e);
	return 0;
}
