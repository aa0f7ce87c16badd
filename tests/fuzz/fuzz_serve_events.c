/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Webhook bodies arrive from the network. The first byte picks the source
 * (distribution, Harbor, GitHub), the rest is the body; the headers are a
 * fixed set a real sender would send. Every accepted push must name a valid
 * digest, tag, repository and registry; every refusal is INVALID or LIMIT.
 * The body also goes through the HMAC check, which must refuse it without
 * crashing.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/secret.h"
#include "digest/digest.h"
#include "ref/reference.h"
#include "serve/events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const header_names[] = {"Content-Type", "X-GitHub-Event", "X-GitHub-Delivery",
                                           "X-Hub-Signature-256"};
static const char *const header_values[] = {
        "application/vnd.docker.distribution.events.v2+json",
        "registry_package",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
};

static const char *get_header(void *arg, const char *name)
{
	(void)arg;
	for (size_t i = 0; i < sizeof(header_names) / sizeof(header_names[0]); i++)
		if (strcasecmp(name, header_names[i]) == 0)
			return header_values[i];
	return NULL;
}

static void check_push(const sc_serve_event_push *p)
{
	if (!p->registry || !p->repository || !p->tag || !p->digest)
		__builtin_trap();
	if (strncmp(p->digest, "sha256:", 7) != 0 || !sc_digest_valid(p->digest) || !sc_tag_valid(p->tag))
		__builtin_trap();
	size_t n = strlen(p->repository);
	if (n == 0 || n > 255 || p->repository[0] == '/' || p->repository[n - 1] == '/' ||
	    strstr(p->repository, "//"))
		__builtin_trap();
	for (const char *c = p->repository; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr("._-/", *c)))
			__builtin_trap();
	if (p->registry[0] == '\0' || strpbrk(p->registry, "/@ ?#"))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	sc_source_kind source = (sc_source_kind)(data[0] % SC_SOURCE__N);
	sc_serve_request req = {.get_header = get_header, .body = data + 1, .body_len = size - 1};

	sc_secret secret = {0};
	sc_secret_append(&secret, "fuzz-secret", 11, 64);
	sc_serve_auth auth = {.configured = true, .hmac = &secret, .n_hmac = 1};
	sconify_error_t err = NULL;
	if (sc_serve_authenticate(source, &auth, &req, &err) == 0 ||
	    sconify_error_kind(err) != SCONIFY_ERR_AUTH)
		__builtin_trap();
	sconify_error_free(&err);
	sc_secret_free(&secret);

	sc_serve_event *e = NULL;
	if (sc_serve_event_parse(source, &req, &e, &err) < 0) {
		sconify_error_kind_t k = sconify_error_kind(err);
		if (e != NULL || (k != SCONIFY_ERR_INVALID && k != SCONIFY_ERR_LIMIT))
			__builtin_trap();
		sconify_error_free(&err);
		return 0;
	}
	if (e->source != source || e->n_pushes > SC_SERVE_MAX_PUSHES || (e->n_pushes && e->pushes == NULL))
		__builtin_trap();
	if ((source == SC_SOURCE_GITHUB) != (e->delivery_id != NULL))
		__builtin_trap();
	for (size_t i = 0; i < e->n_pushes; i++)
		check_push(&e->pushes[i]);
	sc_serve_event_free(e);
	return 0;
}
