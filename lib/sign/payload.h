/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simple-signing payload cosign signs ("cosign container image
 * signature"), built the way cosign writes it and parsed the way the
 * strictest verifier (containers/image) reads it.
 */
#ifndef SC_SIGN_PAYLOAD_H
#define SC_SIGN_PAYLOAD_H

#include <jansson.h>
#include <stddef.h>

#include "digest/digest.h"
#include "sconify.h"

#define SC_SIG_PAYLOAD_TYPE "cosign container image signature"

/* Compact JSON, keys in cosign's order; optional: an object of strings,
 * or NULL for "optional": null. */
char *sc_sig_payload_build(const char *docker_reference, const sc_digest *digest, json_t *optional,
                           size_t *ret_len);

typedef struct {
	json_t *root;          /* the whole payload */
	const char *reference; /* critical.identity.docker-reference */
	sc_digest digest;      /* critical.image.docker-manifest-digest */
	json_t *optional;      /* an object, or NULL */
} sc_sig_payload;

/* Top level exactly {critical, optional}, critical exactly {identity,
 * image, type} with each member's exact shape, optional an object or null
 * (with an integral "timestamp" if any). */
int sc_sig_payload_parse(const char *data, size_t len, sc_sig_payload *ret, sconify_error_t *err);
void sc_sig_payload_clear(sc_sig_payload *p);

#endif
