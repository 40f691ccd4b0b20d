// SPDX-License-Identifier: MIT
/*
 * dmirror's device-exclusive access (spec 4.6, 5.6): EXCLUSIVE asks the
 * core for exclusive entries over the range and maps the pages it gets
 * with tag ATOMIC while their locks still keep the CPU out; a later CPU
 * access restores the mapping inside an EXCLUSIVE invalidation whose
 * owner is NULL, which the mirror's callback handles like any other and
 * so drops the ATOMIC entries.  CHECK_EXCLUSIVE tells whether any remain.
 */
#include "dmirror_priv.h"

/*
 * Map each non-NULL page of @pages (locked and referenced by
 * make_device_exclusive_range, which makes the CPU wait for us) with tag
 * ATOMIC from @addr on.  Takes the mirror mutex.  Returns the pages mapped.
 */
static unsigned long dmirror_atomic_map(struct hmmu_dmirror *mirror, unsigned long addr, unsigned long n,
					struct hmmu_page **pages)
{
	unsigned long vpn = addr >> HMMU_PAGE_SHIFT, mapped = 0;

	pthread_mutex_lock(&mirror->mutex);
	for (unsigned long i = 0; i < n; i++) {
		if (!pages[i])
			continue;
		if (hmmu_dmirror_pt_store(&mirror->pt, vpn + i, dmirror_entry_make(pages[i], DMIRROR_TAG_ATOMIC)))
			break;
		mapped++;
	}
	pthread_mutex_unlock(&mirror->mutex);
	return mapped;
}

/*
 * One step of EXCLUSIVE over [addr, next): exclusive entries for every
 * page, mapped ATOMIC only if the core gave all of them.  Caller holds the
 * mmap_lock for read.  Returns 0 or -EBUSY (a page was not made exclusive,
 * or the call failed: the kernel driver reports both as -EBUSY).
 */
static int dmirror_exclusive_step(struct hmmu_dmirror *mirror, unsigned long addr, unsigned long next)
{
	struct hmmu_page *pages[DMIRROR_BATCH];
	unsigned long n = (next - addr) >> HMMU_PAGE_SHIFT, mapped = 0;
	long got = hmmu_make_device_exclusive_range(dmirror_mm(mirror), addr, next, pages, NULL);

	if (got == (long)n)
		mapped = dmirror_atomic_map(mirror, addr, n, pages);
	for (long i = 0; i < got; i++) {
		if (!pages[i])
			continue;
		hmmu_unlock_page(pages[i]);
		hmmu_put_page(pages[i]);
	}
	return mapped < n ? -EBUSY : 0;
}

/* EXCLUSIVE (5): then read back like MIGRATE_TO_DEV; -EINVAL if the mm is gone. */
int hmmu_dmirror_cmd_exclusive(struct hmmu_dmirror *mirror, struct hmmu_dmirror_cmd *cmd)
{
	unsigned long start = cmd->addr, end = cmd->addr + cmd->npages * DMIRROR_PAGE, next;
	struct hmmu_mm *mm = dmirror_mm(mirror);
	int ret = 0;

	if (!hmmu_mmget_not_zero(mm))
		return -EINVAL;
	hmmu_mmap_read_lock(mm);
	for (unsigned long addr = start; addr < end && !ret; addr = next) {
		next = end - addr > DMIRROR_BATCH * DMIRROR_PAGE ? addr + DMIRROR_BATCH * DMIRROR_PAGE : end;
		ret = dmirror_exclusive_step(mirror, addr, next);
	}
	hmmu_mmap_read_unlock(mm);
	hmmu_mmput(mm);
	return ret ? ret : hmmu_dmirror_read_back(mirror, cmd);
}

/* CHECK_EXCLUSIVE (6): -EPERM if an entry of the range is still ATOMIC. */
int hmmu_dmirror_cmd_check_exclusive(struct hmmu_dmirror *mirror, const struct hmmu_dmirror_cmd *cmd)
{
	unsigned long vpn = cmd->addr >> HMMU_PAGE_SHIFT, end = vpn + cmd->npages;
	int ret = 0;

	pthread_mutex_lock(&mirror->mutex);
	while (vpn < end && vpn <= DMIRROR_PT_MAX_VPN && !ret) {
		const uintptr_t *leaf = hmmu_dmirror_pt_leaf(&mirror->pt, vpn);
		unsigned long stop = (vpn | (DMIRROR_PT_SLOTS - 1)) + 1;

		for (; leaf && vpn < stop && vpn < end; vpn++)
			if (leaf[vpn % DMIRROR_PT_SLOTS] &&
			    dmirror_entry_tag(leaf[vpn % DMIRROR_PT_SLOTS]) == DMIRROR_TAG_ATOMIC)
				ret = -EPERM;
		vpn = stop;
	}
	pthread_mutex_unlock(&mirror->mutex);
	return ret;
}

