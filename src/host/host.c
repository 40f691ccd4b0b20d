// SPDX-License-Identifier: MIT
/*
 * Host mms (DESIGN.md component 6, docs/host.md): creation and release,
 * the frame behind each address, placement of mappings, and the
 * invalidation side of the real mapping (the secondary MMU the program's
 * own loads and stores go through).  The fault side is fault.c.
 *
 * One memfd per host mm.  The arena is one MAP_SHARED mapping of it at
 * the mm's addresses, registered with userfaultfd; the library reaches the
 * same pages through a second mapping, the direct map, which is the base
 * of the host node: frame i of the node is memfd page i, the only frame
 * that can ever sit behind base + i pages.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

/* ------------------------------------------------------------------ */
/* The table the signal handler searches                               */
/* ------------------------------------------------------------------ */

/* Serialises slot choice; slots are published with release stores. */
static pthread_mutex_t hmmu_hosts_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct hmmu_host *) hmmu_hosts[HMMU_MAX_HOSTS];

struct hmmu_host *hmmu_host_lookup(unsigned long addr)
{
	for (int i = 0; i < HMMU_MAX_HOSTS; i++) {
		/* Pairs with the release store in hmmu_host_publish(). */
		struct hmmu_host *host = atomic_load_explicit(&hmmu_hosts[i], memory_order_acquire);

		if (host && hmmu_host_covers(host, addr))
			return host;
	}
	return NULL;
}

/*
 * A child of fork(2) has no arena (MADV_DONTFORK) and no host mm: its
 * copy of the table must not send its faults to the parent's.
 */
static void hmmu_host_atfork_child(void)
{
	for (int i = 0; i < HMMU_MAX_HOSTS; i++)
		atomic_store_explicit(&hmmu_hosts[i], NULL, memory_order_relaxed);
}

static void hmmu_host_atfork_register(void)
{
	pthread_atfork(NULL, NULL, hmmu_host_atfork_child);
}

bool hmmu_host_overlaps(unsigned long start, size_t len)
{
	for (int i = 0; i < HMMU_MAX_HOSTS; i++) {
		/* Pairs with the release store in hmmu_host_publish(). */
		struct hmmu_host *host = atomic_load_explicit(&hmmu_hosts[i], memory_order_acquire);

		if (host && start < host->base + host->size && start + len > host->base)
			return true;
	}
	return false;
}

/* Give @host a slot; 0 or -ENOSPC. */
static int hmmu_host_publish(struct hmmu_host *host)
{
	static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
	int ret = -ENOSPC;

	pthread_once(&atfork_once, hmmu_host_atfork_register);
	pthread_mutex_lock(&hmmu_hosts_lock);
	for (int i = 0; i < HMMU_MAX_HOSTS && ret; i++) {
		if (atomic_load_explicit(&hmmu_hosts[i], memory_order_relaxed))
			continue;
		host->slot = i;
		atomic_store_explicit(&hmmu_hosts[i], host, memory_order_release);
		ret = 0;
	}
	pthread_mutex_unlock(&hmmu_hosts_lock);
	return ret;
}

static void hmmu_host_unpublish(struct hmmu_host *host)
{
	pthread_mutex_lock(&hmmu_hosts_lock);
	atomic_store_explicit(&hmmu_hosts[host->slot], NULL, memory_order_release);
	pthread_mutex_unlock(&hmmu_hosts_lock);
}

/* ------------------------------------------------------------------ */
/* Creation and release                                                */
/* ------------------------------------------------------------------ */

static const struct hmmu_interval_notifier_ops hmmu_host_notifier_ops;

/* Map the memfd once more; NULL (errno set) on failure.  Children of fork(2) get neither mapping. */
static void *hmmu_host_map(struct hmmu_host *host)
{
	void *p = mmap(NULL, host->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, host->memfd, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, host->size, MADV_DONTFORK);
	return p;
}

