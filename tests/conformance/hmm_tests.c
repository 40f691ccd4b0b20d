// SPDX-License-Identifier: MIT
/*
 * conformance.<scenario>.<variant> (spec/conformance.md Part 1): the 29
 * scenarios of the kernel's HMM selftest (spec/kernel-semantics.md 6.2),
 * each in a private and a coherent variant, against the dmirror reference
 * device.  Run as `conformance_hmm_tests <scenario> private|coherent|host`.
 *
 * The host variant (issue 8, docs/host.md) is the private one on a host mm:
 * every CPU access is a plain load or store through the mm's real pointer.
 * It runs the scenarios on private anonymous memory that do not fork:
 *   open_close anon_read anon_read_prot anon_write anon_write_prot migrate
 *   migrate_fault migrate_release migrate_mixed migrate_multiple
 *   anon_read_multiple anon_teardown snapshot double_map exclusive
 *   exclusive_mprotect hmm_gup_test
 * and not: anon_write_child, anon_write_child_shared, exclusive_cow,
 * hmm_cow_in_device (fork), anon_write_huge (THP), anon_write_hugetlbfs and
 * compound (hugetlb), file_read, file_write, migrate_file_private (files),
 * migrate_shared (shared memory), mixedmap (a driver mapping).
 *
 * Mapping of the kernel test onto hmmu:
 *   process            an hmmu mm created by the fixture
 *   mmap/munmap/...    hmmu_mmap/hmmu_munmap/hmmu_mprotect/hmmu_madvise
 *   CPU loads/stores   hmmu_access (whole ranges at once: a sequence of
 *                      stores in address order, each page faulting once)
 *   /dev/hmm_dmirrorN  a dmirror device of the variant's memory type;
 *                      open/ioctl/close: hmmu_dmirror_open/_cmd/_close
 *   fixture hmm        one device; hmm2: two devices of the same type
 *                      (the kernel's minors 0,1 or 2,3).  Teardown asserts
 *                      close() == 0, as the kernel's does; then the mm goes,
 *                      no device page may still be in use, the devices are
 *                      destroyed and the harness checks that every system
 *                      page came back.  Never skipped: coherent devices and
 *                      hugetlb always exist in hmmu.
 *   fork()             hmmu_fork; the child process is the child mm driven
 *                      by a thread whose return value is its exit status
 *                      (0, or the line of its first failed check).
 *                      waitpid + WIFEXITED/WEXITSTATUS become join + "status
 *                      is 0"; the child's exit is closing its mirror and
 *                      dropping its mm (page tables validated first).
 *
 * The scenarios, and where the port differs from the kernel test:
 *   open_close              -
 *   anon_read               -
 *   anon_read_prot          -
 *   anon_write              -
 *   anon_write_prot         -
 *   anon_write_child        the child opens its own mirror of the variant's
 *                           device (the kernel's child always opens minor 0,
 *                           a private device; WRITE never allocates device
 *                           memory, so the type is immaterial).
 *   anon_write_child_shared as anon_write_child.
 *   anon_write_huge         -
 *   anon_write_hugetlbfs    hmmu's hugetlb: 2 MiB pages, always available
 *                           (no /proc/meminfo lookup, no skip).
 *   file_read               O_TMPFILE in /tmp (mkstemp + unlink fallback).
 *   file_write              hmmu's page cache is its own, written back to
 *                           the file by msync/munmap/teardown; the pread
 *                           check follows an hmmu_msync(MS_SYNC) (in Linux
 *                           the page cache is the file).
 *   migrate                 -
 *   migrate_file_private    -
 *   migrate_fault           -
 *   migrate_release         -
 *   migrate_shared          -
 *   migrate_mixed           -
 *   migrate_multiple        -
 *   anon_read_multiple      -
 *   anon_teardown           the unmapping thread's 0-32 us delay comes from
 *                           hmmu_test_seed(); its munmap must return 0.
 *   mixedmap                hmmu_dmirror_mmap() in place of mmap of the fd.
 *   snapshot                -
 *   compound                hugetlb always available (no early return); the
 *                           level must be PMD (the kernel accepts PMD or PUD,
 *                           whichever its default huge page size gives; hmmu's
 *                           is always 2 MiB).
 *   double_map              -
 *   exclusive               CPU "check then increment every int" runs page
 *                           by page (load the page, check and increment its
 *                           ints, store it): the first load of each page
 *                           restores its exclusive entry as the kernel's
 *                           first load does.  CHECK_EXCLUSIVE covers the
 *                           buffer.
 *   exclusive_mprotect      -
 *   exclusive_cow           the child (a thread) and the parent increment
 *                           concurrently, as the two processes do.
 *   hmm_gup_test            the gup_test module becomes hmmu's GUP, one page
 *                           each, FOLL_WRITE, references released at once as
 *                           gup_test does: GUP_BASIC_TEST and
 *                           GUP_FAST_BENCHMARK -> hmmu_get_user_pages_remote
 *                           (hmmu has no separate fast path),
 *                           PIN_FAST_BENCHMARK + FOLL_LONGTERM and
 *                           PIN_LONGTERM_BENCHMARK -> hmmu_pin_user_pages_remote
 *                           with FOLL_LONGTERM.  Never skipped.
 *   hmm_cow_in_device       the busy-looping child is the child mm left
 *                           alive while the parent writes; SIGTERM + waitpid
 *                           become dropping the child mm, whose teardown
 *                           must complete with valid page tables.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hmmu/dmirror.h>

#include "conf_case.h"

#define PAGE HMMU_PAGE_SIZE
#define HMM_BUFFER_SIZE (1024 * PAGE)
#define TWOMEG (2UL << 20)
#define NTIMES 10
#define ANY (-1L)	/* expect_ok(): faults not checked */

