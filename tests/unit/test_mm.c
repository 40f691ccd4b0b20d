// SPDX-License-Identifier: MIT
/*
 * Unit tests of the primary MMU: entry encoding, anonymous faults, CPU
 * access, page tables, 2 MiB entries, get_user_pages and pins, waiting on
 * migration entries, concurrent faults, and address-space reference counts.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define MAX_PFN ((1UL << 44) - 1)
#define GiB (1UL << 30)
#define MiB (1UL << 20)

static void fill_random(void *buf, size_t len, uint64_t *rs)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)hmmu_test_rand(rs);
}

static bool all_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* The frame mapped at @addr by a present entry, or NULL. */
static struct hmmu_page *page_at(struct hmmu_mm *mm, unsigned long addr)
{
	bool huge;
	hmmu_pte_t e = hmmu_test_leaf(mm, addr, &huge);
	unsigned long pfn;

	if (!hmmu_pte_present(e))
		return NULL;
	pfn = hmmu_pte_pfn(e) + (huge ? (addr & ~HMMU_PMD_MASK) >> HMMU_PAGE_SHIFT : 0);
	return hmmu_pfn_to_page(pfn);
}

/* ------------------------------------------------------------------ */
/* Entry encoding                                                      */
/* ------------------------------------------------------------------ */

static const unsigned long test_pfns[] = { 0, 1, 0x123456789UL, MAX_PFN };

static void check_swp_roundtrip(enum hmmu_swp_type type, unsigned long pfn, bool young, bool dirty)
{
	struct hmmu_swp_entry se = hmmu_make_swp_entry(type, pfn), d;
	hmmu_pte_t e;

	assert_int_equal(se.type, type);
	assert_int_equal(se.pfn, pfn);
	assert_false(se.young || se.dirty);
	se.young = young;
	se.dirty = dirty;
	e = hmmu_swp_entry_to_pte(se);
	assert_false(hmmu_pte_present(e));
	assert_false(hmmu_pmd_leaf(e));
	assert_false(hmmu_pte_table(e));
	assert_int_equal(hmmu_pte_none(e), type == HMMU_SWP_NONE && !pfn && !young && !dirty);
	assert_int_equal(hmmu_pte_pfn(e), pfn);
	assert_int_equal(e >> 56, 0);
	d = hmmu_pte_to_swp_entry(e);
	assert_int_equal(d.type, type);
	assert_int_equal(d.pfn, pfn);
	assert_int_equal(d.young, young);
	assert_int_equal(d.dirty, dirty);
	/* A PMD-level typed entry carries HUGE; it decodes the same and is no leaf. */
	d = hmmu_pte_to_swp_entry(e | HMMU_PTE_HUGE);
	assert_int_equal(d.type, type);
	assert_int_equal(d.pfn, pfn);
	assert_int_equal(d.young, young);
	assert_int_equal(d.dirty, dirty);
	assert_false(hmmu_pmd_leaf(e | HMMU_PTE_HUGE));
	assert_false(hmmu_pte_table(e | HMMU_PTE_HUGE));
}

/* Every typed entry survives encode/decode with each young/dirty combination. */
static void test_swp_entry_roundtrip(void **state)
{
	for (int t = HMMU_SWP_NONE; t < HMMU_SWP_NR_TYPES; t++)
		for (size_t i = 0; i < sizeof(test_pfns) / sizeof(test_pfns[0]); i++)
			for (int yd = 0; yd < 4; yd++)
				check_swp_roundtrip((enum hmmu_swp_type)t, test_pfns[i], yd & 1, yd & 2);
}

static const hmmu_pte_t present_bits[] = {
	HMMU_PTE_WRITE, HMMU_PTE_DIRTY, HMMU_PTE_YOUNG, HMMU_PTE_SPECIAL, HMMU_PTE_HUGE,
};
#define NR_PRESENT_BITS (sizeof(present_bits) / sizeof(present_bits[0]))

static void check_present(unsigned long pfn, hmmu_pte_t bits)
{
	hmmu_pte_t e = hmmu_pfn_pte(pfn, bits);

	assert_true(hmmu_pte_present(e));
	assert_false(hmmu_pte_none(e));
	assert_int_equal(hmmu_pte_pfn(e), pfn);
	assert_int_equal(e & ~HMMU_PTE_PFN_MASK, bits | HMMU_PTE_PRESENT);
	assert_int_equal(hmmu_pte_write(e), !!(bits & HMMU_PTE_WRITE));
	assert_int_equal(hmmu_pte_dirty(e), !!(bits & HMMU_PTE_DIRTY));
	assert_int_equal(hmmu_pte_young(e), !!(bits & HMMU_PTE_YOUNG));
	assert_int_equal(hmmu_pte_special(e), !!(bits & HMMU_PTE_SPECIAL));
	assert_int_equal(hmmu_pmd_leaf(e), !!(bits & HMMU_PTE_HUGE));
	assert_int_equal(hmmu_pte_table(e), !(bits & HMMU_PTE_HUGE));
}

/* Present entries: every combination of bits with the boundary pfns and random ones. */
static void test_present_entry_bits(void **state)
{
	uint64_t rs = hmmu_test_seed();

	for (size_t i = 0; i < sizeof(test_pfns) / sizeof(test_pfns[0]); i++)
		for (unsigned int m = 0; m < 1u << NR_PRESENT_BITS; m++) {
			hmmu_pte_t bits = 0;

			for (unsigned int b = 0; b < NR_PRESENT_BITS; b++)
				if (m & (1u << b))
					bits |= present_bits[b];
			check_present(test_pfns[i], bits);
		}
	for (int i = 0; i < 1000; i++) {
		uint64_t r = hmmu_test_rand(&rs);

		check_present(r & MAX_PFN, (hmmu_pte_t)(r >> 58) & 0x3e);
	}
}

/* Table entries are present and not huge; they point back at the table. */
static void test_table_vs_leaf_entries(void **state)
{
	struct hmmu_pt *pt = hmmu_pt_alloc(NULL, 0);
	hmmu_pte_t e;

	assert_non_null(pt);
	assert_int_equal((uintptr_t)pt & 63, 0);
	e = (hmmu_pte_t)(uintptr_t)pt | HMMU_PTE_PRESENT;
	assert_true(hmmu_pte_table(e));
	assert_false(hmmu_pmd_leaf(e));
	assert_ptr_equal(hmmu_pte_to_table(e), pt);
	assert_int_equal(pt->level, 0);
	assert_int_equal(atomic_load(&pt->nr_used), 0);
	/* A huge leaf is not a table; a none entry is neither. */
	assert_false(hmmu_pte_table(hmmu_pfn_pte(512, HMMU_PTE_HUGE)));
	assert_true(hmmu_pmd_leaf(hmmu_pfn_pte(512, HMMU_PTE_HUGE | HMMU_PTE_WRITE)));
	assert_false(hmmu_pte_table(0));
	assert_false(hmmu_pmd_leaf(0));
	/* hmmu_pte_set keeps nr_used exact. */
	hmmu_pt_lock(pt);
	hmmu_pte_set(pt, &pt->e[3], hmmu_pfn_pte(7, 0));
	hmmu_pte_set(pt, &pt->e[3], hmmu_pfn_pte(8, 0));
	hmmu_pte_set(pt, &pt->e[4], hmmu_pfn_pte(9, 0));
	assert_int_equal(atomic_load(&pt->nr_used), 2);
	hmmu_pte_set(pt, &pt->e[3], 0);
	hmmu_pte_set(pt, &pt->e[4], 0);
	hmmu_pte_set(pt, &pt->e[5], 0);
	hmmu_pt_unlock(pt);
	assert_int_equal(atomic_load(&pt->nr_used), 0);
	hmmu_pt_free(NULL, pt);
}

/* Predicates over the typed-entry kinds, against a hand-written table. */
static void test_swp_type_predicates(void **state)
{
	static const struct {
		enum hmmu_swp_type type;
		bool migration, dev_private, dev_exclusive, writable;
	} want[] = {
		{ HMMU_SWP_NONE, false, false, false, false },
		{ HMMU_SWP_DEVICE_PRIVATE_READ, false, true, false, false },
		{ HMMU_SWP_DEVICE_PRIVATE_WRITE, false, true, false, true },
		{ HMMU_SWP_DEVICE_EXCLUSIVE_READ, false, false, true, false },
		{ HMMU_SWP_DEVICE_EXCLUSIVE_WRITE, false, false, true, true },
		{ HMMU_SWP_MIGRATION_READ, true, false, false, false },
		{ HMMU_SWP_MIGRATION_READ_EXCLUSIVE, true, false, false, false },
		{ HMMU_SWP_MIGRATION_WRITE, true, false, false, true },
	};

	assert_int_equal(sizeof(want) / sizeof(want[0]), HMMU_SWP_NR_TYPES);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct hmmu_swp_entry se = hmmu_pte_to_swp_entry(
			hmmu_swp_entry_to_pte(hmmu_make_swp_entry(want[i].type, 42)));

		assert_int_equal(hmmu_is_migration_entry(se), want[i].migration);
		assert_int_equal(hmmu_is_device_private_entry(se), want[i].dev_private);
		assert_int_equal(hmmu_is_device_exclusive_entry(se), want[i].dev_exclusive);
		assert_int_equal(hmmu_is_writable_swp_entry(se), want[i].writable);
	}
}

/* ------------------------------------------------------------------ */
/* Anonymous faults                                                    */
/* ------------------------------------------------------------------ */

/* A read of an empty entry maps the zero page read-only and allocates nothing. */
static void test_read_fault_maps_zero_page(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long addr = hmmu_test_map(mm, 4 * PAGE, RW);
	long free0 = nr_free();
	unsigned char buf[64];
	struct hmmu_mm_stats st;
	hmmu_pte_t e;

	assert_int_equal(fault_at(mm, addr + PAGE + 100, 0), 0);
	e = hmmu_test_leaf(mm, addr + PAGE, NULL);
	assert_true(hmmu_pte_present(e));
	assert_true(hmmu_is_zero_pfn(hmmu_pte_pfn(e)));
	assert_int_equal(hmmu_pte_pfn(e), hmmu_page_to_pfn(hmmu_zero_page()));
	assert_false(hmmu_pte_write(e));
	assert_int_equal(hmmu_test_leaf(mm, addr, NULL), 0);
	st = stats(mm);
	assert_int_equal(st.zero_pages, 1);
	assert_int_equal(st.zero_page_faults, 1);
	assert_int_equal(st.present_pages, 0);
	assert_int_equal(st.faults, 1);
	assert_int_equal(nr_free(), free0);
	/* Reading through hmmu_access sees zeros and maps no further zero page. */
	memset(buf, 0xa5, sizeof(buf));
	get_bytes(mm, addr + PAGE + 100, buf, sizeof(buf));
	assert_true(all_zero(buf, sizeof(buf)));
	st = stats(mm);
	assert_int_equal(st.zero_pages, 1);
	assert_int_equal(st.zero_page_faults, 1);
}

