// SPDX-License-Identifier: MIT
/*
 * Unit tests of dmirror, the reference device (spec 5), for what the
 * conformance port of hmm-tests does not reach: the device page table
 * (insertion, lookup and erasure across table boundaries, against a shadow),
 * the invalidate callback (inclusive end, own MIGRATE events skipped,
 * try-lock failure in a non-blockable range), chunks created on demand up
 * to max_chunks, the allocation-failure knob for device and system pages,
 * the calloc/cfree counters, the migrate_to_ram fault-around window,
 * eviction on close (every mirror's pages), RELEASE, destroy with a mirror
 * open, argument checks, the mapping of the device, and the direct calls
 * with their data.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "drivers/dmirror/dmirror_priv.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define MiB (1UL << 20)

/* ------------------------------------------------------------------ */
/* Fixture: devices and mirrors a failed test left behind are removed  */
/* ------------------------------------------------------------------ */

#define MAX_OBJS 8
static struct hmmu_dmirror_device *devs[MAX_OBJS];
static struct hmmu_dmirror *mirrors[MAX_OBJS];

static void track(void **slots, void *p)
{
	for (int i = 0; i < MAX_OBJS; i++)
		if (!slots[i]) {
			slots[i] = p;
			return;
		}
	fail_msg("too many objects");
}

static void untrack(void **slots, void *p)
{
	for (int i = 0; i < MAX_OBJS; i++)
		if (slots[i] == p)
			slots[i] = NULL;
}

static struct hmmu_dmirror_device *dev_new(enum hmmu_memory_type type, unsigned long chunk, unsigned long max,
					   unsigned long around)
{
	struct hmmu_dmirror_device_config cfg = {
		.type = type, .chunk_size = chunk, .max_chunks = max, .fault_around_pages = around,
	};
	struct hmmu_dmirror_device *d;

	assert_int_equal(hmmu_dmirror_device_create(&cfg, &d), 0);
	track((void **)devs, d);
	return d;
}

/* A private device with small chunks (2 MiB). */
static struct hmmu_dmirror_device *dev_small(void)
{
	return dev_new(HMMU_MEMORY_DEVICE_PRIVATE, 2 * MiB, 4, 1);
}

static void dev_destroy(struct hmmu_dmirror_device *d)
{
	untrack((void **)devs, d);
	assert_int_equal(hmmu_dmirror_device_destroy(d), 0);
}

static struct hmmu_dmirror *mirror_new(struct hmmu_dmirror_device *d, struct hmmu_mm *mm)
{
	struct hmmu_dmirror *m;

	assert_int_equal(hmmu_dmirror_open(d, mm, &m), 0);
	track((void **)mirrors, m);
	return m;
}

static void mirror_close(struct hmmu_dmirror *m)
{
	untrack((void **)mirrors, m);
	assert_int_equal(hmmu_dmirror_close(m), 0);
}

static int dm_setup(void **state)
{
	return hmmu_test_setup(state);
}

static int dm_teardown(void **state)
{
	for (int i = 0; i < MAX_OBJS; i++)
		if (mirrors[i])
			hmmu_dmirror_close(mirrors[i]);
	for (int i = 0; i < MAX_OBJS; i++)
		if (devs[i])
			hmmu_dmirror_device_destroy(devs[i]);
	memset(mirrors, 0, sizeof(mirrors));
	memset(devs, 0, sizeof(devs));
	return hmmu_test_teardown(state);
}

#define DM_TEST(fn) cmocka_unit_test_setup_teardown(fn, dm_setup, dm_teardown)

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static struct hmmu_dmirror_device_stats dstats(struct hmmu_dmirror_device *d)
{
	struct hmmu_dmirror_device_stats st;

	assert_int_equal(hmmu_dmirror_device_get_stats(d, &st), 0);
	return st;
}

/* Run command @nr over @npages at @addr with buffer @buf; cpages/faults in *@out. */
static int cmd(struct hmmu_dmirror *m, unsigned int nr, unsigned long addr, void *buf, unsigned long npages,
	       struct hmmu_dmirror_cmd *out)
{
	struct hmmu_dmirror_cmd c = { .addr = addr, .ptr = (uintptr_t)buf, .npages = npages };
	int ret = hmmu_dmirror_cmd(m, nr, &c);

	if (out)
		*out = c;
	return ret;
}

/* Run @nr and check it succeeds with @cpages (and @faults unless -1). */
static void cmd_ok(struct hmmu_dmirror *m, unsigned int nr, unsigned long addr, void *buf, unsigned long npages,
		   unsigned long cpages, long faults)
{
	struct hmmu_dmirror_cmd c;

	assert_int_equal(cmd(m, nr, addr, buf, npages, &c), 0);
	assert_int_equal(c.cpages, cpages);
	if (faults >= 0)
		assert_int_equal(c.faults, faults);
}

/* The word pattern of a buffer: word i of @npages pages is seed + i. */
static unsigned int *pattern(unsigned long npages, unsigned int seed)
{
	unsigned int *p = malloc(npages * PAGE);

	assert_non_null(p);
	for (unsigned long i = 0; i < npages * PAGE / sizeof(*p); i++)
		p[i] = seed + (unsigned int)i;
	return p;
}

static void fill(struct hmmu_mm *mm, unsigned long addr, unsigned long npages, unsigned int seed)
{
	unsigned int *p = pattern(npages, seed);

	put_bytes(mm, addr, p, npages * PAGE);
	free(p);
}

/* The CPU sees the pattern @seed at [addr, addr + npages pages). */
static void check_cpu(struct hmmu_mm *mm, unsigned long addr, unsigned long npages, unsigned int seed)
{
	unsigned int *want = pattern(npages, seed), *got = malloc(npages * PAGE);

	assert_non_null(got);
	get_bytes(mm, addr, got, npages * PAGE);
	assert_memory_equal(got, want, npages * PAGE);
	free(want);
	free(got);
}

static void check_buf(const void *buf, unsigned long npages, unsigned int seed)
{
	unsigned int *want = pattern(npages, seed);

	assert_memory_equal(buf, want, npages * PAGE);
	free(want);
}

/* SNAPSHOT byte of one page. */
static unsigned char snap1(struct hmmu_dmirror *m, unsigned long addr)
{
	unsigned char b = 0xAA;

	cmd_ok(m, HMMU_DMIRROR_SNAPSHOT, addr, &b, 1, 1, 0);
	return b;
}

/* The mirror's table entry for @addr. */
static dmirror_entry_t pt_at(struct hmmu_dmirror *m, unsigned long addr)
{
	dmirror_entry_t e;

	pthread_mutex_lock(&m->mutex);
	e = hmmu_dmirror_pt_lookup(&m->pt, addr >> HMMU_PAGE_SHIFT);
	pthread_mutex_unlock(&m->mutex);
	return e;
}

static long migrate_dev(struct hmmu_dmirror *m, unsigned long addr, unsigned long npages)
{
	return hmmu_dmirror_migrate_to_device(m, addr, npages, 0);
}

enum {
	LOCAL_W = HMMU_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMMU_DMIRROR_PROT_WRITE,
	SYS_W = HMMU_DMIRROR_PROT_WRITE,
};

/* ------------------------------------------------------------------ */
/* Device page table                                                   */
/* ------------------------------------------------------------------ */

static dmirror_entry_t fake_entry(unsigned long vpn, unsigned long tag)
{
	return (uintptr_t)((vpn + 1) << 3) | tag;
}

