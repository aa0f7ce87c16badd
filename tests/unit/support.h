/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers for the Check suites. */
#ifndef SC_TEST_SUPPORT_H
#define SC_TEST_SUPPORT_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/stream.h"

/* Fails the test with the error's message unless r >= 0. */
#define ck_assert_ok(r, err)                                                                \
	do {                                                                                \
		if ((r) < 0)                                                                \
			ck_abort_msg("unexpected failure: %s", sconify_error_message(err)); \
	} while (0)

/* Asserts r < 0, err has the kind, and its message contains needle. */
#define ck_assert_fails(r, err, want_kind, needle)                                               \
	do {                                                                                     \
		ck_assert_msg((r) < 0, "expected a failure containing `%s'", (needle));          \
		ck_assert_ptr_nonnull(err);                                                      \
		ck_assert_msg(sconify_error_kind(err) == (want_kind), "kind %d, wanted %d: %s",  \
		              sconify_error_kind(err), (want_kind), sconify_error_message(err)); \
		ck_assert_msg(strstr(sconify_error_message(err), (needle)) != NULL,              \
		              "message `%s' lacks `%s'", sconify_error_message(err), (needle));  \
	} while (0)

/* A fresh empty directory under $TMPDIR, removed by sc_test_tmpdir_cleanup(). */
char *sc_test_tmpdir(void);
void sc_test_tmpdir_cleanup(char *dir);
/* Path of a file under testdata/ (SCONIFY_TESTDATA). */
char *sc_test_data(const char *rel);
/* A writer into buf. fail makes every write fail; delay_us sleeps before
 * each (a slow peer). Freed with sc_writer_free(&w->base). */
typedef struct {
	sc_writer base;
	sc_buf buf;
	bool fail;
	unsigned delay_us;
} sc_test_memw;
sc_test_memw *sc_test_memw_new(void);

/* Runs the suite and returns the process exit status. */
int sc_test_run(Suite *s);

#endif
