/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CAS client (docs/cas.md, "Clients"): sessions uploaded, read and
 * deleted over mutual TLS with libcurl; the CAS pinned by the hash of its
 * public key; the client identity (a key and a self-signed certificate in one
 * PEM file) made once and reused; the CAS key hashes learnt on first use
 * remembered per URL.
 *
 * Not lib/registry/http.c: the CAS needs what the registry client has no use
 * for (a pinned key instead of a CA, the peer certificate of an unverified
 * connection, secret bodies both ways) and none of its streaming. Requests
 * are small and sent once: an upload that failed halfway is not repeated
 * blindly (the predecessor check makes a repeat fail anyway).
 *
 * Secrets: policies hold the volume key and secret values. They travel only
 * in request and response bodies, which never reach a message or the debug
 * trace, and are wiped after use.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/hex.h"
#include "core/json-util.h"
#include "core/openssl-util.h"
#include "core/secret.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "policy/policy.h"

#define HASH_HEX 64
#define MAX_RESPONSE (SC_POLICY_MAX_BYTES + (1u << 20)) /* a policy as a JSON string, escaped */
#define MAX_IDENTITY_BYTES (64u << 10)
#define MAX_KEYS_FILE (1u << 20)
#define MAX_URL 2048
#define DEFAULT_PORT "8081" /* SCONE's CAS port; the runtime's default too */

SC_DEFINE_CLEANUP(X509 *, X509_free)
#define cleanup_x509 _cleanup_(X509_freep)

struct sconify_cas_s {
	char *url; /* https://HOST:PORT, no trailing slash */
	char *pin; /* "sha256//BASE64" */
	char *identity;
	long timeout_ms;
	sconify_debug_fn debug;
	void *debug_userdata;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_ALL);
}

/* ---- small helpers ---- */

static bool lower_hex(const char *s, size_t n)
{
	return strlen(s) == n && sc_hex_decode(s, n, NULL, true);
}

static int check_key_hash(const char *hash, const char *what, sconify_error_t *err)
{
	if (!lower_hex(hash, HASH_HEX)) {
		cleanup_free char *q = sc_quote(hash, 80);
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "%s `%s': not 64 lowercase hex digits (a SHA-256)",
		                what, q);
	}
	return 0;
}

/* "https://HOST:PORT[/]" or "HOST:PORT" into "https://HOST:PORT". Paths,
 * queries, user info and plain http are refused: the URL is also what the
 * key hashes are remembered by. */
static int normalise_url(const char *url, char **ret, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(url, 120);
	if (strlen(url) > MAX_URL)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "CAS URL `%s': longer than %u bytes", q, MAX_URL);
	const char *rest = url;
	if (sc_startswith(url, "https://"))
		rest = url + 8;
	else if (strstr(url, "://"))
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "CAS URL `%s': only https:// (sessions need mutual TLS)", q);
	size_t n = strlen(rest);
	if (n && rest[n - 1] == '/')
		n--;
	if (n == 0)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "CAS URL `%s': no host", q);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)rest[i];
		if (ch <= ' ' || ch >= 127 || strchr("/?#@\\\"<>`{}|^", ch))
			return sc_error(err, SCONIFY_ERR_USAGE, 0,
			                "CAS URL `%s': only https://HOST[:PORT], without path or user", q);
	}
	/* No port: SCONE's CAS port, as the runtime reads SCONE_CAS_ADDR. */
	const char *close = rest[0] == '[' ? memchr(rest, ']', n) : NULL;
	const char *after = close ? close + 1 : rest;
	bool has_port = memchr(after, ':', n - (size_t)(after - rest)) != NULL;
	*ret = xasprintf("https://%.*s%s", (int)n, rest, has_port ? "" : ":" DEFAULT_PORT);
	return 0;
}

/* SHA-256 of a certificate's SubjectPublicKeyInfo, lowercase hex: the
 * identity of a client and the key hash of a CAS (docs/cas.md). */
