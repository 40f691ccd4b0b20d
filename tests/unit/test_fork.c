// SPDX-License-Identifier: MIT
/*
 * Unit tests of hmmu_fork(): copy-on-write sharing of private anonymous
 * memory, the zero page, pinned pages, transparent huge pages, typed
 * entries (migration, device-exclusive), MADV_DONTFORK, shared anonymous
 * memory, the PROTECTION_PAGE invalidation and teardown in either order.
 *
 * The child hmmu_fork() returns is not owned by the fixture: each test
 * validates it and drops it (child_done) before returning, so the fixture's
 * free-page check covers what the child held too.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notifier_rec.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define MiB (1UL << 20)
#define BLK HMMU_NOTIFIER_RANGE_BLOCKABLE

/* ------------------------------------------------------------------ */
/* The present leaf mapping @addr (must be a PTE, not huge). */
static hmmu_pte_t pte_at(struct hmmu_mm *mm, unsigned long addr)
{
	bool huge;
	hmmu_pte_t e = hmmu_test_leaf(mm, addr, &huge);

	assert_false(huge);
	return e;
}

static unsigned long pfn_at(struct hmmu_mm *mm, unsigned long addr)
{
	hmmu_pte_t e = pte_at(mm, addr);

	assert_true(hmmu_pte_present(e));
	return hmmu_pte_pfn(e);
}

static struct hmmu_page *page_at(struct hmmu_mm *mm, unsigned long addr)
{
	return hmmu_pfn_to_page(pfn_at(mm, addr));
}

/* Write byte @tag + i at the start of page i of [a, a + n pages). */
static void tag_pages(struct hmmu_mm *mm, unsigned long a, unsigned long n, unsigned char tag)
{
	for (unsigned long i = 0; i < n; i++)
		put_byte(mm, a + i * PAGE, (unsigned char)(tag + i));
}

static void check_tags(struct hmmu_mm *mm, unsigned long a, unsigned long n, unsigned char tag)
{
	for (unsigned long i = 0; i < n; i++)
		assert_int_equal(get_byte(mm, a + i * PAGE), (unsigned char)(tag + i));
}

/* Run @fn on the PTE mapping @addr under its lock (test-made entries). */
static void with_pte_locked(struct hmmu_mm *mm, unsigned long addr,
			    void (*fn)(struct hmmu_pt *pt, hmmu_pte_t *ep, void *arg), void *arg)
{
	struct hmmu_pt *pt;
	bool huge = false;
	hmmu_pte_t *ep;

	hmmu_mmap_read_lock(mm);
	ep = hmmu_leaf_lookup_lock(mm, addr, &pt, &huge);
	assert_non_null(ep);
	if (!huge)
		fn(pt, ep, arg);
	hmmu_pt_unlock(pt);
	hmmu_mmap_read_unlock(mm);
	assert_false(huge);
}

/* ------------------------------------------------------------------ */
/* Private anonymous memory                                            */
/* ------------------------------------------------------------------ */

/* Data written before fork is seen by both; writes after it stay private to the writer. */
static void test_fork_private_isolation(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	struct hmmu_mm *child;
	unsigned char buf[PAGE], want[PAGE];

	memset(want, 0x3c, sizeof(want));
	put_bytes(mm, a, want, PAGE);
	tag_pages(mm, a + PAGE, 3, 10);
	child = hmmu_test_fork(mm);
	get_bytes(child, a, buf, PAGE);
	assert_memory_equal(buf, want, PAGE);
	check_tags(child, a + PAGE, 3, 10);
	/* Child -> parent: invisible. */
	put_byte(child, a + 100, 0xc1);
	assert_int_equal(get_byte(mm, a + 100), 0x3c);
	assert_int_equal(get_byte(child, a + 100), 0xc1);
	/* Parent -> child: invisible. */
	put_byte(mm, a + PAGE, 0xa1);
	assert_int_equal(get_byte(child, a + PAGE), 10);
	assert_int_equal(get_byte(mm, a + PAGE), 0xa1);
	/* Untouched pages: still the pre-fork bytes on both sides. */
	check_tags(mm, a + 2 * PAGE, 2, 11);
	check_tags(child, a + 2 * PAGE, 2, 11);
	assert_int_equal(stats(child).nr_vmas, stats(mm).nr_vmas);
	assert_int_equal(stats(child).mapped_bytes, 4 * PAGE);
	hmmu_test_fork_done(child);
	check_tags(mm, a + 2 * PAGE, 2, 11);
}

/*
 * Fork shares every page (no copy, same frames, write-protected on both
 * sides, one reference and one mapcount per side); a write copies only
 * the written page, and the last sharer then reuses the original.
 */
static void test_fork_cow_copies_written_page(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 3 * PAGE, RW);
	unsigned long pfn[3];
	struct hmmu_mm *child;
	long free0;

	tag_pages(mm, a, 3, 1);
	for (int i = 0; i < 3; i++)
		pfn[i] = pfn_at(mm, a + i * PAGE);
	free0 = nr_free();
	child = hmmu_test_fork(mm);
	assert_int_equal(nr_free(), free0);	/* nothing copied */
	for (int i = 0; i < 3; i++) {
		hmmu_pte_t pe = pte_at(mm, a + i * PAGE), ce = pte_at(child, a + i * PAGE);
		struct hmmu_page *page = hmmu_pfn_to_page(pfn[i]);

		assert_int_equal(hmmu_pte_pfn(pe), pfn[i]);
		assert_int_equal(hmmu_pte_pfn(ce), pfn[i]);
		assert_false(hmmu_pte_write(pe));
		assert_false(hmmu_pte_write(ce));
		assert_true(hmmu_pte_dirty(pe) && hmmu_pte_young(pe));
		assert_false(hmmu_pte_young(ce));	/* the child's copy is old */
		assert_int_equal(hmmu_page_mapcount(page), 2);
		assert_int_equal(hmmu_page_ref_count(page), 2);
		assert_false(hmmu_page_test_flag(page, HMMU_PG_anon_exclusive));
	}
	/* The parent writes page 1: it alone gets a copy. */
	put_byte(mm, a + PAGE + 7, 0x99);
	assert_int_equal(nr_free(), free0 - 1);
	assert_int_not_equal(pfn_at(mm, a + PAGE), pfn[1]);
	assert_int_equal(pfn_at(child, a + PAGE), pfn[1]);
	assert_int_equal(pfn_at(mm, a), pfn[0]);
	assert_int_equal(pfn_at(mm, a + 2 * PAGE), pfn[2]);
	assert_int_equal(hmmu_page_mapcount(hmmu_pfn_to_page(pfn[1])), 1);
	assert_int_equal(hmmu_page_ref_count(hmmu_pfn_to_page(pfn[1])), 1);
	assert_int_equal(hmmu_page_mapcount(hmmu_pfn_to_page(pfn[0])), 2);
	assert_int_equal(get_byte(mm, a + PAGE), 2);	/* copied contents */
	assert_int_equal(get_byte(child, a + PAGE + 7), 0);
	/* The child is now page 1's only user: its write reuses the frame. */
	put_byte(child, a + PAGE + 8, 0x42);
	assert_int_equal(pfn_at(child, a + PAGE), pfn[1]);
	assert_true(hmmu_pte_write(pte_at(child, a + PAGE)));
	assert_int_equal(nr_free(), free0 - 1);
	assert_int_equal(get_byte(mm, a + PAGE + 8), 0);
	hmmu_test_fork_done(child);
	assert_int_equal(hmmu_page_mapcount(hmmu_pfn_to_page(pfn[0])), 1);
	assert_int_equal(hmmu_page_ref_count(hmmu_pfn_to_page(pfn[0])), 1);
}

