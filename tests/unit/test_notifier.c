// SPDX-License-Identifier: MIT
/*
 * Unit tests of the MMU notifiers (spec section 1): classic subscriptions
 * (register/unregister, get/put, release, start/end, the secondary-TLB
 * hook, young ops), their wiring into the primary MMU's paths (munmap,
 * MADV_DONTNEED, mprotect, copy-on-write of the zero page, huge-PMD split,
 * teardown, aging, the reaper), the non-blocking start, and interval
 * subscriptions (insert/remove, the odd/even sequence, read_begin/retry,
 * deferred edits, lookup), ending with a concurrent mirroring test that
 * runs the canonical retry loop against munmap/mmap, mprotect and faults.
 *
 * Every callback appends to one log (notifier_rec.h); the tests compare it
 * with the exact sequence the spec prescribes.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "notifier_rec.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define MiB (1UL << 20)
/* Fixed addresses: 2 MiB aligned, so small ranges sit in one PTE table. */
#define BASE 0x40000000UL
#define FAR 0x7f0000000000UL
#define BLK HMMU_NOTIFIER_RANGE_BLOCKABLE

static int mm_count(struct hmmu_mm *mm)
{
	return atomic_load(&mm->mm_count);
}

/* Event @i has @event, @flags and no owner. */
static void expect_ev(int i, enum hmmu_notifier_event event, unsigned int flags)
{
	struct nr_event e = nr_get(i);

	assert_int_equal(e.event, event);
	assert_int_equal(e.flags, flags);
	assert_null(e.owner);
}

static void expect_ptl(int i, enum nr_ptl ptl)
{
	assert_int_equal(nr_get(i).ptl, ptl);
}

static void register_sub(struct nr_sub *s, int id, const struct hmmu_notifier_ops *ops, struct hmmu_mm *mm)
{
	nr_sub_init(s, id, ops);
	assert_int_equal(hmmu_notifier_register(&s->n, mm), 0);
}

/* Write one byte into each page of [a, a + n pages). */
static void touch_pages(struct hmmu_mm *mm, unsigned long a, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		nr_write_byte(mm, a + i * PAGE, (unsigned char)(i + 1));
}

/* ------------------------------------------------------------------ */
/* Ranges                                                              */
/* ------------------------------------------------------------------ */

/* range_init zeroes the owner; init_owner sets it; blockable reads flag 0. */
static void test_range_init(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_notifier_range r;
	int owner;

	memset(&r, 0xa5, sizeof(r));
	hmmu_notifier_range_init(&r, HMMU_NOTIFY_CLEAR, BLK, mm, BASE, BASE + PAGE);
	assert_null(r.owner);
	assert_ptr_equal(r.mm, mm);
	assert_int_equal(r.start, BASE);
	assert_int_equal(r.end, BASE + PAGE);
	assert_int_equal(r.event, HMMU_NOTIFY_CLEAR);
	assert_true(hmmu_notifier_range_blockable(&r));
	assert_false(hmmu_notifier_range_update_to_read_only(&r));
	hmmu_notifier_range_init_owner(&r, HMMU_NOTIFY_MIGRATE, 0, mm, 0, PAGE, &owner);
	assert_ptr_equal(r.owner, &owner);
	assert_false(hmmu_notifier_range_blockable(&r));
	assert_false(hmmu_notifier_range_update_to_read_only(&r));
}

/* ------------------------------------------------------------------ */
/* Classic: register / unregister                                      */
/* ------------------------------------------------------------------ */

static void test_register_einval(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *dead;
	struct nr_sub s;

	nr_sub_init(&s, 1, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(NULL, mm), -EINVAL);
	assert_int_equal(hmmu_notifier_register(&s.n, NULL), -EINVAL);
	s.n.ops = NULL;
	assert_int_equal(hmmu_notifier_register(&s.n, mm), -EINVAL);
	s.n.ops = &nr_full_ops;
	/* An address space without users. */
	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &dead), 0);
	hmmu_mmgrab(dead);
	hmmu_mmput(dead);
	assert_int_equal(hmmu_notifier_register(&s.n, dead), -EINVAL);
	hmmu_mmdrop(dead);
	assert_int_equal(mm_count(mm), 1);
	assert_int_equal(atomic_load(&s.nr_calls), 0);
}

/* unregister calls release once (still linked), pins are balanced, no callback after. */
static void test_register_unregister(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = nr_map_at(mm, BASE, 8 * PAGE, RW);
	struct nr_sub s;

	nr_reset();
	register_sub(&s, 1, &nr_full_ops, mm);
	assert_ptr_equal(s.n.mm, mm);
	assert_int_equal(mm_count(mm), 2);
	assert_int_equal(hmmu_munmap(mm, a, PAGE), 0);
	nr_expect(0, NR_START, 1, a, a + PAGE);
	nr_expect(1, NR_INV_RANGE, 1, a, a + PAGE);
	nr_expect(2, NR_END, 1, a, a + PAGE);
	nr_expect_count(3);
	hmmu_notifier_unregister(&s.n, mm);
	nr_expect(3, NR_RELEASE, 1, 0, 0);
	nr_expect_count(4);
	assert_int_equal(atomic_load(&s.nr_release), 1);
	assert_int_equal(mm_count(mm), 1);
	/* After unregister returns nothing is delivered. */
	touch_pages(mm, a + PAGE, 2);
	assert_int_equal(hmmu_madvise(mm, a + PAGE, 2 * PAGE, MADV_DONTNEED), 0);
	assert_int_equal(hmmu_mprotect(mm, a + PAGE, PAGE, PROT_READ), 0);
	assert_int_equal(hmmu_munmap(mm, a, 8 * PAGE), 0);
	nr_expect_count(4);
	/* A second unregister, or one naming another mm, changes nothing. */
	assert_null(s.n.mm);
	hmmu_notifier_unregister(&s.n, mm);
	hmmu_notifier_unregister(NULL, mm);
	hmmu_notifier_unregister(&s.n, NULL);
	nr_expect_count(4);
	assert_int_equal(mm_count(mm), 1);
}

static bool inv_true(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
		     unsigned long cur_seq)
{
	return true;
}

/*
 * Every call of mmu_notifier.h with each kind of bad argument its doc
 * lists: the documented errno or result, and nothing registered or
 * delivered (the mm's structure count unchanged).
 */
static void test_notifier_invalid_args(void **state)
{
	static const struct hmmu_interval_notifier_ops no_inv, ops = { .invalidate = inv_true };
	static const struct hmmu_notifier_ops no_alloc;
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_notifier n = { .ops = NULL }, *got;
	struct hmmu_interval_notifier in = { 0 };
	struct hmmu_notifier_range range = { 0 };
	int count = mm_count(mm);

	got = hmmu_notifier_get(&no_alloc, mm);
	assert_true(hmmu_is_err(got) && hmmu_ptr_err(got) == -EINVAL);
	got = hmmu_notifier_get(&nr_full_ops, NULL);
	assert_true(hmmu_is_err(got) && hmmu_ptr_err(got) == -EINVAL);
	got = hmmu_notifier_get(NULL, mm);
	assert_true(hmmu_is_err(got) && hmmu_ptr_err(got) == -EINVAL);
	const struct hmmu_arg_case cases[] = {
		ARG_CASE(hmmu_notifier_register(NULL, mm), -EINVAL),
		ARG_CASE(hmmu_notifier_register(&n, NULL), -EINVAL),
		ARG_CASE(hmmu_notifier_register(&n, mm), -EINVAL),	/* no ops */
		ARG_CASE(hmmu_interval_notifier_insert(NULL, mm, 0, PAGE, &ops), -EINVAL),
		ARG_CASE(hmmu_interval_notifier_insert(&in, NULL, 0, PAGE, &ops), -EINVAL),
		ARG_CASE(hmmu_interval_notifier_insert(&in, mm, 0, PAGE, NULL), -EINVAL),
		ARG_CASE(hmmu_interval_notifier_insert(&in, mm, 0, PAGE, &no_inv), -EINVAL),
		ARG_CASE(hmmu_interval_notifier_insert(&in, mm, 0, 0, &ops), -EOVERFLOW),
		ARG_CASE(hmmu_interval_notifier_insert(&in, mm, ~0UL - PAGE, 2 * PAGE, &ops), -EOVERFLOW),
		ARG_CASE(hmmu_interval_read_begin(NULL), 0),
		ARG_CASE(hmmu_interval_read_begin(&in), 0),		/* never inserted */
		ARG_CASE(hmmu_interval_read_retry(NULL, 1), true),
		ARG_CASE(hmmu_interval_check_retry(NULL, 1), true),
		ARG_CASE(hmmu_notifier_range_blockable(NULL), false),
		ARG_CASE(hmmu_notifier_range_update_to_read_only(NULL), false),
		ARG_CASE(hmmu_notifier_invalidate_range_start_nonblock(NULL), -EINVAL),
		ARG_CASE(hmmu_notifier_invalidate_range_start_nonblock(&range), -EINVAL),	/* no mm */
		ARG_CASE(hmmu_mm_age(NULL, 0, PAGE, HMMU_AGE_TEST), -EINVAL),
		ARG_CASE(hmmu_mm_age(mm, PAGE, PAGE, HMMU_AGE_TEST), -EINVAL),
		ARG_CASE(hmmu_mm_age(mm, 2 * PAGE, PAGE, HMMU_AGE_TEST), -EINVAL),
		ARG_CASE(hmmu_mm_age(mm, 1, PAGE, HMMU_AGE_TEST), -EINVAL),
		ARG_CASE(hmmu_mm_age(mm, 0, HMMU_TASK_SIZE + PAGE, HMMU_AGE_TEST), -EINVAL),
		ARG_CASE(hmmu_mm_age(mm, 0, PAGE, 0x4), -EINVAL),
		ARG_CASE(hmmu_mm_reap(NULL), -EINVAL),
	};

	hmmu_test_arg_cases(cases, sizeof(cases) / sizeof(cases[0]));
	assert_null(in.mm);
	/* The void calls take NULL, or what is not registered, as nothing to do. */
	hmmu_notifier_unregister(&n, mm);
	hmmu_notifier_put(NULL);
	hmmu_interval_notifier_remove(NULL);
	hmmu_interval_notifier_remove(&in);
	hmmu_interval_set_seq(NULL, 1);
	hmmu_notifier_range_init(NULL, HMMU_NOTIFY_UNMAP, 0, mm, 0, PAGE);
	hmmu_notifier_range_init_owner(NULL, HMMU_NOTIFY_MIGRATE, 0, mm, 0, PAGE, mm);
	hmmu_notifier_invalidate_range_start(NULL);
	hmmu_notifier_invalidate_range_start(&range);
	hmmu_notifier_invalidate_range_end(NULL);
	hmmu_notifier_invalidate_range_only_end(&range);
	hmmu_notifier_invalidate_range(NULL, 0, PAGE);
	assert_int_equal(mm_count(mm), count);
}

