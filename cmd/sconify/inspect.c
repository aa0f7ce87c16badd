/* SPDX-License-Identifier: Apache-2.0 */
/* sconify inspect REF */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static void help(void)
{
	printf("Usage: sconify inspect [OPTIONS] IMAGE\n\n"
	       "Prints a JSON summary of IMAGE (skopeo inspect's fields), or with --raw the\n"
	       "exact bytes of its manifest (or index), or with --config those of its config.\n\n"
	       "Options:\n"
	       "  --raw                         the manifest or index exactly as stored\n"
	       "  --config                      the config of the selected image exactly as stored\n"
	       "  --platform OS/ARCH[/VARIANT]  image of an index to describe (default: this "
	       "host's)\n" CLI_REGISTRY_HELP "  -h, --help                    this help\n");
}

int cmd_inspect(int argc, char **argv)
{
	enum {
		OPT_RAW = 256,
		OPT_CONFIG,
		OPT_PLATFORM,
	};
	static const struct option longopts[] = {
	        {"raw", no_argument, NULL, OPT_RAW},
	        {"config", no_argument, NULL, OPT_CONFIG},
	        {"platform", required_argument, NULL, OPT_PLATFORM},
	        CLI_REGISTRY_LONGOPTS,
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	sconify_inspect_options_t opts = {0};
	bool raw = false, config = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = cli_registry_option("inspect", c, optarg, &opts.registry, &opts.retries, &opts.debug);
		if (r < 0)
			return EXIT_USAGE;
		if (r > 0)
			continue;
		switch (c) {
		case OPT_RAW:
			raw = true;
			break;
		case OPT_CONFIG:
			config = true;
			break;
		case OPT_PLATFORM:
			opts.platform = optarg;
			break;
		case 'h':
			help();
			return EXIT_OK;
		default:
			return cli_usage_error("inspect", "unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("inspect", "needs exactly one IMAGE (got %d)", argc - optind);
	if (raw && config)
		return cli_usage_error("inspect", "--raw and --config exclude each other");
	opts.mode = raw ? SCONIFY_INSPECT_RAW : config ? SCONIFY_INSPECT_CONFIG : SCONIFY_INSPECT_SUMMARY;
	char *creds = NULL;
	if (cli_complete_creds("inspect", "--creds", &opts.registry.creds, &creds) < 0)
		return EXIT_USAGE;

	sconify_error_t err = NULL;
	char *out = NULL;
	size_t len = 0;
	int rc = sconify_inspect(argv[optind], &opts, &out, &len, &err);
	free(creds);
	if (rc < 0)
		return cli_fail(&err);
	int status = fwrite(out, 1, len, stdout) == len && fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
	free(out);
	return status;
}
