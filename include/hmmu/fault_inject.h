/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: make chosen allocation and copy sites fail, to test the
 * error paths (in the spirit of the kernel's fault-injection framework).
 *
 * Compiled in only with the build option HMMU_FAULT_INJECT (CMake
 * -DHMMU_FAULT_INJECT=ON, make FAULT_INJECT=1); otherwise every function
 * below but hmmu_fault_inject_site_name() returns -EOPNOTSUPP (false for
 * hmmu_fault_inject_should_fail()) and the sites cost nothing.
 *
 * Each site fails a call when it is the site's Nth call since it was
 * configured (nth), or with probability rate_ppm / 1000000, drawn from a
 * hash of the seed, the site and the call's number (reproducible for one
 * thread; with several threads, which call gets which number varies).
 * A failed call looks exactly like the real failure it imitates.
 *
 * The environment variable HMMU_FAULT_INJECT, read by hmmu_init(),
 * configures the sites the same way as hmmu_fault_inject_parse().
 */
#ifndef HMMU_FAULT_INJECT_H
#define HMMU_FAULT_INJECT_H

#include <stdbool.h>

#include <hmmu/page.h>

#ifdef __cplusplus
extern "C" {
#endif

enum hmmu_fault_site {
	HMMU_FAULT_PAGE_ALLOC,		/* "page_alloc": system pages (hmmu_alloc_pages and its callers) */
	HMMU_FAULT_PT_ALLOC,		/* "pt_alloc": page-table pages */
	HMMU_FAULT_DEVICE_ALLOC,	/* "device_alloc": a driver's device pages (dmirror's allocator) */
	HMMU_FAULT_DEVICE_COPY,		/* "device_copy": a driver's migration copy (a DMA failure:
					 * that page's migration fails, its source stays) */
	HMMU_FAULT_NR
};

/**
 * hmmu_fault_inject_set() - configure @site: fail its @nth call from now
 * (0: none) and each call with probability @rate_ppm per million (0:
 * none; 1000000: every call).  Both 0 turns the site off.  Resets the
 * site's call count.  Any context.  Returns 0, -EINVAL (@site >=
 * HMMU_FAULT_NR, @rate_ppm > 1000000) or -EOPNOTSUPP.
 */
HMMU_EXPORT int hmmu_fault_inject_set(unsigned int site, unsigned long rate_ppm, unsigned long nth);

/** hmmu_fault_inject_seed() - the seed of the rate draws.  0 or -EOPNOTSUPP. */
HMMU_EXPORT int hmmu_fault_inject_seed(unsigned long seed);

/**
 * hmmu_fault_inject_parse() - configure from a string: comma-separated
 * items, each "seed=N" or "<site>:<key>=<value>[:<key>=<value>]" with
 * <site> a name of hmmu_fault_inject_site_name() and <key> "rate" (a
 * probability, 0 to 1, e.g. 0.01) or "nth" (a positive integer); e.g.
 * "page_alloc:rate=0.01,pt_alloc:nth=100,seed=42".  Sites not named are
 * left as they were.  Returns 0, -EINVAL (NULL or malformed: items before
 * the bad one are applied) or -EOPNOTSUPP.
 */
HMMU_EXPORT int hmmu_fault_inject_parse(const char *spec);

/**
 * hmmu_fault_inject_count() - the failures injected at @site since the
 * program started.  Returns the count, -EINVAL (bad @site) or -EOPNOTSUPP.
 */
HMMU_EXPORT long hmmu_fault_inject_count(unsigned int site);

/** hmmu_fault_inject_site_name() - "page_alloc", ...; NULL for @site >= HMMU_FAULT_NR. */
HMMU_EXPORT const char *hmmu_fault_inject_site_name(unsigned int site);

/**
 * hmmu_fault_inject_should_fail() - a site's check, for drivers with
 * sites of their own (dmirror's device_alloc and device_copy): counts the
 * call and says whether to fail it.  Any context, lock-free.  False for a
 * bad @site or without the build option.
 */
HMMU_EXPORT bool hmmu_fault_inject_should_fail(unsigned int site);

#ifdef __cplusplus
}
#endif
#endif /* HMMU_FAULT_INJECT_H */