/* ------------------------------------------------------------------ */
/* Classic: wiring into the primary MMU                                */
/* ------------------------------------------------------------------ */

/*
 * munmap: UNMAP over exactly [start, end), subscribers in list order (the
 * last registered first), the hook under the PTE lock during the zap and
 * again from end, nothing freed before start.
 */
static void test_munmap_events(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = nr_map_at(mm, BASE, 8 * PAGE, RW);
	struct nr_sub sa, sb;
	long free0;

	nr_write_byte(mm, a, 1);
	nr_write_byte(mm, a + PAGE, 1);
	nr_write_byte(mm, a + 5 * PAGE, 1);
	register_sub(&sa, 1, &nr_full_ops, mm);
	register_sub(&sb, 2, &nr_nohook_ops, mm);
	free0 = nr_free();
	nr_reset();
	nr_watch(mm, true);
	assert_int_equal(hmmu_munmap(mm, a + 2 * PAGE, 4 * PAGE), 0);
	nr_expect(0, NR_START, 2, a + 2 * PAGE, a + 6 * PAGE);
	nr_expect(1, NR_START, 1, a + 2 * PAGE, a + 6 * PAGE);
	nr_expect(2, NR_INV_RANGE, 1, a + 2 * PAGE, a + 6 * PAGE);
	nr_expect(3, NR_END, 2, a + 2 * PAGE, a + 6 * PAGE);
	nr_expect(4, NR_INV_RANGE, 1, a + 2 * PAGE, a + 6 * PAGE);
	nr_expect(5, NR_END, 1, a + 2 * PAGE, a + 6 * PAGE);
	nr_expect_count(6);
	expect_ev(0, HMMU_NOTIFY_UNMAP, BLK);
	expect_ev(1, HMMU_NOTIFY_UNMAP, BLK);
	expect_ev(3, HMMU_NOTIFY_UNMAP, BLK);
	expect_ev(5, HMMU_NOTIFY_UNMAP, BLK);
	expect_ptl(2, NR_PTL_PTE);
	expect_ptl(4, NR_PTL_NONE);
	assert_false(nr_get(0).ro);
	assert_int_equal(nr_get(1).nr_free, free0);
	assert_int_equal(nr_free(), free0 + 1);
	/* Nothing mapped in the range: no hook from the zap, only from end. */
	nr_reset();
	nr_watch(mm, false);
	assert_int_equal(hmmu_munmap(mm, a + 6 * PAGE, 2 * PAGE), 0);
	nr_expect(0, NR_START, 2, a + 6 * PAGE, a + 8 * PAGE);
	nr_expect(1, NR_START, 1, a + 6 * PAGE, a + 8 * PAGE);
	nr_expect(2, NR_END, 2, a + 6 * PAGE, a + 8 * PAGE);
	nr_expect(3, NR_INV_RANGE, 1, a + 6 * PAGE, a + 8 * PAGE);
	nr_expect(4, NR_END, 1, a + 6 * PAGE, a + 8 * PAGE);
	nr_expect_count(5);
	hmmu_notifier_unregister(&sa.n, mm);
	hmmu_notifier_unregister(&sb.n, mm);
}

/* MADV_DONTNEED: CLEAR over the advised range, hook under the PTE lock. */
static void test_dontneed_events(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = nr_map_at(mm, BASE, 8 * PAGE, RW);
	struct nr_sub s;
	long free0;

	touch_pages(mm, a, 8);
	register_sub(&s, 1, &nr_full_ops, mm);
	free0 = nr_free();
	nr_reset();
	nr_watch(mm, true);
	assert_int_equal(hmmu_madvise(mm, a + PAGE, 3 * PAGE, MADV_DONTNEED), 0);
	nr_expect(0, NR_START, 1, a + PAGE, a + 4 * PAGE);
	nr_expect(1, NR_INV_RANGE, 1, a + PAGE, a + 4 * PAGE);
	nr_expect(2, NR_INV_RANGE, 1, a + PAGE, a + 4 * PAGE);
	nr_expect(3, NR_END, 1, a + PAGE, a + 4 * PAGE);
	nr_expect_count(4);
	expect_ev(0, HMMU_NOTIFY_CLEAR, BLK);
	expect_ev(3, HMMU_NOTIFY_CLEAR, BLK);
	expect_ptl(1, NR_PTL_PTE);
	expect_ptl(2, NR_PTL_NONE);
	assert_false(nr_get(0).ro);
	assert_int_equal(nr_get(0).nr_free, free0);
	assert_int_equal(nr_free(), free0 + 3);
	hmmu_notifier_unregister(&s.n, mm);
}

/* mprotect: PROTECTION_VMA; update_to_read_only true for RW->R only. */
static void test_mprotect_events(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = nr_map_at(mm, BASE, 8 * PAGE, RW);
	struct nr_sub s;

	touch_pages(mm, a, 8);
	register_sub(&s, 1, &nr_full_ops, mm);
	nr_reset();
	nr_watch(mm, true);
	assert_int_equal(hmmu_mprotect(mm, a + 2 * PAGE, 2 * PAGE, PROT_READ), 0);
	nr_expect(0, NR_START, 1, a + 2 * PAGE, a + 4 * PAGE);
	nr_expect(1, NR_INV_RANGE, 1, a + 2 * PAGE, a + 4 * PAGE);
	nr_expect(2, NR_END, 1, a + 2 * PAGE, a + 4 * PAGE);
	nr_expect_count(3);
	expect_ev(0, HMMU_NOTIFY_PROTECTION_VMA, BLK);
	expect_ev(2, HMMU_NOTIFY_PROTECTION_VMA, BLK);
	assert_true(nr_get(0).ro);
	assert_false(hmmu_pte_write(nr_leaf(mm, a + 2 * PAGE)));
	assert_true(hmmu_pte_write(nr_leaf(mm, a + 4 * PAGE)));
	/* R -> NONE: not an update to read-only. */
	nr_reset();
	nr_watch(mm, true);
	assert_int_equal(hmmu_mprotect(mm, a + 2 * PAGE, 2 * PAGE, PROT_NONE), 0);
	nr_expect(0, NR_START, 1, a + 2 * PAGE, a + 4 * PAGE);
	nr_expect_count(3);
	expect_ev(0, HMMU_NOTIFY_PROTECTION_VMA, BLK);
	assert_false(nr_get(0).ro);
	/* RW -> NONE on another part. */
	nr_reset();
	nr_watch(mm, true);
	assert_int_equal(hmmu_mprotect(mm, a + 6 * PAGE, PAGE, PROT_NONE), 0);
	nr_expect(0, NR_START, 1, a + 6 * PAGE, a + 7 * PAGE);
	assert_false(nr_get(0).ro);
	/* Same protection again: nothing changes, nothing is notified. */
	nr_reset();
	assert_int_equal(hmmu_mprotect(mm, a + 6 * PAGE, PAGE, PROT_NONE), 0);
	nr_expect_count(0);
	hmmu_notifier_unregister(&s.n, mm);
}

/*
 * A write to the zero page: CLEAR over one page, the hook exactly once,
 * under the PTE lock, and not again from the (only_)end.
 */
static void test_zero_page_cow_events(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = nr_map_at(mm, BASE, 4 * PAGE, RW);
	struct nr_sub s;

	assert_int_equal(nr_read_byte(mm, a + PAGE), 0);
	assert_true(hmmu_is_zero_pfn(hmmu_pte_pfn(nr_leaf(mm, a + PAGE))));
	register_sub(&s, 1, &nr_full_ops, mm);
	nr_reset();
	nr_watch(mm, false);
	nr_write_byte(mm, a + PAGE + 7, 0x5a);
	nr_expect(0, NR_START, 1, a + PAGE, a + 2 * PAGE);
	nr_expect(1, NR_INV_RANGE, 1, a + PAGE, a + 2 * PAGE);
	nr_expect(2, NR_END, 1, a + PAGE, a + 2 * PAGE);
	nr_expect_count(3);
	expect_ev(0, HMMU_NOTIFY_CLEAR, BLK);
	expect_ev(2, HMMU_NOTIFY_CLEAR, BLK);
	expect_ptl(1, NR_PTL_PTE);
	assert_false(hmmu_is_zero_pfn(hmmu_pte_pfn(nr_leaf(mm, a + PAGE))));
	/* The page is now writable and exclusive: the next write notifies nothing. */
	nr_write_byte(mm, a + PAGE, 1);
	/* A fault filling an empty entry notifies nothing either. */
	nr_write_byte(mm, a + 2 * PAGE, 1);
	assert_int_equal(nr_read_byte(mm, a + 3 * PAGE), 0);
	nr_expect_count(3);
	hmmu_notifier_unregister(&s.n, mm);
}

/* Map a 4 MiB VMA at BASE with its first 2 MiB huge-eligible; fault one huge page there. */
static unsigned long map_huge(struct hmmu_mm *mm)
{
	unsigned long h = nr_map_at(mm, BASE, 4 * MiB, RW);

	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
	nr_write_byte(mm, h + 5, 1);
	assert_true(hmmu_pmd_leaf(nr_leaf(mm, h)));
	return h;
}

/*
 * DONTNEED of one page of a huge entry: CLEAR of that page, inside it the
 * split's CLEAR over the whole 2 MiB (hook under the PMD table's lock,
 * only_end), then the page's zap (hook under the new PTE table's lock).
 */
static void test_huge_split_events(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge(mm);
	unsigned long p = h + 3 * PAGE;
	struct nr_sub s;

	register_sub(&s, 1, &nr_full_ops, mm);
	nr_reset();
	nr_watch(mm, false);
	assert_int_equal(hmmu_madvise(mm, p, PAGE, MADV_DONTNEED), 0);
	nr_expect(0, NR_START, 1, p, p + PAGE);
	nr_expect(1, NR_START, 1, h, h + HMMU_PMD_SIZE);
	nr_expect(2, NR_INV_RANGE, 1, h, h + HMMU_PMD_SIZE);
	nr_expect(3, NR_END, 1, h, h + HMMU_PMD_SIZE);
	nr_expect(4, NR_INV_RANGE, 1, p, p + PAGE);
	nr_expect(5, NR_INV_RANGE, 1, p, p + PAGE);
	nr_expect(6, NR_END, 1, p, p + PAGE);
	nr_expect_count(7);
	for (int i = 0; i < 7; i++)
		if (nr_get(i).kind != NR_INV_RANGE)
			expect_ev(i, HMMU_NOTIFY_CLEAR, BLK);
	expect_ptl(2, NR_PTL_PMD);
	expect_ptl(4, NR_PTL_PTE);
	expect_ptl(5, NR_PTL_NONE);
	assert_false(hmmu_pmd_leaf(nr_leaf(mm, h)));
	hmmu_notifier_unregister(&s.n, mm);
}

