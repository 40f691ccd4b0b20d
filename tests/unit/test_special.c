// SPDX-License-Identifier: MIT
/*
 * Unit tests of special mappings (src/mm/special.c): "drivers" written as
 * static functions map their own pages with hmmu_vm_insert_page (MIXEDMAP),
 * their frames with hmmu_remap_pfn_range (PFNMAP) or lazily from a fault
 * hook with hmmu_vmf_insert_pfn / hmmu_vmf_insert_mixed.  Checked: data
 * through hmmu_access, entry kinds and permissions, references, GUP,
 * copy-on-write, open/close hooks across splits, a failing mmap hook and
 * the argument checks of each insert call.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define NPAGES 4
#define BLOCK_ORDER 2	/* NPAGES contiguous frames */

/* ------------------------------------------------------------------ */
/* The test driver                                                     */
/* ------------------------------------------------------------------ */

enum drv_kind {
	DRV_INSERT_PAGE,	/* mmap hook inserts its own pages */
	DRV_REMAP,		/* mmap hook remaps its frames (PFNMAP) */
	DRV_LAZY_PFN,		/* fault hook inserts frames (PFNMAP) */
	DRV_LAZY_MIXED,		/* fault hook inserts frames (MIXEDMAP) */
	DRV_NOTHING,		/* hooks only */
};

struct drv {
	enum drv_kind kind;
	int fail;				/* the mmap hook's result */
	struct hmmu_page *pages[NPAGES];	/* DRV_INSERT_PAGE: the inserted pages */
	struct hmmu_page *block;		/* other kinds: NPAGES frames the driver owns */
	int insert_err[NPAGES];
	hmmu_vm_fault_t fault_ret;
	int opens, closes, faults[NPAGES];
};

static unsigned char pattern(unsigned long i, unsigned long off)
{
	return (unsigned char)(0x30 + i * 7 + off % 13);
}

static void fill_pattern(struct hmmu_page *page, unsigned long i)
{
	unsigned char *p = hmmu_page_address(page);

	for (unsigned long off = 0; off < PAGE; off++)
		p[off] = pattern(i, off);
}

static bool has_pattern(const unsigned char *p, unsigned long i)
{
	for (unsigned long off = 0; off < PAGE; off++)
		if (p[off] != pattern(i, off))
			return false;
	return true;
}

static void drv_open(struct hmmu_vma *vma)
{
	((struct drv *)vma->vm_private_data)->opens++;
}

static void drv_close(struct hmmu_vma *vma)
{
	((struct drv *)vma->vm_private_data)->closes++;
}

/* The lazy drivers: one frame of the block per page, counted. */
static hmmu_vm_fault_t drv_fault(struct hmmu_vm_fault *vmf)
{
	struct drv *d = vmf->vma->vm_private_data;
	unsigned long pfn = hmmu_page_to_pfn(d->block) + vmf->pgoff;

	d->faults[vmf->pgoff]++;
	if (d->kind == DRV_LAZY_PFN)
		d->fault_ret = hmmu_vmf_insert_pfn(vmf->vma, vmf->address, pfn);
	else
		d->fault_ret = hmmu_vmf_insert_mixed(vmf->vma, vmf->address, pfn);
	return d->fault_ret;
}

static const struct hmmu_vm_operations drv_ops = {
	.open = drv_open, .close = drv_close, .fault = drv_fault,
};

/* Allocate NPAGES pages, fill them, insert them, keep no reference of our own. */
static void drv_insert_pages(struct hmmu_vma *vma, struct drv *d)
{
	for (unsigned long i = 0; i < NPAGES; i++) {
		struct hmmu_page *page = hmmu_alloc_page(HMMU_GFP_KERNEL);

		assert_non_null(page);
		fill_pattern(page, i);
		d->insert_err[i] = hmmu_vm_insert_page(vma, vma->vm_start + i * PAGE, page);
		d->pages[i] = page;
		hmmu_put_page(page);	/* the mapping keeps one */
	}
}

