/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signatures stored the way cosign stores them (docs/signing.md): for an
 * image with digest sha256:H, the tag sha256-H.sig in the same repository
 * names an OCI manifest with one layer per signature; each layer's blob is
 * a simple-signing payload and its annotation the base64 ECDSA signature.
 * Signing appends a layer; verifying reads them all.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json-util.h"
#include "core/limits.h"
#include "core/openssl-util.h"
#include "core/retry.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "image/document.h"
#include "image/mediatype.h"
#include "registry/registry.h"
#include "sign/keys.h"
#include "sign/payload.h"
#include "sign/sign.h"
#include "transport/transport.h"

#define SC_MT_SIMPLESIGNING "application/vnd.dev.cosign.simplesigning.v1+json"
#define SC_ANNOTATION_SIGNATURE "dev.cosignproject.cosign/signature"
/* A payload is a few hundred bytes; annotations make it grow, not much. */
#define PAYLOAD_MAX (64 * 1024)
/* go-containerregistry's zero time, which cosign's signature configs carry. */
#define ZERO_TIME "0001-01-01T00:00:00Z"

typedef struct {
	sc_image_ref *ref;
	char *qimage;
	sc_registry *reg;
	sconify_limits_t limits;
	int attempts; /* 1 + retries */
} target;

static void target_clear(target *t)
{
	sc_registry_free(t->reg);
	sc_image_ref_free(t->ref);
	free(t->qimage);
	*t = (target){0};
}

static int target_open(const char *image, const sconify_sign_options_t *o, target *t, sconify_error_t *err)
{
	t->qimage = sc_quote(image, SC_QUOTE_MAX);
	if (sc_image_ref_parse(image, &t->ref, err) < 0)
		return -1;
	if (t->ref->kind != SC_TRANSPORT_DOCKER)
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
		                "`%s': signatures are kept in a registry; give a docker:// reference",
		                t->qimage);
	t->limits = o->limits;
	sc_limits_fill(&t->limits);
	t->attempts = 1 + sc_retry_count(o->retries);
	sc_transport_options so = {.limits = t->limits,
	                           .registry = &o->registry,
	                           .retries = o->retries,
	                           .debug = o->debug,
	                           .debug_userdata = o->debug_userdata};
	return sc_docker_registry_open(t->ref, &so, &t->reg, err);
}

/* What cosign writes as critical.identity.docker-reference: go-containerregistry's
 * Repository.Name(), which spells Docker Hub "index.docker.io". */
static char *docker_reference(const sc_image_ref *ref)
{
	const char *domain = strcmp(ref->domain, "docker.io") == 0 ? "index.docker.io" : ref->domain;
	return xasprintf("%s/%s", domain, ref->repository);
}

static char *sig_tag(const sc_digest *d)
{
	return xasprintf("%s-%s.sig", sc_digest_alg_name(d->alg), sc_digest_hex(d));
}

/* The document IMAGE names now. */
static int resolve(target *t, sc_document **ret, sconify_error_t *err)
{
	cleanup_free char *data = NULL, *mt = NULL;
	size_t len;
	sc_digest d;
	const char *reference = t->ref->digest ? t->ref->digest : t->ref->tag;
	if (sc_registry_get_manifest(t->reg, t->ref->repository, reference, &data, &len, &mt, &d, err) < 0)
		return sc_error_wrap(err, "`%s'", t->qimage);
	/* sc_registry_get_manifest checked the bytes against the digest the
	 * registry and the reference name. */
	return sc_document_parse(data, len, mt, t->qimage, &t->limits, ret, err);
}

/* The signature manifest for digest d, or *ret NULL when there is none. */
static int get_signatures(target *t, const sc_digest *d, sc_document **ret, sconify_error_t *err)
{
	cleanup_free char *tag = sig_tag(d);
	cleanup_free char *data = NULL, *mt = NULL;
	size_t len;
	sc_digest got;
	cleanup_error sconify_error_t e = NULL;
	if (sc_registry_get_manifest(t->reg, t->ref->repository, tag, &data, &len, &mt, &got, &e) < 0) {
		if (sconify_error_kind(e) == SCONIFY_ERR_NOT_FOUND) {
			*ret = NULL;
			return 0;
		}
		sc_error_move(err, &e);
		return sc_error_wrap(err, "reading the signatures of `%s' (%s)", t->qimage, tag);
	}
	cleanup_free char *what = xasprintf("signature manifest `%s'", tag);
	if (sc_document_parse(data, len, mt, what, &t->limits, ret, err) < 0)
		return -1;
	if (!sc_doc_kind_is_manifest((*ret)->kind)) {
		sc_document_free(*ret);
		*ret = NULL;
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s is not an image manifest", what);
	}
	return 0;
}

