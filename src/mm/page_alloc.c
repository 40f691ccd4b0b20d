// SPDX-License-Identifier: MIT
/*
 * Memory nodes and the buddy allocator.
 *
 * Every node owns a range of frame numbers starting at a multiple of
 * 2^HMMU_MAX_ORDER, so a block of order k that is aligned within its node is
 * aligned in frame-number space too, and the buddy of the block at index i
 * is the one at i ^ 2^k.  A free block is listed on free_area[k] through the
 * `lru` of its first frame, which carries PG_buddy and `private` = k; the
 * other frames of a free block carry no flags.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

/* Largest node: 2^32 frames (16 TiB of 4 KiB frames). */
#define NODE_MAX_PAGES (1UL << 32)
/* Alignment of every node's first frame number. */
#define NODE_PFN_ALIGN (1UL << HMMU_MAX_ORDER)
#define GFP_VALID_MASK (HMMU_GFP_ZERO | HMMU_GFP_COMP)
#define PG_BIT(bit) (1UL << (bit))

/* Serialises node creation and destruction: slot choice and pfn ranges. */
static pthread_mutex_t hmmu_nodes_lock = PTHREAD_MUTEX_INITIALIZER;
/*
 * The node table.  Slots are written under hmmu_nodes_lock with release
 * stores (a node is fully built before it appears) and read without any
 * lock with acquire loads.
 */
static _Atomic(struct hmmu_node *) hmmu_nodes[HMMU_MAX_NODES];
/*
 * One more than the highest slot ever used; only grows, written under
 * hmmu_nodes_lock (release), read lock-free to bound table scans (acquire).
 */
static atomic_int hmmu_nodes_used;

/* ---------------------------------------------------------------------- */
/* Node lookup (lock-free)                                                 */
/* ---------------------------------------------------------------------- */

struct hmmu_node *hmmu_node_get(int nid)
{
	if (nid < 0 || nid >= HMMU_MAX_NODES)
		return NULL;
	/* Pairs with the release store in node_register(). */
	return atomic_load_explicit(&hmmu_nodes[nid], memory_order_acquire);
}

static int nodes_used(void)
{
	/* Pairs with the release store in node_register(). */
	return atomic_load_explicit(&hmmu_nodes_used, memory_order_acquire);
}

static bool node_covers_pfn(const struct hmmu_node *n, uintptr_t pfn)
{
	/* Unsigned wrap-around makes pfn < start_pfn fail too. */
	return n && pfn - n->start_pfn < n->nr_pages;
}

/*
 * The node @match accepts for @key: node 0 first (it holds almost every
 * frame), then the others.  Lock-free, like every node lookup.
 */
static struct hmmu_node *hmmu_node_find(bool (*match)(const struct hmmu_node *n, uintptr_t key), uintptr_t key)
{
	struct hmmu_node *n = hmmu_node_get(0);
	int used;

	if (hmmu_likely(match(n, key)))
		return n;
	used = nodes_used();
	for (int nid = 1; nid < used; nid++) {
		n = hmmu_node_get(nid);
		if (match(n, key))
			return n;
	}
	return NULL;
}

struct hmmu_node *hmmu_pfn_node(unsigned long pfn)
{
	return hmmu_node_find(node_covers_pfn, pfn);
}

static bool node_has_page(const struct hmmu_node *n, uintptr_t p)
{
	uintptr_t lo;

	if (!n)
		return false;
	lo = (uintptr_t)n->pages;
	return p >= lo && (p - lo) / sizeof(struct hmmu_page) < n->nr_pages;
}

struct hmmu_node *hmmu_page_node(const struct hmmu_page *page)
{
	return hmmu_node_find(node_has_page, (uintptr_t)page);
}

/* Returns ~0UL (a frame number no node covers) for a pointer that is no frame. */
unsigned long hmmu_page_to_pfn(const struct hmmu_page *page)
{
	const struct hmmu_node *n = page ? hmmu_page_node(page) : NULL;

	if (!n)
		return ~0UL;
	return n->start_pfn + (unsigned long)(page - n->pages);
}

