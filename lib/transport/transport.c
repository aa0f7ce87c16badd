/* SPDX-License-Identifier: Apache-2.0 */
#include "transport.h"

#include <ctype.h>
#include <string.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "ref/reference.h"

static const struct {
	const char *prefix;
	sc_transport_kind kind;
} transports[] = {
        {"oci:", SC_TRANSPORT_OCI},
        {"oci-archive:", SC_TRANSPORT_OCI_ARCHIVE},
        {"docker-archive:", SC_TRANSPORT_DOCKER_ARCHIVE},
};

const char *sc_transport_name(sc_transport_kind k)
{
	switch (k) {
	case SC_TRANSPORT_OCI:
		return "oci";
	case SC_TRANSPORT_OCI_ARCHIVE:
		return "oci-archive";
	case SC_TRANSPORT_DOCKER_ARCHIVE:
		return "docker-archive";
	}
	return "?";
}

/* image-layout's ref grammar: component ("/" component)*, component =
 * alphanum (separator alphanum)*, separator = [-._:@+] | "--". */
static bool oci_ref_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	bool prev_alnum = false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (isalnum((unsigned char)c)) {
			prev_alnum = true;
			continue;
		}
		if (!prev_alnum)
			return false;
		if (c == '-' && s[i + 1] == '-')
			i++;
		else if (c != '/' && strchr("-._:@+", c) == NULL)
			return false;
		prev_alnum = false;
	}
	return prev_alnum;
}

static bool parse_index(const char *s, int *ret)
{
	if (s[0] != '@')
		return false;
	unsigned long long v;
	if (!sc_parse_u64(s + 1, &v) || v > 100000)
		return false;
	*ret = (int)v;
	return true;
}

int sc_image_ref_parse(const char *s, sc_image_ref **ret, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(s, SC_QUOTE_MAX);
	const char *rest = NULL;
	sc_transport_kind kind = SC_TRANSPORT_OCI;
	for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++)
		if (sc_startswith(s, transports[i].prefix)) {
			rest = s + strlen(transports[i].prefix);
			kind = transports[i].kind;
			break;
		}
	if (rest == NULL) {
		if (sc_startswith(s, "docker://") || strchr(s, ':') == NULL || strchr(s, '/') != NULL)
			return sc_error(
			        err, SCONIFY_ERR_UNSUPPORTED, 0,
			        "`%s': registry references (docker://) are not supported yet; use oci:, "
			        "oci-archive: or docker-archive:",
			        q);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "`%s': unknown transport (oci:, oci-archive: and docker-archive: are known)",
		                q);
	}

	/* Like skopeo: the path ends at the first ':'; what follows names the image. */
	const char *colon = strchr(rest, ':');
	cleanup_free char *path = colon ? xstrndup(rest, (size_t)(colon - rest)) : xstrdup(rest);
	const char *name = colon ? colon + 1 : NULL;
	if (*path == '\0')
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "`%s': no path given", q);

	sc_image_ref *r = xzalloc(sizeof(*r));
	r->kind = kind;
	r->text = xstrdup(s);
	r->path = steal_pointer(&path);
	r->index = -1;

	if (name != NULL && !parse_index(name, &r->index)) {
		if (kind == SC_TRANSPORT_DOCKER_ARCHIVE) {
			cleanup_docker_ref sc_docker_ref *dr = NULL;
			if (sc_docker_ref_parse(name, &dr, err) < 0) {
				sc_image_ref_free(r);
				return sc_error_wrap(err, "`%s'", q);
			}
			if (dr->digest) {
				sc_image_ref_free(r);
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "`%s': docker-archive references take a tag, not a digest",
				                q);
			}
			r->ref = sc_docker_ref_string(dr);
		} else {
			if (!oci_ref_valid(name)) {
				sc_image_ref_free(r);
				cleanup_free char *qn = sc_quote(name, SC_QUOTE_MAX);
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "`%s': invalid image name `%s' (letters, digits and -._:@+/ "
				                "separators)",
				                q, qn);
			}
			r->ref = xstrdup(name);
		}
	}
	*ret = r;
	return 0;
}

void sc_image_ref_free(sc_image_ref *r)
{
	if (r == NULL)
		return;
	free(r->text);
	free(r->path);
	free(r->ref);
	free(r);
}

char *sc_blob_path(const sc_digest *d)
{
	return xasprintf("blobs/%s/%s", sc_digest_alg_name(d->alg), sc_digest_hex(d));
}

/* ---- sources ---- */