/* With the child gone, the parent's write reuses its page: same frame, no copy. */
static void test_fork_reuse_after_child_exit(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	unsigned long pfn0, pfn1, cow0;
	struct hmmu_mm *child;
	long free0;

	tag_pages(mm, a, 2, 0x50);
	pfn0 = pfn_at(mm, a);
	pfn1 = pfn_at(mm, a + PAGE);
	child = hmmu_test_fork(mm);
	assert_false(hmmu_pte_write(pte_at(mm, a)));
	hmmu_test_fork_done(child);
	free0 = nr_free();
	cow0 = stats(mm).cow_faults;
	put_byte(mm, a + 1, 0x77);
	put_byte(mm, a + PAGE + 1, 0x78);
	assert_int_equal(pfn_at(mm, a), pfn0);
	assert_int_equal(pfn_at(mm, a + PAGE), pfn1);
	assert_true(hmmu_pte_write(pte_at(mm, a)));
	assert_int_equal(nr_free(), free0);
	assert_int_equal(stats(mm).cow_faults, cow0);
	assert_true(hmmu_page_test_flag(hmmu_pfn_to_page(pfn0), HMMU_PG_anon_exclusive));
	assert_int_equal(get_byte(mm, a), 0x50);
	assert_int_equal(get_byte(mm, a + 1), 0x77);
}

/* Zero-page entries are copied; a write after fork gives the writer a new page only. */
static void test_fork_zero_page(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_mm *child;
	long free0;

	put_byte(mm, a, 1);			/* gives the VMA its anon_vma */
	assert_int_equal(get_byte(mm, a + PAGE), 0);	/* zero page */
	assert_true(hmmu_is_zero_pfn(pfn_at(mm, a + PAGE)));
	child = hmmu_test_fork(mm);
	assert_true(hmmu_is_zero_pfn(pfn_at(child, a + PAGE)));
	assert_true(hmmu_is_zero_pfn(pfn_at(mm, a + PAGE)));
	assert_false(hmmu_pte_write(pte_at(child, a + PAGE)));
	assert_int_equal(stats(child).zero_pages, 1);
	free0 = nr_free();
	put_byte(child, a + PAGE + 3, 0xee);
	assert_int_equal(nr_free(), free0 - 1);
	assert_false(hmmu_is_zero_pfn(pfn_at(child, a + PAGE)));
	assert_true(hmmu_is_zero_pfn(pfn_at(mm, a + PAGE)));
	assert_int_equal(get_byte(mm, a + PAGE + 3), 0);
	assert_int_equal(get_byte(child, a + PAGE + 3), 0xee);
	assert_int_equal(get_byte(child, a + PAGE + 2), 0);
	hmmu_test_fork_done(child);
}

/* Bad arguments. */
static void test_fork_einval(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_mm *child = NULL;

	assert_int_equal(hmmu_fork(NULL, &child), -EINVAL);
	assert_int_equal(hmmu_fork(mm, NULL), -EINVAL);
	assert_null(child);
}

/* ------------------------------------------------------------------ */
/* Teardown order                                                      */
/* ------------------------------------------------------------------ */

/* A parent with base pages, a zero-page entry and a THP; returns the base. */
static unsigned long build_parent(struct hmmu_mm *mm, unsigned long *huge)
{
	unsigned long a = hmmu_test_map(mm, 6 * MiB, RW);
	unsigned long h = HMMU_ALIGN_UP(a + PAGE, HMMU_PMD_SIZE);

	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
	tag_pages(mm, a, 4, 0x20);
	assert_int_equal(get_byte(mm, a + 4 * PAGE), 0);
	put_byte(mm, h + 5 * PAGE, 0x5a);
	assert_int_equal(stats(mm).huge_pmds, 1);
	*huge = h;
	return a;
}

/* Drop the parent first: the child keeps every page it shares, then frees them. */
static void test_fork_teardown_parent_first(void **state)
{
	long free0 = nr_free();
	struct hmmu_mm *mm, *child;
	unsigned long a, h, pfn;

	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm), 0);
	a = build_parent(mm, &h);
	child = hmmu_test_fork(mm);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	hmmu_mmput(mm);
	assert_int_equal(hmmu_pt_validate(child), 0);
	check_tags(child, a, 4, 0x20);
	assert_int_equal(get_byte(child, h + 5 * PAGE), 0x5a);
	/* Sole user now: a base page is reused without a copy. */
	pfn = pfn_at(child, a);
	put_byte(child, a + 9, 1);
	assert_int_equal(pfn_at(child, a), pfn);
	put_byte(child, h + 9, 1);
	assert_int_equal(get_byte(child, h + 5 * PAGE), 0x5a);
	assert_int_equal(get_byte(child, h + 9), 1);
	hmmu_test_fork_done(child);
	assert_int_equal(nr_free(), free0);
}

/* Drop the child first: the parent's pages are intact and then all freed. */
static void test_fork_teardown_child_first(void **state)
{
	long free0 = nr_free();
	struct hmmu_mm *mm, *child;
	unsigned long a, h;

	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm), 0);
	a = build_parent(mm, &h);
	child = hmmu_test_fork(mm);
	put_byte(child, a + 1, 0xcc);		/* one private copy in the child */
	hmmu_test_fork_done(child);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	check_tags(mm, a, 4, 0x20);
	assert_int_equal(get_byte(mm, a + 1), 0);
	assert_int_equal(get_byte(mm, h + 5 * PAGE), 0x5a);
	/* The sole owner's write takes the whole huge page back: no split, no copy. */
	hmmu_pte_t before = hmmu_test_leaf(mm, h, NULL);
	put_byte(mm, h + 7 * PAGE, 0x7a);
	assert_int_equal(stats(mm).huge_pmds, 1);
	assert_int_equal(hmmu_pte_pfn(hmmu_test_leaf(mm, h, NULL)), hmmu_pte_pfn(before));
	assert_true(hmmu_pte_write(hmmu_test_leaf(mm, h, NULL)));
	hmmu_mmput(mm);
	assert_int_equal(nr_free(), free0);
}

