// SPDX-License-Identifier: MIT
/*
 * Unit tests of page-cache memory: shared anonymous (shmem) mappings and
 * mappings of real files, private (copy-on-write) and shared (written back
 * by msync, munmap and teardown), and msync's arguments.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "notifier_rec.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define NPAGES 8

/* The byte pattern of the test files: position-dependent, never zero. */
static unsigned char pattern(size_t pos)
{
	return (unsigned char)(pos * 7 + pos / PAGE + 1) | 1;
}

/* An unlinked temporary file of @size bytes filled with pattern(). */
static int temp_file(size_t size)
{
	char path[] = "/tmp/hmmu-filemap-XXXXXX";
	int fd = mkstemp(path);
	unsigned char *buf = malloc(size ? size : 1);

	assert_true(fd >= 0);
	assert_non_null(buf);
	unlink(path);
	for (size_t i = 0; i < size; i++)
		buf[i] = pattern(i);
	assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
	free(buf);
	return fd;
}

/* Reopen @fd with another access mode (through /proc/self/fd). */
static int reopen(int fd, int mode)
{
	char path[64];
	int nfd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, mode);
	assert_true(nfd >= 0);
	return nfd;
}

static unsigned char file_byte(int fd, off_t pos)
{
	unsigned char v = 0;

	assert_int_equal(pread(fd, &v, 1, pos), 1);
	return v;
}

static unsigned long map_file(struct hmmu_mm *mm, size_t len, int prot, int flags, int fd, off_t off)
{
	long a = hmmu_mmap(mm, 0, len, prot, flags, fd, off);

	assert_true(a > 0);
	return (unsigned long)a;
}

static struct hmmu_page *page_at(struct hmmu_mm *mm, unsigned long addr)
{
	hmmu_pte_t e = hmmu_test_leaf(mm, addr, NULL);

	assert_true(hmmu_pte_present(e));
	return hmmu_pfn_to_page(hmmu_pte_pfn(e));
}

static void register_sub(struct nr_sub *s, struct hmmu_mm *mm)
{
	nr_reset();
	nr_sub_init(s, 1, &nr_nohook_ops);
	assert_int_equal(hmmu_notifier_register(&s->n, mm), 0);
}

/* The start/end pair @i, @i + 1 is @event over [start, end). */
static void expect_pair(int i, enum hmmu_notifier_event event, unsigned long start, unsigned long end)
{
	nr_expect(i, NR_START, 1, start, end);
	nr_expect(i + 1, NR_END, 1, start, end);
	assert_int_equal(nr_get(i).event, event);
}

/* ------------------------------------------------------------------ */
/* Shared anonymous memory                                             */
/* ------------------------------------------------------------------ */

