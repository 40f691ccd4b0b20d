// SPDX-License-Identifier: MIT
/*
 * Unit tests of device-exclusive entries (spec 4.6) and of how every mm
 * path treats them and device-private entries (spec 4.4): conversion
 * (locked, referenced pages; write-variant entries that keep the reference
 * and drop the mapcount; one EXCLUSIVE invalidation with the owner per
 * page), faulting in and splitting first (empty, zero page, copy-on-write,
 * transparent huge page), the pages it refuses (read-only VMA, locked
 * page, a page still mapped elsewhere), the CPU restore (read, write,
 * waiting for the driver's page lock; EXCLUSIVE with owner NULL, entry
 * old), munmap / MADV_DONTNEED / teardown, mprotect's unconditional
 * downgrade of write entries, fork (restore then copy-on-write; -ENOMEM
 * with the page lock busy), mremap, hmm_range_fault and GUP restoring,
 * the page-table validator, and a concurrent convert / CPU-write run.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "notifier_rec.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define RWX (PROT_READ | PROT_WRITE | PROT_EXEC)
#define EXCL_R HMMU_SWP_DEVICE_EXCLUSIVE_READ
#define EXCL_W HMMU_SWP_DEVICE_EXCLUSIVE_WRITE
#define NPMD (HMMU_PMD_SIZE / PAGE)

/* The device's identity: owner of its EXCLUSIVE invalidations. */
static int owner_dev;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Write int j = @base + j over [a, a + n pages) (the hmm-tests pattern). */
static void fill_ints(struct hmmu_mm *mm, unsigned long a, unsigned long n, int base)
{
	size_t nr = n * PAGE / sizeof(int);
	int *buf = malloc(n * PAGE);

	assert_non_null(buf);
	for (size_t j = 0; j < nr; j++)
		buf[j] = base + (int)j;
	put_bytes(mm, a, buf, n * PAGE);
	free(buf);
}

static void check_ints(struct hmmu_mm *mm, unsigned long a, unsigned long n, int base)
{
	size_t nr = n * PAGE / sizeof(int);
	int *buf = malloc(n * PAGE);

	assert_non_null(buf);
	get_bytes(mm, a, buf, n * PAGE);
	for (size_t j = 0; j < nr; j++)
		assert_int_equal(buf[j], base + (int)j);
	free(buf);
}

/* The driver's call: convert [a, a + n pages) under the mmap_lock (read). */
static long make_excl(struct hmmu_mm *mm, unsigned long a, unsigned long n, struct hmmu_page **pages)
{
	long ret;

	hmmu_mmap_read_lock(mm);
	ret = hmmu_make_device_exclusive_range(mm, a, a + n * PAGE, pages, &owner_dev);
	hmmu_mmap_read_unlock(mm);
	return ret;
}

/* The driver's second step: unlock and put every page it got. */
static void release_pages(struct hmmu_page **pages, long n)
{
	for (long i = 0; i < n; i++) {
		if (!pages[i])
			continue;
		hmmu_unlock_page(pages[i]);
		hmmu_put_page(pages[i]);
	}
}

/* Convert n pages, all of which must come back, and release them. */
static void make_excl_all(struct hmmu_mm *mm, unsigned long a, unsigned long n)
{
	struct hmmu_page *pages[64];

	assert_true(n <= 64);
	assert_int_equal(make_excl(mm, a, n, pages), (long)n);
	for (unsigned long i = 0; i < n; i++)
		assert_non_null(pages[i]);
	release_pages(pages, (long)n);
}

static struct hmmu_swp_entry swp_at(struct hmmu_mm *mm, unsigned long addr)
{
	hmmu_pte_t e = hmmu_test_leaf(mm, addr, NULL);

	assert_false(hmmu_pte_present(e) || hmmu_pte_none(e));
	return hmmu_pte_to_swp_entry(e);
}

static void expect_excl(struct hmmu_mm *mm, unsigned long addr, enum hmmu_swp_type type, struct hmmu_page *page)
{
	struct hmmu_swp_entry se = swp_at(mm, addr);

	assert_int_equal(se.type, type);
	assert_int_equal(se.pfn, hmmu_page_to_pfn(page));
}

/* A present PTE at @addr mapping @page. */
static hmmu_pte_t expect_present(struct hmmu_mm *mm, unsigned long addr, struct hmmu_page *page)
{
	hmmu_pte_t e = hmmu_test_leaf(mm, addr, NULL);

	assert_true(hmmu_pte_present(e));
	assert_int_equal(hmmu_pte_pfn(e), hmmu_page_to_pfn(page));
	return e;
}

/*
 * Recording subscribers (notifier_rec.h): interval subscriptions over the
 * whole address space, one logged event per invalidation.  Static, so that
 * a test failing before it removes one leaves the teardown valid memory.
 * (Interval, not classic: the secondary-TLB hook that classic subscribers
 * get under page-table locks takes an RCU read section, which TSan's
 * rwlock stand-in for RCU would pair with the reverse-map walk's.)
 */
static struct nr_isub recs[3];

/* Record @mm's invalidations as subscriber @id (1 or 2; 1 resets the log). */
static void rec_start(struct hmmu_mm *mm, int id)
{
	if (id == 1)
		nr_reset();
	nr_isub_insert(&recs[id], id, mm, HMMU_MMAP_MIN_ADDR, HMMU_TASK_SIZE - HMMU_MMAP_MIN_ADDR);
}

static void rec_stop(struct hmmu_mm *mm, int id)
{
	hmmu_interval_notifier_remove(&recs[id].in);
}

/* Event @i is from @id over [start, end) for @event with @owner. */
static void expect_ev(int i, int id, unsigned long start, unsigned long end, enum hmmu_notifier_event event,
		      void *owner)
{
	struct nr_event e;

	nr_expect(i, NR_INTERVAL, id, start, end);
	e = nr_get(i);
	if (e.event != event || e.owner != owner) {
		print_error("event %d: want event %d owner %p, got %d %p\n", i, event, owner, e.event, e.owner);
		nr_dump();
		fail();
	}
}

