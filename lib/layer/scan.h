/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading one layer (an uncompressed tar stream) with libarchive: every entry
 * is validated and normalised before anyone sees it, every byte of the stream
 * can be passed on unchanged (so a recompressing copy keeps the diff_id), and
 * the diff_id is computed in the same pass. The rules are in docs/layers.md.
 */
#ifndef SC_LAYER_SCAN_H
#define SC_LAYER_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/stream.h"
#include "digest/digest.h"
#include "sconify.h"

struct archive_entry;

typedef enum {
	SC_ENTRY_FILE,
	SC_ENTRY_DIR,
	SC_ENTRY_SYMLINK,
	SC_ENTRY_HARDLINK,
	SC_ENTRY_CHAR,
	SC_ENTRY_BLOCK,
	SC_ENTRY_FIFO,
} sc_entry_type;

typedef enum {
	SC_WH_NONE = 0,
	SC_WH_FILE,   /* ".wh.<name>": removes parent/<name> of lower layers */
	SC_WH_OPAQUE, /* ".wh..wh..opq": hides the lower layers' children of parent */
	SC_WH_META,   /* other ".wh..wh.*" (aufs bookkeeping): carries nothing, ignored */
} sc_whiteout;

typedef struct {
	/* Normalised: relative to the root, no "." or empty components, no leading
	 * or trailing '/'; the root itself is "". */
	const char *path;
	const char *raw_path; /* as stored in the tar, for messages */
	sc_entry_type type;
	uint64_t size; /* data bytes of a regular file */
	uint32_t mode; /* permission bits incl. setuid/setgid/sticky */
	uint64_t uid, gid;
	int64_t mtime;
	uint32_t devmajor, devminor;
	/* SYMLINK: the target exactly as stored. HARDLINK: the target normalised
	 * like path. NULL otherwise. */
	const char *link;
	sc_whiteout whiteout;
	/* SC_WH_FILE: normalised path the whiteout removes; SC_WH_OPAQUE: the
	 * directory it makes opaque ("" for the root). NULL otherwise. */
	const char *whiteout_target;
	size_t n_xattrs;
	/* Where the entry lies in the stream: its first header block (extended
	 * headers included) and its data, which is followed by zeros up to the
	 * next multiple of 512. */
	uint64_t offset, data_offset;
	struct archive_entry *ae; /* the raw entry, valid during the callback only */
} sc_layer_entry;

/* Called once per entry, in tar order. Returning < 0 stops the scan with err;
 * returning SC_SCAN_WANT_DATA for a regular file (with on_data set) hands its
 * data to on_data before the next entry is read. */
typedef int (*sc_layer_entry_fn)(void *userdata, const sc_layer_entry *e, sconify_error_t *err);
#define SC_SCAN_WANT_DATA 1
/* A piece of the data of the entry whose on_entry asked for it, in order;
 * the pieces add up to its size. Returning < 0 stops the scan with err. */
typedef int (*sc_layer_data_fn)(void *userdata, const void *buf, size_t len, sconify_error_t *err);

typedef struct {
	const sconify_limits_t *limits; /* filled */
	sc_layer_entry_fn on_entry;     /* may be NULL; sees whiteouts too */
	sc_layer_data_fn on_data;       /* may be NULL */
	void *userdata;
	sc_writer *tee;   /* receives every byte of the stream, in order; may be NULL */
	const char *what; /* names the layer in messages, e.g. "layer sha256:ab..." */
} sc_layer_scan_opts;

/* A numeric header field as libarchive reads it: octal (leading blanks
 * skipped, ending at the first non-digit) or GNU base-256; false when it
 * does not fit 64 bits or is negative. */
bool sc_tar_number(const unsigned char *field, size_t width, uint64_t *ret);

/* Reads r (an uncompressed tar stream, not owned) to its very end. Fails on the
 * first entry that breaks a rule, with a message naming the layer, the entry (as
 * stored, quoted) and the problem ("<what>: entry `<raw>': <problem>", the
 * phrases of docs/layers.md; kinds INVALID, LIMIT for caps, UNSUPPORTED for
 * entry types and sparse files). Errors of r and of the tee are passed on
 * unchanged; an error of on_entry gets "<what>: " in front. The tee is not
 * finished. An empty stream is an empty layer. On success, *ret_diff_id is the
 * sha256 of all bytes read and *ret_size their count (either may be NULL). */
int sc_layer_scan(sc_reader *r, const sc_layer_scan_opts *o, sc_digest *ret_diff_id, uint64_t *ret_size,
                  sconify_error_t *err);

#endif
