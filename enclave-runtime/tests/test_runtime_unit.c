/* SPDX-License-Identifier: Apache-2.0 */
/* The runtime's logic without a kernel filter: session files, path
 * resolution, the files provider, the shield provider and the measurement. The supervisor and PID 1 are
 * tested end to end by tests/integration/test_runtime.py. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/xalloc.h"
#include "launch.h"
#include "linkcache.h"
#include "provider.h"
#include "resolve.h"
#include "session.h"
#include "shieldfs.h"
#include "support.h"

/* ---- session policies ---- */

#define MEAS "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define PIN "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static const char good_policy[] = "name: ns/app\n"
                                  "version: \"0.3\"\n"
                                  "services:\n"
                                  "  - name: web\n"
                                  "    image_name: img\n"
                                  "    command: [/bin/cat, /etc/s]\n"
                                  "    environment: {PATH: /bin, A: b, PW: $$SCONE::pw$$}\n"
                                  "    pwd: /tmp/x\n"
                                  "    fspf_path: /.sconify/fspf\n"
                                  "    fspf_key: " KEY "\n"
                                  "    fspf_tag: " PIN "\n"
                                  "    measurements: [" MEAS "]\n"
                                  "  - name: other\n"
                                  "    command: x\n"
                                  "    measurements: [" MEAS "]\n"
                                  "images:\n"
                                  "  - name: img\n"
                                  "    injection_files:\n"
                                  "      - path: /etc/s\n"
                                  "        content: \"hello $$SCONE::tok$$\\n\"\n"
                                  "secrets:\n"
                                  "  - name: pw\n"
                                  "    kind: ascii\n"
                                  "    size: 12\n"
                                  "  - name: tok\n"
                                  "    kind: ascii\n"
                                  "    value: t0k\n"
                                  "security:\n"
                                  "  attestation:\n"
                                  "    mode: sim\n";

static int parse(const char *doc, const char *id, sc_rt_session **ret, sconify_error_t *err)
{
	return sc_rt_session_parse(doc, strlen(doc), "session `t'", id, ret, err);
}

START_TEST(session_resolves_the_service_of_the_config_id)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_session sc_rt_session *s = NULL;
	ck_assert_ok(parse(good_policy, "ns/app/web", &s, &err), err);
	ck_assert_str_eq(s->session, "ns/app");
	ck_assert_str_eq(s->service, "web");
	ck_assert_uint_eq(s->argc, 2);
	ck_assert_str_eq(s->argv[0], "/bin/cat");
	ck_assert_str_eq(s->argv[1], "/etc/s");
	ck_assert_ptr_null(s->argv[2]);
	ck_assert_uint_eq(s->n_env, 3);
	ck_assert_str_eq(s->env[0], "A=b");
	ck_assert_str_eq(s->env[1], "PATH=/bin");
	ck_assert_str_eq(s->workdir, "/tmp/x");
	ck_assert_uint_eq(s->n_files, 1);
	ck_assert_str_eq(s->files[0].path, "/etc/s");
	ck_assert_uint_eq(s->files[0].len, 10);
	ck_assert_mem_eq(s->files[0].data, "hello t0k\n", 10);
	ck_assert_str_eq(s->fspf_path, "/.sconify/fspf");
	ck_assert_uint_eq(s->fspf_key[1], 0x11);
	ck_assert_uint_eq(s->fspf_pin[0], 0xff);
	ck_assert_uint_eq(s->n_measurements, 1);
	ck_assert_str_eq(s->measurements[0], MEAS);
}
END_TEST

START_TEST(session_generates_secrets_the_cas_would_generate)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_session sc_rt_session *a = NULL, *b = NULL;
	ck_assert_ok(parse(good_policy, "ns/app/web", &a, &err), err);
	ck_assert_ok(parse(good_policy, "ns/app/web", &b, &err), err);
	ck_assert(strncmp(a->env[2], "PW=", 3) == 0);
	ck_assert_uint_eq(strlen(a->env[2]), 3 + 12);
	for (const char *c = a->env[2] + 3; *c; c++)
		ck_assert_msg((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
		                      (*c >= 'A' && *c <= 'Z'),
		              "%s", a->env[2]);
	ck_assert_str_ne(a->env[2], b->env[2]);
}
END_TEST

START_TEST(session_without_shield_defaults_to_root_workdir)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_session sc_rt_session *s = NULL;
	ck_assert_ok(parse(good_policy, "ns/app/other", &s, &err), err);
	ck_assert_str_eq(s->argv[0], "x");
	ck_assert_ptr_null(s->env[0]);
	ck_assert_str_eq(s->workdir, "/");
	ck_assert_uint_eq(s->n_files, 0);
	ck_assert_ptr_null(s->fspf_path);
}
END_TEST

static char *replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	ck_assert_ptr_nonnull(at);
	return xasprintf("%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
}

static const struct {
	const char *from, *to, *id;
	sconify_error_kind_t kind;
	const char *phrase;
} bad_sessions[] = {
        {"    mode: sim\n", "    mode: hardware\n", "ns/app/web", SCONIFY_ERR_AUTH, "allows sim mode"},
        {"security:\n  attestation:\n    mode: sim\n", "", "ns/app/web", SCONIFY_ERR_AUTH, "is not `sim'"},
        {"", "", "other/web", SCONIFY_ERR_INVALID, "is not the session `other' of SCONE_CONFIG_ID"},
        {"", "", "ns/app/nope", SCONIFY_ERR_NOT_FOUND, "service `nope' not found"},
        {"", "", "web", SCONIFY_ERR_INVALID, "is not [namespace/]session/service"},
        {"", "", "ns/app/", SCONIFY_ERR_INVALID, "is not [namespace/]session/service"},
        {"fspf_tag: " PIN, "fspf_tag: 00112233445566778899aabbccddeeff", "ns/app/web",
         SCONIFY_ERR_UNSUPPORTED, "the shield's metadata pin has 32"},
        {"version: \"0.3\"\n", "version: \"0.3\"\nvolumes: []\n", "ns/app/web", SCONIFY_ERR_INVALID,
         "session `t':3"},
        {"name: ns/app\n", "name: ns/app\nname: x\n", "ns/app/web", SCONIFY_ERR_INVALID, "duplicate key"},
        {"value: t0k", "size: 4\n    value: t0k", "ns/app/web", SCONIFY_ERR_INVALID, "session `t'"},
};

START_TEST(session_rejects_what_it_must_not_run)
{
	cleanup_error sconify_error_t err = NULL;
	sc_rt_session *s = NULL;
	cleanup_free char *doc = bad_sessions[_i].from[0]
	                                 ? replace(good_policy, bad_sessions[_i].from, bad_sessions[_i].to)
	                                 : xstrdup(good_policy);
	int r = parse(doc, bad_sessions[_i].id, &s, &err);
	ck_assert_fails(r, err, bad_sessions[_i].kind, bad_sessions[_i].phrase);
	ck_assert_ptr_null(s);
	/* Never the key in a message. */
	ck_assert_ptr_null(strstr(sconify_error_message(err), KEY));
}
END_TEST

