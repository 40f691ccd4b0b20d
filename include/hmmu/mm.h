/* SPDX-License-Identifier: MIT */
/*
 * Address spaces (the primary MMU): struct hmmu_mm, VMAs, mmap and friends,
 * the fault handler, CPU access and get_user_pages.
 */
#ifndef HMMU_MM_H
#define HMMU_MM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <urcu/list.h>

#include <hmmu/page.h>
#include <hmmu/rbtree_types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* mremap(2) flags: libc defines them only under _GNU_SOURCE. */
#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE 1
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif

/* Virtual addresses: 48 bits, user half. */
#define HMMU_TASK_SIZE (1UL << 47)

struct hmmu_mm;
struct hmmu_anon_vma;
struct hmmu_file;
struct hmmu_vma;

/* VMA flags (struct hmmu_vma::vm_flags). */
#define HMMU_VM_READ 0x00000001UL
#define HMMU_VM_WRITE 0x00000002UL
#define HMMU_VM_EXEC 0x00000004UL
#define HMMU_VM_SHARED 0x00000008UL
#define HMMU_VM_MAYREAD 0x00000010UL
#define HMMU_VM_MAYWRITE 0x00000020UL
#define HMMU_VM_MAYEXEC 0x00000040UL
#define HMMU_VM_MAYSHARE 0x00000080UL
#define HMMU_VM_PFNMAP 0x00000400UL	/* raw frame numbers, no struct page */
#define HMMU_VM_IO 0x00004000UL
#define HMMU_VM_DONTCOPY 0x00020000UL
#define HMMU_VM_DONTEXPAND 0x00040000UL
#define HMMU_VM_HUGETLB 0x00400000UL
#define HMMU_VM_HUGEPAGE 0x20000000UL	/* MADV_HUGEPAGE */
#define HMMU_VM_NOHUGEPAGE 0x40000000UL	/* MADV_NOHUGEPAGE */
#define HMMU_VM_MIXEDMAP 0x10000000UL

/*
 * A virtual memory area: [vm_start, vm_end) with one set of flags.
 *
 * Locking: every field is written only with the mm's mmap_lock held for
 * write; holding it for read keeps the VMA alive and its fields stable.
 * `vm_rb`, `rb_subtree_gap` and `vm_list` belong to the mm's VMA tree.
 * Reverse-map walks from other mms read `vm_flags` under a PTE lock
 * without the mmap_lock, so a protection change stores it atomically
 * (relaxed) before it takes the PTE locks to apply it.
 */
struct hmmu_vma {
	unsigned long vm_start, vm_end;	/* page-aligned, end exclusive */
	unsigned long vm_flags;		/* HMMU_VM_* */
	unsigned long vm_pgoff;		/* page offset of vm_start in its object */
	struct hmmu_mm *vm_mm;
	struct hmmu_anon_vma *anon_vma;	/* reverse-map root of its anon pages */
	struct cds_list_head anon_vma_link; /* on anon_vma's list of VMAs */
	struct hmmu_file *vm_file;	/* page-cache object: file or shmem; NULL for anon */
	const struct hmmu_vm_operations *vm_ops; /* driver mappings; NULL otherwise */
	void *vm_private_data;		/* the driver's word (special mappings) */
	/* VMA tree linkage (src/mm/vma.c). */
	struct hmmu_rb_node vm_rb;
	unsigned long rb_subtree_gap;	/* largest free gap below any VMA of the subtree */
	struct cds_list_head vm_list;	/* all VMAs in address order */
};

/* Result of a fault (hmmu_vm_fault_t bits). */
typedef unsigned int hmmu_vm_fault_t;
#define HMMU_VM_FAULT_OOM 0x0001u
#define HMMU_VM_FAULT_SIGBUS 0x0002u
#define HMMU_VM_FAULT_MAJOR 0x0004u
#define HMMU_VM_FAULT_HWPOISON 0x0010u
#define HMMU_VM_FAULT_SIGSEGV 0x0040u
#define HMMU_VM_FAULT_NOPAGE 0x0100u
#define HMMU_VM_FAULT_LOCKED 0x0200u
#define HMMU_VM_FAULT_RETRY 0x0400u
#define HMMU_VM_FAULT_ERROR \
	(HMMU_VM_FAULT_OOM | HMMU_VM_FAULT_SIGBUS | HMMU_VM_FAULT_SIGSEGV | HMMU_VM_FAULT_HWPOISON)

