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
	cleanup_signature_args cli_signature_args a;
	int status = cli_signature_args_parse("sign", true, help, argc, argv, &a);
	if (status >= 0)
		return status;
	sconify_error_t err = NULL;
	sconify_sign_result_t res = {0};
	if (sconify_sign(a.image, a.key, &a.opts, &res, &err) < 0)
		return cli_fail(&err);
	for (size_t i = 0; i < res.n; i++)
		printf("%s %s\n", res.digests[i], res.signatures[i]);
	sconify_sign_result_free(&res);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}
