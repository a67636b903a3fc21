/*
 * list.h - intrusive circular doubly linked lists.
 *
 * Objects embed a struct list_head per list they can be on; an object's
 * state names the list it is on (idle servers, waiting clients, ...).
 */
#ifndef PGSLUICE_LIST_H
#define PGSLUICE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_head {
	struct list_head *prev;
	struct list_head *next;
};

#define list_entry(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#define list_for_each_safe(pos, tmp, head)                                                         \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

static inline void list_init(struct list_head *h)
{
	h->prev = h->next = h;
}

static inline bool list_empty(const struct list_head *h)
{
	return h->next == h;
}

/* true when the node is on some list (nodes are list_init'ed when off). */
static inline bool list_linked(const struct list_head *n)
{
	return n->next != n;
}

static inline void list_add_head(struct list_head *h, struct list_head *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}

static inline void list_add_tail(struct list_head *h, struct list_head *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static inline void list_del(struct list_head *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

static inline struct list_head *list_first(const struct list_head *h)
{
	return list_empty(h) ? NULL : h->next;
}

static inline struct list_head *list_last(const struct list_head *h)
{
	return list_empty(h) ? NULL : h->prev;
}

#endif