/* Fault flags (hmmu_handle_mm_fault). */
#define HMMU_FAULT_FLAG_WRITE 0x01u
#define HMMU_FAULT_FLAG_ALLOW_RETRY 0x04u
#define HMMU_FAULT_FLAG_USER 0x40u
#define HMMU_FAULT_FLAG_REMOTE 0x80u

/*
 * A fault handed to a driver: to vm_ops->fault (special mappings), whose
 * handler fills the entry with hmmu_vmf_insert_pfn(), hmmu_vmf_insert_mixed()
 * or hmmu_vm_insert_page() and returns HMMU_VM_FAULT_NOPAGE, or returns
 * HMMU_VM_FAULT_SIGBUS; or to a device pagemap's migrate_to_ram
 * (include/hmmu/memremap.h), with `page` set.  Both run with the mmap_lock
 * held for read.
 */
struct hmmu_vm_fault {
	struct hmmu_vma *vma;
	unsigned long address;		/* faulting address, page-aligned */
	unsigned long pgoff;		/* page offset of address in the mapping */
	unsigned int flags;		/* HMMU_FAULT_FLAG_* */
	/*
	 * migrate_to_ram: the device page, locked and referenced by hmmu;
	 * NULL for vm_ops->fault.  Two names for one field because
	 * <hmmu/kernel-compat.h> defines `page` as `hmmu_page`, which turns a
	 * driver's `vmf->page` into `vmf->hmmu_page`.
	 */
	union {
		struct hmmu_page *page;
		struct hmmu_page *hmmu_page;
	};
};

/*
 * A driver's hooks on its VMAs (the kernel's vm_operations_struct).  Every
 * hook is optional.  open: a VMA was copied from another (split, fork,
 * mremap); close: a VMA is going away (munmap, teardown, the losing half of
 * nothing: merges never involve VMAs with vm_ops).  Both run with the
 * mmap_lock held for write.
 */
struct hmmu_vm_operations {
	void (*open)(struct hmmu_vma *vma);
	void (*close)(struct hmmu_vma *vma);
	hmmu_vm_fault_t (*fault)(struct hmmu_vm_fault *vmf);
};

/* get_user_pages flags. */
#define HMMU_FOLL_WRITE 0x01u
#define HMMU_FOLL_GET 0x04u	/* implied by the get calls */
#define HMMU_FOLL_PIN 0x40000u	/* implied by the pin calls */
#define HMMU_FOLL_LONGTERM 0x10000u

/* hmmu_access() flags. */
#define HMMU_ACCESS_READ 0x0u
#define HMMU_ACCESS_WRITE 0x1u

/* hmmu_mm_create() flags. */
#define HMMU_MM_DEFAULT 0x0u
#define HMMU_MM_HOST 0x1u	/* addresses are real addresses of this process */

/**
 * hmmu_mm_create() - a new empty address space.
 * @flags: HMMU_MM_DEFAULT, or HMMU_MM_HOST: a host mm, whose addresses are
 *         real addresses of the calling process inside one arena of
 *         struct hmmu_config::host_arena_size bytes; plain loads and stores
 *         through them fault like hmmu_access() does (docs/host.md).  Host
 *         mms hold private anonymous memory only; see <hmmu/host.h>.
 * @mmp: receives the mm, holding one user reference (drop it with
 *       hmmu_mmput(), which tears the address space down).
 *
 * Returns 0, -EINVAL (unknown flags, NULL @mmp, hmmu_init() not called),
 * -ENOMEM, and for HMMU_MM_HOST also -EOPNOTSUPP (userfaultfd or a feature
 * it needs is missing: hmmu_host_probe() says which), -ENOSPC (64 host mms
 * exist) or the errno of a failed memfd_create, mmap or userfaultfd call.
 */
