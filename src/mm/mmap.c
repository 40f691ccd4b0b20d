// SPDX-License-Identifier: MIT
/*
 * mmap, munmap, mprotect and madvise: VMA-level changes of an address
 * space, with the entry-level work they imply.
 */
#include "internal.h"

#define HMMU_PROT_MASK (PROT_READ | PROT_WRITE | PROT_EXEC)
#define HMMU_MAP_KNOWN                                                                       \
	(MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE)

static unsigned long hmmu_prot_to_vm_flags(int prot)
{
	return (prot & PROT_READ ? HMMU_VM_READ : 0) | (prot & PROT_WRITE ? HMMU_VM_WRITE : 0) |
	       (prot & PROT_EXEC ? HMMU_VM_EXEC : 0);
}

/*
 * Check a [addr, addr + len) argument: @addr page-aligned, @len > 0, the
 * page-rounded end inside the address space.  Sets *@end.  0 or -EINVAL.
 */
static int hmmu_check_range(unsigned long addr, size_t len, unsigned long *end)
{
	if (addr & ~HMMU_PAGE_MASK || !len || len > HMMU_TASK_SIZE)
		return -EINVAL;
	len = HMMU_ALIGN_UP(len, HMMU_PAGE_SIZE);
	/* Compare before adding: addr + len may wrap. */
	if (addr > HMMU_TASK_SIZE - len)
		return -EINVAL;
	*end = addr + len;
	return 0;
}

/*
 * Unmap [start, end): split the VMAs straddling its ends, zap and free what
 * is inside.  Caller holds the mmap_lock for write.  0 or -ENOMEM (a split
 * failed; nothing was unmapped).
 */
static int hmmu_do_munmap(struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	struct hmmu_vma *vma = hmmu_find_vma(mm, start), *next;
	struct hmmu_notifier_range range;
	struct hmmu_vma *last;

	if (!vma || vma->vm_start >= end)
		return 0;
	if (vma->vm_start < start && hmmu_vma_split(mm, vma, start))
		return -ENOMEM;
	last = hmmu_find_vma(mm, end - 1);
	if (last && last->vm_start < end && last->vm_end > end && hmmu_vma_split(mm, last, end))
		return -ENOMEM;
	vma = hmmu_find_vma(mm, start);
	hmmu_notify_start(&range, HMMU_NOTIFY_UNMAP, mm, start, end);
	for (next = vma; next && next->vm_start < end; next = hmmu_vma_next(next))
		hmmu_zap_page_range(next, next->vm_start, next->vm_end);
	hmmu_notifier_invalidate_range_end(&range);
	hmmu_free_pgtables(mm, start, end);
	while (vma && vma->vm_start < end) {
		next = hmmu_vma_next(vma);
		hmmu_vma_unlink(mm, vma);
		hmmu_vma_free(vma);
		vma = next;
	}
	return 0;
}

/* Check mmap's arguments; 0 or the errno hmmu_mmap() documents. */
static int hmmu_mmap_check(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot, int flags, int fd)
{
	if (!mm || !len || len > HMMU_TASK_SIZE || prot & ~HMMU_PROT_MASK || flags & ~HMMU_MAP_KNOWN)
		return -EINVAL;
	if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && addr & ~HMMU_PAGE_MASK)
		return -EINVAL;
	if (flags & MAP_SHARED || !(flags & MAP_ANONYMOUS) || fd != -1)
		return -EOPNOTSUPP;
	if (!(flags & MAP_PRIVATE))
		return -EINVAL;
	return 0;
}

/* Choose the range for a new mapping (mmap_lock held for write). */
static long hmmu_mmap_place(struct hmmu_mm *mm, unsigned long addr, unsigned long len, int flags)
{
	struct hmmu_vma *vma;
	int err;

	if (!(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)))
		return hmmu_get_unmapped_area(mm, addr, len);
	if (addr > HMMU_TASK_SIZE - len)
		return -ENOMEM;
	if (flags & MAP_FIXED_NOREPLACE) {
		vma = hmmu_find_vma(mm, addr);
		return vma && vma->vm_start < addr + len ? -EEXIST : (long)addr;
	}
	err = hmmu_do_munmap(mm, addr, addr + len);
	return err ? err : (long)addr;
}

