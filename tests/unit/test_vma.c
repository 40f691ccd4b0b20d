// SPDX-License-Identifier: MIT
/*
 * Unit tests of the VMA set: mmap, munmap, mprotect and madvise with their
 * splits and merges, the unmapped-area search, and a seeded random sequence
 * of all of them checked against a shadow model.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define VM_RWX (HMMU_VM_READ | HMMU_VM_WRITE | HMMU_VM_EXEC)
#define MAX_VMAS 256

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

struct vma_info {
	unsigned long start, end, flags;
};

struct vma_set {
	int n;
	struct vma_info v[MAX_VMAS];
};

static int collect_vma(const struct hmmu_vma *vma, void *arg)
{
	struct vma_set *s = arg;

	if (s->n == MAX_VMAS)
		return -ENOSPC;
	s->v[s->n++] = (struct vma_info){ vma->vm_start, vma->vm_end, vma->vm_flags };
	return 0;
}

static void vmas(struct hmmu_mm *mm, struct vma_set *s)
{
	s->n = 0;
	assert_int_equal(hmmu_mm_for_each_vma(mm, collect_vma, s), 0);
}

static int nr_vmas(struct hmmu_mm *mm)
{
	static struct vma_set s;

	vmas(mm, &s);
	return s.n;
}

/* Assert VMA @i of @s is [start, end) with protection @prot (PROT_* bits). */
static void check_vma(const struct vma_set *s, int i, unsigned long start, unsigned long end, int prot)
{
	unsigned long want = (prot & PROT_READ ? HMMU_VM_READ : 0) | (prot & PROT_WRITE ? HMMU_VM_WRITE : 0) |
			     (prot & PROT_EXEC ? HMMU_VM_EXEC : 0);

	assert_true(i < s->n);
	assert_int_equal(s->v[i].start, start);
	assert_int_equal(s->v[i].end, end);
	assert_int_equal(s->v[i].flags & VM_RWX, want);
}

static unsigned long vm_flags_at(struct hmmu_mm *mm, unsigned long addr)
{
	struct hmmu_vma *vma;
	unsigned long flags = 0;

	hmmu_mmap_read_lock(mm);
	vma = hmmu_vma_lookup(mm, addr);
	if (vma)
		flags = vma->vm_flags;
	hmmu_mmap_read_unlock(mm);
	return flags;
}

/* ------------------------------------------------------------------ */
/* mmap                                                                */
/* ------------------------------------------------------------------ */

/* A first mapping lands at the lowest address; lengths round up to pages. */
static void test_mmap_basic(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct vma_set s;
	unsigned long a = hmmu_test_map(mm, 1, RW);
	struct hmmu_mm_stats st;

	assert_int_equal(a, HMMU_MMAP_MIN_ADDR);
	vmas(mm, &s);
	assert_int_equal(s.n, 1);
	check_vma(&s, 0, a, a + PAGE, RW);
	assert_int_equal(s.v[0].flags & (HMMU_VM_MAYREAD | HMMU_VM_MAYWRITE),
			 HMMU_VM_MAYREAD | HMMU_VM_MAYWRITE);
	assert_false(s.v[0].flags & HMMU_VM_SHARED);
	assert_int_equal(hmmu_mm_get_stats(mm, &st), 0);
	assert_int_equal(st.nr_vmas, 1);
	assert_int_equal(st.mapped_bytes, PAGE);
	assert_int_equal(st.present_pages + st.zero_pages, 0);
	/* Mapping allocates no page. */
	assert_int_equal(hmmu_test_map(mm, 3 * PAGE + 1, PROT_READ), a + PAGE);
	vmas(mm, &s);
	check_vma(&s, 1, a + PAGE, a + 5 * PAGE, PROT_READ);
	hmmu_mmap_read_lock(mm);
	assert_ptr_equal(hmmu_find_vma(mm, 0), hmmu_vma_lookup(mm, a));
	assert_null(hmmu_vma_lookup(mm, a - 1));
	assert_null(hmmu_find_vma(mm, a + 5 * PAGE));
	assert_int_equal(hmmu_find_vma(mm, a + PAGE - 1)->vm_start, a);
	assert_int_equal(hmmu_vma_lookup(mm, a + PAGE)->vm_start, a + PAGE);
	hmmu_mmap_read_unlock(mm);
}

/* Bad prot, flags, lengths and fixed addresses: -EINVAL. */
static void test_mmap_einval(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();

	assert_int_equal(hmmu_mmap(NULL, 0, PAGE, RW, ANON, -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, 0, RW, ANON, -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, HMMU_TASK_SIZE + 1, RW, ANON, -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, ~(size_t)0, RW, ANON, -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, 0x10, ANON, -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW | PROT_GROWSDOWN, ANON, -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, ANON | MAP_POPULATE, -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, ANON | MAP_HUGETLB | (30 << 26), -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, ANON | (21 << 26), -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0x200000 + PAGE, PAGE, RW, ANON | MAP_HUGETLB | MAP_FIXED, -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, MAP_PRIVATE, -1, 1), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, MAP_PRIVATE, -1, -PAGE), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0x100001, PAGE, RW, ANON | MAP_FIXED, -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0x100800, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), -EINVAL);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, MAP_ANONYMOUS, -1, 0), -EINVAL);
	assert_int_equal(nr_vmas(mm), 0);
	/* An unaligned hint is only a hint. */
	assert_int_equal(hmmu_mmap(mm, 0x100801, PAGE, RW, ANON, -1, 0), 0x100000);
}

/* Hugetlb is private anonymous only; bad descriptors fail before anything is mapped. */
static void test_mmap_eopnotsupp(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();

	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0), -EOPNOTSUPP);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, MAP_PRIVATE | MAP_HUGETLB, 0, 0), -EOPNOTSUPP);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, MAP_PRIVATE, -1, 0), -EBADF);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, MAP_SHARED_VALIDATE, 1000000, 0), -EBADF);
	assert_int_equal(nr_vmas(mm), 0);
}

