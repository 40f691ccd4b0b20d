// SPDX-License-Identifier: MIT
/*
 * Device execution (include/hmmu/dmirror.h): worker threads run a kernel
 * over device virtual addresses; its loads and stores translate through
 * the mirror's device page table, under the mirror mutex (so an
 * invalidation, hence an eviction or a CPU fault taking the page home,
 * waits for an access in progress, and an access after it misses).
 *
 *   dmirror_exec_access   one page's part of a load or store: look the
 *                         entry up, copy, stamp the page used; on a
 *                         miss, dmirror_exec_fault and look again
 *   dmirror_exec_fault    the device fault: the policy's handler
 *   dmirror_exec_migrate  MIGRATE: count the pages of the window not yet
 *                         local, reserve that much capacity (evicting the
 *                         LRU pages for what is missing, with no lock and
 *                         no migration held), migrate the window within
 *                         the reservation (shrunk to start at the fault
 *                         when it is short), give the reservation back
 *   dmirror_exec_remote   REMOTE (and MIGRATE's fallback): hmm_range_fault
 *                         and map what the CPU maps
 *
 * Races: a page evicted or taken home while a worker uses it loses its
 * entry under the mutex before its data is copied away; the worker's next
 * lookup misses and faults again, so no access sees stale data.  Capacity
 * is reserved before any device page is allocated (hmmu_dmirror_reserve):
 * concurrent faults never exceed it.
 */
#include <stdlib.h>
#include <string.h>

#include "dmirror_priv.h"

#define DMIRROR_EXEC_MAX_THREADS 64U
#define DMIRROR_EXEC_THREADS 2U

/*
 * One hmmu_dmirror_exec() call, shared by its workers.  Fixed after
 * start but for `next` (atomic) and err / err_addr (under `lock`).
 */
struct dmirror_exec {
	struct hmmu_dmirror *mirror;
	hmmu_dmirror_kernel_t fn;
	void *arg;
	enum hmmu_dmirror_policy policy;
	unsigned int nthreads;
	unsigned long batch, unit, start, npages, nunits;
	atomic_ulong next;		/* next unit to hand out */
	pthread_mutex_t lock;
	int err;			/* error of the failed unit at err_addr */
	unsigned long err_addr;
};

struct hmmu_dmirror_ctx {
	struct dmirror_exec *exec;
	unsigned int worker;
	pthread_t thread;
};

/* ------------------------------------------------------------------ */
/* Device faults                                                       */
/* ------------------------------------------------------------------ */

/* The aligned window of @pages pages (a power of two) around @addr, clamped to @vma. */
static void dmirror_exec_window(const struct hmmu_vma *vma, unsigned long addr, unsigned long pages,
				unsigned long *start, unsigned long *end)
{
	unsigned long len = pages * DMIRROR_PAGE;

	*start = addr & ~(len - 1);
	*end = *start + len;
	*start = *start < vma->vm_start ? vma->vm_start : *start;
	*end = *end > vma->vm_end ? vma->vm_end : *end;
}

/*
 * Copy @len bytes at @addr (within one page) between the device's view
 * and @buf, if the page has a suitable entry.  Takes the mirror mutex.
 * Returns whether it had one.
 */
static bool dmirror_exec_copy(struct hmmu_dmirror *mirror, unsigned long addr, char *buf, size_t len, bool write)
{
	char *p;

	pthread_mutex_lock(&mirror->mutex);
	p = hmmu_dmirror_entry_access(hmmu_dmirror_pt_lookup(&mirror->pt, addr >> HMMU_PAGE_SHIFT), write);
	if (p && len && write)
		memcpy(p + (addr & ~HMMU_PAGE_MASK), buf, len);
	else if (p && len)
		memcpy(buf, p + (addr & ~HMMU_PAGE_MASK), len);
	pthread_mutex_unlock(&mirror->mutex);
	return p != NULL;
}

