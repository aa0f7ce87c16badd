/* SPDX-License-Identifier: Apache-2.0 */
/* sconify copy SRC DST */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void help(void)
{
	printf("Usage: sconify copy [OPTIONS] SOURCE DESTINATION\n\n"
	       "Copies an image. Layers are passed through unchanged (by digest) unless\n"
	       "--dest-compress asks for another compression; documents nothing changed\n"
	       "keep their exact bytes and digests. A failed copy leaves the destination\n"
	       "without the new image (in a registry: no tag moves).\n\n"
	       "Options:\n"
	       "  --platform OS/ARCH[/VARIANT]  image of an index to copy (default: this host's)\n"
	       "  --all                         copy every image of an index, and the index\n"
	       "  --dest-compress FORMAT        gzip, zstd or none: recompress layers to FORMAT\n"
	       "  --jobs N                      layers copied at once (default: 6 with a registry,\n"
	       "                                else one per core, at most 4)\n"
	       "  --digestfile FILE             write the digest of what DESTINATION names to FILE\n"
	       "  --src-creds USER[:PASSWORD]   credentials for the source registry\n"
	       "  --dest-creds USER[:PASSWORD]  credentials for the destination registry\n"
	       "  --authfile FILE               auth.json / config.json to use (also\n"
	       "                                --src-authfile, --dest-authfile)\n"
	       "  --tls-verify=BOOL             check registry certificates (default true); false\n"
	       "                                also allows plain http (also --src-tls-verify,\n"
	       "                                --dest-tls-verify)\n"
	       "  --src-cert-dir DIR            CA certificates (*.crt) and client certificate\n"
	       "  --dest-cert-dir DIR           (NAME.cert + NAME.key) for that registry\n"
	       "  --retry-times N               attempts after a network failure (default 4)\n"
	       "  --debug                       print the HTTP exchanges (credentials redacted)\n"
	       "  -q, --quiet                   no progress display\n"
	       "  -h, --help                    this help\n\n"
	       "Transports: docker://HOST/REPO[:TAG|@DIGEST] (or a bare HOST/REPO:TAG),\n"
	       "oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG|@N].\n"
	       "Credentials are looked up as docker and skopeo do (docs/credentials.md).\n"
	       "A docker-archive holds one image and never zstd layers (they are decompressed).\n");
}

