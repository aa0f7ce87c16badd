/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The copy engine: reads an image from a source and writes it to a
 * destination, converting what the destination cannot hold (Docker media
 * types into OCI ones) and recompressing layers only when asked to.
 *
 * A layer whose compression stays is passed through by digest, never
 * decompressed. A layer that changes compression is decompressed, scanned
 * (every entry validated, docs/layers.md), recompressed and checked against
 * the config's diff_id in one streaming pass. Documents we did not change are
 * written with their exact bytes, so a plain copy keeps every digest.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "copy.h"
#include "core/buf.h"
#include "core/json-util.h"
#include "core/limits.h"
#include "core/retry.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "image/mediatype.h"
#include "layer/compress.h"
#include "layer/scan.h"
#include "transport/transport.h"

#define MAX_INDEX_DEPTH 8

void sc_copy_progress(sc_copy_ctx *c, sconify_event_t ev, const sc_digest *d, uint64_t done, uint64_t total)
{
	if (c->opts->progress == NULL)
		return;
	pthread_mutex_lock(&c->progress_lock);
	c->opts->progress(c->opts->progress_userdata, ev, d->str, done, total);
	pthread_mutex_unlock(&c->progress_lock);
}

/* Passes a blob's bytes through, reporting progress now and then. */
struct counting_reader {
	sc_reader base;
	sc_reader *inner;
	sc_copy_ctx *c;
	const sc_digest *digest;
	uint64_t done, total, reported;
};

static ssize_t counting_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	struct counting_reader *r = (struct counting_reader *)base;
	ssize_t n = sc_reader_read(r->inner, buf, len, err);
	if (n > 0) {
		r->done += (uint64_t)n;
		if (r->done - r->reported >= (1u << 20) || r->done == r->total) {
			r->reported = r->done;
			sc_copy_progress(r->c, SCONIFY_EVENT_BLOB_PROGRESS, r->digest, r->done, r->total);
		}
	}
	return n;
}

static void counting_free(sc_reader *base)
{
	struct counting_reader *r = (struct counting_reader *)base;
	sc_reader_free(r->inner);
	free(r);
}

static const struct sc_reader_ops counting_ops = {.read = counting_read, .free = counting_free};

static sc_reader *counting_reader_new(sc_copy_ctx *c, sc_reader *inner, const sc_descriptor *d)
{
	if (c->opts->progress == NULL)
		return inner;
	struct counting_reader *r = xzalloc(sizeof(*r));
	r->base.ops = &counting_ops;
	r->inner = inner;
	r->c = c;
	r->digest = &d->digest;
	r->total = d->size;
	return &r->base;
}

int sc_online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/* ---- layers ---- */

typedef enum {
	LAYER_PASS,      /* copy the blob as it is */
	LAYER_TRANSFORM, /* decompress, scan, recompress */
} layer_action;

typedef struct {
	sc_copy_ctx *c;
	const sc_descriptor *in;
	const sc_digest *diff_id; /* from the config, NULL when unknown */
	layer_action action;
	sc_layer_type type; /* valid when is_layer */
	bool is_layer;      /* an image layer media type */
	sc_compression target;
	bool docker_out; /* the output manifest is a Docker one */
	int threads;     /* compressor threads */
	/* result */
	sc_descriptor out;
	bool changed;
} layer_job;

