// SPDX-License-Identifier: MIT
/*
 * Device execution in dmirror (hmmu_dmirror_exec): both policies on
 * private and coherent memory, data intact through many eviction cycles
 * (a data set several times the capacity, several passes and threads, CPU
 * writes between passes, against a shadow), the capacity never exceeded
 * (high-water mark), CPU reads racing with device updates, the LRU
 * keeping a hot set resident, -EFAULT for pages
 * the CPU unmapped (before and during a run), argument checks.
 * Randomised parts print their seed (HMMU_SEED replays).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "drivers/dmirror/dmirror_priv.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define MiB (1UL << 20)
#define WORDS (PAGE / sizeof(uint32_t))

static struct hmmu_dmirror_device *dev;
static struct hmmu_dmirror *mir;

/* A device (2 MiB chunks) of @type with @capacity pages, and a mirror of @mm on it. */
static void open_dev(struct hmmu_mm *mm, enum hmmu_memory_type type, unsigned long capacity)
{
	struct hmmu_dmirror_device_config cfg = {
		.type = type, .chunk_size = 2 * MiB, .max_chunks = 8, .capacity_pages = capacity,
	};

	assert_int_equal(hmmu_dmirror_device_create(&cfg, &dev), 0);
	assert_int_equal(hmmu_dmirror_open(dev, mm, &mir), 0);
}

static void close_dev(void)
{
	assert_int_equal(hmmu_dmirror_close(mir), 0);
	mir = NULL;
	assert_int_equal(hmmu_dmirror_device_destroy(dev), 0);
	dev = NULL;
}

static int ex_teardown(void **state)
{
	if (mir)
		hmmu_dmirror_close(mir);
	if (dev)
		hmmu_dmirror_device_destroy(dev);
	mir = NULL;
	dev = NULL;
	return hmmu_test_teardown(state);
}

#define EX_TEST(fn) cmocka_unit_test_setup_teardown(fn, hmmu_test_setup, ex_teardown)

static struct hmmu_dmirror_device_stats dstats(void)
{
	struct hmmu_dmirror_device_stats st;

	assert_int_equal(hmmu_dmirror_device_get_stats(dev, &st), 0);
	return st;
}

/* Word w of page pg of the initial data. */
static uint32_t word0(unsigned long pg, unsigned long w)
{
	return (uint32_t)(pg * 7919 + w * 31 + 1);
}

/* The CPU writes the initial data over @npages pages at @addr, and into @shadow. */
static void cpu_fill(struct hmmu_mm *mm, unsigned long addr, unsigned long npages, uint32_t *shadow)
{
	for (unsigned long pg = 0; pg < npages; pg++)
		for (unsigned long w = 0; w < WORDS; w++)
			shadow[pg * WORDS + w] = word0(pg, w);
	put_bytes(mm, addr, shadow, npages * PAGE);
}

/* ------------------------------------------------------------------ */
/* Kernels                                                             */
/* ------------------------------------------------------------------ */

/*
 * The "add" kernel: for each page, load it from `in`, check it against
 * the shadow, add `delta` to every word and store it at the same offset
 * of `out`.  Per-page results go to `status`.
 */
struct add_args {
	unsigned long in, out;
	const uint32_t *shadow;		/* expected input, or NULL */
	uint32_t delta;
	int *status;			/* per page of the range, or NULL */
	atomic_long mismatches;
};

static int add_kernel(struct hmmu_dmirror_ctx *ctx, unsigned long addr, unsigned long npages, void *arg)
{
	struct add_args *a = arg;
	uint32_t buf[WORDS];
	int first = 0;

	for (unsigned long i = 0; i < npages; i++) {
		unsigned long off = addr - a->in + i * PAGE, pg = off / PAGE;
		int ret = hmmu_dmirror_dev_load(ctx, a->in + off, buf, PAGE);

		if (!ret && a->shadow && memcmp(buf, a->shadow + pg * WORDS, PAGE))
			atomic_fetch_add(&a->mismatches, 1);
		for (unsigned long w = 0; w < WORDS; w++)
			buf[w] += a->delta;
		if (!ret)
			ret = hmmu_dmirror_dev_store(ctx, a->out + off, buf, PAGE);
		if (a->status)
			a->status[pg] = ret;
		first = first ? first : ret;
	}
	return first;
}