long hmmu_mmap(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot, int flags, int fd, off_t offset)
{
	struct hmmu_vma *vma;
	long start;
	int err = hmmu_mmap_check(mm, addr, len, prot, flags, fd);

	if (err)
		return err;
	len = HMMU_ALIGN_UP(len, HMMU_PAGE_SIZE);
	vma = hmmu_vma_alloc(mm);
	if (!vma)
		return -ENOMEM;
	hmmu_mmap_write_lock(mm);
	start = hmmu_mmap_place(mm, addr, len, flags);
	if (start < 0) {
		hmmu_mmap_write_unlock(mm);
		hmmu_vma_free(vma);
		return start;
	}
	vma->vm_start = (unsigned long)start;
	vma->vm_end = (unsigned long)start + len;
	vma->vm_pgoff = (unsigned long)start >> HMMU_PAGE_SHIFT;
	vma->vm_flags = hmmu_prot_to_vm_flags(prot) | HMMU_VM_MAYREAD | HMMU_VM_MAYWRITE | HMMU_VM_MAYEXEC;
	hmmu_vma_link(mm, vma);
	hmmu_vma_merge(mm, vma);
	hmmu_mmap_write_unlock(mm);
	return start;
}

int hmmu_munmap(struct hmmu_mm *mm, unsigned long addr, size_t len)
{
	unsigned long end;
	int err;

	if (!mm)
		return -EINVAL;
	err = hmmu_check_range(addr, len, &end);
	if (err)
		return err;
	hmmu_mmap_write_lock(mm);
	err = hmmu_do_munmap(mm, addr, end);
	hmmu_mmap_write_unlock(mm);
	return err;
}

/*
 * A flags change over a range: `compute` gives a VMA's new flags (or an
 * error such as -EACCES); `apply`, if set, updates the entries of exactly
 * the VMA's part of the range before the new flags are stored.
 */
struct hmmu_flags_change {
	int (*compute)(const struct hmmu_vma *vma, unsigned long *flags, const void *arg);
	void (*apply)(struct hmmu_vma *vma, unsigned long newflags);
	const void *arg;
	bool skip_holes;	/* madvise: go on past holes, then return -ENOMEM */
};

/* Give one VMA (already split to the range) its new flags, then merge. */
static struct hmmu_vma *hmmu_vma_set_flags(struct hmmu_mm *mm, struct hmmu_vma *vma, unsigned long flags,
					   const struct hmmu_flags_change *c)
{
	/* Flags first: invalidation callbacks see the new protection. */
	vma->vm_flags = flags;
	if (c->apply)
		c->apply(vma, flags);
	return hmmu_vma_merge(mm, vma);
}

/*
 * Apply @c to every VMA in [start, end), splitting at the ends and merging
 * afterwards, like Linux.  Caller holds the mmap_lock for write.  Returns 0,
 * compute's error, or -ENOMEM for a hole in the range or a failed split;
 * VMAs before the failure keep their change.  With c->skip_holes (madvise)
 * a hole does not stop the walk: every mapped part is changed and -ENOMEM
 * is returned at the end.
 */
static int hmmu_vma_range_change(struct hmmu_mm *mm, unsigned long start, unsigned long end,
				 const struct hmmu_flags_change *c)
{
	struct hmmu_vma *vma = hmmu_find_vma(mm, start);
	unsigned long flags, pos = start;
	bool hole = false;
	int err;

	while (pos < end) {
		if (!vma || vma->vm_start > pos) {
			/* madvise(2) goes on past a hole; mprotect(2) stops. */
			if (!c->skip_holes || !vma || vma->vm_start >= end)
				return -ENOMEM;
			hole = true;
			pos = vma->vm_start;
		}
		flags = vma->vm_flags;
		err = c->compute(vma, &flags, c->arg);
		if (err)
			return err;
		if (flags != vma->vm_flags) {
			if (vma->vm_start < pos) {
				if (hmmu_vma_split(mm, vma, pos))
					return -ENOMEM;
				vma = hmmu_vma_next(vma);
			}
			if (vma->vm_end > end && hmmu_vma_split(mm, vma, end))
				return -ENOMEM;
			vma = hmmu_vma_set_flags(mm, vma, flags, c);
		}
		pos = HMMU_MIN(vma->vm_end, end);
		vma = hmmu_vma_next(vma);
	}
	return hole ? -ENOMEM : 0;
}

