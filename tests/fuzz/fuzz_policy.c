/* SPDX-License-Identifier: Apache-2.0 */
/* Session policies arrive from the network (the CAS): parse, validate, and for
 * every accepted policy check that its canonical form parses back to the same
 * policy and emits the same bytes. */
#include <stdint.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char **problems = sc_policy_validate((const char *)data, size, "fuzz");
	bool valid = problems[0] == NULL;
	sc_strv_free(problems);

	sconify_error_t err = NULL;
	sc_policy *p = NULL;
	int r = sc_policy_parse((const char *)data, size, "fuzz", &p, &err);
	/* validate and parse agree */
	if ((r == 0) != valid)
		__builtin_trap();
	if (r < 0) {
		sconify_error_free(&err);
		return 0;
	}
	char *t1 = NULL, *t2 = NULL;
	size_t n1 = 0, n2 = 0;
	sc_policy *q = NULL;
	if (sc_policy_emit(p, &t1, &n1, &err) < 0 || sc_policy_parse(t1, n1, "emitted", &q, &err) < 0 ||
	    !sc_policy_equal(p, q) || sc_policy_emit(q, &t2, &n2, &err) < 0 || n1 != n2 ||
	    memcmp(t1, t2, n1) != 0)
		__builtin_trap();
	for (size_t i = 0; i < p->n_services; i++) {
		sc_policy_config *c = NULL;
		/* generated secrets have no value: resolving may fail, never crash */
		if (sc_policy_resolve(p, p->services[i].name, &c, &err) < 0)
			sconify_error_free(&err);
		sc_policy_config_free(c);
	}
	free(t1);
	free(t2);
	sc_policy_free(p);
	sc_policy_free(q);
	return 0;
}