/* The memfd, the two mappings and the userfaultfd registration of the arena.  0 or -errno. */
static int hmmu_host_map_arena(struct hmmu_host *host)
{
	struct uffdio_register reg = {
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_WP,
	};
	void *arena;

	host->memfd = memfd_create("hmmu-host", MFD_CLOEXEC);
	if (host->memfd < 0 || ftruncate(host->memfd, (off_t)host->size))
		return -errno;
	arena = hmmu_host_map(host);
	if (!arena)
		return -errno;
	host->base = (unsigned long)arena;
	host->dmap = hmmu_host_map(host);
	if (!host->dmap)
		return -errno;
	host->uffd = hmmu_host_uffd_open();
	if (host->uffd < 0)
		return host->uffd;
	reg.range.start = host->base;
	reg.range.len = host->size;
	return ioctl(host->uffd, UFFDIO_REGISTER, &reg) ? -errno : 0;
}

/* Undo whatever of creation happened (fields are 0 / -1 where it did not). */
static void hmmu_host_free(struct hmmu_host *host)
{
	if (host->uffd >= 0)
		close(host->uffd);
	if (host->base)
		munmap((void *)host->base, host->size);
	if (host->dmap)
		munmap(host->dmap, host->size);
	if (host->memfd >= 0)
		close(host->memfd);
	for (int i = 0; i < HMMU_HOST_STRIPES; i++)
		pthread_mutex_destroy(&host->stripe[i].lock);
	free((void *)host->frame);
	free(host);
}

/* Everything but the mm's side (slot, notifier).  0 or -errno. */
static int hmmu_host_build(struct hmmu_host *host)
{
	unsigned long nr = host->size >> HMMU_PAGE_SHIFT;
	int err = hmmu_host_map_arena(host);

	if (err)
		return err;
	host->frame = calloc(nr, sizeof(*host->frame));
	if (!host->frame)
		return -ENOMEM;
	host->nid = hmmu_node_create_host(nr, host->dmap, host);
	if (host->nid < 0)
		return host->nid;
	host->node = hmmu_node_get(host->nid);
	return hmmu_host_signals();
}

int hmmu_host_create(struct hmmu_mm *mm)
{
	/* Aligned for its stripes (a cache line each). */
	struct hmmu_host *host = aligned_alloc(_Alignof(struct hmmu_host), sizeof(*host));
	int err;

	if (!host)
		return -ENOMEM;
	memset(host, 0, sizeof(*host));
	host->mm = mm;
	host->size = hmmu_host_arena_size();
	host->memfd = host->uffd = host->nid = -1;
	for (int i = 0; i < HMMU_HOST_STRIPES; i++)
		pthread_mutex_init(&host->stripe[i].lock, NULL);
	err = hmmu_host_build(host);
	if (!err)
		err = hmmu_host_publish(host);
	if (err) {
		if (host->nid >= 0)
			hmmu_node_destroy(host->nid);
		hmmu_host_free(host);
		return err;
	}
	mm->host = host;
	err = hmmu_interval_notifier_insert(&host->notifier, mm, host->base, host->size, &hmmu_host_notifier_ops);
	if (err) {
		mm->host = NULL;
		hmmu_host_unpublish(host);
		hmmu_node_destroy(host->nid);
		hmmu_host_free(host);
	}
	return err;
}

/*
 * After the last user's teardown (every entry zapped).  A frame still
 * referenced (a GUP reference not dropped yet) keeps the node and the
 * direct map alive for good: leaked, with a warning, rather than freed
 * under its holder.
 */
void hmmu_host_release(struct hmmu_mm *mm)
{
	struct hmmu_host *host = mm->host;

	hmmu_interval_notifier_remove(&host->notifier);
	hmmu_host_unpublish(host);
	mm->host = NULL;
	if (hmmu_node_destroy(host->nid)) {
		fprintf(stderr, "hmmu: host mm released with frames still referenced; leaking its memory\n");
		close(host->uffd);
		munmap((void *)host->base, host->size);
		return;
	}
	hmmu_host_free(host);
}

