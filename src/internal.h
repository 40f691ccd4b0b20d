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
#include <hmmu/mmu_notifier.h>

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
 * context of entry points; release builds compile the checks away, so the
 * condition must have no side effects (it is not evaluated there).
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
/* Mark a node as in no tree / test that mark (parent points to itself). */
static inline void hmmu_rb_clear_node(struct hmmu_rb_node *n)
{
	n->parent_color = (uintptr_t)n;
}
static inline bool hmmu_rb_empty_node(const struct hmmu_rb_node *n)
{
	return n->parent_color == (uintptr_t)n;
}

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
/* src/lib/fault_inject.c: fault injection (include/hmmu/fault_inject.h)   */
/* ---------------------------------------------------------------------- */

/* A library site's check: compiled out without the build option. */
#ifdef HMMU_FAULT_INJECT
#define hmmu_fault_injected(site) hmmu_fault_inject_should_fail(site)
#else
#define hmmu_fault_injected(site) false
#endif

/* ---------------------------------------------------------------------- */
/* src/lib/stat.c: global event counters (include/hmmu/stat.h)             */
/* ---------------------------------------------------------------------- */

/*
 * One counter per cache line, bumped with a relaxed atomic add: callable in
 * any context (under spinning page-table locks too), never sleeps, orders
 * nothing.  Hot loops count locally and add once.
 */
struct hmmu_stat_counter {
	atomic_ulong v;
} __attribute__((aligned(64)));

extern struct hmmu_stat_counter hmmu_stat_counters[HMMU_STAT_NR];

static inline void hmmu_count_add(enum hmmu_stat_item id, unsigned long n)
{
	atomic_fetch_add_explicit(&hmmu_stat_counters[id].v, n, memory_order_relaxed);
}

static inline void hmmu_count(enum hmmu_stat_item id)
{
	hmmu_count_add(id, 1);
}

/* The migration counter @id (a TO_DEVICE one) for the other direction if @to_system. */
static inline enum hmmu_stat_item hmmu_stat_migrate_id(enum hmmu_stat_item id, bool to_system)
{
	return to_system ? id + (HMMU_STAT_MIGRATE_TO_SYSTEM_ATTEMPTED - HMMU_STAT_MIGRATE_TO_DEVICE_ATTEMPTED) : id;
}

/* ---------------------------------------------------------------------- */
/* src/lib/rcu.c: RCU (liburcu-bp, or a rwlock fallback under TSan)       */
/* ---------------------------------------------------------------------- */

/*
 * Read sections may nest and sleep.  hmmu_synchronize_rcu() waits for every
 * read section that began before it; it must not be called inside one.
 * hmmu_call_rcu() runs @func after a grace period (in another thread with
 * liburcu); hmmu_rcu_barrier() waits for all calls queued so far.
 */
struct hmmu_rcu_head;
void hmmu_rcu_read_lock(void);
void hmmu_rcu_read_unlock(void);
void hmmu_synchronize_rcu(void);
void hmmu_call_rcu(struct hmmu_rcu_head *head, void (*func)(struct hmmu_rcu_head *head));
void hmmu_rcu_barrier(void);

/*
 * RCU-protected list edits and traversal on struct cds_list_head, written
 * with __atomic builtins (release publication, acquire traversal) so that
 * ThreadSanitizer sees the ordering liburcu's volatile-based macros hide.
 * Writers serialise among themselves; readers hold hmmu_rcu_read_lock().
 * A deleted entry keeps its `next`, so a reader standing on it goes on;
 * its `prev` is set to NULL to mark it unlinked.
 */
static inline void hmmu_list_add_rcu(struct cds_list_head *entry, struct cds_list_head *head)
{
	entry->next = head->next;
	entry->prev = head;
	head->next->prev = entry;
	__atomic_store_n(&head->next, entry, __ATOMIC_RELEASE);
}
static inline void hmmu_list_del_rcu(struct cds_list_head *entry)
{
	entry->next->prev = entry->prev;
	__atomic_store_n(&entry->prev->next, entry->next, __ATOMIC_RELEASE);
	entry->prev = NULL;
}
static inline bool hmmu_list_linked_rcu(const struct cds_list_head *entry)
{
	return entry->prev != NULL;
}
static inline bool hmmu_list_empty_rcu(struct cds_list_head *head)
{
	return __atomic_load_n(&head->next, __ATOMIC_ACQUIRE) == head;
}
#define hmmu_list_for_each_entry_rcu(pos, head, member)                                          \
	for (pos = cds_list_entry(__atomic_load_n(&(head)->next, __ATOMIC_ACQUIRE), __typeof__(*pos), \
				  member);                                                        \
	     &pos->member != (head);                                                             \
	     pos = cds_list_entry(__atomic_load_n(&pos->member.next, __ATOMIC_ACQUIRE), __typeof__(*pos), member))

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
	struct hmmu_host *host;	/* immutable: the host mm whose frames these are, or NULL */
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
/*
 * Create the node of a host mm's frames (src/host/): no allocator; frame i
 * is the byte range i pages into @base (the host's direct map).  Its frames
 * are claimed by the host and made pages with hmmu_node_take_frame(); the
 * free path hands them back through hmmu_host_frame_free().
 */
int hmmu_node_create_host(unsigned long nr_pages, void *base, struct hmmu_host *host);
struct hmmu_page *hmmu_node_take_frame(struct hmmu_node *node, unsigned long idx);
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
 * no two free buddies were left unmerged, and nr_free matches; and every
 * host node (hmmu_host_validate()).  Prints the first problem to stderr.
 * Returns 0 or -EUCLEAN.
 */
int hmmu_page_alloc_validate(void);

/* src/mm/page.c */
/*
 * Sleep until @page is unlocked, taking no reference; @drop (a held mutex
 * that keeps the frame alive, or NULL) is released once the sleeper is
 * queued, so no unlock after that point is missed.
 */
void hmmu_wait_on_page_locked_drop(struct hmmu_page *page, pthread_mutex_t *drop);

/* ---------------------------------------------------------------------- */
/* src/mm/pgtable.c: entries, page-table pages, lookups, validation        */
/* ---------------------------------------------------------------------- */

