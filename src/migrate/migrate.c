// SPDX-License-Identifier: MIT
/*
 * migrate_vma_pages and migrate_vma_finalize (spec 3.6, 3.8, 3.13).
 *
 * pages commits what the driver prepared.  A collected page hands its
 * page state (anonymous mapping, index, dirty, uptodate) to its
 * destination, once its reference count is exactly what the migration
 * expects; its data the driver has already copied.  An empty slot gets its
 * destination inserted under the PTE lock if it is still empty or the
 * zero page; the first insertion opens one MIGRATE invalidation (owner =
 * pgmap_owner) from that slot to the end, closed with only_end because the
 * zero-page replacement calls the secondary-TLB hook itself under the ptl.
 * Of two inserters, or an inserter and a CPU fault, the first under the
 * ptl wins; the loser's entry loses MIGRATE and finalize releases its page.
 *
 * finalize (remove.c) puts every migration entry back to a mapping.
 */
#include "internal.h"

/*
 * Move @page's state to @newpage (Linux's migrate_folio without the copy).
 * Only anonymous pages move: a page-cache page stays where it is (6.1
 * refuses it for device memory; hmmu has no page-cache replacement for
 * system memory either).  The count check is exact: an extra reference
 * that the pin check let through for a device page stops it here.
 */
static bool hmmu_migrate_move_page(const struct hmmu_migrate_ctl *ctl, struct hmmu_page *page,
				   struct hmmu_page *newpage)
{
	int expected = 1 + (page == ctl->fault_page);
	unsigned long keep = (1UL << HMMU_PG_dirty) | (1UL << HMMU_PG_uptodate);

	if (page->mapping && !hmmu_page_is_anon(page))
		return false;
	if (hmmu_page_ref_count(page) != expected) {
		hmmu_count(HMMU_STAT_MIGRATE_PIN_CHECK_FAILED);
		return false;
	}
	newpage->index = page->index;
	newpage->mapping = page->mapping;
	atomic_fetch_or_explicit(&newpage->flags, atomic_load(&page->flags) & keep, memory_order_release);
	return true;
}

/*
 * The PTE slot for @addr in @vma, with missing tables allocated; NULL when
 * that fails or a huge leaf sits at the PMD.  Caller holds the mmap_lock.
 */
static hmmu_pte_t *hmmu_migrate_insert_slot(struct hmmu_vma *vma, unsigned long addr, struct hmmu_pt **ptp)
{
	struct hmmu_pt *pmd_pt;
	hmmu_pte_t *pmdp = hmmu_pmd_lookup(vma->vm_mm, addr, true, &pmd_pt);
	hmmu_pte_t pmd;

	if (!pmdp || hmmu_pte_table_populate(vma->vm_mm, pmd_pt, pmdp))
		return NULL;
	pmd = __atomic_load_n(pmdp, __ATOMIC_ACQUIRE);
	if (!hmmu_pte_table(pmd))
		return NULL;
	*ptp = hmmu_pte_to_table(pmd);
	return &(*ptp)->e[hmmu_pt_index(addr, 0)];
}

/* The entry mapping a page inserted into @vma: writable iff the VMA is (the dst WRITE flag is ignored). */
static hmmu_pte_t hmmu_migrate_insert_entry(const struct hmmu_vma *vma, const struct hmmu_page *page,
					    unsigned long pfn)
{
	bool write = vma->vm_flags & HMMU_VM_WRITE;

	if (hmmu_is_device_private_page(page))
		return hmmu_swp_entry_to_pte(hmmu_make_swp_entry(
			write ? HMMU_SWP_DEVICE_PRIVATE_WRITE : HMMU_SWP_DEVICE_PRIVATE_READ, pfn));
	return hmmu_pfn_pte(pfn, HMMU_PTE_YOUNG | (write ? HMMU_PTE_WRITE | HMMU_PTE_DIRTY : 0));
}

