// SPDX-License-Identifier: MIT
/*
 * Unit tests of src/lib/rbtree.c and src/lib/interval_tree.c, checked
 * against brute-force models: randomized insert/erase sequences, in-order
 * traversal both ways, augmented values recomputed at every node, interval
 * queries compared with a linear scan, and the pruning of queries.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ====================================================================== */
/* Plain augmented tree: ordered by key, augmented with max(val) below    */
/* and the subtree's size (size also catches a wrong update order).        */
/* ====================================================================== */

struct tnode {
	struct hmmu_rb_node rb;
	unsigned long key, val;
	unsigned long subtree_max;	/* max val in this subtree */
	unsigned long size;		/* nodes in this subtree */
	unsigned long seen;		/* traversal stamp */
	bool live;
};

static unsigned long update_calls;
static unsigned long visit_epoch;

static struct tnode *tnode_of(const struct hmmu_rb_node *rb)
{
	return rb ? hmmu_container_of(rb, struct tnode, rb) : NULL;
}

static unsigned long tnode_max(const struct hmmu_rb_node *rb)
{
	return rb ? tnode_of(rb)->subtree_max : 0;
}

static unsigned long tnode_size(const struct hmmu_rb_node *rb)
{
	return rb ? tnode_of(rb)->size : 0;
}

/* The augmentation callback under test: counts its calls. */
static bool tnode_update(struct hmmu_rb_node *rb)
{
	struct tnode *n = tnode_of(rb);
	unsigned long max = HMMU_MAX(n->val, HMMU_MAX(tnode_max(rb->left), tnode_max(rb->right)));
	unsigned long size = 1 + tnode_size(rb->left) + tnode_size(rb->right);

	update_calls++;
	if (n->subtree_max == max && n->size == size)
		return false;
	n->subtree_max = max;
	n->size = size;
	return true;
}

static void tnode_insert(struct hmmu_rb_root *root, struct tnode *n, hmmu_rb_update_fn *update)
{
	struct hmmu_rb_node **link = &root->node, *parent = NULL;

	while (*link) {
		parent = *link;
		link = n->key < tnode_of(parent)->key ? &parent->left : &parent->right;
	}
	n->subtree_max = 0xdeadbeef;	/* garbage: insert must recompute them */
	n->size = 1;
	hmmu_rb_link(&n->rb, parent, link);
	hmmu_rb_insert(root, &n->rb, update);
	n->live = true;
}

static void tnode_erase(struct hmmu_rb_root *root, struct tnode *n, hmmu_rb_update_fn *update)
{
	hmmu_rb_erase(root, &n->rb, update);
	n->live = false;
}

/* Recompute max(val) and size under @rb from scratch; compare at every node. */
static unsigned long check_augment(const struct hmmu_rb_node *rb, unsigned long *size)
{
	unsigned long max, lsize, rsize;

	*size = 0;
	if (!rb)
		return 0;
	max = tnode_of(rb)->val;
	max = HMMU_MAX(max, check_augment(rb->left, &lsize));
	max = HMMU_MAX(max, check_augment(rb->right, &rsize));
	*size = 1 + lsize + rsize;
	assert_int_equal(tnode_of(rb)->subtree_max, max);
	assert_int_equal(tnode_of(rb)->size, *size);
	return max;
}

static long count_live(const struct tnode *pool, long n)
{
	long live = 0;

	for (long i = 0; i < n; i++)
		live += pool[i].live;
	return live;
}

/*
 * first/next visits every live node once, in key order; last/prev visits
 * the same nodes in reverse.  Returns the number visited.
 */
static long check_inorder(const struct hmmu_rb_root *root, struct tnode **order, long max)
{
	struct hmmu_rb_node *rb;
	long count = 0, back;

	visit_epoch++;
	for (rb = hmmu_rb_first(root); rb; rb = hmmu_rb_next(rb)) {
		struct tnode *n = tnode_of(rb);

		assert_true(count < max);
		assert_true(n->live);
		assert_true(n->seen != visit_epoch);
		n->seen = visit_epoch;
		if (count)
			assert_true(order[count - 1]->key <= n->key);
		order[count++] = n;
	}
	back = count;
	for (rb = hmmu_rb_last(root); rb; rb = hmmu_rb_prev(rb))
		assert_ptr_equal(tnode_of(rb), order[--back]);
	assert_int_equal(back, 0);
	return count;
}

