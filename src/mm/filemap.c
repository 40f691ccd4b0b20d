// SPDX-License-Identifier: MIT
/*
 * Page-cache objects: the memory behind shared anonymous mappings (shmem)
 * and behind mappings of regular files, and msync().
 *
 * A struct hmmu_file is one page cache.  Every mapping of the same file
 * (same device and inode, through any descriptor, in any mm) shares one
 * object, so they all see one copy of each page, as mappings of one file
 * share the kernel's page cache.  A shmem object belongs to the one mmap
 * that created it and to the VMAs split or forked from it.
 *
 * Pages come into the cache on first fault: read from the file (the bytes
 * past its end zeroed) or zeroed for shmem.  The cache holds one reference
 * on each; mappings hold their own.  A write fault through a shared
 * mapping marks the page PG_dirty; hmmu_file_writeback() writes dirty pages
 * to the file with pwrite(2), clipped to the file's current size (a mapping
 * never extends its file).  Writeback happens on msync, when a shared VMA
 * goes away (munmap, mremap's old range, teardown) and when the last
 * reference to the object is dropped, after which the pages are freed.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/*
 * Locking: `lock` protects `pages`, `nr_slots`, `fd` and `writable`, and is
 * held across reading a page in, so a page is read once.  It nests inside
 * the mmap_lock and outside nothing else of hmmu's (no page-table lock is
 * held while it is taken).  `refcount` is atomic; for files the last put
 * happens under hmmu_files_lock (below), so a lookup never finds an object
 * on its way out.  `dev`, `ino`, `size_pages` are immutable.
 */
struct hmmu_file {
	atomic_int refcount;		/* VMAs (and transient holders) */
	pthread_mutex_t lock;
	int fd;				/* our own descriptor; -1 for shmem */
	bool writable;			/* fd is open for writing */
	dev_t dev;
	ino_t ino;
	unsigned long size_pages;	/* shmem: object size; files: unused */
	struct hmmu_page **pages;	/* the cache, by page index; NULL: absent */
	unsigned long nr_slots;		/* length of `pages` */
	struct cds_list_head link;	/* files: on hmmu_files */
};

/* Open file objects by (dev, ino); the lock also orders their last put. */
static pthread_mutex_t hmmu_files_lock = PTHREAD_MUTEX_INITIALIZER;
static CDS_LIST_HEAD(hmmu_files);

static struct hmmu_file *hmmu_file_alloc(int fd)
{
	struct hmmu_file *file = calloc(1, sizeof(*file));

	if (!file)
		return NULL;
	atomic_init(&file->refcount, 1);
	pthread_mutex_init(&file->lock, NULL);
	file->fd = fd;
	CDS_INIT_LIST_HEAD(&file->link);
	return file;
}

int hmmu_shmem_file_create(unsigned long size, struct hmmu_file **filep)
{
	struct hmmu_file *file = hmmu_file_alloc(-1);

	if (!file)
		return -ENOMEM;
	file->size_pages = HMMU_ALIGN_UP(size, HMMU_PAGE_SIZE) >> HMMU_PAGE_SHIFT;
	*filep = file;
	return 0;
}

/* An object for (dev, ino) already open, with a new reference; hmmu_files_lock held. */
static struct hmmu_file *hmmu_file_find_locked(dev_t dev, ino_t ino)
{
	struct hmmu_file *file;

	cds_list_for_each_entry(file, &hmmu_files, link) {
		if (file->dev == dev && file->ino == ino) {
			atomic_fetch_add_explicit(&file->refcount, 1, memory_order_relaxed);
			return file;
		}
	}
	return NULL;
}

/*
 * A mapping through a descriptor open for writing makes the shared object
 * writable: it switches to a copy of that descriptor.  File lock taken here.
 */
static int hmmu_file_upgrade(struct hmmu_file *file, int fd, bool writable)
{
	int newfd;

	if (!writable || file->writable)
		return 0;
	newfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (newfd < 0)
		return -errno;
	pthread_mutex_lock(&file->lock);
	close(file->fd);
	file->fd = newfd;
	file->writable = true;
	pthread_mutex_unlock(&file->lock);
	return 0;
}

/* Look up or create the object of the file open as @fd. */
static int hmmu_file_lookup(int fd, const struct stat *st, bool writable, struct hmmu_file **filep)
{
	struct hmmu_file *file;
	int newfd;

	file = hmmu_file_find_locked(st->st_dev, st->st_ino);
	if (file) {
		*filep = file;
		return 0;
	}
	newfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (newfd < 0)
		return -errno;
	file = hmmu_file_alloc(newfd);
	if (!file) {
		close(newfd);
		return -ENOMEM;
	}
	file->writable = writable;
	file->dev = st->st_dev;
	file->ino = st->st_ino;
	cds_list_add(&file->link, &hmmu_files);
	*filep = file;
	return 0;
}

