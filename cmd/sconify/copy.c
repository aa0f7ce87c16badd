/* SPDX-License-Identifier: Apache-2.0 */
/* sconify copy SRC DST */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
	printf("Usage: sconify copy [OPTIONS] SOURCE DESTINATION\n\n"
	       "Copies an image. Layers are passed through unchanged (by digest) unless\n"
	       "--dest-compress asks for another compression; documents nothing changed\n"
	       "keep their exact bytes and digests. A failed copy leaves the destination\n"
	       "as it was.\n\n"
	       "Options:\n"
	       "  --platform OS/ARCH[/VARIANT]  image of an index to copy (default: this host's)\n"
	       "  --all                         copy every image of an index, and the index\n"
	       "  --dest-compress FORMAT        gzip, zstd or none: recompress layers to FORMAT\n"
	       "  --jobs N                      layers copied at once (default: one per core, at most 4)\n"
	       "  --digestfile FILE             write the digest of what DESTINATION names to FILE\n"
	       "  -q, --quiet                   no progress output\n"
	       "  -h, --help                    this help\n\n"
	       "Transports: oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG|@N].\n"
	       "A docker-archive holds one image and never zstd layers (they are decompressed).\n");
}

static void on_progress(void *userdata, sconify_event_t ev, const char *digest, uint64_t size)
{
	(void)userdata, (void)size;
	static const char *const what[] = {
	        [SCONIFY_EVENT_BLOB] = "Copying blob",
	        [SCONIFY_EVENT_BLOB_SKIP] = "Copying blob (already there)",
	        [SCONIFY_EVENT_CONFIG] = "Copying config",
	        [SCONIFY_EVENT_MANIFEST] = "Writing manifest",
	        [SCONIFY_EVENT_INDEX] = "Writing index",
	};
	fprintf(stderr, "%s %s\n", what[ev], digest);
}

int cmd_copy(int argc, char **argv)
{
	enum { OPT_PLATFORM = 256, OPT_ALL, OPT_COMPRESS, OPT_JOBS, OPT_DIGESTFILE };
	static const struct option longopts[] = {
	        {"platform", required_argument, NULL, OPT_PLATFORM},
	        {"all", no_argument, NULL, OPT_ALL},
	        {"dest-compress", required_argument, NULL, OPT_COMPRESS},
	        {"jobs", required_argument, NULL, OPT_JOBS},
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
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || n < 1 || n > 64)
				return cli_usage_error("copy", "--jobs takes a number from 1 to 64, not `%s'",
				                       optarg);
			opts.jobs = (int)n;
			break;
		}
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
	if (!quiet)
		opts.progress = on_progress;

	sconify_error_t err = NULL;
	sconify_copy_result_t result = {0};
	if (sconify_copy(argv[optind], argv[optind + 1], &opts, &result, &err) < 0)
		return cli_fail(&err);
	int status = EXIT_OK;
	if (digestfile) {
		FILE *f = fopen(digestfile, "w");
		if (f == NULL || fprintf(f, "%s", result.digest) < 0 || fclose(f) != 0) {
			fprintf(stderr, "sconify: error: writing the digest to `%s' failed\n", digestfile);
			status = EXIT_FAIL;
		}
	}
	sconify_copy_result_free(&result);
	return status;
}
