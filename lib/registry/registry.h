/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client for one registry (the distribution API, docs/registry.md):
 * authentication (none, Basic, or Bearer tokens per scope, fetched and
 * refreshed as the challenge says), manifests, blobs with resumable
 * downloads, cross-repository mounts and uploads (monolithic for small
 * blobs, one streaming PATCH for large ones, fixed-size chunks where the
 * registry asks for them). Errors name the registry, the repository and
 * what was being done, and turn the registry's error JSON into words.
 */
#ifndef SC_REGISTRY_H
#define SC_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/stream.h"
#include "digest/digest.h"
#include "registry/creds.h"
#include "registry/http.h"
#include "sconify.h"

typedef struct sc_registry sc_registry;

typedef struct {
	bool tls_verify;      /* false: no certificate check, plain http tried when https fails */
	const char *cert_dir; /* skopeo's --cert-dir */
	sc_creds_options creds;
	sconify_limits_t limits; /* filled */
	int retries;
	long stall_timeout_ms;
	sc_http_debug_fn debug;
	void *debug_userdata;
} sc_registry_options;

/* A client for domain ("docker.io", "host:5000"), with the credentials the
 * options find for repository. Connects lazily. */
int sc_registry_open(const char *domain, const char *repository, const sc_registry_options *o,
                     sc_registry **ret, sconify_error_t *err);
void sc_registry_free(sc_registry *r);
SC_DEFINE_CLEANUP(sc_registry *, sc_registry_free)
#define cleanup_registry _cleanup_(sc_registry_freep)

const char *sc_registry_domain(const sc_registry *r);

/* The manifest or index repo:reference names (a tag or a digest), checked
 * against Docker-Content-Digest and, for a digest reference, against it.
 * ret_media_type is the Content-Type without parameters. */
int sc_registry_get_manifest(sc_registry *r, const char *repo, const char *reference, char **ret_data,
                             size_t *ret_len, char **ret_media_type, sc_digest *ret_digest,
                             sconify_error_t *err);
int sc_registry_put_manifest(sc_registry *r, const char *repo, const char *reference, const char *data,
                             size_t len, const char *media_type, sconify_error_t *err);

int sc_registry_blob_exists(sc_registry *r, const char *repo, const sc_digest *d, bool *ret,
                            sconify_error_t *err);
/* The blob's bytes; a dropped connection is resumed with Range. The caller
 * verifies digest and size (sc_verified_reader_new). */
int sc_registry_open_blob(sc_registry *r, const char *repo, const sc_digest *d, uint64_t size,
                          sc_reader **ret, sconify_error_t *err);

/* Asks the registry to link d from from_repo into repo. *ret is false when
 * it will not (any failure included): then upload. */
int sc_registry_mount_blob(sc_registry *r, const char *repo, const sc_digest *d, const char *from_repo,
                           bool *ret, sconify_error_t *err);

/* A blob upload: write the content, then commit with its digest. known_size
 * < 0 when unknown (streamed chunked). */
typedef struct sc_registry_upload sc_registry_upload;
int sc_registry_upload_begin(sc_registry *r, const char *repo, int64_t known_size, sc_registry_upload **ret,
                             sc_writer **ret_writer, sconify_error_t *err);
int sc_registry_upload_commit(sc_registry_upload *u, const sc_digest *d, uint64_t size, sconify_error_t *err);
/* An upload sent as a series of whole requests (PATCH chunks), so that it is
 * never in the middle of one between writes, and a cancel leaves the
 * registry no request still writing. */
int sc_registry_upload_begin_chunks(sc_registry *r, const char *repo, sc_registry_upload **ret,
                                    sc_writer **ret_writer, sconify_error_t *err);
/* Ends the content: what was written is sent and the connection is free
 * again, while the commit may come much later (or a cancel instead). The
 * commit does this itself when it was not done. */
int sc_registry_upload_seal(sc_registry_upload *u, sconify_error_t *err);
void sc_registry_upload_free(sc_registry_upload *u);
/* Drops an upload nobody will commit and asks the registry to delete what it
 * received so far (best effort: a registry that refuses keeps it until its
 * uploads expire). Frees u. */
void sc_registry_upload_cancel(sc_registry_upload *u);

#endif
