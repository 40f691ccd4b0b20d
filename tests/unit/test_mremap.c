// SPDX-License-Identifier: MIT
/*
 * Unit tests of hmmu_mremap(): shrink, grow in place, same size, moves
 * (to a free range or MREMAP_FIXED over a mapping), the argument and VMA
 * errors, the UNMAP invalidation of a move, moves inside one PTE table and
 * across PMD boundaries, the entries a move carries as they are (zero
 * page, migration and device-exclusive entries, special entries), the
 * anonymous reverse-map index, transparent huge pages (whole PMD move,
 * split on an unaligned or partial move), hugetlb and shared anonymous
 * mappings.
 *
 * Every test checks bytes and entries; the fixture validates the page
 * tables (nr_used, deposits, references) and that every page came back.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "notifier_rec.h"

#define PAGE HMMU_PAGE_SIZE
#define PMD HMMU_PMD_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define MiB (1UL << 20)
#define GiB (1UL << 30)
/* Fixed addresses, 2 MiB aligned; FAR lies under another PMD table. */
#define BASE 0x40000000UL
#define FAR (BASE + GiB)
#define MAYMOVE MREMAP_MAYMOVE
#define FIXED (MREMAP_MAYMOVE | MREMAP_FIXED)
#define HUGETLB (MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB)

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/*
 * Page tables are the library's only aligned_alloc() calls: this program
 * overrides it so that a test can make the next page-table allocations
 * fail.  pt_alloc_budget: allocations left before failing (-1: no limit).
 */
static int pt_alloc_budget = -1;

void *aligned_alloc(size_t align, size_t size)
{
	void *p;

	if (pt_alloc_budget == 0)
		return NULL;
	if (pt_alloc_budget > 0)
		pt_alloc_budget--;
	return posix_memalign(&p, align, size) ? NULL : p;
}

static unsigned long map_at(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot)
{
	return hmmu_test_map_at(mm, addr, len, prot, MAP_FIXED);
}

/* The byte at offset @off of a mapping filled with @salt. */
static unsigned char pat(unsigned long off, unsigned int salt)
{
	return (unsigned char)((off >> 12) * 37 + (off & 0xfff) * 7 + salt * 101 + 1);
}

/* Write the pattern @salt over [addr, addr + len). */
static void fill(struct hmmu_mm *mm, unsigned long addr, size_t len, unsigned int salt)
{
	unsigned char *buf = malloc(len);

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(i, salt);
	assert_int_equal(hmmu_access(mm, addr, buf, len, HMMU_ACCESS_WRITE), 0);
	free(buf);
}

/* [addr, addr + len) holds the pattern @salt, starting at its offset @off0. */
static void check_at(struct hmmu_mm *mm, unsigned long addr, size_t len, unsigned int salt, unsigned long off0)
{
	unsigned char *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(hmmu_access(mm, addr, buf, len, HMMU_ACCESS_READ), 0);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pat(off0 + i, salt)) {
			print_error("byte %#lx: %#x, want %#x\n", addr + i, buf[i], pat(off0 + i, salt));
			fail();
		}
	free(buf);
}

static void check(struct hmmu_mm *mm, unsigned long addr, size_t len, unsigned int salt)
{
	check_at(mm, addr, len, salt, 0);
}

/* [addr, addr + len) reads as zeros. */
static void check_zero(struct hmmu_mm *mm, unsigned long addr, size_t len)
{
	unsigned char *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(hmmu_access(mm, addr, buf, len, HMMU_ACCESS_READ), 0);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(buf[i], 0);
	free(buf);
}

static bool unmapped(struct hmmu_mm *mm, unsigned long addr)
{
	unsigned char c;

	return hmmu_access(mm, addr, &c, 1, HMMU_ACCESS_READ) == -EFAULT;
}

/* The frame a present entry maps at @addr (PTE or inside a PMD leaf); fails if none. */
static unsigned long pfn_at(struct hmmu_mm *mm, unsigned long addr)
{
	bool huge;
	hmmu_pte_t e = hmmu_test_leaf(mm, addr, &huge);

	assert_true(hmmu_pte_present(e));
	return hmmu_pte_pfn(e) + (huge ? (addr & ~HMMU_PMD_MASK) >> HMMU_PAGE_SHIFT : 0);
}

static struct hmmu_page *page_at(struct hmmu_mm *mm, unsigned long addr)
{
	return hmmu_pfn_to_page(pfn_at(mm, addr));
}

/* The VMA containing @addr, copied under the mmap_lock; false if none. */
static bool vma_at(struct hmmu_mm *mm, unsigned long addr, struct hmmu_vma *out)
{
	struct hmmu_vma *vma;

	hmmu_mmap_read_lock(mm);
	vma = hmmu_vma_lookup(mm, addr);
	if (vma)
		*out = *vma;
	hmmu_mmap_read_unlock(mm);
	return vma != NULL;
}

static void expect_vma(struct hmmu_mm *mm, unsigned long addr, unsigned long start, unsigned long end)
{
	struct hmmu_vma v = { 0 };

	assert_true(vma_at(mm, addr, &v));
	assert_int_equal(v.vm_start, start);
	assert_int_equal(v.vm_end, end);
}

/* Record the frames of @n pages from @addr. */
static void pfns_get(struct hmmu_mm *mm, unsigned long addr, unsigned long n, unsigned long *pfns)
{
	for (unsigned long i = 0; i < n; i++)
		pfns[i] = pfn_at(mm, addr + i * PAGE);
}

static void pfns_expect(struct hmmu_mm *mm, unsigned long addr, unsigned long n, const unsigned long *pfns)
{
	for (unsigned long i = 0; i < n; i++)
		assert_int_equal(pfn_at(mm, addr + i * PAGE), pfns[i]);
}

/* Every anon page of [addr, addr + n pages) sits where its index says (reverse-map invariant). */
static void expect_anon_index(struct hmmu_mm *mm, unsigned long addr, unsigned long n)
{
	struct hmmu_vma v = { 0 };

	for (unsigned long i = 0; i < n; i++) {
		struct hmmu_page *page = page_at(mm, addr + i * PAGE);

		assert_true(vma_at(mm, addr + i * PAGE, &v));
		assert_true(hmmu_page_is_anon(page));
		assert_int_equal(page->index, hmmu_linear_page_index(&v, addr + i * PAGE));
	}
}