/* Invalidations for @event from @id with @owner. */
static int nr_starts(int id, enum hmmu_notifier_event event, void *owner)
{
	int n = 0;

	for (int i = 0; i < nr_count(); i++) {
		struct nr_event e = nr_get(i);

		n += e.kind == NR_INTERVAL && e.id == id && e.event == event && e.owner == owner;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Conversion                                                          */
/* ------------------------------------------------------------------ */

/*
 * A written range: n pages back, locked and referenced (the entry's and
 * the caller's reference), write-variant entries with no mapcount, dirty
 * moved to the page, one EXCLUSIVE invalidation with the owner per page.
 */
static void test_exclusive_convert(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);
	struct hmmu_page *before[8], *pages[8];
	struct hmmu_mm_stats st;

	fill_ints(mm, a, 8, 100);
	for (int i = 0; i < 8; i++) {
		before[i] = nr_page_at(mm, a + i * PAGE);
		assert_false(hmmu_page_test_flag(before[i], HMMU_PG_dirty));
	}
	rec_start(mm, 1);
	assert_int_equal(make_excl(mm, a, 8, pages), 8);
	for (int i = 0; i < 8; i++) {
		unsigned long at = a + i * PAGE;

		assert_ptr_equal(pages[i], before[i]);
		assert_true(hmmu_page_locked(pages[i]));
		assert_int_equal(hmmu_page_ref_count(pages[i]), 2);
		assert_int_equal(hmmu_page_mapcount(pages[i]), 0);
		assert_true(hmmu_page_test_flag(pages[i], HMMU_PG_dirty));
		expect_excl(mm, at, EXCL_W, pages[i]);
		expect_ev(i, 1, at, at + PAGE, HMMU_NOTIFY_EXCLUSIVE, &owner_dev);
	}
	nr_expect_count(8);
	st = stats(mm);
	assert_int_equal(st.nonpresent_entries, 8);
	assert_int_equal(st.present_pages, 0);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	release_pages(pages, 8);
	for (int i = 0; i < 8; i++) {
		assert_false(hmmu_page_locked(before[i]));
		assert_int_equal(hmmu_page_ref_count(before[i]), 1);	/* the entry keeps one */
	}
	rec_stop(mm, 1);
	check_ints(mm, a, 8, 100);
}

/*
 * Empty entries, the zero page and a page shared copy-on-write with a
 * child are faulted in for write first: each page converted is a private
 * page of this mm; the child keeps the original page, mapped and intact.
 */
static void test_exclusive_faults_in_first(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *child;
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	struct hmmu_page *pages[4], *shared;

	(void)get_byte(mm, a + PAGE);			/* page 1: the zero page */
	fill_ints(mm, a + 2 * PAGE, 2, 7);		/* pages 2, 3 */
	child = hmmu_test_fork(mm);				/* page 2 becomes shared */
	put_byte(mm, a + 3 * PAGE, get_byte(mm, a + 3 * PAGE));	/* page 3: private again (copied) */
	shared = nr_page_at(mm, a + 2 * PAGE);
	assert_true(hmmu_is_zero_pfn(hmmu_pte_pfn(nr_leaf(mm, a + PAGE))));
	assert_int_equal(make_excl(mm, a, 4, pages), 4);
	for (int i = 0; i < 4; i++) {
		assert_non_null(pages[i]);
		assert_false(hmmu_is_zero_pfn(hmmu_page_to_pfn(pages[i])));
		assert_int_equal(hmmu_page_mapcount(pages[i]), 0);
		expect_excl(mm, a + i * PAGE, EXCL_W, pages[i]);
	}
	assert_ptr_not_equal(pages[2], shared);		/* copy-on-write broken first */
	expect_present(child, a + 2 * PAGE, shared);
	assert_int_equal(hmmu_page_mapcount(shared), 1);
	release_pages(pages, 4);
	assert_int_equal(get_byte(mm, a), 0);
	assert_int_equal(get_byte(mm, a + PAGE), 0);
	check_ints(mm, a + 2 * PAGE, 2, 7);
	check_ints(child, a + 2 * PAGE, 2, 7);
	hmmu_test_fork_done(child);
}

/* Map 4 MiB, advise its 2 MiB-aligned window MADV_HUGEPAGE, fault a THP in; returns the window. */
static unsigned long map_thp(struct hmmu_mm *mm)
{
	unsigned long a = hmmu_test_map(mm, 2 * HMMU_PMD_SIZE, RW);
	unsigned long h = HMMU_ALIGN_UP(a, HMMU_PMD_SIZE);
	bool huge = false;

	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
	put_byte(mm, h, 1);
	assert_true(hmmu_pte_present(hmmu_test_leaf(mm, h, &huge)));
	assert_true(huge);
	return h;
}

/*
 * A transparent huge page is split at PMD level first (a CLEAR of its
 * 2 MiB); it stays one folio, so as in 6.1 its tail pages come back NULL
 * and the head page's conversion turns all 512 PTEs into exclusive
 * entries (one EXCLUSIVE invalidation over the folio).  A range starting
 * at a tail converts nothing.
 */
static void test_exclusive_thp(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_thp(mm);
	static struct hmmu_page *pages[NPMD];
	struct hmmu_page *head = nr_page_at(mm, h);
	bool huge = true;

	fill_ints(mm, h, NPMD, 3);
	rec_start(mm, 1);
	assert_int_equal(make_excl(mm, h, NPMD, pages), (long)NPMD);
	assert_false(hmmu_pte_present(hmmu_test_leaf(mm, h, &huge)));
	assert_false(huge);
	assert_ptr_equal(pages[0], head);
	assert_true(hmmu_page_locked(head));
	for (unsigned long i = 1; i < NPMD; i++)
		assert_null(pages[i]);
	for (unsigned long i = 0; i < NPMD; i++) {
		expect_excl(mm, h + i * PAGE, EXCL_W, head + i);
		assert_int_equal(hmmu_page_mapcount(head + i), 0);
	}
	assert_int_equal(hmmu_page_ref_count(head), NPMD + 1);
	expect_ev(0, 1, h, h + HMMU_PMD_SIZE, HMMU_NOTIFY_CLEAR, NULL);
	expect_ev(1, 1, h, h + HMMU_PMD_SIZE, HMMU_NOTIFY_EXCLUSIVE, &owner_dev);
	nr_expect_count(2);
	release_pages(pages, NPMD);
	/* Every page restores, with one revocation each. */
	for (unsigned long half = 0; half < NPMD; half += NPMD / 2) {
		nr_reset();
		check_ints(mm, h + half * PAGE, NPMD / 2, 3 + (int)(half * PAGE / sizeof(int)));
		assert_int_equal(nr_starts(1, HMMU_NOTIFY_EXCLUSIVE, NULL), (int)NPMD / 2);
	}
	nr_reset();
	/* Starting at a tail page: nothing converted, no invalidation, the GUP references gone. */
	assert_int_equal(make_excl(mm, h + PAGE, 2, pages), 2);
	nr_expect_count(0);
	assert_null(pages[0]);
	assert_null(pages[1]);
	expect_present(mm, h + PAGE, head + 1);
	assert_int_equal(hmmu_page_ref_count(head), NPMD);
	rec_stop(mm, 1);
}

/* Errors: GUP's for the first page, argument checks; a later failure ends the range early. */
static void test_exclusive_errors(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long ro = hmmu_test_map(mm, 2 * PAGE, PROT_READ);
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	struct hmmu_page *pages[4] = { NULL };

	rec_start(mm, 1);
	assert_int_equal(make_excl(mm, ro, 2, pages), -EFAULT);	/* GUP for write: not writable */
	assert_int_equal(hmmu_mprotect(mm, a + 2 * PAGE, 2 * PAGE, PROT_READ), 0);
	nr_reset();
	assert_int_equal(make_excl(mm, a, 4, pages), 2);
	assert_non_null(pages[0]);
	assert_non_null(pages[1]);
	release_pages(pages, 2);
	assert_int_equal(nr_starts(1, HMMU_NOTIFY_EXCLUSIVE, &owner_dev), 2);
	assert_int_equal(hmmu_munmap(mm, a, PAGE), 0);
	assert_int_equal(make_excl(mm, a, 1, pages), -EFAULT);	/* no VMA */
	hmmu_mmap_read_lock(mm);
	assert_int_equal(hmmu_make_device_exclusive_range(NULL, a, a + PAGE, pages, NULL), -EINVAL);
	assert_int_equal(hmmu_make_device_exclusive_range(mm, a, a + PAGE, NULL, NULL), -EINVAL);
	assert_int_equal(hmmu_make_device_exclusive_range(mm, a + 1, a + PAGE, pages, NULL), -EINVAL);
	assert_int_equal(hmmu_make_device_exclusive_range(mm, a, a + 5, pages, NULL), -EINVAL);
	assert_int_equal(hmmu_make_device_exclusive_range(mm, a, a, pages, NULL), -EINVAL);
	assert_int_equal(hmmu_make_device_exclusive_range(mm, a, HMMU_TASK_SIZE + PAGE, pages, NULL), -EINVAL);
	hmmu_mmap_read_unlock(mm);
	rec_stop(mm, 1);
}

/* A page whose lock is busy is not converted: NULL, its entry untouched, no invalidation. */
static void test_exclusive_locked_page(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_page *pages[2], *busy;
	hmmu_pte_t e;

	fill_ints(mm, a, 2, 5);
	busy = nr_page_at(mm, a + PAGE);
	e = nr_leaf(mm, a + PAGE);
	hmmu_lock_page(busy);
	rec_start(mm, 1);
	assert_int_equal(make_excl(mm, a, 2, pages), 2);
	assert_non_null(pages[0]);
	assert_null(pages[1]);
	assert_int_equal(nr_leaf(mm, a + PAGE), e);
	assert_int_equal(hmmu_page_ref_count(busy), 1);
	assert_int_equal(hmmu_page_mapcount(busy), 1);
	assert_int_equal(nr_starts(1, HMMU_NOTIFY_EXCLUSIVE, &owner_dev), 1);
	hmmu_unlock_page(busy);
	release_pages(pages, 2);
	rec_stop(mm, 1);
	check_ints(mm, a, 2, 5);
}

/* The conversion step alone, for a page the caller locked and referenced. */
static bool convert_page(struct hmmu_mm *mm, unsigned long addr, struct hmmu_page *page)
{
	bool ok;

	hmmu_mmap_read_lock(mm);
	ok = hmmu_page_make_device_exclusive(page, mm, addr, &owner_dev);
	hmmu_mmap_read_unlock(mm);
	return ok;
}

/*
 * A page mapped in two mms after fork (read-only on both sides; GUP would
 * have copied it, so the conversion step is called directly): every
 * mapping found is converted (read variants, each mm notified with the
 * owner), but the expected one was not writable: not converted.  Both
 * mappings then restore on access with the data intact, and copy-on-write
 * still separates the two.
 */
static void test_exclusive_shared_page(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *child;
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct hmmu_page *page;

	fill_ints(mm, a, 1, 40);
	child = hmmu_test_fork(mm);
	page = nr_page_at(mm, a);
	rec_start(mm, 1);
	rec_start(child, 2);
	hmmu_get_page(page);
	hmmu_lock_page(page);
	assert_false(convert_page(mm, a, page));
	expect_excl(mm, a, EXCL_R, page);
	expect_excl(child, a, EXCL_R, page);
	assert_int_equal(hmmu_page_mapcount(page), 0);
	assert_int_equal(hmmu_page_ref_count(page), 3);
	assert_int_equal(nr_starts(1, HMMU_NOTIFY_EXCLUSIVE, &owner_dev), 1);
	assert_int_equal(nr_starts(2, HMMU_NOTIFY_EXCLUSIVE, &owner_dev), 1);
	hmmu_unlock_page(page);
	hmmu_put_page(page);
	check_ints(mm, a, 1, 40);
	check_ints(child, a, 1, 40);
	assert_int_equal(hmmu_page_mapcount(page), 2);
	put_byte(mm, a, 0xee);				/* copy-on-write */
	check_ints(child, a, 1, 40);
	rec_stop(child, 2);
	rec_stop(mm, 1);
	hmmu_test_fork_done(child);
}

/*
 * The expected mapping seen writable is not enough: no mapping may be
 * left.  A page shared by the parent and two children; the first child's
 * mapping is already exclusive (made by hand), so the reverse-map walk
 * (parent, child 1, child 2: list order) stops there and child 2's mapping
 * stays, present and intact.  The parent's mapping is made writable by
 * hand (copy-on-write never leaves it so) so that only that rule fails.
 */
static void test_exclusive_mapped_elsewhere(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *c1, *c2;
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct hmmu_page *page;
	hmmu_pte_t ce;

	fill_ints(mm, a, 1, 50);
	c1 = hmmu_test_fork(mm);
	c2 = hmmu_test_fork(mm);
	page = nr_page_at(mm, a);
	ce = nr_leaf(c2, a);
	hmmu_test_swap_pte(c1, a, hmmu_swp_entry_to_pte(hmmu_make_swp_entry(EXCL_R, hmmu_page_to_pfn(page))));
	hmmu_page_remove_rmap(page, false);		/* the entry keeps its reference only */
	hmmu_test_swap_pte(mm, a, nr_leaf(mm, a) | HMMU_PTE_WRITE);
	hmmu_get_page(page);
	hmmu_lock_page(page);
	assert_false(convert_page(mm, a, page));
	expect_excl(mm, a, EXCL_W, page);
	expect_excl(c1, a, EXCL_R, page);
	assert_int_equal(nr_leaf(c2, a), ce);
	assert_int_equal(hmmu_page_mapcount(page), 1);
	hmmu_unlock_page(page);
	hmmu_put_page(page);
	/* The forced write access must not be used: unmap it (its kept reference goes). */
	assert_int_equal(hmmu_munmap(mm, a, PAGE), 0);
	assert_int_equal(hmmu_page_ref_count(page), 2);
	check_ints(c1, a, 1, 50);
	check_ints(c2, a, 1, 50);
	hmmu_test_fork_done(c1);
	hmmu_test_fork_done(c2);
}

/*
 * Converting a range that is already exclusive: GUP restores each entry
 * first (EXCLUSIVE, owner NULL), then it is converted again (owner set).
 */
static void test_exclusive_twice(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_page *pages[2];

	fill_ints(mm, a, 2, 60);
	make_excl_all(mm, a, 2);
	rec_start(mm, 1);
	assert_int_equal(make_excl(mm, a, 2, pages), 2);
	expect_ev(0, 1, a, a + PAGE, HMMU_NOTIFY_EXCLUSIVE, NULL);
	expect_ev(1, 1, a + PAGE, a + 2 * PAGE, HMMU_NOTIFY_EXCLUSIVE, NULL);
	expect_ev(2, 1, a, a + PAGE, HMMU_NOTIFY_EXCLUSIVE, &owner_dev);
	expect_ev(3, 1, a + PAGE, a + 2 * PAGE, HMMU_NOTIFY_EXCLUSIVE, &owner_dev);
	nr_expect_count(4);
	expect_excl(mm, a, EXCL_W, pages[0]);
	assert_int_equal(hmmu_page_ref_count(pages[0]), 2);
	release_pages(pages, 2);
	rec_stop(mm, 1);
	check_ints(mm, a, 2, 60);
}

/* ------------------------------------------------------------------ */
/* Restore on CPU access                                               */
/* ------------------------------------------------------------------ */

/*
 * A CPU read restores the write variant: the same frame, present, dirty
 * and writable, old; the mapcount back, the kept reference reused; one
 * EXCLUSIVE invalidation with owner NULL over the page.
 */
static void test_exclusive_cpu_read(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_page *page;
	hmmu_pte_t e;

	fill_ints(mm, a, 2, 70);
	page = nr_page_at(mm, a);
	make_excl_all(mm, a, 2);
	rec_start(mm, 1);
	assert_int_equal(fault_at(mm, a + 5, 0), 0);
	e = expect_present(mm, a, page);
	assert_true(hmmu_pte_write(e) && hmmu_pte_dirty(e));
	assert_false(hmmu_pte_young(e));
	assert_int_equal(hmmu_page_mapcount(page), 1);
	assert_int_equal(hmmu_page_ref_count(page), 1);
	assert_false(hmmu_page_locked(page));
	expect_ev(0, 1, a, a + PAGE, HMMU_NOTIFY_EXCLUSIVE, NULL);
	nr_expect_count(1);
	assert_false(hmmu_pte_present(nr_leaf(mm, a + PAGE)));	/* only the page touched */
	check_ints(mm, a, 2, 70);
	nr_expect_count(2);
	assert_int_equal(stats(mm).nonpresent_entries, 0);
	rec_stop(mm, 1);
}

/* A CPU write restores and lands in the same page: no copy. */
static void test_exclusive_cpu_write(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	unsigned long cow;
	struct hmmu_page *page;
	int v = -1, w;

	fill_ints(mm, a, 1, 80);
	page = nr_page_at(mm, a);
	make_excl_all(mm, a, 1);
	cow = stats(mm).cow_faults;
	put_bytes(mm, a + 8, &v, sizeof(v));
	expect_present(mm, a, page);
	assert_int_equal(stats(mm).cow_faults, cow);
	get_bytes(mm, a + 8, &w, sizeof(w));
	assert_int_equal(w, -1);
	get_bytes(mm, a + 12, &w, sizeof(w));
	assert_int_equal(w, 80 + 3);
}

struct reader {
	struct hmmu_mm *mm;
	unsigned long addr;
	int value, ret;
	atomic_bool done;
};

/* No cmocka assertion off the main thread: results go back through @arg. */
static void *reader_thread(void *arg)
{
	struct reader *r = arg;

	r->ret = hmmu_access(r->mm, r->addr, &r->value, sizeof(r->value), HMMU_ACCESS_READ);
	atomic_store(&r->done, true);
	return NULL;
}

/*
 * While the driver still holds the page lock (between the conversion and
 * its unlock), a CPU access sleeps on it and restores once it is released.
 */
static void test_exclusive_restore_waits(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct reader r = { .mm = mm, .addr = a + 40 };
	struct hmmu_page *pages[1];
	pthread_t t;

	fill_ints(mm, a, 1, 90);
	atomic_init(&r.done, false);
	assert_int_equal(make_excl(mm, a, 1, pages), 1);
	assert_int_equal(pthread_create(&t, NULL, reader_thread, &r), 0);
	assert_true(wait_for_flag(pages[0], HMMU_PG_waiters));	/* asleep on the page lock */
	assert_false(atomic_load(&r.done));
	expect_excl(mm, a, EXCL_W, pages[0]);
	release_pages(pages, 1);
	assert_true(join_within(t, WAIT_LIMIT_MS));
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.value, 90 + 10);
	expect_present(mm, a, nr_page_at(mm, a));
}

