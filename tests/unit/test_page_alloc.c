// SPDX-License-Identifier: MIT
/*
 * Unit tests: memory nodes, the buddy allocator, page references, the page
 * lock and hashed wait queues.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define NR_ORDERS (HMMU_MAX_ORDER + 1)

static struct hmmu_node *ram(void)
{
	return hmmu_node_get(0);
}

/* Copy node @nid's per-order free block counts. */
static void free_profile(int nid, unsigned long out[NR_ORDERS])
{
	struct hmmu_node *n = hmmu_node_get(nid);

	assert_non_null(n);
	pthread_mutex_lock(&n->lock);
	memcpy(out, n->nr_free_blocks, sizeof(n->nr_free_blocks));
	pthread_mutex_unlock(&n->lock);
}

/* Join @t, failing (rather than hanging) if it has not finished in 60 s. */
static void join_or_fail(pthread_t t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 60;
	assert_int_equal(pthread_timedjoin_np(t, NULL, &ts), 0);
}

static void test_init_twice_busy(void **state)
{
	struct hmmu_config cfg = { .ram_size = 8UL << 20 };

	assert_int_equal(hmmu_init(NULL), -EBUSY);
	assert_int_equal(hmmu_init(&cfg), -EBUSY);
	assert_non_null(hmmu_zero_page());
	assert_true(hmmu_is_zero_pfn(hmmu_page_to_pfn(hmmu_zero_page())));
}

/*
 * Hold one block of every order below the largest that has a free block, so
 * that the next order-0 allocation must split an order-9 block.
 */
static int drain_small_orders(struct hmmu_page **held, unsigned int *orders)
{
	unsigned long prof[NR_ORDERS];
	int nr = 0;

	for (unsigned int o = 0; o < HMMU_MAX_ORDER; o++) {
		free_profile(0, prof);
		while (prof[o]) {
			assert_true(nr < 64);
			held[nr] = hmmu_alloc_pages(0, o);
			assert_non_null(held[nr]);
			orders[nr++] = o;
			free_profile(0, prof);
		}
	}
	return nr;
}

static void test_split_merge(void **state)
{
	unsigned long before[NR_ORDERS], drained[NR_ORDERS], split[NR_ORDERS], after[NR_ORDERS];
	struct hmmu_page *held[64], *page;
	unsigned int orders[64];
	long nr_free = hmmu_node_nr_free_pages(0);
	int nr;

	free_profile(0, before);
	nr = drain_small_orders(held, orders);
	free_profile(0, drained);
	for (int o = 0; o < HMMU_MAX_ORDER; o++)
		assert_int_equal(drained[o], 0);
	assert_true(drained[HMMU_MAX_ORDER] > 0);

	page = hmmu_alloc_page(0);
	assert_non_null(page);
	/* The kept half is always the lower one: the order-9 block's first frame. */
	assert_int_equal(hmmu_page_to_pfn(page) % (1UL << HMMU_MAX_ORDER), 0);
	free_profile(0, split);
	for (int o = 0; o < HMMU_MAX_ORDER; o++)
		assert_int_equal(split[o], 1);
	assert_int_equal(split[HMMU_MAX_ORDER], drained[HMMU_MAX_ORDER] - 1);
	assert_int_equal(hmmu_page_alloc_validate(), 0);

	hmmu_put_page(page);
	free_profile(0, after);
	assert_memory_equal(after, drained, sizeof(after));
	for (int i = nr - 1; i >= 0; i--)
		hmmu_free_pages(held[i], orders[i]);
	free_profile(0, after);
	assert_memory_equal(after, before, sizeof(after));
	assert_int_equal(hmmu_node_nr_free_pages(0), nr_free);
}

