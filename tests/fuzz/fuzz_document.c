/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Manifests, indexes and configs from outside. The first byte picks the media
 * type declared for the document (none, each known kind, a config); the rest
 * is the document. A document that parses must survive a descriptor rewrite
 * and parse again from its own bytes to the same digest.
 */
#include <stdint.h>
#include <string.h>

#include "core/json-util.h"
#include "core/limits.h"
#include "image/document.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const declared[] = {
        NULL, SC_MT_OCI_MANIFEST, SC_MT_OCI_INDEX, SC_MT_DOCKER_MANIFEST, SC_MT_DOCKER_LIST, "config",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	sconify_limits_t l = {0};
	l.max_document_bytes = 1 << 16;
	l.max_descriptors = 64;
	sc_limits_fill(&l);
	const char *mt = declared[data[0] % (sizeof(declared) / sizeof(declared[0]))];
	const char *doc = (const char *)data + 1;
	size_t len = size - 1;
	sconify_error_t err = NULL;

	if (mt && strcmp(mt, "config") == 0) {
		sc_image_config *c = NULL;
		if (sc_config_parse(doc, len, "config", &l, &c, &err) == 0 && c->len != len)
			__builtin_trap();
		sc_config_free(c);
		sconify_error_free(&err);
		return 0;
	}

	sc_document *d = NULL;
	if (sc_document_parse(doc, len, mt, "doc", &l, &d, &err) == 0) {
		sc_document *again = NULL;
		if (sc_document_parse(d->data, d->len, sc_document_media_type(d), "doc", &l, &again, NULL) <
		            0 ||
		    !sc_digest_equal(&again->digest, &d->digest) || again->kind != d->kind)
			__builtin_trap();
		sc_document_free(again);
		for (size_t i = 0; i < d->n_layers; i++) {
			json_t *j = sc_descriptor_to_json(&d->layers[i]);
			sc_descriptor back;
			if (sc_descriptor_parse(j, "layer", &back, NULL) < 0)
				__builtin_trap();
			sc_descriptor_clear(&back);
			json_decref(j);
		}
	}
	sc_document_free(d);
	sconify_error_free(&err);
	return 0;
}
