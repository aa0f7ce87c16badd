/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration of `sconify serve'. Read the way session policies are,
 * by lib/policy/yamltree.c: a small tree of libyaml's events, refusing what
 * a configuration has no use for and an attacker or a typo does (anchors and
 * aliases, tags, several documents, duplicate keys), with caps on size,
 * depth and node count; then the tree is checked against the schema,
 * collecting every problem with its line and key path so that `sconify
 * serve --check' can list them all.
 *
 * Secrets (tokens, HMAC secrets, header values) pass through the tree's
 * scalars, which are wiped when the tree is freed, and end in sc_secret
 * buffers. No message ever holds one: problems with a secret say what is
 * wrong, never what it is.
 */
#include "serve/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "measure/measure.h"
#include "policy/policy.h"
#include "policy/yamltree.h"
#include "ref/reference.h"

#define MAX_BYTES (1024 * 1024)
#define MAX_DEPTH 16
#define MAX_NODES 50000
#define MAX_KEYS 256
#define MAX_ERRORS 100
#define MAX_RULES 1024
#define MAX_LIST 256          /* dir, authenticated, env entries */
#define MAX_STRING 4096       /* any scalar */
#define MAX_PATTERN 255       /* registry, repository, tag patterns */
#define MAX_TEMPLATE 1024     /* destination, session */
#define MAX_EXPANDED 4096     /* what a template may grow to */
#define MAX_SECRETS 16        /* active credentials of one kind (rotation) */
#define SECRET_FILE_CAP 65536 /* a secret file */
#define MAX_RULE_NAME 64

typedef struct {
	sc_yaml_ctx y;
	const char *base_dir; /* relative file names start here */
} cctx;

#define fail(c, ...) sc_yaml_fail(&(c)->y, __VA_ARGS__)
#define bad(c, line, path, ...) sc_yaml_fail(&(c)->y, line, SCONIFY_ERR_INVALID, path, __VA_ARGS__)

static const sc_yaml_limits limits = {
        .max_bytes = MAX_BYTES,
        .max_depth = MAX_DEPTH,
        .max_nodes = MAX_NODES,
        .max_keys = MAX_KEYS,
        .empty = "empty document: the configuration is a mapping",
};

/* ---- schema helpers ---- */

/* Printable ASCII or UTF-8 continuation: no control bytes. */
static bool no_controls(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			return false;
	}
	return true;
}

/* A scalar as a string of 1 to max bytes without control characters. NULL
 * on error. Not for secrets: the value may be quoted. */
static char *get_str(cctx *c, const sc_yaml_node *n, const char *path, size_t max)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_SCALAR, path))
		return NULL;
	if (n->len > max) {
		fail(c, n->line, SCONIFY_ERR_LIMIT, path, "longer than %zu bytes", max);
		return NULL;
	}
	if (n->len == 0) {
		bad(c, n->line, path, "empty");
		return NULL;
	}
	if (!no_controls(n->str, n->len)) {
		bad(c, n->line, path, "contains a control character");
		return NULL;
	}
	return xmemdup(n->str, n->len + 1);
}

static bool get_bool(cctx *c, const sc_yaml_node *n, const char *path, bool *ret)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_SCALAR, path))
		return false;
	if (strcmp(n->str, "true") == 0) {
		*ret = true;
		return true;
	}
	if (strcmp(n->str, "false") == 0) {
		*ret = false;
		return true;
	}
	cleanup_free char *q = sc_quote_n(n->str, n->len, 64);
	bad(c, n->line, path, "`%s' is not true or false", q);
	return false;
}

static bool get_uint(cctx *c, const sc_yaml_node *n, const char *path, unsigned long long min,
                     unsigned long long max, unsigned long long *ret)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_SCALAR, path))
		return false;
	unsigned long long v;
	if (n->len > 20 || memchr(n->str, '\0', n->len) || !sc_parse_u64(n->str, &v)) {
		cleanup_free char *q = sc_quote_n(n->str, n->len, 64);
		bad(c, n->line, path, "`%s' is not a whole number", q);
		return false;
	}
	if (v < min || v > max) {
		bad(c, n->line, path, "%llu is out of range (%llu to %llu)", v, min, max);
		return false;
	}
	*ret = v;
	return true;
}

/* Seconds, with up to three decimals ("0.25"), as milliseconds. */
static bool get_seconds(cctx *c, const sc_yaml_node *n, const char *path, unsigned min_ms, unsigned max_ms,
                        unsigned *ret_ms)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_SCALAR, path))
		return false;
	const char *s = n->str;
	unsigned long long whole = 0, frac = 0;
	size_t i = 0, nd = 0, nf = 0;
	for (; i < n->len && s[i] >= '0' && s[i] <= '9' && nd < 10; i++, nd++)
		whole = whole * 10 + (unsigned)(s[i] - '0');
	if (nd > 0 && i < n->len && s[i] == '.') {
		for (i++; i < n->len && s[i] >= '0' && s[i] <= '9' && nf < 3; i++, nf++)
			frac = frac * 10 + (unsigned)(s[i] - '0');
		if (nf == 0)
			nd = 0;
	}
	if (nd == 0 || i != n->len) {
		cleanup_free char *q = sc_quote_n(s, n->len, 64);
		bad(c, n->line, path, "`%s' is not a number of seconds (at most 3 decimals)", q);
		return false;
	}
	while (nf++ < 3)
		frac *= 10;
	unsigned long long ms = whole * 1000 + frac;
	if (ms < min_ms || ms > max_ms) {
		bad(c, n->line, path, "out of range (%u.%03u to %u seconds)", min_ms / 1000, min_ms % 1000,
		    max_ms / 1000);
		return false;
	}
	*ret_ms = (unsigned)ms;
	return true;
}

static bool is_null(const sc_yaml_node *n)
{
	return n->type == SC_YAML_SCALAR && n->plain &&
	       (n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0);
}

/* ---- files ---- */

static char *resolve(const cctx *c, const char *p)
{
	if (p[0] == '/')
		return xstrdup(p);
	return sc_path_join(c->base_dir, p);
}

typedef enum { F_REGULAR, F_SECRET, F_DIRECTORY } file_kind;

/* Checks that the file the config names at n exists as what it should be.
 * Returns its resolved name, or NULL after recording the problem. */
static char *get_file(cctx *c, const sc_yaml_node *n, const char *path, file_kind kind)
{
	cleanup_free char *s = get_str(c, n, path, PATH_MAX);
	if (s == NULL)
		return NULL;
	char *full = resolve(c, s);
	cleanup_free char *q = sc_quote(full, SC_QUOTE_MAX);
	struct stat st;
	/* stat, not open: opening a FIFO would block, and a secret file is
	 * checked before its content is read. */
	if (stat(full, &st) < 0) {
		int e = errno;
		if (e == ENOENT)
			fail(c, n->line, SCONIFY_ERR_NOT_FOUND, path, "`%s' does not exist", q);
		else
			bad(c, n->line, path, "`%s': %s", q, strerror(e));
		free(full);
		return NULL;
	}
	const char *problem = NULL;
	if (kind == F_DIRECTORY && !S_ISDIR(st.st_mode))
		problem = "is not a directory";
	else if (kind != F_DIRECTORY && !S_ISREG(st.st_mode))
		problem = "is not a regular file";
	else if (kind == F_SECRET && (st.st_mode & (S_IRGRP | S_IROTH)))
		problem = "is readable by others; chmod 600";
	else if (access(full, kind == F_DIRECTORY ? R_OK | X_OK : R_OK) < 0)
		problem = "is not readable by this user";
	if (problem) {
		bad(c, n->line, path, "`%s' %s", q, problem);
		free(full);
		return NULL;
	}
	return full;
}

/* ---- secrets ---- */

typedef enum {
	S_TOKEN,  /* a bearer token: visible ASCII, no space */
	S_HEADER, /* a header value: no control characters */
	S_HMAC,   /* an HMAC key: any bytes but NUL, CR and LF */
} secret_kind;

/* Why s is not a good secret of the kind, or NULL. Never quotes it. */
static const char *secret_problem(secret_kind kind, const char *s, size_t n)
{
	if (n == 0)
		return "is empty";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == 0 || ch == '\r' || ch == '\n')
			return "contains a NUL or line break";
		if (kind == S_HMAC)
			continue;
		if (ch < 0x20 || ch == 0x7f)
			return "contains a control character";
		if (kind == S_TOKEN && (ch == ' ' || ch >= 0x80))
			return "contains a space or a non-ASCII byte (a bearer token is visible ASCII)";
	}
	if (kind == S_HEADER && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		return "starts or ends with white space (HTTP would strip it)";
	return NULL;
}