/* ------------------------------------------------------------------ */
/* Fixtures hmm and hmm2                                               */
/* ------------------------------------------------------------------ */

struct fixture {
	struct hmmu_mm *mm;			/* the test process */
	int ndev;				/* 1: hmm, 2: hmm2 */
	struct hmmu_dmirror_device *dev[2];
	struct hmmu_dmirror *mirror[2];		/* the kernel's fd (fd0) and fd1 */
	struct hmmu_mm *child;			/* a forked child still alive */
	struct hmmu_dmirror *child_mirror;	/* the child's own open, if any */
};

static struct fixture the_fixture;

static int fixture_setup(void **state)
{
	struct hmmu_dmirror_device_config cfg = { .type = conf_variant };
	struct fixture *self = &the_fixture;

	hmmu_test_setup(state);
	memset(self, 0, sizeof(*self));
	self->ndev = conf_current->arg;
	assert_int_equal(hmmu_mm_create(conf_host ? HMMU_MM_HOST : HMMU_MM_DEFAULT, &self->mm), 0);
	for (int i = 0; i < self->ndev; i++) {
		assert_int_equal(hmmu_dmirror_device_create(&cfg, &self->dev[i]), 0);
		assert_int_equal(hmmu_dmirror_open(self->dev[i], self->mm, &self->mirror[i]), 0);
	}
	*state = self;
	return 0;
}

/* The kernel fixture's close() == 0, then the process exits; then no device page may be left. */
static int fixture_teardown(void **state)
{
	struct fixture *self = &the_fixture;
	int failed = 0;

	if (self->child_mirror)
		failed += hmmu_dmirror_close(self->child_mirror) != 0;
	for (int i = 0; i < self->ndev; i++)
		if (self->mirror[i])
			assert_int_equal(hmmu_dmirror_close(self->mirror[i]), 0);
	if (self->child) {
		failed += hmmu_pt_validate(self->child) != 0;
		hmmu_mmput(self->child);
	}
	if (self->mm) {
		failed += hmmu_pt_validate(self->mm) != 0;
		failed += hmmu_page_alloc_validate() != 0;	/* a host mm's frames while it lives */
		hmmu_mmput(self->mm);
	}
	assert_int_equal(failed, 0);
	for (int i = 0; i < self->ndev; i++) {
		struct hmmu_dmirror_device_stats st;

		if (!self->dev[i])
			continue;
		assert_int_equal(hmmu_dmirror_device_get_stats(self->dev[i], &st), 0);
		assert_int_equal(st.pages_in_use, 0);
		assert_int_equal(hmmu_dmirror_device_destroy(self->dev[i]), 0);
	}
	memset(self, 0, sizeof(*self));
	return hmmu_test_teardown(state);
}

/* ------------------------------------------------------------------ */
/* The kernel test's helpers                                           */
/* ------------------------------------------------------------------ */

/* hmm_buffer: a range of the mm and the device's side of it. */
struct buffer {
	unsigned long ptr;	/* start in the mm; 0: not mapped */
	size_t size;
	void *mirror;		/* malloc'ed: what the device reads or writes */
	int fd;			/* backing file, or -1 */
	uint64_t cpages, faults;
};

static struct buffer *buffer_alloc(size_t size)
{
	struct buffer *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	b->size = size;
	b->fd = -1;
	b->mirror = malloc(size);
	assert_non_null(b->mirror);
	return b;
}

static void buffer_free(struct hmmu_mm *mm, struct buffer *b)
{
	if (b->ptr)
		assert_int_equal(hmmu_munmap(mm, b->ptr, b->size), 0);
	if (b->fd >= 0)
		close(b->fd);
	free(b->mirror);
	free(b);
}

/* mmap() that must succeed. */
static unsigned long map(struct hmmu_mm *mm, size_t size, int prot, int flags, int fd)
{
	long ret = hmmu_mmap(mm, 0, size, prot, flags | (fd < 0 ? MAP_ANONYMOUS : 0), fd, 0);

	if (ret < 0)
		print_error("hmmu_mmap: %ld\n", ret);
	assert_true(ret >= 0);
	return (unsigned long)ret;
}

/* hmm_dmirror_cmd(): on success cpages and faults land in the buffer. */
static int dmirror_cmd(struct hmmu_dmirror *mirror, unsigned int nr, struct buffer *b, unsigned long npages)
{
	struct hmmu_dmirror_cmd cmd = { .addr = b->ptr, .ptr = (uintptr_t)b->mirror, .npages = npages };
	int ret = hmmu_dmirror_cmd(mirror, nr, &cmd);

	if (ret)
		return ret;
	b->cpages = cmd.cpages;
	b->faults = cmd.faults;
	return 0;
}

/* The spec's ok(c, f): the command returned 0 with these counts (@faults ANY: not checked). */
static void expect_ok(int ret, const struct buffer *b, unsigned long cpages, long faults)
{
	assert_int_equal(ret, 0);
	assert_int_equal(b->cpages, cpages);
	if (faults != ANY)
		assert_int_equal(b->faults, faults);
}

