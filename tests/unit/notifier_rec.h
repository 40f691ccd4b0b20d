/* SPDX-License-Identifier: MIT */
/*
 * Recording notifier subscribers shared by tests/unit/test_notifier.c and
 * the notifier scenarios of tests/conformance: every callback appends an
 * event (kind, subscriber, event, range, flags, owner, sequence, which
 * page-table lock the caller holds, free pages) to one log that the tests
 * then compare with the exact sequence they expect.
 *
 * Only static inline functions: each program uses the part it needs.
 */
#ifndef HMMU_TEST_NOTIFIER_REC_H
#define HMMU_TEST_NOTIFIER_REC_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define NR_PAGE HMMU_PAGE_SIZE
#define NR_MAX_EVENTS 1024
/* Bound on every wait of these tests (generous: sanitizer builds are slow). */
#define NR_WAIT_LIMIT_MS 30000

enum nr_kind {
	NR_RELEASE,
	NR_START,
	NR_END,
	NR_INV_RANGE,		/* the secondary-TLB hook */
	NR_CLEAR_FLUSH_YOUNG,
	NR_CLEAR_YOUNG,
	NR_TEST_YOUNG,
	NR_INTERVAL,		/* an interval subscriber's invalidate */
};

/* Which page-table lock covering an address the current thread holds. */
enum nr_ptl { NR_PTL_NONE, NR_PTL_PMD, NR_PTL_PTE };

struct nr_event {
	enum nr_kind kind;
	int id;				/* the subscriber's id */
	enum hmmu_notifier_event event;
	unsigned long start, end;	/* range; young ops: [addr, end) */
	unsigned int flags;
	void *owner;
	unsigned long seq;		/* NR_INTERVAL: cur_seq */
	enum nr_ptl ptl;		/* NR_INV_RANGE with nr_log.ptl_mm set */
	bool ro;			/* NR_START: range_update_to_read_only() */
	long nr_free;			/* free pages of node 0 at the call */
};

struct nr_log {
	pthread_mutex_t lock;
	int n;
	struct nr_event ev[NR_MAX_EVENTS];
	/* When set, the secondary-TLB hook records which page-table lock of
	 * this mm, covering the range's start, its caller holds. */
	struct hmmu_mm *ptl_mm;
	/* When set, NR_START records hmmu_notifier_range_update_to_read_only(). */
	bool want_ro;
};

static struct nr_log nr_log = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ------------------------------------------------------------------ */
/* Time and waiting                                                    */
/* ------------------------------------------------------------------ */

static inline long nr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static inline void nr_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait (bounded) until *@flag is true; returns its final value. */
static inline bool nr_wait_true(atomic_bool *flag)
{
	long deadline = nr_now_ms() + NR_WAIT_LIMIT_MS;

	while (!atomic_load(flag) && nr_now_ms() < deadline)
		nr_sleep_ms(1);
	return atomic_load(flag);
}

/*
 * A gate a callback can be parked on: it sets `entered`, sleeps until the
 * test opens the gate, and sets `left` just before returning.
 */
struct nr_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	atomic_bool entered, left;
};

static inline void nr_gate_init(struct nr_gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->open = false;
	atomic_init(&g->entered, false);
	atomic_init(&g->left, false);
}

static inline void nr_gate_destroy(struct nr_gate *g)
{
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
}

