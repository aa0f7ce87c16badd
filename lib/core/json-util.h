/* SPDX-License-Identifier: Apache-2.0 */
/* jansson helpers: cleanup, strict parsing of outside documents, typed getters. */
#ifndef SC_JSON_UTIL_H
#define SC_JSON_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"
#include "error.h"

static inline void sc_json_decrefp(json_t **j)
{
	if (*j)
		json_decref(*j);
}
#define cleanup_json _cleanup_(sc_json_decrefp)

/* Parses outside JSON: duplicate keys and NULs in strings are rejected (two
 * parsers must never read one document differently). what names it. */
int sc_json_parse(const char *data, size_t len, const char *what, json_t **ret, sconify_error_t *err);

/* Typed member access for validation: each fails with a message naming what
 * and the key when the member is missing (unless optional) or of another type. */
int sc_json_get_string(json_t *obj, const char *key, bool optional, const char *what, const char **ret,
                       sconify_error_t *err);
int sc_json_get_uint(json_t *obj, const char *key, const char *what, uint64_t *ret, sconify_error_t *err);
int sc_json_get_object(json_t *obj, const char *key, bool optional, const char *what, json_t **ret,
                       sconify_error_t *err);
int sc_json_get_array(json_t *obj, const char *key, bool optional, const char *what, json_t **ret,
                      sconify_error_t *err);

/* Compact serialisation of our own documents; keys keep insertion order. */
char *sc_json_dump(json_t *j, size_t *ret_len);

#endif