/* MAP_FIXED replaces what was there: old data gone, its pages freed. */
static void test_mmap_fixed_replaces(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	long free0 = nr_free();
	struct vma_set s;

	for (int i = 0; i < 4; i++)
		put_byte(mm, a + i * PAGE, (unsigned char)(0x80 + i));
	assert_int_equal(nr_free(), free0 - 4);
	assert_int_equal(hmmu_test_map_at(mm, a + PAGE, 2 * PAGE, PROT_READ, MAP_FIXED), a + PAGE);
	assert_int_equal(nr_free(), free0 - 2);
	vmas(mm, &s);
	assert_int_equal(s.n, 3);
	check_vma(&s, 0, a, a + PAGE, RW);
	check_vma(&s, 1, a + PAGE, a + 3 * PAGE, PROT_READ);
	check_vma(&s, 2, a + 3 * PAGE, a + 4 * PAGE, RW);
	assert_int_equal(get_byte(mm, a + PAGE), 0);
	assert_int_equal(get_byte(mm, a + 2 * PAGE), 0);
	assert_int_equal(get_byte(mm, a), 0x80);
	assert_int_equal(get_byte(mm, a + 3 * PAGE), 0x83);
	/* Replacing again with the neighbours' protection merges all three. */
	assert_int_equal(hmmu_test_map_at(mm, a + PAGE, 2 * PAGE, RW, MAP_FIXED), a + PAGE);
	vmas(mm, &s);
	assert_int_equal(s.n, 1);
	check_vma(&s, 0, a, a + 4 * PAGE, RW);
	assert_int_equal(get_byte(mm, a + 3 * PAGE), 0x83);
	assert_int_equal(get_byte(mm, a + 2 * PAGE), 0);
	/* MAP_FIXED over several VMAs and a hole at once. */
	hmmu_test_map_at(mm, a + 6 * PAGE, PAGE, PROT_NONE, MAP_FIXED);
	assert_int_equal(hmmu_test_map_at(mm, a + 2 * PAGE, 6 * PAGE, PROT_READ, MAP_FIXED), a + 2 * PAGE);
	vmas(mm, &s);
	assert_int_equal(s.n, 2);
	check_vma(&s, 0, a, a + 2 * PAGE, RW);
	check_vma(&s, 1, a + 2 * PAGE, a + 8 * PAGE, PROT_READ);
	assert_int_equal(nr_free(), free0 - 1);
	assert_int_equal(get_byte(mm, a + 3 * PAGE), 0);
	/* Past the end of the address space. */
	assert_int_equal(hmmu_mmap(mm, HMMU_TASK_SIZE - PAGE, 2 * PAGE, RW, ANON | MAP_FIXED, -1, 0), -ENOMEM);
	assert_int_equal(hmmu_test_map_at(mm, HMMU_TASK_SIZE - PAGE, PAGE, RW, MAP_FIXED), HMMU_TASK_SIZE - PAGE);
	put_byte(mm, HMMU_TASK_SIZE - 1, 1);
	assert_int_equal(hmmu_munmap(mm, HMMU_TASK_SIZE - PAGE, PAGE), 0);
}

/* MAP_FIXED_NOREPLACE refuses any overlap with -EEXIST and leaves things alone. */
static void test_mmap_fixed_noreplace(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map_at(mm, 0x200000, 4 * PAGE, RW, MAP_FIXED_NOREPLACE);

	assert_int_equal(a, 0x200000);
	put_byte(mm, a + PAGE, 7);
	assert_int_equal(hmmu_mmap(mm, a, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), -EEXIST);
	assert_int_equal(hmmu_mmap(mm, a - PAGE, 2 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), -EEXIST);
	assert_int_equal(hmmu_mmap(mm, a + 3 * PAGE, 2 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), -EEXIST);
	assert_int_equal(hmmu_mmap(mm, a - PAGE, 6 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), -EEXIST);
	assert_int_equal(get_byte(mm, a + PAGE), 7);
	assert_int_equal(nr_vmas(mm), 1);
	/* Adjacent ranges are free. */
	assert_int_equal(hmmu_test_map_at(mm, a - 2 * PAGE, 2 * PAGE, PROT_READ, MAP_FIXED_NOREPLACE), a - 2 * PAGE);
	assert_int_equal(hmmu_test_map_at(mm, a + 4 * PAGE, PAGE, PROT_READ, MAP_FIXED_NOREPLACE), a + 4 * PAGE);
	assert_int_equal(nr_vmas(mm), 3);
	assert_int_equal(hmmu_mmap(mm, HMMU_TASK_SIZE, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), -ENOMEM);
}

/* A free hint is honoured (aligned down); a taken or impossible one is not. */
static void test_mmap_hint(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long hint = 0x3f0000000000UL;

	assert_int_equal(hmmu_test_map_at(mm, hint, 4 * PAGE, RW, 0), hint);
	assert_int_equal(hmmu_test_map_at(mm, hint + 4 * PAGE + 123, PAGE, PROT_READ, 0), hint + 4 * PAGE);
	/* Taken: lowest fit instead. */
	assert_int_equal(hmmu_test_map_at(mm, hint + PAGE, PAGE, RW, 0), HMMU_MMAP_MIN_ADDR);
	/* Below the lowest address or running past the end: ignored. */
	assert_int_equal(hmmu_test_map_at(mm, PAGE, PAGE, PROT_READ, 0), HMMU_MMAP_MIN_ADDR + PAGE);
	assert_int_equal(hmmu_test_map_at(mm, HMMU_TASK_SIZE - PAGE, 2 * PAGE, PROT_NONE, 0), HMMU_MMAP_MIN_ADDR + 2 * PAGE);
	/* The last page of the address space can be hinted. */
	assert_int_equal(hmmu_test_map_at(mm, HMMU_TASK_SIZE - PAGE, PAGE, RW, 0), HMMU_TASK_SIZE - PAGE);
}

/* ------------------------------------------------------------------ */
/* Unmapped-area search                                                */
/* ------------------------------------------------------------------ */

