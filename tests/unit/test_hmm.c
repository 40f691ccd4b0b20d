// SPDX-License-Identifier: MIT
/*
 * Unit tests of hmmu_range_fault() (spec 2): every row of the decision
 * table that hmmu can build (empty entries with and without REQ_FAULT, the
 * zero page, read-only and writable pages, PROT_NONE, gaps, PFNMAP and
 * special entries, transparent huge pages, hugetlb with quirk Q4, own and
 * foreign device-private pages with Q1, device-coherent pages), the
 * default_flags / pfn_flags_mask rules, the Q2 over-faulting within one
 * PTE table, -EBUSY on a sequence change and on timeout, waiting for a
 * migration entry, error codes, and the driver-side retry loop.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define MiB (1UL << 20)
#define V HMMU_PFN_VALID
#define W HMMU_PFN_WRITE
#define REQ HMMU_PFN_REQ_FAULT
#define REQW (HMMU_PFN_REQ_FAULT | HMMU_PFN_REQ_WRITE)
#define ORDER9 (9UL << HMMU_PFN_ORDER_SHIFT)
/* The retry bound of this group (short, so the timeout test is quick). */
#define RETRY_MS 200
#define NMAX 1024

static int owner_a, owner_b;

/* ------------------------------------------------------------------ */
/* A mirror: an interval subscription and the driver lock              */
/* ------------------------------------------------------------------ */

struct mirror {
	struct hmmu_interval_notifier sub;
	pthread_mutex_t lock;		/* the driver lock */
	int invalidations;		/* lock */
};

static struct mirror *mirrors[8];
static int nr_mirrors;

static bool mirror_invalidate(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
			      unsigned long cur_seq)
{
	struct mirror *m = hmmu_container_of(sub, struct mirror, sub);

	if (!hmmu_notifier_range_blockable(range)) {
		if (pthread_mutex_trylock(&m->lock))
			return false;
	} else {
		pthread_mutex_lock(&m->lock);
	}
	hmmu_interval_set_seq(sub, cur_seq);
	m->invalidations++;
	pthread_mutex_unlock(&m->lock);
	return true;
}

static const struct hmmu_interval_notifier_ops mirror_ops = { .invalidate = mirror_invalidate };

/* A mirror of all of @mm, removed by the test's teardown. */
static struct mirror *mirror_new(struct hmmu_mm *mm)
{
	struct mirror *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	assert_true(nr_mirrors < 8);
	pthread_mutex_init(&m->lock, NULL);
	assert_int_equal(hmmu_interval_notifier_insert(&m->sub, mm, HMMU_MMAP_MIN_ADDR,
						       HMMU_TASK_SIZE - HMMU_MMAP_MIN_ADDR, &mirror_ops), 0);
	mirrors[nr_mirrors++] = m;
	return m;
}

static int hmm_teardown(void **state)
{
	for (int i = 0; i < nr_mirrors; i++) {
		hmmu_interval_notifier_remove(&mirrors[i]->sub);
		pthread_mutex_destroy(&mirrors[i]->lock);
		free(mirrors[i]);
	}
	nr_mirrors = 0;
	return hmmu_test_teardown(state);
}

#define HMM_TEST(fn) cmocka_unit_test_setup_teardown(fn, hmmu_test_setup, hmm_teardown)

static int hmm_group_setup(void **state)
{
	struct hmmu_config cfg = { .ram_size = 256UL << 20, .retry_timeout_ms = RETRY_MS };

	return hmmu_init(&cfg);
}

/* The arguments of one call. */
struct req {
	unsigned long dflags, mask;
	void *owner;
};

/*
 * hmmu_range_fault() over @npages at @start, pfns in and out, as a driver
 * calls it: with a fresh sequence, again (inputs restored, Q5) while it
 * fails with -EBUSY because an invalidation hit the range (the faults'
 * own copy-on-write does), at most 100 times.  An -EBUSY without a
 * sequence change (the retry bound) is returned.
 */
static int mfault(struct mirror *m, unsigned long start, unsigned long npages, unsigned long *pfns, struct req r)
{
	struct hmmu_range range = {
		.notifier = &m->sub,
		.start = start,
		.end = start + npages * PAGE,
		.hmm_pfns = pfns,
		.default_flags = r.dflags,
		.pfn_flags_mask = r.mask,
		.dev_private_owner = r.owner,
	};
	unsigned long in[NMAX];
	int ret, tries = 0;

	assert_true(npages <= NMAX);
	memcpy(in, pfns, npages * sizeof(*pfns));
	do {
		memcpy(pfns, in, npages * sizeof(*pfns));
		range.notifier_seq = hmmu_interval_read_begin(&m->sub);
		hmmu_mmap_read_lock(m->sub.mm);
		ret = hmmu_range_fault(&range);
		hmmu_mmap_read_unlock(m->sub.mm);
	} while (ret == -EBUSY && hmmu_interval_read_retry(&m->sub, range.notifier_seq) && ++tries < 100);
	return ret;
}

/* Fill @pfns with @v, then fault with default flags @dflags (no per-page flags). */
static int mfault_all(struct mirror *m, unsigned long start, unsigned long npages, unsigned long *pfns,
		      unsigned long dflags, void *owner)
{
	for (unsigned long i = 0; i < npages; i++)
		pfns[i] = 0;
	return mfault(m, start, npages, pfns, (struct req){ .dflags = dflags, .owner = owner });
}

