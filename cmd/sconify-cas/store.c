/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store (docs/cas.md): SQLite in WAL mode with synchronous=FULL, so a
 * COMMIT that returned survives kill -9 and power loss. Every session row is
 * sealed under the database key with AAD = "sessions" || name || hash ||
 * creator: a changed byte anywhere in the row, or a row moved to another name,
 * fails to open instead of giving garbage. The audit log is plain (it never
 * holds a secret) and written in the same transaction as the change it records.
 *
 * Decoded sessions are cached (review item 5): an LRU keyed by name, whose
 * entries hold the row's hash, creator, size and seal nonce; a row rewritten
 * in any way has another nonce and is decoded again. The cache is bounded by
 * an estimate of its memory (three times the sealed bytes per entry).
 *
 * An I/O error from SQLite (a failed fsync among them) ends the process: a
 * retried fsync can report success for lost data (review item 15).
 *
 * Two connections: the loop's reads only (it and the cache belong to the
 * loop's thread); every write goes through the other, owned by the writer
 * thread once cas_store_writer_start() ran. The writer is lib/store's group
 * commit: it commits what queued while its previous COMMIT was in flight as
 * one transaction (docs/cas.md) and hands the finished writes back through a
 * pipe; their done callbacks run on the loop, in cas_store_writer_complete().
 */
#include <sys/queue.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cas-server.h"
#include "core/buf.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "policy/policy-internal.h"
#include "store/writer.h"

#define KEY_CHECK "sconify-cas database key check v1"

#define CACHE_BUCKETS 4096

typedef struct centry {
	cas_session *sess;
	struct centry *hnext;
	TAILQ_ENTRY(centry) lru;
	size_t cost;
} centry;

struct cas_store {
	sqlite3 *db;             /* the loop's connection: reads only */
	sqlite3 *wdb;            /* every write; the writer thread's once it runs */
	sc_store_writer *writer; /* group commit, between _writer_start() and _writer_stop() */
	cas_writer_stats stats;  /* of the last writer, once stopped */
	uint8_t key[SC_CAS_DB_KEY_BYTES];
	centry *buckets[CACHE_BUCKETS];
	TAILQ_HEAD(centry_head_unused, centry) lru; /* most recent first */
	size_t cache_bytes, cache_max;
};

static void cas_fatal(const char *message)
{
	fprintf(stderr, "sconify-cas: fatal: %s\n", message);
	_exit(70);
}

static size_t bucket_of(const char *name)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return (size_t)(h % CACHE_BUCKETS);
}

static centry *cache_find(cas_store *s, const char *name)
{
	for (centry *e = s->buckets[bucket_of(name)]; e; e = e->hnext)
		if (strcmp(e->sess->name, name) == 0)
			return e;
	return NULL;
}