/*
 * A page-table entry is a 64-bit word.  Four levels of 512 entries: level 3
 * (PGD, bits 47..39), 2 (PUD), 1 (PMD), 0 (PTE).
 *
 *   none                 0
 *   table (levels 3..1)  pointer to the next struct hmmu_pt | PRESENT
 *   present leaf         pfn << 12 | PRESENT | WRITE? DIRTY? YOUNG? SPECIAL?
 *                        (| HUGE at PMD level: a 2 MiB leaf)
 *   non-present typed    pfn << 12 | type << 1 | YOUNG? DIRTY? (PRESENT clear)
 *
 * Typed entries: device-private (read, write), device-exclusive (read,
 * write) and migration (read, read-exclusive, write; carrying young and
 * dirty).  Tables are 64-byte aligned, so a table entry never has the HUGE
 * bit and bits 1..5 of its pointer are clear.
 */
typedef uint64_t hmmu_pte_t;

#define HMMU_PTE_PRESENT (1ULL << 0)
#define HMMU_PTE_WRITE (1ULL << 1)
#define HMMU_PTE_DIRTY (1ULL << 2)
#define HMMU_PTE_YOUNG (1ULL << 3)
#define HMMU_PTE_SPECIAL (1ULL << 4)	/* no struct page behind it (PFNMAP) */
#define HMMU_PTE_HUGE (1ULL << 5)	/* PMD-level leaf */
#define HMMU_PTE_PFN_SHIFT 12
#define HMMU_PTE_PFN_MASK (((1ULL << 44) - 1) << HMMU_PTE_PFN_SHIFT)
/* Non-present typed entries. */
#define HMMU_SWP_TYPE_SHIFT 1
#define HMMU_SWP_TYPE_MASK (0xfULL << HMMU_SWP_TYPE_SHIFT)
#define HMMU_SWP_YOUNG (1ULL << 6)
#define HMMU_SWP_DIRTY (1ULL << 7)

enum hmmu_swp_type {
	HMMU_SWP_NONE = 0,
	HMMU_SWP_DEVICE_PRIVATE_READ,
	HMMU_SWP_DEVICE_PRIVATE_WRITE,
	HMMU_SWP_DEVICE_EXCLUSIVE_READ,
	HMMU_SWP_DEVICE_EXCLUSIVE_WRITE,
	HMMU_SWP_MIGRATION_READ,
	HMMU_SWP_MIGRATION_READ_EXCLUSIVE,
	HMMU_SWP_MIGRATION_WRITE,
	HMMU_SWP_NR_TYPES
};

/* A decoded non-present entry. */
struct hmmu_swp_entry {
	enum hmmu_swp_type type;
	unsigned long pfn;
	bool young, dirty;	/* migration entries only */
};

static inline bool hmmu_pte_none(hmmu_pte_t e) { return e == 0; }
static inline bool hmmu_pte_present(hmmu_pte_t e) { return e & HMMU_PTE_PRESENT; }
static inline bool hmmu_pte_write(hmmu_pte_t e) { return e & HMMU_PTE_WRITE; }
static inline bool hmmu_pte_dirty(hmmu_pte_t e) { return e & HMMU_PTE_DIRTY; }
static inline bool hmmu_pte_young(hmmu_pte_t e) { return e & HMMU_PTE_YOUNG; }
static inline bool hmmu_pte_special(hmmu_pte_t e) { return e & HMMU_PTE_SPECIAL; }
/* A present 2 MiB leaf (meaningful at PMD level only). */
static inline bool hmmu_pmd_leaf(hmmu_pte_t e)
{
	return (e & (HMMU_PTE_PRESENT | HMMU_PTE_HUGE)) == (HMMU_PTE_PRESENT | HMMU_PTE_HUGE);
}
/* A present entry pointing at a lower table (levels 3..1). */
static inline bool hmmu_pte_table(hmmu_pte_t e) { return hmmu_pte_present(e) && !(e & HMMU_PTE_HUGE); }
static inline unsigned long hmmu_pte_pfn(hmmu_pte_t e)
{
	return (e & HMMU_PTE_PFN_MASK) >> HMMU_PTE_PFN_SHIFT;
}
static inline hmmu_pte_t hmmu_pfn_pte(unsigned long pfn, hmmu_pte_t bits)
{
	return ((hmmu_pte_t)pfn << HMMU_PTE_PFN_SHIFT) | bits | HMMU_PTE_PRESENT;
}
static inline hmmu_pte_t hmmu_swp_entry_to_pte(struct hmmu_swp_entry se)
{
	return ((hmmu_pte_t)se.pfn << HMMU_PTE_PFN_SHIFT) | ((hmmu_pte_t)se.type << HMMU_SWP_TYPE_SHIFT) |
	       (se.young ? HMMU_SWP_YOUNG : 0) | (se.dirty ? HMMU_SWP_DIRTY : 0);
}
/* Decode a non-present, non-none entry. */
static inline struct hmmu_swp_entry hmmu_pte_to_swp_entry(hmmu_pte_t e)
{
	struct hmmu_swp_entry se = {
		.type = (enum hmmu_swp_type)((e & HMMU_SWP_TYPE_MASK) >> HMMU_SWP_TYPE_SHIFT),
		.pfn = hmmu_pte_pfn(e),
		.young = e & HMMU_SWP_YOUNG,
		.dirty = e & HMMU_SWP_DIRTY,
	};
	return se;
}
static inline struct hmmu_swp_entry hmmu_make_swp_entry(enum hmmu_swp_type type, unsigned long pfn)
{
	struct hmmu_swp_entry se = { .type = type, .pfn = pfn };
	return se;
}
static inline bool hmmu_is_migration_entry(struct hmmu_swp_entry se)
{
	return se.type >= HMMU_SWP_MIGRATION_READ && se.type <= HMMU_SWP_MIGRATION_WRITE;
}
static inline bool hmmu_is_device_private_entry(struct hmmu_swp_entry se)
{
	return se.type == HMMU_SWP_DEVICE_PRIVATE_READ || se.type == HMMU_SWP_DEVICE_PRIVATE_WRITE;
}
static inline bool hmmu_is_device_exclusive_entry(struct hmmu_swp_entry se)
{
	return se.type == HMMU_SWP_DEVICE_EXCLUSIVE_READ || se.type == HMMU_SWP_DEVICE_EXCLUSIVE_WRITE;
}
/* The write variant of a device-private, device-exclusive or migration entry. */
static inline bool hmmu_is_writable_swp_entry(struct hmmu_swp_entry se)
{
	return se.type == HMMU_SWP_DEVICE_PRIVATE_WRITE || se.type == HMMU_SWP_DEVICE_EXCLUSIVE_WRITE ||
	       se.type == HMMU_SWP_MIGRATION_WRITE;
}

