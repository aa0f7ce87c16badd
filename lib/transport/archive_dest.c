/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writing oci-archive and docker-archive files. Both are an OCI image layout
 * in a tar (docker-archive adds manifest.json, the shape `docker save` has
 * written since moby 25 and that older `docker load` reads through
 * manifest.json). The tar is written to a temporary file beside the target
 * and renamed over it on commit; until then the target is untouched.
 *
 * Entries are written one after the other: a blob whose digest is known
 * streams straight into the tar, one whose digest is computed while writing
 * (a recompressed layer) is spooled to a temporary file first, because its
 * name in the tar is its digest.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/tarwriter.h"
#include "core/fsutil.h"
#include "core/json-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "image/mediatype.h"
#include "ref/reference.h"
#include "transport.h"

struct archive_dest {
	sc_dest base;
	bool docker;
	char *path;
	char *dir;
	char *tmp;
	int fd;
	sc_tar_writer *tw;
	sc_digest *written;
	size_t n_written;
	bool busy; /* an upload is open: the tar takes one entry at a time */
	/* docker-archive: the image manifest's config and layers */
	json_t *image;
	bool committed;
};

struct sc_blob_upload {
	bool direct; /* streaming into the tar entry */
	char *spool;
	int spool_fd;
	sc_writer *w;
};

static bool written(struct archive_dest *a, const sc_digest *d)
{
	for (size_t i = 0; i < a->n_written; i++)
		if (sc_digest_equal(&a->written[i], d))
			return true;
	return false;
}

static void mark_written(struct archive_dest *a, const sc_digest *d)
{
	a->written = xreallocarray(a->written, a->n_written + 1, sizeof(*a->written));
	a->written[a->n_written++] = *d;
}

static int ar_has_blob(sc_dest *base, const sc_digest *digest, bool *ret, sconify_error_t *err)
{
	(void)err;
	*ret = written((struct archive_dest *)base, digest);
	return 0;
}

static void upload_free(struct sc_blob_upload *u)
{
	if (u == NULL)
		return;
	if (!u->direct)
		sc_writer_free(u->w);
	if (u->spool_fd >= 0)
		close(u->spool_fd);
	if (u->spool)
		unlink(u->spool);
	free(u->spool);
	free(u);
}

static int ar_blob_begin(sc_dest *base, const sc_digest *known, uint64_t known_size,
                         sc_blob_upload **ret_upload, sc_writer **ret_writer, sconify_error_t *err)
{
	(void)known_size;
	struct archive_dest *a = (struct archive_dest *)base;
	if (a->busy)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "archive destinations write one blob at a time");
	struct sc_blob_upload *u = xzalloc(sizeof(*u));
	u->spool_fd = -1;
	if (known) {
		cleanup_free char *name = sc_blob_path(known);
		if (sc_tar_writer_begin_file(a->tw, name, 0644, &u->w, err) < 0) {
			free(u);
			return -1;
		}
		u->direct = true;
	} else {
		if (sc_tmpfile(a->dir, "sconify-spool-", &u->spool, &u->spool_fd, err) < 0) {
			upload_free(u);
			return -1;
		}
		u->w = sc_fd_writer_new(u->spool_fd, false);
	}
	a->busy = true;
	*ret_upload = u;
	*ret_writer = u->w;
	return 0;
}

static int ar_blob_commit(sc_dest *base, sc_blob_upload *u, const sc_digest *digest, uint64_t size,
                          sconify_error_t *err)
{
	struct archive_dest *a = (struct archive_dest *)base;
	int r = -1;
	a->busy = false;
	if (u->direct) {
		r = sc_tar_writer_end_file(a->tw, err);
	} else {
		cleanup_free char *name = sc_blob_path(digest);
		sc_writer *content = NULL;
		cleanup_reader sc_reader *spool = sc_fd_reader_new(u->spool_fd, false, 0, (int64_t)size);
		if (sc_tar_writer_begin_file(a->tw, name, 0644, &content, err) == 0 &&
		    sc_stream_pump(spool, content, NULL, err) == 0)
			r = sc_tar_writer_end_file(a->tw, err);
	}
	if (r == 0)
		mark_written(a, digest);
	upload_free(u);
	return r;
}

static void ar_blob_abort(sc_dest *base, sc_blob_upload *u)
{
	struct archive_dest *a = (struct archive_dest *)base;
	a->busy = false;
	/* A half-written direct entry leaves the tar unusable; the whole
	 * temporary file goes when the destination is freed uncommitted. */
	upload_free(u);
}

static int ar_put_document(sc_dest *base, const char *data, size_t len, const char *media_type,
                           const sc_digest *digest, const sc_document *parsed, sconify_error_t *err)
{
	struct archive_dest *a = (struct archive_dest *)base;
	if (a->docker && parsed && sc_doc_kind_is_manifest(parsed->kind)) {
		if (a->image)
			return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0, "a docker-archive holds one image");
		json_t *img = json_object();
		cleanup_free char *config = sc_blob_path(&parsed->config.digest);
		json_object_set_new(img, "Config", json_string(config));
		json_t *layers = json_array();
		for (size_t i = 0; i < parsed->n_layers; i++) {
			char *n = sc_blob_path(&parsed->layers[i].digest);
			json_array_append_new(layers, json_string(n));
			free(n);
		}
		json_object_set_new(img, "Layers", layers);
		a->image = img;
	}
	(void)media_type;
	return sc_dest_put_bytes(base, data, len, digest, err);
}

