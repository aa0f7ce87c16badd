/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file shield (docs/shield.md): per-file chunked AES-256-GCM for the
 * `encrypted' region, per-chunk SHA-256 for the `authenticated' region, and
 * the sealed metadata that lists regions and protected files. The conversion
 * encrypts with it; the enclave runtime (linked statically: lib/core + this
 * module + OpenSSL only) verifies and decrypts with it.
 *
 * Owns: the volume key and its key file, the key schedule, the chunk format,
 * the metadata format and its seal. Secrets (keys, plaintext buffers) are
 * wiped with OPENSSL_cleanse when freed and never go into messages.
 */
#ifndef SC_SHIELD_H
#define SC_SHIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/stream.h"

#define SC_SHIELD_KEY_BYTES 32
#define SC_SHIELD_FILE_ID_BYTES 16
#define SC_SHIELD_TAG_BYTES 16  /* GCM tag of one encrypted chunk */
#define SC_SHIELD_HASH_BYTES 32 /* SHA-256 of one authenticated chunk */
#define SC_SHIELD_PIN_BYTES 32  /* SHA-256 of the sealed metadata */

#define SC_SHIELD_CHUNK_DEFAULT (64u * 1024)
#define SC_SHIELD_CHUNK_MIN 4096u /* chunk sizes are powers of two in [MIN, MAX] */
#define SC_SHIELD_CHUNK_MAX (16u * 1024 * 1024)
#define SC_SHIELD_PATH_MAX 4096u                     /* bytes of one path */
#define SC_SHIELD_REGIONS_MAX 4096u                  /* regions of one metadata */
#define SC_SHIELD_METADATA_MAX (1024u * 1024 * 1024) /* bytes of sealed metadata */
#define SC_SHIELD_FILE_SIZE_MAX (UINT64_C(1) << 62)

typedef enum {
	SC_SHIELD_NOT_PROTECTED = 0,
	SC_SHIELD_ENCRYPTED = 1,
	SC_SHIELD_AUTHENTICATED = 2,
} sc_shield_kind;

/* "not-protected", "encrypted", "authenticated" */
const char *sc_shield_kind_name(sc_shield_kind kind);
int sc_shield_kind_parse(const char *s, sc_shield_kind *ret, sconify_error_t *err);

/* ---- the volume key ---------------------------------------------------- */

typedef struct sc_shield_key sc_shield_key;

int sc_shield_key_generate(sc_shield_key **ret, sconify_error_t *err);
sc_shield_key *sc_shield_key_new(const uint8_t bytes[SC_SHIELD_KEY_BYTES]);
/* 64 lowercase hex digits (the policy's form). */
int sc_shield_key_from_hex(const char *hex, sc_shield_key **ret, sconify_error_t *err);
/* The key's bytes (for the policy's fspf_key); the caller wipes out. */
void sc_shield_key_bytes(const sc_shield_key *key, uint8_t out[SC_SHIELD_KEY_BYTES]);
/* Writes 64 hex digits and a NUL; the caller wipes out when done. */
void sc_shield_key_hex(const sc_shield_key *key, char out[2 * SC_SHIELD_KEY_BYTES + 1]);
/* The key file is one line, "sconify-shield-key-v1:<64 hex>\n" (docs/shield.md). */
int sc_shield_key_load(const char *path, sc_shield_key **ret, sconify_error_t *err);
/* Writes the key file atomically with mode 0600; fails with SCONIFY_ERR_USAGE
 * when path exists, unless overwrite. */
int sc_shield_key_save(const sc_shield_key *key, const char *path, bool overwrite, sconify_error_t *err);
void sc_shield_key_free(sc_shield_key *key);
SC_DEFINE_CLEANUP(sc_shield_key *, sc_shield_key_free)
#define cleanup_shield_key _cleanup_(sc_shield_key_freep)

/* ---- file ids ---------------------------------------------------------- */

/* A fresh random id (default mode). */
int sc_shield_file_id_random(uint8_t ret[SC_SHIELD_FILE_ID_BYTES], sconify_error_t *err);
/* Reproducible mode: HMAC of the key over the source layer's diff_id (as
 * verified against the layer's content), the offset of the entry's data in
 * the layer's uncompressed stream, and the file's path in the image. The
 * diff_id and the offset name exactly one entry's content, whatever the
 * layers below it: the same inputs never give one id to two plaintexts.
 * never derive an id for content that does not come from that layer entry. */
void sc_shield_file_id_derive(const sc_shield_key *key, const char *diff_id, uint64_t data_offset,
                              const char *path, uint8_t ret[SC_SHIELD_FILE_ID_BYTES]);

/* ---- entries ------------------------------------------------------------- */

