// SPDX-License-Identifier: MIT
/*
 * Address spaces: creation, the two reference counts, the mmap_lock,
 * teardown and statistics.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Address spaces with users: incremented by create, decremented by the last mmput. */
static atomic_long hmmu_live_mms;

long hmmu_mm_nr_live(void)
{
	return atomic_load(&hmmu_live_mms);
}

int hmmu_mm_create(unsigned int flags, struct hmmu_mm **mmp)
{
	pthread_rwlockattr_t attr;
	struct hmmu_mm *mm;

	int err;

	if ((flags & ~HMMU_MM_HOST) || !mmp || !hmmu_is_initialised())
		return -EINVAL;
	mm = calloc(1, sizeof(*mm));
	if (!mm)
		return -ENOMEM;
	mm->pgd = hmmu_pt_alloc(NULL, HMMU_PT_LEVELS - 1);
	if (!mm->pgd) {
		free(mm);
		return -ENOMEM;
	}
	pthread_rwlockattr_init(&attr);
	/* Writer-preferring: a waiting writer stops new readers. */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&mm->mmap_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&mm->page_table_lock, NULL);
	CDS_INIT_LIST_HEAD(&mm->vma_list);
	atomic_init(&mm->mm_users, 1);
	atomic_init(&mm->mm_count, 1);
	atomic_fetch_add(&hmmu_live_mms, 1);
	if (flags & HMMU_MM_HOST) {
		err = hmmu_host_create(mm);
		if (err) {
			hmmu_mmput(mm);
			return err;
		}
	}
	*mmp = mm;
	return 0;
}

void hmmu_mmgrab(struct hmmu_mm *mm)
{
	if (!mm)
		return;
	atomic_fetch_add_explicit(&mm->mm_count, 1, memory_order_relaxed);
}

void hmmu_mmdrop(struct hmmu_mm *mm)
{
	if (!mm || atomic_fetch_sub_explicit(&mm->mm_count, 1, memory_order_acq_rel) != 1)
		return;
	hmmu_notifier_subscriptions_destroy(mm);
	pthread_rwlock_destroy(&mm->mmap_lock);
	pthread_mutex_destroy(&mm->page_table_lock);
	free(mm);
}

void hmmu_mmget(struct hmmu_mm *mm)
{
	int old;

	if (!mm)
		return;
	old = atomic_fetch_add_explicit(&mm->mm_users, 1, memory_order_relaxed);
	HMMU_BUG_ON(old <= 0);
}

bool hmmu_mmget_not_zero(struct hmmu_mm *mm)
{
	int old = mm ? atomic_load_explicit(&mm->mm_users, memory_order_relaxed) : 0;

	do {
		if (old == 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&mm->mm_users, &old, old + 1, memory_order_acquire,
							 memory_order_relaxed));
	return true;
}

/*
 * The last user is gone: tell the secondary MMUs (release, before any page
 * is freed: spec 1.6), then unmap everything under one UNMAP invalidation
 * and free every page table and VMA.  Nobody else can fault or walk (they
 * would need a user reference); the write lock keeps the helpers' lock
 * assertions honest.
 */
static void hmmu_exit_mmap(struct hmmu_mm *mm)
{
	struct hmmu_notifier_range range;
	struct hmmu_vma *vma, *tmp;

	hmmu_notifier_release(mm);
	hmmu_mmap_write_lock(mm);
	hmmu_notify_start(&range, HMMU_NOTIFY_UNMAP, mm, 0, ~0UL);
	cds_list_for_each_entry(vma, &mm->vma_list, vm_list)
		hmmu_zap_page_range(vma, vma->vm_start, vma->vm_end);
	hmmu_notifier_invalidate_range_end(&range);
	hmmu_free_pgtables(mm, 0, HMMU_TASK_SIZE);
	cds_list_for_each_entry_safe(vma, tmp, &mm->vma_list, vm_list) {
		hmmu_vma_file_writeback(vma);
		hmmu_vma_unlink(mm, vma);
		hmmu_vma_free(vma);
	}
	HMMU_BUG_ON(atomic_load(&mm->nr_pgtables) != 0 || atomic_load(&mm->pgd->nr_used) != 0);
	hmmu_mmap_write_unlock(mm);
	hmmu_pt_free(NULL, mm->pgd);
	mm->pgd = NULL;
}

void hmmu_mmput(struct hmmu_mm *mm)
{
	if (!mm || atomic_fetch_sub_explicit(&mm->mm_users, 1, memory_order_acq_rel) != 1)
		return;
	hmmu_exit_mmap(mm);
	if (mm->host)
		hmmu_host_release(mm);
	atomic_fetch_sub(&hmmu_live_mms, 1);
	hmmu_mmdrop(mm);
}

/* ------------------------------------------------------------------ */
/* mmap_lock                                                           */
/* ------------------------------------------------------------------ */

void hmmu_mmap_read_lock(struct hmmu_mm *mm)
{
	if (!mm)
		return;
	pthread_rwlock_rdlock(&mm->mmap_lock);
#ifdef HMMU_DEBUG
	atomic_fetch_add_explicit(&mm->mmap_readers, 1, memory_order_relaxed);
#endif
}

