/* SPDX-License-Identifier: MIT */
/*
 * Global event counters (in the spirit of the kernel's vmstat events).
 *
 * One set of counters for the whole library, separate from the per-mm
 * statistics of hmmu_mm_get_stats().  They start at zero, count from then
 * on (hmmu_init() and hmmu_exit() do not reset them) and wrap at
 * ULONG_MAX.
 *
 * Snapshot guarantee: hmmu_stat() reads each counter atomically, so a
 * counter is exact whenever no event of its kind is in flight.  Counters
 * are read one after the other: they are not a consistent cut across each
 * other (a migration may show as attempted and not yet succeeded or
 * failed).  hmmu_stat_reset() zeroes them the same way, one by one; events
 * racing with a reset may be kept or lost.
 */
#ifndef HMMU_STAT_H
#define HMMU_STAT_H

#include <hmmu/page.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Counter ids.  "Migration" counters count pages, per direction: "to
 * device" when the source is system memory or an empty (or zero-page)
 * slot, "to system" when the source is a device page (device-private or
 * coherent; migrate_vma with SELECT_DEVICE_*, eviction, a coherent page
 * moved before a long-term pin).  A page is attempted when setup (or
 * migrate_device_range, or the coherent-page move) selects it; it
 * succeeds when pages() commits it to its destination; it fails when it is
 * given up after selection: by the pin / lock check of the unmap step, or
 * in pages() (no destination page, a page-cache page, an extra reference,
 * a slot filled meanwhile).  A driver that calls pages() for every setup
 * keeps attempted == succeeded + failed.
 */
enum hmmu_stat_item {
	/* CPU faults handled by hmmu_handle_mm_fault() (hmmu_access, GUP,
	 * hmm_range_fault) that passed the VMA permission check. */
	HMMU_STAT_FAULT = 0,
	/* Faults on an empty entry of an anonymous VMA (PTE or huge). */
	HMMU_STAT_FAULT_ANON,
	/* Read faults that mapped the shared zero page. */
	HMMU_STAT_FAULT_ZERO_PAGE,
	/* Copy-on-write copies made by a write fault (anonymous, private
	 * file or hugetlb). */
	HMMU_STAT_FAULT_COW,
	/* Faults on a device-private entry (handed to migrate_to_ram). */
	HMMU_STAT_FAULT_DEVICE_PRIVATE,
	/* Sleeps on a migration entry (CPU faults and hmm_range_fault). */
	HMMU_STAT_FAULT_MIGRATION_WAIT,
	/* Pages migrated to device memory: attempted, succeeded, failed. */
	HMMU_STAT_MIGRATE_TO_DEVICE_ATTEMPTED,
	HMMU_STAT_MIGRATE_TO_DEVICE_SUCCEEDED,
	HMMU_STAT_MIGRATE_TO_DEVICE_FAILED,
	/* Pages migrated from device memory to system memory: the same. */
	HMMU_STAT_MIGRATE_TO_SYSTEM_ATTEMPTED,
	HMMU_STAT_MIGRATE_TO_SYSTEM_SUCCEEDED,
	HMMU_STAT_MIGRATE_TO_SYSTEM_FAILED,
	/* invalidate_range_start calls (blocking or not, with or without
	 * subscribers), one counter per enum hmmu_notifier_event, in its
	 * order. */
	HMMU_STAT_INVALIDATE_UNMAP,
	HMMU_STAT_INVALIDATE_CLEAR,
	HMMU_STAT_INVALIDATE_PROTECTION_VMA,
	HMMU_STAT_INVALIDATE_PROTECTION_PAGE,
	HMMU_STAT_INVALIDATE_SOFT_DIRTY,
	HMMU_STAT_INVALIDATE_RELEASE,
	HMMU_STAT_INVALIDATE_MIGRATE,
	HMMU_STAT_INVALIDATE_EXCLUSIVE,
	/* hmmu_range_fault() calls with valid arguments. */
	HMMU_STAT_RANGE_FAULT,
	/* hmmu_range_fault() calls that returned -EBUSY (the caller must
	 * read a new notifier sequence and retry). */
	HMMU_STAT_RANGE_FAULT_RETRY,
	/* Walks restarted inside hmmu_range_fault() after a fault or a
	 * migration wait (not seen by the caller). */
	HMMU_STAT_RANGE_FAULT_RESTART,
	/* Device pages handed out (hmmu_zone_device_page_init) and given
	 * back to their driver (page_free). */
	HMMU_STAT_DEVICE_PAGE_ALLOC,
	HMMU_STAT_DEVICE_PAGE_FREE,
	/* Device pages collected for eviction by hmmu_migrate_device_range()
	 * (in use, locked and unmapped: src has MIGRATE on return). */
	HMMU_STAT_EVICT,
	/* Empty (or zero-page) slots whose migration lost the race: pages()
	 * found the slot filled meanwhile (a CPU fault, GUP, another
	 * migration), so the destination was not inserted (also counted as
	 * failed). */
	HMMU_STAT_MIGRATE_HOLE_LOST,
	/* Pages given up by a migration's pin / reference check: an exclusive
	 * anonymous page that may be DMA-pinned (when setup finds it, it is
	 * not selected and so not counted as attempted; when the unmap step's
	 * reverse-map walk finds it, it is also counted as failed), or a page
	 * holding references beyond its mappings and the migration's (unmap
	 * step, or pages()' exact count: also counted as failed). */
	HMMU_STAT_MIGRATE_PIN_CHECK_FAILED,
	/* Faults of host mms resolved by hmmu: SIGBUS handler calls and
	 * hmmu_prefault() pages (docs/host.md). */
	HMMU_STAT_HOST_FAULT,
	HMMU_STAT_NR
};

/* A snapshot of every counter, indexed by enum hmmu_stat_item. */
struct hmmu_stat {
	unsigned long v[HMMU_STAT_NR];
};

/**
 * hmmu_stat() - copy the counters into *@out.  Returns 0, or -EINVAL for
 * a NULL @out.  Any context; takes no lock.
 */
HMMU_EXPORT int hmmu_stat(struct hmmu_stat *out);

/**
 * hmmu_stat_name() - the counter's name ("fault", "migrate_to_device_
 * attempted", ...: lower case, unique), or NULL for @id >= HMMU_STAT_NR.
 */
HMMU_EXPORT const char *hmmu_stat_name(unsigned int id);

/** hmmu_stat_reset() - zero every counter.  Any context; takes no lock. */
HMMU_EXPORT void hmmu_stat_reset(void);

#ifdef __cplusplus
}
#endif
#endif /* HMMU_STAT_H */
