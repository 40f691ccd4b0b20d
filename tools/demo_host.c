// SPDX-License-Identifier: MIT
/*
 * hmmu demo, host run (docs/host.md): a plain C loop over a buffer of a
 * host mm whose pages live on a dmirror device; every page the loop
 * touches faults home once, and the faults are counted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <hmmu/hmmu.h>
#include <hmmu/dmirror.h>

#include "hmmu.h"

#define MIB (1UL << 20)
#define PAGE HMMU_PAGE_SIZE

static unsigned long demo_host_faults(void)
{
	struct hmmu_stat st;

	hmmu_stat(&st);
	return st.v[HMMU_STAT_HOST_FAULT];
}

/* Pages of [p, p + bytes) resident in this process (mincore), or -1. */
static long demo_host_resident(const void *p, unsigned long bytes)
{
	static unsigned char vec[(64 * MIB) / PAGE];
	unsigned long n = bytes / PAGE;
	long res = 0;

	if (n > sizeof(vec) || mincore((void *)p, bytes, vec))
		return -1;
	for (unsigned long i = 0; i < n; i++)
		res += vec[i] & 1;
	return res;
}

/* The device's half: a device, a mirror of @mm, the buffer moved onto it. */
static int demo_host_to_device(struct hmmu_mm *mm, int *v, unsigned long bytes,
			       struct hmmu_dmirror_device **devp, struct hmmu_dmirror **mirrorp)
{
	struct hmmu_dmirror_device_config cfg = { .type = HMMU_MEMORY_DEVICE_PRIVATE };
	long n;
	int err = hmmu_dmirror_device_create(&cfg, devp);

	err = err ? err : hmmu_dmirror_open(*devp, mm, mirrorp);
	if (err)
		return err;
	n = hmmu_dmirror_migrate_to_device(*mirrorp, (unsigned long)v, bytes / PAGE, 512);
	return n == (long)(bytes / PAGE) ? 0 : -EAGAIN;
}

/* The loop itself: read every int, check it, add one.  Returns the ints that were wrong. */
static unsigned long demo_host_loop(int *v, unsigned long n)
{
	unsigned long bad = 0;

	for (unsigned long i = 0; i < n; i++) {
		bad += v[i] != (int)i;
		v[i]++;
	}
	return bad;
}

int hmmu_demo_host(unsigned long bytes)
{
	struct hmmu_dmirror_device *dev = NULL;
	struct hmmu_dmirror *mirror = NULL;
	unsigned long n = bytes / sizeof(int), faults, bad;
	struct hmmu_mm *mm;
	const char *why;
	int *v, err;

	printf("\nhost run: a plain C loop over %lu MiB of a host mm whose pages are on a device\n", bytes / MIB);
	if (hmmu_host_probe(&why)) {
		printf("host run skipped: %s\n", why);
		return 0;
	}
	err = hmmu_mm_create(HMMU_MM_HOST, &mm);
	if (err)
		return printf("host run: hmmu_mm_create: %s\n", strerror(-err)), 1;
	v = (int *)hmmu_mmap(mm, 0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((long)v < 0)
		return printf("host run: hmmu_mmap: %s\n", strerror((int)-(long)v)), hmmu_mmput(mm), 1;
	for (unsigned long i = 0; i < n; i++)
		v[i] = (int)i;
	err = demo_host_to_device(mm, v, bytes, &dev, &mirror);
	printf("  written by plain stores, migrated to the device: %ld of %lu pages resident (mincore)\n",
	       demo_host_resident(v, bytes), bytes / PAGE);
	faults = demo_host_faults();
	bad = err ? n : demo_host_loop(v, n);
	faults = demo_host_faults() - faults;
	printf("  loop over every int: %lu faults for %lu pages, %ld pages resident after\n", faults, bytes / PAGE,
	       demo_host_resident(v, bytes));
	if (mirror)
		hmmu_dmirror_close(mirror);
	hmmu_mmput(mm);
	if (dev)
		hmmu_dmirror_device_destroy(dev);
	printf("host run: %s (%lu bad ints)\n", bad || err ? "MISMATCH" : "verified", bad);
	return bad || err ? 1 : 0;
}
