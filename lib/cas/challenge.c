/* SPDX-License-Identifier: Apache-2.0 */
/* Outstanding attestation challenges: in memory (a restart only makes the
 * runtimes that were mid-attestation ask again), single use, short-lived,
 * bounded in number. Open addressing on the challenge's first bytes (they
 * are random), linear probing, deletion by backward shift. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cas/cas.h"
#include "core/xalloc.h"

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
	return t;
}

void sc_cas_challenges_free(sc_cas_challenges *t)
{
	if (t == NULL)
		return;
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
	memcpy(&h, v, sizeof(h));
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

int sc_cas_challenge_issue(sc_cas_challenges *t, uint64_t now_ms, uint8_t out[SC_CAS_CHALLENGE_BYTES],
                           sconify_error_t *err)
{
	if (t->count >= t->max)
		purge_expired(t, now_ms);
	if (t->count >= t->max)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "too many outstanding challenges (%zu)", t->max);
	uint8_t v[SC_CAS_CHALLENGE_BYTES];
	if (RAND_bytes(v, sizeof(v)) != 1)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "no random bytes for a challenge");
	size_t i = home(t, v);
	while (t->slots[i].used)
		i = (i + 1) & (t->n_slots - 1);
	t->slots[i].used = true;
	memcpy(t->slots[i].value, v, sizeof(v));
	t->slots[i].expires_ms = now_ms + t->ttl_ms;
	t->count++;
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
	for (size_t i = home(t, challenge); t->slots[i].used; i = (i + 1) & (t->n_slots - 1)) {
		if (CRYPTO_memcmp(t->slots[i].value, challenge, SC_CAS_CHALLENGE_BYTES) != 0)
			continue;
		bool expired = t->slots[i].expires_ms <= now_ms;
		remove_at(t, i);
		if (expired)
			return sc_error(err, SCONIFY_ERR_AUTH, 0, "challenge expired");
		return 0;
	}
	return sc_error(err, SCONIFY_ERR_AUTH, 0, "challenge unknown or already used");
}
