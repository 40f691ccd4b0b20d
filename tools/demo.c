// SPDX-License-Identifier: MIT
/*
 * hmmu demo: a device computes on memory the CPU filled, through its own
 * page table, under a memory capacity smaller than the data.
 *
 *   fill     the CPU writes a[] and b[] (hmmu_access)
 *   compute  each device runs c[i] = 2 * a[i] + b[i] over its share of the
 *            pages (hmmu_dmirror_exec: device faults, migration or remote
 *            mapping, LRU eviction); meanwhile another thread unmaps the
 *            last eighth of each share of c[], which invalidates the
 *            devices: those pages must be reported failed
 *   read     the CPU reads c[], a[] and b[] back (device-private pages
 *            come home through migrate_to_ram) and checks every word
 *   teardown mirrors closed, devices destroyed, the mm freed
 *
 * Global counters come from hmmu_stat() deltas, device counters from
 * hmmu_dmirror_device_get_stats().
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hmmu/dmirror.h>
#include <hmmu/hmmu.h>

#include "hmmu.h"

#define MIB (1UL << 20)
#define PAGE HMMU_PAGE_SIZE
#define WORDS (PAGE / sizeof(uint32_t))
#define MAX_DEVICES 8U

struct demo_opts {
	unsigned long mib;			/* per array */
	unsigned int devices, threads;
	enum hmmu_memory_type type;
	enum hmmu_dmirror_policy policy;
	long capacity;				/* pages per device; -1: a quarter of the share */
	unsigned long batch;
	bool unmap;
};

struct demo_dev {
	struct hmmu_dmirror_device *dev;
	struct hmmu_dmirror *mirror;
	unsigned long first, npages;		/* its share of the pages */
	unsigned long capacity;
	pthread_t thread;
	int ret;
	struct hmmu_dmirror_device_stats before;
};

struct demo_phase;

struct demo {
	struct demo_opts o;
	struct hmmu_mm *mm;
	unsigned long n;			/* pages per array */
	long a, b, c;
	struct demo_dev d[MAX_DEVICES];
	unsigned char *failed;			/* per page of c: the device reported it */
	atomic_ulong progress;			/* pages done in the current phase */
	struct demo_phase *phase;		/* the current phase (the progress line reads it) */
	long free_before;
};

static void demo_check(const char *what, long err)
{
	if (err < 0) {
		fprintf(stderr, "hmmu demo: %s failed: %s\n", what, strerror((int)-err));
		exit(1);
	}
}

static uint32_t demo_a(unsigned long i)
{
	return (uint32_t)(i * 2654435761u);
}

static uint32_t demo_b(unsigned long i)
{
	return (uint32_t)(i * 7 + 1);
}

static uint32_t demo_f(uint32_t a, uint32_t b)
{
	return 2 * a + b;
}