/* A write of an empty entry maps a new zeroed, exclusive anonymous page. */
static void test_write_fault_new_page(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long addr = hmmu_test_map(mm, 4 * PAGE, RW);
	long free0 = nr_free();
	struct hmmu_page *page;
	struct hmmu_mm_stats st;
	hmmu_pte_t e;

	assert_int_equal(fault_at(mm, addr + 2 * PAGE + 5, HMMU_FAULT_FLAG_WRITE), 0);
	e = hmmu_test_leaf(mm, addr + 2 * PAGE, NULL);
	assert_true(hmmu_pte_present(e));
	assert_true(hmmu_pte_write(e));
	assert_true(hmmu_pte_dirty(e));
	assert_false(hmmu_pte_special(e));
	assert_false(hmmu_is_zero_pfn(hmmu_pte_pfn(e)));
	page = page_at(mm, addr + 2 * PAGE);
	assert_non_null(page);
	assert_int_equal(hmmu_page_ref_count(page), 1);
	assert_int_equal(hmmu_page_mapcount(page), 1);
	assert_true(hmmu_page_is_anon(page));
	assert_true(hmmu_page_test_flag(page, HMMU_PG_anon_exclusive));
	assert_true(hmmu_page_test_flag(page, HMMU_PG_uptodate));
	assert_int_equal(hmmu_compound_order(page), 0);
	assert_int_equal(page->index, (addr >> HMMU_PAGE_SHIFT) + 2);
	assert_true(all_zero(hmmu_page_address(page), PAGE));
	assert_int_equal(nr_free(), free0 - 1);
	st = stats(mm);
	assert_int_equal(st.present_pages, 1);
	assert_int_equal(st.zero_pages, 0);
	assert_int_equal(st.zero_page_faults, 0);
	assert_int_equal(st.cow_faults, 0);
	/* The bytes written through hmmu_access land in that page. */
	put_byte(mm, addr + 2 * PAGE + 77, 0x5c);
	assert_int_equal(((unsigned char *)hmmu_page_address(page))[77], 0x5c);
	assert_int_equal(get_byte(mm, addr + 2 * PAGE + 77), 0x5c);
}

/* A write after a read replaces the zero page with a private copy. */
static void test_write_after_read_cow(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long addr = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_page *zero = hmmu_zero_page();
	int zero_ref = hmmu_page_ref_count(zero);
	long free0 = nr_free();
	unsigned char buf[PAGE];
	struct hmmu_mm_stats st;
	hmmu_pte_t e;

	assert_int_equal(get_byte(mm, addr + 10), 0);
	assert_true(hmmu_is_zero_pfn(hmmu_pte_pfn(hmmu_test_leaf(mm, addr, NULL))));
	put_byte(mm, addr + 10, 0x99);
	e = hmmu_test_leaf(mm, addr, NULL);
	assert_false(hmmu_is_zero_pfn(hmmu_pte_pfn(e)));
	assert_true(hmmu_pte_write(e) && hmmu_pte_dirty(e));
	st = stats(mm);
	assert_int_equal(st.cow_faults, 1);
	assert_int_equal(st.zero_page_faults, 1);
	assert_int_equal(st.zero_pages, 0);
	assert_int_equal(st.present_pages, 1);
	assert_int_equal(nr_free(), free0 - 1);
	assert_int_equal(hmmu_page_ref_count(zero), zero_ref);
	assert_true(all_zero(hmmu_page_address(zero), PAGE));
	assert_int_equal(hmmu_page_mapcount(page_at(mm, addr)), 1);
	get_bytes(mm, addr, buf, PAGE);
	assert_int_equal(buf[10], 0x99);
	buf[10] = 0;
	assert_true(all_zero(buf, PAGE));
}

/* hmmu_handle_mm_fault refuses accesses the VMA does not allow. */
static void test_fault_sigsegv(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long ro = hmmu_test_map(mm, PAGE, PROT_READ);
	unsigned long none = hmmu_test_map(mm, PAGE, PROT_NONE);
	struct hmmu_vma *vma;
	hmmu_vm_fault_t ret;

	assert_int_equal(fault_at(mm, ro, HMMU_FAULT_FLAG_WRITE), HMMU_VM_FAULT_SIGSEGV);
	assert_int_equal(fault_at(mm, none, 0), HMMU_VM_FAULT_SIGSEGV);
	assert_int_equal(fault_at(mm, none, HMMU_FAULT_FLAG_WRITE), HMMU_VM_FAULT_SIGSEGV);
	assert_int_equal(fault_at(mm, 0x7f0000000000UL, 0), HMMU_VM_FAULT_SIGSEGV);
	hmmu_mmap_read_lock(mm);
	vma = hmmu_vma_lookup(mm, ro);
	ret = vma ? hmmu_handle_mm_fault(vma, vma->vm_end + 3 * PAGE, 0) : 0;
	hmmu_mmap_read_unlock(mm);
	assert_int_equal(ret, HMMU_VM_FAULT_SIGSEGV);
	assert_int_equal(hmmu_test_leaf(mm, ro, NULL), 0);
	assert_int_equal(hmmu_test_leaf(mm, none, NULL), 0);
	assert_int_equal(stats(mm).faults, 0);
	/* The allowed access works. */
	assert_int_equal(fault_at(mm, ro, 0), 0);
	assert_true(hmmu_is_zero_pfn(hmmu_pte_pfn(hmmu_test_leaf(mm, ro, NULL))));
}

/* Write-protect and re-enable: the next write reuses the exclusive page. */
static void test_fault_reuses_exclusive_page(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long addr = hmmu_test_map(mm, 2 * PAGE, RW);
	unsigned long pfn;
	hmmu_pte_t e;

	put_byte(mm, addr + 1, 1);
	pfn = hmmu_pte_pfn(hmmu_test_leaf(mm, addr, NULL));
	assert_int_equal(hmmu_mprotect(mm, addr, 2 * PAGE, PROT_READ), 0);
	e = hmmu_test_leaf(mm, addr, NULL);
	assert_false(hmmu_pte_write(e));
	assert_int_equal(hmmu_pte_pfn(e), pfn);
	assert_int_equal(hmmu_access(mm, addr, &(char){ 2 }, 1, HMMU_ACCESS_WRITE), -EFAULT);
	assert_int_equal(hmmu_mprotect(mm, addr, 2 * PAGE, RW), 0);
	/* Gaining write waits for the next write fault. */
	assert_false(hmmu_pte_write(hmmu_test_leaf(mm, addr, NULL)));
	put_byte(mm, addr + 2, 2);
	e = hmmu_test_leaf(mm, addr, NULL);
	assert_true(hmmu_pte_write(e));
	assert_int_equal(hmmu_pte_pfn(e), pfn);
	assert_int_equal(stats(mm).cow_faults, 0);
	assert_int_equal(get_byte(mm, addr + 1), 1);
	assert_int_equal(get_byte(mm, addr + 2), 2);
}

/* ------------------------------------------------------------------ */
/* hmmu_access                                                         */
/* ------------------------------------------------------------------ */

/* Random spans crossing page boundaries read back what was written. */
static void test_access_roundtrip(void **state)
{
	enum { NPAGES = 8 };
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long addr = hmmu_test_map(mm, NPAGES * PAGE, RW);
	static unsigned char shadow[NPAGES * PAGE], buf[NPAGES * PAGE];
	uint64_t rs = hmmu_test_seed() ^ 0x1111;

	memset(shadow, 0, sizeof(shadow));
	for (int i = 0; i < 200; i++) {
		size_t off = hmmu_test_rand(&rs) % sizeof(shadow);
		size_t len = 1 + hmmu_test_rand(&rs) % (sizeof(shadow) - off);

		if (hmmu_test_rand(&rs) & 1) {
			fill_random(shadow + off, len, &rs);
			put_bytes(mm, addr + off, shadow + off, len);
		} else {
			get_bytes(mm, addr + off, buf, len);
			assert_memory_equal(buf, shadow + off, len);
		}
	}
	get_bytes(mm, addr, buf, sizeof(buf));
	assert_memory_equal(buf, shadow, sizeof(buf));
	/* A zero-length access does nothing and succeeds. */
	assert_int_equal(hmmu_access(mm, addr, buf, 0, HMMU_ACCESS_WRITE), 0);
	assert_int_equal(hmmu_access(mm, addr, NULL, 0, HMMU_ACCESS_READ), 0);
}

/* One access spans two adjacent VMAs of different protections. */
static void test_access_across_vmas(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	unsigned long b = hmmu_test_map_at(mm, a + 2 * PAGE, 2 * PAGE, RW | PROT_EXEC, MAP_FIXED_NOREPLACE);
	unsigned char in[2 * PAGE], out[2 * PAGE];
	uint64_t rs = hmmu_test_seed() ^ 0x2222;

	assert_int_equal(b, a + 2 * PAGE);
	assert_int_equal(stats(mm).nr_vmas, 2);
	fill_random(in, sizeof(in), &rs);
	put_bytes(mm, a + PAGE, in, sizeof(in));
	get_bytes(mm, a + PAGE, out, sizeof(out));
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(stats(mm).present_pages, 2);
}

/* -EFAULT: no VMA, PROT_NONE, write to read-only; earlier bytes were transferred. */
static void test_access_efault(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	unsigned long none = hmmu_test_map(mm, PAGE, PROT_NONE);
	unsigned char in[2 * PAGE], out[2 * PAGE];
	uint64_t rs = hmmu_test_seed() ^ 0x3333;

	assert_int_equal(hmmu_access(mm, 0x600000000000UL, out, 8, HMMU_ACCESS_READ), -EFAULT);
	assert_int_equal(hmmu_access(mm, 0x600000000000UL, out, 8, HMMU_ACCESS_WRITE), -EFAULT);
	assert_int_equal(hmmu_access(mm, none, out, 8, HMMU_ACCESS_READ), -EFAULT);
	assert_int_equal(hmmu_access(mm, none, out, 8, HMMU_ACCESS_WRITE), -EFAULT);
	assert_int_equal(hmmu_test_leaf(mm, none, NULL), 0);
	/* Second page read-only: a write spanning both stops at its start. */
	assert_int_equal(hmmu_mprotect(mm, a + PAGE, PAGE, PROT_READ), 0);
	fill_random(in, sizeof(in), &rs);
	assert_int_equal(hmmu_access(mm, a + 100, in, 2 * PAGE - 200, HMMU_ACCESS_WRITE), -EFAULT);
	get_bytes(mm, a, out, 2 * PAGE);
	assert_true(all_zero(out, 100));
	assert_memory_equal(out + 100, in, PAGE - 100);
	assert_true(all_zero(out + PAGE, PAGE));
	assert_int_equal(stats(mm).present_pages, 1);
	/* A read running into a hole fills the bytes before it and no others. */
	assert_int_equal(hmmu_munmap(mm, a + PAGE, PAGE), 0);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(hmmu_access(mm, a + PAGE - 10, out, 20, HMMU_ACCESS_READ), -EFAULT);
	assert_memory_equal(out, in + PAGE - 110, 10);
	for (int i = 10; i < 20; i++)
		assert_int_equal(out[i], 0xee);
}

/* -EINVAL for bad arguments, before anything is touched. */
static void test_access_einval(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	char buf[32];

	assert_int_equal(hmmu_access(NULL, a, buf, 1, HMMU_ACCESS_READ), -EINVAL);
	assert_int_equal(hmmu_access(mm, a, NULL, 1, HMMU_ACCESS_READ), -EINVAL);
	assert_int_equal(hmmu_access(mm, a, NULL, 1, HMMU_ACCESS_WRITE), -EINVAL);
	assert_int_equal(hmmu_access(mm, a, buf, 1, 0x2), -EINVAL);
	assert_int_equal(hmmu_access(mm, a, buf, 1, ~0u), -EINVAL);
	assert_int_equal(hmmu_access(mm, HMMU_TASK_SIZE - 8, buf, 16, HMMU_ACCESS_READ), -EINVAL);
	assert_int_equal(hmmu_access(mm, HMMU_TASK_SIZE, buf, 1, HMMU_ACCESS_READ), -EINVAL);
	assert_int_equal(hmmu_access(mm, ~0UL - 3, buf, 8, HMMU_ACCESS_READ), -EINVAL);
	assert_int_equal(hmmu_access(mm, 0, buf, HMMU_TASK_SIZE + 1, HMMU_ACCESS_READ), -EINVAL);
	assert_int_equal(hmmu_access(mm, 8, buf, ~0UL, HMMU_ACCESS_READ), -EINVAL);
	/* The last bytes below HMMU_TASK_SIZE are a valid range (nothing mapped). */
	assert_int_equal(hmmu_access(mm, HMMU_TASK_SIZE - 16, buf, 16, HMMU_ACCESS_READ), -EFAULT);
	assert_int_equal(hmmu_test_leaf(mm, a, NULL), 0);
	assert_int_equal(stats(mm).faults, 0);
}