/* Boundaries of every level: insert, look up, erase one range at a time. */
static void test_pt_boundaries(void **state)
{
	const unsigned long vpns[] = {
		0, 1, 511, 512, 513, (1UL << 18) - 1, 1UL << 18, (1UL << 27) - 1, 1UL << 27,
		DMIRROR_PT_MAX_VPN - 1, DMIRROR_PT_MAX_VPN,
	};
	const size_t n = sizeof(vpns) / sizeof(vpns[0]);
	struct hmmu_dmirror_pt pt;

	hmmu_dmirror_pt_init(&pt);
	assert_int_equal(hmmu_dmirror_pt_store(&pt, DMIRROR_PT_MAX_VPN + 1, fake_entry(0, 0)), -EINVAL);
	assert_int_equal(hmmu_dmirror_pt_store(&pt, 5, 0), -EINVAL);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(hmmu_dmirror_pt_store(&pt, vpns[i], fake_entry(vpns[i], i % 2 ? 3 : 1)), 0);
	assert_int_equal(pt.nr_entries, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(hmmu_dmirror_pt_lookup(&pt, vpns[i]), fake_entry(vpns[i], i % 2 ? 3 : 1));
		assert_int_equal(dmirror_entry_tag(hmmu_dmirror_pt_lookup(&pt, vpns[i])), i % 2 ? 3 : 1);
	}
	assert_int_equal(hmmu_dmirror_pt_lookup(&pt, 2), 0);
	assert_int_equal(hmmu_dmirror_pt_lookup(&pt, 514), 0);
	assert_int_equal(hmmu_dmirror_pt_lookup(&pt, DMIRROR_PT_MAX_VPN + 1), 0);
	/* Replacing keeps the count. */
	assert_int_equal(hmmu_dmirror_pt_store(&pt, 512, fake_entry(7, 0)), 0);
	assert_int_equal(pt.nr_entries, n);
	/* [511, 512] spans two leaves; 510 and 513 stay. */
	hmmu_dmirror_pt_erase(&pt, 510, 512);
	assert_int_equal(hmmu_dmirror_pt_lookup(&pt, 511), 0);
	assert_int_equal(hmmu_dmirror_pt_lookup(&pt, 512), 0);
	assert_int_not_equal(hmmu_dmirror_pt_lookup(&pt, 1), 0);
	assert_int_not_equal(hmmu_dmirror_pt_lookup(&pt, 513), 0);
	/* Across a level-2 boundary, inclusive at both ends. */
	hmmu_dmirror_pt_erase(&pt, (1UL << 18) - 1, 1UL << 18);
	assert_int_equal(hmmu_dmirror_pt_lookup(&pt, (1UL << 18) - 1), 0);
	assert_int_equal(hmmu_dmirror_pt_lookup(&pt, 1UL << 18), 0);
	assert_int_not_equal(hmmu_dmirror_pt_lookup(&pt, 1UL << 27), 0);
	/* An end beyond the table clamps; everything goes, nodes included. */
	hmmu_dmirror_pt_erase(&pt, 0, ~0UL);
	assert_int_equal(pt.nr_entries, 0);
	assert_int_equal(pt.nr_nodes, 0);
	assert_null(pt.root);
	hmmu_dmirror_pt_destroy(&pt);
}

/* Random stores and range erasures over four leaves, against a shadow array. */
static void test_pt_shadow(void **state)
{
	enum { SPAN = 4 * 512 + 37 };
	static dmirror_entry_t shadow[SPAN];
	const unsigned long base = (1UL << 18) - 1000;	/* straddles a level-2 boundary */
	uint64_t rs = hmmu_test_seed();
	struct hmmu_dmirror_pt pt;
	unsigned long count = 0;

	memset(shadow, 0, sizeof(shadow));
	hmmu_dmirror_pt_init(&pt);
	for (int round = 0; round < 4000; round++) {
		unsigned long a = hmmu_test_rand(&rs) % SPAN, b = a + hmmu_test_rand(&rs) % 300;

		if (hmmu_test_rand(&rs) % 3) {
			dmirror_entry_t e = fake_entry(a + round, hmmu_test_rand(&rs) % 2 ? 3 : 0);

			assert_int_equal(hmmu_dmirror_pt_store(&pt, base + a, e), 0);
			count += !shadow[a];
			shadow[a] = e;
		} else {
			b = b >= SPAN ? SPAN - 1 : b;
			hmmu_dmirror_pt_erase(&pt, base + a, base + b);
			for (unsigned long i = a; i <= b; i++) {
				count -= !!shadow[i];
				shadow[i] = 0;
			}
		}
		assert_int_equal(pt.nr_entries, count);
	}
	for (unsigned long i = 0; i < SPAN; i++) {
		const uintptr_t *leaf = hmmu_dmirror_pt_leaf(&pt, base + i);

		assert_int_equal(hmmu_dmirror_pt_lookup(&pt, base + i), shadow[i]);
		assert_int_equal(leaf ? leaf[(base + i) % 512] : 0, shadow[i]);
	}
	assert_int_equal(hmmu_dmirror_pt_lookup(&pt, base - 1), 0);
	assert_int_equal(hmmu_dmirror_pt_lookup(&pt, base + SPAN), 0);
	hmmu_dmirror_pt_erase(&pt, base, base + SPAN);
	assert_int_equal(pt.nr_nodes, 0);
	hmmu_dmirror_pt_destroy(&pt);
}

/* ------------------------------------------------------------------ */
/* Invalidation                                                        */
/* ------------------------------------------------------------------ */

/* Mirror 8 pages with READ; unmapping page 3 erases pages 3 and 4 (end inclusive). */
static void test_invalidate_inclusive_end(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);
	char *buf = malloc(8 * PAGE);

	fill(mm, a, 8, 1);
	cmd_ok(m, HMMU_DMIRROR_READ, a, buf, 8, 8, 1);
	check_buf(buf, 8, 1);
	for (int i = 0; i < 8; i++)
		assert_int_equal(dmirror_entry_tag(pt_at(m, a + i * PAGE)), DMIRROR_TAG_WRITE);
	assert_int_equal(hmmu_munmap(mm, a + 3 * PAGE, PAGE), 0);
	assert_int_not_equal(pt_at(m, a + 2 * PAGE), 0);
	assert_int_equal(pt_at(m, a + 3 * PAGE), 0);
	assert_int_equal(pt_at(m, a + 4 * PAGE), 0);	/* one page more: the kernel's inclusive end */
	assert_int_not_equal(pt_at(m, a + 5 * PAGE), 0);
	/* Reading page 4 again faults it back in (one round); page 3 has no VMA. */
	cmd_ok(m, HMMU_DMIRROR_READ, a + 4 * PAGE, buf, 4, 4, 1);
	assert_int_equal(cmd(m, HMMU_DMIRROR_READ, a + 3 * PAGE, buf, 1, NULL), -EFAULT);
	free(buf);
	mirror_close(m);
	dev_destroy(d);
}

/* Start/end an invalidation of @event over [a, a + len) of @mm with @owner. */
static void invalidate(struct hmmu_mm *mm, enum hmmu_notifier_event event, void *owner, unsigned long a,
		       unsigned long len)
{
	struct hmmu_notifier_range r;

	hmmu_notifier_range_init_owner(&r, event, 0, mm, a, a + len, owner);
	hmmu_notifier_invalidate_range_start(&r);
	hmmu_notifier_invalidate_range_end(&r);
}

/* MIGRATE with the device as owner is skipped; another owner, or another event, erases. */
static void test_invalidate_own_migrate_skipped(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	char buf[4 * PAGE];
	int other;

	fill(mm, a, 4, 2);
	cmd_ok(m, HMMU_DMIRROR_READ, a, buf, 4, 4, 1);
	invalidate(mm, HMMU_NOTIFY_MIGRATE, hmmu_dmirror_device_owner(d), a, PAGE);
	assert_int_not_equal(pt_at(m, a), 0);
	invalidate(mm, HMMU_NOTIFY_MIGRATE, &other, a, PAGE);
	assert_int_equal(pt_at(m, a), 0);
	assert_int_equal(pt_at(m, a + PAGE), 0);	/* inclusive end */
	invalidate(mm, HMMU_NOTIFY_EXCLUSIVE, hmmu_dmirror_device_owner(d), a + 2 * PAGE, PAGE);
	assert_int_equal(pt_at(m, a + 2 * PAGE), 0);
	assert_int_equal(pt_at(m, a + 3 * PAGE), 0);
	mirror_close(m);
	dev_destroy(d);
}

