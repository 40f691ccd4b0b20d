// SPDX-License-Identifier: MIT
/*
 * Migration (spec 3, 4.2): hmmu_migrate_vma_setup/pages/finalize,
 * hmmu_migrate_device_range/pages/finalize and long-term pins of
 * device-coherent pages.  Each test drives the steps as a driver does,
 * with the test devices of the fixture (harness_dev.c).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "notifier_rec.h"

#define PAGE HMMU_PAGE_SIZE
#define RW (PROT_READ | PROT_WRITE)
#define SYS HMMU_MIGRATE_VMA_SELECT_SYSTEM
#define DP HMMU_MIGRATE_VMA_SELECT_DEVICE_PRIVATE
#define DC HMMU_MIGRATE_VMA_SELECT_DEVICE_COHERENT
#define V HMMU_MIGRATE_PFN_VALID
#define M HMMU_MIGRATE_PFN_MIGRATE
#define W HMMU_MIGRATE_PFN_WRITE

static int owner_a, owner_b;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Fill @n pages at @a with random bytes (kept in @data). */
static void fill_random(struct hmmu_mm *mm, unsigned long a, unsigned long n, unsigned char *data, uint64_t *rs)
{
	for (unsigned long i = 0; i < n * PAGE; i++)
		data[i] = (unsigned char)hmmu_test_rand(rs);
	put_bytes(mm, a, data, n * PAGE);
}

static hmmu_pte_t pte_at(struct hmmu_mm *mm, unsigned long a)
{
	return hmmu_test_leaf(mm, a, NULL);
}

/* The non-present entry at @a (fails the test if there is none). */
static struct hmmu_swp_entry swp_at(struct hmmu_mm *mm, unsigned long a)
{
	hmmu_pte_t e = pte_at(mm, a);

	assert_true(e && !hmmu_pte_present(e));
	return hmmu_pte_to_swp_entry(e);
}

/* The page a present entry maps at @a, or NULL. */
static struct hmmu_page *page_at(struct hmmu_mm *mm, unsigned long a)
{
	hmmu_pte_t e = pte_at(mm, a);

	return hmmu_pte_present(e) ? hmmu_pfn_to_page(hmmu_pte_pfn(e)) : NULL;
}

static unsigned long pfn_of(const struct hmmu_page *page)
{
	return hmmu_page_to_pfn(page);
}

static struct hmmu_test_dev *dev_of(const struct hmmu_page *page)
{
	return hmmu_container_of(page->pgmap, struct hmmu_test_dev, pgmap);
}

/* The bytes of any page: through the direct map, or a private device's store. */
static void *page_bytes(struct hmmu_page *page)
{
	if (hmmu_is_device_private_page(page))
		return hmmu_test_dev_mem(dev_of(page), page);
	return hmmu_page_address(page);
}

/*
 * One migration as a driver drives it: setup with the mmap_lock taken for
 * read (held until mig_end), a destination per selected entry, pages,
 * finalize.
 */
struct mig {
	struct hmmu_mm *mm;
	struct hmmu_migrate_vma a;
	unsigned long *src, *dst;
	unsigned long n;
};

/*
 * The mm whose mmap_lock a migration of this thread holds: a failed
 * assertion leaves the test with it held, and the teardown releases it so
 * that it reports the failure instead of hanging.
 */
static struct hmmu_mm *held_mm;
static int held_depth;		/* read locks of held_mm this thread took */

static void held_lock(struct hmmu_mm *mm)
{
	hmmu_mmap_read_lock(mm);
	held_mm = mm;
	held_depth++;
}

static void held_unlock(struct hmmu_mm *mm)
{
	held_depth--;
	hmmu_mmap_read_unlock(mm);
}

static int mig_teardown(void **state)
{
	for (; held_depth > 0; held_depth--)
		hmmu_mmap_read_unlock(held_mm);
	return hmmu_test_teardown(state);
}

#define MTEST(fn) cmocka_unit_test_setup_teardown(fn, hmmu_test_setup, mig_teardown)

static int mig_setup(struct mig *m, struct hmmu_mm *mm, unsigned long start, unsigned long n, unsigned long flags,
		     void *owner)
{
	m->mm = mm;
	m->n = n;
	m->src = calloc(n, sizeof(*m->src));
	m->dst = calloc(n, sizeof(*m->dst));
	assert_true(m->src && m->dst);
	held_lock(mm);
	m->a = (struct hmmu_migrate_vma){
		.vma = hmmu_vma_lookup(mm, start), .start = start, .end = start + n * PAGE,
		.src = m->src, .dst = m->dst, .pgmap_owner = owner, .flags = flags,
	};
	return hmmu_migrate_vma_setup(&m->a);
}

/* A destination for entry @i: a page of @dev, or a locked system page; copied or zeroed. */
static struct hmmu_page *mig_dst(struct mig *m, unsigned long i, struct hmmu_test_dev *dev)
{
	struct hmmu_page *spage = hmmu_migrate_pfn_to_page(m->src[i]);
	struct hmmu_page *d = dev ? hmmu_test_dev_alloc(dev) : hmmu_alloc_page_vma(m->a.vma, m->a.start + i * PAGE);

	assert_non_null(d);
	if (!dev)
		hmmu_lock_page(d);
	if (spage)
		memcpy(page_bytes(d), page_bytes(spage), PAGE);
	else
		memset(page_bytes(d), 0, PAGE);
	m->dst[i] = hmmu_migrate_pfn(pfn_of(d)) | (m->src[i] & W);
	return d;
}

/* Destinations for every selected entry; returns how many. */
static unsigned long mig_fill(struct mig *m, struct hmmu_test_dev *dev)
{
	unsigned long n = 0;

	for (unsigned long i = 0; i < m->n; i++)
		if (m->src[i] & M) {
			mig_dst(m, i, dev);
			n++;
		}
	return n;
}

static void mig_pages(struct mig *m)
{
	assert_int_equal(hmmu_migrate_vma_pages(&m->a), 0);
}

/* Finalize, release the mmap_lock and the arrays. */
static void mig_end(struct mig *m)
{
	assert_int_equal(hmmu_migrate_vma_finalize(&m->a), 0);
	held_unlock(m->mm);
	free(m->src);
	free(m->dst);
}

/* Migrate [start, start + n pages) with @flags/@owner to @dev (NULL: system memory). */
static void migrate(struct hmmu_mm *mm, unsigned long start, unsigned long n, unsigned long flags, void *owner,
		    struct hmmu_test_dev *dev)
{
	struct mig m;

	assert_int_equal(mig_setup(&m, mm, start, n, flags, owner), 0);
	mig_fill(&m, dev);
	mig_pages(&m);
	mig_end(&m);
}

/* ------------------------------------------------------------------ */
/* Arguments                                                           */
/* ------------------------------------------------------------------ */

static int special_hook(struct hmmu_vma *vma, void *arg)
{
	return hmmu_remap_pfn_range(vma, vma->vm_start, pfn_of(arg), PAGE);
}

/* Setup with @m: -EINVAL, and src untouched. */
static void expect_einval(struct hmmu_migrate_vma m)
{
	unsigned long src[4] = { 0xdead, 0xdead, 0xdead, 0xdead };

	if (m.src)
		m.src = src;
	assert_int_equal(hmmu_migrate_vma_setup(&m), -EINVAL);
	assert_int_equal(src[0], 0xdead);
}

/* Every -EINVAL case of spec 3.4, plus NULL args and an unlocked fault page. */
static void test_setup_einval(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner_a);
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW), src[4], dst[4];
	long h = hmmu_mmap(mm, 0, HMMU_PMD_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	struct hmmu_page *frame = hmmu_alloc_page(HMMU_GFP_ZERO), *dpage = hmmu_test_dev_alloc(dev);
	long sp = hmmu_mmap_special(mm, 0, PAGE, RW, MAP_SHARED, 0, special_hook, frame);
	struct hmmu_migrate_vma base, m;

	assert_true(h > 0 && sp > 0 && frame && dpage);
	put_byte(mm, a, 1);
	hmmu_unlock_page(dpage);
	held_lock(mm);
	base = (struct hmmu_migrate_vma){ .vma = hmmu_vma_lookup(mm, a), .start = a, .end = a + 4 * PAGE,
					  .src = src, .dst = dst, .flags = SYS, .pgmap_owner = &owner_a };
	assert_int_equal(hmmu_migrate_vma_setup(NULL), -EINVAL);
	m = base, m.src = NULL, expect_einval(m);
	m = base, m.dst = NULL, expect_einval(m);
	m = base, m.vma = NULL, expect_einval(m);
	m = base, m.end = a, expect_einval(m);				/* start == end */
	m = base, m.start = a + 2 * PAGE, m.end = a + PAGE, expect_einval(m);
	m = base, m.end = a + PAGE - 1, expect_einval(m);		/* rounds down to start */
	m = base, m.start = a - PAGE, expect_einval(m);			/* start before the VMA */
	m = base, m.end = a + 5 * PAGE, expect_einval(m);		/* end past it */
	m = base, m.start = a + 4 * PAGE, m.end = a + 5 * PAGE, expect_einval(m);
	m = base, m.vma = hmmu_vma_lookup(mm, (unsigned long)h), m.start = (unsigned long)h,
	m.end = (unsigned long)h + PAGE, expect_einval(m);		/* hugetlb */
	m = base, m.vma = hmmu_vma_lookup(mm, (unsigned long)sp), m.start = (unsigned long)sp,
	m.end = (unsigned long)sp + PAGE, expect_einval(m);		/* PFNMAP | IO | DONTEXPAND */
	m = base, m.fault_page = page_at(mm, a), expect_einval(m);	/* not device-private */
	m = base, m.fault_page = dpage, expect_einval(m);		/* device-private, not locked */
	held_unlock(mm);
	hmmu_put_page(dpage);
	assert_int_equal(hmmu_munmap(mm, (unsigned long)sp, PAGE), 0);
	hmmu_put_page(frame);
}

