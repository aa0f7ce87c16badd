/* SPDX-License-Identifier: Apache-2.0 */
#include "json-util.h"

#include <string.h>

#include "strutil.h"
#include "xalloc.h"

int sc_json_parse(const char *data, size_t len, const char *what, json_t **ret, sconify_error_t *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		cleanup_free char *q = sc_quote(jerr.text, SC_QUOTE_MAX);
		if (json_error_code(&jerr) == json_error_duplicate_key)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s has a duplicate key (%s)", what, q);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is not valid JSON: %s at line %d column %d",
		                what, q, jerr.line, jerr.column);
	}
	*ret = j;
	return 0;
}

static const char *type_name(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

static int get(json_t *obj, const char *key, bool optional, const char *what, json_type want,
               const char *want_name, json_t **ret, sconify_error_t *err)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	if (v == NULL) {
		if (optional) {
			*ret = NULL;
			return 0;
		}
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s lacks `%s'", what, key);
	}
	if (json_typeof(v) != want)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `%s' is %s, not %s", what, key,
		                type_name(v), want_name);
	*ret = v;
	return 0;
}

int sc_json_get_string(json_t *obj, const char *key, bool optional, const char *what, const char **ret,
                       sconify_error_t *err)
{
	json_t *v = NULL;
	if (get(obj, key, optional, what, JSON_STRING, "a string", &v, err) < 0)
		return -1;
	*ret = v ? json_string_value(v) : NULL;
	return 0;
}

int sc_json_get_uint(json_t *obj, const char *key, const char *what, uint64_t *ret, sconify_error_t *err)
{
	json_t *v = NULL;
	if (get(obj, key, false, what, JSON_INTEGER, "an integer", &v, err) < 0)
		return -1;
	json_int_t i = json_integer_value(v);
	if (i < 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: `%s' is negative", what, key);
	*ret = (uint64_t)i;
	return 0;
}

int sc_json_get_object(json_t *obj, const char *key, bool optional, const char *what, json_t **ret,
                       sconify_error_t *err)
{
	return get(obj, key, optional, what, JSON_OBJECT, "an object", ret, err);
}

int sc_json_get_array(json_t *obj, const char *key, bool optional, const char *what, json_t **ret,
                      sconify_error_t *err)
{
	return get(obj, key, optional, what, JSON_ARRAY, "an array", ret, err);
}

char *sc_json_dump(json_t *j, size_t *ret_len)
{
	char *s = json_dumps(j, JSON_COMPACT);
	if (s == NULL)
		abort(); /* only on allocation failure */
	if (ret_len)
		*ret_len = strlen(s);
	return s;
}
