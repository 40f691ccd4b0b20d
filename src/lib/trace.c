// SPDX-License-Identifier: MIT
/*
 * Event tracing (include/hmmu/trace.h, docs/trace.md).
 *
 * A session is the set of rings of one hmmu_trace_start(): max_threads
 * rings of events_per_thread events each, the events in one anonymous
 * mapping committed as it is written.  A recording thread claims the next
 * free ring at its first event of the session (a fetch-add on `claimed`)
 * and is its only writer from then on: rings need no lock and no atomics.
 *
 * Lifetime: `hmmu_trace_active` points at the recording session, or is
 * NULL.  hmmu_trace_emit() reads it inside an RCU read section; stop
 * clears it, then waits for a grace period, so that afterwards no thread
 * writes a ring and the control side reads them freely (the grace period
 * orders every event write before those reads).  The stopped session
 * stays in `hmmu_trace_last` for hmmu_trace_write() until the next start
 * or a discard.  Start, stop, write and discard serialise on
 * hmmu_trace_ctl_lock.
 *
 * Overflow: see hmmu_trace_record().  A thread holds its ring through a
 * thread-local (generation, ring): a ring of an older session is never
 * touched again.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define HMMU_TRACE_DEF_EVENTS (1UL << 17)
#define HMMU_TRACE_DEF_THREADS 64U
#define HMMU_TRACE_MAX_EVENTS (1UL << 26)
#define HMMU_TRACE_MAX_THREADS 4096U

/* One event; the JSON writer turns it into one trace event. */
struct hmmu_trace_event {
	uint64_t ts;		/* ns, CLOCK_MONOTONIC */
	unsigned long start, end;
	uint32_t npages;
	uint8_t kind, phase;
	uint16_t event;
};

/* One thread's ring: written only by its owner while recording (see above). */
struct hmmu_trace_ring {
	struct hmmu_trace_event *ev;
	unsigned long used;	/* events recorded */
	unsigned long reserved;	/* slots kept for the ends of the recorded open spans */
	unsigned int depth;	/* spans open on this thread since its first event */
	unsigned int recorded;	/* of those, how many (the outermost ones) were recorded */
	unsigned long dropped;	/* events not recorded for want of room */
	long tid;
};

struct hmmu_trace_session {
	unsigned long gen;		/* this session's number (thread-local ring lookup) */
	unsigned long cap;		/* events per ring */
	unsigned int nrings;
	atomic_uint claimed;		/* rings handed out (may exceed nrings) */
	atomic_ulong lost;		/* events of threads that found no ring */
	struct hmmu_trace_event *events;	/* nrings * cap, mmap'ed */
	uint64_t t0, t1;		/* start and stop, ns */
	struct hmmu_stat stat0, stat1;	/* counters at start and at stop */
	struct hmmu_trace_ring rings[];
};

int hmmu_trace_on;

/* The recording session or NULL: set by start, cleared by stop (both under the ctl lock). */
static _Atomic(struct hmmu_trace_session *) hmmu_trace_active;
static pthread_mutex_t hmmu_trace_ctl_lock = PTHREAD_MUTEX_INITIALIZER;
/* Under hmmu_trace_ctl_lock: the last session (recording or stopped), its generation counter. */
static struct hmmu_trace_session *hmmu_trace_last;
static unsigned long hmmu_trace_gen;

/* The calling thread's ring in session hmmu_trace_my_gen (NULL: none left). */
static _Thread_local unsigned long hmmu_trace_my_gen;
static _Thread_local struct hmmu_trace_ring *hmmu_trace_my_ring;

static const char *const hmmu_trace_names[HMMU_TRACE_NR] = {
	[HMMU_TRACE_FAULT] = "fault",
	[HMMU_TRACE_MIGRATE_SETUP] = "migrate_setup",
	[HMMU_TRACE_MIGRATE_PAGES] = "migrate_pages",
	[HMMU_TRACE_MIGRATE_FINALIZE] = "migrate_finalize",
	[HMMU_TRACE_MIGRATE_DEVICE_RANGE] = "migrate_device_range",
	[HMMU_TRACE_MIGRATE_DEVICE_PAGES] = "migrate_device_pages",
	[HMMU_TRACE_MIGRATE_DEVICE_FINALIZE] = "migrate_device_finalize",
	[HMMU_TRACE_INVALIDATE] = "invalidate",
	[HMMU_TRACE_DEVICE_FAULT] = "device_fault",
	[HMMU_TRACE_EVICT] = "evict",
};

