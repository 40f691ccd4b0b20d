// SPDX-License-Identifier: MIT
/*
 * Unit tests of fault injection (include/hmmu/fault_inject.h).  With the
 * build option: the string form and its errors, the Nth-call and rate
 * modes, each site's failure surfacing as the real failure would (an
 * allocation returning NULL, a fault returning -ENOMEM, a device copy
 * leaving its page in system memory) with the data intact, and
 * HMMU_FAULT_INJECT read by hmmu_init.  Without it: -EOPNOTSUPP.
 */
#include <stdlib.h>
#include <string.h>

#include <hmmu/dmirror.h>

#include "harness.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)

static void test_fault_inject_names(void **state)
{
	for (unsigned int i = 0; i < HMMU_FAULT_NR; i++)
		assert_non_null(hmmu_fault_inject_site_name(i));
	assert_string_equal(hmmu_fault_inject_site_name(HMMU_FAULT_PAGE_ALLOC), "page_alloc");
	assert_null(hmmu_fault_inject_site_name(HMMU_FAULT_NR));
	assert_false(hmmu_fault_inject_should_fail(HMMU_FAULT_NR));
}

#ifdef HMMU_FAULT_INJECT

static void sites_off(void)
{
	for (unsigned int i = 0; i < HMMU_FAULT_NR; i++)
		hmmu_fault_inject_set(i, 0, 0);
}

static void test_fault_inject_parse_errors(void **state)
{
	static const char *const bad[] = {
		"page_alloc", "bogus:rate=0.1", "page_alloc:rate=2", "page_alloc:rate=-0.5", "page_alloc:nth=0",
		"page_alloc:nth=-1", "page_alloc:rate=", "page_alloc:speed=1", "seed=x", "seed=", ",",
	};

	assert_int_equal(hmmu_fault_inject_parse(NULL), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hmmu_fault_inject_parse(bad[i]), -EINVAL);
	assert_int_equal(hmmu_fault_inject_set(HMMU_FAULT_NR, 0, 0), -EINVAL);
	assert_int_equal(hmmu_fault_inject_set(HMMU_FAULT_PAGE_ALLOC, 1000001, 0), -EINVAL);
	assert_int_equal(hmmu_fault_inject_count(HMMU_FAULT_NR), -EINVAL);
	sites_off();
}

/* nth=3: the third allocation from now fails, only that one. */
static void test_fault_inject_nth(void **state)
{
	long before = hmmu_fault_inject_count(HMMU_FAULT_PAGE_ALLOC);
	struct hmmu_page *p[4];

	assert_int_equal(hmmu_fault_inject_parse("page_alloc:nth=3,seed=7"), 0);
	for (int i = 0; i < 4; i++)
		p[i] = hmmu_alloc_page(HMMU_GFP_KERNEL);
	sites_off();
	assert_non_null(p[0]);
	assert_non_null(p[1]);
	assert_null(p[2]);
	assert_non_null(p[3]);
	assert_int_equal(hmmu_fault_inject_count(HMMU_FAULT_PAGE_ALLOC), before + 1);
	for (int i = 0; i < 4; i++)
		if (p[i])
			hmmu_put_page(p[i]);
}

/* rate=1 fails every call, rate=0.5 about half (seeded: same draws for the same seed). */
static void test_fault_inject_rate(void **state)
{
	unsigned int fails[2] = { 0, 0 };

	assert_int_equal(hmmu_fault_inject_parse("pt_alloc:rate=1"), 0);
	for (int i = 0; i < 10; i++)
		assert_true(hmmu_fault_inject_should_fail(HMMU_FAULT_PT_ALLOC));
	for (int run = 0; run < 2; run++) {
		assert_int_equal(hmmu_fault_inject_parse("pt_alloc:rate=0.5,seed=42"), 0);
		for (int i = 0; i < 1000; i++)
			fails[run] += hmmu_fault_inject_should_fail(HMMU_FAULT_PT_ALLOC);
	}
	sites_off();
	assert_int_equal(fails[0], fails[1]);
	assert_in_range(fails[0], 400, 600);
	assert_false(hmmu_fault_inject_should_fail(HMMU_FAULT_PT_ALLOC));
}

