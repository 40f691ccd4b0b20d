// SPDX-License-Identifier: MIT
/*
 * The fault side of host mms: a load or store on a page the real mapping
 * lacks (or maps write-protected) raises SIGBUS in the faulting thread
 * (userfaultfd's SIGBUS mode).  The handler runs hmmu's fault path for the
 * address, then installs the page under the interval notifier's
 * read_begin / read_retry protocol with UFFDIO_CONTINUE, write-protected
 * where hmmu's entry is read-only; returning from the handler retries the
 * instruction.  hmmu_prefault() is the same path for callers outside a
 * fault.
 *
 * Signal context.  The handler runs at a plain load or store of the
 * program, where the thread holds no hmmu lock (library code never
 * touches host memory with one held: it uses the direct map) and no lock
 * of the C library, unless the program touches host memory from a
 * handler of its own that interrupted one (unsupported).  The path never
 * calls malloc: page tables and the anon_vma exist from mmap time
 * (hmmu_host_vma_prepare), frames are fixed, arrays are on the stack.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <ucontext.h>
#include <unistd.h>

#include "host.h"

/*
 * The handler that was installed before ours (chained for SIGBUS not
 * ours); written under hmmu_host_signals_lock when ours is (re)installed.
 */
static struct sigaction hmmu_host_old_sigbus;
static pthread_mutex_t hmmu_host_signals_lock = PTHREAD_MUTEX_INITIALIZER;
/* This thread is inside hmmu_host_fault(). */
static __thread bool hmmu_host_faulting;

bool hmmu_host_in_fault(void)
{
	return hmmu_host_faulting;
}

/* ------------------------------------------------------------------ */
/* Installing the real mapping                                         */
/* ------------------------------------------------------------------ */

/*
 * UFFDIO_CONTINUE of the memfd page at @addr, write-protected unless
 * @writable.  An already mapped page gets its write protection set to
 * match instead.  0, or -EAGAIN (the memfd page vanished meanwhile: retry).
 */
static int hmmu_host_map_page(struct hmmu_host *host, unsigned long addr, bool writable)
{
	struct uffdio_continue cont = {
		.range = { .start = addr, .len = HMMU_PAGE_SIZE },
		.mode = UFFDIO_CONTINUE_MODE_DONTWAKE | (writable ? 0 : UFFDIO_CONTINUE_MODE_WP),
	};
	struct uffdio_writeprotect wp = {
		.range = { .start = addr, .len = HMMU_PAGE_SIZE },
		/* DONTWAKE is refused together with WP. */
		.mode = writable ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : UFFDIO_WRITEPROTECT_MODE_WP,
	};

	if (!ioctl(host->uffd, UFFDIO_CONTINUE, &cont))
		return 0;
	if (errno == EEXIST && !ioctl(host->uffd, UFFDIO_WRITEPROTECT, &wp))
		return 0;
	return -EAGAIN;
}

/*
 * The zero page of @addr is its own frame, zero and write-protected; its
 * memfd page is created by touching it through the direct map.  Only a
 * free frame is known to hold zeros: one still on its way out (the page
 * that was there, not yet punched) means retry.
 */
static int hmmu_host_map_zero(struct hmmu_host *host, unsigned long addr)
{
	unsigned long idx = hmmu_host_idx(host, addr);

	if (atomic_load_explicit(&host->frame[idx], memory_order_acquire) != HOST_FRAME_FREE)
		return -EAGAIN;
	(void)*(volatile char *)(host->dmap + (idx << HMMU_PAGE_SHIFT));
	return hmmu_host_map_page(host, addr, false);
}

/*
 * The PTE mapping @addr read without its lock, and in *@ptep its slot (0
 * and NULL when no PTE table reaches it): the mmap_lock, which the caller
 * holds, keeps the tables; the entry itself may change any time.
 */
static hmmu_pte_t hmmu_host_pte_peek(struct hmmu_mm *mm, unsigned long addr, hmmu_pte_t **ptep)
{
	struct hmmu_pt *pmd_pt;
	hmmu_pte_t *pmdp = hmmu_pmd_lookup(mm, addr, false, &pmd_pt);
	hmmu_pte_t pmd = pmdp ? __atomic_load_n(pmdp, __ATOMIC_ACQUIRE) : 0;

	*ptep = NULL;
	if (!hmmu_pte_table(pmd))
		return 0;
	*ptep = &hmmu_pte_to_table(pmd)->e[hmmu_pt_index(addr, 0)];
	return hmmu_pte_read(*ptep);
}

