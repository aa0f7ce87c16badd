/* SPDX-License-Identifier: Apache-2.0 */
/* sconify verify --key PUB IMAGE */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static void help(void)
{
	printf("Usage: sconify verify --key PUB [OPTIONS] IMAGE\n\n"
	       "Succeeds only when a cosign signature by the public key covers the digest the\n"
	       "docker:// reference names now. Prints the verified payloads as a JSON array.\n\n"
	       "Options:\n"
	       "  --key PUB                     public key (PEM)\n"
	       "  -a, --annotations KEY=VALUE   the signed payload must carry it "
	       "(repeatable)\n" CLI_REGISTRY_HELP "  -h, --help                    this help\n");
}

int cmd_verify(int argc, char **argv)
{
	enum { OPT_KEY = 256 };
	static const struct option longopts[] = {
	        {"key", required_argument, NULL, OPT_KEY},
	        {"annotations", required_argument, NULL, 'a'},
	        CLI_REGISTRY_LONGOPTS,
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	sconify_sign_options_t opts = {0};
	const char *key = NULL;
	const char **annotations = calloc((size_t)argc + 1, sizeof(char *));
	size_t n_annotations = 0;
	if (annotations == NULL)
		abort();
	int c, status = EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "ha:", longopts, NULL)) != -1) {
		int r = cli_registry_option("verify", c, optarg, &opts.registry, &opts.retries, &opts.debug);
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
		case 'h':
			help();
			status = EXIT_OK;
			goto out;
		default:
			cli_usage_error("verify", "unknown option");
			goto out;
		}
	}
	if (key == NULL) {
		cli_usage_error("verify", "--key is required");
		goto out;
	}
	if (argc - optind != 1) {
		cli_usage_error("verify", "needs exactly one IMAGE (got %d)", argc - optind);
		goto out;
	}
	opts.annotations = annotations;
	char *creds = NULL;
	if (cli_complete_creds("verify", "--creds", &opts.registry.creds, &creds) < 0)
		goto out;

	sconify_error_t err = NULL;
	char *json = NULL;
	size_t len = 0;
	int rc = sconify_verify(argv[optind], key, &opts, &json, &len, &err);
	cli_free_secret(creds);
	if (rc < 0) {
		status = cli_fail(&err);
		goto out;
	}
	fprintf(stderr, "Verified %s: a signature by %s covers its digest\n", argv[optind], key);
	status = fwrite(json, 1, len, stdout) == len && putchar('\n') != EOF && fflush(stdout) == 0
	                 ? EXIT_OK
	                 : EXIT_FAIL;
	free(json);
out:
	free(annotations);
	return status;
}