static int snapshot(struct mirror *m, unsigned long start, unsigned long npages, unsigned long *pfns)
{
	return mfault_all(m, start, npages, pfns, 0, NULL);
}

static unsigned long mm_faults(struct hmmu_mm *mm)
{
	struct hmmu_mm_stats st;

	assert_int_equal(hmmu_mm_get_stats(mm, &st), 0);
	return st.faults;
}

/* The frame number mapped at @addr by a present entry. */
static unsigned long pfn_at(struct hmmu_mm *mm, unsigned long addr)
{
	bool huge;
	hmmu_pte_t e = hmmu_test_leaf(mm, addr, &huge);

	assert_true(hmmu_pte_present(e));
	return hmmu_pte_pfn(e) + (huge ? (addr & ~HMMU_PMD_MASK) >> HMMU_PAGE_SHIFT : 0);
}

static unsigned long zero_pfn(void)
{
	return hmmu_page_to_pfn(hmmu_zero_page());
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Arguments                                                           */
/* ------------------------------------------------------------------ */

static void test_hmm_einval(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW), pfns[4];
	struct hmmu_range r = { .notifier = &m->sub, .start = a, .end = a + 4 * PAGE, .hmm_pfns = pfns };

	hmmu_mmap_read_lock(mm);
	r.notifier_seq = hmmu_interval_read_begin(&m->sub);
	assert_int_equal(hmmu_range_fault(NULL), -EINVAL);
	r.hmm_pfns = NULL;
	assert_int_equal(hmmu_range_fault(&r), -EINVAL);
	r.hmm_pfns = pfns;
	r.notifier = NULL;
	assert_int_equal(hmmu_range_fault(&r), -EINVAL);
	r.notifier = &m->sub;
	r.end = a;
	assert_int_equal(hmmu_range_fault(&r), -EINVAL);	/* start == end */
	r.end = a - PAGE;
	assert_int_equal(hmmu_range_fault(&r), -EINVAL);	/* start > end */
	r.end = a + 4 * PAGE;
	r.start = a + 1;
	assert_int_equal(hmmu_range_fault(&r), -EINVAL);
	r.start = a;
	r.end = a + 4 * PAGE - 1;
	assert_int_equal(hmmu_range_fault(&r), -EINVAL);
	r.start = HMMU_TASK_SIZE - PAGE;
	r.end = HMMU_TASK_SIZE + PAGE;
	assert_int_equal(hmmu_range_fault(&r), -EINVAL);
	r.start = a;
	r.end = a + 4 * PAGE;
	assert_int_equal(hmmu_range_fault(&r), 0);
	hmmu_mmap_read_unlock(mm);
}

/* ------------------------------------------------------------------ */
/* Anonymous memory                                                    */
/* ------------------------------------------------------------------ */

/* Empty entries: 0 without REQ_FAULT (nothing faulted, even with per-page flags masked off). */
static void test_hmm_snapshot_none(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW), pfns[8];
	unsigned long faults = mm_faults(mm);

	assert_int_equal(snapshot(m, a, 8, pfns), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pfns[i], 0);
	for (int i = 0; i < 8; i++)
		pfns[i] = REQW;
	assert_int_equal(mfault(m, a, 8, pfns, (struct req){ 0 }), 0);	/* mask 0: inputs ignored */
	for (int i = 0; i < 8; i++)
		assert_int_equal(pfns[i], 0);
	assert_int_equal(mm_faults(mm), faults);
	assert_int_equal(m->invalidations, 0);
}

/* REQ_FAULT on empty entries maps the zero page, reported with its real pfn, read-only. */
static void test_hmm_fault_read_zero_page(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW), pfns[8];

	assert_int_equal(mfault_all(m, a, 8, pfns, REQ, NULL), 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pfns[i], zero_pfn() | V);
		assert_ptr_equal(hmmu_hmm_pfn_to_page(pfns[i]), hmmu_zero_page());
		assert_int_equal(hmmu_pfn_to_map_order(pfns[i]), 0);
	}
	/* A CPU read maps the zero page too; a snapshot reports it. */
	assert_int_equal(get_byte(mm, a + 3 * PAGE), 0);
	assert_int_equal(snapshot(m, a + 3 * PAGE, 1, pfns), 0);
	assert_int_equal(pfns[0], zero_pfn() | V);
}

/* REQ_WRITE on empty entries allocates pages; no page reference is taken. */
static void test_hmm_fault_write(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW), pfns[8];

	assert_int_equal(mfault_all(m, a, 8, pfns, REQW, NULL), 0);
	for (int i = 0; i < 8; i++) {
		struct hmmu_page *page = hmmu_hmm_pfn_to_page(pfns[i]);

		assert_int_equal(pfns[i] & HMMU_PFN_FLAGS, V | W);
		assert_int_equal(pfns[i] & ~HMMU_PFN_FLAGS, pfn_at(mm, a + i * PAGE));
		assert_false(hmmu_is_zero_pfn(pfns[i] & ~HMMU_PFN_FLAGS));
		assert_int_equal(hmmu_page_ref_count(page), 1);	/* the mapping's only */
		assert_int_equal(((unsigned char *)hmmu_page_address(page))[77], 0);
	}
	/* The zero page is replaced by a write request (copy-on-write). */
	assert_int_equal(get_byte(mm, a + PAGE * 0), 0);
}

