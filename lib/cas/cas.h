/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CAS protocol and store primitives (docs/attestation.md, docs/cas.md):
 * the parts both sides need, or that can be tested without a server.
 *
 * Owns: the report data that binds a challenge to an ephemeral public key,
 * the envelope that carries a service's configuration to that key (ECDH with
 * X25519 or P-256, HKDF-SHA256, AES-256-GCM), the binary encoding of the
 * configuration, sealing of store rows under the database key, the access
 * decisions of `access_policy', config ids, and the table of outstanding
 * challenges.
 *
 * Depends on lib/core, lib/policy's model (policy.c, no hashing) and OpenSSL
 * only: no libevent, no SQLite, no jansson, so that the static runtime can
 * link attest.c and config.c for its agent.
 */
#ifndef SC_CAS_H
#define SC_CAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "policy/policy.h"

/* ---- attestation messages (attest.c) ------------------------------------ */

#define SC_CAS_CHALLENGE_BYTES 32
#define SC_CAS_REPORT_DATA_BYTES 32 /* SHA-256 */
#define SC_CAS_X25519_BYTES 32      /* raw public key */
#define SC_CAS_P256_BYTES 65        /* SEC1 uncompressed point: 04 || x || y */
#define SC_CAS_NONCE_BYTES 12
#define SC_CAS_TAG_BYTES 16

typedef enum {
	SC_CAS_KEY_X25519 = 0,
	SC_CAS_KEY_P256,
} sc_cas_key_type;

/* report_data = SHA-256(challenge || public key bytes): what the evidence of
 * every provider must carry, so that the configuration can only be opened by
 * the holder of the key that was attested for this challenge. */
void sc_cas_report_data(const uint8_t *challenge, size_t challenge_len, const uint8_t *pub, size_t pub_len,
                        uint8_t out[SC_CAS_REPORT_DATA_BYTES]);

/* A fresh ephemeral key pair (the runtime's side) and its public bytes
 * (32 for X25519, 65 for P-256). */
int sc_cas_keypair_new(sc_cas_key_type type, EVP_PKEY **ret_key, uint8_t **ret_pub, size_t *ret_pub_len,
                       sconify_error_t *err);

/* Reads public key bytes: 32 bytes are X25519, 65 bytes starting with 04 a
 * P-256 point (checked to be on the curve); anything else is INVALID. */
int sc_cas_public_key_parse(const uint8_t *pub, size_t len, EVP_PKEY **ret, sconify_error_t *err);

/* What the CAS returns: its own ephemeral public key (same type as the
 * client's), the nonce and the ciphertext with the 16-byte tag appended. */
typedef struct {
	uint8_t *server_pub;
	size_t server_pub_len;
	uint8_t nonce[SC_CAS_NONCE_BYTES];
	uint8_t *ciphertext; /* ciphertext || tag */
	size_t ciphertext_len;
} sc_cas_envelope;

void sc_cas_envelope_clear(sc_cas_envelope *e);
#define cleanup_cas_envelope _cleanup_(sc_cas_envelope_clear)

/* Encrypts plain to the client's ephemeral public key client_pub. challenge
 * is the salt of the key derivation and config_id the AAD, so an envelope
 * opens only for the attestation it answers (docs/attestation.md). */
int sc_cas_envelope_seal(const uint8_t *client_pub, size_t client_pub_len, const uint8_t *challenge,
                         size_t challenge_len, const char *config_id, const void *plain, size_t plain_len,
                         sc_cas_envelope *ret, sconify_error_t *err);

/* The runtime's side: opens an envelope with its ephemeral private key. The
 * plaintext is secret: wipe it (sc_policy_wipe()) before freeing it. */
int sc_cas_envelope_open(EVP_PKEY *key, const uint8_t *challenge, size_t challenge_len, const char *config_id,
                         const sc_cas_envelope *e, uint8_t **ret_plain, size_t *ret_len,
                         sconify_error_t *err);

/* ---- the configuration a release carries (config.c) --------------------- */

#define SC_CAS_CONFIG_MAX_BYTES (64u << 20)

/* Encodes a resolved service configuration (binary, length-prefixed:
 * docs/attestation.md). The result is secret: wipe before freeing. */
void sc_cas_config_encode(const char *config_id, const char *session_hash, const sc_policy_config *c,
                          uint8_t **ret, size_t *ret_len);

typedef struct {
	char *config_id;
	char *session_hash;
	sc_policy_config *config;
} sc_cas_config;

/* Decodes and checks what sc_cas_config_encode() wrote; every length is
 * checked against what is left, strings may not hold NUL (file contents
 * may), at most SC_POLICY_MAX_ARGS arguments, SC_POLICY_MAX_ENV entries and
 * SC_POLICY_MAX_FILES files. */
int sc_cas_config_decode(const uint8_t *data, size_t len, sc_cas_config **ret, sconify_error_t *err);
void sc_cas_config_free(sc_cas_config *c);
SC_DEFINE_CLEANUP(sc_cas_config *, sc_cas_config_free)
#define cleanup_cas_config _cleanup_(sc_cas_config_freep)

/* ---- sealing store rows (seal.c) ---------------------------------------- */

#define SC_CAS_DB_KEY_BYTES 32
/* version byte || nonce || ciphertext || tag */
#define SC_CAS_SEAL_OVERHEAD (1 + SC_CAS_NONCE_BYTES + SC_CAS_TAG_BYTES)

/* AES-256-GCM under the database key with a random nonce; aad binds the row
 * (table, key and the row's other columns: docs/cas.md). */
void sc_cas_seal(const uint8_t key[SC_CAS_DB_KEY_BYTES], const void *aad, size_t aad_len, const void *plain,
                 size_t plain_len, uint8_t **ret, size_t *ret_len);
/* Fails with INTEGRITY ("sealed value ... does not verify") when a byte of the
 * row or its AAD changed. what names the row in the message. The plaintext
 * is NUL-terminated (not counted in *ret_len) and secret. */
int sc_cas_unseal(const uint8_t key[SC_CAS_DB_KEY_BYTES], const void *aad, size_t aad_len,
                  const uint8_t *sealed, size_t sealed_len, const char *what, uint8_t **ret, size_t *ret_len,
                  sconify_error_t *err);

/* ---- access decisions (access.c) ---------------------------------------- */

/* A client identity: lowercase hex SHA-256 of the DER SubjectPublicKeyInfo
 * of its certificate's key. NULL: a client without a certificate. */
#define SC_CAS_ID_HEX 64

/* Whether client may do what entries (an access_policy list: CREATOR, ANY,
 * NONE or key hashes) allow on a session created by creator. A client
 * without an identity is only let in by ANY. */
bool sc_cas_access_allowed(char *const *entries, size_t n, const char *creator, const char *client);

/* Whether p holds anything only attested services may have: a volume key
 * (fspf_key), a secret (given or generated by the CAS) or injected files. */
bool sc_cas_policy_holds_secrets(const sc_policy *p);

/* The decision the CAS makes on a stored session p: as
 * sc_cas_access_allowed() on one of p's lists, except that ANY lets a client
 * in only while p holds no secret; a session that does is open to CREATOR
 * and the key hashes listed, whatever else the list says (docs/cas.md,
 * "Sessions: rules"). */
bool sc_cas_session_access(const sc_policy *p, char *const *entries, size_t n, const char *creator,
                           const char *client);

/* Checks an uploaded policy's access lists: INVALID ("lists ANY, but the
 * session holds ...", naming the part, never a value) when `read' or
 * `update' lists ANY while p holds a secret. */
int sc_cas_check_access_policy(const sc_policy *p, sconify_error_t *err);

/* Splits "[ns/]session/service" at its last `/'. Both parts must be valid
 * names (docs/policy.md). */
