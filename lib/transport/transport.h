/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transports: where images are read from and written to, named as skopeo
 * names them ("oci:DIR[:REF]", "oci-archive:FILE[:REF]",
 * "docker-archive:FILE[:REF]").
 *
 * A source hands out the document its reference names and raw blob streams by
 * digest; sc_source_blob() and sc_source_document() put every read behind the
 * verified reader, so callers never see unverified bytes.
 *
 * A destination receives blobs (streamed, digest known up front or computed
 * on the way), then manifests, and publishes the image only in commit(): until
 * then nothing it wrote is visible under a name, and freeing an uncommitted
 * destination removes everything it wrote.
 */
#ifndef SC_TRANSPORT_H
#define SC_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/stream.h"
#include "digest/digest.h"
#include "image/document.h"
#include "sconify.h"

typedef enum {
	SC_TRANSPORT_OCI,
	SC_TRANSPORT_OCI_ARCHIVE,
	SC_TRANSPORT_DOCKER_ARCHIVE,
	SC_TRANSPORT_DOCKER, /* a registry */
} sc_transport_kind;

typedef struct {
	sc_transport_kind kind;
	char *text; /* as the user wrote it, for messages */
	char *path; /* DIR or FILE */
	/* oci, oci-archive: the ref name. docker-archive: the normalised docker
	 * reference ("docker.io/library/x:latest"). NULL when not given. */
	char *ref;
	int index; /* "@N" picks the Nth image of a source; -1 when not given */
	/* docker: the parsed reference (path, ref stay NULL) */
	char *domain, *repository, *tag, *digest;
} sc_image_ref;

int sc_image_ref_parse(const char *s, sc_image_ref **ret, sconify_error_t *err);
void sc_image_ref_free(sc_image_ref *r);
SC_DEFINE_CLEANUP(sc_image_ref *, sc_image_ref_free)
#define cleanup_image_ref _cleanup_(sc_image_ref_freep)
const char *sc_transport_name(sc_transport_kind k);

/* ---- sources ---- */

typedef struct sc_source sc_source;
struct sc_source_ops {
	/* The document the reference names, with the media type the transport
	 * declares for it (NULL if none). Transports that know its digest check it. */
	int (*get_top)(sc_source *s, char **ret_data, size_t *ret_len, char **ret_media_type,
	               sconify_error_t *err);
	/* The raw stream of a blob, document or layer. NOT_FOUND when absent. */
	int (*open_blob)(sc_source *s, const sc_digest *d, uint64_t size, sc_reader **ret,
	                 sconify_error_t *err);
	/* Optional: a manifest or index by digest, where documents do not live
	 * with the blobs (registries). The caller verifies it. */
	int (*get_document)(sc_source *s, const sc_descriptor *desc, char **ret_data, size_t *ret_len,
	                    sconify_error_t *err);
	void (*free)(sc_source *s);
};
struct sc_source {
	const struct sc_source_ops *ops;
	sc_image_ref *ref;
	sconify_limits_t limits; /* filled */
	/* Names the source in messages as the user wrote it, quoted. */
	char *name;
	/* docker-archive: the RepoTags of the selected image (may be NULL). */
	char **repo_tags;
};

/* How sources and destinations are opened. */
typedef struct {
	sconify_limits_t limits;                    /* filled */
	const sconify_registry_options_t *registry; /* docker://; NULL for the defaults */
	int retries;
	sconify_debug_fn debug;
	void *debug_userdata;
} sc_transport_options;

/* A registry client for a docker:// reference, with the options' TLS,
 * credentials, limits and retries (for work beyond copying: signatures). */
struct sc_registry;
int sc_docker_registry_open(const sc_image_ref *ref, const sc_transport_options *o, struct sc_registry **ret,
                            sconify_error_t *err);

int sc_source_open(const char *ref, const sc_transport_options *o, sc_source **ret, sconify_error_t *err);
void sc_source_free(sc_source *s);
SC_DEFINE_CLEANUP(sc_source *, sc_source_free)
#define cleanup_source _cleanup_(sc_source_freep)

/* The document the reference names, parsed. */
int sc_source_top(sc_source *s, sc_document **ret, sconify_error_t *err);
/* A manifest or index by descriptor, verified and parsed. */
int sc_source_document(sc_source *s, const sc_descriptor *desc, sc_document **ret, sconify_error_t *err);
/* A config blob by descriptor, verified and parsed. */
int sc_source_config(sc_source *s, const sc_descriptor *desc, sc_image_config **ret, sconify_error_t *err);
/* A blob stream that fails unless it matches desc's digest and size. */
int sc_source_blob(sc_source *s, const sc_descriptor *desc, sc_reader **ret, sconify_error_t *err);

/* ---- destinations ---- */

typedef struct sc_dest sc_dest;
typedef struct sc_blob_upload sc_blob_upload;

