/* SPDX-License-Identifier: Apache-2.0 */
#include "document.h"

#include <string.h>

#include "core/json-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"

int sc_descriptor_parse(json_t *obj, const char *where, sc_descriptor *ret, sconify_error_t *err)
{
	if (!json_is_object(obj))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is not an object", where);

	const char *mt = NULL, *digest = NULL;
	uint64_t size = 0;
	if (sc_json_get_string(obj, "mediaType", false, where, &mt, err) < 0 ||
	    sc_json_get_string(obj, "digest", false, where, &digest, err) < 0 ||
	    sc_json_get_uint(obj, "size", where, &size, err) < 0)
		return -1;
	if (!sc_media_type_valid(mt)) {
		cleanup_free char *q = sc_quote(mt, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: invalid media type `%s'", where, q);
	}
	sc_descriptor d = {0};
	if (sc_digest_parse(digest, &d.digest, err) < 0)
		return sc_error_wrap(err, "%s", where);

	json_t *annotations;
	if (sc_json_get_object(obj, "annotations", true, where, &annotations, err) < 0)
		return -1;
	const char *key;
	json_t *v;
	json_object_foreach (annotations, key, v) {
		if (!json_is_string(v)) {
			cleanup_free char *q = sc_quote(key, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: annotation `%s' is not a string",
			                where, q);
		}
	}

	json_t *platform;
	if (sc_json_get_object(obj, "platform", true, where, &platform, err) < 0)
		return -1;
	if (platform) {
		d.platform = xzalloc(sizeof(*d.platform));
		if (sc_platform_from_json(platform, where, d.platform, err) < 0) {
			free(d.platform);
			return -1;
		}
	}
	d.media_type = xstrdup(mt);
	d.size = size;
	d.json = json_incref(obj);
	*ret = d;
	return 0;
}

void sc_descriptor_clear(sc_descriptor *d)
{
	free(d->media_type);
	if (d->platform) {
		sc_platform_clear(d->platform);
		free(d->platform);
	}
	json_decref(d->json);
	memset(d, 0, sizeof(*d));
}

void sc_descriptor_copy(sc_descriptor *dst, const sc_descriptor *src)
{
	*dst = *src;
	dst->media_type = xstrdup(src->media_type);
	if (src->platform) {
		dst->platform = xzalloc(sizeof(*dst->platform));
		sc_platform_copy(dst->platform, src->platform);
	}
	dst->json = src->json ? json_incref(src->json) : NULL;
}

json_t *sc_descriptor_json_new(const char *media_type, const sc_digest *digest, uint64_t size)
{
	json_t *o = json_object();
	json_object_set_new(o, "mediaType", json_string(media_type));
	json_object_set_new(o, "digest", json_string(digest->str));
	json_object_set_new(o, "size", json_integer((json_int_t)size));
	return o;
}

json_t *sc_descriptor_to_json(const sc_descriptor *d)
{
	if (d->json == NULL)
		return sc_descriptor_json_new(d->media_type, &d->digest, d->size);
	json_t *o = json_deep_copy(d->json);
	json_object_set_new(o, "mediaType", json_string(d->media_type));
	json_object_set_new(o, "digest", json_string(d->digest.str));
	json_object_set_new(o, "size", json_integer((json_int_t)d->size));
	return o;
}

const char *sc_descriptor_annotation(const sc_descriptor *d, const char *key)
{
	json_t *a = d->json ? json_object_get(d->json, "annotations") : NULL;
	return a ? json_string_value(json_object_get(a, key)) : NULL;
}

/* ---- documents ---- */

void sc_document_free(sc_document *d)
{
	if (d == NULL)
		return;
	free(d->data);
	json_decref(d->root);
	sc_descriptor_clear(&d->config);
	for (size_t i = 0; i < d->n_layers; i++)
		sc_descriptor_clear(&d->layers[i]);
	free(d->layers);
	for (size_t i = 0; i < d->n_manifests; i++)
		sc_descriptor_clear(&d->manifests[i]);
	free(d->manifests);
	free(d);
}

const char *sc_document_media_type(const sc_document *d)
{
	return sc_doc_kind_media_type(d->kind);
}

const char *sc_document_noun(const sc_document *d)
{
	return sc_doc_kind_is_index(d->kind) ? "index" : "manifest";
}

