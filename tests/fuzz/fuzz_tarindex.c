/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Indexes the input as a tar container, then reads every regular file and
 * looks every name up. Checks what the index promises: normalised names,
 * data inside the file, lookups that end at regular files. Each input runs
 * twice: as it is, and with the checksum of every 512-byte block made right,
 * so that mutations get past the checksum to the rest of the parser.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/tarindex.h"
#include "core/fsutil.h"
#include "core/limits.h"
#include "core/xalloc.h"

#include "fuzz-tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One unlinked temporary file, rewritten for every input. */
static int tmp_fd(void)
{
	static int fd = -1;
	if (fd < 0) {
		char *path = xasprintf("%s/fuzz_tarindex.XXXXXX", sc_tmpdir());
		fd = mkstemp(path);
		if (fd < 0)
			abort();
		unlink(path);
		free(path);
	}
	return fd;
}

static void check_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || name[0] == '/' || name[n - 1] == '/' || strstr(name, "//"))
		__builtin_trap();
	for (const char *c = name;;) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);
		if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			__builtin_trap();
		if (slash == NULL)
			break;
		c = slash + 1;
	}
}

static void read_entry(sc_tar_index *ix, const sc_tar_entry *e, uint64_t file_size)
{
	if (e->type != SC_TAR_FILE)
		return;
	if (e->offset > file_size || e->size > file_size - e->offset)
		__builtin_trap();
	sconify_error_t err = NULL;
	sc_reader *r = sc_tar_index_open_entry(ix, e);
	char buf[4096];
	uint64_t total = 0;
	ssize_t n;
	while ((n = sc_reader_read(r, buf, sizeof(buf), &err)) > 0)
		total += (uint64_t)n;
	if (n < 0 || total != e->size)
		__builtin_trap();
	sc_reader_free(r);
	sconify_error_free(&err);
}

static void run(const uint8_t *data, size_t size)
{
	int fd = tmp_fd();
	if (ftruncate(fd, 0) < 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();

	sconify_limits_t limits = {.max_entries = 2000, .max_pax_bytes = 8192, .max_path_bytes = 1024};
	sc_limits_fill(&limits);
	sconify_error_t err = NULL;
	sc_tar_index *ix = NULL;
	if (sc_tar_index_open_fd(dup(fd), "fuzz", &limits, &ix, &err) == 0) {
		size_t count = sc_tar_index_count(ix);
		for (size_t i = 0; i < count; i++) {
			const sc_tar_entry *e = sc_tar_index_entry(ix, i);
			check_name(e->name);
			read_entry(ix, e, size);
			const sc_tar_entry *found = NULL;
			if (sc_tar_index_lookup(ix, e->name, &found, &err) == 0) {
				if (found->type != SC_TAR_FILE)
					__builtin_trap();
				read_entry(ix, found, size);
			}
			sconify_error_free(&err);
			if (e->link) /* link targets are hostile names too */
				if (sc_tar_index_lookup(ix, e->link, &found, &err) == 0 &&
				    found->type != SC_TAR_FILE)
					__builtin_trap();
			sconify_error_free(&err);
		}
		sc_tar_index_free(ix);
	} else if (err == NULL) {
		__builtin_trap(); /* a failure always says why */
	}
	sconify_error_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size);
	if (size >= 512) {
		uint8_t *copy = xmemdup(data, size);
		fuzz_fix_tar_checksums(copy, size, false);
		run(copy, size);
		free(copy);
	}
	return 0;
}