/* Full check of the tree against the pool's live flags. */
static void check_tree(const struct hmmu_rb_root *root, struct tnode *pool, long n, bool augmented)
{
	struct tnode **order = calloc(n + 1, sizeof(*order));
	long live = count_live(pool, n);
	unsigned long size;

	assert_non_null(order);
	assert_int_equal(hmmu_rb_validate(root), live);
	assert_int_equal(check_inorder(root, order, n + 1), live);
	if (augmented) {
		check_augment(root->node, &size);
		assert_int_equal(size, live);
	}
	free(order);
}

/* Update calls one insert or erase may make: height (<= 2 log2(n+1)) plus rotations. */
static unsigned long update_budget(long live)
{
	unsigned long log2 = 0;

	while ((1UL << log2) < (unsigned long)live + 2)
		log2++;
	return 2 * log2 + 8;
}

/* One random operation: insert a dead slot, or erase / re-value a live one. */
static void random_op(struct hmmu_rb_root *root, struct tnode *pool, long npool, long *live,
		      uint64_t *rng, hmmu_rb_update_fn *update)
{
	struct tnode *n = &pool[hmmu_test_rand(rng) % npool];
	unsigned long before = update_calls;

	if (!n->live) {
		n->key = hmmu_test_rand(rng) % 4096;	/* many duplicate keys */
		n->val = hmmu_test_rand(rng) % 1000000;
		tnode_insert(root, n, update);
		(*live)++;
	} else if (update && hmmu_test_rand(rng) % 10 == 0) {
		n->val = hmmu_test_rand(rng) % 1000000;
		hmmu_rb_update_path(&n->rb, update);
	} else {
		tnode_erase(root, n, update);
		(*live)--;
	}
	if (update)
		assert_true(update_calls - before <= update_budget(*live + 1));
}

/* 20000 random operations over ~3000 live nodes, fully checked every 100. */
static void run_random_ops(hmmu_rb_update_fn *update, uint64_t salt)
{
	const long npool = 6000;
	struct tnode *pool = calloc(npool, sizeof(*pool));
	struct hmmu_rb_root root = { NULL };
	uint64_t rng = hmmu_test_seed() ^ salt;
	long live = 0;

	assert_non_null(pool);
	for (int op = 1; op <= 20000; op++) {
		random_op(&root, pool, npool, &live, &rng, update);
		if (op % 100 == 0)
			check_tree(&root, pool, npool, update != NULL);
	}
	assert_true(live > 1000);
	free(pool);
}

static void test_rb_random_augmented(void **state)
{
	run_random_ops(tnode_update, 0x1111);
}

static void test_rb_random_plain(void **state)
{
	run_random_ops(NULL, 0x2222);
}

static void test_rb_empty(void **state)
{
	struct hmmu_rb_root root = { NULL };

	assert_null(hmmu_rb_first(&root));
	assert_null(hmmu_rb_last(&root));
	assert_int_equal(hmmu_rb_validate(&root), 0);
}

static void test_rb_single(void **state)
{
	struct hmmu_rb_root root = { NULL };
	struct tnode n = { .key = 7, .val = 42 };

	tnode_insert(&root, &n, tnode_update);
	assert_int_equal(hmmu_rb_validate(&root), 1);
	assert_ptr_equal(hmmu_rb_first(&root), &n.rb);
	assert_ptr_equal(hmmu_rb_last(&root), &n.rb);
	assert_null(hmmu_rb_next(&n.rb));
	assert_null(hmmu_rb_prev(&n.rb));
	assert_int_equal(n.subtree_max, 42);
	assert_int_equal(n.size, 1);
	tnode_erase(&root, &n, tnode_update);
	assert_null(root.node);
	assert_int_equal(hmmu_rb_validate(&root), 0);
}