/* A failed page-table allocation makes the access fail with -ENOMEM; a retry completes it. */
static void test_fault_inject_pt_alloc(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	unsigned char v = 0x5a;

	assert_int_equal(hmmu_fault_inject_set(HMMU_FAULT_PT_ALLOC, 1000000, 0), 0);
	assert_int_equal(hmmu_access(mm, a, &v, 1, HMMU_ACCESS_WRITE), -ENOMEM);
	sites_off();
	put_byte(mm, a, v);
	assert_int_equal(get_byte(mm, a), 0x5a);
}

/*
 * A device copy that fails (a DMA error) leaves that page in system memory
 * with its data, the other pages move, and the failed destination is freed.
 */
static void test_fault_inject_device_copy(void **state)
{
	struct hmmu_dmirror_device_config cfg = { .chunk_size = 2UL << 20 };
	struct hmmu_dmirror_device *dev;
	struct hmmu_dmirror_device_stats ds;
	struct hmmu_dmirror *mirror;
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	unsigned char buf[2 * PAGE];

	memset(buf, 0x11, PAGE);
	memset(buf + PAGE, 0x22, PAGE);
	put_bytes(mm, a, buf, sizeof(buf));
	assert_int_equal(hmmu_dmirror_device_create(&cfg, &dev), 0);
	assert_int_equal(hmmu_dmirror_open(dev, mm, &mirror), 0);
	assert_int_equal(hmmu_fault_inject_parse("device_copy:nth=1"), 0);
	assert_int_equal(hmmu_dmirror_migrate_to_device(mirror, a, 2, 2), 1);
	sites_off();
	assert_int_equal(hmmu_dmirror_device_get_stats(dev, &ds), 0);
	assert_int_equal(ds.pages_in_use, 1);
	assert_true(hmmu_pte_present(hmmu_test_leaf(mm, a, NULL)));
	assert_false(hmmu_pte_present(hmmu_test_leaf(mm, a + PAGE, NULL)));
	check_bytes(mm, a, buf, sizeof(buf));
	assert_int_equal(hmmu_dmirror_close(mirror), 0);
	assert_int_equal(hmmu_dmirror_device_destroy(dev), 0);
}

/* hmmu_init reads HMMU_FAULT_INJECT: a malformed value fails it. */
static void test_fault_inject_env(void **state)
{
	struct hmmu_config cfg = { .ram_size = 256UL << 20 };

	assert_int_equal(hmmu_exit(), 0);
	setenv("HMMU_FAULT_INJECT", "page_alloc:rate=7", 1);
	assert_int_equal(hmmu_init(&cfg), -EINVAL);
	setenv("HMMU_FAULT_INJECT", "device_alloc:nth=2", 1);
	assert_int_equal(hmmu_init(&cfg), 0);
	unsetenv("HMMU_FAULT_INJECT");
	assert_false(hmmu_fault_inject_should_fail(HMMU_FAULT_DEVICE_ALLOC));
	assert_true(hmmu_fault_inject_should_fail(HMMU_FAULT_DEVICE_ALLOC));
	sites_off();
	/* The fixture's baseline was taken before the re-initialisation. */
	hmmu_test_setup(state);
}

#else /* !HMMU_FAULT_INJECT */

static void test_fault_inject_unsupported(void **state)
{
	assert_int_equal(hmmu_fault_inject_set(HMMU_FAULT_PAGE_ALLOC, 1, 0), -EOPNOTSUPP);
	assert_int_equal(hmmu_fault_inject_seed(1), -EOPNOTSUPP);
	assert_int_equal(hmmu_fault_inject_parse("page_alloc:rate=1"), -EOPNOTSUPP);
	assert_int_equal(hmmu_fault_inject_count(HMMU_FAULT_PAGE_ALLOC), -EOPNOTSUPP);
	assert_false(hmmu_fault_inject_should_fail(HMMU_FAULT_PAGE_ALLOC));
}

#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_fault_inject_names),
#ifdef HMMU_FAULT_INJECT
		HMMU_TEST(test_fault_inject_parse_errors),
		HMMU_TEST(test_fault_inject_nth),
		HMMU_TEST(test_fault_inject_rate),
		HMMU_TEST(test_fault_inject_pt_alloc),
		HMMU_TEST(test_fault_inject_device_copy),
		HMMU_TEST(test_fault_inject_env),
#else
		HMMU_TEST(test_fault_inject_unsupported),
#endif
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
