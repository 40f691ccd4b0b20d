// SPDX-License-Identifier: MIT
/*
 * conformance.nested_invalidate (spec/conformance.md Part 2): invalidations
 * nest and overlap across threads; the global interval sequence stays odd
 * until the last active range ends, overlapping or not; read_begin on a
 * subscriber hit in the current cycle waits; a mirror update built on a
 * stale sequence is always rejected by read_retry.
 *
 * Invalidations are hand-made ranges started and ended by worker threads
 * on command, so the test fixes the interleaving and checks, after every
 * step, the global sequence and active count against a model of spec 1.5.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "notifier_rec.h"

#define PAGE HMMU_PAGE_SIZE
#define SUB_START 0x40000000UL	/* the interval subscriber: [SUB_START, + 4 pages) */
#define OTHER 0x7f0000000000UL	/* a range no subscriber covers */
#define NR_WORKERS 4

/* ------------------------------------------------------------------ */
/* Workers that start and end one invalidation each, on command        */
/* ------------------------------------------------------------------ */

enum { CMD_NONE, CMD_START, CMD_END, CMD_QUIT };

struct worker {
	pthread_t t;
	struct hmmu_mm *mm;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int cmd;			/* under lock */
	unsigned long done;		/* commands completed, under lock */
	unsigned long start, end;	/* the range of the next start */
	bool active;			/* main thread only */
	bool overlaps;			/* main thread only */
	struct hmmu_notifier_range range;	/* the worker's own */
};

static void *worker_fn(void *p)
{
	struct worker *w = p;

	for (;;) {
		int cmd;

		pthread_mutex_lock(&w->lock);
		while (w->cmd == CMD_NONE)
			pthread_cond_wait(&w->cond, &w->lock);
		cmd = w->cmd;
		pthread_mutex_unlock(&w->lock);
		if (cmd == CMD_QUIT)
			return NULL;
		if (cmd == CMD_START)
			nr_inv_start(&w->range, w->mm, HMMU_NOTIFY_CLEAR, w->start, w->end);
		else
			hmmu_notifier_invalidate_range_end(&w->range);
		pthread_mutex_lock(&w->lock);
		w->cmd = CMD_NONE;
		w->done++;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
	}
}

/* Send @cmd and, unless @nowait, wait (bounded) until the worker did it. */
static void worker_send(struct worker *w, int cmd, bool nowait)
{
	struct timespec deadline;
	unsigned long target;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += NR_WAIT_LIMIT_MS / 1000;
	pthread_mutex_lock(&w->lock);
	target = w->done + 1;
	w->cmd = cmd;
	pthread_cond_broadcast(&w->cond);
	while (!nowait && w->done < target) {
		if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == ETIMEDOUT)
			break;
	}
	assert_true(nowait || w->done >= target);
	pthread_mutex_unlock(&w->lock);
}

static void worker_spawn(struct worker *w, struct hmmu_mm *mm)
{
	memset(w, 0, sizeof(*w));
	w->mm = mm;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	assert_int_equal(pthread_create(&w->t, NULL, worker_fn, w), 0);
}

