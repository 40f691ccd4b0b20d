/* SPDX-License-Identifier: MIT */
/*
 * Device memory: pagemaps of device-private and device-coherent frames.
 *
 * A driver describes its memory with a struct hmmu_dev_pagemap and calls
 * hmmu_memremap_pages(): hmmu creates a node of frames for it, each with a
 * struct hmmu_page whose `pgmap` points back at the pagemap.  Every frame
 * starts free (refcount 0) and belongs to the driver, which keeps its own
 * free list and hands frames out with hmmu_zone_device_page_init().  When
 * the last reference of an allocated frame goes, hmmu gives it back to the
 * driver through ops->page_free(); device frames never enter hmmu's page
 * allocator.  hmmu_memunmap_pages() waits until every frame is free.
 *
 *   DEVICE_PRIVATE  the CPU cannot address the memory (hmmu_page_address()
 *                   is NULL).  Such frames appear in CPU page tables only as
 *                   device-private entries; a CPU access calls
 *                   ops->migrate_to_ram() to bring the data back.  The
 *                   driver keeps the contents, indexed by frame number.
 *   DEVICE_COHERENT the CPU can address the memory (hmmu maps it): pages
 *                   are mapped with ordinary entries and read directly.
 *
 * See docs/device-memory.md for the page lifetime and the migrate_to_ram
 * contract.
 */
#ifndef HMMU_MEMREMAP_H
#define HMMU_MEMREMAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <hmmu/mm.h>
#include <hmmu/page.h>

