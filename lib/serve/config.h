/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration of `sconify serve` (docs/serve.md): a strict YAML file
 * (libyaml) giving the listen address, TLS, the state directory, the worker
 * count, how each event source authenticates, and the rules that map a
 * pushed image to its confidential twin. Unknown keys, wrong types and
 * duplicate keys are errors naming the line ("FILE:LINE: ..."). Secrets
 * (tokens, HMAC secrets) are read from the files the config names, or
 * given inline, and are held in sc_secret buffers, never in messages.
 *
 * Rule matching and template expansion live here too: they are what the
 * config means.
 */
#ifndef SC_SERVE_CONFIG_H
#define SC_SERVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/secret.h"

/* Where an event came from: the endpoint it was posted to. */
typedef enum {
	SC_SOURCE_DISTRIBUTION, /* CNCF distribution notifications (also GitLab's registry) */
	SC_SOURCE_HARBOR,       /* Harbor project webhook (Default or CloudEvents format) */
	SC_SOURCE_GITHUB,       /* GitHub package events, HMAC-signed */
	SC_SOURCE__N,
} sc_source_kind;

const char *sc_source_kind_name(sc_source_kind k); /* "distribution", "harbor", "github" */
/* -1 when name is none of them. */
int sc_source_kind_from_name(const char *name);

/* How one source authenticates. Several credentials may be active at once
 * (rotation): a request passes when it matches any of them. */
typedef struct {
	bool configured; /* the source appears under `auth:`; otherwise its endpoint answers 404 */
	/* `bearer: TOKEN' / `bearer_file: FILE' (one token a line): the request
	 * carries `Authorization: Bearer TOKEN'. */
	sc_secret *bearer; /* array */
	size_t n_bearer;
	/* `header: {name: X-Name, value: V}' / `{name:, value_file:}': a static
	 * header for senders that can only send a configured header (Harbor's
	 * auth header is sent as `Authorization' verbatim). */
	char *header_name;
	sc_secret *header_value; /* array */
	size_t n_header_value;
	/* `hmac_secret: S' / `hmac_secret_file: FILE' (one secret a line): GitHub's
	 * X-Hub-Signature-256 over the raw body. */
	sc_secret *hmac; /* array */
	size_t n_hmac;
} sc_serve_auth;

typedef struct {
	char *name;  /* `name:', default "rule-N" (N from 1, in file order); unique */
	size_t line; /* where the rule starts in the file */
	/* source: registry is required. Events name the registry themselves
	 * (distribution: the Host header of the pushing client; Harbor and
	 * GitHub: the body), so it is the rule's trust in where it converts
	 * from; "*" trusts any host a sender names. */
	int from;         /* an sc_source_kind, or -1: any source (`source.from:') */
	char *registry;   /* pattern for the registry host[:port] (required) */
	char *repository; /* pattern for the repository; "*" when absent */
	char *tag;        /* pattern for the tag; "*" when absent */
	/* what to do: */
	char *destination; /* template (required) */
	char **dir;        /* encrypted regions */
	size_t n_dir;
	char **authenticated; /* integrity-only regions */
	size_t n_authenticated;
	char **env; /* KEY=VALUE for the policy (`env:' as a map in the YAML) */
	size_t n_env;
	char *command;            /* NULL: the image's */
	char *mode;               /* "sim" or "hw"; default "hw" */
	char *cas;                /* URL or NULL */
	char *cas_key_hash;       /* NULL: as `sconify image' decides */
	char *identity;           /* FILE or NULL */
	char *session;            /* session name template or NULL */
	char *namespace_;         /* `namespace:' or NULL */
	char *service_name;       /* NULL: default */
	char *sign_key;           /* FILE or NULL: no signature */
	char *sign_password_file; /* FILE holding COSIGN_PASSWORD, or NULL */
	char *platform;           /* NULL: default */
	bool all;                 /* every image of an index */
	/* Both ends (`tls_verify:', default true); `src_tls_verify:' and
	 * `dest_tls_verify:' override one end. */
	bool src_tls_verify, dest_tls_verify;
	char *authfile; /* auth.json for both ends, or NULL */
	char *src_cert_dir, *dest_cert_dir;
} sc_serve_rule;

