/* SPDX-License-Identifier: Apache-2.0 */
/* The public face of lib/policy (sconify.h, "policies"): what the CLI calls. */
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/xalloc.h"
#include "policy.h"

static int read_policy(const char *path, char **ret, size_t *ret_len, sconify_error_t *err)
{
	if (sc_read_file(path, SC_POLICY_MAX_BYTES, ret, ret_len, err) < 0)
		return sc_error_wrap(err, "reading session policy");
	return 0;
}

SCONIFY_PUBLIC int sconify_policy_validate(const char *path, char ***ret_problems, sconify_error_t *err)
{
	char *data = NULL;
	size_t len = 0;
	if (read_policy(path, &data, &len, err) < 0)
		return -1;
	*ret_problems = sc_policy_validate(data, len, path);
	sc_policy_wipe(data, len);
	free(data);
	return 0;
}

SCONIFY_PUBLIC void sconify_policy_problems_free(char **problems)
{
	sc_strv_free(problems);
}

SCONIFY_PUBLIC int sconify_policy_format(const char *path, char **ret_yaml, size_t *ret_len, char **ret_hash,
                                         sconify_error_t *err)
{
	char *data = NULL;
	size_t len = 0;
	if (read_policy(path, &data, &len, err) < 0)
		return -1;
	cleanup_policy sc_policy *p = NULL;
	int r = sc_policy_parse(data, len, path, &p, err);
	sc_policy_wipe(data, len);
	free(data);
	if (r < 0)
		return -1;
	char hash[SC_POLICY_HASH_HEX + 1];
	char *text = NULL;
	size_t tlen = 0;
	if (sc_policy_emit(p, &text, &tlen, err) < 0 || sc_policy_hash(p, hash, err) < 0) {
		sc_policy_wipe_free(text);
		return -1;
	}
	if (ret_yaml) {
		*ret_yaml = text;
		*ret_len = tlen;
	} else {
		sc_policy_wipe_free(text);
	}
	if (ret_hash)
		*ret_hash = xstrdup(hash);
	return 0;
}