/* Fill, punch holes: a new mapping takes the lowest hole it fits in. */
static void test_unmapped_area_lowest_fit(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 16 * PAGE, RW);
	unsigned long b = hmmu_test_map(mm, 16 * PAGE, PROT_READ);
	unsigned long c = hmmu_test_map(mm, 16 * PAGE, RW);
	unsigned long end = c + 16 * PAGE;

	assert_int_equal(b, a + 16 * PAGE);
	assert_int_equal(c, b + 16 * PAGE);
	assert_int_equal(hmmu_munmap(mm, b + 6 * PAGE, 4 * PAGE), 0);
	/* Too large for the hole: after the last VMA. */
	assert_int_equal(hmmu_test_map(mm, 5 * PAGE, PROT_NONE), end);
	end += 5 * PAGE;
	/* Exactly the hole's size: in the hole. */
	assert_int_equal(hmmu_test_map(mm, 4 * PAGE, PROT_NONE), b + 6 * PAGE);
	/* Two holes: the lower one wins even when the higher fits better. */
	assert_int_equal(hmmu_munmap(mm, a + 2 * PAGE, 8 * PAGE), 0);
	assert_int_equal(hmmu_munmap(mm, c + 4 * PAGE, 3 * PAGE), 0);
	assert_int_equal(hmmu_test_map(mm, 3 * PAGE, PROT_NONE), a + 2 * PAGE);
	assert_int_equal(hmmu_test_map(mm, 3 * PAGE, PROT_NONE), a + 5 * PAGE);
	assert_int_equal(hmmu_test_map(mm, 3 * PAGE, PROT_NONE), c + 4 * PAGE);
	assert_int_equal(hmmu_test_map(mm, 2 * PAGE, PROT_NONE), a + 8 * PAGE);
	assert_int_equal(hmmu_test_map(mm, PAGE, PROT_NONE), end);
	assert_int_equal(hmmu_pt_validate(mm), 0);
}

/* Many holes of assorted sizes: each request lands in the lowest that fits. */
static void test_unmapped_area_random(void **state)
{
	enum { SLOTS = 200 };
	struct hmmu_mm *mm = hmmu_test_mm();
	uint64_t rs = hmmu_test_seed() ^ 0x5151;
	static bool used[SLOTS];
	unsigned long base = hmmu_test_map(mm, SLOTS * PAGE, PROT_NONE);
	/* A guard VMA above the slots ends the last hole inside them. */
	unsigned long guard_end = hmmu_test_map(mm, PAGE, PROT_EXEC) + PAGE;

	assert_int_equal(base, HMMU_MMAP_MIN_ADDR);
	assert_int_equal(guard_end, base + (SLOTS + 1) * PAGE);
	for (int i = 0; i < SLOTS; i++)
		used[i] = true;
	for (int i = 0; i < 60; i++) {
		int s = (int)(hmmu_test_rand(&rs) % SLOTS), n = 1 + (int)(hmmu_test_rand(&rs) % 6);

		n = HMMU_MIN(n, SLOTS - s);
		assert_int_equal(hmmu_munmap(mm, base + (unsigned long)s * PAGE, (unsigned long)n * PAGE), 0);
		for (int k = s; k < s + n; k++)
			used[k] = false;
	}
	for (int i = 0; i < 100; i++) {
		int n = 1 + (int)(hmmu_test_rand(&rs) % 4), want = -1;
		unsigned long got;

		for (int s = 0; s + n <= SLOTS && want < 0; s++) {
			int k = s;

			while (k < s + n && !used[k])
				k++;
			if (k == s + n)
				want = s;
		}
		got = hmmu_test_map(mm, (unsigned long)n * PAGE, (i & 1) ? PROT_READ : PROT_NONE);
		if (want < 0) {
			assert_int_equal(got, guard_end);
			assert_int_equal(hmmu_munmap(mm, got, (unsigned long)n * PAGE), 0);
			continue;
		}
		assert_int_equal(got, base + (unsigned long)want * PAGE);
		for (int k = want; k < want + n; k++)
			used[k] = true;
	}
	assert_int_equal(hmmu_pt_validate(mm), 0);
}

/* -ENOMEM when no range fits. */
static void test_unmapped_area_enomem(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long all = HMMU_TASK_SIZE - HMMU_MMAP_MIN_ADDR;
	unsigned long mid = HMMU_TASK_SIZE / 2;

	assert_int_equal(hmmu_mmap(mm, 0, all + PAGE, RW, ANON, -1, 0), -ENOMEM);
	/* The whole space fits an empty mm (nothing is allocated). */
	assert_int_equal(hmmu_test_map(mm, all, PROT_NONE), HMMU_MMAP_MIN_ADDR);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, ANON, -1, 0), -ENOMEM);
	assert_int_equal(hmmu_munmap(mm, HMMU_MMAP_MIN_ADDR, all), 0);
	/* One page in the middle: half the space no longer fits anywhere. */
	hmmu_test_map_at(mm, mid, PAGE, PROT_NONE, MAP_FIXED);
	assert_int_equal(hmmu_mmap(mm, 0, mid, RW, ANON, -1, 0), -ENOMEM);
	assert_int_equal(hmmu_mmap(mm, 0, mid - PAGE, RW, ANON, -1, 0), mid + PAGE);
	assert_int_equal(hmmu_test_map(mm, mid - HMMU_MMAP_MIN_ADDR, PROT_READ), HMMU_MMAP_MIN_ADDR);
	assert_int_equal(hmmu_mmap(mm, 0, PAGE, RW, ANON, -1, 0), -ENOMEM);
	assert_int_equal(nr_vmas(mm), 3);
}

/* ------------------------------------------------------------------ */
/* Splits and merges                                                   */
/* ------------------------------------------------------------------ */

