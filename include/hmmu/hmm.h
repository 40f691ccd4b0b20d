/* SPDX-License-Identifier: MIT */
/*
 * Mirroring CPU page tables: hmmu_range_fault() (the kernel's
 * hmm_range_fault).  A driver snapshots, and optionally faults in, the CPU
 * entries of a range under an interval notifier's sequence count, then
 * programs its own page table from the result while holding the lock its
 * invalidate callback takes.  See docs/device-memory.md for the loop.
 */
#ifndef HMMU_HMM_H
#define HMMU_HMM_H

#include <stdbool.h>

#include <hmmu/mmu_notifier.h>
#include <hmmu/page.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One entry of hmm_pfns[]: a frame number in bits 0..55 and flags above.
 *
 * Output: VALID  the pfn is valid and the CPU mapping at least readable;
 *         WRITE  the CPU mapping is writable (only with VALID);
 *         ERROR  no access is possible (no VMA, unreadable or IO/PFNMAP
 *                VMA, special entry, bad PMD-level entry);
 *         order  bits 56..60: log2 of the pages in the CPU mapping that
 *                holds this page (0 for a PTE, 9 for a 2 MiB leaf); the
 *                mapping is aligned to its size and all of its pages carry
 *                the same flags.
 *         0      nothing mapped now (a request with REQ_FAULT could succeed).
 * Input:  REQ_FAULT (same bit as VALID): the output must become VALID or the
 *         call fails; REQ_WRITE (same bit as WRITE): it must become WRITE
 *         (meaningful with REQ_FAULT).  Other input bits are ignored.
 */
#define HMMU_PFN_VALID (1UL << 63)
#define HMMU_PFN_WRITE (1UL << 62)
#define HMMU_PFN_ERROR (1UL << 61)
#define HMMU_PFN_ORDER_SHIFT 56
#define HMMU_PFN_ORDER_MASK (0x1fUL << HMMU_PFN_ORDER_SHIFT)
#define HMMU_PFN_FLAGS (0xffUL << HMMU_PFN_ORDER_SHIFT)
#define HMMU_PFN_REQ_FAULT HMMU_PFN_VALID
#define HMMU_PFN_REQ_WRITE HMMU_PFN_WRITE

/* The kernel's HMM_RANGE_DEFAULT_TIMEOUT (ms), for drivers' own loops. */
#define HMMU_RANGE_DEFAULT_TIMEOUT 1000

/*
 * A range to mirror (the kernel's struct hmm_range).
 * @notifier:          interval subscription whose `mm` is walked; only its
 *                     sequence is consulted (it should cover the range)
 * @notifier_seq:      hmmu_interval_read_begin()'s value for @notifier
 * @start, @end:       page-aligned virtual range, end exclusive
 * @hmm_pfns:          (end - start) / HMMU_PAGE_SIZE entries: request flags
 *                     in, pfn + flags out (outputs overwrite inputs, so a
 *                     caller using per-page requests re-fills the array
 *                     before each retry)
 * @default_flags:     request flags applied to every page
 * @pfn_flags_mask:    which bits of each input entry are honoured
 * @dev_private_owner: device-private pages whose pagemap owner equals this
 *                     are reported as they are instead of faulted back
 */
struct hmmu_range {
	struct hmmu_interval_notifier *notifier;
	unsigned long notifier_seq;
	unsigned long start;
	unsigned long end;
	unsigned long *hmm_pfns;
	unsigned long default_flags;
	unsigned long pfn_flags_mask;
	void *dev_private_owner;
};

/**
 * hmmu_range_fault() - snapshot the CPU entries of [range->start,
 * range->end) into range->hmm_pfns, faulting pages in where requested.
 *
 * For each page the request is (input & pfn_flags_mask) | default_flags.
 * Without REQ_FAULT nothing is faulted: present pages are reported VALID
 * (+WRITE, + the order of the mapping), empty or migrating or foreign
 * device-private entries 0, gaps and unreadable / IO / PFNMAP VMAs and
 * special entries ERROR.  With REQ_FAULT (+REQ_WRITE) a page that does not
 * satisfy it is faulted like a remote CPU access, and, as in Linux 6.1, so
 * is every following page of the same segment (PTE table, hole or huge
 * entry).  Device-private pages of @dev_private_owner are reported as they
 * are (VALID, WRITE iff the entry is the write variant, even when
 * REQ_WRITE asked for more); other owners' pages are faulted back through
 * their migrate_to_ram.  Device-coherent pages and the zero page (with its
 * real pfn) are reported as ordinary pages.  In a hugetlb page only the
 * first entry's request of the walked part is honoured (Linux 6.1).
 * Migration entries are waited for, then the walk resumes.
 *
 * The caller holds range->notifier->mm's mmap_lock for read (it is never
 * dropped) and a user reference on that mm.  No page reference is taken:
 * the output is valid only while hmmu_interval_read_retry() under the
 * driver lock says so.  The walk restarts after each fault, until done or
 * hmmu_retry_timeout_ms() has passed.
 *
 * Returns 0 (every entry satisfies its request), or
 *   -EBUSY   the notifier's sequence changed (checked before every
 *            (re)start), or the retry bound passed: hmmu_interval_read_begin()
 *            again and retry; entries before the restart point hold outputs,
 *            the others still hold their inputs;
 *   -EFAULT  a requested page cannot be made valid: no VMA, unreadable or
 *            IO/PFNMAP VMA, special entry, bad PMD-level entry, unknown
 *            entry type, or the fault failed (out of memory included, as
 *            in Linux 6.1; a driver's SIGBUS from migrate_to_ram too);
 *   -EPERM   a write was requested in a VMA without write permission;
 *   -EINVAL  NULL @range, notifier, notifier mm or hmm_pfns, start or end
 *            not page aligned, start >= end, or end beyond HMMU_TASK_SIZE.
 */
HMMU_EXPORT int hmmu_range_fault(struct hmmu_range *range);

/**
 * hmmu_hmm_pfn_to_page() - the frame of an output entry (VALID must be
 * set), or NULL if no node covers its pfn.  (The kernel's hmm_pfn_to_page;
 * hmmu_pfn_to_page() already names the kernel's pfn_to_page.)
 */
static inline struct hmmu_page *hmmu_hmm_pfn_to_page(unsigned long hmm_pfn)
{
	return hmmu_pfn_to_page(hmm_pfn & ~HMMU_PFN_FLAGS);
}

/** hmmu_pfn_to_map_order() - the order field of an output entry. */
static inline unsigned int hmmu_pfn_to_map_order(unsigned long hmm_pfn)
{
	return (unsigned int)((hmm_pfn & HMMU_PFN_ORDER_MASK) >> HMMU_PFN_ORDER_SHIFT);
}

#ifdef __cplusplus
}
#endif
#endif /* HMMU_HMM_H */
