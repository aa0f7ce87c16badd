/* SPDX-License-Identifier: Apache-2.0 */
#include "measure.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/hex.h"
#include "core/openssl-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"

/* The first field of every encoding: changing the encoding means a new
 * version here, so that no old value can ever equal a new one. */
#define DOMAIN "sconify-measurement-v1"

typedef enum {
	EXE_NONE = 0,
	EXE_STREAMED,
	EXE_GIVEN,
} exe_state;

struct region {
	uint8_t kind;
	char *path;
};

struct strv {
	char **v;
	size_t n, alloc;
};

struct sc_measure {
	bool have_runtime;
	uint8_t runtime[SC_MEASURE_BYTES];

	char *exe_path;
	exe_state exe;
	EVP_MD_CTX *exe_ctx; /* while EXE_STREAMED */
	uint8_t exe_sha256[SC_MEASURE_BYTES];
	bool mixed; /* both streamed and given: a caller bug, refused at finish */

	bool have_pin;
	uint8_t pin[SC_MEASURE_BYTES];

	struct strv argv;
	struct strv env;
	size_t strings_total;

	char *cwd;

	struct region *regions;
	size_t n_regions, regions_alloc;

	bool spent;
};

static void sha256(const void *data, size_t len, uint8_t out[SC_MEASURE_BYTES])
{
	unsigned int n = 0;
	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != SC_MEASURE_BYTES)
		abort(); /* only fails on allocation */
}

static EVP_MD_CTX *sha256_new(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		abort();
	return ctx;
}

static void sha256_final(EVP_MD_CTX *ctx, uint8_t out[SC_MEASURE_BYTES])
{
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != SC_MEASURE_BYTES)
		abort();
}

sc_measure *sc_measure_new(void)
{
	return xzalloc(sizeof(sc_measure));
}

static void strv_clear(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

void sc_measure_free(sc_measure *m)
{
	if (m == NULL)
		return;
	free(m->exe_path);
	EVP_MD_CTX_free(m->exe_ctx);
	strv_clear(&m->argv);
	strv_clear(&m->env);
	free(m->cwd);
	for (size_t i = 0; i < m->n_regions; i++)
		free(m->regions[i].path);
	free(m->regions);
	free(m);
}

bool sc_measure_path_normal(const char *path)
{
	if (path[0] != '/')
		return false;
	if (path[1] == '\0')
		return true;
	const char *p = path + 1;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (slash == NULL)
			return true;
		p = slash + 1;
	}
}

/* what: "executable path", "working directory", "region" */
static int check_path(const char *path, const char *what, sconify_error_t *err)
{
	size_t n = strlen(path);
	if (n > SC_MEASURE_PATH_MAX) {
		cleanup_free char *q = sc_quote(path, 80);
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s `%s': path longer than %u bytes", what, q,
		                SC_MEASURE_PATH_MAX);
	}
	if (!sc_measure_path_normal(path)) {
		cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "%s `%s' is not an absolute normal path (no `.', `..', `//' or trailing `/')",
		                what, q);
	}
	return 0;
}

void sc_measure_set_runtime(sc_measure *m, const uint8_t sha256_[SC_MEASURE_BYTES])
{
	memcpy(m->runtime, sha256_, SC_MEASURE_BYTES);
	m->have_runtime = true;
}

int sc_measure_set_exe_path(sc_measure *m, const char *path, sconify_error_t *err)
{
	if (check_path(path, "executable path", err) < 0)
		return -1;
	if (strcmp(path, "/") == 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "executable path `/' names the root directory");
	free(m->exe_path);
	m->exe_path = xstrdup(path);
	return 0;
}

void sc_measure_exe_update(sc_measure *m, const void *data, size_t len)
{
	if (m->exe == EXE_GIVEN) {
		m->mixed = true;
		return;
	}
	if (m->exe == EXE_NONE) {
		m->exe_ctx = sha256_new();
		m->exe = EXE_STREAMED;
	}
	if (len > 0 && EVP_DigestUpdate(m->exe_ctx, data, len) != 1)
		abort();
}

