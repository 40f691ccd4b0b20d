// SPDX-License-Identifier: MIT
/*
 * The fault handler and the range operations on entries: zap (unmap and
 * release), protection change, huge-PMD faults and splits, and waiting on
 * migration entries.
 *
 * Reference rules (spec 0.3): every present entry and device-private entry
 * that maps a frame holds one reference on its (compound) page and one
 * mapcount (PTE: the frame's own; PMD: the head's entire mapcount).  The
 * zero page and special entries hold neither.  A migration entry holds
 * nothing; a device-exclusive entry keeps its mapping's reference only.
 */
#include <string.h>

#include "internal.h"

/* State of one fault while it is being handled. */
struct hmmu_fault {
	struct hmmu_vma *vma;
	unsigned long address;		/* page-aligned */
	unsigned int flags;		/* HMMU_FAULT_FLAG_* */
	struct hmmu_pt *pmd_pt;		/* table holding *pmdp */
	hmmu_pte_t *pmdp;
	struct hmmu_pt *pt;		/* PTE table holding *ptep */
	hmmu_pte_t *ptep;
};

#define HMMU_FAULT_FALLBACK 0x80000000u	/* internal: no huge page, use PTEs */

static bool hmmu_fault_write(const struct hmmu_fault *f)
{
	return f->flags & HMMU_FAULT_FLAG_WRITE;
}

struct hmmu_page *hmmu_alloc_page_vma(struct hmmu_vma *vma, unsigned long addr)
{
	if (!vma || addr < vma->vm_start || addr >= vma->vm_end)
		return NULL;
	/* A host mm's address has exactly one frame (src/host/). */
	if (vma->vm_mm->host)
		return hmmu_host_alloc_frame(vma->vm_mm->host, addr);
	return hmmu_alloc_page(HMMU_GFP_HIGHUSER_MOVABLE);
}

/* A new anonymous page for @f: zeroed, or a copy of the bytes at @src (may be NULL). */
static struct hmmu_page *hmmu_fault_new_page(struct hmmu_fault *f, const void *src)
{
	struct hmmu_page *page;

	if (hmmu_anon_vma_prepare(f->vma))
		return NULL;
	page = hmmu_alloc_page_vma(f->vma, f->address);
	if (!page)
		return NULL;
	if (src)
		memcpy(hmmu_page_address(page), src, HMMU_PAGE_SIZE);
	else
		memset(hmmu_page_address(page), 0, HMMU_PAGE_SIZE);
	/* Contents are published with the entry's release store (hmmu_pte_set). */
	hmmu_page_set_flag(page, HMMU_PG_uptodate);
	return page;
}

static hmmu_pte_t hmmu_fault_pte(struct hmmu_page *page, bool write)
{
	return hmmu_pfn_pte(hmmu_page_to_pfn(page),
			    HMMU_PTE_YOUNG | (write ? HMMU_PTE_WRITE | HMMU_PTE_DIRTY : 0));
}

/*
 * Map @page, whose reference the caller hands over, at the empty entry of
 * @f: a new anonymous page (@anon: writable, exclusive) or a page-cache
 * page (writable iff @write).  Loses quietly to a racing fault.
 */
static hmmu_vm_fault_t hmmu_fault_map_page(struct hmmu_fault *f, struct hmmu_page *page, bool anon, bool write)
{
	hmmu_pt_lock(f->pt);
	if (!hmmu_pte_none(hmmu_pte_read(f->ptep))) {
		/* Another thread filled it first: its result stands. */
		hmmu_pt_unlock(f->pt);
		hmmu_put_page(page);
		return 0;
	}
	if (anon)
		hmmu_page_add_new_anon_rmap(page, f->vma, f->address, false);
	else
		hmmu_page_add_file_rmap(page);
	hmmu_pte_set(f->pt, f->ptep, hmmu_fault_pte(page, anon || write));
	hmmu_pt_unlock(f->pt);
	return 0;
}

/* Read of an empty entry maps the zero page; write maps a new zeroed page. */
static hmmu_vm_fault_t hmmu_do_anonymous_page(struct hmmu_fault *f)
{
	struct hmmu_mm *mm = f->vma->vm_mm;
	struct hmmu_page *page;

	hmmu_count(HMMU_STAT_FAULT_ANON);
	if (hmmu_fault_write(f)) {
		page = hmmu_fault_new_page(f, NULL);
		return page ? hmmu_fault_map_page(f, page, true, true) : HMMU_VM_FAULT_OOM;
	}
	hmmu_pt_lock(f->pt);
	if (hmmu_pte_none(hmmu_pte_read(f->ptep))) {
		hmmu_pte_set(f->pt, f->ptep, hmmu_pfn_pte(hmmu_page_to_pfn(hmmu_zero_page()), HMMU_PTE_YOUNG));
		atomic_fetch_add_explicit(&mm->nr_zero_faults, 1, memory_order_relaxed);
		hmmu_count(HMMU_STAT_FAULT_ZERO_PAGE);
	}
	hmmu_pt_unlock(f->pt);
	return 0;
}

