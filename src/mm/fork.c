// SPDX-License-Identifier: MIT
/*
 * fork: duplicate an address space.
 *
 * hmmu_fork() creates the child, copies every VMA not marked
 * HMMU_VM_DONTCOPY and, where the kernel does (a VMA with an anon_vma, a
 * hugetlb VMA, a PFNMAP/MIXEDMAP VMA), the page-table entries behind it.
 * Shared mappings and private file mappings that never wrote a page are
 * not copied: the child refaults them from the page cache.
 *
 * The copy is one walk of the parent per VMA.  For a copy-on-write VMA the
 * walk runs inside one PROTECTION_PAGE invalidation of the parent over the
 * whole VMA, because the parent's writable entries lose their write bit.
 * Each entry is copied under the parent's page-table lock and the child's
 * (parent first: the child is not yet visible to any thread, and a
 * reverse-map walker holds one page-table lock at a time), following the
 * reference rules of spec 0.3:
 *
 *   zero page, special entry   copied, no reference
 *   present page               +1 reference, +1 mapcount, no longer
 *                              anon-exclusive; write-protected on both
 *                              sides in a COW VMA; the child's copy is old
 *                              (and clean in a shared VMA)
 *   pinned exclusive anon page copied at once into a new page for the
 *                              child; the parent keeps it writable
 *   THP leaf                   +1 reference, +1 entire mapcount, an empty
 *                              PTE table deposited in the child; a pinned
 *                              exclusive one is split and copied per page
 *   migration entry            copied; write / read-exclusive become read
 *                              on both sides in a COW VMA; no reference
 *   device-private entry       +1 reference, +1 mapcount; write becomes
 *                              read on both sides in a COW VMA
 *   device-exclusive entry     restored to a present entry in the parent
 *                              (page trylock; busy: fork fails, -ENOMEM),
 *                              then copied as a present page
 *
 * Reverse map: the child's VMAs join the parent's anon_vma itself, where
 * Linux gives the child its own anon_vma chained to the parent's.  One
 * shared root yields the same reverse-map answers (a walker visits a few
 * more VMAs and finds no entry in those that do not map the page), so a
 * page the child copies later is still found through the shared root.
 *
 * Locking: the parent's mmap_lock is held for write for the whole copy (no
 * fault, GUP or VMA change runs in the parent meanwhile); the child's is
 * held for write while it is built, for the lock assertions.  Pages are
 * allocated under page-table locks only on the rare pinned-page path (the
 * allocator's node lock is a leaf); no page is freed under one.
 */
#include <string.h>

#include "internal.h"

/* One VMA being copied; the walk's private data. */
struct hmmu_fork_copy {
	struct hmmu_vma *src_vma;	/* the parent's VMA (mmap_lock held for write) */
	struct hmmu_vma *dst_vma;	/* its copy in the child */
	bool cow;			/* hmmu_vma_is_cow(src_vma) */
	struct hmmu_pt *src_pt;		/* table of the entries being copied: ptl held */
	struct hmmu_pt *dst_pt;		/* the child's table receiving them: ptl held */
};

/* ------------------------------------------------------------------ */
/* Pages                                                               */
/* ------------------------------------------------------------------ */

/*
 * Must @page (mapped in the COW VMA being copied) be copied for the child
 * now instead of shared?  Yes for an anon-exclusive page that may be
 * DMA-pinned: sharing it would let the parent's next write copy it away
 * from under the pin.  Context: parent ptl held.
 */
static bool hmmu_page_needs_fork_copy(const struct hmmu_fork_copy *c, struct hmmu_page *page)
{
	return c->cow && hmmu_page_is_anon(page) && hmmu_page_test_flag(page, HMMU_PG_anon_exclusive) &&
	       hmmu_page_maybe_dma_pinned(page);
}

/*
 * One more PTE-level mapping of @page (the child's): a reference on its
 * compound page, a mapcount on the frame; an anon page is no longer
 * exclusive to one process.  Context: parent ptl held (the parent's entry
 * keeps the page alive).
 */