/* ------------------------------------------------------------------ */
/* Notifiers                                                           */
/* ------------------------------------------------------------------ */

#define VMA_A 0x10000000UL
#define VMA_B 0x20000000UL
#define VMA_C 0x30000000UL
#define VMA_D 0x40000000UL

/*
 * One PROTECTION_PAGE invalidation of the parent per copied COW VMA, over
 * exactly the VMA, start before end; none for a VMA that is not copied
 * (no anon_vma, or MADV_DONTFORK); none in the child, which inherits no
 * subscription.
 */
static void test_fork_protection_events(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_mm *child;
	struct nr_sub s;

	nr_map_at(mm, VMA_A, 4 * PAGE, RW);
	nr_map_at(mm, VMA_B, 2 * PAGE, RW);
	nr_map_at(mm, VMA_C, 2 * PAGE, RW);	/* never written: no anon_vma */
	nr_map_at(mm, VMA_D, 2 * PAGE, RW);
	put_byte(mm, VMA_A + PAGE, 1);
	put_byte(mm, VMA_B, 2);
	put_byte(mm, VMA_D, 3);
	assert_int_equal(hmmu_madvise(mm, VMA_D, 2 * PAGE, MADV_DONTFORK), 0);
	nr_sub_init(&s, 1, &nr_nohook_ops);
	assert_int_equal(hmmu_notifier_register(&s.n, mm), 0);
	nr_reset();
	child = hmmu_test_fork(mm);
	nr_expect(0, NR_START, 1, VMA_A, VMA_A + 4 * PAGE);
	nr_expect(1, NR_END, 1, VMA_A, VMA_A + 4 * PAGE);
	nr_expect(2, NR_START, 1, VMA_B, VMA_B + 2 * PAGE);
	nr_expect(3, NR_END, 1, VMA_B, VMA_B + 2 * PAGE);
	nr_expect_count(4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(nr_get(i).event, HMMU_NOTIFY_PROTECTION_PAGE);
		assert_int_equal(nr_get(i).flags, BLK);
		assert_null(nr_get(i).owner);
	}
	assert_null(hmmu_mm_subscriptions(child));
	/* The parent's write to its write-protected entry copies (CLEAR, one page). */
	nr_reset();
	put_byte(mm, VMA_A + PAGE + 1, 4);
	nr_expect(0, NR_START, 1, VMA_A + PAGE, VMA_A + 2 * PAGE);
	nr_expect(1, NR_END, 1, VMA_A + PAGE, VMA_A + 2 * PAGE);
	assert_int_equal(nr_get(0).event, HMMU_NOTIFY_CLEAR);
	/* The child's own changes reach no subscriber. */
	nr_reset();
	put_byte(child, VMA_B + 1, 9);
	assert_int_equal(hmmu_munmap(child, VMA_A, 4 * PAGE), 0);
	nr_expect_count(0);
	assert_int_equal(get_byte(mm, VMA_B + 1), 0);
	hmmu_test_fork_done(child);
	hmmu_notifier_unregister(&s.n, mm);
}

/* ------------------------------------------------------------------ */
/* Pinned pages                                                        */
/* ------------------------------------------------------------------ */

/*
 * A pinned exclusive page is copied for the child at fork; the parent keeps
 * it writable and exclusive, so its next write needs no fault and lands in
 * the pinned frame.  An unpinned neighbour is shared as usual.
 */
static void test_fork_pinned_page_copied(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_page *pinned, *copy;
	struct hmmu_mm *child;
	unsigned long faults;
	long free0;

	tag_pages(mm, a, 2, 0x61);
	assert_int_equal(pin(mm, a, 1, HMMU_FOLL_WRITE | HMMU_FOLL_LONGTERM, &pinned), 1);
	assert_ptr_equal(pinned, page_at(mm, a));
	free0 = nr_free();
	child = hmmu_test_fork(mm);
	assert_int_equal(nr_free(), free0 - 1);		/* exactly one copy */
	copy = page_at(child, a);
	assert_ptr_not_equal(copy, pinned);
	assert_true(hmmu_pte_write(pte_at(mm, a)));
	assert_true(hmmu_pte_write(pte_at(child, a)));
	assert_true(hmmu_page_test_flag(pinned, HMMU_PG_anon_exclusive));
	assert_true(hmmu_page_test_flag(copy, HMMU_PG_anon_exclusive));
	assert_int_equal(hmmu_page_mapcount(pinned), 1);
	assert_int_equal(hmmu_page_ref_count(pinned), 2);	/* mapping + pin */
	assert_int_equal(hmmu_page_mapcount(copy), 1);
	assert_int_equal(hmmu_page_ref_count(copy), 1);
	assert_int_equal(get_byte(child, a), 0x61);
	/* The neighbour is shared copy-on-write. */
	assert_int_equal(pfn_at(child, a + PAGE), pfn_at(mm, a + PAGE));
	assert_false(hmmu_pte_write(pte_at(mm, a + PAGE)));
	/* The parent's write: no fault, straight into the pinned frame. */
	faults = stats(mm).faults;
	put_byte(mm, a + 10, 0xab);
	assert_int_equal(stats(mm).faults, faults);
	assert_int_equal(((unsigned char *)hmmu_page_address(pinned))[10], 0xab);
	assert_int_equal(get_byte(child, a + 10), 0);
	/* The child's write: no fault either, into its own copy. */
	put_byte(child, a + 11, 0xcd);
	assert_int_equal(((unsigned char *)hmmu_page_address(pinned))[11], 0);
	assert_int_equal(((unsigned char *)hmmu_page_address(copy))[11], 0xcd);
	hmmu_test_fork_done(child);
	hmmu_unpin_user_page(pinned);
	assert_int_equal(hmmu_page_ref_count(pinned), 1);
}

/* ------------------------------------------------------------------ */
/* Transparent huge pages                                              */
/* ------------------------------------------------------------------ */

