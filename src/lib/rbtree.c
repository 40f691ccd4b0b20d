// SPDX-License-Identifier: MIT
/*
 * Intrusive red-black tree with optional augmentation.
 *
 * Rules kept after every insert and erase: the root is black, a red node has
 * no red child, and every path from a node down to a missing child crosses
 * the same number of black nodes.  Missing children count as black.
 *
 * The colour lives in bit 0 of parent_color (1 = black); the rest is the
 * parent pointer.  Rotations and the fix-up loops below are written once for
 * both mirror images: `dir` is 0 for the left side and 1 for the right side.
 */
#include "internal.h"

enum { RB_LEFT = 0, RB_RIGHT = 1 };

/* ---- colour and link accessors ---------------------------------------- */

static bool rb_is_black(const struct hmmu_rb_node *n)
{
	return !n || (n->parent_color & 1);
}

static bool rb_is_red(const struct hmmu_rb_node *n)
{
	return !rb_is_black(n);
}

static void rb_set_black(struct hmmu_rb_node *n)
{
	n->parent_color |= 1;
}

static void rb_set_red(struct hmmu_rb_node *n)
{
	n->parent_color &= ~(uintptr_t)1;
}

/* Copy @from's colour onto @to. */
static void rb_copy_color(struct hmmu_rb_node *to, const struct hmmu_rb_node *from)
{
	to->parent_color = (to->parent_color & ~(uintptr_t)1) | (from->parent_color & 1);
}

/* Change @n's parent, keeping its colour. */
static void rb_set_parent(struct hmmu_rb_node *n, struct hmmu_rb_node *parent)
{
	n->parent_color = (uintptr_t)parent | (n->parent_color & 1);
}

/* The child slot of @n on side @dir. */
static struct hmmu_rb_node **rb_slot(struct hmmu_rb_node *n, int dir)
{
	return dir == RB_LEFT ? &n->left : &n->right;
}

static int rb_side_of(const struct hmmu_rb_node *parent, const struct hmmu_rb_node *child)
{
	return parent->left == child ? RB_LEFT : RB_RIGHT;
}

/* Make whatever pointed at @old (its parent's slot, or the root) point at @new. */
static void rb_replace_child(struct hmmu_rb_root *root, struct hmmu_rb_node *parent,
			     struct hmmu_rb_node *old, struct hmmu_rb_node *new)
{
	if (!parent)
		root->node = new;
	else
		*rb_slot(parent, rb_side_of(parent, old)) = new;
}

/* The extreme node on side @dir of the subtree under @n. */
static struct hmmu_rb_node *rb_extreme(struct hmmu_rb_node *n, int dir)
{
	if (n)
		while (*rb_slot(n, dir))
			n = *rb_slot(n, dir);
	return n;
}

static void rb_augment(struct hmmu_rb_node *n, hmmu_rb_update_fn *update)
{
	if (update)
		update(n);
}

/*
 * Rotate @x down to side @dir: its child on the other side takes x's place
 * and x becomes that child's @dir child.  Colours stay with their nodes.
 * The node that went down is recomputed first, then the one that came up;
 * the rotated subtree holds the same nodes, so nothing above changes.
 */
static void rb_rotate(struct hmmu_rb_root *root, struct hmmu_rb_node *x, int dir,
		      hmmu_rb_update_fn *update)
{
	struct hmmu_rb_node *y = *rb_slot(x, !dir);
	struct hmmu_rb_node *inner = *rb_slot(y, dir);
	struct hmmu_rb_node *parent = hmmu_rb_parent(x);

	*rb_slot(x, !dir) = inner;
	if (inner)
		rb_set_parent(inner, x);
	rb_set_parent(y, parent);
	rb_replace_child(root, parent, x, y);
	*rb_slot(y, dir) = x;
	rb_set_parent(x, y);
	rb_augment(x, update);
	rb_augment(y, update);
}

/* ---- augmentation walks ------------------------------------------------ */

/*
 * Recompute @node and its ancestors.  Once a node's value is unchanged its
 * ancestors see the same inputs as before, so the walk stops there.
 */
void hmmu_rb_update_path(struct hmmu_rb_node *node, hmmu_rb_update_fn *update)
{
	if (!update)
		return;
	for (; node; node = hmmu_rb_parent(node))
		if (!update(node))
			break;
}

/* Recompute every node from @node up to the root, without stopping early. */
static void rb_update_to_root(struct hmmu_rb_node *node, hmmu_rb_update_fn *update)
{
	if (!update)
		return;
	for (; node; node = hmmu_rb_parent(node))
		update(node);
}

/* ---- insertion ---------------------------------------------------------- */

/*
 * @node is red and so is its parent, whose sibling (the uncle) is black.
 * One or two rotations around the grandparent end the repair.
 */
static void rb_insert_rotate(struct hmmu_rb_root *root, struct hmmu_rb_node *node,
			     struct hmmu_rb_node *parent, hmmu_rb_update_fn *update)
{
	struct hmmu_rb_node *gparent = hmmu_rb_parent(parent);
	int pdir = rb_side_of(gparent, parent);