static void test_contiguity(void **state)
{
	for (unsigned int order = 0; order <= HMMU_MAX_ORDER; order++) {
		unsigned long nr = 1UL << order;
		struct hmmu_page *page = hmmu_alloc_pages(0, order);
		unsigned long pfn;
		char *addr;

		assert_non_null(page);
		pfn = hmmu_page_to_pfn(page);
		addr = hmmu_page_address(page);
		assert_non_null(addr);
		assert_int_equal(pfn & (nr - 1), 0);
		assert_int_equal((uintptr_t)addr & ((nr << HMMU_PAGE_SHIFT) - 1), 0);
		for (unsigned long i = 0; i < nr; i++) {
			assert_int_equal(hmmu_page_to_pfn(page + i), pfn + i);
			assert_ptr_equal(hmmu_pfn_to_page(pfn + i), page + i);
			assert_ptr_equal(hmmu_page_address(page + i), addr + (i << HMMU_PAGE_SHIFT));
		}
		/* The whole run is one writable byte range. */
		memset(addr, (int)order + 1, nr << HMMU_PAGE_SHIFT);
		assert_int_equal(addr[(nr << HMMU_PAGE_SHIFT) - 1], order + 1);
		hmmu_free_pages(page, order);
	}
}

static uint64_t pattern(unsigned long i, unsigned long w)
{
	return (i * 0x9e3779b97f4a7c15ULL) ^ (w << 32) ^ 0x5a5a5a5aULL;
}

static void test_exhaustion(void **state)
{
	const unsigned long words = HMMU_PAGE_SIZE / sizeof(uint64_t);
	long nr_free = hmmu_node_nr_free_pages(0);
	struct hmmu_page **pages = calloc((size_t)nr_free + 1, sizeof(*pages));
	long count = 0;

	assert_non_null(pages);
	while ((pages[count] = hmmu_alloc_page(0)) != NULL) {
		assert_true(count < nr_free);
		count++;
	}
	assert_int_equal(count, nr_free);
	assert_int_equal(hmmu_node_nr_free_pages(0), 0);
	assert_null(hmmu_alloc_pages(0, 1));
	assert_int_equal(hmmu_page_alloc_validate(), 0);
	for (long i = 0; i < count; i++) {
		uint64_t *p = hmmu_page_address(pages[i]);

		for (unsigned long w = 0; w < words; w++)
			p[w] = pattern((unsigned long)i, w);
	}
	for (long i = 0; i < count; i++) {
		uint64_t *p = hmmu_page_address(pages[i]);

		for (unsigned long w = 0; w < words; w++)
			if (p[w] != pattern((unsigned long)i, w))
				fail_msg("page %ld word %lu overwritten", i, w);
	}
	for (long i = 0; i < count; i++)
		hmmu_put_page(pages[i]);
	free(pages);
	assert_int_equal(hmmu_node_nr_free_pages(0), nr_free);
}

struct held_block {
	struct hmmu_page *page;
	unsigned int order;
	bool comp;
	uint64_t tag;
};

static void held_alloc(struct held_block *h, uint64_t *rng)
{
	uint64_t r = hmmu_test_rand(rng);
	/* Mostly small orders, occasionally up to the largest. */
	unsigned int order = (r & 3) ? (unsigned int)(r >> 8) % 4 : (unsigned int)(r >> 8) % NR_ORDERS;
	uint64_t *first, *last;

	h->comp = (r >> 16) & 1;
	h->page = hmmu_alloc_pages(h->comp ? HMMU_GFP_COMP : 0, order);
	if (!h->page)
		return;
	h->order = order;
	h->tag = hmmu_test_rand(rng);
	assert_int_equal(hmmu_page_to_pfn(h->page) & ((1UL << order) - 1), 0);
	assert_int_equal(hmmu_page_ref_count(h->page), 1);
	assert_int_equal(hmmu_compound_order(h->page), h->comp ? order : 0);
	first = hmmu_page_address(h->page);
	last = (uint64_t *)((char *)first + (HMMU_PAGE_SIZE << order)) - 1;
	*first = h->tag;
	*last = ~h->tag;
}

static void held_free(struct held_block *h)
{
	uint64_t *first = hmmu_page_address(h->page);
	uint64_t *last = (uint64_t *)((char *)first + (HMMU_PAGE_SIZE << h->order)) - 1;

	assert_true(*first == h->tag && *last == ~h->tag);
	if (h->comp)
		hmmu_put_page(h->page + (1UL << h->order) - 1);	/* through the last tail */
	else
		hmmu_free_pages(h->page, h->order);
	h->page = NULL;
}