#ifdef __cplusplus
extern "C" {
#endif

enum hmmu_memory_type {
	HMMU_MEMORY_DEVICE_PRIVATE = 1,
	HMMU_MEMORY_DEVICE_COHERENT = 2,
};

/*
 * A range of (device-)physical addresses in bytes, end inclusive (the
 * kernel's struct range).  Named hmmu_phys_range, not hmmu_range: the
 * mechanical renaming of the kernel's struct hmm_range already owns
 * struct hmmu_range (include/hmmu/hmm.h).
 */
struct hmmu_phys_range {
	unsigned long start;
	unsigned long end;
};

struct hmmu_vm_fault;

/*
 * The driver's callbacks.
 *
 * page_free(page): the last reference of an allocated frame was dropped.
 *   hmmu has already cleared its `mapping` and anon-exclusive mark; the
 *   driver returns the frame to its free list and releases what backs it.
 *   Called exactly once per allocation, from any context that drops a
 *   reference (unmap, teardown, migration, put_page), possibly with the
 *   mmap_lock held but never with a page-table lock held: it must not
 *   sleep on a lock held around page puts, and must not take the mmap_lock.
 * migrate_to_ram(vmf): the CPU touched a device-private entry of this
 *   pagemap.  vmf->page is the device page, locked by hmmu and referenced;
 *   the driver must not unlock it (hmmu does, after the call).  The driver
 *   migrates at least the page at vmf->address back to system memory and
 *   returns 0 (also when nothing needed migrating: the access is retried),
 *   or HMMU_VM_FAULT_SIGBUS / HMMU_VM_FAULT_OOM when the data cannot come
 *   back.  The mmap_lock is held for read.  Device-private pagemaps only.
 */
struct hmmu_dev_pagemap_ops {
	void (*page_free)(struct hmmu_page *page);
	hmmu_vm_fault_t (*migrate_to_ram)(struct hmmu_vm_fault *vmf);
};

/*
 * A device pagemap, embedded in the driver's structure.  The driver fills
 * `type`, the length of `range` (range.end - range.start + 1 bytes, a
 * non-zero multiple of HMMU_PAGE_SIZE), `nr_range` (1), `ops` and `owner`
 * before hmmu_memremap_pages(); hmmu then chooses where the frames live
 * (the kernel's request_free_mem_region step) and writes the chosen
 * range back.  The fields marked "core" belong to hmmu.
 *
 * `owner` identifies the memory's device (or interconnect domain): pages
 * whose pagemap owner equals a caller's dev_private_owner / pgmap_owner
 * are that caller's own.  Several pagemaps may share an owner.
 *
 * Locking: the driver's fields are read-only once the pagemap is live.
 * `lock` protects `dying` changes and the sleep of hmmu_memunmap_pages()
 * on `done`; `ref` is an atomic (see src/memremap/memremap.c).
 */
struct hmmu_dev_pagemap {
	enum hmmu_memory_type type;
	struct hmmu_phys_range range;
	int nr_range;
	const struct hmmu_dev_pagemap_ops *ops;
	void *owner;
	/* core: */
	int nid;			/* core: the node of the frames */
	atomic_long ref;		/* core: allocated frames + transient holders */
	atomic_bool dying;		/* core: hmmu_memunmap_pages() has begun */
	pthread_mutex_t lock;		/* core: dying, and the sleep on `done` */
	pthread_cond_t done;		/* core: signalled when `ref` reaches 0 */
	void *cpu_base;			/* core: coherent memory's mapping, or NULL */
	size_t cpu_len;			/* core */
};

/**
 * hmmu_memremap_pages() - create the frames of @pgmap.
 *
 * Validates @pgmap, chooses a free frame range of the requested length,
 * creates a node of that many frames (device-coherent: backed by memory
 * hmmu maps, so hmmu_page_address() works; device-private: no CPU address),
 * points every frame's `pgmap` at @pgmap and writes the chosen range back
 * into pgmap->range.  All frames start free (refcount 0).  May sleep.
 *
 * Returns 0, or -EINVAL (NULL @pgmap or ops, nr_range != 1, unknown type,
 * missing page_free, missing migrate_to_ram for a private pagemap, NULL
 * owner, a length that is zero, not a multiple of HMMU_PAGE_SIZE or above
 * 2^32 frames, hmmu_init() not called) or -ENOMEM (out of memory or of
 * node slots).  On failure nothing is left behind.
 */
HMMU_EXPORT int hmmu_memremap_pages(struct hmmu_dev_pagemap *pgmap);

/**
 * hmmu_memunmap_pages() - remove the frames of a live @pgmap.
 *
 * Marks the pagemap dying, then sleeps until every frame has been freed
 * (each allocated frame holds a pagemap reference until its page_free has
 * run), then removes the node.  The driver must first evict or release all
 * of its pages, or this never returns.  Must not be called from page_free
 * or with any hmmu lock held.  Only for a pagemap that hmmu_memremap_pages()
 * accepted; afterwards it may be set up again.  NULL, a zero-initialised
 * pagemap that was never accepted, or one already removed (its nid is then
 * -1) is ignored.
 */
HMMU_EXPORT void hmmu_memunmap_pages(struct hmmu_dev_pagemap *pgmap);

/**
 * hmmu_zone_device_page_init() - hand out the free device frame @page:
 * takes a pagemap reference, locks the page and sets the refcount to 1 (the
 * kernel's zone_device_page_init, which sets the refcount first: locking
 * first keeps a concurrent hmmu_migrate_device_range() from taking a page
 * still being set up).  The caller unlocks it when it is ready (migration's
 * finalize does, for a migration destination).  Warns (stderr) when the
 * pagemap is dying.  @page must be a free frame of a live pagemap: NULL is
 * ignored; a frame of no pagemap, or one in use, is a driver bug that
 * stops hmmu (HMMU_BUG) rather than corrupt the page.
 */
HMMU_EXPORT void hmmu_zone_device_page_init(struct hmmu_page *page);

/** hmmu_is_zone_device_page() - @page is a frame of a device pagemap. */
static inline bool hmmu_is_zone_device_page(const struct hmmu_page *page)
{
	return page && page->pgmap;
}

/** hmmu_is_device_private_page() - @page is a device-private frame. */
static inline bool hmmu_is_device_private_page(const struct hmmu_page *page)
{
	return hmmu_is_zone_device_page(page) && page->pgmap->type == HMMU_MEMORY_DEVICE_PRIVATE;
}

/** hmmu_is_device_coherent_page() - @page is a device-coherent frame. */
static inline bool hmmu_is_device_coherent_page(const struct hmmu_page *page)
{
	return hmmu_is_zone_device_page(page) && page->pgmap->type == HMMU_MEMORY_DEVICE_COHERENT;
}

/**
 * hmmu_pgmap_pfn_first() - the frame number of @pgmap's first frame;
 * hmmu_pgmap_nr_pages() - its number of frames.  For a live pagemap.
 */
static inline unsigned long hmmu_pgmap_pfn_first(const struct hmmu_dev_pagemap *pgmap)
{
	return pgmap->range.start >> HMMU_PAGE_SHIFT;
}
static inline unsigned long hmmu_pgmap_nr_pages(const struct hmmu_dev_pagemap *pgmap)
{
	return (pgmap->range.end - pgmap->range.start + 1) >> HMMU_PAGE_SHIFT;
}

#ifdef __cplusplus
}
#endif
#endif /* HMMU_MEMREMAP_H */
