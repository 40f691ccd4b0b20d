// SPDX-License-Identifier: MIT
/*
 * Driver-style code written with the kernel's spellings compiles against
 * kernel-compat.h and behaves as the hmmu calls do.
 */
#include <string.h>

#include "harness.h"

#include <hmmu/kernel-compat.h>

/* A fragment as a driver would write it: fault a page in, reference it. */
static struct page *driver_get_page(struct mm_struct *mm, unsigned long addr)
{
	struct page *pages[1];
	long n;

	mmap_read_lock(mm);
	n = get_user_pages_remote(mm, addr & PAGE_MASK, 1, FOLL_WRITE, pages, NULL, NULL);
	mmap_read_unlock(mm);
	return n == 1 ? pages[0] : NULL;
}

static void test_compat_driver_fragment(void **state)
{
	struct mm_struct *mm = hmmu_test_mm();
	long addr = hmmu_mmap(mm, 0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct page *page;
	char c = 'k';

	assert_true(addr > 0);
	assert_int_equal(hmmu_access(mm, addr + PAGE_SIZE + 7, &c, 1, HMMU_ACCESS_WRITE), 0);
	page = driver_get_page(mm, addr + PAGE_SIZE);
	assert_non_null(page);
	assert_int_equal(page_ref_count(page), 2);	/* the mapping's and ours */
	assert_int_equal(page_mapcount(page), 1);
	assert_true(PageAnon(page));
	assert_int_equal(((char *)page_address(page))[7], 'k');
	assert_false(is_zero_pfn(page_to_pfn(page)));
	put_page(page);
	assert_int_equal(page_ref_count(page), 1);
}

static void test_compat_constants(void **state)
{
	assert_int_equal(PAGE_SIZE, 4096);
	assert_int_equal(PMD_SIZE, 2 * 1024 * 1024);
	assert_int_equal(HPAGE_PMD_ORDER, 9);
	assert_true(VM_FAULT_ERROR & VM_FAULT_SIGBUS);
	assert_false(VM_FAULT_ERROR & VM_FAULT_RETRY);
}

/* A device driver's fragments, as written against the kernel. */
static int compat_owner;
static int compat_frees;
static struct page *compat_fault_page;

static void compat_page_free(struct page *page)
{
	compat_frees++;
}

static bool compat_fault_locked;

static vm_fault_t compat_migrate_to_ram(struct vm_fault *vmf)
{
	/* `vmf->page` reads the device page: the macro turns it into vmf->hmmu_page. */
	compat_fault_page = vmf->page;
	compat_fault_locked = PageLocked(vmf->page);
	return VM_FAULT_SIGBUS;
}

static const struct dev_pagemap_ops compat_devmem_ops = {
	.page_free = compat_page_free,
	.migrate_to_ram = compat_migrate_to_ram,
};

static void test_compat_device_memory(void **state)
{
	struct dev_pagemap pgmap = {
		.type = MEMORY_DEVICE_PRIVATE,
		.nr_range = 1,
		.ops = &compat_devmem_ops,
		.owner = &compat_owner,
	};
	struct vm_fault vmf = { .address = 0 };
	struct page *dpage;
	void *ptr;

	pgmap.range.start = 0;
	pgmap.range.end = 16 * PAGE_SIZE - 1;
	ptr = memremap_pages(&pgmap, 0);
	assert_false(IS_ERR_OR_NULL(ptr));
	dpage = pfn_to_page(pgmap.range.start >> PAGE_SHIFT);
	zone_device_page_init(dpage);
	assert_true(is_zone_device_page(dpage) && is_device_private_page(dpage));
	assert_false(is_device_coherent_page(dpage));
	assert_int_equal(page_ref_count(dpage), 1);
	vmf.page = dpage;
	assert_int_equal(pgmap.ops->migrate_to_ram(&vmf), VM_FAULT_SIGBUS);
	assert_ptr_equal(compat_fault_page, dpage);
	unlock_page(dpage);
	put_page(dpage);
	assert_int_equal(compat_frees, 1);
	memunmap_pages(&pgmap);
	pgmap.type = MEMORY_DEVICE_PRIVATE + 7;
	assert_true(IS_ERR(memremap_pages(&pgmap, 0)));
	assert_int_equal(PTR_ERR(memremap_pages(&pgmap, 0)), -EINVAL);
}

/* The test device's migrate_to_ram runs the kernel-spelled one, then migrates. */
static vm_fault_t compat_hook(struct hmmu_test_dev *dev, struct vm_fault *vmf)
{
	compat_migrate_to_ram(vmf);
	return hmmu_test_dev_migrate_back(dev, vmf);
}

/*
 * The core sets the field under its own name (vmf->page in hmmu's
 * sources); driver code reading the kernel's `vmf->page` sees it.
 */
static void test_compat_vmf_page(void **state)
{
	struct mm_struct *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(MEMORY_DEVICE_PRIVATE, 2, &compat_owner);
	long addr = hmmu_mmap(mm, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct page *dpage;
	char c = 'q';

	assert_true(addr > 0);
	assert_int_equal(hmmu_access(mm, addr, &c, 1, HMMU_ACCESS_WRITE), 0);
	dpage = hmmu_test_dev_to_device(dev, mm, addr);
	dev->migrate_hook = compat_hook;
	compat_fault_page = NULL;
	c = 0;
	assert_int_equal(hmmu_access(mm, addr, &c, 1, HMMU_ACCESS_READ), 0);
	assert_int_equal(c, 'q');
	assert_ptr_equal(compat_fault_page, dpage);
	assert_true(compat_fault_locked);
}

/* A mirror's fault path: hmm_range_fault with the kernel's names. */
static bool compat_invalidate(struct mmu_interval_notifier *sub, const struct mmu_notifier_range *range,
			      unsigned long cur_seq)
{
	mmu_interval_set_seq(sub, cur_seq);
	return true;
}

static const struct mmu_interval_notifier_ops compat_mirror_ops = { .invalidate = compat_invalidate };

static void test_compat_hmm_range_fault(void **state)
{
	struct mm_struct *mm = hmmu_test_mm();
	struct mmu_interval_notifier sub;
	long addr = hmmu_mmap(mm, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long pfns[2] = { 0, 0 };
	struct hmm_range range = {
		.notifier = &sub,
		.start = (unsigned long)addr,
		.end = (unsigned long)addr + 2 * PAGE_SIZE,
		.hmm_pfns = pfns,
		.default_flags = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
		.dev_private_owner = &compat_owner,
	};
	int ret;

	assert_true(addr > 0);
	assert_int_equal(mmu_interval_notifier_insert(&sub, mm, addr, 2 * PAGE_SIZE, &compat_mirror_ops), 0);
	do {
		range.notifier_seq = mmu_interval_read_begin(&sub);
		mmap_read_lock(mm);
		ret = hmm_range_fault(&range);
		mmap_read_unlock(mm);
	} while (ret == -EBUSY);
	assert_int_equal(ret, 0);
	assert_true((pfns[1] & (HMM_PFN_VALID | HMM_PFN_WRITE)) == (HMM_PFN_VALID | HMM_PFN_WRITE));
	assert_false(pfns[1] & HMM_PFN_ERROR);
	assert_int_equal(hmm_pfn_to_map_order(pfns[1]), 0);
	assert_int_equal(page_ref_count(hmm_pfn_to_page(pfns[1])), 1);
	assert_int_equal(page_to_pfn(hmm_pfn_to_page(pfns[0])), pfns[0] & ~HMM_PFN_FLAGS);
	assert_int_equal(HMM_PFN_ORDER_SHIFT, 56);
	assert_int_equal(HMM_RANGE_DEFAULT_TIMEOUT, 1000);
	mmu_interval_notifier_remove(&sub);
}

/*
 * dmirror's EXCLUSIVE step with the kernel's names: exclusive entries for
 * a range, the pages locked and referenced while the driver maps them,
 * then unlocked and put; a CPU read restores the entry.
 */
static void test_compat_make_device_exclusive_range(void **state)
{
	struct mm_struct *mm = hmmu_test_mm();
	long addr = hmmu_mmap(mm, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct page *pages[2];
	char c = 'x';
	long n;

	assert_true(addr > 0);
	assert_int_equal(hmmu_access(mm, addr + PAGE_SIZE, &c, 1, HMMU_ACCESS_WRITE), 0);
	mmap_read_lock(mm);
	n = make_device_exclusive_range(mm, addr, addr + 2 * PAGE_SIZE, pages, &compat_owner);
	mmap_read_unlock(mm);
	assert_int_equal(n, 2);
	for (int i = 0; i < 2; i++) {
		assert_non_null(pages[i]);
		assert_true(PageLocked(pages[i]));
		assert_int_equal(page_ref_count(pages[i]), 2);	/* the entry's and ours */
		assert_int_equal(page_mapcount(pages[i]), 0);
		unlock_page(pages[i]);
		put_page(pages[i]);
	}
	c = 0;
	assert_int_equal(hmmu_access(mm, addr + PAGE_SIZE, &c, 1, HMMU_ACCESS_READ), 0);
	assert_int_equal(c, 'x');
	assert_int_equal(page_mapcount(pages[1]), 1);
}

/*
 * A driver's migration with the kernel's spellings: migrate_vma_* moves a
 * page to device-private memory, migrate_device_* evicts it back.
 */
static void test_compat_migrate(void **state)
{
	struct mm_struct *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(MEMORY_DEVICE_PRIVATE, 2, &compat_owner);
	long addr = hmmu_mmap(mm, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long src = 0, dst = 0, esrc[1], edst[1];
	struct migrate_vma args = {
		.src = &src, .dst = &dst, .pgmap_owner = &compat_owner, .flags = MIGRATE_VMA_SELECT_SYSTEM,
	};
	struct page *spage, *dpage, *back;
	unsigned long committed;
	char c = 'm';
	int ret;

	assert_true(addr > 0);
	assert_int_equal(hmmu_access(mm, addr, &c, 1, HMMU_ACCESS_WRITE), 0);
	mmap_read_lock(mm);
	args.vma = vma_lookup(mm, addr);
	args.start = addr;
	args.end = addr + PAGE_SIZE;
	ret = migrate_vma_setup(&args);
	spage = migrate_pfn_to_page(src);
	dpage = hmmu_test_dev_alloc(dev);	/* zone_device_page_init: locked, one reference */
	if (spage && dpage) {
		memcpy(hmmu_test_dev_mem(dev, dpage), page_address(spage), PAGE_SIZE);
		dst = migrate_pfn(page_to_pfn(dpage)) | (src & MIGRATE_PFN_WRITE);
	}
	migrate_vma_pages(&args);
	committed = src & MIGRATE_PFN_MIGRATE;
	migrate_vma_finalize(&args);
	mmap_read_unlock(mm);
	assert_int_equal(ret, 0);
	assert_non_null(spage);
	assert_true(committed && (src & MIGRATE_PFN_VALID));
	assert_true(is_device_private_page(dpage));
	/* Evict it (no VMA needed), copying the device's bytes to a new page. */
	assert_int_equal(migrate_device_range(esrc, page_to_pfn(dpage), 1), 0);
	assert_int_equal(esrc[0], migrate_pfn(page_to_pfn(dpage)) | MIGRATE_PFN_MIGRATE);
	back = alloc_page(GFP_HIGHUSER_MOVABLE);
	lock_page(back);
	memcpy(page_address(back), hmmu_test_dev_mem(dev, dpage), PAGE_SIZE);
	edst[0] = migrate_pfn(page_to_pfn(back));
	assert_int_equal(migrate_device_pages(esrc, edst, 1), 0);
	assert_int_equal(migrate_device_finalize(esrc, edst, 1), 0);
	c = 0;
	assert_int_equal(hmmu_access(mm, addr, &c, 1, HMMU_ACCESS_READ), 0);
	assert_int_equal(c, 'm');
	assert_int_equal(atomic_load(&dev->migrate_calls), 0);
	assert_int_equal(MIGRATE_PFN_SHIFT, 6);
	assert_int_equal(MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_DEVICE_COHERENT, 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_compat_driver_fragment),
		HMMU_TEST(test_compat_constants),
		HMMU_TEST(test_compat_device_memory),
		HMMU_TEST(test_compat_vmf_page),
		HMMU_TEST(test_compat_hmm_range_fault),
		HMMU_TEST(test_compat_migrate),
		HMMU_TEST(test_compat_make_device_exclusive_range),
	};

	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
