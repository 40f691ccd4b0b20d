// SPDX-License-Identifier: MIT
/*
 * dmirror mirrors (spec 5.2-5.4): one per open, bound to the mm it was
 * opened on, with a device page table kept coherent by an interval
 * notifier over the whole address space.
 *
 *   invalidate   the notifier callback: take the mirror mutex (try-lock
 *                when not blockable), set_seq, erase [start, end] of the
 *                table (inclusive end, as the kernel driver) unless the
 *                event is our own migration, unlock
 *   fault        the device faulting a range in: hmmu_range_fault in the
 *                canonical read_begin / range_fault / read_retry loop
 *                (spec 1.8), then the table is filled under the mutex
 *   pt_copy      the device reading or writing through its table, one
 *                leaf (512 pages) per mutex hold
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmirror_priv.h"

uint64_t hmmu_dmirror_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Take the mirror mutex for an invalidation: try-lock when @range may not sleep. */
static bool dmirror_lock_for(struct hmmu_dmirror *mirror, const struct hmmu_notifier_range *range)
{
	if (hmmu_notifier_range_blockable(range)) {
		pthread_mutex_lock(&mirror->mutex);
		return true;
	}
	return pthread_mutex_trylock(&mirror->mutex) == 0;
}

/*
 * The mirror's invalidate callback (spec 5.4).  Context: inside an
 * invalidation of the mirrored mm, so possibly with its mmap_lock, page
 * locks and the reverse-map lock held; takes only the mirror mutex.
 *
 * MIGRATE events whose owner is our device leave the table alone: the
 * migration code updates it itself, and entries of pages that do not move
 * stay valid.  Unlike the kernel driver, which returns at once, the
 * sequence is still advanced under the mutex: a device fault that read
 * the CPU page table before the migration collected a page must not
 * store that page after the migration dropped its entries (it retries
 * instead).  Returns false only when the range is not blockable and the
 * mutex is busy.
 */
static bool dmirror_invalidate(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
			       unsigned long cur_seq)
{
	struct hmmu_dmirror *mirror = dmirror_container_of(sub, struct hmmu_dmirror, notifier);
	bool own = range->event == HMMU_NOTIFY_MIGRATE && range->owner == mirror->mdevice;

	if (!dmirror_lock_for(mirror, range))
		return false;
	hmmu_interval_set_seq(sub, cur_seq);
	if (!own)
		hmmu_dmirror_pt_erase(&mirror->pt, range->start >> HMMU_PAGE_SHIFT,
				      range->end >> HMMU_PAGE_SHIFT);
	pthread_mutex_unlock(&mirror->mutex);
	return true;
}

static const struct hmmu_interval_notifier_ops dmirror_notifier_ops = {
	.invalidate = dmirror_invalidate,
};

/* ------------------------------------------------------------------ */
/* Open and close                                                      */
/* ------------------------------------------------------------------ */

/*
 * Open a mirror of @mm on @mdevice.  Context: no hmmu lock held (the
 * notifier insert may take @mm's mmap_lock for write).  Returns 0, -EINVAL
 * (NULL argument, @mm without users) or -ENOMEM.
 */
int hmmu_dmirror_open(struct hmmu_dmirror_device *mdevice, struct hmmu_mm *mm, struct hmmu_dmirror **mirrorp)
{
	struct hmmu_dmirror *mirror;
	int err;

	if (!mdevice || !mm || !mirrorp)
		return -EINVAL;
	mirror = calloc(1, sizeof(*mirror));
	if (!mirror)
		return -ENOMEM;
	mirror->mdevice = mdevice;
	mirror->mm = mm;
	pthread_mutex_init(&mirror->mutex, NULL);
	hmmu_dmirror_pt_init(&mirror->pt);
	err = hmmu_interval_notifier_insert(&mirror->notifier, mm, 0, ~0UL & HMMU_PAGE_MASK, &dmirror_notifier_ops);
	if (err) {
		pthread_mutex_destroy(&mirror->mutex);
		free(mirror);
		return err == -ENOMEM ? -ENOMEM : -EINVAL;
	}
	pthread_mutex_lock(&mdevice->mirrors_lock);
	mirror->next = mdevice->mirrors;
	mdevice->mirrors = mirror;
	mdevice->nr_mirrors++;
	pthread_mutex_unlock(&mdevice->mirrors_lock);
	*mirrorp = mirror;
	return 0;
}

static void dmirror_unlink(struct hmmu_dmirror *mirror)
{
	struct hmmu_dmirror_device *mdevice = mirror->mdevice;

	pthread_mutex_lock(&mdevice->mirrors_lock);
	for (struct hmmu_dmirror **pp = &mdevice->mirrors; *pp; pp = &(*pp)->next)
		if (*pp == mirror) {
			*pp = mirror->next;
			break;
		}
	pthread_mutex_unlock(&mdevice->mirrors_lock);
}

/*
 * Close @mirror (spec 5.2): unlink it from the device (migrations stop
 * dropping its entries), remove the notifier (waits for a callback in
 * flight), then evict every page of the device, all mirrors' pages, back
 * to system memory, retrying busy pages for up to hmmu_retry_timeout_ms()
 * (pages still busy then stay on the device; RELEASE and destroy wait for
 * them), then free the mirror.  Context: no hmmu lock held, not from a
 * callback.  Returns 0 or -EINVAL.
 */
