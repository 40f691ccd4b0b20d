/* SPDX-License-Identifier: MIT */
/*
 * dmirror's private structures, shared by the files of the driver:
 *
 *   pagetable.c  the device page table (a radix tree keyed by virtual page number)
 *   device.c     devices, chunks of device memory, page allocation, page_free
 *   evict.c      eviction of a device's pages, RELEASE, chunk removal
 *   mirror.c     open/close, the invalidate callback, the fault helper
 *   migrate.c    migration to the device and back, migrate_to_ram
 *   cmd.c        the commands and the direct calls
 *   exec.c       device execution: workers, device loads/stores, device faults
 *   exclusive.c  EXCLUSIVE and CHECK_EXCLUSIVE
 *   mmap.c       the device's MIXEDMAP mapping
 *   copy.c       page copies (streaming stores for large transfers)
 *
 * dmirror is a driver: it includes only the public headers (include/hmmu/),
 * never src/internal.h.
 *
 * Lock order, outer to inner (all pthread mutexes):
 *   mdevice->release_lock  (RELEASE, destroy, close and LRU eviction: one
 *                           eviction at a time)
 *   mdevice->devmem_lock   (chunk array, chunk creation)
 *   mdevice->mirrors_lock  (list of mirrors)
 *   mirror->mutex          (the driver lock of spec 1.8: device page table)
 *   mdevice->lock          (free list, counters, fail knob)
 * Outside all of them: the mmap_lock and page locks of the core (dmirror
 * takes a mirror mutex inside invalidations and migrations, never the other
 * way round).  mdevice->lock is a leaf: page_free takes it from any put.
 * Nothing is allocated with a core lock held except table nodes (malloc)
 * under mirror->mutex, which recurses into nothing in user space.
 */
#ifndef HMMU_DRIVERS_DMIRROR_PRIV_H
#define HMMU_DRIVERS_DMIRROR_PRIV_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hmmu/dmirror.h>
#include <hmmu/hmmu.h>

#define DMIRROR_PAGE HMMU_PAGE_SIZE
#define DMIRROR_PUD_SHIFT (HMMU_PMD_SHIFT + 9)

/* Pages per step of the commands (the kernel driver's 64-entry arrays). */
#define DMIRROR_BATCH 64UL
/* Largest migrate_to_ram window (config fault_around_pages). */
#define DMIRROR_MAX_FAULT_AROUND 512UL

#define dmirror_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Transfers of at least this many pages copy with streaming stores (copy.c). */
#define DMIRROR_STREAM_PAGES 1024UL
/* Migration steps of at least this many pages do. */
#define DMIRROR_STREAM_STEP 16UL

void hmmu_dmirror_copy_page(void *to, const void *from, bool stream);
void hmmu_dmirror_copy_fence(void);

/* ------------------------------------------------------------------ */
/* Device page table (pagetable.c)                                      */
/* ------------------------------------------------------------------ */

/*
 * An entry: the address of a struct hmmu_page, its low two bits a tag and
 * bit 2 (DMIRROR_ENTRY_LOCAL) set when the page is one of the device's own
 * pages (private or coherent): the device page itself, whose data lives in
 * dmirror_backing_page().  Without LOCAL, the page is a system page (or
 * another device's coherent page) holding the data.  0: no entry.
 * Entries hold no page reference: the invalidate callback keeps them valid.
 */
typedef uintptr_t dmirror_entry_t;
#define DMIRROR_TAG_READ 0UL
#define DMIRROR_TAG_ATOMIC 1UL	/* exclusive (EXCLUSIVE command); readable, not writable */
#define DMIRROR_TAG_WRITE 3UL
#define DMIRROR_TAG_MASK 3UL
#define DMIRROR_ENTRY_LOCAL 4UL
#define DMIRROR_ENTRY_BITS 7UL

_Static_assert(_Alignof(struct hmmu_page) > DMIRROR_ENTRY_BITS, "entry bits overlap page addresses");