/* Ascending inserts (rotation-heavy), then erase whatever is the root until empty. */
static void test_rb_erase_root(void **state)
{
	const long n = 1000;
	struct tnode *pool = calloc(n, sizeof(*pool));
	struct hmmu_rb_root root = { NULL };

	assert_non_null(pool);
	for (long i = 0; i < n; i++) {
		pool[i].key = i;
		pool[i].val = (i * 7919) % 1009;
		tnode_insert(&root, &pool[i], tnode_update);
	}
	check_tree(&root, pool, n, true);
	for (long i = n; i > 0; i--) {
		tnode_erase(&root, tnode_of(root.node), tnode_update);
		check_tree(&root, pool, n, true);
	}
	assert_null(root.node);
	free(pool);
}

static void shuffle(long *idx, long n, uint64_t *rng)
{
	for (long i = 0; i < n; i++)
		idx[i] = i;
	for (long i = n - 1; i > 0; i--) {
		long j = hmmu_test_rand(rng) % (i + 1), t = idx[i];

		idx[i] = idx[j];
		idx[j] = t;
	}
}

/* Insert 3000 random keys, erase them all in random order, checking as it goes. */
static void test_rb_erase_all(void **state)
{
	const long n = 3000;
	struct tnode *pool = calloc(n, sizeof(*pool));
	long *idx = calloc(n, sizeof(*idx));
	struct hmmu_rb_root root = { NULL };
	uint64_t rng = hmmu_test_seed() ^ 0x3333;

	assert_non_null(pool);
	assert_non_null(idx);
	for (long i = 0; i < n; i++) {
		pool[i].key = hmmu_test_rand(&rng) % 500;
		pool[i].val = hmmu_test_rand(&rng) % 100000;
		tnode_insert(&root, &pool[i], tnode_update);
	}
	check_tree(&root, pool, n, true);
	shuffle(idx, n, &rng);
	for (long i = 0; i < n; i++) {
		tnode_erase(&root, &pool[idx[i]], tnode_update);
		if (i % 50 == 0 || i > n - 10)
			check_tree(&root, pool, n, true);
	}
	assert_null(root.node);
	assert_null(hmmu_rb_first(&root));
	free(idx);
	free(pool);
}

/* Wire @n under @parent (NULL: root) as a leaf with the given colour. */
static void hand_link(struct hmmu_rb_root *root, struct tnode *n, struct tnode *parent,
		      bool right, bool black)
{
	struct hmmu_rb_node **link = !parent ? &root->node : right ? &parent->rb.right :
								   &parent->rb.left;

	hmmu_rb_link(&n->rb, parent ? &parent->rb : NULL, link);
	n->rb.parent_color |= black;
}

/* The validator must reject each kind of broken tree (else other tests prove little). */
static void test_rb_validate_detects_corruption(void **state)
{
	struct hmmu_rb_root root = { NULL };
	struct tnode a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };

	/* a(B) -> b(R), c(R); b -> d: balanced, valid when d is black... */
	hand_link(&root, &a, NULL, false, true);
	hand_link(&root, &b, &a, false, false);
	hand_link(&root, &c, &a, true, false);
	assert_int_equal(hmmu_rb_validate(&root), 3);
	/* ...a red node under a red node: black heights still agree. */
	hand_link(&root, &d, &b, false, false);
	assert_int_equal(hmmu_rb_validate(&root), -1);
	/* A black leaf on one side only: black heights differ. */
	d.rb.parent_color |= 1;
	assert_int_equal(hmmu_rb_validate(&root), -1);
	b.rb.left = NULL;
	assert_int_equal(hmmu_rb_validate(&root), 3);
	/* A red root. */
	a.rb.parent_color &= ~(uintptr_t)1;
	b.rb.parent_color |= 1;
	c.rb.parent_color |= 1;
	assert_int_equal(hmmu_rb_validate(&root), -1);
	a.rb.parent_color |= 1;
	assert_int_equal(hmmu_rb_validate(&root), 3);
	/* A wrong parent pointer. */
	c.rb.parent_color = (uintptr_t)&b.rb | 1;
	assert_int_equal(hmmu_rb_validate(&root), -1);
}

