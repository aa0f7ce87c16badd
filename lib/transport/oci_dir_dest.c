/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writing an OCI image layout directory (oci:DIR[:REF]). Blobs are written
 * under temporary names and renamed to blobs/<alg>/<hex> once complete;
 * index.json is replaced atomically at commit, last, so the ref appears only
 * when everything it names is in place. An uncommitted destination removes
 * the blobs it added (and the directory, if it created it): a failed copy
 * leaves the layout as it found it.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/json-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "image/mediatype.h"
#include "transport.h"

struct oci_dir_dest {
	sc_dest base;
	char *dir;
	bool created_dir;
	pthread_mutex_t lock; /* guards added */
	char **added;         /* blob files this run created */
	size_t n_added;
	char **dirs; /* directories this run created inside an existing layout */
	size_t n_dirs;
	bool committed;
};

struct sc_blob_upload {
	char *tmp;
	int fd;
	sc_writer *w;
};

static char *blob_file(struct oci_dir_dest *d, const sc_digest *digest)
{
	cleanup_free char *rel = sc_blob_path(digest);
	return sc_path_join(d->dir, rel);
}

static int dir_has_blob(sc_dest *base, const sc_digest *digest, bool *ret, sconify_error_t *err)
{
	(void)err;
	struct oci_dir_dest *d = (struct oci_dir_dest *)base;
	cleanup_free char *path = blob_file(d, digest);
	struct stat st;
	*ret = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
	return 0;
}

/* mkdir that remembers what it created, for the rollback. Call with lock held. */
static int make_dir(struct oci_dir_dest *d, const char *path, sconify_error_t *err)
{
	if (mkdir(path, 0755) == 0) {
		d->dirs = xreallocarray(d->dirs, d->n_dirs + 1, sizeof(char *));
		d->dirs[d->n_dirs++] = xstrdup(path);
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	return sc_error_errno(err, errno, "creating directory `%s'", path);
}

static void upload_free(struct sc_blob_upload *u)
{
	if (u == NULL)
		return;
	sc_writer_free(u->w);
	if (u->fd >= 0)
		close(u->fd);
	if (u->tmp)
		unlink(u->tmp);
	free(u->tmp);
	free(u);
}

static int dir_blob_begin(sc_dest *base, const sc_digest *known, uint64_t known_size,
                          sc_blob_upload **ret_upload, sc_writer **ret_writer, sconify_error_t *err)
{
	(void)known, (void)known_size;
	struct oci_dir_dest *d = (struct oci_dir_dest *)base;
	cleanup_free char *blobs = sc_path_join(d->dir, "blobs");
	struct sc_blob_upload *u = xzalloc(sizeof(*u));
	u->fd = -1;
	if (sc_tmpfile(blobs, "tmp-", &u->tmp, &u->fd, err) < 0) {
		upload_free(u);
		return -1;
	}
	u->w = sc_fd_writer_new(u->fd, false);
	*ret_upload = u;
	*ret_writer = u->w;
	return 0;
}

static int dir_blob_commit(sc_dest *base, sc_blob_upload *u, const sc_digest *digest, uint64_t size,
                           sconify_error_t *err)
{
	(void)size;
	struct oci_dir_dest *d = (struct oci_dir_dest *)base;
	cleanup_free char *alg_dir = xasprintf("%s/blobs/%s", d->dir, sc_digest_alg_name(digest->alg));
	cleanup_free char *path = blob_file(d, digest);
	int r = -1;
	if (fchmod(u->fd, 0644) < 0) {
		sc_error_errno(err, errno, "chmod `%s'", u->tmp);
		goto out;
	}
	pthread_mutex_lock(&d->lock);
	if (make_dir(d, alg_dir, err) < 0) {
		pthread_mutex_unlock(&d->lock);
		goto out;
	}
	struct stat st;
	bool exists = lstat(path, &st) == 0;
	if (!exists) {
		r = sc_commit_tmpfile(u->fd, u->tmp, path, err);
		if (r == 0) {
			free(u->tmp);
			u->tmp = NULL;
			d->added = xreallocarray(d->added, d->n_added + 1, sizeof(char *));
			d->added[d->n_added++] = steal_pointer(&path);
		}
	} else {
		r = 0; /* content-addressed: the same bytes are there already */
	}
	pthread_mutex_unlock(&d->lock);
out:
	upload_free(u);
	return r;
}

static void dir_blob_abort(sc_dest *base, sc_blob_upload *u)
{
	(void)base;
	upload_free(u);
}

static int dir_put_document(sc_dest *base, const char *data, size_t len, const char *media_type,
                            const sc_digest *digest, const sc_document *parsed, sconify_error_t *err)
{
	(void)media_type, (void)parsed;
	return sc_dest_put_bytes(base, data, len, digest, err);
}

/* The layout's index.json with the new image added: an image with the same
 * ref name (or, without a name, the same unnamed digest) is replaced. */
static int updated_index(struct oci_dir_dest *d, json_t *desc, char **ret, size_t *ret_len,
                         sconify_error_t *err)
{
	cleanup_free char *path = sc_path_join(d->dir, "index.json");
	cleanup_json json_t *index = NULL;
	if (sc_path_exists(path)) {
		cleanup_free char *data = NULL;
		size_t len = 0;
		sconify_limits_t l = {0};
		sconify_limits_default(&l);
		if (sc_read_file(path, (size_t)l.max_document_bytes, &data, &len, err) < 0)
			return -1;
		cleanup_free char *what = xasprintf("`%s'", path);
		if (sc_json_parse(data, len, what, &index, err) < 0)
			return -1;
		if (!json_is_object(index) || !json_is_array(json_object_get(index, "manifests")))
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "`%s' is not an image index", path);
	} else {
		index = json_object();
		json_object_set_new(index, "schemaVersion", json_integer(2));
		json_object_set_new(index, "manifests", json_array());
	}

	const char *name = d->base.ref->ref;
	const char *digest = json_string_value(json_object_get(desc, "digest"));
	json_t *old = json_object_get(index, "manifests");
	json_t *kept = json_array();
	size_t i;
	json_t *e;
	json_array_foreach (old, i, e) {
		json_t *ann = json_object_get(e, "annotations");
		const char *en = json_string_value(json_object_get(ann, SC_ANNOTATION_REF_NAME));
		const char *ed = json_string_value(json_object_get(e, "digest"));
		bool replace = name ? (en && strcmp(en, name) == 0) : (!en && ed && strcmp(ed, digest) == 0);
		if (!replace)
			json_array_append(kept, e);
	}
	json_array_append(kept, desc);
	json_object_set_new(index, "manifests", kept);
	*ret = sc_json_dump(index, ret_len);
	return 0;
}

