// SPDX-License-Identifier: MIT
/*
 * Eviction of a device's memory (spec 3.11, 5.2, 5.6 RELEASE, 5.10): every
 * page in use, wherever it is mapped and whichever mirror put it there, is
 * collected with hmmu_migrate_device_range() (the core unmaps it through
 * the reverse map, inside a CLEAR invalidation per mapping, so every mirror
 * drops its entries), copied from its backing page into a new system page
 * (WRITE kept), committed and finalized.
 *
 * The kernel driver evicts once; pages busy at that moment (locked by a
 * migration in flight, holding an extra reference) are skipped by the core
 * and would make the pagemap's removal wait forever.  dmirror retries:
 *   close             until no page is in use, or hmmu_retry_timeout_ms()
 *                     has passed (pages of other mirrors may keep being
 *                     created meanwhile; what is left stays on the device)
 *   RELEASE, destroy  until no page is in use (new allocations are refused
 *                     meanwhile), then hmmu_memunmap_pages() on each chunk
 * Eviction ignores the allocation-failure knob: its system pages come from
 * hmmu_alloc_page(), and only a truly exhausted allocator delays it.
 *
 * Under a capacity (hmmu_dmirror_exec), the least recently used pages are
 * evicted the same way, a run of frames at a time, chosen by per-frame
 * stamps of last use (hmmu_dmirror_evict_lru).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmirror_priv.h"

/* Frames per hmmu_migrate_device_range() call. */
#define DMIRROR_EVICT_BATCH 512UL

/*
 * Evict the pages in use among frames [pfn, pfn + n) (n <= the batch).
 * Context: release_lock held (no chunk can go away), no other dmirror lock,
 * no mmap_lock.  Returns the pages moved to system memory.
 */
static unsigned long dmirror_evict_batch(unsigned long pfn, unsigned long n, unsigned long *src, unsigned long *dst)
{
	unsigned long moved = 0;

	memset(dst, 0, n * sizeof(*dst));
	hmmu_trace_begin(HMMU_TRACE_EVICT, pfn, pfn + n, n);
	if (hmmu_migrate_device_range(src, pfn, n)) {
		hmmu_trace_end(HMMU_TRACE_EVICT, pfn, pfn + n, 0);
		return 0;
	}
	for (unsigned long i = 0; i < n; i++) {
		struct hmmu_page *spage = hmmu_migrate_pfn_to_page(src[i]), *dpage;

		if (!spage || !(src[i] & HMMU_MIGRATE_PFN_MIGRATE) || !(dpage = hmmu_alloc_page(HMMU_GFP_KERNEL)))
			continue;
		hmmu_lock_page(dpage);
		hmmu_dmirror_copy_page(hmmu_page_address(dpage), hmmu_page_address(dmirror_backing_page(spage)), true);
		dst[i] = hmmu_migrate_pfn(hmmu_page_to_pfn(dpage)) | (src[i] & HMMU_MIGRATE_PFN_WRITE);
	}
	hmmu_dmirror_copy_fence();
	hmmu_migrate_device_pages(src, dst, n);
	for (unsigned long i = 0; i < n; i++)
		moved += dst[i] && (src[i] & HMMU_MIGRATE_PFN_MIGRATE);
	hmmu_migrate_device_finalize(src, dst, n);
	hmmu_trace_end(HMMU_TRACE_EVICT, pfn, pfn + n, moved);
	return moved;
}

/* One pass over every frame of every chunk.  Caller holds release_lock.  Returns pages moved. */
static unsigned long dmirror_evict_pass(struct hmmu_dmirror_device *mdevice, unsigned long *src, unsigned long *dst)
{
	struct dmirror_chunk *chunk;
	unsigned long moved = 0;

	for (unsigned long c = 0; (chunk = hmmu_dmirror_chunk_get(mdevice, c)); c++) {
		unsigned long first = hmmu_pgmap_pfn_first(&chunk->pagemap);
		unsigned long n = hmmu_pgmap_nr_pages(&chunk->pagemap);

		for (unsigned long off = 0; off < n; off += DMIRROR_EVICT_BATCH)
			moved += dmirror_evict_batch(first + off, n - off < DMIRROR_EVICT_BATCH ? n - off : DMIRROR_EVICT_BATCH,
						     src, dst);
	}
	return moved;
}

