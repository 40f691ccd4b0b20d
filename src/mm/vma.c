// SPDX-License-Identifier: MIT
/*
 * The VMA set of an address space: a red-black tree keyed by vm_start and
 * augmented with the largest free gap below any VMA of a subtree (so a free
 * range is found in O(log n)), plus a list in address order for
 * neighbours and iteration.  Every change holds the mmap_lock for write;
 * lookups hold it for read.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static inline struct hmmu_vma *hmmu_rb_vma(const struct hmmu_rb_node *n)
{
	return n ? hmmu_container_of(n, struct hmmu_vma, vm_rb) : NULL;
}

struct hmmu_vma *hmmu_vma_prev(struct hmmu_vma *vma)
{
	if (vma->vm_list.prev == &vma->vm_mm->vma_list)
		return NULL;
	return cds_list_entry(vma->vm_list.prev, struct hmmu_vma, vm_list);
}

struct hmmu_vma *hmmu_vma_next(struct hmmu_vma *vma)
{
	if (vma->vm_list.next == &vma->vm_mm->vma_list)
		return NULL;
	return cds_list_entry(vma->vm_list.next, struct hmmu_vma, vm_list);
}

/* Free bytes between the previous VMA (or the lowest address) and @vma. */
static unsigned long hmmu_vma_gap_before(struct hmmu_vma *vma)
{
	struct hmmu_vma *prev = hmmu_vma_prev(vma);
	unsigned long low = HMMU_MAX(prev ? prev->vm_end : 0, HMMU_MMAP_MIN_ADDR);

	return vma->vm_start > low ? vma->vm_start - low : 0;
}

static unsigned long hmmu_vma_subtree_gap(const struct hmmu_rb_node *n)
{
	return n ? hmmu_rb_vma(n)->rb_subtree_gap : 0;
}

/* Augmentation callback: recompute one node's subtree gap. */
static bool hmmu_vma_gap_update(struct hmmu_rb_node *n)
{
	struct hmmu_vma *vma = hmmu_rb_vma(n);
	unsigned long gap = hmmu_vma_gap_before(vma);

	gap = HMMU_MAX(gap, hmmu_vma_subtree_gap(n->left));
	gap = HMMU_MAX(gap, hmmu_vma_subtree_gap(n->right));
	if (gap == vma->rb_subtree_gap)
		return false;
	vma->rb_subtree_gap = gap;
	return true;
}

/*
 * Recompute @vma's subtree gap and that of every ancestor, without stopping
 * early.  A VMA's gap depends on its list predecessor, which link and
 * unlink change before the tree is rebalanced: a rotation may recompute the
 * successor's node with its new gap while ancestors above the rotation keep
 * the old one, so stopping at the first unchanged node could leave them
 * stale.
 */
static void hmmu_vma_gap_update_to_root(struct hmmu_vma *vma)
{
	for (struct hmmu_rb_node *n = &vma->vm_rb; n; n = hmmu_rb_parent(n))
		hmmu_vma_gap_update(n);
}

struct hmmu_vma *hmmu_vma_alloc(struct hmmu_mm *mm)
{
	struct hmmu_vma *vma = calloc(1, sizeof(*vma));

	if (vma) {
		vma->vm_mm = mm;
		CDS_INIT_LIST_HEAD(&vma->vm_list);
		CDS_INIT_LIST_HEAD(&vma->anon_vma_link);
	}
	return vma;
}

/*
 * Free a VMA that is not (or no longer) linked: the driver's close hook,
 * then its references on the anon_vma and the file.  Caller holds the
 * mmap_lock for write.
 */
void hmmu_vma_free(struct hmmu_vma *vma)
{
	if (vma->vm_ops && vma->vm_ops->close)
		vma->vm_ops->close(vma);
	if (vma->anon_vma)
		hmmu_anon_vma_detach(vma);
	if (vma->vm_file)
		hmmu_file_put(vma->vm_file);
	free(vma);
}

/*
 * A new VMA with @src's flags, object, driver and reverse map (split,
 * fork, mremap); the caller sets the range and links it.  The driver's
 * open hook runs.  NULL when out of memory.
 */
struct hmmu_vma *hmmu_vma_dup(struct hmmu_mm *mm, const struct hmmu_vma *src)
{
	struct hmmu_vma *vma = hmmu_vma_alloc(mm);

