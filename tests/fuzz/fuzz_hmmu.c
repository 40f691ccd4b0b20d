// SPDX-License-Identifier: MIT
/*
 * The fuzz target: each input is a program of API calls on a fresh mm.
 *
 * The input is a sequence of operations: one opcode byte, then the
 * operation's argument bytes (missing bytes read as zero).  Valid calls
 * (mmap, munmap, mprotect, madvise, mremap, CPU reads and writes,
 * hmm_range_fault, migrate_vma to and from a small device pagemap, dmirror
 * commands, notifiers, fork) are applied to a shadow of every page of a
 * 4 MiB window: whether it is mapped, its protection and the bytes it must
 * hold.  Invalid calls (bad ranges, NULL arrays, unknown flags, wrong
 * owners, double finalize, double unregister) must return the documented
 * errno and change nothing.  After every step the mm is checked against the
 * shadow without disturbing it (VMAs, then a non-faulting hmm_range_fault
 * snapshot whose pages are compared with the shadow) and the page tables
 * validated.  At the end every byte is read back through the CPU, the mm
 * destroyed, and the free page count and allocator validated.
 *
 * A failed check prints the step and aborts (a crash for libFuzzer).
 * docs/fuzzing.md describes the input format and how to replay a crash.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hmmu/dmirror.h>
#include <hmmu/hmmu.h>

#include "fuzz.h"
#include "internal.h"

#define FZ_BASE 0x200000000UL		/* window start, 2 MiB aligned */
#define FZ_NPAGES 1024UL		/* window size in pages (4 MiB) */
#define FZ_END (FZ_BASE + FZ_NPAGES * HMMU_PAGE_SIZE)
#define FZ_MAX_OPS 96			/* operations per input */
#define FZ_DEV_PAGES 64			/* frames of the fuzzer's own pagemap */
#define FZ_PAGE HMMU_PAGE_SIZE
#define FZ_MAX_PINS 8			/* pages one space may hold pinned */
#define FZ_PMD_PAGES_MASK (HMMU_PMD_SIZE / HMMU_PAGE_SIZE - 1)

/* What one page of the window must be. */
struct fz_page {
	bool mapped;
	bool dontfork;			/* MADV_DONTFORK */
	bool maybe_excl;		/* a device-exclusive entry may be there */
	bool forked;			/* shared with the other mm since fork */
	int prot;			/* PROT_NONE, PROT_READ or PROT_READ | PROT_WRITE */
	unsigned char *data;		/* NULL: all zero */
};

/* An interval subscription whose invalidate just bumps the sequence. */
struct fz_isub {
	struct hmmu_interval_notifier sub;
	pthread_mutex_t lock;
	bool live;
};

/* A classic subscription counting its callbacks. */
struct fz_csub {
	struct hmmu_notifier sub;
	unsigned long starts, ends, releases;
	bool live;
};

/* One address space under test: the parent [0] or a forked child [1]. */
struct fz_space {
	struct hmmu_mm *mm;
	struct hmmu_dmirror *mirror[2];	/* on fz_mdev[0] (private), [1] (coherent) */
	struct fz_isub walk;		/* the snapshot's notifier, over the window */
	struct fz_isub extra;		/* one the input inserts and removes */
	struct fz_csub classic;		/* one the input registers and unregisters */
	struct hmmu_page *pins[FZ_MAX_PINS];	/* FOLL_PIN references the input holds */
	long nr_pins;
	struct fz_page pg[FZ_NPAGES];
};

/* The fuzzer's own device-private memory, for raw migrate_vma calls. */
struct fz_dev {
	struct hmmu_dev_pagemap pgmap;
	unsigned long first_pfn;
	bool in_use[FZ_DEV_PAGES];
	unsigned char store[FZ_DEV_PAGES][FZ_PAGE];
};

static struct hmmu_dmirror_device *fz_mdev[2];
static struct fz_dev fz_dev;
static int fz_dev_owner;		/* its pagemap owner's address */
static struct fz_space fz_sp[2];
static long fz_free_base;
static bool fz_trace;

/* The input being decoded. */
static const uint8_t *fz_in;
static size_t fz_len, fz_pos;
static int fz_step;
static const char *fz_opname = "setup";

static void __attribute__((format(printf, 1, 2), noreturn)) fz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz: step %d (%s): ", fz_step, fz_opname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

#define FZ_CHECK(cond, ...)                 \
	do {                                \
		if (!(cond))                \
			fz_fail(__VA_ARGS__); \
	} while (0)

/* ---------------------------------------------------------------------- */
/* Decoding                                                                */
/* ---------------------------------------------------------------------- */

static unsigned int fz_u8(void)
{
	return fz_pos < fz_len ? fz_in[fz_pos++] : 0;
}

static unsigned int fz_u16(void)
{
	unsigned int lo = fz_u8();

	return lo | fz_u8() << 8;
}

/*
 * A page range of the window: 3 bytes.  Mostly 1-16 pages; bytes >= 224
 * give up to 768 pages; 255 gives one 2 MiB-aligned huge page's worth.
 */
static void fz_range(unsigned long *idx, unsigned long *n)
{
	unsigned int i = fz_u16() % FZ_NPAGES, c = fz_u8();

	if (c == 255) {
		*idx = i & ~FZ_PMD_PAGES_MASK;
		*n = HMMU_PMD_SIZE / FZ_PAGE;
		return;
	}
	*idx = i;
	*n = c < 224 ? 1 + c % 16 : 1 + (c - 224) * 24;
	if (*n > FZ_NPAGES - i)
		*n = FZ_NPAGES - i;
}

static unsigned long fz_addr(unsigned long idx)
{
	return FZ_BASE + idx * FZ_PAGE;
}

static int fz_prot(unsigned int sel)
{
	static const int prots[] = { PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE };

	return prots[sel % 3];
}

/* ---------------------------------------------------------------------- */
/* The shadow                                                              */
/* ---------------------------------------------------------------------- */

static void fz_page_clear(struct fz_page *p)
{
	free(p->data);
	memset(p, 0, sizeof(*p));
}

/* The shadow bytes of @p, allocated on first write. */
static unsigned char *fz_page_bytes(struct fz_page *p)
{
	if (!p->data) {
		p->data = calloc(1, FZ_PAGE);
		FZ_CHECK(p->data, "out of memory");
	}
	return p->data;
}

static bool fz_page_is_zero(const struct fz_page *p)
{
	if (!p->data)
		return true;
	for (unsigned long i = 0; i < FZ_PAGE; i++)
		if (p->data[i])
			return false;
	return true;
}

static void fz_expect_bytes(const struct fz_page *p, const unsigned char *got, unsigned long idx,
			    const char *how)
{
	static const unsigned char zero[FZ_PAGE];
	const unsigned char *want = p->data ? p->data : zero;

	if (!memcmp(want, got, FZ_PAGE))
		return;
	for (unsigned long i = 0; i < FZ_PAGE; i++)
		FZ_CHECK(want[i] == got[i], "%s: byte %#lx holds %#x, shadow %#x", how,
			 fz_addr(idx) + i, got[i], want[i]);
}

/* The first page of [idx, idx + n) that does not allow @prot, or idx + n. */
static unsigned long fz_first_denied(struct fz_space *s, unsigned long idx, unsigned long n, int prot)
{
	for (unsigned long i = idx; i < idx + n; i++)
		if (!s->pg[i].mapped || (s->pg[i].prot & prot) != prot)
			return i;
	return idx + n;
}

/* ---------------------------------------------------------------------- */
/* Notifiers                                                               */
/* ---------------------------------------------------------------------- */