const char *hmmu_trace_kind_name(unsigned int kind)
{
	return kind < HMMU_TRACE_NR ? hmmu_trace_names[kind] : NULL;
}

static uint64_t hmmu_trace_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The calling thread's ring in @s, claimed at its first event.  Inside the read section. */
static struct hmmu_trace_ring *hmmu_trace_ring_of(struct hmmu_trace_session *s)
{
	unsigned int i;

	if (hmmu_likely(hmmu_trace_my_gen == s->gen))
		return hmmu_trace_my_ring;
	i = atomic_fetch_add_explicit(&s->claimed, 1, memory_order_relaxed);
	hmmu_trace_my_gen = s->gen;
	hmmu_trace_my_ring = i < s->nrings ? &s->rings[i] : NULL;
	if (hmmu_trace_my_ring)
		hmmu_trace_my_ring->tid = syscall(SYS_gettid);
	return hmmu_trace_my_ring;
}

/*
 * Store @e in @r if it fits, keeping spans whole.  Free room (cap - used -
 * reserved) only ever shrinks: a begin takes two slots (its own and one
 * reserved for its end), an end uses the slot its begin reserved, an
 * instant takes one.  So once a begin is dropped every later begin is too,
 * and the recorded spans are always the outermost `recorded` of the
 * `depth` open ones: an end is recorded iff depth == recorded.  An end
 * with no begin since the thread's first event (the span began before the
 * start) is ignored.  Returns false when @e was dropped.
 */
static bool hmmu_trace_record(struct hmmu_trace_ring *r, unsigned long cap, const struct hmmu_trace_event *e)
{
	unsigned long room = cap - r->used - r->reserved;

	if (e->phase == HMMU_TRACE_BEGIN) {
		if (r->depth++ != r->recorded || room < 2)
			return false;
		r->recorded++;
		r->reserved++;
	} else if (e->phase == HMMU_TRACE_END) {
		if (!r->depth)
			return true;
		if (r->depth-- != r->recorded)
			return false;
		r->recorded--;
		r->reserved--;
	} else if (room < 1) {
		return false;
	}
	r->ev[r->used++] = *e;
	return true;
}

/* Any context: no lock but an RCU read section, no sleep. */
void hmmu_trace_emit(enum hmmu_trace_kind kind, int phase, unsigned long start, unsigned long end,
		     unsigned long npages, unsigned int event)
{
	struct hmmu_trace_event e = { .start = start, .end = end, .npages = (uint32_t)npages,
				      .kind = (uint8_t)kind, .phase = (uint8_t)phase, .event = (uint16_t)event };
	struct hmmu_trace_session *s;
	struct hmmu_trace_ring *r;

	if ((unsigned int)kind >= HMMU_TRACE_NR ||
	    (phase != HMMU_TRACE_BEGIN && phase != HMMU_TRACE_END && phase != HMMU_TRACE_INSTANT))
		return;
	hmmu_rcu_read_lock();
	s = atomic_load_explicit(&hmmu_trace_active, memory_order_acquire);	/* pairs with start's release */
	if (s) {
		r = hmmu_trace_ring_of(s);
		e.ts = hmmu_trace_now();
		if (!r)
			atomic_fetch_add_explicit(&s->lost, 1, memory_order_relaxed);
		else if (!hmmu_trace_record(r, s->cap, &e))
			r->dropped++;
	}
	hmmu_rcu_read_unlock();
}

/* Free @s (stopped, or never published).  NULL is fine. */
static void hmmu_trace_session_free(struct hmmu_trace_session *s)
{
	if (!s)
		return;
	munmap(s->events, s->nrings * s->cap * sizeof(*s->events));
	free(s);
}

static struct hmmu_trace_session *hmmu_trace_session_new(unsigned long cap, unsigned int nrings)
{
	struct hmmu_trace_session *s = calloc(1, sizeof(*s) + nrings * sizeof(s->rings[0]));

	if (!s)
		return NULL;
	s->events = mmap(NULL, nrings * cap * sizeof(*s->events), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->events == MAP_FAILED) {
		free(s);
		return NULL;
	}
	s->cap = cap;
	s->nrings = nrings;
	for (unsigned int i = 0; i < nrings; i++)
		s->rings[i].ev = s->events + i * cap;
	return s;
}