/* GUP faults and so restores; hmm_range_fault restores only with a fault request. */
static void test_exclusive_gup_restores(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct hmmu_page *page, *got;

	fill_ints(mm, a, 1, 11);
	page = nr_page_at(mm, a);
	make_excl_all(mm, a, 1);
	assert_int_equal(gup(mm, a, 1, 0, &got), 1);
	assert_ptr_equal(got, page);
	expect_present(mm, a, page);
	assert_int_equal(hmmu_page_ref_count(page), 2);
	hmmu_put_page(got);
}

/* hmm_range_fault over [a, a + n pages) with @flags, retried until it settles. */
static int range_fault(struct nr_isub *s, unsigned long a, unsigned long n, unsigned long flags,
		       unsigned long *pfns)
{
	struct hmmu_range range = {
		.notifier = &s->in, .start = a, .end = a + n * PAGE, .hmm_pfns = pfns, .default_flags = flags,
	};
	int ret;

	for (int tries = 0; tries < 100; tries++) {
		range.notifier_seq = hmmu_interval_read_begin(&s->in);
		hmmu_mmap_read_lock(s->in.mm);
		ret = hmmu_range_fault(&range);
		hmmu_mmap_read_unlock(s->in.mm);
		if (ret != -EBUSY)
			return ret;
	}
	return ret;
}