static int parse_descriptors(json_t *arr, const char *noun, const char *what, const sconify_limits_t *limits,
                             sc_descriptor **ret, size_t *ret_n, sconify_error_t *err)
{
	size_t n = json_array_size(arr);
	if (n > limits->max_descriptors)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s has too many %s (%zu, the limit is %llu)",
		                what, noun, n, (unsigned long long)limits->max_descriptors);
	sc_descriptor *list = xcalloc(n, sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *where = xasprintf("%s: %s %zu", what, noun, i);
		if (sc_descriptor_parse(json_array_get(arr, i), where, &list[i], err) < 0) {
			for (size_t j = 0; j < i; j++)
				sc_descriptor_clear(&list[j]);
			free(list);
			return -1;
		}
	}
	*ret = list;
	*ret_n = n;
	return 0;
}

static int decide_kind(json_t *root, const char *declared_mt, const char *what, sc_doc_kind *ret,
                       sconify_error_t *err)
{
	const char *body_mt = NULL;
	if (sc_json_get_string(root, "mediaType", true, what, &body_mt, err) < 0)
		return -1;

	if (body_mt && declared_mt && strcmp(body_mt, declared_mt) != 0) {
		cleanup_free char *qb = sc_quote(body_mt, SC_QUOTE_MAX);
		cleanup_free char *qd = sc_quote(declared_mt, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "%s: media type `%s' in the document contradicts `%s' declared for it", what,
		                qb, qd);
	}
	const char *mt = body_mt ? body_mt : declared_mt;
	if (mt) {
		sc_doc_kind k = sc_doc_kind_of(mt);
		if (k == SC_DOC_UNKNOWN) {
			cleanup_free char *q = sc_quote(mt, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
			                "%s: unsupported media type `%s' (not an image manifest or index)",
			                what, q);
		}
		/* Docker's schema requires the field; only OCI may omit it. */
		if (body_mt == NULL && (k == SC_DOC_DOCKER_MANIFEST || k == SC_DOC_DOCKER_LIST))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: declared as %s but the document has no media type", what, mt);
		*ret = k;
		return 0;
	}
	/* Neither says: the structure decides, and must not be both. */
	bool has_manifests = json_object_get(root, "manifests") != NULL;
	bool has_config = json_object_get(root, "config") != NULL;
	if (has_manifests == has_config)
		return sc_error(
		        err, SCONIFY_ERR_INVALID, 0,
		        "%s has no media type and its fields are ambiguous between a manifest and an index",
		        what);
	*ret = has_manifests ? SC_DOC_OCI_INDEX : SC_DOC_OCI_MANIFEST;
	return 0;
}

/* Cap, strict JSON, an object: the start of every document we parse. */
static int parse_object(const char *data, size_t len, const char *what, const sconify_limits_t *limits,
                        json_t **ret, sconify_error_t *err)
{
	if (len > limits->max_document_bytes)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s is larger than the limit of %llu bytes", what,
		                (unsigned long long)limits->max_document_bytes);
	cleanup_json json_t *root = NULL;
	if (sc_json_parse(data, len, what, &root, err) < 0)
		return -1;
	if (!json_is_object(root))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is not a JSON object", what);
	*ret = steal_pointer(&root);
	return 0;
}

