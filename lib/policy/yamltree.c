/* SPDX-License-Identifier: Apache-2.0 */
/* The strict YAML tree and the problem list; see yamltree.h. */
#include "yamltree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/strutil.h"
#include "core/xalloc.h"
#include "policy.h"

/* ---- problems ---- */

void sc_yaml_fail(sc_yaml_ctx *c, size_t line, sconify_error_kind_t kind, const char *path, const char *fmt,
                  ...)
{
	if (c->n_problems >= c->max_problems) {
		c->dropped++;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *m = xvasprintf(fmt, ap);
	va_end(ap);
	c->problems = xreallocarray(c->problems, c->n_problems + 1, sizeof(*c->problems));
	sc_yaml_problem *e = &c->problems[c->n_problems++];
	e->line = line;
	e->seq = c->n_problems - 1;
	e->kind = kind;
	if (path && *path)
		e->msg = xasprintf("%s:%zu: %s: %s", c->what, line, path, m);
	else
		e->msg = xasprintf("%s:%zu: %s", c->what, line, m);
}

#define bad(c, line, path, ...) sc_yaml_fail(c, line, SCONIFY_ERR_INVALID, path, __VA_ARGS__)

static int problem_cmp(const void *a, const void *b)
{
	const sc_yaml_problem *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void sc_yaml_sort(sc_yaml_ctx *c)
{
	if (c->n_problems)
		qsort(c->problems, c->n_problems, sizeof(*c->problems), problem_cmp);
}

int sc_yaml_error(const sc_yaml_ctx *c, sconify_error_t *err)
{
	const sc_yaml_problem *first = &c->problems[0];
	size_t more = c->n_problems - 1 + c->dropped;
	if (more)
		return sc_error(err, first->kind, 0, "%s (and %zu more problem%s)", first->msg, more,
		                more == 1 ? "" : "s");
	return sc_error(err, first->kind, 0, "%s", first->msg);
}

char **sc_yaml_steal_messages(sc_yaml_ctx *c)
{
	char **out = xcalloc(c->n_problems + 2, sizeof(char *));
	for (size_t i = 0; i < c->n_problems; i++)
		out[i] = steal_pointer(&c->problems[i].msg);
	if (c->dropped)
		out[c->n_problems] = xasprintf("%s: %zu more problems not shown", c->what, c->dropped);
	return out;
}

void sc_yaml_ctx_free(sc_yaml_ctx *c)
{
	for (size_t i = 0; i < c->n_problems; i++)
		free(c->problems[i].msg);
	free(c->problems);
	c->problems = NULL;
	c->n_problems = 0;
}

/* ---- the tree ---- */

void sc_yaml_node_free(sc_yaml_node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		sc_yaml_node_free(n->kids[i]);
	free(n->kids);
	if (n->str) {
		sc_policy_wipe(n->str, n->len);
		free(n->str);
	}
	free(n);
}

static void node_add(sc_yaml_node *parent, sc_yaml_node *kid)
{
	if (parent->n == parent->alloc) {
		parent->alloc = parent->alloc ? 2 * parent->alloc : 8;
		parent->kids = xreallocarray(parent->kids, parent->alloc, sizeof(*parent->kids));
	}
	parent->kids[parent->n++] = kid;
}

/* Attaches n (owned) below the innermost open collection, or as the root. */
static bool attach(sc_yaml_ctx *c, const sc_yaml_limits *lim, sc_yaml_node **stack, size_t depth,
                   sc_yaml_node **root, sc_yaml_node *n)
{
	if (depth == 0) {
		*root = n;
		return true;
	}
	sc_yaml_node *parent = stack[depth - 1];
	if (parent->type == SC_YAML_MAP && parent->n % 2 == 0) {
		if (n->type != SC_YAML_SCALAR) {
			bad(c, n->line, NULL, "mapping keys must be plain strings");
			sc_yaml_node_free(n);
			return false;
		}
		if (parent->n / 2 >= lim->max_keys) {
			sc_yaml_fail(c, n->line, SCONIFY_ERR_LIMIT, NULL,
			             "too many keys in one mapping (more than %zu)", lim->max_keys);
			sc_yaml_node_free(n);
			return false;
		}
		for (size_t i = 0; i < parent->n; i += 2) {
			const sc_yaml_node *k = parent->kids[i];
			if (k->hash == n->hash && k->len == n->len && memcmp(k->str, n->str, n->len) == 0) {
				cleanup_free char *q = sc_quote_n(n->str, n->len, 64);
				bad(c, n->line, NULL, "duplicate key `%s' (first on line %zu)", q, k->line);
				sc_yaml_node_free(n);
				return false;
			}
		}
	}
	node_add(parent, n);
	return true;
}

/* Builds the tree of a document without NUL bytes, within the size cap. */
static sc_yaml_node *build_tree(sc_yaml_ctx *c, const char *data, size_t len, const sc_yaml_limits *lim)
{
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);

	cleanup_free sc_yaml_node **stack = xcalloc(lim->max_depth + 1, sizeof(*stack));
	size_t depth = 0, nodes = 0, docs = 0;
	sc_yaml_node *root = NULL;
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
			if (anchor) {
				bad(c, line, NULL, "YAML anchors and aliases are not allowed");
				ok = false;
			} else if (tag) {
				bad(c, line, NULL, "YAML tags are not allowed");
				ok = false;
			} else if (++nodes > lim->max_nodes) {
				sc_yaml_fail(c, line, SCONIFY_ERR_LIMIT, NULL,
				             "too many YAML nodes (more than %zu)", lim->max_nodes);
				ok = false;
			}
			if (!ok) {
				if (ev.type == YAML_SCALAR_EVENT)
					sc_policy_wipe(ev.data.scalar.value, ev.data.scalar.length);
				break;
			}
			sc_yaml_node *n = xzalloc(sizeof(*n));
			n->line = line;
			if (ev.type == YAML_SCALAR_EVENT) {
				n->type = SC_YAML_SCALAR;
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
				n->type = ev.type == YAML_SEQUENCE_START_EVENT ? SC_YAML_SEQ : SC_YAML_MAP;
				if (depth >= lim->max_depth) {
					sc_yaml_fail(c, line, SCONIFY_ERR_LIMIT, NULL,
					             "nested deeper than %zu levels", lim->max_depth);
					sc_yaml_node_free(n);
					ok = false;
					break;
				}
			}
			if (!attach(c, lim, stack, depth, &root, n)) {
				ok = false;
				break;
			}
			if (n->type != SC_YAML_SCALAR)
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
		sc_yaml_node_free(root);
		return NULL;
	}
	if (root == NULL)
		bad(c, 1, NULL, "%s", lim->empty);
	return root;
}

