/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy parser. libyaml turns the text into events; we build a small
 * tree of them, refusing what a policy has no use for and an attacker does
 * (anchors and aliases: billion laughs; tags; several documents; duplicate
 * keys, which libyaml accepts), with caps on depth and node count. Then the
 * tree is checked against the schema, collecting every problem with its line
 * and field path, so `sconify policy validate' can list them all.
 *
 * Every scalar's text is wiped when the tree is freed: some are secrets.
 * libyaml's own buffers are freed unwiped (its API gives no hook); the
 * caller's input holds the same bytes anyway.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/strutil.h"
#include "core/xalloc.h"
#include "policy-internal.h"

/* ---- errors ---- */

typedef struct {
	size_t line;
	size_t seq; /* order of discovery, to keep the sort stable */
	sconify_error_kind_t kind;
	char *msg;
} perr;

typedef struct {
	const char *what;
	perr *errs;
	size_t n_errs;
	size_t dropped;
	size_t n_files; /* across images, for the cap */
} pctx;

__attribute__((format(printf, 5, 6))) static void fail(pctx *c, size_t line, sconify_error_kind_t kind,
                                                       const char *path, const char *fmt, ...)
{
	if (c->n_errs >= SC_POLICY_MAX_ERRORS) {
		c->dropped++;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *m = xvasprintf(fmt, ap);
	va_end(ap);
	c->errs = xreallocarray(c->errs, c->n_errs + 1, sizeof(*c->errs));
	perr *e = &c->errs[c->n_errs++];
	e->line = line;
	e->seq = c->n_errs - 1;
	e->kind = kind;
	if (path && *path)
		e->msg = xasprintf("%s:%zu: %s: %s", c->what, line, path, m);
	else
		e->msg = xasprintf("%s:%zu: %s", c->what, line, m);
}

#define bad(c, line, path, ...) fail(c, line, SCONIFY_ERR_INVALID, path, __VA_ARGS__)

/* ---- the tree ---- */

typedef enum { PN_SCALAR, PN_MAP, PN_SEQ } pn_type;

typedef struct pnode pnode;
struct pnode {
	pn_type type;
	size_t line;
	char *str; /* scalar */
	size_t len;
	uint64_t hash; /* FNV-1a of str: duplicate keys are found by comparing these first */
	bool plain;
	pnode **kids; /* seq: items; map: key, value, key, value... */
	size_t n, alloc;
};

static void pnode_free(pnode *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		pnode_free(n->kids[i]);
	free(n->kids);
	if (n->str) {
		sc_policy_wipe(n->str, n->len);
		free(n->str);
	}
	free(n);
}
SC_DEFINE_CLEANUP(pnode *, pnode_free)

static void pnode_add(pnode *parent, pnode *kid)
{
	if (parent->n == parent->alloc) {
		parent->alloc = parent->alloc ? 2 * parent->alloc : 8;
		parent->kids = xreallocarray(parent->kids, parent->alloc, sizeof(*parent->kids));
	}
	parent->kids[parent->n++] = kid;
}

static bool refuse_decorations(pctx *c, size_t line, const yaml_char_t *anchor, const yaml_char_t *tag)
{
	if (anchor) {
		bad(c, line, NULL, "YAML anchors and aliases are not allowed");
		return false;
	}
	if (tag) {
		bad(c, line, NULL, "YAML tags are not allowed");
		return false;
	}
	return true;
}

/* Attaches n (owned) below the innermost open collection, or as the root. */
static bool attach(pctx *c, pnode **stack, size_t depth, pnode **root, pnode *n)
{
	if (depth == 0) {
		*root = n;
		return true;
	}
	pnode *parent = stack[depth - 1];
	if (parent->type == PN_MAP && parent->n % 2 == 0) {
		if (n->type != PN_SCALAR) {
			bad(c, n->line, NULL, "mapping keys must be plain strings");
			pnode_free(n);
			return false;
		}
		if (parent->n / 2 >= SC_POLICY_MAX_KEYS) {
			fail(c, n->line, SCONIFY_ERR_LIMIT, NULL,
			     "too many keys in one mapping (more than %u)", SC_POLICY_MAX_KEYS);
			pnode_free(n);
			return false;
		}
		for (size_t i = 0; i < parent->n; i += 2) {
			const pnode *k = parent->kids[i];
			if (k->hash == n->hash && k->len == n->len && memcmp(k->str, n->str, n->len) == 0) {
				cleanup_free char *q = sc_quote_n(n->str, n->len, 64);
				bad(c, n->line, NULL, "duplicate key `%s' (first on line %zu)", q, k->line);
				pnode_free(n);
				return false;
			}
		}
	}
	pnode_add(parent, n);
	return true;
}

