// SPDX-License-Identifier: MIT
/*
 * dmirror devices (spec 5.1, 5.5): fake device memory in chunks, each one
 * pagemap whose owner is the device, created on demand up to max_chunks;
 * a free list of device pages linked through their zone_device_data; page
 * allocation and page_free; the counters and the allocation-failure knob.
 *
 * A private device page holds its data in a *backing page*, a system page
 * allocated with it and pointed to by the device page's zone_device_data
 * (the device's memory is not addressable, the fake device keeps it in
 * RAM).  A coherent device page is its own storage: hmmu maps coherent
 * memory for the CPU, so hmmu_page_address() works on it.
 */
#include <stdlib.h>

#include "dmirror_priv.h"

#define DMIRROR_DEFAULT_CHUNK (256UL << 20)
#define DMIRROR_DEFAULT_MAX_CHUNKS 16UL
#define DMIRROR_CHUNK_SLOTS_STEP 16UL

static void dmirror_page_free(struct hmmu_page *page);

static const struct hmmu_dev_pagemap_ops dmirror_private_ops = {
	.page_free = dmirror_page_free,
	.migrate_to_ram = hmmu_dmirror_migrate_to_ram,
};

static const struct hmmu_dev_pagemap_ops dmirror_coherent_ops = {
	.page_free = dmirror_page_free,
};

/* ------------------------------------------------------------------ */
/* Counters and the fail knob                                          */
/* ------------------------------------------------------------------ */

/* Add @n to the counter at byte offset @field of the stats.  Takes mdevice->lock. */
void hmmu_dmirror_stat_add(struct hmmu_dmirror_device *mdevice, size_t field, unsigned long n)
{
	pthread_mutex_lock(&mdevice->lock);
	*(unsigned long *)((char *)&mdevice->stats + field) += n;
	pthread_mutex_unlock(&mdevice->lock);
}

/* Consume one failure of the knob @knob if armed.  Caller holds mdevice->lock. */
static bool dmirror_fail_take_locked(struct hmmu_dmirror_device *mdevice, atomic_long *knob)
{
	long left = atomic_load_explicit(knob, memory_order_relaxed);

	if (!left)
		return false;
	if (left > 0)
		atomic_store_explicit(knob, left - 1, memory_order_relaxed);
	mdevice->stats.alloc_failures++;
	return true;
}

/*
 * True if the knob says this system-page allocation (migration back) must
 * fail.  Lock-free while the knob is not armed.
 */