void sc_measure_set_exe_sha256(sc_measure *m, const uint8_t sha256_[SC_MEASURE_BYTES])
{
	if (m->exe == EXE_STREAMED) {
		m->mixed = true;
		return;
	}
	memcpy(m->exe_sha256, sha256_, SC_MEASURE_BYTES);
	m->exe = EXE_GIVEN;
}

struct exe_writer {
	sc_writer base;
	sc_measure *m;
	sc_writer *next;
};

static int exe_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	struct exe_writer *w = (struct exe_writer *)base;
	sc_measure_exe_update(w->m, buf, len);
	return w->next ? sc_writer_write(w->next, buf, len, err) : 0;
}

static void exe_writer_free(sc_writer *base)
{
	free(base);
}

static const struct sc_writer_ops exe_writer_ops = {.write = exe_write, .free = exe_writer_free};

sc_writer *sc_measure_exe_writer_new(sc_measure *m, sc_writer *next)
{
	struct exe_writer *w = xzalloc(sizeof(*w));
	w->base.ops = &exe_writer_ops;
	w->m = m;
	w->next = next;
	/* A writer that never sees a byte still stands for a file: an empty one. */
	sc_measure_exe_update(m, NULL, 0);
	return &w->base;
}

void sc_measure_set_pin(sc_measure *m, const uint8_t pin[SC_MEASURE_BYTES])
{
	if (pin)
		memcpy(m->pin, pin, SC_MEASURE_BYTES);
	else
		memset(m->pin, 0, SC_MEASURE_BYTES);
	m->have_pin = true;
}

static int strv_add(sc_measure *m, struct strv *s, const char *str, const char *what, sconify_error_t *err)
{
	size_t n = strlen(str);
	if (n > SC_MEASURE_STRING_MAX) {
		cleanup_free char *q = sc_quote(str, 80);
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s `%s' is larger than the limit of %u bytes",
		                what, q, SC_MEASURE_STRING_MAX);
	}
	if (s->n >= SC_MEASURE_LIST_MAX)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "too many %s entries (the limit is %u)", what,
		                SC_MEASURE_LIST_MAX);
	if (n > SC_MEASURE_TOTAL_MAX - m->strings_total)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0,
		                "command and environment are larger than the limit of %u bytes",
		                SC_MEASURE_TOTAL_MAX);
	if (s->n == s->alloc) {
		s->alloc = s->alloc ? 2 * s->alloc : 8;
		s->v = xreallocarray(s->v, s->alloc, sizeof(char *));
	}
	s->v[s->n++] = xstrdup(str);
	m->strings_total += n;
	return 0;
}

int sc_measure_add_arg(sc_measure *m, const char *arg, sconify_error_t *err)
{
	return strv_add(m, &m->argv, arg, "argument", err);
}

int sc_measure_add_env(sc_measure *m, const char *entry, sconify_error_t *err)
{
	const char *eq = strchr(entry, '=');
	if (eq == NULL || eq == entry) {
		cleanup_free char *q = sc_quote(entry, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "environment entry `%s' is not NAME=value", q);
	}
	return strv_add(m, &m->env, entry, "environment", err);
}

int sc_measure_set_cwd(sc_measure *m, const char *cwd, sconify_error_t *err)
{
	if (check_path(cwd, "working directory", err) < 0)
		return -1;
	free(m->cwd);
	m->cwd = xstrdup(cwd);
	return 0;
}

