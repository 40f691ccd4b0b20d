/* SPDX-License-Identifier: MIT */
/*
 * Kernel spellings of hmmu's API, so that driver logic written against the
 * Linux interfaces compiles here unchanged.  Include it after hmmu.h in
 * driver code only: it defines short names (struct page, PAGE_SIZE, ...)
 * that may clash with other code.
 *
 * The table grows with each feature.  Where the kernel signature carries
 * arguments hmmu does not use (vmas arrays, `locked` pointers), the macro
 * takes and ignores them.
 */
#ifndef HMMU_KERNEL_COMPAT_H
#define HMMU_KERNEL_COMPAT_H

#include <hmmu/hmmu.h>

/* Types. */
#define page hmmu_page
#define mm_struct hmmu_mm
#define vm_area_struct hmmu_vma
#define anon_vma hmmu_anon_vma
#define vm_fault hmmu_vm_fault
#define vm_operations_struct hmmu_vm_operations
typedef hmmu_gfp_t gfp_t;
typedef hmmu_vm_fault_t vm_fault_t;

/* Sizes. */
#define PAGE_SHIFT HMMU_PAGE_SHIFT
#define PAGE_SIZE HMMU_PAGE_SIZE
#define PAGE_MASK HMMU_PAGE_MASK
#define PMD_SHIFT HMMU_PMD_SHIFT
#define PMD_SIZE HMMU_PMD_SIZE
#define PMD_MASK HMMU_PMD_MASK
#define HPAGE_PMD_ORDER HMMU_PMD_ORDER
#define MAX_ORDER HMMU_MAX_ORDER
#define TASK_SIZE HMMU_TASK_SIZE

/* Allocation flags. */
#define GFP_KERNEL HMMU_GFP_KERNEL
#define GFP_HIGHUSER_MOVABLE HMMU_GFP_HIGHUSER_MOVABLE
#define __GFP_ZERO HMMU_GFP_ZERO
#define __GFP_COMP HMMU_GFP_COMP

/* Pages. */
#define alloc_pages(gfp, order) hmmu_alloc_pages(gfp, order)
#define alloc_pages_node(nid, gfp, order) hmmu_alloc_pages_node(nid, gfp, order)
#define alloc_page(gfp) hmmu_alloc_page(gfp)
#define __free_pages(page, order) hmmu_free_pages(page, order)
#define __free_page(page) hmmu_free_pages(page, 0)
#define alloc_page_vma(gfp, vma, addr) hmmu_alloc_page_vma(vma, addr)
#define get_page(page) hmmu_get_page(page)
#define get_page_unless_zero(page) hmmu_get_page_unless_zero(page)
#define put_page(page) hmmu_put_page(page)
#define page_ref_count(page) hmmu_page_ref_count(page)
#define page_mapcount(page) hmmu_page_mapcount(page)
#define page_maybe_dma_pinned(page) hmmu_page_maybe_dma_pinned(page)
#define PageAnon(page) hmmu_page_is_anon(page)
#define compound_head(page) hmmu_compound_head(page)
#define compound_order(page) hmmu_compound_order(page)
#define page_to_pfn(page) hmmu_page_to_pfn(page)
#define pfn_to_page(pfn) hmmu_pfn_to_page(pfn)
#define page_address(page) hmmu_page_address(page)
#define ZERO_PAGE(vaddr) hmmu_zero_page()
#define is_zero_pfn(pfn) hmmu_is_zero_pfn(pfn)
#define lock_page(page) hmmu_lock_page(page)
#define trylock_page(page) hmmu_trylock_page(page)
#define unlock_page(page) hmmu_unlock_page(page)
#define PageLocked(page) hmmu_page_locked(page)
#define wait_on_page_locked(page) hmmu_wait_on_page_locked(page)

/* Address spaces. */
#define mmget(mm) hmmu_mmget(mm)
#define mmget_not_zero(mm) hmmu_mmget_not_zero(mm)
#define mmput(mm) hmmu_mmput(mm)
#define mmgrab(mm) hmmu_mmgrab(mm)
#define mmdrop(mm) hmmu_mmdrop(mm)
#define mmap_read_lock(mm) hmmu_mmap_read_lock(mm)
#define mmap_read_trylock(mm) hmmu_mmap_read_trylock(mm)
#define mmap_read_unlock(mm) hmmu_mmap_read_unlock(mm)
#define mmap_write_lock(mm) hmmu_mmap_write_lock(mm)
#define mmap_write_unlock(mm) hmmu_mmap_write_unlock(mm)
#define find_vma(mm, addr) hmmu_find_vma(mm, addr)
#define vma_lookup(mm, addr) hmmu_vma_lookup(mm, addr)
#define handle_mm_fault(vma, addr, flags, regs) hmmu_handle_mm_fault(vma, addr, flags)

