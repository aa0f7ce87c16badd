/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the credentials come from and in which order is docs/credentials.md;
 * this file follows containers/image's pkg/docker/config for the files and
 * docker's CLI for credsStore and the helper protocol, and says where it
 * differs. Every buffer that held a secret (file contents, decoded base64,
 * helper output, parsed JSON strings) is wiped before it is freed.
 */
#include "registry/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/error.h"
#include "core/secret.h"
#include "core/strutil.h"
#include "core/xalloc.h"

#ifdef __APPLE__
/* Shared libraries on macOS cannot reference environ directly. */
#include <crt_externs.h>
#define sc_environ (*_NSGetEnviron())
#else
extern char **environ;
#define sc_environ environ
#endif

/* config.json also holds proxies, plugins, aliases...: generous, but capped. */
#define AUTH_FILE_MAX ((size_t)4 << 20)
#define HELPER_OUTPUT_MAX ((size_t)1 << 20)
/* Only the first line of it can reach a message. */
#define HELPER_STDERR_MAX ((size_t)4096)
/* A host name is at most 253 bytes; with brackets and a port this is ample,
 * and it keeps the helper's stdin below PIPE_BUF (512 on macOS). */
#define REGISTRY_NAME_MAX 300
/* Docker's key and helper server URL for Docker Hub (registry.IndexServer). */
#define DOCKER_HUB_SERVER "https://index.docker.io/v1/"
/* docker-credential-helpers' ErrCredentialsNotFound says
 * "credentials not found in native keychain". */
#define NOT_FOUND_PHRASE "credentials not found"

static void wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* jansson frees its strings without wiping them: wipe every string value
 * first. (Its lexer's scratch buffer is out of reach; docs/credentials.md.) */
static void json_wipe(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		json_object_foreach (j, k, v)
			json_wipe(v);
		break;
	case JSON_ARRAY:
		json_array_foreach (j, i, v)
			json_wipe(v);
		break;
	case JSON_STRING:
		OPENSSL_cleanse((char *)json_string_value(j), json_string_length(j));
		break;
	default:
		break;
	}
}

static void json_wipe_decrefp(json_t **j)
{
	if (*j) {
		json_wipe(*j);
		json_decref(*j);
	}
}

/* jansson's own error text quotes the input near the error, which may be a
 * password: only the kind of problem and its position go into a message. */
static const char *json_problem(const json_error_t *e)
{
	switch (json_error_code(e)) {
	case json_error_premature_end_of_input:
		return "premature end of input";
	case json_error_end_of_input_expected:
		return "data after the JSON value";
	case json_error_invalid_utf8:
		return "invalid UTF-8";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "a NUL character in a string";
	case json_error_stack_overflow:
		return "nesting too deep";
	case json_error_numeric_overflow:
		return "a number out of range";
	default:
		return "a syntax error";
	}
}

/* what is already quoted ("auth file `x'"). */
static int parse_json(const char *data, size_t len, size_t flags, const char *what, json_t **ret,
                      sconify_error_t *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES | flags, &jerr);
	if (j == NULL) {
		if (json_error_code(&jerr) == json_error_duplicate_key)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s has a duplicate key at line %d",
			                what, jerr.line);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is not valid JSON (%s at line %d column %d)",
		                what, json_problem(&jerr), jerr.line, jerr.column);
	}
	*ret = j;
	return 0;
}