/* Map 4 MiB, advise its 2 MiB-aligned window MADV_HUGEPAGE, fill it with random bytes. */
static unsigned long huge_window(struct hmmu_mm *mm, unsigned char **bufp)
{
	unsigned long a = hmmu_test_map(mm, 4 * MiB, RW);
	unsigned long h = HMMU_ALIGN_UP(a, HMMU_PMD_SIZE);
	uint64_t rs = 0x9e3779b97f4a7c15ULL;	/* fixed: nothing to replay */
	unsigned char *buf = malloc(HMMU_PMD_SIZE);

	assert_non_null(buf);
	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
	for (size_t i = 0; i < HMMU_PMD_SIZE; i++)
		buf[i] = (unsigned char)hmmu_test_rand(&rs);
	put_bytes(mm, h, buf, HMMU_PMD_SIZE);
	*bufp = buf;
	return h;
}

/* The huge leaf at @h: its head page, or fail. */
static struct hmmu_page *huge_head(struct hmmu_mm *mm, unsigned long h, hmmu_pte_t *ep)
{
	bool huge;
	hmmu_pte_t e = hmmu_test_leaf(mm, h, &huge);

	assert_true(huge && hmmu_pmd_leaf(e));
	if (ep)
		*ep = e;
	return hmmu_pfn_to_page(hmmu_pte_pfn(e));
}

static void check_window(struct hmmu_mm *mm, unsigned long h, const unsigned char *want)
{
	unsigned char *buf = malloc(HMMU_PMD_SIZE);

	assert_non_null(buf);
	get_bytes(mm, h, buf, HMMU_PMD_SIZE);
	assert_memory_equal(buf, want, HMMU_PMD_SIZE);
	free(buf);
}

/*
 * Fork shares a THP whole (one PMD leaf each side, write-protected, entire
 * mapcount 2); the child's write splits only its own PMD and copies one
 * page; the data stays intact on both sides.
 */
static void test_fork_thp_shared(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned char *buf;
	unsigned long h = huge_window(mm, &buf);
	struct hmmu_page *head = huge_head(mm, h, NULL);
	struct hmmu_mm *child;
	hmmu_pte_t pe, ce;
	long free0 = nr_free();

	child = hmmu_test_fork(mm);
	assert_int_equal(nr_free(), free0);
	assert_ptr_equal(huge_head(child, h, &ce), head);
	assert_ptr_equal(huge_head(mm, h, &pe), head);
	assert_false(hmmu_pte_write(pe) || hmmu_pte_write(ce));
	assert_false(hmmu_pte_young(ce));
	assert_int_equal(atomic_load(&head->_entire_mapcount), 2);
	assert_int_equal(hmmu_page_ref_count(head), 2);
	assert_int_equal(hmmu_page_mapcount(head + 77), 2);
	assert_false(hmmu_page_test_flag(head, HMMU_PG_anon_exclusive));
	assert_int_equal(stats(child).huge_pmds, 1);
	assert_int_equal(hmmu_pt_validate(child), 0);	/* one deposit per THP leaf */
	/* The child writes one page: its PMD splits, that page alone is copied. */
	put_byte(child, h + 3 * PAGE + 5, (unsigned char)~buf[3 * PAGE + 5]);
	assert_int_equal(nr_free(), free0 - 1);
	assert_int_equal(stats(child).huge_pmds, 0);
	assert_ptr_equal(huge_head(mm, h, NULL), head);
	assert_ptr_not_equal(page_at(child, h + 3 * PAGE), head + 3);
	assert_ptr_equal(page_at(child, h + 4 * PAGE), head + 4);
	assert_ptr_equal(page_at(child, h), head);
	assert_int_equal(atomic_load(&head->_entire_mapcount), 1);
	assert_int_equal(hmmu_page_mapcount(head + 4), 2);	/* PTE in the child + PMD in the parent */
	assert_int_equal(hmmu_page_mapcount(head + 3), 1);
	check_window(mm, h, buf);
	buf[3 * PAGE + 5] = (unsigned char)~buf[3 * PAGE + 5];
	check_window(child, h, buf);
	hmmu_test_fork_done(child);
	assert_int_equal(hmmu_page_ref_count(head), 1);
	assert_int_equal(hmmu_page_mapcount(head + 4), 1);
	free(buf);
}

/* A pinned exclusive THP: the parent's PMD is split and every page copied for the child. */
static void test_fork_thp_pinned(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned char *buf;
	unsigned long h = huge_window(mm, &buf);
	struct hmmu_page *head = huge_head(mm, h, NULL), *pinned;
	struct hmmu_mm *child;
	long free0;

	assert_int_equal(pin(mm, h + 7 * PAGE, 1, HMMU_FOLL_WRITE | HMMU_FOLL_LONGTERM, &pinned), 1);
	assert_ptr_equal(pinned, head + 7);
	free0 = nr_free();
	child = hmmu_test_fork(mm);
	assert_int_equal(nr_free(), free0 - (long)HMMU_PT_ENTRIES);
	assert_int_equal(stats(mm).huge_pmds, 0);	/* split */
	assert_int_equal(stats(child).huge_pmds, 0);
	assert_ptr_equal(page_at(mm, h + 7 * PAGE), pinned);
	assert_true(hmmu_pte_write(pte_at(mm, h + 7 * PAGE)));
	assert_ptr_not_equal(page_at(child, h + 7 * PAGE), pinned);
	assert_ptr_not_equal(page_at(child, h + 100 * PAGE), head + 100);
	check_window(child, h, buf);
	put_byte(mm, h + 7 * PAGE, (unsigned char)~buf[7 * PAGE]);
	assert_int_equal(((unsigned char *)hmmu_page_address(pinned))[0], (unsigned char)~buf[7 * PAGE]);
	check_window(child, h, buf);
	hmmu_test_fork_done(child);
	hmmu_unpin_user_page(pinned);
	free(buf);
}

/*
 * Hugetlb: fork shares the 2 MiB page (no deposit: the child validates);
 * the child's write copies it whole.  Pinned and exclusive at fork time,
 * it is copied for the child at once and the parent keeps it writable.
 */