/* A 2 MiB window at @h (2 MiB aligned) advised MADV_HUGEPAGE and written: one PMD leaf. */
static struct hmmu_page *map_thp(struct hmmu_mm *mm, unsigned long h, unsigned int salt)
{
	bool huge;
	hmmu_pte_t e;

	map_at(mm, h, PMD, RW);
	assert_int_equal(hmmu_madvise(mm, h, PMD, MADV_HUGEPAGE), 0);
	fill(mm, h, PMD, salt);
	e = hmmu_test_leaf(mm, h, &huge);
	assert_true(huge && hmmu_pmd_leaf(e));
	return hmmu_pfn_to_page(hmmu_pte_pfn(e));
}

/*
 * Leave an empty PTE table for @addr, where no VMA is.  No path of hmmu
 * leaves one behind today (unmaps free them), but an unmap of a range
 * without VMAs frees nothing, so a move must not rely on it.
 */
static void plant_empty_pte_table(struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_pt *pmd_pt;
	hmmu_pte_t *pmdp;
	int err = -ENOMEM;

	hmmu_mmap_write_lock(mm);
	pmdp = hmmu_pmd_lookup(mm, addr, true, &pmd_pt);
	if (pmdp)
		err = hmmu_pte_table_populate(mm, pmd_pt, pmdp);
	hmmu_mmap_write_unlock(mm);
	assert_int_equal(err, 0);
	assert_true(pmdp && hmmu_pte_table(hmmu_pte_read(pmdp)));
}

/* ------------------------------------------------------------------ */
/* Resizing                                                            */
/* ------------------------------------------------------------------ */

/* Growing with the space above taken moves: same bytes, same frames, same counts. */
static void test_move_keeps_data(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, 8 * PAGE, RW), n, pfns[8];
	int refs[8], maps[8];
	long free0, ret;

	map_at(mm, BASE + 8 * PAGE, PAGE, PROT_READ);	/* taken above: other flags, no merge */
	fill(mm, a, 8 * PAGE, 1);
	pfns_get(mm, a, 8, pfns);
	for (int i = 0; i < 8; i++) {
		refs[i] = hmmu_page_ref_count(page_at(mm, a + i * PAGE));
		maps[i] = hmmu_page_mapcount(page_at(mm, a + i * PAGE));
		assert_int_equal(refs[i], 1);
		assert_int_equal(maps[i], 1);
	}
	free0 = nr_free();
	ret = hmmu_mremap(mm, a, 8 * PAGE, 16 * PAGE, MAYMOVE, 0);
	assert_true(ret > 0);
	n = (unsigned long)ret;
	assert_int_not_equal(n, a);
	assert_int_equal(nr_free(), free0);	/* moved, not copied, nothing freed */
	check(mm, n, 8 * PAGE, 1);
	check_zero(mm, n + 8 * PAGE, 8 * PAGE);	/* the grown part is new memory */
	pfns_expect(mm, n, 8, pfns);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(hmmu_page_ref_count(page_at(mm, n + i * PAGE)), refs[i]);
		assert_int_equal(hmmu_page_mapcount(page_at(mm, n + i * PAGE)), maps[i]);
		assert_int_equal(hmmu_test_leaf(mm, a + i * PAGE, NULL), 0);
	}
	assert_true(unmapped(mm, a));
	assert_true(unmapped(mm, a + 7 * PAGE));
	expect_vma(mm, n, n, n + 16 * PAGE);
	expect_vma(mm, BASE + 8 * PAGE, BASE + 8 * PAGE, BASE + 9 * PAGE);
	assert_int_equal(stats(mm).nr_vmas, 2);
	assert_int_equal(stats(mm).present_pages, 8);
	assert_int_equal(stats(mm).zero_pages, 8);	/* the grown part, read */
}

/* The range above is free: the VMA grows where it is, and merges with the VMA above. */
static void test_grow_in_place(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, 4 * PAGE, RW), pfns[4];

	map_at(mm, BASE + 16 * PAGE, 4 * PAGE, RW);	/* compatible, never faulted */
	fill(mm, a, 4 * PAGE, 2);
	pfns_get(mm, a, 4, pfns);
	assert_int_equal(stats(mm).nr_vmas, 2);
	/* Not enough room without moving: */
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 17 * PAGE, 0, 0), -ENOMEM);
	expect_vma(mm, a, BASE, BASE + 4 * PAGE);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 8 * PAGE, 0, 0), (long)a);
	expect_vma(mm, a, BASE, BASE + 8 * PAGE);
	assert_int_equal(hmmu_mremap(mm, a, 8 * PAGE, 16 * PAGE, 0, 0), (long)a);
	expect_vma(mm, a, BASE, BASE + 20 * PAGE);	/* merged with the VMA above */
	assert_int_equal(stats(mm).nr_vmas, 1);
	pfns_expect(mm, a, 4, pfns);
	check(mm, a, 4 * PAGE, 2);
	check_zero(mm, a + 4 * PAGE, 16 * PAGE);
	fill(mm, a + 10 * PAGE, PAGE, 3);
	check(mm, a + 10 * PAGE, PAGE, 3);
}

/* Shrinking unmaps the tail and frees its pages; lengths round up to pages. */
static void test_shrink(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, 8 * PAGE, RW), pfns[3];
	long free0;

	fill(mm, a, 8 * PAGE, 4);
	pfns_get(mm, a, 3, pfns);
	free0 = nr_free();
	assert_int_equal(hmmu_mremap(mm, a, 8 * PAGE, 3 * PAGE, 0, 0), (long)a);
	assert_int_equal(nr_free(), free0 + 5);
	expect_vma(mm, a, BASE, BASE + 3 * PAGE);
	assert_true(unmapped(mm, a + 3 * PAGE));
	assert_true(unmapped(mm, a + 7 * PAGE));
	assert_int_equal(hmmu_test_leaf(mm, a + 3 * PAGE, NULL), 0);
	check(mm, a, 3 * PAGE, 4);
	pfns_expect(mm, a, 3, pfns);
	/* 3 pages - 100 bytes round up to 3 pages, a page + 1 byte to 2 pages. */
	assert_int_equal(hmmu_mremap(mm, a, 3 * PAGE - 100, PAGE + 1, MAYMOVE, 0), (long)a);
	assert_int_equal(nr_free(), free0 + 6);
	expect_vma(mm, a, BASE, BASE + 2 * PAGE);
	check(mm, a, 2 * PAGE, 4);
}