static int push_blob(target *t, const void *data, size_t len, sc_digest *ret, sconify_error_t *err)
{
	sc_digest_of(SC_SHA256, data, len, ret);
	bool there = false;
	if (sc_registry_blob_exists(t->reg, t->ref->repository, ret, &there, err) < 0)
		return -1;
	for (int attempt = 0; !there; attempt++) {
		cleanup_error sconify_error_t e = NULL;
		sc_registry_upload *u = NULL;
		sc_writer *w = NULL;
		int r = sc_registry_upload_begin(t->reg, t->ref->repository, (int64_t)len, &u, &w, &e);
		if (r == 0)
			r = sc_writer_write(w, data, len, &e);
		if (r == 0)
			r = sc_registry_upload_commit(u, ret, len, &e);
		sc_registry_upload_free(u);
		if (r == 0)
			break;
		if (!sc_error_restartable(e) || attempt + 1 >= t->attempts) {
			sc_error_move(err, &e);
			return -1;
		}
		sc_sleep_ms(sc_backoff_ms((unsigned)attempt));
	}
	return 0;
}

/* go-containerregistry's empty image with one history entry and one
 * diff_id per layer: what cosign writes as a signature manifest's config. */
static char *sig_config(json_t *layers, size_t *ret_len)
{
	json_t *history = json_array(), *diff_ids = json_array();
	size_t i;
	json_t *l;
	json_array_foreach (layers, i, l) {
		json_array_append_new(history, json_pack("{s:s}", "created", ZERO_TIME));
		json_array_append(diff_ids, json_object_get(l, "digest"));
	}
	cleanup_json json_t *cfg = json_pack("{s:s,s:s,s:o,s:s,s:{s:s,s:o},s:{}}", "architecture", "",
	                                     "created", ZERO_TIME, "history", history, "os", "", "rootfs",
	                                     "type", "layers", "diff_ids", diff_ids, "config");
	if (cfg == NULL)
		abort();
	return sc_json_dump(cfg, ret_len);
}

static int strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "k=v" pairs as a JSON object with sorted keys (as Go marshals a map). */
static int annotations_object(const char *const *pairs, json_t **ret, sconify_error_t *err)
{
	*ret = NULL;
	if (pairs == NULL || pairs[0] == NULL)
		return 0;
	size_t n = 0;
	while (pairs[n])
		n++;
	cleanup_free const char **sorted = xmalloc(n * sizeof(*sorted));
	memcpy(sorted, pairs, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), strcmp_ptr);
	cleanup_json json_t *o = json_object();
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(sorted[i], '=');
		cleanup_free char *q = sc_quote(sorted[i], SC_QUOTE_MAX);
		if (eq == NULL || eq == sorted[i])
			return sc_error(err, SCONIFY_ERR_USAGE, 0, "annotation `%s' is not KEY=VALUE", q);
		cleanup_free char *key = xstrndup(sorted[i], (size_t)(eq - sorted[i]));
		json_t *v;
		if (strcmp(key, "timestamp") == 0) {
			/* containers/image reads optional.timestamp as an integer */
			unsigned long long ts;
			if (!sc_parse_u64(eq + 1, &ts) || ts > INT64_MAX)
				return sc_error(err, SCONIFY_ERR_USAGE, 0,
				                "annotation `%s': timestamp must be a number of seconds", q);
			v = json_integer((json_int_t)ts);
		} else {
			v = json_string(eq + 1);
		}
		if (v == NULL)
			return sc_error(err, SCONIFY_ERR_USAGE, 0, "annotation `%s': the value is not UTF-8",
			                q);
		if (json_object_get(o, key)) {
			json_decref(v);
			return sc_error(err, SCONIFY_ERR_USAGE, 0, "annotation `%s': the key is given twice",
			                q);
		}
		if (json_object_set_new(o, key, v) < 0)
			return sc_error(err, SCONIFY_ERR_USAGE, 0, "annotation `%s': the key is not UTF-8",
			                q);
	}
	*ret = steal_pointer(&o);
	return 0;
}