static void cache_drop(cas_store *s, centry *e)
{
	centry **pp = &s->buckets[bucket_of(e->sess->name)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	TAILQ_REMOVE(&s->lru, e, lru);
	s->cache_bytes -= e->cost;
	cas_session_free(e->sess);
	free(e);
}

static void cache_forget(cas_store *s, const char *name)
{
	centry *e = cache_find(s, name);
	if (e)
		cache_drop(s, e);
}

static void cache_add(cas_store *s, cas_session *sess)
{
	size_t cost = 3 * sess->row_bytes + 1024;
	if (cost > s->cache_max)
		return;
	cache_forget(s, sess->name);
	while (s->cache_bytes + cost > s->cache_max && !TAILQ_EMPTY(&s->lru))
		cache_drop(s, TAILQ_LAST(&s->lru, centry_head_unused));
	centry *e = xzalloc(sizeof(*e));
	e->sess = sess;
	sess->refs++;
	e->cost = cost;
	size_t b = bucket_of(sess->name);
	e->hnext = s->buckets[b];
	s->buckets[b] = e;
	TAILQ_INSERT_HEAD(&s->lru, e, lru);
	s->cache_bytes += cost;
}

void cas_store_set_cache(cas_store *s, size_t bytes)
{
	s->cache_max = bytes;
	while (s->cache_bytes > s->cache_max && !TAILQ_EMPTY(&s->lru))
		cache_drop(s, TAILQ_LAST(&s->lru, centry_head_unused));
}

void cas_store_free(cas_store *s)
{
	if (s == NULL)
		return;
	cas_store_writer_stop(s);
	cas_store_set_cache(s, 0);
	sqlite3_close(s->db);
	sqlite3_close(s->wdb);
	OPENSSL_cleanse(s->key, sizeof(s->key));
	free(s);
}
SC_DEFINE_CLEANUP(cas_store *, cas_store_free)

static int check_key(cas_store *s, sconify_error_t *err)
{
	static const char aad[] = "meta\0key_check";
	cleanup_stmt sqlite3_stmt *st = NULL;
	if (sc_store_prepare(s->wdb, "SELECT value FROM meta WHERE key = 'key_check'", &st, err) < 0)
		return -1;
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		cleanup_free uint8_t *plain = NULL;
		size_t len = 0;
		if (sc_cas_unseal(s->key, aad, sizeof(aad), sqlite3_column_blob(st, 0),
		                  (size_t)sqlite3_column_bytes(st, 0), "meta.key_check", &plain, &len,
		                  err) < 0)
			return sc_error_wrap(err,
			                     "the database key is not the one this store was created with");
		if (len != strlen(KEY_CHECK) || memcmp(plain, KEY_CHECK, len) != 0)
			return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "store: key check holds other bytes");
		return 0;
	}
	if (r != SQLITE_DONE)
		return sc_store_error(s->wdb, "reading meta", err);
	cleanup_free uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	sc_cas_seal(s->key, aad, sizeof(aad), KEY_CHECK, strlen(KEY_CHECK), &sealed, &sealed_len);
	cleanup_stmt sqlite3_stmt *ins = NULL;
	if (sc_store_prepare(s->wdb, "INSERT INTO meta(key, value) VALUES ('key_check', ?)", &ins, err) < 0)
		return -1;
	sqlite3_bind_blob(ins, 1, sealed, (int)sealed_len, SQLITE_STATIC);
	if (sqlite3_step(ins) != SQLITE_DONE)
		return sc_store_error(s->wdb, "writing meta", err);
	return 0;
}