static bool fz_isub_invalidate(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
			       unsigned long cur_seq)
{
	struct fz_isub *is = hmmu_container_of(sub, struct fz_isub, sub);

	if (hmmu_notifier_range_blockable(range))
		pthread_mutex_lock(&is->lock);
	else if (pthread_mutex_trylock(&is->lock))
		return false;
	hmmu_interval_set_seq(sub, cur_seq);
	pthread_mutex_unlock(&is->lock);
	return true;
}

static const struct hmmu_interval_notifier_ops fz_isub_ops = { .invalidate = fz_isub_invalidate };

static int fz_csub_start(struct hmmu_notifier *sub, const struct hmmu_notifier_range *range)
{
	hmmu_container_of(sub, struct fz_csub, sub)->starts++;
	return 0;
}

static void fz_csub_end(struct hmmu_notifier *sub, const struct hmmu_notifier_range *range)
{
	hmmu_container_of(sub, struct fz_csub, sub)->ends++;
}

static void fz_csub_release(struct hmmu_notifier *sub, struct hmmu_mm *mm)
{
	hmmu_container_of(sub, struct fz_csub, sub)->releases++;
}

static const struct hmmu_notifier_ops fz_csub_ops = {
	.invalidate_range_start = fz_csub_start,
	.invalidate_range_end = fz_csub_end,
	.release = fz_csub_release,
};

static void fz_isub_insert(struct fz_isub *is, struct hmmu_mm *mm, unsigned long start, unsigned long len)
{
	pthread_mutex_init(&is->lock, NULL);
	FZ_CHECK(hmmu_interval_notifier_insert(&is->sub, mm, start, len, &fz_isub_ops) == 0,
		 "interval notifier insert");
	is->live = true;
}

static void fz_isub_remove(struct fz_isub *is)
{
	hmmu_interval_notifier_remove(&is->sub);
	pthread_mutex_destroy(&is->lock);
	is->live = false;
}

/* ---------------------------------------------------------------------- */
/* The fuzzer's device pagemap                                             */
/* ---------------------------------------------------------------------- */

static unsigned long fz_dev_index(const struct hmmu_page *page)
{
	return hmmu_page_to_pfn(page) - fz_dev.first_pfn;
}

static bool fz_dev_page(const struct hmmu_page *page)
{
	return page && page->pgmap == &fz_dev.pgmap;
}

static void fz_dev_page_free(struct hmmu_page *page)
{
	unsigned long i = fz_dev_index(page);

	FZ_CHECK(fz_dev.in_use[i] && !hmmu_page_ref_count(page) && !page->mapping,
		 "page_free of frame %lu: not in use, referenced or still anonymous", i);
	fz_dev.in_use[i] = false;
}

/* A free frame of the fuzzer's device, initialised (locked, refcount 1), or NULL. */
static struct hmmu_page *fz_dev_alloc(void)
{
	for (unsigned long i = 0; i < FZ_DEV_PAGES; i++) {
		struct hmmu_page *page;

		if (fz_dev.in_use[i])
			continue;
		fz_dev.in_use[i] = true;
		page = hmmu_pfn_to_page(fz_dev.first_pfn + i);
		hmmu_zone_device_page_init(page);
		return page;
	}
	return NULL;
}

/* Copy the selected sources of @args into new system pages (dst). */
static void fz_fill_to_system(struct hmmu_migrate_vma *args)
{
	for (unsigned long i = 0; i < args->npages; i++) {
		struct hmmu_page *spage = hmmu_migrate_pfn_to_page(args->src[i]), *dpage;
		unsigned long addr = args->start + i * FZ_PAGE;

		if (!spage || !(args->src[i] & HMMU_MIGRATE_PFN_MIGRATE) || !fz_dev_page(spage))
			continue;
		dpage = hmmu_alloc_page_vma(args->vma, addr);
		if (!dpage)
			continue;
		hmmu_lock_page(dpage);
		memcpy(hmmu_page_address(dpage), fz_dev.store[fz_dev_index(spage)], FZ_PAGE);
		args->dst[i] = hmmu_migrate_pfn(hmmu_page_to_pfn(dpage));
	}
}

static hmmu_vm_fault_t fz_dev_migrate_to_ram(struct hmmu_vm_fault *vmf)
{
	unsigned long src = 0, dst = 0;
	struct hmmu_migrate_vma args = {
		.vma = vmf->vma, .start = vmf->address, .end = vmf->address + FZ_PAGE,
		.src = &src, .dst = &dst, .pgmap_owner = &fz_dev_owner,
		.flags = HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE, .fault_page = vmf->page,
	};

	FZ_CHECK(hmmu_page_locked(vmf->page), "migrate_to_ram: fault page not locked");
	if (hmmu_migrate_vma_setup(&args))
		return HMMU_VM_FAULT_SIGBUS;
	fz_fill_to_system(&args);
	hmmu_migrate_vma_pages(&args);
	hmmu_migrate_vma_finalize(&args);
	return 0;
}

static const struct hmmu_dev_pagemap_ops fz_dev_ops = {
	.page_free = fz_dev_page_free,
	.migrate_to_ram = fz_dev_migrate_to_ram,
};

/* ---------------------------------------------------------------------- */
/* Checks                                                                  */
/* ---------------------------------------------------------------------- */

struct fz_vma_walk {
	struct fz_space *s;
	unsigned long next;		/* first window page not yet covered by a VMA */
};

static int fz_prot_of(unsigned long vm_flags)
{
	return (vm_flags & HMMU_VM_READ ? PROT_READ : 0) | (vm_flags & HMMU_VM_WRITE ? PROT_WRITE : 0);
}

/* Every VMA lies in the window over mapped shadow pages of its protection. */
static int fz_check_vma(const struct hmmu_vma *vma, void *arg)
{
	struct fz_vma_walk *w = arg;
	unsigned long first, last;

	FZ_CHECK(vma->vm_start >= FZ_BASE && vma->vm_end <= FZ_END, "VMA [%#lx, %#lx) outside the window",
		 vma->vm_start, vma->vm_end);
	first = (vma->vm_start - FZ_BASE) / FZ_PAGE;
	last = (vma->vm_end - FZ_BASE) / FZ_PAGE;
	for (unsigned long i = w->next; i < first; i++)
		FZ_CHECK(!w->s->pg[i].mapped, "page %#lx mapped in the shadow, no VMA", fz_addr(i));
	for (unsigned long i = first; i < last; i++) {
		const struct fz_page *p = &w->s->pg[i];

		FZ_CHECK(p->mapped, "VMA over page %#lx, unmapped in the shadow", fz_addr(i));
		FZ_CHECK(p->prot == fz_prot_of(vma->vm_flags), "page %#lx: prot %d, shadow %d", fz_addr(i),
			 fz_prot_of(vma->vm_flags), p->prot);
		FZ_CHECK(p->dontfork == !!(vma->vm_flags & HMMU_VM_DONTCOPY), "page %#lx: DONTCOPY differs",
			 fz_addr(i));
	}
	w->next = last;
	return 0;
}

/* The raw CPU entry of window page @idx (for failure messages), or 0. */
static unsigned long fz_pte(struct fz_space *s, unsigned long idx)
{
	struct hmmu_pt *pt;
	bool huge = false;
	hmmu_pte_t *ep, e = 0;

	hmmu_mmap_read_lock(s->mm);
	ep = hmmu_leaf_lookup_lock(s->mm, fz_addr(idx), &pt, &huge);
	if (ep) {
		e = hmmu_pte_read(ep);
		hmmu_pt_unlock(pt);
	}
	hmmu_mmap_read_unlock(s->mm);
	return (unsigned long)e;
}

