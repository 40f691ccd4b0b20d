// SPDX-License-Identifier: MIT
/*
 * dmirror's commands (spec 5.6, 5.7): hmmu_dmirror_cmd() runs the kernel
 * test driver's ioctls with the same arguments, results and errors, and
 * the direct calls used by benchmarks (no bounce buffer, no read-back).
 *
 * The caller's buffer (`ptr`) is a pointer into this process; a NULL one
 * is the ioctl's failed user copy (-EFAULT), reported where the kernel
 * driver would copy.  READ, WRITE and the read-backs copy through a bounce
 * buffer as the kernel driver does, so nothing reaches the caller's buffer
 * unless the command succeeds.
 */
#include <stdlib.h>
#include <string.h>

#include "dmirror_priv.h"

/* The range of a command or call: 0, or -EINVAL (unaligned, empty or wrapping). */
int hmmu_dmirror_range_check(uint64_t addr, uint64_t npages)
{
	if (addr & ~HMMU_PAGE_MASK || !npages || npages > (UINT64_MAX - addr) >> HMMU_PAGE_SHIFT)
		return -EINVAL;
	return 0;
}

/*
 * The device reads (or, with @write, writes) @npages pages at @addr
 * through its table, faulting the rest of the range in at the first
 * missing page (one fault round per missing run: an unmapped range costs
 * one).  @buf holds the data.  *@cpages counts pages copied, *@faults fault
 * rounds.  Context: no dmirror lock held.  Returns 0 or the fault's error.
 */
static int dmirror_access(struct hmmu_dmirror *mirror, unsigned long addr, unsigned long npages, char *buf,
			  bool write, uint64_t *cpages, uint64_t *faults)
{
	unsigned long vpn = addr >> HMMU_PAGE_SHIFT, done = 0;
	int ret;

	for (;;) {
		done += hmmu_dmirror_pt_copy(mirror, vpn + done, npages - done, buf + done * DMIRROR_PAGE, write);
		*cpages = done;
		if (done == npages)
			return 0;
		hmmu_trace_begin(HMMU_TRACE_DEVICE_FAULT, addr + done * DMIRROR_PAGE, addr + npages * DMIRROR_PAGE,
				 npages - done);
		ret = hmmu_dmirror_fault(mirror, addr + done * DMIRROR_PAGE, addr + npages * DMIRROR_PAGE, write);
		hmmu_trace_end(HMMU_TRACE_DEVICE_FAULT, addr + done * DMIRROR_PAGE, addr + npages * DMIRROR_PAGE,
			       ret ? 0 : npages - done);
		if (ret)
			return ret;
		(*faults)++;
	}
}

/* READ (0): device read into a bounce buffer, then to cmd->ptr. */
static int dmirror_cmd_read(struct hmmu_dmirror *mirror, struct hmmu_dmirror_cmd *cmd)
{
	char *bounce = malloc(cmd->npages * DMIRROR_PAGE);
	int ret;

	if (!bounce)
		return -ENOMEM;
	ret = dmirror_access(mirror, cmd->addr, cmd->npages, bounce, false, &cmd->cpages, &cmd->faults);
	if (!ret && !cmd->ptr)
		ret = -EFAULT;
	if (!ret)
		memcpy((void *)(uintptr_t)cmd->ptr, bounce, cmd->npages * DMIRROR_PAGE);
	free(bounce);
	return ret;
}

/* WRITE (1): cmd->ptr into a bounce buffer first, then device writes. */
static int dmirror_cmd_write(struct hmmu_dmirror *mirror, struct hmmu_dmirror_cmd *cmd)
{
	char *bounce;
	int ret;

	if (!cmd->ptr)
		return -EFAULT;
	bounce = malloc(cmd->npages * DMIRROR_PAGE);
	if (!bounce)
		return -ENOMEM;
	memcpy(bounce, (const void *)(uintptr_t)cmd->ptr, cmd->npages * DMIRROR_PAGE);
	ret = dmirror_access(mirror, cmd->addr, cmd->npages, bounce, true, &cmd->cpages, &cmd->faults);
	free(bounce);
	return ret;
}