/* start and end are rounded down to pages; end is rewritten from npages. */
static void test_setup_rounding(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	struct mig m;

	put_byte(mm, a + PAGE, 7);
	m.src = calloc(4, sizeof(long));
	m.dst = calloc(4, sizeof(long));
	held_lock(mm);
	m.mm = mm;
	m.n = 4;
	m.a = (struct hmmu_migrate_vma){ .vma = hmmu_vma_lookup(mm, a), .start = a + 100, .end = a + 3 * PAGE + 5,
					 .src = m.src, .dst = m.dst, .flags = 0 };
	assert_int_equal(hmmu_migrate_vma_setup(&m.a), 0);
	assert_int_equal(m.a.start, a);
	assert_int_equal(m.a.end, a + 3 * PAGE);
	assert_int_equal(m.a.npages, 3);
	assert_int_equal(m.a.cpages, 2);	/* flags 0: the anonymous empty slots only */
	assert_int_equal(m.src[0], M);
	assert_int_equal(m.src[1], 0);		/* a system page needs SELECT_SYSTEM */
	assert_int_equal(m.src[2], M);
	mig_pages(&m);
	assert_int_equal(m.src[0], 0);		/* no destination */
	mig_end(&m);
	assert_int_equal(get_byte(mm, a + PAGE), 7);
	assert_int_equal(hmmu_migrate_vma_pages(NULL), -EINVAL);
	assert_int_equal(hmmu_migrate_vma_finalize(NULL), -EINVAL);
}

/* A migration is over after finalize: a second finalize or pages is -EINVAL and touches nothing. */
static void test_finalize_twice(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW), src[2], dst[2];
	struct hmmu_page *page;
	struct hmmu_migrate_vma args = { .start = a, .end = a + 2 * PAGE, .src = src, .dst = dst,
					 .flags = HMMU_MIGRATE_VMA_SELECT_SYSTEM };

	put_byte(mm, a, 9);
	hmmu_mmap_read_lock(mm);
	args.vma = hmmu_vma_lookup(mm, a);
	assert_int_equal(hmmu_migrate_vma_pages(&args), -EINVAL);	/* not set up */
	assert_int_equal(hmmu_migrate_vma_setup(&args), 0);
	page = hmmu_migrate_pfn_to_page(src[0]);
	assert_non_null(page);
	assert_int_equal(hmmu_migrate_vma_pages(&args), 0);	/* no destinations: restored */
	assert_int_equal(hmmu_migrate_vma_finalize(&args), 0);
	assert_int_equal(args.npages, 0);
	assert_int_equal(hmmu_page_ref_count(page), 1);
	assert_int_equal(hmmu_migrate_vma_finalize(&args), -EINVAL);
	assert_int_equal(hmmu_migrate_vma_pages(&args), -EINVAL);
	assert_int_equal(hmmu_page_ref_count(page), 1);
	assert_false(hmmu_page_locked(page));
	hmmu_mmap_read_unlock(mm);
	assert_int_equal(get_byte(mm, a), 9);
}

/* ------------------------------------------------------------------ */
/* Selection (spec 3.3)                                                */
/* ------------------------------------------------------------------ */

enum { S_SYS, S_ZERO, S_NONE, S_PRIV_OWN, S_PRIV_OTHER, S_COH_OWN, S_COH_OTHER, S_MIGRATING, NR_SLOTS };

struct sel_world {
	struct hmmu_mm *mm;
	unsigned long b;		/* the slots, in an anonymous VMA */
	unsigned long notable;		/* an anonymous slot with no page table */
	unsigned long shm;		/* a shared (not anonymous) VMA: hole, page */
	unsigned long shm_notable;	/* a slot of a shared VMA with no page table */
	unsigned long pfn[NR_SLOTS];
	hmmu_pte_t pte[NR_SLOTS];
};

/* Build one slot of every kind of spec 3.3's table. */
static void sel_world_build(struct sel_world *w, struct hmmu_test_dev *devs[4])
{
	unsigned long a = hmmu_test_map(w->mm, 6 * HMMU_PMD_SIZE, RW);
	long shm = hmmu_mmap(w->mm, 0, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	long shm2 = hmmu_mmap(w->mm, 0, 2 * HMMU_PMD_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(shm > 0 && shm2 > 0);
	w->shm_notable = HMMU_ALIGN_UP((unsigned long)shm2, HMMU_PMD_SIZE);
	w->shm = (unsigned long)shm;
	put_byte(w->mm, w->shm + PAGE, 0x55);
	w->b = HMMU_ALIGN_UP(a, HMMU_PMD_SIZE);
	w->notable = w->b + 2 * HMMU_PMD_SIZE;
	for (int s = 0; s < NR_SLOTS; s++)
		if (s != S_ZERO && s != S_NONE)
			put_byte(w->mm, w->b + s * PAGE, (unsigned char)(0xa0 + s));
	assert_int_equal(get_byte(w->mm, w->b + S_ZERO * PAGE), 0);
	for (int s = S_PRIV_OWN; s <= S_COH_OTHER; s++)
		hmmu_test_dev_to_device(devs[s - S_PRIV_OWN], w->mm, w->b + s * PAGE);
	for (int s = 0; s < NR_SLOTS; s++) {
		w->pte[s] = pte_at(w->mm, w->b + s * PAGE);
		w->pfn[s] = hmmu_pte_pfn(w->pte[s]);
	}
}

/* What setup must report for slot @s under @flags. */
static unsigned long sel_expected(const struct sel_world *w, int s, unsigned long flags)
{
	switch (s) {
	case S_SYS:
		return flags & SYS ? hmmu_migrate_pfn(w->pfn[s]) | M | W : 0;
	case S_ZERO:
		return flags & SYS ? M : 0;
	case S_NONE:
		return M;			/* whatever the flags (6.1) */
	case S_PRIV_OWN:
		return flags & DP ? hmmu_migrate_pfn(w->pfn[s]) | M | W : 0;
	case S_COH_OWN:
		return flags & DC ? hmmu_migrate_pfn(w->pfn[s]) | M | W : 0;
	default:
		return 0;			/* other owners, migration entries */
	}
}

/* Setup over [@a, @a + @n pages) must give @want; finalize with no destination restores it all. */
static void sel_check(struct hmmu_mm *mm, unsigned long a, unsigned long n, unsigned long flags,
		      const unsigned long *want)
{
	unsigned long selected = 0;
	struct mig m;

	assert_int_equal(mig_setup(&m, mm, a, n, flags, &owner_a), 0);
	for (unsigned long i = 0; i < n; i++) {
		if (m.src[i] != want[i])
			print_error("flags %#lx slot %lu: src %#lx, want %#lx\n", flags, i, m.src[i], want[i]);
		assert_int_equal(m.src[i], want[i]);
		selected += want[i] != 0;
	}
	assert_int_equal(m.a.cpages, selected);
	mig_end(&m);
}

/* Each row of the selection table for each of the 8 flag combinations. */
static void test_selection_table(void **state)
{
	struct hmmu_test_dev *devs[4] = {
		hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner_a), hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner_b),
		hmmu_test_dev(HMMU_MEMORY_DEVICE_COHERENT, 2, &owner_a), hmmu_test_dev(HMMU_MEMORY_DEVICE_COHERENT, 2, &owner_b),
	};
	struct sel_world w = { .mm = hmmu_test_mm() };
	unsigned long want[NR_SLOTS], shm_pfn;
	struct mig outer;

	sel_world_build(&w, devs);
	shm_pfn = hmmu_pte_pfn(pte_at(w.mm, w.shm + PAGE));
	/* S_MIGRATING: collected by a migration that stays open meanwhile. */
	assert_int_equal(mig_setup(&outer, w.mm, w.b + S_MIGRATING * PAGE, 1, SYS, &owner_a), 0);
	assert_int_equal(outer.src[0], hmmu_migrate_pfn(w.pfn[S_MIGRATING]) | M | W);
	for (unsigned long flags = 0; flags < 8; flags++) {
		unsigned long none = M, never = 0, shm_want[2] = { 0, flags & SYS ? hmmu_migrate_pfn(shm_pfn) | M | W : 0 };

		for (int s = 0; s < NR_SLOTS; s++)
			want[s] = sel_expected(&w, s, flags);
		sel_check(w.mm, w.b, NR_SLOTS, flags, want);
		sel_check(w.mm, w.notable, 1, flags, &none);	/* no page table at all */
		sel_check(w.mm, w.shm, 2, flags, shm_want);	/* not anonymous: no empty slots */
		sel_check(w.mm, w.shm_notable, 1, flags, &never);	/* nor without a table */
		for (int s = 0; s < NR_SLOTS; s++)
			if (s != S_MIGRATING)
				assert_int_equal(pte_at(w.mm, w.b + s * PAGE), w.pte[s]);
	}
	mig_end(&outer);
	assert_true(hmmu_pte_present(pte_at(w.mm, w.b + S_MIGRATING * PAGE)));
	for (int s = 0; s < NR_SLOTS; s++)
		if (s != S_ZERO && s != S_NONE)
			assert_int_equal(get_byte(w.mm, w.b + s * PAGE), 0xa0 + s);
}

