// SPDX-License-Identifier: MIT
/*
 * mremap: resize a mapping in place, or move it with its page-table
 * entries to another range of the same address space.
 *
 * hmmu_mremap() checks its arguments, takes the mmap_lock for write and
 * picks one of four outcomes, as Linux does:
 *
 *   shrink           the tail [old_addr + new_len, old_addr + old_len) is
 *                    unmapped (hmmu_do_munmap); old_addr is returned
 *   same size        nothing changes (unless MREMAP_FIXED)
 *   grow in place    the VMA ends at the old range's end and the range
 *                    above is free: the VMA is extended, then merged
 *   move             MREMAP_MAYMOVE: to a free range (hmmu_get_unmapped_area)
 *                    or, with MREMAP_FIXED, to new_addr after unmapping
 *                    whatever was there
 *
 * A move of [old_addr, old_addr + len) to new_addr:
 *   1. the old range is split off its VMA (hmmu_vma_split, which also
 *      splits a transparent huge leaf straddling a boundary), so that the
 *      unmap of step 5 needs no split and cannot fail;
 *   2. a copy of that VMA (hmmu_vma_dup: flags, file, driver, anon_vma) is
 *      linked at [new_addr, new_addr + new_len) with the same vm_pgoff, so
 *      every anonymous page keeps its index and reverse-map walks find it
 *      at the new address;
 *   3. every destination page table the move needs is allocated (and an
 *      empty PTE table left where a huge entry is to land is freed): a
 *      failure here undoes steps 1-2 and returns -ENOMEM, nothing moved;
 *   4. inside one UNMAP invalidation of the old range, a walk of the old
 *      range moves each non-none entry as it is (present, zero page,
 *      special, migration, device-private, device-exclusive: references
 *      and mapcounts stay with the entry, nothing is freed) under the
 *      source table's lock, then the destination's.  A huge PMD entry
 *      moves whole when source and destination are 2 MiB aligned (a
 *      transparent huge leaf takes one deposited PTE table along); else a
 *      transparent huge leaf is split first (its own CLEAR invalidation)
 *      and its PTEs move.  Hugetlb entries always move whole (their
 *      alignment is checked up front);
 *   5. the old range, now empty of entries, is unmapped (its VMA and page
 *      tables freed) and the new VMA is merged with its neighbours.
 *
 * Reverse map: the new VMA joins the old one's anon_vma at the tail of its
 * list, after the old VMA, so a walk in list order that misses an entry at
 * the old address (already moved) finds it at the new one.
 *
 * Locking: the mmap_lock held for write for the whole call; no fault, GUP,
 * walk or other mover runs meanwhile.  At most two page-table locks are
 * held at once, source then destination (the same table is locked once);
 * the only other path nesting two (fork) holds the same mmap_lock for
 * write, and reverse-map walkers hold one at a time.
 *
 * Deviations from Linux: an old length of 0 (Linux: duplicate a shared
 * mapping) is -EINVAL; the old range must lie inside one VMA even for a
 * shrink; hugetlb lengths must be 2 MiB aligned (Linux rounds them up) and
 * a hugetlb mapping may grow (Linux refuses, for its reservations).
 */
#include "internal.h"

#define HMMU_MREMAP_KNOWN (MREMAP_MAYMOVE | MREMAP_FIXED)

/* One mremap call, its lengths rounded up to pages. */
struct hmmu_mremap_req {
	struct hmmu_mm *mm;
	unsigned long old_addr, old_len, new_len, new_addr;
	int flags;
};

/* Moving the entries of [old_addr, old_addr + len) to new_addr: the walks' private data. */
struct hmmu_mremap_move {
	struct hmmu_mm *mm;
	unsigned long old_addr, new_addr, len;
};

/* Where the entry for @addr of the old range goes. */
static unsigned long hmmu_mremap_dst(const struct hmmu_mremap_move *m, unsigned long addr)
{
	return m->new_addr + (addr - m->old_addr);
}

/* Does the PMD entry over [addr, end) move whole to @to?  (Whole, aligned on both sides.) */
static bool hmmu_mremap_pmd_whole(unsigned long addr, unsigned long end, unsigned long to)
{
	return !((addr | to) & ~HMMU_PMD_MASK) && end - addr == HMMU_PMD_SIZE;
}

