/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pass 1 of a conversion (DESIGN §3): reads every layer's headers, builds the
 * final file tree and decides, entry by entry, what pass 2 does so that no
 * plaintext of a protected file survives in any layer: content visible in the
 * final tree under protected names is encrypted (or hashed, for the
 * authenticated region) where its data entry lies, whatever layer and name
 * that is; encrypted-region content nobody can see any more (replaced, deleted,
 * hidden by an opaque directory) is dropped with every hard link to it.
 * Layers without such entries are passed through untouched.
 */
#ifndef SC_CONVERT_PLAN_H
#define SC_CONVERT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/stream.h"
#include "digest/digest.h"
#include "shield/shield.h"

typedef enum {
	SC_PLAN_ENCRYPT = 1, /* data becomes ciphertext of the same length */
	SC_PLAN_HASH,        /* data kept, hashed for the authenticated region */
	SC_PLAN_DROP,        /* the entry goes, headers and data */
} sc_plan_action;

/* One tar entry pass 2 changes or reads; stream offsets of the layer. */
typedef struct {
	uint64_t offset;      /* first header block */
	uint64_t data_offset; /* data, followed by zeros to a multiple of 512 */
	uint64_t size;        /* data bytes */
	sc_plan_action action;
	size_t file; /* ENCRYPT, HASH: index into sc_plan.files */
} sc_plan_entry;

typedef struct {
	sc_plan_entry *entries; /* by offset */
	size_t n_entries;
	bool rewrite; /* holds an ENCRYPT or DROP: becomes a new blob */
} sc_plan_layer;

/* Protected content in the final tree: one file, all its names. */
typedef struct {
	sc_shield_kind kind;
	uint64_t size;
	unsigned layer; /* whose data entry holds it */
	char **names;   /* "/a/b", sorted; the first is the one the others link to */
	size_t n_names;
} sc_plan_file;

/* A symbolic link in a protected region of the final tree: the metadata
 * records it, so that the runtime follows no other link there. */
typedef struct {
	char *path;   /* "/a/b" */
	char *target; /* as stored */
} sc_plan_symlink;

typedef struct {
	sc_plan_layer *layers;
	size_t n_layers;
	sc_plan_symlink *symlinks;
	size_t n_symlinks;
	sc_plan_file *files; /* by first name */
	size_t n_files;
	uint64_t encrypt_bytes, hash_bytes;
	size_t dropped; /* entries */
} sc_plan;

void sc_plan_free(sc_plan *p);
SC_DEFINE_CLEANUP(sc_plan *, sc_plan_free)
#define cleanup_plan _cleanup_(sc_plan_freep)

typedef struct sc_planner sc_planner;

/* regions: a builder holding the regions (only region_of is used); it must
 * outlive the planner. limits: filled. */
sc_planner *sc_planner_new(const sc_shield_builder *regions, const sconify_limits_t *limits);
void sc_planner_free(sc_planner *p);
SC_DEFINE_CLEANUP(sc_planner *, sc_planner_free)
#define cleanup_planner _cleanup_(sc_planner_freep)

/* Reads the next layer (uncompressed, not owned) to its end. what names it. */
int sc_planner_add_layer(sc_planner *p, sc_reader *layer, const char *what, sc_digest *ret_diff_id,
                         sconify_error_t *err);
/* Told of every entry of the layers read, in stream order, once its headers
 * are read and before its data: the entry ends at end (its data padded to
 * 512 bytes), and encrypted says whether the name it lands at, as far as the
 * layers read so far tell, is in an encrypted region (a later hard link can
 * still bring its content into one). For work that may go ahead with the
 * bytes of a layer seen so far. fn NULL: nobody is told. */
typedef void (*sc_planner_entry_fn)(void *userdata, uint64_t end, bool encrypted);
void sc_planner_watch(sc_planner *p, sc_planner_entry_fn fn, void *userdata);

/* Where the content a path names in the final tree lies, symlinks followed
 * (the application's executable, for the measurement). */
typedef struct {
	char *path; /* resolved, absolute */
	uint32_t mode;
	unsigned layer;
	uint64_t data_offset, size;
} sc_plan_location;
void sc_plan_location_clear(sc_plan_location *l);
/* NOT_FOUND unless a regular file is there. */
int sc_planner_locate(sc_planner *p, const char *path, sc_plan_location *ret, sconify_error_t *err);

/* Before the first layer: hashes (sha256), while the layers are read, the
 * data of every regular file with an execute bit whose last name component
 * starts with name (the command's last component: "python3" also finds
 * "python3.11" behind a symlink), so that the executable the measurement
 * covers need not be read again (sc_planner_digest). */
void sc_planner_hash_executables(sc_planner *p, const char *name);
/* The sha256 of the content at loc (from sc_planner_locate) when pass 1
 * hashed it: true and *ret set, else false. */
bool sc_planner_digest(const sc_planner *p, const sc_plan_location *loc, sc_digest *ret);

/* Decides. Fails when a hard link joins names of different regions. */
int sc_planner_finish(sc_planner *p, sc_plan **ret, sconify_error_t *err);

/* The first component of path (absolute, normal) that is a symlink in the
 * final tree: 1 with *ret_at ("/a/b", malloc'd) and *ret_target (borrowed
 * from the planner), or 0 when there is none. */
int sc_planner_symlink_on(sc_planner *p, const char *path, char **ret_at, const char **ret_target);

#endif
