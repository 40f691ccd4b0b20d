// SPDX-License-Identifier: MIT
/*
 * Hugetlb mappings: private anonymous memory in 2 MiB pages
 * (MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB; mmap refuses MAP_SHARED).
 *
 * A hugetlb VMA is 2 MiB aligned at both ends and is mapped only by PMD
 * leaves, each mapping a whole order-9 compound page: never a PTE table,
 * never split, no deposited table.  hmmu_vma_split() refuses a boundary
 * inside a 2 MiB page and MADV_DONTNEED refuses a partial one, so zap and
 * mprotect always see whole leaves; they, GUP and CPU access go through
 * the generic PMD-leaf paths of memory.c.  This file only faults: an empty
 * PMD gets a new zeroed page, and a write to a read-only leaf reuses an
 * exclusive page or copies a shared one (fork's copy-on-write).
 *
 * A leaf holds one reference on its page and the head's entire mapcount.
 * There is no reserved pool: huge pages come from node 0's buddy
 * allocator, and a fault that finds no free order-9 block gets
 * HMMU_VM_FAULT_SIGBUS (Linux's answer when the pool is empty).  Hugetlb
 * memory never maps the zero page.
 */
#include <string.h>

#include "internal.h"

/* One hugetlb fault: the 2 MiB page at `haddr` and the PMD entry mapping it. */
struct hmmu_hugetlb_fault {
	struct hmmu_vma *vma;
	unsigned long haddr;		/* 2 MiB aligned */
	bool write;			/* HMMU_FAULT_FLAG_WRITE */
	struct hmmu_pt *pmd_pt;		/* table holding *pmdp */
	hmmu_pte_t *pmdp;
};

/*
 * A new huge page with refcount 1: zeroed (@src NULL) or a copy of the
 * 2 MiB at @src.  NULL when no free order-9 block is left.
 */
static struct hmmu_page *hmmu_hugetlb_page_alloc(const void *src)
{
	struct hmmu_page *page = hmmu_alloc_pages(HMMU_GFP_COMP | (src ? 0 : HMMU_GFP_ZERO), HMMU_PMD_ORDER);

	if (!page)
		return NULL;
	if (src)
		memcpy(hmmu_page_address(page), src, HMMU_PMD_SIZE);
	/* The contents are published with the entry's release store. */
	hmmu_page_set_flag(page, HMMU_PG_uptodate);
	return page;
}

static hmmu_pte_t hmmu_hugetlb_pmd_make(struct hmmu_page *page, bool write)
{
	return hmmu_pfn_pte(hmmu_page_to_pfn(page),
			    HMMU_PTE_HUGE | HMMU_PTE_YOUNG | (write ? HMMU_PTE_WRITE | HMMU_PTE_DIRTY : 0));
}

/*
 * Empty PMD: map a new zeroed huge page, read-only for a read fault (the
 * page is anon-exclusive, so a later write only sets the write bit).
 * Caller holds the mmap_lock for read.  A racing fault that filled the
 * entry first wins: ours is dropped and the caller retries.  Returns 0,
 * HMMU_VM_FAULT_OOM (no anon_vma) or HMMU_VM_FAULT_SIGBUS (no huge page).
 */
static hmmu_vm_fault_t hmmu_hugetlb_map_new(struct hmmu_hugetlb_fault *f)
{
	struct hmmu_page *page;
	hmmu_pte_t expected = 0;
	bool installed;

	if (hmmu_anon_vma_prepare(f->vma))
		return HMMU_VM_FAULT_OOM;
	page = hmmu_hugetlb_page_alloc(NULL);
	if (!page)
		return HMMU_VM_FAULT_SIGBUS;
	hmmu_page_add_new_anon_rmap(page, f->vma, f->haddr, true);
	hmmu_pt_lock(f->pmd_pt);
	/* Compare-and-swap: populating a PTE table needs no lock. */
	installed = __atomic_compare_exchange_n(f->pmdp, &expected, hmmu_hugetlb_pmd_make(page, f->write), false,
						__ATOMIC_RELEASE, __ATOMIC_RELAXED);
	if (installed)
		atomic_fetch_add_explicit(&f->pmd_pt->nr_used, 1, memory_order_relaxed);
	hmmu_pt_unlock(f->pmd_pt);
	if (!installed) {
		hmmu_page_remove_rmap(page, true);
		hmmu_put_page(page);
	}
	return 0;
}

/*
 * Replace the leaf @orig, if it is still there, by one mapping @page (a
 * new copy, writable).  Caller holds the mmap_lock for read, is inside a
 * CLEAR invalidation of the 2 MiB and holds a reference on @old (the page
 * @orig maps), which it keeps.  Returns false (page not used) on a race.
 */
static bool hmmu_hugetlb_replace(struct hmmu_hugetlb_fault *f, hmmu_pte_t orig, struct hmmu_page *old,
				 struct hmmu_page *page)
{
	struct hmmu_mm *mm = f->vma->vm_mm;

