/* SPDX-License-Identifier: MIT */
/* Sub-commands of the hmmu command. */
#ifndef HMMU_TOOL_H
#define HMMU_TOOL_H

int hmmu_cmd_demo(int argc, char **argv);
int hmmu_cmd_stat(int argc, char **argv);
/* bench/bench.c: the benchmark scenarios. */
int hmmu_cmd_bench(int argc, char **argv);
int hmmu_cmd_trace_summary(int argc, char **argv);

#endif
