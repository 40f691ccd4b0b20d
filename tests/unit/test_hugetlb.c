// SPDX-License-Identifier: MIT
/*
 * Unit tests of hugetlb mappings (src/mm/hugetlb.c): placement, read and
 * write faults at PMD level, data through hmmu_access, VMA splits at and
 * inside 2 MiB boundaries, MADV_DONTNEED, copy-on-write of a shared huge
 * page (with its invalidation), reuse of an exclusive one, an exhausted
 * huge-page supply, GUP and pins, concurrent faults.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "notifier_rec.h"

#define PAGE HMMU_PAGE_SIZE
#define HPAGE HMMU_PMD_SIZE
#define MiB (1UL << 20)
#define RW (PROT_READ | PROT_WRITE)
#define HUGE_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB)

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
static long map_huge(struct hmmu_mm *mm, unsigned long hint, size_t len, int flags)
{
	return hmmu_mmap(mm, hint, len, RW, HUGE_FLAGS | flags, -1, 0);
}

/* A 2 MiB-aligned hugetlb mapping of @len bytes, or fail the test. */
static unsigned long map_huge_ok(struct hmmu_mm *mm, size_t len)
{
	long a = map_huge(mm, 0, len, 0);

	assert_true(a > 0);
	assert_int_equal((unsigned long)a & (HPAGE - 1), 0);
	return (unsigned long)a;
}

/* @len random bytes written at @addr; returns them (free them). */
static unsigned char *fill_random(struct hmmu_mm *mm, unsigned long addr, size_t len, uint64_t seed)
{
	unsigned char *buf = malloc(len);
	uint64_t rs = hmmu_test_seed() ^ seed;

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)hmmu_test_rand(&rs);
	put_bytes(mm, addr, buf, len);
	return buf;
}

static bool all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* The head of the 2 MiB page a PMD leaf maps at @addr (fails if there is none); *@ep: the leaf. */
static struct hmmu_page *leaf_head(struct hmmu_mm *mm, unsigned long addr, hmmu_pte_t *ep)
{
	bool huge;
	hmmu_pte_t e = hmmu_test_leaf(mm, addr, &huge);

	assert_true(huge);
	assert_true(hmmu_pmd_leaf(e));
	if (ep)
		*ep = e;
	return hmmu_pfn_to_page(hmmu_pte_pfn(e));
}

/* A mapped huge page: order 9, mapped once by a PMD, with @refs references. */
static void assert_huge_page(struct hmmu_page *head, int refs)
{
	assert_true(hmmu_page_test_flag(head, HMMU_PG_head));
	assert_int_equal(hmmu_compound_order(head), HMMU_PMD_ORDER);
	assert_int_equal(atomic_load(&head->_entire_mapcount), 1);
	assert_int_equal(hmmu_page_ref_count(head), refs);
	assert_true(hmmu_page_is_anon(head));
	assert_int_equal(hmmu_page_mapcount(head + 100), 1);
	assert_int_equal(atomic_load(&head->_mapcount), 0);
}

static long gup_or_pin(struct hmmu_mm *mm, unsigned long start, unsigned long nr, unsigned int flags,
		struct hmmu_page **pages, bool pin)
{
	long ret;

	hmmu_mmap_read_lock(mm);
	ret = pin ? hmmu_pin_user_pages_remote(mm, start, nr, flags, pages)
		  : hmmu_get_user_pages_remote(mm, start, nr, flags, pages);
	hmmu_mmap_read_unlock(mm);
	return ret;
}

/* The VMA covering @addr: its bounds and flags (fails if none). */
static struct hmmu_vma vma_at(struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_vma copy = { 0 }, *vma;

	hmmu_mmap_read_lock(mm);
	vma = hmmu_vma_lookup(mm, addr);
	if (vma)
		copy = *vma;
	hmmu_mmap_read_unlock(mm);
	assert_non_null(vma);
	return copy;
}

/*
 * Pretend a second process maps the page (what fork will do): one more
 * reference and entire mapcount, and the page no longer anon-exclusive.
 * The leaf must be read-only first (mprotect), as fork makes it.
 */
