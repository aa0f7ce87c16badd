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

/* A decimal number within [lo, hi]; prints the usage error. */
int cli_parse_int(const char *command, const char *option, const char *arg, long lo, long hi, long *ret);
/* --retry-times N into the library's convention (0 becomes "none"). */
int cli_retry_times(const char *command, const char *arg, int *ret);
/* "true"/"false" (NULL: true, for a bare --flag); prints the usage error. */
int cli_parse_bool(const char *command, const char *option, const char *arg, bool *ret);
/* Turns --creds USER into USER:PASSWORD by asking on the terminal. */
int cli_complete_creds(const char *command, const char *option, const char **creds, char **owned);
/* --debug: one line of the HTTP trace on stderr. */
void cli_debug_line(void *userdata, const char *line);

/* A progress display of the blobs being copied, on a terminal only. */
typedef struct cli_progress cli_progress;
cli_progress *cli_progress_new(void);
void cli_progress_event(void *userdata, sconify_event_t ev, const char *digest, uint64_t done,
                        uint64_t total);
void cli_progress_free(cli_progress *p);

int cmd_copy(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

#endif
