// SPDX-License-Identifier: MIT
/*
 * Page-table pages: allocation, population, lookup, freeing, validation.
 *
 * Tables are library allocations (struct hmmu_pt).  Upper levels are
 * populated lock-free (compare-and-swap of a none entry); a table is freed
 * only with the mmap_lock held for write, so a walker holding it for read
 * never sees a table disappear under it.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct hmmu_pt *hmmu_pt_alloc(struct hmmu_mm *mm, int level)
{
	struct hmmu_pt *pt;

	/* A host fault runs in a signal handler: its tables exist from mmap time. */
	HMMU_BUG_ON(hmmu_host_in_fault());
	pt = hmmu_fault_injected(HMMU_FAULT_PT_ALLOC) ? NULL : aligned_alloc(64, sizeof(*pt));

	if (!pt)
		return NULL;
	memset(pt, 0, sizeof(*pt));
	pthread_mutex_init(&pt->ptl, NULL);
	pt->level = (unsigned char)level;
	if (mm && level < HMMU_PT_LEVELS - 1)
		atomic_fetch_add_explicit(&mm->nr_pgtables, 1, memory_order_relaxed);
	return pt;
}

static void hmmu_pt_free_rcu(struct hmmu_rcu_head *head)
{
	struct hmmu_pt *pt = hmmu_container_of(head, struct hmmu_pt, rcu);

	pthread_mutex_destroy(&pt->ptl);
	free(pt);
}

/*
 * The memory goes after a grace period: a reverse-map walk reaches another
 * mm's tables without its mmap_lock (pairs with the read section in
 * hmmu_rmap_walk()); it may still find this table, empty, and lock it.
 */
void hmmu_pt_free(struct hmmu_mm *mm, struct hmmu_pt *pt)
{
	HMMU_BUG_ON(atomic_load(&pt->nr_used) != 0 || pt->deposit);
	if (mm && pt->level < HMMU_PT_LEVELS - 1)
		atomic_fetch_sub_explicit(&mm->nr_pgtables, 1, memory_order_relaxed);
	hmmu_call_rcu(&pt->rcu, hmmu_pt_free_rcu);
}

void hmmu_pgtable_deposit(struct hmmu_pt *pmd_pt, struct hmmu_pt *pt)
{
	HMMU_BUG_ON(pmd_pt->level != 1 || pt->level != 0 || atomic_load(&pt->nr_used));
	pt->deposit = pmd_pt->deposit;
	pmd_pt->deposit = pt;
}

struct hmmu_pt *hmmu_pgtable_withdraw(struct hmmu_pt *pmd_pt)
{
	struct hmmu_pt *pt = pmd_pt->deposit;

	HMMU_BUG_ON(!pt);
	pmd_pt->deposit = pt->deposit;
	pt->deposit = NULL;
	return pt;
}

/*
 * Install @child in the none entry *@ep of @parent.  Loses gracefully to a
 * concurrent population or huge-leaf install (the caller re-reads).
 */
