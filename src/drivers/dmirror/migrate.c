// SPDX-License-Identifier: MIT
/*
 * dmirror's migrations (spec 3.5-3.7, 3.12, 5.6, 5.8), each step of at
 * most `batch` pages inside one VMA, with the mmap_lock held for read:
 *
 *   to the device (MIGRATE_TO_DEV)   setup(SELECT_SYSTEM, owner = device);
 *       allocate a device page per selected entry, drop the device
 *       entries of those pages, copy the source into its backing page (or
 *       zero it for an empty slot), dst WRITE if the source was writable
 *       or the slot empty in a writable VMA; pages; map the committed
 *       entries in the mirror's table (the device page, LOCAL, WRITE if
 *       dst WRITE) under the mutex; finalize.
 *   to the system (MIGRATE_TO_SYS, migrate_to_ram)   setup(SELECT_DEVICE_*,
 *       owner = device); allocate a locked system page per selected device
 *       page (skip it on failure: it stays on the device, intact), drop
 *       the table entries, copy; pages; finalize.
 *
 * The core's MIGRATE invalidations carry our device as owner, so every
 * mirror of the device leaves its table alone (spec 5.4; only the sequence
 * advances): the migration drops the old entries itself, before the copy,
 * in every mirror of the device on that mm (the kernel driver only in the
 * mirror at hand, after the copy).
 */
#include <stdlib.h>
#include <string.h>

#include "dmirror_priv.h"

/*
 * A DMA failure of the copy into @dpage (fault injection's device_copy
 * site): @dpage, locked with the caller's reference, is unlocked and put
 * (page_free gives it back) and the entry's migration fails: its source
 * stays.  True when the copy must not happen.
 */
static bool dmirror_copy_failed(struct hmmu_page *dpage)
{
	if (!hmmu_fault_inject_should_fail(HMMU_FAULT_DEVICE_COPY))
		return false;
	hmmu_unlock_page(dpage);
	hmmu_put_page(dpage);
	return true;
}

/* ------------------------------------------------------------------ */
/* To the device                                                       */
/* ------------------------------------------------------------------ */

/*
 * Give every selected entry a destination (spec 3.5): a new device page,
 * WRITE if the source was writable or is an empty slot of a writable VMA.
 * Sources that are already device pages are skipped (SELECT_SYSTEM never
 * selects them).  An allocation failure leaves the entry without
 * destination: the page stays put.  With @budget, at most *@budget pages
 * are allocated, from the caller's reservation (*@budget counts down).
 * Context: mmap_lock held for read, no dmirror lock.
 */
static void dmirror_to_device_alloc(struct hmmu_dmirror *mirror, struct hmmu_migrate_vma *args,
				    unsigned long *budget)
{
	bool vma_write = args->vma->vm_flags & HMMU_VM_WRITE;

	for (unsigned long i = 0; i < args->npages && (!budget || *budget); i++) {
		struct hmmu_page *spage = hmmu_migrate_pfn_to_page(args->src[i]), *dpage;

		if (!(args->src[i] & HMMU_MIGRATE_PFN_MIGRATE) || (spage && hmmu_is_zone_device_page(spage)))
			continue;
		dpage = hmmu_dmirror_page_alloc(mirror->mdevice, budget != NULL);
		if (!dpage)
			continue;
		if (budget)
			(*budget)--;
		args->dst[i] = hmmu_migrate_pfn(hmmu_page_to_pfn(dpage));
		if ((args->src[i] & HMMU_MIGRATE_PFN_WRITE) || (!spage && vma_write))
			args->dst[i] |= HMMU_MIGRATE_PFN_WRITE;
	}
}

/*
 * Copy each source with a destination into the destination's backing
 * page, or zero it for an empty slot.  First every mirror of the device
 * on this mm drops its entries of those pages: a device store through an
 * entry of the source after the copy would be lost (our own MIGRATE
 * invalidations leave the tables alone).  Context: mmap_lock held for
 * read; takes mirrors_lock and the mirror mutexes.  A copy that fails
 * (fault injection's device_copy) frees its destination: the source stays.
 */
