// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"

static unsigned long seed;
static bool seeded;
static long baseline_free;
/* Set by harness_mm.c when a test created mms; run before the checks. */
void (*hmmu_test_mm_teardown)(void);
/* Set by harness_dev.c when a test created devices; run after the mms went. */
void (*hmmu_test_dev_teardown)(void);

unsigned long hmmu_test_seed(void)
{
	const char *env = getenv("HMMU_SEED");

	if (!seeded) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = env ? strtoul(env, NULL, 0) : (unsigned long)(ts.tv_nsec ^ ts.tv_sec);
		if (!seed)
			seed = 1;
		seeded = true;
		printf("# seed %lu (replay with HMMU_SEED=%lu)\n", seed, seed);
	}
	return seed;
}

uint64_t hmmu_test_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

int hmmu_test_group_setup(void **state)
{
	struct hmmu_config cfg = { .ram_size = 256UL << 20 };

	return hmmu_init(&cfg);
}

int hmmu_test_group_teardown(void **state)
{
	return hmmu_exit();
}

int hmmu_test_setup(void **state)
{
	baseline_free = hmmu_node_nr_free_pages(0);
	return 0;
}

int hmmu_test_teardown(void **state)
{
	if (hmmu_test_mm_teardown)
		hmmu_test_mm_teardown();
	if (hmmu_test_dev_teardown)
		hmmu_test_dev_teardown();
	assert_int_equal(hmmu_page_alloc_validate(), 0);
	assert_int_equal(hmmu_node_nr_free_pages(0), baseline_free);
	return 0;
}

void hmmu_test_arg_cases(const struct hmmu_arg_case *cases, size_t n)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++) {
		if (cases[i].got == cases[i].want)
			continue;
		print_error("%s: %ld, documented %ld\n", cases[i].call, cases[i].got, cases[i].want);
		bad++;
	}
	assert_int_equal(bad, 0);
}
