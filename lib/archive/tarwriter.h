/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writing a tar archive of files whose sizes are not known in advance (blobs
 * being recompressed): the header is written with a placeholder and patched
 * once the content ended, so the target must be a seekable file. Output is
 * deterministic: mtime 0, uid/gid 0, user/group names empty, entries in the
 * order written; names over 100 bytes get a pax 'x' header. Used for the
 * oci-archive and docker-archive containers, never for layers.
 */
#ifndef SC_TARWRITER_H
#define SC_TARWRITER_H

#include <stddef.h>
#include <sys/types.h>

#include "core/stream.h"

typedef struct sc_tar_writer sc_tar_writer;

/* Writes into fd (not owned) from its offset 0. */
sc_tar_writer *sc_tar_writer_new(int fd);
void sc_tar_writer_free(sc_tar_writer *w);
SC_DEFINE_CLEANUP(sc_tar_writer *, sc_tar_writer_free)
#define cleanup_tar_writer _cleanup_(sc_tar_writer_freep)

int sc_tar_writer_add_dir(sc_tar_writer *w, const char *name, mode_t mode, sconify_error_t *err);
int sc_tar_writer_add_symlink(sc_tar_writer *w, const char *name, const char *target, sconify_error_t *err);
int sc_tar_writer_add_bytes(sc_tar_writer *w, const char *name, mode_t mode, const void *data, size_t len,
                            sconify_error_t *err);
/* Starts a file of unknown size: write its content into *ret_content (owned by
 * the tar writer, valid until sc_tar_writer_end_file), then end it. Only one
 * file may be open at a time. */
int sc_tar_writer_begin_file(sc_tar_writer *w, const char *name, mode_t mode, sc_writer **ret_content,
                             sconify_error_t *err);
int sc_tar_writer_end_file(sc_tar_writer *w, sconify_error_t *err);
/* Writes the end-of-archive blocks. The caller then syncs and renames the file. */
int sc_tar_writer_finish(sc_tar_writer *w, sconify_error_t *err);

#endif
