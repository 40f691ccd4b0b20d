// SPDX-License-Identifier: MIT
/* mremap: placeholder. */
#include "internal.h"

long hmmu_mremap(struct hmmu_mm *mm, unsigned long old_addr, size_t old_len, size_t new_len, int flags,
		 unsigned long new_addr) { return -EOPNOTSUPP; }