static void worker_stop(struct worker *w)
{
	worker_send(w, CMD_QUIT, true);
	pthread_join(w->t, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
}

/* ------------------------------------------------------------------ */
/* The model of spec 1.5                                               */
/* ------------------------------------------------------------------ */

struct model {
	unsigned long seq;	/* expected global seq */
	unsigned long active;	/* expected active ranges */
	bool odd;
};

static void model_start(struct model *m, bool overlaps)
{
	m->active++;
	if (overlaps && !m->odd) {
		m->odd = true;
		m->seq++;
	}
}

static void model_end(struct model *m)
{
	m->active--;
	if (!m->active && m->odd) {
		m->odd = false;
		m->seq++;
	}
}

static void model_check(const struct model *m, struct hmmu_mm *mm)
{
	assert_int_equal(nr_global_seq(mm), m->seq);
	assert_int_equal(nr_active(mm), m->active);
	assert_int_equal(m->seq & 1, m->odd);
}

/* Start @w's invalidation (overlapping the subscriber or not) and check. */
static void step_start(struct worker *w, bool overlaps, struct model *m, struct hmmu_mm *mm)
{
	int before = nr_count();

	w->start = overlaps ? SUB_START + PAGE : OTHER;
	w->end = w->start + PAGE;
	w->overlaps = overlaps;
	worker_send(w, CMD_START, false);
	w->active = true;
	model_start(m, overlaps);
	model_check(m, mm);
	/* An overlapping start called the subscriber with the cycle's odd seq. */
	assert_int_equal(nr_count(), before + overlaps);
	if (overlaps)
		assert_int_equal(nr_get(before).seq, m->seq);
}

static void step_end(struct worker *w, struct model *m, struct hmmu_mm *mm)
{
	worker_send(w, CMD_END, false);
	w->active = false;
	model_end(m);
	model_check(m, mm);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

/* The fixed orders of spec 1.5, across two threads. */
static void test_parity_two_threads(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct worker w[2];
	struct nr_isub s;
	struct model m;

	nr_reset();
	nr_isub_insert(&s, 1, mm, SUB_START, 4 * PAGE);
	m = (struct model){ .seq = nr_global_seq(mm) };
	worker_spawn(&w[0], mm);
	worker_spawn(&w[1], mm);
	/* Overlapping first, non-overlapping second; the overlapping one ends first. */
	step_start(&w[0], true, &m, mm);
	step_start(&w[1], false, &m, mm);
	step_end(&w[0], &m, mm);
	assert_true(m.odd);		/* still odd: a (non-overlapping) range is active */
	step_end(&w[1], &m, mm);
	/* Non-overlapping first, then overlapping; the overlapping one ends first. */
	step_start(&w[0], false, &m, mm);
	assert_false(m.odd);
	step_start(&w[1], true, &m, mm);
	step_end(&w[1], &m, mm);
	assert_true(m.odd);
	step_end(&w[0], &m, mm);
	/* Two overlapping ones in the same cycle share its seq. */
	step_start(&w[0], true, &m, mm);
	step_start(&w[1], true, &m, mm);
	assert_int_equal(nr_get(nr_count() - 1).seq, nr_get(nr_count() - 2).seq);
	step_end(&w[0], &m, mm);
	step_end(&w[1], &m, mm);
	nr_assert_idle(mm);
	worker_stop(&w[0]);
	worker_stop(&w[1]);
	hmmu_interval_notifier_remove(&s.in);
}

/* Random interleavings of starts and ends over several threads, checked step by step. */
static void test_parity_random_interleavings(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	uint64_t rs = hmmu_test_seed() ^ 0x6e657374;
	struct worker w[NR_WORKERS];
	struct nr_isub s;
	struct model m;
	unsigned long cycles = 0;

	nr_isub_insert(&s, 1, mm, SUB_START, 4 * PAGE);
	m = (struct model){ .seq = nr_global_seq(mm) };
	for (int i = 0; i < NR_WORKERS; i++)
		worker_spawn(&w[i], mm);
	for (int step = 0; step < 400; step++) {
		struct worker *x = &w[hmmu_test_rand(&rs) % NR_WORKERS];
		bool was_odd = m.odd;

		if (step % 64 == 0)
			nr_reset();
		if (x->active)
			step_end(x, &m, mm);
		else
			step_start(x, hmmu_test_rand(&rs) % 3 == 0, &m, mm);
		cycles += was_odd && !m.odd;
	}
	for (int i = 0; i < NR_WORKERS; i++)
		if (w[i].active)
			step_end(&w[i], &m, mm);
	nr_assert_idle(mm);
	assert_true(cycles > 0);
	for (int i = 0; i < NR_WORKERS; i++)
		worker_stop(&w[i]);
	hmmu_interval_notifier_remove(&s.in);
}

/* A thread in read_begin; notes whether the last active range had ended when it returned. */
struct reader {
	pthread_t t;
	struct hmmu_interval_notifier *in;
	atomic_bool *ended;
	atomic_bool started, done;
	bool saw_end;
	unsigned long seq;
};

static void *reader_fn(void *p)
{
	struct reader *r = p;

	atomic_store(&r->started, true);
	r->seq = hmmu_interval_read_begin(r->in);
	r->saw_end = atomic_load(r->ended);
	atomic_store(&r->done, true);
	return NULL;
}

static void reader_spawn(struct reader *r, struct hmmu_interval_notifier *in, atomic_bool *ended)
{
	memset(r, 0, sizeof(*r));
	r->in = in;
	r->ended = ended;
	atomic_init(&r->started, false);
	atomic_init(&r->done, false);
	assert_int_equal(pthread_create(&r->t, NULL, reader_fn, r), 0);
}

/*
 * read_begin on a subscriber hit in the current cycle waits until the
 * *last* active range ends, even when that range does not overlap it and
 * the overlapping one already ended; read_begin on a subscriber not hit
 * returns during the cycle.
 */
static void test_read_begin_waits_for_last_range(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct nr_isub si, sj;
	struct worker w[2];
	struct reader ri, rj;
	atomic_bool ended;
	struct model m;
	bool quick, slept;

	atomic_init(&ended, false);
	nr_reset();
	nr_isub_insert(&si, 1, mm, SUB_START, 4 * PAGE);
	nr_isub_insert(&sj, 2, mm, SUB_START + 64 * PAGE, PAGE);
	m = (struct model){ .seq = nr_global_seq(mm) };
	worker_spawn(&w[0], mm);
	worker_spawn(&w[1], mm);
	step_start(&w[0], true, &m, mm);	/* hits si */
	step_start(&w[1], false, &m, mm);
	step_end(&w[0], &m, mm);		/* the overlapping range is over; still odd */
	assert_true(nr_sub_hit_now(&si.in));
	assert_false(nr_sub_hit_now(&sj.in));
	reader_spawn(&rj, &sj.in, &ended);
	quick = nr_wait_true(&rj.done);		/* not hit: returns during the cycle */
	reader_spawn(&ri, &si.in, &ended);
	nr_wait_true(&ri.started);
	nr_sleep_ms(50);			/* time to reach its sleep */
	slept = !atomic_load(&ri.done);		/* it must not be done, whatever the delay */
	atomic_store(&ended, true);
	step_end(&w[1], &m, mm);
	pthread_join(ri.t, NULL);
	pthread_join(rj.t, NULL);
	assert_true(quick);
	assert_true(slept);
	assert_true(ri.saw_end);
	assert_false(rj.saw_end);
	assert_int_equal(ri.seq, m.seq - 1);	/* the hit cycle's odd value, read before waiting */
	assert_false(hmmu_interval_read_retry(&si.in, ri.seq));
	worker_stop(&w[0]);
	worker_stop(&w[1]);
	hmmu_interval_notifier_remove(&si.in);
	hmmu_interval_notifier_remove(&sj.in);
}

/* ------------------------------------------------------------------ */
/* Stale sequences under concurrency                                   */
/* ------------------------------------------------------------------ */

#define STALE_MIN_MS 300
#define STALE_MAX_MS 20000

struct stale_reader {
	pthread_t t;
	struct nr_isub *s;
	atomic_bool *stop;
	atomic_ulong collisions, clean;
	unsigned long bad_accept, bad_retry;
};

/*
 * One mirror update: read_begin, "read the CPU", then under the driver
 * lock read_retry.  nr_hits counts invalidations that hit the subscriber
 * (incremented under the driver lock, right after set_seq).
 */
static void stale_round(struct stale_reader *r)
{
	struct nr_isub *s = r->s;
	int pre = atomic_load(&s->nr_hits), c0, c1;
	unsigned long seq = hmmu_interval_read_begin(&s->in);
	bool retry, check;

	c0 = atomic_load(&s->nr_hits);
	sched_yield();
	pthread_mutex_lock(&s->lock);
	retry = hmmu_interval_read_retry(&s->in, seq);
	check = hmmu_interval_check_retry(&s->in, seq);
	c1 = atomic_load(&s->nr_hits);
	pthread_mutex_unlock(&s->lock);
	/* A hit after read_begin returned: the update must be rejected. */
	if (c1 != c0 && !retry)
		r->bad_accept++;
	/* No hit at all since before read_begin: it must be accepted. */
	if (c1 == pre && retry)
		r->bad_retry++;
	/* Under the lock, the lock-free hint gives the same answer. */
	if (check != retry)
		r->bad_retry++;
	atomic_fetch_add(retry ? &r->collisions : &r->clean, 1);
}

static void *stale_reader_fn(void *p)
{
	struct stale_reader *r = p;

	while (!atomic_load(r->stop))
		stale_round(r);
	return NULL;
}

struct stale_writer {
	pthread_t t;
	struct hmmu_mm *mm;
	atomic_bool *stop;
	uint64_t rs;
	unsigned long cycles;
};

/* Random invalidations, overlapping the subscribers or not, sometimes nested. */
static void *stale_writer_fn(void *p)
{
	struct stale_writer *w = p;

	while (!atomic_load(w->stop)) {
		unsigned long at = SUB_START + (hmmu_test_rand(&w->rs) % 12) * PAGE;
		struct hmmu_notifier_range outer;

		nr_inv_start(&outer, w->mm, HMMU_NOTIFY_CLEAR, at, at + PAGE);
		if (hmmu_test_rand(&w->rs) & 1)
			nr_inv(w->mm, HMMU_NOTIFY_UNMAP, OTHER, OTHER + PAGE);
		sched_yield();
		hmmu_notifier_invalidate_range_end(&outer);
		w->cycles++;
	}
	return NULL;
}

/*
 * Two writers invalidate while three readers build updates: every update
 * whose sequence an invalidation made stale is rejected, and no update is
 * rejected without one.
 */
static void test_stale_seq_always_rejected(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct nr_isub s[2];
	struct stale_reader r[3];
	struct stale_writer w[2];
	atomic_bool stop;
	unsigned long collisions = 0, clean = 0, bad = 0;
	long t0 = nr_now_ms();

	atomic_init(&stop, false);
	nr_isub_insert(&s[0], 1, mm, SUB_START, 4 * PAGE);
	nr_isub_insert(&s[1], 2, mm, SUB_START + 8 * PAGE, 4 * PAGE);
	s[0].quiet = s[1].quiet = true;	/* too many calls to log */
	for (int i = 0; i < 3; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].s = &s[i == 2];
		r[i].stop = &stop;
		assert_int_equal(pthread_create(&r[i].t, NULL, stale_reader_fn, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		w[i] = (struct stale_writer){ .mm = mm, .stop = &stop, .rs = hmmu_test_seed() * (i + 5) };
		assert_int_equal(pthread_create(&w[i].t, NULL, stale_writer_fn, &w[i]), 0);
	}
	/* Long enough to see both outcomes on every reader (bounded). */
	while (nr_now_ms() - t0 < STALE_MAX_MS) {
		bool seen = true;

		nr_sleep_ms(STALE_MIN_MS);
		for (int i = 0; i < 3; i++)
			seen &= atomic_load(&r[i].collisions) && atomic_load(&r[i].clean);
		if (seen)
			break;
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(w[i].t, NULL);
	for (int i = 0; i < 3; i++) {
		pthread_join(r[i].t, NULL);
		collisions += atomic_load(&r[i].collisions);
		clean += atomic_load(&r[i].clean);
		bad += r[i].bad_accept + r[i].bad_retry;
	}
	print_message("# %lu updates rejected as stale, %lu accepted, %lu + %lu writer cycles\n", collisions, clean,
		      w[0].cycles, w[1].cycles);
	assert_int_equal(bad, 0);
	assert_true(collisions > 0);
	assert_true(clean > 0);
	nr_assert_idle(mm);
	hmmu_interval_notifier_remove(&s[0].in);
	hmmu_interval_notifier_remove(&s[1].in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_parity_two_threads),
		HMMU_TEST(test_parity_random_interleavings),
		HMMU_TEST(test_read_begin_waits_for_last_range),
		HMMU_TEST(test_stale_seq_always_rejected),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
