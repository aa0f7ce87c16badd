/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the copy engine, inspect and the conversion. */
#ifndef SC_COPY_H
#define SC_COPY_H

#include <jansson.h>
#include <pthread.h>

#include "image/document.h"
#include "image/platform.h"
#include "layer/compress.h"
#include "transport/transport.h"

/* Follows indexes from top down to the image for want (top may already be
 * an image; *ret is then a copy of it). */
int sc_select_platform(sc_source *src, const sc_document *top, const sc_platform *want, sc_document **ret,
                       sconify_error_t *err);
/* platform NULL means the host's. */
int sc_platform_option(const char *platform, sc_platform *ret, sconify_error_t *err);
int sc_online_cpus(void);

/* One copy (or conversion) between a source and a destination. */
typedef struct {
	sc_source *src;
	sc_dest *dst;
	const sconify_copy_options_t *opts;
	sconify_limits_t limits;
	sc_platform want;
	int jobs;
	int cpus;
	int retries;
	pthread_mutex_t progress_lock;
} sc_copy_ctx;

/* Opens src and, unless dst is NULL, dst with the options' transports; the
 * context is closed with sc_copy_ctx_close() whatever this returned. */
int sc_copy_ctx_open(sc_copy_ctx *c, const char *src, const char *dst, const sconify_copy_options_t *opts,
                     sconify_error_t *err);
/* Without a commit, the destination takes back what it wrote. */
void sc_copy_ctx_close(sc_copy_ctx *c);
void sc_copy_progress(sc_copy_ctx *c, sconify_event_t ev, const sc_digest *d, uint64_t done, uint64_t total);
/* Copies (or mounts, or skips when there) a blob as it is. */
int sc_copy_pass_blob(sc_copy_ctx *c, const sc_descriptor *in, sconify_event_t ev, sconify_error_t *err);
/* Runs fn(userdata, i, err) for every i in [0, n) on sc_copy_workers(c, n)
 * threads. Jobs start in index order and none starts after one failed, so
 * every job before a failed one ran. The failure reported is the first in
 * index order; the others are dropped. fn must be safe to run concurrently
 * for different i. */
typedef int (*sc_copy_job_fn)(void *userdata, size_t i, sconify_error_t *err);
int sc_copy_run_jobs(sc_copy_ctx *c, size_t n, sc_copy_job_fn fn, void *userdata, sconify_error_t *err);
/* How many threads sc_copy_run_jobs uses for n jobs: c->jobs, one when the
 * destination takes one blob at a time; at most n, at least 1. */
size_t sc_copy_workers(const sc_copy_ctx *c, size_t n);
/* The compression a layer gets at the destination. */
sc_compression sc_copy_wanted_compression(sc_copy_ctx *c, sc_compression have);

/* A document written to the destination. */
typedef struct {
	char *media_type;
	sc_digest digest;
	uint64_t size;
} sc_doc_out;
void sc_doc_out_clear(sc_doc_out *o);
/* idx with each entry pointing at outs[i] (platform and annotations kept);
 * to_oci: with the OCI index media type. */
json_t *sc_copy_index_rewrite(const sc_document *idx, const sc_doc_out *outs, bool to_oci);
/* Writes src's exact bytes, or root (a rewrite of it) when not NULL, after
 * parsing it as strictly as any input. */
int sc_copy_put_document(sc_copy_ctx *c, const sc_document *src, json_t *root, sconify_event_t ev,
                         sc_doc_out *ret, sconify_error_t *err);

#endif