int sc_copy_pass_blob(sc_copy_ctx *c, const sc_descriptor *in, sconify_event_t ev, sconify_error_t *err)
{
	bool have = false;
	if (c->dst->ops->has_blob(c->dst, &in->digest, &have, err) < 0)
		return -1;
	if (have) {
		sc_copy_progress(c, SCONIFY_EVENT_BLOB_SKIP, &in->digest, in->size, in->size);
		return 0;
	}
	/* In one registry, a blob is linked, not copied. */
	if (c->dst->ops->mount && c->dst->ops->mount(c->dst, &in->digest, c->src->ref, &have, err) < 0)
		return -1;
	if (have) {
		sc_copy_progress(c, SCONIFY_EVENT_BLOB_MOUNTED, &in->digest, in->size, in->size);
		return 0;
	}
	sc_copy_progress(c, ev, &in->digest, 0, in->size);
	sc_reader *verified = NULL;
	if (sc_source_blob(c->src, in, &verified, err) < 0)
		return -1;
	cleanup_reader sc_reader *r =
	        ev == SCONIFY_EVENT_BLOB ? counting_reader_new(c, verified, in) : verified;
	sc_blob_upload *u = NULL;
	sc_writer *w = NULL;
	if (c->dst->ops->blob_begin(c->dst, &in->digest, in->size, &u, &w, err) < 0)
		return -1;
	if (sc_stream_pump(r, w, NULL, err) < 0 || sc_writer_finish(w, err) < 0) {
		c->dst->ops->blob_abort(c->dst, u);
		return -1;
	}
	if (c->dst->ops->blob_commit(c->dst, u, &in->digest, in->size, err) < 0)
		return -1;
	if (ev == SCONIFY_EVENT_BLOB)
		sc_copy_progress(c, SCONIFY_EVENT_BLOB_DONE, &in->digest, in->size, in->size);
	return 0;
}

/* When a rewrite fails before its source blob was verified, the blob may
 * simply not be what its descriptor says (a byte prepended makes it look
 * uncompressed, a flipped one makes it corrupt): read the rest of it and
 * report a size or digest mismatch in place of the symptom. */
static void prefer_integrity_error(sc_reader *verified, sconify_error_t *err)
{
	if (verified == NULL || sc_verified_reader_done(verified))
		return;
	cleanup_free char *buf = xmalloc(SC_STREAM_CHUNK);
	sconify_error_t drain = NULL;
	ssize_t n;
	while ((n = sc_reader_read(verified, buf, SC_STREAM_CHUNK, &drain)) > 0)
		;
	if (n < 0 && sconify_error_kind(drain) == SCONIFY_ERR_INTEGRITY)
		sc_error_move(err, &drain);
	sconify_error_free(&drain);
}

