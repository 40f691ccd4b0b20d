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
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
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
/* hmmu_mm_create() flags hmmu_test_mm() uses (HMMU_MM_DEFAULT; conformance host variant: HMMU_MM_HOST). */
extern unsigned int hmmu_test_mm_flags;
/* Map private anonymous memory (plus @flags, e.g. MAP_FIXED) or fail the test. */
unsigned long hmmu_test_map_at(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot, int flags);
/* The same at an address hmmu chooses. */
unsigned long hmmu_test_map(struct hmmu_mm *mm, size_t len, int prot);
/* The leaf entry mapping @addr, or 0; *@hugep (if set): it is a PMD leaf. */
hmmu_pte_t hmmu_test_leaf(struct hmmu_mm *mm, unsigned long addr, bool *hugep);
/* Replace the PTE (not a huge leaf) mapping @addr by @val under its lock; the old entry. */
hmmu_pte_t hmmu_test_swap_pte(struct hmmu_mm *mm, unsigned long addr, hmmu_pte_t val);
/* hmmu_fork() or fail the test / validate a child and drop its user reference. */
struct hmmu_mm *hmmu_test_fork(struct hmmu_mm *mm);
void hmmu_test_fork_done(struct hmmu_mm *child);

/*
 * Test devices (harness_dev.c): a pagemap with a minimal driver, owned by
 * the fixture.  After each test (and after its mms are gone) the fixture
 * checks that every frame of every test device is free, that page_free ran
 * once per allocation and that no callback saw a broken contract, then
 * removes the pagemaps.
 */
struct hmmu_test_dev {
	struct hmmu_dev_pagemap pgmap;
	unsigned long nr_pages, first_pfn;
	unsigned char *store;		/* private: the device's memory, per frame */
	pthread_mutex_t lock;		/* in_use[], nr_frees[] */
	bool *in_use;			/* frame allocated (between init and page_free) */
	int *nr_frees;			/* page_free calls per frame */
	atomic_long allocs, page_frees, migrate_calls;
	atomic_int errors;		/* contract violations seen by the callbacks */
	/* migrate_to_ram's body (default: hmmu_test_dev_migrate_back). */
	hmmu_vm_fault_t (*migrate_hook)(struct hmmu_test_dev *dev, struct hmmu_vm_fault *vmf);
	void *hook_data;
};

/* A new test device of @nr_pages frames (fails the test on error). */
struct hmmu_test_dev *hmmu_test_dev(enum hmmu_memory_type type, unsigned long nr_pages, void *owner);
/* A free frame, initialised (refcount 1, locked), or NULL. */
struct hmmu_page *hmmu_test_dev_alloc(struct hmmu_test_dev *dev);
/* The bytes of @page as the device holds them. */
void *hmmu_test_dev_mem(struct hmmu_test_dev *dev, struct hmmu_page *page);
/*
 * Migrate the anonymous page mapped at @addr to a new frame of @dev with
 * hmmu_migrate_vma_* (SELECT_SYSTEM, owner = the device's): private, a
 * device-private entry, write variant iff the PTE was writable; coherent,
 * a present PTE.  Fails the test unless it moved.  Returns the device page
 * (unlocked, the entry's reference).
 */
struct hmmu_page *hmmu_test_dev_to_device(struct hmmu_test_dev *dev, struct hmmu_mm *mm, unsigned long addr);
/* The default migrate_to_ram: move vmf->page back into a new system page with hmmu_migrate_vma_*. */
hmmu_vm_fault_t hmmu_test_dev_migrate_back(struct hmmu_test_dev *dev, struct hmmu_vm_fault *vmf);
/* Check and remove @dev now (the fixture forgets it). */
void hmmu_test_dev_destroy(struct hmmu_test_dev *dev);

/*
 * Small helpers every test uses (static inline: each program takes what
 * it needs).  CPU accesses that must succeed, the free-page count of node
 * 0, an mm's statistics, a fault at an address, a VMA's flags, sleeping.
 */
static inline void put_bytes(struct hmmu_mm *mm, unsigned long addr, const void *buf, size_t len)
{
	assert_int_equal(hmmu_access(mm, addr, (void *)buf, len, HMMU_ACCESS_WRITE), 0);
}