/* Changing a value in place and calling update_path fixes every ancestor. */
static void test_rb_update_path(void **state)
{
	const long n = 2000;
	struct tnode *pool = calloc(n, sizeof(*pool));
	struct hmmu_rb_root root = { NULL };
	uint64_t rng = hmmu_test_seed() ^ 0x4444;
	unsigned long size;

	assert_non_null(pool);
	for (long i = 0; i < n; i++) {
		pool[i].key = hmmu_test_rand(&rng) % 100000;
		pool[i].val = hmmu_test_rand(&rng) % 1000;
		tnode_insert(&root, &pool[i], tnode_update);
	}
	for (int round = 0; round < 500; round++) {
		struct tnode *t = &pool[hmmu_test_rand(&rng) % n];

		/* Raise above everything, or drop to zero (the max must fall back). */
		t->val = round % 2 ? 1000 + hmmu_test_rand(&rng) % 1000 : 0;
		hmmu_rb_update_path(&t->rb, tnode_update);
		check_augment(root.node, &size);
	}
	hmmu_rb_update_path(&pool[0].rb, NULL);	/* NULL update: a no-op */
	check_tree(&root, pool, n, true);
	free(pool);
}

/* ====================================================================== */
/* Interval tree                                                            */
/* ====================================================================== */

struct tint {
	struct hmmu_interval_node it;
	unsigned long seen;
	bool live;
};

static struct tint *tint_of(struct hmmu_interval_node *it)
{
	return hmmu_container_of(it, struct tint, it);
}

static struct hmmu_interval_node *itn_of(const struct hmmu_rb_node *rb)
{
	return rb ? hmmu_container_of(rb, struct hmmu_interval_node, rb) : NULL;
}

/* Recompute subtree_last under @rb and compare at every node; also the BST order. */
static unsigned long check_subtree_last(const struct hmmu_rb_node *rb)
{
	struct hmmu_interval_node *n = itn_of(rb);
	unsigned long max;

	if (!rb)
		return 0;
	assert_true(!rb->left || itn_of(rb->left)->start <= n->start);
	assert_true(!rb->right || itn_of(rb->right)->start >= n->start);
	max = HMMU_MAX(n->last, check_subtree_last(rb->left));
	max = HMMU_MAX(max, check_subtree_last(rb->right));
	assert_int_equal(n->subtree_last, max);
	return max;
}

static bool overlaps(const struct hmmu_interval_node *n, unsigned long start, unsigned long last)
{
	return n->start <= last && n->last >= start;
}

/*
 * iter_first/iter_next must return exactly the live intervals overlapping
 * [start, last], each once, in start order.  Returns the number of hits.
 */
static long check_query(struct hmmu_rb_root *root, struct tint *pool, long n,
			unsigned long start, unsigned long last)
{
	struct hmmu_interval_node *it;
	long expect = 0, got = 0;
	unsigned long prev = 0;

	for (long i = 0; i < n; i++)
		expect += pool[i].live && overlaps(&pool[i].it, start, last);
	visit_epoch++;
	for (it = hmmu_interval_tree_iter_first(root, start, last); it;
	     it = hmmu_interval_tree_iter_next(it, start, last)) {
		assert_true(got < expect);
		assert_true(tint_of(it)->live);
		assert_true(overlaps(it, start, last));
		assert_true(it->start >= prev);
		assert_true(tint_of(it)->seen != visit_epoch);
		tint_of(it)->seen = visit_epoch;
		prev = it->start;
		got++;
	}
	assert_int_equal(got, expect);
	return got;
}

static void tint_insert(struct hmmu_rb_root *root, struct tint *t, unsigned long start,
			unsigned long last)
{
	t->it.start = start;
	t->it.last = last;
	t->it.subtree_last = 12345;	/* garbage: insert must recompute it */
	hmmu_interval_tree_insert(&t->it, root);
	t->live = true;
}

static void tint_remove(struct hmmu_rb_root *root, struct tint *t)
{
	hmmu_interval_tree_remove(&t->it, root);
	t->live = false;
}

