// SPDX-License-Identifier: MIT
/*
 * MMU notifiers: the per-mm container, classic subscriptions, and the
 * invalidation entry points that dispatch to classic and interval
 * subscribers (spec section 1).
 *
 * Classic subscribers are called inside hmmu_rcu_read_lock() sections, so
 * unregister, release and put can wait for (or defer past) every callback
 * in flight with a grace period.
 */
#include <stdlib.h>

#include "internal.h"

#define HMMU_NOTIFIER_USERS_MAX 0x7fffffffu

static struct hmmu_notifier_subscriptions *hmmu_subscriptions_alloc(void)
{
	struct hmmu_notifier_subscriptions *subs = calloc(1, sizeof(*subs));

	if (!subs)
		return NULL;
	CDS_INIT_LIST_HEAD(&subs->list);
	CDS_INIT_LIST_HEAD(&subs->deferred_list);
	pthread_mutex_init(&subs->lock, NULL);
	pthread_cond_init(&subs->wq, NULL);
	subs->invalidate_seq = 2;
	return subs;
}

/* Called by the last hmmu_mmdrop(): no subscription is left. */
void hmmu_notifier_subscriptions_destroy(struct hmmu_mm *mm)
{
	struct hmmu_notifier_subscriptions *subs = mm->notifier_subscriptions;

	if (!subs)
		return;
	HMMU_BUG_ON(!cds_list_empty(&subs->list) || subs->itree.node || subs->active_invalidate_ranges);
	pthread_mutex_destroy(&subs->lock);
	pthread_cond_destroy(&subs->wq);
	free(subs);
	mm->notifier_subscriptions = NULL;
}

/*
 * Register @sub (or, with @sub NULL, only enable the interval tree).
 * Context: mmap_lock held for write, which excludes every path that
 * invalidates, so the container can be published and has_itree set.
 */
int __hmmu_notifier_register(struct hmmu_notifier *sub, struct hmmu_mm *mm)
{
	struct hmmu_notifier_subscriptions *subs;

	if (!mm || (sub && !sub->ops) || atomic_load(&mm->mm_users) <= 0)
		return -EINVAL;
	hmmu_mmap_assert_write_locked(mm);
	subs = mm->notifier_subscriptions;
	if (!subs) {
		subs = hmmu_subscriptions_alloc();
		if (!subs)
			return -ENOMEM;
		/* Pairs with the acquire in hmmu_mm_subscriptions(). */
		__atomic_store_n(&mm->notifier_subscriptions, subs, __ATOMIC_RELEASE);
	}
	if (!sub) {
		__atomic_store_n(&subs->has_itree, true, __ATOMIC_RELEASE);
		return 0;
	}
	hmmu_mmgrab(mm);
	sub->mm = mm;
	sub->users = 1;
	pthread_mutex_lock(&subs->lock);
	hmmu_list_add_rcu(&sub->hlist, &subs->list);
	pthread_mutex_unlock(&subs->lock);
	return 0;
}

int hmmu_notifier_register(struct hmmu_notifier *sub, struct hmmu_mm *mm)
{
	int ret;

	if (!mm || !sub)
		return -EINVAL;
	hmmu_mmap_write_lock(mm);
	ret = __hmmu_notifier_register(sub, mm);
	hmmu_mmap_write_unlock(mm);
	return ret;
}

/* Unlink @sub if it still is; true if this call unlinked it. */
static bool hmmu_notifier_unlink(struct hmmu_notifier_subscriptions *subs, struct hmmu_notifier *sub)
{
	bool linked;

	pthread_mutex_lock(&subs->lock);
	linked = hmmu_list_linked_rcu(&sub->hlist);
	if (linked)
		hmmu_list_del_rcu(&sub->hlist);
	pthread_mutex_unlock(&subs->lock);
	return linked;
}

static bool hmmu_notifier_linked(struct hmmu_notifier_subscriptions *subs, struct hmmu_notifier *sub)
{
	bool linked;

	pthread_mutex_lock(&subs->lock);
	linked = hmmu_list_linked_rcu(&sub->hlist);
	pthread_mutex_unlock(&subs->lock);
	return linked;
}

void hmmu_notifier_unregister(struct hmmu_notifier *sub, struct hmmu_mm *mm)
{
	struct hmmu_notifier_subscriptions *subs = mm ? hmmu_mm_subscriptions(mm) : NULL;

	if (!sub || !subs)
		return;
	if (hmmu_notifier_linked(subs, sub)) {
		/* Still linked: teardown has not released it, so we do.  A
		 * racing teardown may release it too (release is idempotent). */
		hmmu_rcu_read_lock();
		if (sub->ops->release)
			sub->ops->release(sub, mm);
		hmmu_rcu_read_unlock();
		hmmu_notifier_unlink(subs, sub);
	}
	/* No callback of any subscriber is still running after this. */
	hmmu_synchronize_rcu();
	hmmu_mmdrop(mm);
}