int hmmu_file_open_fd(int fd, struct hmmu_file **filep)
{
	struct stat st;
	int mode = fcntl(fd, F_GETFL);
	int err;

	*filep = NULL;
	if (mode < 0 || fstat(fd, &st))
		return -EBADF;
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	pthread_mutex_lock(&hmmu_files_lock);
	err = hmmu_file_lookup(fd, &st, (mode & O_ACCMODE) == O_RDWR, filep);
	pthread_mutex_unlock(&hmmu_files_lock);
	if (!err)
		err = hmmu_file_upgrade(*filep, fd, (mode & O_ACCMODE) == O_RDWR);
	if (err && *filep) {
		hmmu_file_put(*filep);
		*filep = NULL;
	}
	return err;
}

void hmmu_file_get(struct hmmu_file *file)
{
	int old = atomic_fetch_add_explicit(&file->refcount, 1, memory_order_relaxed);

	HMMU_BUG_ON(old <= 0);
}

/* Drop every cached page (nothing maps the object any more) and free it. */
static void hmmu_file_destroy(struct hmmu_file *file)
{
	for (unsigned long i = 0; i < file->nr_slots; i++) {
		struct hmmu_page *page = file->pages[i];

		if (!page)
			continue;
		HMMU_BUG_ON(hmmu_page_mapcount(page));
		page->mapping = NULL;	/* truncated: no longer in a cache */
		hmmu_put_page(page);
	}
	if (file->fd >= 0)
		close(file->fd);
	free(file->pages);
	pthread_mutex_destroy(&file->lock);
	free(file);
}

/*
 * The last put of a file object writes its dirty pages back while still
 * listed and under hmmu_files_lock, so a new mapping of the file cannot
 * read the file before those writes reach it.
 */
void hmmu_file_put(struct hmmu_file *file)
{
	if (file->fd < 0) {
		if (atomic_fetch_sub_explicit(&file->refcount, 1, memory_order_acq_rel) == 1)
			hmmu_file_destroy(file);
		return;
	}
	pthread_mutex_lock(&hmmu_files_lock);
	if (atomic_fetch_sub_explicit(&file->refcount, 1, memory_order_acq_rel) != 1) {
		pthread_mutex_unlock(&hmmu_files_lock);
		return;
	}
	hmmu_file_writeback(file, 0, ~0UL);
	cds_list_del(&file->link);
	pthread_mutex_unlock(&hmmu_files_lock);
	hmmu_file_destroy(file);
}

bool hmmu_file_writable(const struct hmmu_file *file)
{
	return file->writable;
}

bool hmmu_file_is_shmem(const struct hmmu_file *file)
{
	return file->fd < 0;
}

/* Make room for index @index in the cache; file lock held.  0 or -ENOMEM. */
static int hmmu_file_grow(struct hmmu_file *file, unsigned long index)
{
	unsigned long n = HMMU_MAX(file->nr_slots * 2, 64UL);
	struct hmmu_page **pages;

	if (index < file->nr_slots)
		return 0;
	while (n <= index)
		n *= 2;
	pages = realloc(file->pages, n * sizeof(*pages));
	if (!pages)
		return -ENOMEM;
	memset(pages + file->nr_slots, 0, (n - file->nr_slots) * sizeof(*pages));
	file->pages = pages;
	file->nr_slots = n;
	return 0;
}

/* Pages of the object: the file's current size, or the shmem size.  File lock held. */
static int hmmu_file_size_pages(struct hmmu_file *file, unsigned long *pages)
{
	struct stat st;

	if (file->fd < 0) {
		*pages = file->size_pages;
		return 0;
	}
	if (fstat(file->fd, &st))
		return -EIO;
	*pages = HMMU_ALIGN_UP((unsigned long)st.st_size, HMMU_PAGE_SIZE) >> HMMU_PAGE_SHIFT;
	return 0;
}

