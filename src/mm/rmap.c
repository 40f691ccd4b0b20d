// SPDX-License-Identifier: MIT
/*
 * Reverse map of anonymous pages: the anon_vma shared by the VMAs that can
 * map a page, and the per-page mapping information (mapping, index,
 * mapcount, anon-exclusive).
 */
#include <stdlib.h>

#include "internal.h"

static struct hmmu_anon_vma *hmmu_anon_vma_alloc(void)
{
	struct hmmu_anon_vma *av;

	/* A host fault runs in a signal handler: its VMAs have their anon_vma from mmap time. */
	HMMU_BUG_ON(hmmu_host_in_fault());
	av = calloc(1, sizeof(*av));

	if (!av)
		return NULL;
	pthread_mutex_init(&av->lock, NULL);
	CDS_INIT_LIST_HEAD(&av->vmas);
	return av;
}

static void hmmu_anon_vma_free_rcu(struct hmmu_rcu_head *head)
{
	struct hmmu_anon_vma *av = hmmu_container_of(head, struct hmmu_anon_vma, rcu);

	pthread_mutex_destroy(&av->lock);
	free(av);
}

/*
 * Drop a reference.  The memory is freed after a grace period, because
 * hmmu_rmap_walk() reaches an anon_vma from a page's `mapping` without
 * holding any VMA that keeps it alive.
 */
static void hmmu_anon_vma_put(struct hmmu_anon_vma *av)
{
	if (atomic_fetch_sub_explicit(&av->refcount, 1, memory_order_acq_rel) != 1)
		return;
	HMMU_BUG_ON(!cds_list_empty(&av->vmas));
	hmmu_call_rcu(&av->rcu, hmmu_anon_vma_free_rcu);
}

void hmmu_anon_vma_attach(struct hmmu_vma *vma, struct hmmu_anon_vma *av)
{
	HMMU_BUG_ON(vma->anon_vma);
	atomic_fetch_add_explicit(&av->refcount, 1, memory_order_relaxed);
	pthread_mutex_lock(&av->lock);
	cds_list_add_tail(&vma->anon_vma_link, &av->vmas);
	pthread_mutex_unlock(&av->lock);
	vma->anon_vma = av;
}

void hmmu_anon_vma_detach(struct hmmu_vma *vma)
{
	struct hmmu_anon_vma *av = vma->anon_vma;

	pthread_mutex_lock(&av->lock);
	cds_list_del_init(&vma->anon_vma_link);
	pthread_mutex_unlock(&av->lock);
	vma->anon_vma = NULL;
	hmmu_anon_vma_put(av);
}

/*
 * Called by the first anonymous fault of a VMA, with the mmap_lock held for
 * read: concurrent faults race to set vma->anon_vma, so the set-up runs
 * under mm->page_table_lock.  Returns 0 or -ENOMEM.
 */
int hmmu_anon_vma_prepare(struct hmmu_vma *vma)
{
	struct hmmu_mm *mm = vma->vm_mm;
	struct hmmu_anon_vma *av;

	if (__atomic_load_n(&vma->anon_vma, __ATOMIC_ACQUIRE))
		return 0;
	av = hmmu_anon_vma_alloc();
	if (!av)
		return -ENOMEM;
	pthread_mutex_lock(&mm->page_table_lock);
	if (!vma->anon_vma) {
		atomic_store_explicit(&av->refcount, 1, memory_order_relaxed);
		cds_list_add_tail(&vma->anon_vma_link, &av->vmas);
		/* Pairs with the acquire load above: a fault that sees the
		 * pointer sees the initialised anon_vma. */
		__atomic_store_n(&vma->anon_vma, av, __ATOMIC_RELEASE);
		av = NULL;
	}
	pthread_mutex_unlock(&mm->page_table_lock);
	if (av) {
		pthread_mutex_destroy(&av->lock);
		free(av);
	}
	return 0;
}

