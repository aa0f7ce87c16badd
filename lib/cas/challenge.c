/* SPDX-License-Identifier: Apache-2.0 */
/* Attestation challenges, stateless on issue (docs/attestation.md):
 *   challenge = be64(issued_ms) || random (8) || HMAC-SHA256(k, first 16)[0..16)
 * k is random per table (per CAS process), so a restart only makes the
 * runtimes that were mid-attestation ask again. Issuing stores nothing, so a
 * client asking for challenges in a loop takes nothing from anyone else
 * (security review item 2). Single use comes from the used-set: a consumed
 * challenge is remembered until it expires; the set holds at most max
 * entries, and when it is full of unexpired ones consume fails with LIMIT
 * (refusing is the safe side: evicting would allow a replay). The set fills
 * only at the rate attestations are actually made, so max / ttl is the
 * attestation rate it supports (65536 / 30 s: 2184/s).
 * The used-set is open addressing on MAC bytes (keyed, so not chosen by a
 * client), linear probing, deletion by backward shift. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cas/cas.h"
#include "core/xalloc.h"

#define TS_BYTES 8
#define RAND_BYTES_ 8
#define MAC_OFF (TS_BYTES + RAND_BYTES_)
#define MAC_BYTES (SC_CAS_CHALLENGE_BYTES - MAC_OFF)

typedef struct {
	bool used;
	uint8_t value[SC_CAS_CHALLENGE_BYTES];
	uint64_t expires_ms;
} slot;

struct sc_cas_challenges {
	slot *slots;
	size_t n_slots; /* a power of two, at least twice max */
	size_t count, max;
	uint64_t ttl_ms;
	uint8_t key[32];
};

sc_cas_challenges *sc_cas_challenges_new(size_t max, uint64_t ttl_ms)
{
	sc_cas_challenges *t = xzalloc(sizeof(*t));
	t->max = max ? max : 1;
	t->n_slots = 16;
	while (t->n_slots < 2 * t->max)
		t->n_slots *= 2;
	t->slots = xcalloc(t->n_slots, sizeof(slot));
	t->ttl_ms = ttl_ms;
	if (RAND_bytes(t->key, sizeof(t->key)) != 1)
		abort(); /* a broken RNG: nothing to recover */
	return t;
}

void sc_cas_challenges_free(sc_cas_challenges *t)
{
	if (t == NULL)
		return;
	OPENSSL_cleanse(t->key, sizeof(t->key));
	free(t->slots);
	free(t);
}

size_t sc_cas_challenges_outstanding(const sc_cas_challenges *t)
{
	return t->count;
}

static size_t home(const sc_cas_challenges *t, const uint8_t *v)
{
	uint64_t h = 0;
	memcpy(&h, v + MAC_OFF, sizeof(h));
	return (size_t)(h & (t->n_slots - 1));
}

static void remove_at(sc_cas_challenges *t, size_t i)
{
	size_t mask = t->n_slots - 1;
	t->slots[i].used = false;
	t->count--;
	/* Backward shift: move later members of the run into the hole when their
	 * home position is not between the hole and themselves. */
	size_t hole = i;
	for (size_t j = (i + 1) & mask; t->slots[j].used; j = (j + 1) & mask) {
		size_t h = home(t, t->slots[j].value);
		bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
		if (stays)
			continue;
		t->slots[hole] = t->slots[j];
		t->slots[j].used = false;
		hole = j;
	}
}

static void purge_expired(sc_cas_challenges *t, uint64_t now_ms)
{
	for (size_t i = 0; i < t->n_slots;) {
		if (t->slots[i].used && t->slots[i].expires_ms <= now_ms)
			remove_at(t, i); /* a shifted entry may now sit at i: look again */
		else
			i++;
	}
}

static void mac(const sc_cas_challenges *t, const uint8_t *v, uint8_t out[MAC_BYTES])
{
	uint8_t md[32];
	size_t n = 0;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, t->key, sizeof(t->key), v, MAC_OFF, md, sizeof(md),
	              &n) == NULL ||
	    n != sizeof(md))
		abort(); /* only allocation fails here */
	memcpy(out, md, MAC_BYTES);
}

int sc_cas_challenge_issue(sc_cas_challenges *t, uint64_t now_ms, uint8_t out[SC_CAS_CHALLENGE_BYTES],
                           sconify_error_t *err)
{
	uint8_t v[SC_CAS_CHALLENGE_BYTES];
	for (int i = 0; i < TS_BYTES; i++)
		v[i] = (uint8_t)(now_ms >> (8 * (TS_BYTES - 1 - i)));
	if (RAND_bytes(v + TS_BYTES, RAND_BYTES_) != 1)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "no random bytes for a challenge");
	mac(t, v, v + MAC_OFF);
	memcpy(out, v, sizeof(v));
	return 0;
}

int sc_cas_challenge_consume(sc_cas_challenges *t, uint64_t now_ms, const uint8_t *challenge, size_t len,
                             sconify_error_t *err)
{
	if (len != SC_CAS_CHALLENGE_BYTES)
		return sc_error(err, SCONIFY_ERR_AUTH, 0,
		                "challenge unknown or already used (%zu bytes, not %d)", len,
		                SC_CAS_CHALLENGE_BYTES);
	uint8_t m[MAC_BYTES];
	mac(t, challenge, m);
	if (CRYPTO_memcmp(m, challenge + MAC_OFF, MAC_BYTES) != 0)
		return sc_error(err, SCONIFY_ERR_AUTH, 0, "challenge unknown or already used");
	uint64_t issued = 0;
	for (int i = 0; i < TS_BYTES; i++)
		issued = issued << 8 | challenge[i];
	if (issued > now_ms || now_ms - issued >= t->ttl_ms)
		return sc_error(err, SCONIFY_ERR_AUTH, 0, "challenge expired");
	size_t i = home(t, challenge);
	for (; t->slots[i].used; i = (i + 1) & (t->n_slots - 1))
		if (CRYPTO_memcmp(t->slots[i].value, challenge, SC_CAS_CHALLENGE_BYTES) == 0)
			return sc_error(err, SCONIFY_ERR_AUTH, 0, "challenge unknown or already used");
	if (t->count >= t->max) {
		purge_expired(t, now_ms);
		if (t->count >= t->max)
			return sc_error(err, SCONIFY_ERR_LIMIT, 0,
			                "too many attestations in flight (%zu within the challenge lifetime)",
			                t->max);
		i = home(t, challenge);
		while (t->slots[i].used)
			i = (i + 1) & (t->n_slots - 1);
	}
	t->slots[i].used = true;
	memcpy(t->slots[i].value, challenge, SC_CAS_CHALLENGE_BYTES);
	t->slots[i].expires_ms = issued + t->ttl_ms;
	t->count++;
	return 0;
}
