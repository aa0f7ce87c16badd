/* SPDX-License-Identifier: Apache-2.0 */
/* sconify policy validate FILE... | hash FILE | format FILE */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
	printf("Usage: sconify policy validate FILE...\n"
	       "       sconify policy hash FILE\n"
	       "       sconify policy format FILE\n\n"
	       "Session policies (SCONE's policy language v0.3 as docs/policy.md describes it).\n\n"
	       "  validate   checks each FILE and prints one line per problem, with its line and\n"
	       "             field (\"FILE:LINE: field: problem\"), or \"FILE: valid\"; exits 1 when\n"
	       "             any file has a problem\n"
	       "  hash       prints the session hash of a valid policy (what `predecessor' of\n"
	       "             the next version names)\n"
	       "  format     prints the canonical form of a valid policy (what `sconify image'\n"
	       "             writes); it holds the policy's keys and secrets\n\n"
	       "Options:\n"
	       "  -h, --help   this help\n");
}

static int validate(int argc, char **argv)
{
	int rc = EXIT_OK;
	for (int i = 0; i < argc; i++) {
		sconify_error_t err = NULL;
		char **problems = NULL;
		if (sconify_policy_validate(argv[i], &problems, &err) < 0) {
			cli_fail(&err);
			rc = EXIT_FAIL;
			continue;
		}
		if (problems[0] == NULL)
			printf("%s: valid\n", argv[i]);
		for (char **p = problems; *p; p++) {
			printf("%s\n", *p);
			rc = EXIT_FAIL;
		}
		sconify_policy_problems_free(problems);
	}
	return rc;
}

int cmd_policy(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	/* "+": options end at the action, whose arguments may start with `-'
	 * only after "--". */
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			help();
			return EXIT_OK;
		default:
			return cli_usage_error("policy", "unknown option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("policy", "needs an action: validate, hash or format");
	const char *action = argv[optind++];
	if (optind < argc && strcmp(argv[optind], "--help") == 0) {
		help();
		return EXIT_OK;
	}
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	int nfiles = argc - optind;
	if (strcmp(action, "validate") == 0) {
		if (nfiles < 1)
			return cli_usage_error("policy", "validate needs at least one FILE");
		return validate(nfiles, argv + optind);
	}
	if (strcmp(action, "hash") == 0 || strcmp(action, "format") == 0) {
		if (nfiles != 1)
			return cli_usage_error("policy", "%s takes one FILE (got %d)", action, nfiles);
		bool want_hash = strcmp(action, "hash") == 0;
		sconify_error_t err = NULL;
		char *yaml = NULL, *hash = NULL;
		size_t len = 0;
		if (sconify_policy_format(argv[optind], want_hash ? NULL : &yaml, &len,
		                          want_hash ? &hash : NULL, &err) < 0)
			return cli_fail(&err);
		if (want_hash) {
			printf("%s\n", hash);
			free(hash);
		} else {
			fwrite(yaml, 1, len, stdout);
			cli_wipe(yaml, len);
			free(yaml);
		}
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
	}
	return cli_usage_error("policy", "unknown action `%s' (validate, hash or format)", action);
}
