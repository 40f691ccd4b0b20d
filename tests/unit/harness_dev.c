// SPDX-License-Identifier: MIT
/*
 * The device part of the fixture: test pagemaps with a minimal driver, and
 * the check that none of their pages leaks.  Linked only into tests that
 * create test devices through hmmu_test_dev().
 *
 * The driver keeps a flag per frame (allocated or not) under its lock, the
 * contents of device-private frames in a buffer of its own (`store`), and
 * counts its callbacks.  Its migrate_to_ram moves the page back by hand,
 * under the PTE lock, as the later migrate_vma would.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_TEST_DEVS 8

extern void (*hmmu_test_dev_teardown)(void);
static struct hmmu_test_dev *test_devs[MAX_TEST_DEVS];
static int nr_test_devs;

static struct hmmu_test_dev *test_dev_of(const struct hmmu_page *page)
{
	return hmmu_container_of(page->pgmap, struct hmmu_test_dev, pgmap);
}

static unsigned long test_dev_index(const struct hmmu_test_dev *dev, const struct hmmu_page *page)
{
	return hmmu_page_to_pfn(page) - hmmu_pgmap_pfn_first(&dev->pgmap);
}

/* page_free: the frame must be unreferenced, unmapped, allocated, and its mapping cleared. */
static void test_dev_page_free(struct hmmu_page *page)
{
	struct hmmu_test_dev *dev = test_dev_of(page);
	unsigned long i = test_dev_index(dev, page);
	bool bad = hmmu_page_ref_count(page) || hmmu_page_mapcount(page) || page->mapping ||
		   hmmu_page_test_flag(page, HMMU_PG_anon_exclusive);

	pthread_mutex_lock(&dev->lock);
	bad |= !dev->in_use[i];
	dev->in_use[i] = false;
	dev->nr_frees[i]++;
	pthread_mutex_unlock(&dev->lock);
	atomic_fetch_add(&dev->page_frees, 1);
	if (bad)
		atomic_fetch_add(&dev->errors, 1);
}

static hmmu_vm_fault_t test_dev_migrate_to_ram(struct hmmu_vm_fault *vmf)
{
	struct hmmu_test_dev *dev = test_dev_of(vmf->page);

	atomic_fetch_add(&dev->migrate_calls, 1);
	if (!hmmu_page_locked(vmf->page) || hmmu_page_ref_count(vmf->page) < 2)
		atomic_fetch_add(&dev->errors, 1);
	if (dev->migrate_hook)
		return dev->migrate_hook(dev, vmf);
	return hmmu_test_dev_migrate_back(dev, vmf);
}

static const struct hmmu_dev_pagemap_ops test_dev_ops = {
	.page_free = test_dev_page_free,
	.migrate_to_ram = test_dev_migrate_to_ram,
};

/* Check that every frame came back, then remove the pagemap (which would hang otherwise). */
static void test_dev_check_and_remove(struct hmmu_test_dev *dev)
{
	unsigned long busy = 0;

	for (unsigned long i = 0; i < dev->nr_pages; i++)
		busy += dev->in_use[i] || hmmu_page_ref_count(hmmu_pfn_to_page(dev->first_pfn + i));
	assert_int_equal(busy, 0);
	assert_int_equal(atomic_load(&dev->errors), 0);
	assert_int_equal(atomic_load(&dev->page_frees), atomic_load(&dev->allocs));
	hmmu_memunmap_pages(&dev->pgmap);
	pthread_mutex_destroy(&dev->lock);
	free(dev->store);
	free(dev->in_use);
	free(dev->nr_frees);
	free(dev);
}

static void test_devs_destroy(void)
{
	int n = nr_test_devs;

	nr_test_devs = 0;
	for (int i = 0; i < n; i++)
		test_dev_check_and_remove(test_devs[i]);
}

struct hmmu_test_dev *hmmu_test_dev(enum hmmu_memory_type type, unsigned long nr_pages, void *owner)
{
	struct hmmu_test_dev *dev = calloc(1, sizeof(*dev));

