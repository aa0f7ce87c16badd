/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"
#include "sconify.h"

const char *sconify_version(void)
{
	return SCONIFY_VERSION;
}
