/* SPDX-License-Identifier: Apache-2.0 */
#include "support.h"

#include <stdlib.h>
#include <string.h>

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