static int run_add(const struct hmmu_dmirror_exec_config *cfg, struct add_args *a, unsigned long npages)
{
	return hmmu_dmirror_exec(mir, cfg, add_kernel, a, a->in, npages);
}

/* ------------------------------------------------------------------ */
/* Policies                                                            */
/* ------------------------------------------------------------------ */

/* out = in + 3 computed on the device; in intact; counters per policy. */
static void policy_case(enum hmmu_memory_type type, enum hmmu_dmirror_policy policy)
{
	const unsigned long n = 200;
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long in = hmmu_test_map(mm, n * PAGE, RW), out = hmmu_test_map(mm, n * PAGE, RW);
	uint32_t *shadow = malloc(n * PAGE), *got = malloc(n * PAGE);
	struct hmmu_dmirror_exec_config cfg = { .policy = policy, .nthreads = 2, .batch = 16, .unit = 8 };
	struct add_args a = { .in = in, .out = out, .delta = 3 };
	struct hmmu_dmirror_device_stats st;

	open_dev(mm, type, 0);
	cpu_fill(mm, in, n, shadow);
	a.shadow = shadow;
	assert_int_equal(run_add(&cfg, &a, n), 0);
	assert_int_equal(atomic_load(&a.mismatches), 0);
	st = dstats();
	assert_true(st.exec_faults > 0);
	if (policy == HMMU_DMIRROR_POLICY_MIGRATE) {
		assert_int_equal(st.exec_migrated, 2 * n);	/* in and out, all of them */
		assert_int_equal(st.pages_in_use, 2 * n);
	} else {
		assert_int_equal(st.exec_migrated, 0);
		assert_int_equal(st.pages_in_use, 0);
		assert_int_equal(st.exec_remote, st.exec_faults);
	}
	get_bytes(mm, in, got, n * PAGE);
	assert_memory_equal(got, shadow, n * PAGE);
	for (unsigned long i = 0; i < n * WORDS; i++)
		shadow[i] += 3;
	get_bytes(mm, out, got, n * PAGE);
	assert_memory_equal(got, shadow, n * PAGE);
	close_dev();
	free(shadow);
	free(got);
}

static void test_migrate_private(void **state)
{
	policy_case(HMMU_MEMORY_DEVICE_PRIVATE, HMMU_DMIRROR_POLICY_MIGRATE);
}

static void test_migrate_coherent(void **state)
{
	policy_case(HMMU_MEMORY_DEVICE_COHERENT, HMMU_DMIRROR_POLICY_MIGRATE);
}

static void test_remote_private(void **state)
{
	policy_case(HMMU_MEMORY_DEVICE_PRIVATE, HMMU_DMIRROR_POLICY_REMOTE);
}

static void test_remote_coherent(void **state)
{
	policy_case(HMMU_MEMORY_DEVICE_COHERENT, HMMU_DMIRROR_POLICY_REMOTE);
}

/* ------------------------------------------------------------------ */
/* Eviction                                                            */
/* ------------------------------------------------------------------ */

/*
 * A data set of @n pages, 8 or more times the @capacity, in place (in ==
 * out), 4 passes on @threads workers faulting windows of 16 pages; between
 * passes the CPU rewrites random pages.  The kernel checks each page
 * against the shadow when it loads it; the CPU checks everything at the
 * end.  The high-water mark stays within the capacity.
 */