/* ------------------------------------------------------------------ */
/* Page tables, MADV_DONTNEED                                          */
/* ------------------------------------------------------------------ */

static long nr_pgtables(struct hmmu_mm *mm)
{
	long n = atomic_load(&mm->nr_pgtables);

	assert_int_equal(stats(mm).page_tables, n);
	return n;
}

/* Tables appear as far-apart pages are touched and go with their last mapping. */
static void test_pgtables_alloc_free(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map_at(mm, 1 * GiB, PAGE, RW, MAP_FIXED);
	unsigned long b = hmmu_test_map_at(mm, 2 * GiB, PAGE, RW, MAP_FIXED);
	unsigned long c = hmmu_test_map_at(mm, 1 * GiB + 2 * MiB, 2 * PAGE, RW, MAP_FIXED);

	assert_int_equal(nr_pgtables(mm), 0);
	put_byte(mm, a, 1);		/* PUD + PMD + PTE tables */
	assert_int_equal(nr_pgtables(mm), 3);
	put_byte(mm, b, 2);		/* 1 GiB away: own PMD + PTE tables */
	assert_int_equal(nr_pgtables(mm), 5);
	put_byte(mm, c, 3);		/* 2 MiB away: own PTE table */
	assert_int_equal(nr_pgtables(mm), 6);
	put_byte(mm, c + PAGE, 4);	/* same PTE table */
	assert_int_equal(nr_pgtables(mm), 6);
	assert_int_equal(hmmu_pt_validate(mm), 0);

	assert_int_equal(hmmu_munmap(mm, a, PAGE), 0);
	assert_int_equal(nr_pgtables(mm), 5);
	assert_int_equal(hmmu_munmap(mm, c, PAGE), 0);	/* table still maps c + PAGE */
	assert_int_equal(nr_pgtables(mm), 5);
	assert_int_equal(hmmu_munmap(mm, c + PAGE, PAGE), 0);
	assert_int_equal(nr_pgtables(mm), 3);
	assert_int_equal(get_byte(mm, b), 2);
	assert_int_equal(hmmu_munmap(mm, b, PAGE), 0);
	assert_int_equal(nr_pgtables(mm), 0);
	assert_int_equal(atomic_load(&mm->pgd->nr_used), 0);
	assert_int_equal(stats(mm).nr_vmas, 0);
}

/* Unmapping a range that spans several tables frees all of them. */
static void test_pgtables_bulk_unmap(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long len = 8 * MiB;
	unsigned long a = hmmu_test_map(mm, len, RW);

	for (unsigned long off = 0; off < len; off += 512 * 1024)
		put_byte(mm, a + off, (unsigned char)(off >> 19));
	assert_true(nr_pgtables(mm) >= 6);
	assert_int_equal(stats(mm).present_pages, 16);
	assert_int_equal(hmmu_munmap(mm, a, len), 0);
	assert_int_equal(nr_pgtables(mm), 0);
}

/* MADV_DONTNEED drops pages; later reads see zeros. */
static void test_dontneed_zeroes(void **state)
{
	enum { NPAGES = 8 };
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, NPAGES * PAGE, RW);
	static unsigned char in[NPAGES * PAGE], out[NPAGES * PAGE];
	uint64_t rs = hmmu_test_seed() ^ 0x4444;
	long free0 = nr_free();

	fill_random(in, sizeof(in), &rs);
	put_bytes(mm, a, in, sizeof(in));
	assert_int_equal(nr_free(), free0 - NPAGES);
	assert_int_equal(hmmu_madvise(mm, a + 2 * PAGE, 4 * PAGE, MADV_DONTNEED), 0);
	assert_int_equal(nr_free(), free0 - NPAGES + 4);
	for (int i = 2; i < 6; i++)
		assert_int_equal(hmmu_test_leaf(mm, a + i * PAGE, NULL), 0);
	assert_int_equal(stats(mm).present_pages, 4);
	assert_int_equal(stats(mm).nr_vmas, 1);
	get_bytes(mm, a, out, sizeof(out));
	assert_memory_equal(out, in, 2 * PAGE);
	assert_true(all_zero(out + 2 * PAGE, 4 * PAGE));
	assert_memory_equal(out + 6 * PAGE, in + 6 * PAGE, 2 * PAGE);
	assert_int_equal(stats(mm).zero_pages, 4);
	/* A write after DONTNEED gets a fresh zeroed page. */
	put_byte(mm, a + 3 * PAGE + 9, 0x42);
	get_bytes(mm, a + 3 * PAGE, out, PAGE);
	assert_int_equal(out[9], 0x42);
	out[9] = 0;
	assert_true(all_zero(out, PAGE));
	/* DONTNEED of zero-page entries drops them too. */
	assert_int_equal(hmmu_madvise(mm, a, NPAGES * PAGE, MADV_DONTNEED), 0);
	assert_int_equal(stats(mm).zero_pages, 0);
	assert_int_equal(stats(mm).present_pages, 0);
	assert_int_equal(nr_free(), free0);
}

/* DONTNEED over a hole: -ENOMEM, the mapped parts are still dropped. */
static void test_dontneed_hole(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 5 * PAGE, RW);
	long free0 = nr_free();

	for (int i = 0; i < 5; i++)
		put_byte(mm, a + i * PAGE, (unsigned char)(i + 1));
	assert_int_equal(hmmu_munmap(mm, a + 2 * PAGE, PAGE), 0);
	assert_int_equal(nr_free(), free0 - 4);
	assert_int_equal(hmmu_madvise(mm, a, 5 * PAGE, MADV_DONTNEED), -ENOMEM);
	assert_int_equal(nr_free(), free0);
	assert_int_equal(get_byte(mm, a), 0);
	assert_int_equal(get_byte(mm, a + 4 * PAGE), 0);
	/* Entirely in a hole, beyond the last VMA, or starting in one. */
	assert_int_equal(hmmu_madvise(mm, a + 2 * PAGE, PAGE, MADV_DONTNEED), -ENOMEM);
	assert_int_equal(hmmu_madvise(mm, a + 5 * PAGE, PAGE, MADV_DONTNEED), -ENOMEM);
	assert_int_equal(hmmu_madvise(mm, a + 2 * PAGE, 2 * PAGE, MADV_DONTNEED), -ENOMEM);
	/* Bad arguments. */
	assert_int_equal(hmmu_madvise(mm, a + 1, PAGE, MADV_DONTNEED), -EINVAL);
	assert_int_equal(hmmu_madvise(NULL, a, PAGE, MADV_DONTNEED), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, a, PAGE, 12345), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, a, 0, MADV_DONTNEED), 0);
}

/* ------------------------------------------------------------------ */
/* 2 MiB entries                                                       */
/* ------------------------------------------------------------------ */

/* Map 4 MiB, advise its 2 MiB-aligned window MADV_HUGEPAGE; returns the window. */
static unsigned long map_huge_window(struct hmmu_mm *mm)
{
	unsigned long a = hmmu_test_map(mm, 4 * MiB, RW);
	unsigned long h = HMMU_ALIGN_UP(a, HMMU_PMD_SIZE);

	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
	return h;
}

/* Write the whole window with random bytes; returns the buffer (free it). */
static unsigned char *fill_window(struct hmmu_mm *mm, unsigned long h, uint64_t *rs)
{
	unsigned char *buf = malloc(HMMU_PMD_SIZE);

	assert_non_null(buf);
	fill_random(buf, HMMU_PMD_SIZE, rs);
	put_bytes(mm, h, buf, HMMU_PMD_SIZE);
	return buf;
}

/* Compare the window with @want, skipping pages [skip, skip + nskip). */
static void check_window(struct hmmu_mm *mm, unsigned long h, const unsigned char *want, unsigned long skip,
			 unsigned long nskip)
{
	unsigned char *buf = malloc(PAGE);

	assert_non_null(buf);
	for (unsigned long i = 0; i < HMMU_PT_ENTRIES; i++) {
		if (i >= skip && i < skip + nskip)
			continue;
		get_bytes(mm, h + i * PAGE, buf, PAGE);
		assert_memory_equal(buf, want + i * PAGE, PAGE);
	}
	free(buf);
}

static struct hmmu_page *huge_head(struct hmmu_mm *mm, unsigned long h)
{
	bool huge;
	hmmu_pte_t e = hmmu_test_leaf(mm, h, &huge);

	assert_true(huge);
	assert_true(hmmu_pmd_leaf(e));
	return hmmu_pfn_to_page(hmmu_pte_pfn(e));
}

/* A write fault in the window maps one order-9 page with one PMD entry. */
static void test_huge_write_fault(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	unsigned long h = map_huge_window(mm);
	uint64_t rs = hmmu_test_seed() ^ 0x5555;
	struct hmmu_mm_stats st;
	struct hmmu_page *head;
	unsigned char *buf;
	hmmu_pte_t e;

	put_byte(mm, h + 12345, 0x77);
	st = stats(mm);
	assert_int_equal(st.huge_pmds, 1);
	assert_int_equal(st.present_pages, 512);
	assert_int_equal(st.zero_pages, 0);
	assert_int_equal(st.page_tables, 2);	/* PUD and PMD tables only */
	assert_int_equal(nr_free(), free0 - 512);
	e = hmmu_test_leaf(mm, h + 3 * PAGE, NULL);
	assert_true(hmmu_pte_write(e) && hmmu_pte_dirty(e));
	head = huge_head(mm, h);
	assert_int_equal(hmmu_compound_order(head), HMMU_PMD_ORDER);
	assert_true(hmmu_page_test_flag(head, HMMU_PG_head));
	assert_int_equal(atomic_load(&head->_entire_mapcount), 1);
	assert_int_equal(hmmu_page_ref_count(head), 1);
	assert_int_equal(hmmu_page_mapcount(head + 100), 1);
	assert_true(hmmu_page_is_anon(head + 100));
	assert_ptr_equal(page_at(mm, h + 5 * PAGE + 1), head + 5);
	assert_int_equal(((unsigned char *)hmmu_page_address(head))[12345], 0x77);
	/* Data round trip over the whole 2 MiB. */
	buf = fill_window(mm, h, &rs);
	check_window(mm, h, buf, 0, 0);
	free(buf);
	assert_int_equal(stats(mm).huge_pmds, 1);
	assert_int_equal(nr_free(), free0 - 512);
}

/* A read fault in a huge-eligible VMA maps the zero page at PTE level. */
static void test_huge_read_fault_zero_pte(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_window(mm);
	struct hmmu_mm_stats st;
	bool huge;
	hmmu_pte_t e;

	assert_int_equal(get_byte(mm, h + 7), 0);
	e = hmmu_test_leaf(mm, h, &huge);
	assert_false(huge);
	assert_true(hmmu_is_zero_pfn(hmmu_pte_pfn(e)));
	st = stats(mm);
	assert_int_equal(st.huge_pmds, 0);
	assert_int_equal(st.zero_pages, 1);
	assert_int_equal(st.page_tables, 3);
	/* The PTE table now exists: a write maps a 4 KiB page. */
	put_byte(mm, h + PAGE, 1);
	st = stats(mm);
	assert_int_equal(st.huge_pmds, 0);
	assert_int_equal(st.present_pages, 1);
	assert_int_equal(hmmu_compound_order(page_at(mm, h + PAGE)), 0);
}

