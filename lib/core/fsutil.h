/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File system helpers, POSIX only (the CLI builds on macOS and MSYS2).
 * Everything that publishes a file does it atomically: write a temporary
 * name in the same directory, fsync, rename, fsync the directory.
 */
#ifndef SC_FSUTIL_H
#define SC_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

int sc_read_file(const char *path, size_t cap, char **ret_data, size_t *ret_len, sconify_error_t *err);
/* Creates path and its missing parents with mode. */
int sc_mkdir_p(const char *path, mode_t mode, sconify_error_t *err);
/* Opens a new temporary file "<dir>/.<prefix>XXXXXX" (mode 0600). */
int sc_tmpfile(const char *dir, const char *prefix, char **ret_path, int *ret_fd, sconify_error_t *err);
/* fsyncs fd, renames tmp to path and fsyncs path's directory. */
int sc_commit_tmpfile(int fd, const char *tmp, const char *path, sconify_error_t *err);
/* Writes data to path atomically. */
int sc_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, sconify_error_t *err);
int sc_fsync_dir(const char *dir, sconify_error_t *err);
/* Removes path and everything below it, never following symlinks. Missing is fine. */
int sc_rm_rf(const char *path, sconify_error_t *err);
bool sc_path_exists(const char *path);
char *sc_dirname(const char *path);
char *sc_path_join(const char *a, const char *b);
/* $TMPDIR or /tmp */
const char *sc_tmpdir(void);

#endif