int sc_document_parse(const char *data, size_t len, const char *declared_mt, const char *what,
                      const sconify_limits_t *limits, sc_document **ret, sconify_error_t *err)
{
	cleanup_json json_t *root = NULL;
	if (parse_object(data, len, what, limits, &root, err) < 0)
		return -1;

	json_t *sv = json_object_get(root, "schemaVersion");
	if (!json_is_integer(sv) || json_integer_value(sv) != 2)
		return sc_error(
		        err, SCONIFY_ERR_UNSUPPORTED, 0,
		        "%s: schemaVersion must be 2 (schema 1 and unversioned documents are not supported)",
		        what);

	sc_doc_kind kind = SC_DOC_UNKNOWN;
	if (decide_kind(root, declared_mt, what, &kind, err) < 0)
		return -1;

	cleanup_document sc_document *d = xzalloc(sizeof(*d));
	d->kind = kind;

	if (sc_doc_kind_is_manifest(kind)) {
		if (json_object_get(root, "manifests"))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s is ambiguous: a manifest with a `manifests' field", what);
		json_t *config, *layers;
		if (sc_json_get_object(root, "config", false, what, &config, err) < 0 ||
		    sc_json_get_array(root, "layers", false, what, &layers, err) < 0)
			return -1;
		cleanup_free char *where = xasprintf("%s: config", what);
		if (sc_descriptor_parse(config, where, &d->config, err) < 0 ||
		    parse_descriptors(layers, "layers", what, limits, &d->layers, &d->n_layers, err) < 0)
			return -1;
	} else {
		if (json_object_get(root, "layers") || json_object_get(root, "config"))
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s is ambiguous: an index with a `%s' field", what,
			                json_object_get(root, "layers") ? "layers" : "config");
		json_t *manifests;
		if (sc_json_get_array(root, "manifests", false, what, &manifests, err) < 0 ||
		    parse_descriptors(manifests, "manifests", what, limits, &d->manifests, &d->n_manifests,
		                      err) < 0)
			return -1;
		if (kind == SC_DOC_DOCKER_LIST)
			for (size_t i = 0; i < d->n_manifests; i++)
				if (sc_doc_kind_of(d->manifests[i].media_type) != SC_DOC_DOCKER_MANIFEST &&
				    sc_doc_kind_of(d->manifests[i].media_type) != SC_DOC_OCI_MANIFEST) {
					cleanup_free char *q =
					        sc_quote(d->manifests[i].media_type, SC_QUOTE_MAX);
					return sc_error(
					        err, SCONIFY_ERR_INVALID, 0,
					        "%s: entry %zu of a manifest list has media type `%s'", what,
					        i, q);
				}
	}

	d->data = xmalloc(len + 1);
	memcpy(d->data, data, len);
	d->data[len] = '\0';
	d->len = len;
	sc_digest_of(SC_SHA256, data, len, &d->digest);
	d->root = steal_pointer(&root);
	*ret = steal_pointer(&d);
	return 0;
}

/* ---- config ---- */

void sc_config_free(sc_image_config *c)
{
	if (c == NULL)
		return;
	free(c->data);
	json_decref(c->root);
	sc_platform_clear(&c->platform);
	free(c->diff_ids);
	free(c);
}

int sc_config_parse(const char *data, size_t len, const char *what, const sconify_limits_t *limits,
                    sc_image_config **ret, sconify_error_t *err)
{
	cleanup_json json_t *root = NULL;
	if (parse_object(data, len, what, limits, &root, err) < 0)
		return -1;

	cleanup_config sc_image_config *c = xzalloc(sizeof(*c));
	const char *os = NULL, *arch = NULL, *variant = NULL;
	if (sc_json_get_string(root, "os", true, what, &os, err) < 0 ||
	    sc_json_get_string(root, "architecture", true, what, &arch, err) < 0 ||
	    sc_json_get_string(root, "variant", true, what, &variant, err) < 0)
		return -1;
	c->platform.os = os ? xstrdup(os) : NULL;
	c->platform.arch = arch ? xstrdup(arch) : NULL;
	c->platform.variant = variant ? xstrdup(variant) : NULL;
	sc_platform_normalize(&c->platform);

	json_t *rootfs, *diff_ids;
	cleanup_free char *rootfs_what = xasprintf("%s: rootfs", what);
	if (sc_json_get_object(root, "rootfs", false, what, &rootfs, err) < 0 ||
	    sc_json_get_array(rootfs, "diff_ids", false, rootfs_what, &diff_ids, err) < 0)
		return -1;
	size_t n = json_array_size(diff_ids);
	if (n > limits->max_descriptors)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s has too many diff_ids (%zu)", what, n);
	c->diff_ids = xcalloc(n, sizeof(*c->diff_ids));
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(diff_ids, i));
		if (s == NULL)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: diff_id %zu is not a string", what,
			                i);
		if (sc_digest_parse(s, &c->diff_ids[i], err) < 0)
			return sc_error_wrap(err, "%s: diff_id %zu", what, i);
	}
	c->n_diff_ids = n;
	c->data = xmalloc(len + 1);
	memcpy(c->data, data, len);
	c->data[len] = '\0';
	c->len = len;
	c->root = steal_pointer(&root);
	*ret = steal_pointer(&c);
	return 0;
}
