/* SPDX-License-Identifier: MIT */
/*
 * Node types of hmmu's intrusive red-black and interval trees, embedded in
 * public structures (VMAs, interval notifiers).  The operations are internal.
 */
#ifndef HMMU_RBTREE_TYPES_H
#define HMMU_RBTREE_TYPES_H

#include <stdint.h>

struct hmmu_rb_node {
	uintptr_t parent_color;		/* parent pointer | colour (bit 0: 1 = black) */
	struct hmmu_rb_node *left, *right;
};

struct hmmu_rb_root {
	struct hmmu_rb_node *node;
};

/* A closed interval [start, last] in an interval tree. */
struct hmmu_interval_node {
	struct hmmu_rb_node rb;
	unsigned long start, last;	/* inclusive */
	unsigned long subtree_last;	/* max `last` in this subtree */
};

#endif /* HMMU_RBTREE_TYPES_H */