/* Writable vs read-only pages; a write request on a read-only VMA is -EPERM. */
static void test_hmm_readonly_vs_writable(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW), b, pfns[4];

	for (int i = 0; i < 4; i++)
		put_byte(mm, a + i * PAGE, (unsigned char)i);
	assert_int_equal(snapshot(m, a, 4, pfns), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pfns[i], pfn_at(mm, a + i * PAGE) | V | W);
	assert_int_equal(hmmu_mprotect(mm, a, 4 * PAGE, PROT_READ), 0);
	assert_int_equal(snapshot(m, a, 4, pfns), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pfns[i], pfn_at(mm, a + i * PAGE) | V);
	assert_int_equal(mfault_all(m, a, 4, pfns, REQ, NULL), 0);
	assert_int_equal(pfns[3], pfn_at(mm, a + 3 * PAGE) | V);
	assert_int_equal(mfault_all(m, a, 4, pfns, REQW, NULL), -EPERM);
	/* hmm-tests anon_write_prot: a PROT_READ mapping reads zeros, refuses writes. */
	b = hmmu_test_map(mm, 4 * PAGE, PROT_READ);
	assert_int_equal(mfault_all(m, b, 4, pfns, REQ, NULL), 0);
	assert_int_equal(pfns[2], zero_pfn() | V);
	assert_int_equal(mfault_all(m, b, 4, pfns, REQW, NULL), -EPERM);
	assert_int_equal(hmmu_mprotect(mm, b, 4 * PAGE, RW), 0);
	assert_int_equal(mfault_all(m, b, 4, pfns, REQW, NULL), 0);
	assert_int_equal(pfns[2] & HMMU_PFN_FLAGS, V | W);
}

/* PROT_NONE: ERROR in a snapshot, -EFAULT when faulting (read or write). */
static void test_hmm_prot_none(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW), pfns[4];

	put_byte(mm, a + PAGE, 1);
	assert_int_equal(hmmu_mprotect(mm, a, 4 * PAGE, PROT_NONE), 0);
	assert_int_equal(snapshot(m, a, 4, pfns), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pfns[i], HMMU_PFN_ERROR);
	assert_int_equal(mfault_all(m, a, 4, pfns, REQ, NULL), -EFAULT);
	assert_int_equal(mfault_all(m, a, 4, pfns, REQW, NULL), -EFAULT);
	/* A request on one page only is enough. */
	memset(pfns, 0, sizeof(pfns));
	pfns[2] = REQ;
	assert_int_equal(mfault(m, a, 4, pfns, (struct req){ .mask = REQW }), -EFAULT);
}

/* No VMA: ERROR in a snapshot, -EFAULT when faulting, after the pages before it were done. */
static void test_hmm_gap(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 6 * PAGE, RW), pfns[8];

	assert_int_equal(hmmu_munmap(mm, a + 2 * PAGE, 2 * PAGE), 0);
	put_byte(mm, a + 5 * PAGE, 5);
	assert_int_equal(snapshot(m, a, 6, pfns), 0);
	assert_int_equal(pfns[0], 0);
	assert_int_equal(pfns[1], 0);
	assert_int_equal(pfns[2], HMMU_PFN_ERROR);
	assert_int_equal(pfns[3], HMMU_PFN_ERROR);
	assert_int_equal(pfns[4], 0);
	assert_int_equal(pfns[5], pfn_at(mm, a + 5 * PAGE) | V | W);
	assert_int_equal(mfault_all(m, a, 6, pfns, REQ, NULL), -EFAULT);
	assert_int_equal(pfns[0], zero_pfn() | V);	/* outputs before the gap */
	assert_int_equal(pfns[1], zero_pfn() | V);
	/* Past the last VMA. */
	assert_int_equal(hmmu_munmap(mm, a + 6 * PAGE, 2 * PAGE), 0);
	assert_int_equal(snapshot(m, a + 4 * PAGE, 4, pfns), 0);
	assert_int_equal(pfns[2], HMMU_PFN_ERROR);
	assert_int_equal(pfns[3], HMMU_PFN_ERROR);
	/* Only the pages after the gap requested: fine. */
	memset(pfns, 0, sizeof(pfns));
	pfns[0] = REQ;
	assert_int_equal(mfault(m, a + 4 * PAGE, 4, pfns, (struct req){ .mask = REQ }), 0);
	assert_int_equal(pfns[0], zero_pfn() | V);
	assert_int_equal(pfns[2], HMMU_PFN_ERROR);
}

/* A request on one page of a hole faults the whole rest of the hole. */
static void test_hmm_hole_fault(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW), pfns[8] = { 0 };

	/* No page table at all under [a, a + 8 pages): one hole. */
	pfns[5] = REQ;
	assert_int_equal(mfault(m, a, 8, pfns, (struct req){ .mask = REQ }), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pfns[i], zero_pfn() | V);
}

/* ------------------------------------------------------------------ */
/* Special mappings                                                    */
/* ------------------------------------------------------------------ */

struct special_drv {
	struct hmmu_page *pages[2];
};

static int remap_hook(struct hmmu_vma *vma, void *arg)
{
	struct special_drv *d = arg;

	return hmmu_remap_pfn_range(vma, vma->vm_start, hmmu_page_to_pfn(d->pages[0]), vma->vm_end - vma->vm_start);
}