/* munmap of a whole huge entry: the hook under the PMD table's lock. */
static void test_huge_zap_events(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge(mm);
	struct nr_sub s;
	long free0;

	register_sub(&s, 1, &nr_full_ops, mm);
	free0 = nr_free();
	nr_reset();
	nr_watch(mm, false);
	assert_int_equal(hmmu_munmap(mm, h, HMMU_PMD_SIZE), 0);
	nr_expect(0, NR_START, 1, h, h + HMMU_PMD_SIZE);
	nr_expect(1, NR_INV_RANGE, 1, h, h + HMMU_PMD_SIZE);
	nr_expect(2, NR_INV_RANGE, 1, h, h + HMMU_PMD_SIZE);
	nr_expect(3, NR_END, 1, h, h + HMMU_PMD_SIZE);
	nr_expect_count(4);
	expect_ev(0, HMMU_NOTIFY_UNMAP, BLK);
	expect_ptl(1, NR_PTL_PMD);
	expect_ptl(2, NR_PTL_NONE);
	assert_int_equal(nr_get(0).nr_free, free0);
	assert_int_equal(nr_free(), free0 + 512);
	hmmu_notifier_unregister(&s.n, mm);
}

/*
 * Teardown: interval RELEASE over [0, ULONG_MAX) first, then every classic
 * release, all before any page is freed; then one UNMAP over everything
 * (interval subscribers only: classic ones are unlinked).  A later
 * unregister does not call release again.
 */
static void test_teardown_order(void **state)
{
	struct hmmu_mm *mm;
	struct nr_sub sa, sb;
	struct nr_isub si, sj;
	unsigned long a, g;
	long free0, used;

	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm), 0);
	free0 = nr_free();
	a = nr_map_at(mm, BASE, 16 * PAGE, RW);
	touch_pages(mm, a, 16);
	register_sub(&sa, 1, &nr_full_ops, mm);
	register_sub(&sb, 2, &nr_nohook_ops, mm);
	nr_isub_insert(&si, 3, mm, a, 16 * PAGE);
	nr_isub_insert(&sj, 4, mm, FAR, PAGE);
	assert_int_equal(mm_count(mm), 5);
	used = free0 - nr_free();
	assert_true(used >= 16);
	g = nr_global_seq(mm);
	nr_reset();
	hmmu_mmput(mm);
	nr_expect(0, NR_INTERVAL, 3, 0, ~0UL);
	nr_expect(1, NR_INTERVAL, 4, 0, ~0UL);
	nr_expect(2, NR_RELEASE, 2, 0, 0);
	nr_expect(3, NR_RELEASE, 1, 0, 0);
	nr_expect(4, NR_INTERVAL, 3, 0, ~0UL);
	nr_expect(5, NR_INTERVAL, 4, 0, ~0UL);
	nr_expect_count(6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(nr_get(i).nr_free, free0 - used);
	expect_ev(0, HMMU_NOTIFY_RELEASE, BLK);
	expect_ev(1, HMMU_NOTIFY_RELEASE, BLK);
	expect_ev(4, HMMU_NOTIFY_UNMAP, BLK);
	assert_int_equal(nr_get(0).seq, g + 1);
	assert_int_equal(nr_get(4).seq, g + 3);
	assert_int_equal(nr_free(), free0);
	assert_int_equal(mm_count(mm), 4);
	hmmu_notifier_unregister(&sa.n, mm);
	hmmu_notifier_unregister(&sb.n, mm);
	assert_int_equal(atomic_load(&sa.nr_release), 1);
	assert_int_equal(atomic_load(&sb.nr_release), 1);
	nr_expect_count(6);
	hmmu_interval_notifier_remove(&si.in);
	hmmu_interval_notifier_remove(&sj.in);	/* the last structure reference */
}

/* ------------------------------------------------------------------ */
/* Classic: get / put                                                  */
/* ------------------------------------------------------------------ */

enum get_mode { GET_OK, GET_ERR, GET_NULL };
static enum get_mode get_mode;
static bool get_put_in_release;
static atomic_int get_allocs, get_frees;

static struct hmmu_notifier *get_alloc(struct hmmu_mm *mm)
{
	struct nr_sub *s;

	atomic_fetch_add(&get_allocs, 1);
	if (get_mode == GET_ERR)
		return hmmu_err_ptr(-ENOSPC);
	if (get_mode == GET_NULL)
		return NULL;
	s = malloc(sizeof(*s));
	assert_non_null(s);
	nr_sub_init(s, 10, NULL);	/* get sets the ops */
	s->put_in_release = get_put_in_release;
	return &s->n;
}

static void get_free(struct hmmu_notifier *n)
{
	atomic_fetch_add(&get_frees, 1);
	free(nr_sub_of(n));
}

static const struct hmmu_notifier_ops get_ops = {
	.release = nr_cb_release,
	.invalidate_range_start = nr_cb_start,
	.invalidate_range_end = nr_cb_end,
	.alloc_notifier = get_alloc,
	.free_notifier = get_free,
};

static void get_reset(enum get_mode mode, bool put_in_release)
{
	get_mode = mode;
	get_put_in_release = put_in_release;
	atomic_store(&get_allocs, 0);
	atomic_store(&get_frees, 0);
	nr_reset();
}

static struct hmmu_notifier *get_ok(struct hmmu_mm *mm)
{
	struct hmmu_notifier *n = hmmu_notifier_get(&get_ops, mm);

	assert_false(hmmu_is_err(n));
	assert_non_null(n);
	return n;
}

/* Same ops, same mm: one subscription, users counted; the last put unlinks; free after synchronize. */
static void test_get_put_shared(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = nr_map_at(mm, BASE, 4 * PAGE, RW);
	struct hmmu_notifier *n1, *n2;

	get_reset(GET_OK, false);
	n1 = get_ok(mm);
	n2 = get_ok(mm);
	assert_ptr_equal(n1, n2);
	assert_int_equal(atomic_load(&get_allocs), 1);
	assert_int_equal(n1->users, 2);
	assert_ptr_equal(n1->ops, &get_ops);
	assert_int_equal(mm_count(mm), 2);
	assert_int_equal(hmmu_munmap(mm, a, PAGE), 0);
	nr_expect(0, NR_START, 10, a, a + PAGE);
	nr_expect(1, NR_END, 10, a, a + PAGE);
	nr_expect_count(2);
	hmmu_notifier_put(n1);
	assert_int_equal(n2->users, 1);
	assert_int_equal(hmmu_munmap(mm, a + PAGE, PAGE), 0);
	nr_expect_count(4);
	hmmu_notifier_put(n2);	/* n2 may be freed from here on */
	assert_int_equal(hmmu_munmap(mm, a + 2 * PAGE, PAGE), 0);
	nr_expect_count(4);
	hmmu_notifier_synchronize();
	assert_int_equal(atomic_load(&get_frees), 1);
	assert_int_equal(nr_count_of(NR_RELEASE, 10), 0);	/* put never calls release */
	assert_int_equal(mm_count(mm), 1);
	/* A new get after the last put allocates again. */
	n1 = get_ok(mm);
	assert_int_equal(atomic_load(&get_allocs), 2);
	hmmu_notifier_put(n1);
	hmmu_notifier_synchronize();
	assert_int_equal(atomic_load(&get_frees), 2);
}

/* get_locked under the caller's write lock. */
static void test_get_locked(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_notifier *n1, *n2;

	get_reset(GET_OK, false);
	hmmu_mmap_write_lock(mm);
	n1 = hmmu_notifier_get_locked(&get_ops, mm);
	n2 = hmmu_notifier_get_locked(&get_ops, mm);
	hmmu_mmap_write_unlock(mm);
	assert_false(hmmu_is_err(n1));
	assert_ptr_equal(n1, n2);
	hmmu_notifier_put(n1);
	hmmu_notifier_put(n2);
	hmmu_notifier_synchronize();
	assert_int_equal(atomic_load(&get_frees), 1);
	assert_int_equal(mm_count(mm), 1);
}

/* alloc_notifier's error propagates; NULL is -ENOMEM; no alloc op is -EINVAL. */
static void test_get_errors(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_notifier *n;

	get_reset(GET_ERR, false);
	n = hmmu_notifier_get(&get_ops, mm);
	assert_true(hmmu_is_err(n));
	assert_int_equal(hmmu_ptr_err(n), -ENOSPC);
	get_reset(GET_NULL, false);
	n = hmmu_notifier_get(&get_ops, mm);
	assert_true(hmmu_is_err(n));
	assert_int_equal(hmmu_ptr_err(n), -ENOMEM);
	n = hmmu_notifier_get(&nr_full_ops, mm);
	assert_true(hmmu_is_err(n));
	assert_int_equal(hmmu_ptr_err(n), -EINVAL);
	n = hmmu_notifier_get(&get_ops, NULL);
	assert_true(hmmu_is_err(n));
	assert_int_equal(hmmu_ptr_err(n), -EINVAL);
	hmmu_notifier_synchronize();
	assert_int_equal(atomic_load(&get_frees), 0);
	assert_int_equal(mm_count(mm), 1);
}

/* A get subscription still held at exit gets release from teardown; put after that frees it. */
static void test_get_released_at_exit(void **state)
{
	struct hmmu_mm *mm;
	struct hmmu_notifier *n;

	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm), 0);
	get_reset(GET_OK, false);
	n = get_ok(mm);
	hmmu_mmput(mm);
	nr_expect(0, NR_RELEASE, 10, 0, 0);
	nr_expect_count(1);
	hmmu_notifier_put(n);	/* drops the last structure reference, after a grace period */
	hmmu_notifier_synchronize();
	assert_int_equal(atomic_load(&get_frees), 1);
	nr_expect_count(1);
}

/* put from inside release (teardown). */
static void test_put_from_release(void **state)
{
	struct hmmu_mm *mm;
	unsigned long a;

	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm), 0);
	a = nr_map_at(mm, BASE, 4 * PAGE, RW);
	touch_pages(mm, a, 4);
	get_reset(GET_OK, true);
	get_ok(mm);
	hmmu_mmput(mm);
	nr_expect(0, NR_RELEASE, 10, 0, 0);
	nr_expect_count(1);
	hmmu_notifier_synchronize();
	assert_int_equal(atomic_load(&get_frees), 1);
}