struct hmmu_page *hmmu_pfn_to_page(unsigned long pfn)
{
	struct hmmu_node *n = hmmu_pfn_node(pfn);

	return n ? &n->pages[pfn - n->start_pfn] : NULL;
}

void *hmmu_page_address(const struct hmmu_page *page)
{
	const struct hmmu_node *n = page ? hmmu_page_node(page) : NULL;

	if (!n || !n->base)
		return NULL;
	return (char *)n->base + ((size_t)(page - n->pages) << HMMU_PAGE_SHIFT);
}

long hmmu_node_nr_free_pages(int nid)
{
	struct hmmu_node *n = hmmu_node_get(nid);

	if (!n || !n->has_allocator)
		return -EINVAL;
	return atomic_load_explicit(&n->nr_free, memory_order_relaxed);
}

long hmmu_node_nr_pages(int nid)
{
	struct hmmu_node *n = hmmu_node_get(nid);

	return n ? (long)n->nr_pages : -EINVAL;
}

/* ---------------------------------------------------------------------- */
/* Buddy free lists: every function here needs node->lock held             */
/* ---------------------------------------------------------------------- */

static void buddy_add_locked(struct hmmu_node *node, struct hmmu_page *page,
			     unsigned int order, bool tail)
{
	page->private = order;
	hmmu_page_set_flag(page, HMMU_PG_buddy);
	if (tail)
		cds_list_add_tail(&page->lru, &node->free_area[order]);
	else
		cds_list_add(&page->lru, &node->free_area[order]);
	node->nr_free_blocks[order]++;
}

static void buddy_del_locked(struct hmmu_node *node, struct hmmu_page *page, unsigned int order)
{
	cds_list_del(&page->lru);
	hmmu_page_clear_flag(page, HMMU_PG_buddy);
	page->private = 0;
	node->nr_free_blocks[order]--;
}

/* The block at index @idx is the first frame of a free block of @order. */
static bool buddy_is_free_head_locked(const struct hmmu_node *node, unsigned long idx,
				      unsigned int order)
{
	const struct hmmu_page *page;

	if (idx >= node->nr_pages)
		return false;
	page = &node->pages[idx];
	/* `private` belongs to the free lists only while PG_buddy is set. */
	return hmmu_page_test_flag(page, HMMU_PG_buddy) && page->private == order;
}

/*
 * Take a free block of @order, splitting the smallest larger one if needed:
 * the lower half is kept, each upper half goes back on the list one order
 * down.  Returns its first frame (PG_buddy clear) or NULL.
 */
static struct hmmu_page *buddy_take_locked(struct hmmu_node *node, unsigned int order)
{
	struct hmmu_page *page;
	unsigned int o = order;

	while (o <= HMMU_MAX_ORDER && cds_list_empty(&node->free_area[o]))
		o++;
	if (o > HMMU_MAX_ORDER)
		return NULL;
	page = cds_list_first_entry(&node->free_area[o], struct hmmu_page, lru);
	buddy_del_locked(node, page, o);
	while (o > order) {
		o--;
		buddy_add_locked(node, page + (1UL << o), o, false);
	}
	atomic_fetch_sub_explicit(&node->nr_free, 1L << order, memory_order_relaxed);
	return page;
}

/*
 * Return the block of @order at index @idx to the free lists, merging it
 * with its buddy for as long as the buddy is a free block of the same order.
 */
static void buddy_free_locked(struct hmmu_node *node, unsigned long idx, unsigned int order)
{
	long nr = 1L << order;

	while (order < HMMU_MAX_ORDER) {
		unsigned long bidx = idx ^ (1UL << order);

		if (!buddy_is_free_head_locked(node, bidx, order))
			break;
		buddy_del_locked(node, &node->pages[bidx], order);
		idx &= ~(1UL << order);
		order++;
	}
	buddy_add_locked(node, &node->pages[idx], order, false);
	atomic_fetch_add_explicit(&node->nr_free, nr, memory_order_relaxed);
}