	assert_non_null(dev);
	assert_true(nr_test_devs < MAX_TEST_DEVS);
	dev->nr_pages = nr_pages;
	dev->in_use = calloc(nr_pages, sizeof(*dev->in_use));
	dev->nr_frees = calloc(nr_pages, sizeof(*dev->nr_frees));
	dev->store = type == HMMU_MEMORY_DEVICE_PRIVATE ? calloc(nr_pages, HMMU_PAGE_SIZE) : NULL;
	assert_true(dev->in_use && dev->nr_frees && (dev->store || type != HMMU_MEMORY_DEVICE_PRIVATE));
	pthread_mutex_init(&dev->lock, NULL);
	dev->pgmap.type = type;
	dev->pgmap.range.end = nr_pages * HMMU_PAGE_SIZE - 1;
	dev->pgmap.nr_range = 1;
	dev->pgmap.ops = &test_dev_ops;
	dev->pgmap.owner = owner;
	assert_int_equal(hmmu_memremap_pages(&dev->pgmap), 0);
	dev->first_pfn = hmmu_pgmap_pfn_first(&dev->pgmap);
	test_devs[nr_test_devs++] = dev;
	hmmu_test_dev_teardown = test_devs_destroy;
	return dev;
}

struct hmmu_page *hmmu_test_dev_alloc(struct hmmu_test_dev *dev)
{
	struct hmmu_page *page = NULL;

	pthread_mutex_lock(&dev->lock);
	for (unsigned long i = 0; i < dev->nr_pages && !page; i++) {
		if (dev->in_use[i])
			continue;
		dev->in_use[i] = true;
		page = hmmu_pfn_to_page(dev->first_pfn + i);
	}
	pthread_mutex_unlock(&dev->lock);
	if (!page)
		return NULL;
	atomic_fetch_add(&dev->allocs, 1);
	hmmu_zone_device_page_init(page);
	return page;
}

void *hmmu_test_dev_mem(struct hmmu_test_dev *dev, struct hmmu_page *page)
{
	if (!dev->store)
		return hmmu_page_address(page);
	return dev->store + test_dev_index(dev, page) * HMMU_PAGE_SIZE;
}

/* The entry mapping @page from @e's place: device-private entry or present PTE. */
static hmmu_pte_t test_dev_entry(struct hmmu_test_dev *dev, struct hmmu_page *page, hmmu_pte_t e)
{
	enum hmmu_swp_type type = hmmu_pte_write(e) ? HMMU_SWP_DEVICE_PRIVATE_WRITE : HMMU_SWP_DEVICE_PRIVATE_READ;

	if (dev->pgmap.type == HMMU_MEMORY_DEVICE_COHERENT)
		return hmmu_pfn_pte(hmmu_page_to_pfn(page), e & (HMMU_PTE_WRITE | HMMU_PTE_DIRTY | HMMU_PTE_YOUNG));
	return hmmu_swp_entry_to_pte(hmmu_make_swp_entry(type, hmmu_page_to_pfn(page)));
}

/* Give @to the anon mapping state (mapping, index, exclusive, one mapcount) of @from. */
static void test_dev_move_rmap(struct hmmu_page *to, struct hmmu_page *from)
{
	to->mapping = from->mapping;
	to->index = from->index;
	if (hmmu_page_test_flag(from, HMMU_PG_anon_exclusive))
		hmmu_page_set_flag(to, HMMU_PG_anon_exclusive);
	atomic_store(&to->_mapcount, 1);
	hmmu_page_remove_rmap(from, false);
}

/*
 * Swap the entry at @addr (a present anonymous page) for one mapping
 * @dpage, moving the bytes and the mapping's reference and mapcount.
 * Returns the system page (its entry's reference to drop), or NULL.
 */
static struct hmmu_page *test_dev_swap_in(struct hmmu_test_dev *dev, struct hmmu_mm *mm, unsigned long addr,
					  struct hmmu_page *dpage)
{
	struct hmmu_page *spage = NULL;
	struct hmmu_pt *pt;
	bool huge = false;
	hmmu_pte_t *ep = hmmu_leaf_lookup_lock(mm, addr, &pt, &huge), e;