/* Same size, without MREMAP_FIXED: nothing changes, not even the VMA boundaries. */
static void test_same_size(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, 4 * PAGE, RW), pfns[4];
	long free0;

	fill(mm, a, 4 * PAGE, 5);
	pfns_get(mm, a, 4, pfns);
	free0 = nr_free();
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 4 * PAGE, 0, 0), (long)a);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 4 * PAGE, MAYMOVE, 0), (long)a);
	assert_int_equal(hmmu_mremap(mm, a + PAGE, 2 * PAGE, 2 * PAGE, 0, 0), (long)(a + PAGE));
	assert_int_equal(stats(mm).nr_vmas, 1);
	expect_vma(mm, a, BASE, BASE + 4 * PAGE);
	pfns_expect(mm, a, 4, pfns);
	check(mm, a, 4 * PAGE, 5);
	assert_int_equal(nr_free(), free0);
}

/* MREMAP_FIXED replaces what is at the destination (its pages freed); shrink and grow variants. */
static void test_fixed_replaces(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, 4 * PAGE, RW), b = map_at(mm, BASE + 64 * PAGE, 4 * PAGE, RW);
	unsigned long c = map_at(mm, BASE + 128 * PAGE, 8 * PAGE, RW), d = map_at(mm, BASE + 192 * PAGE, 2 * PAGE, RW);
	unsigned long pfns[4], to;
	long free0;

	fill(mm, a, 4 * PAGE, 6);
	fill(mm, b, 4 * PAGE, 7);
	fill(mm, c, 8 * PAGE, 8);
	fill(mm, d, 2 * PAGE, 9);
	pfns_get(mm, a, 4, pfns);
	free0 = nr_free();
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 4 * PAGE, FIXED, b), (long)b);
	assert_int_equal(nr_free(), free0 + 4);	/* b's pages */
	check(mm, b, 4 * PAGE, 6);
	pfns_expect(mm, b, 4, pfns);
	assert_true(unmapped(mm, a));
	/* Shrinking to a fixed address: the old tail is freed, the rest moves. */
	to = BASE + 256 * PAGE;
	pfns_get(mm, c, 3, pfns);
	assert_int_equal(hmmu_mremap(mm, c, 8 * PAGE, 3 * PAGE, FIXED, to), (long)to);
	assert_int_equal(nr_free(), free0 + 9);
	check(mm, to, 3 * PAGE, 8);
	pfns_expect(mm, to, 3, pfns);
	expect_vma(mm, to, to, to + 3 * PAGE);
	assert_true(unmapped(mm, to + 3 * PAGE));
	assert_true(unmapped(mm, c + 5 * PAGE));
	/* Growing to a fixed address that covers part of a VMA (b's upper half). */
	to = b + 2 * PAGE;
	pfns_get(mm, d, 2, pfns);
	assert_int_equal(hmmu_mremap(mm, d, 2 * PAGE, 6 * PAGE, FIXED, to), (long)to);
	assert_int_equal(nr_free(), free0 + 11);
	check(mm, to, 2 * PAGE, 9);
	pfns_expect(mm, to, 2, pfns);
	check_zero(mm, to + 2 * PAGE, 4 * PAGE);
	check(mm, b, 2 * PAGE, 6);	/* the part below stays */
	assert_true(unmapped(mm, d));
}

/* Every argument and VMA error, each leaving the mappings untouched. */
static void test_errors(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, 4 * PAGE, RW), top = HMMU_TASK_SIZE - 4 * PAGE, pfns[4];

	map_at(mm, BASE + 4 * PAGE, 4 * PAGE, PROT_READ);
	fill(mm, a, 4 * PAGE, 10);
	pfns_get(mm, a, 4, pfns);
	assert_int_equal(hmmu_mremap(NULL, a, PAGE, PAGE, 0, 0), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a + 1, PAGE, PAGE, MAYMOVE, 0), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 0, MAYMOVE, 0), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, 0, 4 * PAGE, MAYMOVE, 0), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, PAGE, PAGE, 4 /* MREMAP_DONTUNMAP */, FAR), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, PAGE, PAGE, -1, FAR), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, PAGE, PAGE, MREMAP_FIXED, FAR), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, PAGE, PAGE, FIXED, FAR + 1), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 4 * PAGE, FIXED, a + 2 * PAGE), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 4 * PAGE, FIXED, a - 2 * PAGE), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 4 * PAGE, FIXED, a), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, PAGE, 2 * PAGE, FIXED, HMMU_TASK_SIZE - PAGE), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, ~0UL, PAGE, MAYMOVE, 0), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, a, PAGE, HMMU_TASK_SIZE + PAGE, MAYMOVE, 0), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, HMMU_TASK_SIZE - PAGE, 2 * PAGE, PAGE, MAYMOVE, 0), -EINVAL);
	/* The old range must lie in one VMA. */
	assert_int_equal(hmmu_mremap(mm, a, 8 * PAGE, 8 * PAGE, MAYMOVE, 0), -EFAULT);
	assert_int_equal(hmmu_mremap(mm, a + 2 * PAGE, 4 * PAGE, 2 * PAGE, 0, 0), -EFAULT);
	assert_int_equal(hmmu_mremap(mm, FAR, PAGE, PAGE, MAYMOVE, 0), -EFAULT);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 4 * PAGE, FIXED, FAR), (long)FAR);	/* then back: */
	assert_int_equal(hmmu_mremap(mm, FAR, 4 * PAGE, 4 * PAGE, FIXED, a), (long)a);
	/* Growing without MREMAP_MAYMOVE where the space above is taken. */
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 5 * PAGE, 0, 0), -ENOMEM);
	/* ... or where it would leave the address space. */
	map_at(mm, top, 4 * PAGE, RW);
	fill(mm, top, PAGE, 11);
	assert_int_equal(hmmu_mremap(mm, top, 4 * PAGE, 8 * PAGE, 0, 0), -ENOMEM);
	assert_true(hmmu_mremap(mm, top, 4 * PAGE, 8 * PAGE, MAYMOVE, 0) > 0);
	assert_true(unmapped(mm, top));
	check(mm, a, 4 * PAGE, 10);
	pfns_expect(mm, a, 4, pfns);
	expect_vma(mm, a, BASE, BASE + 4 * PAGE);
	assert_int_equal(stats(mm).nr_vmas, 3);
}