/* hmm_create_file(): an anonymous temporary file of @size bytes. */
static int create_file(size_t size)
{
	char name[] = "/tmp/hmmu-conf-XXXXXX";
	int fd = open("/tmp", O_TMPFILE | O_RDWR | O_EXCL, 0600);

	if (fd < 0) {
		fd = mkstemp(name);
		assert_true(fd >= 0);
		unlink(name);
	}
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

/*
 * The data pattern: the memory viewed as ints, int k (counted from the
 * start of the buffer) holds mul * k + add; "init i" is (1, 0), "-i" is
 * (-1, 0), "i + c" is (1, c), zeros (0, 0).  Helpers act on the byte range
 * [off, end) of the buffer.
 */
static void ints_fill(void *base, size_t off, size_t end, int mul, int add)
{
	int *p = base;

	for (size_t k = off / sizeof(int); k < end / sizeof(int); k++)
		p[k] = mul * (int)k + add;
}

/* The first int of [off, end) that differs (printed), or -1. */
static long ints_mismatch(const void *base, size_t off, size_t end, int mul, int add)
{
	const int *p = base;

	for (size_t k = off / sizeof(int); k < end / sizeof(int); k++) {
		if (p[k] != mul * (int)k + add) {
			print_message("int %zu is %d, expected %d\n", k, p[k], mul * (int)k + add);
			return (long)k;
		}
	}
	return -1;
}

static void assert_ints(const void *base, size_t off, size_t end, int mul, int add)
{
	assert_int_equal(ints_mismatch(base, off, end, mul, add), -1);
}

/* CPU stores of the pattern into [addr + off, addr + end). 0 or hmmu_access's error. */
static int cpu_store_ints(struct hmmu_mm *mm, unsigned long addr, size_t off, size_t end, int mul, int add)
{
	char *tmp;
	int ret;

	if (conf_host) {
		cpu_host_arm();
		ints_fill((void *)addr, off, end, mul, add);
		return 0;
	}
	tmp = malloc(end);
	if (!tmp)
		return -ENOMEM;
	ints_fill(tmp, off, end, mul, add);
	ret = hmmu_access(mm, addr + off, tmp + off, end - off, HMMU_ACCESS_WRITE);
	free(tmp);
	return ret;
}

/* CPU loads of [addr + off, addr + end): 0 if they hold the pattern, -EIO if not, or hmmu_access's error. */
static int cpu_check_ints(struct hmmu_mm *mm, unsigned long addr, size_t off, size_t end, int mul, int add)
{
	char *tmp;
	int ret;

	if (conf_host) {
		cpu_host_arm();
		return ints_mismatch((const void *)addr, off, end, mul, add) >= 0 ? -EIO : 0;
	}
	tmp = malloc(end);
	if (!tmp)
		return -ENOMEM;
	ret = hmmu_access(mm, addr + off, tmp + off, end - off, HMMU_ACCESS_READ);
	if (!ret && ints_mismatch(tmp, off, end, mul, add) >= 0)
		ret = -EIO;
	free(tmp);
	return ret;
}

/*
 * The kernel's `ASSERT_EQ(ptr[i]++, i)` over the buffer, a page at a time:
 * load the page, check that int k holds k, increment, store the page
 * (the host variant: each int in place).  0, -EIO on a mismatch, or
 * hmmu_access's error.
 */
static int cpu_check_and_increment(struct hmmu_mm *mm, unsigned long addr, size_t size)
{
	int buf[PAGE / sizeof(int)];
	size_t per_page = PAGE / sizeof(int);
	int ret;

	if (conf_host)
		cpu_host_arm();
	for (size_t off = 0; off < size; off += PAGE) {
		size_t first = off / sizeof(int);
		int *page = conf_host ? (int *)(addr + off) : buf;

		ret = conf_host ? 0 : hmmu_access(mm, addr + off, buf, PAGE, HMMU_ACCESS_READ);
		if (ret)
			return ret;
		for (size_t k = 0; k < per_page; k++) {
			if (page[k] != (int)(first + k)) {
				print_message("int %zu is %d, expected %d\n", first + k, page[k], (int)(first + k));
				return -EIO;
			}
			page[k]++;
		}
		ret = conf_host ? 0 : hmmu_access(mm, addr + off, buf, PAGE, HMMU_ACCESS_WRITE);
		if (ret)
			return ret;
	}
	return 0;
}

static unsigned long align_up(unsigned long x, unsigned long a)
{
	return (x + a - 1) & ~(a - 1);
}

/* ------------------------------------------------------------------ */
/* fork(): the child mm and the thread that plays the child process    */
/* ------------------------------------------------------------------ */

struct child {
	struct fixture *self;
	struct buffer *b;
	int (*body)(struct child *c);
	pthread_t thread;
	int status;	/* exit status: 0, or the line of the first failed check */
};

/* A check in the child: on failure the child "exits" with the line number. */
#define CHILD_CHECK(cond)                                                               \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "child: line %d: check failed: %s\n", __LINE__, #cond); \
			return __LINE__;                                                \
		}                                                                       \
	} while (0)

static struct hmmu_mm *fork_mm(struct fixture *self)
{
	assert_null(self->child);
	assert_int_equal(hmmu_fork(self->mm, &self->child), 0);
	return self->child;
}

/* The child's exit: its address space goes (validated first). */
static void child_exit(struct fixture *self)
{
	assert_int_equal(hmmu_pt_validate(self->child), 0);
	hmmu_mmput(self->child);
	self->child = NULL;
}

static void *child_thread(void *p)
{
	struct child *c = p;

	c->status = c->body(c);
	return NULL;
}

static void child_start(struct child *c)
{
	assert_int_equal(pthread_create(&c->thread, NULL, child_thread, c), 0);
}

/* waitpid(): the child ran to its end and exited with status 0. */
static void child_wait(struct child *c)
{
	assert_int_equal(pthread_join(c->thread, NULL), 0);
	assert_int_equal(c->status, 0);
}

/* ------------------------------------------------------------------ */
/* The scenarios                                                       */
/* ------------------------------------------------------------------ */

/*
 * A buffer of @npages private RW pages (of a new temporary file if @file,
 * else anonymous), int i stored at index i by the CPU.
 */
static struct buffer *ints_buffer(struct fixture *self, unsigned long npages, bool file)
{
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);

	if (file)
		b->fd = create_file(size);
	b->ptr = map(self->mm, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, file ? b->fd : -1);
	assert_int_equal(cpu_store_ints(self->mm, b->ptr, 0, size, 1, 0), 0);
	return b;
}