/* A random interval: duplicates of older ones, points, short and long ones. */
static void random_interval(struct tint *pool, long n, uint64_t *rng, unsigned long *start,
			    unsigned long *last)
{
	unsigned long kind = hmmu_test_rand(rng) % 100, len;
	struct tint *other = &pool[hmmu_test_rand(rng) % n];

	if (kind < 15 && other->it.last) {
		*start = other->it.start;	/* duplicate (live or not) */
		*last = other->it.last;
		return;
	}
	*start = hmmu_test_rand(rng) % 5000;
	len = kind < 40 ? 0 : kind < 97 ? hmmu_test_rand(rng) % 64 : hmmu_test_rand(rng) % 3000;
	*last = *start + len;
}

/* Random query windows, some points, some wide, some beyond every interval. */
static void random_queries(struct hmmu_rb_root *root, struct tint *pool, long n, uint64_t *rng)
{
	for (int q = 0; q < 30; q++) {
		unsigned long start = hmmu_test_rand(rng) % 8200;
		unsigned long kind = hmmu_test_rand(rng) % 4;
		unsigned long len = kind == 0 ? 0 : kind < 3 ? hmmu_test_rand(rng) % 100 :
							       hmmu_test_rand(rng) % 4000;

		check_query(root, pool, n, start, start + len);
	}
	check_query(root, pool, n, 0, ULONG_MAX);
}

static void check_itree(struct hmmu_rb_root *root, struct tint *pool, long n, uint64_t *rng)
{
	long live = 0;

	for (long i = 0; i < n; i++)
		live += pool[i].live;
	assert_int_equal(hmmu_rb_validate(root), live);
	check_subtree_last(root->node);
	random_queries(root, pool, n, rng);
}

/* 20000 random inserts/removes over ~1500 live intervals, checked every 200. */
static void test_itree_random(void **state)
{
	const long n = 3000;
	struct tint *pool = calloc(n, sizeof(*pool));
	struct hmmu_rb_root root = { NULL };
	uint64_t rng = hmmu_test_seed() ^ 0x5555;
	unsigned long start, last;

	assert_non_null(pool);
	for (int op = 1; op <= 20000; op++) {
		struct tint *t = &pool[hmmu_test_rand(&rng) % n];

		if (t->live) {
			tint_remove(&root, t);
		} else {
			random_interval(pool, n, &rng, &start, &last);
			tint_insert(&root, t, start, last);
		}
		if (op % 200 == 0)
			check_itree(&root, pool, n, &rng);
	}
	free(pool);
}

static void test_itree_empty(void **state)
{
	struct hmmu_rb_root root = { NULL };

	assert_null(hmmu_interval_tree_iter_first(&root, 0, ULONG_MAX));
	assert_null(hmmu_interval_tree_iter_first(&root, 5, 5));
}

static void test_itree_single(void **state)
{
	struct hmmu_rb_root root = { NULL };
	struct tint t = { 0 };

	tint_insert(&root, &t, 10, 20);
	assert_int_equal(t.it.subtree_last, 20);
	assert_ptr_equal(hmmu_interval_tree_iter_first(&root, 20, 30), &t.it);
	assert_ptr_equal(hmmu_interval_tree_iter_first(&root, 0, 10), &t.it);
	assert_null(hmmu_interval_tree_iter_first(&root, 21, 30));
	assert_null(hmmu_interval_tree_iter_first(&root, 0, 9));
	assert_null(hmmu_interval_tree_iter_next(&t.it, 0, ULONG_MAX));
	tint_remove(&root, &t);
	assert_null(root.node);
	assert_null(hmmu_interval_tree_iter_first(&root, 0, ULONG_MAX));
}