static void dmirror_to_device_copy(struct hmmu_dmirror *mirror, struct hmmu_migrate_vma *args)
{
	bool stream = args->npages >= DMIRROR_STREAM_STEP;

	hmmu_dmirror_mm_erase(mirror->mdevice, dmirror_mm(mirror), args, NULL);
	for (unsigned long i = 0; i < args->npages; i++) {
		struct hmmu_page *spage = hmmu_migrate_pfn_to_page(args->src[i]);
		struct hmmu_page *dpage = hmmu_migrate_pfn_to_page(args->dst[i]);
		void *to = dpage ? hmmu_page_address(dmirror_backing_page(dpage)) : NULL;

		if (dpage && dmirror_copy_failed(dpage)) {
			args->dst[i] = 0;	/* the source stays */
			continue;
		}
		if (to && spage)
			hmmu_dmirror_copy_page(to, hmmu_page_address(spage), stream);
		else if (to)
			memset(to, 0, DMIRROR_PAGE);
	}
	hmmu_dmirror_copy_fence();
}

/*
 * After pages: map every committed entry (src still MIGRATE, dst set) in
 * the mirror's table, as a LOCAL entry of the device page (the old entries
 * went before the copy).  Context: takes the mirror mutex.  Returns the
 * entries committed.
 */
static unsigned long dmirror_to_device_map(struct hmmu_dmirror *mirror, struct hmmu_migrate_vma *args)
{
	unsigned long vpn = args->start >> HMMU_PAGE_SHIFT, committed = 0;

	pthread_mutex_lock(&mirror->mutex);
	for (unsigned long i = 0; i < args->npages; i++) {
		struct hmmu_page *dpage = hmmu_migrate_pfn_to_page(args->dst[i]);
		unsigned long tag = args->dst[i] & HMMU_MIGRATE_PFN_WRITE ? DMIRROR_TAG_WRITE : DMIRROR_TAG_READ;

		if (!dpage || !(args->src[i] & HMMU_MIGRATE_PFN_MIGRATE))
			continue;
		committed++;
		/* On -ENOMEM the page is simply not mapped: the read-back says -ENOENT. */
		hmmu_dmirror_pt_store(&mirror->pt, vpn + i, dmirror_entry_make(dpage, tag | DMIRROR_ENTRY_LOCAL));
	}
	pthread_mutex_unlock(&mirror->mutex);
	return committed;
}

/*
 * One step to the device over [start, end) of @vma (src, dst: room for its
 * pages).  With @budget, allocate at most *@budget device pages from the
 * caller's reservation (see hmmu_dmirror_reserve); it counts down.
 * Context: mmap_lock held for read, no dmirror lock.  Returns the pages
 * committed or setup's error.
 */
long hmmu_dmirror_step_to_device(struct hmmu_dmirror *mirror, struct hmmu_vma *vma, unsigned long start,
				 unsigned long end, unsigned long *src, unsigned long *dst, unsigned long *budget)
{
	struct hmmu_migrate_vma args = {
		.vma = vma, .src = src, .dst = dst, .start = start, .end = end,
		.pgmap_owner = mirror->mdevice, .flags = HMMU_MIGRATE_VMA_SELECT_SYSTEM,
	};
	unsigned long committed;
	int ret = hmmu_migrate_vma_setup(&args);

	if (ret)
		return ret;
	dmirror_to_device_alloc(mirror, &args, budget);
	dmirror_to_device_copy(mirror, &args);
	hmmu_migrate_vma_pages(&args);
	committed = dmirror_to_device_map(mirror, &args);
	hmmu_migrate_vma_finalize(&args);
	return (long)committed;
}

/* ------------------------------------------------------------------ */
/* To the system                                                       */
/* ------------------------------------------------------------------ */