static int hmmu_mprotect_compute(const struct hmmu_vma *vma, unsigned long *flags, const void *arg)
{
	unsigned long want = *(const unsigned long *)arg;

	if (want & HMMU_VM_WRITE && !(vma->vm_flags & HMMU_VM_MAYWRITE))
		return -EACCES;
	*flags = (vma->vm_flags & ~(HMMU_VM_READ | HMMU_VM_WRITE | HMMU_VM_EXEC)) | want;
	return 0;
}

static void hmmu_mprotect_apply(struct hmmu_vma *vma, unsigned long newflags)
{
	hmmu_change_protection(vma, vma->vm_start, vma->vm_end, newflags);
}

/* Check the range (len 0 is a no-op), then apply @c under the mmap_lock for write. */
static int hmmu_vma_range_change_checked(struct hmmu_mm *mm, unsigned long addr, size_t len,
					 const struct hmmu_flags_change *c)
{
	unsigned long end;
	int err;

	if (!len)
		return 0;
	err = hmmu_check_range(addr, len, &end);
	if (err)
		return err;
	hmmu_mmap_write_lock(mm);
	err = hmmu_vma_range_change(mm, addr, end, c);
	hmmu_mmap_write_unlock(mm);
	return err;
}

int hmmu_mprotect(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot)
{
	unsigned long want = hmmu_prot_to_vm_flags(prot);
	struct hmmu_flags_change c = {
		.compute = hmmu_mprotect_compute, .apply = hmmu_mprotect_apply, .arg = &want,
	};

	if (!mm || prot & ~HMMU_PROT_MASK || addr & ~HMMU_PAGE_MASK)
		return -EINVAL;
	return hmmu_vma_range_change_checked(mm, addr, len, &c);
}

static int hmmu_madvise_huge_compute(const struct hmmu_vma *vma, unsigned long *flags, const void *arg)
{
	int advice = *(const int *)arg;

	if (advice == MADV_HUGEPAGE)
		*flags = (*flags & ~HMMU_VM_NOHUGEPAGE) | HMMU_VM_HUGEPAGE;
	else
		*flags = (*flags & ~HMMU_VM_HUGEPAGE) | HMMU_VM_NOHUGEPAGE;
	return 0;
}

/* MADV_DONTNEED: zap every mapped part of [start, end) under the read lock. */
static int hmmu_madvise_dontneed(struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	struct hmmu_vma *vma;
	unsigned long pos = start;
	int err = 0;

	hmmu_mmap_read_lock(mm);
	for (vma = hmmu_find_vma(mm, start); vma && vma->vm_start < end; vma = hmmu_vma_next(vma)) {
		if (vma->vm_flags & (HMMU_VM_PFNMAP | HMMU_VM_IO)) {
			err = -EINVAL;
			break;
		}
		if (vma->vm_start > pos)
			err = -ENOMEM;
		hmmu_zap_range_notify(vma, HMMU_MAX(start, vma->vm_start), HMMU_MIN(end, vma->vm_end),
				      HMMU_NOTIFY_CLEAR);
		pos = vma->vm_end;
	}
	hmmu_mmap_read_unlock(mm);
	return err ? err : (pos < end ? -ENOMEM : 0);
}

int hmmu_madvise(struct hmmu_mm *mm, unsigned long addr, size_t len, int advice)
{
	struct hmmu_flags_change c = {
		.compute = hmmu_madvise_huge_compute, .arg = &advice, .skip_holes = true,
	};
	unsigned long end;
	int err;

	/* The advice is an argument too: checked before the len-0 shortcut. */
	if (!mm || addr & ~HMMU_PAGE_MASK ||
	    (advice != MADV_DONTNEED && advice != MADV_HUGEPAGE && advice != MADV_NOHUGEPAGE))
		return -EINVAL;
	if (advice != MADV_DONTNEED)
		return hmmu_vma_range_change_checked(mm, addr, len, &c);
	if (!len)
		return 0;
	err = hmmu_check_range(addr, len, &end);
	return err ? err : hmmu_madvise_dontneed(mm, addr, end);
}
