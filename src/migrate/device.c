// SPDX-License-Identifier: MIT
/*
 * Migration by device frame rather than by address (spec 3.11): evicting
 * device memory wherever it is mapped (migrate_device_range, _pages,
 * _finalize), and moving a device-coherent page to system memory before a
 * long-term pin (Linux's migrate_device_coherent_page).
 *
 * Without a VMA there is no range walk: each page in use is referenced and
 * try-locked, then unmap's reverse-map pass turns each of its mappings, in
 * any mm, into a migration entry inside a CLEAR invalidation of that
 * mapping (not MIGRATE: even the owning driver sees a plain invalidation).
 * The caller holds no mmap_lock (the reverse map needs none); a page that
 * is locked or pinned is given back (src 0) to be retried.
 */
#include <string.h>

#include "internal.h"

/* Is [start_pfn, start_pfn + npages) inside one device pagemap? */
static bool hmmu_migrate_device_range_ok(unsigned long start_pfn, unsigned long npages)
{
	struct hmmu_page *page = hmmu_pfn_to_page(start_pfn);
	const struct hmmu_dev_pagemap *pgmap;

	if (!npages)
		return true;
	if (!hmmu_is_zone_device_page(page) || start_pfn + npages < start_pfn)
		return false;
	pgmap = page->pgmap;
	return start_pfn + npages <= hmmu_pgmap_pfn_first(pgmap) + hmmu_pgmap_nr_pages(pgmap);
}

/*
 * Take device frame @pfn for eviction if it is in use: a reference (none
 * for a free frame), then the page lock (try).  Returns its src value.
 */
static unsigned long hmmu_migrate_device_take(unsigned long pfn)
{
	struct hmmu_page *page = hmmu_pfn_to_page(pfn);

	if (!hmmu_get_page_unless_zero(page))
		return 0;
	if (!hmmu_trylock_page(page)) {
		hmmu_put_page(page);
		return 0;
	}
	return hmmu_migrate_pfn(pfn) | HMMU_MIGRATE_PFN_MIGRATE;
}

/* Context: no hmmu lock held (no mmap_lock either).  Errors: -EINVAL. */
int hmmu_migrate_device_range(unsigned long *src_pfns, unsigned long start_pfn, unsigned long npages)
{
	struct hmmu_migrate_ctl ctl = { .src = src_pfns, .npages = npages };
	unsigned long collected;

	if (!src_pfns || !hmmu_migrate_device_range_ok(start_pfn, npages))
		return -EINVAL;
	hmmu_trace(HMMU_TRACE_MIGRATE_DEVICE_RANGE, HMMU_TRACE_BEGIN, start_pfn, start_pfn + npages, npages, 0);
	for (unsigned long i = 0; i < npages; i++)
		src_pfns[i] = hmmu_migrate_device_take(start_pfn + i);
	collected = hmmu_migrate_unmap(&ctl);
	hmmu_count_add(HMMU_STAT_EVICT, collected);
	hmmu_trace(HMMU_TRACE_MIGRATE_DEVICE_RANGE, HMMU_TRACE_END, start_pfn, start_pfn + npages, collected, 0);
	return 0;
}

/* Context: as hmmu_migrate_device_range().  Errors: -EINVAL. */
int hmmu_migrate_device_pages(unsigned long *src_pfns, unsigned long *dst_pfns, unsigned long npages)
{
	struct hmmu_migrate_ctl ctl = { .src = src_pfns, .dst = dst_pfns, .npages = npages };
	unsigned long done;

	if (!src_pfns || !dst_pfns)
		return -EINVAL;
	hmmu_trace(HMMU_TRACE_MIGRATE_DEVICE_PAGES, HMMU_TRACE_BEGIN, 0, 0, npages, 0);
	done = hmmu_migrate_commit(&ctl);
	hmmu_trace(HMMU_TRACE_MIGRATE_DEVICE_PAGES, HMMU_TRACE_END, 0, 0, done, 0);
	return 0;
}

/* Context: as hmmu_migrate_device_range().  Errors: -EINVAL. */
int hmmu_migrate_device_finalize(unsigned long *src_pfns, unsigned long *dst_pfns, unsigned long npages)
{
	struct hmmu_migrate_ctl ctl = { .src = src_pfns, .dst = dst_pfns, .npages = npages };

	if (!src_pfns || !dst_pfns)
		return -EINVAL;
	hmmu_trace(HMMU_TRACE_MIGRATE_DEVICE_FINALIZE, HMMU_TRACE_BEGIN, 0, 0, npages, 0);
	hmmu_migrate_remove(&ctl, false);
	hmmu_trace(HMMU_TRACE_MIGRATE_DEVICE_FINALIZE, HMMU_TRACE_END, 0, 0, 0, 0);
	return 0;
}

/*
 * Context: see internal.h.  The page lock is only try-locked: the caller
 * (GUP) holds an mmap_lock, and a busy page is reported -EBUSY rather
 * than waited for.
 */
int hmmu_migrate_device_coherent_page(struct hmmu_page *page)
{
	unsigned long src = hmmu_migrate_pfn(hmmu_page_to_pfn(page)) | HMMU_MIGRATE_PFN_MIGRATE, dst = 0;
	struct hmmu_migrate_ctl ctl = { .src = &src, .dst = &dst, .npages = 1 };
	struct hmmu_page *dpage;

	HMMU_BUG_ON(!hmmu_is_device_coherent_page(page));
	if (hmmu_compound_order(page) || !hmmu_trylock_page(page)) {
		hmmu_put_page(page);
		return -EBUSY;
	}
	hmmu_migrate_unmap(&ctl);
	if (!(src & HMMU_MIGRATE_PFN_MIGRATE))
		return -EBUSY;		/* restored: lock and reference given back */
	dpage = hmmu_alloc_page(HMMU_GFP_KERNEL);
	if (dpage) {
		hmmu_lock_page(dpage);
		dst = hmmu_migrate_pfn(hmmu_page_to_pfn(dpage));
	}
	hmmu_migrate_commit(&ctl);
	if (src & HMMU_MIGRATE_PFN_MIGRATE)
		memcpy(hmmu_page_address(dpage), hmmu_page_address(page), HMMU_PAGE_SIZE);
	hmmu_migrate_remove(&ctl, false);
	return src & HMMU_MIGRATE_PFN_MIGRATE ? 0 : -EBUSY;
}
