/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libsconify public interface.
 *
 * Everything a program outside lib/ may call. Functions return >= 0 on success
 * and < 0 on failure; on failure they set *err (when err is not NULL), which the
 * caller releases with sconify_error_free(). The library never prints.
 */
#ifndef SCONIFY_H
#define SCONIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SCONIFY_BUILDING_LIB) && defined(__GNUC__)
#define SCONIFY_PUBLIC __attribute__((visibility("default")))
#else
#define SCONIFY_PUBLIC
#endif

/* ---- errors ------------------------------------------------------------ */

typedef enum {
	SCONIFY_ERR_GENERIC = 1,
	SCONIFY_ERR_INVALID,     /* malformed or hostile input */
	SCONIFY_ERR_NOT_FOUND,   /* an image, ref, blob or file does not exist */
	SCONIFY_ERR_INTEGRITY,   /* digest or size mismatch */
	SCONIFY_ERR_LIMIT,       /* a size or count cap was exceeded */
	SCONIFY_ERR_IO,          /* the operating system refused */
	SCONIFY_ERR_UNSUPPORTED, /* valid, but not something we handle */
	SCONIFY_ERR_USAGE,       /* the caller asked for something contradictory */
	SCONIFY_ERR_NETWORK,     /* no answer, a dropped connection, a busy server: worth retrying */
	SCONIFY_ERR_AUTH,        /* credentials missing, wrong, or not allowed this */
} sconify_error_kind_t;

typedef struct sconify_error_s *sconify_error_t;

SCONIFY_PUBLIC const char *sconify_error_message(sconify_error_t err);
SCONIFY_PUBLIC sconify_error_kind_t sconify_error_kind(sconify_error_t err);
/* errno of the failing system call, 0 when none */
SCONIFY_PUBLIC int sconify_error_errno(sconify_error_t err);
/* Frees *err and sets it to NULL; accepts NULL and a NULL *err. */
SCONIFY_PUBLIC void sconify_error_free(sconify_error_t *err);

SCONIFY_PUBLIC const char *sconify_version(void);

/* ---- limits --------------------------------------------------------------- */

/* Caps applied to everything read from outside. Zero-initialised fields take
 * the defaults documented in docs/limits.md (sconify_limits_default()). */
typedef struct {
	uint64_t max_document_bytes;  /* manifest, index, config, manifest.json */
	uint64_t max_layer_bytes;     /* uncompressed bytes of one layer */
	uint64_t max_expansion_ratio; /* uncompressed / compressed, checked past ratio_floor_bytes */
	uint64_t ratio_floor_bytes;
	uint64_t max_entries;        /* tar entries in one layer */
	uint64_t max_path_bytes;     /* one path or link target */
	uint64_t max_path_depth;     /* components of one path */
	uint64_t max_pax_bytes;      /* one pax or GNU long-name header */
	uint64_t max_trailing_bytes; /* bytes after a layer's end-of-archive marker */
	uint64_t max_descriptors;    /* layers of a manifest, entries of an index */
} sconify_limits_t;

SCONIFY_PUBLIC void sconify_limits_default(sconify_limits_t *limits);

/* ---- registries ---------------------------------------------------------------- */

/* How to reach a registry (docker:// references); zero-initialised is the
 * safe default: certificates verified, credentials looked up as docker and
 * skopeo do (docs/credentials.md). */
typedef struct {
	const char *creds;    /* "USER:PASSWORD", overriding every credential store */
	const char *authfile; /* containers auth.json / docker config.json to use alone */
	bool no_tls_verify;   /* accept any certificate, and plain http */
	const char *cert_dir; /* CA certificates (*.crt), client certificate (*.cert + *.key) */
} sconify_registry_options_t;

/* Receives one line of the HTTP trace (--debug); credentials are redacted. */
typedef void (*sconify_debug_fn)(void *userdata, const char *line);

/* ---- copy ------------------------------------------------------------------ */

