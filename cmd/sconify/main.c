/* SPDX-License-Identifier: Apache-2.0 */
/* sconify: dispatches to one subcommand per file (copy.c, inspect.c, ...). */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
        {"image", cmd_image, "convert an image into a confidential one"},
        {"copy", cmd_copy, "copy an image between transports, optionally recompressing its layers"},
        {"inspect", cmd_inspect, "print an image's manifest, config, or a JSON summary"},
        {"policy", cmd_policy, "check a session policy, print its hash or canonical form"},
        {"session", cmd_session, "read, update or delete a session at a CAS"},
        {"keygen", cmd_keygen, "make a signing key pair in cosign's format"},
        {"sign", cmd_sign, "sign an image in a registry the way cosign does"},
        {"verify", cmd_verify, "check that a key's signature covers an image's digest"},
        {"serve", cmd_serve, "convert images when a registry reports a push (webhook service)"},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: sconify [--version] [--help] COMMAND [OPTIONS] ARGS\n\n"
	           "Converts container images into confidential ones.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nImages are named with skopeo's transports:\n"
	           "  oci:DIR[:REF]              an OCI image layout directory\n"
	           "  oci-archive:FILE[:REF]     an OCI image layout in a tar file\n"
	           "  docker-archive:FILE[:REF]  a `docker save' archive (REF: name:tag or @N)\n"
	           "\nRun `sconify COMMAND --help' for a command's options.\n"
	           "Exit status: 0 success, 1 failure, 2 wrong usage.\n");
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sconify%s%s: ", command ? " " : "", command ? command : "");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry `sconify%s%s --help'.\n", command ? " " : "", command ? command : "");
	return EXIT_USAGE;
}

int cli_fail(sconify_error_t *err)
{
	fprintf(stderr, "sconify: error: %s\n", sconify_error_message(*err));
	sconify_error_free(err);
	return EXIT_FAIL;
}

int main(int argc, char **argv)
{
	/* Buffers of 4 MiB and more (the ring and chunk of an upload during
	 * pass 1, libzstd's) come and go for every layer: a fixed threshold
	 * keeps them in their own mappings, returned when freed, where glibc's
	 * moving one would put everything below the largest freed on the heap
	 * for good. The smaller, frequent ones stay on the heap: at 256 KiB
	 * mapping and faulting them in cost 5-10 % in bench/image.sh case b. */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	if (argc < 2)
		return usage(stderr), EXIT_USAGE;
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("sconify %s\n", sconify_version());
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return cli_usage_error(NULL, "unknown command `%s'", cmd);
}
