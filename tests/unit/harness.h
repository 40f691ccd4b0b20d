/* SPDX-License-Identifier: MIT */
/*
 * Shared test fixture.  Every test group runs with hmmu initialised; after
 * every test the fixture destroys the mms the test created through
 * hmmu_test_mm(), runs the validators (page tables of each mm before it is
 * destroyed, then the page allocator) and checks that every page came back.
 *
 * Randomised tests take their seed from hmmu_test_seed(): HMMU_SEED=N in the
 * environment replays a run; otherwise a seed is chosen and printed.
 */
#ifndef HMMU_TEST_HARNESS_H
#define HMMU_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

/* The seed of this run (printed once). */
unsigned long hmmu_test_seed(void);
/* xorshift64* generator seeded from hmmu_test_seed(); one per thread if needed. */
uint64_t hmmu_test_rand(uint64_t *state);

/* Group fixtures: hmmu_init with @ram bytes (0: 256 MiB) / hmmu_exit. */
int hmmu_test_group_setup(void **state);
int hmmu_test_group_teardown(void **state);
/* Per-test fixtures: record the free-page baseline / validate and compare. */
int hmmu_test_setup(void **state);
int hmmu_test_teardown(void **state);

/* An mm owned by the fixture: validated and destroyed after the test. */
struct hmmu_mm *hmmu_test_mm(void);
/* Map private anonymous memory (plus @flags, e.g. MAP_FIXED) or fail the test. */
unsigned long hmmu_test_map_at(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot, int flags);
/* The same at an address hmmu chooses. */
unsigned long hmmu_test_map(struct hmmu_mm *mm, size_t len, int prot);
/* The leaf entry mapping @addr, or 0; *@hugep (if set): it is a PMD leaf. */
hmmu_pte_t hmmu_test_leaf(struct hmmu_mm *mm, unsigned long addr, bool *hugep);

#define HMMU_TEST(fn) cmocka_unit_test_setup_teardown(fn, hmmu_test_setup, hmmu_test_teardown)

#endif
