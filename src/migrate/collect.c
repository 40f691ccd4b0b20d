// SPDX-License-Identifier: MIT
/*
 * migrate_vma_setup: check the arguments, collect the range, unmap
 * (spec 3.3, 3.4).
 *
 * Collect is one walk of [start, end) inside one MIGRATE invalidation
 * whose owner is the migration's pgmap_owner.  Each PTE table's run is
 * handled under its lock, taken once: a selected page is try-locked (a
 * page lock is only ever try-locked under a page-table lock) and its entry
 * replaced by a migration entry that carries the entry's write
 * permission, young and dirty bits; the entry's mapcount goes, and its
 * reference becomes the migration's (the collect reference).  Empty slots
 * of anonymous VMAs (and the zero page, with SELECT_SYSTEM) are reported as
 * MIGRATE without a page and keep their CPU mapping.  A huge leaf is split
 * into base pages first.  The secondary-TLB hook runs once, from the
 * invalidation's end: the pages stay referenced until then.
 *
 * Unmap (unmap.c) then deals with the pages still mapped elsewhere and
 * with extra references.
 */
#include <string.h>

#include "internal.h"

/* Walk state: the migration and the next src[] slot to fill. */
struct hmmu_collect {
	struct hmmu_migrate_vma *args;
	unsigned long cpages;		/* entries selected so far */
};

static unsigned long hmmu_collect_index(const struct hmmu_collect *c, unsigned long addr)
{
	return (addr - c->args->start) >> HMMU_PAGE_SHIFT;
}

/* Every slot of [addr, end) is @mpfn (0, or MIGRATE for an empty slot). */
static int hmmu_collect_fill(struct hmmu_mm_walk *walk, unsigned long addr, unsigned long end, unsigned long mpfn)
{
	struct hmmu_collect *c = walk->private;
	unsigned long i = hmmu_collect_index(c, addr), n = (end - addr) >> HMMU_PAGE_SHIFT;

	for (unsigned long k = 0; k < n; k++)
		c->args->src[i + k] = mpfn;
	if (mpfn)
		c->cpages += n;
	return 0;
}

/* No table: empty slots, offered in anonymous VMAs whatever the flags (6.1). */
static int hmmu_collect_hole(unsigned long addr, unsigned long end, int depth, struct hmmu_mm_walk *walk)
{
	return hmmu_collect_fill(walk, addr, end, hmmu_vma_is_anonymous(walk->vma) ? HMMU_MIGRATE_PFN_MIGRATE : 0);
}

/*
 * A huge leaf (or a typed PMD entry): split a transparent huge page into
 * base pages and descend into them; what cannot be split is not migrated.
 */
static int hmmu_collect_pmd_entry(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	if (!hmmu_pmd_leaf(hmmu_pte_read(pmdp)) || hmmu_migrate_split_thp(walk->vma, walk->pt, pmdp, addr))
		return hmmu_collect_fill(walk, addr, end, 0);
	walk->action = HMMU_WALK_DESCEND;	/* a hole now, or base pages */
	return 0;
}

/* Is a device page of @page's pagemap selected by @flag and the owner? */
static bool hmmu_collect_device_ok(const struct hmmu_migrate_vma *args, const struct hmmu_page *page,
				   unsigned long flag)
{
	return (args->flags & flag) && page->pgmap->owner == args->pgmap_owner;
}

/* A device-private entry: selected with SELECT_DEVICE_PRIVATE and the owner. */
static struct hmmu_page *hmmu_collect_select_swp(const struct hmmu_migrate_vma *args, hmmu_pte_t e,
						 unsigned long *mpfn)
{
	struct hmmu_swp_entry se = hmmu_pte_to_swp_entry(e);
	struct hmmu_page *page;

	if (!hmmu_is_device_private_entry(se))
		return NULL;		/* migration, exclusive: never */
	page = hmmu_pfn_to_page(se.pfn);
	if (!hmmu_collect_device_ok(args, page, HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE))
		return NULL;
	*mpfn = hmmu_migrate_pfn(se.pfn) | HMMU_MIGRATE_PFN_MIGRATE |
		(se.type == HMMU_SWP_DEVICE_PRIVATE_WRITE ? HMMU_MIGRATE_PFN_WRITE : 0);
	return page;
}