	hmmu_pt_lock(f->pmd_pt);
	if (hmmu_pte_read(f->pmdp) != orig) {
		hmmu_pt_unlock(f->pmd_pt);
		return false;
	}
	hmmu_page_add_new_anon_rmap(page, f->vma, f->haddr, true);
	hmmu_pte_set(f->pmd_pt, f->pmdp, hmmu_hugetlb_pmd_make(page, true));
	/* Secondary TLBs drop the old translation before the page can go. */
	hmmu_notifier_invalidate_range(mm, f->haddr, f->haddr + HMMU_PMD_SIZE);
	hmmu_page_remove_rmap(old, true);
	hmmu_put_page(old);	/* the old entry's reference; the caller's keeps it alive */
	hmmu_pt_unlock(f->pmd_pt);
	atomic_fetch_add_explicit(&mm->nr_cow_faults, 1, memory_order_relaxed);
	hmmu_count(HMMU_STAT_FAULT_COW);
	return true;
}

/*
 * Copy-on-write of the shared huge page @old that the read-only leaf
 * @orig maps: copy its 2 MiB into a new page and switch the entry inside
 * a CLEAR invalidation of [haddr, haddr + 2 MiB).  Consumes the caller's
 * reference on @old.  Returns 0 (also when a racing fault changed the
 * entry first), HMMU_VM_FAULT_OOM or HMMU_VM_FAULT_SIGBUS (no huge page).
 */
static hmmu_vm_fault_t hmmu_hugetlb_copy(struct hmmu_hugetlb_fault *f, hmmu_pte_t orig, struct hmmu_page *old)
{
	struct hmmu_notifier_range range;
	struct hmmu_page *page;

	if (hmmu_anon_vma_prepare(f->vma)) {
		hmmu_put_page(old);
		return HMMU_VM_FAULT_OOM;
	}
	page = hmmu_hugetlb_page_alloc(hmmu_page_address(old));
	if (!page) {
		hmmu_put_page(old);
		return HMMU_VM_FAULT_SIGBUS;
	}
	hmmu_notify_start(&range, HMMU_NOTIFY_CLEAR, f->vma->vm_mm, f->haddr, f->haddr + HMMU_PMD_SIZE);
	if (!hmmu_hugetlb_replace(f, orig, old, page))
		hmmu_put_page(page);
	hmmu_notifier_invalidate_range_only_end(&range);
	hmmu_put_page(old);	/* ours */
	return 0;
}

/* Write to the read-only leaf @orig: make it writable if the page can be reused, else copy. */
static hmmu_vm_fault_t hmmu_hugetlb_write_fault(struct hmmu_hugetlb_fault *f, hmmu_pte_t orig)
{
	struct hmmu_page *head = hmmu_pfn_to_page(hmmu_pte_pfn(orig));

	hmmu_pt_lock(f->pmd_pt);
	if (hmmu_pte_read(f->pmdp) != orig) {
		hmmu_pt_unlock(f->pmd_pt);
		return 0;	/* changed meanwhile: the caller retries */
	}
	if (hmmu_huge_page_can_reuse(head)) {
		hmmu_pte_set(f->pmd_pt, f->pmdp, orig | HMMU_PTE_WRITE | HMMU_PTE_DIRTY | HMMU_PTE_YOUNG);
		hmmu_pt_unlock(f->pmd_pt);
		return 0;
	}
	hmmu_get_page(head);	/* keeps it alive for the copy */
	hmmu_pt_unlock(f->pmd_pt);
	return hmmu_hugetlb_copy(f, orig, head);
}

/*
 * Called by hmmu_handle_mm_fault() for a hugetlb VMA, which has checked
 * that the VMA allows the access; the mmap_lock is held for read.  Returns
 * 0 (the caller re-follows the entry), HMMU_VM_FAULT_OOM (no page table or
 * anon_vma) or HMMU_VM_FAULT_SIGBUS (no free huge page, or an entry that
 * is not a leaf).
 */
hmmu_vm_fault_t hmmu_hugetlb_fault(struct hmmu_vma *vma, unsigned long addr, unsigned int flags)
{
	struct hmmu_hugetlb_fault f = {
		.vma = vma, .haddr = addr & HMMU_PMD_MASK, .write = flags & HMMU_FAULT_FLAG_WRITE,
	};
	hmmu_pte_t pmd;

	HMMU_BUG_ON(f.haddr < vma->vm_start || f.haddr + HMMU_PMD_SIZE > vma->vm_end);
	f.pmdp = hmmu_pmd_lookup(vma->vm_mm, f.haddr, true, &f.pmd_pt);
	if (!f.pmdp)
		return HMMU_VM_FAULT_OOM;
	pmd = __atomic_load_n(f.pmdp, __ATOMIC_ACQUIRE);
	if (hmmu_pte_none(pmd))
		return hmmu_hugetlb_map_new(&f);
	if (!hmmu_pmd_leaf(pmd))
		return HMMU_VM_FAULT_SIGBUS;	/* nothing makes PTE tables or typed entries here */
	if (f.write && !hmmu_pte_write(pmd))
		return hmmu_hugetlb_write_fault(&f, pmd);
	hmmu_pt_lock(f.pmd_pt);
	if (hmmu_pte_read(f.pmdp) == pmd)
		hmmu_pte_set(f.pmd_pt, f.pmdp, pmd | HMMU_PTE_YOUNG | (f.write ? HMMU_PTE_DIRTY : 0));
	hmmu_pt_unlock(f.pmd_pt);
	return 0;
}
