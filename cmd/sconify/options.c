/* SPDX-License-Identifier: Apache-2.0 */
/* Options the subcommands share: registry access (skopeo's names) and output. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
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

void cli_wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

/* The terminal settings to put back if a signal ends a password prompt. */
static struct termios prompt_saved;
static volatile sig_atomic_t prompt_echo_off;

static void prompt_signal(int sig)
{
	if (prompt_echo_off)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &prompt_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

char *cli_read_secret(const char *prompt)
{
	if (!isatty(STDIN_FILENO))
		return NULL;
	/* Echo goes off before the prompt shows, as getpass() does: what is
	 * typed right after it is neither echoed nor flushed away. A signal
	 * during the prompt puts the terminal back before it ends us. */
	struct termios quiet;
	bool echo_off = tcgetattr(STDIN_FILENO, &prompt_saved) == 0;
	struct sigaction sa = {.sa_handler = prompt_signal}, old_int, old_term, old_hup;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	if (echo_off) {
		quiet = prompt_saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		prompt_echo_off = 1;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	/* read(2), not stdio: no copy stays in stdin's buffer. A line that does
	 * not fit is refused rather than cut. */
	char buf[4096];
	size_t n = 0;
	bool ok = false;
	for (;;) {
		char c;
		ssize_t r = read(STDIN_FILENO, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (c == '\n' || c == '\r') {
			ok = true;
			break;
		}
		if (n == sizeof(buf) - 1) {
			fprintf(stderr, "\nsconify: the password is longer than %zu bytes\n",
			        sizeof(buf) - 1);
			while (read(STDIN_FILENO, &c, 1) == 1 && c != '\n')
				;
			break;
		}
		buf[n++] = c;
	}
	buf[n] = '\0';
	if (echo_off) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &prompt_saved);
		prompt_echo_off = 0;
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	fputc('\n', stderr);
	char *s = NULL;
	if (ok) {
		s = strdup(buf);
		if (s == NULL)
			abort();
	}
	cli_wipe(buf, sizeof(buf));
	return s;
}

void cli_free_secret(char *s)
{
	if (s) {
		cli_wipe(s, strlen(s));
		free(s);
	}
}

char *cli_env_password(void)
{
	const char *env = getenv("COSIGN_PASSWORD");
	if (env == NULL)
		return NULL;
	char *s = strdup(env);
	if (s == NULL)
		abort();
	return s;
}

char *cli_key_password(void *userdata, const char *key_file)
{
	(void)userdata;
	char *env = cli_env_password();
	if (env)
		return env;
	char prompt[512];
	snprintf(prompt, sizeof(prompt), "Password for the private key %s: ", key_file);
	return cli_read_secret(prompt);
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
	char prompt[256];
	snprintf(prompt, sizeof(prompt), "Password for %s: ", *creds);
	char *password = cli_read_secret(prompt);
	if (password == NULL) {
		cli_usage_error(command, "no password given for %s", option);
		return -1;
	}
	size_t n = strlen(*creds) + 1 + strlen(password) + 1;
	*owned = malloc(n);
	if (*owned == NULL)
		abort();
	snprintf(*owned, n, "%s:%s", *creds, password);
	cli_free_secret(password);
	*creds = *owned;
	return 0;
}

int cli_registry_option(const char *command, int opt, const char *arg, sconify_registry_options_t *reg,
                        int *retries, sconify_debug_fn *debug)
{
	switch (opt) {
	case CLI_OPT_CREDS:
		reg->creds = arg;
		return 1;
	case CLI_OPT_AUTHFILE:
		reg->authfile = arg;
		return 1;
	case CLI_OPT_TLS_VERIFY: {
		bool verify = true;
		if (cli_parse_bool(command, "--tls-verify", arg, &verify) < 0)
			return -1;
		reg->no_tls_verify = !verify;
		return 1;
	}
	case CLI_OPT_CERT_DIR:
		reg->cert_dir = arg;
		return 1;
	case CLI_OPT_RETRY_TIMES:
		return cli_retry_times(command, arg, retries) < 0 ? -1 : 1;
	case CLI_OPT_DEBUG:
		*debug = cli_debug_line;
		return 1;
	default:
		return 0;
	}
}

void cli_debug_line(void *userdata, const char *line)
{
	(void)userdata;
	fprintf(stderr, "debug: %s\n", line);
}

int cli_transfer_option(const char *command, int opt, const char *arg, sconify_copy_options_t *opts)
{
	bool verify = true;
	switch (opt) {
	case CLI_OPT_PLATFORM:
		opts->platform = arg;
		return 1;
	case CLI_OPT_ALL:
		opts->all_platforms = true;
		return 1;
	case CLI_OPT_COMPRESS:
		if (strcmp(arg, "gzip") == 0)
			opts->compress = SCONIFY_COMPRESS_GZIP;
		else if (strcmp(arg, "zstd") == 0)
			opts->compress = SCONIFY_COMPRESS_ZSTD;
		else if (strcmp(arg, "none") == 0)
			opts->compress = SCONIFY_COMPRESS_NONE;
		else {
			cli_usage_error(command, "--dest-compress takes gzip, zstd or none, not `%s'", arg);
			return -1;
		}
		return 1;
	case CLI_OPT_JOBS: {
		long n;
		if (cli_parse_int(command, "--jobs", arg, 1, 64, &n) < 0)
			return -1;
		opts->jobs = (int)n;
		return 1;
	}
	case CLI_OPT_RETRY_TIMES:
		return cli_retry_times(command, arg, &opts->retries) < 0 ? -1 : 1;
	case CLI_OPT_SRC_CREDS:
		opts->src_registry.creds = arg;
		return 1;
	case CLI_OPT_DEST_CREDS:
		opts->dest_registry.creds = arg;
		return 1;
	case CLI_OPT_AUTHFILE:
		opts->src_registry.authfile = opts->dest_registry.authfile = arg;
		return 1;
	case CLI_OPT_SRC_AUTHFILE:
		opts->src_registry.authfile = arg;
		return 1;
	case CLI_OPT_DEST_AUTHFILE:
		opts->dest_registry.authfile = arg;
		return 1;
	case CLI_OPT_TLS_VERIFY:
	case CLI_OPT_SRC_TLS_VERIFY:
	case CLI_OPT_DEST_TLS_VERIFY: {
		const char *name = opt == CLI_OPT_TLS_VERIFY       ? "--tls-verify"
		                   : opt == CLI_OPT_SRC_TLS_VERIFY ? "--src-tls-verify"
		                                                   : "--dest-tls-verify";
		if (cli_parse_bool(command, name, arg, &verify) < 0)
			return -1;
		if (opt != CLI_OPT_DEST_TLS_VERIFY)
			opts->src_registry.no_tls_verify = !verify;
		if (opt != CLI_OPT_SRC_TLS_VERIFY)
			opts->dest_registry.no_tls_verify = !verify;
		return 1;
	}
	case CLI_OPT_SRC_CERT_DIR:
		opts->src_registry.cert_dir = arg;
		return 1;
	case CLI_OPT_DEST_CERT_DIR:
		opts->dest_registry.cert_dir = arg;
		return 1;
	case CLI_OPT_DEBUG:
		opts->debug = cli_debug_line;
		return 1;
	default:
		return 0;
	}
}

int cli_signature_args_parse(const char *command, bool sign, void (*help)(void), int argc, char **argv,
                             cli_signature_args *a)
{
	enum { OPT_KEY = 256, OPT_RECURSIVE };
	static const struct option longopts[] = {
	        {"key", required_argument, NULL, OPT_KEY},
	        {"annotations", required_argument, NULL, 'a'},
	        {"recursive", no_argument, NULL, OPT_RECURSIVE},
	        CLI_REGISTRY_LONGOPTS,
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	*a = (cli_signature_args){.opts = {.password = sign ? cli_key_password : NULL}};
	a->annotations = calloc((size_t)argc + 1, sizeof(char *));
	if (a->annotations == NULL)
		abort();
	size_t n = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "ha:", longopts, NULL)) != -1) {
		int r = cli_registry_option(command, c, optarg, &a->opts.registry, &a->opts.retries,
		                            &a->opts.debug);
		if (r < 0)
			return EXIT_USAGE;
		if (r > 0)
			continue;
		switch (c) {
		case OPT_KEY:
			a->key = optarg;
			break;
		case 'a':
			a->annotations[n++] = optarg;
			break;
		case OPT_RECURSIVE:
			if (!sign)
				return cli_usage_error(command, "unknown option");
			a->opts.recursive = true;
			break;
		case 'h':
			help();
			return EXIT_OK;
		default:
			return cli_usage_error(command, "unknown option");
		}
	}
	if (a->key == NULL)
		return cli_usage_error(command, "--key is required");
	if (argc - optind != 1)
		return cli_usage_error(command, "needs exactly one IMAGE (got %d)", argc - optind);
	a->image = argv[optind];
	a->opts.annotations = a->annotations;
	if (cli_complete_creds(command, "--creds", &a->opts.registry.creds, &a->creds) < 0)
		return EXIT_USAGE;
	return -1;
}

void cli_signature_args_clear(cli_signature_args *a)
{
	free(a->annotations);
	cli_free_secret(a->creds);
	*a = (cli_signature_args){0};
}