/*
 * Selection of one non-empty entry (spec 3.3).  Returns the page to
 * collect with *@mpfn its src value, or NULL with *@mpfn the slot's final
 * value (0, or MIGRATE for the zero page).  Pages without `mapping` and
 * pieces of compound pages are never selected (6.1).
 */
static struct hmmu_page *hmmu_collect_select(const struct hmmu_migrate_vma *args, hmmu_pte_t e,
					     unsigned long *mpfn)
{
	unsigned long pfn = hmmu_pte_pfn(e);
	struct hmmu_page *page = NULL;

	*mpfn = 0;
	if (!hmmu_pte_present(e))
		page = hmmu_collect_select_swp(args, e, mpfn);
	else if (hmmu_pte_special(e))
		return NULL;
	else if (hmmu_is_zero_pfn(pfn))
		*mpfn = args->flags & HMMU_MIGRATE_VMA_SELECT_SYSTEM ? HMMU_MIGRATE_PFN_MIGRATE : 0;
	else if (!(page = hmmu_pfn_to_page(pfn)))
		return NULL;
	else if (hmmu_is_zone_device_page(page) ?
			 !hmmu_collect_device_ok(args, page, HMMU_MIGRATE_VMA_SELECT_DEVICE_COHERENT) :
			 !(args->flags & HMMU_MIGRATE_VMA_SELECT_SYSTEM))
		page = NULL;
	else
		*mpfn = hmmu_migrate_pfn(pfn) | HMMU_MIGRATE_PFN_MIGRATE | (hmmu_pte_write(e) ? HMMU_MIGRATE_PFN_WRITE : 0);
	if (page && (!page->mapping || hmmu_compound_order(page))) {
		*mpfn = 0;
		return NULL;
	}
	return page;
}

/*
 * Take @page (selected, mapped by @e at @ptep) for the migration: its lock
 * (try; the fault page is already locked by the fault path), and for an
 * exclusive anonymous page the right to share it (not while it may be
 * DMA-pinned: GUP runs under this ptl, so the pin count is stable).  Then
 * the migration entry replaces @e, and the reference @e held becomes the
 * migration's (Linux takes one and drops the entry's: the same count).
 * Returns false, with nothing changed, when the page is busy.  Context:
 * ptl held.
 */
static bool hmmu_collect_unmap_pte(struct hmmu_migrate_vma *args, struct hmmu_pt *pt, hmmu_pte_t *ptep,
				   hmmu_pte_t e, struct hmmu_page *page, unsigned long mpfn)
{
	if (page != args->fault_page && !hmmu_trylock_page(page))
		return false;
	if (hmmu_migrate_entry_install(page, pt, ptep, e, hmmu_migrate_pfn_pfn(mpfn), mpfn & HMMU_MIGRATE_PFN_WRITE))
		return true;
	if (page != args->fault_page)
		hmmu_unlock_page(page);
	return false;
}

/* One entry of a PTE table run; ptl held.  Returns its src value. */
static unsigned long hmmu_collect_pte(struct hmmu_collect *c, struct hmmu_mm_walk *walk, hmmu_pte_t *ptep)
{
	hmmu_pte_t e = hmmu_pte_read(ptep);
	struct hmmu_page *page;
	unsigned long mpfn;

	if (hmmu_pte_none(e))
		mpfn = hmmu_vma_is_anonymous(walk->vma) ? HMMU_MIGRATE_PFN_MIGRATE : 0;
	else if ((page = hmmu_collect_select(c->args, e, &mpfn)) &&
		 !hmmu_collect_unmap_pte(c->args, walk->pt, ptep, e, page, mpfn))
		mpfn = 0;
	c->cpages += mpfn != 0;
	return mpfn;
}