/* A non-blockable invalidation fails (-EAGAIN) while the mirror mutex is held, and changes nothing. */
static void test_invalidate_nonblock_trylock(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_notifier_range r;
	char buf[2 * PAGE];

	fill(mm, a, 2, 3);
	cmd_ok(m, HMMU_DMIRROR_READ, a, buf, 2, 2, 1);
	hmmu_notifier_range_init(&r, HMMU_NOTIFY_UNMAP, 0, mm, a, a + PAGE);
	pthread_mutex_lock(&m->mutex);
	assert_int_equal(hmmu_notifier_invalidate_range_start_nonblock(&r), -EAGAIN);
	pthread_mutex_unlock(&m->mutex);
	assert_int_not_equal(pt_at(m, a), 0);
	assert_int_equal(hmmu_notifier_invalidate_range_start_nonblock(&r), 0);
	hmmu_notifier_invalidate_range_end(&r);
	assert_int_equal(pt_at(m, a), 0);
	mirror_close(m);
	dev_destroy(d);
}

/* ------------------------------------------------------------------ */
/* Chunks, the knob, counters                                          */
/* ------------------------------------------------------------------ */

/* Chunks come on demand up to max_chunks; then device allocation fails. */
static void test_chunk_growth(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_new(HMMU_MEMORY_DEVICE_PRIVATE, 2 * MiB, 2, 1);
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 1100 * PAGE, RW);
	struct hmmu_dmirror_device_stats st = dstats(d);

	assert_int_equal(st.chunks, 1);
	fill(mm, a, 1100, 4);
	assert_int_equal(migrate_dev(m, a, 300), 300);
	assert_int_equal(dstats(d).chunks, 1);
	assert_int_equal(migrate_dev(m, a + 300 * PAGE, 300), 300);
	assert_int_equal(dstats(d).chunks, 2);
	/* 1024 frames in all: 424 more fit, then nothing. */
	assert_int_equal(migrate_dev(m, a + 600 * PAGE, 500), 424);
	st = dstats(d);
	assert_int_equal(st.chunks, 2);
	assert_int_equal(st.calloc, 1024);
	assert_int_equal(st.pages_in_use, 1024);
	assert_int_equal(cmd(m, HMMU_DMIRROR_MIGRATE_TO_DEV, a + 1024 * PAGE, NULL, 1, NULL), -ENOENT);
	assert_int_equal(snap1(m, a + 1023 * PAGE), LOCAL_W);
	assert_int_equal(snap1(m, a + 1024 * PAGE), SYS_W);
	check_cpu(mm, a, 1100, 4);	/* faults every page back */
	st = dstats(d);
	assert_int_equal(st.migrate_to_ram, 1024);
	assert_int_equal(st.cfree, 1024);
	assert_int_equal(st.pages_in_use, 0);
	mirror_close(m);
	dev_destroy(d);
}

/* Device-allocation failures: the pages that fail stay in system memory. */
static void test_knob_device_alloc(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);

	fill(mm, a, 8, 5);
	assert_int_equal(hmmu_dmirror_device_fail_allocs(d, HMMU_DMIRROR_FAIL_DEVICE_ALLOC, 3), 0);
	assert_int_equal(migrate_dev(m, a, 8), 5);
	assert_int_equal(dstats(d).alloc_failures, 3);
	for (int i = 0; i < 8; i++)
		assert_int_equal(snap1(m, a + i * PAGE), i < 3 ? SYS_W : LOCAL_W);
	assert_int_equal(hmmu_dmirror_device_fail_allocs(d, HMMU_DMIRROR_FAIL_DEVICE_ALLOC, -1), 0);
	assert_int_equal(cmd(m, HMMU_DMIRROR_MIGRATE_TO_DEV, a, NULL, 8, NULL), -ENOENT);
	assert_int_equal(dstats(d).alloc_failures, 6);
	assert_int_equal(hmmu_dmirror_device_fail_allocs(d, HMMU_DMIRROR_FAIL_DEVICE_ALLOC, 0), 0);
	assert_int_equal(migrate_dev(m, a, 8), 3);
	check_cpu(mm, a, 8, 5);
	mirror_close(m);
	dev_destroy(d);
}

/* System-allocation failures: migrating back leaves pages on the device, intact; then it works. */
static void test_knob_system_alloc(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);
	struct hmmu_dmirror_cmd c;
	char *buf = malloc(8 * PAGE);

	fill(mm, a, 8, 6);
	assert_int_equal(migrate_dev(m, a, 8), 8);
	assert_int_equal(hmmu_dmirror_device_fail_allocs(d, HMMU_DMIRROR_FAIL_SYSTEM_ALLOC, -1), 0);
	cmd_ok(m, HMMU_DMIRROR_MIGRATE_TO_SYS, a, NULL, 8, 0, 0);
	assert_int_equal(dstats(d).alloc_failures, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(snap1(m, a + i * PAGE), LOCAL_W);
	cmd_ok(m, HMMU_DMIRROR_READ, a, buf, 8, 8, 0);	/* still mapped in the device */
	check_buf(buf, 8, 6);
	/* Two more failures: the first two pages stay, the others move. */
	assert_int_equal(hmmu_dmirror_device_fail_allocs(d, HMMU_DMIRROR_FAIL_SYSTEM_ALLOC, 2), 0);
	assert_int_equal(cmd(m, HMMU_DMIRROR_MIGRATE_TO_SYS, a, NULL, 8, &c), 0);
	assert_int_equal(c.cpages, 6);
	assert_int_equal(snap1(m, a), LOCAL_W);
	assert_int_equal(snap1(m, a + 2 * PAGE), SYS_W);
	assert_int_equal(pt_at(m, a + 2 * PAGE), 0);
	assert_int_not_equal(pt_at(m, a), 0);
	/* migrate_to_ram with the knob: the CPU access retries until a page comes. */
	assert_int_equal(hmmu_dmirror_device_fail_allocs(d, HMMU_DMIRROR_FAIL_SYSTEM_ALLOC, 3), 0);
	check_cpu(mm, a, 8, 6);
	assert_int_equal(dstats(d).migrate_to_ram, 2 + 3);
	assert_int_equal(dstats(d).alloc_failures, 8 + 2 + 3);
	assert_int_equal(dstats(d).pages_in_use, 0);
	free(buf);
	mirror_close(m);
	dev_destroy(d);
}

/* calloc counts allocations, cfree page_free calls; both balance once the pages are home. */
static void test_counters(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 16 * PAGE, RW);
	struct hmmu_dmirror_device_stats st;

	fill(mm, a, 16, 7);
	assert_int_equal(migrate_dev(m, a, 16), 16);
	st = dstats(d);
	assert_int_equal(st.calloc, 16);
	assert_int_equal(st.cfree, 0);
	assert_int_equal(st.pages_in_use, 16);
	assert_int_equal(hmmu_dmirror_migrate_to_system(m, a, 10, 0), 10);
	st = dstats(d);
	assert_int_equal(st.cfree, 10);
	assert_int_equal(st.pages_in_use, 6);
	assert_int_equal(hmmu_munmap(mm, a + 10 * PAGE, 6 * PAGE), 0);	/* frees the rest */
	st = dstats(d);
	assert_int_equal(st.calloc, 16);
	assert_int_equal(st.cfree, 16);
	assert_int_equal(st.pages_in_use, 0);
	assert_int_equal(st.migrate_to_ram, 0);
	check_cpu(mm, a, 10, 7);
	mirror_close(m);
	dev_destroy(d);
}

