// SPDX-License-Identifier: MIT
/* Page-cache objects: placeholder until the page cache lands. */
#include "internal.h"

int hmmu_file_open_fd(int fd, struct hmmu_file **filep) { return -EOPNOTSUPP; }
int hmmu_shmem_file_create(unsigned long size, struct hmmu_file **filep) { return -EOPNOTSUPP; }
void hmmu_file_get(struct hmmu_file *file) {}
void hmmu_file_put(struct hmmu_file *file) {}
bool hmmu_file_writable(const struct hmmu_file *file) { return false; }
bool hmmu_file_is_shmem(const struct hmmu_file *file) { return false; }
int hmmu_filemap_get_page(struct hmmu_file *file, unsigned long index, struct hmmu_page **pagep) { return -EFAULT; }
int hmmu_file_writeback(struct hmmu_file *file, unsigned long first, unsigned long last) { return 0; }
int hmmu_msync(struct hmmu_mm *mm, unsigned long addr, size_t len, int flags) { return -EOPNOTSUPP; }
