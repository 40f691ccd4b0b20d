/* SPDX-License-Identifier: MIT */
/*
 * Page frames: struct hmmu_page, the page allocator and page references.
 *
 * Every page frame of every memory node has one struct hmmu_page.  Fields
 * marked "core" belong to hmmu and are read by drivers only through the
 * calls below; drivers own `zone_device_data` of their device pages and may
 * read `pgmap`.
 *
 * Every call below that takes a page takes NULL as nothing to do: it
 * returns 0, false or NULL (hmmu_page_to_pfn: ~0UL).
 */
#ifndef HMMU_PAGE_H
#define HMMU_PAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <urcu/list.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HMMU_PAGE_SHIFT 12
#define HMMU_PAGE_SIZE (1UL << HMMU_PAGE_SHIFT)
#define HMMU_PAGE_MASK (~(HMMU_PAGE_SIZE - 1))
#define HMMU_PMD_SHIFT 21
#define HMMU_PMD_SIZE (1UL << HMMU_PMD_SHIFT)
#define HMMU_PMD_MASK (~(HMMU_PMD_SIZE - 1))
#define HMMU_PMD_ORDER (HMMU_PMD_SHIFT - HMMU_PAGE_SHIFT)
/* Largest buddy order: 2^9 pages, one PMD-mapped huge page. */
#define HMMU_MAX_ORDER 9

#define HMMU_EXPORT __attribute__((visibility("default")))

struct hmmu_dev_pagemap;

/* Page flag bits (struct hmmu_page::flags), set and tested atomically. */
enum hmmu_pageflags {
	HMMU_PG_locked,		/* page lock held (hmmu_lock_page) */
	HMMU_PG_waiters,	/* someone sleeps on this page's wait bucket */
	HMMU_PG_dirty,		/* contents differ from backing store */
	HMMU_PG_uptodate,	/* contents valid (set before a page is mapped) */
	HMMU_PG_anon_exclusive,	/* anon page mapped by exactly one process */
	HMMU_PG_head,		/* first page of a compound page */
	HMMU_PG_buddy,		/* first page of a free buddy block */
	HMMU_PG_reserved,	/* never freed (the zero page) */
};

/*
 * One page frame.  A compound page of order n is 2^n frames; the head carries
 * the reference count, the order and the entire (PMD) mapcount; each frame,
 * tail or not, carries its own PTE mapcount.
 *
 * Locking: `flags`, `_refcount`, `_mapcount`, `_entire_mapcount` and
 * `_pincount` are atomics.  `lru` and `private` belong to whoever owns the
 * page: the node's free lists (under the node lock) while free, else the
 * allocating caller or driver.  `mapping` and `index` are set while the page
 * is locked or not yet visible to anyone else, and read by reverse-map walks
 * holding a reference.
 */
struct hmmu_page {
	atomic_ulong flags;		/* core: HMMU_PG_* bits */
	atomic_int _refcount;		/* core: head only; 0 = free */
	atomic_int _mapcount;		/* core: PTE-level mappings of this frame */
	atomic_int _entire_mapcount;	/* core: head only; PMD-level mappings */
	atomic_int _pincount;		/* core: head only; FOLL_PIN references */
	unsigned char compound_order;	/* core: head only */
	struct hmmu_page *compound_head; /* core: tail pages: their head; else NULL */
	struct cds_list_head lru;	/* owner's list linkage (buddy free list) */
	unsigned long private;		/* owner's word (buddy: free block order) */
	void *mapping;			/* core: anon_vma | HMMU_PAGE_MAPPING_ANON */
	unsigned long index;		/* core: page offset within `mapping` */
	struct hmmu_dev_pagemap *pgmap;	/* device pages: their pagemap */
	void *zone_device_data;		/* device pages: the driver's word */
};

#define HMMU_PAGE_MAPPING_ANON 0x1UL

/* Allocation flags (the kernel's gfp_t, as far as hmmu needs it). */
typedef unsigned int hmmu_gfp_t;
#define HMMU_GFP_KERNEL 0x0u	/* may sleep; nothing special */
#define HMMU_GFP_ZERO 0x1u	/* zero the contents */
#define HMMU_GFP_COMP 0x2u	/* order > 0: make a compound page */
#define HMMU_GFP_HIGHUSER_MOVABLE HMMU_GFP_KERNEL

/**
 * hmmu_alloc_pages_node() - allocate 2^@order contiguous frames from node @nid.
 * Returns the first frame with refcount 1, or NULL when the node has no free
 * run of that order, @nid is not a node with an allocator, @order >
 * HMMU_MAX_ORDER or @gfp has unknown bits.  With HMMU_GFP_COMP an order > 0 block is one compound page;
 * without it only the first frame holds the reference and the caller frees
 * the block with hmmu_free_pages(page, order).
 */
HMMU_EXPORT struct hmmu_page *hmmu_alloc_pages_node(int nid, hmmu_gfp_t gfp, unsigned int order);
/** hmmu_alloc_pages() - hmmu_alloc_pages_node() on system RAM (node 0). */
HMMU_EXPORT struct hmmu_page *hmmu_alloc_pages(hmmu_gfp_t gfp, unsigned int order);
/** hmmu_alloc_page() - one frame of system RAM, refcount 1, or NULL. */
HMMU_EXPORT struct hmmu_page *hmmu_alloc_page(hmmu_gfp_t gfp);
/**
 * hmmu_free_pages() - drop the reference of a block from hmmu_alloc_pages*()
 * without HMMU_GFP_COMP; frees the whole block when it was the last.
 */
