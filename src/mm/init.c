// SPDX-License-Identifier: MIT
/*
 * Library set-up: system RAM (node 0), the zero page, configuration.
 */
#include <stdlib.h>

#include "internal.h"

#define HMMU_DEFAULT_RAM (1UL << 30)
#define HMMU_DEFAULT_RETRY_MS 1000u
#define HMMU_DEFAULT_HOST_ARENA (256UL << 20)

/* Written by hmmu_init()/hmmu_exit() only, which callers serialise with all else. */
static struct hmmu_page *hmmu_zero;
/* 0 when unset: no node covers pfn 0 (they start at HMMU_FIRST_PFN). */
static unsigned long hmmu_zero_pfn;
static unsigned int hmmu_retry_ms = HMMU_DEFAULT_RETRY_MS;
static unsigned long hmmu_host_arena_bytes = HMMU_DEFAULT_HOST_ARENA;
static bool hmmu_initialised;

/*
 * Apply HMMU_FAULT_INJECT from the environment (with the build option).
 * A malformed value undoes the initialisation: -EINVAL.
 */
static int hmmu_init_fault_inject(void)
{
	const char *spec = getenv("HMMU_FAULT_INJECT");
	int ret = spec ? hmmu_fault_inject_parse(spec) : 0;

	if (ret == -EINVAL) {
		hmmu_exit();
		return ret;
	}
	return 0;
}

int hmmu_init(const struct hmmu_config *cfg)
{
	unsigned long ram = cfg && cfg->ram_size ? cfg->ram_size : HMMU_DEFAULT_RAM;
	int nid;

	if (hmmu_initialised)
		return -EBUSY;
	unsigned long arena = cfg && cfg->host_arena_size ? cfg->host_arena_size : HMMU_DEFAULT_HOST_ARENA;

	if (ram < (4UL << 20) || ram > (1UL << 40))
		return -EINVAL;
	if (arena < HMMU_PMD_SIZE || arena > (1UL << 40))
		return -EINVAL;
	ram = HMMU_ALIGN_UP(ram, HMMU_PMD_SIZE);
	nid = hmmu_node_create_ram(ram >> HMMU_PAGE_SHIFT);
	if (nid < 0)
		return nid;
	HMMU_BUG_ON(nid != 0);
	hmmu_zero = hmmu_alloc_page(HMMU_GFP_ZERO);
	if (!hmmu_zero) {
		hmmu_node_destroy(0);
		return -ENOMEM;
	}
	hmmu_page_set_flag(hmmu_zero, HMMU_PG_reserved);
	hmmu_page_set_flag(hmmu_zero, HMMU_PG_uptodate);
	hmmu_zero_pfn = hmmu_page_to_pfn(hmmu_zero);
	hmmu_retry_ms = cfg && cfg->retry_timeout_ms ? cfg->retry_timeout_ms : HMMU_DEFAULT_RETRY_MS;
	hmmu_host_arena_bytes = HMMU_ALIGN_UP(arena, HMMU_PMD_SIZE);
	hmmu_initialised = true;
	return hmmu_init_fault_inject();
}

int hmmu_exit(void)
{
	struct hmmu_node *ram = hmmu_node_get(0);

	if (!hmmu_initialised)
		return 0;
	if (hmmu_mm_nr_live())
		return -EBUSY;
	/* Run deferred frees (anon_vmas, notifier subscriptions) first. */
	hmmu_rcu_barrier();
	/* Everything but the zero page must be back in the allocator. */
	if (atomic_load(&ram->nr_free) + 1 != (long)ram->nr_pages)
		return -EBUSY;
	hmmu_page_clear_flag(hmmu_zero, HMMU_PG_reserved);
	hmmu_put_page(hmmu_zero);
	hmmu_zero = NULL;
	hmmu_zero_pfn = 0;
	hmmu_initialised = false;
	return hmmu_node_destroy(0);
}

bool hmmu_is_initialised(void)
{
	return hmmu_initialised;
}

unsigned int hmmu_retry_timeout_ms(void)
{
	return hmmu_retry_ms;
}

unsigned long hmmu_host_arena_size(void)
{
	return hmmu_host_arena_bytes;
}

struct hmmu_page *hmmu_zero_page(void)
{
	return hmmu_zero;
}

bool hmmu_is_zero_pfn(unsigned long pfn)
{
	return hmmu_zero_pfn && pfn == hmmu_zero_pfn;
}
