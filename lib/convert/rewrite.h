/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pass 2 of a conversion for one layer: a writer that takes the layer's
 * uncompressed bytes (the same bytes pass 1 planned, which the source's
 * digest guarantees) and passes them on with the plan applied by stream
 * offset: protected data replaced by ciphertext of the same length, dropped
 * entries left out (a pax global header in front of one is kept, since it
 * applies to the entries after it), everything else byte for byte. Hashed
 * entries go through unchanged. No tar is parsed again, so nothing can read
 * the layer differently from pass 1.
 */
#ifndef SC_CONVERT_REWRITE_H
#define SC_CONVERT_REWRITE_H

#include "convert/plan.h"
#include "core/stream.h"

typedef struct {
	/* ENCRYPT, HASH: the encoder for entry e's data (the rewriter owns it). */
	int (*begin)(void *userdata, const sc_plan_entry *e, sc_shield_encoder **ret, sconify_error_t *err);
	/* Entry e's data went through: its shield entry, owned by the callee. */
	int (*end)(void *userdata, const sc_plan_entry *e, sc_shield_entry *result, sconify_error_t *err);
	void *userdata;
} sc_rewrite_hooks;

/* Writes to next (not owned). Finishing checks that every planned entry
 * was met (INTEGRITY otherwise); it does not finish next. */
sc_writer *sc_layer_rewriter_new(const sc_plan_layer *layer, sc_writer *next, const sc_rewrite_hooks *hooks);

#endif
