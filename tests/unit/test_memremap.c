// SPDX-License-Identifier: MIT
/*
 * Unit tests of device memory: pagemap validation and set-up, the life of
 * a device page (page_free exactly once, on the last put), memunmap waiting
 * for held pages, coherent vs private CPU addresses, and the CPU fault on a
 * device-private entry (migrate_to_ram with the page locked, one migration
 * for many faulting threads, waiting on a busy page lock, SIGBUS).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)

static int owner_a, owner_b;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static void fill_random(void *buf, size_t len, uint64_t *rs)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)hmmu_test_rand(rs);
}

/* An anonymous page at a new mapping, filled with random bytes (returned in @data). */
static unsigned long map_filled_page(struct hmmu_mm *mm, unsigned char *data, uint64_t *rs)
{
	unsigned long a = hmmu_test_map(mm, PAGE, RW);

	fill_random(data, PAGE, rs);
	put_bytes(mm, a, data, PAGE);
	return a;
}

static struct hmmu_swp_entry swp_at(struct hmmu_mm *mm, unsigned long addr)
{
	hmmu_pte_t e = hmmu_test_leaf(mm, addr, NULL);

	assert_false(hmmu_pte_present(e) || hmmu_pte_none(e));
	return hmmu_pte_to_swp_entry(e);
}

static unsigned long stats_cow(struct hmmu_mm *mm)
{
	struct hmmu_mm_stats st;

	assert_int_equal(hmmu_mm_get_stats(mm, &st), 0);
	return st.cow_faults;
}

/* The frame index of @page in @dev. */
static unsigned long dev_index(struct hmmu_test_dev *dev, struct hmmu_page *page)
{
	return hmmu_page_to_pfn(page) - dev->first_pfn;
}

static void noop_page_free(struct hmmu_page *page)
{
}

static hmmu_vm_fault_t noop_migrate(struct hmmu_vm_fault *vmf)
{
	return HMMU_VM_FAULT_SIGBUS;
}

static const struct hmmu_dev_pagemap_ops noop_ops = { .page_free = noop_page_free, .migrate_to_ram = noop_migrate };
static const struct hmmu_dev_pagemap_ops free_only_ops = { .page_free = noop_page_free };
static const struct hmmu_dev_pagemap_ops no_free_ops = { .migrate_to_ram = noop_migrate };

/* A pagemap description that hmmu_memremap_pages() accepts. */
static struct hmmu_dev_pagemap good_pgmap(enum hmmu_memory_type type, unsigned long nr_pages)
{
	struct hmmu_dev_pagemap pgmap = {
		.type = type,
		.range = { .start = 0, .end = nr_pages * PAGE - 1 },
		.nr_range = 1,
		.ops = &noop_ops,
		.owner = &owner_a,
	};
	return pgmap;
}

/* ------------------------------------------------------------------ */
/* Pagemaps                                                            */
/* ------------------------------------------------------------------ */

static int try_memremap(struct hmmu_dev_pagemap pgmap)
{
	int ret = hmmu_memremap_pages(&pgmap);

	if (!ret)
		hmmu_memunmap_pages(&pgmap);
	return ret;
}