static int ecdsa_sign(EVP_PKEY *key, const void *data, size_t len, uint8_t **ret, size_t *ret_len,
                      sconify_error_t *err)
{
	cleanup_md_ctx EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = 0;
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, sc_key_digest(key), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, NULL, &n, data, len) != 1) {
		ERR_clear_error();
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "signing failed");
	}
	cleanup_free uint8_t *sig = xmalloc(n);
	if (EVP_DigestSign(ctx, sig, &n, data, len) != 1) {
		ERR_clear_error();
		return sc_error(err, SCONIFY_ERR_GENERIC, 0, "signing failed");
	}
	*ret = steal_pointer(&sig);
	*ret_len = n;
	return 0;
}

static bool ecdsa_verify(EVP_PKEY *key, const void *data, size_t len, const uint8_t *sig, size_t sig_len)
{
	cleanup_md_ctx EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, sc_key_digest(key), NULL, key) == 1 &&
	          EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1;
	ERR_clear_error();
	return ok;
}

/* Adds a signature of d to its signature manifest; returns its tag. */
static int sign_one(target *t, EVP_PKEY *key, const sc_digest *d, json_t *optional, char **ret_where,
                    sconify_error_t *err)
{
	cleanup_free char *reference = docker_reference(t->ref);
	size_t payload_len, sig_len = 0;
	cleanup_free char *payload = sc_sig_payload_build(reference, d, optional, &payload_len);
	cleanup_free uint8_t *sig = NULL;
	if (ecdsa_sign(key, payload, payload_len, &sig, &sig_len, err) < 0)
		return -1;
	cleanup_free char *sig64 = sc_base64_encode(sig, sig_len);

	cleanup_document sc_document *existing = NULL;
	if (get_signatures(t, d, &existing, err) < 0)
		return -1;
	cleanup_free char *tag = sig_tag(d);
	/* Signed already by this key, over these exact payload bytes (ECDSA
	 * signatures differ every time): nothing to add, as cosign does. */
	sc_digest want;
	sc_digest_of(SC_SHA256, payload, payload_len, &want);
	for (size_t i = 0; existing && i < existing->n_layers; i++) {
		const sc_descriptor *l = &existing->layers[i];
		const char *old64 = sc_descriptor_annotation(l, SC_ANNOTATION_SIGNATURE);
		cleanup_free uint8_t *old = NULL;
		size_t old_len = 0;
		if (sc_digest_equal(&l->digest, &want) && old64 &&
		    sc_base64_decode(old64, strlen(old64), &old, &old_len) && old_len > 0 &&
		    ecdsa_verify(key, payload, payload_len, old, old_len)) {
			*ret_where = xasprintf("%s/%s:%s", t->ref->domain, t->ref->repository, tag);
			return 0;
		}
	}
	cleanup_json json_t *layers = json_array();
	for (size_t i = 0; existing && i < existing->n_layers; i++)
		json_array_append(layers, existing->layers[i].json);

	sc_digest payload_digest, config_digest;
	if (push_blob(t, payload, payload_len, &payload_digest, err) < 0)
		return sc_error_wrap(err, "pushing the signature payload of `%s'", t->qimage);
	json_t *layer = sc_descriptor_json_new(SC_MT_SIMPLESIGNING, &payload_digest, payload_len);
	json_object_set_new(layer, "annotations", json_pack("{s:s}", SC_ANNOTATION_SIGNATURE, sig64));
	json_array_append_new(layers, layer);

	size_t config_len;
	cleanup_free char *config = sig_config(layers, &config_len);
	if (push_blob(t, config, config_len, &config_digest, err) < 0)
		return sc_error_wrap(err, "pushing the signature config of `%s'", t->qimage);
	cleanup_json json_t *manifest = json_pack(
	        "{s:i,s:s,s:o,s:O}", "schemaVersion", 2, "mediaType", SC_MT_OCI_MANIFEST, "config",
	        sc_descriptor_json_new(SC_MT_OCI_CONFIG, &config_digest, config_len), "layers", layers);
	size_t manifest_len;
	cleanup_free char *data = sc_json_dump(manifest, &manifest_len);
	if (sc_registry_put_manifest(t->reg, t->ref->repository, tag, data, manifest_len, SC_MT_OCI_MANIFEST,
	                             err) < 0)
		return sc_error_wrap(err, "pushing the signature manifest of `%s'", t->qimage);
	*ret_where = xasprintf("%s/%s:%s", t->ref->domain, t->ref->repository, tag);
	return 0;
}

