/* SPDX-License-Identifier: Apache-2.0 */
/* sconify-cas serve --listen ADDR:PORT --data DIR [--db-key-file F] */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "cas-server.h"
#include "core/fsutil.h"
#include "core/openssl-util.h"
#include "core/secret.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "policy/policy-internal.h"

SC_DEFINE_CLEANUP(X509 *, X509_free)

static void help(void)
{
	printf("Usage: sconify-cas serve --listen ADDR:PORT --data DIR [OPTIONS]\n\n"
	       "The configuration and attestation service (docs/cas.md). On first start it creates\n"
	       "its identity (DIR/identity.key, DIR/identity.crt) and the database key; every start\n"
	       "prints `key-hash: HEX' (SHA-256 of its public key, which clients pin) and\n"
	       "`listening: ADDR:PORT'.\n\n"
	       "Options:\n"
	       "  --listen ADDR:PORT       address to serve HTTPS on (port 0: any free port)\n"
	       "  --data DIR               identity, database and audit log (created 0700)\n"
	       "  --db-key-file FILE       the database key, 64 hex digits (default DIR/db.key,\n"
	       "                           created 0600 when missing)\n"
	       "  --allow-sim              accept `sim' evidence (no hardware root of trust: anyone\n"
	       "                           who can reach the port can produce it; docs/attestation.md)\n"
	       "  --max-body BYTES         largest session body (default 4 MiB + 64 KiB)\n"
	       "  --max-connections N      open connections, all clients together (default 1024,\n"
	       "                           at most the open-files limit less 64)\n"
	       "  --max-connections-per-ip N  open connections from one address (default 32)\n"
	       "  --request-timeout MS     handshake plus one whole request (default 10000)\n"
	       "  --challenge-ttl MS       lifetime of an attestation challenge (default 30000)\n"
	       "  --max-challenges N       attestations within one challenge lifetime (default 65536)\n"
	       "  --max-client-sessions N  sessions one identity may create (default 1000)\n"
	       "  --max-client-bytes BYTES stored bytes of one identity's sessions (default 64 MiB)\n"
	       "  --audit-flush MS         how often counted refusals are written (default 5000)\n"
	       "  --max-audit-rows N       audit rows kept, oldest deleted first (default 1000000)\n"
	       "  -h, --help               this help\n");
}

static int read_db_key(const char *path, uint8_t key[SC_CAS_DB_KEY_BYTES], sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	cleanup_secret sc_secret s = {0};
	bool missing = false;
	if (sc_read_secret_file(path, 4096, "database key file", &s, &missing, err) < 0)
		return -1;
	if (missing) {
		uint8_t k[SC_CAS_DB_KEY_BYTES];
		char hex[2 * SC_CAS_DB_KEY_BYTES + 2];
		if (RAND_bytes(k, sizeof(k)) != 1)
			return sc_error(err, SCONIFY_ERR_GENERIC, 0, "no random bytes for the database key");
		sc_policy_hex_encode(k, sizeof(k), hex);
		strcat(hex, "\n");
		int r = sc_write_file_atomic(path, hex, strlen(hex), 0600, err);
		OPENSSL_cleanse(hex, sizeof(hex));
		if (r < 0) {
			OPENSSL_cleanse(k, sizeof(k));
			return sc_error_wrap(err, "creating the database key `%s'", q);
		}
		memcpy(key, k, sizeof(k));
		OPENSSL_cleanse(k, sizeof(k));
		return 0;
	}
	struct stat st;
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "database key file `%s' is readable by others (mode %04o): chmod 600 it", q,
		                (unsigned)(st.st_mode & 07777));
	size_t n = s.len;
	while (n > 0 && (s.data[n - 1] == '\n' || s.data[n - 1] == '\r'))
		n--;
	if (n != 2 * SC_CAS_DB_KEY_BYTES || !sc_policy_hex_decode(s.data, n, key))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "database key file `%s': not 64 hex digits", q);
	return 0;
}

/* A P-256 key and a self-signed certificate: clients pin the key, not a CA. */
static int create_identity(const char *key_path, const char *cert_path, sconify_error_t *err)
{
	cleanup_pkey EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	_cleanup_(X509_freep) X509 *x = X509_new();
	if (key == NULL || x == NULL)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "cannot generate the CAS identity");
	uint8_t serial[16];
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "no random bytes for the certificate serial");
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	X509_set_version(x, 2);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 20L * 365 * 24 * 3600);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sconify-cas", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, key);
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "cannot sign the CAS certificate");
	cleanup_bio BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
	if (PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cb, x) != 1)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "cannot write the CAS identity");
	char *kd = NULL, *cd = NULL;
	long kl = BIO_get_mem_data(kb, &kd), cl = BIO_get_mem_data(cb, &cd);
	/* The certificate first: a start finding a key without its certificate,
	 * or the other way round, makes both again (review item 12). */
	int r = sc_write_file_atomic(cert_path, cd, (size_t)cl, 0600, err) < 0 ||
	        sc_write_file_atomic(key_path, kd, (size_t)kl, 0600, err) < 0;
	OPENSSL_cleanse(kd, (size_t)kl);
	if (r)
		return sc_error_wrap(err, "writing the CAS identity");
	return 0;
}

