/* SPDX-License-Identifier: MIT */
/*
 * dmirror: the reference software device (the kernel's lib/test_hmm.c).
 *
 * A device (struct hmmu_dmirror_device, the kernel's "mdevice") owns fake
 * device memory, private or coherent, in chunks created on demand; its
 * pages' pagemap owner is the device itself.  A mirror (struct
 * hmmu_dmirror, one per "open") binds the device to one mm: it keeps a
 * device page table for that mm, kept coherent by an interval notifier
 * over the whole address space.  hmmu_dmirror_cmd() runs the kernel test
 * driver's ioctls with the same arguments and results.  dmirror uses the
 * public API only; docs/driver-guide.md walks through it.
 */
#ifndef HMMU_DMIRROR_H
#define HMMU_DMIRROR_H

#include <stdint.h>

#include <hmmu/memremap.h>
#include <hmmu/mm.h>

#ifdef __cplusplus
extern "C" {
#endif

struct hmmu_dmirror_device;
struct hmmu_dmirror;

/* Device configuration; zero fields take the defaults. */
struct hmmu_dmirror_device_config {
	enum hmmu_memory_type type;	/* DEVICE_PRIVATE (default) or DEVICE_COHERENT */
	unsigned long chunk_size;	/* bytes per chunk, multiple of 2 MiB; default 256 MiB */
	unsigned long max_chunks;	/* chunks the device may create; default 16 */
	/*
	 * Pages migrate_to_ram brings back per fault: 1 (default, the kernel
	 * driver) or a power of two up to 512; the window is aligned, clamped
	 * to the VMA, and takes only this device's pages.
	 */
	unsigned long fault_around_pages;
	/*
	 * Device memory capacity in pages; 0 (default): unlimited (the chunks
	 * bound it).  No allocation makes more pages in use than this: the
	 * migrations of the commands and direct calls leave what does not fit
	 * in system memory; hmmu_dmirror_exec() evicts the least recently used
	 * pages to make room.
	 */
	unsigned long capacity_pages;
};

/**
 * hmmu_dmirror_device_create() - a new device with one chunk of memory
 * (more chunks are created on demand, up to max_chunks).  Each chunk is one
 * pagemap of chunk_size bytes whose owner is the device; a private chunk
 * takes no system memory until its pages are used (each allocated private
 * page has a backing system page holding its data).
 * Returns 0, -EINVAL (NULL @devp, bad config: unknown type, chunk_size not
 * a multiple of 2 MiB, fault_around_pages not a power of two <= 512; library
 * not initialised) or -ENOMEM (also: no node slot left for the chunk).
 */
HMMU_EXPORT int hmmu_dmirror_device_create(const struct hmmu_dmirror_device_config *cfg,
					   struct hmmu_dmirror_device **devp);
/**
 * hmmu_dmirror_device_destroy() - evict every page of the device back to
 * system memory (waiting for pages busy at the moment, as
 * hmmu_memunmap_pages() would: a page pinned forever keeps it waiting),
 * remove its memory and free it.  Must not race with hmmu_dmirror_open() on
 * the device.  Returns 0, -EBUSY (a mirror is still open or closing;
 * nothing done) or -EINVAL (NULL).
 */
HMMU_EXPORT int hmmu_dmirror_device_destroy(struct hmmu_dmirror_device *mdevice);

/** The pagemap owner of the device's pages (the device itself). */
HMMU_EXPORT void *hmmu_dmirror_device_owner(struct hmmu_dmirror_device *mdevice);

/*
 * Device counters (the kernel driver's calloc/cfree, and more).  As in the
 * kernel driver, a page freed while its chunk is being removed (RELEASE,
 * destroy) is not counted in cfree: after a RELEASE calloc and cfree
 * differ by the pages the RELEASE evicted; pages_in_use is exact.
 */
struct hmmu_dmirror_device_stats {
	unsigned long calloc;		/* device pages allocated */
	unsigned long cfree;		/* device pages returned to the free list by page_free */
	unsigned long chunks;		/* chunks present */
	unsigned long pages_in_use;	/* allocated and not yet freed */
	unsigned long migrate_to_ram;	/* migrate_to_ram calls that got past setup */
	unsigned long evicted;		/* pages moved back by eviction (close, RELEASE, destroy) */
	unsigned long alloc_failures;	/* allocations failed by the knob below */
	unsigned long pages_high_water;	/* most pages in use at once since creation */
	/* Device execution (hmmu_dmirror_exec), over every mirror of the device: */
	unsigned long exec_faults;	/* device faults (a miss of a device load or store) */
	unsigned long exec_migrated;	/* pages those faults migrated to the device */
	unsigned long exec_remote;	/* faults served by mapping system memory remotely */
	unsigned long lru_evicted;	/* pages evicted (least recently used) to make room */
};
/** hmmu_dmirror_device_get_stats() - a snapshot of the counters.  0 or -EINVAL. */
HMMU_EXPORT int hmmu_dmirror_device_get_stats(struct hmmu_dmirror_device *mdevice,
					      struct hmmu_dmirror_device_stats *stats);

/*
 * Allocation-failure knob: which allocations to fail.  A page whose device
 * allocation fails stays in system memory; a page whose system allocation
 * fails stays on the device, intact and still mapped by the device
 * (MIGRATE_TO_SYS skips it; migrate_to_ram returns 0 and the CPU access
 * retries, so a CPU access with the knob at -1 never completes).
 * Eviction (close, RELEASE, destroy) ignores the knob: it must get every
 * page back.
 */
enum hmmu_dmirror_fail_kind {
	HMMU_DMIRROR_FAIL_DEVICE_ALLOC,	/* device pages (migration to the device) */
	HMMU_DMIRROR_FAIL_SYSTEM_ALLOC,	/* system pages (MIGRATE_TO_SYS, migrate_to_ram) */
};
/**
 * hmmu_dmirror_device_fail_allocs() - make the next @count allocations of
 * @kind fail (-1: all of them until reset; 0: reset).  0 or -EINVAL (NULL
 * device, unknown kind, @count < -1).
 */
HMMU_EXPORT int hmmu_dmirror_device_fail_allocs(struct hmmu_dmirror_device *mdevice,
						enum hmmu_dmirror_fail_kind kind, long count);

/**
 * hmmu_dmirror_open() - bind @mdevice to @mm: a new mirror with an empty
 * device page table and an interval notifier over the whole of @mm (which
 * keeps the mm structure, not its address space, alive).  Several mirrors
 * may share a device and an mm.  Returns 0, -EINVAL (NULL argument, @mm
 * without users) or -ENOMEM.
 */
HMMU_EXPORT int hmmu_dmirror_open(struct hmmu_dmirror_device *mdevice, struct hmmu_mm *mm,
				  struct hmmu_dmirror **mirrorp);
/**
 * hmmu_dmirror_close() - remove the notifier, then evict every page of
 * the device (all mirrors' pages, as the kernel driver does; chunks stay)
 * and free the mirror.  Pages busy at the moment are retried until
 * hmmu_retry_timeout_ms() has passed; what is still busy then (pages other
 * mirrors keep creating, a pinned coherent page) stays on the device.
 * Not from a callback.  Returns 0 or -EINVAL.
 */
HMMU_EXPORT int hmmu_dmirror_close(struct hmmu_dmirror *mirror);

/* hmmu_dmirror_cmd(): the kernel's struct hmm_dmirror_cmd. */
struct hmmu_dmirror_cmd {
	uint64_t addr;		/* page-aligned address in the mirrored mm */
	uint64_t ptr;		/* the caller's buffer (a pointer in this process) */
	uint64_t npages;
	uint64_t cpages;	/* out: pages processed */
	uint64_t faults;	/* out: device fault rounds */
};

/* Commands (the ioctl numbers). */
enum hmmu_dmirror_cmd_nr {
	HMMU_DMIRROR_READ = 0,
	HMMU_DMIRROR_WRITE = 1,
	HMMU_DMIRROR_MIGRATE_TO_DEV = 2,
	HMMU_DMIRROR_MIGRATE_TO_SYS = 3,
	HMMU_DMIRROR_SNAPSHOT = 4,
	HMMU_DMIRROR_EXCLUSIVE = 5,
	HMMU_DMIRROR_CHECK_EXCLUSIVE = 6,
	HMMU_DMIRROR_RELEASE = 7,
};

/* SNAPSHOT bytes. */
enum {
	HMMU_DMIRROR_PROT_ERROR = 0xFF,
	HMMU_DMIRROR_PROT_NONE = 0x00,
	HMMU_DMIRROR_PROT_READ = 0x01,
	HMMU_DMIRROR_PROT_WRITE = 0x02,
	HMMU_DMIRROR_PROT_PMD = 0x04,
	HMMU_DMIRROR_PROT_PUD = 0x08,
	HMMU_DMIRROR_PROT_ZERO = 0x10,
	HMMU_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20,
	HMMU_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30,
	HMMU_DMIRROR_PROT_DEV_COHERENT_LOCAL = 0x40,
	HMMU_DMIRROR_PROT_DEV_COHERENT_REMOTE = 0x50,
};

/**
 * hmmu_dmirror_cmd() - run command @nr on @mirror (the kernel driver's
 * ioctl, spec section 5.6).  The argument is checked first (-EINVAL: NULL,
 * addr not page aligned, npages 0 or wrapping); cpages and faults are
 * written back only on success.  cmd->ptr NULL is the ioctl's failed user
 * copy (-EFAULT, where the kernel driver would copy).  Returns 0 or the
 * command's negative errno:
 * -EFAULT (a page cannot be faulted, or the mm is gone for READ/WRITE; a
 * device write to a page the CPU maps read-only, e.g. an own device page
 * after fork or mprotect), -EPERM (write to a read-only VMA;
 * CHECK_EXCLUSIVE finding an atomic entry), -EINVAL (unknown command; the
 * mm gone for the migrations, SNAPSHOT and EXCLUSIVE; a migration over an
 * unreadable or unmapped range), -ENOENT (the MIGRATE_TO_DEV or EXCLUSIVE
 * read-back finds a page missing from the device), -EBUSY (retry bound
 * passed; EXCLUSIVE could not take every page), -ENOMEM.
 */
HMMU_EXPORT int hmmu_dmirror_cmd(struct hmmu_dmirror *mirror, unsigned int nr, struct hmmu_dmirror_cmd *cmd);

/**
 * hmmu_dmirror_mmap() - map @len bytes of the device (the kernel driver's
 * mmap): a MIXEDMAP mapping whose every page is a fresh zeroed system page
 * inserted with hmmu_vm_insert_page().  @prot, @flags as hmmu_mmap_special().
 * Returns the address or a negative errno.
 */
HMMU_EXPORT long hmmu_dmirror_mmap(struct hmmu_dmirror *mirror, unsigned long addr, size_t len, int prot,
				   int flags);

/*
 * Direct calls (no bounce buffer, no read-back), for benchmarks and the
 * device compute engine.  Same locking as the commands: none held.
 */
/**
 * hmmu_dmirror_read() - the device reads @npages pages at @addr into @buf
 * through its page table, faulting missing entries in (one copy per page;
 * reads of 4 MiB or more use streaming stores).  @buf is plain process
 * memory, not memory of a host mm (it is written under the mirror's lock).
 * *@faults (if not NULL) counts fault rounds.  Returns 0, -EINVAL (NULL
 * mirror or @buf, unaligned @addr, @npages 0 or wrapping) or READ's errors.
 */
HMMU_EXPORT int hmmu_dmirror_read(struct hmmu_dmirror *mirror, unsigned long addr, void *buf,
				  unsigned long npages, unsigned long *faults);
/**
 * hmmu_dmirror_migrate_to_device() / _to_system() - migrate @npages pages
 * at @addr in batches of up to @batch pages (0: 64; a batch never crosses a
 * VMA end).  Returns the number of pages migrated (pages already where they
 * should be are not counted), or -EINVAL (bad arguments, the mm gone, a
 * missing or unreadable VMA: the batches before it stay migrated), -ENOMEM.
 */
HMMU_EXPORT long hmmu_dmirror_migrate_to_device(struct hmmu_dmirror *mirror, unsigned long addr,
						unsigned long npages, unsigned long batch);
HMMU_EXPORT long hmmu_dmirror_migrate_to_system(struct hmmu_dmirror *mirror, unsigned long addr,
						unsigned long npages, unsigned long batch);

/*
 * Device execution: the device runs a function (a "kernel") on worker
 * threads over device virtual addresses of the mirrored mm.  Its loads and
 * stores (hmmu_dmirror_dev_load/_store) translate through the mirror's
 * device page table.  A miss (no entry, or a store through a read-only
 * entry) is a device fault, handled by the policy:
 *
 *   MIGRATE  migrate_vma the aligned window of `batch` pages around the
 *            fault (clamped to its VMA) into device memory and map it;
 *            pages that cannot move (busy, a shared file page, no room)
 *            are mapped remotely instead
 *   REMOTE   hmm_range_fault the window and map the system pages (and
 *            device pages already there) as they are
 *
 * Under a capacity (capacity_pages of the device config) a MIGRATE fault
 * first reserves room for its window; what is missing is made by evicting
 * the least recently used device pages back to system memory
 * (migrate_device_range), never while the fault holds a migration.  With
 * no room at all (every page busy), the fault maps remotely.  LRU: each
 * device page carries the device's fault count at its last use (its
 * allocation, or a device load or store: one relaxed load and, when it
 * changed, a store); eviction takes the pages of the oldest age classes
 * (log2 of the age), equally old pages round robin.
 */
enum hmmu_dmirror_policy {
	HMMU_DMIRROR_POLICY_MIGRATE = 0,	/* the default */
	HMMU_DMIRROR_POLICY_REMOTE = 1,
};

/* Execution options; zero fields take the defaults. */
struct hmmu_dmirror_exec_config {
	enum hmmu_dmirror_policy policy;
	unsigned int nthreads;		/* worker threads, 1..64; default 2 */
	unsigned long batch;		/* fault window in pages, power of two <= 512; default 64 */
	unsigned long unit;		/* pages per kernel call; default `batch` */
};

/* A worker's context, passed to the kernel and to the accessors. */
struct hmmu_dmirror_ctx;

/*
 * A kernel: process the @npages pages at @addr (one unit of the range,
 * page aligned) for @arg, through hmmu_dmirror_dev_load/_store on @ctx.
 * Called from the worker threads, concurrently for different units.
 * Returns 0 or a negative errno (normally an accessor's), recorded by
 * hmmu_dmirror_exec(); the other units still run.
 */
typedef int (*hmmu_dmirror_kernel_t)(struct hmmu_dmirror_ctx *ctx, unsigned long addr, unsigned long npages,
				     void *arg);

/**
 * hmmu_dmirror_exec() - run @fn over [@start, @start + @npages pages) of
 * @mirror's mm on the device: the range is cut into units of cfg->unit
 * pages, handed out in address order to cfg->nthreads workers (the
 * calling thread is one of them; a thread that cannot be created leaves
 * the work to the others).  @cfg NULL: defaults.  Returns when every unit
 * ran: 0, -EINVAL (NULL @mirror or @fn, unaligned @start, @npages 0 or
 * wrapping, bad @cfg), or the error of the failed unit with the lowest
 * address.  Context: no hmmu lock held; not from a callback; the kernel
 * must not take locks an invalidation of the mm waits for.
 */
HMMU_EXPORT int hmmu_dmirror_exec(struct hmmu_dmirror *mirror, const struct hmmu_dmirror_exec_config *cfg,
				  hmmu_dmirror_kernel_t fn, void *arg, unsigned long start, unsigned long npages);

/**
 * hmmu_dmirror_dev_load() / _store() - the device loads @len bytes at
 * device virtual address @addr into @buf, or stores them from @buf,
 * faulting as the policy says on a miss (and again if the page goes away
 * meanwhile: eviction, invalidation).  Any alignment and length; each
 * page's part is copied under the mirror's lock, atomically with respect
 * to invalidations (not across pages).  @buf is the worker's own memory
 * ("registers"), not memory of a host mm.  Only from the kernel running on
 * @ctx.  Returns 0, -EINVAL (NULL @ctx or @buf, range wrapping), -EFAULT
 * (no VMA: e.g. the CPU unmapped it; the mm is gone; a store to a page
 * mapped read-only, as the WRITE command: under MIGRATE, any store to a
 * read-only VMA), -EPERM (REMOTE: a store to a read-only VMA), -EBUSY (the
 * page kept going away for hmmu_retry_timeout_ms()) or -ENOMEM.  Pages
 * before the failing one were accessed.
 */
HMMU_EXPORT int hmmu_dmirror_dev_load(struct hmmu_dmirror_ctx *ctx, unsigned long addr, void *buf, size_t len);
HMMU_EXPORT int hmmu_dmirror_dev_store(struct hmmu_dmirror_ctx *ctx, unsigned long addr, const void *buf,
				       size_t len);

/** hmmu_dmirror_ctx_worker() - the worker index (0..nthreads-1) running @ctx. */
HMMU_EXPORT unsigned int hmmu_dmirror_ctx_worker(const struct hmmu_dmirror_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif /* HMMU_DMIRROR_H */
