// SPDX-License-Identifier: MIT
/*
 * Removing migration entries: the last step of a migration (finalize) and
 * of a page that unmap gives up (restore).  Spec 3.8.
 *
 * Each page's migration entries are replaced by mappings of its target:
 * the destination when the entry was committed, else the page itself.  The
 * new entry is writable when the migration entry was (and the VMA allows
 * it), carries young and dirty, and is a device-private entry for a
 * device-private target; it takes a reference and a mapcount, and an
 * exclusive migration entry (write or read-exclusive) makes the target
 * anon-exclusive again.  No invalidation: migration entries are not
 * present, so no secondary MMU can have mapped them.
 *
 * A VMA migration replaces the entries of its own range in one walk, each
 * PTE table's run under its lock taken once, then unlocks and releases
 * that run's pages.  A page whose entry there was read-only (so it may have
 * been shared), or was not found there, may have migration entries in
 * other mms (set by unmap's reverse-map pass, since copied by fork or
 * moved by mremap): a reverse-map walk finds them.  Device evictions have
 * no range and always use the reverse map.
 */

#include "internal.h"

/* The migration and the step being done. */
struct hmmu_remove {
	struct hmmu_migrate_ctl *ctl;
	bool restore;
};

/* Where the entries of frame `pfn` go: frame `tpfn`, page `target`. */
struct hmmu_remap {
	unsigned long pfn, tpfn;
	struct hmmu_page *target;
};

/*
 * Which entries of src[i] to replace, and by what (*@m).  False when entry
 * @i has no page to put back (a slot, or in a restore an entry still
 * migrating).
 */
static bool hmmu_remove_target(const struct hmmu_remove *r, unsigned long i, struct hmmu_remap *m)
{
	unsigned long s = r->ctl->src[i], d = r->restore ? 0 : r->ctl->dst[i];

	if (!(s & HMMU_MIGRATE_PFN_VALID) || (r->restore && (s & HMMU_MIGRATE_PFN_MIGRATE)))
		return false;
	m->pfn = hmmu_migrate_pfn_pfn(s);
	m->tpfn = (s & HMMU_MIGRATE_PFN_MIGRATE) && (d & HMMU_MIGRATE_PFN_VALID) ? hmmu_migrate_pfn_pfn(d) : m->pfn;
	m->target = hmmu_pfn_to_page(m->tpfn);
	return true;
}

/*
 * The mapping of @m->target that replaces the migration entry @se in @vma.
 * Context: ptl held, maybe not @vma's mmap_lock (a reverse-map walk): the
 * flags are read atomically, a protection change may be storing them
 * (hmmu_vma_set_flags; its PTE walk comes after, under this ptl).
 */
static hmmu_pte_t hmmu_remove_mapping(struct hmmu_swp_entry se, const struct hmmu_vma *vma,
				      const struct hmmu_remap *m)
{
	unsigned long vm_flags = __atomic_load_n(&vma->vm_flags, __ATOMIC_RELAXED);
	bool write = se.type == HMMU_SWP_MIGRATION_WRITE && (vm_flags & HMMU_VM_WRITE);
	bool dirty = se.dirty && hmmu_page_test_flag(m->target, HMMU_PG_dirty);

	if (hmmu_is_device_private_page(m->target))
		return hmmu_swp_entry_to_pte(hmmu_make_swp_entry(
			write ? HMMU_SWP_DEVICE_PRIVATE_WRITE : HMMU_SWP_DEVICE_PRIVATE_READ, m->tpfn));
	return hmmu_pfn_pte(m->tpfn, (write ? HMMU_PTE_WRITE : 0) | (se.young ? HMMU_PTE_YOUNG : 0) |
					     (dirty ? HMMU_PTE_DIRTY : 0));
}

/*
 * If *@ptep is a migration entry of m->pfn, map m->target there instead
 * and return the migration entry's type; else -1.  The new entry takes a
 * reference, except with @handover when the migration entry is exclusive
 * (write or read-exclusive: the page's only mapping): then it takes over
 * the reference hmmu_remove_finish() would drop.  Context: ptl held; the
 * target is referenced (the migration's or the allocation's reference).
 */
static int hmmu_remove_pte(struct hmmu_pt *pt, hmmu_pte_t *ptep, const struct hmmu_vma *vma,
			   const struct hmmu_remap *m, bool handover)
{
	hmmu_pte_t e = hmmu_pte_read(ptep);
	struct hmmu_swp_entry se;
	bool exclusive;

	if (hmmu_pte_none(e) || hmmu_pte_present(e))
		return -1;
	se = hmmu_pte_to_swp_entry(e);
	if (!hmmu_is_migration_entry(se) || se.pfn != m->pfn)
		return -1;
	exclusive = se.type != HMMU_SWP_MIGRATION_READ;
	if (!handover || !exclusive)
		hmmu_get_page(m->target);	/* the new entry's */
	if (exclusive && hmmu_page_is_anon(m->target))
		hmmu_page_set_flag(m->target, HMMU_PG_anon_exclusive);
	atomic_fetch_add_explicit(&m->target->_mapcount, 1, memory_order_relaxed);
	hmmu_pte_set(pt, ptep, hmmu_remove_mapping(se, vma, m));
	return (int)se.type;
}

/* rmap_one: the PTE at @addr of @vma, if it holds one of the entries. */
static bool hmmu_remove_one(struct hmmu_page *page, struct hmmu_vma *vma, unsigned long addr, void *arg)
{
	struct hmmu_pt *pt;
	bool huge = false;
	hmmu_pte_t *ptep = hmmu_leaf_lookup_lock(vma->vm_mm, addr, &pt, &huge);

	if (!ptep)
		return true;
	if (!huge)
		hmmu_remove_pte(pt, ptep, vma, arg, false);
	hmmu_pt_unlock(pt);
	return true;
}

