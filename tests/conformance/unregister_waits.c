// SPDX-License-Identifier: MIT
/*
 * conformance.unregister_waits (spec/conformance.md Part 2): unregistering
 * a subscriber while its callback runs waits for the callback to return;
 * after unregister returns the callback is never called again.  Covers
 * classic unregister (an invalidation callback, and release called by a
 * concurrent teardown), interval remove (its invalidate callback), and a
 * stress of register/unregister against invalidations, aging and teardown
 * of every kind of callback.
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

static void touch(struct hmmu_mm *mm, unsigned long a, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		nr_write_byte(mm, a + i * PAGE, (unsigned char)(i + 1));
}

/* A thread running one call; `done` is set when it returns. */
struct call {
	pthread_t t;
	void (*fn)(struct call *c);
	struct hmmu_mm *mm;
	struct nr_sub *sub;
	struct nr_isub *isub;
	struct nr_gate *gate;
	atomic_bool done;
	bool gate_left_at_return;	/* the parked callback had returned */
	int releases_in, releases_out;	/* do_unregister: release calls entered / returned */
};

static void *call_fn(void *p)
{
	struct call *c = p;

	c->fn(c);
	if (c->gate)
		c->gate_left_at_return = atomic_load(&c->gate->left);
	atomic_store(&c->done, true);
	return NULL;
}

static void call_spawn(struct call *c, void (*fn)(struct call *c))
{
	c->fn = fn;
	atomic_init(&c->done, false);
	assert_int_equal(pthread_create(&c->t, NULL, call_fn, c), 0);
}

static void do_munmap(struct call *c)
{
	assert_int_equal(hmmu_munmap(c->mm, BASE, 4 * PAGE), 0);
}

static void do_unregister(struct call *c)
{
	hmmu_notifier_unregister(&c->sub->n, c->mm);
	c->releases_out = atomic_load(&c->sub->nr_release_done);
	c->releases_in = atomic_load(&c->sub->nr_release);
}

static void do_remove(struct call *c)
{
	hmmu_interval_notifier_remove(&c->isub->in);
}

static void do_mmput(struct call *c)
{
	hmmu_mmput(c->mm);
}

/*
 * A munmap's invalidate_range_start callback is parked; unregister from a
 * third thread does not return before the callback has; after it, the
 * subscription hears nothing more.
 */
static void test_unregister_waits_for_start(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct nr_gate gate;
	struct nr_sub s;
	struct call a = { .mm = mm }, b = { .mm = mm, .sub = &s };
	bool early;
	int calls;

	touch(mm, nr_map_at(mm, BASE, 8 * PAGE, RW), 8);
	nr_gate_init(&gate);
	nr_sub_init(&s, 1, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(&s.n, mm), 0);
	s.gate = &gate;
	b.gate = &gate;
	nr_reset();
	call_spawn(&a, do_munmap);
	assert_true(nr_wait_true(&gate.entered));
	call_spawn(&b, do_unregister);
	nr_sleep_ms(50);		/* time to reach its wait */
	early = atomic_load(&b.done) || atomic_load(&a.done);	/* must be false, whatever the delay */
	nr_gate_open(&gate);
	pthread_join(a.t, NULL);
	pthread_join(b.t, NULL);
	assert_false(early);
	assert_true(b.gate_left_at_return);
	calls = atomic_load(&s.nr_calls);
	/* Nothing more: invalidations, aging, a write fault on the zero page. */
	assert_int_equal(hmmu_munmap(mm, BASE + 4 * PAGE, PAGE), 0);
	assert_int_equal(hmmu_madvise(mm, BASE + 5 * PAGE, PAGE, MADV_DONTNEED), 0);
	assert_int_equal(nr_read_byte(mm, BASE + 5 * PAGE), 0);
	nr_write_byte(mm, BASE + 5 * PAGE, 1);
	assert_true(hmmu_mm_age(mm, BASE + 5 * PAGE, BASE + 8 * PAGE, HMMU_AGE_FLUSH) >= 0);
	assert_int_equal(atomic_load(&s.nr_calls), calls);
	assert_int_equal(atomic_load(&s.nr_release), 1);	/* by unregister: it was still linked */
	nr_gate_destroy(&gate);
}

/*
 * Teardown's release callback is parked; a concurrent unregister (which
 * may call release itself: it is idempotent) returns only after every
 * release call has returned.
 */