static void share_by_hand(struct hmmu_page *head)
{
	hmmu_get_page(head);
	atomic_fetch_add(&head->_entire_mapcount, 1);
	hmmu_page_clear_flag(head, HMMU_PG_anon_exclusive);
}

/* The pretend second process goes away. */
static void unshare_by_hand(struct hmmu_page *head)
{
	hmmu_page_remove_rmap(head, true);
	hmmu_put_page(head);
}

/* Write-protect the leaves of [a, a + len) and make the VMA writable again. */
static void write_protect(struct hmmu_mm *mm, unsigned long a, size_t len)
{
	assert_int_equal(hmmu_mprotect(mm, a, len, PROT_READ), 0);
	assert_int_equal(hmmu_mprotect(mm, a, len, RW), 0);
	assert_false(hmmu_pte_write(hmmu_test_leaf(mm, a, NULL)));
}

/* ------------------------------------------------------------------ */
/* Placement                                                           */
/* ------------------------------------------------------------------ */

/* Hugetlb mappings start 2 MiB aligned, with or without a hint; lengths round up to 2 MiB. */
static void test_hugetlb_mmap_placement(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_huge_ok(mm, 4 * MiB), b, c;
	struct hmmu_vma v = vma_at(mm, a);
	long r;

	assert_int_equal(v.vm_start, a);
	assert_int_equal(v.vm_end, a + 4 * MiB);
	assert_true(v.vm_flags & HMMU_VM_HUGETLB);
	/* An unaligned hint: the mapping still starts on a 2 MiB boundary. */
	r = map_huge(mm, a + 16 * MiB + 3 * PAGE, 4 * MiB, 0);
	assert_true(r > 0);
	b = (unsigned long)r;
	assert_int_equal(b & (HPAGE - 1), 0);
	/* An aligned free hint is taken as is. */
	r = map_huge(mm, a + 32 * MiB, 2 * MiB, 0);
	assert_int_equal(r, (long)(a + 32 * MiB));
	/* An unaligned length is rounded up to whole 2 MiB pages. */
	c = map_huge_ok(mm, 3 * MiB + 1);
	v = vma_at(mm, c);
	assert_int_equal(v.vm_end - v.vm_start, 4 * MiB);
	/* Fixed addresses must be aligned; shared hugetlb is refused. */
	assert_int_equal(map_huge(mm, a + 64 * MiB + PAGE, HPAGE, MAP_FIXED), -EINVAL);
	assert_int_equal(map_huge(mm, a + 64 * MiB, HPAGE, MAP_FIXED), (long)(a + 64 * MiB));
	assert_int_equal(hmmu_mmap(mm, 0, HPAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0),
			 -EOPNOTSUPP);
	/* Nothing is allocated before a fault. */
	assert_int_equal(stats(mm).present_pages, 0);
	assert_int_equal(stats(mm).nr_vmas, 5);
	assert_int_equal(stats(mm).mapped_bytes, 16 * MiB);
}

/* ------------------------------------------------------------------ */
/* Faults                                                              */
/* ------------------------------------------------------------------ */