int cmd_copy(int argc, char **argv)
{
	enum {
		OPT_PLATFORM = 256,
		OPT_ALL,
		OPT_COMPRESS,
		OPT_JOBS,
		OPT_DIGESTFILE,
		OPT_SRC_CREDS,
		OPT_DEST_CREDS,
		OPT_AUTHFILE,
		OPT_SRC_AUTHFILE,
		OPT_DEST_AUTHFILE,
		OPT_TLS_VERIFY,
		OPT_SRC_TLS_VERIFY,
		OPT_DEST_TLS_VERIFY,
		OPT_SRC_CERT_DIR,
		OPT_DEST_CERT_DIR,
		OPT_RETRY,
		OPT_DEBUG,
	};
	static const struct option longopts[] = {
	        {"platform", required_argument, NULL, OPT_PLATFORM},
	        {"all", no_argument, NULL, OPT_ALL},
	        {"dest-compress", required_argument, NULL, OPT_COMPRESS},
	        {"jobs", required_argument, NULL, OPT_JOBS},
	        {"digestfile", required_argument, NULL, OPT_DIGESTFILE},
	        {"src-creds", required_argument, NULL, OPT_SRC_CREDS},
	        {"dest-creds", required_argument, NULL, OPT_DEST_CREDS},
	        {"authfile", required_argument, NULL, OPT_AUTHFILE},
	        {"src-authfile", required_argument, NULL, OPT_SRC_AUTHFILE},
	        {"dest-authfile", required_argument, NULL, OPT_DEST_AUTHFILE},
	        {"tls-verify", optional_argument, NULL, OPT_TLS_VERIFY},
	        {"src-tls-verify", optional_argument, NULL, OPT_SRC_TLS_VERIFY},
	        {"dest-tls-verify", optional_argument, NULL, OPT_DEST_TLS_VERIFY},
	        {"src-cert-dir", required_argument, NULL, OPT_SRC_CERT_DIR},
	        {"dest-cert-dir", required_argument, NULL, OPT_DEST_CERT_DIR},
	        {"retry-times", required_argument, NULL, OPT_RETRY},
	        {"debug", no_argument, NULL, OPT_DEBUG},
	        {"quiet", no_argument, NULL, 'q'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	sconify_copy_options_t opts = {0};
	bool quiet = false, verify = true;
	const char *digestfile = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_PLATFORM:
			opts.platform = optarg;
			break;
		case OPT_ALL:
			opts.all_platforms = true;
			break;
		case OPT_COMPRESS:
			if (strcmp(optarg, "gzip") == 0)
				opts.compress = SCONIFY_COMPRESS_GZIP;
			else if (strcmp(optarg, "zstd") == 0)
				opts.compress = SCONIFY_COMPRESS_ZSTD;
			else if (strcmp(optarg, "none") == 0)
				opts.compress = SCONIFY_COMPRESS_NONE;
			else
				return cli_usage_error(
				        "copy", "--dest-compress takes gzip, zstd or none, not `%s'", optarg);
			break;
		case OPT_JOBS: {
			long n;
			if (cli_parse_int("copy", "--jobs", optarg, 1, 64, &n) < 0)
				return EXIT_USAGE;
			opts.jobs = (int)n;
			break;
		}
		case OPT_RETRY:
			if (cli_retry_times("copy", optarg, &opts.retries) < 0)
				return EXIT_USAGE;
			break;
		case OPT_DIGESTFILE:
			digestfile = optarg;
			break;
		case OPT_SRC_CREDS:
			opts.src_registry.creds = optarg;
			break;
		case OPT_DEST_CREDS:
			opts.dest_registry.creds = optarg;
			break;
		case OPT_AUTHFILE:
			opts.src_registry.authfile = opts.dest_registry.authfile = optarg;
			break;
		case OPT_SRC_AUTHFILE:
			opts.src_registry.authfile = optarg;
			break;
		case OPT_DEST_AUTHFILE:
			opts.dest_registry.authfile = optarg;
			break;
		case OPT_TLS_VERIFY:
		case OPT_SRC_TLS_VERIFY:
		case OPT_DEST_TLS_VERIFY: {
			const char *name = c == OPT_TLS_VERIFY       ? "--tls-verify"
			                   : c == OPT_SRC_TLS_VERIFY ? "--src-tls-verify"
			                                             : "--dest-tls-verify";
			if (cli_parse_bool("copy", name, optarg, &verify) < 0)
				return EXIT_USAGE;
			if (c != OPT_DEST_TLS_VERIFY)
				opts.src_registry.no_tls_verify = !verify;
			if (c != OPT_SRC_TLS_VERIFY)
				opts.dest_registry.no_tls_verify = !verify;
			break;
		}
		case OPT_SRC_CERT_DIR:
			opts.src_registry.cert_dir = optarg;
			break;
		case OPT_DEST_CERT_DIR:
			opts.dest_registry.cert_dir = optarg;
			break;
		case OPT_DEBUG:
			opts.debug = cli_debug_line;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			help();
			return EXIT_OK;
		default:
			return cli_usage_error("copy", "unknown option");
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("copy", "needs SOURCE and DESTINATION (got %d argument%s)",
		                       argc - optind, argc - optind == 1 ? "" : "s");
	if (opts.all_platforms && opts.platform)
		return cli_usage_error("copy", "--all and --platform exclude each other");
	char *src_creds = NULL, *dest_creds = NULL;
	if (cli_complete_creds("copy", "--src-creds", &opts.src_registry.creds, &src_creds) < 0 ||
	    cli_complete_creds("copy", "--dest-creds", &opts.dest_registry.creds, &dest_creds) < 0)
		return EXIT_USAGE;

	cli_progress *progress = NULL;
	if (!quiet && isatty(STDERR_FILENO)) {
		progress = cli_progress_new();
		opts.progress = cli_progress_event;
		opts.progress_userdata = progress;
	}

	sconify_error_t err = NULL;
	sconify_copy_result_t result = {0};
	int status = EXIT_OK;
	if (sconify_copy(argv[optind], argv[optind + 1], &opts, &result, &err) < 0) {
		status = cli_fail(&err);
	} else if (digestfile) {
		FILE *f = fopen(digestfile, "w");
		if (f == NULL || fprintf(f, "%s", result.digest) < 0 || fclose(f) != 0) {
			fprintf(stderr, "sconify: error: writing the digest to `%s' failed\n", digestfile);
			status = EXIT_FAIL;
		}
	}
	sconify_copy_result_free(&result);
	cli_progress_free(progress);
	free(src_creds);
	free(dest_creds);
	return status;
}