/* ------------------------------------------------------------------ */
/* Argument and VMA checks                                             */
/* ------------------------------------------------------------------ */

/*
 * MREMAP_FIXED's destination: page-aligned, inside the address space, not
 * overlapping the old range.  Context: none needed.  Returns 0 or -EINVAL.
 */
static int hmmu_mremap_fixed_check(const struct hmmu_mremap_req *r)
{
	if (r->new_addr & ~HMMU_PAGE_MASK || r->new_addr > HMMU_TASK_SIZE - r->new_len)
		return -EINVAL;
	if (r->new_addr < r->old_addr + r->old_len && r->old_addr < r->new_addr + r->new_len)
		return -EINVAL;
	return 0;
}

/*
 * Check the arguments that need no VMA and round both lengths up to
 * pages.  Context: none needed.  Returns 0 or -EINVAL (NULL @mm, unknown
 * flags, FIXED without MAYMOVE, unaligned @old_addr, a zero length, a
 * range past HMMU_TASK_SIZE, a bad fixed destination).
 */
static int hmmu_mremap_args_check(struct hmmu_mremap_req *r)
{
	if (!r->mm || r->flags & ~HMMU_MREMAP_KNOWN)
		return -EINVAL;
	if ((r->flags & MREMAP_FIXED) && !(r->flags & MREMAP_MAYMOVE))
		return -EINVAL;
	/* old_len 0 (Linux: duplicate a shared mapping) is not supported. */
	if (r->old_addr & ~HMMU_PAGE_MASK || !r->old_len || !r->new_len)
		return -EINVAL;
	if (r->old_len > HMMU_TASK_SIZE || r->new_len > HMMU_TASK_SIZE)
		return -EINVAL;
	r->old_len = HMMU_ALIGN_UP(r->old_len, HMMU_PAGE_SIZE);
	r->new_len = HMMU_ALIGN_UP(r->new_len, HMMU_PAGE_SIZE);
	if (r->old_addr > HMMU_TASK_SIZE - r->old_len)
		return -EINVAL;
	return r->flags & MREMAP_FIXED ? hmmu_mremap_fixed_check(r) : 0;
}

/*
 * The VMA holding the old range, after the checks that need it.  Context:
 * mmap_lock held (write).  Sets *@vmap.  Returns 0, -EFAULT (no VMA at
 * old_addr, the old range leaves it, a DONTEXPAND or PFNMAP VMA would
 * grow) or -EINVAL (hugetlb VMA with an address or length that is not
 * 2 MiB aligned).
 */