static bool contains(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; n <= len && i <= len - n; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

/* ---- small helpers ------------------------------------------------------- */

static bool is_docker_hub(const char *registry)
{
	return strcmp(registry, "docker.io") == 0 || strcmp(registry, "index.docker.io") == 0 ||
	       strcmp(registry, "registry-1.docker.io") == 0;
}

/* The registry an auths key names, for the fallback match (containers/image's
 * normalizeAuthFileKey): "https://h:5000/v2/" -> "h:5000", Docker Hub's host
 * names -> "index.docker.io". A key without a scheme keeps its path, so a
 * namespaced key only ever matches exactly; .dockercfg keys lose their path. */
static char *normalize_key(const char *key, bool legacy)
{
	const char *s = key;
	bool had_scheme = true;
	if (sc_startswith(s, "http://"))
		s += strlen("http://");
	else if (sc_startswith(s, "https://"))
		s += strlen("https://");
	else
		had_scheme = false;
	size_t n = (legacy || had_scheme) ? strcspn(s, "/") : strlen(s);
	char *host = xstrndup(s, n);
	if (is_docker_hub(host)) {
		free(host);
		return xstrdup("index.docker.io");
	}
	return host;
}

static char *home_dir(void)
{
	const char *h = getenv("HOME");
	if (h && *h)
		return xstrdup(h);
	/* containers/storage's homedir.Get() falls back to the password database too. */
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_dir && *res->pw_dir)
		return xstrdup(res->pw_dir);
	return NULL;
}

static const char *nonempty_env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* ---- --creds ------------------------------------------------------------- */

static int creds_from_option(const char *s, sc_credentials *c, sconify_error_t *err)
{
	/* skopeo takes "USER" alone as an empty password and podman prompts for
	 * it; a library cannot prompt, and an empty password is rarely meant. */
	const char *colon = strchr(s, ':');
	if (*s == '\0')
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "--creds is empty: expected USER:PASSWORD");
	if (colon == NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "--creds has no `:': expected USER:PASSWORD");
	if (colon == s)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "--creds has an empty user name: expected USER:PASSWORD");
	c->username = xstrndup(s, (size_t)(colon - s));
	c->password = xstrdup(colon + 1);
	c->source = xstrdup("--creds");
	return 0;
}

/* ---- credential helpers -------------------------------------------------- */

/* A helper is looked up like Go's exec.LookPath (docker, skopeo): in $PATH's
 * absolute directories only, so an empty or "." entry never runs a
 * docker-credential-* from the current directory. Returns NULL if absent. */
static char *find_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	if (path == NULL)
		return NULL;
	for (const char *p = path;;) {
		size_t n = strcspn(p, ":");
		if (n > 0 && p[0] == '/') {
			cleanup_free char *cand = xasprintf("%.*s/%s", (int)n, p, prog);
			struct stat st;
			if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
				return steal_pointer(&cand);
		}
		if (p[n] == '\0')
			return NULL;
		p += n + 1;
	}
}

/* pipe2() is not on macOS: move each end above stdio and mark it close-on-exec
 * (another thread's fork+exec between pipe() and here may still inherit them). */