typedef struct {
	char *path;     /* the file read */
	char *listen;   /* default "127.0.0.1:8080" */
	char *tls_cert; /* `tls: {cert: FILE, key: FILE}'; both or neither */
	char *tls_key;
	char *state_dir;       /* required */
	unsigned workers;      /* default 2, 0..64 (0: accept and queue only) */
	unsigned max_attempts; /* `retry: {attempts: N}' default 5 */
	unsigned backoff_ms;   /* `retry: {backoff: SECONDS}' first delay, doubled each time; default 10 s */
	unsigned max_backoff_ms;     /* `retry: {max_backoff: SECONDS}' default 600 s */
	size_t max_body;             /* `limits: {body: BYTES}' default 256 KiB */
	size_t max_connections;      /* `limits: {connections: N}' default 1024 */
	size_t max_per_ip;           /* `limits: {per_ip: N}' default 64 or max_connections if fewer;
	                              * evhttp buffers a whole body before credentials can be
	                              * checked: body and per_ip bound what unauthenticated
	                              * clients can hold */
	unsigned request_timeout_ms; /* `limits: {request_timeout: SECONDS}' default 30 s */
	unsigned replay_window_s;    /* `limits: {replay_window: SECONDS}': how long delivery ids are
	                              * remembered; default 7 days */
	unsigned job_timeout_ms;     /* `limits: {job: SECONDS}': the wall-clock cap of one job run;
	                              * default 3600 s, 10 s to 7 days */
	size_t max_queued;           /* `limits: {queue: N}': deliveries get 503 past this many queued
	                              * jobs; default 100000, 1 to 10000000 */
	sc_serve_auth auth[SC_SOURCE__N];
	/* `auth: {operator: {bearer: ...}}': when configured, GET /v1/jobs and
	 * /metrics need it (/healthz never does). Only `bearer' applies.
	 * Required when `listen' is not a loopback address. */
	sc_serve_auth operator_;
	sc_serve_rule *rules;
	size_t n_rules; /* at least one */
} sc_serve_config;

/* Reads and checks path. Relative file names in it are taken relative to the
 * directory of path. Errors are INVALID and start "PATH:LINE: " (LIMIT for
 * sizes and counts over the caps, NOT_FOUND for a file it names that does not
 * exist); when there are several, the first by line is reported with "(and
 * N more problems)". Files it names (secret files, TLS, signing keys) must
 * exist and be regular files; secret files, sign_password_file and tls.key
 * must not be readable by group or others. Anchors, aliases, tags and
 * several documents are refused, as in session policies.
 *
 * Templates are tried at load with a few sample pushes (a flat repository
 * and tag; a nested repository with a dotted tag, fitted to each rule's
 * patterns): a destination must expand to a tagged image reference that
 * names its registry and that no rule would match again (the service would
 * convert its own output), a session to a valid session name. */
int sc_serve_config_load(const char *path, sc_serve_config **ret, sconify_error_t *err);
/* The same over text already read: what names it in messages, base_dir is
 * where relative file names are taken from (files are still checked). */
int sc_serve_config_parse(const char *what, const char *text, size_t len, const char *base_dir,
                          sc_serve_config **ret, sconify_error_t *err);
/* Every problem of the file at path, one "PATH:LINE: ..." message each,
 * sorted by line; an empty list (NULL-terminated, to sc_strv_free) when it
 * is valid: for `sconify serve --check'. */
char **sc_serve_config_check(const char *path);
/* The rule called name, or NULL. */
const sc_serve_rule *sc_serve_config_rule(const sc_serve_config *c, const char *name);
void sc_serve_config_free(sc_serve_config *c);
SC_DEFINE_CLEANUP(sc_serve_config *, sc_serve_config_free)
#define cleanup_serve_config _cleanup_(sc_serve_config_freep)

/* A pushed image as an event names it. */
typedef struct {
	sc_source_kind source;
	const char *registry;   /* host[:port] as the sender saw it */
	const char *repository; /* "apps/web" */
	const char *tag;        /* "v1" */
	const char *digest;     /* "sha256:<hex>" of the pushed manifest or index */
} sc_serve_push;

/* Pattern matching: fnmatch(3) rules (`*', `?', `[...]' with `!' or `^'
 * negating, a backslash escaping the next character), where `*', `?' and
 * classes never match `/' in repositories; `**' matches across `/', and a
 * `**' that is a whole component may also stand for no component at all
 * (the pattern made of `apps', `**' and `web' joined by `/' matches
 * "apps/web", "apps/a/web" and "apps/a/b/web"). Registries match without
 * regard to case. The source must equal r->from unless that is -1. A NULL
 * field of p matches as ""; a NULL registry pattern matches nothing. */
bool sc_serve_rule_matches(const sc_serve_rule *r, const sc_serve_push *p);

/* Expands a template: {registry} {repository} {tag} {digest} (sha256:hex)
 * {digest_hex} {name} (the last component of the repository) {rule}. Any
 * other {word}, or an unbalanced brace, is INVALID. The result is checked by
 * the caller (a destination must parse as an image reference, a session as a
 * session name, sc_serve_session_name_valid()). */
int sc_serve_expand(const char *template_, const sc_serve_rule *r, const sc_serve_push *p, char **ret,
                    sconify_error_t *err);

/* Whether s, an expanded session template, is a session name the CAS takes:
 * [namespace/]name of letters, digits, `_' and `-' (sc_policy_valid_session_name). */
bool sc_serve_session_name_valid(const char *s);

#endif