static int spki_hash(X509 *cert, char out[HASH_HEX + 1], sconify_error_t *err)
{
	EVP_PKEY *pk = X509_get0_pubkey(cert);
	unsigned char *der = NULL;
	int n = pk ? i2d_PUBKEY(pk, &der) : -1;
	if (n <= 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "the certificate has no usable public key");
	uint8_t md[32];
	unsigned int mdlen = 0;
	int ok = EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	if (!ok)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "SHA-256 failed");
	sc_hex_encode(md, sizeof(md), out);
	return 0;
}

/* ---- identity files ---- */

int sconify_config_dir(char **ret, sconify_error_t *err)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	if (xdg && xdg[0] == '/') {
		*ret = sc_path_join(xdg, "sconify");
		return 0;
	}
	const char *home = getenv("HOME");
	if (home == NULL || home[0] != '/')
		return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0,
		                "no config directory: neither XDG_CONFIG_HOME nor HOME is an absolute path");
	*ret = xasprintf("%s/.config/sconify", home);
	return 0;
}

/* Loads an identity: its private key, its certificate, and checks they
 * belong together. Group- or world-readable files are refused, as ssh does:
 * whoever reads the key is the owner of every session it created. */
static int identity_load(const char *path, char ret_hash[HASH_HEX + 1], sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	_cleanup_(sc_secret_free) sc_secret pem = {0};
	cleanup_free char *what = xasprintf("identity `%s'", q);
	if (sc_read_secret_file(path, MAX_IDENTITY_BYTES, what, &pem, NULL, err) < 0)
		return -1;
#ifndef _WIN32
	struct stat st;
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		return sc_error(err, SCONIFY_ERR_AUTH, 0,
		                "identity `%s': readable by group or others (mode %03o): chmod 600 it", q,
		                (unsigned)(st.st_mode & 0777));
#endif
	cleanup_bio BIO *b = BIO_new_mem_buf(pem.data, (int)pem.len);
	cleanup_pkey EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	if (key == NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "identity `%s': no unencrypted private key (PEM)", q);
	BIO_free(b);
	b = BIO_new_mem_buf(pem.data, (int)pem.len);
	cleanup_x509 X509 *cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	if (cert == NULL)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "identity `%s': no certificate (PEM)", q);
	if (X509_check_private_key(cert, key) != 1)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "identity `%s': the certificate is not for the private key", q);
	if (spki_hash(cert, ret_hash, err) < 0)
		return sc_error_wrap(err, "identity `%s'", q);
	return 0;
}

/* A new P-256 key and a self-signed certificate for it, as PEM. The CAS
 * does not check the certificate (its key is the identity): the subject and
 * the ten years are for people reading it. */
static int identity_make(sc_secret *out, sconify_error_t *err)
{
	cleanup_pkey EVP_PKEY *key = EVP_EC_gen("P-256");
	cleanup_x509 X509 *cert = X509_new();
	if (key == NULL || cert == NULL)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "making a P-256 key failed");
	ASN1_INTEGER *sn = X509_get_serialNumber(cert);
	BIGNUM *bn = BN_new();
	if (bn == NULL || BN_rand(bn, 120, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(bn, sn) == NULL) {
		BN_free(bn);
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "no random serial number");
	}
	BN_free(bn);
	X509_NAME *name = X509_get_subject_name(cert);
	if (X509_set_version(cert, 2) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sconify client", -1,
	                               -1, 0) != 1 ||
	    X509_set_issuer_name(cert, name) != 1 || X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600) == NULL ||
	    X509_set_pubkey(cert, key) != 1 || X509_sign(cert, key, EVP_sha256()) <= 0)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "making the identity certificate failed");
	cleanup_bio BIO *b = BIO_new(BIO_s_secmem());
	if (b == NULL || PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(b, cert) != 1)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "writing the identity as PEM failed");
	char *p = NULL;
	long n = BIO_get_mem_data(b, &p);
	if (n <= 0 || !sc_secret_append(out, p, (size_t)n, MAX_IDENTITY_BYTES))
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "writing the identity as PEM failed");
	return 0;
}

