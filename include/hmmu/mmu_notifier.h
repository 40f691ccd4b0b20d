/* SPDX-License-Identifier: MIT */
/*
 * MMU notifiers: secondary MMUs (device page tables) hear of every change
 * that removes or downgrades a CPU mapping, before its page can be freed.
 *
 * Two styles share one per-mm container:
 *  - classic subscriptions (struct hmmu_notifier): every event of the mm,
 *    as start/end pairs plus release, the secondary-TLB hook and young ops;
 *  - interval subscriptions (struct hmmu_interval_notifier): only events
 *    overlapping [start, last], with a sequence count that tells a mirror
 *    whether what it read is still valid (hmmu_interval_read_begin/retry).
 */
#ifndef HMMU_MMU_NOTIFIER_H
#define HMMU_MMU_NOTIFIER_H

#include <stdbool.h>
#include <urcu/list.h>

#include <hmmu/mm.h>
#include <hmmu/rbtree_types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Why a range is invalidated (spec 1.4). */
enum hmmu_notifier_event {
	HMMU_NOTIFY_UNMAP = 0,		/* munmap, teardown, reaper */
	HMMU_NOTIFY_CLEAR,		/* MADV_DONTNEED, copy-on-write, huge split */
	HMMU_NOTIFY_PROTECTION_VMA,	/* mprotect */
	HMMU_NOTIFY_PROTECTION_PAGE,	/* per-page write protection (fork) */
	HMMU_NOTIFY_SOFT_DIRTY,
	HMMU_NOTIFY_RELEASE,		/* interval subscribers at teardown, [0, ULONG_MAX) */
	HMMU_NOTIFY_MIGRATE,		/* device migration; owner = the pgmap owner */
	HMMU_NOTIFY_EXCLUSIVE,		/* device-exclusive entries; owner set or NULL */
};

/* The callbacks may sleep (hmmu_notifier_range_blockable()). */
#define HMMU_NOTIFIER_RANGE_BLOCKABLE (1u << 0)

/* A range being invalidated: [start, end), end exclusive. */
struct hmmu_notifier_range {
	struct hmmu_mm *mm;
	unsigned long start, end;
	unsigned int flags;			/* HMMU_NOTIFIER_RANGE_* */
	enum hmmu_notifier_event event;
	void *owner;				/* MIGRATE/EXCLUSIVE: who caused it; else NULL */
	/* hmmu's: start counted the range in the interval tree, so end uncounts
	 * it (has_itree may turn on between the two). */
	bool itree_counted;
};

struct hmmu_notifier;

/* A deferred call after an RCU grace period (hmmu internal). */
struct hmmu_rcu_head {
	struct hmmu_rcu_head *next;
	void (*func)(struct hmmu_rcu_head *head);
};

/*
 * Classic subscription callbacks; any may be NULL.  They run inside an RCU
 * read-side section (they may sleep, when the range is blockable) and must
 * not take the mm's mmap_lock.
 */
struct hmmu_notifier_ops {
	/* The address space is going away (teardown) or unregister found the
	 * subscription still linked: drop every secondary mapping and stop
	 * creating them.  Must be idempotent; runs before any page is freed. */
	void (*release)(struct hmmu_notifier *sub, struct hmmu_mm *mm);
	/* Test and clear the secondary accessed bit of [start, end), flushing;
	 * nonzero if it was set.  The results of all subscribers are ORed. */
	int (*clear_flush_young)(struct hmmu_notifier *sub, struct hmmu_mm *mm, unsigned long start,
				 unsigned long end);
	/* The same without the flush. */
	int (*clear_young)(struct hmmu_notifier *sub, struct hmmu_mm *mm, unsigned long start,
			   unsigned long end);
	/* Report, without clearing, whether @addr is young in the secondary MMU. */
	int (*test_young)(struct hmmu_notifier *sub, struct hmmu_mm *mm, unsigned long addr);
	/* Before the CPU entries of @range change.  Return 0, or -EAGAIN only
	 * when the range is not blockable.  A subscriber that can fail must not
	 * implement invalidate_range_end. */
	int (*invalidate_range_start)(struct hmmu_notifier *sub, const struct hmmu_notifier_range *range);
	/* After the change; pages may already be freed. */
	void (*invalidate_range_end)(struct hmmu_notifier *sub, const struct hmmu_notifier_range *range);
	/* Secondary-TLB hook for hardware that walks the CPU page table itself:
	 * called under the page-table lock right after entries are cleared,
	 * before their pages can be freed, and again from the end of the
	 * range (not from hmmu_notifier_invalidate_range_only_end()).  Must not
	 * sleep. */
	void (*invalidate_range)(struct hmmu_notifier *sub, struct hmmu_mm *mm, unsigned long start,
				 unsigned long end);
	/* hmmu_notifier_get()/put() only: allocate (may return an ERR value
	 * encoded with hmmu_err_ptr) and free the subscription.  free_notifier
	 * runs after an RCU grace period and must not sleep. */
	struct hmmu_notifier *(*alloc_notifier)(struct hmmu_mm *mm);
	void (*free_notifier)(struct hmmu_notifier *sub);
};