static bool add_secret(cctx *c, size_t line, const char *path, sc_secret **v, size_t *nv, const char *s,
                       size_t n)
{
	if (*nv >= MAX_SECRETS) {
		fail(c, line, SCONIFY_ERR_LIMIT, path, "more than %u secrets", MAX_SECRETS);
		return false;
	}
	*v = xreallocarray(*v, *nv + 1, sizeof(**v));
	(*v)[*nv] = (sc_secret){0};
	if (!sc_secret_append(&(*v)[*nv], s, n, MAX_STRING)) {
		sc_secret_free(&(*v)[*nv]);
		fail(c, line, SCONIFY_ERR_LIMIT, path, "a secret longer than %u bytes", MAX_STRING);
		return false;
	}
	(*nv)++;
	return true;
}

/* An inline secret, or a list of them. */
static void get_inline_secrets(cctx *c, const sc_yaml_node *n, const char *path, secret_kind kind,
                               sc_secret **v, size_t *nv)
{
	if (n->type == SC_YAML_SEQ) {
		if (n->n == 0)
			bad(c, n->line, path, "empty list");
		for (size_t i = 0; i < n->n; i++) {
			cleanup_free char *ip = sc_yaml_path_index(path, i);
			get_inline_secrets(c, n->kids[i], ip, kind, v, nv);
		}
		return;
	}
	if (!sc_yaml_want(&c->y, n, SC_YAML_SCALAR, path))
		return;
	const char *problem = secret_problem(kind, n->str, n->len);
	if (problem) {
		bad(c, n->line, path, "the secret %s", problem);
		return;
	}
	add_secret(c, n->line, path, v, nv, n->str, n->len);
}

/* A secret file: one secret a line (several while one is rotated out),
 * white space around each trimmed, empty lines skipped. */
static void get_secret_file(cctx *c, const sc_yaml_node *n, const char *path, secret_kind kind, sc_secret **v,
                            size_t *nv)
{
	cleanup_free char *file = get_file(c, n, path, F_SECRET);
	if (file == NULL)
		return;
	cleanup_free char *q = sc_quote(file, SC_QUOTE_MAX);
	cleanup_free char *what = xasprintf("secret file `%s'", q);
	_cleanup_(sc_secret_free) sc_secret data = {0};
	sconify_error_t e = NULL;
	if (sc_read_secret_file(file, SECRET_FILE_CAP, what, &data, NULL, &e) < 0) {
		fail(c, n->line, sconify_error_kind(e), path, "%s", sconify_error_message(e));
		sconify_error_free(&e);
		return;
	}
	size_t found = 0, fline = 0;
	const char *p = data.data ? data.data : "", *end = p + data.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		const char *a = p, *b = stop;
		fline++;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
			b--;
		p = nl ? nl + 1 : end;
		if (a == b)
			continue;
		const char *problem = secret_problem(kind, a, (size_t)(b - a));
		if (problem) {
			bad(c, n->line, path, "%s line %zu: the secret %s", what, fline, problem);
			return;
		}
		if (!add_secret(c, n->line, path, v, nv, a, (size_t)(b - a)))
			return;
		found++;
	}
	if (found == 0)
		bad(c, n->line, path, "%s is empty", what);
}

static void auth_free(sc_serve_auth *a)
{
	for (size_t i = 0; i < a->n_bearer; i++)
		sc_secret_free(&a->bearer[i]);
	free(a->bearer);
	for (size_t i = 0; i < a->n_header_value; i++)
		sc_secret_free(&a->header_value[i]);
	free(a->header_value);
	for (size_t i = 0; i < a->n_hmac; i++)
		sc_secret_free(&a->hmac[i]);
	free(a->hmac);
	free(a->header_name);
	*a = (sc_serve_auth){0};
}

/* RFC 9110 token characters. */
static bool valid_header_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 128)
		return false;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", ch)))
			return false;
	}
	return true;
}

/* Headers the server itself interprets: a shared secret there would be
 * confused with the request's framing. */
static bool reserved_header(const char *s)
{
	static const char *const names[] = {"content-length", "content-type", "transfer-encoding",  "host",
	                                    "connection",     "expect",       "x-hub-signature-256"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i]) == 0)
			return true;
	return false;
}

/* who: a source kind, or -1 for the operator. */
static void parse_auth_one(cctx *c, int who, const sc_yaml_node *n, const char *path, sc_serve_auth *a)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_MAP, path))
		return;
	sc_yaml_field fs[] = {{.key = "bearer"},
	                      {.key = "bearer_file"},
	                      {.key = "header"},
	                      {.key = "hmac_secret"},
	                      {.key = "hmac_secret_file"}};
	enum { A_BEARER, A_BEARER_FILE, A_HEADER, A_HMAC, A_HMAC_FILE, A_N };
	sc_yaml_fields(&c->y, n, path, fs, A_N);
	a->configured = true;
	bool github = who == SC_SOURCE_GITHUB, op = who < 0;
	for (size_t i = 0; i < A_N; i++) {
		if (fs[i].val == NULL)
			continue;
		cleanup_free char *fp = sc_yaml_path_key(path, fs[i].key);
		bool hmac = i == A_HMAC || i == A_HMAC_FILE;
		if (github && !hmac) {
			bad(c, fs[i].line, fp,
			    "GitHub signs its deliveries: use hmac_secret or hmac_secret_file");
			continue;
		}
		if (!github && hmac) {
			bad(c, fs[i].line, fp, "only GitHub signs deliveries (hmac_secret is for `github')");
			continue;
		}
		if (op && i == A_HEADER) {
			bad(c, fs[i].line, fp, "the operator authenticates with bearer or bearer_file");
			continue;
		}
		switch (i) {
		case A_BEARER:
			get_inline_secrets(c, fs[i].val, fp, S_TOKEN, &a->bearer, &a->n_bearer);
			break;
		case A_BEARER_FILE:
			get_secret_file(c, fs[i].val, fp, S_TOKEN, &a->bearer, &a->n_bearer);
			break;
		case A_HMAC:
			get_inline_secrets(c, fs[i].val, fp, S_HMAC, &a->hmac, &a->n_hmac);
			break;
		case A_HMAC_FILE:
			get_secret_file(c, fs[i].val, fp, S_HMAC, &a->hmac, &a->n_hmac);
			break;
		case A_HEADER: {
			const sc_yaml_node *h = fs[i].val;
			if (!sc_yaml_want(&c->y, h, SC_YAML_MAP, fp))
				break;
			sc_yaml_field hf[] = {{.key = "name"}, {.key = "value"}, {.key = "value_file"}};
			sc_yaml_fields(&c->y, h, fp, hf, 3);
			if (hf[0].val) {
				cleanup_free char *np = sc_yaml_path_key(fp, "name");
				cleanup_free char *name = get_str(c, hf[0].val, np, 128);
				if (name && !valid_header_name(name)) {
					cleanup_free char *q = sc_quote(name, 64);
					bad(c, hf[0].val->line, np, "`%s' is not an HTTP header name", q);
				} else if (name && reserved_header(name)) {
					cleanup_free char *q = sc_quote(name, 64);
					bad(c, hf[0].val->line, np, "`%s' cannot carry a shared secret", q);
				} else if (name) {
					a->header_name = steal_pointer(&name);
				}
			} else {
				cleanup_free char *np = sc_yaml_path_key(fp, "name");
				bad(c, h->line, np, "missing (required)");
			}
			if (hf[1].val) {
				cleanup_free char *vp = sc_yaml_path_key(fp, "value");
				get_inline_secrets(c, hf[1].val, vp, S_HEADER, &a->header_value,
				                   &a->n_header_value);
			}
			if (hf[2].val) {
				cleanup_free char *vp = sc_yaml_path_key(fp, "value_file");
				get_secret_file(c, hf[2].val, vp, S_HEADER, &a->header_value,
				                &a->n_header_value);
			}
			if (hf[1].val == NULL && hf[2].val == NULL)
				bad(c, h->line, fp, "needs value or value_file");
			break;
		}
		}
	}
	bool any = false;
	for (size_t i = 0; i < A_N; i++)
		any |= fs[i].val != NULL;
	if (!any)
		bad(c, n->line, path, "no credential: give %s",
		    github ? "hmac_secret or hmac_secret_file"
		    : op   ? "bearer or bearer_file"
		           : "bearer, bearer_file or header");
}