/* ------------------------------------------------------------------ */
/* migrate_to_ram fault-around                                         */
/* ------------------------------------------------------------------ */

/* The SNAPSHOT byte, seen by @m, of page @p of the window-aligned region at @w. */
static unsigned char snap_p(struct hmmu_dmirror *m, unsigned long w, int p)
{
	return snap1(m, w + (unsigned long)p * PAGE);
}

/*
 * Windows of 8 pages.  Pages are numbered from an 8-page boundary w; the
 * VMA is [3, 24).  Page 9 belongs to another device, page 10 is in system
 * memory, the others are on the device.  A fault at page 3 brings back
 * [3, 8) (clamped at the VMA start); one at 17 brings back [16, 24)
 * (clamped at the end); one at 12 brings back [8, 16) except page 9,
 * another owner's, and page 10, not a device page.
 */
static void test_fault_around(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_new(HMMU_MEMORY_DEVICE_PRIVATE, 2 * MiB, 2, 8);
	struct hmmu_dmirror_device *d2 = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm), *m2 = mirror_new(d2, mm);
	unsigned long base = hmmu_test_map(mm, 64 * PAGE, RW);
	unsigned long w = (base + 8 * PAGE) & ~(8 * PAGE - 1), a = w + 3 * PAGE;
	unsigned int v;

	assert_int_equal(hmmu_munmap(mm, base, 64 * PAGE), 0);
	hmmu_test_map_at(mm, a, 21 * PAGE, RW, MAP_FIXED);
	fill(mm, a, 21, 8);
	assert_int_equal(migrate_dev(m, a, 21), 21);
	assert_int_equal(hmmu_dmirror_migrate_to_system(m, w + 9 * PAGE, 2, 0), 2);
	assert_int_equal(migrate_dev(m2, w + 9 * PAGE, 1), 1);
	get_bytes(mm, w + 3 * PAGE, &v, sizeof(v));
	assert_int_equal(v, 8);
	for (int p = 3; p < 24; p++) {
		if (p == 9)
			assert_int_equal(snap_p(m2, w, p), LOCAL_W);
		else
			assert_int_equal(snap_p(m, w, p), p < 8 || p == 10 ? SYS_W : LOCAL_W);
	}
	assert_int_equal(snap_p(m, w, 9), HMMU_DMIRROR_PROT_NONE);	/* foreign: not reported */
	get_bytes(mm, w + 17 * PAGE, &v, sizeof(v));
	for (int p = 8; p < 24; p++)
		if (p != 9)
			assert_int_equal(snap_p(m, w, p), p >= 16 || p == 10 ? SYS_W : LOCAL_W);
	get_bytes(mm, w + 12 * PAGE, &v, sizeof(v));
	for (int p = 3; p < 24; p++)
		if (p != 9)
			assert_int_equal(snap_p(m, w, p), SYS_W);
	assert_int_equal(snap_p(m2, w, 9), LOCAL_W);
	assert_int_equal(dstats(d).migrate_to_ram, 3);
	assert_int_equal(dstats(d).pages_in_use, 0);
	assert_int_equal(dstats(d2).migrate_to_ram, 0);
	check_cpu(mm, a, 21, 8);
	assert_int_equal(dstats(d2).migrate_to_ram, 1);
	mirror_close(m2);
	mirror_close(m);
	dev_destroy(d2);
	dev_destroy(d);
}

/* ------------------------------------------------------------------ */
/* Eviction, RELEASE, destroy                                          */
/* ------------------------------------------------------------------ */

/* Closing one mirror evicts every page of the device, other mirrors' (other mms') included. */
static void test_close_evicts_all(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *mm2 = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm), *m2 = mirror_new(d, mm2);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW), b = hmmu_test_map(mm2, 8 * PAGE, RW);
	char buf[8 * PAGE];

	fill(mm, a, 8, 9);
	fill(mm2, b, 8, 10);
	assert_int_equal(migrate_dev(m, a, 8), 8);
	cmd_ok(m2, HMMU_DMIRROR_MIGRATE_TO_DEV, b, buf, 8, 8, 0);
	check_buf(buf, 8, 10);
	assert_int_equal(dstats(d).pages_in_use, 16);
	mirror_close(m);
	assert_int_equal(dstats(d).pages_in_use, 0);
	assert_int_equal(dstats(d).evicted, 16);
	assert_int_equal(dstats(d).migrate_to_ram, 0);
	assert_int_equal(dstats(d).chunks, 1);	/* close keeps the chunks */
	for (int i = 0; i < 8; i++) {
		assert_int_equal(snap1(m2, b + i * PAGE), SYS_W);	/* WRITE kept */
		assert_int_equal(pt_at(m2, b + i * PAGE), 0);	/* dropped by the CLEAR invalidation */
	}
	check_cpu(mm, a, 8, 9);
	check_cpu(mm2, b, 8, 10);
	cmd_ok(m2, HMMU_DMIRROR_READ, b, buf, 8, 8, 1);
	check_buf(buf, 8, 10);
	mirror_close(m2);
	dev_destroy(d);
}

/* Eviction keeps a read-only source read-only. */
static void test_evict_keeps_readonly(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm), *m2;
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);

	fill(mm, a, 2, 11);
	assert_int_equal(hmmu_mprotect(mm, a, PAGE, PROT_READ), 0);
	assert_int_equal(migrate_dev(m, a, 2), 2);
	assert_int_equal(snap1(m, a), HMMU_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMMU_DMIRROR_PROT_READ);
	m2 = mirror_new(d, mm);
	mirror_close(m);
	assert_int_equal(snap1(m2, a), HMMU_DMIRROR_PROT_READ);
	assert_int_equal(snap1(m2, a + PAGE), SYS_W);
	check_cpu(mm, a, 2, 11);
	mirror_close(m2);
	dev_destroy(d);
}

/* RELEASE evicts and removes every chunk; the next migration creates one again. */
static void test_release(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_new(HMMU_MEMORY_DEVICE_PRIVATE, 2 * MiB, 3, 1);
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 700 * PAGE, RW);
	struct hmmu_dmirror_device_stats st;

	fill(mm, a, 700, 12);
	assert_int_equal(migrate_dev(m, a, 700), 700);
	assert_int_equal(dstats(d).chunks, 2);
	cmd_ok(m, HMMU_DMIRROR_RELEASE, a, NULL, 1, 0, 0);
	st = dstats(d);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.pages_in_use, 0);
	assert_int_equal(st.evicted, 700);
	assert_int_equal(st.cfree, 0);	/* pages of a removed chunk are not counted back */
	assert_int_equal(snap1(m, a + 699 * PAGE), SYS_W);
	check_cpu(mm, a, 700, 12);
	assert_int_equal(migrate_dev(m, a, 10), 10);
	assert_int_equal(dstats(d).chunks, 1);
	assert_int_equal(dstats(d).calloc, 710);
	mirror_close(m);
	assert_int_equal(dstats(d).pages_in_use, 0);
	dev_destroy(d);
	check_cpu(mm, a, 700, 12);
}

struct release_arg {
	struct hmmu_dmirror *m;
	unsigned long a;
	int ret;
};

static void *release_thread(void *arg)
{
	struct release_arg *ra = arg;

	ra->ret = cmd(ra->m, HMMU_DMIRROR_RELEASE, ra->a, NULL, 1, NULL);
	return NULL;
}