/*
 * The common start of the migration scenarios: ints_buffer(), then
 * MIGRATE_TO_DEV everything (cpages npages) and check the device's read-back.
 */
static struct buffer *migrated_ints(struct fixture *self, unsigned long npages, bool file)
{
	struct buffer *b = ints_buffer(self, npages, file);

	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_MIGRATE_TO_DEV, b, npages), b, npages, ANY);
	assert_ints(b->mirror, 0, npages * PAGE, 1, 0);
	return b;
}

/* 1: the fixture opens the device and closes it with 0. */
static void open_close(void **state)
{
}

/* 2: the device reads none, zero-page and read-only pages in one fault round. */
static void anon_read(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);
	int val = -1;

	b->ptr = map(self->mm, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
	/* Pages 0 (left empty) and 1 (the zero page, below) are not written. */
	assert_int_equal(cpu_store_ints(self->mm, b->ptr, 2 * PAGE, size, 1, 0), 0);
	assert_int_equal(hmmu_mprotect(self->mm, b->ptr, size, PROT_READ), 0);
	cpu_get(self->mm, b->ptr + PAGE, &val, sizeof(val));
	assert_int_equal(val, 0);

	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_READ, b, npages), b, npages, 1);
	assert_ints(b->mirror, 0, 2 * PAGE, 0, 0);
	assert_ints(b->mirror, 2 * PAGE, size, 1, 0);
	buffer_free(self->mm, b);
}

/* 3: reading a PROT_NONE range fails and copies nothing out. */
static void anon_read_prot(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = ints_buffer(self, npages, false);

	ints_fill(b->mirror, 0, size, -1, 0);
	assert_int_equal(hmmu_mprotect(self->mm, b->ptr, size, PROT_NONE), 0);

	assert_int_equal(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_READ, b, npages), -EFAULT);
	assert_int_equal(hmmu_mprotect(self->mm, b->ptr, size, PROT_READ), 0);
	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size, 1, 0), 0);
	assert_ints(b->mirror, 0, size, -1, 0);
	buffer_free(self->mm, b);
}

/* 4: the device writes an untouched range in one fault round. */
static void anon_write(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);

	b->ptr = map(self->mm, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
	ints_fill(b->mirror, 0, size, 1, 0);
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_WRITE, b, npages), b, npages, 1);
	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size, 1, 0), 0);
	buffer_free(self->mm, b);
}

/* 5: writing a read-only range fails with -EPERM until mprotect allows it. */
static void anon_write_prot(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);

	b->ptr = map(self->mm, size, PROT_READ, MAP_PRIVATE, -1);
	/* The device reads page 0: the zero page. */
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_READ, b, 1), b, 1, 1);
	assert_int_equal(((int *)b->mirror)[0], 0);

	ints_fill(b->mirror, 0, size, 1, 0);
	assert_int_equal(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_WRITE, b, npages), -EPERM);
	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size, 0, 0), 0);

	assert_int_equal(hmmu_mprotect(self->mm, b->ptr, size, PROT_READ | PROT_WRITE), 0);
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_WRITE, b, npages), b, npages, 1);
	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size, 1, 0), 0);
	buffer_free(self->mm, b);
}

/* The child of 6 and 7: sees the parent's data, has its own mirror write -i. */
static int write_child_body(struct child *c)
{
	struct fixture *self = c->self;
	struct buffer *b = c->b;
	unsigned long npages = b->size / PAGE;
	int ret;

	CHILD_CHECK(cpu_check_ints(self->child, b->ptr, 0, b->size, 1, 0) == 0);
	CHILD_CHECK(ints_mismatch(b->mirror, 0, b->size, -1, 0) < 0);
	CHILD_CHECK(hmmu_dmirror_open(self->dev[0], self->child, &self->child_mirror) == 0);
	ret = dmirror_cmd(self->child_mirror, HMMU_DMIRROR_WRITE, b, npages);
	CHILD_CHECK(ret == 0);
	CHILD_CHECK(b->cpages == npages);
	CHILD_CHECK(b->faults == 1);
	CHILD_CHECK(cpu_check_ints(self->child, b->ptr, 0, b->size, -1, 0) == 0);
	ret = hmmu_dmirror_close(self->child_mirror);
	self->child_mirror = NULL;
	CHILD_CHECK(ret == 0);
	return 0;
}

/* 6, 7: a child writes through its own mirror; the parent sees @parent_mul * i afterwards. */
static void write_child(struct fixture *self, int flags, int parent_mul)
{
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);
	struct child c = { .self = self, .b = b, .body = write_child_body };

	b->ptr = map(self->mm, size, PROT_READ | PROT_WRITE, flags, -1);
	assert_int_equal(cpu_store_ints(self->mm, b->ptr, 0, size, 1, 0), 0);
	ints_fill(b->mirror, 0, size, -1, 0);

	fork_mm(self);
	child_start(&c);
	child_wait(&c);
	child_exit(self);
	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size, parent_mul, 0), 0);
	buffer_free(self->mm, b);
}

/* 6: private anonymous memory: the child's writes stay in the child (COW). */
static void anon_write_child(void **state)
{
	write_child(*state, MAP_PRIVATE, 1);
}

/* 7: shared anonymous memory: the parent sees the child's writes. */
static void anon_write_child_shared(void **state)
{
	write_child(*state, MAP_SHARED, -1);
}

/* 8: a device write into a MADV_HUGEPAGE window (THP). */
static void anon_write_huge(void **state)
{
	struct fixture *self = *state;
	struct buffer *b = buffer_alloc(2 * TWOMEG);
	unsigned long npages = TWOMEG / PAGE, old_ptr;

	b->ptr = map(self->mm, 2 * TWOMEG, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
	old_ptr = b->ptr;
	b->ptr = align_up(b->ptr, TWOMEG);
	assert_int_equal(hmmu_madvise(self->mm, b->ptr, TWOMEG, MADV_HUGEPAGE), 0);

	ints_fill(b->mirror, 0, TWOMEG, 1, 0);
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_WRITE, b, npages), b, npages, 1);
	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, TWOMEG, 1, 0), 0);
	b->ptr = old_ptr;
	buffer_free(self->mm, b);
}