/* A present entry mapping the own frame of @addr (not the zero page), writable or not as @w. */
static bool hmmu_host_pte_mappable(struct hmmu_host *host, hmmu_pte_t e, unsigned long addr, bool w)
{
	return hmmu_pte_present(e) && hmmu_pte_write(e) == w &&
	       hmmu_pte_pfn(e) == host->node->start_pfn + hmmu_host_idx(host, addr);
}

/*
 * Map-around: after a fault that brought @addr back from a device, map
 * its neighbours that came back with it (driver fault-around) in the
 * aligned window of HMMU_HOST_AROUND pages, one UFFDIO_CONTINUE per run
 * of like entries, so they do not fault one by one.  Pages already mapped
 * end a run (EEXIST) and are skipped.  Context: the window's stripe held,
 * read_retry just passed; mmap_lock held for read.
 */
static void hmmu_host_map_around(struct hmmu_host *host, struct hmmu_vma *vma, unsigned long addr)
{
	unsigned long win = HMMU_ALIGN_DOWN(addr, HMMU_HOST_AROUND << HMMU_PAGE_SHIFT);
	unsigned long a = HMMU_MAX(win, vma->vm_start);
	unsigned long end = HMMU_MIN(win + (HMMU_HOST_AROUND << HMMU_PAGE_SHIFT), vma->vm_end);
	hmmu_pte_t *ptep, e;

	while (a < end) {
		unsigned long run = a;
		struct uffdio_continue cont = { .range.start = a };
		bool w;

		e = hmmu_host_pte_peek(host->mm, a, &ptep);
		w = hmmu_pte_write(e);
		while (ptep && a < end && a != addr && hmmu_host_pte_mappable(host, hmmu_pte_read(ptep), a, w)) {
			a += HMMU_PAGE_SIZE;
			ptep++;
		}
		if (a == run) {
			a += HMMU_PAGE_SIZE;
			continue;
		}
		cont.range.len = a - run;
		cont.mode = UFFDIO_CONTINUE_MODE_DONTWAKE | (w ? 0 : UFFDIO_CONTINUE_MODE_WP);
		if (ioctl(host->uffd, UFFDIO_CONTINUE, &cont) && cont.mapped >= 0)
			a = run + (unsigned long)cont.mapped + HMMU_PAGE_SIZE;
	}
}

/*
 * Map @addr for real as hmmu's entry has it, if no invalidation has begun
 * since @seq (read_retry under the stripe lock, the driver lock of the
 * protocol), and with @around its neighbours.  Context: mmap_lock held
 * for read.  0, -EAGAIN (retry the fault), -EXDEV (the entry maps a frame
 * of another node: rehome it).
 */