/* RELEASE retries a page that is busy (locked) until it can be evicted, then removes the chunk. */
static void test_release_retries_busy(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW), a2 = hmmu_test_map(mm, PAGE, RW);
	struct release_arg ra = { .m = m, .a = a, .ret = 1 };
	struct hmmu_page *busy;
	pthread_t t;

	fill(mm, a, 8, 24);
	assert_int_equal(migrate_dev(m, a, 8), 8);
	busy = hmmu_pfn_to_page(hmmu_pte_to_swp_entry(hmmu_test_leaf(mm, a + 5 * PAGE, NULL)).pfn);
	assert_true(hmmu_is_device_private_page(busy));
	hmmu_lock_page(busy);
	assert_int_equal(pthread_create(&t, NULL, release_thread, &ra), 0);
	for (long waited = 0; dstats(d).evicted < 7 && waited < WAIT_LIMIT_MS; waited++)
		sleep_ms(1);
	assert_int_equal(dstats(d).evicted, 7);
	assert_int_equal(dstats(d).pages_in_use, 1);
	assert_int_equal(pthread_tryjoin_np(t, NULL), EBUSY);	/* cannot finish: the page is busy */
	/* Meanwhile the device hands out no page: nothing would ever free it. */
	assert_int_equal(hmmu_dmirror_migrate_to_device(m, a2, 1, 0), 0);
	hmmu_unlock_page(busy);
	assert_true(join_within(t, WAIT_LIMIT_MS));
	assert_int_equal(ra.ret, 0);
	assert_int_equal(dstats(d).evicted, 8);
	assert_int_equal(dstats(d).chunks, 0);
	check_cpu(mm, a, 8, 24);
	assert_int_equal(hmmu_dmirror_migrate_to_device(m, a2, 1, 0), 1);
	mirror_close(m);
	dev_destroy(d);
}

/* destroy refuses while a mirror is open; afterwards it evicts what is left. */
static void test_destroy_busy(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);

	assert_int_equal(hmmu_dmirror_device_destroy(d), -EBUSY);
	assert_int_equal(hmmu_dmirror_device_destroy(NULL), -EINVAL);
	mirror_close(m);
	dev_destroy(d);
}

/* ------------------------------------------------------------------ */
/* Arguments                                                           */
/* ------------------------------------------------------------------ */

static void test_config_einval(void **state)
{
	struct hmmu_dmirror_device_config bad[] = {
		{ .type = 3 },
		{ .chunk_size = MiB },
		{ .chunk_size = 2 * MiB + PAGE },
		{ .fault_around_pages = 3 },
		{ .fault_around_pages = 1024 },
	};
	struct hmmu_dmirror_device *d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hmmu_dmirror_device_create(&bad[i], &d), -EINVAL);
	assert_int_equal(hmmu_dmirror_device_create(NULL, NULL), -EINVAL);
	d = dev_small();
	assert_int_equal(hmmu_dmirror_device_fail_allocs(NULL, HMMU_DMIRROR_FAIL_DEVICE_ALLOC, 1), -EINVAL);
	assert_int_equal(hmmu_dmirror_device_fail_allocs(d, 7, 1), -EINVAL);
	assert_int_equal(hmmu_dmirror_device_fail_allocs(d, HMMU_DMIRROR_FAIL_SYSTEM_ALLOC, -2), -EINVAL);
	assert_int_equal(hmmu_dmirror_device_get_stats(d, NULL), -EINVAL);
	assert_int_equal(hmmu_dmirror_open(d, NULL, NULL), -EINVAL);
	assert_int_equal(hmmu_dmirror_close(NULL), 0 - EINVAL);
	assert_ptr_equal(hmmu_dmirror_device_owner(d), d);
	dev_destroy(d);
}

/* The checks of spec 5.6: -EINVAL, and nothing copied back on error. */
static void test_cmd_einval(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	struct hmmu_dmirror_cmd c = { .addr = a, .npages = 1, .cpages = 77, .faults = 88 };
	char buf[4 * PAGE];

	assert_int_equal(hmmu_dmirror_cmd(NULL, HMMU_DMIRROR_READ, &c), -EINVAL);
	assert_int_equal(hmmu_dmirror_cmd(m, HMMU_DMIRROR_READ, NULL), -EINVAL);
	assert_int_equal(hmmu_dmirror_cmd(m, 8, &c), -EINVAL);
	c.addr = a + 1;
	assert_int_equal(hmmu_dmirror_cmd(m, HMMU_DMIRROR_READ, &c), -EINVAL);
	c.addr = a;
	c.npages = 0;
	assert_int_equal(hmmu_dmirror_cmd(m, HMMU_DMIRROR_READ, &c), -EINVAL);
	c.npages = (UINT64_MAX - a) / PAGE + 1;	/* wraps */
	assert_int_equal(hmmu_dmirror_cmd(m, HMMU_DMIRROR_SNAPSHOT, &c), -EINVAL);
	c.npages = 1;
	c.ptr = 0;	/* a failed copy to the caller */
	assert_int_equal(hmmu_dmirror_cmd(m, HMMU_DMIRROR_READ, &c), -EFAULT);
	assert_int_equal(hmmu_dmirror_cmd(m, HMMU_DMIRROR_WRITE, &c), -EFAULT);
	assert_int_equal(c.cpages, 77);
	assert_int_equal(c.faults, 88);
	/* Migration needs a readable VMA for every page. */
	assert_int_equal(cmd(m, HMMU_DMIRROR_MIGRATE_TO_DEV, a, buf, 5, NULL), -EINVAL);
	assert_int_equal(hmmu_mprotect(mm, a + 2 * PAGE, PAGE, PROT_NONE), 0);
	assert_int_equal(cmd(m, HMMU_DMIRROR_MIGRATE_TO_DEV, a, buf, 4, NULL), -EINVAL);
	assert_int_equal(cmd(m, HMMU_DMIRROR_MIGRATE_TO_SYS, a, buf, 4, NULL), -EINVAL);
	assert_int_equal(cmd(m, HMMU_DMIRROR_READ, a, buf, 4, NULL), -EFAULT);
	assert_int_equal(hmmu_mprotect(mm, a, 4 * PAGE, PROT_READ), 0);
	assert_int_equal(cmd(m, HMMU_DMIRROR_WRITE, a, buf, 4, NULL), -EPERM);
	/* Direct calls. */
	assert_int_equal(hmmu_dmirror_read(m, a + 1, buf, 1, NULL), -EINVAL);
	assert_int_equal(hmmu_dmirror_read(m, a, NULL, 1, NULL), -EINVAL);
	assert_int_equal(hmmu_dmirror_read(m, a, buf, 0, NULL), -EINVAL);
	assert_int_equal(hmmu_dmirror_migrate_to_device(NULL, a, 1, 0), -EINVAL);
	assert_int_equal(hmmu_dmirror_migrate_to_system(m, a, 0, 0), -EINVAL);
	assert_int_equal(hmmu_dmirror_mmap(NULL, 0, PAGE, RW, MAP_PRIVATE), -EINVAL);
	mirror_close(m);
	dev_destroy(d);
}

/* Once the mirrored mm is gone: READ -EFAULT; SNAPSHOT, migrations, EXCLUSIVE -EINVAL. */
static void test_mm_gone(void **state)
{
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m;
	struct hmmu_mm *mm;
	char buf[PAGE];
	long a;

	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm), 0);
	a = hmmu_mmap(mm, 0, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(a > 0);
	m = mirror_new(d, mm);
	hmmu_mmput(mm);	/* the notifier keeps the structure, not the address space */
	assert_int_equal(cmd(m, HMMU_DMIRROR_READ, a, buf, 1, NULL), -EFAULT);
	assert_int_equal(cmd(m, HMMU_DMIRROR_SNAPSHOT, a, buf, 1, NULL), -EINVAL);
	assert_int_equal(cmd(m, HMMU_DMIRROR_MIGRATE_TO_DEV, a, buf, 1, NULL), -EINVAL);
	assert_int_equal(cmd(m, HMMU_DMIRROR_MIGRATE_TO_SYS, a, buf, 1, NULL), -EINVAL);
	assert_int_equal(cmd(m, HMMU_DMIRROR_EXCLUSIVE, a, buf, 1, NULL), -EINVAL);
	assert_int_equal(hmmu_dmirror_mmap(m, 0, PAGE, RW, MAP_PRIVATE), -EINVAL);
	cmd_ok(m, HMMU_DMIRROR_CHECK_EXCLUSIVE, a, NULL, 1, 0, 0);
	mirror_close(m);
	dev_destroy(d);
}