/* The bytes of the device-private page at window page @idx, read without moving it. */
static void fz_check_private(struct fz_space *s, unsigned long idx, struct hmmu_page *page)
{
	unsigned char buf[FZ_PAGE];

	if (fz_dev_page(page)) {
		fz_expect_bytes(&s->pg[idx], fz_dev.store[fz_dev_index(page)], idx, "own device page");
		return;
	}
	FZ_CHECK(hmmu_dmirror_read(s->mirror[0], fz_addr(idx), buf, 1, NULL) == 0,
		 "device read of its own page %#lx", fz_addr(idx));
	fz_expect_bytes(&s->pg[idx], buf, idx, "dmirror device page");
}

/*
 * One entry of a snapshot against the shadow.  Entries 0 (nothing mapped
 * or a foreign device-private page) are resolved by the second pass with
 * the other owner; returns true when the entry needs it.
 */
static bool fz_check_entry(struct fz_space *s, unsigned long idx, unsigned long pfn, bool last_pass)
{
	struct fz_page *p = &s->pg[idx];
	struct hmmu_page *page;
	void *kaddr;

	if (!p->mapped || !(p->prot & PROT_READ)) {
		FZ_CHECK(pfn & HMMU_PFN_ERROR, "page %#lx: snapshot %#lx, shadow unmapped or PROT_NONE",
			 fz_addr(idx), pfn);
		return false;
	}
	FZ_CHECK(!(pfn & HMMU_PFN_ERROR), "page %#lx: snapshot ERROR for a readable page", fz_addr(idx));
	if (!(pfn & HMMU_PFN_VALID)) {
		/* Empty, device-exclusive or another owner's device page. */
		FZ_CHECK(!last_pass || p->maybe_excl || fz_page_is_zero(p),
			 "page %#lx: nothing mapped but the shadow holds data (entry %#lx)", fz_addr(idx),
			 fz_pte(s, idx));
		return !fz_page_is_zero(p);
	}
	FZ_CHECK(!(pfn & HMMU_PFN_WRITE) || (p->prot & PROT_WRITE), "page %#lx: writable entry in a read-only VMA",
		 fz_addr(idx));
	page = hmmu_hmm_pfn_to_page(pfn);
	FZ_CHECK(page, "page %#lx: snapshot pfn %#lx has no frame", fz_addr(idx), pfn);
	kaddr = hmmu_page_address(page);
	if (kaddr)
		fz_expect_bytes(p, kaddr, idx, "snapshot");
	else
		fz_check_private(s, idx, page);
	return false;
}

/*
 * Snapshot the window with @owner's device pages reported; check the
 * entries @pending marks (all on the first pass), and mark those the
 * second pass must resolve.  Returns whether there are any.
 */
static bool fz_check_pass(struct fz_space *s, unsigned long *pfns, bool *pending, void *owner, bool last_pass)
{
	struct hmmu_range range = {
		.notifier = &s->walk.sub, .start = FZ_BASE, .end = FZ_END, .hmm_pfns = pfns,
		.dev_private_owner = owner,
	};
	bool again = false;
	int ret;

	do {
		range.notifier_seq = hmmu_interval_read_begin(range.notifier);
		memset(pfns, 0, FZ_NPAGES * sizeof(*pfns));
		hmmu_mmap_read_lock(s->mm);
		ret = hmmu_range_fault(&range);
		hmmu_mmap_read_unlock(s->mm);
	} while (ret == -EBUSY);
	FZ_CHECK(ret == 0, "snapshot range_fault: %d", ret);
	for (unsigned long i = 0; i < FZ_NPAGES; i++) {
		if (last_pass && !pending[i])
			continue;
		pending[i] = fz_check_entry(s, i, pfns[i], last_pass);
		again |= pending[i];
	}
	return again;
}

/* Check @s against its shadow without faulting anything in. */
static void fz_check_space(struct fz_space *s)
{
	static unsigned long pfns[FZ_NPAGES];
	static bool pending[FZ_NPAGES];
	struct fz_vma_walk w = { .s = s };

	FZ_CHECK(hmmu_pt_validate(s->mm) == 0, "page tables invalid");
	FZ_CHECK(hmmu_mm_for_each_vma(s->mm, fz_check_vma, &w) == 0, "VMA walk");
	for (unsigned long i = w.next; i < FZ_NPAGES; i++)
		FZ_CHECK(!s->pg[i].mapped, "page %#lx mapped in the shadow, no VMA", fz_addr(i));
	if (fz_check_pass(s, pfns, pending, hmmu_dmirror_device_owner(fz_mdev[0]), false))
		fz_check_pass(s, pfns, pending, &fz_dev_owner, true);
}

static void fz_check_all(void)
{
	for (int i = 0; i < 2; i++)
		if (fz_sp[i].mm)
			fz_check_space(&fz_sp[i]);
}

/* Read every mapped readable page through the CPU (faults everything back). */
static void fz_check_cpu(struct fz_space *s)
{
	unsigned char buf[FZ_PAGE];

	for (unsigned long i = 0; i < FZ_NPAGES; i++) {
		if (!s->pg[i].mapped || !(s->pg[i].prot & PROT_READ))
			continue;
		FZ_CHECK(hmmu_access(s->mm, fz_addr(i), buf, FZ_PAGE, HMMU_ACCESS_READ) == 0, "CPU read %#lx",
			 fz_addr(i));
		fz_expect_bytes(&s->pg[i], buf, i, "final CPU read");
	}
}

/* ---------------------------------------------------------------------- */
/* Spaces                                                                  */
/* ---------------------------------------------------------------------- */

static void fz_space_open(struct fz_space *s, struct hmmu_mm *mm)
{
	s->mm = mm;
	for (int d = 0; d < 2; d++)
		FZ_CHECK(hmmu_dmirror_open(fz_mdev[d], mm, &s->mirror[d]) == 0, "dmirror open");
	fz_isub_insert(&s->walk, mm, FZ_BASE, FZ_END - FZ_BASE);
}

/* Check, tear down and forget @s. */
static void fz_space_close(struct fz_space *s)
{
	fz_check_space(s);
	fz_check_cpu(s);
	hmmu_unpin_user_pages(s->pins, (unsigned long)s->nr_pins);
	fz_isub_remove(&s->walk);
	if (s->extra.live)
		fz_isub_remove(&s->extra);
	if (s->classic.live) {
		hmmu_notifier_unregister(&s->classic.sub, s->mm);
		s->classic.live = false;
	}
	for (int d = 0; d < 2; d++)
		FZ_CHECK(hmmu_dmirror_close(s->mirror[d]) == 0, "dmirror close");
	FZ_CHECK(hmmu_pt_validate(s->mm) == 0, "page tables invalid at teardown");
	hmmu_mmput(s->mm);
	for (unsigned long i = 0; i < FZ_NPAGES; i++)
		fz_page_clear(&s->pg[i]);
	memset(s, 0, sizeof(*s));
}

/* The other space of a fork sees its pages as shared again. */
static void fz_mark_forked(struct fz_space *s)
{
	for (unsigned long i = 0; i < FZ_NPAGES; i++)
		s->pg[i].forked = s->pg[i].mapped;
}

/* ---------------------------------------------------------------------- */
/* Valid operations                                                        */
/* ---------------------------------------------------------------------- */