static void parse_auth(cctx *c, sc_serve_config *cfg, const sc_yaml_node *n)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_MAP, "auth"))
		return;
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const sc_yaml_node *k = n->kids[i], *v = n->kids[i + 1];
		cleanup_free char *q = sc_quote_n(k->str, k->len, 64);
		cleanup_free char *p = sc_yaml_path_key("auth", q);
		if (strcmp(k->str, "operator") == 0 && k->len == 8) {
			parse_auth_one(c, -1, v, p, &cfg->operator_);
			continue;
		}
		int kind = memchr(k->str, '\0', k->len) ? -1 : sc_source_kind_from_name(k->str);
		if (kind < 0) {
			bad(c, k->line, "auth",
			    "unknown source `%s' (distribution, harbor, github or operator)", q);
			continue;
		}
		parse_auth_one(c, kind, v, p, &cfg->auth[kind]);
	}
}

/* ---- checks of values ---- */

/* "host:port", "[v6]:port"; port 0 (any free port) to 65535. */
static bool valid_listen(const char *s)
{
	const char *colon;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close == s + 1 || close[1] != ':')
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!strchr("0123456789abcdefABCDEF:.", *p))
				return false;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s)
			return false;
		for (const char *p = s; p < colon; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
				return false;
	}
	unsigned long long port;
	return colon[1] != '\0' && strlen(colon + 1) <= 5 && sc_parse_u64(colon + 1, &port) && port <= 65535;
}

/* Whether a valid listen address is on loopback: 127.0.0.0/8, ::1 (also as
 * ::ffff:127.x.x.x) or localhost. Names are not resolved: any other is not. */
static bool listen_is_loopback(const char *s)
{
	char host[300];
	const char *end = s[0] == '[' ? strchr(s, ']') : strrchr(s, ':');
	const char *start = s[0] == '[' ? s + 1 : s;
	if (end == NULL || end < start || (size_t)(end - start) >= sizeof(host))
		return false;
	memcpy(host, start, (size_t)(end - start));
	host[end - start] = '\0';
	if (s[0] == '[') {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return false;
		return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	}
	if (strcasecmp(host, "localhost") == 0)
		return true;
	struct in_addr a4;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* "https://HOST[:PORT][/]" or "HOST:PORT", as the CAS client takes it. */
static bool valid_cas(const char *s)
{
	const char *rest = sc_startswith(s, "https://") ? s + 8 : s;
	if (rest == s && strstr(s, "://"))
		return false;
	size_t n = strlen(rest);
	if (n && rest[n - 1] == '/')
		n--;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)rest[i];
		if (ch <= ' ' || ch >= 127 || strchr("/?#@\\\"<>`{}|^", ch))
			return false;
	}
	return true;
}

static bool lower_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* "os/arch[/variant]" */
static bool valid_platform(const char *s)
{
	size_t parts = 1, len = 0;
	for (; *s; s++) {
		if (*s == '/') {
			if (len == 0)
				return false;
			parts++;
			len = 0;
		} else if ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' ||
		           *s == '-') {
			len++;
		} else {
			return false;
		}
	}
	return len > 0 && parts >= 2 && parts <= 3;
}

static bool valid_rule_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MAX_RULE_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
		if (!alnum && (i == 0 || !strchr("._-", ch)))
			return false;
	}
	return true;
}

static bool valid_pattern(const char *s)
{
	for (; *s; s++)
		if (*s == ' ')
			return false;
	return true;
}

/* ---- rules ---- */

static void rule_free(sc_serve_rule *r)
{
	free(r->name);
	free(r->registry);
	free(r->repository);
	free(r->tag);
	free(r->destination);
	for (size_t i = 0; i < r->n_dir; i++)
		free(r->dir[i]);
	free(r->dir);
	for (size_t i = 0; i < r->n_authenticated; i++)
		free(r->authenticated[i]);
	free(r->authenticated);
	for (size_t i = 0; i < r->n_env; i++)
		free(r->env[i]);
	free(r->env);
	free(r->command);
	free(r->mode);
	free(r->cas);
	free(r->cas_key_hash);
	free(r->identity);
	free(r->session);
	free(r->namespace_);
	free(r->service_name);
	free(r->sign_key);
	free(r->sign_password_file);
	free(r->platform);
	free(r->authfile);
	free(r->src_cert_dir);
	free(r->dest_cert_dir);
}

#define SAMPLE_DIGEST "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

/* What templates are checked with at load: pushes as events report them.
 * The second has what real names have and a careless template breaks on: a
 * nested repository (`/' in {repository}) and a dotted tag (`.' in {tag}). */
static const sc_serve_push samples[] = {
        {
                .source = SC_SOURCE_DISTRIBUTION,
                .registry = "registry.example:5000",
                .repository = "apps/web",
                .tag = "v1",
                .digest = SAMPLE_DIGEST,
        },
        {
                .source = SC_SOURCE_DISTRIBUTION,
                .registry = "registry.example:5000",
                .repository = "team/sub/app",
                .tag = "v1.0",
                .digest = SAMPLE_DIGEST,
        },
};
#define N_SAMPLES (sizeof(samples) / sizeof(samples[0]))

/* A sample fitted to a rule, and the strings it owns. */
typedef struct {
	sc_serve_push p;
	char *registry, *repository, *tag;
	char *shown;  /* "registry/repository:tag" */
	char *quoted; /* shown, quoted for messages: patterns are text from the file */
} fitted;

static void fitted_free(fitted *f)
{
	free(f->registry);
	free(f->repository);
	free(f->tag);
	free(f->shown);
	free(f->quoted);
	*f = (fitted){0};
}

static void fit_sample(const sc_serve_rule *r, const sc_serve_push *base, fitted *ret);

/* A list of strings, each checked by ok (NULL: any). */
static bool get_strv(cctx *c, const sc_yaml_node *n, const char *path, size_t max_len,
                     bool (*ok)(const char *), const char *ok_what, char ***ret, size_t *ret_n)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_SEQ, path))
		return false;
	if (n->n > MAX_LIST) {
		fail(c, n->line, SCONIFY_ERR_LIMIT, path, "too many entries (more than %u)", MAX_LIST);
		return false;
	}
	char **v = xcalloc(n->n + 1, sizeof(char *));
	size_t k = 0;
	bool all = true;
	for (size_t i = 0; i < n->n; i++) {
		cleanup_free char *p = sc_yaml_path_index(path, i);
		char *s = get_str(c, n->kids[i], p, max_len);
		if (s && ok && !ok(s)) {
			cleanup_free char *q = sc_quote(s, 80);
			bad(c, n->kids[i]->line, p, "`%s' is not %s", q, ok_what);
			free(s);
			s = NULL;
		}
		if (s == NULL) {
			all = false;
			continue;
		}
		v[k++] = s;
	}
	if (!all) {
		sc_strv_free(v);
		return false;
	}
	*ret = v;
	*ret_n = k;
	return true;
}

/* Events name the registry themselves (the Host header of the pushing
 * client for distribution, the body for Harbor and GitHub): a rule without
 * one would let any sender point conversions at any host. */
#define REGISTRY_REQUIRED                                                                          \
	"registry is required (the host[:port] this rule converts from; events name the registry " \
	"themselves, so a rule must say which it trusts)"

static void parse_source(cctx *c, sc_serve_rule *r, const sc_yaml_node *n, const char *path)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_MAP, path))
		return;
	sc_yaml_field fs[] = {{.key = "from"}, {.key = "registry"}, {.key = "repository"}, {.key = "tag"}};
	sc_yaml_fields(&c->y, n, path, fs, 4);
	if (fs[0].val) {
		cleanup_free char *fp = sc_yaml_path_key(path, "from");
		cleanup_free char *s = get_str(c, fs[0].val, fp, 64);
		int k = s ? sc_source_kind_from_name(s) : -1;
		if (s && k < 0) {
			cleanup_free char *q = sc_quote(s, 64);
			bad(c, fs[0].val->line, fp, "`%s' is not distribution, harbor or github", q);
		}
		r->from = k;
	}
	if (fs[1].val == NULL)
		bad(c, n->line, path, REGISTRY_REQUIRED);
	char **pats[] = {NULL, &r->registry, &r->repository, &r->tag};
	for (size_t i = 1; i < 4; i++) {
		if (fs[i].val == NULL)
			continue;
		cleanup_free char *fp = sc_yaml_path_key(path, fs[i].key);
		char *s = get_str(c, fs[i].val, fp, MAX_PATTERN);
		if (s && !valid_pattern(s)) {
			bad(c, fs[i].val->line, fp, "a pattern has no spaces");
			free(s);
			s = NULL;
		}
		if (s) {
			free(*pats[i]);
			*pats[i] = s;
		}
	}
}

