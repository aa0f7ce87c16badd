/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Random access to the files inside a plain tar archive: the container of
 * oci-archive and docker-archive (not image layers: those go through
 * layer/scan.h). One pass over the headers builds an index; entries are then
 * read with pread, so blobs can be read in any order and in parallel.
 */
#ifndef SC_TARINDEX_H
#define SC_TARINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/stream.h"
#include "sconify.h"

typedef enum {
	SC_TAR_FILE,
	SC_TAR_DIR,
	SC_TAR_SYMLINK,
	SC_TAR_HARDLINK,
	SC_TAR_OTHER,
} sc_tar_type;

typedef struct {
	char *name; /* normalised: no leading "./" or "/", no trailing "/", no "." components */
	sc_tar_type type;
	uint64_t size;   /* data bytes (SC_TAR_FILE) */
	uint64_t offset; /* of the data inside the (uncompressed) archive file */
	char *link;      /* SYMLINK / HARDLINK target as stored, else NULL */
} sc_tar_entry;

typedef struct sc_tar_index sc_tar_index;

/* Indexes the archive at path. An archive compressed as a whole (gzip or zstd,
 * as `docker save | gzip` makes) is first decompressed into an unlinked
 * temporary file under sc_tmpdir(), bounded by limits->max_layer_bytes.
 * Understands ustar, GNU (long names 'L'/'K') and pax ('x'; 'g' ignored)
 * headers, numeric fields in octal and base-256, and checks header checksums.
 * Fails (SCONIFY_ERR_INVALID, naming path) on a malformed or truncated
 * archive, a name that is absolute or contains "..", and a duplicate file name;
 * (SCONIFY_ERR_LIMIT) past limits->max_entries entries or a pax/long-name header
 * over limits->max_pax_bytes. limits must be filled. */
int sc_tar_index_open(const char *path, const sconify_limits_t *limits, sc_tar_index **ret,
                      sconify_error_t *err);
void sc_tar_index_free(sc_tar_index *ix);
SC_DEFINE_CLEANUP(sc_tar_index *, sc_tar_index_free)
#define cleanup_tar_index _cleanup_(sc_tar_index_freep)

/* Finds the regular file called name (normalised like entry names), following
 * symlinks (relative to the link's directory, or absolute from the archive
 * root) and hard links, at most 16 hops. A link that leaves the archive root
 * fails (SCONIFY_ERR_INVALID); a missing name fails with SCONIFY_ERR_NOT_FOUND. */
int sc_tar_index_lookup(sc_tar_index *ix, const char *name, const sc_tar_entry **ret, sconify_error_t *err);

/* A reader over the data of a regular-file entry (shares the index's fd; the
 * index must outlive the reader). */
sc_reader *sc_tar_index_open_entry(sc_tar_index *ix, const sc_tar_entry *e);

size_t sc_tar_index_count(const sc_tar_index *ix);
const sc_tar_entry *sc_tar_index_entry(const sc_tar_index *ix, size_t i);

#endif