HMMU_EXPORT int hmmu_mm_create(unsigned int flags, struct hmmu_mm **mmp);

/**
 * hmmu_mmget() - take a user reference (the address space stays alive and
 * may be faulted).  The caller must already hold one.
 * hmmu_mmget_not_zero() - take one unless the last was dropped; true on success.
 * hmmu_mmput() - drop one; the last tears down every mapping and frees every
 * page and page table, then drops the structure reference users share.
 * A NULL @mm is ignored (get_not_zero returns false).
 */
HMMU_EXPORT void hmmu_mmget(struct hmmu_mm *mm);
HMMU_EXPORT bool hmmu_mmget_not_zero(struct hmmu_mm *mm);
HMMU_EXPORT void hmmu_mmput(struct hmmu_mm *mm);

/**
 * hmmu_mmgrab() - take a structure reference (the struct stays valid, the
 * address space may be dead).  hmmu_mmdrop() - drop it; the last frees it.
 * A NULL @mm is ignored.
 */
HMMU_EXPORT void hmmu_mmgrab(struct hmmu_mm *mm);
HMMU_EXPORT void hmmu_mmdrop(struct hmmu_mm *mm);

/**
 * The mmap_lock: a writer-preferring reader/writer lock.  Faults, GUP and
 * page-table walks hold it for read; VMA changes hold it for write.  A
 * NULL @mm is ignored (trylock returns false).
 */
HMMU_EXPORT void hmmu_mmap_read_lock(struct hmmu_mm *mm);
HMMU_EXPORT bool hmmu_mmap_read_trylock(struct hmmu_mm *mm);
HMMU_EXPORT void hmmu_mmap_read_unlock(struct hmmu_mm *mm);
HMMU_EXPORT void hmmu_mmap_write_lock(struct hmmu_mm *mm);
HMMU_EXPORT void hmmu_mmap_write_unlock(struct hmmu_mm *mm);

/**
 * hmmu_mmap() - create a mapping, like mmap(2).
 * @addr: a hint, or the exact address with MAP_FIXED (replacing what was
 *        there) or MAP_FIXED_NOREPLACE.
 * @prot: PROT_NONE or an OR of PROT_READ, PROT_WRITE, PROT_EXEC.
 * @flags: exactly one of MAP_PRIVATE and MAP_SHARED, optionally with
 *         MAP_ANONYMOUS, MAP_FIXED or MAP_FIXED_NOREPLACE, MAP_HUGETLB
 *         (private anonymous memory in 2 MiB pages; @len and a fixed @addr
 *         are then rounded to / must be aligned to 2 MiB), MAP_NORESERVE.
 * @fd, @offset: -1 and 0 for anonymous memory; otherwise an open regular
 *        file (read access required, write access too for a shared
 *        writable mapping) and a page-aligned offset into it.
 *
 * Kinds of memory: private anonymous (zero page, copy-on-write), shared
 * anonymous (one shmem object of @len bytes that fork shares), private
 * file (reads see the file; writes copy into anonymous pages and never reach
 * it) and shared file (one page cache per file, shared by every mapping of
 * it in every mm; written back by hmmu_msync(), munmap and teardown).
 * Accessing a file page wholly past the end of the file raises SIGBUS.
 *
 * Takes the mmap_lock for write.  Returns the start address (>= 0), or
 * -EINVAL (zero or overflowing length, unaligned fixed address or offset,
 * unknown prot or flag bits, neither MAP_PRIVATE nor MAP_SHARED;
 * both together are Linux's MAP_SHARED_VALIDATE, taken as MAP_SHARED), -EBADF (@fd is not an open file), -EACCES (@fd lacks the
 * access the mapping needs), -ENODEV (@fd is not a regular file),
 * -EOVERFLOW (@offset + @len overflows), -ENOMEM (no free range or out of
 * memory), -EEXIST (MAP_FIXED_NOREPLACE over a mapping), -EOPNOTSUPP
 * (MAP_HUGETLB with MAP_SHARED or a file).
 */
