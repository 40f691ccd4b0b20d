// SPDX-License-Identifier: MIT
/*
 * Device scenarios (issue 5): populated private anonymous memory of
 * c->bytes and a dmirror device with private memory, driven through the
 * library and dmirror's direct calls (not its ioctl-like commands, which
 * copy through bounce buffers as the kernel driver does):
 *
 *   migrate_to_device      hmmu_dmirror_migrate_to_device, batches of 512
 *   device_read            range_fault + device page table + one copy out
 *                          (hmmu_dmirror_read on an empty device table)
 *   snapshot               hmmu_range_fault without faulting, whole range
 *   cpu_readback           hmmu_access over device-resident pages: every
 *                          page faults home through migrate_to_ram
 *   cpu_readback_around    the same with fault-around (FAULT_AROUND pages)
 *   migrate_back_batched   hmmu_dmirror_migrate_to_system, batches of 512
 *
 * Every run's result is checked outside the timed region.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MIGRATE_BATCH 512UL
#define FAULT_AROUND 64UL

/*
 * Each scenario gets its own device and mirror (set up untimed), and the
 * snapshot scenario its own interval subscription, so that every
 * invalidation reaches exactly the subscribers a real user would have.
 */
struct bench_dev {
	struct hmmu_dmirror_device *dev;
	struct hmmu_dmirror *active;		/* the scenario's mirror */
	struct hmmu_interval_notifier sub;	/* snapshot only */
	bool has_sub;
	unsigned long *pfns;			/* snapshot output */
};

static struct bench_dev *bench_dev(struct bench_ctx *c)
{
	return c->dev;
}

static unsigned long bench_npages(const struct bench_ctx *c)
{
	return c->bytes / HMMU_PAGE_SIZE;
}

static void bench_to_device(struct bench_ctx *c)
{
	long n = hmmu_dmirror_migrate_to_device(bench_dev(c)->active, (unsigned long)c->addr, bench_npages(c),
						MIGRATE_BATCH);

	if (n != (long)bench_npages(c))
		bench_fail("hmmu_dmirror_migrate_to_device", n < 0 ? n : -EAGAIN);
}

static void bench_to_system(struct bench_ctx *c)
{
	long n = hmmu_dmirror_migrate_to_system(bench_dev(c)->active, (unsigned long)c->addr, bench_npages(c),
						MIGRATE_BATCH);

	if (n != (long)bench_npages(c))
		bench_fail("hmmu_dmirror_migrate_to_system", n < 0 ? n : -EAGAIN);
}

/* Populated in system memory, then moved to the active mirror's device. */
static void reset_on_device(struct bench_ctx *c)
{
	bench_map_populated(c);
	bench_to_device(c);
}

/* A fresh populated mapping: the device table holds nothing of it. */
static void reset_device_read(struct bench_ctx *c)
{
	bench_map_populated(c);
}

static void run_device_read(struct bench_ctx *c)
{
	unsigned long faults = 0;
	int err = hmmu_dmirror_read(bench_dev(c)->active, (unsigned long)c->addr, c->buf, bench_npages(c), &faults);

	if (err)
		bench_fail("hmmu_dmirror_read", err);
}

static void check_buf(struct bench_ctx *c)
{
	if (memcmp(c->buf, c->pattern, c->bytes))
		bench_fail("data check", -EIO);
}

static bool bench_snapshot_invalidate(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
				      unsigned long cur_seq)
{
	hmmu_interval_set_seq(sub, cur_seq);
	return true;
}

static const struct hmmu_interval_notifier_ops bench_snapshot_ops = { .invalidate = bench_snapshot_invalidate };

static void reset_snapshot(struct bench_ctx *c)
{
	if (c->addr <= 0)
		bench_map_populated(c);
}

static void run_snapshot(struct bench_ctx *c)
{
	struct bench_dev *d = bench_dev(c);
	struct hmmu_range range = {
		.notifier = &d->sub,
		.start = (unsigned long)c->addr,
		.end = (unsigned long)c->addr + c->bytes,
		.hmm_pfns = d->pfns,
		.dev_private_owner = hmmu_dmirror_device_owner(d->dev),
	};
	int err;

	hmmu_mmap_read_lock(c->mm);
	do {
		range.notifier_seq = hmmu_interval_read_begin(&d->sub);
		err = hmmu_range_fault(&range);
	} while (err == -EBUSY);
	hmmu_mmap_read_unlock(c->mm);
	if (err || hmmu_interval_read_retry(&d->sub, range.notifier_seq))
		bench_fail("hmmu_range_fault", err ? err : -EAGAIN);
}

