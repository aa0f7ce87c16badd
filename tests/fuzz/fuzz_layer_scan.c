/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layer scanner over one input taken as an uncompressed layer, with small
 * limits so that the limit paths are reached. Checks what must hold for any
 * input: the tee sees every byte, the diff_id is their sha256, every entry
 * handed out is normalised.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "digest/digest.h"
#include "layer/scan.h"

#include "fuzz-tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_entry(void *userdata, const sc_layer_entry *e, sconify_error_t *err)
{
	(void)userdata, (void)err;
	const char *p = e->path;
	size_t n = strlen(p);
	/* normalised: relative, no empty, "." or ".." components, no trailing '/' */
	if (p[0] == '/' || (n > 0 && p[n - 1] == '/') || strstr(p, "//") || strcmp(p, ".") == 0 ||
	    strcmp(p, "..") == 0 || strncmp(p, "./", 2) == 0 || strncmp(p, "../", 3) == 0 ||
	    strstr(p, "/./") || strstr(p, "/../") || (n >= 2 && strcmp(p + n - 2, "/.") == 0) ||
	    (n >= 3 && strcmp(p + n - 3, "/..") == 0))
		__builtin_trap();
	if (p[0] == '\0' && e->type != SC_ENTRY_DIR)
		__builtin_trap();
	if (e->type == SC_ENTRY_HARDLINK && (e->link == NULL || e->link[0] == '/' || e->link[0] == '\0'))
		__builtin_trap();
	if (e->type == SC_ENTRY_SYMLINK && (e->link == NULL || e->link[0] == '\0'))
		__builtin_trap();
	if (e->whiteout == SC_WH_FILE && (e->whiteout_target == NULL || e->whiteout_target[0] == '\0'))
		__builtin_trap();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	uint8_t *data = xmemdup(in, size ? size : 1);
	fuzz_fix_tar_checksums(data, size, true);
	sconify_limits_t limits = {
	        .max_entries = 64,
	        .max_path_bytes = 256,
	        .max_path_depth = 16,
	        .max_pax_bytes = 2048,
	        .max_trailing_bytes = 4096,
	};
	sc_limits_fill(&limits);
	sc_reader *r = sc_mem_reader_new(data, size);
	sc_writer *w = sc_hash_writer_new(NULL, SC_SHA256);
	sc_layer_scan_opts o = {.limits = &limits, .on_entry = check_entry, .tee = w, .what = "layer fuzz"};
	sconify_error_t err = NULL;
	sc_digest d, teed, want;
	uint64_t n = 0, teed_n = 0;
	if (sc_layer_scan(r, &o, &d, &n, &err) == 0) {
		sc_hash_writer_result(w, &teed, &teed_n);
		sc_digest_of(SC_SHA256, data, size, &want);
		if (n != size || teed_n != size || !sc_digest_equal(&d, &want) ||
		    !sc_digest_equal(&teed, &want))
			__builtin_trap();
	} else if (err == NULL || sconify_error_message(err)[0] == '\0') {
		__builtin_trap();
	}
	sconify_error_free(&err);
	sc_writer_free(w);
	sc_reader_free(r);
	free(data);
	return 0;
}
