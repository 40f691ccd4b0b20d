// SPDX-License-Identifier: MIT
/*
 * Device-exclusive entries (spec 4.6): a device's atomic access to ordinary
 * anonymous pages, which the CPU gets back by touching them.
 *
 * Conversion, hmmu_make_device_exclusive_range():
 *   1. GUP the range for write (copy-on-write broken, the zero page
 *      replaced), then split every transparent huge PMD mapping the pages
 *      got (the kernel's FOLL_SPLIT_PMD; a CLEAR invalidation each);
 *   2. per page: a tail page, or one whose lock is busy, is dropped
 *      (pages[i] = NULL); else, with the page locked, every mapping of its
 *      folio found through the reverse map is replaced by a
 *      device-exclusive entry, each VMA's inside one EXCLUSIVE invalidation
 *      with the caller's owner over the folio's range in that VMA.  The
 *      entry keeps the reference its mapping held and gives up the mapcount
 *      (spec 0.3); the dirty bit moves to the page.  The page stays with
 *      the caller, locked and referenced, iff the mapping in the caller's
 *      mm at the expected address was writable and no mapping is left.
 *
 * Restore, hmmu_device_exclusive_fault(): a CPU access (fault, GUP,
 * hmmu_access, hmm_range_fault with a fault request) locks the page (it
 * sleeps while the driver still holds it), and inside an EXCLUSIVE
 * invalidation with owner NULL (the device must drop its atomic mapping)
 * puts the present entry back.  fork restores the parent's entries itself
 * with a page trylock (src/mm/fork.c).
 *
 * Linux 6.1 results kept: a transparent huge page is split at PMD level
 * only, so its pages stay one folio: tail pages come back NULL and the head
 * page's conversion converts all of the folio's PTEs.  A conversion that
 * fails leaves the entries it already made; a CPU access restores them.
 *
 * Locking: the caller's mmap_lock (read) -> page lock -> anon_vma lock ->
 * EXCLUSIVE invalidation (driver locks) -> PTE-table lock.  Other mms'
 * mappings are reached without their mmap_lock (see hmmu_rmap_walk).
 */
#include "internal.h"

/* One conversion: the reverse-map walk's and the page-table walk's data. */
struct hmmu_exclusive_args {
	struct hmmu_mm *mm;		/* the caller's mm (its mmap_lock held) */
	unsigned long addr;		/* where the caller expects the page */
	void *owner;			/* owner of the EXCLUSIVE invalidations */
	struct hmmu_page *head;		/* the folio converted: locked, referenced */
	struct hmmu_vma *vma;		/* the VMA being walked */
	bool valid;			/* the expected mapping was seen writable */
};

/* Is @pfn a frame of the folio being converted? */
static bool hmmu_exclusive_in_folio(const struct hmmu_exclusive_args *a, unsigned long pfn)
{
	return pfn - hmmu_page_to_pfn(a->head) < (1UL << hmmu_compound_order(a->head));
}

/*
 * Does the PTE @e map a frame of the folio?  Present entries (not special),
 * and the typed entries that stand for a mapping (device-private,
 * device-exclusive); migration entries do not.
 */
static bool hmmu_exclusive_maps_folio(const struct hmmu_exclusive_args *a, hmmu_pte_t e)
{
	struct hmmu_swp_entry se;

	if (hmmu_pte_present(e))
		return !hmmu_pte_special(e) && hmmu_exclusive_in_folio(a, hmmu_pte_pfn(e));
	se = hmmu_pte_to_swp_entry(e);
	return (hmmu_is_device_private_entry(se) || hmmu_is_device_exclusive_entry(se)) &&
	       hmmu_exclusive_in_folio(a, se.pfn);
}

/* PTE-level mappings of the folio @head, plus its PMD-level ones. */
static int hmmu_folio_mapcount(struct hmmu_page *head)
{
	int n = atomic_load_explicit(&head->_entire_mapcount, memory_order_relaxed);

	for (unsigned long i = 0; i < (1UL << hmmu_compound_order(head)); i++)
		n += atomic_load_explicit(&head[i]._mapcount, memory_order_relaxed);
	return n;
}

/*
 * Replace the present PTE *@ptep at @addr, which maps a frame of the folio,
 * by a device-exclusive entry (write variant iff it was writable).  The
 * entry keeps the mapping's reference, not its mapcount; dirty moves to the
 * page.  Context: @pt's lock held, the folio locked.
 */
