// SPDX-License-Identifier: MIT
/*
 * Host mms (docs/host.md): plain loads and stores through hmmu_mmap()'s
 * pointers, the SIGBUS fault path, the invalidation path, SIGSEGV for
 * forbidden accesses, EFAULT for system calls, and many threads at once.
 *
 * Every test skips, printing why, where hmmu_host_probe() says userfaultfd
 * or a feature it needs is missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hmmu/dmirror.h>

#include "harness.h"

#define PAGE HMMU_PAGE_SIZE

/* Skip the test (reason printed) where host mms cannot run. */
static void need_host(void)
{
	const char *why;

	if (hmmu_host_probe(&why)) {
		print_message("host mms unavailable: %s\n", why);
		skip();
	}
}

/* A host mm, destroyed by the fixture. */
static struct hmmu_mm *host_mm(void)
{
	struct hmmu_mm *mm;

	need_host();
	assert_int_equal(hmmu_mm_create(HMMU_MM_HOST, &mm), 0);
	return mm;
}

/* Validate @mm's page tables and every node (host frames included), then drop it. */
static void host_done(struct hmmu_mm *mm)
{
	assert_int_equal(hmmu_pt_validate(mm), 0);
	assert_int_equal(hmmu_page_alloc_validate(), 0);
	hmmu_mmput(mm);
}

static unsigned long host_faults(void)
{
	struct hmmu_stat st;

	hmmu_stat(&st);
	return st.v[HMMU_STAT_HOST_FAULT];
}

static char *host_map(struct hmmu_mm *mm, size_t len, int prot)
{
	long p = hmmu_mmap(mm, 0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p > 0);
	return (char *)p;
}