/*
 * Put every frame of a new node on the free lists as maximal aligned blocks,
 * lowest frame numbers first.  The node is not published yet, so nothing
 * else can see it; the lock is taken only to keep the rule simple.
 */
static void buddy_init(struct hmmu_node *node)
{
	unsigned long idx = 0;

	pthread_mutex_lock(&node->lock);
	while (idx < node->nr_pages) {
		unsigned int order = HMMU_MAX_ORDER;

		while (order && ((idx & ((1UL << order) - 1)) ||
				 idx + (1UL << order) > node->nr_pages))
			order--;
		buddy_add_locked(node, &node->pages[idx], order, true);
		idx += 1UL << order;
	}
	atomic_store_explicit(&node->nr_free, (long)node->nr_pages, memory_order_relaxed);
	pthread_mutex_unlock(&node->lock);
}

/* ---------------------------------------------------------------------- */
/* Node creation and destruction                                           */
/* ---------------------------------------------------------------------- */

static struct hmmu_node *node_alloc(unsigned long nr_pages)
{
	struct hmmu_node *node = calloc(1, sizeof(*node));

	if (!node)
		return NULL;
	node->nid = -1;
	node->nr_pages = nr_pages;
	node->pages = calloc(nr_pages, sizeof(*node->pages));
	if (!node->pages) {
		free(node);
		return NULL;
	}
	pthread_mutex_init(&node->lock, NULL);
	for (int o = 0; o <= HMMU_MAX_ORDER; o++)
		CDS_INIT_LIST_HEAD(&node->free_area[o]);
	return node;
}

static void node_free(struct hmmu_node *node)
{
	if (node->reserve)
		munmap(node->reserve, node->reserve_len);
	pthread_mutex_destroy(&node->lock);
	free(node->pages);
	free(node);
}

/*
 * Reserve the node's bytes: over-reserve by 2 MiB, keep a PMD-aligned run of
 * nr_pages frames and give the rest back.  Returns 0 or -ENOMEM.
 */
static int node_map_ram(struct hmmu_node *node)
{
	size_t len = (size_t)node->nr_pages << HMMU_PAGE_SHIFT;
	size_t span = len + HMMU_PMD_SIZE;
	char *raw, *base;

	raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return -ENOMEM;
	base = (char *)HMMU_ALIGN_UP((uintptr_t)raw, HMMU_PMD_SIZE);
	if (base > raw)
		munmap(raw, (size_t)(base - raw));
	if (raw + span > base + len)
		munmap(base + len, (size_t)(raw + span - (base + len)));
	node->base = node->reserve = base;
	node->reserve_len = len;
	return 0;
}

/*
 * The lowest aligned frame number from which @nr_pages frames overlap no
 * live node.  Caller holds hmmu_nodes_lock.
 */
static unsigned long node_pick_pfn(unsigned long nr_pages)
{
	unsigned long start = HMMU_FIRST_PFN;
	bool moved = true;

	while (moved) {
		moved = false;
		for (int nid = 0; nid < HMMU_MAX_NODES; nid++) {
			struct hmmu_node *n = atomic_load_explicit(&hmmu_nodes[nid],
								   memory_order_relaxed);

			if (n && start < n->start_pfn + n->nr_pages &&
			    n->start_pfn < start + nr_pages) {
				start = HMMU_ALIGN_UP(n->start_pfn + n->nr_pages, NODE_PFN_ALIGN);
				moved = true;
			}
		}
	}
	return start;
}

/*
 * Give a fully built node the lowest free nid and a frame range, and publish
 * it.  Takes hmmu_nodes_lock.  Returns the nid or -ENOSPC (table full).
 */
