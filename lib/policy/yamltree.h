/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The strict YAML reader that session policies (parse.c) and the
 * configuration of `sconify serve' (lib/serve/config.c) share. libyaml turns
 * the text into events; we build a small tree of them, refusing what neither
 * document has a use for and an attacker or a typo does (anchors and
 * aliases: billion laughs; tags; several documents; duplicate keys, which
 * libyaml accepts), with caps on size, depth, node count and keys. The
 * caller then checks the tree against its schema with the helpers below,
 * collecting every problem with its line and key path ("session.yml:12:
 * services[0].fspf_key: ..."), so that validation can list them all.
 *
 * Every scalar's text, and libyaml's copy of it, is wiped: scalars may be
 * secrets. libyaml's input buffers are freed unwiped (its API gives no
 * hook); the caller's input holds the same bytes anyway.
 *
 * Here rather than in lib/core: it needs libyaml, which lib/policy owns
 * (the static enclave runtime already links it for the policy parser).
 */
#ifndef SC_POLICY_YAMLTREE_H
#define SC_POLICY_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cleanup.h"
#include "core/error.h"

/* ---- problems ---- */

typedef struct {
	size_t line;
	size_t seq; /* order of discovery, to keep the sort stable */
	sconify_error_kind_t kind;
	char *msg; /* "what:line: path: text" */
} sc_yaml_problem;

/* The problems found in one document. The caller sets what, key_noun and
 * max_problems; the rest starts zeroed. */
typedef struct {
	const char *what;     /* the document, in messages */
	const char *key_noun; /* "unknown <key_noun> `x'": "field", "key" */
	size_t max_problems;  /* kept; the rest are only counted in dropped */
	sc_yaml_problem *problems;
	size_t n_problems;
	size_t dropped;
} sc_yaml_ctx;

/* Records a problem at line; path (NULL or "" for none) is the key path. */
__attribute__((format(printf, 5, 6))) void
sc_yaml_fail(sc_yaml_ctx *c, size_t line, sconify_error_kind_t kind, const char *path, const char *fmt, ...);
/* Sorts the problems by line, keeping the order of discovery within one. */
void sc_yaml_sort(sc_yaml_ctx *c);
/* The first problem as err, "(and N more problems)" when there are more;
 * returns -1. There must be at least one. */
int sc_yaml_error(const sc_yaml_ctx *c, sconify_error_t *err);
/* Every message, NULL-terminated, with a last "N more problems not shown"
 * when some were dropped; the messages are taken from c. */
char **sc_yaml_steal_messages(sc_yaml_ctx *c);
void sc_yaml_ctx_free(sc_yaml_ctx *c);

/* ---- the tree ---- */

typedef enum { SC_YAML_SCALAR, SC_YAML_MAP, SC_YAML_SEQ } sc_yaml_type;

typedef struct sc_yaml_node sc_yaml_node;
struct sc_yaml_node {
	sc_yaml_type type;
	size_t line;
	char *str; /* scalar, NUL-terminated (may hold NUL bytes before len) */
	size_t len;
	uint64_t hash;       /* FNV-1a of str: duplicate keys are found by comparing these first */
	bool plain;          /* a plain scalar (not quoted, not a block) */
	sc_yaml_node **kids; /* seq: items; map: key, value, key, value... */
	size_t n, alloc;
};

/* Wipes every scalar. */
void sc_yaml_node_free(sc_yaml_node *n);
SC_DEFINE_CLEANUP(sc_yaml_node *, sc_yaml_node_free)

typedef struct {
	size_t max_bytes; /* the whole document */
	size_t max_depth; /* nesting of collections */
	size_t max_nodes;
	size_t max_keys;   /* keys of one mapping */
	const char *empty; /* the problem an empty document is: "empty document: ..." */
} sc_yaml_limits;

/* Parses one document of len bytes into a tree. Returns its root, or NULL
 * after recording the problem in c (the reader stops at the first). */
sc_yaml_node *sc_yaml_parse(sc_yaml_ctx *c, const char *data, size_t len, const sc_yaml_limits *lim);

/* ---- checking a tree against a schema ---- */

char *sc_yaml_path_key(const char *parent, const char *key); /* "a.b"; "b" below "" */
char *sc_yaml_path_index(const char *parent, size_t i);      /* "a[3]" */
/* "a mapping", "a list", "a string" */
const char *sc_yaml_type_name(sc_yaml_type t);
/* Whether n is of type t; records "expected ..., found ..." if not. */
bool sc_yaml_want(sc_yaml_ctx *c, const sc_yaml_node *n, sc_yaml_type t, const char *path);

typedef struct {
	const char *key;
	const sc_yaml_node *val; /* set by sc_yaml_fields() when the key is there */
	size_t line;             /* of the key */
} sc_yaml_field;

/* Sorts a mapping's entries into fs (the known keys); every other key is a
 * problem ("unknown field `x'"). Keys are quoted: a key is never a secret. */
void sc_yaml_fields(sc_yaml_ctx *c, const sc_yaml_node *map, const char *path, sc_yaml_field *fs, size_t nf);

#endif
