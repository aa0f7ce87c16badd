/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry credentials from where users keep them: --creds, --authfile /
 * $REGISTRY_AUTH_FILE, containers' auth.json, Docker's config.json (auths,
 * credHelpers, credsStore through docker-credential-<name>), in the order
 * skopeo and docker use (docs/credentials.md). Secrets are wiped when freed
 * and never appear in an error message.
 */
#ifndef SC_CREDS_H
#define SC_CREDS_H

#include <stdbool.h>

#include "core/cleanup.h"
#include "sconify.h"

/* Anonymous when username and identity_token are both NULL
 * (sc_credentials_empty()). */
typedef struct {
	char *username;       /* NULL: anonymous, or an identity token from a helper ("<token>") */
	char *password;       /* set (maybe "") whenever username is */
	char *identity_token; /* an OAuth2 refresh token (Docker's "identitytoken"); username may be set too
	                       */
	char *source;         /* where they came from, for messages: "--creds", a file path, a helper name */
} sc_credentials;

/* Wipes the secrets (OPENSSL_cleanse), frees the fields and zeroes *c.
 * Accepts NULL and an already cleared struct. */
void sc_credentials_clear(sc_credentials *c);
#define cleanup_credentials _cleanup_(sc_credentials_clear)

/* True when c holds nothing to authenticate with. */
bool sc_credentials_empty(const sc_credentials *c);

typedef struct {
	const char *creds;    /* "USER:PASSWORD" from --creds / --src-creds / --dest-creds, or NULL */
	const char *authfile; /* --authfile, or NULL ("" counts as NULL) */
	                      /* Environment read with getenv(): REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR,
	                       * XDG_CONFIG_HOME, DOCKER_CONFIG, HOME, PATH (for helpers). */
} sc_creds_options;

/* Credentials for registry (host[:port] as sc_docker_ref normalises it:
 * "docker.io" for Docker Hub) and repository (its path, "library/alpine", or
 * NULL), the most specific auth.json key first ("host/ns/repo" before
 * "host/ns" before "host"). *ret is zeroed (anonymous) when none are
 * configured. Fails, naming the file or helper and the problem but never a
 * secret, on a --creds value without ':' or with an empty user, a missing
 * --authfile / $REGISTRY_AUTH_FILE, an unreadable or malformed file, a helper
 * that is missing or fails (other than "credentials not found"). o may be NULL.
 * Runs helpers as child processes (posix_spawn, no shell) and waits for them:
 * a helper that waits for the user (a keychain prompt) blocks this call. */
int sc_credentials_lookup(const sc_creds_options *o, const char *registry, const char *repository,
                          sc_credentials *ret, sconify_error_t *err);

#endif