HMMU_EXPORT long hmmu_mmap(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot,
			   int flags, int fd, off_t offset);

/**
 * hmmu_munmap() - remove mappings in [addr, addr + len), like munmap(2):
 * VMAs straddling the ends are split, pages freed, page tables that cover
 * only the range freed.  Gaps in the range are fine.  Takes the mmap_lock
 * for write.  Returns 0, -EINVAL (unaligned @addr, zero length, range
 * outside the address space) or -ENOMEM (a split could not allocate).
 */
HMMU_EXPORT int hmmu_munmap(struct hmmu_mm *mm, unsigned long addr, size_t len);

/**
 * hmmu_mprotect() - change protection of [addr, addr + len), like
 * mprotect(2), splitting and merging VMAs.  Removing write permission
 * write-protects present entries; adding it takes effect at the next write
 * fault.  @len 0 does nothing.  Takes the mmap_lock for write.  Returns 0,
 * -EINVAL (NULL @mm, unaligned @addr, unknown @prot bits, a range that
 * wraps or runs past HMMU_TASK_SIZE: Linux says -ENOMEM), -ENOMEM (part of the range unmapped; VMAs
 * before the hole keep their new protection, as Linux does) or -EACCES
 * (write asked of a mapping that may never be writable).
 */
HMMU_EXPORT int hmmu_mprotect(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot);

/**
 * hmmu_madvise() - advice for [addr, addr + len), like madvise(2).
 * MADV_DONTNEED drops the pages (the next access faults in zeros),
 * MADV_HUGEPAGE / MADV_NOHUGEPAGE mark anonymous VMAs huge-page eligible
 * or not, MADV_DONTFORK / MADV_DOFORK mark VMAs to be left out of / copied
 * by hmmu_fork() (HMMU_VM_DONTCOPY).  Returns 0, -EINVAL (unaligned @addr,
 * unknown advice, DONTNEED on a PFNMAP/IO VMA or on part of a 2 MiB
 * hugetlb page, DOFORK on an IO VMA; DONTNEED stops at the VMA that
 * refuses, those before it are zapped) or -ENOMEM (part of the range
 * unmapped; the mapped parts are still advised).
 */
HMMU_EXPORT int hmmu_madvise(struct hmmu_mm *mm, unsigned long addr, size_t len, int advice);

/**
 * hmmu_mremap() - resize and/or move the mapping at [old_addr, old_addr +
 * old_len), like mremap(2).
 * @flags: 0, MREMAP_MAYMOVE, MREMAP_MAYMOVE | MREMAP_FIXED (move to exactly
 *         @new_addr, replacing what is there).
 *
 * Shrinking unmaps the tail.  Growing extends in place when the space above
 * is free, else (MREMAP_MAYMOVE) moves.  A move carries every entry as it
 * is, present or not (device-private, device-exclusive and migration
 * entries move with the range and keep their references), inside an UNMAP
 * invalidation of the old range; huge entries move whole when source and
 * destination are 2 MiB aligned, else are split.  Hugetlb mappings need
 * 2 MiB aligned addresses and lengths.  Lengths are rounded up to pages.
 * MREMAP_FIXED unmaps the destination (and, when shrinking, the old tail)
 * first; those stay unmapped if the move then fails.  Takes the mmap_lock
 * for write.  Returns the new address, or -EINVAL (unaligned address, zero
 * new length, unknown flags, MREMAP_FIXED without MREMAP_MAYMOVE,
 * overlapping fixed ranges, zero old length, a range past HMMU_TASK_SIZE,
 * a fixed destination that would split a hugetlb page), -EFAULT (the old
 * range is not inside one VMA, or a DONTEXPAND/PFNMAP mapping would grow),
 * -ENOMEM (cannot grow in place without MREMAP_MAYMOVE, no free range, out
 * of memory: nothing moved).
 */
HMMU_EXPORT long hmmu_mremap(struct hmmu_mm *mm, unsigned long old_addr, size_t old_len, size_t new_len,
			     int flags, unsigned long new_addr);