/* VMA flags. */
#define VM_READ HMMU_VM_READ
#define VM_WRITE HMMU_VM_WRITE
#define VM_EXEC HMMU_VM_EXEC
#define VM_SHARED HMMU_VM_SHARED
#define VM_MAYREAD HMMU_VM_MAYREAD
#define VM_MAYWRITE HMMU_VM_MAYWRITE
#define VM_MAYEXEC HMMU_VM_MAYEXEC
#define VM_MAYSHARE HMMU_VM_MAYSHARE
#define VM_PFNMAP HMMU_VM_PFNMAP
#define VM_IO HMMU_VM_IO
#define VM_DONTCOPY HMMU_VM_DONTCOPY
#define VM_DONTEXPAND HMMU_VM_DONTEXPAND
#define VM_HUGETLB HMMU_VM_HUGETLB
#define VM_HUGEPAGE HMMU_VM_HUGEPAGE
#define VM_NOHUGEPAGE HMMU_VM_NOHUGEPAGE
#define VM_MIXEDMAP HMMU_VM_MIXEDMAP
/* Driver mappings. */
#define vm_insert_page(vma, addr, page) hmmu_vm_insert_page(vma, addr, page)
#define vmf_insert_pfn(vma, addr, pfn) hmmu_vmf_insert_pfn(vma, addr, pfn)
#define vmf_insert_mixed(vma, addr, pfn) hmmu_vmf_insert_mixed(vma, addr, pfn)
#define remap_pfn_range(vma, addr, pfn, size, prot) hmmu_remap_pfn_range(vma, addr, pfn, size)

/* Fault results and flags. */
#define VM_FAULT_OOM HMMU_VM_FAULT_OOM
#define VM_FAULT_SIGBUS HMMU_VM_FAULT_SIGBUS
#define VM_FAULT_MAJOR HMMU_VM_FAULT_MAJOR
#define VM_FAULT_HWPOISON HMMU_VM_FAULT_HWPOISON
#define VM_FAULT_SIGSEGV HMMU_VM_FAULT_SIGSEGV
#define VM_FAULT_NOPAGE HMMU_VM_FAULT_NOPAGE
#define VM_FAULT_LOCKED HMMU_VM_FAULT_LOCKED
#define VM_FAULT_RETRY HMMU_VM_FAULT_RETRY
#define VM_FAULT_ERROR HMMU_VM_FAULT_ERROR
#define FAULT_FLAG_WRITE HMMU_FAULT_FLAG_WRITE
#define FAULT_FLAG_ALLOW_RETRY HMMU_FAULT_FLAG_ALLOW_RETRY
#define FAULT_FLAG_USER HMMU_FAULT_FLAG_USER
#define FAULT_FLAG_REMOTE HMMU_FAULT_FLAG_REMOTE

/* get_user_pages. */
#define FOLL_WRITE HMMU_FOLL_WRITE
#define FOLL_GET HMMU_FOLL_GET
#define FOLL_PIN HMMU_FOLL_PIN
#define FOLL_LONGTERM HMMU_FOLL_LONGTERM
#define get_user_pages_remote(mm, start, nr, flags, pages, vmas, locked) \
	hmmu_get_user_pages_remote(mm, start, nr, flags, pages)
#define pin_user_pages_remote(mm, start, nr, flags, pages, vmas, locked) \
	hmmu_pin_user_pages_remote(mm, start, nr, flags, pages)
#define unpin_user_page(page) hmmu_unpin_user_page(page)
#define unpin_user_pages(pages, n) hmmu_unpin_user_pages(pages, n)

