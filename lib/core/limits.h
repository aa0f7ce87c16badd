/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SC_LIMITS_H
#define SC_LIMITS_H

#include "sconify.h"

/* Replaces every zero field of l by its default. */
void sc_limits_fill(sconify_limits_t *l);

#endif
