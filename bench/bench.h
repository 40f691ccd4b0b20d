/* SPDX-License-Identifier: MIT */
/*
 * The benchmark harness shared by bench.c (memory and notifier scenarios)
 * and device.c (device scenarios): DESIGN.md, "Testing and measuring".
 */
#ifndef HMMU_BENCH_H
#define HMMU_BENCH_H

#include <stdbool.h>
#include <stdio.h>

#include <hmmu/hmmu.h>
#include <hmmu/dmirror.h>

#define BENCH_RUNS 5
#define MIB (1UL << 20)

struct bench_ctx {
	struct hmmu_mm *mm;
	unsigned long bytes;
	long addr;		/* the scenario's mapping in mm, or <= 0 */
	char *buf;		/* bytes of pre-faulted destination */
	const char *pattern;	/* bytes of the data the mapping holds when populated */
	void *dev;		/* scenario-private state (device.c) */
};

/* Run scenario @name?  (HMMU_BENCH_ONLY=substring limits the run.) */
bool bench_selected(const char *name);
/* Print @what and the error, exit 1. */
_Noreturn void bench_fail(const char *what, long err);
/* A pre-faulted buffer of @bytes that transparent huge pages do not back. */
char *bench_buffer(unsigned long bytes);
/* The median of BENCH_RUNS timed runs of @run after one warm-up; @reset
 * before each and @check after each run are not timed. */
double bench_time_median(struct bench_ctx *c, void (*reset)(struct bench_ctx *), void (*run)(struct bench_ctx *),
			 void (*check)(struct bench_ctx *));
/* The same-run memcpy of c->bytes between two pre-faulted buffers. */
double bench_memcpy_ns(struct bench_ctx *c);
/* Write one result (stdout and, if @json, one JSON object); @extra: more JSON fields or NULL. */
void bench_report(FILE *json, const char *name, unsigned long bytes, double ns, double copy_ns, const char *extra);

/* A fresh mapping of c->bytes, untouched / holding c->pattern in system pages. */
void bench_map_fresh(struct bench_ctx *c);
void bench_map_populated(struct bench_ctx *c);
/* Fail unless the mapping reads back c->pattern (through c->buf). */
void bench_check_mapping(struct bench_ctx *c);

/* device.c: the device scenarios at proto->bytes (buf, pattern from @proto). */
void bench_device(const struct bench_ctx *proto, FILE *json);
/* host.c: the host-mm scenarios at proto->bytes (docs/host.md). */
void bench_host(const struct bench_ctx *proto, FILE *json);

#endif /* HMMU_BENCH_H */
