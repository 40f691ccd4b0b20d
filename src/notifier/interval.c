// SPDX-License-Identifier: MIT
/*
 * Interval notifiers (spec 1.7): subscriptions over [start, last] in an
 * interval tree, and the sequence protocol that lets a mirror detect that
 * what it read may be stale.
 *
 * The container's invalidate_seq is even while no invalidation has hit a
 * subscriber, odd from the first start that hits one until the last active
 * start/end pair of any range ends.  While it is odd the tree is frozen:
 * inserts and removes go to the deferred list and are applied when the
 * cycle ends.  A subscriber's own seq is always odd: set to the cycle's seq
 * by its invalidate callback (under the driver's lock), and compared by
 * read_retry under the same lock.
 */
#include "internal.h"

static bool hmmu_itree_is_invalidating(const struct hmmu_notifier_subscriptions *subs)
{
	return subs->invalidate_seq & 1;
}

static struct hmmu_interval_notifier *hmmu_itree_first(struct hmmu_notifier_subscriptions *subs,
						       const struct hmmu_notifier_range *range)
{
	struct hmmu_interval_node *n = hmmu_interval_tree_iter_first(&subs->itree, range->start, range->end - 1);

	return n ? hmmu_container_of(n, struct hmmu_interval_notifier, interval_tree) : NULL;
}

static struct hmmu_interval_notifier *hmmu_itree_next(struct hmmu_interval_notifier *sub,
						      const struct hmmu_notifier_range *range)
{
	struct hmmu_interval_node *n =
		hmmu_interval_tree_iter_next(&sub->interval_tree, range->start, range->end - 1);

	return n ? hmmu_container_of(n, struct hmmu_interval_notifier, interval_tree) : NULL;
}

/*
 * Open a cycle for @range and call each overlapping subscriber.  Returns 0,
 * or -EAGAIN when a subscriber refused a non-blockable range (the cycle is
 * closed again, as end would).  Refusal of a blockable range is a bug.
 */
int hmmu_itree_invalidate_start(struct hmmu_notifier_subscriptions *subs, const struct hmmu_notifier_range *range)
{
	struct hmmu_interval_notifier *sub;
	unsigned long cur_seq;

	pthread_mutex_lock(&subs->lock);
	subs->active_invalidate_ranges++;
	sub = hmmu_itree_first(subs, range);
	if (sub)
		subs->invalidate_seq |= 1;
	cur_seq = subs->invalidate_seq;
	pthread_mutex_unlock(&subs->lock);
	/* No lock: while the seq is odd nobody edits the tree. */
	for (; sub; sub = hmmu_itree_next(sub, range)) {
		if (sub->ops->invalidate(sub, range, cur_seq))
			continue;
		HMMU_BUG_ON(hmmu_notifier_range_blockable(range));
		hmmu_itree_invalidate_end(subs);
		return -EAGAIN;
	}
	return 0;
}

/* Apply the inserts and removes deferred during the cycle; subs->lock held. */
static void hmmu_itree_apply_deferred(struct hmmu_notifier_subscriptions *subs)
{
	while (!cds_list_empty(&subs->deferred_list)) {
		struct hmmu_interval_notifier *sub =
			cds_list_entry(subs->deferred_list.next, struct hmmu_interval_notifier, deferred_item);

		cds_list_del_init(&sub->deferred_item);
		if (hmmu_rb_empty_node(&sub->interval_tree.rb))
			hmmu_interval_tree_insert(&sub->interval_tree, &subs->itree);
		else
			hmmu_interval_tree_remove(&sub->interval_tree, &subs->itree);
	}
}

void hmmu_itree_invalidate_end(struct hmmu_notifier_subscriptions *subs)
{
	pthread_mutex_lock(&subs->lock);
	HMMU_BUG_ON(!subs->active_invalidate_ranges);
	if (--subs->active_invalidate_ranges || !hmmu_itree_is_invalidating(subs)) {
		pthread_mutex_unlock(&subs->lock);
		return;
	}
	subs->invalidate_seq++;		/* even: the cycle is over */
	hmmu_itree_apply_deferred(subs);
	pthread_cond_broadcast(&subs->wq);
	pthread_mutex_unlock(&subs->lock);
}

/* Insert into a container that has its tree enabled (spec 1.7, Insert). */
static int hmmu_interval_insert(struct hmmu_interval_notifier *sub, struct hmmu_mm *mm,
				struct hmmu_notifier_subscriptions *subs)
{
	hmmu_mmgrab(mm);
	pthread_mutex_lock(&subs->lock);
	if (subs->active_invalidate_ranges) {
		if (hmmu_itree_is_invalidating(subs)) {
			cds_list_add(&sub->deferred_item, &subs->deferred_list);
		} else {
			/* Active ranges may overlap ours: make readers wait for them. */
			subs->invalidate_seq |= 1;
			hmmu_interval_tree_insert(&sub->interval_tree, &subs->itree);
		}
		__atomic_store_n(&sub->invalidate_seq, subs->invalidate_seq, __ATOMIC_RELAXED);
	} else {
		HMMU_BUG_ON(hmmu_itree_is_invalidating(subs));
		__atomic_store_n(&sub->invalidate_seq, subs->invalidate_seq - 1, __ATOMIC_RELAXED);
		hmmu_interval_tree_insert(&sub->interval_tree, &subs->itree);
	}
	pthread_mutex_unlock(&subs->lock);
	return 0;
}

