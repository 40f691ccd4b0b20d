// SPDX-License-Identifier: MIT
/* The hmmu command: dispatches to its sub-commands. */
#include <stdio.h>
#include <string.h>

#include "hmmu.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} hmmu_cmds[] = {
	{ "demo", hmmu_cmd_demo, "a device computes on CPU data: faults, migration, eviction; verified" },
	{ "stat", hmmu_cmd_stat, "run a small workload, print the global event counters" },
};

static int hmmu_usage(FILE *out)
{
	fprintf(out, "usage: hmmu <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(hmmu_cmds) / sizeof(hmmu_cmds[0]); i++)
		fprintf(out, "  %-8s %s\n", hmmu_cmds[i].name, hmmu_cmds[i].help);
	fprintf(out, "\n'hmmu <command> --help' describes a command's options.\n");
	return out == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return hmmu_usage(stderr);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return hmmu_usage(stdout);
	for (size_t i = 0; i < sizeof(hmmu_cmds) / sizeof(hmmu_cmds[0]); i++)
		if (!strcmp(argv[1], hmmu_cmds[i].name))
			return hmmu_cmds[i].run(argc - 1, argv + 1);
	fprintf(stderr, "hmmu: unknown command '%s'\n", argv[1]);
	return hmmu_usage(stderr);
}