/*
 * A classic subscription, embedded in the driver's structure.  `mm` is
 * valid (the structure, not necessarily the address space) while it is
 * registered.  The other fields belong to hmmu.
 */
struct hmmu_notifier {
	struct cds_list_head hlist;		/* on the container's list (RCU) */
	const struct hmmu_notifier_ops *ops;
	struct hmmu_mm *mm;
	unsigned int users;			/* get/put; under the container lock */
	struct hmmu_rcu_head rcu;		/* deferred free of put */
};

struct hmmu_interval_notifier;

struct hmmu_interval_notifier_ops {
	/* [range->start, range->end) overlaps the subscription.  Take the
	 * driver lock (trylock when !blockable: return false if busy), call
	 * hmmu_interval_set_seq(sub, cur_seq), tear down the mirror of the
	 * range, unlock, return true.  Returning false is allowed only when
	 * the range is not blockable. */
	bool (*invalidate)(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
			   unsigned long cur_seq);
};

/* An interval subscription over [start, last], embedded in the driver's structure. */
struct hmmu_interval_notifier {
	struct hmmu_interval_node interval_tree;
	const struct hmmu_interval_notifier_ops *ops;
	struct hmmu_mm *mm;
	struct cds_list_head deferred_item;	/* pending insert/remove; container lock */
	unsigned long invalidate_seq;		/* always odd; see read_begin */
};

/* Encode an errno in a pointer (alloc_notifier's error return) and back. */
static inline void *hmmu_err_ptr(long err) { return (void *)err; }
static inline bool hmmu_is_err(const void *p) { return (unsigned long)p >= (unsigned long)-4095; }
static inline long hmmu_ptr_err(const void *p) { return (long)p; }

/**
 * hmmu_notifier_register() - subscribe @sub to every event of @mm.
 * Takes the mmap_lock for write (the caller must not hold it) and a
 * structure reference on @mm (dropped by unregister or put).  Returns 0,
 * -EINVAL (NULL arguments, @sub without ops, @mm without users) or -ENOMEM.
 * __hmmu_notifier_register() is the same for a caller holding the
 * mmap_lock for write; with @sub NULL it only sets up the container.
 */
HMMU_EXPORT int hmmu_notifier_register(struct hmmu_notifier *sub, struct hmmu_mm *mm);
HMMU_EXPORT int __hmmu_notifier_register(struct hmmu_notifier *sub, struct hmmu_mm *mm);

/**
 * hmmu_notifier_unregister() - end a subscription made with register.  If
 * it is still linked, ops->release runs first.  Waits until no callback of
 * any subscriber is running; after return none of @sub's callbacks runs
 * again.  Drops the structure reference on @mm and clears sub->mm.  Must
 * not be called from a callback.  A @sub not registered on @mm (NULL, never
 * registered, or unregistered already) is left alone: nothing happens.
 */
HMMU_EXPORT void hmmu_notifier_unregister(struct hmmu_notifier *sub, struct hmmu_mm *mm);