/*
 * Read the range back from the table without faulting (after
 * MIGRATE_TO_DEV and EXCLUSIVE): cpages = pages read; -ENOENT at the
 * first missing entry, -EFAULT for a NULL ptr, -ENOMEM.
 */
int hmmu_dmirror_read_back(struct hmmu_dmirror *mirror, struct hmmu_dmirror_cmd *cmd)
{
	char *bounce = malloc(cmd->npages * DMIRROR_PAGE);
	int ret = 0;

	if (!bounce)
		return -ENOMEM;
	cmd->cpages = hmmu_dmirror_pt_copy(mirror, cmd->addr >> HMMU_PAGE_SHIFT, cmd->npages, bounce, false);
	if (cmd->cpages != cmd->npages)
		ret = -ENOENT;
	else if (!cmd->ptr)
		ret = -EFAULT;
	else
		memcpy((void *)(uintptr_t)cmd->ptr, bounce, cmd->npages * DMIRROR_PAGE);
	free(bounce);
	return ret;
}

/* MIGRATE_TO_DEV (2): migrate, then cpages from the read-back. */
static int dmirror_cmd_migrate_to_dev(struct hmmu_dmirror *mirror, struct hmmu_dmirror_cmd *cmd)
{
	long ret = hmmu_dmirror_migrate_range(mirror, cmd->addr, cmd->addr + cmd->npages * DMIRROR_PAGE,
					      DMIRROR_BATCH, true);

	if (ret < 0)
		return (int)ret;
	return hmmu_dmirror_read_back(mirror, cmd);
}

/* MIGRATE_TO_SYS (3): cpages = pages that moved. */
static int dmirror_cmd_migrate_to_sys(struct hmmu_dmirror *mirror, struct hmmu_dmirror_cmd *cmd)
{
	long ret = hmmu_dmirror_migrate_range(mirror, cmd->addr, cmd->addr + cmd->npages * DMIRROR_PAGE,
					      DMIRROR_BATCH, false);

	if (ret < 0)
		return (int)ret;
	cmd->cpages = (uint64_t)ret;
	return 0;
}

/* ------------------------------------------------------------------ */
/* SNAPSHOT                                                            */
/* ------------------------------------------------------------------ */

/* A temporary subscription on one step of a snapshot. */
struct dmirror_snapshot {
	struct hmmu_interval_notifier notifier;
	struct hmmu_dmirror *mirror;
};

/* Its callback: only the sequence, under the mirror mutex (spec 5.4). */
static bool dmirror_snapshot_invalidate(struct hmmu_interval_notifier *sub, const struct hmmu_notifier_range *range,
					unsigned long cur_seq)
{
	struct dmirror_snapshot *snap = dmirror_container_of(sub, struct dmirror_snapshot, notifier);

	if (hmmu_notifier_range_blockable(range))
		pthread_mutex_lock(&snap->mirror->mutex);
	else if (pthread_mutex_trylock(&snap->mirror->mutex))
		return false;
	hmmu_interval_set_seq(sub, cur_seq);
	pthread_mutex_unlock(&snap->mirror->mutex);
	return true;
}

static const struct hmmu_interval_notifier_ops dmirror_snapshot_ops = {
	.invalidate = dmirror_snapshot_invalidate,
};