/* PFNMAP/IO VMAs are not walked: ERROR, -EFAULT when faulting. */
static void test_hmm_pfnmap(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	struct special_drv d = { .pages = { hmmu_alloc_pages(HMMU_GFP_ZERO, 1) } };
	unsigned long pfns[2];
	long a;

	assert_non_null(d.pages[0]);
	a = hmmu_mmap_special(mm, 0, 2 * PAGE, RW, MAP_SHARED, 0, remap_hook, &d);
	assert_true(a > 0);
	assert_true(hmmu_pte_special(hmmu_test_leaf(mm, (unsigned long)a, NULL)));
	assert_int_equal(snapshot(m, (unsigned long)a, 2, pfns), 0);
	assert_int_equal(pfns[0], HMMU_PFN_ERROR);
	assert_int_equal(pfns[1], HMMU_PFN_ERROR);
	assert_int_equal(mfault_all(m, (unsigned long)a, 2, pfns, REQ, NULL), -EFAULT);
	assert_int_equal(hmmu_munmap(mm, (unsigned long)a, 2 * PAGE), 0);
	hmmu_free_pages(d.pages[0], 1);
}

/* The lazy driver: its fault hook maps a raw frame (a special entry). */
static hmmu_vm_fault_t mixed_fault(struct hmmu_vm_fault *vmf)
{
	struct special_drv *d = vmf->vma->vm_private_data;

	return hmmu_vmf_insert_mixed(vmf->vma, vmf->address, hmmu_page_to_pfn(d->pages[1]));
}

static const struct hmmu_vm_operations mixed_ops = { .fault = mixed_fault };

/* Page 0: a driver page inserted whole; page 1: a raw frame inserted at fault time. */
static int mixed_hook(struct hmmu_vma *vma, void *arg)
{
	vma->vm_ops = &mixed_ops;
	vma->vm_private_data = arg;
	return hmmu_vm_insert_page(vma, vma->vm_start, ((struct special_drv *)arg)->pages[0]);
}

/*
 * MIXEDMAP: an inserted page is an ordinary (read-only, private) page;
 * a special entry is ERROR / -EFAULT, unless a write request copies it.
 */
static void test_hmm_mixedmap(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	struct special_drv d = { .pages = { hmmu_alloc_page(HMMU_GFP_ZERO), hmmu_alloc_page(HMMU_GFP_ZERO) } };
	unsigned long pfns[2], a;
	long ret = hmmu_mmap_special(mm, 0, 2 * PAGE, RW, MAP_PRIVATE, 0, mixed_hook, &d);

	assert_true(ret > 0);
	a = (unsigned long)ret;
	assert_int_equal(snapshot(m, a, 2, pfns), 0);
	assert_int_equal(pfns[0], hmmu_page_to_pfn(d.pages[0]) | V);	/* hmm-tests mixedmap: READ */
	assert_int_equal(pfns[1], 0);
	assert_int_equal(get_byte(mm, a + PAGE), 0);	/* the fault hook inserts the frame */
	assert_true(hmmu_pte_special(hmmu_test_leaf(mm, a + PAGE, NULL)));
	assert_int_equal(snapshot(m, a, 2, pfns), 0);
	assert_int_equal(pfns[1], HMMU_PFN_ERROR);
	assert_int_equal(mfault_all(m, a + PAGE, 1, pfns, REQ, NULL), -EFAULT);
	assert_int_equal(mfault_all(m, a + PAGE, 1, pfns, REQW, NULL), 0);	/* copy-on-write */
	assert_int_equal(pfns[0], pfn_at(mm, a + PAGE) | V | W);
	assert_ptr_not_equal(hmmu_hmm_pfn_to_page(pfns[0]), d.pages[1]);
	assert_int_equal(hmmu_munmap(mm, a, 2 * PAGE), 0);
	hmmu_put_page(d.pages[0]);
	hmmu_put_page(d.pages[1]);
}

/* ------------------------------------------------------------------ */
/* Huge pages                                                          */
/* ------------------------------------------------------------------ */

/* A transparent huge page: all 512 entries VALID|WRITE, order 9, consecutive pfns. */
static void test_hmm_thp(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 4 * MiB, RW), h = HMMU_ALIGN_UP(a, HMMU_PMD_SIZE);
	unsigned long *pfns = calloc(NMAX, sizeof(*pfns)), head;
	bool huge;

	assert_non_null(pfns);
	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
	/* hmm-tests anon_write_huge: the write request itself makes the huge page. */
	assert_int_equal(mfault_all(m, h, 512, pfns, REQW, NULL), 0);
	hmmu_test_leaf(mm, h, &huge);
	assert_true(huge);
	head = pfn_at(mm, h);
	for (unsigned long i = 0; i < 512; i++) {
		assert_int_equal(pfns[i], (head + i) | V | W | ORDER9);
		assert_int_equal(hmmu_pfn_to_map_order(pfns[i]), 9);
	}
	assert_int_equal(hmmu_compound_order(hmmu_hmm_pfn_to_page(pfns[0])), 9);
	/* A part of it, unaligned: the order is the mapping's. */
	assert_int_equal(snapshot(m, h + 100 * PAGE, 8, pfns), 0);
	assert_int_equal(pfns[0], (head + 100) | V | W | ORDER9);
	assert_int_equal(pfns[7], (head + 107) | V | W | ORDER9);
	/* Read-only after mprotect of the whole window. */
	assert_int_equal(hmmu_mprotect(mm, h, HMMU_PMD_SIZE, PROT_READ), 0);
	assert_int_equal(snapshot(m, h, 512, pfns), 0);
	assert_int_equal(pfns[511], (head + 511) | V | ORDER9);
	free(pfns);
}

