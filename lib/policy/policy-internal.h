/* SPDX-License-Identifier: Apache-2.0 */
/* What the files of lib/policy share and nobody else needs. */
#ifndef SC_POLICY_INTERNAL_H
#define SC_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/secret.h"
#include "policy.h"

/* A secret reference found in a text: `$$SCONE::name[:enc]$$'. */
typedef enum {
	SC_REF_RAW = 0,
	SC_REF_HEX,
	SC_REF_BASE64,
} sc_ref_enc;

typedef struct {
	size_t start, end; /* the whole reference, end exclusive */
	const char *name;  /* inside the text, not NUL-terminated */
	size_t name_len;
	sc_ref_enc enc;
} sc_policy_ref;

/* Finds the next reference at or after *pos. Returns 1 and advances *pos
 * past it, 0 when there is none, -1 when `$$SCONE::' at ref->start does not
 * begin a well-formed reference (*pos is advanced past the marker). */
int sc_policy_next_ref(const char *t, size_t len, size_t *pos, sc_policy_ref *ref);

bool sc_policy_lower_hex(const char *s, size_t n);
void sc_policy_hex_encode(const uint8_t *in, size_t n, char *out); /* 2n + 1 bytes */
/* Either case; n even. */
bool sc_policy_hex_decode(const char *s, size_t n, uint8_t *out);
char *sc_policy_base64_encode(const uint8_t *in, size_t n, size_t *ret_len);
/* Strict: standard alphabet, padding, no whitespace. */
bool sc_policy_base64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_len);
/* Absolute, no empty, `.' or `..' component, no trailing `/'. */
bool sc_policy_valid_path(const char *s, size_t n);
bool sc_policy_utf8_valid(const char *s, size_t n);

/* A growable byte buffer whose old blocks are wiped when it grows (it holds
 * secrets): core/secret.h's, without a cap (emitted documents are ours). */
typedef sc_secret sc_wbuf;
void sc_wbuf_append(sc_wbuf *b, const void *p, size_t n);
/* NUL-terminated; the buffer is left empty. */
char *sc_wbuf_steal(sc_wbuf *b, size_t *ret_len);
void sc_wbuf_free(sc_wbuf *b);

int sc_policy_env_cmp(const void *a, const void *b);

#endif
