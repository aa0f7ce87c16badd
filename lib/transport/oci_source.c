/* SPDX-License-Identifier: Apache-2.0 */
/* Reading an OCI image layout (image-spec image-layout.md) from a directory
 * (oci:) or a tar archive (oci-archive:). */
#include <string.h>

#include "core/json-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "files.h"
#include "image/mediatype.h"
#include "transport.h"

struct oci_source {
	sc_source base;
	sc_files *files;
	sc_descriptor top;
};

static int oci_open_blob(sc_source *base, const sc_digest *d, uint64_t size, sc_reader **ret,
                         sconify_error_t *err)
{
	(void)size;
	struct oci_source *s = (struct oci_source *)base;
	cleanup_free char *rel = sc_blob_path(d);
	return sc_files_open(s->files, rel, ret, NULL, err);
}

static int oci_get_top(sc_source *base, char **ret_data, size_t *ret_len, char **ret_mt, sconify_error_t *err)
{
	struct oci_source *s = (struct oci_source *)base;
	if (s->top.size > s->base.limits.max_document_bytes)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0,
		                "document %s is larger than the limit of %llu bytes", s->top.digest.str,
		                (unsigned long long)s->base.limits.max_document_bytes);
	cleanup_reader sc_reader *r = NULL;
	if (sc_source_blob(base, &s->top, &r, err) < 0)
		return -1;
	cleanup_free char *what = xasprintf("document %s", s->top.digest.str);
	if (sc_reader_read_all(r, (size_t)s->base.limits.max_document_bytes, what, ret_data, ret_len, err) <
	    0)
		return -1;
	*ret_mt = xstrdup(s->top.media_type);
	return 0;
}

static void oci_free(sc_source *base)
{
	struct oci_source *s = (struct oci_source *)base;
	sc_files_free(s->files);
	sc_descriptor_clear(&s->top);
	free(s);
}

static const struct sc_source_ops oci_ops = {
        .get_top = oci_get_top, .open_blob = oci_open_blob, .free = oci_free};

int sc_oci_layout_check(const char *data, size_t len, const char *where, sconify_error_t *err)
{
	cleanup_json json_t *j = NULL;
	cleanup_free char *what = xasprintf("oci-layout of `%s'", where);
	if (sc_json_parse(data, len, what, &j, err) < 0)
		return -1;
	const char *v = NULL;
	if (sc_json_get_string(j, "imageLayoutVersion", false, what, &v, err) < 0)
		return -1;
	if (strcmp(v, "1.0.0") != 0) {
		cleanup_free char *q = sc_quote(v, 32);
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0, "%s: unsupported imageLayoutVersion `%s'",
		                what, q);
	}
	return 0;
}

static int select_top(const sc_document *index, const sc_image_ref *ref, const char *where,
                      const sc_descriptor **ret, sconify_error_t *err)
{
	if (ref->index >= 0) {
		if ((size_t)ref->index >= index->n_manifests)
			return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "`%s' has %zu images, no @%d", where,
			                index->n_manifests, ref->index);
		*ret = &index->manifests[ref->index];
		return 0;
	}
	if (ref->ref == NULL) {
		if (index->n_manifests == 1) {
			*ret = &index->manifests[0];
			return 0;
		}
		return sc_error(err, index->n_manifests ? SCONIFY_ERR_INVALID : SCONIFY_ERR_NOT_FOUND, 0,
		                index->n_manifests
		                        ? "`%s' holds more than one image: name one with :REF or @N"
		                        : "`%s' holds no image",
		                where);
	}
	const sc_descriptor *found = NULL;
	for (size_t i = 0; i < index->n_manifests; i++) {
		const char *name = sc_descriptor_annotation(&index->manifests[i], SC_ANNOTATION_REF_NAME);
		if (name == NULL || strcmp(name, ref->ref) != 0)
			continue;
		if (found)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "`%s' names two images `%s'", where,
			                ref->ref);
		found = &index->manifests[i];
	}
	if (found == NULL)
		return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "image `%s' not found in `%s'", ref->ref,
		                where);
	*ret = found;
	return 0;
}

int sc_oci_source_open(sc_image_ref *ref, const sconify_limits_t *limits, sc_source **ret,
                       sconify_error_t *err)
{
	cleanup_files sc_files *files = NULL;
	int r = ref->kind == SC_TRANSPORT_OCI ? sc_files_open_dir(ref->path, &files, err)
	                                      : sc_files_open_tar(ref->path, limits, &files, err);
	if (r < 0)
		return -1;

	cleanup_free char *layout = NULL, *index_data = NULL;
	size_t layout_len = 0, index_len = 0;
	if (sc_files_read(files, "oci-layout", 4096, "oci-layout", &layout, &layout_len, err) < 0) {
		if (err && sconify_error_kind(*err) == SCONIFY_ERR_NOT_FOUND)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "`%s' is not an OCI image layout: its oci-layout file is missing",
			                ref->path);
		return -1;
	}
	if (sc_oci_layout_check(layout, layout_len, ref->path, err) < 0)
		return -1;
	if (sc_files_read(files, "index.json", (size_t)limits->max_document_bytes, "index.json", &index_data,
	                  &index_len, err) < 0)
		return -1;
	cleanup_free char *what = xasprintf("index.json of `%s'", ref->path);
	cleanup_document sc_document *index = NULL;
	if (sc_document_parse(index_data, index_len, SC_MT_OCI_INDEX, what, limits, &index, err) < 0)
		return -1;

	const sc_descriptor *top = NULL;
	if (select_top(index, ref, ref->path, &top, err) < 0)
		return -1;

	struct oci_source *s = xzalloc(sizeof(*s));
	s->base.ops = &oci_ops;
	s->base.ref = ref;
	s->base.limits = *limits;
	s->base.name = xstrdup(ref->text);
	s->files = steal_pointer(&files);
	sc_descriptor_copy(&s->top, top);
	*ret = &s->base;
	return 0;
}
