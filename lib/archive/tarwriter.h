/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writing a tar archive of files whose sizes are not known in advance (blobs
 * being recompressed): the header is written with a placeholder and patched
 * once the content ended, so the target must be a seekable file. Output is
 * deterministic: mtime 0, uid/gid 0, user/group names empty, entries in the
 * order written; names (and symlink targets) over 100 bytes get a pax 'x'
 * header; sizes from 8 GiB on use GNU base-256 in the size field, which GNU
 * tar, libarchive and Go's archive/tar read. Used for the oci-archive and
 * docker-archive containers, never for layers.
 */
#ifndef SC_TARWRITER_H
#define SC_TARWRITER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/stream.h"

typedef struct sc_tar_writer sc_tar_writer;

/* Writes into fd (not owned) from its offset 0, with pwrite: the fd's own
 * offset is neither used nor moved. */
sc_tar_writer *sc_tar_writer_new(int fd);
void sc_tar_writer_free(sc_tar_writer *w);
SC_DEFINE_CLEANUP(sc_tar_writer *, sc_tar_writer_free)
#define cleanup_tar_writer _cleanup_(sc_tar_writer_freep)

/* Names must be relative, non-empty and free of "." and ".." components and
 * repeated slashes (SCONIFY_ERR_INVALID otherwise); directories get their
 * trailing "/" in the archive. Calls made while a file is open, or after a
 * failure or sc_tar_writer_finish, fail with SCONIFY_ERR_USAGE. */
int sc_tar_writer_add_dir(sc_tar_writer *w, const char *name, mode_t mode, sconify_error_t *err);
int sc_tar_writer_add_symlink(sc_tar_writer *w, const char *name, const char *target, sconify_error_t *err);
int sc_tar_writer_add_bytes(sc_tar_writer *w, const char *name, mode_t mode, const void *data, size_t len,
                            sconify_error_t *err);
/* Starts a file of unknown size: write its content into *ret_content (owned by
 * the tar writer, valid until sc_tar_writer_end_file; do not free it), then end
 * it. Content goes straight to the fd. Only one file may be open at a time. */
int sc_tar_writer_begin_file(sc_tar_writer *w, const char *name, mode_t mode, sc_writer **ret_content,
                             sconify_error_t *err);
/* Pads the content to a block and patches its header's size and checksum. */
int sc_tar_writer_end_file(sc_tar_writer *w, sconify_error_t *err);
/* Drops the open file (a blob that failed verification): the archive goes
 * on as if sc_tar_writer_begin_file had not been called. No-op when no file
 * is open. */
void sc_tar_writer_abort_file(sc_tar_writer *w);
/* Writes the end-of-archive blocks and truncates the file after them. The
 * caller then syncs and renames the file. */
int sc_tar_writer_finish(sc_tar_writer *w, sconify_error_t *err);

/* Encodes v into a numeric header field of width bytes: octal with a NUL
 * terminator when it fits, else GNU base-256 (exposed for the tests). */
void sc_tar_put_number(char *field, size_t width, uint64_t v);

#endif