int sc_source_open(const char *text, const sconify_limits_t *limits, sc_source **ret, sconify_error_t *err)
{
	sc_image_ref *ref = NULL;
	if (sc_image_ref_parse(text, &ref, err) < 0)
		return -1;
	sconify_limits_t l = *limits;
	sc_limits_fill(&l);
	int r = ref->kind == SC_TRANSPORT_DOCKER_ARCHIVE ? sc_docker_archive_source_open(ref, &l, ret, err)
	                                                 : sc_oci_source_open(ref, &l, ret, err);
	if (r < 0) {
		cleanup_free char *q = sc_quote(text, SC_QUOTE_MAX);
		sc_image_ref_free(ref);
		return sc_error_wrap(err, "reading `%s'", q);
	}
	return 0;
}

void sc_source_free(sc_source *s)
{
	if (s == NULL)
		return;
	sc_image_ref_free(s->ref);
	free(s->name);
	sc_strv_free(s->repo_tags);
	s->ops->free(s);
}

int sc_source_top(sc_source *s, sc_document **ret, sconify_error_t *err)
{
	cleanup_free char *data = NULL, *mt = NULL;
	size_t len = 0;
	if (s->ops->get_top(s, &data, &len, &mt, err) < 0)
		return -1;
	sc_digest d;
	sc_digest_of(SC_SHA256, data, len, &d);
	cleanup_free char *what = xasprintf("document %s", d.str);
	return sc_document_parse(data, len, mt, what, &s->limits, ret, err);
}

int sc_source_blob(sc_source *s, const sc_descriptor *desc, sc_reader **ret, sconify_error_t *err)
{
	sc_reader *raw = NULL;
	if (s->ops->open_blob(s, &desc->digest, desc->size, &raw, err) < 0)
		return sc_error_wrap(err, "blob %s", desc->digest.str);
	cleanup_free char *what = xasprintf("blob %s", desc->digest.str);
	*ret = sc_verified_reader_new(raw, &desc->digest, desc->size, what);
	return 0;
}

static int read_blob(sc_source *s, const sc_descriptor *desc, const char *noun, char **ret_data,
                     size_t *ret_len, sconify_error_t *err)
{
	if (desc->size > s->limits.max_document_bytes)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s %s is larger than the limit of %llu bytes",
		                noun, desc->digest.str, (unsigned long long)s->limits.max_document_bytes);
	cleanup_reader sc_reader *r = NULL;
	if (sc_source_blob(s, desc, &r, err) < 0)
		return -1;
	cleanup_free char *what = xasprintf("%s %s", noun, desc->digest.str);
	return sc_reader_read_all(r, (size_t)s->limits.max_document_bytes, what, ret_data, ret_len, err);
}

int sc_source_document(sc_source *s, const sc_descriptor *desc, sc_document **ret, sconify_error_t *err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	if (read_blob(s, desc, "document", &data, &len, err) < 0)
		return -1;
	cleanup_free char *what = xasprintf(
	        "%s %s", sc_doc_kind_is_index(sc_doc_kind_of(desc->media_type)) ? "index" : "manifest",
	        desc->digest.str);
	return sc_document_parse(data, len, desc->media_type, what, &s->limits, ret, err);
}

int sc_source_config(sc_source *s, const sc_descriptor *desc, sc_image_config **ret, sconify_error_t *err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	if (read_blob(s, desc, "config", &data, &len, err) < 0)
		return -1;
	cleanup_free char *what = xasprintf("config %s", desc->digest.str);
	return sc_config_parse(data, len, what, &s->limits, ret, err);
}

/* ---- destinations ---- */

int sc_dest_open(const char *text, sc_dest **ret, sconify_error_t *err)
{
	sc_image_ref *ref = NULL;
	if (sc_image_ref_parse(text, &ref, err) < 0)
		return -1;
	cleanup_free char *q = sc_quote(text, SC_QUOTE_MAX);
	if (ref->index >= 0) {
		sc_image_ref_free(ref);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "`%s': @N selects an image to read, not a destination", q);
	}
	int r = ref->kind == SC_TRANSPORT_OCI ? sc_oci_dir_dest_open(ref, ret, err)
	                                      : sc_archive_dest_open(ref, ret, err);
	if (r < 0) {
		sc_image_ref_free(ref);
		return sc_error_wrap(err, "writing `%s'", q);
	}
	return 0;
}

void sc_dest_free(sc_dest *d)
{
	if (d == NULL)
		return;
	sc_image_ref_free(d->ref);
	free(d->name);
	d->ops->free(d);
}

int sc_dest_put_bytes(sc_dest *d, const char *data, size_t len, const sc_digest *digest, sconify_error_t *err)
{
	bool have = false;
	if (d->ops->has_blob(d, digest, &have, err) < 0)
		return -1;
	if (have)
		return 0;
	sc_blob_upload *u = NULL;
	sc_writer *w = NULL;
	if (d->ops->blob_begin(d, digest, len, &u, &w, err) < 0)
		return -1;
	if (sc_writer_write(w, data, len, err) < 0 || sc_writer_finish(w, err) < 0) {
		d->ops->blob_abort(d, u);
		return -1;
	}
	return d->ops->blob_commit(d, u, digest, len, err);
}