/* What the metadata says about one protected file (shared by its hard links). */
typedef struct {
	sc_shield_kind kind; /* ENCRYPTED or AUTHENTICATED */
	uint64_t size;
	uint32_t chunk_size;
	uint8_t file_id[SC_SHIELD_FILE_ID_BYTES]; /* zero for AUTHENTICATED */
	uint64_t n_chunks;                        /* sc_shield_chunks(size, chunk_size) */
	uint8_t *macs; /* n_chunks tags (16 bytes) or hashes (32 bytes), in chunk order */
} sc_shield_entry;

/* Chunks a file of size bytes has: 1 for an empty file, else ceil(size / chunk_size). */
uint64_t sc_shield_chunks(uint64_t size, uint32_t chunk_size);
void sc_shield_entry_free(sc_shield_entry *e);
SC_DEFINE_CLEANUP(sc_shield_entry *, sc_shield_entry_free)
#define cleanup_shield_entry _cleanup_(sc_shield_entry_freep)

/* ---- protecting one file (conversion side) ------------------------------- */

typedef struct sc_shield_encoder sc_shield_encoder;

/* Encrypts a file of exactly size bytes. chunk_size 0: SC_SHIELD_CHUNK_DEFAULT. */
int sc_shield_encryptor_new(const sc_shield_key *key, const uint8_t file_id[SC_SHIELD_FILE_ID_BYTES],
                            uint64_t size, uint32_t chunk_size, sc_shield_encoder **ret,
                            sconify_error_t *err);
/* Hashes a file of exactly size bytes for the authenticated region. */
int sc_shield_hasher_new(uint64_t size, uint32_t chunk_size, sc_shield_encoder **ret, sconify_error_t *err);
/* Takes the next n bytes of the file; an encryptor writes n bytes of ciphertext
 * to out (out may equal in), a hasher ignores out (may be NULL). Any split of
 * the input gives the same output. More than size bytes in all is an error. */
int sc_shield_encoder_update(sc_shield_encoder *enc, const void *in, size_t n, void *out,
                             sconify_error_t *err);
/* Fails unless exactly size bytes went in; returns the file's entry. */
int sc_shield_encoder_finish(sc_shield_encoder *enc, sc_shield_entry **ret, sconify_error_t *err);
void sc_shield_encoder_free(sc_shield_encoder *enc);
SC_DEFINE_CLEANUP(sc_shield_encoder *, sc_shield_encoder_free)
#define cleanup_shield_encoder _cleanup_(sc_shield_encoder_freep)

/* ---- reading one protected file (runtime side) --------------------------- */

typedef struct sc_shield_file sc_shield_file;

/* key may be NULL for an AUTHENTICATED entry. The entry must outlive the file. */
int sc_shield_file_new(const sc_shield_key *key, const sc_shield_entry *entry, sc_shield_file **ret,
                       sconify_error_t *err);
/* Verifies chunk index (n bytes as stored in the image: the chunk's exact
 * length) and writes its plaintext to out (n bytes). On failure out holds
 * zeros, never unverified bytes. */
int sc_shield_file_read_chunk(sc_shield_file *f, uint64_t index, const void *in, size_t n, void *out,
                              sconify_error_t *err);
/* Reads the whole stored file from in, verifies every chunk and writes the
 * plaintext to out_fd (a regular file: a memfd in the runtime) from offset 0.
 * Only verified chunks are ever written; on any failure out_fd is truncated to
 * 0 bytes before returning, so a caller that hands out out_fd only on success
 * never releases a byte of a file that did not verify completely. out_fd must
 * not be visible to anyone else until this returned. An out_fd that already
 * has the entry's size is written in place (every byte of it is overwritten
 * on success), so a caller may prepare its pages; any other is truncated to
 * 0 bytes first. */
int sc_shield_file_to_fd(sc_shield_file *f, sc_reader *in, int out_fd, sconify_error_t *err);
/* sc_shield_file_to_fd for a stored file given as a descriptor (read with
 * pread, so its offset is neither used nor moved), its chunks split into
 * threads contiguous ranges, one thread each (the calling thread takes the
 * first; 0 or 1: no thread is started; never more than SC_SHIELD_THREADS_MAX
 * or one per chunk). Chunks are independent: each thread verifies and
 * decrypts its chunks in its own buffer of one chunk with its own cipher
 * context and writes them with pwrite. Whether a file is worth splitting
 * (starting a thread costs more than verifying a small file) is the
 * caller's decision. The stored file must hold exactly the entry's size
 * bytes ("truncated", "trailing data"). The contract of sc_shield_file_to_fd
 * holds: only verified chunks are written, on any failure out_fd is truncated
 * to 0 bytes, and out_fd must not be visible to anyone else until this
 * returned. When several chunks fail, the error is the first one's in file
 * order, as with sc_shield_file_to_fd. */
#define SC_SHIELD_THREADS_MAX 16u
int sc_shield_file_to_fd_parallel(sc_shield_file *f, int in_fd, int out_fd, unsigned threads,
                                  sconify_error_t *err);
void sc_shield_file_free(sc_shield_file *f);
SC_DEFINE_CLEANUP(sc_shield_file *, sc_shield_file_free)
#define cleanup_shield_file _cleanup_(sc_shield_file_freep)

