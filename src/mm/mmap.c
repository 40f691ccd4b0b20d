// SPDX-License-Identifier: MIT
/*
 * mmap, munmap, mprotect and madvise: VMA-level changes of an address
 * space, with the entry-level work they imply.
 */
#include "internal.h"

#include <fcntl.h>

#define HMMU_PROT_MASK (PROT_READ | PROT_WRITE | PROT_EXEC)
/* MAP_HUGETLB may carry log2 of the page size in bits 26..31: 0 or 21 here. */
#define HMMU_MAP_HUGE_SHIFT 26
#define HMMU_MAP_HUGE_MASK (0x3fU << HMMU_MAP_HUGE_SHIFT)
#define HMMU_MAP_KNOWN                                                                       \
	(MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE | \
	 MAP_HUGETLB | HMMU_MAP_HUGE_MASK)

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
int hmmu_do_munmap(struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	struct hmmu_vma *vma = hmmu_find_vma(mm, start), *next;
	struct hmmu_notifier_range range;
	struct hmmu_vma *last;
	int err;

	if (!vma || vma->vm_start >= end)
		return 0;
	if (vma->vm_start < start) {
		err = hmmu_vma_split(mm, vma, start);
		if (err)
			return err;
	}
	last = hmmu_find_vma(mm, end - 1);
	if (last && last->vm_start < end && last->vm_end > end) {
		err = hmmu_vma_split(mm, last, end);
		if (err)
			return err;
	}
	vma = hmmu_find_vma(mm, start);
	hmmu_notify_start(&range, HMMU_NOTIFY_UNMAP, mm, start, end);
	for (next = vma; next && next->vm_start < end; next = hmmu_vma_next(next))
		hmmu_zap_page_range(next, next->vm_start, next->vm_end);
	hmmu_notifier_invalidate_range_end(&range);
	hmmu_free_pgtables(mm, start, end);
	if (mm->host)
		hmmu_host_tables_refill(mm, start, end);
	while (vma && vma->vm_start < end) {
		next = hmmu_vma_next(vma);
		hmmu_vma_file_writeback(vma);
		hmmu_vma_unlink(mm, vma);
		hmmu_vma_free(vma);
		vma = next;
	}
	return 0;
}

/* Check mmap's arguments; 0 or the errno hmmu_mmap() documents. */
static int hmmu_mmap_check(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot, int flags,
			   off_t offset)
{
	unsigned int huge_bits = ((unsigned int)flags & HMMU_MAP_HUGE_MASK) >> HMMU_MAP_HUGE_SHIFT;

	if (!mm || !len || len > HMMU_TASK_SIZE || prot & ~HMMU_PROT_MASK || flags & ~HMMU_MAP_KNOWN)
		return -EINVAL;
	/* MAP_SHARED_VALIDATE (both bits) is MAP_SHARED: unknown flags fail anyway. */
	if (!(flags & (MAP_SHARED | MAP_PRIVATE)))
		return -EINVAL;
	if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && addr & ~HMMU_PAGE_MASK)
		return -EINVAL;
	if (offset < 0 || offset & ~HMMU_PAGE_MASK)
		return -EINVAL;
	if (huge_bits && (!(flags & MAP_HUGETLB) || huge_bits != HMMU_PMD_SHIFT))
		return -EINVAL;
	if (flags & MAP_HUGETLB) {
		if (flags & MAP_SHARED || !(flags & MAP_ANONYMOUS))
			return -EOPNOTSUPP;
		if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && addr & ~HMMU_PMD_MASK)
			return -EINVAL;
	}
	if ((unsigned long)offset > HMMU_TASK_SIZE || len > ~0UL - (unsigned long)offset)
		return -EOVERFLOW;
	return mm->host ? hmmu_host_mmap_check(mm->host, addr, len, flags) : 0;
}