static int drv_mmap(struct hmmu_vma *vma, void *arg)
{
	struct drv *d = arg;

	vma->vm_ops = &drv_ops;
	vma->vm_private_data = d;
	if (d->kind == DRV_INSERT_PAGE)
		drv_insert_pages(vma, d);
	else if (d->kind == DRV_REMAP)
		d->insert_err[0] = hmmu_remap_pfn_range(vma, vma->vm_start, hmmu_page_to_pfn(d->block),
							 vma->vm_end - vma->vm_start);
	else if (d->kind == DRV_LAZY_PFN)
		vma->vm_flags |= HMMU_VM_PFNMAP | HMMU_VM_IO | HMMU_VM_DONTEXPAND;
	else if (d->kind == DRV_LAZY_MIXED)
		vma->vm_flags |= HMMU_VM_MIXEDMAP;
	return d->fail;
}

/* NPAGES frames the driver owns (one reference on the first), filled with the pattern. */
static struct hmmu_page *drv_block_alloc(void)
{
	struct hmmu_page *block = hmmu_alloc_pages(HMMU_GFP_KERNEL, BLOCK_ORDER);

	assert_non_null(block);
	for (unsigned long i = 0; i < NPAGES; i++)
		fill_pattern(block + i, i);
	return block;
}

static long drv_map(struct hmmu_mm *mm, struct drv *d, int prot, int flags)
{
	return hmmu_mmap_special(mm, 0, NPAGES * PAGE, prot, flags, 0, drv_mmap, d);
}

static unsigned long drv_map_ok(struct hmmu_mm *mm, struct drv *d, int prot, int flags)
{
	long a = drv_map(mm, d, prot, flags);

	assert_true(a > 0);
	return (unsigned long)a;
}

/* Page @i of the mapping at @a has the pattern of page @i. */
static void check_page(struct hmmu_mm *mm, unsigned long a, unsigned long i)
{
	unsigned char *buf = malloc(PAGE);

	assert_non_null(buf);
	assert_int_equal(hmmu_access(mm, a + i * PAGE, buf, PAGE, HMMU_ACCESS_READ), 0);
	assert_true(has_pattern(buf, i));
	free(buf);
}

static hmmu_pte_t leaf(struct hmmu_mm *mm, unsigned long addr)
{
	bool huge;
	hmmu_pte_t e = hmmu_test_leaf(mm, addr, &huge);

	assert_false(huge);
	return e;
}

/* ------------------------------------------------------------------ */
/* vm_insert_page (MIXEDMAP)                                           */
/* ------------------------------------------------------------------ */

/* The hook's pages are mapped read-only in a private mapping, each holding one reference. */
static void test_insert_page_map(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	struct drv d = { .kind = DRV_INSERT_PAGE };
	unsigned long a = drv_map_ok(mm, &d, RW, MAP_PRIVATE);

	assert_true(vma_flags(mm, a) & HMMU_VM_MIXEDMAP);
	assert_false(vma_flags(mm, a) & HMMU_VM_PFNMAP);
	assert_int_equal(nr_free(), free0 - NPAGES);
	for (unsigned long i = 0; i < NPAGES; i++) {
		hmmu_pte_t e = leaf(mm, a + i * PAGE);

		assert_int_equal(d.insert_err[i], 0);
		assert_int_equal(hmmu_pte_pfn(e), hmmu_page_to_pfn(d.pages[i]));
		assert_true(hmmu_pte_present(e));
		assert_false(hmmu_pte_write(e));	/* the kernel's mixedmap test reads READ */
		assert_false(hmmu_pte_special(e));
		assert_int_equal(hmmu_page_ref_count(d.pages[i]), 1);
		assert_int_equal(hmmu_page_mapcount(d.pages[i]), 1);
		assert_false(hmmu_page_is_anon(d.pages[i]));
		check_page(mm, a, i);
	}
	assert_int_equal(stats(mm).present_pages, NPAGES);
	assert_int_equal(stats(mm).faults, 0);
	/* munmap drops the mappings' references: the pages are freed. */
	assert_int_equal(hmmu_munmap(mm, a, NPAGES * PAGE), 0);
	assert_int_equal(nr_free(), free0);
	assert_int_equal(d.closes, 1);
}