#define HMMU_PT_ENTRIES 512
#define HMMU_PT_LEVELS 4
#define HMMU_PGDIR_SHIFT 39

/*
 * One page-table page at any level.  `ptl` is the split page-table lock:
 * it serialises every change of this table's entries except the lock-free
 * none -> table population of levels 3..1 (a compare-and-swap that may
 * race only with another population).  Entries are read without the lock by
 * walkers that hold the mmap_lock (they see a consistent 64-bit word, and
 * tables are unlinked only under the mmap_lock held for write) or an RCU
 * read section (reverse-map walks: tables are freed after a grace period),
 * and under it by anyone who acts on what they read.
 */
struct hmmu_pt {
	pthread_mutex_t ptl;
	atomic_uint nr_used;	/* non-none entries (exact when no change is in flight) */
	unsigned char level;	/* 0 = PTE table ... 3 = PGD; immutable */
	/*
	 * PMD tables: the stack of empty PTE tables deposited for this table's
	 * transparent huge leaves, one per leaf, so that splitting one never
	 * allocates (ptl).  A deposited PTE table: the next one down the stack.
	 */
	struct hmmu_pt *deposit;
	struct hmmu_rcu_head rcu;	/* freed after a grace period (hmmu_pt_free) */
	hmmu_pte_t e[HMMU_PT_ENTRIES] __attribute__((aligned(64)));
};

static inline unsigned int hmmu_pt_index(unsigned long addr, int level)
{
	return (addr >> (HMMU_PAGE_SHIFT + 9 * level)) & (HMMU_PT_ENTRIES - 1);
}
/* Bytes covered by one entry at @level. */
static inline unsigned long hmmu_pt_entry_size(int level)
{
	return 1UL << (HMMU_PAGE_SHIFT + 9 * level);
}
static inline struct hmmu_pt *hmmu_pte_to_table(hmmu_pte_t e)
{
	return (struct hmmu_pt *)(uintptr_t)(e & ~(hmmu_pte_t)63);
}
static inline hmmu_pte_t hmmu_pte_read(const hmmu_pte_t *ptep)
{
	return __atomic_load_n(ptep, __ATOMIC_RELAXED);
}
/* Write an entry of @pt; caller holds pt->ptl.  Keeps nr_used exact. */
static inline void hmmu_pte_set(struct hmmu_pt *pt, hmmu_pte_t *ptep, hmmu_pte_t val)
{
	hmmu_pte_t old = hmmu_pte_read(ptep);

	if (!old && val)
		atomic_fetch_add_explicit(&pt->nr_used, 1, memory_order_relaxed);
	else if (old && !val)
		atomic_fetch_sub_explicit(&pt->nr_used, 1, memory_order_relaxed);
	__atomic_store_n(ptep, val, __ATOMIC_RELEASE);
}
static inline void hmmu_pt_lock(struct hmmu_pt *pt) { pthread_mutex_lock(&pt->ptl); }
static inline void hmmu_pt_unlock(struct hmmu_pt *pt) { pthread_mutex_unlock(&pt->ptl); }

struct hmmu_pt *hmmu_pt_alloc(struct hmmu_mm *mm, int level);
void hmmu_pt_free(struct hmmu_mm *mm, struct hmmu_pt *pt);
/*
 * Deposit @pt (an empty PTE table) with @pmd_pt for a transparent huge leaf
 * being installed there / take one back when such a leaf is split, zapped or
 * moved away.  Caller holds pmd_pt->ptl.  Withdraw never fails: a THP leaf
 * always has its deposit.
 */
void hmmu_pgtable_deposit(struct hmmu_pt *pmd_pt, struct hmmu_pt *pt);
struct hmmu_pt *hmmu_pgtable_withdraw(struct hmmu_pt *pmd_pt);
/*
 * The PMD entry covering @addr and its table, allocating missing upper
 * tables when @alloc.  Caller holds the mmap_lock.  Returns NULL when a
 * table is missing (!alloc) or could not be allocated (alloc).
 */
hmmu_pte_t *hmmu_pmd_lookup(struct hmmu_mm *mm, unsigned long addr, bool alloc, struct hmmu_pt **pmd_pt);
/*
 * Make *@pmdp (none) point at a new empty PTE table.  Caller holds the
 * mmap_lock; a racing population is fine.  Returns 0 or -ENOMEM; also 0 when
 * the entry is no longer none (the caller re-reads it).
 */
int hmmu_pte_table_populate(struct hmmu_mm *mm, struct hmmu_pt *pmd_pt, hmmu_pte_t *pmdp);
/*
 * The leaf entry mapping @addr with its table's lock held: a PTE, or a huge
 * PMD leaf (*@huge set).  NULL when no table reaches a leaf slot (nothing
 * mapped).  Caller holds the mmap_lock and unlocks (*@ptp)->ptl.
 */
hmmu_pte_t *hmmu_leaf_lookup_lock(struct hmmu_mm *mm, unsigned long addr, struct hmmu_pt **ptp, bool *huge);
/*
 * Free page tables left empty in [start, end) (after an unmap).  Caller
 * holds the mmap_lock for write.
 */
void hmmu_free_pgtables(struct hmmu_mm *mm, unsigned long start, unsigned long end);
/*
 * Recount @mm's page tables: each table's nr_used equals its non-none
 * entries, leaves lie inside VMAs, present leaves map real frames (the
 * zero page or an allocated page with a reference and a mapcount), the
 * page-table count matches.  Prints the first problem; returns 0 or -EUCLEAN.
 * Takes the mmap_lock for read and each PTE table's lock while checking it
 * (its pages may be shared with a live mm).
 */
int hmmu_pt_validate(struct hmmu_mm *mm);

/* ---------------------------------------------------------------------- */
/* src/mm/pagewalk.c: the page-table walker                                */
/* ---------------------------------------------------------------------- */

/*
 * One walker for every range operation (zap, protection change, counting,
 * validation, and later mirroring, migration and fork).  It descends the
 * tables over [start, end) and calls:
 *   pte_hole  for a range with no table (no PTE table, empty upper entry)
 *             or, in a VMA walk, no VMA (depth -1);
 *   pmd_entry for a PMD entry that is a huge leaf or a typed non-present
 *             entry; it may split it and set walk->action = HMMU_WALK_DESCEND
 *             to have the walker continue into the new PTE table;
 *   pte_range for a run of entries of one PTE table, [addr, end) with ptep
 *             at addr: the hot loop stays in the callback.
 * The walker takes no page-table lock: callbacks lock walk->pt->ptl (the
 * table holding the entries they were given) as they need.  A callback
 * returning < 0 aborts the walk with that value; > 0 stops it and is
 * returned.  The caller holds the mmap_lock (read or write).
 */