/* Find @ops's subscription on @mm and take a user; NULL if none. */
static struct hmmu_notifier *hmmu_notifier_find_get(struct hmmu_notifier_subscriptions *subs,
						    const struct hmmu_notifier_ops *ops, int *err)
{
	struct hmmu_notifier *sub, *found = NULL;

	pthread_mutex_lock(&subs->lock);
	cds_list_for_each_entry(sub, &subs->list, hlist) {
		if (sub->ops != ops || !sub->users)
			continue;
		if (sub->users == HMMU_NOTIFIER_USERS_MAX)
			*err = -EOVERFLOW;
		else
			sub->users++;
		found = sub;
		break;
	}
	pthread_mutex_unlock(&subs->lock);
	return found;
}

struct hmmu_notifier *hmmu_notifier_get_locked(const struct hmmu_notifier_ops *ops, struct hmmu_mm *mm)
{
	struct hmmu_notifier_subscriptions *subs;
	struct hmmu_notifier *sub;
	int err = 0;

	if (!ops || !mm || !ops->alloc_notifier || !ops->free_notifier)
		return hmmu_err_ptr(-EINVAL);
	hmmu_mmap_assert_write_locked(mm);
	subs = mm->notifier_subscriptions;
	if (subs && (sub = hmmu_notifier_find_get(subs, ops, &err)))
		return err ? hmmu_err_ptr(err) : sub;
	sub = ops->alloc_notifier(mm);
	if (!sub || hmmu_is_err(sub))
		return sub ? sub : hmmu_err_ptr(-ENOMEM);
	sub->ops = ops;
	err = __hmmu_notifier_register(sub, mm);
	if (err) {
		ops->free_notifier(sub);
		return hmmu_err_ptr(err);
	}
	return sub;
}

struct hmmu_notifier *hmmu_notifier_get(const struct hmmu_notifier_ops *ops, struct hmmu_mm *mm)
{
	struct hmmu_notifier *sub;

	if (!mm)
		return hmmu_err_ptr(-EINVAL);
	hmmu_mmap_write_lock(mm);
	sub = hmmu_notifier_get_locked(ops, mm);
	hmmu_mmap_write_unlock(mm);
	return sub;
}

/* After the grace period that followed the last put. */
static void hmmu_notifier_free_rcu(struct hmmu_rcu_head *head)
{
	struct hmmu_notifier *sub = hmmu_container_of(head, struct hmmu_notifier, rcu);
	struct hmmu_mm *mm = sub->mm;

	sub->ops->free_notifier(sub);
	hmmu_mmdrop(mm);
}

void hmmu_notifier_put(struct hmmu_notifier *sub)
{
	struct hmmu_notifier_subscriptions *subs;
	unsigned int users;

	if (!sub || !sub->mm)
		return;
	subs = hmmu_mm_subscriptions(sub->mm);
	pthread_mutex_lock(&subs->lock);
	HMMU_BUG_ON(!sub->users);
	users = --sub->users;
	if (!users && hmmu_list_linked_rcu(&sub->hlist))
		hmmu_list_del_rcu(&sub->hlist);
	pthread_mutex_unlock(&subs->lock);
	if (!users)
		hmmu_call_rcu(&sub->rcu, hmmu_notifier_free_rcu);
}

void hmmu_notifier_synchronize(void)
{
	hmmu_rcu_barrier();
}

/* ------------------------------------------------------------------ */
/* Ranges                                                              */
/* ------------------------------------------------------------------ */

void hmmu_notifier_range_init_owner(struct hmmu_notifier_range *range, enum hmmu_notifier_event event,
				    unsigned int flags, struct hmmu_mm *mm, unsigned long start,
				    unsigned long end, void *owner)
{
	range->mm = mm;
	range->start = start;
	range->end = end;
	range->flags = flags;
	range->event = event;
	range->owner = owner;
	range->itree_counted = false;
}

void hmmu_notifier_range_init(struct hmmu_notifier_range *range, enum hmmu_notifier_event event,
			      unsigned int flags, struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	hmmu_notifier_range_init_owner(range, event, flags, mm, start, end, NULL);
}

bool hmmu_notifier_range_blockable(const struct hmmu_notifier_range *range)
{
	return range->flags & HMMU_NOTIFIER_RANGE_BLOCKABLE;
}