/* ------------------------------------------------------------------ */
/* Round trips                                                         */
/* ------------------------------------------------------------------ */

enum { NRT = 64 };

/* System -> device-private -> system (driver-initiated both ways), and a CPU fault back. */
static void test_roundtrip_private(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, NRT, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x101;
	unsigned long a = hmmu_test_map(mm, NRT * PAGE, RW);
	unsigned char *data = malloc(NRT * PAGE);
	long free0;
	struct mig m;

	fill_random(mm, a, NRT, data, &rs);
	free0 = nr_free();
	assert_int_equal(mig_setup(&m, mm, a, NRT, SYS, &owner_a), 0);
	assert_int_equal(m.a.cpages, NRT);
	for (unsigned long i = 0; i < NRT; i++) {
		struct hmmu_page *p = hmmu_migrate_pfn_to_page(m.src[i]);

		assert_int_equal(m.src[i] & (V | M | W), V | M | W);
		assert_true(hmmu_page_locked(p));
		assert_int_equal(hmmu_page_ref_count(p), 1);	/* the migration's only */
		assert_int_equal(hmmu_page_mapcount(p), 0);
		assert_int_equal(swp_at(mm, a + i * PAGE).type, HMMU_SWP_MIGRATION_WRITE);
	}
	assert_int_equal(mig_fill(&m, dev), NRT);
	mig_pages(&m);
	for (unsigned long i = 0; i < NRT; i++)
		assert_int_equal(m.src[i] & (V | M), V | M);
	mig_end(&m);
	assert_int_equal(nr_free(), free0 + NRT);
	for (unsigned long i = 0; i < NRT; i++) {
		struct hmmu_swp_entry se = swp_at(mm, a + i * PAGE);
		struct hmmu_page *d = hmmu_pfn_to_page(se.pfn);

		assert_int_equal(se.type, HMMU_SWP_DEVICE_PRIVATE_WRITE);
		assert_ptr_equal(d->pgmap, &dev->pgmap);
		assert_false(hmmu_page_locked(d));
		assert_int_equal(hmmu_page_ref_count(d), 1);
		assert_int_equal(hmmu_page_mapcount(d), 1);
		assert_true(hmmu_page_test_flag(d, HMMU_PG_anon_exclusive));
		assert_memory_equal(page_bytes(d), data + i * PAGE, PAGE);
	}
	assert_int_equal(hmmu_pt_validate(mm), 0);
	/* Back to system memory, all but the last page, which a CPU read faults back. */
	migrate(mm, a, NRT - 1, DP, &owner_a, NULL);
	assert_int_equal(atomic_load(&dev->page_frees), NRT - 1);
	for (unsigned long i = 0; i < NRT - 1; i++) {
		hmmu_pte_t e = pte_at(mm, a + i * PAGE);

		assert_true(hmmu_pte_present(e) && hmmu_pte_write(e));
		assert_false(hmmu_is_zone_device_page(hmmu_pfn_to_page(hmmu_pte_pfn(e))));
	}
	check_bytes(mm, a, data, NRT * PAGE);
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	assert_int_equal(atomic_load(&dev->page_frees), NRT);
	assert_int_equal(nr_free(), free0);
	free(data);
}

/* System -> device-coherent (mapped by present entries, read in place) -> system. */
static void test_roundtrip_coherent(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_COHERENT, NRT, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x202;
	unsigned long a = hmmu_test_map(mm, NRT * PAGE, RW);
	unsigned char *data = malloc(NRT * PAGE);

	fill_random(mm, a, NRT, data, &rs);
	migrate(mm, a, NRT, SYS, &owner_a, dev);
	for (unsigned long i = 0; i < NRT; i++) {
		hmmu_pte_t e = pte_at(mm, a + i * PAGE);
		struct hmmu_page *c = hmmu_pfn_to_page(hmmu_pte_pfn(e));

		assert_true(hmmu_pte_present(e) && hmmu_pte_write(e) && hmmu_pte_dirty(e));
		assert_true(hmmu_is_device_coherent_page(c));
		assert_int_equal(hmmu_page_ref_count(c), 1);
		assert_int_equal(hmmu_page_mapcount(c), 1);
	}
	check_bytes(mm, a, data, NRT * PAGE);	/* the CPU reads coherent memory in place */
	assert_int_equal(atomic_load(&dev->migrate_calls), 0);
	/* SELECT_SYSTEM does not select coherent pages; another owner's selection neither. */
	migrate(mm, a, NRT, SYS | DP, &owner_a, NULL);
	migrate(mm, a, NRT, DC, &owner_b, NULL);
	assert_true(hmmu_is_device_coherent_page(page_at(mm, a)));
	migrate(mm, a, NRT, DC, &owner_a, NULL);
	assert_int_equal(atomic_load(&dev->page_frees), NRT);
	assert_false(hmmu_is_zone_device_page(page_at(mm, a)));
	check_bytes(mm, a, data, NRT * PAGE);
	free(data);
}

/* A read-only VMA: migration keeps the entries read-only on both trips. */
static void test_roundtrip_readonly(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x303;
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	unsigned char data[2 * PAGE];
	struct mig m;

	fill_random(mm, a, 2, data, &rs);
	assert_int_equal(hmmu_mprotect(mm, a, 2 * PAGE, PROT_READ), 0);
	assert_int_equal(mig_setup(&m, mm, a, 2, SYS, &owner_a), 0);
	assert_int_equal(m.src[0], hmmu_migrate_pfn(pfn_of(hmmu_migrate_pfn_to_page(m.src[0]))) | M);
	/* An exclusive anonymous page that was read-only: a read-exclusive entry. */
	assert_int_equal(swp_at(mm, a).type, HMMU_SWP_MIGRATION_READ_EXCLUSIVE);
	mig_fill(&m, dev);
	m.dst[0] |= W;			/* informational only: the core ignores it */
	mig_pages(&m);
	mig_end(&m);
	assert_int_equal(swp_at(mm, a).type, HMMU_SWP_DEVICE_PRIVATE_READ);
	assert_true(hmmu_page_test_flag(hmmu_pfn_to_page(swp_at(mm, a).pfn), HMMU_PG_anon_exclusive));
	check_bytes(mm, a, data, 2 * PAGE);	/* faults both back */
	assert_false(hmmu_pte_write(pte_at(mm, a)));
	assert_int_equal(atomic_load(&dev->migrate_calls), 2);
}

/* ------------------------------------------------------------------ */
/* Empty slots (spec 3.13) and notifications (spec 3.9)                */
/* ------------------------------------------------------------------ */

/* Fail unless event @i is @kind/@event from @id over [start, end) with @owner. */
static void expect_ev(int i, enum nr_kind kind, int id, enum hmmu_notifier_event event, unsigned long start,
		      unsigned long end, void *owner)
{
	struct nr_event e;

	nr_expect(i, kind, id, start, end);
	e = nr_get(i);
	if (kind != NR_INV_RANGE) {
		assert_int_equal(e.event, event);
		assert_ptr_equal(e.owner, owner);
	}
}

/*
 * A slot with no page table, a none PTE and the zero page are offered as
 * MIGRATE and filled by pages: one MIGRATE invalidation with the owner
 * from the first filled slot to the end (interval subscribers first), the
 * zero page's secondary-TLB hook under its PTE lock, then the end.
 * Finalize notifies nothing; a slot given no destination stays empty.
 */