/* mprotect of the middle splits into three; back again merges into one. */
static void check_mprotect_middle(bool touched)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);
	struct vma_set s;

	if (touched)
		for (int i = 0; i < 8; i++)
			put_byte(mm, a + i * PAGE + i, (unsigned char)(i + 1));
	assert_int_equal(hmmu_mprotect(mm, a + 2 * PAGE, 4 * PAGE, PROT_READ), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 3);
	check_vma(&s, 0, a, a + 2 * PAGE, RW);
	check_vma(&s, 1, a + 2 * PAGE, a + 6 * PAGE, PROT_READ);
	check_vma(&s, 2, a + 6 * PAGE, a + 8 * PAGE, RW);
	assert_int_equal(hmmu_pt_validate(mm), 0);
	assert_int_equal(hmmu_mprotect(mm, a + 2 * PAGE, 4 * PAGE, RW), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 1);
	check_vma(&s, 0, a, a + 8 * PAGE, RW);
	if (touched)
		for (int i = 0; i < 8; i++)
			assert_int_equal(get_byte(mm, a + i * PAGE + i), i + 1);
	/* The same protection again changes nothing. */
	assert_int_equal(hmmu_mprotect(mm, a + PAGE, PAGE, RW), 0);
	assert_int_equal(nr_vmas(mm), 1);
}

static void test_mprotect_split_merge(void **state)
{
	check_mprotect_middle(false);
	check_mprotect_middle(true);
}

/* Splits at either end only. */
static void test_mprotect_ends(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);
	struct vma_set s;

	assert_int_equal(hmmu_mprotect(mm, a, 3 * PAGE, PROT_NONE), 0);
	assert_int_equal(hmmu_mprotect(mm, a + 6 * PAGE, 2 * PAGE, PROT_READ | PROT_EXEC), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 3);
	check_vma(&s, 0, a, a + 3 * PAGE, PROT_NONE);
	check_vma(&s, 1, a + 3 * PAGE, a + 6 * PAGE, RW);
	check_vma(&s, 2, a + 6 * PAGE, a + 8 * PAGE, PROT_READ | PROT_EXEC);
	/* The whole range at once, then back. */
	assert_int_equal(hmmu_mprotect(mm, a, 8 * PAGE, PROT_READ), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 1);
	check_vma(&s, 0, a, a + 8 * PAGE, PROT_READ);
	/* An unaligned length rounds up. */
	assert_int_equal(hmmu_mprotect(mm, a, PAGE + 1, RW), 0);
	vmas(mm, &s);
	check_vma(&s, 0, a, a + 2 * PAGE, RW);
	check_vma(&s, 1, a + 2 * PAGE, a + 8 * PAGE, PROT_READ);
}

/* munmap of the middle leaves two VMAs; the data around it stays. */
static void test_munmap_middle(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);
	long free0 = nr_free();
	struct vma_set s;

	for (int i = 0; i < 8; i++)
		put_byte(mm, a + i * PAGE, (unsigned char)(i + 1));
	assert_int_equal(hmmu_munmap(mm, a + 3 * PAGE, 2 * PAGE), 0);
	assert_int_equal(nr_free(), free0 - 6);
	vmas(mm, &s);
	assert_int_equal(s.n, 2);
	check_vma(&s, 0, a, a + 3 * PAGE, RW);
	check_vma(&s, 1, a + 5 * PAGE, a + 8 * PAGE, RW);
	for (int i = 0; i < 8; i++)
		if (i != 3 && i != 4)
			assert_int_equal(get_byte(mm, a + i * PAGE), i + 1);
	/* Unmapping a hole, or a range with holes, is fine. */
	assert_int_equal(hmmu_munmap(mm, a + 3 * PAGE, 2 * PAGE), 0);
	assert_int_equal(hmmu_munmap(mm, a + 2 * PAGE, 4 * PAGE), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 2);
	check_vma(&s, 0, a, a + 2 * PAGE, RW);
	check_vma(&s, 1, a + 6 * PAGE, a + 8 * PAGE, RW);
	assert_int_equal(nr_free(), free0 - 4);
	/* An unaligned length rounds up. */
	assert_int_equal(hmmu_munmap(mm, a, PAGE + 1), 0);
	assert_int_equal(hmmu_munmap(mm, a + 6 * PAGE, 1), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 1);
	check_vma(&s, 0, a + 7 * PAGE, a + 8 * PAGE, RW);
	assert_int_equal(hmmu_munmap(mm, 0, HMMU_TASK_SIZE), 0);
	assert_int_equal(nr_vmas(mm), 0);
	assert_int_equal(nr_free(), free0);
	assert_int_equal(atomic_load(&mm->nr_pgtables), 0);
}

/* Four adjacent VMAs of different protections: mprotect and munmap across them. */
static void test_across_vmas(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, PROT_READ);
	static const int prots[] = { PROT_READ, RW, PROT_NONE, RW | PROT_EXEC };
	struct vma_set s;

	for (int i = 1; i < 4; i++)
		hmmu_test_map_at(mm, a + i * 4 * PAGE, 4 * PAGE, prots[i], MAP_FIXED_NOREPLACE);
	vmas(mm, &s);
	assert_int_equal(s.n, 4);
	for (int i = 0; i < 4; i++)
		check_vma(&s, i, a + i * 4 * PAGE, a + (i + 1) * 4 * PAGE, prots[i]);
	put_byte(mm, a + 5 * PAGE, 5);
	assert_int_equal(hmmu_mprotect(mm, a + 2 * PAGE, 12 * PAGE, RW), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 3);
	check_vma(&s, 0, a, a + 2 * PAGE, PROT_READ);
	check_vma(&s, 1, a + 2 * PAGE, a + 14 * PAGE, RW);
	check_vma(&s, 2, a + 14 * PAGE, a + 16 * PAGE, RW | PROT_EXEC);
	assert_int_equal(get_byte(mm, a + 5 * PAGE), 5);
	/*
	 * VMAs whose pages belong to different anon_vmas never merge (Linux's
	 * is_mergeable_anon_vma): fault pages into the RWX VMA on its own, then
	 * make part of it RW: four VMAs.
	 */
	put_byte(mm, a + 15 * PAGE, 15);
	put_byte(mm, a + 9 * PAGE, 9);	/* was PROT_NONE */
	assert_int_equal(hmmu_mprotect(mm, a + 14 * PAGE, PAGE, RW), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 4);
	check_vma(&s, 1, a + 2 * PAGE, a + 14 * PAGE, RW);
	check_vma(&s, 2, a + 14 * PAGE, a + 15 * PAGE, RW);
	check_vma(&s, 3, a + 15 * PAGE, a + 16 * PAGE, RW | PROT_EXEC);
	assert_int_equal(get_byte(mm, a + 15 * PAGE), 15);
	assert_int_equal(hmmu_munmap(mm, a + PAGE, 14 * PAGE), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 2);
	check_vma(&s, 0, a, a + PAGE, PROT_READ);
	check_vma(&s, 1, a + 15 * PAGE, a + 16 * PAGE, RW | PROT_EXEC);
	assert_int_equal(hmmu_pt_validate(mm), 0);
}

