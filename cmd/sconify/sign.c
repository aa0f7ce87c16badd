/* SPDX-License-Identifier: Apache-2.0 */
/* sconify sign --key KEY IMAGE */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static void help(void)
{
	printf("Usage: sconify sign --key KEY [OPTIONS] IMAGE\n\n"
	       "Signs the image a docker:// reference names the way cosign does, and stores the\n"
	       "signature beside it (tag sha256-<hex>.sig, appended to the signatures there).\n"
	       "Prints one line per signed digest: DIGEST SIGNATURE-REFERENCE.\n\n"
	       "Options:\n"
	       "  --key KEY                     private key: cosign's format (password from\n"
	       "                                COSIGN_PASSWORD or the terminal) or PEM (PKCS#8, SEC1)\n"
	       "  -a, --annotations KEY=VALUE   written into the signed payload (repeatable)\n"
	       "  --recursive                   for an index, sign every image in it too\n" CLI_REGISTRY_HELP
	       "  -h, --help                    this help\n");
}

int cmd_sign(int argc, char **argv)
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
	sconify_sign_options_t opts = {.password = cli_key_password};
	const char *key = NULL;
	const char **annotations = calloc((size_t)argc + 1, sizeof(char *));
	size_t n_annotations = 0;
	if (annotations == NULL)
		abort();
	int c, status = EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "ha:", longopts, NULL)) != -1) {
		int r = cli_registry_option("sign", c, optarg, &opts.registry, &opts.retries, &opts.debug);
		if (r < 0)
			goto out;
		if (r > 0)
			continue;
		switch (c) {
		case OPT_KEY:
			key = optarg;
			break;
		case 'a':
			annotations[n_annotations++] = optarg;
			break;
		case OPT_RECURSIVE:
			opts.recursive = true;
			break;
		case 'h':
			help();
			status = EXIT_OK;
			goto out;
		default:
			cli_usage_error("sign", "unknown option");
			goto out;
		}
	}
	if (key == NULL) {
		cli_usage_error("sign", "--key is required");
		goto out;
	}
	if (argc - optind != 1) {
		cli_usage_error("sign", "needs exactly one IMAGE (got %d)", argc - optind);
		goto out;
	}
	opts.annotations = annotations;
	char *creds = NULL;
	if (cli_complete_creds("sign", "--creds", &opts.registry.creds, &creds) < 0)
		goto out;

	sconify_error_t err = NULL;
	sconify_sign_result_t res = {0};
	int rc = sconify_sign(argv[optind], key, &opts, &res, &err);
	cli_free_secret(creds);
	if (rc < 0) {
		status = cli_fail(&err);
		goto out;
	}
	for (size_t i = 0; i < res.n; i++)
		printf("%s %s\n", res.digests[i], res.signatures[i]);
	sconify_sign_result_free(&res);
	status = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
out:
	free(annotations);
	return status;
}