/* A read fault maps a read-only 2 MiB leaf of zeros (a real page, not the zero page). */
static void test_hugetlb_read_fault(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_ok(mm, 4 * MiB);
	long free0 = nr_free();
	unsigned char *buf = malloc(HPAGE);
	struct hmmu_mm_stats st;
	struct hmmu_page *head;
	hmmu_pte_t e;
	unsigned char v = 0x42;

	assert_non_null(buf);
	get_bytes(mm, h + 12345, buf, 1);
	assert_int_equal(buf[0], 0);
	head = leaf_head(mm, h + 7 * PAGE, &e);
	assert_false(hmmu_pte_write(e));
	assert_false(hmmu_is_zero_pfn(hmmu_pte_pfn(e)));
	assert_huge_page(head, 1);
	assert_true(hmmu_page_test_flag(head, HMMU_PG_anon_exclusive));
	assert_int_equal(nr_free(), free0 - 512);
	st = stats(mm);
	assert_int_equal(st.huge_pmds, 1);
	assert_int_equal(st.present_pages, 512);
	assert_int_equal(st.zero_pages, 0);
	assert_int_equal(st.zero_page_faults, 0);
	assert_int_equal(st.page_tables, 2);	/* PUD and PMD tables, no PTE table */
	assert_int_equal(hmmu_test_leaf(mm, h + HPAGE, NULL), 0);
	get_bytes(mm, h, buf, HPAGE);
	assert_true(all_zero(buf, HPAGE));
	/* A write then takes the exclusive page over: no copy. */
	put_bytes(mm, h + 5, &v, 1);
	assert_ptr_equal(leaf_head(mm, h, &e), head);
	assert_true(hmmu_pte_write(e) && hmmu_pte_dirty(e));
	assert_int_equal(stats(mm).cow_faults, 0);
	assert_int_equal(nr_free(), free0 - 512);
	assert_int_equal(((unsigned char *)hmmu_page_address(head))[5], v);
	free(buf);
}

/* A write fault maps a writable, dirty 2 MiB leaf. */
static void test_hugetlb_write_fault(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_ok(mm, 4 * MiB);
	long free0 = nr_free();
	struct hmmu_page *head;
	hmmu_pte_t e;
	unsigned char v = 0x77;

	put_bytes(mm, h + HPAGE + 4321, &v, 1);
	head = leaf_head(mm, h + HPAGE, &e);
	assert_true(hmmu_pte_write(e) && hmmu_pte_dirty(e) && hmmu_pte_young(e));
	assert_false(hmmu_pte_special(e));
	assert_huge_page(head, 1);
	assert_int_equal(((unsigned char *)hmmu_page_address(head))[4321], v);
	assert_int_equal(nr_free(), free0 - 512);
	assert_int_equal(hmmu_test_leaf(mm, h, NULL), 0);
	assert_int_equal(stats(mm).huge_pmds, 1);
	assert_int_equal(stats(mm).cow_faults, 0);
	/* hmmu_handle_mm_fault on a present writable leaf changes nothing. */
	assert_int_equal(fault_at(mm, h + HPAGE + 9 * PAGE, HMMU_FAULT_FLAG_WRITE), 0);
	assert_ptr_equal(leaf_head(mm, h + HPAGE, NULL), head);
}

/* Data round-trips over the whole range, across the 2 MiB boundary too. */
static void test_hugetlb_access_roundtrip(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	unsigned long h = map_huge_ok(mm, 4 * MiB);
	unsigned char *want = fill_random(mm, h, 4 * MiB, 0x1111);
	unsigned char cross[6] = { 1, 2, 3, 4, 5, 6 };

	assert_int_equal(nr_free(), free0 - 1024);
	assert_int_equal(stats(mm).huge_pmds, 2);
	assert_ptr_not_equal(leaf_head(mm, h, NULL), leaf_head(mm, h + HPAGE, NULL));
	check_bytes(mm, h, want, 4 * MiB);
	put_bytes(mm, h + HPAGE - 3, cross, sizeof(cross));
	memcpy(want + HPAGE - 3, cross, sizeof(cross));
	check_bytes(mm, h, want, 4 * MiB);
	assert_memory_equal((char *)hmmu_page_address(leaf_head(mm, h + HPAGE, NULL)), cross + 3, 3);
	assert_int_equal(hmmu_munmap(mm, h, 4 * MiB), 0);
	assert_int_equal(nr_free(), free0);
	assert_int_equal(stats(mm).page_tables, 0);
	free(want);
}

/* Racing faults on one 2 MiB page install exactly one page. */
struct race_job {
	struct hmmu_mm *mm;
	unsigned long addr;
	int id;
	int ret;
};