static void eviction_case(enum hmmu_memory_type type, unsigned long n, unsigned long capacity, unsigned int threads)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long base = hmmu_test_map(mm, n * PAGE, RW);
	uint32_t *shadow = malloc(n * PAGE), *got = malloc(n * PAGE), buf[WORDS];
	struct hmmu_dmirror_exec_config cfg = { .nthreads = threads, .batch = 16, .unit = 4 };
	struct add_args a = { .in = base, .out = base };
	uint64_t rng = hmmu_test_seed();
	struct hmmu_dmirror_device_stats st;

	open_dev(mm, type, capacity);
	cpu_fill(mm, base, n, shadow);
	a.shadow = shadow;
	for (uint32_t pass = 1; pass <= 4; pass++) {
		a.delta = pass;
		assert_int_equal(run_add(&cfg, &a, n), 0);
		assert_int_equal(atomic_load(&a.mismatches), 0);
		for (unsigned long i = 0; i < n * WORDS; i++)
			shadow[i] += pass;
		for (int k = 0; k < 32; k++) {
			unsigned long pg = hmmu_test_rand(&rng) % n;

			for (unsigned long w = 0; w < WORDS; w++)
				buf[w] = shadow[pg * WORDS + w] = (uint32_t)hmmu_test_rand(&rng);
			put_bytes(mm, base + pg * PAGE, buf, PAGE);
		}
	}
	st = dstats();
	assert_true(st.pages_high_water <= capacity);
	assert_true(st.pages_high_water > 0);
	assert_true(st.lru_evicted >= n - capacity);
	get_bytes(mm, base, got, n * PAGE);
	assert_memory_equal(got, shadow, n * PAGE);
	close_dev();
	free(shadow);
	free(got);
}

static void test_eviction_private(void **state)
{
	eviction_case(HMMU_MEMORY_DEVICE_PRIVATE, 768, 96, 3);
}

static void test_eviction_coherent(void **state)
{
	eviction_case(HMMU_MEMORY_DEVICE_COHERENT, 768, 96, 3);
}

/* Four workers whose windows need three times the capacity: reservations may fall short (then faults map remotely). */
static void test_eviction_tight(void **state)
{
	eviction_case(HMMU_MEMORY_DEVICE_PRIVATE, 256, 20, 4);
}

/* The CPU side of the race test: read random pages while the device works. */
struct cpu_reader {
	struct hmmu_mm *mm;
	unsigned long base, n;
	const uint32_t *shadow;
	uint32_t delta;
	uint64_t rng;
	atomic_bool stop;
	atomic_long reads, torn;
};

/* Each page read is the shadow plus 0 or plus delta, the same for every word: never half old, half new. */
static void *cpu_reader_run(void *arg)
{
	struct cpu_reader *r = arg;
	uint32_t buf[WORDS];

	while (!atomic_load(&r->stop)) {
		unsigned long pg = hmmu_test_rand(&r->rng) % r->n;
		uint32_t diff;

		if (hmmu_access(r->mm, r->base + pg * PAGE, buf, PAGE, HMMU_ACCESS_READ)) {
			atomic_fetch_add(&r->torn, 1);
			continue;
		}
		diff = buf[0] - r->shadow[pg * WORDS];
		for (unsigned long w = 0; w < WORDS; w++)
			if (buf[w] - r->shadow[pg * WORDS + w] != diff || (diff && diff != r->delta)) {
				atomic_fetch_add(&r->torn, 1);
				break;
			}
		atomic_fetch_add(&r->reads, 1);
	}
	return NULL;
}

/*
 * The race kernel: the unit at `mid` waits (bounded) until the reader has
 * read 32 pages since the pass began, so CPU reads and device work
 * overlap whatever the scheduling; the other worker goes on meanwhile.
 */
struct race_args {
	struct add_args add;
	struct cpu_reader *r;
	unsigned long mid;
	long start;			/* the reader's count when the pass began */
};

static int race_kernel(struct hmmu_dmirror_ctx *ctx, unsigned long addr, unsigned long npages, void *arg)
{
	struct race_args *ra = arg;

	for (long waited = 0; addr == ra->mid && atomic_load(&ra->r->reads) < ra->start + 32; waited++) {
		if (waited == WAIT_LIMIT_MS)
			return -ETIMEDOUT;
		sleep_ms(1);
	}
	return add_kernel(ctx, addr, npages, &ra->add);
}

/*
 * The CPU reads pages (taking device pages home) while two workers update
 * them in place under a capacity a quarter of the data: every page the
 * CPU sees is whole, the kernel never loads stale data, and the result is
 * exact.
 */
