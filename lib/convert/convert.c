/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sconify image (DESIGN §3, docs/conversion.md): pass 1 plans from every
 * layer's headers (plan.c); pass 2 rewrites only the layers that hold
 * protected content (rewrite.c) and passes every other one through by
 * digest; one layer is added with the runtime and the sealed shield
 * metadata; the config's command moves into the session policy. Blobs go
 * first, the manifest after them, the tag last: a failure anywhere leaves
 * the destination's tag where it was.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive/tarwriter.h"
#include "config.h"
#include "convert/plan.h"
#include "convert/rewrite.h"
#include "convert/tee.h"
#include "copy/copy.h"
#include "core/buf.h"
#include "core/fsutil.h"
#include "core/json-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "digest/digest.h"
#include "image/mediatype.h"
#include "layer/compress.h"
#include "measure/measure.h"
#include "policy/policy.h"
#include "shield/shield.h"
#include "sign/keys.h"
#include "sign/sign.h"

#define RUNTIME_DIR "/.sconify"
#define RUNTIME_PATH RUNTIME_DIR "/runtime"
#define METADATA_PATH RUNTIME_DIR "/fspf"
#define RUNTIME_MAX (64u << 20)
/* What --reproducible writes where a time goes, when the source has none. */
#define EPOCH "1970-01-01T00:00:00Z"

#define LABEL_BASE_NAME "org.opencontainers.image.base.name"
#define LABEL_BASE_DIGEST "org.opencontainers.image.base.digest"
#define LABEL_VERSION "dev.sconify.version"
#define LABEL_MEASUREMENT "dev.sconify.measurement"
#define LABEL_MODE "dev.sconify.mode"

typedef struct {
	sc_copy_ctx cc;
	const sconify_image_options_t *o;
	const char *from, *to;
	sc_shield_key *key;
	sc_policy *policy;
	char *session;  /* [ns/]name */
	char *now;      /* the time written into configs */
	bool multi;     /* several platforms: one service each */
	json_t *images; /* the summary, one object per image */
	EVP_PKEY *sign_key;
} conv;

/* ---- small helpers ---- */

static const char *image_arch(const sc_platform *p)
{
	return p->arch ? p->arch : "unknown";
}

/* The names of a policy (sessions, services): letters, digits, '-', '_'. */
static char *policy_name(const char *s)
{
	char *out = xstrdup(*s ? s : "session");
	for (char *p = out; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_'))
			*p = '-';
	return out;
}

/* The session name when none is given: the destination's repository or
 * directory name. */
static char *default_session(const sc_image_ref *ref)
{
	const char *base = ref->repository ? ref->repository : ref->path ? ref->path : "session";
	size_t len = strlen(base);
	while (len > 1 && base[len - 1] == '/')
		len--;
	const char *slash = NULL;
	for (size_t i = 0; i < len; i++)
		if (base[i] == '/')
			slash = base + i;
	cleanup_free char *last =
	        slash ? xstrndup(slash + 1, len - (size_t)(slash + 1 - base)) : xstrndup(base, len);
	return policy_name(last);
}

static json_t *config_strings(json_t *cfg, const char *key)
{
	json_t *v = json_object_get(json_object_get(cfg, "config"), key);
	return json_is_array(v) ? v : NULL;
}

/* ---- the command, environment and working directory the policy gets ---- */

typedef struct {
	char **argv;
	size_t argc;
	char **env; /* "K=V", in the image's order with --env applied */
	size_t n_env;
	char *cwd;
	char *user; /* the image's User; NULL: none (root) */
} launch;

static void launch_clear(launch *l)
{
	sc_strv_free(l->argv);
	sc_strv_free(l->env);
	free(l->cwd);
	free(l->user);
	*l = (launch){0};
}

static void strv_push(char ***v, size_t *n, char *s)
{
	*v = xreallocarray(*v, *n + 2, sizeof(char *));
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

static void env_set(launch *l, const char *kv)
{
	size_t klen = strcspn(kv, "=");
	for (size_t i = 0; i < l->n_env; i++)
		if (strncmp(l->env[i], kv, klen) == 0 && l->env[i][klen] == '=') {
			free(l->env[i]);
			l->env[i] = xstrdup(kv);
			return;
		}
	strv_push(&l->env, &l->n_env, xstrdup(kv));
}

static const char *env_get(const launch *l, const char *key)
{
	size_t klen = strlen(key);
	for (size_t i = 0; i < l->n_env; i++)
		if (strncmp(l->env[i], key, klen) == 0 && l->env[i][klen] == '=')
			return l->env[i] + klen + 1;
	return NULL;
}

static int launch_from(conv *v, const sc_image_config *cfg, launch *l, sconify_error_t *err)
{
	json_t *c = json_object_get(cfg->root, "config");
	if (v->o->command) {
		size_t argc = 0;
		l->argv = sc_policy_split_command(v->o->command, &argc);
		l->argc = argc;
	} else {
		const char *keys[] = {"Entrypoint", "Cmd"};
		for (size_t k = 0; k < 2; k++) {
			json_t *arr = config_strings(cfg->root, keys[k]), *s;
			size_t i;
			json_array_foreach (arr, i, s)
				if (json_is_string(s))
					strv_push(&l->argv, &l->argc, xstrdup(json_string_value(s)));
		}
	}
	if (l->argc == 0 || l->argv[0][0] == '\0')
		return sc_error(err, SCONIFY_ERR_USAGE, 0,
		                "the image has no entrypoint or cmd to run: give one with --command");
	json_t *env = config_strings(cfg->root, "Env"), *s;
	size_t i;
	json_array_foreach (env, i, s)
		if (json_is_string(s) && strchr(json_string_value(s), '='))
			env_set(l, json_string_value(s));
	for (const char *const *e = v->o->env; e && *e; e++) {
		if (strchr(*e, '=') == NULL || **e == '=') {
			cleanup_free char *q = sc_quote(*e, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_USAGE, 0, "--env `%s' is not KEY=VALUE", q);
		}
		env_set(l, *e);
	}
	const char *wd = json_string_value(json_object_get(c, "WorkingDir"));
	l->cwd = xstrdup(wd && wd[0] == '/' ? wd : "/");
	/* The user goes into the policy with the command (docs/conversion.md):
	 * the runtime starts as root and switches before the application runs. */
	const char *user = json_string_value(json_object_get(c, "User"));
	if (user && user[0] != '\0') {
		if (!sc_policy_valid_user(user)) {
			cleanup_free char *q = sc_quote(user, SC_QUOTE_MAX);
			return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
			                "the image's User `%s' is not \"uid[:gid]\" or \"name[:group]\"", q);
		}
		l->user = xstrdup(user);
	}
	return 0;
}

/* The measurement's question about a candidate for the executable, answered
 * from the final tree. */
static int tree_check(void *ctx, const char *path, char **ret_real, sconify_error_t *err)
{
	(void)err;
	sc_planner *p = ctx;
	_cleanup_(sc_plan_location_clear) sc_plan_location loc = {0};
	cleanup_error sconify_error_t e = NULL;
	if (sc_planner_locate(p, path, &loc, &e) < 0 || (loc.mode & 0111) == 0)
		return 0;
	*ret_real = steal_pointer(&loc.path);
	return 1;
}

/* The executable argv[0] names, found in the final tree as the runtime
 * finds it at start (docs/measurement.md). */
static int find_executable(sc_planner *p, const launch *l, sc_plan_location *ret, sconify_error_t *err)
{
	cleanup_free char *path = NULL;
	if (sc_measure_resolve_command(l->argv[0], env_get(l, "PATH"), l->cwd, tree_check, p, &path, err) < 0)
		return -1;
	return sc_planner_locate(p, path, ret, err);
}

static int compute_measurement(const launch *l, const sc_plan_location *exe, const sc_digest *exe_digest,
                               const sc_digest *runtime_digest, const sc_shield_pin *pin,
                               const sc_shield_metadata *md, char out[SC_MEASURE_HEX + 1],
                               sconify_error_t *err)
{
	cleanup_measure sc_measure *m = sc_measure_new();
	uint8_t bytes[SC_MEASURE_BYTES];
	if (sc_measure_parse_hex(sc_digest_hex(runtime_digest), bytes, err) < 0)
		return -1;
	sc_measure_set_runtime(m, bytes);
	if (sc_measure_set_exe_path(m, exe->path, err) < 0 ||
	    sc_measure_parse_hex(sc_digest_hex(exe_digest), bytes, err) < 0)
		return -1;
	sc_measure_set_exe_sha256(m, bytes);
	sc_measure_set_pin(m, md ? pin->bytes : NULL);
	for (size_t i = 0; i < l->argc; i++)
		if (sc_measure_add_arg(m, l->argv[i], err) < 0)
			return -1;
	for (size_t i = 0; i < l->n_env; i++)
		if (sc_measure_add_env(m, l->env[i], err) < 0)
			return -1;
	if (sc_measure_set_cwd(m, l->cwd, err) < 0)
		return -1;
	/* The regions as the runtime will read them: from the sealed metadata
	 * itself, so that both sides measure the same list by construction. */
	for (size_t i = 0; md && i < sc_shield_metadata_regions(md); i++) {
		const char *path;
		sc_shield_kind kind;
		sc_shield_metadata_region(md, i, &path, &kind);
		if (sc_measure_add_region(m, (sc_measure_region_kind)kind, path, err) < 0)
			return -1;
	}
	if (sc_measure_finish(m, bytes, err) < 0)
		return sc_error_wrap(err, "measuring");
	sc_measure_hex(bytes, out);
	return 0;
}

/* ---- reading layers ---- */

/* The uncompressed stream of a source layer; *ret_verified stays owned by
 * the chain and tells afterwards whether the blob was read to its end. The
 * compressed bytes also go to tee, unless it is NULL. */
static int open_layer(conv *v, const sc_descriptor *d, const char *what, sc_tee *tee, sc_reader **ret,
                      sc_reader **ret_verified, sc_compression *ret_comp, sconify_error_t *err)
{
	sc_layer_type type;
	if (!sc_layer_type_parse(d->media_type, &type)) {
		cleanup_free char *q = sc_quote(d->media_type, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
		                "%s has media type `%s', not an image layer's", what, q);
	}
	if (type.nondistributable)
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
		                "%s is nondistributable: it cannot be read to find protected files", what);
	sc_reader *verified = NULL, *sniffed = NULL;
	if (sc_source_blob(v->cc.src, d, &verified, err) < 0)
		return -1;
	sc_compression found;
	if (sc_compression_sniff(tee ? sc_tee_reader_new(tee, verified) : verified, &found, &sniffed, err) <
	    0)
		return sc_error_wrap(err, "%s", what);
	*ret = sc_decompress_reader_new(sniffed, found, &v->cc.limits, what);
	if (tee)
		sc_tee_set_decompressor(tee, *ret);
	*ret_verified = verified;
	*ret_comp = found;
	return 0;
}