/**
 * hmmu_msync() - write the shared file pages of [addr, addr + len) that were
 * written through any mapping back to their file, like msync(2).
 * @flags: MS_ASYNC or MS_SYNC (both write back before returning; MS_SYNC
 *         also fsyncs the file), optionally MS_INVALIDATE (accepted).
 *
 * Takes the mmap_lock for read.  Returns 0, -EINVAL (unaligned @addr,
 * unknown flags, MS_ASYNC with MS_SYNC), -ENOMEM (part of the range
 * unmapped; the mapped parts are synced) or -EIO (a write to the file
 * failed).
 */
HMMU_EXPORT int hmmu_msync(struct hmmu_mm *mm, unsigned long addr, size_t len, int flags);

/**
 * hmmu_fork() - duplicate an address space, like fork(2) does.
 * @mm: the parent; the caller holds a user reference.
 * @childp: receives the child with one user reference.
 *
 * The child gets a copy of every VMA except those marked HMMU_VM_DONTCOPY.
 * Private anonymous pages become shared copy-on-write: the parent's entries
 * are write-protected inside one PROTECTION_PAGE invalidation per VMA, and
 * the first write on either side copies the page (or reuses it when the
 * other side is gone).  A page that may be DMA-pinned is copied at once for
 * the child, so the pin keeps seeing the parent's memory.  Shared mappings
 * stay shared; special mappings copy their entries.  Notifier
 * subscriptions are not inherited.  Takes the parent's mmap_lock for
 * write.  Returns 0, -EINVAL (NULL argument) or -ENOMEM.
 */
HMMU_EXPORT int hmmu_fork(struct hmmu_mm *mm, struct hmmu_mm **childp);

/*
 * Special mappings: a driver maps its own memory into an mm.
 *
 * hmmu_mmap_special() creates a VMA as hmmu_mmap() would (MAP_PRIVATE or
 * MAP_SHARED, no MAP_ANONYMOUS, no @fd), then calls @mmap_hook(vma, @arg)
 * with the mmap_lock held for write: the hook sets vma->vm_ops and
 * vma->vm_private_data, and may fill entries at once with the insert calls
 * below.  A hook that fails (negative errno) has the VMA removed, along
 * with anything it inserted, and its error returned.
 */
typedef int hmmu_mmap_hook_t(struct hmmu_vma *vma, void *arg);
HMMU_EXPORT long hmmu_mmap_special(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot, int flags,
				   unsigned long pgoff, hmmu_mmap_hook_t *mmap_hook, void *arg);

/**
 * hmmu_vm_insert_page() - map @page (a driver's page: referenced,
 * CPU-addressable, not anonymous, not a page-cache page, not the zero
 * page) at @addr of @vma, taking a reference and a mapcount that the
 * mapping owns (the caller keeps its own; munmap drops the mapping's).
 * Marks the VMA HMMU_VM_MIXEDMAP.  The entry is writable only in a shared
 * writable VMA; in a private writable one a write copies the page into an
 * anonymous page.  GUP and hmm_range_fault see the page.
 * hmmu_vmf_insert_pfn() - map the raw frame @pfn at @addr of a PFNMAP
 * (not MIXEDMAP) VMA: a special entry, no reference, not visible to GUP
 * or hmm_range_fault; CPU access goes through the frame's address.
 * hmmu_vmf_insert_mixed() - the same in a MIXEDMAP VMA (or a PFNMAP one).
 * hmmu_remap_pfn_range() - map @size bytes (rounded up to pages) of frames
 * from @pfn at @addr: marks the VMA HMMU_VM_PFNMAP | HMMU_VM_IO |
 * HMMU_VM_DONTEXPAND and inserts special entries.
 * Special entries are writable iff the VMA is shared and writable.  The
 * driver keeps the frames of special entries alive while they are mapped.
 *
 * Locking: the mmap_lock held for write from an mmap hook; the calls that
 * change vm_flags (remap_pfn_range always, insert_page on a VMA that is not
 * MIXEDMAP yet) need that.  From a fault hook (mmap_lock held for read)
 * only the vmf calls and insert_page on a VMA already MIXEDMAP (its mmap
 * hook set the flag or inserted a page) may be used.
 *
 * insert_page returns 0, -EINVAL (no VMA, @addr unaligned or outside it, a
 * PFNMAP, hugetlb or file VMA, a page not described above), -EBUSY (an
 * entry is already there) or -ENOMEM.  The vmf calls return
 * HMMU_VM_FAULT_NOPAGE (also when the entry was already filled by a racing
 * fault), HMMU_VM_FAULT_SIGBUS (wrong VMA kind, bad address, or a pfn no
 * node covers) or HMMU_VM_FAULT_OOM.  remap_pfn_range returns 0, -EINVAL
 * (bad VMA or range, zero @size, a MIXEDMAP VMA, a frame no node covers;
 * nothing changed), -EBUSY (an entry is already there) or -ENOMEM; after
 * -EBUSY or -ENOMEM the entries inserted so far stay (the failing mmap
 * hook's VMA is zapped).
 */
