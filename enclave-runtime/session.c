/* SPDX-License-Identifier: Apache-2.0 */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "core/json-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"

#define SESSION_VERSION 1

char *sc_rt_path_normalize(const char *path, bool allow_dotdot)
{
	if (path == NULL || path[0] != '/' || strlen(path) > SC_RT_PATH_MAX)
		return NULL;
	size_t n = strlen(path);
	char *out = xmalloc(n + 2);
	size_t len = 0;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *end = strchrnul(p, '/');
		size_t clen = (size_t)(end - p);
		if (clen == 0)
			break;
		if (clen == 1 && p[0] == '.') {
			/* nothing */
		} else if (clen == 2 && p[0] == '.' && p[1] == '.') {
			if (!allow_dotdot) {
				free(out);
				return NULL;
			}
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--; /* the slash before the component */
		} else {
			out[len++] = '/';
			memcpy(out + len, p, clen);
			len += clen;
		}
		p = end;
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return out;
}

bool sc_rt_path_under(const char *path, const char *prefix)
{
	if (strcmp(prefix, "/") == 0)
		return path[0] == '/';
	size_t n = strlen(prefix);
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

void sc_rt_session_free(sc_rt_session *s)
{
	if (s == NULL)
		return;
	free(s->mode);
	sc_strv_free(s->argv);
	sc_strv_free(s->env);
	free(s->workdir);
	for (size_t i = 0; i < s->n_files; i++) {
		free(s->files[i].path);
		free(s->files[i].data);
	}
	free(s->files);
	sc_strv_free(s->regions);
	free(s);
}

/* A non-empty array of strings, capped, into a NULL-terminated vector. */
static int get_strv(json_t *root, const char *key, bool optional, size_t max, const char *what, char ***ret,
                    sconify_error_t *err)
{
	json_t *arr = NULL;
	if (sc_json_get_array(root, key, optional, what, &arr, err) < 0)
		return -1;
	size_t n = arr ? json_array_size(arr) : 0;
	if (n > max)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s: `%s' has too many entries (%zu, at most %zu)",
		                what, key, n, max);
	cleanup_strv char **v = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(arr, i);
		if (!json_is_string(e))
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `%s'[%zu] is not a string", what,
			                key, i);
		v[i] = xstrdup(json_string_value(e));
	}
	*ret = steal_pointer(&v);
	return 0;
}

static const char *const known_keys[] = {
        "sconify_runtime_session", "mode", "command", "env", "workdir", "injected_files",
        "protected_regions",       NULL};

