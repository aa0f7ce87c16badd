/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The grammar is distribution/reference's (regexp.go):
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [domain "/"] path-component ("/" path-component)*
 *   domain     := (domain-name | "[" ipv6 "]") [":" port]
 *   domain-name:= domain-component ("." domain-component)*
 *   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *   path-component   := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
 *   tag        := [\w][\w.-]{0,127}
 *
 * and the normalisation is containers/image's ParseNormalizedNamed (what
 * skopeo does): the first component is a domain only if it contains '.' or
 * ':' or is "localhost". (Newer docker also takes an uppercase first
 * component for a domain; we follow skopeo and reject it as an uppercase
 * repository name.) Digests are checked with sc_digest_parse, so only sha256
 * and sha512 pass.
 */
#include "reference.h"

#include <string.h>

#include "core/error.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "digest/digest.h"

#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DOMAIN "index.docker.io"
#define OFFICIAL_PREFIX "library/"
#define NAME_MAX_TOTAL 255
#define TAG_MAX 128

void sc_docker_ref_free(sc_docker_ref *r)
{
	if (r == NULL)
		return;
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	free(r);
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
	return is_alnum(c) || c == '_';
}

bool sc_tag_valid(const char *tag)
{
	size_t n = strlen(tag);
	if (n == 0 || n > TAG_MAX || !is_word(tag[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_word(tag[i]) && tag[i] != '.' && tag[i] != '-')
			return false;
	return true;
}

/* [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static bool path_component_valid(const char *s, size_t n)
{
	size_t i = 0;
	for (;;) {
		size_t start = i;
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == start)
			return false;
		if (i == n)
			return true;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
	}
}

const char *sc_ref_path_bad_component(const char *path, size_t *ret_len)
{
	for (const char *c = path;;) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (!path_component_valid(c, n)) {
			*ret_len = n;
			return c;
		}
		if (end == NULL)
			return NULL;
		c = end + 1;
	}
}

static bool domain_component_valid(const char *s, size_t n)
{
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool sc_ref_domain_valid(const char *s)
{
	const char *port = NULL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close == s + 1)
			return false;
		for (const char *c = s + 1; c < close; c++)
			if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') ||
			      (*c >= 'A' && *c <= 'F') || *c == ':'))
				return false;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return false;
	} else {
		const char *colon = strchr(s, ':');
		size_t hlen = colon ? (size_t)(colon - s) : strlen(s);
		const char *c = s;
		for (;;) {
			const char *dot = memchr(c, '.', hlen - (size_t)(c - s));
			size_t n = dot ? (size_t)(dot - c) : hlen - (size_t)(c - s);
			if (!domain_component_valid(c, n))
				return false;
			if (dot == NULL)
				break;
			c = dot + 1;
		}
		if (colon)
			port = colon + 1;
	}
	if (port) {
		if (*port == '\0')
			return false;
		for (const char *c = port; *c; c++)
			if (*c < '0' || *c > '9')
				return false;
	}
	return true;
}

static bool is_hex64(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 64;
}

/* The first component names a registry (containers/image's splitDockerDomain). */
static bool looks_like_domain(const char *s, size_t n)
{
	return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && memcmp(s, "localhost", 9) == 0);
}

int sc_docker_ref_parse(const char *s, sc_docker_ref **ret, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(s, SC_QUOTE_MAX);
#define FAIL(...) sc_error(err, SCONIFY_ERR_INVALID, 0, "invalid reference `%s': " __VA_ARGS__)
	if (s[0] == '\0')
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "invalid reference `': empty reference");
	if (is_hex64(s))
		return FAIL("cannot specify 64-byte hexadecimal strings (an image ID)", q);

	cleanup_free char *name = NULL;
	cleanup_free char *tag = NULL;
	cleanup_free char *digest = NULL;
	const char *at = strchr(s, '@');
	if (at) {
		sc_digest d;
		if (sc_digest_parse(at + 1, &d, err) < 0)
			return sc_error_wrap(err, "invalid reference `%s'", q);
		digest = xstrdup(d.str);
		name = xstrndup(s, (size_t)(at - s));
	} else {
		name = xstrdup(s);
	}
	/* A ':' after the last '/' starts the tag; one before it is a port. */
	char *slash = strrchr(name, '/');
	char *colon = strrchr(slash ? slash : name, ':');
	if (colon) {
		*colon = '\0';
		if (!sc_tag_valid(colon + 1)) {
			cleanup_free char *qt = sc_quote(colon + 1, SC_QUOTE_MAX);
			return FAIL("invalid tag `%s' (up to 128 of [A-Za-z0-9_.-], not starting with `.' or "
			            "`-')",
			            q, qt);
		}
		tag = xstrdup(colon + 1);
	}
	if (name[0] == '\0')
		return FAIL("repository name must have at least one component", q);

	cleanup_free char *domain = NULL;
	cleanup_free char *path = NULL;
	slash = strchr(name, '/');
	if (slash && looks_like_domain(name, (size_t)(slash - name))) {
		domain = xstrndup(name, (size_t)(slash - name));
		path = xstrdup(slash + 1);
	} else {
		domain = xstrdup(DEFAULT_DOMAIN);
		path = xstrdup(name);
	}
	if (strcmp(domain, LEGACY_DOMAIN) == 0) {
		free(domain);
		domain = xstrdup(DEFAULT_DOMAIN);
	}
	if (strcmp(domain, DEFAULT_DOMAIN) == 0 && strchr(path, '/') == NULL) {
		char *p = xasprintf(OFFICIAL_PREFIX "%s", path);
		free(path);
		path = p;
	}

	for (const char *c = path; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			return FAIL("repository name must be lowercase", q);
	if (!sc_ref_domain_valid(domain)) {
		cleanup_free char *qd = sc_quote(domain, SC_QUOTE_MAX);
		return FAIL("invalid registry `%s'", q, qd);
	}
	size_t bad_len;
	const char *bad = sc_ref_path_bad_component(path, &bad_len);
	if (bad && bad_len == 0)
		return FAIL("empty path component", q);
	if (bad) {
		cleanup_free char *qc = sc_quote_n(bad, bad_len, SC_QUOTE_MAX);
		return FAIL("invalid path component `%s' (lowercase letters and digits, separated by "
		            "`.', `_', `__' or dashes)",
		            q, qc);
	}
	if (strlen(domain) + 1 + strlen(path) > NAME_MAX_TOTAL)
		return FAIL("repository name must not be more than %d characters", q, NAME_MAX_TOTAL);
#undef FAIL

	sc_docker_ref *r = xzalloc(sizeof(*r));
	r->domain = steal_pointer(&domain);
	r->path = steal_pointer(&path);
	r->digest = steal_pointer(&digest);
	r->tag = tag ? steal_pointer(&tag) : r->digest ? NULL : xstrdup("latest");
	*ret = r;
	return 0;
}

char *sc_docker_ref_name(const sc_docker_ref *r)
{
	return xasprintf("%s/%s", r->domain, r->path);
}

static char *with_suffix(const char *name, const sc_docker_ref *r)
{
	return xasprintf("%s%s%s%s%s", name, r->tag ? ":" : "", r->tag ? r->tag : "", r->digest ? "@" : "",
	                 r->digest ? r->digest : "");
}

char *sc_docker_ref_string(const sc_docker_ref *r)
{
	cleanup_free char *name = sc_docker_ref_name(r);
	return with_suffix(name, r);
}

char *sc_docker_ref_familiar(const sc_docker_ref *r)
{
	cleanup_free char *name = NULL;
	const char *path = r->path;
	if (strcmp(r->domain, DEFAULT_DOMAIN) == 0) {
		if (sc_startswith(path, OFFICIAL_PREFIX) &&
		    strchr(path + strlen(OFFICIAL_PREFIX), '/') == NULL)
			path += strlen(OFFICIAL_PREFIX);
		/* docker drops docker.io even when the first path component then
		 * reads as a domain ("docker.io/a.b/c" -> "a.b/c", which parses
		 * back as registry a.b); we keep it there so the familiar form
		 * always means the same image. */
		const char *slash = strchr(path, '/');
		if (slash && looks_like_domain(path, (size_t)(slash - path)))
			name = sc_docker_ref_name(r);
		else
			name = xstrdup(path);
	} else {
		name = sc_docker_ref_name(r);
	}
	return with_suffix(name, r);
}