int sc_measure_add_region(sc_measure *m, sc_measure_region_kind kind, const char *path, sconify_error_t *err)
{
	if ((unsigned)kind > SC_MEASURE_REGION_AUTHENTICATED) {
		cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "region `%s': unknown kind %u", q,
		                (unsigned)kind);
	}
	if (check_path(path, "region", err) < 0)
		return -1;
	if (m->n_regions >= SC_MEASURE_REGIONS_MAX)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "too many regions (the limit is %u)",
		                SC_MEASURE_REGIONS_MAX);
	if (m->n_regions == m->regions_alloc) {
		m->regions_alloc = m->regions_alloc ? 2 * m->regions_alloc : 8;
		m->regions = xreallocarray(m->regions, m->regions_alloc, sizeof(*m->regions));
	}
	m->regions[m->n_regions++] = (struct region){.kind = (uint8_t)kind, .path = xstrdup(path)};
	return 0;
}

/* ---- the encoding ---- */

/* strcmp orders bytes as unsigned char: the bytewise order the doc states. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_region(const void *a, const void *b)
{
	return strcmp(((const struct region *)a)->path, ((const struct region *)b)->path);
}

static size_t name_len(const char *entry)
{
	return (size_t)(strchr(entry, '=') - entry);
}

static void put_be32(sc_buf *b, uint32_t v)
{
	char x[4] = {(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};
	sc_buf_append(b, x, 4, NULL, NULL); /* cap SIZE_MAX: cannot fail */
}

static void put_bytes(sc_buf *b, const void *p, size_t n)
{
	sc_buf_append(b, p, n, NULL, NULL);
}

/* Every string is bounded by the caps above, far below 2^32. */
static void put_str(sc_buf *b, const char *s)
{
	size_t n = strlen(s);
	put_be32(b, (uint32_t)n);
	put_bytes(b, s, n);
}

static int encode(sc_measure *m, sc_buf *out, sconify_error_t *err)
{
	if (m->spent)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "measurement: the builder was already finished");
	if (m->mixed)
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "measurement: executable content both streamed and given as a hash");
	const char *missing = !m->have_runtime      ? "the runtime's hash"
	                      : m->exe_path == NULL ? "the executable's path"
	                      : m->exe == EXE_NONE  ? "the executable's content"
	                      : !m->have_pin        ? "the shield metadata pin"
	                      : m->argv.n == 0      ? "the command (empty command)"
	                      : m->cwd == NULL      ? "the working directory"
	                                            : NULL;
	if (missing)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "measurement: %s is missing", missing);

	/* Sorted, a NAME given twice sits in adjacent entries: all entries that
	 * start with "NAME=" form one contiguous run in bytewise order. */
	if (m->env.n > 1) /* qsort's base may not be NULL, even for 0 */
		qsort(m->env.v, m->env.n, sizeof(char *), cmp_str);
	for (size_t i = 1; i < m->env.n; i++) {
		size_t a = name_len(m->env.v[i - 1]), b = name_len(m->env.v[i]);
		if (a == b && memcmp(m->env.v[i - 1], m->env.v[i], a) == 0) {
			cleanup_free char *q = sc_quote_n(m->env.v[i], a, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "duplicate environment variable `%s' (each NAME may appear once)", q);
		}
	}
	if (m->n_regions > 1)
		qsort(m->regions, m->n_regions, sizeof(*m->regions), cmp_region);
	for (size_t i = 1; i < m->n_regions; i++)
		if (strcmp(m->regions[i - 1].path, m->regions[i].path) == 0) {
			cleanup_free char *q = sc_quote(m->regions[i].path, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "duplicate region `%s'", q);
		}

	if (m->exe == EXE_STREAMED) {
		sha256_final(m->exe_ctx, m->exe_sha256);
		EVP_MD_CTX_free(steal_pointer(&m->exe_ctx));
	}
	m->spent = true;

	put_str(out, DOMAIN);
	put_bytes(out, m->runtime, SC_MEASURE_BYTES);
	put_str(out, m->exe_path);
	put_bytes(out, m->exe_sha256, SC_MEASURE_BYTES);
	put_bytes(out, m->pin, SC_MEASURE_BYTES);
	put_be32(out, (uint32_t)m->argv.n);
	for (size_t i = 0; i < m->argv.n; i++)
		put_str(out, m->argv.v[i]);
	put_be32(out, (uint32_t)m->env.n);
	for (size_t i = 0; i < m->env.n; i++)
		put_str(out, m->env.v[i]);
	put_str(out, m->cwd);
	put_be32(out, (uint32_t)m->n_regions);
	for (size_t i = 0; i < m->n_regions; i++) {
		put_bytes(out, &m->regions[i].kind, 1);
		put_str(out, m->regions[i].path);
	}
	return 0;
}

