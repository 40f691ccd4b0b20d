// SPDX-License-Identifier: MIT
/*
 * conformance.<scenario>.<variant> (spec/conformance.md Part 2, migration):
 * run as `conformance_migration <scenario> private|coherent|host`.
 *
 *   hole_race               two devices migrate the same never-touched page
 *                           at once, many rounds: one insertion wins, the
 *                           loser's page goes back through page_free, the
 *                           CPU reads zeros.
 *   zero_page_migrate       zero-page entries migrate to the device; a
 *                           secondary MMU that mirrored the zero page is
 *                           invalidated before the new page is installed.
 *   migrate_owner_filter    MIGRATE invalidations carry the pagemap owner;
 *                           a driver skipping its own keeps its mappings of
 *                           pages that did not move; others are invalidated.
 *   select_flags            what each selection flag (and owner) selects.
 *   migrate_back_alloc_fail dmirror's system allocations fail while
 *                           migrating back: those entries stay on the
 *                           device, intact; a later attempt moves them.
 *
 * The first four call the migrate API directly, as a driver would (the
 * test allocates, fills and hands out destinations between setup and
 * pages), on the harness's test devices (a minimal driver whose frames the
 * fixture checks for leaks), watched by a test secondary MMU (struct
 * smirror: an interval subscriber with a table of hmm pfns, filled by the
 * canonical hmmu_range_fault loop).  migrate_back_alloc_fail runs on dmirror
 * and its allocation-failure knob.
 *
 * Host variant (a host mm, CPU accesses as plain loads and stores): every
 * scenario but select_flags, which needs shared memory and an anonymous
 * VMA without page tables (a host mm has neither: its VMAs get their page
 * tables at mmap time).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <hmmu/dmirror.h>

#include "conf_case.h"

#define PAGE HMMU_PAGE_SIZE
#define MAX_MIRROR 16		/* pages a test secondary MMU mirrors */
#define MAX_EVENTS 64

static char owner_a, owner_b;	/* two distinct pagemap owners */

/* ------------------------------------------------------------------ */
/* A test secondary MMU                                                */
/* ------------------------------------------------------------------ */

struct inv_event {
	enum hmmu_notifier_event event;
	void *owner;
	unsigned long start, end;
	bool skipped;		/* ignored as the subscriber's own migration */
};

struct smirror {
	struct hmmu_interval_notifier notifier;
	pthread_mutex_t lock;
	struct hmmu_mm *mm;
	unsigned long start, npages;
	unsigned long pfns[MAX_MIRROR];	/* hmm pfn entries; 0: not mirrored */
	void *owner;			/* dev_private_owner of its snapshots */
	bool skip_own_migrate;		/* ignore MIGRATE events whose owner is `owner` (dmirror's rule) */
	bool check_cpu;			/* count invalidations that come after the CPU entry changed */
	int stale;			/* such invalidations */
	int nr_events;
	struct inv_event events[MAX_EVENTS];
};

/* The frame the CPU entry at @addr refers to (present or device/migration entry), or -1. */
static unsigned long cpu_pfn_locked(struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_pt *pt;
	bool huge = false;
	hmmu_pte_t *ep = hmmu_leaf_lookup_lock(mm, addr, &pt, &huge), e;
	unsigned long pfn = -1UL;

	if (!ep)
		return pfn;
	e = hmmu_pte_read(ep);
	if (hmmu_pte_present(e))
		pfn = hmmu_pte_pfn(e) + (huge ? (addr & ~HMMU_PMD_MASK) >> HMMU_PAGE_SHIFT : 0);
	else if (!hmmu_pte_none(e))
		pfn = hmmu_pte_to_swp_entry(e).pfn;
	hmmu_pt_unlock(pt);
	return pfn;
}

