/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI and Docker media types: which are documents (manifests, indexes), which
 * are layers and how a layer type maps between the two worlds.
 */
#ifndef SC_MEDIATYPE_H
#define SC_MEDIATYPE_H

#include <stdbool.h>

#include "layer/compress.h"

#define SC_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define SC_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define SC_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define SC_MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define SC_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define SC_MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define SC_MT_OCI_LAYER_ND "application/vnd.oci.image.layer.nondistributable.v1.tar"
#define SC_MT_OCI_LAYER_ND_GZIP "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
#define SC_MT_OCI_LAYER_ND_ZSTD "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
#define SC_MT_OCI_EMPTY "application/vnd.oci.empty.v1+json"

#define SC_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define SC_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define SC_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define SC_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define SC_MT_DOCKER_FOREIGN_GZIP "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
/* Not in the Docker spec, but what containers/image names an uncompressed layer. */
#define SC_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"

#define SC_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"

typedef enum {
	SC_DOC_UNKNOWN = 0,
	SC_DOC_OCI_MANIFEST,
	SC_DOC_OCI_INDEX,
	SC_DOC_DOCKER_MANIFEST,
	SC_DOC_DOCKER_LIST,
} sc_doc_kind;

sc_doc_kind sc_doc_kind_of(const char *media_type);
const char *sc_doc_kind_media_type(sc_doc_kind k);
bool sc_doc_kind_is_index(sc_doc_kind k);
bool sc_doc_kind_is_manifest(sc_doc_kind k);

typedef struct {
	sc_compression compression;
	bool docker;           /* a Docker media type */
	bool nondistributable; /* OCI nondistributable or Docker foreign */
	/* Docker's gzip type is also used for uncompressed layers (containers/image
	 * does so in docker-archive): the content, not the type, decides. */
	bool compression_loose;
} sc_layer_type;

/* Recognises image layer media types; false for anything else (artifacts). */
bool sc_layer_type_parse(const char *media_type, sc_layer_type *ret);
/* The media type for a layer of this compression in an OCI or Docker manifest;
 * NULL when Docker has none (zstd). */
const char *sc_layer_media_type(bool docker, sc_compression c, bool nondistributable);

bool sc_media_type_valid(const char *mt);
/* The OCI or Docker image config type (not an artifact's config). */
bool sc_media_type_is_image_config(const char *mt);

#endif