static void hmmu_page_dup_pte(struct hmmu_page *page)
{
	hmmu_get_page(page);
	atomic_fetch_add_explicit(&page->_mapcount, 1, memory_order_relaxed);
	if (hmmu_page_is_anon(page))
		hmmu_page_clear_flag(page, HMMU_PG_anon_exclusive);
}

/* The same for a PMD-level mapping of the compound page @head. */
static void hmmu_page_dup_pmd(struct hmmu_page *head)
{
	hmmu_get_page(head);
	atomic_fetch_add_explicit(&head->_entire_mapcount, 1, memory_order_relaxed);
	if (hmmu_page_is_anon(head))
		hmmu_page_clear_flag(head, HMMU_PG_anon_exclusive);
}

/*
 * A private copy of the 2^@order bytes of @src for the child at @addr: a
 * new anonymous page (compound when @order > 0), mapped dirty and young,
 * writable if the VMA is.  Returns the entry to install (HUGE included for
 * a PMD leaf), or 0 when out of memory.  Context: both ptls held; the
 * caller owns nothing, the entry returned owns the new page.
 */
static hmmu_pte_t hmmu_page_fork_copy(struct hmmu_fork_copy *c, struct hmmu_page *src, unsigned long addr,
				      unsigned int order)
{
	struct hmmu_vma *vma = c->dst_vma;
	struct hmmu_page *page;
	hmmu_pte_t bits = HMMU_PTE_YOUNG | HMMU_PTE_DIRTY;

	if (hmmu_anon_vma_prepare(vma))
		return 0;
	page = order ? hmmu_alloc_pages(HMMU_GFP_COMP, order) : hmmu_alloc_page_vma(vma, addr);
	if (!page)
		return 0;
	memcpy(hmmu_page_address(page), hmmu_page_address(src), HMMU_PAGE_SIZE << order);
	/* Contents are published with the entry's release store (hmmu_pte_set). */
	hmmu_page_set_flag(page, HMMU_PG_uptodate);
	hmmu_page_add_new_anon_rmap(page, vma, addr, order != 0);
	if (vma->vm_flags & HMMU_VM_WRITE)
		bits |= HMMU_PTE_WRITE;
	if (order)
		bits |= HMMU_PTE_HUGE;
	return hmmu_pfn_pte(hmmu_page_to_pfn(page), bits);
}

/* ------------------------------------------------------------------ */
/* Entries                                                             */
/* ------------------------------------------------------------------ */

/*
 * Share the present entry *@src (PTE or PMD leaf) with the child: in a
 * COW VMA a writable entry is write-protected in the parent first; the
 * child's copy is old, and clean in a shared VMA (the dirty state stays
 * with the parent's entry).  The caller took the references.  Returns the
 * child's entry.  Context: both ptls held.
 */
static hmmu_pte_t hmmu_present_pte_share(struct hmmu_fork_copy *c, hmmu_pte_t *src)
{
	hmmu_pte_t e = hmmu_pte_read(src);

	if (c->cow && hmmu_pte_write(e)) {
		e &= ~HMMU_PTE_WRITE;
		hmmu_pte_set(c->src_pt, src, e);
	}
	e &= ~HMMU_PTE_YOUNG;
	if (c->src_vma->vm_flags & HMMU_VM_SHARED)
		e &= ~HMMU_PTE_DIRTY;
	return e;
}

/*
 * Copy the present PTE *@src to the empty *@dst.  Context: both ptls held.
 * Returns 0, or -ENOMEM when a pinned page's copy could not be allocated
 * (nothing changed then).
 */
static int hmmu_present_pte_copy(struct hmmu_fork_copy *c, hmmu_pte_t *src, hmmu_pte_t *dst, unsigned long addr)
{
	hmmu_pte_t e = hmmu_pte_read(src);
	struct hmmu_page *page;

	if (!hmmu_pte_special(e) && !hmmu_is_zero_pfn(hmmu_pte_pfn(e))) {
		page = hmmu_pfn_to_page(hmmu_pte_pfn(e));
		if (hmmu_page_needs_fork_copy(c, page)) {
			e = hmmu_page_fork_copy(c, page, addr, 0);
			if (!e)
				return -ENOMEM;
			hmmu_pte_set(c->dst_pt, dst, e);
			return 0;
		}
		hmmu_page_dup_pte(page);
	}
	hmmu_pte_set(c->dst_pt, dst, hmmu_present_pte_share(c, src));
	return 0;
}

