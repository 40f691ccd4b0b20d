/* SPDX-License-Identifier: MIT */
/*
 * hmmu: heterogeneous memory management in user space.
 *
 * Umbrella header.  Call hmmu_init() once before anything else; every
 * call returning int or long returns a negative errno value on failure.
 */
#ifndef HMMU_HMMU_H
#define HMMU_HMMU_H

#include <hmmu/page.h>
#include <hmmu/mm.h>
#include <hmmu/mmu_notifier.h>
#include <hmmu/memremap.h>
#include <hmmu/hmm.h>
#include <hmmu/migrate.h>
#include <hmmu/stat.h>
#include <hmmu/fault_inject.h>
#include <hmmu/trace.h>
#include <hmmu/host.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Library configuration; zero fields take the defaults. */
struct hmmu_config {
	/* Bytes of system RAM (node 0), rounded up to 2 MiB.  Default 1 GiB. */
	unsigned long ram_size;
	/* Bound on retry loops (range fault, migration waits), ms.  Default 1000. */
	unsigned int retry_timeout_ms;
	/* Address space of each host mm (HMMU_MM_HOST), rounded up to 2 MiB.  Default 256 MiB. */
	unsigned long host_arena_size;
};

/**
 * hmmu_init() - set up system RAM (node 0) and the zero page; with the
 * fault-injection build option, apply HMMU_FAULT_INJECT from the
 * environment (<hmmu/fault_inject.h>).
 * @cfg: configuration, or NULL for defaults.
 *
 * Returns 0, -EINVAL for a RAM size below 4 MiB or above 1 TiB, a host
 * arena size below 2 MiB or above 1 TiB or a malformed HMMU_FAULT_INJECT,
 * -EBUSY if already initialised, or -ENOMEM when the reservation fails.
 */
HMMU_EXPORT int hmmu_init(const struct hmmu_config *cfg);

/**
 * hmmu_exit() - release system RAM.  Every mm must be destroyed first (its
 * last user reference dropped) and every page freed; returns 0 (also when
 * not initialised), or -EBUSY (nothing released) otherwise.
 */
HMMU_EXPORT int hmmu_exit(void);

/** hmmu_retry_timeout_ms() - the configured bound on retry loops, in ms. */
HMMU_EXPORT unsigned int hmmu_retry_timeout_ms(void);

#ifdef __cplusplus
}
#endif
#endif /* HMMU_HMMU_H */