static inline void get_bytes(struct hmmu_mm *mm, unsigned long addr, void *buf, size_t len)
{
	assert_int_equal(hmmu_access(mm, addr, buf, len, HMMU_ACCESS_READ), 0);
}

/* The memory at @addr equals @want. */
static inline void check_bytes(struct hmmu_mm *mm, unsigned long addr, const unsigned char *want, size_t len)
{
	unsigned char *buf = malloc(len);

	assert_non_null(buf);
	get_bytes(mm, addr, buf, len);
	assert_memory_equal(buf, want, len);
	free(buf);
}

static inline void put_byte(struct hmmu_mm *mm, unsigned long addr, unsigned char v)
{
	put_bytes(mm, addr, &v, 1);
}

static inline unsigned char get_byte(struct hmmu_mm *mm, unsigned long addr)
{
	unsigned char v;

	get_bytes(mm, addr, &v, 1);
	return v;
}

static inline long nr_free(void)
{
	return hmmu_node_nr_free_pages(0);
}

static inline struct hmmu_mm_stats stats(struct hmmu_mm *mm)
{
	struct hmmu_mm_stats st;

	assert_int_equal(hmmu_mm_get_stats(mm, &st), 0);
	return st;
}

static inline hmmu_vm_fault_t fault_at(struct hmmu_mm *mm, unsigned long addr, unsigned int flags)
{
	hmmu_vm_fault_t ret;

	hmmu_mmap_read_lock(mm);
	ret = hmmu_handle_mm_fault(hmmu_vma_lookup(mm, addr), addr, flags);
	hmmu_mmap_read_unlock(mm);
	return ret;
}

static inline unsigned long vma_flags(struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_vma *vma;
	unsigned long flags;

	hmmu_mmap_read_lock(mm);
	vma = hmmu_vma_lookup(mm, addr);
	assert_non_null(vma);
	flags = vma->vm_flags;
	hmmu_mmap_read_unlock(mm);
	return flags;
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static inline long gup(struct hmmu_mm *mm, unsigned long start, unsigned long nr, unsigned int flags,
		       struct hmmu_page **pages)
{
	long ret;

	hmmu_mmap_read_lock(mm);
	ret = hmmu_get_user_pages_remote(mm, start, nr, flags, pages);
	hmmu_mmap_read_unlock(mm);
	return ret;
}

static inline long pin(struct hmmu_mm *mm, unsigned long start, unsigned long nr, unsigned int flags,
		       struct hmmu_page **pages)
{
	long ret;

	hmmu_mmap_read_lock(mm);
	ret = hmmu_pin_user_pages_remote(mm, start, nr, flags, pages);
	hmmu_mmap_read_unlock(mm);
	return ret;
}

/* Bound on every wait of the tests (generous: sanitizer builds are slow). */
#define WAIT_LIMIT_MS 30000

#ifdef _GNU_SOURCE	/* pthread_timedjoin_np: programs that define it first */
/* Join @t; false if it has not finished within @ms. */
static inline bool join_within(pthread_t t, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}
#endif

/* Poll @bit of @page until it is set, at most WAIT_LIMIT_MS; returns whether it was. */
static inline bool wait_for_flag(struct hmmu_page *page, enum hmmu_pageflags bit)
{
	for (long waited = 0; waited < WAIT_LIMIT_MS; waited++) {
		if (hmmu_page_test_flag(page, bit))
			return true;
		sleep_ms(1);
	}
	return hmmu_page_test_flag(page, bit);
}

#define HMMU_TEST(fn) cmocka_unit_test_setup_teardown(fn, hmmu_test_setup, hmmu_test_teardown)

/*
 * Table-driven invalid-argument tests: each case is a call with bad
 * arguments and the errno its doc promises.  hmmu_test_arg_cases() fails
 * the test after printing every case whose result differs.
 */
struct hmmu_arg_case {
	const char *call;
	long got, want;
};
#define ARG_CASE(call, want) { #call, (long)(call), (want) }
void hmmu_test_arg_cases(const struct hmmu_arg_case *cases, size_t n);

#endif
