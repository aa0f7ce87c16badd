/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The final file tree of a layer stack, computed from tar headers alone (no
 * extraction): what a container sees after every layer is applied with the
 * image-spec's rules (whiteouts, opaque directories, replacement), paths
 * resolved inside the root as containerd resolves them. docs/layers.md
 * states the rules.
 */
#ifndef SC_LAYER_TREE_H
#define SC_LAYER_TREE_H

#include <stdint.h>

#include "core/stream.h"
#include "layer/scan.h"
#include "sconify.h"

typedef struct sc_tree sc_tree;

typedef struct {
	const char *path;   /* resolved, normalised ("" is the root) */
	sc_entry_type type; /* never HARDLINK: a hard link is a node sharing an inode */
	uint32_t mode;
	uint64_t uid, gid, size;
	int64_t mtime;
	const char *link; /* symlink target as stored, else NULL */
	unsigned layer;   /* index of the layer that last created or replaced it */
	uint64_t inode;   /* equal for names joined by hard links */
	/* The entry that made the content: 1 for the first non-root entry
	 * applied, counting up; unlike inode never reused, so it can name an
	 * entry's content after the tree changed. */
	uint64_t serial;
	unsigned nlink; /* names sharing inode that are in the tree */
	size_t n_xattrs;
} sc_tree_item;

sc_tree *sc_tree_new(const sconify_limits_t *limits);
void sc_tree_free(sc_tree *t);
SC_DEFINE_CLEANUP(sc_tree *, sc_tree_free)
#define cleanup_tree _cleanup_(sc_tree_freep)

/* Starts layer number layer (0 for the bottom, increasing by one). */
int sc_tree_begin_layer(sc_tree *t, unsigned layer, sconify_error_t *err);
/* Applies one entry of the current layer; has the signature of an
 * sc_layer_entry_fn with t as userdata. */
int sc_tree_apply(void *t, const sc_layer_entry *e, sconify_error_t *err);
/* Finishes the current layer. */
int sc_tree_end_layer(sc_tree *t, sconify_error_t *err);

/* Scans layer (an uncompressed tar stream, not owned) and applies it: as the
 * layer the caller began with sc_tree_begin_layer(), else as the next one.
 * Ends the layer. After any failure the tree is only fit to be freed. */
int sc_tree_add_layer(sc_tree *t, sc_reader *layer, const char *what, sconify_error_t *err);

/* Resolves a path the way the tree applies entries: every component but the
 * last follows symlinks inside the root. path may be absolute or hold ".."
 * (cleaned lexically first, ".." at the root is the root); past a missing
 * component the rest is kept as it is. ret_path is malloc'd. */
int sc_tree_resolve(sc_tree *t, const char *path, char **ret_path, sconify_error_t *err);
/* The node at an already resolved path, or NULL. Valid until the tree changes. */
const sc_tree_item *sc_tree_lookup(sc_tree *t, const char *path);
/* Calls fn for every node in byte order of path, the root first. */
int sc_tree_walk(sc_tree *t, int (*fn)(void *userdata, const sc_tree_item *it, sconify_error_t *err),
                 void *userdata, sconify_error_t *err);
/* Nodes in the tree, the root included. */
size_t sc_tree_count(sc_tree *t);

#endif
