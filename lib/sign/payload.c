/* SPDX-License-Identifier: Apache-2.0 */
#include "payload.h"

#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/json-util.h"
#include "core/strutil.h"

char *sc_sig_payload_build(const char *docker_reference, const sc_digest *digest, json_t *optional,
                           size_t *ret_len)
{
	cleanup_json json_t *p =
	        json_pack("{s:{s:{s:s},s:{s:s},s:s},s:O?}", "critical", "identity", "docker-reference",
	                  docker_reference, "image", "docker-manifest-digest", digest->str, "type",
	                  SC_SIG_PAYLOAD_TYPE, "optional", optional);
	if (p == NULL)
		abort();
	return sc_json_dump(p, ret_len);
}

/* obj has exactly the n keys named. */
static int exact_keys(json_t *obj, const char *what, const char *const *keys, size_t n, sconify_error_t *err)
{
	if (!json_is_object(obj))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "signature payload: `%s' is not an object",
		                what);
	const char *k;
	json_t *v;
	json_object_foreach (obj, k, v) {
		bool known = false;
		for (size_t i = 0; i < n; i++)
			known |= strcmp(k, keys[i]) == 0;
		if (!known) {
			cleanup_free char *q = sc_quote(k, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "signature payload: unknown member `%s' in `%s'", q, what);
		}
	}
	for (size_t i = 0; i < n; i++)
		if (json_object_get(obj, keys[i]) == NULL)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "signature payload: `%s' has no `%s'",
			                what, keys[i]);
	return 0;
}

static int string_member(json_t *obj, const char *key, const char *what, const char **ret,
                         sconify_error_t *err)
{
	const char *s = json_string_value(json_object_get(obj, key));
	if (s == NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "signature payload: `%s.%s' is not a string",
		                what, key);
	*ret = s;
	return 0;
}

int sc_sig_payload_parse(const char *data, size_t len, sc_sig_payload *ret, sconify_error_t *err)
{
	static const char *const top_keys[] = {"critical", "optional"};
	static const char *const critical_keys[] = {"identity", "image", "type"};
	static const char *const identity_keys[] = {"docker-reference"};
	static const char *const image_keys[] = {"docker-manifest-digest"};

	cleanup_json json_t *root = NULL;
	if (sc_json_parse(data, len, "signature payload", &root, err) < 0)
		return -1;
	json_t *critical = json_object_get(root, "critical");
	json_t *identity = json_object_get(critical, "identity");
	json_t *image = json_object_get(critical, "image");
	json_t *optional = json_object_get(root, "optional");
	const char *type = NULL, *reference = NULL, *digest = NULL;
	if (exact_keys(root, "(top level)", top_keys, 2, err) < 0 ||
	    exact_keys(critical, "critical", critical_keys, 3, err) < 0 ||
	    exact_keys(identity, "critical.identity", identity_keys, 1, err) < 0 ||
	    exact_keys(image, "critical.image", image_keys, 1, err) < 0 ||
	    string_member(critical, "type", "critical", &type, err) < 0 ||
	    string_member(identity, "docker-reference", "critical.identity", &reference, err) < 0 ||
	    string_member(image, "docker-manifest-digest", "critical.image", &digest, err) < 0)
		return -1;
	if (strcmp(type, SC_SIG_PAYLOAD_TYPE) != 0) {
		cleanup_free char *q = sc_quote(type, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "signature payload: type `%s' is not `" SC_SIG_PAYLOAD_TYPE "'", q);
	}
	sc_digest d;
	if (sc_digest_parse(digest, &d, err) < 0)
		return sc_error_wrap(err, "signature payload: docker-manifest-digest");
	if (!json_is_object(optional) && !json_is_null(optional))
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "signature payload: `optional' is neither an object nor null");
	json_t *ts = json_object_get(optional, "timestamp");
	if (ts && !json_is_integer(ts) &&
	    !(json_is_real(ts) && json_real_value(ts) == floor(json_real_value(ts))))
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "signature payload: `optional.timestamp' is not an integer");

	*ret = (sc_sig_payload){
	        .reference = reference,
	        .digest = d,
	        .optional = json_is_object(optional) ? optional : NULL,
	};
	ret->root = steal_pointer(&root);
	return 0;
}

void sc_sig_payload_clear(sc_sig_payload *p)
{
	json_decref(p->root);
	*p = (sc_sig_payload){0};
}