static void test_random_mixed(void **state)
{
	enum { SLOTS = 512, STEPS = 40000, CHECK_EVERY = 500 };
	struct held_block *held = calloc(SLOTS, sizeof(*held));
	long nr_free = hmmu_node_nr_free_pages(0), in_use = 0;
	uint64_t rng = hmmu_test_seed();

	assert_non_null(held);
	for (int step = 0; step < STEPS; step++) {
		struct held_block *h = &held[hmmu_test_rand(&rng) % SLOTS];

		if (h->page) {
			in_use -= 1L << h->order;
			held_free(h);
		} else {
			held_alloc(h, &rng);
			if (h->page)
				in_use += 1L << h->order;
		}
		assert_int_equal(hmmu_node_nr_free_pages(0), nr_free - in_use);
		if (step % CHECK_EVERY == 0)
			assert_int_equal(hmmu_page_alloc_validate(), 0);
	}
	for (int i = 0; i < SLOTS; i++)
		if (held[i].page)
			held_free(&held[i]);
	free(held);
}

static void check_compound_meta(struct hmmu_page *head, unsigned int order)
{
	assert_true(hmmu_page_test_flag(head, HMMU_PG_head));
	assert_null(head->compound_head);
	assert_int_equal(head->compound_order, order);
	for (unsigned long i = 1; i < (1UL << order); i++) {
		assert_ptr_equal(head[i].compound_head, head);
		assert_ptr_equal(hmmu_compound_head(&head[i]), head);
		assert_false(hmmu_page_test_flag(&head[i], HMMU_PG_head));
		assert_int_equal(hmmu_compound_order(&head[i]), order);
		assert_int_equal(atomic_load(&head[i]._refcount), 0);
	}
}

static void test_compound(void **state)
{
	long nr_free = hmmu_node_nr_free_pages(0);
	struct hmmu_page *head = hmmu_alloc_pages(HMMU_GFP_COMP, 3);
	struct hmmu_page *tail;

	assert_non_null(head);
	check_compound_meta(head, 3);
	tail = &head[5];
	assert_int_equal(hmmu_page_ref_count(tail), 1);
	hmmu_get_page(tail);
	assert_int_equal(atomic_load(&head->_refcount), 2);
	assert_int_equal(atomic_load(&tail->_refcount), 0);
	assert_true(hmmu_get_page_unless_zero(&head[7]));
	assert_int_equal(hmmu_page_ref_count(head), 3);
	/* Mapcounts: the frame's own plus the whole page's PMD mappings. */
	atomic_store(&tail->_mapcount, 2);
	atomic_store(&head->_entire_mapcount, 1);
	assert_int_equal(hmmu_page_mapcount(tail), 3);
	assert_int_equal(hmmu_page_mapcount(&head[1]), 1);
	atomic_store(&tail->_mapcount, 0);
	atomic_store(&head->_entire_mapcount, 0);
	assert_false(hmmu_page_maybe_dma_pinned(tail));
	atomic_store(&head->_pincount, 1);
	assert_true(hmmu_page_maybe_dma_pinned(tail));
	atomic_store(&head->_pincount, 0);
	hmmu_put_page(tail);
	hmmu_put_page(&head[1]);
	assert_int_equal(hmmu_node_nr_free_pages(0), nr_free - 8);
	hmmu_put_page(head);
	assert_int_equal(hmmu_node_nr_free_pages(0), nr_free);
	assert_int_equal(hmmu_page_ref_count(head), 0);
	assert_false(hmmu_get_page_unless_zero(tail));
	assert_null(tail->compound_head);
	assert_false(hmmu_page_test_flag(head, HMMU_PG_head));
}

static void test_compound_pmd_and_order0(void **state)
{
	struct hmmu_page *huge = hmmu_alloc_pages(HMMU_GFP_COMP | HMMU_GFP_ZERO, HMMU_PMD_ORDER);
	struct hmmu_page *base = hmmu_alloc_pages(HMMU_GFP_COMP, 0);

	assert_non_null(huge);
	check_compound_meta(huge, HMMU_PMD_ORDER);
	assert_int_equal(hmmu_page_to_pfn(huge) % (1UL << HMMU_PMD_ORDER), 0);
	assert_int_equal((uintptr_t)hmmu_page_address(huge) % HMMU_PMD_SIZE, 0);
	/* COMP means nothing for a single frame. */
	assert_non_null(base);
	assert_false(hmmu_page_test_flag(base, HMMU_PG_head));
	assert_int_equal(hmmu_compound_order(base), 0);
	hmmu_put_page(base);
	hmmu_put_page(&huge[511]);
}

