// SPDX-License-Identifier: MIT
/*
 * hmmu_range_fault(): mirror the CPU page table of a range (spec 2).
 *
 * One pass of the page walker over [last, end) writes an output for each
 * page in address order.  A page whose request its entry does not satisfy
 * stops the pass: the rest of its segment (the PTE table's run, the hole or
 * the huge entry) is faulted in with the strongest requirement of the
 * pages that triggered it, `last` is set to the segment's start, and the
 * pass returns -EBUSY; the outer loop then checks the notifier sequence and
 * walks again from `last`.  Invariant: entries below `last` hold outputs,
 * the others still hold their inputs.  A migration entry that must be
 * faulted is waited for the same way.
 *
 * Entries are read with the lock of their table held (one lock per PTE
 * table run, per hugetlb page, none for a transparent huge leaf, whose
 * validity the notifier protocol covers as in Linux).  No page reference is
 * ever taken.
 */
#include <time.h>

#include "internal.h"

/* What a segment needs (bits), or that a migration entry must be waited for. */
enum {
	HMMU_NEED_FAULT = 1,
	HMMU_NEED_WRITE_FAULT = 2,
	HMMU_NEED_ALL = HMMU_NEED_FAULT | HMMU_NEED_WRITE_FAULT,
	HMMU_NEED_MIGRATION_WAIT = 4,
};

/* The private state of one hmmu_range_fault() call. */
struct hmmu_hmm_walk {
	struct hmmu_range *range;
	unsigned long last;	/* restart point: first entry still holding its input */
	bool may_fault;		/* some request can carry REQ_FAULT */
};

static unsigned long *hmmu_hmm_pfns(const struct hmmu_hmm_walk *hw, unsigned long addr)
{
	return &hw->range->hmm_pfns[(addr - hw->range->start) >> HMMU_PAGE_SHIFT];
}

/* Spec 2.3: does the page with input @in need a fault, given its CPU flags? */
static unsigned int hmmu_pte_need_fault(const struct hmmu_hmm_walk *hw, unsigned long in, unsigned long cpu_flags)
{
	unsigned long req = (in & hw->range->pfn_flags_mask) | hw->range->default_flags;

	if (!(req & HMMU_PFN_REQ_FAULT))
		return 0;
	if ((req & HMMU_PFN_REQ_WRITE) && !(cpu_flags & HMMU_PFN_WRITE))
		return HMMU_NEED_ALL;
	return cpu_flags & HMMU_PFN_VALID ? 0 : HMMU_NEED_FAULT;
}

/* The OR of the requirements of @npages inputs sharing @cpu_flags. */
static unsigned int hmmu_range_need_fault(const struct hmmu_hmm_walk *hw, const unsigned long *pfns,
					  unsigned long npages, unsigned long cpu_flags)
{
	unsigned int required = 0;

	if (!hw->may_fault)
		return 0;
	for (unsigned long i = 0; i < npages && required != HMMU_NEED_ALL; i++)
		required |= hmmu_pte_need_fault(hw, pfns[i], cpu_flags);
	return required;
}

static void hmmu_hmm_fill(struct hmmu_hmm_walk *hw, unsigned long addr, unsigned long end, unsigned long value)
{
	unsigned long *pfns = hmmu_hmm_pfns(hw, addr);

	for (; addr < end; addr += HMMU_PAGE_SIZE)
		*pfns++ = value;
}

/*
 * Fault every page of [addr, end) of walk->vma (spec 2.4) and make the
 * pass restart at @addr.  No page-table lock held.  Returns -EBUSY (done:
 * restart), -EPERM (write needed, VMA not writable) or -EFAULT (a fault
 * failed, out of memory included, as Linux 6.1 reports it).
 */
static int hmmu_hmm_vma_fault(unsigned long addr, unsigned long end, unsigned int required,
			      struct hmmu_mm_walk *walk)
{
	struct hmmu_hmm_walk *hw = walk->private;
	unsigned int flags = HMMU_FAULT_FLAG_REMOTE;

	hw->last = addr;
	if (required & HMMU_NEED_WRITE_FAULT) {
		if (!(walk->vma->vm_flags & HMMU_VM_WRITE))
			return -EPERM;
		flags |= HMMU_FAULT_FLAG_WRITE;
	}
	for (; addr < end; addr += HMMU_PAGE_SIZE)
		if (hmmu_handle_mm_fault(walk->vma, addr, flags) & HMMU_VM_FAULT_ERROR)
			return -EFAULT;
	return -EBUSY;
}

/* ------------------------------------------------------------------ */
/* PTE level                                                           */
/* ------------------------------------------------------------------ */