/* Every rule of spec 4.1 that hmmu checks gives -EINVAL; nothing is left behind. */
static void test_memremap_validation(void **state)
{
	struct hmmu_dev_pagemap p = good_pgmap(HMMU_MEMORY_DEVICE_PRIVATE, 4);
	long nodes = hmmu_node_nr_pages(1);

	assert_int_equal(hmmu_memremap_pages(NULL), -EINVAL);
	p.nr_range = 0;
	assert_int_equal(try_memremap(p), -EINVAL);
	p.nr_range = 2;
	assert_int_equal(try_memremap(p), -EINVAL);
	p = good_pgmap(0, 4);
	assert_int_equal(try_memremap(p), -EINVAL);
	p = good_pgmap(3, 4);
	assert_int_equal(try_memremap(p), -EINVAL);
	p = good_pgmap(HMMU_MEMORY_DEVICE_PRIVATE, 4);
	p.ops = NULL;
	assert_int_equal(try_memremap(p), -EINVAL);
	p.ops = &free_only_ops;		/* private needs migrate_to_ram */
	assert_int_equal(try_memremap(p), -EINVAL);
	p.ops = &no_free_ops;
	assert_int_equal(try_memremap(p), -EINVAL);
	p = good_pgmap(HMMU_MEMORY_DEVICE_PRIVATE, 4);
	p.owner = NULL;
	assert_int_equal(try_memremap(p), -EINVAL);
	p = good_pgmap(HMMU_MEMORY_DEVICE_COHERENT, 4);
	p.owner = NULL;
	assert_int_equal(try_memremap(p), -EINVAL);
	p.owner = &owner_a;
	p.ops = &no_free_ops;
	assert_int_equal(try_memremap(p), -EINVAL);
	p.ops = &free_only_ops;		/* coherent needs no migrate_to_ram */
	assert_int_equal(try_memremap(p), 0);
	/* Lengths: empty, not whole pages, too many frames. */
	p = good_pgmap(HMMU_MEMORY_DEVICE_PRIVATE, 4);
	p.range.start = 10 * PAGE;
	p.range.end = p.range.start - 1;
	assert_int_equal(try_memremap(p), -EINVAL);
	p.range.end = p.range.start + PAGE + 99;
	assert_int_equal(try_memremap(p), -EINVAL);
	p.range.start = 0;
	p.range.end = (PAGE << 32) + PAGE - 1;
	assert_int_equal(try_memremap(p), -EINVAL);
	assert_int_equal(hmmu_node_nr_pages(1), nodes);	/* no node left behind */
	/* Removing what is not live, or initialising no page, does nothing. */
	p = good_pgmap(HMMU_MEMORY_DEVICE_PRIVATE, 4);
	hmmu_memunmap_pages(NULL);
	hmmu_memunmap_pages(&p);			/* never accepted */
	assert_int_equal(hmmu_memremap_pages(&p), 0);
	hmmu_memunmap_pages(&p);
	assert_int_equal(p.nid, -1);
	hmmu_memunmap_pages(&p);			/* removed already */
	hmmu_zone_device_page_init(NULL);
	assert_int_equal(hmmu_node_nr_pages(1), nodes);
}

/* Frames start free with their pgmap set; hmmu chooses disjoint ranges and writes them back. */
static void test_memremap_pages_start_free(void **state)
{
	struct hmmu_dev_pagemap a = good_pgmap(HMMU_MEMORY_DEVICE_PRIVATE, 16);
	struct hmmu_dev_pagemap b = good_pgmap(HMMU_MEMORY_DEVICE_PRIVATE, 600);

	a.range.start = 12345 * PAGE;	/* only the length counts */
	a.range.end = a.range.start + 16 * PAGE - 1;
	assert_int_equal(hmmu_memremap_pages(&a), 0);
	assert_int_equal(hmmu_memremap_pages(&b), 0);
	assert_int_equal(a.range.start & ~HMMU_PAGE_MASK, 0);
	assert_int_equal(a.range.end - a.range.start + 1, 16 * PAGE);
	assert_int_equal(b.range.end - b.range.start + 1, 600 * PAGE);
	assert_true(a.range.end < b.range.start || b.range.end < a.range.start);
	assert_int_equal(hmmu_pgmap_nr_pages(&b), 600);
	assert_int_equal(hmmu_node_nr_pages(a.nid), 16);
	for (unsigned long i = 0; i < 600; i++) {
		struct hmmu_page *page = hmmu_pfn_to_page(hmmu_pgmap_pfn_first(&b) + i);

		assert_non_null(page);
		assert_ptr_equal(page->pgmap, &b);
		assert_int_equal(hmmu_page_ref_count(page), 0);
		assert_true(hmmu_is_zone_device_page(page) && hmmu_is_device_private_page(page));
		assert_false(hmmu_is_device_coherent_page(page));
		assert_null(hmmu_page_address(page));
	}
	assert_null(hmmu_pfn_to_page(hmmu_pgmap_pfn_first(&a) + 16));
	assert_false(hmmu_is_zone_device_page(hmmu_zero_page()));
	hmmu_memunmap_pages(&a);
	hmmu_memunmap_pages(&b);
	assert_int_equal(hmmu_node_nr_pages(a.nid), -EINVAL);
	assert_int_equal(hmmu_memremap_pages(&a), 0);	/* a pagemap may be set up again */
	hmmu_memunmap_pages(&a);
}