int hmmu_dmirror_close(struct hmmu_dmirror *mirror)
{
	struct hmmu_dmirror_device *mdevice;

	if (!mirror)
		return -EINVAL;
	mdevice = mirror->mdevice;
	dmirror_unlink(mirror);
	hmmu_interval_notifier_remove(&mirror->notifier);
	pthread_mutex_lock(&mdevice->release_lock);
	hmmu_dmirror_device_evict(mdevice, false);
	pthread_mutex_unlock(&mdevice->release_lock);
	hmmu_dmirror_pt_destroy(&mirror->pt);
	pthread_mutex_destroy(&mirror->mutex);
	free(mirror);
	/* Only now may destroy proceed: the device was in use until here. */
	pthread_mutex_lock(&mdevice->mirrors_lock);
	mdevice->nr_mirrors--;
	pthread_mutex_unlock(&mdevice->mirrors_lock);
	return 0;
}

/*
 * Drop the device mappings of the pages a migration step moves: in every
 * mirror of @mdevice on @mm except @except (NULL: all), the entry of each
 * page of @args that has a destination.  A migration of our own device's
 * pages emits MIGRATE invalidations that all of these mirrors leave alone,
 * so the migration code does it.  Context: takes mirrors_lock, then each
 * mirror's mutex once; the caller holds neither.
 */
void hmmu_dmirror_mm_erase(struct hmmu_dmirror_device *mdevice, struct hmmu_mm *mm,
			   const struct hmmu_migrate_vma *args, const struct hmmu_dmirror *except)
{
	unsigned long vpn = args->start >> HMMU_PAGE_SHIFT;

	pthread_mutex_lock(&mdevice->mirrors_lock);
	for (struct hmmu_dmirror *m = mdevice->mirrors; m; m = m->next) {
		if (m == except || dmirror_mm(m) != mm)
			continue;
		pthread_mutex_lock(&m->mutex);
		for (unsigned long i = 0; i < args->npages; i++)
			if (args->dst[i])
				hmmu_dmirror_pt_erase(&m->pt, vpn + i, vpn + i);
		pthread_mutex_unlock(&m->mutex);
	}
	pthread_mutex_unlock(&mdevice->mirrors_lock);
}

/* ------------------------------------------------------------------ */
/* Device faults                                                       */
/* ------------------------------------------------------------------ */

/*
 * The canonical driver loop of spec 1.8 around hmmu_range_fault(@range):
 * read_begin with no lock held, range_fault under the mmap_lock for read,
 * then the mirror mutex and read_retry; retries on -EBUSY or a collision
 * until hmmu_retry_timeout_ms() has passed.  The caller holds a user
 * reference on the mm and no dmirror lock.  Returns 0 with mirror->mutex
 * HELD and range->hmm_pfns valid under it, or -EBUSY (timeout), -EFAULT,
 * -EPERM, -EINVAL from hmmu_range_fault (mutex not held).
 */
int hmmu_dmirror_range_fault_and_lock(struct hmmu_dmirror *mirror, struct hmmu_range *range)
{
	struct hmmu_mm *mm = dmirror_mm(mirror);
	uint64_t deadline = hmmu_dmirror_now_ms() + hmmu_retry_timeout_ms();
	int ret;

	for (;;) {
		if (hmmu_dmirror_now_ms() > deadline)
			return -EBUSY;
		range->notifier_seq = hmmu_interval_read_begin(range->notifier);
		hmmu_mmap_read_lock(mm);
		ret = hmmu_range_fault(range);
		hmmu_mmap_read_unlock(mm);
		if (ret == -EBUSY)
			continue;
		if (ret)
			return ret;
		pthread_mutex_lock(&mirror->mutex);
		if (!hmmu_interval_read_retry(range->notifier, range->notifier_seq))
			return 0;
		pthread_mutex_unlock(&mirror->mutex);
	}
}

/*
 * Store the faulted pages of @range in the table (the kernel driver's
 * do_fault): tag WRITE iff the CPU mapping is writable.  A page of our own
 * memory (private or coherent) is stored LOCAL: its data lives in its
 * backing page.  Caller holds mirror->mutex.  Returns 0, -EFAULT (an entry
 * not valid, or not writable when @write) or -ENOMEM.
 */
static int dmirror_fault_store(struct hmmu_dmirror *mirror, const struct hmmu_range *range, bool write)
{
	unsigned long n = (range->end - range->start) >> HMMU_PAGE_SHIFT;
	unsigned long vpn = range->start >> HMMU_PAGE_SHIFT;

	for (unsigned long i = 0; i < n; i++) {
		unsigned long pfn = range->hmm_pfns[i], tag;
		struct hmmu_page *page = hmmu_hmm_pfn_to_page(pfn);
		int err;

		if (!(pfn & HMMU_PFN_VALID) || (pfn & HMMU_PFN_ERROR) || !page)
			return -EFAULT;
		if (write && !(pfn & HMMU_PFN_WRITE))
			return -EFAULT;
		tag = pfn & HMMU_PFN_WRITE ? DMIRROR_TAG_WRITE : DMIRROR_TAG_READ;
		if (page->pgmap && page->pgmap->owner == mirror->mdevice)
			tag |= DMIRROR_ENTRY_LOCAL;
		err = hmmu_dmirror_pt_store(&mirror->pt, vpn + i, dmirror_entry_make(page, tag));
		if (err)
			return err;
	}
	return 0;
}