/*
 * Evict every page of @mdevice, retrying busy pages: with @until_free
 * until none is in use, else also stopping once hmmu_retry_timeout_ms()
 * has passed.  Context: release_lock held, no other dmirror lock, no
 * mmap_lock (the core takes reverse-map and page-table locks).
 */
void hmmu_dmirror_device_evict(struct hmmu_dmirror_device *mdevice, bool until_free)
{
	uint64_t deadline = hmmu_dmirror_now_ms() + hmmu_retry_timeout_ms();
	unsigned long src[DMIRROR_EVICT_BATCH], dst[DMIRROR_EVICT_BATCH];
	const struct timespec pause = { .tv_nsec = 1000000 };

	while (hmmu_dmirror_device_in_use(mdevice)) {
		unsigned long moved = dmirror_evict_pass(mdevice, src, dst);

		dmirror_stat_add(mdevice, evicted, moved);
		if (!until_free && hmmu_dmirror_now_ms() > deadline)
			break;
		if (!moved)
			nanosleep(&pause, NULL);
	}
}

/* ------------------------------------------------------------------ */
/* LRU eviction (the capacity of hmmu_dmirror_exec)                    */
/* ------------------------------------------------------------------ */

/* Age classes: 0 for a page used at the current clock, else 1 + log2 of its age. */
#define DMIRROR_LRU_CLASSES 33

/* The age class of frame @i of @chunk at clock @now, or -1 for a free frame. */
static int dmirror_lru_class(struct dmirror_chunk *chunk, unsigned long i, uint32_t now)
{
	int32_t age;

	if (hmmu_page_ref_count(hmmu_pfn_to_page(hmmu_pgmap_pfn_first(&chunk->pagemap) + i)) <= 0)
		return -1;
	age = (int32_t)(now - atomic_load_explicit(&chunk->stamp[i], memory_order_relaxed));
	return age <= 0 ? 0 : 32 - __builtin_clz((uint32_t)age);
}

/*
 * The youngest age class to evict for about @want pages to go: the pages
 * in use counted per class, oldest first (0: any page).  Caller holds
 * release_lock.
 */
static int dmirror_lru_threshold(struct hmmu_dmirror_device *mdevice, uint32_t now, unsigned long want)
{
	unsigned long count[DMIRROR_LRU_CLASSES] = { 0 }, sum = 0;
	struct dmirror_chunk *chunk;
	int c;

	for (unsigned long k = 0; (chunk = hmmu_dmirror_chunk_get(mdevice, k)); k++)
		for (unsigned long i = 0; i < mdevice->chunk_pages; i++)
			if ((c = dmirror_lru_class(chunk, i, now)) >= 0)
				count[c]++;
	for (c = DMIRROR_LRU_CLASSES - 1; c > 0 && (sum += count[c]) < want; c--)
		;
	return c;
}

/*
 * Evict the run of @n frames of @chunk from frame @off and count what
 * moved in *@evicted.  Caller holds release_lock.
 */
static void dmirror_lru_evict(struct dmirror_chunk *chunk, unsigned long off, unsigned long n,
			      unsigned long *evicted, unsigned long *src, unsigned long *dst)
{
	if (n)
		*evicted += dmirror_evict_batch(hmmu_pgmap_pfn_first(&chunk->pagemap) + off, n, src, dst);
}

/*
 * The sweep over @chunk from frame @off: runs of frames whose pages are
 * of class @old or older are evicted (a younger page ends a run; free
 * frames inside a run cost nothing: hmmu_migrate_device_range skips them)
 * until *@evicted plus the run's pages reach @want or the chunk ends.
 * Caller holds release_lock.  Returns the frames passed.
 */
static unsigned long dmirror_lru_sweep(struct dmirror_chunk *chunk, unsigned long off, int old, uint32_t now,
				       unsigned long want, unsigned long *evicted, unsigned long *src,
				       unsigned long *dst)
{
	unsigned long n = hmmu_pgmap_nr_pages(&chunk->pagemap), i, run = 0, pages = 0;

	for (i = off; i < n && *evicted + pages < want; i++) {
		int c = dmirror_lru_class(chunk, i, now);

		if ((c >= 0 && c < old) || run == DMIRROR_EVICT_BATCH) {
			dmirror_lru_evict(chunk, i - run, run, evicted, src, dst);
			run = pages = 0;
		}
		if (c >= old || (run && c < 0)) {
			run++;
			pages += c >= 0;
		}
	}
	dmirror_lru_evict(chunk, i - run, run, evicted, src, dst);
	return i - off;
}

