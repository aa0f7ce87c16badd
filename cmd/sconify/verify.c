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
	cleanup_signature_args cli_signature_args a;
	int status = cli_signature_args_parse("verify", false, help, argc, argv, &a);
	if (status >= 0)
		return status;
	sconify_error_t err = NULL;
	char *json = NULL;
	size_t len = 0;
	if (sconify_verify(a.image, a.key, &a.opts, &json, &len, &err) < 0)
		return cli_fail(&err);
	fprintf(stderr, "Verified %s: a signature by %s covers its digest\n", a.image, a.key);
	status = fwrite(json, 1, len, stdout) == len && putchar('\n') != EOF && fflush(stdout) == 0
	                 ? EXIT_OK
	                 : EXIT_FAIL;
	free(json);
	return status;
}
