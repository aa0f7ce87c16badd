/* SPDX-License-Identifier: Apache-2.0 */
/* What the subcommands share: exit codes, error printing, option helpers. */
#ifndef SCONIFY_CLI_H
#define SCONIFY_CLI_H

#include <stdbool.h>

#include "sconify.h"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,  /* the operation failed */
	EXIT_USAGE = 2, /* the command line is wrong */
};

/* Prints "sconify COMMAND: message" and the hint to --help; returns EXIT_USAGE. */
__attribute__((format(printf, 2, 3))) int cli_usage_error(const char *command, const char *fmt, ...);
/* Prints the library error once and frees it; returns EXIT_FAIL. */
int cli_fail(sconify_error_t *err);

int cmd_copy(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

#endif