struct hmmu_mm_walk;

struct hmmu_walk_ops {
	/* Per VMA in a VMA walk: 0 walk it, 1 skip it, < 0 abort. */
	int (*test_walk)(unsigned long start, unsigned long end, struct hmmu_mm_walk *walk);
	int (*pmd_entry)(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk);
	int (*pte_range)(hmmu_pte_t *ptep, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk);
	int (*pte_hole)(unsigned long addr, unsigned long end, int depth, struct hmmu_mm_walk *walk);
};

enum hmmu_walk_action { HMMU_WALK_CONTINUE, HMMU_WALK_DESCEND };

struct hmmu_mm_walk {
	const struct hmmu_walk_ops *ops;
	struct hmmu_mm *mm;
	struct hmmu_vma *vma;	/* VMA walks: the VMA being walked; else NULL */
	struct hmmu_pt *pt;	/* the table holding the entries passed to a callback */
	enum hmmu_walk_action action;
	void *private;
};

/* Walk the VMAs over [start, end); gaps go to pte_hole with depth -1. */
int hmmu_walk_page_range(struct hmmu_mm *mm, unsigned long start, unsigned long end,
			 const struct hmmu_walk_ops *ops, void *private);
/* Walk the tables over [start, end) whatever the VMAs (walk->vma is NULL).
 * Also allowed inside hmmu_rmap_walk()'s callbacks without the mmap_lock. */
int hmmu_walk_page_range_novma(struct hmmu_mm *mm, unsigned long start, unsigned long end,
			       const struct hmmu_walk_ops *ops, void *private);

/* ---------------------------------------------------------------------- */
/* src/mm/mm.c: the address space                                          */
/* ---------------------------------------------------------------------- */

/* Lowest address hmmu_mmap() chooses by itself. */
#define HMMU_MMAP_MIN_ADDR 0x10000UL

/* Address spaces created and not yet torn down (hmmu_exit() refuses while any is). */
long hmmu_mm_nr_live(void);

/*
 * Locking of struct hmmu_mm, outer to inner (docs/locking.md):
 *   mmap_lock -> page lock -> anon_vma->lock -> page-table lock (ptl)
 * `page_table_lock` is a leaf lock for the lazy anon_vma set-up.
 */
struct hmmu_mm {
	atomic_int mm_users;	/* users: the address space is alive (hmmu_mmget) */
	atomic_int mm_count;	/* structure references; all users share one */
	/* Writer-preferring rwlock.  Write: the VMA set and VMA fields.
	 * Read: faults, GUP, walks.  See mm.h for the lock calls. */
	pthread_rwlock_t mmap_lock;
#ifdef HMMU_DEBUG
	atomic_int mmap_readers;	/* lock assertions only */
	atomic_int mmap_writer;
#endif
	struct hmmu_rb_root mm_rb;	/* mmap_lock: VMAs keyed by vm_start, gap-augmented */
	struct cds_list_head vma_list;	/* mmap_lock: VMAs in address order */
	unsigned long map_count;	/* mmap_lock: number of VMAs */
	struct hmmu_pt *pgd;		/* immutable until teardown */
	pthread_mutex_t page_table_lock; /* leaf: anon_vma_prepare */
	atomic_long nr_pgtables;	/* tables below the PGD */
	/* Event counters (relaxed atomics, statistics only). */
	atomic_ulong nr_faults, nr_zero_faults, nr_cow_faults, nr_longterm_pins;
	/* MMU notifiers: set once under the mmap_lock for write, freed by the
	 * last mmdrop (see struct hmmu_notifier_subscriptions). */
	struct hmmu_notifier_subscriptions *notifier_subscriptions;
	atomic_uint flags;		/* HMMU_MMF_* */
	struct hmmu_host *host;		/* host mms (src/host/): set at creation, else NULL */
};

#define HMMU_MMF_UNSTABLE 0x1u	/* reaped: faults fail with SIGBUS */

void hmmu_mmap_assert_locked(struct hmmu_mm *mm);
void hmmu_mmap_assert_write_locked(struct hmmu_mm *mm);

/* ---------------------------------------------------------------------- */
/* src/mm/vma.c: the VMA set                                               */
/* ---------------------------------------------------------------------- */

/* All helpers here require the mmap_lock held for write unless noted. */
struct hmmu_vma *hmmu_vma_alloc(struct hmmu_mm *mm);
/* Free an unlinked VMA: driver close hook, anon_vma and file references. */
void hmmu_vma_free(struct hmmu_vma *vma);
/* A copy of @src (flags, object, driver, anon_vma; open hook run), unlinked. */
struct hmmu_vma *hmmu_vma_dup(struct hmmu_mm *mm, const struct hmmu_vma *src);
void hmmu_vma_link(struct hmmu_mm *mm, struct hmmu_vma *vma);
void hmmu_vma_unlink(struct hmmu_mm *mm, struct hmmu_vma *vma);
/*
 * Set vm_start/vm_end/vm_pgoff of a VMA, under its anon_vma's lock when it
 * has one: a reverse-map walk reads them under that lock alone.
 */
void hmmu_vma_set_bounds(struct hmmu_vma *vma, unsigned long start, unsigned long end, unsigned long pgoff);
/* Set vm_start/vm_end/vm_pgoff of a linked VMA and fix the tree's gaps. */
void hmmu_vma_adjust(struct hmmu_vma *vma, unsigned long start, unsigned long end, unsigned long pgoff);
struct hmmu_vma *hmmu_vma_prev(struct hmmu_vma *vma);
struct hmmu_vma *hmmu_vma_next(struct hmmu_vma *vma);
/* Split @vma at @addr (strictly inside it); 0, -ENOMEM, or -EINVAL (inside a hugetlb page). */
int hmmu_vma_split(struct hmmu_mm *mm, struct hmmu_vma *vma, unsigned long addr);
/* Merge @vma with compatible neighbours; returns the surviving VMA. */
struct hmmu_vma *hmmu_vma_merge(struct hmmu_mm *mm, struct hmmu_vma *vma);
/* A free range of @len bytes (hint first, then lowest fit); -ENOMEM if none. */
long hmmu_get_unmapped_area(struct hmmu_mm *mm, unsigned long hint, unsigned long len);
/* True if @vma is private anonymous memory in base pages (the kernel's
 * vma_is_anonymous(): no file, no driver, not hugetlb). */
