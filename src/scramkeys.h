/*
 * scramkeys.h - SCRAM pass-through: the ClientKeys clients proved, for logging in to servers.
 *
 * When the auth file (or auth_query) holds only a user's SCRAM secret, pgsluice has no
 * password to log in to servers with. A client's SCRAM proof reveals its ClientKey, and
 * ClientKey with the secret's ServerKey is all a SCRAM client needs, provided the server
 * holds the same secret (salt and iterations). The keys are kept by StoredKey = H(ClientKey),
 * so a changed secret simply finds nothing. Bounded; an old key may be displaced, and the
 * user's next client login brings it back.
 */
#ifndef PGSLUICE_SCRAMKEYS_H
#define PGSLUICE_SCRAMKEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "scram.h"

/* Slots of the table; a power of two. */
#define SCRAMKEYS_SLOTS 4096

struct scramkeys;

/*
 * Remembers a ClientKey a client proved.
 * keys: the table, made on first use (*keys NULL before).
 * client_key: the ClientKey; its StoredKey is computed here.
 * Returns false when out of memory (nothing is kept).
 */
bool scramkeys_learn(struct scramkeys **keys, const uint8_t client_key[SCRAM_KEY_LEN]);

/*
 * The ClientKey whose StoredKey is stored_key.
 * keys: the table, or NULL.
 * out: receives the ClientKey.
 * Returns false when no client with this secret has logged in yet.
 */
bool scramkeys_find(const struct scramkeys *keys, const uint8_t stored_key[SCRAM_KEY_LEN],
		    uint8_t out[SCRAM_KEY_LEN]);

/* Wipes and frees the table (NULL is fine). */
void scramkeys_free(struct scramkeys *keys);

#endif
