// SPDX-License-Identifier: MIT
/*
 * hmmu demo: build an address space step by step and show, after each
 * step, what it holds; verify every byte written at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hmmu/hmmu.h>

#include "hmmu.h"

#define MIB (1UL << 20)
#define PAGE HMMU_PAGE_SIZE

struct demo {
	struct hmmu_mm *mm;
	unsigned long size;		/* bytes of the main mapping */
	long main, ro, huge;		/* mapping addresses */
	long free_before;		/* node-0 free pages before the mm existed */
};

static void demo_die(const char *what, long err)
{
	fprintf(stderr, "hmmu demo: %s failed: %s\n", what, strerror((int)-err));
	exit(1);
}

static void demo_check(const char *what, long err)
{
	if (err < 0)
		demo_die(what, err);
}

/* The byte pattern written to page @pg of the main mapping. */
static unsigned char demo_byte(unsigned long pg)
{
	return (unsigned char)(0x5a ^ (pg * 7));
}

static void demo_row_header(void)
{
	printf("%-34s %5s %9s %9s %6s %7s %7s %6s %10s\n", "step", "VMAs", "present", "zero-pg", "huge",
	       "tables", "faults", "COW", "free MiB");
}

static void demo_row(struct demo *d, const char *step)
{
	struct hmmu_mm_stats st;

	demo_check("stats", hmmu_mm_get_stats(d->mm, &st));
	printf("%-34s %5lu %9lu %9lu %6lu %7lu %7lu %6lu %10.1f\n", step, st.nr_vmas, st.present_pages,
	       st.zero_pages, st.huge_pmds, st.page_tables, st.faults, st.cow_faults,
	       (double)hmmu_node_nr_free_pages(0) * PAGE / MIB);
}

/* Write every 4th page of the main mapping, read every 2nd. */
static void demo_touch(struct demo *d)
{
	unsigned char buf[PAGE];

	for (unsigned long pg = 0; pg < d->size / PAGE; pg += 2) {
		if (pg % 4 == 0) {
			memset(buf, demo_byte(pg), sizeof(buf));
			demo_check("write", hmmu_access(d->mm, d->main + pg * PAGE, buf, PAGE, HMMU_ACCESS_WRITE));
		} else {
			demo_check("read", hmmu_access(d->mm, d->main + pg * PAGE, buf, 1, HMMU_ACCESS_READ));
		}
	}
}

static int demo_print_vma(const struct hmmu_vma *vma, void *arg)
{
	unsigned long f = vma->vm_flags;

	printf("  %#014lx-%#014lx %8lu KiB  %c%c%c%s\n", vma->vm_start, vma->vm_end,
	       (vma->vm_end - vma->vm_start) >> 10, f & HMMU_VM_READ ? 'r' : '-', f & HMMU_VM_WRITE ? 'w' : '-',
	       f & HMMU_VM_EXEC ? 'x' : '-', f & HMMU_VM_HUGEPAGE ? "  hugepage" : "");
	return 0;
}

/* Check every page of the main mapping holds what the steps left there. */
static long demo_verify(struct demo *d, unsigned long hole, unsigned long dropped)
{
	unsigned char buf[PAGE];
	long bad = 0;

	for (unsigned long pg = 0; pg < d->size / PAGE; pg++) {
		unsigned long off = pg * PAGE;
		int err = hmmu_access(d->mm, d->main + off, buf, PAGE, HMMU_ACCESS_READ);
		bool in_hole = off >= hole && off < hole + d->size / 8;
		bool in_drop = off >= dropped && off < dropped + d->size / 8;
		unsigned char want = (pg % 4 == 0 && !in_drop) ? demo_byte(pg) : 0;

		if (in_hole) {
			bad += err != -EFAULT;
			continue;
		}
		bad += err != 0 || buf[0] != want || buf[PAGE - 1] != want;
	}
	return bad;
}