typedef enum {
	SCONIFY_COMPRESS_KEEP = 0, /* leave every layer as it is */
	SCONIFY_COMPRESS_NONE,
	SCONIFY_COMPRESS_GZIP,
	SCONIFY_COMPRESS_ZSTD,
} sconify_compression_t;

/* What the copy is doing, for a progress display. */
typedef enum {
	SCONIFY_EVENT_BLOB,          /* a layer blob starts: done 0 */
	SCONIFY_EVENT_BLOB_PROGRESS, /* bytes of it read so far */
	SCONIFY_EVENT_BLOB_DONE,
	SCONIFY_EVENT_BLOB_SKIP,    /* the destination already has it */
	SCONIFY_EVENT_BLOB_MOUNTED, /* linked from the source repository, not copied */
	SCONIFY_EVENT_CONFIG,
	SCONIFY_EVENT_MANIFEST,
	SCONIFY_EVENT_INDEX,
} sconify_event_t;

/* Called from the threads that copy layers, one call at a time. total is the
 * blob's size (for a layer being recompressed: of the source blob). */
typedef void (*sconify_progress_fn)(void *userdata, sconify_event_t event, const char *digest, uint64_t done,
                                    uint64_t total);

typedef struct {
	const char *platform;           /* "os/arch[/variant]", NULL for the host's */
	bool all_platforms;             /* keep every platform of an index */
	sconify_compression_t compress; /* layer compression at the destination */
	int jobs;                       /* layers copied at once; 0 picks a default */
	sconify_limits_t limits;
	sconify_progress_fn progress;
	void *progress_userdata;
	sconify_registry_options_t src_registry;
	sconify_registry_options_t dest_registry;
	int retries; /* attempts after a failure worth retrying; 0: default (4), < 0: none */
	sconify_debug_fn debug;
	void *debug_userdata;
} sconify_copy_options_t;

typedef struct {
	char *digest;     /* of what the destination's ref now names */
	char *media_type; /* of that document */
} sconify_copy_result_t;

/* Copies SRC to DST, both in skopeo's transport syntax ("docker://REF",
 * "oci:DIR[:REF]", "oci-archive:FILE[:REF]", "docker-archive:FILE[:REF]"; a
 * bare "host/repo:tag" is docker://). A failed copy leaves the destination
 * without the new image: in a registry, no tag moves. */
SCONIFY_PUBLIC int sconify_copy(const char *src, const char *dst, const sconify_copy_options_t *opts,
                                sconify_copy_result_t *ret_result, sconify_error_t *err);
SCONIFY_PUBLIC void sconify_copy_result_free(sconify_copy_result_t *result);

/* ---- inspect ---------------------------------------------------------------- */

typedef enum {
	SCONIFY_INSPECT_SUMMARY = 0, /* JSON summary of the selected image */
	SCONIFY_INSPECT_RAW,         /* the exact manifest (or index) bytes */
	SCONIFY_INSPECT_CONFIG,      /* the exact config bytes of the selected image */
} sconify_inspect_mode_t;

typedef struct {
	const char *platform; /* selects an image of an index; NULL for the host's */
	sconify_inspect_mode_t mode;
	sconify_limits_t limits;
	sconify_registry_options_t registry;
	int retries;
	sconify_debug_fn debug;
	void *debug_userdata;
} sconify_inspect_options_t;

/* Writes the inspection result to *ret_out (malloc'd, *ret_len bytes). */
SCONIFY_PUBLIC int sconify_inspect(const char *ref, const sconify_inspect_options_t *opts, char **ret_out,
                                   size_t *ret_len, sconify_error_t *err);

/* ---- signing (cosign's format) ------------------------------------------------ */

/* Asked for the password of an encrypted private key. Returns a malloc'd
 * string the library wipes and frees, or NULL when none can be had. */
typedef char *(*sconify_password_fn)(void *userdata, const char *key_file);

/* Writes PREFIX.key (cosign's encrypted format, mode 0600) and PREFIX.pub
 * for a new ECDSA P-256 key. Existing files are kept unless force. */
SCONIFY_PUBLIC int sconify_keygen(const char *prefix, const char *password, bool force, sconify_error_t *err);

