// SPDX-License-Identifier: MIT
/*
 * The device's mapping (spec 5.9): mmap of the kernel driver's device file
 * gives a mixed map whose every page is a fresh zeroed system page
 * inserted with vm_insert_page.  The mapping owns those pages (each entry
 * holds a reference; munmap and teardown free them).  In a private
 * writable mapping the entries are read-only (a CPU write copies the page),
 * so a snapshot reports READ: the hmm-tests `mixedmap` case.
 */
#include "dmirror_priv.h"

/*
 * The mmap hook: fill every page of @vma.  Context: mmap_lock held for
 * write (hmmu_mmap_special).  Returns 0, -ENOMEM, or hmmu_vm_insert_page()'s
 * error (the core then removes the VMA and what was inserted).
 */
static int dmirror_mmap_fill(struct hmmu_vma *vma, void *arg)
{
	for (unsigned long addr = vma->vm_start; addr < vma->vm_end; addr += DMIRROR_PAGE) {
		struct hmmu_page *page = hmmu_alloc_page(HMMU_GFP_ZERO);
		int err;

		if (!page)
			return -ENOMEM;
		err = hmmu_vm_insert_page(vma, addr, page);
		hmmu_put_page(page);	/* the entry keeps its own reference */
		if (err)
			return err;
	}
	return 0;
}

/*
 * Map @len bytes of the device into the mirror's mm at @addr (a hint, or
 * exact with MAP_FIXED).  Context: no hmmu lock held (takes the mmap_lock
 * for write).  Returns the address, or -EINVAL (NULL mirror, the mm gone,
 * bad arguments), -ENOMEM, or hmmu_mmap_special()'s other errors.
 */
long hmmu_dmirror_mmap(struct hmmu_dmirror *mirror, unsigned long addr, size_t len, int prot, int flags)
{
	struct hmmu_mm *mm;
	long ret;

	if (!mirror)
		return -EINVAL;
	mm = dmirror_mm(mirror);
	if (!hmmu_mmget_not_zero(mm))
		return -EINVAL;
	ret = hmmu_mmap_special(mm, addr, len, prot, flags, 0, dmirror_mmap_fill, NULL);
	hmmu_mmput(mm);
	return ret;
}