HMMU_EXPORT int hmmu_vm_insert_page(struct hmmu_vma *vma, unsigned long addr, struct hmmu_page *page);
HMMU_EXPORT hmmu_vm_fault_t hmmu_vmf_insert_pfn(struct hmmu_vma *vma, unsigned long addr, unsigned long pfn);
HMMU_EXPORT hmmu_vm_fault_t hmmu_vmf_insert_mixed(struct hmmu_vma *vma, unsigned long addr, unsigned long pfn);
HMMU_EXPORT int hmmu_remap_pfn_range(struct hmmu_vma *vma, unsigned long addr, unsigned long pfn,
				     unsigned long size);

/**
 * hmmu_find_vma() - the first VMA with vm_end > @addr, or NULL.
 * hmmu_vma_lookup() - the VMA containing @addr, or NULL.
 * The caller holds the mmap_lock (read or write).  A NULL @mm has no VMA.
 */
HMMU_EXPORT struct hmmu_vma *hmmu_find_vma(struct hmmu_mm *mm, unsigned long addr);
HMMU_EXPORT struct hmmu_vma *hmmu_vma_lookup(struct hmmu_mm *mm, unsigned long addr);

/**
 * hmmu_handle_mm_fault() - resolve a fault at @addr in @vma.
 * @flags: HMMU_FAULT_FLAG_* (WRITE for a store).
 *
 * The caller holds the mmap_lock for read and has checked that @vma allows
 * the access.  Anonymous memory: a read of an empty entry maps the zero
 * page; a write maps a new zeroed page, replaces the zero page, copies a
 * shared page or reuses an exclusive one.  Returns 0 or HMMU_VM_FAULT_*
 * bits (HMMU_VM_FAULT_OOM when no page could be allocated,
 * HMMU_VM_FAULT_SIGSEGV for an access the VMA does not allow, a NULL @vma
 * or an @addr outside it).
 */
HMMU_EXPORT hmmu_vm_fault_t hmmu_handle_mm_fault(struct hmmu_vma *vma, unsigned long addr,
						 unsigned int flags);

/**
 * hmmu_access() - read or write @len bytes at @addr as CPU loads and stores
 * would, faulting pages in as needed.
 * @flags: HMMU_ACCESS_READ (copy into @buf) or HMMU_ACCESS_WRITE (copy from @buf).
 *
 * Takes the mmap_lock for read.  Each page's bytes are copied under its
 * page-table lock, so no concurrent change of the entry (migration,
 * unmap) can lose a write or return stale data.  A @buf in a host mm's
 * memory is touched only outside hmmu's locks (through a bounce buffer),
 * so it may fault.  The caller holds a user
 * reference on @mm.  Returns 0, or -EFAULT when some byte has no VMA or the
 * VMA forbids the access (bytes before it were transferred, as a CPU would
 * have), -ENOMEM when a page could not be allocated, -EINVAL for bad
 * arguments (NULL, unknown flags, range wrapping or past HMMU_TASK_SIZE).
 */