int sconify_identity_ensure(const char *path, char **ret_path, char **ret_hash, bool *ret_created,
                            sconify_error_t *err)
{
	cleanup_free char *dflt = NULL;
	if (path == NULL) {
		cleanup_free char *dir = NULL;
		if (sconify_config_dir(&dir, err) < 0)
			return sc_error_wrap(err, "the default identity");
		dflt = sc_path_join(dir, "identity.pem");
		path = dflt;
	}
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	bool created = false;
	if (!sc_path_exists(path)) {
		cleanup_free char *dir = sc_dirname(path);
		if (sc_mkdir_p(dir, 0700, err) < 0)
			return sc_error_wrap(err, "identity `%s'", q);
		_cleanup_(sc_secret_free) sc_secret pem = {0};
		if (identity_make(&pem, err) < 0)
			return -1;
		/* O_EXCL: a concurrent first run keeps whichever identity came
		 * first; nobody's file is ever replaced. */
		cleanup_free char *tmp = NULL;
		cleanup_close int fd = -1;
		if (sc_tmpfile(dir, "identity", &tmp, &fd, err) < 0)
			return sc_error_wrap(err, "identity `%s'", q);
		size_t off = 0;
		while (off < pem.len) {
			ssize_t w = write(fd, pem.data + off, pem.len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				int e = errno;
				unlink(tmp);
				return sc_error_errno(err, e, "writing identity `%s'", q);
			}
			off += (size_t)w;
		}
		if (fsync(fd) < 0 || link(tmp, path) < 0) {
			int e = errno;
			unlink(tmp);
			if (e != EEXIST)
				return sc_error_errno(err, e, "writing identity `%s'", q);
		} else {
			created = true;
			unlink(tmp);
			sc_fsync_dir(dir, NULL);
		}
	}
	char hash[HASH_HEX + 1];
	if (identity_load(path, hash, err) < 0)
		return -1;
	if (ret_path)
		*ret_path = xstrdup(path);
	if (ret_hash)
		*ret_hash = xstrdup(hash);
	if (ret_created)
		*ret_created = created;
	return 0;
}

/* ---- remembered key hashes ---- */

static int keys_file(char **ret, sconify_error_t *err)
{
	cleanup_free char *dir = NULL;
	if (sconify_config_dir(&dir, err) < 0)
		return -1;
	*ret = sc_path_join(dir, "cas-keys");
	return 0;
}

int sconify_cas_known_key_hash(const char *url, char **ret_hash, sconify_error_t *err)
{
	cleanup_free char *u = NULL, *path = NULL, *data = NULL;
	size_t len = 0;
	if (normalise_url(url, &u, err) < 0 || keys_file(&path, err) < 0)
		return -1;
	if (!sc_path_exists(path)) {
		*ret_hash = NULL;
		return 0;
	}
	if (sc_read_file(path, MAX_KEYS_FILE, &data, &len, err) < 0)
		return -1;
	char *found = NULL;
	for (char *line = data, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *sp = strrchr(line, ' ');
		if (sp == NULL)
			continue;
		*sp = '\0';
		if (strcmp(line, u) == 0 && lower_hex(sp + 1, HASH_HEX)) {
			free(found);
			found = xstrdup(sp + 1); /* the last line for a URL wins */
		}
	}
	*ret_hash = found;
	return 0;
}

int sconify_cas_remember_key_hash(const char *url, const char *hash, sconify_error_t *err)
{
	cleanup_free char *u = NULL, *path = NULL, *data = NULL;
	size_t len = 0;
	if (normalise_url(url, &u, err) < 0 || check_key_hash(hash, "key hash", err) < 0 ||
	    keys_file(&path, err) < 0)
		return -1;
	cleanup_free char *dir = sc_dirname(path);
	if (sc_mkdir_p(dir, 0700, err) < 0)
		return -1;
	if (sc_path_exists(path) && sc_read_file(path, MAX_KEYS_FILE, &data, &len, err) < 0)
		return -1;
	sc_buf out;
	sc_buf_init(&out, MAX_KEYS_FILE);
	for (char *line = data, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *sp = strrchr(line, ' ');
		if (sp && (size_t)(sp - line) == strlen(u) && strncmp(line, u, strlen(u)) == 0)
			continue; /* replaced below */
		sc_buf_puts(&out, line);
		sc_buf_putc(&out, '\n');
	}
	sc_buf_puts(&out, u);
	sc_buf_putc(&out, ' ');
	sc_buf_puts(&out, hash);
	sc_buf_putc(&out, '\n');
	size_t n = 0;
	cleanup_free char *text = sc_buf_steal(&out, &n);
	sc_buf_free(&out);
	if (sc_write_file_atomic(path, text, n, 0600, err) < 0)
		return sc_error_wrap(err, "remembering the key hash of %s", u);
	return 0;
}