static int hmmu_host_install(struct hmmu_host *host, struct hmmu_vma *vma, unsigned long addr, bool write,
			     unsigned long seq, bool around)
{
	struct hmmu_host_stripe *s = hmmu_host_stripe_of(host, addr);
	hmmu_pte_t *ptep, e;
	int ret = -EAGAIN;

	pthread_mutex_lock(&s->lock);
	/* After read_retry, no invalidation can have downgraded the entry read here. */
	e = hmmu_host_pte_peek(host->mm, addr, &ptep);
	if (hmmu_interval_read_retry(&host->notifier, seq) || !hmmu_pte_present(e) || (write && !hmmu_pte_write(e)))
		goto out;
	if (hmmu_is_zero_pfn(hmmu_pte_pfn(e)))
		ret = hmmu_host_map_zero(host, addr);
	else if (hmmu_pte_pfn(e) != host->node->start_pfn + hmmu_host_idx(host, addr))
		ret = -EXDEV;
	else
		ret = hmmu_host_map_page(host, addr, hmmu_pte_write(e));
	if (!ret && around)
		hmmu_host_map_around(host, vma, addr);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* The fault                                                           */
/* ------------------------------------------------------------------ */

/*
 * The page at @addr is a system page of node 0 (device eviction, which
 * has no address to allocate for, brought it back): move it into the
 * frame of @addr with a one-page migration, then let the fault retry.
 * Context: mmap_lock held for read, no other lock.  Always -EAGAIN.
 */
static int hmmu_host_rehome(struct hmmu_host *host, struct hmmu_vma *vma, unsigned long addr)
{
	unsigned long src = 0, dst = 0;
	struct hmmu_migrate_vma args = {
		.vma = vma, .src = &src, .dst = &dst, .start = addr, .end = addr + HMMU_PAGE_SIZE,
		.pgmap_owner = host, .flags = HMMU_MIGRATE_VMA_SELECT_SYSTEM,
	};
	struct hmmu_page *spage, *dpage;

	if (hmmu_migrate_vma_setup(&args))
		return -EAGAIN;
	spage = hmmu_migrate_pfn_to_page(src);
	if ((src & HMMU_MIGRATE_PFN_MIGRATE) && spage && hmmu_page_node(spage) != host->node &&
	    (dpage = hmmu_alloc_page_vma(vma, addr))) {
		hmmu_lock_page(dpage);
		memcpy(hmmu_page_address(dpage), hmmu_page_address(spage), HMMU_PAGE_SIZE);
		dst = hmmu_migrate_pfn(hmmu_page_to_pfn(dpage));
	}
	hmmu_migrate_vma_pages(&args);
	hmmu_migrate_vma_finalize(&args);
	return -EAGAIN;
}

/* hmmu's fault result as an errno: -ENOMEM, -EIO (SIGBUS) or -EACCES (SIGSEGV). */
static int hmmu_host_fault_errno(hmmu_vm_fault_t ret)
{
	if (ret & HMMU_VM_FAULT_OOM)
		return -ENOMEM;
	return ret & HMMU_VM_FAULT_SIGSEGV ? -EACCES : -EIO;
}

/*
 * One pass: under the mmap_lock, fault @addr in hmmu's page table and
 * install it.  *@around is set (and stays set over the passes of one
 * fault) once the entry is seen on a device: then neighbours are mapped
 * too.  0, -EAGAIN (an invalidation intervened: again), -EFAULT (no VMA),
 * -EACCES (the VMA forbids the access) or hmmu_host_fault_errno().
 */
static int hmmu_host_fault_once(struct hmmu_host *host, unsigned long addr, bool write, bool *around)
{
	unsigned long seq = hmmu_interval_read_begin(&host->notifier);
	struct hmmu_mm *mm = host->mm;
	struct hmmu_vma *vma;
	hmmu_vm_fault_t fret;
	int ret;

	hmmu_mmap_read_lock(mm);
	vma = hmmu_vma_lookup(mm, addr);
	if (!vma) {
		ret = -EFAULT;
	} else if (!(vma->vm_flags & (write ? HMMU_VM_WRITE : HMMU_VM_READ))) {
		ret = -EACCES;
	} else {
		hmmu_pte_t *ptep, e = hmmu_host_pte_peek(mm, addr, &ptep);

		/* A page coming back from a device may bring neighbours (fault-around). */
		*around |= !hmmu_pte_none(e) && !hmmu_pte_present(e);
		fret = hmmu_handle_mm_fault(vma, addr, HMMU_FAULT_FLAG_USER | (write ? HMMU_FAULT_FLAG_WRITE : 0));
		ret = fret & HMMU_VM_FAULT_ERROR ? hmmu_host_fault_errno(fret)
						 : hmmu_host_install(host, vma, addr, write, seq, *around);
		if (ret == -EXDEV)
			ret = hmmu_host_rehome(host, vma, addr);
	}
	hmmu_mmap_read_unlock(mm);
	return ret;
}

/*
 * Resolve a fault at @addr of @host's arena: repeat the pass while an
 * invalidation intervenes or memory is short, within the retry timeout.
 * Context: no hmmu lock; may be a signal handler.  Returns 0 or the
 * pass's errno; -EIO for a page that stayed busy past the timeout.
 */
static int hmmu_host_fault(struct hmmu_host *host, unsigned long addr, bool write)
{
	struct timespec t0, now;
	bool around = false;
	int ret;

	if (!hmmu_mmget_not_zero(host->mm))
		return -EFAULT;
	hmmu_host_faulting = true;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		ret = hmmu_host_fault_once(host, addr & HMMU_PAGE_MASK, write, &around);
		if (ret != -EAGAIN && ret != -ENOMEM)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >
		    (long)hmmu_retry_timeout_ms()) {
			ret = ret == -EAGAIN ? -EIO : ret;
			break;
		}
	}
	hmmu_host_faulting = false;
	hmmu_count(HMMU_STAT_HOST_FAULT);
	hmmu_mmput(host->mm);
	return ret;
}

