/* SPDX-License-Identifier: Apache-2.0 */
/* sconify serve: convert images when a registry reports a push (docs/serve.md). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void help(void)
{
	printf("Usage: sconify serve --config FILE [OPTIONS]\n"
	       "       sconify serve --check FILE\n\n"
	       "Receives registry push events (CNCF distribution notifications, Harbor and\n"
	       "GitHub webhooks), queues them durably, and converts each pushed image the\n"
	       "configuration's rules match with `sconify image' (signed when the rule names\n"
	       "a key). Runs until SIGTERM or SIGINT; see docs/serve.md.\n\n"
	       "Options:\n"
	       "  --config FILE                 the configuration (YAML)\n"
	       "  --check FILE                  check a configuration and exit\n"
	       "  --log-format text|json        log lines on stderr (default text)\n"
	       "  --grace SECONDS               on SIGTERM, how long running jobs may finish\n"
	       "                                before they are stopped and requeued (default 30)\n"
	       "  -h, --help                    this help\n");
}

static void log_line(void *userdata, const char *line)
{
	(void)userdata;
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
}

static void ready(void *userdata, const char *address)
{
	(void)userdata;
	printf("listening: %s\n", address);
	fflush(stdout);
}

/* The executable the workers run: this one. */
static char *self_exe(const char *argv0)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		return strdup(buf);
	}
	return realpath(argv0, NULL);
}

int cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
	                                         {"check", required_argument, NULL, 'k'},
	                                         {"log-format", required_argument, NULL, 'l'},
	                                         {"grace", required_argument, NULL, 'g'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	const char *config = NULL, *check = NULL;
	sconify_serve_options_t o = {.grace_ms = 30000, .log = log_line, .ready = ready};
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'k':
			check = optarg;
			break;
		case 'l':
			if (strcmp(optarg, "json") == 0)
				o.log_json = true;
			else if (strcmp(optarg, "text") != 0)
				return cli_usage_error("serve", "--log-format takes text or json, not `%s'",
				                       optarg);
			break;
		case 'g': {
			char *end = NULL;
			unsigned long v = strtoul(optarg, &end, 10);
			if (end == optarg || *end || v > 86400)
				return cli_usage_error(
				        "serve", "--grace takes seconds (0 to 86400), not `%s'", optarg);
			o.grace_ms = (unsigned)v * 1000;
			break;
		}
		case 'h':
			help();
			return EXIT_OK;
		default:
			return cli_usage_error("serve", NULL);
		}
	}
	if (optind != argc)
		return cli_usage_error("serve", "unexpected argument `%s'", argv[optind]);
	if ((config == NULL) == (check == NULL))
		return cli_usage_error("serve", "give --config FILE to serve or --check FILE to check");
	sconify_error_t err = NULL;
	if (check) {
		char *summary = NULL;
		if (sconify_serve_check(check, &summary, &err) < 0)
			return cli_fail(&err);
		printf("%s: ok: %s\n", check, summary);
		free(summary);
		return EXIT_OK;
	}
	char *exe = self_exe(argv[0]);
	if (exe == NULL) {
		fprintf(stderr,
		        "sconify serve: error: cannot find the sconify executable to run jobs with\n");
		return EXIT_FAIL;
	}
	o.config = config;
	o.self_exe = exe;
	int rc = sconify_serve(&o, &err);
	free(exe);
	return rc < 0 ? cli_fail(&err) : EXIT_OK;
}
