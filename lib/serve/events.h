/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Webhook deliveries (docs/serve.md, "Events"): authenticating a request
 * against a source's credentials, and parsing its body into the image pushes
 * it reports. Three formats:
 *   - CNCF distribution notifications, envelope `{"events":[...]}` with
 *     Content-Type application/vnd.docker.distribution.events.v1+json (v2.x)
 *     or .v2+json (v3); only `action: push' of a manifest media type with a
 *     `tag' is a push (blob pushes, pulls, deletes, tagless manifest puts are
 *     skipped);
 *   - Harbor's webhook, Default (`type: PUSH_ARTIFACT') and CloudEvents
 *     (`type: harbor.artifact.pushed', object under `data');
 *   - GitHub `registry_package' / `package' events, actions `published' and
 *     `updated', for container packages.
 * Parsing is strict about what it uses (types, digest syntax, repository and
 * tag syntax) and ignores fields it does not use. Everything is bounded: the
 * body is capped by the server, and at most SC_SERVE_MAX_PUSHES pushes come
 * out of one delivery.
 */
#ifndef SC_SERVE_EVENTS_H
#define SC_SERVE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "serve/config.h"

#define SC_SERVE_MAX_PUSHES 256

/* One push out of a delivery; strings owned by the sc_serve_event. */
typedef struct {
	char *registry; /* host[:port] */
	char *repository;
	char *tag;
	char *digest;     /* sha256:<64 hex> */
	char *media_type; /* of the manifest, or NULL when the format does not say */
	/* Who pushed it, where the format says (distribution: request.useragent;
	 * NULL otherwise): the service skips pushes made by sconify itself. */
	char *user_agent;
} sc_serve_event_push;

typedef struct {
	sc_source_kind source;
	/* The sender's delivery id where the format has one (GitHub:
	 * X-GitHub-Delivery), for replay protection; NULL otherwise. */
	char *delivery_id;
	sc_serve_event_push *pushes;
	size_t n_pushes;
	/* Events in the delivery that were not pushes we act on (pulls, blob
	 * pushes, deletes, untagged manifests, other Harbor/GitHub types). */
	size_t n_skipped;
} sc_serve_event;

void sc_serve_event_free(sc_serve_event *e);
SC_DEFINE_CLEANUP(sc_serve_event *, sc_serve_event_free)
#define cleanup_serve_event _cleanup_(sc_serve_event_freep)

/* The request as the server saw it. Header lookup is case-insensitive;
 * get_header returns NULL for an absent header. header_repeated (optional:
 * NULL when the server already refused repeated headers) says whether a
 * header came more than once: a credential or signature header sent twice is
 * refused, since two parsers could pick different copies. */
typedef struct {
	const char *(*get_header)(void *arg, const char *name);
	void *arg;
	const uint8_t *body;
	size_t body_len;
	bool (*header_repeated)(void *arg, const char *name);
} sc_serve_request;

/* Checks the request against the source's credentials: a bearer token, the
 * static header, or for GitHub the HMAC-SHA256 of the raw body in
 * X-Hub-Signature-256 (`sha256=<hex>'). Compares in constant time. AUTH
 * when nothing matches, with a message that names what was missing or wrong
 * but never a secret; USAGE when auth is not configured for the source. */
int sc_serve_authenticate(sc_source_kind source, const sc_serve_auth *auth, const sc_serve_request *req,
                          sconify_error_t *err);

/* Parses the body. INVALID (for the server: 400) when it is not JSON, not
 * the source's format, or a push in it is malformed (bad digest, repository
 * or tag); LIMIT beyond SC_SERVE_MAX_PUSHES, or when the body holds more
 * JSON than a delivery needs (32768 objects and arrays, 262144 values: the
 * shape is checked before jansson builds anything, so a 1 MiB body costs at
 * most ~25 MB; nesting beyond 64 levels is INVALID). GitHub needs X-GitHub-Event
 * (`registry_package' or `package'; `ping' gives no pushes) and
 * X-GitHub-Delivery; distribution needs a Content-Type of one of its two
 * media types (application/json is accepted too); registry host for
 * distribution is request.host (else the host of target.url), for Harbor the
 * host of resource_url, for GitHub the host of package_url (default ghcr.io). */
int sc_serve_event_parse(sc_source_kind source, const sc_serve_request *req, sc_serve_event **ret,
                         sconify_error_t *err);

#endif