static int node_register(struct hmmu_node *node)
{
	int nid;

	pthread_mutex_lock(&hmmu_nodes_lock);
	for (nid = 0; nid < HMMU_MAX_NODES; nid++)
		if (!atomic_load_explicit(&hmmu_nodes[nid], memory_order_relaxed))
			break;
	if (nid < HMMU_MAX_NODES) {
		node->nid = nid;
		node->start_pfn = node_pick_pfn(node->nr_pages);
		/* Pairs with the acquire loads in hmmu_node_get() and nodes_used(). */
		atomic_store_explicit(&hmmu_nodes[nid], node, memory_order_release);
		if (nid >= atomic_load_explicit(&hmmu_nodes_used, memory_order_relaxed))
			atomic_store_explicit(&hmmu_nodes_used, nid + 1, memory_order_release);
	}
	pthread_mutex_unlock(&hmmu_nodes_lock);
	return nid < HMMU_MAX_NODES ? nid : -ENOSPC;
}

/*
 * A node of @nr_pages frames: a RAM node (its own memory and a buddy
 * allocator) or a device node whose bytes are at @base (NULL: not CPU
 * addressable).  Returns the nid, or -EINVAL (size 0 or above 2^32
 * frames), -ENOMEM, -ENOSPC (64 nodes).
 */
static int node_create(unsigned long nr_pages, bool ram, void *base, struct hmmu_host *host)
{
	struct hmmu_node *node;
	int ret = 0;

	if (!nr_pages || nr_pages > NODE_MAX_PAGES)
		return -EINVAL;
	node = node_alloc(nr_pages);
	if (!node)
		return -ENOMEM;
	node->base = base;
	node->host = host;
	if (ram)
		ret = node_map_ram(node);
	if (!ret && ram) {
		node->has_allocator = true;
		buddy_init(node);
	}
	if (!ret)
		ret = node_register(node);
	if (ret < 0)
		node_free(node);
	return ret;
}

int hmmu_node_create_ram(unsigned long nr_pages)
{
	return node_create(nr_pages, true, NULL, NULL);
}

int hmmu_node_create_device(unsigned long nr_pages, void *base)
{
	return node_create(nr_pages, false, base, NULL);
}

int hmmu_node_create_host(unsigned long nr_pages, void *base, struct hmmu_host *host)
{
	return node_create(nr_pages, false, base, host);
}

/* Every frame of @node is free.  Takes node->lock (RAM nodes). */
static bool node_all_free(struct hmmu_node *node)
{
	bool all_free;

	if (node->has_allocator) {
		pthread_mutex_lock(&node->lock);
		all_free = atomic_load_explicit(&node->nr_free, memory_order_relaxed) ==
			   (long)node->nr_pages;
		pthread_mutex_unlock(&node->lock);
		return all_free;
	}
	for (unsigned long i = 0; i < node->nr_pages; i++)
		if (atomic_load_explicit(&node->pages[i]._refcount, memory_order_acquire))
			return false;
	return true;
}

/*
 * Remove node @nid and release its memory.  The caller guarantees nobody
 * uses the node any more (no lookups of its frames in flight).  Takes
 * hmmu_nodes_lock.  Returns 0, -EINVAL (no such node) or -EBUSY (a frame is
 * still allocated; nothing changed).
 */
int hmmu_node_destroy(int nid)
{
	struct hmmu_node *node;
	int ret = 0;

	if (nid < 0 || nid >= HMMU_MAX_NODES)
		return -EINVAL;
	pthread_mutex_lock(&hmmu_nodes_lock);
	node = atomic_load_explicit(&hmmu_nodes[nid], memory_order_relaxed);
	if (!node)
		ret = -EINVAL;
	else if (!node_all_free(node))
		ret = -EBUSY;
	else
		atomic_store_explicit(&hmmu_nodes[nid], NULL, memory_order_release);
	pthread_mutex_unlock(&hmmu_nodes_lock);
	if (!ret)
		node_free(node);
	return ret;
}

/* ---------------------------------------------------------------------- */
/* Allocation and freeing                                                  */
/* ---------------------------------------------------------------------- */

/*
 * Turn a block just taken off the free lists into an allocated one.  Its
 * frames were reset when freed; only the head's flags may hold a stray bit
 * (a waiters bit set by a sleeper that raced with the free).
 */