/* Pass 1 reads a layer on two threads: a helper pulls the blob, checks its
 * digest and decompresses it into a ring of buffers, while the caller's
 * thread parses the tar, hashes the diff_id and plans. The bytes and the
 * errors come out as from inner itself, in order; a failure of inner is
 * handed out where it happened in the stream and repeats. The helper is
 * stopped and joined when the reader is freed, so inner (and whatever was
 * chained to it) is the caller's again after prefetch_stop().
 * The ring holds 4 MiB, twice the largest output the decompressor makes at
 * once (a gzip member decoded whole, LD_OUT_MAX): with a ring smaller than
 * that the helper waited for the planner to empty it before it could decode
 * the next member, and the two threads took turns (pass 1 of
 * bench/image.sh: 1.65 s with 1 MiB, 1.27 s with 4 MiB). */
#define PREFETCH_BUF (256u * 1024)
#define PREFETCH_NBUF 16

struct prefetch {
	sc_reader base;
	sc_reader *inner;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned char *data[PREFETCH_NBUF];
	size_t len[PREFETCH_NBUF];
	/* under mu: buffers [head, tail) are full; the consumer is at pos in
	 * buffer head; the producer fills buffer tail while tail - head < N */
	uint64_t head, tail;
	bool eof, stop;
	sconify_error_t fail; /* inner's failure, after the last full buffer */
	size_t pos;
	sc_tee *tee; /* told of every buffer decoded; may be NULL */
};

static void *prefetch_main(void *arg)
{
	struct prefetch *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->tail - p->head == PREFETCH_NBUF)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop)
			break;
		unsigned slot = (unsigned)(p->tail % PREFETCH_NBUF);
		pthread_mutex_unlock(&p->mu);
		size_t got = 0;
		sconify_error_t e = NULL;
		ssize_t n = 1;
		while (got < PREFETCH_BUF &&
		       (n = sc_reader_read(p->inner, p->data[slot] + got, PREFETCH_BUF - got, &e)) > 0)
			got += (size_t)n;
		if (p->tee && got > 0)
			sc_tee_mark(p->tee);
		pthread_mutex_lock(&p->mu);
		p->len[slot] = got;
		if (got > 0)
			p->tail++;
		if (n < 0) {
			if (e == NULL)
				sc_error(&e, SCONIFY_ERR_GENERIC, 0, "reading the layer failed");
			sc_error_move(&p->fail, &e);
		}
		if (n <= 0) {
			p->eof = true;
			break;
		}
		pthread_cond_broadcast(&p->cv);
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static ssize_t prefetch_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	struct prefetch *p = (struct prefetch *)base;
	if (!p->running) /* no helper thread: read inner directly */
		return sc_reader_read(p->inner, buf, len, err);
	if (len == 0)
		return 0;
	pthread_mutex_lock(&p->mu);
	while (p->head == p->tail && !p->eof)
		pthread_cond_wait(&p->cv, &p->mu);
	if (p->head == p->tail) {
		int r = 0;
		if (p->fail) {
			r = sc_error(err, p->fail->kind, p->fail->errno_, "%s", p->fail->msg);
			if (p->fail->restartable)
				sc_error_set_restartable(err);
		}
		pthread_mutex_unlock(&p->mu);
		return r;
	}
	unsigned slot = (unsigned)(p->head % PREFETCH_NBUF);
	pthread_mutex_unlock(&p->mu);
	size_t n = p->len[slot] - p->pos;
	if (n > len)
		n = len;
	memcpy(buf, p->data[slot] + p->pos, n);
	p->pos += n;
	if (p->pos == p->len[slot]) {
		p->pos = 0;
		pthread_mutex_lock(&p->mu);
		p->head++;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	return (ssize_t)n;
}

/* Stops and joins the helper; inner stays. */
static void prefetch_stop(struct prefetch *p)
{
	if (!p->running)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	p->running = false;
}