/*
 * Replace the read-only entry @orig (the zero page, a page shared with
 * others, a page-cache page or a special frame) by a private writable copy
 * of its bytes.  @old is the mapped page with a reference the caller took,
 * or NULL (zero page, special frame); it is dropped here.
 */
static hmmu_vm_fault_t hmmu_wp_page_copy(struct hmmu_fault *f, hmmu_pte_t orig, struct hmmu_page *old)
{
	struct hmmu_mm *mm = f->vma->vm_mm;
	const void *src = hmmu_page_address(hmmu_pfn_to_page(hmmu_pte_pfn(orig)));
	struct hmmu_page *page = hmmu_fault_new_page(f, hmmu_is_zero_pfn(hmmu_pte_pfn(orig)) ? NULL : src);
	struct hmmu_notifier_range range;

	if (!page) {
		if (old)
			hmmu_put_page(old);
		return HMMU_VM_FAULT_OOM;
	}
	hmmu_notify_start(&range, HMMU_NOTIFY_CLEAR, mm, f->address, f->address + HMMU_PAGE_SIZE);
	hmmu_pt_lock(f->pt);
	if (hmmu_pte_read(f->ptep) != orig) {
		hmmu_pt_unlock(f->pt);
		hmmu_put_page(page);
	} else {
		hmmu_page_add_new_anon_rmap(page, f->vma, f->address, false);
		hmmu_pte_set(f->pt, f->ptep, hmmu_fault_pte(page, true));
		hmmu_notifier_invalidate_range(mm, f->address, f->address + HMMU_PAGE_SIZE);
		if (old) {
			hmmu_page_remove_rmap(old, false);
			hmmu_put_page(old);	/* the reference the old entry held */
		}
		hmmu_pt_unlock(f->pt);
		atomic_fetch_add_explicit(&mm->nr_cow_faults, 1, memory_order_relaxed);
		hmmu_count(HMMU_STAT_FAULT_COW);
	}
	hmmu_notifier_invalidate_range_only_end(&range);
	if (old)
		hmmu_put_page(old);		/* ours */
	return 0;
}

/*
 * May the writer take @page over instead of copying it?  Yes when it is an
 * anonymous page that only this mapping uses: flagged exclusive, or
 * referenced and mapped exactly once (the copy-on-write partner is gone).
 * Caller holds the PTE lock.
 */
static bool hmmu_wp_can_reuse(struct hmmu_page *page)
{
	if (!hmmu_page_is_anon(page) || hmmu_compound_order(page))
		return false;
	if (hmmu_page_test_flag(page, HMMU_PG_anon_exclusive))
		return true;
	if (hmmu_page_ref_count(page) != 1 || hmmu_page_mapcount(page) != 1)
		return false;
	hmmu_page_set_flag(page, HMMU_PG_anon_exclusive);
	return true;
}

/*
 * Write to a present, write-protected entry of a shared writable VMA: no
 * copy; the page becomes dirty (it is written back from now on) and the
 * entry writable.
 */
static hmmu_vm_fault_t hmmu_wp_page_shared(struct hmmu_fault *f, hmmu_pte_t orig)
{
	hmmu_pt_lock(f->pt);
	if (hmmu_pte_read(f->ptep) == orig) {
		if (!hmmu_pte_special(orig))
			hmmu_page_set_flag(hmmu_pfn_to_page(hmmu_pte_pfn(orig)), HMMU_PG_dirty);
		hmmu_pte_set(f->pt, f->ptep, orig | HMMU_PTE_WRITE | HMMU_PTE_DIRTY | HMMU_PTE_YOUNG);
	}
	hmmu_pt_unlock(f->pt);
	return 0;
}