/*
 * A non-present, non-none PTE (table lock held): an own device-private
 * page is reported; anything else is 0 unless a fault is required, then
 * faulted (foreign device-private, device-exclusive), waited for
 * (migration) or refused (-EFAULT).
 */
static int hmmu_hmm_handle_swp(const struct hmmu_hmm_walk *hw, hmmu_pte_t e, unsigned long *hmm_pfn)
{
	struct hmmu_swp_entry se = hmmu_pte_to_swp_entry(e);
	unsigned int required;

	if (hmmu_is_device_private_entry(se) &&
	    hmmu_pfn_to_page(se.pfn)->pgmap->owner == hw->range->dev_private_owner) {
		/* Q1: reported as it is, whatever the request. */
		*hmm_pfn = se.pfn | HMMU_PFN_VALID |
			   (se.type == HMMU_SWP_DEVICE_PRIVATE_WRITE ? HMMU_PFN_WRITE : 0);
		return 0;
	}
	required = hmmu_pte_need_fault(hw, *hmm_pfn, 0);
	if (!required) {
		*hmm_pfn = 0;
		return 0;
	}
	if (hmmu_is_device_private_entry(se) || hmmu_is_device_exclusive_entry(se))
		return (int)required;
	return hmmu_is_migration_entry(se) ? HMMU_NEED_MIGRATION_WAIT : -EFAULT;
}

/*
 * One PTE @e (table lock held): write the output into *@hmm_pfn and return
 * 0, or return what the page needs (HMMU_NEED_* bits) or -EFAULT.
 */
static int hmmu_hmm_handle_pte(const struct hmmu_hmm_walk *hw, hmmu_pte_t e, unsigned long *hmm_pfn)
{
	unsigned long cpu_flags;
	unsigned int required;

	if (hmmu_pte_none(e)) {
		required = hmmu_pte_need_fault(hw, *hmm_pfn, 0);
		if (!required)
			*hmm_pfn = 0;
		return (int)required;
	}
	if (!hmmu_pte_present(e))
		return hmmu_hmm_handle_swp(hw, e, hmm_pfn);
	cpu_flags = HMMU_PFN_VALID | (hmmu_pte_write(e) ? HMMU_PFN_WRITE : 0);
	required = hmmu_pte_need_fault(hw, *hmm_pfn, cpu_flags);
	if (required)
		return (int)required;
	if (hmmu_pte_special(e) && !hmmu_is_zero_pfn(hmmu_pte_pfn(e))) {
		/* No struct page behind it: nothing a device may use. */
		if (hmmu_pte_need_fault(hw, *hmm_pfn, 0))
			return -EFAULT;
		*hmm_pfn = HMMU_PFN_ERROR;
		return 0;
	}
	*hmm_pfn = hmmu_pte_pfn(e) | cpu_flags;
	return 0;
}

/*
 * pte_range: the run [addr, end) of one PTE table, under its lock.  The
 * first page needing something ends the run: Q2, the rest of the run is
 * faulted with that page's requirement.
 */
static int hmmu_hmm_pte_range(hmmu_pte_t *ptep, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_hmm_walk *hw = walk->private;
	unsigned long *hmm_pfn = hmmu_hmm_pfns(hw, addr);
	int need = 0;

	hmmu_pt_lock(walk->pt);
	for (; addr < end; addr += HMMU_PAGE_SIZE, ptep++, hmm_pfn++) {
		need = hmmu_hmm_handle_pte(hw, hmmu_pte_read(ptep), hmm_pfn);
		if (need)
			break;
	}
	if (need == HMMU_NEED_MIGRATION_WAIT) {
		hw->last = addr;
		hmmu_migration_entry_wait(walk->pt, ptep);	/* drops the ptl */
		return -EBUSY;
	}
	hmmu_pt_unlock(walk->pt);
	return need > 0 ? hmmu_hmm_vma_fault(addr, end, (unsigned int)need, walk) : need;
}

/* ------------------------------------------------------------------ */
/* Holes, huge leaves, hugetlb                                         */
/* ------------------------------------------------------------------ */

/* CPU flags of a present leaf of @order pages. */
static unsigned long hmmu_hmm_leaf_flags(hmmu_pte_t e, unsigned int order)
{
	return HMMU_PFN_VALID | (hmmu_pte_write(e) ? HMMU_PFN_WRITE : 0) |
	       ((unsigned long)order << HMMU_PFN_ORDER_SHIFT);
}

/* Outputs of [addr, end) inside the 2 MiB leaf @e. */
static void hmmu_hmm_fill_leaf(struct hmmu_hmm_walk *hw, unsigned long addr, unsigned long end, hmmu_pte_t e,
			       unsigned long cpu_flags)
{
	unsigned long pfn = hmmu_pte_pfn(e) + ((addr & ~HMMU_PMD_MASK) >> HMMU_PAGE_SHIFT);
	unsigned long *pfns = hmmu_hmm_pfns(hw, addr);

	for (; addr < end; addr += HMMU_PAGE_SIZE)
		*pfns++ = pfn++ | cpu_flags;
}

