/* SPDX-License-Identifier: Apache-2.0 */
#include "layer/path.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

#define WH_PREFIX ".wh."
#define WH_META_PREFIX ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"

bool sc_layer_path_next(const char *s, size_t len, size_t *pos, const char **ret_comp, size_t *ret_len)
{
	size_t i = *pos;
	while (i < len && s[i] == '/')
		i++;
	if (i >= len) {
		*pos = len;
		return false;
	}
	size_t start = i;
	const char *slash = memchr(s + i, '/', len - i);
	i = slash ? (size_t)(slash - s) : len;
	*ret_comp = s + start;
	*ret_len = i - start;
	*pos = i;
	return true;
}

static bool is_dot(const char *c, size_t n)
{
	return n == 1 && c[0] == '.';
}

static bool is_dotdot(const char *c, size_t n)
{
	return n == 2 && c[0] == '.' && c[1] == '.';
}

int sc_layer_path_normalize(const char *raw, const sconify_limits_t *limits, char **ret_path,
                            sconify_error_t *err)
{
	if (raw == NULL || raw[0] == '\0')
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "empty path");
	size_t len = strlen(raw);
	if (len > limits->max_path_bytes)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "path longer than %llu bytes",
		                (unsigned long long)limits->max_path_bytes);
	if (raw[0] == '/')
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "absolute path");

	/* The result is never longer than the input. */
	char *out = xmalloc(len + 1);
	size_t n = 0, depth = 0, pos = 0, clen;
	const char *c;
	while (sc_layer_path_next(raw, len, &pos, &c, &clen)) {
		if (is_dot(c, clen))
			continue;
		if (is_dotdot(c, clen)) {
			free(out);
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "path has a `..' component");
		}
		if (++depth > limits->max_path_depth) {
			free(out);
			return sc_error(err, SCONIFY_ERR_LIMIT, 0, "path deeper than %llu components",
			                (unsigned long long)limits->max_path_depth);
		}
		if (n > 0)
			out[n++] = '/';
		memcpy(out + n, c, clen);
		n += clen;
	}
	out[n] = '\0';
	*ret_path = out;
	return 0;
}

bool sc_layer_symlink_escapes(const char *entry_path, const char *target)
{
	if (target[0] == '/')
		return false;
	/* Depth of the directory holding the entry: its components but the last. */
	size_t depth = 0, pos = 0, clen, len = strlen(entry_path);
	const char *c;
	while (sc_layer_path_next(entry_path, len, &pos, &c, &clen))
		depth++;
	if (depth > 0)
		depth--;
	len = strlen(target);
	pos = 0;
	while (sc_layer_path_next(target, len, &pos, &c, &clen)) {
		if (is_dot(c, clen))
			continue;
		if (is_dotdot(c, clen)) {
			if (depth == 0)
				return true;
			depth--;
		} else {
			depth++;
		}
	}
	return false;
}

int sc_layer_path_whiteout(const char *path, sc_path_whiteout *ret_kind, char **ret_target,
                           sconify_error_t *err)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t dirlen = slash ? (size_t)(slash - path) : 0;

	if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) != 0) {
		*ret_kind = SC_PATH_WH_NONE;
		*ret_target = NULL;
		return 0;
	}
	if (strcmp(base, WH_OPAQUE) == 0) {
		*ret_kind = SC_PATH_WH_OPAQUE;
		*ret_target = xstrndup(path, dirlen);
		return 0;
	}
	if (strncmp(base, WH_META_PREFIX, strlen(WH_META_PREFIX)) == 0) {
		/* aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): no meaning in a layer */
		*ret_kind = SC_PATH_WH_META;
		*ret_target = NULL;
		return 0;
	}
	const char *name = base + strlen(WH_PREFIX);
	size_t nlen = strlen(name);
	if (nlen == 0 || is_dot(name, nlen) || is_dotdot(name, nlen))
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "invalid whiteout: it names no file of its directory");
	*ret_kind = SC_PATH_WH_FILE;
	*ret_target = slash ? xasprintf("%.*s/%s", (int)dirlen, path, name) : xstrdup(name);
	return 0;
}

void sc_layer_path_clean(const char *target, size_t len, sc_buf *out, bool *ret_absolute, size_t *ret_up)
{
	bool absolute = len > 0 && target[0] == '/';
	size_t up = 0, pos = 0, clen;
	const char *c;
	out->len = 0;
	if (out->data)
		out->data[0] = '\0';
	while (sc_layer_path_next(target, len, &pos, &c, &clen)) {
		if (is_dot(c, clen))
			continue;
		if (is_dotdot(c, clen)) {
			if (out->len > 0) {
				/* drop the last component written */
				size_t i = out->len;
				while (i > 0 && out->data[i - 1] != '/')
					i--;
				out->len = i > 0 ? i - 1 : 0;
				out->data[out->len] = '\0';
			} else if (!absolute) {
				up++;
			}
			continue;
		}
		if (out->len > 0)
			sc_buf_putc(out, '/');
		sc_buf_append(out, c, clen, NULL, NULL);
	}
	*ret_absolute = absolute;
	*ret_up = up;
}