static void prefetch_free(sc_reader *base)
{
	struct prefetch *p = (struct prefetch *)base;
	prefetch_stop(p);
	sc_reader_free(p->inner);
	for (size_t i = 0; i < PREFETCH_NBUF; i++)
		free(p->data[i]);
	sconify_error_free(&p->fail);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

static const struct sc_reader_ops prefetch_ops = {.read = prefetch_read, .free = prefetch_free};

/* Takes inner; without a second core (or a thread) it is read directly. */
static struct prefetch *prefetch_new(sc_reader *inner, int cpus, sc_tee *tee)
{
	struct prefetch *p = xzalloc(sizeof(*p));
	p->base.ops = &prefetch_ops;
	p->inner = inner;
	p->tee = tee;
	if (pthread_mutex_init(&p->mu, NULL) != 0 || pthread_cond_init(&p->cv, NULL) != 0)
		abort();
	if (cpus < 2)
		return p;
	for (size_t i = 0; i < PREFETCH_NBUF; i++)
		p->data[i] = xmalloc(PREFETCH_BUF);
	p->running = pthread_create(&p->thread, NULL, prefetch_main, p) == 0;
	return p;
}

/* ---- passing layers on while pass 1 reads them ---- */

/* To a registry, pass 1 also uploads each layer it reads (its compressed
 * bytes as they come, through convert/tee.h), so that a layer that passes
 * through is neither read from the source nor sent again in pass 2: its
 * upload is only committed there, once the plan says the layer passes. The
 * destination gets no byte of an entry whose name lies in an encrypted
 * region: a compressed byte is sent only when the planner has seen every
 * entry its decoding reaches and found none of them in an encrypted region;
 * on the first such entry the upload is cancelled and the registry asked to
 * delete what it got. The upload is also cancelled when the plan rewrites
 * the layer after all (a hard link in a later layer brought content of it
 * into a region). A failure of any of it only means that pass 2 copies the
 * layer as it would have anyway. */
struct tee {
	sc_tee *tee;
	sc_dest *dst;
	sc_blob_upload *u; /* NULL once committed or cancelled */
	sc_writer *w;
};

static int tee_seal(void *userdata)
{
	struct tee *t = userdata;
	cleanup_error sconify_error_t e = NULL;
	return t->dst->ops->blob_seal(t->dst, t->u, &e);
}

static void tee_free(struct tee *t)
{
	if (t == NULL)
		return;
	sc_tee_free(t->tee); /* its thread is done with the upload */
	if (t->u)
		t->dst->ops->blob_cancel(t->dst, t->u);
	free(t);
}

/* An upload for layer d while pass 1 reads it, or NULL where pass 2 does
 * better or the same: a destination that is not a registry, a blob it has,
 * one it can mount from the source's registry, a single core (pass 1 then
 * reads on one thread, and nothing could be sent before the layer's end), a
 * blob small enough for pass 2 to send in one request. */
#define TEE_MIN_BLOB (1u << 20)

static struct tee *tee_start(conv *v, const sc_descriptor *d)
{
	sc_dest *dst = v->cc.dst;
	if (v->o->dry_run || dst == NULL || dst->ops->blob_begin_chunks == NULL ||
	    dst->ops->blob_cancel == NULL || dst->ops->blob_seal == NULL || !dst->caps.parallel_blobs ||
	    v->cc.cpus < 2 || d->size <= TEE_MIN_BLOB)
		return NULL;
	const sc_image_ref *s = v->cc.src->ref, *o = dst->ref;
	if (s->kind == SC_TRANSPORT_DOCKER && s->domain && o->domain && strcmp(s->domain, o->domain) == 0)
		return NULL;
	bool have = false;
	cleanup_error sconify_error_t e = NULL;
	if (dst->ops->has_blob(dst, &d->digest, &have, &e) < 0 || have)
		return NULL;
	struct tee *t = xzalloc(sizeof(*t));
	t->dst = dst;
	if (dst->ops->blob_begin_chunks(dst, &t->u, &t->w, &e) < 0) {
		free(t);
		return NULL;
	}
	t->tee = sc_tee_new(t->w, tee_seal, t);
	if (t->tee == NULL) {
		tee_free(t);
		return NULL;
	}
	return t;
}

/* Pass 2, for a layer that passes: commits what pass 1 sent. The layer's
 * progress events come once the commit worked: on a failure the copy that
 * takes over reports them. */
static int tee_commit(conv *v, struct tee *t, const sc_descriptor *in, sconify_error_t *err)
{
	sc_blob_upload *u = steal_pointer(&t->u);
	if (t->dst->ops->blob_commit(t->dst, u, &in->digest, in->size, err) < 0)
		return -1;
	sc_copy_progress(&v->cc, SCONIFY_EVENT_BLOB, &in->digest, 0, in->size);
	sc_copy_progress(&v->cc, SCONIFY_EVENT_BLOB_DONE, &in->digest, in->size, in->size);
	return 0;
}

/* The tees of one image's layers (NULL where none runs). */
struct tees {
	struct tee **t;
	size_t n;
};

static void tees_release(struct tees *s)
{
	for (size_t i = 0; i < s->n; i++)
		tee_free(s->t[i]);
	free(s->t);
}

static int check_read_to_end(sc_reader *verified, const char *what, sconify_error_t *err)
{
	if (!sc_verified_reader_done(verified))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: data after the end of the archive", what);
	return 0;
}

/* Hashes the bytes [off, off + size) of a stream passing through. */
struct tap {
	sc_writer base;
	sc_writer *next;
	uint64_t pos, off, size;
	sc_hasher *h;
};

static int tap_write(sc_writer *base, const void *buf, size_t len, sconify_error_t *err)
{
	struct tap *t = (struct tap *)base;
	uint64_t lo = t->pos > t->off ? t->pos : t->off;
	uint64_t hi = t->pos + len < t->off + t->size ? t->pos + len : t->off + t->size;
	if (t->h && lo < hi)
		sc_hasher_update(t->h, (const char *)buf + (lo - t->pos), (size_t)(hi - lo));
	t->pos += len;
	return sc_writer_write(t->next, buf, len, err);
}

static void tap_free(sc_writer *base)
{
	free(base);
}

static const struct sc_writer_ops tap_ops = {.write = tap_write, .free = tap_free};

static sc_writer *tap_new(sc_writer *next, uint64_t off, uint64_t size, sc_hasher *h)
{
	struct tap *t = xzalloc(sizeof(*t));
	t->base.ops = &tap_ops;
	t->next = next;
	t->off = off;
	t->size = size;
	t->h = h;
	return &t->base;
}

/* ---- pass 2 ---- */

typedef struct {
	conv *v;
	const sc_plan *plan;
	const sc_digest *diff_id;  /* of the source layer being read */
	sc_shield_entry **results; /* by plan file */
} rewrite_ctx;

static int hook_begin(void *userdata, const sc_plan_entry *e, sc_shield_encoder **ret, sconify_error_t *err)
{
	rewrite_ctx *rc = userdata;
	if (e->action == SC_PLAN_HASH)
		return sc_shield_hasher_new(e->size, 0, ret, err);
	uint8_t id[SC_SHIELD_FILE_ID_BYTES];
	if (rc->v->o->reproducible)
		sc_shield_file_id_derive(rc->v->key, rc->diff_id->str, e->data_offset,
		                         rc->plan->files[e->file].names[0], id);
	else if (sc_shield_file_id_random(id, err) < 0)
		return -1;
	return sc_shield_encryptor_new(rc->v->key, id, e->size, 0, ret, err);
}

static int hook_end(void *userdata, const sc_plan_entry *e, sc_shield_entry *result, sconify_error_t *err)
{
	(void)err;
	rewrite_ctx *rc = userdata;
	sc_shield_entry_free(rc->results[e->file]);
	rc->results[e->file] = result;
	return 0;
}

typedef struct {
	sc_descriptor out;
	sc_digest diff_id;
} layer_out;

/* Commits a layer written through a compressor between two hash writers
 * (digest_w after it, diff_w before it) and describes it in ret. */
static int commit_layer(conv *v, sc_blob_upload *u, sc_writer *digest_w, sc_writer *diff_w,
                        sc_compression target, layer_out *ret, sconify_error_t *err)
{
	sc_digest digest;
	uint64_t size = 0;
	sc_hash_writer_result(digest_w, &digest, &size);
	sc_hash_writer_result(diff_w, &ret->diff_id, NULL);
	if (v->cc.dst->ops->blob_commit(v->cc.dst, u, &digest, size, err) < 0)
		return -1;
	ret->out = (sc_descriptor){.media_type = xstrdup(sc_layer_media_type(false, target, false)),
	                           .digest = digest,
	                           .size = size};
	ret->out.json = sc_descriptor_json_new(ret->out.media_type, &digest, size);
	return 0;
}

/* Reads a source layer through the plan: into a new blob when it is
 * rewritten, else only to hash what it holds (authenticated files, the
 * executable) while the blob itself is passed through. */
static int process_layer(conv *v, rewrite_ctx *rc, const sc_descriptor *in, const sc_plan_layer *pl,
                         const sc_plan_location *exe, unsigned index, sc_hasher *exe_hash, int threads,
                         struct tee *tee, layer_out *ret, sconify_error_t *err)
{
	cleanup_free char *what = xasprintf("layer %s", in->digest.str);
	bool rewrite = pl->rewrite;
	bool read = rewrite || pl->n_entries > 0 || (exe && exe->layer == index);
	if (!rewrite) {
		/* what pass 1 sent, else (or should the registry refuse it) a copy */
		cleanup_error sconify_error_t e = NULL;
		if ((tee == NULL || tee_commit(v, tee, in, &e) < 0) &&
		    sc_copy_pass_blob(&v->cc, in, SCONIFY_EVENT_BLOB, err) < 0)
			return -1;
		sc_descriptor_copy(&ret->out, in);
		sc_layer_type type;
		sc_layer_type_parse(in->media_type, &type);
		if (type.docker) {
			free(ret->out.media_type);
			ret->out.media_type = xstrdup(sc_layer_media_type(false, type.compression, false));
		}
		ret->diff_id = *rc->diff_id;
		if (!read)
			return 0;
	}

	cleanup_reader sc_reader *plain = NULL;
	sc_reader *verified = NULL;
	sc_compression comp;
	if (open_layer(v, in, what, NULL, &plain, &verified, &comp, err) < 0)
		return -1;

	sc_blob_upload *u = NULL;
	sc_writer *dest = NULL;
	cleanup_writer sc_writer *sink = NULL, *digest_w = NULL, *compress_w = NULL, *diff_w = NULL;
	sc_compression target = comp;
	if (rewrite) {
		target = v->o->copy.compress == SCONIFY_COMPRESS_KEEP
		                 ? comp
		                 : sc_copy_wanted_compression(&v->cc, comp);
		if (v->cc.dst->ops->blob_begin(v->cc.dst, NULL, 0, &u, &dest, err) < 0)
			return -1;
		digest_w = sc_hash_writer_new(dest, SC_SHA256);
		compress_w = sc_compress_writer_new(digest_w, target, threads);
		diff_w = sc_hash_writer_new(compress_w, SC_SHA256);
	} else {
		sink = sc_null_writer_new();
	}
	sc_rewrite_hooks hooks = {.begin = hook_begin, .end = hook_end, .userdata = rc};
	cleanup_writer sc_writer *rw = sc_layer_rewriter_new(pl, rewrite ? diff_w : sink, &hooks);
	cleanup_writer sc_writer *tap = tap_new(rw, exe ? exe->data_offset : 0, exe ? exe->size : 0,
	                                        exe && exe->layer == index ? exe_hash : NULL);
	if (rewrite)
		sc_copy_progress(&v->cc, SCONIFY_EVENT_BLOB, &in->digest, 0, in->size);
	int r = sc_stream_pump(plain, tap, NULL, err);
	if (r == 0)
		r = sc_writer_finish(rw, err);
	if (r == 0)
		r = check_read_to_end(verified, what, err);
	if (r == 0 && rewrite)
		r = sc_writer_finish(compress_w, err);
	if (r == 0 && rewrite)
		r = sc_writer_finish(dest, err);
	if (r < 0) {
		if (u)
			v->cc.dst->ops->blob_abort(v->cc.dst, u);
		return sc_error_wrap(err, "%s", what);
	}
	if (!rewrite)
		return 0;

	if (commit_layer(v, u, digest_w, diff_w, target, ret, err) < 0)
		return -1;
	sc_copy_progress(&v->cc, SCONIFY_EVENT_BLOB_DONE, &in->digest, in->size, in->size);
	return 0;
}

/* Pass 2 runs one job per source layer on the copy engine's pool, so that
 * the copies of passed-through layers overlap the rewrites. Each job writes
 * only its own outs[i], the results of the files whose data lie in its
 * layer (a file's data lie in one layer) and, for the executable's layer,
 * exe_hash. */
typedef struct {
	conv *v;
	struct tee **tees; /* what pass 1 sent of each layer */
	const sc_document *m;
	const sc_image_config *cfg;
	const sc_plan *plan;
	const sc_plan_location *exe;
	sc_hasher *exe_hash;
	sc_shield_entry **results;
	layer_out *outs;
	int threads; /* compressor threads of each rewritten layer */
	/* Rewrites running at once are at most max_rewrites (the copies of
	 * passed-through layers are not counted): each holds a decompressor and
	 * a compressor, and libzstd's takes tens of MiB. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t rewriting, max_rewrites;
} pass2;

static int pass2_job(void *userdata, size_t i, sconify_error_t *err)
{
	pass2 *p = userdata;
	bool rewrite = p->plan->layers[i].rewrite;
	if (rewrite) {
		pthread_mutex_lock(&p->mu);
		while (p->rewriting >= p->max_rewrites)
			pthread_cond_wait(&p->cv, &p->mu);
		p->rewriting++;
		pthread_mutex_unlock(&p->mu);
	}
	/* A layer that pass 1 sent and the plan rewrites after all (a hard
	 * link of a later layer brought content of it into a region): the
	 * destination deletes what it got. */
	struct tee *tee = p->tees[i];
	if (tee && rewrite) {
		tee_free(tee);
		p->tees[i] = tee = NULL;
	}
	rewrite_ctx rc = {.v = p->v, .plan = p->plan, .diff_id = &p->cfg->diff_ids[i], .results = p->results};
	int r = process_layer(p->v, &rc, &p->m->layers[i], &p->plan->layers[i], p->exe, (unsigned)i,
	                      p->exe_hash, p->threads, tee, &p->outs[i], err);
	if (rewrite) {
		pthread_mutex_lock(&p->mu);
		p->rewriting--;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	return r;
}

static int run_pass2(pass2 *p, sconify_error_t *err)
{
	conv *v = p->v;
	size_t n = p->m->n_layers, rewrites = 0;
	bool zstd = v->o->copy.compress == SCONIFY_COMPRESS_ZSTD;
	for (size_t i = 0; i < n; i++) {
		sc_layer_type type;
		if (!p->plan->layers[i].rewrite)
			continue;
		rewrites++;
		if (v->o->copy.compress == SCONIFY_COMPRESS_KEEP &&
		    sc_layer_type_parse(p->m->layers[i].media_type, &type))
			zstd |= type.compression == SC_COMP_ZSTD;
	}
	/* One zstd rewrite at a time (libzstd's workers use the cores); gzip
	 * rewrites hold a few MiB each: one per core. */
	p->max_rewrites = zstd ? 1 : (size_t)v->cc.cpus;
	size_t active = sc_copy_workers(&v->cc, n);
	if (active > p->max_rewrites)
		active = p->max_rewrites;
	if (active > rewrites)
		active = rewrites ? rewrites : 1;
	/* The cores shared among the rewrites that run at once. libzstd's
	 * workers are threads of their own beside the one that decompresses,
	 * encrypts and hashes: they get the other cores (each worker also holds
	 * its jobs' buffers, about 16 MiB apiece with 8 MiB jobs). */
	int share = v->cc.cpus / (int)active;
	if (zstd)
		share--;
	p->threads = share > 1 ? share : 1;
	if (pthread_mutex_init(&p->mu, NULL) != 0 || pthread_cond_init(&p->cv, NULL) != 0)
		abort();
	int r = sc_copy_run_jobs(&v->cc, n, pass2_job, p, err);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	return r;
}

/* ---- the added layer ---- */

static int read_runtime(conv *v, const sc_platform *plat, char **ret, size_t *ret_len, sconify_error_t *err)
{
	const char *arch = image_arch(plat);
	cleanup_free char *path = NULL;
	if (v->o->runtime && !v->multi) {
		path = xstrdup(v->o->runtime);
	} else {
		const char *dir = v->o->runtime_dir ? v->o->runtime_dir : getenv("SCONIFY_RUNTIME_DIR");
		if (dir == NULL)
			dir = SCONIFY_RUNTIME_DIR;
		cleanup_free char *name = xasprintf("sconify-runtime-%s", arch);
		path = sc_path_join(dir, name);
	}
	if (strcmp(plat->os ? plat->os : "linux", "linux") != 0 ||
	    (strcmp(arch, "amd64") != 0 && strcmp(arch, "arm64") != 0))
		return sc_error(
		        err, SCONIFY_ERR_UNSUPPORTED, 0,
		        "no runtime for platform %s/%s: sconify converts linux/amd64 and linux/arm64 images",
		        plat->os ? plat->os : "?", arch);
	if (sc_read_file(path, RUNTIME_MAX, ret, ret_len, err) < 0)
		return sc_error_wrap(err, "the runtime for %s (--runtime, SCONIFY_RUNTIME_DIR)", arch);
	return 0;
}

/* A layer with the runtime and the metadata, written the same way every
 * time (tarwriter: mtime 0, root-owned). */
static int runtime_layer(conv *v, const char *runtime, size_t runtime_len, const uint8_t *md, size_t md_len,
                         layer_out *ret, sconify_error_t *err)
{
	cleanup_free char *tmp = NULL;
	cleanup_close int fd = -1;
	if (sc_tmpfile(sc_tmpdir(), "sconify-layer-", &tmp, &fd, err) < 0)
		return -1;
	unlink(tmp);
	cleanup_tar_writer sc_tar_writer *tw = sc_tar_writer_new(fd);
	if (sc_tar_writer_add_dir(tw, RUNTIME_DIR + 1, 0755, err) < 0 ||
	    sc_tar_writer_add_bytes(tw, RUNTIME_PATH + 1, 0755, runtime, runtime_len, err) < 0 ||
	    (md && sc_tar_writer_add_bytes(tw, METADATA_PATH + 1, 0644, md, md_len, err) < 0) ||
	    sc_tar_writer_finish(tw, err) < 0)
		return sc_error_wrap(err, "writing the runtime layer");

	sc_compression target = v->o->copy.compress == SCONIFY_COMPRESS_ZSTD   ? SC_COMP_ZSTD
	                        : v->o->copy.compress == SCONIFY_COMPRESS_NONE ? SC_COMP_NONE
	                                                                       : SC_COMP_GZIP;
	if (target == SC_COMP_ZSTD && v->cc.dst->caps.no_zstd)
		target = SC_COMP_GZIP;
	sc_blob_upload *u = NULL;
	sc_writer *dest = NULL;
	if (v->cc.dst->ops->blob_begin(v->cc.dst, NULL, 0, &u, &dest, err) < 0)
		return -1;
	cleanup_writer sc_writer *digest_w = sc_hash_writer_new(dest, SC_SHA256);
	cleanup_writer sc_writer *compress_w = sc_compress_writer_new(digest_w, target, v->cc.cpus);
	cleanup_writer sc_writer *diff_w = sc_hash_writer_new(compress_w, SC_SHA256);
	cleanup_reader sc_reader *r = sc_fd_reader_new(fd, false, 0, -1);
	if (sc_stream_pump(r, diff_w, NULL, err) < 0 || sc_writer_finish(compress_w, err) < 0 ||
	    sc_writer_finish(dest, err) < 0) {
		v->cc.dst->ops->blob_abort(v->cc.dst, u);
		return sc_error_wrap(err, "writing the runtime layer");
	}
	return commit_layer(v, u, digest_w, diff_w, target, ret, err);
}

/* ---- the config ---- */

static json_t *new_config(conv *v, const sc_image_config *cfg, const layer_out *layers, size_t n,
                          const char *service, const char *measurement, const sc_digest *base)
{
	json_t *root = json_deep_copy(cfg->root);
	json_t *c = json_object_get(root, "config");
	if (!json_is_object(c)) {
		c = json_object();
		json_object_set_new(root, "config", c);
	}
	json_object_set_new(c, "Entrypoint", json_pack("[s]", RUNTIME_PATH));
	json_object_del(c, "Cmd");
	json_object_del(c, "User"); /* in the policy: the runtime switches to it */
	json_object_del(c, "Healthcheck");
	json_object_del(c, "OnBuild");
	/* The application's environment is in the policy; the image says only
	 * where the runtime finds its configuration. */
	cleanup_free char *config_id = xasprintf("%s/%s", v->session, service);
	cleanup_free char *id = xasprintf("SCONE_CONFIG_ID=%s", config_id);
	/* The measurement the runtime states to the CAS (it can compute it only
	 * once the configuration is released, and then refuses to run anything
	 * that measures differently: docs/attestation.md). */
	cleanup_free char *claim = xasprintf("SCONE_MEASUREMENT=%s", measurement);
	json_t *env = json_pack("[s,s,s]", id,
	                        v->o->mode == SCONIFY_MODE_SIM ? "SCONE_MODE=sim" : "SCONE_MODE=hw", claim);
	if (v->o->cas) {
		cleanup_free char *cas = xasprintf("SCONE_CAS_ADDR=%s", v->o->cas);
		json_array_insert_new(env, 0, json_string(cas));
	}
	if (v->o->cas_key_hash) { /* the runtime pins the CAS by it */
		cleanup_free char *pin = xasprintf("SCONE_CAS_KEY_HASH=%s", v->o->cas_key_hash);
		json_array_insert_new(env, v->o->cas ? 1 : 0, json_string(pin));
	}
	json_object_set_new(c, "Env", env);
	json_object_set_new(c, "WorkingDir", json_string("/"));
	json_t *labels = json_object_get(c, "Labels");
	if (!json_is_object(labels)) {
		labels = json_object();
		json_object_set_new(c, "Labels", labels);
	}
	json_object_set_new(labels, LABEL_BASE_NAME, json_string(v->from));
	json_object_set_new(labels, LABEL_BASE_DIGEST, json_string(base->str));
	json_object_set_new(labels, LABEL_VERSION, json_string(sconify_version()));
	json_object_set_new(labels, LABEL_MEASUREMENT, json_string(measurement));
	json_object_set_new(labels, LABEL_MODE, json_string(v->o->mode == SCONIFY_MODE_SIM ? "sim" : "hw"));

	json_t *diff_ids = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(diff_ids, json_string(layers[i].diff_id.str));
	json_object_set_new(root, "rootfs", json_pack("{s:s,s:o}", "type", "layers", "diff_ids", diff_ids));
	json_t *history = json_object_get(root, "history");
	if (!json_is_array(history)) {
		history = json_array();
		json_object_set_new(root, "history", history);
	}
	json_array_append_new(history,
	                      json_pack("{s:s,s:s,s:s}", "created", v->now, "created_by", "sconify image",
	                                "comment", "sconify: enclave runtime and shield metadata"));
	json_object_set_new(root, "created", json_string(v->now));
	return root;
}

/* ---- one image ---- */

static int add_regions(conv *v, sc_shield_builder *b, sconify_error_t *err)
{
	for (const char *const *p = v->o->encrypted; p && *p; p++)
		if (sc_shield_builder_add_region(b, *p, SC_SHIELD_ENCRYPTED, err) < 0)
			return sc_error_wrap(err, "--dir");
	for (const char *const *p = v->o->authenticated; p && *p; p++)
		if (sc_shield_builder_add_region(b, *p, SC_SHIELD_AUTHENTICATED, err) < 0)
			return sc_error_wrap(err, "--authenticated");
	return 0;
}

/* A region named through a symlink would protect nothing (regions are
 * matched on the names where content lands), and the runtime refuses a link
 * at a region or above one: the region must be named as it lies. */
static int check_regions_are_real(conv *v, sc_planner *planner, sconify_error_t *err)
{
	const char *const *lists[] = {v->o->encrypted, v->o->authenticated};
	for (size_t l = 0; l < 2; l++)
		for (const char *const *p = lists[l]; p && *p; p++) {
			cleanup_free char *at = NULL;
			const char *target = NULL;
			if (sc_planner_symlink_on(planner, *p, &at, &target) == 0)
				continue;
			cleanup_free char *q = sc_quote(*p, SC_QUOTE_MAX);
			cleanup_free char *qa = sc_quote(at, SC_QUOTE_MAX);
			cleanup_free char *qt = sc_quote(target, SC_QUOTE_MAX);
			return sc_error(
			        err, SCONIFY_ERR_USAGE, 0,
			        "%s `%s': `%s' is a symlink in the image (to `%s'); name the region by "
			        "the directory the link leads to",
			        l == 0 ? "--dir" : "--authenticated", q, qa, qt);
		}
	return 0;
}

static bool any_region(const conv *v)
{
	return (v->o->encrypted && v->o->encrypted[0]) || (v->o->authenticated && v->o->authenticated[0]);
}

static json_t *plan_summary(const sc_plan *plan, const sc_document *m)
{
	json_t *layers = json_array();
	for (size_t i = 0; i < plan->n_layers; i++) {
		const sc_plan_layer *l = &plan->layers[i];
		json_array_append_new(layers,
		                      json_pack("{s:s,s:s}", "source", m->layers[i].digest.str, "action",
		                                l->rewrite     ? "rewrite"
		                                : l->n_entries ? "read"
		                                               : "pass"));
	}
	json_t *files = json_array();
	for (size_t i = 0; i < plan->n_files; i++)
		json_array_append_new(files, json_pack("{s:s,s:s,s:I}", "path", plan->files[i].names[0],
		                                       "region", sc_shield_kind_name(plan->files[i].kind),
		                                       "size", (json_int_t)plan->files[i].size));
	return json_pack("{s:o,s:o,s:I,s:I,s:I,s:I}", "layers", layers, "files", files, "encrypted_bytes",
	                 (json_int_t)plan->encrypt_bytes, "authenticated_bytes", (json_int_t)plan->hash_bytes,
	                 "dropped_entries", (json_int_t)plan->dropped, "protected_symlinks",
	                 (json_int_t)plan->n_symlinks);
}

static int convert_image(conv *v, const sc_document *m, sc_doc_out *ret, sconify_error_t *err)
{
	if (!sc_doc_kind_is_manifest(m->kind))
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0, "%s is not an image manifest",
		                m->digest.str);
	cleanup_config sc_image_config *cfg = NULL;
	if (!sc_media_type_is_image_config(m->config.media_type))
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0, "manifest %s is an artifact, not an image",
		                m->digest.str);
	if (sc_source_config(v->cc.src, &m->config, &cfg, err) < 0)
		return -1;
	/* The runtime is already the entrypoint of a converted image: converting
	 * it again would wrap the runtime in itself (and a webhook service
	 * would loop on its own output). */
	const char *version = json_string_value(json_object_get(
	        json_object_get(json_object_get(cfg->root, "config"), "Labels"), LABEL_VERSION));
	if (version) {
		cleanup_free char *q = sc_quote(version, 40);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "image %s is already a confidential image (label " LABEL_VERSION
		                " says sconify `%s' converted it)",
		                m->digest.str, q);
	}
	if (cfg->n_diff_ids != m->n_layers)
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "manifest %s has %zu layers but config %s has %zu diff_ids", m->digest.str,
		                m->n_layers, m->config.digest.str, cfg->n_diff_ids);

	/* Pass 1. */
	cleanup_shield_builder sc_shield_builder *regions = NULL;
	if (sc_shield_builder_new(0, &regions, err) < 0 || add_regions(v, regions, err) < 0)
		return -1;
	cleanup_planner sc_planner *planner = sc_planner_new(regions, &v->cc.limits);
	{
		/* Pass 1 hashes the candidates for the executable, so that its
		 * layer is not read again for it (a failure here is reported
		 * after pass 1, where it was before). */
		_cleanup_(launch_clear) launch early = {0};
		cleanup_error sconify_error_t ignored = NULL;
		if (launch_from(v, cfg, &early, &ignored) == 0) {
			const char *slash = strrchr(early.argv[0], '/');
			sc_planner_hash_executables(planner, slash ? slash + 1 : early.argv[0]);
		}
	}
	_cleanup_(tees_release) struct tees tees = {
	        .t = xcalloc(m->n_layers ? m->n_layers : 1, sizeof(*tees.t)), .n = m->n_layers};
	bool teeing = true;
	for (size_t i = 0; i < m->n_layers; i++) {
		cleanup_free char *what = xasprintf("layer %s", m->layers[i].digest.str);
		cleanup_reader sc_reader *plain = NULL;
		sc_reader *verified = NULL;
		sc_compression comp;
		sc_digest diff_id;
		struct tee *tee = tees.t[i] = teeing ? tee_start(v, &m->layers[i]) : NULL;
		sc_tee *sending = tee ? tee->tee : NULL;
		if (open_layer(v, &m->layers[i], what, sending, &plain, &verified, &comp, err) < 0)
			return -1;
		struct prefetch *pf = prefetch_new(steal_pointer(&plain), v->cc.cpus, sending);
		plain = &pf->base;
		sc_planner_watch(planner, sending ? sc_tee_entry : NULL, sending);
		int r = sc_planner_add_layer(planner, plain, what, &diff_id, err);
		sc_planner_watch(planner, NULL, NULL);
		if (r < 0) {
			if (tee)
				sc_tee_abandon(sending); /* nothing more goes out */
			return -1;
		}
		prefetch_stop(pf); /* verified is ours again */
		if (check_read_to_end(verified, what, err) < 0)
			return -1;
		if (!sc_digest_equal(&diff_id, &cfg->diff_ids[i]))
			return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
			                "%s: diff_id mismatch: its content hashes to %s, the config says %s",
			                what, diff_id.str, cfg->diff_ids[i].str);
		if (tee && !sc_tee_finish(sending, m->layers[i].size)) {
			/* a destination slower than the source stays so: the
			 * copies of pass 2, which overlap the rewrites, are then
			 * the faster way for the other layers too */
			teeing = !sc_tee_fell_behind(sending);
			tee_free(tee);
			tees.t[i] = NULL;
		}
	}
	cleanup_plan sc_plan *plan = NULL;
	if (sc_planner_finish(planner, &plan, err) < 0 || check_regions_are_real(v, planner, err) < 0)
		return -1;
	for (size_t i = 0; i < plan->n_symlinks; i++)
		if (sc_shield_builder_add_symlink(regions, plan->symlinks[i].path, plan->symlinks[i].target,
		                                  err) < 0)
			return -1;

	_cleanup_(launch_clear) launch l = {0};
	_cleanup_(sc_plan_location_clear) sc_plan_location exe = {0};
	if (launch_from(v, cfg, &l, err) < 0 || find_executable(planner, &l, &exe, err) < 0)
		return -1;

	json_t *summary = plan_summary(plan, m);
	json_array_append_new(v->images, summary);
	cleanup_free char *plat = sc_platform_string(&cfg->platform);
	json_object_set_new(summary, "platform", json_string(plat));
	json_object_set_new(summary, "source", json_string(m->digest.str));
	json_object_set_new(summary, "executable", json_string(exe.path));
	if (v->o->dry_run)
		return 0;

	/* Pass 2. */
	size_t n_out = m->n_layers + 1;
	layer_out *outs = xcalloc(n_out, sizeof(*outs));
	sc_shield_entry **results = xcalloc(plan->n_files ? plan->n_files : 1, sizeof(*results));
	cleanup_hasher sc_hasher *exe_hash = sc_hasher_new(SC_SHA256);
	cleanup_free char *runtime = NULL;
	cleanup_free uint8_t *md = NULL;
	size_t runtime_len = 0, md_len = 0;
	sc_shield_pin pin = {0};
	cleanup_free char *service =
	        v->multi ? xasprintf("%s-%s", v->o->service_name ? v->o->service_name : "service",
	                             image_arch(&cfg->platform))
	                 : xstrdup(v->o->service_name ? v->o->service_name : "service");
	/* The executable's digest, when pass 1 hashed it; else its layer is
	 * read in pass 2 to hash it. */
	sc_digest exe_digest;
	bool exe_known = sc_planner_digest(planner, &exe, &exe_digest);
	pass2 p2 = {.v = v,
	            .tees = tees.t,
	            .m = m,
	            .cfg = cfg,
	            .plan = plan,
	            .exe = exe_known ? NULL : &exe,
	            .exe_hash = exe_hash,
	            .results = results,
	            .outs = outs};
	int r = run_pass2(&p2, err);
	/* The shield metadata. */
	if (r == 0 && any_region(v)) {
		for (size_t i = 0; i < plan->n_files && r == 0; i++) {
			const sc_plan_file *f = &plan->files[i];
			r = sc_shield_builder_add_file(regions, f->names[0], results[i], err);
			for (size_t k = 1; k < f->n_names && r == 0; k++)
				r = sc_shield_builder_add_link(regions, f->names[k], f->names[0], err);
		}
		if (r == 0)
			r = sc_shield_builder_seal(regions, v->key, v->o->reproducible, &md, &md_len, &pin,
			                           err);
	}
	if (r == 0)
		r = read_runtime(v, &cfg->platform, &runtime, &runtime_len, err);

	/* The measurement of what will run. */
	char measurement[SC_MEASURE_HEX + 1] = {0};
	if (r == 0) {
		sc_digest runtime_digest;
		if (!exe_known)
			sc_hasher_final(exe_hash, &exe_digest);
		sc_digest_of(SC_SHA256, runtime, runtime_len, &runtime_digest);
		/* the metadata as the runtime will open it */
		cleanup_shield_metadata sc_shield_metadata *opened = NULL;
		if (md)
			r = sc_shield_metadata_open(v->key, md, md_len, &pin, &opened, err);
		if (r == 0)
			r = compute_measurement(&l, &exe, &exe_digest, &runtime_digest, &pin, opened,
			                        measurement, err);
	}
	if (r == 0)
		r = runtime_layer(v, runtime, runtime_len, md, md_len, &outs[m->n_layers], err);

	/* Config and manifest. */
	cleanup_json json_t *config = NULL, *manifest = NULL;
	if (r == 0) {
		config = new_config(v, cfg, outs, n_out, service, measurement, &m->digest);
		size_t len;
		cleanup_free char *data = sc_json_dump(config, &len);
		cleanup_config sc_image_config *check = NULL;
		sc_digest cd;
		sc_digest_of(SC_SHA256, data, len, &cd);
		r = sc_config_parse(data, len, "the new config", &v->cc.limits, &check, err);
		if (r == 0) {
			sc_copy_progress(&v->cc, SCONIFY_EVENT_CONFIG, &cd, len, len);
			r = sc_dest_put_bytes(v->cc.dst, data, len, &cd, err);
		}
		if (r == 0) {
			json_t *layers = json_array();
			for (size_t i = 0; i < n_out; i++)
				json_array_append_new(layers, sc_descriptor_to_json(&outs[i].out));
			manifest = json_pack("{s:i,s:s,s:o,s:o}", "schemaVersion", 2, "mediaType",
			                     SC_MT_OCI_MANIFEST, "config",
			                     sc_descriptor_json_new(SC_MT_OCI_CONFIG, &cd, len), "layers",
			                     layers);
			r = sc_copy_put_document(&v->cc, m, manifest, SCONIFY_EVENT_MANIFEST, ret, err);
		}
	}

	/* The policy's service. */
	if (r == 0) {
		sc_policy_service *s = sc_policy_add_service(v->policy, service);
		sc_policy_service_set_argv(s, (const char *const *)l.argv);
		for (size_t i = 0; i < l.n_env; i++) {
			cleanup_free char *k = xstrndup(l.env[i], strcspn(l.env[i], "="));
			sc_policy_service_setenv(s, k, strchr(l.env[i], '=') + 1);
		}
		free(s->pwd);
		s->pwd = xstrdup(l.cwd);
		free(s->user);
		s->user = l.user ? xstrdup(l.user) : NULL;
		if (md) {
			uint8_t key[SC_SHIELD_KEY_BYTES];
			sc_shield_key_bytes(v->key, key);
			sc_policy_service_set_fspf(s, METADATA_PATH, key, pin.bytes, sizeof(pin.bytes));
			OPENSSL_cleanse(key, sizeof(key));
		}
		sc_policy_service_add_measurement(s, measurement);
		json_object_set_new(summary, "service", json_string(service));
		json_object_set_new(summary, "measurement", json_string(measurement));
		json_object_set_new(summary, "digest", json_string(ret->digest.str));
	}

	for (size_t i = 0; i < n_out; i++)
		sc_descriptor_clear(&outs[i].out);
	free(outs);
	for (size_t i = 0; i < plan->n_files; i++)
		sc_shield_entry_free(results[i]);
	free(results);
	return r < 0 ? sc_error_wrap(err, "converting manifest %s", m->digest.str) : 0;
}