	if (!vma)
		return NULL;
	vma->vm_start = src->vm_start;
	vma->vm_end = src->vm_end;
	vma->vm_flags = src->vm_flags;
	vma->vm_pgoff = src->vm_pgoff;
	vma->vm_ops = src->vm_ops;
	vma->vm_private_data = src->vm_private_data;
	vma->vm_file = src->vm_file;
	if (vma->vm_file)
		hmmu_file_get(vma->vm_file);
	if (src->anon_vma)
		hmmu_anon_vma_attach(vma, src->anon_vma);
	if (vma->vm_ops && vma->vm_ops->open)
		vma->vm_ops->open(vma);
	return vma;
}

void hmmu_vma_link(struct hmmu_mm *mm, struct hmmu_vma *vma)
{
	struct hmmu_rb_node **link = &mm->mm_rb.node, *parent = NULL;
	struct cds_list_head *pred = &mm->vma_list;
	struct hmmu_vma *next;

	hmmu_mmap_assert_write_locked(mm);
	while (*link) {
		parent = *link;
		if (vma->vm_start < hmmu_rb_vma(parent)->vm_start) {
			link = &parent->left;
		} else {
			pred = &hmmu_rb_vma(parent)->vm_list;
			link = &parent->right;
		}
	}
	cds_list_add(&vma->vm_list, pred);
	vma->rb_subtree_gap = hmmu_vma_gap_before(vma);
	hmmu_rb_link(&vma->vm_rb, parent, link);
	hmmu_rb_insert(&mm->mm_rb, &vma->vm_rb, hmmu_vma_gap_update);
	next = hmmu_vma_next(vma);
	if (next)
		hmmu_vma_gap_update_to_root(next);	/* fix: not update_path (see above) */
	mm->map_count++;
}

void hmmu_vma_unlink(struct hmmu_mm *mm, struct hmmu_vma *vma)
{
	struct hmmu_vma *next = hmmu_vma_next(vma);

	hmmu_mmap_assert_write_locked(mm);
	cds_list_del(&vma->vm_list);
	hmmu_rb_erase(&mm->mm_rb, &vma->vm_rb, hmmu_vma_gap_update);
	if (next)
		hmmu_vma_gap_update_to_root(next);	/* fix: not update_path (see above) */
	mm->map_count--;
}

void hmmu_vma_set_bounds(struct hmmu_vma *vma, unsigned long start, unsigned long end, unsigned long pgoff)
{
	struct hmmu_anon_vma *av = vma->anon_vma;

	if (av)
		pthread_mutex_lock(&av->lock);
	vma->vm_start = start;
	vma->vm_end = end;
	vma->vm_pgoff = pgoff;
	if (av)
		pthread_mutex_unlock(&av->lock);
}

void hmmu_vma_adjust(struct hmmu_vma *vma, unsigned long start, unsigned long end, unsigned long pgoff)
{
	struct hmmu_vma *next = hmmu_vma_next(vma);

	hmmu_mmap_assert_write_locked(vma->vm_mm);
	hmmu_vma_set_bounds(vma, start, end, pgoff);
	hmmu_rb_update_path(&vma->vm_rb, hmmu_vma_gap_update);
	if (next)
		hmmu_rb_update_path(&next->vm_rb, hmmu_vma_gap_update);
}