/* Expands t with push p; on failure records why and returns NULL. */
static char *expand_sample(cctx *c, const sc_yaml_node *n, const char *path, const char *t,
                           const sc_serve_rule *r, const sc_serve_push *p)
{
	cleanup_error sconify_error_t e = NULL;
	char *out = NULL;
	if (sc_serve_expand(t, r, p, &out, &e) < 0) {
		fail(c, n->line, sconify_error_kind(e), path, "%s", sconify_error_message(e));
		return NULL;
	}
	return out;
}

/* Whether d (an expanded destination) names its registry: docker's
 * implicit docker.io is never what a conversion service means. */
static bool names_registry(const char *d)
{
	const char *slash = strchr(d, '/');
	size_t hl = slash ? (size_t)(slash - d) : 0;
	return slash && (memchr(d, '.', hl) || memchr(d, ':', hl) || (hl == 9 && !memcmp(d, "localhost", 9)));
}

/* Checks the destination with each sample fitted to the rule; records the
 * first problem. */
static void check_destination(cctx *c, const sc_yaml_node *n, const char *path, const sc_serve_rule *r)
{
	cleanup_free char *qt = sc_quote(r->destination, 120);
	for (size_t i = 0; i < N_SAMPLES; i++) {
		_cleanup_(fitted_free) fitted f = {0};
		fit_sample(r, &samples[i], &f);
		cleanup_free char *d = expand_sample(c, n, path, r->destination, r, &f.p);
		if (d == NULL)
			return;
		cleanup_free char *qd = sc_quote(d, 160);
		cleanup_error sconify_error_t e = NULL;
		cleanup_docker_ref sc_docker_ref *ref = NULL;
		if (sc_docker_ref_parse(d, &ref, &e) < 0) {
			bad(c, n->line, path,
			    "`%s' is not an image reference (for a push of %s it is `%s': %s)", qt, f.quoted,
			    qd, sconify_error_message(e));
			return;
		}
		const char *last = strrchr(d, '/');
		if (!names_registry(d)) {
			bad(c, n->line, path,
			    "`%s' names no registry (it must start with HOST[:PORT]/, e.g. {registry}/)", qt);
			return;
		}
		if (ref->digest) {
			bad(c, n->line, path, "`%s' names a digest: a destination is pushed by tag", qt);
			return;
		}
		if (last == NULL || strchr(last, ':') == NULL) {
			bad(c, n->line, path, "`%s' names no tag (end it with `:{tag}')", qt);
			return;
		}
		cleanup_free char *dst = sc_docker_ref_string(ref);
		if (strcmp(f.shown, dst) == 0) {
			bad(c, n->line, path,
			    "`%s' is the pushed image itself: the conversion would replace it", qt);
			return;
		}
	}
}

/* Checks the session template with each sample fitted to the rule. */
static void check_session(cctx *c, const sc_yaml_node *n, const char *path, const sc_serve_rule *r)
{
	for (size_t i = 0; i < N_SAMPLES; i++) {
		_cleanup_(fitted_free) fitted f = {0};
		fit_sample(r, &samples[i], &f);
		cleanup_free char *s = expand_sample(c, n, path, r->session, r, &f.p);
		if (s == NULL)
			return;
		if (sc_serve_session_name_valid(s))
			continue;
		cleanup_free char *qt = sc_quote(r->session, 120);
		cleanup_free char *qs = sc_quote(s, 160);
		/* The usual mistake: tags may hold `.', which no session name does. */
		const char *hint =
		        strstr(r->session, "{tag}") && strchr(f.p.tag, '.')
		                ? "; tags may hold `.': use {digest_hex} or a template without {tag}"
		                : "";
		bad(c, n->line, path,
		    "`%s' is not a session name (for a push of %s it expands to `%s'; a name is "
		    "[namespace/]name of letters, digits, `_' and `-'%s)",
		    qt, f.quoted, qs, hint);
		return;
	}
}

