// SPDX-License-Identifier: MIT
/*
 * hmmu trace-summary FILE: the slowest spans and per-name totals of a
 * Chrome trace-event file (the object form {"traceEvents": [...]} hmmu
 * writes, or a bare array of events).
 *
 * A small JSON reader: any valid JSON is read (values it does not need are
 * skipped), malformed input stops it with the line of the error.  Spans
 * are "X" events (ts, dur) and "B"/"E" pairs matched per (pid, tid) by
 * nesting; an "E" that does not close its thread's innermost span, and a
 * "B" never closed, are counted and left out.  Times are microseconds.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmmu.h"

#define TS_NAME 96		/* name bytes kept (longer names are cut) */
#define TS_KEY 64		/* "pid/tid" bytes kept */
#define TS_MAX_DEPTH 64		/* JSON nesting accepted */

struct ts_span {
	char name[TS_NAME];
	char thread[TS_KEY];
	double ts, dur;
};

/* The open "B" events of one thread. */
struct ts_thread {
	char key[TS_KEY];
	struct ts_span *open;
	size_t depth, cap;
};

struct ts_state {
	const char *buf, *p, *end;
	const char *err;		/* first error, or NULL */
	struct ts_span *spans;		/* finished spans */
	size_t nspans, cap;
	struct ts_thread *threads;
	size_t nthreads;
	unsigned long unmatched;	/* "E" events that closed nothing */
	unsigned long events;
};

/* Grow *@arr (of @size-byte items, *@cap of them) to hold @need; exits on ENOMEM. */
static void *ts_grow(void *arr, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return arr;
	*cap = *cap ? 2 * *cap : 64;
	arr = realloc(arr, *cap * size);
	if (!arr) {
		fprintf(stderr, "hmmu trace-summary: out of memory\n");
		exit(1);
	}
	return arr;
}

/* Is @c one of @set (and not NUL)? */
static bool ts_in(const char *set, char c)
{
	return c && strchr(set, c);
}

static bool ts_fail(struct ts_state *s, const char *what)
{
	if (!s->err)
		s->err = what;
	return false;
}

static void ts_ws(struct ts_state *s)
{
	while (s->p < s->end && ts_in(" \t\r\n", *s->p))
		s->p++;
}

/* Consume @c after white space. */
static bool ts_eat(struct ts_state *s, char c)
{
	ts_ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return true;
	}
	return false;
}

/* A string into @out (cut to @cap - 1 bytes; \u escapes other than ASCII become '?'). */
static bool ts_string(struct ts_state *s, char *out, size_t cap)
{
	size_t n = 0;

	if (!ts_eat(s, '"'))
		return ts_fail(s, "expected a string");
	while (s->p < s->end && *s->p != '"') {
		char c = *s->p++;

		if ((unsigned char)c < 0x20)
			return ts_fail(s, "control character in a string");
		if (c == '\\') {
			if (s->p >= s->end || !ts_in("\"\\/bfnrtu", *s->p))
				return ts_fail(s, "bad escape in a string");
			c = *s->p++;
			if (c == 'u') {
				unsigned int v = 0;

				for (int k = 0; k < 4; k++, s->p++) {
					if (s->p >= s->end || !ts_in("0123456789abcdefABCDEF", *s->p))
						return ts_fail(s, "bad \\u escape");
					v = v * 16 + (unsigned int)(*s->p <= '9' ? *s->p - '0' : (*s->p | 0x20) - 'a' + 10);
				}
				c = v < 0x80 ? (char)v : '?';
			} else {
				c = ts_in("\"\\/", c) ? c : c == 'n' ? '\n' : c == 't' ? '\t' : ' ';
			}
		}
		if (out && n + 1 < cap)
			out[n++] = c;
	}
	if (out)
		out[n] = 0;
	return s->p < s->end ? (s->p++, true) : ts_fail(s, "unterminated string");
}

static bool ts_number(struct ts_state *s, double *v)
{
	char *e;

	ts_ws(s);
	if (s->p >= s->end || !ts_in("-0123456789", *s->p))
		return ts_fail(s, "expected a number");
	*v = strtod(s->p, &e);		/* the buffer ends with a NUL: strtod stops there */
	if (e == s->p)
		return ts_fail(s, "expected a number");
	s->p = e;
	return true;
}