START_TEST(session_load_names_a_missing_file)
{
	cleanup_error sconify_error_t err = NULL;
	sc_rt_session *s = NULL;
	int r = sc_rt_session_load("/nonexistent/session.yml", "a/b", &s, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_IO, "session file `/nonexistent/session.yml'");
	ck_assert_msg(strstr(sconify_error_message(err), "No such file") != NULL, "%s",
	              sconify_error_message(err));
}
END_TEST

START_TEST(path_normalize_and_under)
{
	char *p = sc_rt_path_normalize("//a/./b//c/", false);
	ck_assert_str_eq(p, "/a/b/c");
	free(p);
	p = sc_rt_path_normalize("/a/../..", true);
	ck_assert_str_eq(p, "/");
	free(p);
	ck_assert_ptr_null(sc_rt_path_normalize("/a/../b", false));
	ck_assert_ptr_null(sc_rt_path_normalize("a", true));
	ck_assert(sc_rt_path_under("/secrets/k", "/secrets"));
	ck_assert(sc_rt_path_under("/secrets", "/secrets"));
	ck_assert(!sc_rt_path_under("/secretsx", "/secrets"));
	ck_assert(sc_rt_path_under("/x", "/"));
}
END_TEST

/* ---- path resolution over a pretend file system ---- */

static const struct {
	const char *path;
	const char *link; /* NULL: a directory */
} fake_fs[] = {
        {"/etc", NULL},
        {"/etc/passwd", NULL},
        {"/secrets", NULL},
        {"/l", "/secrets"},
        {"/etc/rel", "../secrets"},
        {"/a", NULL},
        {"/a/l", "/x/y"},
        {"/x", NULL},
        {"/x/y", NULL},
        {"/loop1", "/loop2"},
        {"/loop2", "/loop1"},
        {"/empty", ""},
        {"/magic", "<pipe>"},
        {"/r", NULL},
        {"/r/abs", "/k"},
        {"/r/up", "../../../k"},
        /* /p is protected: its links are checked against the metadata */
        {"/p", NULL},
        {"/p/data", NULL},
        {"/p/dir", NULL},
        {"/p/ok", "data"},
        {"/p/out", "/x"},
        {"/p/evil", "/x"},
        {"/p/planted", "/x"},
        {"/into", "/p/planted"},
        {"/q", "/x"}, /* above the protected region /q/r: moves it */
        {"/p/ioerr", NULL},
};

/* What the metadata records in the protected region /p. */
static const struct {
	const char *path, *target;
} fake_links[] = {
        {"/p/ok", "data"}, {"/p/out", "/x"}, {"/p/evil", "/y"}, {"/p/gone", "data"}, {"/p/dir", "data"},
};

static int fake_protected_link(void *ctx, const char *path, const char **ret_target)
{
	(void)ctx;
	*ret_target = NULL;
	if (strcmp(path, "/q") == 0 || strcmp(path, "/q/r") == 0 || strncmp(path, "/q/r/", 5) == 0)
		return 1;
	if (strcmp(path, "/p") != 0 && strncmp(path, "/p/", 3) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(fake_links) / sizeof(fake_links[0]); i++)
		if (strcmp(fake_links[i].path, path) == 0)
			*ret_target = fake_links[i].target;
	return 1;
}

static int fake_lstat(void *ctx, const char *path, mode_t *ret_type)
{
	(void)ctx;
	for (size_t i = 0; i < sizeof(fake_fs) / sizeof(fake_fs[0]); i++) {
		if (strcmp(fake_fs[i].path, path) == 0) {
			*ret_type = fake_fs[i].link ? S_IFLNK : S_IFDIR;
			return 0;
		}
	}
	return -ENOENT;
}

static int fake_readlink(void *ctx, const char *path, char *buf, size_t size)
{
	(void)ctx;
	for (size_t i = 0; i < sizeof(fake_fs) / sizeof(fake_fs[0]); i++) {
		if (strcmp(fake_fs[i].path, path) != 0)
			continue;
		if (strcmp(path, "/p/ioerr") == 0)
			return -EIO;
		if (fake_fs[i].link == NULL)
			return -EINVAL;
		if (strcmp(fake_fs[i].link, "<pipe>") == 0)
			return -EXDEV;
		snprintf(buf, size, "%s", fake_fs[i].link);
		return 0;
	}
	return -ENOENT;
}

static const sc_rt_fsops fake_ops = {
        .lstat_type = fake_lstat, .readlink = fake_readlink, .protected_link = fake_protected_link};

static const struct {
	const char *root, *base, *path;
	int flags;
	int want_r;
	const char *want;
} resolve_cases[] = {
        {"/", "/", "/etc/passwd", 0, 0, "/etc/passwd"},
        {"/", "/etc", "passwd", 0, 0, "/etc/passwd"},
        {"/", "/etc", "./../etc/./passwd", 0, 0, "/etc/passwd"},
        {"/", "/", "/../../..", 0, 0, "/"},
        {"/", "/", "/l/key", 0, 0, "/secrets/key"},
        {"/", "/etc", "rel/key", 0, 0, "/secrets/key"},
        {"/", "/", "/a/l/../z", 0, 0, "/x/z"},
        {"/", "/", "/nope/../secrets/k", 0, -ENOENT, NULL}, /* the kernel cannot pass /nope */
        {"/", "/", "/loop1", 0, -ELOOP, NULL},
        {"/", "/", "/l", SC_RT_RESOLVE_NOFOLLOW, 0, "/l"},
        {"/", "/", "/l/", SC_RT_RESOLVE_NOFOLLOW, 0, "/secrets"},
        {"/", "/", "/l/k", SC_RT_RESOLVE_NO_SYMLINKS, -ELOOP, NULL},
        {"/", "/", "/empty", 0, -ENOENT, NULL},
        {"/", "/", "", 0, -ENOENT, NULL},
        {"/", "/", "/magic/x", 0, -EXDEV, NULL},
        {"/r", "/r", "/../k", 0, 0, "/r/k"},
        {"/r", "/r", "abs", 0, 0, "/r/k"},
        {"/r", "/r", "up", 0, 0, "/r/k"},
        {"/r", "/r", "../k", SC_RT_RESOLVE_BENEATH, -EXDEV, NULL},
        {"/r", "/r", "abs", SC_RT_RESOLVE_BENEATH, -EXDEV, NULL},
        /* protected links: followed when the disk holds what the metadata
         * records, wherever they lead; refused otherwise (want: the message) */
        {"/", "/", "/p/ok/f", 0, 0, "/p/data/f"},
        {"/", "/", "/p/out/y", 0, 0, "/x/y"},
        {"/", "/p", "ok", 0, 0, "/p/data"},
        {"/", "/", "/p/new/f", 0, 0, "/p/new/f"},
        {"/", "/", "/p/planted", SC_RT_RESOLVE_NOFOLLOW, 0, "/p/planted"},
        {"/", "/", "/p/evil/y", 0, -EIO, "`/p/evil' is not the symlink the image's metadata lists"},
        {"/", "/", "/p/planted/y", 0, -EIO, "`/p/planted' is a symlink the image's metadata does not list"},
        {"/", "/", "/into/y", 0, -EIO, "`/p/planted' is a symlink"},
        {"/", "/", "/p/gone/f", 0, -EIO, "`/p/gone' is missing"},
        {"/", "/", "/p/dir/f", 0, -EIO, "`/p/dir' is not the symlink"},
        {"/", "/", "/p/ok/f", SC_RT_RESOLVE_NO_SYMLINKS, -ELOOP, NULL},
        {"/", "/", "/q/r/f", 0, -EIO, "`/q' is a symlink the image's metadata does not list"},
        {"/", "/", "/p/ok/../data/f", 0, 0, "/p/data/f"},
        {"/", "/p", "ok/../../x/y", 0, 0, "/x/y"},
        {"/", "/", "/p/new/../evil/y", 0, -ENOENT, NULL},
        {"/", "/", "/nope/k", 0, 0, "/nope/k"}, /* taken as written: injected files need no disk */
        {"/", "/", "/p/planted/", SC_RT_RESOLVE_NOFOLLOW, -EIO, "`/p/planted' is a symlink"},
        {"/", "/", "/p/ioerr/f", 0, -EIO, NULL}, /* an I/O error: no verdict, no message */
        {"/p", "/p", "/ok/f", 0, 0, "/p/data/f"},
        {"/p", "/p", "/planted/f", 0, -EIO, "`/p/planted' is a symlink"},
};

