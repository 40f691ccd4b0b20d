// SPDX-License-Identifier: MIT
/*
 * Page references, mapping counts and the page lock.
 *
 * A compound page is one object: its reference count, entire mapcount, pin
 * count and lock bit live on the head frame, and every call here first maps
 * the frame it is given to its head.
 */
#include "internal.h"

#define PG_LOCKED (1UL << HMMU_PG_locked)
#define PG_WAITERS (1UL << HMMU_PG_waiters)

/* ---------------------------------------------------------------------- */
/* References                                                              */
/* ---------------------------------------------------------------------- */

/* The caller already holds a reference, so no ordering is needed. */
void hmmu_get_page(struct hmmu_page *page)
{
	struct hmmu_page *head;
	int old;

	if (!page)
		return;
	head = hmmu_compound_head(page);
	old = atomic_fetch_add_explicit(&head->_refcount, 1, memory_order_relaxed);
	HMMU_BUG_ON(old <= 0);
}

/*
 * A speculative reference, for callers that found the frame without holding
 * one (page-table walks, pfn lookups).  Fails on a free page.  A frame can be
 * freed and reused inside another compound page between reading its head and
 * taking the reference, so the head is checked again afterwards.
 */
bool hmmu_get_page_unless_zero(struct hmmu_page *page)
{
	struct hmmu_page *head;
	int ref;

	if (!page)
		return false;
	head = hmmu_compound_head(page);
	ref = atomic_load_explicit(&head->_refcount, memory_order_relaxed);
	do {
		if (ref <= 0)
			return false;
		/* Acquire pairs with the release store in prep_new_block(). */
	} while (!atomic_compare_exchange_weak_explicit(&head->_refcount, &ref, ref + 1,
							memory_order_acquire,
							memory_order_relaxed));
	if (hmmu_unlikely(hmmu_compound_head(page) != head)) {
		hmmu_put_page(head);
		return false;
	}
	return true;
}

/*
 * Context: any, but no node lock may be held (the last put takes one).
 * Dropping a reference that was never taken is a bug.
 */
void hmmu_put_page(struct hmmu_page *page)
{
	struct hmmu_page *head;
	int old;

	if (!page)
		return;
	head = hmmu_compound_head(page);
	/*
	 * Release: this holder's accesses to the page happen before the free.
	 * Acquire: the thread that frees sees every other holder's accesses.
	 * Pairs with itself in the other holders' puts.
	 */
	old = atomic_fetch_sub_explicit(&head->_refcount, 1, memory_order_acq_rel);
	HMMU_BUG_ON(old <= 0);
	if (old != 1)
		return;
	/* Device pages go back to their driver, never to the allocator. */
	if (head->pgmap)
		hmmu_free_zone_device_page(head);
	else
		hmmu_free_frozen_page(head);
}

int hmmu_page_ref_count(const struct hmmu_page *page)
{
	if (!page)
		return 0;
	return atomic_load_explicit(&hmmu_compound_head((struct hmmu_page *)page)->_refcount,
				    memory_order_acquire);
}

/* PTE mappings of this frame plus PMD mappings of its whole compound page. */
int hmmu_page_mapcount(struct hmmu_page *page)
{
	if (!page)
		return 0;
	return atomic_load_explicit(&page->_mapcount, memory_order_relaxed) +
	       atomic_load_explicit(&hmmu_compound_head(page)->_entire_mapcount,
				    memory_order_relaxed);
}

bool hmmu_page_maybe_dma_pinned(struct hmmu_page *page)
{
	if (!page)
		return false;
	return atomic_load_explicit(&hmmu_compound_head(page)->_pincount,
				    memory_order_acquire) > 0;
}

/* The anon bit lives in the head's `mapping`, like the rest of the rmap data. */
bool hmmu_page_is_anon(const struct hmmu_page *page)
{
	const struct hmmu_page *head;

	if (!page)
		return false;
	head = hmmu_compound_head((struct hmmu_page *)page);
	return (uintptr_t)head->mapping & HMMU_PAGE_MAPPING_ANON;
}

unsigned int hmmu_compound_order(struct hmmu_page *page)
{
	struct hmmu_page *head;

	if (!page)
		return 0;
	head = hmmu_compound_head(page);
	return hmmu_page_test_flag(head, HMMU_PG_head) ? head->compound_order : 0;
}

/* ---------------------------------------------------------------------- */
/* The page lock                                                           */
/* ---------------------------------------------------------------------- */

/*
 * The lock is PG_locked of the head frame; sleepers use the hashed wait
 * bucket of the head and announce themselves with PG_waiters.
 *
 * No wakeup is lost, and no seq_cst is needed, because every step of the
 * handshake is a read-modify-write of the same atomic word `flags`: all RMWs
 * of one object are totally ordered, and each reads the value the previous
 * one left.  A sleeper does W = fetch_or(PG_waiters) then T = fetch_or
 * (PG_locked) (sequenced, so W precedes T in that order); the unlocker does
 * U = fetch_and(~PG_locked) and wakes if U's old value had PG_waiters.  If U
 * comes before W, T reads PG_locked clear and the sleeper takes the lock (or
 * a newer holder's unlock sees W).  If U comes after W, U sees PG_waiters:
 * PG_waiters is only cleared under the bucket lock, which the sleeper holds
 * from W until pthread_cond_wait() releases it, so the unlocker's
 * lock-clear-broadcast reaches the sleeper.
 */

