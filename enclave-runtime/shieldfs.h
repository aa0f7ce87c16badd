/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file shield inside the runtime: the service's shield metadata, opened
 * against the pin the policy gives (lib/shield), and the provider that serves
 * protected files to the application. A file the metadata lists is read from
 * the image (the stored file at the same path), verified chunk by chunk and,
 * in the encrypted region, decrypted into a sealed memfd; only a file that
 * verified completely is ever handed out. A regular file under a protected
 * region that the metadata does not list does not exist for the application.
 */
#ifndef SC_RT_SHIELDFS_H
#define SC_RT_SHIELDFS_H

#include <stdint.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "provider.h"
#include "shield/shield.h"

/* The sealed metadata is held in memory while it is read: a cap well above
 * what an image's file list needs (docs/runtime.md). */
#define SC_RT_METADATA_MAX (256u << 20)
/* A protected file at least this large is verified by as many threads as
 * the runtime may use CPUs (up to SC_SHIELD_THREADS_MAX): the opening caller
 * waits for all of it, and below this a thread costs more than it saves. */
#define SC_RT_PARALLEL_MIN (8u << 20)

typedef struct sc_rt_shield sc_rt_shield;

/* Reads the sealed metadata at path (at most SC_RT_METADATA_MAX bytes) and
 * opens it with key against pin. Messages never hold the key. */
int sc_rt_shield_open(const char *path, const uint8_t key[SC_SHIELD_KEY_BYTES],
                      const uint8_t pin[SC_SHIELD_PIN_BYTES], sc_rt_shield **ret, sconify_error_t *err);
void sc_rt_shield_free(sc_rt_shield *sh);
SC_DEFINE_CLEANUP(sc_rt_shield *, sc_rt_shield_free)
#define cleanup_rt_shield _cleanup_(sc_rt_shield_freep)

const sc_shield_metadata *sc_rt_shield_metadata(const sc_rt_shield *sh);

/* The verified plaintext of the protected file at path (absolute, normal,
 * symlinks resolved) whose entry is e, in a sealed memfd that sh keeps
 * (borrowed by the caller, shared by hard links, made once). A file that
 * fails verification, or is missing from disk, fails with the shield's
 * message (kind INTEGRITY, IO, ...) and leaves nothing behind. */
int sc_rt_shield_plaintext(sc_rt_shield *sh, const char *path, const sc_shield_entry *e, int *ret_memfd,
                           sconify_error_t *err);

/* The provider: continue outside the protected regions; a listed file's
 * verified plaintext (EIO and a message for the log when it fails); a
 * directory in a region read only, handed over as a descriptor opened here;
 * ENOENT (EROFS for writing) for anything else in a region. Borrows sh. */
sc_rt_provider *sc_rt_shield_provider_new(sc_rt_shield *sh);

#endif