int hmmu_host_arena(struct hmmu_mm *mm, void **basep, size_t *sizep)
{
	if (!mm || !mm->host || !basep || !sizep)
		return -EINVAL;
	*basep = (void *)mm->host->base;
	*sizep = mm->host->size;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Mappings                                                            */
/* ------------------------------------------------------------------ */

int hmmu_host_mmap_check(struct hmmu_host *host, unsigned long addr, size_t len, int flags)
{
	if ((flags & (MAP_SHARED | MAP_HUGETLB)) || !(flags & MAP_ANONYMOUS))
		return -EOPNOTSUPP;
	if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) &&
	    (!hmmu_host_covers(host, addr) || HMMU_ALIGN_UP(len, HMMU_PAGE_SIZE) > host->base + host->size - addr))
		return -ENOMEM;
	return 0;
}

/* The hint if [hint, hint + len) is free and inside the arena, else the lowest gap that fits. */
long hmmu_host_unmapped_area(struct hmmu_host *host, unsigned long hint, unsigned long len)
{
	unsigned long end = host->base + host->size, low = host->base;
	struct hmmu_mm *mm = host->mm;
	struct hmmu_vma *vma;

	if (len > host->size)
		return -ENOMEM;
	hint = HMMU_ALIGN_DOWN(hint, HMMU_PAGE_SIZE);
	if (hmmu_host_covers(host, hint) && len <= end - hint) {
		vma = hmmu_find_vma(mm, hint);
		if (!vma || vma->vm_start >= hint + len)
			return (long)hint;
	}
	cds_list_for_each_entry(vma, &mm->vma_list, vm_list) {
		if (vma->vm_start >= low + len)
			break;
		low = HMMU_MAX(low, vma->vm_end);
	}
	return len <= end - low ? (long)low : -ENOMEM;
}

/*
 * A fault must not allocate (it runs in a signal handler): the VMA gets
 * its anon_vma and every page table down to the PTE tables now.  Tables
 * are freed only by munmap, which frees the VMA with them.
 */
static int hmmu_host_vma_tables(struct hmmu_vma *vma)
{
	struct hmmu_mm *mm = vma->vm_mm;

	for (unsigned long addr = vma->vm_start; addr < vma->vm_end;
	     addr = HMMU_ALIGN_DOWN(addr, HMMU_PMD_SIZE) + HMMU_PMD_SIZE) {
		struct hmmu_pt *pmd_pt;
		hmmu_pte_t *pmdp = hmmu_pmd_lookup(mm, addr, true, &pmd_pt);

		if (!pmdp || hmmu_pte_table_populate(mm, pmd_pt, pmdp))
			return -ENOMEM;
	}
	return 0;
}

int hmmu_host_vma_prepare(struct hmmu_vma *vma)
{
	return hmmu_anon_vma_prepare(vma) ? -ENOMEM : hmmu_host_vma_tables(vma);
}

/*
 * munmap freed the empty page tables of the PMD-aligned span around
 * [start, end) (hmmu_free_pgtables()), those of the VMAs that stay in it
 * too: give them back.  mmap_lock held for write.  Out of memory, a VMA
 * is left to allocate its tables at fault time (debug builds then trip
 * over hmmu_host_in_fault()); nothing else is wrong.
 */
void hmmu_host_tables_refill(struct hmmu_mm *mm, unsigned long start, unsigned long end)
{
	unsigned long lo = HMMU_ALIGN_DOWN(start, HMMU_PMD_SIZE), hi = HMMU_ALIGN_UP(end, HMMU_PMD_SIZE);
	struct hmmu_vma *vma;

	for (vma = hmmu_find_vma(mm, lo); vma && vma->vm_start < hi; vma = hmmu_vma_next(vma))
		if (vma->vm_end <= start || vma->vm_start >= end)
			hmmu_host_vma_tables(vma);
}