static void check_snapshot(struct bench_ctx *c)
{
	for (unsigned long i = 0; i < bench_npages(c); i++)
		if ((bench_dev(c)->pfns[i] & (HMMU_PFN_VALID | HMMU_PFN_WRITE)) != (HMMU_PFN_VALID | HMMU_PFN_WRITE))
			bench_fail("snapshot check", -EIO);
}

static void run_cpu_readback(struct bench_ctx *c)
{
	int err = hmmu_access(c->mm, (unsigned long)c->addr, c->buf, c->bytes, HMMU_ACCESS_READ);

	if (err)
		bench_fail("hmmu_access", err);
}

static const struct device_scenario {
	const char *name;
	bool around;		/* the device has fault-around on */
	void (*reset)(struct bench_ctx *c);
	void (*run)(struct bench_ctx *c);
	void (*check)(struct bench_ctx *c);
	const char *extra;	/* JSON fields */
} device_scenarios[] = {
	{ "migrate_to_device", false, bench_map_populated, bench_to_device, bench_check_mapping, "\"batch_pages\": 512" },
	{ "device_read", false, reset_device_read, run_device_read, check_buf, NULL },
	{ "snapshot", false, reset_snapshot, run_snapshot, check_snapshot, NULL },
	{ "cpu_readback", false, reset_on_device, run_cpu_readback, check_buf, "\"fault_around_pages\": 1" },
	{ "cpu_readback_fault_around", true, reset_on_device, run_cpu_readback, check_buf,
	  "\"fault_around_pages\": 64" },
	{ "migrate_back_batched", false, reset_on_device, bench_to_system, bench_check_mapping, "\"batch_pages\": 512" },
};

static void bench_dev_open(struct bench_ctx *c, struct bench_dev *d, const struct device_scenario *s)
{
	struct hmmu_dmirror_device_config cfg = {
		.type = HMMU_MEMORY_DEVICE_PRIVATE,
		.chunk_size = 2 * c->bytes,
		.fault_around_pages = s->around ? FAULT_AROUND : 1,
	};
	int err;

	err = hmmu_dmirror_device_create(&cfg, &d->dev);
	err = err ? err : hmmu_dmirror_open(d->dev, c->mm, &d->active);
	if (!err && s->run == run_snapshot) {
		err = hmmu_interval_notifier_insert(&d->sub, c->mm, 0, HMMU_TASK_SIZE, &bench_snapshot_ops);
		d->has_sub = !err;
	}
	if (err)
		bench_fail("device set-up", err);
}

static void bench_dev_close(struct bench_dev *d)
{
	if (d->has_sub)
		hmmu_interval_notifier_remove(&d->sub);
	d->has_sub = false;
	if (hmmu_dmirror_close(d->active) || hmmu_dmirror_device_destroy(d->dev))
		bench_fail("device teardown", -EBUSY);
}

static void bench_device_one(struct bench_ctx *c, const struct device_scenario *s, FILE *json)
{
	struct bench_dev *d = bench_dev(c);
	double ns, copy_ns;

	bench_dev_open(c, d, s);
	ns = bench_time_median(c, s->reset, s->run, s->check);
	copy_ns = bench_memcpy_ns(c);
	bench_report(json, s->name, c->bytes, ns, copy_ns, s->extra);
	hmmu_munmap(c->mm, (unsigned long)c->addr, c->bytes);
	c->addr = 0;
	bench_dev_close(d);
}

void bench_device(const struct bench_ctx *proto, FILE *json)
{
	struct bench_ctx c = *proto;
	struct bench_dev d = { 0 };

	if (hmmu_mm_create(HMMU_MM_DEFAULT, &c.mm))
		bench_fail("hmmu_mm_create", -ENOMEM);
	c.dev = &d;
	d.pfns = calloc(bench_npages(&c), sizeof(*d.pfns));
	if (!d.pfns)
		bench_fail("calloc", -ENOMEM);
	for (size_t i = 0; i < sizeof(device_scenarios) / sizeof(device_scenarios[0]); i++)
		if (bench_selected(device_scenarios[i].name))
			bench_device_one(&c, &device_scenarios[i], json);
	free(d.pfns);
	hmmu_mmput(c.mm);
}
