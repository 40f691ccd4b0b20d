// SPDX-License-Identifier: MIT
/*
 * The OOM-reaper analogue: free a dying address space's private memory
 * without blocking on anyone (spec 1.10).  Each VMA is unmapped inside a
 * non-blocking UNMAP invalidation; a VMA whose subscribers cannot proceed
 * now is skipped and the caller is told to try again.
 */
#include "internal.h"

/* Reapable: private anonymous memory (not hugetlb, not special). */
static bool hmmu_vma_reapable(const struct hmmu_vma *vma)
{
	return hmmu_vma_is_anonymous(vma) && !(vma->vm_flags & HMMU_VM_HUGETLB);
}

/* Unmap one VMA; -EAGAIN when a subscriber refused (and must not get end). */
static int hmmu_reap_vma(struct hmmu_vma *vma)
{
	struct hmmu_notifier_range range;
	int err;

	hmmu_notifier_range_init(&range, HMMU_NOTIFY_UNMAP, 0, vma->vm_mm, vma->vm_start, vma->vm_end);
	err = hmmu_notifier_invalidate_range_start_nonblock(&range);
	if (err)
		return err;
	hmmu_zap_page_range(vma, vma->vm_start, vma->vm_end);
	hmmu_notifier_invalidate_range_end(&range);
	return 0;
}

int hmmu_mm_reap(struct hmmu_mm *mm)
{
	struct hmmu_vma *vma;
	int ret = 0;

	if (!mm)
		return -EINVAL;
	if (!hmmu_mmap_read_trylock(mm))
		return -EAGAIN;
	/* From now on a fault may not bring back what is reaped. */
	atomic_fetch_or(&mm->flags, HMMU_MMF_UNSTABLE);
	cds_list_for_each_entry(vma, &mm->vma_list, vm_list)
		if (hmmu_vma_reapable(vma) && hmmu_reap_vma(vma))
			ret = -EAGAIN;
	hmmu_mmap_read_unlock(mm);
	return ret;
}
