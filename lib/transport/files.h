/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Read access to the files of a layout, wherever it lies: a directory (oci:)
 * or a tar archive (oci-archive:, docker-archive:).
 */
#ifndef SC_FILES_H
#define SC_FILES_H

#include <stdint.h>

#include "core/stream.h"
#include "sconify.h"

typedef struct sc_files sc_files;

int sc_files_open_dir(const char *dir, sc_files **ret, sconify_error_t *err);
int sc_files_open_tar(const char *path, const sconify_limits_t *limits, sc_files **ret, sconify_error_t *err);
void sc_files_free(sc_files *f);
SC_DEFINE_CLEANUP(sc_files *, sc_files_free)
#define cleanup_files _cleanup_(sc_files_freep)

/* Opens the regular file rel (relative to the layout's root). In a directory,
 * rel must not lead through a symlink at its last component, and anything but
 * a regular file (a FIFO, a device) is refused. NOT_FOUND when absent. */
int sc_files_open(sc_files *f, const char *rel, sc_reader **ret, uint64_t *ret_size, sconify_error_t *err);
/* Reads a whole file of at most cap bytes. what names it in messages. */
int sc_files_read(sc_files *f, const char *rel, size_t cap, const char *what, char **ret_data,
                  size_t *ret_len, sconify_error_t *err);
/* Whether rel exists. */
bool sc_files_exists(sc_files *f, const char *rel);

#endif
