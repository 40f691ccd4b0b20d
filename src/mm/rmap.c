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
	struct hmmu_anon_vma *av = calloc(1, sizeof(*av));

	if (!av)
		return NULL;
	pthread_mutex_init(&av->lock, NULL);
	CDS_INIT_LIST_HEAD(&av->vmas);
	return av;
}

static void hmmu_anon_vma_put(struct hmmu_anon_vma *av)
{
	if (atomic_fetch_sub_explicit(&av->refcount, 1, memory_order_acq_rel) != 1)
		return;
	HMMU_BUG_ON(!cds_list_empty(&av->vmas));
	pthread_mutex_destroy(&av->lock);
	free(av);
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
