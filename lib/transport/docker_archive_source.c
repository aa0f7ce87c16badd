/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading `docker save` archives. manifest.json is the only truth about where
 * things are (legacy <id>/layer.tar, containers/image's symlinks, moby 25's
 * blobs/sha256/, crane's .tar.gz): its paths are followed inside the archive,
 * never outside it. The archive has no manifest, so one is made from
 * manifest.json: Docker schema 2 (OCI when a layer is zstd, which schema 2
 * cannot express), layers described as stored.
 */
#include <string.h>

#include "core/json-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "files.h"
#include "image/mediatype.h"
#include "layer/compress.h"
#include "ref/reference.h"
#include "transport.h"

struct blob_loc {
	sc_digest digest;
	char *path;
};

struct docker_source {
	sc_source base;
	sc_files *files;
	char *manifest;
	size_t manifest_len;
	struct blob_loc *blobs;
	size_t n_blobs;
};

static int da_open_blob(sc_source *base, const sc_digest *d, uint64_t size, sc_reader **ret,
                        sconify_error_t *err)
{
	(void)size;
	struct docker_source *s = (struct docker_source *)base;
	for (size_t i = 0; i < s->n_blobs; i++)
		if (sc_digest_equal(&s->blobs[i].digest, d))
			return sc_files_open(s->files, s->blobs[i].path, ret, NULL, err);
	return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "blob %s not found in `%s'", d->str, base->ref->path);
}

static int da_get_top(sc_source *base, char **ret_data, size_t *ret_len, char **ret_mt, sconify_error_t *err)
{
	(void)err;
	struct docker_source *s = (struct docker_source *)base;
	*ret_data = xmemdup(s->manifest, s->manifest_len);
	*ret_len = s->manifest_len;
	*ret_mt = NULL; /* the body says */
	return 0;
}

static void da_free(sc_source *base)
{
	struct docker_source *s = (struct docker_source *)base;
	sc_files_free(s->files);
	free(s->manifest);
	for (size_t i = 0; i < s->n_blobs; i++)
		free(s->blobs[i].path);
	free(s->blobs);
	free(s);
}

static const struct sc_source_ops da_ops = {
        .get_top = da_get_top, .open_blob = da_open_blob, .free = da_free};

static void add_blob(struct docker_source *s, const sc_digest *d, const char *path)
{
	s->blobs = xreallocarray(s->blobs, s->n_blobs + 1, sizeof(*s->blobs));
	s->blobs[s->n_blobs].digest = *d;
	s->blobs[s->n_blobs].path = xstrdup(path);
	s->n_blobs++;
}

static bool tags_match(json_t *tags, const char *want)
{
	size_t i;
	json_t *t;
	json_array_foreach (tags, i, t) {
		cleanup_docker_ref sc_docker_ref *r = NULL;
		if (!json_is_string(t) || sc_docker_ref_parse(json_string_value(t), &r, NULL) < 0)
			continue;
		cleanup_free char *norm = sc_docker_ref_string(r);
		if (strcmp(norm, want) == 0)
			return true;
	}
	return false;
}

static int select_image(json_t *list, const sc_image_ref *ref, json_t **ret, sconify_error_t *err)
{
	size_t n = json_array_size(list);
	if (ref->index >= 0) {
		if ((size_t)ref->index >= n)
			return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0,
			                "manifest.json lists %zu images, no @%d", n, ref->index);
		*ret = json_array_get(list, (size_t)ref->index);
		return 0;
	}
	if (ref->ref == NULL) {
		if (n == 1) {
			*ret = json_array_get(list, 0);
			return 0;
		}
		return sc_error(err, n ? SCONIFY_ERR_INVALID : SCONIFY_ERR_NOT_FOUND, 0,
		                n ? "the archive holds more than one image: name one with :NAME:TAG or @N"
		                  : "manifest.json lists no image");
	}
	for (size_t i = 0; i < n; i++) {
		json_t *tags = json_object_get(json_array_get(list, i), "RepoTags");
		if (json_is_array(tags) && tags_match(tags, ref->ref)) {
			*ret = json_array_get(list, i);
			return 0;
		}
	}
	return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "no image tagged `%s' found in manifest.json",
	                ref->ref);
}

/* Digest and media type of one layer as stored. An uncompressed layer's digest
 * is its diff_id (checked when it is read); a compressed one is hashed here. */
static int describe_layer(struct docker_source *s, const char *path, const sc_digest *diff_id, bool *ret_zstd,
                          json_t **ret_desc, sconify_error_t *err)
{
	cleanup_reader sc_reader *raw = NULL;
	uint64_t size = 0;
	if (sc_files_open(s->files, path, &raw, &size, err) < 0)
		return -1;
	sc_compression comp;
	sc_reader *sniffed = NULL;
	if (sc_compression_sniff(steal_pointer(&raw), &comp, &sniffed, err) < 0)
		return -1;
	cleanup_reader sc_reader *r = sniffed;
	sc_digest d = *diff_id;
	if (comp != SC_COMP_NONE) {
		cleanup_reader sc_reader *h = sc_hash_reader_new(steal_pointer(&r), SC_SHA256);
		cleanup_writer sc_writer *sink = sc_null_writer_new();
		if (sc_stream_pump(h, sink, NULL, err) < 0)
			return -1;
		sc_hash_reader_result(h, &d, NULL);
	}
	*ret_zstd = comp == SC_COMP_ZSTD;
	add_blob(s, &d, path);
	/* The media type is settled once all layers are known (zstd forces OCI). */
	json_t *desc = sc_descriptor_json_new(sc_compression_name(comp), &d, size);
	*ret_desc = desc;
	return 0;
}