int sc_cas_parse_config_id(const char *id, char **ret_session, char **ret_service, sconify_error_t *err);

/* The namespace of a session name: everything before the last `/', NULL for
 * a top-level session. */
char *sc_cas_session_namespace(const char *name);

/* ---- outstanding challenges (challenge.c) ------------------------------- */

typedef struct sc_cas_challenges sc_cas_challenges;

/* Challenges are stateless on issue: time || random || HMAC under a key the
 * table draws at creation (docs/attestation.md). max bounds the used-set
 * (challenges consumed and not yet expired), ttl_ms the lifetime. */
sc_cas_challenges *sc_cas_challenges_new(size_t max, uint64_t ttl_ms);
void sc_cas_challenges_free(sc_cas_challenges *t);
SC_DEFINE_CLEANUP(sc_cas_challenges *, sc_cas_challenges_free)

/* Issues a fresh challenge at now_ms (a monotonic clock). Stores nothing and
 * never fails for a limit: a flood of issues takes nothing from anyone. */
int sc_cas_challenge_issue(sc_cas_challenges *t, uint64_t now_ms, uint8_t out[SC_CAS_CHALLENGE_BYTES],
                           sconify_error_t *err);
/* Checks the MAC and expiry and records the challenge as used (single use):
 * fails with AUTH when it was not issued by this table or is already used
 * ("unknown or already used") or has expired ("expired"), with LIMIT ("too
 * many attestations in flight") when max unexpired challenges are used. */
int sc_cas_challenge_consume(sc_cas_challenges *t, uint64_t now_ms, const uint8_t *challenge, size_t len,
                             sconify_error_t *err);
/* Entries of the used-set. */
size_t sc_cas_challenges_outstanding(const sc_cas_challenges *t);

#endif