/* hugetlb: order 9; only the first entry's request counts (Q4). */
static void test_hmm_hugetlb(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	long ret = hmmu_mmap(mm, 0, HMMU_PMD_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	unsigned long *pfns = calloc(NMAX, sizeof(*pfns)), h, head;

	assert_non_null(pfns);
	assert_true(ret > 0);
	h = (unsigned long)ret;
	assert_int_equal(snapshot(m, h, 512, pfns), 0);
	assert_int_equal(pfns[0], 0);
	/* Q4: a request on entry 3 of the walked part is ignored... */
	pfns[3] = REQ;
	assert_int_equal(mfault(m, h, 512, pfns, (struct req){ .mask = REQW }), 0);
	assert_int_equal(pfns[3], 0);
	assert_int_equal(mm_faults(mm), 0);
	/* ...one on its first entry faults the whole huge page. */
	memset(pfns, 0, NMAX * sizeof(*pfns));
	pfns[10] = REQ;
	assert_int_equal(mfault(m, h + 10 * PAGE, 8, pfns + 10, (struct req){ .mask = REQW }), 0);
	head = pfn_at(mm, h);
	assert_int_equal(pfns[10], (head + 10) | V | ORDER9);
	assert_int_equal(pfns[17], (head + 17) | V | ORDER9);
	/* hmm-tests anon_write_hugetlbfs and compound. */
	assert_int_equal(mfault_all(m, h, 512, pfns, REQW, NULL), 0);
	head = pfn_at(mm, h);
	for (unsigned long i = 0; i < 512; i++)
		assert_int_equal(pfns[i], (head + i) | V | W | ORDER9);
	assert_int_equal(hmmu_mprotect(mm, h, HMMU_PMD_SIZE, PROT_READ), 0);
	assert_int_equal(snapshot(m, h, 512, pfns), 0);
	assert_int_equal(pfns[300], (head + 300) | V | ORDER9);
	assert_int_equal(mfault_all(m, h, 512, pfns, REQW, NULL), -EPERM);
	free(pfns);
}

/* ------------------------------------------------------------------ */
/* Device memory                                                       */
/* ------------------------------------------------------------------ */

/* A page of random bytes at @a, moved to @dev; returns the device page. */
static struct hmmu_page *page_to_device(struct hmmu_test_dev *dev, struct hmmu_mm *mm, unsigned long a,
					unsigned char *data)
{
	uint64_t rs = hmmu_test_seed() ^ a;

	for (unsigned long i = 0; i < PAGE; i++)
		data[i] = (unsigned char)hmmu_test_rand(&rs);
	assert_int_equal(hmmu_access(mm, a, data, PAGE, HMMU_ACCESS_WRITE), 0);
	return hmmu_test_dev_to_device(dev, mm, a);
}

/* The owner sees its device page; another owner gets 0, or faults it back with REQ_FAULT. */
static void test_hmm_device_private_owner(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW), pfns[2];
	unsigned char data[PAGE], buf[PAGE];
	struct hmmu_page *dpage = page_to_device(dev, mm, a, data);

	assert_int_equal(mfault_all(m, a, 1, pfns, REQ, &owner_a), 0);
	assert_int_equal(pfns[0], hmmu_page_to_pfn(dpage) | V | W);
	assert_ptr_equal(hmmu_hmm_pfn_to_page(pfns[0]), dpage);
	assert_int_equal(snapshot(m, a, 1, pfns), 0);	/* owner NULL: foreign */
	assert_int_equal(pfns[0], 0);
	assert_int_equal(mfault_all(m, a, 1, pfns, 0, &owner_b), 0);
	assert_int_equal(pfns[0], 0);
	assert_int_equal(atomic_load(&dev->migrate_calls), 0);
	/* A foreign faulting request: the owner's migrate_to_ram brings it back. */
	assert_int_equal(mfault_all(m, a, 2, pfns, REQ, &owner_b), 0);
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	assert_int_equal(pfns[0], pfn_at(mm, a) | V | W);
	assert_false(hmmu_is_zone_device_page(hmmu_hmm_pfn_to_page(pfns[0])));
	assert_int_equal(pfns[1], zero_pfn() | V);
	assert_int_equal(atomic_load(&dev->page_frees), 1);
	assert_memory_equal(hmmu_page_address(hmmu_hmm_pfn_to_page(pfns[0])), data, PAGE);
	assert_int_equal(hmmu_access(mm, a, buf, PAGE, HMMU_ACCESS_READ), 0);
	assert_memory_equal(buf, data, PAGE);
}

/* Q1: an own read-variant entry is reported without WRITE even when REQ_WRITE asks for it. */
static void test_hmm_device_private_q1(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	unsigned long a = hmmu_test_map(mm, PAGE, RW), pfns[1];
	unsigned char data[PAGE];
	struct hmmu_page *dpage = page_to_device(dev, mm, a, data);

	assert_int_equal(hmmu_mprotect(mm, a, PAGE, PROT_READ), 0);	/* downgrades the entry */
	assert_int_equal(hmmu_mprotect(mm, a, PAGE, RW), 0);
	assert_int_equal(mfault_all(m, a, 1, pfns, REQW, &owner_a), 0);
	assert_int_equal(pfns[0], hmmu_page_to_pfn(dpage) | V);
	assert_int_equal(atomic_load(&dev->migrate_calls), 0);
	/* A foreign writer faults it back and gets a writable page. */
	assert_int_equal(mfault_all(m, a, 1, pfns, REQW, &owner_b), 0);
	assert_int_equal(pfns[0], pfn_at(mm, a) | V | W);
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
}