/* A PTE table's run: the hot loop, under the table's lock taken once. */
static int hmmu_collect_pte_range(hmmu_pte_t *ptep, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_collect *c = walk->private;
	unsigned long *src = c->args->src + hmmu_collect_index(c, addr);
	unsigned long n = (end - addr) >> HMMU_PAGE_SHIFT;

	hmmu_pt_lock(walk->pt);
	for (unsigned long k = 0; k < n; k++)
		src[k] = hmmu_collect_pte(c, walk, ptep + k);
	hmmu_pt_unlock(walk->pt);
	return 0;
}

static const struct hmmu_walk_ops hmmu_collect_ops = {
	.pmd_entry = hmmu_collect_pmd_entry,
	.pte_range = hmmu_collect_pte_range,
	.pte_hole = hmmu_collect_hole,
};

/*
 * Collect [start, end) inside one MIGRATE invalidation (owner =
 * pgmap_owner).  Fills src[0..npages) and sets npages, cpages and end.
 */
static void hmmu_migrate_collect(struct hmmu_migrate_vma *args)
{
	struct hmmu_mm *mm = args->vma->vm_mm;
	struct hmmu_collect c = { .args = args };
	struct hmmu_notifier_range range;
	int err;

	hmmu_notifier_range_init_owner(&range, HMMU_NOTIFY_MIGRATE, 0, mm, args->start, args->end,
				       args->pgmap_owner);
	hmmu_notifier_invalidate_range_start(&range);
	err = hmmu_walk_page_range(mm, args->start, args->end, &hmmu_collect_ops, &c);
	hmmu_notifier_invalidate_range_end(&range);
	HMMU_BUG_ON(err);
	(void)err;
	args->npages = (args->end - args->start) >> HMMU_PAGE_SHIFT;
	args->cpages = c.cpages;
}

/*
 * Spec 3.4's argument checks, after rounding start and end down to pages
 * (as Linux does, even when they fail).  Returns the page count or -EINVAL.
 */
static long hmmu_migrate_vma_check(struct hmmu_migrate_vma *args)
{
	const struct hmmu_vma *vma = args->vma;
	unsigned long special = HMMU_VM_IO | HMMU_VM_DONTEXPAND | HMMU_VM_PFNMAP | HMMU_VM_MIXEDMAP;

	args->start &= HMMU_PAGE_MASK;
	args->end &= HMMU_PAGE_MASK;
	if (!vma || hmmu_vma_is_hugetlb(vma) || (vma->vm_flags & special))
		return -EINVAL;
	if (args->start >= args->end)
		return -EINVAL;
	if (args->start < vma->vm_start || args->start >= vma->vm_end)
		return -EINVAL;
	if (args->end <= vma->vm_start || args->end > vma->vm_end)
		return -EINVAL;
	if (!args->src || !args->dst)
		return -EINVAL;
	if (args->fault_page &&
	    (!hmmu_is_device_private_page(args->fault_page) || !hmmu_page_locked(args->fault_page)))
		return -EINVAL;
	return (long)((args->end - args->start) >> HMMU_PAGE_SHIFT);
}

/*
 * Context: the caller holds args->vma->vm_mm's mmap_lock (read or write)
 * until finalize, and no other hmmu lock; a fault_page is locked by the
 * fault path.  Errors: -EINVAL (see include/hmmu/migrate.h), nothing
 * written to src or dst then.
 */
int hmmu_migrate_vma_setup(struct hmmu_migrate_vma *args)
{
	long nr = args ? hmmu_migrate_vma_check(args) : -EINVAL;
	struct hmmu_migrate_ctl ctl;

	if (nr < 0)
		return (int)nr;
	hmmu_mmap_assert_locked(args->vma->vm_mm);
	hmmu_trace(HMMU_TRACE_MIGRATE_SETUP, HMMU_TRACE_BEGIN, args->start, args->end, (unsigned long)nr, 0);
	memset(args->src, 0, (size_t)nr * sizeof(*args->src));
	memset(args->dst, 0, (size_t)nr * sizeof(*args->dst));
	hmmu_migrate_collect(args);
	if (args->cpages && hmmu_migrate_ctl_of(args, &ctl))
		args->cpages = hmmu_migrate_unmap(&ctl);
	hmmu_trace(HMMU_TRACE_MIGRATE_SETUP, HMMU_TRACE_END, args->start, args->end, args->cpages, 0);
	return 0;
}