START_TEST(resolve_walks_like_the_kernel)
{
	char *out = NULL;
	int r = sc_rt_resolve(&fake_ops, resolve_cases[_i].root, resolve_cases[_i].base,
	                      resolve_cases[_i].path, resolve_cases[_i].flags, &out);
	ck_assert_msg(r == resolve_cases[_i].want_r, "`%s': got %d, want %d", resolve_cases[_i].path, r,
	              resolve_cases[_i].want_r);
	if (r == 0)
		ck_assert_str_eq(out, resolve_cases[_i].want);
	if (r == -EIO && resolve_cases[_i].want) /* the message for the log */
		ck_assert_msg(out && strstr(out, resolve_cases[_i].want) != NULL, "`%s': message `%s'",
		              resolve_cases[_i].path, out ? out : "(none)");
	else if (r < 0)
		ck_assert_ptr_null(out);
	free(out);
}
END_TEST

START_TEST(resolve_refuses_overlong_paths)
{
	char *long_path = malloc(SC_RT_PATH_MAX + 10);
	memset(long_path, 'a', SC_RT_PATH_MAX + 9);
	long_path[0] = '/';
	long_path[SC_RT_PATH_MAX + 9] = '\0';
	char *out = NULL;
	ck_assert_int_eq(sc_rt_resolve(&fake_ops, "/", "/", long_path, 0, &out), -ENAMETOOLONG);
	free(long_path);
}
END_TEST

/* ---- the files provider ---- */

static sc_rt_session *test_session(void)
{
	cleanup_error sconify_error_t err = NULL;
	sc_rt_session *s = NULL;
	int r = parse("name: s\nversion: \"0.3\"\nservices:\n  - name: a\n    image_name: i\n"
	              "    command: x\n    measurements: [" MEAS "]\n"
	              "images:\n  - name: i\n    injection_files:\n      - path: /etc/secret\n"
	              "        content: \"top secret\\n\"\n"
	              "security:\n  attestation:\n    mode: sim\n",
	              "s/a", &s, &err);
	ck_assert_ok(r, err);
	return s;
}

static sc_rt_answer ask(sc_rt_provider *p, const char *path, int flags)
{
	cleanup_error sconify_error_t err = NULL;
	sc_rt_answer a = {.verdict = SC_RT_CONTINUE};
	ck_assert_ok(p->open(p, path, flags, &a, &err), err);
	return a;
}

START_TEST(provider_serves_injected_files_from_sealed_memory)
{
	cleanup_session sc_rt_session *s = test_session();
	cleanup_provider sc_rt_provider *p = sc_rt_files_provider_new(s, NULL);
	sc_rt_answer a = ask(p, "/etc/secret", O_RDONLY);
	ck_assert_int_eq(a.verdict, SC_RT_FD);
	sc_rt_answer b = ask(p, "/etc/secret", O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(b.verdict, SC_RT_FD);
	char buf[64] = {0};
	ck_assert_int_eq(read(a.fd, buf, 3), 3);
	/* Each open has its own offset. */
	ck_assert_int_eq(read(b.fd, buf, sizeof(buf) - 1), 11);
	ck_assert_str_eq(buf, "top secret\n");
	struct stat st;
	ck_assert_int_eq(fstat(a.fd, &st), 0);
	ck_assert_int_eq(st.st_size, 11);
	/* Sealed: not even a read-write reopen can change it. */
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", a.fd);
	int w = open(proc, O_RDWR);
	if (w >= 0) {
		ck_assert_int_lt(write(w, "x", 1), 0);
		ck_assert_int_eq(errno, EPERM);
		close(w);
	}
	close(a.fd);
	close(b.fd);
}
END_TEST

static const struct {
	const char *path;
	int flags;
	sc_rt_verdict verdict;
	int error;
} provider_cases[] = {
        {"/etc/secret", O_WRONLY, SC_RT_ERRNO, EROFS},
        {"/etc/secret", O_RDWR, SC_RT_ERRNO, EROFS},
        {"/etc/secret", O_RDONLY | O_TRUNC, SC_RT_ERRNO, EROFS},
        {"/etc/secret", O_WRONLY | O_CREAT, SC_RT_ERRNO, EROFS},
        {"/etc/secret", O_RDONLY | O_CREAT | O_EXCL, SC_RT_ERRNO, EEXIST},
        {"/etc/secret", O_RDONLY | O_DIRECTORY, SC_RT_ERRNO, ENOTDIR},
        {"/etc/secret", O_PATH, SC_RT_FD, 0},
        {"/secrets/unknown", O_RDONLY, SC_RT_CONTINUE, 0},
        {"/etc/passwd", O_RDWR, SC_RT_CONTINUE, 0},
};

START_TEST(provider_answers_like_a_read_only_file_system)
{
	cleanup_session sc_rt_session *s = test_session();
	cleanup_provider sc_rt_provider *p = sc_rt_files_provider_new(s, NULL);
	sc_rt_answer a = ask(p, provider_cases[_i].path, provider_cases[_i].flags);
	ck_assert_msg(a.verdict == provider_cases[_i].verdict, "`%s' %#x: verdict %d",
	              provider_cases[_i].path, provider_cases[_i].flags, a.verdict);
	if (a.verdict == SC_RT_ERRNO)
		ck_assert_int_eq(a.error, provider_cases[_i].error);
	if (a.verdict == SC_RT_FD)
		close(a.fd);
}
END_TEST

typedef struct {
	sc_rt_provider base;
	int calls;
} fake_shield;

static int shield_open(sc_rt_provider *p, const char *path, int flags, sc_rt_answer *ret,
                       sconify_error_t *err)
{
	(void)flags;
	((fake_shield *)p)->calls++;
	if (strcmp(path, "/secrets/tampered") == 0) {
		sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "chunk 0: authentication failed");
		*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EIO};
		return 0;
	}
	if (strcmp(path, "/secrets/key") == 0) {
		cleanup_close int fd = -1;
		if (sc_rt_sealed_memfd("key", "plain", 5, &fd, err) < 0)
			return -1;
		return sc_rt_serve_memfd(fd, flags, ret, err);
	}
	*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
	return 0;
}