/*
 * The copy step back to system memory (the kernel driver's
 * fault_alloc_and_copy): a locked system page for each selected page of
 * ours (the knob or an empty allocator skips it: it stays on the device,
 * table entry included), then the device mappings of the pages that move
 * are dropped, then the data copied from the backing page.  Context:
 * mmap_lock held for read; takes mirrors_lock and mirror mutexes.
 */
static void dmirror_to_system_copy(struct hmmu_dmirror_device *mdevice, struct hmmu_migrate_vma *args)
{
	unsigned long addr = args->start;

	for (unsigned long i = 0; i < args->npages; i++, addr += DMIRROR_PAGE) {
		struct hmmu_page *spage = hmmu_migrate_pfn_to_page(args->src[i]), *dpage;

		if (!spage || !(args->src[i] & HMMU_MIGRATE_PFN_MIGRATE) || !spage->pgmap ||
		    spage->pgmap->owner != mdevice)
			continue;
		if (hmmu_dmirror_fail_system_alloc(mdevice) || !(dpage = hmmu_alloc_page_vma(args->vma, addr)))
			continue;
		hmmu_lock_page(dpage);
		args->dst[i] = hmmu_migrate_pfn(hmmu_page_to_pfn(dpage)) | (args->src[i] & HMMU_MIGRATE_PFN_WRITE);
	}
	hmmu_dmirror_mm_erase(mdevice, args->vma->vm_mm, args, NULL);
	for (unsigned long i = 0; i < args->npages; i++) {
		struct hmmu_page *spage = hmmu_migrate_pfn_to_page(args->src[i]);
		struct hmmu_page *dpage = hmmu_migrate_pfn_to_page(args->dst[i]);

		if (!dpage)
			continue;
		if (dmirror_copy_failed(dpage)) {
			args->dst[i] = 0;	/* stays on the device; its mirrors refault it */
			continue;
		}
		hmmu_dmirror_copy_page(hmmu_page_address(dpage), hmmu_page_address(dmirror_backing_page(spage)),
				       args->npages >= DMIRROR_STREAM_STEP);
	}
	hmmu_dmirror_copy_fence();
}

/* Entries that moved: source page and MIGRATE still set after pages. */
static unsigned long dmirror_count_moved(const struct hmmu_migrate_vma *args)
{
	unsigned long n = 0;
	unsigned long both = HMMU_MIGRATE_PFN_VALID | HMMU_MIGRATE_PFN_MIGRATE;

	for (unsigned long i = 0; i < args->npages; i++)
		n += (args->src[i] & both) == both;
	return n;
}

/* One step back to system memory over [start, end) of @vma.  Returns pages moved or setup's error. */
static long dmirror_step_to_system(struct hmmu_dmirror *mirror, struct hmmu_vma *vma, unsigned long start,
				   unsigned long end, unsigned long *src, unsigned long *dst)
{
	struct hmmu_dmirror_device *mdevice = mirror->mdevice;
	struct hmmu_migrate_vma args = {
		.vma = vma, .src = src, .dst = dst, .start = start, .end = end, .pgmap_owner = mdevice,
		.flags = dmirror_is_private(mdevice) ? HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE
						     : HMMU_MIGRATE_VMA_SELECT_DEVICE_COHERENT,
	};
	unsigned long moved;
	int ret = hmmu_migrate_vma_setup(&args);

	if (ret)
		return ret;
	dmirror_to_system_copy(mdevice, &args);
	hmmu_migrate_vma_pages(&args);
	moved = dmirror_count_moved(&args);
	hmmu_migrate_vma_finalize(&args);
	return (long)moved;
}

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

/*
 * The steps of hmmu_dmirror_migrate_range(): at most @batch pages each,
 * none crossing a VMA end; every VMA met must be readable.  Caller holds
 * the mmap_lock for read and a user reference.  Returns the pages
 * committed or moved, or -EINVAL (no VMA or an unreadable one; the steps
 * before it stay done) or setup's error.
 */
