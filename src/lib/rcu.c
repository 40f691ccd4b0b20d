// SPDX-License-Identifier: MIT
/*
 * RCU for hmmu: liburcu's bulletproof flavour (urcu-bp: no thread
 * registration, read sections may sleep), or, in ThreadSanitizer builds, a
 * reader/writer-lock fallback with the same guarantees, because TSan
 * cannot see liburcu's grace periods (DESIGN.md, component 2).
 */
#include <sched.h>
#include <urcu-bp.h>

#include "internal.h"

#if defined(__SANITIZE_THREAD__)
#define HMMU_RCU_RWLOCK 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HMMU_RCU_RWLOCK 1
#endif
#endif

#ifndef HMMU_RCU_RWLOCK

/* struct hmmu_rcu_head is handed to liburcu as its struct rcu_head. */
_Static_assert(sizeof(struct hmmu_rcu_head) == sizeof(struct rcu_head), "rcu head layout");
_Static_assert(offsetof(struct hmmu_rcu_head, func) == offsetof(struct rcu_head, func), "rcu head layout");

void hmmu_rcu_read_lock(void)
{
	rcu_read_lock();
}

void hmmu_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

void hmmu_synchronize_rcu(void)
{
	synchronize_rcu();
}

void hmmu_call_rcu(struct hmmu_rcu_head *head, void (*func)(struct hmmu_rcu_head *head))
{
	call_rcu((struct rcu_head *)head, (void (*)(struct rcu_head *))func);
}

void hmmu_rcu_barrier(void)
{
	rcu_barrier();
}

#else /* HMMU_RCU_RWLOCK */

/*
 * Readers hold `hmmu_rcu_lock` for read (recursively: readers are
 * preferred, so a nested read lock never waits for a writer); a grace
 * period is one write-lock/unlock.  hmmu_call_rcu() only queues (its
 * caller may be inside a read section, or hold a lock a reader waits for);
 * the queue runs after the next grace period anyone requests:
 * hmmu_synchronize_rcu(), hmmu_rcu_barrier() (hmmu_notifier_synchronize),
 * unregister, mm teardown.
 */
static pthread_rwlock_t hmmu_rcu_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t hmmu_rcu_pending_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hmmu_rcu_head *hmmu_rcu_pending;	/* under hmmu_rcu_pending_lock */
static _Thread_local unsigned int hmmu_rcu_depth;

/*
 * A read section never waits for a reader, and readers are preferred, so
 * it cannot be part of a deadlock; but ThreadSanitizer would see lock-order
 * cycles through this rwlock (a reverse-map walk holds it around page-table
 * locks; the secondary-TLB hook takes it under one).  A try-lock is not an
 * edge of its lock graph: spin on it while a grace period holds the lock.
 */
void hmmu_rcu_read_lock(void)
{
	while (pthread_rwlock_tryrdlock(&hmmu_rcu_lock))
		sched_yield();
	hmmu_rcu_depth++;
}

void hmmu_rcu_read_unlock(void)
{
	hmmu_rcu_depth--;
	pthread_rwlock_unlock(&hmmu_rcu_lock);
}

/* Run the deferred calls queued so far; a grace period has passed. */
static void hmmu_rcu_run_pending(void)
{
	struct hmmu_rcu_head *head;

	pthread_mutex_lock(&hmmu_rcu_pending_lock);
	head = hmmu_rcu_pending;
	hmmu_rcu_pending = NULL;
	pthread_mutex_unlock(&hmmu_rcu_pending_lock);
	while (head) {
		struct hmmu_rcu_head *next = head->next;

		head->func(head);
		head = next;
	}
}

void hmmu_synchronize_rcu(void)
{
	HMMU_BUG_ON(hmmu_rcu_depth);	/* would deadlock, as with real RCU */
	pthread_rwlock_wrlock(&hmmu_rcu_lock);
	pthread_rwlock_unlock(&hmmu_rcu_lock);
	hmmu_rcu_run_pending();
}

void hmmu_call_rcu(struct hmmu_rcu_head *head, void (*func)(struct hmmu_rcu_head *head))
{
	head->func = func;
	pthread_mutex_lock(&hmmu_rcu_pending_lock);
	head->next = hmmu_rcu_pending;
	hmmu_rcu_pending = head;
	pthread_mutex_unlock(&hmmu_rcu_pending_lock);
}

void hmmu_rcu_barrier(void)
{
	hmmu_synchronize_rcu();
}

#endif /* HMMU_RCU_RWLOCK */