/* ---- indexes and the whole run ---- */

static int convert_any(conv *v, const sc_document *d, unsigned depth, sc_doc_out *ret, sconify_error_t *err);

static int convert_index(conv *v, const sc_document *idx, unsigned depth, sc_doc_out *ret,
                         sconify_error_t *err)
{
	size_t n = idx->n_manifests;
	sc_doc_out *outs = xcalloc(n ? n : 1, sizeof(*outs));
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		cleanup_document sc_document *child = NULL;
		r = sc_source_document(v->cc.src, &idx->manifests[i], &child, err);
		if (r == 0)
			r = convert_any(v, child, depth + 1, &outs[i], err);
	}
	cleanup_json json_t *root = NULL;
	if (r == 0) {
		/* the source's index, annotations and platforms kept, as OCI */
		root = sc_copy_index_rewrite(idx, outs, true);
		if (!v->o->dry_run)
			r = sc_copy_put_document(&v->cc, idx, root, SCONIFY_EVENT_INDEX, ret, err);
	}
	for (size_t i = 0; i < n; i++)
		sc_doc_out_clear(&outs[i]);
	free(outs);
	return r;
}

static int convert_any(conv *v, const sc_document *d, unsigned depth, sc_doc_out *ret, sconify_error_t *err)
{
	if (depth > 4)
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "index %s: too many nested indexes",
		                d->digest.str);
	if (sc_doc_kind_is_index(d->kind))
		return convert_index(v, d, depth, ret, err);
	return convert_image(v, d, ret, err);
}

