// SPDX-License-Identifier: MIT
/*
 * Driver-style code written with the kernel's spellings compiles against
 * kernel-compat.h and behaves as the hmmu calls do.
 */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_compat_driver_fragment),
		HMMU_TEST(test_compat_constants),
	};

	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
