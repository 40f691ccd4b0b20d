// SPDX-License-Identifier: MIT
/*
 * conformance.nonblocking_start (spec/conformance.md Part 2): a
 * non-blockable invalidation (the OOM-reaper analogue, hmmu_mm_reap) whose
 * subscriber cannot proceed returns -EAGAIN, the caller does not call end,
 * subscribers that succeeded get their end exactly once, and every
 * sequence stays consistent (spec 1.5 steps 2c, 3, 4; 1.10).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "notifier_rec.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define BASE 0x40000000UL
#define V2 (BASE + 16 * PAGE)

static void touch(struct hmmu_mm *mm, unsigned long a, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		nr_write_byte(mm, a + i * PAGE, (unsigned char)(i + 1));
}

/* A thread that holds a driver lock until told to let go (a busy device). */
struct holder {
	pthread_t t;
	pthread_mutex_t *lock;
	struct nr_gate gate;
};

static void *holder_fn(void *p)
{
	struct holder *h = p;

	pthread_mutex_lock(h->lock);
	nr_gate_pass(&h->gate);	/* sets entered, waits for open */
	pthread_mutex_unlock(h->lock);
	return NULL;
}

static void holder_start(struct holder *h, pthread_mutex_t *lock)
{
	h->lock = lock;
	nr_gate_init(&h->gate);
	assert_int_equal(pthread_create(&h->t, NULL, holder_fn, h), 0);
	assert_true(nr_wait_true(&h->gate.entered));
}

static void holder_stop(struct holder *h)
{
	nr_gate_open(&h->gate);
	pthread_join(h->t, NULL);
	nr_gate_destroy(&h->gate);
}

/*
 * The reaper meets an interval subscriber whose driver lock is busy (it
 * try-locks, as dmirror does): that VMA is skipped with -EAGAIN, no
 * classic subscriber hears of it and no end is delivered; the other VMA
 * is reaped.  The skipped mirror stays valid (its seq is untouched), the
 * global seq is even and idle.  Once the lock is free, the reap completes.
 */
static void test_reaper_skips_busy_interval_subscriber(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct nr_isub si;
	struct nr_sub sc;
	struct holder h;
	unsigned long s0, g;
	long free0;

	touch(mm, nr_map_at(mm, BASE, 4 * PAGE, RW), 4);
	touch(mm, nr_map_at(mm, V2, 4 * PAGE, RW), 4);
	nr_isub_insert(&si, 2, mm, BASE, 4 * PAGE);
	si.trylock_nonblock = true;
	nr_sub_init(&sc, 1, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(&sc.n, mm), 0);
	s0 = hmmu_interval_read_begin(&si.in);
	g = nr_global_seq(mm);
	free0 = hmmu_node_nr_free_pages(0);
	hmmu_mmgrab(mm);
	holder_start(&h, &si.lock);
	nr_reset();
	assert_int_equal(hmmu_mm_reap(mm), -EAGAIN);
	nr_expect(0, NR_INTERVAL, 2, BASE, BASE + 4 * PAGE);
	nr_expect(1, NR_START, 1, V2, V2 + 4 * PAGE);
	nr_expect(2, NR_INV_RANGE, 1, V2, V2 + 4 * PAGE);
	nr_expect(3, NR_INV_RANGE, 1, V2, V2 + 4 * PAGE);
	nr_expect(4, NR_END, 1, V2, V2 + 4 * PAGE);
	nr_expect_count(5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(nr_get(i).flags, 0);
		if (nr_get(i).kind != NR_INV_RANGE)
			assert_int_equal(nr_get(i).event, HMMU_NOTIFY_UNMAP);
	}
	assert_int_equal(hmmu_node_nr_free_pages(0), free0 + 4);
	for (int i = 0; i < 4; i++)
		assert_non_null(nr_page_at(mm, BASE + i * PAGE));
	nr_assert_idle(mm);
	assert_int_equal(nr_global_seq(mm), g + 2);
	assert_false(hmmu_interval_read_retry(&si.in, s0));
	assert_false(nr_sub_hit_now(&si.in));	/* read_begin would not wait */
	holder_stop(&h);
	nr_reset();
	assert_int_equal(hmmu_mm_reap(mm), 0);
	nr_expect(0, NR_INTERVAL, 2, BASE, BASE + 4 * PAGE);
	nr_expect(1, NR_START, 1, BASE, BASE + 4 * PAGE);
	assert_int_equal(nr_count_of(NR_START, 1), 2);
	assert_int_equal(nr_count_of(NR_END, 1), 2);
	assert_int_equal(hmmu_node_nr_free_pages(0), free0 + 8);
	assert_true(hmmu_interval_read_retry(&si.in, s0));
	assert_int_equal(nr_global_seq(mm), g + 4);
	nr_assert_idle(mm);
	hmmu_mmdrop(mm);
	hmmu_notifier_unregister(&sc.n, mm);
	hmmu_interval_notifier_remove(&si.in);
}