/* Replace the entries of @page wherever the reverse map finds them.  @page locked. */
static void hmmu_remove_rmap(struct hmmu_page *page, struct hmmu_remap *m)
{
	struct hmmu_rmap_walk_control rwc = {
		.arg = m,
		.rmap_one = hmmu_remove_one,
	};

	hmmu_rmap_walk(page, &rwc);
}

/* A destination page given back: the caller's lock and allocation reference. */
static void hmmu_remove_release(struct hmmu_page *page)
{
	hmmu_unlock_page(page);
	hmmu_put_page(page);
}

/*
 * Finish entry @i: replace its remaining migration entries (@done: the
 * range walk already replaced the only one there can be, an exclusive
 * entry, which took over the reference put back last), unlock and
 * release the page, the migration's reference and the destination's
 * allocation reference (a committed destination keeps the references of
 * its new mappings).  The fault page stays locked: the fault path unlocks
 * it.  Context: no ptl held.
 */
static void hmmu_remove_finish(const struct hmmu_remove *r, unsigned long i, bool done)
{
	struct hmmu_migrate_ctl *ctl = r->ctl;
	struct hmmu_page *newpage = r->restore ? NULL : hmmu_migrate_pfn_to_page(ctl->dst[i]);
	struct hmmu_page *page;
	struct hmmu_remap m;

	if (!hmmu_remove_target(r, i, &m)) {
		if (newpage && !r->restore)
			hmmu_remove_release(newpage);	/* a slot, filled or not */
		return;
	}
	page = hmmu_pfn_to_page(m.pfn);
	if (newpage && newpage != m.target)
		hmmu_remove_release(newpage);		/* not committed */
	if (!done)
		hmmu_remove_rmap(page, &m);
	if (page != ctl->fault_page)
		hmmu_unlock_page(page);
	if (!done || m.target != page)
		hmmu_put_page(page);			/* the migration's */
	if (m.target != page && done)
		hmmu_unlock_page(m.target);		/* its reference is the mapping's now */
	else if (m.target != page)
		hmmu_remove_release(m.target);
	if (r->restore)
		ctl->src[i] = 0;
}

/*
 * The range walk's PTE-table run: replace the entries under the ptl, then
 * finish each page.  An entry whose migration entry was exclusive was
 * mapped only here; the others may have entries elsewhere.
 */
static int hmmu_remove_pte_range(hmmu_pte_t *ptep, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	const struct hmmu_remove *r = walk->private;
	unsigned long i0 = (addr - r->ctl->start) >> HMMU_PAGE_SHIFT, n = (end - addr) >> HMMU_PAGE_SHIFT;
	bool done[HMMU_PT_ENTRIES];
	struct hmmu_remap m;

	hmmu_pt_lock(walk->pt);
	for (unsigned long k = 0; k < n; k++) {
		int type = hmmu_remove_target(r, i0 + k, &m) ? hmmu_remove_pte(walk->pt, ptep + k, walk->vma, &m, true)
							     : -1;

		done[k] = type == HMMU_SWP_MIGRATION_WRITE || type == HMMU_SWP_MIGRATION_READ_EXCLUSIVE;
	}
	hmmu_pt_unlock(walk->pt);
	for (unsigned long k = 0; k < n; k++)
		hmmu_remove_finish(r, i0 + k, done[k]);
	return 0;
}

/* No PTE table (or a huge leaf that filled a slot): nothing of ours is there. */
static int hmmu_remove_hole(unsigned long addr, unsigned long end, int depth, struct hmmu_mm_walk *walk)
{
	const struct hmmu_remove *r = walk->private;

	for (unsigned long i = (addr - r->ctl->start) >> HMMU_PAGE_SHIFT; addr < end; addr += HMMU_PAGE_SIZE, i++)
		hmmu_remove_finish(r, i, false);
	return 0;
}

static int hmmu_remove_pmd_entry(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	return hmmu_remove_hole(addr, end, 1, walk);
}

static const struct hmmu_walk_ops hmmu_remove_ops = {
	.pmd_entry = hmmu_remove_pmd_entry,
	.pte_range = hmmu_remove_pte_range,
	.pte_hole = hmmu_remove_hole,
};

/* Does entry @i need work in this step? */
static bool hmmu_remove_wanted(const struct hmmu_remove *r, unsigned long i)
{
	unsigned long s = r->ctl->src[i];

	if (r->restore)
		return (s & HMMU_MIGRATE_PFN_VALID) && !(s & HMMU_MIGRATE_PFN_MIGRATE);
	return s || r->ctl->dst[i];
}

/* Context: see internal.h. */
void hmmu_migrate_remove(struct hmmu_migrate_ctl *ctl, bool restore)
{
	struct hmmu_remove r = { .ctl = ctl, .restore = restore };
	unsigned long lo = ctl->npages, hi = 0;

	for (unsigned long i = 0; i < ctl->npages; i++) {
		if (!hmmu_remove_wanted(&r, i))
			continue;
		lo = HMMU_MIN(lo, i);
		hi = i + 1;
	}
	if (lo >= hi)
		return;
	if (!ctl->vma) {
		for (unsigned long i = lo; i < hi; i++)
			hmmu_remove_finish(&r, i, false);
		return;
	}
	hmmu_walk_page_range(ctl->vma->vm_mm, ctl->start + (lo << HMMU_PAGE_SHIFT),
			     ctl->start + (hi << HMMU_PAGE_SHIFT), &hmmu_remove_ops, &r);
}