/* Check the arguments and fill @sub; 0, -EOVERFLOW or -EINVAL. */
static int hmmu_interval_prepare(struct hmmu_interval_notifier *sub, struct hmmu_mm *mm, unsigned long start,
				 unsigned long length, const struct hmmu_interval_notifier_ops *ops)
{
	if (!sub || !mm || !ops || !ops->invalidate)
		return -EINVAL;
	if (length == 0 || start + length - 1 < start)
		return -EOVERFLOW;
	if (atomic_load(&mm->mm_users) <= 0)
		return -EINVAL;
	sub->mm = mm;
	sub->ops = ops;
	sub->interval_tree.start = start;
	sub->interval_tree.last = start + length - 1;
	hmmu_rb_clear_node(&sub->interval_tree.rb);
	CDS_INIT_LIST_HEAD(&sub->deferred_item);
	return 0;
}

int hmmu_interval_notifier_insert_locked(struct hmmu_interval_notifier *sub, struct hmmu_mm *mm,
					 unsigned long start, unsigned long length,
					 const struct hmmu_interval_notifier_ops *ops)
{
	struct hmmu_notifier_subscriptions *subs;
	int ret = hmmu_interval_prepare(sub, mm, start, length, ops);

	if (ret)
		return ret;
	hmmu_mmap_assert_write_locked(mm);
	subs = hmmu_mm_subscriptions(mm);
	if (!subs || !__atomic_load_n(&subs->has_itree, __ATOMIC_ACQUIRE)) {
		ret = __hmmu_notifier_register(NULL, mm);
		if (ret)
			return ret;
		subs = hmmu_mm_subscriptions(mm);
	}
	return hmmu_interval_insert(sub, mm, subs);
}

int hmmu_interval_notifier_insert(struct hmmu_interval_notifier *sub, struct hmmu_mm *mm, unsigned long start,
				  unsigned long length, const struct hmmu_interval_notifier_ops *ops)
{
	struct hmmu_notifier_subscriptions *subs;
	int ret = hmmu_interval_prepare(sub, mm, start, length, ops);

	if (ret)
		return ret;
	subs = hmmu_mm_subscriptions(mm);
	if (!subs || !__atomic_load_n(&subs->has_itree, __ATOMIC_ACQUIRE)) {
		hmmu_mmap_write_lock(mm);
		ret = __hmmu_notifier_register(NULL, mm);
		hmmu_mmap_write_unlock(mm);
		if (ret)
			return ret;
		subs = hmmu_mm_subscriptions(mm);
	}
	return hmmu_interval_insert(sub, mm, subs);
}

/* Sleep until the container's seq moves away from @seq; subs->lock held. */
static void hmmu_itree_wait_seq(struct hmmu_notifier_subscriptions *subs, unsigned long seq)
{
	while (subs->invalidate_seq == seq)
		pthread_cond_wait(&subs->wq, &subs->lock);
}

void hmmu_interval_notifier_remove(struct hmmu_interval_notifier *sub)
{
	struct hmmu_mm *mm = sub ? sub->mm : NULL;
	struct hmmu_notifier_subscriptions *subs;

	if (!mm)
		return;
	subs = hmmu_mm_subscriptions(mm);
	pthread_mutex_lock(&subs->lock);
	if (hmmu_itree_is_invalidating(subs)) {
		if (hmmu_rb_empty_node(&sub->interval_tree.rb)) {
			cds_list_del_init(&sub->deferred_item);	/* a pending insert: forget it */
		} else {
			cds_list_add(&sub->deferred_item, &subs->deferred_list);
			/* The cycle may call us until it ends and removes us. */
			hmmu_itree_wait_seq(subs, subs->invalidate_seq);
		}
	} else {
		hmmu_interval_tree_remove(&sub->interval_tree, &subs->itree);
	}
	pthread_mutex_unlock(&subs->lock);
	sub->mm = NULL;
	hmmu_mmdrop(mm);
}

unsigned long hmmu_interval_read_begin(struct hmmu_interval_notifier *sub)
{
	struct hmmu_notifier_subscriptions *subs;
	unsigned long seq;

	if (!sub || !sub->mm)
		return 0;	/* even: never a subscription's sequence, so always stale */
	subs = hmmu_mm_subscriptions(sub->mm);
	pthread_mutex_lock(&subs->lock);
	/* Equal to the container's odd seq: this cycle already hit us. */
	seq = __atomic_load_n(&sub->invalidate_seq, __ATOMIC_RELAXED);
	if (seq == subs->invalidate_seq)
		hmmu_itree_wait_seq(subs, seq);
	pthread_mutex_unlock(&subs->lock);
	return seq;
}

bool hmmu_interval_read_retry(struct hmmu_interval_notifier *sub, unsigned long seq)
{
	return !sub || __atomic_load_n(&sub->invalidate_seq, __ATOMIC_RELAXED) != seq;
}

/* The same comparison without the driver lock: only "true" is reliable. */
bool hmmu_interval_check_retry(struct hmmu_interval_notifier *sub, unsigned long seq)
{
	return hmmu_interval_read_retry(sub, seq);
}

void hmmu_interval_set_seq(struct hmmu_interval_notifier *sub, unsigned long cur_seq)
{
	if (sub)
		__atomic_store_n(&sub->invalidate_seq, cur_seq, __ATOMIC_RELAXED);
}