static long dmirror_migrate_steps(struct hmmu_dmirror *mirror, unsigned long start, unsigned long end,
				  unsigned long batch, bool to_device, unsigned long *src, unsigned long *dst)
{
	long ret = 0, total = 0;

	for (unsigned long addr = start, next; addr < end; addr = next) {
		struct hmmu_vma *vma = hmmu_vma_lookup(dmirror_mm(mirror), addr);

		if (!vma || !(vma->vm_flags & HMMU_VM_READ))
			return -EINVAL;
		next = end - addr > batch * DMIRROR_PAGE ? addr + batch * DMIRROR_PAGE : end;
		next = next > vma->vm_end ? vma->vm_end : next;
		ret = to_device ? hmmu_dmirror_step_to_device(mirror, vma, addr, next, src, dst, NULL)
				: dmirror_step_to_system(mirror, vma, addr, next, src, dst);
		if (ret < 0)
			return ret;
		total += ret;
	}
	return total;
}

/*
 * Migrate [start, end) to the device (@to_device) or back, @batch pages
 * at a time.  Context: no hmmu lock held (takes the mmap_lock for read).
 * Returns the pages committed to the device or moved back, or -EINVAL
 * (the mm is gone, a VMA missing or unreadable), -ENOMEM (arrays for a
 * large @batch), or hmmu_migrate_vma_setup()'s error.
 */
long hmmu_dmirror_migrate_range(struct hmmu_dmirror *mirror, unsigned long start, unsigned long end,
				unsigned long batch, bool to_device)
{
	struct hmmu_mm *mm = dmirror_mm(mirror);
	unsigned long stack[2 * DMIRROR_BATCH], *src = stack;
	long ret = -EINVAL;

	if (batch > DMIRROR_BATCH && !(src = malloc(2 * batch * sizeof(*src))))
		return -ENOMEM;
	if (hmmu_mmget_not_zero(mm)) {
		hmmu_mmap_read_lock(mm);
		ret = dmirror_migrate_steps(mirror, start, end, batch, to_device, src, src + batch);
		hmmu_mmap_read_unlock(mm);
		hmmu_mmput(mm);
	}
	if (src != stack)
		free(src);
	return ret;
}

/* ------------------------------------------------------------------ */
/* migrate_to_ram                                                      */
/* ------------------------------------------------------------------ */

/*
 * The CPU touched one of our private pages (spec 4.3, 5.8): bring back the
 * page at vmf->address, or the aligned window of fault_around pages
 * around it clamped to the VMA (only this device's pages are selected).
 * vmf->page arrives locked and referenced by the core, which unlocks it
 * afterwards; it is passed as fault_page.  The device comes from the
 * page's pagemap.  Context: mmap_lock held for read, no dmirror lock;
 * allocates nothing but system pages (arrays on the stack).  Returns 0
 * (also when the system page could not be allocated: the access is
 * retried) or HMMU_VM_FAULT_SIGBUS when setup fails.
 */
hmmu_vm_fault_t hmmu_dmirror_migrate_to_ram(struct hmmu_vm_fault *vmf)
{
	struct hmmu_dmirror_device *mdevice = dmirror_page_device(vmf->page);
	unsigned long src[DMIRROR_MAX_FAULT_AROUND], dst[DMIRROR_MAX_FAULT_AROUND];
	unsigned long len = mdevice->fault_around * DMIRROR_PAGE;
	struct hmmu_migrate_vma args = {
		.vma = vmf->vma, .src = src, .dst = dst, .pgmap_owner = mdevice,
		.flags = HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE, .fault_page = vmf->page,
	};

	args.start = vmf->address & ~(len - 1);
	args.end = args.start + len;
	args.start = args.start < vmf->vma->vm_start ? vmf->vma->vm_start : args.start;
	args.end = args.end > vmf->vma->vm_end ? vmf->vma->vm_end : args.end;
	if (hmmu_migrate_vma_setup(&args))
		return HMMU_VM_FAULT_SIGBUS;
	dmirror_to_system_copy(mdevice, &args);
	hmmu_migrate_vma_pages(&args);
	hmmu_migrate_vma_finalize(&args);
	dmirror_stat_add(mdevice, migrate_to_ram, 1);
	return 0;
}