/*
 * Choose the range for a new mapping (mmap_lock held for write): @len
 * bytes aligned to @align (a power of two, at least a page).
 */
static long hmmu_mmap_place(struct hmmu_mm *mm, unsigned long addr, unsigned long len, int flags,
			    unsigned long align)
{
	struct hmmu_vma *vma;
	long start;
	int err;

	if (!(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))) {
		start = hmmu_get_unmapped_area(mm, align > HMMU_PAGE_SIZE ? HMMU_ALIGN_UP(addr, align) : addr, len);
		if (start < 0 || !((unsigned long)start & (align - 1)))
			return start;
		/* The lowest gap with room for an aligned start. */
		start = hmmu_get_unmapped_area(mm, 0, len + align - HMMU_PAGE_SIZE);
		return start < 0 ? start : (long)HMMU_ALIGN_UP((unsigned long)start, align);
	}
	if (addr > HMMU_TASK_SIZE - len)
		return -ENOMEM;
	if (flags & MAP_FIXED_NOREPLACE) {
		vma = hmmu_find_vma(mm, addr);
		return vma && vma->vm_start < addr + len ? -EEXIST : (long)addr;
	}
	err = hmmu_do_munmap(mm, addr, addr + len);
	return err ? err : (long)addr;
}

/* What a new mapping is to be; filled by the mmap front ends. */
struct hmmu_mmap_req {
	unsigned long addr, len, align;
	int flags;			/* MAP_* (placement) */
	unsigned long vm_flags, pgoff;
	struct hmmu_file *file;		/* a reference handed to the VMA */
	hmmu_mmap_hook_t *hook;		/* special mappings */
	void *arg;
};

/* Remove the VMA of a failed mmap hook and whatever the hook mapped. */
static void hmmu_mmap_undo(struct hmmu_mm *mm, struct hmmu_vma *vma)
{
	unsigned long start = vma->vm_start, end = vma->vm_end;

	hmmu_zap_range_notify(vma, start, end, HMMU_NOTIFY_UNMAP);
	hmmu_free_pgtables(mm, start, end);
	hmmu_vma_unlink(mm, vma);
	vma->vm_ops = NULL;	/* no close for a mapping that never opened */
	hmmu_vma_free(vma);
}

/*
 * Create the VMA @req describes (mmap_lock taken for write here): place
 * it, link it, run the driver's hook, merge.  Consumes req->file's
 * reference.  Returns the start address or a negative errno.
 */
static long hmmu_mmap_region(struct hmmu_mm *mm, struct hmmu_mmap_req *req)
{
	struct hmmu_vma *vma = hmmu_vma_alloc(mm);
	long start;
	int err;

	if (!vma) {
		if (req->file)
			hmmu_file_put(req->file);
		return -ENOMEM;
	}
	vma->vm_file = req->file;
	hmmu_mmap_write_lock(mm);
	start = hmmu_mmap_place(mm, req->addr, req->len, req->flags, req->align);
	if (start < 0) {
		hmmu_mmap_write_unlock(mm);
		hmmu_vma_free(vma);
		return start;
	}
	vma->vm_start = (unsigned long)start;
	vma->vm_end = (unsigned long)start + req->len;
	vma->vm_pgoff = req->pgoff == ~0UL ? (unsigned long)start >> HMMU_PAGE_SHIFT : req->pgoff;
	vma->vm_flags = req->vm_flags;
	hmmu_vma_link(mm, vma);
	err = req->hook ? req->hook(vma, req->arg) : 0;
	if (!err && mm->host)
		err = hmmu_host_vma_prepare(vma);
	if (err)
		hmmu_mmap_undo(mm, vma);
	else
		hmmu_vma_merge(mm, vma);
	hmmu_mmap_write_unlock(mm);
	return err ? err : start;
}

