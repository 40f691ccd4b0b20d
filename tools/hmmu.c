// SPDX-License-Identifier: MIT
/*
 * The hmmu command: dispatches to its sub-commands.  The global option
 * --trace FILE (before the command or anywhere among its arguments up to
 * a "--") records a trace of the whole sub-command (include/hmmu/trace.h)
 * and writes it to FILE when the command ends, by returning or by exit().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hmmu/hmmu.h>

#include "hmmu.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} hmmu_cmds[] = {
	{ "demo", hmmu_cmd_demo, "a device computes on CPU data: faults, migration, eviction; verified" },
	{ "stat", hmmu_cmd_stat, "run a small workload, print the global event counters" },
	{ "bench", hmmu_cmd_bench, "run the benchmark scenarios (--json FILE: results as JSON)" },
	{ "trace-summary", hmmu_cmd_trace_summary, "print the slowest spans and per-kind totals of a trace file" },
};

static int hmmu_usage(FILE *out)
{
	fprintf(out, "usage: hmmu [--trace FILE] <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(hmmu_cmds) / sizeof(hmmu_cmds[0]); i++)
		fprintf(out, "  %-14s %s\n", hmmu_cmds[i].name, hmmu_cmds[i].help);
	fprintf(out, "\noptions:\n"
		     "  --trace FILE   record a trace of the command and write it to FILE as Chrome\n"
		     "                 trace-event JSON (open it in ui.perfetto.dev; docs/trace.md);\n"
		     "                 also accepted after the command\n"
		     "  --help         this text\n"
		     "\n'hmmu <command> --help' describes a command's options.\n");
	return out == stderr ? 2 : 0;
}

/* The trace file, open from before the command until hmmu_trace_finish(). */
static FILE *hmmu_trace_file;
static const char *hmmu_trace_path;

/* atexit: stop recording and write the trace (also after a command's exit()). */
static void hmmu_trace_finish(void)
{
	int err = hmmu_trace_stop();

	if (!err)
		err = hmmu_trace_write(hmmu_trace_file);
	hmmu_trace_discard();
	if (fclose(hmmu_trace_file) && !err)
		err = -EIO;
	if (err)
		fprintf(stderr, "hmmu: writing trace %s: %s\n", hmmu_trace_path, strerror(-err));
	else
		fprintf(stderr, "hmmu: trace written to %s\n", hmmu_trace_path);
}

/*
 * Remove "--trace FILE" and "--trace=FILE" from argv[1..argc) (up to a
 * "--"), keeping the rest in order; *@path: the last FILE given.  Returns
 * the new argc, or -1 for a --trace without FILE.
 */
static int hmmu_take_trace(int argc, char **argv, const char **path)
{
	int n = 1, i = 1;

	for (; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strncmp(argv[i], "--trace=", 8)) {
			*path = argv[i] + 8;
		} else if (!strcmp(argv[i], "--trace")) {
			if (++i == argc)
				return -1;
			*path = argv[i];
		} else {
			argv[n++] = argv[i];
		}
	}
	while (i < argc)
		argv[n++] = argv[i++];
	argv[n] = NULL;
	return n;
}

/* Open the trace file and start recording; returns 0 or exits 1. */
static void hmmu_trace_begin_cmd(const char *path)
{
	int err;

	hmmu_trace_path = path;
	hmmu_trace_file = fopen(path, "w");
	if (!hmmu_trace_file) {
		fprintf(stderr, "hmmu: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	err = hmmu_trace_start(NULL);
	if (err) {
		fprintf(stderr, "hmmu: cannot trace: %s\n", strerror(-err));
		exit(1);
	}
	atexit(hmmu_trace_finish);
}

int main(int argc, char **argv)
{
	const char *trace = NULL;

	argc = hmmu_take_trace(argc, argv, &trace);
	if (argc < 0) {
		fprintf(stderr, "hmmu: --trace needs a FILE\n");
		return 2;
	}
	if (argc < 2)
		return hmmu_usage(stderr);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return hmmu_usage(stdout);
	for (size_t i = 0; i < sizeof(hmmu_cmds) / sizeof(hmmu_cmds[0]); i++) {
		if (strcmp(argv[1], hmmu_cmds[i].name))
			continue;
		if (trace)
			hmmu_trace_begin_cmd(trace);
		return hmmu_cmds[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "hmmu: unknown command '%s'\n", argv[1]);
	return hmmu_usage(stderr);
}