/* mmap(MAP_FIXED) anonymous private memory over [idx, idx + n). */
static void fz_op_mmap(struct fz_space *s)
{
	unsigned long idx, n;
	int prot;
	long ret;

	fz_range(&idx, &n);
	prot = fz_prot(fz_u8());
	ret = hmmu_mmap(s->mm, fz_addr(idx), n * FZ_PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	FZ_CHECK(ret == (long)fz_addr(idx), "mmap returned %ld", ret);
	for (unsigned long i = idx; i < idx + n; i++) {
		fz_page_clear(&s->pg[i]);
		s->pg[i].mapped = true;
		s->pg[i].prot = prot;
	}
}

static void fz_op_munmap(struct fz_space *s)
{
	unsigned long idx, n;
	int ret;

	fz_range(&idx, &n);
	ret = hmmu_munmap(s->mm, fz_addr(idx), n * FZ_PAGE);
	FZ_CHECK(ret == 0, "munmap returned %d", ret);
	for (unsigned long i = idx; i < idx + n; i++)
		fz_page_clear(&s->pg[i]);
}

/* mprotect: pages before the first hole change, then -ENOMEM (Linux). */
static void fz_op_mprotect(struct fz_space *s)
{
	unsigned long idx, n, hole;
	int prot, ret;

	fz_range(&idx, &n);
	prot = fz_prot(fz_u8());
	ret = hmmu_mprotect(s->mm, fz_addr(idx), n * FZ_PAGE, prot);
	hole = fz_first_denied(s, idx, n, PROT_NONE);
	FZ_CHECK(ret == (hole < idx + n ? -ENOMEM : 0), "mprotect returned %d, hole at page %lu", ret, hole);
	for (unsigned long i = idx; i < hole; i++)
		s->pg[i].prot = prot;
}

/* madvise: the mapped parts are advised; a hole makes it -ENOMEM. */
static void fz_op_madvise(struct fz_space *s)
{
	static const int advice[] = { MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTFORK, MADV_DOFORK };
	unsigned long idx, n;
	int adv, ret;

	fz_range(&idx, &n);
	adv = advice[fz_u8() % 5];
	ret = hmmu_madvise(s->mm, fz_addr(idx), n * FZ_PAGE, adv);
	FZ_CHECK(ret == (fz_first_denied(s, idx, n, PROT_NONE) < idx + n ? -ENOMEM : 0), "madvise(%d) returned %d",
		 adv, ret);
	for (unsigned long i = idx; i < idx + n; i++) {
		struct fz_page *p = &s->pg[i];

		if (!p->mapped)
			continue;
		if (adv == MADV_DONTNEED) {
			free(p->data);
			p->data = NULL;
			p->maybe_excl = p->forked = false;
		} else if (adv == MADV_DONTFORK || adv == MADV_DOFORK) {
			p->dontfork = adv == MADV_DONTFORK;
		}
	}
}

/* Move shadow pages [from, from + n) to [to, to + n) (either may be outside the window: -1). */
static void fz_shadow_move(struct fz_space *s, unsigned long from, unsigned long to, unsigned long n)
{
	struct fz_page *tmp = calloc(n, sizeof(*tmp));

	FZ_CHECK(tmp, "out of memory");
	memcpy(tmp, &s->pg[from], n * sizeof(*tmp));
	memset(&s->pg[from], 0, n * sizeof(*tmp));
	for (unsigned long i = 0; i < n; i++) {
		fz_page_clear(&s->pg[to + i]);
		s->pg[to + i] = tmp[i];
	}
	free(tmp);
}

/* Map the pages of a grown VMA: zero, with the VMA's protection. */
static void fz_shadow_grow(struct fz_space *s, unsigned long idx, unsigned long n, const struct fz_page *like)
{
	for (unsigned long i = idx; i < idx + n; i++) {
		fz_page_clear(&s->pg[i]);
		s->pg[i].mapped = true;
		s->pg[i].prot = like->prot;
		s->pg[i].dontfork = like->dontfork;
	}
}

/* The VMA around [idx, idx + n) if the range lies inside one; its end page in *@end. */
static bool fz_one_vma(struct fz_space *s, unsigned long idx, unsigned long n, unsigned long *end)
{
	struct hmmu_vma *vma;
	bool one;

	hmmu_mmap_read_lock(s->mm);
	vma = hmmu_vma_lookup(s->mm, fz_addr(idx));
	one = vma && vma->vm_end >= fz_addr(idx + n);
	if (one)
		*end = (vma->vm_end - FZ_BASE) / FZ_PAGE;
	hmmu_mmap_read_unlock(s->mm);
	return one;
}

/* A moved range landed outside the window: check its bytes, then unmap it. */
static void fz_check_moved_out(struct fz_space *s, unsigned long addr, unsigned long from, unsigned long n,
			       unsigned long new_n)
{
	unsigned char buf[FZ_PAGE];

	for (unsigned long i = 0; i < new_n; i++) {
		struct fz_page zero = { 0 };
		const struct fz_page *p = i < n ? &s->pg[from + i] : &zero;

		if (!(p->prot & PROT_READ) && i < n)
			continue;
		if (i >= n && !(s->pg[from].prot & PROT_READ))
			continue;
		FZ_CHECK(hmmu_access(s->mm, addr + i * FZ_PAGE, buf, FZ_PAGE, HMMU_ACCESS_READ) == 0,
			 "read of the moved range");
		fz_expect_bytes(p, buf, from + i, "moved out of the window");
	}
	FZ_CHECK(hmmu_munmap(s->mm, addr, new_n * FZ_PAGE) == 0, "munmap of the moved range");
	for (unsigned long i = from; i < from + n; i++)
		fz_page_clear(&s->pg[i]);
}

/*
 * mremap, four ways: shrink in place, grow in place, MAYMOVE|FIXED to a
 * window address, MAYMOVE anywhere.  Success is predicted from the VMA
 * layout (the shadow has no VMA boundaries); the result from the shadow.
 */
static void fz_op_mremap(struct fz_space *s)
{
	unsigned long idx, n, new_n, to, vend = 0;
	unsigned int mode = fz_u8() % 4;
	bool one;
	long ret, want;

	fz_range(&idx, &n);
	new_n = 1 + fz_u8() % 32;
	to = fz_u16() % FZ_NPAGES;
	if (mode == 0 && new_n >= n)
		new_n = n > 1 ? n - 1 : 1;
	if (mode == 1 && new_n <= n)
		new_n = n + 1;
	if (idx + new_n > FZ_NPAGES)
		new_n = FZ_NPAGES - idx;
	if (to + new_n > FZ_NPAGES)
		to = FZ_NPAGES - new_n;
	if (mode == 2 && to < idx + n && idx < to + new_n)
		mode = 3;	/* overlapping fixed ranges are an invalid call */
	one = fz_one_vma(s, idx, n, &vend);
	switch (mode) {
	case 0:
	case 1:
		ret = hmmu_mremap(s->mm, fz_addr(idx), n * FZ_PAGE, new_n * FZ_PAGE, 0, 0);
		want = !one ? -EFAULT : new_n <= n || (vend == idx + n &&
			fz_first_denied(s, idx + n, new_n - n, PROT_NONE) == idx + n) ? (long)fz_addr(idx) : -ENOMEM;
		if (new_n > n && want > 0)
			for (unsigned long i = idx + n; i < idx + new_n; i++)
				want = s->pg[i].mapped ? -ENOMEM : want;
		FZ_CHECK(ret == want, "mremap in place returned %ld, expected %ld", ret, want);
		if (ret < 0)
			return;
		for (unsigned long i = idx + new_n; i < idx + n; i++)
			fz_page_clear(&s->pg[i]);
		if (new_n > n)
			fz_shadow_grow(s, idx + n, new_n - n, &s->pg[idx]);
		return;
	case 2:
		ret = hmmu_mremap(s->mm, fz_addr(idx), n * FZ_PAGE, new_n * FZ_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				  fz_addr(to));
		FZ_CHECK(ret == (one ? (long)fz_addr(to) : -EFAULT), "mremap fixed returned %ld", ret);
		if (!one)
			return;	/* checked before the destination is unmapped (docs/deviations.md) */
		break;
	default:
		ret = hmmu_mremap(s->mm, fz_addr(idx), n * FZ_PAGE, new_n * FZ_PAGE, MREMAP_MAYMOVE, 0);
		FZ_CHECK(one ? ret > 0 : ret == -EFAULT, "mremap maymove returned %ld", ret);
		if (!one)
			return;
		if (ret < (long)FZ_BASE || ret + new_n * FZ_PAGE > FZ_END) {
			fz_check_moved_out(s, ret, idx, n, new_n);
			return;
		}
		to = (ret - FZ_BASE) / FZ_PAGE;
		if (to == idx) {
			for (unsigned long i = idx + new_n; i < idx + n; i++)
				fz_page_clear(&s->pg[i]);
			if (new_n > n)
				fz_shadow_grow(s, idx + n, new_n - n, &s->pg[idx]);
			return;
		}
		break;
	}
	{
		struct fz_page like = s->pg[idx];
		unsigned long keep = new_n < n ? new_n : n;

		for (unsigned long i = idx + keep; i < idx + n; i++)
			fz_page_clear(&s->pg[i]);
		fz_shadow_move(s, idx, to, keep);
		if (new_n > n)
			fz_shadow_grow(s, to + n, new_n - n, &like);
	}
}

/* The bytes a CPU or device write stores: a pattern from two input bytes. */
static void fz_pattern(unsigned char *buf, size_t len, unsigned int seed, unsigned int step)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed + i * (step | 1));
}