/* Write to a present, write-protected entry of a private writable VMA. */
static hmmu_vm_fault_t hmmu_do_wp_page(struct hmmu_fault *f, hmmu_pte_t orig)
{
	struct hmmu_page *page;

	if (f->vma->vm_flags & HMMU_VM_SHARED)
		return hmmu_wp_page_shared(f, orig);
	if (hmmu_is_zero_pfn(hmmu_pte_pfn(orig)) || hmmu_pte_special(orig))
		return hmmu_wp_page_copy(f, orig, NULL);
	page = hmmu_pfn_to_page(hmmu_pte_pfn(orig));
	hmmu_pt_lock(f->pt);
	if (hmmu_pte_read(f->ptep) != orig) {
		hmmu_pt_unlock(f->pt);
		return 0;
	}
	if (hmmu_wp_can_reuse(page)) {
		hmmu_pte_set(f->pt, f->ptep, orig | HMMU_PTE_WRITE | HMMU_PTE_DIRTY | HMMU_PTE_YOUNG);
		hmmu_pt_unlock(f->pt);
		return 0;
	}
	hmmu_get_page(page);	/* keeps it alive for the copy */
	hmmu_pt_unlock(f->pt);
	return hmmu_wp_page_copy(f, orig, page);
}

void hmmu_migration_entry_wait(struct hmmu_pt *pt, hmmu_pte_t *ptep)
{
	struct hmmu_swp_entry se = hmmu_pte_to_swp_entry(hmmu_pte_read(ptep));

	HMMU_BUG_ON(!hmmu_is_migration_entry(se));
	hmmu_count(HMMU_STAT_FAULT_MIGRATION_WAIT);
	/*
	 * The migration holds the page lock until its entries are gone.  Queue
	 * on the page's wait bucket before the PTE lock is dropped (while the
	 * entry still pins the frame's identity), and take no reference: one
	 * would fail the migration's pin check.
	 */
	hmmu_wait_on_page_locked_drop(hmmu_pfn_to_page(se.pfn), &pt->ptl);
}

/*
 * A non-present typed entry, read without the ptl: wait for a migration,
 * call the device-private page's driver, or restore a device-exclusive
 * entry.  Context: mmap_lock held for read, no other lock.  Returns 0 (the
 * access is retried) or HMMU_VM_FAULT_* bits.
 */
static hmmu_vm_fault_t hmmu_do_swap_entry(struct hmmu_fault *f, hmmu_pte_t orig)
{
	struct hmmu_swp_entry se = hmmu_pte_to_swp_entry(orig);

	if (hmmu_is_migration_entry(se)) {
		hmmu_pt_lock(f->pt);
		if (hmmu_pte_read(f->ptep) == orig)
			hmmu_migration_entry_wait(f->pt, f->ptep);	/* unlocks */
		else
			hmmu_pt_unlock(f->pt);
		return 0;
	}
	if (hmmu_is_device_private_entry(se)) {
		struct hmmu_vm_fault vmf = {
			.vma = f->vma,
			.address = f->address,
			.pgoff = hmmu_linear_page_index(f->vma, f->address),
			.flags = f->flags,
		};

		/* The owning driver's migrate_to_ram (src/memremap/fault.c). */
		hmmu_count(HMMU_STAT_FAULT_DEVICE_PRIVATE);
		return hmmu_device_private_fault(&vmf, f->pt, f->ptep, orig);
	}
	if (hmmu_is_device_exclusive_entry(se))
		/* Revoke the device's access, map the page again (src/mm/exclusive.c). */
		return hmmu_device_exclusive_fault(f->vma, f->address, f->pt, f->ptep, orig);
	return HMMU_VM_FAULT_SIGBUS;	/* no other typed entry exists */
}

/* A driver mapping's empty entry: its vm_ops->fault fills it. */
static hmmu_vm_fault_t hmmu_do_driver_fault(struct hmmu_fault *f)
{
	struct hmmu_vm_fault vmf = {
		.vma = f->vma,
		.address = f->address,
		.pgoff = hmmu_linear_page_index(f->vma, f->address),
		.flags = f->flags,
	};
	hmmu_vm_fault_t ret;

	if (!f->vma->vm_ops || !f->vma->vm_ops->fault)
		return HMMU_VM_FAULT_SIGBUS;
	ret = f->vma->vm_ops->fault(&vmf);
	return ret & HMMU_VM_FAULT_ERROR;	/* NOPAGE: filled (or raced); the caller retries */
}

/*
 * An empty entry of a file or shmem VMA: map the cached page (read-only,
 * except in a writable shmem mapping, which needs no write notification),
 * copy it into a new anonymous page (private write), or map it writable
 * and dirty (shared write).
 */