/* Device-coherent pages are ordinary pages for every caller. */
static void test_hmm_device_coherent(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_COHERENT, 4, &owner_a);
	unsigned long a = hmmu_test_map(mm, PAGE, RW), pfns[1];
	unsigned char data[PAGE], buf[PAGE];
	struct hmmu_page *cpage = page_to_device(dev, mm, a, data);

	assert_true(hmmu_is_device_coherent_page(cpage));
	assert_int_equal(mfault_all(m, a, 1, pfns, REQW, &owner_b), 0);
	assert_int_equal(pfns[0], hmmu_page_to_pfn(cpage) | V | W);
	assert_int_equal(snapshot(m, a, 1, pfns), 0);
	assert_int_equal(pfns[0], hmmu_page_to_pfn(cpage) | V | W);
	assert_int_equal(hmmu_access(mm, a, buf, PAGE, HMMU_ACCESS_READ), 0);	/* no fault */
	assert_memory_equal(buf, data, PAGE);
	assert_int_equal(atomic_load(&dev->migrate_calls), 0);
}

/* A driver that cannot migrate: -EFAULT. */
static hmmu_vm_fault_t sigbus_migrate(struct hmmu_test_dev *dev, struct hmmu_vm_fault *vmf)
{
	return HMMU_VM_FAULT_SIGBUS;
}

/* A driver that never migrates but says it did: the walk retries until the bound. */
static hmmu_vm_fault_t lazy_migrate(struct hmmu_test_dev *dev, struct hmmu_vm_fault *vmf)
{
	return 0;
}

static void test_hmm_fault_errors(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	unsigned long a = hmmu_test_map(mm, PAGE, RW), pfns[1];
	unsigned char data[PAGE];
	long t0, elapsed;
	int ret;

	page_to_device(dev, mm, a, data);
	dev->migrate_hook = sigbus_migrate;
	assert_int_equal(mfault_all(m, a, 1, pfns, REQ, &owner_b), -EFAULT);
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	dev->migrate_hook = lazy_migrate;
	t0 = now_ms();
	ret = mfault_all(m, a, 1, pfns, REQ, &owner_b);
	elapsed = now_ms() - t0;
	assert_int_equal(ret, -EBUSY);
	assert_true(elapsed >= RETRY_MS - 1);
	assert_true(atomic_load(&dev->migrate_calls) > 2);
	assert_int_equal(pfns[0], 0);	/* still the input: the walk never got past it */
	dev->migrate_hook = NULL;
}

/* Out of memory during a fault is -EFAULT, as in Linux 6.1. */
static void test_hmm_fault_oom(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, PAGE, RW), pfns[1];
	long n = hmmu_node_nr_free_pages(0), got = 0;
	struct hmmu_page **hog = calloc((size_t)n, sizeof(*hog));

	assert_non_null(hog);
	while (got < n && (hog[got] = hmmu_alloc_page(HMMU_GFP_KERNEL)))
		got++;
	assert_int_equal(mfault_all(m, a, 1, pfns, REQW, NULL), -EFAULT);
	assert_int_equal(mfault_all(m, a, 1, pfns, REQ, NULL), 0);	/* the zero page needs nothing */
	for (long i = 0; i < got; i++)
		hmmu_put_page(hog[i]);
	free(hog);
	assert_int_equal(mfault_all(m, a, 1, pfns, REQW, NULL), 0);
}

/* ------------------------------------------------------------------ */
/* Request flags                                                       */
/* ------------------------------------------------------------------ */

/* default_flags apply to all pages; per-page flags only through pfn_flags_mask. */
static void test_hmm_flags_mask(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW), pfns[8];

	/* mask 0: per-page requests are ignored. */
	for (int i = 0; i < 8; i++)
		pfns[i] = REQW;
	assert_int_equal(mfault(m, a, 8, pfns, (struct req){ .mask = 0 }), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pfns[i], 0);
	/* mask REQ_FAULT only: a per-page write request becomes a read request. */
	memset(pfns, 0, sizeof(pfns));
	pfns[5] = REQW;
	assert_int_equal(mfault(m, a, 8, pfns, (struct req){ .dflags = REQ, .mask = REQ }), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pfns[i], zero_pfn() | V);
	/* Full mask: page 5 asks for write; with Q2 pages 6 and 7 are write-faulted too. */
	memset(pfns, 0, sizeof(pfns));
	pfns[5] = REQW;
	assert_int_equal(mfault(m, a, 8, pfns, (struct req){ .dflags = REQ, .mask = REQW }), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(pfns[i], zero_pfn() | V);
	for (int i = 5; i < 8; i++)
		assert_int_equal(pfns[i], pfn_at(mm, a + i * PAGE) | V | W);
	/* Junk in the other input bits is ignored. */
	for (int i = 0; i < 8; i++)
		pfns[i] = 0x12345 | HMMU_PFN_ERROR | ORDER9;
	assert_int_equal(mfault(m, a, 8, pfns, (struct req){ .mask = ~0UL }), 0);
	assert_int_equal(pfns[0], zero_pfn() | V);
	assert_int_equal(pfns[7], pfn_at(mm, a + 7 * PAGE) | V | W);
}

