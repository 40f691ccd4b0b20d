// SPDX-License-Identifier: MIT
/*
 * get_user_pages and pin_user_pages: fault pages in and hand out
 * references (FOLL_GET) or pins (FOLL_PIN, counted separately so that
 * hmmu_page_maybe_dma_pinned() and migration's pin check see them).
 */
#include "internal.h"

/* Can GUP touch @vma with @gup_flags? */
static bool hmmu_gup_vma_ok(const struct hmmu_vma *vma, unsigned int gup_flags)
{
	unsigned long need = gup_flags & HMMU_FOLL_WRITE ? HMMU_VM_WRITE : HMMU_VM_READ;

	return vma && !(vma->vm_flags & (HMMU_VM_IO | HMMU_VM_PFNMAP)) && (vma->vm_flags & need);
}

/* Take the reference GUP hands out; entry lock held. */
static void hmmu_gup_grab(struct hmmu_page *page, unsigned int gup_flags)
{
	hmmu_get_page(page);
	if (gup_flags & HMMU_FOLL_PIN)
		atomic_fetch_add_explicit(&hmmu_compound_head(page)->_pincount, 1, memory_order_relaxed);
}

/*
 * A long-term pin may not hold device-coherent memory (spec 4.2): the page
 * found under the entry lock (held on entry, released here) moves to a new
 * system page first, then the caller follows the entry again.  0, or
 * -EBUSY when the page cannot move now.
 */
static int hmmu_gup_migrate_coherent(struct hmmu_mm *mm, struct hmmu_page *page, struct hmmu_pt *pt)
{
	hmmu_get_page(page);	/* consumed by the migration */
	hmmu_pt_unlock(pt);
	return hmmu_migrate_device_coherent_page(page);
}

/*
 * One page: follow its entry, faulting until it allows the access.  A
 * device-private entry is not present: the fault brings it back through
 * its driver's migrate_to_ram, so GUP never returns a device-private page.
 */
static long hmmu_gup_one(struct hmmu_mm *mm, unsigned long addr, unsigned int gup_flags, struct hmmu_page **pagep)
{
	struct hmmu_vma *vma = hmmu_vma_lookup(mm, addr);
	bool write = gup_flags & HMMU_FOLL_WRITE;
	unsigned int fflags = HMMU_FAULT_FLAG_REMOTE | (write ? HMMU_FAULT_FLAG_WRITE : 0);
	struct hmmu_pt *pt;
	hmmu_pte_t *ptep;
	int err;

	if (!hmmu_gup_vma_ok(vma, gup_flags))
		return -EFAULT;
	for (;;) {
		struct hmmu_page *page = hmmu_follow_page_lock(mm, addr, gup_flags & HMMU_FOLL_WRITE, &pt, &ptep);

		if (hmmu_is_err(page))
			return -EFAULT;		/* special entry: no struct page to hand out */
		if (page && (gup_flags & HMMU_FOLL_LONGTERM) && hmmu_is_device_coherent_page(page)) {
			if (hmmu_gup_migrate_coherent(mm, page, pt))
				return -EBUSY;
			continue;
		}
		if (page) {
			hmmu_gup_grab(page, gup_flags);
			hmmu_pt_unlock(pt);
			*pagep = page;
			return 0;
		}
		err = hmmu_vm_fault_errno(hmmu_handle_mm_fault(vma, addr, fflags));
		if (err)
			return err;
	}
}

/* Give back what hmmu_gup() handed out in @pages[0..@n). */
static void hmmu_gup_release(struct hmmu_page **pages, unsigned long n, unsigned int gup_flags)
{
	for (unsigned long i = 0; i < n; i++) {
		if (gup_flags & HMMU_FOLL_PIN)
			hmmu_unpin_user_page(pages[i]);
		else
			hmmu_put_page(pages[i]);
	}
}

/*
 * Context: mmap_lock held (read).  A failed long-term migration fails the
 * whole call with -EBUSY (nothing handed out), as in Linux; other errors
 * end the range early.
 */
static long hmmu_gup(struct hmmu_mm *mm, unsigned long start, unsigned long nr_pages, unsigned int gup_flags,
		     struct hmmu_page **pages)
{
	unsigned long i;
	long err = 0;

	if (!mm || (!pages && nr_pages) || start & ~HMMU_PAGE_MASK || nr_pages > HMMU_TASK_SIZE >> HMMU_PAGE_SHIFT ||
	    start > HMMU_TASK_SIZE - (nr_pages << HMMU_PAGE_SHIFT) ||
	    gup_flags & ~(HMMU_FOLL_WRITE | HMMU_FOLL_GET | HMMU_FOLL_PIN | HMMU_FOLL_LONGTERM))
		return -EINVAL;
	hmmu_mmap_assert_locked(mm);
	for (i = 0; i < nr_pages && !err; i++)
		err = hmmu_gup_one(mm, start + (i << HMMU_PAGE_SHIFT), gup_flags, &pages[i]);
	if (err)
		i--;
	if (err == -EBUSY) {
		hmmu_gup_release(pages, i, gup_flags);
		return err;
	}
	if (gup_flags & HMMU_FOLL_LONGTERM)
		atomic_fetch_add_explicit(&mm->nr_longterm_pins, i, memory_order_relaxed);
	return i ? (long)i : err;
}

long hmmu_get_user_pages_remote(struct hmmu_mm *mm, unsigned long start, unsigned long nr_pages,
				unsigned int gup_flags, struct hmmu_page **pages)
{
	if (gup_flags & HMMU_FOLL_PIN)
		return -EINVAL;
	return hmmu_gup(mm, start, nr_pages, gup_flags | HMMU_FOLL_GET, pages);
}

long hmmu_pin_user_pages_remote(struct hmmu_mm *mm, unsigned long start, unsigned long nr_pages,
				unsigned int gup_flags, struct hmmu_page **pages)
{
	if (gup_flags & HMMU_FOLL_GET)
		return -EINVAL;
	return hmmu_gup(mm, start, nr_pages, gup_flags | HMMU_FOLL_PIN, pages);
}

void hmmu_unpin_user_page(struct hmmu_page *page)
{
	struct hmmu_page *head;
	int old;

	if (!page)
		return;
	head = hmmu_compound_head(page);
	old = atomic_fetch_sub_explicit(&head->_pincount, 1, memory_order_relaxed);
	HMMU_BUG_ON(old <= 0);
	hmmu_put_page(head);
}

void hmmu_unpin_user_pages(struct hmmu_page **pages, unsigned long npages)
{
	for (unsigned long i = 0; pages && i < npages; i++)
		hmmu_unpin_user_page(pages[i]);
}
