// SPDX-License-Identifier: MIT
/*
 * hmmu benchmarks (DESIGN.md, "Testing and measuring"): each scenario is
 * timed as the median of BENCH_RUNS runs after one warm-up, with state
 * reset outside the timed region, 4 KiB pages only, and beside it glibc
 * memcpy of the same number of bytes between two pre-faulted buffers
 * (no THP) in the same run.  ratio_to_memcpy = scenario time / memcpy time.
 * Results: stdout, and with --json FILE one object per scenario and size
 * (scenario, bytes, seconds, pages_per_s, ratio_to_memcpy, ...).
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench.h"
#include "hmmu.h"

static const unsigned long bench_sizes[] = { 4 * MIB, 64 * MIB, 256 * MIB };
#define BENCH_MAX_BYTES (256 * MIB)

static char *memcpy_src, *memcpy_dst, *read_buf;
static int bench_json_items;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

bool bench_selected(const char *name)
{
	const char *only = getenv("HMMU_BENCH_ONLY");

	return !only || strstr(name, only);
}

void bench_fail(const char *what, long err)
{
	fprintf(stderr, "hmmu bench: %s: %s\n", what, strerror((int)-err));
	exit(1);
}

char *bench_buffer(unsigned long bytes)
{
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		bench_fail("mmap", -errno);
	madvise(p, bytes, MADV_NOHUGEPAGE);
	memset(p, 1, bytes);
	return p;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_time_median(struct bench_ctx *c, void (*reset)(struct bench_ctx *), void (*run)(struct bench_ctx *),
			 void (*check)(struct bench_ctx *))
{
	double t[BENCH_RUNS];

	for (int i = -1; i < BENCH_RUNS; i++) {
		double t0;

		if (reset)
			reset(c);
		t0 = now_ns();
		run(c);
		if (i >= 0)
			t[i] = now_ns() - t0;
		if (check)
			check(c);
	}
	qsort(t, BENCH_RUNS, sizeof(t[0]), cmp_double);
	return t[BENCH_RUNS / 2];
}

static void bench_run_memcpy(struct bench_ctx *c)
{
	memcpy(memcpy_dst, memcpy_src, c->bytes);
	__asm__ volatile("" ::: "memory");
}

double bench_memcpy_ns(struct bench_ctx *c)
{
	return bench_time_median(c, NULL, bench_run_memcpy, NULL);
}

void bench_report(FILE *json, const char *name, unsigned long bytes, double ns, double copy_ns, const char *extra)
{
	double pages_per_s = (double)(bytes / HMMU_PAGE_SIZE) / (ns / 1e9);

	printf("%-30s %4lu MiB %10.3f ms %12.0f pages/s  memcpy %8.3f ms  ratio %6.2f  %s\n", name, bytes / MIB,
	       ns / 1e6, pages_per_s, copy_ns / 1e6, ns / copy_ns, extra ? extra : "");
	if (!json)
		return;
	fprintf(json,
		"%s    {\"scenario\": \"%s\", \"bytes\": %lu, \"runs\": %d, \"seconds\": %.9f, \"pages_per_s\": %.0f, "
		"\"memcpy_seconds\": %.9f, \"ratio_to_memcpy\": %.3f%s%s}",
		bench_json_items++ ? ",\n" : "", name, bytes, BENCH_RUNS, ns / 1e9, pages_per_s, copy_ns / 1e9,
		ns / copy_ns, extra ? ", " : "", extra ? extra : "");
}

void bench_map_fresh(struct bench_ctx *c)
{
	if (c->addr > 0)
		hmmu_munmap(c->mm, (unsigned long)c->addr, c->bytes);
	c->addr = hmmu_mmap(c->mm, 0, c->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->addr < 0)
		bench_fail("hmmu_mmap", c->addr);
}

void bench_map_populated(struct bench_ctx *c)
{
	int err;

	bench_map_fresh(c);
	err = hmmu_access(c->mm, (unsigned long)c->addr, (void *)c->pattern, c->bytes, HMMU_ACCESS_WRITE);
	if (err)
		bench_fail("hmmu_access (populate)", err);
}

void bench_check_mapping(struct bench_ctx *c)
{
	int err = hmmu_access(c->mm, (unsigned long)c->addr, c->buf, c->bytes, HMMU_ACCESS_READ);

	if (err)
		bench_fail("hmmu_access (check)", err);
	if (memcmp(c->buf, c->pattern, c->bytes))
		bench_fail("data check", -EIO);
}

/* ------------------------------------------------------------------ */
/* Memory scenarios                                                    */
/* ------------------------------------------------------------------ */