static void prep_new_block(struct hmmu_node *node, struct hmmu_page *page,
			   hmmu_gfp_t gfp, unsigned int order)
{
	unsigned long nr = 1UL << order;

	HMMU_BUG_ON(atomic_load_explicit(&page->_refcount, memory_order_relaxed) != 0);
	atomic_store_explicit(&page->flags, 0, memory_order_relaxed);
	if ((gfp & HMMU_GFP_COMP) && order) {
		page->compound_order = (unsigned char)order;
		for (unsigned long i = 1; i < nr; i++)
			page[i].compound_head = page;
		atomic_store_explicit(&page->flags, PG_BIT(HMMU_PG_head), memory_order_relaxed);
	}
	if (gfp & HMMU_GFP_ZERO)
		memset((char *)node->base + ((size_t)(page - node->pages) << HMMU_PAGE_SHIFT), 0,
		       nr << HMMU_PAGE_SHIFT);
	/*
	 * Pairs with the acquire CAS in hmmu_get_page_unless_zero(): whoever
	 * takes a speculative reference sees the metadata written above.
	 */
	atomic_store_explicit(&page->_refcount, 1, memory_order_release);
}

/*
 * Frame @idx of the host node @node, which its host has just claimed: make
 * it an allocated page (refcount 1, not zeroed).
 */
struct hmmu_page *hmmu_node_take_frame(struct hmmu_node *node, unsigned long idx)
{
	HMMU_BUG_ON(!node->host || idx >= node->nr_pages);
	prep_new_block(node, &node->pages[idx], HMMU_GFP_KERNEL, 0);
	return &node->pages[idx];
}

/* May sleep on the node lock; must not be called with a node lock held. */
struct hmmu_page *hmmu_alloc_pages_node(int nid, hmmu_gfp_t gfp, unsigned int order)
{
	struct hmmu_node *node = hmmu_node_get(nid);
	struct hmmu_page *page;

	if (!node || !node->has_allocator || order > HMMU_MAX_ORDER ||
	    (gfp & ~GFP_VALID_MASK) || hmmu_fault_injected(HMMU_FAULT_PAGE_ALLOC))
		return NULL;
	pthread_mutex_lock(&node->lock);
	page = buddy_take_locked(node, order);
	pthread_mutex_unlock(&node->lock);
	if (page)
		prep_new_block(node, page, gfp, order);
	return page;
}

struct hmmu_page *hmmu_alloc_pages(hmmu_gfp_t gfp, unsigned int order)
{
	return hmmu_alloc_pages_node(0, gfp, order);
}

struct hmmu_page *hmmu_alloc_page(hmmu_gfp_t gfp)
{
	return hmmu_alloc_pages_node(0, gfp, 0);
}

/* Check that frame @i of the dying block at @head is unused, then clear it. */
static void reset_frame(struct hmmu_page *head, unsigned long i)
{
	struct hmmu_page *p = &head[i];

	HMMU_BUG_ON(atomic_load_explicit(&p->_refcount, memory_order_relaxed) != 0);
	HMMU_BUG_ON(atomic_load_explicit(&p->_mapcount, memory_order_relaxed) != 0);
	HMMU_BUG_ON(atomic_load_explicit(&p->_entire_mapcount, memory_order_relaxed) != 0);
	HMMU_BUG_ON(atomic_load_explicit(&p->_pincount, memory_order_relaxed) != 0);
	HMMU_BUG_ON(i && p->compound_head && p->compound_head != head);
	HMMU_BUG_ON(hmmu_page_test_flag(p, HMMU_PG_buddy));
	atomic_store_explicit(&p->flags, 0, memory_order_relaxed);
	p->compound_order = 0;
	p->compound_head = NULL;
	p->private = 0;
	p->mapping = NULL;
	p->index = 0;
	p->pgmap = NULL;
	p->zone_device_data = NULL;
}

/*
 * Free the block of 2^@order frames at @head, whose reference count is 0.
 * Takes the node lock; a host node's frame goes back to its host instead.
 */