static bool hmmu_pt_install(struct hmmu_pt *parent, hmmu_pte_t *ep, struct hmmu_pt *child)
{
	hmmu_pte_t expected = 0;
	hmmu_pte_t val = (hmmu_pte_t)(uintptr_t)child | HMMU_PTE_PRESENT;

	/* Release pairs with the acquire-free dependent loads of walkers that
	 * follow the pointer: the zeroed child is visible before the entry. */
	if (!__atomic_compare_exchange_n(ep, &expected, val, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		return false;
	atomic_fetch_add_explicit(&parent->nr_used, 1, memory_order_relaxed);
	return true;
}

/* The next-level table of *@ep, populating it when @alloc; NULL if absent or not a table. */
static struct hmmu_pt *hmmu_pt_descend(struct hmmu_mm *mm, struct hmmu_pt *pt, hmmu_pte_t *ep, bool alloc)
{
	hmmu_pte_t e = __atomic_load_n(ep, __ATOMIC_ACQUIRE);
	struct hmmu_pt *child;

	if (hmmu_pte_none(e) && alloc) {
		child = hmmu_pt_alloc(mm, pt->level - 1);
		if (!child)
			return NULL;
		if (!hmmu_pt_install(pt, ep, child))
			hmmu_pt_free(mm, child);
		e = __atomic_load_n(ep, __ATOMIC_ACQUIRE);
	}
	return hmmu_pte_table(e) ? hmmu_pte_to_table(e) : NULL;
}

hmmu_pte_t *hmmu_pmd_lookup(struct hmmu_mm *mm, unsigned long addr, bool alloc, struct hmmu_pt **pmd_pt)
{
	struct hmmu_pt *pt = mm->pgd;

	for (int level = HMMU_PT_LEVELS - 1; level > 1; level--) {
		pt = hmmu_pt_descend(mm, pt, &pt->e[hmmu_pt_index(addr, level)], alloc);
		if (!pt)
			return NULL;
	}
	*pmd_pt = pt;
	return &pt->e[hmmu_pt_index(addr, 1)];
}

int hmmu_pte_table_populate(struct hmmu_mm *mm, struct hmmu_pt *pmd_pt, hmmu_pte_t *pmdp)
{
	struct hmmu_pt *child;

	if (!hmmu_pte_none(hmmu_pte_read(pmdp)))
		return 0;
	child = hmmu_pt_alloc(mm, 0);
	if (!child)
		return -ENOMEM;
	if (!hmmu_pt_install(pmd_pt, pmdp, child))
		hmmu_pt_free(mm, child);
	return 0;
}

hmmu_pte_t *hmmu_leaf_lookup_lock(struct hmmu_mm *mm, unsigned long addr, struct hmmu_pt **ptp, bool *huge)
{
	struct hmmu_pt *pmd_pt, *pte_pt;
	hmmu_pte_t *pmdp = hmmu_pmd_lookup(mm, addr, false, &pmd_pt);
	hmmu_pte_t pmd;

	if (!pmdp)
		return NULL;
	pmd = __atomic_load_n(pmdp, __ATOMIC_ACQUIRE);
	if (hmmu_pte_none(pmd))
		return NULL;
	if (!hmmu_pte_table(pmd)) {
		/* Huge leaf or typed PMD entry: lock and re-check it is still one. */
		hmmu_pt_lock(pmd_pt);
		if (!hmmu_pte_table(hmmu_pte_read(pmdp)) && !hmmu_pte_none(hmmu_pte_read(pmdp))) {
			*ptp = pmd_pt;
			*huge = true;
			return pmdp;
		}
		hmmu_pt_unlock(pmd_pt);
		return hmmu_leaf_lookup_lock(mm, addr, ptp, huge);
	}
	pte_pt = hmmu_pte_to_table(pmd);
	hmmu_pt_lock(pte_pt);
	*ptp = pte_pt;
	*huge = false;
	return &pte_pt->e[hmmu_pt_index(addr, 0)];
}

/* Free the empty tables below @pt over [start, end); true if @pt itself is now empty. */
static bool hmmu_pt_free_empty(struct hmmu_mm *mm, struct hmmu_pt *pt, unsigned long start, unsigned long end)
{
	unsigned long size = hmmu_pt_entry_size(pt->level);

	if (pt->level == 0)
		return atomic_load(&pt->nr_used) == 0;
	for (unsigned long addr = start; addr < end;) {
		unsigned long next = HMMU_MIN(HMMU_ALIGN_DOWN(addr, size) + size, end);
		hmmu_pte_t *ep = &pt->e[hmmu_pt_index(addr, pt->level)];
		hmmu_pte_t e = hmmu_pte_read(ep);

		if (hmmu_pte_table(e) && hmmu_pt_free_empty(mm, hmmu_pte_to_table(e), addr, next)) {
			hmmu_pt_lock(pt);
			hmmu_pte_set(pt, ep, 0);
			hmmu_pt_unlock(pt);
			hmmu_pt_free(mm, hmmu_pte_to_table(e));
		}
		if (next == 0)
			break;
		addr = next;
	}
	return atomic_load(&pt->nr_used) == 0;
}

void hmmu_free_pgtables(struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	hmmu_mmap_assert_write_locked(mm);
	/* Widen to whole PMD entries: a PTE table left empty by the unmap may
	 * extend beyond the range; it is empty, so nothing else uses it. */
	start = HMMU_ALIGN_DOWN(start, HMMU_PMD_SIZE);
	end = HMMU_MIN(HMMU_ALIGN_UP(end, HMMU_PMD_SIZE), HMMU_TASK_SIZE);
	hmmu_pt_free_empty(mm, mm->pgd, start, end);
}

/* ------------------------------------------------------------------ */
/* Validation                                                          */
/* ------------------------------------------------------------------ */

struct hmmu_pt_census {
	unsigned long tables;
	int err;
};

static int hmmu_pt_complain(struct hmmu_pt_census *c, const char *what, unsigned long addr, hmmu_pte_t e)
{
	fprintf(stderr, "hmmu_pt_validate: %s at %#lx (entry %#llx)\n", what, addr, (unsigned long long)e);
	c->err = -EUCLEAN;
	return c->err;
}

/*
 * Check a typed entry (spec 0.3): a device-private entry holds a reference
 * and a mapcount on a device-private page; a device-exclusive entry keeps
 * a reference on an anonymous page (its mapcount went with the mapping);
 * a migration entry holds nothing, and its page is locked.
 */
static int hmmu_pt_check_swp(struct hmmu_pt_census *c, unsigned long addr, hmmu_pte_t e)
{
	struct hmmu_swp_entry se = hmmu_pte_to_swp_entry(e);
	struct hmmu_page *page = hmmu_pfn_to_page(se.pfn);

	if (se.type == HMMU_SWP_NONE || se.type >= HMMU_SWP_NR_TYPES || !page)
		return hmmu_pt_complain(c, "malformed non-present entry", addr, e);
	if (hmmu_is_device_private_entry(se) &&
	    (!hmmu_is_device_private_page(page) || hmmu_page_ref_count(page) < 1 || hmmu_page_mapcount(page) < 1))
		return hmmu_pt_complain(c, "device-private entry without a mapped device page", addr, e);
	if (hmmu_is_device_exclusive_entry(se) && (hmmu_page_ref_count(page) < 1 || !hmmu_page_is_anon(page)))
		return hmmu_pt_complain(c, "device-exclusive entry without a referenced anonymous page", addr, e);
	/* The migration that installed it holds the page lock until the entry is gone. */
	if (hmmu_is_migration_entry(se) && !hmmu_page_locked(page))
		return hmmu_pt_complain(c, "migration entry of an unlocked page", addr, e);
	return 0;
}

/* Check one leaf entry mapping @addr; @huge for a PMD leaf. */
static int hmmu_pt_check_leaf(struct hmmu_mm *mm, struct hmmu_pt_census *c, unsigned long addr, hmmu_pte_t e,
			      bool huge)
{
	struct hmmu_vma *vma = hmmu_vma_lookup(mm, addr);
	unsigned long pfn = hmmu_pte_pfn(e);
	struct hmmu_page *page;

	if (!vma || (huge && (addr < vma->vm_start || addr + HMMU_PMD_SIZE > vma->vm_end)))
		return hmmu_pt_complain(c, "entry outside any VMA", addr, e);
	if (!hmmu_pte_present(e))
		return hmmu_pt_check_swp(c, addr, e);
	if (hmmu_pte_special(e) || hmmu_is_zero_pfn(pfn))
		return 0;
	page = hmmu_pfn_to_page(pfn);
	if (!page)
		return hmmu_pt_complain(c, "present entry maps no frame", addr, e);
	if (hmmu_page_ref_count(page) < 1 || hmmu_page_mapcount(page) < 1)
		return hmmu_pt_complain(c, "mapped page without reference or mapcount", addr, e);
	if (huge && hmmu_compound_order(page) != HMMU_PMD_ORDER)
		return hmmu_pt_complain(c, "huge entry maps a page that is not order 9", addr, e);
	return 0;
}

/* A transparent huge leaf (not hugetlb): it has a deposited PTE table. */
static bool hmmu_pt_is_thp_leaf(struct hmmu_mm *mm, unsigned long addr, hmmu_pte_t e)
{
	struct hmmu_vma *vma = hmmu_vma_lookup(mm, addr);

	return hmmu_pmd_leaf(e) && vma && !hmmu_vma_is_hugetlb(vma);
}

static unsigned int hmmu_pt_nr_deposited(const struct hmmu_pt *pt)
{
	unsigned int n = 0;

	for (const struct hmmu_pt *d = pt->deposit; d; d = d->deposit)
		n++;
	return n;
}

/*
 * Check @pt and the tables below it.  A PTE table is checked under its
 * lock: the pages it maps may be shared with a live mm (a fork's child
 * while its parent migrates them), whose reverse-map walks change this
 * table's entries, and the pages' counts with them, under that lock.
 */
static int hmmu_pt_check_table(struct hmmu_mm *mm, struct hmmu_pt_census *c, struct hmmu_pt *pt,
			       unsigned long base)
{
	unsigned int used = 0, thp = 0;

	if (pt->level == 0)
		hmmu_pt_lock(pt);
	for (unsigned int i = 0; i < HMMU_PT_ENTRIES && !c->err; i++) {
		unsigned long addr = base + i * hmmu_pt_entry_size(pt->level);
		hmmu_pte_t e = hmmu_pte_read(&pt->e[i]);

		if (hmmu_pte_none(e))
			continue;
		used++;
		if (pt->level == 1 && hmmu_pt_is_thp_leaf(mm, addr, e))
			thp++;
		if (pt->level == 0 || (pt->level == 1 && !hmmu_pte_table(e)))
			hmmu_pt_check_leaf(mm, c, addr, e, pt->level == 1);
		else if (pt->level > 1 && !hmmu_pte_table(e))
			hmmu_pt_complain(c, "leaf above PMD level", addr, e);
		else if (hmmu_pte_to_table(e)->level != pt->level - 1)
			hmmu_pt_complain(c, "table at the wrong level", addr, e);
		else {
			c->tables++;
			hmmu_pt_check_table(mm, c, hmmu_pte_to_table(e), addr);
		}
	}
	if (!c->err && used != atomic_load(&pt->nr_used))
		hmmu_pt_complain(c, "table's nr_used differs from its entries", base, used);
	if (!c->err && thp != hmmu_pt_nr_deposited(pt))
		hmmu_pt_complain(c, "deposited PTE tables differ from THP leaves", base, thp);
	if (pt->level == 0)
		hmmu_pt_unlock(pt);
	return c->err;
}

int hmmu_pt_validate(struct hmmu_mm *mm)
{
	struct hmmu_pt_census c = { 0 };

	if (!mm)
		return -EINVAL;
	hmmu_mmap_read_lock(mm);
	hmmu_pt_check_table(mm, &c, mm->pgd, 0);
	if (!c.err && c.tables != (unsigned long)atomic_load(&mm->nr_pgtables))
		hmmu_pt_complain(&c, "page-table count differs from the tables found", 0, c.tables);
	if (!c.err)
		c.err = hmmu_vma_validate(mm);
	hmmu_mmap_read_unlock(mm);
	return c.err;
}