/* The SNAPSHOT byte of one hmmu_range_fault output (spec 5.7). */
static unsigned char dmirror_snapshot_byte(const struct hmmu_dmirror *mirror, unsigned long entry)
{
	struct hmmu_page *page = hmmu_hmm_pfn_to_page(entry);
	unsigned int shift = hmmu_pfn_to_map_order(entry) + HMMU_PAGE_SHIFT;
	unsigned char perm = HMMU_DMIRROR_PROT_NONE;
	bool local = page && page->pgmap && page->pgmap->owner == mirror->mdevice;

	if (entry & HMMU_PFN_ERROR)
		return HMMU_DMIRROR_PROT_ERROR;
	if (!(entry & HMMU_PFN_VALID))
		return HMMU_DMIRROR_PROT_NONE;
	if (hmmu_is_device_private_page(page))
		perm = local ? HMMU_DMIRROR_PROT_DEV_PRIVATE_LOCAL : HMMU_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
	else if (hmmu_is_device_coherent_page(page))
		perm = local ? HMMU_DMIRROR_PROT_DEV_COHERENT_LOCAL : HMMU_DMIRROR_PROT_DEV_COHERENT_REMOTE;
	else if (hmmu_is_zero_pfn(entry & ~HMMU_PFN_FLAGS))
		perm = HMMU_DMIRROR_PROT_ZERO;
	perm |= entry & HMMU_PFN_WRITE ? HMMU_DMIRROR_PROT_WRITE : HMMU_DMIRROR_PROT_READ;
	if (shift == HMMU_PMD_SHIFT)
		perm |= HMMU_DMIRROR_PROT_PMD;
	else if (shift == DMIRROR_PUD_SHIFT)
		perm |= HMMU_DMIRROR_PROT_PUD;
	return perm;
}

/*
 * Snapshot [start, end) (at most 64 pages) into @perm: a temporary
 * subscription on exactly that range, the canonical loop with a pure
 * snapshot request (no fault), the bytes computed under the mutex.  The
 * caller holds a user reference on the mm.  Returns 0, -EBUSY (retry
 * bound), -ENOMEM or hmmu_range_fault's error.
 */
static int dmirror_range_snapshot(struct hmmu_dmirror *mirror, unsigned long start, unsigned long end,
				  unsigned char *perm)
{
	struct dmirror_snapshot snap = { .mirror = mirror };
	unsigned long pfns[DMIRROR_BATCH];
	struct hmmu_range range = {
		.notifier = &snap.notifier, .start = start, .end = end, .hmm_pfns = pfns,
		.dev_private_owner = mirror->mdevice,
	};
	int ret = hmmu_interval_notifier_insert(&snap.notifier, dmirror_mm(mirror), start, end - start,
						&dmirror_snapshot_ops);

	if (ret)
		return ret;
	ret = hmmu_dmirror_range_fault_and_lock(mirror, &range);
	if (!ret) {
		for (unsigned long i = 0; i < (end - start) >> HMMU_PAGE_SHIFT; i++)
			perm[i] = dmirror_snapshot_byte(mirror, pfns[i]);
		pthread_mutex_unlock(&mirror->mutex);
	}
	hmmu_interval_notifier_remove(&snap.notifier);
	return ret;
}

/* SNAPSHOT (4): cpages = bytes written to ptr; -EINVAL if the mm is gone. */
static int dmirror_cmd_snapshot(struct hmmu_dmirror *mirror, struct hmmu_dmirror_cmd *cmd)
{
	unsigned long start = cmd->addr, end = cmd->addr + cmd->npages * DMIRROR_PAGE, next;
	unsigned char perm[DMIRROR_BATCH];
	int ret = 0;

	if (!hmmu_mmget_not_zero(dmirror_mm(mirror)))
		return -EINVAL;
	for (unsigned long addr = start; addr < end && !ret; addr = next) {
		unsigned long n;

		next = end - addr > DMIRROR_BATCH * DMIRROR_PAGE ? addr + DMIRROR_BATCH * DMIRROR_PAGE : end;
		n = (next - addr) >> HMMU_PAGE_SHIFT;
		ret = dmirror_range_snapshot(mirror, addr, next, perm);
		if (!ret && !cmd->ptr)
			ret = -EFAULT;
		if (ret)
			break;
		memcpy((unsigned char *)(uintptr_t)cmd->ptr + cmd->cpages, perm, n);
		cmd->cpages += n;
	}
	hmmu_mmput(dmirror_mm(mirror));
	return ret;
}

/* ------------------------------------------------------------------ */
/* Entry points                                                        */
/* ------------------------------------------------------------------ */