static void *race_run(void *arg)
{
	struct race_job *j = arg;
	unsigned char v = (unsigned char)j->id;

	j->ret = 0;
	for (int i = 0; i < 64 && !j->ret; i++)
		j->ret = hmmu_access(j->mm, j->addr + (unsigned long)(i * 8 + j->id) * PAGE, &v, 1,
				     j->id & 1 ? HMMU_ACCESS_WRITE : HMMU_ACCESS_READ);
	return NULL;
}

static void test_hugetlb_concurrent_faults(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	struct race_job jobs[4];
	pthread_t th[4];

	for (int round = 0; round < 8; round++) {
		unsigned long h = map_huge_ok(mm, HPAGE);

		for (int i = 0; i < 4; i++) {
			jobs[i] = (struct race_job){ .mm = mm, .addr = h, .id = i };
			assert_int_equal(pthread_create(&th[i], NULL, race_run, &jobs[i]), 0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			assert_int_equal(jobs[i].ret, 0);
		}
		assert_huge_page(leaf_head(mm, h, NULL), 1);
		assert_true(hmmu_pte_write(hmmu_test_leaf(mm, h, NULL)));
		assert_int_equal(nr_free(), free0 - 512);
		assert_int_equal(hmmu_munmap(mm, h, HPAGE), 0);
		assert_int_equal(nr_free(), free0);
	}
}

/* ------------------------------------------------------------------ */
/* Splitting the VMA at and inside 2 MiB pages                         */
/* ------------------------------------------------------------------ */

/* mprotect of an aligned half splits the VMA; both leaves and all data stay. */
static void test_hugetlb_mprotect_half(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_ok(mm, 4 * MiB);
	unsigned char *want = fill_random(mm, h, 4 * MiB, 0x2222);
	struct hmmu_page *h0 = leaf_head(mm, h, NULL), *h1 = leaf_head(mm, h + HPAGE, NULL);
	hmmu_pte_t e;
	unsigned char v = 0x5a;

	assert_int_equal(hmmu_mprotect(mm, h + HPAGE, HPAGE, PROT_READ), 0);
	assert_int_equal(stats(mm).nr_vmas, 2);
	assert_int_equal(vma_at(mm, h).vm_end, h + HPAGE);
	assert_ptr_equal(leaf_head(mm, h, &e), h0);
	assert_true(hmmu_pte_write(e));
	assert_ptr_equal(leaf_head(mm, h + HPAGE, &e), h1);
	assert_false(hmmu_pte_write(e));
	assert_int_equal(stats(mm).huge_pmds, 2);
	check_bytes(mm, h, want, 4 * MiB);
	assert_int_equal(hmmu_access(mm, h + HPAGE + 10, &v, 1, HMMU_ACCESS_WRITE), -EFAULT);
	put_bytes(mm, h + 10, &v, 1);
	want[10] = v;
	/* Writable again: the exclusive page is reused; hugetlb VMAs never merge. */
	assert_int_equal(hmmu_mprotect(mm, h + HPAGE, HPAGE, RW), 0);
	assert_int_equal(stats(mm).nr_vmas, 2);
	put_bytes(mm, h + HPAGE + 10, &v, 1);
	want[HPAGE + 10] = v;
	assert_ptr_equal(leaf_head(mm, h + HPAGE, &e), h1);
	assert_true(hmmu_pte_write(e));
	assert_int_equal(stats(mm).cow_faults, 0);
	check_bytes(mm, h, want, 4 * MiB);
	free(want);
}

/* munmap of an aligned half frees that page; the other half keeps leaf and data. */
static void test_hugetlb_munmap_half(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	unsigned long h = map_huge_ok(mm, 4 * MiB);
	unsigned char *want = fill_random(mm, h, 4 * MiB, 0x3333);
	struct hmmu_page *h1 = leaf_head(mm, h + HPAGE, NULL);
	unsigned char v;

	assert_int_equal(hmmu_munmap(mm, h, HPAGE), 0);
	assert_int_equal(nr_free(), free0 - 512);
	assert_int_equal(stats(mm).nr_vmas, 1);
	assert_int_equal(vma_at(mm, h + HPAGE).vm_start, h + HPAGE);
	assert_int_equal(hmmu_test_leaf(mm, h, NULL), 0);
	assert_int_equal(hmmu_access(mm, h + 5, &v, 1, HMMU_ACCESS_READ), -EFAULT);
	assert_ptr_equal(leaf_head(mm, h + HPAGE, NULL), h1);
	assert_huge_page(h1, 1);
	check_bytes(mm, h + HPAGE, want + HPAGE, HPAGE);
	assert_int_equal(stats(mm).page_tables, 2);
	assert_int_equal(hmmu_munmap(mm, h + HPAGE, HPAGE), 0);
	assert_int_equal(nr_free(), free0);
	assert_int_equal(stats(mm).page_tables, 0);
	free(want);
}

/* Cutting inside a 2 MiB page fails with -EINVAL and changes nothing. */
static void test_hugetlb_unaligned_ops(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_ok(mm, 4 * MiB);
	unsigned char *want = fill_random(mm, h, 4 * MiB, 0x4444);
	struct hmmu_page *h0 = leaf_head(mm, h, NULL), *h1 = leaf_head(mm, h + HPAGE, NULL);
	long free0 = nr_free();

	assert_int_equal(hmmu_mprotect(mm, h + PAGE, PAGE, PROT_READ), -EINVAL);
	assert_int_equal(hmmu_mprotect(mm, h, 3 * MiB, PROT_READ), -EINVAL);
	assert_int_equal(hmmu_mprotect(mm, h + MiB, 2 * MiB, PROT_READ), -EINVAL);
	assert_int_equal(hmmu_munmap(mm, h + PAGE, PAGE), -EINVAL);
	assert_int_equal(hmmu_munmap(mm, h, 3 * MiB), -EINVAL);
	assert_int_equal(hmmu_munmap(mm, h + 3 * MiB, 2 * MiB), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, h + PAGE, PAGE, MADV_DONTNEED), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, h, PAGE, MADV_DONTNEED), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, h + HPAGE, MiB, MADV_DONTNEED), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, h + MiB, 2 * MiB, MADV_DONTNEED), -EINVAL);
	/* Nothing changed: one VMA, both writable leaves, every byte, every page. */
	assert_int_equal(stats(mm).nr_vmas, 1);
	assert_int_equal(vma_at(mm, h).vm_flags & (HMMU_VM_READ | HMMU_VM_WRITE), HMMU_VM_READ | HMMU_VM_WRITE);
	assert_ptr_equal(leaf_head(mm, h, NULL), h0);
	assert_ptr_equal(leaf_head(mm, h + HPAGE, NULL), h1);
	assert_true(hmmu_pte_write(hmmu_test_leaf(mm, h, NULL)));
	assert_true(hmmu_pte_write(hmmu_test_leaf(mm, h + HPAGE, NULL)));
	assert_int_equal(nr_free(), free0);
	check_bytes(mm, h, want, 4 * MiB);
	free(want);
}