/* ------------------------------------------------------------------ */
/* Classic: release racing unregister                                  */
/* ------------------------------------------------------------------ */

struct race_arg {
	pthread_barrier_t *barrier;
	struct nr_sub *sub;
	struct hmmu_mm *mm;
};

static void *race_unregister(void *p)
{
	struct race_arg *r = p;

	pthread_barrier_wait(r->barrier);
	hmmu_notifier_unregister(&r->sub->n, r->mm);
	return NULL;
}

/*
 * Teardown and unregister at once: release runs once or twice (it must be
 * idempotent), the first call before any page is freed, and nothing leaks.
 */
static void test_release_unregister_race(void **state)
{
	int twice = 0;

	for (int round = 0; round < 40; round++) {
		pthread_barrier_t barrier;
		struct nr_sub s;
		struct race_arg r = { .barrier = &barrier, .sub = &s };
		pthread_t t;
		long before, free0 = nr_free();
		int n;

		assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &r.mm), 0);
		touch_pages(r.mm, nr_map_at(r.mm, BASE, 16 * PAGE, RW), 16);
		register_sub(&s, 1, &nr_full_ops, r.mm);
		before = nr_free();
		nr_reset();
		pthread_barrier_init(&barrier, NULL, 2);
		assert_int_equal(pthread_create(&t, NULL, race_unregister, &r), 0);
		pthread_barrier_wait(&barrier);
		hmmu_mmput(r.mm);
		pthread_join(t, NULL);
		pthread_barrier_destroy(&barrier);
		n = atomic_load(&s.nr_release);
		assert_true(n == 1 || n == 2);
		twice += n == 2;
		assert_int_equal(nr_count_of(NR_RELEASE, 1), n);
		nr_expect(0, NR_RELEASE, 1, 0, 0);
		assert_int_equal(nr_get(0).nr_free, before);
		assert_int_equal(nr_free(), free0);
	}
	print_message("# release ran twice in %d of 40 rounds\n", twice);
}

/* ------------------------------------------------------------------ */
/* Classic: young ops                                                  */
/* ------------------------------------------------------------------ */

/* The young ops of @kind were called for pages [0, n) of @a, both subscribers each (B first). */
static void expect_young_all(enum nr_kind kind, unsigned long a, int n)
{
	for (int i = 0; i < n; i++) {
		nr_expect(2 * i, kind, 2, a + i * PAGE, a + (i + 1) * PAGE);
		nr_expect(2 * i + 1, kind, 1, a + i * PAGE, a + (i + 1) * PAGE);
	}
	nr_expect_count(2 * n);
}

/*
 * hmmu_mm_age: results ORed over subscribers and the CPU bit, the op chosen
 * by flags, CPU young bits cleared except for TEST, test_young stopping at
 * the first young subscriber; empty entries are not aged.
 */
