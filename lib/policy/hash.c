/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The session hash: SHA-256 of the canonical text (sc_policy_emit()). The
 * only file of lib/policy that needs lib/digest (and so OpenSSL): the static
 * enclave runtime, which never hashes a policy, leaves it out.
 */
#include <string.h>

#include "core/xalloc.h"
#include "digest/digest.h"
#include "policy.h"

int sc_policy_hash(const sc_policy *p, char ret[SC_POLICY_HASH_HEX + 1], sconify_error_t *err)
{
	char *text = NULL;
	size_t len = 0;
	if (sc_policy_emit(p, &text, &len, err) < 0)
		return sc_error_wrap(err, "hashing session `%s'", p->name ? p->name : "");
	sc_digest d;
	sc_digest_of(SC_SHA256, text, len, &d);
	sc_policy_wipe(text, len);
	free(text);
	memcpy(ret, sc_digest_hex(&d), SC_POLICY_HASH_HEX + 1);
	return 0;
}