/* Context: see include/hmmu/trace.h. */
int hmmu_trace_start(const struct hmmu_trace_config *cfg)
{
	unsigned long cap = cfg && cfg->events_per_thread ? cfg->events_per_thread : HMMU_TRACE_DEF_EVENTS;
	unsigned int nrings = cfg && cfg->max_threads ? cfg->max_threads : HMMU_TRACE_DEF_THREADS;
	struct hmmu_trace_session *s;

#ifdef HMMU_TRACE_OFF
	return -EOPNOTSUPP;
#endif
	if (cap > HMMU_TRACE_MAX_EVENTS || nrings > HMMU_TRACE_MAX_THREADS)
		return -EINVAL;
	pthread_mutex_lock(&hmmu_trace_ctl_lock);
	if (atomic_load(&hmmu_trace_active)) {
		pthread_mutex_unlock(&hmmu_trace_ctl_lock);
		return -EBUSY;
	}
	hmmu_trace_session_free(hmmu_trace_last);
	hmmu_trace_last = s = hmmu_trace_session_new(cap, nrings);
	if (s) {
		s->gen = ++hmmu_trace_gen;
		hmmu_stat(&s->stat0);
		s->t0 = hmmu_trace_now();
		atomic_store_explicit(&hmmu_trace_active, s, memory_order_release);	/* pairs with emit's acquire */
		__atomic_store_n(&hmmu_trace_on, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&hmmu_trace_ctl_lock);
	return s ? 0 : -ENOMEM;
}

/* Context: see include/hmmu/trace.h. */
int hmmu_trace_stop(void)
{
	struct hmmu_trace_session *s;

	pthread_mutex_lock(&hmmu_trace_ctl_lock);
	s = atomic_load(&hmmu_trace_active);
	if (s) {
		__atomic_store_n(&hmmu_trace_on, 0, __ATOMIC_RELAXED);
		atomic_store(&hmmu_trace_active, NULL);
		hmmu_synchronize_rcu();		/* no emit still writes a ring */
		s->t1 = hmmu_trace_now();
		hmmu_stat(&s->stat1);
	}
	pthread_mutex_unlock(&hmmu_trace_ctl_lock);
	return s ? 0 : -EINVAL;
}

int hmmu_trace_discard(void)
{
	int ret = 0;

	pthread_mutex_lock(&hmmu_trace_ctl_lock);
	if (atomic_load(&hmmu_trace_active)) {
		ret = -EBUSY;
	} else {
		hmmu_trace_session_free(hmmu_trace_last);
		hmmu_trace_last = NULL;
	}
	pthread_mutex_unlock(&hmmu_trace_ctl_lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* The JSON writer                                                     */
/* ------------------------------------------------------------------ */

/* What a writer needs across threads: the file, the session, the tallies. */
struct hmmu_trace_out {
	FILE *f;
	const struct hmmu_trace_session *s;
	int pid;
	bool first;			/* no trace event written yet */
	unsigned long dropped, unmatched, open_at_stop;
	/* The current thread's open spans: kind << 16 | event, innermost last. */
	uint32_t *stack;
	unsigned long depth, stack_cap;
};

static const char *hmmu_trace_cat(unsigned int kind)
{
	if (kind == HMMU_TRACE_FAULT)
		return "mm";
	if (kind == HMMU_TRACE_INVALIDATE)
		return "notifier";
	return kind >= HMMU_TRACE_DEVICE_FAULT ? "device" : "migrate";
}

/* An invalidation is named after its counter ("invalidate_unmap", ...). */
static const char *hmmu_trace_event_name(unsigned int kind, unsigned int event)
{
	if (kind == HMMU_TRACE_INVALIDATE && event <= HMMU_NOTIFY_EXCLUSIVE)
		return hmmu_stat_name(HMMU_STAT_INVALIDATE_UNMAP + event);
	return hmmu_trace_kind_name(kind);
}

/* Write one trace event of @r's thread; @ts in ns; @closing: an end the writer made up. */
static void hmmu_trace_put(struct hmmu_trace_out *o, const struct hmmu_trace_ring *r,
			   const struct hmmu_trace_event *e, uint64_t ts, bool closing)
{
	uint64_t rel = ts - o->s->t0;

	fprintf(o->f, "%s\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"%c\",\"ts\":%llu.%03u,\"pid\":%d,\"tid\":%ld,\"args\":{",
		o->first ? "" : ",", hmmu_trace_event_name(e->kind, e->event), hmmu_trace_cat(e->kind), e->phase,
		(unsigned long long)(rel / 1000), (unsigned int)(rel % 1000), o->pid, r->tid);
	o->first = false;
	if (closing)
		fprintf(o->f, "\"closed_at_stop\":true}}");
	else if (e->phase == HMMU_TRACE_END)
		fprintf(o->f, "\"done\":%u}}", e->npages);
	else
		fprintf(o->f, "\"start\":\"0x%lx\",\"end\":\"0x%lx\",\"npages\":%u}}", e->start, e->end, e->npages);
}

/* Push a begin on the writer's span stack; false on allocation failure. */
static bool hmmu_trace_push(struct hmmu_trace_out *o, uint32_t key)
{
	if (o->depth == o->stack_cap) {
		unsigned long cap = o->stack_cap ? 2 * o->stack_cap : 64;
		uint32_t *p = realloc(o->stack, cap * sizeof(*p));

		if (!p)
			return false;
		o->stack = p;
		o->stack_cap = cap;
	}
	o->stack[o->depth++] = key;
	return true;
}

/*
 * Write @r's events.  Begins and ends are paired again on the way (a
 * driver may close a span on another thread or with another kind): an end
 * that does not close the innermost open span is left out, and the spans
 * still open at the end are closed at the stop.
 */
static void hmmu_trace_put_ring(struct hmmu_trace_out *o, const struct hmmu_trace_ring *r)
{
	fprintf(o->f, "%s\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%ld,\"args\":{\"name\":\"thread %ld\"}}",
		o->first ? "" : ",", o->pid, r->tid, r->tid);
	o->first = false;
	o->depth = 0;
	for (unsigned long i = 0; i < r->used; i++) {
		const struct hmmu_trace_event *e = &r->ev[i];
		uint32_t key = (uint32_t)e->kind << 16 | e->event;

		if (e->phase == HMMU_TRACE_END && (!o->depth || o->stack[o->depth - 1] != key)) {
			o->unmatched++;
			continue;
		}
		if (e->phase == HMMU_TRACE_BEGIN && !hmmu_trace_push(o, key)) {
			o->dropped++;
			continue;
		}
		o->depth -= e->phase == HMMU_TRACE_END;
		hmmu_trace_put(o, r, e, e->ts, false);
	}
	for (; o->depth; o->open_at_stop++) {
		uint32_t key = o->stack[--o->depth];
		struct hmmu_trace_event e = { .kind = (uint8_t)(key >> 16), .event = (uint16_t)key, .phase = 'E' };

		hmmu_trace_put(o, r, &e, o->s->t1, true);
	}
}

/* otherData: the sizes, the tallies and the counter deltas over the traced period. */
static void hmmu_trace_put_other(struct hmmu_trace_out *o)
{
	const struct hmmu_trace_session *s = o->s;
	unsigned int threads = HMMU_MIN(atomic_load(&s->claimed), s->nrings);

	fprintf(o->f, "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"producer\":\"hmmu\",\"clock\":\"CLOCK_MONOTONIC\","
		"\"duration_us\":%.3f,\"events_per_thread\":%lu,\"max_threads\":%u,\"threads\":%u,"
		"\"dropped_events\":%lu,\"unmatched_ends\":%lu,\"open_at_stop\":%lu,\"hmmu_stat\":{",
		(double)(s->t1 - s->t0) / 1e3, s->cap, s->nrings, threads,
		o->dropped + atomic_load(&s->lost), o->unmatched, o->open_at_stop);
	for (unsigned int i = 0; i < HMMU_STAT_NR; i++)
		fprintf(o->f, "%s\"%s\":%lu", i ? "," : "", hmmu_stat_name(i), s->stat1.v[i] - s->stat0.v[i]);
	fprintf(o->f, "}}\n}\n");
}

/* Context: see include/hmmu/trace.h. */
int hmmu_trace_write(FILE *out)
{
	struct hmmu_trace_out o = { .f = out, .pid = (int)getpid(), .first = true };
	int ret = 0;

	if (!out)
		return -EINVAL;
	pthread_mutex_lock(&hmmu_trace_ctl_lock);
	o.s = hmmu_trace_last;
	if (!o.s || atomic_load(&hmmu_trace_active)) {
		pthread_mutex_unlock(&hmmu_trace_ctl_lock);
		return o.s ? -EBUSY : -ENODATA;
	}
	fprintf(out, "{\"traceEvents\":[");
	fprintf(out, "\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":\"hmmu\"}}", o.pid);
	o.first = false;
	for (unsigned int i = 0; i < HMMU_MIN(atomic_load(&o.s->claimed), o.s->nrings); i++) {
		o.dropped += o.s->rings[i].dropped;
		hmmu_trace_put_ring(&o, &o.s->rings[i]);
	}
	hmmu_trace_put_other(&o);
	if (fflush(out) || ferror(out))
		ret = -EIO;
	pthread_mutex_unlock(&hmmu_trace_ctl_lock);
	free(o.stack);
	return ret;
}