static int transform_layer(layer_job *j, sconify_error_t *err)
{
	sc_copy_ctx *c = j->c;
	const sc_descriptor *in = j->in;
	cleanup_free char *what = xasprintf("layer %s", in->digest.str);
	sc_copy_progress(c, SCONIFY_EVENT_BLOB, &in->digest, 0, in->size);

	sc_reader *verified = NULL;
	if (sc_source_blob(c->src, in, &verified, err) < 0)
		return -1;
	/* verified is owned by the chain below; kept to ask whether it verified */
	sc_compression found;
	sc_reader *sniffed = NULL;
	if (sc_compression_sniff(counting_reader_new(c, verified, in), &found, &sniffed, err) < 0)
		return sc_error_wrap(err, "%s", what); /* the sniffer freed verified */
	cleanup_reader sc_reader *plain = NULL;
	if (found != j->type.compression && !j->type.compression_loose) {
		cleanup_free char *q = sc_quote(in->media_type, SC_QUOTE_MAX);
		sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: its media type `%s' says %s but it holds %s", what,
		         q, sc_compression_name(j->type.compression), sc_compression_name(found));
		prefer_integrity_error(verified, err);
		sc_reader_free(sniffed);
		return -1;
	}
	plain = sc_decompress_reader_new(sniffed, found, &c->limits, what);

	sc_blob_upload *u = NULL;
	sc_writer *w = NULL;
	if (c->dst->ops->blob_begin(c->dst, NULL, 0, &u, &w, err) < 0)
		return -1;
	cleanup_writer sc_writer *hw = sc_hash_writer_new(w, SC_SHA256);
	cleanup_writer sc_writer *cw = sc_compress_writer_new(hw, j->target, j->threads);
	sc_layer_scan_opts so = {.limits = &c->limits, .tee = cw, .what = what};
	sc_digest diff_id;
	int r = sc_layer_scan(plain, &so, &diff_id, NULL, err);
	if (r == 0)
		r = sc_writer_finish(cw, err);
	if (r == 0)
		r = sc_writer_finish(w, err);
	if (r == 0 && !sc_verified_reader_done(verified))
		r = sc_error(err, SCONIFY_ERR_GENERIC, 0, "%s was not read to its end", what);
	if (r == 0 && j->diff_id && !sc_digest_equal(&diff_id, j->diff_id))
		r = sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
		             "%s: diff_id mismatch: its content hashes to %s, the config says %s", what,
		             diff_id.str, j->diff_id->str);
	if (r < 0) {
		prefer_integrity_error(verified, err);
		c->dst->ops->blob_abort(c->dst, u);
		return -1;
	}
	sc_digest digest;
	uint64_t size = 0;
	sc_hash_writer_result(hw, &digest, &size);
	if (c->dst->ops->blob_commit(c->dst, u, &digest, size, err) < 0)
		return -1;

	sc_descriptor_copy(&j->out, in);
	free(j->out.media_type);
	j->out.media_type = xstrdup(sc_layer_media_type(j->docker_out, j->target, j->type.nondistributable));
	j->out.digest = digest;
	j->out.size = size;
	j->changed = true;
	sc_copy_progress(c, SCONIFY_EVENT_BLOB_DONE, &in->digest, in->size, in->size);
	return 0;
}

static int run_layer_once(layer_job *j, sconify_error_t *err)
{
	if (j->action == LAYER_TRANSFORM)
		return transform_layer(j, err);

	sconify_error_t local = NULL;
	if (sc_copy_pass_blob(j->c, j->in, SCONIFY_EVENT_BLOB, &local) < 0) {
		/* Nondistributable layers may live only at their urls. */
		if (j->is_layer && j->type.nondistributable &&
		    sconify_error_kind(local) == SCONIFY_ERR_NOT_FOUND) {
			sconify_error_free(&local);
		} else {
			sc_error_move(err, &local);
			return -1;
		}
	}
	sc_descriptor_copy(&j->out, j->in);
	if (j->is_layer && j->type.docker && !j->docker_out) {
		/* The same bytes under the OCI name for their compression. */
		free(j->out.media_type);
		j->out.media_type =
		        xstrdup(sc_layer_media_type(false, j->type.compression, j->type.nondistributable));
		j->changed = true;
	}
	return 0;
}

/* A network failure in the middle of an upload cannot be retried by the
 * request (the streamed bytes are gone): the whole layer is copied again. */
static int run_layer(layer_job *j, sconify_error_t *err)
{
	for (int attempt = 0;; attempt++) {
		sconify_error_t e = NULL;
		if (run_layer_once(j, &e) == 0)
			return 0;
		/* Everything a request can retry was retried below: start over only
		 * when that could not help (a streamed upload lost on the way). */
		if (!sc_error_restartable(e) || attempt >= j->c->retries) {
			sc_error_move(err, &e);
			return -1;
		}
		sconify_error_free(&e);
		sc_descriptor_clear(&j->out);
		j->changed = false;
		sc_sleep_ms(sc_backoff_ms((unsigned)attempt));
	}
}

static int layer_job_run(void *userdata, size_t i, sconify_error_t *err)
{
	return run_layer(&((layer_job *)userdata)[i], err);
}

/* ---- the job pool ---- */

typedef struct {
	sc_copy_job_fn fn;
	void *userdata;
	sconify_error_t *errs;
	size_t n;
	atomic_size_t next;
	atomic_bool failed;
} job_queue;

static void *job_worker(void *arg)
{
	job_queue *q = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&q->next, 1);
		if (i >= q->n || atomic_load(&q->failed))
			break;
		if (q->fn(q->userdata, i, &q->errs[i]) < 0) {
			if (q->errs[i] == NULL) /* a job that failed without saying why */
				sc_error(&q->errs[i], SCONIFY_ERR_GENERIC, 0, "job %zu failed", i);
			atomic_store(&q->failed, true);
		}
	}
	return NULL;
}

size_t sc_copy_workers(const sc_copy_ctx *c, size_t n)
{
	size_t workers = c->dst && c->dst->caps.parallel_blobs && c->jobs > 1 ? (size_t)c->jobs : 1;
	if (workers > n)
		workers = n;
	return workers ? workers : 1;
}

int sc_copy_run_jobs(sc_copy_ctx *c, size_t n, sc_copy_job_fn fn, void *userdata, sconify_error_t *err)
{
	job_queue q = {.fn = fn, .userdata = userdata, .n = n};
	q.errs = xcalloc(n ? n : 1, sizeof(*q.errs));
	atomic_init(&q.next, 0);
	atomic_init(&q.failed, false);
	size_t workers = sc_copy_workers(c, n);
	if (workers <= 1) {
		job_worker(&q);
	} else {
		pthread_t *t = xcalloc(workers, sizeof(*t));
		size_t started = 0;
		for (; started < workers; started++)
			if (pthread_create(&t[started], NULL, job_worker, &q) != 0)
				break;
		if (started == 0)
			job_worker(&q);
		for (size_t i = 0; i < started; i++)
			pthread_join(t[i], NULL);
		free(t);
	}
	/* The first failure in job order is the one reported. */
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (q.errs[i] && r == 0) {
			sc_error_move(err, &q.errs[i]);
			r = -1;
		}
		sconify_error_free(&q.errs[i]);
	}
	free(q.errs);
	return r;
}

sc_compression sc_copy_wanted_compression(sc_copy_ctx *c, sc_compression have)
{
	switch (c->opts->compress) {
	case SCONIFY_COMPRESS_NONE:
		return SC_COMP_NONE;
	case SCONIFY_COMPRESS_GZIP:
		return SC_COMP_GZIP;
	case SCONIFY_COMPRESS_ZSTD:
		return SC_COMP_ZSTD;
	case SCONIFY_COMPRESS_KEEP:
		break;
	}
	if (have == SC_COMP_ZSTD && c->dst->caps.no_zstd)
		return SC_COMP_NONE;
	return have;
}

/* ---- documents ---- */

void sc_doc_out_clear(sc_doc_out *o)
{
	free(o->media_type);
	o->media_type = NULL;
}

/* Writes a document: the exact source bytes when nothing changed, else root
 * (our rewrite) serialised. */
int sc_copy_put_document(sc_copy_ctx *c, const sc_document *src, json_t *root, sconify_event_t ev,
                         sc_doc_out *ret, sconify_error_t *err)
{
	cleanup_document sc_document *rewritten = NULL;
	const sc_document *doc = src;
	if (root) {
		size_t len = 0;
		cleanup_free char *data = sc_json_dump(root, &len);
		const char *mt = json_string_value(json_object_get(root, "mediaType"));
		/* Our own output goes through the same strict parser as any input. */
		if (sc_document_parse(data, len, mt, "rewritten document", &c->limits, &rewritten, err) < 0)
			return -1;
		doc = rewritten;
	}
	sc_copy_progress(c, ev, &doc->digest, doc->len, doc->len);
	if (c->dst->ops->put_document(c->dst, doc->data, doc->len, sc_document_media_type(doc), &doc->digest,
	                              doc, err) < 0)
		return -1;
	ret->media_type = xstrdup(sc_document_media_type(doc));
	ret->digest = doc->digest;
	ret->size = doc->len;
	return 0;
}

static int copy_image(sc_copy_ctx *c, const sc_document *m, sc_doc_out *ret, sconify_error_t *err)
{
	bool to_oci = c->dst->caps.oci_only && m->kind == SC_DOC_DOCKER_MANIFEST;
	bool docker_out = m->kind == SC_DOC_DOCKER_MANIFEST && !to_oci;

	/* The config is read first (its diff_ids check rewritten layers) and
	 * written after the layers: blobs, then config, then manifest. */
	cleanup_config sc_image_config *config = NULL;
	if (sc_media_type_is_image_config(m->config.media_type) &&
	    sc_source_config(c->src, &m->config, &config, err) < 0)
		return -1;

	size_t n = m->n_layers;
	layer_job *jobs = xcalloc(n ? n : 1, sizeof(*jobs));
	size_t n_image_layers = 0, n_transform = 0;
	for (size_t i = 0; i < n; i++) {
		layer_job *j = &jobs[i];
		j->c = c;
		j->in = &m->layers[i];
		j->docker_out = docker_out;
		j->is_layer = sc_layer_type_parse(j->in->media_type, &j->type);
		j->action = LAYER_PASS;
		if (!j->is_layer)
			continue;
		if (config && n_image_layers < config->n_diff_ids)
			j->diff_id = &config->diff_ids[n_image_layers];
		n_image_layers++;
		j->target = sc_copy_wanted_compression(c, j->type.compression);
		if (j->target != j->type.compression && !j->type.nondistributable) {
			if (docker_out && sc_layer_media_type(true, j->target, false) == NULL) {
				for (size_t k = 0; k <= i; k++)
					sc_descriptor_clear(&jobs[k].out);
				free(jobs);
				return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
				                "a Docker schema 2 manifest cannot describe %s layers",
				                sc_compression_name(j->target));
			}
			j->action = LAYER_TRANSFORM;
			n_transform++;
		}
	}
	int r = 0;
	if (config && n_image_layers != config->n_diff_ids)
		r = sc_error(err, SCONIFY_ERR_INVALID, 0,
		             "manifest %s has %zu layers but config %s has %zu diff_ids", m->digest.str,
		             n_image_layers, m->config.digest.str, config->n_diff_ids);
	if (r == 0) {
		int parallel = c->dst->caps.parallel_blobs ? c->jobs : 1;
		int active = (size_t)parallel < n_transform ? parallel : (int)(n_transform ? n_transform : 1);
		int threads = c->cpus / active > 1 ? c->cpus / active : 1;
		for (size_t i = 0; i < n; i++)
			jobs[i].threads = threads;
		r = sc_copy_run_jobs(c, n, layer_job_run, jobs, err);
	}

	if (r == 0 && config) {
		sc_copy_progress(c, SCONIFY_EVENT_CONFIG, &m->config.digest, m->config.size, m->config.size);
		r = sc_dest_put_bytes(c->dst, config->data, config->len, &m->config.digest, err);
	} else if (r == 0) {
		r = sc_copy_pass_blob(c, &m->config, SCONIFY_EVENT_CONFIG, err);
	}

	bool changed = to_oci;
	for (size_t i = 0; i < n && r == 0; i++)
		changed |= jobs[i].changed;

	cleanup_json json_t *root = NULL;
	if (r == 0 && changed) {
		root = json_deep_copy(m->root);
		if (to_oci) {
			json_object_set_new(root, "mediaType", json_string(SC_MT_OCI_MANIFEST));
			sc_descriptor cfg;
			sc_descriptor_copy(&cfg, &m->config);
			if (strcmp(cfg.media_type, SC_MT_DOCKER_CONFIG) == 0) {
				free(cfg.media_type);
				cfg.media_type = xstrdup(SC_MT_OCI_CONFIG);
			}
			json_object_set_new(root, "config", sc_descriptor_to_json(&cfg));
			sc_descriptor_clear(&cfg);
		}
		json_t *layers = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(layers, sc_descriptor_to_json(&jobs[i].out));
		json_object_set_new(root, "layers", layers);
	}
	for (size_t i = 0; i < n; i++)
		sc_descriptor_clear(&jobs[i].out);
	free(jobs);
	if (r < 0)
		return sc_error_wrap(err, "copying manifest %s", m->digest.str);
	return sc_copy_put_document(c, m, root, SCONIFY_EVENT_MANIFEST, ret, err);
}

json_t *sc_copy_index_rewrite(const sc_document *idx, const sc_doc_out *outs, bool to_oci)
{
	json_t *root = json_deep_copy(idx->root);
	if (to_oci)
		json_object_set_new(root, "mediaType", json_string(SC_MT_OCI_INDEX));
	json_t *list = json_array();
	for (size_t i = 0; i < idx->n_manifests; i++) {
		sc_descriptor d;
		sc_descriptor_copy(&d, &idx->manifests[i]);
		free(d.media_type);
		d.media_type = xstrdup(outs[i].media_type);
		d.digest = outs[i].digest;
		d.size = outs[i].size;
		json_array_append_new(list, sc_descriptor_to_json(&d));
		sc_descriptor_clear(&d);
	}
	json_object_set_new(root, "manifests", list);
	return root;
}

static int copy_any(sc_copy_ctx *c, const sc_document *d, unsigned depth, sc_doc_out *ret,
                    sconify_error_t *err);

static int copy_index(sc_copy_ctx *c, const sc_document *idx, unsigned depth, sc_doc_out *ret,
                      sconify_error_t *err)
{
	bool to_oci = c->dst->caps.oci_only && idx->kind == SC_DOC_DOCKER_LIST;
	bool changed = to_oci;
	size_t n = idx->n_manifests;
	sc_doc_out *outs = xcalloc(n ? n : 1, sizeof(*outs));
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		const sc_descriptor *e = &idx->manifests[i];
		if (sc_doc_kind_of(e->media_type) == SC_DOC_UNKNOWN) {
			cleanup_free char *q = sc_quote(e->media_type, SC_QUOTE_MAX);
			r = sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
			             "entry %zu of index %s has media type `%s'", i, idx->digest.str, q);
			break;
		}
		cleanup_document sc_document *child = NULL;
		r = sc_source_document(c->src, e, &child, err);
		if (r == 0)
			r = copy_any(c, child, depth + 1, &outs[i], err);
		if (r == 0 && (!sc_digest_equal(&outs[i].digest, &e->digest) ||
		               strcmp(outs[i].media_type, e->media_type) != 0))
			changed = true;
	}
	cleanup_json json_t *root = NULL;
	if (r == 0 && changed) {
		root = sc_copy_index_rewrite(idx, outs, to_oci);
	}
	for (size_t i = 0; i < n; i++)
		sc_doc_out_clear(&outs[i]);
	free(outs);
	if (r < 0)
		return sc_error_wrap(err, "copying index %s", idx->digest.str);
	return sc_copy_put_document(c, idx, root, SCONIFY_EVENT_INDEX, ret, err);
}