/* Returns the document's root, or NULL after recording why. */
static pnode *build_tree(pctx *c, const char *data, size_t len)
{
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);

	pnode *stack[SC_POLICY_MAX_DEPTH + 1];
	size_t depth = 0, nodes = 0, docs = 0;
	pnode *root = NULL;
	bool ok = true, done = false;
	while (ok && !done) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			/* libyaml's problem texts are fixed strings; they never
			 * quote the input. */
			size_t line = parser.problem_mark.line + 1;
			if (parser.context)
				bad(c, line, NULL, "not valid YAML: %s %s",
				    parser.problem ? parser.problem : "error", parser.context);
			else
				bad(c, line, NULL, "not valid YAML: %s",
				    parser.problem ? parser.problem : "error");
			ok = false;
			break;
		}
		size_t line = ev.start_mark.line + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				bad(c, line, NULL, "more than one YAML document");
				ok = false;
			} else if (ev.data.document_start.tag_directives.start !=
			           ev.data.document_start.tag_directives.end) {
				bad(c, line, NULL, "YAML tags are not allowed");
				ok = false;
			}
			break;
		case YAML_ALIAS_EVENT:
			bad(c, line, NULL, "YAML anchors and aliases are not allowed");
			ok = false;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			const yaml_char_t *anchor, *tag;
			if (ev.type == YAML_SCALAR_EVENT)
				anchor = ev.data.scalar.anchor, tag = ev.data.scalar.tag;
			else if (ev.type == YAML_SEQUENCE_START_EVENT)
				anchor = ev.data.sequence_start.anchor, tag = ev.data.sequence_start.tag;
			else
				anchor = ev.data.mapping_start.anchor, tag = ev.data.mapping_start.tag;
			if (!refuse_decorations(c, line, anchor, tag)) {
				ok = false;
				break;
			}
			if (++nodes > SC_POLICY_MAX_NODES) {
				fail(c, line, SCONIFY_ERR_LIMIT, NULL, "too many YAML nodes (more than %u)",
				     SC_POLICY_MAX_NODES);
				ok = false;
				break;
			}
			pnode *n = xzalloc(sizeof(*n));
			n->line = line;
			if (ev.type == YAML_SCALAR_EVENT) {
				n->type = PN_SCALAR;
				n->len = ev.data.scalar.length;
				n->str = xmemdup(ev.data.scalar.value, n->len + 1);
				n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
				n->hash = UINT64_C(14695981039346656037);
				for (size_t i = 0; i < n->len; i++)
					n->hash = (n->hash ^ (unsigned char)n->str[i]) *
					          UINT64_C(1099511628211);
				/* libyaml's copy of a scalar is ours to wipe too. */
				sc_policy_wipe(ev.data.scalar.value, n->len);
			} else {
				n->type = ev.type == YAML_SEQUENCE_START_EVENT ? PN_SEQ : PN_MAP;
				if (depth >= SC_POLICY_MAX_DEPTH) {
					fail(c, line, SCONIFY_ERR_LIMIT, NULL, "nested deeper than %u levels",
					     SC_POLICY_MAX_DEPTH);
					pnode_free(n);
					ok = false;
					break;
				}
			}
			if (!attach(c, stack, depth, &root, n)) {
				ok = false;
				break;
			}
			if (n->type != PN_SCALAR)
				stack[depth++] = n;
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (!ok) {
		pnode_free(root);
		return NULL;
	}
	if (root == NULL)
		bad(c, 1, NULL, "empty document: a policy is a mapping");
	return root;
}

/* ---- schema helpers ---- */

static char *path_key(const char *parent, const char *key)
{
	return *parent ? xasprintf("%s.%s", parent, key) : xstrdup(key);
}

static char *path_index(const char *parent, size_t i)
{
	return xasprintf("%s[%zu]", parent, i);
}

static const char *type_name(const pnode *n)
{
	return n->type == PN_MAP ? "a mapping" : n->type == PN_SEQ ? "a list" : "a string";
}

static bool want(pctx *c, const pnode *n, pn_type t, const char *path)
{
	if (n->type == t)
		return true;
	bad(c, n->line, path, "expected %s, found %s",
	    t == PN_MAP   ? "a mapping"
	    : t == PN_SEQ ? "a list"
	                  : "a string",
	    type_name(n));
	return false;
}

/* A scalar as a string without NUL bytes, at most max bytes. NULL on error. */
static char *get_str(pctx *c, const pnode *n, const char *path, size_t max)
{
	if (!want(c, n, PN_SCALAR, path))
		return NULL;
	if (n->len > max) {
		fail(c, n->line, SCONIFY_ERR_LIMIT, path, "longer than %zu bytes", max);
		return NULL;
	}
	if (memchr(n->str, '\0', n->len)) {
		bad(c, n->line, path, "contains a NUL byte");
		return NULL;
	}
	return xmemdup(n->str, n->len + 1);
}

static bool is_null(const pnode *n)
{
	return n->type == PN_SCALAR && n->plain &&
	       (n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
	        strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0);
}

typedef struct {
	const char *key;
	const pnode *val;
	size_t line; /* of the key */
} field;

/* Sorts a mapping's entries into fs (known keys); every other key is an error. */
static void fields(pctx *c, const pnode *map, const char *path, field *fs, size_t nf)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const pnode *k = map->kids[i];
		bool known = false;
		for (size_t f = 0; f < nf; f++) {
			if (strlen(fs[f].key) == k->len && memcmp(fs[f].key, k->str, k->len) == 0) {
				fs[f].val = map->kids[i + 1];
				fs[f].line = k->line;
				known = true;
			}
		}
		if (!known) {
			cleanup_free char *q = sc_quote_n(k->str, k->len, 64);
			bad(c, k->line, path, "unknown field `%s'", q);
		}
	}
}

static const pnode *required(pctx *c, const pnode *map, const char *path, const field *f)
{
	if (f->val == NULL) {
		cleanup_free char *p = path_key(path, f->key);
		bad(c, map->line, p, "missing (required)");
	}
	return f->val;
}