static inline void nr_gate_pass(struct nr_gate *g)
{
	atomic_store(&g->entered, true);
	pthread_mutex_lock(&g->lock);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static inline void nr_gate_open(struct nr_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* ------------------------------------------------------------------ */
/* The log                                                             */
/* ------------------------------------------------------------------ */

/* Record, from now on, what nr_ptl_held() says for @mm / update_to_read_only. */
static inline void nr_watch(struct hmmu_mm *ptl_mm, bool want_ro)
{
	pthread_mutex_lock(&nr_log.lock);
	nr_log.ptl_mm = ptl_mm;
	nr_log.want_ro = want_ro;
	pthread_mutex_unlock(&nr_log.lock);
}

static inline void nr_reset(void)
{
	pthread_mutex_lock(&nr_log.lock);
	nr_log.n = 0;
	nr_log.ptl_mm = NULL;
	nr_log.want_ro = false;
	pthread_mutex_unlock(&nr_log.lock);
}

static inline int nr_count(void)
{
	int n;

	pthread_mutex_lock(&nr_log.lock);
	n = nr_log.n;
	pthread_mutex_unlock(&nr_log.lock);
	return n;
}

static inline void nr_add(const struct nr_event *e)
{
	pthread_mutex_lock(&nr_log.lock);
	assert_true(nr_log.n < NR_MAX_EVENTS);
	nr_log.ev[nr_log.n++] = *e;
	pthread_mutex_unlock(&nr_log.lock);
}

/* A copy of event @i (the log may still grow from other threads). */
static inline struct nr_event nr_get(int i)
{
	struct nr_event e;

	pthread_mutex_lock(&nr_log.lock);
	assert_true(i < nr_log.n);
	e = nr_log.ev[i];
	pthread_mutex_unlock(&nr_log.lock);
	return e;
}

static inline const char *nr_kind_name(enum nr_kind k)
{
	static const char *const names[] = {
		"release", "start", "end", "inv_range", "clear_flush_young", "clear_young", "test_young",
		"interval",
	};
	return names[k];
}

static inline void nr_dump(void)
{
	pthread_mutex_lock(&nr_log.lock);
	for (int i = 0; i < nr_log.n; i++) {
		const struct nr_event *e = &nr_log.ev[i];

		print_message("  [%d] %s id=%d event=%d [%#lx, %#lx) flags=%#x seq=%lu ptl=%d ro=%d\n", i,
			      nr_kind_name(e->kind), e->id, e->event, e->start, e->end, e->flags, e->seq,
			      e->ptl, e->ro);
	}
	pthread_mutex_unlock(&nr_log.lock);
}

/* Fail, printing the log, unless event @i is @kind from @id over [start, end). */
static inline void nr_expect(int i, enum nr_kind kind, int id, unsigned long start, unsigned long end)
{
	struct nr_event e;
	bool ok;

	pthread_mutex_lock(&nr_log.lock);
	ok = i < nr_log.n;
	if (ok) {
		e = nr_log.ev[i];
		ok = e.kind == kind && e.id == id && e.start == start && e.end == end;
	}
	pthread_mutex_unlock(&nr_log.lock);
	if (!ok) {
		print_error("event %d: want %s id=%d [%#lx, %#lx); log:\n", i, nr_kind_name(kind), id, start, end);
		nr_dump();
		fail();
	}
}

/* Fail, printing the log, unless it holds exactly @n events. */
static inline void nr_expect_count(int n)
{
	if (nr_count() != n) {
		print_error("want %d events; log:\n", n);
		nr_dump();
		fail();
	}
}

/* Number of events of @kind from @id. */
static inline int nr_count_of(enum nr_kind kind, int id)
{
	int n = 0;

	pthread_mutex_lock(&nr_log.lock);
	for (int i = 0; i < nr_log.n; i++)
		n += nr_log.ev[i].kind == kind && nr_log.ev[i].id == id;
	pthread_mutex_unlock(&nr_log.lock);
	return n;
}

/* ------------------------------------------------------------------ */
/* Which page-table lock is held                                       */
/* ------------------------------------------------------------------ */

/* true if @m is locked (by anyone; the tests using it are single-threaded). */
static inline bool nr_mutex_busy(pthread_mutex_t *m)
{
	int r = pthread_mutex_trylock(m);

	if (r == 0) {
		pthread_mutex_unlock(m);
		return false;
	}
	return r == EBUSY;
}

/*
 * The page-table lock covering @addr that is held: the PTE table's (the
 * PMD entry points at one) or the PMD table's.  Called from a callback of
 * a path that holds the mmap_lock, so the tables stay put.
 */
static inline enum nr_ptl nr_ptl_held(struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_pt *pmd_pt;
	hmmu_pte_t *pmdp = hmmu_pmd_lookup(mm, addr, false, &pmd_pt);
	hmmu_pte_t pmd;

	if (!pmdp)
		return NR_PTL_NONE;
	pmd = __atomic_load_n(pmdp, __ATOMIC_ACQUIRE);
	if (hmmu_pte_table(pmd) && nr_mutex_busy(&hmmu_pte_to_table(pmd)->ptl))
		return NR_PTL_PTE;
	return nr_mutex_busy(&pmd_pt->ptl) ? NR_PTL_PMD : NR_PTL_NONE;
}

/* ------------------------------------------------------------------ */
/* Classic test subscriber                                             */
/* ------------------------------------------------------------------ */

struct nr_sub {
	struct hmmu_notifier n;
	int id;
	bool fail_nonblock;		/* start returns -EAGAIN when !blockable */
	unsigned long young_addr;	/* the young ops report this page young */
	bool put_in_release;		/* release calls hmmu_notifier_put() */
	struct nr_gate *gate;		/* if set, invalidate_range_start parks on it */
	struct nr_gate *release_gate;	/* if set, release parks on it */
	atomic_int nr_release;		/* release calls entered */
	atomic_int nr_release_done;	/* release calls returned */
	atomic_int nr_calls;		/* every callback */
	atomic_int nr_free_calls;	/* free_notifier (get/put subscriptions) */
};

static inline struct nr_sub *nr_sub_of(struct hmmu_notifier *n)
{
	return hmmu_container_of(n, struct nr_sub, n);
}

static inline void nr_add_range(enum nr_kind kind, struct nr_sub *s, const struct hmmu_notifier_range *r)
{
	struct nr_event e = {
		.kind = kind, .id = s->id, .event = r->event, .start = r->start, .end = r->end,
		.flags = r->flags, .owner = r->owner, .nr_free = hmmu_node_nr_free_pages(0),
	};

	bool want_ro;

	pthread_mutex_lock(&nr_log.lock);
	want_ro = nr_log.want_ro;
	pthread_mutex_unlock(&nr_log.lock);
	if (kind == NR_START && want_ro)
		e.ro = hmmu_notifier_range_update_to_read_only(r);
	nr_add(&e);
}

static inline void nr_cb_release(struct hmmu_notifier *n, struct hmmu_mm *mm)
{
	struct nr_sub *s = nr_sub_of(n);
	struct nr_event e = { .kind = NR_RELEASE, .id = s->id, .nr_free = hmmu_node_nr_free_pages(0) };

	atomic_fetch_add(&s->nr_calls, 1);
	atomic_fetch_add(&s->nr_release, 1);
	nr_add(&e);
	if (s->release_gate) {
		nr_gate_pass(s->release_gate);
		atomic_store(&s->release_gate->left, true);
	}
	atomic_fetch_add(&s->nr_release_done, 1);
	if (s->put_in_release)
		hmmu_notifier_put(n);	/* last: @s may be freed after this */
}

static inline int nr_cb_start(struct hmmu_notifier *n, const struct hmmu_notifier_range *r)
{
	struct nr_sub *s = nr_sub_of(n);

	atomic_fetch_add(&s->nr_calls, 1);
	nr_add_range(NR_START, s, r);
	if (s->gate) {
		nr_gate_pass(s->gate);
		atomic_store(&s->gate->left, true);
	}
	if (s->fail_nonblock && !hmmu_notifier_range_blockable(r))
		return -EAGAIN;
	return 0;
}

static inline void nr_cb_end(struct hmmu_notifier *n, const struct hmmu_notifier_range *r)
{
	struct nr_sub *s = nr_sub_of(n);

	atomic_fetch_add(&s->nr_calls, 1);
	nr_add_range(NR_END, s, r);
}

static inline void nr_cb_inv_range(struct hmmu_notifier *n, struct hmmu_mm *mm, unsigned long start,
				   unsigned long end)
{
	struct nr_sub *s = nr_sub_of(n);
	struct nr_event e = { .kind = NR_INV_RANGE, .id = s->id, .start = start, .end = end };
	struct hmmu_mm *ptl_mm;

	atomic_fetch_add(&s->nr_calls, 1);
	pthread_mutex_lock(&nr_log.lock);
	ptl_mm = nr_log.ptl_mm;
	pthread_mutex_unlock(&nr_log.lock);
	if (ptl_mm == mm)
		e.ptl = nr_ptl_held(mm, start);
	nr_add(&e);
}

static inline int nr_young(enum nr_kind kind, struct hmmu_notifier *n, unsigned long start, unsigned long end)
{
	struct nr_sub *s = nr_sub_of(n);
	struct nr_event e = { .kind = kind, .id = s->id, .start = start, .end = end };

	atomic_fetch_add(&s->nr_calls, 1);
	nr_add(&e);
	return s->young_addr >= start && s->young_addr < end;
}

static inline int nr_cb_clear_flush_young(struct hmmu_notifier *n, struct hmmu_mm *mm, unsigned long start,
					  unsigned long end)
{
	return nr_young(NR_CLEAR_FLUSH_YOUNG, n, start, end);
}

static inline int nr_cb_clear_young(struct hmmu_notifier *n, struct hmmu_mm *mm, unsigned long start,
				    unsigned long end)
{
	return nr_young(NR_CLEAR_YOUNG, n, start, end);
}

static inline int nr_cb_test_young(struct hmmu_notifier *n, struct hmmu_mm *mm, unsigned long addr)
{
	return nr_young(NR_TEST_YOUNG, n, addr, addr + NR_PAGE);
}

/* Every callback. */
static const struct hmmu_notifier_ops nr_full_ops = {
	.release = nr_cb_release,
	.clear_flush_young = nr_cb_clear_flush_young,
	.clear_young = nr_cb_clear_young,
	.test_young = nr_cb_test_young,
	.invalidate_range_start = nr_cb_start,
	.invalidate_range_end = nr_cb_end,
	.invalidate_range = nr_cb_inv_range,
};

/* Without the secondary-TLB hook. */
static const struct hmmu_notifier_ops nr_nohook_ops = {
	.release = nr_cb_release,
	.clear_flush_young = nr_cb_clear_flush_young,
	.clear_young = nr_cb_clear_young,
	.test_young = nr_cb_test_young,
	.invalidate_range_start = nr_cb_start,
	.invalidate_range_end = nr_cb_end,
};

/* A subscriber whose start can fail: no end (spec 1.3). */
static const struct hmmu_notifier_ops nr_fail_ops = {
	.release = nr_cb_release,
	.invalidate_range_start = nr_cb_start,
};

static inline void nr_sub_init(struct nr_sub *s, int id, const struct hmmu_notifier_ops *ops)
{
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->n.ops = ops;
	atomic_init(&s->nr_release, 0);
	atomic_init(&s->nr_release_done, 0);
	atomic_init(&s->nr_calls, 0);
	atomic_init(&s->nr_free_calls, 0);
}

/* ------------------------------------------------------------------ */
/* Interval test subscriber                                            */
/* ------------------------------------------------------------------ */

struct nr_isub {
	struct hmmu_interval_notifier in;
	int id;
	pthread_mutex_t lock;		/* the driver lock */
	bool trylock_nonblock;		/* !blockable: trylock, return false if busy */
	bool refuse_nonblock;		/* !blockable: always return false */
	struct nr_gate *gate;		/* if set, park on it (after set_seq) */
	bool quiet;			/* count, but do not log */
	atomic_int nr_calls;
	atomic_int nr_hits;		/* accepted invalidations (under lock) */
};

static inline struct nr_isub *nr_isub_of(struct hmmu_interval_notifier *in)
{
	return hmmu_container_of(in, struct nr_isub, in);
}

static inline bool nr_icb_invalidate(struct hmmu_interval_notifier *in, const struct hmmu_notifier_range *r,
				     unsigned long cur_seq)
{
	struct nr_isub *s = nr_isub_of(in);
	struct nr_event e = {
		.kind = NR_INTERVAL, .id = s->id, .event = r->event, .start = r->start, .end = r->end,
		.flags = r->flags, .owner = r->owner, .seq = cur_seq, .nr_free = hmmu_node_nr_free_pages(0),
	};
	bool blockable = hmmu_notifier_range_blockable(r);

	atomic_fetch_add(&s->nr_calls, 1);
	if (!s->quiet)
		nr_add(&e);
	if (!blockable && s->refuse_nonblock)
		return false;
	if (!blockable && s->trylock_nonblock) {
		if (pthread_mutex_trylock(&s->lock))
			return false;
	} else {
		pthread_mutex_lock(&s->lock);
	}
	hmmu_interval_set_seq(in, cur_seq);
	atomic_fetch_add(&s->nr_hits, 1);
	pthread_mutex_unlock(&s->lock);
	if (s->gate) {
		nr_gate_pass(s->gate);
		atomic_store(&s->gate->left, true);
	}
	return true;
}

static const struct hmmu_interval_notifier_ops nr_iops = { .invalidate = nr_icb_invalidate };

static inline void nr_isub_init(struct nr_isub *s, int id)
{
	memset(s, 0, sizeof(*s));
	s->id = id;
	pthread_mutex_init(&s->lock, NULL);
	atomic_init(&s->nr_calls, 0);
	atomic_init(&s->nr_hits, 0);
}

static inline void nr_isub_insert(struct nr_isub *s, int id, struct hmmu_mm *mm, unsigned long start,
				  unsigned long len)
{
	nr_isub_init(s, id);
	assert_int_equal(hmmu_interval_notifier_insert(&s->in, mm, start, len, &nr_iops), 0);
}

/* ------------------------------------------------------------------ */
/* Container state                                                     */
/* ------------------------------------------------------------------ */

static inline unsigned long nr_global_seq(struct hmmu_mm *mm)
{
	struct hmmu_notifier_subscriptions *subs = hmmu_mm_subscriptions(mm);
	unsigned long seq;

	pthread_mutex_lock(&subs->lock);
	seq = subs->invalidate_seq;
	pthread_mutex_unlock(&subs->lock);
	return seq;
}

static inline unsigned long nr_active(struct hmmu_mm *mm)
{
	struct hmmu_notifier_subscriptions *subs = hmmu_mm_subscriptions(mm);
	unsigned long n;

	pthread_mutex_lock(&subs->lock);
	n = subs->active_invalidate_ranges;
	pthread_mutex_unlock(&subs->lock);
	return n;
}

/* The subscriber's own seq (read under the container lock). */
static inline unsigned long nr_sub_seq(struct hmmu_interval_notifier *in)
{
	struct hmmu_notifier_subscriptions *subs = hmmu_mm_subscriptions(in->mm);
	unsigned long seq;

	pthread_mutex_lock(&subs->lock);
	seq = __atomic_load_n(&in->invalidate_seq, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&subs->lock);
	return seq;
}

/* read_begin on @in would sleep now: the cycle in progress already hit it. */
static inline bool nr_sub_hit_now(struct hmmu_interval_notifier *in)
{
	struct hmmu_notifier_subscriptions *subs = hmmu_mm_subscriptions(in->mm);
	bool hit;

	pthread_mutex_lock(&subs->lock);
	hit = __atomic_load_n(&in->invalidate_seq, __ATOMIC_RELAXED) == subs->invalidate_seq;
	pthread_mutex_unlock(&subs->lock);
	return hit;
}

/* Nothing in flight: the global seq is even, no range active, nothing deferred. */
static inline void nr_assert_idle(struct hmmu_mm *mm)
{
	struct hmmu_notifier_subscriptions *subs = hmmu_mm_subscriptions(mm);

	pthread_mutex_lock(&subs->lock);
	assert_int_equal(subs->invalidate_seq & 1, 0);
	assert_int_equal(subs->active_invalidate_ranges, 0);
	assert_true(cds_list_empty(&subs->deferred_list));
	pthread_mutex_unlock(&subs->lock);
}

/* Start / end a hand-made invalidation of [start, end). */
static inline void nr_inv_start(struct hmmu_notifier_range *r, struct hmmu_mm *mm, enum hmmu_notifier_event ev,
				unsigned long start, unsigned long end)
{
	hmmu_notifier_range_init(r, ev, 0, mm, start, end);
	hmmu_notifier_invalidate_range_start(r);
}

static inline void nr_inv(struct hmmu_mm *mm, enum hmmu_notifier_event ev, unsigned long start, unsigned long end)
{
	struct hmmu_notifier_range r;

	nr_inv_start(&r, mm, ev, start, end);
	hmmu_notifier_invalidate_range_end(&r);
}

/* ------------------------------------------------------------------ */
/* Address-space helpers                                               */
/* ------------------------------------------------------------------ */

static inline unsigned long nr_map_at(struct hmmu_mm *mm, unsigned long addr, size_t len, int prot)
{
	return hmmu_test_map_at(mm, addr, len, prot, addr ? MAP_FIXED : 0);
}

static inline void nr_write_byte(struct hmmu_mm *mm, unsigned long addr, unsigned char v)
{
	assert_int_equal(hmmu_access(mm, addr, &v, 1, HMMU_ACCESS_WRITE), 0);
}

static inline unsigned char nr_read_byte(struct hmmu_mm *mm, unsigned long addr)
{
	unsigned char v;

	assert_int_equal(hmmu_access(mm, addr, &v, 1, HMMU_ACCESS_READ), 0);
	return v;
}

/* The leaf entry mapping @addr, or 0. */
static inline hmmu_pte_t nr_leaf(struct hmmu_mm *mm, unsigned long addr)
{
	return hmmu_test_leaf(mm, addr, NULL);
}

/* The page a present PTE maps at @addr, or NULL. */
static inline struct hmmu_page *nr_page_at(struct hmmu_mm *mm, unsigned long addr)
{
	hmmu_pte_t e = nr_leaf(mm, addr);

	return hmmu_pte_present(e) ? hmmu_pfn_to_page(hmmu_pte_pfn(e)) : NULL;
}

#endif /* HMMU_TEST_NOTIFIER_REC_H */
