/* SPDX-License-Identifier: Apache-2.0 */
/* Options the subcommands share: registry access (skopeo's names) and output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

int cli_parse_int(const char *command, const char *option, const char *arg, long lo, long hi, long *ret)
{
	char *end;
	long n = strtol(arg, &end, 10);
	if (*arg == '\0' || *end != '\0' || n < lo || n > hi) {
		cli_usage_error(command, "%s takes a number from %ld to %ld, not `%s'", option, lo, hi, arg);
		return -1;
	}
	*ret = n;
	return 0;
}

int cli_retry_times(const char *command, const char *arg, int *ret)
{
	long n;
	if (cli_parse_int(command, "--retry-times", arg, 0, 64, &n) < 0)
		return -1;
	*ret = n == 0 ? -1 : (int)n; /* the library's "none" */
	return 0;
}

int cli_parse_bool(const char *command, const char *option, const char *arg, bool *ret)
{
	if (arg == NULL || strcmp(arg, "true") == 0 || strcmp(arg, "1") == 0) {
		*ret = true;
		return 0;
	}
	if (strcmp(arg, "false") == 0 || strcmp(arg, "0") == 0) {
		*ret = false;
		return 0;
	}
	cli_usage_error(command, "%s takes true or false, not `%s'", option, arg);
	return -1;
}

/* USER without ":PASSWORD" asks for the password on the terminal, as skopeo
 * does; the result is kept in memory only. */
int cli_complete_creds(const char *command, const char *option, const char **creds, char **owned)
{
	if (*creds == NULL || strchr(*creds, ':'))
		return 0;
	if (!isatty(STDIN_FILENO)) {
		cli_usage_error(command, "%s needs USER:PASSWORD (no terminal to ask the password on)",
		                option);
		return -1;
	}
	fprintf(stderr, "Password for %s: ", *creds);
	fflush(stderr);
	struct termios old, quiet;
	bool echo_off = tcgetattr(STDIN_FILENO, &old) == 0;
	if (echo_off) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	char buf[1024];
	bool ok = fgets(buf, sizeof(buf), stdin) != NULL;
	if (echo_off)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	if (!ok) {
		cli_usage_error(command, "no password given for %s", option);
		return -1;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	size_t n = strlen(*creds) + 1 + strlen(buf) + 1;
	*owned = malloc(n);
	if (*owned == NULL)
		abort();
	snprintf(*owned, n, "%s:%s", *creds, buf);
	memset(buf, 0, sizeof(buf));
	*creds = *owned;
	return 0;
}

void cli_debug_line(void *userdata, const char *line)
{
	(void)userdata;
	fprintf(stderr, "debug: %s\n", line);
}