typedef struct {
	sconify_registry_options_t registry;
	int retries;
	sconify_limits_t limits;
	sconify_debug_fn debug;
	void *debug_userdata;
	/* "KEY=VALUE" pairs, NULL-terminated or NULL: sign: written into the
	 * payload's "optional"; verify: each must be there. */
	const char *const *annotations;
	bool recursive; /* sign: also every image of an index */
	sconify_password_fn password;
	void *password_userdata;
} sconify_sign_options_t;

typedef struct {
	size_t n;
	char **digests;    /* what was signed */
	char **signatures; /* where each signature is: "host/repo:sha256-<hex>.sig" */
} sconify_sign_result_t;

/* Signs what the docker:// reference IMAGE names with the key in key_file,
 * and stores the signature as cosign does (appended to the ones there). */
SCONIFY_PUBLIC int sconify_sign(const char *image, const char *key_file, const sconify_sign_options_t *opts,
                                sconify_sign_result_t *ret_result, sconify_error_t *err);
SCONIFY_PUBLIC void sconify_sign_result_free(sconify_sign_result_t *result);

/* Succeeds only when a signature by the public key in pub_file covers the
 * current digest of IMAGE (and carries every annotation asked for).
 * *ret_json: a JSON array of the verified payloads. */
SCONIFY_PUBLIC int sconify_verify(const char *image, const char *pub_file, const sconify_sign_options_t *opts,
                                  char **ret_json, size_t *ret_len, sconify_error_t *err);

/* ---- conversion (sconify image) ------------------------------------------- */

typedef enum {
	SCONIFY_MODE_HW = 0, /* attested by a hardware TEE */
	SCONIFY_MODE_SIM,    /* software only, for development: the policy must allow it */
} sconify_mode_t;

typedef struct {
	/* Regions (docs/shield.md): NULL-terminated path lists, or NULL. */
	const char *const *encrypted;     /* --dir */
	const char *const *authenticated; /* --authenticated */
	const char *session_name;         /* default: the destination's repository name */
	const char *namespace_name;       /* the session's namespace, or NULL */
	const char *service_name;         /* default "service" */
	const char *cas;                  /* SCONE_CAS_ADDR of the image, or NULL */
	const char *cas_key_hash;         /* SCONE_CAS_KEY_HASH of the image (the CAS pin), or NULL */
	const char *const *env;           /* "K=V" for the policy, never the image */
	const char *command;              /* replaces the image's entrypoint and cmd */
	sconify_mode_t mode;
	const char *key_file;    /* a volume key to reuse, else a new one */
	const char *key_out;     /* write the volume key here (0600) */
	const char *session_out; /* write the session policy here (0600) */
	bool reproducible;       /* fixed times, material derived from key and content */
	bool dry_run;            /* plan only: nothing is written */
	/* The runtime for the image's platform: runtime_dir/sconify-runtime-<arch>
	 * (amd64, arm64); runtime overrides it for a single platform. */
	const char *runtime;
	const char *runtime_dir;
	/* Sign the result (a docker:// destination) with this key, as `sconify sign'. */
	const char *sign_key;
	sconify_password_fn password;
	void *password_userdata;
	/* Called with the session policy (canonical YAML, secret) once the image
	 * is written and before the destination's tag moves: the CLI uploads it
	 * to the CAS here, so that a tag never names an image whose session is
	 * missing. A failure leaves the tag where it was. NULL: none. */
	int (*session_ready)(void *userdata, const char *yaml, size_t len, sconify_error_t *err);
	void *session_ready_userdata;
	/* Write the digest of the result (image or index) here, durably, after
	 * session_ready and before the destination's tag moves; NULL: none. */
	const char *digest_file;
	/* platform, all_platforms, compress (of rewritten layers), jobs, limits,
	 * progress, registries, retries, debug: as for copy. */
	sconify_copy_options_t copy;
} sconify_image_options_t;