/* Only a VMA covering a whole aligned 2 MiB window, advised HUGEPAGE, gets huge entries. */
static void test_huge_eligibility(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * MiB, RW);
	unsigned long h = HMMU_ALIGN_UP(a, HMMU_PMD_SIZE);

	put_byte(mm, h, 1);	/* not advised */
	assert_int_equal(stats(mm).huge_pmds, 0);
	assert_int_equal(hmmu_munmap(mm, a, 4 * MiB), 0);

	a = hmmu_test_map(mm, 4 * MiB, RW);
	h = HMMU_ALIGN_UP(a, HMMU_PMD_SIZE);
	/* Advised, but the advised VMA is one page short of the window. */
	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE - PAGE, MADV_HUGEPAGE), 0);
	put_byte(mm, h, 1);
	assert_int_equal(stats(mm).huge_pmds, 0);
	assert_int_equal(hmmu_munmap(mm, a, 4 * MiB), 0);

	a = hmmu_test_map(mm, 4 * MiB, RW);
	h = HMMU_ALIGN_UP(a, HMMU_PMD_SIZE);
	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE, MADV_NOHUGEPAGE), 0);
	put_byte(mm, h, 1);
	assert_int_equal(stats(mm).huge_pmds, 0);
	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
	put_byte(mm, h + HMMU_PMD_SIZE / 2, 1);	/* PTE table already there */
	assert_int_equal(stats(mm).huge_pmds, 0);
}

/* A partial munmap splits the PMD; every other byte stays, the page stays whole. */
static void test_huge_partial_munmap(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	unsigned long h = map_huge_window(mm);
	uint64_t rs = hmmu_test_seed() ^ 0x6666;
	unsigned char *want = fill_window(mm, h, &rs);
	struct hmmu_page *head = huge_head(mm, h);
	unsigned long pfn = hmmu_page_to_pfn(head);
	struct hmmu_mm_stats st;

	assert_int_equal(hmmu_munmap(mm, h + 7 * PAGE, 2 * PAGE), 0);
	st = stats(mm);
	assert_int_equal(st.huge_pmds, 0);
	assert_int_equal(st.present_pages, 510);
	assert_int_equal(st.page_tables, 3);
	for (unsigned long i = 0; i < HMMU_PT_ENTRIES; i++) {
		bool huge;
		hmmu_pte_t e = hmmu_test_leaf(mm, h + i * PAGE, &huge);

		assert_false(huge);
		if (i == 7 || i == 8) {
			assert_int_equal(e, 0);
			assert_int_equal(hmmu_page_mapcount(head + i), 0);
		} else {
			assert_int_equal(hmmu_pte_pfn(e), pfn + i);
			assert_true(hmmu_pte_write(e));
			assert_int_equal(hmmu_page_mapcount(head + i), 1);
		}
	}
	assert_int_equal(hmmu_page_ref_count(head), 510);
	assert_int_equal(atomic_load(&head->_entire_mapcount), 0);
	assert_int_equal(hmmu_compound_order(head), HMMU_PMD_ORDER);
	assert_int_equal(nr_free(), free0 - 512);	/* freed whole, at the last unmap */
	check_window(mm, h, want, 7, 2);
	assert_int_equal(hmmu_access(mm, h + 7 * PAGE, want, 1, HMMU_ACCESS_READ), -EFAULT);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	free(want);
	assert_int_equal(hmmu_munmap(mm, h - 2 * MiB, 8 * MiB), 0);
	assert_int_equal(nr_free(), free0);
	assert_int_equal(nr_pgtables(mm), 0);
}

/* A partial mprotect splits the PMD and write-protects just that page. */
static void test_huge_partial_mprotect(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_window(mm);
	uint64_t rs = hmmu_test_seed() ^ 0x7777;
	unsigned char *want = fill_window(mm, h, &rs);
	struct hmmu_page *head = huge_head(mm, h);
	unsigned long nvmas = stats(mm).nr_vmas;
	struct hmmu_mm_stats st;
	unsigned char v = 0x3c;

	assert_int_equal(hmmu_mprotect(mm, h + 100 * PAGE, PAGE, PROT_READ), 0);
	st = stats(mm);
	assert_int_equal(st.huge_pmds, 0);
	assert_int_equal(st.present_pages, 512);
	assert_int_equal(st.nr_vmas, nvmas + 2);
	for (unsigned long i = 0; i < HMMU_PT_ENTRIES; i++)
		assert_int_equal(hmmu_pte_write(hmmu_test_leaf(mm, h + i * PAGE, NULL)), i != 100);
	check_window(mm, h, want, 0, 0);
	assert_int_equal(hmmu_access(mm, h + 100 * PAGE, &v, 1, HMMU_ACCESS_WRITE), -EFAULT);
	put_byte(mm, h + 99 * PAGE, v);		/* writable PTE: no copy */
	assert_ptr_equal(page_at(mm, h + 99 * PAGE), head + 99);
	assert_int_equal(stats(mm).cow_faults, 0);
	want[99 * PAGE] = v;
	/* Back to read-write: the VMAs merge again, the data stays. */
	assert_int_equal(hmmu_mprotect(mm, h + 100 * PAGE, PAGE, RW), 0);
	assert_int_equal(stats(mm).nr_vmas, nvmas);
	put_byte(mm, h + 100 * PAGE + 1, v);
	want[100 * PAGE + 1] = v;
	check_window(mm, h, want, 0, 0);
	free(want);
}

/* mprotect of the whole window keeps the PMD entry, minus write. */
static void test_huge_whole_mprotect(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_window(mm);
	struct hmmu_page *head;
	unsigned char v = 9;

	put_byte(mm, h, 1);
	head = huge_head(mm, h);
	assert_int_equal(hmmu_mprotect(mm, h, HMMU_PMD_SIZE, PROT_READ), 0);
	assert_ptr_equal(huge_head(mm, h), head);
	assert_false(hmmu_pte_write(hmmu_test_leaf(mm, h, NULL)));
	assert_int_equal(hmmu_access(mm, h + 5, &v, 1, HMMU_ACCESS_WRITE), -EFAULT);
	assert_int_equal(get_byte(mm, h), 1);
	assert_int_equal(hmmu_mprotect(mm, h, HMMU_PMD_SIZE, RW), 0);
	put_byte(mm, h + 5, v);
	assert_ptr_equal(huge_head(mm, h), head);
	assert_true(hmmu_pte_write(hmmu_test_leaf(mm, h, NULL)));
	assert_int_equal(stats(mm).huge_pmds, 1);
	assert_int_equal(stats(mm).cow_faults, 0);
	assert_int_equal(get_byte(mm, h + 5), v);
}

/* Unmapping the whole window frees all 512 pages and the tables. */
static void test_huge_whole_munmap(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	unsigned long h = map_huge_window(mm);

	put_byte(mm, h + HMMU_PMD_SIZE - 1, 1);
	assert_int_equal(nr_free(), free0 - 512);
	assert_int_equal(hmmu_munmap(mm, h, HMMU_PMD_SIZE), 0);
	assert_int_equal(nr_free(), free0);
	assert_int_equal(nr_pgtables(mm), 0);
	assert_int_equal(stats(mm).huge_pmds, 0);
}

/* DONTNEED of one page splits; of the whole window frees it. */
static void test_huge_dontneed(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	unsigned long h = map_huge_window(mm);
	uint64_t rs = hmmu_test_seed() ^ 0x8888;
	unsigned char *want = fill_window(mm, h, &rs);

	assert_int_equal(hmmu_madvise(mm, h + 300 * PAGE, PAGE, MADV_DONTNEED), 0);
	assert_int_equal(stats(mm).huge_pmds, 0);
	assert_int_equal(stats(mm).present_pages, 511);
	memset(want + 300 * PAGE, 0, PAGE);
	check_window(mm, h, want, 0, 0);
	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE, MADV_DONTNEED), 0);
	assert_int_equal(nr_free(), free0);
	assert_int_equal(stats(mm).present_pages, 0);
	assert_int_equal(get_byte(mm, h + 301 * PAGE), 0);
	free(want);
}

/*
 * A VMA boundary moved inside a huge entry (here by MADV_NOHUGEPAGE on part
 * of it) splits the entry, as Linux's vma_adjust_trans_huge does: no PMD
 * leaf may straddle two VMAs.
 */
static void test_huge_split_by_vma_split(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_window(mm);
	uint64_t rs = hmmu_test_seed() ^ 0x9999;
	unsigned char *want = fill_window(mm, h, &rs);

	assert_int_equal(hmmu_madvise(mm, h + 4 * PAGE, 8 * PAGE, MADV_NOHUGEPAGE), 0);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	assert_int_equal(stats(mm).huge_pmds, 0);
	assert_int_equal(stats(mm).present_pages, 512);
	check_window(mm, h, want, 0, 0);
	free(want);
}

/* ------------------------------------------------------------------ */
/* get_user_pages and pins                                             */
/* ------------------------------------------------------------------ */

/* GUP hands out referenced pages; read GUP of an untouched page gives the zero page. */
static void test_gup_get(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	struct hmmu_page *zero = hmmu_zero_page(), *pages[4], *p1;
	int zero_ref = hmmu_page_ref_count(zero);

	put_byte(mm, a + PAGE + 3, 0xab);
	put_byte(mm, a + 3 * PAGE, 1);
	p1 = page_at(mm, a + PAGE);
	assert_int_equal(gup(mm, a, 4, 0, pages), 4);
	assert_ptr_equal(pages[0], zero);
	assert_ptr_equal(pages[1], p1);
	assert_ptr_equal(pages[2], zero);
	assert_ptr_equal(pages[3], page_at(mm, a + 3 * PAGE));
	assert_int_equal(hmmu_page_ref_count(p1), 2);
	assert_int_equal(hmmu_page_mapcount(p1), 1);
	assert_int_equal(hmmu_page_ref_count(zero), zero_ref + 2);
	assert_false(hmmu_page_maybe_dma_pinned(p1));
	assert_int_equal(((unsigned char *)hmmu_page_address(p1))[3], 0xab);
	for (int i = 0; i < 4; i++)
		hmmu_put_page(pages[i]);
	assert_int_equal(hmmu_page_ref_count(p1), 1);
	assert_int_equal(hmmu_page_ref_count(zero), zero_ref);
	assert_int_equal(gup(mm, a, 0, 0, NULL), 0);
}

/* FOLL_WRITE on a zero-page mapping breaks it into a private page. */
static void test_gup_write_breaks_zero_page(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct hmmu_page *page;
	hmmu_pte_t e;

	assert_int_equal(get_byte(mm, a), 0);
	assert_int_equal(gup(mm, a, 1, HMMU_FOLL_WRITE, &page), 1);
	e = hmmu_test_leaf(mm, a, NULL);
	assert_ptr_not_equal(page, hmmu_zero_page());
	assert_int_equal(hmmu_pte_pfn(e), hmmu_page_to_pfn(page));
	assert_true(hmmu_pte_write(e));
	assert_int_equal(hmmu_page_ref_count(page), 2);
	assert_int_equal(hmmu_page_mapcount(page), 1);
	assert_int_equal(stats(mm).cow_faults, 1);
	/* Through the reference, the device's write shows in the mapping. */
	((unsigned char *)hmmu_page_address(page))[17] = 0x17;
	hmmu_put_page(page);
	assert_int_equal(get_byte(mm, a + 17), 0x17);
}

