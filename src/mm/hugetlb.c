// SPDX-License-Identifier: MIT
/* Hugetlb mappings: placeholder. */
#include "internal.h"

hmmu_vm_fault_t hmmu_hugetlb_fault(struct hmmu_vma *vma, unsigned long addr, unsigned int flags)
{
	return HMMU_VM_FAULT_SIGBUS;
}