/* *ret_dest_line: the line of the destination, when there is one. */
static void parse_rule(cctx *c, sc_serve_config *cfg, size_t index, const sc_yaml_node *n, const char *path,
                       size_t *ret_dest_line)
{
	sc_serve_rule *r = &cfg->rules[index];
	*r = (sc_serve_rule){
	        .line = n->line,
	        .from = -1,
	        .src_tls_verify = true,
	        .dest_tls_verify = true,
	};
	if (!sc_yaml_want(&c->y, n, SC_YAML_MAP, path)) {
		r->name = xasprintf("rule-%zu", index + 1);
		return;
	}
	sc_yaml_field fs[] = {
	        {.key = "name"},
	        {.key = "source"},
	        {.key = "destination"},
	        {.key = "dir"},
	        {.key = "authenticated"},
	        {.key = "env"},
	        {.key = "command"},
	        {.key = "mode"},
	        {.key = "cas"},
	        {.key = "cas_key_hash"},
	        {.key = "identity"},
	        {.key = "session"},
	        {.key = "namespace"},
	        {.key = "service_name"},
	        {.key = "sign_key"},
	        {.key = "sign_password_file"},
	        {.key = "platform"},
	        {.key = "all"},
	        {.key = "tls_verify"},
	        {.key = "src_tls_verify"},
	        {.key = "dest_tls_verify"},
	        {.key = "authfile"},
	        {.key = "src_cert_dir"},
	        {.key = "dest_cert_dir"},
	};
	enum {
		R_NAME,
		R_SOURCE,
		R_DEST,
		R_DIR,
		R_AUTHENTICATED,
		R_ENV,
		R_COMMAND,
		R_MODE,
		R_CAS,
		R_CAS_KEY_HASH,
		R_IDENTITY,
		R_SESSION,
		R_NAMESPACE,
		R_SERVICE,
		R_SIGN_KEY,
		R_SIGN_PASSWORD,
		R_PLATFORM,
		R_ALL,
		R_TLS,
		R_SRC_TLS,
		R_DEST_TLS,
		R_AUTHFILE,
		R_SRC_CERT,
		R_DEST_CERT,
		R_N
	};
	sc_yaml_fields(&c->y, n, path, fs, R_N);
#define FP(i) cleanup_free char *fp = sc_yaml_path_key(path, fs[i].key)

	if (fs[R_NAME].val) {
		FP(R_NAME);
		r->name = get_str(c, fs[R_NAME].val, fp, MAX_RULE_NAME);
		if (r->name && !valid_rule_name(r->name)) {
			cleanup_free char *q = sc_quote(r->name, 80);
			bad(c, fs[R_NAME].val->line, fp,
			    "`%s' is not a rule name (letters, digits, `.', `_' and `-', starting with a "
			    "letter or "
			    "digit, at most %u bytes)",
			    q, MAX_RULE_NAME);
		}
	}
	if (r->name == NULL)
		r->name = xasprintf("rule-%zu", index + 1);
	/* No default registry: see parse_source(). */
	r->repository = xstrdup("*");
	r->tag = xstrdup("*");
	if (fs[R_SOURCE].val) {
		FP(R_SOURCE);
		parse_source(c, r, fs[R_SOURCE].val, fp);
	} else {
		cleanup_free char *fp = sc_yaml_path_key(path, "source");
		bad(c, n->line, fp, REGISTRY_REQUIRED);
	}
	if (fs[R_DEST].val) {
		FP(R_DEST);
		*ret_dest_line = fs[R_DEST].val->line;
		r->destination = get_str(c, fs[R_DEST].val, fp, MAX_TEMPLATE);
		if (r->destination)
			check_destination(c, fs[R_DEST].val, fp, r);
	} else {
		cleanup_free char *fp = sc_yaml_path_key(path, "destination");
		bad(c, n->line, fp, "missing (required)");
	}
	if (fs[R_DIR].val) {
		FP(R_DIR);
		get_strv(c, fs[R_DIR].val, fp, PATH_MAX, sc_measure_path_normal,
		         "an absolute path without empty, `.' or `..' components", &r->dir, &r->n_dir);
	}
	if (fs[R_AUTHENTICATED].val) {
		FP(R_AUTHENTICATED);
		get_strv(c, fs[R_AUTHENTICATED].val, fp, PATH_MAX, sc_measure_path_normal,
		         "an absolute path without empty, `.' or `..' components", &r->authenticated,
		         &r->n_authenticated);
	}
	if (fs[R_ENV].val) {
		FP(R_ENV);
		const sc_yaml_node *ev = fs[R_ENV].val;
		if (sc_yaml_want(&c->y, ev, SC_YAML_MAP, fp)) {
			if (ev->n / 2 > MAX_LIST) {
				fail(c, ev->line, SCONIFY_ERR_LIMIT, fp, "more than %u variables", MAX_LIST);
			} else {
				r->env = xcalloc(ev->n / 2 + 1, sizeof(char *));
				for (size_t i = 0; i + 1 < ev->n; i += 2) {
					const sc_yaml_node *k = ev->kids[i], *v = ev->kids[i + 1];
					cleanup_free char *q = sc_quote_n(k->str, k->len, 64);
					cleanup_free char *vp = sc_yaml_path_key(fp, q);
					if (k->len == 0 || k->len > 1024 || memchr(k->str, '=', k->len) ||
					    !no_controls(k->str, k->len)) {
						bad(c, k->line, vp,
						    "invalid variable name (1 to 1024 bytes, no `=')");
						continue;
					}
					if (!sc_yaml_want(&c->y, v, SC_YAML_SCALAR, vp))
						continue;
					if (v->len > MAX_STRING || memchr(v->str, '\0', v->len)) {
						bad(c, v->line, vp,
						    "longer than %u bytes or holds a NUL byte", MAX_STRING);
						continue;
					}
					r->env[r->n_env++] = xasprintf("%s=%s", k->str, v->str);
				}
			}
		}
	}
	if (fs[R_COMMAND].val) {
		FP(R_COMMAND);
		r->command = get_str(c, fs[R_COMMAND].val, fp, MAX_STRING);
	}
	if (fs[R_MODE].val) {
		FP(R_MODE);
		cleanup_free char *m = get_str(c, fs[R_MODE].val, fp, 64);
		if (m && strcmp(m, "sim") != 0 && strcmp(m, "hw") != 0) {
			cleanup_free char *q = sc_quote(m, 64);
			bad(c, fs[R_MODE].val->line, fp, "`%s' is not sim or hw", q);
		} else if (m) {
			r->mode = steal_pointer(&m);
		}
	}
	if (r->mode == NULL)
		r->mode = xstrdup("hw");
	if (fs[R_CAS].val) {
		FP(R_CAS);
		r->cas = get_str(c, fs[R_CAS].val, fp, 512);
		if (r->cas && !valid_cas(r->cas)) {
			cleanup_free char *q = sc_quote(r->cas, 120);
			bad(c, fs[R_CAS].val->line, fp, "`%s' is not https://HOST[:PORT] (no path or user)",
			    q);
		}
	}
	if (fs[R_CAS_KEY_HASH].val) {
		FP(R_CAS_KEY_HASH);
		r->cas_key_hash = get_str(c, fs[R_CAS_KEY_HASH].val, fp, 128);
		if (r->cas_key_hash && !lower_hex64(r->cas_key_hash)) {
			cleanup_free char *q = sc_quote(r->cas_key_hash, 80);
			bad(c, fs[R_CAS_KEY_HASH].val->line, fp,
			    "`%s' is not 64 lowercase hex digits (a SHA-256)", q);
		}
	}
	if (fs[R_IDENTITY].val) {
		FP(R_IDENTITY);
		r->identity = get_file(c, fs[R_IDENTITY].val, fp, F_REGULAR);
	}
	for (size_t i = R_CAS_KEY_HASH; i <= R_IDENTITY; i++)
		if (fs[i].val && fs[R_CAS].val == NULL) {
			FP(i);
			bad(c, fs[i].line, fp, "goes with cas");
		}
	if (fs[R_SESSION].val) {
		FP(R_SESSION);
		r->session = get_str(c, fs[R_SESSION].val, fp, MAX_TEMPLATE);
		if (r->session)
			check_session(c, fs[R_SESSION].val, fp, r);
	}
	if (fs[R_NAMESPACE].val) {
		FP(R_NAMESPACE);
		r->namespace_ = get_str(c, fs[R_NAMESPACE].val, fp, 128);
		if (r->namespace_ && !sc_policy_valid_session_name(r->namespace_)) {
			cleanup_free char *q = sc_quote(r->namespace_, 80);
			bad(c, fs[R_NAMESPACE].val->line, fp,
			    "`%s' is not a namespace (letters, digits, `_' and `-', components joined by "
			    "`/')",
			    q);
		}
	}
	if (fs[R_SERVICE].val) {
		FP(R_SERVICE);
		r->service_name = get_str(c, fs[R_SERVICE].val, fp, 128);
		if (r->service_name && !sc_policy_valid_name(r->service_name)) {
			cleanup_free char *q = sc_quote(r->service_name, 80);
			bad(c, fs[R_SERVICE].val->line, fp,
			    "`%s' is not a service name (letters, digits, `_' and `-')", q);
		}
	}
	if (fs[R_SIGN_KEY].val) {
		FP(R_SIGN_KEY);
		r->sign_key = get_file(c, fs[R_SIGN_KEY].val, fp, F_REGULAR);
	}
	if (fs[R_SIGN_PASSWORD].val) {
		FP(R_SIGN_PASSWORD);
		if (fs[R_SIGN_KEY].val == NULL)
			bad(c, fs[R_SIGN_PASSWORD].line, fp, "goes with sign_key");
		else
			r->sign_password_file = get_file(c, fs[R_SIGN_PASSWORD].val, fp, F_SECRET);
	}
	if (fs[R_PLATFORM].val) {
		FP(R_PLATFORM);
		r->platform = get_str(c, fs[R_PLATFORM].val, fp, 128);
		if (r->platform && !valid_platform(r->platform)) {
			cleanup_free char *q = sc_quote(r->platform, 80);
			bad(c, fs[R_PLATFORM].val->line, fp,
			    "`%s' is not OS/ARCH[/VARIANT] (e.g. linux/amd64)", q);
		}
	}
	if (fs[R_ALL].val) {
		FP(R_ALL);
		get_bool(c, fs[R_ALL].val, fp, &r->all);
		if (r->all && fs[R_PLATFORM].val)
			bad(c, fs[R_ALL].line, fp, "all and platform exclude each other");
	}
	if (fs[R_TLS].val) {
		FP(R_TLS);
		bool v = true;
		if (get_bool(c, fs[R_TLS].val, fp, &v))
			r->src_tls_verify = r->dest_tls_verify = v;
	}
	if (fs[R_SRC_TLS].val) {
		FP(R_SRC_TLS);
		get_bool(c, fs[R_SRC_TLS].val, fp, &r->src_tls_verify);
	}
	if (fs[R_DEST_TLS].val) {
		FP(R_DEST_TLS);
		get_bool(c, fs[R_DEST_TLS].val, fp, &r->dest_tls_verify);
	}
	if (fs[R_AUTHFILE].val) {
		FP(R_AUTHFILE);
		r->authfile = get_file(c, fs[R_AUTHFILE].val, fp, F_REGULAR);
	}
	if (fs[R_SRC_CERT].val) {
		FP(R_SRC_CERT);
		r->src_cert_dir = get_file(c, fs[R_SRC_CERT].val, fp, F_DIRECTORY);
	}
	if (fs[R_DEST_CERT].val) {
		FP(R_DEST_CERT);
		r->dest_cert_dir = get_file(c, fs[R_DEST_CERT].val, fp, F_DIRECTORY);
	}
#undef FP
}

/* Whether rule i's output would come back as an event some rule converts:
 * its destination, expanded with the samples fitted to it, checked against
 * every rule's source patterns (registry, repository, tag; and `from':
 * the output is reported by the kind of source the input was, as far as
 * we know). Harbor and GitHub do not report the pushing client's user
 * agent, so the service cannot tell its own pushes from others' at run
 * time; this check is what stops the loop.
 *
 * It catches the plain loops: a destination inside the source's own
 * patterns (every repository under apps/ converted to
 * "{registry}/apps/c/{repository}:{tag}"), the catch-all rule (any
 * repository and tag, back to the same registry), and one rule feeding
 * another (an image converted twice). It cannot catch what the samples do
 * not show: a loop only some names fall into (one rule sends each
 * repository under apps/ to mirror/{name}, another converts mirror/a*:
 * apps/api loops, the sample apps/web does not), a pattern no sample could
 * be fitted to, the same registry under two names (localhost:5000 and
 * 127.0.0.1:5000: a Host header is whatever the client typed), and a
 * destination registry whose events arrive as another kind of source.
 * Expansions that fail were reported by check_destination() and are
 * skipped here. */
