// SPDX-License-Identifier: MIT
/*
 * Splitting a transparent huge page for migration (spec 3.3, "PMD level
 * during collect"): device memory is PAGE_SIZE only in 6.1, so collect
 * turns a PMD-mapped huge page into 512 base pages mapped by PTEs and
 * migrates those.
 *
 * The split happens only when the PMD leaf is the page's one mapping and
 * nobody else holds a reference or a pin: then, with the page locked, the
 * PMD is split into PTEs (hmmu_split_huge_pmd: a CLEAR invalidation of the
 * 2 MiB range) and, under the new PTE table's lock, which now covers every
 * mapping of the page, each frame becomes a page of its own holding its
 * PTE's reference.  Otherwise nothing of the page is migrated.
 */
#include "internal.h"

/* Is @head's only mapping one PMD, with no reference but the PMD's and ours, and no pin? */
static bool hmmu_thp_splittable(struct hmmu_page *head)
{
	if (hmmu_compound_order(head) != HMMU_PMD_ORDER || !hmmu_page_is_anon(head) ||
	    hmmu_page_maybe_dma_pinned(head) || hmmu_page_ref_count(head) != 2 ||
	    atomic_load_explicit(&head->_entire_mapcount, memory_order_relaxed) != 1)
		return false;
	for (unsigned int i = 0; i < HMMU_PT_ENTRIES; i++)
		if (atomic_load_explicit(&head[i]._mapcount, memory_order_relaxed))
			return false;
	return true;
}

/* Is every frame of @head mapped once, by a PTE, and referenced by nothing else but us? */
static bool hmmu_thp_pte_mapped_only(struct hmmu_page *head)
{
	if (hmmu_page_ref_count(head) != HMMU_PT_ENTRIES + 1 || hmmu_page_maybe_dma_pinned(head))
		return false;
	for (unsigned int i = 0; i < HMMU_PT_ENTRIES; i++)
		if (atomic_load_explicit(&head[i]._mapcount, memory_order_relaxed) != 1)
			return false;
	return true;
}

/*
 * Make each frame of @head a base page: its PTE's reference, the head's
 * dirty and uptodate flags (mapping, index and anon-exclusive were set per
 * frame by the PMD split).  Context: @head locked and referenced by the
 * caller (that reference stays on the head frame); the lock of the PTE
 * table mapping every frame held, so no one else can reach them.
 */
static void hmmu_thp_split_page(struct hmmu_page *head)
{
	unsigned long keep = atomic_load(&head->flags) & ((1UL << HMMU_PG_dirty) | (1UL << HMMU_PG_uptodate));

	for (unsigned int i = 1; i < HMMU_PT_ENTRIES; i++) {
		struct hmmu_page *p = head + i;

		atomic_fetch_or_explicit(&p->flags, keep, memory_order_relaxed);
		p->compound_head = NULL;
		atomic_store_explicit(&p->_refcount, 1, memory_order_release);
	}
	head->compound_order = 0;
	hmmu_page_clear_flag(head, HMMU_PG_head);
	atomic_store_explicit(&head->_refcount, 2, memory_order_release);
}

/* Context: @head locked and referenced; mmap_lock held (read). */
static int hmmu_thp_split_locked(struct hmmu_vma *vma, struct hmmu_pt *pmd_pt, hmmu_pte_t *pmdp, unsigned long addr,
				 struct hmmu_page *head)
{
	struct hmmu_pt *pt;
	hmmu_pte_t pmd;
	bool ok;

	if (!hmmu_thp_splittable(head))
		return -EBUSY;
	hmmu_split_huge_pmd(vma, pmd_pt, pmdp, addr);
	pmd = __atomic_load_n(pmdp, __ATOMIC_ACQUIRE);
	if (!hmmu_pte_table(pmd))
		return 0;	/* zapped meanwhile: a hole */
	pt = hmmu_pte_to_table(pmd);
	hmmu_pt_lock(pt);
	ok = hmmu_thp_pte_mapped_only(head);
	if (ok)
		hmmu_thp_split_page(head);
	hmmu_pt_unlock(pt);
	return ok ? 0 : -EBUSY;
}

/* Context and errors: see internal.h. */
int hmmu_migrate_split_thp(struct hmmu_vma *vma, struct hmmu_pt *pmd_pt, hmmu_pte_t *pmdp, unsigned long addr)
{
	struct hmmu_page *head;
	hmmu_pte_t pmd;
	int err;

	hmmu_pt_lock(pmd_pt);
	pmd = hmmu_pte_read(pmdp);
	if (!hmmu_pmd_leaf(pmd) || hmmu_vma_is_hugetlb(vma)) {
		hmmu_pt_unlock(pmd_pt);
		return hmmu_pte_none(pmd) || hmmu_pte_table(pmd) ? 0 : -EBUSY;
	}
	head = hmmu_pfn_to_page(hmmu_pte_pfn(pmd));
	hmmu_get_page(head);
	hmmu_pt_unlock(pmd_pt);
	if (!hmmu_trylock_page(head)) {
		hmmu_put_page(head);
		return -EBUSY;
	}
	err = hmmu_thp_split_locked(vma, pmd_pt, pmdp, addr, head);
	hmmu_unlock_page(head);
	hmmu_put_page(head);
	return err;
}
