// SPDX-License-Identifier: MIT
/*
 * Interval tree: closed intervals [start, last] kept in a red-black tree
 * ordered by start (equal starts go to the right of existing ones), each
 * node augmented with subtree_last, the largest `last` in its subtree.
 *
 * A query for [start, last] skips any subtree whose subtree_last < start
 * (nothing in it reaches the window) and stops at the first node, in start
 * order, whose start > last (nothing after it can begin inside the window).
 */
#include "internal.h"

static struct hmmu_interval_node *itree_entry(const struct hmmu_rb_node *rb)
{
	return rb ? hmmu_container_of(rb, struct hmmu_interval_node, rb) : NULL;
}

/* Largest `last` under @rb, or 0 (neutral for a maximum) for an empty subtree. */
static unsigned long itree_subtree_last(const struct hmmu_rb_node *rb)
{
	return rb ? itree_entry(rb)->subtree_last : 0;
}

/* Augmentation callback: subtree_last = max(own last, children's). */
static bool itree_update(struct hmmu_rb_node *rb)
{
	struct hmmu_interval_node *n = itree_entry(rb);
	unsigned long max = n->last;

	max = HMMU_MAX(max, itree_subtree_last(rb->left));
	max = HMMU_MAX(max, itree_subtree_last(rb->right));
	if (n->subtree_last == max)
		return false;
	n->subtree_last = max;
	return true;
}

/* Can anything in the subtree under @rb reach a window starting at @start? */
static bool itree_reaches(const struct hmmu_rb_node *rb, unsigned long start)
{
	return rb && itree_entry(rb)->subtree_last >= start;
}

void hmmu_interval_tree_insert(struct hmmu_interval_node *node, struct hmmu_rb_root *root)
{
	struct hmmu_rb_node **link = &root->node, *parent = NULL;

	HMMU_BUG_ON(node->start > node->last);
	while (*link) {
		parent = *link;
		if (node->start < itree_entry(parent)->start)
			link = &parent->left;
		else
			link = &parent->right;
	}
	node->subtree_last = node->last;
	hmmu_rb_link(&node->rb, parent, link);
	hmmu_rb_insert(root, &node->rb, itree_update);
}

void hmmu_interval_tree_remove(struct hmmu_interval_node *node, struct hmmu_rb_root *root)
{
	hmmu_rb_erase(root, &node->rb, itree_update);
}

/*
 * Lowest-start node overlapping [start, last] in the subtree under @rb,
 * which must reach @start.  If the left subtree reaches @start, the answer
 * is there or nowhere: a node in it ends at or after @start, so either it
 * overlaps or it begins after @last, and then so does everything after it.
 * One descent, O(log n).
 */
static struct hmmu_interval_node *itree_search(struct hmmu_rb_node *rb, unsigned long start,
					       unsigned long last)
{
	struct hmmu_interval_node *n;

	for (;;) {
		if (itree_reaches(rb->left, start)) {
			rb = rb->left;
			continue;
		}
		n = itree_entry(rb);
		if (n->start > last)
			return NULL;
		if (n->last >= start)
			return n;
		if (!itree_reaches(rb->right, start))
			return NULL;
		rb = rb->right;
	}
}

struct hmmu_interval_node *hmmu_interval_tree_iter_first(struct hmmu_rb_root *root,
							 unsigned long start, unsigned long last)
{
	if (!itree_reaches(root->node, start))
		return NULL;
	return itree_search(root->node, start, last);
}

/*
 * Continue in start order after @node: first its right subtree, then each
 * ancestor reached from its left side (with that ancestor's right subtree).
 * Like itree_search, a subtree that reaches @start holds the answer or
 * proves there is none.
 */
struct hmmu_interval_node *hmmu_interval_tree_iter_next(struct hmmu_interval_node *node,
							unsigned long start, unsigned long last)
{
	struct hmmu_rb_node *rb = &node->rb, *right = rb->right, *parent;

	for (;;) {
		if (itree_reaches(right, start))
			return itree_search(right, start, last);
		while ((parent = hmmu_rb_parent(rb)) && parent->right == rb)
			rb = parent;
		if (!parent)
			return NULL;
		rb = parent;
		node = itree_entry(rb);
		if (node->start > last)
			return NULL;
		if (node->last >= start)
			return node;
		right = rb->right;
	}
}