typedef struct {
	bool oci_only;       /* stores OCI manifests and indexes only: Docker ones are converted */
	bool index;          /* can hold an index (several platforms) */
	bool parallel_blobs; /* several uploads may be open at once */
	bool no_zstd;        /* zstd layers must be decompressed for its consumers */
} sc_dest_caps;

struct sc_dest_ops {
	/* Whether a blob with this digest is already there. */
	int (*has_blob)(sc_dest *d, const sc_digest *digest, bool *ret, sconify_error_t *err);
	/* Starts a blob; known is its digest when the caller knows it already,
	 * NULL when it is computed while writing. */
	int (*blob_begin)(sc_dest *d, const sc_digest *known, uint64_t known_size,
	                  sc_blob_upload **ret_upload, sc_writer **ret_writer, sconify_error_t *err);
	/* Completes a blob whose content hashed to digest (checked by the caller). */
	int (*blob_commit)(sc_dest *d, sc_blob_upload *u, const sc_digest *digest, uint64_t size,
	                   sconify_error_t *err);
	void (*blob_abort)(sc_dest *d, sc_blob_upload *u);
	/* Optional: starts a blob that is sent in whole requests (chunks), so
	 * that between writes nothing is half sent and a cancel leaves the
	 * destination nothing still writing. */
	int (*blob_begin_chunks)(sc_dest *d, sc_blob_upload **ret_upload, sc_writer **ret_writer,
	                         sconify_error_t *err);
	/* Optional: all of the blob is written; send it now, the commit (or a
	 * cancel) may come much later. */
	int (*blob_seal)(sc_dest *d, sc_blob_upload *u, sconify_error_t *err);
	/* Optional: like blob_abort, and the destination deletes what it
	 * received of the blob (for bytes that must not stay there). */
	void (*blob_cancel)(sc_dest *d, sc_blob_upload *u);
	/* Stores a manifest or index (exact bytes). image_config is set for an
	 * image manifest: the config descriptor and the layers, for transports
	 * that lay images out their own way (docker-archive). */
	int (*put_document)(sc_dest *d, const char *data, size_t len, const char *media_type,
	                    const sc_digest *digest, const sc_document *parsed, sconify_error_t *err);
	/* Publishes the image: top is the document the destination ref names. */
	int (*commit)(sc_dest *d, const char *media_type, const sc_digest *digest, uint64_t size,
	              sconify_error_t *err);
	/* Optional: links a blob from another repository of the same registry
	 * (source is a docker ref); *ret false when it did not. */
	int (*mount)(sc_dest *d, const sc_digest *digest, const sc_image_ref *source, bool *ret,
	             sconify_error_t *err);
	/* Without commit: removes what was written. */
	void (*free)(sc_dest *d);
};
struct sc_dest {
	const struct sc_dest_ops *ops;
	sc_dest_caps caps;
	sc_image_ref *ref;
	char *name;
};

int sc_dest_open(const char *ref, const sc_transport_options *o, sc_dest **ret, sconify_error_t *err);
void sc_dest_free(sc_dest *d);
SC_DEFINE_CLEANUP(sc_dest *, sc_dest_free)
#define cleanup_dest _cleanup_(sc_dest_freep)

/* Writes a blob held in memory (config, document) unless it is there already. */
int sc_dest_put_bytes(sc_dest *d, const char *data, size_t len, const sc_digest *digest,
                      sconify_error_t *err);

/* ---- shared by the layout transports ---- */

/* "blobs/<alg>/<hex>": where an OCI layout keeps a blob. */
char *sc_blob_path(const sc_digest *d);
#define SC_OCI_LAYOUT_JSON "{\"imageLayoutVersion\":\"1.0.0\"}"
/* Checks an oci-layout file says imageLayoutVersion 1.0.0; where names the layout. */
int sc_oci_layout_check(const char *data, size_t len, const char *where, sconify_error_t *err);

/* ---- transport implementations (one file each) ---- */

int sc_docker_source_open(sc_image_ref *ref, const sc_transport_options *o, sc_source **ret,
                          sconify_error_t *err);
int sc_docker_dest_open(sc_image_ref *ref, const sc_transport_options *o, sc_dest **ret,
                        sconify_error_t *err);
int sc_oci_source_open(sc_image_ref *ref, const sconify_limits_t *limits, sc_source **ret,
                       sconify_error_t *err);
int sc_docker_archive_source_open(sc_image_ref *ref, const sconify_limits_t *limits, sc_source **ret,
                                  sconify_error_t *err);
int sc_oci_dir_dest_open(sc_image_ref *ref, sc_dest **ret, sconify_error_t *err);
/* oci-archive and docker-archive: one tar file, written to a temporary name
 * and renamed into place on commit. */
int sc_archive_dest_open(sc_image_ref *ref, sc_dest **ret, sconify_error_t *err);

#endif
