/* SPDX-License-Identifier: MIT */
/* Sub-commands of the hmmu command. */
#ifndef HMMU_TOOL_H
#define HMMU_TOOL_H

int hmmu_cmd_demo(int argc, char **argv);
int hmmu_cmd_stat(int argc, char **argv);

#endif