/* mprotect over a hole: -ENOMEM; the VMAs before the hole keep the change. */
static void test_mprotect_hole(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 10 * PAGE, RW);
	struct vma_set s;

	assert_int_equal(hmmu_munmap(mm, a + 4 * PAGE, 2 * PAGE), 0);
	assert_int_equal(hmmu_mprotect(mm, a + 2 * PAGE, 6 * PAGE, PROT_READ), -ENOMEM);
	vmas(mm, &s);
	assert_int_equal(s.n, 3);
	check_vma(&s, 0, a, a + 2 * PAGE, RW);
	check_vma(&s, 1, a + 2 * PAGE, a + 4 * PAGE, PROT_READ);
	check_vma(&s, 2, a + 6 * PAGE, a + 10 * PAGE, RW);
	/* Starting in the hole changes nothing. */
	assert_int_equal(hmmu_mprotect(mm, a + 5 * PAGE, 3 * PAGE, PROT_NONE), -ENOMEM);
	assert_int_equal(hmmu_mprotect(mm, a + 20 * PAGE, PAGE, PROT_NONE), -ENOMEM);
	vmas(mm, &s);
	assert_int_equal(s.n, 3);
	check_vma(&s, 2, a + 6 * PAGE, a + 10 * PAGE, RW);
}

/* A VMA that may never be writable refuses PROT_WRITE with -EACCES. */
static void test_mprotect_eacces(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, PROT_READ);
	unsigned long b = hmmu_test_map_at(mm, a + 4 * PAGE, 4 * PAGE, PROT_READ | PROT_EXEC, MAP_FIXED);
	struct vma_set s;

	/* No mmap flag creates one yet: clear VM_MAYWRITE as a driver's mapping would. */
	hmmu_mmap_write_lock(mm);
	hmmu_vma_lookup(mm, b)->vm_flags &= ~HMMU_VM_MAYWRITE;
	hmmu_mmap_write_unlock(mm);
	assert_int_equal(hmmu_mprotect(mm, b, PAGE, RW), -EACCES);
	assert_int_equal(hmmu_mprotect(mm, b + PAGE, PAGE, PROT_WRITE), -EACCES);
	assert_int_equal(nr_vmas(mm), 2);
	assert_int_equal(hmmu_mprotect(mm, b, PAGE, PROT_NONE), 0);
	/* The check is per VMA: the VMAs before the refusing one are changed. */
	assert_int_equal(hmmu_mprotect(mm, a + PAGE, 7 * PAGE, RW), -EACCES);
	vmas(mm, &s);
	assert_int_equal(s.n, 4);
	check_vma(&s, 0, a, a + PAGE, PROT_READ);
	check_vma(&s, 1, a + PAGE, a + 4 * PAGE, RW);
	check_vma(&s, 2, b, b + PAGE, PROT_NONE);
	check_vma(&s, 3, b + PAGE, b + 4 * PAGE, PROT_READ | PROT_EXEC);
	assert_false(vm_flags_at(mm, b) & HMMU_VM_MAYWRITE);
	assert_false(vm_flags_at(mm, b + PAGE) & HMMU_VM_MAYWRITE);
	assert_true(vm_flags_at(mm, a) & HMMU_VM_MAYWRITE);
}

/* Bad arguments: -EINVAL. */
static void test_mprotect_munmap_einval(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);

	assert_int_equal(hmmu_mprotect(NULL, a, PAGE, PROT_READ), -EINVAL);
	assert_int_equal(hmmu_mprotect(mm, a + 1, PAGE, PROT_READ), -EINVAL);
	assert_int_equal(hmmu_mprotect(mm, a, PAGE, 0x10), -EINVAL);
	assert_int_equal(hmmu_mprotect(mm, a, PAGE, PROT_READ | PROT_GROWSUP), -EINVAL);
	assert_int_equal(hmmu_mprotect(mm, HMMU_TASK_SIZE - PAGE, 2 * PAGE, PROT_READ), -EINVAL);
	assert_int_equal(hmmu_mprotect(mm, a, ~(size_t)0, PROT_READ), -EINVAL);
	assert_int_equal(hmmu_munmap(NULL, a, PAGE), -EINVAL);
	assert_int_equal(hmmu_munmap(mm, a + 1, PAGE), -EINVAL);
	assert_int_equal(hmmu_munmap(mm, HMMU_TASK_SIZE - PAGE, 2 * PAGE), -EINVAL);
	assert_int_equal(hmmu_munmap(mm, HMMU_TASK_SIZE, PAGE), -EINVAL);
	assert_int_equal(hmmu_munmap(mm, a, ~(size_t)0), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, HMMU_TASK_SIZE - PAGE, 2 * PAGE, MADV_HUGEPAGE), -EINVAL);
	/* Ranges that wrap around the top of the address space. */
	assert_int_equal(hmmu_munmap(mm, ~0UL & HMMU_PAGE_MASK, 2 * PAGE), -EINVAL);
	assert_int_equal(hmmu_mprotect(mm, ~0UL & HMMU_PAGE_MASK, 2 * PAGE, PROT_READ), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, ~0UL & HMMU_PAGE_MASK, 2 * PAGE, MADV_DONTNEED), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, ~0UL & HMMU_PAGE_MASK, 2 * PAGE, MADV_HUGEPAGE), -EINVAL);
	assert_int_equal(hmmu_munmap(mm, HMMU_TASK_SIZE, HMMU_TASK_SIZE), -EINVAL);
	assert_int_equal(nr_vmas(mm), 1);
	assert_int_equal(vm_flags_at(mm, a) & VM_RWX, HMMU_VM_READ | HMMU_VM_WRITE);
}