/* Pages of [start, end) without a LOCAL entry: what a migration may need room for.  Takes the mutex. */
static unsigned long dmirror_exec_missing(struct hmmu_dmirror *mirror, unsigned long start, unsigned long end)
{
	unsigned long n = 0;

	pthread_mutex_lock(&mirror->mutex);
	for (unsigned long vpn = start >> HMMU_PAGE_SHIFT; vpn < end >> HMMU_PAGE_SHIFT; vpn++)
		n += !dmirror_entry_local(hmmu_dmirror_pt_lookup(&mirror->pt, vpn));
	pthread_mutex_unlock(&mirror->mutex);
	return n;
}

/*
 * Reserve room for @need pages, evicting least recently used pages for
 * what the capacity lacks.  Context: no lock held, no migration in
 * progress.  Returns the pages reserved.
 */
static unsigned long dmirror_exec_reserve(struct hmmu_dmirror_device *mdevice, unsigned long need)
{
	unsigned long got = hmmu_dmirror_reserve(mdevice, need);

	if (got < need) {
		hmmu_dmirror_evict_lru(mdevice, need - got);
		got += hmmu_dmirror_reserve(mdevice, need - got);
	}
	return got;
}

/*
 * Migrate [start, end) (shrunk to the VMA at @addr, which it contains) to
 * the device with at most @budget new pages.  Context: holds a user
 * reference on the mm, no lock.  Returns the pages committed, -EFAULT (no
 * VMA at @addr) or setup's error.
 */
static long dmirror_exec_migrate_window(struct hmmu_dmirror *mirror, unsigned long addr, unsigned long start,
					unsigned long end, unsigned long budget)
{
	unsigned long src[DMIRROR_MAX_FAULT_AROUND], dst[DMIRROR_MAX_FAULT_AROUND];
	struct hmmu_mm *mm = dmirror_mm(mirror);
	struct hmmu_vma *vma;
	long ret = -EFAULT;

	hmmu_mmap_read_lock(mm);
	vma = hmmu_vma_lookup(mm, addr);
	if (vma) {
		start = start < vma->vm_start ? vma->vm_start : start;
		end = end > vma->vm_end ? vma->vm_end : end;
		ret = hmmu_dmirror_step_to_device(mirror, vma, start, end, src, dst, &budget);
	}
	hmmu_mmap_read_unlock(mm);
	return ret;
}

/*
 * MIGRATE: bring the window around page @addr to the device, within the
 * capacity.  Context: holds a user reference on the mm, no lock.  Returns
 * 0 (whether or not the page moved) or -EFAULT (no VMA at @addr).
 */
static int dmirror_exec_migrate(struct dmirror_exec *x, unsigned long addr)
{
	struct hmmu_dmirror *mirror = x->mirror;
	struct hmmu_mm *mm = dmirror_mm(mirror);
	unsigned long start, end, need, got;
	struct hmmu_vma *vma;
	long ret;

	hmmu_mmap_read_lock(mm);
	vma = hmmu_vma_lookup(mm, addr);
	if (vma)
		dmirror_exec_window(vma, addr, x->batch, &start, &end);
	hmmu_mmap_read_unlock(mm);
	if (!vma)
		return -EFAULT;
	need = dmirror_exec_missing(mirror, start, end);
	got = need ? dmirror_exec_reserve(mirror->mdevice, need) : 0;
	if (!got)
		return 0;
	if (got < need) {
		start = addr;
		end = end - addr > got * DMIRROR_PAGE ? addr + got * DMIRROR_PAGE : end;
	}
	ret = dmirror_exec_migrate_window(mirror, addr, start, end, got);
	hmmu_dmirror_unreserve(mirror->mdevice, got);
	if (ret > 0)
		dmirror_stat_add(mirror->mdevice, exec_migrated, (unsigned long)ret);
	return ret == -EFAULT ? -EFAULT : 0;
}

/*
 * REMOTE: fault in the window of @pages pages around page @addr (clamped
 * to its VMA) with hmm_range_fault and map what the CPU maps; if the
 * window fails, the page alone.  Context: holds a user reference on the
 * mm, no lock.  Returns 0 or hmmu_dmirror_fault()'s error for the page.
 */