static inline dmirror_entry_t dmirror_entry_make(struct hmmu_page *page, unsigned long tag)
{
	return (uintptr_t)page | tag;
}
static inline struct hmmu_page *dmirror_entry_page(dmirror_entry_t e)
{
	return (struct hmmu_page *)(e & ~DMIRROR_ENTRY_BITS);
}
static inline unsigned long dmirror_entry_tag(dmirror_entry_t e)
{
	return e & DMIRROR_TAG_MASK;
}
static inline bool dmirror_entry_local(dmirror_entry_t e)
{
	return e & DMIRROR_ENTRY_LOCAL;
}

/*
 * Four levels of 512 slots (36 bits of virtual page number, more than the
 * 35 of HMMU_TASK_SIZE); a leaf maps 2 MiB of address space.  Nodes are
 * allocated on insertion and freed when their last slot empties.
 */
#define DMIRROR_PT_BITS 9
#define DMIRROR_PT_SLOTS (1UL << DMIRROR_PT_BITS)
#define DMIRROR_PT_LEVELS 4
#define DMIRROR_PT_MAX_VPN ((1UL << (DMIRROR_PT_BITS * DMIRROR_PT_LEVELS)) - 1)

struct dmirror_pt_node {
	unsigned long used;			/* non-zero slots */
	uintptr_t slot[DMIRROR_PT_SLOTS];	/* leaf: entries; inner: child nodes */
};

/* All fields under the owning mirror's mutex. */
struct hmmu_dmirror_pt {
	struct dmirror_pt_node *root;		/* NULL while empty */
	unsigned long nr_entries;
	unsigned long nr_nodes;
};

void hmmu_dmirror_pt_init(struct hmmu_dmirror_pt *pt);
void hmmu_dmirror_pt_destroy(struct hmmu_dmirror_pt *pt);
dmirror_entry_t hmmu_dmirror_pt_lookup(const struct hmmu_dmirror_pt *pt, unsigned long vpn);
int hmmu_dmirror_pt_store(struct hmmu_dmirror_pt *pt, unsigned long vpn, dmirror_entry_t entry);
void hmmu_dmirror_pt_erase(struct hmmu_dmirror_pt *pt, unsigned long first, unsigned long last);
const uintptr_t *hmmu_dmirror_pt_leaf(const struct hmmu_dmirror_pt *pt, unsigned long vpn);

/* ------------------------------------------------------------------ */
/* Devices and chunks (device.c)                                       */
/* ------------------------------------------------------------------ */

/*
 * A chunk of device memory: one pagemap.  A device page's zone_device_data
 * is the next free page while it is free (under mdevice->lock), its backing
 * page while it is allocated (private memory; NULL for coherent memory).  `remove` is set (under
 * mdevice->lock) when RELEASE or destroy starts removing it: page_free then
 * stops returning its pages to the free list.  The pagemap's frames stay
 * until hmmu_memunmap_pages().
 */
struct dmirror_chunk {
	struct hmmu_dev_pagemap pagemap;
	struct hmmu_dmirror_device *mdevice;
	bool remove;				/* under mdevice->lock */
	/*
	 * The LRU stamp of each frame: the device's lru_clock when the page
	 * was allocated or last accessed by the engine.  Written without a
	 * lock, read by the eviction under release_lock.  Relaxed atomics: a
	 * lost update only makes the LRU less exact.
	 */
	_Atomic uint32_t stamp[];
};

struct hmmu_dmirror_device {
	/* Set at creation, read-only afterwards. */
	enum hmmu_memory_type type;
	unsigned long chunk_pages;		/* frames per chunk */
	unsigned long max_chunks;
	unsigned long fault_around;		/* pages per migrate_to_ram window */
	unsigned long capacity;			/* pages in use at most; 0: unlimited */

	/* The LRU's time: advanced by every engine fault (relaxed atomics). */
	_Atomic uint32_t lru_clock;