static void test_unregister_waits_for_release(void **state)
{
	struct hmmu_mm *mm;
	struct nr_gate gate;
	struct nr_sub s;
	struct call a, b;
	bool early;

	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm), 0);
	touch(mm, nr_map_at(mm, BASE, 4 * PAGE, RW), 4);
	nr_gate_init(&gate);
	nr_sub_init(&s, 1, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(&s.n, mm), 0);
	s.release_gate = &gate;
	a = (struct call){ .mm = mm };
	b = (struct call){ .mm = mm, .sub = &s };
	nr_reset();
	call_spawn(&a, do_mmput);
	assert_true(nr_wait_true(&gate.entered));
	call_spawn(&b, do_unregister);
	nr_sleep_ms(50);
	early = atomic_load(&b.done);
	nr_gate_open(&gate);
	pthread_join(b.t, NULL);
	assert_false(early);
	/* Every release call that started had returned when unregister did. */
	assert_true(b.releases_in >= 1);
	assert_int_equal(b.releases_out, b.releases_in);
	pthread_join(a.t, NULL);
	assert_int_equal(nr_count_of(NR_RELEASE, 1), atomic_load(&s.nr_release));
	assert_true(atomic_load(&s.nr_release) == 1 || atomic_load(&s.nr_release) == 2);
	assert_int_equal(nr_count_of(NR_START, 1), 0);	/* no UNMAP: unlinked first */
	nr_gate_destroy(&gate);
}

/*
 * An interval callback (of a munmap) is parked after set_seq; remove from
 * another thread returns only after it returned and the cycle ended; the
 * subscription is never called again.
 */
static void test_remove_waits_for_interval_callback(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct nr_gate gate;
	struct nr_isub si;
	struct call a = { .mm = mm }, b = { .mm = mm, .isub = &si };
	bool early;

	touch(mm, nr_map_at(mm, BASE, 8 * PAGE, RW), 8);
	nr_gate_init(&gate);
	nr_isub_insert(&si, 1, mm, BASE, 8 * PAGE);
	si.gate = &gate;
	b.gate = &gate;
	call_spawn(&a, do_munmap);
	assert_true(nr_wait_true(&gate.entered));
	call_spawn(&b, do_remove);
	nr_sleep_ms(50);
	early = atomic_load(&b.done);
	nr_gate_open(&gate);
	pthread_join(a.t, NULL);
	pthread_join(b.t, NULL);
	assert_false(early);
	assert_true(b.gate_left_at_return);
	assert_int_equal(atomic_load(&si.nr_calls), 1);
	assert_int_equal(hmmu_munmap(mm, BASE, 8 * PAGE), 0);
	nr_inv(mm, HMMU_NOTIFY_CLEAR, BASE, BASE + PAGE);
	assert_int_equal(atomic_load(&si.nr_calls), 1);
	nr_assert_idle(mm);
	nr_gate_destroy(&gate);
}

/* ------------------------------------------------------------------ */
/* Stress: no callback after unregister / remove                       */
/* ------------------------------------------------------------------ */

#define STRESS_ROUNDS 150
#define REGION_PAGES 32

/* A subscription that counts callbacks arriving after it was declared dead. */
struct dsub {
	struct hmmu_notifier n;
	struct hmmu_interval_notifier in;
	atomic_bool dead;
	atomic_long calls;
};

static atomic_long late_calls;

static void dsub_hit(struct dsub *d)
{
	atomic_fetch_add(&d->calls, 1);
	if (atomic_load(&d->dead))
		atomic_fetch_add(&late_calls, 1);
	sched_yield();	/* stay inside a little: unregister must wait */
	if (atomic_load(&d->dead))
		atomic_fetch_add(&late_calls, 1);
}

static struct dsub *dsub_of(struct hmmu_notifier *n)
{
	return hmmu_container_of(n, struct dsub, n);
}

static void d_release(struct hmmu_notifier *n, struct hmmu_mm *mm)
{
	dsub_hit(dsub_of(n));
}

static int d_start(struct hmmu_notifier *n, const struct hmmu_notifier_range *r)
{
	dsub_hit(dsub_of(n));
	return 0;
}

static void d_end(struct hmmu_notifier *n, const struct hmmu_notifier_range *r)
{
	dsub_hit(dsub_of(n));
}

static void d_inv_range(struct hmmu_notifier *n, struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	atomic_fetch_add(&dsub_of(n)->calls, 1);	/* under a page-table lock: must not sleep */
	if (atomic_load(&dsub_of(n)->dead))
		atomic_fetch_add(&late_calls, 1);
}