static void test_cpu_device_race(void **state)
{
	const unsigned long n = 256;
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long base = hmmu_test_map(mm, n * PAGE, RW);
	uint32_t *shadow = malloc(n * PAGE), *got = malloc(n * PAGE);
	struct hmmu_dmirror_exec_config cfg = { .nthreads = 2, .batch = 8, .unit = 2 };
	struct cpu_reader r = { .mm = mm, .base = base, .n = n, .rng = hmmu_test_seed() + 1 };
	struct race_args ra = { .add = { .in = base, .out = base }, .r = &r, .mid = base + n / 2 * PAGE };
	pthread_t t;

	open_dev(mm, HMMU_MEMORY_DEVICE_PRIVATE, n / 4);
	cpu_fill(mm, base, n, shadow);
	ra.add.shadow = r.shadow = shadow;
	for (uint32_t pass = 1; pass <= 4; pass++) {
		ra.add.delta = r.delta = pass;
		ra.start = atomic_load(&r.reads);
		atomic_store(&r.stop, false);
		assert_int_equal(pthread_create(&t, NULL, cpu_reader_run, &r), 0);
		assert_int_equal(hmmu_dmirror_exec(mir, &cfg, race_kernel, &ra, base, n), 0);
		atomic_store(&r.stop, true);
		pthread_join(t, NULL);
		assert_int_equal(atomic_load(&ra.add.mismatches), 0);
		assert_int_equal(atomic_load(&r.torn), 0);
		for (unsigned long i = 0; i < n * WORDS; i++)
			shadow[i] += pass;
	}
	assert_true(dstats().pages_high_water <= n / 4);
	get_bytes(mm, base, got, n * PAGE);
	assert_memory_equal(got, shadow, n * PAGE);
	close_dev();
	free(shadow);
	free(got);
}

/* Migrations outside the engine respect the capacity too: what does not fit stays in system memory. */
static void test_capacity_commands(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 128 * PAGE, RW);
	uint32_t *shadow = malloc(128 * PAGE);

	open_dev(mm, HMMU_MEMORY_DEVICE_PRIVATE, 32);
	cpu_fill(mm, a, 128, shadow);
	assert_int_equal(hmmu_dmirror_migrate_to_device(mir, a, 128, 0), 32);
	assert_int_equal(dstats().pages_in_use, 32);
	assert_int_equal(dstats().pages_high_water, 32);
	check_bytes(mm, a, (unsigned char *)shadow, 128 * PAGE);
	close_dev();
	free(shadow);
}

/*
 * The kernel of the LRU test: load one word of each hot page, then the
 * pages of its unit.
 */
struct hot_args {
	unsigned long hot;
	unsigned long nhot;
};

static int hot_kernel(struct hmmu_dmirror_ctx *ctx, unsigned long addr, unsigned long npages, void *arg)
{
	struct hot_args *h = arg;
	uint32_t v;
	int ret = 0;

	for (unsigned long i = 0; i < h->nhot && !ret; i++)
		ret = hmmu_dmirror_dev_load(ctx, h->hot + i * PAGE, &v, sizeof(v));
	for (unsigned long i = 0; i < npages && !ret; i++)
		ret = hmmu_dmirror_dev_load(ctx, addr + i * PAGE, &v, sizeof(v));
	return ret;
}

/*
 * A hot set of 32 pages used before every chunk of a stream of 1024 pages
 * through a capacity of 128: once faulted in, the hot pages never fault
 * again (every later device fault is one stream window), though the
 * stream is evicted over and over.  FIFO, random or clock replacement
 * would evict them at least once.
 */