static int dmirror_exec_remote(struct dmirror_exec *x, unsigned long addr, bool write, unsigned long pages)
{
	struct hmmu_mm *mm = dmirror_mm(x->mirror);
	unsigned long start = addr, end = addr + DMIRROR_PAGE;
	struct hmmu_vma *vma;
	int ret;

	dmirror_stat_add(x->mirror->mdevice, exec_remote, 1);
	if (pages > 1) {
		hmmu_mmap_read_lock(mm);
		vma = hmmu_vma_lookup(mm, addr);
		if (vma)
			dmirror_exec_window(vma, addr, pages, &start, &end);
		hmmu_mmap_read_unlock(mm);
	}
	ret = hmmu_dmirror_fault(x->mirror, start, end, write);
	if (ret && end - start > DMIRROR_PAGE)
		ret = hmmu_dmirror_fault(x->mirror, addr, addr + DMIRROR_PAGE, write);
	return ret;
}

/*
 * The device fault: page @addr has no entry fit for the access (@write: a
 * store).  MIGRATE migrates its window, then maps the page remotely if it
 * did not move; REMOTE maps the window remotely.  Context: no lock held
 * (takes the mmap_lock for read, evicts).  Returns 0 (the access may be
 * retried; it can still miss if the page went away meanwhile), -EFAULT
 * (no VMA, the mm gone, a store to a read-only page) or the errors of
 * hmmu_dmirror_fault().
 */
