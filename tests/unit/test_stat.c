// SPDX-License-Identifier: MIT
/*
 * Unit tests of the global event counters (include/hmmu/stat.h): each
 * controlled action moves exactly the counters it should, by exactly the
 * expected amount, and no other.  The tests run one at a time in one
 * process and nothing else runs meanwhile, so every delta is exact.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define MAXN 8

static int owner;

/* One expected change: counter @id moves by @delta. */
struct delta {
	enum hmmu_stat_item id;
	unsigned long delta;
};

static struct hmmu_stat snap(void)
{
	struct hmmu_stat s;

	assert_int_equal(hmmu_stat(&s), 0);
	return s;
}

/* Every counter moved from @before by its entry in @want (0 if absent). */
static void expect(const struct hmmu_stat *before, const struct delta *want, size_t n)
{
	struct hmmu_stat now = snap();
	int bad = 0;

	for (unsigned int id = 0; id < HMMU_STAT_NR; id++) {
		unsigned long d = 0;

		for (size_t k = 0; k < n; k++)
			d += want[k].id == id ? want[k].delta : 0;
		if (now.v[id] - before->v[id] != d) {
			print_error("%s moved by %lu, expected %lu\n", hmmu_stat_name(id), now.v[id] - before->v[id], d);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

#define EXPECT(before, ...)                                                                  \
	do {                                                                                 \
		const struct delta want_[] = { __VA_ARGS__ };                                \
		expect((before), want_, sizeof(want_) / sizeof(want_[0]));                    \
	} while (0)

/* A new frame of @dev, holding its source's bytes, for every selected entry of @src. */
static void fill_dst(struct hmmu_test_dev *dev, const unsigned long *src, unsigned long *dst, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		struct hmmu_page *spage = hmmu_migrate_pfn_to_page(src[i]), *dpage;

		dpage = (src[i] & HMMU_MIGRATE_PFN_MIGRATE) ? hmmu_test_dev_alloc(dev) : NULL;
		if (!dpage)
			continue;
		if (spage)
			memcpy(hmmu_test_dev_mem(dev, dpage), hmmu_page_address(spage), PAGE);
		dst[i] = hmmu_migrate_pfn(hmmu_page_to_pfn(dpage)) | (src[i] & HMMU_MIGRATE_PFN_WRITE);
	}
}

/*
 * Migrate @n pages at @a to new frames of @dev (SELECT_SYSTEM), as a driver
 * does: setup, a destination for every selected entry, pages, finalize.
 * Returns how many entries were committed.
 */
static unsigned long to_device(struct hmmu_test_dev *dev, struct hmmu_mm *mm, unsigned long a, unsigned long n)
{
	unsigned long src[MAXN] = { 0 }, dst[MAXN] = { 0 }, done = 0;
	struct hmmu_migrate_vma args = { .start = a, .end = a + n * PAGE, .src = src, .dst = dst,
					 .pgmap_owner = &owner, .flags = HMMU_MIGRATE_VMA_SELECT_SYSTEM };

	assert_true(n <= MAXN);
	hmmu_mmap_read_lock(mm);
	args.vma = hmmu_vma_lookup(mm, a);
	assert_int_equal(hmmu_migrate_vma_setup(&args), 0);
	fill_dst(dev, src, dst, n);
	assert_int_equal(hmmu_migrate_vma_pages(&args), 0);
	for (unsigned long i = 0; i < n; i++)
		done += !!(src[i] & HMMU_MIGRATE_PFN_MIGRATE);
	assert_int_equal(hmmu_migrate_vma_finalize(&args), 0);
	hmmu_mmap_read_unlock(mm);
	return done;
}

/* Write one byte to each of @n pages at @a. */
static void touch(struct hmmu_mm *mm, unsigned long a, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		put_byte(mm, a + i * PAGE, (unsigned char)(i + 1));
}

static void test_stat_api(void **state)
{
	struct hmmu_stat s;

	assert_int_equal(hmmu_stat(NULL), -EINVAL);
	assert_null(hmmu_stat_name(HMMU_STAT_NR));
	assert_null(hmmu_stat_name(~0u));
	for (unsigned int i = 0; i < HMMU_STAT_NR; i++) {
		assert_non_null(hmmu_stat_name(i));
		assert_true(strlen(hmmu_stat_name(i)) > 0);
		for (unsigned int j = 0; j < i; j++)
			assert_string_not_equal(hmmu_stat_name(i), hmmu_stat_name(j));
	}
	hmmu_stat_reset();
	assert_int_equal(hmmu_stat(&s), 0);
	for (unsigned int i = 0; i < HMMU_STAT_NR; i++)
		assert_int_equal(s.v[i], 0);
}

/* A read of an empty anonymous page maps the zero page; a write then copies it. */
static void test_stat_read_fault(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct hmmu_stat s = snap();

	assert_int_equal(fault_at(mm, a, 0), 0);
	EXPECT(&s, { HMMU_STAT_FAULT, 1 }, { HMMU_STAT_FAULT_ANON, 1 }, { HMMU_STAT_FAULT_ZERO_PAGE, 1 });
	s = snap();
	assert_int_equal(fault_at(mm, a, HMMU_FAULT_FLAG_WRITE), 0);
	EXPECT(&s, { HMMU_STAT_FAULT, 1 }, { HMMU_STAT_FAULT_COW, 1 }, { HMMU_STAT_INVALIDATE_CLEAR, 1 });
}

static void test_stat_write_fault(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct hmmu_stat s = snap();

	assert_int_equal(fault_at(mm, a, HMMU_FAULT_FLAG_WRITE), 0);
	EXPECT(&s, { HMMU_STAT_FAULT, 1 }, { HMMU_STAT_FAULT_ANON, 1 });
	s = snap();
	assert_int_equal(fault_at(mm, a, HMMU_FAULT_FLAG_WRITE), 0);	/* present and writable: spurious */
	EXPECT(&s, { HMMU_STAT_FAULT, 1 });
}

/* N pages to the device, then one back by a CPU fault on its device-private entry. */
static void test_stat_migrate(void **state)
{
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 8, &owner);
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 5 * PAGE, RW);
	struct hmmu_stat s;

	touch(mm, a, 5);
	s = snap();
	assert_int_equal(to_device(dev, mm, a, 5), 5);
	EXPECT(&s, { HMMU_STAT_MIGRATE_TO_DEVICE_ATTEMPTED, 5 }, { HMMU_STAT_MIGRATE_TO_DEVICE_SUCCEEDED, 5 },
	       { HMMU_STAT_DEVICE_PAGE_ALLOC, 5 }, { HMMU_STAT_INVALIDATE_MIGRATE, 1 });
	s = snap();
	assert_int_equal(get_byte(mm, a + 2 * PAGE), 3);
	/* The fault, the driver's migrate_vma back, the device frame freed. */
	EXPECT(&s, { HMMU_STAT_FAULT, 1 }, { HMMU_STAT_FAULT_DEVICE_PRIVATE, 1 },
	       { HMMU_STAT_MIGRATE_TO_SYSTEM_ATTEMPTED, 1 }, { HMMU_STAT_MIGRATE_TO_SYSTEM_SUCCEEDED, 1 },
	       { HMMU_STAT_INVALIDATE_MIGRATE, 1 }, { HMMU_STAT_DEVICE_PAGE_FREE, 1 });
}