static hmmu_vm_fault_t hmmu_do_file_fault(struct hmmu_fault *f)
{
	struct hmmu_vma *vma = f->vma;
	bool shared = vma->vm_flags & HMMU_VM_SHARED;
	struct hmmu_page *page, *copy;
	bool write;
	int err = hmmu_filemap_get_page(vma->vm_file, hmmu_linear_page_index(vma, f->address), &page);

	if (err)
		return err == -ENOMEM ? HMMU_VM_FAULT_OOM : HMMU_VM_FAULT_SIGBUS;
	if (hmmu_fault_write(f) && !shared) {
		copy = hmmu_fault_new_page(f, hmmu_page_address(page));
		hmmu_put_page(page);
		if (!copy)
			return HMMU_VM_FAULT_OOM;
		atomic_fetch_add_explicit(&vma->vm_mm->nr_cow_faults, 1, memory_order_relaxed);
		hmmu_count(HMMU_STAT_FAULT_COW);
		return hmmu_fault_map_page(f, copy, true, true);
	}
	write = shared && (hmmu_fault_write(f) ||
			   ((vma->vm_flags & HMMU_VM_WRITE) && hmmu_file_is_shmem(vma->vm_file)));
	if (hmmu_fault_write(f))
		hmmu_page_set_flag(page, HMMU_PG_dirty);
	return hmmu_fault_map_page(f, page, false, write);
}