static bool ts_value(struct ts_state *s, int depth);

/* The rest of an object or array after its opening bracket, values skipped. */
static bool ts_skip_members(struct ts_state *s, bool object, int depth)
{
	char close = object ? '}' : ']';

	if (ts_eat(s, close))
		return true;
	do {
		if (object && (!ts_string(s, NULL, 0) || !ts_eat(s, ':')))
			return ts_fail(s, "expected \"key\":");
		if (!ts_value(s, depth + 1))
			return false;
	} while (ts_eat(s, ','));
	return ts_eat(s, close) || ts_fail(s, object ? "expected , or }" : "expected , or ]");
}

/* Skip any one value. */
static bool ts_value(struct ts_state *s, int depth)
{
	static const char *const words[] = { "true", "false", "null" };
	double v;

	if (depth > TS_MAX_DEPTH)
		return ts_fail(s, "nested too deeply");
	ts_ws(s);
	if (s->p >= s->end)
		return ts_fail(s, "unexpected end of file");
	if (*s->p == '"')
		return ts_string(s, NULL, 0);
	if (*s->p == '{' || *s->p == '[')
		return ts_skip_members(s, *s->p++ == '{', depth);
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);

		if ((size_t)(s->end - s->p) >= n && !strncmp(s->p, words[i], n)) {
			s->p += n;
			return true;
		}
	}
	return ts_number(s, &v);
}

/* A pid or tid: a number or a string, as text. */
static bool ts_id(struct ts_state *s, char *out, size_t cap)
{
	double v;

	ts_ws(s);
	if (s->p < s->end && *s->p == '"')
		return ts_string(s, out, cap);
	if (!ts_number(s, &v))
		return false;
	snprintf(out, cap, "%.0f", v);
	return true;
}

/* The fields of one event that matter here. */
struct ts_event {
	char name[TS_NAME], ph[8], pid[TS_KEY / 2], tid[TS_KEY / 2];
	double ts, dur;
	bool has_ts, has_dur;
};

static bool ts_event_member(struct ts_state *s, struct ts_event *e, const char *key)
{
	if (!strcmp(key, "name"))
		return ts_string(s, e->name, sizeof(e->name));
	if (!strcmp(key, "ph"))
		return ts_string(s, e->ph, sizeof(e->ph));
	if (!strcmp(key, "pid"))
		return ts_id(s, e->pid, sizeof(e->pid));
	if (!strcmp(key, "tid"))
		return ts_id(s, e->tid, sizeof(e->tid));
	if (!strcmp(key, "ts"))
		return e->has_ts = ts_number(s, &e->ts);
	if (!strcmp(key, "dur"))
		return e->has_dur = ts_number(s, &e->dur);
	return ts_value(s, 2);
}

static bool ts_event(struct ts_state *s, struct ts_event *e)
{
	char key[16];

	*e = (struct ts_event){ .pid = "0", .tid = "0" };
	if (!ts_eat(s, '{'))
		return ts_fail(s, "expected an event object");
	if (ts_eat(s, '}'))
		return true;
	do {
		if (!ts_string(s, key, sizeof(key)) || !ts_eat(s, ':'))
			return ts_fail(s, "expected \"key\":");
		if (!ts_event_member(s, e, key))
			return false;
	} while (ts_eat(s, ','));
	return ts_eat(s, '}') || ts_fail(s, "expected , or }");
}

static struct ts_thread *ts_thread_of(struct ts_state *s, const struct ts_event *e)
{
	char key[TS_KEY];

	snprintf(key, sizeof(key), "%s/%s", e->pid, e->tid);
	for (size_t i = 0; i < s->nthreads; i++)
		if (!strcmp(s->threads[i].key, key))
			return &s->threads[i];
	s->threads = realloc(s->threads, (s->nthreads + 1) * sizeof(*s->threads));
	if (!s->threads) {
		fprintf(stderr, "hmmu trace-summary: out of memory\n");
		exit(1);
	}
	s->threads[s->nthreads] = (struct ts_thread){ 0 };
	memcpy(s->threads[s->nthreads].key, key, sizeof(key));
	return &s->threads[s->nthreads++];
}

