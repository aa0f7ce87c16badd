/* SPDX-License-Identifier: Apache-2.0 */
#include <stdint.h>
#include <string.h>

#include "core/xalloc.h"
#include "digest/digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	sc_digest d;
	sconify_error_t err = NULL;
	if (sc_digest_parse(s, &d, &err) == 0) {
		/* A parsed digest must be safe as a path component. */
		if (strchr(sc_digest_hex(&d), '/') || strchr(sc_digest_hex(&d), '.'))
			__builtin_trap();
	}
	sconify_error_free(&err);
	free(s);
	return 0;
}
