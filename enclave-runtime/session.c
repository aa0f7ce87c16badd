/* SPDX-License-Identifier: Apache-2.0 */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/strutil.h"
#include "core/xalloc.h"
#include "policy/policy.h"

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

bool sc_rt_path_kernel_fs(const char *path)
{
	return sc_rt_path_under(path, "/proc") || sc_rt_path_under(path, "/sys") ||
	       sc_rt_path_under(path, "/dev");
}

void sc_rt_session_free(sc_rt_session *s)
{
	if (s == NULL)
		return;
	free(s->session);
	free(s->service);
	sc_strv_free(s->argv);
	if (s->env)
		for (char **e = s->env; *e; e++)
			sc_policy_wipe_free(steal_pointer(e));
	free(s->env);
	free(s->workdir);
	free(s->user);
	for (size_t i = 0; i < s->n_files; i++) {
		free(s->files[i].path);
		sc_policy_wipe(s->files[i].data, s->files[i].len);
		free(s->files[i].data);
	}
	free(s->files);
	free(s->fspf_path);
	sc_policy_wipe(s->fspf_key, sizeof(s->fspf_key));
	sc_strv_free(s->measurements);
	free(s);
}

/* Sim mode stands in for the CAS: a secret the CAS would generate gets a
 * random value here, as the CAS would give it (never written anywhere). */
static int generate_secrets(sc_policy *p, sconify_error_t *err)
{
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (size_t i = 0; i < p->n_secrets; i++) {
		sc_policy_secret *s = &p->secrets[i];
		if (!s->generated || s->value != NULL)
			continue;
		uint8_t *buf = xmalloc(s->size ? s->size : 1);
		size_t got = 0;
		while (got < s->size) {
			ssize_t n = getrandom(buf + got, s->size - got, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				free(buf);
				return sc_error_errno(err, errno, "generating secret `%s'", s->name);
			}
			got += (size_t)n;
		}
		if (s->kind == SC_POLICY_SECRET_ASCII)
			for (size_t k = 0; k < s->size; k++) /* 62 of 256: a slight bias, no secret lost */
				buf[k] = (uint8_t)alnum[buf[k] % (sizeof(alnum) - 1)];
		sc_policy_secret_set_value(s, buf, s->size);
		sc_policy_wipe(buf, s->size);
		free(buf);
	}
	return 0;
}