/* 9: a device write into a hugetlb mapping. */
static void anon_write_hugetlbfs(void **state)
{
	struct fixture *self = *state;
	size_t size = TWOMEG;	/* 2 MiB rounded up to the huge page size, 2 MiB */
	unsigned long npages = size / PAGE;
	struct buffer *b = buffer_alloc(size);

	b->ptr = map(self->mm, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_HUGETLB, -1);
	ints_fill(b->mirror, 0, size, 1, 0);
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_WRITE, b, npages), b, npages, 1);
	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size, 1, 0), 0);
	buffer_free(self->mm, b);
}

/* 10: the device reads a shared file mapping. */
static void file_read(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);

	b->fd = create_file(size);
	ints_fill(b->mirror, 0, size, 1, 0);
	assert_int_equal(pwrite(b->fd, b->mirror, size, 0), (ssize_t)size);
	memset(b->mirror, 0, size);
	b->ptr = map(self->mm, size, PROT_READ, MAP_SHARED, b->fd);

	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_READ, b, npages), b, npages, 1);
	assert_ints(b->mirror, 0, size, 1, 0);
	buffer_free(self->mm, b);
}

/* 11: the device writes a shared file mapping: the CPU and the file see it. */
static void file_write(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);

	b->fd = create_file(size);
	b->ptr = map(self->mm, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd);
	ints_fill(b->mirror, 0, size, 1, 0);

	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_WRITE, b, npages), b, npages, 1);
	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size, 1, 0), 0);
	/* hmmu's page cache reaches the file on writeback (see the header). */
	assert_int_equal(hmmu_msync(self->mm, b->ptr, size, MS_SYNC), 0);
	memset(b->mirror, 0, size);
	assert_int_equal(pread(b->fd, b->mirror, size, 0), (ssize_t)size);
	assert_ints(b->mirror, 0, size, 1, 0);
	buffer_free(self->mm, b);
}

/* 12: anonymous memory migrates to the device. */
static void migrate(void **state)
{
	struct fixture *self = *state;

	buffer_free(self->mm, migrated_ints(self, HMM_BUFFER_SIZE / PAGE, false));
}

/* 13: anonymous COW pages of a private file mapping migrate to the device. */
static void migrate_file_private(void **state)
{
	struct fixture *self = *state;

	buffer_free(self->mm, migrated_ints(self, HMM_BUFFER_SIZE / PAGE, true));
}

/* 14: migrate, fault half back with the CPU, migrate the mixture again. */
static void migrate_fault(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = migrated_ints(self, npages, false);

	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size / 2, 1, 0), 0);

	memset(b->mirror, 0, size);
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_MIGRATE_TO_DEV, b, npages), b, npages, ANY);
	assert_ints(b->mirror, 0, size, 1, 0);
	buffer_free(self->mm, b);
}

/* 15: RELEASE evicts all device memory; the CPU still reads the data. */
static void migrate_release(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = migrated_ints(self, npages, false);

	assert_int_equal(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_RELEASE, b, npages), 0);
	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size / 2, 1, 0), 0);
	buffer_free(self->mm, b);
}

/* 16: shared anonymous memory does not migrate: the read-back finds nothing. */
static void migrate_shared(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);

	b->ptr = map(self->mm, size, PROT_READ | PROT_WRITE, MAP_SHARED, -1);
	assert_int_equal(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_MIGRATE_TO_DEV, b, npages), -ENOENT);
	buffer_free(self->mm, b);
}

/* 17: migration of unreadable, unmapped, zero-page, read-only and writable pages; foreign pages stay. */
static void migrate_mixed(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = 6, p;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);
	int val = -1;

	b->ptr = p = map(self->mm, size, PROT_NONE, MAP_PRIVATE, -1);
	assert_int_equal(dmirror_cmd(self->mirror[1], HMMU_DMIRROR_MIGRATE_TO_DEV, b, npages), -EINVAL);

	/* A hole at page 1: the range is not covered by one VMA. */
	assert_int_equal(hmmu_munmap(self->mm, p + PAGE, PAGE), 0);
	assert_int_equal(dmirror_cmd(self->mirror[1], HMMU_DMIRROR_MIGRATE_TO_DEV, b, 3), -EINVAL);

	/* Page 2: the zero page, read-only. */
	assert_int_equal(hmmu_mprotect(self->mm, p + 2 * PAGE, PAGE, PROT_READ), 0);
	cpu_get(self->mm, p + 2 * PAGE, &val, sizeof(val));
	val += 3;
	assert_int_equal(val, 3);
	/* Page 3: written, then read-only. */
	assert_int_equal(hmmu_mprotect(self->mm, p + 3 * PAGE, PAGE, PROT_READ | PROT_WRITE), 0);
	cpu_put(self->mm, p + 3 * PAGE, &val, sizeof(val));
	assert_int_equal(hmmu_mprotect(self->mm, p + 3 * PAGE, PAGE, PROT_READ), 0);
	/* Pages 4 and 5: written, read-write. */
	assert_int_equal(hmmu_mprotect(self->mm, p + 4 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE), 0);
	cpu_put(self->mm, p + 4 * PAGE, &val, sizeof(val));
	cpu_put(self->mm, p + 5 * PAGE, &val, sizeof(val));

	b->ptr = p + 2 * PAGE;
	expect_ok(dmirror_cmd(self->mirror[1], HMMU_DMIRROR_MIGRATE_TO_DEV, b, 4), b, 4, ANY);

	/* Page 5 is device 1's now: device 0 cannot select it. */
	b->ptr = p + 5 * PAGE;
	assert_int_equal(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_MIGRATE_TO_DEV, b, 1), -ENOENT);
	b->ptr = p;
	buffer_free(self->mm, b);
}