/* Coherent frames have distinct writable CPU addresses; private ones none. */
static void test_coherent_cpu_address(void **state)
{
	struct hmmu_test_dev *c = hmmu_test_dev(HMMU_MEMORY_DEVICE_COHERENT, 8, &owner_a);
	struct hmmu_test_dev *p = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 8, &owner_a);
	struct hmmu_page *cp = hmmu_test_dev_alloc(c), *cq = hmmu_test_dev_alloc(c);
	struct hmmu_page *pp = hmmu_test_dev_alloc(p);
	struct hmmu_page *all[] = { cp, cq, pp };
	char *ca = hmmu_page_address(cp), *cb = hmmu_page_address(cq);

	assert_true(hmmu_is_device_coherent_page(cp) && !hmmu_is_device_private_page(cp));
	assert_true(hmmu_is_device_private_page(pp));
	assert_non_null(ca);
	assert_non_null(cb);
	assert_int_equal(labs((long)(cb - ca)), PAGE);
	memset(ca, 0x5a, PAGE);
	memset(cb, 0xa5, PAGE);
	assert_int_equal(ca[PAGE - 1], 0x5a);
	assert_null(hmmu_page_address(pp));
	for (int i = 0; i < 3; i++) {
		hmmu_unlock_page(all[i]);
		hmmu_put_page(all[i]);
	}
}

/* ------------------------------------------------------------------ */
/* Page lifetime                                                       */
/* ------------------------------------------------------------------ */

/* Allocation: ref 1, locked, a pagemap reference; page_free once, on the last put only. */
static void test_page_free_once(void **state)
{
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	struct hmmu_page *page = hmmu_test_dev_alloc(dev), *again;
	unsigned long i = dev_index(dev, page);

	assert_int_equal(hmmu_page_ref_count(page), 1);
	assert_true(hmmu_page_locked(page));
	assert_int_equal(atomic_load(&dev->pgmap.ref), 1);
	hmmu_get_page(page);
	hmmu_put_page(page);
	assert_int_equal(atomic_load(&dev->page_frees), 0);
	hmmu_unlock_page(page);
	/* Pretend it was mapped anonymously: the free must clear that. */
	page->mapping = (void *)(0x1000UL | HMMU_PAGE_MAPPING_ANON);
	hmmu_page_set_flag(page, HMMU_PG_anon_exclusive);
	page->zone_device_data = &owner_b;
	hmmu_put_page(page);
	assert_int_equal(atomic_load(&dev->page_frees), 1);
	assert_int_equal(dev->nr_frees[i], 1);
	assert_int_equal(atomic_load(&dev->errors), 0);	/* ref 0, mapping and exclusive cleared */
	assert_null(page->mapping);
	assert_false(hmmu_page_test_flag(page, HMMU_PG_anon_exclusive));
	assert_ptr_equal(page->zone_device_data, &owner_b);	/* the driver's word is left alone */
	assert_int_equal(hmmu_page_ref_count(page), 0);
	assert_int_equal(atomic_load(&dev->pgmap.ref), 0);
	assert_false(hmmu_get_page_unless_zero(page));
	/* The frame is handed out again, and freed again once. */
	again = hmmu_test_dev_alloc(dev);
	assert_ptr_equal(again, page);
	hmmu_unlock_page(again);
	hmmu_put_page(again);
	assert_int_equal(dev->nr_frees[i], 2);
}

struct unmap_job {
	struct hmmu_dev_pagemap *pgmap;
	atomic_bool done;
	long frees_at_return;
};

static atomic_long counted_frees;

static void counting_page_free(struct hmmu_page *page)
{
	atomic_fetch_add(&counted_frees, 1);
}

static const struct hmmu_dev_pagemap_ops counting_ops = {
	.page_free = counting_page_free, .migrate_to_ram = noop_migrate,
};

static void *unmap_job_run(void *arg)
{
	struct unmap_job *j = arg;

	hmmu_memunmap_pages(j->pgmap);
	j->frees_at_return = atomic_load(&counted_frees);
	atomic_store(&j->done, true);
	return NULL;
}