/* The VMA flags of a new mapping; -EACCES if @fd's mode forbids it. */
static long hmmu_mmap_vm_flags(int prot, int flags, int fd)
{
	unsigned long vm_flags = hmmu_prot_to_vm_flags(prot) | HMMU_VM_MAYREAD | HMMU_VM_MAYWRITE | HMMU_VM_MAYEXEC;
	int mode = O_RDWR;

	if (!(flags & MAP_ANONYMOUS)) {
		mode = fcntl(fd, F_GETFL);
		if (mode < 0)
			return -EBADF;
		mode &= O_ACCMODE;
		if (mode == O_WRONLY)
			return -EACCES;
	}
	if (flags & MAP_SHARED) {
		vm_flags |= HMMU_VM_SHARED | HMMU_VM_MAYSHARE;
		if (mode != O_RDWR) {
			if (prot & PROT_WRITE)
				return -EACCES;
			vm_flags &= ~HMMU_VM_MAYWRITE;
		}
	}
	if (flags & MAP_HUGETLB)
		vm_flags |= HMMU_VM_HUGETLB;
	return (long)vm_flags;
}

long hmmu_mmap(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot, int flags, int fd, off_t offset)
{
	struct hmmu_mmap_req req = { .addr = addr, .flags = flags, .align = HMMU_PAGE_SIZE, .pgoff = ~0UL };
	long vm_flags;
	int err = hmmu_mmap_check(mm, addr, len, prot, flags, offset);

	if (err)
		return err;
	if (flags & MAP_SHARED)
		flags &= ~MAP_PRIVATE;	/* MAP_SHARED_VALIDATE */
	if (flags & MAP_HUGETLB)
		req.align = HMMU_PMD_SIZE;
	req.len = HMMU_ALIGN_UP(len, req.align);
	vm_flags = hmmu_mmap_vm_flags(prot, flags, fd);
	if (vm_flags < 0)
		return vm_flags;
	req.vm_flags = (unsigned long)vm_flags;
	if (!(flags & MAP_ANONYMOUS)) {
		err = hmmu_file_open_fd(fd, &req.file);
		req.pgoff = (unsigned long)offset >> HMMU_PAGE_SHIFT;
	} else if (flags & MAP_SHARED) {
		err = hmmu_shmem_file_create(req.len, &req.file);
		req.pgoff = 0;
	}
	return err ? err : hmmu_mmap_region(mm, &req);
}

long hmmu_mmap_special(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot, int flags,
		       unsigned long pgoff, hmmu_mmap_hook_t *mmap_hook, void *arg)
{
	struct hmmu_mmap_req req = {
		.addr = addr, .flags = flags, .align = HMMU_PAGE_SIZE, .pgoff = pgoff, .hook = mmap_hook, .arg = arg,
	};
	long vm_flags;
	int err;

	if (!mmap_hook || flags & (MAP_ANONYMOUS | MAP_HUGETLB))
		return -EINVAL;
	if (mm && mm->host)
		return -EOPNOTSUPP;
	err = hmmu_mmap_check(mm, addr, len, prot, flags, 0);
	if (err)
		return err;
	if (pgoff > HMMU_TASK_SIZE >> HMMU_PAGE_SHIFT)
		return -EOVERFLOW;
	/* As an anonymous mapping for the flags (no fd); the hook adds its own. */
	vm_flags = hmmu_mmap_vm_flags(prot, flags | MAP_ANONYMOUS, -1);
	if (vm_flags < 0)
		return vm_flags;
	req.vm_flags = (unsigned long)vm_flags;
	req.len = HMMU_ALIGN_UP(len, HMMU_PAGE_SIZE);
	return hmmu_mmap_region(mm, &req);
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
	/*
	 * Flags first: invalidation callbacks see the new protection.  Atomic:
	 * reverse-map walks (migration's remove step) read them under a PTE
	 * lock only; @apply takes that lock after this store, so a walker
	 * that gets it later sees the new flags.
	 */
	__atomic_store_n(&vma->vm_flags, flags, __ATOMIC_RELAXED);
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
				err = hmmu_vma_split(mm, vma, pos);
				if (err)
					return err;
				vma = hmmu_vma_next(vma);
			}
			if (vma->vm_end > end) {
				err = hmmu_vma_split(mm, vma, end);
				if (err)
					return err;
			}
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

