/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test tool: prints the final file tree of a stack of layer blobs (bottom
 * first; gzip, zstd or plain tar), one JSON object per line, or the error.
 *   layer_tree [--max-entries N] LAYER...
 * Exit 0 on success, 1 on failure (the message on stderr).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "layer/compress.h"
#include "layer/tree.h"

static int print_item(void *userdata, const sc_tree_item *it, sconify_error_t *err)
{
	(void)userdata, (void)err;
	static const char *const types[] = {"file", "dir", "symlink", "hardlink", "char", "block", "fifo"};
	printf("{\"path\":\"%s\",\"type\":\"%s\",\"mode\":%u,\"size\":%llu,\"layer\":%u,\"nlink\":%u",
	       it->path, types[it->type], it->mode, (unsigned long long)it->size, it->layer, it->nlink);
	if (it->link)
		printf(",\"link\":\"%s\"", it->link);
	printf("}\n");
	return 0;
}

int main(int argc, char **argv)
{
	sconify_limits_t limits = {0};
	int i = 1;
	if (argc > 2 && strcmp(argv[1], "--max-entries") == 0) {
		limits.max_entries = strtoull(argv[2], NULL, 10);
		i = 3;
	}
	sc_limits_fill(&limits);
	sconify_error_t err = NULL;
	cleanup_tree sc_tree *t = sc_tree_new(&limits);
	for (unsigned layer = 0; i < argc; i++, layer++) {
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			perror(argv[i]);
			return 1;
		}
		sc_compression c;
		sc_reader *sniffed = NULL;
		cleanup_free char *what = xasprintf("layer `%s'", argv[i]);
		if (sc_compression_sniff(sc_fd_reader_new(fd, true, 0, -1), &c, &sniffed, &err) < 0)
			goto fail;
		cleanup_reader sc_reader *plain = sc_decompress_reader_new(sniffed, c, &limits, what);
		if (sc_tree_begin_layer(t, layer, &err) < 0 || sc_tree_add_layer(t, plain, what, &err) < 0)
			goto fail;
	}
	if (sc_tree_walk(t, print_item, NULL, &err) < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "layer_tree: error: %s\n", sconify_error_message(err));
	sconify_error_free(&err);
	return 1;
}