static void test_exclusive_range_fault(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW), pfns[4];
	struct nr_isub s;

	fill_ints(mm, a, 4, 12);
	nr_reset();
	nr_isub_insert(&s, 1, mm, a, 4 * PAGE);
	make_excl_all(mm, a, 4);
	assert_int_equal(nr_count(), 4);		/* the mirror saw the conversion... */
	assert_ptr_equal(nr_get(0).owner, &owner_dev);	/* ...and whose it was */
	assert_int_equal(nr_get(0).event, HMMU_NOTIFY_EXCLUSIVE);
	assert_int_equal(range_fault(&s, a, 4, 0, pfns), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pfns[i], 0);		/* not present, not requested */
	assert_int_equal(stats(mm).nonpresent_entries, 4);
	assert_int_equal(range_fault(&s, a, 4, HMMU_PFN_REQ_FAULT, pfns), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pfns[i] & (HMMU_PFN_VALID | HMMU_PFN_WRITE), HMMU_PFN_VALID | HMMU_PFN_WRITE);
		expect_present(mm, a + i * PAGE, hmmu_hmm_pfn_to_page(pfns[i]));
	}
	assert_int_equal(nr_count(), 8);		/* one revocation per page */
	assert_null(nr_get(4).owner);
	assert_int_equal(nr_get(4).event, HMMU_NOTIFY_EXCLUSIVE);
	hmmu_interval_notifier_remove(&s.in);
	check_ints(mm, a, 4, 12);
}