/* memunmap sleeps while a page is held and returns once its last put has run page_free. */
static void test_memunmap_waits_for_pages(void **state)
{
	struct hmmu_dev_pagemap pgmap = good_pgmap(HMMU_MEMORY_DEVICE_PRIVATE, 8);
	struct unmap_job job = { .pgmap = &pgmap };
	struct hmmu_page *p1, *p2;
	pthread_t t;
	bool early;

	pgmap.ops = &counting_ops;
	atomic_store(&counted_frees, 0);
	assert_int_equal(hmmu_memremap_pages(&pgmap), 0);
	p1 = hmmu_pfn_to_page(hmmu_pgmap_pfn_first(&pgmap) + 3);
	p2 = p1 + 1;
	hmmu_zone_device_page_init(p1);
	hmmu_zone_device_page_init(p2);
	hmmu_unlock_page(p1);
	hmmu_unlock_page(p2);
	hmmu_get_page(p2);
	assert_int_equal(pthread_create(&t, NULL, unmap_job_run, &job), 0);
	sleep_ms(50);
	hmmu_put_page(p1);
	hmmu_put_page(p2);
	sleep_ms(50);
	early = atomic_load(&job.done);		/* p2 is still held */
	assert_true(atomic_load(&pgmap.dying));
	hmmu_put_page(p2);
	assert_true(join_within(t, WAIT_LIMIT_MS));
	assert_false(early);
	assert_int_equal(job.frees_at_return, 2);
	assert_int_equal(atomic_load(&counted_frees), 2);
}

/* memunmap of a pagemap with no page in use returns at once. */
static void test_memunmap_idle(void **state)
{
	struct hmmu_dev_pagemap pgmap = good_pgmap(HMMU_MEMORY_DEVICE_COHERENT, 1);

	assert_int_equal(hmmu_memremap_pages(&pgmap), 0);
	assert_non_null(hmmu_page_address(hmmu_pfn_to_page(hmmu_pgmap_pfn_first(&pgmap))));
	hmmu_memunmap_pages(&pgmap);
	assert_int_equal(pgmap.nid, -1);
}

/* ------------------------------------------------------------------ */
/* The CPU fault on a device-private entry                             */
/* ------------------------------------------------------------------ */

/* What the migrate_to_ram hook saw. */
struct fault_seen {
	struct hmmu_mm *mm;
	struct hmmu_page *page;
	unsigned long address;
	unsigned int flags;
	int ref;
	bool locked, vma_ok;
	hmmu_vm_fault_t result;		/* returned instead of migrating, if nonzero */
	bool wait_for_waiters;		/* before migrating, wait for a sleeper on the page lock */
	bool waiters_seen;
};

static hmmu_vm_fault_t observing_migrate(struct hmmu_test_dev *dev, struct hmmu_vm_fault *vmf)
{
	struct fault_seen *s = dev->hook_data;

	s->page = vmf->page;
	s->address = vmf->address;
	s->flags = vmf->flags;
	s->ref = hmmu_page_ref_count(vmf->page);
	s->locked = hmmu_page_locked(vmf->page);
	s->vma_ok = vmf->vma && vmf->vma->vm_mm == s->mm && vmf->address >= vmf->vma->vm_start &&
		    vmf->address < vmf->vma->vm_end;
	if (s->wait_for_waiters)
		s->waiters_seen = wait_for_flag(vmf->page, HMMU_PG_waiters);
	if (s->result)
		return s->result;
	return hmmu_test_dev_migrate_back(dev, vmf);
}

/* Moving a page to the device by hand builds the entry a migration would. */
static void test_device_private_entry(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x1111;
	unsigned char data[PAGE];
	unsigned long a = map_filled_page(mm, data, &rs);
	long free0 = hmmu_node_nr_free_pages(0);
	struct hmmu_page *dpage = hmmu_test_dev_to_device(dev, mm, a);
	struct hmmu_swp_entry se = swp_at(mm, a);

	assert_int_equal(se.type, HMMU_SWP_DEVICE_PRIVATE_WRITE);
	assert_int_equal(se.pfn, hmmu_page_to_pfn(dpage));
	assert_int_equal(hmmu_page_ref_count(dpage), 1);
	assert_int_equal(hmmu_page_mapcount(dpage), 1);
	assert_true(hmmu_page_is_anon(dpage));
	assert_false(hmmu_page_locked(dpage));
	assert_memory_equal(hmmu_test_dev_mem(dev, dpage), data, PAGE);
	assert_int_equal(hmmu_node_nr_free_pages(0), free0 + 1);	/* the system page went back */
	assert_int_equal(hmmu_pt_validate(mm), 0);
	/* munmap drops the entry: page_free runs, nothing is migrated. */
	assert_int_equal(hmmu_munmap(mm, a, PAGE), 0);
	assert_int_equal(atomic_load(&dev->page_frees), 1);
	assert_int_equal(atomic_load(&dev->migrate_calls), 0);
}