/* A read fault maps a zeroed page of the object (not the zero page), writable. */
static void test_shmem_read_fault(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_file(mm, NPAGES * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	hmmu_pte_t e;

	assert_int_equal(get_byte(mm, a + 3 * PAGE), 0);
	e = hmmu_test_leaf(mm, a + 3 * PAGE, NULL);
	assert_true(hmmu_pte_present(e) && hmmu_pte_write(e));
	assert_false(hmmu_is_zero_pfn(hmmu_pte_pfn(e)));
	assert_false(hmmu_page_is_anon(page_at(mm, a + 3 * PAGE)));
	/* The object's reference plus the mapping's. */
	assert_int_equal(hmmu_page_ref_count(page_at(mm, a + 3 * PAGE)), 2);
	assert_int_equal(hmmu_page_mapcount(page_at(mm, a + 3 * PAGE)), 1);
}

/* Split halves of one shmem mapping share its pages; munmap of both frees them. */
static void test_shmem_split_shares(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	long before = nr_free();
	unsigned long a = map_file(mm, NPAGES * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	for (int i = 0; i < NPAGES; i++)
		put_byte(mm, a + i * PAGE, (unsigned char)(i + 10));
	assert_int_equal(hmmu_mprotect(mm, a + 2 * PAGE, 2 * PAGE, PROT_READ), 0);
	assert_int_equal(hmmu_madvise(mm, a, NPAGES * PAGE, MADV_DONTNEED), 0);
	/* DONTNEED drops the entries, not the object's pages. */
	for (int i = 0; i < NPAGES; i++)
		assert_int_equal(get_byte(mm, a + i * PAGE), i + 10);
	assert_true(nr_free() < before);
	assert_int_equal(hmmu_munmap(mm, a, 4 * PAGE), 0);
	assert_int_equal(get_byte(mm, a + 5 * PAGE), 15);
	assert_int_equal(hmmu_munmap(mm, a + 4 * PAGE, 4 * PAGE), 0);
	assert_int_equal(nr_free(), before);
}

/* The last unmap frees the object's pages only after the UNMAP start. */
static void test_shmem_unmap_notifies_before_free(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = map_file(mm, NPAGES * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct nr_sub s;
	long mapped;

	for (int i = 0; i < NPAGES; i++)
		put_byte(mm, a + i * PAGE, 1);
	register_sub(&s, mm);
	mapped = nr_free();
	assert_int_equal(hmmu_munmap(mm, a, NPAGES * PAGE), 0);
	nr_expect_count(2);
	expect_pair(0, HMMU_NOTIFY_UNMAP, a, a + NPAGES * PAGE);
	assert_int_equal(nr_get(0).nr_free, mapped);
	assert_int_equal(nr_free(), mapped + NPAGES);
	hmmu_notifier_unregister(&s.n, mm);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

/* Shared and private read mappings see the file, at the mapping's offset. */
static void test_file_read(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	int fd = temp_file(NPAGES * PAGE);
	unsigned long s = map_file(mm, NPAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	unsigned long p = map_file(mm, 4 * PAGE, RW, MAP_PRIVATE, fd, 2 * PAGE);
	unsigned char buf[3 * PAGE];

	get_bytes(mm, s + PAGE - 100, buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], pattern(PAGE - 100 + i));
	get_bytes(mm, p, buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], pattern(2 * PAGE + i));
	/* One page cache: both mappings map the same frame, read-only. */
	assert_ptr_equal(page_at(mm, s + 2 * PAGE), page_at(mm, p));
	assert_false(hmmu_pte_write(hmmu_test_leaf(mm, p, NULL)));
	assert_false(hmmu_pte_write(hmmu_test_leaf(mm, s + 2 * PAGE, NULL)));
	close(fd);
}

/*
 * A private write copies into an anonymous page (CLEAR invalidation of that
 * page) and never reaches the file; the other pages stay shared with the
 * page cache and still see the file's changes.
 */
static void test_file_private_write(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	int fd = temp_file(NPAGES * PAGE);
	unsigned long p = map_file(mm, NPAGES * PAGE, RW, MAP_PRIVATE, fd, 0);
	unsigned long s = map_file(mm, NPAGES * PAGE, RW, MAP_SHARED, fd, 0);
	struct nr_sub sub;

	assert_int_equal(get_byte(mm, p + PAGE), pattern(PAGE));
	register_sub(&sub, mm);
	put_byte(mm, p + PAGE, 0xee);
	nr_expect_count(2);
	expect_pair(0, HMMU_NOTIFY_CLEAR, p + PAGE, p + 2 * PAGE);
	hmmu_notifier_unregister(&sub.n, mm);
	assert_true(hmmu_page_is_anon(page_at(mm, p + PAGE)));
	assert_int_equal(get_byte(mm, s + PAGE), pattern(PAGE));
	/* A write fault on an empty private entry copies at once. */
	put_byte(mm, p + 5 * PAGE, 0xdd);
	assert_true(hmmu_page_is_anon(page_at(mm, p + 5 * PAGE)));
	/* The shared mapping's write shows through the private, unwritten page. */
	put_byte(mm, s + 3 * PAGE, 0x42);
	assert_int_equal(get_byte(mm, p + 3 * PAGE), 0x42);
	assert_int_equal(get_byte(mm, p + PAGE), 0xee);
	assert_int_equal(hmmu_munmap(mm, p, NPAGES * PAGE), 0);
	assert_int_equal(hmmu_msync(mm, s, NPAGES * PAGE, MS_SYNC), 0);
	assert_int_equal(file_byte(fd, PAGE), pattern(PAGE));
	assert_int_equal(file_byte(fd, 5 * PAGE), pattern(5 * PAGE));
	assert_int_equal(file_byte(fd, 3 * PAGE), 0x42);
	close(fd);
}

/* Shared writes reach the file by msync; only written pages become dirty. */
static void test_file_shared_msync(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	int fd = temp_file(NPAGES * PAGE);
	unsigned long s = map_file(mm, NPAGES * PAGE, RW, MAP_SHARED, fd, 0);
	unsigned char buf[PAGE];

	assert_int_equal(get_byte(mm, s), pattern(0));
	assert_false(hmmu_pte_write(hmmu_test_leaf(mm, s, NULL)));	/* write notification */
	memset(buf, 0xab, sizeof(buf));
	put_bytes(mm, s + 2 * PAGE + 10, buf, sizeof(buf));
	assert_true(hmmu_pte_write(hmmu_test_leaf(mm, s + 2 * PAGE, NULL)));
	assert_true(hmmu_page_test_flag(page_at(mm, s + 2 * PAGE), HMMU_PG_dirty));
	assert_false(hmmu_page_test_flag(page_at(mm, s), HMMU_PG_dirty));
	assert_int_equal(hmmu_msync(mm, s, NPAGES * PAGE, MS_SYNC), 0);
	assert_int_equal(file_byte(fd, 2 * PAGE + 9), pattern(2 * PAGE + 9));
	assert_int_equal(file_byte(fd, 2 * PAGE + 10), 0xab);
	assert_int_equal(file_byte(fd, 3 * PAGE + 9), 0xab);
	assert_int_equal(file_byte(fd, 3 * PAGE + 10), pattern(3 * PAGE + 10));
	/* A write to a page mapped read-only by an earlier read dirties it too. */
	assert_int_equal(get_byte(mm, s + 5 * PAGE), pattern(5 * PAGE));
	put_byte(mm, s + 5 * PAGE + 1, 0xcd);
	assert_true(hmmu_page_test_flag(page_at(mm, s + 5 * PAGE), HMMU_PG_dirty));
	assert_int_equal(hmmu_msync(mm, s + 5 * PAGE, PAGE, MS_SYNC), 0);
	assert_int_equal(file_byte(fd, 5 * PAGE + 1), 0xcd);
	/* Still mapped writable: still dirty, a later write is synced too. */
	put_byte(mm, s + 2 * PAGE, 0x5a);
	assert_int_equal(hmmu_msync(mm, s + 2 * PAGE, PAGE, MS_ASYNC | MS_INVALIDATE), 0);
	assert_int_equal(file_byte(fd, 2 * PAGE), 0x5a);
	close(fd);
}

/* munmap and teardown write back; a new mapping sees the data. */
static void test_file_writeback_on_unmap_and_exit(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *mm2;
	int fd = temp_file(NPAGES * PAGE);
	unsigned long s = map_file(mm, NPAGES * PAGE, RW, MAP_SHARED, fd, 0);
	unsigned long s2;

	put_byte(mm, s + PAGE, 0x11);
	assert_int_equal(hmmu_munmap(mm, s, 2 * PAGE), 0);
	assert_int_equal(file_byte(fd, PAGE), 0x11);
	assert_int_equal(hmmu_mm_create(HMMU_MM_DEFAULT, &mm2), 0);
	s2 = map_file(mm2, NPAGES * PAGE, RW, MAP_SHARED, fd, 0);
	put_byte(mm2, s2 + 6 * PAGE, 0x66);
	/* Two mms, one page cache: the write is visible at once. */
	assert_int_equal(get_byte(mm, s + 6 * PAGE), 0x66);
	hmmu_mmput(mm2);
	assert_int_equal(file_byte(fd, 6 * PAGE), 0x66);
	assert_int_equal(get_byte(mm, s + 6 * PAGE), 0x66);
	close(fd);
}

/* A file page wholly past the end raises SIGBUS; the tail of the last is zeros. */
static void test_file_sigbus_past_eof(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	int fd = temp_file(PAGE + 100);
	unsigned long s = map_file(mm, 4 * PAGE, RW, MAP_SHARED, fd, 0);
	struct hmmu_vma *vma;
	unsigned char v = 0;
	hmmu_vm_fault_t ret;

	assert_int_equal(get_byte(mm, s + PAGE + 99), pattern(PAGE + 99));
	assert_int_equal(get_byte(mm, s + PAGE + 100), 0);
	assert_int_equal(hmmu_access(mm, s + 2 * PAGE, &v, 1, HMMU_ACCESS_READ), -EFAULT);
	hmmu_mmap_read_lock(mm);
	vma = hmmu_vma_lookup(mm, s);
	ret = hmmu_handle_mm_fault(vma, s + 3 * PAGE, 0);
	hmmu_mmap_read_unlock(mm);
	assert_int_equal(ret, HMMU_VM_FAULT_SIGBUS);
	/* Writeback never extends the file. */
	put_byte(mm, s + PAGE + 200, 0x77);
	assert_int_equal(hmmu_msync(mm, s, 4 * PAGE, MS_SYNC), 0);
	assert_int_equal(lseek(fd, 0, SEEK_END), PAGE + 100);
	close(fd);
}

/* Descriptor modes decide what a mapping may do. */
static void test_file_access_modes(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	int fd = temp_file(NPAGES * PAGE);
	int ro = reopen(fd, O_RDONLY), wo = reopen(fd, O_WRONLY);
	int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
	unsigned long a;

	assert_int_equal(hmmu_mmap(mm, 0, PAGE, PROT_READ, MAP_SHARED, wo, 0), -EACCES);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, MAP_SHARED, ro, 0), -EACCES);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, PROT_READ, MAP_SHARED, dir, 0), -ENODEV);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, PROT_READ, MAP_SHARED, ro, 1), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, PROT_READ, MAP_SHARED, ro, -PAGE), -EINVAL);
	a = map_file(mm, PAGE, PROT_READ, MAP_SHARED, ro, 0);
	assert_int_equal(hmmu_mprotect(mm, a, PAGE, RW), -EACCES);
	/* Private: copy-on-write needs no write access to the file. */
	a = map_file(mm, PAGE, RW, MAP_PRIVATE, ro, 0);
	put_byte(mm, a, 1);
	/* A shared writable mapping through another descriptor of the same file. */
	a = map_file(mm, PAGE, RW, MAP_SHARED, fd, 0);
	put_byte(mm, a + 1, 0x99);
	assert_int_equal(hmmu_msync(mm, a, PAGE, MS_SYNC), 0);
	assert_int_equal(file_byte(ro, 1), 0x99);
	assert_int_equal(file_byte(ro, 0), pattern(0));
	close(dir);
	close(wo);
	close(ro);
	close(fd);
}