static void test_age_young_ops(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = nr_map_at(mm, BASE, 5 * PAGE, RW);
	struct nr_sub sa, sb;

	touch_pages(mm, a, 4);
	register_sub(&sa, 1, &nr_full_ops, mm);
	register_sub(&sb, 2, &nr_full_ops, mm);
	sa.young_addr = a + PAGE;
	sb.young_addr = a + 2 * PAGE;
	nr_reset();
	assert_int_equal(hmmu_mm_age(mm, a, a + 5 * PAGE, HMMU_AGE_FLUSH), 4);
	expect_young_all(NR_CLEAR_FLUSH_YOUNG, a, 4);
	for (int i = 0; i < 4; i++)
		assert_false(hmmu_pte_young(nr_leaf(mm, a + i * PAGE)));
	nr_reset();
	assert_int_equal(hmmu_mm_age(mm, a, a + 5 * PAGE, HMMU_AGE_FLUSH), 2);
	expect_young_all(NR_CLEAR_FLUSH_YOUNG, a, 4);
	nr_reset();
	assert_int_equal(hmmu_mm_age(mm, a, a + 5 * PAGE, HMMU_AGE_NOFLUSH), 2);
	expect_young_all(NR_CLEAR_YOUNG, a, 4);
	/* An access makes page 3 young again; TEST reports it and leaves it. */
	assert_int_equal(nr_read_byte(mm, a + 3 * PAGE), 4);
	assert_true(hmmu_pte_young(nr_leaf(mm, a + 3 * PAGE)));
	nr_reset();
	assert_int_equal(hmmu_mm_age(mm, a, a + 5 * PAGE, HMMU_AGE_TEST), 3);
	nr_expect(0, NR_TEST_YOUNG, 2, a, a + PAGE);
	nr_expect(1, NR_TEST_YOUNG, 1, a, a + PAGE);
	nr_expect(2, NR_TEST_YOUNG, 2, a + PAGE, a + 2 * PAGE);
	nr_expect(3, NR_TEST_YOUNG, 1, a + PAGE, a + 2 * PAGE);
	nr_expect(4, NR_TEST_YOUNG, 2, a + 2 * PAGE, a + 3 * PAGE);	/* young: A is not asked */
	nr_expect(5, NR_TEST_YOUNG, 2, a + 3 * PAGE, a + 4 * PAGE);
	nr_expect(6, NR_TEST_YOUNG, 1, a + 3 * PAGE, a + 4 * PAGE);
	nr_expect_count(7);
	assert_true(hmmu_pte_young(nr_leaf(mm, a + 3 * PAGE)));
	/* Part of a huge entry: it is aged whole, only the pages asked count (found by the fuzz target). */
	a = nr_map_at(mm, BASE + HMMU_PMD_SIZE, HMMU_PMD_SIZE, RW);
	assert_int_equal(hmmu_madvise(mm, a, HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
	touch_pages(mm, a, 1);
	assert_int_equal(stats(mm).huge_pmds, 1);
	assert_int_equal(hmmu_mm_age(mm, a + 8 * PAGE, a + 12 * PAGE, HMMU_AGE_TEST), 4);
	assert_int_equal(hmmu_mm_age(mm, a + 8 * PAGE, a + 12 * PAGE, HMMU_AGE_FLUSH), 4);
	assert_int_equal(hmmu_mm_age(mm, a, a + HMMU_PMD_SIZE, HMMU_AGE_TEST), 0);
	a = BASE;
	/* Invalid arguments. */
	assert_int_equal(hmmu_mm_age(NULL, a, a + PAGE, 0), -EINVAL);
	assert_int_equal(hmmu_mm_age(mm, a + PAGE, a + PAGE, 0), -EINVAL);
	assert_int_equal(hmmu_mm_age(mm, a + 1, a + PAGE, 0), -EINVAL);
	assert_int_equal(hmmu_mm_age(mm, a, a + PAGE, 0x10), -EINVAL);
	hmmu_notifier_unregister(&sa.n, mm);
	hmmu_notifier_unregister(&sb.n, mm);
}

/* ------------------------------------------------------------------ */
/* Non-blocking starts                                                 */
/* ------------------------------------------------------------------ */

/*
 * A classic subscriber fails a non-blockable start: every subscriber was
 * called, those with an end get it once, the caller gets -EAGAIN (and must
 * not call end), and the interval cycle opened first is closed.
 */
static void test_nonblock_classic_fail(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct nr_sub sa, sf, sc;
	struct nr_isub si;
	struct hmmu_notifier_range r;
	unsigned long s0, g;

	nr_isub_insert(&si, 4, mm, BASE, 4 * PAGE);
	register_sub(&sa, 1, &nr_full_ops, mm);
	register_sub(&sf, 2, &nr_fail_ops, mm);
	register_sub(&sc, 3, &nr_full_ops, mm);
	sf.fail_nonblock = true;
	s0 = hmmu_interval_read_begin(&si.in);
	g = nr_global_seq(mm);
	nr_reset();
	hmmu_notifier_range_init(&r, HMMU_NOTIFY_UNMAP, 0, mm, BASE, BASE + PAGE);
	assert_int_equal(hmmu_notifier_invalidate_range_start_nonblock(&r), -EAGAIN);
	nr_expect(0, NR_INTERVAL, 4, BASE, BASE + PAGE);
	nr_expect(1, NR_START, 3, BASE, BASE + PAGE);
	nr_expect(2, NR_START, 2, BASE, BASE + PAGE);
	nr_expect(3, NR_START, 1, BASE, BASE + PAGE);
	nr_expect(4, NR_END, 3, BASE, BASE + PAGE);
	nr_expect(5, NR_END, 1, BASE, BASE + PAGE);
	nr_expect_count(6);
	for (int i = 0; i < 6; i++)
		expect_ev(i, HMMU_NOTIFY_UNMAP, 0);
	assert_int_equal(nr_get(0).seq, g + 1);
	/* The interval side is consistent: idle, one cycle later, and the reader retries. */
	nr_assert_idle(mm);
	assert_int_equal(nr_global_seq(mm), g + 2);
	assert_true(hmmu_interval_read_retry(&si.in, s0));
	assert_int_equal(hmmu_interval_read_begin(&si.in), g + 1);	/* does not wait */
	/* Blockable, the same subscribers all succeed. */
	nr_reset();
	nr_inv(mm, HMMU_NOTIFY_CLEAR, BASE, BASE + PAGE);
	assert_int_equal(nr_count_of(NR_START, 2), 1);
	assert_int_equal(nr_count_of(NR_END, 1), 1);
	assert_int_equal(nr_count_of(NR_END, 3), 1);
	nr_expect_count(1 + 3 + 4);
	nr_assert_idle(mm);
	hmmu_notifier_unregister(&sa.n, mm);
	hmmu_notifier_unregister(&sf.n, mm);
	hmmu_notifier_unregister(&sc.n, mm);
	hmmu_interval_notifier_remove(&si.in);
}

/* A successful non-blockable start: 0, the caller's end sees the same (cleared) flags. */
static void test_nonblock_success(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct nr_sub s;
	struct hmmu_notifier_range r;

	register_sub(&s, 1, &nr_full_ops, mm);
	nr_reset();
	hmmu_notifier_range_init(&r, HMMU_NOTIFY_UNMAP, BLK, mm, BASE, BASE + PAGE);
	assert_int_equal(hmmu_notifier_invalidate_range_start_nonblock(&r), 0);
	assert_false(hmmu_notifier_range_blockable(&r));
	hmmu_notifier_invalidate_range_end(&r);
	nr_expect(0, NR_START, 1, BASE, BASE + PAGE);
	nr_expect(1, NR_INV_RANGE, 1, BASE, BASE + PAGE);
	nr_expect(2, NR_END, 1, BASE, BASE + PAGE);
	nr_expect_count(3);
	expect_ev(0, HMMU_NOTIFY_UNMAP, 0);
	expect_ev(2, HMMU_NOTIFY_UNMAP, 0);
	hmmu_notifier_unregister(&s.n, mm);
}

/*
 * The reaper with a busy interval subscriber (its driver lock is held): the
 * overlapping VMA is skipped (-EAGAIN, pages kept, no classic callback for
 * it), the other is reaped; once the lock is free a second reap finishes.
 */
static void test_reap_interval_busy(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long v1 = nr_map_at(mm, BASE, 4 * PAGE, RW);
	unsigned long v2 = nr_map_at(mm, BASE + 16 * PAGE, 4 * PAGE, RW);
	struct nr_isub si;
	struct nr_sub s;
	unsigned long s0, g;
	long free0;

	touch_pages(mm, v1, 4);
	touch_pages(mm, v2, 4);
	nr_isub_insert(&si, 2, mm, v1, 4 * PAGE);
	si.trylock_nonblock = true;
	register_sub(&s, 1, &nr_full_ops, mm);
	s0 = hmmu_interval_read_begin(&si.in);
	g = nr_global_seq(mm);
	free0 = nr_free();
	hmmu_mmgrab(mm);
	pthread_mutex_lock(&si.lock);
	nr_reset();
	nr_watch(mm, false);
	assert_int_equal(hmmu_mm_reap(mm), -EAGAIN);
	nr_expect(0, NR_INTERVAL, 2, v1, v1 + 4 * PAGE);
	nr_expect(1, NR_START, 1, v2, v2 + 4 * PAGE);
	nr_expect(2, NR_INV_RANGE, 1, v2, v2 + 4 * PAGE);
	nr_expect(3, NR_INV_RANGE, 1, v2, v2 + 4 * PAGE);
	nr_expect(4, NR_END, 1, v2, v2 + 4 * PAGE);
	nr_expect_count(5);
	expect_ev(0, HMMU_NOTIFY_UNMAP, 0);
	expect_ev(1, HMMU_NOTIFY_UNMAP, 0);
	expect_ev(4, HMMU_NOTIFY_UNMAP, 0);
	expect_ptl(2, NR_PTL_PTE);
	assert_int_equal(nr_free(), free0 + 4);
	for (int i = 0; i < 4; i++) {
		assert_non_null(nr_page_at(mm, v1 + i * PAGE));
		assert_int_equal(nr_leaf(mm, v2 + i * PAGE), 0);
	}
	nr_assert_idle(mm);
	assert_int_equal(nr_global_seq(mm), g + 2);
	assert_false(hmmu_interval_read_retry(&si.in, s0));	/* it refused: its seq is untouched */
	pthread_mutex_unlock(&si.lock);
	nr_reset();
	assert_int_equal(hmmu_mm_reap(mm), 0);
	nr_expect(0, NR_INTERVAL, 2, v1, v1 + 4 * PAGE);
	nr_expect(1, NR_START, 1, v1, v1 + 4 * PAGE);
	nr_expect(4, NR_END, 1, v1, v1 + 4 * PAGE);
	nr_expect(5, NR_START, 1, v2, v2 + 4 * PAGE);
	nr_expect(6, NR_INV_RANGE, 1, v2, v2 + 4 * PAGE);
	nr_expect(7, NR_END, 1, v2, v2 + 4 * PAGE);
	nr_expect_count(8);
	assert_int_equal(nr_free(), free0 + 8);
	assert_true(hmmu_interval_read_retry(&si.in, s0));
	nr_assert_idle(mm);
	hmmu_mmdrop(mm);
	hmmu_notifier_unregister(&s.n, mm);
	hmmu_interval_notifier_remove(&si.in);
}

/* The reaper with a classic subscriber that fails: the others get end once, from the failure path. */
static void test_reap_classic_fail(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long v = nr_map_at(mm, BASE, 4 * PAGE, RW);
	struct nr_sub sa, sf;
	long free0;

	touch_pages(mm, v, 4);
	register_sub(&sa, 1, &nr_full_ops, mm);
	register_sub(&sf, 2, &nr_fail_ops, mm);
	sf.fail_nonblock = true;
	free0 = nr_free();
	nr_reset();
	assert_int_equal(hmmu_mm_reap(mm), -EAGAIN);
	nr_expect(0, NR_START, 2, v, v + 4 * PAGE);
	nr_expect(1, NR_START, 1, v, v + 4 * PAGE);
	nr_expect(2, NR_END, 1, v, v + 4 * PAGE);
	nr_expect_count(3);
	assert_int_equal(nr_free(), free0);
	assert_non_null(nr_page_at(mm, v + 3 * PAGE));
	hmmu_notifier_unregister(&sa.n, mm);
	hmmu_notifier_unregister(&sf.n, mm);
}

/* ------------------------------------------------------------------ */
/* Interval: insert, sequence                                          */
/* ------------------------------------------------------------------ */

static const struct hmmu_interval_notifier_ops null_iops = { .invalidate = NULL };

static void test_interval_insert_errors(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *dead;
	struct nr_isub s;

	nr_isub_init(&s, 1);
	assert_int_equal(hmmu_interval_notifier_insert(&s.in, mm, BASE, 0, &nr_iops), -EOVERFLOW);
	assert_int_equal(hmmu_interval_notifier_insert(&s.in, mm, ~0UL - PAGE + 1, 2 * PAGE, &nr_iops),
			 -EOVERFLOW);
	assert_int_equal(hmmu_interval_notifier_insert(&s.in, mm, 2, ~0UL, &nr_iops), -EOVERFLOW);
	assert_int_equal(hmmu_interval_notifier_insert(NULL, mm, BASE, PAGE, &nr_iops), -EINVAL);
	assert_int_equal(hmmu_interval_notifier_insert(&s.in, NULL, BASE, PAGE, &nr_iops), -EINVAL);
	assert_int_equal(hmmu_interval_notifier_insert(&s.in, mm, BASE, PAGE, NULL), -EINVAL);
	assert_int_equal(hmmu_interval_notifier_insert(&s.in, mm, BASE, PAGE, &null_iops), -EINVAL);
	hmmu_mmap_write_lock(mm);
	assert_int_equal(hmmu_interval_notifier_insert_locked(&s.in, mm, BASE, 0, &nr_iops), -EOVERFLOW);
	assert_int_equal(hmmu_interval_notifier_insert_locked(NULL, mm, BASE, PAGE, &nr_iops), -EINVAL);
	hmmu_mmap_write_unlock(mm);
	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &dead), 0);
	hmmu_mmgrab(dead);
	hmmu_mmput(dead);
	assert_int_equal(hmmu_interval_notifier_insert(&s.in, dead, BASE, PAGE, &nr_iops), -EINVAL);
	hmmu_mmdrop(dead);
	/* Nothing was set up by the failures. */
	assert_null(hmmu_mm_subscriptions(mm));
	assert_int_equal(mm_count(mm), 1);
	/* The largest valid interval ends at ULONG_MAX; insert_locked works too. */
	assert_int_equal(hmmu_interval_notifier_insert(&s.in, mm, ~0UL - PAGE + 1, PAGE, &nr_iops), 0);
	assert_int_equal(s.in.interval_tree.last, ~0UL);
	hmmu_interval_notifier_remove(&s.in);
	hmmu_mmap_write_lock(mm);
	assert_int_equal(hmmu_interval_notifier_insert_locked(&s.in, mm, 0, 1, &nr_iops), 0);
	hmmu_mmap_write_unlock(mm);
	assert_int_equal(s.in.interval_tree.last, 0);
	hmmu_interval_notifier_remove(&s.in);
	assert_int_equal(mm_count(mm), 1);
}

/*
 * The global seq starts at 2; a new subscriber's seq is odd and differs;
 * each cycle that hits it stores the cycle's odd seq (the callback's
 * cur_seq) and leaves the global one even, two higher.
 */
static void test_interval_seq_basics(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_notifier_range r;
	struct nr_isub s;
	unsigned long seq;

	nr_reset();
	nr_isub_insert(&s, 1, mm, BASE, 4 * PAGE);
	assert_true(hmmu_mm_subscriptions(mm)->has_itree);
	assert_int_equal(nr_global_seq(mm), 2);
	assert_int_equal(nr_sub_seq(&s.in), 1);
	assert_int_equal(mm_count(mm), 2);
	seq = hmmu_interval_read_begin(&s.in);
	assert_int_equal(seq, 1);
	assert_false(hmmu_interval_read_retry(&s.in, seq));
	assert_false(hmmu_interval_check_retry(&s.in, seq));
	nr_inv_start(&r, mm, HMMU_NOTIFY_CLEAR, BASE + PAGE, BASE + 2 * PAGE);
	assert_int_equal(nr_global_seq(mm), 3);
	assert_int_equal(nr_active(mm), 1);
	assert_int_equal(nr_sub_seq(&s.in), 3);
	assert_true(hmmu_interval_check_retry(&s.in, seq));
	hmmu_notifier_invalidate_range_end(&r);
	nr_expect(0, NR_INTERVAL, 1, BASE + PAGE, BASE + 2 * PAGE);
	nr_expect_count(1);
	expect_ev(0, HMMU_NOTIFY_CLEAR, BLK);
	assert_int_equal(nr_get(0).seq, 3);
	assert_int_equal(nr_global_seq(mm), 4);
	assert_int_equal(nr_active(mm), 0);
	assert_true(hmmu_interval_read_retry(&s.in, seq));
	seq = hmmu_interval_read_begin(&s.in);
	assert_int_equal(seq, 3);
	assert_false(hmmu_interval_read_retry(&s.in, seq));
	/* A range ending exactly at the subscriber's start does not overlap. */
	nr_inv(mm, HMMU_NOTIFY_CLEAR, BASE - PAGE, BASE);
	nr_inv(mm, HMMU_NOTIFY_CLEAR, BASE + 4 * PAGE, BASE + 5 * PAGE);
	nr_expect_count(1);
	assert_int_equal(nr_global_seq(mm), 4);
	/* The last byte does. */
	nr_inv(mm, HMMU_NOTIFY_CLEAR, BASE + 4 * PAGE - 1, BASE + 4 * PAGE);
	nr_expect_count(2);
	assert_int_equal(nr_get(1).seq, 5);
	assert_int_equal(nr_global_seq(mm), 6);
	/* set_seq stores what it is given. */
	hmmu_interval_set_seq(&s.in, 5);
	assert_false(hmmu_interval_read_retry(&s.in, 5));
	hmmu_interval_notifier_remove(&s.in);
	assert_int_equal(mm_count(mm), 1);
}