/* 18: migrate a fresh buffer NTIMES (and back, coherent only). */
static void migrate_multiple(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;

	for (int c = 0; c < NTIMES; c++) {
		struct buffer *b = migrated_ints(self, npages, false);
		if (conf_coherent())
			expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_MIGRATE_TO_SYS, b, npages), b, npages,
				  ANY);
		assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size, 1, 0), 0);
		buffer_free(self->mm, b);
	}
}

/* 19: read a fresh buffer NTIMES. */
static void anon_read_multiple(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;

	for (int c = 0; c < NTIMES; c++) {
		struct buffer *b = buffer_alloc(size);

		b->ptr = map(self->mm, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
		assert_int_equal(cpu_store_ints(self->mm, b->ptr, 0, size, 1, c), 0);
		expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_READ, b, npages), b, npages, 1);
		assert_ints(b->mirror, 0, size, 1, c);
		buffer_free(self->mm, b);
	}
}

/* anon_teardown's thread: after a short random delay, unmap the second half. */
struct unmapper {
	struct hmmu_mm *mm;
	struct buffer *b;
	long delay_ns;
	int ret;
};

static void *unmap_buffer(void *p)
{
	struct unmapper *u = p;
	struct timespec ts = { .tv_nsec = u->delay_ns };

	nanosleep(&ts, NULL);
	u->ret = hmmu_munmap(u->mm, u->b->ptr + u->b->size / 2, u->b->size / 2);
	return NULL;
}

/* 20: a device read races with munmap: any error is fine, success must be exact. */
static void anon_teardown(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	uint64_t rng = hmmu_test_seed();

	for (int c = 0; c < NTIMES; c++) {
		struct buffer *b = buffer_alloc(size);
		struct unmapper u = { .mm = self->mm, .b = b, .delay_ns = (long)(hmmu_test_rand(&rng) % 32000) };
		pthread_t thread;
		int ret;

		b->ptr = map(self->mm, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
		assert_int_equal(cpu_store_ints(self->mm, b->ptr, 0, size, 1, c), 0);
		assert_int_equal(pthread_create(&thread, NULL, unmap_buffer, &u), 0);
		ret = dmirror_cmd(self->mirror[0], HMMU_DMIRROR_READ, b, npages);
		if (ret == 0) {
			expect_ok(ret, b, npages, 1);
			assert_ints(b->mirror, 0, size, 1, c);
		}
		assert_int_equal(pthread_join(thread, NULL), 0);
		assert_int_equal(u.ret, 0);
		buffer_free(self->mm, b);
	}
}

/* 21: a MIXEDMAP mapping of the device, private writable: its page is read-only. */
static void mixedmap(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = 1;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(npages);
	long addr = hmmu_dmirror_mmap(self->mirror[0], 0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	unsigned char *m = b->mirror;

	assert_true(addr >= 0);
	b->ptr = (unsigned long)addr;
	b->size = size;
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_SNAPSHOT, b, npages), b, npages, ANY);
	assert_int_equal(m[0], HMMU_DMIRROR_PROT_READ);
	buffer_free(self->mm, b);
}

/* 22: the snapshot bytes of every kind of entry. */
static void snapshot(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = 7, p;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);
	unsigned char *m = b->mirror;
	int val = -1;

	b->ptr = p = map(self->mm, size, PROT_NONE, MAP_PRIVATE, -1);
	/* Page 1: no VMA. */
	assert_int_equal(hmmu_munmap(self->mm, p + PAGE, PAGE), 0);
	/* Page 2: the zero page, read-only. */
	assert_int_equal(hmmu_mprotect(self->mm, p + 2 * PAGE, PAGE, PROT_READ), 0);
	cpu_get(self->mm, p + 2 * PAGE, &val, sizeof(val));
	val += 3;
	assert_int_equal(val, 3);
	/* Page 3: written, then read-only. */
	assert_int_equal(hmmu_mprotect(self->mm, p + 3 * PAGE, PAGE, PROT_READ | PROT_WRITE), 0);
	cpu_put(self->mm, p + 3 * PAGE, &val, sizeof(val));
	assert_int_equal(hmmu_mprotect(self->mm, p + 3 * PAGE, PAGE, PROT_READ), 0);
	/* Pages 4-6: read-write; page 4 written; 5 to device 0, 6 to device 1. */
	assert_int_equal(hmmu_mprotect(self->mm, p + 4 * PAGE, 3 * PAGE, PROT_READ | PROT_WRITE), 0);
	cpu_put(self->mm, p + 4 * PAGE, &val, sizeof(val));
	b->ptr = p + 5 * PAGE;
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_MIGRATE_TO_DEV, b, 1), b, 1, ANY);
	b->ptr = p + 6 * PAGE;
	expect_ok(dmirror_cmd(self->mirror[1], HMMU_DMIRROR_MIGRATE_TO_DEV, b, 1), b, 1, ANY);

	b->ptr = p;
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_SNAPSHOT, b, npages), b, npages, ANY);
	assert_int_equal(m[0], HMMU_DMIRROR_PROT_ERROR);
	assert_int_equal(m[1], HMMU_DMIRROR_PROT_ERROR);
	assert_int_equal(m[2], HMMU_DMIRROR_PROT_ZERO | HMMU_DMIRROR_PROT_READ);
	assert_int_equal(m[3], HMMU_DMIRROR_PROT_READ);
	assert_int_equal(m[4], HMMU_DMIRROR_PROT_WRITE);
	if (!conf_coherent()) {
		assert_int_equal(m[5], HMMU_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMMU_DMIRROR_PROT_WRITE);
		assert_int_equal(m[6], HMMU_DMIRROR_PROT_NONE);
	} else {
		assert_int_equal(m[5], HMMU_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMMU_DMIRROR_PROT_WRITE);
		assert_int_equal(m[6], HMMU_DMIRROR_PROT_DEV_COHERENT_REMOTE | HMMU_DMIRROR_PROT_WRITE);
	}
	buffer_free(self->mm, b);
}

