/* SPDX-License-Identifier: Apache-2.0 */
/* sconify session get|update|delete: a session at a CAS, for its owner; and
 * what `sconify image --cas' shares with it: the identity, the CAS pin. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void help(void)
{
	printf("Usage: sconify session get NAME --cas URL [--output FILE] [OPTIONS]\n"
	       "       sconify session update FILE --cas URL [OPTIONS]\n"
	       "       sconify session delete NAME --cas URL [OPTIONS]\n\n"
	       "A session policy at a CAS (sconify-cas), for its owner: the client identity\n"
	       "that created it (or any the policy's access lists name).\n\n"
	       "  get      prints the stored policy (canonical form; it holds the volume key\n"
	       "           and secrets) on stdout, or writes it to --output FILE (mode 0600)\n"
	       "           and prints NAME HASH\n"
	       "  update   uploads the policy in FILE: creates the session, or updates it\n"
	       "           with the stored hash as `predecessor' (unless FILE names one);\n"
	       "           prints NAME HASH\n"
	       "  delete   deletes the session\n\n"
	       "Options:\n" CLI_CAS_HELP "  -o, --output FILE             get: write the policy here\n"
	       "  --debug                       print the HTTP exchanges (never a body)\n"
	       "  -h, --help                    this help\n");
}

int cli_cas_connect(const char *command, const cli_cas_args *a, sconify_debug_fn debug, sconify_cas_t **ret,
                    char **ret_key_hash)
{
	sconify_error_t err = NULL;
	char *identity = NULL, *id_hash = NULL, *key_hash = NULL;
	int status = EXIT_FAIL;
	if (a->identity == NULL) {
		bool created = false;
		if (sconify_identity_ensure(NULL, &identity, &id_hash, &created, &err) < 0)
			goto fail;
		if (created)
			fprintf(stderr,
			        "sconify %s: created the client identity `%s' (key hash %s); the CAS knows "
			        "you by it: keep it\n",
			        command, identity, id_hash);
	}
	if (a->key_hash) {
		key_hash = strdup(a->key_hash);
		if (key_hash == NULL)
			abort();
	} else {
		if (sconify_cas_known_key_hash(a->url, &key_hash, &err) < 0)
			goto fail;
		if (key_hash == NULL) {
			sconify_cas_options_t o = {.debug = debug};
			if (sconify_cas_key_hash(a->url, &o, &key_hash, &err) < 0 ||
			    sconify_cas_remember_key_hash(a->url, key_hash, &err) < 0)
				goto fail;
			fprintf(stderr,
			        "sconify %s: trusting the CAS at %s on first use: its key hash is %s "
			        "(compare "
			        "it with the `key-hash:' sconify-cas printed; remembered for this URL; "
			        "--cas-key-hash pins it explicitly)\n",
			        command, a->url, key_hash);
		}
	}
	sconify_cas_options_t o = {
	        .identity = a->identity ? a->identity : identity, .key_hash = key_hash, .debug = debug};
	sconify_cas_t *cas = NULL;
	if (sconify_cas_open(a->url, &o, &cas, &err) < 0)
		goto fail;
	if (sconify_cas_check(cas, &err) < 0) {
		sconify_cas_close(cas);
		goto fail;
	}
	*ret = cas;
	if (ret_key_hash) {
		*ret_key_hash = key_hash;
		key_hash = NULL;
	}
	status = EXIT_OK;
fail:
	if (err)
		status = cli_fail(&err);
	free(identity);
	free(id_hash);
	free(key_hash);
	return status;
}

int cli_cas_option(const char *command, int opt, const char *arg, cli_cas_args *a)
{
	switch (opt) {
	case CLI_OPT_CAS_IDENTITY:
		a->identity = arg;
		return 1;
	case CLI_OPT_CAS_KEY_HASH:
		if (strlen(arg) != 64 || strspn(arg, "0123456789abcdef") != 64) {
			cli_usage_error(command, "--cas-key-hash takes 64 lowercase hex digits, not `%s'",
			                arg);
			return -1;
		}
		a->key_hash = arg;
		return 1;
	default:
		return 0;
	}
}

/* The policy into a new file, 0600 from its creation: it holds the key. */
static int write_policy(const char *path, const char *yaml, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "sconify: error: writing `%s': %s\n", path, strerror(errno));
		return EXIT_FAIL;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, yaml + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "sconify: error: writing `%s': %s\n", path, strerror(errno));
			close(fd);
			unlink(path);
			return EXIT_FAIL;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fprintf(stderr, "sconify: error: writing `%s': %s\n", path, strerror(errno));
		unlink(path);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* The policy file of `update', read whole (4 MiB at most, the CAS's cap). */
static int read_policy(const char *path, char **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "sconify: error: reading `%s': %s\n", path, strerror(errno));
		return EXIT_FAIL;
	}
	size_t cap = 4u << 20, len = 0;
	char *buf = malloc(cap + 1);
	if (buf == NULL)
		abort();
	size_t n;
	while ((n = fread(buf + len, 1, cap + 1 - len, f)) > 0 && len + n <= cap)
		len += n;
	bool too_big = n > 0, failed = ferror(f);
	fclose(f);
	if (too_big || failed) {
		cli_wipe(buf, cap + 1);
		free(buf);
		fprintf(stderr, "sconify: error: reading `%s': %s\n", path,
		        too_big ? "larger than the limit (4 MiB)" : "read error");
		return EXIT_FAIL;
	}
	*ret = buf;
	*ret_len = len;
	return EXIT_OK;
}