/* ---- requests ---- */

typedef struct {
	sc_secret body; /* responses may hold policies: grown without leaving copies */
	bool too_large;
	char errbuf[CURL_ERROR_SIZE];
	sconify_debug_fn debug;
	void *debug_userdata;
} xfer;

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	size_t len = size * n;
	if (!sc_secret_append(&x->body, data, len, MAX_RESPONSE)) {
		x->too_large = true;
		return 0;
	}
	return len;
}

/* The trace: request and response lines and headers, never a body (bodies
 * carry policies), never TLS data. */
static int on_debug(CURL *c, curl_infotype type, char *data, size_t size, void *ud)
{
	(void)c;
	xfer *x = ud;
	const char *prefix = type == CURLINFO_TEXT ? "* " : type == CURLINFO_HEADER_IN ? "< " : "> ";
	if (type != CURLINFO_TEXT && type != CURLINFO_HEADER_IN && type != CURLINFO_HEADER_OUT)
		return 0;
	const char *p = data, *end = data + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);
		if (len && p[len - 1] == '\r')
			len--;
		if (len) {
			cleanup_free char *q = sc_quote_n(p, len, 400);
			cleanup_free char *line = xasprintf("%s%s", prefix, q);
			x->debug(x->debug_userdata, line);
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}

typedef struct {
	long status;
	sc_secret body;
	char *peer_key_hash; /* with want_peer_key */
} response;

static void response_clear(response *r)
{
	sc_secret_free(&r->body);
	free(r->peer_key_hash);
	memset(r, 0, sizeof(*r));
}

/* The key hash of the certificate libcurl saw (CURLOPT_CERTINFO gives the
 * chain as PEM with the OpenSSL backend). */
static int peer_key_hash(CURL *c, const char *url, char **ret, sconify_error_t *err)
{
	struct curl_certinfo *ci = NULL;
	if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) != CURLE_OK || ci == NULL || ci->num_of_certs < 1)
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
		                "%s: libcurl gives no peer certificate (built without certinfo?)", url);
	for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next) {
		if (!sc_startswith(l->data, "Cert:"))
			continue;
		const char *pem = l->data + 5;
		cleanup_bio BIO *b = BIO_new_mem_buf(pem, -1);
		cleanup_x509 X509 *cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		char hash[HASH_HEX + 1];
		if (cert == NULL || spki_hash(cert, hash, err) < 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0,
			                "%s: the CAS's certificate is not readable", url);
		*ret = xstrdup(hash);
		return 0;
	}
	return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0, "%s: libcurl gives no PEM of the peer certificate",
	                url);
}

typedef struct {
	const char *base;     /* https://HOST:PORT */
	const char *pin;      /* NULL: no pinning (only for the key hash fetch) */
	const char *identity; /* client certificate and key, or NULL */
	long timeout_ms;
	sconify_debug_fn debug;
	void *debug_userdata;
	bool want_peer_key;
} conn_opts;

