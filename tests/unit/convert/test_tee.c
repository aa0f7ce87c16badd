/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tee of pass 1 (convert/tee.h): bytes go out only once the planner has
 * cleared every entry they decode to, never after an entry in an encrypted
 * region, and all of them (then the seal) once the layer was read clean.
 * The marks are given by hand here, so the gate itself is what is tested.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/tee.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/xalloc.h"
#include "support.h"

#define LEN (1u << 20)

static int seals;
static int seal(void *ctx)
{
	(void)ctx;
	seals++;
	return 0;
}

static unsigned char *data(size_t len)
{
	unsigned char *d = xmalloc(len);
	for (size_t i = 0; i < len; i++)
		d[i] = (unsigned char)(i * 2654435761u >> 13);
	return d;
}

/* Reads n bytes of r, as the reading thread does. */
static void read_n(sc_reader *r, size_t n)
{
	cleanup_error sconify_error_t err = NULL;
	static unsigned char buf[65536];
	while (n > 0) {
		ssize_t got = sc_reader_read(r, buf, n < sizeof(buf) ? n : sizeof(buf), &err);
		ck_assert_int_gt(got, 0);
		n -= (size_t)got;
	}
}

/* Waits (at most 5 s) until the tee sent at least n bytes; what it sent. */
static uint64_t wait_sent(sc_tee *t, uint64_t n)
{
	for (int i = 0; i < 5000 && sc_tee_sent(t) < n; i++)
		usleep(1000);
	return sc_tee_sent(t);
}

/* A tee writing to memory, and a reader of len bytes through it. */
struct rig {
	unsigned char *d;
	sc_test_memw *w; /* read only after the tee is finished */
	sc_tee *t;
	sc_reader *r;
};

static struct rig rig_up(size_t len, useconds_t delay, bool fail)
{
	struct rig g = {.d = data(len), .w = sc_test_memw_new()};
	g.w->delay_us = delay;
	g.w->fail = fail;
	seals = 0;
	g.t = sc_tee_new(&g.w->base, seal, NULL);
	ck_assert_ptr_nonnull(g.t);
	g.r = sc_tee_reader_new(g.t, sc_mem_reader_new(g.d, len));
	return g;
}

static void rig_down(struct rig *g)
{
	sc_reader_free(g->r);
	sc_tee_free(g->t);
	sc_writer_free(&g->w->base);
	free(g->d);
}

/* What a tee sends while nothing clears more: it had 100 ms to send it. */
static uint64_t settled_sent(sc_tee *t)
{
	usleep(100 * 1000);
	return sc_tee_sent(t);
}

START_TEST(nothing_goes_out_before_the_planner_passed_the_bound)
{
	struct rig g = rig_up(LEN, 0, false);
	read_n(g.r, 300000);
	sc_tee_mark_at(g.t, 50000, 200000);
	ck_assert_uint_eq(settled_sent(g.t), 0);
	sc_tee_entry(g.t, 150000, false); /* not yet at the bound */
	ck_assert_uint_eq(settled_sent(g.t), 0);
	sc_tee_entry(g.t, 200000, false);
	ck_assert_uint_eq(wait_sent(g.t, 50000), 50000);
	ck_assert_uint_eq(settled_sent(g.t), 50000); /* and no more */
	/* a mark the planner passed already allows its bytes at once */
	sc_tee_mark_at(g.t, 120000, 190000);
	ck_assert_uint_eq(wait_sent(g.t, 120000), 120000);
	/* a later mark not passed yet allows nothing */
	sc_tee_mark_at(g.t, 250000, 400000);
	ck_assert_uint_eq(settled_sent(g.t), 120000);
	ck_assert(!sc_tee_finish(g.t, LEN)); /* only 300000 bytes were read */
	ck_assert(!sc_tee_fell_behind(g.t));
	ck_assert_int_eq(seals, 0);
	ck_assert_uint_eq(g.w->buf.len, 120000);
	ck_assert(memcmp(g.w->buf.data, g.d, 120000) == 0);
	rig_down(&g);
}
END_TEST

START_TEST(an_entry_in_an_encrypted_region_stops_it_for_good)
{
	struct rig g = rig_up(LEN, 0, false);
	read_n(g.r, 200000);
	sc_tee_mark_at(g.t, 10000, 20000);
	sc_tee_entry(g.t, 30000, false);
	ck_assert_uint_eq(wait_sent(g.t, 10000), 10000);
	sc_tee_entry(g.t, 40000, true);
	ck_assert(sc_tee_saw_encrypted(g.t));
	ck_assert(!sc_tee_fell_behind(g.t));
	/* nothing after it clears anything any more */
	sc_tee_mark_at(g.t, 100000, 50000);
	sc_tee_entry(g.t, 1u << 30, false);
	read_n(g.r, LEN - 200000);
	ck_assert_uint_eq(settled_sent(g.t), 10000);
	ck_assert(!sc_tee_finish(g.t, LEN));
	ck_assert(!sc_tee_fell_behind(g.t));
	ck_assert_int_eq(seals, 0);
	ck_assert_uint_eq(g.w->buf.len, 10000);
	rig_down(&g);
}
END_TEST

START_TEST(a_clean_layer_goes_out_whole_then_is_sealed)
{
	struct rig g = rig_up(LEN, 0, false);
	for (size_t off = 65536; off <= LEN; off += 65536) {
		read_n(g.r, 65536);
		sc_tee_mark_at(g.t, off - 1000, off + 5000);
		sc_tee_entry(g.t, off, false);
	}
	ck_assert(sc_tee_finish(g.t, LEN));
	ck_assert_int_eq(seals, 1);
	ck_assert_uint_eq(g.w->buf.len, LEN);
	ck_assert(memcmp(g.w->buf.data, g.d, LEN) == 0);
	ck_assert(!sc_tee_saw_encrypted(g.t));
	rig_down(&g);
}
END_TEST