/* ------------------------------------------------------------------ */
/* Commands and direct calls with data                                 */
/* ------------------------------------------------------------------ */

/* READ/WRITE across table leaves, one fault round for an unmapped range. */
static void test_read_write(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 1200 * PAGE, RW) + 100 * PAGE;	/* spans 3 leaves */
	unsigned int *in = pattern(1000, 13);
	char *out = malloc(1000 * PAGE);

	cmd_ok(m, HMMU_DMIRROR_WRITE, a, in, 1000, 1000, 1);
	check_cpu(mm, a, 1000, 13);
	cmd_ok(m, HMMU_DMIRROR_READ, a, out, 1000, 1000, 0);
	check_buf(out, 1000, 13);
	/* Device writes land in the CPU's pages directly. */
	fill(mm, a, 1000, 14);
	cmd_ok(m, HMMU_DMIRROR_READ, a, out, 1000, 1000, 0);
	check_buf(out, 1000, 14);
	free(in);
	free(out);
	mirror_close(m);
	dev_destroy(d);
}

/* READ after an invalidation of migrated pages stores their backing pages: data intact. */
static void test_read_own_device_pages(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);
	char *out = malloc(8 * PAGE);

	fill(mm, a, 8, 15);
	cmd_ok(m, HMMU_DMIRROR_MIGRATE_TO_DEV, a, out, 8, 8, 0);
	check_buf(out, 8, 15);
	assert_int_equal(hmmu_mprotect(mm, a, 8 * PAGE, PROT_READ), 0);	/* invalidates, downgrades */
	assert_int_equal(pt_at(m, a), 0);
	cmd_ok(m, HMMU_DMIRROR_READ, a, out, 8, 8, 1);
	check_buf(out, 8, 15);
	assert_int_equal(dstats(d).migrate_to_ram, 0);	/* reported, not faulted back */
	assert_int_equal(snap1(m, a), HMMU_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMMU_DMIRROR_PROT_READ);
	/*
	 * A device write to an own read-only page: hmm_range_fault reports it
	 * as it is, without WRITE (quirk Q1), and the driver refuses it, even
	 * once the VMA is writable again (mprotect left the read variant).
	 */
	assert_int_equal(cmd(m, HMMU_DMIRROR_WRITE, a, out, 1, NULL), -EFAULT);
	assert_int_equal(hmmu_mprotect(mm, a, 8 * PAGE, RW), 0);
	assert_int_equal(cmd(m, HMMU_DMIRROR_WRITE, a, out, 1, NULL), -EFAULT);
	assert_int_equal(dmirror_entry_tag(pt_at(m, a)), DMIRROR_TAG_READ);
	check_cpu(mm, a, 8, 15);
	mirror_close(m);
	dev_destroy(d);
	free(out);
}

/* hmmu_dmirror_read: one copy per page, faults counted, data checked. */
static void test_direct_read(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 1100 * PAGE, RW) + 37 * PAGE;
	char *out = malloc(1024 * PAGE);
	unsigned long faults = 99;

	fill(mm, a, 1024, 16);
	assert_int_equal(hmmu_dmirror_read(m, a, out, 1024, &faults), 0);
	assert_int_equal(faults, 1);
	check_buf(out, 1024, 16);
	memset(out, 0, 1024 * PAGE);
	assert_int_equal(hmmu_dmirror_read(m, a, out, 1024, &faults), 0);
	assert_int_equal(faults, 0);
	check_buf(out, 1024, 16);
	/* A hole in the middle: one more round for the rest of the range. */
	assert_int_equal(hmmu_madvise(mm, a + 600 * PAGE, PAGE, MADV_DONTNEED), 0);
	assert_int_equal(hmmu_dmirror_read(m, a, out, 1024, &faults), 0);
	assert_int_equal(faults, 1);
	assert_int_equal(((unsigned int *)(out + 600 * PAGE))[5], 0);
	assert_int_equal(hmmu_dmirror_read(m, a, out, 1024, NULL), 0);
	mirror_close(m);
	dev_destroy(d);
	free(out);
}

/* Direct migrations with odd batch sizes, and back. */
static void test_direct_migrate(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 300 * PAGE, RW);
	char *out = malloc(300 * PAGE);
	unsigned long faults;

	fill(mm, a, 300, 17);
	assert_int_equal(hmmu_dmirror_migrate_to_device(m, a, 300, 100), 300);
	assert_int_equal(hmmu_dmirror_migrate_to_device(m, a, 300, 1000), 0);	/* already there */
	assert_int_equal(hmmu_dmirror_read(m, a, out, 300, &faults), 0);
	assert_int_equal(faults, 0);
	check_buf(out, 300, 17);
	assert_int_equal(hmmu_dmirror_migrate_to_system(m, a, 300, 7), 300);
	assert_int_equal(dstats(d).pages_in_use, 0);
	assert_int_equal(snap1(m, a + 299 * PAGE), SYS_W);
	check_cpu(mm, a, 300, 17);
	/* Empty slots go to the device zeroed, writable in a writable VMA. */
	a = hmmu_test_map(mm, 4 * PAGE, RW);
	assert_int_equal(hmmu_dmirror_migrate_to_device(m, a, 4, 0), 4);
	assert_int_equal(snap1(m, a), LOCAL_W);
	assert_int_equal(dmirror_entry_tag(pt_at(m, a)), DMIRROR_TAG_WRITE);
	assert_int_equal(get_byte(mm, a + 5), 0);
	mirror_close(m);
	dev_destroy(d);
	free(out);
}

/*
 * Pages of a shared file mapping are collected but cannot move to device
 * memory (pages refuses them): the device pages allocated for them are
 * freed by finalize and never mapped in the device, so the read-back fails.
 */
static void test_uncommitted_not_mapped(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	char path[] = "/tmp/hmmu-dmirror-XXXXXX";
	unsigned int *data = pattern(4, 25);
	int fd = mkstemp(path);
	long a;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(pwrite(fd, data, 4 * PAGE, 0), 4 * PAGE);
	a = hmmu_mmap(mm, 0, 4 * PAGE, RW, MAP_SHARED, fd, 0);
	assert_true(a > 0);
	check_cpu(mm, a, 4, 25);
	assert_int_equal(cmd(m, HMMU_DMIRROR_MIGRATE_TO_DEV, a, NULL, 4, NULL), -ENOENT);
	assert_int_equal(pt_at(m, a), 0);
	assert_int_equal(dstats(d).calloc, 4);
	assert_int_equal(dstats(d).pages_in_use, 0);
	assert_int_equal(snap1(m, a), HMMU_DMIRROR_PROT_READ);	/* the page cache's page, as read */
	check_cpu(mm, a, 4, 25);
	assert_int_equal(hmmu_munmap(mm, a, 4 * PAGE), 0);
	close(fd);
	free(data);
	mirror_close(m);
	dev_destroy(d);
}