/*
 * Two interval subscribers, the second refuses: -EAGAIN, no classic
 * subscriber is called, the cycle is closed; the first one (which
 * accepted) has the cycle's seq, so a reader of it retries; the second's
 * reader does not.
 */
static void test_interval_refusal_calls_no_classic(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct nr_isub s1, s2;
	struct nr_sub sc;
	struct hmmu_notifier_range r;
	unsigned long q1, q2, g;

	nr_isub_insert(&s1, 1, mm, BASE, PAGE);
	nr_isub_insert(&s2, 2, mm, BASE + PAGE, PAGE);
	s2.refuse_nonblock = true;
	nr_sub_init(&sc, 3, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(&sc.n, mm), 0);
	q1 = hmmu_interval_read_begin(&s1.in);
	q2 = hmmu_interval_read_begin(&s2.in);
	g = nr_global_seq(mm);
	nr_reset();
	hmmu_notifier_range_init(&r, HMMU_NOTIFY_UNMAP, 0, mm, BASE, BASE + 2 * PAGE);
	assert_int_equal(hmmu_notifier_invalidate_range_start_nonblock(&r), -EAGAIN);
	nr_expect(0, NR_INTERVAL, 1, BASE, BASE + 2 * PAGE);
	nr_expect(1, NR_INTERVAL, 2, BASE, BASE + 2 * PAGE);
	nr_expect_count(2);
	assert_int_equal(nr_get(0).seq, g + 1);
	assert_int_equal(nr_get(1).flags, 0);
	assert_int_equal(atomic_load(&sc.nr_calls), 0);
	nr_assert_idle(mm);
	assert_int_equal(nr_global_seq(mm), g + 2);
	pthread_mutex_lock(&s1.lock);
	assert_true(hmmu_interval_read_retry(&s1.in, q1));
	pthread_mutex_unlock(&s1.lock);
	assert_false(hmmu_interval_read_retry(&s2.in, q2));
	assert_int_equal(nr_sub_seq(&s1.in), g + 1);
	assert_int_equal(nr_sub_seq(&s2.in) & 1, 1);
	/* Neither reader would wait now. */
	assert_false(nr_sub_hit_now(&s1.in));
	assert_false(nr_sub_hit_now(&s2.in));
	assert_int_equal(hmmu_interval_read_begin(&s1.in), g + 1);
	hmmu_notifier_unregister(&sc.n, mm);
	hmmu_interval_notifier_remove(&s1.in);
	hmmu_interval_notifier_remove(&s2.in);
}

/*
 * A classic subscriber fails: every classic subscriber was called, each
 * one with an end gets it exactly once (from the failed start: the caller
 * does not call end), the failing one (no end) gets none; the interval
 * cycle opened first is closed, consistently.
 */
