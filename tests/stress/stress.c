// SPDX-License-Identifier: MIT
/*
 * hmmu-stress: a randomised, seeded, time-bounded workload that races
 * everything hmmu does with data against a shadow of what every byte must
 * hold (docs/reliability.md).
 *
 * World: NR_MMS address spaces, each of NR_REGIONS regions of REGION_PAGES
 * private anonymous pages, mirrored by two dmirror devices (one private,
 * one coherent).  Each region has a shadow and a writer-preferring rwlock:
 *
 *   exclusive (the region's data or mapping changes, then the shadow):
 *     CPU write, device write, munmap + mmap, MADV_DONTNEED, mremap (to
 *     the region's other slot), mprotect (read-write <-> read-only);
 *   shared (data-preserving, so the shadow is exact and they race freely
 *     with each other and with reads): CPU read, device read, migration
 *     to either device and back, device-exclusive access, GUP references
 *     and DMA pins held across migrations, fork (all regions shared: the
 *     child is checked against the shadow at fork time).
 *
 * Each mm also has an rwlock: every operation holds it shared; tearing the
 * mm down (close its mirrors, destroy it, build a new one) holds it
 * exclusive.  Every read, CPU or device (and the read-backs of
 * MIGRATE_TO_DEV and EXCLUSIVE, and pinned pages) is compared with the
 * shadow.  A run ends with the validators and a leak check, and fails when
 * any of the four collision counters stayed zero (that race was not
 * tested).
 *
 * Options (argv, or env): --seed N (HMMU_STRESS_SEED), --seconds N
 * (HMMU_STRESS_SECONDS, default 60), --threads N (HMMU_STRESS_THREADS,
 * default 2 per core), --inject SPEC (HMMU_FAULT_INJECT, read by
 * hmmu_init: fault injection, see <hmmu/fault_inject.h>).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hmmu/dmirror.h>

#include "internal.h"

#define PAGE HMMU_PAGE_SIZE
#define NR_MMS 2
#define NR_REGIONS 4
#define REGION_PAGES 32
#define REGION_SIZE (REGION_PAGES * PAGE)
#define SLOT_STRIDE (REGION_SIZE + 16 * PAGE)
#define MM_BASE 0x40000000UL
#define NR_DEVS 2
#define MAX_OP_PAGES 8
#define RETRY_LIMIT 100000
#define HANG_GRACE_S 120
#define RW (PROT_READ | PROT_WRITE)

/* ------------------------------------------------------------------ */
/* State                                                               */
/* ------------------------------------------------------------------ */

struct region {
	pthread_rwlock_t lock;	/* exclusive: data or mapping changes; shared: the rest */
	unsigned long slot[2];	/* the two places mremap moves it between */
	int cur;		/* slot in use; lock */
	int prot;		/* RW or PROT_READ; lock */
	unsigned char shadow[REGION_SIZE];	/* what each byte must hold; lock */
};

struct smm {
	pthread_rwlock_t lock;	/* exclusive: teardown; shared: every other operation */
	struct hmmu_mm *mm;	/* lock */
	struct hmmu_dmirror *mirror[NR_DEVS];	/* lock */
	struct region r[NR_REGIONS];
};

enum op {
	OP_CPU_READ, OP_DEV_READ, OP_TO_DEV, OP_TO_SYS, OP_EXCLUSIVE, OP_GUP_HOLD, OP_PIN_HOLD, OP_FORK,
	OP_CPU_WRITE, OP_DEV_WRITE, OP_REMAP_FRESH, OP_DONTNEED, OP_MREMAP, OP_MPROTECT, OP_HOLE_RACE, OP_TEARDOWN,
	NR_OPS
};

/* Operations that fault through a device (hmm_range_fault). */
#define DEVICE_OPS ((1u << OP_DEV_READ) | (1u << OP_TO_DEV) | (1u << OP_TO_SYS) | (1u << OP_EXCLUSIVE) | \
		    (1u << OP_DEV_WRITE) | (1u << OP_FORK))

static const char *const op_names[NR_OPS] = {
	"cpu_read", "dev_read", "migrate_to_dev", "migrate_to_sys", "exclusive", "gup_hold", "pin_hold",
	"fork", "cpu_write", "dev_write", "munmap_mmap", "dontneed", "mremap", "mprotect", "hole_race", "mm_teardown",
};

/* Relative weights of the operations. */
static const unsigned int op_weight[NR_OPS] = {
	[OP_CPU_READ] = 20, [OP_DEV_READ] = 20, [OP_TO_DEV] = 20, [OP_TO_SYS] = 12, [OP_EXCLUSIVE] = 4,
	[OP_GUP_HOLD] = 6, [OP_PIN_HOLD] = 6, [OP_FORK] = 1, [OP_CPU_WRITE] = 8, [OP_DEV_WRITE] = 6,
	[OP_REMAP_FRESH] = 2, [OP_DONTNEED] = 4, [OP_MREMAP] = 2, [OP_MPROTECT] = 2, [OP_HOLE_RACE] = 2,
	[OP_TEARDOWN] = 0,
};