static void check_feedback(cctx *c, const sc_serve_config *cfg, size_t i, size_t line)
{
	const sc_serve_rule *r = &cfg->rules[i];
	for (size_t s = 0; s < N_SAMPLES; s++) {
		_cleanup_(fitted_free) fitted f = {0};
		fit_sample(r, &samples[s], &f);
		cleanup_error sconify_error_t e = NULL;
		cleanup_free char *d = NULL;
		if (sc_serve_expand(r->destination, r, &f.p, &d, &e) < 0)
			continue;
		cleanup_docker_ref sc_docker_ref *ref = NULL;
		if (!names_registry(d) || sc_docker_ref_parse(d, &ref, &e) < 0 || ref->tag == NULL ||
		    ref->digest)
			continue;
		cleanup_free char *dst = sc_docker_ref_string(ref);
		if (strcmp(dst, f.shown) == 0)
			continue; /* the pushed image itself: check_destination() said so */
		for (size_t m = 0; m < cfg->n_rules; m++) {
			const sc_serve_rule *o = &cfg->rules[m];
			if (o->registry == NULL)
				continue;
			sc_serve_push out = {
			        .source = r->from >= 0   ? (sc_source_kind)r->from
			                  : o->from >= 0 ? (sc_source_kind)o->from
			                                 : SC_SOURCE_DISTRIBUTION,
			        .registry = ref->domain,
			        .repository = ref->path,
			        .tag = ref->tag,
			        .digest = SAMPLE_DIGEST,
			};
			if (!sc_serve_rule_matches(o, &out))
				continue;
			cleanup_free char *p = sc_yaml_path_index("rules", i);
			cleanup_free char *dp = sc_yaml_path_key(p, "destination");
			cleanup_free char *qd = sc_quote(d, 160);
			bad(c, line, dp,
			    "its images would match rules[%zu]'s source: the service would convert its own "
			    "output (a push of %s goes to `%s')",
			    m, f.quoted, qd);
			return;
		}
	}
}

static void parse_rules(cctx *c, sc_serve_config *cfg, const sc_yaml_node *n)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_SEQ, "rules"))
		return;
	if (n->n == 0) {
		bad(c, n->line, "rules", "empty: at least one rule is needed");
		return;
	}
	if (n->n > MAX_RULES) {
		fail(c, n->line, SCONIFY_ERR_LIMIT, "rules", "more than %u rules", MAX_RULES);
		return;
	}
	cfg->rules = xcalloc(n->n, sizeof(*cfg->rules));
	cleanup_free size_t *dest_line = xcalloc(n->n, sizeof(size_t));
	for (size_t i = 0; i < n->n; i++) {
		cleanup_free char *p = sc_yaml_path_index("rules", i);
		parse_rule(c, cfg, i, n->kids[i], p, &dest_line[i]);
		cfg->n_rules = i + 1;
	}
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (cfg->rules[i].destination)
			check_feedback(c, cfg, i, dest_line[i]);
	for (size_t i = 0; i < cfg->n_rules; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->rules[i].name, cfg->rules[j].name) == 0) {
				cleanup_free char *p = sc_yaml_path_index("rules", i);
				cleanup_free char *q = sc_quote(cfg->rules[i].name, 80);
				bad(c, cfg->rules[i].line, p, "duplicate rule name `%s' (first on line %zu)",
				    q, cfg->rules[j].line);
				break;
			}
}

/* ---- the root ---- */

static void parse_root(cctx *c, sc_serve_config *cfg, const sc_yaml_node *root)
{
	if (!sc_yaml_want(&c->y, root, SC_YAML_MAP, ""))
		return;
	sc_yaml_field fs[] = {{.key = "listen"}, {.key = "tls"},    {.key = "state_dir"}, {.key = "workers"},
	                      {.key = "retry"},  {.key = "limits"}, {.key = "auth"},      {.key = "rules"}};
	enum { K_LISTEN, K_TLS, K_STATE, K_WORKERS, K_RETRY, K_LIMITS, K_AUTH, K_RULES, K_N };
	sc_yaml_fields(&c->y, root, "", fs, K_N);

	if (fs[K_LISTEN].val) {
		char *l = get_str(c, fs[K_LISTEN].val, "listen", 300);
		if (l && !valid_listen(l)) {
			cleanup_free char *q = sc_quote(l, 80);
			bad(c, fs[K_LISTEN].val->line, "listen", "`%s' is not HOST:PORT or [IPV6]:PORT", q);
			free(l);
		} else if (l) {
			free(cfg->listen);
			cfg->listen = l;
		}
	}
	if (fs[K_TLS].val && !is_null(fs[K_TLS].val)) {
		const sc_yaml_node *t = fs[K_TLS].val;
		if (sc_yaml_want(&c->y, t, SC_YAML_MAP, "tls")) {
			sc_yaml_field tf[] = {{.key = "cert"}, {.key = "key"}};
			sc_yaml_fields(&c->y, t, "tls", tf, 2);
			if (tf[0].val)
				cfg->tls_cert = get_file(c, tf[0].val, "tls.cert", F_REGULAR);
			if (tf[1].val)
				cfg->tls_key = get_file(c, tf[1].val, "tls.key", F_SECRET);
			if (!tf[0].val || !tf[1].val)
				bad(c, t->line, "tls", "cert and key go together");
		}
	}
	if (fs[K_STATE].val) {
		cleanup_free char *s = get_str(c, fs[K_STATE].val, "state_dir", PATH_MAX);
		if (s)
			cfg->state_dir = resolve(c, s);
	} else {
		bad(c, root->line, "state_dir", "missing (required)");
	}
	if (fs[K_WORKERS].val) {
		unsigned long long v;
		if (get_uint(c, fs[K_WORKERS].val, "workers", 0, 64, &v))
			cfg->workers = (unsigned)v;
	}
	if (fs[K_RETRY].val) {
		const sc_yaml_node *r = fs[K_RETRY].val;
		if (sc_yaml_want(&c->y, r, SC_YAML_MAP, "retry")) {
			sc_yaml_field rf[] = {
			        {.key = "attempts"}, {.key = "backoff"}, {.key = "max_backoff"}};
			sc_yaml_fields(&c->y, r, "retry", rf, 3);
			unsigned long long v;
			if (rf[0].val && get_uint(c, rf[0].val, "retry.attempts", 1, 100, &v))
				cfg->max_attempts = (unsigned)v;
			if (rf[1].val)
				get_seconds(c, rf[1].val, "retry.backoff", 0, 86400 * 1000, &cfg->backoff_ms);
			if (rf[2].val)
				get_seconds(c, rf[2].val, "retry.max_backoff", 0, 7 * 86400 * 1000,
				            &cfg->max_backoff_ms);
			if (cfg->max_backoff_ms < cfg->backoff_ms)
				bad(c, r->line, "retry", "max_backoff is shorter than backoff");
		}
	}
	if (fs[K_LIMITS].val) {
		const sc_yaml_node *l = fs[K_LIMITS].val;
		if (sc_yaml_want(&c->y, l, SC_YAML_MAP, "limits")) {
			sc_yaml_field lf[] = {{.key = "body"},          {.key = "connections"},
			                      {.key = "per_ip"},        {.key = "request_timeout"},
			                      {.key = "replay_window"}, {.key = "job"},
			                      {.key = "queue"}};
			sc_yaml_fields(&c->y, l, "limits", lf, 7);
			unsigned long long v;
			if (lf[0].val && get_uint(c, lf[0].val, "limits.body", 1024, 64 * 1024 * 1024, &v))
				cfg->max_body = (size_t)v;
			if (lf[1].val && get_uint(c, lf[1].val, "limits.connections", 1, 65536, &v))
				cfg->max_connections = (size_t)v;
			if (lf[2].val && get_uint(c, lf[2].val, "limits.per_ip", 1, 65536, &v))
				cfg->max_per_ip = (size_t)v;
			if (lf[3].val)
				get_seconds(c, lf[3].val, "limits.request_timeout", 100, 3600 * 1000,
				            &cfg->request_timeout_ms);
			if (lf[4].val && get_uint(c, lf[4].val, "limits.replay_window", 60, 365 * 86400, &v))
				cfg->replay_window_s = (unsigned)v;
			if (lf[5].val)
				get_seconds(c, lf[5].val, "limits.job", 10 * 1000, 7 * 86400 * 1000,
				            &cfg->job_timeout_ms);
			if (lf[6].val && get_uint(c, lf[6].val, "limits.queue", 1, 10000000, &v))
				cfg->max_queued = (size_t)v;
			/* A default per_ip follows a smaller connections. */
			if (cfg->max_per_ip > cfg->max_connections && lf[2].val == NULL)
				cfg->max_per_ip = cfg->max_connections;
			if (cfg->max_per_ip > cfg->max_connections)
				bad(c, l->line, "limits", "per_ip (%zu) is more than connections (%zu)",
				    cfg->max_per_ip, cfg->max_connections);
		}
	}
	if (fs[K_AUTH].val)
		parse_auth(c, cfg, fs[K_AUTH].val);
	/* The operator's endpoints list every job (repositories, digests,
	 * errors): without a credential they are only for this machine. */
	if (!listen_is_loopback(cfg->listen) && !cfg->operator_.configured) {
		cleanup_free char *q = sc_quote(cfg->listen, 80);
		bad(c, fs[K_LISTEN].val ? fs[K_LISTEN].val->line : root->line, "listen",
		    "`%s' is not a loopback address: configure auth.operator (GET /v1/jobs and "
		    "/metrics "
		    "would be open to anyone who reaches it)",
		    q);
	}
	if (fs[K_RULES].val)
		parse_rules(c, cfg, fs[K_RULES].val);
	else
		bad(c, root->line, "rules", "missing (required): at least one rule is needed");
}

