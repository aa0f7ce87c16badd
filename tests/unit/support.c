/* SPDX-License-Identifier: Apache-2.0 */
#include "support.h"

#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "core/fsutil.h"
#include "core/xalloc.h"

char *sc_test_tmpdir(void)
{
	char *t = xasprintf("%s/sconify-test-XXXXXX", sc_tmpdir());
	if (mkdtemp(t) == NULL)
		ck_abort_msg("mkdtemp failed");
	return t;
}

void sc_test_tmpdir_cleanup(char *dir)
{
	if (dir == NULL)
		return;
	sc_rm_rf(dir, NULL);
	free(dir);
}

char *sc_test_data(const char *rel)
{
	const char *root = getenv("SCONIFY_TESTDATA");
	return sc_path_join(root ? root : "testdata", rel);
}

int sc_test_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int memw_write(sc_writer *base, const void *p, size_t n, sconify_error_t *err)
{
	sc_test_memw *w = (sc_test_memw *)base;
	if (w->fail)
		return sc_error(err, SCONIFY_ERR_IO, 0, "connection reset (test)");
	if (w->delay_us)
		usleep(w->delay_us);
	return sc_buf_append(&w->buf, p, n, "output", err);
}

static void memw_free(sc_writer *base)
{
	sc_buf_free(&((sc_test_memw *)base)->buf);
	free(base);
}

static const struct sc_writer_ops memw_ops = {.write = memw_write, .free = memw_free};

sc_test_memw *sc_test_memw_new(void)
{
	sc_test_memw *w = xzalloc(sizeof(*w));
	w->base.ops = &memw_ops;
	sc_buf_init(&w->buf, SIZE_MAX);
	return w;
}
