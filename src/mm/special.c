// SPDX-License-Identifier: MIT
/* Special mappings: placeholder. */
#include "internal.h"

int hmmu_vm_insert_page(struct hmmu_vma *vma, unsigned long addr, struct hmmu_page *page) { return -EOPNOTSUPP; }
hmmu_vm_fault_t hmmu_vmf_insert_pfn(struct hmmu_vma *vma, unsigned long addr, unsigned long pfn) { return HMMU_VM_FAULT_SIGBUS; }
hmmu_vm_fault_t hmmu_vmf_insert_mixed(struct hmmu_vma *vma, unsigned long addr, unsigned long pfn) { return HMMU_VM_FAULT_SIGBUS; }
int hmmu_remap_pfn_range(struct hmmu_vma *vma, unsigned long addr, unsigned long pfn, unsigned long size) { return -EOPNOTSUPP; }
