// SPDX-License-Identifier: MIT
/*
 * Unit tests of event tracing (include/hmmu/trace.h): the API's errors,
 * what a full ring keeps and drops (spans stay whole), ends without a
 * begin, spans open at the stop, threads beyond the last ring, a real
 * fault's span, and threads recording while tracing starts and stops.
 * The JSON is checked with a scanner of the format hmmu writes: each
 * ring's events follow its thread_name record.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define B HMMU_TRACE_BEGIN
#define E HMMU_TRACE_END

#ifndef HMMU_TRACE_OFF

/* The stopped trace as JSON (caller frees). */
static char *trace_json(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(hmmu_trace_write(f), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static unsigned long count_of(const char *json, const char *needle)
{
	unsigned long n = 0;

	for (const char *p = json; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* The number after "@key": in @json. */
static unsigned long field(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	assert_non_null(p);
	return strtoul(p + strlen(pat), NULL, 10);
}

/*
 * Every ring's B/E events nest, with matching names; returns the spans
 * (B events).  @seq (if set): the ring's phases in order, e.g. "BBEEi",
 * of a trace with one ring.
 */
static unsigned long check_nesting(const char *json, char *seq)
{
	char stack[64][40], name[40], ph;
	unsigned long spans = 0;
	int depth = 0;

	for (const char *p = json; (p = strstr(p, "\n{\"name\":\"")); p++) {
		const char *q = strstr(p, "\"ph\":\"");

		assert_int_equal(sscanf(p, "\n{\"name\":\"%39[^\"]\"", name), 1);
		assert_non_null(q);
		ph = q[6];
		if (ph == 'M') {
			assert_int_equal(depth, 0);	/* the last ring closed everything */
			continue;
		}
		if (seq)
			*seq++ = ph;
		if (ph == 'B') {
			assert_true(depth < 64);
			strcpy(stack[depth++], name);
			spans++;
		} else if (ph == 'E') {
			assert_true(depth > 0);
			assert_string_equal(stack[--depth], name);
		}
	}
	assert_int_equal(depth, 0);
	if (seq)
		*seq = 0;
	return spans;
}

static void test_trace_api(void **state)
{
	assert_int_equal(hmmu_trace_discard(), 0);
	assert_int_equal(hmmu_trace_write(stdout), -ENODATA);
	assert_int_equal(hmmu_trace_stop(), -EINVAL);
	assert_int_equal(hmmu_trace_start(&(struct hmmu_trace_config){ .events_per_thread = (1UL << 26) + 1 }),
			 -EINVAL);
	assert_int_equal(hmmu_trace_start(&(struct hmmu_trace_config){ .max_threads = 4097 }), -EINVAL);
	assert_false(hmmu_trace_enabled());
	assert_int_equal(hmmu_trace_start(NULL), 0);
	assert_true(hmmu_trace_enabled());
	assert_int_equal(hmmu_trace_start(NULL), -EBUSY);
	assert_int_equal(hmmu_trace_write(stdout), -EBUSY);
	assert_int_equal(hmmu_trace_discard(), -EBUSY);
	assert_int_equal(hmmu_trace_stop(), 0);
	assert_false(hmmu_trace_enabled());
	assert_int_equal(hmmu_trace_write(NULL), -EINVAL);
	assert_int_equal(hmmu_trace_discard(), 0);
	assert_int_equal(hmmu_trace_write(stdout), -ENODATA);
	assert_null(hmmu_trace_kind_name(HMMU_TRACE_NR));
	assert_string_equal(hmmu_trace_kind_name(HMMU_TRACE_EVICT), "evict");
}

/* 10 spans into 16 slots: the first 8 whole, the last 2 dropped whole; the counter deltas. */
static void test_trace_overflow_pairs(void **state)
{
	char *json;

	assert_int_equal(hmmu_trace_start(&(struct hmmu_trace_config){ .events_per_thread = 16 }), 0);
	for (int i = 0; i < 10; i++) {
		hmmu_trace(HMMU_TRACE_EVICT, B, 0, 1, 1, 0);
		hmmu_count(HMMU_STAT_EVICT);
		hmmu_trace(HMMU_TRACE_EVICT, E, 0, 1, 1, 0);
	}
	hmmu_trace(HMMU_TRACE_EVICT, 'x', 0, 1, 1, 0);			/* bad phase: ignored */
	hmmu_trace(HMMU_TRACE_NR, B, 0, 1, 1, 0);			/* bad kind: ignored */
	assert_int_equal(hmmu_trace_stop(), 0);
	json = trace_json();
	assert_int_equal(check_nesting(json, NULL), 8);
	assert_int_equal(field(json, "dropped_events"), 4);
	assert_int_equal(field(json, "open_at_stop"), 0);
	assert_int_equal(field(json, "evict"), 10);
	assert_int_equal(field(json, "fault"), 0);
	free(json);
}

/*
 * Nested spans into 5 slots: the inner begin finds no room for its end
 * (dropped with it), the outer spans stay whole; then one instant fits and
 * one does not.
 */
static void test_trace_overflow_nested(void **state)
{
	char seq[16], *json;

	assert_int_equal(hmmu_trace_start(&(struct hmmu_trace_config){ .events_per_thread = 5 }), 0);
	hmmu_trace(HMMU_TRACE_FAULT, B, 0, 1, 1, 0);
	hmmu_trace(HMMU_TRACE_MIGRATE_SETUP, B, 0, 1, 1, 0);
	hmmu_trace(HMMU_TRACE_INVALIDATE, B, 0, 1, 1, HMMU_NOTIFY_MIGRATE);
	hmmu_trace(HMMU_TRACE_INVALIDATE, E, 0, 1, 1, HMMU_NOTIFY_MIGRATE);
	hmmu_trace(HMMU_TRACE_MIGRATE_SETUP, E, 0, 1, 1, 0);
	hmmu_trace(HMMU_TRACE_FAULT, E, 0, 1, 1, 0);
	hmmu_trace(HMMU_TRACE_EVICT, HMMU_TRACE_INSTANT, 0, 1, 1, 0);
	hmmu_trace(HMMU_TRACE_EVICT, HMMU_TRACE_INSTANT, 0, 1, 1, 0);
	assert_int_equal(hmmu_trace_stop(), 0);
	json = trace_json();
	assert_int_equal(check_nesting(json, seq), 2);
	assert_string_equal(seq, "BBEEi");
	assert_int_equal(count_of(json, "\"name\":\"invalidate_migrate\""), 0);
	assert_int_equal(field(json, "dropped_events"), 3);
	free(json);
}

/*
 * An end whose begin came before the start is not recorded; a span open
 * at the stop is closed there; an end of another kind than the innermost
 * span is left out by the writer.
 */
static void test_trace_unpaired(void **state)
{
	char seq[16], *json;

	assert_int_equal(hmmu_trace_start(NULL), 0);
	hmmu_trace(HMMU_TRACE_FAULT, E, 0, 1, 1, 0);
	hmmu_trace(HMMU_TRACE_FAULT, B, 0, 1, 1, 0);
	hmmu_trace(HMMU_TRACE_EVICT, E, 0, 1, 1, 0);
	assert_int_equal(hmmu_trace_stop(), 0);
	json = trace_json();
	assert_int_equal(check_nesting(json, seq), 1);
	assert_string_equal(seq, "BE");
	assert_int_equal(field(json, "unmatched_ends"), 1);
	assert_int_equal(field(json, "open_at_stop"), 1);
	assert_int_equal(count_of(json, "\"closed_at_stop\":true"), 1);
	assert_int_equal(field(json, "dropped_events"), 0);
	free(json);
}

static void *emit_one_span(void *arg)
{
	hmmu_trace(HMMU_TRACE_DEVICE_FAULT, B, 0, 1, 1, 0);
	hmmu_trace(HMMU_TRACE_DEVICE_FAULT, E, 0, 1, 1, 0);
	return arg;
}

/* With one ring, a second thread's events are lost and counted. */
static void test_trace_threads_beyond_rings(void **state)
{
	pthread_t t;
	char *json;

	assert_int_equal(hmmu_trace_start(&(struct hmmu_trace_config){ .max_threads = 1 }), 0);
	emit_one_span(NULL);
	assert_int_equal(pthread_create(&t, NULL, emit_one_span, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(hmmu_trace_stop(), 0);
	json = trace_json();
	assert_int_equal(check_nesting(json, NULL), 1);
	assert_int_equal(count_of(json, "\"thread_name\""), 1);
	assert_int_equal(field(json, "threads"), 1);
	assert_int_equal(field(json, "dropped_events"), 2);
	free(json);
}

/* A CPU fault through the library: one fault span around the fault's work, counted. */
static void test_trace_fault_span(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, HMMU_PAGE_SIZE, PROT_READ | PROT_WRITE);
	char *json;

	assert_int_equal(hmmu_trace_start(NULL), 0);
	put_byte(mm, a, 7);
	put_byte(mm, a, 8);		/* mapped writable: no second fault */
	assert_int_equal(hmmu_trace_stop(), 0);
	json = trace_json();
	assert_int_equal(check_nesting(json, NULL), 1);
	assert_int_equal(count_of(json, "\"name\":\"fault\",\"cat\":\"mm\",\"ph\":\"B\""), 1);
	assert_int_equal(field(json, "fault"), 1);
	free(json);
}

#define WORKERS 4
static atomic_bool workers_stop;

/* Nested spans until told to stop. */
static void *emit_spans(void *arg)
{
	while (!atomic_load(&workers_stop)) {
		hmmu_trace(HMMU_TRACE_FAULT, B, 0, 1, 1, 0);
		hmmu_trace(HMMU_TRACE_INVALIDATE, B, 0, 1, 1, HMMU_NOTIFY_CLEAR);
		hmmu_trace(HMMU_TRACE_INVALIDATE, E, 0, 1, 1, HMMU_NOTIFY_CLEAR);
		hmmu_trace(HMMU_TRACE_FAULT, E, 0, 1, 1, 0);
	}
	return arg;
}

/*
 * Threads record while tracing starts and stops twice (small rings, so
 * they also fill): every trace nests, each thread has its own ring.
 */
static void test_trace_threads_start_stop(void **state)
{
	pthread_t t[WORKERS];
	char *json;

	atomic_store(&workers_stop, false);
	for (int i = 0; i < WORKERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, emit_spans, NULL), 0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(hmmu_trace_start(&(struct hmmu_trace_config){ .events_per_thread = 4096,
									   .max_threads = WORKERS + 1 }), 0);
		sleep_ms(20);
		assert_int_equal(hmmu_trace_stop(), 0);
		json = trace_json();
		assert_true(check_nesting(json, NULL) > 0);
		assert_int_equal(field(json, "unmatched_ends"), 0);
		assert_int_equal(count_of(json, "\"thread_name\""), field(json, "threads"));
		assert_true(field(json, "threads") <= WORKERS);
		free(json);
	}
	atomic_store(&workers_stop, true);
	for (int i = 0; i < WORKERS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(hmmu_trace_discard(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_trace_api),
		HMMU_TEST(test_trace_overflow_pairs),
		HMMU_TEST(test_trace_overflow_nested),
		HMMU_TEST(test_trace_unpaired),
		HMMU_TEST(test_trace_threads_beyond_rings),
		HMMU_TEST(test_trace_fault_span),
		HMMU_TEST(test_trace_threads_start_stop),
	};

	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}

#else /* HMMU_TRACE_OFF */

/* Built without trace points: tracing cannot start, nothing is recorded. */
static void test_trace_off(void **state)
{
	assert_int_equal(hmmu_trace_start(NULL), -EOPNOTSUPP);
	assert_false(hmmu_trace_enabled());
	assert_int_equal(hmmu_trace_write(stdout), -ENODATA);
}

int main(void)
{
	const struct CMUnitTest tests[] = { HMMU_TEST(test_trace_off) };

	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}

#endif