/* One request, sent once. The body is the caller's (a policy: secret). */
static int request(const conn_opts *o, const char *method, const char *path, const char *body,
                   size_t body_len, response *ret, sconify_error_t *err)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK)
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "initialising libcurl: %s",
		                curl_easy_strerror(curl_init_result));
	CURL *c = curl_easy_init();
	if (c == NULL)
		abort();
	cleanup_free char *url = xasprintf("%s%s", o->base, path);
	xfer x = {.debug = o->debug, .debug_userdata = o->debug_userdata};
	struct curl_slist *headers = NULL;
	headers = curl_slist_append(headers, "Expect:");
	if (body)
		headers = curl_slist_append(headers, "Content-Type: application/yaml");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x.errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sconify/" SCONIFY_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_PROXY, ""); /* the pin is end to end; no proxy from the environment */
	/* The CAS's certificate is self-signed: no CA vouches for it. The pin
	 * does, checked by libcurl right after the handshake, before a byte of
	 * the request leaves. */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	if (o->pin)
		curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, o->pin);
	if (o->want_peer_key)
		curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
	if (o->identity) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, o->identity);
		curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(c, CURLOPT_SSLKEY, o->identity);
		curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (strcmp(method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	if (o->debug) {
		curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
		curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, on_debug);
		curl_easy_setopt(c, CURLOPT_DEBUGDATA, &x);
	}
	CURLcode rc = curl_easy_perform(c);
	int r = 0;
	if (rc != CURLE_OK) {
		const char *why = x.errbuf[0] ? x.errbuf : curl_easy_strerror(rc);
		sconify_error_kind_t kind = SCONIFY_ERR_NETWORK;
		if (x.too_large)
			kind = SCONIFY_ERR_LIMIT, why = "the answer is larger than the limit";
		else if (rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
			kind = SCONIFY_ERR_AUTH,
			why = "the CAS's key does not match the pinned key hash (nothing was sent)";
		else if (rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CIPHER)
			kind = SCONIFY_ERR_INVALID;
		r = sc_error(err, kind, 0, "CAS %s: %s %s: %s", o->base, method, path, why);
	} else {
		memset(ret, 0, sizeof(*ret));
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ret->status);
		if (o->want_peer_key && peer_key_hash(c, o->base, &ret->peer_key_hash, err) < 0)
			r = -1;
		ret->body = x.body;
		memset(&x.body, 0, sizeof(x.body));
		if (r < 0)
			response_clear(ret);
	}
	sc_secret_free(&x.body);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return r;
}

/* A non-2xx answer as an error: the CAS's message ({"error": ...}; its
 * messages never hold secrets), quoted and capped. */
static int answer_error(const char *base, const char *method, const char *path, const response *r,
                        sconify_error_t *err)
{
	sconify_error_kind_t kind = SCONIFY_ERR_GENERIC;
	switch (r->status) {
	case 400:
		kind = SCONIFY_ERR_INVALID;
		break;
	case 401:
	case 403:
		kind = SCONIFY_ERR_AUTH;
		break;
	case 404:
		kind = SCONIFY_ERR_NOT_FOUND;
		break;
	case 409:
		kind = SCONIFY_ERR_USAGE;
		break;
	case 413:
		kind = SCONIFY_ERR_LIMIT;
		break;
	case 429:
	case 502:
	case 503:
	case 504:
		kind = SCONIFY_ERR_NETWORK;
		break;
	default:
		break;
	}
	cleanup_free char *msg = NULL;
	json_t *j = r->body.data ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
	const char *e = json_is_object(j) ? json_string_value(json_object_get(j, "error")) : NULL;
	if (e)
		msg = sc_quote(e, 400);
	json_decref(j);
	cleanup_free char *qpath = sc_quote(path, 200);
	return sc_error(err, kind, 0, "CAS %s: %s %s: HTTP %ld%s%s", base, method, qpath, r->status,
	                msg ? ": " : "", msg ? msg : "");
}

/* ---- the public client ---- */

int sconify_cas_open(const char *url, const sconify_cas_options_t *opts, sconify_cas_t **ret,
                     sconify_error_t *err)
{
	cleanup_free char *u = NULL;
	if (normalise_url(url, &u, err) < 0)
		return -1;
	if (opts == NULL || opts->key_hash == NULL)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "CAS %s: no pinned key hash", u);
	if (check_key_hash(opts->key_hash, "CAS key hash", err) < 0)
		return -1;
	char id[HASH_HEX + 1];
	if (opts->identity && identity_load(opts->identity, id, err) < 0)
		return -1;
	uint8_t raw[32];
	for (size_t i = 0; i < 32; i++) {
		unsigned v = 0;
		sscanf(opts->key_hash + 2 * i, "%2x", &v);
		raw[i] = (uint8_t)v;
	}
	cleanup_free char *b64 = sc_base64_encode(raw, sizeof(raw));
	sconify_cas_t *cas = xzalloc(sizeof(*cas));
	cas->url = steal_pointer(&u);
	cas->pin = xasprintf("sha256//%s", b64);
	cas->identity = opts->identity ? xstrdup(opts->identity) : NULL;
	cas->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
	cas->debug = opts->debug;
	cas->debug_userdata = opts->debug_userdata;
	*ret = cas;
	return 0;
}