	if (node == *rb_slot(parent, !pdir)) {
		/* Inner grandchild: turn it into the outer one first. */
		rb_rotate(root, parent, pdir, update);
		parent = node;
	}
	rb_rotate(root, gparent, !pdir, update);
	rb_set_black(parent);
	rb_set_red(gparent);
}

/*
 * Restore the colour rules after a red @node was linked.  While the parent
 * and the uncle are both red, push the red up to the grandparent (recolour
 * only); otherwise rotate and stop.
 */
static void rb_insert_fixup(struct hmmu_rb_root *root, struct hmmu_rb_node *node,
			    hmmu_rb_update_fn *update)
{
	struct hmmu_rb_node *parent, *gparent, *uncle;

	while ((parent = hmmu_rb_parent(node)) && rb_is_red(parent)) {
		/* A red parent is never the root, so the grandparent exists. */
		gparent = hmmu_rb_parent(parent);
		uncle = *rb_slot(gparent, !rb_side_of(gparent, parent));
		if (rb_is_black(uncle)) {
			rb_insert_rotate(root, node, parent, update);
			break;
		}
		rb_set_black(parent);
		rb_set_black(uncle);
		rb_set_red(gparent);
		node = gparent;
	}
	rb_set_black(root->node);
}

/*
 * Rebalance after hmmu_rb_link().  The new leaf's augmented value is set,
 * then propagated upward (stopping once an ancestor does not change, since
 * its own ancestors then see the same inputs); rotations keep it right.
 */
void hmmu_rb_insert(struct hmmu_rb_root *root, struct hmmu_rb_node *node,
		    hmmu_rb_update_fn *update)
{
	if (update) {
		update(node);	/* its old value was garbage: ignore "changed" */
		hmmu_rb_update_path(hmmu_rb_parent(node), update);
	}
	rb_insert_fixup(root, node, update);
}

/* ---- erasure ------------------------------------------------------------ */

/*
 * The subtree on side @dir of @parent is one black short.  Its sibling is
 * black with a red child; rotations and recolouring finish the repair.
 */
static void rb_erase_rotate(struct hmmu_rb_root *root, struct hmmu_rb_node *parent, int dir,
			    hmmu_rb_update_fn *update)
{
	struct hmmu_rb_node *sib = *rb_slot(parent, !dir);

	if (rb_is_black(*rb_slot(sib, !dir))) {
		/* Only the near nephew is red: make it the sibling. */
		rb_set_black(*rb_slot(sib, dir));
		rb_set_red(sib);
		rb_rotate(root, sib, !dir, update);
		sib = *rb_slot(parent, !dir);
	}
	rb_copy_color(sib, parent);
	rb_set_black(parent);
	rb_set_black(*rb_slot(sib, !dir));
	rb_rotate(root, parent, dir, update);
}

/*
 * Returns true when the shortage on side @dir of @parent is fixed; false
 * when it moved up to @parent itself (sibling recoloured red).
 */
static bool rb_erase_step(struct hmmu_rb_root *root, struct hmmu_rb_node *parent, int dir,
			  hmmu_rb_update_fn *update)
{
	struct hmmu_rb_node *sib = *rb_slot(parent, !dir);

	if (rb_is_red(sib)) {
		/* Turn a red sibling into a black one; parent turns red. */
		rb_set_black(sib);
		rb_set_red(parent);
		rb_rotate(root, parent, dir, update);
		sib = *rb_slot(parent, !dir);
	}
	if (rb_is_red(sib->left) || rb_is_red(sib->right)) {
		rb_erase_rotate(root, parent, dir, update);
		return true;
	}
	rb_set_red(sib);
	return false;
}

/*
 * A black node left the side @dir of @parent (the slot may now be empty),
 * so paths through it are one black short.  Repair, moving up while needed.
 */
static void rb_erase_fixup(struct hmmu_rb_root *root, struct hmmu_rb_node *parent, int dir,
			   hmmu_rb_update_fn *update)
{
	struct hmmu_rb_node *node;

	while (!rb_erase_step(root, parent, dir, update)) {
		node = parent;
		parent = hmmu_rb_parent(node);
		if (rb_is_red(node) || !parent) {
			rb_set_black(node);
			return;
		}
		dir = rb_side_of(parent, node);
	}
}

/*
 * Put @succ (the leftmost node of @node's right subtree) in @node's place.
 * Sets *@parent and *@dir to the slot that lost a node and returns succ's
 * former right child, which took succ's old place.
 */
static struct hmmu_rb_node *rb_erase_swap(struct hmmu_rb_root *root, struct hmmu_rb_node *node,
					  struct hmmu_rb_node *succ,
					  struct hmmu_rb_node **parent, int *dir)
{
	struct hmmu_rb_node *child = succ->right;