/*
 * Evict about @want of the least recently used pages of @mdevice.  Each
 * frame carries the device's lru_clock of its last use (allocation or
 * engine access); the clock advances with every engine fault.  A first
 * pass over the frames finds the youngest age class (log2 of the age)
 * that still has to go; a second, from a hand kept across calls, evicts
 * runs of frames of that class or older, so equally old pages go round
 * robin.  Busy pages (in a migration, pinned) are skipped.  Cost: two
 * passes over the device's frames per call, none on the access path but
 * one relaxed load and store.  Context: no hmmu or dmirror lock held, no
 * mmap_lock, no page locked by the caller (takes release_lock; the core
 * takes page locks and invalidates mirrors).  Returns the pages evicted
 * (maybe fewer than @want).
 */
unsigned long hmmu_dmirror_evict_lru(struct hmmu_dmirror_device *mdevice, unsigned long want)
{
	unsigned long src[DMIRROR_EVICT_BATCH], dst[DMIRROR_EVICT_BATCH], evicted = 0, scanned = 0, total;
	uint32_t now = atomic_load_explicit(&mdevice->lru_clock, memory_order_relaxed);
	int old;

	pthread_mutex_lock(&mdevice->release_lock);
	total = atomic_load(&mdevice->nr_chunks) * mdevice->chunk_pages;
	old = total ? dmirror_lru_threshold(mdevice, now, want) : 0;
	while (total && evicted < want && scanned < total) {
		unsigned long hand = mdevice->lru_hand % total, n;
		struct dmirror_chunk *chunk = hmmu_dmirror_chunk_get(mdevice, hand / mdevice->chunk_pages);

		if (!chunk)
			break;
		n = dmirror_lru_sweep(chunk, hand % mdevice->chunk_pages, old, now, want, &evicted, src, dst);
		scanned += n;
		mdevice->lru_hand = hand + n;
	}
	pthread_mutex_unlock(&mdevice->release_lock);
	dmirror_stat_add(mdevice, lru_evicted, evicted);
	return evicted;
}

/* ------------------------------------------------------------------ */
/* Chunk removal                                                       */
/* ------------------------------------------------------------------ */

/* Mark every chunk removed and refuse allocations.  Caller holds release_lock. */
static void dmirror_release_begin(struct hmmu_dmirror_device *mdevice)
{
	pthread_mutex_lock(&mdevice->devmem_lock);
	pthread_mutex_lock(&mdevice->lock);
	mdevice->releasing = true;
	for (unsigned long i = 0; i < atomic_load(&mdevice->nr_chunks); i++)
		mdevice->chunks[i]->remove = true;
	mdevice->free_pages = NULL;
	pthread_mutex_unlock(&mdevice->lock);
	pthread_mutex_unlock(&mdevice->devmem_lock);
}

/* Every page is free: remove the chunks, accept allocations again.  Caller holds release_lock. */
static void dmirror_release_end(struct hmmu_dmirror_device *mdevice)
{
	pthread_mutex_lock(&mdevice->devmem_lock);
	for (unsigned long i = 0; i < atomic_load(&mdevice->nr_chunks); i++) {
		hmmu_memunmap_pages(&mdevice->chunks[i]->pagemap);
		free(mdevice->chunks[i]);
	}
	free(mdevice->chunks);
	mdevice->chunks = NULL;
	mdevice->chunk_slots = 0;
	atomic_store(&mdevice->nr_chunks, 0);
	pthread_mutex_lock(&mdevice->lock);
	mdevice->releasing = false;
	pthread_mutex_unlock(&mdevice->lock);
	pthread_mutex_unlock(&mdevice->devmem_lock);
}

/*
 * Remove every chunk of @mdevice (RELEASE, destroy): refuse new pages,
 * evict every page (waiting for busy ones), unmap each pagemap, free the
 * chunks.  Later allocations create chunks afresh.  Context: no hmmu lock
 * held, not from a callback or page_free.  Returns 0.
 */
int hmmu_dmirror_device_remove_chunks(struct hmmu_dmirror_device *mdevice)
{
	pthread_mutex_lock(&mdevice->release_lock);
	dmirror_release_begin(mdevice);
	hmmu_dmirror_device_evict(mdevice, true);
	dmirror_release_end(mdevice);
	pthread_mutex_unlock(&mdevice->release_lock);
	return 0;
}