int cas_store_open(const char *path, const uint8_t key[SC_CAS_DB_KEY_BYTES], cas_store **ret,
                   sconify_error_t *err)
{
	_cleanup_(cas_store_freep) cas_store *s = xzalloc(sizeof(*s));
	TAILQ_INIT(&s->lru);
	memcpy(s->key, key, SC_CAS_DB_KEY_BYTES);
	/* An I/O error ends the process (review item 15), naming it. */
	sc_store_set_fatal_handler(cas_fatal);
	/* WAL + FULL: a commit is on disk (WAL fsynced) before COMMIT returns. */
	if (sc_store_open(path, 0, &s->wdb, err) < 0)
		return -1;
	if (sc_store_exec(s->wdb,
	                  "BEGIN IMMEDIATE;"
	                  "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
	                  "CREATE TABLE IF NOT EXISTS sessions(name TEXT PRIMARY KEY, hash TEXT NOT NULL,"
	                  " creator TEXT NOT NULL, sealed BLOB NOT NULL, created INTEGER NOT NULL,"
	                  " updated INTEGER NOT NULL);"
	                  "CREATE INDEX IF NOT EXISTS sessions_creator ON sessions(creator);"
	                  "CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT "
	                  "NOT NULL,"
	                  " client TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT "
	                  "NOT NULL,"
	                  " detail TEXT NOT NULL);",
	                  err) < 0)
		return sc_error_wrap(err, "opening the store");
	if (check_key(s, err) < 0) {
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (sc_store_exec(s->wdb, "COMMIT", err) < 0)
		return -1;
	/* The loop's connection only reads: each statement sees what was
	 * committed when it started (WAL readers do not wait for the writer). */
	if (sc_store_open(path, SC_STORE_READ_ONLY, &s->db, err) < 0)
		return sc_error_wrap(err, "opening the store");
	*ret = steal_pointer(&s);
	return 0;
}

void cas_session_free(cas_session *s)
{
	if (s == NULL)
		return;
	if (s->refs > 0) {
		s->refs--;
		return;
	}
	if (s->yaml)
		sc_policy_wipe_free(s->yaml);
	free(s->name);
	sc_policy_free(s->policy);
	free(s);
}

static void aad_session(sc_buf *b, const char *name, const char *hash, const char *creator)
{
	sc_buf_puts(b, "sessions");
	sc_buf_putc(b, 0);
	sc_buf_puts(b, name);
	sc_buf_putc(b, 0);
	sc_buf_puts(b, hash);
	sc_buf_putc(b, 0);
	sc_buf_puts(b, creator);
}

static void put_be32(sc_wbuf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	sc_wbuf_append(b, x, 4);
}

static bool get_bytes(const uint8_t **p, size_t *left, const uint8_t **ret, size_t *ret_len)
{
	if (*left < 4)
		return false;
	size_t n = (size_t)(*p)[0] << 24 | (size_t)(*p)[1] << 16 | (size_t)(*p)[2] << 8 | (*p)[3];
	if (n > *left - 4)
		return false;
	*ret = *p + 4;
	*ret_len = n;
	*p += 4 + n;
	*left -= 4 + n;
	return true;
}

/* sealed plaintext = str(canonical policy) || be32(n) || (str(name) || str(value)) * n
 * for the n generated secrets that have a value. */
static void encode_row(const sc_policy *p, const char *yaml, size_t yaml_len, uint8_t **ret, size_t *ret_len)
{
	_cleanup_(sc_wbuf_free) sc_wbuf b = {0};
	put_be32(&b, (uint32_t)yaml_len);
	sc_wbuf_append(&b, yaml, yaml_len);
	uint32_t n = 0;
	for (size_t i = 0; i < p->n_secrets; i++)
		n += p->secrets[i].generated && p->secrets[i].value;
	put_be32(&b, n);
	for (size_t i = 0; i < p->n_secrets; i++) {
		const sc_policy_secret *sec = &p->secrets[i];
		if (!sec->generated || !sec->value)
			continue;
		put_be32(&b, (uint32_t)strlen(sec->name));
		sc_wbuf_append(&b, sec->name, strlen(sec->name));
		put_be32(&b, (uint32_t)sec->len);
		sc_wbuf_append(&b, sec->value, sec->len);
	}
	size_t len = 0;
	*ret = (uint8_t *)sc_wbuf_steal(&b, &len);
	*ret_len = len;
}

static int decode_row(const char *name, const uint8_t *plain, size_t len, sc_policy **ret,
                      sconify_error_t *err)
{
	const uint8_t *p = plain, *yaml = NULL;
	size_t left = len, yaml_len = 0;
	if (!get_bytes(&p, &left, &yaml, &yaml_len))
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "session `%s': stored row is malformed", name);
	cleanup_policy sc_policy *pol = NULL;
	if (sc_policy_parse((const char *)yaml, yaml_len, name, &pol, err) < 0)
		return sc_error_wrap(err, "session `%s': stored policy", name);
	if (left < 4)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "session `%s': stored row is malformed", name);
	uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	p += 4;
	left -= 4;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *sn = NULL, *sv = NULL;
		size_t sn_len = 0, sv_len = 0;
		if (!get_bytes(&p, &left, &sn, &sn_len) || !get_bytes(&p, &left, &sv, &sv_len))
			return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
			                "session `%s': stored row is malformed", name);
		cleanup_free char *sname = xstrndup((const char *)sn, sn_len);
		for (size_t j = 0; j < pol->n_secrets; j++)
			if (pol->secrets[j].generated && strcmp(pol->secrets[j].name, sname) == 0)
				sc_policy_secret_set_value(&pol->secrets[j], sv, sv_len);
	}
	if (left != 0)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "session `%s': stored row is malformed", name);
	*ret = steal_pointer(&pol);
	return 0;
}

