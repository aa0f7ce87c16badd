/* SPDX-License-Identifier: Apache-2.0 */
#include "mediatype.h"

#include <string.h>

sc_doc_kind sc_doc_kind_of(const char *mt)
{
	if (mt == NULL)
		return SC_DOC_UNKNOWN;
	if (strcmp(mt, SC_MT_OCI_MANIFEST) == 0)
		return SC_DOC_OCI_MANIFEST;
	if (strcmp(mt, SC_MT_OCI_INDEX) == 0)
		return SC_DOC_OCI_INDEX;
	if (strcmp(mt, SC_MT_DOCKER_MANIFEST) == 0)
		return SC_DOC_DOCKER_MANIFEST;
	if (strcmp(mt, SC_MT_DOCKER_LIST) == 0)
		return SC_DOC_DOCKER_LIST;
	return SC_DOC_UNKNOWN;
}

const char *sc_doc_kind_media_type(sc_doc_kind k)
{
	switch (k) {
	case SC_DOC_OCI_MANIFEST:
		return SC_MT_OCI_MANIFEST;
	case SC_DOC_OCI_INDEX:
		return SC_MT_OCI_INDEX;
	case SC_DOC_DOCKER_MANIFEST:
		return SC_MT_DOCKER_MANIFEST;
	case SC_DOC_DOCKER_LIST:
		return SC_MT_DOCKER_LIST;
	case SC_DOC_UNKNOWN:
		break;
	}
	return NULL;
}

bool sc_doc_kind_is_index(sc_doc_kind k)
{
	return k == SC_DOC_OCI_INDEX || k == SC_DOC_DOCKER_LIST;
}

bool sc_doc_kind_is_manifest(sc_doc_kind k)
{
	return k == SC_DOC_OCI_MANIFEST || k == SC_DOC_DOCKER_MANIFEST;
}

static const struct {
	const char *mt;
	sc_layer_type t;
} layer_types[] = {
        {SC_MT_OCI_LAYER, {SC_COMP_NONE, false, false, false}},
        {SC_MT_OCI_LAYER_GZIP, {SC_COMP_GZIP, false, false, false}},
        {SC_MT_OCI_LAYER_ZSTD, {SC_COMP_ZSTD, false, false, false}},
        {SC_MT_OCI_LAYER_ND, {SC_COMP_NONE, false, true, false}},
        {SC_MT_OCI_LAYER_ND_GZIP, {SC_COMP_GZIP, false, true, false}},
        {SC_MT_OCI_LAYER_ND_ZSTD, {SC_COMP_ZSTD, false, true, false}},
        {SC_MT_DOCKER_LAYER_GZIP, {SC_COMP_GZIP, true, false, true}},
        {SC_MT_DOCKER_FOREIGN_GZIP, {SC_COMP_GZIP, true, true, true}},
        {SC_MT_DOCKER_LAYER, {SC_COMP_NONE, true, false, false}},
};

bool sc_layer_type_parse(const char *mt, sc_layer_type *ret)
{
	for (size_t i = 0; i < sizeof(layer_types) / sizeof(layer_types[0]); i++)
		if (strcmp(mt, layer_types[i].mt) == 0) {
			*ret = layer_types[i].t;
			return true;
		}
	return false;
}

const char *sc_layer_media_type(bool docker, sc_compression c, bool nondistributable)
{
	if (docker) {
		switch (c) {
		case SC_COMP_GZIP:
			return nondistributable ? SC_MT_DOCKER_FOREIGN_GZIP : SC_MT_DOCKER_LAYER_GZIP;
		case SC_COMP_NONE:
			return nondistributable ? NULL : SC_MT_DOCKER_LAYER;
		case SC_COMP_ZSTD:
			return NULL;
		}
		return NULL;
	}
	switch (c) {
	case SC_COMP_GZIP:
		return nondistributable ? SC_MT_OCI_LAYER_ND_GZIP : SC_MT_OCI_LAYER_GZIP;
	case SC_COMP_ZSTD:
		return nondistributable ? SC_MT_OCI_LAYER_ND_ZSTD : SC_MT_OCI_LAYER_ZSTD;
	case SC_COMP_NONE:
		return nondistributable ? SC_MT_OCI_LAYER_ND : SC_MT_OCI_LAYER;
	}
	return NULL;
}

/* RFC 6838 as the image-spec's schema restricts it:
 * ^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$ */
static bool restricted_name(const char *s, size_t n)
{
	if (n == 0 || n > 127)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (alnum)
			continue;
		if (i == 0 || strchr("!#$&^_.+-", c) == NULL || c == '\0')
			return false;
	}
	return true;
}

bool sc_media_type_is_image_config(const char *mt)
{
	return strcmp(mt, SC_MT_OCI_CONFIG) == 0 || strcmp(mt, SC_MT_DOCKER_CONFIG) == 0;
}

bool sc_media_type_valid(const char *mt)
{
	const char *slash = strchr(mt, '/');
	if (slash == NULL)
		return false;
	return restricted_name(mt, (size_t)(slash - mt)) && restricted_name(slash + 1, strlen(slash + 1));
}