static int key_hash_of(const char *cert_path, char ret[SC_CAS_ID_HEX + 1], sconify_error_t *err)
{
	cleanup_free char *pem = NULL;
	size_t len = 0;
	if (sc_read_file(cert_path, 1 << 20, &pem, &len, err) < 0)
		return -1;
	cleanup_bio BIO *b = BIO_new_mem_buf(pem, (int)len);
	_cleanup_(X509_freep) X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	EVP_PKEY *pk = x ? X509_get0_pubkey(x) : NULL;
	unsigned char *der = NULL;
	int n = pk ? i2d_PUBKEY(pk, &der) : -1;
	if (n <= 0) {
		cleanup_free char *q = sc_quote(cert_path, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "`%s': not a PEM certificate", q);
	}
	uint8_t md[32];
	unsigned int ml = 0;
	EVP_Digest(der, (size_t)n, md, &ml, EVP_sha256(), NULL);
	OPENSSL_free(der);
	sc_policy_hex_encode(md, sizeof(md), ret);
	return 0;
}

static bool parse_size(const char *opt, const char *v, size_t *ret)
{
	unsigned long long n = 0;
	if (!sc_parse_u64(v, &n) || n == 0 || n > (1ull << 40)) {
		fprintf(stderr, "sconify-cas: %s: `%s' is not a positive number\n", opt, v);
		return false;
	}
	*ret = (size_t)n;
	return true;
}

/* The data directory holds the identity key and the store: refuse one that
 * group or others can enter (review item 10). */
static int check_data_dir(const char *dir, sconify_error_t *err)
{
	struct stat st;
	cleanup_free char *q = sc_quote(dir, SC_QUOTE_MAX);
	if (stat(dir, &st) != 0)
		return sc_error(err, SCONIFY_ERR_IO, errno, "data directory `%s'", q);
	if (!S_ISDIR(st.st_mode))
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "data directory `%s' is not a directory", q);
	if (st.st_mode & 077)
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "data directory `%s' is accessible by group or others (mode %04o): chmod 700 "
		                "it",
		                q, (unsigned)(st.st_mode & 07777));
	return 0;
}

/* Raises the open-files limit to its hard limit and keeps max_connections 64
 * below it (the store, the listener and connections being closed), so that
 * accept() never meets EMFILE (review item 3). */
static void limit_connections(cas_options *o)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;
		if (want == RLIM_INFINITY || want > 1048576)
			want = 1048576;
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	size_t cap = rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX : (size_t)rl.rlim_cur;
	cap = cap > 128 ? cap - 64 : 64;
	if (o->max_connections > cap) {
		fprintf(stderr, "sconify-cas: --max-connections %zu lowered to %zu (open-files limit %zu)\n",
		        o->max_connections, cap, cap + 64);
		o->max_connections = cap;
	}
}