void sconify_cas_close(sconify_cas_t *cas)
{
	if (cas == NULL)
		return;
	free(cas->url);
	free(cas->pin);
	free(cas->identity);
	free(cas);
}

const char *sconify_cas_url(const sconify_cas_t *cas)
{
	return cas->url;
}

int sconify_cas_key_hash(const char *url, const sconify_cas_options_t *opts, char **ret_hash,
                         sconify_error_t *err)
{
	cleanup_free char *u = NULL;
	if (normalise_url(url, &u, err) < 0)
		return -1;
	conn_opts o = {
	        .base = u,
	        .timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 30000,
	        .debug = opts ? opts->debug : NULL,
	        .debug_userdata = opts ? opts->debug_userdata : NULL,
	        .want_peer_key = true,
	};
	_cleanup_(response_clear) response r = {0};
	if (request(&o, "GET", "/v1/health", NULL, 0, &r, err) < 0)
		return -1;
	if (r.status != 200)
		return answer_error(u, "GET", "/v1/health", &r, err);
	*ret_hash = steal_pointer(&r.peer_key_hash);
	return 0;
}

static conn_opts session_conn(const sconify_cas_t *cas)
{
	conn_opts o = {
	        .base = cas->url,
	        .pin = cas->pin,
	        .identity = cas->identity,
	        .timeout_ms = cas->timeout_ms,
	        .debug = cas->debug,
	        .debug_userdata = cas->debug_userdata,
	};
	return o;
}

int sconify_cas_check(sconify_cas_t *cas, sconify_error_t *err)
{
	conn_opts o = session_conn(cas);
	_cleanup_(response_clear) response r = {0};
	if (request(&o, "GET", "/v1/health", NULL, 0, &r, err) < 0)
		return -1;
	if (r.status != 200)
		return answer_error(cas->url, "GET", "/v1/health", &r, err);
	return 0;
}

void sconify_session_free(sconify_session_t *s)
{
	if (s == NULL)
		return;
	free(s->name);
	free(s->hash);
	if (s->yaml) {
		OPENSSL_cleanse(s->yaml, s->yaml_len);
		free(s->yaml);
	}
	memset(s, 0, sizeof(*s));
}

/* Name and hash of a session answer, both checked. */
static int session_fields(const sconify_cas_t *cas, const char *what, json_t *j, sconify_session_t *s,
                          sconify_error_t *err)
{
	const char *name = NULL, *hash = NULL;
	cleanup_free char *ctx = xasprintf("CAS %s: %s: answer", cas->url, what);
	if (sc_json_get_string(j, "name", false, ctx, &name, err) < 0 ||
	    sc_json_get_string(j, "hash", false, ctx, &hash, err) < 0)
		return -1;
	if (!sc_policy_valid_session_name(name) || !lower_hex(hash, HASH_HEX))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: not a session name and hash", ctx);
	s->name = xstrdup(name);
	s->hash = xstrdup(hash);
	return 0;
}

int sconify_session_put(sconify_cas_t *cas, const char *yaml, size_t len, sconify_session_t *ret,
                        sconify_error_t *err)
{
	conn_opts o = session_conn(cas);
	_cleanup_(response_clear) response r = {0};
	if (request(&o, "POST", "/v1/sessions", yaml, len, &r, err) < 0)
		return -1;
	if (r.status != 200 && r.status != 201)
		return answer_error(cas->url, "POST", "/v1/sessions", &r, err);
	cleanup_json json_t *j = NULL;
	cleanup_free char *what = xasprintf("CAS %s: POST /v1/sessions: answer", cas->url);
	if (sc_json_parse(r.body.data ? r.body.data : "", r.body.len, what, &j, err) < 0)
		return -1;
	sconify_session_t s = {0};
	if (session_fields(cas, "POST /v1/sessions", j, &s, err) < 0)
		return -1;
	s.created = r.status == 201;
	*ret = s;
	return 0;
}

