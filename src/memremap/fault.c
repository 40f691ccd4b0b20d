// SPDX-License-Identifier: MIT
/*
 * A CPU access to a device-private entry: the owning driver's
 * migrate_to_ram brings the page back (spec 4.3), in the fault-page
 * locking model of later kernels (DESIGN.md, spec 7.3).
 *
 * The faulting thread try-locks the device page under the PTE lock and
 * holds the lock across migrate_to_ram, so exactly one thread at a time
 * migrates a given page, and the others add no reference that would make
 * that migration's pin check fail (the 6.1 live-lock).  A thread that
 * finds the lock busy sleeps until it is released, holding no page
 * reference, and then retries the access: by then the entry has usually
 * been replaced.
 *
 * Who unlocks: hmmu.  migrate_to_ram is called with vmf->page locked and
 * must return with it still locked (migration with fault_page set neither
 * locks nor unlocks that page); hmmu unlocks it after the call, then drops
 * its reference.
 */
#include "internal.h"

/*
 * The device page's lock is busy: sleep until it is released, then let the
 * caller retry.  Entered with pt->ptl held and the entry still the
 * device-private one that references @page; returns with it released.
 *
 * No page reference is held while sleeping (it would defeat the lock
 * holder's migration).  The page may therefore be freed, even reused,
 * meanwhile: harmless, the sleeper only waits for the lock bit and then
 * re-reads the entry.  What must not happen is the frame's memory going
 * away under the sleeper (hmmu_memunmap_pages() after every page was
 * freed), so the sleeper holds a pagemap reference instead, taken while the
 * entry guarantees the pagemap is live.
 */
static void hmmu_device_page_wait(struct hmmu_page *page, struct hmmu_pt *pt)
{
	struct hmmu_dev_pagemap *pgmap = page->pgmap;

	hmmu_pgmap_get(pgmap);
	hmmu_wait_on_page_locked_drop(page, &pt->ptl);	/* queues, then drops the ptl */
	hmmu_pgmap_put(pgmap);
}

/*
 * Called by the fault handler (hmmu_do_swap_entry) for the device-private
 * entry @orig found at @ptep of the PTE table @pt; @vmf describes the fault
 * (page not set yet).  Context: mmap_lock held for read, no other lock.
 * Returns 0 (the entry changed, the page was busy, or the driver handled
 * it: the caller retries the access) or the driver's HMMU_VM_FAULT_* bits.
 */
hmmu_vm_fault_t hmmu_device_private_fault(struct hmmu_vm_fault *vmf, struct hmmu_pt *pt, hmmu_pte_t *ptep,
					  hmmu_pte_t orig)
{
	struct hmmu_page *page = hmmu_pfn_to_page(hmmu_pte_to_swp_entry(orig).pfn);
	hmmu_vm_fault_t ret;

	HMMU_BUG_ON(!hmmu_is_device_private_page(page));
	hmmu_pt_lock(pt);
	if (hmmu_pte_read(ptep) != orig) {
		hmmu_pt_unlock(pt);
		return 0;
	}
	if (!hmmu_trylock_page(page)) {
		hmmu_device_page_wait(page, pt);
		return 0;
	}
	/* The entry holds a reference, so this one cannot race with the free. */
	hmmu_get_page(page);
	hmmu_pt_unlock(pt);
	vmf->page = page;
	ret = page->pgmap->ops->migrate_to_ram(vmf);
	/* The driver must leave the lock to us; an unlocked page is its bug. */
	HMMU_BUG_ON(!hmmu_page_locked(page));
	hmmu_unlock_page(page);
	hmmu_put_page(page);
	return ret;
}