/*
 * CPU write or read of up to 3 pages at any offset: it stops at the first
 * page that forbids it (-EFAULT); the bytes before it are written, or must
 * match the shadow.
 */
static void fz_op_cpu(struct fz_space *s, bool write)
{
	static unsigned char buf[3 * FZ_PAGE];
	unsigned long idx = fz_u16() % FZ_NPAGES, off = fz_u16() % FZ_PAGE, len = 1 + fz_u16() % sizeof(buf);
	unsigned long addr = fz_addr(idx) + off, stop, end;
	int ret;

	if (addr + len > FZ_END)
		len = FZ_END - addr;
	if (write)
		fz_pattern(buf, len, fz_u8(), fz_u8());
	else
		memset(buf, 0xa5, len);
	ret = hmmu_access(s->mm, addr, buf, len, write ? HMMU_ACCESS_WRITE : HMMU_ACCESS_READ);
	end = (addr + len - 1 - FZ_BASE) / FZ_PAGE + 1;
	stop = fz_first_denied(s, idx, end - idx, PROT_READ | (write ? PROT_WRITE : 0));
	FZ_CHECK(ret == (stop < end ? -EFAULT : 0), "CPU access returned %d, first denied page %lu", ret, stop);
	for (unsigned long a = addr; a < addr + len && (a - FZ_BASE) / FZ_PAGE < stop; a++) {
		struct fz_page *p = &s->pg[(a - FZ_BASE) / FZ_PAGE];
		unsigned char want = p->data ? p->data[a % FZ_PAGE] : 0;

		if (write) {
			fz_page_bytes(p)[a % FZ_PAGE] = buf[a - addr];
			p->forked = false;
		} else {
			FZ_CHECK(buf[a - addr] == want, "CPU read of %#lx: %#x, shadow %#x", a, buf[a - addr], want);
		}
		p->maybe_excl = false;
	}
}

/* hmm_range_fault with REQ_FAULT (+ REQ_WRITE) over a range, under the walk notifier. */
static void fz_op_range_fault(struct fz_space *s)
{
	static unsigned long pfns[FZ_NPAGES];
	unsigned long idx, n, stop;
	bool write = fz_u8() & 1;
	struct hmmu_range range = {
		.notifier = &s->walk.sub,
		.hmm_pfns = pfns,
		.default_flags = HMMU_PFN_REQ_FAULT | (write ? HMMU_PFN_REQ_WRITE : 0),
	};
	int ret;

	fz_range(&idx, &n);
	range.start = fz_addr(idx);
	range.end = fz_addr(idx + n);
	do {
		range.notifier_seq = hmmu_interval_read_begin(range.notifier);
		hmmu_mmap_read_lock(s->mm);
		ret = hmmu_range_fault(&range);
		hmmu_mmap_read_unlock(s->mm);
	} while (ret == -EBUSY);
	stop = fz_first_denied(s, idx, n, PROT_READ | (write ? PROT_WRITE : 0));
	if (stop == idx + n) {
		FZ_CHECK(ret == 0, "range_fault returned %d", ret);
	} else {
		bool readable = s->pg[stop].mapped && (s->pg[stop].prot & PROT_READ);

		FZ_CHECK(ret == (readable ? -EPERM : -EFAULT), "range_fault returned %d, page %lu denied", ret, stop);
	}
	for (unsigned long i = idx; i < idx + n && !ret; i++) {
		FZ_CHECK((pfns[i - idx] & HMMU_PFN_VALID) && (!write || (pfns[i - idx] & HMMU_PFN_WRITE)),
			 "range_fault entry %#lx of %#lx", pfns[i - idx], fz_addr(i));
		s->pg[i].maybe_excl = false;
		if (write)
			s->pg[i].forked = false;
	}
}

/*
 * A dmirror command on mirror 0 (private device) or 1 (coherent).  Device
 * writes go one page at a time, so a failure leaves that page unchanged;
 * migrations and exclusive access never change what a page holds.
 */
