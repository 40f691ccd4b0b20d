// SPDX-License-Identifier: MIT
/* Internal invariant failures: report and abort. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

_Noreturn void hmmu_bug(const char *file, int line, const char *what)
{
	fprintf(stderr, "hmmu: BUG at %s:%d: %s\n", file, line, what);
	fflush(stderr);
	abort();
}