/* ------------------------------------------------------------------ */
/* Frames                                                              */
/* ------------------------------------------------------------------ */

static long hmmu_host_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * The previous page at @addr may still be on its way out (its last
 * reference about to be dropped, its memfd page being punched): wait for
 * the frame, yielding, at most the retry timeout.
 */
struct hmmu_page *hmmu_host_alloc_frame(struct hmmu_host *host, unsigned long addr)
{
	unsigned long idx = hmmu_host_idx(host, addr);
	struct timespec t0;
	bool timed = false;

	HMMU_BUG_ON(!hmmu_host_covers(host, addr));
	for (;;) {
		unsigned char want = HOST_FRAME_FREE;

		/* Acquire: pairs with the release store that freed the frame (after its punch). */
		if (atomic_compare_exchange_strong_explicit(&host->frame[idx], &want, HOST_FRAME_USED,
							    memory_order_acquire, memory_order_relaxed))
			return hmmu_node_take_frame(host->node, idx);
		if (!timed) {
			clock_gettime(CLOCK_MONOTONIC, &t0);
			timed = true;
		} else if (hmmu_host_ms_since(&t0) > (long)hmmu_retry_timeout_ms()) {
			return NULL;
		}
		sched_yield();
	}
}

/* Punch [idx, idx + nr) frames out of the memfd (nothing at teardown: the memfd goes). */
static void hmmu_host_punch(struct hmmu_host *host, unsigned long idx, unsigned long nr)
{
	if (atomic_load_explicit(&host->dying, memory_order_relaxed))
		return;
	fallocate(host->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(idx << HMMU_PAGE_SHIFT),
		  (off_t)(nr << HMMU_PAGE_SHIFT));
}

int hmmu_host_validate(struct hmmu_host *host)
{
	for (unsigned long i = 0; i < host->size >> HMMU_PAGE_SHIFT; i++) {
		unsigned char state = atomic_load_explicit(&host->frame[i], memory_order_acquire);
		int ref = atomic_load_explicit(&host->node->pages[i]._refcount, memory_order_acquire);

		if ((state == HOST_FRAME_USED) != (ref > 0)) {
			fprintf(stderr, "hmmu: host validate: frame %lu state %u refcount %d\n", i, state, ref);
			return -EUCLEAN;
		}
	}
	return 0;
}

void hmmu_host_frame_free(struct hmmu_host *host, unsigned long idx)
{
	hmmu_host_punch(host, idx, 1);
	/* Release: the punch is done before anyone can claim the frame again. */
	atomic_store_explicit(&host->frame[idx], HOST_FRAME_FREE, memory_order_release);
}

/*
 * Give back the memory of the free frames in [start, end): those that
 * served as the zero page (zero bytes, no struct page allocated).  Each run
 * of free frames is claimed (PUNCH: an allocation waits), punched with one
 * call, then freed.
 */
static void hmmu_host_punch_free(struct hmmu_host *host, unsigned long start, unsigned long end)
{
	unsigned long first = hmmu_host_idx(host, start), last = hmmu_host_idx(host, end), run = first;

	for (unsigned long i = first; i <= last; i++) {
		unsigned char want = HOST_FRAME_FREE;

		if (i < last && atomic_compare_exchange_strong_explicit(&host->frame[i], &want, HOST_FRAME_PUNCH,
									memory_order_acquire, memory_order_relaxed))
			continue;
		if (i > run)
			hmmu_host_punch(host, run, i - run);
		for (unsigned long j = run; j < i; j++)
			atomic_store_explicit(&host->frame[j], HOST_FRAME_FREE, memory_order_release);
		run = i + 1;
	}
}

/* ------------------------------------------------------------------ */
/* Invalidation: the secondary MMU that is the real mapping            */
/* ------------------------------------------------------------------ */