/* In a shared writable mapping the entries are writable and writes reach the driver's pages. */
static void test_insert_page_shared(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct drv d = { .kind = DRV_INSERT_PAGE }, r = { .kind = DRV_INSERT_PAGE };
	unsigned long a = drv_map_ok(mm, &d, RW, MAP_SHARED), b;
	unsigned char v = 0xee;

	assert_true(hmmu_pte_write(leaf(mm, a + PAGE)));
	assert_int_equal(hmmu_access(mm, a + PAGE + 3, &v, 1, HMMU_ACCESS_WRITE), 0);
	assert_int_equal(((unsigned char *)hmmu_page_address(d.pages[1]))[3], v);
	assert_int_equal(hmmu_pte_pfn(leaf(mm, a + PAGE)), hmmu_page_to_pfn(d.pages[1]));
	assert_int_equal(stats(mm).cow_faults, 0);
	/* Shared but read-only: read-only entries. */
	b = drv_map_ok(mm, &r, PROT_READ, MAP_SHARED);
	assert_false(hmmu_pte_write(leaf(mm, b)));
	check_page(mm, b, 2);
	/* The drivers live on this stack: unmap before returning (close hooks). */
	assert_int_equal(hmmu_munmap(mm, a, NPAGES * PAGE), 0);
	assert_int_equal(hmmu_munmap(mm, b, NPAGES * PAGE), 0);
	assert_int_equal(d.closes + r.closes, 2);
}

/* A write in a private writable mapping copies; the driver page keeps its pattern. */
static void test_insert_page_cow(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	struct drv d = { .kind = DRV_INSERT_PAGE };
	unsigned long a = drv_map_ok(mm, &d, RW, MAP_PRIVATE);
	struct hmmu_page *drvpage = d.pages[2], *anon;
	unsigned char buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, got[PAGE];
	hmmu_pte_t e;

	hmmu_get_page(drvpage);		/* the test keeps the driver page alive to look at it */
	assert_int_equal(hmmu_access(mm, a + 2 * PAGE + 100, buf, sizeof(buf), HMMU_ACCESS_WRITE), 0);
	e = leaf(mm, a + 2 * PAGE);
	assert_true(hmmu_pte_write(e));
	assert_int_not_equal(hmmu_pte_pfn(e), hmmu_page_to_pfn(drvpage));
	anon = hmmu_pfn_to_page(hmmu_pte_pfn(e));
	assert_true(hmmu_page_is_anon(anon));
	assert_int_equal(hmmu_page_mapcount(anon), 1);
	assert_int_equal(stats(mm).cow_faults, 1);
	/* The copy has the pattern plus the write; the driver page only the pattern. */
	assert_int_equal(hmmu_access(mm, a + 2 * PAGE, got, PAGE, HMMU_ACCESS_READ), 0);
	assert_memory_equal(got + 100, buf, sizeof(buf));
	memcpy(got + 100, (char *)hmmu_page_address(drvpage) + 100, sizeof(buf));
	assert_true(has_pattern(got, 2));
	assert_true(has_pattern(hmmu_page_address(drvpage), 2));
	assert_int_equal(hmmu_page_mapcount(drvpage), 0);
	assert_int_equal(hmmu_page_ref_count(drvpage), 1);	/* ours only */
	hmmu_put_page(drvpage);
	/* The other pages are still the driver's. */
	assert_int_equal(hmmu_pte_pfn(leaf(mm, a + 3 * PAGE)), hmmu_page_to_pfn(d.pages[3]));
	assert_int_equal(hmmu_munmap(mm, a, NPAGES * PAGE), 0);
	assert_int_equal(nr_free(), free0);
}

/* GUP hands out the driver pages of insert_page entries. */
static void test_insert_page_gup(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct drv d = { .kind = DRV_INSERT_PAGE };
	unsigned long a = drv_map_ok(mm, &d, RW, MAP_SHARED);
	struct hmmu_page *pages[NPAGES];

	assert_int_equal(gup(mm, a, NPAGES, HMMU_FOLL_WRITE, pages), NPAGES);
	for (int i = 0; i < NPAGES; i++) {
		assert_ptr_equal(pages[i], d.pages[i]);
		assert_int_equal(hmmu_page_ref_count(pages[i]), 2);
	}
	/* The references outlive the mapping. */
	assert_int_equal(hmmu_munmap(mm, a, NPAGES * PAGE), 0);
	for (int i = 0; i < NPAGES; i++) {
		assert_int_equal(hmmu_page_ref_count(pages[i]), 1);
		assert_true(has_pattern(hmmu_page_address(pages[i]), (unsigned long)i));
		hmmu_put_page(pages[i]);
	}
}

/* ------------------------------------------------------------------ */
/* remap_pfn_range (PFNMAP)                                            */
/* ------------------------------------------------------------------ */

