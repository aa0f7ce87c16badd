/* SPDX-License-Identifier: Apache-2.0 */
/* What the subcommands share: exit codes, error printing, option helpers. */
#ifndef SCONIFY_CLI_H
#define SCONIFY_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "sconify.h"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,  /* the operation failed */
	EXIT_USAGE = 2, /* the command line is wrong */
};

/* Prints "sconify COMMAND: message" and the hint to --help; returns EXIT_USAGE. */
__attribute__((format(printf, 2, 3))) int cli_usage_error(const char *command, const char *fmt, ...);
/* Prints the library error once and frees it; returns EXIT_FAIL. */
int cli_fail(sconify_error_t *err);

/* A decimal number within [lo, hi]; prints the usage error. */
int cli_parse_int(const char *command, const char *option, const char *arg, long lo, long hi, long *ret);
/* --retry-times N into the library's convention (0 becomes "none"). */
int cli_retry_times(const char *command, const char *arg, int *ret);
/* "true"/"false" (NULL: true, for a bare --flag); prints the usage error. */
int cli_parse_bool(const char *command, const char *option, const char *arg, bool *ret);
/* A line read from the terminal without echo (malloc'd), NULL without a
 * terminal or at end of input. The caller wipes it. */
char *cli_read_secret(const char *prompt);
/* Overwrites n bytes (a compiler may not drop it). */
void cli_wipe(void *p, size_t n);
/* Wipes and frees a secret string; accepts NULL. */
void cli_free_secret(char *s);
/* COSIGN_PASSWORD (malloc'd, even when empty), or NULL when it is unset. */
char *cli_env_password(void);
/* sconify_password_fn: COSIGN_PASSWORD (even empty), else the terminal. */
char *cli_key_password(void *userdata, const char *key_file);
/* Turns --creds USER into USER:PASSWORD by asking on the terminal. */
int cli_complete_creds(const char *command, const char *option, const char **creds, char **owned);
/* --debug: one line of the HTTP trace on stderr. */
void cli_debug_line(void *userdata, const char *line);

/* The registry options of the commands that take one IMAGE (skopeo's
 * names); CLI_REGISTRY_LONGOPTS goes into their struct option tables. */
enum {
	CLI_OPT_CREDS = 1000,
	CLI_OPT_AUTHFILE,
	CLI_OPT_TLS_VERIFY,
	CLI_OPT_CERT_DIR,
	CLI_OPT_RETRY_TIMES,
	CLI_OPT_DEBUG,
};
#define CLI_REGISTRY_LONGOPTS                                                  \
	{"creds", required_argument, NULL, CLI_OPT_CREDS},                     \
	        {"authfile", required_argument, NULL, CLI_OPT_AUTHFILE},       \
	        {"tls-verify", optional_argument, NULL, CLI_OPT_TLS_VERIFY},   \
	        {"cert-dir", required_argument, NULL, CLI_OPT_CERT_DIR},       \
	        {"retry-times", required_argument, NULL, CLI_OPT_RETRY_TIMES}, \
	{                                                                      \
		"debug", no_argument, NULL, CLI_OPT_DEBUG                      \
	}
#define CLI_REGISTRY_HELP                                                                    \
	"  --creds USER[:PASSWORD]       registry credentials\n"                             \
	"  --authfile FILE               auth.json / config.json to use\n"                   \
	"  --tls-verify=BOOL             check the registry's certificate (default true);\n" \
	"                                false also allows plain http\n"                     \
	"  --cert-dir DIR                CA certificates and client certificate for it\n"    \
	"  --retry-times N               attempts after a network failure (default 4)\n"     \
	"  --debug                       print the HTTP exchanges (credentials redacted)\n"
/* The options of the commands that move an image between two places (copy,
 * image): platforms, compression, both ends' registry access. */
enum {
	CLI_OPT_PLATFORM = 1100,
	CLI_OPT_ALL,
	CLI_OPT_COMPRESS,
	CLI_OPT_JOBS,
	CLI_OPT_SRC_CREDS,
	CLI_OPT_DEST_CREDS,
	CLI_OPT_SRC_AUTHFILE,
	CLI_OPT_DEST_AUTHFILE,
	CLI_OPT_SRC_TLS_VERIFY,
	CLI_OPT_DEST_TLS_VERIFY,
	CLI_OPT_SRC_CERT_DIR,
	CLI_OPT_DEST_CERT_DIR,
};
#define CLI_TRANSFER_LONGOPTS                                                                             \
	{"platform", required_argument, NULL, CLI_OPT_PLATFORM}, {"all", no_argument, NULL, CLI_OPT_ALL}, \
	        {"dest-compress", required_argument, NULL, CLI_OPT_COMPRESS},                             \
	        {"jobs", required_argument, NULL, CLI_OPT_JOBS},                                          \
	        {"src-creds", required_argument, NULL, CLI_OPT_SRC_CREDS},                                \
	        {"dest-creds", required_argument, NULL, CLI_OPT_DEST_CREDS},                              \
	        {"authfile", required_argument, NULL, CLI_OPT_AUTHFILE},                                  \
	        {"src-authfile", required_argument, NULL, CLI_OPT_SRC_AUTHFILE},                          \
	        {"dest-authfile", required_argument, NULL, CLI_OPT_DEST_AUTHFILE},                        \
	        {"tls-verify", optional_argument, NULL, CLI_OPT_TLS_VERIFY},                              \
	        {"src-tls-verify", optional_argument, NULL, CLI_OPT_SRC_TLS_VERIFY},                      \
	        {"dest-tls-verify", optional_argument, NULL, CLI_OPT_DEST_TLS_VERIFY},                    \
	        {"src-cert-dir", required_argument, NULL, CLI_OPT_SRC_CERT_DIR},                          \
	        {"dest-cert-dir", required_argument, NULL, CLI_OPT_DEST_CERT_DIR},                        \
	        {"retry-times", required_argument, NULL, CLI_OPT_RETRY_TIMES},                            \
	{                                                                                                 \
		"debug", no_argument, NULL, CLI_OPT_DEBUG                                                 \
	}