static void test_fork_hugetlb(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long h = hmmu_mmap(mm, 0, HMMU_PMD_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	struct hmmu_page *head, *pinned;
	struct hmmu_mm *child;
	hmmu_pte_t pe, ce;
	long free0;

	if (h == -EOPNOTSUPP)
		skip();		/* hugetlb not available in this tree */
	assert_true(h > 0);
	put_byte(mm, (unsigned long)h + 3 * PAGE, 0x33);
	head = huge_head(mm, (unsigned long)h, NULL);
	free0 = nr_free();
	child = hmmu_test_fork(mm);
	assert_int_equal(nr_free(), free0);
	assert_ptr_equal(huge_head(child, (unsigned long)h, &ce), head);
	assert_ptr_equal(huge_head(mm, (unsigned long)h, &pe), head);
	assert_false(hmmu_pte_write(pe) || hmmu_pte_write(ce));
	assert_int_equal(atomic_load(&head->_entire_mapcount), 2);
	assert_int_equal(hmmu_page_ref_count(head), 2);
	assert_int_equal(hmmu_pt_validate(child), 0);
	put_byte(child, (unsigned long)h + 3 * PAGE + 1, 0x44);
	assert_int_equal(nr_free(), free0 - (long)HMMU_PT_ENTRIES);
	assert_ptr_not_equal(huge_head(child, (unsigned long)h, NULL), head);
	assert_int_equal(get_byte(child, (unsigned long)h + 3 * PAGE), 0x33);
	assert_int_equal(get_byte(mm, (unsigned long)h + 3 * PAGE + 1), 0);
	hmmu_test_fork_done(child);
	/* The parent is the sole user again: a pin for write makes it exclusive. */
	assert_int_equal(pin(mm, (unsigned long)h + 5 * PAGE, 1, HMMU_FOLL_WRITE | HMMU_FOLL_LONGTERM, &pinned), 1);
	assert_ptr_equal(pinned, head + 5);
	free0 = nr_free();
	child = hmmu_test_fork(mm);
	assert_int_equal(nr_free(), free0 - (long)HMMU_PT_ENTRIES);
	assert_ptr_not_equal(huge_head(child, (unsigned long)h, &ce), head);
	assert_true(hmmu_pte_write(ce));
	assert_ptr_equal(huge_head(mm, (unsigned long)h, &pe), head);
	assert_true(hmmu_pte_write(pe));
	assert_int_equal(atomic_load(&head->_entire_mapcount), 1);
	assert_int_equal(get_byte(child, (unsigned long)h + 3 * PAGE), 0x33);
	put_byte(mm, (unsigned long)h + 5 * PAGE, 0x55);
	assert_int_equal(((unsigned char *)hmmu_page_address(pinned))[0], 0x55);
	assert_int_equal(get_byte(child, (unsigned long)h + 5 * PAGE), 0);
	hmmu_test_fork_done(child);
	hmmu_unpin_user_page(pinned);
}

/* ------------------------------------------------------------------ */
/* Typed entries                                                       */
/* ------------------------------------------------------------------ */

struct swp_arg {
	enum hmmu_swp_type type;
	bool young, dirty;
	hmmu_pte_t old;
};

/*
 * Replace a present PTE by a migration entry as a migration would: the
 * entry holds no mapcount and no reference, and the page is no longer
 * flagged exclusive (a read-exclusive entry carries that).
 */
static void make_migration(struct hmmu_pt *pt, hmmu_pte_t *ep, void *arg)
{
	struct swp_arg *s = arg;
	struct hmmu_swp_entry se = hmmu_make_swp_entry(s->type, hmmu_pte_pfn(hmmu_pte_read(ep)));
	struct hmmu_page *page = hmmu_pfn_to_page(se.pfn);

	s->old = hmmu_pte_read(ep);
	se.young = s->young;
	se.dirty = s->dirty;
	hmmu_pte_set(pt, ep, hmmu_swp_entry_to_pte(se));
	hmmu_page_clear_flag(page, HMMU_PG_anon_exclusive);
	hmmu_page_remove_rmap(page, false);
}

/* Replace a present PTE by a device-exclusive entry: mapcount dropped, reference kept. */
static void make_exclusive(struct hmmu_pt *pt, hmmu_pte_t *ep, void *arg)
{
	struct swp_arg *s = arg;
	unsigned long pfn = hmmu_pte_pfn(hmmu_pte_read(ep));

	s->old = hmmu_pte_read(ep);
	hmmu_pte_set(pt, ep, hmmu_swp_entry_to_pte(hmmu_make_swp_entry(s->type, pfn)));
	hmmu_page_remove_rmap(hmmu_pfn_to_page(pfn), false);
}

/* Map the page of the migration entry at *@ep read-only again, with its reference and mapcount. */
static void restore_present(struct hmmu_pt *pt, hmmu_pte_t *ep, void *arg)
{
	struct hmmu_swp_entry se = hmmu_pte_to_swp_entry(hmmu_pte_read(ep));
	struct hmmu_page *page = hmmu_pfn_to_page(se.pfn);

	hmmu_get_page(page);
	atomic_fetch_add(&page->_mapcount, 1);
	hmmu_pte_set(pt, ep, hmmu_pfn_pte(se.pfn, HMMU_PTE_YOUNG));
}

static struct hmmu_swp_entry swp_at(struct hmmu_mm *mm, unsigned long addr)
{
	hmmu_pte_t e = pte_at(mm, addr);

	assert_false(hmmu_pte_present(e) || hmmu_pte_none(e));
	return hmmu_pte_to_swp_entry(e);
}

/*
 * Migration entries are copied holding nothing; in a COW VMA the write and
 * read-exclusive variants become read on both sides, young and dirty kept.
 */
static void test_fork_migration_entries(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 3 * PAGE, RW);
	struct swp_arg w = { .type = HMMU_SWP_MIGRATION_WRITE, .young = true, .dirty = true };
	struct swp_arg x = { .type = HMMU_SWP_MIGRATION_READ_EXCLUSIVE, .young = false, .dirty = true };
	struct hmmu_page *pw, *px;
	struct hmmu_mm *child;
	struct hmmu_swp_entry se;

	tag_pages(mm, a, 3, 0x30);
	pw = page_at(mm, a);
	px = page_at(mm, a + PAGE);
	hmmu_lock_page(pw);
	hmmu_lock_page(px);
	hmmu_get_page(pw);		/* ours: keeps the pages while only migration entries map them */
	hmmu_get_page(px);
	with_pte_locked(mm, a, make_migration, &w);
	with_pte_locked(mm, a + PAGE, make_migration, &x);
	hmmu_put_page(pw);		/* the references the present entries held */
	hmmu_put_page(px);
	child = hmmu_test_fork(mm);
	for (int side = 0; side < 2; side++) {
		struct hmmu_mm *m = side ? child : mm;

		se = swp_at(m, a);
		assert_int_equal(se.type, HMMU_SWP_MIGRATION_READ);
		assert_int_equal(se.pfn, hmmu_page_to_pfn(pw));
		assert_true(se.young && se.dirty);
		se = swp_at(m, a + PAGE);
		assert_int_equal(se.type, HMMU_SWP_MIGRATION_READ);
		assert_int_equal(se.pfn, hmmu_page_to_pfn(px));
		assert_true(!se.young && se.dirty);
	}
	assert_int_equal(hmmu_page_ref_count(pw), 1);	/* only ours */
	assert_int_equal(hmmu_page_mapcount(pw), 0);
	assert_int_equal(hmmu_page_mapcount(px), 0);
	assert_int_equal(stats(child).nonpresent_entries, 2);
	assert_int_equal(pfn_at(child, a + 2 * PAGE), pfn_at(mm, a + 2 * PAGE));
	/* The "migration" fails back: both sides map the pages read-only. */
	with_pte_locked(mm, a, restore_present, NULL);
	with_pte_locked(child, a, restore_present, NULL);
	with_pte_locked(mm, a + PAGE, restore_present, NULL);
	with_pte_locked(child, a + PAGE, restore_present, NULL);
	hmmu_unlock_page(pw);
	hmmu_unlock_page(px);
	hmmu_put_page(pw);
	hmmu_put_page(px);
	assert_int_equal(hmmu_page_mapcount(pw), 2);
	assert_int_equal(hmmu_page_ref_count(pw), 2);
	check_tags(child, a, 3, 0x30);
	put_byte(child, a, 0x11);		/* shared: the child copies */
	assert_int_equal(get_byte(mm, a), 0x30);
	hmmu_test_fork_done(child);
}