/*
 * Q2: one page's requirement faults the rest of its PTE table's run, but
 * not past the table; entries before it are outputs of the snapshot.
 */
static void test_hmm_q2_overfault(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 4 * MiB, RW), h = HMMU_ALIGN_UP(a + 4 * PAGE, HMMU_PMD_SIZE);
	unsigned long s = h - 4 * PAGE, pfns[8];	/* pages 0..3 in one table, 4..7 in the next */

	for (int i = 0; i < 8; i++)
		assert_int_equal(get_byte(mm, s + i * PAGE), 0);	/* zero page everywhere */
	memset(pfns, 0, sizeof(pfns));
	pfns[1] = REQW;
	assert_int_equal(mfault(m, s, 8, pfns, (struct req){ .mask = REQW }), 0);
	assert_int_equal(pfns[0], zero_pfn() | V);
	for (int i = 1; i < 4; i++)
		assert_int_equal(pfns[i], pfn_at(mm, s + i * PAGE) | V | W);	/* copy-on-write broken */
	for (int i = 4; i < 8; i++)
		assert_int_equal(pfns[i], zero_pfn() | V);		/* next table: untouched */
	/*
	 * Q5: outputs overwrite inputs and read back as requests (VALID is
	 * REQ_FAULT, WRITE is REQ_WRITE): reusing the array asks for write
	 * again, which a read-only VMA refuses; re-filled inputs do not.
	 */
	assert_int_equal(hmmu_mprotect(mm, s, 8 * PAGE, PROT_READ), 0);
	assert_int_equal(mfault(m, s, 8, pfns, (struct req){ .mask = REQW }), -EPERM);
	memset(pfns, 0, sizeof(pfns));
	assert_int_equal(mfault(m, s, 8, pfns, (struct req){ .mask = REQW }), 0);
	assert_int_equal(pfns[2], pfn_at(mm, s + 2 * PAGE) | V);
}

/* ------------------------------------------------------------------ */
/* Sequence changes, migration entries, the retry loop                 */
/* ------------------------------------------------------------------ */

/* An invalidation between read_begin and the call: -EBUSY, and nothing faulted. */
static void test_hmm_ebusy(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW), pfns[4] = { 0 };
	struct hmmu_range r = { .notifier = &m->sub, .start = a, .end = a + 4 * PAGE, .hmm_pfns = pfns,
				.default_flags = REQ };
	unsigned long faults;

	put_byte(mm, a + 3 * PAGE, 1);
	r.notifier_seq = hmmu_interval_read_begin(&m->sub);
	assert_int_equal(hmmu_madvise(mm, a + 3 * PAGE, PAGE, MADV_DONTNEED), 0);
	assert_int_equal(m->invalidations, 1);
	faults = mm_faults(mm);
	hmmu_mmap_read_lock(mm);
	assert_int_equal(hmmu_range_fault(&r), -EBUSY);
	hmmu_mmap_read_unlock(mm);
	assert_int_equal(mm_faults(mm), faults);
	assert_int_equal(pfns[0], 0);
	r.notifier_seq = hmmu_interval_read_begin(&m->sub);
	hmmu_mmap_read_lock(mm);
	assert_int_equal(hmmu_range_fault(&r), 0);
	hmmu_mmap_read_unlock(mm);
	assert_int_equal(pfns[3], zero_pfn() | V);
	/*
	 * A write request on the zero page: the fault's copy-on-write
	 * invalidates the range, so the call itself ends with -EBUSY, its
	 * fault done; the retry succeeds without faulting.
	 */
	memset(pfns, 0, sizeof(pfns));
	r.default_flags = REQW;
	r.notifier_seq = hmmu_interval_read_begin(&m->sub);
	hmmu_mmap_read_lock(mm);
	assert_int_equal(hmmu_range_fault(&r), -EBUSY);
	hmmu_mmap_read_unlock(mm);
	assert_int_equal(m->invalidations, 1 + 4);
	faults = mm_faults(mm);
	r.notifier_seq = hmmu_interval_read_begin(&m->sub);
	hmmu_mmap_read_lock(mm);
	assert_int_equal(hmmu_range_fault(&r), 0);
	hmmu_mmap_read_unlock(mm);
	assert_int_equal(mm_faults(mm), faults);
	assert_int_equal(pfns[0], pfn_at(mm, a) | V | W);
}

struct fault_job {
	struct mirror *m;
	unsigned long start, pfns[2];
	int ret;
	atomic_bool done;
};

static void *fault_job_run(void *arg)
{
	struct fault_job *j = arg;

	j->ret = mfault_all(j->m, j->start, 2, j->pfns, REQ, NULL);
	atomic_store(&j->done, true);
	return NULL;
}

/*
 * A migration entry (built by hand: page locked, no mapcount, no
 * reference): a snapshot reports 0 without waiting; a faulting call waits
 * until the migration ends, then reports the page.
 */