/* Empty slots are attempted too; one without a destination fails in pages(). */
static void test_stat_migrate_no_destination(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW), src[2] = { 0 }, dst[2] = { 0 };
	struct hmmu_migrate_vma args = { .start = a, .end = a + 2 * PAGE, .src = src, .dst = dst,
					 .pgmap_owner = &owner, .flags = HMMU_MIGRATE_VMA_SELECT_SYSTEM };
	struct hmmu_stat s = snap();

	hmmu_mmap_read_lock(mm);
	args.vma = hmmu_vma_lookup(mm, a);
	assert_int_equal(hmmu_migrate_vma_setup(&args), 0);
	assert_int_equal(args.cpages, 2);
	assert_int_equal(hmmu_migrate_vma_pages(&args), 0);	/* no dst: nothing moves */
	assert_int_equal(hmmu_migrate_vma_finalize(&args), 0);
	hmmu_mmap_read_unlock(mm);
	EXPECT(&s, { HMMU_STAT_MIGRATE_TO_DEVICE_ATTEMPTED, 2 }, { HMMU_STAT_MIGRATE_TO_DEVICE_FAILED, 2 },
	       { HMMU_STAT_INVALIDATE_MIGRATE, 1 });
}

/*
 * Migrate a touched page while GUP holds it (@pinned: a DMA pin, with
 * FOLL_WRITE); nothing moves.  Returns the counters just before the
 * migration.
 */
static struct hmmu_stat migrate_held(bool pinned)
{
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner);
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct hmmu_page *held;
	struct hmmu_stat s;

	touch(mm, a, 1);
	assert_int_equal(pinned ? pin(mm, a, 1, HMMU_FOLL_WRITE, &held) : gup(mm, a, 1, 0, &held), 1);
	s = snap();
	assert_int_equal(to_device(dev, mm, a, 1), 0);
	if (pinned)
		hmmu_unpin_user_page(held);
	else
		hmmu_put_page(held);
	return s;
}