/* CPU access reads and writes the frames; GUP refuses; munmap leaves the driver's references. */
static void test_remap_pfn_range(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	struct drv d = { .kind = DRV_REMAP, .block = drv_block_alloc() };
	unsigned long a = drv_map_ok(mm, &d, RW, MAP_SHARED), flags = vma_flags(mm, a);
	struct hmmu_page *pages[1];
	unsigned char v = 0x99;

	assert_int_equal(d.insert_err[0], 0);
	assert_int_equal(flags & (HMMU_VM_PFNMAP | HMMU_VM_IO | HMMU_VM_DONTEXPAND),
			 HMMU_VM_PFNMAP | HMMU_VM_IO | HMMU_VM_DONTEXPAND);
	assert_false(flags & HMMU_VM_MIXEDMAP);
	for (unsigned long i = 0; i < NPAGES; i++) {
		hmmu_pte_t e = leaf(mm, a + i * PAGE);

		assert_true(hmmu_pte_present(e) && hmmu_pte_special(e) && hmmu_pte_write(e));
		assert_int_equal(hmmu_pte_pfn(e), hmmu_page_to_pfn(d.block) + i);
		check_page(mm, a, i);
	}
	assert_int_equal(hmmu_page_ref_count(d.block), 1);	/* special entries hold nothing */
	assert_int_equal(hmmu_page_mapcount(d.block + 1), 0);
	assert_int_equal(hmmu_access(mm, a + 3 * PAGE + 9, &v, 1, HMMU_ACCESS_WRITE), 0);
	assert_int_equal(((unsigned char *)hmmu_page_address(d.block + 3))[9], v);
	assert_int_equal(gup(mm, a, 1, 0, pages), -EFAULT);
	assert_int_equal(hmmu_madvise(mm, a, PAGE, MADV_DONTNEED), -EINVAL);
	assert_int_equal(hmmu_munmap(mm, a, NPAGES * PAGE), 0);
	assert_int_equal(hmmu_page_ref_count(d.block), 1);
	assert_int_equal(nr_free(), free0 - NPAGES);
	hmmu_free_pages(d.block, BLOCK_ORDER);
	assert_int_equal(nr_free(), free0);
}

/* Private writable: read-only special entries; a write copies the frame into an anon page. */
static void test_remap_private_cow(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct drv d = { .kind = DRV_REMAP, .block = drv_block_alloc() };
	unsigned long a = drv_map_ok(mm, &d, RW, MAP_PRIVATE);
	unsigned char v = 0x11, got[PAGE];
	hmmu_pte_t e;

	assert_false(hmmu_pte_write(leaf(mm, a)));
	assert_int_equal(hmmu_access(mm, a + 1, &v, 1, HMMU_ACCESS_WRITE), 0);
	e = leaf(mm, a);
	assert_true(hmmu_pte_write(e));
	assert_false(hmmu_pte_special(e));
	assert_true(hmmu_page_is_anon(hmmu_pfn_to_page(hmmu_pte_pfn(e))));
	assert_true(has_pattern(hmmu_page_address(d.block), 0));
	assert_int_equal(hmmu_access(mm, a, got, PAGE, HMMU_ACCESS_READ), 0);
	assert_int_equal(got[1], v);
	got[1] = pattern(0, 1);
	assert_true(has_pattern(got, 0));
	assert_int_equal(hmmu_munmap(mm, a, NPAGES * PAGE), 0);
	hmmu_free_pages(d.block, BLOCK_ORDER);
}

/* ------------------------------------------------------------------ */
/* Lazy drivers (vm_ops->fault)                                        */
/* ------------------------------------------------------------------ */

/* vmf_insert_pfn from the fault hook: one fault per page, then none. */
static void test_lazy_insert_pfn(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct drv d = { .kind = DRV_LAZY_PFN, .block = drv_block_alloc() };
	unsigned long a = drv_map_ok(mm, &d, RW, MAP_SHARED);
	struct hmmu_page *pages[1];
	unsigned char v = 0x44;

	assert_int_equal(leaf(mm, a), 0);
	for (int round = 0; round < 2; round++)
		for (unsigned long i = 0; i < NPAGES; i++)
			check_page(mm, a, i);
	for (int i = 0; i < NPAGES; i++)
		assert_int_equal(d.faults[i], 1);
	assert_int_equal(d.fault_ret, HMMU_VM_FAULT_NOPAGE);
	assert_true(hmmu_pte_special(leaf(mm, a + 2 * PAGE)));
	assert_true(hmmu_pte_write(leaf(mm, a + 2 * PAGE)));
	assert_int_equal(hmmu_access(mm, a + 2 * PAGE, &v, 1, HMMU_ACCESS_WRITE), 0);
	assert_int_equal(*(unsigned char *)hmmu_page_address(d.block + 2), v);
	assert_int_equal(d.faults[2], 1);
	assert_int_equal(gup(mm, a, 1, 0, pages), -EFAULT);
	assert_int_equal(hmmu_page_ref_count(d.block), 1);
	assert_int_equal(hmmu_munmap(mm, a, NPAGES * PAGE), 0);
	hmmu_free_pages(d.block, BLOCK_ORDER);
}