static bool result_has(const sconify_sign_result_t *res, const sc_digest *d)
{
	for (size_t i = 0; i < res->n; i++)
		if (strcmp(res->digests[i], d->str) == 0)
			return true;
	return false;
}

int sconify_sign(const char *image, const char *key_file, const sconify_sign_options_t *opts,
                 sconify_sign_result_t *ret_result, sconify_error_t *err)
{
	sconify_sign_options_t defaults = {0};
	if (opts == NULL)
		opts = &defaults;
	cleanup_json json_t *optional = NULL;
	if (annotations_object(opts->annotations, &optional, err) < 0)
		return -1;
	cleanup_pkey EVP_PKEY *key = NULL;
	if (sc_private_key_load(key_file, opts->password, opts->password_userdata, &key, err) < 0)
		return -1;
	return sc_sign_image(image, key, opts, ret_result, err);
}

int sc_sign_image(const char *image, EVP_PKEY *key, const sconify_sign_options_t *opts,
                  sconify_sign_result_t *ret_result, sconify_error_t *err)
{
	cleanup_json json_t *optional = NULL;
	if (annotations_object(opts->annotations, &optional, err) < 0)
		return -1;

	_cleanup_(target_clear) target t = {0};
	cleanup_document sc_document *top = NULL;
	if (target_open(image, opts, &t, err) < 0 || resolve(&t, &top, err) < 0)
		return -1;

	/* The images first, the index last: an index that carries a signature
	 * had all its images signed. */
	size_t n_images = opts->recursive && sc_doc_kind_is_index(top->kind) ? top->n_manifests : 0;
	sconify_sign_result_t res = {.digests = xcalloc(n_images + 1, sizeof(char *)),
	                             .signatures = xcalloc(n_images + 1, sizeof(char *))};
	for (size_t i = 0; i <= n_images; i++) {
		const sc_digest *d = i < n_images ? &top->manifests[i].digest : &top->digest;
		if (result_has(&res, d))
			continue;
		char *where = NULL;
		if (sign_one(&t, key, d, optional, &where, err) < 0) {
			if (res.n > 0) {
				cleanup_buf sc_buf done;
				sc_buf_init(&done, SIZE_MAX);
				for (size_t k = 0; k < res.n; k++)
					sc_buf_printf(&done, "%s%s", k ? ", " : "", res.digests[k]);
				sc_error_wrap(err, "signing %s (signed already: %s)", d->str, done.data);
			}
			sconify_sign_result_free(&res);
			return -1;
		}
		res.digests[res.n] = xstrdup(d->str);
		res.signatures[res.n++] = where;
	}
	*ret_result = res;
	return 0;
}

void sconify_sign_result_free(sconify_sign_result_t *result)
{
	if (result == NULL)
		return;
	for (size_t i = 0; i < result->n; i++) {
		free(result->digests[i]);
		free(result->signatures[i]);
	}
	free(result->digests);
	free(result->signatures);
	*result = (sconify_sign_result_t){0};
}

/* ---- verify ---- */

/* Why signature i did not verify, for the message when none does; the
 * first few are enough to act on. */
#define MAX_REASONS 8
typedef struct {
	sc_buf text;
	size_t n;
} reasons;

static void reasons_free(reasons *r)
{
	sc_buf_free(&r->text);
}

static void note(reasons *why, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(reasons *why, size_t i, const char *fmt, ...)
{
	if (why->n++ >= MAX_REASONS) {
		if (why->n == MAX_REASONS + 1)
			sc_buf_puts(&why->text, "; ...");
		return;
	}
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sc_buf_printf(&why->text, "%ssignature %zu: %s", why->text.len ? "; " : "", i + 1, msg);
}

static int read_payload(target *t, const sc_descriptor *l, char **ret, size_t *ret_len, sconify_error_t *err)
{
	if (l->size > PAYLOAD_MAX)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0,
		                "payload of %llu bytes is larger than the limit (%d)",
		                (unsigned long long)l->size, PAYLOAD_MAX);
	sc_reader *raw = NULL;
	if (sc_registry_open_blob(t->reg, t->ref->repository, &l->digest, l->size, &raw, err) < 0)
		return -1;
	cleanup_free char *what = xasprintf("payload blob %s", l->digest.str);
	cleanup_reader sc_reader *r = sc_verified_reader_new(raw, &l->digest, l->size, what);
	return sc_reader_read_all(r, PAYLOAD_MAX, what, ret, ret_len, err);
}