/*
 * An extra reference (GUP, not a pin: a pinned exclusive page is not even
 * selected) fails the unmap step's reference check: attempted +1, failed +1,
 * pin check +1.
 */
static void test_stat_migrate_referenced(void **state)
{
	struct hmmu_stat s = migrate_held(false);

	EXPECT(&s, { HMMU_STAT_MIGRATE_TO_DEVICE_ATTEMPTED, 1 }, { HMMU_STAT_MIGRATE_TO_DEVICE_FAILED, 1 },
	       { HMMU_STAT_MIGRATE_PIN_CHECK_FAILED, 1 }, { HMMU_STAT_INVALIDATE_MIGRATE, 1 });
}

/* A DMA-pinned exclusive page is not selected: pin check +1, nothing attempted. */
static void test_stat_migrate_pinned(void **state)
{
	struct hmmu_stat s = migrate_held(true);

	EXPECT(&s, { HMMU_STAT_MIGRATE_PIN_CHECK_FAILED, 1 }, { HMMU_STAT_INVALIDATE_MIGRATE, 1 });
}

/*
 * A write fault fills a collected empty slot before pages(): the hole is
 * lost (two MIGRATE invalidations: setup's, and the one pages() opens for
 * its insertions).
 */
static void test_stat_migrate_hole_lost(void **state)
{
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner);
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW), src[1] = { 0 }, dst[1] = { 0 };
	struct hmmu_migrate_vma args = { .start = a, .end = a + PAGE, .src = src, .dst = dst,
					 .pgmap_owner = &owner, .flags = HMMU_MIGRATE_VMA_SELECT_SYSTEM };
	struct hmmu_stat s = snap();

	hmmu_mmap_read_lock(mm);
	args.vma = hmmu_vma_lookup(mm, a);
	assert_int_equal(hmmu_migrate_vma_setup(&args), 0);
	assert_int_equal(args.cpages, 1);
	fill_dst(dev, src, dst, 1);
	assert_int_equal(hmmu_handle_mm_fault(args.vma, a, HMMU_FAULT_FLAG_WRITE), 0);
	assert_int_equal(hmmu_migrate_vma_pages(&args), 0);
	assert_false(src[0] & HMMU_MIGRATE_PFN_MIGRATE);
	assert_int_equal(hmmu_migrate_vma_finalize(&args), 0);
	hmmu_mmap_read_unlock(mm);
	EXPECT(&s, { HMMU_STAT_MIGRATE_TO_DEVICE_ATTEMPTED, 1 }, { HMMU_STAT_MIGRATE_TO_DEVICE_FAILED, 1 },
	       { HMMU_STAT_MIGRATE_HOLE_LOST, 1 }, { HMMU_STAT_INVALIDATE_MIGRATE, 2 }, { HMMU_STAT_FAULT, 1 },
	       { HMMU_STAT_FAULT_ANON, 1 }, { HMMU_STAT_DEVICE_PAGE_ALLOC, 1 }, { HMMU_STAT_DEVICE_PAGE_FREE, 1 });
}

static void test_stat_munmap(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	struct hmmu_stat s;

	touch(mm, a, 4);
	s = snap();
	assert_int_equal(hmmu_munmap(mm, a, 4 * PAGE), 0);
	EXPECT(&s, { HMMU_STAT_INVALIDATE_UNMAP, 1 });
}

static bool stat_invalidate(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
			    unsigned long cur_seq)
{
	hmmu_interval_set_seq(sub, cur_seq);
	return true;
}

static const struct hmmu_interval_notifier_ops stat_ops = { .invalidate = stat_invalidate };

/* hmmu_range_fault(@r) under its mm's mmap_lock (read). */
static int range_fault_locked(struct hmmu_range *r)
{
	int ret;

	hmmu_mmap_read_lock(r->notifier->mm);
	ret = hmmu_range_fault(r);
	hmmu_mmap_read_unlock(r->notifier->mm);
	return ret;
}