static int add_json(struct archive_dest *a, const char *name, json_t *j, sconify_error_t *err)
{
	size_t len = 0;
	cleanup_free char *data = sc_json_dump(j, &len);
	return sc_tar_writer_add_bytes(a->tw, name, 0644, data, len, err);
}

static int ar_commit(sc_dest *base, const char *media_type, const sc_digest *digest, uint64_t size,
                     sconify_error_t *err)
{
	struct archive_dest *a = (struct archive_dest *)base;
	const char *ref = a->base.ref->ref;

	cleanup_json json_t *desc = sc_descriptor_json_new(media_type, digest, size);
	cleanup_free char *tag = NULL, *familiar = NULL;
	if (ref) {
		json_t *ann = json_object();
		if (a->docker) {
			/* ref is a normalised docker reference: name the image as moby does. */
			cleanup_docker_ref sc_docker_ref *dr = NULL;
			if (sc_docker_ref_parse(ref, &dr, err) < 0)
				return -1;
			tag = xstrdup(dr->tag ? dr->tag : "latest");
			familiar = sc_docker_ref_familiar(dr);
			json_object_set_new(ann, "io.containerd.image.name", json_string(ref));
			json_object_set_new(ann, SC_ANNOTATION_REF_NAME, json_string(tag));
		} else {
			json_object_set_new(ann, SC_ANNOTATION_REF_NAME, json_string(ref));
		}
		json_object_set_new(desc, "annotations", ann);
	}
	cleanup_json json_t *index = json_object();
	json_object_set_new(index, "schemaVersion", json_integer(2));
	json_object_set_new(index, "mediaType", json_string(SC_MT_OCI_INDEX));
	json_t *list = json_array();
	json_array_append(list, desc);
	json_object_set_new(index, "manifests", list);
	if (add_json(a, "index.json", index, err) < 0)
		return -1;

	if (a->docker) {
		if (a->image == NULL)
			return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
			                "a docker-archive needs an image manifest");
		json_t *tags = json_array();
		if (familiar)
			json_array_append_new(tags, json_string(familiar));
		json_object_set_new(a->image, "RepoTags", tags);
		cleanup_json json_t *manifest = json_array();
		json_array_append(manifest, a->image);
		if (add_json(a, "manifest.json", manifest, err) < 0)
			return -1;
	}

	if (sc_tar_writer_finish(a->tw, err) < 0 || fchmod(a->fd, 0644) < 0 ||
	    sc_commit_tmpfile(a->fd, a->tmp, a->path, err) < 0) {
		if (err && *err == NULL)
			sc_error_errno(err, errno, "writing `%s'", a->path);
		return -1;
	}
	free(a->tmp);
	a->tmp = NULL;
	a->committed = true;
	return 0;
}

static void ar_free(sc_dest *base)
{
	struct archive_dest *a = (struct archive_dest *)base;
	sc_tar_writer_free(a->tw);
	if (a->fd >= 0)
		close(a->fd);
	if (a->tmp)
		unlink(a->tmp);
	json_decref(a->image);
	free(a->tmp);
	free(a->path);
	free(a->dir);
	free(a->written);
	free(a);
}

static const struct sc_dest_ops ar_ops = {
        .has_blob = ar_has_blob,
        .blob_begin = ar_blob_begin,
        .blob_commit = ar_blob_commit,
        .blob_abort = ar_blob_abort,
        .put_document = ar_put_document,
        .commit = ar_commit,
        .free = ar_free,
};

int sc_archive_dest_open(sc_image_ref *ref, sc_dest **ret, sconify_error_t *err)
{
	struct stat st;
	if (stat(ref->path, &st) == 0 && S_ISDIR(st.st_mode))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "`%s' is a directory", ref->path);

	struct archive_dest *a = xzalloc(sizeof(*a));
	a->base.ops = &ar_ops;
	a->docker = ref->kind == SC_TRANSPORT_DOCKER_ARCHIVE;
	a->base.caps = (sc_dest_caps){
	        .oci_only = true, .index = !a->docker, .parallel_blobs = false, .no_zstd = a->docker};
	a->fd = -1;
	a->path = xstrdup(ref->path);
	a->dir = sc_dirname(ref->path);
	if (sc_tmpfile(a->dir, "sconify-archive-", &a->tmp, &a->fd, err) < 0) {
		ar_free(&a->base);
		return -1;
	}
	a->tw = sc_tar_writer_new(a->fd);
	if (sc_tar_writer_add_dir(a->tw, "blobs", 0755, err) < 0 ||
	    sc_tar_writer_add_dir(a->tw, "blobs/sha256", 0755, err) < 0 ||
	    sc_tar_writer_add_bytes(a->tw, "oci-layout", 0644, SC_OCI_LAYOUT_JSON, strlen(SC_OCI_LAYOUT_JSON),
	                            err) < 0) {
		ar_free(&a->base);
		return -1;
	}
	a->base.ref = ref;
	a->base.name = xstrdup(ref->text);
	*ret = &a->base;
	return 0;
}