static inline bool hmmu_vma_is_anonymous(const struct hmmu_vma *vma)
{
	return !vma->vm_file && !vma->vm_ops &&
	       !(vma->vm_flags & (HMMU_VM_SHARED | HMMU_VM_PFNMAP | HMMU_VM_MIXEDMAP | HMMU_VM_IO | HMMU_VM_HUGETLB));
}
static inline bool hmmu_vma_is_hugetlb(const struct hmmu_vma *vma)
{
	return vma->vm_flags & HMMU_VM_HUGETLB;
}
/* Private and possibly writable: writes copy (the kernel's is_cow_mapping()). */
static inline bool hmmu_vma_is_cow(const struct hmmu_vma *vma)
{
	return (vma->vm_flags & (HMMU_VM_SHARED | HMMU_VM_MAYWRITE)) == HMMU_VM_MAYWRITE;
}
/* Page index of @addr in the VMA's object (the anon page's `index`). */
static inline unsigned long hmmu_linear_page_index(const struct hmmu_vma *vma, unsigned long addr)
{
	return vma->vm_pgoff + ((addr - vma->vm_start) >> HMMU_PAGE_SHIFT);
}
/* Check tree order, list order, gaps; returns 0 or -EUCLEAN (prints why). */
int hmmu_vma_validate(struct hmmu_mm *mm);

/* ---------------------------------------------------------------------- */
/* src/mm/mmap.c: mmap, munmap, mprotect, madvise                          */
/* ---------------------------------------------------------------------- */

/*
 * Unmap [start, end) (page-aligned, inside the address space): split the
 * VMAs straddling its ends, zap and free what is inside (one UNMAP
 * invalidation), free the page tables left empty, free the VMAs.  Gaps are
 * fine.  Caller holds the mmap_lock for write.  Returns 0, -ENOMEM (a
 * split failed; nothing was unmapped) or -EINVAL (an end inside a hugetlb
 * page).  Used by munmap, MAP_FIXED and mremap.
 */
int hmmu_do_munmap(struct hmmu_mm *mm, unsigned long start, unsigned long end);

/* ---------------------------------------------------------------------- */
/* src/mm/rmap.c: reverse map of anonymous pages                           */
/* ---------------------------------------------------------------------- */

/*
 * The anon_vma: the reverse-map root shared by every VMA that can hold a
 * given anonymous page (the VMAs split from one mapping; later, fork's
 * copies).  An anon page's `mapping` is anon_vma | HMMU_PAGE_MAPPING_ANON
 * and its `index` the linear page index, so a reverse-map walk finds each
 * mapping at vm_start + (index - vm_pgoff) pages of each VMA on the list.
 */
struct hmmu_anon_vma {
	atomic_int refcount;		/* one per VMA on `vmas`, plus walkers' */
	pthread_mutex_t lock;		/* protects `vmas` */
	struct cds_list_head vmas;	/* VMAs through vma->anon_vma_link */
	struct hmmu_rcu_head rcu;	/* freed after a grace period (rmap walks) */
};

/* Give @vma an anon_vma if it has none; caller holds the mmap_lock (read). 0 or -ENOMEM. */
int hmmu_anon_vma_prepare(struct hmmu_vma *vma);
/* Add @vma (a split or copy of a VMA using @av) to @av. */
void hmmu_anon_vma_attach(struct hmmu_vma *vma, struct hmmu_anon_vma *av);
/* Remove @vma from its anon_vma, dropping the VMA's reference. */
void hmmu_anon_vma_detach(struct hmmu_vma *vma);
/* First mapping of a new anonymous page: sets mapping, index, exclusive, mapcount 1. */
void hmmu_page_add_new_anon_rmap(struct hmmu_page *page, struct hmmu_vma *vma, unsigned long addr,
				 bool compound);
/* One more PTE mapping of a page that is not anonymous (page cache, driver page). */
void hmmu_page_add_file_rmap(struct hmmu_page *page);
/* Remove one mapping of @page (PTE level, or the whole compound page at PMD level). */
void hmmu_page_remove_rmap(struct hmmu_page *page, bool compound);

/*
 * Reverse-map walk of an anonymous page (base page or device page): see
 * hmmu_rmap_walk() in rmap.c for why no mmap_lock is needed.  rmap_one()
 * gets each VMA that may map the page and the address it would be at,
 * with the anon_vma lock held (and an RCU read section), and returns false
 * to stop; it must not take any mmap_lock.  done() (optional) is asked
 * after each VMA.
 */
struct hmmu_rmap_walk_control {
	void *arg;
	bool (*rmap_one)(struct hmmu_page *page, struct hmmu_vma *vma, unsigned long addr, void *arg);
	bool (*done)(struct hmmu_page *page);
};
void hmmu_rmap_walk(struct hmmu_page *page, struct hmmu_rmap_walk_control *rwc);

/* ---------------------------------------------------------------------- */
/* src/mm/memory.c: faults, zap, protection change, huge PMDs              */
/* ---------------------------------------------------------------------- */

/* Unmap and release every entry in [start, end) of @vma (within it).
 * Caller holds the mmap_lock (read or write) and brackets the call with an
 * invalidation of the range. */
void hmmu_zap_page_range(struct hmmu_vma *vma, unsigned long start, unsigned long end);
/* The same inside its own blockable invalidation for @event. */
void hmmu_zap_range_notify(struct hmmu_vma *vma, unsigned long start, unsigned long end,
			   enum hmmu_notifier_event event);
/* Write-protect present entries in [start, end) of @vma when @newflags
 * lacks VM_WRITE (and downgrade writable typed entries), inside a
 * PROTECTION_VMA invalidation.  Caller holds the mmap_lock for write. */
void hmmu_change_protection(struct hmmu_vma *vma, unsigned long start, unsigned long end,
			    unsigned long newflags);
/* Replace the huge leaf *@pmdp by a PTE table mapping the same page.
 * Caller holds the mmap_lock.  0, or -ENOMEM. */
int hmmu_split_huge_pmd(struct hmmu_vma *vma, struct hmmu_pt *pmd_pt, hmmu_pte_t *pmdp, unsigned long addr);
/*
 * May a write take the PMD-mapped huge page @head over instead of copying
 * it?  Yes when it is anon-exclusive, or referenced and mapped exactly once
 * (the copy-on-write partner is gone: it becomes exclusive again).  Caller
 * holds the lock of the PMD table mapping it.  (THP and hugetlb.)
 */