static struct smm mms[NR_MMS];
static struct hmmu_dmirror_device *devs[NR_DEVS];
static atomic_bool stop;
static atomic_ulong op_done[NR_OPS], op_failed[NR_OPS];
static unsigned long seed, seconds = 60, nthreads;
static bool injecting;
static char cmdline[512];

/* ------------------------------------------------------------------ */
/* Reporting                                                           */
/* ------------------------------------------------------------------ */

/* A failure: say what, the seed and how to replay it; exit at once. */
static void __attribute__((format(printf, 1, 2), noreturn)) die(const char *fmt, ...)
{
	static pthread_mutex_t out = PTHREAD_MUTEX_INITIALIZER;
	va_list ap;

	pthread_mutex_lock(&out);
	fprintf(stderr, "stress: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nstress: seed %lu; reproduce with: %s\n", seed, cmdline);
	fflush(stderr);
	_exit(1);
}

/* Compare @len bytes read (@got) at offset @off of region @ri of mm @mi with the shadow. */
static void check(const char *what, int mi, int ri, unsigned long off, const unsigned char *got, size_t len)
{
	const unsigned char *want = mms[mi].r[ri].shadow + off;

	for (size_t i = 0; i < len; i++)
		if (got[i] != want[i])
			die("%s: mm %d region %d offset %#lx (page %lu): got %#x, shadow %#x", what, mi, ri, off + i,
			    (off + i) / PAGE, got[i], want[i]);
}

/* @ret is an error an operation of kind @op may return: count it, else die. */
static void allow(enum op op, long ret, const int *ok, size_t n)
{
	if (ret >= 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (ret == -ok[i]) {
			atomic_fetch_add_explicit(&op_failed[op], 1, memory_order_relaxed);
			return;
		}
	/* Injected failures: -ENOMEM, and -EFAULT from a device's hmm_range_fault (Linux reports OOM so). */
	if (injecting && (ret == -ENOMEM || (ret == -EFAULT && ((1u << op) & DEVICE_OPS)))) {
		atomic_fetch_add_explicit(&op_failed[op], 1, memory_order_relaxed);
		return;
	}
	die("%s returned %ld (%s)", op_names[op], ret, strerror((int)-ret));
}
#define ALLOW(op, ret, ...)                                                                         \
	do {                                                                                        \
		const int ok_[] = { 0, __VA_ARGS__ };                                               \
		allow((op), (ret), ok_ + 1, sizeof(ok_) / sizeof(ok_[0]) - 1);                      \
	} while (0)

/*
 * Run @call until it succeeds; -ENOMEM (fault injection only) means retry.
 * For operations whose outcome the shadow must know exactly.
 */
#define MUST(op, call)                                                                              \
	({                                                                                          \
		long ret_;                                                                          \
		unsigned long tries_ = 0;                                                           \
		while ((ret_ = (long)(call)) == -ENOMEM && injecting && ++tries_ < RETRY_LIMIT)       \
			atomic_fetch_add_explicit(&op_failed[op], 1, memory_order_relaxed);         \
		if (ret_ < 0)                                                                       \
			die("%s: %s returned %ld (%s)", op_names[op], #call, ret_, strerror((int)-ret_)); \
		ret_;                                                                               \
	})

/* ------------------------------------------------------------------ */
/* Randomness                                                          */
/* ------------------------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	uint64_t x = *s;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static unsigned long rnd_below(uint64_t *s, unsigned long n)
{
	return (unsigned long)(rnd(s) % n);
}

static void rnd_fill(uint64_t *s, unsigned char *buf, size_t len)
{
	/* A few distinct byte values per call: zero pages and stale copies show. */
	unsigned char base = (unsigned char)rnd(s);

	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(base + (i % 251) + (i / PAGE) * 7);
}

/* A run of [1, MAX_OP_PAGES] pages inside a region: first page *@pg, count returned. */
static unsigned long rnd_pages(uint64_t *s, unsigned long *pg)
{
	unsigned long n = 1 + rnd_below(s, MAX_OP_PAGES);

	*pg = rnd_below(s, REGION_PAGES - n + 1);
	return n;
}

static unsigned int op_weight_total;

static enum op rnd_op(uint64_t *s)
{
	unsigned int x = (unsigned int)rnd_below(s, op_weight_total);

	for (int i = 0; i < NR_OPS; i++) {
		if (x < op_weight[i])
			return (enum op)i;
		x -= op_weight[i];
	}
	return OP_CPU_READ;
}

/* ------------------------------------------------------------------ */
/* Set-up and teardown of an mm                                        */
/* ------------------------------------------------------------------ */

static unsigned long region_addr(const struct region *r)
{
	return r->slot[r->cur];
}

/* Map region @r fresh (zeros, read-write) at its current slot; the shadow follows. */
static void region_map(struct hmmu_mm *mm, struct region *r)
{
	long a = MUST(OP_REMAP_FRESH, hmmu_mmap(mm, region_addr(r), REGION_SIZE, RW,
						 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));

	if ((unsigned long)a != region_addr(r))
		die("mmap at %#lx returned %#lx", region_addr(r), a);
	r->prot = RW;
	memset(r->shadow, 0, REGION_SIZE);
}

/* A new mm for @m with its regions mapped and a mirror per device.  Caller owns @m exclusively. */
static void smm_build(struct smm *m)
{
	MUST(OP_TEARDOWN, hmmu_mm_create(HMMU_MM_DEFAULT, &m->mm));
	for (int ri = 0; ri < NR_REGIONS; ri++)
		region_map(m->mm, &m->r[ri]);
	for (int d = 0; d < NR_DEVS; d++)
		MUST(OP_TEARDOWN, hmmu_dmirror_open(devs[d], m->mm, &m->mirror[d]));
}

/* Close @m's mirrors, validate and destroy its mm.  Caller owns @m exclusively. */
static void smm_destroy(struct smm *m)
{
	int ret;

	for (int d = 0; d < NR_DEVS; d++)
		if ((ret = hmmu_dmirror_close(m->mirror[d])))
			die("hmmu_dmirror_close: %d", ret);
	if ((ret = hmmu_pt_validate(m->mm)))
		die("hmmu_pt_validate: %d", ret);
	hmmu_mmput(m->mm);
	m->mm = NULL;
}

static void smm_init(struct smm *m)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&m->lock, &attr);
	for (int ri = 0; ri < NR_REGIONS; ri++) {
		struct region *r = &m->r[ri];

		pthread_rwlock_init(&r->lock, &attr);
		r->slot[0] = MM_BASE + (unsigned long)(2 * ri) * SLOT_STRIDE;
		r->slot[1] = r->slot[0] + SLOT_STRIDE;
		r->cur = 0;
	}
	pthread_rwlockattr_destroy(&attr);
	smm_build(m);
}