struct hmmu_vma *hmmu_find_vma(struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_rb_node *n = mm ? mm->mm_rb.node : NULL;
	struct hmmu_vma *found = NULL;

	if (!mm)
		return NULL;
	hmmu_mmap_assert_locked(mm);
	while (n) {
		struct hmmu_vma *vma = hmmu_rb_vma(n);

		if (vma->vm_end > addr) {
			found = vma;
			if (vma->vm_start <= addr)
				break;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return found;
}

struct hmmu_vma *hmmu_vma_lookup(struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_vma *vma = hmmu_find_vma(mm, addr);

	return vma && vma->vm_start <= addr ? vma : NULL;
}

/* Lowest VMA with at least @len free bytes below it, or NULL. */
static struct hmmu_vma *hmmu_vma_find_gap(struct hmmu_mm *mm, unsigned long len)
{
	struct hmmu_rb_node *n = mm->mm_rb.node;

	if (hmmu_vma_subtree_gap(n) < len)
		return NULL;
	while (n) {
		if (hmmu_vma_subtree_gap(n->left) >= len)
			n = n->left;
		else if (hmmu_vma_gap_before(hmmu_rb_vma(n)) >= len)
			return hmmu_rb_vma(n);
		else
			n = n->right;
	}
	HMMU_BUG_ON(1);	/* the subtree gap promised a fit */
	return NULL;
}

long hmmu_get_unmapped_area(struct hmmu_mm *mm, unsigned long hint, unsigned long len)
{
	struct hmmu_vma *vma;
	unsigned long low;

	if (mm->host)
		return hmmu_host_unmapped_area(mm->host, hint, len);
	if (len > HMMU_TASK_SIZE - HMMU_MMAP_MIN_ADDR)
		return -ENOMEM;
	hint = HMMU_ALIGN_DOWN(hint, HMMU_PAGE_SIZE);
	if (hint >= HMMU_MMAP_MIN_ADDR && hint <= HMMU_TASK_SIZE - len) {
		vma = hmmu_find_vma(mm, hint);
		if (!vma || vma->vm_start >= hint + len)
			return (long)hint;
	}
	vma = hmmu_vma_find_gap(mm, len);
	if (vma) {
		struct hmmu_vma *prev = hmmu_vma_prev(vma);

		return (long)HMMU_MAX(prev ? prev->vm_end : 0, HMMU_MMAP_MIN_ADDR);
	}
	vma = cds_list_empty(&mm->vma_list) ? NULL
					    : cds_list_entry(mm->vma_list.prev, struct hmmu_vma, vm_list);
	low = HMMU_MAX(vma ? vma->vm_end : 0, HMMU_MMAP_MIN_ADDR);
	return HMMU_TASK_SIZE - low >= len ? (long)low : -ENOMEM;
}

/*
 * A huge PMD leaf never straddles two VMAs: split the one covering @addr,
 * if any, before a VMA boundary is put there (as Linux does when it adjusts
 * a VMA).
 */
static int hmmu_vma_split_huge_pmd_at(struct hmmu_vma *vma, unsigned long addr)
{
	struct hmmu_pt *pmd_pt;
	hmmu_pte_t *pmdp;

	if (!(addr & ~HMMU_PMD_MASK))
		return 0;
	pmdp = hmmu_pmd_lookup(vma->vm_mm, addr, false, &pmd_pt);
	if (!pmdp || !hmmu_pmd_leaf(hmmu_pte_read(pmdp)))
		return 0;
	return hmmu_split_huge_pmd(vma, pmd_pt, pmdp, addr);
}

/* -EINVAL: @addr is inside a hugetlb page; -ENOMEM. */
int hmmu_vma_split(struct hmmu_mm *mm, struct hmmu_vma *vma, unsigned long addr)
{
	struct hmmu_vma *upper;

	HMMU_BUG_ON(addr <= vma->vm_start || addr >= vma->vm_end || addr & ~HMMU_PAGE_MASK);
	/* Hugetlb pages are never split: neither are their VMAs, inside one. */
	if (hmmu_vma_is_hugetlb(vma) && addr & ~HMMU_PMD_MASK)
		return -EINVAL;
	if (hmmu_vma_split_huge_pmd_at(vma, addr))
		return -ENOMEM;
	upper = hmmu_vma_dup(mm, vma);
	if (!upper)
		return -ENOMEM;
	hmmu_vma_set_bounds(upper, addr, upper->vm_end, hmmu_linear_page_index(vma, addr));
	hmmu_vma_adjust(vma, vma->vm_start, addr, vma->vm_pgoff);
	hmmu_vma_link(mm, upper);
	return 0;
}

/* @a (below) and @b (above) may become one VMA. */
static bool hmmu_vma_mergeable(const struct hmmu_vma *a, const struct hmmu_vma *b)
{
	unsigned long special = HMMU_VM_PFNMAP | HMMU_VM_MIXEDMAP | HMMU_VM_IO | HMMU_VM_HUGETLB;

	return a->vm_end == b->vm_start && a->vm_flags == b->vm_flags && !(a->vm_flags & special) &&
	       a->vm_file == b->vm_file && !a->vm_ops && !b->vm_ops &&
	       (!a->anon_vma || !b->anon_vma || a->anon_vma == b->anon_vma) &&
	       a->vm_pgoff + ((a->vm_end - a->vm_start) >> HMMU_PAGE_SHIFT) == b->vm_pgoff &&
	       a->vm_private_data == b->vm_private_data;
}

/* Fold @b into @a (its lower neighbour) and free @b. */
static void hmmu_vma_absorb(struct hmmu_mm *mm, struct hmmu_vma *a, struct hmmu_vma *b)
{
	unsigned long end = b->vm_end;

	if (!a->anon_vma && b->anon_vma)
		hmmu_anon_vma_attach(a, b->anon_vma);
	hmmu_vma_unlink(mm, b);
	hmmu_vma_free(b);
	hmmu_vma_adjust(a, a->vm_start, end, a->vm_pgoff);
}

struct hmmu_vma *hmmu_vma_merge(struct hmmu_mm *mm, struct hmmu_vma *vma)
{
	struct hmmu_vma *prev = hmmu_vma_prev(vma), *next = hmmu_vma_next(vma);

	hmmu_mmap_assert_write_locked(mm);
	if (next && hmmu_vma_mergeable(vma, next))
		hmmu_vma_absorb(mm, vma, next);
	if (prev && hmmu_vma_mergeable(prev, vma)) {
		hmmu_vma_absorb(mm, prev, vma);
		vma = prev;
	}
	return vma;
}

static int hmmu_vma_complain(const char *what, const struct hmmu_vma *vma)
{
	fprintf(stderr, "hmmu_vma_validate: %s: [%#lx, %#lx)\n", what, vma->vm_start, vma->vm_end);
	return -EUCLEAN;
}

/*
 * Is @vma on its anon_vma's list?  Read under the anon_vma's lock: other
 * mms' VMAs (a fork's parent and children) join and leave the same list
 * meanwhile, rewriting their neighbours' links.
 */
static bool hmmu_vma_on_anon_list(struct hmmu_vma *vma)
{
	bool on;

	pthread_mutex_lock(&vma->anon_vma->lock);
	on = vma->anon_vma_link.next != &vma->anon_vma_link;
	pthread_mutex_unlock(&vma->anon_vma->lock);
	return on;
}

/* Check one VMA against its predecessor and the tree's view of it. */
static int hmmu_vma_check(struct hmmu_vma *vma, struct hmmu_vma *prev, struct hmmu_rb_node *rb)
{
	unsigned long gap = hmmu_vma_gap_before(vma);

	if (vma->vm_start >= vma->vm_end || (vma->vm_start | vma->vm_end) & ~HMMU_PAGE_MASK ||
	    vma->vm_end > HMMU_TASK_SIZE)
		return hmmu_vma_complain("malformed range", vma);
	if (prev && prev->vm_end > vma->vm_start)
		return hmmu_vma_complain("overlaps or is out of order with its predecessor", vma);
	if (rb != &vma->vm_rb)
		return hmmu_vma_complain("tree order differs from list order", vma);
	gap = HMMU_MAX(gap, HMMU_MAX(hmmu_vma_subtree_gap(rb->left), hmmu_vma_subtree_gap(rb->right)));
	if (gap != vma->rb_subtree_gap)
		return hmmu_vma_complain("stale subtree gap", vma);
	if (vma->anon_vma && !hmmu_vma_on_anon_list(vma))
		return hmmu_vma_complain("has an anon_vma but is not on its list", vma);
	return 0;
}

int hmmu_vma_validate(struct hmmu_mm *mm)
{
	struct hmmu_rb_node *rb = hmmu_rb_first(&mm->mm_rb);
	struct hmmu_vma *vma, *prev = NULL;
	unsigned long n = 0;
	int err;

	cds_list_for_each_entry(vma, &mm->vma_list, vm_list) {
		err = hmmu_vma_check(vma, prev, rb);
		if (err)
			return err;
		rb = hmmu_rb_next(rb);
		prev = vma;
		n++;
	}
	if (rb || n != mm->map_count || hmmu_rb_validate(&mm->mm_rb) != (long)n) {
		fprintf(stderr, "hmmu_vma_validate: tree holds other VMAs than the list (%lu listed)\n", n);
		return -EUCLEAN;
	}
	return 0;
}