static void test_populate_holes_and_zero(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 8, &owner_a);
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW), spfn;
	unsigned char zero[PAGE] = { 0 };
	struct nr_sub sub;
	struct nr_isub isub;
	struct mig m;

	assert_int_equal(get_byte(mm, a + PAGE), 0);		/* slot 1: the zero page */
	put_byte(mm, a + 3 * PAGE, 0x3c);			/* slot 3: a page; 0 and 2: none */
	spfn = hmmu_pte_pfn(pte_at(mm, a + 3 * PAGE));
	nr_sub_init(&sub, 1, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(&sub.n, mm), 0);
	nr_isub_insert(&isub, 2, mm, a, 4 * PAGE);
	nr_reset();
	assert_int_equal(mig_setup(&m, mm, a, 4, SYS, &owner_a), 0);
	assert_int_equal(m.src[0], M);
	assert_int_equal(m.src[1], M);
	assert_int_equal(m.src[2], M);
	assert_int_equal(m.src[3], hmmu_migrate_pfn(spfn) | V | M | W);
	assert_int_equal(m.a.cpages, 4);
	assert_true(hmmu_is_zero_pfn(hmmu_pte_pfn(pte_at(mm, a + PAGE))));	/* still mapped */
	nr_reset();
	nr_watch(mm, false);
	for (unsigned long i = 1; i < 4; i++)
		mig_dst(&m, i, dev);
	mig_pages(&m);
	expect_ev(0, NR_INTERVAL, 2, HMMU_NOTIFY_MIGRATE, a + PAGE, a + 4 * PAGE, &owner_a);
	expect_ev(1, NR_START, 1, HMMU_NOTIFY_MIGRATE, a + PAGE, a + 4 * PAGE, &owner_a);
	expect_ev(2, NR_INV_RANGE, 1, 0, a + PAGE, a + 2 * PAGE, NULL);
	assert_int_equal(nr_get(2).ptl, NR_PTL_PTE);
	expect_ev(3, NR_END, 1, HMMU_NOTIFY_MIGRATE, a + PAGE, a + 4 * PAGE, &owner_a);
	nr_expect_count(4);
	assert_int_equal(m.src[0], 0);
	assert_int_equal(m.src[1], M);
	assert_int_equal(m.src[2], M);
	assert_int_equal(m.src[3], hmmu_migrate_pfn(spfn) | V | M | W);
	mig_end(&m);
	nr_expect_count(4);
	assert_int_equal(pte_at(mm, a), 0);
	for (unsigned long i = 1; i < 4; i++) {
		struct hmmu_swp_entry se = swp_at(mm, a + i * PAGE);
		struct hmmu_page *d = hmmu_pfn_to_page(se.pfn);

		assert_int_equal(se.type, HMMU_SWP_DEVICE_PRIVATE_WRITE);
		assert_true(hmmu_page_is_anon(d) && hmmu_page_test_flag(d, HMMU_PG_anon_exclusive));
		assert_int_equal(hmmu_page_ref_count(d), 1);
		assert_int_equal(hmmu_page_mapcount(d), 1);
		assert_false(hmmu_page_locked(d));
	}
	check_bytes(mm, a + PAGE, zero, PAGE);
	assert_int_equal(get_byte(mm, a + 3 * PAGE), 0x3c);
	hmmu_interval_notifier_remove(&isub.in);
	hmmu_notifier_unregister(&sub.n, mm);
}

/* Filled slots of a read-only VMA: a read device-private entry, a read-only coherent mapping. */
static void test_populate_readonly(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *priv = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner_a);
	struct hmmu_test_dev *coh = hmmu_test_dev(HMMU_MEMORY_DEVICE_COHERENT, 2, &owner_a);
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, PROT_READ);
	struct hmmu_page *c;
	struct mig m;

	assert_int_equal(mig_setup(&m, mm, a, 2, 0, &owner_a), 0);	/* holes: any flags */
	mig_dst(&m, 0, priv);
	c = mig_dst(&m, 1, coh);
	m.dst[0] |= W;
	m.dst[1] |= W;			/* ignored: the VMA decides */
	mig_pages(&m);
	assert_int_equal(m.src[0], M);
	assert_int_equal(m.src[1], M);
	mig_end(&m);
	assert_int_equal(swp_at(mm, a).type, HMMU_SWP_DEVICE_PRIVATE_READ);
	assert_int_equal(pte_at(mm, a + PAGE), hmmu_pfn_pte(pfn_of(c), HMMU_PTE_YOUNG));
	assert_int_equal(get_byte(mm, a), 0);
	assert_int_equal(get_byte(mm, a + PAGE), 0);
}

/*
 * The notifications of one migration: collect is one MIGRATE start/end
 * with the owner over the range; after fork each of the child's mappings
 * gets a CLEAR start/end of its own (the reverse-map pass), the parent
 * no CLEAR; pages (no slots) and finalize notify nothing.  Both mms end
 * up with read device-private entries of one device page.
 */
static void test_notify_collect_and_fork(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *child;
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x404;
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	unsigned char data[2 * PAGE];
	struct nr_sub ps, cs;
	struct mig m;

	fill_random(mm, a, 2, data, &rs);
	child = hmmu_test_fork(mm);
	nr_sub_init(&ps, 1, &nr_full_ops);
	nr_sub_init(&cs, 2, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(&ps.n, mm), 0);
	assert_int_equal(hmmu_notifier_register(&cs.n, child), 0);
	nr_reset();
	assert_int_equal(mig_setup(&m, mm, a, 2, SYS, &owner_a), 0);
	expect_ev(0, NR_START, 1, HMMU_NOTIFY_MIGRATE, a, a + 2 * PAGE, &owner_a);
	expect_ev(1, NR_INV_RANGE, 1, 0, a, a + 2 * PAGE, NULL);
	expect_ev(2, NR_END, 1, HMMU_NOTIFY_MIGRATE, a, a + 2 * PAGE, &owner_a);
	for (int k = 0; k < 2; k++) {
		unsigned long p = a + k * PAGE;

		expect_ev(3 + 3 * k, NR_START, 2, HMMU_NOTIFY_CLEAR, p, p + PAGE, NULL);
		expect_ev(4 + 3 * k, NR_INV_RANGE, 2, 0, p, p + PAGE, NULL);
		expect_ev(5 + 3 * k, NR_END, 2, HMMU_NOTIFY_CLEAR, p, p + PAGE, NULL);
		assert_int_equal(m.src[k] & (V | M | W), V | M);	/* shared: read-only */
		assert_int_equal(swp_at(child, p).type, HMMU_SWP_MIGRATION_READ);
		assert_int_equal(swp_at(mm, p).type, HMMU_SWP_MIGRATION_READ);
	}
	nr_expect_count(9);
	mig_fill(&m, dev);
	mig_pages(&m);
	mig_end(&m);
	nr_expect_count(9);
	for (int k = 0; k < 2; k++) {
		struct hmmu_swp_entry pe = swp_at(mm, a + k * PAGE), ce = swp_at(child, a + k * PAGE);
		struct hmmu_page *d = hmmu_pfn_to_page(pe.pfn);

		assert_int_equal(pe.type, HMMU_SWP_DEVICE_PRIVATE_READ);
		assert_int_equal(ce.type, HMMU_SWP_DEVICE_PRIVATE_READ);
		assert_int_equal(ce.pfn, pe.pfn);
		assert_int_equal(hmmu_page_ref_count(d), 2);
		assert_int_equal(hmmu_page_mapcount(d), 2);
		assert_false(hmmu_page_test_flag(d, HMMU_PG_anon_exclusive));
	}
	hmmu_notifier_unregister(&cs.n, child);
	hmmu_notifier_unregister(&ps.n, mm);
	/* The child's fault brings the page back for both; a write then copies. */
	check_bytes(child, a, data, PAGE);
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	assert_int_equal(pte_at(mm, a), pte_at(child, a) & ~HMMU_PTE_YOUNG);
	assert_false(hmmu_pte_write(pte_at(mm, a)));
	put_byte(mm, a, (unsigned char)~data[0]);
	assert_int_equal(get_byte(child, a), data[0]);
	check_bytes(mm, a + PAGE, data + PAGE, PAGE);
	check_bytes(child, a + PAGE, data + PAGE, PAGE);
	hmmu_test_fork_done(child);
}

/* ------------------------------------------------------------------ */
/* Pages that cannot move                                              */
/* ------------------------------------------------------------------ */

/*
 * An extra reference (GUP) fails the pin check: the page is restored as it
 * was (writable, exclusive, same frame) and reported 0; the rest moves.
 */
static void test_extra_ref_restored(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x505;
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	unsigned char data[2 * PAGE];
	struct hmmu_page *ref;
	hmmu_pte_t before;
	struct mig m;

	fill_random(mm, a, 2, data, &rs);
	assert_int_equal(gup(mm, a, 1, 0, &ref), 1);
	before = pte_at(mm, a);
	assert_int_equal(mig_setup(&m, mm, a, 2, SYS, &owner_a), 0);
	assert_int_equal(m.src[0], 0);
	assert_int_equal(m.src[1] & (V | M), V | M);
	assert_int_equal(m.a.cpages, 1);
	assert_int_equal(pte_at(mm, a), before);
	assert_false(hmmu_page_locked(ref));
	assert_true(hmmu_page_test_flag(ref, HMMU_PG_anon_exclusive));
	assert_int_equal(hmmu_page_ref_count(ref), 2);
	assert_int_equal(hmmu_page_mapcount(ref), 1);
	assert_int_equal(mig_fill(&m, dev), 1);
	mig_pages(&m);
	mig_end(&m);
	assert_int_equal(swp_at(mm, a + PAGE).type, HMMU_SWP_DEVICE_PRIVATE_WRITE);
	assert_ptr_equal(page_at(mm, a), ref);
	hmmu_put_page(ref);
	check_bytes(mm, a, data, 2 * PAGE);
}

/* A DMA-pinned exclusive anonymous page cannot be shared: collect skips it (src 0, entry untouched). */
static void test_pinned_exclusive_skipped(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct hmmu_page *pinned;
	hmmu_pte_t before;
	struct mig m;

	put_byte(mm, a, 0x11);
	assert_int_equal(pin(mm, a, 1, HMMU_FOLL_WRITE, &pinned), 1);
	before = pte_at(mm, a);
	assert_int_equal(mig_setup(&m, mm, a, 1, SYS, &owner_a), 0);
	assert_int_equal(m.src[0], 0);
	assert_int_equal(m.a.cpages, 0);
	assert_int_equal(pte_at(mm, a), before);
	assert_false(hmmu_page_locked(pinned));
	mig_end(&m);
	assert_true(hmmu_page_test_flag(pinned, HMMU_PG_anon_exclusive));
	hmmu_unpin_user_page(pinned);
	assert_int_equal(get_byte(mm, a), 0x11);
}