static int d_young(struct hmmu_notifier *n, struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	d_inv_range(n, mm, start, end);
	return 0;
}

static int d_test_young(struct hmmu_notifier *n, struct hmmu_mm *mm, unsigned long addr)
{
	d_inv_range(n, mm, addr, addr + PAGE);
	return 0;
}

static const struct hmmu_notifier_ops d_ops = {
	.release = d_release,
	.clear_flush_young = d_young,
	.clear_young = d_young,
	.test_young = d_test_young,
	.invalidate_range_start = d_start,
	.invalidate_range_end = d_end,
	.invalidate_range = d_inv_range,
};

static bool d_invalidate(struct hmmu_interval_notifier *in, const struct hmmu_notifier_range *r,
			 unsigned long cur_seq)
{
	struct dsub *d = hmmu_container_of(in, struct dsub, in);

	hmmu_interval_set_seq(in, cur_seq);
	dsub_hit(d);
	return true;
}

static const struct hmmu_interval_notifier_ops d_iops = { .invalidate = d_invalidate };

struct churn {
	pthread_t t;
	struct hmmu_mm *mm;
	atomic_bool *stop;
	uint64_t rs;
};

/* Invalidations, faults and aging over the region, until stopped. */
static void *churn_fn(void *p)
{
	struct churn *c = p;
	unsigned char v = 1;

	while (!atomic_load(c->stop)) {
		unsigned long a = BASE + (hmmu_test_rand(&c->rs) % (REGION_PAGES - 4)) * PAGE;

		switch (hmmu_test_rand(&c->rs) % 5) {
		case 0:
			hmmu_access(c->mm, a, &v, 1, HMMU_ACCESS_WRITE);
			break;
		case 1:
			hmmu_madvise(c->mm, a, 4 * PAGE, MADV_DONTNEED);
			break;
		case 2:
			hmmu_mprotect(c->mm, a, 2 * PAGE, PROT_READ);
			hmmu_mprotect(c->mm, a, 2 * PAGE, RW);
			break;
		case 3:
			hmmu_mm_age(c->mm, BASE, BASE + REGION_PAGES * PAGE, (unsigned int)(a >> 12) % 3);
			break;
		default:
			hmmu_mmap(c->mm, a, 2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		}
	}
	return NULL;
}

/*
 * Subscriptions come and go while two threads invalidate, fault and age:
 * once unregister / remove has returned, no callback of that subscription
 * runs (checked on entry and after a yield inside each callback).
 */
static void test_no_callback_after_unregister(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	static struct dsub d[2];
	struct churn c[2];
	atomic_bool stop;
	long calls = 0;

	atomic_init(&stop, false);
	atomic_store(&late_calls, 0);
	nr_map_at(mm, BASE, REGION_PAGES * PAGE, RW);
	for (int i = 0; i < 2; i++) {
		c[i] = (struct churn){ .mm = mm, .stop = &stop, .rs = hmmu_test_seed() * (i + 7) };
		assert_int_equal(pthread_create(&c[i].t, NULL, churn_fn, &c[i]), 0);
	}
	for (int round = 0; round < STRESS_ROUNDS; round++) {
		for (int i = 0; i < 2; i++) {
			memset(&d[i], 0, sizeof(d[i]));
			d[i].n.ops = &d_ops;
		}
		assert_int_equal(hmmu_notifier_register(&d[0].n, mm), 0);
		assert_int_equal(hmmu_interval_notifier_insert(&d[1].in, mm, BASE, REGION_PAGES * PAGE, &d_iops), 0);
		sched_yield();
		hmmu_notifier_unregister(&d[0].n, mm);
		atomic_store(&d[0].dead, true);
		hmmu_interval_notifier_remove(&d[1].in);
		atomic_store(&d[1].dead, true);
		sched_yield();
		calls += atomic_load(&d[0].calls) + atomic_load(&d[1].calls);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(c[i].t, NULL);
	print_message("# %ld callbacks over %d subscriptions\n", calls, 2 * STRESS_ROUNDS);
	assert_int_equal(atomic_load(&late_calls), 0);
	assert_true(calls > 0);
	nr_assert_idle(mm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_unregister_waits_for_start),
		HMMU_TEST(test_unregister_waits_for_release),
		HMMU_TEST(test_remove_waits_for_interval_callback),
		HMMU_TEST(test_no_callback_after_unregister),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
