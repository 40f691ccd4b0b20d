// SPDX-License-Identifier: MIT
/*
 * Special mappings: a driver maps its own memory into an address space,
 * from the mmap hook of hmmu_mmap_special() or from its vm_ops->fault.
 *
 * Two kinds of entry, both PTE level:
 *   - hmmu_vm_insert_page() maps a driver page like any page: the entry
 *     holds a reference and a mapcount, GUP and hmm_range_fault see the
 *     page, zap drops both.  The VMA becomes HMMU_VM_MIXEDMAP.
 *   - hmmu_vmf_insert_pfn(), hmmu_vmf_insert_mixed() and
 *     hmmu_remap_pfn_range() map raw frames with HMMU_PTE_SPECIAL entries:
 *     no reference, no mapcount, invisible to GUP; the driver keeps its
 *     frames alive as long as they may be mapped.  CPU access
 *     (hmmu_access) still reads and writes them through the frame's
 *     address.
 * One helper, hmmu_pte_insert(), installs the entry for all four calls.
 *
 * Entries are writable only in a shared writable VMA.  In a private
 * writable VMA they are read-only and a write copies the frame into an
 * anonymous page through the ordinary copy-on-write fault.
 */
#include "internal.h"

/* A page-aligned address inside @vma, a VMA that may take driver entries (no page cache, not hugetlb). */
static bool hmmu_vma_special_ok(const struct hmmu_vma *vma, unsigned long addr)
{
	return vma && !vma->vm_file && !hmmu_vma_is_hugetlb(vma) && !(addr & ~HMMU_PAGE_MASK) &&
	       addr >= vma->vm_start && addr < vma->vm_end;
}

/* The entry mapping @pfn in @vma: writable iff the VMA is shared and writable. */
static hmmu_pte_t hmmu_special_pte_make(const struct hmmu_vma *vma, unsigned long pfn, hmmu_pte_t bits)
{
	bool write = (vma->vm_flags & (HMMU_VM_SHARED | HMMU_VM_WRITE)) == (HMMU_VM_SHARED | HMMU_VM_WRITE);

	return hmmu_pfn_pte(pfn, bits | (write ? HMMU_PTE_WRITE : 0));
}

/*
 * Install @val in the empty PTE for @addr of @vma, allocating the page
 * tables on the way.  With @page (the frame @val maps) the entry takes a
 * reference and a mapcount of its own; the caller keeps its reference.
 * Caller holds the mmap_lock (read or write) and has checked @addr.
 * Returns 0, -ENOMEM (a table could not be allocated) or -EBUSY (the entry
 * is not none: a racing fault or an earlier insert filled it).
 */
static int hmmu_pte_insert(struct hmmu_vma *vma, unsigned long addr, hmmu_pte_t val, struct hmmu_page *page)
{
	struct hmmu_mm *mm = vma->vm_mm;
	struct hmmu_pt *pmd_pt, *pt;
	hmmu_pte_t *pmdp = hmmu_pmd_lookup(mm, addr, true, &pmd_pt), *ptep;
	hmmu_pte_t pmd;

	if (!pmdp || hmmu_pte_table_populate(mm, pmd_pt, pmdp))
		return -ENOMEM;
	pmd = __atomic_load_n(pmdp, __ATOMIC_ACQUIRE);
	if (!hmmu_pte_table(pmd))
		return -EBUSY;	/* a PMD-level entry covers it (none of ours makes one) */
	pt = hmmu_pte_to_table(pmd);
	ptep = &pt->e[hmmu_pt_index(addr, 0)];
	hmmu_pt_lock(pt);
	if (!hmmu_pte_none(hmmu_pte_read(ptep))) {
		hmmu_pt_unlock(pt);
		return -EBUSY;
	}
	if (page) {
		hmmu_get_page(page);
		hmmu_page_add_file_rmap(page);
	}
	hmmu_pte_set(pt, ptep, val);
	hmmu_pt_unlock(pt);
	return 0;
}

/*
 * A page a driver may insert: referenced, CPU-addressable, in no anon_vma
 * or page cache (no `mapping`), not the zero page (whose entries hold
 * nothing, so its reference would never come back).
 */
static bool hmmu_driver_page_ok(struct hmmu_page *page)
{
	return page && hmmu_page_ref_count(page) > 0 && !hmmu_compound_head(page)->mapping &&
	       hmmu_page_address(page) && !hmmu_is_zero_pfn(hmmu_page_to_pfn(page));
}

/*
 * Context: the mmap_lock held for write when the VMA is not MIXEDMAP yet
 * (an mmap hook: the flag is set here), else at least for read (a fault
 * hook of a VMA that its mmap hook already made MIXEDMAP).  The caller
 * keeps its own reference on @page.  Errors: -EINVAL (bad VMA, address or
 * page, PFNMAP VMA), -EBUSY, -ENOMEM.
 */