/* A CPU read calls migrate_to_ram once, with the page locked and referenced; data comes back. */
static void test_device_private_fault_read(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x2222;
	struct fault_seen seen = { .mm = mm };
	unsigned char data[PAGE], buf[100];
	unsigned long a = map_filled_page(mm, data, &rs);
	struct hmmu_page *dpage = hmmu_test_dev_to_device(dev, mm, a);
	hmmu_pte_t e;

	dev->migrate_hook = observing_migrate;
	dev->hook_data = &seen;
	get_bytes(mm, a + 1000, buf, sizeof(buf));
	assert_memory_equal(buf, data + 1000, sizeof(buf));
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	assert_ptr_equal(seen.page, dpage);
	assert_true(seen.locked);
	assert_int_equal(seen.ref, 2);		/* the entry's and the fault's */
	assert_true(seen.vma_ok);
	assert_int_equal(seen.address, a);
	assert_false(seen.flags & HMMU_FAULT_FLAG_WRITE);
	/* Back in a writable system page; the device page was freed after the fault. */
	e = hmmu_test_leaf(mm, a, NULL);
	assert_true(hmmu_pte_present(e) && hmmu_pte_write(e));
	assert_int_equal(atomic_load(&dev->page_frees), 1);
	assert_false(hmmu_page_locked(dpage));
	get_bytes(mm, a, buf, sizeof(buf));
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
}

/* A write to a read variant (after mprotect) migrates back, then a write fault finishes the job. */
static void test_device_private_fault_write_read_variant(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x3333;
	unsigned char data[PAGE], v = 0xee, w;
	unsigned long a = map_filled_page(mm, data, &rs);

	hmmu_test_dev_to_device(dev, mm, a);
	assert_int_equal(hmmu_mprotect(mm, a, PAGE, PROT_READ), 0);
	assert_int_equal(swp_at(mm, a).type, HMMU_SWP_DEVICE_PRIVATE_READ);
	assert_int_equal(hmmu_mprotect(mm, a, PAGE, RW), 0);
	assert_int_equal(swp_at(mm, a).type, HMMU_SWP_DEVICE_PRIVATE_READ);
	put_bytes(mm, a + 7, &v, 1);
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	get_bytes(mm, a + 7, &w, 1);
	assert_int_equal(w, 0xee);
	get_bytes(mm, a + 8, &w, 1);
	assert_int_equal(w, data[8]);
	assert_true(hmmu_pte_write(hmmu_test_leaf(mm, a, NULL)));
	assert_int_equal(stats_cow(mm), 0);
}

/* GUP faults a device-private page back and references the system page. */
static void test_device_private_gup(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x4444;
	unsigned char data[PAGE];
	unsigned long a = map_filled_page(mm, data, &rs);
	struct hmmu_page *page;
	long n;

	hmmu_test_dev_to_device(dev, mm, a);
	hmmu_mmap_read_lock(mm);
	n = hmmu_get_user_pages_remote(mm, a, 1, HMMU_FOLL_WRITE, &page);
	hmmu_mmap_read_unlock(mm);
	assert_int_equal(n, 1);
	assert_false(hmmu_is_zone_device_page(page));
	assert_memory_equal(hmmu_page_address(page), data, PAGE);
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	hmmu_put_page(page);
}

/* A driver that cannot bring the data back: SIGBUS, so the access fails; the entry stays. */
static void test_device_private_fault_sigbus(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x5555;
	struct fault_seen seen = { .mm = mm, .result = HMMU_VM_FAULT_SIGBUS };
	unsigned char data[PAGE], c;
	unsigned long a = map_filled_page(mm, data, &rs);
	struct hmmu_page *dpage = hmmu_test_dev_to_device(dev, mm, a);

	dev->migrate_hook = observing_migrate;
	dev->hook_data = &seen;
	assert_int_equal(hmmu_access(mm, a, &c, 1, HMMU_ACCESS_READ), -EFAULT);
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	assert_int_equal(swp_at(mm, a).pfn, hmmu_page_to_pfn(dpage));
	assert_false(hmmu_page_locked(dpage));		/* hmmu unlocked it */
	assert_int_equal(hmmu_page_ref_count(dpage), 1);	/* and dropped its reference */
	assert_int_equal(atomic_load(&dev->page_frees), 0);
}

struct access_job {
	struct hmmu_mm *mm;
	unsigned long addr;
	unsigned char buf[64];
	pthread_barrier_t *barrier;
	int ret;
	atomic_bool done;
};

