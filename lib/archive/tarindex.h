/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Random access to the files inside a plain tar archive: the container of
 * oci-archive and docker-archive (not image layers: those go through
 * layer/scan.h). One pass over the headers builds an index of names (never
 * data); entries are then read with pread, so blobs can be read in any order
 * and in parallel.
 *
 * Our own header parser rather than libarchive's, because the index needs the
 * exact offset of every entry's data inside the file.
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
	SC_TAR_OTHER, /* devices, fifos, sparse files, unknown types: never readable */
} sc_tar_type;

typedef struct {
	char *name; /* normalised: no leading "./" or "/", no trailing "/", no "." components */
	sc_tar_type type;
	uint64_t size;   /* data bytes (SC_TAR_FILE), else 0 */
	uint64_t offset; /* of the data inside the archive file (SC_TAR_FILE) */
	char *link;      /* SYMLINK / HARDLINK target as stored, else NULL */
} sc_tar_entry;

typedef struct sc_tar_index sc_tar_index;

/* Indexes the archive open at fd (owned from the call on, closed by
 * sc_tar_index_free or on failure; it must be a regular file, read with
 * pread only). what names the archive in messages ("docker-archive `x.tar'").
 *
 * Understands ustar, GNU (long names 'L'/'K', base-256 numbers) and pax ('x'
 * records path, linkpath, size; 'g' ignored) headers and v7 headers; checks
 * every header checksum (signed or unsigned sum, as GNU tar). The archive ends
 * at two zero blocks, at one zero block and EOF, or at EOF on a block
 * boundary; what follows two zero blocks is not read, a header after a lone
 * zero block is refused. Sparse entries ('S' or GNU.sparse pax keys) are
 * SC_TAR_OTHER. Root entries ("." or "/") that are directories are skipped.
 *
 * Fails with SCONIFY_ERR_INVALID, naming what, on a checksum mismatch
 * ("checksum"), data or headers cut short ("truncated"), a malformed pax
 * record, a lone zero block followed by a header ("data after the end of
 * the archive"), a name with a ".." component ("outside the archive"), two entries
 * of one name unless both are directories ("duplicate"), and a directory,
 * symlink or device that declares data; with SCONIFY_ERR_LIMIT past
 * limits->max_entries entries, a pax or long-name header over
 * limits->max_pax_bytes, or a name over limits->max_path_bytes; with
 * SCONIFY_ERR_UNSUPPORTED ("compressed archive") if the file starts with
 * gzip, zstd, xz or bzip2 magic (whole-archive decompression is the caller's
 * business). limits must be filled. */
int sc_tar_index_open_fd(int fd, const char *what, const sconify_limits_t *limits, sc_tar_index **ret,
                         sconify_error_t *err);
/* Opens path read-only and indexes it as above, naming it "`path'". */
int sc_tar_index_open(const char *path, const sconify_limits_t *limits, sc_tar_index **ret,
                      sconify_error_t *err);
void sc_tar_index_free(sc_tar_index *ix);
SC_DEFINE_CLEANUP(sc_tar_index *, sc_tar_index_free)
#define cleanup_tar_index _cleanup_(sc_tar_index_freep)

/* Finds the regular file called name (normalised like entry names), resolving
 * it component by component as a file system would: symlinks relative to the
 * link's directory (absolute targets from the archive root), hard links from
 * the archive root, at most 16 links in all; directories need no entry of
 * their own. A ".." in name or a link that leaves the archive root fails with
 * SCONIFY_ERR_INVALID "outside the archive"; more than 16 links with
 * SCONIFY_ERR_INVALID "too many levels of symbolic links"; a missing name (or
 * a parent that is a file) with SCONIFY_ERR_NOT_FOUND "not found"; a name
 * that resolves to something other than a regular file with
 * SCONIFY_ERR_INVALID "not a regular file". The index is read-only after
 * sc_tar_index_open_fd: lookups may run from several threads. */
int sc_tar_index_lookup(sc_tar_index *ix, const char *name, const sc_tar_entry **ret, sconify_error_t *err);

/* A reader over the data of a regular-file entry (pread on the index's fd;
 * the index must outlive the reader; any number may be open at once, from
 * several threads). A non-file entry gives an empty reader. */
sc_reader *sc_tar_index_open_entry(sc_tar_index *ix, const sc_tar_entry *e);

/* The entries in archive order (root directories and pax/GNU meta headers
 * left out, a repeated directory listed once). */
size_t sc_tar_index_count(const sc_tar_index *ix);
const sc_tar_entry *sc_tar_index_entry(const sc_tar_index *ix, size_t i);

#endif