static void test_classic_failure_others_end_once(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct nr_sub s1, s2, s3;
	struct nr_isub si;
	struct hmmu_notifier_range r;
	unsigned long q, g;

	nr_isub_insert(&si, 9, mm, BASE, 4 * PAGE);
	nr_sub_init(&s1, 1, &nr_full_ops);
	nr_sub_init(&s2, 2, &nr_fail_ops);
	nr_sub_init(&s3, 3, &nr_nohook_ops);
	s2.fail_nonblock = true;
	assert_int_equal(hmmu_notifier_register(&s1.n, mm), 0);
	assert_int_equal(hmmu_notifier_register(&s2.n, mm), 0);
	assert_int_equal(hmmu_notifier_register(&s3.n, mm), 0);
	q = hmmu_interval_read_begin(&si.in);
	g = nr_global_seq(mm);
	for (int round = 0; round < 3; round++) {
		nr_reset();
		hmmu_notifier_range_init(&r, HMMU_NOTIFY_UNMAP, 0, mm, BASE, BASE + PAGE);
		assert_int_equal(hmmu_notifier_invalidate_range_start_nonblock(&r), -EAGAIN);
		nr_expect(0, NR_INTERVAL, 9, BASE, BASE + PAGE);
		nr_expect(1, NR_START, 3, BASE, BASE + PAGE);
		nr_expect(2, NR_START, 2, BASE, BASE + PAGE);
		nr_expect(3, NR_START, 1, BASE, BASE + PAGE);
		nr_expect(4, NR_END, 3, BASE, BASE + PAGE);
		nr_expect(5, NR_END, 1, BASE, BASE + PAGE);
		nr_expect_count(6);
		for (int i = 0; i < 6; i++)
			assert_int_equal(nr_get(i).flags, 0);
		assert_int_equal(nr_get(0).seq, g + 1 + 2 * round);
		nr_assert_idle(mm);
		assert_int_equal(nr_global_seq(mm), g + 2 + 2 * round);
		assert_true(hmmu_interval_read_retry(&si.in, q));
		assert_false(nr_sub_hit_now(&si.in));
	}
	hmmu_notifier_unregister(&s1.n, mm);
	hmmu_notifier_unregister(&s2.n, mm);
	hmmu_notifier_unregister(&s3.n, mm);
	hmmu_interval_notifier_remove(&si.in);
}

/* The reaper meets a failing classic subscriber: pages kept, others end once; later it succeeds. */
static void test_reaper_classic_failure(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct nr_sub s1, s2;
	long free0;

	touch(mm, nr_map_at(mm, BASE, 4 * PAGE, RW), 4);
	nr_sub_init(&s1, 1, &nr_full_ops);
	nr_sub_init(&s2, 2, &nr_fail_ops);
	s2.fail_nonblock = true;
	assert_int_equal(hmmu_notifier_register(&s1.n, mm), 0);
	assert_int_equal(hmmu_notifier_register(&s2.n, mm), 0);
	free0 = hmmu_node_nr_free_pages(0);
	nr_reset();
	assert_int_equal(hmmu_mm_reap(mm), -EAGAIN);
	nr_expect(0, NR_START, 2, BASE, BASE + 4 * PAGE);
	nr_expect(1, NR_START, 1, BASE, BASE + 4 * PAGE);
	nr_expect(2, NR_END, 1, BASE, BASE + 4 * PAGE);
	nr_expect_count(3);
	assert_int_equal(hmmu_node_nr_free_pages(0), free0);
	assert_non_null(nr_page_at(mm, BASE));
	/* The subscriber can proceed now. */
	s2.fail_nonblock = false;
	nr_reset();
	assert_int_equal(hmmu_mm_reap(mm), 0);
	nr_expect(0, NR_START, 2, BASE, BASE + 4 * PAGE);
	nr_expect(1, NR_START, 1, BASE, BASE + 4 * PAGE);
	nr_expect(2, NR_INV_RANGE, 1, BASE, BASE + 4 * PAGE);
	nr_expect(3, NR_INV_RANGE, 1, BASE, BASE + 4 * PAGE);
	nr_expect(4, NR_END, 1, BASE, BASE + 4 * PAGE);
	nr_expect_count(5);
	assert_int_equal(hmmu_node_nr_free_pages(0), free0 + 4);
	hmmu_notifier_unregister(&s1.n, mm);
	hmmu_notifier_unregister(&s2.n, mm);
}

/* ------------------------------------------------------------------ */
/* Non-blocking starts racing blocking ones                            */
/* ------------------------------------------------------------------ */

#define RACE_MAX_MS 20000

/* Counting subscribers (no log: this test makes many calls). */
struct csub {
	struct hmmu_notifier n;
	atomic_long starts, ends, bad;
};

static int csub_start(struct hmmu_notifier *n, const struct hmmu_notifier_range *r)
{
	struct csub *c = hmmu_container_of(n, struct csub, n);

	atomic_fetch_add(&c->starts, 1);
	return 0;
}

static void csub_end(struct hmmu_notifier *n, const struct hmmu_notifier_range *r)
{
	struct csub *c = hmmu_container_of(n, struct csub, n);

	/* An end never comes before its start. */
	if (atomic_fetch_add(&c->ends, 1) >= atomic_load(&c->starts))
		atomic_fetch_add(&c->bad, 1);
}

static const struct hmmu_notifier_ops csub_ops = {
	.invalidate_range_start = csub_start,
	.invalidate_range_end = csub_end,
};