static int dir_commit(sc_dest *base, const char *media_type, const sc_digest *digest, uint64_t size,
                      sconify_error_t *err)
{
	struct oci_dir_dest *d = (struct oci_dir_dest *)base;
	cleanup_json json_t *desc = sc_descriptor_json_new(media_type, digest, size);
	if (d->base.ref->ref) {
		json_t *ann = json_object();
		json_object_set_new(ann, SC_ANNOTATION_REF_NAME, json_string(d->base.ref->ref));
		json_object_set_new(desc, "annotations", ann);
	}
	cleanup_free char *index = NULL;
	size_t len = 0;
	if (updated_index(d, desc, &index, &len, err) < 0)
		return -1;
	cleanup_free char *layout = sc_path_join(d->dir, "oci-layout");
	bool new_layout = !sc_path_exists(layout);
	if (new_layout &&
	    sc_write_file_atomic(layout, SC_OCI_LAYOUT_JSON, strlen(SC_OCI_LAYOUT_JSON), 0644, err) < 0)
		return -1;
	cleanup_free char *path = sc_path_join(d->dir, "index.json");
	if (sc_write_file_atomic(path, index, len, 0644, err) < 0) {
		if (new_layout)
			unlink(layout);
		return -1;
	}
	d->committed = true;
	return 0;
}

static void dir_free(sc_dest *base)
{
	struct oci_dir_dest *d = (struct oci_dir_dest *)base;
	if (!d->committed) {
		if (d->created_dir) {
			sc_rm_rf(d->dir, NULL);
		} else {
			for (size_t i = 0; i < d->n_added; i++)
				unlink(d->added[i]);
		}
	}
	for (size_t i = 0; i < d->n_added; i++)
		free(d->added[i]);
	free(d->added);
	/* Directories this run created, deepest first; rmdir keeps non-empty ones. */
	for (size_t i = d->n_dirs; i-- > 0;) {
		if (!d->committed && !d->created_dir)
			rmdir(d->dirs[i]);
		free(d->dirs[i]);
	}
	free(d->dirs);
	pthread_mutex_destroy(&d->lock);
	free(d->dir);
	free(d);
}

static const struct sc_dest_ops dir_ops = {
        .has_blob = dir_has_blob,
        .blob_begin = dir_blob_begin,
        .blob_commit = dir_blob_commit,
        .blob_abort = dir_blob_abort,
        .put_document = dir_put_document,
        .commit = dir_commit,
        .free = dir_free,
};

static int dir_is_empty(const char *dir, bool *ret, sconify_error_t *err);

int sc_oci_dir_dest_open(sc_image_ref *ref, sc_dest **ret, sconify_error_t *err)
{
	bool created = false;
	struct stat st;
	if (stat(ref->path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "`%s' exists and is not a directory",
			                ref->path);
		cleanup_free char *layout = sc_path_join(ref->path, "oci-layout");
		cleanup_free char *data = NULL;
		size_t len = 0;
		if (sc_path_exists(layout)) {
			if (sc_read_file(layout, 4096, &data, &len, err) < 0 ||
			    sc_oci_layout_check(data, len, ref->path, err) < 0)
				return -1;
		} else {
			bool empty = false;
			if (dir_is_empty(ref->path, &empty, err) < 0)
				return -1;
			if (!empty)
				return sc_error(err, SCONIFY_ERR_INVALID, 0,
				                "`%s' exists, is not empty and is not an OCI layout (no "
				                "oci-layout file)",
				                ref->path);
		}
	} else if (errno == ENOENT) {
		if (sc_mkdir_p(ref->path, 0755, err) < 0)
			return -1;
		created = true;
	} else {
		return sc_error_errno(err, errno, "`%s'", ref->path);
	}

	struct oci_dir_dest *d = xzalloc(sizeof(*d));
	d->base.ops = &dir_ops;
	d->base.caps =
	        (sc_dest_caps){.oci_only = true, .index = true, .parallel_blobs = true, .no_zstd = false};
	d->dir = xstrdup(ref->path);
	d->created_dir = created;
	pthread_mutex_init(&d->lock, NULL);
	cleanup_free char *blobs = sc_path_join(ref->path, "blobs");
	if (make_dir(d, blobs, err) < 0) {
		dir_free(&d->base);
		return -1;
	}
	d->base.ref = ref;
	d->base.name = xstrdup(ref->text);
	*ret = &d->base;
	return 0;
}

#include <dirent.h>

static int dir_is_empty(const char *dir, bool *ret, sconify_error_t *err)
{
	DIR *dh = opendir(dir);
	if (dh == NULL)
		return sc_error_errno(err, errno, "opening `%s'", dir);
	bool empty = true;
	struct dirent *de;
	while ((de = readdir(dh)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = false;
			break;
		}
	closedir(dh);
	*ret = empty;
	return 0;
}