/* Every wanted annotation is in optional with the same value. */
static const char *missing_annotation(json_t *optional, json_t *wanted)
{
	const char *k;
	json_t *v;
	json_object_foreach (wanted, k, v) {
		if (!json_equal(json_object_get(optional, k), v))
			return k;
	}
	return NULL;
}

int sconify_verify(const char *image, const char *pub_file, const sconify_sign_options_t *opts,
                   char **ret_json, size_t *ret_len, sconify_error_t *err)
{
	sconify_sign_options_t defaults = {0};
	if (opts == NULL)
		opts = &defaults;
	cleanup_json json_t *wanted = NULL;
	if (annotations_object(opts->annotations, &wanted, err) < 0)
		return -1;
	cleanup_pkey EVP_PKEY *key = NULL;
	if (sc_public_key_load(pub_file, &key, err) < 0)
		return -1;

	_cleanup_(target_clear) target t = {0};
	cleanup_document sc_document *top = NULL, *sigs = NULL;
	if (target_open(image, opts, &t, err) < 0 || resolve(&t, &top, err) < 0 ||
	    get_signatures(&t, &top->digest, &sigs, err) < 0)
		return -1;
	cleanup_free char *tag = sig_tag(&top->digest);
	if (sigs == NULL || sigs->n_layers == 0)
		return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "`%s' (%s): no signatures (no tag %s)",
		                t.qimage, top->digest.str, tag);

	cleanup_json json_t *verified = json_array();
	_cleanup_(reasons_free) reasons why = {0};
	sc_buf_init(&why.text, SIZE_MAX);
	for (size_t i = 0; i < sigs->n_layers; i++) {
		const sc_descriptor *l = &sigs->layers[i];
		if (strcmp(l->media_type, SC_MT_SIMPLESIGNING) != 0) {
			note(&why, i, "not a simple-signing layer");
			continue;
		}
		const char *sig64 = sc_descriptor_annotation(l, SC_ANNOTATION_SIGNATURE);
		cleanup_free uint8_t *sig = NULL;
		size_t sig_len;
		if (sig64 == NULL) {
			note(&why, i, "no `" SC_ANNOTATION_SIGNATURE "' annotation");
			continue;
		}
		if (!sc_base64_decode(sig64, strlen(sig64), &sig, &sig_len)) {
			note(&why, i, "the signature annotation is not valid base64");
			continue;
		}
		if (sig_len == 0) {
			note(&why, i, "the signature annotation is empty");
			continue;
		}
		cleanup_free char *payload = NULL;
		size_t payload_len;
		cleanup_error sconify_error_t e = NULL;
		if (read_payload(&t, l, &payload, &payload_len, &e) < 0) {
			/* A registry that cannot serve the blob is not a bad signature. */
			if (sconify_error_kind(e) == SCONIFY_ERR_NETWORK ||
			    sconify_error_kind(e) == SCONIFY_ERR_AUTH) {
				sc_error_move(err, &e);
				return sc_error_wrap(err, "`%s': reading signature %zu", t.qimage, i + 1);
			}
			note(&why, i, "%s", sconify_error_message(e));
			continue;
		}
		if (!ecdsa_verify(key, payload, payload_len, sig, sig_len)) {
			note(&why, i, "not signed by this key");
			continue;
		}
		_cleanup_(sc_sig_payload_clear) sc_sig_payload p = {0};
		if (sc_sig_payload_parse(payload, payload_len, &p, &e) < 0) {
			note(&why, i, "%s", sconify_error_message(e));
			continue;
		}
		if (!sc_digest_equal(&p.digest, &top->digest)) {
			note(&why, i, "signs %s, not this image", p.digest.str);
			continue;
		}
		const char *missing = wanted ? missing_annotation(p.optional, wanted) : NULL;
		if (missing) {
			cleanup_free char *q = sc_quote(missing, SC_QUOTE_MAX);
			note(&why, i, "annotation `%s' does not match", q);
			continue;
		}
		json_array_append(verified, p.root);
	}
	if (json_array_size(verified) == 0) {
		cleanup_free char *qpub = sc_quote(pub_file, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "`%s' (%s): no signature by `%s' verified: %s",
		                t.qimage, top->digest.str, qpub, why.text.data ? why.text.data : "");
	}
	*ret_json = sc_json_dump(verified, ret_len);
	return 0;
}