void hmmu_page_add_new_anon_rmap(struct hmmu_page *page, struct hmmu_vma *vma, unsigned long addr,
				 bool compound)
{
	HMMU_BUG_ON(!vma->anon_vma || page->mapping);
	page->mapping = (void *)((uintptr_t)vma->anon_vma | HMMU_PAGE_MAPPING_ANON);
	page->index = hmmu_linear_page_index(vma, addr);
	hmmu_page_set_flag(page, HMMU_PG_anon_exclusive);
	if (compound)
		atomic_store_explicit(&page->_entire_mapcount, 1, memory_order_relaxed);
	else
		atomic_store_explicit(&page->_mapcount, 1, memory_order_relaxed);
}

void hmmu_page_add_file_rmap(struct hmmu_page *page)
{
	atomic_fetch_add_explicit(&page->_mapcount, 1, memory_order_relaxed);
}

void hmmu_page_remove_rmap(struct hmmu_page *page, bool compound)
{
	atomic_int *count = compound ? &hmmu_compound_head(page)->_entire_mapcount : &page->_mapcount;
	int old = atomic_fetch_sub_explicit(count, 1, memory_order_acq_rel);

	HMMU_BUG_ON(old <= 0);
}

/*
 * A reference on the anon_vma of @page, or NULL (not anonymous, or the
 * anon_vma is being freed: then no VMA can map the page any more).  The
 * RCU read section keeps the memory valid between reading `mapping` and
 * taking the reference (pairs with the call_rcu in hmmu_anon_vma_put).
 */
static struct hmmu_anon_vma *hmmu_page_get_anon_vma(struct hmmu_page *page)
{
	struct hmmu_anon_vma *av = NULL;
	uintptr_t mapping;
	int ref;

	hmmu_rcu_read_lock();
	mapping = (uintptr_t)__atomic_load_n(&page->mapping, __ATOMIC_ACQUIRE);
	if (mapping & HMMU_PAGE_MAPPING_ANON) {
		av = (struct hmmu_anon_vma *)(mapping & ~HMMU_PAGE_MAPPING_ANON);
		ref = atomic_load_explicit(&av->refcount, memory_order_relaxed);
		do {
			if (!ref) {
				av = NULL;
				break;
			}
		} while (!atomic_compare_exchange_weak_explicit(&av->refcount, &ref, ref + 1,
								memory_order_acquire, memory_order_relaxed));
	}
	hmmu_rcu_read_unlock();
	return av;
}

/*
 * Visit every VMA that may map the anonymous page @page, with the page's
 * address in it.  Context: @page locked and referenced by the caller; the
 * caller may hold one mm's mmap_lock, never needs any.
 *
 * What makes another mm's VMA and page tables safe to use without its
 * mmap_lock (as in Linux): a VMA leaves the anon_vma list, under the
 * anon_vma lock held here, before it is freed, so the VMA and its mm stay
 * valid; its bounds change only under that lock (hmmu_vma_set_bounds);
 * page tables are freed after an RCU grace period (hmmu_pt_free), and each
 * other mm's VMA is visited inside a read section, so a table unlinked
 * meanwhile is still memory (empty: nothing to find there); entries are
 * read and changed under their ptl as everywhere.  A VMA added meanwhile
 * (fork, split, mremap) goes to the tail of the list, after the VMA its
 * entries come from, so a moving entry is found on one side or the other.
 * Stops when rmap_one returns false or rwc->done() returns true.
 */
void hmmu_rmap_walk(struct hmmu_page *page, struct hmmu_rmap_walk_control *rwc)
{
	struct hmmu_anon_vma *av;
	struct hmmu_vma *vma;

	HMMU_BUG_ON(!hmmu_page_locked(page));
	av = hmmu_page_get_anon_vma(page);
	if (!av)
		return;
	pthread_mutex_lock(&av->lock);
	cds_list_for_each_entry(vma, &av->vmas, anon_vma_link) {
		unsigned long addr = vma->vm_start + ((page->index - vma->vm_pgoff) << HMMU_PAGE_SHIFT);
		bool more;

		if (page->index < vma->vm_pgoff || addr >= vma->vm_end)
			continue;
		hmmu_rcu_read_lock();
		more = rwc->rmap_one(page, vma, addr, rwc->arg);
		hmmu_rcu_read_unlock();
		if (!more || (rwc->done && rwc->done(page)))
			break;
	}
	pthread_mutex_unlock(&av->lock);
	hmmu_anon_vma_put(av);
}