bool hmmu_dmirror_fail_system_alloc(struct hmmu_dmirror_device *mdevice)
{
	bool fail;

	if (!atomic_load_explicit(&mdevice->fail_system, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&mdevice->lock);
	fail = dmirror_fail_take_locked(mdevice, &mdevice->fail_system);
	pthread_mutex_unlock(&mdevice->lock);
	return fail;
}

/*
 * Arm the knob.  Device allocations cover page allocation for migration
 * to the device; system allocations cover migration back (MIGRATE_TO_SYS,
 * migrate_to_ram).  Eviction ignores the knob: close, RELEASE and destroy
 * must get every page back.  Returns 0 or -EINVAL.
 */
int hmmu_dmirror_device_fail_allocs(struct hmmu_dmirror_device *mdevice, enum hmmu_dmirror_fail_kind kind,
				    long count)
{
	if (!mdevice || count < -1)
		return -EINVAL;
	if (kind != HMMU_DMIRROR_FAIL_DEVICE_ALLOC && kind != HMMU_DMIRROR_FAIL_SYSTEM_ALLOC)
		return -EINVAL;
	pthread_mutex_lock(&mdevice->lock);
	atomic_store(kind == HMMU_DMIRROR_FAIL_DEVICE_ALLOC ? &mdevice->fail_device : &mdevice->fail_system, count);
	pthread_mutex_unlock(&mdevice->lock);
	return 0;
}

int hmmu_dmirror_device_get_stats(struct hmmu_dmirror_device *mdevice, struct hmmu_dmirror_device_stats *stats)
{
	if (!mdevice || !stats)
		return -EINVAL;
	pthread_mutex_lock(&mdevice->lock);
	*stats = mdevice->stats;
	pthread_mutex_unlock(&mdevice->lock);
	stats->chunks = atomic_load(&mdevice->nr_chunks);
	return 0;
}

/* Pages allocated and not yet freed (page_free ran). */
unsigned long hmmu_dmirror_device_in_use(struct hmmu_dmirror_device *mdevice)
{
	unsigned long n;

	pthread_mutex_lock(&mdevice->lock);
	n = mdevice->stats.pages_in_use;
	pthread_mutex_unlock(&mdevice->lock);
	return n;
}

void *hmmu_dmirror_device_owner(struct hmmu_dmirror_device *mdevice)
{
	return mdevice;
}

/* ------------------------------------------------------------------ */
/* Free list                                                           */
/* ------------------------------------------------------------------ */

/* One more page fits without a reservation.  Caller holds mdevice->lock. */
static bool dmirror_room_locked(const struct hmmu_dmirror_device *mdevice)
{
	return !mdevice->capacity || mdevice->stats.pages_in_use + mdevice->reserved < mdevice->capacity;
}

/*
 * Pop a free device page (counted as allocated), or NULL (none free, or
 * no room in the capacity unless @reserved).  Caller holds mdevice->lock.
 */
static struct hmmu_page *dmirror_free_pop_locked(struct hmmu_dmirror_device *mdevice, bool reserved)
{
	struct hmmu_page *page = mdevice->free_pages;

	if (!page || (!reserved && !dmirror_room_locked(mdevice)))
		return NULL;
	mdevice->free_pages = page->zone_device_data;
	page->zone_device_data = NULL;
	mdevice->stats.calloc++;
	if (++mdevice->stats.pages_in_use > mdevice->stats.pages_high_water)
		mdevice->stats.pages_high_water = mdevice->stats.pages_in_use;
	return page;
}

/*
 * page_free: the last reference of one of our pages is gone (any context
 * that puts pages; never under a page-table lock).  Free the backing page,
 * and give the device page back to the free list unless its chunk is being
 * removed (then the kernel driver does not count it in cfree either).
 * Takes mdevice->lock, a leaf lock nobody holds across a page put.
 */
static void dmirror_page_free(struct hmmu_page *page)
{
	struct dmirror_chunk *chunk = dmirror_container_of(page->pgmap, struct dmirror_chunk, pagemap);
	struct hmmu_dmirror_device *mdevice = chunk->mdevice;
	struct hmmu_page *rpage = dmirror_backing_page(page);

	if (rpage && rpage != page)
		hmmu_put_page(rpage);
	page->zone_device_data = NULL;
	pthread_mutex_lock(&mdevice->lock);
	mdevice->stats.pages_in_use--;
	if (!chunk->remove) {
		mdevice->stats.cfree++;
		page->zone_device_data = mdevice->free_pages;
		mdevice->free_pages = page;
	}
	pthread_mutex_unlock(&mdevice->lock);
}

/* ------------------------------------------------------------------ */
/* Chunks                                                              */
/* ------------------------------------------------------------------ */

/* A new chunk: its pagemap set up, its pages not yet on the free list.  NULL on failure. */
static struct dmirror_chunk *dmirror_chunk_create(struct hmmu_dmirror_device *mdevice)
{
	struct dmirror_chunk *chunk = calloc(1, sizeof(*chunk) + mdevice->chunk_pages * sizeof(chunk->stamp[0]));

	if (!chunk)
		return NULL;
	chunk->mdevice = mdevice;
	chunk->pagemap.type = mdevice->type;
	chunk->pagemap.range.start = 0;
	chunk->pagemap.range.end = mdevice->chunk_pages * DMIRROR_PAGE - 1;
	chunk->pagemap.nr_range = 1;
	chunk->pagemap.ops = dmirror_is_private(mdevice) ? &dmirror_private_ops : &dmirror_coherent_ops;
	chunk->pagemap.owner = mdevice;
	if (hmmu_memremap_pages(&chunk->pagemap)) {
		free(chunk);
		return NULL;
	}
	return chunk;
}

/* Room for one more chunk pointer.  Caller holds devmem_lock.  0 or -ENOMEM. */
static int dmirror_chunk_slots_grow(struct hmmu_dmirror_device *mdevice)
{
	unsigned long slots = mdevice->chunk_slots + DMIRROR_CHUNK_SLOTS_STEP;
	struct dmirror_chunk **chunks;

	if (atomic_load(&mdevice->nr_chunks) < mdevice->chunk_slots)
		return 0;
	chunks = realloc(mdevice->chunks, slots * sizeof(*chunks));
	if (!chunks)
		return -ENOMEM;
	mdevice->chunks = chunks;
	mdevice->chunk_slots = slots;
	return 0;
}

/*
 * Publish @chunk: append it and push its pages on the free list, lowest
 * frame on top.  With @pagep, hand out one page at once (within the
 * capacity unless @reserved).  Caller holds devmem_lock (and made room).
 */
static void dmirror_chunk_publish(struct hmmu_dmirror_device *mdevice, struct dmirror_chunk *chunk,
				  struct hmmu_page **pagep, bool reserved)
{
	unsigned long first = hmmu_pgmap_pfn_first(&chunk->pagemap);

	pthread_mutex_lock(&mdevice->lock);
	for (unsigned long i = mdevice->chunk_pages; i-- > 0;) {
		struct hmmu_page *page = hmmu_pfn_to_page(first + i);

		page->zone_device_data = mdevice->free_pages;
		mdevice->free_pages = page;
	}
	if (pagep)
		*pagep = dmirror_free_pop_locked(mdevice, reserved);
	pthread_mutex_unlock(&mdevice->lock);
	mdevice->chunks[atomic_load(&mdevice->nr_chunks)] = chunk;
	atomic_fetch_add(&mdevice->nr_chunks, 1);
}

/*
 * Add a chunk (the kernel driver's allocate_chunk), or, with @pagep, get a
 * page from a chunk another thread just added (@reserved as for
 * dmirror_free_pop_locked; *@pagep may stay NULL when the capacity is
 * reached meanwhile).  Context: takes devmem_lock
 * (memremap may sleep) and mdevice->lock; no other dmirror lock held.
 * Returns 0, or -ENOMEM: max_chunks reached, a RELEASE in progress, or
 * out of memory or node slots.
 */
static int dmirror_chunk_add(struct hmmu_dmirror_device *mdevice, struct hmmu_page **pagep, bool reserved)
{
	struct dmirror_chunk *chunk;
	bool releasing;
	int err = 0;

	pthread_mutex_lock(&mdevice->devmem_lock);
	pthread_mutex_lock(&mdevice->lock);
	releasing = mdevice->releasing;
	if (pagep && !releasing)
		*pagep = dmirror_free_pop_locked(mdevice, reserved);
	pthread_mutex_unlock(&mdevice->lock);
	if (pagep && *pagep)
		;	/* a chunk another thread just added had room */
	else if (releasing || atomic_load(&mdevice->nr_chunks) >= mdevice->max_chunks)
		err = -ENOMEM;
	else if (dmirror_chunk_slots_grow(mdevice) || !(chunk = dmirror_chunk_create(mdevice)))
		err = -ENOMEM;
	else
		dmirror_chunk_publish(mdevice, chunk, pagep, reserved);
	pthread_mutex_unlock(&mdevice->devmem_lock);
	return err;
}

/* Chunk @i, or NULL past the end.  Takes devmem_lock (the array may grow meanwhile). */
struct dmirror_chunk *hmmu_dmirror_chunk_get(struct hmmu_dmirror_device *mdevice, unsigned long i)
{
	struct dmirror_chunk *chunk = NULL;

	pthread_mutex_lock(&mdevice->devmem_lock);
	if (i < atomic_load(&mdevice->nr_chunks))
		chunk = mdevice->chunks[i];
	pthread_mutex_unlock(&mdevice->devmem_lock);
	return chunk;
}

/* ------------------------------------------------------------------ */
/* Capacity and page allocation                                        */
/* ------------------------------------------------------------------ */

/*
 * Reserve up to @want pages of capacity for one engine fault (all of them
 * when the capacity is unlimited).  The caller then allocates at most that
 * many pages with hmmu_dmirror_page_alloc(..., true) and gives the whole
 * reservation back with hmmu_dmirror_unreserve() once the pages it got are
 * counted in use.  Until then they count twice, which only makes others
 * see the device fuller than it is: pages_in_use never exceeds capacity.
 * Takes mdevice->lock.  Returns the pages reserved (maybe 0).
 */
unsigned long hmmu_dmirror_reserve(struct hmmu_dmirror_device *mdevice, unsigned long want)
{
	unsigned long used, got = want;

	if (!mdevice->capacity)
		return want;
	pthread_mutex_lock(&mdevice->lock);
	used = mdevice->stats.pages_in_use + mdevice->reserved;
	if (used >= mdevice->capacity)
		got = 0;
	else if (got > mdevice->capacity - used)
		got = mdevice->capacity - used;
	mdevice->reserved += got;
	pthread_mutex_unlock(&mdevice->lock);
	return got;
}

/* Give back @n pages of a reservation (all of it, used or not).  Takes mdevice->lock. */
void hmmu_dmirror_unreserve(struct hmmu_dmirror_device *mdevice, unsigned long n)
{
	if (!mdevice->capacity || !n)
		return;
	pthread_mutex_lock(&mdevice->lock);
	mdevice->reserved -= n;
	pthread_mutex_unlock(&mdevice->lock);
}

/*
 * A device page for a migration destination (spec 5.5): initialised by
 * hmmu_zone_device_page_init (refcount 1, locked), with its backing page
 * in zone_device_data for a private device, and stamped used now for the
 * LRU.  @reserved: the caller holds a reservation for it (engine faults);
 * otherwise the page must fit in the capacity beside every reservation.
 * The caller owns the reference (migration's finalize drops it).  Context:
 * no dmirror lock held (may add a chunk).  Returns NULL when the knob
 * fails it, no system page is left for the backing page, or the device is
 * full (capacity or chunks).
 */
struct hmmu_page *hmmu_dmirror_page_alloc(struct hmmu_dmirror_device *mdevice, bool reserved)
{
	struct hmmu_page *rpage = NULL, *dpage;
	bool fail, full;

	if (dmirror_is_private(mdevice) && !(rpage = hmmu_alloc_page(HMMU_GFP_KERNEL)))
		return NULL;
	pthread_mutex_lock(&mdevice->lock);
	full = !reserved && !dmirror_room_locked(mdevice);
	fail = !full && (dmirror_fail_take_locked(mdevice, &mdevice->fail_device) ||
			 hmmu_fault_inject_should_fail(HMMU_FAULT_DEVICE_ALLOC));
	dpage = fail || full ? NULL : dmirror_free_pop_locked(mdevice, reserved);
	pthread_mutex_unlock(&mdevice->lock);
	if (!dpage && (fail || full || dmirror_chunk_add(mdevice, &dpage, reserved) || !dpage)) {
		if (rpage)
			hmmu_put_page(rpage);
		return NULL;
	}
	hmmu_zone_device_page_init(dpage);
	dpage->zone_device_data = rpage;
	dmirror_page_touch(dpage);
	return dpage;
}

/* ------------------------------------------------------------------ */
/* Devices                                                             */
/* ------------------------------------------------------------------ */

/* Apply defaults to @cfg and check it.  0 or -EINVAL. */
static int dmirror_config_check(const struct hmmu_dmirror_device_config *cfg, struct hmmu_dmirror_device *md)
{
	unsigned long chunk = cfg && cfg->chunk_size ? cfg->chunk_size : DMIRROR_DEFAULT_CHUNK;
	unsigned long around = cfg && cfg->fault_around_pages ? cfg->fault_around_pages : 1;

	md->type = cfg && cfg->type ? cfg->type : HMMU_MEMORY_DEVICE_PRIVATE;
	md->max_chunks = cfg && cfg->max_chunks ? cfg->max_chunks : DMIRROR_DEFAULT_MAX_CHUNKS;
	md->chunk_pages = chunk >> HMMU_PAGE_SHIFT;
	md->fault_around = around;
	md->capacity = cfg ? cfg->capacity_pages : 0;
	if (md->type != HMMU_MEMORY_DEVICE_PRIVATE && md->type != HMMU_MEMORY_DEVICE_COHERENT)
		return -EINVAL;
	if (chunk & (HMMU_PMD_SIZE - 1) || md->chunk_pages > (1UL << 32))
		return -EINVAL;
	if (around > DMIRROR_MAX_FAULT_AROUND || (around & (around - 1)))
		return -EINVAL;
	return 0;
}

static void dmirror_device_free(struct hmmu_dmirror_device *mdevice)
{
	pthread_mutex_destroy(&mdevice->lock);
	pthread_mutex_destroy(&mdevice->mirrors_lock);
	pthread_mutex_destroy(&mdevice->devmem_lock);
	pthread_mutex_destroy(&mdevice->release_lock);
	free(mdevice->chunks);
	free(mdevice);
}

/*
 * Create a device with its first chunk (the kernel driver allocates one at
 * init).  Returns 0, -EINVAL (bad config, hmmu_init() not called: the
 * pagemap is refused) or -ENOMEM.
 */
int hmmu_dmirror_device_create(const struct hmmu_dmirror_device_config *cfg, struct hmmu_dmirror_device **devp)
{
	struct hmmu_dmirror_device *mdevice;
	struct dmirror_chunk *chunk;

	if (!devp || !(mdevice = calloc(1, sizeof(*mdevice))))
		return devp ? -ENOMEM : -EINVAL;
	if (dmirror_config_check(cfg, mdevice)) {
		free(mdevice);
		return -EINVAL;
	}
	pthread_mutex_init(&mdevice->release_lock, NULL);
	pthread_mutex_init(&mdevice->devmem_lock, NULL);
	pthread_mutex_init(&mdevice->mirrors_lock, NULL);
	pthread_mutex_init(&mdevice->lock, NULL);
	chunk = dmirror_chunk_create(mdevice);
	if (!chunk || dmirror_chunk_slots_grow(mdevice)) {
		if (chunk)
			hmmu_memunmap_pages(&chunk->pagemap);
		free(chunk);
		dmirror_device_free(mdevice);
		return -ENOMEM;
	}
	dmirror_chunk_publish(mdevice, chunk, NULL, false);
	*devp = mdevice;
	return 0;
}

/*
 * Destroy a device: evict every page to system memory (waiting for pages
 * busy at the moment), remove every chunk, free the device.  Context: no
 * hmmu lock held; must not race with hmmu_dmirror_open() on this device.
 * Returns 0, -EBUSY (a mirror is open or still closing; nothing done) or
 * -EINVAL.
 */
int hmmu_dmirror_device_destroy(struct hmmu_dmirror_device *mdevice)
{
	unsigned long mirrors;

	if (!mdevice)
		return -EINVAL;
	pthread_mutex_lock(&mdevice->mirrors_lock);
	mirrors = mdevice->nr_mirrors;
	pthread_mutex_unlock(&mdevice->mirrors_lock);
	if (mirrors)
		return -EBUSY;
	hmmu_dmirror_device_remove_chunks(mdevice);
	dmirror_device_free(mdevice);
	return 0;
}