/*
 * In a COW VMA a typed entry that grants write (or exclusivity) may not be
 * shared: migration write / read-exclusive and device-private write become
 * their read variant (young and dirty kept).  True if @se changed.
 */
static bool hmmu_swp_entry_share_downgrade(struct hmmu_swp_entry *se)
{
	switch (se->type) {
	case HMMU_SWP_MIGRATION_WRITE:
	case HMMU_SWP_MIGRATION_READ_EXCLUSIVE:
		se->type = HMMU_SWP_MIGRATION_READ;
		return true;
	case HMMU_SWP_DEVICE_PRIVATE_WRITE:
		se->type = HMMU_SWP_DEVICE_PRIVATE_READ;
		return true;
	default:
		return false;
	}
}

/*
 * Copy the migration or device-private entry *@src (PTE, or a typed PMD
 * entry: HUGE kept) to the empty *@dst.  A device-private entry gives the
 * child a reference and a mapcount on the device page; a migration entry
 * holds nothing.  Context: both ptls held.  Cannot fail.
 */
static void hmmu_swp_pte_copy(struct hmmu_fork_copy *c, hmmu_pte_t *src, hmmu_pte_t *dst)
{
	hmmu_pte_t e = hmmu_pte_read(src);
	struct hmmu_swp_entry se = hmmu_pte_to_swp_entry(e);

	HMMU_BUG_ON(!hmmu_is_migration_entry(se) && !hmmu_is_device_private_entry(se));
	if (hmmu_is_device_private_entry(se))
		hmmu_page_dup_pte(hmmu_pfn_to_page(se.pfn));
	if (c->cow && hmmu_swp_entry_share_downgrade(&se)) {
		e = hmmu_swp_entry_to_pte(se) | (e & HMMU_PTE_HUGE);
		hmmu_pte_set(c->src_pt, src, e);
	}
	hmmu_pte_set(c->dst_pt, dst, e);
}

/*
 * Turn the parent's device-exclusive entry *@src back into the present
 * entry it replaced (hmmu_exclusive_entry_restore_locked: old, dirty and
 * writable if it was the write variant and the VMA is writable, the
 * mapcount back, the kept reference reused).  No invalidation of its own:
 * fork's PROTECTION_PAGE one over the VMA brackets it.  The page lock is
 * only try-locked (a page-table lock is held).  Context: parent ptl held.
 * Returns 0, or -ENOMEM when the page lock is busy (kernel 6.1: the copy
 * aborts and fork fails with -ENOMEM); the entry is unchanged then.
 */
static int hmmu_exclusive_pte_restore(struct hmmu_fork_copy *c, hmmu_pte_t *src)
{
	struct hmmu_page *page = hmmu_pfn_to_page(hmmu_pte_to_swp_entry(hmmu_pte_read(src)).pfn);

	if (!hmmu_trylock_page(page))
		return -ENOMEM;
	hmmu_exclusive_entry_restore_locked(c->src_vma, c->src_pt, src);
	hmmu_unlock_page(page);
	return 0;
}

/*
 * Copy one PTE *@src of the parent to the child's empty *@dst.  Context:
 * both ptls held.  Returns 0 or -ENOMEM (a device-exclusive entry whose
 * page lock is busy, or no memory for a pinned page's copy); everything
 * copied before stays consistent.
 */
static int hmmu_pte_copy(struct hmmu_fork_copy *c, hmmu_pte_t *src, hmmu_pte_t *dst, unsigned long addr)
{
	hmmu_pte_t e = hmmu_pte_read(src);
	int err;

	if (hmmu_pte_none(e))
		return 0;
	HMMU_BUG_ON(!hmmu_pte_none(hmmu_pte_read(dst)));
	if (!hmmu_pte_present(e)) {
		if (!hmmu_is_device_exclusive_entry(hmmu_pte_to_swp_entry(e))) {
			hmmu_swp_pte_copy(c, src, dst);
			return 0;
		}
		err = hmmu_exclusive_pte_restore(c, src);
		if (err)
			return err;
	}
	return hmmu_present_pte_copy(c, src, dst, addr);
}