/* vmf_insert_mixed in a MIXEDMAP VMA: special entries, which GUP refuses (the VMA it accepts). */
static void test_lazy_insert_mixed(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct drv d = { .kind = DRV_LAZY_MIXED, .block = drv_block_alloc() };
	unsigned long a = drv_map_ok(mm, &d, PROT_READ, MAP_PRIVATE);
	struct hmmu_page *pages[1];

	check_page(mm, a, 1);
	assert_int_equal(d.faults[1], 1);
	assert_int_equal(d.faults[0], 0);
	assert_true(hmmu_pte_special(leaf(mm, a + PAGE)));
	assert_false(hmmu_pte_write(leaf(mm, a + PAGE)));
	assert_int_equal(gup(mm, a + PAGE, 1, 0, pages), -EFAULT);
	assert_int_equal(stats(mm).present_pages, 1);
	assert_int_equal(hmmu_munmap(mm, a, NPAGES * PAGE), 0);
	assert_int_equal(hmmu_page_ref_count(d.block), 1);
	hmmu_free_pages(d.block, BLOCK_ORDER);
}

/* ------------------------------------------------------------------ */
/* Hooks                                                               */
/* ------------------------------------------------------------------ */

/* Splits open the new VMA; each removed VMA is closed; closes == opens + 1 at the end. */
static void test_open_close(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct drv d = { .kind = DRV_NOTHING };
	unsigned long a = drv_map_ok(mm, &d, RW, MAP_PRIVATE);

	assert_int_equal(d.opens, 0);
	assert_int_equal(d.closes, 0);
	/* The last page: one split (open for the new upper VMA), one removal. */
	assert_int_equal(hmmu_munmap(mm, a + 3 * PAGE, PAGE), 0);
	assert_int_equal(d.opens, 1);
	assert_int_equal(d.closes, 1);
	/* The middle page of three: two splits, one removal. */
	assert_int_equal(hmmu_munmap(mm, a + PAGE, PAGE), 0);
	assert_int_equal(d.opens, 3);
	assert_int_equal(d.closes, 2);
	assert_int_equal(stats(mm).nr_vmas, 2);
	/* mprotect of one VMA whole: no split, no hook. */
	assert_int_equal(hmmu_mprotect(mm, a, PAGE, PROT_READ), 0);
	assert_int_equal(d.opens, 3);
	assert_int_equal(hmmu_munmap(mm, a, NPAGES * PAGE), 0);
	assert_int_equal(d.closes, 4);
	assert_int_equal(d.closes, d.opens + 1);
	assert_int_equal(stats(mm).nr_vmas, 0);
}