/* Intervals and windows at the ends of the key space. */
static void test_itree_ulong_max(void **state)
{
	static const unsigned long iv[][2] = {
		{ ULONG_MAX, ULONG_MAX }, { 0, ULONG_MAX }, { ULONG_MAX - 5, ULONG_MAX },
		{ 0, 0 }, { 5, 10 }, { ULONG_MAX - 5, ULONG_MAX - 1 }, { ULONG_MAX, ULONG_MAX },
	};
	const long n = sizeof(iv) / sizeof(iv[0]);
	struct tint pool[sizeof(iv) / sizeof(iv[0])];
	struct hmmu_rb_root root = { NULL };

	memset(pool, 0, sizeof(pool));
	for (long i = 0; i < n; i++)
		tint_insert(&root, &pool[i], iv[i][0], iv[i][1]);
	assert_int_equal(check_subtree_last(root.node), ULONG_MAX);
	assert_int_equal(check_query(&root, pool, n, ULONG_MAX, ULONG_MAX), 4);
	assert_int_equal(check_query(&root, pool, n, 0, 0), 2);
	assert_int_equal(check_query(&root, pool, n, 0, ULONG_MAX), n);
	assert_int_equal(check_query(&root, pool, n, 11, ULONG_MAX - 6), 1);
	assert_int_equal(check_query(&root, pool, n, ULONG_MAX - 1, ULONG_MAX - 1), 3);
	for (long i = 0; i < n; i++) {
		tint_remove(&root, &pool[i]);
		check_subtree_last(root.node);
		check_query(&root, pool, n, ULONG_MAX, ULONG_MAX);
		check_query(&root, pool, n, 0, ULONG_MAX);
	}
	assert_null(root.node);
}

/* Removing every interval in random order keeps queries exact to the end. */
static void test_itree_remove_all(void **state)
{
	const long n = 1500;
	struct tint *pool = calloc(n, sizeof(*pool));
	long *idx = calloc(n, sizeof(*idx));
	struct hmmu_rb_root root = { NULL };
	uint64_t rng = hmmu_test_seed() ^ 0x6666;
	unsigned long start, last;

	assert_non_null(pool);
	assert_non_null(idx);
	for (long i = 0; i < n; i++) {
		random_interval(pool, n, &rng, &start, &last);
		tint_insert(&root, &pool[i], start, last);
	}
	shuffle(idx, n, &rng);
	for (long i = 0; i < n; i++) {
		tint_remove(&root, &pool[idx[i]]);
		if (i % 100 == 0 || i > n - 5)
			check_itree(&root, pool, n, &rng);
	}
	assert_null(root.node);
	free(idx);
	free(pool);
}

/* ---- pruning: a query with few hits must not look at the rest ---------- */

/*
 * Poisoning.  In a large tree of points, fields that an O(log n + hits)
 * query never needs are rewritten so that any look at them would turn the
 * node into a false hit:
 *  - below the top of any subtree with subtree_last < start (pruned), the
 *    node's `last` becomes ULONG_MAX;
 *  - nodes that begin after the window, except the path to the first such
 *    node in order (where the query stops) and that path's children, get
 *    `start` = the window's start.
 * A correct query still returns exactly the real hits; a linear scan, a
 * search that ignores subtree_last, or one that does not stop at the first
 * start > last reports poisoned nodes.  One extra interval [0, ULONG_MAX]
 * (never poisoned) is the first hit, so a query that steps in order from
 * its first hit instead of skipping pruned subtrees is caught as well.
 */
struct poison {
	unsigned long qs, ql;		/* the window */
	struct tint *pool;
	unsigned long *orig;		/* saved start (== last) of each point */
	bool *keep;			/* path to the stop node and its children */
	long pruned, late;		/* how many nodes each rule poisoned */
};

static void poison_pruned(struct poison *p, struct hmmu_rb_node *rb, bool below_pruned)
{
	struct hmmu_interval_node *n = itn_of(rb);

	if (!rb)
		return;
	if (below_pruned) {
		n->last = ULONG_MAX;
		p->pruned++;
	}
	below_pruned = below_pruned || n->subtree_last < p->qs;
	poison_pruned(p, rb->left, below_pruned);
	poison_pruned(p, rb->right, below_pruned);
}

static void keep_node(struct poison *p, struct hmmu_rb_node *rb)
{
	if (rb)
		p->keep[tint_of(itn_of(rb)) - p->pool] = true;
}