bool hmmu_mmap_read_trylock(struct hmmu_mm *mm)
{
	if (!mm || pthread_rwlock_tryrdlock(&mm->mmap_lock))
		return false;
#ifdef HMMU_DEBUG
	atomic_fetch_add_explicit(&mm->mmap_readers, 1, memory_order_relaxed);
#endif
	return true;
}

void hmmu_mmap_read_unlock(struct hmmu_mm *mm)
{
	if (!mm)
		return;
#ifdef HMMU_DEBUG
	atomic_fetch_sub_explicit(&mm->mmap_readers, 1, memory_order_relaxed);
#endif
	pthread_rwlock_unlock(&mm->mmap_lock);
}

void hmmu_mmap_write_lock(struct hmmu_mm *mm)
{
	if (!mm)
		return;
	pthread_rwlock_wrlock(&mm->mmap_lock);
#ifdef HMMU_DEBUG
	atomic_store_explicit(&mm->mmap_writer, 1, memory_order_relaxed);
#endif
}

void hmmu_mmap_write_unlock(struct hmmu_mm *mm)
{
	if (!mm)
		return;
#ifdef HMMU_DEBUG
	atomic_store_explicit(&mm->mmap_writer, 0, memory_order_relaxed);
#endif
	pthread_rwlock_unlock(&mm->mmap_lock);
}

/* Debug builds: the mmap_lock is held (by someone: the lock has no owner field). */
void hmmu_mmap_assert_locked(struct hmmu_mm *mm)
{
#ifdef HMMU_DEBUG
	HMMU_BUG_ON(!atomic_load_explicit(&mm->mmap_readers, memory_order_relaxed) &&
		    !atomic_load_explicit(&mm->mmap_writer, memory_order_relaxed));
#endif
}

void hmmu_mmap_assert_write_locked(struct hmmu_mm *mm)
{
#ifdef HMMU_DEBUG
	HMMU_BUG_ON(!atomic_load_explicit(&mm->mmap_writer, memory_order_relaxed));
#endif
}

/* ------------------------------------------------------------------ */
/* Statistics                                                          */
/* ------------------------------------------------------------------ */

static int hmmu_stats_pte_range(hmmu_pte_t *ptep, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_mm_stats *st = walk->private;

	for (; addr < end; addr += HMMU_PAGE_SIZE, ptep++) {
		hmmu_pte_t e = hmmu_pte_read(ptep);

		if (hmmu_pte_present(e) && hmmu_is_zero_pfn(hmmu_pte_pfn(e)))
			st->zero_pages++;
		else if (hmmu_pte_present(e))
			st->present_pages++;
		else if (!hmmu_pte_none(e))
			st->nonpresent_entries++;
	}
	return 0;
}

static int hmmu_stats_pmd_entry(hmmu_pte_t *pmdp, unsigned long addr, unsigned long end, struct hmmu_mm_walk *walk)
{
	struct hmmu_mm_stats *st = walk->private;
	hmmu_pte_t e = hmmu_pte_read(pmdp);

	if (hmmu_pmd_leaf(e)) {
		st->huge_pmds++;
		st->present_pages += HMMU_PT_ENTRIES;
	} else {
		st->nonpresent_entries++;
	}
	return 0;
}

static const struct hmmu_walk_ops hmmu_stats_ops = {
	.pte_range = hmmu_stats_pte_range,
	.pmd_entry = hmmu_stats_pmd_entry,
};

int hmmu_mm_get_stats(struct hmmu_mm *mm, struct hmmu_mm_stats *st)
{
	struct hmmu_vma *vma;

	if (!mm || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	hmmu_mmap_read_lock(mm);
	cds_list_for_each_entry(vma, &mm->vma_list, vm_list) {
		st->nr_vmas++;
		st->mapped_bytes += vma->vm_end - vma->vm_start;
		hmmu_walk_page_range_novma(mm, vma->vm_start, vma->vm_end, &hmmu_stats_ops, st);
	}
	st->page_tables = (unsigned long)atomic_load(&mm->nr_pgtables);
	hmmu_mmap_read_unlock(mm);
	st->faults = atomic_load_explicit(&mm->nr_faults, memory_order_relaxed);
	st->zero_page_faults = atomic_load_explicit(&mm->nr_zero_faults, memory_order_relaxed);
	st->cow_faults = atomic_load_explicit(&mm->nr_cow_faults, memory_order_relaxed);
	return 0;
}

int hmmu_mm_for_each_vma(struct hmmu_mm *mm, int (*fn)(const struct hmmu_vma *vma, void *arg), void *arg)
{
	struct hmmu_vma *vma;
	int ret = 0;

	if (!mm || !fn)
		return -EINVAL;
	hmmu_mmap_read_lock(mm);
	cds_list_for_each_entry(vma, &mm->vma_list, vm_list) {
		ret = fn(vma, arg);
		if (ret)
			break;
	}
	hmmu_mmap_read_unlock(mm);
	return ret;
}