/* SNAPSHOT bytes of the plain cases: gap and PROT_NONE, empty, zero page, read-only, writable. */
static void test_snapshot_bytes(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 6 * PAGE, RW);
	unsigned char b[6];
	const unsigned char want[6] = {
		HMMU_DMIRROR_PROT_ERROR, HMMU_DMIRROR_PROT_ERROR, HMMU_DMIRROR_PROT_NONE,
		HMMU_DMIRROR_PROT_ZERO | HMMU_DMIRROR_PROT_READ, HMMU_DMIRROR_PROT_READ, HMMU_DMIRROR_PROT_WRITE,
	};

	assert_int_equal(hmmu_munmap(mm, a, PAGE), 0);
	assert_int_equal(hmmu_mprotect(mm, a + PAGE, PAGE, PROT_NONE), 0);
	assert_int_equal(get_byte(mm, a + 3 * PAGE), 0);
	put_byte(mm, a + 4 * PAGE, 1);
	assert_int_equal(hmmu_mprotect(mm, a + 4 * PAGE, PAGE, PROT_READ), 0);
	put_byte(mm, a + 5 * PAGE, 1);
	cmd_ok(m, HMMU_DMIRROR_SNAPSHOT, a, b, 6, 6, 0);
	assert_memory_equal(b, want, 6);
	/* More than one 64-page step, bytes in order. */
	{
		unsigned long big = hmmu_test_map(mm, 130 * PAGE, RW);
		unsigned char *bb = malloc(130);

		put_byte(mm, big + 129 * PAGE, 1);
		cmd_ok(m, HMMU_DMIRROR_SNAPSHOT, big, bb, 130, 130, 0);
		for (int i = 0; i < 129; i++)
			assert_int_equal(bb[i], HMMU_DMIRROR_PROT_NONE);
		assert_int_equal(bb[129], HMMU_DMIRROR_PROT_WRITE);
		free(bb);
	}
	mirror_close(m);
	dev_destroy(d);
}

/* Two mirrors of one device on one mm: a migration drops the other's entries too. */
static void test_two_mirrors_same_mm(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm), *m2 = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	char out[2 * PAGE];

	fill(mm, a, 2, 18);
	cmd_ok(m2, HMMU_DMIRROR_READ, a, out, 2, 2, 1);
	assert_int_equal(migrate_dev(m, a, 2), 2);
	assert_int_equal(pt_at(m2, a), 0);
	assert_int_equal(pt_at(m2, a + PAGE), 0);
	cmd_ok(m2, HMMU_DMIRROR_READ, a, out, 2, 2, 1);
	check_buf(out, 2, 18);
	assert_int_equal(hmmu_dmirror_migrate_to_system(m2, a, 2, 0), 2);
	assert_int_equal(pt_at(m, a), 0);
	mirror_close(m2);
	mirror_close(m);
	dev_destroy(d);
}

/* The device's mapping: zeroed pages, READ in a private writable mapping, WRITE in a shared one. */
static void test_mmap(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long dirty = hmmu_test_map(mm, 64 * PAGE, RW);
	unsigned char b[2], *ff = malloc(64 * PAGE), *zero = calloc(1, 64 * PAGE);
	long a, s, z;

	/* Freed pages full of 0xff: the device's pages must still come zeroed. */
	memset(ff, 0xff, 64 * PAGE);
	put_bytes(mm, dirty, ff, 64 * PAGE);
	assert_int_equal(hmmu_munmap(mm, dirty, 64 * PAGE), 0);
	z = hmmu_dmirror_mmap(m, 0, 64 * PAGE, RW, MAP_PRIVATE);
	assert_true(z > 0);
	get_bytes(mm, z, ff, 64 * PAGE);
	assert_memory_equal(ff, zero, 64 * PAGE);
	free(ff);
	free(zero);
	a = hmmu_dmirror_mmap(m, 0, 2 * PAGE, RW, MAP_PRIVATE);
	s = hmmu_dmirror_mmap(m, 0, PAGE, RW, MAP_SHARED);
	assert_true(a > 0 && s > 0);
	assert_true(vma_flags(mm, a) & HMMU_VM_MIXEDMAP);
	cmd_ok(m, HMMU_DMIRROR_SNAPSHOT, a, b, 2, 2, 0);
	assert_int_equal(b[0], HMMU_DMIRROR_PROT_READ);
	assert_int_equal(b[1], HMMU_DMIRROR_PROT_READ);
	assert_int_equal(snap1(m, s), HMMU_DMIRROR_PROT_WRITE);
	assert_int_equal(get_byte(mm, a + PAGE + 9), 0);
	put_byte(mm, s, 0x5c);
	assert_int_equal(get_byte(mm, s), 0x5c);
	assert_int_equal(hmmu_dmirror_mmap(m, 0, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS), -EINVAL);
	mirror_close(m);
	dev_destroy(d);
}

/* Coherent memory: pages are their own storage; the CPU reads them in place. */
static void test_coherent(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_new(HMMU_MEMORY_DEVICE_COHERENT, 2 * MiB, 2, 1);
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);
	char out[8 * PAGE];

	fill(mm, a, 8, 19);
	cmd_ok(m, HMMU_DMIRROR_MIGRATE_TO_DEV, a, out, 8, 8, 0);
	check_buf(out, 8, 19);
	assert_int_equal(snap1(m, a), HMMU_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMMU_DMIRROR_PROT_WRITE);
	check_cpu(mm, a, 8, 19);
	assert_int_equal(dstats(d).migrate_to_ram, 0);
	assert_int_equal(dstats(d).pages_in_use, 8);
	cmd_ok(m, HMMU_DMIRROR_MIGRATE_TO_SYS, a, NULL, 4, 4, 0);
	assert_int_equal(snap1(m, a), SYS_W);
	assert_int_equal(dstats(d).pages_in_use, 4);
	mirror_close(m);
	assert_int_equal(dstats(d).pages_in_use, 0);
	check_cpu(mm, a, 8, 19);
	dev_destroy(d);
}

