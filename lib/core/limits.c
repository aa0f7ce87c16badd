/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "limits.h"

void sconify_limits_default(sconify_limits_t *l)
{
	memset(l, 0, sizeof(*l));
	sc_limits_fill(l);
}

void sc_limits_fill(sconify_limits_t *l)
{
	/* docs/limits.md explains each value. */
#define D(field, value)    \
	if (l->field == 0) \
	l->field = (value)
	D(max_document_bytes, 4u << 20);
	D(max_layer_bytes, 64ull << 30);
	D(max_expansion_ratio, 1000);
	D(ratio_floor_bytes, 64ull << 20);
	D(max_entries, 1000000);
	D(max_path_bytes, 4096);
	D(max_path_depth, 256);
	D(max_pax_bytes, 64u << 10);
	D(max_trailing_bytes, 1u << 20);
	D(max_descriptors, 10000);
#undef D
}