int sc_measure_encode(sc_measure *m, uint8_t **ret_data, size_t *ret_len, sconify_error_t *err)
{
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	if (encode(m, &b, err) < 0)
		return -1;
	*ret_data = (uint8_t *)sc_buf_steal(&b, ret_len);
	return 0;
}

int sc_measure_finish(sc_measure *m, uint8_t ret[SC_MEASURE_BYTES], sconify_error_t *err)
{
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	if (encode(m, &b, err) < 0)
		return -1;
	sha256(b.data, b.len, ret);
	return 0;
}

/* ---- hex ---- */

void sc_measure_hex(const uint8_t bytes[SC_MEASURE_BYTES], char out[SC_MEASURE_HEX + 1])
{
	sc_hex_encode(bytes, SC_MEASURE_BYTES, out);
}

int sc_measure_parse_hex(const char *hex, uint8_t ret[SC_MEASURE_BYTES], sconify_error_t *err)
{
	uint8_t tmp[SC_MEASURE_BYTES];
	if (strnlen(hex, SC_MEASURE_HEX + 1) != SC_MEASURE_HEX ||
	    !sc_hex_decode(hex, SC_MEASURE_HEX, tmp, true)) {
		cleanup_free char *q = sc_quote(hex, 80);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "measurement `%s': not 64 lowercase hex digits",
		                q);
	}
	memcpy(ret, tmp, SC_MEASURE_BYTES);
	return 0;
}

/* ---- hashing files ---- */

int sc_measure_hash_fd(int fd, uint8_t ret[SC_MEASURE_BYTES], sconify_error_t *err)
{
	cleanup_md_ctx EVP_MD_CTX *ctx = sha256_new();
	cleanup_free char *buf = xmalloc(SC_STREAM_CHUNK);
	for (;;) {
		ssize_t n = read(fd, buf, SC_STREAM_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sc_error_errno(err, errno, "reading the file to measure: %s", strerror(errno));
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			abort();
	}
	sha256_final(ctx, ret);
	return 0;
}

int sc_measure_hash_file(const char *path, uint8_t ret[SC_MEASURE_BYTES], sconify_error_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
		return sc_error(err, e == ENOENT ? SCONIFY_ERR_NOT_FOUND : SCONIFY_ERR_IO, e,
		                "opening `%s' to measure it: %s", q, strerror(e));
	}
	if (sc_measure_hash_fd(fd, ret, err) < 0) {
		cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
		return sc_error_wrap(err, "`%s'", q);
	}
	return 0;
}

/* ---- resolving the command ---- */

const char *sc_measure_env_path(const char *const *env, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], "PATH=", 5) == 0)
			return env[i] + 5;
	return NULL;
}

/* dir (absolute, n bytes, maybe with trailing slashes) + "/" + name, or NULL
 * when the result would be longer than SC_MEASURE_PATH_MAX. */
static char *join(const char *dir, size_t n, const char *name)
{
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 1)
		n = 0; /* the root: "/" + name */
	size_t len = n + 1 + strlen(name);
	if (len > SC_MEASURE_PATH_MAX)
		return NULL;
	char *p = xmalloc(len + 1);
	memcpy(p, dir, n);
	p[n] = '/';
	strcpy(p + n + 1, name);
	return p;
}

