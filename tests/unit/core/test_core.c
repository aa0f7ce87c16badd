/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/stream.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "support.h"

START_TEST(error_wrap_prefixes_context)
{
	cleanup_error sconify_error_t err = NULL;
	ck_assert_int_eq(sc_error(&err, SCONIFY_ERR_INVALID, 0, "bad `%s'", "x"), -1);
	ck_assert_int_eq(sc_error_wrap(&err, "reading %s", "manifest"), -1);
	ck_assert_str_eq(sconify_error_message(err), "reading manifest: bad `x'");
	ck_assert_int_eq(sconify_error_kind(err), SCONIFY_ERR_INVALID);
}
END_TEST

START_TEST(error_with_errno_appends_strerror)
{
	cleanup_error sconify_error_t err = NULL;
	sc_error_errno(&err, ENOENT, "opening `%s'", "f");
	ck_assert_str_eq(sconify_error_message(err), "opening `f': No such file or directory");
	ck_assert_int_eq(sconify_error_errno(err), ENOENT);
	ck_assert_int_eq(sconify_error_kind(err), SCONIFY_ERR_IO);
}
END_TEST

START_TEST(error_null_err_is_allowed)
{
	ck_assert_int_eq(sc_error(NULL, SCONIFY_ERR_IO, 0, "x"), -1);
	ck_assert_int_eq(sc_error_wrap(NULL, "y"), -1);
	sconify_error_t e = NULL;
	sconify_error_free(&e);
	sconify_error_free(NULL);
}
END_TEST

START_TEST(buf_refuses_to_grow_past_cap)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_buf sc_buf b;
	sc_buf_init(&b, 8);
	ck_assert_ok(sc_buf_append(&b, "12345678", 8, "thing", &err), err);
	int r = sc_buf_append(&b, "9", 1, "thing", &err);
	ck_assert_fails(r, err, SCONIFY_ERR_LIMIT, "thing is larger than the limit of 8 bytes");
	ck_assert_uint_eq(b.len, 8);
}
END_TEST

START_TEST(quote_escapes_and_truncates)
{
	cleanup_free char *q = sc_quote("a\nb\x01\xff", 100);
	ck_assert_str_eq(q, "a\\x0ab\\x01\\xff");
	cleanup_free char *big = xmalloc(1000);
	memset(big, 'x', 999);
	big[999] = '\0';
	cleanup_free char *q2 = sc_quote(big, 10);
	ck_assert_str_eq(q2, "xxxxxxxxxx...");
}
END_TEST

START_TEST(read_all_stops_at_cap)
{
	cleanup_error sconify_error_t err = NULL;
	char data[100];
	memset(data, 'a', sizeof(data));
	cleanup_reader sc_reader *r = sc_mem_reader_new(data, sizeof(data));
	char *out = NULL;
	size_t len = 0;
	int ret = sc_reader_read_all(r, 99, "the doc", &out, &len, &err);
	ck_assert_fails(ret, err, SCONIFY_ERR_LIMIT, "the doc is larger than the limit of 99 bytes");
	ck_assert_ptr_null(out);
}
END_TEST

START_TEST(fd_reader_window_reports_short_file)
{
	cleanup_error sconify_error_t err = NULL;
	char *dir = sc_test_tmpdir();
	cleanup_free char *path = sc_path_join(dir, "f");
	ck_assert_ok(sc_write_file_atomic(path, "0123456789", 10, 0644, &err), err);
	cleanup_close int fd = open(path, O_RDONLY);
	cleanup_reader sc_reader *r = sc_fd_reader_new(fd, false, 4, 3);
	char buf[16];
	size_t got = 0;
	ck_assert_ok(sc_reader_read_full(r, buf, sizeof(buf), &got, &err), err);
	ck_assert_uint_eq(got, 3);
	ck_assert_int_eq(memcmp(buf, "456", 3), 0);

	cleanup_reader sc_reader *r2 = sc_fd_reader_new(fd, false, 8, 5);
	int ret = sc_reader_read_full(r2, buf, sizeof(buf), &got, &err);
	ck_assert_fails(ret, err, SCONIFY_ERR_INVALID, "file ends 3 bytes early");
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

START_TEST(atomic_write_leaves_no_temporary)
{
	cleanup_error sconify_error_t err = NULL;
	char *dir = sc_test_tmpdir();
	cleanup_free char *path = sc_path_join(dir, "index.json");
	ck_assert_ok(sc_write_file_atomic(path, "{}", 2, 0600, &err), err);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	cleanup_free char *data = NULL;
	size_t len;
	ck_assert_ok(sc_read_file(path, 10, &data, &len, &err), err);
	ck_assert_str_eq(data, "{}");
	/* only index.json in the directory */
	cleanup_free char *sub = sc_path_join(dir, "sub/dir");
	ck_assert_ok(sc_mkdir_p(sub, 0755, &err), err);
	ck_assert_ok(sc_rm_rf(dir, &err), err);
	ck_assert(!sc_path_exists(dir));
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

START_TEST(write_atomic_into_missing_dir_fails_clearly)
{
	cleanup_error sconify_error_t err = NULL;
	int r = sc_write_file_atomic("/nonexistent-sconify/x/y", "a", 1, 0644, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_IO, "/nonexistent-sconify/x");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, error_wrap_prefixes_context);
	tcase_add_test(tc, error_with_errno_appends_strerror);
	tcase_add_test(tc, error_null_err_is_allowed);
	tcase_add_test(tc, buf_refuses_to_grow_past_cap);
	tcase_add_test(tc, quote_escapes_and_truncates);
	tcase_add_test(tc, read_all_stops_at_cap);
	tcase_add_test(tc, fd_reader_window_reports_short_file);
	tcase_add_test(tc, atomic_write_leaves_no_temporary);
	tcase_add_test(tc, write_atomic_into_missing_dir_fails_clearly);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