/*
 * A destination page table that cannot be allocated fails the move with
 * -ENOMEM before anything moved: same entries, same VMAs (the split of the
 * old VMA merged back), no table left behind, no invalidation.
 */
static void test_move_enomem(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, 16 * PAGE, RW), pfns[16];
	static struct nr_sub s;	/* static: still valid if a failed assertion skips the unregister */
	unsigned long tables;

	fill(mm, a, 16 * PAGE, 25);
	pfns_get(mm, a, 16, pfns);
	tables = stats(mm).page_tables;
	nr_sub_init(&s, 1, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(&s.n, mm), 0);
	nr_reset();
	/* FAR needs a PMD table and a PTE table: fail the first, then the second. */
	for (int budget = 0; budget < 2; budget++) {
		pt_alloc_budget = budget;
		assert_int_equal(hmmu_mremap(mm, a + 4 * PAGE, 8 * PAGE, 8 * PAGE, FIXED, FAR), -ENOMEM);
		pt_alloc_budget = -1;
		assert_int_equal(stats(mm).page_tables, tables);
		assert_int_equal(stats(mm).nr_vmas, 1);
		expect_vma(mm, a, a, a + 16 * PAGE);
		pfns_expect(mm, a, 16, pfns);
		assert_true(unmapped(mm, FAR));
	}
	nr_expect_count(0);
	hmmu_notifier_unregister(&s.n, mm);
	check(mm, a, 16 * PAGE, 25);
	assert_int_equal(hmmu_mremap(mm, a + 4 * PAGE, 8 * PAGE, 8 * PAGE, FIXED, FAR), (long)FAR);
	pfns_expect(mm, FAR, 8, pfns + 4);
	check_at(mm, FAR, 8 * PAGE, 25, 4 * PAGE);
}

/* ------------------------------------------------------------------ */
/* The invalidation                                                    */
/* ------------------------------------------------------------------ */

/*
 * A move is one UNMAP invalidation of the old range, the secondary-TLB
 * hook under the source PTE lock, and nothing freed; then the unmap of the
 * (now empty) old range brackets it once more, with no zap hook.
 */
static void test_move_notifier_events(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, 8 * PAGE, RW), end = a + 8 * PAGE;
	static struct nr_sub s;	/* static: still valid if a failed assertion skips the unregister */
	long free0, n;

	map_at(mm, end, PAGE, PROT_READ);
	fill(mm, a, 3 * PAGE, 12);
	fill(mm, a + 6 * PAGE, PAGE, 12);
	nr_sub_init(&s, 1, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(&s.n, mm), 0);
	free0 = nr_free();
	nr_reset();
	nr_watch(mm, false);
	n = hmmu_mremap(mm, a, 8 * PAGE, 12 * PAGE, MAYMOVE, 0);
	assert_true(n > 0);
	nr_expect(0, NR_START, 1, a, end);
	nr_expect(1, NR_INV_RANGE, 1, a, end);
	nr_expect(2, NR_INV_RANGE, 1, a, end);
	nr_expect(3, NR_END, 1, a, end);
	nr_expect(4, NR_START, 1, a, end);
	nr_expect(5, NR_INV_RANGE, 1, a, end);
	nr_expect(6, NR_END, 1, a, end);
	nr_expect_count(7);
	assert_int_equal(nr_get(0).event, HMMU_NOTIFY_UNMAP);
	assert_int_equal(nr_get(3).event, HMMU_NOTIFY_UNMAP);
	assert_int_equal(nr_get(4).event, HMMU_NOTIFY_UNMAP);
	assert_int_equal(nr_get(6).event, HMMU_NOTIFY_UNMAP);
	assert_int_equal(nr_get(0).flags, HMMU_NOTIFIER_RANGE_BLOCKABLE);
	assert_null(nr_get(0).owner);
	assert_int_equal(nr_get(1).ptl, NR_PTL_PTE);	/* under the source table's lock */
	assert_int_equal(nr_get(2).ptl, NR_PTL_NONE);	/* from the end */
	assert_int_equal(nr_get(0).nr_free, free0);
	assert_int_equal(nr_get(3).nr_free, free0);
	assert_int_equal(nr_free(), free0);
	check(mm, (unsigned long)n, 3 * PAGE, 12);
	check_at(mm, (unsigned long)n + 6 * PAGE, PAGE, 12, 0);
	nr_reset();
	hmmu_notifier_unregister(&s.n, mm);
}

/* ------------------------------------------------------------------ */
/* Page-table layouts                                                  */
/* ------------------------------------------------------------------ */

/* Source and destination in one PTE table: no table allocated or freed. */
static void test_move_same_pte_table(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE + 8 * PAGE, 8 * PAGE, RW), pfns[8];
	unsigned long tables;

	fill(mm, a, 8 * PAGE, 13);
	pfns_get(mm, a, 8, pfns);
	tables = stats(mm).page_tables;
	assert_int_equal(hmmu_mremap(mm, a, 8 * PAGE, 8 * PAGE, FIXED, a + 24 * PAGE), (long)(a + 24 * PAGE));
	assert_int_equal(stats(mm).page_tables, tables);
	pfns_expect(mm, a + 24 * PAGE, 8, pfns);
	check(mm, a + 24 * PAGE, 8 * PAGE, 13);
	for (int i = 0; i < 8; i++)
		assert_int_equal(hmmu_test_leaf(mm, a + i * PAGE, NULL), 0);
	/* Right next to itself, and back down. */
	a += 24 * PAGE;
	assert_int_equal(hmmu_mremap(mm, a, 8 * PAGE, 8 * PAGE, FIXED, a + 8 * PAGE), (long)(a + 8 * PAGE));
	assert_int_equal(hmmu_mremap(mm, a + 8 * PAGE, 8 * PAGE, 8 * PAGE, FIXED, a), (long)a);
	pfns_expect(mm, a, 8, pfns);
	check(mm, a, 8 * PAGE, 13);
	assert_int_equal(stats(mm).page_tables, tables);
	assert_int_equal(stats(mm).present_pages, 8);
	expect_anon_index(mm, a, 8);
}