static bool trylock_head(struct hmmu_page *head)
{
	/*
	 * Acquire pairs with the release fetch_and in hmmu_unlock_page(): the
	 * new holder sees everything the previous holder wrote.
	 */
	return !(atomic_fetch_or_explicit(&head->flags, PG_LOCKED, memory_order_acquire) &
		 PG_LOCKED);
}

bool hmmu_trylock_page(struct hmmu_page *page)
{
	if (!page)
		return false;
	return trylock_head(hmmu_compound_head(page));
}

/* Sleep on the head's bucket until the lock is ours.  Takes the bucket lock. */
static void lock_head_slow(struct hmmu_page *head)
{
	struct hmmu_wait_bucket *b = hmmu_wait_bucket_of(head);

	pthread_mutex_lock(&b->lock);
	for (;;) {
		/* W: pairs with U in hmmu_unlock_page(); see the comment above. */
		atomic_fetch_or_explicit(&head->flags, PG_WAITERS, memory_order_relaxed);
		/* T: after W in the modification order of `flags`. */
		if (trylock_head(head))
			break;
		pthread_cond_wait(&b->cond, &b->lock);
	}
	pthread_mutex_unlock(&b->lock);
}

/* Context: may sleep; not under a PTE-table lock (use hmmu_trylock_page() there). */
void hmmu_lock_page(struct hmmu_page *page)
{
	struct hmmu_page *head;

	if (!page)
		return;
	head = hmmu_compound_head(page);
	if (hmmu_likely(trylock_head(head)))
		return;
	lock_head_slow(head);
}

/* Clear PG_waiters and wake the bucket; takes the bucket lock. */
static void wake_page_waiters(struct hmmu_page *head)
{
	struct hmmu_wait_bucket *b = hmmu_wait_bucket_of(head);

	pthread_mutex_lock(&b->lock);
	/* Under b->lock, where every sleeper sets it; sleepers that go back to sleep set it again. */
	atomic_fetch_and_explicit(&head->flags, ~PG_WAITERS, memory_order_relaxed);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* The caller must hold the page lock; unlocking a free lock is a bug. */
void hmmu_unlock_page(struct hmmu_page *page)
{
	struct hmmu_page *head;
	unsigned long old;

	if (!page)
		return;
	head = hmmu_compound_head(page);
	/*
	 * U: release pairs with the acquire in trylock_head() and in
	 * hmmu_wait_on_page_locked(); the old value's PG_waiters pairs with W
	 * in lock_head_slow() and hmmu_wait_on_page_locked().
	 */
	old = atomic_fetch_and_explicit(&head->flags, ~PG_LOCKED, memory_order_release);
	HMMU_BUG_ON(!(old & PG_LOCKED));
	if (old & PG_WAITERS)
		wake_page_waiters(head);
}

bool hmmu_page_locked(struct hmmu_page *page)
{
	if (!page)
		return false;
	return hmmu_page_test_flag(hmmu_compound_head(page), HMMU_PG_locked);
}

/*
 * Sleep until the page lock is free, without taking it or a reference.
 * If @drop is set, it is a mutex the caller holds (a page-table lock) that
 * keeps the frame from being freed and reused; it is released once the
 * sleeper is queued, so an unlock after that point cannot be missed.
 * Context: may sleep.
 */
void hmmu_wait_on_page_locked_drop(struct hmmu_page *page, pthread_mutex_t *drop)
{
	struct hmmu_page *head = hmmu_compound_head(page);
	struct hmmu_wait_bucket *b = hmmu_wait_bucket_of(head);

	pthread_mutex_lock(&b->lock);
	/*
	 * W and the PG_locked test are one RMW here; it pairs with U in
	 * hmmu_unlock_page() as described above.  Acquire: it reads U's value
	 * or a later RMW's, so the holder's writes are visible on return.
	 */
	if (atomic_fetch_or_explicit(&head->flags, PG_WAITERS, memory_order_acquire) & PG_LOCKED) {
		if (drop)
			pthread_mutex_unlock(drop);
		drop = NULL;
		while (atomic_fetch_or_explicit(&head->flags, PG_WAITERS, memory_order_acquire) & PG_LOCKED)
			pthread_cond_wait(&b->cond, &b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	if (drop)
		pthread_mutex_unlock(drop);
}

void hmmu_wait_on_page_locked(struct hmmu_page *page)
{
	if (!page || !hmmu_page_test_flag(hmmu_compound_head(page), HMMU_PG_locked))
		return;
	hmmu_wait_on_page_locked_drop(page, NULL);
}
