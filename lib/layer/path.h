/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lexical path rules for layer entries, shared by the scanner and the tree:
 * normalising entry names and hard link targets, classifying whiteouts,
 * checking that a relative symlink target stays inside the root, and
 * cleaning symlink targets the way containerd joins them. No file system
 * is touched. The rules are in docs/layers.md.
 *
 * Failing functions make an error whose message is only the problem
 * ("path has a `..' component"); callers put the layer and entry in front.
 */
#ifndef SC_LAYER_PATH_H
#define SC_LAYER_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"
#include "sconify.h"

/* Normalises a path as stored in a tar header: leading "./" and "//", "/./"
 * and a trailing '/' go away; ".", "./" and the like are the root (""). Fails
 * on an empty or absolute path, a ".." component, more than
 * limits->max_path_bytes bytes or more than limits->max_path_depth components.
 * *ret_path is malloc'd. */
int sc_layer_path_normalize(const char *raw, const sconify_limits_t *limits, char **ret_path,
                            sconify_error_t *err);

/* True if the relative symlink target, read from the directory holding the
 * normalised entry path, climbs above the root lexically. Absolute targets
 * never do (they resolve from the container's root). */
bool sc_layer_symlink_escapes(const char *entry_path, const char *target);

typedef enum {
	SC_PATH_WH_NONE = 0,
	SC_PATH_WH_FILE,
	SC_PATH_WH_OPAQUE,
	SC_PATH_WH_META,
} sc_path_whiteout;

/* Classifies a normalised path by its last component. For FILE, *ret_target
 * is parent/<name>; for OPAQUE, the parent directory ("" for the root); NULL
 * otherwise (malloc'd). A bare ".wh." or ".wh.." / ".wh..." fails with
 * "invalid whiteout". */
int sc_layer_path_whiteout(const char *path, sc_path_whiteout *ret_kind, char **ret_target,
                           sconify_error_t *err);

/* Cleans a symlink target lexically as Go's filepath.Clean does, keeping the
 * leading ".." of a relative target: out receives the components joined by
 * '/' (no leading or trailing '/', "" for none), *ret_absolute whether it
 * started with '/' (then every ".." is dropped: ".." at the root is the
 * root) and *ret_up the number of leading ".." of a relative target, which
 * are not written to out. */
void sc_layer_path_clean(const char *target, size_t len, sc_buf *out, bool *ret_absolute, size_t *ret_up);

/* Iterates over the components of s[0..len) split at slashes, skipping
 * empty ones: returns false at the end, else sets *ret_comp and *ret_len and moves *pos. */
bool sc_layer_path_next(const char *s, size_t len, size_t *pos, const char **ret_comp, size_t *ret_len);

#endif