/*
 * The same for a device-coherent page (short-term pins are allowed on it):
 * the pin check alone would let it through (6.1 counts one more reference
 * for device pages), so only collect's share check keeps it in place.
 */
static void test_pinned_coherent_skipped(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_COHERENT, 2, &owner_a);
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct hmmu_page *c, *pinned;
	struct mig m;

	put_byte(mm, a, 0x12);
	c = hmmu_test_dev_to_device(dev, mm, a);
	assert_int_equal(pin(mm, a, 1, HMMU_FOLL_WRITE, &pinned), 1);
	assert_ptr_equal(pinned, c);
	assert_int_equal(mig_setup(&m, mm, a, 1, DC, &owner_a), 0);
	assert_int_equal(m.src[0], 0);
	mig_fill(&m, NULL);
	mig_pages(&m);
	mig_end(&m);
	assert_ptr_equal(page_at(mm, a), c);
	hmmu_unpin_user_page(pinned);
	assert_int_equal(get_byte(mm, a), 0x12);
}

/*
 * A pinned page shared after fork: collect takes it (not exclusive), the
 * reverse map unmaps the child's mapping too, the pin check fails, and
 * restore puts both mappings back (the child's through the reverse map).
 */
static void test_pinned_shared_restored(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *child;
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct hmmu_page *pinned;
	hmmu_pte_t pbefore, cbefore;
	struct mig m;

	put_byte(mm, a, 0x22);
	child = hmmu_test_fork(mm);
	assert_int_equal(pin(mm, a, 1, 0, &pinned), 1);
	pbefore = pte_at(mm, a);
	cbefore = pte_at(child, a);
	assert_int_equal(mig_setup(&m, mm, a, 1, SYS, &owner_a), 0);
	assert_int_equal(m.src[0], 0);
	assert_int_equal(pte_at(mm, a), pbefore);
	assert_int_equal(pte_at(child, a), cbefore);
	assert_int_equal(hmmu_page_mapcount(pinned), 2);
	assert_false(hmmu_page_locked(pinned));
	mig_end(&m);
	hmmu_unpin_user_page(pinned);
	assert_int_equal(get_byte(child, a), 0x22);
	hmmu_test_fork_done(child);
}

/* Selected entries the driver gives no destination lose MIGRATE at pages and are restored. */
static void test_no_dst_restored(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 8, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x606;
	unsigned long a = hmmu_test_map(mm, 8 * PAGE, RW), pfn[8];
	unsigned char data[8 * PAGE];
	struct mig m;

	fill_random(mm, a, 8, data, &rs);
	assert_int_equal(mig_setup(&m, mm, a, 8, SYS, &owner_a), 0);
	for (unsigned long i = 0; i < 8; i++) {
		pfn[i] = hmmu_migrate_pfn_pfn(m.src[i]);
		if (!(i & 1))
			mig_dst(&m, i, dev);
	}
	mig_pages(&m);
	for (unsigned long i = 0; i < 8; i++)
		assert_int_equal(m.src[i], hmmu_migrate_pfn(pfn[i]) | W | (i & 1 ? 0 : M));
	mig_end(&m);
	for (unsigned long i = 0; i < 8; i++) {
		hmmu_pte_t e = pte_at(mm, a + i * PAGE);

		if (i & 1)
			assert_true(hmmu_pte_present(e) && hmmu_pte_write(e) && hmmu_pte_pfn(e) == pfn[i]);
		else
			assert_int_equal(swp_at(mm, a + i * PAGE).type, HMMU_SWP_DEVICE_PRIVATE_WRITE);
	}
	check_bytes(mm, a, data, 8 * PAGE);
}

/* A file (page-cache) page is selected but may not move to device memory (6.1): restored. */
static void test_file_page_stays(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner_a);
	long a = hmmu_mmap(mm, 0, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct hmmu_page *page;
	struct mig m;

	assert_true(a > 0);
	put_byte(mm, (unsigned long)a, 0x44);
	page = page_at(mm, (unsigned long)a);
	assert_int_equal(mig_setup(&m, mm, (unsigned long)a, 1, SYS, &owner_a), 0);
	assert_int_equal(m.src[0], hmmu_migrate_pfn(pfn_of(page)) | V | M | W);
	mig_fill(&m, dev);
	mig_pages(&m);
	assert_int_equal(m.src[0] & M, 0);
	mig_end(&m);
	assert_ptr_equal(page_at(mm, (unsigned long)a), page);
	assert_int_equal(atomic_load(&dev->page_frees), 1);
	assert_int_equal(get_byte(mm, (unsigned long)a), 0x44);
}

/* The reaper ran (MMF_UNSTABLE): empty slots are not filled; everything is released. */
static void test_dying_mm_insert_aborts(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	unsigned long a = hmmu_test_map(mm, 3 * PAGE, RW);
	struct mig m;

	put_byte(mm, a + 2 * PAGE, 9);
	assert_int_equal(mig_setup(&m, mm, a, 3, SYS, &owner_a), 0);
	assert_int_equal(mig_fill(&m, dev), 3);
	assert_int_equal(hmmu_mm_reap(mm), 0);		/* also zaps the migration entry */
	mig_pages(&m);
	assert_int_equal(m.src[0], 0);
	assert_int_equal(m.src[1], 0);
	mig_end(&m);
	assert_int_equal(pte_at(mm, a), 0);
	assert_int_equal(pte_at(mm, a + PAGE), 0);
	assert_int_equal(pte_at(mm, a + 2 * PAGE), 0);
	assert_int_equal(atomic_load(&dev->page_frees), 3);
}

/* A page a migration holds is not selectable by a second one; nor is a page whose lock is busy. */
static void test_busy_pages_not_selected(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct hmmu_page *p1;
	hmmu_pte_t e1;
	struct mig m1, m2;

	put_byte(mm, a, 1);
	put_byte(mm, a + PAGE, 2);
	p1 = page_at(mm, a + PAGE);
	e1 = pte_at(mm, a + PAGE);
	assert_int_equal(mig_setup(&m1, mm, a, 1, SYS, &owner_a), 0);
	assert_int_equal(m1.src[0] & M, M);
	hmmu_lock_page(p1);
	assert_int_equal(mig_setup(&m2, mm, a, 2, SYS | DP | DC, &owner_a), 0);
	assert_int_equal(m2.src[0], 0);		/* a migration entry */
	assert_int_equal(m2.src[1], 0);		/* trylock failed */
	assert_int_equal(m2.a.cpages, 0);
	assert_int_equal(pte_at(mm, a + PAGE), e1);
	mig_end(&m2);
	hmmu_unlock_page(p1);
	mig_end(&m1);
	assert_int_equal(get_byte(mm, a), 1);
	assert_int_equal(get_byte(mm, a + PAGE), 2);
}

/* ------------------------------------------------------------------ */
/* Races (spec 3.10)                                                   */
/* ------------------------------------------------------------------ */

enum { HOLE_ROUNDS = 100 };

/* Two devices populating the same slot: the shared state of a round. */
struct hole_race {
	struct hmmu_mm *mm;
	unsigned long addr;
	pthread_barrier_t start, collected, done;
	struct hmmu_test_dev *dev[2];
	struct hmmu_page *dpage[2];
	bool won[2];
	int rounds;
};

struct hole_racer {
	struct hole_race *r;
	int id;
};

/* One device's round: collect the slot, fill it, commit (both have collected first), finalize. */
static void hole_race_round(struct hole_race *r, int id)
{
	unsigned long src = 0, dst = 0;
	struct hmmu_migrate_vma m = {
		.start = r->addr, .end = r->addr + PAGE, .src = &src, .dst = &dst,
		.pgmap_owner = r->dev[id]->pgmap.owner, .flags = SYS,
	};

	hmmu_mmap_read_lock(r->mm);
	m.vma = hmmu_vma_lookup(r->mm, r->addr);
	hmmu_migrate_vma_setup(&m);
	r->dpage[id] = hmmu_test_dev_alloc(r->dev[id]);
	memset(hmmu_test_dev_mem(r->dev[id], r->dpage[id]), 0xd0 + id, PAGE);
	dst = hmmu_migrate_pfn(pfn_of(r->dpage[id]));
	r->won[id] = src == M;		/* a slot was collected */
	pthread_barrier_wait(&r->collected);
	hmmu_migrate_vma_pages(&m);
	r->won[id] = r->won[id] && src == M;
	hmmu_migrate_vma_finalize(&m);
	hmmu_mmap_read_unlock(r->mm);
}

static void *hole_racer_run(void *arg)
{
	struct hole_racer *me = arg;

	for (int i = 0; i < me->r->rounds; i++) {
		pthread_barrier_wait(&me->r->start);
		hole_race_round(me->r, me->id);
		pthread_barrier_wait(&me->r->done);
	}
	return NULL;
}