static int dmirror_cmd_run(struct hmmu_dmirror *mirror, unsigned int nr, struct hmmu_dmirror_cmd *cmd)
{
	switch (nr) {
	case HMMU_DMIRROR_READ:
		return dmirror_cmd_read(mirror, cmd);
	case HMMU_DMIRROR_WRITE:
		return dmirror_cmd_write(mirror, cmd);
	case HMMU_DMIRROR_MIGRATE_TO_DEV:
		return dmirror_cmd_migrate_to_dev(mirror, cmd);
	case HMMU_DMIRROR_MIGRATE_TO_SYS:
		return dmirror_cmd_migrate_to_sys(mirror, cmd);
	case HMMU_DMIRROR_SNAPSHOT:
		return dmirror_cmd_snapshot(mirror, cmd);
	case HMMU_DMIRROR_EXCLUSIVE:
		return hmmu_dmirror_cmd_exclusive(mirror, cmd);
	case HMMU_DMIRROR_CHECK_EXCLUSIVE:
		return hmmu_dmirror_cmd_check_exclusive(mirror, cmd);
	case HMMU_DMIRROR_RELEASE:
		hmmu_dmirror_device_remove_chunks(mirror->mdevice);
		return 0;
	default:
		return -EINVAL;
	}
}

/*
 * The ioctl (spec 5.6): check the argument, zero cpages and faults, run
 * the command on a private copy, copy it back only on success.  Context:
 * no hmmu lock held.  Errors: see include/hmmu/dmirror.h.
 */
int hmmu_dmirror_cmd(struct hmmu_dmirror *mirror, unsigned int nr, struct hmmu_dmirror_cmd *cmd)
{
	struct hmmu_dmirror_cmd c;
	int ret;

	if (!mirror || !cmd)
		return -EINVAL;
	c = *cmd;
	ret = hmmu_dmirror_range_check(c.addr, c.npages);
	if (ret)
		return ret;
	c.cpages = 0;
	c.faults = 0;
	ret = dmirror_cmd_run(mirror, nr, &c);
	if (!ret)
		*cmd = c;
	return ret;
}

/*
 * The device reads @npages pages at @addr straight into @buf, faulting
 * missing entries in (READ without the bounce buffer).  Context: no hmmu
 * lock held; @buf must not be memory of a host mm.  Returns 0, -EINVAL
 * (bad arguments) or READ's errors.
 */
int hmmu_dmirror_read(struct hmmu_dmirror *mirror, unsigned long addr, void *buf, unsigned long npages,
		      unsigned long *faults)
{
	uint64_t cpages = 0, nfaults = 0;
	int ret;

	if (!mirror || !buf || hmmu_dmirror_range_check(addr, npages))
		return -EINVAL;
	ret = dmirror_access(mirror, addr, npages, buf, false, &cpages, &nfaults);
	if (faults)
		*faults = nfaults;
	return ret;
}

/* Direct migrations: validate, then the MIGRATE_TO_DEV / _SYS loop without read-back. */
static long dmirror_migrate_direct(struct hmmu_dmirror *mirror, unsigned long addr, unsigned long npages,
				   unsigned long batch, bool to_device)
{
	if (!mirror || hmmu_dmirror_range_check(addr, npages))
		return -EINVAL;
	if (!batch)
		batch = DMIRROR_BATCH;
	if (batch > npages)
		batch = npages;
	return hmmu_dmirror_migrate_range(mirror, addr, addr + npages * DMIRROR_PAGE, batch, to_device);
}

long hmmu_dmirror_migrate_to_device(struct hmmu_dmirror *mirror, unsigned long addr, unsigned long npages,
				    unsigned long batch)
{
	return dmirror_migrate_direct(mirror, addr, npages, batch, true);
}

long hmmu_dmirror_migrate_to_system(struct hmmu_dmirror *mirror, unsigned long addr, unsigned long npages,
				    unsigned long batch)
{
	return dmirror_migrate_direct(mirror, addr, npages, batch, false);
}