/* ------------------------------------------------------------------ */
/* Tables                                                              */
/* ------------------------------------------------------------------ */

/*
 * Are the @n entries at @ptep all none?  Read without the ptl: filling a
 * none entry takes a fault, which needs the parent's mmap_lock (held here
 * for write), so a run seen empty stays empty and needs no child table.
 */
static bool hmmu_pte_run_empty(const hmmu_pte_t *ptep, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		if (!hmmu_pte_none(hmmu_pte_read(&ptep[i])))
			return false;
	return true;
}

/*
 * The child's PTE table covering @addr, allocated (with the tables above
 * it) if missing.  Context: the child's mmap_lock held for write, no ptl
 * held.  Returns 0 and sets *@ptp, or -ENOMEM.
 */
static int hmmu_child_pte_table_get(struct hmmu_mm *child, unsigned long addr, struct hmmu_pt **ptp)
{
	struct hmmu_pt *pmd_pt;
	hmmu_pte_t *pmdp = hmmu_pmd_lookup(child, addr, true, &pmd_pt);

	if (!pmdp || hmmu_pte_table_populate(child, pmd_pt, pmdp))
		return -ENOMEM;
	/* Only this walk fills the child, and a PMD slot holding a PTE table
	 * in the parent never holds a huge leaf in the child. */
	HMMU_BUG_ON(!hmmu_pte_table(hmmu_pte_read(pmdp)));
	*ptp = hmmu_pte_to_table(hmmu_pte_read(pmdp));
	return 0;
}

/*
 * Walk callback: copy the run [addr, end) of one parent PTE table, with
 * the parent's table locked, then the child's.  Context: both mmap_locks
 * held for write.  Returns 0 or -ENOMEM (table allocation, or an entry
 * that could not be copied: see hmmu_pte_copy()).
 */
static int hmmu_pte_range_copy(hmmu_pte_t *ptep, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_fork_copy *c = walk->private;
	hmmu_pte_t *dst;
	int err = 0;

	if (hmmu_pte_run_empty(ptep, (end - addr) >> HMMU_PAGE_SHIFT))
		return 0;
	err = hmmu_child_pte_table_get(c->dst_vma->vm_mm, addr, &c->dst_pt);
	if (err)
		return err;
	c->src_pt = walk->pt;
	dst = &c->dst_pt->e[hmmu_pt_index(addr, 0)];
	hmmu_pt_lock(c->src_pt);
	hmmu_pt_lock(c->dst_pt);
	for (; addr < end && !err; addr += HMMU_PAGE_SIZE, ptep++, dst++)
		err = hmmu_pte_copy(c, ptep, dst, addr);
	hmmu_pt_unlock(c->dst_pt);
	hmmu_pt_unlock(c->src_pt);
	return err;
}

/*
 * Copy the huge leaf *@src to the child's empty PMD entry *@dst: share it
 * (write-protected in a COW VMA), or, for a pinned exclusive hugetlb
 * page, copy its 2 MiB.  A transparent huge leaf takes *@deposit into the
 * child's PMD table (one deposit per THP leaf) and clears *@deposit.
 * Context: both ptls held.  Returns 0 or -ENOMEM.
 */
static int hmmu_huge_pmd_copy(struct hmmu_fork_copy *c, hmmu_pte_t *src, hmmu_pte_t *dst, unsigned long addr,
			      struct hmmu_pt **deposit)
{
	struct hmmu_page *head = hmmu_pfn_to_page(hmmu_pte_pfn(hmmu_pte_read(src)));
	hmmu_pte_t e;

	if (hmmu_page_needs_fork_copy(c, head)) {
		/* THP leaves were split before the locks were taken. */
		HMMU_BUG_ON(!hmmu_vma_is_hugetlb(c->src_vma));
		e = hmmu_page_fork_copy(c, head, addr, HMMU_PMD_ORDER);
		if (!e)
			return -ENOMEM;
	} else {
		hmmu_page_dup_pmd(head);
		e = hmmu_present_pte_share(c, src);
	}
	hmmu_pte_set(c->dst_pt, dst, e);
	if (!hmmu_vma_is_hugetlb(c->src_vma)) {
		hmmu_pgtable_deposit(c->dst_pt, *deposit);
		*deposit = NULL;
	}
	return 0;
}

