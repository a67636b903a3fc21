/*
 * scramkeys.c - the ClientKeys clients proved, by StoredKey (scramkeys.h).
 *
 * Open addressing with linear probing over a fixed table: StoredKeys are SHA-256
 * output, so their first bytes are a good hash. A full probe run displaces the
 * slot the key hashes to.
 */
#include "scramkeys.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* How far a lookup probes from the home slot. */
#define SCRAMKEYS_PROBES 16

struct scramkeys_slot {
	bool used;
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t client_key[SCRAM_KEY_LEN];
};

struct scramkeys {
	struct scramkeys_slot slots[SCRAMKEYS_SLOTS];
};

static size_t scramkeys_home(const uint8_t stored_key[SCRAM_KEY_LEN])
{
	size_t h = (size_t)stored_key[0] | (size_t)stored_key[1] << 8 | (size_t)stored_key[2] << 16;
	return h & (SCRAMKEYS_SLOTS - 1);
}

bool scramkeys_learn(struct scramkeys **keys, const uint8_t client_key[SCRAM_KEY_LEN])
{
	uint8_t stored_key[SCRAM_KEY_LEN];
	unsigned int len = 0;
	if (EVP_Digest(client_key, SCRAM_KEY_LEN, stored_key, &len, EVP_sha256(), NULL) != 1 ||
	    len != SCRAM_KEY_LEN)
		return false;
	if (*keys == NULL) {
		*keys = calloc(1, sizeof(**keys));
		if (*keys == NULL)
			return false;
	}
	size_t home = scramkeys_home(stored_key);
	struct scramkeys_slot *slot = &(*keys)->slots[home];
	for (size_t i = 0; i < SCRAMKEYS_PROBES; i++) {
		struct scramkeys_slot *s = &(*keys)->slots[(home + i) & (SCRAMKEYS_SLOTS - 1)];
		if (!s->used || memcmp(s->stored_key, stored_key, SCRAM_KEY_LEN) == 0) {
			slot = s;
			break;
		}
	}
	slot->used = true;
	memcpy(slot->stored_key, stored_key, SCRAM_KEY_LEN);
	memcpy(slot->client_key, client_key, SCRAM_KEY_LEN);
	return true;
}

bool scramkeys_find(const struct scramkeys *keys, const uint8_t stored_key[SCRAM_KEY_LEN],
		    uint8_t out[SCRAM_KEY_LEN])
{
	if (keys == NULL)
		return false;
	size_t home = scramkeys_home(stored_key);
	for (size_t i = 0; i < SCRAMKEYS_PROBES; i++) {
		const struct scramkeys_slot *s = &keys->slots[(home + i) & (SCRAMKEYS_SLOTS - 1)];
		if (!s->used)
			return false;
		if (memcmp(s->stored_key, stored_key, SCRAM_KEY_LEN) == 0) {
			memcpy(out, s->client_key, SCRAM_KEY_LEN);
			return true;
		}
	}
	return false;
}

void scramkeys_free(struct scramkeys *keys)
{
	if (keys == NULL)
		return;
	OPENSSL_cleanse(keys, sizeof(*keys));
	free(keys);
}