static void run_first_touch(struct bench_ctx *c)
{
	char byte = 1;

	for (unsigned long off = 0; off < c->bytes; off += HMMU_PAGE_SIZE) {
		int err = hmmu_access(c->mm, (unsigned long)c->addr + off, &byte, 1, HMMU_ACCESS_WRITE);

		if (err)
			bench_fail("hmmu_access", err);
	}
}

static void reset_populated_once(struct bench_ctx *c)
{
	if (c->addr <= 0)
		bench_map_populated(c);
}

static void run_access_read(struct bench_ctx *c)
{
	int err = hmmu_access(c->mm, (unsigned long)c->addr, c->buf, c->bytes, HMMU_ACCESS_READ);

	if (err)
		bench_fail("hmmu_access", err);
}

static void check_read(struct bench_ctx *c)
{
	if (memcmp(c->buf, c->pattern, c->bytes))
		bench_fail("data check", -EIO);
}

static const struct {
	const char *name;
	void (*reset)(struct bench_ctx *c);
	void (*run)(struct bench_ctx *c);
	void (*check)(struct bench_ctx *c);
} memory_scenarios[] = {
	{ "anon_first_touch_fault", bench_map_fresh, run_first_touch, NULL },
	{ "access_read_populated", reset_populated_once, run_access_read, check_read },
};

static void bench_memory(unsigned long bytes, FILE *json)
{
	for (size_t i = 0; i < sizeof(memory_scenarios) / sizeof(memory_scenarios[0]); i++) {
		struct bench_ctx c = { .bytes = bytes, .buf = read_buf, .pattern = memcpy_src };
		double ns, copy_ns;

		if (!bench_selected(memory_scenarios[i].name))
			continue;
		if (hmmu_mm_create(HMMU_MM_DEFAULT, &c.mm))
			bench_fail("hmmu_mm_create", -ENOMEM);
		ns = bench_time_median(&c, memory_scenarios[i].reset, memory_scenarios[i].run, memory_scenarios[i].check);
		copy_ns = bench_memcpy_ns(&c);
		bench_report(json, memory_scenarios[i].name, bytes, ns, copy_ns, NULL);
		hmmu_mmput(c.mm);
	}
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
	ns = bench_time_median(&c, NULL, run_notify_pairs, NULL) / NOTIFY_PAIRS;
	printf("%-30s %8lu subs %9.1f ns per start/end pair (one hit)\n", "notifier_start_end", n, ns);
	if (json)
		fprintf(json, "%s    {\"scenario\": \"notifier_start_end\", \"subscribers\": %lu, \"runs\": %d, "
			      "\"seconds_per_pair\": %.12f}", bench_json_items++ ? ",\n" : "", n, BENCH_RUNS, ns / 1e9);
	for (unsigned long i = 0; i < n; i++)
		hmmu_interval_notifier_remove(&subs[i]);
	hmmu_mmput(c.mm);
	free(subs);
}

/*
 * Touch every frame of system RAM once, so that no timed run pays for the
 * host kernel committing hmmu's RAM reservation (MAP_NORESERVE, committed
 * as touched): the frames a run allocates differ from run to run.
 */