static void *access_job_run(void *arg)
{
	struct access_job *j = arg;

	if (j->barrier)
		pthread_barrier_wait(j->barrier);
	j->ret = hmmu_access(j->mm, j->addr, j->buf, sizeof(j->buf), HMMU_ACCESS_READ);
	atomic_store(&j->done, true);
	return NULL;
}

enum { NFAULTERS = 8 };

/*
 * Eight threads fault the same device page: while the first is inside
 * migrate_to_ram (which waits until another sleeps on the page lock), the
 * others wait; all complete, and the driver migrated once.
 */
static void test_device_private_fault_many_threads(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x6666;
	struct fault_seen seen = { .mm = mm, .wait_for_waiters = true };
	static struct access_job jobs[NFAULTERS];
	unsigned char data[PAGE];
	unsigned long a = map_filled_page(mm, data, &rs);
	pthread_barrier_t barrier;
	pthread_t t[NFAULTERS];
	int finished = 0;

	hmmu_test_dev_to_device(dev, mm, a);
	dev->migrate_hook = observing_migrate;
	dev->hook_data = &seen;
	pthread_barrier_init(&barrier, NULL, NFAULTERS);
	for (int i = 0; i < NFAULTERS; i++) {
		jobs[i] = (struct access_job){ .mm = mm, .addr = a + 64 * i, .barrier = &barrier };
		assert_int_equal(pthread_create(&t[i], NULL, access_job_run, &jobs[i]), 0);
	}
	for (int i = 0; i < NFAULTERS; i++)
		finished += join_within(t[i], WAIT_LIMIT_MS);
	pthread_barrier_destroy(&barrier);
	assert_int_equal(finished, NFAULTERS);
	assert_true(seen.waiters_seen);		/* others slept on the lock meanwhile */
	for (int i = 0; i < NFAULTERS; i++) {
		assert_int_equal(jobs[i].ret, 0);
		assert_memory_equal(jobs[i].buf, data + 64 * i, 64);
	}
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	assert_int_equal(atomic_load(&dev->page_frees), 1);
	assert_int_equal(atomic_load(&dev->pgmap.ref), 0);
}

/*
 * The device page's lock is held (a migration in progress): a fault sleeps
 * on it holding no page reference (only a pagemap one), and completes once
 * it is released; the holder's migration sees no extra reference.
 */
static void test_device_private_fault_waits_on_lock(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x7777;
	unsigned char data[PAGE];
	unsigned long a = map_filled_page(mm, data, &rs);
	struct hmmu_page *dpage = hmmu_test_dev_to_device(dev, mm, a);
	struct access_job job = { .mm = mm, .addr = a + 128 };
	long pgmap_ref;
	bool waiting, early;
	int ref;
	pthread_t t;

	hmmu_lock_page(dpage);
	assert_int_equal(pthread_create(&t, NULL, access_job_run, &job), 0);
	waiting = wait_for_flag(dpage, HMMU_PG_waiters);
	sleep_ms(10);
	ref = hmmu_page_ref_count(dpage);
	pgmap_ref = atomic_load(&dev->pgmap.ref);
	early = atomic_load(&job.done);
	hmmu_unlock_page(dpage);
	assert_true(join_within(t, WAIT_LIMIT_MS));
	assert_true(waiting);
	assert_false(early);
	assert_int_equal(ref, 1);		/* the entry's only */
	assert_int_equal(pgmap_ref, 2);		/* the page's and the sleeper's */
	assert_int_equal(job.ret, 0);
	assert_memory_equal(job.buf, data + 128, 64);
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	assert_int_equal(atomic_load(&dev->pgmap.ref), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_memremap_validation),
		HMMU_TEST(test_memremap_pages_start_free),
		HMMU_TEST(test_coherent_cpu_address),
		HMMU_TEST(test_page_free_once),
		HMMU_TEST(test_memunmap_waits_for_pages),
		HMMU_TEST(test_memunmap_idle),
		HMMU_TEST(test_device_private_entry),
		HMMU_TEST(test_device_private_fault_read),
		HMMU_TEST(test_device_private_fault_write_read_variant),
		HMMU_TEST(test_device_private_gup),
		HMMU_TEST(test_device_private_fault_sigbus),
		HMMU_TEST(test_device_private_fault_many_threads),
		HMMU_TEST(test_device_private_fault_waits_on_lock),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