static int hmmu_mremap_vma_check(const struct hmmu_mremap_req *r, struct hmmu_vma **vmap)
{
	struct hmmu_vma *vma = hmmu_vma_lookup(r->mm, r->old_addr);
	unsigned long huge = r->old_addr | r->old_len | r->new_len;

	if (!vma)
		return -EFAULT;
	if (r->flags & MREMAP_FIXED)
		huge |= r->new_addr;
	if (hmmu_vma_is_hugetlb(vma) && huge & ~HMMU_PMD_MASK)
		return -EINVAL;
	if (r->old_len > vma->vm_end - r->old_addr)
		return -EFAULT;
	if (r->new_len > r->old_len && vma->vm_flags & (HMMU_VM_DONTEXPAND | HMMU_VM_PFNMAP))
		return -EFAULT;
	*vmap = vma;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Destination page tables                                             */
/* ------------------------------------------------------------------ */

/*
 * Give the destination of the old range's [addr, end) its PTE tables and
 * the tables above them.  Context: mmap_lock held for write, no ptl.
 * Returns 0 or -ENOMEM (tables allocated so far stay; the caller frees
 * them with hmmu_free_pgtables()).
 */
static int hmmu_mremap_dst_tables_alloc(struct hmmu_mremap_move *m, unsigned long addr, unsigned long end)
{
	unsigned long to = hmmu_mremap_dst(m, addr), to_end = to + (end - addr);
	struct hmmu_pt *pmd_pt;
	hmmu_pte_t *pmdp;

	for (; to < to_end; to = HMMU_ALIGN_DOWN(to, HMMU_PMD_SIZE) + HMMU_PMD_SIZE) {
		pmdp = hmmu_pmd_lookup(m->mm, to, true, &pmd_pt);
		if (!pmdp || hmmu_pte_table_populate(m->mm, pmd_pt, pmdp))
			return -ENOMEM;
		/* The destination has no VMA but the new one: no leaf there. */
		HMMU_BUG_ON(!hmmu_pte_table(hmmu_pte_read(pmdp)));
	}
	return 0;
}

/*
 * Does the run [addr, end) at @ptep hold an entry?  Read without the ptl:
 * an entry goes from none to used only under the mmap_lock, which the
 * caller holds for write.
 */
static bool hmmu_pte_run_used(const hmmu_pte_t *ptep, unsigned long addr, unsigned long end)
{
	for (; addr < end; addr += HMMU_PAGE_SIZE, ptep++)
		if (!hmmu_pte_none(hmmu_pte_read(ptep)))
			return true;
	return false;
}

/*
 * Pre-allocation walk, PTE level: a run with entries needs destination PTE
 * tables.  Context: mmap_lock held for write.  Returns 0 or -ENOMEM.
 */
static int hmmu_pte_range_prealloc(hmmu_pte_t *ptep, unsigned long addr, unsigned long end,
				   struct hmmu_mm_walk *walk)
{
	if (!hmmu_pte_run_used(ptep, addr, end))
		return 0;
	return hmmu_mremap_dst_tables_alloc(walk->private, addr, end);
}

/*
 * Free the PTE table the destination PMD entry *@pmdp points at, if any:
 * an empty leftover (an unmap of a range without VMAs frees no tables)
 * that would keep a huge entry from moving there whole.  It is empty: no
 * VMA covered it before the new one, which has no entries yet.  Context:
 * mmap_lock held for write (tables may be freed), no ptl held.
 */
static void hmmu_pte_table_drop_empty(struct hmmu_mm *mm, struct hmmu_pt *pmd_pt, hmmu_pte_t *pmdp)
{
	hmmu_pte_t pmd = hmmu_pte_read(pmdp);

	if (!hmmu_pte_table(pmd))
		return;
	HMMU_BUG_ON(atomic_load(&hmmu_pte_to_table(pmd)->nr_used));
	hmmu_pt_lock(pmd_pt);
	hmmu_pte_set(pmd_pt, pmdp, 0);
	hmmu_pt_unlock(pmd_pt);
	hmmu_pt_free(mm, hmmu_pte_to_table(pmd));
}

/*
 * Pre-allocation walk, PMD level (a huge leaf or typed entry): a PMD entry
 * that moves whole needs the destination PMD table, with a none entry
 * there; one that will be split needs destination PTE tables.  Context:
 * mmap_lock held for write.  Returns 0 or -ENOMEM.
 */
static int hmmu_pmd_entry_prealloc(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end,
				   struct hmmu_mm_walk *walk)
{
	struct hmmu_mremap_move *m = walk->private;
	unsigned long to = hmmu_mremap_dst(m, addr);
	struct hmmu_pt *pmd_pt;
	hmmu_pte_t *dpmdp;

	if (!hmmu_mremap_pmd_whole(addr, end, to))
		return hmmu_mremap_dst_tables_alloc(m, addr, end);
	dpmdp = hmmu_pmd_lookup(m->mm, to, true, &pmd_pt);
	if (!dpmdp)
		return -ENOMEM;
	hmmu_pte_table_drop_empty(m->mm, pmd_pt, dpmdp);
	return 0;
}

static const struct hmmu_walk_ops hmmu_mremap_prealloc_ops = {
	.pmd_entry = hmmu_pmd_entry_prealloc,
	.pte_range = hmmu_pte_range_prealloc,
};

/* ------------------------------------------------------------------ */
/* Moving entries                                                      */
/* ------------------------------------------------------------------ */

/*
 * Lock the tables @src and @dst (once if they are one), lower address
 * first: two movers never hold them in opposite orders (the mmap_lock held
 * for write already serialises movers; the order keeps ThreadSanitizer's
 * lock graph, and any future nesting, acyclic).
 */
static void hmmu_mremap_lock_pair(struct hmmu_pt *src, struct hmmu_pt *dst)
{
	struct hmmu_pt *first = src < dst ? src : dst, *second = src < dst ? dst : src;

	hmmu_pt_lock(first);
	if (second != first)
		hmmu_pt_lock(second);
}

static void hmmu_mremap_unlock_pair(struct hmmu_pt *src, struct hmmu_pt *dst)
{
	if (dst != src)
		hmmu_pt_unlock(dst);
	hmmu_pt_unlock(src);
}

/* The pre-allocated destination PTE table mapping @to (mmap_lock held for write). */
static struct hmmu_pt *hmmu_mremap_dst_table(struct hmmu_mm *mm, unsigned long to)
{
	struct hmmu_pt *pmd_pt;
	hmmu_pte_t *pmdp = hmmu_pmd_lookup(mm, to, false, &pmd_pt);
	hmmu_pte_t pmd = pmdp ? __atomic_load_n(pmdp, __ATOMIC_ACQUIRE) : 0;

	HMMU_BUG_ON(!hmmu_pte_table(pmd));
	return hmmu_pte_to_table(pmd);
}

/*
 * Move the non-none entries of [addr, end) at @ptep (in walk->pt) to @to,
 * a run that lies in one destination table, under both tables' locks.
 * Each entry moves as it is, with its reference and mapcount; both tables'
 * nr_used follow.  The secondary-TLB hook runs for the run under the
 * locks, after its entries are cleared.  Context: mmap_lock held for
 * write, inside the move's UNMAP invalidation, no ptl held.
 */
static void hmmu_pte_run_move(struct hmmu_mm_walk *walk, hmmu_pte_t *ptep, unsigned long addr,
			      unsigned long end, unsigned long to)
{
	struct hmmu_pt *src = walk->pt, *dst;
	unsigned long start = addr;
	bool moved = false;

	/* An empty run may have no destination table (none was pre-allocated). */
	if (!hmmu_pte_run_used(ptep, addr, end))
		return;
	dst = hmmu_mremap_dst_table(walk->mm, to);
	hmmu_mremap_lock_pair(src, dst);
	for (; addr < end; addr += HMMU_PAGE_SIZE, ptep++, to += HMMU_PAGE_SIZE) {
		hmmu_pte_t e = hmmu_pte_read(ptep), *dptep = &dst->e[hmmu_pt_index(to, 0)];

		if (hmmu_pte_none(e))
			continue;
		HMMU_BUG_ON(!hmmu_pte_none(hmmu_pte_read(dptep)));
		hmmu_pte_set(src, ptep, 0);
		hmmu_pte_set(dst, dptep, e);
		moved = true;
	}
	if (moved)
		hmmu_notifier_invalidate_range(walk->mm, start, end);
	hmmu_mremap_unlock_pair(src, dst);
}

/*
 * Move walk, PTE level: the run [addr, end) of one source table, cut where
 * its destination crosses a PMD boundary.  Context: mmap_lock held for
 * write, inside the move's UNMAP invalidation.  Returns 0 (cannot fail:
 * the destination tables exist).
 */
static int hmmu_pte_range_move(hmmu_pte_t *ptep, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_mremap_move *m = walk->private;
	unsigned long next, to;

	for (; addr < end; ptep += (next - addr) >> HMMU_PAGE_SHIFT, addr = next) {
		to = hmmu_mremap_dst(m, addr);
		next = HMMU_MIN(end, addr + (HMMU_ALIGN_DOWN(to, HMMU_PMD_SIZE) + HMMU_PMD_SIZE - to));
		hmmu_pte_run_move(walk, ptep, addr, next, to);
	}
	return 0;
}

/*
 * Move the PMD entry *@pmdp (a huge leaf or a typed entry of walk->pt) for
 * [addr, addr + 2 MiB) whole to the none PMD entry for @to: under both
 * PMD tables' locks (hmmu_mremap_lock_pair); a transparent huge
 * leaf's deposited PTE table moves along.  Context: mmap_lock held for
 * write, inside the move's invalidation, no ptl held.
 */
static void hmmu_pmd_move(struct hmmu_mm_walk *walk, hmmu_pte_t *pmdp, unsigned long addr, unsigned long to)
{
	struct hmmu_pt *src = walk->pt, *dst;
	hmmu_pte_t *dpmdp = hmmu_pmd_lookup(walk->mm, to, false, &dst), pmd;

	HMMU_BUG_ON(!dpmdp);	/* pre-allocated */
	hmmu_mremap_lock_pair(src, dst);
	pmd = hmmu_pte_read(pmdp);
	HMMU_BUG_ON(!hmmu_pte_none(hmmu_pte_read(dpmdp)) || hmmu_pte_table(pmd));
	hmmu_pte_set(src, pmdp, 0);
	hmmu_pte_set(dst, dpmdp, pmd);
	if (hmmu_pmd_leaf(pmd) && !hmmu_vma_is_hugetlb(walk->vma))
		hmmu_pgtable_deposit(dst, hmmu_pgtable_withdraw(src));
	hmmu_notifier_invalidate_range(walk->mm, addr, addr + HMMU_PMD_SIZE);
	hmmu_mremap_unlock_pair(src, dst);
}

/*
 * Move walk, PMD level (a huge leaf or a typed entry): move it whole when
 * aligned, else split the transparent huge leaf (inside its own CLEAR
 * invalidation, using its deposit) and let the walker move its PTEs.
 * Hugetlb entries are always aligned here, and no path makes typed PMD
 * entries outside hugetlb VMAs.  Context: mmap_lock held for write,
 * inside the move's invalidation.  Returns 0 (the split cannot fail).
 */
static int hmmu_pmd_entry_move(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_mremap_move *m = walk->private;
	unsigned long to = hmmu_mremap_dst(m, addr);

	if (hmmu_mremap_pmd_whole(addr, end, to)) {
		hmmu_pmd_move(walk, pmdp, addr, to);
		return 0;
	}
	HMMU_BUG_ON(hmmu_vma_is_hugetlb(walk->vma) || !hmmu_pmd_leaf(hmmu_pte_read(pmdp)));
	walk->action = HMMU_WALK_DESCEND;
	return hmmu_split_huge_pmd(walk->vma, walk->pt, pmdp, addr);
}

static const struct hmmu_walk_ops hmmu_mremap_move_ops = {
	.pmd_entry = hmmu_pmd_entry_move,
	.pte_range = hmmu_pte_range_move,
};

/*
 * Move every entry of the old range to the destination, inside one UNMAP
 * invalidation of the old range (as Linux's move_page_tables does).
 * Context: mmap_lock held for write; the destination tables exist.
 * Cannot fail.
 */
static void hmmu_mremap_entries_move(struct hmmu_mremap_move *m)
{
	struct hmmu_notifier_range range;
	int err;

	hmmu_notify_start(&range, HMMU_NOTIFY_UNMAP, m->mm, m->old_addr, m->old_addr + m->len);
	err = hmmu_walk_page_range(m->mm, m->old_addr, m->old_addr + m->len, &hmmu_mremap_move_ops, m);
	HMMU_BUG_ON(err);
	hmmu_notifier_invalidate_range_end(&range);
}

/* ------------------------------------------------------------------ */
/* VMAs                                                                */
/* ------------------------------------------------------------------ */

/*
 * Split *@vmap so that [start, end) (inside it) is one VMA, and point
 * *@vmap at it.  Context: mmap_lock held for write.  Returns 0 or -ENOMEM
 * (a split could not allocate; a first split that succeeded is merged
 * back where the VMAs allow it).
 */
static int hmmu_vma_isolate(struct hmmu_mm *mm, struct hmmu_vma **vmap, unsigned long start, unsigned long end)
{
	struct hmmu_vma *vma = *vmap;
	int err = 0;

	if (vma->vm_start < start) {
		err = hmmu_vma_split(mm, vma, start);
		if (err)
			return err;
		vma = hmmu_vma_next(vma);
	}
	if (vma->vm_end > end)
		err = hmmu_vma_split(mm, vma, end);
	if (err)
		vma = hmmu_vma_merge(mm, vma);
	*vmap = vma;
	return err;
}

/*
 * Undo a move whose destination tables could not be allocated: remove the
 * new VMA (its driver's close hook runs, balancing the open), free the
 * tables allocated for it, merge the old VMA back.  Context: mmap_lock
 * held for write; nothing has moved.
 */
static void hmmu_vma_move_undo(struct hmmu_mm *mm, struct hmmu_vma *vma, struct hmmu_vma *new_vma)
{
	unsigned long start = new_vma->vm_start, end = new_vma->vm_end;

	hmmu_vma_unlink(mm, new_vma);
	hmmu_vma_free(new_vma);
	hmmu_free_pgtables(mm, start, end);
	hmmu_vma_merge(mm, vma);
}

/*
 * Link a copy of @vma (flags, file, driver, anon_vma; the driver's open
 * hook runs) at [new_addr, new_addr + new_len), a free range, with @vma's
 * vm_pgoff: @vma starts at the old range, so every page keeps its index.
 * Context: mmap_lock held for write.  Returns the copy, or NULL when out
 * of memory.
 */
static struct hmmu_vma *hmmu_vma_copy_link(struct hmmu_mm *mm, const struct hmmu_vma *vma, unsigned long new_addr,
					   unsigned long new_len)
{
	struct hmmu_vma *new_vma = hmmu_vma_dup(mm, vma);

	if (!new_vma)
		return NULL;
	hmmu_vma_set_bounds(new_vma, new_addr, new_addr + new_len, vma->vm_pgoff);
	hmmu_vma_link(mm, new_vma);
	return new_vma;
}

/*
 * Move [old_addr, old_addr + len), inside @vma, to a new VMA at
 * [new_addr, new_addr + new_len) (new_len >= len: the rest is new, empty
 * memory of the same kind), a free range.  See the top of this file.
 * Context: mmap_lock held for write.  Returns new_addr or -ENOMEM (a VMA
 * or page table could not be allocated; nothing moved).
 */
static long hmmu_vma_move(struct hmmu_mm *mm, struct hmmu_vma *vma, unsigned long old_addr, unsigned long len,
			  unsigned long new_addr, unsigned long new_len)
{
	struct hmmu_mremap_move m = { .mm = mm, .old_addr = old_addr, .new_addr = new_addr, .len = len };
	struct hmmu_vma *new_vma;
	int err = hmmu_vma_isolate(mm, &vma, old_addr, old_addr + len);

	if (err)
		return err;
	new_vma = hmmu_vma_copy_link(mm, vma, new_addr, new_len);
	if (!new_vma) {
		hmmu_vma_merge(mm, vma);
		return -ENOMEM;
	}
	err = hmmu_walk_page_range(mm, old_addr, old_addr + len, &hmmu_mremap_prealloc_ops, &m);
	if (err) {
		hmmu_vma_move_undo(mm, vma, new_vma);
		return err;
	}
	hmmu_mremap_entries_move(&m);
	err = hmmu_do_munmap(mm, old_addr, old_addr + len);	/* one whole VMA: no split */
	HMMU_BUG_ON(err);
	hmmu_vma_merge(mm, new_vma);
	return (long)new_addr;
}

/*
 * Grow @vma in place when it ends at the old range's end and the range up
 * to old_addr + new_len is free and inside the address space: extend it,
 * then merge it with the VMA above if they are compatible.  Context:
 * mmap_lock held for write.  Returns whether it grew.
 */
static bool hmmu_vma_expand(const struct hmmu_mremap_req *r, struct hmmu_vma *vma)
{
	unsigned long new_end = r->old_addr + r->new_len;
	struct hmmu_vma *next;

	if (vma->vm_end != r->old_addr + r->old_len || r->new_len > HMMU_TASK_SIZE - r->old_addr)
		return false;
	next = hmmu_vma_next(vma);
	if (next && next->vm_start < new_end)
		return false;
	hmmu_vma_adjust(vma, vma->vm_start, new_end, vma->vm_pgoff);
	hmmu_vma_merge(r->mm, vma);
	return true;
}

/* ------------------------------------------------------------------ */
/* The cases                                                           */
/* ------------------------------------------------------------------ */

/*
 * A free range for the moved mapping, 2 MiB aligned for hugetlb.  Context:
 * mmap_lock held for write.  Returns its start or -ENOMEM.
 */
static long hmmu_mremap_area_get(const struct hmmu_mremap_req *r, const struct hmmu_vma *vma)
{
	long start;

	if (!hmmu_vma_is_hugetlb(vma))
		return hmmu_get_unmapped_area(r->mm, 0, r->new_len);
	start = hmmu_get_unmapped_area(r->mm, 0, r->new_len + HMMU_PMD_SIZE - HMMU_PAGE_SIZE);
	return start < 0 ? start : (long)HMMU_ALIGN_UP((unsigned long)start, HMMU_PMD_SIZE);
}

/*
 * MREMAP_FIXED: unmap the destination, and the old range's tail when
 * shrinking, then move what is left of the old range.  Context: mmap_lock
 * held for write; the arguments and VMA are checked.  Returns new_addr,
 * -ENOMEM (a split or allocation failed; the unmaps already done stay, as
 * in Linux) or -EINVAL (the destination would split a hugetlb page).
 */
static long hmmu_mremap_fixed(struct hmmu_mremap_req *r)
{
	struct hmmu_vma *vma;
	int err = hmmu_do_munmap(r->mm, r->new_addr, r->new_addr + r->new_len);

	if (!err && r->new_len < r->old_len) {
		err = hmmu_do_munmap(r->mm, r->old_addr + r->new_len, r->old_addr + r->old_len);
		r->old_len = r->new_len;
	}
	if (err)
		return err;
	/* The unmaps may have split the old VMA: find the part holding the old range. */
	vma = hmmu_vma_lookup(r->mm, r->old_addr);
	HMMU_BUG_ON(!vma || vma->vm_end < r->old_addr + r->old_len);
	return hmmu_vma_move(r->mm, vma, r->old_addr, r->old_len, r->new_addr, r->new_len);
}

/*
 * Everything after the argument checks.  Context: mmap_lock held for
 * write.  Returns the mapping's address or the errno hmmu_mremap()
 * documents.
 */
static long hmmu_mremap_locked(struct hmmu_mremap_req *r)
{
	struct hmmu_vma *vma;
	long ret = hmmu_mremap_vma_check(r, &vma);

	if (ret)
		return ret;
	if (r->flags & MREMAP_FIXED)
		return hmmu_mremap_fixed(r);
	if (r->new_len <= r->old_len) {
		if (r->new_len < r->old_len)
			ret = hmmu_do_munmap(r->mm, r->old_addr + r->new_len, r->old_addr + r->old_len);
		return ret ? ret : (long)r->old_addr;
	}
	if (hmmu_vma_expand(r, vma))
		return (long)r->old_addr;
	if (!(r->flags & MREMAP_MAYMOVE))
		return -ENOMEM;
	ret = hmmu_mremap_area_get(r, vma);
	if (ret < 0)
		return ret;
	return hmmu_vma_move(r->mm, vma, r->old_addr, r->old_len, (unsigned long)ret, r->new_len);
}

/*
 * Context: takes the mmap_lock for write; the caller holds a user
 * reference on @mm.  Errors: see include/hmmu/mm.h.
 */
long hmmu_mremap(struct hmmu_mm *mm, unsigned long old_addr, size_t old_len, size_t new_len, int flags,
		 unsigned long new_addr)
{
	struct hmmu_mremap_req r = {
		.mm = mm, .old_addr = old_addr, .old_len = old_len, .new_len = new_len,
		.new_addr = new_addr, .flags = flags,
	};
	long ret = hmmu_mremap_args_check(&r);

	if (ret)
		return ret;
	/* Moving would put frames behind addresses they do not belong to (docs/host.md). */
	if (mm->host)
		return -EOPNOTSUPP;
	hmmu_mmap_write_lock(mm);
	ret = hmmu_mremap_locked(&r);
	hmmu_mmap_write_unlock(mm);
	return ret;
}