	/*
	 * Serialises eviction: RELEASE and destroy (eviction + chunk removal),
	 * close, and the LRU eviction of the engine; lru_hand (the next
	 * frame the LRU sweep looks at, an index over all chunks' frames) is
	 * under it.
	 */
	pthread_mutex_t release_lock;
	unsigned long lru_hand;

	/*
	 * devmem_lock protects chunks[] (which realloc may move), nr_chunks and
	 * chunk_slots: chunk creation and removal.  nr_chunks is also read
	 * without it, as a statistic.  A chunk pointer read under it stays
	 * valid while release_lock is held (only removal frees chunks).
	 */
	pthread_mutex_t devmem_lock;
	struct dmirror_chunk **chunks;
	_Atomic unsigned long nr_chunks;	/* written under devmem_lock */
	unsigned long chunk_slots;		/* grows by 16, as the kernel driver's */

	/* mirrors_lock protects the list of open mirrors and nr_mirrors. */
	pthread_mutex_t mirrors_lock;
	struct hmmu_dmirror *mirrors;
	unsigned long nr_mirrors;

	/*
	 * lock protects the free list (linked through zone_device_data),
	 * `releasing`, `reserved`, changes of the fail knob and the counters
	 * in stats except `chunks` (derived from nr_chunks).  A leaf lock.
	 * The knob is atomic so the migration path can see it unarmed without
	 * the lock.  `reserved` is the capacity promised to engine faults in
	 * flight (hmmu_dmirror_reserve): stats.pages_in_use + reserved never
	 * exceeds a non-zero capacity once allocations are checked against it.
	 */
	pthread_mutex_t lock;
	struct hmmu_page *free_pages;
	unsigned long reserved;
	bool releasing;				/* RELEASE/destroy: refuse new chunks and pages */
	atomic_long fail_device, fail_system;	/* the knob: >0 count, -1 always, 0 off */
	struct hmmu_dmirror_device_stats stats;
};

/* The device of a dmirror device page (any chunk of any dmirror device). */
static inline struct hmmu_dmirror_device *dmirror_page_device(const struct hmmu_page *page)
{
	return dmirror_container_of(page->pgmap, struct dmirror_chunk, pagemap)->mdevice;
}

/* The page holding a device page's data: its backing page (private) or itself (coherent). */
static inline struct hmmu_page *dmirror_backing_page(struct hmmu_page *page)
{
	return hmmu_is_device_private_page(page) ? (struct hmmu_page *)page->zone_device_data : page;
}

static inline bool dmirror_is_private(const struct hmmu_dmirror_device *mdevice)
{
	return mdevice->type == HMMU_MEMORY_DEVICE_PRIVATE;
}

/* The chunk of one of our device pages. */
static inline struct dmirror_chunk *dmirror_page_chunk(const struct hmmu_page *page)
{
	return dmirror_container_of(page->pgmap, struct dmirror_chunk, pagemap);
}

/*
 * Mark device page @page used now (its LRU stamp: one relaxed load of the
 * clock, and a store only when the stamp is older).  Any context.
 */
static inline void dmirror_page_touch(const struct hmmu_page *page)
{
	struct dmirror_chunk *chunk = dmirror_page_chunk(page);
	_Atomic uint32_t *stamp = &chunk->stamp[hmmu_page_to_pfn(page) - hmmu_pgmap_pfn_first(page->pgmap)];
	uint32_t now = atomic_load_explicit(&chunk->mdevice->lru_clock, memory_order_relaxed);

	if (atomic_load_explicit(stamp, memory_order_relaxed) != now)
		atomic_store_explicit(stamp, now, memory_order_relaxed);
}

struct hmmu_page *hmmu_dmirror_page_alloc(struct hmmu_dmirror_device *mdevice, bool reserved);
unsigned long hmmu_dmirror_reserve(struct hmmu_dmirror_device *mdevice, unsigned long want);
void hmmu_dmirror_unreserve(struct hmmu_dmirror_device *mdevice, unsigned long n);
bool hmmu_dmirror_fail_system_alloc(struct hmmu_dmirror_device *mdevice);
void hmmu_dmirror_stat_add(struct hmmu_dmirror_device *mdevice, size_t field, unsigned long n);
#define dmirror_stat_add(md, name, n) \
	hmmu_dmirror_stat_add((md), offsetof(struct hmmu_dmirror_device_stats, name), (n))