static void fz_op_dmirror(struct fz_space *s)
{
	static unsigned char buf[16 * FZ_PAGE];
	unsigned int sel = fz_u8(), nr = sel % 7;
	struct hmmu_dmirror *mirror = s->mirror[(sel >> 3) & 1];
	unsigned long idx, n, stop;
	struct hmmu_dmirror_cmd cmd = { .ptr = (uintptr_t)buf };
	int ret;

	fz_range(&idx, &n);
	if (n > 16)
		n = 16;
	cmd.addr = fz_addr(idx);
	cmd.npages = n;
	switch (nr) {
	case HMMU_DMIRROR_READ:
		ret = hmmu_dmirror_cmd(mirror, nr, &cmd);
		stop = fz_first_denied(s, idx, n, PROT_READ);
		FZ_CHECK(ret == (stop < idx + n ? -EFAULT : 0), "device read returned %d", ret);
		/* No maybe_excl change: the mirror holding exclusive access reads without a fault. */
		for (unsigned long i = 0; i < n && !ret; i++)
			fz_expect_bytes(&s->pg[idx + i], buf + i * FZ_PAGE, idx + i, "device read");
		return;
	case HMMU_DMIRROR_WRITE:
		fz_pattern(buf, FZ_PAGE, fz_u8(), fz_u8());
		cmd.npages = 1;
		for (unsigned long i = idx; i < idx + n; i++) {
			struct fz_page *p = &s->pg[i];

			buf[0] = (unsigned char)i;
			cmd.addr = fz_addr(i);
			ret = hmmu_dmirror_cmd(mirror, nr, &cmd);
			if (!p->mapped || !(p->prot & PROT_READ))
				FZ_CHECK(ret == -EFAULT, "device write to unmapped %#lx returned %d", cmd.addr, ret);
			else if (!(p->prot & PROT_WRITE)) /* -EFAULT: the page is the device's own, read-only */
				FZ_CHECK(ret == -EPERM || ret == -EFAULT, "device write to read-only %#lx returned %d",
					 cmd.addr, ret);
			else
				FZ_CHECK(ret == 0 || (ret == -EFAULT && p->forked),
					 "device write to %#lx returned %d", cmd.addr, ret);
			if (ret)
				continue;
			memcpy(fz_page_bytes(p), buf, FZ_PAGE);
			p->forked = false;	/* maybe_excl stays, as for device reads */
		}
		return;
	case HMMU_DMIRROR_MIGRATE_TO_DEV:
	case HMMU_DMIRROR_MIGRATE_TO_SYS:
		ret = hmmu_dmirror_cmd(mirror, nr, &cmd);
		stop = fz_first_denied(s, idx, n, PROT_READ);
		FZ_CHECK(stop < idx + n ? ret == -EINVAL : ret == 0 || ret == -ENOENT,
			 "device migration %u returned %d", nr, ret);
		return;
	case HMMU_DMIRROR_SNAPSHOT:
		ret = hmmu_dmirror_cmd(mirror, nr, &cmd);
		FZ_CHECK(ret == 0, "snapshot returned %d", ret);
		for (unsigned long i = 0; i < n; i++) {
			const struct fz_page *p = &s->pg[idx + i];

			FZ_CHECK((buf[i] == HMMU_DMIRROR_PROT_ERROR) == (!p->mapped || !(p->prot & PROT_READ)),
				 "SNAPSHOT byte %#x for page %#lx", buf[i], fz_addr(idx + i));
		}
		return;
	case HMMU_DMIRROR_EXCLUSIVE:
		ret = hmmu_dmirror_cmd(mirror, nr, &cmd);
		stop = fz_first_denied(s, idx, n, PROT_READ | PROT_WRITE);
		FZ_CHECK(stop < idx + n ? ret < 0 : ret == 0 || ret == -EBUSY || ret == -ENOENT,
			 "EXCLUSIVE returned %d", ret);
		for (unsigned long i = idx; i < stop; i++)
			s->pg[i].forked = false;
		/*
		 * A page of a (split) huge page is converted through the head,
		 * with every PTE of the huge page (Linux 6.1): its 2 MiB block.
		 */
		for (unsigned long i = idx & ~FZ_PMD_PAGES_MASK; stop > idx && i < stop; i++)
			s->pg[i].maybe_excl = true;
		for (unsigned long i = stop; stop > idx && i & FZ_PMD_PAGES_MASK; i++)
			s->pg[i].maybe_excl = true;
		return;
	default:
		ret = hmmu_dmirror_cmd(mirror, HMMU_DMIRROR_CHECK_EXCLUSIVE, &cmd);
		FZ_CHECK(ret == 0 || ret == -EPERM, "CHECK_EXCLUSIVE returned %d", ret);
		return;
	}
}

/*
 * A driver giving up between setup and pages: it frees its destinations
 * and clears dst[], so finalize restores every source (a dst entry left
 * for finalize without pages would be mapped without the page's state).
 */
static void fz_drop_dst(struct hmmu_migrate_vma *args)
{
	for (unsigned long i = 0; i < args->npages; i++) {
		struct hmmu_page *dpage = hmmu_migrate_pfn_to_page(args->dst[i]);

		if (!dpage)
			continue;
		hmmu_unlock_page(dpage);
		hmmu_put_page(dpage);
		args->dst[i] = 0;
	}
}

/*
 * migrate_vma by hand between system memory and the fuzzer's pagemap.
 * Variants: give up before pages() (fz_drop_dst), give no destination to
 * some entries, fill empty slots, finalize twice.
 */
static void fz_op_migrate(struct fz_space *s)
{
	static unsigned long src[16], dst[16];
	unsigned int sel = fz_u8();
	bool to_dev = sel & 1, skip_pages = (sel & 6) == 6, fill_empty = sel & 8, twice = sel & 16;
	unsigned int drop = fz_u8();
	unsigned long idx, n;
	struct hmmu_migrate_vma args = { .src = src, .dst = dst, .pgmap_owner = &fz_dev_owner };
	int ret;

	fz_range(&idx, &n);
	if (n > 16)
		n = 16;
	args.start = fz_addr(idx);
	args.end = fz_addr(idx + n);
	args.flags = to_dev ? HMMU_MIGRATE_VMA_SELECT_SYSTEM : HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
	hmmu_mmap_read_lock(s->mm);
	args.vma = hmmu_vma_lookup(s->mm, args.start);
	if (!args.vma || args.vma->vm_end < args.end) {
		ret = hmmu_migrate_vma_setup(&args);
		hmmu_mmap_read_unlock(s->mm);
		FZ_CHECK(ret == -EINVAL, "migrate setup over a gap returned %d", ret);
		return;
	}
	ret = hmmu_migrate_vma_setup(&args);
	FZ_CHECK(ret == 0 && args.npages == n, "migrate setup returned %d", ret);
	if (!to_dev) {
		fz_fill_to_system(&args);
	} else {
		for (unsigned long i = 0; i < n; i++) {
			struct hmmu_page *spage = hmmu_migrate_pfn_to_page(src[i]), *dpage;

			if (!(src[i] & HMMU_MIGRATE_PFN_MIGRATE) || (drop >> (i % 8) & 1) || (!spage && !fill_empty))
				continue;
			dpage = fz_dev_alloc();
			if (!dpage)
				break;
			if (spage)
				memcpy(fz_dev.store[fz_dev_index(dpage)], hmmu_page_address(spage), FZ_PAGE);
			else
				memset(fz_dev.store[fz_dev_index(dpage)], 0, FZ_PAGE);
			dst[i] = hmmu_migrate_pfn(hmmu_page_to_pfn(dpage)) | (src[i] & HMMU_MIGRATE_PFN_WRITE);
		}
	}
	if (!skip_pages)
		FZ_CHECK(hmmu_migrate_vma_pages(&args) == 0, "migrate pages");
	else
		fz_drop_dst(&args);
	FZ_CHECK(hmmu_migrate_vma_finalize(&args) == 0, "migrate finalize");
	if (twice) /* the migration is over: invalid, changes nothing */
		FZ_CHECK(hmmu_migrate_vma_finalize(&args) == -EINVAL && hmmu_migrate_vma_pages(&args) == -EINVAL,
			 "second finalize");
	hmmu_mmap_read_unlock(s->mm);
	/* Device-exclusive entries are neither collected nor restored (Linux 6.1): maybe_excl stays. */
}

/*
 * Pin up to 8 pages (FOLL_PIN, optionally WRITE and LONGTERM) and hold
 * them, or drop the pins held.  A pinned page changes no byte, but later
 * migrations, exclusive access and fork must cope with it.
 */
static void fz_op_pin(struct fz_space *s)
{
	unsigned int sel = fz_u8();
	unsigned int flags = (sel & 1 ? HMMU_FOLL_WRITE : 0) | (sel & 2 ? HMMU_FOLL_LONGTERM : 0);
	unsigned long idx, n, stop;
	long ret, want;

	fz_range(&idx, &n);
	if (s->nr_pins) {
		hmmu_unpin_user_pages(s->pins, (unsigned long)s->nr_pins);
		s->nr_pins = 0;
		return;
	}
	n = n > FZ_MAX_PINS ? FZ_MAX_PINS : n;
	hmmu_mmap_read_lock(s->mm);
	ret = hmmu_pin_user_pages_remote(s->mm, fz_addr(idx), n, flags, s->pins);
	hmmu_mmap_read_unlock(s->mm);
	stop = fz_first_denied(s, idx, n, PROT_READ | (flags & HMMU_FOLL_WRITE ? PROT_WRITE : 0));
	want = stop > idx ? (long)(stop - idx) : -EFAULT;
	FZ_CHECK(ret == want, "pin returned %ld, expected %ld", ret, want);
	s->nr_pins = ret > 0 ? ret : 0;
	for (unsigned long i = idx; i < stop; i++) {
		s->pg[i].maybe_excl = false;
		if (flags & HMMU_FOLL_WRITE)
			s->pg[i].forked = false;
	}
}

