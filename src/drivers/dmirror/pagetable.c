// SPDX-License-Identifier: MIT
/*
 * dmirror's device page table: virtual page number -> tagged page pointer
 * (spec 5.3), a radix tree of four levels of 512 slots.  A leaf covers 2
 * MiB of address space, so walking a range costs one descent per 512 pages
 * (hmmu_dmirror_pt_leaf()); erasing a range visits only the nodes that
 * exist.  Nodes are freed as soon as their last slot empties, so an
 * invalidation of the whole address space leaves an empty tree.
 *
 * Locking: every call is made with the owning mirror's mutex held (the
 * driver lock the invalidate callback takes); the tree has no lock of its
 * own.  Entries hold no page references.
 */
#include <stdlib.h>

#include "dmirror_priv.h"

static unsigned long pt_index(unsigned long vpn, int level)
{
	return (vpn >> (level * DMIRROR_PT_BITS)) & (DMIRROR_PT_SLOTS - 1);
}

/* Virtual pages one slot of a node at @level covers. */
static unsigned long pt_span(int level)
{
	return 1UL << (level * DMIRROR_PT_BITS);
}

static struct dmirror_pt_node *pt_child(const struct dmirror_pt_node *node, unsigned long vpn, int level)
{
	return (struct dmirror_pt_node *)node->slot[pt_index(vpn, level)];
}

void hmmu_dmirror_pt_init(struct hmmu_dmirror_pt *pt)
{
	pt->root = NULL;
	pt->nr_entries = 0;
	pt->nr_nodes = 0;
}

static void pt_free_node(struct dmirror_pt_node *node, int level)
{
	for (unsigned long i = 0; level > 0 && node->used && i < DMIRROR_PT_SLOTS; i++)
		if (node->slot[i])
			pt_free_node((struct dmirror_pt_node *)node->slot[i], level - 1);
	free(node);
}

/* Free every node.  The mirror is going away: no lock needed, nobody else sees it. */
void hmmu_dmirror_pt_destroy(struct hmmu_dmirror_pt *pt)
{
	if (pt->root)
		pt_free_node(pt->root, DMIRROR_PT_LEVELS - 1);
	hmmu_dmirror_pt_init(pt);
}

/* The leaf node holding @vpn's slot, or NULL when there is none. */
static struct dmirror_pt_node *pt_find_leaf(const struct hmmu_dmirror_pt *pt, unsigned long vpn)
{
	struct dmirror_pt_node *node = pt->root;

	if (vpn > DMIRROR_PT_MAX_VPN)
		return NULL;
	for (int level = DMIRROR_PT_LEVELS - 1; node && level > 0; level--)
		node = pt_child(node, vpn, level);
	return node;
}

/* The entry of @vpn, or 0. */
dmirror_entry_t hmmu_dmirror_pt_lookup(const struct hmmu_dmirror_pt *pt, unsigned long vpn)
{
	const struct dmirror_pt_node *leaf = pt_find_leaf(pt, vpn);

	return leaf ? leaf->slot[pt_index(vpn, 0)] : 0;
}

/*
 * The slots of the leaf holding @vpn (index them with vpn % 512), or NULL
 * when no entry of that 2 MiB span exists.  Valid until the mutex is
 * dropped or the table changes.
 */
const uintptr_t *hmmu_dmirror_pt_leaf(const struct hmmu_dmirror_pt *pt, unsigned long vpn)
{
	const struct dmirror_pt_node *leaf = pt_find_leaf(pt, vpn);

	return leaf ? leaf->slot : NULL;
}

static struct dmirror_pt_node *pt_node_alloc(struct hmmu_dmirror_pt *pt)
{
	struct dmirror_pt_node *node = calloc(1, sizeof(*node));

	if (node)
		pt->nr_nodes++;
	return node;
}

/*
 * Set the entry of @vpn to @entry (non-zero), replacing any.  Allocates
 * the missing nodes on the way (malloc: nothing in user space recurses
 * into an invalidation, so this is the kernel driver's atomic allocation).
 * Returns 0, -EINVAL (@vpn beyond the table, @entry 0) or -ENOMEM (the
 * table is unchanged but for empty nodes, which the next erase or the
 * destruction frees).
 */
/* The leaf for @vpn, allocating the missing nodes on the way; NULL when out of memory. */
static struct dmirror_pt_node *pt_leaf_alloc(struct hmmu_dmirror_pt *pt, unsigned long vpn)
{
	struct dmirror_pt_node *node;

	if (!pt->root && !(pt->root = pt_node_alloc(pt)))
		return NULL;
	node = pt->root;
	for (int level = DMIRROR_PT_LEVELS - 1; level > 0; level--) {
		uintptr_t *slot = &node->slot[pt_index(vpn, level)];

		if (!*slot) {
			struct dmirror_pt_node *child = pt_node_alloc(pt);

			if (!child)
				return NULL;
			*slot = (uintptr_t)child;
			node->used++;
		}
		node = (struct dmirror_pt_node *)*slot;
	}
	return node;
}

int hmmu_dmirror_pt_store(struct hmmu_dmirror_pt *pt, unsigned long vpn, dmirror_entry_t entry)
{
	struct dmirror_pt_node *node;
	uintptr_t *slot;

	if (vpn > DMIRROR_PT_MAX_VPN || !entry)
		return -EINVAL;
	node = pt_leaf_alloc(pt, vpn);
	if (!node)
		return -ENOMEM;
	slot = &node->slot[pt_index(vpn, 0)];
	if (!*slot) {
		node->used++;
		pt->nr_entries++;
	}
	*slot = entry;
	return 0;
}

/*
 * Erase [first, last] (both inside the span of @node, which starts at
 * @base) from @node at @level; free the children that become empty.
 */
static void pt_erase_node(struct hmmu_dmirror_pt *pt, struct dmirror_pt_node *node, int level, unsigned long base,
			  unsigned long first, unsigned long last)
{
	unsigned long span = pt_span(level);

	for (unsigned long i = pt_index(first, level); i <= pt_index(last, level) && node->used; i++) {
		struct dmirror_pt_node *child = (struct dmirror_pt_node *)node->slot[i];
		unsigned long cbase = base + i * span;

		if (!child)
			continue;
		if (level > 0) {
			pt_erase_node(pt, child, level - 1, cbase, first > cbase ? first : cbase,
				      last < cbase + span - 1 ? last : cbase + span - 1);
			if (child->used)
				continue;
			free(child);
			pt->nr_nodes--;
		} else {
			pt->nr_entries--;
		}
		node->slot[i] = 0;
		node->used--;
	}
}

/* Erase every entry of [first, last] (inclusive; @last may lie beyond the table). */
void hmmu_dmirror_pt_erase(struct hmmu_dmirror_pt *pt, unsigned long first, unsigned long last)
{
	if (!pt->root || first > last || first > DMIRROR_PT_MAX_VPN)
		return;
	if (last > DMIRROR_PT_MAX_VPN)
		last = DMIRROR_PT_MAX_VPN;
	pt_erase_node(pt, pt->root, DMIRROR_PT_LEVELS - 1, 0, first, last);
	if (!pt->root->used) {
		free(pt->root);
		pt->root = NULL;
		pt->nr_nodes--;
	}
}