int hmmu_vm_insert_page(struct hmmu_vma *vma, unsigned long addr, struct hmmu_page *page)
{
	if (!hmmu_vma_special_ok(vma, addr) || vma->vm_flags & HMMU_VM_PFNMAP || !hmmu_driver_page_ok(page))
		return -EINVAL;
	hmmu_mmap_assert_locked(vma->vm_mm);
	if (!(vma->vm_flags & HMMU_VM_MIXEDMAP)) {
		/* vm_flags may change only under the write lock. */
		hmmu_mmap_assert_write_locked(vma->vm_mm);
		vma->vm_flags |= HMMU_VM_MIXEDMAP;
	}
	return hmmu_pte_insert(vma, addr, hmmu_special_pte_make(vma, hmmu_page_to_pfn(page), 0), page);
}

/*
 * A special entry for @pfn at @addr from a fault hook (mmap_lock held for
 * read or write).  @pfn must be a frame some node covers.  An entry
 * already there (a racing fault) is success.
 */
static hmmu_vm_fault_t hmmu_vmf_insert_special(struct hmmu_vma *vma, unsigned long addr, unsigned long pfn)
{
	int err;

	if (!hmmu_vma_special_ok(vma, addr) || !hmmu_pfn_to_page(pfn))
		return HMMU_VM_FAULT_SIGBUS;
	hmmu_mmap_assert_locked(vma->vm_mm);
	err = hmmu_pte_insert(vma, addr, hmmu_special_pte_make(vma, pfn, HMMU_PTE_SPECIAL), NULL);
	return err == -ENOMEM ? HMMU_VM_FAULT_OOM : HMMU_VM_FAULT_NOPAGE;
}

/* Only in a PFNMAP VMA (a MIXEDMAP one takes frames through insert_mixed). */
hmmu_vm_fault_t hmmu_vmf_insert_pfn(struct hmmu_vma *vma, unsigned long addr, unsigned long pfn)
{
	if (!vma || (vma->vm_flags & (HMMU_VM_PFNMAP | HMMU_VM_MIXEDMAP)) != HMMU_VM_PFNMAP)
		return HMMU_VM_FAULT_SIGBUS;
	return hmmu_vmf_insert_special(vma, addr, pfn);
}

/* In a MIXEDMAP VMA, or a PFNMAP one (as Linux allows), not in both at once. */
hmmu_vm_fault_t hmmu_vmf_insert_mixed(struct hmmu_vma *vma, unsigned long addr, unsigned long pfn)
{
	unsigned long kind = vma ? vma->vm_flags & (HMMU_VM_PFNMAP | HMMU_VM_MIXEDMAP) : 0;

	if (kind != HMMU_VM_PFNMAP && kind != HMMU_VM_MIXEDMAP)
		return HMMU_VM_FAULT_SIGBUS;
	return hmmu_vmf_insert_special(vma, addr, pfn);
}

/*
 * Check remap_pfn_range's arguments: [addr, addr + size) inside @vma
 * (size rounded up to pages), every frame of [pfn, pfn + pages) covered
 * by a node, the VMA not MIXEDMAP.  0 or -EINVAL.
 */
static int hmmu_remap_check(const struct hmmu_vma *vma, unsigned long addr, unsigned long pfn,
			    unsigned long size)
{
	unsigned long nr;

	if (!hmmu_vma_special_ok(vma, addr) || !size || size > vma->vm_end - addr ||
	    vma->vm_flags & HMMU_VM_MIXEDMAP)
		return -EINVAL;
	nr = HMMU_ALIGN_UP(size, HMMU_PAGE_SIZE) >> HMMU_PAGE_SHIFT;
	if (pfn > ~0UL - nr)
		return -EINVAL;
	for (unsigned long i = 0; i < nr; i++)
		if (!hmmu_pfn_to_page(pfn + i))
			return -EINVAL;
	return 0;
}

/*
 * Context: the mmap_lock held for write (an mmap hook: the VMA's flags
 * change).  Nothing is inserted on -EINVAL; on -ENOMEM or -EBUSY the
 * entries inserted so far stay (a failing hook has its VMA zapped).
 */
int hmmu_remap_pfn_range(struct hmmu_vma *vma, unsigned long addr, unsigned long pfn, unsigned long size)
{
	unsigned long end;
	int err = hmmu_remap_check(vma, addr, pfn, size);

	if (err)
		return err;
	hmmu_mmap_assert_write_locked(vma->vm_mm);
	vma->vm_flags |= HMMU_VM_PFNMAP | HMMU_VM_IO | HMMU_VM_DONTEXPAND;
	end = addr + HMMU_ALIGN_UP(size, HMMU_PAGE_SIZE);
	for (; addr < end; addr += HMMU_PAGE_SIZE, pfn++) {
		err = hmmu_pte_insert(vma, addr, hmmu_special_pte_make(vma, pfn, HMMU_PTE_SPECIAL), NULL);
		if (err)
			return err;
	}
	return 0;
}