static int cloexec_pipe(int fds[2], sconify_error_t *err)
{
	int raw[2];
	if (pipe(raw) < 0)
		return sc_error_errno(err, errno, "creating a pipe for a credential helper");
	for (int i = 0; i < 2; i++) {
		fds[i] = fcntl(raw[i], F_DUPFD_CLOEXEC, 3);
		if (fds[i] < 0) {
			int e = errno;
			close(raw[0]);
			close(raw[1]);
			if (i == 1)
				close(fds[0]);
			return sc_error_errno(err, e, "creating a pipe for a credential helper");
		}
	}
	close(raw[0]);
	close(raw[1]);
	return 0;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

typedef struct {
	int status;    /* from waitpid */
	bool overflow; /* stdout passed HELPER_OUTPUT_MAX; the helper was killed */
} helper_result;

/* Runs "<exe> get" with input on stdin, collecting stdout (capped) and the
 * head of stderr. No shell: exe and input are passed as they are. */
static int run_helper(const char *exe, const char *prog, const char *input, const char *what, sc_secret *out,
                      sc_secret *errout, helper_result *res, sconify_error_t *err)
{
	/* in[], out[], err[]: read end, write end */
	int fds[6] = {-1, -1, -1, -1, -1, -1};
	for (int i = 0; i < 3; i++)
		if (cloexec_pipe(&fds[2 * i], err) < 0) {
			close_fds(fds, 6);
			return -1;
		}

	/* The input goes in before the helper exists: we hold the read end, so
	 * this cannot raise SIGPIPE (a library must not touch the signal
	 * disposition), and it is far below the pipe's capacity. */
	size_t len = strlen(input);
	if (fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0 || write(fds[1], input, len) != (ssize_t)len) {
		int e = errno;
		close_fds(fds, 6);
		return sc_error_errno(err, e, "%s: writing the server URL", what);
	}
	close(fds[1]);
	fds[1] = -1;

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_adddup2(&fa, fds[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, fds[3], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, fds[5], STDERR_FILENO);
	/* The helper starts with no blocked signals and default SIGPIPE etc.,
	 * whatever the application did to its own. */
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGQUIT);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGCHLD);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

	char *argv[] = {(char *)prog, (char *)"get", NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, exe, &fa, &attr, argv, sc_environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(fds[0]);
	close(fds[3]);
	close(fds[5]);
	fds[0] = fds[3] = fds[5] = -1;
	if (rc != 0) {
		close_fds(fds, 6);
		return sc_error_errno(err, rc, "%s: running it", what);
	}

	struct pollfd pfd[2] = {{.fd = fds[2], .events = POLLIN}, {.fd = fds[4], .events = POLLIN}};
	char chunk[8192];
	int poll_errno = 0;
	res->overflow = false;
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			poll_errno = errno;
			kill(pid, SIGKILL);
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			ssize_t n = read(pfd[i].fd, chunk, sizeof(chunk));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				continue;
			}
			if (i == 1) {
				/* Keep the head of stderr, drain the rest. */
				size_t room = HELPER_STDERR_MAX - errout->len;
				sc_secret_append(errout, chunk, (size_t)n < room ? (size_t)n : room,
				                 HELPER_STDERR_MAX);
			} else if (!sc_secret_append(out, chunk, (size_t)n, HELPER_OUTPUT_MAX)) {
				res->overflow = true;
				kill(pid, SIGKILL);
				for (int j = 0; j < 2; j++)
					if (pfd[j].fd >= 0) {
						close(pfd[j].fd);
						pfd[j].fd = -1;
					}
			}
		}
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	for (int j = 0; j < 2; j++)
		if (pfd[j].fd >= 0)
			close(pfd[j].fd);

	pid_t w;
	do
		w = waitpid(pid, &res->status, 0);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return sc_error_errno(err, errno, "%s: waiting for it", what);
	if (poll_errno)
		return sc_error_errno(err, poll_errno, "%s: reading its output", what);
	return 0;
}

/* The first non-blank line of b, quoted, unless it looks like the JSON the
 * helper sends credentials in; NULL if there is none. */
static char *first_line(const sc_secret *b)
{
	if (b->data == NULL)
		return NULL;
	const char *s = b->data;
	const char *end = b->data + b->len;
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
		s++;
	if (s == end || *s == '{' || *s == '[' || *s == '"')
		return NULL;
	size_t n = 0;
	while (s + n < end && s[n] != '\n' && s[n] != '\r')
		n++;
	return sc_quote_n(s, n, SC_QUOTE_MAX);
}