bool hmmu_huge_page_can_reuse(struct hmmu_page *head);
/* A fault result as an errno: 0, -ENOMEM (OOM) or -EFAULT (any other error). */
static inline int hmmu_vm_fault_errno(hmmu_vm_fault_t ret)
{
	if (ret & HMMU_VM_FAULT_OOM)
		return -ENOMEM;
	return ret & HMMU_VM_FAULT_ERROR ? -EFAULT : 0;
}
/*
 * The frame mapped at @addr with its entry's lock held, if the entry
 * already allows the access (HMMU_FOLL_WRITE: a writable entry).  A special
 * entry (no struct page for GUP) yields its frame only with
 * HMMU_FOLLOW_SPECIAL (CPU access), else hmmu_err_ptr(-EFAULT), nothing
 * locked.  Sets *@ptp (unlock it) and *@ptep.  NULL (nothing locked) when
 * the access needs a fault first.  Caller holds the mmap_lock.
 */
#define HMMU_FOLLOW_SPECIAL 0x80000000u
struct hmmu_page *hmmu_follow_page_lock(struct hmmu_mm *mm, unsigned long addr, unsigned int foll,
					struct hmmu_pt **ptp, hmmu_pte_t **ptep);

/* ---------------------------------------------------------------------- */
/* src/mm/exclusive.c: device-exclusive entries                            */
/* ---------------------------------------------------------------------- */

/*
 * Replace every mapping of the folio @head (a base page or a head page,
 * locked and referenced by the caller) found through the reverse map by a
 * device-exclusive entry, each VMA's inside an EXCLUSIVE invalidation with
 * @owner.  True iff the mapping at @addr of @mm was seen writable and no
 * mapping is left; entries converted before a failure stay exclusive.
 * False at once for a page that is not anonymous or lies in a hugetlb VMA.
 * Context: @mm's mmap_lock held for read, no other lock.
 */
bool hmmu_page_make_device_exclusive(struct hmmu_page *head, struct hmmu_mm *mm, unsigned long addr, void *owner);
/*
 * Put back the present entry that the device-exclusive entry *@ptep of
 * @vma replaced: same frame, old, dirty and (if @vma allows) writable for
 * the write variant; the mapping takes over the entry's reference and gets
 * the mapcount back.  Emits nothing.  Context: @pt's lock held, the page
 * locked (under the ptl: try-locked).
 */
void hmmu_exclusive_entry_restore_locked(struct hmmu_vma *vma, struct hmmu_pt *pt, hmmu_pte_t *ptep);
/*
 * CPU fault at @addr of @vma on the device-exclusive entry @orig at @ptep
 * of the PTE table @pt: lock the page (sleeping while its holder keeps it)
 * and restore the entry inside an EXCLUSIVE invalidation with owner NULL.
 * Context: mmap_lock held for read, no other lock.  Returns 0: the caller
 * retries the access (also when the entry changed meanwhile).
 */
hmmu_vm_fault_t hmmu_device_exclusive_fault(struct hmmu_vma *vma, unsigned long addr, struct hmmu_pt *pt,
					    hmmu_pte_t *ptep, hmmu_pte_t orig);

/* ---------------------------------------------------------------------- */
/* src/mm/filemap.c: page-cache objects (files and shmem)                  */
/* ---------------------------------------------------------------------- */

/*
 * struct hmmu_file: one page cache, the object behind shared anonymous
 * memory (shmem: no backing file) or behind every mapping of one regular
 * file (all mappings of the same device and inode, in any mm, share it).
 * VMAs hold references (vm_file).  A cached page holds the cache's own
 * reference; its `mapping` is the file (no ANON bit) and `index` its page
 * offset.  Pages written through a shared mapping are marked PG_dirty at
 * the write fault and written back by hmmu_file_writeback().
 */
struct hmmu_file;
/* The file object for @fd (shared by every mapping of its inode); 0, -EBADF, -ENODEV, -ENOMEM. */
int hmmu_file_open_fd(int fd, struct hmmu_file **filep);
/* A new shmem object of @size bytes; 0 or -ENOMEM. */
int hmmu_shmem_file_create(unsigned long size, struct hmmu_file **filep);
void hmmu_file_get(struct hmmu_file *file);
/* Drop a reference; the last writes dirty pages back and frees the cache. */
void hmmu_file_put(struct hmmu_file *file);
/* May the file be written through a shared mapping (opened for writing)? */
bool hmmu_file_writable(const struct hmmu_file *file);
bool hmmu_file_is_shmem(const struct hmmu_file *file);
/*
 * The cached page at @index, read in from the file (or zeroed, for shmem)
 * if absent, with a reference for the caller.  Returns 0, -EFAULT (@index
 * wholly past the end of the file or shmem object: SIGBUS), -EIO or -ENOMEM.
 * Caller holds the mmap_lock of a mapping of @file.
 */
int hmmu_filemap_get_page(struct hmmu_file *file, unsigned long index, struct hmmu_page **pagep);
/*
 * Write the dirty cached pages in [first, last] back to the file (no-op for
 * shmem).  A page mapped by no entry is marked clean; a mapped one stays
 * dirty (it may still be written through a writable entry).  0 or -EIO.
 */
int hmmu_file_writeback(struct hmmu_file *file, unsigned long first, unsigned long last);
/*
 * A shared file VMA is going away (munmap, mremap's old range, teardown):
 * what was written through it reaches the file.  No-op for other VMAs.
 */
void hmmu_vma_file_writeback(struct hmmu_vma *vma);

/* ---------------------------------------------------------------------- */
/* src/mm/hugetlb.c: hugetlb mappings (2 MiB pages, PMD leaves only)       */
/* ---------------------------------------------------------------------- */

/* Fault in @vma (a hugetlb VMA); same contract as hmmu_handle_mm_fault(). */
hmmu_vm_fault_t hmmu_hugetlb_fault(struct hmmu_vma *vma, unsigned long addr, unsigned int flags);
/* Sleep until the migration entry at @ptep (in @pt, whose ptl the caller
 * holds) is gone; drops the ptl.  Takes no page reference. */
void hmmu_migration_entry_wait(struct hmmu_pt *pt, hmmu_pte_t *ptep);

/* ---------------------------------------------------------------------- */
/* src/memremap/: device pagemaps and device-private faults                */
/* ---------------------------------------------------------------------- */