/* After a round: exactly one winner mapped; the loser's page already went back through page_free. */
static void hole_race_check(struct hole_race *r, int round)
{
	long frees = atomic_load(&r->dev[0]->page_frees) + atomic_load(&r->dev[1]->page_frees);
	int w = r->won[1];

	assert_int_equal(r->won[0] + r->won[1], 1);
	assert_int_equal(swp_at(r->mm, r->addr).pfn, pfn_of(r->dpage[w]));
	assert_int_equal(hmmu_page_ref_count(r->dpage[w]), 1);
	assert_int_equal(hmmu_page_ref_count(r->dpage[!w]), 0);
	assert_int_equal(frees, 2 * round + 1);
	assert_int_equal(hmmu_madvise(r->mm, r->addr, PAGE, MADV_DONTNEED), 0);
	assert_int_equal(atomic_load(&r->dev[w]->page_frees) + atomic_load(&r->dev[!w]->page_frees), 2 * round + 2);
}

/* Two devices fill the same empty slot, many rounds: one wins each round under the PTE lock. */
static void test_race_two_populate_same_hole(void **state)
{
	static struct hole_race r;
	struct hole_racer racers[2] = { { &r, 0 }, { &r, 1 } };
	pthread_t t[2];

	r = (struct hole_race){ .mm = hmmu_test_mm(), .rounds = HOLE_ROUNDS };
	r.dev[0] = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner_a);
	r.dev[1] = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner_b);
	r.addr = hmmu_test_map(r.mm, PAGE, RW);
	pthread_barrier_init(&r.start, NULL, 3);
	pthread_barrier_init(&r.collected, NULL, 2);
	pthread_barrier_init(&r.done, NULL, 3);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hole_racer_run, &racers[i]), 0);
	for (int round = 0; round < HOLE_ROUNDS; round++) {
		pthread_barrier_wait(&r.start);
		pthread_barrier_wait(&r.done);
		hole_race_check(&r, round);
	}
	for (int i = 0; i < 2; i++)
		assert_true(join_within(t[i], WAIT_LIMIT_MS));
	pthread_barrier_destroy(&r.start);
	pthread_barrier_destroy(&r.collected);
	pthread_barrier_destroy(&r.done);
}

/* A CPU fault fills a collected slot before pages: the fault wins, the device page is freed. */
static void test_race_cpu_fault_then_populate(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner_a);
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct mig m;

	assert_int_equal(mig_setup(&m, mm, a, 1, SYS, &owner_a), 0);
	assert_int_equal(m.src[0], M);
	mig_fill(&m, dev);
	put_byte(mm, a, 0x77);			/* the CPU faults the slot in meanwhile */
	mig_pages(&m);
	assert_int_equal(m.src[0], 0);
	mig_end(&m);
	assert_true(hmmu_pte_present(pte_at(mm, a)));
	assert_int_equal(get_byte(mm, a), 0x77);
	assert_int_equal(atomic_load(&dev->page_frees), 1);
}

struct access_job {
	struct hmmu_mm *mm;
	unsigned long addr;
	unsigned char buf[64];
	bool write;
	int ret;
	atomic_bool done;
};

static void *access_job_run(void *arg)
{
	struct access_job *j = arg;

	j->ret = hmmu_access(j->mm, j->addr, j->buf, sizeof(j->buf), j->write ? HMMU_ACCESS_WRITE : HMMU_ACCESS_READ);
	atomic_store(&j->done, true);
	return NULL;
}

/*
 * A CPU access to a collected page waits on its migration entry (taking
 * no reference: the pin check still passes) until finalize, then sees the
 * destination: a reader reads the new page's bytes, a writer's bytes land
 * in it.
 */
static void test_cpu_access_waits_for_finalize(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	unsigned long a = hmmu_test_map(mm, 2 * PAGE, RW);
	struct access_job rd = { .mm = mm, .addr = a + 64 }, wr = { .mm = mm, .addr = a + PAGE + 128, .write = true };
	struct hmmu_page *src0, *src1, *d0, *d1;
	pthread_t t[2];
	bool early;
	struct mig m;

	memset(wr.buf, 0x5a, sizeof(wr.buf));
	put_byte(mm, a + 64, 0x10);
	put_byte(mm, a + PAGE, 0x20);
	assert_int_equal(mig_setup(&m, mm, a, 2, SYS, &owner_a), 0);
	src0 = hmmu_migrate_pfn_to_page(m.src[0]);
	src1 = hmmu_migrate_pfn_to_page(m.src[1]);
	assert_int_equal(pthread_create(&t[0], NULL, access_job_run, &rd), 0);
	assert_int_equal(pthread_create(&t[1], NULL, access_job_run, &wr), 0);
	assert_true(wait_for_flag(src0, HMMU_PG_waiters));
	assert_true(wait_for_flag(src1, HMMU_PG_waiters));
	sleep_ms(10);
	early = atomic_load(&rd.done) || atomic_load(&wr.done);
	assert_int_equal(hmmu_page_ref_count(src0), 1);
	d0 = mig_dst(&m, 0, NULL);
	d1 = mig_dst(&m, 1, NULL);
	((unsigned char *)hmmu_page_address(d0))[64] = 0x11;	/* the device changed it meanwhile */
	mig_pages(&m);
	assert_int_equal(m.src[0] & M, M);
	mig_end(&m);
	assert_true(join_within(t[0], WAIT_LIMIT_MS));
	assert_true(join_within(t[1], WAIT_LIMIT_MS));
	assert_false(early);
	assert_int_equal(rd.ret, 0);
	assert_int_equal(wr.ret, 0);
	assert_int_equal(rd.buf[0], 0x11);
	assert_ptr_equal(page_at(mm, a), d0);
	assert_ptr_equal(page_at(mm, a + PAGE), d1);
	assert_int_equal(((unsigned char *)hmmu_page_address(d1))[128], 0x5a);
	assert_int_equal(get_byte(mm, a + PAGE), 0x20);
}

/* ------------------------------------------------------------------ */
/* The fault page (migrate_to_ram)                                     */
/* ------------------------------------------------------------------ */

struct window_seen {
	unsigned long start, n;
	bool fault_locked, others_unlocked;
	int fault_ref;
};

/*
 * A migrate_to_ram that brings back a window of pages around the fault,
 * as dmirror does, and looks at the fault page afterwards: still locked
 * (the fault path unlocks it), holding only the fault's reference; the
 * other pages of the window unlocked by finalize.
 */
static hmmu_vm_fault_t window_migrate(struct hmmu_test_dev *dev, struct hmmu_vm_fault *vmf)
{
	struct window_seen *w = dev->hook_data;
	unsigned long src[8] = { 0 }, dst[8] = { 0 };
	struct hmmu_migrate_vma m = {
		.vma = vmf->vma, .start = w->start, .end = w->start + w->n * PAGE, .src = src, .dst = dst,
		.pgmap_owner = dev->pgmap.owner, .flags = DP, .fault_page = vmf->page,
	};
	struct hmmu_page *pages[8] = { NULL };

	if (hmmu_migrate_vma_setup(&m))
		return HMMU_VM_FAULT_SIGBUS;
	for (unsigned long i = 0; i < w->n; i++) {
		struct hmmu_page *d = hmmu_migrate_pfn_to_page(src[i]), *s;

		if (!d || !(src[i] & M))
			continue;
		pages[i] = d;
		s = hmmu_alloc_page_vma(vmf->vma, m.start + i * PAGE);
		hmmu_lock_page(s);
		memcpy(hmmu_page_address(s), page_bytes(d), PAGE);
		dst[i] = hmmu_migrate_pfn(pfn_of(s)) | (src[i] & W);
	}
	hmmu_migrate_vma_pages(&m);
	hmmu_migrate_vma_finalize(&m);
	w->fault_locked = hmmu_page_locked(vmf->page);
	w->fault_ref = hmmu_page_ref_count(vmf->page);
	w->others_unlocked = true;
	for (unsigned long i = 0; i < w->n; i++)
		if (pages[i] && pages[i] != vmf->page)
			w->others_unlocked &= !hmmu_page_locked(pages[i]);
	return 0;
}

/* migrate_to_ram migrates a window with fault_page set: the fault path's lock and reference are respected. */
static void test_fault_page_window(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x707;
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW);
	struct window_seen w = { .start = a, .n = 4 };
	unsigned char data[4 * PAGE];

	fill_random(mm, a, 4, data, &rs);
	migrate(mm, a, 4, SYS, &owner_a, dev);
	dev->migrate_hook = window_migrate;
	dev->hook_data = &w;
	check_bytes(mm, a + 2 * PAGE, data + 2 * PAGE, PAGE);
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	assert_true(w.fault_locked);
	assert_int_equal(w.fault_ref, 1);	/* the fault's; the entry's and ours are gone */
	assert_true(w.others_unlocked);
	assert_int_equal(atomic_load(&dev->page_frees), 4);
	check_bytes(mm, a, data, 4 * PAGE);
	assert_int_equal(atomic_load(&dev->migrate_calls), 1);
	dev->migrate_hook = NULL;
}

/*
 * Linux 6.1's pin check allows a device page one reference more than it
 * expects; pages() then checks the exact count and refuses to move it, so
 * it is restored at finalize.
 */