static char *describe_status(int status)
{
	if (WIFEXITED(status))
		return xasprintf("exit status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return xasprintf("killed by signal %d", WTERMSIG(status));
	return xasprintf("wait status %#x", (unsigned)status);
}

/* Go's encoding/json matches field names case-insensitively when there is no
 * exact match; some helpers rely on it. */
static int helper_field(json_t *obj, const char *name, const char *what, const char **ret,
                        sconify_error_t *err)
{
	json_t *v = json_object_get(obj, name);
	if (v == NULL) {
		const char *k;
		json_t *x;
		json_object_foreach (obj, k, x) {
			if (strcasecmp(k, name) == 0) {
				v = x;
				break;
			}
		}
	}
	if (v == NULL || json_is_null(v)) {
		*ret = "";
		return 0;
	}
	if (!json_is_string(v))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `%s' in its output is not a string", what,
		                name);
	*ret = json_string_value(v);
	return 0;
}

/* 1: credentials in *c, 0: the helper has none for server_url, -1: error. */
static int helper_get(const char *exe, const char *prog, const char *what, const char *server_url,
                      const char *source, sc_credentials *c, sconify_error_t *err)
{
	_cleanup_(sc_secret_free) sc_secret out = {0};
	_cleanup_(sc_secret_free) sc_secret errout = {0};
	helper_result res;
	if (run_helper(exe, prog, server_url, what, &out, &errout, &res, err) < 0)
		return -1;
	if (res.overflow)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s: output larger than %zu bytes", what,
		                HELPER_OUTPUT_MAX);

	if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0) {
		/* docker-credential-helpers print errors on stdout and exit 1. */
		if (WIFEXITED(res.status) && out.data && contains(out.data, out.len, NOT_FOUND_PHRASE))
			return 0;
		cleanup_free char *st = describe_status(res.status);
		cleanup_free char *line = first_line(&out);
		if (line == NULL)
			line = first_line(&errout);
		if (line)
			return sc_error(err, SCONIFY_ERR_GENERIC, 0, "%s failed with %s: `%s'", what, st,
			                line);
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "%s failed with %s", what, st);
	}

	_cleanup_(json_wipe_decrefp) json_t *j = NULL;
	cleanup_free char *owhat = xasprintf("%s: its output", what);
	/* Like Go's json.Decoder, read the first value and ignore what follows. */
	if (parse_json(out.data ? out.data : "", out.len, JSON_DISABLE_EOF_CHECK, owhat, &j, err) < 0)
		return -1;
	if (!json_is_object(j))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is not a JSON object", owhat);
	const char *user, *secret;
	if (helper_field(j, "Username", what, &user, err) < 0 ||
	    helper_field(j, "Secret", what, &secret, err) < 0)
		return -1;
	if (*user == '\0' && *secret == '\0')
		return 0;
	if (strcmp(user, "<token>") == 0) {
		c->identity_token = xstrdup(secret);
	} else {
		if (*user == '\0')
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s returned a secret without a user name", what);
		c->username = xstrdup(user);
		c->password = xstrdup(secret);
	}
	c->source = xstrdup(source);
	return 1;
}

/* origin: "credHelpers" or "credsStore" in file path (qpath quoted). */
static int ask_helper(const char *name, const char *origin, const char *path, const char *qpath,
                      const char *registry, sc_credentials *c, sconify_error_t *err)
{
	cleanup_free char *prog = xasprintf("docker-credential-%s", name);
	cleanup_free char *qprog = sc_quote(prog, SC_QUOTE_MAX);
	cleanup_free char *what = xasprintf("credential helper `%s' (%s in `%s')", qprog, origin, qpath);
	/* A name with a '/' would be run as a path, not looked up in $PATH. */
	if (strchr(name, '/'))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: the name contains a `/'", what);
	cleanup_free char *exe = find_in_path(prog);
	if (exe == NULL)
		return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "%s: not found in $PATH", what);
	cleanup_free char *source = xasprintf("%s (%s in %s)", prog, origin, path);

	/* docker asks for Docker Hub under its v1 URL; podman and skopeo store
	 * and ask under "docker.io". Ask the first, then the second. */
	const char *hub[] = {DOCKER_HUB_SERVER, "docker.io", NULL};
	const char *other[] = {registry, NULL};
	for (const char **u = is_docker_hub(registry) ? hub : other; *u; u++) {
		int r = helper_get(exe, prog, what, *u, source, c, err);
		if (r != 0)
			return r;
	}
	return 0;
}

/* ---- auth files ---------------------------------------------------------- */

typedef struct {
	char *path;
	char *qpath; /* quoted for messages */
	bool legacy; /* ~/.dockercfg: the file is the auths map, keys are URLs */
} auth_file;

/* *ret_missing when the file does not exist (and nothing else is wrong). */
static int read_secret_file(const auth_file *f, sc_secret *out, bool *ret_missing, sconify_error_t *err)
{
	cleanup_free char *what = xasprintf("auth file `%s'", f->qpath);
	return sc_read_secret_file(f->path, AUTH_FILE_MAX, what, out, ret_missing, err);
}

static int check_string_or_null(json_t *obj, const char *field, const char *what, const char *qkey,
                                sconify_error_t *err)
{
	json_t *v = json_object_get(obj, field);
	if (v && !json_is_string(v) && !json_is_null(v))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: entry `%s': `%s' is not a string", what,
		                qkey, field);
	return 0;
}