/* Page @pg of c lies in the range unmapped mid-run (the last eighth of its device's share). */
static bool demo_in_hole(const struct demo *d, unsigned long pg)
{
	for (unsigned int i = 0; d->o.unmap && i < d->o.devices; i++) {
		unsigned long hole = d->d[i].first + d->d[i].npages - d->d[i].npages / 8;

		if (pg >= hole && pg < d->d[i].first + d->d[i].npages)
			return true;
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* Phases: counters, table, progress                                   */
/* ------------------------------------------------------------------ */

struct demo_phase {
	const char *name;
	unsigned long bytes, total;		/* moved; pages for the progress line */
	struct hmmu_stat st;
	struct timespec t0;
	pthread_t progress;
	bool show;
	atomic_bool done;
};

static double demo_secs(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The progress line (stderr, a terminal only), every 100 ms until the phase ends. */
static void *demo_progress(void *arg)
{
	struct demo *d = arg;
	struct demo_phase *p = d->phase;

	while (!atomic_load(&p->done)) {
		unsigned long done = atomic_load(&d->progress);

		fprintf(stderr, "\r  %-10s %3lu%%  %lu/%lu pages", p->name, p->total ? done * 100 / p->total : 0, done,
			p->total);
		nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
	}
	fprintf(stderr, "\r\033[K");
	return NULL;
}

/* The sum over the devices of the change of the device counter at byte offset @field in this phase. */
static unsigned long demo_dev_delta(struct demo *d, size_t field)
{
	unsigned long sum = 0;

	for (unsigned int i = 0; i < d->o.devices; i++) {
		struct hmmu_dmirror_device_stats st;

		if (!d->d[i].dev)
			continue;
		demo_check("device stats", hmmu_dmirror_device_get_stats(d->d[i].dev, &st));
		sum += *(unsigned long *)((char *)&st + field) - *(unsigned long *)((char *)&d->d[i].before + field);
	}
	return sum;
}

static void demo_phase_begin(struct demo *d, struct demo_phase *p, const char *name,
					   unsigned long total, unsigned long bytes)
{
	*p = (struct demo_phase){ .name = name, .bytes = bytes, .total = total };
	for (unsigned int i = 0; i < d->o.devices; i++)
		if (d->d[i].dev)
			demo_check("device stats", hmmu_dmirror_device_get_stats(d->d[i].dev, &d->d[i].before));
	atomic_store(&d->progress, 0);
	demo_check("hmmu_stat", hmmu_stat(&p->st));
	d->phase = p;
	p->show = total && isatty(STDERR_FILENO) && !pthread_create(&p->progress, NULL, demo_progress, d);
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
}

static void demo_row_header(void)
{
	printf("%-10s %8s %8s %8s %8s %8s %8s %9s %7s\n", "phase", "to-dev", "to-sys", "dev-flt", "cpu-flt",
	       "evicted", "inval", "ms", "GB/s");
}

static void demo_phase_end(struct demo *d, struct demo_phase *p)
{
	double secs = demo_secs(&p->t0);
	struct hmmu_stat now;
	unsigned long inval = 0;

	atomic_store(&p->done, true);
	if (p->show)
		pthread_join(p->progress, NULL);
	demo_check("hmmu_stat", hmmu_stat(&now));
	for (unsigned int i = HMMU_STAT_INVALIDATE_UNMAP; i <= HMMU_STAT_INVALIDATE_EXCLUSIVE; i++)
		inval += now.v[i] - p->st.v[i];
#define DELTA(item) (now.v[item] - p->st.v[item])
	printf("%-10s %8lu %8lu %8lu %8lu %8lu %8lu %9.1f %7.2f\n", p->name,
	       DELTA(HMMU_STAT_MIGRATE_TO_DEVICE_SUCCEEDED), DELTA(HMMU_STAT_MIGRATE_TO_SYSTEM_SUCCEEDED),
	       demo_dev_delta(d, offsetof(struct hmmu_dmirror_device_stats, exec_faults)),
	       DELTA(HMMU_STAT_FAULT), DELTA(HMMU_STAT_EVICT), inval, secs * 1e3,
	       p->bytes ? (double)p->bytes / secs / 1e9 : 0.0);
#undef DELTA
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* CPU phases                                                          */
/* ------------------------------------------------------------------ */

static void demo_fill(struct demo *d)
{
	uint32_t buf[WORDS];

	for (unsigned long pg = 0; pg < d->n; pg++) {
		for (unsigned long w = 0; w < WORDS; w++)
			buf[w] = demo_a(pg * WORDS + w);
		demo_check("write a", hmmu_access(d->mm, d->a + pg * PAGE, buf, PAGE, HMMU_ACCESS_WRITE));
		for (unsigned long w = 0; w < WORDS; w++)
			buf[w] = demo_b(pg * WORDS + w);
		demo_check("write b", hmmu_access(d->mm, d->b + pg * PAGE, buf, PAGE, HMMU_ACCESS_WRITE));
		atomic_fetch_add(&d->progress, 1);
	}
}

/* Check page @pg of c (and of a and b): returns the bad pages (0..3); counts pages it skipped. */
static unsigned long demo_read_page(struct demo *d, unsigned long pg, unsigned long *lost)
{
	uint32_t a[WORDS], b[WORDS], c[WORDS];
	unsigned long bad = 0;
	int err = hmmu_access(d->mm, d->c + pg * PAGE, c, PAGE, HMMU_ACCESS_READ);

	demo_check("read a", hmmu_access(d->mm, d->a + pg * PAGE, a, PAGE, HMMU_ACCESS_READ));
	demo_check("read b", hmmu_access(d->mm, d->b + pg * PAGE, b, PAGE, HMMU_ACCESS_READ));
	for (unsigned long w = 0; w < WORDS; w++) {
		bad += a[w] != demo_a(pg * WORDS + w);
		bad += b[w] != demo_b(pg * WORDS + w);
	}
	if (demo_in_hole(d, pg)) {
		*lost += !d->failed[pg];	/* computed before the unmap */
		return (bad ? 1 : 0) + (err != -EFAULT);
	}
	if (err || d->failed[pg])
		return 1 + (bad ? 1 : 0);
	for (unsigned long w = 0; w < WORDS && !bad; w++)
		bad += c[w] != demo_f(a[w], b[w]);
	return bad ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* The device phase                                                    */
/* ------------------------------------------------------------------ */

/* The kernel: c = 2a + b, a page at a time; pages it cannot load or store are marked failed. */
static int demo_kernel(struct hmmu_dmirror_ctx *ctx, unsigned long addr, unsigned long npages, void *arg)
{
	struct demo *d = arg;
	uint32_t a[WORDS], b[WORDS], c[WORDS];
	int first = 0;

	for (unsigned long i = 0; i < npages; i++) {
		unsigned long off = addr - (unsigned long)d->c + i * PAGE;
		int err = hmmu_dmirror_dev_load(ctx, (unsigned long)d->a + off, a, PAGE);

		if (!err)
			err = hmmu_dmirror_dev_load(ctx, (unsigned long)d->b + off, b, PAGE);
		for (unsigned long w = 0; !err && w < WORDS; w++)
			c[w] = demo_f(a[w], b[w]);
		if (!err)
			err = hmmu_dmirror_dev_store(ctx, (unsigned long)d->c + off, c, PAGE);
		d->failed[off / PAGE] = err != 0;
		first = first ? first : err;
		atomic_fetch_add(&d->progress, 1);
	}
	return first;
}

struct demo_run {
	struct demo *d;
	struct demo_dev *dev;
};

static void *demo_device_run(void *arg)
{
	struct demo_run *r = arg;
	struct hmmu_dmirror_exec_config cfg = {
		.policy = r->d->o.policy, .nthreads = r->d->o.threads, .batch = r->d->o.batch,
	};

	r->dev->ret = hmmu_dmirror_exec(r->dev->mirror, &cfg, demo_kernel, r->d,
					(unsigned long)r->d->c + r->dev->first * PAGE, r->dev->npages);
	return NULL;
}

/* Mid-run: once half the work is done, unmap the last eighth of each device's share of c. */
static void demo_unmap_mid_run(struct demo *d)
{
	while (atomic_load(&d->progress) < d->n / 2)
		nanosleep(&(struct timespec){ .tv_nsec = 200000 }, NULL);
	for (unsigned int i = 0; i < d->o.devices; i++) {
		unsigned long len = d->d[i].npages / 8;

		demo_check("munmap", hmmu_munmap(d->mm, d->c + (d->d[i].first + d->d[i].npages - len) * PAGE,
						 len * PAGE));
	}
}

static void demo_compute(struct demo *d)
{
	struct demo_run runs[MAX_DEVICES];

	for (unsigned int i = 0; i < d->o.devices; i++) {
		runs[i] = (struct demo_run){ .d = d, .dev = &d->d[i] };
		if (pthread_create(&d->d[i].thread, NULL, demo_device_run, &runs[i]))
			demo_device_run(&runs[i]), d->d[i].thread = 0;
	}
	if (d->o.unmap)
		demo_unmap_mid_run(d);
	for (unsigned int i = 0; i < d->o.devices; i++) {
		if (d->d[i].thread)
			pthread_join(d->d[i].thread, NULL);
		if (d->d[i].ret && (d->d[i].ret != -EFAULT || !d->o.unmap))
			demo_check("device compute", d->d[i].ret);
	}
}

/* ------------------------------------------------------------------ */
/* Set-up, options                                                     */
/* ------------------------------------------------------------------ */

static void demo_devices(struct demo *d)
{
	for (unsigned int i = 0; i < d->o.devices; i++) {
		struct demo_dev *dv = &d->d[i];
		struct hmmu_dmirror_device_config cfg = { .type = d->o.type };

		dv->first = d->n * i / d->o.devices;
		dv->npages = d->n * (i + 1) / d->o.devices - dv->first;
		dv->capacity = d->o.capacity < 0 ? 3 * dv->npages / 4 : (unsigned long)d->o.capacity;
		cfg.capacity_pages = dv->capacity;
		if (dv->capacity) {	/* one chunk just large enough: the LRU sweep has less to scan */
			cfg.chunk_size = (dv->capacity * PAGE + HMMU_PMD_SIZE - 1) & HMMU_PMD_MASK;
			cfg.max_chunks = 1;
		}
		demo_check("dmirror device", hmmu_dmirror_device_create(&cfg, &dv->dev));
		demo_check("dmirror open", hmmu_dmirror_open(dv->dev, d->mm, &dv->mirror));
	}
}

static void demo_usage(FILE *out)
{
	fprintf(out,
		"usage: hmmu demo [options]\n\n"
		"The CPU fills a[] and b[]; the devices compute c[i] = 2*a[i] + b[i] through\n"
		"their page tables (device faults, migration, LRU eviction under a capacity\n"
		"smaller than the data); another thread unmaps part of c[] mid-run; the CPU\n"
		"reads everything back and checks it.  One table row per phase.\n\n"
		"  --size MIB       size of each array (>= 1, default 16)\n"
		"  --devices N      devices sharing the work (1..%u, default 1)\n"
		"  --memory KIND    private (default) or coherent device memory\n"
		"  --policy P       migrate (default): device faults migrate pages in;\n"
		"                   remote: map system pages remotely (hmm_range_fault)\n"
		"  --capacity PAGES device memory per device (0: unlimited;\n"
		"                   default: 3/4 of a device's share of c[], a quarter of its data)\n"
		"  --threads N      worker threads per device (1..64, default 2)\n"
		"  --batch N        pages per device-fault window (power of two <= 512, default 64)\n"
		"  --no-unmap       do not unmap part of c[] mid-run\n"
		"  --help           this text\n",
		MAX_DEVICES);
}

static unsigned long demo_num(const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (*s == '-' || *end || v < lo || v > hi) {
		demo_usage(stderr);
		exit(2);
	}
	return v;
}

static void demo_parse(int argc, char **argv, struct demo_opts *o)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' }, { "devices", required_argument, NULL, 'd' },
		{ "memory", required_argument, NULL, 'm' }, { "policy", required_argument, NULL, 'p' },
		{ "capacity", required_argument, NULL, 'c' }, { "threads", required_argument, NULL, 't' },
		{ "batch", required_argument, NULL, 'b' }, { "no-unmap", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	int c;

	*o = (struct demo_opts){ .mib = 16, .devices = 1, .threads = 2, .type = HMMU_MEMORY_DEVICE_PRIVATE,
				 .capacity = -1, .batch = 64, .unmap = true };
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			o->mib = demo_num(optarg, 1, 4096);
		else if (c == 'd')
			o->devices = (unsigned int)demo_num(optarg, 1, MAX_DEVICES);
		else if (c == 'm' && (!strcmp(optarg, "private") || !strcmp(optarg, "coherent")))
			o->type = optarg[0] == 'p' ? HMMU_MEMORY_DEVICE_PRIVATE : HMMU_MEMORY_DEVICE_COHERENT;
		else if (c == 'p' && (!strcmp(optarg, "migrate") || !strcmp(optarg, "remote")))
			o->policy = optarg[0] == 'm' ? HMMU_DMIRROR_POLICY_MIGRATE : HMMU_DMIRROR_POLICY_REMOTE;
		else if (c == 'c')
			o->capacity = (long)demo_num(optarg, 0, 1UL << 30);
		else if (c == 't')
			o->threads = (unsigned int)demo_num(optarg, 1, 64);
		else if (c == 'b')
			o->batch = demo_num(optarg, 1, 512);
		else if (c == 'u')
			o->unmap = false;
		else {
			demo_usage(c == 'h' ? stdout : stderr);
			exit(c == 'h' ? 0 : 2);
		}
	}
	if (o->batch & (o->batch - 1) || optind < argc) {
		demo_usage(stderr);
		exit(2);
	}
}

/* The device table from @st; returns the devices whose high-water mark passed their capacity. */
static unsigned long demo_print_devices(struct demo *d, const struct hmmu_dmirror_device_stats *st)
{
	unsigned long exceeded = 0;

	printf("\n%-8s %9s %9s %9s %9s %11s %9s\n", "device", "faults", "migrated", "remote", "lru-evict",
	       "high-water", "capacity");
	for (unsigned int i = 0; i < d->o.devices; i++) {
		bool over = d->d[i].capacity && st[i].pages_high_water > d->d[i].capacity;

		printf("%-8u %9lu %9lu %9lu %9lu %11lu %9lu%s\n", i, st[i].exec_faults, st[i].exec_migrated,
		       st[i].exec_remote, st[i].lru_evicted, st[i].pages_high_water, d->d[i].capacity,
		       over ? "  EXCEEDED" : "");
		exceeded += over;
	}
	return exceeded;
}

/* Close and destroy the devices (their final counters in @st), free the mm. */
static void demo_teardown(struct demo *d, struct hmmu_dmirror_device_stats *st)
{
	for (unsigned int i = 0; i < d->o.devices; i++) {
		demo_check("device stats", hmmu_dmirror_device_get_stats(d->d[i].dev, &st[i]));
		demo_check("dmirror close", hmmu_dmirror_close(d->d[i].mirror));
		demo_check("dmirror destroy", hmmu_dmirror_device_destroy(d->d[i].dev));
		d->d[i].dev = NULL;
	}
	hmmu_mmput(d->mm);
}

int hmmu_cmd_demo(int argc, char **argv)
{
	static struct demo demo;
	struct demo *d = &demo;
	int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;
	unsigned long bad = 0, lost = 0, failed = 0, outside = 0, exceeded = 0;
	struct hmmu_dmirror_device_stats st[MAX_DEVICES];
	struct demo_phase ph;

	demo_parse(argc, argv, &d->o);
	d->n = d->o.mib * MIB / PAGE;
	demo_check("hmmu_init", hmmu_init(&(struct hmmu_config){ .ram_size = (5 * d->o.mib + 64) * MIB }));
	d->free_before = hmmu_node_nr_free_pages(0);
	demo_check("hmmu_mm_create", hmmu_mm_create(HMMU_MM_DEFAULT, &d->mm));
	demo_check("mmap a", d->a = hmmu_mmap(d->mm, 0, d->n * PAGE, prot, flags, -1, 0));
	demo_check("mmap b", d->b = hmmu_mmap(d->mm, 0, d->n * PAGE, prot, flags, -1, 0));
	demo_check("mmap c", d->c = hmmu_mmap(d->mm, 0, d->n * PAGE, prot, flags, -1, 0));
	d->failed = calloc(d->n, 1);
	demo_devices(d);
	printf("hmmu demo: c = 2a + b over 3 x %lu MiB, %u %s device(s), policy %s, capacity %lu pages each,\n"
	       "%u worker(s) per device, fault window %lu pages%s\n\n", d->o.mib, d->o.devices,
	       d->o.type == HMMU_MEMORY_DEVICE_PRIVATE ? "private" : "coherent",
	       d->o.policy == HMMU_DMIRROR_POLICY_MIGRATE ? "migrate" : "remote", d->d[0].capacity, d->o.threads,
	       d->o.batch, d->o.unmap ? ", 1/8 of c unmapped mid-run" : "");
	demo_row_header();
	demo_phase_begin(d, &ph, "fill", d->n, 2 * d->n * PAGE);
	demo_fill(d);
	demo_phase_end(d, &ph);
	demo_phase_begin(d, &ph, "compute", d->n, 3 * d->n * PAGE);
	demo_compute(d);
	demo_phase_end(d, &ph);
	demo_phase_begin(d, &ph, "read", d->n, 3 * d->n * PAGE);
	for (unsigned long pg = 0; pg < d->n; pg++, atomic_fetch_add(&d->progress, 1))
		bad += demo_read_page(d, pg, &lost);
	demo_phase_end(d, &ph);
	for (unsigned long pg = 0; pg < d->n; pg++) {
		failed += d->failed[pg];
		outside += d->failed[pg] && !demo_in_hole(d, pg);
	}
	demo_phase_begin(d, &ph, "teardown", 0, 0);
	demo_teardown(d, st);
	demo_phase_end(d, &ph);
	exceeded = demo_print_devices(d, st);
	printf("\npages the device reported failed: %lu (%lu outside the range unmapped mid-run, "
	       "%lu of that range computed before it went)\n", failed, outside, lost);
	bad += hmmu_demo_host(d->o.mib < 16 ? d->o.mib * MIB : 16 * MIB);	/* tools/demo_host.c */
	printf("pages in use after teardown: %ld\n", d->free_before - hmmu_node_nr_free_pages(0));
	printf("result: %s (%lu bad pages)\n", bad || exceeded ? "MISMATCH" : "verified", bad);
	free(d->failed);
	demo_check("hmmu_exit", hmmu_exit());
	return bad || exceeded ? 1 : 0;
}