/* ------------------------------------------------------------------ */
/* Shared operations: the data stays                                   */
/* ------------------------------------------------------------------ */

/* CPU read of a random byte range, compared with the shadow. */
static void op_cpu_read(uint64_t *s, int mi, int ri)
{
	struct region *r = &mms[mi].r[ri];
	unsigned long off = rnd_below(s, REGION_SIZE), len = 1 + rnd_below(s, MAX_OP_PAGES * PAGE);
	unsigned char buf[MAX_OP_PAGES * PAGE];
	int ret;

	len = len > REGION_SIZE - off ? REGION_SIZE - off : len;
	ret = hmmu_access(mms[mi].mm, region_addr(r) + off, buf, len, HMMU_ACCESS_READ);
	ALLOW(OP_CPU_READ, ret);
	if (!ret)
		check("cpu read", mi, ri, off, buf, len);
}

/*
 * A device operation's target: a random mirror of mm @mi and a random run
 * of pages of region @ri (first page pg, n pages), as a command whose
 * buffer is @buf.
 */
struct dev_op {
	struct hmmu_dmirror *mirror;
	unsigned long pg, n;
	struct hmmu_dmirror_cmd cmd;
};

static struct dev_op dev_op_pick(uint64_t *s, int mi, int ri, void *buf)
{
	struct dev_op d = { .mirror = mms[mi].mirror[rnd_below(s, NR_DEVS)] };

	d.n = rnd_pages(s, &d.pg);
	d.cmd = (struct hmmu_dmirror_cmd){ .addr = region_addr(&mms[mi].r[ri]) + d.pg * PAGE,
					   .ptr = (uintptr_t)buf, .npages = d.n };
	return d;
}

/* Device read (direct, or the READ command through a bounce buffer). */
static void op_dev_read(uint64_t *s, int mi, int ri)
{
	unsigned char buf[MAX_OP_PAGES * PAGE];
	struct dev_op d = dev_op_pick(s, mi, ri, buf);
	int ret;

	if (rnd(s) & 1)
		ret = hmmu_dmirror_read(d.mirror, d.cmd.addr, buf, d.n, NULL);
	else
		ret = hmmu_dmirror_cmd(d.mirror, HMMU_DMIRROR_READ, &d.cmd);
	ALLOW(OP_DEV_READ, ret, EBUSY);
	if (!ret)
		check("device read", mi, ri, d.pg * PAGE, buf, d.n * PAGE);
}