/* The shape Go's json.Unmarshal would insist on for the fields we read,
 * checked for every entry so that a broken file fails whatever is asked. */
static int validate_file(json_t *root, bool legacy, const char *what, sconify_error_t *err)
{
	if (!json_is_object(root))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is not a JSON object", what);
	json_t *auths = legacy ? root : json_object_get(root, "auths");
	if (auths && !json_is_object(auths) && !json_is_null(auths))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `auths' is not an object", what);
	const char *k;
	json_t *v;
	if (json_is_object(auths)) {
		json_object_foreach (auths, k, v) {
			cleanup_free char *qkey = sc_quote(k, SC_QUOTE_MAX);
			if (json_is_null(v))
				continue;
			if (!json_is_object(v))
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: entry `%s' is not an object", what, qkey);
			if (check_string_or_null(v, "auth", what, qkey, err) < 0 ||
			    check_string_or_null(v, "username", what, qkey, err) < 0 ||
			    check_string_or_null(v, "password", what, qkey, err) < 0 ||
			    check_string_or_null(v, "identitytoken", what, qkey, err) < 0)
				return -1;
		}
	}
	if (legacy)
		return 0;
	json_t *helpers = json_object_get(root, "credHelpers");
	if (helpers && !json_is_object(helpers) && !json_is_null(helpers))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `credHelpers' is not an object", what);
	if (json_is_object(helpers)) {
		json_object_foreach (helpers, k, v) {
			if (!json_is_string(v)) {
				cleanup_free char *qkey = sc_quote(k, SC_QUOTE_MAX);
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "%s: `credHelpers' entry `%s' is not a string", what, qkey);
			}
		}
	}
	json_t *store = json_object_get(root, "credsStore");
	if (store && !json_is_string(store) && !json_is_null(store))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `credsStore' is not a string", what);
	return 0;
}

static const char *entry_string(json_t *entry, const char *field)
{
	const char *s = json_string_value(json_object_get(entry, field));
	return s && *s ? s : NULL;
}

/* 1: credentials in *c, 0: the entry holds none (docker writes `{}' when a
 * helper keeps them), -1: error. */
static int decode_entry(json_t *entry, const auth_file *f, const char *key, sc_credentials *c,
                        sconify_error_t *err)
{
	if (!json_is_object(entry))
		return 0;
	const char *auth = entry_string(entry, "auth");
	const char *user = entry_string(entry, "username");
	const char *password = json_string_value(json_object_get(entry, "password"));
	const char *token = entry_string(entry, "identitytoken");
	cleanup_free char *qkey = sc_quote(key, SC_QUOTE_MAX);

	if (auth) {
		/* docker's decodeAuth: "auth" wins over username/password. */
		/* Go's StdEncoding, as docker and containers/image decode it. */
		_cleanup_(sc_secret_free) sc_secret dec = {0};
		if (!sc_base64_decode(auth, strlen(auth), (uint8_t **)&dec.data, &dec.len))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "auth file `%s': entry `%s': `auth' is not valid base64", f->qpath,
			                qkey);
		dec.alloc = dec.len + 1;
		const char *s = dec.data;
		const char *colon = memchr(s, ':', dec.len);
		if (colon == NULL || colon == s)
			return sc_error(
			        err, SCONIFY_ERR_INVALID, 0,
			        "auth file `%s': entry `%s': `auth' does not decode to USER:PASSWORD%s",
			        f->qpath, qkey, colon ? " (empty user name)" : "");
		/* Go's strings.Trim(password, "\x00"): both ends. */
		const char *p = colon + 1, *end = s + dec.len;
		while (p < end && *p == '\0')
			p++;
		while (end > p && end[-1] == '\0')
			end--;
		if (memchr(s, '\0', (size_t)(colon - s)) || memchr(p, '\0', (size_t)(end - p)))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "auth file `%s': entry `%s': `auth' has a NUL byte", f->qpath, qkey);
		c->username = xstrndup(s, (size_t)(colon - s));
		c->password = xstrndup(p, (size_t)(end - p));
	} else if (user) {
		c->username = xstrdup(user);
		c->password = xstrdup(password ? password : "");
	} else if (password && *password) {
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "auth file `%s': entry `%s' has a password but no username", f->qpath, qkey);
	}
	if (token)
		c->identity_token = xstrdup(token);
	if (c->username == NULL && c->identity_token == NULL)
		return 0;
	c->source = xstrdup(f->path);
	return 1;
}