static void test_plain_block(void **state)
{
	long nr_free = hmmu_node_nr_free_pages(0);
	struct hmmu_page *page = hmmu_alloc_pages(0, 3);

	assert_non_null(page);
	assert_int_equal(atomic_load(&page->flags), 0);
	assert_int_equal(hmmu_compound_order(page), 0);
	for (int i = 1; i < 8; i++) {
		assert_null(page[i].compound_head);
		assert_int_equal(atomic_load(&page[i]._refcount), 0);
	}
	hmmu_get_page(page);
	assert_int_equal(hmmu_page_ref_count(page), 2);
	hmmu_free_pages(page, 3);
	assert_int_equal(hmmu_node_nr_free_pages(0), nr_free - 8);
	hmmu_free_pages(page, 3);
	assert_int_equal(hmmu_node_nr_free_pages(0), nr_free);
}

static void test_new_page_state(void **state)
{
	struct hmmu_page *page = hmmu_alloc_page(0);

	assert_non_null(page);
	assert_int_equal(atomic_load(&page->flags), 0);
	assert_int_equal(hmmu_page_ref_count(page), 1);
	assert_int_equal(hmmu_page_mapcount(page), 0);
	assert_null(page->mapping);
	assert_null(page->pgmap);
	assert_null(page->compound_head);
	assert_false(hmmu_page_is_anon(page));
	page->mapping = (void *)(0x1000UL | HMMU_PAGE_MAPPING_ANON);
	assert_true(hmmu_page_is_anon(page));
	page->index = 77;
	hmmu_page_set_flag(page, HMMU_PG_dirty);
	hmmu_put_page(page);
	/* The free cleared what the owner left behind. */
	assert_null(page->mapping);
	assert_int_equal(page->index, 0);
	assert_false(hmmu_page_test_flag(page, HMMU_PG_dirty));
}