/*
 * The part [addr, end) of one hugetlb page whose PMD entry is *@pmdp (or
 * none, @pmdp NULL: no table).  Q4: only the first entry's request counts.
 * Takes the PMD table's lock to read the entry.  An empty huge entry gives
 * 0 and follows Q4 whether or not its table exists (6.1 gave the order bits
 * without VALID when it did, and ORed all requests when it did not: an
 * accident of its walker that no caller can rely on).
 */
static int hmmu_hmm_hugetlb_page(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end,
				 struct hmmu_mm_walk *walk)
{
	struct hmmu_hmm_walk *hw = walk->private;
	unsigned long cpu_flags = 0;
	unsigned int required;
	hmmu_pte_t e = 0;

	if (pmdp) {
		hmmu_pt_lock(walk->pt);
		e = hmmu_pte_read(pmdp);
	}
	if (hmmu_pmd_leaf(e))
		cpu_flags = hmmu_hmm_leaf_flags(e, HMMU_PMD_ORDER);
	required = hmmu_pte_need_fault(hw, *hmmu_hmm_pfns(hw, addr), cpu_flags);
	if (!required && cpu_flags)
		hmmu_hmm_fill_leaf(hw, addr, end, e, cpu_flags);
	else if (!required)
		hmmu_hmm_fill(hw, addr, end, 0);
	if (pmdp)
		hmmu_pt_unlock(walk->pt);
	return required ? hmmu_hmm_vma_fault(addr, end, required, walk) : 0;
}

/* A hole of a hugetlb VMA: each 2 MiB page of it on its own. */
static int hmmu_hmm_hugetlb_hole(unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	int ret = 0;

	while (addr < end && !ret) {
		unsigned long next = HMMU_MIN((addr & HMMU_PMD_MASK) + HMMU_PMD_SIZE, end);

		ret = hmmu_hmm_hugetlb_page(NULL, addr, next, walk);
		addr = next;
	}
	return ret;
}

/*
 * pte_hole: no VMA (depth -1) -> ERROR, or -EFAULT if a fault is required;
 * no table inside a VMA -> 0, or fault the whole hole.
 */
static int hmmu_hmm_pte_hole(unsigned long addr, unsigned long end, int depth, struct hmmu_mm_walk *walk)
{
	struct hmmu_hmm_walk *hw = walk->private;
	unsigned int required;

	if (walk->vma && hmmu_vma_is_hugetlb(walk->vma))
		return hmmu_hmm_hugetlb_hole(addr, end, walk);
	required = hmmu_range_need_fault(hw, hmmu_hmm_pfns(hw, addr), (end - addr) >> HMMU_PAGE_SHIFT, 0);
	if (!walk->vma) {
		if (required)
			return -EFAULT;
		hmmu_hmm_fill(hw, addr, end, HMMU_PFN_ERROR);
		return 0;
	}
	if (required)
		return hmmu_hmm_vma_fault(addr, end, required, walk);
	hmmu_hmm_fill(hw, addr, end, 0);
	return 0;
}

/*
 * A non-present PMD-level entry: a migration entry is waited for if a
 * fault is required (else 0); anything else is ERROR (-EFAULT if a fault
 * is required).
 */
static int hmmu_hmm_pmd_swp(hmmu_pte_t *pmdp, hmmu_pte_t pmd, unsigned long addr, unsigned long end,
			    struct hmmu_mm_walk *walk)
{
	struct hmmu_hmm_walk *hw = walk->private;
	unsigned int required = hmmu_range_need_fault(hw, hmmu_hmm_pfns(hw, addr),
						      (end - addr) >> HMMU_PAGE_SHIFT, 0);

	if (!hmmu_is_migration_entry(hmmu_pte_to_swp_entry(pmd))) {
		if (required)
			return -EFAULT;
		hmmu_hmm_fill(hw, addr, end, HMMU_PFN_ERROR);
		return 0;
	}
	if (!required) {
		hmmu_hmm_fill(hw, addr, end, 0);
		return 0;
	}
	hw->last = addr;
	hmmu_pt_lock(walk->pt);
	if (hmmu_pte_read(pmdp) == pmd)
		hmmu_migration_entry_wait(walk->pt, pmdp);	/* drops the ptl */
	else
		hmmu_pt_unlock(walk->pt);
	return -EBUSY;
}

/*
 * pmd_entry: a 2 MiB leaf or a typed entry at PMD level.  Read without
 * the PMD lock (as Linux does for transparent huge pages); an entry that
 * has become a table or none is handed back to the walker.
 */