/*
 * A device-private entry is copied with a reference and a mapcount on the
 * device page; in a COW VMA the write variant becomes read on both sides.
 * The device page goes back to its driver only when both sides are gone.
 */
static void test_fork_device_private(void **state)
{
	static int owner;
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner);
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_page *dpage;
	struct hmmu_mm *child;
	struct hmmu_swp_entry se;

	tag_pages(mm, a, 2, 0xd0);
	dpage = hmmu_test_dev_to_device(dev, mm, a);
	assert_int_equal(swp_at(mm, a).type, HMMU_SWP_DEVICE_PRIVATE_WRITE);
	assert_int_equal(hmmu_page_ref_count(dpage), 1);
	child = hmmu_test_fork(mm);
	for (int side = 0; side < 2; side++) {
		se = swp_at(side ? child : mm, a);
		assert_int_equal(se.type, HMMU_SWP_DEVICE_PRIVATE_READ);
		assert_int_equal(se.pfn, hmmu_page_to_pfn(dpage));
	}
	assert_int_equal(hmmu_page_ref_count(dpage), 2);
	assert_int_equal(hmmu_page_mapcount(dpage), 2);
	assert_false(hmmu_page_test_flag(dpage, HMMU_PG_anon_exclusive));
	assert_int_equal(((unsigned char *)hmmu_test_dev_mem(dev, dpage))[0], 0xd0);
	assert_int_equal(pfn_at(child, a + PAGE), pfn_at(mm, a + PAGE));
	assert_int_equal(get_byte(child, a + PAGE), 0xd1);
	hmmu_test_fork_done(child);
	assert_int_equal(hmmu_page_ref_count(dpage), 1);
	assert_int_equal(hmmu_page_mapcount(dpage), 1);
	assert_int_equal(atomic_load(&dev->page_frees), 0);
	assert_int_equal(swp_at(mm, a).type, HMMU_SWP_DEVICE_PRIVATE_READ);
}

/*
 * A device-exclusive entry is restored in the parent (present, same frame,
 * its mapcount back) and then shared like a present page.
 */
static void test_fork_device_exclusive(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct swp_arg s = { .type = HMMU_SWP_DEVICE_EXCLUSIVE_WRITE };
	struct hmmu_page *page;
	struct hmmu_mm *child;
	hmmu_pte_t pe, ce;

	tag_pages(mm, a, 2, 0x70);
	page = page_at(mm, a + PAGE);
	with_pte_locked(mm, a + PAGE, make_exclusive, &s);
	assert_int_equal(hmmu_page_mapcount(page), 0);
	assert_int_equal(hmmu_page_ref_count(page), 1);
	child = hmmu_test_fork(mm);
	pe = pte_at(mm, a + PAGE);
	ce = pte_at(child, a + PAGE);
	assert_true(hmmu_pte_present(pe) && hmmu_pte_present(ce));
	assert_int_equal(hmmu_pte_pfn(pe), hmmu_page_to_pfn(page));
	assert_int_equal(hmmu_pte_pfn(ce), hmmu_page_to_pfn(page));
	assert_false(hmmu_pte_write(pe) || hmmu_pte_write(ce));	/* COW after the restore */
	assert_true(hmmu_pte_dirty(pe));
	assert_int_equal(hmmu_page_mapcount(page), 2);
	assert_int_equal(hmmu_page_ref_count(page), 2);
	assert_false(hmmu_page_test_flag(page, HMMU_PG_anon_exclusive));
	assert_false(hmmu_page_locked(page));
	check_tags(child, a, 2, 0x70);
	put_byte(mm, a + PAGE, 0x01);
	assert_int_equal(get_byte(child, a + PAGE), 0x71);
	hmmu_test_fork_done(child);
}

/* With the page lock busy the restore cannot be done: fork fails with -ENOMEM, the parent intact. */
static void test_fork_device_exclusive_busy(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct swp_arg s = { .type = HMMU_SWP_DEVICE_EXCLUSIVE_READ };
	struct hmmu_mm *child = NULL;
	struct hmmu_page *page;
	hmmu_pte_t before;
	long free0;

	tag_pages(mm, a, 2, 0x80);
	page = page_at(mm, a + PAGE);
	with_pte_locked(mm, a + PAGE, make_exclusive, &s);
	before = pte_at(mm, a + PAGE);
	hmmu_lock_page(page);
	free0 = nr_free();
	assert_int_equal(hmmu_fork(mm, &child), -ENOMEM);
	assert_null(child);
	assert_int_equal(nr_free(), free0);
	assert_int_equal(pte_at(mm, a + PAGE), before);
	assert_int_equal(hmmu_page_mapcount(page), 0);
	assert_int_equal(hmmu_page_ref_count(page), 1);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	/* The page copied before the failure is back to one mapping. */
	assert_int_equal(hmmu_page_mapcount(page_at(mm, a)), 1);
	assert_int_equal(hmmu_page_ref_count(page_at(mm, a)), 1);
	check_tags(mm, a, 1, 0x80);
	hmmu_unlock_page(page);
	/* Unlocked, the next fork restores the entry and succeeds. */
	child = hmmu_test_fork(mm);
	assert_true(hmmu_pte_present(pte_at(mm, a + PAGE)));
	assert_false(hmmu_pte_write(pte_at(mm, a + PAGE)));	/* it was the read variant */
	assert_int_equal(hmmu_page_mapcount(page), 2);
	check_tags(child, a, 2, 0x80);
	hmmu_test_fork_done(child);
}