static void bench_warm_ram(void)
{
	struct hmmu_page **blocks = calloc(hmmu_node_nr_pages(0) >> HMMU_MAX_ORDER, sizeof(*blocks));
	unsigned long n = 0;

	if (!blocks)
		bench_fail("calloc", -ENOMEM);
	while ((blocks[n] = hmmu_alloc_pages(HMMU_GFP_KERNEL, HMMU_MAX_ORDER)))
		memset(hmmu_page_address(blocks[n++]), 0, HMMU_PAGE_SIZE << HMMU_MAX_ORDER);
	while (n)
		hmmu_free_pages(blocks[--n], HMMU_MAX_ORDER);
	free(blocks);
}

/* Every 8-byte word holds its own index: a page's data names the page. */
static void bench_fill_pattern(char *p, unsigned long bytes)
{
	for (unsigned long i = 0; i < bytes / sizeof(uint64_t); i++)
		((uint64_t *)p)[i] = i * 0x9e3779b97f4a7c15ULL;
}

/* Returns the --json FILE or NULL; exits on --help or a bad option. */
static const char *bench_parse(int argc, char **argv)
{
	static const struct option opts[] = { { "json", required_argument, NULL, 'j' },
					      { "help", no_argument, NULL, 'h' },
					      { 0 } };
	const char *json_path = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "j:h", opts, NULL)) != -1) {
		if (c == 'j') {
			json_path = optarg;
			continue;
		}
		printf("usage: hmmu bench [--json FILE]\n\n"
		       "Runs every benchmark scenario (memory, device, notifier) at 4, 64 and 256 MiB:\n"
		       "the median of %d runs after a warm-up, beside memcpy of the same bytes.\n\n"
		       "  --json FILE  also write the results to FILE as JSON\n"
		       "  --help       this text\n\n"
		       "HMMU_BENCH_ONLY=SUBSTRING runs only the scenarios whose name contains it\n"
		       "(e.g. HMMU_BENCH_ONLY=snapshot).  'make bench' runs an optimised build with\n"
		       "--json build/bench.json.\n", BENCH_RUNS);
		exit(c == 'h' ? 0 : 2);
	}
	if (optind != argc) {
		fprintf(stderr, "hmmu bench: unexpected argument '%s'\n", argv[optind]);
		exit(2);
	}
	return json_path;
}

int hmmu_cmd_bench(int argc, char **argv)
{
	const char *json_path = bench_parse(argc, argv);
	FILE *json = NULL;
	int err;

	/* The data, device-private backing pages, pages faulted home, slack. */
	err = hmmu_init(&(struct hmmu_config){ .ram_size = 4 * BENCH_MAX_BYTES, .host_arena_size = 2 * BENCH_MAX_BYTES });
	if (err)
		bench_fail("hmmu_init", err);
	bench_warm_ram();
	if (json_path && !(json = fopen(json_path, "w")))
		bench_fail(json_path, -errno);
	memcpy_src = bench_buffer(BENCH_MAX_BYTES);
	memcpy_dst = bench_buffer(BENCH_MAX_BYTES);
	read_buf = bench_buffer(BENCH_MAX_BYTES);
	bench_fill_pattern(memcpy_src, BENCH_MAX_BYTES);
	if (json)
		fprintf(json, "{\n  \"note\": \"median of %d runs after a warm-up; ratio_to_memcpy = seconds / "
			      "memcpy_seconds of the same bytes in the same run\",\n  \"results\": [\n", BENCH_RUNS);
	for (size_t i = 0; i < sizeof(bench_sizes) / sizeof(bench_sizes[0]); i++) {
		bench_memory(bench_sizes[i], json);
		bench_device(&(struct bench_ctx){ .bytes = bench_sizes[i], .buf = read_buf, .pattern = memcpy_src },
			     json);
		bench_host(&(struct bench_ctx){ .bytes = bench_sizes[i], .buf = read_buf, .pattern = memcpy_src }, json);
	}
	for (unsigned long n = 1; n <= 1000000 && bench_selected("notifier_start_end"); n *= 1000)
		bench_notifier(n, json);
	if (json) {
		fprintf(json, "\n  ]\n}\n");
		fclose(json);
		printf("results written to %s\n", json_path);
	}
	return hmmu_exit() ? 1 : 0;
}