/* Page aging over a range: a count of young pages, never an error. */
static void fz_op_age(struct fz_space *s)
{
	unsigned int sel = fz_u8();
	unsigned long idx, n;
	long ret;

	fz_range(&idx, &n);
	ret = hmmu_mm_age(s->mm, fz_addr(idx), fz_addr(idx + n), sel % 3);
	FZ_CHECK(ret >= 0 && ret <= (long)n, "mm_age returned %ld for %lu pages", ret, n);
}

/* Fork the parent (a child exists at most once at a time) or end the child. */
static void fz_op_fork(void)
{
	struct fz_space *p = &fz_sp[0], *c = &fz_sp[1];
	struct hmmu_mm *child;

	if (c->mm) {
		fz_space_close(c);
		return;
	}
	FZ_CHECK(hmmu_fork(p->mm, &child) == 0, "fork");
	fz_space_open(c, child);
	for (unsigned long i = 0; i < FZ_NPAGES; i++) {
		const struct fz_page *pp = &p->pg[i];

		if (!pp->mapped || pp->dontfork)
			continue;
		c->pg[i] = *pp;
		c->pg[i].data = NULL;
		if (pp->data)
			memcpy(fz_page_bytes(&c->pg[i]), pp->data, FZ_PAGE);
	}
	fz_mark_forked(p);
	fz_mark_forked(c);
}

/* Register, unregister (twice), insert or remove (twice) a notifier. */
static void fz_op_notifier(struct fz_space *s)
{
	unsigned int sel = fz_u8();
	unsigned long idx, n;

	fz_range(&idx, &n);
	switch (sel % 4) {
	case 0:
		if (s->classic.live)
			return;
		memset(&s->classic, 0, sizeof(s->classic));
		s->classic.sub.ops = &fz_csub_ops;
		FZ_CHECK(hmmu_notifier_register(&s->classic.sub, s->mm) == 0, "notifier register");
		s->classic.live = true;
		return;
	case 1:
		if (!s->classic.live)
			return;
		hmmu_notifier_unregister(&s->classic.sub, s->mm);
		FZ_CHECK(s->classic.starts == s->classic.ends && s->classic.releases == 1,
			 "classic notifier: %lu starts, %lu ends, %lu releases", s->classic.starts,
			 s->classic.ends, s->classic.releases);
		if (sel & 4) /* unregister twice: nothing happens */
			hmmu_notifier_unregister(&s->classic.sub, s->mm);
		s->classic.live = false;
		return;
	case 2:
		if (!s->extra.live)
			fz_isub_insert(&s->extra, s->mm, fz_addr(idx), n * FZ_PAGE);
		return;
	default:
		if (!s->extra.live)
			return;
		fz_isub_remove(&s->extra);
		if (sel & 4) /* remove twice: nothing happens */
			hmmu_interval_notifier_remove(&s->extra.sub);
		return;
	}
}

/* ---------------------------------------------------------------------- */
/* Invalid operations                                                      */
/* ---------------------------------------------------------------------- */

/* Invalid range_fault and migrate_vma calls; @k selects one. */
static int fz_invalid_mirror_call(struct fz_space *s, unsigned int k, unsigned long idx, unsigned long n)
{
	static unsigned long pfns[16], src[16], dst[16];
	struct hmmu_range range = { .notifier = &s->walk.sub, .hmm_pfns = pfns, .start = fz_addr(idx),
				    .end = fz_addr(idx + n), .default_flags = HMMU_PFN_REQ_FAULT };
	struct hmmu_migrate_vma args = { .src = src, .dst = dst, .start = fz_addr(idx), .end = fz_addr(idx + n),
					 .pgmap_owner = &fz_dev_owner, .flags = HMMU_MIGRATE_VMA_SELECT_SYSTEM };
	struct hmmu_page *zero = hmmu_zero_page();
	int ret;

	hmmu_mmap_read_lock(s->mm);
	range.notifier_seq = hmmu_interval_read_begin(range.notifier);
	args.vma = hmmu_vma_lookup(s->mm, args.start);
	switch (k) {
	case 0: range.hmm_pfns = NULL; break;
	case 1: range.end = range.start; break;
	case 2: range.start += 1; break;
	case 3: range.end = HMMU_TASK_SIZE + FZ_PAGE; break;
	case 4: range.start = range.end + FZ_PAGE; break;	/* reversed */
	case 5: args.src = NULL; break;
	case 6: args.dst = NULL; break;
	case 7: args.end = args.start; break;
	case 8: args.start = args.end + FZ_PAGE; break;		/* reversed */
	case 9: args.fault_page = zero; break;			/* not a locked device-private page */
	default: args.vma = NULL; break;
	}
	if (k <= 4)
		ret = hmmu_range_fault(&range);
	else
		ret = hmmu_migrate_vma_setup(&args);
	hmmu_mmap_read_unlock(s->mm);
	return ret;
}

/*
 * One invalid call: the expected errno and the call, selected by a byte.
 * Every one must change nothing (checked by comparing mm statistics and
 * then the shadow).
 */
