// SPDX-License-Identifier: MIT
/*
 * Page aging: test and clear the accessed (young) bits of the CPU entries
 * and, through the notifier young ops, of the secondary MMUs.
 */
#include "internal.h"

struct hmmu_age {
	unsigned int flags;	/* HMMU_AGE_* */
	long young;		/* pages found young */
};

/*
 * Age one present entry mapping [addr, end) (PTE or huge PMD) of which
 * @npages pages lie in the range asked; its lock held.  The entry has one
 * young bit, so a huge one is aged whole, but only the pages asked count.
 */
static void hmmu_age_entry(struct hmmu_mm_walk *walk, hmmu_pte_t *ep, unsigned long addr, unsigned long end,
			   unsigned long npages)
{
	struct hmmu_age *age = walk->private;
	hmmu_pte_t e = hmmu_pte_read(ep);
	int young = hmmu_pte_young(e);

	if (!hmmu_pte_present(e) || hmmu_pte_special(e))
		return;
	if (age->flags & HMMU_AGE_TEST) {
		young |= hmmu_notifier_test_young(walk->mm, addr);
	} else {
		if (young)
			hmmu_pte_set(walk->pt, ep, e & ~HMMU_PTE_YOUNG);
		if (age->flags & HMMU_AGE_NOFLUSH)
			young |= hmmu_notifier_clear_young(walk->mm, addr, end);
		else
			young |= hmmu_notifier_clear_flush_young(walk->mm, addr, end);
	}
	if (young)
		age->young += (long)npages;
}

static int hmmu_age_pte_range(hmmu_pte_t *ptep, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	hmmu_pt_lock(walk->pt);
	for (; addr < end; addr += HMMU_PAGE_SIZE, ptep++)
		hmmu_age_entry(walk, ptep, addr, addr + HMMU_PAGE_SIZE, 1);
	hmmu_pt_unlock(walk->pt);
	return 0;
}

static int hmmu_age_pmd_entry(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	unsigned long haddr = addr & HMMU_PMD_MASK;

	hmmu_pt_lock(walk->pt);
	if (hmmu_pmd_leaf(hmmu_pte_read(pmdp)))
		hmmu_age_entry(walk, pmdp, haddr, haddr + HMMU_PMD_SIZE, (end - addr) >> HMMU_PAGE_SHIFT);
	hmmu_pt_unlock(walk->pt);
	return 0;
}

static const struct hmmu_walk_ops hmmu_age_ops = {
	.pmd_entry = hmmu_age_pmd_entry,
	.pte_range = hmmu_age_pte_range,
};

long hmmu_mm_age(struct hmmu_mm *mm, unsigned long start, unsigned long end, unsigned int flags)
{
	struct hmmu_age age = { .flags = flags };

	if (!mm || start >= end || end > HMMU_TASK_SIZE || (start | end) & ~HMMU_PAGE_MASK ||
	    flags & ~(HMMU_AGE_NOFLUSH | HMMU_AGE_TEST))
		return -EINVAL;
	hmmu_mmap_read_lock(mm);
	hmmu_walk_page_range(mm, start, end, &hmmu_age_ops, &age);
	hmmu_mmap_read_unlock(mm);
	return age.young;
}
