/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tree over up to four layers: the input is split at each 0xFF 0xFE
 * marker, every part is scanned as the next layer and applied, then the tree
 * is walked. Checks that the walk is in byte order of the path, that it
 * counts what sc_tree_count says, that every node can be looked up again and
 * that hard-linked names agree on their link count.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "layer/tree.h"

#include "fuzz-tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NODES 128

struct walk {
	sc_tree *t;
	char *prev;
	size_t count;
	uint64_t inode[MAX_NODES];
	unsigned nlink[MAX_NODES];
};

static int check_item(void *userdata, const sc_tree_item *it, sconify_error_t *err)
{
	(void)err;
	struct walk *w = userdata;
	if (w->prev && strcmp(w->prev, it->path) >= 0)
		__builtin_trap();
	if (it->type == SC_ENTRY_HARDLINK || it->nlink == 0)
		__builtin_trap();
	if ((it->type == SC_ENTRY_SYMLINK) != (it->link != NULL))
		__builtin_trap();
	free(w->prev);
	w->prev = xstrdup(it->path);
	if (w->count < MAX_NODES) {
		w->inode[w->count] = it->inode;
		w->nlink[w->count] = it->nlink;
	}
	w->count++;
	/* the walk's path leads back to the same node */
	uint64_t inode = it->inode;
	unsigned nlink = it->nlink;
	const sc_tree_item *again = sc_tree_lookup(w->t, w->prev);
	if (again == NULL || again->inode != inode || again->nlink != nlink)
		__builtin_trap();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	uint8_t *data = xmemdup(in, size ? size : 1);
	sconify_limits_t limits = {
	        .max_entries = 64,
	        .max_path_bytes = 256,
	        .max_path_depth = 16,
	        .max_pax_bytes = 2048,
	        .max_trailing_bytes = 4096,
	};
	sc_limits_fill(&limits);
	sc_tree *t = sc_tree_new(&limits);
	sconify_error_t err = NULL;
	size_t start = 0;
	int ok = 0;
	for (int layer = 0; layer < 4 && ok == 0; layer++) {
		size_t end = size;
		for (size_t i = start; i + 1 < size; i++) {
			if (data[i] == 0xff && data[i + 1] == 0xfe) {
				end = i;
				break;
			}
		}
		if (layer == 3)
			end = size;
		fuzz_fix_tar_checksums(data + start, end - start, true);
		sc_reader *r = sc_mem_reader_new(data + start, end - start);
		ok = sc_tree_add_layer(t, r, "layer fuzz", &err);
		sc_reader_free(r);
		if (end >= size)
			break;
		start = end + 2;
	}
	if (ok == 0) {
		struct walk w = {.t = t};
		if (sc_tree_walk(t, check_item, &w, &err) < 0 || w.count != sc_tree_count(t))
			__builtin_trap();
		/* nlink counts the walked names that share the inode */
		for (size_t i = 0; i < w.count && i < MAX_NODES; i++) {
			unsigned names = 0;
			for (size_t j = 0; j < w.count && j < MAX_NODES; j++)
				names += w.inode[j] == w.inode[i];
			if (w.count <= MAX_NODES && names != w.nlink[i])
				__builtin_trap();
		}
		free(w.prev);
		/* resolving any walked path again must not fail in odd ways */
		char *res = NULL;
		if (sc_tree_resolve(t, "a/b/../c", &res, &err) == 0)
			free(res);
	} else if (err == NULL) {
		__builtin_trap();
	}
	sconify_error_free(&err);
	sc_tree_free(t);
	free(data);
	return 0;
}