/*
 * May MADV_DONTNEED zap [start, end), a part of @vma?  Not in a PFNMAP/IO
 * VMA, and in a hugetlb VMA only whole 2 MiB pages (they are never split).
 * 0 or -EINVAL.
 */
static int hmmu_madvise_dontneed_check(const struct hmmu_vma *vma, unsigned long start, unsigned long end)
{
	if (vma->vm_flags & (HMMU_VM_PFNMAP | HMMU_VM_IO))
		return -EINVAL;
	if (hmmu_vma_is_hugetlb(vma) && (start | end) & ~HMMU_PMD_MASK)
		return -EINVAL;
	return 0;
}

/*
 * MADV_DONTNEED: zap every mapped part of [start, end) under the read
 * lock, VMA by VMA.  A VMA that refuses stops the walk with -EINVAL (the
 * VMAs before it stay zapped, as in Linux); a hole gives -ENOMEM at the end.
 */
static int hmmu_madvise_dontneed(struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	struct hmmu_vma *vma;
	unsigned long pos = start;
	int err = 0, bad = 0;

	hmmu_mmap_read_lock(mm);
	for (vma = hmmu_find_vma(mm, start); vma && vma->vm_start < end; vma = hmmu_vma_next(vma)) {
		unsigned long s = HMMU_MAX(start, vma->vm_start), e = HMMU_MIN(end, vma->vm_end);

		bad = hmmu_madvise_dontneed_check(vma, s, e);
		if (bad)
			break;
		if (vma->vm_start > pos)
			err = -ENOMEM;
		hmmu_zap_range_notify(vma, s, e, HMMU_NOTIFY_CLEAR);
		pos = vma->vm_end;
	}
	hmmu_mmap_read_unlock(mm);
	return bad ? bad : err ? err : (pos < end ? -ENOMEM : 0);
}

/*
 * MADV_DONTFORK / MADV_DOFORK: set / clear HMMU_VM_DONTCOPY (fork skips the
 * VMA).  DOFORK on an IO VMA is refused (-EINVAL), as Linux does.
 */
static int hmmu_madvise_fork_compute(const struct hmmu_vma *vma, unsigned long *flags, const void *arg)
{
	int advice = *(const int *)arg;

	if (advice == MADV_DONTFORK) {
		*flags |= HMMU_VM_DONTCOPY;
		return 0;
	}
	if (vma->vm_flags & HMMU_VM_IO)
		return -EINVAL;
	*flags &= ~HMMU_VM_DONTCOPY;
	return 0;
}

int hmmu_madvise(struct hmmu_mm *mm, unsigned long addr, size_t len, int advice)
{
	bool fork_advice = advice == MADV_DONTFORK || advice == MADV_DOFORK;
	struct hmmu_flags_change c = {
		.compute = fork_advice ? hmmu_madvise_fork_compute : hmmu_madvise_huge_compute,
		.arg = &advice, .skip_holes = true,
	};
	unsigned long end;
	int err;

	/* The advice is an argument too: checked before the len-0 shortcut. */
	if (!mm || addr & ~HMMU_PAGE_MASK ||
	    (advice != MADV_DONTNEED && advice != MADV_HUGEPAGE && advice != MADV_NOHUGEPAGE && !fork_advice))
		return -EINVAL;
	if (advice != MADV_DONTNEED)
		return hmmu_vma_range_change_checked(mm, addr, len, &c);
	if (!len)
		return 0;
	err = hmmu_check_range(addr, len, &end);
	return err ? err : hmmu_madvise_dontneed(mm, addr, end);
}
