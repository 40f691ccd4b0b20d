// SPDX-License-Identifier: MIT
/*
 * Device pagemaps: creating and removing the frames of device memory, and
 * the life of a device page (spec 4.1, 4.2).
 *
 *   FREE (refcount 0, on the driver's free list)
 *     --hmmu_zone_device_page_init-->  ALLOCATED (refcount 1, locked,
 *                                      +1 pagemap reference)
 *     --mapped, referenced, unmapped ...--> refcount 0
 *     --hmmu_free_zone_device_page: mapping and anon-exclusive cleared,
 *       ops->page_free, pagemap reference dropped--> FREE
 *
 * pgmap->ref counts the pagemap's references: one per allocated frame,
 * plus transient ones (a fault sleeping on a device page's lock holds one
 * so the frames outlive its sleep; see fault.c).  hmmu_memunmap_pages()
 * sleeps until it is 0.  The 1 -> 0 transition and the sleeper's test both
 * happen under pgmap->lock, so the wake-up cannot be lost and the waker
 * touches the pagemap no more once the sleeper can see 0.
 */
#include <stdio.h>
#include <sys/mman.h>

#include "internal.h"

/* Largest pagemap: the node limit of page_alloc.c. */
#define PGMAP_MAX_PAGES (1UL << 32)

/* ---------------------------------------------------------------------- */
/* Pagemap references                                                      */
/* ---------------------------------------------------------------------- */

/*
 * Context: any.  The caller must know the count is above zero (it holds a
 * page of the pagemap through a mapping, a reference or a page-table lock
 * that keeps an entry of it), so the pagemap cannot be dying-and-done.
 */
void hmmu_pgmap_get(struct hmmu_dev_pagemap *pgmap)
{
	atomic_fetch_add_explicit(&pgmap->ref, 1, memory_order_relaxed);
}

/*
 * Context: any but pgmap->lock held.  The last put wakes
 * hmmu_memunmap_pages(); after it the pagemap may be gone, so nothing
 * touches it once the lock is released.
 */
void hmmu_pgmap_put(struct hmmu_dev_pagemap *pgmap)
{
	long v = atomic_load_explicit(&pgmap->ref, memory_order_relaxed);

	/*
	 * Release: this holder's work (page_free included) happens before
	 * the unmapping thread's acquire load of 0, through the RMW chain.
	 */
	while (v > 1)
		if (atomic_compare_exchange_weak_explicit(&pgmap->ref, &v, v - 1, memory_order_release,
							  memory_order_relaxed))
			return;
	pthread_mutex_lock(&pgmap->lock);
	v = atomic_fetch_sub_explicit(&pgmap->ref, 1, memory_order_release);
	HMMU_BUG_ON(v <= 0);
	if (v == 1)
		pthread_cond_broadcast(&pgmap->done);
	pthread_mutex_unlock(&pgmap->lock);
}

/* ---------------------------------------------------------------------- */
/* Page lifetime                                                           */
/* ---------------------------------------------------------------------- */

void hmmu_zone_device_page_init(struct hmmu_page *page)
{
	struct hmmu_dev_pagemap *pgmap = page ? page->pgmap : NULL;

	if (!page)
		return;
	HMMU_BUG_ON(!pgmap || hmmu_page_ref_count(page) != 0);
	if (atomic_load_explicit(&pgmap->dying, memory_order_relaxed))
		fprintf(stderr, "hmmu: warning: device page %#lx allocated from a dying pagemap\n",
			hmmu_page_to_pfn(page));
	hmmu_pgmap_get(pgmap);
	/*
	 * Lock first, then publish the reference.  The other order (Linux's:
	 * set_page_count, then lock_page) leaves a window where the frame
	 * looks in use but is unlocked: hmmu_migrate_device_range()'s
	 * get_page_unless_zero + trylock could then take it, pass the pin
	 * check (its reference + the allocator's = the expected count of an
	 * unmapped device page) and hand the driver, as a page to evict, a
	 * frame its allocator has not finished setting up (dmirror read its
	 * zone_device_data, still NULL, and crashed holding release_lock and
	 * the page lock: the hang of test_race_close_release), while the
	 * allocator slept here.  Locked before it is visible, the frame is
	 * skipped by eviction as "locked" (spec 3.11).  Nobody else can hold
	 * the lock of a free frame (every locker holds a reference, and
	 * unlocks before dropping it), so this normally never sleeps.
	 */
	hmmu_lock_page(page);
	/*
	 * Release pairs with the acquire CAS of hmmu_get_page_unless_zero():
	 * a speculative reference sees the frame initialised and locked.
	 */
	atomic_store_explicit(&page->_refcount, 1, memory_order_release);
	hmmu_count(HMMU_STAT_DEVICE_PAGE_ALLOC);
}

/*
 * The last reference of a device page is gone (called by hmmu_put_page()).
 * Context: that of the put; no page-table lock is held (hmmu never frees a
 * page under one).  The frame must be unmapped and unlocked.
 */
void hmmu_free_zone_device_page(struct hmmu_page *page)
{
	struct hmmu_dev_pagemap *pgmap = page->pgmap;

	HMMU_BUG_ON(hmmu_page_mapcount(page) != 0);
	/* A frame freed locked would hang its next hmmu_zone_device_page_init(). */
	HMMU_BUG_ON(hmmu_page_test_flag(page, HMMU_PG_locked));
	/* A stale anon mapping would make the next user look like an anon page. */
	hmmu_page_clear_flag(page, HMMU_PG_anon_exclusive);
	page->mapping = NULL;
	pgmap->ops->page_free(page);
	hmmu_count(HMMU_STAT_DEVICE_PAGE_FREE);
	hmmu_pgmap_put(pgmap);
}