static void hmmu_exclusive_pte_make(struct hmmu_exclusive_args *a, struct hmmu_pt *pt, hmmu_pte_t *ptep,
				    unsigned long addr)
{
	hmmu_pte_t e = hmmu_pte_read(ptep);
	struct hmmu_page *page = hmmu_pfn_to_page(hmmu_pte_pfn(e));
	enum hmmu_swp_type type = hmmu_pte_write(e) ? HMMU_SWP_DEVICE_EXCLUSIVE_WRITE
						    : HMMU_SWP_DEVICE_EXCLUSIVE_READ;

	hmmu_pte_set(pt, ptep, hmmu_swp_entry_to_pte(hmmu_make_swp_entry(type, hmmu_pte_pfn(e))));
	if (hmmu_pte_dirty(e))
		hmmu_page_set_flag(page, HMMU_PG_dirty);
	if (a->vma->vm_mm == a->mm && addr == a->addr && hmmu_pte_write(e))
		a->valid = true;
	hmmu_page_remove_rmap(page, false);
}

/*
 * Walk callback: convert the folio's mappings in one PTE table's run, under
 * its lock.  A mapping that is not present (already exclusive, say) stops
 * the conversion: returns -EBUSY; else 0.
 */
static int hmmu_exclusive_pte_range(hmmu_pte_t *ptep, unsigned long addr, unsigned long end,
				    struct hmmu_mm_walk *walk)
{
	struct hmmu_exclusive_args *a = walk->private;
	unsigned long start = addr;
	bool changed = false;
	int ret = 0;

	hmmu_pt_lock(walk->pt);
	for (; addr < end; addr += HMMU_PAGE_SIZE, ptep++) {
		hmmu_pte_t e = hmmu_pte_read(ptep);

		if (hmmu_pte_none(e) || !hmmu_exclusive_maps_folio(a, e))
			continue;
		if (!hmmu_pte_present(e)) {
			ret = -EBUSY;
			break;
		}
		hmmu_exclusive_pte_make(a, walk->pt, ptep, addr);
		changed = true;
	}
	/* Secondary TLBs drop the entries before the lock goes. */
	if (changed)
		hmmu_notifier_invalidate_range(walk->mm, start, end);
	hmmu_pt_unlock(walk->pt);
	return ret;
}

/*
 * Walk callback for a PMD leaf: the folio still (or again) mapped at PMD
 * level cannot be converted: -EBUSY.  Read without the lock: a racing split
 * only makes the conversion fail.
 */
static int hmmu_exclusive_pmd_entry(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end,
				    struct hmmu_mm_walk *walk)
{
	hmmu_pte_t e = hmmu_pte_read(pmdp);

	if (hmmu_pmd_leaf(e) && hmmu_exclusive_in_folio(walk->private, hmmu_pte_pfn(e)))
		return -EBUSY;
	return 0;
}

static const struct hmmu_walk_ops hmmu_exclusive_walk_ops = {
	.pmd_entry = hmmu_exclusive_pmd_entry,
	.pte_range = hmmu_exclusive_pte_range,
};

/*
 * Reverse-map callback: convert the mappings of the folio in @vma, from
 * @addr (its head's place) over the folio's size, inside one EXCLUSIVE
 * invalidation of @vma's mm with the caller's owner.  Context: folio
 * locked, anon_vma lock and @vma's mmap_lock (read) held.  Returns false
 * to stop the walk (a hugetlb VMA, or a mapping that is not present).
 */
static bool hmmu_exclusive_rmap_one(struct hmmu_page *head, struct hmmu_vma *vma, unsigned long addr, void *arg)
{
	struct hmmu_exclusive_args *a = arg;
	unsigned long end = HMMU_MIN(vma->vm_end, addr + (HMMU_PAGE_SIZE << hmmu_compound_order(head)));
	struct hmmu_notifier_range range;
	int err;

	if (hmmu_vma_is_hugetlb(vma))
		return false;
	a->vma = vma;
	hmmu_notifier_range_init_owner(&range, HMMU_NOTIFY_EXCLUSIVE, 0, vma->vm_mm, addr, end, a->owner);
	hmmu_notifier_invalidate_range_start(&range);
	err = hmmu_walk_page_range_novma(vma->vm_mm, addr, end, &hmmu_exclusive_walk_ops, a);
	/* The secondary-TLB hook ran under each table's lock. */
	hmmu_notifier_invalidate_range_only_end(&range);
	return !err;
}