/* Migration to a device; the MIGRATE_TO_DEV command's read-back is checked. */
static void op_to_dev(uint64_t *s, int mi, int ri)
{
	unsigned char buf[MAX_OP_PAGES * PAGE];
	struct dev_op d = dev_op_pick(s, mi, ri, buf);
	long ret;

	if (rnd(s) & 1) {
		ret = hmmu_dmirror_migrate_to_device(d.mirror, d.cmd.addr, d.n, 1 + rnd_below(s, 4));
		ALLOW(OP_TO_DEV, ret, EBUSY);
		return;
	}
	ret = hmmu_dmirror_cmd(d.mirror, HMMU_DMIRROR_MIGRATE_TO_DEV, &d.cmd);
	/* -ENOENT: a page did not move (pinned, referenced, raced): allowed. */
	ALLOW(OP_TO_DEV, ret, EBUSY, ENOENT);
	if (!ret)
		check("migrate_to_dev read-back", mi, ri, d.pg * PAGE, buf, d.n * PAGE);
}

static void op_to_sys(uint64_t *s, int mi, int ri)
{
	struct dev_op d = dev_op_pick(s, mi, ri, NULL);
	long ret;

	if (rnd(s) & 1)
		ret = hmmu_dmirror_migrate_to_system(d.mirror, d.cmd.addr, d.n, 1 + rnd_below(s, 4));
	else
		ret = hmmu_dmirror_cmd(d.mirror, HMMU_DMIRROR_MIGRATE_TO_SYS, &d.cmd);
	ALLOW(OP_TO_SYS, ret, EBUSY);
}

/* Device-exclusive access; the command's read-back is checked. */
static void op_exclusive(uint64_t *s, int mi, int ri)
{
	unsigned char buf[MAX_OP_PAGES * PAGE];
	struct dev_op d = dev_op_pick(s, mi, ri, buf);
	int ret = hmmu_dmirror_cmd(d.mirror, HMMU_DMIRROR_EXCLUSIVE, &d.cmd);

	/* A read-only region cannot be made exclusive (-EBUSY / -EFAULT / -EPERM). */
	ALLOW(OP_EXCLUSIVE, ret, EBUSY, ENOENT, EFAULT, EPERM);
	if (!ret)
		check("exclusive read-back", mi, ri, d.pg * PAGE, buf, d.n * PAGE);
}

/* Let the other threads run for a moment (a reference held across their migrations). */
static void linger(uint64_t *s)
{
	unsigned long n = 1 + rnd_below(s, 8);

	for (unsigned long i = 0; i < n; i++)
		sched_yield();
	if (rnd(s) & 1) {
		struct timespec ts = { 0, (long)(20000 + rnd_below(s, 200000)) };

		nanosleep(&ts, NULL);
	}
}

/*
 * Hold GUP references (@pin: DMA pins) on a run of pages while other
 * threads migrate them; the pages' contents must match the shadow.
 */
static void op_hold(uint64_t *s, int mi, int ri, bool pin)
{
	enum op op = pin ? OP_PIN_HOLD : OP_GUP_HOLD;
	struct hmmu_mm *mm = mms[mi].mm;
	struct region *r = &mms[mi].r[ri];
	struct hmmu_page *pages[MAX_OP_PAGES];
	unsigned long pg, n = rnd_pages(s, &pg);
	unsigned int flags = (r->prot & PROT_WRITE) && (rnd(s) & 1) ? HMMU_FOLL_WRITE : 0;
	long got;

	flags |= pin && (rnd(s) & 1) ? HMMU_FOLL_LONGTERM : 0;
	hmmu_mmap_read_lock(mm);
	got = pin ? hmmu_pin_user_pages_remote(mm, region_addr(r) + pg * PAGE, n, flags, pages)
		  : hmmu_get_user_pages_remote(mm, region_addr(r) + pg * PAGE, n, flags, pages);
	hmmu_mmap_read_unlock(mm);
	/* -EBUSY: a long-term pin could not move a busy coherent page first. */
	ALLOW(op, got, EBUSY);
	linger(s);
	for (long i = 0; i < got; i++) {
		check(pin ? "pinned page" : "gup page", mi, ri, (pg + (unsigned long)i) * PAGE,
		      hmmu_page_address(pages[i]), PAGE);
		if (pin)
			hmmu_unpin_user_page(pages[i]);
		else
			hmmu_put_page(pages[i]);
	}
}

