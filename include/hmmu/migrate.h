/* SPDX-License-Identifier: MIT */
/*
 * Migration between system and device memory (the kernel's migrate_vma_*
 * and migrate_device_*).  Three steps, with the driver's copy between the
 * second and third:
 *
 *   setup     collect and unmap the selected source pages of one VMA range:
 *             each becomes locked, referenced by the migration and mapped
 *             only by migration entries; empty slots are offered too
 *   (driver)  allocate destinations, copy or zero, fill dst[]
 *   pages     commit: move page state to the destinations, insert pages
 *             into empty slots; entries that cannot move lose MIGRATE
 *   (driver)  update its own page table for the committed entries
 *   finalize  point every migration entry at the destination (or back at
 *             the source), unlock and release
 *
 * See docs/device-memory.md and docs/driver-guide.md.
 */
#ifndef HMMU_MIGRATE_H
#define HMMU_MIGRATE_H

#include <hmmu/mm.h>
#include <hmmu/page.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * An entry of src[] / dst[]: a frame number shifted by
 * HMMU_MIGRATE_PFN_SHIFT, and flags.
 *   VALID    the entry holds a frame
 *   MIGRATE  (src) the entry is selected / still migrating; without VALID
 *            it is an empty slot (no page, or the zero page) that the
 *            driver may fill with a fresh page
 *   WRITE    (src) the source mapping was writable; (dst) informational
 *            only: writability of the new mapping comes from the
 *            migration entry and the VMA
 */
#define HMMU_MIGRATE_PFN_VALID (1UL << 0)
#define HMMU_MIGRATE_PFN_MIGRATE (1UL << 1)
#define HMMU_MIGRATE_PFN_WRITE (1UL << 3)
#define HMMU_MIGRATE_PFN_SHIFT 6

/** hmmu_migrate_pfn() - a dst[] / src[] entry for frame @pfn (VALID set). */
static inline unsigned long hmmu_migrate_pfn(unsigned long pfn)
{
	return (pfn << HMMU_MIGRATE_PFN_SHIFT) | HMMU_MIGRATE_PFN_VALID;
}

/** hmmu_migrate_pfn_to_page() - the frame of an entry, or NULL without VALID. */
static inline struct hmmu_page *hmmu_migrate_pfn_to_page(unsigned long mpfn)
{
	if (!(mpfn & HMMU_MIGRATE_PFN_VALID))
		return NULL;
	return hmmu_pfn_to_page(mpfn >> HMMU_MIGRATE_PFN_SHIFT);
}

/* Selection flags (struct hmmu_migrate_vma::flags). */
enum hmmu_migrate_vma_direction {
	HMMU_MIGRATE_VMA_SELECT_SYSTEM = 1 << 0,
	HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 1 << 1,
	HMMU_MIGRATE_VMA_SELECT_DEVICE_COHERENT = 1 << 2,
};

/*
 * One migration of a VMA range (the kernel's struct migrate_vma).
 * @vma:         the VMA containing [start, end)
 * @dst, @src:   npages entries each, caller-allocated; src is written by
 *               setup and read-only for the caller afterwards; dst is
 *               zeroed by setup and filled by the caller before pages
 * @cpages:      after setup: entries still selected (pages collected and
 *               unmapped, plus empty slots)
 * @npages:      entries written by setup
 * @start, @end: page-aligned range; end is rewritten to start + npages pages
 * @pgmap_owner: compared with device pages' pagemap owner for selection;
 *               also the owner of the MIGRATE invalidations the migration
 *               emits, so a driver can recognise its own
 * @flags:       HMMU_MIGRATE_VMA_SELECT_* mask
 * @fault_page:  the device-private page whose CPU fault called
 *               migrate_to_ram (it arrives locked, with the fault's extra
 *               reference), else NULL
 */
struct hmmu_migrate_vma {
	struct hmmu_vma *vma;
	unsigned long *dst;
	unsigned long *src;
	unsigned long cpages;
	unsigned long npages;
	unsigned long start;
	unsigned long end;
	void *pgmap_owner;
	unsigned long flags;
	struct hmmu_page *fault_page;
};

/**
 * hmmu_migrate_vma_setup() - collect and unmap the pages of
 * [args->start, args->end) that args->flags and args->pgmap_owner select.
 *
 * Present system pages (SELECT_SYSTEM), device-coherent pages and
 * device-private entries (SELECT_DEVICE_COHERENT / _PRIVATE, owner equal
 * to pgmap_owner) are try-locked, replaced by migration entries inside one
 * MIGRATE invalidation of the range, and reported as
 * pfn | VALID | MIGRATE (| WRITE).  Empty slots of anonymous VMAs are
 * reported as MIGRATE whatever the flags (Linux 6.1), the zero page as
 * MIGRATE with SELECT_SYSTEM; they keep their CPU mapping.  A page that
 * is busy (lock held, extra references, pinned exclusive anonymous page)
 * or cannot be unmapped everywhere is restored and reported 0.
 *
 * The caller holds args->vma->vm_mm's mmap_lock (read or write) from
 * setup until finalize.  Returns 0 (also when nothing was selected), or
 * -EINVAL: NULL args, vma, src or dst; hugetlb or special (IO, PFNMAP,
 * MIXEDMAP, DONTEXPAND) VMA; start or end outside the VMA or start >= end;
 * fault_page set but not a locked device-private page.
 */