static void shield_free(sc_rt_provider *p)
{
	free(p);
}

START_TEST(provider_asks_the_shield_about_every_path_not_injected)
{
	cleanup_session sc_rt_session *s = test_session();
	fake_shield *sh = calloc(1, sizeof(*sh));
	sh->base.open = shield_open;
	sh->base.free = shield_free;
	cleanup_provider sc_rt_provider *p = sc_rt_files_provider_new(s, &sh->base);

	sc_rt_answer a = ask(p, "/secrets/key", O_RDONLY);
	ck_assert_int_eq(a.verdict, SC_RT_FD);
	char buf[8] = {0};
	ck_assert_int_eq(read(a.fd, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "plain");
	close(a.fd);

	cleanup_error sconify_error_t err = NULL;
	ck_assert_int_eq(p->open(p, "/secrets/tampered", O_RDONLY, &a, &err), 0);
	ck_assert_int_eq(a.verdict, SC_RT_ERRNO);
	ck_assert_int_eq(a.error, EIO);
	ck_assert_ptr_nonnull(err); /* left for the log line */

	a = ask(p, "/secrets/other", O_RDONLY);
	ck_assert_int_eq(a.verdict, SC_RT_CONTINUE);
	/* Injected files come first; the shield is not asked about them. */
	int before = sh->calls;
	a = ask(p, "/etc/secret", O_RDONLY);
	ck_assert_int_eq(a.verdict, SC_RT_FD);
	close(a.fd);
	ck_assert_int_eq(sh->calls, before);
}
END_TEST

/* ---- the shield provider ---- */

typedef struct {
	char dir[64];
	char *fspf;
	sc_shield_key *key;
	sc_shield_pin pin;
} shield_fixture;

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Protects name (under dir) as kind: ciphertext or plaintext on disk, the
 * entry in b. */
static void protect(shield_fixture *fx, sc_shield_builder *b, const char *name, sc_shield_kind kind,
                    const char *text)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_shield_encoder sc_shield_encoder *enc = NULL;
	size_t n = strlen(text);
	uint8_t id[SC_SHIELD_FILE_ID_BYTES];
	ck_assert_ok(sc_shield_file_id_random(id, &err), err);
	if (kind == SC_SHIELD_ENCRYPTED)
		ck_assert_ok(sc_shield_encryptor_new(fx->key, id, n, 4096, &enc, &err), err);
	else
		ck_assert_ok(sc_shield_hasher_new(n, 4096, &enc, &err), err);
	cleanup_free char *out = xmalloc(n + 1);
	ck_assert_ok(sc_shield_encoder_update(enc, text, n, out, &err), err);
	cleanup_shield_entry sc_shield_entry *e = NULL;
	ck_assert_ok(sc_shield_encoder_finish(enc, &e, &err), err);
	cleanup_free char *path = xasprintf("%s/%s", fx->dir, name);
	write_file(path, kind == SC_SHIELD_ENCRYPTED ? out : text, n);
	ck_assert_ok(sc_shield_builder_add_file(b, path, e, &err), err);
}