/* A failing hook: its error, no VMA, what it inserted freed, no close. */
static void test_mmap_hook_fails(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long free0 = nr_free();
	struct drv d = { .kind = DRV_INSERT_PAGE, .fail = -ENODEV };
	struct drv r = { .kind = DRV_REMAP, .fail = -ENODEV, .block = drv_block_alloc() };

	assert_int_equal(drv_map(mm, &d, RW, MAP_SHARED), -ENODEV);
	for (int i = 0; i < NPAGES; i++)
		assert_int_equal(d.insert_err[i], 0);
	assert_int_equal(stats(mm).nr_vmas, 0);
	assert_int_equal(stats(mm).page_tables, 0);
	assert_int_equal(d.closes, 0);
	assert_int_equal(nr_free(), free0 - NPAGES);	/* the remap driver's block */
	/* A failing remap driver: its frames stay its own. */
	assert_int_equal(drv_map(mm, &r, RW, MAP_SHARED), -ENODEV);
	assert_int_equal(r.insert_err[0], 0);
	assert_int_equal(r.closes, 0);
	assert_int_equal(stats(mm).nr_vmas, 0);
	assert_int_equal(hmmu_page_ref_count(r.block), 1);
	hmmu_free_pages(r.block, BLOCK_ORDER);
	assert_int_equal(nr_free(), free0);
	/* Special mappings need a hook and no anonymous or hugetlb flag. */
	assert_int_equal(hmmu_mmap_special(mm, 0, PAGE, RW, MAP_PRIVATE, 0, NULL, NULL), -EINVAL);
	assert_int_equal(hmmu_mmap_special(mm, 0, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, 0, drv_mmap, &d), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* Argument checks                                                     */
/* ------------------------------------------------------------------ */

static int empty_hook(struct hmmu_vma *vma, void *arg)
{
	return 0;
}

/*
 * A special VMA of NPAGES pages whose hook did nothing, given @vm_flags
 * (as a hook would set them).  The pointer stays valid until the VMA is
 * unmapped (the test is single-threaded).
 */
static struct hmmu_vma *plain_vma_locked(struct hmmu_mm *mm, int flags, unsigned long vm_flags)
{
	long a = hmmu_mmap_special(mm, 0, NPAGES * PAGE, RW, flags, 0, empty_hook, NULL);
	struct hmmu_vma *vma;

	assert_true(a > 0);
	hmmu_mmap_write_lock(mm);
	vma = hmmu_vma_lookup(mm, (unsigned long)a);
	vma->vm_flags |= vm_flags;
	hmmu_mmap_write_unlock(mm);
	return vma;
}

static struct hmmu_vma *plain_vma(struct hmmu_mm *mm, int flags)
{
	return plain_vma_locked(mm, flags, 0);
}

/* hmmu_vm_insert_page refuses bad VMAs, addresses and pages. */
static void test_insert_page_einval(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_page *page = hmmu_alloc_page(HMMU_GFP_KERNEL), *block = hmmu_alloc_pages(HMMU_GFP_KERNEL, 1);
	long anon = hmmu_mmap(mm, 0, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long huge = hmmu_mmap(mm, 0, HMMU_PMD_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	struct hmmu_page *anon_page;
	struct hmmu_vma *vma, *pfnmap;
	unsigned char v = 1;

	assert_true(anon > 0 && huge > 0 && page && block);
	assert_int_equal(hmmu_access(mm, (unsigned long)anon, &v, 1, HMMU_ACCESS_WRITE), 0);
	assert_int_equal(gup(mm, (unsigned long)anon, 1, 0, &anon_page), 1);
	vma = plain_vma(mm, MAP_PRIVATE);
	pfnmap = plain_vma_locked(mm, MAP_SHARED, HMMU_VM_PFNMAP);
	hmmu_mmap_write_lock(mm);
	assert_int_equal(hmmu_vm_insert_page(NULL, vma->vm_start, page), -EINVAL);
	assert_int_equal(hmmu_vm_insert_page(vma, vma->vm_start - PAGE, page), -EINVAL);
	assert_int_equal(hmmu_vm_insert_page(vma, vma->vm_end, page), -EINVAL);
	assert_int_equal(hmmu_vm_insert_page(vma, vma->vm_start + 1, page), -EINVAL);
	assert_int_equal(hmmu_vm_insert_page(vma, vma->vm_start, NULL), -EINVAL);
	assert_int_equal(hmmu_vm_insert_page(vma, vma->vm_start, anon_page), -EINVAL);
	assert_int_equal(hmmu_vm_insert_page(vma, vma->vm_start, block + 1), -EINVAL);	/* refcount 0 */
	assert_int_equal(hmmu_vm_insert_page(vma, vma->vm_start, hmmu_zero_page()), -EINVAL);
	assert_int_equal(hmmu_vm_insert_page(pfnmap, pfnmap->vm_start, page), -EINVAL);
	assert_int_equal(hmmu_vm_insert_page(hmmu_vma_lookup(mm, (unsigned long)huge), (unsigned long)huge, page),
			 -EINVAL);
	assert_false(vma->vm_flags & HMMU_VM_MIXEDMAP);
	/* Good, then the same entry again: -EBUSY, no second reference. */
	assert_int_equal(hmmu_vm_insert_page(vma, vma->vm_start + PAGE, page), 0);
	assert_true(vma->vm_flags & HMMU_VM_MIXEDMAP);
	assert_int_equal(hmmu_vm_insert_page(vma, vma->vm_start + PAGE, page), -EBUSY);
	assert_int_equal(hmmu_vm_insert_page(vma, vma->vm_start + PAGE, block), -EBUSY);
	hmmu_mmap_write_unlock(mm);
	assert_int_equal(hmmu_page_ref_count(page), 2);
	assert_int_equal(hmmu_page_mapcount(page), 1);
	assert_int_equal(hmmu_page_ref_count(block), 1);
	assert_int_equal(hmmu_page_mapcount(block), 0);
	hmmu_put_page(anon_page);
	hmmu_put_page(page);
	hmmu_free_pages(block, 1);
}

/* The vmf calls: SIGBUS for a wrong VMA kind, address or pfn; NOPAGE when filled or already there. */
static void test_vmf_insert_errors(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_page *page = hmmu_alloc_page(HMMU_GFP_KERNEL);
	unsigned long pfn = hmmu_page_to_pfn(page);
	struct hmmu_vma *pfnmap = plain_vma_locked(mm, MAP_SHARED, HMMU_VM_PFNMAP);
	struct hmmu_vma *mixed = plain_vma_locked(mm, MAP_SHARED, HMMU_VM_MIXEDMAP);
	struct hmmu_vma *plain = plain_vma(mm, MAP_SHARED);
	hmmu_pte_t e;

	hmmu_mmap_read_lock(mm);
	assert_int_equal(hmmu_vmf_insert_pfn(NULL, pfnmap->vm_start, pfn), HMMU_VM_FAULT_SIGBUS);
	assert_int_equal(hmmu_vmf_insert_pfn(plain, plain->vm_start, pfn), HMMU_VM_FAULT_SIGBUS);
	assert_int_equal(hmmu_vmf_insert_pfn(mixed, mixed->vm_start, pfn), HMMU_VM_FAULT_SIGBUS);
	assert_int_equal(hmmu_vmf_insert_pfn(pfnmap, pfnmap->vm_end, pfn), HMMU_VM_FAULT_SIGBUS);
	assert_int_equal(hmmu_vmf_insert_pfn(pfnmap, pfnmap->vm_start, 0), HMMU_VM_FAULT_SIGBUS);
	assert_int_equal(hmmu_vmf_insert_pfn(pfnmap, pfnmap->vm_start, 1UL << 40), HMMU_VM_FAULT_SIGBUS);
	assert_int_equal(hmmu_vmf_insert_mixed(plain, plain->vm_start, pfn), HMMU_VM_FAULT_SIGBUS);
	assert_int_equal(hmmu_vmf_insert_mixed(mixed, mixed->vm_start - PAGE, pfn), HMMU_VM_FAULT_SIGBUS);
	assert_int_equal(hmmu_vmf_insert_mixed(mixed, mixed->vm_start, ~0UL), HMMU_VM_FAULT_SIGBUS);
	hmmu_mmap_read_unlock(mm);
	assert_int_equal(stats(mm).present_pages, 0);
	hmmu_mmap_read_lock(mm);
	/* Good inserts, then again over the filled entries (a racing fault): NOPAGE, unchanged. */
	assert_int_equal(hmmu_vmf_insert_pfn(pfnmap, pfnmap->vm_start, pfn), HMMU_VM_FAULT_NOPAGE);
	assert_int_equal(hmmu_vmf_insert_pfn(pfnmap, pfnmap->vm_start, pfn + 1), HMMU_VM_FAULT_NOPAGE);
	assert_int_equal(hmmu_vmf_insert_mixed(mixed, mixed->vm_start + PAGE, pfn), HMMU_VM_FAULT_NOPAGE);
	assert_int_equal(hmmu_vmf_insert_mixed(pfnmap, pfnmap->vm_start + PAGE, pfn), HMMU_VM_FAULT_NOPAGE);
	hmmu_mmap_read_unlock(mm);
	e = leaf(mm, pfnmap->vm_start);
	assert_int_equal(e, hmmu_pfn_pte(pfn, HMMU_PTE_SPECIAL | HMMU_PTE_WRITE));
	e = leaf(mm, mixed->vm_start + PAGE);
	assert_int_equal(e, hmmu_pfn_pte(pfn, HMMU_PTE_SPECIAL | HMMU_PTE_WRITE));
	e = leaf(mm, pfnmap->vm_start + PAGE);
	assert_int_equal(e, hmmu_pfn_pte(pfn, HMMU_PTE_SPECIAL | HMMU_PTE_WRITE));
	assert_int_equal(hmmu_page_ref_count(page), 1);
	assert_int_equal(hmmu_page_mapcount(page), 0);
	/* Private writable: read-only special entries. */
	plain = plain_vma_locked(mm, MAP_PRIVATE, HMMU_VM_PFNMAP);
	hmmu_mmap_read_lock(mm);
	assert_int_equal(hmmu_vmf_insert_pfn(plain, plain->vm_start, pfn), HMMU_VM_FAULT_NOPAGE);
	hmmu_mmap_read_unlock(mm);
	assert_int_equal(leaf(mm, plain->vm_start), hmmu_pfn_pte(pfn, HMMU_PTE_SPECIAL));
	assert_int_equal(hmmu_munmap(mm, 0x10000, HMMU_TASK_SIZE - 0x10000), 0);
	hmmu_put_page(page);
}

/* hmmu_remap_pfn_range: -EINVAL before any change; -EBUSY over an entry, keeping what it inserted. */
static void test_remap_errors(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_page *block = drv_block_alloc();
	unsigned long pfn = hmmu_page_to_pfn(block);
	struct hmmu_vma *vma = plain_vma(mm, MAP_SHARED), *mixed = plain_vma_locked(mm, MAP_SHARED, HMMU_VM_MIXEDMAP);
	unsigned long s = vma->vm_start;

	hmmu_mmap_write_lock(mm);
	assert_int_equal(hmmu_remap_pfn_range(NULL, s, pfn, PAGE), -EINVAL);
	assert_int_equal(hmmu_remap_pfn_range(vma, s, pfn, 0), -EINVAL);
	assert_int_equal(hmmu_remap_pfn_range(vma, s + 1, pfn, PAGE), -EINVAL);
	assert_int_equal(hmmu_remap_pfn_range(vma, s - PAGE, pfn, PAGE), -EINVAL);
	assert_int_equal(hmmu_remap_pfn_range(vma, s + PAGE, pfn, NPAGES * PAGE), -EINVAL);
	assert_int_equal(hmmu_remap_pfn_range(vma, s, 0, PAGE), -EINVAL);
	assert_int_equal(hmmu_remap_pfn_range(vma, s, ~0UL - 1, 4 * PAGE), -EINVAL);
	assert_int_equal(hmmu_remap_pfn_range(mixed, mixed->vm_start, pfn, PAGE), -EINVAL);
	assert_false(vma->vm_flags & (HMMU_VM_PFNMAP | HMMU_VM_IO));
	hmmu_mmap_write_unlock(mm);
	assert_int_equal(stats(mm).present_pages, 0);
	hmmu_mmap_write_lock(mm);
	/* A size that is not a page multiple rounds up. */
	assert_int_equal(hmmu_remap_pfn_range(vma, s + 2 * PAGE, pfn + 2, PAGE + 1), 0);
	assert_true(vma->vm_flags & HMMU_VM_PFNMAP);
	/* Over the whole VMA: pages 0 and 1 go in, page 2 is taken. */
	assert_int_equal(hmmu_remap_pfn_range(vma, s, pfn, NPAGES * PAGE), -EBUSY);
	hmmu_mmap_write_unlock(mm);
	for (unsigned long i = 0; i < NPAGES; i++)
		assert_int_equal(leaf(mm, s + i * PAGE), hmmu_pfn_pte(pfn + i, HMMU_PTE_SPECIAL | HMMU_PTE_WRITE));
	for (unsigned long i = 0; i < NPAGES; i++)
		check_page(mm, s, i);
	assert_int_equal(hmmu_munmap(mm, 0x10000, HMMU_TASK_SIZE - 0x10000), 0);
	hmmu_free_pages(block, BLOCK_ORDER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_insert_page_map),
		HMMU_TEST(test_insert_page_shared),
		HMMU_TEST(test_insert_page_cow),
		HMMU_TEST(test_insert_page_gup),
		HMMU_TEST(test_remap_pfn_range),
		HMMU_TEST(test_remap_private_cow),
		HMMU_TEST(test_lazy_insert_pfn),
		HMMU_TEST(test_lazy_insert_mixed),
		HMMU_TEST(test_open_close),
		HMMU_TEST(test_mmap_hook_fails),
		HMMU_TEST(test_insert_page_einval),
		HMMU_TEST(test_vmf_insert_errors),
		HMMU_TEST(test_remap_errors),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
