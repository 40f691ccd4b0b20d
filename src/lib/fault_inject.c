// SPDX-License-Identifier: MIT
/*
 * Fault injection (include/hmmu/fault_inject.h).
 *
 * Per site, relaxed atomics only: the configuration (nth, rate_ppm), the
 * call counter and the count of failures injected.  A reconfiguration
 * racing with calls may apply to some of them and not others; nothing
 * else depends on the order.  The seed is one relaxed atomic too.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const hmmu_fault_site_names[HMMU_FAULT_NR] = {
	[HMMU_FAULT_PAGE_ALLOC] = "page_alloc",
	[HMMU_FAULT_PT_ALLOC] = "pt_alloc",
	[HMMU_FAULT_DEVICE_ALLOC] = "device_alloc",
	[HMMU_FAULT_DEVICE_COPY] = "device_copy",
};

const char *hmmu_fault_inject_site_name(unsigned int site)
{
	return site < HMMU_FAULT_NR ? hmmu_fault_site_names[site] : NULL;
}

#ifdef HMMU_FAULT_INJECT

#define HMMU_FAULT_PPM 1000000UL

struct hmmu_fault_state {
	atomic_ulong nth, rate_ppm, calls;
	atomic_long injected;
} __attribute__((aligned(64)));

static struct hmmu_fault_state hmmu_fault_sites[HMMU_FAULT_NR];
static atomic_ulong hmmu_fault_seed = 1;

/* splitmix64's finaliser: a well-mixed draw from (seed, site, call). */
static uint64_t hmmu_fault_hash(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

bool hmmu_fault_inject_should_fail(unsigned int site)
{
	struct hmmu_fault_state *s;
	unsigned long nth, rate, n;
	bool fail;

	if (site >= HMMU_FAULT_NR)
		return false;
	s = &hmmu_fault_sites[site];
	nth = atomic_load_explicit(&s->nth, memory_order_relaxed);
	rate = atomic_load_explicit(&s->rate_ppm, memory_order_relaxed);
	if (!nth && !rate)
		return false;
	n = atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed) + 1;
	fail = n == nth;
	if (!fail && rate) {
		uint64_t seed = atomic_load_explicit(&hmmu_fault_seed, memory_order_relaxed);

		fail = hmmu_fault_hash(hmmu_fault_hash(seed ^ ((uint64_t)site << 56)) ^ n) % HMMU_FAULT_PPM < rate;
	}
	if (fail)
		atomic_fetch_add_explicit(&s->injected, 1, memory_order_relaxed);
	return fail;
}

int hmmu_fault_inject_set(unsigned int site, unsigned long rate_ppm, unsigned long nth)
{
	if (site >= HMMU_FAULT_NR || rate_ppm > HMMU_FAULT_PPM)
		return -EINVAL;
	atomic_store_explicit(&hmmu_fault_sites[site].calls, 0, memory_order_relaxed);
	atomic_store_explicit(&hmmu_fault_sites[site].nth, nth, memory_order_relaxed);
	atomic_store_explicit(&hmmu_fault_sites[site].rate_ppm, rate_ppm, memory_order_relaxed);
	return 0;
}

int hmmu_fault_inject_seed(unsigned long seed)
{
	atomic_store_explicit(&hmmu_fault_seed, seed, memory_order_relaxed);
	return 0;
}

long hmmu_fault_inject_count(unsigned int site)
{
	if (site >= HMMU_FAULT_NR)
		return -EINVAL;
	return atomic_load_explicit(&hmmu_fault_sites[site].injected, memory_order_relaxed);
}

/* "<key>=<value>" for @site: rate (0..1) or nth (> 0).  0 or -EINVAL. */
static int hmmu_fault_parse_param(unsigned int site, const char *kv, size_t len)
{
	char buf[64], *end;

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, kv, len);
	buf[len] = '\0';
	if (!strncmp(buf, "rate=", 5)) {
		double rate = strtod(buf + 5, &end);

		if (end == buf + 5 || *end || !(rate >= 0 && rate <= 1))
			return -EINVAL;
		return hmmu_fault_inject_set(site, (unsigned long)(rate * HMMU_FAULT_PPM + 0.5),
					     atomic_load(&hmmu_fault_sites[site].nth));
	}
	if (!strncmp(buf, "nth=", 4)) {
		unsigned long nth = strtoul(buf + 4, &end, 0);

		if (end == buf + 4 || *end || !nth || buf[4] == '-')
			return -EINVAL;
		return hmmu_fault_inject_set(site, atomic_load(&hmmu_fault_sites[site].rate_ppm), nth);
	}
	return -EINVAL;
}

/* One item "seed=N" or "<site>:<param>[:<param>]" of @len bytes.  0 or -EINVAL. */
static int hmmu_fault_parse_item(const char *item, size_t len)
{
	const char *colon = memchr(item, ':', len), *end = item + len;
	char *num_end;
	unsigned int site;

	if (len > 5 && !strncmp(item, "seed=", 5) && !colon) {
		unsigned long seed = strtoul(item + 5, &num_end, 0);

		return num_end == end ? hmmu_fault_inject_seed(seed) : -EINVAL;
	}
	if (!colon)
		return -EINVAL;
	for (site = 0; site < HMMU_FAULT_NR; site++)
		if (strlen(hmmu_fault_site_names[site]) == (size_t)(colon - item) &&
		    !strncmp(item, hmmu_fault_site_names[site], (size_t)(colon - item)))
			break;
	if (site == HMMU_FAULT_NR)
		return -EINVAL;
	while (colon < end) {
		const char *p = colon + 1, *next = memchr(p, ':', (size_t)(end - p));
		int ret;

		next = next ? next : end;
		ret = hmmu_fault_parse_param(site, p, (size_t)(next - p));
		if (ret)
			return ret;
		colon = next;
	}
	return 0;
}

int hmmu_fault_inject_parse(const char *spec)
{
	if (!spec)
		return -EINVAL;
	while (*spec) {
		const char *comma = strchr(spec, ',');
		size_t len = comma ? (size_t)(comma - spec) : strlen(spec);
		int ret = hmmu_fault_parse_item(spec, len);

		if (ret)
			return ret;
		spec += len + !!comma;
	}
	return 0;
}

#else /* !HMMU_FAULT_INJECT */

bool hmmu_fault_inject_should_fail(unsigned int site)
{
	return false;
}

int hmmu_fault_inject_set(unsigned int site, unsigned long rate_ppm, unsigned long nth)
{
	return -EOPNOTSUPP;
}

int hmmu_fault_inject_seed(unsigned long seed)
{
	return -EOPNOTSUPP;
}

int hmmu_fault_inject_parse(const char *spec)
{
	return -EOPNOTSUPP;
}

long hmmu_fault_inject_count(unsigned int site)
{
	return -EOPNOTSUPP;
}

#endif /* HMMU_FAULT_INJECT */