/* msync's arguments and holes. */
static void test_msync_errors(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	int fd = temp_file(NPAGES * PAGE);
	unsigned long s = map_file(mm, NPAGES * PAGE, RW, MAP_SHARED, fd, 0);

	assert_int_equal(hmmu_msync(NULL, s, PAGE, MS_SYNC), -EINVAL);
	assert_int_equal(hmmu_msync(mm, s + 1, PAGE, MS_SYNC), -EINVAL);
	assert_int_equal(hmmu_msync(mm, s, PAGE, MS_SYNC | MS_ASYNC), -EINVAL);
	assert_int_equal(hmmu_msync(mm, s, PAGE, 0x100), -EINVAL);
	assert_int_equal(hmmu_msync(mm, HMMU_TASK_SIZE - PAGE, 2 * PAGE, MS_SYNC), -EINVAL);
	assert_int_equal(hmmu_msync(mm, s, 0, MS_SYNC), 0);
	put_byte(mm, s + 7 * PAGE, 0x31);
	assert_int_equal(hmmu_munmap(mm, s + 2 * PAGE, PAGE), 0);
	/* The hole is reported, and the mapped parts after it synced anyway. */
	assert_int_equal(hmmu_msync(mm, s, NPAGES * PAGE, MS_SYNC), -ENOMEM);
	assert_int_equal(file_byte(fd, 7 * PAGE), 0x31);
	assert_int_equal(hmmu_msync(mm, s + NPAGES * PAGE, PAGE, MS_SYNC), -ENOMEM);
	close(fd);
}