/* ------------------------------------------------------------------ */
/* VMA kinds                                                           */
/* ------------------------------------------------------------------ */

static bool vma_dontcopy(struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_vma *vma;
	bool ret;

	hmmu_mmap_read_lock(mm);
	vma = hmmu_vma_lookup(mm, addr);
	assert_non_null(vma);
	ret = vma->vm_flags & HMMU_VM_DONTCOPY;
	hmmu_mmap_read_unlock(mm);
	return ret;
}

/* A MADV_DONTFORK VMA is absent from the child and untouched in the parent; DOFORK undoes it. */
static void test_fork_dontfork(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	struct hmmu_mm *child;
	unsigned char v;

	tag_pages(mm, a, 4, 0x90);
	assert_int_equal(hmmu_madvise(mm, a + 2 * PAGE, 2 * PAGE, MADV_DONTFORK), 0);
	assert_true(vma_dontcopy(mm, a + 2 * PAGE));
	assert_false(vma_dontcopy(mm, a));
	child = hmmu_test_fork(mm);
	assert_int_equal(stats(child).nr_vmas, 1);
	assert_int_equal(stats(child).mapped_bytes, 2 * PAGE);
	assert_int_equal(hmmu_access(child, a + 2 * PAGE, &v, 1, HMMU_ACCESS_READ), -EFAULT);
	assert_int_equal(hmmu_test_leaf(child, a + 2 * PAGE, NULL), 0);
	check_tags(child, a, 2, 0x90);
	/* The parent's DONTFORK pages were not shared: still writable and exclusive. */
	assert_true(hmmu_pte_write(pte_at(mm, a + 2 * PAGE)));
	assert_int_equal(hmmu_page_mapcount(page_at(mm, a + 2 * PAGE)), 1);
	assert_false(hmmu_pte_write(pte_at(mm, a)));
	hmmu_test_fork_done(child);
	/* MADV_DOFORK: copied again, and the VMAs merge back. */
	assert_int_equal(hmmu_madvise(mm, a + 2 * PAGE, 2 * PAGE, MADV_DOFORK), 0);
	assert_false(vma_dontcopy(mm, a + 2 * PAGE));
	assert_int_equal(stats(mm).nr_vmas, 1);
	child = hmmu_test_fork(mm);
	check_tags(child, a, 4, 0x90);
	hmmu_test_fork_done(child);
}