static int try_key(json_t *auths, const char *key, const auth_file *f, sc_credentials *c,
                   sconify_error_t *err)
{
	json_t *e = json_object_get(auths, key);
	return e ? decode_entry(e, f, key, c, err) : 0;
}

/* containers/image's findCredentialsInFile order for auths, made
 * deterministic: exact keys from the most specific down to the registry,
 * docker's Docker Hub key, then any key naming the same host in file order. */
static int lookup_auths(json_t *auths, const auth_file *f, const char *registry, const char *repository,
                        sc_credentials *c, sconify_error_t *err)
{
	int r;
	if (!json_is_object(auths))
		return 0;
	if (!f->legacy && repository && *repository) {
		cleanup_free char *key = xasprintf("%s/%s", registry, repository);
		for (;;) {
			if ((r = try_key(auths, key, f, c, err)) != 0)
				return r;
			char *slash = strrchr(key, '/');
			if (slash == NULL)
				break;
			*slash = '\0';
		}
	} else if ((r = try_key(auths, registry, f, c, err)) != 0) {
		return r;
	}
	if (is_docker_hub(registry) && (r = try_key(auths, DOCKER_HUB_SERVER, f, c, err)) != 0)
		return r;

	cleanup_free char *want = normalize_key(registry, false);
	const char *k;
	json_t *v;
	json_object_foreach (auths, k, v) {
		cleanup_free char *host = normalize_key(k, f->legacy);
		if (strcmp(host, want) == 0 && (r = decode_entry(v, f, k, c, err)) != 0)
			return r;
	}
	return 0;
}

static const char *find_cred_helper(json_t *helpers, const char *registry)
{
	/* containers/image keys credHelpers by "docker.io", docker by its URL. */
	const char *hub[] = {"docker.io", DOCKER_HUB_SERVER, "index.docker.io", "registry-1.docker.io", NULL};
	const char *other[] = {registry, NULL};
	if (!json_is_object(helpers))
		return NULL;
	for (const char **k = is_docker_hub(registry) ? hub : other; *k; k++) {
		const char *name = json_string_value(json_object_get(helpers, *k));
		/* docker treats an empty helper name as none. */
		if (name && *name)
			return name;
	}
	return NULL;
}

/* 1: credentials in *c, 0: nothing for registry here, -1: error.
 * explicit_from names the option that chose the file; then it must exist. */
static int lookup_in_file(const auth_file *f, const char *explicit_from, const char *registry,
                          const char *repository, sc_credentials *c, sconify_error_t *err)
{
	_cleanup_(sc_secret_free) sc_secret data = {0};
	bool missing = false;
	if (read_secret_file(f, &data, &missing, err) < 0)
		return -1;
	if (missing) {
		if (explicit_from)
			return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "auth file `%s' (%s) does not exist",
			                f->qpath, explicit_from);
		return 0;
	}
	/* docker reads an empty config.json as an empty configuration. */
	size_t blank = strspn(data.data ? data.data : "", " \t\r\n");
	if (blank == data.len)
		return 0;

	cleanup_free char *what = xasprintf("auth file `%s'", f->qpath);
	_cleanup_(json_wipe_decrefp) json_t *root = NULL;
	if (parse_json(data.data, data.len, 0, what, &root, err) < 0 ||
	    validate_file(root, f->legacy, what, err) < 0)
		return -1;

	if (!f->legacy) {
		const char *helper = find_cred_helper(json_object_get(root, "credHelpers"), registry);
		/* The helper's answer is final for this file, "not found" included
		 * (docker and containers/image). */
		if (helper)
			return ask_helper(helper, "credHelpers", f->path, f->qpath, registry, c, err);
	}
	int r = lookup_auths(f->legacy ? root : json_object_get(root, "auths"), f, registry, repository, c,
	                     err);
	if (r != 0)
		return r;
	const char *store = f->legacy ? NULL : json_string_value(json_object_get(root, "credsStore"));
	if (store && *store)
		return ask_helper(store, "credsStore", f->path, f->qpath, registry, c, err);
	return 0;
}

