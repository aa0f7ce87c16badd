/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "sconify.h"

int main(void)
{
	printf("sconify %s\n", sconify_version());
	return 0;
}