/* Pins are visible to hmmu_page_maybe_dma_pinned until unpinned. */
static void test_gup_pin(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 3 * PAGE, RW);
	struct hmmu_page *pages[3];

	assert_int_equal(pin(mm, a, 3, HMMU_FOLL_WRITE | HMMU_FOLL_LONGTERM, pages), 3);
	assert_int_equal(atomic_load(&mm->nr_longterm_pins), 3);
	for (int i = 0; i < 3; i++) {
		assert_ptr_equal(pages[i], page_at(mm, a + i * PAGE));
		assert_true(hmmu_page_maybe_dma_pinned(pages[i]));
		assert_int_equal(hmmu_page_ref_count(pages[i]), 2);
	}
	hmmu_unpin_user_page(pages[1]);
	assert_false(hmmu_page_maybe_dma_pinned(pages[1]));
	assert_true(hmmu_page_maybe_dma_pinned(pages[0]));
	assert_int_equal(hmmu_page_ref_count(pages[1]), 1);
	/* Two pins of one page need two unpins. */
	assert_int_equal(pin(mm, a, 1, 0, &pages[1]), 1);
	assert_ptr_equal(pages[1], pages[0]);
	hmmu_unpin_user_page(pages[1]);
	assert_true(hmmu_page_maybe_dma_pinned(pages[0]));
	hmmu_unpin_user_pages((struct hmmu_page *[]){ pages[0], pages[2] }, 2);
	for (int i = 0; i < 3; i++) {
		assert_false(hmmu_page_maybe_dma_pinned(pages[i]));
		assert_int_equal(hmmu_page_ref_count(pages[i]), 1);
	}
}

/* -EFAULT when the first page cannot be had. */
static void test_gup_efault(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long ro = hmmu_test_map(mm, PAGE, PROT_READ);
	unsigned long none = hmmu_test_map(mm, PAGE, PROT_NONE);
	struct hmmu_page *page;

	assert_int_equal(gup(mm, 0x500000000000UL, 1, 0, &page), -EFAULT);
	assert_int_equal(pin(mm, 0x500000000000UL, 1, 0, &page), -EFAULT);
	assert_int_equal(gup(mm, none, 1, 0, &page), -EFAULT);
	assert_int_equal(gup(mm, ro, 1, HMMU_FOLL_WRITE, &page), -EFAULT);
	assert_int_equal(pin(mm, ro, 1, HMMU_FOLL_WRITE, &page), -EFAULT);
	assert_int_equal(hmmu_test_leaf(mm, ro, NULL), 0);
	assert_int_equal(gup(mm, ro, 1, 0, &page), 1);
	assert_ptr_equal(page, hmmu_zero_page());
	hmmu_put_page(page);
	/* PFNMAP / IO VMAs are not for GUP. */
	hmmu_mmap_write_lock(mm);
	hmmu_vma_lookup(mm, ro)->vm_flags |= HMMU_VM_IO;
	hmmu_mmap_write_unlock(mm);
	assert_int_equal(gup(mm, ro, 1, 0, &page), -EFAULT);
	hmmu_mmap_write_lock(mm);
	hmmu_vma_lookup(mm, ro)->vm_flags &= ~HMMU_VM_IO;
	hmmu_mmap_write_unlock(mm);
}

/* A range running off its VMA returns the pages before the failure. */
static void test_gup_partial(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);
	struct hmmu_page *pages[8];

	assert_int_equal(hmmu_munmap(mm, a + 4 * PAGE, 4 * PAGE), 0);
	assert_int_equal(gup(mm, a + PAGE, 6, HMMU_FOLL_WRITE, pages), 3);
	for (int i = 0; i < 3; i++) {
		assert_ptr_equal(pages[i], page_at(mm, a + (i + 1) * PAGE));
		hmmu_put_page(pages[i]);
	}
	/* Read-only tail: a write GUP stops there, a read GUP does not. */
	assert_int_equal(hmmu_mprotect(mm, a + 2 * PAGE, 2 * PAGE, PROT_READ), 0);
	assert_int_equal(pin(mm, a, 4, HMMU_FOLL_WRITE, pages), 2);
	hmmu_unpin_user_pages(pages, 2);
	assert_int_equal(pin(mm, a, 4, 0, pages), 4);
	hmmu_unpin_user_pages(pages, 4);
}

/* -EINVAL for bad arguments. */
static void test_gup_einval(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_page *pages[2];

	assert_int_equal(hmmu_get_user_pages_remote(NULL, a, 1, 0, pages), -EINVAL);
	assert_int_equal(hmmu_pin_user_pages_remote(NULL, a, 1, 0, pages), -EINVAL);
	assert_int_equal(gup(mm, a, 1, 0, NULL), -EINVAL);
	assert_int_equal(gup(mm, a + 1, 1, 0, pages), -EINVAL);
	assert_int_equal(gup(mm, a, 1, 0x2, pages), -EINVAL);
	assert_int_equal(gup(mm, a, 1, HMMU_FOLL_PIN, pages), -EINVAL);
	assert_int_equal(pin(mm, a, 1, HMMU_FOLL_GET, pages), -EINVAL);
	assert_int_equal(gup(mm, HMMU_TASK_SIZE - PAGE, 2, 0, pages), -EINVAL);
	assert_int_equal(gup(mm, HMMU_TASK_SIZE, 1, 0, pages), -EINVAL);
	assert_int_equal(gup(mm, a, ~0UL, 0, pages), -EINVAL);
	assert_int_equal(gup(mm, a, 1UL << 52, 0, pages), -EINVAL);
	assert_int_equal(hmmu_test_leaf(mm, a, NULL), 0);
}

/* A page referenced by GUP outlives its mapping until put. */
static void test_gup_survives_munmap(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_page *got, *pinned;
	long free0 = nr_free();

	put_byte(mm, a + 5, 0x55);
	put_byte(mm, a + PAGE + 6, 0x66);
	assert_int_equal(gup(mm, a, 1, 0, &got), 1);
	assert_int_equal(pin(mm, a + PAGE, 1, HMMU_FOLL_LONGTERM, &pinned), 1);
	assert_int_equal(hmmu_munmap(mm, a, 2 * PAGE), 0);
	assert_int_equal(nr_free(), free0 - 2);
	assert_int_equal(hmmu_page_ref_count(got), 1);
	assert_int_equal(hmmu_page_mapcount(got), 0);
	assert_int_equal(((unsigned char *)hmmu_page_address(got))[5], 0x55);
	assert_true(hmmu_page_maybe_dma_pinned(pinned));
	assert_int_equal(((unsigned char *)hmmu_page_address(pinned))[6], 0x66);
	hmmu_put_page(got);
	assert_int_equal(nr_free(), free0 - 1);
	hmmu_unpin_user_page(pinned);
	assert_int_equal(nr_free(), free0);
}

/* Pages referenced by GUP outlive the whole address space until put. */
static void test_gup_survives_mmput(void **state)
{
	long free0 = nr_free();
	struct hmmu_page *pages[2];
	struct hmmu_mm *mm;
	unsigned long a;

	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm), 0);
	a = hmmu_test_map(mm, 2 * PAGE, RW);
	put_byte(mm, a + 1, 0x11);
	put_byte(mm, a + PAGE + 2, 0x22);
	assert_int_equal(gup(mm, a, 1, 0, &pages[0]), 1);
	assert_int_equal(pin(mm, a + PAGE, 1, HMMU_FOLL_LONGTERM, &pages[1]), 1);
	hmmu_mmput(mm);
	assert_int_equal(nr_free(), free0 - 2);
	assert_int_equal(hmmu_page_mapcount(pages[0]), 0);
	assert_int_equal(hmmu_page_ref_count(pages[0]), 1);
	assert_int_equal(((unsigned char *)hmmu_page_address(pages[0]))[1], 0x11);
	assert_int_equal(((unsigned char *)hmmu_page_address(pages[1]))[2], 0x22);
	hmmu_put_page(pages[0]);
	hmmu_unpin_user_page(pages[1]);
	assert_int_equal(nr_free(), free0);
}

/* GUP of a PMD-mapped page returns its subpages and references the head. */
static void test_gup_huge(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_window(mm);
	struct hmmu_page *pages[3], *head;

	put_byte(mm, h, 1);
	head = huge_head(mm, h);
	assert_int_equal(pin(mm, h + 10 * PAGE, 3, HMMU_FOLL_WRITE, pages), 3);
	for (int i = 0; i < 3; i++)
		assert_ptr_equal(pages[i], head + 10 + i);
	assert_int_equal(hmmu_page_ref_count(head), 4);
	assert_true(hmmu_page_maybe_dma_pinned(head + 200));
	assert_int_equal(atomic_load(&head->_pincount), 3);
	hmmu_unpin_user_pages(pages, 3);
	assert_false(hmmu_page_maybe_dma_pinned(head));
	assert_int_equal(hmmu_page_ref_count(head), 1);
	assert_int_equal(stats(mm).huge_pmds, 1);
}

/* ------------------------------------------------------------------ */
/* Waiting on migration entries                                        */
/* ------------------------------------------------------------------ */

struct access_job {
	struct hmmu_mm *mm;
	unsigned long addr;
	unsigned char buf[64];
	unsigned int flags;
	int ret;
	atomic_bool done;
};

static void *access_job_run(void *arg)
{
	struct access_job *j = arg;

	j->ret = hmmu_access(j->mm, j->addr, j->buf, sizeof(j->buf), j->flags);
	atomic_store(&j->done, true);
	return NULL;
}

/*
 * Put a migration entry for @page (mapped at @addr, locked by the caller)
 * in place of its PTE, as a migration does: the entry holds no mapcount and
 * no reference (the caller keeps the mapping's reference).  Returns the PTE.
 */
static hmmu_pte_t install_migration_entry(struct hmmu_mm *mm, unsigned long addr, struct hmmu_page *page)
{
	struct hmmu_swp_entry se = hmmu_make_swp_entry(HMMU_SWP_MIGRATION_WRITE, hmmu_page_to_pfn(page));
	hmmu_pte_t old;

	se.young = se.dirty = true;
	old = hmmu_test_swap_pte(mm, addr, hmmu_swp_entry_to_pte(se));
	assert_int_equal(hmmu_pte_pfn(old), hmmu_page_to_pfn(page));
	hmmu_page_remove_rmap(page, false);
	return old;
}

static void remove_migration_entry(struct hmmu_mm *mm, unsigned long addr, struct hmmu_page *page,
				   hmmu_pte_t pte)
{
	atomic_fetch_add(&page->_mapcount, 1);
	hmmu_test_swap_pte(mm, addr, pte);
}

/* What the waiter looked like while the migration entry was in place. */
struct wait_observation {
	bool waiting;		/* PG_waiters appeared on the head */
	bool done_early;	/* the access finished while the entry was there */
	int ref;		/* page refcount meanwhile */
	bool finished;		/* the access finished after the restore, unrescued */
};

/*
 * With @page locked and a migration entry in place at @addr, run @job and
 * watch it wait; then restore @pte, unlock and join.  Asserts nothing (the
 * caller does, once every lock is released and the thread joined).
 */
static void observe_migration_wait(struct hmmu_mm *mm, unsigned long addr, struct hmmu_page *page,
				   hmmu_pte_t pte, struct access_job *job, struct wait_observation *o)
{
	pthread_t t_job;
	struct hmmu_page *head = hmmu_compound_head(page);
	bool started = pthread_create(&t_job, NULL, access_job_run, job) == 0;

	o->waiting = started && wait_for_flag(head, HMMU_PG_waiters);
	o->ref = hmmu_page_ref_count(page);
	o->done_early = atomic_load(&job->done);
	remove_migration_entry(mm, addr, page, pte);
	hmmu_unlock_page(page);
	if (!started)
		return;
	o->finished = join_within(t_job, WAIT_LIMIT_MS);
	if (!o->finished) {
		/* Lost wake-up: rescue the thread so the fixture can clean up. */
		hmmu_wake_bucket(hmmu_wait_bucket_of(page));
		hmmu_wake_bucket(hmmu_wait_bucket_of(head));
		join_within(t_job, 10 * WAIT_LIMIT_MS);
	}
}