static void test_device_page_extra_ref(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner_a);
	unsigned long a = hmmu_test_map(mm, PAGE, RW);
	struct hmmu_page *d;
	struct mig m;

	put_byte(mm, a, 0x66);
	d = hmmu_test_dev_to_device(dev, mm, a);
	hmmu_get_page(d);
	assert_int_equal(mig_setup(&m, mm, a, 1, DP, &owner_a), 0);
	assert_int_equal(m.src[0], hmmu_migrate_pfn(pfn_of(d)) | M | W);
	mig_fill(&m, NULL);
	mig_pages(&m);
	assert_int_equal(m.src[0] & M, 0);
	mig_end(&m);
	assert_int_equal(swp_at(mm, a).pfn, pfn_of(d));
	assert_int_equal(swp_at(mm, a).type, HMMU_SWP_DEVICE_PRIVATE_WRITE);
	hmmu_put_page(d);
	assert_int_equal(get_byte(mm, a), 0x66);
}

/* ------------------------------------------------------------------ */
/* Eviction by device frame (spec 3.11)                                */
/* ------------------------------------------------------------------ */

/* System pages holding a copy of each evicted frame, as dst[]. */
static void evict_fill(const unsigned long *src, unsigned long *dst, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		struct hmmu_page *d = hmmu_migrate_pfn_to_page(src[i]), *s;

		dst[i] = 0;
		if (!d || !(src[i] & M))
			continue;
		s = hmmu_alloc_page(0);
		assert_non_null(s);
		hmmu_lock_page(s);
		memcpy(hmmu_page_address(s), page_bytes(d), PAGE);
		dst[i] = hmmu_migrate_pfn(pfn_of(s));
	}
}

/*
 * Evicting device pages mapped in two mms (after fork): each mapping gets
 * a CLEAR invalidation (no MIGRATE), a busy page and a free frame are
 * reported 0, and both mms end up mapping the system copies read-only.
 */
static void test_evict_two_mms(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *child;
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x808;
	unsigned long a = hmmu_test_map(mm, 3 * PAGE, RW), src[4], dst[4];
	unsigned char data[3 * PAGE];
	struct hmmu_page *busy;
	struct nr_sub ps, cs;

	fill_random(mm, a, 3, data, &rs);
	migrate(mm, a, 3, SYS, &owner_a, dev);
	for (int k = 0; k < 3; k++)
		assert_int_equal(swp_at(mm, a + k * PAGE).pfn, dev->first_pfn + k);
	child = hmmu_test_fork(mm);
	nr_sub_init(&ps, 1, &nr_full_ops);
	nr_sub_init(&cs, 2, &nr_full_ops);
	assert_int_equal(hmmu_notifier_register(&ps.n, mm), 0);
	assert_int_equal(hmmu_notifier_register(&cs.n, child), 0);
	busy = hmmu_pfn_to_page(dev->first_pfn + 1);
	hmmu_lock_page(busy);
	nr_reset();
	assert_int_equal(hmmu_migrate_device_range(src, dev->first_pfn, 4), 0);
	hmmu_unlock_page(busy);
	assert_int_equal(src[0], hmmu_migrate_pfn(dev->first_pfn) | M);
	assert_int_equal(src[1], 0);
	assert_int_equal(src[2], hmmu_migrate_pfn(dev->first_pfn + 2) | M);
	assert_int_equal(src[3], 0);
	assert_int_equal(nr_count_of(NR_START, 1), 2);
	assert_int_equal(nr_count_of(NR_START, 2), 2);
	for (int i = 0; i < nr_count(); i++)
		assert_true(nr_get(i).kind == NR_INV_RANGE || nr_get(i).event == HMMU_NOTIFY_CLEAR);
	assert_int_equal(swp_at(child, a).type, HMMU_SWP_MIGRATION_READ);
	assert_int_equal(swp_at(mm, a + 2 * PAGE).type, HMMU_SWP_MIGRATION_READ);
	evict_fill(src, dst, 4);
	assert_int_equal(hmmu_migrate_device_pages(src, dst, 4), 0);
	assert_int_equal(src[0] & M, M);
	nr_reset();
	assert_int_equal(hmmu_migrate_device_finalize(src, dst, 4), 0);
	nr_expect_count(0);
	hmmu_notifier_unregister(&cs.n, child);
	hmmu_notifier_unregister(&ps.n, mm);
	assert_int_equal(atomic_load(&dev->page_frees), 2);
	for (int k = 0; k < 3; k += 2) {
		struct hmmu_page *s = hmmu_migrate_pfn_to_page(dst[k]);

		assert_ptr_equal(page_at(mm, a + k * PAGE), s);
		assert_ptr_equal(page_at(child, a + k * PAGE), s);
		assert_false(hmmu_pte_write(pte_at(mm, a + k * PAGE)));
		assert_int_equal(hmmu_page_mapcount(s), 2);
		assert_int_equal(hmmu_page_ref_count(s), 2);
		assert_false(hmmu_page_locked(s));
	}
	assert_int_equal(swp_at(child, a + PAGE).type, HMMU_SWP_DEVICE_PRIVATE_READ);
	check_bytes(mm, a, data, 3 * PAGE);
	check_bytes(child, a, data, 3 * PAGE);
	hmmu_test_fork_done(child);
}

/* Migration entries that mremap moves between eviction and finalize are found at their new place. */
static void test_evict_across_mremap(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0x909;
	unsigned long a = hmmu_test_map(mm, 4 * PAGE, RW), c = hmmu_test_map(mm, 4 * PAGE, RW), src[4], dst[4];
	unsigned char data[4 * PAGE], x;

	fill_random(mm, a, 4, data, &rs);
	migrate(mm, a, 4, SYS, &owner_a, dev);
	assert_int_equal(hmmu_migrate_device_range(src, dev->first_pfn, 4), 0);
	for (int k = 0; k < 4; k++)
		assert_int_equal(src[k], hmmu_migrate_pfn(dev->first_pfn + k) | M);
	assert_int_equal(hmmu_mremap(mm, a, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, c), (long)c);
	for (int k = 0; k < 4; k++)
		assert_int_equal(swp_at(mm, c + k * PAGE).type, HMMU_SWP_MIGRATION_WRITE);
	evict_fill(src, dst, 4);
	assert_int_equal(hmmu_migrate_device_pages(src, dst, 4), 0);
	assert_int_equal(hmmu_migrate_device_finalize(src, dst, 4), 0);
	for (int k = 0; k < 4; k++) {
		hmmu_pte_t e = pte_at(mm, c + k * PAGE);

		assert_true(hmmu_pte_present(e) && hmmu_pte_write(e));
		assert_int_equal(hmmu_pte_pfn(e), hmmu_migrate_pfn_pfn(dst[k]));
	}
	check_bytes(mm, c, data, 4 * PAGE);
	assert_int_equal(hmmu_access(mm, a, &x, 1, HMMU_ACCESS_READ), -EFAULT);
	assert_int_equal(atomic_load(&dev->page_frees), 4);
}

static void test_device_range_einval(void **state)
{
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 2, &owner_a);
	struct hmmu_page *sys = hmmu_alloc_page(0);
	unsigned long src[4];

	assert_int_equal(hmmu_migrate_device_range(NULL, dev->first_pfn, 1), -EINVAL);
	assert_int_equal(hmmu_migrate_device_range(src, pfn_of(sys), 1), -EINVAL);
	assert_int_equal(hmmu_migrate_device_range(src, dev->first_pfn + 1, 2), -EINVAL);
	assert_int_equal(hmmu_migrate_device_range(src, dev->first_pfn, 2), 0);	/* free frames */
	assert_int_equal(src[0] | src[1], 0);
	assert_int_equal(hmmu_migrate_device_pages(NULL, src, 1), -EINVAL);
	assert_int_equal(hmmu_migrate_device_finalize(src, NULL, 1), -EINVAL);
	hmmu_put_page(sys);
}

/* A thread allocating a page of a test device (hmmu_zone_device_page_init inside). */
struct init_job {
	struct hmmu_test_dev *dev;
	struct hmmu_page *page;
	atomic_bool done;
};

static void *init_job_run(void *arg)
{
	struct init_job *j = arg;

	j->page = hmmu_test_dev_alloc(j->dev);
	atomic_store(&j->done, true);
	return NULL;
}

/*
 * A device page being set up is never visible as in use before it is
 * locked (hmmu_zone_device_page_init locks, then publishes refcount 1), so
 * an eviction's get_page_unless_zero + trylock cannot take it in between.
 * Init is stopped at its lock step by holding the free frame's lock: the
 * frame must still look free (refcount 0, skipped by migrate_device_range);
 * init completes once the lock is released, the page referenced and locked.
 */
static void test_device_range_skips_page_in_init(void **state)
{
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 1, &owner_a);
	struct hmmu_page *page = hmmu_pfn_to_page(dev->first_pfn);
	struct init_job job = { .dev = dev };
	unsigned long src[1] = { ~0UL };
	bool waiting, early;
	int ref;
	pthread_t t;

	assert_false(hmmu_page_test_flag(page, HMMU_PG_waiters));
	hmmu_lock_page(page);
	assert_int_equal(pthread_create(&t, NULL, init_job_run, &job), 0);
	waiting = wait_for_flag(page, HMMU_PG_waiters);
	ref = hmmu_page_ref_count(page);
	assert_int_equal(hmmu_migrate_device_range(src, dev->first_pfn, 1), 0);
	early = atomic_load(&job.done);
	hmmu_unlock_page(page);
	assert_true(join_within(t, WAIT_LIMIT_MS));
	assert_true(waiting);
	assert_false(early);
	assert_int_equal(ref, 0);
	assert_int_equal(src[0], 0);
	assert_ptr_equal(job.page, page);
	assert_true(hmmu_page_locked(page));
	assert_int_equal(hmmu_page_ref_count(page), 1);
	hmmu_unlock_page(page);
	hmmu_put_page(page);
	assert_int_equal(atomic_load(&dev->page_frees), 1);
}