static void free_block(struct hmmu_page *head, unsigned int order)
{
	struct hmmu_node *node = hmmu_page_node(head);
	unsigned long idx;

	HMMU_BUG_ON(!node || (!node->has_allocator && !node->host));
	idx = (unsigned long)(head - node->pages);
	HMMU_BUG_ON(idx & ((1UL << order) - 1));
	for (unsigned long i = 0; i < (1UL << order); i++)
		reset_frame(head, i);
	if (node->host) {
		HMMU_BUG_ON(order);
		hmmu_host_frame_free(node->host, idx);
		return;
	}
	pthread_mutex_lock(&node->lock);
	buddy_free_locked(node, idx, order);
	pthread_mutex_unlock(&node->lock);
}

/* Context: the caller dropped the last reference; no node lock held. */
void hmmu_free_frozen_page(struct hmmu_page *head)
{
	unsigned int order = 0;

	HMMU_BUG_ON(head->compound_head);
	/* The zero page is freed only by hmmu_exit(), which clears PG_reserved first. */
	HMMU_BUG_ON(hmmu_page_test_flag(head, HMMU_PG_reserved));
	if (hmmu_page_test_flag(head, HMMU_PG_head))
		order = head->compound_order;
	free_block(head, order);
}

/*
 * A compound page must be freed with its own order; a plain block through
 * its first frame.  Bad arguments (NULL, order > HMMU_MAX_ORDER) are ignored.
 */
void hmmu_free_pages(struct hmmu_page *page, unsigned int order)
{
	int old;

	if (!page || order > HMMU_MAX_ORDER)
		return;
	if (hmmu_page_test_flag(page, HMMU_PG_head)) {
		HMMU_BUG_ON(page->compound_order != order);
		hmmu_put_page(page);
		return;
	}
	HMMU_BUG_ON(page->compound_head);
	/* Same ordering as hmmu_put_page(). */
	old = atomic_fetch_sub_explicit(&page->_refcount, 1, memory_order_acq_rel);
	HMMU_BUG_ON(old <= 0);
	if (old == 1) {
		HMMU_BUG_ON(hmmu_page_test_flag(page, HMMU_PG_reserved));
		free_block(page, order);
	}
}

/* ---------------------------------------------------------------------- */
/* Validation                                                              */
/* ---------------------------------------------------------------------- */

#define BITS_PER_WORD (8 * sizeof(unsigned long))

/* State of one node's recount; everything is read under node->lock. */
struct validate_ctx {
	struct hmmu_node *node;
	unsigned long *in_free;	/* bitmap: frame belongs to a listed free block */
	unsigned long *is_head;	/* bitmap: frame is a listed free block's head */
	unsigned long frames;	/* frames in listed free blocks */
};

static bool bit_test(const unsigned long *map, unsigned long i)
{
	return map[i / BITS_PER_WORD] & (1UL << (i % BITS_PER_WORD));
}

static void bit_set(unsigned long *map, unsigned long i)
{
	map[i / BITS_PER_WORD] |= 1UL << (i % BITS_PER_WORD);
}

#define NO_FRAME (~0UL)

/* Report the first problem, at frame index @idx (NO_FRAME: the whole node). */
static int validate_fail(const struct hmmu_node *node, unsigned long idx, const char *what)
{
	if (idx == NO_FRAME)
		fprintf(stderr, "hmmu: page_alloc_validate: node %d: %s\n", node->nid, what);
	else
		fprintf(stderr, "hmmu: page_alloc_validate: node %d pfn %#lx: %s\n",
			node->nid, node->start_pfn + idx, what);
	return -EUCLEAN;
}