typedef struct {
	char *digest; /* of what the destination names (NULL for a dry run) */
	char *media_type;
	char *json; /* what happened (or would), for --output json */
	/* The session policy as written (it holds the volume key: the caller
	 * wipes it, sconify_image_result_free() does), for an upload to a CAS. */
	char *session_yaml;
	size_t session_len;
} sconify_image_result_t;

/* Converts the image FROM names into a confidential one at TO (both in
 * skopeo's transport syntax): protected regions encrypted or authenticated,
 * the runtime and the shield metadata added as one layer, the command moved
 * into the session policy. TO gets its tag only once everything is there. */
SCONIFY_PUBLIC int sconify_image(const char *from, const char *to, const sconify_image_options_t *opts,
                                 sconify_image_result_t *ret_result, sconify_error_t *err);
SCONIFY_PUBLIC void sconify_image_result_free(sconify_image_result_t *result);

/* ---- policies (docs/policy.md) ------------------------------------------------ */

/* Checks the session policy in the file at path. Returns 0 once the file was
 * read: *ret_problems is then a NULL-terminated list, empty when the policy
 * is valid, else one message per problem ("FILE:LINE: field: problem"),
 * sorted by line; free it with sconify_policy_problems_free(). Returns < 0
 * when the file cannot be read or is larger than the cap (4 MiB). */
SCONIFY_PUBLIC int sconify_policy_validate(const char *path, char ***ret_problems, sconify_error_t *err);
SCONIFY_PUBLIC void sconify_policy_problems_free(char **problems);

/* Parses the policy at path and gives its canonical text (what `sconify
 * image' writes; it holds the policy's secrets: the caller wipes it) and/or
 * its session hash (lowercase hex SHA-256 of that text, what `predecessor'
 * names). Either ret_yaml (with ret_len) or ret_hash may be NULL. Fails with
 * the first problem of an invalid policy. */
SCONIFY_PUBLIC int sconify_policy_format(const char *path, char **ret_yaml, size_t *ret_len, char **ret_hash,
                                         sconify_error_t *err);

/* ---- CAS client (docs/cas.md, "Clients") ---------------------------------- */

/* A CAS is named by its URL, "https://HOST:PORT" (a bare "HOST:PORT" means
 * https; plain http is refused: sessions need mutual TLS). The CAS's
 * certificate is self-signed: it is trusted by the SHA-256 of its
 * SubjectPublicKeyInfo (DER, 64 lowercase hex digits, what `sconify-cas
 * serve' prints as key-hash), checked during the handshake, before any
 * request byte is sent. The client is known to the CAS by its identity: a PEM
 * file holding a private key and its certificate, the identity being the
 * same hash of that certificate's key. */
typedef struct {
	const char *identity; /* PEM: private key + certificate; NULL: none (sessions need one) */
	const char *key_hash; /* the pinned CAS key hash (required by sconify_cas_open) */
	long timeout_ms;      /* one whole request; 0: 30 s */
	sconify_debug_fn debug;
	void *debug_userdata;
} sconify_cas_options_t;

typedef struct sconify_cas_s sconify_cas_t;

/* Checks the URL, the key hash and the identity file (a key and a matching
 * certificate; refused when group or others may read it). Connects lazily. */
SCONIFY_PUBLIC int sconify_cas_open(const char *url, const sconify_cas_options_t *opts, sconify_cas_t **ret,
                                    sconify_error_t *err);
SCONIFY_PUBLIC void sconify_cas_close(sconify_cas_t *cas);
/* Connects once (GET /v1/health, pinned, with the identity): fails early on
 * an unreachable CAS or a key that is not the pinned one. */
SCONIFY_PUBLIC int sconify_cas_check(sconify_cas_t *cas, sconify_error_t *err);
/* The normalised URL ("https://HOST:PORT"), for messages. */
SCONIFY_PUBLIC const char *sconify_cas_url(const sconify_cas_t *cas);

/* Trust on first use: connects WITHOUT checking the CAS's certificate and
 * returns the hash of the key it presents (malloc'd hex). Whoever sits
 * between us and the CAS on this one connection could give their own key:
 * compare it with what the CAS printed, or pass it explicitly. opts may be
 * NULL (only timeout_ms and debug are used). */