void sc_serve_config_free(sc_serve_config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->listen);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->state_dir);
	for (size_t i = 0; i < SC_SOURCE__N; i++)
		auth_free(&c->auth[i]);
	auth_free(&c->operator_);
	for (size_t i = 0; i < c->n_rules; i++)
		rule_free(&c->rules[i]);
	free(c->rules);
	free(c);
}

static sc_serve_config *config_new(const char *what)
{
	sc_serve_config *c = xzalloc(sizeof(*c));
	c->path = xstrdup(what);
	c->listen = xstrdup("127.0.0.1:8080");
	c->workers = 2;
	c->max_attempts = 5;
	c->backoff_ms = 10 * 1000;
	c->max_backoff_ms = 600 * 1000;
	c->max_body = 256 * 1024;
	c->max_connections = 1024;
	c->max_per_ip = 64;
	c->request_timeout_ms = 30 * 1000;
	c->replay_window_s = 7 * 86400;
	c->job_timeout_ms = 3600 * 1000;
	c->max_queued = 100000;
	return c;
}

/* Parses into *ret (NULL when there were problems); the problems, sorted by
 * line, stay in c. */
static void run(cctx *c, const char *data, size_t len, sc_serve_config **ret)
{
	*ret = NULL;
	_cleanup_(sc_yaml_node_freep) sc_yaml_node *root = sc_yaml_parse(&c->y, data, len, &limits);
	if (root == NULL)
		return;
	_cleanup_(sc_serve_config_freep) sc_serve_config *cfg = config_new(c->y.what);
	parse_root(c, cfg, root);
	sc_yaml_sort(&c->y);
	if (c->y.n_problems == 0)
		*ret = steal_pointer(&cfg);
}

static void cctx_free(cctx *c)
{
	sc_yaml_ctx_free(&c->y);
}

static cctx cctx_new(const char *what, const char *base_dir)
{
	return (cctx){.y = {.what = what, .key_noun = "key", .max_problems = MAX_ERRORS},
	              .base_dir = base_dir};
}

int sc_serve_config_parse(const char *what, const char *text, size_t len, const char *base_dir,
                          sc_serve_config **ret, sconify_error_t *err)
{
	_cleanup_(cctx_free) cctx c = cctx_new(what ? what : "config", base_dir ? base_dir : ".");
	sc_serve_config *cfg = NULL;
	run(&c, text, len, &cfg);
	if (cfg == NULL)
		return sc_yaml_error(&c.y, err);
	*ret = cfg;
	return 0;
}

/* The directory of path, absolute when it can be made so: the service may
 * change directory, the file names in the config must not change meaning. */
static char *base_of(const char *path)
{
	cleanup_free char *dir = sc_dirname(path);
	char *real = realpath(dir, NULL);
	if (real == NULL)
		return steal_pointer(&dir);
	char *r = xstrdup(real);
	free(real);
	return r;
}

/* The file's text, wiped when freed: it may hold inline secrets. */
static int read_config(const char *path, sc_secret *out, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	cleanup_free char *what = xasprintf("configuration `%s'", q);
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is not a regular file", what);
	return sc_read_secret_file(path, MAX_BYTES, what, out, NULL, err);
}

int sc_serve_config_load(const char *path, sc_serve_config **ret, sconify_error_t *err)
{
	_cleanup_(sc_secret_free) sc_secret text = {0};
	if (read_config(path, &text, err) < 0)
		return -1;
	cleanup_free char *base = base_of(path);
	return sc_serve_config_parse(path, text.data ? text.data : "", text.len, base, ret, err);
}

char **sc_serve_config_check(const char *path)
{
	_cleanup_(sc_secret_free) sc_secret text = {0};
	sconify_error_t e = NULL;
	if (read_config(path, &text, &e) < 0) {
		char **out = xcalloc(2, sizeof(char *));
		out[0] = xstrdup(sconify_error_message(e));
		sconify_error_free(&e);
		return out;
	}
	cleanup_free char *base = base_of(path);
	_cleanup_(cctx_free) cctx c = cctx_new(path, base);
	_cleanup_(sc_serve_config_freep) sc_serve_config *cfg = NULL;
	run(&c, text.data ? text.data : "", text.len, &cfg);
	return sc_yaml_steal_messages(&c.y);
}

const sc_serve_rule *sc_serve_config_rule(const sc_serve_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_rules; i++)
		if (strcmp(c->rules[i].name, name) == 0)
			return &c->rules[i];
	return NULL;
}

/* ---- matching ---- */

typedef enum { T_CHAR, T_ANY, T_CLASS, T_STAR, T_GLOBSTAR, T_GLOBSTAR_DIR } tok_type;

typedef struct {
	tok_type type;
	char ch;         /* T_CHAR */
	const char *set; /* T_CLASS: the bytes between the brackets, negation removed */
	size_t set_len;
	bool negate;
} tok;

static bool class_has(const tok *t, unsigned char ch)
{
	bool in = false;
	size_t i = 0;
	while (i < t->set_len && !in) {
		unsigned char a = (unsigned char)t->set[i++];
		if (a == '\\' && i < t->set_len)
			a = (unsigned char)t->set[i++];
		unsigned char b = a;
		if (i + 1 < t->set_len && t->set[i] == '-') {
			i++;
			b = (unsigned char)t->set[i++];
			if (b == '\\' && i < t->set_len)
				b = (unsigned char)t->set[i++];
		}
		in = ch >= a && ch <= b;
	}
	return in != t->negate;
}

/* The pattern's tokens, into toks (strlen(pat) + 1 of them); returns how
 * many. */
static size_t tokenize(const char *pat, tok *toks)
{
	size_t pl = strlen(pat);
	size_t nt = 0;
	for (size_t i = 0; i < pl;) {
		tok *t = &toks[nt++];
		char ch = pat[i];
		if (ch == '*') {
			size_t j = i;
			while (j < pl && pat[j] == '*')
				j++;
			bool two = j - i >= 2;
			bool comp_start = i == 0 || pat[i - 1] == '/';
			if (two && comp_start && j < pl && pat[j] == '/') {
				t->type = T_GLOBSTAR_DIR;
				i = j + 1;
			} else {
				t->type = two ? T_GLOBSTAR : T_STAR;
				i = j;
			}
		} else if (ch == '?') {
			t->type = T_ANY;
			i++;
		} else if (ch == '[') {
			size_t j = i + 1;
			bool neg = j < pl && (pat[j] == '!' || pat[j] == '^');
			if (neg)
				j++;
			size_t start = j;
			if (j < pl && pat[j] == ']')
				j++;
			while (j < pl && pat[j] != ']') {
				if (pat[j] == '\\' && j + 1 < pl)
					j++;
				j++;
			}
			if (j >= pl) { /* no closing bracket: a literal `[' */
				t->type = T_CHAR;
				t->ch = '[';
				i++;
			} else {
				t->type = T_CLASS;
				t->negate = neg;
				t->set = pat + start;
				t->set_len = j - start;
				i = j + 1;
			}
		} else if (ch == '\\' && i + 1 < pl) {
			t->type = T_CHAR;
			t->ch = pat[i + 1];
			i += 2;
		} else {
			t->type = T_CHAR;
			t->ch = ch;
			i++;
		}
	}
	return nt;
}

/* Dynamic programming over the pattern's tokens: at[j] says whether the
 * tokens so far match s[0..j). Linear in the pattern times the string: no
 * backtracking blow-up whatever the pattern. */