/* Runs check on candidate; 1 with *ret_path on a match. */
static int try_candidate(const char *argv0, const char *candidate, sc_measure_exe_check_fn check, void *ctx,
                         char **ret_path, sconify_error_t *err)
{
	cleanup_free char *real = NULL;
	int r = check(ctx, candidate, &real, err);
	if (r < 0) {
		cleanup_free char *q = sc_quote(argv0, SC_QUOTE_MAX);
		return sc_error_wrap(err, "resolving command `%s'", q);
	}
	if (r == 0)
		return 0;
	if (real == NULL || strlen(real) > SC_MEASURE_PATH_MAX || !sc_measure_path_normal(real) ||
	    strcmp(real, "/") == 0) {
		cleanup_free char *q = sc_quote(argv0, SC_QUOTE_MAX);
		cleanup_free char *qr = sc_quote(real ? real : "(none)", SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "command `%s' resolved to `%s', which is not an absolute normal path", q, qr);
	}
	*ret_path = steal_pointer(&real);
	return 1;
}

int sc_measure_resolve_command(const char *argv0, const char *path_env, const char *cwd,
                               sc_measure_exe_check_fn check, void *ctx, char **ret_path,
                               sconify_error_t *err)
{
	if (argv0 == NULL || argv0[0] == '\0')
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "empty command: argv[0] names no executable");
	if (strlen(argv0) > SC_MEASURE_PATH_MAX) {
		cleanup_free char *q = sc_quote(argv0, 80);
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "command `%s': path longer than %u bytes", q,
		                SC_MEASURE_PATH_MAX);
	}
	if (cwd == NULL || cwd[0] != '/') {
		cleanup_free char *q = sc_quote(cwd ? cwd : "(none)", SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "working directory `%s' is not absolute", q);
	}

	if (strchr(argv0, '/')) {
		cleanup_free char *candidate =
		        argv0[0] == '/' ? xstrdup(argv0) : join(cwd, strlen(cwd), argv0);
		cleanup_free char *q = sc_quote(argv0, SC_QUOTE_MAX);
		if (candidate == NULL)
			return sc_error(err, SCONIFY_ERR_LIMIT, 0,
			                "command `%s' in working directory: path longer than %u bytes", q,
			                SC_MEASURE_PATH_MAX);
		int r = try_candidate(argv0, candidate, check, ctx, ret_path, err);
		if (r < 0)
			return -1;
		if (r == 0) {
			cleanup_free char *qc = sc_quote(candidate, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0,
			                "command `%s' not found: `%s' is not an executable regular file", q,
			                qc);
		}
		return 0;
	}

	const char *path = path_env ? path_env : SC_MEASURE_DEFAULT_PATH;
	for (const char *p = path;;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		/* Empty and relative entries would search the working directory
		 * (POSIX's legacy reading): skipped, as Go's exec.LookPath refuses
		 * them, so that the measured path never depends on where one stands. */
		if (n > 0 && p[0] == '/') {
			cleanup_free char *candidate = join(p, n, argv0);
			if (candidate) {
				int r = try_candidate(argv0, candidate, check, ctx, ret_path, err);
				if (r != 0)
					return r < 0 ? -1 : 0;
			}
		}
		if (colon == NULL)
			break;
		p = colon + 1;
	}
	cleanup_free char *q = sc_quote(argv0, SC_QUOTE_MAX);
	cleanup_free char *qp = sc_quote(path, SC_QUOTE_MAX);
	return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "command `%s' not found in PATH `%s'%s", q, qp,
	                path_env ? "" : " (the default: the environment has no PATH)");
}

int sc_measure_fs_check(void *ctx, const char *path, char **ret_real, sconify_error_t *err)
{
	(void)ctx;
	struct stat st;
	if (stat(path, &st) < 0) {
		int e = errno;
		if (e == ENOENT || e == ENOTDIR || e == EACCES || e == ELOOP || e == ENAMETOOLONG)
			return 0;
		cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
		return sc_error_errno(err, e, "stat `%s': %s", q, strerror(e));
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0)
		return 0;
	char *real = realpath(path, NULL);
	if (real == NULL) {
		int e = errno;
		cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
		return sc_error_errno(err, e, "resolving `%s': %s", q, strerror(e));
	}
	*ret_real = real;
	return 1;
}
