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
 * evicted the same way, a run of frames at a time, chosen by a clock with
 * second chance over per-frame referenced bits (hmmu_dmirror_evict_lru).
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
	if (hmmu_migrate_device_range(src, pfn, n))
		return 0;
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

/*
 * Evict the run of @n frames of @chunk from frame @off and count what
 * moved in *@evicted.  Caller holds release_lock.
 */
static void dmirror_clock_evict(struct dmirror_chunk *chunk, unsigned long off, unsigned long n,
				unsigned long *evicted, unsigned long *src, unsigned long *dst)
{
	if (n)
		*evicted += dmirror_evict_batch(hmmu_pgmap_pfn_first(&chunk->pagemap) + off, n, src, dst);
}

/*
 * The clock sweep over @chunk from frame @off: a referenced frame loses
 * its bit (second chance) and ends the current run; runs of frames not
 * referenced, starting at a frame in use, are evicted (free frames inside
 * a run cost nothing: hmmu_migrate_device_range skips them), until
 * *@evicted plus the run's pages reach @want or the chunk ends.  Caller
 * holds release_lock.  Returns the frames the hand passed.
 */
static unsigned long dmirror_clock_sweep(struct dmirror_chunk *chunk, unsigned long off, unsigned long want,
					 unsigned long *evicted, unsigned long *src, unsigned long *dst)
{
	unsigned long first = hmmu_pgmap_pfn_first(&chunk->pagemap), n = hmmu_pgmap_nr_pages(&chunk->pagemap);
	unsigned long i, run = 0, cold = 0;

	for (i = off; i < n && *evicted + cold < want; i++) {
		bool used = hmmu_page_ref_count(hmmu_pfn_to_page(first + i)) > 0;
		bool referenced = atomic_load_explicit(&chunk->referenced[i], memory_order_relaxed);

		if (referenced)
			atomic_store_explicit(&chunk->referenced[i], 0, memory_order_relaxed);
		if ((referenced && used) || run == DMIRROR_EVICT_BATCH) {
			dmirror_clock_evict(chunk, i - run, run, evicted, src, dst);
			run = cold = 0;
		}
		if (!(referenced && used) && (run || used)) {
			run++;
			cold += used;
		}
	}
	dmirror_clock_evict(chunk, i - run, run, evicted, src, dst);
	return i - off;
}

/*
 * Evict about @want of the least recently used pages of @mdevice (clock
 * with second chance over every frame, the hand kept across calls): pages
 * the engine touched since the hand last passed survive.  Busy pages (in
 * a migration, pinned) are skipped.  Stops after two turns of the hand.
 * Context: no hmmu or dmirror lock held, no mmap_lock, no page locked by
 * the caller (takes release_lock; the core takes page locks and invalidates
 * mirrors).  Returns the pages evicted (maybe fewer than @want).
 */
unsigned long hmmu_dmirror_evict_lru(struct hmmu_dmirror_device *mdevice, unsigned long want)
{
	unsigned long src[DMIRROR_EVICT_BATCH], dst[DMIRROR_EVICT_BATCH], evicted = 0, scanned = 0, total;

	pthread_mutex_lock(&mdevice->release_lock);
	total = atomic_load(&mdevice->nr_chunks) * mdevice->chunk_pages;
	while (total && evicted < want && scanned < 2 * total) {
		unsigned long hand = mdevice->clock_hand % total, n;
		struct dmirror_chunk *chunk = hmmu_dmirror_chunk_get(mdevice, hand / mdevice->chunk_pages);

		if (!chunk)
			break;
		n = dmirror_clock_sweep(chunk, hand % mdevice->chunk_pages, want, &evicted, src, dst);
		scanned += n;
		mdevice->clock_hand = hand + n;
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
