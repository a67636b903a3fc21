/*
 * cancel.h - cancel keys and CancelRequests.
 *
 * Every client gets a BackendKeyData of pgsluice's own: the process id half
 * carries the instance slot of this pgsluice process (bits 24-29; 0 unless
 * so_reuseport is on) and a per-client counter, the key half is random. A
 * CancelRequest is sent to the server running the client's query on a fresh
 * connection, without blocking. With so_reuseport a cancel may reach another
 * process of the group: it is passed on, unchanged, to the process whose
 * slot the key names, through that process's peer socket (listener.c).
 */
#ifndef PGSLUICE_CANCEL_H
#define PGSLUICE_CANCEL_H

#include <stdint.h>

#include "worker.h"

/* Instance slots a group of processes sharing a port can use. */
#define CANCEL_SLOTS 64

/* The instance slot a cancel key's process id half names. */
static inline uint32_t cancel_key_slot(uint32_t pid)
{
	return (pid >> 24) & (CANCEL_SLOTS - 1);
}

/* Allocates the key table; false when out of memory. */
bool cancel_init(struct worker *w);

/* Closes pending requests and frees the table. */
void cancel_destroy(struct worker *w);

/* Registers c under a fresh cancel key (unique in this process). */
void cancel_register(struct worker *w, struct client *c);

/* Forgets c's cancel key. */
void cancel_unregister(struct worker *w, struct client *c);

/* The client owning the key, or NULL. */
struct client *cancel_find(struct worker *w, uint32_t pid, uint32_t key);

/* Sends a CancelRequest for server's running query, without blocking. */
void cancel_server_query(struct worker *w, struct server *server);

/*
 * Passes a CancelRequest on to the process of the group that owns slot
 * (so_reuseport); a slot no process holds is logged and dropped.
 */
void cancel_forward_to_peer(struct worker *w, uint32_t slot, uint32_t pid, uint32_t key);

/* Gives up requests older than server_connect_timeout (janitor). */
void cancel_expire(struct worker *w, ev_tstamp now);

#endif