/* EXCLUSIVE maps ATOMIC entries; a CPU access revokes only its own page's. */
static void test_exclusive(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct hmmu_dmirror *m = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	char out[4 * PAGE];
	long s;

	fill(mm, a, 4, 20);
	cmd_ok(m, HMMU_DMIRROR_EXCLUSIVE, a, out, 4, 4, 0);
	check_buf(out, 4, 20);
	assert_int_equal(dmirror_entry_tag(pt_at(m, a)), DMIRROR_TAG_ATOMIC);
	assert_int_equal(cmd(m, HMMU_DMIRROR_CHECK_EXCLUSIVE, a, NULL, 4, NULL), -EPERM);
	put_byte(mm, a, 1);
	cmd_ok(m, HMMU_DMIRROR_CHECK_EXCLUSIVE, a, NULL, 1, 0, 0);
	cmd_ok(m, HMMU_DMIRROR_CHECK_EXCLUSIVE, a + PAGE * 4, NULL, 100000, 0, 0);
	assert_int_equal(cmd(m, HMMU_DMIRROR_CHECK_EXCLUSIVE, a, NULL, 4, NULL), -EPERM);
	/* An ATOMIC entry is readable by the device but not writable. */
	cmd_ok(m, HMMU_DMIRROR_WRITE, a + PAGE, out, 1, 1, 1);
	assert_int_equal(dmirror_entry_tag(pt_at(m, a + PAGE)), DMIRROR_TAG_WRITE);
	check_cpu(mm, a + 2 * PAGE, 2, 20 + 2 * PAGE / 4);
	cmd_ok(m, HMMU_DMIRROR_CHECK_EXCLUSIVE, a, NULL, 4, 0, 0);
	/* Shared memory cannot be made exclusive: -EBUSY, nothing mapped. */
	s = hmmu_mmap(mm, 0, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(s > 0);
	assert_int_equal(cmd(m, HMMU_DMIRROR_EXCLUSIVE, s, out, 2, NULL), -EBUSY);
	assert_int_equal(pt_at(m, s), 0);
	mirror_close(m);
	dev_destroy(d);
}

/* ------------------------------------------------------------------ */
/* Concurrency (seeded; run under TSan too)                            */
/* ------------------------------------------------------------------ */

#define RACE_PAGES 96
#define RACE_ROUNDS 150

struct race {
	struct hmmu_mm *mm;
	struct hmmu_dmirror *m;
	unsigned long a;
	const unsigned int *data;	/* what every page must hold: pattern(RACE_PAGES, 21) */
	uint64_t seed;			/* this thread's */
	atomic_int *errors;
};

/* A random subrange [*first, *first + *n) of the region. */
static void race_range(uint64_t *rs, unsigned long *first, unsigned long *n)
{
	*first = hmmu_test_rand(rs) % RACE_PAGES;
	*n = 1 + hmmu_test_rand(rs) % (RACE_PAGES - *first);
}

/* Migrations both ways, CPU and device reads checked. */
static void *race_worker(void *arg)
{
	struct race *r = arg;
	uint64_t rs = r->seed;
	char *buf = malloc(RACE_PAGES * PAGE);

	for (int i = 0; i < RACE_ROUNDS; i++) {
		unsigned long f, n, faults;
		long ret;

		race_range(&rs, &f, &n);
		switch (hmmu_test_rand(&rs) % 4) {
		case 0:
			ret = hmmu_dmirror_migrate_to_device(r->m, r->a + f * PAGE, n, 1 + hmmu_test_rand(&rs) % 70);
			break;
		case 1:
			ret = hmmu_dmirror_migrate_to_system(r->m, r->a + f * PAGE, n, 0);
			break;
		case 2:
			/* CPU loads (stores would race with the device's reads, as DMA does). */
			ret = hmmu_access(r->mm, r->a + f * PAGE, buf, n * PAGE, HMMU_ACCESS_READ);
			if (!ret && memcmp(buf, (char *)r->data + f * PAGE, n * PAGE)) {
				print_message("CPU read [%lu, +%lu) differs\n", f, n);
				atomic_fetch_add(r->errors, 1);
			}
			break;
		default:
			ret = hmmu_dmirror_read(r->m, r->a + f * PAGE, buf, n, &faults);
			if (!ret && memcmp(buf, (char *)r->data + f * PAGE, n * PAGE)) {
				print_message("read [%lu, +%lu) differs\n", f, n);
				atomic_fetch_add(r->errors, 1);
			}
			break;
		}
		if (ret < 0 && ret != -EBUSY) {
			print_message("op error %ld\n", ret);
			atomic_fetch_add(r->errors, 1);
		}
	}
	free(buf);
	return NULL;
}

/* Four threads on one mirror, one on another mirror of the device: data never changes. */
static void test_race_migrate_access(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_new(HMMU_MEMORY_DEVICE_PRIVATE, 2 * MiB, 4, 4);
	struct hmmu_dmirror *m = mirror_new(d, mm), *m2 = mirror_new(d, mm);
	unsigned long a = hmmu_test_map(mm, RACE_PAGES * PAGE, RW);
	unsigned int *data = pattern(RACE_PAGES, 21);
	atomic_int errors = 0;
	struct race r[5];
	pthread_t t[5];

	put_bytes(mm, a, data, RACE_PAGES * PAGE);
	for (int i = 0; i < 5; i++) {
		r[i] = (struct race){ .mm = mm, .m = i == 4 ? m2 : m, .a = a, .data = data, .errors = &errors,
				      .seed = hmmu_test_seed() * 31 + (uint64_t)i };
		assert_int_equal(pthread_create(&t[i], NULL, race_worker, &r[i]), 0);
	}
	for (int i = 0; i < 5; i++)
		assert_true(join_within(t[i], WAIT_LIMIT_MS));
	assert_int_equal(atomic_load(&errors), 0);
	check_cpu(mm, a, RACE_PAGES, 21);
	mirror_close(m2);
	mirror_close(m);
	assert_int_equal(dstats(d).pages_in_use, 0);
	dev_destroy(d);
	free(data);
}

struct producer {
	struct hmmu_mm *mm;
	struct hmmu_dmirror *m;
	unsigned long a;
	atomic_bool stop;
	atomic_int errors;
};

/* Keep moving a region to the device and back until told to stop. */
static void *producer_thread(void *arg)
{
	struct producer *p = arg;

	while (!atomic_load(&p->stop)) {
		long ret = hmmu_dmirror_migrate_to_device(p->m, p->a, 64, 0);

		if (ret >= 0)
			ret = hmmu_dmirror_migrate_to_system(p->m, p->a, 64, 16);
		if (ret < 0)
			atomic_fetch_add(&p->errors, 1);
	}
	return NULL;
}

/*
 * Closing a mirror and RELEASE while another mirror of the device (on
 * another mm) keeps migrating: both return, data stays intact.
 */
static void test_race_close_release(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *mm2 = hmmu_test_mm();
	struct hmmu_dmirror_device *d = dev_small();
	struct producer p = { .mm = mm2, .m = mirror_new(d, mm2), .a = hmmu_test_map(mm2, 64 * PAGE, RW) };
	struct hmmu_dmirror *m = mirror_new(d, mm), *m3;
	unsigned long a = hmmu_test_map(mm, 32 * PAGE, RW);
	pthread_t t;

	fill(mm, a, 32, 22);
	fill(mm2, p.a, 64, 23);
	assert_int_equal(pthread_create(&t, NULL, producer_thread, &p), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(migrate_dev(m, a, 32), 32);
		m3 = mirror_new(d, mm);
		mirror_close(m);
		m = m3;
		assert_int_equal(snap1(m, a + 31 * PAGE), SYS_W);
		assert_int_equal(migrate_dev(m, a, 32), 32);
		cmd_ok(m, HMMU_DMIRROR_RELEASE, a, NULL, 1, 0, 0);
		assert_int_equal(snap1(m, a), SYS_W);
	}
	atomic_store(&p.stop, true);
	assert_true(join_within(t, WAIT_LIMIT_MS));
	assert_int_equal(atomic_load(&p.errors), 0);
	check_cpu(mm, a, 32, 22);
	check_cpu(mm2, p.a, 64, 23);
	mirror_close(m);
	mirror_close(p.m);
	assert_int_equal(dstats(d).pages_in_use, 0);
	dev_destroy(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		DM_TEST(test_pt_boundaries),
		DM_TEST(test_pt_shadow),
		DM_TEST(test_invalidate_inclusive_end),
		DM_TEST(test_invalidate_own_migrate_skipped),
		DM_TEST(test_invalidate_nonblock_trylock),
		DM_TEST(test_chunk_growth),
		DM_TEST(test_knob_device_alloc),
		DM_TEST(test_knob_system_alloc),
		DM_TEST(test_counters),
		DM_TEST(test_fault_around),
		DM_TEST(test_close_evicts_all),
		DM_TEST(test_evict_keeps_readonly),
		DM_TEST(test_release),
		DM_TEST(test_release_retries_busy),
		DM_TEST(test_destroy_busy),
		DM_TEST(test_config_einval),
		DM_TEST(test_cmd_einval),
		DM_TEST(test_mm_gone),
		DM_TEST(test_read_write),
		DM_TEST(test_read_own_device_pages),
		DM_TEST(test_direct_read),
		DM_TEST(test_direct_migrate),
		DM_TEST(test_uncommitted_not_mapped),
		DM_TEST(test_snapshot_bytes),
		DM_TEST(test_two_mirrors_same_mm),
		DM_TEST(test_mmap),
		DM_TEST(test_coherent),
		DM_TEST(test_exclusive),
		DM_TEST(test_race_migrate_access),
		DM_TEST(test_race_close_release),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
