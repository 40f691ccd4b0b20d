/* SPDX-License-Identifier: MIT */
/* Sub-commands of the hmmu command. */
#ifndef HMMU_TOOL_H
#define HMMU_TOOL_H

int hmmu_cmd_demo(int argc, char **argv);
int hmmu_cmd_stat(int argc, char **argv);
/* bench/bench.c: the benchmark scenarios. */
int hmmu_cmd_bench(int argc, char **argv);
int hmmu_cmd_trace_summary(int argc, char **argv);
/*
 * demo_host.c: the demo's host run over @bytes (a multiple of 4 KiB, at
 * most 64 MiB): call between hmmu_init() and hmmu_exit().  0, or 1 on a
 * mismatch or failure; a system without host mms skips it (0).
 */
int hmmu_demo_host(unsigned long bytes);

#endif