/* A 700-page mapping over three PMD slots moves to another PMD table, misaligned by 53 pages. */
static void test_move_cross_pmd(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	const unsigned long np = 700;
	unsigned long a = map_at(mm, BASE + PMD - 50 * PAGE, np * PAGE, RW), to = FAR + 3 * PAGE;
	unsigned long *pfns = malloc(np * sizeof(*pfns));
	struct hmmu_mm_stats st;

	assert_non_null(pfns);
	fill(mm, a, np * PAGE, 14);
	pfns_get(mm, a, np, pfns);
	assert_int_equal(stats(mm).page_tables, 5);	/* PUD, PMD, 3 PTE tables */
	assert_int_equal(hmmu_mremap(mm, a, np * PAGE, np * PAGE, FIXED, to), (long)to);
	pfns_expect(mm, to, np, pfns);
	check(mm, to, np * PAGE, 14);
	st = stats(mm);
	assert_int_equal(st.present_pages, np);
	/* The source PMD table and its PTE tables are gone; the destination needs two. */
	assert_int_equal(st.page_tables, 4);
	assert_true(unmapped(mm, a));
	expect_anon_index(mm, to, np);
	/* And back to a free range of its own choosing, grown. */
	a = (unsigned long)hmmu_mremap(mm, to, np * PAGE, (np + 1) * PAGE, MAYMOVE, 0);
	assert_true((long)a > 0);
	pfns_expect(mm, a, np, pfns);
	check(mm, a, np * PAGE, 14);
	expect_anon_index(mm, a, np);
	free(pfns);
}

/*
 * A moved run of empty entries whose source table holds entries elsewhere
 * needs no destination table (found by the fuzz target: the move looked
 * one up and hit a BUG_ON).
 */
static void test_move_empty_run(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, PMD, RW), to;

	assert_int_equal(get_byte(mm, a + 20 * PAGE), 0);	/* the table holds a zero-page entry */
	to = (unsigned long)hmmu_mremap(mm, a + 100 * PAGE, PAGE, 21 * PAGE, MAYMOVE, 0);
	assert_true((long)to > 0 && to != a + 100 * PAGE);
	assert_int_equal(get_byte(mm, to), 0);
	assert_int_equal(get_byte(mm, to + 20 * PAGE), 0);
	assert_true(unmapped(mm, a + 100 * PAGE));
}

/* ------------------------------------------------------------------ */
/* Entries moved as they are                                           */
/* ------------------------------------------------------------------ */

/* Zero-page entries move (still the zero page, nothing allocated), beside real pages. */
static void test_move_zero_pages(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, 8 * PAGE, RW), to = FAR + 100 * PAGE;
	unsigned long zero = hmmu_page_to_pfn(hmmu_zero_page()), pfn2;
	long free0;

	check_zero(mm, a, 8 * PAGE);	/* read faults: zero page everywhere */
	fill(mm, a + 2 * PAGE, PAGE, 15);
	pfn2 = pfn_at(mm, a + 2 * PAGE);
	assert_int_equal(stats(mm).zero_pages, 7);
	free0 = nr_free();
	assert_int_equal(hmmu_mremap(mm, a, 8 * PAGE, 8 * PAGE, FIXED, to), (long)to);
	assert_int_equal(nr_free(), free0);
	for (int i = 0; i < 8; i++)
		if (i != 2)
			assert_int_equal(pfn_at(mm, to + i * PAGE), zero);
	assert_int_equal(pfn_at(mm, to + 2 * PAGE), pfn2);
	assert_int_equal(stats(mm).zero_pages, 7);
	check(mm, to + 2 * PAGE, PAGE, 15);
	/* A write still copies the zero page. */
	fill(mm, to + 5 * PAGE, PAGE, 16);
	assert_int_not_equal(pfn_at(mm, to + 5 * PAGE), zero);
	assert_int_equal(stats(mm).zero_pages, 6);
}

/* Replace the present PTE at @addr by @type's typed entry for the same frame; returns the old entry. */
static hmmu_pte_t make_typed(struct hmmu_mm *mm, unsigned long addr, enum hmmu_swp_type type)
{
	struct hmmu_pt *pt;
	bool huge = true;
	hmmu_pte_t *ep, old;
	struct hmmu_swp_entry se;

	hmmu_mmap_read_lock(mm);
	ep = hmmu_leaf_lookup_lock(mm, addr, &pt, &huge);
	assert_non_null(ep);
	assert_false(huge);
	old = hmmu_pte_read(ep);
	assert_true(hmmu_pte_present(old));
	se = hmmu_make_swp_entry(type, hmmu_pte_pfn(old));
	se.dirty = hmmu_is_migration_entry(se);
	hmmu_pte_set(pt, ep, hmmu_swp_entry_to_pte(se));
	hmmu_pt_unlock(pt);
	hmmu_mmap_read_unlock(mm);
	return old;
}

/* Put the present entry @val back at @addr, over the typed entry there. */
static void restore_present(struct hmmu_mm *mm, unsigned long addr, hmmu_pte_t val)
{
	struct hmmu_pt *pt;
	bool huge = true;
	hmmu_pte_t *ep;

	hmmu_mmap_read_lock(mm);
	ep = hmmu_leaf_lookup_lock(mm, addr, &pt, &huge);
	assert_non_null(ep);
	assert_false(huge || hmmu_pte_present(hmmu_pte_read(ep)));
	hmmu_pte_set(pt, ep, val);
	hmmu_pt_unlock(pt);
	hmmu_mmap_read_unlock(mm);
}

/* The typed entry at @addr: its type and frame. */
static void expect_typed(struct hmmu_mm *mm, unsigned long addr, enum hmmu_swp_type type, unsigned long pfn)
{
	hmmu_pte_t e = hmmu_test_leaf(mm, addr, NULL);
	struct hmmu_swp_entry se;

	assert_false(hmmu_pte_none(e) || hmmu_pte_present(e));
	se = hmmu_pte_to_swp_entry(e);
	assert_int_equal(se.type, type);
	assert_int_equal(se.pfn, pfn);
}