/* MADV_DONTNEED of an aligned half frees that page; the next touch gets zeros. */
static void test_hugetlb_dontneed(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	unsigned long h = map_huge_ok(mm, 4 * MiB);
	unsigned char *want = fill_random(mm, h, 4 * MiB, 0x5555);
	struct hmmu_page *h0 = leaf_head(mm, h, NULL);
	unsigned char *buf = malloc(HPAGE);

	assert_non_null(buf);
	assert_int_equal(hmmu_madvise(mm, h + HPAGE, HPAGE, MADV_DONTNEED), 0);
	assert_int_equal(nr_free(), free0 - 512);
	assert_int_equal(hmmu_test_leaf(mm, h + HPAGE, NULL), 0);
	assert_ptr_equal(leaf_head(mm, h, NULL), h0);
	check_bytes(mm, h, want, HPAGE);
	get_bytes(mm, h + HPAGE, buf, HPAGE);
	assert_true(all_zero(buf, HPAGE));
	assert_int_equal(nr_free(), free0 - 1024);
	/* A length that rounds up (to a page) to 2 MiB is whole. */
	assert_int_equal(hmmu_madvise(mm, h, HPAGE - 100, MADV_DONTNEED), 0);
	assert_int_equal(hmmu_test_leaf(mm, h, NULL), 0);
	assert_int_equal(hmmu_madvise(mm, h, 4 * MiB, MADV_DONTNEED), 0);
	assert_int_equal(nr_free(), free0);
	assert_int_equal(stats(mm).nr_vmas, 1);
	free(buf);
	free(want);
}