/* memremap.c */
/*
 * Take / drop a reference on @pgmap (struct hmmu_dev_pagemap::ref).  get
 * needs the count above zero already (the caller reaches a live page of
 * the pagemap); the last put wakes hmmu_memunmap_pages().  Any context
 * except under pgmap->lock.
 */
void hmmu_pgmap_get(struct hmmu_dev_pagemap *pgmap);
void hmmu_pgmap_put(struct hmmu_dev_pagemap *pgmap);
/*
 * Free a device page whose refcount just reached zero (from
 * hmmu_put_page()): clear `mapping` and anon-exclusive, call
 * pgmap->ops->page_free(), drop the pagemap reference.  The page must be
 * unmapped and unlocked; no page-table lock may be held.
 */
void hmmu_free_zone_device_page(struct hmmu_page *page);

/* fault.c */
/*
 * CPU fault on the device-private entry @orig at @ptep of @pt (@vmf filled
 * but for `page`): re-check under the ptl, try-lock the page, call its
 * pagemap's migrate_to_ram with the page locked and referenced, unlock and
 * drop it; a busy page lock is waited for, and 0 returned (retry).
 * Context: mmap_lock held for read, no other lock.
 */
hmmu_vm_fault_t hmmu_device_private_fault(struct hmmu_vm_fault *vmf, struct hmmu_pt *pt, hmmu_pte_t *ptep,
					  hmmu_pte_t orig);

/* ---------------------------------------------------------------------- */
/* src/migrate/: migration between system and device memory (spec 3)      */
/* ---------------------------------------------------------------------- */

/*
 * One migration as its steps see it: the caller's arrays and, for a VMA
 * migration, the range.  Each entry point builds it on the stack from
 * struct hmmu_migrate_vma or from the device-range arguments; between the
 * steps nothing but src[] and dst[] is kept.
 *
 * A src[] entry with VALID set names a page the migration holds: locked
 * (by the migration, or by the fault path for `fault_page`), one reference
 * owned by the migration, mapped only by migration entries.  Restore and
 * finalize give both back.
 */
struct hmmu_migrate_ctl {
	unsigned long *src, *dst;
	unsigned long npages;
	struct hmmu_vma *vma;		/* VMA migrations; NULL for device eviction */
	unsigned long start;		/* vma: the address of src[0] */
	void *owner;			/* pgmap_owner: selection and MIGRATE events */
	struct hmmu_page *fault_page;	/* locked by the fault path: never locked/unlocked here */
};

static inline unsigned long hmmu_migrate_pfn_pfn(unsigned long mpfn)
{
	return mpfn >> HMMU_MIGRATE_PFN_SHIFT;
}

/*
 * The migration entry that replaces @e, a present entry or a
 * device-private entry mapping frame @pfn: write if the mapping was
 * writable, else read-exclusive for an exclusive anonymous page, else
 * read; a present entry's young and dirty bits are carried.
 */
static inline hmmu_pte_t hmmu_make_migration_pte(hmmu_pte_t e, unsigned long pfn, bool write, bool exclusive)
{
	struct hmmu_swp_entry se = {
		.type = write ? HMMU_SWP_MIGRATION_WRITE :
			exclusive ? HMMU_SWP_MIGRATION_READ_EXCLUSIVE : HMMU_SWP_MIGRATION_READ,
		.pfn = pfn,
		.young = hmmu_pte_present(e) && hmmu_pte_young(e),
		.dirty = hmmu_pte_present(e) && hmmu_pte_dirty(e),
	};

	return hmmu_swp_entry_to_pte(se);
}

/*
 * unmap.c: finish collecting ctl->src (spec 3.4 "unmap"): unmap every
 * other mapping of each page through the reverse map, check for extra
 * references, restore the pages that cannot move (src 0).  Returns the
 * number of entries still selected (empty slots included).  Context: the
 * pages of VALID|MIGRATE entries locked and referenced; the mmap_lock of
 * ctl->vma's mm held (read), or none without a VMA; no other lock.
 */
unsigned long hmmu_migrate_unmap(struct hmmu_migrate_ctl *ctl);
/*
 * unmap.c: replace the entry @e at @ptep, which maps the locked @page, by a
 * migration entry for @pfn (@write: a write entry), moving the dirty bit
 * to the page and dropping the rmap.  An exclusive anonymous page that may
 * be DMA-pinned cannot be shared: false (counted), nothing changed.  The
 * reference @e held is left to the caller.  Context: ptl held, so GUP
 * cannot change the pin count meanwhile.
 */
bool hmmu_migrate_entry_install(struct hmmu_page *page, struct hmmu_pt *pt, hmmu_pte_t *ptep, hmmu_pte_t e,
				unsigned long pfn, bool write);
/*
 * remove.c: replace the migration entries of the pages in ctl->src by
 * mappings of their destination (committed entries) or of the page itself,
 * then unlock and release (spec 3.8).  @restore: only the entries unmap
 * gave up (VALID without MIGRATE), which then become 0; dst[] is not read.
 * Same context as hmmu_migrate_unmap().
 */
void hmmu_migrate_remove(struct hmmu_migrate_ctl *ctl, bool restore);
/* migrate.c: spec 3.6 for ctl (holes only with ctl->vma).  Same context.  Returns the pages committed. */
unsigned long hmmu_migrate_commit(struct hmmu_migrate_ctl *ctl);
/* migrate.c: @m seen as a ctl (checks the mmap_lock); false if @m lacks src, dst, vma or npages. */
bool hmmu_migrate_ctl_of(struct hmmu_migrate_vma *m, struct hmmu_migrate_ctl *ctl);
/*
 * thp.c: split the transparent huge page mapped by the PMD leaf *@pmdp of
 * @vma into base pages mapped by PTEs, for collect.  Context: mmap_lock
 * held (read), no other lock.  0 (split, or the leaf is gone: re-read the
 * PMD), -EBUSY (the page is locked, shared, pinned or referenced elsewhere;
 * nothing changed but possibly the PMD split into PTEs).
 */
int hmmu_migrate_split_thp(struct hmmu_vma *vma, struct hmmu_pt *pmd_pt, hmmu_pte_t *pmdp, unsigned long addr);
/*
 * device.c: move the device-coherent @page to a new system page (spec
 * 3.11, for long-term pins).  The caller holds a reference on @page that
 * this call consumes, and an mmap_lock (read) or none.  0, or -EBUSY
 * (locked, pinned, mapped where it cannot be unmapped, no memory).
 */