/*
 * Under both PMD tables' locks: copy the parent's PMD entry *@src (a huge
 * leaf or a typed entry) to *@dst.  If it became something else meanwhile
 * (a table, none), let the walker descend.  Returns 0 or -ENOMEM.
 */
static int hmmu_pmd_copy_locked(struct hmmu_fork_copy *c, struct hmmu_mm_walk *walk, hmmu_pte_t *src,
				hmmu_pte_t *dst, unsigned long addr, struct hmmu_pt **deposit)
{
	hmmu_pte_t e = hmmu_pte_read(src);

	HMMU_BUG_ON(!hmmu_pte_none(hmmu_pte_read(dst)));
	if (hmmu_pmd_leaf(e))
		return hmmu_huge_pmd_copy(c, src, dst, addr, deposit);
	if (!hmmu_pte_none(e) && !hmmu_pte_table(e)) {
		hmmu_swp_pte_copy(c, src, dst);	/* a PMD migration entry */
		return 0;
	}
	walk->action = HMMU_WALK_DESCEND;
	return 0;
}

/*
 * Is the PMD entry *@pmdp a transparent huge leaf of an exclusive page that
 * may be pinned?  It is then split and copied per page, as Linux does.
 * Read without the ptl: pins need the mmap_lock, which the caller holds
 * for write, and the entry is re-checked under the ptl by the split.
 */
static bool hmmu_pmd_needs_split(struct hmmu_fork_copy *c, hmmu_pte_t *pmdp)
{
	hmmu_pte_t e = hmmu_pte_read(pmdp);

	return hmmu_pmd_leaf(e) && !hmmu_vma_is_hugetlb(c->src_vma) &&
	       hmmu_page_needs_fork_copy(c, hmmu_pfn_to_page(hmmu_pte_pfn(e)));
}

/*
 * Before any lock is taken: the child's PMD entry for @addr (allocating the
 * tables above it; sets c->dst_pt) and, in a THP VMA, the empty PTE table
 * a copied leaf deposits (*@deposit, owned by the caller; NULL for
 * hugetlb).  Context: both mmap_locks held for write.  0 or -ENOMEM.
 */
static int hmmu_child_pmd_prepare(struct hmmu_fork_copy *c, unsigned long addr, hmmu_pte_t **dstp,
				  struct hmmu_pt **deposit)
{
	*deposit = NULL;
	*dstp = hmmu_pmd_lookup(c->dst_vma->vm_mm, addr, true, &c->dst_pt);
	if (!*dstp)
		return -ENOMEM;
	if (!hmmu_vma_is_hugetlb(c->src_vma) && !(*deposit = hmmu_pt_alloc(NULL, 0)))
		return -ENOMEM;
	return 0;
}

/*
 * Walk callback for a PMD entry that is a huge leaf or a typed entry.
 * Context: both mmap_locks held for write.  Returns 0 or -ENOMEM.
 */
static int hmmu_pmd_entry_copy(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_fork_copy *c = walk->private;
	struct hmmu_pt *deposit;
	hmmu_pte_t *dst;
	int err;

	/* VMA boundaries split huge leaves: one lies wholly inside the VMA. */
	HMMU_BUG_ON(addr & ~HMMU_PMD_MASK || end - addr != HMMU_PMD_SIZE);
	if (hmmu_pmd_needs_split(c, pmdp)) {
		walk->action = HMMU_WALK_DESCEND;
		return hmmu_split_huge_pmd(walk->vma, walk->pt, pmdp, addr);
	}
	err = hmmu_child_pmd_prepare(c, addr, &dst, &deposit);
	if (err)
		return err;
	c->src_pt = walk->pt;
	hmmu_pt_lock(c->src_pt);
	hmmu_pt_lock(c->dst_pt);
	err = hmmu_pmd_copy_locked(c, walk, pmdp, dst, addr, &deposit);
	hmmu_pt_unlock(c->dst_pt);
	hmmu_pt_unlock(c->src_pt);
	if (deposit)
		hmmu_pt_free(NULL, deposit);
	return err;
}

