/* SPDX-License-Identifier: Apache-2.0 */
/* The simple-signing payload: whatever parses must rebuild to an equal
 * document (no field the parser accepted can be lost by a re-sign). */
#include <stdint.h>
#include <string.h>

#include "core/xalloc.h"
#include "sign/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sc_sig_payload p = {0};
	sconify_error_t err = NULL;
	if (sc_sig_payload_parse((const char *)data, size, &p, &err) == 0) {
		size_t len;
		char *again = sc_sig_payload_build(p.reference, &p.digest, p.optional, &len);
		sc_sig_payload q = {0};
		if (sc_sig_payload_parse(again, len, &q, &err) != 0 || !json_equal(p.root, q.root))
			__builtin_trap();
		sc_sig_payload_clear(&q);
		free(again);
	}
	sconify_error_free(&err);
	sc_sig_payload_clear(&p);
	return 0;
}
