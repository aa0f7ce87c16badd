/* SPDX-License-Identifier: Apache-2.0 */
/* sconify image --from SOURCE --to DESTINATION [OPTIONS] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void help(void)
{
	printf("Usage: sconify image --from SOURCE --to DESTINATION [OPTIONS]\n\n"
	       "Converts an image into a confidential one: files under --dir are encrypted,\n"
	       "files under --authenticated are integrity-protected, the enclave runtime is\n"
	       "added as the entrypoint, and the command, environment and working directory\n"
	       "move into a session policy. Only layers holding protected files are rewritten;\n"
	       "every other layer keeps its digest. DESTINATION gets its tag last.\n\n"
	       "Options:\n"
	       "  --from SOURCE, --to DESTINATION  the images (SOURCE DESTINATION also work)\n"
	       "  --dir PATH                    encrypted region (repeatable)\n"
	       "  --authenticated PATH          integrity-only region (repeatable)\n"
	       "  --name SESSION                session name (default: the destination's name)\n"
	       "  --namespace NS                the session's namespace\n"
	       "  --service-name NAME           service name (default: service)\n"
	       "  --cas URL                     the CAS: where the runtime finds it (SCONE_CAS_ADDR),\n"
	       "                                and where the session policy is uploaded\n"
	       "  --identity FILE               the client identity (key + certificate, PEM) the\n"
	       "                                session belongs to; default: made once in\n"
	       "                                ~/.config/sconify/identity.pem\n"
	       "  --cas-key-hash HEX            pin the CAS's key (written into the image as\n"
	       "                                SCONE_CAS_KEY_HASH); default: the one remembered\n"
	       "                                for URL, else fetched and trusted on first use\n"
	       "  --no-upload                   --cas only names the CAS in the image\n"
	       "  --env KEY=VALUE               environment for the policy, never the image\n"
	       "  --command \"ARGS\"              the command to run (default: entrypoint + cmd)\n"
	       "  --mode sim|hw                 sim: no TEE, for development (default: hw)\n"
	       "  --key-file FILE               reuse this volume key\n"
	       "  --key-out FILE                write the volume key (mode 0600)\n"
	       "  --session-out FILE            write the session policy (mode 0600: it holds the key)\n"
	       "  --digest-file FILE            write the result's digest, before the tag moves\n"
	       "  --reproducible                same input and key give the same digests\n"
	       "  --dry-run                     print the plan; write nothing\n"
	       "  --output json                 print what happened as JSON\n"
	       "  --runtime FILE                the runtime binary (default: the installed one\n"
	       "                                for the platform; also --runtime-dir DIR)\n"
	       "  --sign-key KEY                sign the result as `sconify sign' does\n" CLI_TRANSFER_HELP
	       "  -q, --quiet                   no progress display\n"
	       "  -h, --help                    this help\n");
}

static void push(const char ***v, size_t *n, const char *s)
{
	*v = realloc(*v, (*n + 2) * sizeof(char *));
	if (*v == NULL)
		abort();
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

/* The session goes to the CAS after the image is written and before its
 * tag moves (sconify_image_options_t.session_ready). */
typedef struct {
	sconify_cas_t *cas;
	sconify_session_t sess;
	bool uploaded;
} upload;

static int upload_session(void *userdata, const char *yaml, size_t len, sconify_error_t *err)
{
	upload *u = userdata;
	if (sconify_session_upload(u->cas, yaml, len, &u->sess, err) < 0)
		return -1;
	u->uploaded = true;
	return 0;
}