/*
 * Install @entry for @page at the empty slot @ptep, unless the mm is being
 * reaped or the slot was filled meanwhile (anything but none or the zero
 * page).  The zero page is cleared and the secondary TLBs told under the
 * ptl before the new entry goes in.  The new entry takes a reference and
 * the page's first anonymous mapping.
 */
static bool hmmu_migrate_insert_locked(struct hmmu_vma *vma, struct hmmu_pt *pt, hmmu_pte_t *ptep,
				       unsigned long addr, struct hmmu_page *page, hmmu_pte_t entry)
{
	struct hmmu_mm *mm = vma->vm_mm;
	hmmu_pte_t e;

	hmmu_pt_lock(pt);
	e = hmmu_pte_read(ptep);
	if (atomic_load(&mm->flags) & HMMU_MMF_UNSTABLE) {
		hmmu_pt_unlock(pt);
		return false;
	}
	if (!(hmmu_pte_none(e) || (hmmu_pte_present(e) && !hmmu_pte_special(e) && hmmu_is_zero_pfn(hmmu_pte_pfn(e))))) {
		hmmu_pt_unlock(pt);
		hmmu_count(HMMU_STAT_MIGRATE_HOLE_LOST);
		return false;
	}
	hmmu_page_add_new_anon_rmap(page, vma, addr, false);
	hmmu_get_page(page);	/* the entry's */
	if (!hmmu_pte_none(e)) {
		hmmu_pte_set(pt, ptep, 0);
		hmmu_notifier_invalidate_range(mm, addr, addr + HMMU_PAGE_SIZE);
	}
	hmmu_pte_set(pt, ptep, entry);	/* release: the contents before the entry */
	hmmu_pt_unlock(pt);
	return true;
}

/* Fill the empty slot at @addr with @page (frame @pfn); false to abort. */
static bool hmmu_migrate_insert_page(struct hmmu_vma *vma, unsigned long addr, struct hmmu_page *page,
				     unsigned long pfn)
{
	struct hmmu_pt *pt;
	hmmu_pte_t *ptep;

	if (!hmmu_vma_is_anonymous(vma) || page->mapping)
		return false;
	ptep = hmmu_migrate_insert_slot(vma, addr, &pt);
	if (!ptep || hmmu_anon_vma_prepare(vma))
		return false;
	hmmu_page_set_flag(page, HMMU_PG_uptodate);
	return hmmu_migrate_insert_locked(vma, pt, ptep, addr, page, hmmu_migrate_insert_entry(vma, page, pfn));
}

/* Commit entry @i (destination @newpage); opens *@range before the first insertion.  False: not committed. */
static bool hmmu_migrate_commit_one(struct hmmu_migrate_ctl *ctl, unsigned long i, struct hmmu_page *newpage,
				    struct hmmu_notifier_range *range, bool *notified)
{
	struct hmmu_page *page = hmmu_migrate_pfn_to_page(ctl->src[i]);
	unsigned long addr = ctl->start + (i << HMMU_PAGE_SHIFT);

	if (page)
		return hmmu_migrate_move_page(ctl, page, newpage);
	if (!ctl->vma)
		return false;		/* device eviction: no slots */
	if (!*notified) {
		hmmu_notifier_range_init_owner(range, HMMU_NOTIFY_MIGRATE, 0, ctl->vma->vm_mm, addr,
					       ctl->start + (ctl->npages << HMMU_PAGE_SHIFT), ctl->owner);
		hmmu_notifier_invalidate_range_start(range);
		*notified = true;
	}
	return hmmu_migrate_insert_page(ctl->vma, addr, newpage, hmmu_migrate_pfn_pfn(ctl->dst[i]));
}