#define NTHREADS 4

struct writer {
	pthread_t t;
	struct hmmu_mm *mm;
	unsigned long base;
	int id;
};

/* Each thread writes its own byte of every page, faulting concurrently. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;

	for (int i = 0; i < NPAGES; i++) {
		unsigned char v = (unsigned char)(0x80 + w->id * NPAGES + i);

		if (hmmu_access(w->mm, w->base + i * PAGE + w->id, &v, 1, HMMU_ACCESS_WRITE))
			return (void *)1;
	}
	return NULL;
}

/* Concurrent faults on one file: one page per index, no write lost. */
static void test_file_concurrent_faults(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	int fd = temp_file(NPAGES * PAGE);
	unsigned long s = map_file(mm, NPAGES * PAGE, RW, MAP_SHARED, fd, 0);
	struct writer w[NTHREADS];
	void *ret;

	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct writer){ .mm = mm, .base = s, .id = i };
		assert_int_equal(pthread_create(&w[i].t, NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(w[i].t, &ret), 0);
		assert_null(ret);
	}
	assert_int_equal(hmmu_msync(mm, s, NPAGES * PAGE, MS_SYNC), 0);
	for (int p = 0; p < NPAGES; p++) {
		assert_int_equal(hmmu_page_mapcount(page_at(mm, s + p * PAGE)), 1);
		for (int i = 0; i < NTHREADS; i++)
			assert_int_equal(file_byte(fd, p * PAGE + i), 0x80 + i * NPAGES + p);
		assert_int_equal(file_byte(fd, p * PAGE + NTHREADS), pattern(p * PAGE + NTHREADS));
	}
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_shmem_read_fault),
		HMMU_TEST(test_shmem_split_shares),
		HMMU_TEST(test_shmem_unmap_notifies_before_free),
		HMMU_TEST(test_file_read),
		HMMU_TEST(test_file_private_write),
		HMMU_TEST(test_file_shared_msync),
		HMMU_TEST(test_file_writeback_on_unmap_and_exit),
		HMMU_TEST(test_file_sigbus_past_eof),
		HMMU_TEST(test_file_access_modes),
		HMMU_TEST(test_msync_errors),
		HMMU_TEST(test_file_concurrent_faults),
	};

	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