SCONIFY_PUBLIC int sconify_cas_key_hash(const char *url, const sconify_cas_options_t *opts, char **ret_hash,
                                        sconify_error_t *err);
/* The key hash remembered for url in the user's config directory
 * (cas-keys, one "URL HASH" line each); *ret_hash NULL when there is none. */
SCONIFY_PUBLIC int sconify_cas_known_key_hash(const char *url, char **ret_hash, sconify_error_t *err);
/* Remembers (or replaces) the key hash for url there (0600). */
SCONIFY_PUBLIC int sconify_cas_remember_key_hash(const char *url, const char *hash, sconify_error_t *err);

typedef struct {
	char *name;
	char *hash; /* the session hash (what the next version names as predecessor) */
	/* get: the canonical policy; it holds keys and secrets (sconify_session_free() wipes it) */
	char *yaml;
	size_t yaml_len;
	bool created; /* put/upload: created (else updated) */
} sconify_session_t;

/* POSTs the policy as it is: the CAS creates the session or, when the
 * document names the current hash as `predecessor', updates it. */
SCONIFY_PUBLIC int sconify_session_put(sconify_cas_t *cas, const char *yaml, size_t len,
                                       sconify_session_t *ret, sconify_error_t *err);
/* Creates the session, or updates it when it exists: reads the stored hash
 * (GET, which needs the read right) and uploads the policy with it as
 * `predecessor' (a predecessor the document already names is kept). */
SCONIFY_PUBLIC int sconify_session_upload(sconify_cas_t *cas, const char *yaml, size_t len,
                                          sconify_session_t *ret, sconify_error_t *err);
SCONIFY_PUBLIC int sconify_session_get(sconify_cas_t *cas, const char *name, sconify_session_t *ret,
                                       sconify_error_t *err);
SCONIFY_PUBLIC int sconify_session_delete(sconify_cas_t *cas, const char *name, sconify_error_t *err);
/* Wipes the policy text and frees the fields; accepts NULL. */
SCONIFY_PUBLIC void sconify_session_free(sconify_session_t *s);

/* The user's config directory for sconify: $XDG_CONFIG_HOME/sconify, else
 * $HOME/.config/sconify (not created here). */
SCONIFY_PUBLIC int sconify_config_dir(char **ret, sconify_error_t *err);
/* The identity at path, created when it does not exist (a new P-256 key and
 * a self-signed certificate in one PEM file, mode 0600, its directory 0700;
 * *ret_created says so). path NULL: CONFIG_DIR/identity.pem. Returns the
 * path used (when ret_path is not NULL) and the identity's hash. */
SCONIFY_PUBLIC int sconify_identity_ensure(const char *path, char **ret_path, char **ret_hash,
                                           bool *ret_created, sconify_error_t *err);

/* ---- sconify serve: convert on registry push (docs/serve.md) ---- */

typedef struct {
	const char *config; /* the YAML configuration file */
	/* The sconify executable the workers run (`sconify image', `inspect',
	 * `sign'): each conversion is a process of its own. */
	const char *self_exe;
	bool log_json;     /* one JSON object a line, else text */
	unsigned grace_ms; /* SIGTERM: how long running jobs may finish before they are requeued */
	/* Log lines (no newline), already formatted; NULL: none. */
	void (*log)(void *userdata, const char *line);
	void *log_userdata;
	/* Called once listening, with log_userdata and the address bound
	 * ("127.0.0.1:8080"). */
	void (*ready)(void *userdata, const char *address);
} sconify_serve_options_t;

/* Checks a configuration as `serve' would load it; *ret_summary (may be
 * NULL) gets one line describing it. */
SCONIFY_PUBLIC int sconify_serve_check(const char *config, char **ret_summary, sconify_error_t *err);
/* Runs the service until SIGTERM or SIGINT. */
SCONIFY_PUBLIC int sconify_serve(const sconify_serve_options_t *opts, sconify_error_t *err);

#ifdef __cplusplus
}
#endif

#endif