/*
 * An access to a page under migration sleeps without taking a reference and
 * completes with the right data once the entry is restored and the page
 * unlocked.  @page (a base page or a subpage) is mapped at @addr.
 */
static void check_migration_wait(struct hmmu_mm *mm, unsigned long addr, struct hmmu_page *page,
				 unsigned int flags, const unsigned char *data)
{
	struct access_job job = { .mm = mm, .addr = addr, .flags = flags };
	int ref = hmmu_page_ref_count(page), mapcount = hmmu_page_mapcount(page);
	struct wait_observation o = { 0 };
	hmmu_pte_t pte;

	if (flags & HMMU_ACCESS_WRITE)
		memcpy(job.buf, data, sizeof(job.buf));
	assert_false(hmmu_page_test_flag(hmmu_compound_head(page), HMMU_PG_waiters));
	hmmu_lock_page(page);
	pte = install_migration_entry(mm, addr, page);
	/* The entry holds neither a mapcount nor a reference; we keep the mapping's. */
	assert_int_equal(hmmu_page_mapcount(page), mapcount - 1);
	assert_int_equal(hmmu_page_ref_count(page), ref);
	observe_migration_wait(mm, addr, page, pte, &job, &o);
	assert_true(o.waiting);
	assert_false(o.done_early);
	assert_int_equal(o.ref, ref);	/* waiting took no reference */
	assert_true(o.finished);
	assert_int_equal(job.ret, 0);
	assert_int_equal(hmmu_page_ref_count(page), ref);
	assert_int_equal(hmmu_page_mapcount(page), mapcount);
	if (!(flags & HMMU_ACCESS_WRITE))
		assert_memory_equal(job.buf, data, sizeof(job.buf));
	else
		assert_memory_equal((unsigned char *)hmmu_page_address(page) + (addr & ~HMMU_PAGE_MASK), data,
				    sizeof(job.buf));
}

/* Read and write accesses wait on a migration entry of a base page. */
static void test_migration_entry_wait(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	uint64_t rs = hmmu_test_seed() ^ 0xaaaa;
	unsigned char data[64];
	struct hmmu_page *page;

	/* One fresh page per round: PG_waiters may legitimately stay set after a wait. */
	fill_random(data, sizeof(data), &rs);
	put_bytes(mm, a + 100, data, sizeof(data));
	page = page_at(mm, a);
	check_migration_wait(mm, a + 100, page, HMMU_ACCESS_READ, data);
	assert_int_equal(hmmu_page_ref_count(page), 1);
	assert_int_equal(hmmu_page_mapcount(page), 1);
	fill_random(data, sizeof(data), &rs);
	put_byte(mm, a + PAGE, 1);
	page = page_at(mm, a + PAGE);
	check_migration_wait(mm, a + PAGE + 200, page, HMMU_ACCESS_WRITE, data);
	assert_int_equal(get_byte(mm, a + PAGE + 200), data[0]);
	assert_int_equal(hmmu_page_ref_count(page), 1);
	assert_int_equal(hmmu_page_mapcount(page), 1);
}

/* The same for a PTE-mapped subpage of a huge page: the page lock is the head's. */
static void test_migration_entry_wait_subpage(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long h = map_huge_window(mm);
	uint64_t rs = hmmu_test_seed() ^ 0xbbbb;
	unsigned char *want = fill_window(mm, h, &rs);
	struct hmmu_page *head = huge_head(mm, h);

	/* Split the PMD by write-protecting one page of it. */
	assert_int_equal(hmmu_mprotect(mm, h, PAGE, PROT_READ), 0);
	assert_ptr_equal(page_at(mm, h + 37 * PAGE), head + 37);
	check_migration_wait(mm, h + 37 * PAGE + 64, head + 37, HMMU_ACCESS_READ, want + 37 * PAGE + 64);
	free(want);
}

/* ------------------------------------------------------------------ */
/* Concurrency                                                         */
/* ------------------------------------------------------------------ */

enum { NTHREADS = 4, OWN_PAGES = 64, SHARED_PAGES = 32, DN_PAGES = 32, ROUNDS = 400 };
#define SLOT 64

struct fault_race {
	struct hmmu_mm *mm;
	unsigned long base;
	pthread_barrier_t barrier;
	atomic_bool stop;
};

struct fault_worker {
	struct fault_race *race;
	int id;
	uint64_t rs;
	unsigned char own[OWN_PAGES / NTHREADS][SLOT * 2];
	unsigned char shared[SHARED_PAGES];
	int err;
};

/* Own pages: page i belongs to thread i % NTHREADS; check the bytes at offset 0..127. */
static unsigned long own_addr(struct fault_race *r, int id, int k)
{
	return r->base + (unsigned long)(k * NTHREADS + id) * PAGE + 1000;
}

static unsigned long shared_addr(struct fault_race *r, int id, int k)
{
	return r->base + (unsigned long)(OWN_PAGES + k) * PAGE + (unsigned long)id * SLOT;
}

static unsigned long dn_addr(struct fault_race *r, int k)
{
	return r->base + (unsigned long)(OWN_PAGES + SHARED_PAGES + k) * PAGE;
}

static void fault_worker_round(struct fault_worker *w)
{
	struct fault_race *r = w->race;
	uint64_t x = hmmu_test_rand(&w->rs);
	int k = (int)(x % (OWN_PAGES / NTHREADS));
	unsigned char buf[SLOT * 2];

	switch ((x >> 32) % 3) {
	case 0:
		fill_random(w->own[k], sizeof(w->own[k]), &w->rs);
		w->err |= hmmu_access(r->mm, own_addr(r, w->id, k), w->own[k], sizeof(w->own[k]),
				      HMMU_ACCESS_WRITE);
		break;
	case 1:
		k = (int)((x >> 8) % SHARED_PAGES);
		w->shared[k] = (unsigned char)(x >> 40);
		memset(buf, w->shared[k], SLOT);
		w->err |= hmmu_access(r->mm, shared_addr(r, w->id, k), buf, SLOT, HMMU_ACCESS_WRITE);
		break;
	default:
		/* Pages DONTNEED drops are read: always zero or the dropper's pattern. */
		k = (int)((x >> 8) % DN_PAGES);
		w->err |= hmmu_access(r->mm, dn_addr(r, k), buf, SLOT, HMMU_ACCESS_READ);
		for (int i = 0; i < SLOT; i++)
			if (buf[i] && buf[i] != 0xd0 + (k & 7))
				w->err |= -EIO;
		break;
	}
}

static void *fault_worker_run(void *arg)
{
	struct fault_worker *w = arg;

	pthread_barrier_wait(&w->race->barrier);
	for (int i = 0; i < ROUNDS && !w->err; i++)
		fault_worker_round(w);
	return NULL;
}

/* Write a pattern into the DONTNEED pages and drop them again, until told to stop. */
static void *dontneed_run(void *arg)
{
	struct fault_worker *w = arg;
	struct fault_race *r = w->race;
	unsigned char buf[SLOT];

	pthread_barrier_wait(&r->barrier);
	while (!atomic_load(&r->stop) && !w->err) {
		int k = (int)(hmmu_test_rand(&w->rs) % DN_PAGES);

		memset(buf, 0xd0 + (k & 7), sizeof(buf));
		w->err |= hmmu_access(r->mm, dn_addr(r, k), buf, sizeof(buf), HMMU_ACCESS_WRITE);
		w->err |= hmmu_madvise(r->mm, dn_addr(r, k & ~3), 4 * PAGE, MADV_DONTNEED);
		sched_yield();
	}
	return NULL;
}

static void check_fault_worker(struct fault_worker *w)
{
	struct fault_race *r = w->race;
	unsigned char buf[SLOT * 2];

	assert_int_equal(w->err, 0);
	for (int k = 0; k < OWN_PAGES / NTHREADS; k++) {
		get_bytes(r->mm, own_addr(r, w->id, k), buf, sizeof(buf));
		assert_memory_equal(buf, w->own[k], sizeof(buf));
	}
	for (int k = 0; k < SHARED_PAGES; k++) {
		get_bytes(r->mm, shared_addr(r, w->id, k), buf, SLOT);
		for (int i = 0; i < SLOT; i++)
			assert_int_equal(buf[i], w->shared[k]);
	}
}

/*
 * Threads fault and write their own pages and their own slots of shared
 * pages while another thread writes and drops other pages of the same
 * tables; each thread's final bytes are intact.
 */