static int copy_any(sc_copy_ctx *c, const sc_document *d, unsigned depth, sc_doc_out *ret,
                    sconify_error_t *err)
{
	if (depth > MAX_INDEX_DEPTH)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0,
		                "index %s: too many nested indexes (the limit is %d)", d->digest.str,
		                MAX_INDEX_DEPTH);
	if (sc_doc_kind_is_index(d->kind))
		return copy_index(c, d, depth, ret, err);
	return copy_image(c, d, ret, err);
}

int sc_select_platform(sc_source *src, const sc_document *top, const sc_platform *want, sc_document **ret,
                       sconify_error_t *err)
{
	const sc_document *cur = top;
	cleanup_document sc_document *owned = NULL;
	for (unsigned depth = 0; sc_doc_kind_is_index(cur->kind); depth++) {
		if (depth >= MAX_INDEX_DEPTH)
			return sc_error(err, SCONIFY_ERR_LIMIT, 0,
			                "index %s: too many nested indexes (the limit is %d)",
			                cur->digest.str, MAX_INDEX_DEPTH);
		const sc_descriptor *pick = NULL;
		for (size_t i = 0; i < cur->n_manifests && pick == NULL; i++) {
			const sc_descriptor *e = &cur->manifests[i];
			if (sc_doc_kind_of(e->media_type) != SC_DOC_UNKNOWN && e->platform &&
			    sc_platform_matches(want, e->platform))
				pick = e;
		}
		/* An index of one entry without platform fields has one choice. */
		if (pick == NULL && cur->n_manifests == 1 && cur->manifests[0].platform == NULL)
			pick = &cur->manifests[0];
		if (pick == NULL) {
			cleanup_free char *w = sc_platform_string(want);
			sc_buf have;
			sc_buf_init(&have, SIZE_MAX);
			for (size_t i = 0; i < cur->n_manifests; i++) {
				if (cur->manifests[i].platform == NULL)
					continue;
				cleanup_free char *p = sc_platform_string(cur->manifests[i].platform);
				sc_buf_printf(&have, "%s%s", have.len ? ", " : "", p);
			}
			cleanup_free char *list = sc_buf_steal(&have, NULL);
			return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0,
			                "index %s has no image for platform %s (it has: %s)", cur->digest.str,
			                w, *list ? list : "none");
		}
		sc_document *next = NULL;
		if (sc_source_document(src, pick, &next, err) < 0)
			return -1;
		sc_document_free(owned);
		owned = next;
		cur = next;
	}
	if (owned == NULL) {
		/* top itself is the image: hand back a copy the caller may free */
		return sc_document_parse(top->data, top->len, sc_document_media_type(top), "document",
		                         &src->limits, ret, err);
	}
	*ret = steal_pointer(&owned);
	return 0;
}