/* ------------------------------------------------------------------ */
/* munmap, MADV_DONTNEED, teardown                                     */
/* ------------------------------------------------------------------ */

/* Unmapping an exclusive entry drops the reference it kept: the page is freed. */
static void test_exclusive_unmap_frees(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *other;
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW), b;
	long free0;

	fill_ints(mm, a, 8, 13);
	make_excl_all(mm, a, 8);
	free0 = nr_free();
	assert_int_equal(hmmu_munmap(mm, a, 4 * PAGE), 0);
	assert_int_equal(nr_free(), free0 + 4);
	rec_start(mm, 1);
	assert_int_equal(hmmu_madvise(mm, a + 4 * PAGE, 4 * PAGE, MADV_DONTNEED), 0);
	assert_int_equal(nr_free(), free0 + 8);
	expect_ev(0, 1, a + 4 * PAGE, a + 8 * PAGE, HMMU_NOTIFY_CLEAR, NULL);
	assert_int_equal(stats(mm).nonpresent_entries, 0);
	assert_int_equal(get_byte(mm, a + 4 * PAGE), 0);	/* refaults a fresh zero page */
	rec_stop(mm, 1);
	/* Teardown of a whole mm. */
	free0 = nr_free();
	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &other), 0);
	b = hmmu_test_map(other, 4 * PAGE, RW);
	fill_ints(other, b, 4, 14);
	make_excl_all(other, b, 4);
	assert_int_equal(nr_free(), free0 - 4);
	assert_int_equal(hmmu_pt_validate(other), 0);
	hmmu_mmput(other);
	assert_int_equal(nr_free(), free0);
}

