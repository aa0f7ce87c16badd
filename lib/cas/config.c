/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration a release carries, as bytes (docs/attestation.md): every
 * string length-prefixed, every list counted, fixed order, so the runtime
 * reads it without a JSON parser and every byte of a value survives. */
#include <stdlib.h>
#include <string.h>

#include "cas/cas.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "policy/policy-internal.h"

#define CONFIG_MAGIC "sconify-cas-config-v2"

static void put_be32(sc_wbuf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	sc_wbuf_append(b, x, 4);
}

static void put_bytes(sc_wbuf *b, const void *p, size_t n)
{
	put_be32(b, (uint32_t)n);
	sc_wbuf_append(b, p, n);
}

static void put_str(sc_wbuf *b, const char *s)
{
	put_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

static size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

void sc_cas_config_encode(const char *config_id, const char *session_hash, const sc_policy_config *c,
                          uint8_t **ret, size_t *ret_len)
{
	_cleanup_(sc_wbuf_free) sc_wbuf b = {0};
	put_str(&b, CONFIG_MAGIC);
	put_str(&b, config_id);
	put_str(&b, session_hash);
	size_t argc = strv_len(c->argv), envc = strv_len(c->env);
	put_be32(&b, (uint32_t)argc);
	for (size_t i = 0; i < argc; i++)
		put_str(&b, c->argv[i]);
	put_be32(&b, (uint32_t)envc);
	for (size_t i = 0; i < envc; i++)
		put_str(&b, c->env[i]);
	put_str(&b, c->pwd);
	put_str(&b, c->user);
	put_str(&b, c->fspf_path);
	if (c->fspf_path) {
		sc_wbuf_append(&b, c->fspf_key, SC_POLICY_KEY_BYTES);
		put_bytes(&b, c->fspf_tag, c->fspf_tag_len);
	}
	put_be32(&b, (uint32_t)c->n_files);
	for (size_t i = 0; i < c->n_files; i++) {
		put_str(&b, c->files[i].path);
		put_bytes(&b, c->files[i].content, c->files[i].len);
	}
	size_t len = 0;
	*ret = (uint8_t *)sc_wbuf_steal(&b, &len);
	*ret_len = len;
}

typedef struct {
	const uint8_t *p;
	size_t left;
} cursor;

static int get_be32(cursor *c, uint32_t *v, const char *field, sconify_error_t *err)
{
	if (c->left < 4)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "configuration: %s: truncated", field);
	*v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 | c->p[3];
	c->p += 4;
	c->left -= 4;
	return 0;
}

static int get_raw(cursor *c, void *out, size_t n, const char *field, sconify_error_t *err)
{
	if (c->left < n)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "configuration: %s: truncated", field);
	memcpy(out, c->p, n);
	c->p += n;
	c->left -= n;
	return 0;
}

/* A length-prefixed value, copied NUL-terminated; text refuses NUL bytes. */
static int get_str(cursor *c, bool text, const char *field, char **ret, size_t *ret_len, sconify_error_t *err)
{
	uint32_t n = 0;
	if (get_be32(c, &n, field, err) < 0)
		return -1;
	if (n > c->left)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "configuration: %s: truncated", field);
	if (text && memchr(c->p, 0, n))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "configuration: %s: holds a NUL byte", field);
	char *s = xmalloc((size_t)n + 1);
	memcpy(s, c->p, n);
	s[n] = 0;
	c->p += n;
	c->left -= n;
	*ret = s;
	if (ret_len)
		*ret_len = n;
	return 0;
}

static int get_strv(cursor *c, size_t max, const char *field, char ***ret, sconify_error_t *err)
{
	uint32_t n = 0;
	if (get_be32(c, &n, field, err) < 0)
		return -1;
	/* Each element takes at least its 4-byte length. */
	if (n > max || n > c->left / 4)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "configuration: %s: too many entries (%u)", field,
		                n);
	char **v = xcalloc((size_t)n + 1, sizeof(char *));
	for (uint32_t i = 0; i < n; i++)
		if (get_str(c, true, field, &v[i], NULL, err) < 0) {
			for (uint32_t j = 0; j < i; j++)
				sc_policy_wipe_free(v[j]);
			free(v);
			return -1;
		}
	*ret = v;
	return 0;
}

void sc_cas_config_free(sc_cas_config *c)
{
	if (c == NULL)
		return;
	free(c->config_id);
	free(c->session_hash);
	sc_policy_config_free(c->config);
	free(c);
}