/* ---------------------------------------------------------------------- */
/* Creating and removing pagemaps                                          */
/* ---------------------------------------------------------------------- */

/* Spec 4.1's validation; returns the number of frames, or -EINVAL. */
static long hmmu_pgmap_check(const struct hmmu_dev_pagemap *pgmap)
{
	const struct hmmu_dev_pagemap_ops *ops = pgmap ? pgmap->ops : NULL;
	unsigned long len;

	if (!ops || !ops->page_free || !pgmap->owner || pgmap->nr_range != 1 || !hmmu_is_initialised())
		return -EINVAL;
	if (pgmap->type == HMMU_MEMORY_DEVICE_PRIVATE && !ops->migrate_to_ram)
		return -EINVAL;
	if (pgmap->type != HMMU_MEMORY_DEVICE_PRIVATE && pgmap->type != HMMU_MEMORY_DEVICE_COHERENT)
		return -EINVAL;
	if (pgmap->range.end < pgmap->range.start)
		return -EINVAL;
	len = pgmap->range.end - pgmap->range.start + 1;
	if (!len || len & ~HMMU_PAGE_MASK || (len >> HMMU_PAGE_SHIFT) > PGMAP_MAX_PAGES)
		return -EINVAL;
	return (long)(len >> HMMU_PAGE_SHIFT);
}

/* Coherent memory: the bytes the CPU reaches its frames through.  0 or -ENOMEM. */
static int hmmu_pgmap_map_cpu(struct hmmu_dev_pagemap *pgmap, unsigned long nr_pages)
{
	size_t len = (size_t)nr_pages << HMMU_PAGE_SHIFT;
	void *p;

	pgmap->cpu_base = NULL;
	pgmap->cpu_len = 0;
	if (pgmap->type != HMMU_MEMORY_DEVICE_COHERENT)
		return 0;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	pgmap->cpu_base = p;
	pgmap->cpu_len = len;
	return 0;
}

static void hmmu_pgmap_unmap_cpu(struct hmmu_dev_pagemap *pgmap)
{
	if (pgmap->cpu_base)
		munmap(pgmap->cpu_base, pgmap->cpu_len);
	pgmap->cpu_base = NULL;
	pgmap->cpu_len = 0;
}

/* Point the node's frames at @pgmap and publish the chosen range. */
static void hmmu_pgmap_attach(struct hmmu_dev_pagemap *pgmap, int nid)
{
	struct hmmu_node *node = hmmu_node_get(nid);

	for (unsigned long i = 0; i < node->nr_pages; i++)
		node->pages[i].pgmap = pgmap;
	pgmap->nid = nid;
	pgmap->range.start = node->start_pfn << HMMU_PAGE_SHIFT;
	pgmap->range.end = pgmap->range.start + (node->nr_pages << HMMU_PAGE_SHIFT) - 1;
	atomic_store_explicit(&pgmap->ref, 0, memory_order_relaxed);
	atomic_store_explicit(&pgmap->dying, false, memory_order_relaxed);
	pthread_mutex_init(&pgmap->lock, NULL);
	pthread_cond_init(&pgmap->done, NULL);
}

/*
 * Context: may sleep; takes the node-table lock.  The frames become
 * reachable by frame number as soon as the node is registered, but nobody
 * knows their numbers before this returns, so setting `pgmap` afterwards
 * is safe; the caller publishes the pagemap to its own threads.
 */
int hmmu_memremap_pages(struct hmmu_dev_pagemap *pgmap)
{
	long nr_pages = hmmu_pgmap_check(pgmap);
	int nid;

	if (nr_pages < 0)
		return (int)nr_pages;
	if (hmmu_pgmap_map_cpu(pgmap, (unsigned long)nr_pages))
		return -ENOMEM;
	nid = hmmu_node_create_device((unsigned long)nr_pages, pgmap->cpu_base);
	if (nid < 0) {
		hmmu_pgmap_unmap_cpu(pgmap);
		return nid == -EINVAL ? -EINVAL : -ENOMEM;
	}
	hmmu_pgmap_attach(pgmap, nid);
	return 0;
}

/*
 * Context: may sleep (until every frame is free); takes pgmap->lock and
 * the node-table lock.  No hmmu lock may be held.
 */
void hmmu_memunmap_pages(struct hmmu_dev_pagemap *pgmap)
{
	int err;

	/* Node 0 is system RAM: nid <= 0 is a pagemap never accepted (zeroed) or removed (-1). */
	if (!pgmap || pgmap->nid <= 0)
		return;
	pthread_mutex_lock(&pgmap->lock);
	atomic_store_explicit(&pgmap->dying, true, memory_order_relaxed);
	/* Acquire pairs with the release decrements in hmmu_pgmap_put(). */
	while (atomic_load_explicit(&pgmap->ref, memory_order_acquire))
		pthread_cond_wait(&pgmap->done, &pgmap->lock);
	pthread_mutex_unlock(&pgmap->lock);
	err = hmmu_node_destroy(pgmap->nid);
	HMMU_BUG_ON(err);
	(void)err;
	hmmu_pgmap_unmap_cpu(pgmap);
	pthread_cond_destroy(&pgmap->done);
	pthread_mutex_destroy(&pgmap->lock);
	pgmap->nid = -1;
}
