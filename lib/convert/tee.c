/* SPDX-License-Identifier: Apache-2.0 */
#include "convert/tee.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xalloc.h"
#include "layer/compress.h"

#define TEE_MARKS 64

struct sc_tee {
	sc_writer *w;
	int (*seal)(void *);
	void *seal_ctx;
	sc_reader *dec;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu */
	unsigned char *ring; /* blob bytes [sent, end) at their offset modulo SC_TEE_RING */
	uint64_t sent, end, allowed;
	struct {
		uint64_t in, out_bound;
	} marks[TEE_MARKS]; /* oldest first */
	size_t n_marks;
	uint64_t clean; /* every entry before this lies outside the encrypted regions */
	bool encrypted; /* an entry in an encrypted region was seen */
	bool stop;      /* encrypted, failed, given up or abandoned: nothing more is sent */
	bool eof;       /* everything was read and nothing stopped it: send it all */
	bool complete;  /* every byte went out and the seal succeeded */
	bool behind;    /* it gave up because sending fell behind reading */
};

/* Under mu: the marks the planner passed allow their bytes. */
static void clear_marks(sc_tee *t)
{
	size_t k = 0;
	while (k < t->n_marks && t->marks[k].out_bound <= t->clean) {
		if (t->marks[k].in > t->allowed)
			t->allowed = t->marks[k].in;
		k++;
	}
	if (k == 0)
		return;
	memmove(t->marks, t->marks + k, (t->n_marks - k) * sizeof(t->marks[0]));
	t->n_marks -= k;
	pthread_cond_broadcast(&t->cv);
}

void sc_tee_mark_at(sc_tee *t, uint64_t in, uint64_t out_bound)
{
	pthread_mutex_lock(&t->mu);
	if (t->n_marks == TEE_MARKS)
		t->n_marks--; /* the newer mark allows all the dropped one did, later */
	t->marks[t->n_marks].in = in;
	t->marks[t->n_marks].out_bound = out_bound;
	t->n_marks++;
	clear_marks(t);
	pthread_mutex_unlock(&t->mu);
}

void sc_tee_mark(sc_tee *t)
{
	uint64_t in, out_bound;
	sc_decompress_progress(t->dec, &in, &out_bound);
	sc_tee_mark_at(t, in, out_bound);
}

void sc_tee_entry(void *userdata, uint64_t end, bool encrypted)
{
	sc_tee *t = userdata;
	pthread_mutex_lock(&t->mu);
	if (encrypted) {
		t->encrypted = t->stop = true;
		pthread_cond_broadcast(&t->cv);
	} else if (!t->encrypted && end > t->clean) {
		t->clean = end;
		clear_marks(t);
	}
	pthread_mutex_unlock(&t->mu);
}

/* The reading thread: keeps the bytes it read. When no room is left the tee
 * gives up rather than make the reader wait: either the destination takes
 * the bytes more slowly than the source gives them (then pass 2's copy,
 * which overlaps the rewrites, is the faster way), or the planner is
 * further behind than the ring holds (waiting would wait for the reader
 * itself). */
