// SPDX-License-Identifier: MIT
/*
 * The device part of the fixture: test pagemaps with a minimal driver, and
 * the check that none of their pages leaks.  Linked only into tests that
 * create test devices through hmmu_test_dev().
 *
 * The driver keeps a flag per frame (allocated or not) under its lock, the
 * contents of device-private frames in a buffer of its own (`store`), and
 * counts its callbacks.  Pages move to and from the device with
 * hmmu_migrate_vma_*, as a driver's would.
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

/*
 * Migrate the anonymous page at @addr to a new frame of @dev with
 * hmmu_migrate_vma_*, as a driver would: setup (SELECT_SYSTEM), copy,
 * pages, finalize.  Asserts (after the mmap_lock is released) that it
 * moved.
 */
struct hmmu_page *hmmu_test_dev_to_device(struct hmmu_test_dev *dev, struct hmmu_mm *mm, unsigned long addr)
{
	unsigned long src = 0, dst = 0;
	struct hmmu_migrate_vma args = {
		.src = &src, .dst = &dst, .pgmap_owner = dev->pgmap.owner,
		.flags = HMMU_MIGRATE_VMA_SELECT_SYSTEM,
	};
	struct hmmu_page *spage, *dpage = NULL;
	int err;

	args.start = addr & HMMU_PAGE_MASK;
	args.end = args.start + HMMU_PAGE_SIZE;
	hmmu_mmap_read_lock(mm);
	args.vma = hmmu_vma_lookup(mm, args.start);
	err = hmmu_migrate_vma_setup(&args);
	spage = err ? NULL : hmmu_migrate_pfn_to_page(src);
	if (spage && (src & HMMU_MIGRATE_PFN_MIGRATE) && (dpage = hmmu_test_dev_alloc(dev))) {
		memcpy(hmmu_test_dev_mem(dev, dpage), hmmu_page_address(spage), HMMU_PAGE_SIZE);
		dst = hmmu_migrate_pfn(hmmu_page_to_pfn(dpage)) | (src & HMMU_MIGRATE_PFN_WRITE);
	}
	if (!err) {
		hmmu_migrate_vma_pages(&args);
		hmmu_migrate_vma_finalize(&args);
	}
	hmmu_mmap_read_unlock(mm);
	assert_int_equal(err, 0);
	assert_non_null(dpage);
	assert_true(src & HMMU_MIGRATE_PFN_MIGRATE);
	return dpage;
}

/*
 * The default migrate_to_ram, as a driver writes it: setup over the
 * faulting page with fault_page set (SELECT_DEVICE_PRIVATE, our owner),
 * copy into a new locked system page, pages, finalize.  vmf->page stays
 * locked: hmmu unlocks it after the call.
 */
hmmu_vm_fault_t hmmu_test_dev_migrate_back(struct hmmu_test_dev *dev, struct hmmu_vm_fault *vmf)
{
	unsigned long src = 0, dst = 0;
	struct hmmu_migrate_vma args = {
		.vma = vmf->vma, .start = vmf->address, .end = vmf->address + HMMU_PAGE_SIZE,
		.src = &src, .dst = &dst, .pgmap_owner = dev->pgmap.owner,
		.flags = HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE, .fault_page = vmf->page,
	};
	struct hmmu_page *dpage, *spage = NULL;

	if (hmmu_migrate_vma_setup(&args))
		return HMMU_VM_FAULT_SIGBUS;
	dpage = hmmu_migrate_pfn_to_page(src);
	if (dpage && (src & HMMU_MIGRATE_PFN_MIGRATE) && (spage = hmmu_alloc_page_vma(vmf->vma, vmf->address))) {
		hmmu_lock_page(spage);
		memcpy(hmmu_page_address(spage), hmmu_test_dev_mem(dev, dpage), HMMU_PAGE_SIZE);
		dst = hmmu_migrate_pfn(hmmu_page_to_pfn(spage)) | (src & HMMU_MIGRATE_PFN_WRITE);
	}
	hmmu_migrate_vma_pages(&args);
	hmmu_migrate_vma_finalize(&args);
	return dpage && (src & HMMU_MIGRATE_PFN_MIGRATE) && !spage ? HMMU_VM_FAULT_OOM : 0;
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