/* Length 0: mmap and munmap refuse it, mprotect and madvise do nothing. */
static void test_len_zero(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW);

	assert_int_equal(hmmu_mmap(mm, 0, 0, RW, ANON, -1, 0), -EINVAL);
	assert_int_equal(hmmu_munmap(mm, a, 0), -EINVAL);
	assert_int_equal(hmmu_mprotect(mm, a, 0, PROT_NONE), 0);
	assert_int_equal(hmmu_mprotect(mm, 0x7000000000UL, 0, PROT_NONE), 0);
	assert_int_equal(hmmu_madvise(mm, a, 0, MADV_DONTNEED), 0);
	assert_int_equal(hmmu_madvise(mm, 0x7000000000UL, 0, MADV_HUGEPAGE), 0);
	/* Alignment, prot and advice are still checked, as Linux does. */
	assert_int_equal(hmmu_mprotect(mm, a + 1, 0, PROT_NONE), -EINVAL);
	assert_int_equal(hmmu_mprotect(mm, a, 0, 0x10), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, a + 1, 0, MADV_DONTNEED), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, a, 0, 12345), -EINVAL);
	assert_int_equal(vm_flags_at(mm, a) & VM_RWX, HMMU_VM_READ | HMMU_VM_WRITE);
	assert_int_equal(nr_vmas(mm), 1);
}

/* Adjacent anonymous mappings with the same protection merge. */
static void test_adjacent_mmaps_merge(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	struct vma_set s;

	put_byte(mm, a, 1);	/* the first VMA has an anon_vma now */
	assert_int_equal(hmmu_test_map(mm, 4 * PAGE, RW), a + 4 * PAGE);
	assert_int_equal(hmmu_test_map_at(mm, a - 2 * PAGE, 2 * PAGE, RW, MAP_FIXED), a - 2 * PAGE);
	vmas(mm, &s);
	assert_int_equal(s.n, 1);
	check_vma(&s, 0, a - 2 * PAGE, a + 8 * PAGE, RW);
	put_byte(mm, a + 7 * PAGE, 7);
	put_byte(mm, a - PAGE, 8);
	assert_int_equal(get_byte(mm, a), 1);
	/* A different protection does not merge; filling the gap between equals does. */
	assert_int_equal(hmmu_test_map(mm, PAGE, PROT_READ), a + 8 * PAGE);
	assert_int_equal(hmmu_test_map_at(mm, a + 10 * PAGE, PAGE, RW, MAP_FIXED), a + 10 * PAGE);
	assert_int_equal(nr_vmas(mm), 3);
	assert_int_equal(hmmu_test_map_at(mm, a + 9 * PAGE, PAGE, RW, MAP_FIXED), a + 9 * PAGE);
	vmas(mm, &s);
	assert_int_equal(s.n, 3);
	check_vma(&s, 1, a + 8 * PAGE, a + 9 * PAGE, PROT_READ);
	check_vma(&s, 2, a + 9 * PAGE, a + 11 * PAGE, RW);
	assert_int_equal(hmmu_mprotect(mm, a + 8 * PAGE, PAGE, RW), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 1);
	check_vma(&s, 0, a - 2 * PAGE, a + 11 * PAGE, RW);
	assert_int_equal(hmmu_pt_validate(mm), 0);
}

/* MADV_HUGEPAGE / NOHUGEPAGE split and merge like protection changes. */
static void test_madvise_huge_flags(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW);
	struct vma_set s;

	assert_int_equal(hmmu_madvise(mm, a + 2 * PAGE, 2 * PAGE, MADV_HUGEPAGE), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 3);
	assert_true(s.v[1].flags & HMMU_VM_HUGEPAGE);
	assert_false(s.v[0].flags & (HMMU_VM_HUGEPAGE | HMMU_VM_NOHUGEPAGE));
	assert_int_equal(s.v[1].start, a + 2 * PAGE);
	assert_int_equal(hmmu_madvise(mm, a + 2 * PAGE, 2 * PAGE, MADV_NOHUGEPAGE), 0);
	assert_int_equal(vm_flags_at(mm, a + 2 * PAGE) & (HMMU_VM_HUGEPAGE | HMMU_VM_NOHUGEPAGE),
			 HMMU_VM_NOHUGEPAGE);
	assert_int_equal(hmmu_madvise(mm, a, 8 * PAGE, MADV_HUGEPAGE), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 1);
	assert_true(s.v[0].flags & HMMU_VM_HUGEPAGE);
	assert_int_equal(hmmu_madvise(mm, a + 1, PAGE, MADV_HUGEPAGE), -EINVAL);
	assert_int_equal(hmmu_madvise(mm, a, PAGE, MADV_WILLNEED + 1000), -EINVAL);
}

/* madvise over a hole: -ENOMEM, and every mapped part is still advised. */
static void test_madvise_hole(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 6 * PAGE, RW);

	assert_int_equal(hmmu_munmap(mm, a + 2 * PAGE, 2 * PAGE), 0);
	assert_int_equal(hmmu_madvise(mm, a, 6 * PAGE, MADV_HUGEPAGE), -ENOMEM);
	assert_true(vm_flags_at(mm, a) & HMMU_VM_HUGEPAGE);
	assert_true(vm_flags_at(mm, a + 5 * PAGE) & HMMU_VM_HUGEPAGE);
	assert_int_equal(hmmu_madvise(mm, a + PAGE, 4 * PAGE, MADV_NOHUGEPAGE), -ENOMEM);
	assert_true(vm_flags_at(mm, a + PAGE) & HMMU_VM_NOHUGEPAGE);
	assert_true(vm_flags_at(mm, a + 4 * PAGE) & HMMU_VM_NOHUGEPAGE);
	assert_true(vm_flags_at(mm, a) & HMMU_VM_HUGEPAGE);
	assert_true(vm_flags_at(mm, a + 5 * PAGE) & HMMU_VM_HUGEPAGE);
	assert_int_equal(nr_vmas(mm), 4);
}