static void append(sc_tee *t, const unsigned char *p, size_t len)
{
	pthread_mutex_lock(&t->mu);
	if (!t->stop && t->end - t->sent + len > SC_TEE_RING) {
		/* behind when it had bytes it may send; else the planner is */
		t->behind = t->allowed > t->sent;
		t->stop = true;
	}
	if (!t->stop) {
		while (len > 0) {
			size_t at = (size_t)(t->end % SC_TEE_RING);
			size_t k = SC_TEE_RING - at < len ? SC_TEE_RING - at : len;
			memcpy(t->ring + at, p, k);
			t->end += k;
			p += k;
			len -= k;
		}
		pthread_cond_broadcast(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
}

static void *tee_main(void *arg)
{
	sc_tee *t = arg;
	pthread_mutex_lock(&t->mu);
	for (;;) {
		if (t->stop) /* first: a stopped tee sends nothing, eof or not */
			break;
		uint64_t upto = t->eof ? t->end : (t->allowed < t->end ? t->allowed : t->end);
		if (t->eof && t->sent == t->end) {
			pthread_mutex_unlock(&t->mu);
			bool sealed = t->seal(t->seal_ctx) == 0;
			pthread_mutex_lock(&t->mu);
			t->complete = sealed;
			break;
		}
		if (t->sent >= upto) {
			pthread_cond_wait(&t->cv, &t->mu);
			continue;
		}
		size_t at = (size_t)(t->sent % SC_TEE_RING);
		size_t k = (size_t)(upto - t->sent);
		if (k > SC_TEE_RING - at)
			k = SC_TEE_RING - at;
		if (k > SC_STREAM_CHUNK)
			k = SC_STREAM_CHUNK;
		pthread_mutex_unlock(&t->mu);
		/* [sent, sent + k) is this thread's alone: the reader writes only
		 * past end, and end - sent never exceeds the ring */
		sconify_error_t e = NULL;
		int r = sc_writer_write(t->w, t->ring + at, k, &e);
		sconify_error_free(&e);
		pthread_mutex_lock(&t->mu);
		if (r < 0) {
			t->stop = true;
			break;
		}
		t->sent += k;
		pthread_cond_broadcast(&t->cv);
	}
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

sc_tee *sc_tee_new(sc_writer *w, int (*seal)(void *), void *seal_ctx)
{
	sc_tee *t = xzalloc(sizeof(*t));
	t->w = w;
	t->seal = seal;
	t->seal_ctx = seal_ctx;
	if (pthread_mutex_init(&t->mu, NULL) != 0 || pthread_cond_init(&t->cv, NULL) != 0)
		abort();
	t->ring = xmalloc(SC_TEE_RING);
	t->running = pthread_create(&t->thread, NULL, tee_main, t) == 0;
	if (!t->running) {
		sc_tee_free(t);
		return NULL;
	}
	return t;
}

void sc_tee_set_decompressor(sc_tee *t, sc_reader *dec)
{
	t->dec = dec;
}

void sc_tee_abandon(sc_tee *t)
{
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

static void join(sc_tee *t)
{
	if (!t->running)
		return;
	pthread_join(t->thread, NULL);
	t->running = false;
}

bool sc_tee_finish(sc_tee *t, uint64_t size)
{
	pthread_mutex_lock(&t->mu);
	/* More than SC_TEE_FINISH_LAG still to send: the destination is
	 * behind, and pass 1 would wait for it. The tee's thread first gets
	 * SC_TEE_FINISH_GRACE_MS to catch up, so that a thread the scheduler
	 * kept waiting does not count as a slow destination. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += SC_TEE_FINISH_GRACE_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	while (!t->stop && t->end == size && t->end - t->sent > SC_TEE_FINISH_LAG &&
	       pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0)
		;
	if (t->end == size && t->end - t->sent <= SC_TEE_FINISH_LAG) {
		t->eof = true;
	} else {
		t->behind |= !t->stop && t->end == size;
		t->stop = true;
	}
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	join(t);
	free(t->ring);
	t->ring = NULL;
	return t->complete;
}

bool sc_tee_fell_behind(sc_tee *t)
{
	pthread_mutex_lock(&t->mu);
	bool r = t->behind;
	pthread_mutex_unlock(&t->mu);
	return r;
}

bool sc_tee_saw_encrypted(sc_tee *t)
{
	pthread_mutex_lock(&t->mu);
	bool r = t->encrypted;
	pthread_mutex_unlock(&t->mu);
	return r;
}

uint64_t sc_tee_sent(sc_tee *t)
{
	pthread_mutex_lock(&t->mu);
	uint64_t r = t->sent;
	pthread_mutex_unlock(&t->mu);
	return r;
}

void sc_tee_free(sc_tee *t)
{
	if (t == NULL)
		return;
	if (t->running) {
		sc_tee_abandon(t);
		join(t);
	}
	free(t->ring);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
}

/* ---- the reader ---- */

struct tee_reader {
	sc_reader base;
	sc_reader *inner;
	sc_tee *t;
};

static ssize_t tee_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	struct tee_reader *r = (struct tee_reader *)base;
	ssize_t n = sc_reader_read(r->inner, buf, len, err);
	if (n > 0)
		append(r->t, buf, (size_t)n);
	return n;
}

static void tee_reader_free(sc_reader *base)
{
	struct tee_reader *r = (struct tee_reader *)base;
	sc_reader_free(r->inner);
	free(r);
}

static const struct sc_reader_ops tee_reader_ops = {.read = tee_read, .free = tee_reader_free};

sc_reader *sc_tee_reader_new(sc_tee *t, sc_reader *inner)
{
	struct tee_reader *r = xzalloc(sizeof(*r));
	r->base.ops = &tee_reader_ops;
	r->inner = inner;
	r->t = t;
	return &r->base;
}