/* Reverse-map callback: stop once no mapping of the folio is left. */
static bool hmmu_exclusive_folio_unmapped(struct hmmu_page *head)
{
	return hmmu_folio_mapcount(head) == 0;
}

/*
 * Step 2's conversion of one folio (internal.h).  Context: @mm's mmap_lock
 * held for read; the caller owns @head's lock and a reference, and keeps
 * both whatever the result.  Returns true iff converted.
 */
bool hmmu_page_make_device_exclusive(struct hmmu_page *head, struct hmmu_mm *mm, unsigned long addr, void *owner)
{
	struct hmmu_exclusive_args a = { .mm = mm, .addr = addr, .owner = owner, .head = head };
	struct hmmu_rmap_walk_control rwc = {
		.arg = &a,
		.rmap_one = hmmu_exclusive_rmap_one,
		.done = hmmu_exclusive_folio_unmapped,
	};
	struct hmmu_vma *vma = hmmu_vma_lookup(mm, addr);

	HMMU_BUG_ON(head->compound_head || !hmmu_page_locked(head));
	hmmu_mmap_assert_locked(mm);
	/* Anonymous memory only (6.1: no write-back rules for file pages); no hugetlb. */
	if (!hmmu_page_is_anon(head) || !vma || hmmu_vma_is_hugetlb(vma))
		return false;
	hmmu_rmap_walk(head, &rwc);
	return a.valid && hmmu_folio_mapcount(head) == 0;
}

/*
 * Step 2 for the page GUP returned for @addr, with its reference: the page
 * locked and converted, or NULL (its reference dropped, its lock released).
 * Context: @mm's mmap_lock held for read.
 */
static struct hmmu_page *hmmu_exclusive_one(struct hmmu_mm *mm, unsigned long addr, struct hmmu_page *page,
					    void *owner)
{
	if (page->compound_head || !hmmu_trylock_page(page)) {
		hmmu_put_page(page);
		return NULL;
	}
	if (!hmmu_page_make_device_exclusive(page, mm, addr, owner)) {
		hmmu_unlock_page(page);
		hmmu_put_page(page);
		return NULL;
	}
	return page;
}

/* Split walk: hugetlb VMAs keep their 2 MiB entries (never split). */
static int hmmu_exclusive_split_test(unsigned long start, unsigned long end, struct hmmu_mm_walk *walk)
{
	return hmmu_vma_is_hugetlb(walk->vma) ? 1 : 0;
}

/* Split walk: a transparent huge leaf becomes 512 PTEs (CLEAR invalidation). */
static int hmmu_exclusive_split_pmd(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end,
				    struct hmmu_mm_walk *walk)
{
	if (!hmmu_pmd_leaf(hmmu_pte_read(pmdp)))
		return 0;
	return hmmu_split_huge_pmd(walk->vma, walk->pt, pmdp, addr);
}

static const struct hmmu_walk_ops hmmu_exclusive_split_ops = {
	.test_walk = hmmu_exclusive_split_test,
	.pmd_entry = hmmu_exclusive_split_pmd,
};

/*
 * Context: @mm's mmap_lock held for read, no page lock.  The caller owns
 * each non-NULL pages[i] returned: locked, one reference.  Returns n, or
 * GUP's error for the first page (-EFAULT, -ENOMEM), or -EINVAL (see
 * <hmmu/migrate.h>).
 */
long hmmu_make_device_exclusive_range(struct hmmu_mm *mm, unsigned long start, unsigned long end,
				      struct hmmu_page **pages, void *owner)
{
	long n;

	if (!mm || !pages || (start | end) & ~HMMU_PAGE_MASK || start >= end || end > HMMU_TASK_SIZE)
		return -EINVAL;
	hmmu_mmap_assert_locked(mm);
	n = hmmu_get_user_pages_remote(mm, start, (end - start) >> HMMU_PAGE_SHIFT, HMMU_FOLL_WRITE, pages);
	if (n <= 0)
		return n;
	/* A split that did not happen only makes the folio's conversion fail. */
	(void)hmmu_walk_page_range(mm, start, start + ((unsigned long)n << HMMU_PAGE_SHIFT),
				   &hmmu_exclusive_split_ops, NULL);
	for (long i = 0; i < n; i++)
		pages[i] = hmmu_exclusive_one(mm, start + ((unsigned long)i << HMMU_PAGE_SHIFT), pages[i], owner);
	return n;
}