static void fz_op_invalid(struct fz_space *s)
{
	unsigned int k = fz_u8();
	unsigned long idx, n, a;
	unsigned char buf[8];
	struct hmmu_mm_stats before, after;
	long free_before = hmmu_node_nr_free_pages(0), ret, want = -EINVAL;
	struct hmmu_mm *mm = s->mm;
	struct hmmu_dmirror_cmd cmd = { .ptr = (uintptr_t)buf, .npages = 1 };

	fz_range(&idx, &n);
	a = fz_addr(idx);
	FZ_CHECK(hmmu_mm_get_stats(mm, &before) == 0, "stats");
	switch (k %= 46) {
	case 0: ret = hmmu_mmap(mm, a, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0); break;
	case 1: ret = hmmu_mmap(mm, a + 1, FZ_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0); break;
	case 2: ret = hmmu_mmap(mm, a, FZ_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | 0x800000, -1, 0); break;
	case 3: ret = hmmu_mmap(mm, a, FZ_PAGE, 0x100, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); break;
	case 4: ret = hmmu_mmap(mm, a, FZ_PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0); break;
	case 5: ret = hmmu_mmap(mm, a, -FZ_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); break;
	case 6: ret = hmmu_mmap(NULL, a, FZ_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); break;
	case 7: ret = hmmu_munmap(mm, a + 1, FZ_PAGE); break;
	case 8: ret = hmmu_munmap(mm, a, 0); break;
	case 9: ret = hmmu_munmap(mm, HMMU_TASK_SIZE - FZ_PAGE, 2 * FZ_PAGE); break;
	case 10: ret = hmmu_munmap(mm, a, -a); break;			/* wraps */
	case 11: ret = hmmu_mprotect(mm, a + 1, FZ_PAGE, PROT_READ); break;
	case 12: ret = hmmu_mprotect(mm, a, FZ_PAGE, 0x100); break;
	case 13: ret = hmmu_mprotect(mm, a, -a, PROT_READ); break;	/* Linux: -ENOMEM (deviations.md) */
	case 14: ret = hmmu_madvise(mm, a + 1, FZ_PAGE, MADV_DONTNEED); break;
	case 15: ret = hmmu_madvise(mm, a, FZ_PAGE, 12345); break;
	case 16: ret = hmmu_madvise(mm, a, -a, MADV_DONTNEED); break;
	case 17: ret = hmmu_mremap(mm, a + 1, FZ_PAGE, FZ_PAGE, 0, 0); break;
	case 18: ret = hmmu_mremap(mm, a, FZ_PAGE, 0, 0, 0); break;
	case 19: ret = hmmu_mremap(mm, a, FZ_PAGE, FZ_PAGE, 0x80, 0); break;
	case 20: ret = hmmu_mremap(mm, a, FZ_PAGE, FZ_PAGE, MREMAP_FIXED, FZ_BASE); break;
	case 21: ret = hmmu_mremap(mm, a, n * FZ_PAGE, n * FZ_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a); break;
	case 22: ret = hmmu_access(mm, a, NULL, 8, HMMU_ACCESS_READ); break;
	case 23: ret = hmmu_access(mm, a, buf, 8, 0x2); break;
	case 24: ret = hmmu_access(mm, -4UL, buf, 8, HMMU_ACCESS_WRITE); break;
	case 25: ret = hmmu_access(mm, HMMU_TASK_SIZE - 4, buf, 8, HMMU_ACCESS_WRITE); break;
	case 26: ret = hmmu_msync(mm, a, FZ_PAGE, MS_SYNC | MS_ASYNC); break;
	case 27: ret = hmmu_get_user_pages_remote(mm, a, 1, 0, NULL); break;
	case 28: ret = hmmu_mm_age(mm, a + FZ_PAGE, a, HMMU_AGE_TEST); break;
	case 29: ret = hmmu_mm_get_stats(mm, NULL); break;
	case 30: ret = hmmu_dmirror_cmd(s->mirror[k & 1], 99, &cmd); break;
	case 31: cmd.addr = a + 1; ret = hmmu_dmirror_cmd(s->mirror[k & 1], HMMU_DMIRROR_READ, &cmd); break;
	case 32: cmd.addr = a; cmd.npages = 0; ret = hmmu_dmirror_cmd(s->mirror[k & 1], HMMU_DMIRROR_READ, &cmd); break;
	case 33: ret = hmmu_dmirror_cmd(s->mirror[k & 1], HMMU_DMIRROR_READ, NULL); break;
	case 34: ret = hmmu_make_device_exclusive_range(mm, a, a + FZ_PAGE, NULL, NULL); break;
	default: ret = fz_invalid_mirror_call(s, k - 35, idx, n); break;
	}
	FZ_CHECK(ret == want, "invalid call %u returned %ld, documented %ld", k, ret, want);
	FZ_CHECK(hmmu_mm_get_stats(mm, &after) == 0, "stats");
	FZ_CHECK(!memcmp(&before, &after, sizeof(before)), "invalid call %u changed the mm", k);
	FZ_CHECK(hmmu_node_nr_free_pages(0) == free_before, "invalid call %u changed the free count", k);
}

/* ---------------------------------------------------------------------- */
/* The entry points                                                        */
/* ---------------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct hmmu_config cfg = { .ram_size = 64UL << 20, .retry_timeout_ms = 200 };
	struct hmmu_dmirror_device_config dcfg = { .chunk_size = 2UL << 20, .max_chunks = 4 };

	fz_trace = getenv("FUZZ_TRACE") && atoi(getenv("FUZZ_TRACE"));
	FZ_CHECK(hmmu_init(&cfg) == 0, "hmmu_init");
	FZ_CHECK(hmmu_dmirror_device_create(&dcfg, &fz_mdev[0]) == 0, "private device");
	dcfg.type = HMMU_MEMORY_DEVICE_COHERENT;
	FZ_CHECK(hmmu_dmirror_device_create(&dcfg, &fz_mdev[1]) == 0, "coherent device");
	fz_dev.pgmap.type = HMMU_MEMORY_DEVICE_PRIVATE;
	fz_dev.pgmap.range.end = FZ_DEV_PAGES * FZ_PAGE - 1;
	fz_dev.pgmap.nr_range = 1;
	fz_dev.pgmap.ops = &fz_dev_ops;
	fz_dev.pgmap.owner = &fz_dev_owner;
	FZ_CHECK(hmmu_memremap_pages(&fz_dev.pgmap) == 0, "memremap");
	fz_dev.first_pfn = hmmu_pgmap_pfn_first(&fz_dev.pgmap);
	return 0;
}

/* FUZZ_TRACE=1 in the environment: print each operation, then its argument bytes. */
static void fz_trace_args(size_t at)
{
	fputs("  args", stderr);
	for (size_t i = at + 1; i < fz_pos; i++)
		fprintf(stderr, " %02x", fz_in[i]);
	fputc('\n', stderr);
}

/* Run one operation on the parent or, with the top opcode bit, the child. */
static void fz_run_op(unsigned int op)
{
	static const char *const names[] = {
		"mmap", "munmap", "mprotect", "madvise", "mremap", "cpu_write", "cpu_read",
		"range_fault", "dmirror", "migrate", "fork", "notifier", "invalid", "pin", "age",
	};
	struct fz_space *s = &fz_sp[(op & 0x80) && fz_sp[1].mm ? 1 : 0];

	op = (op & 0x7f) % 15;
	fz_opname = names[op];
	if (fz_trace)
		fprintf(stderr, "step %d: %s%s\n", fz_step, s == &fz_sp[1] ? "child " : "", fz_opname);
	switch (op) {
	case 0: fz_op_mmap(s); break;
	case 1: fz_op_munmap(s); break;
	case 2: fz_op_mprotect(s); break;
	case 3: fz_op_madvise(s); break;
	case 4: fz_op_mremap(s); break;
	case 5: fz_op_cpu(s, true); break;
	case 6: fz_op_cpu(s, false); break;
	case 7: fz_op_range_fault(s); break;
	case 8: fz_op_dmirror(s); break;
	case 9: fz_op_migrate(s); break;
	case 10: fz_op_fork(); break;
	case 11: fz_op_notifier(s); break;
	case 12: fz_op_invalid(s); break;
	case 13: fz_op_pin(s); break;
	default: fz_op_age(s); break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hmmu_mm *mm;

	fz_in = data;
	fz_len = size;
	fz_pos = 0;
	fz_step = 0;
	fz_opname = "setup";
	fz_free_base = hmmu_node_nr_free_pages(0);
	FZ_CHECK(hmmu_mm_create(HMMU_MM_DEFAULT, &mm) == 0, "mm_create");
	fz_space_open(&fz_sp[0], mm);
	while (fz_pos < fz_len && fz_step < FZ_MAX_OPS) {
		size_t at = fz_pos;

		fz_step++;
		fz_run_op(fz_u8());
		if (fz_trace)
			fz_trace_args(at);
		fz_check_all();
	}
	fz_opname = "teardown";
	if (fz_sp[1].mm)
		fz_space_close(&fz_sp[1]);
	fz_space_close(&fz_sp[0]);
	hmmu_notifier_synchronize();
	for (unsigned long i = 0; i < FZ_DEV_PAGES; i++)
		FZ_CHECK(!fz_dev.in_use[i], "device frame %lu still in use", i);
	FZ_CHECK(hmmu_page_alloc_validate() == 0, "page allocator invalid");
	FZ_CHECK(hmmu_node_nr_free_pages(0) == fz_free_base, "pages leaked: %ld free, %ld at the start",
		 hmmu_node_nr_free_pages(0), fz_free_base);
	return 0;
}
