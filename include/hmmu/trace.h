/* SPDX-License-Identifier: MIT */
/*
 * Event tracing: an in-memory record of what the library and its drivers
 * did (CPU faults, migration steps, invalidations, device faults,
 * evictions), written as Chrome trace-event JSON that Perfetto's UI
 * (ui.perfetto.dev) and chrome://tracing open.  docs/trace.md describes the
 * events and the file.
 *
 * Recording: hmmu_trace_start() sets aside a fixed number of rings, one per
 * thread that records, each of a fixed number of events.  A thread takes
 * its ring at its first event; threads beyond the last ring record nothing.
 * A full ring drops new events (counted), never old ones, and keeps every
 * recorded span whole: a span's begin is recorded only when its end still
 * fits, and an end only when its begin was recorded.
 *
 * Cost when off: each trace point is one relaxed load of hmmu_trace_on and
 * a branch predicted not taken.  Built with -DHMMU_TRACE=OFF (which
 * defines HMMU_TRACE_OFF), the library's trace points are compiled out and
 * hmmu_trace_start() returns -EOPNOTSUPP; a driver compiled with
 * HMMU_TRACE_OFF defined drops its own trace points too.
 */
#ifndef HMMU_TRACE_H
#define HMMU_TRACE_H

#include <stdbool.h>
#include <stdio.h>

#include <hmmu/page.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What an event is about.  Every kind is a span (begin and end). */
enum hmmu_trace_kind {
	HMMU_TRACE_FAULT = 0,			/* a CPU fault: the faulting page, npages 1 */
	HMMU_TRACE_MIGRATE_SETUP,		/* migrate_vma_setup: the range; end: pages collected */
	HMMU_TRACE_MIGRATE_PAGES,		/* migrate_vma_pages: the range; end: pages migrated */
	HMMU_TRACE_MIGRATE_FINALIZE,		/* migrate_vma_finalize: the range */
	HMMU_TRACE_MIGRATE_DEVICE_RANGE,	/* migrate_device_range: the pfns; end: pages collected */
	HMMU_TRACE_MIGRATE_DEVICE_PAGES,	/* migrate_device_pages; end: pages migrated */
	HMMU_TRACE_MIGRATE_DEVICE_FINALIZE,	/* migrate_device_finalize */
	HMMU_TRACE_INVALIDATE,			/* invalidate_range_start to _end: range, event */
	HMMU_TRACE_DEVICE_FAULT,		/* a driver's device fault (drivers) */
	HMMU_TRACE_EVICT,			/* a driver's eviction (drivers) */
	HMMU_TRACE_NR
};

/* The phase of an event, as in the trace-event format. */
enum hmmu_trace_phase {
	HMMU_TRACE_BEGIN = 'B',
	HMMU_TRACE_END = 'E',
	HMMU_TRACE_INSTANT = 'i',
};

/* hmmu_trace_start()'s sizes; zero fields take the defaults. */
struct hmmu_trace_config {
	/* Events each thread's ring holds.  Default 131072 (4 MiB). */
	unsigned long events_per_thread;
	/* Rings, that is threads that can record.  Default 64. */
	unsigned int max_threads;
};

/* Nonzero while recording.  Read it through hmmu_trace_enabled(). */
HMMU_EXPORT extern int hmmu_trace_on;

/** hmmu_trace_enabled() - is a trace being recorded?  Any context. */
static inline bool hmmu_trace_enabled(void)
{
#ifdef HMMU_TRACE_OFF
	return false;
#else
	return __builtin_expect(__atomic_load_n(&hmmu_trace_on, __ATOMIC_RELAXED), 0);
#endif
}

/**
 * hmmu_trace_emit() - record one event in the calling thread's ring:
 * @kind, @phase (enum hmmu_trace_phase), the range [@start, @end) (virtual
 * addresses, or pfns for the device migration steps), @npages and, for
 * HMMU_TRACE_INVALIDATE, the enum hmmu_notifier_event @event.  Does
 * nothing when not recording, for an unknown kind or phase, or when the
 * ring is full.  Any context (takes no lock, never sleeps, may be called
 * under spinning locks).  Call it through the helpers below.
 */
HMMU_EXPORT void hmmu_trace_emit(enum hmmu_trace_kind kind, int phase, unsigned long start, unsigned long end,
				 unsigned long npages, unsigned int event);

/* Record an event if recording: the trace point of the library's hot paths. */
static inline void hmmu_trace(enum hmmu_trace_kind kind, int phase, unsigned long start, unsigned long end,
			      unsigned long npages, unsigned int event)
{
	if (hmmu_trace_enabled())
		hmmu_trace_emit(kind, phase, start, end, npages, event);
}

/**
 * hmmu_trace_begin() / hmmu_trace_end() - open and close a span of @kind
 * (a driver's HMMU_TRACE_DEVICE_FAULT or HMMU_TRACE_EVICT) on the calling
 * thread; spans nest.  Call both on the same thread with the same @kind.
 * Any context.
 */
static inline void hmmu_trace_begin(enum hmmu_trace_kind kind, unsigned long start, unsigned long end,
				    unsigned long npages)
{
	hmmu_trace(kind, HMMU_TRACE_BEGIN, start, end, npages, 0);
}

static inline void hmmu_trace_end(enum hmmu_trace_kind kind, unsigned long start, unsigned long end,
				  unsigned long npages)
{
	hmmu_trace(kind, HMMU_TRACE_END, start, end, npages, 0);
}

/**
 * hmmu_trace_start() - discard the last trace, snapshot the counters
 * (hmmu_stat) and start recording.  @cfg: sizes, or NULL for defaults.
 * Context: no hmmu lock held; not concurrent with another start or stop.
 * Returns 0, -EINVAL (more than 2^26 events per thread or 4096 threads),
 * -EBUSY (already recording), -ENOMEM, or -EOPNOTSUPP (built with
 * HMMU_TRACE=OFF).
 */
HMMU_EXPORT int hmmu_trace_start(const struct hmmu_trace_config *cfg);

/**
 * hmmu_trace_stop() - stop recording, wait for trace points in flight,
 * snapshot the counters again.  The events stay until the next start or
 * hmmu_trace_discard().  Context: not inside a trace point's caller's
 * RCU-protected section (as hmmu_synchronize_rcu).  Returns 0, or -EINVAL
 * when not recording.
 */
HMMU_EXPORT int hmmu_trace_stop(void);

/**
 * hmmu_trace_write() - write the stopped trace to @out as Chrome
 * trace-event JSON ({"traceEvents": [...], "otherData": {...}}), with the
 * counter deltas over the traced period in otherData.hmmu_stat.  A span
 * still open at the stop ends at the stop.  Returns 0, -EINVAL (NULL
 * @out), -EBUSY (still recording), -ENODATA (no trace), or -EIO (a write
 * failed).
 */
HMMU_EXPORT int hmmu_trace_write(FILE *out);

/** hmmu_trace_discard() - free a stopped trace; no-op if none.  Returns 0, or -EBUSY while recording. */
HMMU_EXPORT int hmmu_trace_discard(void);

/** hmmu_trace_kind_name() - "fault", "migrate_setup", ...; NULL for an unknown @kind. */
HMMU_EXPORT const char *hmmu_trace_kind_name(unsigned int kind);

#ifdef __cplusplus
}
#endif
#endif /* HMMU_TRACE_H */