int sc_cas_config_decode(const uint8_t *data, size_t len, sc_cas_config **ret, sconify_error_t *err)
{
	if (len > SC_CAS_CONFIG_MAX_BYTES)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "configuration: larger than %u bytes",
		                SC_CAS_CONFIG_MAX_BYTES);
	cursor c = {data, len};
	cleanup_free char *magic = NULL;
	if (get_str(&c, true, "version", &magic, NULL, err) < 0)
		return -1;
	if (strcmp(magic, CONFIG_MAGIC) != 0) {
		cleanup_free char *q = sc_quote(magic, 40);
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0, "configuration: unsupported version `%s'",
		                q);
	}
	_cleanup_(sc_cas_config_freep) sc_cas_config *out = xzalloc(sizeof(*out));
	out->config = xzalloc(sizeof(*out->config));
	sc_policy_config *pc = out->config;
	if (get_str(&c, true, "config_id", &out->config_id, NULL, err) < 0 ||
	    get_str(&c, true, "session_hash", &out->session_hash, NULL, err) < 0 ||
	    get_strv(&c, SC_POLICY_MAX_ARGS, "argv", &pc->argv, err) < 0 ||
	    get_strv(&c, SC_POLICY_MAX_ENV, "env", &pc->env, err) < 0)
		return -1;
	if (pc->argv[0] == NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "configuration: argv: empty command");
	for (size_t i = 0; pc->env[i]; i++)
		if (pc->env[i][0] == '=' || strchr(pc->env[i], '=') == NULL)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "configuration: env[%zu]: not NAME=value", i);
	cleanup_free char *pwd = NULL, *user = NULL, *fspf_path = NULL;
	size_t pwd_len = 0, user_len = 0, path_len = 0;
	if (get_str(&c, true, "pwd", &pwd, &pwd_len, err) < 0 ||
	    get_str(&c, true, "user", &user, &user_len, err) < 0 ||
	    get_str(&c, true, "fspf_path", &fspf_path, &path_len, err) < 0)
		return -1;
	if (user_len > 0) {
		if (!sc_policy_valid_user(user))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "configuration: user: not \"uid[:gid]\" or \"name[:group]\"");
		pc->user = steal_pointer(&user);
	}
	if (pwd_len > 0) {
		if (!(pwd_len == 1 && pwd[0] == '/') && !sc_policy_valid_path(pwd, pwd_len))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "configuration: pwd: not an absolute path");
		pc->pwd = steal_pointer(&pwd);
	}
	if (path_len > 0) {
		if (!sc_policy_valid_path(fspf_path, path_len))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "configuration: fspf_path: not an absolute path");
		pc->fspf_path = steal_pointer(&fspf_path);
		uint32_t tag_len = 0;
		if (get_raw(&c, pc->fspf_key, SC_POLICY_KEY_BYTES, "fspf_key", err) < 0 ||
		    get_be32(&c, &tag_len, "fspf_tag", err) < 0)
			return -1;
		if (tag_len != SC_POLICY_TAG_MIN_BYTES && tag_len != SC_POLICY_TAG_MAX_BYTES)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "configuration: fspf_tag: %u bytes, not 16 or 32", tag_len);
		if (get_raw(&c, pc->fspf_tag, tag_len, "fspf_tag", err) < 0)
			return -1;
		pc->fspf_tag_len = tag_len;
	}
	uint32_t n_files = 0;
	if (get_be32(&c, &n_files, "files", err) < 0)
		return -1;
	if (n_files > SC_POLICY_MAX_FILES || n_files > c.left / 8)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "configuration: files: too many entries (%u)",
		                n_files);
	pc->files = xcalloc(n_files ? n_files : 1, sizeof(*pc->files));
	for (uint32_t i = 0; i < n_files; i++) {
		sc_policy_file *f = &pc->files[i];
		size_t plen = 0;
		if (get_str(&c, true, "files[].path", &f->path, &plen, err) < 0)
			return -1;
		pc->n_files++;
		if (!sc_policy_valid_path(f->path, plen))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "configuration: files[%u]: not an absolute path", i);
		if (get_str(&c, false, "files[].content", &f->content, &f->len, err) < 0)
			return -1;
	}
	if (c.left != 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "configuration: trailing data (%zu bytes)",
		                c.left);
	*ret = steal_pointer(&out);
	return 0;
}