static int check_session_name(const char *name, sconify_error_t *err)
{
	if (sc_policy_valid_session_name(name))
		return 0;
	cleanup_free char *q = sc_quote(name, 80);
	return sc_error(err, SCONIFY_ERR_USAGE, 0, "`%s' is not a session name", q);
}

int sconify_session_get(sconify_cas_t *cas, const char *name, sconify_session_t *ret, sconify_error_t *err)
{
	if (check_session_name(name, err) < 0)
		return -1;
	conn_opts o = session_conn(cas);
	cleanup_free char *path = xasprintf("/v1/sessions/%s", name);
	_cleanup_(response_clear) response r = {0};
	if (request(&o, "GET", path, NULL, 0, &r, err) < 0)
		return -1;
	if (r.status != 200)
		return answer_error(cas->url, "GET", path, &r, err);
	/* jansson keeps its own copies of the policy text; json_decref frees
	 * them without wiping. Acceptable: they live in this process only,
	 * and the answer's bytes we own are wiped. */
	cleanup_json json_t *j = NULL;
	cleanup_free char *what = xasprintf("CAS %s: GET %s: answer", cas->url, path);
	if (sc_json_parse(r.body.data ? r.body.data : "", r.body.len, what, &j, err) < 0)
		return -1;
	json_t *text = json_object_get(j, "session");
	if (!json_is_string(text))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: no `session' text", what);
	_cleanup_(sconify_session_free) sconify_session_t s = {0};
	if (session_fields(cas, path, j, &s, err) < 0)
		return -1;
	if (strcmp(s.name, name) != 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: names another session", what);
	size_t n = json_string_length(text);
	s.yaml = xmalloc(n + 1);
	memcpy(s.yaml, json_string_value(text), n);
	s.yaml[n] = '\0';
	s.yaml_len = n;
	/* The CAS says GET returns the form whose hash it gives: check it. */
	uint8_t md[32];
	char hex[HASH_HEX + 1];
	unsigned int mdlen = 0;
	EVP_Digest(s.yaml, n, md, &mdlen, EVP_sha256(), NULL);
	sc_hex_encode(md, sizeof(md), hex);
	if (strcmp(hex, s.hash) != 0)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "%s: the policy's hash is not the one given",
		                what);
	*ret = s;
	memset(&s, 0, sizeof(s));
	return 0;
}

int sconify_session_delete(sconify_cas_t *cas, const char *name, sconify_error_t *err)
{
	if (check_session_name(name, err) < 0)
		return -1;
	conn_opts o = session_conn(cas);
	cleanup_free char *path = xasprintf("/v1/sessions/%s", name);
	_cleanup_(response_clear) response r = {0};
	if (request(&o, "DELETE", path, NULL, 0, &r, err) < 0)
		return -1;
	if (r.status != 200)
		return answer_error(cas->url, "DELETE", path, &r, err);
	return 0;
}

int sconify_session_upload(sconify_cas_t *cas, const char *yaml, size_t len, sconify_session_t *ret,
                           sconify_error_t *err)
{
	cleanup_policy sc_policy *p = NULL;
	if (sc_policy_parse(yaml, len, "session", &p, err) < 0)
		return -1;
	if (p->predecessor)
		return sconify_session_put(cas, yaml, len, ret, err);
	_cleanup_(sconify_session_free) sconify_session_t cur = {0};
	sconify_error_t gerr = NULL;
	if (sconify_session_get(cas, p->name, &cur, &gerr) < 0) {
		if (sconify_error_kind(gerr) == SCONIFY_ERR_NOT_FOUND) {
			sconify_error_free(&gerr);
			return sconify_session_put(cas, yaml, len, ret, err);
		}
		if (err)
			sc_error_move(err, &gerr);
		sconify_error_free(&gerr);
		return sc_error_wrap(err, "session `%s': reading the stored version for an update", p->name);
	}
	p->predecessor = xstrdup(cur.hash);
	char *text = NULL;
	size_t n = 0;
	if (sc_policy_emit(p, &text, &n, err) < 0)
		return -1;
	int r = sconify_session_put(cas, text, n, ret, err);
	sc_policy_wipe(text, n);
	free(text);
	return r;
}