/* Check a forked child against the parent's shadow at fork time (@snap), by CPU and by a device. */
static void fork_check_child(uint64_t *s, struct hmmu_mm *child, const unsigned long *addr, unsigned char *snap)
{
	struct hmmu_dmirror *mirror = NULL;
	unsigned char buf[REGION_SIZE];
	int ret, ri;

	for (ri = 0; ri < NR_REGIONS; ri++) {
		MUST(OP_FORK, hmmu_access(child, addr[ri], buf, REGION_SIZE, HMMU_ACCESS_READ));
		if (memcmp(buf, snap + ri * REGION_SIZE, REGION_SIZE))
			die("fork: the child's region %d differs from the parent's at fork time", ri);
	}
	if (rnd(s) % 4)
		return;
	/* A device on the child: migrate one region there, read it back by device and CPU. */
	ret = hmmu_dmirror_open(devs[rnd_below(s, NR_DEVS)], child, &mirror);
	ALLOW(OP_FORK, ret);
	if (ret)
		return;
	ri = (int)rnd_below(s, NR_REGIONS);
	ALLOW(OP_FORK, hmmu_dmirror_migrate_to_device(mirror, addr[ri], REGION_PAGES, 0), EBUSY);
	ret = hmmu_dmirror_read(mirror, addr[ri], buf, REGION_PAGES, NULL);
	ALLOW(OP_FORK, ret, EBUSY);
	if (!ret && memcmp(buf, snap + ri * REGION_SIZE, REGION_SIZE))
		die("fork: the child's region %d, read by a device, differs", ri);
	MUST(OP_FORK, hmmu_access(child, addr[ri], buf, REGION_SIZE, HMMU_ACCESS_READ));
	if (memcmp(buf, snap + ri * REGION_SIZE, REGION_SIZE))
		die("fork: the child's region %d differs after its migration", ri);
	if ((ret = hmmu_dmirror_close(mirror)))
		die("hmmu_dmirror_close (child): %d", ret);
}

/*
 * Fork with every region held shared (no write anywhere in the mm), then,
 * the locks released (the parent goes on changing), check the child.
 */
static void op_fork(uint64_t *s, int mi)
{
	struct smm *m = &mms[mi];
	unsigned char *snap = malloc(NR_REGIONS * REGION_SIZE);
	unsigned long addr[NR_REGIONS];
	struct hmmu_mm *child = NULL;
	int ret;

	if (!snap)
		die("out of memory");
	for (int ri = 0; ri < NR_REGIONS; ri++)
		pthread_rwlock_rdlock(&m->r[ri].lock);
	ret = hmmu_fork(m->mm, &child);
	for (int ri = 0; ri < NR_REGIONS; ri++) {
		addr[ri] = region_addr(&m->r[ri]);
		memcpy(snap + ri * REGION_SIZE, m->r[ri].shadow, REGION_SIZE);
		pthread_rwlock_unlock(&m->r[ri].lock);
	}
	/* -ENOMEM also when a device-exclusive page is locked meanwhile (as Linux). */
	ALLOW(OP_FORK, ret, ENOMEM);
	if (!ret) {
		fork_check_child(s, child, addr, snap);
		if ((ret = hmmu_pt_validate(child)))
			die("hmmu_pt_validate (child): %d", ret);
		hmmu_mmput(child);
	}
	free(snap);
}

/* ------------------------------------------------------------------ */
/* Exclusive operations: data or mappings change, the shadow follows   */
/* ------------------------------------------------------------------ */

static void op_cpu_write(uint64_t *s, int mi, int ri)
{
	struct region *r = &mms[mi].r[ri];
	unsigned long off = rnd_below(s, REGION_SIZE), len = 1 + rnd_below(s, MAX_OP_PAGES * PAGE);
	unsigned char buf[MAX_OP_PAGES * PAGE];

	if (!(r->prot & PROT_WRITE))
		return;
	len = len > REGION_SIZE - off ? REGION_SIZE - off : len;
	rnd_fill(s, buf, len);
	MUST(OP_CPU_WRITE, hmmu_access(mms[mi].mm, region_addr(r) + off, buf, len, HMMU_ACCESS_WRITE));
	memcpy(r->shadow + off, buf, len);
}

/*
 * Device write.  A failure may have written some pages (own device pages
 * the CPU maps read-only after a fork fail with -EFAULT): the CPU then
 * writes the same bytes, so the outcome is known either way.
 */
static void op_dev_write(uint64_t *s, int mi, int ri)
{
	struct region *r = &mms[mi].r[ri];
	unsigned char buf[MAX_OP_PAGES * PAGE];
	struct dev_op d = dev_op_pick(s, mi, ri, buf);
	int ret;

	if (!(r->prot & PROT_WRITE))
		return;
	rnd_fill(s, buf, d.n * PAGE);
	ret = hmmu_dmirror_cmd(d.mirror, HMMU_DMIRROR_WRITE, &d.cmd);
	ALLOW(OP_DEV_WRITE, ret, EBUSY, EFAULT);
	if (ret)
		MUST(OP_DEV_WRITE, hmmu_access(mms[mi].mm, d.cmd.addr, buf, d.n * PAGE, HMMU_ACCESS_WRITE));
	memcpy(r->shadow + d.pg * PAGE, buf, d.n * PAGE);
}