/*
 * Context: a callback for @range, which holds the mmap_lock for write
 * (mprotect), so the VMA's flags are its new ones.
 */
bool hmmu_notifier_range_update_to_read_only(const struct hmmu_notifier_range *range)
{
	struct hmmu_vma *vma;

	if (range->event != HMMU_NOTIFY_PROTECTION_VMA)
		return false;
	vma = hmmu_vma_lookup(range->mm, range->start);
	return vma && (vma->vm_flags & HMMU_VM_READ);
}

/* ------------------------------------------------------------------ */
/* Invalidation                                                        */
/* ------------------------------------------------------------------ */

/*
 * Classic start: call every subscriber, even after one fails; on failure
 * (only -EAGAIN, only when not blockable) give every subscriber that has
 * an end its end, and return the error.
 */
static int hmmu_list_invalidate_start(struct hmmu_notifier_subscriptions *subs,
				      const struct hmmu_notifier_range *range)
{
	struct hmmu_notifier *sub;
	int ret = 0;

	hmmu_rcu_read_lock();
	hmmu_list_for_each_entry_rcu(sub, &subs->list, hlist) {
		int r = sub->ops->invalidate_range_start ? sub->ops->invalidate_range_start(sub, range) : 0;

		HMMU_BUG_ON(r && (hmmu_notifier_range_blockable(range) || r != -EAGAIN));
		if (r)
			ret = r;
	}
	if (ret) {
		hmmu_list_for_each_entry_rcu(sub, &subs->list, hlist)
			if (sub->ops->invalidate_range_end)
				sub->ops->invalidate_range_end(sub, range);
	}
	hmmu_rcu_read_unlock();
	return ret;
}

static int hmmu_invalidate_start(struct hmmu_notifier_range *range)
{
	struct hmmu_notifier_subscriptions *subs = hmmu_mm_subscriptions(range->mm);
	bool itree;
	int ret;

	range->itree_counted = false;
	if ((unsigned int)range->event <= HMMU_NOTIFY_EXCLUSIVE)
		hmmu_count(HMMU_STAT_INVALIDATE_UNMAP + range->event);
	hmmu_trace(HMMU_TRACE_INVALIDATE, HMMU_TRACE_BEGIN, range->start, range->end, 0, range->event);
	if (!subs)
		return 0;
	itree = __atomic_load_n(&subs->has_itree, __ATOMIC_ACQUIRE);
	if (itree) {
		ret = hmmu_itree_invalidate_start(subs, range);
		if (ret)
			return ret;
		range->itree_counted = true;
	}
	if (hmmu_list_empty_rcu(&subs->list))
		return 0;
	ret = hmmu_list_invalidate_start(subs, range);
	/* The caller will not call end: close the interval cycle opened above
	 * too (6.1 leaves it open; see docs/deviations.md). */
	if (ret && itree)
		hmmu_itree_invalidate_end(subs);
	return ret;
}

void hmmu_notifier_invalidate_range_start(struct hmmu_notifier_range *range)
{
	int ret;

	range->flags |= HMMU_NOTIFIER_RANGE_BLOCKABLE;
	ret = hmmu_invalidate_start(range);
	HMMU_BUG_ON(ret);	/* blockable callbacks cannot fail */
}

int hmmu_notifier_invalidate_range_start_nonblock(struct hmmu_notifier_range *range)
{
	int ret;

	range->flags &= ~HMMU_NOTIFIER_RANGE_BLOCKABLE;
	ret = hmmu_invalidate_start(range);
	if (ret)	/* refused: the caller will not call end, so the span ends here */
		hmmu_trace(HMMU_TRACE_INVALIDATE, HMMU_TRACE_END, range->start, range->end, 0, range->event);
	return ret;
}

static void hmmu_invalidate_end_subs(struct hmmu_notifier_range *range, bool only_end)
{
	struct hmmu_notifier_subscriptions *subs = hmmu_mm_subscriptions(range->mm);
	struct hmmu_notifier *sub;

	if (!subs)
		return;
	if (range->itree_counted)
		hmmu_itree_invalidate_end(subs);
	if (hmmu_list_empty_rcu(&subs->list))
		return;
	hmmu_rcu_read_lock();
	hmmu_list_for_each_entry_rcu(sub, &subs->list, hlist) {
		if (!only_end && sub->ops->invalidate_range)
			sub->ops->invalidate_range(sub, range->mm, range->start, range->end);
		if (sub->ops->invalidate_range_end)
			sub->ops->invalidate_range_end(sub, range);
	}
	hmmu_rcu_read_unlock();
}