sc_yaml_node *sc_yaml_parse(sc_yaml_ctx *c, const char *data, size_t len, const sc_yaml_limits *lim)
{
	if (len > lim->max_bytes) {
		sc_yaml_fail(c, 1, SCONIFY_ERR_LIMIT, NULL, "larger than the limit of %zu bytes",
		             lim->max_bytes);
		return NULL;
	}
	if (memchr(data, '\0', len)) {
		bad(c, 1, NULL, "not valid YAML: contains a NUL byte");
		return NULL;
	}
	return build_tree(c, data, len, lim);
}

/* ---- schema helpers ---- */

char *sc_yaml_path_key(const char *parent, const char *key)
{
	return *parent ? xasprintf("%s.%s", parent, key) : xstrdup(key);
}

char *sc_yaml_path_index(const char *parent, size_t i)
{
	return xasprintf("%s[%zu]", parent, i);
}

const char *sc_yaml_type_name(sc_yaml_type t)
{
	return t == SC_YAML_MAP ? "a mapping" : t == SC_YAML_SEQ ? "a list" : "a string";
}

bool sc_yaml_want(sc_yaml_ctx *c, const sc_yaml_node *n, sc_yaml_type t, const char *path)
{
	if (n->type == t)
		return true;
	bad(c, n->line, path, "expected %s, found %s", sc_yaml_type_name(t), sc_yaml_type_name(n->type));
	return false;
}

void sc_yaml_fields(sc_yaml_ctx *c, const sc_yaml_node *map, const char *path, sc_yaml_field *fs, size_t nf)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const sc_yaml_node *k = map->kids[i];
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
			bad(c, k->line, path, "unknown %s `%s'", c->key_noun, q);
		}
	}
}