/* ------------------------------------------------------------------ */
/* Copy-on-write                                                       */
/* ------------------------------------------------------------------ */

/* A write to a shared read-only leaf copies the 2 MiB inside a CLEAR invalidation. */
static void test_hugetlb_cow_copy(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_ok(mm, HPAGE);
	unsigned char *want = fill_random(mm, h, HPAGE, 0x6666);
	struct hmmu_page *old = leaf_head(mm, h, NULL), *cur;
	unsigned char v = 0xab, before = want[777];
	struct nr_sub s;
	hmmu_pte_t e;
	long free1;

	write_protect(mm, h, HPAGE);
	share_by_hand(old);
	nr_sub_init(&s, 1, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(&s.n, mm), 0);
	free1 = nr_free();
	nr_reset();
	nr_watch(mm, false);
	put_bytes(mm, h + 777, &v, 1);
	nr_expect(0, NR_START, 1, h, h + HPAGE);
	nr_expect(1, NR_INV_RANGE, 1, h, h + HPAGE);
	nr_expect(2, NR_END, 1, h, h + HPAGE);
	nr_expect_count(3);
	assert_int_equal(nr_get(0).event, HMMU_NOTIFY_CLEAR);
	assert_int_equal(nr_get(0).nr_free, free1 - 512);	/* copied before the invalidation */
	hmmu_notifier_unregister(&s.n, mm);
	/* The entry maps a new exclusive, writable copy. */
	cur = leaf_head(mm, h, &e);
	assert_ptr_not_equal(cur, old);
	assert_true(hmmu_pte_write(e) && hmmu_pte_dirty(e));
	assert_huge_page(cur, 1);
	assert_true(hmmu_page_test_flag(cur, HMMU_PG_anon_exclusive));
	assert_int_equal(stats(mm).cow_faults, 1);
	assert_int_equal(nr_free(), free1 - 512);
	want[777] = v;
	check_bytes(mm, h, want, HPAGE);
	/* The old page keeps the other "process's" reference and mapping, and its bytes. */
	assert_int_equal(hmmu_page_ref_count(old), 1);
	assert_int_equal(atomic_load(&old->_entire_mapcount), 1);
	want[777] = before;
	assert_memory_equal(hmmu_page_address(old), want, HPAGE);
	unshare_by_hand(old);
	assert_int_equal(nr_free(), free1);
	free(want);
}

/* The same copy happens under the PMD table's lock. */
static void test_hugetlb_cow_hook_under_pmd_lock(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_ok(mm, HPAGE);
	struct hmmu_page *old;
	unsigned char v = 1;
	struct nr_sub s;

	put_bytes(mm, h, &v, 1);
	old = leaf_head(mm, h, NULL);
	write_protect(mm, h, HPAGE);
	share_by_hand(old);
	nr_sub_init(&s, 1, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(&s.n, mm), 0);
	nr_reset();
	nr_watch(mm, true);
	put_bytes(mm, h + 1, &v, 1);
	nr_expect(1, NR_INV_RANGE, 1, h, h + HPAGE);
	assert_int_equal(nr_get(1).ptl, NR_PTL_PMD);
	nr_reset();
	hmmu_notifier_unregister(&s.n, mm);
	unshare_by_hand(old);
}