int cmd_image(int argc, char **argv)
{
	enum {
		OPT_FROM = 256,
		OPT_TO,
		OPT_DIR,
		OPT_AUTH,
		OPT_NAME,
		OPT_NAMESPACE,
		OPT_SERVICE,
		OPT_CAS,
		OPT_ENV,
		OPT_COMMAND,
		OPT_MODE,
		OPT_KEY_FILE,
		OPT_KEY_OUT,
		OPT_SESSION_OUT,
		OPT_DIGEST_FILE,
		OPT_REPRODUCIBLE,
		OPT_DRY_RUN,
		OPT_OUTPUT,
		OPT_RUNTIME,
		OPT_RUNTIME_DIR,
		OPT_SIGN_KEY,
		OPT_NO_UPLOAD,
	};
	static const struct option longopts[] = {
	        {"from", required_argument, NULL, OPT_FROM},
	        {"to", required_argument, NULL, OPT_TO},
	        {"dir", required_argument, NULL, OPT_DIR},
	        {"authenticated", required_argument, NULL, OPT_AUTH},
	        {"name", required_argument, NULL, OPT_NAME},
	        {"namespace", required_argument, NULL, OPT_NAMESPACE},
	        {"service-name", required_argument, NULL, OPT_SERVICE},
	        {"cas", required_argument, NULL, OPT_CAS},
	        {"env", required_argument, NULL, OPT_ENV},
	        {"command", required_argument, NULL, OPT_COMMAND},
	        {"mode", required_argument, NULL, OPT_MODE},
	        {"key-file", required_argument, NULL, OPT_KEY_FILE},
	        {"key-out", required_argument, NULL, OPT_KEY_OUT},
	        {"session-out", required_argument, NULL, OPT_SESSION_OUT},
	        {"digest-file", required_argument, NULL, OPT_DIGEST_FILE},
	        {"reproducible", no_argument, NULL, OPT_REPRODUCIBLE},
	        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
	        {"output", required_argument, NULL, OPT_OUTPUT},
	        {"runtime", required_argument, NULL, OPT_RUNTIME},
	        {"runtime-dir", required_argument, NULL, OPT_RUNTIME_DIR},
	        {"sign-key", required_argument, NULL, OPT_SIGN_KEY},
	        {"identity", required_argument, NULL, CLI_OPT_CAS_IDENTITY},
	        {"cas-key-hash", required_argument, NULL, CLI_OPT_CAS_KEY_HASH},
	        {"no-upload", no_argument, NULL, OPT_NO_UPLOAD},
	        CLI_TRANSFER_LONGOPTS,
	        {"quiet", no_argument, NULL, 'q'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	sconify_image_options_t opts = {.password = cli_key_password};
	const char **dirs = NULL, **auths = NULL, **envs = NULL;
	size_t n_dirs = 0, n_auths = 0, n_envs = 0;
	const char *from = NULL, *to = NULL;
	bool quiet = false, json = false, mode_given = false;
	int c, status = EXIT_USAGE;
	char *src_creds = NULL, *dest_creds = NULL;
	cli_progress *progress = NULL;
	cli_cas_args cas_args = {0};
	bool no_upload = false;
	sconify_cas_t *cas = NULL;
	char *cas_key_hash = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		int r = cli_transfer_option("image", c, optarg, &opts.copy);
		if (r < 0)
			goto out;
		if (r > 0)
			continue;
		r = cli_cas_option("image", c, optarg, &cas_args);
		if (r < 0)
			goto out;
		if (r > 0)
			continue;
		switch (c) {
		case OPT_FROM:
			from = optarg;
			break;
		case OPT_TO:
			to = optarg;
			break;
		case OPT_DIR:
			push(&dirs, &n_dirs, optarg);
			break;
		case OPT_AUTH:
			push(&auths, &n_auths, optarg);
			break;
		case OPT_NAME:
			opts.session_name = optarg;
			break;
		case OPT_NAMESPACE:
			opts.namespace_name = optarg;
			break;
		case OPT_SERVICE:
			opts.service_name = optarg;
			break;
		case OPT_CAS:
			opts.cas = cas_args.url = optarg;
			break;
		case OPT_NO_UPLOAD:
			no_upload = true;
			break;
		case OPT_ENV:
			push(&envs, &n_envs, optarg);
			break;
		case OPT_COMMAND:
			opts.command = optarg;
			break;
		case OPT_MODE:
			if (strcmp(optarg, "sim") == 0) {
				opts.mode = SCONIFY_MODE_SIM;
			} else if (strcmp(optarg, "hw") == 0) {
				opts.mode = SCONIFY_MODE_HW;
			} else {
				cli_usage_error("image", "--mode takes sim or hw, not `%s'", optarg);
				goto out;
			}
			mode_given = true;
			break;
		case OPT_KEY_FILE:
			opts.key_file = optarg;
			break;
		case OPT_KEY_OUT:
			opts.key_out = optarg;
			break;
		case OPT_SESSION_OUT:
			opts.session_out = optarg;
			break;
		case OPT_DIGEST_FILE:
			opts.digest_file = optarg;
			break;
		case OPT_REPRODUCIBLE:
			opts.reproducible = true;
			break;
		case OPT_DRY_RUN:
			opts.dry_run = true;
			break;
		case OPT_OUTPUT:
			if (strcmp(optarg, "json") != 0) {
				cli_usage_error("image", "--output takes json, not `%s'", optarg);
				goto out;
			}
			json = true;
			break;
		case OPT_RUNTIME:
			opts.runtime = optarg;
			break;
		case OPT_RUNTIME_DIR:
			opts.runtime_dir = optarg;
			break;
		case OPT_SIGN_KEY:
			opts.sign_key = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			help();
			status = EXIT_OK;
			goto out;
		default:
			cli_usage_error("image", "unknown option");
			goto out;
		}
	}
	if (from == NULL && optind < argc)
		from = argv[optind++];
	if (to == NULL && optind < argc)
		to = argv[optind++];
	if (optind < argc || from == NULL || (to == NULL && !opts.dry_run)) {
		cli_usage_error("image", "needs --from SOURCE and --to DESTINATION");
		goto out;
	}
	if (opts.copy.all_platforms && opts.copy.platform) {
		cli_usage_error("image", "--all and --platform exclude each other");
		goto out;
	}
	(void)mode_given; /* hw is the default: sim must be asked for */
	if ((cas_args.identity || cas_args.key_hash || no_upload) && opts.cas == NULL) {
		cli_usage_error("image", "--identity, --cas-key-hash and --no-upload go with --cas");
		goto out;
	}
	opts.encrypted = dirs;
	opts.authenticated = auths;
	opts.env = envs;
	if (cli_complete_creds("image", "--src-creds", &opts.copy.src_registry.creds, &src_creds) < 0 ||
	    cli_complete_creds("image", "--dest-creds", &opts.copy.dest_registry.creds, &dest_creds) < 0)
		goto out;
	if (!quiet && !json && isatty(STDERR_FILENO)) {
		progress = cli_progress_new();
		opts.copy.progress = cli_progress_event;
		opts.copy.progress_userdata = progress;
	}

	/* The image carries the CAS's key hash: known before the conversion. */
	if (opts.cas && !no_upload && !opts.dry_run) {
		if (cli_cas_connect("image", &cas_args, opts.copy.debug, &cas, &cas_key_hash) != EXIT_OK) {
			status = EXIT_FAIL;
			goto out;
		}
		opts.cas_key_hash = cas_key_hash;
	} else {
		opts.cas_key_hash = cas_args.key_hash;
	}

	sconify_error_t err = NULL;
	sconify_image_result_t res = {0};
	upload u = {.cas = cas};
	if (cas) {
		opts.session_ready = upload_session;
		opts.session_ready_userdata = &u;
	}
	if (sconify_image(from, to ? to : "", &opts, &res, &err) < 0) {
		if (u.uploaded)
			fprintf(stderr,
			        "sconify image: session `%s' is at the CAS (hash %s), but the "
			        "conversion did not complete (below)\n",
			        u.sess.name, u.sess.hash);
		sconify_session_free(&u.sess);
		status = cli_fail(&err);
		goto out;
	}
	sconify_session_t sess = u.sess;
	if (cas)
		fprintf(stderr, "sconify image: session `%s' %s at %s, hash %s\n", sess.name,
		        sess.created ? "created" : "updated", sconify_cas_url(cas), sess.hash);
	if (json || opts.dry_run) {
		/* The session's facts replace the session's name in the result
		 * object: names and hex only, the URL without quotes or backslashes
		 * (sconify_cas_open checked), and a session name needs no escaping
		 * in JSON, so the name's member is found as written. */
		char needle[512]; /* session names are at most 128 bytes */
		snprintf(needle, sizeof(needle), "\"session\":\"%s\"", sess.name ? sess.name : "");
		const char *at = cas ? strstr(res.json, needle) : NULL;
		if (at) {
			printf("%.*s\"session\":{\"cas\":\"%s\",\"name\":\"%s\",\"hash\":\"%s\",\"created\":%"
			       "s}%s\n",
			       (int)(at - res.json), res.json, sconify_cas_url(cas), sess.name, sess.hash,
			       sess.created ? "true" : "false", at + strlen(needle));
		} else {
			printf("%s\n", res.json);
		}
	} else {
		printf("%s\n", res.digest);
	}
	sconify_session_free(&sess);
	if (opts.mode == SCONIFY_MODE_SIM && !opts.dry_run)
		fprintf(stderr, "sconify: warning: sim mode: the image runs without hardware protection; "
		                "the session policy allows it explicitly\n");
	sconify_image_result_free(&res);
	status = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
out:
	cli_progress_free(progress);
	sconify_cas_close(cas);
	free(cas_key_hash);
	cli_free_secret(src_creds);
	cli_free_secret(dest_creds);
	free(dirs);
	free(auths);
	free(envs);
	return status;
}