/* The subscribers' ends, then the end of the invalidation's trace span. */
static void hmmu_invalidate_end(struct hmmu_notifier_range *range, bool only_end)
{
	hmmu_invalidate_end_subs(range, only_end);
	hmmu_trace(HMMU_TRACE_INVALIDATE, HMMU_TRACE_END, range->start, range->end, 0, range->event);
}

void hmmu_notifier_invalidate_range_end(struct hmmu_notifier_range *range)
{
	hmmu_invalidate_end(range, false);
}

void hmmu_notifier_invalidate_range_only_end(struct hmmu_notifier_range *range)
{
	hmmu_invalidate_end(range, true);
}

void hmmu_notifier_invalidate_range(struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	struct hmmu_notifier_subscriptions *subs = hmmu_mm_subscriptions(mm);
	struct hmmu_notifier *sub;

	if (!subs || hmmu_list_empty_rcu(&subs->list))
		return;
	hmmu_rcu_read_lock();
	hmmu_list_for_each_entry_rcu(sub, &subs->list, hlist)
		if (sub->ops->invalidate_range)
			sub->ops->invalidate_range(sub, mm, start, end);
	hmmu_rcu_read_unlock();
}

/*
 * Teardown (spec 1.6): one blockable RELEASE cycle over everything for
 * interval subscribers, then every classic release, then unlink them all
 * and wait for a grace period, so a racing unregister's release has
 * finished before the first page is freed.
 */
void hmmu_notifier_release(struct hmmu_mm *mm)
{
	struct hmmu_notifier_subscriptions *subs = hmmu_mm_subscriptions(mm);
	struct hmmu_notifier_range range;
	struct hmmu_notifier *sub;

	if (!subs)
		return;
	if (__atomic_load_n(&subs->has_itree, __ATOMIC_ACQUIRE)) {
		int err;

		hmmu_notifier_range_init(&range, HMMU_NOTIFY_RELEASE, HMMU_NOTIFIER_RANGE_BLOCKABLE, mm, 0, ~0UL);
		err = hmmu_itree_invalidate_start(subs, &range);
		HMMU_BUG_ON(err);	/* blockable: subscribers cannot refuse */
		hmmu_itree_invalidate_end(subs);
	}
	hmmu_rcu_read_lock();
	hmmu_list_for_each_entry_rcu(sub, &subs->list, hlist)
		if (sub->ops->release)
			sub->ops->release(sub, mm);
	hmmu_rcu_read_unlock();
	pthread_mutex_lock(&subs->lock);
	while (!cds_list_empty(&subs->list))
		hmmu_list_del_rcu(subs->list.next);
	pthread_mutex_unlock(&subs->lock);
	hmmu_synchronize_rcu();
}

/* ------------------------------------------------------------------ */
/* Young bits                                                          */
/* ------------------------------------------------------------------ */

enum hmmu_young_op { HMMU_YOUNG_CLEAR_FLUSH, HMMU_YOUNG_CLEAR, HMMU_YOUNG_TEST };

/* OR over the subscribers of one young op; the test stops at the first young. */
static int hmmu_notifier_young(struct hmmu_mm *mm, unsigned long start, unsigned long end,
			       enum hmmu_young_op op)
{
	struct hmmu_notifier_subscriptions *subs = hmmu_mm_subscriptions(mm);
	struct hmmu_notifier *sub;
	int young = 0;

	if (!subs || hmmu_list_empty_rcu(&subs->list))
		return 0;
	hmmu_rcu_read_lock();
	hmmu_list_for_each_entry_rcu(sub, &subs->list, hlist) {
		const struct hmmu_notifier_ops *ops = sub->ops;

		if (op == HMMU_YOUNG_CLEAR_FLUSH && ops->clear_flush_young)
			young |= ops->clear_flush_young(sub, mm, start, end);
		else if (op == HMMU_YOUNG_CLEAR && ops->clear_young)
			young |= ops->clear_young(sub, mm, start, end);
		else if (op == HMMU_YOUNG_TEST && ops->test_young && ops->test_young(sub, mm, start)) {
			young = 1;
			break;
		}
	}
	hmmu_rcu_read_unlock();
	return young;
}

int hmmu_notifier_clear_flush_young(struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	return hmmu_notifier_young(mm, start, end, HMMU_YOUNG_CLEAR_FLUSH);
}

int hmmu_notifier_clear_young(struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	return hmmu_notifier_young(mm, start, end, HMMU_YOUNG_CLEAR);
}

int hmmu_notifier_test_young(struct hmmu_mm *mm, unsigned long addr)
{
	return hmmu_notifier_young(mm, addr, addr + HMMU_PAGE_SIZE, HMMU_YOUNG_TEST);
}