static int synthesize(struct docker_source *s, json_t *image, const sconify_limits_t *limits,
                      sconify_error_t *err)
{
	const char *config_path = NULL;
	json_t *layers = NULL;
	if (sc_json_get_string(image, "Config", false, "manifest.json", &config_path, err) < 0 ||
	    sc_json_get_array(image, "Layers", false, "manifest.json", &layers, err) < 0)
		return -1;

	cleanup_free char *config = NULL;
	size_t config_len = 0;
	cleanup_free char *qc = sc_quote(config_path, SC_QUOTE_MAX);
	cleanup_free char *config_what = xasprintf("config `%s'", qc);
	if (sc_files_read(s->files, config_path, (size_t)limits->max_document_bytes, config_what, &config,
	                  &config_len, err) < 0)
		return -1;
	cleanup_config sc_image_config *cfg = NULL;
	if (sc_config_parse(config, config_len, config_what, limits, &cfg, err) < 0)
		return -1;
	sc_digest config_digest;
	sc_digest_of(SC_SHA256, config, config_len, &config_digest);
	add_blob(s, &config_digest, config_path);

	size_t n = json_array_size(layers);
	if (n != cfg->n_diff_ids)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "manifest.json lists %zu layers but the config has %zu diff_ids", n,
		                cfg->n_diff_ids);
	cleanup_json json_t *descs = json_array();
	bool any_zstd = false;
	for (size_t i = 0; i < n; i++) {
		const char *path = json_string_value(json_array_get(layers, i));
		if (path == NULL)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "manifest.json: layer %zu is not a string", i);
		bool zstd = false;
		json_t *desc = NULL;
		if (describe_layer(s, path, &cfg->diff_ids[i], &zstd, &desc, err) < 0) {
			cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
			return sc_error_wrap(err, "layer `%s'", q);
		}
		any_zstd |= zstd;
		json_array_append_new(descs, desc);
	}

	/* Now the media types: the placeholder holds the compression name. */
	size_t i;
	json_t *desc;
	json_array_foreach (descs, i, desc) {
		const char *c = json_string_value(json_object_get(desc, "mediaType"));
		sc_compression comp = strcmp(c, "gzip") == 0   ? SC_COMP_GZIP
		                      : strcmp(c, "zstd") == 0 ? SC_COMP_ZSTD
		                                               : SC_COMP_NONE;
		json_object_set_new(desc, "mediaType",
		                    json_string(sc_layer_media_type(!any_zstd, comp, false)));
	}

	cleanup_json json_t *m = json_object();
	json_object_set_new(m, "schemaVersion", json_integer(2));
	json_object_set_new(m, "mediaType",
	                    json_string(any_zstd ? SC_MT_OCI_MANIFEST : SC_MT_DOCKER_MANIFEST));
	json_object_set_new(m, "config",
	                    sc_descriptor_json_new(any_zstd ? SC_MT_OCI_CONFIG : SC_MT_DOCKER_CONFIG,
	                                           &config_digest, config_len));
	json_object_set(m, "layers", descs);
	s->manifest = sc_json_dump(m, &s->manifest_len);

	json_t *tags = json_object_get(image, "RepoTags");
	if (json_is_array(tags) && json_array_size(tags) > 0) {
		size_t nt = json_array_size(tags);
		s->base.repo_tags = xcalloc(nt + 1, sizeof(char *));
		size_t k = 0;
		json_t *t;
		json_array_foreach (tags, i, t) {
			if (json_is_string(t))
				s->base.repo_tags[k++] = xstrdup(json_string_value(t));
		}
	}
	return 0;
}

static int load(struct docker_source *s, const sc_image_ref *ref, const sconify_limits_t *limits,
                sconify_error_t *err)
{
	if (sc_files_open_tar(ref->path, limits, &s->files, err) < 0)
		return -1;
	cleanup_free char *data = NULL;
	size_t len = 0;
	if (sc_files_read(s->files, "manifest.json", (size_t)limits->max_document_bytes, "manifest.json",
	                  &data, &len, err) < 0) {
		if (err && sconify_error_kind(*err) == SCONIFY_ERR_NOT_FOUND)
			sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
			         "the archive has no manifest.json (archives from before Docker 1.10 are not "
			         "supported)");
		return -1;
	}
	cleanup_json json_t *list = NULL;
	if (sc_json_parse(data, len, "manifest.json", &list, err) < 0)
		return -1;
	if (!json_is_array(list))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "manifest.json is not a JSON array");
	json_t *image = NULL;
	if (select_image(list, ref, &image, err) < 0)
		return -1;
	return synthesize(s, image, limits, err);
}

int sc_docker_archive_source_open(sc_image_ref *ref, const sconify_limits_t *limits, sc_source **ret,
                                  sconify_error_t *err)
{
	struct docker_source *s = xzalloc(sizeof(*s));
	s->base.ops = &da_ops;
	s->base.limits = *limits;
	if (load(s, ref, limits, err) < 0) {
		sc_strv_free(s->base.repo_tags);
		da_free(&s->base);
		return -1;
	}
	s->base.ref = ref;
	s->base.name = xstrdup(ref->text);
	*ret = &s->base;
	return 0;
}
