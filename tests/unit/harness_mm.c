// SPDX-License-Identifier: MIT
/* The mm part of the fixture; linked only into tests that create mms. */
#include "harness.h"

#define MAX_TEST_MMS 64

extern void (*hmmu_test_mm_teardown)(void);
static struct hmmu_mm *test_mms[MAX_TEST_MMS];
static int nr_test_mms;

/* Validate and destroy every mm, then report: one failure must not leak the rest. */
static void test_mms_destroy(void)
{
	int failed = 0, n = nr_test_mms;

	nr_test_mms = 0;
	for (int i = 0; i < n; i++) {
		failed += hmmu_pt_validate(test_mms[i]) != 0;
		hmmu_mmput(test_mms[i]);
	}
	assert_int_equal(failed, 0);
}

unsigned int hmmu_test_mm_flags = HMMU_MM_DEFAULT;

struct hmmu_mm *hmmu_test_mm(void)
{
	struct hmmu_mm *mm;

	assert_true(nr_test_mms < MAX_TEST_MMS);
	assert_int_equal(hmmu_mm_create(hmmu_test_mm_flags, &mm), 0);
	test_mms[nr_test_mms++] = mm;
	hmmu_test_mm_teardown = test_mms_destroy;
	return mm;
}

unsigned long hmmu_test_map_at(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot, int flags)
{
	long ret = hmmu_mmap(mm, addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);

	assert_true(ret >= 0);
	return (unsigned long)ret;
}

unsigned long hmmu_test_map(struct hmmu_mm *mm, size_t len, int prot)
{
	return hmmu_test_map_at(mm, 0, len, prot, 0);
}

hmmu_pte_t hmmu_test_leaf(struct hmmu_mm *mm, unsigned long addr, bool *hugep)
{
	struct hmmu_pt *pt;
	bool huge = false;
	hmmu_pte_t *ep, e = 0;

	hmmu_mmap_read_lock(mm);
	ep = hmmu_leaf_lookup_lock(mm, addr, &pt, &huge);
	if (ep) {
		e = hmmu_pte_read(ep);
		hmmu_pt_unlock(pt);
	}
	hmmu_mmap_read_unlock(mm);
	if (hugep)
		*hugep = ep && huge;
	return e;
}

hmmu_pte_t hmmu_test_swap_pte(struct hmmu_mm *mm, unsigned long addr, hmmu_pte_t val)
{
	struct hmmu_pt *pt;
	bool huge = false;
	hmmu_pte_t *ep, old = 0;

	hmmu_mmap_read_lock(mm);
	ep = hmmu_leaf_lookup_lock(mm, addr, &pt, &huge);
	if (ep && !huge) {
		old = hmmu_pte_read(ep);
		hmmu_pte_set(pt, ep, val);
	}
	if (ep)
		hmmu_pt_unlock(pt);
	hmmu_mmap_read_unlock(mm);
	assert_true(ep && !huge);
	return old;
}

struct hmmu_mm *hmmu_test_fork(struct hmmu_mm *mm)
{
	struct hmmu_mm *child = NULL;

	assert_int_equal(hmmu_fork(mm, &child), 0);
	assert_non_null(child);
	return child;
}

void hmmu_test_fork_done(struct hmmu_mm *child)
{
	assert_int_equal(hmmu_pt_validate(child), 0);
	hmmu_mmput(child);
}