static int hmmu_hmm_pmd_entry(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_hmm_walk *hw = walk->private;
	hmmu_pte_t pmd = __atomic_load_n(pmdp, __ATOMIC_ACQUIRE);
	unsigned long cpu_flags;
	unsigned int required;

	if (hmmu_vma_is_hugetlb(walk->vma))
		return hmmu_hmm_hugetlb_page(pmdp, addr, end, walk);
	if (hmmu_pte_none(pmd) || hmmu_pte_table(pmd)) {
		walk->action = HMMU_WALK_DESCEND;	/* split or zapped meanwhile */
		return 0;
	}
	if (!hmmu_pte_present(pmd))
		return hmmu_hmm_pmd_swp(pmdp, pmd, addr, end, walk);
	cpu_flags = hmmu_hmm_leaf_flags(pmd, HMMU_PMD_ORDER);
	required = hmmu_range_need_fault(hw, hmmu_hmm_pfns(hw, addr), (end - addr) >> HMMU_PAGE_SHIFT, cpu_flags);
	if (required)
		return hmmu_hmm_vma_fault(addr, end, required, walk);
	hmmu_hmm_fill_leaf(hw, addr, end, pmd, cpu_flags);
	return 0;
}

/*
 * test_walk: IO and PFNMAP VMAs and VMAs without read permission are not
 * walked: ERROR, or -EFAULT if any page of the part requires a fault.
 */
static int hmmu_hmm_test_walk(unsigned long start, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_hmm_walk *hw = walk->private;
	unsigned long vm_flags = walk->vma->vm_flags;

	if (!(vm_flags & (HMMU_VM_IO | HMMU_VM_PFNMAP)) && (vm_flags & HMMU_VM_READ))
		return 0;
	if (hmmu_range_need_fault(hw, hmmu_hmm_pfns(hw, start), (end - start) >> HMMU_PAGE_SHIFT, 0))
		return -EFAULT;
	hmmu_hmm_fill(hw, start, end, HMMU_PFN_ERROR);
	return 1;
}

static const struct hmmu_walk_ops hmmu_hmm_walk_ops = {
	.test_walk = hmmu_hmm_test_walk,
	.pmd_entry = hmmu_hmm_pmd_entry,
	.pte_range = hmmu_hmm_pte_range,
	.pte_hole = hmmu_hmm_pte_hole,
};

/* ------------------------------------------------------------------ */
/* The entry point                                                     */
/* ------------------------------------------------------------------ */

static int hmmu_range_check(const struct hmmu_range *range)
{
	if (!range || !range->notifier || !range->notifier->mm || !range->hmm_pfns)
		return -EINVAL;
	if ((range->start | range->end) & ~HMMU_PAGE_MASK || range->start >= range->end ||
	    range->end > HMMU_TASK_SIZE)
		return -EINVAL;
	return 0;
}

static uint64_t hmmu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The passes of one call: restart at hw->last after each -EBUSY pass,
 * until the sequence changes or the retry bound passes (-EBUSY then).
 * Context: as hmmu_range_fault().
 */
static int hmmu_range_fault_passes(struct hmmu_hmm_walk *hw)
{
	const struct hmmu_range *range = hw->range;
	uint64_t deadline = hmmu_now_ms() + hmmu_retry_timeout_ms();
	int ret;

	for (;;) {
		if (hmmu_interval_check_retry(range->notifier, range->notifier_seq))
			return -EBUSY;
		ret = hmmu_walk_page_range(range->notifier->mm, hw->last, range->end, &hmmu_hmm_walk_ops, hw);
		if (ret != -EBUSY || hmmu_now_ms() >= deadline)
			return ret;
		hmmu_count(HMMU_STAT_RANGE_FAULT_RESTART);
	}
}

/*
 * Context: the caller holds the mmap_lock of range->notifier->mm for read
 * (asserted) and a user reference on it; may sleep (faults, migration
 * waits, migrate_to_ram).  Errors: see include/hmmu/hmm.h.
 */
int hmmu_range_fault(struct hmmu_range *range)
{
	struct hmmu_hmm_walk hw = { .range = range };
	int ret = hmmu_range_check(range);

	if (ret)
		return ret;
	hmmu_mmap_assert_locked(range->notifier->mm);
	hmmu_count(HMMU_STAT_RANGE_FAULT);
	hw.last = range->start;
	hw.may_fault = (range->default_flags | range->pfn_flags_mask) & HMMU_PFN_REQ_FAULT;
	ret = hmmu_range_fault_passes(&hw);
	if (ret == -EBUSY)
		hmmu_count(HMMU_STAT_RANGE_FAULT_RETRY);
	return ret;
}
