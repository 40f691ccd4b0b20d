/* SPDX-License-Identifier: MIT */
/*
 * Private to src/host/: struct hmmu_host and the userfaultfd constants
 * older system headers lack.
 */
#ifndef HMMU_HOST_PRIV_H
#define HMMU_HOST_PRIV_H

#include <linux/userfaultfd.h>

#include "internal.h"

/* Linux 6.4 names that Debian 12's headers lack. */
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

/* The features a host mm needs: faults as SIGBUS, minor faults and write protection on shmem. */
#define HMMU_HOST_UFFD_FEATURES \
	(UFFD_FEATURE_SIGBUS | UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

/* Most host mms alive at once (the signal handler scans a table this big). */
#define HMMU_MAX_HOSTS 64
/*
 * Stripes of the mapping lock, by blocks of HMMU_HOST_AROUND pages: a
 * page's is (addr / block) % HMMU_HOST_STRIPES, so a whole map-around
 * window (fault.c) is under one stripe.
 */
#define HMMU_HOST_STRIPES 64
#define HMMU_HOST_AROUND 64UL	/* == 1 << (HMMU_HOST_BLOCK_SHIFT - HMMU_PAGE_SHIFT) */
#define HMMU_HOST_BLOCK_SHIFT (HMMU_PAGE_SHIFT + 6)

/* Frame states (struct hmmu_host::frame). */
enum {
	HOST_FRAME_FREE = 0,	/* no page; its memfd page is a hole or zeros */
	HOST_FRAME_USED,	/* a struct hmmu_page is allocated there */
	HOST_FRAME_PUNCH,	/* free, its memfd page being punched out */
};

struct hmmu_host_stripe {
	pthread_mutex_t lock;
} __attribute__((aligned(64)));

/*
 * One host mm's binding.  Everything is immutable from creation to
 * release but `frame`, `dying` and the stripes.
 *
 * The real mapping of the arena is a secondary MMU of the mm: `notifier`
 * covers the whole arena and never skips an event.  Stripe s's lock (the
 * "driver lock" of the interval notifier protocol) serialises installing
 * a real mapping of a page of stripe s (fault.c, read_retry under it)
 * with invalidations that cover it: an invalidation sets the sequence,
 * then takes and drops each stripe of its range in turn, then zaps.
 * Order: mmap_lock -> stripe -> page-table lock.
 *
 * frame[i] (atomic) is frame i's state.  FREE -> USED by the allocator's
 * compare-and-swap (acquire); USED -> FREE by the free path after the
 * memfd page is punched (release: the punch happens before the next
 * allocation); FREE -> PUNCH -> FREE around punching a free frame
 * (munmap).  So a FREE frame's memfd page always reads as zeros.
 */
struct hmmu_host {
	struct hmmu_mm *mm;
	unsigned long base, size;	/* the arena [base, base + size) */
	char *dmap;			/* the direct map: the memfd mapped once more */
	int memfd, uffd;
	int nid;			/* the node of the frames */
	struct hmmu_node *node;
	int slot;			/* in the handler's table */
	_Atomic unsigned char *frame;	/* size >> PAGE_SHIFT states */
	atomic_bool dying;		/* RELEASE seen: freed frames are not punched */
	struct hmmu_interval_notifier notifier;
	struct hmmu_host_stripe stripe[HMMU_HOST_STRIPES];
};

static inline unsigned long hmmu_host_idx(const struct hmmu_host *host, unsigned long addr)
{
	return (addr - host->base) >> HMMU_PAGE_SHIFT;
}

static inline bool hmmu_host_covers(const struct hmmu_host *host, unsigned long addr)
{
	return addr - host->base < host->size;
}

static inline struct hmmu_host_stripe *hmmu_host_stripe_of(struct hmmu_host *host, unsigned long addr)
{
	return &host->stripe[(addr >> HMMU_HOST_BLOCK_SHIFT) % HMMU_HOST_STRIPES];
}

/* uffd.c */
/* A userfaultfd with the host features enabled; the fd or -errno. */
int hmmu_host_uffd_open(void);

/* host.c */
/* The host mm whose arena holds @addr, or NULL.  Lock-free (signal handlers). */
struct hmmu_host *hmmu_host_lookup(unsigned long addr);


#endif /* HMMU_HOST_PRIV_H */
