/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Platforms ("linux/arm64/v8"): parsing, the host's, normalisation of the
 * aliases people and tools use (x86_64, aarch64, armhf...) and matching an
 * index entry against the one asked for.
 */
#ifndef SC_PLATFORM_H
#define SC_PLATFORM_H

#include <jansson.h>
#include <stdbool.h>

#include "core/error.h"

typedef struct {
	char *os;
	char *arch;
	char *variant; /* NULL when none */
} sc_platform;

/* "os/arch[/variant]", normalised. */
int sc_platform_parse(const char *s, sc_platform *ret, sconify_error_t *err);
/* The platform this program was built for; the OS is always linux (images are). */
void sc_platform_host(sc_platform *ret);
/* From an index entry's or a config's fields (architecture, os, variant). */
int sc_platform_from_json(json_t *obj, const char *what, sc_platform *ret, sconify_error_t *err);
void sc_platform_normalize(sc_platform *p);
/* Both normalised; an absent variant equals the architecture's default one. */
bool sc_platform_matches(const sc_platform *want, const sc_platform *have);
char *sc_platform_string(const sc_platform *p);
void sc_platform_clear(sc_platform *p);
void sc_platform_copy(sc_platform *dst, const sc_platform *src);

#endif