/* ---- metadata ------------------------------------------------------------ */

/* What the policy pins: SHA-256 of the sealed metadata bytes. */
typedef struct {
	uint8_t bytes[SC_SHIELD_PIN_BYTES];
} sc_shield_pin;

void sc_shield_pin_hex(const sc_shield_pin *pin, char out[2 * SC_SHIELD_PIN_BYTES + 1]);
int sc_shield_pin_parse(const char *hex, sc_shield_pin *ret, sconify_error_t *err);

typedef struct sc_shield_builder sc_shield_builder;

/* chunk_size 0: SC_SHIELD_CHUNK_DEFAULT. Starts with `/' not-protected. */
int sc_shield_builder_new(uint32_t chunk_size, sc_shield_builder **ret, sconify_error_t *err);
/* Paths are absolute and normal: `/', or `/a/b' without `.', `..', empty
 * components or a trailing slash. Adding `/' replaces the default region. */
int sc_shield_builder_add_region(sc_shield_builder *b, const char *path, sc_shield_kind kind,
                                 sconify_error_t *err);
/* The kind of the region path falls in (longest component-wise prefix). */
sc_shield_kind sc_shield_builder_region_of(const sc_shield_builder *b, const char *path);
/* Adds a protected file (the entry is copied). Its kind must be its region's,
 * checked when sealing, when every region is known. */
int sc_shield_builder_add_file(sc_shield_builder *b, const char *path, const sc_shield_entry *entry,
                               sconify_error_t *err);
/* Adds path as a hard link to target, a path given to add_file. */
int sc_shield_builder_add_link(sc_shield_builder *b, const char *path, const char *target,
                               sconify_error_t *err);
/* Adds a symbolic link in a protected region, target as stored in the image
 * (relative to path's directory, or absolute). The runtime follows a link
 * there only if the disk holds this very target, and refuses every other link
 * in a protected region, so that the host cannot point a protected name
 * elsewhere. Checked when sealing: path in a protected region, no file's path. */
int sc_shield_builder_add_symlink(sc_shield_builder *b, const char *path, const char *target,
                                  sconify_error_t *err);
/* Serialises and seals under key. reproducible: the seal's nonce is derived
 * from the key and the content (same input, same bytes); else random.
 * Returns the sealed bytes (malloc'd) and the value the policy pins. */
int sc_shield_builder_seal(sc_shield_builder *b, const sc_shield_key *key, bool reproducible,
                           uint8_t **ret_data, size_t *ret_len, sc_shield_pin *ret_pin, sconify_error_t *err);
void sc_shield_builder_free(sc_shield_builder *b);
SC_DEFINE_CLEANUP(sc_shield_builder *, sc_shield_builder_free)
#define cleanup_shield_builder _cleanup_(sc_shield_builder_freep)

typedef struct sc_shield_metadata sc_shield_metadata;

/* Checks the pin, then the seal, then parses strictly (docs/shield.md). */
int sc_shield_metadata_open(const sc_shield_key *key, const void *data, size_t len, const sc_shield_pin *pin,
                            sc_shield_metadata **ret, sconify_error_t *err);
/* path must be absolute and normal. *ret_kind is the kind of path's region;
 * *ret_entry its entry, or NULL: for a path in a protected region that means
 * it is not a protected file (a directory, or something the conversion never
 * saw): the runtime must refuse to serve a regular file there. */
int sc_shield_lookup(const sc_shield_metadata *md, const char *path, sc_shield_kind *ret_kind,
                     const sc_shield_entry **ret_entry, sconify_error_t *err);
/* For the runtime's walk, one component at a time (path absolute and normal,
 * not checked: this is on the path of every open): whether the disk may not
 * decide where path leads, i.e. path lies in a protected region or a
 * protected region lies below it (a link there would move the region), and
 * *ret_target, the target the metadata records for a symlink at path, else
 * NULL (the image has no symlink there). */
bool sc_shield_walk_checks(const sc_shield_metadata *md, const char *path, const char **ret_target);
/* The target the metadata records for a symlink at path, or NULL. */
const char *sc_shield_symlink_at(const sc_shield_metadata *md, const char *path);
size_t sc_shield_metadata_symlinks(const sc_shield_metadata *md);
uint32_t sc_shield_metadata_chunk_size(const sc_shield_metadata *md);
/* Regions in ascending path order (`/' first), for the measurement. */
size_t sc_shield_metadata_regions(const sc_shield_metadata *md);
void sc_shield_metadata_region(const sc_shield_metadata *md, size_t i, const char **ret_path,
                               sc_shield_kind *ret_kind);
void sc_shield_metadata_free(sc_shield_metadata *md);
SC_DEFINE_CLEANUP(sc_shield_metadata *, sc_shield_metadata_free)
#define cleanup_shield_metadata _cleanup_(sc_shield_metadata_freep)

#endif