START_TEST(a_planner_further_behind_than_the_ring_makes_it_give_up_without_blocking)
{
	size_t len = SC_TEE_RING + LEN;
	struct rig g = rig_up(len, 0, false);
	read_n(g.r, len); /* returns: the reader never waits for the planner */
	sc_tee_entry(g.t, len, false);
	ck_assert(!sc_tee_finish(g.t, len));
	ck_assert(!sc_tee_fell_behind(g.t)); /* the planner was, not the destination */
	ck_assert_uint_eq(g.w->buf.len, 0);
	ck_assert_int_eq(seals, 0);
	rig_down(&g);
}
END_TEST

START_TEST(a_destination_slower_than_the_source_makes_it_give_up_without_blocking)
{
	/* everything is cleared at once, but the destination takes 256 KiB
	 * per 20 ms: the ring fills, and the tee gives up instead of making
	 * the reader wait (pass 2 copies the layer then) */
	size_t len = 2 * SC_TEE_RING;
	struct rig g = rig_up(len, 20 * 1000, false);
	sc_tee_mark_at(g.t, len, 0);
	sc_tee_entry(g.t, 1, false);
	read_n(g.r, len);
	uint64_t sent = sc_tee_sent(g.t);
	ck_assert_uint_lt(sent, SC_TEE_RING); /* the reader did not wait for it */
	ck_assert(!sc_tee_finish(g.t, len));
	ck_assert(sc_tee_fell_behind(g.t));
	ck_assert_int_eq(seals, 0);
	rig_down(&g);
}
END_TEST

START_TEST(a_layer_ending_far_ahead_of_the_destination_is_given_up)
{
	/* a layer smaller than the ring, cleared at once, to a slow
	 * destination: at its end most of it is still to send, and finishing
	 * gives up rather than wait for it */
	size_t len = SC_TEE_FINISH_LAG + 4 * LEN;
	struct rig g = rig_up(len, 20 * 1000, false);
	sc_tee_mark_at(g.t, len, 0);
	sc_tee_entry(g.t, 1, false);
	read_n(g.r, len);
	ck_assert_uint_gt(len - sc_tee_sent(g.t), SC_TEE_FINISH_LAG);
	ck_assert(!sc_tee_finish(g.t, len));
	ck_assert(sc_tee_fell_behind(g.t));
	ck_assert_int_eq(seals, 0);
	rig_down(&g);
}
END_TEST

START_TEST(an_encrypted_entry_after_the_whole_layer_is_not_falling_behind)
{
	/* the whole layer read, far ahead of a slow destination, then the
	 * planner meets an encrypted entry: the tee stops for that, and the
	 * later layers of the image may still be uploaded */
	size_t len = SC_TEE_FINISH_LAG + 4 * LEN;
	struct rig g = rig_up(len, 20 * 1000, false);
	sc_tee_mark_at(g.t, len, 0);
	sc_tee_entry(g.t, 1, false);
	read_n(g.r, len);
	sc_tee_entry(g.t, 2, true);
	ck_assert(!sc_tee_finish(g.t, len));
	ck_assert(sc_tee_saw_encrypted(g.t));
	ck_assert(!sc_tee_fell_behind(g.t));
	rig_down(&g);
}
END_TEST

START_TEST(a_failing_destination_stops_it_and_reading_goes_on)
{
	size_t len = SC_TEE_RING + LEN;
	struct rig g = rig_up(len, 0, true);
	read_n(g.r, 100000);
	sc_tee_mark_at(g.t, 100000, 100000);
	sc_tee_entry(g.t, 100000, false);
	usleep(100 * 1000);
	read_n(g.r, len - 100000);
	ck_assert(!sc_tee_finish(g.t, len));
	ck_assert_int_eq(seals, 0);
	rig_down(&g);
}
END_TEST

START_TEST(an_abandoned_tee_keeps_nothing_and_never_blocks_the_reader)
{
	/* abandoned (a failure elsewhere in pass 1) before anything was read */
	size_t len = SC_TEE_RING + LEN;
	struct rig g = rig_up(len, 0, false);
	sc_tee_abandon(g.t);
	read_n(g.r, len);
	ck_assert(!sc_tee_finish(g.t, len));
	ck_assert_uint_eq(g.w->buf.len, 0);
	rig_down(&g);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tee");
	TCase *tc = tcase_create("tee");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, nothing_goes_out_before_the_planner_passed_the_bound);
	tcase_add_test(tc, an_entry_in_an_encrypted_region_stops_it_for_good);
	tcase_add_test(tc, a_clean_layer_goes_out_whole_then_is_sealed);
	tcase_add_test(tc, a_planner_further_behind_than_the_ring_makes_it_give_up_without_blocking);
	tcase_add_test(tc, a_destination_slower_than_the_source_makes_it_give_up_without_blocking);
	tcase_add_test(tc, a_layer_ending_far_ahead_of_the_destination_is_given_up);
	tcase_add_test(tc, an_encrypted_entry_after_the_whole_layer_is_not_falling_behind);
	tcase_add_test(tc, a_failing_destination_stops_it_and_reading_goes_on);
	tcase_add_test(tc, an_abandoned_tee_keeps_nothing_and_never_blocks_the_reader);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
