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
	       "Options:\n" CLI_TRANSFER_HELP
	       "  --digestfile FILE             write the digest of what DESTINATION names to FILE\n"
	       "  -q, --quiet                   no progress display\n"
	       "  -h, --help                    this help\n\n"
	       "Transports: docker://HOST/REPO[:TAG|@DIGEST] (or a bare HOST/REPO:TAG),\n"
	       "oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG|@N].\n"
	       "Credentials are looked up as docker and skopeo do (docs/credentials.md).\n"
	       "A docker-archive holds one image and never zstd layers (they are decompressed).\n");
}

int cmd_copy(int argc, char **argv)
{
	enum { OPT_DIGESTFILE = 256 };
	static const struct option longopts[] = {
	        CLI_TRANSFER_LONGOPTS,
	        {"digestfile", required_argument, NULL, OPT_DIGESTFILE},
	        {"quiet", no_argument, NULL, 'q'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	sconify_copy_options_t opts = {0};
	bool quiet = false;
	const char *digestfile = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
		int r = cli_transfer_option("copy", c, optarg, &opts);
		if (r < 0)
			return EXIT_USAGE;
		if (r > 0)
			continue;
		switch (c) {
		case OPT_DIGESTFILE:
			digestfile = optarg;
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
