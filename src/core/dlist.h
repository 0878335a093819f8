/* dlist.h: an intrusive doubly-linked list whose nodes carry next and prev pointers of their
 * own type and whose head is a plain pointer (the servers' connection lists): one copy of the
 * push and the unlink. Macros because every list has its own node type. */
#ifndef IPLOCK_CORE_DLIST_H
#define IPLOCK_CORE_DLIST_H

/* e becomes the first node of the list at head. */
#define DLIST_PUSH(head, e)                             \
	do {                                            \
		(e)->prev = NULL;                       \
		(e)->next = (head);                     \
		if (head)                               \
			(head)->prev = (e);             \
		(head) = (e);                           \
	} while (0)

/* e leaves the list at head (its own pointers are left as they were). */
#define DLIST_UNLINK(head, e)                           \
	do {                                            \
		if ((e)->prev)                          \
			(e)->prev->next = (e)->next;    \
		else                                    \
			(head) = (e)->next;             \
		if ((e)->next)                          \
			(e)->next->prev = (e)->prev;    \
	} while (0)

#endif
