// SPDX-License-Identifier: MIT
/*
 * hmmu stat: run a small workload (unless --no-workload), then print every
 * global event counter (include/hmmu/stat.h), one per line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hmmu/dmirror.h>
#include <hmmu/hmmu.h>

#include "hmmu.h"

#define MIB (1UL << 20)
#define PAGE HMMU_PAGE_SIZE
#define NPAGES 512UL		/* pages of the workload's mapping (2 MiB) */

static void stat_check(const char *what, long err)
{
	if (err < 0) {
		fprintf(stderr, "hmmu stat: %s failed: %s\n", what, strerror((int)-err));
		exit(1);
	}
}

/* The CPU writes the even pages and reads the odd ones (zero-page maps). */
static void stat_touch(struct hmmu_mm *mm, long base)
{
	unsigned char buf[64];

	for (unsigned long pg = 0; pg < NPAGES; pg++) {
		unsigned int how = pg % 2 ? HMMU_ACCESS_READ : HMMU_ACCESS_WRITE;

		memset(buf, (int)(pg & 0xff), sizeof(buf));
		stat_check("access", hmmu_access(mm, base + (long)(pg * PAGE), buf, sizeof(buf), how));
	}
}

/*
 * The device half: migrate the first half of the mapping to a dmirror
 * device, read it there and the rest remotely (hmm_range_fault), bring a
 * quarter back explicitly and one page by a CPU fault.
 */
static void stat_device(struct hmmu_mm *mm, long base)
{
	struct hmmu_dmirror_device_config cfg = { .type = HMMU_MEMORY_DEVICE_PRIVATE, .chunk_size = 2 * MIB };
	static unsigned char buf[NPAGES * PAGE];
	struct hmmu_dmirror_device *dev;
	struct hmmu_dmirror *mirror;

	stat_check("dmirror device", hmmu_dmirror_device_create(&cfg, &dev));
	stat_check("dmirror open", hmmu_dmirror_open(dev, mm, &mirror));
	stat_check("migrate to device", hmmu_dmirror_migrate_to_device(mirror, base, NPAGES / 2, 0));
	stat_check("device read", hmmu_dmirror_read(mirror, base, buf, NPAGES, NULL));
	stat_check("migrate to system", hmmu_dmirror_migrate_to_system(mirror, base, NPAGES / 4, 0));
	stat_check("CPU read", hmmu_access(mm, base + (long)(NPAGES / 2 - 1) * PAGE, buf, 8, HMMU_ACCESS_READ));
	stat_check("dmirror close", hmmu_dmirror_close(mirror));
	stat_check("dmirror destroy", hmmu_dmirror_device_destroy(dev));
}

static void stat_workload(void)
{
	struct hmmu_mm *mm;
	long base;

	stat_check("hmmu_mm_create", hmmu_mm_create(HMMU_MM_DEFAULT, &mm));
	base = hmmu_mmap(mm, 0, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	stat_check("mmap", base);
	stat_touch(mm, base);
	stat_device(mm, base);
	stat_check("munmap", hmmu_munmap(mm, base, NPAGES * PAGE));
	hmmu_mmput(mm);
}

static void stat_print(void)
{
	struct hmmu_stat st;
	int width = 0;

	stat_check("hmmu_stat", hmmu_stat(&st));
	for (unsigned int i = 0; hmmu_stat_name(i); i++)
		if ((int)strlen(hmmu_stat_name(i)) > width)
			width = (int)strlen(hmmu_stat_name(i));
	for (unsigned int i = 0; hmmu_stat_name(i); i++)
		printf("%-*s %12lu\n", width, hmmu_stat_name(i), st.v[i]);
}

/* Returns whether to run the workload; exits on --help or a bad option. */
static int stat_parse(int argc, char **argv)
{
	static const struct option opts[] = { { "no-workload", no_argument, NULL, 'n' },
					      { "help", no_argument, NULL, 'h' },
					      { 0 } };
	int c, workload = 1;

	while ((c = getopt_long(argc, argv, "nh", opts, NULL)) != -1) {
		if (c == 'n') {
			workload = 0;
			continue;
		}
		printf("usage: hmmu stat [--no-workload]\n\n"
		       "Runs a small workload (map 2 MiB, touch it, migrate half to a dmirror device\n"
		       "and part back, device reads through hmm_range_fault, munmap), then prints\n"
		       "every global event counter (docs/stat.md), one per line.\n\n"
		       "  --no-workload  print the counters without running the workload\n"
		       "  --help         this text\n");
		exit(c == 'h' ? 0 : 2);
	}
	return workload;
}

int hmmu_cmd_stat(int argc, char **argv)
{
	int workload = stat_parse(argc, argv);

	stat_check("hmmu_init", hmmu_init(&(struct hmmu_config){ .ram_size = 64 * MIB }));
	if (workload)
		stat_workload();
	stat_print();
	stat_check("hmmu_exit", hmmu_exit());
	return 0;
}