static void op_remap_fresh(uint64_t *s, int mi, int ri)
{
	struct region *r = &mms[mi].r[ri];

	MUST(OP_REMAP_FRESH, hmmu_munmap(mms[mi].mm, region_addr(r), REGION_SIZE));
	region_map(mms[mi].mm, r);
}

static void op_dontneed(uint64_t *s, int mi, int ri)
{
	struct region *r = &mms[mi].r[ri];
	unsigned long pg, n = rnd_pages(s, &pg);

	MUST(OP_DONTNEED, hmmu_madvise(mms[mi].mm, region_addr(r) + pg * PAGE, n * PAGE, MADV_DONTNEED));
	memset(r->shadow + pg * PAGE, 0, n * PAGE);
}

/* Move the region to its other slot; under injection a failed move leaves it where it was. */
static void op_mremap(uint64_t *s, int mi, int ri)
{
	struct region *r = &mms[mi].r[ri];
	unsigned long to = r->slot[!r->cur];
	long ret = hmmu_mremap(mms[mi].mm, region_addr(r), REGION_SIZE, REGION_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED,
			       to);

	ALLOW(OP_MREMAP, ret);
	if (ret < 0)
		return;
	if ((unsigned long)ret != to)
		die("mremap to %#lx returned %#lx", to, ret);
	r->cur = !r->cur;
}

static void op_mprotect(uint64_t *s, int mi, int ri)
{
	struct region *r = &mms[mi].r[ri];
	int prot = r->prot == RW ? PROT_READ : RW;

	MUST(OP_MPROTECT, hmmu_mprotect(mms[mi].mm, region_addr(r), REGION_SIZE, prot));
	r->prot = prot;
}

struct hole_race {
	struct hmmu_dmirror *mirror;
	unsigned long addr, npages;
	pthread_barrier_t go;
	long ret;
};

static void *hole_race_migrate(void *arg)
{
	struct hole_race *h = arg;

	pthread_barrier_wait(&h->go);
	h->ret = hmmu_dmirror_migrate_to_device(h->mirror, h->addr, h->npages, h->npages);
	return NULL;
}

/*
 * Holes made and raced at once: a helper thread migrates a run of empty
 * pages to a device while this thread writes them (first touch).  Either
 * order leaves the written bytes (a write after the migration faults the
 * page back); a write between the migration's collect and its commit
 * makes it lose the hole.
 */
static void op_hole_race(uint64_t *s, int mi, int ri)
{
	struct region *r = &mms[mi].r[ri];
	unsigned long pg, n = rnd_pages(s, &pg);
	struct hole_race h = { .mirror = mms[mi].mirror[rnd_below(s, NR_DEVS)], .addr = region_addr(r) + pg * PAGE,
			       .npages = n };
	unsigned char buf[MAX_OP_PAGES * PAGE];
	pthread_t helper;

	if (!(r->prot & PROT_WRITE))
		return;
	MUST(OP_HOLE_RACE, hmmu_madvise(mms[mi].mm, h.addr, n * PAGE, MADV_DONTNEED));
	rnd_fill(s, buf, n * PAGE);
	pthread_barrier_init(&h.go, NULL, 2);
	if (pthread_create(&helper, NULL, hole_race_migrate, &h))
		die("pthread_create");
	pthread_barrier_wait(&h.go);
	for (unsigned long i = n; i-- > 0;)	/* from the end: meet the migration's inserts */
		MUST(OP_HOLE_RACE, hmmu_access(mms[mi].mm, h.addr + i * PAGE, buf + i * PAGE, PAGE, HMMU_ACCESS_WRITE));
	pthread_join(helper, NULL);
	pthread_barrier_destroy(&h.go);
	ALLOW(OP_HOLE_RACE, h.ret, EBUSY);
	memcpy(r->shadow + pg * PAGE, buf, n * PAGE);
}