static const struct hmmu_walk_ops hmmu_fork_walk_ops = {
	.pmd_entry = hmmu_pmd_entry_copy,
	.pte_range = hmmu_pte_range_copy,
};

/* ------------------------------------------------------------------ */
/* VMAs and the address space                                          */
/* ------------------------------------------------------------------ */

/*
 * Does fork copy @vma's entries?  Only where the child could not refault
 * them: anonymous pages (an anon_vma), hugetlb pages, raw frames
 * (PFNMAP/MIXEDMAP).  Shared mappings and untouched private file mappings
 * are refaulted from the page cache.
 */
static bool hmmu_vma_fork_needs_copy(const struct hmmu_vma *vma)
{
	return vma->anon_vma || hmmu_vma_is_hugetlb(vma) ||
	       (vma->vm_flags & (HMMU_VM_PFNMAP | HMMU_VM_MIXEDMAP));
}

/*
 * Copy the entries of the parent's @src into the child's @dst (same
 * range), inside one PROTECTION_PAGE invalidation of the parent over the
 * VMA when it is copy-on-write.  Context: both mmap_locks held for write.
 * Returns 0 or -ENOMEM; the bracket is closed either way.
 */
static int hmmu_vma_copy_entries(struct hmmu_vma *dst, struct hmmu_vma *src)
{
	struct hmmu_fork_copy c = { .src_vma = src, .dst_vma = dst, .cow = hmmu_vma_is_cow(src) };
	struct hmmu_notifier_range range;
	int err;

	if (!hmmu_vma_fork_needs_copy(src))
		return 0;
	if (c.cow)
		hmmu_notify_start(&range, HMMU_NOTIFY_PROTECTION_PAGE, src->vm_mm, src->vm_start, src->vm_end);
	err = hmmu_walk_page_range(src->vm_mm, src->vm_start, src->vm_end, &hmmu_fork_walk_ops, &c);
	if (c.cow)
		hmmu_notifier_invalidate_range_end(&range);
	return err < 0 ? err : 0;
}

/*
 * Give @child a copy of each of @mm's VMAs, except HMMU_VM_DONTCOPY ones,
 * and of their entries.  A copy shares the parent's anon_vma (see the top
 * of this file) and file reference; its driver's open hook runs.  Context:
 * both mmap_locks held for write.  Returns 0 or -ENOMEM; on failure the
 * child holds a consistent part of the copy (its teardown frees it).
 */
static int hmmu_mm_dup_vmas(struct hmmu_mm *mm, struct hmmu_mm *child)
{
	struct hmmu_vma *vma, *copy;
	int err;

	cds_list_for_each_entry(vma, &mm->vma_list, vm_list) {
		if (vma->vm_flags & HMMU_VM_DONTCOPY)
			continue;
		copy = hmmu_vma_dup(child, vma);
		if (!copy)
			return -ENOMEM;
		/* hmmu_vma_dup() copied the range; the pgoff keeps the anon index. */
		hmmu_vma_link(child, copy);
		err = hmmu_vma_copy_entries(copy, vma);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Context: takes @mm's mmap_lock for write; the caller holds a user
 * reference on @mm and no mmap_lock.  On success *@childp owns the child's
 * only user reference.  Returns 0, -EINVAL (NULL argument) or -ENOMEM (the
 * partial child has been torn down; the parent stays valid, with some of
 * its entries possibly write-protected or restored from device-exclusive).
 */
int hmmu_fork(struct hmmu_mm *mm, struct hmmu_mm **childp)
{
	struct hmmu_mm *child;
	int err;

	if (!mm || !childp)
		return -EINVAL;
	/* A child would need its own arena at the same addresses (docs/host.md). */
	if (mm->host)
		return -EOPNOTSUPP;
	err = hmmu_mm_create(HMMU_MM_DEFAULT, &child);
	if (err)
		return err;
	hmmu_mmap_write_lock(mm);
	hmmu_mmap_write_lock(child);
	err = hmmu_mm_dup_vmas(mm, child);
	hmmu_mmap_write_unlock(child);
	hmmu_mmap_write_unlock(mm);
	if (err) {
		hmmu_mmput(child);
		return err;
	}
	*childp = child;
	return 0;
}