static void poison_late(struct poison *p, struct hmmu_rb_root *root, long n)
{
	struct hmmu_rb_node *rb = hmmu_rb_first(root);

	while (rb && itn_of(rb)->start <= p->ql)
		rb = hmmu_rb_next(rb);
	assert_non_null(rb);
	memset(p->keep, 0, (n + 1) * sizeof(*p->keep));
	for (; rb; rb = hmmu_rb_parent(rb)) {
		keep_node(p, rb);
		keep_node(p, rb->left);
		keep_node(p, rb->right);
	}
	for (long i = 0; i < n; i++) {
		if (p->pool[i].it.start > p->ql && !p->keep[i]) {
			p->pool[i].it.start = p->qs;
			p->late++;
		}
	}
}

static void unpoison(struct poison *p, long n)
{
	for (long i = 0; i < n; i++) {
		p->pool[i].it.start = p->orig[i];
		p->pool[i].it.last = p->orig[i];
	}
}

/* Query a poisoned window holding 4 points; expect [0, ULONG_MAX] and those 4. */
static void check_pruned_query(struct poison *p, struct hmmu_rb_root *root, long n,
			       unsigned long q)
{
	struct hmmu_interval_node *it;
	unsigned long expect = q + 1;

	p->qs = 4 * q + 1;
	p->ql = 4 * q + 16;
	p->pruned = p->late = 0;
	poison_pruned(p, root->node, false);
	poison_late(p, root, n);
	it = hmmu_interval_tree_iter_first(root, p->qs, p->ql);
	assert_ptr_equal(it, &p->pool[n].it);
	for (it = hmmu_interval_tree_iter_next(it, p->qs, p->ql); it;
	     it = hmmu_interval_tree_iter_next(it, p->qs, p->ql)) {
		assert_int_equal(p->orig[tint_of(it) - p->pool], 4 * expect);
		expect++;
	}
	assert_int_equal(expect, q + 5);
	/* The poison must cover most of the tree for the check to mean anything. */
	assert_true(p->pruned > n / 8);
	assert_true(p->late > n / 8);
	unpoison(p, n);
}

static void test_itree_query_is_pruned(void **state)
{
	const long n = 1L << 15;
	struct poison p = { 0 };
	long *idx = calloc(n, sizeof(*idx));
	struct hmmu_rb_root root = { NULL };
	uint64_t rng = hmmu_test_seed() ^ 0x7777;

	p.pool = calloc(n + 1, sizeof(*p.pool));
	p.orig = calloc(n, sizeof(*p.orig));
	p.keep = calloc(n + 1, sizeof(*p.keep));
	assert_true(idx && p.pool && p.orig && p.keep);
	shuffle(idx, n, &rng);
	for (long i = 0; i < n; i++) {
		p.orig[i] = 4 * (unsigned long)idx[i];	/* the points 0, 4, 8, ... */
		tint_insert(&root, &p.pool[i], p.orig[i], p.orig[i]);
		if (i == n / 2)
			tint_insert(&root, &p.pool[n], 0, ULONG_MAX);
	}
	for (int round = 0; round < 20; round++)
		check_pruned_query(&p, &root, n, n / 4 + hmmu_test_rand(&rng) % (n / 2));
	assert_int_equal(hmmu_rb_validate(&root), n + 1);
	check_subtree_last(root.node);
	free(p.keep);
	free(p.orig);
	free(p.pool);
	free(idx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rb_empty),
		cmocka_unit_test(test_rb_single),
		cmocka_unit_test(test_rb_validate_detects_corruption),
		cmocka_unit_test(test_rb_random_augmented),
		cmocka_unit_test(test_rb_random_plain),
		cmocka_unit_test(test_rb_erase_root),
		cmocka_unit_test(test_rb_erase_all),
		cmocka_unit_test(test_rb_update_path),
		cmocka_unit_test(test_itree_empty),
		cmocka_unit_test(test_itree_single),
		cmocka_unit_test(test_itree_ulong_max),
		cmocka_unit_test(test_itree_random),
		cmocka_unit_test(test_itree_remove_all),
		cmocka_unit_test(test_itree_query_is_pruned),
	};

	hmmu_test_seed();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
