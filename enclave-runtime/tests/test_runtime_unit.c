/* SPDX-License-Identifier: Apache-2.0 */
/* The runtime's logic without a kernel filter: session files, path
 * resolution and the files provider. The supervisor and PID 1 are tested
 * end to end by tests/integration/test_runtime.py. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "provider.h"
#include "resolve.h"
#include "session.h"
#include "support.h"

/* ---- session files ---- */

static int parse(const char *doc, sc_rt_session **ret, sconify_error_t *err)
{
	return sc_rt_session_parse(doc, strlen(doc), "session `t'", ret, err);
}

START_TEST(session_parses_command_env_files_and_regions)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_session sc_rt_session *s = NULL;
	int r = parse(
	        "{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [\"/bin/cat\", \"/etc/s\"],"
	        " \"env\": [\"A=b\", \"PATH=/bin\"], \"workdir\": \"/tmp//x/\","
	        " \"injected_files\": {\"/etc//s\": \"hello\\n\"}, \"protected_regions\": [\"/secrets/\"]}",
	        &s, &err);
	ck_assert_ok(r, err);
	ck_assert_str_eq(s->argv[0], "/bin/cat");
	ck_assert_str_eq(s->argv[1], "/etc/s");
	ck_assert_ptr_null(s->argv[2]);
	ck_assert_str_eq(s->env[1], "PATH=/bin");
	ck_assert_str_eq(s->workdir, "/tmp/x");
	ck_assert_uint_eq(s->n_files, 1);
	ck_assert_str_eq(s->files[0].path, "/etc/s");
	ck_assert_uint_eq(s->files[0].len, 6);
	ck_assert_mem_eq(s->files[0].data, "hello\n", 6);
	ck_assert_uint_eq(s->n_regions, 1);
	ck_assert_str_eq(s->regions[0], "/secrets");
}
END_TEST

START_TEST(session_defaults_to_empty_env_and_root_workdir)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_session sc_rt_session *s = NULL;
	ck_assert_ok(
	        parse("{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [\"x\"]}", &s, &err),
	        err);
	ck_assert_ptr_null(s->env[0]);
	ck_assert_str_eq(s->workdir, "/");
	ck_assert_uint_eq(s->n_files, 0);
	ck_assert_uint_eq(s->n_regions, 0);
}
END_TEST

static const struct {
	const char *doc;
	sconify_error_kind_t kind;
	const char *phrase;
} bad_sessions[] = {
        {"{", SCONIFY_ERR_INVALID, "not valid JSON"},
        {"[]", SCONIFY_ERR_INVALID, "not a JSON object"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [\"x\"], \"comand\": 1}",
         SCONIFY_ERR_INVALID, "unknown key `comand'"},
        {"{\"mode\": \"sim\", \"command\": [\"x\"]}", SCONIFY_ERR_INVALID, "lacks `sconify_runtime_session'"},
        {"{\"sconify_runtime_session\": 2, \"mode\": \"sim\", \"command\": [\"x\"]}", SCONIFY_ERR_UNSUPPORTED,
         "unsupported sconify_runtime_session 2"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sgx\", \"command\": [\"x\"]}", SCONIFY_ERR_UNSUPPORTED,
         "only `sim'"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sim\"}", SCONIFY_ERR_INVALID, "lacks `command'"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": []}", SCONIFY_ERR_INVALID,
         "`command' is empty"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [1]}", SCONIFY_ERR_INVALID,
         "`command'[0] is not a string"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [\"x\"], \"env\": [\"NOEQUALS\"]}",
         SCONIFY_ERR_INVALID, "is not NAME=value"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [\"x\"], \"workdir\": \"rel\"}",
         SCONIFY_ERR_INVALID, "not an absolute path"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [\"x\"], \"injected_files\": "
         "{\"etc/x\": \"a\"}}",
         SCONIFY_ERR_INVALID, "injected file `etc/x'"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [\"x\"], \"injected_files\": "
         "{\"/etc/../x\": \"a\"}}",
         SCONIFY_ERR_INVALID, "without `..'"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [\"x\"], \"injected_files\": "
         "{\"/a/b\": \"1\", \"/a//b/\": \"2\"}}",
         SCONIFY_ERR_INVALID, "duplicate entry"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [\"x\"], \"injected_files\": "
         "{\"/a\": 1}}",
         SCONIFY_ERR_INVALID, "content is not a string"},
        {"{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [\"x\"], \"protected_regions\": "
         "[\"rel\"]}",
         SCONIFY_ERR_INVALID, "protected region `rel'"},
        {"{\"sconify_runtime_session\": 1, \"sconify_runtime_session\": 1}", SCONIFY_ERR_INVALID,
         "duplicate key"},
};

START_TEST(session_rejects_malformed_documents)
{
	cleanup_error sconify_error_t err = NULL;
	sc_rt_session *s = NULL;
	int r = parse(bad_sessions[_i].doc, &s, &err);
	ck_assert_fails(r, err, bad_sessions[_i].kind, bad_sessions[_i].phrase);
	ck_assert_ptr_null(s);
}
END_TEST

START_TEST(session_load_names_a_missing_file)
{
	cleanup_error sconify_error_t err = NULL;
	sc_rt_session *s = NULL;
	int r = sc_rt_session_load("/nonexistent/session.json", &s, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_IO, "session file `/nonexistent/session.json'");
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
};

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
		if (strcmp(fake_fs[i].path, path) == 0 && fake_fs[i].link) {
			if (strcmp(fake_fs[i].link, "<pipe>") == 0)
				return -EXDEV;
			snprintf(buf, size, "%s", fake_fs[i].link);
			return 0;
		}
	}
	return -EINVAL;
}

static const sc_rt_fsops fake_ops = {.lstat_type = fake_lstat, .readlink = fake_readlink};

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
        {"/", "/", "/nope/../secrets/k", 0, 0, "/secrets/k"},
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
	int r = parse("{\"sconify_runtime_session\": 1, \"mode\": \"sim\", \"command\": [\"x\"],"
	              " \"injected_files\": {\"/etc/secret\": \"top secret\\n\"},"
	              " \"protected_regions\": [\"/secrets\"]}",
	              &s, &err);
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
        {"/secrets/unknown", O_RDONLY, SC_RT_ERRNO, ENOENT},
        {"/secrets", O_RDONLY, SC_RT_ERRNO, ENOENT},
        {"/secrets/new", O_WRONLY | O_CREAT, SC_RT_ERRNO, EROFS},
        {"/secrets/sub", O_RDONLY | O_DIRECTORY, SC_RT_CONTINUE, 0},
        {"/secretsx", O_RDONLY, SC_RT_CONTINUE, 0},
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

START_TEST(provider_asks_the_shield_before_refusing_a_region)
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
	ck_assert_int_eq(a.verdict, SC_RT_ERRNO);
	ck_assert_int_eq(a.error, ENOENT);
	/* Injected files come first; the shield is not asked about them. */
	int before = sh->calls;
	a = ask(p, "/etc/secret", O_RDONLY);
	ck_assert_int_eq(a.verdict, SC_RT_FD);
	close(a.fd);
	ck_assert_int_eq(sh->calls, before);
}
END_TEST

static Suite *runtime_suite(void)
{
	Suite *s = suite_create("runtime");
	TCase *tc = tcase_create("session");
	tcase_add_test(tc, session_parses_command_env_files_and_regions);
	tcase_add_test(tc, session_defaults_to_empty_env_and_root_workdir);
	tcase_add_loop_test(tc, session_rejects_malformed_documents, 0,
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
	tcase_add_test(tc, provider_asks_the_shield_before_refusing_a_region);
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