/* The allocator of test_race_evict_vs_init: allocates and frees frame 0 in a loop. */
struct init_race {
	struct hmmu_test_dev *dev;
	atomic_bool in_init;	/* inside hmmu_zone_device_page_init */
	atomic_bool stop;
	atomic_long rounds, caught, bad;
};

/* Is frame 0 of @dev free (page_free ran)? */
static bool dev_frame0_free(struct hmmu_test_dev *dev)
{
	bool in_use;

	pthread_mutex_lock(&dev->lock);
	in_use = dev->in_use[0];
	pthread_mutex_unlock(&dev->lock);
	return !in_use;
}

static void *init_race_alloc(void *arg)
{
	struct init_race *r = arg;

	while (!atomic_load(&r->stop)) {
		struct hmmu_page *page;

		while (!dev_frame0_free(r->dev))
			;	/* the evictor holds the last reference */
		atomic_store(&r->in_init, true);
		page = hmmu_test_dev_alloc(r->dev);
		atomic_store(&r->in_init, false);
		if (!page) {
			atomic_fetch_add(&r->bad, 1);
			break;
		}
		hmmu_unlock_page(page);
		hmmu_put_page(page);
		atomic_fetch_add(&r->rounds, 1);
	}
	return NULL;
}

/*
 * The race behind an intermittent hang of dmirror's close/RELEASE: an
 * eviction (migrate_device_range) against an allocator initialising the
 * same frame.  The eviction may take the page only once init has returned
 * (it then unlocks a page it referenced: harmless); never while init runs,
 * as it did when init published refcount 1 before locking.
 */
static void test_race_evict_vs_init(void **state)
{
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 1, &owner_a);
	struct init_race r = { .dev = dev };
	unsigned long src[1], dst[1];
	struct timespec t0, now;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, init_race_alloc, &r), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0;; i++) {
		assert_int_equal(hmmu_migrate_device_range(src, dev->first_pfn, 1), 0);
		if (src[0]) {
			atomic_fetch_add(&r.caught, 1);
			if (atomic_load(&r.in_init))
				atomic_fetch_add(&r.bad, 1);
			dst[0] = 0;
			assert_int_equal(hmmu_migrate_device_pages(src, dst, 1), 0);
			assert_int_equal(hmmu_migrate_device_finalize(src, dst, 1), 0);
		}
		if (i % 1024)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > 300)
			break;
	}
	atomic_store(&r.stop, true);
	assert_true(join_within(t, WAIT_LIMIT_MS));
	print_message("%ld allocations, %ld pages taken by the eviction\n", atomic_load(&r.rounds),
		      atomic_load(&r.caught));
	assert_int_equal(atomic_load(&r.bad), 0);
	assert_true(dev_frame0_free(dev));
}

/* ------------------------------------------------------------------ */
/* Long-term pins (spec 4.2) and huge pages                            */
/* ------------------------------------------------------------------ */

/* A long-term pin moves a coherent page to system memory first; a short-term one does not. */
static void test_longterm_pin_coherent(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm();
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_COHERENT, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0xa0a;
	unsigned long a = hmmu_test_map(mm, 3 * PAGE, RW);
	unsigned char data[3 * PAGE];
	struct hmmu_page *p, *c;

	fill_random(mm, a, 3, data, &rs);
	migrate(mm, a, 3, SYS, &owner_a, dev);
	c = page_at(mm, a);
	assert_int_equal(pin(mm, a, 1, HMMU_FOLL_WRITE, &p), 1);
	assert_ptr_equal(p, c);					/* short-term: in place */
	hmmu_unpin_user_page(p);
	assert_int_equal(pin(mm, a, 1, HMMU_FOLL_WRITE | HMMU_FOLL_LONGTERM, &p), 1);
	assert_false(hmmu_is_zone_device_page(p));
	assert_ptr_equal(page_at(mm, a), p);
	assert_memory_equal(hmmu_page_address(p), data, PAGE);
	assert_true(hmmu_pte_write(pte_at(mm, a)));
	assert_int_equal(atomic_load(&dev->page_frees), 1);
	hmmu_unpin_user_page(p);
	/* A busy coherent page cannot move now: -EBUSY, nothing pinned. */
	c = page_at(mm, a + PAGE);
	hmmu_lock_page(c);
	assert_int_equal(pin(mm, a + PAGE, 1, HMMU_FOLL_LONGTERM, &p), -EBUSY);
	hmmu_unlock_page(c);
	assert_ptr_equal(page_at(mm, a + PAGE), c);
	assert_int_equal(hmmu_page_ref_count(c), 1);
	assert_int_equal(gup(mm, a + PAGE, 1, HMMU_FOLL_LONGTERM, &p), 1);
	assert_false(hmmu_is_zone_device_page(p));
	hmmu_put_page(p);
	check_bytes(mm, a, data, 3 * PAGE);
	assert_int_equal(atomic_load(&dev->page_frees), 2);
}

/*
 * A PMD-mapped huge page is split into base pages by collect and the
 * selected ones migrate; a huge page shared after fork is not split and
 * not migrated.
 */
static void test_thp_split(void **state)
{
	struct hmmu_mm *mm = hmmu_test_mm(), *child;
	struct hmmu_test_dev *dev = hmmu_test_dev(HMMU_MEMORY_DEVICE_PRIVATE, 4, &owner_a);
	uint64_t rs = hmmu_test_seed() ^ 0xb0b;
	unsigned long a = hmmu_test_map(mm, 6 * HMMU_PMD_SIZE, RW), b, c;
	unsigned char data[4 * PAGE];
	bool huge;
	struct mig m;

	assert_int_equal(hmmu_madvise(mm, a, 6 * HMMU_PMD_SIZE, MADV_HUGEPAGE), 0);
	b = HMMU_ALIGN_UP(a, HMMU_PMD_SIZE);
	c = b + 2 * HMMU_PMD_SIZE;
	fill_random(mm, b, 4, data, &rs);
	put_byte(mm, b + 300 * PAGE, 0xe3);
	put_byte(mm, c, 0xe4);
	hmmu_test_leaf(mm, b, &huge);
	assert_true(huge);
	migrate(mm, b + PAGE, 2, SYS, &owner_a, dev);
	assert_int_equal(swp_at(mm, b + PAGE).type, HMMU_SWP_DEVICE_PRIVATE_WRITE);
	assert_int_equal(swp_at(mm, b + 2 * PAGE).type, HMMU_SWP_DEVICE_PRIVATE_WRITE);
	hmmu_test_leaf(mm, b, &huge);
	assert_false(huge);
	assert_int_equal(hmmu_compound_order(page_at(mm, b)), 0);
	assert_int_equal(hmmu_compound_order(page_at(mm, b + 300 * PAGE)), 0);
	assert_int_equal(hmmu_page_ref_count(page_at(mm, b + 300 * PAGE)), 1);
	check_bytes(mm, b, data, 4 * PAGE);
	assert_int_equal(get_byte(mm, b + 300 * PAGE), 0xe3);
	child = hmmu_test_fork(mm);
	assert_int_equal(mig_setup(&m, mm, c, 1, SYS, &owner_a), 0);
	assert_int_equal(m.src[0], 0);
	mig_end(&m);
	hmmu_test_leaf(mm, c, &huge);
	assert_true(huge);
	assert_int_equal(get_byte(child, c), 0xe4);
	hmmu_test_fork_done(child);
}

/* ------------------------------------------------------------------ */
/* (more tests above this line)                                        */
/* ------------------------------------------------------------------ */

int main(void)
{
	const struct CMUnitTest tests[] = {
		MTEST(test_setup_einval),
		MTEST(test_setup_rounding),
		MTEST(test_finalize_twice),
		MTEST(test_selection_table),
		MTEST(test_roundtrip_private),
		MTEST(test_roundtrip_coherent),
		MTEST(test_roundtrip_readonly),
		MTEST(test_populate_holes_and_zero),
		MTEST(test_populate_readonly),
		MTEST(test_notify_collect_and_fork),
		MTEST(test_extra_ref_restored),
		MTEST(test_pinned_exclusive_skipped),
		MTEST(test_pinned_coherent_skipped),
		MTEST(test_pinned_shared_restored),
		MTEST(test_no_dst_restored),
		MTEST(test_file_page_stays),
		MTEST(test_dying_mm_insert_aborts),
		MTEST(test_busy_pages_not_selected),
		MTEST(test_race_two_populate_same_hole),
		MTEST(test_race_cpu_fault_then_populate),
		MTEST(test_cpu_access_waits_for_finalize),
		MTEST(test_fault_page_window),
		MTEST(test_device_page_extra_ref),
		MTEST(test_evict_two_mms),
		MTEST(test_evict_across_mremap),
		MTEST(test_device_range_einval),
		MTEST(test_device_range_skips_page_in_init),
		MTEST(test_race_evict_vs_init),
		MTEST(test_longterm_pin_coherent),
		MTEST(test_thp_split),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