static bool smirror_invalidate(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
			       unsigned long cur_seq)
{
	struct smirror *m = hmmu_container_of(sub, struct smirror, notifier);
	bool skip = m->skip_own_migrate && range->event == HMMU_NOTIFY_MIGRATE && range->owner == m->owner;

	if (hmmu_notifier_range_blockable(range))
		pthread_mutex_lock(&m->lock);
	else if (pthread_mutex_trylock(&m->lock))
		return false;
	if (m->nr_events < MAX_EVENTS)
		m->events[m->nr_events++] = (struct inv_event){ range->event, range->owner, range->start,
								range->end, skip };
	if (!skip) {
		hmmu_interval_set_seq(sub, cur_seq);
		for (unsigned long i = 0; i < m->npages; i++) {
			unsigned long addr = m->start + i * PAGE;

			if (addr < range->start || addr >= range->end || !m->pfns[i])
				continue;
			if (m->check_cpu && cpu_pfn_locked(m->mm, addr) != (m->pfns[i] & ~HMMU_PFN_FLAGS))
				m->stale++;
			m->pfns[i] = 0;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return true;
}

static const struct hmmu_interval_notifier_ops smirror_ops = { .invalidate = smirror_invalidate };

static struct smirror *smirror_new(struct hmmu_mm *mm, unsigned long start, unsigned long npages, void *owner)
{
	struct smirror *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	assert_true(npages <= MAX_MIRROR);
	pthread_mutex_init(&m->lock, NULL);
	m->mm = mm;
	m->start = start;
	m->npages = npages;
	m->owner = owner;
	assert_int_equal(hmmu_interval_notifier_insert(&m->notifier, mm, start, npages * PAGE, &smirror_ops), 0);
	return m;
}

static void smirror_free(struct smirror *m)
{
	hmmu_interval_notifier_remove(&m->notifier);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/*
 * The canonical loop (spec 1.8), pure snapshot (no faults), of the whole
 * mirrored range, with the mmap_lock already held for read.  Returns 0 or
 * hmmu_range_fault's error.
 */
static int smirror_snapshot_locked(struct smirror *m)
{
	unsigned long pfns[MAX_MIRROR];
	struct hmmu_range range = {
		.notifier = &m->notifier,
		.start = m->start,
		.end = m->start + m->npages * PAGE,
		.hmm_pfns = pfns,
		.dev_private_owner = m->owner,
	};
	int ret;

	for (;;) {
		range.notifier_seq = hmmu_interval_read_begin(&m->notifier);
		ret = hmmu_range_fault(&range);
		if (ret == -EBUSY)
			continue;
		if (ret)
			return ret;
		pthread_mutex_lock(&m->lock);
		if (!hmmu_interval_read_retry(&m->notifier, range.notifier_seq)) {
			memcpy(m->pfns, pfns, m->npages * sizeof(pfns[0]));
			pthread_mutex_unlock(&m->lock);
			return 0;
		}
		pthread_mutex_unlock(&m->lock);
	}
}

static void smirror_snapshot(struct smirror *m)
{
	int ret;

	hmmu_mmap_read_lock(m->mm);
	ret = smirror_snapshot_locked(m);
	hmmu_mmap_read_unlock(m->mm);
	assert_int_equal(ret, 0);
}

/* Entry @i of the mirror (under its lock). */
static unsigned long smirror_pfn(struct smirror *m, unsigned long i)
{
	unsigned long v;

	pthread_mutex_lock(&m->lock);
	v = m->pfns[i];
	pthread_mutex_unlock(&m->lock);
	return v;
}

/*
 * Every event recorded from index @from on is MIGRATE with @owner; returns
 * how many.  (Assertions run with no lock held: a failure leaves at once.)
 */
static int assert_migrate_events(struct smirror *m, int from, void *owner)
{
	struct inv_event ev[MAX_EVENTS];
	int n;

	pthread_mutex_lock(&m->lock);
	n = m->nr_events;
	memcpy(ev, m->events, sizeof(ev));
	pthread_mutex_unlock(&m->lock);
	for (int i = from; i < n; i++) {
		if (ev[i].event != HMMU_NOTIFY_MIGRATE || ev[i].owner != owner)
			print_message("event %d: %d owner %p, expected MIGRATE owner %p\n", i, ev[i].event,
				      ev[i].owner, owner);
		assert_int_equal(ev[i].event, HMMU_NOTIFY_MIGRATE);
		assert_ptr_equal(ev[i].owner, owner);
	}
	return n - from;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

/*
 * The mmap_lock held for read by the test thread around a migration, so
 * that a failed assertion inside (which leaves the test at once) does not
 * leave the mm locked for the fixture's teardown: conf_teardown drops it.
 */
static struct hmmu_mm *test_locked_mm;

static void test_lock(struct hmmu_mm *mm)
{
	hmmu_mmap_read_lock(mm);
	test_locked_mm = mm;
}

static void test_unlock(struct hmmu_mm *mm)
{
	test_locked_mm = NULL;
	hmmu_mmap_read_unlock(mm);
}

static int conf_teardown(void **state)
{
	if (test_locked_mm)
		test_unlock(test_locked_mm);
	return hmmu_test_teardown(state);
}

static unsigned long map_anon(struct hmmu_mm *mm, size_t size, int flags)
{
	long ret = hmmu_mmap(mm, 0, size, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);

	assert_true(ret >= 0);
	return (unsigned long)ret;
}

/* Fill page @i of [addr, ...) with the byte (i + seed) and check it back. */
static void fill_pages(struct hmmu_mm *mm, unsigned long addr, unsigned long npages, int seed)
{
	unsigned char buf[PAGE];

	for (unsigned long i = 0; i < npages; i++) {
		memset(buf, (int)(i + seed), PAGE);
		cpu_put(mm, addr + i * PAGE, buf, PAGE);
	}
}

static void check_pages(struct hmmu_mm *mm, unsigned long addr, unsigned long npages, int seed)
{
	unsigned char buf[PAGE], want[PAGE];

	for (unsigned long i = 0; i < npages; i++) {
		memset(want, (int)(i + seed), PAGE);
		cpu_get(mm, addr + i * PAGE, buf, PAGE);
		assert_memory_equal(buf, want, PAGE);
	}
}

/* Does @pfn belong to @dev? */
static bool dev_owns_pfn(struct hmmu_test_dev *dev, unsigned long pfn)
{
	return pfn >= dev->first_pfn && pfn < dev->first_pfn + dev->nr_pages;
}

static unsigned long cpu_pfn(struct hmmu_mm *mm, unsigned long addr)
{
	unsigned long pfn;

	hmmu_mmap_read_lock(mm);
	pfn = cpu_pfn_locked(mm, addr);
	hmmu_mmap_read_unlock(mm);
	return pfn;
}

/* A migrate_vma over [start, start + npages pages) of @mm's VMA there; mmap_lock held by the caller. */
static void migrate_init(struct hmmu_migrate_vma *args, struct hmmu_mm *mm, unsigned long start,
			 unsigned long npages, unsigned long *src, unsigned long *dst, void *owner,
			 unsigned long flags)
{
	memset(args, 0, sizeof(*args));
	args->vma = hmmu_vma_lookup(mm, start);
	args->start = start;
	args->end = start + npages * PAGE;
	args->src = src;
	args->dst = dst;
	args->pgmap_owner = owner;
	args->flags = flags;
}

/*
 * A destination on @dev for src entry @s: a zeroed page, or the copy of
 * the source page; 0 when @dev has no free page.  No cmocka assertion:
 * racing threads call it.
 */
static unsigned long dev_dst(struct hmmu_test_dev *dev, unsigned long s)
{
	struct hmmu_page *dpage = hmmu_test_dev_alloc(dev), *spage = hmmu_migrate_pfn_to_page(s);

	if (!dpage)
		return 0;
	if (spage)
		memcpy(hmmu_test_dev_mem(dev, dpage), hmmu_page_address(spage), PAGE);
	else
		memset(hmmu_test_dev_mem(dev, dpage), 0, PAGE);
	return hmmu_migrate_pfn(hmmu_page_to_pfn(dpage));
}

/* ------------------------------------------------------------------ */
/* hole_race                                                           */
/* ------------------------------------------------------------------ */

#define HOLE_ROUNDS 256

struct racer {
	pthread_t thread;
	struct hmmu_mm *mm;
	struct hmmu_test_dev *dev;
	pthread_barrier_t *start, *mid, *done;
	unsigned long addr;	/* this round's page */
	bool use_mid;		/* this round: both setups happen before either commit */
	bool quit;
	int setup_ret;
	bool allocated, installed;
};

/* One device's migration of the round's page to its memory. */
static void racer_migrate(struct racer *r)
{
	unsigned long src = 0, dst = 0;
	struct hmmu_migrate_vma args;

	hmmu_mmap_read_lock(r->mm);
	migrate_init(&args, r->mm, r->addr, 1, &src, &dst, r->dev->pgmap.owner, HMMU_MIGRATE_VMA_SELECT_SYSTEM);
	r->setup_ret = hmmu_migrate_vma_setup(&args);
	if (!r->setup_ret && src == HMMU_MIGRATE_PFN_MIGRATE)
		dst = dev_dst(r->dev, src);
	r->allocated = dst != 0;
	if (r->use_mid)
		pthread_barrier_wait(r->mid);
	if (!r->setup_ret) {
		hmmu_migrate_vma_pages(&args);
		r->installed = r->allocated && (src & HMMU_MIGRATE_PFN_MIGRATE);
		hmmu_migrate_vma_finalize(&args);
	}
	hmmu_mmap_read_unlock(r->mm);
}

static void *racer_thread(void *p)
{
	struct racer *r = p;

	for (;;) {
		pthread_barrier_wait(r->start);
		if (r->quit)
			return NULL;
		racer_migrate(r);
		pthread_barrier_wait(r->done);
	}
}

/* Check one round's outcome; the CPU then reads zeros and the page is unmapped. */
static void hole_round_check(struct hmmu_mm *mm, struct racer *r, long *allocs, long *frees)
{
	int winners = 0, w = 0;
	unsigned char buf[PAGE], zeros[PAGE] = { 0 };

	for (int i = 0; i < 2; i++) {
		assert_int_equal(r[i].setup_ret, 0);
		winners += r[i].installed;
		w = r[i].installed ? i : w;
		allocs[i] += r[i].allocated;
		frees[i] += r[i].allocated && !r[i].installed;	/* the loser's page went back */
		assert_int_equal(atomic_load(&r[i].dev->allocs), allocs[i]);
		assert_int_equal(atomic_load(&r[i].dev->page_frees), frees[i]);
		if (r[0].use_mid)
			assert_true(r[i].allocated);	/* both saw the hole (and had a free page) */
	}
	assert_int_equal(winners, 1);
	assert_true(dev_owns_pfn(r[w].dev, cpu_pfn(mm, r[w].addr)));

	cpu_get(mm, r[w].addr, buf, PAGE);
	assert_memory_equal(buf, zeros, PAGE);
	assert_int_equal(hmmu_munmap(mm, r[w].addr, PAGE), 0);
	frees[w]++;		/* the winner's page is freed by the CPU fault (private) or the unmap */
	assert_int_equal(atomic_load(&r[w].dev->page_frees), frees[w]);
}

static void hole_race(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	pthread_barrier_t start, mid, done;
	struct racer r[2];
	long allocs[2] = { 0, 0 }, frees[2] = { 0, 0 };
	unsigned long base = map_anon(mm, HOLE_ROUNDS * PAGE, MAP_PRIVATE);

	pthread_barrier_init(&start, NULL, 3);
	pthread_barrier_init(&done, NULL, 3);
	pthread_barrier_init(&mid, NULL, 2);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 2; i++) {
		r[i] = (struct racer){ .mm = mm, .start = &start, .mid = &mid, .done = &done };
		r[i].dev = hmmu_test_dev(conf_variant, 16, i ? (void *)&owner_b : (void *)&owner_a);
		assert_int_equal(pthread_create(&r[i].thread, NULL, racer_thread, &r[i]), 0);
	}
	for (int round = 0; round < HOLE_ROUNDS; round++) {
		for (int i = 0; i < 2; i++) {
			r[i].addr = base + round * PAGE;
			r[i].use_mid = round % 2 == 0;
			r[i].allocated = r[i].installed = false;
		}
		pthread_barrier_wait(&start);
		pthread_barrier_wait(&done);
		hole_round_check(mm, r, allocs, frees);
	}
	r[0].quit = r[1].quit = true;
	pthread_barrier_wait(&start);
	for (int i = 0; i < 2; i++)
		pthread_join(r[i].thread, NULL);
	pthread_barrier_destroy(&start);
	pthread_barrier_destroy(&mid);
	pthread_barrier_destroy(&done);
}

/* ------------------------------------------------------------------ */
/* zero_page_migrate                                                   */
/* ------------------------------------------------------------------ */

#define ZP_PAGES 8

static void zero_page_migrate(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(conf_variant, 64, &owner_a);
	unsigned long addr = map_anon(mm, ZP_PAGES * PAGE, MAP_PRIVATE), src[ZP_PAGES], dst[ZP_PAGES], stale_seq;
	unsigned char buf[ZP_PAGES * PAGE], zeros[ZP_PAGES * PAGE] = { 0 };
	struct smirror *m;
	struct hmmu_migrate_vma args;
	bool retry;
	int ev;

	/* The CPU reads: every entry maps the zero page; the secondary MMU mirrors it. */
	cpu_get(mm, addr, buf, sizeof(buf));
	for (int i = 0; i < ZP_PAGES; i++)
		assert_true(hmmu_is_zero_pfn(cpu_pfn(mm, addr + i * PAGE)));
	m = smirror_new(mm, addr, ZP_PAGES, &owner_a);
	m->check_cpu = true;
	smirror_snapshot(m);
	for (int i = 0; i < ZP_PAGES; i++) {
		assert_true(m->pfns[i] & HMMU_PFN_VALID);
		assert_false(m->pfns[i] & HMMU_PFN_WRITE);
		assert_true(hmmu_is_zero_pfn(m->pfns[i] & ~HMMU_PFN_FLAGS));
	}

	test_lock(mm);
	migrate_init(&args, mm, addr, ZP_PAGES, src, dst, &owner_a, HMMU_MIGRATE_VMA_SELECT_SYSTEM);
	assert_int_equal(hmmu_migrate_vma_setup(&args), 0);
	assert_int_equal(args.cpages, ZP_PAGES);
	for (int i = 0; i < ZP_PAGES; i++) {
		assert_int_equal(src[i], HMMU_MIGRATE_PFN_MIGRATE);
		dst[i] = dev_dst(dev, src[i]);
		assert_int_not_equal(dst[i], 0);
	}
	/* The zero page stays mapped after setup: the device mirrors it again. */
	assert_int_equal(smirror_snapshot_locked(m), 0);
	for (int i = 0; i < ZP_PAGES; i++)
		assert_true(hmmu_is_zero_pfn(smirror_pfn(m, i) & ~HMMU_PFN_FLAGS));
	/* A mirror update that began now would be stale once the new pages are in. */
	stale_seq = hmmu_interval_read_begin(&m->notifier);
	ev = m->nr_events;

	assert_int_equal(hmmu_migrate_vma_pages(&args), 0);
	/* Invalidated, with the migration's owner, while the CPU still mapped the zero page. */
	assert_true(assert_migrate_events(m, ev, &owner_a) >= 1);
	assert_int_equal(m->stale, 0);
	pthread_mutex_lock(&m->lock);
	retry = hmmu_interval_read_retry(&m->notifier, stale_seq);
	pthread_mutex_unlock(&m->lock);
	assert_true(retry);
	for (int i = 0; i < ZP_PAGES; i++)
		assert_int_equal(smirror_pfn(m, i), 0);
	for (int i = 0; i < ZP_PAGES; i++)
		assert_int_equal(src[i], HMMU_MIGRATE_PFN_MIGRATE);
	assert_int_equal(hmmu_migrate_vma_finalize(&args), 0);
	test_unlock(mm);

	/* The device's pages are mapped now; a fresh snapshot sees them. */
	smirror_snapshot(m);
	for (int i = 0; i < ZP_PAGES; i++) {
		unsigned long pfn = dst[i] >> HMMU_MIGRATE_PFN_SHIFT;

		assert_int_equal(cpu_pfn(mm, addr + i * PAGE), pfn);
		assert_int_equal(m->pfns[i], pfn | HMMU_PFN_VALID | HMMU_PFN_WRITE);
	}
	assert_int_equal(m->stale, 0);
	cpu_get(mm, addr, buf, sizeof(buf));
	assert_memory_equal(buf, zeros, sizeof(buf));
	smirror_free(m);
	assert_int_equal(hmmu_munmap(mm, addr, ZP_PAGES * PAGE), 0);
}

/* ------------------------------------------------------------------ */
/* migrate_owner_filter                                                */
/* ------------------------------------------------------------------ */

#define OF_PAGES 8

/*
 * Device @dev (owner @owner) migrates [addr, + npages) from system memory,
 * giving destinations only to the pages @move selects, and maps what moved
 * in its own mirror @own (it ignores its own MIGRATE invalidations).
 */
static void owner_migrate(struct hmmu_mm *mm, struct hmmu_test_dev *dev, struct smirror *own, unsigned long addr,
			  unsigned long npages, bool (*move)(unsigned long i))
{
	unsigned long src[OF_PAGES], dst[OF_PAGES];
	struct hmmu_migrate_vma args;

	test_lock(mm);
	migrate_init(&args, mm, addr, npages, src, dst, dev->pgmap.owner, HMMU_MIGRATE_VMA_SELECT_SYSTEM);
	assert_int_equal(hmmu_migrate_vma_setup(&args), 0);
	for (unsigned long i = 0; i < npages; i++) {
		assert_true(src[i] & HMMU_MIGRATE_PFN_VALID);
		if (move(i)) {
			dst[i] = dev_dst(dev, src[i]);
			assert_int_not_equal(dst[i], 0);
		}
	}
	assert_int_equal(hmmu_migrate_vma_pages(&args), 0);
	for (unsigned long i = 0; i < npages; i++)
		assert_int_equal(!!(src[i] & HMMU_MIGRATE_PFN_MIGRATE), move(i));
	pthread_mutex_lock(&own->lock);
	for (unsigned long i = 0; i < npages; i++) {
		if (move(i))
			own->pfns[(addr - own->start) / PAGE + i] =
				(dst[i] >> HMMU_MIGRATE_PFN_SHIFT) | HMMU_PFN_VALID | HMMU_PFN_WRITE;
	}
	pthread_mutex_unlock(&own->lock);
	assert_int_equal(hmmu_migrate_vma_finalize(&args), 0);
	test_unlock(mm);
}

static bool move_even(unsigned long i)
{
	return i % 2 == 0;
}

static bool move_all(unsigned long i)
{
	return true;
}

static void migrate_owner_filter(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev_a = hmmu_test_dev(conf_variant, 64, &owner_a);
	struct hmmu_test_dev *dev_b = hmmu_test_dev(conf_variant, 64, &owner_b);
	unsigned long addr = map_anon(mm, OF_PAGES * PAGE, MAP_PRIVATE), before[OF_PAGES];
	struct smirror *ma, *mb;
	int ev_a, ev_b;

	fill_pages(mm, addr, OF_PAGES, 1);
	ma = smirror_new(mm, addr, OF_PAGES, &owner_a);
	mb = smirror_new(mm, addr, OF_PAGES, &owner_b);
	ma->skip_own_migrate = mb->skip_own_migrate = true;
	smirror_snapshot(ma);
	smirror_snapshot(mb);
	for (int i = 0; i < OF_PAGES; i++) {
		before[i] = ma->pfns[i];
		assert_int_equal(before[i], cpu_pfn(mm, addr + i * PAGE) | HMMU_PFN_VALID | HMMU_PFN_WRITE);
	}

	/* Device A moves the even pages; the odd ones are selected but stay. */
	ev_a = ma->nr_events;
	ev_b = mb->nr_events;
	owner_migrate(mm, dev_a, ma, addr, OF_PAGES, move_even);
	assert_true(assert_migrate_events(ma, ev_a, &owner_a) >= 1);
	assert_true(assert_migrate_events(mb, ev_b, &owner_a) >= 1);
	for (int i = ev_a; i < ma->nr_events; i++)
		assert_true(ma->events[i].skipped);
	for (int i = 0; i < OF_PAGES; i++) {
		unsigned long pfn = cpu_pfn(mm, addr + i * PAGE);

		/* A kept its mapping of every page that did not move, and it is still right. */
		if (!move_even(i)) {
			assert_int_equal(smirror_pfn(ma, i), before[i]);
			assert_int_equal(before[i] & ~HMMU_PFN_FLAGS, pfn);
		} else {
			assert_true(dev_owns_pfn(dev_a, pfn));
			assert_int_equal(smirror_pfn(ma, i), pfn | HMMU_PFN_VALID | HMMU_PFN_WRITE);
		}
		/* B, another owner, lost all of them. */
		assert_int_equal(smirror_pfn(mb, i), 0);
	}

	/* Device B moves page 1: A is invalidated for it, and only for it. */
	smirror_snapshot(mb);
	ev_a = ma->nr_events;
	owner_migrate(mm, dev_b, mb, addr + PAGE, 1, move_all);
	assert_true(assert_migrate_events(ma, ev_a, &owner_b) >= 1);
	for (int i = ev_a; i < ma->nr_events; i++)
		assert_false(ma->events[i].skipped);
	assert_int_equal(smirror_pfn(ma, 1), 0);
	assert_true(dev_owns_pfn(dev_b, cpu_pfn(mm, addr + PAGE)));
	for (int i = 0; i < OF_PAGES; i++)
		if (i != 1)
			assert_int_not_equal(smirror_pfn(ma, i), 0);

	smirror_free(ma);
	smirror_free(mb);
	check_pages(mm, addr, OF_PAGES, 1);
	assert_int_equal(hmmu_munmap(mm, addr, OF_PAGES * PAGE), 0);
}

/* ------------------------------------------------------------------ */
/* select_flags                                                        */
/* ------------------------------------------------------------------ */

/* The six kinds of slot of select_flags' VMA, one page each. */
enum { SF_HOLE, SF_ZERO, SF_SYSTEM, SF_OWN_DEV, SF_OTHER_DEV, SF_SYSTEM2, SF_PAGES };

/* What setup must report for slot @kind with @flags, for a caller whose own device is at SF_OWN_DEV. */
static unsigned long sf_expected(int kind, unsigned long flags, unsigned long pfn)
{
	unsigned long dev_flag = conf_coherent() ? HMMU_MIGRATE_VMA_SELECT_DEVICE_COHERENT :
						   HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
	unsigned long page = hmmu_migrate_pfn(pfn) | HMMU_MIGRATE_PFN_MIGRATE | HMMU_MIGRATE_PFN_WRITE;

	switch (kind) {
	case SF_HOLE:
		return HMMU_MIGRATE_PFN_MIGRATE;		/* whatever the flags (6.1) */
	case SF_ZERO:
		return flags & HMMU_MIGRATE_VMA_SELECT_SYSTEM ? HMMU_MIGRATE_PFN_MIGRATE : 0;
	case SF_SYSTEM:
	case SF_SYSTEM2:
		return flags & HMMU_MIGRATE_VMA_SELECT_SYSTEM ? page : 0;
	case SF_OWN_DEV:
		return flags & dev_flag ? page : 0;
	default:
		return 0;					/* another owner's page: never */
	}
}

/*
 * Setup over [addr, + npages) with @flags and @owner; *@selected gets src[]
 * as setup left it; then everything is restored (no destinations).
 */
static void sf_setup_restore(struct hmmu_mm *mm, unsigned long addr, unsigned long npages, unsigned long flags,
			     void *owner, unsigned long *selected)
{
	unsigned long src[SF_PAGES], dst[SF_PAGES], n = 0;
	struct hmmu_migrate_vma args;

	test_lock(mm);
	migrate_init(&args, mm, addr, npages, src, dst, owner, flags);
	assert_int_equal(hmmu_migrate_vma_setup(&args), 0);
	assert_int_equal(args.npages, npages);
	memcpy(selected, src, npages * sizeof(src[0]));
	for (unsigned long i = 0; i < npages; i++)
		n += !!(src[i] & HMMU_MIGRATE_PFN_MIGRATE);
	assert_int_equal(args.cpages, n);
	assert_int_equal(hmmu_migrate_vma_pages(&args), 0);
	assert_int_equal(hmmu_migrate_vma_finalize(&args), 0);
	test_unlock(mm);
}

static void select_flags(void **state)
{
	static const unsigned long flag_sets[] = {
		0,
		HMMU_MIGRATE_VMA_SELECT_SYSTEM,
		HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
		HMMU_MIGRATE_VMA_SELECT_DEVICE_COHERENT,
		HMMU_MIGRATE_VMA_SELECT_SYSTEM | HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
		HMMU_MIGRATE_VMA_SELECT_SYSTEM | HMMU_MIGRATE_VMA_SELECT_DEVICE_COHERENT,
		HMMU_MIGRATE_VMA_SELECT_SYSTEM | HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE |
			HMMU_MIGRATE_VMA_SELECT_DEVICE_COHERENT,
	};
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev[2] = { hmmu_test_dev(conf_variant, 16, &owner_a),
					 hmmu_test_dev(conf_variant, 16, &owner_b) };
	unsigned long addr = map_anon(mm, SF_PAGES * PAGE, MAP_PRIVATE), pfn[SF_PAGES], src[SF_PAGES];
	/* The 2 MiB-aligned window of a 4 MiB VMA: no other VMA shares its page table. */
	unsigned long untouched = (map_anon(mm, 2 * HMMU_PMD_SIZE, MAP_PRIVATE) + HMMU_PMD_SIZE - 1) & HMMU_PMD_MASK;
	unsigned long shared = map_anon(mm, 4 * PAGE, MAP_SHARED);
	unsigned char c;

	/* Hole, zero page, system page, device pages of owners A and B, system page. */
	c = get_byte(mm, addr + SF_ZERO * PAGE);
	assert_int_equal(c, 0);
	fill_pages(mm, addr + SF_SYSTEM * PAGE, SF_PAGES - SF_SYSTEM, 7);
	hmmu_test_dev_to_device(dev[0], mm, addr + SF_OWN_DEV * PAGE);
	hmmu_test_dev_to_device(dev[1], mm, addr + SF_OTHER_DEV * PAGE);
	for (int i = 0; i < SF_PAGES; i++)
		pfn[i] = cpu_pfn(mm, addr + i * PAGE);
	assert_int_equal(pfn[SF_HOLE], -1UL);
	assert_true(hmmu_is_zero_pfn(pfn[SF_ZERO]));
	assert_true(dev_owns_pfn(dev[0], pfn[SF_OWN_DEV]));
	assert_true(dev_owns_pfn(dev[1], pfn[SF_OTHER_DEV]));

	for (size_t f = 0; f < sizeof(flag_sets) / sizeof(flag_sets[0]); f++) {
		unsigned long flags = flag_sets[f];

		sf_setup_restore(mm, addr, SF_PAGES, flags, &owner_a, src);
		for (int i = 0; i < SF_PAGES; i++) {
			if (src[i] != sf_expected(i, flags, pfn[i]))
				print_message("flags %#lx slot %d: src %#lx, expected %#lx\n", flags, i, src[i],
					      sf_expected(i, flags, pfn[i]));
			assert_int_equal(src[i], sf_expected(i, flags, pfn[i]));
			/* Restored: the CPU entry is the one it was. */
			assert_int_equal(cpu_pfn(mm, addr + i * PAGE), pfn[i]);
		}
		/* No page table at all in an anonymous VMA: holes, selected whatever the flags. */
		sf_setup_restore(mm, untouched, 4, flags, &owner_a, src);
		for (int i = 0; i < 4; i++)
			assert_int_equal(src[i], HMMU_MIGRATE_PFN_MIGRATE);
		/* Holes of a shared (non-anonymous) VMA: never. */
		sf_setup_restore(mm, shared, 4, flags, &owner_a, src);
		for (int i = 0; i < 4; i++)
			assert_int_equal(src[i], 0);
	}
	check_pages(mm, addr + SF_SYSTEM * PAGE, SF_PAGES - SF_SYSTEM, 7);
	assert_int_equal(hmmu_munmap(mm, addr, SF_PAGES * PAGE), 0);
}

/* ------------------------------------------------------------------ */
/* migrate_back_alloc_fail                                             */
/* ------------------------------------------------------------------ */

#define MB_PAGES 64
#define MB_FAIL 16

static int mb_cmd(struct hmmu_dmirror *mirror, unsigned int nr, unsigned long addr, void *buf,
		  struct hmmu_dmirror_cmd *cmd)
{
	*cmd = (struct hmmu_dmirror_cmd){ .addr = addr, .ptr = (uintptr_t)buf, .npages = MB_PAGES };
	return hmmu_dmirror_cmd(mirror, nr, cmd);
}

/* Snapshot: how many pages are on the device (the rest must be writable system pages). */
static unsigned long mb_on_device(struct hmmu_dmirror *mirror, unsigned long addr)
{
	unsigned char snap[MB_PAGES];
	unsigned char dev_byte = (conf_coherent() ? HMMU_DMIRROR_PROT_DEV_COHERENT_LOCAL :
						    HMMU_DMIRROR_PROT_DEV_PRIVATE_LOCAL) |
				 HMMU_DMIRROR_PROT_WRITE;
	struct hmmu_dmirror_cmd cmd;
	unsigned long n = 0;

	assert_int_equal(mb_cmd(mirror, HMMU_DMIRROR_SNAPSHOT, addr, snap, &cmd), 0);
	assert_int_equal(cmd.cpages, MB_PAGES);
	for (int i = 0; i < MB_PAGES; i++) {
		if (snap[i] != dev_byte)
			assert_int_equal(snap[i], HMMU_DMIRROR_PROT_WRITE);
		n += snap[i] == dev_byte;
	}
	return n;
}

static void migrate_back_alloc_fail(void **state)
{
	struct hmmu_dmirror_device_config cfg = { .type = conf_variant };
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *mdev;
	struct hmmu_dmirror *mirror;
	struct hmmu_dmirror_device_stats st;
	struct hmmu_dmirror_cmd cmd;
	unsigned long addr = map_anon(mm, MB_PAGES * PAGE, MAP_PRIVATE);
	unsigned char *buf = malloc(MB_PAGES * PAGE);

	assert_non_null(buf);
	assert_int_equal(hmmu_dmirror_device_create(&cfg, &mdev), 0);
	assert_int_equal(hmmu_dmirror_open(mdev, mm, &mirror), 0);
	fill_pages(mm, addr, MB_PAGES, 3);
	assert_int_equal(mb_cmd(mirror, HMMU_DMIRROR_MIGRATE_TO_DEV, addr, buf, &cmd), 0);
	assert_int_equal(cmd.cpages, MB_PAGES);
	assert_int_equal(mb_on_device(mirror, addr), MB_PAGES);

	/* Some system allocations fail: those pages stay on the device. */
	assert_int_equal(hmmu_dmirror_device_fail_allocs(mdev, HMMU_DMIRROR_FAIL_SYSTEM_ALLOC, MB_FAIL), 0);
	assert_int_equal(mb_cmd(mirror, HMMU_DMIRROR_MIGRATE_TO_SYS, addr, buf, &cmd), 0);
	assert_int_equal(cmd.cpages, MB_PAGES - MB_FAIL);
	assert_int_equal(hmmu_dmirror_device_get_stats(mdev, &st), 0);
	assert_int_equal(st.alloc_failures, MB_FAIL);
	assert_int_equal(st.pages_in_use, MB_FAIL);
	assert_int_equal(mb_on_device(mirror, addr), MB_FAIL);

	/* Every allocation fails: nothing moves, nothing changes. */
	assert_int_equal(hmmu_dmirror_device_fail_allocs(mdev, HMMU_DMIRROR_FAIL_SYSTEM_ALLOC, -1), 0);
	assert_int_equal(mb_cmd(mirror, HMMU_DMIRROR_MIGRATE_TO_SYS, addr, buf, &cmd), 0);
	assert_int_equal(cmd.cpages, 0);
	assert_int_equal(mb_on_device(mirror, addr), MB_FAIL);

	/* The knob reset, a later attempt moves the rest; the data is intact. */
	assert_int_equal(hmmu_dmirror_device_fail_allocs(mdev, HMMU_DMIRROR_FAIL_SYSTEM_ALLOC, 0), 0);
	assert_int_equal(mb_cmd(mirror, HMMU_DMIRROR_MIGRATE_TO_SYS, addr, buf, &cmd), 0);
	assert_int_equal(cmd.cpages, MB_FAIL);
	assert_int_equal(mb_on_device(mirror, addr), 0);
	assert_int_equal(hmmu_dmirror_device_get_stats(mdev, &st), 0);
	assert_int_equal(st.pages_in_use, 0);
	check_pages(mm, addr, MB_PAGES, 3);

	assert_int_equal(hmmu_dmirror_close(mirror), 0);
	assert_int_equal(hmmu_dmirror_device_get_stats(mdev, &st), 0);
	assert_int_equal(hmmu_dmirror_device_destroy(mdev), 0);
	free(buf);
	assert_int_equal(hmmu_munmap(mm, addr, MB_PAGES * PAGE), 0);
}

/* ------------------------------------------------------------------ */

static const struct conf_case scenarios[] = {
	CONF_CASE(hole_race, 0, V_BOTH | V_HOST),
	CONF_CASE(zero_page_migrate, 0, V_BOTH | V_HOST),
	CONF_CASE(migrate_owner_filter, 0, V_BOTH | V_HOST),
	CONF_CASE(select_flags, 0, V_BOTH),
	CONF_CASE(migrate_back_alloc_fail, 0, V_BOTH | V_HOST),
};

int main(int argc, char **argv)
{
	return conf_main(argc, argv, scenarios, sizeof(scenarios) / sizeof(scenarios[0]), hmmu_test_setup,
			 conf_teardown);
}
