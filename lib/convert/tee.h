/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sending a layer's compressed bytes on while pass 1 reads them, but only
 * the bytes whose content the planner has seen and found outside the
 * encrypted regions (docs/conversion.md, "Passing layers on during pass 1").
 *
 * Three threads meet here: the one that reads the blob (through
 * sc_tee_reader_new(), and that calls sc_tee_mark() after each piece it
 * decoded), the planner's (sc_tee_entry() for every entry, before its data),
 * and the tee's own, which writes what is cleared to the writer given.
 */
#ifndef SC_CONVERT_TEE_H
#define SC_CONVERT_TEE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/stream.h"

/* Compressed bytes read and not sent yet: when the destination or the
 * planner falls further behind the reading than this, the tee gives up (it
 * never makes the reader wait). */
#define SC_TEE_RING (16u << 20)
/* At the layer's end, what may still be left to send for the tee to finish
 * it (the reader then waits for that, and the last chunk): more, after the
 * tee's thread had SC_TEE_FINISH_GRACE_MS to catch up, and it gives up. */
#define SC_TEE_FINISH_LAG (4u << 20)
#define SC_TEE_FINISH_GRACE_MS 200

typedef struct sc_tee sc_tee;

/* Starts the tee's thread; w (not owned) gets the cleared bytes, and once
 * the whole blob went out, seal(seal_ctx) is called on the same thread (it
 * returns 0 when it sealed). NULL when no thread could be started. */
sc_tee *sc_tee_new(sc_writer *w, int (*seal)(void *), void *seal_ctx);

/* A reader of inner (owned) whose bytes are also kept for the tee, which
 * must outlive it. */
sc_reader *sc_tee_reader_new(sc_tee *t, sc_reader *inner);

/* The decompressor reading the bytes, from sc_decompress_reader_new(). */
void sc_tee_set_decompressor(sc_tee *t, sc_reader *dec);

/* The reading thread, after each piece the decompressor handed out: what it
 * says of its progress becomes a mark (sc_tee_mark_at()). */
void sc_tee_mark(sc_tee *t);
/* Compressed bytes before in decode to uncompressed bytes before out_bound
 * (sc_decompress_progress()); they are sent once the planner cleared up to
 * out_bound. Marks come in order. */
void sc_tee_mark_at(sc_tee *t, uint64_t in, uint64_t out_bound);

/* The planner's sc_planner_entry_fn (userdata: the tee): an entry ending at
 * end, in an encrypted region or not. The first one that is stops the tee
 * for good: nothing more is sent. */
void sc_tee_entry(void *userdata, uint64_t end, bool encrypted);

/* Stops the tee's sending (a failure elsewhere in pass 1). */
void sc_tee_abandon(sc_tee *t);

/* After the blob was read to its end and verified (size bytes): sends the
 * rest, unless the tee stopped or more than SC_TEE_FINISH_LAG is left, and
 * waits for its thread. true when every byte went out and the seal
 * succeeded. */
bool sc_tee_finish(sc_tee *t, uint64_t size);

/* Whether an entry in an encrypted region stopped it; whether it gave up
 * because sending fell behind (the ring filled with bytes it was allowed to
 * send, or too much was left at the end); bytes sent so far (handed to the
 * writer, which may hold them for a chunk). */
bool sc_tee_saw_encrypted(sc_tee *t);
bool sc_tee_fell_behind(sc_tee *t);
uint64_t sc_tee_sent(sc_tee *t);

/* Stops and joins the thread; w is the caller's again. */
void sc_tee_free(sc_tee *t);

#endif