/* Every one of the @n snapshot bytes equals @expect. */
static void assert_all_bytes(const unsigned char *m, unsigned long n, unsigned char expect)
{
	for (unsigned long i = 0; i < n; i++) {
		if (m[i] != expect)
			print_message("byte %lu is 0x%02x, expected 0x%02x\n", i, m[i], expect);
		assert_int_equal(m[i], expect);
	}
}

/* 23: a hugetlb page is reported at PMD level, writable then read-only. */
static void compound(void **state)
{
	struct fixture *self = *state;
	size_t size = TWOMEG;
	unsigned long npages = size / PAGE;
	struct buffer *b = buffer_alloc(size);

	b->ptr = map(self->mm, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_HUGETLB, -1);
	assert_int_equal(cpu_store_ints(self->mm, b->ptr, 0, size, 1, 0), 0);

	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_SNAPSHOT, b, npages), b, npages, ANY);
	assert_all_bytes(b->mirror, npages, HMMU_DMIRROR_PROT_WRITE | HMMU_DMIRROR_PROT_PMD);

	assert_int_equal(hmmu_mprotect(self->mm, b->ptr, size, PROT_READ), 0);
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_SNAPSHOT, b, npages), b, npages, ANY);
	assert_all_bytes(b->mirror, npages, HMMU_DMIRROR_PROT_READ | HMMU_DMIRROR_PROT_PMD);
	buffer_free(self->mm, b);
}

/* 24: two devices map the same pages; migration to one invalidates the other. */
static void double_map(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = 6;
	size_t size = npages * PAGE;
	struct buffer *b = ints_buffer(self, npages, false);

	assert_int_equal(hmmu_mprotect(self->mm, b->ptr, size, PROT_READ), 0);

	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_READ, b, npages), b, npages, 1);
	assert_ints(b->mirror, 0, size, 1, 0);
	memset(b->mirror, 0, size);
	expect_ok(dmirror_cmd(self->mirror[1], HMMU_DMIRROR_READ, b, npages), b, npages, 1);
	assert_ints(b->mirror, 0, size, 1, 0);

	expect_ok(dmirror_cmd(self->mirror[1], HMMU_DMIRROR_MIGRATE_TO_DEV, b, npages), b, npages, ANY);
	memset(b->mirror, 0, size);
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_READ, b, npages), b, npages, 1);
	assert_ints(b->mirror, 0, size, 1, 0);
	buffer_free(self->mm, b);
}

/* 25: exclusive device access; CPU accesses revoke it. */
static void exclusive(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = ints_buffer(self, npages, false);

	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_EXCLUSIVE, b, npages), b, npages, ANY);
	assert_ints(b->mirror, 0, size, 1, 0);

	assert_int_equal(cpu_check_and_increment(self->mm, b->ptr, size), 0);
	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size, 1, 1), 0);
	assert_int_equal(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_CHECK_EXCLUSIVE, b, npages), 0);
	buffer_free(self->mm, b);
}

/* 26: mprotect(READ) over exclusive entries: the device may no longer write. */
static void exclusive_mprotect(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = ints_buffer(self, npages, false);

	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_EXCLUSIVE, b, npages), b, npages, ANY);
	assert_ints(b->mirror, 0, size, 1, 0);

	assert_int_equal(hmmu_mprotect(self->mm, b->ptr, size, PROT_READ), 0);
	assert_int_equal(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_WRITE, b, npages), -EPERM);
	buffer_free(self->mm, b);
}

/* exclusive_cow's child: the same increments, in its own copy. */
static int cow_child_body(struct child *c)
{
	CHILD_CHECK(cpu_check_and_increment(c->self->child, c->b->ptr, c->b->size) == 0);
	CHILD_CHECK(cpu_check_ints(c->self->child, c->b->ptr, 0, c->b->size, 1, 1) == 0);
	return 0;
}

/* 27: fork over exclusive entries; parent and child each see their own increments. */
static void exclusive_cow(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = HMM_BUFFER_SIZE / PAGE;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);
	struct child c = { .self = self, .b = b, .body = cow_child_body };

	b->ptr = map(self->mm, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
	assert_int_equal(cpu_store_ints(self->mm, b->ptr, 0, size, 1, 0), 0);
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_EXCLUSIVE, b, npages), b, npages, ANY);

	fork_mm(self);
	child_start(&c);
	assert_int_equal(cpu_check_and_increment(self->mm, b->ptr, size), 0);
	assert_int_equal(cpu_check_ints(self->mm, b->ptr, 0, size, 1, 1), 0);
	child_wait(&c);
	child_exit(self);
	buffer_free(self->mm, b);
}

/* One gup_test call on one page with FOLL_WRITE | @flags; the reference is released at once. */
static int gup_test_exec(struct hmmu_mm *mm, unsigned long addr, bool pin, unsigned int flags)
{
	struct hmmu_page *page = NULL;
	long n;

	hmmu_mmap_read_lock(mm);
	if (pin)
		n = hmmu_pin_user_pages_remote(mm, addr, 1, HMMU_FOLL_WRITE | flags, &page);
	else
		n = hmmu_get_user_pages_remote(mm, addr, 1, HMMU_FOLL_WRITE | flags, &page);
	hmmu_mmap_read_unlock(mm);
	if (n != 1)
		return n < 0 ? (int)n : -EFAULT;
	if (pin)
		hmmu_unpin_user_page(page);
	else
		hmmu_put_page(page);
	return 0;
}

