// SPDX-License-Identifier: MIT
/*
 * The page-table walker: one descent for every range operation, with a
 * callback per level (see struct hmmu_walk_ops in internal.h).
 */
#include "internal.h"

static int hmmu_walk_level(struct hmmu_pt *pt, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk);

/* End of the entry at @level containing @addr, clamped to @end (0 = wrapped). */
static unsigned long hmmu_walk_next(unsigned long addr, unsigned long end, int level)
{
	unsigned long size = hmmu_pt_entry_size(level);
	unsigned long next = HMMU_ALIGN_DOWN(addr, size) + size;

	return next - 1 < end - 1 ? next : end;
}

static int hmmu_walk_hole(unsigned long addr, unsigned long end, int depth, struct hmmu_mm_walk *walk)
{
	return walk->ops->pte_hole ? walk->ops->pte_hole(addr, end, depth, walk) : 0;
}

/* A PMD entry that is not a table: give it to pmd_entry, descend if asked. */
static int hmmu_walk_pmd_leaf(struct hmmu_pt *pt, hmmu_pte_t *pmdp, unsigned long addr, unsigned long next,
			      struct hmmu_mm_walk *walk)
{
	int err;

	if (!walk->ops->pmd_entry)
		return 0;
	walk->pt = pt;
	walk->action = HMMU_WALK_CONTINUE;
	err = walk->ops->pmd_entry(pmdp, addr, next, walk);
	if (err || walk->action != HMMU_WALK_DESCEND)
		return err;
	if (!hmmu_pte_table(hmmu_pte_read(pmdp)))
		return hmmu_walk_hole(addr, next, 1, walk);
	return hmmu_walk_level(hmmu_pte_to_table(hmmu_pte_read(pmdp)), addr, next, walk);
}

static int hmmu_walk_entry(struct hmmu_pt *pt, unsigned long addr, unsigned long next, struct hmmu_mm_walk *walk)
{
	hmmu_pte_t *ep = &pt->e[hmmu_pt_index(addr, pt->level)];
	hmmu_pte_t e = __atomic_load_n(ep, __ATOMIC_ACQUIRE);

	if (hmmu_pte_none(e))
		return hmmu_walk_hole(addr, next, pt->level, walk);
	if (hmmu_pte_table(e))
		return hmmu_walk_level(hmmu_pte_to_table(e), addr, next, walk);
	/* Only the PMD level holds leaves or typed entries above PTEs. */
	HMMU_BUG_ON(pt->level != 1);
	return hmmu_walk_pmd_leaf(pt, ep, addr, next, walk);
}

/* Walk [addr, end), which lies inside the range @pt maps. */
static int hmmu_walk_level(struct hmmu_pt *pt, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	int err = 0;

	if (pt->level == 0) {
		if (!walk->ops->pte_range)
			return 0;
		walk->pt = pt;
		return walk->ops->pte_range(&pt->e[hmmu_pt_index(addr, 0)], addr, end, walk);
	}
	while (addr < end && !err) {
		unsigned long next = hmmu_walk_next(addr, end, pt->level);

		err = hmmu_walk_entry(pt, addr, next, walk);
		addr = next;
	}
	return err;
}

int hmmu_walk_page_range_novma(struct hmmu_mm *mm, unsigned long start, unsigned long end,
			       const struct hmmu_walk_ops *ops, void *private)
{
	struct hmmu_mm_walk walk = { .ops = ops, .mm = mm, .private = private };

	/* No lock assertion: reverse-map walks come here without the mmap_lock. */
	if (start >= end || end > HMMU_TASK_SIZE)
		return -EINVAL;
	return hmmu_walk_level(mm->pgd, start, end, &walk);
}

/* One VMA's part [start, end): test_walk decides, then the tables. */
static int hmmu_walk_vma(struct hmmu_vma *vma, unsigned long start, unsigned long end, struct hmmu_mm_walk *walk)
{
	int err = 0;

	walk->vma = vma;
	if (walk->ops->test_walk)
		err = walk->ops->test_walk(start, end, walk);
	if (err)
		return err > 0 ? 0 : err;
	return hmmu_walk_level(walk->mm->pgd, start, end, walk);
}

int hmmu_walk_page_range(struct hmmu_mm *mm, unsigned long start, unsigned long end,
			 const struct hmmu_walk_ops *ops, void *private)
{
	struct hmmu_mm_walk walk = { .ops = ops, .mm = mm, .private = private };
	struct hmmu_vma *vma;
	int err = 0;

	if (start >= end || end > HMMU_TASK_SIZE)
		return -EINVAL;
	hmmu_mmap_assert_locked(mm);
	vma = hmmu_find_vma(mm, start);
	while (start < end && !err) {
		if (!vma || vma->vm_start >= end) {
			walk.vma = NULL;
			return hmmu_walk_hole(start, end, -1, &walk);
		}
		if (start < vma->vm_start) {
			walk.vma = NULL;
			err = hmmu_walk_hole(start, vma->vm_start, -1, &walk);
			start = vma->vm_start;
			continue;
		}
		err = hmmu_walk_vma(vma, start, HMMU_MIN(end, vma->vm_end), &walk);
		start = HMMU_MIN(end, vma->vm_end);
		vma = hmmu_vma_next(vma);
	}
	return err;
}
