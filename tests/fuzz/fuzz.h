/* SPDX-License-Identifier: MIT */
/*
 * The fuzz target's entry points (libFuzzer's names).  fuzz_hmmu.c defines
 * them; libFuzzer's main or replay.c (a plain driver that runs files) calls
 * them.
 */
#ifndef HMMU_FUZZ_H
#define HMMU_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* HMMU_FUZZ_H */