struct cisub {
	struct hmmu_interval_notifier in;
	pthread_mutex_t lock;
	atomic_long refused, accepted;
};

static bool cisub_invalidate(struct hmmu_interval_notifier *in, const struct hmmu_notifier_range *r,
			     unsigned long cur_seq)
{
	struct cisub *c = hmmu_container_of(in, struct cisub, in);

	if (hmmu_notifier_range_blockable(r)) {
		pthread_mutex_lock(&c->lock);
	} else if (pthread_mutex_trylock(&c->lock)) {
		atomic_fetch_add(&c->refused, 1);
		return false;
	}
	hmmu_interval_set_seq(in, cur_seq);
	atomic_fetch_add(&c->accepted, 1);
	pthread_mutex_unlock(&c->lock);
	return true;
}

static const struct hmmu_interval_notifier_ops cisub_ops = { .invalidate = cisub_invalidate };

struct busy_driver {
	pthread_t t;
	struct hmmu_mm *mm;
	struct cisub *ci;
	atomic_bool *stop;
	atomic_long cycles;
};

/* The device side: holds its lock now and then, and runs blocking invalidations. */
static void *busy_driver_fn(void *p)
{
	struct busy_driver *d = p;

	while (!atomic_load(d->stop)) {
		pthread_mutex_lock(&d->ci->lock);
		sched_yield();
		pthread_mutex_unlock(&d->ci->lock);
		nr_inv(d->mm, HMMU_NOTIFY_CLEAR, BASE, BASE + PAGE);
		atomic_fetch_add(&d->cycles, 1);
	}
	return NULL;
}

/*
 * Non-blocking starts race a busy driver: each -EAGAIN gets no end and no
 * classic callback, each success gets exactly one end; at the end every
 * classic start has had its end, and the sequence is idle.
 */
static void test_nonblock_races_busy_driver(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct cisub ci;
	struct csub cs;
	struct busy_driver d;
	atomic_bool stop;
	long ok = 0, again = 0, t0 = nr_now_ms();

	memset(&ci, 0, sizeof(ci));
	memset(&cs, 0, sizeof(cs));
	pthread_mutex_init(&ci.lock, NULL);
	assert_int_equal(hmmu_interval_notifier_insert(&ci.in, mm, BASE, PAGE, &cisub_ops), 0);
	cs.n.ops = &csub_ops;
	assert_int_equal(hmmu_notifier_register(&cs.n, mm), 0);
	atomic_init(&stop, false);
	memset(&d, 0, sizeof(d));
	d.mm = mm;
	d.ci = &ci;
	d.stop = &stop;
	assert_int_equal(pthread_create(&d.t, NULL, busy_driver_fn, &d), 0);
	while (nr_now_ms() - t0 < RACE_MAX_MS && (ok < 100 || again < 10 || atomic_load(&d.cycles) < 100)) {
		struct hmmu_notifier_range r;
		int err;

		hmmu_notifier_range_init(&r, HMMU_NOTIFY_UNMAP, 0, mm, BASE, BASE + PAGE);
		err = hmmu_notifier_invalidate_range_start_nonblock(&r);
		assert_true(err == 0 || err == -EAGAIN);
		if (err) {
			again++;
			continue;
		}
		ok++;
		hmmu_notifier_invalidate_range_end(&r);
	}
	atomic_store(&stop, true);
	pthread_join(d.t, NULL);
	print_message("# %ld non-blocking starts succeeded, %ld got -EAGAIN, %ld blocking cycles\n", ok, again,
		      atomic_load(&d.cycles));
	assert_true(ok > 0 && again > 0);
	assert_int_equal(atomic_load(&ci.refused), again);
	assert_int_equal(atomic_load(&cs.starts), ok + atomic_load(&d.cycles));
	assert_int_equal(atomic_load(&cs.ends), ok + atomic_load(&d.cycles));
	assert_int_equal(atomic_load(&cs.bad), 0);
	nr_assert_idle(mm);
	hmmu_notifier_unregister(&cs.n, mm);
	hmmu_interval_notifier_remove(&ci.in);
	pthread_mutex_destroy(&ci.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_reaper_skips_busy_interval_subscriber),
		HMMU_TEST(test_interval_refusal_calls_no_classic),
		HMMU_TEST(test_classic_failure_others_end_once),
		HMMU_TEST(test_reaper_classic_failure),
		HMMU_TEST(test_nonblock_races_busy_driver),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