/* MMU notifiers. */
#define mmu_notifier hmmu_notifier
#define mmu_notifier_ops hmmu_notifier_ops
#define mmu_notifier_range hmmu_notifier_range
#define mmu_notifier_event hmmu_notifier_event
#define mmu_interval_notifier hmmu_interval_notifier
#define mmu_interval_notifier_ops hmmu_interval_notifier_ops
#define MMU_NOTIFY_UNMAP HMMU_NOTIFY_UNMAP
#define MMU_NOTIFY_CLEAR HMMU_NOTIFY_CLEAR
#define MMU_NOTIFY_PROTECTION_VMA HMMU_NOTIFY_PROTECTION_VMA
#define MMU_NOTIFY_PROTECTION_PAGE HMMU_NOTIFY_PROTECTION_PAGE
#define MMU_NOTIFY_SOFT_DIRTY HMMU_NOTIFY_SOFT_DIRTY
#define MMU_NOTIFY_RELEASE HMMU_NOTIFY_RELEASE
#define MMU_NOTIFY_MIGRATE HMMU_NOTIFY_MIGRATE
#define MMU_NOTIFY_EXCLUSIVE HMMU_NOTIFY_EXCLUSIVE
#define MMU_NOTIFIER_RANGE_BLOCKABLE HMMU_NOTIFIER_RANGE_BLOCKABLE
#define mmu_notifier_register(sub, mm) hmmu_notifier_register(sub, mm)
#define __mmu_notifier_register(sub, mm) __hmmu_notifier_register(sub, mm)
#define mmu_notifier_unregister(sub, mm) hmmu_notifier_unregister(sub, mm)
#define mmu_notifier_get(ops, mm) hmmu_notifier_get(ops, mm)
#define mmu_notifier_get_locked(ops, mm) hmmu_notifier_get_locked(ops, mm)
#define mmu_notifier_put(sub) hmmu_notifier_put(sub)
#define mmu_notifier_synchronize() hmmu_notifier_synchronize()
#define mmu_interval_notifier_insert(sub, mm, start, length, ops) \
	hmmu_interval_notifier_insert(sub, mm, start, length, ops)
#define mmu_interval_notifier_insert_locked(sub, mm, start, length, ops) \
	hmmu_interval_notifier_insert_locked(sub, mm, start, length, ops)
#define mmu_interval_notifier_remove(sub) hmmu_interval_notifier_remove(sub)
#define mmu_interval_read_begin(sub) hmmu_interval_read_begin(sub)
#define mmu_interval_read_retry(sub, seq) hmmu_interval_read_retry(sub, seq)
#define mmu_interval_check_retry(sub, seq) hmmu_interval_check_retry(sub, seq)
#define mmu_interval_set_seq(sub, seq) hmmu_interval_set_seq(sub, seq)
#define mmu_notifier_range_init(range, event, flags, mm, start, end) \
	hmmu_notifier_range_init(range, event, flags, mm, start, end)
#define mmu_notifier_range_init_owner(range, event, flags, mm, start, end, owner) \
	hmmu_notifier_range_init_owner(range, event, flags, mm, start, end, owner)
#define mmu_notifier_range_blockable(range) hmmu_notifier_range_blockable(range)
#define mmu_notifier_range_update_to_read_only(range) hmmu_notifier_range_update_to_read_only(range)
#define mmu_notifier_invalidate_range_start(range) hmmu_notifier_invalidate_range_start(range)
#define mmu_notifier_invalidate_range_start_nonblock(range) hmmu_notifier_invalidate_range_start_nonblock(range)
#define mmu_notifier_invalidate_range_end(range) hmmu_notifier_invalidate_range_end(range)
#define mmu_notifier_invalidate_range_only_end(range) hmmu_notifier_invalidate_range_only_end(range)
#define mmu_notifier_invalidate_range(mm, start, end) hmmu_notifier_invalidate_range(mm, start, end)
#define IS_ERR(ptr) hmmu_is_err(ptr)
#define PTR_ERR(ptr) hmmu_ptr_err(ptr)
#define ERR_PTR(err) hmmu_err_ptr(err)
#define IS_ERR_OR_NULL(ptr) (!(ptr) || hmmu_is_err(ptr))

/*
 * Device memory.  The kernel's `struct range` has no spelling here: `range`
 * is too common a name to define, and hmmu_range is struct hmm_range's.
 * Drivers fill pgmap->range.start/end, whose field names are the kernel's.
 */