/* Check one listed free block of @order at @page and mark its frames. */
static int validate_block(struct validate_ctx *c, const struct hmmu_page *page, unsigned int order)
{
	const struct hmmu_node *n = c->node;
	unsigned long nr = 1UL << order, idx;

	if (!node_has_page(n, (uintptr_t)page))
		return validate_fail(n, NO_FRAME, "free-list entry is no frame of this node");
	idx = (unsigned long)(page - n->pages);
	if (!hmmu_page_test_flag(page, HMMU_PG_buddy))
		return validate_fail(n, idx, "listed free block lacks PG_buddy");
	if (page->private != order)
		return validate_fail(n, idx, "free block order differs from its list");
	if ((idx & (nr - 1)) || idx + nr > n->nr_pages)
		return validate_fail(n, idx, "free block misaligned or past the node");
	if (atomic_load_explicit(&page->_refcount, memory_order_relaxed))
		return validate_fail(n, idx, "free block has a reference");
	if (order < HMMU_MAX_ORDER && buddy_is_free_head_locked(n, idx ^ nr, order))
		return validate_fail(n, idx, "free block and its free buddy left unmerged");
	for (unsigned long i = idx; i < idx + nr; i++) {
		if (bit_test(c->in_free, i))
			return validate_fail(n, i, "frame in two free blocks");
		bit_set(c->in_free, i);
	}
	bit_set(c->is_head, idx);
	c->frames += nr;
	return 0;
}

/* Walk every free list of the node. */
static int validate_lists(struct validate_ctx *c)
{
	struct hmmu_node *n = c->node;
	struct hmmu_page *page;
	char msg[128];

	for (unsigned int o = 0; o <= HMMU_MAX_ORDER; o++) {
		unsigned long count = 0;

		cds_list_for_each_entry(page, &n->free_area[o], lru) {
			int ret = validate_block(c, page, o);

			if (ret)
				return ret;
			if (++count > n->nr_pages)
				return validate_fail(n, NO_FRAME, "free list loops");
		}
		if (count != n->nr_free_blocks[o]) {
			snprintf(msg, sizeof(msg), "order %u: nr_free_blocks %lu, list holds %lu",
				 o, n->nr_free_blocks[o], count);
			return validate_fail(n, NO_FRAME, msg);
		}
	}
	return 0;
}

/* PG_buddy marks exactly the listed heads; the listed frames equal nr_free. */
static int validate_frames(struct validate_ctx *c)
{
	struct hmmu_node *n = c->node;

	for (unsigned long i = 0; i < n->nr_pages; i++) {
		bool buddy = hmmu_page_test_flag(&n->pages[i], HMMU_PG_buddy);

		if (buddy && !bit_test(c->in_free, i))
			return validate_fail(n, i, "allocated frame has PG_buddy");
		if (buddy && !bit_test(c->is_head, i))
			return validate_fail(n, i, "frame inside a free block has PG_buddy");
	}
	if (c->frames != (unsigned long)atomic_load(&n->nr_free))
		return validate_fail(n, NO_FRAME, "nr_free differs from the frames on the free lists");
	return 0;
}

/* Recount one RAM node under its lock.  Returns 0, -EUCLEAN or -ENOMEM. */
static int validate_node(struct hmmu_node *node)
{
	size_t words = node->nr_pages / BITS_PER_WORD + 1;
	struct validate_ctx c = { .node = node };
	int ret = -ENOMEM;

	c.in_free = calloc(words, sizeof(unsigned long));
	c.is_head = calloc(words, sizeof(unsigned long));
	if (c.in_free && c.is_head) {
		pthread_mutex_lock(&node->lock);
		ret = validate_lists(&c);
		if (!ret)
			ret = validate_frames(&c);
		pthread_mutex_unlock(&node->lock);
	}
	free(c.in_free);
	free(c.is_head);
	return ret;
}

/*
 * Context: takes each RAM node's lock in turn; nodes must not be destroyed
 * concurrently.  Returns 0, -EUCLEAN (problem printed) or -ENOMEM.
 */
int hmmu_page_alloc_validate(void)
{
	int used = nodes_used();

	for (int nid = 0; nid < used; nid++) {
		struct hmmu_node *node = hmmu_node_get(nid);
		int ret;

		if (node && node->host) {
			ret = hmmu_host_validate(node->host);
			if (ret)
				return ret;
		}
		if (!node || !node->has_allocator)
			continue;
		ret = validate_node(node);
		if (ret)
			return ret;
	}
	return 0;
}