/**
 * hmmu_notifier_get() - the subscription of @ops on @mm, shared: the
 * existing one with one more user, or a new one from ops->alloc_notifier.
 * Returns it, or an error pointer (hmmu_is_err): -EINVAL (NULL @ops or
 * @mm, no alloc_notifier or free_notifier), -ENOMEM, -EOVERFLOW (too many users), or the error
 * alloc_notifier returned.  hmmu_notifier_get_locked() is the same for a
 * caller holding the mmap_lock for write.
 */
HMMU_EXPORT struct hmmu_notifier *hmmu_notifier_get(const struct hmmu_notifier_ops *ops, struct hmmu_mm *mm);
HMMU_EXPORT struct hmmu_notifier *hmmu_notifier_get_locked(const struct hmmu_notifier_ops *ops,
							   struct hmmu_mm *mm);
/**
 * hmmu_notifier_put() - drop a user of a subscription from get.  The last
 * unlinks it and, after an RCU grace period, calls ops->free_notifier and
 * drops the mm reference.  release is not called.  May be called from
 * within release.  A NULL @sub, or one not from get, is ignored.
 */
HMMU_EXPORT void hmmu_notifier_put(struct hmmu_notifier *sub);
/** hmmu_notifier_synchronize() - wait for every free scheduled by put. */
HMMU_EXPORT void hmmu_notifier_synchronize(void);

/**
 * hmmu_interval_notifier_insert() - subscribe @sub to events overlapping
 * [start, start + length - 1] of @mm.  The subscription may become visible
 * only when the invalidation cycle in progress ends: use read_begin/retry
 * before trusting anything.  Takes the mmap_lock for write the first time
 * an mm gets interval subscribers; _insert_locked() is for a caller holding
 * it for write.  Returns 0, -EOVERFLOW (length 0 or the end overflows),
 * -EINVAL (NULL arguments, @mm without users) or -ENOMEM.
 */
HMMU_EXPORT int hmmu_interval_notifier_insert(struct hmmu_interval_notifier *sub, struct hmmu_mm *mm,
					      unsigned long start, unsigned long length,
					      const struct hmmu_interval_notifier_ops *ops);
HMMU_EXPORT int hmmu_interval_notifier_insert_locked(struct hmmu_interval_notifier *sub, struct hmmu_mm *mm,
						     unsigned long start, unsigned long length,
						     const struct hmmu_interval_notifier_ops *ops);
/**
 * hmmu_interval_notifier_remove() - end an interval subscription; waits for
 * the invalidation cycle in progress, so after return its callback never
 * runs again.  Must not be called from a callback, nor while holding a lock
 * the callback takes.  NULL, or a subscription already removed (sub->mm
 * NULL), is ignored.
 */
HMMU_EXPORT void hmmu_interval_notifier_remove(struct hmmu_interval_notifier *sub);

/**
 * hmmu_interval_read_begin() - start a read section: returns the sequence
 * to pass to read_retry.  Sleeps while @sub is being invalidated by the
 * cycle in progress.  Must not be called holding a lock the callback takes.
 * For NULL or a removed subscription it returns 0, which read_retry always
 * reports stale (and range_fault refuses the notifier: -EINVAL).
 */
HMMU_EXPORT unsigned long hmmu_interval_read_begin(struct hmmu_interval_notifier *sub);
/** hmmu_interval_read_retry() - under the driver lock: true if @seq is stale (or @sub NULL). */
HMMU_EXPORT bool hmmu_interval_read_retry(struct hmmu_interval_notifier *sub, unsigned long seq);
/** hmmu_interval_check_retry() - lock-free hint: true means certainly stale. */
HMMU_EXPORT bool hmmu_interval_check_retry(struct hmmu_interval_notifier *sub, unsigned long seq);
/** hmmu_interval_set_seq() - from the invalidate callback, under the driver lock.  NULL: nothing. */
HMMU_EXPORT void hmmu_interval_set_seq(struct hmmu_interval_notifier *sub, unsigned long cur_seq);

/**
 * hmmu_notifier_range_init() - describe an invalidation of [start, end) of
 * @mm for @event, owner NULL.  _init_owner() sets the owner (MIGRATE,
 * EXCLUSIVE).  @flags: HMMU_NOTIFIER_RANGE_BLOCKABLE is set by the
 * blocking start and cleared by the non-blocking one.  A NULL @range is
 * ignored.
 */
