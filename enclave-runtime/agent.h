/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attestation agent: obtains the service configuration from sconify-cas
 * (docs/attestation.md) instead of a session file. Over TLS to the CAS whose
 * public key hash the image pins (SCONE_CAS_KEY_HASH), it asks for a fresh
 * challenge, sends evidence from the sim provider (the measurement it claims
 * and report data binding the challenge to an ephemeral X25519 key), opens
 * the configuration the CAS encrypted to that key and turns it into the same
 * sc_rt_session the session file gives.
 *
 * Owns: the CAS address, the pin check, a minimal HTTP/1.1 client (one POST
 * per connection, Content-Length answers only, every read capped and under a
 * deadline), the retries with bounded exponential backoff, and the mapping
 * of a released configuration onto sc_rt_session.
 *
 * The measurement is a claim: what the runtime computes covers the command,
 * environment and shield pin the CAS has not released yet (and an encrypted
 * executable it cannot read yet), so the agent sends the value the image
 * states and the runtime, once the configuration is there, measures what
 * it is about to run and starts it only when the two agree
 * (sc_rt_launch_check against the session's one accepted value).
 *
 * Trust on first use never happens here: without a pin the agent refuses,
 * unless SCONIFY_CAS_INSECURE=1 says so explicitly (tests, development).
 */
#ifndef SC_RT_AGENT_H
#define SC_RT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cas/cas.h"
#include "core/error.h"
#include "session.h"

#define SC_RT_AGENT_DEFAULT_PORT "8081" /* SCONE's CAS port */
#define SC_RT_AGENT_DEFAULT_TRIES 6
#define SC_RT_AGENT_MAX_TRIES 100
#define SC_RT_AGENT_FIRST_DELAY_MS 250 /* doubled after each failed try ... */
#define SC_RT_AGENT_MAX_DELAY_MS 4000  /* ... up to this */
#define SC_RT_AGENT_TIMEOUT_MS 10000   /* one try: connect, handshake, request, answer */
#define SC_RT_AGENT_MAX_HEADER (16u << 10)
/* The attest answer: the configuration in base64 with its JSON around it. */
#define SC_RT_AGENT_MAX_BODY ((size_t)SC_CAS_CONFIG_MAX_BYTES / 3 * 4 + (64u << 10))

typedef struct {
	char *host; /* without brackets for IPv6 */
	char *port;
} sc_rt_agent_addr;

/* Parses SCONE_CAS_ADDR: `host', `host:port', `[v6]', `[v6]:port', each
 * optionally as `https://...' with a trailing `/'. */
int sc_rt_agent_addr_parse(const char *s, sc_rt_agent_addr *ret, sconify_error_t *err);
void sc_rt_agent_addr_clear(sc_rt_agent_addr *a);

typedef void (*sc_rt_agent_log_fn)(void *userdata, const char *msg);

typedef struct {
	const char *addr;      /* SCONE_CAS_ADDR, as given */
	const char *config_id; /* SCONE_CONFIG_ID */
	/* Lowercase hex SHA-256 of the CAS's SubjectPublicKeyInfo (DER); NULL
	 * only with insecure. */
	const char *key_hash;
	bool insecure;
	const char *measurement; /* the claim, 64 lowercase hex digits */
	unsigned tries;          /* attempts in all, >= 1 */
	unsigned first_delay_ms; /* backoff before the second try, then doubled */
	unsigned timeout_ms;     /* per try */
	sc_rt_agent_log_fn log;  /* one line per failed try; may be NULL */
	void *userdata;
} sc_rt_agent_options;

/* Fills o from the environment: SCONE_CAS_ADDR, SCONE_CONFIG_ID,
 * SCONE_CAS_KEY_HASH, SCONIFY_CAS_INSECURE, SCONE_MEASUREMENT and
 * SCONIFY_CAS_RETRIES. The strings stay the environment's. Fails (USAGE or
 * AUTH for a missing pin) with what to set. */
int sc_rt_agent_options_from_env(sc_rt_agent_options *o, sconify_error_t *err);

/* Attests to the CAS, retrying what is worth retrying (NETWORK: no
 * connection, a dropped one, a timeout, 429, 5xx, a challenge that expired
 * or a CAS that restarted) with backoff, and returns the released
 * configuration as a session whose one accepted measurement is the claim.
 * A refusal (AUTH, NOT_FOUND, INVALID: 4xx, a pin mismatch, an answer that
 * does not open) ends at once. */
int sc_rt_agent_fetch(const sc_rt_agent_options *o, sc_rt_session **ret, sconify_error_t *err);

/* One try, no retry: the building block of sc_rt_agent_fetch(). */
int sc_rt_agent_attest_once(const sc_rt_agent_options *o, const sc_rt_agent_addr *addr, sc_rt_session **ret,
                            sconify_error_t *err);

/* The session a released configuration describes: checks that it was
 * released for config_id, normalises the paths as the session file does
 * and takes the claim as the one accepted measurement. */
int sc_rt_agent_session_from_config(const sc_cas_config *c, const char *config_id, const char *measurement,
                                    sc_rt_session **ret, sconify_error_t *err);

/* Parses an HTTP/1.1 answer's head (status line and headers, up to the
 * blank line; head_len includes it). *ret_length: Content-Length, which
 * must be present once, digits only, at most max_body. */
int sc_rt_agent_parse_head(const char *head, size_t head_len, size_t max_body, int *ret_status,
                           size_t *ret_length, sconify_error_t *err);

#endif