static unsigned long demo_parse_size(int argc, char **argv)
{
	static const struct option opts[] = { { "size", required_argument, NULL, 's' },
					      { "help", no_argument, NULL, 'h' },
					      { 0 } };
	unsigned long mib = 64;
	int c;

	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		if (c == 's' && strtoul(optarg, NULL, 0) >= 8)
			mib = strtoul(optarg, NULL, 0);
		else {
			printf("usage: hmmu demo [--size MIB]\n\n"
			       "  --size MIB  size of the main anonymous mapping (>= 8, default 64)\n");
			exit(c == 'h' ? 0 : 2);
		}
	}
	return mib * MIB;
}

int hmmu_cmd_demo(int argc, char **argv)
{
	struct demo d = { .size = demo_parse_size(argc, argv) };
	int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;
	unsigned char buf[PAGE];
	unsigned long hole, dropped;
	long bad;

	demo_check("hmmu_init", hmmu_init(&(struct hmmu_config){ .ram_size = d.size * 2 + 64 * MIB }));
	d.free_before = hmmu_node_nr_free_pages(0);
	demo_check("hmmu_mm_create", hmmu_mm_create(HMMU_MM_DEFAULT, &d.mm));
	printf("hmmu demo: %lu MiB anonymous mapping, 4 MiB read-only, 8 MiB huge-page eligible\n\n",
	       d.size / MIB);
	demo_row_header();
	demo_row(&d, "empty address space");
	demo_check("mmap", d.main = hmmu_mmap(d.mm, 0, d.size, prot, flags, -1, 0));
	demo_check("mmap", d.ro = hmmu_mmap(d.mm, 0, 4 * MIB, PROT_READ, flags, -1, 0));
	demo_check("mmap", d.huge = hmmu_mmap(d.mm, 0, 10 * MIB, prot, flags, -1, 0));
	d.huge = (d.huge + HMMU_PMD_SIZE - 1) & HMMU_PMD_MASK;
	demo_check("madvise", hmmu_madvise(d.mm, d.huge, 8 * MIB, MADV_HUGEPAGE));
	demo_row(&d, "mapped (nothing touched)");
	demo_touch(&d);
	demo_row(&d, "write 1/4 pages, read 1/4");
	for (unsigned long off = 0; off < 4 * MIB; off += PAGE)
		demo_check("read", hmmu_access(d.mm, d.ro + off, buf, 8, HMMU_ACCESS_READ));
	demo_row(&d, "read the read-only mapping");
	for (unsigned long off = 0; off < 8 * MIB; off += PAGE)
		demo_check("write", hmmu_access(d.mm, d.huge + off, buf, 8, HMMU_ACCESS_WRITE));
	demo_row(&d, "write the huge-page window");
	demo_check("mprotect", hmmu_mprotect(d.mm, d.main + d.size / 4, d.size / 8, PROT_READ));
	demo_row(&d, "mprotect 1/8 of main read-only");
	hole = d.size / 2;
	demo_check("munmap", hmmu_munmap(d.mm, d.main + hole, d.size / 8));
	demo_row(&d, "munmap 1/8 of main (a hole)");
	dropped = d.size / 8 * 6;
	demo_check("madvise", hmmu_madvise(d.mm, d.main + dropped, d.size / 8, MADV_DONTNEED));
	demo_row(&d, "MADV_DONTNEED 1/8 of main");
	demo_check("munmap", hmmu_munmap(d.mm, d.huge + HMMU_PMD_SIZE / 2, HMMU_PMD_SIZE));
	demo_row(&d, "munmap across two huge pages");
	printf("\nVMAs:\n");
	hmmu_mm_for_each_vma(d.mm, demo_print_vma, NULL);
	bad = demo_verify(&d, hole, dropped);
	bad += hmmu_demo_host(d.size / 4 < 16 * MIB ? d.size / 4 : 16 * MIB);	/* tools/demo_host.c */
	hmmu_mmput(d.mm);
	printf("\npages in use after teardown: %ld\n", d.free_before - hmmu_node_nr_free_pages(0));
	printf("result: %s (%ld bad pages)\n", bad ? "MISMATCH" : "verified", bad);
	demo_check("hmmu_exit", hmmu_exit());
	return bad ? 1 : 0;
}
