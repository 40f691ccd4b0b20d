// SPDX-License-Identifier: MIT
/*
 * hmmu benchmarks (DESIGN.md, "Testing and measuring"): each scenario is
 * timed as the median of at least 5 runs after one warm-up, with state
 * reset outside the timed region, 4 KiB pages only, and beside it glibc
 * memcpy of the same number of bytes between two pre-faulted buffers
 * (no THP) in the same run.  ratio_to_memcpy = scenario time / memcpy time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <hmmu/hmmu.h>

#define RUNS 5
#define MIB (1UL << 20)

struct bench_ctx {
	struct hmmu_mm *mm;
	unsigned long bytes;
	long addr;
	char *buf;		/* destination of reads, pre-faulted */
};

struct scenario {
	const char *name;
	const char *unit;	/* what per_second counts */
	void (*reset)(struct bench_ctx *c);	/* untimed */
	void (*run)(struct bench_ctx *c);	/* timed */
	unsigned long (*count)(const struct bench_ctx *c);
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void bench_fail(const char *what, long err)
{
	fprintf(stderr, "hmmu-bench: %s: %s\n", what, strerror((int)-err));
	exit(1);
}

/* A pre-faulted buffer that transparent huge pages do not back. */
static char *bench_buffer(unsigned long bytes)
{
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		bench_fail("mmap", -errno);
	madvise(p, bytes, MADV_NOHUGEPAGE);
	memset(p, 1, bytes);
	return p;
}

/* Fresh, untouched mapping of the scenario's size. */
static void reset_unmapped(struct bench_ctx *c)
{
	if (c->addr > 0)
		hmmu_munmap(c->mm, (unsigned long)c->addr, c->bytes);
	c->addr = hmmu_mmap(c->mm, 0, c->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->addr < 0)
		bench_fail("hmmu_mmap", c->addr);
}

static void run_first_touch(struct bench_ctx *c)
{
	char byte = 1;

	for (unsigned long off = 0; off < c->bytes; off += HMMU_PAGE_SIZE) {
		int err = hmmu_access(c->mm, (unsigned long)c->addr + off, &byte, 1, HMMU_ACCESS_WRITE);

		if (err)
			bench_fail("hmmu_access", err);
	}
}

static void reset_populated(struct bench_ctx *c)
{
	if (c->addr <= 0) {
		reset_unmapped(c);
		run_first_touch(c);
	}
}

static void run_access_read(struct bench_ctx *c)
{
	int err = hmmu_access(c->mm, (unsigned long)c->addr, c->buf, c->bytes, HMMU_ACCESS_READ);

	if (err)
		bench_fail("hmmu_access", err);
}

static unsigned long count_pages(const struct bench_ctx *c)
{
	return c->bytes / HMMU_PAGE_SIZE;
}

static unsigned long count_bytes(const struct bench_ctx *c)
{
	return c->bytes;
}

static const struct scenario scenarios[] = {
	{ "anon_first_touch_fault", "faults", reset_unmapped, run_first_touch, count_pages },
	{ "access_read_populated", "bytes", reset_populated, run_access_read, count_bytes },
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median over RUNS timed runs after a warm-up; resets are not timed. */
static double time_median(struct bench_ctx *c, void (*reset)(struct bench_ctx *), void (*run)(struct bench_ctx *))
{
	double t[RUNS];

	for (int i = -1; i < RUNS; i++) {
		double t0;

		if (reset)
			reset(c);
		t0 = now_ns();
		run(c);
		if (i >= 0)
			t[i] = now_ns() - t0;
	}
	qsort(t, RUNS, sizeof(t[0]), cmp_double);
	return t[RUNS / 2];
}

static char *memcpy_src, *memcpy_dst;

static void run_memcpy(struct bench_ctx *c)
{
	memcpy(memcpy_dst, memcpy_src, c->bytes);
	__asm__ volatile("" ::: "memory");
}

static void bench_scenario(const struct scenario *s, struct bench_ctx *c, FILE *json, bool first)
{
	double ns = time_median(c, s->reset, s->run);
	double copy_ns = time_median(c, NULL, run_memcpy);
	double per_sec = s->count(c) / (ns / 1e9);

	printf("%-26s %8lu MiB %12.0f ns %14.0f %s/s  memcpy %10.0f ns  ratio %6.2f\n", s->name, c->bytes / MIB, ns,
	       per_sec, s->unit, copy_ns, ns / copy_ns);
	if (json)
		fprintf(json,
			"%s    {\"name\": \"%s\", \"bytes\": %lu, \"runs\": %d, \"median_ns\": %.0f, "
			"\"per_second\": %.0f, \"unit\": \"%s\", \"memcpy_ns\": %.0f, \"ratio_to_memcpy\": %.3f}",
			first ? "" : ",\n", s->name, c->bytes, RUNS, ns, per_sec, s->unit, copy_ns, ns / copy_ns);
}

/* ------------------------------------------------------------------ */
/* Notifier cost: one bare start/end pair over one page, one subscriber */
/* hit, with n non-overlapping interval subscribers registered.        */
/* ------------------------------------------------------------------ */

static bool bench_invalidate(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
			     unsigned long cur_seq)
{
	hmmu_interval_set_seq(sub, cur_seq);
	return true;
}

static const struct hmmu_interval_notifier_ops bench_iops = { .invalidate = bench_invalidate };

#define NOTIFY_PAIRS 100000

static void run_notify_pairs(struct bench_ctx *c)
{
	struct hmmu_notifier_range range;

	for (int i = 0; i < NOTIFY_PAIRS; i++) {
		/* Subscriber i covers page 2i: hit one, spread over the tree. */
		unsigned long addr = ((unsigned long)(i * 7919) % c->bytes) * 2 * HMMU_PAGE_SIZE;

		hmmu_notifier_range_init(&range, HMMU_NOTIFY_CLEAR, 0, c->mm, addr, addr + HMMU_PAGE_SIZE);
		hmmu_notifier_invalidate_range_start(&range);
		hmmu_notifier_invalidate_range_end(&range);
	}
}

/* Time start/end pairs with @n subscribers (c->bytes holds n for the run). */
static void bench_notifier(unsigned long n, FILE *json)
{
	struct hmmu_interval_notifier *subs = calloc(n, sizeof(*subs));
	struct bench_ctx c = { .bytes = n };
	double ns;

	if (!subs || hmmu_mm_create(HMMU_MM_DEFAULT, &c.mm))
		bench_fail("notifier set-up", -ENOMEM);
	for (unsigned long i = 0; i < n; i++)
		if (hmmu_interval_notifier_insert(&subs[i], c.mm, 2 * i * HMMU_PAGE_SIZE, HMMU_PAGE_SIZE, &bench_iops))
			bench_fail("hmmu_interval_notifier_insert", -ENOMEM);
	ns = time_median(&c, NULL, run_notify_pairs) / NOTIFY_PAIRS;
	printf("%-26s %8lu subs %9.1f ns per start/end pair (one hit)\n", "notifier_start_end", n, ns);
	if (json)
		fprintf(json, ",\n    {\"name\": \"notifier_start_end_%lu_subscribers\", \"subscribers\": %lu, "
			      "\"runs\": %d, \"median_ns_per_pair\": %.1f}", n, n, RUNS, ns);
	for (unsigned long i = 0; i < n; i++)
		hmmu_interval_notifier_remove(&subs[i]);
	hmmu_mmput(c.mm);
	free(subs);
}

int main(int argc, char **argv)
{
	struct bench_ctx c = { .bytes = 256 * MIB };
	const char *json_path = argc == 3 && !strcmp(argv[1], "--json") ? argv[2] : NULL;
	FILE *json = NULL;
	int err;

	err = hmmu_init(&(struct hmmu_config){ .ram_size = 2 * c.bytes });
	if (err)
		bench_fail("hmmu_init", err);
	if (json_path && !(json = fopen(json_path, "w")))
		bench_fail(json_path, -errno);
	c.buf = bench_buffer(c.bytes);
	memcpy_src = bench_buffer(c.bytes);
	memcpy_dst = bench_buffer(c.bytes);
	if (json)
		fprintf(json, "{\n  \"unit_note\": \"median of %d runs; ratio_to_memcpy = time / memcpy time\",\n"
			      "  \"scenarios\": [\n", RUNS);
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (hmmu_mm_create(HMMU_MM_DEFAULT, &c.mm))
			bench_fail("hmmu_mm_create", -ENOMEM);
		c.addr = 0;
		bench_scenario(&scenarios[i], &c, json, i == 0);
		hmmu_mmput(c.mm);
	}
	bench_notifier(1, json);
	bench_notifier(1000, json);
	bench_notifier(1000000, json);
	if (json) {
		fprintf(json, "\n  ]\n}\n");
		fclose(json);
		printf("results written to %s\n", json_path);
	}
	return hmmu_exit() ? 1 : 0;
}