int sc_rt_session_parse(const char *data, size_t len, const char *what, sc_rt_session **ret,
                        sconify_error_t *err)
{
	cleanup_json json_t *root = NULL;
	if (sc_json_parse(data, len, what, &root, err) < 0)
		return -1;
	if (!json_is_object(root))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is not a JSON object", what);

	/* Unknown keys are refused: a misspelt key must not silently drop a region. */
	const char *key;
	json_t *value;
	json_object_foreach (root, key, value) {
		bool known = false;
		for (size_t i = 0; known_keys[i]; i++)
			known = known || strcmp(key, known_keys[i]) == 0;
		if (!known) {
			cleanup_free char *q = sc_quote(key, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: unknown key `%s'", what, q);
		}
	}

	uint64_t version = 0;
	if (sc_json_get_uint(root, "sconify_runtime_session", what, &version, err) < 0)
		return -1;
	if (version != SESSION_VERSION)
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
		                "%s: unsupported sconify_runtime_session %llu (want %d)", what,
		                (unsigned long long)version, SESSION_VERSION);

	cleanup_session sc_rt_session *s = xzalloc(sizeof(*s));
	const char *mode = NULL;
	if (sc_json_get_string(root, "mode", false, what, &mode, err) < 0)
		return -1;
	if (strcmp(mode, "sim") != 0) {
		cleanup_free char *q = sc_quote(mode, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
		                "%s: mode `%s' cannot come from a session file (only `sim')", what, q);
	}
	s->mode = xstrdup(mode);

	if (get_strv(root, "command", false, SC_RT_SESSION_MAX_ARGS, what, &s->argv, err) < 0)
		return -1;
	if (s->argv[0] == NULL || s->argv[0][0] == '\0')
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `command' is empty", what);

	if (get_strv(root, "env", true, SC_RT_SESSION_MAX_ARGS, what, &s->env, err) < 0)
		return -1;
	for (char **e = s->env; *e; e++) {
		if ((*e)[0] == '=' || strchr(*e, '=') == NULL) {
			cleanup_free char *q = sc_quote(*e, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `env' entry `%s' is not NAME=value",
			                what, q);
		}
	}

	const char *workdir = NULL;
	if (sc_json_get_string(root, "workdir", true, what, &workdir, err) < 0)
		return -1;
	s->workdir = sc_rt_path_normalize(workdir ? workdir : "/", true);
	if (s->workdir == NULL) {
		cleanup_free char *q = sc_quote(workdir, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `workdir' `%s' is not an absolute path",
		                what, q);
	}

	json_t *files = NULL;
	if (sc_json_get_object(root, "injected_files", true, what, &files, err) < 0)
		return -1;
	size_t nf = files ? json_object_size(files) : 0;
	if (nf > SC_RT_SESSION_MAX_FILES)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s: too many injected files (%zu, at most %d)",
		                what, nf, SC_RT_SESSION_MAX_FILES);
	s->files = xcalloc(nf ? nf : 1, sizeof(*s->files));
	if (files) {
		json_object_foreach (files, key, value) {
			cleanup_free char *q = sc_quote(key, SC_QUOTE_MAX);
			if (!json_is_string(value))
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: injected file `%s': content is not a string", what, q);
			char *p = sc_rt_path_normalize(key, false);
			if (p == NULL)
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: injected file `%s': not an absolute path without `..'",
				                what, q);
			if (strcmp(p, "/") == 0) {
				free(p);
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: injected file `%s': is the root", what, q);
			}
			for (size_t i = 0; i < s->n_files; i++) {
				if (strcmp(s->files[i].path, p) == 0) {
					free(p);
					return sc_error(err, SCONIFY_ERR_INVALID, 0,
					                "%s: injected file `%s': duplicate entry", what, q);
				}
			}
			sc_rt_file *f = &s->files[s->n_files++];
			f->path = p;
			f->len = json_string_length(value);
			f->data = xmemdup(json_string_value(value), f->len + 1);
		}
	}

	if (get_strv(root, "protected_regions", true, SC_RT_SESSION_MAX_REGIONS, what, &s->regions, err) < 0)
		return -1;
	for (char **r = s->regions; *r; r++, s->n_regions++) {
		char *p = sc_rt_path_normalize(*r, false);
		if (p == NULL) {
			cleanup_free char *q = sc_quote(*r, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: protected region `%s' is not an absolute path without `..'",
			                what, q);
		}
		free(*r);
		*r = p;
	}

	*ret = steal_pointer(&s);
	return 0;
}

int sc_rt_session_load(const char *path, sc_rt_session **ret, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sc_error_errno(err, errno, "session file `%s'", q);
	size_t cap = SC_RT_SESSION_MAX_BYTES, len = 0;
	cleanup_free char *data = xmalloc(64 * 1024);
	size_t alloc = 64 * 1024;
	for (;;) {
		if (len == alloc) {
			if (alloc > cap)
				return sc_error(err, SCONIFY_ERR_LIMIT, 0,
				                "session file `%s' is larger than the limit (%zu bytes)", q,
				                cap);
			alloc *= 2;
			data = xrealloc(data, alloc);
		}
		ssize_t n = read(fd, data + len, alloc - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sc_error_errno(err, errno, "reading session file `%s'", q);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > cap)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0,
		                "session file `%s' is larger than the limit (%zu bytes)", q, cap);
	cleanup_free char *what = xasprintf("session file `%s'", q);
	return sc_rt_session_parse(data, len, what, ret, err);
}
