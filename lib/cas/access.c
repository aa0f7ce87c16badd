/* SPDX-License-Identifier: Apache-2.0 */
/* Access decisions of `access_policy' and the names the CAS takes apart. */
#include <stdlib.h>
#include <string.h>

#include "cas/cas.h"
#include "core/strutil.h"
#include "core/xalloc.h"

bool sc_cas_access_allowed(char *const *entries, size_t n, const char *creator, const char *client)
{
	for (size_t i = 0; i < n; i++) {
		const char *e = entries[i];
		if (strcmp(e, "NONE") == 0)
			return false; /* the parser allows NONE only alone */
		if (strcmp(e, "ANY") == 0)
			return true;
		if (client == NULL)
			continue;
		if (strcmp(e, "CREATOR") == 0) {
			if (creator != NULL && strcmp(creator, client) == 0)
				return true;
		} else if (strcmp(e, client) == 0) {
			return true;
		}
	}
	return false;
}

int sc_cas_parse_config_id(const char *id, char **ret_session, char **ret_service, sconify_error_t *err)
{
	const char *slash = strrchr(id, '/');
	if (slash == NULL || slash == id) {
		cleanup_free char *q = sc_quote(id, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "config_id `%s': not [namespace/]session/service", q);
	}
	cleanup_free char *session = xstrndup(id, (size_t)(slash - id));
	if (!sc_policy_valid_session_name(session) || !sc_policy_valid_name(slash + 1) ||
	    strlen(id) > 2 * SC_POLICY_MAX_NAME + 1) {
		cleanup_free char *q = sc_quote(id, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "config_id `%s': not [namespace/]session/service", q);
	}
	*ret_service = xstrdup(slash + 1);
	*ret_session = steal_pointer(&session);
	return 0;
}

char *sc_cas_session_namespace(const char *name)
{
	const char *slash = strrchr(name, '/');
	return slash ? xstrndup(name, (size_t)(slash - name)) : NULL;
}