/*
 * The device faults [start, end) in, for write if @write (the kernel
 * driver's dmirror_fault), in steps of 64 pages.  Context: no dmirror lock
 * held.  Returns 0, -EFAULT (the mm is gone, or a page cannot be faulted),
 * -EPERM (write to a read-only mapping), -EBUSY (retry bound), -ENOMEM.
 */
int hmmu_dmirror_fault(struct hmmu_dmirror *mirror, unsigned long start, unsigned long end, bool write)
{
	unsigned long pfns[DMIRROR_BATCH];
	struct hmmu_range range = {
		.notifier = &mirror->notifier,
		.hmm_pfns = pfns,
		.default_flags = HMMU_PFN_REQ_FAULT | (write ? HMMU_PFN_REQ_WRITE : 0),
		.dev_private_owner = mirror->mdevice,
	};
	int ret = 0;

	if (!hmmu_mmget_not_zero(dmirror_mm(mirror)))
		return -EFAULT;
	for (unsigned long addr = start; addr < end && !ret; addr = range.end) {
		range.start = addr;
		range.end = end - addr > DMIRROR_BATCH * DMIRROR_PAGE ? addr + DMIRROR_BATCH * DMIRROR_PAGE : end;
		ret = hmmu_dmirror_range_fault_and_lock(mirror, &range);
		if (ret)
			break;
		ret = dmirror_fault_store(mirror, &range, write);
		pthread_mutex_unlock(&mirror->mutex);
	}
	hmmu_mmput(dmirror_mm(mirror));
	return ret;
}

/*
 * The data of the page entry @e maps, for a load, or for a store if
 * @write; NULL when @e is empty or (@write) not tagged WRITE.  A LOCAL
 * page is stamped used now for the LRU.  Caller holds mirror->mutex
 * (the entry, hence the page, stays valid while it is held).
 */
char *hmmu_dmirror_entry_access(dmirror_entry_t e, bool write)
{
	struct hmmu_page *page = dmirror_entry_page(e);

	if (!e || (write && dmirror_entry_tag(e) != DMIRROR_TAG_WRITE))
		return NULL;
	if (!dmirror_entry_local(e))
		return hmmu_page_address(page);
	dmirror_page_touch(page);
	return hmmu_page_address(dmirror_backing_page(page));
}

/*
 * Copy up to @n pages from @vpn, all in one leaf of the table, between
 * the device's view and @buf (see hmmu_dmirror_pt_copy).  Caller holds
 * mirror->mutex.  Returns the pages copied (< @n: a page had no suitable
 * entry).
 */
static unsigned long dmirror_leaf_copy(struct hmmu_dmirror *mirror, unsigned long vpn, unsigned long n, char *buf,
				       bool write, bool stream)
{
	const uintptr_t *leaf = hmmu_dmirror_pt_leaf(&mirror->pt, vpn);
	unsigned long done = 0, i = vpn % DMIRROR_PT_SLOTS;

	for (; leaf && done < n; done++, i++, buf += DMIRROR_PAGE) {
		char *p = hmmu_dmirror_entry_access(leaf[i], write);

		if (!p)
			break;
		if (write)
			memcpy(p, buf, DMIRROR_PAGE);
		else
			hmmu_dmirror_copy_page(buf, p, stream);
	}
	if (stream)
		hmmu_dmirror_copy_fence();	/* the copies are done before the entries may go */
	return done;
}

/*
 * Copy pages [vpn, vpn + npages) between the device's view and @buf: out
 * of the table into @buf, or, with @write, from @buf into pages whose
 * entry is tagged WRITE.  Stops at the first page without a (suitable)
 * entry.  Takes mirror->mutex once per leaf of the table, so an
 * invalidation waits for at most 512 page copies.  @buf must not be memory
 * whose fault path could invalidate this mirror.  Returns the pages copied.
 */
unsigned long hmmu_dmirror_pt_copy(struct hmmu_dmirror *mirror, unsigned long vpn, unsigned long npages,
				   char *buf, bool write)
{
	bool stream = !write && npages >= DMIRROR_STREAM_PAGES;
	unsigned long done = 0;

	while (done < npages) {
		unsigned long room = DMIRROR_PT_SLOTS - (vpn + done) % DMIRROR_PT_SLOTS;
		unsigned long n = room < npages - done ? room : npages - done, copied;

		pthread_mutex_lock(&mirror->mutex);
		copied = dmirror_leaf_copy(mirror, vpn + done, n, buf + done * DMIRROR_PAGE, write, stream);
		pthread_mutex_unlock(&mirror->mutex);
		done += copied;
		if (copied < n)
			break;
	}
	return done;
}
