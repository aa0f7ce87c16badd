/* SPDX-License-Identifier: Apache-2.0 */
/* sconify keygen [--prefix NAME] [--force] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
	printf("Usage: sconify keygen [--prefix NAME] [--force]\n\n"
	       "Writes a new ECDSA P-256 signing key pair the way cosign does: NAME.key,\n"
	       "encrypted with a password (COSIGN_PASSWORD, else asked twice on the terminal;\n"
	       "it may be empty), readable by its owner only, and NAME.pub (PEM).\n\n"
	       "Options:\n"
	       "  --prefix NAME   file names (default: cosign)\n"
	       "  --force         replace existing files\n"
	       "  -h, --help      this help\n");
}

/* COSIGN_PASSWORD, or the same password typed twice. */
static char *new_password(void)
{
	char *env = cli_env_password();
	if (env)
		return env;
	char *first = cli_read_secret("Password for the private key: ");
	if (first == NULL) {
		fprintf(stderr, "sconify: error: no password for the new key: set COSIGN_PASSWORD (it may be "
		                "empty) or run on a terminal\n");
		return NULL;
	}
	char *again = cli_read_secret("Password again: ");
	bool same = again && strcmp(first, again) == 0;
	cli_free_secret(again);
	if (!same) {
		cli_free_secret(first);
		fprintf(stderr, "sconify: error: the passwords differ\n");
		return NULL;
	}
	return first;
}

int cmd_keygen(int argc, char **argv)
{
	enum { OPT_PREFIX = 256, OPT_FORCE };
	static const struct option longopts[] = {
	        {"prefix", required_argument, NULL, OPT_PREFIX},
	        {"force", no_argument, NULL, OPT_FORCE},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *prefix = "cosign";
	bool force = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_PREFIX:
			prefix = optarg;
			break;
		case OPT_FORCE:
			force = true;
			break;
		case 'h':
			help();
			return EXIT_OK;
		default:
			return cli_usage_error("keygen", "unknown option");
		}
	}
	if (argc != optind)
		return cli_usage_error("keygen", "takes no arguments (got %d)", argc - optind);
	if (*prefix == '\0')
		return cli_usage_error("keygen", "--prefix may not be empty");

	char *password = new_password();
	if (password == NULL)
		return EXIT_FAIL;
	sconify_error_t err = NULL;
	int rc = sconify_keygen(prefix, password, force, &err);
	cli_free_secret(password);
	if (rc < 0)
		return cli_fail(&err);
	fprintf(stderr, "Private key written to %s.key\nPublic key written to %s.pub\n", prefix, prefix);
	return EXIT_OK;
}