static int dmirror_exec_fault(struct dmirror_exec *x, unsigned long addr, bool write)
{
	struct hmmu_mm *mm = dmirror_mm(x->mirror);
	int ret = 0;

	dmirror_stat_add(x->mirror->mdevice, exec_faults, 1);
	atomic_fetch_add_explicit(&x->mirror->mdevice->lru_clock, 1, memory_order_relaxed);
	if (!hmmu_mmget_not_zero(mm))
		return -EFAULT;
	hmmu_trace_begin(HMMU_TRACE_DEVICE_FAULT, addr, addr + DMIRROR_PAGE, 1);
	if (x->policy == HMMU_DMIRROR_POLICY_MIGRATE)
		ret = dmirror_exec_migrate(x, addr);
	if (!ret && (x->policy == HMMU_DMIRROR_POLICY_REMOTE || !dmirror_exec_copy(x->mirror, addr, NULL, 0, write)))
		ret = dmirror_exec_remote(x, addr, write, x->policy == HMMU_DMIRROR_POLICY_REMOTE ? x->batch : 1);
	hmmu_trace_end(HMMU_TRACE_DEVICE_FAULT, addr, addr + DMIRROR_PAGE, !ret);
	hmmu_mmput(mm);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Loads and stores                                                    */
/* ------------------------------------------------------------------ */

/*
 * One page's part of an access: copy, faulting on a miss until the copy
 * succeeds or hmmu_retry_timeout_ms() passes.  Returns 0, -EBUSY or the
 * fault's error.
 */
static int dmirror_exec_access_page(struct dmirror_exec *x, unsigned long addr, char *buf, size_t len, bool write)
{
	uint64_t deadline = 0;
	int ret;

	while (!dmirror_exec_copy(x->mirror, addr, buf, len, write)) {
		if (!deadline)
			deadline = hmmu_dmirror_now_ms() + hmmu_retry_timeout_ms();
		else if (hmmu_dmirror_now_ms() > deadline)
			return -EBUSY;
		ret = dmirror_exec_fault(x, addr & HMMU_PAGE_MASK, write);
		if (ret)
			return ret;
	}
	return 0;
}

/* A load or store of [addr, addr + len), page by page.  Errors: see hmmu_dmirror_dev_load(). */
static int dmirror_exec_access(struct hmmu_dmirror_ctx *ctx, unsigned long addr, char *buf, size_t len,
			       bool write)
{
	if (!ctx || !buf || addr + len < addr)
		return -EINVAL;
	while (len) {
		size_t n = DMIRROR_PAGE - (addr & ~HMMU_PAGE_MASK);
		int ret;

		n = n < len ? n : len;
		ret = dmirror_exec_access_page(ctx->exec, addr, buf, n, write);
		if (ret)
			return ret;
		addr += n;
		buf += n;
		len -= n;
	}
	return 0;
}

int hmmu_dmirror_dev_load(struct hmmu_dmirror_ctx *ctx, unsigned long addr, void *buf, size_t len)
{
	return dmirror_exec_access(ctx, addr, buf, len, false);
}

int hmmu_dmirror_dev_store(struct hmmu_dmirror_ctx *ctx, unsigned long addr, const void *buf, size_t len)
{
	return dmirror_exec_access(ctx, addr, (char *)buf, len, true);
}

unsigned int hmmu_dmirror_ctx_worker(const struct hmmu_dmirror_ctx *ctx)
{
	return ctx ? ctx->worker : 0;
}

/* ------------------------------------------------------------------ */
/* Workers                                                             */
/* ------------------------------------------------------------------ */

/* Record unit @addr's error @err if it is the lowest failed address so far. */
static void dmirror_exec_fail(struct dmirror_exec *x, unsigned long addr, int err)
{
	pthread_mutex_lock(&x->lock);
	if (!x->err || addr < x->err_addr) {
		x->err = err;
		x->err_addr = addr;
	}
	pthread_mutex_unlock(&x->lock);
}

/* A worker: run units in address order until none is left. */
static void *dmirror_exec_worker(void *arg)
{
	struct hmmu_dmirror_ctx *ctx = arg;
	struct dmirror_exec *x = ctx->exec;
	unsigned long u;

	while ((u = atomic_fetch_add(&x->next, 1)) < x->nunits) {
		unsigned long first = u * x->unit, addr = x->start + first * DMIRROR_PAGE;
		int ret = x->fn(ctx, addr, x->npages - first < x->unit ? x->npages - first : x->unit, x->arg);

		if (ret < 0)
			dmirror_exec_fail(x, addr, ret);
	}
	return NULL;
}

/* Apply the defaults of @cfg to @x and check them.  0 or -EINVAL. */
static int dmirror_exec_config(const struct hmmu_dmirror_exec_config *cfg, struct dmirror_exec *x)
{
	x->policy = cfg ? cfg->policy : HMMU_DMIRROR_POLICY_MIGRATE;
	x->nthreads = cfg && cfg->nthreads ? cfg->nthreads : DMIRROR_EXEC_THREADS;
	x->batch = cfg && cfg->batch ? cfg->batch : DMIRROR_BATCH;
	x->unit = cfg && cfg->unit ? cfg->unit : x->batch;
	if (x->policy != HMMU_DMIRROR_POLICY_MIGRATE && x->policy != HMMU_DMIRROR_POLICY_REMOTE)
		return -EINVAL;
	if (x->nthreads > DMIRROR_EXEC_MAX_THREADS || x->batch > DMIRROR_MAX_FAULT_AROUND ||
	    (x->batch & (x->batch - 1)))
		return -EINVAL;
	return 0;
}

/*
 * Run @fn over the range on the device (see include/hmmu/dmirror.h).
 * Context: no hmmu lock held.  Returns 0, -EINVAL, or the error of the
 * failed unit with the lowest address.
 */
int hmmu_dmirror_exec(struct hmmu_dmirror *mirror, const struct hmmu_dmirror_exec_config *cfg,
		      hmmu_dmirror_kernel_t fn, void *arg, unsigned long start, unsigned long npages)
{
	struct dmirror_exec x = { .mirror = mirror, .fn = fn, .arg = arg, .start = start, .npages = npages };
	struct hmmu_dmirror_ctx ctx[DMIRROR_EXEC_MAX_THREADS];
	unsigned int started = 1;

	if (!mirror || !fn || hmmu_dmirror_range_check(start, npages) || dmirror_exec_config(cfg, &x))
		return -EINVAL;
	x.nunits = (npages + x.unit - 1) / x.unit;
	pthread_mutex_init(&x.lock, NULL);
	for (unsigned int i = 0; i < x.nthreads; i++)
		ctx[i] = (struct hmmu_dmirror_ctx){ .exec = &x, .worker = i };
	while (started < x.nthreads && !pthread_create(&ctx[started].thread, NULL, dmirror_exec_worker, &ctx[started]))
		started++;
	dmirror_exec_worker(&ctx[0]);
	for (unsigned int i = 1; i < started; i++)
		pthread_join(ctx[i].thread, NULL);
	pthread_mutex_destroy(&x.lock);
	return x.err;
}