static void ts_add_span(struct ts_state *s, const struct ts_span *sp)
{
	s->spans = ts_grow(s->spans, &s->cap, s->nspans + 1, sizeof(*s->spans));
	s->spans[s->nspans++] = *sp;
}

/* Pair B/E per thread, take X as is; other phases are not spans. */
static void ts_account(struct ts_state *s, const struct ts_event *e)
{
	struct ts_thread *t;
	struct ts_span sp = { .ts = e->ts, .dur = e->dur };

	s->events++;
	if (!e->has_ts || strlen(e->ph) != 1 || !ts_in("BEX", e->ph[0]))
		return;
	t = ts_thread_of(s, e);
	snprintf(sp.thread, sizeof(sp.thread), "%s", t->key);
	snprintf(sp.name, sizeof(sp.name), "%s", e->name);
	if (e->ph[0] == 'X') {
		if (e->has_dur)
			ts_add_span(s, &sp);
	} else if (e->ph[0] == 'B') {
		t->open = ts_grow(t->open, &t->cap, t->depth + 1, sizeof(*t->open));
		t->open[t->depth++] = sp;
	} else if (!t->depth || (e->name[0] && strcmp(t->open[t->depth - 1].name, e->name))) {
		s->unmatched++;
	} else {
		sp = t->open[--t->depth];
		sp.dur = e->ts - sp.ts;
		ts_add_span(s, &sp);
	}
}

/* The events array, after its '['. */
static bool ts_events(struct ts_state *s)
{
	struct ts_event e;

	if (ts_eat(s, ']'))
		return true;
	do {
		if (!ts_event(s, &e))
			return false;
		ts_account(s, &e);
	} while (ts_eat(s, ','));
	return ts_eat(s, ']') || ts_fail(s, "expected , or ]");
}

/* An object after its '{': "traceEvents" is read, other members skipped. */
static bool ts_object(struct ts_state *s)
{
	bool found = false;
	char key[32];

	if (ts_eat(s, '}'))
		return ts_fail(s, "no traceEvents array");
	do {
		if (!ts_string(s, key, sizeof(key)) || !ts_eat(s, ':'))
			return ts_fail(s, "expected \"key\":");
		if (strcmp(key, "traceEvents")) {
			if (!ts_value(s, 1))
				return false;
			continue;
		}
		if (!ts_eat(s, '['))
			return ts_fail(s, "traceEvents is not an array");
		if (!ts_events(s))
			return false;
		found = true;
	} while (ts_eat(s, ','));
	if (!ts_eat(s, '}'))
		return ts_fail(s, "expected , or }");
	return found || ts_fail(s, "no traceEvents array");
}

/* The whole file: an array of events, or an object with "traceEvents". */
static bool ts_parse(struct ts_state *s)
{
	bool ok;

	if (ts_eat(s, '['))
		ok = ts_events(s);
	else if (ts_eat(s, '{'))
		ok = ts_object(s);
	else
		return ts_fail(s, "expected { or [ at the start");
	ts_ws(s);
	return ok && (s->p == s->end || ts_fail(s, "trailing characters after the JSON value"));
}

/* ------------------------------------------------------------------ */
/* Report                                                              */
/* ------------------------------------------------------------------ */

static int ts_by_dur(const void *a, const void *b)
{
	double x = ((const struct ts_span *)a)->dur, y = ((const struct ts_span *)b)->dur;

	return (x < y) - (x > y);
}

static int ts_by_name(const void *a, const void *b)
{
	return strcmp(((const struct ts_span *)a)->name, ((const struct ts_span *)b)->name);
}