/* Fill @page with the file's bytes at @index, zeroing what lies past the end. */
static int hmmu_file_read_page(struct hmmu_file *file, unsigned long index, struct hmmu_page *page)
{
	char *p = hmmu_page_address(page);
	size_t done = 0;
	ssize_t n = 1;

	while (file->fd >= 0 && done < HMMU_PAGE_SIZE && n > 0) {
		n = pread(file->fd, p + done, HMMU_PAGE_SIZE - done, (off_t)(index * HMMU_PAGE_SIZE + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -EIO;
		done += (size_t)n;
	}
	memset(p + done, 0, HMMU_PAGE_SIZE - done);
	return 0;
}

/* A new cached page at @index; file lock held.  0, -EFAULT, -EIO or -ENOMEM. */
static int hmmu_file_add_page(struct hmmu_file *file, unsigned long index, struct hmmu_page **pagep)
{
	unsigned long size;
	struct hmmu_page *page;
	int err = hmmu_file_size_pages(file, &size);

	if (err)
		return err;
	if (index >= size)
		return -EFAULT;
	err = hmmu_file_grow(file, index);
	if (err)
		return err;
	page = hmmu_alloc_page(HMMU_GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	err = hmmu_file_read_page(file, index, page);
	if (err) {
		hmmu_put_page(page);
		return err;
	}
	page->mapping = file;
	page->index = index;
	hmmu_page_set_flag(page, HMMU_PG_uptodate);
	file->pages[index] = page;	/* the cache's reference */
	*pagep = page;
	return 0;
}

int hmmu_filemap_get_page(struct hmmu_file *file, unsigned long index, struct hmmu_page **pagep)
{
	struct hmmu_page *page = NULL;
	int err = 0;

	pthread_mutex_lock(&file->lock);
	if (index < file->nr_slots)
		page = file->pages[index];
	if (!page)
		err = hmmu_file_add_page(file, index, &page);
	if (!err) {
		hmmu_get_page(page);
		*pagep = page;
	}
	pthread_mutex_unlock(&file->lock);
	return err;
}

/* Write one dirty page's bytes that lie inside the file (@size_pages long). */
static int hmmu_file_write_page(struct hmmu_file *file, unsigned long index, struct hmmu_page *page,
				off_t size)
{
	off_t pos = (off_t)(index * HMMU_PAGE_SIZE);
	size_t len = (size_t)HMMU_MIN((off_t)HMMU_PAGE_SIZE, size - pos), done = 0;
	const char *p = hmmu_page_address(page);

	while (pos < size && done < len) {
		ssize_t n = pwrite(file->fd, p + done, len - done, pos + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

/*
 * A page nothing maps is marked clean before it is written (a fault that
 * maps and dirties it meanwhile sets the flag again); a mapped one stays
 * dirty, since a writable entry may write it without a fault.
 */
static int hmmu_file_writeback_page(struct hmmu_file *file, unsigned long index, off_t size)
{
	struct hmmu_page *page = file->pages[index];
	int err;

	if (!page || !hmmu_page_test_flag(page, HMMU_PG_dirty))
		return 0;
	if (!hmmu_page_mapcount(page))
		hmmu_page_clear_flag(page, HMMU_PG_dirty);
	err = hmmu_file_write_page(file, index, page, size);
	if (err)
		hmmu_page_set_flag(page, HMMU_PG_dirty);	/* try again later */
	return err;
}

int hmmu_file_writeback(struct hmmu_file *file, unsigned long first, unsigned long last)
{
	struct stat st;
	int err = 0;

	if (file->fd < 0 || !file->writable)
		return 0;
	pthread_mutex_lock(&file->lock);
	if (fstat(file->fd, &st))
		err = -EIO;
	for (unsigned long i = first; !err && i < file->nr_slots && i <= last; i++)
		err = hmmu_file_writeback_page(file, i, st.st_size);
	pthread_mutex_unlock(&file->lock);
	return err;
}

void hmmu_vma_file_writeback(struct hmmu_vma *vma)
{
	if (vma->vm_file && vma->vm_flags & HMMU_VM_SHARED)
		hmmu_file_writeback(vma->vm_file, vma->vm_pgoff, hmmu_linear_page_index(vma, vma->vm_end - 1));
}

/* ------------------------------------------------------------------ */
/* msync                                                               */
/* ------------------------------------------------------------------ */

/* Write back the part [start, end) of a shared file VMA; MS_SYNC also fsyncs. */
static int hmmu_msync_vma(struct hmmu_vma *vma, unsigned long start, unsigned long end, int flags)
{
	struct hmmu_file *file = vma->vm_file;
	int err;

	if (!file || !(vma->vm_flags & HMMU_VM_SHARED) || hmmu_file_is_shmem(file))
		return 0;
	err = hmmu_file_writeback(file, hmmu_linear_page_index(vma, start), hmmu_linear_page_index(vma, end - 1));
	if (!err && flags & MS_SYNC && fsync(file->fd))
		err = -EIO;
	return err;
}

int hmmu_msync(struct hmmu_mm *mm, unsigned long addr, size_t len, int flags)
{
	struct hmmu_vma *vma;
	unsigned long end, pos = addr;
	bool hole = false;
	int err = 0;

	if (!mm || addr & ~HMMU_PAGE_MASK || flags & ~(MS_ASYNC | MS_SYNC | MS_INVALIDATE) ||
	    (flags & MS_ASYNC && flags & MS_SYNC) || len > HMMU_TASK_SIZE ||
	    addr > HMMU_TASK_SIZE - HMMU_ALIGN_UP(len, HMMU_PAGE_SIZE))
		return -EINVAL;
	end = addr + HMMU_ALIGN_UP(len, HMMU_PAGE_SIZE);
	hmmu_mmap_read_lock(mm);
	for (vma = hmmu_find_vma(mm, addr); vma && vma->vm_start < end && !err; vma = hmmu_vma_next(vma)) {
		/* Like msync(2): sync every mapped part, then report the holes. */
		hole |= vma->vm_start > pos;
		err = hmmu_msync_vma(vma, HMMU_MAX(pos, vma->vm_start), HMMU_MIN(end, vma->vm_end), flags);
		pos = vma->vm_end;
	}
	hmmu_mmap_read_unlock(mm);
	return err ? err : (hole || pos < end ? -ENOMEM : 0);
}