int sc_rt_session_fill(sc_rt_session *s, const sc_policy_config *c, const char *what, sconify_error_t *err)
{
	if (c->argv == NULL || c->argv[0] == NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: empty command", what);
	while (c->argv[s->argc])
		s->argc++;
	s->argv = xcalloc(s->argc + 1, sizeof(char *));
	for (size_t i = 0; i < s->argc; i++)
		s->argv[i] = xstrdup(c->argv[i]);
	while (c->env && c->env[s->n_env])
		s->n_env++;
	s->env = xcalloc(s->n_env + 1, sizeof(char *));
	for (size_t i = 0; i < s->n_env; i++)
		s->env[i] = xstrdup(c->env[i]);
	s->workdir = sc_rt_path_normalize(c->pwd && c->pwd[0] ? c->pwd : "/", false);
	if (s->workdir == NULL) {
		cleanup_free char *q = sc_quote(c->pwd, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "%s: pwd `%s' is not an absolute path without `..'", what, q);
	}
	if (c->user && c->user[0]) {
		if (!sc_policy_valid_user(c->user)) {
			cleanup_free char *q = sc_quote(c->user, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: user `%s' is not \"uid[:gid]\" or \"name[:group]\"", what, q);
		}
		s->user = xstrdup(c->user);
	}
	s->files = xcalloc(c->n_files ? c->n_files : 1, sizeof(*s->files));
	for (size_t i = 0; i < c->n_files; i++) {
		cleanup_free char *q = sc_quote(c->files[i].path, SC_QUOTE_MAX);
		char *path = sc_rt_path_normalize(c->files[i].path, false);
		if (path == NULL || strcmp(path, "/") == 0) {
			free(path);
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: injection file `%s': not a file path", what, q);
		}
		for (size_t k = 0; k < s->n_files; k++)
			if (strcmp(s->files[k].path, path) == 0) {
				free(path);
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: injection file `%s': duplicate entry", what, q);
			}
		sc_rt_file *f = &s->files[s->n_files++];
		f->path = path;
		f->len = c->files[i].len;
		f->data = xmalloc(f->len + 1);
		memcpy(f->data, c->files[i].content, f->len);
		f->data[f->len] = '\0';
	}
	if (c->fspf_path && c->fspf_path[0]) {
		/* Our shield pins the SHA-256 of the sealed metadata; SCONE's
		 * 16-byte tags name another format. */
		if (c->fspf_tag_len != SC_RT_PIN_BYTES)
			return sc_error(
			        err, SCONIFY_ERR_UNSUPPORTED, 0,
			        "%s: service `%s': fspf_tag has %zu bytes, the shield's metadata pin has %d",
			        what, s->service, c->fspf_tag_len, SC_RT_PIN_BYTES);
		s->fspf_path = sc_rt_path_normalize(c->fspf_path, false);
		if (s->fspf_path == NULL) {
			cleanup_free char *q = sc_quote(c->fspf_path, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: fspf_path `%s' is not an absolute path", what, q);
		}
		memcpy(s->fspf_key, c->fspf_key, sizeof(s->fspf_key));
		memcpy(s->fspf_pin, c->fspf_tag, sizeof(s->fspf_pin));
	}
	return 0;
}

int sc_rt_session_parse(const char *data, size_t len, const char *what, const char *config_id,
                        sc_rt_session **ret, sconify_error_t *err)
{
	cleanup_free char *qid = sc_quote(config_id, SC_QUOTE_MAX);
	const char *slash = strrchr(config_id, '/');
	if (slash == NULL || slash == config_id || slash[1] == '\0')
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "SCONE_CONFIG_ID `%s' is not [namespace/]session/service", qid);
	cleanup_free char *session = xstrndup(config_id, (size_t)(slash - config_id));
	const char *service = slash + 1;

	cleanup_policy sc_policy *p = NULL;
	if (sc_policy_parse(data, len, what, &p, err) < 0)
		return -1;
	/* A session file is the host's word: it may only configure a service
	 * whose policy accepts software-only evidence. */
	if (p->mode != SC_POLICY_MODE_SIM)
		return sc_error(err, SCONIFY_ERR_AUTH, 0,
		                "%s: the policy's security.attestation.mode is not `sim': a session file is "
		                "accepted only by a policy that allows sim mode",
		                what);
	if (strcmp(p->name, session) != 0) {
		cleanup_free char *qs = sc_quote(session, SC_QUOTE_MAX);
		cleanup_free char *qn = sc_quote(p->name, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "%s: session `%s' is not the session `%s' of SCONE_CONFIG_ID `%s'", what, qn,
		                qs, qid);
	}
	if (generate_secrets(p, err) < 0)
		return sc_error_wrap(err, "%s", what);
	cleanup_policy_config sc_policy_config *c = NULL;
	if (sc_policy_resolve(p, service, &c, err) < 0)
		return sc_error_wrap(err, "%s", what);
	const sc_policy_service *svc = sc_policy_find_service(p, service);

	cleanup_session sc_rt_session *s = xzalloc(sizeof(*s));
	s->session = xstrdup(p->name);
	s->service = xstrdup(service);
	if (sc_rt_session_fill(s, c, what, err) < 0)
		return -1;
	s->measurements = xcalloc(svc->n_measurements + 1, sizeof(char *));
	for (size_t i = 0; i < svc->n_measurements; i++)
		s->measurements[i] = xstrdup(svc->measurements[i]);
	s->n_measurements = svc->n_measurements;
	*ret = steal_pointer(&s);
	return 0;
}

int sc_rt_session_load(const char *path, const char *config_id, sc_rt_session **ret, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sc_error_errno(err, errno, "session file `%s'", q);
	const size_t cap = SC_POLICY_MAX_BYTES;
	size_t len = 0, alloc = 64 * 1024;
	cleanup_free char *data = xmalloc(alloc);
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
	/* The policy may hold secrets in plain text: wiped once parsed. */
	cleanup_free char *what = xasprintf("session file `%s'", q);
	int r = sc_rt_session_parse(data, len, what, config_id, ret, err);
	sc_policy_wipe(data, alloc);
	return r;
}
