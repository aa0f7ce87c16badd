/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sconify inspect: the exact manifest or config bytes, or a JSON summary of
 * the selected image with skopeo inspect's field names, so scripts written
 * for one read the other.
 */
#include <string.h>

#include "copy.h"
#include "core/json-util.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "image/mediatype.h"

static json_t *config_field(const sc_image_config *cfg, const char *key)
{
	json_t *inner = json_object_get(cfg->root, "config");
	json_t *v = json_object_get(inner, key);
	return v ? json_incref(v) : json_null();
}

static json_t *summary(const sc_source *src, const sc_document *top, const sc_document *m,
                       const sc_image_config *cfg)
{
	json_t *o = json_object();
	if (src->repo_tags && src->repo_tags[0])
		json_object_set_new(o, "Name", json_string(src->repo_tags[0]));
	json_object_set_new(o, "Digest", json_string(m->digest.str));
	json_object_set_new(o, "MediaType", json_string(sc_document_media_type(m)));
	if (top != m && sc_doc_kind_is_index(top->kind)) {
		json_object_set_new(o, "IndexDigest", json_string(top->digest.str));
		json_t *platforms = json_array();
		for (size_t i = 0; i < top->n_manifests; i++)
			if (top->manifests[i].platform) {
				char *p = sc_platform_string(top->manifests[i].platform);
				json_array_append_new(platforms, json_string(p));
				free(p);
			}
		json_object_set_new(o, "Platforms", platforms);
	}
	json_t *tags = json_array();
	for (char **t = src->repo_tags; t && *t; t++)
		json_array_append_new(tags, json_string(*t));
	json_object_set_new(o, "RepoTags", tags);
	if (cfg) {
		json_t *created = json_object_get(cfg->root, "created");
		json_object_set_new(o, "Created", created ? json_incref(created) : json_null());
		json_t *dv = json_object_get(cfg->root, "docker_version");
		json_object_set_new(o, "DockerVersion", dv ? json_incref(dv) : json_string(""));
		json_object_set_new(o, "Labels", config_field(cfg, "Labels"));
		json_object_set_new(o, "Architecture",
		                    json_string(cfg->platform.arch ? cfg->platform.arch : ""));
		if (cfg->platform.variant)
			json_object_set_new(o, "Variant", json_string(cfg->platform.variant));
		json_object_set_new(o, "Os", json_string(cfg->platform.os ? cfg->platform.os : ""));
	}
	json_t *layers = json_array(), *data = json_array();
	for (size_t i = 0; i < m->n_layers; i++) {
		const sc_descriptor *l = &m->layers[i];
		json_array_append_new(layers, json_string(l->digest.str));
		json_t *ld = json_object();
		json_object_set_new(ld, "MIMEType", json_string(l->media_type));
		json_object_set_new(ld, "Digest", json_string(l->digest.str));
		json_object_set_new(ld, "Size", json_integer((json_int_t)l->size));
		json_t *ann = json_object_get(l->json, "annotations");
		json_object_set_new(ld, "Annotations", ann ? json_incref(ann) : json_null());
		json_array_append_new(data, ld);
	}
	json_object_set_new(o, "Layers", layers);
	json_object_set_new(o, "LayersData", data);
	if (cfg) {
		json_object_set_new(o, "Env", config_field(cfg, "Env"));
		json_t *diff_ids = json_array();
		for (size_t i = 0; i < cfg->n_diff_ids; i++)
			json_array_append_new(diff_ids, json_string(cfg->diff_ids[i].str));
		json_object_set_new(o, "DiffIDs", diff_ids);
	}
	return o;
}

int sconify_inspect(const char *ref, const sconify_inspect_options_t *opts, char **ret_out, size_t *ret_len,
                    sconify_error_t *err)
{
	sconify_inspect_options_t defaults = {0};
	if (opts == NULL)
		opts = &defaults;
	sconify_limits_t limits = opts->limits;
	sc_limits_fill(&limits);

	cleanup_source sc_source *src = NULL;
	cleanup_document sc_document *top = NULL;
	sc_transport_options so = {.limits = limits,
	                           .registry = &opts->registry,
	                           .retries = opts->retries,
	                           .debug = opts->debug,
	                           .debug_userdata = opts->debug_userdata};
	if (sc_source_open(ref, &so, &src, err) < 0 || sc_source_top(src, &top, err) < 0)
		return -1;
	if (opts->mode == SCONIFY_INSPECT_RAW) {
		*ret_out = xmemdup(top->data, top->len);
		*ret_len = top->len;
		return 0;
	}

	sc_platform want = {0};
	if (sc_platform_option(opts->platform, &want, err) < 0)
		return -1;
	cleanup_document sc_document *image = NULL;
	int r = sc_select_platform(src, top, &want, &image, err);
	sc_platform_clear(&want);
	if (r < 0)
		return -1;

	cleanup_config sc_image_config *cfg = NULL;
	if (opts->mode == SCONIFY_INSPECT_CONFIG || sc_media_type_is_image_config(image->config.media_type))
		if (sc_source_config(src, &image->config, &cfg, err) < 0)
			return -1;
	if (opts->mode == SCONIFY_INSPECT_CONFIG) {
		*ret_out = xmemdup(cfg->data, cfg->len);
		*ret_len = cfg->len;
		return 0;
	}
	cleanup_json json_t *o = summary(src, top, image, cfg);
	char *s = json_dumps(o, JSON_INDENT(4));
	if (s == NULL)
		abort();
	size_t n = strlen(s);
	char *out = xrealloc(s, n + 2);
	out[n] = '\n';
	out[n + 1] = '\0';
	*ret_out = out;
	*ret_len = n + 1;
	return 0;
}