int sc_platform_option(const char *platform, sc_platform *ret, sconify_error_t *err)
{
	if (platform == NULL) {
		sc_platform_host(ret);
		return 0;
	}
	return sc_platform_parse(platform, ret, err);
}

static int do_copy(sc_copy_ctx *c, sconify_copy_result_t *ret_result, sconify_error_t *err)
{
	cleanup_document sc_document *top = NULL;
	if (sc_source_top(c->src, &top, err) < 0)
		return -1;

	sc_doc_out out = {0};
	int r;
	if (sc_doc_kind_is_index(top->kind) && c->opts->all_platforms) {
		if (!c->dst->caps.index)
			return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
			                "`%s' holds one image, not an index: pick one with --platform "
			                "instead of --all",
			                c->dst->name);
		r = copy_any(c, top, 0, &out, err);
	} else if (sc_doc_kind_is_index(top->kind)) {
		cleanup_document sc_document *image = NULL;
		r = sc_select_platform(c->src, top, &c->want, &image, err);
		if (r == 0)
			r = copy_image(c, image, &out, err);
	} else {
		r = copy_image(c, top, &out, err);
	}
	if (r == 0)
		r = c->dst->ops->commit(c->dst, out.media_type, &out.digest, out.size, err);
	if (r == 0 && ret_result) {
		ret_result->digest = xstrdup(out.digest.str);
		ret_result->media_type = xstrdup(out.media_type);
	}
	sc_doc_out_clear(&out);
	return r;
}

