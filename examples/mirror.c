// SPDX-License-Identifier: MIT
/*
 * A complete driver-side mirror (docs/notifiers.md): a toy device keeps its
 * own page table for a range of an address space, filled with the retry
 * loop of the interval-notifier protocol and torn down by invalidations.
 * Uses the public API only.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hmmu/hmmu.h>

#define NPAGES 16
#define PAGE HMMU_PAGE_SIZE

struct toy_mirror {
	struct hmmu_interval_notifier notifier;
	pthread_mutex_t lock;		/* the driver lock: protects pfns[] */
	unsigned long start;		/* first mirrored address */
	unsigned long pfns[NPAGES];	/* device page table; 0 = not mapped */
	unsigned long invalidations;	/* under lock */
};

/* Invalidate callback: called before the CPU entries of @range change. */
static bool toy_invalidate(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
			   unsigned long cur_seq)
{
	struct toy_mirror *m = (struct toy_mirror *)((char *)sub - offsetof(struct toy_mirror, notifier));
	unsigned long end = m->start + NPAGES * PAGE;

	if (hmmu_notifier_range_blockable(range))
		pthread_mutex_lock(&m->lock);
	else if (pthread_mutex_trylock(&m->lock))
		return false;		/* the reaper will try again later */
	hmmu_interval_set_seq(sub, cur_seq);	/* unconditionally, under the lock */
	for (unsigned long a = range->start > m->start ? range->start : m->start; a < range->end && a < end;
	     a += PAGE)
		m->pfns[(a - m->start) / PAGE] = 0;
	m->invalidations++;
	pthread_mutex_unlock(&m->lock);
	return true;
}

static const struct hmmu_interval_notifier_ops toy_ops = { .invalidate = toy_invalidate };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Read the CPU page table for the range: page frame numbers, no references kept. */
static long toy_snapshot(struct hmmu_mm *mm, unsigned long start, unsigned long *pfns)
{
	struct hmmu_page *pages[NPAGES];
	long n = hmmu_get_user_pages_remote(mm, start, NPAGES, HMMU_FOLL_WRITE, pages);

	for (long i = 0; i < n; i++) {
		pfns[i] = hmmu_page_to_pfn(pages[i]);
		hmmu_put_page(pages[i]);	/* validity now rests on the notifier */
	}
	return n == NPAGES ? 0 : (n < 0 ? n : -EFAULT);
}

/* The retry loop (spec 1.8): fill the device page table for the range. */
static int toy_mirror_fault(struct toy_mirror *m, struct hmmu_mm *mm)
{
	double deadline = now_s() + hmmu_retry_timeout_ms() / 1000.0;
	unsigned long pfns[NPAGES];
	int err;

	if (!hmmu_mmget_not_zero(mm))
		return -EFAULT;
	for (;;) {
		unsigned long seq;

		err = -EBUSY;
		if (now_s() > deadline)
			break;
		seq = hmmu_interval_read_begin(&m->notifier);	/* no driver lock held */
		hmmu_mmap_read_lock(mm);
		err = toy_snapshot(mm, m->start, pfns);
		hmmu_mmap_read_unlock(mm);
		if (err)
			break;
		pthread_mutex_lock(&m->lock);
		if (hmmu_interval_read_retry(&m->notifier, seq)) {
			pthread_mutex_unlock(&m->lock);
			continue;	/* an invalidation raced with us */
		}
		memcpy(m->pfns, pfns, sizeof(pfns));	/* program the device */
		pthread_mutex_unlock(&m->lock);
		break;
	}
	hmmu_mmput(mm);
	return err;
}

/* What the device reads at page @i through its own page table. */
static int toy_device_read(struct toy_mirror *m, unsigned long i, char *out)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&m->lock);
	if (m->pfns[i]) {
		*out = *(char *)hmmu_page_address(hmmu_pfn_to_page(m->pfns[i]));
		ret = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int fail(const char *what, long err)
{
	fprintf(stderr, "mirror example: %s: %s\n", what, strerror((int)-err));
	return 1;
}

int main(void)
{
	struct toy_mirror m = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct hmmu_mm *mm;
	long addr, err;
	char c;

	if ((err = hmmu_init(NULL)) || (err = hmmu_mm_create(HMMU_MM_DEFAULT, &mm)))
		return fail("set-up", err);
	addr = hmmu_mmap(mm, 0, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (addr < 0)
		return fail("hmmu_mmap", addr);
	for (unsigned long i = 0; i < NPAGES; i++) {
		c = (char)('a' + i);
		hmmu_access(mm, addr + i * PAGE, &c, 1, HMMU_ACCESS_WRITE);
	}
	m.start = (unsigned long)addr;
	if ((err = hmmu_interval_notifier_insert(&m.notifier, mm, m.start, NPAGES * PAGE, &toy_ops)))
		return fail("hmmu_interval_notifier_insert", err);
	if ((err = toy_mirror_fault(&m, mm)))
		return fail("mirror fault", err);
	toy_device_read(&m, 3, &c);
	printf("device reads page 3: '%c'\n", c);
	hmmu_munmap(mm, addr + 8 * PAGE, 8 * PAGE);	/* the CPU unmaps the upper half */
	printf("after munmap: device page 3 %s, page 12 %s, %lu invalidation(s)\n",
	       toy_device_read(&m, 3, &c) ? "gone" : "mapped", toy_device_read(&m, 12, &c) ? "gone" : "mapped",
	       m.invalidations);
	hmmu_interval_notifier_remove(&m.notifier);
	hmmu_mmput(mm);
	return hmmu_exit() ? fail("hmmu_exit", -EBUSY) : 0;
}