/* ------------------------------------------------------------------ */
/* Restore                                                             */
/* ------------------------------------------------------------------ */

/*
 * The present entry back in place of *@ptep (internal.h).  Context: @pt's
 * lock held, the page locked; the entry's reference becomes the mapping's.
 */
void hmmu_exclusive_entry_restore_locked(struct hmmu_vma *vma, struct hmmu_pt *pt, hmmu_pte_t *ptep)
{
	struct hmmu_swp_entry se = hmmu_pte_to_swp_entry(hmmu_pte_read(ptep));
	struct hmmu_page *page = hmmu_pfn_to_page(se.pfn);
	hmmu_pte_t bits = 0;

	HMMU_BUG_ON(!hmmu_is_device_exclusive_entry(se) || !hmmu_page_locked(page));
	if (se.type == HMMU_SWP_DEVICE_EXCLUSIVE_WRITE) {
		bits = HMMU_PTE_DIRTY;
		/* Atomic: maybe reached by a reverse-map walk (see hmmu_vma_set_flags). */
		if (__atomic_load_n(&vma->vm_flags, __ATOMIC_RELAXED) & HMMU_VM_WRITE)
			bits |= HMMU_PTE_WRITE;
	}
	/* The mapping takes over the entry's reference and gets its mapcount back. */
	atomic_fetch_add_explicit(&page->_mapcount, 1, memory_order_relaxed);
	hmmu_pte_set(pt, ptep, hmmu_pfn_pte(se.pfn, bits));
}

/*
 * Under @page's lock: if *@ptep is still @orig, put the present entry back
 * inside an EXCLUSIVE invalidation with owner NULL (the device revokes its
 * atomic mapping), then unlock and drop @page (the caller's reference).
 */
static void hmmu_exclusive_restore(struct hmmu_vma *vma, unsigned long addr, struct hmmu_pt *pt,
				   hmmu_pte_t *ptep, hmmu_pte_t orig, struct hmmu_page *page)
{
	struct hmmu_notifier_range range;

	hmmu_notifier_range_init_owner(&range, HMMU_NOTIFY_EXCLUSIVE, 0, vma->vm_mm, addr, addr + HMMU_PAGE_SIZE,
				       NULL);
	hmmu_notifier_invalidate_range_start(&range);
	hmmu_pt_lock(pt);
	if (hmmu_pte_read(ptep) == orig)
		hmmu_exclusive_entry_restore_locked(vma, pt, ptep);
	hmmu_pt_unlock(pt);
	hmmu_unlock_page(page);
	hmmu_put_page(page);
	hmmu_notifier_invalidate_range_end(&range);
}

/*
 * The fault handler's restore (internal.h).  Context: mmap_lock held for
 * read, no other lock; takes and drops its own page reference and lock.
 * Returns 0: the caller retries the access.
 */
hmmu_vm_fault_t hmmu_device_exclusive_fault(struct hmmu_vma *vma, unsigned long addr, struct hmmu_pt *pt,
					    hmmu_pte_t *ptep, hmmu_pte_t orig)
{
	struct hmmu_page *page = hmmu_pfn_to_page(hmmu_pte_to_swp_entry(orig).pfn);

	/*
	 * No lock held: the entry may be gone and its page freed, even
	 * reused, meanwhile.  A free page means the entry is gone: retry.  A
	 * reused one is only locked and unlocked (the entry check fails).
	 */
	if (!hmmu_get_page_unless_zero(page))
		return 0;
	/* Sleeps while the driver holds it (between conversion and its unlock). */
	hmmu_lock_page(page);
	if (hmmu_pte_read(ptep) != orig) {
		/* Restored or unmapped while we slept: nothing to revoke. */
		hmmu_unlock_page(page);
		hmmu_put_page(page);
		return 0;
	}
	hmmu_exclusive_restore(vma, addr & HMMU_PAGE_MASK, pt, ptep, orig, page);
	return 0;
}
