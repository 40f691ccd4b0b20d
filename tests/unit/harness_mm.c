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

struct hmmu_mm *hmmu_test_mm(void)
{
	struct hmmu_mm *mm;

	assert_true(nr_test_mms < MAX_TEST_MMS);
	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm), 0);
	test_mms[nr_test_mms++] = mm;
	hmmu_test_mm_teardown = test_mms_destroy;
	return mm;
}