static void test_lru_hot_set(void **state)
{
	const unsigned long nhot = 32, nstream = 1024, batch = 16;
	struct hmmu_mm *mm = hmmu_test_mm();
	/* Both window aligned, so a window is exactly 16 pages of one of them. */
	struct hot_args h = { .hot = hmmu_test_map_at(mm, 256 * MiB, nhot * PAGE, RW, MAP_FIXED), .nhot = nhot };
	unsigned long stream = hmmu_test_map_at(mm, 512 * MiB, nstream * PAGE, RW, MAP_FIXED), faults;
	struct hmmu_dmirror_exec_config cfg = { .nthreads = 1, .batch = batch };
	uint32_t *shadow = malloc(nstream * PAGE);

	open_dev(mm, HMMU_MEMORY_DEVICE_PRIVATE, 128);
	cpu_fill(mm, h.hot, nhot, shadow);
	cpu_fill(mm, stream, nstream, shadow);
	assert_int_equal(hmmu_dmirror_exec(mir, &cfg, hot_kernel, &h, stream, batch), 0);
	faults = dstats().exec_faults;
	assert_int_equal(faults, nhot / batch + 1);
	for (unsigned long s = batch; s < nstream; s += batch)
		assert_int_equal(hmmu_dmirror_exec(mir, &cfg, hot_kernel, &h, stream + s * PAGE, batch), 0);
	assert_int_equal(dstats().exec_faults - faults, nstream / batch - 1);
	assert_true(dstats().lru_evicted >= nstream - 128);
	assert_true(dstats().pages_high_water <= 128);
	for (unsigned long i = 0; i < nhot; i++)
		assert_true(dmirror_entry_local(hmmu_dmirror_pt_lookup(&mir->pt, (h.hot >> HMMU_PAGE_SHIFT) + i)));
	close_dev();
	free(shadow);
}

/* ------------------------------------------------------------------ */
/* Unmapped pages                                                      */
/* ------------------------------------------------------------------ */

/* The kernel of the unmap test: unit 0 first unmaps `hole` (npages at it), then works. */
struct unmap_args {
	struct add_args add;
	struct hmmu_mm *mm;
	unsigned long hole, nhole;
};

static int unmap_kernel(struct hmmu_dmirror_ctx *ctx, unsigned long addr, unsigned long npages, void *arg)
{
	struct unmap_args *u = arg;

	if (addr == u->add.in && u->nhole && hmmu_munmap(u->mm, u->hole, u->nhole * PAGE))
		return -EIO;
	return add_kernel(ctx, addr, npages, &u->add);
}

/*
 * The CPU unmaps 16 pages while the device runs over 64 pages it already
 * holds (a first pass migrated them): the device loses them
 * (invalidation), its faults there get -EFAULT, the rest is computed, the
 * run reports -EFAULT; pages unmapped before the run fail the same way.
 */
static void test_unmapped_efault(void **state)
{
	const unsigned long n = 64;
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long base = hmmu_test_map(mm, n * PAGE, RW);
	uint32_t *shadow = malloc(n * PAGE), buf[WORDS];
	int status[64];
	struct hmmu_dmirror_exec_config cfg = { .nthreads = 1, .batch = 8, .unit = 8 };
	struct unmap_args u = { .add = { .in = base, .out = base, .status = status }, .mm = mm };

	open_dev(mm, HMMU_MEMORY_DEVICE_PRIVATE, 0);
	cpu_fill(mm, base, n, shadow);
	assert_int_equal(hmmu_dmirror_exec(mir, &cfg, unmap_kernel, &u, base, n), 0);
	assert_int_equal(dstats().pages_in_use, n);
	u.hole = base + 32 * PAGE;
	u.nhole = 16;
	u.add.delta = 1;
	assert_int_equal(hmmu_dmirror_exec(mir, &cfg, unmap_kernel, &u, base, n), -EFAULT);
	for (unsigned long pg = 0; pg < n; pg++) {
		bool hole = pg >= 32 && pg < 48;

		assert_int_equal(status[pg], hole ? -EFAULT : 0);
		if (hole)
			continue;
		get_bytes(mm, base + pg * PAGE, buf, PAGE);
		assert_int_equal(buf[7], word0(pg, 7) + 1);
	}
	/* Unmapped before the run: the first failed unit's error, the others run. */
	u.nhole = 0;
	memset(status, 0, sizeof(status));
	assert_int_equal(hmmu_dmirror_exec(mir, &cfg, unmap_kernel, &u, base, n), -EFAULT);
	assert_int_equal(status[31], 0);
	assert_int_equal(status[32], -EFAULT);
	assert_int_equal(status[48], 0);
	close_dev();
	free(shadow);
}

