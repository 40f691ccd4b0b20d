// SPDX-License-Identifier: MIT
/*
 * The unmap step shared by migrate_vma_setup and migrate_device_range
 * (spec 3.4 "unmap", 3.11): every collected page must end up mapped by
 * nothing but migration entries and referenced by nobody but the
 * migration, or it is restored.
 *
 * A page still mapped after collect (shared with another mm after fork, or
 * any mapped device page being evicted) goes through the reverse map: each
 * of its other mappings becomes a migration entry inside a CLEAR
 * invalidation of that one page in that mm.  Only pages still mapped take
 * this path; the common case is one pass over src[] with no lock.  An mm
 * whose mmap_lock cannot be try-locked keeps its mapping, so the page is
 * restored (retry later).
 *
 * Pin check: the references a page may hold besides its mappings are the
 * migration's own (collect, or the eviction's), the fault's on the fault
 * page, and for a device page one more (Linux 6.1's count; migrate_vma_pages
 * checks the exact count again before it moves anything).  hmmu has no LRU,
 * so the collect reference stands for Linux's isolation reference.
 */
#include "internal.h"

/* The pin check of spec 3.4 (mapcount is 0 by now for a page that passes). */
static bool hmmu_migrate_check_page(struct hmmu_page *page, const struct hmmu_page *fault_page)
{
	int extra = 1 + (page == fault_page);

	if (hmmu_compound_order(page))
		return false;
	if (hmmu_is_zone_device_page(page))
		extra++;
	if (page->mapping && !hmmu_page_is_anon(page))
		extra++;		/* a page-cache page: the cache's reference */
	return hmmu_page_ref_count(page) - extra <= hmmu_page_mapcount(page);
}

/* Does @e map frame @pfn (a present entry, or a device-private entry)? */
static bool hmmu_unmap_entry_maps(hmmu_pte_t e, unsigned long pfn)
{
	struct hmmu_swp_entry se;

	if (hmmu_pte_present(e))
		return !hmmu_pte_special(e) && hmmu_pte_pfn(e) == pfn;
	if (hmmu_pte_none(e))
		return false;
	se = hmmu_pte_to_swp_entry(e);
	return hmmu_is_device_private_entry(se) && se.pfn == pfn;
}

/*
 * The PTE mapping frame @pfn at @addr of @mm, with its table's lock held
 * (*@ptp), or NULL (nothing locked).  Caller holds @mm's mmap_lock.
 */
static hmmu_pte_t *hmmu_unmap_lookup(struct hmmu_mm *mm, unsigned long addr, unsigned long pfn, struct hmmu_pt **ptp)
{
	bool huge = false;
	hmmu_pte_t *ptep = hmmu_leaf_lookup_lock(mm, addr, ptp, &huge);

	if (!ptep)
		return NULL;
	if (!huge && hmmu_unmap_entry_maps(hmmu_pte_read(ptep), pfn))
		return ptep;
	hmmu_pt_unlock(*ptp);
	return NULL;
}

bool hmmu_migrate_entry_install(struct hmmu_page *page, struct hmmu_pt *pt, hmmu_pte_t *ptep, hmmu_pte_t e,
				unsigned long pfn, bool write)
{
	bool exclusive = hmmu_page_is_anon(page) && hmmu_page_test_flag(page, HMMU_PG_anon_exclusive);

	if (exclusive && hmmu_page_maybe_dma_pinned(page)) {
		hmmu_count(HMMU_STAT_MIGRATE_PIN_CHECK_FAILED);
		return false;
	}
	if (exclusive)
		hmmu_page_clear_flag(page, HMMU_PG_anon_exclusive);
	if (hmmu_pte_present(e) && hmmu_pte_dirty(e))
		hmmu_page_set_flag(page, HMMU_PG_dirty);
	hmmu_pte_set(pt, ptep, hmmu_make_migration_pte(e, pfn, write, exclusive));
	hmmu_page_remove_rmap(page, false);
	return true;
}

/*
 * Replace the mapping of @page at @ptep by a migration entry (Linux's
 * try_to_migrate_one).  False, nothing changed, when the page cannot be
 * shared (hmmu_migrate_entry_install).  Context: ptl held; the migration
 * holds a reference, so the put is never the last.
 */
static bool hmmu_unmap_pte(struct hmmu_page *page, unsigned long pfn, struct hmmu_pt *pt, hmmu_pte_t *ptep)
{
	hmmu_pte_t e = hmmu_pte_read(ptep);
	bool write = hmmu_pte_present(e) ? hmmu_pte_write(e)
					 : hmmu_pte_to_swp_entry(e).type == HMMU_SWP_DEVICE_PRIVATE_WRITE;

	if (!hmmu_migrate_entry_install(page, pt, ptep, e, pfn, write))
		return false;
	hmmu_put_page(page);	/* the mapping's */
	return true;
}