/* An invalidation between read_begin and the call: the call returns -EBUSY. */
static void test_stat_range_fault_retry(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW), pfns[2] = { 0 };
	static struct hmmu_interval_notifier sub;	/* outlives a failed assertion */
	struct hmmu_range r = { .notifier = &sub, .start = a, .end = a + 2 * PAGE, .hmm_pfns = pfns,
				.default_flags = HMMU_PFN_REQ_FAULT };
	struct hmmu_stat s;

	assert_int_equal(hmmu_interval_notifier_insert(&sub, mm, a, 2 * PAGE, &stat_ops), 0);
	touch(mm, a, 2);
	r.notifier_seq = hmmu_interval_read_begin(&sub);
	assert_int_equal(hmmu_madvise(mm, a, PAGE, MADV_DONTNEED), 0);
	s = snap();
	assert_int_equal(range_fault_locked(&r), -EBUSY);
	EXPECT(&s, { HMMU_STAT_RANGE_FAULT, 1 }, { HMMU_STAT_RANGE_FAULT_RETRY, 1 });
	s = snap();
	r.notifier_seq = hmmu_interval_read_begin(&sub);
	assert_int_equal(range_fault_locked(&r), 0);
	/* The walk faults the table's run from page 0 on (page 1 spuriously), then restarts once. */
	EXPECT(&s, { HMMU_STAT_RANGE_FAULT, 1 }, { HMMU_STAT_RANGE_FAULT_RESTART, 1 }, { HMMU_STAT_FAULT, 2 },
	       { HMMU_STAT_FAULT_ANON, 1 }, { HMMU_STAT_FAULT_ZERO_PAGE, 1 });
	hmmu_interval_notifier_remove(&sub);
}

static void test_stat_device_page(void **state)
{
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner);
	struct hmmu_stat s = snap();
	struct hmmu_page *page = hmmu_test_dev_alloc(dev);

	assert_non_null(page);
	EXPECT(&s, { HMMU_STAT_DEVICE_PAGE_ALLOC, 1 });
	hmmu_unlock_page(page);
	hmmu_put_page(page);
	EXPECT(&s, { HMMU_STAT_DEVICE_PAGE_ALLOC, 1 }, { HMMU_STAT_DEVICE_PAGE_FREE, 1 });
}

/* Evict @n device frames of @dev from @first into new system pages; returns those moved. */
static unsigned long evict(struct hmmu_test_dev *dev, unsigned long n)
{
	unsigned long src[MAXN], dst[MAXN] = { 0 }, done = 0;

	assert_int_equal(hmmu_migrate_device_range(src, dev->first_pfn, n), 0);
	for (unsigned long i = 0; i < n; i++) {
		struct hmmu_page *spage = hmmu_migrate_pfn_to_page(src[i]), *dpage;

		if (!spage || !(src[i] & HMMU_MIGRATE_PFN_MIGRATE))
			continue;
		dpage = hmmu_alloc_page(HMMU_GFP_KERNEL);
		assert_non_null(dpage);
		hmmu_lock_page(dpage);
		memcpy(hmmu_page_address(dpage), hmmu_test_dev_mem(dev, spage), PAGE);
		dst[i] = hmmu_migrate_pfn(hmmu_page_to_pfn(dpage));
	}
	assert_int_equal(hmmu_migrate_device_pages(src, dst, n), 0);
	for (unsigned long i = 0; i < n; i++)
		done += !!(src[i] & HMMU_MIGRATE_PFN_MIGRATE);
	assert_int_equal(hmmu_migrate_device_finalize(src, dst, n), 0);
	return done;
}

/* Eviction: the frames in use are collected, moved home and freed. */
static void test_stat_evict(void **state)
{
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner);
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 3 * PAGE, RW);
	struct hmmu_stat s;

	touch(mm, a, 3);
	assert_int_equal(to_device(dev, mm, a, 3), 3);
	s = snap();
	assert_int_equal(evict(dev, 4), 3);	/* the fourth frame is free: not taken */
	EXPECT(&s, { HMMU_STAT_EVICT, 3 }, { HMMU_STAT_MIGRATE_TO_SYSTEM_ATTEMPTED, 3 },
	       { HMMU_STAT_MIGRATE_TO_SYSTEM_SUCCEEDED, 3 }, { HMMU_STAT_INVALIDATE_CLEAR, 3 },
	       { HMMU_STAT_DEVICE_PAGE_FREE, 3 });
	s = snap();
	for (unsigned long i = 0; i < 3; i++)
		assert_int_equal(get_byte(mm, a + i * PAGE), i + 1);
	EXPECT(&s, { HMMU_STAT_FAULT, 0 });	/* home already: no fault */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_stat_api),
		HMMU_TEST(test_stat_read_fault),
		HMMU_TEST(test_stat_write_fault),
		HMMU_TEST(test_stat_migrate),
		HMMU_TEST(test_stat_migrate_no_destination),
		HMMU_TEST(test_stat_migrate_referenced),
		HMMU_TEST(test_stat_migrate_pinned),
		HMMU_TEST(test_stat_migrate_hole_lost),
		HMMU_TEST(test_stat_munmap),
		HMMU_TEST(test_stat_range_fault_retry),
		HMMU_TEST(test_stat_device_page),
		HMMU_TEST(test_stat_evict),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