/*
 * Device-private entries through the same paths (spec 4.4): mremap moves
 * them with their reference and mapcount, munmap and MADV_DONTNEED drop
 * both (page_free runs), teardown too; a CPU read at the new address
 * migrates back.
 */
static void test_device_private_unmap_paths(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *other;
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 8, &owner_dev);
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW), to = a + (1UL << 30), b;
	struct hmmu_page *dpage[4];

	fill_ints(mm, a, 4, 20);
	for (int i = 0; i < 4; i++)
		dpage[i] = hmmu_test_dev_to_device(dev, mm, a + i * PAGE);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to), (long)to);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(swp_at(mm, to + i * PAGE).pfn, hmmu_page_to_pfn(dpage[i]));
		assert_int_equal(hmmu_page_ref_count(dpage[i]), 1);
		assert_int_equal(hmmu_page_mapcount(dpage[i]), 1);
	}
	assert_int_equal(hmmu_munmap(mm, to, PAGE), 0);
	assert_int_equal(atomic_load(&dev->page_frees), 1);
	rec_start(mm, 1);
	assert_int_equal(hmmu_madvise(mm, to + PAGE, PAGE, MADV_DONTNEED), 0);
	assert_int_equal(atomic_load(&dev->page_frees), 2);
	expect_ev(0, 1, to + PAGE, to + 2 * PAGE, HMMU_NOTIFY_CLEAR, NULL);
	rec_stop(mm, 1);
	check_ints(mm, to + 2 * PAGE, 2, 20 + 2 * (int)(PAGE / sizeof(int)));
	assert_int_equal(atomic_load(&dev->migrate_calls), 2);
	assert_int_equal(atomic_load(&dev->page_frees), 4);
	/* Teardown of a whole mm. */
	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &other), 0);
	b = hmmu_test_map(other, 2 * PAGE, RW);
	fill_ints(other, b, 2, 21);
	hmmu_test_dev_to_device(dev, other, b);
	hmmu_test_dev_to_device(dev, other, b + PAGE);
	assert_int_equal(hmmu_pt_validate(other), 0);
	hmmu_mmput(other);
	assert_int_equal(atomic_load(&dev->page_frees), 6);
	assert_int_equal(atomic_load(&dev->migrate_calls), 2);
}

/* ------------------------------------------------------------------ */
/* mprotect                                                            */
/* ------------------------------------------------------------------ */

/*
 * mprotect(READ) downgrades the write variant; a write is then refused
 * like any write to a read-only VMA, a read restores a read-only, clean
 * entry.  mprotect(RW) does not upgrade a read variant: a write restores
 * it read-only, then takes the exclusive page over (no copy).
 */
static void test_exclusive_mprotect(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW), cow;
	struct hmmu_page *p0, *p1;
	hmmu_pte_t e;
	int v = 7;

	fill_ints(mm, a, 2, 15);
	p0 = nr_page_at(mm, a);
	p1 = nr_page_at(mm, a + PAGE);
	make_excl_all(mm, a, 2);
	assert_int_equal(hmmu_mprotect(mm, a, 2 * PAGE, PROT_READ), 0);
	expect_excl(mm, a, EXCL_R, p0);
	expect_excl(mm, a + PAGE, EXCL_R, p1);
	assert_int_equal(hmmu_access(mm, a, &v, sizeof(v), HMMU_ACCESS_WRITE), -EFAULT);
	assert_int_equal(fault_at(mm, a, HMMU_FAULT_FLAG_WRITE), HMMU_VM_FAULT_SIGSEGV);
	expect_excl(mm, a, EXCL_R, p0);
	assert_int_equal(fault_at(mm, a, 0), 0);
	e = expect_present(mm, a, p0);
	assert_false(hmmu_pte_write(e) || hmmu_pte_dirty(e) || hmmu_pte_young(e));
	check_ints(mm, a, 1, 15);
	assert_int_equal(hmmu_mprotect(mm, a, 2 * PAGE, RW), 0);
	expect_excl(mm, a + PAGE, EXCL_R, p1);		/* not upgraded */
	cow = stats(mm).cow_faults;
	put_bytes(mm, a + PAGE, &v, sizeof(v));
	expect_present(mm, a + PAGE, p1);
	assert_true(hmmu_pte_write(nr_leaf(mm, a + PAGE)));
	assert_int_equal(stats(mm).cow_faults, cow);
}

/* Replace the present PTE at @addr by a migration write entry, as a migration would. */
static struct hmmu_page *make_migration_entry(struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_pt *pt;
	bool huge = false;
	hmmu_pte_t *ep, e;
	struct hmmu_page *page;

	hmmu_mmap_read_lock(mm);
	ep = hmmu_leaf_lookup_lock(mm, addr, &pt, &huge);
	assert_true(ep && !huge);
	e = hmmu_pte_read(ep);
	page = hmmu_pfn_to_page(hmmu_pte_pfn(e));
	assert_true(hmmu_trylock_page(page));
	hmmu_pte_set(pt, ep, hmmu_swp_entry_to_pte(hmmu_make_swp_entry(HMMU_SWP_MIGRATION_WRITE, hmmu_pte_pfn(e))));
	hmmu_page_remove_rmap(page, false);
	hmmu_pt_unlock(pt);
	hmmu_mmap_read_unlock(mm);
	return page;	/* locked; the entry's former reference is the caller's now */
}

/* Undo make_migration_entry(): present again, read-only, with a mapcount. */
static void undo_migration_entry(struct hmmu_mm *mm, unsigned long addr, struct hmmu_page *page)
{
	struct hmmu_pt *pt;
	bool huge = false;
	hmmu_pte_t *ep;

	hmmu_mmap_read_lock(mm);
	ep = hmmu_leaf_lookup_lock(mm, addr, &pt, &huge);
	assert_true(ep && !huge);
	atomic_fetch_add(&page->_mapcount, 1);
	hmmu_pte_set(pt, ep, hmmu_pfn_pte(hmmu_page_to_pfn(page), 0));
	hmmu_pt_unlock(pt);
	hmmu_mmap_read_unlock(mm);
	hmmu_unlock_page(page);
}