/* Check the global seq and the active count. */
static void expect_seq(struct hmmu_mm *mm, unsigned long seq, unsigned long active)
{
	assert_int_equal(nr_global_seq(mm), seq);
	assert_int_equal(nr_active(mm), active);
}

/*
 * Nested starts in one thread: a non-overlapping active range leaves the
 * seq even; an overlapping one makes it odd until the last active range
 * ends, whatever the order.
 */
static void test_interval_nested_parity(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_notifier_range ov, ov2, non;
	struct nr_isub s;
	unsigned long g;

	nr_isub_insert(&s, 1, mm, BASE, PAGE);
	g = nr_global_seq(mm);
	nr_reset();
	/* non, ov; end ov, end non. */
	nr_inv_start(&non, mm, HMMU_NOTIFY_CLEAR, FAR, FAR + PAGE);
	expect_seq(mm, g, 1);
	nr_inv_start(&ov, mm, HMMU_NOTIFY_CLEAR, BASE, BASE + PAGE);
	expect_seq(mm, g + 1, 2);
	hmmu_notifier_invalidate_range_end(&ov);
	expect_seq(mm, g + 1, 1);
	hmmu_notifier_invalidate_range_end(&non);
	expect_seq(mm, g + 2, 0);
	/* ov, non; end ov, end non. */
	nr_inv_start(&ov, mm, HMMU_NOTIFY_CLEAR, BASE, BASE + PAGE);
	nr_inv_start(&non, mm, HMMU_NOTIFY_CLEAR, FAR, FAR + PAGE);
	expect_seq(mm, g + 3, 2);
	hmmu_notifier_invalidate_range_end(&ov);
	expect_seq(mm, g + 3, 1);
	hmmu_notifier_invalidate_range_end(&non);
	expect_seq(mm, g + 4, 0);
	/* Two overlapping ones share the cycle's seq. */
	nr_inv_start(&ov, mm, HMMU_NOTIFY_CLEAR, BASE, BASE + PAGE);
	nr_inv_start(&ov2, mm, HMMU_NOTIFY_UNMAP, 0, ~0UL);
	expect_seq(mm, g + 5, 2);
	hmmu_notifier_invalidate_range_end(&ov2);
	expect_seq(mm, g + 5, 1);
	hmmu_notifier_invalidate_range_end(&ov);
	expect_seq(mm, g + 6, 0);
	/* Non-overlapping alone, nested: never odd. */
	nr_inv_start(&non, mm, HMMU_NOTIFY_CLEAR, FAR, FAR + PAGE);
	nr_inv_start(&ov2, mm, HMMU_NOTIFY_CLEAR, 0, PAGE);
	expect_seq(mm, g + 6, 2);
	hmmu_notifier_invalidate_range_end(&ov2);
	hmmu_notifier_invalidate_range_end(&non);
	expect_seq(mm, g + 6, 0);
	assert_int_equal(nr_count(), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(nr_get(i).seq, g + (i < 2 ? 2 * i + 1 : 5));
	hmmu_interval_notifier_remove(&s.in);
}

/* ------------------------------------------------------------------ */
/* Interval: waiting, from other threads                               */
/* ------------------------------------------------------------------ */

/* A thread that runs read_begin or remove and notes whether the cycle had ended by then. */
struct waiter {
	pthread_t t;
	struct hmmu_interval_notifier *in;
	bool remove;
	atomic_bool *ended;
	atomic_bool started, done;
	bool saw_end;
	unsigned long seq;
};

static void *waiter_fn(void *p)
{
	struct waiter *w = p;

	atomic_store(&w->started, true);
	if (w->remove)
		hmmu_interval_notifier_remove(w->in);
	else
		w->seq = hmmu_interval_read_begin(w->in);
	w->saw_end = atomic_load(w->ended);
	atomic_store(&w->done, true);
	return NULL;
}

static void waiter_start(struct waiter *w, struct hmmu_interval_notifier *in, bool remove, atomic_bool *ended)
{
	memset(w, 0, sizeof(*w));
	w->in = in;
	w->remove = remove;
	w->ended = ended;
	atomic_init(&w->started, false);
	atomic_init(&w->done, false);
	assert_int_equal(pthread_create(&w->t, NULL, waiter_fn, w), 0);
}

/*
 * Give a started waiter time to reach its sleep; true if it is (correctly)
 * still sleeping.  Not a timing assertion: it must not be done whatever the
 * delay.  Callers end the cycle before asserting, so a failure is clean.
 */
static bool waiter_settle(struct waiter *w)
{
	if (!nr_wait_true(&w->started))
		return false;
	nr_sleep_ms(50);
	return !atomic_load(&w->done);
}

static bool deferred_nonempty(struct hmmu_mm *mm)
{
	struct hmmu_notifier_subscriptions *subs = hmmu_mm_subscriptions(mm);
	bool nonempty;

	pthread_mutex_lock(&subs->lock);
	nonempty = !cds_list_empty(&subs->deferred_list);
	pthread_mutex_unlock(&subs->lock);
	return nonempty;
}

/*
 * read_begin on a subscriber hit by the cycle in progress waits for its
 * end (it returns only after the end: the flag is set just before it);
 * on a subscriber not hit it returns at once, during the cycle.
 */
static void test_interval_read_begin_waits(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_notifier_range r;
	struct nr_isub si, sj;
	struct waiter wi, wj;
	atomic_bool ended;
	unsigned long g;
	bool slept, quick;

	atomic_init(&ended, false);
	nr_isub_insert(&si, 1, mm, BASE, PAGE);
	nr_isub_insert(&sj, 2, mm, FAR, PAGE);
	g = nr_global_seq(mm);
	nr_inv_start(&r, mm, HMMU_NOTIFY_CLEAR, BASE, BASE + PAGE);
	assert_true(nr_sub_hit_now(&si.in));
	assert_false(nr_sub_hit_now(&sj.in));
	waiter_start(&wj, &sj.in, false, &ended);
	quick = nr_wait_true(&wj.done);		/* during the cycle */
	waiter_start(&wi, &si.in, false, &ended);
	slept = waiter_settle(&wi);
	atomic_store(&ended, true);
	hmmu_notifier_invalidate_range_end(&r);
	pthread_join(wi.t, NULL);
	pthread_join(wj.t, NULL);
	assert_true(quick);
	assert_true(slept);
	assert_true(wi.saw_end);
	assert_false(wj.saw_end);
	assert_int_equal(wi.seq, g + 1);	/* the value read before waiting */
	assert_int_equal(wj.seq, g - 1);
	hmmu_interval_notifier_remove(&si.in);
	hmmu_interval_notifier_remove(&sj.in);
}

/* remove during a cycle (from another thread) returns only after the cycle ended; no callback after. */
static void test_interval_remove_waits(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_notifier_range r;
	struct nr_isub si;
	struct waiter w;
	atomic_bool ended;
	long deadline;
	bool queued, slept;

	atomic_init(&ended, false);
	nr_isub_insert(&si, 1, mm, BASE, PAGE);
	nr_inv_start(&r, mm, HMMU_NOTIFY_CLEAR, BASE, BASE + PAGE);
	waiter_start(&w, &si.in, true, &ended);
	deadline = nr_now_ms() + NR_WAIT_LIMIT_MS;
	while (!deferred_nonempty(mm) && nr_now_ms() < deadline)
		nr_sleep_ms(1);
	queued = deferred_nonempty(mm);	/* queued as a pending removal */
	slept = waiter_settle(&w);
	atomic_store(&ended, true);
	hmmu_notifier_invalidate_range_end(&r);
	pthread_join(w.t, NULL);
	assert_true(queued);
	assert_true(slept);
	assert_true(w.saw_end);
	assert_int_equal(atomic_load(&si.nr_calls), 1);
	nr_inv(mm, HMMU_NOTIFY_CLEAR, BASE, BASE + PAGE);
	assert_int_equal(atomic_load(&si.nr_calls), 1);
	assert_int_equal(mm_count(mm), 1);
	nr_assert_idle(mm);
}

/*
 * An insert while a non-overlapping invalidation is active forces the seq
 * odd (the new subscriber is in the tree at once, read_begin on it waits),
 * until that invalidation ends.
 */
static void test_interval_insert_forces_odd(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_notifier_range non, ov;
	struct nr_isub si, sj;
	struct waiter w;
	atomic_bool ended;
	unsigned long g;
	bool slept;

	atomic_init(&ended, false);
	nr_isub_insert(&si, 1, mm, BASE, PAGE);
	g = nr_global_seq(mm);
	nr_reset();
	nr_inv_start(&non, mm, HMMU_NOTIFY_CLEAR, FAR, FAR + PAGE);
	expect_seq(mm, g, 1);
	nr_isub_insert(&sj, 2, mm, BASE + 8 * PAGE, PAGE);
	expect_seq(mm, g + 1, 1);
	assert_int_equal(nr_sub_seq(&sj.in), g + 1);
	assert_true(nr_sub_hit_now(&sj.in));
	waiter_start(&w, &sj.in, false, &ended);
	slept = waiter_settle(&w);
	/* Already in the tree: a nested invalidation reaches it. */
	nr_inv_start(&ov, mm, HMMU_NOTIFY_CLEAR, BASE + 8 * PAGE, BASE + 9 * PAGE);
	hmmu_notifier_invalidate_range_end(&ov);
	nr_expect(0, NR_INTERVAL, 2, BASE + 8 * PAGE, BASE + 9 * PAGE);
	nr_expect_count(1);
	assert_int_equal(nr_get(0).seq, g + 1);
	expect_seq(mm, g + 1, 1);
	atomic_store(&ended, true);
	hmmu_notifier_invalidate_range_end(&non);
	pthread_join(w.t, NULL);
	assert_true(slept);
	assert_true(w.saw_end);
	assert_int_equal(w.seq, g + 1);
	expect_seq(mm, g + 2, 0);
	assert_false(nr_sub_hit_now(&sj.in));
	assert_false(hmmu_interval_read_retry(&sj.in, hmmu_interval_read_begin(&sj.in)));
	hmmu_interval_notifier_remove(&si.in);
	hmmu_interval_notifier_remove(&sj.in);
}

/*
 * An insert during an odd cycle is deferred: not called by the current
 * cycle, visible after its end.  An insert removed in the same cycle is
 * dropped without waiting.
 */
static void test_interval_insert_deferred(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_notifier_range ov;
	struct nr_isub si, sj, sk;
	unsigned long g;

	nr_isub_insert(&si, 1, mm, BASE, 4 * PAGE);
	g = nr_global_seq(mm);
	nr_reset();
	nr_inv_start(&ov, mm, HMMU_NOTIFY_CLEAR, BASE, BASE + PAGE);
	expect_seq(mm, g + 1, 1);
	nr_isub_insert(&sj, 2, mm, BASE, 4 * PAGE);
	assert_int_equal(nr_sub_seq(&sj.in), g + 1);
	assert_true(deferred_nonempty(mm));
	assert_true(hmmu_rb_empty_node(&sj.in.interval_tree.rb));
	nr_isub_insert(&sk, 3, mm, BASE, 4 * PAGE);
	hmmu_interval_notifier_remove(&sk.in);	/* a pending insert: dropped at once */
	/* A nested invalidation in the same cycle reaches only the old subscriber. */
	nr_inv(mm, HMMU_NOTIFY_CLEAR, BASE, BASE + 4 * PAGE);
	nr_expect(0, NR_INTERVAL, 1, BASE, BASE + PAGE);
	nr_expect(1, NR_INTERVAL, 1, BASE, BASE + 4 * PAGE);
	nr_expect_count(2);
	hmmu_notifier_invalidate_range_end(&ov);
	expect_seq(mm, g + 2, 0);
	assert_false(deferred_nonempty(mm));
	assert_false(hmmu_rb_empty_node(&sj.in.interval_tree.rb));
	nr_inv(mm, HMMU_NOTIFY_CLEAR, BASE, BASE + 4 * PAGE);
	assert_int_equal(nr_count_of(NR_INTERVAL, 1), 3);
	assert_int_equal(nr_count_of(NR_INTERVAL, 2), 1);
	assert_int_equal(nr_count_of(NR_INTERVAL, 3), 0);
	hmmu_interval_notifier_remove(&si.in);
	hmmu_interval_notifier_remove(&sj.in);
	assert_int_equal(mm_count(mm), 1);
}

/*
 * A mirror update built on a stale seq is rejected: read_retry (under the
 * driver lock) is true exactly when an overlapping invalidation ran since
 * read_begin; check_retry agrees.
 */
static void test_interval_stale_seq(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	uint64_t rs = hmmu_test_seed() ^ 0x1234;
	struct nr_isub s;

	nr_isub_insert(&s, 1, mm, BASE, 4 * PAGE);
	for (int round = 0; round < 300; round++) {
		unsigned long seq = hmmu_interval_read_begin(&s.in);
		int k = (int)(hmmu_test_rand(&rs) % 3);
		bool hit = false, retry;

		for (int i = 0; i < k; i++) {
			bool ov = hmmu_test_rand(&rs) & 1;
			unsigned long at = ov ? BASE + (hmmu_test_rand(&rs) % 4) * PAGE : FAR;

			nr_inv(mm, HMMU_NOTIFY_CLEAR, at, at + PAGE);
			hit |= ov;
		}
		pthread_mutex_lock(&s.lock);
		retry = hmmu_interval_read_retry(&s.in, seq);
		pthread_mutex_unlock(&s.lock);
		assert_int_equal(retry, hit);
		assert_int_equal(hmmu_interval_check_retry(&s.in, seq), hit);
		assert_int_equal(nr_sub_seq(&s.in) & 1, 1);
	}
	hmmu_interval_notifier_remove(&s.in);
}

/* ------------------------------------------------------------------ */
/* Interval: lookup against brute force                                */
/* ------------------------------------------------------------------ */

#define LK_SUBS 160
#define LK_ROUNDS 300
#define LK_SPACE (1UL << 32)

struct lk_sub {
	struct hmmu_interval_notifier in;
	int id;
};

static unsigned char lk_hit[LK_SUBS];
static unsigned long lk_cur_seq;
static int lk_bad_seq;

static bool lk_invalidate(struct hmmu_interval_notifier *in, const struct hmmu_notifier_range *r,
			  unsigned long cur_seq)
{
	struct lk_sub *s = hmmu_container_of(in, struct lk_sub, in);

	lk_hit[s->id]++;
	lk_bad_seq += !(cur_seq & 1) || (lk_cur_seq && cur_seq != lk_cur_seq);
	lk_cur_seq = cur_seq;
	hmmu_interval_set_seq(in, cur_seq);
	return true;
}

static const struct hmmu_interval_notifier_ops lk_iops = { .invalidate = lk_invalidate };

/* Many subscribers, random ranges: exactly the overlapping ones are called, once each. */
static void test_interval_lookup_brute_force(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	uint64_t rs = hmmu_test_seed() ^ 0xabcd;
	static struct lk_sub subs[LK_SUBS];

	for (int i = 0; i < LK_SUBS; i++) {
		unsigned long start = hmmu_test_rand(&rs) % LK_SPACE;
		unsigned long len = 1 + hmmu_test_rand(&rs) % (i % 4 ? LK_SPACE / 64 : LK_SPACE / 4);

		if (i % 16 == 15) {	/* duplicates */
			start = subs[i - 1].in.interval_tree.start;
			len = subs[i - 1].in.interval_tree.last - start + 1;
		}
		subs[i].id = i;
		assert_int_equal(hmmu_interval_notifier_insert(&subs[i].in, mm, start, len, &lk_iops), 0);
	}
	for (int round = 0; round < LK_ROUNDS; round++) {
		unsigned long start = hmmu_test_rand(&rs) % (LK_SPACE + LK_SPACE / 8);
		unsigned long len = 1 + hmmu_test_rand(&rs) % (round % 3 ? LK_SPACE / 32 : 4096);
		unsigned long g = nr_global_seq(mm);
		bool any = false;

		if (round == 0) {
			start = 0;
			len = ~0UL;
		}
		memset(lk_hit, 0, sizeof(lk_hit));
		lk_cur_seq = 0;
		nr_inv(mm, HMMU_NOTIFY_CLEAR, start, start + len);
		for (int i = 0; i < LK_SUBS; i++) {
			bool ov = subs[i].in.interval_tree.start <= start + len - 1 &&
				  subs[i].in.interval_tree.last >= start;

			assert_int_equal(lk_hit[i], ov);
			any |= ov;
		}
		assert_int_equal(nr_global_seq(mm), any ? g + 2 : g);
	}
	assert_int_equal(lk_bad_seq, 0);
	for (int i = 0; i < LK_SUBS; i++)
		hmmu_interval_notifier_remove(&subs[i].in);
	assert_int_equal(mm_count(mm), 1);
}

/* ------------------------------------------------------------------ */
/* Concurrent mirroring                                                */
/* ------------------------------------------------------------------ */

#define MIR_N 3
#define MIR_PAGES 16
#define MUT_N 2
#define REGION (BASE + 64 * MiB)
#define REGION_PAGES (MIR_N * MIR_PAGES + 8)
#define MIR_MIN_MS 1500
#define MIR_MAX_MS 20000

/* A toy device mirroring MIR_PAGES pages: pfn[i] != 0 is a device mapping. */
struct mirror {
	struct hmmu_interval_notifier in;
	pthread_mutex_t lock;		/* the driver lock */
	struct hmmu_mm *mm;
	unsigned long base;
	unsigned long pfn[MIR_PAGES];	/* driver lock */
	unsigned long invalidations;	/* driver lock */
	unsigned long stale;		/* driver lock: entries not matching the CPU */
	unsigned long early;		/* driver lock: stores inside the cycle that hit us */
	atomic_ulong retries, waits, stores;
	uint64_t rs;
	atomic_bool *stop;
	pthread_t t;
};

/* The frame the CPU maps at @addr, or 0.  The caller holds the mmap_lock. */
static unsigned long cpu_pfn(struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_pt *pt;
	bool huge = false;
	hmmu_pte_t *ep, e = 0;

	ep = hmmu_leaf_lookup_lock(mm, addr, &pt, &huge);
	if (ep) {
		e = hmmu_pte_read(ep);
		hmmu_pt_unlock(pt);
	}
	if (!hmmu_pte_present(e))
		return 0;
	return hmmu_pte_pfn(e) + (huge ? (addr & ~HMMU_PMD_MASK) >> HMMU_PAGE_SHIFT : 0);
}

/*
 * The driver's invalidate: under the driver lock, set_seq, check that every
 * entry about to be torn down still matches the CPU (the CPU entries have
 * not changed yet; the caller holds the mmap_lock), tear down.
 */
static bool mirror_invalidate(struct hmmu_interval_notifier *in, const struct hmmu_notifier_range *r,
			      unsigned long cur_seq)
{
	struct mirror *m = hmmu_container_of(in, struct mirror, in);
	unsigned long lo = HMMU_MAX(HMMU_ALIGN_DOWN(r->start, PAGE), m->base);
	unsigned long hi = HMMU_MIN(r->end, m->base + MIR_PAGES * PAGE);
	bool blockable = hmmu_notifier_range_blockable(r);

	if (blockable)
		pthread_mutex_lock(&m->lock);
	else if (pthread_mutex_trylock(&m->lock))
		return false;
	hmmu_interval_set_seq(in, cur_seq);
	for (unsigned long addr = lo; addr < hi; addr += PAGE) {
		unsigned long i = (addr - m->base) / PAGE;

		if (!m->pfn[i])
			continue;
		if (r->event != HMMU_NOTIFY_RELEASE && cpu_pfn(m->mm, addr) != m->pfn[i])
			m->stale++;
		m->pfn[i] = 0;
	}
	m->invalidations++;
	pthread_mutex_unlock(&m->lock);
	if (blockable && !(cur_seq & 6))
		sched_yield();	/* keep the cycle open a little longer now and then */
	return true;
}

static const struct hmmu_interval_notifier_ops mirror_iops = { .invalidate = mirror_invalidate };

/* Snapshot the CPU entries of [i, i + n) with GUP; 0 where nothing can be read. */
static void mirror_snapshot(struct mirror *m, unsigned long i, unsigned long n, unsigned long *pfns)
{
	struct hmmu_page *pages[MIR_PAGES];
	long got;

	hmmu_mmap_read_lock(m->mm);
	got = hmmu_get_user_pages_remote(m->mm, m->base + i * PAGE, n, 0, pages);
	for (long k = 0; k < (long)n; k++) {
		pfns[k] = k < got ? hmmu_page_to_pfn(pages[k]) : 0;
		if (k < got)
			hmmu_put_page(pages[k]);
	}
	hmmu_mmap_read_unlock(m->mm);
}

/* One device fault over [i, i + n): the canonical retry loop of spec 1.8. */
static void mirror_fault(struct mirror *m, unsigned long i, unsigned long n)
{
	unsigned long pfns[MIR_PAGES], seq;

	while (!atomic_load(m->stop)) {
		if (nr_sub_hit_now(&m->in))
			atomic_fetch_add(&m->waits, 1);	/* read_begin will sleep */
		seq = hmmu_interval_read_begin(&m->in);
		mirror_snapshot(m, i, n, pfns);
		pthread_mutex_lock(&m->lock);
		if (hmmu_interval_read_retry(&m->in, seq)) {
			pthread_mutex_unlock(&m->lock);
			atomic_fetch_add(&m->retries, 1);
			continue;
		}
		if (nr_sub_hit_now(&m->in))
			m->early++;
		memcpy(&m->pfn[i], pfns, n * sizeof(pfns[0]));
		pthread_mutex_unlock(&m->lock);
		atomic_fetch_add(&m->stores, 1);
		return;
	}
}

/* Every device entry matches the CPU's; returns the mismatches. */
static unsigned long mirror_verify(struct mirror *m)
{
	unsigned long bad = 0;

	hmmu_mmap_read_lock(m->mm);
	pthread_mutex_lock(&m->lock);
	for (unsigned long i = 0; i < MIR_PAGES; i++)
		if (m->pfn[i] && cpu_pfn(m->mm, m->base + i * PAGE) != m->pfn[i])
			bad++;
	m->stale += bad;
	pthread_mutex_unlock(&m->lock);
	hmmu_mmap_read_unlock(m->mm);
	return bad;
}

static void *mirror_thread(void *p)
{
	struct mirror *m = p;

	for (unsigned long it = 0; !atomic_load(m->stop); it++) {
		unsigned long i = hmmu_test_rand(&m->rs) % MIR_PAGES;
		unsigned long n = 1 + hmmu_test_rand(&m->rs) % (MIR_PAGES - i);

		mirror_fault(m, i, n);
		if (it % 16 == 15)
			mirror_verify(m);
	}
	return NULL;
}

struct mutator {
	struct hmmu_mm *mm;
	uint64_t rs;
	atomic_bool *stop;
	unsigned long ops;
	pthread_t t;
};

/* One random CPU-side operation on a few pages of the region. */
static void mutate_once(struct mutator *t)
{
	unsigned long off = hmmu_test_rand(&t->rs) % REGION_PAGES;
	unsigned long n = 1 + hmmu_test_rand(&t->rs) % HMMU_MIN(8UL, REGION_PAGES - off);
	unsigned long a = REGION + off * PAGE;
	unsigned char v = (unsigned char)t->ops;

	switch (hmmu_test_rand(&t->rs) % 8) {
	case 0:
	case 1:
		for (unsigned long k = 0; k < n; k++)
			hmmu_access(t->mm, a + k * PAGE, &v, 1, HMMU_ACCESS_WRITE);
		break;
	case 2:
		for (unsigned long k = 0; k < n; k++)
			hmmu_access(t->mm, a + k * PAGE, &v, 1, HMMU_ACCESS_READ);
		break;
	case 3:
		hmmu_madvise(t->mm, a, n * PAGE, MADV_DONTNEED);
		break;
	case 4:
		hmmu_mprotect(t->mm, a, n * PAGE, PROT_READ);
		hmmu_access(t->mm, a, &v, 1, HMMU_ACCESS_READ);
		hmmu_mprotect(t->mm, a, n * PAGE, RW);
		break;
	case 5:
		hmmu_mprotect(t->mm, a, n * PAGE, PROT_NONE);
		hmmu_mprotect(t->mm, a, n * PAGE, RW);
		break;
	case 6:
		hmmu_munmap(t->mm, a, n * PAGE);
		sched_yield();
		hmmu_mmap(t->mm, a, n * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		break;
	default:
		hmmu_mmap(t->mm, a, n * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		break;
	}
	t->ops++;
}

static void *mutator_thread(void *p)
{
	struct mutator *t = p;

	while (!atomic_load(t->stop))
		mutate_once(t);
	return NULL;
}

static unsigned long sum_counter(struct mirror *m, size_t off)
{
	unsigned long s = 0;

	for (int i = 0; i < MIR_N; i++)
		s += atomic_load((atomic_ulong *)((char *)&m[i] + off));
	return s;
}

/* Run until both a retry and a read_begin wait were seen (at least MIR_MIN_MS, at most MIR_MAX_MS). */
static void mirror_run(struct mirror *m)
{
	long t0 = nr_now_ms();

	for (;;) {
		long el = nr_now_ms() - t0;

		nr_sleep_ms(20);
		if (el >= MIR_MAX_MS)
			break;
		if (el >= MIR_MIN_MS && sum_counter(m, offsetof(struct mirror, retries)) &&
		    sum_counter(m, offsetof(struct mirror, waits)))
			break;
	}
}

/*
 * Issue acceptance: mirrors run the canonical retry loop while other
 * threads munmap/mmap, mprotect and fault the same ranges.  A device entry
 * never survives an invalidation of its address: every invalidation finds
 * the entries it tears down still equal to the CPU's, periodic and final
 * checks under the driver lock find every entry equal to the CPU's, and no
 * store happens inside the cycle that hit the mirror.  Retries and
 * read_begin waits both happen.
 */
static void test_interval_mirror_concurrency(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	static struct mirror m[MIR_N];
	struct mutator t[MUT_N];
	atomic_bool stop;
	unsigned long stale = 0, early = 0, inv = 0, ops = 0;

	atomic_init(&stop, false);
	nr_map_at(mm, REGION, REGION_PAGES * PAGE, RW);
	for (int i = 0; i < MIR_N; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		pthread_mutex_init(&m[i].lock, NULL);
		m[i].mm = mm;
		m[i].base = REGION + 4 * PAGE + i * MIR_PAGES * PAGE;
		m[i].rs = hmmu_test_seed() * (i + 3);
		m[i].stop = &stop;
		assert_int_equal(hmmu_interval_notifier_insert(&m[i].in, mm, m[i].base, MIR_PAGES * PAGE,
							       &mirror_iops), 0);
	}
	for (int i = 0; i < MUT_N; i++) {
		t[i] = (struct mutator){ .mm = mm, .rs = hmmu_test_seed() * (i + 11), .stop = &stop };
		assert_int_equal(pthread_create(&t[i].t, NULL, mutator_thread, &t[i]), 0);
	}
	for (int i = 0; i < MIR_N; i++)
		assert_int_equal(pthread_create(&m[i].t, NULL, mirror_thread, &m[i]), 0);
	mirror_run(m);
	atomic_store(&stop, true);
	for (int i = 0; i < MUT_N; i++) {
		pthread_join(t[i].t, NULL);
		ops += t[i].ops;
	}
	for (int i = 0; i < MIR_N; i++) {
		pthread_join(m[i].t, NULL);
		mirror_verify(&m[i]);
		stale += m[i].stale;
		early += m[i].early;
		inv += m[i].invalidations;
	}
	nr_assert_idle(mm);
	for (int i = 0; i < MIR_N; i++) {
		hmmu_interval_notifier_remove(&m[i].in);
		pthread_mutex_destroy(&m[i].lock);
	}
	print_message("# mirror: %lu stores, %lu read_retry retries, %lu read_begin waits, %lu invalidations, "
		      "%lu CPU ops\n",
		      sum_counter(m, offsetof(struct mirror, stores)), sum_counter(m, offsetof(struct mirror, retries)),
		      sum_counter(m, offsetof(struct mirror, waits)), inv, ops);
	assert_int_equal(stale, 0);
	assert_int_equal(early, 0);
	assert_true(sum_counter(m, offsetof(struct mirror, stores)) > 0);
	assert_true(sum_counter(m, offsetof(struct mirror, retries)) > 0);
	assert_true(sum_counter(m, offsetof(struct mirror, waits)) > 0);
}

/*
 * The first interval insert lands between a start and its end (possible on
 * paths that invalidate without the mmap_lock): the end must not uncount a
 * range its start never counted in the tree.
 */
static bool noop_invalidate(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
			    unsigned long cur_seq)
{
	hmmu_interval_set_seq(sub, cur_seq);
	return true;
}

static void test_itree_enabled_mid_range(void **state)
{
	static const struct hmmu_interval_notifier_ops ops = { .invalidate = noop_invalidate };
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_interval_notifier in;
	struct hmmu_notifier_range range;
	struct hmmu_notifier_subscriptions *subs;

	hmmu_notifier_range_init(&range, HMMU_NOTIFY_CLEAR, 0, mm, 0x100000, 0x101000);
	hmmu_notifier_invalidate_range_start(&range);
	assert_int_equal(hmmu_interval_notifier_insert(&in, mm, 0x100000, 0x1000, &ops), 0);
	hmmu_notifier_invalidate_range_end(&range);
	subs = hmmu_mm_subscriptions(mm);
	assert_int_equal(subs->active_invalidate_ranges, 0);
	assert_int_equal(subs->invalidate_seq & 1, 0);
	hmmu_interval_read_begin(&in);	/* must not block */
	hmmu_interval_notifier_remove(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_itree_enabled_mid_range),
		HMMU_TEST(test_range_init),
		HMMU_TEST(test_register_einval),
		HMMU_TEST(test_register_unregister),
		HMMU_TEST(test_notifier_invalid_args),
		HMMU_TEST(test_munmap_events),
		HMMU_TEST(test_dontneed_events),
		HMMU_TEST(test_mprotect_events),
		HMMU_TEST(test_zero_page_cow_events),
		HMMU_TEST(test_huge_split_events),
		HMMU_TEST(test_huge_zap_events),
		HMMU_TEST(test_teardown_order),
		HMMU_TEST(test_get_put_shared),
		HMMU_TEST(test_get_locked),
		HMMU_TEST(test_get_errors),
		HMMU_TEST(test_get_released_at_exit),
		HMMU_TEST(test_put_from_release),
		HMMU_TEST(test_release_unregister_race),
		HMMU_TEST(test_age_young_ops),
		HMMU_TEST(test_nonblock_classic_fail),
		HMMU_TEST(test_nonblock_success),
		HMMU_TEST(test_reap_interval_busy),
		HMMU_TEST(test_reap_classic_fail),
		HMMU_TEST(test_interval_insert_errors),
		HMMU_TEST(test_interval_seq_basics),
		HMMU_TEST(test_interval_nested_parity),
		HMMU_TEST(test_interval_read_begin_waits),
		HMMU_TEST(test_interval_remove_waits),
		HMMU_TEST(test_interval_insert_forces_odd),
		HMMU_TEST(test_interval_insert_deferred),
		HMMU_TEST(test_interval_stale_seq),
		HMMU_TEST(test_interval_lookup_brute_force),
		HMMU_TEST(test_interval_mirror_concurrency),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