	if (succ == node->right) {
		*parent = succ;
		*dir = RB_RIGHT;
	} else {
		*parent = hmmu_rb_parent(succ);
		*dir = RB_LEFT;
		(*parent)->left = child;
		if (child)
			rb_set_parent(child, *parent);
		succ->right = node->right;
		rb_set_parent(node->right, succ);
	}
	succ->left = node->left;
	rb_set_parent(node->left, succ);
	succ->parent_color = node->parent_color;	/* parent and colour */
	rb_replace_child(root, hmmu_rb_parent(node), node, succ);
	return child;
}

/* @node has at most one child: move that child (or nothing) into its place. */
static struct hmmu_rb_node *rb_erase_splice(struct hmmu_rb_root *root, struct hmmu_rb_node *node,
					    struct hmmu_rb_node **parent, int *dir)
{
	struct hmmu_rb_node *child = node->left ? node->left : node->right;

	*parent = hmmu_rb_parent(node);
	*dir = *parent ? rb_side_of(*parent, node) : RB_LEFT;
	rb_replace_child(root, *parent, node, child);
	if (child)
		rb_set_parent(child, *parent);
	return child;
}

/*
 * Unlink @node from the tree structure.  Returns true if a black node left
 * the slot (*@parent, *@dir) with nobody red to take over its colour, i.e.
 * the colour fix-up must run there.  *@parent is NULL if the tree emptied.
 */
static bool rb_erase_unlink(struct hmmu_rb_root *root, struct hmmu_rb_node *node,
			    struct hmmu_rb_node **parent, int *dir)
{
	struct hmmu_rb_node *child, *succ;
	bool black;

	if (node->left && node->right) {
		succ = rb_extreme(node->right, RB_LEFT);
		black = rb_is_black(succ);
		child = rb_erase_swap(root, node, succ, parent, dir);
	} else {
		black = rb_is_black(node);
		child = rb_erase_splice(root, node, parent, dir);
	}
	if (black && child) {
		rb_set_black(child);	/* a lone child under a black node is red */
		return false;
	}
	return black && *parent;
}

/*
 * Remove @node.  After the unlink, every node from the lowest changed one
 * up to the root is recomputed (a moved successor carries a stale value, so
 * the walk never stops early); then the colour fix-up rotates as needed.
 */
void hmmu_rb_erase(struct hmmu_rb_root *root, struct hmmu_rb_node *node,
		   hmmu_rb_update_fn *update)
{
	struct hmmu_rb_node *parent;
	int dir;
	bool fix = rb_erase_unlink(root, node, &parent, &dir);

	rb_update_to_root(parent, update);
	if (fix)
		rb_erase_fixup(root, parent, dir, update);
}

/* ---- traversal ---------------------------------------------------------- */

/* In-order neighbour of @node on side @dir (RB_RIGHT: next, RB_LEFT: prev). */
static struct hmmu_rb_node *rb_step(const struct hmmu_rb_node *node, int dir)
{
	struct hmmu_rb_node *n = (struct hmmu_rb_node *)node, *parent;

	if (*rb_slot(n, dir))
		return rb_extreme(*rb_slot(n, dir), !dir);
	while ((parent = hmmu_rb_parent(n)) && n == *rb_slot(parent, dir))
		n = parent;
	return parent;
}

struct hmmu_rb_node *hmmu_rb_first(const struct hmmu_rb_root *root)
{
	return rb_extreme(root->node, RB_LEFT);
}

struct hmmu_rb_node *hmmu_rb_last(const struct hmmu_rb_root *root)
{
	return rb_extreme(root->node, RB_RIGHT);
}

struct hmmu_rb_node *hmmu_rb_next(const struct hmmu_rb_node *node)
{
	return rb_step(node, RB_RIGHT);
}

struct hmmu_rb_node *hmmu_rb_prev(const struct hmmu_rb_node *node)
{
	return rb_step(node, RB_LEFT);
}

/* ---- validation --------------------------------------------------------- */

/*
 * Check the subtree under @n, whose parent must be @parent.  Returns its
 * node count and stores its black height in *@bh, or returns -1.
 */
static long rb_check(const struct hmmu_rb_node *n, const struct hmmu_rb_node *parent, long *bh)
{
	long lcount, rcount, lbh, rbh;

	*bh = 0;
	if (!n)
		return 0;
	if (hmmu_rb_parent(n) != parent)
		return -1;
	if (rb_is_red(n) && (rb_is_red(n->left) || rb_is_red(n->right)))
		return -1;
	lcount = rb_check(n->left, n, &lbh);
	rcount = rb_check(n->right, n, &rbh);
	if (lcount < 0 || rcount < 0 || lbh != rbh)
		return -1;
	*bh = lbh + rb_is_black(n);
	return lcount + rcount + 1;
}

/* Node count, or -1 if the root is red or any rule (or parent link) is broken. */
long hmmu_rb_validate(const struct hmmu_rb_root *root)
{
	long bh;

	if (root->node && !rb_is_black(root->node))
		return -1;
	return rb_check(root->node, NULL, &bh);
}
