// SPDX-License-Identifier: MIT
/*
 * conformance.release_before_free (spec/conformance.md Part 2): at mm
 * teardown every subscriber sees release (classic) or a RELEASE
 * invalidation (interval) before any page of the mm is freed.
 *
 * Each test builds its own mm (teardown is what is tested), watches a few
 * of its pages, and checks from inside every release callback that those
 * pages are still referenced, mapped and hold their data, and that the
 * free-page count has not moved.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "notifier_rec.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define MiB (1UL << 20)
#define BASE 0x40000000UL
#define HUGE_AT (BASE + 64 * MiB)	/* 2 MiB aligned */
#define FAR 0x7f0000000000UL
#define NR_WATCH 4

/* Pages of one mm that must stay alive until every release has run. */
struct watch {
	struct hmmu_page *page[NR_WATCH];
	unsigned char byte[NR_WATCH];	/* first byte of each page */
	int n;
	atomic_int checks, failures;
};

static void watch_add(struct watch *w, struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_page *p = nr_page_at(mm, addr);

	assert_non_null(p);
	assert_true(w->n < NR_WATCH);
	w->page[w->n] = p;
	w->byte[w->n] = *(unsigned char *)hmmu_page_address(p);
	w->n++;
}

/* From a callback: every watched page still referenced, mapped and intact. */
static void watch_check(struct watch *w)
{
	bool ok = true;

	for (int i = 0; i < w->n; i++) {
		struct hmmu_page *p = w->page[i];

		ok &= hmmu_page_ref_count(p) > 0 && hmmu_page_mapcount(p) > 0 &&
		      *(unsigned char *)hmmu_page_address(p) == w->byte[i];
	}
	atomic_fetch_add(&w->checks, 1);
	if (!ok)
		atomic_fetch_add(&w->failures, 1);
}

/* Classic subscriber that checks the watched pages in release. */
struct wsub {
	struct hmmu_notifier n;
	struct watch *w;
	atomic_int releases;
};

static void wsub_release(struct hmmu_notifier *n, struct hmmu_mm *mm)
{
	struct wsub *s = hmmu_container_of(n, struct wsub, n);

	watch_check(s->w);
	atomic_fetch_add(&s->releases, 1);
}

static const struct hmmu_notifier_ops wsub_ops = { .release = wsub_release };

/* Interval subscriber that checks the watched pages on RELEASE. */
struct wisub {
	struct hmmu_interval_notifier in;
	struct watch *w;
	atomic_int releases, unmaps;
};

static bool wisub_invalidate(struct hmmu_interval_notifier *in, const struct hmmu_notifier_range *r,
			     unsigned long cur_seq)
{
	struct wisub *s = hmmu_container_of(in, struct wisub, in);

	hmmu_interval_set_seq(in, cur_seq);
	if (r->event == HMMU_NOTIFY_RELEASE) {
		watch_check(s->w);
		atomic_fetch_add(&s->releases, 1);
	} else if (r->event == HMMU_NOTIFY_UNMAP) {
		atomic_fetch_add(&s->unmaps, 1);
	}
	return true;
}

static const struct hmmu_interval_notifier_ops wisub_ops = { .invalidate = wisub_invalidate };

static void watch_init(struct watch *w)
{
	memset(w, 0, sizeof(*w));
	atomic_init(&w->checks, 0);
	atomic_init(&w->failures, 0);
}

/*
 * An mm with anonymous pages, zero-page mappings, a huge page and a
 * read-only part; watches one page of each kind.
 */
