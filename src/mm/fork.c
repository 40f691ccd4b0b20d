// SPDX-License-Identifier: MIT
/* fork: placeholder. */
#include "internal.h"

int hmmu_fork(struct hmmu_mm *mm, struct hmmu_mm **childp) { return -EOPNOTSUPP; }