/* Stripes covering [start, end) as a bit mask. */
static uint64_t hmmu_host_stripe_mask(unsigned long start, unsigned long end)
{
	unsigned long first = start >> HMMU_HOST_BLOCK_SHIFT, last = (end - 1) >> HMMU_HOST_BLOCK_SHIFT;
	uint64_t mask = 0;

	if (last - first >= HMMU_HOST_STRIPES)
		return ~0ULL;
	for (unsigned long b = first; b <= last; b++)
		mask |= 1ULL << (b % HMMU_HOST_STRIPES);
	return mask;
}

/*
 * Pass through the lock of every stripe of @mask (ascending), holding one
 * at a time.  Called after hmmu_interval_set_seq(): an install under a
 * stripe either finished before we took it (the zap that follows removes
 * it) or takes it after us and sees the new sequence in read_retry (it
 * retries).  With @try a busy stripe fails the pass (false).
 */
static bool hmmu_host_stripes_barrier(struct hmmu_host *host, uint64_t mask, bool try)
{
	for (int i = 0; i < HMMU_HOST_STRIPES; i++) {
		if (!(mask & (1ULL << i)))
			continue;
		if (try && pthread_mutex_trylock(&host->stripe[i].lock))
			return false;
		if (!try)
			pthread_mutex_lock(&host->stripe[i].lock);
		pthread_mutex_unlock(&host->stripe[i].lock);
	}
	return true;
}

/*
 * Tear down the real mapping of [start, end): MADV_DONTNEED drops the
 * PTEs (the memfd keeps the bytes), or, for an mprotect that leaves the
 * range readable, UFFDIO_WRITEPROTECT keeps the read access and makes the
 * next store fault.  A zap also gives back the memory of the free frames
 * that served as zero pages (a zero page migrating to a device, unmapped
 * or dropped): no read_retry can pass for the range until the
 * invalidation ends, so no install races with the punch.
 */
static void hmmu_host_zap(struct hmmu_host *host, const struct hmmu_notifier_range *range,
			  unsigned long start, unsigned long end)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = start, .len = end - start },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,	/* DONTWAKE is refused with WP */
	};

	if (hmmu_notifier_range_update_to_read_only(range) && !ioctl(host->uffd, UFFDIO_WRITEPROTECT, &wp))
		return;
	madvise((void *)start, end - start, MADV_DONTNEED);
	if (range->event != HMMU_NOTIFY_RELEASE)
		hmmu_host_punch_free(host, start, end);
}

/*
 * The interval callback.  Every event, MIGRATE included (whoever migrates,
 * the real mapping of the old page must go).  RELEASE (teardown) marks the
 * host dying: the frames freed next need no punch.  Context: the
 * invalidation's; takes the range's stripes one at a time (trylock when
 * not blockable).
 */
static bool hmmu_host_invalidate(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
				 unsigned long cur_seq)
{
	struct hmmu_host *host = hmmu_container_of(sub, struct hmmu_host, notifier);
	unsigned long start = HMMU_MAX(range->start, host->base);
	unsigned long end = HMMU_MIN(range->end, host->base + host->size);
	uint64_t mask;

	if (range->event == HMMU_NOTIFY_RELEASE)
		atomic_store_explicit(&host->dying, true, memory_order_relaxed);
	start = HMMU_ALIGN_DOWN(start, HMMU_PAGE_SIZE);
	end = HMMU_ALIGN_UP(end, HMMU_PAGE_SIZE);
	mask = hmmu_host_stripe_mask(start, end);
	hmmu_interval_set_seq(sub, cur_seq);
	if (!hmmu_host_stripes_barrier(host, mask, !hmmu_notifier_range_blockable(range)))
		return false;
	hmmu_host_zap(host, range, start, end);
	return true;
}

static const struct hmmu_interval_notifier_ops hmmu_host_notifier_ops = {
	.invalidate = hmmu_host_invalidate,
};