/* Destroy the mm and build a new one (mm lock held exclusive). */
static void op_teardown(int mi)
{
	smm_destroy(&mms[mi]);
	smm_build(&mms[mi]);
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

static void run_region_op(uint64_t *s, enum op op, int mi, int ri)
{
	switch (op) {
	case OP_CPU_READ: op_cpu_read(s, mi, ri); break;
	case OP_DEV_READ: op_dev_read(s, mi, ri); break;
	case OP_TO_DEV: op_to_dev(s, mi, ri); break;
	case OP_TO_SYS: op_to_sys(s, mi, ri); break;
	case OP_EXCLUSIVE: op_exclusive(s, mi, ri); break;
	case OP_GUP_HOLD: op_hold(s, mi, ri, false); break;
	case OP_PIN_HOLD: op_hold(s, mi, ri, true); break;
	case OP_CPU_WRITE: op_cpu_write(s, mi, ri); break;
	case OP_DEV_WRITE: op_dev_write(s, mi, ri); break;
	case OP_REMAP_FRESH: op_remap_fresh(s, mi, ri); break;
	case OP_DONTNEED: op_dontneed(s, mi, ri); break;
	case OP_MREMAP: op_mremap(s, mi, ri); break;
	case OP_MPROTECT: op_mprotect(s, mi, ri); break;
	case OP_HOLE_RACE: op_hole_race(s, mi, ri); break;
	default: break;
	}
}

/* One operation on a random mm and region, under the locks its kind needs. */
static void run_op(uint64_t *s, enum op op)
{
	int mi = (int)rnd_below(s, NR_MMS), ri = (int)rnd_below(s, NR_REGIONS);
	struct smm *m = &mms[mi];

	if (op == OP_TEARDOWN) {
		pthread_rwlock_wrlock(&m->lock);
		op_teardown(mi);
		pthread_rwlock_unlock(&m->lock);
		return;
	}
	pthread_rwlock_rdlock(&m->lock);
	if (op == OP_FORK) {
		op_fork(s, mi);
	} else {
		if (op >= OP_CPU_WRITE)
			pthread_rwlock_wrlock(&m->r[ri].lock);
		else
			pthread_rwlock_rdlock(&m->r[ri].lock);
		run_region_op(s, op, mi, ri);
		pthread_rwlock_unlock(&m->r[ri].lock);
	}
	pthread_rwlock_unlock(&m->lock);
}

struct worker {
	pthread_t tid;
	unsigned long index;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t s = seed * 0x100000001b3ULL + w->index;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		/* About one teardown per 5000 operations of a thread. */
		enum op op = rnd_below(&s, 5000) ? rnd_op(&s) : OP_TEARDOWN;

		run_op(&s, op);
		atomic_fetch_add_explicit(&op_done[op], 1, memory_order_relaxed);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Main                                                                */
/* ------------------------------------------------------------------ */

static unsigned long opt_ul(int argc, char **argv, const char *name, const char *env, unsigned long def)
{
	const char *v = getenv(env);

	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			v = argv[i + 1];
	return v ? strtoul(v, NULL, 0) : def;
}

static void parse_options(int argc, char **argv)
{
	struct timespec ts;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	const char *inject = getenv("HMMU_FAULT_INJECT");

	clock_gettime(CLOCK_REALTIME, &ts);
	seed = opt_ul(argc, argv, "--seed", "HMMU_STRESS_SEED", (unsigned long)(ts.tv_nsec ^ ts.tv_sec) | 1);
	seconds = opt_ul(argc, argv, "--seconds", "HMMU_STRESS_SECONDS", 60);
	nthreads = opt_ul(argc, argv, "--threads", "HMMU_STRESS_THREADS", 2 * (unsigned long)(cores > 0 ? cores : 1));
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--inject"))
			inject = argv[i + 1];
	if (inject && *inject) {
		/* hmmu_init() reads the variable; the seed of the draws is ours. */
		setenv("HMMU_FAULT_INJECT", inject, 1);
		injecting = true;
	}
	snprintf(cmdline, sizeof(cmdline), "%s --seed %lu --seconds %lu --threads %lu%s%s%s", argv[0], seed, seconds,
		 nthreads, injecting ? " --inject '" : "", injecting ? inject : "", injecting ? "'" : "");
	for (int i = 0; i < NR_OPS; i++)
		op_weight_total += op_weight[i];
}

static void devices_create(void)
{
	for (int d = 0; d < NR_DEVS; d++) {
		struct hmmu_dmirror_device_config cfg = {
			.type = d ? HMMU_MEMORY_DEVICE_COHERENT : HMMU_MEMORY_DEVICE_PRIVATE,
			.chunk_size = 2UL << 20, .max_chunks = 8, .fault_around_pages = d ? 1 : 4,
		};
		int ret = hmmu_dmirror_device_create(&cfg, &devs[d]);

		if (ret)
			die("hmmu_dmirror_device_create: %d", ret);
	}
}

/* Everything gone: validators, device pages all freed, node 0 back to its start. */
static void teardown_and_check(long free_at_start)
{
	struct hmmu_stat st;
	int ret;

	for (int mi = 0; mi < NR_MMS; mi++)
		smm_destroy(&mms[mi]);
	for (int d = 0; d < NR_DEVS; d++) {
		struct hmmu_dmirror_device_stats ds;

		hmmu_dmirror_device_get_stats(devs[d], &ds);
		if (ds.pages_in_use)
			die("device %d: %lu pages still in use with every mirror closed", d, ds.pages_in_use);
		if ((ret = hmmu_dmirror_device_destroy(devs[d])))
			die("hmmu_dmirror_device_destroy: %d", ret);
	}
	hmmu_rcu_barrier();
	hmmu_stat(&st);
	if (st.v[HMMU_STAT_DEVICE_PAGE_ALLOC] != st.v[HMMU_STAT_DEVICE_PAGE_FREE])
		die("device pages: %lu allocated, %lu freed", st.v[HMMU_STAT_DEVICE_PAGE_ALLOC],
		    st.v[HMMU_STAT_DEVICE_PAGE_FREE]);
	if ((ret = hmmu_page_alloc_validate()))
		die("hmmu_page_alloc_validate: %d", ret);
	if (hmmu_node_nr_free_pages(0) != free_at_start)
		die("leak: %ld free pages at the start, %ld at the end", free_at_start, hmmu_node_nr_free_pages(0));
}

/* Print operations and counters; returns how many collision counters stayed zero. */
static int report(double elapsed)
{
	static const enum hmmu_stat_item collisions[] = {
		HMMU_STAT_RANGE_FAULT_RETRY, HMMU_STAT_FAULT_MIGRATION_WAIT, HMMU_STAT_MIGRATE_HOLE_LOST,
		HMMU_STAT_MIGRATE_PIN_CHECK_FAILED,
	};
	struct hmmu_stat st;
	unsigned long total = 0;
	int zero = 0;

	for (int i = 0; i < NR_OPS; i++) {
		unsigned long n = atomic_load(&op_done[i]);

		total += n;
		printf("# op %-15s %10lu  (%lu errors allowed)\n", op_names[i], n, atomic_load(&op_failed[i]));
	}
	printf("# %lu operations in %.1f s: %.0f ops/s, %lu threads, seed %lu\n", total, elapsed, total / elapsed,
	       nthreads, seed);
	hmmu_stat(&st);
	for (unsigned int i = 0; i < HMMU_STAT_NR; i++)
		printf("# stat %-28s %lu\n", hmmu_stat_name(i), st.v[i]);
	for (unsigned int i = 0; i < HMMU_FAULT_NR && injecting; i++)
		printf("# injected %-12s %ld\n", hmmu_fault_inject_site_name(i), hmmu_fault_inject_count(i));
	for (size_t i = 0; i < sizeof(collisions) / sizeof(collisions[0]); i++) {
		printf("# collision %-26s %lu%s\n", hmmu_stat_name(collisions[i]), st.v[collisions[i]],
		       st.v[collisions[i]] ? "" : "  <- ZERO: race not tested");
		zero += !st.v[collisions[i]];
	}
	return zero;
}

/* Run the workers for the configured time; returns the seconds they ran. */
static double run_workers(void)
{
	struct timespec t0, t1, deadline;
	struct worker *w = calloc(nthreads, sizeof(*w));

	if (!w)
		die("out of memory");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long i = 0; i < nthreads; i++) {
		w[i].index = i;
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]))
			die("pthread_create");
	}
	sleep((unsigned int)seconds);
	atomic_store(&stop, true);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += HANG_GRACE_S;
	for (unsigned long i = 0; i < nthreads; i++)
		if (pthread_timedjoin_np(w[i].tid, NULL, &deadline))
			die("thread %lu still running %d s after the deadline (hang)", i, HANG_GRACE_S);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(w);
	return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
	struct hmmu_config cfg = { .ram_size = 256UL << 20 };
	long free_at_start;
	int ret, zero;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_options(argc, argv);
	printf("# stress: seed %lu, %lu s, %lu threads%s\n", seed, seconds, nthreads, injecting ? ", fault injection" : "");
	if ((ret = hmmu_init(&cfg)))
		die("hmmu_init: %d", ret);
	if (injecting && (ret = hmmu_fault_inject_seed(seed)))
		die("fault injection asked for, but hmmu_fault_inject_seed returned %d (build with HMMU_FAULT_INJECT)", ret);
	hmmu_stat_reset();
	free_at_start = hmmu_node_nr_free_pages(0);
	devices_create();
	for (int mi = 0; mi < NR_MMS; mi++)
		smm_init(&mms[mi]);
	/* Counters first: the teardown's own migrations would blur them. */
	zero = report(run_workers());
	for (unsigned int i = 0; i < HMMU_FAULT_NR; i++)
		hmmu_fault_inject_set(i, 0, 0);	/* the final teardown checks, it is not tested */
	teardown_and_check(free_at_start);
	if ((ret = hmmu_exit()))
		die("hmmu_exit: %d", ret);
	if (zero)
		die("%d collision counter(s) stayed zero: those races were not tested", zero);
	printf("# stress: PASS (seed %lu)\n", seed);
	return 0;
}
