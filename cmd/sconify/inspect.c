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
	       "  --platform OS/ARCH[/VARIANT]  image of an index to describe (default: this host's)\n"
	       "  --creds USER[:PASSWORD]       registry credentials\n"
	       "  --authfile FILE               auth.json / config.json to use\n"
	       "  --tls-verify=BOOL             check the registry's certificate (default true);\n"
	       "                                false also allows plain http\n"
	       "  --cert-dir DIR                CA certificates and client certificate for it\n"
	       "  --retry-times N               attempts after a network failure (default 4)\n"
	       "  --debug                       print the HTTP exchanges (credentials redacted)\n"
	       "  -h, --help                    this help\n");
}

int cmd_inspect(int argc, char **argv)
{
	enum {
		OPT_RAW = 256,
		OPT_CONFIG,
		OPT_PLATFORM,
		OPT_CREDS,
		OPT_AUTHFILE,
		OPT_TLS,
		OPT_CERT_DIR,
		OPT_RETRY,
		OPT_DEBUG,
	};
	static const struct option longopts[] = {
	        {"raw", no_argument, NULL, OPT_RAW},
	        {"config", no_argument, NULL, OPT_CONFIG},
	        {"platform", required_argument, NULL, OPT_PLATFORM},
	        {"creds", required_argument, NULL, OPT_CREDS},
	        {"authfile", required_argument, NULL, OPT_AUTHFILE},
	        {"tls-verify", optional_argument, NULL, OPT_TLS},
	        {"cert-dir", required_argument, NULL, OPT_CERT_DIR},
	        {"retry-times", required_argument, NULL, OPT_RETRY},
	        {"debug", no_argument, NULL, OPT_DEBUG},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	sconify_inspect_options_t opts = {0};
	bool raw = false, config = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
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
		case OPT_CREDS:
			opts.registry.creds = optarg;
			break;
		case OPT_AUTHFILE:
			opts.registry.authfile = optarg;
			break;
		case OPT_TLS: {
			bool verify = true;
			if (cli_parse_bool("inspect", "--tls-verify", optarg, &verify) < 0)
				return EXIT_USAGE;
			opts.registry.no_tls_verify = !verify;
			break;
		}
		case OPT_CERT_DIR:
			opts.registry.cert_dir = optarg;
			break;
		case OPT_RETRY:
			if (cli_retry_times("inspect", optarg, &opts.retries) < 0)
				return EXIT_USAGE;
			break;
		case OPT_DEBUG:
			opts.debug = cli_debug_line;
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