static void test_hmm_migration_entry(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW), pfns[2];
	struct fault_job job = { .m = m, .start = a };
	struct hmmu_page *page;
	hmmu_pte_t pte;
	bool waiting, early;
	pthread_t t;

	put_byte(mm, a, 1);
	put_byte(mm, a + PAGE, 2);
	page = hmmu_pfn_to_page(pfn_at(mm, a + PAGE));
	hmmu_lock_page(page);
	pte = hmmu_test_swap_pte(mm, a + PAGE, hmmu_swp_entry_to_pte(hmmu_make_swp_entry(HMMU_SWP_MIGRATION_WRITE,
										 hmmu_page_to_pfn(page))));
	hmmu_page_remove_rmap(page, false);
	assert_int_equal(snapshot(m, a, 2, pfns), 0);
	assert_int_equal(pfns[0], pfn_at(mm, a) | V | W);
	assert_int_equal(pfns[1], 0);
	assert_int_equal(pthread_create(&t, NULL, fault_job_run, &job), 0);
	waiting = wait_for_flag(page, HMMU_PG_waiters);
	early = atomic_load(&job.done);
	atomic_fetch_add(&page->_mapcount, 1);
	hmmu_test_swap_pte(mm, a + PAGE, pte);
	hmmu_unlock_page(page);
	pthread_join(t, NULL);
	assert_true(waiting);
	assert_false(early);
	assert_int_equal(job.ret, 0);
	assert_int_equal(job.pfns[0], pfn_at(mm, a) | V | W);
	assert_int_equal(job.pfns[1], hmmu_page_to_pfn(page) | V | W);
	assert_int_equal(hmmu_page_ref_count(page), 1);
}

/*
 * The driver-side loop of docs/device-memory.md while another thread keeps
 * invalidating part of the range: retries until a result survives
 * read_retry under the driver lock, and that result matches the CPU's.
 */
struct churn {
	struct hmmu_mm *mm;
	unsigned long addr;
	atomic_bool stop;
	int rounds;
};

static void *churn_run(void *arg)
{
	struct churn *c = arg;

	for (c->rounds = 0; c->rounds < 200 && !atomic_load(&c->stop); c->rounds++) {
		unsigned char v = 7;

		hmmu_access(c->mm, c->addr, &v, 1, HMMU_ACCESS_WRITE);
		hmmu_madvise(c->mm, c->addr, PAGE, MADV_DONTNEED);
		sleep_ms(1);
	}
	return NULL;
}

/* Mirror [start, start + n pages) with the canonical loop; returns 0 or the error. */
static int mirror_range(struct mirror *m, unsigned long start, unsigned long n, unsigned long *pfns,
			unsigned long *device)
{
	struct hmmu_range r = { .notifier = &m->sub, .start = start, .end = start + n * PAGE,
				.hmm_pfns = pfns, .default_flags = REQ };
	long deadline = now_ms() + WAIT_LIMIT_MS;
	int ret;

	for (;;) {
		if (now_ms() > deadline)
			return -EBUSY;
		r.notifier_seq = hmmu_interval_read_begin(&m->sub);
		hmmu_mmap_read_lock(m->sub.mm);
		ret = hmmu_range_fault(&r);
		hmmu_mmap_read_unlock(m->sub.mm);
		if (ret == -EBUSY)
			continue;
		if (ret)
			return ret;
		pthread_mutex_lock(&m->lock);
		if (!hmmu_interval_read_retry(&m->sub, r.notifier_seq))
			break;
		pthread_mutex_unlock(&m->lock);
	}
	memcpy(device, pfns, n * sizeof(*pfns));	/* "program the device" */
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void test_hmm_retry_loop(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct mirror *m = mirror_new(mm);
	unsigned long a = hmmu_test_map(mm, 16 * PAGE, RW), pfns[16], device[16];
	struct churn c = { .mm = mm, .addr = a + 9 * PAGE };
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, churn_run, &c), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(mirror_range(m, a, 16, pfns, device), 0);
		for (int k = 0; k < 16; k++)
			assert_true(device[k] & V);
		sleep_ms(1);
	}
	atomic_store(&c.stop, true);
	pthread_join(t, NULL);
	assert_int_equal(mirror_range(m, a, 16, pfns, device), 0);
	for (int k = 0; k < 16; k++)
		assert_int_equal(device[k] & ~HMMU_PFN_FLAGS, pfn_at(mm, a + k * PAGE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMM_TEST(test_hmm_einval),
		HMM_TEST(test_hmm_snapshot_none),
		HMM_TEST(test_hmm_fault_read_zero_page),
		HMM_TEST(test_hmm_fault_write),
		HMM_TEST(test_hmm_readonly_vs_writable),
		HMM_TEST(test_hmm_prot_none),
		HMM_TEST(test_hmm_gap),
		HMM_TEST(test_hmm_hole_fault),
		HMM_TEST(test_hmm_pfnmap),
		HMM_TEST(test_hmm_mixedmap),
		HMM_TEST(test_hmm_thp),
		HMM_TEST(test_hmm_hugetlb),
		HMM_TEST(test_hmm_device_private_owner),
		HMM_TEST(test_hmm_device_private_q1),
		HMM_TEST(test_hmm_device_coherent),
		HMM_TEST(test_hmm_fault_errors),
		HMM_TEST(test_hmm_fault_oom),
		HMM_TEST(test_hmm_flags_mask),
		HMM_TEST(test_hmm_q2_overfault),
		HMM_TEST(test_hmm_ebusy),
		HMM_TEST(test_hmm_migration_entry),
		HMM_TEST(test_hmm_retry_loop),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmm_group_setup, hmmu_test_group_teardown);
}
