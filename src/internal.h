/* SPDX-License-Identifier: MIT */
/*
 * Cross-file internals of hmmu, grouped by the file that defines them.
 * Nothing here is part of the public API.
 */
#ifndef HMMU_INTERNAL_H
#define HMMU_INTERNAL_H

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hmmu/hmmu.h>

#define hmmu_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#define HMMU_MIN(a, b) ((a) < (b) ? (a) : (b))
#define HMMU_MAX(a, b) ((a) > (b) ? (a) : (b))
#define HMMU_ALIGN_DOWN(x, a) ((x) & ~((a) - 1))
#define HMMU_ALIGN_UP(x, a) (((x) + (a) - 1) & ~((a) - 1))
#define hmmu_likely(x) __builtin_expect(!!(x), 1)
#define hmmu_unlikely(x) __builtin_expect(!!(x), 0)

/*
 * Debug builds (HMMU_DEBUG) check internal invariants and the locking
 * context of entry points; release builds compile the checks away.
 */
#ifdef HMMU_DEBUG
#define HMMU_BUG_ON(cond)                                                      \
	do {                                                                   \
		if (hmmu_unlikely(cond))                                       \
			hmmu_bug(__FILE__, __LINE__, #cond);                   \
	} while (0)
#else
#define HMMU_BUG_ON(cond) ((void)sizeof(cond))
#endif
_Noreturn void hmmu_bug(const char *file, int line, const char *what);

/* ---------------------------------------------------------------------- */
/* src/lib/rbtree.c: red-black tree with optional augmentation             */
/* ---------------------------------------------------------------------- */

/*
 * An intrusive red-black tree.  The caller finds the insertion point itself
 * (descending from root->node and comparing its own keys), links the node
 * with hmmu_rb_link(), then calls hmmu_rb_insert() to rebalance.
 *
 * Augmentation: a tree may keep, in each node, a value computed from the
 * node and its two children (a subtree maximum, say).  The user passes an
 * `update` callback that recomputes that value for one node from its
 * children and returns true if it changed; the tree calls it on every node
 * whose subtree changes (rotations, the insert and erase paths).  Pass NULL
 * for a plain tree.  When a node's own key data changes in place, the user
 * calls hmmu_rb_update_path() on it.
 *
 * Not thread-safe: the owner of the tree serialises all calls.
 * (struct hmmu_rb_node and hmmu_rb_root: include/hmmu/rbtree_types.h.)
 */
typedef bool hmmu_rb_update_fn(struct hmmu_rb_node *node);

static inline struct hmmu_rb_node *hmmu_rb_parent(const struct hmmu_rb_node *n)
{
	return (struct hmmu_rb_node *)(n->parent_color & ~(uintptr_t)1);
}

/* Attach @node as a red leaf at *@link, a child slot of @parent (NULL for the root). */
static inline void hmmu_rb_link(struct hmmu_rb_node *node, struct hmmu_rb_node *parent,
				struct hmmu_rb_node **link)
{
	node->parent_color = (uintptr_t)parent;
	node->left = node->right = NULL;
	*link = node;
}

void hmmu_rb_insert(struct hmmu_rb_root *root, struct hmmu_rb_node *node, hmmu_rb_update_fn *update);
void hmmu_rb_erase(struct hmmu_rb_root *root, struct hmmu_rb_node *node, hmmu_rb_update_fn *update);
void hmmu_rb_update_path(struct hmmu_rb_node *node, hmmu_rb_update_fn *update);
struct hmmu_rb_node *hmmu_rb_first(const struct hmmu_rb_root *root);
struct hmmu_rb_node *hmmu_rb_last(const struct hmmu_rb_root *root);
struct hmmu_rb_node *hmmu_rb_next(const struct hmmu_rb_node *node);
struct hmmu_rb_node *hmmu_rb_prev(const struct hmmu_rb_node *node);
/* Check colour and black-height rules; returns the node count, or -1 if broken. */
long hmmu_rb_validate(const struct hmmu_rb_root *root);

/* ---------------------------------------------------------------------- */
/* src/lib/interval_tree.c: closed intervals [start, last] over the rbtree */
/* ---------------------------------------------------------------------- */

/*
 * Each node is augmented with the largest `last` in its subtree, so a
 * lookup of all intervals overlapping [start, last] costs O(log n + hits).
 * Duplicated intervals are allowed.  Not thread-safe (owner serialises).
 * (struct hmmu_interval_node: include/hmmu/rbtree_types.h.)
 */
void hmmu_interval_tree_insert(struct hmmu_interval_node *node, struct hmmu_rb_root *root);
void hmmu_interval_tree_remove(struct hmmu_interval_node *node, struct hmmu_rb_root *root);
/* First (lowest start) node overlapping [start, last], or NULL. */
struct hmmu_interval_node *hmmu_interval_tree_iter_first(struct hmmu_rb_root *root,
							 unsigned long start, unsigned long last);
/* Next node after @node, in start order, overlapping [start, last], or NULL. */
struct hmmu_interval_node *hmmu_interval_tree_iter_next(struct hmmu_interval_node *node,
							unsigned long start, unsigned long last);

/* ---------------------------------------------------------------------- */
/* src/lib/wait.c: hashed wait queues                                      */
/* ---------------------------------------------------------------------- */

/*
 * A fixed table of wait buckets hashed by address, shared by every sleeper
 * (page lock, page waiters, migration entries).  A sleeper takes the
 * bucket's mutex, re-checks its condition, and waits on `cond`; a waker
 * changes the condition first, then takes the mutex and broadcasts.
 * Unrelated keys can share a bucket, so every waiter re-checks after waking.
 */
struct hmmu_wait_bucket {
	pthread_mutex_t lock;
	pthread_cond_t cond;
} __attribute__((aligned(64)));

struct hmmu_wait_bucket *hmmu_wait_bucket_of(const void *key);
void hmmu_wake_bucket(struct hmmu_wait_bucket *b);

/* ---------------------------------------------------------------------- */
/* src/mm/page_alloc.c: memory nodes, the buddy allocator, page references */
/* ---------------------------------------------------------------------- */

#define HMMU_MAX_NODES 64
/* Node frame numbers start here, and every node starts PMD-aligned. */
#define HMMU_FIRST_PFN 512UL

/*
 * A memory node: a contiguous range of frame numbers with their struct
 * hmmu_page array.  RAM nodes (node 0 is system RAM) also own their memory
 * (an anonymous MAP_NORESERVE reservation, THP-eligible, committed as
 * touched) and a buddy allocator over it.  Device nodes have no allocator:
 * their drivers hand out frames (see src/memremap/).
 *
 * The node table is written under hmmu_nodes_lock and published with
 * release stores; readers look nodes up without a lock.  Nodes are destroyed
 * only by hmmu_exit() or after every frame is free.
 */
struct hmmu_node {
	int nid;
	unsigned long start_pfn, nr_pages;	/* immutable */
	struct hmmu_page *pages;		/* immutable: nr_pages entries */
	void *base;		/* CPU address of start_pfn's bytes, or NULL */
	void *reserve;		/* the mmap backing `base` (RAM nodes), or NULL */
	size_t reserve_len;
	bool has_allocator;	/* immutable: buddy allocator present */
	pthread_mutex_t lock;	/* protects free_area[] and nr_free_blocks[] */
	struct cds_list_head free_area[HMMU_MAX_ORDER + 1]; /* heads of free blocks */
	unsigned long nr_free_blocks[HMMU_MAX_ORDER + 1];
	atomic_long nr_free;	/* free frames; exact under `lock`, a hint without */
};

/* Create a RAM node of @nr_pages frames with an allocator; returns its nid or -errno. */
int hmmu_node_create_ram(unsigned long nr_pages);
/*
 * Create a device node of @nr_pages frames without an allocator; @base is
 * the CPU address of its bytes, NULL for CPU-inaccessible memory.  All frames
 * start free (refcount 0).  Returns the nid or -errno.
 */
int hmmu_node_create_device(unsigned long nr_pages, void *base);
/* Remove a node; every frame must be free.  Returns 0 or -EBUSY. */
int hmmu_node_destroy(int nid);
/* The node with id @nid, or NULL. */
struct hmmu_node *hmmu_node_get(int nid);
/* The node covering @pfn, or NULL. */
struct hmmu_node *hmmu_pfn_node(unsigned long pfn);
/* The node owning @page (never NULL for a real frame). */
struct hmmu_node *hmmu_page_node(const struct hmmu_page *page);

/*
 * Release a (compound) page whose refcount just reached zero: back to the
 * buddy allocator (RAM nodes).  All mapcounts must be zero.
 */
void hmmu_free_frozen_page(struct hmmu_page *head);
/*
 * Recount every RAM node: each frame is in exactly one free block or
 * allocated, free blocks are correctly aligned, ordered and listed once,
 * no two free buddies were left unmerged, and nr_free matches.  Prints the
 * first problem to stderr.  Returns 0 or -EUCLEAN.
 */
int hmmu_page_alloc_validate(void);

/* ---------------------------------------------------------------------- */
/* src/mm/init.c                                                           */
/* ---------------------------------------------------------------------- */

bool hmmu_is_initialised(void);

#endif /* HMMU_INTERNAL_H */