int hmmu_migrate_device_coherent_page(struct hmmu_page *page);

/* ---------------------------------------------------------------------- */
/* src/notifier/: MMU notifiers                                            */
/* ---------------------------------------------------------------------- */

/*
 * The per-mm container, created by the first registration of either kind
 * (under the mmap_lock for write, published with a release store into
 * mm->notifier_subscriptions) and freed with the mm structure.
 *
 * `lock` protects: edits of `list`, every `users` count, `itree` edits,
 * `invalidate_seq`, `active_invalidate_ranges` and `deferred_list`.
 * Without it: `list` is traversed under hmmu_rcu_read_lock(); `itree` is
 * traversed by an invalidating thread while invalidate_seq is odd (edits
 * are deferred then); `has_itree` is read with an acquire load.
 * `wq` (with `lock`) wakes read_begin and remove when invalidate_seq changes.
 */
struct hmmu_notifier_subscriptions {
	struct cds_list_head list;
	bool has_itree;
	pthread_mutex_t lock;
	pthread_cond_t wq;
	unsigned long invalidate_seq;		/* starts at 2; odd: a cycle hit a subscriber */
	unsigned long active_invalidate_ranges;	/* starts minus ends, any range */
	struct hmmu_rb_root itree;
	struct cds_list_head deferred_list;	/* interval subs to insert/remove at cycle end */
};

/* The container of @mm, or NULL (acquire: pairs with its publication). */
static inline struct hmmu_notifier_subscriptions *hmmu_mm_subscriptions(struct hmmu_mm *mm)
{
	return mm ? __atomic_load_n(&mm->notifier_subscriptions, __ATOMIC_ACQUIRE) : NULL;
}

/* mmu_notifier.c */
void hmmu_notifier_subscriptions_destroy(struct hmmu_mm *mm);
/* Teardown, before anything is unmapped: RELEASE cycle, then classic release (spec 1.6). */
void hmmu_notifier_release(struct hmmu_mm *mm);
int hmmu_notifier_clear_flush_young(struct hmmu_mm *mm, unsigned long start, unsigned long end);
int hmmu_notifier_clear_young(struct hmmu_mm *mm, unsigned long start, unsigned long end);
int hmmu_notifier_test_young(struct hmmu_mm *mm, unsigned long addr);
/* interval.c */
int hmmu_itree_invalidate_start(struct hmmu_notifier_subscriptions *subs,
				const struct hmmu_notifier_range *range);
void hmmu_itree_invalidate_end(struct hmmu_notifier_subscriptions *subs);

/* Bracket helpers for the primary MMU's own paths (blockable, owner NULL). */
static inline void hmmu_notify_start(struct hmmu_notifier_range *r, enum hmmu_notifier_event event,
				     struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	hmmu_notifier_range_init(r, event, 0, mm, start, end);
	hmmu_notifier_invalidate_range_start(r);
}

/* ---------------------------------------------------------------------- */
/* src/host/: host mms, whose addresses are real (docs/host.md)            */
/* ---------------------------------------------------------------------- */

/*
 * struct hmmu_host (src/host/host.h) binds a host mm to its arena, memfd,
 * direct map, userfaultfd and frame node.
 *
 * host.c:
 * hmmu_host_create() - give the new @mm (one user, nothing mapped) its
 *   arena; sets mm->host.  0, -EOPNOTSUPP (userfaultfd or a feature it
 *   needs is missing; hmmu_host_probe() says which), -ENOMEM, -ENOSPC (too
 *   many host mms) or another errno of the system calls.
 * hmmu_host_release() - the last user is gone and everything is unmapped:
 *   remove the notifier, drop the arena, the node and the memfd.
 * hmmu_host_mmap_check() - may hmmu_mmap() create this mapping in a host
 *   mm?  0, -EOPNOTSUPP (shared, file or hugetlb) or -ENOMEM (a fixed range
 *   outside the arena).
 * hmmu_host_unmapped_area() - hmmu_get_unmapped_area() inside the arena.
 * hmmu_host_vma_prepare() - a new VMA of a host mm: give it its anon_vma
 *   and page tables now, so that its faults never allocate.  mmap_lock held
 *   for write.  0 or -ENOMEM.
 * hmmu_host_tables_refill() - after hmmu_free_pgtables() for an unmap of
 *   [start, end): the VMAs around it get their page tables back.  mmap_lock
 *   held for write.
 * hmmu_host_alloc_frame() - the frame of @addr (hmmu_alloc_page_vma()):
 *   waits (bounded) for the previous page there to be freed.  NULL on timeout.
 * hmmu_host_validate() - recount a quiescent host's frames: a frame is
 *   USED exactly when its page is referenced.  0 or -EUCLEAN (printed).
 * hmmu_host_overlaps() - does [start, start + len) meet a host arena?
 *   Lock-free.  Library code copies such user buffers outside its locks.
 * hmmu_host_frame_free() - frame @idx was freed (refcount 0, reset): punch
 *   its memfd page out and make it claimable again.  Any context but a
 *   page-table lock.
 *
 * fault.c:
 * hmmu_host_in_fault() - this thread is resolving a host fault in its
 *   signal handler (debug checks: nothing there may call malloc).
 */
struct hmmu_host;
int hmmu_host_create(struct hmmu_mm *mm);
void hmmu_host_release(struct hmmu_mm *mm);
int hmmu_host_mmap_check(struct hmmu_host *host, unsigned long addr, size_t len, int flags);
long hmmu_host_unmapped_area(struct hmmu_host *host, unsigned long hint, unsigned long len);
int hmmu_host_vma_prepare(struct hmmu_vma *vma);
void hmmu_host_tables_refill(struct hmmu_mm *mm, unsigned long start, unsigned long end);
struct hmmu_page *hmmu_host_alloc_frame(struct hmmu_host *host, unsigned long addr);
void hmmu_host_frame_free(struct hmmu_host *host, unsigned long idx);
bool hmmu_host_overlaps(unsigned long start, size_t len);
int hmmu_host_validate(struct hmmu_host *host);
bool hmmu_host_in_fault(void);

/* ---------------------------------------------------------------------- */
/* src/mm/init.c                                                           */
/* ---------------------------------------------------------------------- */

bool hmmu_is_initialised(void);
/* Bytes of address space per host mm (struct hmmu_config::host_arena_size). */
unsigned long hmmu_host_arena_size(void);

#endif /* HMMU_INTERNAL_H */