HMMU_EXPORT int hmmu_migrate_vma_setup(struct hmmu_migrate_vma *args);

/**
 * hmmu_migrate_vma_pages() - commit the entries the caller gave a
 * destination (dst VALID).
 *
 * Moves page state from each selected source to its destination; an empty
 * slot gets the destination inserted if it is still empty (or the zero
 * page) under its page-table lock, inside one MIGRATE invalidation from
 * the first such slot to end.  Entries that cannot move (no destination,
 * file or swap-cache source going to device memory, unexpected references,
 * an empty slot filled meanwhile) lose MIGRATE.  Sources and destinations
 * stay locked.  Same locking as setup.  Returns 0 or -EINVAL (NULL
 * migrate, vma, src or dst; npages 0: not set up, or finalized already).
 */
HMMU_EXPORT int hmmu_migrate_vma_pages(struct hmmu_migrate_vma *migrate);

/**
 * hmmu_migrate_vma_finalize() - replace every migration entry by a mapping
 * of the destination (committed) or of the source (not), unlock both, drop
 * the migration's source reference and the caller's destination
 * allocation reference.  Emits no invalidation.  The fault page stays
 * locked (the fault path unlocks it).  A driver that gives up before
 * pages frees its destinations and clears dst[] first: a dst entry still
 * set for a selected source would be mapped without the source's page
 * state (as in Linux).  Same locking as setup.  Sets
 * migrate->npages to 0: the migration is over, and a second finalize (or
 * pages) returns -EINVAL without touching anything.  Returns 0 or -EINVAL
 * (NULL migrate, vma, src or dst; npages 0: not set up, or finalized
 * already).
 */
HMMU_EXPORT int hmmu_migrate_vma_finalize(struct hmmu_migrate_vma *migrate);

/**
 * hmmu_migrate_device_range() - collect @npages device frames from
 * @start_pfn for eviction, wherever they are mapped.
 *
 * Each frame in use is referenced, try-locked and unmapped through the
 * reverse map (every mapping becomes a migration entry, inside a CLEAR
 * invalidation per mapping); src[i] becomes pfn | VALID | MIGRATE, or 0
 * for a free, busy or pinned frame, or one mapped by an mm whose
 * mmap_lock is busy (retry later).  The caller holds no mmap_lock.  Then
 * copy each page into a locked destination, fill dst and call
 * hmmu_migrate_device_pages() and hmmu_migrate_device_finalize().
 * Returns 0, or -EINVAL (NULL src, a range not inside one device pagemap).
 */
HMMU_EXPORT int hmmu_migrate_device_range(unsigned long *src_pfns, unsigned long start_pfn,
					  unsigned long npages);
/** hmmu_migrate_device_pages() - hmmu_migrate_vma_pages() without a VMA. 0 or -EINVAL. */
HMMU_EXPORT int hmmu_migrate_device_pages(unsigned long *src_pfns, unsigned long *dst_pfns,
					  unsigned long npages);
/**
 * hmmu_migrate_device_finalize() - hmmu_migrate_vma_finalize() without a
 * VMA.  0 or -EINVAL (NULL array).  The arrays carry no state: finalize
 * each collected range exactly once (a second call would release the
 * pages again, as in Linux).
 */
HMMU_EXPORT int hmmu_migrate_device_finalize(unsigned long *src_pfns, unsigned long *dst_pfns,
					     unsigned long npages);

/**
 * hmmu_make_device_exclusive_range() - give a device exclusive access to
 * [start, end) of @mm (Linux 6.1's make_device_exclusive_range).
 *
 * Faults the pages in for write (copy-on-write broken, the zero page
 * replaced) and splits transparent huge PMDs mapping them, then for each
 * page try-locks it and, through the reverse map, replaces every mapping
 * of it by a device-exclusive entry, inside an EXCLUSIVE invalidation with
 * @owner per mapping (so a driver can skip its own).  The conversion counts
 * only if the mapping in @mm at that address was writable and no mapping
 * is left.  pages[i] is then a locked page holding a reference for the
 * caller, or NULL (lock busy, not anonymous, hugetlb, still mapped
 * elsewhere, a tail page of a huge page: 6.1 converts a huge page's PTEs
 * through its head page only).  The caller programs its atomic mapping
 * while holding the page lock, then unlocks and puts each page.  Until
 * then a CPU access sleeps on the page lock; afterwards it restores the
 * mapping inside an EXCLUSIVE invalidation with owner NULL, which the
 * driver must take as revoking its access.
 *
 * The caller holds @mm's mmap_lock for read and no page lock; @pages has
 * room for (end - start) / HMMU_PAGE_SIZE entries.  Returns the number of
 * entries of @pages filled (a page that could not be faulted in ends the
 * range early), or the first page's error: -EFAULT (no VMA, a VMA not
 * writable, IO/PFNMAP, a special entry), -ENOMEM; or -EINVAL (NULL mm or
 * pages, unaligned or empty range, end past HMMU_TASK_SIZE).
 */
HMMU_EXPORT long hmmu_make_device_exclusive_range(struct hmmu_mm *mm, unsigned long start, unsigned long end,
						  struct hmmu_page **pages, void *owner);

#ifdef __cplusplus
}
#endif
#endif /* HMMU_MIGRATE_H */