/* ---- the lookup ---------------------------------------------------------- */

void sc_credentials_clear(sc_credentials *c)
{
	if (c == NULL)
		return;
	wipe_free(c->username);
	wipe_free(c->password);
	wipe_free(c->identity_token);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

bool sc_credentials_empty(const sc_credentials *c)
{
	return c == NULL || (c->username == NULL && c->identity_token == NULL);
}

static int check_registry(const char *registry, sconify_error_t *err)
{
	if (registry == NULL || *registry == '\0')
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "looking up credentials: no registry given");
	cleanup_free char *q = sc_quote(registry, SC_QUOTE_MAX);
	if (strlen(registry) > REGISTRY_NAME_MAX)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "registry `%s' is longer than %d bytes", q,
		                REGISTRY_NAME_MAX);
	for (const unsigned char *p = (const unsigned char *)registry; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/')
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "registry `%s' is not a host[:port]", q);
	return 0;
}

/* The files to read, in order (docs/credentials.md). Returns how many. */
static size_t auth_files(const char *explicit_path, auth_file files[4])
{
	size_t n = 0;
	char *paths[4];
	bool legacy[4] = {false, false, false, false};
	if (explicit_path) {
		/* containers/image reads only the file the user named. */
		paths[n++] = xstrdup(explicit_path);
	} else {
		cleanup_free char *home = home_dir();
		const char *v;
		if ((v = nonempty_env("XDG_RUNTIME_DIR")))
			paths[n++] = xasprintf("%s/containers/auth.json", v);
#ifdef __linux__
		else /* where podman login writes without XDG_RUNTIME_DIR */
			paths[n++] = xasprintf("/run/containers/%u/auth.json", (unsigned)getuid());
#endif
		if ((v = nonempty_env("XDG_CONFIG_HOME")))
			paths[n++] = xasprintf("%s/containers/auth.json", v);
		else if (home)
			paths[n++] = xasprintf("%s/.config/containers/auth.json", home);
		if ((v = nonempty_env("DOCKER_CONFIG")))
			paths[n++] = xasprintf("%s/config.json", v);
		else if (home)
			paths[n++] = xasprintf("%s/.docker/config.json", home);
		if (home) {
			legacy[n] = true;
			paths[n++] = xasprintf("%s/.dockercfg", home);
		}
	}
	for (size_t i = 0; i < n; i++)
		files[i] = (auth_file){
		        .path = paths[i], .qpath = sc_quote(paths[i], SC_QUOTE_MAX), .legacy = legacy[i]};
	return n;
}

int sc_credentials_lookup(const sc_creds_options *o, const char *registry, const char *repository,
                          sc_credentials *ret, sconify_error_t *err)
{
	if (check_registry(registry, err) < 0)
		return -1;
	cleanup_credentials sc_credentials c = {0};

	if (o && o->creds) {
		if (creds_from_option(o->creds, &c, err) < 0)
			return -1;
		*ret = c;
		memset(&c, 0, sizeof(c));
		return 0;
	}

	const char *explicit_path = NULL, *explicit_from = NULL;
	if (o && o->authfile && *o->authfile) {
		explicit_path = o->authfile;
		explicit_from = "--authfile";
	} else if ((explicit_path = nonempty_env("REGISTRY_AUTH_FILE"))) {
		explicit_from = "$REGISTRY_AUTH_FILE";
	}

	auth_file files[4];
	size_t n = auth_files(explicit_path, files);
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		r = lookup_in_file(&files[i], explicit_from, registry, repository, &c, err);
	for (size_t i = 0; i < n; i++) {
		free(files[i].qpath);
		free(files[i].path);
	}
	if (r < 0)
		return -1;
	/* Anonymous: c is all zero. */
	*ret = c;
	memset(&c, 0, sizeof(c));
	return 0;
}