/* Random protection changes over one mapping; restoring one protection merges it back whole. */
static void test_split_merge_random(void **state)
{
	enum { NPAGES = 128 };
	static const int prots[] = { PROT_NONE, PROT_READ, RW, PROT_READ | PROT_EXEC };
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, NPAGES * PAGE, RW);
	uint64_t rs = hmmu_test_seed() ^ 0x6161;
	int prot[NPAGES];
	struct vma_set s;

	for (int i = 0; i < NPAGES; i++) {
		prot[i] = RW;
		if (i % 3 == 0)
			put_byte(mm, a + (unsigned long)i * PAGE, (unsigned char)i);
	}
	for (int it = 0; it < 300; it++) {
		int st = (int)(hmmu_test_rand(&rs) % NPAGES), n = 1 + (int)(hmmu_test_rand(&rs) % 16);
		int p = prots[hmmu_test_rand(&rs) % 4], expect = 1;

		n = HMMU_MIN(n, NPAGES - st);
		assert_int_equal(hmmu_mprotect(mm, a + (unsigned long)st * PAGE, (unsigned long)n * PAGE, p), 0);
		for (int i = st; i < st + n; i++)
			prot[i] = p;
		for (int i = 1; i < NPAGES; i++)
			expect += prot[i] != prot[i - 1];
		/* Runs of equal protection are exactly the VMAs: all merged. */
		assert_int_equal(nr_vmas(mm), expect);
	}
	assert_int_equal(hmmu_pt_validate(mm), 0);
	assert_int_equal(hmmu_mprotect(mm, a, NPAGES * PAGE, RW), 0);
	vmas(mm, &s);
	assert_int_equal(s.n, 1);
	check_vma(&s, 0, a, a + NPAGES * PAGE, RW);
	for (int i = 0; i < NPAGES; i += 3)
		assert_int_equal(get_byte(mm, a + (unsigned long)i * PAGE), (unsigned char)i);
}

/* ------------------------------------------------------------------ */
/* Randomised model test                                               */
/* ------------------------------------------------------------------ */

enum { WIN = 64, GUARD_PAGES = 4, MODEL_OPS = 3000, CHECK_EVERY = 100 };

struct model {
	struct hmmu_mm *mm;
	unsigned long base, guard_end;
	int prot[WIN];		/* -1: unmapped */
	unsigned char *bytes;	/* WIN pages */
	uint64_t rs;
	unsigned char *buf;	/* scratch, WIN pages */
};

static const int model_prots[] = { PROT_NONE, PROT_READ, RW, PROT_READ | PROT_EXEC, RW | PROT_EXEC };

static unsigned long maddr(const struct model *m, int page)
{
	return m->base + (unsigned long)page * PAGE;
}

static int rnd(struct model *m, int n)
{
	return (int)(hmmu_test_rand(&m->rs) % (uint64_t)n);
}

/* A random range [*s, *s + *n) inside the window, 1..@max pages. */
static void model_range(struct model *m, int max, int *s, int *n)
{
	int len = 1 + rnd(m, max);	/* not inside HMMU_MIN: evaluated twice */

	*s = rnd(m, WIN);
	*n = HMMU_MIN(len, WIN - *s);
}

static bool model_free(const struct model *m, int s, int n)
{
	for (int i = s; i < s + n; i++)
		if (m->prot[i] >= 0)
			return false;
	return true;
}

static void model_set(struct model *m, int s, int n, int prot)
{
	for (int i = s; i < s + n; i++) {
		m->prot[i] = prot;
		memset(m->bytes + (size_t)i * PAGE, 0, PAGE);
	}
}

static void model_mmap_fixed(struct model *m)
{
	int s, n, prot = model_prots[rnd(m, 5)];
	bool noreplace = rnd(m, 4) == 0;
	long ret;

	model_range(m, 8, &s, &n);
	ret = hmmu_mmap(m->mm, maddr(m, s), (size_t)n * PAGE, prot,
			ANON | (noreplace ? MAP_FIXED_NOREPLACE : MAP_FIXED), -1, 0);
	if (noreplace && !model_free(m, s, n)) {
		assert_int_equal(ret, -EEXIST);
		return;
	}
	assert_int_equal(ret, maddr(m, s));
	model_set(m, s, n, prot);
}

/* Where a mapping of @n pages with hint page @h (-1: none) must land; -1: above the guard. */
static int model_place(const struct model *m, int h, int n)
{
	if (h >= 0 && h + n <= WIN && model_free(m, h, n))
		return h;
	for (int s = 0; s + n <= WIN; s++)
		if (model_free(m, s, n))
			return s;
	return -1;
}

static void model_mmap_hint(struct model *m)
{
	int n = 1 + rnd(m, 8), h = rnd(m, 2) ? rnd(m, WIN) : -1, prot = model_prots[rnd(m, 5)];
	int want = model_place(m, h, n);
	long ret = hmmu_mmap(m->mm, h >= 0 ? maddr(m, h) : 0, (size_t)n * PAGE, prot, ANON, -1, 0);

	if (want < 0) {
		assert_int_equal(ret, m->guard_end);
		assert_int_equal(hmmu_munmap(m->mm, (unsigned long)ret, (size_t)n * PAGE), 0);
		return;
	}
	assert_int_equal(ret, maddr(m, want));
	model_set(m, want, n, prot);
}

static void model_munmap(struct model *m)
{
	int s, n;

	model_range(m, 12, &s, &n);
	assert_int_equal(hmmu_munmap(m->mm, maddr(m, s), (size_t)n * PAGE), 0);
	model_set(m, s, n, -1);
}

static void model_mprotect(struct model *m)
{
	int s, n, i, prot = model_prots[rnd(m, 5)];
	int ret;

	model_range(m, 12, &s, &n);
	ret = hmmu_mprotect(m->mm, maddr(m, s), (size_t)n * PAGE, prot);
	for (i = s; i < s + n && m->prot[i] >= 0; i++)
		m->prot[i] = prot;
	assert_int_equal(ret, i < s + n ? -ENOMEM : 0);
}

static void model_dontneed(struct model *m)
{
	int s, n, ret;
	bool hole = false;

	model_range(m, 8, &s, &n);
	ret = hmmu_madvise(m->mm, maddr(m, s), (size_t)n * PAGE, MADV_DONTNEED);
	for (int i = s; i < s + n; i++) {
		if (m->prot[i] < 0)
			hole = true;
		else
			memset(m->bytes + (size_t)i * PAGE, 0, PAGE);
	}
	assert_int_equal(ret, hole ? -ENOMEM : 0);
}

