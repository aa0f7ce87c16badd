/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image documents: OCI manifests and indexes, Docker schema 2 manifests and
 * manifest lists. A parsed document keeps its exact bytes and their digest:
 * whatever we hold the digest of is never re-serialised. Parsing is strict
 * (docs/documents.md): ambiguous documents and media types that contradict
 * the body are rejected (CVE-2021-41190).
 */
#ifndef SC_DOCUMENT_H
#define SC_DOCUMENT_H

#include <jansson.h>
#include <stdint.h>

#include "digest/digest.h"
#include "image/mediatype.h"
#include "image/platform.h"
#include "sconify.h"

typedef struct {
	char *media_type;
	sc_digest digest;
	uint64_t size;
	sc_platform *platform; /* index entries only, NULL when absent */
	json_t *json;          /* the descriptor as found: keeps unknown fields */
} sc_descriptor;

/* Validates a descriptor object. where names it ("layer 3 of manifest sha256:..."). */
int sc_descriptor_parse(json_t *obj, const char *where, sc_descriptor *ret, sconify_error_t *err);
void sc_descriptor_clear(sc_descriptor *d);
void sc_descriptor_copy(sc_descriptor *dst, const sc_descriptor *src);
/* The descriptor's JSON with mediaType, digest and size replaced by d's: a
 * rewritten blob keeps its annotations, platform and other fields. */
json_t *sc_descriptor_to_json(const sc_descriptor *d);
/* A fresh descriptor object with just mediaType, digest and size. */
json_t *sc_descriptor_json_new(const char *media_type, const sc_digest *digest, uint64_t size);
/* The value of an annotation, or NULL. */
const char *sc_descriptor_annotation(const sc_descriptor *d, const char *key);

typedef struct {
	sc_doc_kind kind;
	char *data; /* the exact bytes, NUL-terminated */
	size_t len;
	sc_digest digest; /* sha256 of data */
	json_t *root;
	/* manifests */
	sc_descriptor config;
	sc_descriptor *layers;
	size_t n_layers;
	/* indexes */
	sc_descriptor *manifests;
	size_t n_manifests;
} sc_document;

/* Parses data (copied). declared_mt is the media type the referrer declared
 * (descriptor, Content-Type), or NULL. what names the document in messages.
 * limits must be filled. */
int sc_document_parse(const char *data, size_t len, const char *declared_mt, const char *what,
                      const sconify_limits_t *limits, sc_document **ret, sconify_error_t *err);
void sc_document_free(sc_document *d);
SC_DEFINE_CLEANUP(sc_document *, sc_document_free)
#define cleanup_document _cleanup_(sc_document_freep)

const char *sc_document_media_type(const sc_document *d);
/* "manifest" or "index", for messages */
const char *sc_document_noun(const sc_document *d);

/* The image config. */
typedef struct {
	char *data;
	size_t len;
	json_t *root;
	sc_platform platform; /* fields missing from the config stay NULL */
	sc_digest *diff_ids;
	size_t n_diff_ids;
} sc_image_config;

int sc_config_parse(const char *data, size_t len, const char *what, const sconify_limits_t *limits,
                    sc_image_config **ret, sconify_error_t *err);
void sc_config_free(sc_image_config *c);
SC_DEFINE_CLEANUP(sc_image_config *, sc_config_free)
#define cleanup_config _cleanup_(sc_config_freep)

#endif