HMMU_EXPORT void hmmu_free_pages(struct hmmu_page *page, unsigned int order);

/** hmmu_compound_head() - the head frame of @page's compound page (or @page). */
static inline struct hmmu_page *hmmu_compound_head(struct hmmu_page *page)
{
	return page->compound_head ? page->compound_head : page;
}

/** hmmu_get_page() - take a reference on @page's (compound) page; it must have one already. */
HMMU_EXPORT void hmmu_get_page(struct hmmu_page *page);
/** hmmu_get_page_unless_zero() - take a reference unless the page is free; true on success. */
HMMU_EXPORT bool hmmu_get_page_unless_zero(struct hmmu_page *page);
/**
 * hmmu_put_page() - drop a reference.  The last put frees the page: a system
 * page returns to its node's allocator, a device page to its driver through
 * pgmap->ops->page_free().  May be called from any context that holds no
 * node lock.
 */
HMMU_EXPORT void hmmu_put_page(struct hmmu_page *page);
/** hmmu_page_ref_count() - current reference count of @page's compound page. */
HMMU_EXPORT int hmmu_page_ref_count(const struct hmmu_page *page);
/** hmmu_page_mapcount() - number of page-table entries mapping this frame. */
HMMU_EXPORT int hmmu_page_mapcount(struct hmmu_page *page);
/** hmmu_page_maybe_dma_pinned() - true if a FOLL_PIN reference is held. */
HMMU_EXPORT bool hmmu_page_maybe_dma_pinned(struct hmmu_page *page);
/** hmmu_page_is_anon() - the page belongs to an anonymous mapping. */
HMMU_EXPORT bool hmmu_page_is_anon(const struct hmmu_page *page);
/** hmmu_compound_order() - order of @page's compound page (0 for a base page). */
HMMU_EXPORT unsigned int hmmu_compound_order(struct hmmu_page *page);

/** hmmu_page_to_pfn() - the frame number of @page. */
HMMU_EXPORT unsigned long hmmu_page_to_pfn(const struct hmmu_page *page);
/** hmmu_pfn_to_page() - the frame of @pfn, or NULL if no node covers it. */
HMMU_EXPORT struct hmmu_page *hmmu_pfn_to_page(unsigned long pfn);
/**
 * hmmu_page_address() - the CPU address of the frame's contents through the
 * library's direct map, or NULL for frames the CPU cannot address
 * (device-private memory).
 */
HMMU_EXPORT void *hmmu_page_address(const struct hmmu_page *page);

/** hmmu_zero_page() - the shared zero page (never freed, never written). */
HMMU_EXPORT struct hmmu_page *hmmu_zero_page(void);
/** hmmu_is_zero_pfn() - @pfn is the zero page's frame. */
HMMU_EXPORT bool hmmu_is_zero_pfn(unsigned long pfn);

/**
 * hmmu_lock_page() - take the page lock, sleeping while another holder has it.
 * hmmu_trylock_page() - take it only if free; true on success.
 * hmmu_unlock_page() - release it and wake sleepers.
 * Page locks nest outside the PTE-table lock: under a PTE-table lock only
 * hmmu_trylock_page() may be used.
 */
HMMU_EXPORT void hmmu_lock_page(struct hmmu_page *page);
HMMU_EXPORT bool hmmu_trylock_page(struct hmmu_page *page);
HMMU_EXPORT void hmmu_unlock_page(struct hmmu_page *page);
/** hmmu_page_locked() - the lock bit is set (a snapshot, for assertions). */
HMMU_EXPORT bool hmmu_page_locked(struct hmmu_page *page);
/** hmmu_wait_on_page_locked() - sleep until the page is unlocked; takes no reference. */
HMMU_EXPORT void hmmu_wait_on_page_locked(struct hmmu_page *page);

/* Atomic flag helpers. */
static inline bool hmmu_page_test_flag(const struct hmmu_page *page, enum hmmu_pageflags bit)
{
	return atomic_load_explicit(&page->flags, memory_order_acquire) & (1UL << bit);
}
static inline void hmmu_page_set_flag(struct hmmu_page *page, enum hmmu_pageflags bit)
{
	atomic_fetch_or_explicit(&page->flags, 1UL << bit, memory_order_release);
}
static inline void hmmu_page_clear_flag(struct hmmu_page *page, enum hmmu_pageflags bit)
{
	atomic_fetch_and_explicit(&page->flags, ~(1UL << bit), memory_order_release);
}

/**
 * hmmu_node_nr_free_pages() - free frames in node @nid's allocator, or a
 * negative errno (-EINVAL) when @nid names no node with an allocator.
 */
HMMU_EXPORT long hmmu_node_nr_free_pages(int nid);
/** hmmu_node_nr_pages() - frames in node @nid, or -EINVAL. */
HMMU_EXPORT long hmmu_node_nr_pages(int nid);

#ifdef __cplusplus
}
#endif
#endif /* HMMU_PAGE_H */