static void shield_fixture_make(shield_fixture *fx)
{
	cleanup_error sconify_error_t err = NULL;
	strcpy(fx->dir, "/tmp/sconify-rt-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx->dir));
	cleanup_free char *enc = xasprintf("%s/enc", fx->dir), *auth = xasprintf("%s/auth", fx->dir);
	ck_assert_int_eq(mkdir(enc, 0755), 0);
	ck_assert_int_eq(mkdir(auth, 0755), 0);
	ck_assert_ok(sc_shield_key_generate(&fx->key, &err), err);
	cleanup_shield_builder sc_shield_builder *b = NULL;
	ck_assert_ok(sc_shield_builder_new(4096, &b, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(b, enc, SC_SHIELD_ENCRYPTED, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(b, auth, SC_SHIELD_AUTHENTICATED, &err), err);
	protect(fx, b, "enc/a", SC_SHIELD_ENCRYPTED, "alpha secret\n");
	protect(fx, b, "enc/b", SC_SHIELD_ENCRYPTED, "bravo secret\n");
	protect(fx, b, "auth/c", SC_SHIELD_AUTHENTICATED, "charlie\n");
	cleanup_free char *planted = xasprintf("%s/enc/planted", fx->dir);
	write_file(planted, "planted\n", 8);
	cleanup_free uint8_t *md = NULL;
	size_t md_len = 0;
	ck_assert_ok(sc_shield_builder_seal(b, fx->key, false, &md, &md_len, &fx->pin, &err), err);
	fx->fspf = xasprintf("%s/fspf", fx->dir);
	write_file(fx->fspf, md, md_len);
}

static void shield_fixture_clear(shield_fixture *fx)
{
	cleanup_free char *cmd = xasprintf("rm -rf '%s'", fx->dir);
	ck_assert_int_eq(system(cmd), 0);
	free(fx->fspf);
	sc_shield_key_free(fx->key);
}

static sc_rt_shield *open_shield(shield_fixture *fx)
{
	cleanup_error sconify_error_t err = NULL;
	uint8_t key[SC_SHIELD_KEY_BYTES];
	sc_shield_key_bytes(fx->key, key);
	sc_rt_shield *sh = NULL;
	ck_assert_ok(sc_rt_shield_open(fx->fspf, key, fx->pin.bytes, &sh, &err), err);
	return sh;
}

static sc_rt_answer ask_at(sc_rt_provider *p, const shield_fixture *fx, const char *name, int flags,
                           sconify_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/%s", fx->dir, name);
	sc_rt_answer a = {.verdict = SC_RT_CONTINUE};
	ck_assert_int_eq(p->open(p, path, flags, &a, err), 0);
	return a;
}

static void assert_serves(sc_rt_provider *p, const shield_fixture *fx, const char *name, const char *text)
{
	cleanup_error sconify_error_t err = NULL;
	sc_rt_answer a = ask_at(p, fx, name, O_RDONLY, &err);
	ck_assert_msg(a.verdict == SC_RT_FD, "%s: verdict %d (%s)", name, a.verdict,
	              err ? sconify_error_message(err) : "");
	char buf[64] = {0};
	ck_assert_int_eq(read(a.fd, buf, sizeof(buf) - 1), (ssize_t)strlen(text));
	ck_assert_str_eq(buf, text);
	close(a.fd);
}

START_TEST(shield_provider_serves_verified_plaintext_and_hides_the_rest)
{
	_cleanup_(shield_fixture_clear) shield_fixture fx = {0};
	shield_fixture_make(&fx);
	_cleanup_(sc_rt_shield_freep) sc_rt_shield *sh = open_shield(&fx);
	cleanup_provider sc_rt_provider *p = sc_rt_shield_provider_new(sh);
	assert_serves(p, &fx, "enc/a", "alpha secret\n");
	assert_serves(p, &fx, "enc/a", "alpha secret\n"); /* from the cache */
	assert_serves(p, &fx, "auth/c", "charlie\n");

	cleanup_error sconify_error_t err = NULL;
	sc_rt_answer a = ask_at(p, &fx, "enc/planted", O_RDONLY, &err);
	ck_assert_int_eq(a.verdict, SC_RT_ERRNO);
	ck_assert_int_eq(a.error, ENOENT);
	a = ask_at(p, &fx, "enc/new", O_WRONLY | O_CREAT, &err);
	ck_assert_int_eq(a.verdict, SC_RT_ERRNO);
	ck_assert_int_eq(a.error, EROFS);
	a = ask_at(p, &fx, "enc/a", O_RDWR, &err);
	ck_assert_int_eq(a.verdict, SC_RT_ERRNO);
	ck_assert_int_eq(a.error, EROFS);
	a = ask_at(p, &fx, "enc", O_RDONLY | O_DIRECTORY, &err);
	ck_assert_int_eq(a.verdict, SC_RT_CONTINUE);
	/* Without O_DIRECTORY, the directory checked is the one handed over. */
	a = ask_at(p, &fx, "enc", O_RDONLY, &err);
	ck_assert_int_eq(a.verdict, SC_RT_FD);
	struct stat st;
	ck_assert_int_eq(fstat(a.fd, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	close(a.fd);
	a = ask_at(p, &fx, "fspf", O_RDONLY, &err);
	ck_assert_int_eq(a.verdict, SC_RT_CONTINUE);
	ck_assert_ptr_null(err);
}
END_TEST

START_TEST(shield_provider_answers_eio_for_a_tampered_file)
{
	_cleanup_(shield_fixture_clear) shield_fixture fx = {0};
	shield_fixture_make(&fx);
	static const char *const names[] = {"enc/b", "auth/c"};
	for (size_t i = 0; i < 2; i++) {
		cleanup_free char *path = xasprintf("%s/%s", fx.dir, names[i]);
		int fd = open(path, O_RDWR);
		ck_assert_int_ge(fd, 0);
		char c;
		ck_assert_int_eq(pread(fd, &c, 1, 2), 1);
		c ^= 1;
		ck_assert_int_eq(pwrite(fd, &c, 1, 2), 1);
		close(fd);
	}
	_cleanup_(sc_rt_shield_freep) sc_rt_shield *sh = open_shield(&fx);
	cleanup_provider sc_rt_provider *p = sc_rt_shield_provider_new(sh);
	for (size_t i = 0; i < 2; i++) {
		cleanup_error sconify_error_t err = NULL;
		sc_rt_answer a = ask_at(p, &fx, names[i], O_RDONLY, &err);
		ck_assert_int_eq(a.verdict, SC_RT_ERRNO);
		ck_assert_int_eq(a.error, EIO);
		ck_assert_ptr_nonnull(err); /* for the log line */
	}
	assert_serves(p, &fx, "enc/a", "alpha secret\n");
}
END_TEST

/* What the supervisor opens itself it opens without following links: the
 * walk already followed them all, so a link on the way now is the host's. */
START_TEST(shield_provider_follows_no_link_put_on_a_walked_path)
{
	struct open_how probe = {.flags = O_RDONLY | O_DIRECTORY};
	long pfd = syscall(SYS_openat2, AT_FDCWD, "/", &probe, sizeof(probe));
	if (pfd < 0 && errno == ENOSYS) {
		/* qemu-user: the runtime warns and has no such check to test */
		fprintf(stderr, "skipped: no openat2 here\n");
		return;
	}
	if (pfd >= 0)
		close((int)pfd);
	_cleanup_(shield_fixture_clear) shield_fixture fx = {0};
	shield_fixture_make(&fx);
	_cleanup_(sc_rt_shield_freep) sc_rt_shield *sh = open_shield(&fx);
	cleanup_provider sc_rt_provider *p = sc_rt_shield_provider_new(sh);
	cleanup_free char *enc = xasprintf("%s/enc", fx.dir), *moved = xasprintf("%s/enc-moved", fx.dir);
	ck_assert_int_eq(rename(enc, moved), 0);
	ck_assert_int_eq(symlink("enc-moved", enc), 0);
	cleanup_error sconify_error_t err = NULL;
	sc_rt_answer a = ask_at(p, &fx, "enc/a", O_RDONLY, &err);
	ck_assert_int_eq(a.verdict, SC_RT_ERRNO);
	ck_assert_int_eq(a.error, EIO);
	ck_assert_ptr_nonnull(err);
	sconify_error_free(&err);
	a = ask_at(p, &fx, "enc", O_RDONLY, &err); /* the directory handed over */
	ck_assert_int_eq(a.verdict, SC_RT_ERRNO);
	ck_assert_int_eq(a.error, ENOENT);
}
END_TEST

/* /proc, /sys and /dev are the kernel's, whatever the regions say. */
START_TEST(shield_provider_never_protects_the_kernels_file_systems)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(shield_fixture_clear) shield_fixture fx = {0};
	shield_fixture_make(&fx);
	cleanup_shield_builder sc_shield_builder *b = NULL;
	ck_assert_ok(sc_shield_builder_new(4096, &b, &err), err);
	ck_assert_ok(sc_shield_builder_add_region(b, "/", SC_SHIELD_ENCRYPTED, &err), err);
	cleanup_free uint8_t *md = NULL;
	size_t md_len = 0;
	ck_assert_ok(sc_shield_builder_seal(b, fx.key, false, &md, &md_len, &fx.pin, &err), err);
	write_file(fx.fspf, md, md_len);
	_cleanup_(sc_rt_shield_freep) sc_rt_shield *sh = open_shield(&fx);
	cleanup_provider sc_rt_provider *p = sc_rt_shield_provider_new(sh);
	static const char *const kernel[] = {"/proc", "/proc/self/status", "/dev/null", "/sys/kernel"};
	for (size_t i = 0; i < 4; i++) {
		const char *target = "unset";
		ck_assert_int_eq(p->protected_link(p, kernel[i], &target), 0);
		ck_assert_ptr_null(target);
		sc_rt_answer a = {.verdict = SC_RT_ERRNO};
		ck_assert_int_eq(p->open(p, kernel[i], O_RDONLY, &a, &err), 0);
		ck_assert_msg(a.verdict == SC_RT_CONTINUE, "%s: verdict %d", kernel[i], a.verdict);
	}
	const char *target;
	ck_assert_int_eq(p->protected_link(p, "/etc", &target), 1);
	ck_assert_int_eq(p->protected_link(p, "/devx", &target), 1);
	sc_rt_answer a = {.verdict = SC_RT_CONTINUE};
	ck_assert_int_eq(p->open(p, "/etc/passwd", O_RDONLY, &a, &err), 0);
	ck_assert_int_eq(a.verdict, SC_RT_ERRNO); /* not in the metadata: does not exist */
	ck_assert_int_eq(a.error, ENOENT);
}
END_TEST

/* A file large enough to be split over threads (SC_RT_PARALLEL_MIN), whose
 * last chunk is flipped on the second try: its plaintext, then nothing. */
START_TEST(shield_verifies_a_large_file_over_threads_and_keeps_nothing_of_a_tampered_one)
{
	_cleanup_(shield_fixture_clear) shield_fixture fx = {0};
	shield_fixture_make(&fx);
	cleanup_error sconify_error_t err = NULL;
	size_t n = SC_RT_PARALLEL_MIN + 3 * 4096 + 17;
	cleanup_free uint8_t *plain = xmalloc(n), *ct = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		plain[i] = (uint8_t)(i * 131 + (i >> 12));
	uint8_t id[SC_SHIELD_FILE_ID_BYTES];
	ck_assert_ok(sc_shield_file_id_random(id, &err), err);
	cleanup_shield_encoder sc_shield_encoder *enc = NULL;
	ck_assert_ok(sc_shield_encryptor_new(fx.key, id, n, 4096, &enc, &err), err);
	ck_assert_ok(sc_shield_encoder_update(enc, plain, n, ct, &err), err);
	cleanup_shield_entry sc_shield_entry *e = NULL;
	ck_assert_ok(sc_shield_encoder_finish(enc, &e, &err), err);
	cleanup_free char *path = xasprintf("%s/enc/big", fx.dir);
	write_file(path, ct, n);

	_cleanup_(sc_rt_shield_freep) sc_rt_shield *sh = open_shield(&fx);
	int memfd = -1;
	ck_assert_ok(sc_rt_shield_plaintext(sh, path, e, &memfd, &err), err);
	struct stat st;
	ck_assert_int_eq(fstat(memfd, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)n);
	cleanup_free uint8_t *back = xmalloc(n);
	ck_assert_int_eq(pread(memfd, back, n, 0), (ssize_t)n);
	ck_assert_mem_eq(back, plain, n);
	ck_assert_int_eq(fcntl(memfd, F_GET_SEALS), F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);

	ct[n - 5] ^= 1;
	write_file(path, ct, n);
	_cleanup_(sc_rt_shield_freep) sc_rt_shield *sh2 = open_shield(&fx);
	memfd = -1;
	ck_assert_fails(sc_rt_shield_plaintext(sh2, path, e, &memfd, &err), err, SCONIFY_ERR_INTEGRITY,
	                "authentication failed");
	ck_assert_int_eq(memfd, -1);
}
END_TEST

/* The runtime gives a large file's memfd its size (and huge pages) before
 * the shield fills it: written in place, and emptied when a chunk fails. */
START_TEST(shield_writes_a_presized_output_in_place_and_empties_it_on_failure)
{
	_cleanup_(shield_fixture_clear) shield_fixture fx = {0};
	shield_fixture_make(&fx);
	cleanup_error sconify_error_t err = NULL;
	size_t n = 5 * 4096 + 99;
	cleanup_free uint8_t *plain = xmalloc(n), *ct = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		plain[i] = (uint8_t)(i * 7 + 3);
	uint8_t id[SC_SHIELD_FILE_ID_BYTES];
	ck_assert_ok(sc_shield_file_id_random(id, &err), err);
	cleanup_shield_encoder sc_shield_encoder *enc = NULL;
	ck_assert_ok(sc_shield_encryptor_new(fx.key, id, n, 4096, &enc, &err), err);
	ck_assert_ok(sc_shield_encoder_update(enc, plain, n, ct, &err), err);
	cleanup_shield_entry sc_shield_entry *e = NULL;
	ck_assert_ok(sc_shield_encoder_finish(enc, &e, &err), err);
	cleanup_free char *path = xasprintf("%s/enc/sized", fx.dir);
	write_file(path, ct, n);

	for (int tampered = 0; tampered < 2; tampered++) {
		if (tampered) {
			ct[4096 + 1] ^= 1;
			write_file(path, ct, n);
		}
		cleanup_close int in = open(path, O_RDONLY | O_CLOEXEC);
		ck_assert_int_ge(in, 0);
		cleanup_close int out = memfd_create("sized", MFD_CLOEXEC);
		ck_assert_int_ge(out, 0);
		/* Stale bytes of the right size: all of them must be replaced. */
		cleanup_free uint8_t *stale = xmalloc(n);
		memset(stale, 0xa5, n);
		ck_assert_int_eq(pwrite(out, stale, n, 0), (ssize_t)n);
		cleanup_shield_file sc_shield_file *f = NULL;
		ck_assert_ok(sc_shield_file_new(fx.key, e, &f, &err), err);
		struct stat st;
		if (!tampered) {
			ck_assert_ok(sc_shield_file_to_fd_parallel(f, in, out, 2, &err), err);
			ck_assert_int_eq(fstat(out, &st), 0);
			ck_assert_int_eq(st.st_size, (off_t)n);
			cleanup_free uint8_t *back = xmalloc(n);
			ck_assert_int_eq(pread(out, back, n, 0), (ssize_t)n);
			ck_assert_mem_eq(back, plain, n);
		} else {
			ck_assert_fails(sc_shield_file_to_fd_parallel(f, in, out, 2, &err), err,
			                SCONIFY_ERR_INTEGRITY, "authentication failed");
			ck_assert_int_eq(fstat(out, &st), 0);
			ck_assert_int_eq(st.st_size, 0);
		}
	}
}
END_TEST

START_TEST(shield_open_refuses_a_wrong_pin_or_key)
{
	_cleanup_(shield_fixture_clear) shield_fixture fx = {0};
	shield_fixture_make(&fx);
	uint8_t key[SC_SHIELD_KEY_BYTES];
	sc_shield_key_bytes(fx.key, key);
	uint8_t pin[SC_SHIELD_PIN_BYTES];
	memcpy(pin, fx.pin.bytes, sizeof(pin));
	pin[0] ^= 1;
	cleanup_error sconify_error_t err = NULL;
	sc_rt_shield *sh = NULL;
	ck_assert_fails(sc_rt_shield_open(fx.fspf, key, pin, &sh, &err), err, SCONIFY_ERR_INTEGRITY,
	                "does not match the pinned value");
	sconify_error_free(&err);
	key[0] ^= 1;
	ck_assert_fails(sc_rt_shield_open(fx.fspf, key, fx.pin.bytes, &sh, &err), err, SCONIFY_ERR_INTEGRITY,
	                "authentication failed");
	ck_assert_ptr_null(sh);
}
END_TEST

START_TEST(launch_check_names_both_values)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_session sc_rt_session *s = NULL;
	ck_assert_ok(parse(good_policy, "ns/app/web", &s, &err), err);
	sc_rt_launch l = {.exe_fd = -1};
	strcpy(l.measurement, MEAS);
	ck_assert_ok(sc_rt_launch_check(&l, s, &err), err);
	l.measurement[0] = '1';
	ck_assert_fails(sc_rt_launch_check(&l, s, &err), err, SCONIFY_ERR_INTEGRITY, "measurement mismatch");
	ck_assert_ptr_nonnull(strstr(sconify_error_message(err), l.measurement));
	ck_assert_ptr_nonnull(strstr(sconify_error_message(err), MEAS));
}
END_TEST

static const char passwd_txt[] = "root:x:0:0:root:/root:/bin/sh\n"
                                 "# comment\n"
                                 "bad line\n"
                                 "app:x:1000:1001:App:/home/app:/bin/sh\n"
                                 "other:x:1002:1002::/:/bin/false";
static const char group_txt[] = "root:x:0:\n"
                                "app:x:1001:\n"
                                "wheel:x:10:root,app\n"
                                "audio:x:29:app\n"
                                "staff:x:50:other";

START_TEST(user_lookup_resolves_numbers_and_names_from_the_files)
{
	cleanup_error sconify_error_t err = NULL;
	sc_rt_user u = {0};
	size_t pl = strlen(passwd_txt), gl = strlen(group_txt);
	ck_assert_ok(sc_rt_user_lookup("1000:1000", passwd_txt, pl, group_txt, gl, &u, &err), err);
	ck_assert_uint_eq(u.uid, 1000);
	ck_assert_uint_eq(u.gid, 1000);
	ck_assert_uint_eq(u.n_groups, 2); /* uid 1000 is app: its groups */
	sc_rt_user_clear(&u);
	ck_assert_ok(sc_rt_user_lookup("app", passwd_txt, pl, group_txt, gl, &u, &err), err);
	ck_assert_uint_eq(u.uid, 1000);
	ck_assert_uint_eq(u.gid, 1001);
	ck_assert_uint_eq(u.n_groups, 2);
	ck_assert_uint_eq(u.groups[0], 10);
	ck_assert_uint_eq(u.groups[1], 29);
	sc_rt_user_clear(&u);
	ck_assert_ok(sc_rt_user_lookup("app:staff", passwd_txt, pl, group_txt, gl, &u, &err), err);
	ck_assert_uint_eq(u.gid, 50);
	sc_rt_user_clear(&u);
	/* a uid nobody lists: primary group 0, no supplementary groups */
	ck_assert_ok(sc_rt_user_lookup("4242", passwd_txt, pl, "", 0, &u, &err), err);
	ck_assert_uint_eq(u.uid, 4242);
	ck_assert_uint_eq(u.gid, 0);
	ck_assert_uint_eq(u.n_groups, 0);
	sc_rt_user_clear(&u);
	ck_assert_fails(sc_rt_user_lookup("nobody", passwd_txt, pl, group_txt, gl, &u, &err), err,
	                SCONIFY_ERR_NOT_FOUND, "`nobody' not found in /etc/passwd");
	sconify_error_free(&err);
	ck_assert_fails(sc_rt_user_lookup("app:nogroup", passwd_txt, pl, group_txt, gl, &u, &err), err,
	                SCONIFY_ERR_NOT_FOUND, "group `nogroup' not found in /etc/group");
	sconify_error_free(&err);
	ck_assert_fails(sc_rt_user_lookup("99999999999", passwd_txt, pl, group_txt, gl, &u, &err), err,
	                SCONIFY_ERR_INVALID, "uid out of range");
	sconify_error_free(&err);
	ck_assert_fails(sc_rt_user_lookup("4294967295", passwd_txt, pl, group_txt, gl, &u, &err), err,
	                SCONIFY_ERR_INVALID, "uid out of range");
	sconify_error_free(&err);
	ck_assert_fails(sc_rt_user_lookup("a\nb", passwd_txt, pl, group_txt, gl, &u, &err), err,
	                SCONIFY_ERR_INVALID, "not \"uid[:gid]\"");
}
END_TEST

START_TEST(launch_user_refuses_another_user_when_not_root)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_session sc_rt_session *s = NULL;
	ck_assert_ok(parse(good_policy, "ns/app/web", &s, &err), err);
	sc_rt_launch l = {.exe_fd = -1};
	ck_assert_ok(sc_rt_launch_user(&l, s, NULL, "/nonexistent", &err), err); /* no user */
	ck_assert(!l.switch_user);
	/* As root, become someone else (CK_FORK: this process is the test's). */
	bool was_root = geteuid() == 0;
	if (was_root)
		ck_assert_int_eq(seteuid(65534), 0);
	char self[32];
	snprintf(self, sizeof(self), "%u:%u", (unsigned)geteuid(), (unsigned)getegid());
	s->user = xstrdup(self);
	ck_assert_ok(sc_rt_launch_user(&l, s, NULL, "/nonexistent", &err), err);
	ck_assert(!l.switch_user);
	free(s->user);
	snprintf(self, sizeof(self), "%u", (unsigned)geteuid() + 1);
	s->user = xstrdup(self);
	int r = sc_rt_launch_user(&l, s, NULL, "/nonexistent", &err);
	if (was_root) /* LeakSanitizer reads /proc as the test's owner */
		ck_assert_int_eq(seteuid(0), 0);
	ck_assert_fails(r, err, SCONIFY_ERR_USAGE, "not root");
}
END_TEST

/* ---- linkcache ---- */

typedef struct {
	char dir[64];
} link_fixture;

static char *at(const link_fixture *fx, const char *rel)
{
	return xasprintf("%s/%s", fx->dir, rel);
}

static void link_fixture_make(link_fixture *fx)
{
	strcpy(fx->dir, "/tmp/sconify-links-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx->dir));
	cleanup_free char *d = at(fx, "d"), *sub = at(fx, "d/sub"), *f = at(fx, "d/sub/f");
	ck_assert_int_eq(mkdir(d, 0755), 0);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	write_file(f, "x", 1);
}

static void link_fixture_remove(link_fixture *fx)
{
	cleanup_free char *cmd = xasprintf("rm -rf '%s'", fx->dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* What the supervisor's walk does for one component. */
static void learn(sc_rt_linkcache *c, const char *path)
{
	ck_assert_msg(sc_rt_linkcache_prepare(c, path), "prepare %s", path);
	char byte;
	ck_assert_int_lt(readlink(path, &byte, 1), 0);
	ck_assert_int_eq(errno, EINVAL);
	sc_rt_linkcache_add(c, path);
}

static void learn_all(sc_rt_linkcache *c, const link_fixture *fx)
{
	cleanup_free char *d = at(fx, "d"), *sub = at(fx, "d/sub"), *f = at(fx, "d/sub/f");
	learn(c, d);
	learn(c, sub);
	learn(c, f);
	sc_rt_linkcache_sync(c);
	ck_assert(sc_rt_linkcache_known(c, d) && sc_rt_linkcache_known(c, sub) &&
	          sc_rt_linkcache_known(c, f));
}

/* 0: asks the kernel at every sync; 1: armed, told by a signal. */
START_TEST(linkcache_forgets_a_name_that_became_a_symlink)
{
	link_fixture fx;
	link_fixture_make(&fx);
	sc_rt_linkcache *c = sc_rt_linkcache_new(0);
	if (_i == 1)
		ck_assert(sc_rt_linkcache_arm(c, SIGRTMIN + 4));
	learn_all(c, &fx);
	cleanup_free char *f = at(&fx, "d/sub/f"), *sub = at(&fx, "d/sub"), *d = at(&fx, "d");
	/* The file is replaced by a symlink (a new name in a watched dir). */
	ck_assert_int_eq(unlink(f), 0);
	ck_assert_int_eq(symlink("/etc/hostname", f), 0);
	sc_rt_linkcache_sync(c);
	ck_assert(!sc_rt_linkcache_known(c, f));
	ck_assert(sc_rt_linkcache_known(c, sub) && sc_rt_linkcache_known(c, d));
	/* A directory moved away and a symlink put at its name: nothing
	 * below the old name is known any more. */
	cleanup_free char *moved = at(&fx, "moved");
	ck_assert_int_eq(rename(sub, moved), 0);
	ck_assert_int_eq(symlink(moved, sub), 0);
	sc_rt_linkcache_sync(c);
	ck_assert(!sc_rt_linkcache_known(c, sub));
	ck_assert(!sc_rt_linkcache_known(c, f));
	ck_assert(sc_rt_linkcache_known(c, d));
	/* A symlink renamed over a known name. */
	learn(c, moved);
	cleanup_free char *lnk = at(&fx, "lnk");
	ck_assert_int_eq(symlink("/", lnk), 0);
	sc_rt_linkcache_sync(c);
	ck_assert(sc_rt_linkcache_known(c, moved));
	ck_assert_int_eq(rename(lnk, d), -1); /* a symlink cannot replace a directory */
	cleanup_free char *file = at(&fx, "file");
	write_file(file, "y", 1);
	learn(c, file);
	ck_assert_int_eq(rename(lnk, file), 0);
	sc_rt_linkcache_sync(c);
	ck_assert(!sc_rt_linkcache_known(c, file));
	sc_rt_linkcache_free(c);
	link_fixture_remove(&fx);
}
END_TEST

START_TEST(linkcache_keeps_nothing_of_pseudo_file_systems_or_after_a_mount)
{
	link_fixture fx;
	link_fixture_make(&fx);
	sc_rt_linkcache *c = sc_rt_linkcache_new(0);
	ck_assert(!sc_rt_linkcache_prepare(c, "/proc/self/status"));
	ck_assert(!sc_rt_linkcache_prepare(c, "/proc"));
	ck_assert(!sc_rt_linkcache_prepare(c, "/dev/null"));
	ck_assert(!sc_rt_linkcache_prepare(c, "/sys/kernel"));
	learn_all(c, &fx);
	cleanup_free char *d = at(&fx, "d");
	sc_rt_linkcache_disable(c);
	ck_assert(!sc_rt_linkcache_known(c, d));
	ck_assert(!sc_rt_linkcache_prepare(c, d));
	sc_rt_linkcache_free(c);
	link_fixture_remove(&fx);
}
END_TEST

START_TEST(linkcache_starts_after_the_given_number_of_syncs)
{
	link_fixture fx;
	link_fixture_make(&fx);
	sc_rt_linkcache *c = sc_rt_linkcache_new(3);
	cleanup_free char *d = at(&fx, "d");
	for (int i = 0; i < 2; i++) {
		sc_rt_linkcache_sync(c);
		ck_assert(!sc_rt_linkcache_prepare(c, d)); /* not started: learns nothing */
		sc_rt_linkcache_add(c, d);
		ck_assert(!sc_rt_linkcache_known(c, d));
	}
	sc_rt_linkcache_sync(c);
	learn(c, d);
	ck_assert(sc_rt_linkcache_known(c, d));
	sc_rt_linkcache_free(c);
	link_fixture_remove(&fx);
}
END_TEST

START_TEST(linkcache_starts_again_when_full)
{
	link_fixture fx;
	link_fixture_make(&fx);
	sc_rt_linkcache *c = sc_rt_linkcache_new(0);
	cleanup_free char *d = at(&fx, "d");
	learn(c, d);
	cleanup_free char *f = at(&fx, "d/sub/f");
	ck_assert(sc_rt_linkcache_prepare(c, f));
	/* The same existing name under made-up spellings fills it. */
	for (unsigned i = 0; i < SC_RT_LINKCACHE_NAMES; i++) {
		cleanup_free char *p = xasprintf("%s/sub/n%u", d, i);
		sc_rt_linkcache_add(c, p);
	}
	ck_assert(!sc_rt_linkcache_known(c, d));
	learn(c, d);
	ck_assert(sc_rt_linkcache_known(c, d));
	sc_rt_linkcache_free(c);
	link_fixture_remove(&fx);
}
END_TEST

static Suite *runtime_suite(void)
{
	Suite *s = suite_create("runtime");
	TCase *tc = tcase_create("session");
	tcase_add_test(tc, session_resolves_the_service_of_the_config_id);
	tcase_add_test(tc, session_generates_secrets_the_cas_would_generate);
	tcase_add_test(tc, session_without_shield_defaults_to_root_workdir);
	tcase_add_loop_test(tc, session_rejects_what_it_must_not_run, 0,
	                    sizeof(bad_sessions) / sizeof(bad_sessions[0]));
	tcase_add_test(tc, session_load_names_a_missing_file);
	tcase_add_test(tc, path_normalize_and_under);
	suite_add_tcase(s, tc);
	tc = tcase_create("resolve");
	tcase_add_loop_test(tc, resolve_walks_like_the_kernel, 0,
	                    sizeof(resolve_cases) / sizeof(resolve_cases[0]));
	tcase_add_test(tc, resolve_refuses_overlong_paths);
	suite_add_tcase(s, tc);
	tc = tcase_create("provider");
	tcase_add_test(tc, provider_serves_injected_files_from_sealed_memory);
	tcase_add_loop_test(tc, provider_answers_like_a_read_only_file_system, 0,
	                    sizeof(provider_cases) / sizeof(provider_cases[0]));
	tcase_add_test(tc, provider_asks_the_shield_about_every_path_not_injected);
	suite_add_tcase(s, tc);
	tc = tcase_create("shield");
	tcase_add_test(tc, shield_provider_serves_verified_plaintext_and_hides_the_rest);
	tcase_add_test(tc, shield_provider_answers_eio_for_a_tampered_file);
	tcase_add_test(tc, shield_provider_follows_no_link_put_on_a_walked_path);
	tcase_add_test(tc, shield_provider_never_protects_the_kernels_file_systems);
	tcase_add_test(tc, shield_verifies_a_large_file_over_threads_and_keeps_nothing_of_a_tampered_one);
	tcase_add_test(tc, shield_writes_a_presized_output_in_place_and_empties_it_on_failure);
	tcase_add_test(tc, shield_open_refuses_a_wrong_pin_or_key);
	tcase_add_test(tc, launch_check_names_both_values);
	tcase_add_test(tc, user_lookup_resolves_numbers_and_names_from_the_files);
	tcase_add_test(tc, launch_user_refuses_another_user_when_not_root);
	suite_add_tcase(s, tc);
	tc = tcase_create("linkcache");
	tcase_add_loop_test(tc, linkcache_forgets_a_name_that_became_a_symlink, 0, 2);
	tcase_add_test(tc, linkcache_keeps_nothing_of_pseudo_file_systems_or_after_a_mount);
	tcase_add_test(tc, linkcache_starts_after_the_given_number_of_syncs);
	tcase_add_test(tc, linkcache_starts_again_when_full);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(runtime_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
