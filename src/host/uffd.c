// SPDX-License-Identifier: MIT
/*
 * Userfaultfd for host mms: opening one, and probing once what the kernel
 * offers (hmmu_host_probe()).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host.h"

/* The probe's answer, computed once. */
static pthread_once_t hmmu_host_probe_once = PTHREAD_ONCE_INIT;
static int hmmu_host_probe_err;
static const char *hmmu_host_probe_why = "ok";

/*
 * A bare userfaultfd: the system call, with UFFD_USER_MODE_ONLY for a
 * process not allowed kernel-mode faults (vm.unprivileged_userfaultfd=0),
 * then /dev/userfaultfd (whose permissions decide).  The fd or -errno.
 */
static int hmmu_uffd_raw(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int dev;

	if (fd < 0 && errno == EPERM)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd >= 0)
		return fd;
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return errno == ENOENT ? -ENOSYS : -EPERM;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	fd = fd < 0 ? -errno : fd;
	close(dev);
	return fd;
}

/* UFFDIO_API asking for @features; *@got receives what the kernel offers.  0 or -errno. */
static int hmmu_uffd_api(int fd, __u64 features, __u64 *got)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	if (ioctl(fd, UFFDIO_API, &api))
		return -errno;
	if (got)
		*got = api.features;
	return 0;
}

/* What a kernel offering @have lacks, or NULL. */
static const char *hmmu_uffd_missing(__u64 have)
{
	if (!(have & UFFD_FEATURE_SIGBUS))
		return "userfaultfd lacks UFFD_FEATURE_SIGBUS";
	if (!(have & UFFD_FEATURE_MINOR_SHMEM))
		return "userfaultfd lacks UFFD_FEATURE_MINOR_SHMEM (Linux 5.14)";
	if (!(have & UFFD_FEATURE_WP_HUGETLBFS_SHMEM))
		return "userfaultfd lacks UFFD_FEATURE_WP_HUGETLBFS_SHMEM (Linux 5.19)";
	/* Same release as UFFDIO_CONTINUE_MODE_WP, which has no feature bit. */
	if (!(have & UFFD_FEATURE_WP_UNPOPULATED))
		return "userfaultfd lacks UFFD_FEATURE_WP_UNPOPULATED / UFFDIO_CONTINUE_MODE_WP (Linux 6.4)";
	return NULL;
}

static void hmmu_host_probe_run(void)
{
	int fd = hmmu_uffd_raw();
	__u64 have = 0;

	if (fd < 0) {
		hmmu_host_probe_err = fd == -ENOSYS ? -EOPNOTSUPP : -EPERM;
		hmmu_host_probe_why = fd == -ENOSYS ? "no userfaultfd in this kernel"
						    : "userfaultfd not permitted to this process";
		return;
	}
	if (hmmu_uffd_api(fd, 0, &have)) {
		hmmu_host_probe_err = -EOPNOTSUPP;
		hmmu_host_probe_why = "UFFDIO_API failed";
	} else if (hmmu_uffd_missing(have)) {
		hmmu_host_probe_err = -EOPNOTSUPP;
		hmmu_host_probe_why = hmmu_uffd_missing(have);
	}
	close(fd);
}

int hmmu_host_probe(const char **why)
{
	pthread_once(&hmmu_host_probe_once, hmmu_host_probe_run);
	if (why)
		*why = hmmu_host_probe_why;
	return hmmu_host_probe_err;
}

int hmmu_host_uffd_open(void)
{
	int fd, err = hmmu_host_probe(NULL);

	if (err)
		return err;
	fd = hmmu_uffd_raw();
	if (fd < 0)
		return fd;
	err = hmmu_uffd_api(fd, HMMU_HOST_UFFD_FEATURES, NULL);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}