	if (!ep)
		return NULL;
	e = hmmu_pte_read(ep);
	if (!huge && hmmu_pte_present(e) && !hmmu_pte_special(e) && !hmmu_is_zero_pfn(hmmu_pte_pfn(e))) {
		spage = hmmu_pfn_to_page(hmmu_pte_pfn(e));
		memcpy(hmmu_test_dev_mem(dev, dpage), hmmu_page_address(spage), HMMU_PAGE_SIZE);
		hmmu_get_page(dpage);	/* the new entry's */
		test_dev_move_rmap(dpage, spage);
		hmmu_pte_set(pt, ep, test_dev_entry(dev, dpage, e));
		hmmu_notifier_invalidate_range(mm, addr, addr + HMMU_PAGE_SIZE);
	}
	hmmu_pt_unlock(pt);
	return spage;
}

struct hmmu_page *hmmu_test_dev_to_device(struct hmmu_test_dev *dev, struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_page *dpage = hmmu_test_dev_alloc(dev), *spage;
	struct hmmu_notifier_range range;

	assert_non_null(dpage);
	addr &= HMMU_PAGE_MASK;
	hmmu_mmap_read_lock(mm);
	hmmu_notifier_range_init_owner(&range, HMMU_NOTIFY_MIGRATE, 0, mm, addr, addr + HMMU_PAGE_SIZE,
				       dev->pgmap.owner);
	hmmu_notifier_invalidate_range_start(&range);
	spage = test_dev_swap_in(dev, mm, addr, dpage);
	hmmu_notifier_invalidate_range_end(&range);
	hmmu_mmap_read_unlock(mm);
	hmmu_put_page(spage);		/* the old entry's reference */
	hmmu_unlock_page(dpage);
	hmmu_put_page(dpage);		/* the allocation's: the entry keeps its own */
	assert_non_null(spage);
	return dpage;
}

/*
 * Replace the device-private entry of @dpage at vmf->address by @spage
 * (filled, its reference handed over) under the PTE lock.  Returns false
 * if the entry is no longer @dpage's.
 */
static bool test_dev_swap_out(struct hmmu_vm_fault *vmf, struct hmmu_page *dpage, struct hmmu_page *spage)
{
	struct hmmu_pt *pt;
	bool huge = false, write;
	hmmu_pte_t *ep = hmmu_leaf_lookup_lock(vmf->vma->vm_mm, vmf->address, &pt, &huge), e;
	struct hmmu_swp_entry se;

	if (!ep)
		return false;
	e = hmmu_pte_read(ep);
	se = hmmu_pte_to_swp_entry(e);
	if (huge || hmmu_pte_present(e) || !hmmu_is_device_private_entry(se) ||
	    se.pfn != hmmu_page_to_pfn(dpage)) {
		hmmu_pt_unlock(pt);
		return false;
	}
	write = se.type == HMMU_SWP_DEVICE_PRIVATE_WRITE && (vmf->vma->vm_flags & HMMU_VM_WRITE);
	test_dev_move_rmap(spage, dpage);
	hmmu_pte_set(pt, ep, hmmu_pfn_pte(hmmu_page_to_pfn(spage),
					  HMMU_PTE_YOUNG | (write ? HMMU_PTE_WRITE | HMMU_PTE_DIRTY : 0)));
	hmmu_pt_unlock(pt);
	return true;
}

hmmu_vm_fault_t hmmu_test_dev_migrate_back(struct hmmu_test_dev *dev, struct hmmu_vm_fault *vmf)
{
	struct hmmu_page *dpage = vmf->page;
	struct hmmu_page *spage = hmmu_alloc_page_vma(vmf->vma, vmf->address);

	if (!spage)
		return HMMU_VM_FAULT_OOM;
	memcpy(hmmu_page_address(spage), hmmu_test_dev_mem(dev, dpage), HMMU_PAGE_SIZE);
	hmmu_page_set_flag(spage, HMMU_PG_uptodate);
	if (!test_dev_swap_out(vmf, dpage, spage)) {
		hmmu_put_page(spage);
		return 0;
	}
	hmmu_put_page(dpage);	/* the device-private entry's reference */
	return 0;
}

void hmmu_test_dev_destroy(struct hmmu_test_dev *dev)
{
	int i;

	for (i = 0; i < nr_test_devs && test_devs[i] != dev; i++)
		;
	assert_true(i < nr_test_devs);
	test_devs[i] = test_devs[--nr_test_devs];
	test_dev_check_and_remove(dev);
}
