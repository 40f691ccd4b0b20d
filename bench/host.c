// SPDX-License-Identifier: MIT
/*
 * Host-mm scenarios (issue 8, docs/host.md): CPU read-back through real
 * loads.  A buffer of c->bytes in a host mm, written with plain stores,
 * sits on a dmirror device (migrated untimed, batches of 512); the timed
 * run copies it out with memcpy from the real pointer, so every page
 * faults once (SIGBUS, migrate_to_ram, UFFDIO_CONTINUE):
 *
 *   host_cpu_readback              one thread, fault-around off
 *   host_cpu_readback_2t           two threads, a half each
 *   host_cpu_readback_fault_around one thread, FAULT_AROUND pages per
 *                                  migrate_to_ram (each page still faults once
 *                                  in the real mapping)
 *   kernel_anon_fault              the kernel's own first-touch cost: memcpy
 *                                  into fresh private anonymous memory
 *                                  (MADV_NOHUGEPAGE), the same bytes
 *
 * cpu_readback (device.c, hmmu_access) is the figure to compare with;
 * "us_per_page_above_memcpy" is (time - memcpy time) / pages.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"

#define MIGRATE_BATCH 512UL
#define FAULT_AROUND 64UL

struct bench_host {
	struct hmmu_dmirror_device *dev;
	struct hmmu_dmirror *mirror;
	int threads;
	char *anon;		/* kernel_anon_fault's mapping */
};

static unsigned long host_npages(const struct bench_ctx *c)
{
	return c->bytes / HMMU_PAGE_SIZE;
}

/* A fresh host mapping holding the pattern (plain stores), moved to the device. */
static void reset_host_on_device(struct bench_ctx *c)
{
	struct bench_host *h = c->dev;
	long n;

	bench_map_fresh(c);
	memcpy((void *)c->addr, c->pattern, c->bytes);
	n = hmmu_dmirror_migrate_to_device(h->mirror, (unsigned long)c->addr, host_npages(c), MIGRATE_BATCH);
	if (n != (long)host_npages(c))
		bench_fail("hmmu_dmirror_migrate_to_device", n < 0 ? n : -EAGAIN);
}

struct host_part {
	char *dst;
	const char *src;
	unsigned long len;
};

static void *host_copy_part(void *arg)
{
	struct host_part *p = arg;

	memcpy(p->dst, p->src, p->len);
	return NULL;
}

/* memcpy out of the host mapping: plain loads, by h->threads threads. */
static void run_host_readback(struct bench_ctx *c)
{
	struct bench_host *h = c->dev;
	struct host_part parts[2];
	pthread_t tid;
	unsigned long half = c->bytes / 2;

	if (h->threads == 1) {
		memcpy(c->buf, (const void *)c->addr, c->bytes);
		return;
	}
	parts[0] = (struct host_part){ c->buf, (const char *)c->addr, half };
	parts[1] = (struct host_part){ c->buf + half, (const char *)c->addr + half, c->bytes - half };
	if (pthread_create(&tid, NULL, host_copy_part, &parts[1]))
		bench_fail("pthread_create", -EAGAIN);
	host_copy_part(&parts[0]);
	pthread_join(tid, NULL);
}

static void check_host_buf(struct bench_ctx *c)
{
	if (memcmp(c->buf, c->pattern, c->bytes))
		bench_fail("read-back check", -EIO);
}

static void reset_anon(struct bench_ctx *c)
{
	struct bench_host *h = c->dev;

	if (h->anon)
		munmap(h->anon, c->bytes);
	h->anon = mmap(NULL, c->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h->anon == MAP_FAILED)
		bench_fail("mmap", -errno);
	madvise(h->anon, c->bytes, MADV_NOHUGEPAGE);
}

static void run_anon(struct bench_ctx *c)
{
	struct bench_host *h = c->dev;

	memcpy(h->anon, c->pattern, c->bytes);
}

static void check_anon(struct bench_ctx *c)
{
	struct bench_host *h = c->dev;

	if (memcmp(h->anon, c->pattern, c->bytes))
		bench_fail("kernel_anon_fault check", -EIO);
}

static const struct host_scenario {
	const char *name;
	int threads;
	unsigned long fault_around;	/* 0: no device */
	void (*reset)(struct bench_ctx *c);
	void (*run)(struct bench_ctx *c);
	void (*check)(struct bench_ctx *c);
} host_scenarios[] = {
	{ "host_cpu_readback", 1, 1, reset_host_on_device, run_host_readback, check_host_buf },
	{ "host_cpu_readback_2t", 2, 1, reset_host_on_device, run_host_readback, check_host_buf },
	{ "host_cpu_readback_fault_around", 1, FAULT_AROUND, reset_host_on_device, run_host_readback, check_host_buf },
	{ "kernel_anon_fault", 1, 0, reset_anon, run_anon, check_anon },
};

static void bench_host_one(struct bench_ctx *c, const struct host_scenario *s, FILE *json)
{
	struct hmmu_dmirror_device_config cfg = {
		.type = HMMU_MEMORY_DEVICE_PRIVATE, .chunk_size = 2 * c->bytes, .fault_around_pages = s->fault_around,
	};
	struct bench_host h = { .threads = s->threads };
	double ns, copy_ns;
	char extra[128];
	int err = 0;

	if (s->fault_around)
		err = hmmu_dmirror_device_create(&cfg, &h.dev);
	if (!err && s->fault_around)
		err = hmmu_dmirror_open(h.dev, c->mm, &h.mirror);
	if (err)
		bench_fail("device set-up", err);
	c->dev = &h;
	ns = bench_time_median(c, s->reset, s->run, s->check);
	copy_ns = bench_memcpy_ns(c);
	snprintf(extra, sizeof(extra), "\"threads\": %d, \"fault_around_pages\": %lu, \"us_per_page_above_memcpy\": %.3f",
		 s->threads, s->fault_around, (ns - copy_ns) / 1e3 / (double)host_npages(c));
	bench_report(json, s->name, c->bytes, ns, copy_ns, extra);
	if (c->addr > 0)
		hmmu_munmap(c->mm, (unsigned long)c->addr, c->bytes);
	c->addr = 0;
	if (h.anon)
		munmap(h.anon, c->bytes);
	if (h.mirror && (hmmu_dmirror_close(h.mirror) || hmmu_dmirror_device_destroy(h.dev)))
		bench_fail("device teardown", -EBUSY);
}

void bench_host(const struct bench_ctx *proto, FILE *json)
{
	struct bench_ctx c = *proto;
	const char *why;

	if (hmmu_host_probe(&why)) {
		printf("host scenarios skipped: %s\n", why);
		return;
	}
	if (hmmu_mm_create(HMMU_MM_HOST, &c.mm))
		bench_fail("hmmu_mm_create(HMMU_MM_HOST)", -ENOMEM);
	for (size_t i = 0; i < sizeof(host_scenarios) / sizeof(host_scenarios[0]); i++)
		if (bench_selected(host_scenarios[i].name))
			bench_host_one(&c, &host_scenarios[i], json);
	hmmu_mmput(c.mm);
}