/* A write-protected page that nobody else maps is reused, not copied. */
static void test_hugetlb_cow_reuse(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_ok(mm, HPAGE);
	unsigned char *want = fill_random(mm, h, HPAGE, 0x7777);
	struct hmmu_page *head = leaf_head(mm, h, NULL), *pages[1];
	long free0 = nr_free();
	unsigned char v = 3;

	/* Anon-exclusive: reused at once. */
	write_protect(mm, h, HPAGE);
	put_bytes(mm, h, &v, 1);
	assert_ptr_equal(leaf_head(mm, h, NULL), head);
	/* Not exclusive, but one reference and one mapping: reused, exclusive again. */
	write_protect(mm, h, HPAGE);
	hmmu_page_clear_flag(head, HMMU_PG_anon_exclusive);
	put_bytes(mm, h + 1, &v, 1);
	assert_ptr_equal(leaf_head(mm, h, NULL), head);
	assert_true(hmmu_page_test_flag(head, HMMU_PG_anon_exclusive));
	assert_true(hmmu_pte_write(hmmu_test_leaf(mm, h, NULL)));
	assert_int_equal(stats(mm).cow_faults, 0);
	assert_int_equal(nr_free(), free0);
	/* Not exclusive and referenced elsewhere (a GUP reference): copied. */
	assert_int_equal(gup_or_pin(mm, h + 3 * PAGE, 1, 0, pages, false), 1);
	write_protect(mm, h, HPAGE);
	hmmu_page_clear_flag(head, HMMU_PG_anon_exclusive);
	put_bytes(mm, h + 2, &v, 1);
	assert_ptr_not_equal(leaf_head(mm, h, NULL), head);
	assert_int_equal(stats(mm).cow_faults, 1);
	assert_int_equal(hmmu_page_ref_count(head), 1);
	assert_int_equal(atomic_load(&head->_entire_mapcount), 0);
	hmmu_put_page(pages[0]);
	assert_int_equal(nr_free(), free0);
	want[0] = want[1] = want[2] = v;
	check_bytes(mm, h, want, HPAGE);
	free(want);
}

/* ------------------------------------------------------------------ */
/* No free huge page                                                   */
/* ------------------------------------------------------------------ */

#define MAX_HOGS 512

/* Allocate every free 2 MiB block of node 0; returns how many. */
static int hog_huge_pages(struct hmmu_page **hogs)
{
	int n = 0;

	while (n < MAX_HOGS && (hogs[n] = hmmu_alloc_pages(HMMU_GFP_COMP, HMMU_PMD_ORDER)))
		n++;
	assert_true(n < MAX_HOGS);
	return n;
}

/* Faults that need a huge page fail with SIGBUS (-EFAULT for CPU access); nothing changes. */
static void test_hugetlb_pool_exhausted(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_ok(mm, 4 * MiB);
	struct hmmu_page **hogs = calloc(MAX_HOGS, sizeof(*hogs)), *head, *pages[1];
	unsigned char v = 9;
	int n;

	assert_non_null(hogs);
	put_bytes(mm, h, &v, 1);
	head = leaf_head(mm, h, NULL);
	write_protect(mm, h, HPAGE);
	share_by_hand(head);
	n = hog_huge_pages(hogs);
	assert_true(n > 0);
	assert_int_equal(hmmu_access(mm, h + HPAGE, &v, 1, HMMU_ACCESS_READ), -EFAULT);
	assert_int_equal(hmmu_access(mm, h + HPAGE, &v, 1, HMMU_ACCESS_WRITE), -EFAULT);
	assert_int_equal(fault_at(mm, h + HPAGE, 0), HMMU_VM_FAULT_SIGBUS);
	assert_int_equal(gup_or_pin(mm, h + HPAGE, 1, 0, pages, false), -EFAULT);
	assert_int_equal(hmmu_test_leaf(mm, h + HPAGE, NULL), 0);
	/* The copy-on-write copy has no page either: the shared leaf stays. */
	assert_int_equal(fault_at(mm, h + 5, HMMU_FAULT_FLAG_WRITE), HMMU_VM_FAULT_SIGBUS);
	assert_int_equal(hmmu_access(mm, h + 5, &v, 1, HMMU_ACCESS_WRITE), -EFAULT);
	assert_ptr_equal(leaf_head(mm, h, NULL), head);
	assert_false(hmmu_pte_write(hmmu_test_leaf(mm, h, NULL)));
	assert_int_equal(hmmu_page_ref_count(head), 2);
	v = 0;
	get_bytes(mm, h, &v, 1);	/* reads need no page */
	assert_int_equal(v, 9);
	for (int i = 0; i < n; i++)
		hmmu_put_page(hogs[i]);
	free(hogs);
	/* With pages back, both faults succeed. */
	get_bytes(mm, h + HPAGE, &v, 1);
	assert_int_equal(v, 0);
	put_bytes(mm, h + 5, &v, 1);
	assert_ptr_not_equal(leaf_head(mm, h, NULL), head);
	unshare_by_hand(head);
}

