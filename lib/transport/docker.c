/* SPDX-License-Identifier: Apache-2.0 */
/*
 * docker://: images in a registry. The destination pushes every document by
 * digest as it comes (blobs, then configs, then manifests, then indexes) and
 * moves the tag only in commit(), with the exact bytes pushed: a run that
 * fails anywhere leaves the tag where it was.
 */
#include <string.h>

#include "core/limits.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "registry/registry.h"
#include "transport.h"

int sc_docker_registry_open(const sc_image_ref *ref, const sc_transport_options *o, sc_registry **ret,
                            sconify_error_t *err)
{
	static const sconify_registry_options_t none = {0};
	const sconify_registry_options_t *ro = o->registry ? o->registry : &none;
	sc_registry_options opts = {
	        .tls_verify = !ro->no_tls_verify,
	        .cert_dir = ro->cert_dir,
	        .creds = {.creds = ro->creds, .authfile = ro->authfile},
	        .limits = o->limits,
	        .retries = o->retries,
	        .debug = o->debug,
	        .debug_userdata = o->debug_userdata,
	};
	sc_limits_fill(&opts.limits);
	return sc_registry_open(ref->domain, ref->repository, &opts, ret, err);
}

/* ---- source ---- */

struct docker_source {
	sc_source base;
	sc_registry *r;
};

static int ds_get_top(sc_source *base, char **ret_data, size_t *ret_len, char **ret_mt, sconify_error_t *err)
{
	struct docker_source *s = (struct docker_source *)base;
	const sc_image_ref *ref = s->base.ref;
	sc_digest d;
	return sc_registry_get_manifest(s->r, ref->repository, ref->digest ? ref->digest : ref->tag, ret_data,
	                                ret_len, ret_mt, &d, err);
}

static int ds_open_blob(sc_source *base, const sc_digest *d, uint64_t size, sc_reader **ret,
                        sconify_error_t *err)
{
	struct docker_source *s = (struct docker_source *)base;
	return sc_registry_open_blob(s->r, s->base.ref->repository, d, size, ret, err);
}

static void ds_free(sc_source *base)
{
	struct docker_source *s = (struct docker_source *)base;
	sc_registry_free(s->r);
	free(s);
}

static int ds_get_document(sc_source *base, const sc_descriptor *desc, char **ret_data, size_t *ret_len,
                           sconify_error_t *err)
{
	struct docker_source *s = (struct docker_source *)base;
	cleanup_free char *mt = NULL;
	sc_digest d;
	return sc_registry_get_manifest(s->r, s->base.ref->repository, desc->digest.str, ret_data, ret_len,
	                                &mt, &d, err);
}

static const struct sc_source_ops ds_ops = {
        .get_top = ds_get_top,
        .open_blob = ds_open_blob,
        .get_document = ds_get_document,
        .free = ds_free,
};

int sc_docker_source_open(sc_image_ref *ref, const sc_transport_options *o, sc_source **ret,
                          sconify_error_t *err)
{
	struct docker_source *s = xzalloc(sizeof(*s));
	s->base.ops = &ds_ops;
	s->base.limits = o->limits;
	if (sc_docker_registry_open(ref, o, &s->r, err) < 0) {
		free(s);
		return -1;
	}
	s->base.ref = ref;
	s->base.name = xstrdup(ref->text);
	*ret = &s->base;
	return 0;
}

/* ---- destination ---- */

struct pushed {
	sc_digest digest;
	char *media_type;
	char *data;
	size_t len;
};

struct docker_dest {
	sc_dest base;
	sc_registry *r;
	struct pushed *docs; /* documents pushed by digest, for the tag at commit */
	size_t n_docs;
};

struct sc_blob_upload {
	sc_registry_upload *u;
};

static int dd_has_blob(sc_dest *base, const sc_digest *digest, bool *ret, sconify_error_t *err)
{
	struct docker_dest *d = (struct docker_dest *)base;
	return sc_registry_blob_exists(d->r, d->base.ref->repository, digest, ret, err);
}

static int dd_blob_begin(sc_dest *base, const sc_digest *known, uint64_t known_size,
                         sc_blob_upload **ret_upload, sc_writer **ret_writer, sconify_error_t *err)
{
	struct docker_dest *d = (struct docker_dest *)base;
	sc_blob_upload *u = xzalloc(sizeof(*u));
	if (sc_registry_upload_begin(d->r, d->base.ref->repository, known ? (int64_t)known_size : -1, &u->u,
	                             ret_writer, err) < 0) {
		free(u);
		return -1;
	}
	*ret_upload = u;
	return 0;
}

static int dd_blob_commit(sc_dest *base, sc_blob_upload *u, const sc_digest *digest, uint64_t size,
                          sconify_error_t *err)
{
	(void)base;
	int r = sc_registry_upload_commit(u->u, digest, size, err);
	sc_registry_upload_free(u->u);
	free(u);
	return r;
}