/* One line per name: count, total, max, mean (spans sorted by name on entry). */
static void ts_print_totals(const struct ts_span *sp, size_t n)
{
	printf("\n%-32s %10s %14s %12s %12s\n", "per name", "count", "total_us", "max_us", "mean_us");
	for (size_t i = 0, j; i < n; i = j) {
		double total = 0, max = 0;

		for (j = i; j < n && !strcmp(sp[j].name, sp[i].name); j++) {
			total += sp[j].dur;
			max = sp[j].dur > max ? sp[j].dur : max;
		}
		printf("%-32s %10zu %14.3f %12.3f %12.3f\n", sp[i].name, j - i, total, max, total / (double)(j - i));
	}
}

static void ts_print(struct ts_state *s, unsigned long top)
{
	size_t open = 0;

	for (size_t i = 0; i < s->nthreads; i++)
		open += s->threads[i].depth;
	printf("%lu events, %zu spans, %zu threads", s->events, s->nspans, s->nthreads);
	if (s->unmatched || open)
		printf(" (%lu unmatched ends, %zu unclosed begins left out)", s->unmatched, open);
	printf("\n\nslowest %lu spans:\n%12s %14s  %-16s %s\n", top < s->nspans ? top : (unsigned long)s->nspans,
	       "duration_us", "start_us", "pid/tid", "name");
	qsort(s->spans, s->nspans, sizeof(*s->spans), ts_by_dur);
	for (size_t i = 0; i < s->nspans && i < top; i++)
		printf("%12.3f %14.3f  %-16s %s\n", s->spans[i].dur, s->spans[i].ts, s->spans[i].thread, s->spans[i].name);
	qsort(s->spans, s->nspans, sizeof(*s->spans), ts_by_name);
	ts_print_totals(s->spans, s->nspans);
}

/* Read all of @path, NUL-terminated; NULL (errno set) on failure. */
static char *ts_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0;

	*len = 0;
	if (!f)
		return NULL;
	for (size_t got = 1; got;) {
		buf = ts_grow(buf, &cap, *len + 65536 + 1, 1);
		got = fread(buf + *len, 1, cap - *len - 1, f);
		*len += got;
	}
	buf[*len] = 0;
	if (ferror(f)) {
		free(buf);
		buf = NULL;
		errno = EIO;
	}
	fclose(f);
	return buf;
}

static void ts_free(struct ts_state *s)
{
	for (size_t i = 0; i < s->nthreads; i++)
		free(s->threads[i].open);
	free(s->threads);
	free(s->spans);
	free((char *)s->buf);
}

/* The line of s->p, for error messages. */
static unsigned long ts_line(const struct ts_state *s)
{
	unsigned long line = 1;

	for (const char *q = s->buf; q < s->p; q++)
		line += *q == '\n';
	return line;
}

static _Noreturn void ts_usage(int status)
{
	printf("usage: hmmu trace-summary [--top N] FILE\n\n"
	       "Reads a Chrome trace-event JSON file (as written by 'hmmu --trace FILE'),\n"
	       "pairs its B/E events per thread, and prints the slowest spans and, per\n"
	       "span name, the count, total, maximum and mean duration (microseconds).\n\n"
	       "  --top N   how many of the slowest spans to list (default 10)\n"
	       "  --help    this text\n");
	exit(status);
}

int hmmu_cmd_trace_summary(int argc, char **argv)
{
	static const struct option opts[] = { { "top", required_argument, NULL, 't' },
					      { "help", no_argument, NULL, 'h' },
					      { 0 } };
	struct ts_state s = { 0 };
	unsigned long top = 10;
	size_t len;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		if (c != 't')
			ts_usage(c == 'h' ? 0 : 2);
		top = strtoul(optarg, &end, 10);
		if (!*optarg || *end)
			ts_usage(2);
	}
	if (optind != argc - 1)
		ts_usage(2);
	s.buf = s.p = ts_read(argv[optind], &len);
	if (!s.buf) {
		fprintf(stderr, "hmmu trace-summary: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	s.end = s.buf + len;
	if (ts_parse(&s))
		ts_print(&s, top);
	else
		fprintf(stderr, "hmmu trace-summary: %s: line %lu: %s\n", argv[optind], ts_line(&s), s.err);
	ts_free(&s);
	return s.err ? 1 : 0;
}