#define dev_pagemap hmmu_dev_pagemap
#define dev_pagemap_ops hmmu_dev_pagemap_ops
#define MEMORY_DEVICE_PRIVATE HMMU_MEMORY_DEVICE_PRIVATE
#define MEMORY_DEVICE_COHERENT HMMU_MEMORY_DEVICE_COHERENT
#define memremap_pages(pgmap, nid) hmmu_compat_memremap_pages(pgmap)
#define memunmap_pages(pgmap) hmmu_memunmap_pages(pgmap)
#define zone_device_page_init(page) hmmu_zone_device_page_init(page)
#define is_zone_device_page(page) hmmu_is_zone_device_page(page)
#define is_device_private_page(page) hmmu_is_device_private_page(page)
#define is_device_coherent_page(page) hmmu_is_device_coherent_page(page)

/*
 * The kernel's memremap_pages() returns the memory's kernel address or an
 * error pointer: the CPU address of a coherent pagemap's first frame, and
 * for private memory (which has none) the range start, as meaningless and
 * as non-NULL as the kernel's.
 */
static inline void *hmmu_compat_memremap_pages(struct hmmu_dev_pagemap *pgmap)
{
	int err = hmmu_memremap_pages(pgmap);

	if (err)
		return hmmu_err_ptr(err);
	if (pgmap->type == HMMU_MEMORY_DEVICE_COHERENT)
		return hmmu_page_address(hmmu_pfn_to_page(hmmu_pgmap_pfn_first(pgmap)));
	return (void *)pgmap->range.start;
}

/* Migration (migrate_vma, migrate_device). */
#define migrate_vma hmmu_migrate_vma
#define MIGRATE_PFN_VALID HMMU_MIGRATE_PFN_VALID
#define MIGRATE_PFN_MIGRATE HMMU_MIGRATE_PFN_MIGRATE
#define MIGRATE_PFN_WRITE HMMU_MIGRATE_PFN_WRITE
#define MIGRATE_PFN_SHIFT HMMU_MIGRATE_PFN_SHIFT
#define MIGRATE_VMA_SELECT_SYSTEM HMMU_MIGRATE_VMA_SELECT_SYSTEM
#define MIGRATE_VMA_SELECT_DEVICE_PRIVATE HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE
#define MIGRATE_VMA_SELECT_DEVICE_COHERENT HMMU_MIGRATE_VMA_SELECT_DEVICE_COHERENT
#define migrate_pfn(pfn) hmmu_migrate_pfn(pfn)
#define migrate_pfn_to_page(mpfn) hmmu_migrate_pfn_to_page(mpfn)
#define migrate_vma_setup(args) hmmu_migrate_vma_setup(args)
#define migrate_vma_pages(migrate) hmmu_migrate_vma_pages(migrate)
#define migrate_vma_finalize(migrate) hmmu_migrate_vma_finalize(migrate)
#define migrate_device_range(src_pfns, start, npages) hmmu_migrate_device_range(src_pfns, start, npages)
#define migrate_device_pages(src_pfns, dst_pfns, npages) hmmu_migrate_device_pages(src_pfns, dst_pfns, npages)
#define migrate_device_finalize(src_pfns, dst_pfns, npages) \
	hmmu_migrate_device_finalize(src_pfns, dst_pfns, npages)

/* Mirroring (hmm_range_fault). */
#define hmm_range hmmu_range
#define hmm_range_fault(range) hmmu_range_fault(range)
#define hmm_pfn_to_page(hmm_pfn) hmmu_hmm_pfn_to_page(hmm_pfn)
#define hmm_pfn_to_map_order(hmm_pfn) hmmu_pfn_to_map_order(hmm_pfn)
#define HMM_PFN_VALID HMMU_PFN_VALID
#define HMM_PFN_WRITE HMMU_PFN_WRITE
#define HMM_PFN_ERROR HMMU_PFN_ERROR
#define HMM_PFN_ORDER_SHIFT HMMU_PFN_ORDER_SHIFT
#define HMM_PFN_FLAGS HMMU_PFN_FLAGS
#define HMM_PFN_REQ_FAULT HMMU_PFN_REQ_FAULT
#define HMM_PFN_REQ_WRITE HMMU_PFN_REQ_WRITE
#define HMM_RANGE_DEFAULT_TIMEOUT HMMU_RANGE_DEFAULT_TIMEOUT

/* Device-exclusive access (6.1's range form; the 6.15 single-page form has no spelling). */
#define make_device_exclusive_range(mm, start, end, pages, owner) \
	hmmu_make_device_exclusive_range(mm, start, end, pages, owner)

#endif /* HMMU_KERNEL_COMPAT_H */