/*
 * A store to a read-only VMA after a successful load: -EPERM under REMOTE
 * (hmm_range_fault refuses the write), -EFAULT under MIGRATE (the pages
 * moved read-only, and the device never writes a read-only page).
 */
static void test_store_readonly(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long base = hmmu_test_map(mm, 8 * PAGE, PROT_READ);
	int status[8];
	struct add_args a = { .in = base, .out = base, .status = status };
	struct hmmu_dmirror_exec_config cfg = { .nthreads = 1, .policy = HMMU_DMIRROR_POLICY_REMOTE };

	open_dev(mm, HMMU_MEMORY_DEVICE_PRIVATE, 0);
	assert_int_equal(run_add(&cfg, &a, 8), -EPERM);
	for (int i = 0; i < 8; i++)
		assert_int_equal(status[i], -EPERM);
	cfg.policy = HMMU_DMIRROR_POLICY_MIGRATE;
	assert_int_equal(run_add(&cfg, &a, 8), -EFAULT);
	for (int i = 0; i < 8; i++)
		assert_int_equal(status[i], -EFAULT);
	assert_int_equal(dstats().exec_migrated, 8);
	close_dev();
}

/* ------------------------------------------------------------------ */
/* Arguments                                                           */
/* ------------------------------------------------------------------ */

static int null_kernel(struct hmmu_dmirror_ctx *ctx, unsigned long addr, unsigned long npages, void *arg)
{
	char b;

	assert_int_equal(hmmu_dmirror_dev_load(NULL, addr, &b, 1), -EINVAL);
	assert_int_equal(hmmu_dmirror_dev_load(ctx, addr, NULL, 1), -EINVAL);
	assert_int_equal(hmmu_dmirror_dev_store(ctx, addr, NULL, 1), -EINVAL);
	assert_int_equal(hmmu_dmirror_dev_load(ctx, ~0UL - 2, &b, 8), -EINVAL);
	(*(atomic_long *)arg) += (long)npages;
	return 0;
}

static void test_exec_einval(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);
	const struct hmmu_dmirror_exec_config bad[] = {
		{ .policy = 2 }, { .nthreads = 65 }, { .batch = 3 }, { .batch = 1024 },
	};
	atomic_long pages = 0;

	open_dev(mm, HMMU_MEMORY_DEVICE_PRIVATE, 0);
	assert_int_equal(hmmu_dmirror_exec(NULL, NULL, null_kernel, &pages, a, 8), -EINVAL);
	assert_int_equal(hmmu_dmirror_exec(mir, NULL, NULL, &pages, a, 8), -EINVAL);
	assert_int_equal(hmmu_dmirror_exec(mir, NULL, null_kernel, &pages, a + 1, 8), -EINVAL);
	assert_int_equal(hmmu_dmirror_exec(mir, NULL, null_kernel, &pages, a, 0), -EINVAL);
	assert_int_equal(hmmu_dmirror_exec(mir, NULL, null_kernel, &pages, a, ~0UL >> 12), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hmmu_dmirror_exec(mir, &bad[i], null_kernel, &pages, a, 8), -EINVAL);
	assert_int_equal(atomic_load(&pages), 0);
	assert_int_equal(hmmu_dmirror_exec(mir, &(struct hmmu_dmirror_exec_config){ .unit = 3 }, null_kernel, &pages,
					   a, 8), 0);
	assert_int_equal(atomic_load(&pages), 8);
	assert_int_equal(hmmu_dmirror_ctx_worker(NULL), 0);
	close_dev();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		EX_TEST(test_migrate_private),
		EX_TEST(test_migrate_coherent),
		EX_TEST(test_remote_private),
		EX_TEST(test_remote_coherent),
		EX_TEST(test_eviction_private),
		EX_TEST(test_eviction_coherent),
		EX_TEST(test_eviction_tight),
		EX_TEST(test_cpu_device_race),
		EX_TEST(test_capacity_commands),
		EX_TEST(test_lru_hot_set),
		EX_TEST(test_unmapped_efault),
		EX_TEST(test_store_readonly),
		EX_TEST(test_exec_einval),
	};

	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