static hmmu_vm_fault_t hmmu_handle_pte_fault(struct hmmu_fault *f)
{
	hmmu_pte_t e = hmmu_pte_read(f->ptep);

	if (hmmu_pte_none(e)) {
		if (hmmu_vma_is_anonymous(f->vma))
			return hmmu_do_anonymous_page(f);
		if (f->vma->vm_file)
			return hmmu_do_file_fault(f);
		return hmmu_do_driver_fault(f);
	}
	if (!hmmu_pte_present(e))
		return hmmu_do_swap_entry(f, e);
	if (hmmu_fault_write(f) && !hmmu_pte_write(e))
		return hmmu_do_wp_page(f, e);
	hmmu_pt_lock(f->pt);
	if (hmmu_pte_read(f->ptep) == e)
		hmmu_pte_set(f->pt, f->ptep, e | HMMU_PTE_YOUNG | (hmmu_fault_write(f) ? HMMU_PTE_DIRTY : 0));
	hmmu_pt_unlock(f->pt);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Huge (PMD) mappings                                                 */
/* ------------------------------------------------------------------ */

static bool hmmu_vma_thp_eligible(const struct hmmu_vma *vma, unsigned long addr)
{
	unsigned long haddr = addr & HMMU_PMD_MASK;

	/* A host mm's frames are its memfd's pages, one per address: no huge pages. */
	return (vma->vm_flags & HMMU_VM_HUGEPAGE) && !(vma->vm_flags & HMMU_VM_NOHUGEPAGE) && !vma->vm_mm->host &&
	       hmmu_vma_is_anonymous(vma) && haddr >= vma->vm_start && haddr + HMMU_PMD_SIZE <= vma->vm_end;
}

/*
 * Write fault on an empty PMD of a huge-page VMA: map a zeroed order-9
 * compound page with one PMD entry.  A PTE table is allocated with it and
 * deposited with the PMD table, so a later split cannot fail.
 */
static hmmu_vm_fault_t hmmu_do_huge_anonymous_page(struct hmmu_fault *f)
{
	unsigned long haddr = f->address & HMMU_PMD_MASK;
	struct hmmu_page *page;
	struct hmmu_pt *deposit;
	hmmu_pte_t expected = 0, val;

	if (hmmu_anon_vma_prepare(f->vma))
		return HMMU_VM_FAULT_OOM;
	page = hmmu_alloc_pages(HMMU_GFP_COMP | HMMU_GFP_ZERO, HMMU_PMD_ORDER);
	if (!page)
		return HMMU_FAULT_FALLBACK;
	deposit = hmmu_pt_alloc(NULL, 0);
	if (!deposit) {
		hmmu_put_page(page);
		return HMMU_FAULT_FALLBACK;
	}
	hmmu_page_set_flag(page, HMMU_PG_uptodate);
	hmmu_page_add_new_anon_rmap(page, f->vma, haddr, true);
	val = hmmu_pfn_pte(hmmu_page_to_pfn(page), HMMU_PTE_HUGE | HMMU_PTE_WRITE | HMMU_PTE_DIRTY | HMMU_PTE_YOUNG);
	hmmu_pt_lock(f->pmd_pt);
	/* Compare-and-swap: a PTE table may be populated lock-free meanwhile. */
	if (__atomic_compare_exchange_n(f->pmdp, &expected, val, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
		atomic_fetch_add_explicit(&f->pmd_pt->nr_used, 1, memory_order_relaxed);
		hmmu_pgtable_deposit(f->pmd_pt, deposit);
		page = NULL;
	}
	hmmu_pt_unlock(f->pmd_pt);
	if (page) {	/* lost the race: undo */
		hmmu_page_remove_rmap(page, true);
		hmmu_pt_free(NULL, deposit);
		hmmu_put_page(page);
	}
	return 0;
}

/* Fill @pt with PTEs mapping each frame of the huge leaf @pmd. */
static void hmmu_huge_fill_ptes(struct hmmu_pt *pt, hmmu_pte_t pmd)
{
	unsigned long pfn = hmmu_pte_pfn(pmd);
	hmmu_pte_t bits = pmd & (HMMU_PTE_WRITE | HMMU_PTE_DIRTY | HMMU_PTE_YOUNG);
	struct hmmu_page *head = hmmu_pfn_to_page(pfn);
	bool exclusive = hmmu_page_test_flag(head, HMMU_PG_anon_exclusive);

	for (unsigned int i = 0; i < HMMU_PT_ENTRIES; i++) {
		struct hmmu_page *sub = head + i;

		sub->mapping = head->mapping;
		sub->index = head->index + i;
		if (exclusive)
			hmmu_page_set_flag(sub, HMMU_PG_anon_exclusive);
		atomic_fetch_add_explicit(&sub->_mapcount, 1, memory_order_relaxed);
		pt->e[i] = hmmu_pfn_pte(pfn + i, bits);
	}
	atomic_store_explicit(&pt->nr_used, HMMU_PT_ENTRIES, memory_order_relaxed);
	/* 512 PTE mappings hold 512 references where the PMD held one. */
	atomic_fetch_add_explicit(&head->_refcount, HMMU_PT_ENTRIES - 1, memory_order_relaxed);
	hmmu_page_remove_rmap(head, true);
}

/*
 * Inside a CLEAR invalidation of the 2 MiB range (the PMD entry is replaced
 * even though every page stays mapped).  Cannot fail: the PTE table was
 * deposited when the huge page was mapped.
 */
int hmmu_split_huge_pmd(struct hmmu_vma *vma, struct hmmu_pt *pmd_pt, hmmu_pte_t *pmdp, unsigned long addr)
{
	unsigned long haddr = addr & HMMU_PMD_MASK;
	struct hmmu_mm *mm = vma->vm_mm;
	struct hmmu_notifier_range range;
	struct hmmu_pt *pt;
	hmmu_pte_t pmd;

	hmmu_mmap_assert_locked(mm);
	HMMU_BUG_ON(hmmu_vma_is_hugetlb(vma));
	hmmu_notify_start(&range, HMMU_NOTIFY_CLEAR, mm, haddr, haddr + HMMU_PMD_SIZE);
	hmmu_pt_lock(pmd_pt);
	pmd = hmmu_pte_read(pmdp);
	if (hmmu_pmd_leaf(pmd)) {
		pt = hmmu_pgtable_withdraw(pmd_pt);
		hmmu_huge_fill_ptes(pt, pmd);
		atomic_fetch_add_explicit(&mm->nr_pgtables, 1, memory_order_relaxed);
		/* Release: the filled table is visible before the PMD points at it. */
		__atomic_store_n(pmdp, (hmmu_pte_t)(uintptr_t)pt | HMMU_PTE_PRESENT, __ATOMIC_RELEASE);
		hmmu_notifier_invalidate_range(mm, haddr, haddr + HMMU_PMD_SIZE);
	}
	hmmu_pt_unlock(pmd_pt);
	hmmu_notifier_invalidate_range_only_end(&range);
	return 0;
}

/*
 * Walk callbacks that change entries: a huge leaf only partly inside
 * [addr, end) is split and the walker descends into its PTEs.  True if so
 * (*@err holds the split's result).
 */
static bool hmmu_walk_split_partial_pmd(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end,
					struct hmmu_mm_walk *walk, int *err)
{
	if (!(addr & ~HMMU_PMD_MASK) && end - addr == HMMU_PMD_SIZE)
		return false;
	walk->action = HMMU_WALK_DESCEND;
	*err = hmmu_split_huge_pmd(walk->vma, walk->pt, pmdp, addr);
	return true;
}

bool hmmu_huge_page_can_reuse(struct hmmu_page *head)
{
	if (hmmu_page_test_flag(head, HMMU_PG_anon_exclusive))
		return true;
	if (hmmu_page_ref_count(head) != 1 ||
	    atomic_load_explicit(&head->_entire_mapcount, memory_order_relaxed) != 1)
		return false;
	hmmu_page_set_flag(head, HMMU_PG_anon_exclusive);
	return true;
}

/*
 * Fault on a huge leaf: set young, or take the page over for a write when
 * this entry is its only user; a write to a shared huge page splits the
 * entry and copies at PTE level (as Linux does since 5.8).
 */
static hmmu_vm_fault_t hmmu_do_huge_pmd_fault(struct hmmu_fault *f, hmmu_pte_t pmd)
{
	bool write = hmmu_fault_write(f), split = false;
	struct hmmu_page *head = hmmu_pfn_to_page(hmmu_pte_pfn(pmd));

	hmmu_pt_lock(f->pmd_pt);
	if (hmmu_pte_read(f->pmdp) == pmd) {
		split = write && !hmmu_pte_write(pmd) && !hmmu_huge_page_can_reuse(head);
		if (!split)
			hmmu_pte_set(f->pmd_pt, f->pmdp,
				     pmd | HMMU_PTE_YOUNG | (write ? HMMU_PTE_WRITE | HMMU_PTE_DIRTY : 0));
	}
	hmmu_pt_unlock(f->pmd_pt);
	if (split)
		return hmmu_split_huge_pmd(f->vma, f->pmd_pt, f->pmdp, f->address) ? HMMU_VM_FAULT_OOM : 0;
	return 0;
}

/* Reach the PTE for @f, handling the PMD level on the way. */
static hmmu_vm_fault_t hmmu_fault_pmd(struct hmmu_fault *f)
{
	hmmu_pte_t pmd = __atomic_load_n(f->pmdp, __ATOMIC_ACQUIRE);
	hmmu_vm_fault_t ret;

	if (hmmu_pte_none(pmd) && hmmu_fault_write(f) && hmmu_vma_thp_eligible(f->vma, f->address)) {
		ret = hmmu_do_huge_anonymous_page(f);
		if (ret != HMMU_FAULT_FALLBACK) {
			hmmu_count(HMMU_STAT_FAULT_ANON);
			return ret;
		}
	}
	if (hmmu_pte_none(pmd) && hmmu_pte_table_populate(f->vma->vm_mm, f->pmd_pt, f->pmdp))
		return HMMU_VM_FAULT_OOM;
	pmd = __atomic_load_n(f->pmdp, __ATOMIC_ACQUIRE);
	if (hmmu_pmd_leaf(pmd))
		return hmmu_do_huge_pmd_fault(f, pmd);
	if (!hmmu_pte_table(pmd))
		return hmmu_pte_none(pmd) ? 0 : HMMU_VM_FAULT_SIGBUS;	/* raced: retry / typed PMD */
	f->pt = hmmu_pte_to_table(pmd);
	f->ptep = &f->pt->e[hmmu_pt_index(f->address, 0)];
	return hmmu_handle_pte_fault(f);
}

/* Does @vma allow the access @flags asks for? */
static bool hmmu_fault_allowed(const struct hmmu_vma *vma, unsigned int flags)
{
	unsigned long need = flags & HMMU_FAULT_FLAG_WRITE ? HMMU_VM_WRITE : HMMU_VM_READ;

	return vma->vm_flags & need;
}

/* The fault proper, once checked and counted: hugetlb, or down to the PTE. */
static hmmu_vm_fault_t hmmu_do_mm_fault(struct hmmu_vma *vma, unsigned long addr, unsigned int flags)
{
	struct hmmu_fault f = { .vma = vma, .address = addr & HMMU_PAGE_MASK, .flags = flags };

	if (hmmu_vma_is_hugetlb(vma))
		return hmmu_hugetlb_fault(vma, addr, flags);
	f.pmdp = hmmu_pmd_lookup(vma->vm_mm, f.address, true, &f.pmd_pt);
	if (!f.pmdp)
		return HMMU_VM_FAULT_OOM;
	return hmmu_fault_pmd(&f);
}

hmmu_vm_fault_t hmmu_handle_mm_fault(struct hmmu_vma *vma, unsigned long addr, unsigned int flags)
{
	unsigned long page = addr & HMMU_PAGE_MASK;
	hmmu_vm_fault_t ret;

	if (!vma || addr < vma->vm_start || addr >= vma->vm_end || !hmmu_fault_allowed(vma, flags))
		return HMMU_VM_FAULT_SIGSEGV;
	hmmu_mmap_assert_locked(vma->vm_mm);
	/* A reaped mm's memory is gone for good. */
	if (atomic_load(&vma->vm_mm->flags) & HMMU_MMF_UNSTABLE)
		return HMMU_VM_FAULT_SIGBUS;
	atomic_fetch_add_explicit(&vma->vm_mm->nr_faults, 1, memory_order_relaxed);
	hmmu_count(HMMU_STAT_FAULT);
	hmmu_trace(HMMU_TRACE_FAULT, HMMU_TRACE_BEGIN, page, page + HMMU_PAGE_SIZE, 1, 0);
	ret = hmmu_do_mm_fault(vma, addr, flags);
	hmmu_trace(HMMU_TRACE_FAULT, HMMU_TRACE_END, page, page + HMMU_PAGE_SIZE, 0, 0);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Zap: unmap and release                                              */
/* ------------------------------------------------------------------ */

/* Clear one PTE-level entry (PTE lock held); returns the page whose reference it held, or NULL. */
static struct hmmu_page *hmmu_zap_one(struct hmmu_pt *pt, hmmu_pte_t *ptep)
{
	hmmu_pte_t e = hmmu_pte_read(ptep);
	struct hmmu_swp_entry se;
	struct hmmu_page *page;

	hmmu_pte_set(pt, ptep, 0);
	if (hmmu_pte_present(e)) {
		if (hmmu_pte_special(e) || hmmu_is_zero_pfn(hmmu_pte_pfn(e)))
			return NULL;
		page = hmmu_pfn_to_page(hmmu_pte_pfn(e));
		if (hmmu_pte_dirty(e))
			hmmu_page_set_flag(page, HMMU_PG_dirty);
		hmmu_page_remove_rmap(page, false);
		return page;
	}
	se = hmmu_pte_to_swp_entry(e);
	page = hmmu_pfn_to_page(se.pfn);
	if (hmmu_is_device_private_entry(se))
		hmmu_page_remove_rmap(page, false);
	return hmmu_is_migration_entry(se) ? NULL : page;
}

/*
 * Clear a run of PTEs under their table's lock, then drop the references
 * they held after the lock is released (a page is freed only after its
 * last entry is gone, and never under a page-table lock).
 */
static int hmmu_zap_pte_range(hmmu_pte_t *ptep, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_page *batch[HMMU_PT_ENTRIES];
	unsigned long start = addr;
	unsigned int n = 0;
	bool cleared = false;

	hmmu_pt_lock(walk->pt);
	for (; addr < end; addr += HMMU_PAGE_SIZE, ptep++) {
		struct hmmu_page *page;

		if (hmmu_pte_none(hmmu_pte_read(ptep)))
			continue;
		cleared = true;
		page = hmmu_zap_one(walk->pt, ptep);
		if (page)
			batch[n++] = page;
	}
	/* Secondary TLBs drop the entries before their pages can be freed. */
	if (cleared)
		hmmu_notifier_invalidate_range(walk->mm, start, end);
	hmmu_pt_unlock(walk->pt);
	for (unsigned int i = 0; i < n; i++)
		hmmu_put_page(batch[i]);
	return 0;
}

/* A huge leaf in the zap range: clear it whole, or split it first. */
static int hmmu_zap_pmd_entry(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_pt *deposit;
	struct hmmu_page *head;
	hmmu_pte_t pmd;
	int err;

	if (hmmu_walk_split_partial_pmd(pmdp, addr, end, walk, &err))
		return err;
	hmmu_pt_lock(walk->pt);
	pmd = hmmu_pte_read(pmdp);
	if (!hmmu_pmd_leaf(pmd)) {
		hmmu_pt_unlock(walk->pt);
		walk->action = HMMU_WALK_DESCEND;
		return 0;
	}
	hmmu_pte_set(walk->pt, pmdp, 0);
	head = hmmu_pfn_to_page(hmmu_pte_pfn(pmd));
	hmmu_page_remove_rmap(head, true);
	deposit = hmmu_vma_is_hugetlb(walk->vma) ? NULL : hmmu_pgtable_withdraw(walk->pt);
	hmmu_notifier_invalidate_range(walk->mm, addr, end);
	hmmu_pt_unlock(walk->pt);
	if (deposit)
		hmmu_pt_free(NULL, deposit);
	hmmu_put_page(head);
	return 0;
}

static const struct hmmu_walk_ops hmmu_zap_ops = {
	.pmd_entry = hmmu_zap_pmd_entry,
	.pte_range = hmmu_zap_pte_range,
};

void hmmu_zap_page_range(struct hmmu_vma *vma, unsigned long start, unsigned long end)
{
	HMMU_BUG_ON(start < vma->vm_start || end > vma->vm_end || start >= end);
	hmmu_walk_page_range(vma->vm_mm, start, end, &hmmu_zap_ops, NULL);
}

void hmmu_zap_range_notify(struct hmmu_vma *vma, unsigned long start, unsigned long end,
			   enum hmmu_notifier_event event)
{
	struct hmmu_notifier_range range;

	hmmu_notify_start(&range, event, vma->vm_mm, start, end);
	hmmu_zap_page_range(vma, start, end);
	hmmu_notifier_invalidate_range_end(&range);
}

/* ------------------------------------------------------------------ */
/* Protection change                                                   */
/* ------------------------------------------------------------------ */

/*
 * The entry @e after a protection change to @newflags: present entries
 * lose write unless the VMA stays writable (gaining write waits for the
 * next write fault); writable typed entries always become their read
 * variant, even when write is being added (spec 4.4).
 */
static hmmu_pte_t hmmu_entry_change_prot(hmmu_pte_t e, unsigned long newflags)
{
	struct hmmu_swp_entry se;

	if (hmmu_pte_present(e))
		return newflags & HMMU_VM_WRITE ? e : e & ~HMMU_PTE_WRITE;
	se = hmmu_pte_to_swp_entry(e);
	if (!hmmu_is_writable_swp_entry(se))
		return e;
	if (se.type == HMMU_SWP_MIGRATION_WRITE)
		se.type = hmmu_page_is_anon(hmmu_pfn_to_page(se.pfn)) ? HMMU_SWP_MIGRATION_READ_EXCLUSIVE
								       : HMMU_SWP_MIGRATION_READ;
	else
		se.type = se.type == HMMU_SWP_DEVICE_PRIVATE_WRITE ? HMMU_SWP_DEVICE_PRIVATE_READ
								   : HMMU_SWP_DEVICE_EXCLUSIVE_READ;
	return hmmu_swp_entry_to_pte(se) | (e & HMMU_PTE_HUGE);
}

static int hmmu_prot_pte_range(hmmu_pte_t *ptep, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	unsigned long newflags = *(unsigned long *)walk->private;

	hmmu_pt_lock(walk->pt);
	for (; addr < end; addr += HMMU_PAGE_SIZE, ptep++) {
		hmmu_pte_t e = hmmu_pte_read(ptep);

		if (!hmmu_pte_none(e))
			hmmu_pte_set(walk->pt, ptep, hmmu_entry_change_prot(e, newflags));
	}
	hmmu_pt_unlock(walk->pt);
	return 0;
}

static int hmmu_prot_pmd_entry(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	unsigned long newflags = *(unsigned long *)walk->private;
	int err;

	if (hmmu_walk_split_partial_pmd(pmdp, addr, end, walk, &err))
		return err;
	hmmu_pt_lock(walk->pt);
	if (hmmu_pmd_leaf(hmmu_pte_read(pmdp)))
		hmmu_pte_set(walk->pt, pmdp, hmmu_entry_change_prot(hmmu_pte_read(pmdp), newflags));
	else
		walk->action = HMMU_WALK_DESCEND;
	hmmu_pt_unlock(walk->pt);
	return 0;
}

static const struct hmmu_walk_ops hmmu_prot_ops = {
	.pmd_entry = hmmu_prot_pmd_entry,
	.pte_range = hmmu_prot_pte_range,
};

void hmmu_change_protection(struct hmmu_vma *vma, unsigned long start, unsigned long end,
			    unsigned long newflags)
{
	struct hmmu_notifier_range range;

	hmmu_mmap_assert_write_locked(vma->vm_mm);
	hmmu_notify_start(&range, HMMU_NOTIFY_PROTECTION_VMA, vma->vm_mm, start, end);
	hmmu_walk_page_range(vma->vm_mm, start, end, &hmmu_prot_ops, &newflags);
	hmmu_notifier_invalidate_range_end(&range);
}

/* ------------------------------------------------------------------ */
/* Following an entry (CPU access, GUP)                                */
/* ------------------------------------------------------------------ */

struct hmmu_page *hmmu_follow_page_lock(struct hmmu_mm *mm, unsigned long addr, unsigned int foll,
					struct hmmu_pt **ptp, hmmu_pte_t **ptep)
{
	bool huge;
	hmmu_pte_t *ep = hmmu_leaf_lookup_lock(mm, addr, ptp, &huge);
	hmmu_pte_t e;
	unsigned long pfn;

	if (!ep)
		return NULL;
	e = hmmu_pte_read(ep);
	if (!hmmu_pte_present(e) || ((foll & HMMU_FOLL_WRITE) && !hmmu_pte_write(e))) {
		hmmu_pt_unlock(*ptp);
		return NULL;
	}
	pfn = hmmu_pte_pfn(e) + (huge ? (addr & ~HMMU_PMD_MASK) >> HMMU_PAGE_SHIFT : 0);
	if (hmmu_pte_special(e) && (!(foll & HMMU_FOLLOW_SPECIAL) || !hmmu_page_address(hmmu_pfn_to_page(pfn)))) {
		hmmu_pt_unlock(*ptp);
		return hmmu_err_ptr(-EFAULT);
	}
	*ptep = ep;
	return hmmu_pfn_to_page(pfn);
}
