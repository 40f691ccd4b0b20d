// SPDX-License-Identifier: MIT
/*
 * Global event counters (include/hmmu/stat.h).
 *
 * Each counter is an atomic unsigned long alone in its cache line, bumped
 * with a relaxed fetch-add (hmmu_count() in internal.h): no lock, no
 * ordering with the event it counts, no false sharing between counters.
 * Readers load each counter relaxed, so a snapshot is exact per counter
 * when nothing is in flight and is not a consistent cut across counters.
 */
#include <string.h>

#include "internal.h"

struct hmmu_stat_counter hmmu_stat_counters[HMMU_STAT_NR];

_Static_assert(HMMU_STAT_INVALIDATE_EXCLUSIVE - HMMU_STAT_INVALIDATE_UNMAP == HMMU_NOTIFY_EXCLUSIVE,
	       "one invalidation counter per notifier event, in order");
_Static_assert(HMMU_STAT_MIGRATE_TO_SYSTEM_ATTEMPTED - HMMU_STAT_MIGRATE_TO_DEVICE_ATTEMPTED ==
		       HMMU_STAT_MIGRATE_TO_SYSTEM_FAILED - HMMU_STAT_MIGRATE_TO_DEVICE_FAILED,
	       "the to-system migration counters follow the to-device ones");

static const char *const hmmu_stat_names[HMMU_STAT_NR] = {
	[HMMU_STAT_FAULT] = "fault",
	[HMMU_STAT_FAULT_ANON] = "fault_anon",
	[HMMU_STAT_FAULT_ZERO_PAGE] = "fault_zero_page",
	[HMMU_STAT_FAULT_COW] = "fault_cow",
	[HMMU_STAT_FAULT_DEVICE_PRIVATE] = "fault_device_private",
	[HMMU_STAT_FAULT_MIGRATION_WAIT] = "fault_migration_wait",
	[HMMU_STAT_MIGRATE_TO_DEVICE_ATTEMPTED] = "migrate_to_device_attempted",
	[HMMU_STAT_MIGRATE_TO_DEVICE_SUCCEEDED] = "migrate_to_device_succeeded",
	[HMMU_STAT_MIGRATE_TO_DEVICE_FAILED] = "migrate_to_device_failed",
	[HMMU_STAT_MIGRATE_TO_SYSTEM_ATTEMPTED] = "migrate_to_system_attempted",
	[HMMU_STAT_MIGRATE_TO_SYSTEM_SUCCEEDED] = "migrate_to_system_succeeded",
	[HMMU_STAT_MIGRATE_TO_SYSTEM_FAILED] = "migrate_to_system_failed",
	[HMMU_STAT_INVALIDATE_UNMAP] = "invalidate_unmap",
	[HMMU_STAT_INVALIDATE_CLEAR] = "invalidate_clear",
	[HMMU_STAT_INVALIDATE_PROTECTION_VMA] = "invalidate_protection_vma",
	[HMMU_STAT_INVALIDATE_PROTECTION_PAGE] = "invalidate_protection_page",
	[HMMU_STAT_INVALIDATE_SOFT_DIRTY] = "invalidate_soft_dirty",
	[HMMU_STAT_INVALIDATE_RELEASE] = "invalidate_release",
	[HMMU_STAT_INVALIDATE_MIGRATE] = "invalidate_migrate",
	[HMMU_STAT_INVALIDATE_EXCLUSIVE] = "invalidate_exclusive",
	[HMMU_STAT_RANGE_FAULT] = "range_fault",
	[HMMU_STAT_RANGE_FAULT_RETRY] = "range_fault_retry",
	[HMMU_STAT_RANGE_FAULT_RESTART] = "range_fault_restart",
	[HMMU_STAT_DEVICE_PAGE_ALLOC] = "device_page_alloc",
	[HMMU_STAT_DEVICE_PAGE_FREE] = "device_page_free",
	[HMMU_STAT_EVICT] = "evict",
	[HMMU_STAT_MIGRATE_HOLE_LOST] = "migrate_hole_lost",
	[HMMU_STAT_MIGRATE_PIN_CHECK_FAILED] = "migrate_pin_check_failed",
	[HMMU_STAT_HOST_FAULT] = "host_fault",
};

/* Any context, no lock: relaxed loads, one counter at a time. */
int hmmu_stat(struct hmmu_stat *out)
{
	if (!out)
		return -EINVAL;
	for (unsigned int i = 0; i < HMMU_STAT_NR; i++)
		out->v[i] = atomic_load_explicit(&hmmu_stat_counters[i].v, memory_order_relaxed);
	return 0;
}

const char *hmmu_stat_name(unsigned int id)
{
	return id < HMMU_STAT_NR ? hmmu_stat_names[id] : NULL;
}

/* Any context, no lock: each counter zeroed on its own. */
void hmmu_stat_reset(void)
{
	for (unsigned int i = 0; i < HMMU_STAT_NR; i++)
		atomic_store_explicit(&hmmu_stat_counters[i].v, 0, memory_order_relaxed);
}