int cas_store_get(cas_store *s, const char *name, cas_session **ret, sconify_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	if (sc_store_prepare(
	            s->db,
	            "SELECT hash, creator, length(sealed), substr(sealed, 2, ?) FROM sessions WHERE name = ?",
	            &st, err) < 0)
		return -1;
	sqlite3_bind_int(st, 1, SC_CAS_NONCE_BYTES);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r == SQLITE_DONE)
		return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "session `%s' not found", name);
	if (r != SQLITE_ROW)
		return sc_store_error(s->db, "reading a session", err);
	const char *hash = (const char *)sqlite3_column_text(st, 0);
	const char *creator = (const char *)sqlite3_column_text(st, 1);
	sqlite3_int64 row_bytes = sqlite3_column_int64(st, 2);
	const void *tag = sqlite3_column_blob(st, 3);
	if (hash == NULL || creator == NULL || strlen(hash) != SC_POLICY_HASH_HEX ||
	    strlen(creator) > SC_CAS_ID_HEX || row_bytes < (sqlite3_int64)SC_CAS_SEAL_OVERHEAD ||
	    tag == NULL || sqlite3_column_bytes(st, 3) != SC_CAS_NONCE_BYTES)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "session `%s': stored row is malformed", name);
	centry *e = cache_find(s, name);
	if (e && strcmp(e->sess->hash, hash) == 0 && strcmp(e->sess->creator, creator) == 0 &&
	    e->sess->row_bytes == (size_t)row_bytes &&
	    memcmp(e->sess->row_tag, tag, SC_CAS_NONCE_BYTES) == 0) {
		TAILQ_REMOVE(&s->lru, e, lru);
		TAILQ_INSERT_HEAD(&s->lru, e, lru);
		e->sess->refs++;
		*ret = e->sess;
		return 0;
	}
	cleanup_stmt sqlite3_stmt *full = NULL;
	if (sc_store_prepare(s->db, "SELECT hash, creator, sealed FROM sessions WHERE name = ?", &full, err) <
	    0)
		return -1;
	sqlite3_bind_text(full, 1, name, -1, SQLITE_STATIC);
	r = sqlite3_step(full);
	if (r == SQLITE_DONE)
		return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "session `%s' not found", name);
	if (r != SQLITE_ROW)
		return sc_store_error(s->db, "reading a session", err);
	hash = (const char *)sqlite3_column_text(full, 0);
	creator = (const char *)sqlite3_column_text(full, 1);
	const uint8_t *sealed = sqlite3_column_blob(full, 2);
	size_t sealed_len = (size_t)sqlite3_column_bytes(full, 2);
	if (hash == NULL || creator == NULL || strlen(hash) != SC_POLICY_HASH_HEX ||
	    strlen(creator) > SC_CAS_ID_HEX)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "session `%s': stored row is malformed", name);
	cleanup_buf sc_buf aad;
	sc_buf_init(&aad, SIZE_MAX);
	aad_session(&aad, name, hash, creator);
	cleanup_free char *what = xasprintf("sessions[%s]", name);
	uint8_t *plain = NULL;
	size_t len = 0;
	if (sc_cas_unseal(s->key, aad.data, aad.len, sealed, sealed_len, what, &plain, &len, err) < 0)
		return -1;
	_cleanup_(cas_session_freep) cas_session *out = xzalloc(sizeof(*out));
	int rr = decode_row(name, plain, len, &out->policy, err);
	OPENSSL_cleanse(plain, len);
	free(plain);
	if (rr < 0)
		return -1;
	out->name = xstrdup(name);
	memcpy(out->hash, hash, SC_POLICY_HASH_HEX + 1);
	strcpy(out->creator, creator);
	out->row_bytes = sealed_len;
	memcpy(out->row_tag, sealed + 1, SC_CAS_NONCE_BYTES);
	cache_add(s, out);
	*ret = steal_pointer(&out);
	return 0;
}

int cas_session_yaml(cas_session *sess, const char **ret, size_t *ret_len, sconify_error_t *err)
{
	if (sess->yaml == NULL && sc_policy_emit(sess->policy, &sess->yaml, &sess->yaml_len, err) < 0)
		return -1;
	*ret = sess->yaml;
	*ret_len = sess->yaml_len;
	return 0;
}