/*
 * Linux 6.1: a protection change downgrades every write device-private,
 * device-exclusive and migration entry, even when the new protection
 * keeps (or adds) write; a later mprotect(RW) does not upgrade them.
 */
static void test_mprotect_downgrades_unconditionally(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_dev);
	unsigned long a = hmmu_test_map(mm, 3 * PAGE, RW);
	struct hmmu_page *dpage, *mig, *excl;

	fill_ints(mm, a, 3, 16);
	excl = nr_page_at(mm, a + PAGE);
	make_excl_all(mm, a + PAGE, 1);
	dpage = hmmu_test_dev_to_device(dev, mm, a);
	mig = make_migration_entry(mm, a + 2 * PAGE);
	assert_int_equal(swp_at(mm, a).type, HMMU_SWP_DEVICE_PRIVATE_WRITE);
	assert_int_equal(hmmu_mprotect(mm, a, 3 * PAGE, RWX), 0);	/* write stays */
	assert_true(vma_flags(mm, a) & HMMU_VM_WRITE);
	assert_int_equal(swp_at(mm, a).type, HMMU_SWP_DEVICE_PRIVATE_READ);
	assert_int_equal(swp_at(mm, a).pfn, hmmu_page_to_pfn(dpage));
	expect_excl(mm, a + PAGE, EXCL_R, excl);
	assert_int_equal(swp_at(mm, a + 2 * PAGE).type, HMMU_SWP_MIGRATION_READ_EXCLUSIVE);
	assert_int_equal(hmmu_mprotect(mm, a, 3 * PAGE, PROT_READ), 0);
	assert_int_equal(hmmu_mprotect(mm, a, 3 * PAGE, RW), 0);	/* write added */
	assert_int_equal(swp_at(mm, a).type, HMMU_SWP_DEVICE_PRIVATE_READ);
	expect_excl(mm, a + PAGE, EXCL_R, excl);
	assert_int_equal(swp_at(mm, a + 2 * PAGE).type, HMMU_SWP_MIGRATION_READ_EXCLUSIVE);
	assert_int_equal(hmmu_page_ref_count(dpage), 1);
	assert_int_equal(hmmu_page_mapcount(dpage), 1);
	undo_migration_entry(mm, a + 2 * PAGE, mig);
	check_ints(mm, a, 3, 16);			/* device page migrated back, entries restored */
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
}

/* ------------------------------------------------------------------ */
/* fork, mremap                                                        */
/* ------------------------------------------------------------------ */

/*
 * fork restores the parent's exclusive entries (no EXCLUSIVE invalidation
 * of its own: fork's PROTECTION_PAGE covers the VMA), then shares the
 * pages copy-on-write; both sides see the data, writes separate them.
 */
static void test_fork_exclusive(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *child;
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	struct hmmu_page *page[4];
	hmmu_pte_t pe;
	int v = -5;

	fill_ints(mm, a, 4, 17);
	for (int i = 0; i < 4; i++)
		page[i] = nr_page_at(mm, a + i * PAGE);
	make_excl_all(mm, a, 4);
	rec_start(mm, 1);
	child = hmmu_test_fork(mm);
	expect_ev(0, 1, a, a + 4 * PAGE, HMMU_NOTIFY_PROTECTION_PAGE, NULL);
	nr_expect_count(1);
	for (int i = 0; i < 4; i++) {
		pe = expect_present(mm, a + i * PAGE, page[i]);
		assert_false(hmmu_pte_write(pe));
		assert_true(hmmu_pte_dirty(pe));
		assert_false(hmmu_pte_write(expect_present(child, a + i * PAGE, page[i])));
		assert_int_equal(hmmu_page_mapcount(page[i]), 2);
		assert_int_equal(hmmu_page_ref_count(page[i]), 2);
		assert_false(hmmu_page_locked(page[i]));
	}
	check_ints(child, a, 4, 17);
	put_bytes(mm, a, &v, sizeof(v));
	check_ints(child, a, 4, 17);
	put_bytes(child, a + PAGE, &v, sizeof(v));
	check_ints(mm, a + PAGE, 3, 17 + (int)(PAGE / sizeof(int)));
	rec_stop(mm, 1);
	hmmu_test_fork_done(child);
}

/*
 * With a page lock busy the parent's entry cannot be restored: fork fails
 * with -ENOMEM, the pages restored before it stay consistent, nothing
 * leaks; once the driver unlocks, fork succeeds.
 */
static void test_fork_exclusive_busy(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *child = NULL;
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_page *pages[2];
	long free0;

	fill_ints(mm, a, 2, 18);
	assert_int_equal(make_excl(mm, a, 2, pages), 2);
	release_pages(pages, 1);			/* page 1 stays locked */
	free0 = nr_free();
	assert_int_equal(hmmu_fork(mm, &child), -ENOMEM);
	assert_null(child);
	assert_int_equal(nr_free(), free0);
	expect_present(mm, a, pages[0]);		/* restored before the failure */
	assert_int_equal(hmmu_page_mapcount(pages[0]), 1);
	assert_int_equal(hmmu_page_ref_count(pages[0]), 1);
	expect_excl(mm, a + PAGE, EXCL_W, pages[1]);
	assert_int_equal(hmmu_page_ref_count(pages[1]), 2);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	release_pages(pages + 1, 1);
	child = hmmu_test_fork(mm);
	check_ints(child, a, 2, 18);
	check_ints(mm, a, 2, 18);
	hmmu_test_fork_done(child);
}

/*
 * mremap carries exclusive entries (reference kept, no mapcount); they
 * restore at the new address, and convert again there (the reverse map
 * finds the page at its new place).
 */
