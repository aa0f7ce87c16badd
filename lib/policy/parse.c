/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy parser. yamltree.c reads the text into a small tree, refusing
 * what a policy has no use for and an attacker does (anchors and aliases,
 * tags, several documents, duplicate keys), with caps on size, depth and
 * node count, and wiping every scalar when the tree is freed: some are
 * secrets. Then the tree is checked against the schema, collecting every
 * problem with its line and field path, so `sconify policy validate' can
 * list them all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strutil.h"
#include "core/xalloc.h"
#include "policy-internal.h"
#include "yamltree.h"

typedef struct {
	sc_yaml_ctx y;
	size_t n_files; /* across images, for the cap */
} pctx;

#define fail(c, ...) sc_yaml_fail(&(c)->y, __VA_ARGS__)
#define bad(c, line, path, ...) sc_yaml_fail(&(c)->y, line, SCONIFY_ERR_INVALID, path, __VA_ARGS__)

static const sc_yaml_limits limits = {
        .max_bytes = SC_POLICY_MAX_BYTES,
        .max_depth = SC_POLICY_MAX_DEPTH,
        .max_nodes = SC_POLICY_MAX_NODES,
        .max_keys = SC_POLICY_MAX_KEYS,
        .empty = "empty document: a policy is a mapping",
};

/* ---- schema helpers ---- */

/* A scalar as a string without NUL bytes, at most max bytes. NULL on error. */
static char *get_str(pctx *c, const sc_yaml_node *n, const char *path, size_t max)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_SCALAR, path))
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

static bool is_null(const sc_yaml_node *n)
{
	return n->type == SC_YAML_SCALAR && n->plain &&
	       (n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
	        strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0);
}

static const sc_yaml_node *required(pctx *c, const sc_yaml_node *map, const char *path,
                                    const sc_yaml_field *f)
{
	if (f->val == NULL) {
		cleanup_free char *p = sc_yaml_path_key(path, f->key);
		bad(c, map->line, p, "missing (required)");
	}
	return f->val;
}

/* A list of strings, each checked by ok(); NULL ok() accepts any. */
static bool get_strv(pctx *c, const sc_yaml_node *n, const char *path, size_t max_items, size_t max_len,
                     bool (*ok)(pctx *, const sc_yaml_node *, const char *, const char *), char ***ret,
                     size_t *ret_n)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_SEQ, path))
		return false;
	if (n->n > max_items) {
		fail(c, n->line, SCONIFY_ERR_LIMIT, path, "too many entries (more than %zu)", max_items);
		return false;
	}
	char **v = xcalloc(n->n + 1, sizeof(char *));
	size_t k = 0;
	bool all = true;
	for (size_t i = 0; i < n->n; i++) {
		cleanup_free char *p = sc_yaml_path_index(path, i);
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

static bool ok_hash(pctx *c, const sc_yaml_node *n, const char *path, const char *s)
{
	if (strlen(s) == SC_POLICY_HASH_HEX && sc_policy_lower_hex(s, SC_POLICY_HASH_HEX))
		return true;
	bad(c, n->line, path, "not 64 lowercase hex digits (a SHA-256)");
	return false;
}

static bool ok_access(pctx *c, const sc_yaml_node *n, const char *path, const char *s)
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

static bool ok_toleration(pctx *c, const sc_yaml_node *n, const char *path, const char *s)
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

static void parse_access(pctx *c, sc_policy *p, const sc_yaml_node *n, const char *path)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_MAP, path))
		return;
	sc_yaml_field fs[] = {{.key = "read"}, {.key = "update"}, {.key = "create_sessions"}};
	sc_yaml_fields(&c->y, n, path, fs, 3);
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
		cleanup_free char *fp = sc_yaml_path_key(path, fs[i].key);
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

static void parse_secret(pctx *c, sc_policy *p, const sc_yaml_node *n, const char *path)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_MAP, path))
		return;
	sc_yaml_field fs[] = {{.key = "name"}, {.key = "kind"}, {.key = "value"}, {.key = "size"}};
	sc_yaml_fields(&c->y, n, path, fs, 4);
	cleanup_free char *name = NULL;
	bool ok = true;
	if (required(c, n, path, &fs[0])) {
		cleanup_free char *fp = sc_yaml_path_key(path, "name");
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
		cleanup_free char *fp = sc_yaml_path_key(path, "kind");
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
		cleanup_free char *fp = sc_yaml_path_key(path, "value");
		const sc_yaml_node *v = fs[2].val;
		if (!sc_yaml_want(&c->y, v, SC_YAML_SCALAR, fp)) {
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
		cleanup_free char *fp = sc_yaml_path_key(path, "size");
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

static void parse_image(pctx *c, sc_policy *p, const sc_yaml_node *n, const char *path)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_MAP, path))
		return;
	sc_yaml_field fs[] = {{.key = "name"}, {.key = "injection_files"}};
	sc_yaml_fields(&c->y, n, path, fs, 2);
	if (!required(c, n, path, &fs[0]))
		return;
	cleanup_free char *fp = sc_yaml_path_key(path, "name");
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
	const sc_yaml_node *files = fs[1].val;
	if (files == NULL)
		return;
	cleanup_free char *lp = sc_yaml_path_key(path, "injection_files");
	if (!sc_yaml_want(&c->y, files, SC_YAML_SEQ, lp))
		return;
	for (size_t i = 0; i < files->n; i++) {
		cleanup_free char *ip = sc_yaml_path_index(lp, i);
		const sc_yaml_node *f = files->kids[i];
		if (!sc_yaml_want(&c->y, f, SC_YAML_MAP, ip))
			continue;
		if (++c->n_files > SC_POLICY_MAX_FILES) {
			fail(c, f->line, SCONIFY_ERR_LIMIT, ip,
			     "too many injection files (more than %u in all)", SC_POLICY_MAX_FILES);
			return;
		}
		sc_yaml_field ff[] = {{.key = "path"}, {.key = "content"}};
		sc_yaml_fields(&c->y, f, ip, ff, 2);
		const sc_yaml_node *pv = required(c, f, ip, &ff[0]);
		const sc_yaml_node *cv = required(c, f, ip, &ff[1]);
		if (!pv || !cv)
			continue;
		cleanup_free char *pp = sc_yaml_path_key(ip, "path");
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
		cleanup_free char *cp = sc_yaml_path_key(ip, "content");
		if (!sc_yaml_want(&c->y, cv, SC_YAML_SCALAR, cp))
			continue;
		check_refs(c, p, cv->line, cp, cv->str, cv->len);
		sc_policy_image_add_file(img, fpath, cv->str, cv->len);
	}
}

static bool ok_arg(pctx *c, const sc_yaml_node *n, const char *path, const char *s)
{
	(void)c, (void)n, (void)path, (void)s;
	return true;
}

static void parse_service(pctx *c, sc_policy *p, const sc_yaml_node *n, const char *path)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_MAP, path))
		return;
	sc_yaml_field fs[] = {{.key = "name"},        {.key = "image_name"}, {.key = "command"},
	                      {.key = "environment"}, {.key = "pwd"},        {.key = "fspf_path"},
	                      {.key = "fspf_key"},    {.key = "fspf_tag"},   {.key = "measurements"},
	                      {.key = "mrenclaves"},  {.key = "user"}};
	enum { F_NAME, F_IMAGE, F_CMD, F_ENV, F_PWD, F_FPATH, F_FKEY, F_FTAG, F_MEAS, F_MRE, F_USER, F_N };
	sc_yaml_fields(&c->y, n, path, fs, F_N);
	bool ok = true;
	cleanup_free char *name = NULL;
	if (required(c, n, path, &fs[F_NAME])) {
		cleanup_free char *fp = sc_yaml_path_key(path, "name");
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
		cleanup_free char *fp = sc_yaml_path_key(path, "image_name");
		tmp.image_name = get_str(c, fs[F_IMAGE].val, fp, SC_POLICY_MAX_NAME);
		if (tmp.image_name && sc_policy_find_image(p, tmp.image_name) == NULL) {
			cleanup_free char *q = sc_quote(tmp.image_name, 80);
			bad(c, fs[F_IMAGE].val->line, fp, "no image `%s' in images", q);
			ok = false;
		}
		ok &= tmp.image_name != NULL;
	}
	if (required(c, n, path, &fs[F_CMD])) {
		cleanup_free char *fp = sc_yaml_path_key(path, "command");
		const sc_yaml_node *cv = fs[F_CMD].val;
		if (cv->type == SC_YAML_SCALAR) {
			cleanup_free char *s = get_str(c, cv, fp, SC_POLICY_MAX_STRING);
			if (s)
				tmp.argv = sc_policy_split_command(s, &tmp.argc);
		} else if (cv->type == SC_YAML_SEQ) {
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
				cleanup_free char *ap = sc_yaml_path_index(fp, i);
				const sc_yaml_node *an = cv->type == SC_YAML_SEQ ? cv->kids[i] : cv;
				check_refs(c, p, an->line, cv->type == SC_YAML_SEQ ? ap : fp, tmp.argv[i],
				           strlen(tmp.argv[i]));
			}
		}
		ok &= tmp.argv != NULL;
	} else {
		ok = false;
	}
	if (fs[F_ENV].val) {
		cleanup_free char *fp = sc_yaml_path_key(path, "environment");
		const sc_yaml_node *ev = fs[F_ENV].val;
		if (sc_yaml_want(&c->y, ev, SC_YAML_MAP, fp)) {
			if (ev->n / 2 > SC_POLICY_MAX_ENV) {
				fail(c, ev->line, SCONIFY_ERR_LIMIT, fp, "more than %u variables",
				     SC_POLICY_MAX_ENV);
				ok = false;
			} else {
				for (size_t i = 0; i + 1 < ev->n; i += 2) {
					const sc_yaml_node *k = ev->kids[i], *v = ev->kids[i + 1];
					cleanup_free char *q = sc_quote_n(k->str, k->len, 64);
					cleanup_free char *vp = sc_yaml_path_key(fp, q);
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
		cleanup_free char *fp = sc_yaml_path_key(path, "pwd");
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
		cleanup_free char *fp = sc_yaml_path_key(path, "user");
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
		cleanup_free char *fp = sc_yaml_path_key(path, "fspf_path");
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
		cleanup_free char *fp = sc_yaml_path_key(path, "fspf_key");
		const sc_yaml_node *kv = fs[F_FKEY].val;
		if (!sc_yaml_want(&c->y, kv, SC_YAML_SCALAR, fp) || kv->len != 2 * SC_POLICY_KEY_BYTES ||
		    !sc_policy_lower_hex(kv->str, kv->len)) {
			if (kv->type == SC_YAML_SCALAR)
				bad(c, kv->line, fp, "not 64 lowercase hex digits (a 32-byte key)");
			ok = false;
		} else {
			sc_policy_hex_decode(kv->str, kv->len, tmp.fspf_key);
		}
	}
	if (fs[F_FTAG].val) {
		cleanup_free char *fp = sc_yaml_path_key(path, "fspf_tag");
		const sc_yaml_node *tv = fs[F_FTAG].val;
		if (!sc_yaml_want(&c->y, tv, SC_YAML_SCALAR, fp) || tv->len % 2 ||
		    tv->len < 2 * SC_POLICY_TAG_MIN_BYTES || tv->len > 2 * SC_POLICY_TAG_MAX_BYTES ||
		    !sc_policy_lower_hex(tv->str, tv->len)) {
			if (tv->type == SC_YAML_SCALAR)
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
		cleanup_free char *fp = sc_yaml_path_key(path, "measurements");
		ok &= get_strv(c, fs[F_MEAS].val, fp, SC_POLICY_MAX_LIST, 128, ok_hash, &tmp.measurements,
		               &tmp.n_measurements);
	}
	if (fs[F_MRE].val) {
		cleanup_free char *fp = sc_yaml_path_key(path, "mrenclaves");
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

static void parse_security(pctx *c, sc_policy *p, const sc_yaml_node *n, const char *path)
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_MAP, path))
		return;
	sc_yaml_field fs[] = {{.key = "attestation"}};
	sc_yaml_fields(&c->y, n, path, fs, 1);
	const sc_yaml_node *a = fs[0].val;
	if (a == NULL)
		return;
	cleanup_free char *ap = sc_yaml_path_key(path, "attestation");
	if (!sc_yaml_want(&c->y, a, SC_YAML_MAP, ap))
		return;
	sc_yaml_field af[] = {{.key = "mode"}, {.key = "tolerate"}};
	sc_yaml_fields(&c->y, a, ap, af, 2);
	if (af[0].val) {
		cleanup_free char *mp = sc_yaml_path_key(ap, "mode");
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
		cleanup_free char *tp = sc_yaml_path_key(ap, "tolerate");
		char **v = NULL;
		size_t nv = 0;
		if (get_strv(c, af[1].val, tp, SC_POLICY_MAX_LIST, 64, ok_toleration, &v, &nv)) {
			sc_strv_free(p->tolerate);
			p->tolerate = v;
			p->n_tolerate = nv;
		}
	}
}

static void parse_list(pctx *c, sc_policy *p, const sc_yaml_node *n, const char *path, size_t max,
                       const char *what, void (*one)(pctx *, sc_policy *, const sc_yaml_node *, const char *))
{
	if (!sc_yaml_want(&c->y, n, SC_YAML_SEQ, path))
		return;
	if (n->n > max) {
		fail(c, n->line, SCONIFY_ERR_LIMIT, path, "too many %s (more than %zu)", what, max);
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		cleanup_free char *ip = sc_yaml_path_index(path, i);
		one(c, p, n->kids[i], ip);
	}
}

static void parse_root(pctx *c, sc_policy *p, const sc_yaml_node *root)
{
	if (!sc_yaml_want(&c->y, root, SC_YAML_MAP, "")) {
		return;
	}
	sc_yaml_field fs[] = {{.key = "name"},          {.key = "version"},  {.key = "predecessor"},
	                      {.key = "access_policy"}, {.key = "services"}, {.key = "secrets"},
	                      {.key = "images"},        {.key = "security"}};
	enum { F_NAME, F_VERSION, F_PRED, F_ACCESS, F_SERVICES, F_SECRETS, F_IMAGES, F_SECURITY, F_N };
	sc_yaml_fields(&c->y, root, "", fs, F_N);
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

/* Parses into *ret_policy (NULL when there were errors); the errors, sorted
 * by line, stay in c. */
static void run(pctx *c, const char *data, size_t len, sc_policy **ret_policy)
{
	*ret_policy = NULL;
	_cleanup_(sc_yaml_node_freep) sc_yaml_node *root = sc_yaml_parse(&c->y, data, len, &limits);
	if (root == NULL)
		return;
	cleanup_policy sc_policy *p = sc_policy_new("");
	parse_root(c, p, root);
	sc_yaml_sort(&c->y);
	if (c->y.n_problems == 0)
		*ret_policy = steal_pointer(&p);
}

static void pctx_free(pctx *c)
{
	sc_yaml_ctx_free(&c->y);
}

static pctx pctx_new(const char *what)
{
	return (pctx){.y = {.what = what ? what : "policy",
	                    .key_noun = "field",
	                    .max_problems = SC_POLICY_MAX_ERRORS}};
}

int sc_policy_parse(const char *data, size_t len, const char *what, sc_policy **ret, sconify_error_t *err)
{
	_cleanup_(pctx_free) pctx c = pctx_new(what);
	sc_policy *p = NULL;
	run(&c, data, len, &p);
	if (p == NULL)
		return sc_yaml_error(&c.y, err);
	*ret = p;
	return 0;
}

char **sc_policy_validate(const char *data, size_t len, const char *what)
{
	_cleanup_(pctx_free) pctx c = pctx_new(what);
	cleanup_policy sc_policy *p = NULL;
	run(&c, data, len, &p);
	return sc_yaml_steal_messages(&c.y);
}