int cas_store_usage(cas_store *s, const char *creator, size_t *ret_count, size_t *ret_bytes,
                    sconify_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	if (sc_store_prepare(
	            s->db,
	            "SELECT count(*), coalesce(sum(length(sealed)), 0) FROM sessions WHERE creator = ?", &st,
	            err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, creator, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		return sc_store_error(s->db, "reading sessions", err);
	*ret_count = (size_t)sqlite3_column_int64(st, 0);
	*ret_bytes = (size_t)sqlite3_column_int64(st, 1);
	return 0;
}

int cas_store_has_children(cas_store *s, const char *ns, bool *ret, sconify_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	/* substr, not LIKE: `_' is a LIKE wildcard and a valid name character. */
	if (sc_store_prepare(s->db, "SELECT 1 FROM sessions WHERE substr(name, 1, ?) = ? LIMIT 1", &st, err) <
	    0)
		return -1;
	cleanup_free char *prefix = xasprintf("%s/", ns);
	sqlite3_bind_int(st, 1, (int)strlen(prefix));
	sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
	int r = sqlite3_step(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return sc_store_error(s->db, "reading sessions", err);
	*ret = r == SQLITE_ROW;
	return 0;
}

static int insert_audit(cas_store *s, const cas_audit *a, sconify_error_t *err)
{
	char now[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cleanup_stmt sqlite3_stmt *st = NULL;
	if (sc_store_prepare(
	            s->wdb,
	            "INSERT INTO audit(time, client, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, "
	            "?)",
	            &st, err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->client ? a->client : "-", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->target ? a->target : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->outcome, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, a->detail ? a->detail : "", -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return sc_store_error(s->wdb, "writing the audit log", err);
	return 0;
}

static int write_session(cas_store *s, const char *name, const cas_session *sess, sconify_error_t *err)
{
	if (sess == NULL) {
		cleanup_stmt sqlite3_stmt *st = NULL;
		if (sc_store_prepare(s->wdb, "DELETE FROM sessions WHERE name = ?", &st, err) < 0)
			return -1;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			return sc_store_error(s->wdb, "deleting a session", err);
		return 0;
	}
	char *yaml = NULL;
	size_t yaml_len = 0;
	if (sc_policy_emit(sess->policy, &yaml, &yaml_len, err) < 0)
		return -1;
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	encode_row(sess->policy, yaml, yaml_len, &plain, &plain_len);
	sc_policy_wipe_free(yaml);
	cleanup_buf sc_buf aad;
	sc_buf_init(&aad, SIZE_MAX);
	aad_session(&aad, name, sess->hash, sess->creator);
	cleanup_free uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	sc_cas_seal(s->key, aad.data, aad.len, plain, plain_len, &sealed, &sealed_len);
	OPENSSL_cleanse(plain, plain_len);
	free(plain);
	cleanup_stmt sqlite3_stmt *st = NULL;
	if (sc_store_prepare(
	            s->wdb,
	            "INSERT INTO sessions(name, hash, creator, sealed, created, updated) VALUES (?1, ?2, ?3, "
	            "?4, ?5, ?5)"
	            " ON CONFLICT(name) DO UPDATE SET hash = ?2, creator = ?3, sealed = ?4, updated = ?5",
	            &st, err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sess->hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, sess->creator, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, sealed, (int)sealed_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	if (sqlite3_step(st) != SQLITE_DONE)
		return sc_store_error(s->wdb, "writing a session", err);
	return 0;
}

static int insert_audits(cas_store *s, const cas_audit *a, size_t n, size_t max_rows, sconify_error_t *err)
{
	for (size_t i = 0; i < n; i++)
		if (insert_audit(s, &a[i], err) < 0)
			return -1;
	if (max_rows > 0) {
		/* Retention: the newest max_rows rows stay. */
		cleanup_stmt sqlite3_stmt *st = NULL;
		if (sc_store_prepare(s->wdb, "DELETE FROM audit WHERE id <= (SELECT max(id) FROM audit) - ?",
		                     &st, err) < 0)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)max_rows);
		if (sqlite3_step(st) != SQLITE_DONE)
			return sc_store_error(s->wdb, "trimming the audit log", err);
	}
	return 0;
}

/* ---- the synchronous writes: only while the writer thread is not running ---- */

static int sync_write(cas_store *s, const char *name, const cas_session *sess, bool put, const cas_audit *a,
                      size_t n, size_t max_rows, sconify_error_t *err)
{
	if (s->writer)
		abort(); /* the writer thread owns the write connection */
	if (put)
		cache_forget(s, name);
	if (sc_store_exec(s->wdb, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if ((put && write_session(s, name, sess, err) < 0) || insert_audits(s, a, n, max_rows, err) < 0 ||
	    sc_store_exec(s->wdb, "COMMIT", err) < 0) {
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

int cas_store_put(cas_store *s, const char *name, const cas_session *sess, const cas_audit *audit,
                  sconify_error_t *err)
{
	return sync_write(s, name, sess, true, audit, 1, 0, err);
}

int cas_store_audit(cas_store *s, const cas_audit *audit, sconify_error_t *err)
{
	return sync_write(s, NULL, NULL, false, audit, 1, 0, err);
}

int cas_store_audit_many(cas_store *s, const cas_audit *a, size_t n, size_t max_rows, sconify_error_t *err)
{
	return sync_write(s, NULL, NULL, false, a, n, max_rows, err);
}

/* ---- group commit: lib/store's writer thread ---- */

struct cas_write {
	cas_store *s;
	char *name;        /* put: the session's name */
	cas_session *sess; /* put: the new version (owned), NULL: delete */
	bool put;
	cas_audit *audits; /* owned copies */
	size_t n_audits;
	size_t max_rows;
	cas_write_done_fn done;
	void *arg;
};

static char *dup_or_null(const char *x)
{
	return x ? xstrdup(x) : NULL;
}

static void write_free(cas_write *w)
{
	free(w->name);
	cas_session_free(w->sess);
	for (size_t i = 0; i < w->n_audits; i++) {
		free((char *)w->audits[i].client);
		free((char *)w->audits[i].action);
		free((char *)w->audits[i].target);
		free((char *)w->audits[i].outcome);
		free((char *)w->audits[i].detail);
	}
	free(w->audits);
	free(w);
}

/* On the writer thread, inside the write's savepoint. */
static int apply_write(sqlite3 *db, void *arg, sconify_error_t *err)
{
	cas_write *w = arg;
	(void)db; /* w->s->wdb */
	if (w->put && write_session(w->s, w->name, w->sess, err) < 0)
		return -1;
	return insert_audits(w->s, w->audits, w->n_audits, w->max_rows, err);
}

/* On the loop. */
static void write_done(void *arg, sconify_error_t err)
{
	cas_write *w = arg;
	if (w->done)
		w->done(w->arg, err);
	else if (err)
		fprintf(stderr, "sconify-cas: error: %s\n", sconify_error_message(err));
	write_free(w);
}

static void submit(cas_store *s, cas_write *w)
{
	if (s->writer == NULL)
		abort(); /* cas_store_writer_start() first */
	w->s = s;
	sc_store_writer_submit(s->writer, apply_write, write_done, w);
}

static cas_write *new_write(const cas_audit *a, size_t n, cas_write_done_fn done, void *arg)
{
	cas_write *w = xzalloc(sizeof(*w));
	w->audits = xcalloc(n ? n : 1, sizeof(*w->audits));
	w->n_audits = n;
	for (size_t i = 0; i < n; i++)
		w->audits[i] =
		        (cas_audit){dup_or_null(a[i].client), xstrdup(a[i].action), dup_or_null(a[i].target),
		                    xstrdup(a[i].outcome), dup_or_null(a[i].detail)};
	w->done = done;
	w->arg = arg;
	return w;
}

void cas_store_put_async(cas_store *s, const char *name, cas_session *sess, const cas_audit *audit,
                         cas_write_done_fn done, void *arg)
{
	cas_write *w = new_write(audit, 1, done, arg);
	w->put = true;
	w->name = xstrdup(name);
	w->sess = sess;
	cache_forget(s, name);
	submit(s, w);
}

void cas_store_audit_async(cas_store *s, const cas_audit *a, size_t n, size_t max_rows,
                           cas_write_done_fn done, void *arg)
{
	cas_write *w = new_write(a, n, done, arg);
	w->max_rows = max_rows;
	submit(s, w);
}

int cas_store_writer_start(cas_store *s, int *ret_fd, sconify_error_t *err)
{
	if (s->writer)
		abort();
	if (sc_store_writer_start(s->wdb, &s->writer, err) < 0)
		return -1;
	*ret_fd = sc_store_writer_fd(s->writer);
	return 0;
}

void cas_store_writer_complete(cas_store *s)
{
	sc_store_writer_complete(s->writer);
}

static void copy_stats(sc_store_writer *w, cas_writer_stats *ret)
{
	sc_store_stats st;
	sc_store_writer_stats(w, &st);
	*ret = (cas_writer_stats){
	        .transactions = st.transactions,
	        .writes = st.writes,
	        .max_batch = st.max_batch,
	        .commit_ms = st.commit_ms,
	};
}

void cas_store_writer_stats(cas_store *s, cas_writer_stats *ret)
{
	if (s->writer == NULL) {
		*ret = s->stats;
		return;
	}
	copy_stats(s->writer, ret);
}

void cas_store_writer_stop(cas_store *s)
{
	if (s->writer == NULL)
		return;
	sc_store_writer_stop(s->writer);
	copy_stats(s->writer, &s->stats);
	sc_store_writer_free(steal_pointer(&s->writer));
}