static bool all_bytes(const unsigned char *p, size_t len, unsigned char v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void test_gfp_zero(void **state)
{
	for (unsigned int order = 0; order <= 2; order++) {
		size_t len = HMMU_PAGE_SIZE << order;
		struct hmmu_page *page = hmmu_alloc_pages(0, order);
		unsigned long pfn;

		assert_non_null(page);
		pfn = hmmu_page_to_pfn(page);
		memset(hmmu_page_address(page), 0xab, len);
		hmmu_free_pages(page, order);
		/* The allocator is LIFO: the same dirtied block comes back. */
		page = hmmu_alloc_pages(HMMU_GFP_ZERO, order);
		assert_non_null(page);
		assert_int_equal(hmmu_page_to_pfn(page), pfn);
		assert_true(all_bytes(hmmu_page_address(page), len, 0));
		memset(hmmu_page_address(page), 0xcd, len);
		hmmu_free_pages(page, order);
		/* And without HMMU_GFP_ZERO the contents are left alone. */
		page = hmmu_alloc_pages(0, order);
		assert_int_equal(hmmu_page_to_pfn(page), pfn);
		assert_true(all_bytes(hmmu_page_address(page), len, 0xcd));
		hmmu_free_pages(page, order);
	}
}

static void test_pfn_roundtrip(void **state)
{
	struct hmmu_node *n = ram();
	unsigned long start = n->start_pfn, end = start + n->nr_pages;
	uint64_t rng = hmmu_test_seed() ^ 0x1234;

	assert_int_equal(start, HMMU_FIRST_PFN);
	assert_int_equal(n->nid, 0);
	assert_int_equal(hmmu_node_nr_pages(0), (long)n->nr_pages);
	assert_int_equal((uintptr_t)n->base % HMMU_PMD_SIZE, 0);
	for (int i = 0; i < 1000; i++) {
		unsigned long pfn = i == 0 ? start : i == 1 ? end - 1 :
				    start + hmmu_test_rand(&rng) % n->nr_pages;
		struct hmmu_page *page = hmmu_pfn_to_page(pfn);

		assert_ptr_equal(page, &n->pages[pfn - start]);
		assert_int_equal(hmmu_page_to_pfn(page), pfn);
		assert_ptr_equal(hmmu_pfn_node(pfn), n);
		assert_ptr_equal(hmmu_page_node(page), n);
		assert_ptr_equal(hmmu_page_address(page),
				 (char *)n->base + ((pfn - start) << HMMU_PAGE_SHIFT));
	}
	assert_null(hmmu_pfn_to_page(0));
	assert_null(hmmu_pfn_to_page(start - 1));
	assert_null(hmmu_pfn_to_page(end));
	assert_null(hmmu_pfn_to_page(~0UL));
	assert_null(hmmu_pfn_node(end));
	assert_int_equal(hmmu_page_to_pfn(NULL), ~0UL);
	assert_null(hmmu_page_address(NULL));
}

static void test_invalid_args(void **state)
{
	long nr_free = hmmu_node_nr_free_pages(0);
	struct hmmu_page *page;

	assert_null(hmmu_alloc_pages(0, HMMU_MAX_ORDER + 1));
	assert_null(hmmu_alloc_pages_node(63, 0, 0));
	assert_null(hmmu_alloc_pages_node(-1, 0, 0));
	assert_null(hmmu_alloc_pages_node(HMMU_MAX_NODES, 0, 0));
	assert_null(hmmu_alloc_pages(0x80u, 0));
	assert_int_equal(hmmu_node_nr_free_pages(63), -EINVAL);
	assert_int_equal(hmmu_node_nr_free_pages(-1), -EINVAL);
	assert_int_equal(hmmu_node_nr_pages(-1), -EINVAL);
	assert_int_equal(hmmu_node_nr_pages(HMMU_MAX_NODES), -EINVAL);
	assert_null(hmmu_node_get(-1));
	assert_null(hmmu_node_get(HMMU_MAX_NODES));
	assert_int_equal(hmmu_node_create_ram(0), -EINVAL);
	assert_int_equal(hmmu_node_create_device(0, NULL), -EINVAL);
	assert_int_equal(hmmu_node_destroy(-1), -EINVAL);
	assert_int_equal(hmmu_node_destroy(63), -EINVAL);
	assert_int_equal(hmmu_node_destroy(0), -EBUSY);	/* the zero page */
	/* NULL pages are ignored, not dereferenced. */
	hmmu_get_page(NULL);
	hmmu_put_page(NULL);
	hmmu_free_pages(NULL, 0);
	hmmu_lock_page(NULL);
	hmmu_unlock_page(NULL);
	hmmu_wait_on_page_locked(NULL);
	assert_false(hmmu_get_page_unless_zero(NULL));
	assert_false(hmmu_trylock_page(NULL));
	assert_false(hmmu_page_locked(NULL));
	assert_int_equal(hmmu_page_ref_count(NULL), 0);
	/* A bad order is ignored: nothing is freed. */
	page = hmmu_alloc_page(0);
	assert_non_null(page);
	hmmu_free_pages(page, HMMU_MAX_ORDER + 1);
	assert_int_equal(hmmu_page_ref_count(page), 1);
	hmmu_free_pages(page, 0);
	assert_int_equal(hmmu_node_nr_free_pages(0), nr_free);
}

static void test_zero_page(void **state)
{
	struct hmmu_page *zero = hmmu_zero_page();
	int refs = hmmu_page_ref_count(zero);

	assert_true(hmmu_page_test_flag(zero, HMMU_PG_reserved));
	assert_true(refs >= 1);
	assert_true(all_bytes(hmmu_page_address(zero), HMMU_PAGE_SIZE, 0));
	hmmu_get_page(zero);
	hmmu_put_page(zero);
	assert_int_equal(hmmu_page_ref_count(zero), refs);
}

static void test_device_node(void **state)
{
	struct hmmu_node *n0 = ram(), *dev;
	int nid = hmmu_node_create_device(1000, NULL);

	assert_true(nid > 0);
	dev = hmmu_node_get(nid);
	assert_non_null(dev);
	assert_false(dev->has_allocator);
	assert_int_equal(hmmu_node_nr_pages(nid), 1000);
	assert_int_equal(hmmu_node_nr_free_pages(nid), -EINVAL);
	assert_null(hmmu_alloc_pages_node(nid, 0, 0));
	assert_int_equal(dev->start_pfn % 512, 0);
	assert_true(dev->start_pfn >= n0->start_pfn + n0->nr_pages);
	for (unsigned long i = 0; i < 1000; i++) {
		struct hmmu_page *page = hmmu_pfn_to_page(dev->start_pfn + i);

		assert_ptr_equal(page, &dev->pages[i]);
		assert_int_equal(hmmu_page_ref_count(page), 0);
		assert_int_equal(hmmu_page_to_pfn(page), dev->start_pfn + i);
		assert_ptr_equal(hmmu_page_node(page), dev);
		assert_null(hmmu_page_address(page));
	}
	assert_null(hmmu_pfn_to_page(dev->start_pfn + 1000));
	atomic_store(&dev->pages[999]._refcount, 1);
	assert_int_equal(hmmu_node_destroy(nid), -EBUSY);
	atomic_store(&dev->pages[999]._refcount, 0);
	assert_int_equal(hmmu_node_destroy(nid), 0);
	assert_null(hmmu_node_get(nid));
	assert_int_equal(hmmu_node_nr_pages(nid), -EINVAL);
}

static void test_device_node_with_base(void **state)
{
	char *buf = aligned_alloc(HMMU_PAGE_SIZE, 8 * HMMU_PAGE_SIZE);
	int a = hmmu_node_create_device(8, buf);
	int b = hmmu_node_create_device(3, NULL);
	struct hmmu_node *na, *nb;

	assert_non_null(buf);
	assert_true(a > 0 && b > 0 && a != b);
	na = hmmu_node_get(a);
	nb = hmmu_node_get(b);
	for (int i = 0; i < 8; i++)
		assert_ptr_equal(hmmu_page_address(&na->pages[i]), buf + i * HMMU_PAGE_SIZE);
	/* Distinct, aligned frame ranges. */
	assert_int_equal(nb->start_pfn % 512, 0);
	assert_true(nb->start_pfn >= na->start_pfn + 8 || na->start_pfn >= nb->start_pfn + 3);
	assert_ptr_equal(hmmu_pfn_node(nb->start_pfn + 2), nb);
	assert_int_equal(hmmu_node_destroy(a), 0);
	assert_int_equal(hmmu_node_destroy(b), 0);
	assert_int_equal(hmmu_node_destroy(a), -EINVAL);
	free(buf);
}

static void test_second_ram_node(void **state)
{
	/* 100 frames: blocks of order 6, 5 and 2. */
	int nid = hmmu_node_create_ram(100);
	unsigned long prof[NR_ORDERS];
	struct hmmu_page *p, *q;

	assert_true(nid > 0);
	assert_int_equal(hmmu_node_nr_free_pages(nid), 100);
	free_profile(nid, prof);
	assert_int_equal(prof[6], 1);
	assert_int_equal(prof[5], 1);
	assert_int_equal(prof[2], 1);
	assert_int_equal(prof[0] + prof[1] + prof[3] + prof[4] + prof[7] + prof[8] + prof[9], 0);
	assert_null(hmmu_alloc_pages_node(nid, 0, 7));
	p = hmmu_alloc_pages_node(nid, HMMU_GFP_ZERO, 6);
	q = hmmu_alloc_pages_node(nid, 0, 0);
	assert_non_null(p);
	assert_non_null(q);
	assert_ptr_equal(hmmu_page_node(p), hmmu_node_get(nid));
	assert_true(all_bytes(hmmu_page_address(p), 64 * HMMU_PAGE_SIZE, 0));
	assert_int_equal(hmmu_node_nr_free_pages(nid), 35);
	assert_int_equal(hmmu_page_alloc_validate(), 0);
	assert_int_equal(hmmu_node_destroy(nid), -EBUSY);
	hmmu_free_pages(p, 6);
	hmmu_put_page(q);
	assert_int_equal(hmmu_node_nr_free_pages(nid), 100);
	assert_int_equal(hmmu_page_alloc_validate(), 0);
	assert_int_equal(hmmu_node_destroy(nid), 0);
}

static void test_validate_detects_corruption(void **state)
{
	struct hmmu_page *page = hmmu_alloc_page(0);
	struct hmmu_node *n = ram();

	assert_non_null(page);
	/* An allocated frame that claims to be a free block head. */
	hmmu_page_set_flag(page, HMMU_PG_buddy);
	assert_int_equal(hmmu_page_alloc_validate(), -EUCLEAN);
	hmmu_page_clear_flag(page, HMMU_PG_buddy);
	/* A free count that disagrees with the lists. */
	pthread_mutex_lock(&n->lock);
	atomic_fetch_add(&n->nr_free, 1);
	pthread_mutex_unlock(&n->lock);
	assert_int_equal(hmmu_page_alloc_validate(), -EUCLEAN);
	pthread_mutex_lock(&n->lock);
	atomic_fetch_sub(&n->nr_free, 1);
	pthread_mutex_unlock(&n->lock);
	assert_int_equal(hmmu_page_alloc_validate(), 0);
	hmmu_put_page(page);
}

static void test_trylock(void **state)
{
	struct hmmu_page *head = hmmu_alloc_pages(HMMU_GFP_COMP, 2);

	assert_non_null(head);
	assert_false(hmmu_page_locked(head));
	assert_true(hmmu_trylock_page(head));
	assert_true(hmmu_page_locked(head));
	assert_false(hmmu_trylock_page(head));
	/* A tail frame shares its head's lock. */
	assert_false(hmmu_trylock_page(&head[3]));
	assert_true(hmmu_page_locked(&head[1]));
	hmmu_unlock_page(head);
	assert_false(hmmu_page_locked(head));
	hmmu_lock_page(&head[2]);
	assert_true(hmmu_page_test_flag(head, HMMU_PG_locked));
	hmmu_unlock_page(&head[2]);
	assert_true(hmmu_trylock_page(head));
	hmmu_unlock_page(head);
	/* Waiting on an unlocked page returns at once. */
	hmmu_wait_on_page_locked(head);
	hmmu_put_page(head);
}

struct lock_waiter {
	struct hmmu_page *page;
	atomic_int acquired;
	int data_seen;
	int data;		/* written by main while holding the lock */
};

static void *lock_waiter_fn(void *arg)
{
	struct lock_waiter *w = arg;

	hmmu_lock_page(w->page);
	w->data_seen = w->data;
	atomic_store(&w->acquired, 1);
	hmmu_unlock_page(w->page);
	return NULL;
}

/*
 * Spin until the waiter announced itself with @w->page's waiters bit (it is
 * then in, or entering, its sleep loop), or finished: that would be a bug,
 * since main holds the page lock throughout.
 */
static void wait_for_waiters_bit(struct lock_waiter *w)
{
	while (!hmmu_page_test_flag(w->page, HMMU_PG_waiters) && !atomic_load(&w->acquired))
		sched_yield();
	assert_int_equal(atomic_load(&w->acquired), 0);
}

static void test_lock_wakes_sleeper(void **state)
{
	struct lock_waiter w = { .page = hmmu_alloc_page(0) };
	pthread_t t;

	assert_non_null(w.page);
	hmmu_lock_page(w.page);
	assert_int_equal(pthread_create(&t, NULL, lock_waiter_fn, &w), 0);
	wait_for_waiters_bit(&w);
	w.data = 42;
	hmmu_unlock_page(w.page);
	join_or_fail(t);
	assert_int_equal(atomic_load(&w.acquired), 1);
	assert_int_equal(w.data_seen, 42);
	assert_false(hmmu_page_locked(w.page));
	hmmu_put_page(w.page);
}

static void *wait_unlocked_fn(void *arg)
{
	struct lock_waiter *w = arg;

	hmmu_wait_on_page_locked(w->page);
	w->data_seen = w->data;
	atomic_store(&w->acquired, 1);
	return NULL;
}

static void test_wait_on_page_locked(void **state)
{
	struct lock_waiter w = { .page = hmmu_alloc_page(0) };
	pthread_t t;

	assert_non_null(w.page);
	hmmu_lock_page(w.page);
	assert_int_equal(pthread_create(&t, NULL, wait_unlocked_fn, &w), 0);
	wait_for_waiters_bit(&w);
	w.data = 7;
	hmmu_unlock_page(w.page);
	join_or_fail(t);
	assert_int_equal(w.data_seen, 7);
	/* It waited without taking the lock. */
	assert_false(hmmu_page_locked(w.page));
	hmmu_put_page(w.page);
}

enum { LOCK_THREADS = 4, LOCK_ITERS = 100000 };

struct counter_arg {
	struct hmmu_page *page;
	unsigned long *counter;	/* plain: the page lock is its only protection */
	bool use_trylock;
};

static void *counter_fn(void *arg)
{
	struct counter_arg *a = arg;

	for (int i = 0; i < LOCK_ITERS; i++) {
		if (a->use_trylock) {
			while (!hmmu_trylock_page(a->page))
				sched_yield();
		} else {
			hmmu_lock_page(a->page);
		}
		(*a->counter)++;
		hmmu_unlock_page(a->page);
	}
	return NULL;
}

static void test_lock_counter(void **state)
{
	struct hmmu_page *head = hmmu_alloc_pages(HMMU_GFP_COMP, 1);
	struct counter_arg args[LOCK_THREADS];
	pthread_t t[LOCK_THREADS];
	unsigned long counter = 0;

	assert_non_null(head);
	for (int i = 0; i < LOCK_THREADS; i++) {
		/* Half lock the tail, half the head: one lock.  One thread only try-locks. */
		args[i] = (struct counter_arg){ .page = &head[i & 1], .counter = &counter,
						.use_trylock = i == LOCK_THREADS - 1 };
		assert_int_equal(pthread_create(&t[i], NULL, counter_fn, &args[i]), 0);
	}
	for (int i = 0; i < LOCK_THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(counter, (unsigned long)LOCK_THREADS * LOCK_ITERS);
	assert_false(hmmu_page_locked(head));
	hmmu_put_page(head);
}

struct alloc_thread_arg {
	uint64_t seed;
	int fails;
};

/* Allocate, tag, verify and free from several threads at once. */
static void *alloc_thread_fn(void *arg)
{
	struct alloc_thread_arg *a = arg;
	struct hmmu_page *held[64] = { NULL };
	uint64_t rng = a->seed;

	for (int step = 0; step < 20000; step++) {
		int s = (int)(hmmu_test_rand(&rng) % 64);

		if (held[s]) {
			if (*(uint64_t *)hmmu_page_address(held[s]) != (uintptr_t)&held[s])
				a->fails++;
			hmmu_put_page(held[s]);
			held[s] = NULL;
		} else if ((held[s] = hmmu_alloc_page(0)) != NULL) {
			*(uint64_t *)hmmu_page_address(held[s]) = (uintptr_t)&held[s];
		}
	}
	for (int s = 0; s < 64; s++)
		hmmu_put_page(held[s]);
	return NULL;
}

static void test_concurrent_alloc(void **state)
{
	struct alloc_thread_arg args[4];
	pthread_t t[4];

	for (int i = 0; i < 4; i++) {
		args[i] = (struct alloc_thread_arg){ .seed = hmmu_test_seed() + (uint64_t)i * 7919 };
		assert_int_equal(pthread_create(&t[i], NULL, alloc_thread_fn, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(args[i].fails, 0);
	}
}

static void test_wait_buckets(void **state)
{
	struct hmmu_page *page = hmmu_alloc_page(0);
	struct hmmu_wait_bucket *b = hmmu_wait_bucket_of(page);

	assert_non_null(b);
	assert_ptr_equal(hmmu_wait_bucket_of(page), b);
	assert_int_equal((uintptr_t)b % 64, 0);
	/* Waking an idle bucket is harmless; NULL is ignored. */
	hmmu_wake_bucket(b);
	hmmu_wake_bucket(NULL);
	hmmu_put_page(page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HMMU_TEST(test_init_twice_busy),
		HMMU_TEST(test_split_merge),
		HMMU_TEST(test_contiguity),
		HMMU_TEST(test_exhaustion),
		HMMU_TEST(test_random_mixed),
		HMMU_TEST(test_compound),
		HMMU_TEST(test_compound_pmd_and_order0),
		HMMU_TEST(test_plain_block),
		HMMU_TEST(test_new_page_state),
		HMMU_TEST(test_gfp_zero),
		HMMU_TEST(test_pfn_roundtrip),
		HMMU_TEST(test_invalid_args),
		HMMU_TEST(test_zero_page),
		HMMU_TEST(test_device_node),
		HMMU_TEST(test_device_node_with_base),
		HMMU_TEST(test_second_ram_node),
		HMMU_TEST(test_validate_detects_corruption),
		HMMU_TEST(test_trylock),
		HMMU_TEST(test_lock_wakes_sleeper),
		HMMU_TEST(test_wait_on_page_locked),
		HMMU_TEST(test_lock_counter),
		HMMU_TEST(test_concurrent_alloc),
		HMMU_TEST(test_wait_buckets),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}
