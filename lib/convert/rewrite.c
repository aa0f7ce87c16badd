/* SPDX-License-Identifier: Apache-2.0 */
#include "rewrite.h"

#include <openssl/crypto.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/xalloc.h"
#include "layer/scan.h"

#define BLOCK 512
#define SCRATCH (256 * 1024)

struct rewriter {
	sc_writer base;
	const sc_plan_layer *pl;
	sc_writer *next;
	sc_rewrite_hooks hooks;
	uint64_t pos; /* stream offset of the next byte in */
	size_t i;     /* the entry at or after pos */
	sc_shield_encoder *enc;
	uint8_t *scratch;
	sc_buf header; /* a dropped entry's header blocks */
	bool failed;
};

static uint64_t round_block(uint64_t n)
{
	return (n + BLOCK - 1) & ~(uint64_t)(BLOCK - 1);
}

/* A dropped entry's headers: keep the pax global headers among them. */
static int emit_globals(struct rewriter *rw, sconify_error_t *err)
{
	const unsigned char *h = (const unsigned char *)rw->header.data;
	size_t len = rw->header.len, off = 0;
	while (off + BLOCK <= len) {
		uint64_t size = 0;
		char type = (char)h[off + 156];
		if (!sc_tar_number(h + off + 124, 12, &size))
			return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
			                "rewriting a layer: unreadable header size");
		if (type != 'x' && type != 'g' && type != 'L' && type != 'K')
			break; /* the entry's own header: its data is not in this range */
		uint64_t span = BLOCK + round_block(size);
		if (span > len - off)
			return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
			                "rewriting a layer: header past its range");
		if (type == 'g' && sc_writer_write(rw->next, h + off, (size_t)span, err) < 0)
			return -1;
		off += (size_t)span;
	}
	rw->header.len = 0;
	return 0;
}

/* Completes the current entry when pos reached its end (zero-length data
 * entries complete without a byte). */
static int settle(struct rewriter *rw, sconify_error_t *err)
{
	while (rw->i < rw->pl->n_entries) {
		const sc_plan_entry *e = &rw->pl->entries[rw->i];
		if (rw->pos < e->data_offset)
			return 0;
		if (e->action == SC_PLAN_DROP) {
			if (rw->pos == e->data_offset && rw->header.len == e->data_offset - e->offset &&
			    emit_globals(rw, err) < 0)
				return -1;
			if (rw->pos < e->data_offset + round_block(e->size))
				return 0;
		} else {
			if (rw->enc == NULL && rw->hooks.begin(rw->hooks.userdata, e, &rw->enc, err) < 0)
				return -1;
			if (rw->pos < e->data_offset + e->size)
				return 0;
			sc_shield_entry *result = NULL;
			int r = sc_shield_encoder_finish(rw->enc, &result, err);
			sc_shield_encoder_free(rw->enc);
			rw->enc = NULL;
			if (r < 0 || rw->hooks.end(rw->hooks.userdata, e, result, err) < 0)
				return -1;
		}
		rw->i++;
	}
	return 0;
}

static int rewrite_bytes(struct rewriter *rw, const uint8_t *in, size_t len, sconify_error_t *err)
{
	while (len > 0) {
		if (settle(rw, err) < 0)
			return -1;
		const sc_plan_entry *e = rw->i < rw->pl->n_entries ? &rw->pl->entries[rw->i] : NULL;
		size_t k = len;
		if (e == NULL || rw->pos < e->offset) {
			if (e && e->offset - rw->pos < k)
				k = (size_t)(e->offset - rw->pos);
			if (sc_writer_write(rw->next, in, k, err) < 0)
				return -1;
		} else if (e->action == SC_PLAN_DROP) {
			uint64_t end = rw->pos < e->data_offset ? e->data_offset
			                                        : e->data_offset + round_block(e->size);
			if (end - rw->pos < k)
				k = (size_t)(end - rw->pos);
			if (rw->pos < e->data_offset &&
			    sc_buf_append(&rw->header, in, k, "entry headers", err) < 0)
				return -1;
		} else if (rw->pos < e->data_offset) {
			if (e->data_offset - rw->pos < k)
				k = (size_t)(e->data_offset - rw->pos);
			if (sc_writer_write(rw->next, in, k, err) < 0)
				return -1;
		} else {
			uint64_t left = e->data_offset + e->size - rw->pos;
			if (left < k)
				k = (size_t)left;
			if (k > SCRATCH)
				k = SCRATCH;
			bool encrypt = e->action == SC_PLAN_ENCRYPT;
			if (sc_shield_encoder_update(rw->enc, in, k, encrypt ? rw->scratch : NULL, err) < 0 ||
			    sc_writer_write(rw->next, encrypt ? rw->scratch : in, k, err) < 0)
				return -1;
		}
		rw->pos += k;
		in += k;
		len -= k;
	}
	return settle(rw, err);
}

static int rw_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	struct rewriter *rw = (struct rewriter *)base;
	if (rw->failed)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "rewriting a layer: already failed");
	if (rewrite_bytes(rw, buf, len, err) < 0) {
		rw->failed = true;
		return -1;
	}
	return 0;
}

static int rw_finish(sc_writer *base, sconify_error_t *err)
{
	struct rewriter *rw = (struct rewriter *)base;
	if (rw->failed)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "rewriting a layer: already failed");
	if (settle(rw, err) < 0)
		return -1;
	if (rw->i < rw->pl->n_entries)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
		                "rewriting a layer: it ended at byte %llu, before the entry planned at %llu",
		                (unsigned long long)rw->pos,
		                (unsigned long long)rw->pl->entries[rw->i].offset);
	return 0;
}

static void rw_free(sc_writer *base)
{
	struct rewriter *rw = (struct rewriter *)base;
	sc_shield_encoder_free(rw->enc);
	OPENSSL_cleanse(rw->scratch, SCRATCH);
	free(rw->scratch);
	sc_buf_free(&rw->header);
	free(rw);
}

static const struct sc_writer_ops rewriter_ops = {.write = rw_write, .finish = rw_finish, .free = rw_free};

sc_writer *sc_layer_rewriter_new(const sc_plan_layer *layer, sc_writer *next, const sc_rewrite_hooks *hooks)
{
	struct rewriter *rw = xzalloc(sizeof(*rw));
	rw->base.ops = &rewriter_ops;
	rw->pl = layer;
	rw->next = next;
	rw->hooks = *hooks;
	rw->scratch = xmalloc(SCRATCH);
	/* pass 1 bounded every extended header; a few of them make one entry's */
	sc_buf_init(&rw->header, 64u << 20);
	return &rw->base;
}