int sc_copy_ctx_open(sc_copy_ctx *c, const char *src, const char *dst, const sconify_copy_options_t *opts,
                     sconify_error_t *err)
{
	*c = (sc_copy_ctx){.opts = opts, .limits = opts->limits};
	sc_limits_fill(&c->limits);
	c->cpus = sc_online_cpus();
	c->retries = sc_retry_count(opts->retries);
	pthread_mutex_init(&c->progress_lock, NULL);
	if (sc_platform_option(opts->platform, &c->want, err) < 0)
		return -1;

	sc_transport_options so = {.limits = c->limits,
	                           .registry = &opts->src_registry,
	                           .retries = opts->retries, /* the convention, not the count */
	                           .debug = opts->debug,
	                           .debug_userdata = opts->debug_userdata};
	sc_transport_options dopt = so;
	dopt.registry = &opts->dest_registry;
	if (sc_source_open(src, &so, &c->src, err) < 0 || (dst && sc_dest_open(dst, &dopt, &c->dst, err) < 0))
		return -1;
	/* Layers at once: the cores for local work; more when a registry is
	 * involved, where the time goes in waiting for the network. */
	bool remote = c->src->ref->kind == SC_TRANSPORT_DOCKER ||
	              (c->dst && c->dst->ref->kind == SC_TRANSPORT_DOCKER);
	c->jobs = opts->jobs > 0 ? opts->jobs : remote ? 6 : (c->cpus < 4 ? c->cpus : 4);
	return 0;
}

void sc_copy_ctx_close(sc_copy_ctx *c)
{
	/* Freeing an uncommitted destination removes what it wrote. */
	sc_dest_free(c->dst);
	sc_source_free(c->src);
	sc_platform_clear(&c->want);
	pthread_mutex_destroy(&c->progress_lock);
	c->dst = NULL;
	c->src = NULL;
}

int sconify_copy(const char *src, const char *dst, const sconify_copy_options_t *opts,
                 sconify_copy_result_t *ret_result, sconify_error_t *err)
{
	sconify_copy_options_t defaults = {0};
	if (opts == NULL)
		opts = &defaults;
	_cleanup_(sc_copy_ctx_close) sc_copy_ctx c;
	int r = sc_copy_ctx_open(&c, src, dst, opts, err);
	if (r == 0)
		r = do_copy(&c, ret_result, err);
	if (r < 0) {
		cleanup_free char *qs = sc_quote(src, SC_QUOTE_MAX);
		sc_error_wrap(err, "copying `%s'", qs);
	}
	return r;
}

void sconify_copy_result_free(sconify_copy_result_t *result)
{
	if (result == NULL)
		return;
	free(result->digest);
	free(result->media_type);
	result->digest = result->media_type = NULL;
}