/* Stores fault once per page, loads after them not at all; hmmu sees the bytes. */
static void test_host_store_load(void **state)
{
	struct hmmu_mm *mm = host_mm();
	enum { N = 16 };
	char *p = host_map(mm, N * PAGE, PROT_READ | PROT_WRITE);
	unsigned long f0 = host_faults();
	char buf[PAGE];

	for (int i = 0; i < N; i++)
		memset(p + i * PAGE, 'a' + i, PAGE);
	assert_int_equal(host_faults() - f0, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(p[i * PAGE + 100], 'a' + i);
	assert_int_equal(host_faults() - f0, N);
	get_bytes(mm, (unsigned long)p + 3 * PAGE, buf, PAGE);
	assert_int_equal(buf[0], 'd');
	assert_int_equal(stats(mm).present_pages, N);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	host_done(mm);
}

/* Reads of untouched memory see zeros (the zero page, write-protected): one fault each, then one per store. */
static void test_host_zero_page(void **state)
{
	struct hmmu_mm *mm = host_mm();
	enum { N = 8 };
	char *p = host_map(mm, N * PAGE, PROT_READ | PROT_WRITE);
	unsigned long f0 = host_faults();

	for (int i = 0; i < N; i++)
		assert_int_equal(p[i * PAGE + 7], 0);
	assert_int_equal(host_faults() - f0, N);
	assert_int_equal(stats(mm).zero_pages, N);
	for (int i = 0; i < N; i++)
		p[i * PAGE + 7] = 1;
	assert_int_equal(host_faults() - f0, 2 * N);
	assert_int_equal(stats(mm).present_pages, N);
	assert_int_equal(stats(mm).zero_pages, 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(p[i * PAGE + 7] + p[i * PAGE + 8], 1);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	host_done(mm);
}

/* A device with fault-around @fa, its mirror of @mm. */
static struct hmmu_dmirror *host_mirror(struct hmmu_mm *mm, unsigned long fa, struct hmmu_dmirror_device **devp)
{
	struct hmmu_dmirror_device_config cfg = { .type = HMMU_MEMORY_DEVICE_PRIVATE, .fault_around_pages = fa };
	struct hmmu_dmirror *mirror;

	assert_int_equal(hmmu_dmirror_device_create(&cfg, devp), 0);
	assert_int_equal(hmmu_dmirror_open(*devp, mm, &mirror), 0);
	return mirror;
}

static void host_mirror_done(struct hmmu_dmirror *mirror, struct hmmu_dmirror_device *dev)
{
	assert_int_equal(hmmu_dmirror_close(mirror), 0);
	assert_int_equal(hmmu_dmirror_device_destroy(dev), 0);
}

/* Pages resident in the process's real memory (mincore). */
static int resident(const char *p, size_t npages)
{
	unsigned char vec[256];
	int n = 0;

	assert_true(npages <= sizeof(vec));
	assert_int_equal(mincore((void *)p, npages * PAGE, vec), 0);
	for (size_t i = 0; i < npages; i++)
		n += vec[i] & 1;
	return n;
}

/*
 * dmirror, unchanged: a buffer written with plain stores migrates to the
 * device (its pages leave the process: mincore), plain loads bring each
 * page home with one fault each, data intact.
 */
static void test_host_dmirror(void **state)
{
	struct hmmu_mm *mm = host_mm();
	enum { N = 64 };
	int *p = (int *)host_map(mm, N * PAGE, PROT_READ | PROT_WRITE);
	struct hmmu_dmirror_device *dev;
	struct hmmu_dmirror *mirror = host_mirror(mm, 1, &dev);
	struct hmmu_dmirror_device_stats st;
	unsigned long f0;
	long sum = 0;

	for (size_t i = 0; i < N * PAGE / sizeof(int); i++)
		p[i] = (int)i;
	assert_int_equal(resident((char *)p, N), N);
	assert_int_equal(hmmu_dmirror_migrate_to_device(mirror, (unsigned long)p, N, 0), N);
	assert_int_equal(resident((char *)p, N), 0);
	assert_int_equal(stats(mm).nonpresent_entries, N);
	f0 = host_faults();
	for (size_t i = 0; i < N * PAGE / sizeof(int); i++)
		sum += p[i] == (int)i;
	assert_int_equal(sum, N * PAGE / sizeof(int));
	assert_int_equal(host_faults() - f0, N);
	assert_int_equal(resident((char *)p, N), N);
	assert_int_equal(hmmu_dmirror_device_get_stats(dev, &st), 0);
	assert_int_equal(st.migrate_to_ram, N);
	assert_int_equal(stats(mm).present_pages, N);
	host_mirror_done(mirror, dev);
	host_done(mm);
}

/* Zero pages migrated to the device leave no memory behind either (mincore), and read back as zeros. */
static void test_host_dmirror_zero(void **state)
{
	struct hmmu_mm *mm = host_mm();
	enum { N = 8 };
	char *p = host_map(mm, N * PAGE, PROT_READ | PROT_WRITE);
	struct hmmu_dmirror_device *dev;
	struct hmmu_dmirror *mirror = host_mirror(mm, 1, &dev);

	for (int i = 0; i < N; i++)
		assert_int_equal(p[i * PAGE], 0);
	assert_int_equal(resident(p, N), N);
	assert_int_equal(hmmu_dmirror_migrate_to_device(mirror, (unsigned long)p, N, 0), N);
	assert_int_equal(resident(p, N), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(p[i * PAGE + 9], 0);
	host_mirror_done(mirror, dev);
	host_done(mm);
}

/*
 * Fault-around in migrate_to_ram: one driver call per FA pages, and the
 * pages that came back with the faulting one are mapped with it, so one
 * SIGBUS per FA pages.
 */
static void test_host_dmirror_fault_around(void **state)
{
	struct hmmu_mm *mm = host_mm();
	enum { N = 64, FA = 16 };
	char *p = host_map(mm, N * PAGE, PROT_READ | PROT_WRITE);
	struct hmmu_dmirror_device *dev;
	struct hmmu_dmirror *mirror = host_mirror(mm, FA, &dev);
	struct hmmu_dmirror_device_stats st;
	unsigned long f0;

	memset(p, 0x5a, N * PAGE);
	assert_int_equal(hmmu_dmirror_migrate_to_device(mirror, (unsigned long)p, N, 0), N);
	f0 = host_faults();
	for (int i = 0; i < N; i++)
		assert_int_equal(p[i * PAGE + 1], 0x5a);
	assert_int_equal(host_faults() - f0, N / FA);
	assert_int_equal(hmmu_dmirror_device_get_stats(dev, &st), 0);
	assert_int_equal(st.migrate_to_ram, N / FA);
	for (int i = 0; i < N; i++)
		p[i * PAGE + 2] = 1;
	assert_int_equal(host_faults() - f0, N / FA);
	host_mirror_done(mirror, dev);
	host_done(mm);
}

static sigjmp_buf segv_env;
static volatile sig_atomic_t segv_code;
static void *volatile segv_addr;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	segv_code = si->si_code;
	segv_addr = si->si_addr;
	siglongjmp(segv_env, 1);
}

/* Run @fn(@arg) under a SIGSEGV handler; the si_code it raised, or 0 for none. */
static int catch_segv(void (*fn)(volatile char *), volatile char *arg)
{
	struct sigaction act = { .sa_sigaction = segv_handler, .sa_flags = SA_SIGINFO }, old;
	int code = 0;

	sigemptyset(&act.sa_mask);
	sigaction(SIGSEGV, &act, &old);
	segv_code = 0;
	segv_addr = NULL;
	if (!sigsetjmp(segv_env, 1))
		fn(arg);
	else
		code = segv_code;
	sigaction(SIGSEGV, &old, NULL);
	return code;
}

static void do_load(volatile char *p)
{
	(void)*p;
}

static void do_store(volatile char *p)
{
	*p = 1;
}

/*
 * The program's SIGSEGV handler sees what the kernel would report: no VMA
 * (MAPERR), PROT_NONE and a store to read-only memory (ACCERR); mprotect
 * back to read-write lets stores through, and a read-only downgrade keeps
 * loads fault-free (write protection, not a zap).
 */
static void test_host_sigsegv(void **state)
{
	struct hmmu_mm *mm = host_mm();
	char *p = host_map(mm, 4 * PAGE, PROT_READ | PROT_WRITE);
	unsigned long f0;

	p[0] = 42;
	assert_int_equal(hmmu_munmap(mm, (unsigned long)p + 3 * PAGE, PAGE), 0);
	assert_int_equal(catch_segv(do_load, p + 3 * PAGE), SEGV_MAPERR);
	assert_ptr_equal(segv_addr, p + 3 * PAGE);
	assert_int_equal(hmmu_mprotect(mm, (unsigned long)p + 2 * PAGE, PAGE, PROT_NONE), 0);
	assert_int_equal(catch_segv(do_load, p + 2 * PAGE), SEGV_ACCERR);
	assert_int_equal(hmmu_mprotect(mm, (unsigned long)p, PAGE, PROT_READ), 0);
	f0 = host_faults();
	assert_int_equal(p[0], 42);
	assert_int_equal(host_faults(), f0);
	assert_int_equal(catch_segv(do_store, p), SEGV_ACCERR);
	assert_int_equal(hmmu_mprotect(mm, (unsigned long)p, PAGE, PROT_READ | PROT_WRITE), 0);
	assert_int_equal(catch_segv(do_store, p), 0);
	assert_int_equal(p[0], 1);
	host_done(mm);
}

/*
 * Run @body in a child of fork(2), which creates its own host mm (the
 * parent's arena is not inherited); its wait status.  @body returns the
 * child's exit code.
 */
static int in_child(int (*body)(void))
{
	int status;
	pid_t pid;

	need_host();
	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		_exit(body());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static int child_store_read_only(void)
{
	struct hmmu_mm *mm;
	char *p;

	signal(SIGSEGV, SIG_DFL);
	if (hmmu_mm_create(HMMU_MM_HOST, &mm))
		return 2;
	p = (char *)hmmu_mmap(mm, 0, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p[0] != 0)
		return 3;
	*(volatile char *)p = 1;
	return 4;
}

/* Without a handler, a forbidden store kills the process with SIGSEGV (in a child). */
static void test_host_sigsegv_default(void **state)
{
	int status = in_child(child_store_read_only);

	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
}

static int child_nobody(void)
{
	struct hmmu_mm *mm;
	char *p;

	if (setgid(65534) || setuid(65534))
		return 2;
	if (hmmu_mm_create(HMMU_MM_HOST, &mm))
		return 3;
	p = (char *)hmmu_mmap(mm, 0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < 4; i++)
		p[i * PAGE] = (char)(i + 1);
	for (int i = 0; i < 4; i++)
		if (p[i * PAGE] != i + 1 || p[i * PAGE + 1])
			return 4;
	return 0;
}

/*
 * An unprivileged process (vm.unprivileged_userfaultfd=0 refuses it
 * kernel-mode faults) still gets host mms, through UFFD_USER_MODE_ONLY:
 * as root, a child drops to "nobody" and runs stores and loads.  Run
 * unprivileged, every test here already takes that path.
 */
static void test_host_unprivileged(void **state)
{
	int status;

	need_host();
	if (geteuid() != 0) {
		print_message("not root: the other tests ran unprivileged\n");
		skip();
	}
	status = in_child(child_nobody);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A system call writing into device-resident memory gets EFAULT; after hmmu_prefault() it works. */
static void test_host_syscall_efault(void **state)
{
	struct hmmu_mm *mm = host_mm();
	char *p = host_map(mm, 2 * PAGE, PROT_READ | PROT_WRITE);
	struct hmmu_dmirror_device *dev;
	struct hmmu_dmirror *mirror = host_mirror(mm, 1, &dev);
	char msg[64] = "through the pipe";
	int fds[2];

	memset(p, 'x', 2 * PAGE);
	assert_int_equal(hmmu_dmirror_migrate_to_device(mirror, (unsigned long)p, 2, 0), 2);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], msg, sizeof(msg)), sizeof(msg));
	assert_int_equal(read(fds[0], p, sizeof(msg)), -1);
	assert_int_equal(errno, EFAULT);
	assert_int_equal(hmmu_prefault(p, sizeof(msg), true), 0);
	assert_int_equal(read(fds[0], p, sizeof(msg)), sizeof(msg));
	assert_string_equal(p, msg);
	assert_int_equal(p[PAGE], 'x');
	assert_int_equal(hmmu_prefault(p, 0, false), -EINVAL);
	assert_int_equal(hmmu_prefault(msg, 1, false), -EFAULT);
	close(fds[0]);
	close(fds[1]);
	host_mirror_done(mirror, dev);
	host_done(mm);
}

/* munmap drops the real mapping and the bytes: a new mapping at the same place reads zeros. */
static void test_host_munmap(void **state)
{
	struct hmmu_mm *mm = host_mm();
	char *p = host_map(mm, 4 * PAGE, PROT_READ | PROT_WRITE);

	memset(p, 7, 4 * PAGE);
	assert_int_equal(p[2 * PAGE + 5], 7);	/* a zero-page frame too: */
	assert_int_equal(hmmu_munmap(mm, (unsigned long)p, 4 * PAGE), 0);
	assert_int_equal(resident(p, 4), 0);
	assert_ptr_equal(hmmu_mmap(mm, (unsigned long)p, 4 * PAGE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), p);
	for (int i = 0; i < 4; i++)
		assert_int_equal(p[i * PAGE + 5], 0);
	assert_int_equal(hmmu_madvise(mm, (unsigned long)p, 4 * PAGE, MADV_DONTNEED), 0);
	p[0] = 9;
	assert_int_equal(p[0] + p[1], 9);
	host_done(mm);
}

/*
 * hmmu_access() with a buffer that is itself host memory on the device:
 * the buffer faults outside hmmu's locks (same mm, same page table).
 */
static void test_host_access_host_buffer(void **state)
{
	struct hmmu_mm *mm = host_mm();
	char *p = host_map(mm, 2 * PAGE, PROT_READ | PROT_WRITE);
	struct hmmu_dmirror_device *dev;
	struct hmmu_dmirror *mirror = host_mirror(mm, 1, &dev);

	memset(p, 'a', PAGE);
	memset(p + PAGE, 'b', PAGE);
	assert_int_equal(hmmu_dmirror_migrate_to_device(mirror, (unsigned long)p, 2, 0), 2);
	put_bytes(mm, (unsigned long)p + PAGE, p, PAGE);
	assert_int_equal(p[2 * PAGE - 1], 'a');
	assert_int_equal(hmmu_dmirror_migrate_to_device(mirror, (unsigned long)p, 2, 0), 2);
	get_bytes(mm, (unsigned long)p + PAGE + 10, p + 20, 100);
	assert_int_equal(p[20], 'a');
	assert_int_equal(p[19], 'a');
	host_mirror_done(mirror, dev);
	host_done(mm);
}

/* What host mms refuse, and placement inside the arena. */
static void test_host_unsupported(void **state)
{
	struct hmmu_mm *mm = host_mm(), *child;
	char *p = host_map(mm, PAGE, PROT_READ | PROT_WRITE);
	void *base;
	size_t size;

	assert_int_equal(hmmu_host_arena(mm, &base, &size), 0);
	assert_true((char *)p >= (char *)base && (char *)p < (char *)base + size);
	assert_int_equal(hmmu_fork(mm, &child), -EOPNOTSUPP);
	assert_int_equal(hmmu_mremap(mm, (unsigned long)p, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0), -EOPNOTSUPP);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0), -EOPNOTSUPP);
	assert_int_equal(hmmu_mmap(mm, 0, 2UL << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0),
			 -EOPNOTSUPP);
	assert_int_equal(hmmu_mmap(mm, (unsigned long)base + size, PAGE, PROT_READ,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), -ENOMEM);
	assert_int_equal(hmmu_mmap(mm, 0, size + PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), -ENOMEM);
	assert_int_equal(hmmu_host_arena(hmmu_test_mm(), &base, &size), -EINVAL);
	host_done(mm);
}

