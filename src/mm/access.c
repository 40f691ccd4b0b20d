// SPDX-License-Identifier: MIT
/*
 * hmmu_access(): CPU loads and stores on an address space.
 *
 * Each page's bytes are copied while holding the lock of the entry that
 * maps it, so whatever changes that entry (migration, unmap, copy-on-write)
 * waits for the copy, and a write can never land in a page that is no
 * longer mapped.
 */
#include <string.h>

#include "internal.h"

/* Mark the entry accessed (and dirty for a store) under its lock. */
static void hmmu_access_mark(struct hmmu_pt *pt, hmmu_pte_t *ptep, bool write)
{
	hmmu_pte_t e = hmmu_pte_read(ptep);
	hmmu_pte_t n = e | HMMU_PTE_YOUNG | (write ? HMMU_PTE_DIRTY : 0);

	if (n != e)
		hmmu_pte_set(pt, ptep, n);
}

/* Copy @len bytes (within one page of @vma) at @addr; mmap_lock held for read. */
static int hmmu_access_page(struct hmmu_vma *vma, unsigned long addr, char *buf, size_t len, bool write)
{
	struct hmmu_mm *mm = vma->vm_mm;
	unsigned int fflags = HMMU_FAULT_FLAG_USER | (write ? HMMU_FAULT_FLAG_WRITE : 0);
	struct hmmu_page *page;
	struct hmmu_pt *pt;
	hmmu_pte_t *ptep;
	int err;

	if (!(vma->vm_flags & (write ? HMMU_VM_WRITE : HMMU_VM_READ)))
		return -EFAULT;
	for (;;) {
		page = hmmu_follow_page_lock(mm, addr, HMMU_FOLLOW_SPECIAL | (write ? HMMU_FOLL_WRITE : 0), &pt, &ptep);
		if (hmmu_is_err(page))
			return -EFAULT;		/* a frame the CPU cannot address */
		if (page) {
			char *p = (char *)hmmu_page_address(page) + (addr & ~HMMU_PAGE_MASK);

			if (write)
				memcpy(p, buf, len);
			else
				memcpy(buf, p, len);
			hmmu_access_mark(pt, ptep, write);
			hmmu_pt_unlock(pt);
			return 0;
		}
		err = hmmu_vm_fault_errno(hmmu_handle_mm_fault(vma, addr, fflags));
		if (err)
			return err;
	}
}

/* The copy loop of hmmu_access(), under the mmap_lock; @buf is not host memory. */
static int hmmu_access_locked(struct hmmu_mm *mm, unsigned long addr, void *buf, size_t len, unsigned int flags)
{
	struct hmmu_vma *vma = NULL;
	char *p = buf;
	int err = 0;

	hmmu_mmap_read_lock(mm);
	while (len && !err) {
		size_t n = HMMU_MIN(len, HMMU_PAGE_SIZE - (addr & ~HMMU_PAGE_MASK));

		/* VMAs cannot change under the read lock: look up once per VMA. */
		if (!vma || addr >= vma->vm_end)
			vma = hmmu_vma_lookup(mm, addr);
		if (!vma) {
			err = -EFAULT;
			break;
		}
		err = hmmu_access_page(vma, addr, p, n, flags & HMMU_ACCESS_WRITE);
		addr += n;
		p += n;
		len -= n;
	}
	hmmu_mmap_read_unlock(mm);
	return err;
}

/*
 * @buf lies (partly) in a host mm's arena, where touching it may fault
 * into hmmu: never with hmmu locks held.  Copy through a bounce buffer a
 * page at a time, touching @buf only between the locked copies.
 */
static int hmmu_access_bounced(struct hmmu_mm *mm, unsigned long addr, char *buf, size_t len, unsigned int flags)
{
	char bounce[HMMU_PAGE_SIZE];
	int err = 0;

	while (len && !err) {
		size_t n = HMMU_MIN(len, sizeof(bounce));

		if (flags & HMMU_ACCESS_WRITE)
			memcpy(bounce, buf, n);
		err = hmmu_access_locked(mm, addr, bounce, n, flags);
		if (!err && !(flags & HMMU_ACCESS_WRITE))
			memcpy(buf, bounce, n);
		addr += n;
		buf += n;
		len -= n;
	}
	return err;
}

int hmmu_access(struct hmmu_mm *mm, unsigned long addr, void *buf, size_t len, unsigned int flags)
{
	if (!mm || (!buf && len) || flags & ~HMMU_ACCESS_WRITE || len > HMMU_TASK_SIZE ||
	    addr > HMMU_TASK_SIZE - len)
		return -EINVAL;
	if (len && hmmu_host_overlaps((unsigned long)buf, len))
		return hmmu_access_bounced(mm, addr, buf, len, flags);
	return hmmu_access_locked(mm, addr, buf, len, flags);
}
