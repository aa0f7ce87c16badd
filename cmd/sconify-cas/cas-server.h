/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sconify-cas: the configuration and attestation service (docs/cas.md,
 * docs/attestation.md). main.c parses options and sets up the identity and
 * the keys, http.c routes the REST calls on lib/httpd's hardened HTTPS
 * server, store.c keeps sessions and the audit log in SQLite (lib/store's
 * house settings and group-commit writer), provider.c verifies evidence.
 * Linux/POSIX: one event loop handles requests; every write goes to the
 * store's writer thread, which commits whatever queued while its last
 * COMMIT was in flight as one transaction (group commit). A reply that
 * acknowledges a write (a session change, a key release's audit row) is sent
 * from the write's completion, on the loop, after its COMMIT returned.
 */
#ifndef SC_CAS_SERVER_H
#define SC_CAS_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cas/cas.h"
#include "core/error.h"
#include "policy/policy.h"

typedef struct {
	const char *listen; /* ADDR:PORT */
	const char *data_dir;
	const char *db_key_file;     /* NULL: DIR/db.key */
	size_t max_body;             /* bytes of one request body */
	size_t max_header_bytes;     /* bytes of all request headers */
	size_t max_headers;          /* number of request headers */
	size_t max_connections;      /* open connections, all clients (clamped below RLIMIT_NOFILE) */
	size_t max_per_ip;           /* open connections from one address */
	unsigned request_timeout_ms; /* handshake + one whole request; also the keep-alive idle time */
	unsigned challenge_ttl_ms;
	size_t max_challenges;      /* used-set of challenges (attestations within one ttl) */
	bool allow_sim;             /* accept evidence of the sim provider at all */
	unsigned audit_flush_ms;    /* how often counted refusals are written */
	size_t max_audit_rows;      /* older audit rows are deleted past this */
	size_t max_client_sessions; /* sessions one identity may have created */
	size_t max_client_bytes;    /* sealed bytes of those sessions */
	size_t session_cache_bytes; /* decoded sessions kept in memory (LRU) */
} cas_options;

/* ---- store.c ---- */

typedef struct cas_store cas_store;

/* Opens (creating) DIR/cas.db with WAL and synchronous=FULL; checks that key
 * is the key the store was created with. */
int cas_store_open(const char *path, const uint8_t key[SC_CAS_DB_KEY_BYTES], cas_store **ret,
                   sconify_error_t *err);
/* Bytes of decoded sessions cas_store_get() keeps (LRU on name and row). */
void cas_store_set_cache(cas_store *s, size_t bytes);
void cas_store_free(cas_store *s);

/* A session as stored: the canonical policy (secret) and the values of the
 * secrets the CAS generated (secret). */
typedef struct {
	char *name;
	char hash[SC_POLICY_HASH_HEX + 1];
	char creator[SC_CAS_ID_HEX + 1];
	sc_policy *policy; /* with generated secrets' values set; read-only when from the store */
	/* private to store.c: */
	size_t refs;                         /* references beyond the first (the cache's) */
	size_t row_bytes;                    /* size of the sealed row */
	uint8_t row_tag[SC_CAS_NONCE_BYTES]; /* the row's nonce: a rewritten row has another */
	char *yaml;                          /* canonical text, made once (secret) */
	size_t yaml_len;
} cas_session;

void cas_session_free(cas_session *s);
SC_DEFINE_CLEANUP(cas_session *, cas_session_free)
#define cleanup_cas_session _cleanup_(cas_session_freep)

/* NOT_FOUND when there is no such session; INTEGRITY when its row does not
 * verify under the database key. The session may be shared with the cache:
 * do not change it; cas_session_free() it. */
int cas_store_get(cas_store *s, const char *name, cas_session **ret, sconify_error_t *err);
/* Whether sessions exist below namespace ns ("ns/..."). */
int cas_store_has_children(cas_store *s, const char *ns, bool *ret, sconify_error_t *err);
/* The canonical text of a stored session, made once and kept with it. */
int cas_session_yaml(cas_session *sess, const char **ret, size_t *ret_len, sconify_error_t *err);
/* Sessions created by creator and the bytes of their sealed rows. */
int cas_store_usage(cas_store *s, const char *creator, size_t *ret_count, size_t *ret_bytes,
                    sconify_error_t *err);

typedef struct {
	const char *client; /* identity hash or "-" */
	const char *action; /* "session.create", "attest", ... */
	const char *target; /* session name or config id */
	const char *outcome;
	const char *detail; /* never a secret */
} cas_audit;

/* The synchronous writes, for use before cas_store_writer_start() (or after
 * cas_store_writer_stop()): abort while the writer thread runs.
 * Writes (or, with sess NULL, deletes name) and appends the audit entry in
 * one transaction; returns after COMMIT. */
int cas_store_put(cas_store *s, const char *name, const cas_session *sess, const cas_audit *audit,
                  sconify_error_t *err);
int cas_store_audit(cas_store *s, const cas_audit *audit, sconify_error_t *err);
/* Appends n entries in one transaction, then deletes the oldest rows past
 * max_rows (0: keep all). */
int cas_store_audit_many(cas_store *s, const cas_audit *a, size_t n, size_t max_rows, sconify_error_t *err);

/* Group commit (docs/cas.md, "The store"). A thread owns the write
 * connection; writes are submitted from the loop and each batch of them (all
 * that queued while the previous COMMIT ran) is one transaction, every write
 * in a savepoint of its own. When a batch has committed (or failed), the fd
 * given by cas_store_writer_start() becomes readable; the loop then calls
 * cas_store_writer_complete(), which runs each write's done callback on the
 * loop's thread with err NULL (committed: durable) or the write's error
 * (nothing of it was written). err belongs to the store. */
typedef struct cas_write cas_write;
typedef void (*cas_write_done_fn)(void *arg, sconify_error_t err);

typedef struct {
	size_t transactions, writes, max_batch;
	double commit_ms; /* time in the writer's transactions, fsync included */
} cas_writer_stats;

int cas_store_writer_start(cas_store *s, int *ret_fd, sconify_error_t *err);
/* As cas_store_put(), but queued; takes sess (NULL: delete name). The audit
 * entry's strings are copied. done may be NULL (errors go to stderr). */
void cas_store_put_async(cas_store *s, const char *name, cas_session *sess, const cas_audit *audit,
                         cas_write_done_fn done, void *arg);
/* As cas_store_audit_many() (n >= 1), but queued. */
void cas_store_audit_async(cas_store *s, const cas_audit *a, size_t n, size_t max_rows,
                           cas_write_done_fn done, void *arg);
void cas_store_writer_complete(cas_store *s);
/* Commits what is queued, stops the thread and runs the completions. */
void cas_store_writer_stop(cas_store *s);
void cas_store_writer_stats(cas_store *s, cas_writer_stats *ret);

/* ---- provider.c ---- */

typedef struct {
	const char *name;
	/* The TEE mode the evidence stands for: a policy accepts sim evidence
	 * only with `security.attestation.mode: sim'. */
	sc_policy_mode mode;
	/* Checks evidence and that it binds report_data; gives the measurement
	 * (lowercase hex) the policy's service must list. */
	int (*verify)(json_t *evidence, const uint8_t report_data[SC_CAS_REPORT_DATA_BYTES],
	              char ret_measurement[SC_POLICY_HASH_HEX + 1], sconify_error_t *err);
} cas_provider;

const cas_provider *cas_provider_find(const char *name);

/* ---- http.c ---- */

typedef struct cas_server cas_server;

int cas_server_run(const cas_options *o, cas_store *store, const char *cert_path, const char *key_path,
                   const char *key_hash, sconify_error_t *err);

#endif