/* Writes data to a new file beside path (mode), synced; returns its name. */
static int write_beside(const char *path, const char *data, mode_t mode, char **ret_tmp, sconify_error_t *err)
{
	cleanup_free char *dir = sc_dirname(path);
	cleanup_close int fd = -1;
	if (sc_tmpfile(dir, "keygen-", ret_tmp, &fd, err) < 0)
		return -1;
	cleanup_writer sc_writer *w = sc_fd_writer_new(fd, false);
	if (fchmod(fd, mode) < 0 || sc_writer_write(w, data, strlen(data), err) < 0 || fsync(fd) < 0) {
		if (err && *err == NULL)
			sc_error_errno(err, errno, "writing `%s'", *ret_tmp);
		unlink(*ret_tmp);
		return -1;
	}
	return 0;
}

int sconify_keygen(const char *prefix, const char *password, bool force, sconify_error_t *err)
{
	cleanup_free char *key_path = xasprintf("%s.key", prefix), *pub_path = xasprintf("%s.pub", prefix);
	cleanup_free char *qkey = sc_quote(key_path, SC_QUOTE_MAX), *qpub = sc_quote(pub_path, SC_QUOTE_MAX);
	const char *quoted[] = {qkey, qpub};
	const char *paths[] = {key_path, pub_path};
	for (size_t i = 0; !force && i < 2; i++)
		if (sc_path_exists(paths[i]))
			return sc_error(err, SCONIFY_ERR_USAGE, 0, "`%s' exists (--force replaces it)",
			                quoted[i]);
	cleanup_pkey EVP_PKEY *key = NULL;
	cleanup_free char *pem = NULL;
	if (sc_key_generate(&key, err) < 0 ||
	    sc_cosign_key_encrypt(key, password, &sc_cosign_scrypt_default, &pem, err) < 0)
		return -1;
	cleanup_free char *pub = sc_public_key_pem(key);

	/* Both files are written aside first. Without --force they are linked
	 * into place, which fails if a file appeared meanwhile; with it, the old
	 * key is kept aside until the new pair is in place, so a failure never
	 * loses both the old and the new key. */
	cleanup_free char *tmp_key = NULL, *tmp_pub = NULL, *old_key = NULL;
	if (write_beside(key_path, pem, 0600, &tmp_key, err) < 0)
		return -1;
	if (write_beside(pub_path, pub, 0644, &tmp_pub, err) < 0) {
		unlink(tmp_key);
		return -1;
	}
	int r = 0;
	if (!force) {
		if (link(tmp_key, key_path) < 0)
			r = sc_error_errno(err, errno, "writing `%s'", qkey);
		else if (link(tmp_pub, pub_path) < 0) {
			r = sc_error_errno(err, errno, "writing `%s'", qpub);
			unlink(key_path);
		}
	} else {
		old_key = xasprintf("%s.old-XXXXXX", key_path);
		int fd = mkstemp(old_key);
		if (fd >= 0) {
			close(fd);
			unlink(old_key);
			if (link(key_path, old_key) < 0) {
				free(old_key);
				old_key = NULL; /* no old key */
			}
		} else {
			free(old_key);
			old_key = NULL;
		}
		if (rename(tmp_key, key_path) < 0) {
			r = sc_error_errno(err, errno, "writing `%s'", qkey);
		} else if (rename(tmp_pub, pub_path) < 0) {
			r = sc_error_errno(err, errno, "writing `%s'", qpub);
			if (old_key ? rename(old_key, key_path) : unlink(key_path))
				sc_error_wrap(err, "and putting the old key back failed: it is in `%s'",
				              old_key);
		}
	}
	unlink(tmp_key);
	unlink(tmp_pub);
	if (old_key && r == 0)
		unlink(old_key);
	if (r == 0) {
		cleanup_free char *dir = sc_dirname(key_path);
		sc_fsync_dir(dir, NULL);
	}
	return r;
}