static void test_concurrent_faults_dontneed(void **state)
{
	static struct fault_worker workers[NTHREADS + 1];
	struct fault_race race = { .mm = hmmu_test_mm() };
	pthread_t t[NTHREADS + 1];

	race.base = hmmu_test_map(race.mm, (OWN_PAGES + SHARED_PAGES + DN_PAGES) * PAGE, RW);
	pthread_barrier_init(&race.barrier, NULL, NTHREADS + 1);
	memset(workers, 0, sizeof(workers));
	for (int i = 0; i <= NTHREADS; i++) {
		workers[i] = (struct fault_worker){ .race = &race, .id = i, .rs = hmmu_test_seed() + i };
		assert_int_equal(pthread_create(&t[i], NULL, i < NTHREADS ? fault_worker_run : dontneed_run,
						&workers[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		assert_true(join_within(t[i], 10 * WAIT_LIMIT_MS));
	atomic_store(&race.stop, true);
	assert_true(join_within(t[NTHREADS], 10 * WAIT_LIMIT_MS));
	pthread_barrier_destroy(&race.barrier);
	assert_int_equal(workers[NTHREADS].err, 0);
	for (int i = 0; i < NTHREADS; i++)
		check_fault_worker(&workers[i]);
	assert_int_equal(hmmu_pt_validate(race.mm), 0);
}

enum { RACE_PAGES = 32, RACE_ITERS = 40 };

struct rw_racer {
	struct fault_race *race;
	int id;
	uint64_t rs;
	int err;
};

/* Touch every page in a random order, reading or writing this thread's byte. */
static void *rw_racer_run(void *arg)
{
	struct rw_racer *w = arg;
	struct fault_race *r = w->race;

	pthread_barrier_wait(&r->barrier);
	for (int i = 0; i < RACE_PAGES && !w->err; i++) {
		int k = (int)((i * 7 + w->id * 5) % RACE_PAGES);
		unsigned long addr = r->base + (unsigned long)k * PAGE + (unsigned long)w->id;
		unsigned char v = (unsigned char)(0x10 + w->id), got = 0xff;

		if (hmmu_test_rand(&w->rs) & 1)
			w->err |= hmmu_access(r->mm, addr, &got, 1, HMMU_ACCESS_READ) || got != 0;
		w->err |= hmmu_access(r->mm, addr, &v, 1, HMMU_ACCESS_WRITE);
	}
	return NULL;
}

/* Threads race read and write faults on the same untouched pages. */
static void test_concurrent_read_write_faults(void **state)
{
	struct fault_race race = { .mm = hmmu_test_mm() };
	struct rw_racer w[NTHREADS];
	pthread_t t[NTHREADS];

	pthread_barrier_init(&race.barrier, NULL, NTHREADS);
	for (int it = 0; it < RACE_ITERS; it++) {
		race.base = hmmu_test_map(race.mm, RACE_PAGES * PAGE, RW);
		for (int i = 0; i < NTHREADS; i++) {
			w[i] = (struct rw_racer){ .race = &race, .id = i, .rs = hmmu_test_seed() * (it + 1) + i };
			assert_int_equal(pthread_create(&t[i], NULL, rw_racer_run, &w[i]), 0);
		}
		for (int i = 0; i < NTHREADS; i++) {
			assert_true(join_within(t[i], 10 * WAIT_LIMIT_MS));
			assert_int_equal(w[i].err, 0);
		}
		for (int k = 0; k < RACE_PAGES; k++)
			for (int i = 0; i < NTHREADS; i++)
				assert_int_equal(get_byte(race.mm, race.base + (unsigned long)k * PAGE + i), 0x10 + i);
		assert_int_equal(stats(race.mm).present_pages, RACE_PAGES);
		assert_int_equal(stats(race.mm).zero_pages, 0);
		assert_int_equal(hmmu_pt_validate(race.mm), 0);
		assert_int_equal(hmmu_munmap(race.mm, race.base, RACE_PAGES * PAGE), 0);
	}
	pthread_barrier_destroy(&race.barrier);
}

/* The same race in huge-page windows: huge installs against PTE-table population. */
static void *huge_racer_run(void *arg)
{
	struct rw_racer *w = arg;
	struct fault_race *r = w->race;

	pthread_barrier_wait(&r->barrier);
	for (int k = 0; k < 4 && !w->err; k++) {
		unsigned long addr = r->base + (unsigned long)k * HMMU_PMD_SIZE + (unsigned long)w->id * 4097;
		unsigned char v = (unsigned char)(0x20 + w->id), got = 0xff;

		if ((w->id + k) & 1)
			w->err |= hmmu_access(r->mm, addr, &got, 1, HMMU_ACCESS_READ) || got != 0;
		w->err |= hmmu_access(r->mm, addr, &v, 1, HMMU_ACCESS_WRITE);
	}
	return NULL;
}

static void test_concurrent_huge_faults(void **state)
{
	struct fault_race race = { .mm = hmmu_test_mm() };
	struct rw_racer w[NTHREADS];
	pthread_t t[NTHREADS];
	unsigned long a;

	pthread_barrier_init(&race.barrier, NULL, NTHREADS);
	for (int it = 0; it < 4; it++) {
		a = hmmu_test_map(race.mm, 10 * MiB, RW);
		race.base = HMMU_ALIGN_UP(a, HMMU_PMD_SIZE);
		assert_int_equal(hmmu_madvise(race.mm, race.base, 4 * HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
		for (int i = 0; i < NTHREADS; i++) {
			w[i] = (struct rw_racer){ .race = &race, .id = i };
			assert_int_equal(pthread_create(&t[i], NULL, huge_racer_run, &w[i]), 0);
		}
		for (int i = 0; i < NTHREADS; i++) {
			assert_true(join_within(t[i], 10 * WAIT_LIMIT_MS));
			assert_int_equal(w[i].err, 0);
		}
		for (int k = 0; k < 4; k++)
			for (int i = 0; i < NTHREADS; i++)
				assert_int_equal(get_byte(race.mm, race.base + (unsigned long)k * HMMU_PMD_SIZE +
								   (unsigned long)i * 4097),
						 0x20 + i);
		assert_int_equal(hmmu_pt_validate(race.mm), 0);
		assert_int_equal(hmmu_munmap(race.mm, a, 10 * MiB), 0);
	}
	pthread_barrier_destroy(&race.barrier);
}

/*
 * A PMD-mapped page is split under the mmap_lock held for read (DONTNEED of
 * single pages) while other threads keep writing and reading their own
 * pages of it: no write is lost and the dropped pages read back as zeros.
 */
enum { SPLIT_ROUNDS = 300, DN_SUBPAGES = 16 };

struct split_worker {
	struct fault_race *race;
	int id;
	uint64_t rs;
	unsigned char last[HMMU_PT_ENTRIES / 2 / NTHREADS];
	int err;
};

/* Thread @id owns subpages id, id + NTHREADS, ... of the window's first half. */
static unsigned long split_addr(struct fault_race *r, int id, int k)
{
	return r->base + (unsigned long)(k * NTHREADS + id) * PAGE + (unsigned long)id * 8;
}

static void *split_worker_run(void *arg)
{
	struct split_worker *w = arg;
	struct fault_race *r = w->race;

	pthread_barrier_wait(&r->barrier);
	for (int i = 0; i < SPLIT_ROUNDS && !w->err; i++) {
		int k = (int)(hmmu_test_rand(&w->rs) % (sizeof(w->last)));
		unsigned char v = (unsigned char)(hmmu_test_rand(&w->rs) | 1), got = 0;

		w->err |= hmmu_access(r->mm, split_addr(r, w->id, k), &got, 1, HMMU_ACCESS_READ) ||
			  got != w->last[k];
		w->err |= hmmu_access(r->mm, split_addr(r, w->id, k), &v, 1, HMMU_ACCESS_WRITE);
		w->last[k] = v;
	}
	return NULL;
}

/* Drops single pages of the window's second half, splitting the PMD. */
static void *split_dontneed_run(void *arg)
{
	struct split_worker *w = arg;
	struct fault_race *r = w->race;

	pthread_barrier_wait(&r->barrier);
	for (int i = 0; i < DN_SUBPAGES && !w->err; i++) {
		unsigned long addr = r->base + HMMU_PMD_SIZE / 2 + (unsigned long)i * 7 * PAGE;

		w->err |= hmmu_madvise(r->mm, addr, PAGE, MADV_DONTNEED);
		sched_yield();
	}
	return NULL;
}

static void test_concurrent_huge_split(void **state)
{
	struct fault_race race = { .mm = hmmu_test_mm() };
	static struct split_worker w[NTHREADS + 1];
	pthread_t t[NTHREADS + 1];
	unsigned char zeros[PAGE];

	race.base = map_huge_window(race.mm);
	put_byte(race.mm, race.base + HMMU_PMD_SIZE - 1, 0xff);	/* a huge write fault */
	assert_int_equal(stats(race.mm).huge_pmds, 1);
	pthread_barrier_init(&race.barrier, NULL, NTHREADS + 1);
	memset(w, 0, sizeof(w));
	for (int i = 0; i <= NTHREADS; i++) {
		w[i].race = &race;
		w[i].id = i;
		w[i].rs = hmmu_test_seed() + 17 * i;
		assert_int_equal(pthread_create(&t[i], NULL, i < NTHREADS ? split_worker_run : split_dontneed_run,
						&w[i]), 0);
	}
	for (int i = 0; i <= NTHREADS; i++) {
		assert_true(join_within(t[i], 10 * WAIT_LIMIT_MS));
		assert_int_equal(w[i].err, 0);
	}
	pthread_barrier_destroy(&race.barrier);
	assert_int_equal(stats(race.mm).huge_pmds, 0);
	for (int i = 0; i < NTHREADS; i++)
		for (int k = 0; k < (int)sizeof(w[i].last); k++)
			assert_int_equal(get_byte(race.mm, split_addr(&race, i, k)), w[i].last[k]);
	memset(zeros, 0, sizeof(zeros));
	for (int i = 0; i < DN_SUBPAGES; i++) {
		unsigned char buf[PAGE];

		get_bytes(race.mm, race.base + HMMU_PMD_SIZE / 2 + (unsigned long)i * 7 * PAGE, buf, PAGE);
		assert_memory_equal(buf, zeros, PAGE);
	}
	assert_int_equal(get_byte(race.mm, race.base + HMMU_PMD_SIZE - 1), 0xff);
	assert_int_equal(hmmu_pt_validate(race.mm), 0);
}

/* ------------------------------------------------------------------ */
/* Address spaces                                                      */
/* ------------------------------------------------------------------ */

static void test_mm_create_invalid(void **state)
{
	struct hmmu_mm *mm = (struct hmmu_mm *)0x1;

	assert_int_equal(hmmu_mm_create(2, &mm), -EINVAL);
	assert_int_equal(hmmu_mm_create(~0u, &mm), -EINVAL);
	assert_ptr_equal(mm, (struct hmmu_mm *)0x1);
	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, NULL), -EINVAL);
	assert_int_equal(hmmu_mm_get_stats(NULL, &(struct hmmu_mm_stats){ 0 }), -EINVAL);
	assert_int_equal(hmmu_mm_get_stats(hmmu_test_mm(), NULL), -EINVAL);
	assert_int_equal(hmmu_mm_for_each_vma(NULL, NULL, NULL), -EINVAL);
	assert_int_equal(hmmu_pt_validate(NULL), -EINVAL);
}

static int count_vma(const struct hmmu_vma *vma, void *arg)
{
	++*(int *)arg;
	return 0;
}

static int hook_ok(struct hmmu_vma *vma, void *arg)
{
	return 0;
}

/*
 * Every call of mm.h with each kind of bad argument its doc lists: the
 * documented errno, and the mm unchanged (statistics and contents).
 */
static void test_mm_invalid_args(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *child = (struct hmmu_mm *)0x1;
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW), top = HMMU_TASK_SIZE;
	struct hmmu_page *pages[2];
	struct hmmu_mm_stats before, after;
	const int anon = MAP_PRIVATE | MAP_ANONYMOUS;
	char buf[8];
	long free0;
	int n = 0;

	put_byte(mm, a, 42);
	free0 = nr_free();
	before = stats(mm);
	hmmu_mmap_read_lock(mm);
	const struct hmmu_arg_case locked[] = {
		ARG_CASE(hmmu_get_user_pages_remote(NULL, a, 1, 0, pages), -EINVAL),
		ARG_CASE(hmmu_get_user_pages_remote(mm, a, 1, 0, NULL), -EINVAL),
		ARG_CASE(hmmu_get_user_pages_remote(mm, a + 1, 1, 0, pages), -EINVAL),
		ARG_CASE(hmmu_get_user_pages_remote(mm, a, 1, 0x2, pages), -EINVAL),
		ARG_CASE(hmmu_get_user_pages_remote(mm, a, 0, 0, pages), 0),	/* nothing asked (Linux) */
		ARG_CASE(hmmu_get_user_pages_remote(mm, top - PAGE, 2, 0, pages), -EINVAL),
		ARG_CASE(hmmu_get_user_pages_remote(mm, a, ~0UL, 0, pages), -EINVAL),
		ARG_CASE(hmmu_pin_user_pages_remote(mm, a, 1, 0, NULL), -EINVAL),
		ARG_CASE(hmmu_pin_user_pages_remote(mm, a, ~0UL / 2, 0, pages), -EINVAL),
		ARG_CASE(hmmu_vm_insert_page(NULL, a, hmmu_zero_page()), -EINVAL),
		ARG_CASE(hmmu_vm_insert_page(hmmu_vma_lookup(mm, a), a, NULL), -EINVAL),
		ARG_CASE(hmmu_remap_pfn_range(NULL, a, 0, PAGE), -EINVAL),
		ARG_CASE(hmmu_vmf_insert_pfn(NULL, a, 0), HMMU_VM_FAULT_SIGBUS),
		ARG_CASE(hmmu_vmf_insert_mixed(NULL, a, 0), HMMU_VM_FAULT_SIGBUS),
		ARG_CASE(hmmu_handle_mm_fault(NULL, a, 0), HMMU_VM_FAULT_SIGSEGV),
		ARG_CASE(hmmu_handle_mm_fault(hmmu_vma_lookup(mm, a), a - PAGE, 0), HMMU_VM_FAULT_SIGSEGV),
		ARG_CASE(hmmu_alloc_page_vma(NULL, a), 0),
		ARG_CASE(hmmu_find_vma(NULL, a), 0),
		ARG_CASE(hmmu_vma_lookup(NULL, a), 0),
	};
	hmmu_mmap_read_unlock(mm);
	const struct hmmu_arg_case unlocked[] = {
		ARG_CASE(hmmu_mmap(NULL, 0, PAGE, RW, anon, -1, 0), -EINVAL),
		ARG_CASE(hmmu_mmap(mm, 0, 0, RW, anon, -1, 0), -EINVAL),
		ARG_CASE(hmmu_mmap(mm, 0, -PAGE, RW, anon, -1, 0), -EINVAL),
		ARG_CASE(hmmu_mmap(mm, a + 1, PAGE, RW, anon | MAP_FIXED, -1, 0), -EINVAL),
		ARG_CASE(hmmu_mmap(mm, 0, PAGE, RW | 0x100, anon, -1, 0), -EINVAL),
		ARG_CASE(hmmu_mmap(mm, 0, PAGE, RW, anon | 0x800000, -1, 0), -EINVAL),
		ARG_CASE(hmmu_mmap(mm, 0, PAGE, RW, MAP_ANONYMOUS, -1, 0), -EINVAL),
		ARG_CASE(hmmu_mmap(mm, 0, PAGE, RW, MAP_PRIVATE, -1, 0), -EBADF),
		ARG_CASE(hmmu_mmap(mm, 0, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0), -EOPNOTSUPP),
		ARG_CASE(hmmu_mmap(mm, a, PAGE, RW, anon | MAP_FIXED_NOREPLACE, -1, 0), -EEXIST),
		ARG_CASE(hmmu_munmap(NULL, a, PAGE), -EINVAL),
		ARG_CASE(hmmu_munmap(mm, a + 1, PAGE), -EINVAL),
		ARG_CASE(hmmu_munmap(mm, a, 0), -EINVAL),
		ARG_CASE(hmmu_munmap(mm, top - PAGE, 2 * PAGE), -EINVAL),
		ARG_CASE(hmmu_munmap(mm, a, -a), -EINVAL),
		ARG_CASE(hmmu_mprotect(NULL, a, PAGE, PROT_READ), -EINVAL),
		ARG_CASE(hmmu_mprotect(mm, a + 1, PAGE, PROT_READ), -EINVAL),
		ARG_CASE(hmmu_mprotect(mm, a, PAGE, 0x100), -EINVAL),
		ARG_CASE(hmmu_mprotect(mm, a, -a, PROT_READ), -EINVAL),
		ARG_CASE(hmmu_madvise(NULL, a, PAGE, MADV_DONTNEED), -EINVAL),
		ARG_CASE(hmmu_madvise(mm, a + 1, PAGE, MADV_DONTNEED), -EINVAL),
		ARG_CASE(hmmu_madvise(mm, a, PAGE, 12345), -EINVAL),
		ARG_CASE(hmmu_madvise(mm, a, -a, MADV_DONTNEED), -EINVAL),
		ARG_CASE(hmmu_mremap(NULL, a, PAGE, PAGE, 0, 0), -EINVAL),
		ARG_CASE(hmmu_mremap(mm, a + 1, PAGE, PAGE, 0, 0), -EINVAL),
		ARG_CASE(hmmu_mremap(mm, a, 0, PAGE, 0, 0), -EINVAL),
		ARG_CASE(hmmu_mremap(mm, a, PAGE, 0, 0, 0), -EINVAL),
		ARG_CASE(hmmu_mremap(mm, a, PAGE, PAGE, 0x80, 0), -EINVAL),
		ARG_CASE(hmmu_mremap(mm, a, PAGE, PAGE, MREMAP_FIXED, a + 8 * PAGE), -EINVAL),
		ARG_CASE(hmmu_mremap(mm, a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a + PAGE), -EINVAL),
		ARG_CASE(hmmu_mremap(mm, a, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a + 8 * PAGE + 1), -EINVAL),
		ARG_CASE(hmmu_mremap(mm, top - PAGE, 2 * PAGE, 2 * PAGE, 0, 0), -EINVAL),
		ARG_CASE(hmmu_mremap(mm, a, PAGE, top + PAGE, MREMAP_MAYMOVE, 0), -EINVAL),
		ARG_CASE(hmmu_mremap(mm, a + 8 * PAGE, PAGE, PAGE, 0, 0), -EFAULT),
		ARG_CASE(hmmu_msync(NULL, a, PAGE, MS_SYNC), -EINVAL),
		ARG_CASE(hmmu_msync(mm, a + 1, PAGE, MS_SYNC), -EINVAL),
		ARG_CASE(hmmu_msync(mm, a, PAGE, 0x100), -EINVAL),
		ARG_CASE(hmmu_msync(mm, a, PAGE, MS_SYNC | MS_ASYNC), -EINVAL),
		ARG_CASE(hmmu_msync(mm, a, -a, MS_SYNC), -EINVAL),
		ARG_CASE(hmmu_fork(NULL, &child), -EINVAL),
		ARG_CASE(hmmu_fork(mm, NULL), -EINVAL),
		ARG_CASE(hmmu_mmap_special(NULL, 0, PAGE, RW, MAP_SHARED, 0, hook_ok, NULL), -EINVAL),
		ARG_CASE(hmmu_mmap_special(mm, 0, PAGE, RW, MAP_SHARED, 0, NULL, NULL), -EINVAL),
		ARG_CASE(hmmu_mmap_special(mm, 0, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, 0, hook_ok, NULL), -EINVAL),
		ARG_CASE(hmmu_mmap_special(mm, 0, 0, RW, MAP_SHARED, 0, hook_ok, NULL), -EINVAL),
		ARG_CASE(hmmu_access(NULL, a, buf, 1, HMMU_ACCESS_READ), -EINVAL),
		ARG_CASE(hmmu_access(mm, a, NULL, 1, HMMU_ACCESS_READ), -EINVAL),
		ARG_CASE(hmmu_access(mm, a, buf, 1, 0x2), -EINVAL),
		ARG_CASE(hmmu_access(mm, -4UL, buf, 8, HMMU_ACCESS_READ), -EINVAL),
		ARG_CASE(hmmu_mm_get_stats(NULL, &after), -EINVAL),
		ARG_CASE(hmmu_mm_get_stats(mm, NULL), -EINVAL),
		ARG_CASE(hmmu_mm_for_each_vma(NULL, count_vma, &n), -EINVAL),
		ARG_CASE(hmmu_mm_for_each_vma(mm, NULL, &n), -EINVAL),
		ARG_CASE(hmmu_mm_create(2, &child), -EINVAL),
		ARG_CASE(hmmu_mm_create(HMMU_MM_DEFAULT, NULL), -EINVAL),
		ARG_CASE(hmmu_mmget_not_zero(NULL), false),
	};

	hmmu_test_arg_cases(locked, sizeof(locked) / sizeof(locked[0]));
	hmmu_test_arg_cases(unlocked, sizeof(unlocked) / sizeof(unlocked[0]));
	assert_ptr_equal(child, (struct hmmu_mm *)0x1);
	after = stats(mm);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(nr_free(), free0);
	assert_int_equal(get_byte(mm, a), 42);
	/* The void calls take NULL as nothing to do. */
	hmmu_mmget(NULL);
	hmmu_mmput(NULL);
	hmmu_mmgrab(NULL);
	hmmu_mmdrop(NULL);
	hmmu_unpin_user_page(NULL);
	hmmu_unpin_user_pages(NULL, 3);
	hmmu_mmap_read_lock(NULL);
	hmmu_mmap_read_unlock(NULL);
	hmmu_mmap_write_lock(NULL);
	hmmu_mmap_write_unlock(NULL);
	assert_false(hmmu_mmap_read_trylock(NULL));
	/* An mm still alive keeps hmmu initialised, even one holding no page. */
	assert_int_equal(hmmu_exit(), -EBUSY);
	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &child), 0);
	assert_int_equal(hmmu_munmap(mm, a, 4 * PAGE), 0);
	assert_int_equal(hmmu_exit(), -EBUSY);
	hmmu_mmput(child);
}

/* Users and structure references: the structure outlives the last user while grabbed. */
static void test_mm_refcounts(void **state)
{
	long free0 = nr_free();
	struct hmmu_mm *mm;
	unsigned long a;

	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm), 0);
	assert_int_equal(atomic_load(&mm->mm_users), 1);
	assert_int_equal(atomic_load(&mm->mm_count), 1);
	hmmu_mmget(mm);
	assert_true(hmmu_mmget_not_zero(mm));
	assert_int_equal(atomic_load(&mm->mm_users), 3);
	hmmu_mmput(mm);
	hmmu_mmput(mm);
	assert_int_equal(atomic_load(&mm->mm_users), 1);
	a = hmmu_test_map(mm, 4 * PAGE, RW);
	for (int i = 0; i < 4; i++)
		put_byte(mm, a + i * PAGE, 1);
	assert_int_equal(nr_free(), free0 - 4);
	hmmu_mmgrab(mm);
	assert_int_equal(atomic_load(&mm->mm_count), 2);
	hmmu_mmput(mm);		/* last user: tears the address space down */
	assert_int_equal(nr_free(), free0);
	assert_int_equal(atomic_load(&mm->mm_users), 0);
	assert_int_equal(atomic_load(&mm->mm_count), 1);
	assert_null(mm->pgd);
	assert_false(hmmu_mmget_not_zero(mm));
	assert_int_equal(atomic_load(&mm->mm_users), 0);
	hmmu_mmdrop(mm);	/* frees the structure (ASan checks the rest) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_swp_entry_roundtrip),
		HMMU_TEST(test_present_entry_bits),
		HMMU_TEST(test_table_vs_leaf_entries),
		HMMU_TEST(test_swp_type_predicates),
		HMMU_TEST(test_read_fault_maps_zero_page),
		HMMU_TEST(test_write_fault_new_page),
		HMMU_TEST(test_write_after_read_cow),
		HMMU_TEST(test_fault_sigsegv),
		HMMU_TEST(test_fault_reuses_exclusive_page),
		HMMU_TEST(test_access_roundtrip),
		HMMU_TEST(test_access_across_vmas),
		HMMU_TEST(test_access_efault),
		HMMU_TEST(test_access_einval),
		HMMU_TEST(test_pgtables_alloc_free),
		HMMU_TEST(test_pgtables_bulk_unmap),
		HMMU_TEST(test_dontneed_zeroes),
		HMMU_TEST(test_dontneed_hole),
		HMMU_TEST(test_huge_write_fault),
		HMMU_TEST(test_huge_read_fault_zero_pte),
		HMMU_TEST(test_huge_eligibility),
		HMMU_TEST(test_huge_partial_munmap),
		HMMU_TEST(test_huge_partial_mprotect),
		HMMU_TEST(test_huge_whole_mprotect),
		HMMU_TEST(test_huge_whole_munmap),
		HMMU_TEST(test_huge_dontneed),
		HMMU_TEST(test_huge_split_by_vma_split),
		HMMU_TEST(test_gup_get),
		HMMU_TEST(test_gup_write_breaks_zero_page),
		HMMU_TEST(test_gup_pin),
		HMMU_TEST(test_gup_efault),
		HMMU_TEST(test_gup_partial),
		HMMU_TEST(test_gup_einval),
		HMMU_TEST(test_gup_survives_munmap),
		HMMU_TEST(test_gup_survives_mmput),
		HMMU_TEST(test_gup_huge),
		HMMU_TEST(test_migration_entry_wait),
		HMMU_TEST(test_migration_entry_wait_subpage),
		HMMU_TEST(test_concurrent_faults_dontneed),
		HMMU_TEST(test_concurrent_read_write_faults),
		HMMU_TEST(test_concurrent_huge_faults),
		HMMU_TEST(test_concurrent_huge_split),
		HMMU_TEST(test_mm_create_invalid),
		HMMU_TEST(test_mm_refcounts),
		HMMU_TEST(test_mm_invalid_args),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