int hmmu_prefault(const void *addr, size_t len, bool write)
{
	unsigned long start = (unsigned long)addr, end = start + len;
	struct hmmu_host *host;
	int ret;

	if (!len || end < start)
		return -EINVAL;
	for (unsigned long a = start & HMMU_PAGE_MASK; a < end; a += HMMU_PAGE_SIZE) {
		host = hmmu_host_lookup(a);
		if (!host)
			return -EFAULT;
		ret = hmmu_host_fault(host, a, write);
		if (ret)
			return ret;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Signals                                                             */
/* ------------------------------------------------------------------ */

/* Did the faulting access write?  The page-fault error code's bit 1 on x86-64. */
static bool hmmu_host_fault_is_write(const void *uctx, struct hmmu_host *host, unsigned long addr)
{
#if defined(__x86_64__)
	const ucontext_t *uc = uctx;

	return uc->uc_mcontext.gregs[REG_ERR] & 2;
#else
	/* No error code here: a writable mapping is faulted for write (docs/host.md). */
	struct hmmu_vma *vma;
	bool write;

	hmmu_mmap_read_lock(host->mm);
	vma = hmmu_vma_lookup(host->mm, addr);
	write = vma && (vma->vm_flags & HMMU_VM_WRITE);
	hmmu_mmap_read_unlock(host->mm);
	return write;
#endif
}

/* Reset @sig to its default action, unblock it and raise it: the process dies as the kernel would kill it. */
static void hmmu_host_die(int sig)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t set;

	sigaction(sig, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
}

/*
 * Deliver @sig (code @code, at @addr) as the kernel would have: to the
 * program's handler, with its mask, or the default action (an ignored
 * SIGSEGV or SIGBUS from a fault kills too).
 */
static void hmmu_host_deliver(int sig, int code, void *addr, void *uctx, const struct sigaction *act)
{
	siginfo_t si;
	sigset_t mask, old;

	if (act->sa_handler == SIG_DFL || act->sa_handler == SIG_IGN) {
		hmmu_host_die(sig);
		return;
	}
	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = code;
	si.si_addr = addr;
	mask = act->sa_mask;
	if (!(act->sa_flags & SA_NODEFER))
		sigaddset(&mask, sig);
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	if (act->sa_flags & SA_SIGINFO)
		act->sa_sigaction(sig, &si, uctx);
	else
		act->sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* A SIGBUS that is not a host fault: whoever handled SIGBUS before us. */
static void hmmu_host_chain(int sig, siginfo_t *si, void *uctx)
{
	const struct sigaction *old = &hmmu_host_old_sigbus;

	if (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN)
		hmmu_host_die(sig);
	else if (old->sa_flags & SA_SIGINFO)
		old->sa_sigaction(sig, si, uctx);
	else
		old->sa_handler(sig);
}

static void hmmu_host_sigbus(int sig, siginfo_t *si, void *uctx)
{
	unsigned long addr = (unsigned long)si->si_addr;
	struct hmmu_host *host = si->si_code > 0 ? hmmu_host_lookup(addr) : NULL;
	struct sigaction act;
	int saved_errno = errno, ret;

	if (!host) {
		hmmu_host_chain(sig, si, uctx);
		return;
	}
	ret = hmmu_host_fault(host, addr, hmmu_host_fault_is_write(uctx, host, addr));
	if (ret == -EFAULT || ret == -EACCES) {
		sigaction(SIGSEGV, NULL, &act);
		hmmu_host_deliver(SIGSEGV, ret == -EFAULT ? SEGV_MAPERR : SEGV_ACCERR, si->si_addr, uctx, &act);
	} else if (ret) {
		hmmu_host_deliver(SIGBUS, BUS_ADRERR, si->si_addr, uctx, &hmmu_host_old_sigbus);
	}
	errno = saved_errno;
}

/*
 * Make our handler SIGBUS's, keeping the one it replaces for faults not
 * ours.  Called at every host mm's creation, so a handler the program (or
 * a test framework) installed since is chained behind ours again.
 * Context: takes hmmu_host_signals_lock.
 */
int hmmu_host_signals(void)
{
	struct sigaction act = { .sa_sigaction = hmmu_host_sigbus, .sa_flags = SA_SIGINFO | SA_RESTART }, cur;
	int err = 0;

	sigemptyset(&act.sa_mask);
	pthread_mutex_lock(&hmmu_host_signals_lock);
	if (sigaction(SIGBUS, NULL, &cur))
		err = -errno;
	else if (!(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != hmmu_host_sigbus)
		err = sigaction(SIGBUS, &act, &hmmu_host_old_sigbus) ? -errno : 0;
	pthread_mutex_unlock(&hmmu_host_signals_lock);
	return err;
}