HMMU_EXPORT void hmmu_notifier_range_init(struct hmmu_notifier_range *range, enum hmmu_notifier_event event,
					  unsigned int flags, struct hmmu_mm *mm, unsigned long start,
					  unsigned long end);
HMMU_EXPORT void hmmu_notifier_range_init_owner(struct hmmu_notifier_range *range,
						enum hmmu_notifier_event event, unsigned int flags,
						struct hmmu_mm *mm, unsigned long start, unsigned long end,
						void *owner);
/** hmmu_notifier_range_blockable() - the callbacks may sleep (false for NULL). */
HMMU_EXPORT bool hmmu_notifier_range_blockable(const struct hmmu_notifier_range *range);
/**
 * hmmu_notifier_range_update_to_read_only() - true iff the invalidation is
 * an mprotect that leaves the range readable (as in 6.1, also when it adds
 * write: the test is only that the new protection allows reads).
 * Valid inside a callback for the range; false for NULL.
 */
HMMU_EXPORT bool hmmu_notifier_range_update_to_read_only(const struct hmmu_notifier_range *range);

/**
 * hmmu_notifier_invalidate_range_start() - tell every subscriber that
 * @range is about to change (blockable).  Pair with _end().
 * hmmu_notifier_invalidate_range_start_nonblock() - the same for callers
 * that must not sleep; returns -EAGAIN when a subscriber could not proceed,
 * in which case every subscriber that started got its end already and the
 * caller must not call _end().
 * hmmu_notifier_invalidate_range_end() - the change is done.
 * hmmu_notifier_invalidate_range_only_end() - the same, for callers that
 * already called the secondary-TLB hook under the page-table lock.
 * hmmu_notifier_invalidate_range() - the secondary-TLB hook, for @mm's
 * [start, end); called under the page-table lock.
 * These are for code that changes an mm's page tables; hmmu's own paths
 * call them.  A NULL @range, a range without an mm, or a NULL @mm is
 * ignored (the non-blocking start returns -EINVAL).
 */
HMMU_EXPORT void hmmu_notifier_invalidate_range_start(struct hmmu_notifier_range *range);
HMMU_EXPORT int hmmu_notifier_invalidate_range_start_nonblock(struct hmmu_notifier_range *range);
HMMU_EXPORT void hmmu_notifier_invalidate_range_end(struct hmmu_notifier_range *range);
HMMU_EXPORT void hmmu_notifier_invalidate_range_only_end(struct hmmu_notifier_range *range);
HMMU_EXPORT void hmmu_notifier_invalidate_range(struct hmmu_mm *mm, unsigned long start, unsigned long end);

/* hmmu_mm_age() flags. */
#define HMMU_AGE_FLUSH 0x0u	/* clear young bits and flush (clear_flush_young) */
#define HMMU_AGE_NOFLUSH 0x1u	/* clear young bits without flushing (clear_young) */
#define HMMU_AGE_TEST 0x2u	/* only test (test_young), clear nothing */

/**
 * hmmu_mm_age() - page aging over [start, end): for each present page, the
 * CPU entry's young bit and the secondary MMUs' (through the young ops) are
 * tested and, unless HMMU_AGE_TEST, cleared.  Takes the mmap_lock for read.
 * Returns the number of pages found young, or -EINVAL.
 */
HMMU_EXPORT long hmmu_mm_age(struct hmmu_mm *mm, unsigned long start, unsigned long end, unsigned int flags);

/**
 * hmmu_mm_reap() - the OOM reaper: unmap the private anonymous VMAs of @mm
 * (whose owner is dying) without blocking, using non-blocking
 * invalidations.  VMAs whose subscribers cannot proceed are skipped.  The
 * caller holds a structure reference (hmmu_mmgrab).  After a reap, faults
 * in @mm fail with SIGBUS.  Returns 0 when everything was reaped, -EAGAIN
 * when the mmap_lock was busy or a VMA was skipped (try again later), or
 * -EINVAL.
 */
HMMU_EXPORT int hmmu_mm_reap(struct hmmu_mm *mm);

#ifdef __cplusplus
}
#endif
#endif /* HMMU_MMU_NOTIFIER_H */