static void dd_blob_abort(sc_dest *base, sc_blob_upload *u)
{
	(void)base;
	/* The registry forgets an upload session nobody finishes. */
	sc_registry_upload_free(u->u);
	free(u);
}

static int dd_blob_begin_chunks(sc_dest *base, sc_blob_upload **ret_upload, sc_writer **ret_writer,
                                sconify_error_t *err)
{
	struct docker_dest *d = (struct docker_dest *)base;
	sc_blob_upload *u = xzalloc(sizeof(*u));
	if (sc_registry_upload_begin_chunks(d->r, d->base.ref->repository, &u->u, ret_writer, err) < 0) {
		free(u);
		return -1;
	}
	*ret_upload = u;
	return 0;
}

static int dd_blob_seal(sc_dest *base, sc_blob_upload *u, sconify_error_t *err)
{
	(void)base;
	return sc_registry_upload_seal(u->u, err);
}

static void dd_blob_cancel(sc_dest *base, sc_blob_upload *u)
{
	(void)base;
	sc_registry_upload_cancel(u->u);
	free(u);
}

static int dd_put_document(sc_dest *base, const char *data, size_t len, const char *media_type,
                           const sc_digest *digest, const sc_document *parsed, sconify_error_t *err)
{
	(void)parsed;
	struct docker_dest *d = (struct docker_dest *)base;
	if (sc_registry_put_manifest(d->r, d->base.ref->repository, digest->str, data, len, media_type, err) <
	    0)
		return -1;
	d->docs = xreallocarray(d->docs, d->n_docs + 1, sizeof(*d->docs));
	struct pushed *p = &d->docs[d->n_docs++];
	p->digest = *digest;
	p->media_type = xstrdup(media_type);
	p->data = xmemdup(data, len);
	p->len = len;
	return 0;
}

static int dd_commit(sc_dest *base, const char *media_type, const sc_digest *digest, uint64_t size,
                     sconify_error_t *err)
{
	(void)size, (void)media_type;
	struct docker_dest *d = (struct docker_dest *)base;
	const sc_image_ref *ref = d->base.ref;
	if (ref->digest) {
		/* A digest names content: nothing to move, but it must be what we wrote. */
		if (strcmp(ref->digest, digest->str) != 0)
			return sc_error(
			        err, SCONIFY_ERR_INVALID, 0,
			        "`%s' names %s, but the copy produced %s (drop the digest to push it)",
			        ref->text, ref->digest, digest->str);
		return 0;
	}
	for (size_t i = 0; i < d->n_docs; i++)
		if (sc_digest_equal(&d->docs[i].digest, digest))
			return sc_registry_put_manifest(d->r, ref->repository, ref->tag, d->docs[i].data,
			                                d->docs[i].len, d->docs[i].media_type, err);
	return sc_error(err, SCONIFY_ERR_GENERIC, 0, "%s was not pushed before its tag", digest->str);
}

static int dd_mount(sc_dest *base, const sc_digest *digest, const sc_image_ref *source, bool *ret,
                    sconify_error_t *err)
{
	struct docker_dest *d = (struct docker_dest *)base;
	*ret = false;
	if (source->kind != SC_TRANSPORT_DOCKER || strcmp(source->domain, d->base.ref->domain) != 0 ||
	    strcmp(source->repository, d->base.ref->repository) == 0)
		return 0;
	return sc_registry_mount_blob(d->r, d->base.ref->repository, digest, source->repository, ret, err);
}

static void dd_free(sc_dest *base)
{
	struct docker_dest *d = (struct docker_dest *)base;
	sc_registry_free(d->r);
	for (size_t i = 0; i < d->n_docs; i++) {
		free(d->docs[i].media_type);
		free(d->docs[i].data);
	}
	free(d->docs);
	free(d);
}

static const struct sc_dest_ops dd_ops = {
        .has_blob = dd_has_blob,
        .blob_begin = dd_blob_begin,
        .blob_commit = dd_blob_commit,
        .blob_abort = dd_blob_abort,
        .blob_begin_chunks = dd_blob_begin_chunks,
        .blob_seal = dd_blob_seal,
        .blob_cancel = dd_blob_cancel,
        .put_document = dd_put_document,
        .commit = dd_commit,
        .mount = dd_mount,
        .free = dd_free,
};

int sc_docker_dest_open(sc_image_ref *ref, const sc_transport_options *o, sc_dest **ret, sconify_error_t *err)
{
	struct docker_dest *d = xzalloc(sizeof(*d));
	d->base.ops = &dd_ops;
	d->base.caps =
	        (sc_dest_caps){.oci_only = false, .index = true, .parallel_blobs = true, .no_zstd = false};
	sc_transport_options filled = *o;
	sc_limits_fill(&filled.limits);
	if (sc_docker_registry_open(ref, &filled, &d->r, err) < 0) {
		free(d);
		return -1;
	}
	d->base.ref = ref;
	d->base.name = xstrdup(ref->text);
	*ret = &d->base;
	return 0;
}