/*
 * A migration entry (no reference, no mapcount; the page locked) and a
 * device-exclusive entry (the mapping's reference, no mapcount) move with
 * the range, keeping what they hold.
 */
static void test_move_typed_entries(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, 8 * PAGE, RW), n, pmig, pexc;
	struct hmmu_page *mig, *exc;
	hmmu_pte_t mig_pte, exc_pte;
	long free0;

	map_at(mm, BASE + 8 * PAGE, PAGE, PROT_READ);
	fill(mm, a, 8 * PAGE, 17);
	mig = page_at(mm, a + 2 * PAGE);
	exc = page_at(mm, a + 5 * PAGE);
	pmig = hmmu_page_to_pfn(mig);
	pexc = hmmu_page_to_pfn(exc);
	/* Migration: our reference keeps the page; the entry's goes. */
	hmmu_get_page(mig);
	hmmu_lock_page(mig);
	mig_pte = make_typed(mm, a + 2 * PAGE, HMMU_SWP_MIGRATION_WRITE);
	hmmu_page_remove_rmap(mig, false);
	hmmu_put_page(mig);
	/* Device-exclusive: the entry keeps the reference, gives up the mapcount. */
	exc_pte = make_typed(mm, a + 5 * PAGE, HMMU_SWP_DEVICE_EXCLUSIVE_WRITE);
	hmmu_page_remove_rmap(exc, false);
	assert_int_equal(stats(mm).nonpresent_entries, 2);
	free0 = nr_free();
	n = (unsigned long)hmmu_mremap(mm, a, 8 * PAGE, 12 * PAGE, MAYMOVE, 0);
	assert_true((long)n > 0 && n != a);
	assert_int_equal(nr_free(), free0);
	expect_typed(mm, n + 2 * PAGE, HMMU_SWP_MIGRATION_WRITE, pmig);
	expect_typed(mm, n + 5 * PAGE, HMMU_SWP_DEVICE_EXCLUSIVE_WRITE, pexc);
	assert_true(hmmu_pte_to_swp_entry(hmmu_test_leaf(mm, n + 2 * PAGE, NULL)).dirty);
	assert_int_equal(hmmu_test_leaf(mm, a + 2 * PAGE, NULL), 0);
	assert_int_equal(hmmu_page_ref_count(mig), 1);
	assert_int_equal(hmmu_page_mapcount(mig), 0);
	assert_int_equal(hmmu_page_ref_count(exc), 1);
	assert_int_equal(hmmu_page_mapcount(exc), 0);
	assert_true(hmmu_page_locked(mig));
	assert_int_equal(stats(mm).nonpresent_entries, 2);
	/* Restore both by hand: the entry takes back a reference and a mapcount (exclusive: a mapcount). */
	hmmu_get_page(mig);
	atomic_fetch_add(&mig->_mapcount, 1);
	restore_present(mm, n + 2 * PAGE, mig_pte);
	hmmu_unlock_page(mig);
	hmmu_put_page(mig);
	atomic_fetch_add(&exc->_mapcount, 1);
	restore_present(mm, n + 5 * PAGE, exc_pte);
	check(mm, n, 8 * PAGE, 17);
	assert_int_equal(stats(mm).nonpresent_entries, 0);
	expect_anon_index(mm, n, 8);
}

/* The moved part of a VMA keeps each anon page's index: linear_page_index(new_vma, addr) == index. */
static void test_move_anon_index(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_at(mm, BASE, 16 * PAGE, RW), to = FAR + 7 * PAGE;
	unsigned long idx[4];
	struct hmmu_vma v = { 0 };

	fill(mm, a, 16 * PAGE, 18);
	for (int i = 0; i < 4; i++)
		idx[i] = page_at(mm, a + (4 + i) * PAGE)->index;
	assert_int_equal(hmmu_mremap(mm, a + 4 * PAGE, 4 * PAGE, 4 * PAGE, FIXED, to), (long)to);
	assert_true(vma_at(mm, to, &v));
	assert_int_equal(v.vm_pgoff, (a >> HMMU_PAGE_SHIFT) + 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(page_at(mm, to + i * PAGE)->index, idx[i]);
	expect_anon_index(mm, to, 4);
	expect_anon_index(mm, a, 4);
	expect_anon_index(mm, a + 8 * PAGE, 8);
	expect_vma(mm, a, a, a + 4 * PAGE);
	expect_vma(mm, a + 8 * PAGE, a + 8 * PAGE, a + 16 * PAGE);
	assert_true(unmapped(mm, a + 4 * PAGE));
	/* Moved back into its hole, it merges with both neighbours again. */
	assert_int_equal(hmmu_mremap(mm, to, 4 * PAGE, 4 * PAGE, FIXED, a + 4 * PAGE), (long)(a + 4 * PAGE));
	expect_vma(mm, a, a, a + 16 * PAGE);
	assert_int_equal(stats(mm).nr_vmas, 1);
	expect_anon_index(mm, a, 16);
	check(mm, a, 16 * PAGE, 18);
}

static int pfnmap_hook(struct hmmu_vma *vma, void *arg)
{
	return hmmu_remap_pfn_range(vma, vma->vm_start, *(unsigned long *)arg, vma->vm_end - vma->vm_start);
}

/* A PFNMAP mapping moves its special entries, but may not grow (-EFAULT). */
static void test_move_pfnmap(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_page *frames = hmmu_alloc_pages(HMMU_GFP_ZERO, 2);
	unsigned long pfn, a;
	hmmu_pte_t e;

	assert_non_null(frames);
	pfn = hmmu_page_to_pfn(frames);
	for (unsigned long i = 0; i < 4 * PAGE; i++)
		((unsigned char *)hmmu_page_address(frames))[i] = pat(i, 19);
	a = (unsigned long)hmmu_mmap_special(mm, BASE, 4 * PAGE, RW, MAP_SHARED | MAP_FIXED, 0, pfnmap_hook, &pfn);
	assert_int_equal(a, BASE);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 8 * PAGE, MAYMOVE, 0), -EFAULT);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 8 * PAGE, FIXED, FAR), -EFAULT);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 4 * PAGE, FIXED, FAR), (long)FAR);
	for (unsigned long i = 0; i < 4; i++) {
		e = hmmu_test_leaf(mm, FAR + i * PAGE, NULL);
		assert_true(hmmu_pte_present(e) && hmmu_pte_special(e));
		assert_int_equal(hmmu_pte_pfn(e), pfn + i);
	}
	assert_int_equal(hmmu_page_ref_count(frames), 1);
	check(mm, FAR, 4 * PAGE, 19);
	assert_true(unmapped(mm, a));
	/* Shrinking is fine. */
	assert_int_equal(hmmu_mremap(mm, FAR, 4 * PAGE, PAGE, 0, 0), (long)FAR);
	assert_int_equal(hmmu_test_leaf(mm, FAR + PAGE, NULL), 0);
	assert_int_equal(hmmu_munmap(mm, FAR, PAGE), 0);
	hmmu_free_pages(frames, 2);
}

