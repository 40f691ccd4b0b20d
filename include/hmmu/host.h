/* SPDX-License-Identifier: MIT */
/*
 * Host mms (HMMU_MM_HOST): address spaces whose addresses are real
 * addresses of the calling process, so that unmodified C code loads and
 * stores through them (docs/host.md).
 *
 * A host mm owns one arena of struct hmmu_config::host_arena_size bytes;
 * hmmu_mmap() places every mapping inside it and returns a pointer the
 * program may dereference.  A load or store faults in the faulting
 * thread's SIGBUS handler (userfaultfd's SIGBUS mode), which runs
 * hmmu_handle_mm_fault() and maps the page for real: device-private pages
 * migrate back through their driver's migrate_to_ram, exactly as for
 * hmmu_access().  An access the mapping forbids raises SIGSEGV as the
 * kernel would: the program's handler if it installed one, else the
 * default action.
 *
 * What host mms do not support: shared or file mappings, hugetlb and
 * transparent huge pages, special (driver) mappings, hmmu_mremap() and
 * hmmu_fork() (-EOPNOTSUPP), and device-coherent memory.  A system call
 * that reads or writes host memory the process has not yet mapped (a
 * read(2) into a buffer whose pages live on a device) fails with EFAULT:
 * call hmmu_prefault() first.
 */
#ifndef HMMU_HOST_H
#define HMMU_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include <hmmu/page.h>

#ifdef __cplusplus
extern "C" {
#endif

struct hmmu_mm;

/**
 * hmmu_host_probe() - can this system run host mms?  Checks once (later
 * calls return the first answer): a userfaultfd (trying the system call,
 * then UFFD_USER_MODE_ONLY for unprivileged users, then /dev/userfaultfd)
 * with the SIGBUS, MINOR_SHMEM, WP_HUGETLBFS_SHMEM and WP_UNPOPULATED
 * features (Linux 6.4 or later).
 * @why: if not NULL, receives a static string saying what is missing, or
 *       "ok".
 *
 * Any context.  Returns 0, -EOPNOTSUPP (a feature is missing) or -EPERM
 * (userfaultfd is not allowed to this process).
 */
HMMU_EXPORT int hmmu_host_probe(const char **why);

/**
 * hmmu_prefault() - fault in [@addr, @addr + @len) of the host mm that
 * holds @addr, as a loop of loads (or, with @write, stores) would, without
 * touching the bytes: pages on a device come back, and each page is mapped
 * for real with at least the access asked for.  For callers about to pass
 * host memory to a system call, which would get EFAULT for a page not
 * mapped yet.  The mapping stays until the next invalidation of the page.
 *
 * Context: no hmmu lock held; takes the mm's mmap_lock for read.  Returns
 * 0, -EINVAL (@len 0 or the range wraps), -EFAULT (a byte outside every
 * host arena, or without a VMA), -EACCES (the VMA forbids the access),
 * -ENOMEM (no frame could be had within the retry timeout) or -EIO (the
 * fault failed otherwise, where a CPU access would raise SIGBUS).
 */
HMMU_EXPORT int hmmu_prefault(const void *addr, size_t len, bool write);

/**
 * hmmu_host_signals() - put hmmu's SIGBUS handler in front of the one
 * installed now, which then receives every SIGBUS that is not a host
 * fault (with its own siginfo and context).  hmmu_mm_create(HMMU_MM_HOST)
 * does this; a program (or test framework) that installs its own SIGBUS
 * handler later must call it again, or host faults reach that handler.
 *
 * Context: any thread, not a signal handler.  Returns 0 or the errno of
 * sigaction(2).
 */
HMMU_EXPORT int hmmu_host_signals(void);

/**
 * hmmu_host_arena() - the arena of the host mm @mm: *@basep and *@sizep
 * receive its first address and size.  Returns 0 or -EINVAL (@mm is not a
 * host mm, or a NULL argument).
 */
HMMU_EXPORT int hmmu_host_arena(struct hmmu_mm *mm, void **basep, size_t *sizep);

#ifdef __cplusplus
}
#endif
#endif /* HMMU_HOST_H */