/* 28: GUP faults device-private pages back; a long-term pin moves coherent pages out. */
static void hmm_gup_test(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = 4, p;
	size_t size = npages * PAGE;
	struct buffer *b = buffer_alloc(size);
	unsigned char *m = b->mirror;

	b->ptr = p = map(self->mm, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, -1);
	assert_int_equal(cpu_store_ints(self->mm, p, 0, size, 1, 0), 0);
	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_MIGRATE_TO_DEV, b, npages), b, npages, ANY);
	assert_ints(b->mirror, 0, size, 1, 0);

	assert_int_equal(gup_test_exec(self->mm, p, false, 0), 0);			/* GUP_BASIC_TEST */
	assert_int_equal(gup_test_exec(self->mm, p + PAGE, false, 0), 0);		/* GUP_FAST_BENCHMARK */
	assert_int_equal(gup_test_exec(self->mm, p + 2 * PAGE, true, HMMU_FOLL_LONGTERM), 0); /* PIN_FAST */
	assert_int_equal(gup_test_exec(self->mm, p + 3 * PAGE, true, HMMU_FOLL_LONGTERM), 0); /* PIN_LONGTERM */

	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_SNAPSHOT, b, npages), b, npages, ANY);
	if (conf_coherent()) {
		assert_int_equal(m[0], HMMU_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMMU_DMIRROR_PROT_WRITE);
		assert_int_equal(m[1], HMMU_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMMU_DMIRROR_PROT_WRITE);
	} else {
		assert_int_equal(m[0], HMMU_DMIRROR_PROT_WRITE);
		assert_int_equal(m[1], HMMU_DMIRROR_PROT_WRITE);
	}
	assert_int_equal(m[2], HMMU_DMIRROR_PROT_WRITE);
	assert_int_equal(m[3], HMMU_DMIRROR_PROT_WRITE);
	assert_int_equal(cpu_check_ints(self->mm, p, 0, size, 1, 0), 0);
	buffer_free(self->mm, b);
}

/* 29: fork over device pages; the parent's writes leave it private writable system pages. */
static void hmm_cow_in_device(void **state)
{
	struct fixture *self = *state;
	unsigned long npages = 4;
	size_t size = npages * PAGE;
	struct buffer *b = ints_buffer(self, npages, false);

	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_MIGRATE_TO_DEV, b, npages), b, npages, ANY);

	fork_mm(self);		/* the child idles: its mm stays as it is */
	assert_int_equal(cpu_store_ints(self->mm, b->ptr, 0, size, 1, 0), 0);
	child_exit(self);	/* SIGTERM, waitpid */

	expect_ok(dmirror_cmd(self->mirror[0], HMMU_DMIRROR_SNAPSHOT, b, npages), b, npages, ANY);
	assert_all_bytes(b->mirror, npages, HMMU_DMIRROR_PROT_WRITE);
	buffer_free(self->mm, b);
}

/* ------------------------------------------------------------------ */
/* The case table and main                                             */
/* ------------------------------------------------------------------ */

/* One line per scenario: CONF_CASE(<scenario>, HMM or HMM2 (the fixture), <variants>). */
#define HMM 1
#define HMM2 2

static const struct conf_case scenarios[] = {
	CONF_CASE(open_close, HMM, V_BOTH | V_HOST),
	CONF_CASE(anon_read, HMM, V_BOTH | V_HOST),
	CONF_CASE(anon_read_prot, HMM, V_BOTH | V_HOST),
	CONF_CASE(anon_write, HMM, V_BOTH | V_HOST),
	CONF_CASE(anon_write_prot, HMM, V_BOTH | V_HOST),
	CONF_CASE(anon_write_child, HMM, V_BOTH),
	CONF_CASE(anon_write_child_shared, HMM, V_BOTH),
	CONF_CASE(anon_write_huge, HMM, V_BOTH),
	CONF_CASE(anon_write_hugetlbfs, HMM, V_BOTH),
	CONF_CASE(file_read, HMM, V_BOTH),
	CONF_CASE(file_write, HMM, V_BOTH),
	CONF_CASE(migrate, HMM, V_BOTH | V_HOST),
	CONF_CASE(migrate_file_private, HMM, V_BOTH),
	CONF_CASE(migrate_fault, HMM, V_BOTH | V_HOST),
	CONF_CASE(migrate_release, HMM, V_BOTH | V_HOST),
	CONF_CASE(migrate_shared, HMM, V_BOTH),
	CONF_CASE(migrate_mixed, HMM2, V_BOTH | V_HOST),
	CONF_CASE(migrate_multiple, HMM, V_BOTH | V_HOST),
	CONF_CASE(anon_read_multiple, HMM, V_BOTH | V_HOST),
	CONF_CASE(anon_teardown, HMM, V_BOTH | V_HOST),
	CONF_CASE(mixedmap, HMM, V_BOTH),
	CONF_CASE(snapshot, HMM2, V_BOTH | V_HOST),
	CONF_CASE(compound, HMM, V_BOTH),
	CONF_CASE(double_map, HMM2, V_BOTH | V_HOST),
	CONF_CASE(exclusive, HMM, V_BOTH | V_HOST),
	CONF_CASE(exclusive_mprotect, HMM, V_BOTH | V_HOST),
	CONF_CASE(exclusive_cow, HMM, V_BOTH),
	CONF_CASE(hmm_gup_test, HMM, V_BOTH | V_HOST),
	CONF_CASE(hmm_cow_in_device, HMM, V_BOTH),
};

int main(int argc, char **argv)
{
	return conf_main(argc, argv, scenarios, sizeof(scenarios) / sizeof(scenarios[0]), fixture_setup,
			 fixture_teardown);
}
