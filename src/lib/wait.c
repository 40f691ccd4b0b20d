// SPDX-License-Identifier: MIT
/*
 * Hashed wait queues.
 *
 * Sleepers do not own a queue: they sleep on one of a fixed set of buckets
 * chosen by hashing the address of the thing they wait for (a page, say).
 * The protocol every user follows (see internal.h):
 *
 *   sleeper: lock(b); loop { publish "someone waits" (a waiters bit);
 *            re-check the condition; if met break; cond_wait(b) } unlock(b)
 *   waker:   change the condition; if the waiters indication is set:
 *            lock(b); clear the indication; broadcast(b); unlock(b)
 *
 * Because the waiters indication is only set with b->lock held, a waker
 * that clears it under b->lock and broadcasts in the same critical section
 * can never wipe an indication whose owner then sleeps unwoken.  Keys share
 * buckets, so every sleeper re-checks its own condition after each wakeup.
 */
#include <stdint.h>

#include "internal.h"

#define HMMU_WAIT_BITS 8
#define HMMU_WAIT_BUCKETS (1u << HMMU_WAIT_BITS)

/*
 * The table itself never changes; each bucket's `lock` serialises the
 * sleep/wake handshake of every key that hashes to it, and `cond` is only
 * waited on with that lock held.
 */
static struct hmmu_wait_bucket hmmu_wait_table[HMMU_WAIT_BUCKETS] = {
	[0 ... HMMU_WAIT_BUCKETS - 1] = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	},
};

/*
 * hmmu_wait_bucket_of() - the bucket @key's sleepers use.
 * Fibonacci hashing of the address without its low 6 bits (objects hashed
 * here are at least that far apart).  Never NULL; callable from any context.
 */
struct hmmu_wait_bucket *hmmu_wait_bucket_of(const void *key)
{
	uint64_t h = (uint64_t)((uintptr_t)key >> 6) * 0x9e3779b97f4a7c15ULL;

	return &hmmu_wait_table[h >> (64 - HMMU_WAIT_BITS)];
}

/*
 * hmmu_wake_bucket() - wake every sleeper of @b; each re-checks its condition.
 * The caller must have changed the condition first and must not hold b->lock.
 */
void hmmu_wake_bucket(struct hmmu_wait_bucket *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}