int cmd_session(int argc, char **argv)
{
	static const struct option longopts[] = {
	        CLI_CAS_LONGOPTS,
	        {"output", required_argument, NULL, 'o'},
	        {"debug", no_argument, NULL, CLI_OPT_DEBUG},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	cli_cas_args cas_args = {0};
	const char *output = NULL;
	sconify_debug_fn debug = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		int r = cli_cas_option("session", c, optarg, &cas_args);
		if (r < 0)
			return EXIT_USAGE;
		if (r > 0)
			continue;
		switch (c) {
		case CLI_OPT_CAS:
			cas_args.url = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case CLI_OPT_DEBUG:
			debug = cli_debug_line;
			break;
		case 'h':
			help();
			return EXIT_OK;
		default:
			return cli_usage_error("session", "unknown option");
		}
	}
	if (optind + 2 != argc)
		return cli_usage_error("session",
		                       "needs an action (get, update or delete) and one NAME or FILE");
	const char *action = argv[optind], *arg = argv[optind + 1];
	bool get = strcmp(action, "get") == 0, update = strcmp(action, "update") == 0,
	     del = strcmp(action, "delete") == 0;
	if (!get && !update && !del)
		return cli_usage_error("session", "unknown action `%s' (get, update or delete)", action);
	if (cas_args.url == NULL)
		return cli_usage_error("session", "needs --cas URL");
	if (output && !get)
		return cli_usage_error("session", "--output goes with get only");

	sconify_cas_t *cas = NULL;
	int status = cli_cas_connect("session", &cas_args, debug, &cas, NULL);
	if (status != EXIT_OK)
		return status;
	sconify_error_t err = NULL;
	sconify_session_t s = {0};
	if (get) {
		if (sconify_session_get(cas, arg, &s, &err) < 0) {
			status = cli_fail(&err);
		} else if (output) {
			status = write_policy(output, s.yaml, s.yaml_len);
			if (status == EXIT_OK)
				printf("%s %s\n", s.name, s.hash);
		} else {
			fwrite(s.yaml, 1, s.yaml_len, stdout);
		}
	} else if (update) {
		char *yaml = NULL;
		size_t len = 0;
		status = read_policy(arg, &yaml, &len);
		if (status == EXIT_OK) {
			if (sconify_session_upload(cas, yaml, len, &s, &err) < 0)
				status = cli_fail(&err);
			else
				printf("%s %s\n", s.name, s.hash);
			cli_wipe(yaml, len);
			free(yaml);
		}
	} else {
		if (sconify_session_delete(cas, arg, &err) < 0)
			status = cli_fail(&err);
		else
			printf("%s deleted\n", arg);
	}
	sconify_session_free(&s);
	sconify_cas_close(cas);
	if (fflush(stdout) != 0 && status == EXIT_OK)
		status = EXIT_FAIL;
	return status;
}