static struct hmmu_mm *build_mm(struct watch *w)
{
	struct hmmu_mm *mm;
	unsigned long a, h;

	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm), 0);
	a = nr_map_at(mm, BASE, 32 * PAGE, RW);
	for (unsigned long i = 0; i < 24; i++)
		nr_write_byte(mm, a + i * PAGE, (unsigned char)(0x40 + i));
	for (unsigned long i = 24; i < 32; i++)
		assert_int_equal(nr_read_byte(mm, a + i * PAGE), 0);	/* zero page */
	assert_int_equal(hmmu_mprotect(mm, a + 8 * PAGE, 8 * PAGE, PROT_READ), 0);
	h = nr_map_at(mm, HUGE_AT, 2 * HMMU_PMD_SIZE, RW);
	assert_int_equal(hmmu_madvise(mm, h, HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
	nr_write_byte(mm, h + 3 * PAGE, 0x77);
	watch_init(w);
	watch_add(w, mm, a);
	watch_add(w, mm, a + 9 * PAGE);
	watch_add(w, mm, a + 23 * PAGE);
	watch_add(w, mm, h + 3 * PAGE);
	return mm;
}

/*
 * Classic and interval subscribers of every flavour: each gets exactly one
 * release / RELEASE, all before the first page is freed and before the
 * UNMAP of the address space; afterwards every page is back.
 */
static void test_release_before_free_all_subscribers(void **state)
{
	long free0 = hmmu_node_nr_free_pages(0), used;
	struct watch w;
	struct hmmu_mm *mm = build_mm(&w);
	struct nr_sub sa, sb;
	struct nr_isub si, sj;
	struct wsub ws = { .w = &w };
	struct wisub wi = { .w = &w };
	int n, first_unmap;

	nr_sub_init(&sa, 1, &nr_full_ops);
	nr_sub_init(&sb, 2, &nr_nohook_ops);
	assert_int_equal(hmmu_notifier_register(&sa.n, mm), 0);
	assert_int_equal(hmmu_notifier_register(&sb.n, mm), 0);
	ws.n.ops = &wsub_ops;
	assert_int_equal(hmmu_notifier_register(&ws.n, mm), 0);
	nr_isub_insert(&si, 3, mm, BASE, 32 * PAGE);
	nr_isub_insert(&sj, 4, mm, FAR, PAGE);	/* covers nothing mapped */
	assert_int_equal(hmmu_interval_notifier_insert(&wi.in, mm, HUGE_AT, HMMU_PMD_SIZE, &wisub_ops), 0);
	used = free0 - hmmu_node_nr_free_pages(0);
	assert_true(used >= 24 + 512);
	nr_reset();
	hmmu_mmput(mm);
	/* Interval RELEASE (tree order), then classic release (list order). */
	nr_expect(0, NR_INTERVAL, 3, 0, ~0UL);
	nr_expect(1, NR_INTERVAL, 4, 0, ~0UL);
	nr_expect(2, NR_RELEASE, 2, 0, 0);
	nr_expect(3, NR_RELEASE, 1, 0, 0);
	n = nr_count();
	for (first_unmap = 0; first_unmap < n; first_unmap++) {
		struct nr_event e = nr_get(first_unmap);

		if (e.event == HMMU_NOTIFY_UNMAP && e.kind == NR_INTERVAL)
			break;
		assert_int_equal(e.nr_free, free0 - used);
	}
	assert_int_equal(first_unmap, 4);
	assert_int_equal(nr_get(0).event, HMMU_NOTIFY_RELEASE);
	assert_int_equal(nr_get(0).flags, HMMU_NOTIFIER_RANGE_BLOCKABLE);
	assert_int_equal(nr_count_of(NR_START, 1) + nr_count_of(NR_START, 2), 0);	/* unlinked before UNMAP */
	assert_int_equal(atomic_load(&ws.releases), 1);
	assert_int_equal(atomic_load(&wi.releases), 1);
	assert_int_equal(atomic_load(&wi.unmaps), 1);
	assert_int_equal(atomic_load(&w.checks), 2);
	assert_int_equal(atomic_load(&w.failures), 0);
	assert_int_equal(hmmu_node_nr_free_pages(0), free0);
	/* Unregistering after teardown does not call release again. */
	hmmu_notifier_unregister(&sa.n, mm);
	hmmu_notifier_unregister(&sb.n, mm);
	hmmu_notifier_unregister(&ws.n, mm);
	assert_int_equal(atomic_load(&sa.nr_release) + atomic_load(&sb.nr_release) + atomic_load(&ws.releases), 3);
	hmmu_interval_notifier_remove(&si.in);
	hmmu_interval_notifier_remove(&sj.in);
	hmmu_interval_notifier_remove(&wi.in);
}

/* get/put subscriptions: the exit path calls their release too (and one may put itself there). */
static atomic_int gp_frees;

static struct hmmu_notifier *gp_alloc(struct hmmu_mm *mm)
{
	struct nr_sub *s = malloc(sizeof(*s));

	assert_non_null(s);
	nr_sub_init(s, 7, NULL);
	s->put_in_release = true;
	return &s->n;
}

static void gp_free(struct hmmu_notifier *n)
{
	atomic_fetch_add(&gp_frees, 1);
	free(nr_sub_of(n));
}

static const struct hmmu_notifier_ops gp_ops = {
	.release = nr_cb_release,
	.alloc_notifier = gp_alloc,
	.free_notifier = gp_free,
};

static void test_release_before_free_get_put(void **state)
{
	long free0 = hmmu_node_nr_free_pages(0), before;
	struct watch w;
	struct hmmu_mm *mm = build_mm(&w);
	struct wsub ws = { .w = &w };
	struct hmmu_notifier *g;

	atomic_store(&gp_frees, 0);
	ws.n.ops = &wsub_ops;
	assert_int_equal(hmmu_notifier_register(&ws.n, mm), 0);
	g = hmmu_notifier_get(&gp_ops, mm);
	assert_false(hmmu_is_err(g));
	before = hmmu_node_nr_free_pages(0);
	nr_reset();
	hmmu_mmput(mm);
	nr_expect(0, NR_RELEASE, 7, 0, 0);
	nr_expect_count(1);
	assert_int_equal(nr_get(0).nr_free, before);
	assert_int_equal(atomic_load(&w.failures), 0);
	assert_int_equal(atomic_load(&w.checks), 1);
	hmmu_notifier_unregister(&ws.n, mm);
	hmmu_notifier_synchronize();
	assert_int_equal(atomic_load(&gp_frees), 1);
	assert_int_equal(hmmu_node_nr_free_pages(0), free0);
}

struct race_arg {
	pthread_barrier_t barrier;
	struct hmmu_mm *mm;
	struct wsub *ws;
	struct nr_isub *is;
};

static void *race_unregister(void *p)
{
	struct race_arg *r = p;

	pthread_barrier_wait(&r->barrier);
	hmmu_notifier_unregister(&r->ws->n, r->mm);
	hmmu_interval_notifier_remove(&r->is->in);
	return NULL;
}

/*
 * Teardown racing unregister and interval remove: release runs once or
 * twice (idempotent), and every release that a page could observe ran
 * before the pages were freed; nothing leaks.
 */
static void test_release_before_free_racing_unregister(void **state)
{
	int twice = 0;

	for (int round = 0; round < 30; round++) {
		long free0 = hmmu_node_nr_free_pages(0);
		struct race_arg r;
		struct watch w;
		struct wsub ws;
		struct nr_isub is;
		pthread_t t;
		int n;

		nr_reset();
		r.mm = build_mm(&w);
		memset(&ws, 0, sizeof(ws));
		ws.w = &w;
		ws.n.ops = &wsub_ops;
		r.ws = &ws;
		r.is = &is;
		assert_int_equal(hmmu_notifier_register(&ws.n, r.mm), 0);
		nr_isub_insert(&is, 1, r.mm, BASE, PAGE);
		pthread_barrier_init(&r.barrier, NULL, 2);
		assert_int_equal(pthread_create(&t, NULL, race_unregister, &r), 0);
		pthread_barrier_wait(&r.barrier);
		hmmu_mmput(r.mm);
		pthread_join(t, NULL);
		pthread_barrier_destroy(&r.barrier);
		n = atomic_load(&ws.releases);
		assert_true(n == 1 || n == 2);
		twice += n == 2;
		/* The first release always saw the pages alive. */
		assert_true(atomic_load(&w.checks) - atomic_load(&w.failures) >= 1);
		assert_true(atomic_load(&w.failures) <= n - 1);
		assert_int_equal(hmmu_node_nr_free_pages(0), free0);
	}
	print_message("# release ran twice in %d of 30 rounds\n", twice);
}

/* A classic subscriber whose first release call parks on a gate, then checks the pages. */
struct psub {
	struct hmmu_notifier n;
	struct watch *w;
	struct nr_gate gate;
	atomic_int releases;
};

static void psub_release(struct hmmu_notifier *n, struct hmmu_mm *mm)
{
	struct psub *s = hmmu_container_of(n, struct psub, n);

	if (atomic_fetch_add(&s->releases, 1) == 0)
		nr_gate_pass(&s->gate);
	watch_check(s->w);
}

static const struct hmmu_notifier_ops psub_ops = { .release = psub_release };

struct thread_call {
	pthread_t t;
	struct hmmu_mm *mm;
	struct psub *s;
	atomic_bool done;
};

static void *unregister_fn(void *p)
{
	struct thread_call *c = p;

	hmmu_notifier_unregister(&c->s->n, c->mm);
	atomic_store(&c->done, true);
	return NULL;
}

static void *mmput_fn(void *p)
{
	struct thread_call *c = p;

	hmmu_mmput(c->mm);
	atomic_store(&c->done, true);
	return NULL;
}

/*
 * unregister's release is in flight (parked) when the last user exits:
 * teardown calls release itself, unlinks, and must then wait for the
 * in-flight release before freeing any page (spec 1.6 step 2).
 */
static void test_release_before_free_waits_for_unregister_release(void **state)
{
	long free0 = hmmu_node_nr_free_pages(0), before;
	struct watch w;
	struct psub s = { .w = &w };
	struct thread_call b = { .s = &s }, a = { .s = &s };
	bool early;

	a.mm = b.mm = build_mm(&w);
	s.n.ops = &psub_ops;
	nr_gate_init(&s.gate);
	atomic_init(&s.releases, 0);
	atomic_init(&a.done, false);
	atomic_init(&b.done, false);
	assert_int_equal(hmmu_notifier_register(&s.n, a.mm), 0);
	before = hmmu_node_nr_free_pages(0);
	assert_int_equal(pthread_create(&b.t, NULL, unregister_fn, &b), 0);
	nr_wait_true(&s.gate.entered);
	assert_int_equal(pthread_create(&a.t, NULL, mmput_fn, &a), 0);
	/* Teardown's own release call comes and goes; then it must wait. */
	for (long deadline = nr_now_ms() + NR_WAIT_LIMIT_MS; nr_now_ms() < deadline;) {
		if (atomic_load(&w.checks) >= 1)
			break;
		nr_sleep_ms(1);
	}
	nr_sleep_ms(50);
	early = atomic_load(&a.done) || hmmu_node_nr_free_pages(0) != before;	/* false whatever the delay */
	nr_gate_open(&s.gate);
	pthread_join(a.t, NULL);
	pthread_join(b.t, NULL);
	assert_int_equal(atomic_load(&s.releases), 2);
	assert_int_equal(atomic_load(&w.checks), 2);
	assert_int_equal(atomic_load(&w.failures), 0);
	assert_false(early);
	assert_int_equal(hmmu_node_nr_free_pages(0), free0);
	nr_gate_destroy(&s.gate);
}

/* Several mms torn down at once from several threads: each one's releases precede its frees. */
struct exit_arg {
	pthread_t t;
	int failures, checks;
};

static void *exit_one(void *p)
{
	struct exit_arg *e = p;

	for (int round = 0; round < 8; round++) {
		struct watch w;
		struct hmmu_mm *mm = build_mm(&w);
		struct wsub ws = { .w = &w };
		struct wisub wi = { .w = &w };

		ws.n.ops = &wsub_ops;
		if (hmmu_notifier_register(&ws.n, mm) ||
		    hmmu_interval_notifier_insert(&wi.in, mm, 0, ~0UL, &wisub_ops))
			e->failures++;
		hmmu_mmput(mm);
		hmmu_notifier_unregister(&ws.n, mm);
		hmmu_interval_notifier_remove(&wi.in);
		e->failures += atomic_load(&w.failures);
		e->checks += atomic_load(&w.checks);
	}
	return NULL;
}

static void test_release_before_free_concurrent_exits(void **state)
{
	struct exit_arg e[4];

	memset(e, 0, sizeof(e));
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&e[i].t, NULL, exit_one, &e[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(e[i].t, NULL);
		assert_int_equal(e[i].failures, 0);
		assert_int_equal(e[i].checks, 8 * 2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_release_before_free_all_subscribers),
		HMMU_TEST(test_release_before_free_get_put),
		HMMU_TEST(test_release_before_free_racing_unregister),
		HMMU_TEST(test_release_before_free_waits_for_unregister_release),
		HMMU_TEST(test_release_before_free_concurrent_exits),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