static void test_mremap_exclusive(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW), to = a + (1UL << 30);
	struct hmmu_page *page[4], *pages[4];
	long free0;

	fill_ints(mm, a, 4, 19);
	for (int i = 0; i < 4; i++)
		page[i] = nr_page_at(mm, a + i * PAGE);
	make_excl_all(mm, a, 4);
	free0 = nr_free();
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to), (long)to);
	assert_int_equal(nr_free(), free0);
	for (int i = 0; i < 4; i++) {
		expect_excl(mm, to + i * PAGE, EXCL_W, page[i]);
		assert_int_equal(hmmu_page_ref_count(page[i]), 1);
		assert_int_equal(hmmu_page_mapcount(page[i]), 0);
	}
	assert_int_equal(hmmu_pt_validate(mm), 0);
	check_ints(mm, to, 2, 19);
	expect_present(mm, to, page[0]);
	assert_int_equal(make_excl(mm, to, 4, pages), 4);
	for (int i = 0; i < 4; i++)
		assert_ptr_equal(pages[i], page[i]);
	release_pages(pages, 4);
	check_ints(mm, to, 4, 19);
}

/* ------------------------------------------------------------------ */
/* Validator, concurrency                                              */
/* ------------------------------------------------------------------ */

/* hmmu_pt_validate() refuses typed entries that do not hold what spec 0.3 says. */
static void test_validate_typed_entries(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	unsigned long zero = hmmu_page_to_pfn(hmmu_zero_page()), pfn;
	hmmu_pte_t old;

	(void)get_byte(mm, a);				/* the zero page: not anonymous */
	old = hmmu_test_swap_pte(mm, a, hmmu_swp_entry_to_pte(hmmu_make_swp_entry(EXCL_R, zero)));
	assert_int_equal(hmmu_pt_validate(mm), -EUCLEAN);
	hmmu_test_swap_pte(mm, a, old);
	put_byte(mm, a + PAGE, 1);			/* a system page is no device page */
	pfn = hmmu_pte_pfn(nr_leaf(mm, a + PAGE));
	old = hmmu_test_swap_pte(mm, a + PAGE,
			 hmmu_swp_entry_to_pte(hmmu_make_swp_entry(HMMU_SWP_DEVICE_PRIVATE_WRITE, pfn)));
	assert_int_equal(hmmu_pt_validate(mm), -EUCLEAN);
	hmmu_test_swap_pte(mm, a + PAGE, old);
	make_excl_all(mm, a + PAGE, 1);
	assert_int_equal(hmmu_pt_validate(mm), 0);
}

#define RACE_ITERS 200
#define RACE_PAGES 4

struct race {
	struct hmmu_mm *mm;
	unsigned long a;
	atomic_int errors;		/* conversions that did not return RACE_PAGES */
};

/* No cmocka assertion off the main thread: failures are counted. */
static void *converter_thread(void *arg)
{
	struct race *r = arg;
	struct hmmu_page *pages[RACE_PAGES];

	for (int it = 0; it < RACE_ITERS; it++) {
		long n = make_excl(r->mm, r->a, RACE_PAGES, pages);

		if (n != RACE_PAGES) {
			atomic_fetch_add(&r->errors, 1);
			continue;
		}
		release_pages(pages, n);
	}
	return NULL;
}

/*
 * A device converting a range over and over while the CPU increments a
 * counter in each page: no write is lost, no page leaks, the tables stay
 * consistent.
 */
static void test_exclusive_race_cpu(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct race r = { .mm = mm, .a = hmmu_test_map(mm, RACE_PAGES * PAGE, RW) };
	pthread_t t;
	int v;

	atomic_init(&r.errors, 0);
	fill_ints(mm, r.a, RACE_PAGES, 0);
	assert_int_equal(pthread_create(&t, NULL, converter_thread, &r), 0);
	for (int it = 1; it <= RACE_ITERS; it++) {
		for (int i = 0; i < RACE_PAGES; i++) {
			unsigned long at = r.a + i * PAGE + 64;

			get_bytes(mm, at, &v, sizeof(v));
			v++;
			put_bytes(mm, at, &v, sizeof(v));
		}
	}
	assert_true(join_within(t, WAIT_LIMIT_MS));
	assert_int_equal(atomic_load(&r.errors), 0);
	for (int i = 0; i < RACE_PAGES; i++) {
		get_bytes(mm, r.a + i * PAGE + 64, &v, sizeof(v));
		assert_int_equal(v, i * (int)(PAGE / sizeof(int)) + 16 + RACE_ITERS);
	}
	assert_int_equal(hmmu_pt_validate(mm), 0);
	make_excl_all(mm, r.a, RACE_PAGES);		/* still convertible */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_exclusive_convert),
		HMMU_TEST(test_exclusive_faults_in_first),
		HMMU_TEST(test_exclusive_thp),
		HMMU_TEST(test_exclusive_errors),
		HMMU_TEST(test_exclusive_locked_page),
		HMMU_TEST(test_exclusive_shared_page),
		HMMU_TEST(test_exclusive_mapped_elsewhere),
		HMMU_TEST(test_exclusive_twice),
		HMMU_TEST(test_exclusive_cpu_read),
		HMMU_TEST(test_exclusive_cpu_write),
		HMMU_TEST(test_exclusive_restore_waits),
		HMMU_TEST(test_exclusive_gup_restores),
		HMMU_TEST(test_exclusive_range_fault),
		HMMU_TEST(test_exclusive_unmap_frees),
		HMMU_TEST(test_device_private_unmap_paths),
		HMMU_TEST(test_exclusive_mprotect),
		HMMU_TEST(test_mprotect_downgrades_unconditionally),
		HMMU_TEST(test_fork_exclusive),
		HMMU_TEST(test_fork_exclusive_busy),
		HMMU_TEST(test_mremap_exclusive),
		HMMU_TEST(test_validate_typed_entries),
		HMMU_TEST(test_exclusive_race_cpu),
	};

	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