static char *time_now(const conv *v, const sc_document *top)
{
	(void)top;
	if (v->o->reproducible)
		return xstrdup(EPOCH);
	char buf[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return xstrdup(buf);
}

static int load_key(conv *v, sconify_error_t *err)
{
	if (v->o->key_file)
		return sc_shield_key_load(v->o->key_file, &v->key, err);
	return sc_shield_key_generate(&v->key, err);
}

/* The session policy file, written next to its place and moved there only
 * once the image is pushed. */
static int prepare_file(const char *path, const char *data, size_t len, char **ret_tmp, sconify_error_t *err)
{
	cleanup_free char *dir = sc_dirname(path);
	cleanup_close int fd = -1;
	if (sc_tmpfile(dir, "sconify-", ret_tmp, &fd, err) < 0)
		return sc_error_wrap(err, "--session-out");
	cleanup_writer sc_writer *w = sc_fd_writer_new(fd, false);
	if (fchmod(fd, 0600) < 0 || sc_writer_write(w, data, len, err) < 0 || fsync(fd) < 0) {
		if (err && *err == NULL)
			sc_error_errno(err, errno, "writing `%s'", *ret_tmp);
		unlink(*ret_tmp);
		return -1;
	}
	return 0;
}

static int do_image(conv *v, sconify_image_result_t *res, sconify_error_t *err)
{
	cleanup_document sc_document *top = NULL;
	if (sc_source_top(v->cc.src, &top, err) < 0)
		return -1;
	cleanup_free char *session_name =
	        v->o->session_name ? xstrdup(v->o->session_name)
	                           : default_session(v->cc.dst ? v->cc.dst->ref : v->cc.src->ref);
	v->session = v->o->namespace_name ? xasprintf("%s/%s", v->o->namespace_name, session_name)
	                                  : xstrdup(session_name);
	v->now = time_now(v, top);
	v->policy = sc_policy_new(v->session);
	v->policy->mode = v->o->mode == SCONIFY_MODE_SIM ? SC_POLICY_MODE_SIM : SC_POLICY_MODE_HARDWARE;
	v->images = json_array();

	if (v->o->sign_key && !v->o->dry_run) {
		if (v->cc.dst->ref->kind != SC_TRANSPORT_DOCKER)
			return sc_error(err, SCONIFY_ERR_USAGE, 0,
			                "--sign-key: signatures are kept in a registry; the destination must "
			                "be docker://");
		/* before any work: a wrong password must not cost a conversion */
		if (sc_private_key_load(v->o->sign_key, v->o->password, v->o->password_userdata, &v->sign_key,
		                        err) < 0)
			return -1;
	}
	if (!v->o->dry_run && load_key(v, err) < 0)
		return -1;
	if (!v->o->dry_run && v->o->key_out &&
	    !(v->o->key_file && strcmp(v->o->key_file, v->o->key_out) == 0) &&
	    sc_shield_key_save(v->key, v->o->key_out, false, err) < 0)
		return sc_error_wrap(err, "--key-out");

	sc_doc_out out = {0};
	int r;
	if (sc_doc_kind_is_index(top->kind) && v->o->copy.all_platforms) {
		if (v->cc.dst && !v->cc.dst->caps.index)
			return sc_error(err, SCONIFY_ERR_UNSUPPORTED, 0,
			                "`%s' holds one image, not an index: pick one with --platform "
			                "instead of --all",
			                v->cc.dst->name);
		v->multi = true;
		r = convert_any(v, top, 0, &out, err);
	} else {
		cleanup_document sc_document *image = NULL;
		r = sc_select_platform(v->cc.src, top, &v->cc.want, &image, err);
		if (r == 0)
			r = convert_image(v, image, &out, err);
	}

	cleanup_json json_t *summary = json_pack(
	        "{s:s,s:s,s:s,s:s,s:O}", "source", v->from, "destination", v->to, "session", v->session,
	        "mode", v->o->mode == SCONIFY_MODE_SIM ? "sim" : "hw", "images", v->images);
	if (r == 0 && v->o->dry_run) {
		json_object_set_new(summary, "dry_run", json_true());
		res->json = sc_json_dump(summary, NULL);
		sc_doc_out_clear(&out);
		return 0;
	}

	/* The policy is checked as strictly as one read from a file, before the
	 * tag moves. */
	cleanup_free char *yaml = NULL, *tmp = NULL;
	size_t yaml_len = 0;
	if (r == 0)
		r = sc_policy_check(v->policy, err);
	if (r == 0)
		r = sc_policy_emit(v->policy, &yaml, &yaml_len, err);
	if (r == 0 && v->o->session_out)
		r = prepare_file(v->o->session_out, yaml, yaml_len, &tmp, err);
	if (r == 0 && v->o->session_ready &&
	    (r = v->o->session_ready(v->o->session_ready_userdata, yaml, yaml_len, err)) < 0)
		sc_error_wrap(err, "the image is written but its tag did not move");
	/* After the session is at the CAS, before the tag moves: whoever finds
	 * the tag naming the digest in this file knows the conversion is
	 * complete but perhaps for its signature (sconify serve). */
	if (r == 0 && v->o->digest_file) {
		cleanup_free char *line = xasprintf("%s\n", out.digest.str);
		if (sc_write_file_atomic(v->o->digest_file, line, strlen(line), 0644, err) < 0)
			r = sc_error_wrap(err, "--digest-file");
	}
	if (r == 0)
		r = v->cc.dst->ops->commit(v->cc.dst, out.media_type, &out.digest, out.size, err);
	if (r == 0 && tmp) {
		if (rename(tmp, v->o->session_out) < 0) {
			r = sc_error_errno(
			        err, errno,
			        "--session-out: the image is pushed, but moving `%s' to `%s' failed", tmp,
			        v->o->session_out);
		}
		free(tmp);
		tmp = NULL;
	} else if (tmp) {
		unlink(tmp);
	}
	if (r < 0) {
		if (yaml)
			OPENSSL_cleanse(yaml, yaml_len);
		sc_doc_out_clear(&out);
		return -1;
	}
	res->session_yaml = steal_pointer(&yaml);
	res->session_len = yaml_len;

	if (v->o->sign_key) {
		sconify_sign_options_t so = {.registry = v->o->copy.dest_registry,
		                             .retries = v->o->copy.retries,
		                             .limits = v->o->copy.limits,
		                             .debug = v->o->copy.debug,
		                             .debug_userdata = v->o->copy.debug_userdata,
		                             .recursive = true,
		                             .password = v->o->password,
		                             .password_userdata = v->o->password_userdata};
		const sc_image_ref *ref = v->cc.dst->ref;
		cleanup_free char *image =
		        xasprintf("docker://%s/%s@%s", ref->domain, ref->repository, out.digest.str);
		sconify_sign_result_t sres = {0};
		if (sc_sign_image(image, v->sign_key, &so, &sres, err) < 0) {
			sc_doc_out_clear(&out);
			return sc_error_wrap(err, "the image is pushed, but signing it failed");
		}
		json_t *sigs = json_array();
		for (size_t i = 0; i < sres.n; i++)
			json_array_append_new(sigs, json_string(sres.signatures[i]));
		json_object_set_new(summary, "signatures", sigs);
		sconify_sign_result_free(&sres);
	}
	json_object_set_new(summary, "digest", json_string(out.digest.str));
	if (v->o->session_out)
		json_object_set_new(summary, "session_file", json_string(v->o->session_out));
	if (v->o->key_out)
		json_object_set_new(summary, "key_file", json_string(v->o->key_out));
	res->digest = xstrdup(out.digest.str);
	res->media_type = xstrdup(out.media_type);
	res->json = sc_json_dump(summary, NULL);
	sc_doc_out_clear(&out);
	return 0;
}

int sconify_image(const char *from, const char *to, const sconify_image_options_t *opts,
                  sconify_image_result_t *ret_result, sconify_error_t *err)
{
	sconify_image_options_t defaults = {0};
	if (opts == NULL)
		opts = &defaults;
	conv v = {.o = opts, .from = from, .to = to};
	sconify_image_result_t res = {0};
	int r = sc_copy_ctx_open(&v.cc, from, opts->dry_run ? NULL : to, &opts->copy, err);
	if (r == 0)
		r = do_image(&v, &res, err);
	if (r < 0) {
		cleanup_free char *q = sc_quote(from, SC_QUOTE_MAX);
		sc_error_wrap(err, "converting `%s'", q);
		sconify_image_result_free(&res);
	} else {
		*ret_result = res;
	}
	sc_copy_ctx_close(&v.cc);
	sc_shield_key_free(v.key);
	EVP_PKEY_free(v.sign_key);
	sc_policy_free(v.policy);
	free(v.session);
	free(v.now);
	json_decref(v.images);
	return r;
}

void sconify_image_result_free(sconify_image_result_t *result)
{
	if (result == NULL)
		return;
	free(result->digest);
	free(result->media_type);
	free(result->json);
	if (result->session_yaml) {
		OPENSSL_cleanse(result->session_yaml, result->session_len);
		free(result->session_yaml);
	}
	*result = (sconify_image_result_t){0};
}