#define CLI_TRANSFER_HELP                                                                     \
	"  --platform OS/ARCH[/VARIANT]  image of an index to take (default: this host's)\n"  \
	"  --all                         every image of an index, and the index\n"            \
	"  --dest-compress FORMAT        gzip, zstd or none: compress written layers so\n"    \
	"  --jobs N                      layers moved at once (default: 6 with a registry,\n" \
	"                                else one per core, at most 4)\n"                     \
	"  --src-creds USER[:PASSWORD]   credentials for the source registry\n"               \
	"  --dest-creds USER[:PASSWORD]  credentials for the destination registry\n"          \
	"  --authfile FILE               auth.json / config.json to use (also\n"              \
	"                                --src-authfile, --dest-authfile)\n"                  \
	"  --tls-verify=BOOL             check registry certificates (default true); false\n" \
	"                                also allows plain http (also --src-tls-verify,\n"    \
	"                                --dest-tls-verify)\n"                                \
	"  --src-cert-dir DIR            CA certificates (*.crt) and client certificate\n"    \
	"  --dest-cert-dir DIR           (NAME.cert + NAME.key) for that registry\n"          \
	"  --retry-times N               attempts after a network failure (default 4)\n"      \
	"  --debug                       print the HTTP exchanges (credentials redacted)\n"
int cli_transfer_option(const char *command, int opt, const char *arg, sconify_copy_options_t *opts);

/* The command line of sign and verify: --key, -a, --recursive (sign only),
 * the registry options, one IMAGE. */
typedef struct {
	sconify_sign_options_t opts;
	const char *key;
	const char *image;
	const char **annotations;
	char *creds; /* completed on the terminal, wiped by clear */
} cli_signature_args;
/* Returns -1 when the command should go on, else its exit status. */
int cli_signature_args_parse(const char *command, bool sign, void (*help)(void), int argc, char **argv,
                             cli_signature_args *a);
void cli_signature_args_clear(cli_signature_args *a);
#define cleanup_signature_args __attribute__((cleanup(cli_signature_args_clear)))

/* Applies opt if it is one of them: 1 when it was, 0 when not, -1 after a
 * usage error was printed. */
int cli_registry_option(const char *command, int opt, const char *arg, sconify_registry_options_t *reg,
                        int *retries, sconify_debug_fn *debug);

/* A progress display of the blobs being copied, on a terminal only. */
typedef struct cli_progress cli_progress;
cli_progress *cli_progress_new(void);
void cli_progress_event(void *userdata, sconify_event_t ev, const char *digest, uint64_t done,
                        uint64_t total);
void cli_progress_free(cli_progress *p);

/* A CAS and the client identity (sconify image --cas, sconify session). */
enum {
	CLI_OPT_CAS = 1200,
	CLI_OPT_CAS_IDENTITY,
	CLI_OPT_CAS_KEY_HASH,
};
typedef struct {
	const char *url;      /* --cas */
	const char *identity; /* --identity, NULL: the default one (made on first use) */
	const char *key_hash; /* --cas-key-hash, NULL: remembered or trusted on first use */
} cli_cas_args;
#define CLI_CAS_LONGOPTS                                                      \
	{"cas", required_argument, NULL, CLI_OPT_CAS},                        \
	        {"identity", required_argument, NULL, CLI_OPT_CAS_IDENTITY},  \
	{                                                                     \
		"cas-key-hash", required_argument, NULL, CLI_OPT_CAS_KEY_HASH \
	}
#define CLI_CAS_HELP                                                                             \
	"  --cas URL                     the CAS (https://HOST:PORT, or HOST:PORT)\n"            \
	"  --identity FILE               the client identity: key and certificate (PEM);\n"      \
	"                                default: made once in ~/.config/sconify/identity.pem\n" \
	"  --cas-key-hash HEX            pin the CAS's key (SHA-256 of its public key); else\n"  \
	"                                the one remembered for URL, else trusted on first use\n"
/* --identity, --cas-key-hash (not --cas, whose meaning differs): 1 when opt
 * was one, 0 when not, -1 after a usage error was printed. */
int cli_cas_option(const char *command, int opt, const char *arg, cli_cas_args *a);
/* The identity (made and announced on first use), the key hash (given,
 * remembered, or fetched, remembered and announced), the client. Returns
 * EXIT_OK, else prints the error and returns EXIT_FAIL. *ret_key_hash
 * (malloc'd) when not NULL. */
int cli_cas_connect(const char *command, const cli_cas_args *a, sconify_debug_fn debug, sconify_cas_t **ret,
                    char **ret_key_hash);

int cmd_copy(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_session(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