/* A list of strings, each checked by ok(); NULL ok() accepts any. */
static bool get_strv(pctx *c, const pnode *n, const char *path, size_t max_items, size_t max_len,
                     bool (*ok)(pctx *, const pnode *, const char *, const char *), char ***ret,
                     size_t *ret_n)
{
	if (!want(c, n, PN_SEQ, path))
		return false;
	if (n->n > max_items) {
		fail(c, n->line, SCONIFY_ERR_LIMIT, path, "too many entries (more than %zu)", max_items);
		return false;
	}
	char **v = xcalloc(n->n + 1, sizeof(char *));
	size_t k = 0;
	bool all = true;
	for (size_t i = 0; i < n->n; i++) {
		cleanup_free char *p = path_index(path, i);
		char *s = get_str(c, n->kids[i], p, max_len);
		if (s == NULL || (ok && !ok(c, n->kids[i], p, s))) {
			free(s);
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

static bool ok_hash(pctx *c, const pnode *n, const char *path, const char *s)
{
	if (strlen(s) == SC_POLICY_HASH_HEX && sc_policy_lower_hex(s, SC_POLICY_HASH_HEX))
		return true;
	bad(c, n->line, path, "not 64 lowercase hex digits (a SHA-256)");
	return false;
}

static bool ok_access(pctx *c, const pnode *n, const char *path, const char *s)
{
	if (strcmp(s, "CREATOR") == 0 || strcmp(s, "ANY") == 0 || strcmp(s, "NONE") == 0 ||
	    (strlen(s) == SC_POLICY_HASH_HEX && sc_policy_lower_hex(s, SC_POLICY_HASH_HEX)))
		return true;
	cleanup_free char *q = sc_quote(s, 80);
	bad(c, n->line, path, "`%s' is not CREATOR, ANY, NONE or a client key hash (64 lowercase hex digits)",
	    q);
	return false;
}

static const char *const tolerations[] = {
        "debug-mode",
        "hyperthreading",
        "outdated-tcb",
        "insecure-igpu",
        "software-hardening-needed",
        "insecure-configuration",
};

static bool ok_toleration(pctx *c, const pnode *n, const char *path, const char *s)
{
	for (size_t i = 0; i < sizeof(tolerations) / sizeof(tolerations[0]); i++)
		if (strcmp(s, tolerations[i]) == 0)
			return true;
	cleanup_free char *q = sc_quote(s, 80);
	bad(c, n->line, path,
	    "unknown toleration `%s' (debug-mode, hyperthreading, outdated-tcb, insecure-igpu, "
	    "software-hardening-needed, insecure-configuration)",
	    q);
	return false;
}

/* Every `$$SCONE::...$$' in text names a secret of p. */
static void check_refs(pctx *c, const sc_policy *p, size_t line, const char *path, const char *text,
                       size_t len)
{
	size_t pos = 0;
	sc_policy_ref ref;
	int r;
	while ((r = sc_policy_next_ref(text, len, &pos, &ref)) != 0) {
		if (r < 0) {
			bad(c, line, path,
			    "malformed secret reference: `$$SCONE::' must be followed by a secret name, "
			    "optionally `:hex' or `:base64', and `$$'");
			continue;
		}
		cleanup_free char *name = xstrndup(ref.name, ref.name_len);
		if (sc_policy_find_secret(p, name) == NULL) {
			cleanup_free char *q = sc_quote(name, 80);
			bad(c, line, path, "reference to unknown secret `%s'", q);
		}
	}
}

/* ---- the sections ---- */

static void parse_access(pctx *c, sc_policy *p, const pnode *n, const char *path)
{
	if (!want(c, n, PN_MAP, path))
		return;
	field fs[] = {{.key = "read"}, {.key = "update"}, {.key = "create_sessions"}};
	fields(c, n, path, fs, 3);
	struct {
		char ***v;
		size_t *nv;
		bool may_be_empty;
	} lists[] = {{&p->read, &p->n_read, false},
	             {&p->update, &p->n_update, false},
	             {&p->create_sessions, &p->n_create_sessions, true}};
	for (size_t i = 0; i < 3; i++) {
		if (fs[i].val == NULL)
			continue;
		cleanup_free char *fp = path_key(path, fs[i].key);
		char **v = NULL;
		size_t nv = 0;
		if (!get_strv(c, fs[i].val, fp, SC_POLICY_MAX_LIST, 128, ok_access, &v, &nv))
			continue;
		if (nv == 0 && !lists[i].may_be_empty) {
			bad(c, fs[i].val->line, fp, "empty list (use NONE to allow nobody)");
			sc_strv_free(v);
			continue;
		}
		bool none = false;
		for (size_t k = 0; k < nv; k++)
			none |= strcmp(v[k], "NONE") == 0;
		if (none && nv > 1) {
			bad(c, fs[i].val->line, fp, "NONE cannot be combined with other entries");
			sc_strv_free(v);
			continue;
		}
		sc_strv_free(*lists[i].v);
		*lists[i].v = v;
		*lists[i].nv = nv;
	}
}

static void parse_secret(pctx *c, sc_policy *p, const pnode *n, const char *path)
{
	if (!want(c, n, PN_MAP, path))
		return;
	field fs[] = {{.key = "name"}, {.key = "kind"}, {.key = "value"}, {.key = "size"}};
	fields(c, n, path, fs, 4);
	cleanup_free char *name = NULL;
	bool ok = true;
	if (required(c, n, path, &fs[0])) {
		cleanup_free char *fp = path_key(path, "name");
		name = get_str(c, fs[0].val, fp, SC_POLICY_MAX_NAME);
		if (name && !sc_policy_valid_name(name)) {
			cleanup_free char *q = sc_quote(name, 80);
			bad(c, fs[0].val->line, fp, "invalid name `%s': letters, digits, `_' and `-' only",
			    q);
			ok = false;
		} else if (name && sc_policy_find_secret(p, name)) {
			cleanup_free char *q = sc_quote(name, 80);
			bad(c, fs[0].val->line, fp, "duplicate secret `%s'", q);
			ok = false;
		}
		ok &= name != NULL;
	} else {
		ok = false;
	}
	sc_policy_secret_kind kind = SC_POLICY_SECRET_ASCII;
	if (required(c, n, path, &fs[1])) {
		cleanup_free char *fp = path_key(path, "kind");
		cleanup_free char *k = get_str(c, fs[1].val, fp, 64);
		if (k && strcmp(k, "ascii") == 0)
			kind = SC_POLICY_SECRET_ASCII;
		else if (k && strcmp(k, "hex") == 0)
			kind = SC_POLICY_SECRET_HEX;
		else if (k && strcmp(k, "binary") == 0)
			kind = SC_POLICY_SECRET_BINARY;
		else {
			if (k) {
				cleanup_free char *q = sc_quote(k, 64);
				fail(c, fs[1].val->line, SCONIFY_ERR_UNSUPPORTED, fp,
				     "unsupported kind `%s' (ascii, hex or binary)", q);
			}
			ok = false;
		}
	} else {
		ok = false;
	}
	if ((fs[2].val == NULL) == (fs[3].val == NULL)) {
		bad(c, n->line, path, "needs exactly one of `value' and `size'");
		ok = false;
	}
	uint8_t *value = NULL;
	size_t vlen = 0, size = 0;
	if (fs[2].val) {
		/* Never quote the value: it is the secret. */
		cleanup_free char *fp = path_key(path, "value");
		const pnode *v = fs[2].val;
		if (!want(c, v, PN_SCALAR, fp)) {
			ok = false;
		} else if (v->len > 2 * SC_POLICY_MAX_SECRET_BYTES) {
			fail(c, v->line, SCONIFY_ERR_LIMIT, fp, "longer than %u bytes",
			     SC_POLICY_MAX_SECRET_BYTES);
			ok = false;
		} else if (kind == SC_POLICY_SECRET_ASCII) {
			bool printable = v->len > 0;
			for (size_t i = 0; i < v->len; i++)
				printable &= v->str[i] >= 0x20 && v->str[i] < 0x7f;
			if (!printable || v->len > SC_POLICY_MAX_SECRET_BYTES) {
				bad(c, v->line, fp, "not printable ASCII (1 to %u characters)",
				    SC_POLICY_MAX_SECRET_BYTES);
				ok = false;
			} else {
				value = xmemdup(v->str, v->len + 1);
				vlen = v->len;
			}
		} else if (kind == SC_POLICY_SECRET_HEX) {
			if (v->len == 0 || v->len % 2 || !sc_policy_hex_decode(v->str, v->len, NULL)) {
				bad(c, v->line, fp, "not an even number of hex digits");
				ok = false;
			} else {
				vlen = v->len / 2;
				value = xmalloc(vlen + 1);
				sc_policy_hex_decode(v->str, v->len, value);
				value[vlen] = 0;
			}
		} else if (!sc_policy_base64_decode(v->str, v->len, &value, &vlen) || vlen == 0) {
			sc_policy_wipe(value, vlen);
			free(value);
			value = NULL;
			bad(c, v->line, fp, "not base64 (standard alphabet, padded, no spaces)");
			ok = false;
		} else if (vlen > SC_POLICY_MAX_SECRET_BYTES) {
			fail(c, v->line, SCONIFY_ERR_LIMIT, fp, "longer than %u bytes",
			     SC_POLICY_MAX_SECRET_BYTES);
			ok = false;
		}
	}
	if (fs[3].val) {
		cleanup_free char *fp = path_key(path, "size");
		cleanup_free char *s = get_str(c, fs[3].val, fp, 32);
		unsigned long long u = 0;
		if (s &&
		    (!fs[3].val->plain || !sc_parse_u64(s, &u) || u == 0 || u > SC_POLICY_MAX_SECRET_BYTES)) {
			bad(c, fs[3].val->line, fp, "not a number from 1 to %u", SC_POLICY_MAX_SECRET_BYTES);
			ok = false;
		}
		ok &= s != NULL;
		size = (size_t)u;
	}
	if (ok) {
		sc_policy_secret *s = sc_policy_add_secret(p, name, kind, value, value ? vlen : size);
		(void)s;
	}
	if (value) {
		sc_policy_wipe(value, vlen);
		free(value);
	}
}

static void parse_image(pctx *c, sc_policy *p, const pnode *n, const char *path)
{
	if (!want(c, n, PN_MAP, path))
		return;
	field fs[] = {{.key = "name"}, {.key = "injection_files"}};
	fields(c, n, path, fs, 2);
	if (!required(c, n, path, &fs[0]))
		return;
	cleanup_free char *fp = path_key(path, "name");
	cleanup_free char *name = get_str(c, fs[0].val, fp, SC_POLICY_MAX_NAME);
	if (name == NULL)
		return;
	if (!sc_policy_valid_name(name)) {
		cleanup_free char *q = sc_quote(name, 80);
		bad(c, fs[0].val->line, fp, "invalid name `%s': letters, digits, `_' and `-' only", q);
		return;
	}
	if (sc_policy_find_image(p, name)) {
		cleanup_free char *q = sc_quote(name, 80);
		bad(c, fs[0].val->line, fp, "duplicate image `%s'", q);
		return;
	}
	sc_policy_image *img = sc_policy_add_image(p, name);
	const pnode *files = fs[1].val;
	if (files == NULL)
		return;
	cleanup_free char *lp = path_key(path, "injection_files");
	if (!want(c, files, PN_SEQ, lp))
		return;
	for (size_t i = 0; i < files->n; i++) {
		cleanup_free char *ip = path_index(lp, i);
		const pnode *f = files->kids[i];
		if (!want(c, f, PN_MAP, ip))
			continue;
		if (++c->n_files > SC_POLICY_MAX_FILES) {
			fail(c, f->line, SCONIFY_ERR_LIMIT, ip,
			     "too many injection files (more than %u in all)", SC_POLICY_MAX_FILES);
			return;
		}
		field ff[] = {{.key = "path"}, {.key = "content"}};
		fields(c, f, ip, ff, 2);
		const pnode *pv = required(c, f, ip, &ff[0]);
		const pnode *cv = required(c, f, ip, &ff[1]);
		if (!pv || !cv)
			continue;
		cleanup_free char *pp = path_key(ip, "path");
		cleanup_free char *fpath = get_str(c, pv, pp, SC_POLICY_MAX_PATH);
		if (fpath == NULL)
			continue;
		if (!sc_policy_valid_path(fpath, strlen(fpath))) {
			cleanup_free char *q = sc_quote(fpath, 80);
			bad(c, pv->line, pp,
			    "`%s' is not an absolute path without `.', `..', empty components or a trailing "
			    "`/'",
			    q);
			continue;
		}
		bool dup = false;
		for (size_t k = 0; k < img->n_files; k++)
			dup |= strcmp(img->files[k].path, fpath) == 0;
		if (dup) {
			cleanup_free char *q = sc_quote(fpath, 80);
			bad(c, pv->line, pp, "duplicate injection file `%s'", q);
			continue;
		}
		cleanup_free char *cp = path_key(ip, "content");
		if (!want(c, cv, PN_SCALAR, cp))
			continue;
		check_refs(c, p, cv->line, cp, cv->str, cv->len);
		sc_policy_image_add_file(img, fpath, cv->str, cv->len);
	}
}

static bool ok_arg(pctx *c, const pnode *n, const char *path, const char *s)
{
	(void)c, (void)n, (void)path, (void)s;
	return true;
}

static void parse_service(pctx *c, sc_policy *p, const pnode *n, const char *path)
{
	if (!want(c, n, PN_MAP, path))
		return;
	field fs[] = {{.key = "name"},        {.key = "image_name"}, {.key = "command"},
	              {.key = "environment"}, {.key = "pwd"},        {.key = "fspf_path"},
	              {.key = "fspf_key"},    {.key = "fspf_tag"},   {.key = "measurements"},
	              {.key = "mrenclaves"},  {.key = "user"}};
	enum { F_NAME, F_IMAGE, F_CMD, F_ENV, F_PWD, F_FPATH, F_FKEY, F_FTAG, F_MEAS, F_MRE, F_USER, F_N };
	fields(c, n, path, fs, F_N);
	bool ok = true;
	cleanup_free char *name = NULL;
	if (required(c, n, path, &fs[F_NAME])) {
		cleanup_free char *fp = path_key(path, "name");
		name = get_str(c, fs[F_NAME].val, fp, SC_POLICY_MAX_NAME);
		if (name && !sc_policy_valid_name(name)) {
			cleanup_free char *q = sc_quote(name, 80);
			bad(c, fs[F_NAME].val->line, fp,
			    "invalid name `%s': letters, digits, `_' and `-' only", q);
			ok = false;
		} else if (name && sc_policy_find_service(p, name)) {
			cleanup_free char *q = sc_quote(name, 80);
			bad(c, fs[F_NAME].val->line, fp, "duplicate service `%s'", q);
			ok = false;
		}
		ok &= name != NULL;
	} else {
		ok = false;
	}
	/* Parse everything even after a problem, to report every error. */
	sc_policy_service tmp = {0};
	if (fs[F_IMAGE].val) {
		cleanup_free char *fp = path_key(path, "image_name");
		tmp.image_name = get_str(c, fs[F_IMAGE].val, fp, SC_POLICY_MAX_NAME);
		if (tmp.image_name && sc_policy_find_image(p, tmp.image_name) == NULL) {
			cleanup_free char *q = sc_quote(tmp.image_name, 80);
			bad(c, fs[F_IMAGE].val->line, fp, "no image `%s' in images", q);
			ok = false;
		}
		ok &= tmp.image_name != NULL;
	}
	if (required(c, n, path, &fs[F_CMD])) {
		cleanup_free char *fp = path_key(path, "command");
		const pnode *cv = fs[F_CMD].val;
		if (cv->type == PN_SCALAR) {
			cleanup_free char *s = get_str(c, cv, fp, SC_POLICY_MAX_STRING);
			if (s)
				tmp.argv = sc_policy_split_command(s, &tmp.argc);
		} else if (cv->type == PN_SEQ) {
			get_strv(c, cv, fp, SC_POLICY_MAX_ARGS, SC_POLICY_MAX_STRING, ok_arg, &tmp.argv,
			         &tmp.argc);
		} else {
			bad(c, cv->line, fp, "expected a string or a list of strings, found a mapping");
		}
		if (tmp.argv && tmp.argc > SC_POLICY_MAX_ARGS) {
			fail(c, cv->line, SCONIFY_ERR_LIMIT, fp, "more than %u arguments",
			     SC_POLICY_MAX_ARGS);
			sc_strv_free(tmp.argv);
			tmp.argv = NULL;
		}
		if (tmp.argv && tmp.argc == 0) {
			bad(c, cv->line, fp, "empty command");
			sc_strv_free(tmp.argv);
			tmp.argv = NULL;
		}
		if (tmp.argv) {
			for (size_t i = 0; i < tmp.argc; i++) {
				cleanup_free char *ap = path_index(fp, i);
				const pnode *an = cv->type == PN_SEQ ? cv->kids[i] : cv;
				check_refs(c, p, an->line, cv->type == PN_SEQ ? ap : fp, tmp.argv[i],
				           strlen(tmp.argv[i]));
			}
		}
		ok &= tmp.argv != NULL;
	} else {
		ok = false;
	}
	if (fs[F_ENV].val) {
		cleanup_free char *fp = path_key(path, "environment");
		const pnode *ev = fs[F_ENV].val;
		if (want(c, ev, PN_MAP, fp)) {
			if (ev->n / 2 > SC_POLICY_MAX_ENV) {
				fail(c, ev->line, SCONIFY_ERR_LIMIT, fp, "more than %u variables",
				     SC_POLICY_MAX_ENV);
				ok = false;
			} else {
				for (size_t i = 0; i + 1 < ev->n; i += 2) {
					const pnode *k = ev->kids[i], *v = ev->kids[i + 1];
					cleanup_free char *q = sc_quote_n(k->str, k->len, 64);
					cleanup_free char *vp = path_key(fp, q);
					if (k->len == 0 || k->len > 1024 || memchr(k->str, '=', k->len) ||
					    memchr(k->str, '\0', k->len)) {
						bad(c, k->line, vp,
						    "invalid variable name (1 to 1024 bytes, no `=' or NUL)");
						ok = false;
						continue;
					}
					char *val = get_str(c, v, vp, SC_POLICY_MAX_STRING);
					if (val == NULL) {
						ok = false;
						continue;
					}
					check_refs(c, p, v->line, vp, val, strlen(val));
					tmp.env = xreallocarray(tmp.env, tmp.n_env + 1, sizeof(*tmp.env));
					tmp.env[tmp.n_env].key = xstrdup(k->str);
					tmp.env[tmp.n_env++].value = val;
				}
			}
		} else {
			ok = false;
		}
	}
	if (fs[F_PWD].val) {
		cleanup_free char *fp = path_key(path, "pwd");
		tmp.pwd = get_str(c, fs[F_PWD].val, fp, SC_POLICY_MAX_PATH);
		if (tmp.pwd && !sc_policy_valid_path(tmp.pwd, strlen(tmp.pwd)) && strcmp(tmp.pwd, "/") != 0) {
			cleanup_free char *q = sc_quote(tmp.pwd, 80);
			bad(c, fs[F_PWD].val->line, fp,
			    "`%s' is not an absolute path without `.', `..', empty components or a trailing "
			    "`/'",
			    q);
			ok = false;
		}
		ok &= tmp.pwd != NULL;
	}
	if (fs[F_USER].val) {
		cleanup_free char *fp = path_key(path, "user");
		tmp.user = get_str(c, fs[F_USER].val, fp, SC_POLICY_MAX_USER);
		if (tmp.user && !sc_policy_valid_user(tmp.user)) {
			cleanup_free char *q = sc_quote(tmp.user, 80);
			bad(c, fs[F_USER].val->line, fp,
			    "invalid user `%s': \"uid[:gid]\" or \"name[:group]\", no control characters, "
			    "spaces or `/'",
			    q);
			free(tmp.user);
			tmp.user = NULL;
		}
		ok &= tmp.user != NULL;
	}
	int nf = !!fs[F_FPATH].val + !!fs[F_FKEY].val + !!fs[F_FTAG].val;
	if (nf != 0 && nf != 3) {
		bad(c, n->line, path, "fspf_path, fspf_key and fspf_tag go together: all three or none");
		ok = false;
	}
	if (fs[F_FPATH].val) {
		cleanup_free char *fp = path_key(path, "fspf_path");
		tmp.fspf_path = get_str(c, fs[F_FPATH].val, fp, SC_POLICY_MAX_PATH);
		if (tmp.fspf_path && !sc_policy_valid_path(tmp.fspf_path, strlen(tmp.fspf_path))) {
			cleanup_free char *q = sc_quote(tmp.fspf_path, 80);
			bad(c, fs[F_FPATH].val->line, fp,
			    "`%s' is not an absolute path without `.', `..', empty components or a trailing "
			    "`/'",
			    q);
			ok = false;
		}
		ok &= tmp.fspf_path != NULL;
	}
	if (fs[F_FKEY].val) {
		/* The key is a secret: say what is wrong, never what it is. */
		cleanup_free char *fp = path_key(path, "fspf_key");
		const pnode *kv = fs[F_FKEY].val;
		if (!want(c, kv, PN_SCALAR, fp) || kv->len != 2 * SC_POLICY_KEY_BYTES ||
		    !sc_policy_lower_hex(kv->str, kv->len)) {
			if (kv->type == PN_SCALAR)
				bad(c, kv->line, fp, "not 64 lowercase hex digits (a 32-byte key)");
			ok = false;
		} else {
			sc_policy_hex_decode(kv->str, kv->len, tmp.fspf_key);
		}
	}
	if (fs[F_FTAG].val) {
		cleanup_free char *fp = path_key(path, "fspf_tag");
		const pnode *tv = fs[F_FTAG].val;
		if (!want(c, tv, PN_SCALAR, fp) || tv->len % 2 || tv->len < 2 * SC_POLICY_TAG_MIN_BYTES ||
		    tv->len > 2 * SC_POLICY_TAG_MAX_BYTES || !sc_policy_lower_hex(tv->str, tv->len)) {
			if (tv->type == PN_SCALAR)
				bad(c, tv->line, fp, "not 32 or 64 lowercase hex digits");
			ok = false;
		} else if (tv->len != 2 * SC_POLICY_TAG_MIN_BYTES && tv->len != 2 * SC_POLICY_TAG_MAX_BYTES) {
			bad(c, tv->line, fp, "not 32 or 64 lowercase hex digits");
			ok = false;
		} else {
			tmp.fspf_tag_len = tv->len / 2;
			sc_policy_hex_decode(tv->str, tv->len, tmp.fspf_tag);
		}
	}
	if (fs[F_MEAS].val) {
		cleanup_free char *fp = path_key(path, "measurements");
		ok &= get_strv(c, fs[F_MEAS].val, fp, SC_POLICY_MAX_LIST, 128, ok_hash, &tmp.measurements,
		               &tmp.n_measurements);
	}
	if (fs[F_MRE].val) {
		cleanup_free char *fp = path_key(path, "mrenclaves");
		ok &= get_strv(c, fs[F_MRE].val, fp, SC_POLICY_MAX_LIST, 128, ok_hash, &tmp.mrenclaves,
		               &tmp.n_mrenclaves);
	}
	if (ok && tmp.n_measurements == 0 && tmp.n_mrenclaves == 0) {
		bad(c, n->line, path,
		    "no accepted measurement: give `measurements' (or `mrenclaves' for SGX)");
		ok = false;
	}
	if (ok) {
		sc_policy_service *s = sc_policy_add_service(p, name);
		char *keep = s->name;
		sc_strv_free(s->argv);
		if (tmp.measurements)
			sc_strv_free(s->measurements);
		else
			tmp.measurements = s->measurements;
		if (tmp.mrenclaves)
			sc_strv_free(s->mrenclaves);
		else
			tmp.mrenclaves = s->mrenclaves;
		*s = tmp;
		s->name = keep;
		s->has_fspf = nf == 3;
		if (s->n_env)
			qsort(s->env, s->n_env, sizeof(*s->env), sc_policy_env_cmp);
		return;
	}
	/* Not kept: free what was parsed. */
	sc_policy_service *t = &tmp;
	sc_policy_wipe(t->fspf_key, sizeof(t->fspf_key));
	free(t->image_name);
	sc_strv_free(t->argv);
	for (size_t i = 0; i < t->n_env; i++)
		free(t->env[i].key), free(t->env[i].value);
	free(t->env);
	free(t->pwd);
	free(t->user);
	free(t->fspf_path);
	sc_strv_free(t->measurements);
	sc_strv_free(t->mrenclaves);
}

static void parse_security(pctx *c, sc_policy *p, const pnode *n, const char *path)
{
	if (!want(c, n, PN_MAP, path))
		return;
	field fs[] = {{.key = "attestation"}};
	fields(c, n, path, fs, 1);
	const pnode *a = fs[0].val;
	if (a == NULL)
		return;
	cleanup_free char *ap = path_key(path, "attestation");
	if (!want(c, a, PN_MAP, ap))
		return;
	field af[] = {{.key = "mode"}, {.key = "tolerate"}};
	fields(c, a, ap, af, 2);
	if (af[0].val) {
		cleanup_free char *mp = path_key(ap, "mode");
		cleanup_free char *m = get_str(c, af[0].val, mp, 64);
		if (m && strcmp(m, "hardware") == 0) {
			p->mode = SC_POLICY_MODE_HARDWARE;
		} else if (m && strcmp(m, "sim") == 0) {
			p->mode = SC_POLICY_MODE_SIM;
		} else if (m) {
			cleanup_free char *q = sc_quote(m, 64);
			fail(c, af[0].val->line, SCONIFY_ERR_UNSUPPORTED, mp,
			     "unsupported mode `%s' (hardware, or sim to allow software-only attestation)",
			     q);
		}
	}
	if (af[1].val) {
		cleanup_free char *tp = path_key(ap, "tolerate");
		char **v = NULL;
		size_t nv = 0;
		if (get_strv(c, af[1].val, tp, SC_POLICY_MAX_LIST, 64, ok_toleration, &v, &nv)) {
			sc_strv_free(p->tolerate);
			p->tolerate = v;
			p->n_tolerate = nv;
		}
	}
}

static void parse_list(pctx *c, sc_policy *p, const pnode *n, const char *path, size_t max, const char *what,
                       void (*one)(pctx *, sc_policy *, const pnode *, const char *))
{
	if (!want(c, n, PN_SEQ, path))
		return;
	if (n->n > max) {
		fail(c, n->line, SCONIFY_ERR_LIMIT, path, "too many %s (more than %zu)", what, max);
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		cleanup_free char *ip = path_index(path, i);
		one(c, p, n->kids[i], ip);
	}
}

static void parse_root(pctx *c, sc_policy *p, const pnode *root)
{
	if (!want(c, root, PN_MAP, "")) {
		return;
	}
	field fs[] = {{.key = "name"},          {.key = "version"},  {.key = "predecessor"},
	              {.key = "access_policy"}, {.key = "services"}, {.key = "secrets"},
	              {.key = "images"},        {.key = "security"}};
	enum { F_NAME, F_VERSION, F_PRED, F_ACCESS, F_SERVICES, F_SECRETS, F_IMAGES, F_SECURITY, F_N };
	fields(c, root, "", fs, F_N);
	if (required(c, root, "", &fs[F_VERSION])) {
		cleanup_free char *v = get_str(c, fs[F_VERSION].val, "version", 64);
		if (v && strcmp(v, SC_POLICY_VERSION) != 0) {
			cleanup_free char *q = sc_quote(v, 64);
			fail(c, fs[F_VERSION].val->line, SCONIFY_ERR_UNSUPPORTED, "version",
			     "unsupported version `%s' (" SC_POLICY_VERSION " is supported)", q);
		}
	}
	if (required(c, root, "", &fs[F_NAME])) {
		char *name = get_str(c, fs[F_NAME].val, "name", SC_POLICY_MAX_NAME);
		if (name && !sc_policy_valid_session_name(name)) {
			cleanup_free char *q = sc_quote(name, 80);
			bad(c, fs[F_NAME].val->line, "name",
			    "invalid session name `%s': [namespace/]name of letters, digits, `_' and `-'", q);
		}
		if (name) {
			free(p->name);
			p->name = name;
		}
	}
	if (fs[F_PRED].val && !is_null(fs[F_PRED].val)) {
		char *pred = get_str(c, fs[F_PRED].val, "predecessor", 128);
		if (pred && ok_hash(c, fs[F_PRED].val, "predecessor", pred))
			p->predecessor = pred;
		else
			free(pred);
	}
	if (fs[F_ACCESS].val)
		parse_access(c, p, fs[F_ACCESS].val, "access_policy");
	/* Secrets and images first: services and contents refer to them. */
	if (fs[F_SECRETS].val)
		parse_list(c, p, fs[F_SECRETS].val, "secrets", SC_POLICY_MAX_SECRETS, "secrets",
		           parse_secret);
	if (fs[F_IMAGES].val)
		parse_list(c, p, fs[F_IMAGES].val, "images", SC_POLICY_MAX_IMAGES, "images", parse_image);
	if (fs[F_SERVICES].val)
		parse_list(c, p, fs[F_SERVICES].val, "services", SC_POLICY_MAX_SERVICES, "services",
		           parse_service);
	if (fs[F_SECURITY].val)
		parse_security(c, p, fs[F_SECURITY].val, "security");
}

static int errcmp(const void *a, const void *b)
{
	const perr *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Parses into *ret_policy (NULL when there were errors); the errors, sorted
 * by line, stay in c. */
static void run(pctx *c, const char *data, size_t len, sc_policy **ret_policy)
{
	*ret_policy = NULL;
	if (len > SC_POLICY_MAX_BYTES) {
		fail(c, 1, SCONIFY_ERR_LIMIT, NULL, "larger than the limit of %u bytes", SC_POLICY_MAX_BYTES);
		return;
	}
	if (memchr(data, '\0', len)) {
		bad(c, 1, NULL, "not valid YAML: contains a NUL byte");
		return;
	}
	_cleanup_(pnode_freep) pnode *root = build_tree(c, data, len);
	if (root == NULL)
		return;
	cleanup_policy sc_policy *p = sc_policy_new("");
	parse_root(c, p, root);
	if (c->n_errs)
		qsort(c->errs, c->n_errs, sizeof(*c->errs), errcmp);
	if (c->n_errs == 0)
		*ret_policy = steal_pointer(&p);
}

static void pctx_free(pctx *c)
{
	for (size_t i = 0; i < c->n_errs; i++)
		free(c->errs[i].msg);
	free(c->errs);
}

int sc_policy_parse(const char *data, size_t len, const char *what, sc_policy **ret, sconify_error_t *err)
{
	_cleanup_(pctx_free) pctx c = {.what = what ? what : "policy"};
	sc_policy *p = NULL;
	run(&c, data, len, &p);
	if (p == NULL) {
		size_t more = c.n_errs - 1 + c.dropped;
		if (more)
			return sc_error(err, c.errs[0].kind, 0, "%s (and %zu more problem%s)", c.errs[0].msg,
			                more, more == 1 ? "" : "s");
		return sc_error(err, c.errs[0].kind, 0, "%s", c.errs[0].msg);
	}
	*ret = p;
	return 0;
}

char **sc_policy_validate(const char *data, size_t len, const char *what)
{
	_cleanup_(pctx_free) pctx c = {.what = what ? what : "policy"};
	cleanup_policy sc_policy *p = NULL;
	run(&c, data, len, &p);
	char **out = xcalloc(c.n_errs + 2, sizeof(char *));
	for (size_t i = 0; i < c.n_errs; i++)
		out[i] = steal_pointer(&c.errs[i].msg);
	if (c.dropped)
		out[c.n_errs] = xasprintf("%s: %zu more problems not shown", c.what, c.dropped);
	return out;
}