/* ------------------------------------------------------------------ */
/* GUP                                                                 */
/* ------------------------------------------------------------------ */

/* GUP and pins return the subpages of the huge page; a write GUP makes the leaf writable. */
static void test_hugetlb_gup(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_ok(mm, 4 * MiB);
	struct hmmu_page *pages[3], *head;
	unsigned char v;

	get_bytes(mm, h + HPAGE, &v, 1);
	head = leaf_head(mm, h + HPAGE, NULL);
	assert_false(hmmu_pte_write(hmmu_test_leaf(mm, h + HPAGE, NULL)));
	assert_int_equal(gup_or_pin(mm, h + HPAGE + 10 * PAGE, 3, 0, pages, true), 3);
	for (int i = 0; i < 3; i++)
		assert_ptr_equal(pages[i], head + 10 + i);
	assert_int_equal(hmmu_page_ref_count(head), 4);
	assert_int_equal(atomic_load(&head->_pincount), 3);
	assert_true(hmmu_page_maybe_dma_pinned(head + 300));
	hmmu_unpin_user_pages(pages, 3);
	assert_false(hmmu_page_maybe_dma_pinned(head));
	/* FOLL_WRITE on the read-only leaf: the exclusive page becomes writable. */
	assert_int_equal(gup_or_pin(mm, h + HPAGE + 511 * PAGE, 1, HMMU_FOLL_WRITE, pages, false), 1);
	assert_ptr_equal(pages[0], head + 511);
	assert_true(hmmu_pte_write(hmmu_test_leaf(mm, h + HPAGE, NULL)));
	assert_ptr_equal(leaf_head(mm, h + HPAGE, NULL), head);
	hmmu_put_page(pages[0]);
	assert_int_equal(hmmu_page_ref_count(head), 1);
	/* A write GUP on an empty PMD faults a writable leaf in; the range spans both pages. */
	assert_int_equal(gup_or_pin(mm, h + HPAGE - PAGE, 2, HMMU_FOLL_WRITE, pages, true), 2);
	assert_ptr_equal(pages[0], leaf_head(mm, h, NULL) + 511);
	assert_ptr_equal(pages[1], head);
	hmmu_unpin_user_pages(pages, 2);
	assert_int_equal(stats(mm).huge_pmds, 2);
	assert_int_equal(stats(mm).cow_faults, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_hugetlb_mmap_placement),
		HMMU_TEST(test_hugetlb_read_fault),
		HMMU_TEST(test_hugetlb_write_fault),
		HMMU_TEST(test_hugetlb_access_roundtrip),
		HMMU_TEST(test_hugetlb_concurrent_faults),
		HMMU_TEST(test_hugetlb_mprotect_half),
		HMMU_TEST(test_hugetlb_munmap_half),
		HMMU_TEST(test_hugetlb_unaligned_ops),
		HMMU_TEST(test_hugetlb_dontneed),
		HMMU_TEST(test_hugetlb_cow_copy),
		HMMU_TEST(test_hugetlb_cow_hook_under_pmd_lock),
		HMMU_TEST(test_hugetlb_cow_reuse),
		HMMU_TEST(test_hugetlb_pool_exhausted),
		HMMU_TEST(test_hugetlb_gup),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