struct dmirror_chunk *hmmu_dmirror_chunk_get(struct hmmu_dmirror_device *mdevice, unsigned long i);
unsigned long hmmu_dmirror_device_in_use(struct hmmu_dmirror_device *mdevice);

/* ------------------------------------------------------------------ */
/* Eviction (evict.c)                                                  */
/* ------------------------------------------------------------------ */

void hmmu_dmirror_device_evict(struct hmmu_dmirror_device *mdevice, bool until_free);
unsigned long hmmu_dmirror_evict_lru(struct hmmu_dmirror_device *mdevice, unsigned long want);
int hmmu_dmirror_device_remove_chunks(struct hmmu_dmirror_device *mdevice);

/* ------------------------------------------------------------------ */
/* Mirrors (mirror.c)                                                  */
/* ------------------------------------------------------------------ */

/*
 * A mirror: one "open" of the device, bound to the mm it was opened on.
 * `mutex` is the driver lock of spec 1.8: it protects `pt` and is taken by
 * the invalidate callbacks (the mirror's and its snapshots'); the
 * notifier's sequence is written under it.  `next` is under
 * mdevice->mirrors_lock.  `mdevice` and `mm` are fixed; the notifier keeps
 * a structure reference on `mm` until close removes it.
 */
struct hmmu_dmirror {
	struct hmmu_interval_notifier notifier;
	struct hmmu_dmirror_device *mdevice;
	struct hmmu_mm *mm;
	pthread_mutex_t mutex;
	struct hmmu_dmirror_pt pt;
	struct hmmu_dmirror *next;
};

static inline struct hmmu_mm *dmirror_mm(const struct hmmu_dmirror *mirror)
{
	return mirror->mm;
}

int hmmu_dmirror_range_fault_and_lock(struct hmmu_dmirror *mirror, struct hmmu_range *range);
int hmmu_dmirror_fault(struct hmmu_dmirror *mirror, unsigned long start, unsigned long end, bool write);
void hmmu_dmirror_mm_erase(struct hmmu_dmirror_device *mdevice, struct hmmu_mm *mm,
			   const struct hmmu_migrate_vma *args, const struct hmmu_dmirror *except);
char *hmmu_dmirror_entry_access(dmirror_entry_t e, bool write);
unsigned long hmmu_dmirror_pt_copy(struct hmmu_dmirror *mirror, unsigned long vpn, unsigned long npages,
				   char *buf, bool write);
uint64_t hmmu_dmirror_now_ms(void);

/* ------------------------------------------------------------------ */
/* Commands (cmd.c, exclusive.c)                                       */
/* ------------------------------------------------------------------ */

int hmmu_dmirror_range_check(uint64_t addr, uint64_t npages);
int hmmu_dmirror_read_back(struct hmmu_dmirror *mirror, struct hmmu_dmirror_cmd *cmd);
int hmmu_dmirror_cmd_exclusive(struct hmmu_dmirror *mirror, struct hmmu_dmirror_cmd *cmd);
int hmmu_dmirror_cmd_check_exclusive(struct hmmu_dmirror *mirror, const struct hmmu_dmirror_cmd *cmd);

/* ------------------------------------------------------------------ */
/* Migration (migrate.c)                                               */
/* ------------------------------------------------------------------ */

long hmmu_dmirror_migrate_range(struct hmmu_dmirror *mirror, unsigned long start, unsigned long end,
				unsigned long batch, bool to_device);
long hmmu_dmirror_step_to_device(struct hmmu_dmirror *mirror, struct hmmu_vma *vma, unsigned long start,
				 unsigned long end, unsigned long *src, unsigned long *dst, unsigned long *budget);
hmmu_vm_fault_t hmmu_dmirror_migrate_to_ram(struct hmmu_vm_fault *vmf);

#endif