/*
 * Many threads at once: each increments its own int in every page of a
 * shared buffer (so all fault the same pages) and walks a buffer of its
 * own (different pages), while another thread keeps migrating both to
 * the device.  Every count must come out exact; the run is bounded.
 */
enum { T_THREADS = 4, T_PAGES = 32, T_ITERS = 200 };

struct host_thread_arg {
	int *shared, *own;
	int id;
	atomic_int *running;
};

static void *host_worker(void *data)
{
	struct host_thread_arg *a = data;

	for (int it = 0; it < T_ITERS; it++)
		for (int pg = 0; pg < T_PAGES; pg++) {
			a->shared[pg * (PAGE / sizeof(int)) + a->id]++;
			a->own[pg * (PAGE / sizeof(int)) + it % 64]++;
		}
	atomic_fetch_sub(a->running, 1);
	return NULL;
}

struct host_migrator_arg {
	struct hmmu_dmirror *mirror;
	unsigned long start, npages;
	atomic_int *running;
};

static void *host_migrator(void *data)
{
	struct host_migrator_arg *m = data;

	while (atomic_load(m->running))
		if (hmmu_dmirror_migrate_to_device(m->mirror, m->start, m->npages, 0) < 0)
			return (void *)1;
	return NULL;
}

static void test_host_threads(void **state)
{
	struct hmmu_mm *mm = host_mm();
	size_t len = (T_THREADS + 1) * T_PAGES * PAGE;
	int *buf = (int *)host_map(mm, len, PROT_READ | PROT_WRITE);
	struct hmmu_dmirror_device *dev;
	struct hmmu_dmirror *mirror = host_mirror(mm, 1, &dev);
	struct host_thread_arg args[T_THREADS];
	pthread_t tids[T_THREADS], mig;
	atomic_int running = T_THREADS;
	struct host_migrator_arg m = { mirror, (unsigned long)buf, len / PAGE, &running };
	struct timespec ts;
	void *ret;

	assert_int_equal(pthread_create(&mig, NULL, host_migrator, &m), 0);
	for (int t = 0; t < T_THREADS; t++) {
		args[t] = (struct host_thread_arg){ buf, buf + (t + 1) * T_PAGES * (PAGE / sizeof(int)), t, &running };
		assert_int_equal(pthread_create(&tids[t], NULL, host_worker, &args[t]), 0);
	}
	for (int t = 0; t < T_THREADS; t++)
		assert_true(join_within(tids[t], WAIT_LIMIT_MS));
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_LIMIT_MS / 1000;
	assert_int_equal(pthread_timedjoin_np(mig, &ret, &ts), 0);
	assert_null(ret);
	for (int t = 0; t < T_THREADS; t++)
		for (int pg = 0; pg < T_PAGES; pg++) {
			assert_int_equal(buf[pg * (PAGE / sizeof(int)) + t], T_ITERS);
			for (int k = 0; k < 64; k++)
				assert_int_equal(args[t].own[pg * (PAGE / sizeof(int)) + k], T_ITERS / 64 + (k < T_ITERS % 64));
		}
	host_mirror_done(mirror, dev);
	host_done(mm);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_host_store_load),
		HMMU_TEST(test_host_zero_page),
		HMMU_TEST(test_host_dmirror),
		HMMU_TEST(test_host_dmirror_zero),
		HMMU_TEST(test_host_dmirror_fault_around),
		HMMU_TEST(test_host_sigsegv),
		HMMU_TEST(test_host_sigsegv_default),
		HMMU_TEST(test_host_unprivileged),
		HMMU_TEST(test_host_syscall_efault),
		HMMU_TEST(test_host_munmap),
		HMMU_TEST(test_host_access_host_buffer),
		HMMU_TEST(test_host_unsupported),
		HMMU_TEST(test_host_threads),
	};

	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