HMMU_EXPORT int hmmu_access(struct hmmu_mm *mm, unsigned long addr, void *buf, size_t len,
			    unsigned int flags);

/**
 * hmmu_get_user_pages_remote() - fault in and reference the pages of
 * [start, start + nr_pages * PAGE_SIZE).
 * @gup_flags: HMMU_FOLL_WRITE (break copy-on-write, require a writable
 *             mapping), HMMU_FOLL_LONGTERM (accepted; recorded in the stats).
 * @pages: receives one referenced page per address; the caller drops each
 *         reference with hmmu_put_page().
 *
 * The caller holds the mmap_lock for read.  Returns the number of pages
 * referenced (fewer than asked if a later page fails; 0 for @nr_pages 0),
 * or, when the first page fails, -EFAULT (no VMA, access not allowed, PFNMAP/IO VMA), -ENOMEM,
 * or -EINVAL (NULL @mm or @pages, unaligned @start, unknown flags, a range
 * wrapping or past HMMU_TASK_SIZE).
 */
HMMU_EXPORT long hmmu_get_user_pages_remote(struct hmmu_mm *mm, unsigned long start,
					    unsigned long nr_pages, unsigned int gup_flags,
					    struct hmmu_page **pages);
/**
 * hmmu_pin_user_pages_remote() - like hmmu_get_user_pages_remote() but takes
 * FOLL_PIN references (counted by hmmu_page_maybe_dma_pinned()); release
 * each with hmmu_unpin_user_page().
 */
HMMU_EXPORT long hmmu_pin_user_pages_remote(struct hmmu_mm *mm, unsigned long start,
					    unsigned long nr_pages, unsigned int gup_flags,
					    struct hmmu_page **pages);
/* Drop one FOLL_PIN reference per page; NULL pages (or a NULL array) are skipped. */
HMMU_EXPORT void hmmu_unpin_user_page(struct hmmu_page *page);
HMMU_EXPORT void hmmu_unpin_user_pages(struct hmmu_page **pages, unsigned long npages);

/**
 * hmmu_alloc_page_vma() - a destination frame for the page at @addr of @vma
 * (faults, migration back to RAM).  Not zeroed; refcount 1.  Returns NULL
 * when memory is exhausted, or @vma is NULL or does not contain @addr.
 * Callers hold the mmap_lock.
 */
HMMU_EXPORT struct hmmu_page *hmmu_alloc_page_vma(struct hmmu_vma *vma, unsigned long addr);

/* What an address space holds (hmmu_mm_get_stats). */
struct hmmu_mm_stats {
	unsigned long nr_vmas;
	unsigned long mapped_bytes;	/* sum of VMA sizes */
	unsigned long present_pages;	/* present PTEs + 512 per huge PMD, zero page excluded */
	unsigned long zero_pages;	/* entries mapping the zero page */
	unsigned long huge_pmds;	/* PMD-level leaf entries */
	unsigned long nonpresent_entries; /* typed non-present entries */
	unsigned long page_tables;	/* page-table pages below the top level */
	unsigned long faults;		/* faults handled in this mm */
	unsigned long zero_page_faults;	/* faults that mapped the zero page */
	unsigned long cow_faults;	/* faults that copied or replaced a page */
};

/**
 * hmmu_mm_get_stats() - count what @mm maps (walks its page tables under
 * the mmap_lock for read).  Returns 0 or -EINVAL (NULL argument).
 */
HMMU_EXPORT int hmmu_mm_get_stats(struct hmmu_mm *mm, struct hmmu_mm_stats *stats);

/**
 * hmmu_mm_for_each_vma() - call @fn for each VMA in address order under the
 * mmap_lock for read; stops at the first nonzero return and returns it.
 * -EINVAL for a NULL @mm or @fn.
 */
HMMU_EXPORT int hmmu_mm_for_each_vma(struct hmmu_mm *mm,
				     int (*fn)(const struct hmmu_vma *vma, void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif /* HMMU_MM_H */