static int serve(int argc, char **argv)
{
	cas_options o = {
	        .max_body = SC_POLICY_MAX_BYTES + (64u << 10),
	        .max_header_bytes = 16u << 10,
	        .max_headers = 64,
	        .max_connections = 1024,
	        .max_per_ip = 32,
	        .request_timeout_ms = 10000,
	        .challenge_ttl_ms = 30000,
	        .max_challenges = 65536,
	        .audit_flush_ms = 5000,
	        .max_audit_rows = 1000000,
	        .max_client_sessions = 1000,
	        .max_client_bytes = 64u << 20,
	        .session_cache_bytes = 64u << 20,
	};
	enum {
		O_LISTEN = 256,
		O_DATA,
		O_KEY,
		O_BODY,
		O_CONN,
		O_TIMEOUT,
		O_TTL,
		O_CHALLENGES,
		O_SIM,
		O_PER_IP,
		O_CLIENT_SESSIONS,
		O_CLIENT_BYTES,
		O_FLUSH,
		O_AUDIT_ROWS,
	};
	static const struct option opts[] = {
	        {"listen", required_argument, NULL, O_LISTEN},
	        {"data", required_argument, NULL, O_DATA},
	        {"db-key-file", required_argument, NULL, O_KEY},
	        {"max-body", required_argument, NULL, O_BODY},
	        {"max-connections", required_argument, NULL, O_CONN},
	        {"request-timeout", required_argument, NULL, O_TIMEOUT},
	        {"challenge-ttl", required_argument, NULL, O_TTL},
	        {"max-challenges", required_argument, NULL, O_CHALLENGES},
	        {"allow-sim", no_argument, NULL, O_SIM},
	        {"max-connections-per-ip", required_argument, NULL, O_PER_IP},
	        {"max-client-sessions", required_argument, NULL, O_CLIENT_SESSIONS},
	        {"max-client-bytes", required_argument, NULL, O_CLIENT_BYTES},
	        {"audit-flush", required_argument, NULL, O_FLUSH},
	        {"max-audit-rows", required_argument, NULL, O_AUDIT_ROWS},
	        {"help", no_argument, NULL, 'h'},
	        {0},
	};
	size_t v = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN:
			o.listen = optarg;
			break;
		case O_DATA:
			o.data_dir = optarg;
			break;
		case O_KEY:
			o.db_key_file = optarg;
			break;
		case O_BODY:
			if (!parse_size("--max-body", optarg, &o.max_body))
				return 2;
			break;
		case O_CONN:
			if (!parse_size("--max-connections", optarg, &o.max_connections))
				return 2;
			break;
		case O_TIMEOUT:
			if (!parse_size("--request-timeout", optarg, &v) || v > 3600000)
				return 2;
			o.request_timeout_ms = (unsigned)v;
			break;
		case O_TTL:
			if (!parse_size("--challenge-ttl", optarg, &v) || v > 3600000)
				return 2;
			o.challenge_ttl_ms = (unsigned)v;
			break;
		case O_CHALLENGES:
			if (!parse_size("--max-challenges", optarg, &o.max_challenges))
				return 2;
			break;
		case O_SIM:
			o.allow_sim = true;
			break;
		case O_PER_IP:
			if (!parse_size("--max-connections-per-ip", optarg, &o.max_per_ip))
				return 2;
			break;
		case O_CLIENT_SESSIONS:
			if (!parse_size("--max-client-sessions", optarg, &o.max_client_sessions))
				return 2;
			break;
		case O_CLIENT_BYTES:
			if (!parse_size("--max-client-bytes", optarg, &o.max_client_bytes))
				return 2;
			break;
		case O_FLUSH:
			if (!parse_size("--audit-flush", optarg, &v) || v > 3600000)
				return 2;
			o.audit_flush_ms = (unsigned)v;
			break;
		case O_AUDIT_ROWS:
			if (!parse_size("--max-audit-rows", optarg, &o.max_audit_rows))
				return 2;
			break;
		case 'h':
			help();
			return 0;
		default:
			fprintf(stderr, "Try `sconify-cas serve --help'.\n");
			return 2;
		}
	}
	if (o.listen == NULL || o.data_dir == NULL || optind != argc) {
		fprintf(stderr, "sconify-cas serve: --listen and --data are required\n"
		                "Try `sconify-cas serve --help'.\n");
		return 2;
	}
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *key_file =
	        o.db_key_file ? xstrdup(o.db_key_file) : sc_path_join(o.data_dir, "db.key");
	cleanup_free char *id_key = sc_path_join(o.data_dir, "identity.key");
	cleanup_free char *id_cert = sc_path_join(o.data_dir, "identity.crt");
	cleanup_free char *db_path = sc_path_join(o.data_dir, "cas.db");
	uint8_t key[SC_CAS_DB_KEY_BYTES];
	char key_hash[SC_CAS_ID_HEX + 1];
	cas_store *store = NULL;
	/* Everything the CAS creates (cas.db, -wal, -shm too) is its own. */
	umask(077);
	limit_connections(&o);
	if (sc_mkdir_p(o.data_dir, 0700, &err) < 0 || check_data_dir(o.data_dir, &err) < 0 ||
	    read_db_key(key_file, key, &err) < 0)
		goto fail;
	if ((!sc_path_exists(id_key) || !sc_path_exists(id_cert)) &&
	    create_identity(id_key, id_cert, &err) < 0)
		goto fail;
	if (key_hash_of(id_cert, key_hash, &err) < 0)
		goto fail;
	int r = cas_store_open(db_path, key, &store, &err);
	OPENSSL_cleanse(key, sizeof(key));
	if (r < 0)
		goto fail;
	cas_store_set_cache(store, o.session_cache_bytes);
	printf("key-hash: %s\n", key_hash);
	fflush(stdout);
	r = cas_server_run(&o, store, id_cert, id_key, key_hash, &err);
	cas_store_free(store);
	if (r < 0)
		goto fail;
	return 0;
fail:
	OPENSSL_cleanse(key, sizeof(key));
	fprintf(stderr, "sconify-cas: error: %s\n", sconify_error_message(err));
	return 1;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		help();
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("sconify-cas %s\n", sconify_version());
		return 0;
	}
	fprintf(stderr, "Usage: sconify-cas serve --listen ADDR:PORT --data DIR [--db-key-file FILE]\n");
	return 2;
}