struct hmmu_unmap_walk {
	unsigned long pfn;
	bool failed;		/* a pinned exclusive page: stop */
};

/*
 * rmap_one: one VMA that may map @page.  Only a VMA that does map it gets
 * the CLEAR invalidation (checked, then re-checked once the invalidation
 * has started, since starting it may sleep and no ptl may be held).
 * Context: @page locked; anon_vma lock held (hmmu_rmap_walk).
 */
static bool hmmu_unmap_one(struct hmmu_page *page, struct hmmu_vma *vma, unsigned long addr, void *arg)
{
	struct hmmu_unmap_walk *w = arg;
	struct hmmu_notifier_range range;
	struct hmmu_pt *pt;
	hmmu_pte_t *ptep = hmmu_unmap_lookup(vma->vm_mm, addr, w->pfn, &pt);

	if (!ptep)
		return true;
	hmmu_pt_unlock(pt);
	hmmu_notify_start(&range, HMMU_NOTIFY_CLEAR, vma->vm_mm, addr, addr + HMMU_PAGE_SIZE);
	ptep = hmmu_unmap_lookup(vma->vm_mm, addr, w->pfn, &pt);
	if (ptep) {
		w->failed = !hmmu_unmap_pte(page, w->pfn, pt, ptep);
		hmmu_pt_unlock(pt);
	}
	hmmu_notifier_invalidate_range_end(&range);
	return !w->failed;
}

static bool hmmu_unmap_done(struct hmmu_page *page)
{
	return hmmu_page_mapcount(page) == 0;
}

/* Replace every remaining mapping of @page by a migration entry (try_to_migrate). */
static void hmmu_migrate_try_to_migrate(struct hmmu_page *page, unsigned long pfn)
{
	struct hmmu_unmap_walk w = { .pfn = pfn };
	struct hmmu_rmap_walk_control rwc = {
		.arg = &w,
		.rmap_one = hmmu_unmap_one,
		.done = hmmu_unmap_done,
	};

	hmmu_rmap_walk(page, &rwc);
}

/*
 * Count the selected entries of ctl->src (attempted) and those unmap gave
 * up (failed), per direction: index 1 for a device source page.  Called
 * before the given-up entries are restored (and become 0).
 */
static void hmmu_migrate_unmap_count(const struct hmmu_migrate_ctl *ctl)
{
	unsigned long tried[2] = { 0, 0 }, failed[2] = { 0, 0 };

	for (unsigned long i = 0; i < ctl->npages; i++) {
		unsigned long s = ctl->src[i];
		struct hmmu_page *page = hmmu_migrate_pfn_to_page(s);
		bool dev = page && hmmu_is_zone_device_page(page);

		tried[dev] += page || (s & HMMU_MIGRATE_PFN_MIGRATE);
		failed[dev] += page && !(s & HMMU_MIGRATE_PFN_MIGRATE);
	}
	for (int dev = 0; dev < 2; dev++) {
		hmmu_count_add(hmmu_stat_migrate_id(HMMU_STAT_MIGRATE_TO_DEVICE_ATTEMPTED, dev), tried[dev]);
		hmmu_count_add(hmmu_stat_migrate_id(HMMU_STAT_MIGRATE_TO_DEVICE_FAILED, dev), failed[dev]);
	}
}

/*
 * Context: see internal.h.  Entries given up lose MIGRATE here, then are
 * restored (and become 0) by hmmu_migrate_remove().
 */
unsigned long hmmu_migrate_unmap(struct hmmu_migrate_ctl *ctl)
{
	unsigned long cpages = 0, restore = 0;

	for (unsigned long i = 0; i < ctl->npages; i++) {
		unsigned long s = ctl->src[i];
		struct hmmu_page *page = hmmu_migrate_pfn_to_page(s);

		if (!page) {
			cpages += !!(s & HMMU_MIGRATE_PFN_MIGRATE);
			continue;
		}
		if (hmmu_page_mapcount(page))
			hmmu_migrate_try_to_migrate(page, hmmu_migrate_pfn_pfn(s));
		if (hmmu_page_mapcount(page) || !hmmu_migrate_check_page(page, ctl->fault_page)) {
			if (!hmmu_page_mapcount(page))
				hmmu_count(HMMU_STAT_MIGRATE_PIN_CHECK_FAILED);
			ctl->src[i] &= ~HMMU_MIGRATE_PFN_MIGRATE;
			restore++;
			continue;
		}
		cpages++;
	}
	hmmu_migrate_unmap_count(ctl);
	if (restore)
		hmmu_migrate_remove(ctl, true);
	return cpages;
}