/* Bytes of [off, off + len) a CPU access with @need could transfer before faulting. */
static size_t model_reach(const struct model *m, size_t off, size_t len, int need)
{
	size_t done = 0;

	while (done < len) {
		int page = (int)((off + done) / PAGE);

		if (m->prot[page] < 0 || !(m->prot[page] & need))
			break;
		done = HMMU_MIN(len, (size_t)(page + 1) * PAGE - off);
	}
	return done;
}

static void model_access(struct model *m, bool write)
{
	size_t off = (size_t)rnd(m, WIN * PAGE), want = 1 + (size_t)rnd(m, 3 * PAGE);
	size_t len = HMMU_MIN(want, (size_t)WIN * PAGE - off);
	size_t reach = model_reach(m, off, len, write ? PROT_WRITE : PROT_READ);
	int ret;

	if (write) {
		for (size_t i = 0; i < len; i++)
			m->buf[i] = (unsigned char)hmmu_test_rand(&m->rs);
		ret = hmmu_access(m->mm, m->base + off, m->buf, len, HMMU_ACCESS_WRITE);
		memcpy(m->bytes + off, m->buf, reach);
	} else {
		ret = hmmu_access(m->mm, m->base + off, m->buf, len, HMMU_ACCESS_READ);
		if (reach)
			assert_memory_equal(m->buf, m->bytes + off, reach);
	}
	assert_int_equal(ret, reach < len ? -EFAULT : 0);
}

static int vm_to_prot(unsigned long flags)
{
	return (flags & HMMU_VM_READ ? PROT_READ : 0) | (flags & HMMU_VM_WRITE ? PROT_WRITE : 0) |
	       (flags & HMMU_VM_EXEC ? PROT_EXEC : 0);
}

/* The VMAs, page tables and every readable byte agree with the model. */
static void model_check(struct model *m)
{
	static struct vma_set s;
	int prot[WIN];

	assert_int_equal(hmmu_pt_validate(m->mm), 0);
	for (int i = 0; i < WIN; i++)
		prot[i] = -1;
	vmas(m->mm, &s);
	assert_true(s.n >= 1);
	check_vma(&s, s.n - 1, m->base + WIN * PAGE, m->guard_end, PROT_EXEC);
	for (int k = 0; k < s.n - 1; k++) {
		assert_true(s.v[k].start >= m->base && s.v[k].end <= m->base + WIN * PAGE);
		for (unsigned long a = s.v[k].start; a < s.v[k].end; a += PAGE)
			prot[(a - m->base) / PAGE] = vm_to_prot(s.v[k].flags);
	}
	assert_memory_equal(prot, m->prot, sizeof(prot));
	for (int i = 0; i < WIN; i++) {
		if (m->prot[i] < 0 || !(m->prot[i] & PROT_READ))
			continue;
		assert_int_equal(hmmu_access(m->mm, maddr(m, i), m->buf, PAGE, HMMU_ACCESS_READ), 0);
		assert_memory_equal(m->buf, m->bytes + (size_t)i * PAGE, PAGE);
	}
}

static void model_step(struct model *m)
{
	int op = rnd(m, 100);

	if (op < 10)
		model_mmap_fixed(m);
	else if (op < 18)
		model_mmap_hint(m);
	else if (op < 28)
		model_munmap(m);
	else if (op < 43)
		model_mprotect(m);
	else if (op < 50)
		model_dontneed(m);
	else
		model_access(m, op < 75);
}

/*
 * A seeded sequence of mmap (fixed and hinted), munmap, mprotect, DONTNEED
 * and byte accesses on a 64-page window at the lowest address (a guard VMA
 * above it), checked op by op against a model of bytes and protections.
 */
static void test_random_model(void **state)
{
	struct model m = { .mm = hmmu_test_mm(), .rs = hmmu_test_seed() ^ 0x7171 };

	m.bytes = calloc(WIN, PAGE);
	m.buf = calloc(WIN, PAGE);
	assert_non_null(m.bytes);
	assert_non_null(m.buf);
	m.base = HMMU_MMAP_MIN_ADDR;
	/* PROT_EXEC alone: no window mapping can merge with the guard. */
	m.guard_end = hmmu_test_map_at(m.mm, m.base + WIN * PAGE, GUARD_PAGES * PAGE, PROT_EXEC, MAP_FIXED) +
		      GUARD_PAGES * PAGE;
	for (int i = 0; i < WIN; i++)
		m.prot[i] = -1;
	for (int i = 0; i < MODEL_OPS; i++) {
		model_step(&m);
		if (i % CHECK_EVERY == CHECK_EVERY - 1)
			model_check(&m);
	}
	model_check(&m);
	free(m.bytes);
	free(m.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_mmap_basic),
		HMMU_TEST(test_mmap_einval),
		HMMU_TEST(test_mmap_eopnotsupp),
		HMMU_TEST(test_mmap_fixed_replaces),
		HMMU_TEST(test_mmap_fixed_noreplace),
		HMMU_TEST(test_mmap_hint),
		HMMU_TEST(test_unmapped_area_lowest_fit),
		HMMU_TEST(test_unmapped_area_random),
		HMMU_TEST(test_unmapped_area_enomem),
		HMMU_TEST(test_mprotect_split_merge),
		HMMU_TEST(test_mprotect_ends),
		HMMU_TEST(test_munmap_middle),
		HMMU_TEST(test_across_vmas),
		HMMU_TEST(test_mprotect_hole),
		HMMU_TEST(test_mprotect_eacces),
		HMMU_TEST(test_mprotect_munmap_einval),
		HMMU_TEST(test_len_zero),
		HMMU_TEST(test_adjacent_mmaps_merge),
		HMMU_TEST(test_madvise_huge_flags),
		HMMU_TEST(test_madvise_hole),
		HMMU_TEST(test_split_merge_random),
		HMMU_TEST(test_random_model),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