/* Add the commit's outcome per direction (index 1: from a device page) to the counters. */
static void hmmu_migrate_commit_count(const unsigned long ok[2], const unsigned long failed[2])
{
	for (int dev = 0; dev < 2; dev++) {
		hmmu_count_add(hmmu_stat_migrate_id(HMMU_STAT_MIGRATE_TO_DEVICE_SUCCEEDED, dev), ok[dev]);
		hmmu_count_add(hmmu_stat_migrate_id(HMMU_STAT_MIGRATE_TO_DEVICE_FAILED, dev), failed[dev]);
	}
}

/* Context: see internal.h. */
unsigned long hmmu_migrate_commit(struct hmmu_migrate_ctl *ctl)
{
	unsigned long ok[2] = { 0, 0 }, failed[2] = { 0, 0 };
	struct hmmu_notifier_range range;
	bool notified = false;

	for (unsigned long i = 0; i < ctl->npages; i++) {
		struct hmmu_page *newpage = hmmu_migrate_pfn_to_page(ctl->dst[i]);
		struct hmmu_page *page = hmmu_migrate_pfn_to_page(ctl->src[i]);
		bool slot = !(ctl->src[i] & HMMU_MIGRATE_PFN_VALID), dev = page && hmmu_is_zone_device_page(page);

		if (!(ctl->src[i] & HMMU_MIGRATE_PFN_MIGRATE))
			continue;
		if (newpage && hmmu_migrate_commit_one(ctl, i, newpage, &range, &notified)) {
			ctl->src[i] = slot ? HMMU_MIGRATE_PFN_MIGRATE : ctl->src[i];
			ok[dev]++;
		} else {
			ctl->src[i] &= ~HMMU_MIGRATE_PFN_MIGRATE;
			failed[dev]++;
		}
	}
	if (notified)
		hmmu_notifier_invalidate_range_only_end(&range);
	hmmu_migrate_commit_count(ok, failed);
	return ok[0] + ok[1];
}

bool hmmu_migrate_ctl_of(struct hmmu_migrate_vma *m, struct hmmu_migrate_ctl *ctl)
{
	if (!m || !m->src || !m->dst || !m->vma)
		return false;
	*ctl = (struct hmmu_migrate_ctl){
		.src = m->src, .dst = m->dst, .npages = m->npages, .vma = m->vma, .start = m->start,
		.owner = m->pgmap_owner, .fault_page = m->fault_page,
	};
	hmmu_mmap_assert_locked(m->vma->vm_mm);
	return true;
}

/* Context: as setup (the mmap_lock still held).  Errors: -EINVAL. */
int hmmu_migrate_vma_pages(struct hmmu_migrate_vma *migrate)
{
	struct hmmu_migrate_ctl ctl;
	unsigned long end, done;

	if (!hmmu_migrate_ctl_of(migrate, &ctl))
		return -EINVAL;
	end = ctl.start + (ctl.npages << HMMU_PAGE_SHIFT);
	hmmu_trace(HMMU_TRACE_MIGRATE_PAGES, HMMU_TRACE_BEGIN, ctl.start, end, ctl.npages, 0);
	done = hmmu_migrate_commit(&ctl);
	hmmu_trace(HMMU_TRACE_MIGRATE_PAGES, HMMU_TRACE_END, ctl.start, end, done, 0);
	return 0;
}

/* Context: as setup (the mmap_lock still held).  Errors: -EINVAL. */
int hmmu_migrate_vma_finalize(struct hmmu_migrate_vma *migrate)
{
	struct hmmu_migrate_ctl ctl;
	unsigned long end;

	if (!hmmu_migrate_ctl_of(migrate, &ctl))
		return -EINVAL;
	end = ctl.start + (ctl.npages << HMMU_PAGE_SHIFT);
	hmmu_trace(HMMU_TRACE_MIGRATE_FINALIZE, HMMU_TRACE_BEGIN, ctl.start, end, ctl.npages, 0);
	hmmu_migrate_remove(&ctl, false);
	hmmu_trace(HMMU_TRACE_MIGRATE_FINALIZE, HMMU_TRACE_END, ctl.start, end, 0, 0);
	return 0;
}