/* Shared anonymous memory stays shared: writes on either side are seen by both. */
static void test_fork_shared_anon(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long a = hmmu_mmap(mm, 0, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct hmmu_mm *child;

	if (a == -EOPNOTSUPP)
		skip();		/* shmem not available in this tree yet */
	assert_true(a > 0);
	put_byte(mm, (unsigned long)a, 0x41);
	child = hmmu_test_fork(mm);
	assert_int_equal(get_byte(child, (unsigned long)a), 0x41);
	put_byte(child, (unsigned long)a + 1, 0x42);
	assert_int_equal(get_byte(mm, (unsigned long)a + 1), 0x42);
	put_byte(mm, (unsigned long)a + PAGE, 0x43);
	assert_int_equal(get_byte(child, (unsigned long)a + PAGE), 0x43);
	assert_int_equal(pfn_at(child, (unsigned long)a), pfn_at(mm, (unsigned long)a));
	assert_int_equal(pfn_at(child, (unsigned long)a + PAGE), pfn_at(mm, (unsigned long)a + PAGE));
	hmmu_test_fork_done(child);
	assert_int_equal(get_byte(mm, (unsigned long)a + 1), 0x42);
}

/* An unlinked temporary file of @n pages; byte 0 of page i is 0xf0 + i. */
static int temp_file(unsigned long n)
{
	char path[] = "/tmp/hmmu-fork-XXXXXX";
	int fd = mkstemp(path);
	unsigned char buf[PAGE];

	assert_true(fd >= 0);
	unlink(path);
	for (unsigned long i = 0; i < n; i++) {
		memset(buf, 0, sizeof(buf));
		buf[0] = (unsigned char)(0xf0 + i);
		assert_int_equal(pwrite(fd, buf, PAGE, (off_t)(i * PAGE)), (ssize_t)PAGE);
	}
	return fd;
}

/*
 * File mappings: a shared one is never copied (the child refaults the same
 * cached pages and shares writes); a private one is copied only once it
 * has anonymous pages (an anon_vma): its cached pages then gain a
 * reference and a mapcount for the child, its anonymous pages are shared
 * copy-on-write.
 */
static void test_fork_file_mappings(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	int fd = temp_file(2);
	long p = hmmu_mmap(mm, 0, 2 * PAGE, RW, MAP_PRIVATE, fd, 0);
	long s = hmmu_mmap(mm, 0, 2 * PAGE, RW, MAP_SHARED, fd, 0);
	struct hmmu_page *cached;
	struct hmmu_mm *child;
	int map0;

	if (p == -EOPNOTSUPP || s == -EOPNOTSUPP) {
		close(fd);
		skip();		/* no page cache in this tree */
	}
	assert_true(p > 0 && s > 0);
	assert_int_equal(get_byte(mm, (unsigned long)p), 0xf0);
	assert_int_equal(get_byte(mm, (unsigned long)s), 0xf0);
	cached = page_at(mm, (unsigned long)p);
	assert_ptr_equal(page_at(mm, (unsigned long)s), cached);
	child = hmmu_test_fork(mm);
	assert_int_equal(hmmu_test_leaf(child, (unsigned long)p, NULL), 0);	/* refaulted, not copied */
	assert_int_equal(hmmu_test_leaf(child, (unsigned long)s, NULL), 0);
	assert_int_equal(get_byte(child, (unsigned long)p), 0xf0);
	assert_ptr_equal(page_at(child, (unsigned long)p), cached);
	put_byte(child, (unsigned long)s + PAGE + 1, 0x5e);	/* shared: the parent sees it */
	assert_int_equal(get_byte(mm, (unsigned long)s + PAGE + 1), 0x5e);
	hmmu_test_fork_done(child);
	/* A private write gives the mapping anonymous pages: now it is copied. */
	put_byte(mm, (unsigned long)p + PAGE + 2, 0x6f);
	map0 = hmmu_page_mapcount(cached);
	child = hmmu_test_fork(mm);
	assert_ptr_equal(page_at(child, (unsigned long)p), cached);
	assert_int_equal(hmmu_page_mapcount(cached), map0 + 1);
	assert_int_equal(pfn_at(child, (unsigned long)p + PAGE), pfn_at(mm, (unsigned long)p + PAGE));
	assert_false(hmmu_pte_write(pte_at(mm, (unsigned long)p + PAGE)));
	assert_int_equal(hmmu_test_leaf(child, (unsigned long)s, NULL), 0);
	assert_int_equal(get_byte(child, (unsigned long)p + PAGE + 2), 0x6f);
	assert_int_equal(get_byte(child, (unsigned long)p + PAGE + 1), 0x5e);	/* copied after the shared write */
	hmmu_test_fork_done(child);
	assert_int_equal(hmmu_page_mapcount(cached), map0);
	close(fd);
}

/* A driver mapping one page it owns: remapped as a raw frame (PFNMAP) or inserted (MIXEDMAP). */
struct fdrv {
	struct hmmu_page *page;
	bool remap;
	int opens, closes;
};

static void fdrv_open(struct hmmu_vma *vma)
{
	((struct fdrv *)vma->vm_private_data)->opens++;
}

static void fdrv_close(struct hmmu_vma *vma)
{
	((struct fdrv *)vma->vm_private_data)->closes++;
}

static const struct hmmu_vm_operations fdrv_ops = { .open = fdrv_open, .close = fdrv_close };

static int fdrv_mmap(struct hmmu_vma *vma, void *arg)
{
	struct fdrv *d = arg;

	vma->vm_ops = &fdrv_ops;
	vma->vm_private_data = d;
	if (d->remap)
		return hmmu_remap_pfn_range(vma, vma->vm_start, hmmu_page_to_pfn(d->page), PAGE);
	return hmmu_vm_insert_page(vma, vma->vm_start, d->page);
}

/*
 * Special mappings are copied entry by entry: a shared PFNMAP frame stays
 * writable and shared (no reference), a private MIXEDMAP page is shared
 * read-only with a reference and a mapcount per side, and a child write
 * copies it.  The driver's open hook runs for each child VMA.
 */
static void test_fork_special_mappings(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct fdrv da = { .remap = true }, db = { .remap = false };
	struct hmmu_mm *child;
	long sa, sb;
	hmmu_pte_t ce;

	da.page = hmmu_alloc_page(HMMU_GFP_ZERO);
	db.page = hmmu_alloc_page(HMMU_GFP_ZERO);
	assert_true(da.page && db.page);
	((unsigned char *)hmmu_page_address(da.page))[0] = 0x5a;
	((unsigned char *)hmmu_page_address(db.page))[0] = 0x6b;
	sa = hmmu_mmap_special(mm, 0, PAGE, RW, MAP_SHARED, 0, fdrv_mmap, &da);
	sb = hmmu_mmap_special(mm, 0, PAGE, RW, MAP_PRIVATE, 0, fdrv_mmap, &db);
	if (sa == -EOPNOTSUPP || sb == -EOPNOTSUPP) {
		hmmu_put_page(da.page);
		hmmu_put_page(db.page);
		skip();		/* special mappings not available in this tree */
	}
	assert_true(sa > 0 && sb > 0);
	child = hmmu_test_fork(mm);
	assert_int_equal(da.opens, 1);
	assert_int_equal(db.opens, 1);
	/* PFNMAP, shared: the same raw frame, still writable, no reference taken. */
	ce = pte_at(child, (unsigned long)sa);
	assert_true(hmmu_pte_special(ce) && hmmu_pte_write(ce));
	assert_int_equal(hmmu_pte_pfn(ce), hmmu_page_to_pfn(da.page));
	assert_int_equal(hmmu_page_ref_count(da.page), 1);
	assert_int_equal(get_byte(child, (unsigned long)sa), 0x5a);
	put_byte(child, (unsigned long)sa + 1, 0x77);
	assert_int_equal(get_byte(mm, (unsigned long)sa + 1), 0x77);
	/* MIXEDMAP, private: the driver page shared read-only, counted per side. */
	ce = pte_at(child, (unsigned long)sb);
	assert_false(hmmu_pte_special(ce) || hmmu_pte_write(ce));
	assert_int_equal(hmmu_pte_pfn(ce), hmmu_page_to_pfn(db.page));
	assert_int_equal(hmmu_page_ref_count(db.page), 3);	/* driver + two entries */
	assert_int_equal(hmmu_page_mapcount(db.page), 2);
	put_byte(child, (unsigned long)sb + 1, 0x78);
	assert_int_not_equal(pfn_at(child, (unsigned long)sb), hmmu_page_to_pfn(db.page));
	assert_int_equal(get_byte(child, (unsigned long)sb), 0x6b);
	assert_int_equal(get_byte(mm, (unsigned long)sb + 1), 0);
	assert_int_equal(hmmu_page_mapcount(db.page), 1);
	hmmu_test_fork_done(child);
	assert_int_equal(da.closes, 1);
	assert_int_equal(db.closes, 1);
	assert_int_equal(hmmu_page_ref_count(db.page), 2);
	assert_int_equal(hmmu_munmap(mm, (unsigned long)sa, PAGE), 0);
	assert_int_equal(hmmu_munmap(mm, (unsigned long)sb, PAGE), 0);
	hmmu_put_page(da.page);
	hmmu_put_page(db.page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_fork_private_isolation),
		HMMU_TEST(test_fork_cow_copies_written_page),
		HMMU_TEST(test_fork_reuse_after_child_exit),
		HMMU_TEST(test_fork_zero_page),
		HMMU_TEST(test_fork_einval),
		HMMU_TEST(test_fork_teardown_parent_first),
		HMMU_TEST(test_fork_teardown_child_first),
		HMMU_TEST(test_fork_protection_events),
		HMMU_TEST(test_fork_pinned_page_copied),
		HMMU_TEST(test_fork_thp_shared),
		HMMU_TEST(test_fork_thp_pinned),
		HMMU_TEST(test_fork_hugetlb),
		HMMU_TEST(test_fork_migration_entries),
		HMMU_TEST(test_fork_device_private),
		HMMU_TEST(test_fork_device_exclusive),
		HMMU_TEST(test_fork_device_exclusive_busy),
		HMMU_TEST(test_fork_dontfork),
		HMMU_TEST(test_fork_shared_anon),
		HMMU_TEST(test_fork_file_mappings),
		HMMU_TEST(test_fork_special_mappings),
	};

	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
