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
        {"docker://", SC_TRANSPORT_DOCKER},
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
	case SC_TRANSPORT_DOCKER:
		return "docker";
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

static int parse_docker(const char *text, const char *rest, sc_image_ref **ret, sconify_error_t *err)
{
	cleanup_docker_ref sc_docker_ref *dr = NULL;
	if (sc_docker_ref_parse(rest, &dr, err) < 0) {
		cleanup_free char *q = sc_quote(text, SC_QUOTE_MAX);
		return sc_error_wrap(err, "`%s'", q);
	}
	sc_image_ref *r = xzalloc(sizeof(*r));
	r->kind = SC_TRANSPORT_DOCKER;
	r->text = xstrdup(text);
	r->index = -1;
	r->domain = xstrdup(dr->domain);
	r->repository = xstrdup(dr->path);
	r->tag = dr->tag ? xstrdup(dr->tag) : NULL;
	r->digest = dr->digest ? xstrdup(dr->digest) : NULL;
	*ret = r;
	return 0;
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
		/* skopeo's other transports: say so instead of reading them as a
		 * docker reference. */
		static const char *const others[] = {
		        "dir:", "containers-storage:", "docker-daemon:", "ostree:", "sif:", "tarball:"};
		for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
			if (sc_startswith(s, others[i]))
				return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
				                "`%s': the %.*s transport is not supported (docker://, oci:, "
				                "oci-archive: and "
				                "docker-archive: are)",
				                q, (int)strlen(others[i]) - 1, others[i]);
		/* Anything else is a bare docker reference ("host/repo:tag"). */
		rest = s;
		kind = SC_TRANSPORT_DOCKER;
	}
	if (kind == SC_TRANSPORT_DOCKER)
		return parse_docker(s, rest, ret, err);

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
	free(r->domain);
	free(r->repository);
	free(r->tag);
	free(r->digest);
	free(r);
}

char *sc_blob_path(const sc_digest *d)
{
	return xasprintf("blobs/%s/%s", sc_digest_alg_name(d->alg), sc_digest_hex(d));
}

/* ---- sources ---- */

int sc_source_open(const char *text, const sc_transport_options *o, sc_source **ret, sconify_error_t *err)
{
	sc_image_ref *ref = NULL;
	if (sc_image_ref_parse(text, &ref, err) < 0)
		return -1;
	sc_transport_options filled = *o;
	sc_limits_fill(&filled.limits);
	int r;
	switch (ref->kind) {
	case SC_TRANSPORT_DOCKER_ARCHIVE:
		r = sc_docker_archive_source_open(ref, &filled.limits, ret, err);
		break;
	case SC_TRANSPORT_DOCKER:
		r = sc_docker_source_open(ref, &filled, ret, err);
		break;
	default:
		r = sc_oci_source_open(ref, &filled.limits, ret, err);
		break;
	}
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
	if (s->ops->get_document) {
		if (desc->size > s->limits.max_document_bytes)
			return sc_error(err, SCONIFY_ERR_LIMIT, 0,
			                "document %s is larger than the limit of %llu bytes",
			                desc->digest.str, (unsigned long long)s->limits.max_document_bytes);
		if (s->ops->get_document(s, desc, &data, &len, err) < 0)
			return -1;
		/* The checks the verified reader makes for blobs. */
		sc_digest got;
		sc_digest_of(desc->digest.alg, data, len, &got);
		if (len != desc->size)
			return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
			                "document %s: size mismatch: %zu bytes, its descriptor declares %llu",
			                desc->digest.str, len, (unsigned long long)desc->size);
		if (!sc_digest_equal(&got, &desc->digest))
			return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
			                "document %s: digest mismatch: content hashes to %s",
			                desc->digest.str, got.str);
	} else if (read_blob(s, desc, "document", &data, &len, err) < 0) {
		return -1;
	}
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

int sc_dest_open(const char *text, const sc_transport_options *o, sc_dest **ret, sconify_error_t *err)
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
	int r = ref->kind == SC_TRANSPORT_OCI      ? sc_oci_dir_dest_open(ref, ret, err)
	        : ref->kind == SC_TRANSPORT_DOCKER ? sc_docker_dest_open(ref, o, ret, err)
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