static bool glob_match(const char *pat, const char *s, bool slash_stops)
{
	/* The literal start decides most misses without the table (the load
	 * checks every rule's output against every rule). */
	size_t lit = 0;
	for (; pat[lit] && !strchr("*?[\\", pat[lit]); lit++)
		if (s[lit] != pat[lit])
			return false;
	if (pat[lit] == '\0')
		return s[lit] == '\0';
	size_t pl = strlen(pat), sl = strlen(s);
	cleanup_free tok *toks = xcalloc(pl + 1, sizeof(tok));
	size_t nt = tokenize(pat, toks);
	cleanup_free bool *at = xcalloc(sl + 1, sizeof(bool));
	cleanup_free bool *next = xcalloc(sl + 1, sizeof(bool));
	at[0] = true;
	for (size_t k = 0; k < nt; k++) {
		const tok *t = &toks[k];
		bool any_before = false;
		for (size_t j = 0; j <= sl; j++) {
			bool v = false;
			char prev = j > 0 ? s[j - 1] : 0;
			switch (t->type) {
			case T_CHAR:
				v = j > 0 && at[j - 1] && prev == t->ch;
				break;
			case T_ANY:
				v = j > 0 && at[j - 1] && !(slash_stops && prev == '/');
				break;
			case T_CLASS:
				v = j > 0 && at[j - 1] && !(slash_stops && prev == '/') &&
				    class_has(t, (unsigned char)prev);
				break;
			case T_STAR:
				v = at[j] || (j > 0 && next[j - 1] && !(slash_stops && prev == '/'));
				break;
			case T_GLOBSTAR:
				v = at[j] || (j > 0 && next[j - 1]);
				break;
			case T_GLOBSTAR_DIR:
				/* nothing, or anything that ends with `/' */
				v = at[j] || (j > 0 && prev == '/' && any_before);
				break;
			}
			any_before |= at[j];
			next[j] = v;
		}
		bool *tmp = at;
		at = next;
		next = tmp;
	}
	return at[sl];
}

static char *lower(const char *s)
{
	char *l = xstrdup(s);
	for (char *p = l; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	return l;
}

typedef enum { FIELD_REGISTRY, FIELD_REPOSITORY, FIELD_TAG } push_field;

static bool field_matches(push_field f, const char *pat, const char *s)
{
	if (f != FIELD_REGISTRY)
		return glob_match(pat, s, f == FIELD_REPOSITORY);
	/* Host names do not care about case. */
	cleanup_free char *lp = lower(pat);
	cleanup_free char *ls = lower(s);
	return glob_match(lp, ls, false);
}

bool sc_serve_rule_matches(const sc_serve_rule *r, const sc_serve_push *p)
{
	if (r->from >= 0 && (int)p->source != r->from)
		return false;
	/* No registry, no trust: a loaded rule always has one. */
	if (r->registry == NULL)
		return false;
	return field_matches(FIELD_REPOSITORY, r->repository ? r->repository : "*",
	                     p->repository ? p->repository : "") &&
	       field_matches(FIELD_TAG, r->tag ? r->tag : "*", p->tag ? p->tag : "") &&
	       field_matches(FIELD_REGISTRY, r->registry, p->registry ? p->registry : "");
}

/* A non-empty string pat matches, made by filling its wildcards with
 * plausible text (a port-like "5000" in registries, "x" elsewhere), or NULL
 * when that does not give one (a class nothing plausible is in). */
static char *witness(push_field f, const char *pat)
{
	cleanup_free char *lp = f == FIELD_REGISTRY ? lower(pat) : xstrdup(pat);
	size_t pl = strlen(lp);
	cleanup_free tok *toks = xcalloc(pl + 1, sizeof(tok));
	size_t nt = tokenize(lp, toks);
	const char *star = f == FIELD_REGISTRY ? "5000" : "x";
	char one = f == FIELD_REGISTRY ? '0' : 'x';
	cleanup_free char *out = xmalloc(nt * 4 + 1);
	size_t n = 0;
	for (size_t k = 0; k < nt; k++) {
		const tok *t = &toks[k];
		switch (t->type) {
		case T_CHAR:
			out[n++] = t->ch;
			break;
		case T_ANY:
			out[n++] = one;
			break;
		case T_STAR:
		case T_GLOBSTAR:
			memcpy(out + n, star, strlen(star));
			n += strlen(star);
			break;
		case T_GLOBSTAR_DIR: /* no component at all */
			break;
		case T_CLASS: {
			int pick = class_has(t, (unsigned char)one) ? one : -1;
			for (int ch = '!'; pick < 0 && ch <= '~'; ch++)
				if (ch != '/' && class_has(t, (unsigned char)ch))
					pick = ch;
			if (pick < 0)
				return NULL;
			out[n++] = (char)pick;
			break;
		}
		}
	}
	out[n] = '\0';
	if (n == 0 || !field_matches(f, pat, out))
		return NULL;
	return steal_pointer(&out);
}

/* v when it matches pat (or pat is NULL), else a witness of pat, else v. */
static char *fit_field(push_field f, const char *pat, const char *v)
{
	if (pat && !field_matches(f, pat, v)) {
		char *w = witness(f, pat);
		if (w)
			return w;
	}
	return xstrdup(v);
}

/* The sample base made into a push rule r converts, as far as its patterns
 * let a sample be made (see witness()). */
static void fit_sample(const sc_serve_rule *r, const sc_serve_push *base, fitted *ret)
{
	fitted f = {0};
	f.registry = fit_field(FIELD_REGISTRY, r->registry, base->registry);
	f.repository = fit_field(FIELD_REPOSITORY, r->repository, base->repository);
	f.tag = fit_field(FIELD_TAG, r->tag, base->tag);
	f.shown = xasprintf("%s/%s:%s", f.registry, f.repository, f.tag);
	f.quoted = sc_quote(f.shown, 300);
	f.p = (sc_serve_push){
	        .source = r->from >= 0 ? (sc_source_kind)r->from : base->source,
	        .registry = f.registry,
	        .repository = f.repository,
	        .tag = f.tag,
	        .digest = base->digest,
	};
	*ret = f;
}

bool sc_serve_session_name_valid(const char *s)
{
	return s != NULL && sc_policy_valid_session_name(s);
}

/* ---- templates ---- */

int sc_serve_expand(const char *template_, const sc_serve_rule *r, const sc_serve_push *p, char **ret,
                    sconify_error_t *err)
{
	cleanup_free char *qt = sc_quote(template_, 120);
	size_t cap = MAX_EXPANDED, n = 0;
	cleanup_free char *out = xmalloc(cap + 1);
	for (const char *s = template_; *s;) {
		const char *val = NULL;
		size_t vlen = 0;
		if (*s == '}')
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "template `%s': `}' without `{'", qt);
		if (*s != '{') {
			val = s;
			vlen = 1;
			s++;
		} else {
			const char *close = strchr(s + 1, '}');
			const char *open = strchr(s + 1, '{');
			if (close == NULL || (open && open < close))
				return sc_error(err, SCONIFY_ERR_INVALID, 0, "template `%s': `{' without `}'",
				                qt);
			size_t wl = (size_t)(close - s - 1);
			const char *w = s + 1;
#define IS(word) (wl == sizeof(word) - 1 && memcmp(w, word, wl) == 0)
			const char *digest = p->digest;
			if (IS("registry")) {
				val = p->registry;
			} else if (IS("repository")) {
				val = p->repository;
			} else if (IS("tag")) {
				val = p->tag;
			} else if (IS("digest")) {
				val = digest;
			} else if (IS("digest_hex")) {
				const char *colon = digest ? strchr(digest, ':') : NULL;
				val = colon ? colon + 1 : digest;
			} else if (IS("name")) {
				const char *slash = p->repository ? strrchr(p->repository, '/') : NULL;
				val = slash ? slash + 1 : p->repository;
			} else if (IS("rule")) {
				val = r ? r->name : NULL;
			} else {
				cleanup_free char *qw = sc_quote_n(w, wl, 64);
				return sc_error(
				        err, SCONIFY_ERR_INVALID, 0,
				        "template `%s': unknown `{%s}' (registry, repository, tag, digest, "
				        "digest_hex, name or rule)",
				        qt, qw);
			}
#undef IS
			if (val == NULL || *val == '\0') {
				cleanup_free char *qw = sc_quote_n(w, wl, 64);
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "template `%s': no value for `{%s}'", qt, qw);
			}
			vlen = strlen(val);
			s = close + 1;
		}
		if (vlen > cap - n)
			return sc_error(err, SCONIFY_ERR_LIMIT, 0,
			                "template `%s': expands to more than %zu bytes", qt, cap);
		memcpy(out + n, val, vlen);
		n += vlen;
	}
	out[n] = '\0';
	*ret = steal_pointer(&out);
	return 0;
}