/* ------------------------------------------------------------------ */
/* Transparent huge pages                                              */
/* ------------------------------------------------------------------ */

/*
 * Aligned moves carry the PMD leaf whole, with its deposit, across and
 * within PMD tables, and over an empty PTE table left at the destination.
 */
static void test_thp_aligned_move(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_page *head = map_thp(mm, BASE, 20);
	unsigned long pfn = hmmu_page_to_pfn(head), to = FAR, to2 = FAR + 2 * PMD, to3 = FAR + 6 * PMD;
	struct hmmu_mm_stats st;
	bool huge;
	long free0 = nr_free();

	assert_int_equal(hmmu_mremap(mm, BASE, PMD, PMD, FIXED, to), (long)to);
	assert_int_equal(hmmu_pte_pfn(hmmu_test_leaf(mm, to, &huge)), pfn);
	assert_true(huge);
	st = stats(mm);
	assert_int_equal(st.huge_pmds, 1);
	assert_int_equal(st.page_tables, 2);	/* PUD + the new PMD table; the old one freed */
	assert_int_equal(hmmu_pt_validate(mm), 0);	/* one deposit with the leaf */
	assert_int_equal(hmmu_page_ref_count(head), 1);
	assert_int_equal(atomic_load(&head->_entire_mapcount), 1);
	/* Within the same PMD table. */
	assert_int_equal(hmmu_mremap(mm, to, PMD, PMD, FIXED, to2), (long)to2);
	assert_int_equal(hmmu_pte_pfn(hmmu_test_leaf(mm, to2, &huge)), pfn);
	assert_true(huge);
	assert_int_equal(hmmu_test_leaf(mm, to, NULL), 0);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	assert_int_equal(stats(mm).page_tables, 2);
	/* Onto an empty PTE table left at the destination: it gives way. */
	plant_empty_pte_table(mm, to3);
	assert_int_equal(stats(mm).page_tables, 3);
	assert_int_equal(hmmu_mremap(mm, to2, PMD, PMD, FIXED, to3), (long)to3);
	assert_int_equal(hmmu_pte_pfn(hmmu_test_leaf(mm, to3, &huge)), pfn);
	assert_true(huge);
	assert_int_equal(stats(mm).page_tables, 2);
	assert_int_equal(nr_free(), free0);
	check(mm, to3, PMD, 20);
	expect_anon_index(mm, to3, 1);	/* the head's index stands for the whole leaf */
	/* Still a THP: a whole-range unmap frees it in one go. */
	assert_int_equal(hmmu_munmap(mm, to3, PMD), 0);
	assert_int_equal(nr_free(), free0 + 512);
}

/* An unaligned destination splits the leaf; every byte and frame follows. */
static void test_thp_unaligned_move(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_page *head = map_thp(mm, BASE, 21);
	unsigned long pfn = hmmu_page_to_pfn(head), to = FAR + 5 * PAGE;
	struct hmmu_mm_stats st;
	bool huge;
	long free0 = nr_free();

	assert_int_equal(hmmu_mremap(mm, BASE, PMD, PMD, FIXED, to), (long)to);
	for (unsigned long i = 0; i < 512; i++) {
		assert_int_equal(hmmu_pte_pfn(hmmu_test_leaf(mm, to + i * PAGE, &huge)), pfn + i);
		assert_false(huge);
		assert_int_equal(hmmu_page_mapcount(head + i), 1);
	}
	st = stats(mm);
	assert_int_equal(st.huge_pmds, 0);
	assert_int_equal(st.present_pages, 512);
	assert_int_equal(st.page_tables, 4);	/* PUD, PMD, two PTE tables */
	assert_int_equal(hmmu_page_ref_count(head), 512);
	assert_int_equal(atomic_load(&head->_entire_mapcount), 0);
	assert_int_equal(nr_free(), free0);
	check(mm, to, PMD, 21);
	expect_anon_index(mm, to, 512);
}

/* Shrinking into the middle of a THP, then moving a part of it, split it and keep every other byte. */
static void test_thp_partial(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_page *head = map_thp(mm, BASE, 22);
	unsigned long pfn = hmmu_page_to_pfn(head), keep = 259;
	long free0 = nr_free();

	assert_int_equal(hmmu_mremap(mm, BASE, PMD, keep * PAGE, 0, 0), (long)BASE);
	assert_int_equal(stats(mm).huge_pmds, 0);
	assert_int_equal(stats(mm).present_pages, keep);
	assert_int_equal(nr_free(), free0);	/* the compound page is still partly mapped */
	assert_int_equal(hmmu_page_ref_count(head), (int)keep);
	assert_true(unmapped(mm, BASE + keep * PAGE));
	check(mm, BASE, keep * PAGE, 22);
	/* Move pages [100, 150) away. */
	assert_int_equal(hmmu_mremap(mm, BASE + 100 * PAGE, 50 * PAGE, 50 * PAGE, FIXED, FAR), (long)FAR);
	for (unsigned long i = 0; i < 50; i++)
		assert_int_equal(pfn_at(mm, FAR + i * PAGE), pfn + 100 + i);
	check_at(mm, FAR, 50 * PAGE, 22, 100 * PAGE);
	check(mm, BASE, 100 * PAGE, 22);
	check_at(mm, BASE + 150 * PAGE, (keep - 150) * PAGE, 22, 150 * PAGE);
	assert_true(unmapped(mm, BASE + 100 * PAGE));
	assert_int_equal(hmmu_page_ref_count(head), (int)keep);
	expect_anon_index(mm, FAR, 50);
	expect_anon_index(mm, BASE + 150 * PAGE, keep - 150);
	assert_int_equal(nr_free(), free0);
}

/* ------------------------------------------------------------------ */
/* Hugetlb and shared anonymous memory                                 */
/* ------------------------------------------------------------------ */

/* Hugetlb: every address and length 2 MiB aligned; aligned resizes and moves work (no faults needed). */
static void test_hugetlb_alignment(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long h = hmmu_mmap(mm, BASE, 4 * MiB, RW, HUGETLB | MAP_FIXED, -1, 0), n;

	assert_int_equal(h, (long)BASE);
	assert_int_equal(hmmu_mremap(mm, BASE + PAGE, PMD, PMD, MAYMOVE, 0), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, BASE, MiB, MiB, MAYMOVE, 0), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, BASE, PMD, 3 * MiB, MAYMOVE, 0), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, BASE, 4 * MiB, 3 * MiB, 0, 0), -EINVAL);
	assert_int_equal(hmmu_mremap(mm, BASE, PMD, PMD, FIXED, FAR + PAGE), -EINVAL);
	expect_vma(mm, BASE, BASE, BASE + 4 * MiB);
	assert_int_equal(hmmu_mremap(mm, BASE, 4 * MiB, PMD, 0, 0), (long)BASE);
	expect_vma(mm, BASE, BASE, BASE + PMD);
	assert_int_equal(hmmu_mremap(mm, BASE, PMD, 3 * PMD, 0, 0), (long)BASE);
	expect_vma(mm, BASE, BASE, BASE + 3 * PMD);
	assert_int_equal(hmmu_mremap(mm, BASE, 3 * PMD, 3 * PMD, FIXED, FAR), (long)FAR);
	expect_vma(mm, FAR, FAR, FAR + 3 * PMD);
	map_at(mm, FAR + 3 * PMD, PAGE, PROT_READ);
	n = hmmu_mremap(mm, FAR, 3 * PMD, 4 * PMD, MAYMOVE, 0);
	assert_true(n > 0);
	assert_int_equal(n & (long)(PMD - 1), 0);
	expect_vma(mm, (unsigned long)n, (unsigned long)n, (unsigned long)n + 4 * PMD);
	assert_true(unmapped(mm, FAR));
}

/* Hugetlb: a faulted 2 MiB page moves whole (no deposit), same frame and bytes. */
static void test_hugetlb_move(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long h = hmmu_mmap(mm, BASE, PMD, RW, HUGETLB | MAP_FIXED, -1, 0), n;
	unsigned long pfn;
	bool huge;

	assert_int_equal(h, (long)BASE);
	fill(mm, BASE, PMD, 23);	/* needs the hugetlb fault path */
	pfn = hmmu_pte_pfn(hmmu_test_leaf(mm, BASE, &huge));
	assert_true(huge);
	assert_int_equal(hmmu_mremap(mm, BASE, PMD, PMD, FIXED, FAR), (long)FAR);
	assert_int_equal(hmmu_pte_pfn(hmmu_test_leaf(mm, FAR, &huge)), pfn);
	assert_true(huge);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	check(mm, FAR, PMD, 23);
	map_at(mm, FAR + PMD, PAGE, PROT_READ);
	n = hmmu_mremap(mm, FAR, PMD, 2 * PMD, MAYMOVE, 0);
	assert_true(n > 0);
	assert_int_equal(hmmu_pte_pfn(hmmu_test_leaf(mm, (unsigned long)n, &huge)), pfn);
	assert_true(huge);
	check(mm, (unsigned long)n, PMD, 23);
	assert_true(unmapped(mm, FAR));
}

/* Shared anonymous memory: the shmem pages move, their file index matches the new VMA. */
static void test_shared_anon_move(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long a = hmmu_mmap(mm, BASE, 8 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0), n;
	unsigned long pfns[8];
	struct hmmu_vma v = { 0 };

	assert_int_equal(a, (long)BASE);	/* needs shmem */
	map_at(mm, BASE + 8 * PAGE, PAGE, PROT_READ);
	fill(mm, BASE, 8 * PAGE, 24);
	pfns_get(mm, BASE, 8, pfns);
	n = hmmu_mremap(mm, BASE, 8 * PAGE, 8 * PAGE, FIXED, FAR);
	assert_int_equal(n, (long)FAR);
	pfns_expect(mm, FAR, 8, pfns);
	check(mm, FAR, 8 * PAGE, 24);
	assert_true(vma_at(mm, FAR, &v));
	assert_true(v.vm_flags & HMMU_VM_SHARED);
	assert_non_null(v.vm_file);
	for (unsigned long i = 0; i < 8; i++)
		assert_int_equal(page_at(mm, FAR + i * PAGE)->index, hmmu_linear_page_index(&v, FAR + i * PAGE));
	assert_true(unmapped(mm, BASE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_move_keeps_data),
		HMMU_TEST(test_grow_in_place),
		HMMU_TEST(test_shrink),
		HMMU_TEST(test_same_size),
		HMMU_TEST(test_fixed_replaces),
		HMMU_TEST(test_errors),
		HMMU_TEST(test_move_enomem),
		HMMU_TEST(test_move_notifier_events),
		HMMU_TEST(test_move_same_pte_table),
		HMMU_TEST(test_move_cross_pmd),
		HMMU_TEST(test_move_empty_run),
		HMMU_TEST(test_move_zero_pages),
		HMMU_TEST(test_move_typed_entries),
		HMMU_TEST(test_move_anon_index),
		HMMU_TEST(test_move_pfnmap),
		HMMU_TEST(test_thp_aligned_move),
		HMMU_TEST(test_thp_unaligned_move),
		HMMU_TEST(test_thp_partial),
		HMMU_TEST(test_hugetlb_alignment),
		HMMU_TEST(test_hugetlb_move),
		HMMU_TEST(test_shared_anon_move),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
