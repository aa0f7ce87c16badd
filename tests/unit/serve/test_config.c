/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/xalloc.h"
#include "serve/config.h"
#include "support.h"

#define DIGEST_HEX "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define DIGEST "sha256:" DIGEST_HEX
#define HEX64 "3f7a9c1e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a"
/* A secret that must never show in a message. */
#define MARK "S3CR3TMARK"

/* Two lines: every document below counts its lines from 3. */
#define HEAD "state_dir: state\nrules:\n"
/* A rule in two lines (DEST, then SRC): its keys go on from line 5. */
#define DEST "  - destination: \"{registry}/c/{repository}:{tag}\"\n"
#define SRC "    source: {registry: \"registry.example:5000\"}\n"
#define RULE DEST SRC
#define MINIMAL HEAD RULE

static char *tmp;

static void setup(void)
{
	tmp = sc_test_tmpdir();
}

static void teardown(void)
{
	sc_test_tmpdir_cleanup(tmp);
	tmp = NULL;
}

/* Writes tmp/name (parents made) with mode; returns its path. */
static char *put(const char *name, const char *content, mode_t mode)
{
	char *path = sc_path_join(tmp, name);
	cleanup_free char *dir = sc_dirname(path);
	ck_assert_int_eq(sc_mkdir_p(dir, 0700, NULL), 0);
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	size_t n = strlen(content);
	ck_assert_int_eq(write(fd, content, n), (ssize_t)n);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static int load(const char *yaml, sc_serve_config **ret, sconify_error_t *err)
{
	cleanup_free char *path = put("serve.yaml", yaml, 0600);
	return sc_serve_config_load(path, ret, err);
}

static void strv_freep(char ***v)
{
	sc_strv_free(*v);
}

static bool secret_is(const sc_secret *s, const char *want)
{
	return s->len == strlen(want) && memcmp(s->data, want, s->len) == 0;
}

/* ---- accepted configurations ---- */

START_TEST(accepts_the_issue_example_with_defaults)
{
	cleanup_free char *hs = put("etc/github-secret", "gh-secret\n", 0600);
	cleanup_free char *key = put("etc/cosign.key", "key", 0644);
	cleanup_free char *yaml = xasprintf(
	        "listen: 127.0.0.1:8080\n"
	        "state_dir: /var/lib/sconify\n"
	        "workers: 2\n"
	        "auth:\n"
	        "  distribution: {bearer: \"a-shared-token\"}\n"
	        "  github: {hmac_secret_file: %s}\n"
	        "rules:\n"
	        "  - source: {registry: \"registry.example:5000\", repository: \"apps/*\", tag: \"*\"}\n"
	        "    destination: \"{registry}/confidential/{repository}:{tag}\"\n"
	        "    dir: [/app]\n"
	        "    mode: sim\n"
	        "    cas: https://cas.example:8081\n"
	        "    sign_key: %s\n"
	        "    tls_verify: false\n",
	        hs, key);
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_ok(load(yaml, &c, &err), err);
	ck_assert_str_eq(c->listen, "127.0.0.1:8080");
	ck_assert_str_eq(c->state_dir, "/var/lib/sconify");
	ck_assert_uint_eq(c->workers, 2);
	ck_assert_ptr_null(c->tls_cert);
	ck_assert_ptr_null(c->tls_key);
	/* defaults */
	ck_assert_uint_eq(c->max_attempts, 5);
	ck_assert_uint_eq(c->backoff_ms, 10000);
	ck_assert_uint_eq(c->max_backoff_ms, 600000);
	ck_assert_uint_eq(c->max_body, 256 * 1024);
	ck_assert_uint_eq(c->max_connections, 1024);
	ck_assert_uint_eq(c->max_per_ip, 64);
	ck_assert_uint_eq(c->request_timeout_ms, 30000);
	ck_assert_uint_eq(c->replay_window_s, 7 * 86400);
	ck_assert_uint_eq(c->job_timeout_ms, 3600 * 1000);
	ck_assert_uint_eq(c->max_queued, 100000);
	/* auth */
	const sc_serve_auth *d = &c->auth[SC_SOURCE_DISTRIBUTION];
	ck_assert(d->configured);
	ck_assert_uint_eq(d->n_bearer, 1);
	ck_assert(secret_is(&d->bearer[0], "a-shared-token"));
	ck_assert(!c->auth[SC_SOURCE_HARBOR].configured);
	const sc_serve_auth *g = &c->auth[SC_SOURCE_GITHUB];
	ck_assert(g->configured);
	ck_assert_uint_eq(g->n_hmac, 1);
	ck_assert(secret_is(&g->hmac[0], "gh-secret"));
	ck_assert(!c->operator_.configured);
	/* the rule */
	ck_assert_uint_eq(c->n_rules, 1);
	const sc_serve_rule *r = &c->rules[0];
	ck_assert_str_eq(r->name, "rule-1");
	ck_assert_uint_eq(r->line, 8);
	ck_assert_int_eq(r->from, -1);
	ck_assert_str_eq(r->registry, "registry.example:5000");
	ck_assert_str_eq(r->repository, "apps/*");
	ck_assert_str_eq(r->tag, "*");
	ck_assert_str_eq(r->destination, "{registry}/confidential/{repository}:{tag}");
	ck_assert_uint_eq(r->n_dir, 1);
	ck_assert_str_eq(r->dir[0], "/app");
	ck_assert_uint_eq(r->n_authenticated, 0);
	ck_assert_str_eq(r->mode, "sim");
	ck_assert_str_eq(r->cas, "https://cas.example:8081");
	ck_assert_str_eq(r->sign_key, key);
	ck_assert(!r->src_tls_verify);
	ck_assert(!r->dest_tls_verify);
	ck_assert_ptr_null(r->session);
	ck_assert_ptr_null(r->command);
	ck_assert(!r->all);
	ck_assert_ptr_eq(sc_serve_config_rule(c, "rule-1"), r);
	ck_assert_ptr_null(sc_serve_config_rule(c, "rule-2"));
}
END_TEST

START_TEST(accepts_every_field)
{
	cleanup_free char *yaml =
	        xasprintf("listen: \"[::1]:0\"\n"
	                  "tls: {cert: tls/cert.pem, key: tls/key.pem}\n"
	                  "state_dir: state\n"
	                  "workers: 64\n"
	                  "retry: {attempts: 3, backoff: 0.25, max_backoff: 60}\n"
	                  "limits: {body: 65536, connections: 100, per_ip: 10, request_timeout: 2.5, "
	                  "replay_window: 3600, job: 10.5, queue: 10000000}\n"
	                  "auth:\n"
	                  "  distribution:\n"
	                  "    bearer: [new-token, old-token]\n"
	                  "    bearer_file: tokens\n"
	                  "  harbor:\n"
	                  "    header: {name: Authorization, value: \"Basic aGFyYm9y\"}\n"
	                  "  github: {hmac_secret: inline-hmac}\n"
	                  "  operator: {bearer: op-token}\n"
	                  "rules:\n"
	                  "  - name: web-v2\n"
	                  "    source: {from: harbor, registry: \"Harbor.Example\", repository: \"apps/**\", "
	                  "tag: \"v*\"}\n"
	                  "    destination: \"harbor.example/sconified/{name}:{tag}-{digest_hex}\"\n"
	                  "    dir: [/app, /data]\n"
	                  "    authenticated: [/etc]\n"
	                  "    env: {GREETING: hello, EMPTY: \"\"}\n"
	                  "    command: \"python3 /app/main.py\"\n"
	                  "    mode: hw\n"
	                  "    cas: cas.example:8081\n"
	                  "    cas_key_hash: " HEX64 "\n"
	                  "    identity: id/identity.pem\n"
	                  "    session: \"{rule}-{name}\"\n"
	                  "    namespace: team/prod\n"
	                  "    service_name: app\n"
	                  "    sign_key: cosign.key\n"
	                  "    sign_password_file: cosign.password\n"
	                  "    platform: linux/arm64/v8\n"
	                  "    src_tls_verify: false\n"
	                  "    authfile: auth.json\n"
	                  "    src_cert_dir: certs/src\n"
	                  "    dest_cert_dir: certs/dest\n"
	                  "  - name: all-of-github\n"
	                  "    source: {from: github, registry: ghcr.io}\n"
	                  "    destination: \"ghcr.io/acme/{repository}:{tag}-scone\"\n"
	                  "    all: true\n"
	                  "    tls_verify: false\n"
	                  "    dest_tls_verify: true\n");
	free(put("tls/cert.pem", "cert", 0644));
	free(put("tls/key.pem", "key", 0600));
	free(put("tokens", "\n  file-token-1  \r\n\nfile-token-2\n", 0600));
	free(put("id/identity.pem", "id", 0600));
	free(put("cosign.key", "k", 0644));
	free(put("cosign.password", "pw\n", 0400));
	free(put("auth.json", "{}", 0600));
	free(put("certs/src/ca.crt", "", 0644));
	free(put("certs/dest/ca.crt", "", 0644));
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_ok(load(yaml, &c, &err), err);
	cleanup_free char *st = sc_path_join(tmp, "state");
	cleanup_free char *cert = sc_path_join(tmp, "tls/cert.pem");
	cleanup_free char *key = sc_path_join(tmp, "tls/key.pem");
	ck_assert_str_eq(c->listen, "[::1]:0");
	ck_assert_str_eq(c->tls_cert, cert);
	ck_assert_str_eq(c->tls_key, key);
	ck_assert_str_eq(c->state_dir, st);
	ck_assert_uint_eq(c->workers, 64);
	ck_assert_uint_eq(c->max_attempts, 3);
	ck_assert_uint_eq(c->backoff_ms, 250);
	ck_assert_uint_eq(c->max_backoff_ms, 60000);
	ck_assert_uint_eq(c->max_body, 65536);
	ck_assert_uint_eq(c->max_connections, 100);
	ck_assert_uint_eq(c->max_per_ip, 10);
	ck_assert_uint_eq(c->request_timeout_ms, 2500);
	ck_assert_uint_eq(c->replay_window_s, 3600);
	ck_assert_uint_eq(c->job_timeout_ms, 10500);
	ck_assert_uint_eq(c->max_queued, 10000000);

	const sc_serve_auth *d = &c->auth[SC_SOURCE_DISTRIBUTION];
	ck_assert_uint_eq(d->n_bearer, 4);
	ck_assert(secret_is(&d->bearer[0], "new-token"));
	ck_assert(secret_is(&d->bearer[1], "old-token"));
	ck_assert(secret_is(&d->bearer[2], "file-token-1"));
	ck_assert(secret_is(&d->bearer[3], "file-token-2"));
	const sc_serve_auth *h = &c->auth[SC_SOURCE_HARBOR];
	ck_assert(h->configured);
	ck_assert_str_eq(h->header_name, "Authorization");
	ck_assert_uint_eq(h->n_header_value, 1);
	ck_assert(secret_is(&h->header_value[0], "Basic aGFyYm9y"));
	ck_assert_uint_eq(h->n_bearer, 0);
	ck_assert(secret_is(&c->auth[SC_SOURCE_GITHUB].hmac[0], "inline-hmac"));
	ck_assert(c->operator_.configured);
	ck_assert(secret_is(&c->operator_.bearer[0], "op-token"));

	ck_assert_uint_eq(c->n_rules, 2);
	const sc_serve_rule *r = &c->rules[0];
	ck_assert_str_eq(r->name, "web-v2");
	ck_assert_uint_eq(r->line, 16);
	ck_assert_int_eq(r->from, SC_SOURCE_HARBOR);
	ck_assert_str_eq(r->registry, "Harbor.Example");
	ck_assert_str_eq(r->repository, "apps/**");
	ck_assert_str_eq(r->tag, "v*");
	ck_assert_uint_eq(r->n_dir, 2);
	ck_assert_str_eq(r->dir[1], "/data");
	ck_assert_uint_eq(r->n_authenticated, 1);
	ck_assert_str_eq(r->authenticated[0], "/etc");
	ck_assert_uint_eq(r->n_env, 2);
	ck_assert_str_eq(r->env[0], "GREETING=hello");
	ck_assert_str_eq(r->env[1], "EMPTY=");
	ck_assert_str_eq(r->command, "python3 /app/main.py");
	ck_assert_str_eq(r->mode, "hw");
	ck_assert_str_eq(r->cas, "cas.example:8081");
	ck_assert_str_eq(r->cas_key_hash, HEX64);
	cleanup_free char *id = sc_path_join(tmp, "id/identity.pem");
	ck_assert_str_eq(r->identity, id);
	ck_assert_str_eq(r->session, "{rule}-{name}");
	ck_assert_str_eq(r->namespace_, "team/prod");
	ck_assert_str_eq(r->service_name, "app");
	cleanup_free char *sk = sc_path_join(tmp, "cosign.key");
	cleanup_free char *pw = sc_path_join(tmp, "cosign.password");
	ck_assert_str_eq(r->sign_key, sk);
	ck_assert_str_eq(r->sign_password_file, pw);
	ck_assert_str_eq(r->platform, "linux/arm64/v8");
	ck_assert(!r->src_tls_verify);
	ck_assert(r->dest_tls_verify);
	cleanup_free char *af = sc_path_join(tmp, "auth.json");
	cleanup_free char *sd = sc_path_join(tmp, "certs/src");
	cleanup_free char *dd = sc_path_join(tmp, "certs/dest");
	ck_assert_str_eq(r->authfile, af);
	ck_assert_str_eq(r->src_cert_dir, sd);
	ck_assert_str_eq(r->dest_cert_dir, dd);

	r = &c->rules[1];
	ck_assert_str_eq(r->name, "all-of-github");
	ck_assert_int_eq(r->from, SC_SOURCE_GITHUB);
	ck_assert_str_eq(r->registry, "ghcr.io");
	ck_assert_str_eq(r->repository, "*");
	ck_assert_str_eq(r->tag, "*");
	ck_assert(r->all);
	ck_assert(!r->src_tls_verify);
	ck_assert(r->dest_tls_verify);
	ck_assert_str_eq(r->mode, "hw");
}
END_TEST

START_TEST(the_example_in_testdata_loads)
{
	cleanup_free char *path = sc_test_data("serve/serve.yaml");
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_ok(sc_serve_config_load(path, &c, &err), err);
	ck_assert_uint_eq(c->n_rules, 1);
	ck_assert_str_eq(c->rules[0].name, "apps");
	ck_assert(c->auth[SC_SOURCE_DISTRIBUTION].configured);
	ck_assert(c->auth[SC_SOURCE_HARBOR].configured);
	ck_assert(c->auth[SC_SOURCE_GITHUB].configured);
	ck_assert(c->operator_.configured);
	ck_assert_uint_eq(c->max_body, 262144);
	ck_assert_uint_eq(c->max_per_ip, 64);
	ck_assert_uint_eq(c->job_timeout_ms, 3600 * 1000);
	ck_assert_uint_eq(c->max_queued, 100000);
	ck_assert_str_eq(c->rules[0].registry, "registry.example:5000");
	sc_serve_push p = {.source = SC_SOURCE_DISTRIBUTION,
	                   .registry = "registry.example:5000",
	                   .repository = "apps/team/web",
	                   .tag = "v2",
	                   .digest = DIGEST};
	ck_assert(sc_serve_rule_matches(&c->rules[0], &p));
	cleanup_free char *dest = NULL, *session = NULL;
	ck_assert_ok(sc_serve_expand(c->rules[0].destination, &c->rules[0], &p, &dest, &err), err);
	ck_assert_str_eq(dest, "registry.example:5000/confidential/apps/team/web:v2");
	ck_assert_ok(sc_serve_expand(c->rules[0].session, &c->rules[0], &p, &session, &err), err);
	ck_assert_str_eq(session, "apps-web");
}
END_TEST

START_TEST(relative_names_resolve_against_the_config_directory)
{
	free(put("conf/keys/cosign.key", "k", 0644));
	cleanup_free char *path = put("conf/serve.yaml",
	                              "state_dir: ../state\n"
	                              "rules:\n"
	                              "  - destination: \"localhost:5000/c/{repository}:{tag}\"\n"
	                              "    source: {registry: \"localhost:5000\", repository: \"apps/*\"}\n"
	                              "    sign_key: keys/cosign.key\n",
	                              0600);
	/* Loaded by a relative name from another directory: the names still
	 * resolve against the file's own directory, and absolutely. */
	cleanup_free char *cwd = getcwd(NULL, 0);
	ck_assert_int_eq(chdir(tmp), 0);
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	int r = sc_serve_config_load("conf/serve.yaml", &c, &err);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_ok(r, err);
	cleanup_free char *real = realpath(tmp, NULL);
	cleanup_free char *key = xasprintf("%s/conf/keys/cosign.key", real);
	cleanup_free char *st = xasprintf("%s/conf/../state", real);
	ck_assert_str_eq(c->rules[0].sign_key, key);
	ck_assert_str_eq(c->state_dir, st);
	ck_assert_str_eq(c->path, "conf/serve.yaml");
}
END_TEST

START_TEST(parse_takes_text_and_a_base_directory)
{
	free(put("k/cosign.key", "k", 0644));
	const char *yaml = HEAD RULE "    sign_key: k/cosign.key\n";
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_ok(sc_serve_config_parse("inline.yaml", yaml, strlen(yaml), tmp, &c, &err), err);
	cleanup_free char *key = sc_path_join(tmp, "k/cosign.key");
	ck_assert_str_eq(c->rules[0].sign_key, key);
	ck_assert_str_eq(c->path, "inline.yaml");
	ck_assert_fails(sc_serve_config_parse("inline.yaml", "rules: 1\n", 9, tmp, &c, &err), err,
	                SCONIFY_ERR_INVALID, "inline.yaml:1: ");
}
END_TEST

START_TEST(crlf_line_ends_and_tabs_between_tokens_are_fine)
{
	const char *yaml = "state_dir:\tstate\t# tabs around a value\r\n"
	                   "rules:\r\n"
	                   "  - destination:\t\"{registry}/c/{repository}:{tag}\"\r\n"
	                   "    source: {registry: \"*\"}\r\n"
	                   "  - destination: \"{registry}/d/{repository}:{tag}\"\r\n"
	                   "    source: {registry: \"*\"}\r\n"
	                   "    mode: simm\r\n";
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	/* CRLF lines count as lines */
	ck_assert_fails(load(yaml, &c, &err), err, SCONIFY_ERR_INVALID,
	                "serve.yaml:7: rules[1].mode: `simm' is not sim or hw");
	sconify_error_free(&err);
	const char *ok = "state_dir:\tstate\t# tabs around a value\r\n"
	                 "rules:\r\n"
	                 "  - destination:\t\"{registry}/c/{repository}:{tag}\"\r\n"
	                 "    source: {registry: \"*\"}\r\n"
	                 "    mode: sim\r\n";
	ck_assert_ok(load(ok, &c, &err), err);
	ck_assert_str_eq(c->state_dir + strlen(c->state_dir) - 6, "/state");
	ck_assert_str_eq(c->rules[0].destination, "{registry}/c/{repository}:{tag}");
	ck_assert_str_eq(c->rules[0].mode, "sim");
}
END_TEST

START_TEST(tabs_inside_values_are_control_characters)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_fails(load(HEAD RULE "    command: \"run\tit\"\n", &c, &err), err, SCONIFY_ERR_INVALID,
	                "serve.yaml:5: rules[0].command: contains a control character");
}
END_TEST

START_TEST(tab_indentation_is_an_error_with_its_line)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_fails(load(HEAD RULE "\tmode: sim\n", &c, &err), err, SCONIFY_ERR_INVALID,
	                "serve.yaml:5: not valid YAML");
}
END_TEST

START_TEST(anchors_aliases_tags_and_documents_are_refused)
{
	static const struct {
		const char *yaml, *needle;
	} cases[] = {
	        {"state_dir: &s state\nrules:\n" RULE,
	         "serve.yaml:1: YAML anchors and aliases are not allowed"},
	        {"x: &a [1]\nstate_dir: state\nrules:\n" RULE, "serve.yaml:1: YAML anchors and aliases"},
	        {"state_dir: state\nrules:\n  - &r {destination: \"{registry}/c/{repository}:{tag}\", "
	         "source: "
	         "{registry: r}}\n"
	         "  - *r\n",
	         "serve.yaml:3: YAML anchors and aliases"},
	        {"state_dir: !!str state\nrules:\n" RULE, "serve.yaml:1: YAML tags are not allowed"},
	        {"%TAG !e! tag:example.com,2000:\n---\nstate_dir: state\n", "YAML tags are not allowed"},
	        {MINIMAL "---\n" MINIMAL, "serve.yaml:5: more than one YAML document"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_error sconify_error_t err = NULL;
		_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
		ck_assert_fails(load(cases[i].yaml, &c, &err), err, SCONIFY_ERR_INVALID, cases[i].needle);
	}
}
END_TEST

/* ---- refused configurations: each class of error with its line ---- */

static const struct {
	const char *yaml;
	sconify_error_kind_t kind;
	const char *needle;
} bad[] = {
        /* structure */
        {"", SCONIFY_ERR_INVALID, "serve.yaml:1: empty document"},
        {"- 1\n", SCONIFY_ERR_INVALID, "serve.yaml:1: expected a mapping, found a list"},
        {"state_dir: [x]\nrules:\n" RULE, SCONIFY_ERR_INVALID, "serve.yaml:1: state_dir: expected a string"},
        {"rules:\n" RULE, SCONIFY_ERR_INVALID, "serve.yaml:1: state_dir: missing (required)"},
        {"state_dir: s\n", SCONIFY_ERR_INVALID, "serve.yaml:1: rules: missing (required)"},
        {"state_dir: s\nrules: []\n", SCONIFY_ERR_INVALID, "serve.yaml:2: rules: empty"},
        {"state_dir: s\nrules: {}\n", SCONIFY_ERR_INVALID,
         "serve.yaml:2: rules: expected a list, found a mapping"},
        {MINIMAL "colour: blue\n", SCONIFY_ERR_INVALID, "serve.yaml:5: unknown key `colour'"},
        {MINIMAL "state_dir: t\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: duplicate key `state_dir' (first on line 1)"},
        {HEAD RULE "    colour: blue\n", SCONIFY_ERR_INVALID, "serve.yaml:5: rules[0]: unknown key `colour'"},
        {HEAD RULE "    mode: hw\n    mode: sim\n", SCONIFY_ERR_INVALID,
         "serve.yaml:6: duplicate key `mode'"},
        {HEAD DEST "    source: {registry: reg.example, repo: x}\n", SCONIFY_ERR_INVALID,
         "serve.yaml:4: rules[0].source: unknown key `repo'"},
        {HEAD DEST "    source: [x]\n", SCONIFY_ERR_INVALID,
         "serve.yaml:4: rules[0].source: expected a mapping"},
        {HEAD "  - mode: sim\n" SRC, SCONIFY_ERR_INVALID,
         "serve.yaml:3: rules[0].destination: missing (required)"},
        {HEAD "  - just a string\n", SCONIFY_ERR_INVALID,
         "serve.yaml:3: rules[0]: expected a mapping, found a string"},
        {"state_dir: s\nrules:\n  - {destination: \"a\n", SCONIFY_ERR_INVALID, "not valid YAML"},
        {"state_dir: \"\\0\"\nrules:\n" RULE, SCONIFY_ERR_INVALID,
         "serve.yaml:1: state_dir: contains a control character"},
        /* values */
        {HEAD RULE "  - destination: \"{registry}/d/{repository}:{tag}\"\n" SRC "    mode: simm\n",
         SCONIFY_ERR_INVALID, "serve.yaml:7: rules[1].mode: `simm' is not sim or hw"},
        {HEAD DEST "    source: {from: gitlab, registry: reg.example}\n", SCONIFY_ERR_INVALID,
         "serve.yaml:4: rules[0].source.from: `gitlab' is not distribution, harbor or github"},
        {HEAD DEST "    source: {registry: reg.example, tag: \"a b\"}\n", SCONIFY_ERR_INVALID,
         "serve.yaml:4: rules[0].source.tag: a pattern has no spaces"},
        {HEAD RULE "    tls_verify: no\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[0].tls_verify: `no' is not true or false"},
        {HEAD RULE "    dir: [app]\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[0].dir[0]: `app' is not an absolute path"},
        {HEAD RULE "    authenticated: [/a/../b]\n", SCONIFY_ERR_INVALID,
         "rules[0].authenticated[0]: `/a/../b' is not"},
        {HEAD RULE "    env: [A=b]\n", SCONIFY_ERR_INVALID, "serve.yaml:5: rules[0].env: expected a mapping"},
        {HEAD RULE "    env: {\"A=B\": c}\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[0].env.A=B: invalid variable name"},
        {HEAD RULE "    cas: http://cas.example\n", SCONIFY_ERR_INVALID,
         "rules[0].cas: `http://cas.example' is not https://HOST[:PORT]"},
        {HEAD RULE "    cas: https://cas.example/path\n", SCONIFY_ERR_INVALID,
         "rules[0].cas: `https://cas.example/path' is not"},
        {HEAD RULE "    cas_key_hash: " HEX64 "\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[0].cas_key_hash: goes with cas"},
        {HEAD RULE "    cas: c:1\n    cas_key_hash: ABC\n", SCONIFY_ERR_INVALID,
         "serve.yaml:6: rules[0].cas_key_hash: `ABC' is not 64 lowercase hex"},
        {HEAD RULE "    platform: linux\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[0].platform: `linux' is not OS/ARCH"},
        {HEAD RULE "    platform: linux/amd64\n    all: true\n", SCONIFY_ERR_INVALID,
         "serve.yaml:6: rules[0].all: all and platform exclude each other"},
        {HEAD RULE "    namespace: a//b\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[0].namespace: `a//b' is not a namespace"},
        {HEAD RULE "    service_name: a/b\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[0].service_name: `a/b' is not a service name"},
        {HEAD RULE "    sign_password_file: pw\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[0].sign_password_file: goes with sign_key"},
        {HEAD RULE "    name: \"-x\"\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[0].name: `-x' is not a rule name"},
        {HEAD RULE "    name: a\n" RULE "    name: a\n", SCONIFY_ERR_INVALID,
         "serve.yaml:6: rules[1]: duplicate rule name `a' (first on line 3)"},
        {HEAD RULE RULE "    name: rule-1\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[1]: duplicate rule name `rule-1'"},
        {"listen: 8080\n" MINIMAL, SCONIFY_ERR_INVALID, "serve.yaml:1: listen: `8080' is not HOST:PORT"},
        {"listen: \"h:70000\"\n" MINIMAL, SCONIFY_ERR_INVALID,
         "serve.yaml:1: listen: `h:70000' is not HOST:PORT"},
        {"listen: \"[::1:80\"\n" MINIMAL, SCONIFY_ERR_INVALID, "serve.yaml:1: listen: `[::1:80' is not"},
        {"workers: 65\n" MINIMAL, SCONIFY_ERR_INVALID, "serve.yaml:1: workers: 65 is out of range (0 to 64)"},
        {"workers: 65\n" MINIMAL, SCONIFY_ERR_INVALID, "serve.yaml:1: workers: 65 is out of range"},
        {"workers: two\n" MINIMAL, SCONIFY_ERR_INVALID, "serve.yaml:1: workers: `two' is not a whole number"},
        {"workers: -1\n" MINIMAL, SCONIFY_ERR_INVALID, "serve.yaml:1: workers: `-1' is not a whole number"},
        {"retry: {backoff: 1.2345}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "serve.yaml:1: retry.backoff: `1.2345' is not a number of seconds"},
        {"retry: {backoff: .5}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "retry.backoff: `.5' is not a number of seconds"},
        {"retry: {backoff: 30, max_backoff: 10}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "serve.yaml:1: retry: max_backoff is shorter than backoff"},
        {"retry: {attempts: 0}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "serve.yaml:1: retry.attempts: 0 is out of range"},
        {"retry: {tries: 1}\n" MINIMAL, SCONIFY_ERR_INVALID, "serve.yaml:1: retry: unknown key `tries'"},
        {"limits: {body: 10}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "serve.yaml:1: limits.body: 10 is out of range"},
        {"limits: {connections: 4, per_ip: 8}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "serve.yaml:1: limits: per_ip (8) is more than connections (4)"},
        {"limits: {request_timeout: 0}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "limits.request_timeout: out of range"},
        {"limits: {replay_window: 1}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "limits.replay_window: 1 is out of range"},
        {"tls: {cert: c.pem}\n" MINIMAL, SCONIFY_ERR_NOT_FOUND, "serve.yaml:1: tls.cert: `"},
        {"tls: {}\n" MINIMAL, SCONIFY_ERR_INVALID, "serve.yaml:1: tls: cert and key go together"},
        /* auth */
        {"auth: {gitlab: {bearer: x}}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "serve.yaml:1: auth: unknown source `gitlab' (distribution, harbor, github or operator)"},
        {"auth:\n  distribution: {}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "serve.yaml:2: auth.distribution: no credential: give bearer, bearer_file or header"},
        {"auth:\n  github: {}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "auth.github: no credential: give hmac_secret"},
        {"auth:\n  github: {bearer: x}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "serve.yaml:2: auth.github.bearer: GitHub signs"},
        {"auth:\n  harbor: {hmac_secret: x}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "serve.yaml:2: auth.harbor.hmac_secret: only GitHub signs"},
        {"auth:\n  operator: {header: {name: X, value: y}}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "auth.operator.header: the operator authenticates with bearer"},
        {"auth:\n  harbor: {header: {value: y}}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "serve.yaml:2: auth.harbor.header.name: missing"},
        {"auth:\n  harbor: {header: {name: X-Token}}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "auth.harbor.header: needs value or value_file"},
        {"auth:\n  harbor: {header: {name: \"X Token\", value: y}}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "auth.harbor.header.name: `X Token' is not an HTTP header name"},
        {"auth:\n  harbor: {header: {name: Content-Length, value: y}}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "auth.harbor.header.name: `Content-Length' cannot carry a shared secret"},
        {"auth:\n  distribution: {bearer: \"\"}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "auth.distribution.bearer: the secret is empty"},
        {"auth:\n  distribution: {bearer: []}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "auth.distribution.bearer: empty list"},
        {"auth:\n  distribution: {bearer: {a: b}}\n" MINIMAL, SCONIFY_ERR_INVALID,
         "auth.distribution.bearer: expected a string, found a mapping"},
        {"auth:\n  distribution: {bearer_file: nothere}\n" MINIMAL, SCONIFY_ERR_NOT_FOUND,
         "serve.yaml:2: auth.distribution.bearer_file: `"},
        /* templates */
        {HEAD "  - destination: \"{registry}/c/{repo}:{tag}\"\n" SRC, SCONIFY_ERR_INVALID,
         "serve.yaml:3: rules[0].destination: template `{registry}/c/{repo}:{tag}': unknown `{repo}'"},
        {HEAD "  - destination: \"{registry}/c/{repository:{tag}\"\n" SRC, SCONIFY_ERR_INVALID,
         "serve.yaml:3: rules[0].destination: template `{registry}/c/{repository:{tag}': `{' without `}'"},
        {HEAD "  - destination: \"{registry}/c/{repository}}:{tag}\"\n" SRC, SCONIFY_ERR_INVALID,
         "`}' without `{'"},
        {HEAD "  - destination: \"{registry}/c/{repository}:{tag\"\n" SRC, SCONIFY_ERR_INVALID,
         "`{' without `}'"},
        {HEAD "  - destination: \"c/{repository}:{tag}\"\n" SRC, SCONIFY_ERR_INVALID,
         "serve.yaml:3: rules[0].destination: `c/{repository}:{tag}' names no registry"},
        {HEAD "  - destination: \"{repository}\"\n" SRC, SCONIFY_ERR_INVALID, "names no registry"},
        {HEAD "  - destination: \"{registry}/c/{repository}\"\n" SRC, SCONIFY_ERR_INVALID,
         "names no tag (end it with `:{tag}')"},
        {HEAD "  - destination: \"{registry}/c/{repository}@{digest}\"\n" SRC, SCONIFY_ERR_INVALID,
         "names a digest"},
        {HEAD "  - destination: \"{registry}/C/{repository}:{tag}\"\n" SRC, SCONIFY_ERR_INVALID,
         "rules[0].destination: `{registry}/C/{repository}:{tag}' is not an image reference"},
        {HEAD "  - destination: \"{registry}/c/{repository}:{digest}\"\n" SRC, SCONIFY_ERR_INVALID,
         "is not an image reference"},
        {HEAD "  - destination: \"{registry}/{repository}:{tag}\"\n" SRC, SCONIFY_ERR_INVALID,
         "is the pushed image itself"},
        {HEAD RULE "    session: \"{registry}-x\"\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[0].session: `{registry}-x' is not a session name (for a push of "
         "registry.example:5000/x:v1 it expands to `registry.example:5000-x'; a name is "
         "[namespace/]name of letters, digits, `_' and `-')"},
        {HEAD RULE "    session: \"{nme}\"\n", SCONIFY_ERR_INVALID,
         "serve.yaml:5: rules[0].session: template `{nme}': unknown `{nme}'"},
};

START_TEST(bad_configs_name_line_key_and_problem)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_fails(load(bad[_i].yaml, &c, &err), err, bad[_i].kind, bad[_i].needle);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(load_reports_the_first_problem_and_counts_the_rest)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_fails(load("workers: 65\n" HEAD RULE "    mode: x\n    colour: y\n", &c, &err), err,
	                SCONIFY_ERR_INVALID,
	                "serve.yaml:1: workers: 65 is out of range (0 to 64) (and 2 more problems)");
}
END_TEST

START_TEST(check_lists_every_problem_sorted_by_line)
{
	cleanup_free char *path = put("serve.yaml",
	                              "rules:\n"
	                              "  - destination: \"{registry}/c/{repo}:{tag}\"\n"
	                              "    mode: x\n"
	                              "workers: 65\n"
	                              "  \n"
	                              "listen: nope\n",
	                              0600);
	_cleanup_(strv_freep) char **p = sc_serve_config_check(path);
	ck_assert_ptr_nonnull(p[0]);
	const char *want[] = {":1: state_dir: missing",
	                      ":2: rules[0].source: registry is required",
	                      ":2: rules[0].destination:",
	                      ":3: rules[0].mode:",
	                      ":4: workers:",
	                      ":6: listen:"};
	size_t n = 0;
	while (p[n])
		n++;
	ck_assert_uint_eq(n, 6);
	for (size_t i = 0; i < n; i++) {
		ck_assert(strncmp(p[i], path, strlen(path)) == 0);
		ck_assert_msg(strstr(p[i], want[i]), "%s lacks %s", p[i], want[i]);
	}
}
END_TEST

START_TEST(check_of_a_valid_config_is_empty)
{
	cleanup_free char *path = put("serve.yaml", MINIMAL, 0600);
	_cleanup_(strv_freep) char **p = sc_serve_config_check(path);
	ck_assert_ptr_null(p[0]);
	_cleanup_(strv_freep) char **q = sc_serve_config_check("/nonexistent/serve.yaml");
	ck_assert_ptr_nonnull(q[0]);
	ck_assert_ptr_nonnull(strstr(q[0], "does not exist"));
	ck_assert_ptr_null(q[1]);
}
END_TEST

START_TEST(a_missing_config_file_is_not_found)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_fails(sc_serve_config_load("/nonexistent/serve.yaml", &c, &err), err, SCONIFY_ERR_NOT_FOUND,
	                "configuration `/nonexistent/serve.yaml' does not exist");
	sconify_error_free(&err);
	ck_assert_fails(sc_serve_config_load(tmp, &c, &err), err, SCONIFY_ERR_INVALID,
	                "is not a regular file");
}
END_TEST

START_TEST(caps_are_enforced)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	/* nesting */
	char deep[200] = "state_dir: ";
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	ck_assert_fails(sc_serve_config_parse("x", deep, strlen(deep), tmp, &c, &err), err, SCONIFY_ERR_LIMIT,
	                "nested deeper than");
	sconify_error_free(&err);
	/* size */
	size_t big = 1024 * 1024 + 1;
	cleanup_free char *huge = xmalloc(big + 1);
	memset(huge, '#', big);
	huge[big] = '\0';
	ck_assert_fails(sc_serve_config_parse("x", huge, big, tmp, &c, &err), err, SCONIFY_ERR_LIMIT,
	                "larger than the limit");
	sconify_error_free(&err);
	/* secrets of one kind */
	cleanup_free char *many = xstrdup("auth:\n  distribution:\n    bearer: [");
	for (int i = 0; i < 17; i++) {
		char *t = xasprintf("%st%d,", many, i);
		free(many);
		many = t;
	}
	char *t = xasprintf("%s]\n" MINIMAL, many);
	free(many);
	many = t;
	ck_assert_fails(load(many, &c, &err), err, SCONIFY_ERR_LIMIT,
	                "serve.yaml:3: auth.distribution.bearer[16]: more than 16 secrets");
	sconify_error_free(&err);
	/* a template that grows past the cap */
	cleanup_free char *longdest = xstrdup("  - destination: \"{registry}/c/");
	for (int i = 0; i < 100; i++) {
		char *u = xasprintf("%s{digest}", longdest);
		free(longdest);
		longdest = u;
	}
	cleanup_free char *y = xasprintf(HEAD "%s:{tag}\"\n" SRC, longdest);
	ck_assert_fails(load(y, &c, &err), err, SCONIFY_ERR_LIMIT,
	                "serve.yaml:3: rules[0].destination: template `");
	ck_assert_ptr_nonnull(strstr(sconify_error_message(err), "expands to more than 4096 bytes"));
}
END_TEST

/* ---- files and secrets ---- */

START_TEST(named_files_must_exist_with_the_line)
{
	static const char *const keys[] = {"sign_key", "identity", "authfile", "src_cert_dir",
	                                   "dest_cert_dir"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		cleanup_free char *yaml =
		        xasprintf(HEAD RULE "    cas: c:1\n    %s: missing.file\n", keys[i]);
		cleanup_free char *needle = xasprintf(
		        "serve.yaml:6: rules[0].%s: `%s/missing.file' does not exist", keys[i], tmp);
		cleanup_error sconify_error_t err = NULL;
		_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
		ck_assert_fails(load(yaml, &c, &err), err, SCONIFY_ERR_NOT_FOUND, needle);
	}
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	free(put("somefile", "x", 0644));
	ck_assert_fails(load(HEAD RULE "    src_cert_dir: somefile\n", &c, &err), err, SCONIFY_ERR_INVALID,
	                "serve.yaml:5: rules[0].src_cert_dir: `");
	ck_assert_ptr_nonnull(strstr(sconify_error_message(err), "somefile' is not a directory"));
	sconify_error_free(&err);
	ck_assert_fails(load(HEAD RULE "    sign_key: .\n", &c, &err), err, SCONIFY_ERR_INVALID,
	                "is not a regular file");
	sconify_error_free(&err);
	ck_assert_fails(load("tls: {cert: somefile, key: nokey}\n" MINIMAL, &c, &err), err,
	                SCONIFY_ERR_NOT_FOUND, "serve.yaml:1: tls.key: `");
	sconify_error_free(&err);
	/* the TLS key is a secret: not readable by others either */
	ck_assert_fails(load("tls: {cert: somefile, key: somefile}\n" MINIMAL, &c, &err), err,
	                SCONIFY_ERR_INVALID, "serve.yaml:1: tls.key: `");
	ck_assert_ptr_nonnull(strstr(sconify_error_message(err), "is readable by others; chmod 600"));
}
END_TEST

START_TEST(secret_files_readable_by_others_are_refused)
{
	static const mode_t modes[] = {0644, 0640, 0604, 0660};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		free(put("secret", "tok\n", modes[i]));
		cleanup_error sconify_error_t err = NULL;
		_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
		ck_assert_fails(load("auth:\n  distribution: {bearer_file: secret}\n" MINIMAL, &c, &err), err,
		                SCONIFY_ERR_INVALID, "is readable by others; chmod 600");
		ck_assert_ptr_nonnull(
		        strstr(sconify_error_message(err), "serve.yaml:2: auth.distribution.bearer_file: `"));
	}
	/* The signing key's password file is a secret too. */
	free(put("cosign.key", "k", 0644));
	free(put("pw", "pw", 0644));
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_fails(load(HEAD RULE "    sign_key: cosign.key\n    sign_password_file: pw\n", &c, &err),
	                err, SCONIFY_ERR_INVALID, "serve.yaml:6: rules[0].sign_password_file: `");
	ck_assert_ptr_nonnull(strstr(sconify_error_message(err), "is readable by others; chmod 600"));
	sconify_error_free(&err);
	/* 0600 and 0400 are fine */
	free(put("secret", "tok\n", 0400));
	ck_assert_ok(load("auth:\n  distribution: {bearer_file: secret}\n" MINIMAL, &c, &err), err);
}
END_TEST

START_TEST(empty_secret_files_are_refused)
{
	static const char *const contents[] = {"", "\n\n", "  \r\n\t\n"};
	for (size_t i = 0; i < sizeof(contents) / sizeof(contents[0]); i++) {
		free(put("secret", contents[i], 0600));
		cleanup_error sconify_error_t err = NULL;
		_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
		ck_assert_fails(load("auth:\n  github: {hmac_secret_file: secret}\n" MINIMAL, &c, &err), err,
		                SCONIFY_ERR_INVALID,
		                "serve.yaml:2: auth.github.hmac_secret_file: secret file `");
		ck_assert_ptr_nonnull(strstr(sconify_error_message(err), "' is empty"));
	}
}
END_TEST

START_TEST(secret_files_hold_one_secret_a_line_for_rotation)
{
	free(put("hmac", "current secret with spaces\r\n\n  previous\t\n", 0600));
	free(put("hv", "Bearer one\nBearer two", 0600));
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_ok(load("auth:\n"
	                  "  github: {hmac_secret_file: hmac, hmac_secret: [third]}\n"
	                  "  harbor: {header: {name: Authorization, value_file: hv, value: \"Bearer "
	                  "three\"}}\n" MINIMAL,
	                  &c, &err),
	             err);
	const sc_serve_auth *g = &c->auth[SC_SOURCE_GITHUB];
	ck_assert_uint_eq(g->n_hmac, 3);
	ck_assert(secret_is(&g->hmac[0], "third"));
	ck_assert(secret_is(&g->hmac[1], "current secret with spaces"));
	ck_assert(secret_is(&g->hmac[2], "previous"));
	const sc_serve_auth *h = &c->auth[SC_SOURCE_HARBOR];
	ck_assert_uint_eq(h->n_header_value, 3);
	ck_assert(secret_is(&h->header_value[0], "Bearer three"));
	ck_assert(secret_is(&h->header_value[1], "Bearer one"));
	ck_assert(secret_is(&h->header_value[2], "Bearer two"));
}
END_TEST

/* Each of these has the secret MARK where a secret goes, and a problem. */
static const char *const secret_cases[] = {
        "auth:\n  distribution: {bearer: \"" MARK " x\"}\n",
        "auth:\n  distribution: {bearer: \"" MARK "\\x01\"}\n",
        "auth:\n  distribution: {bearer: \"" MARK "\\u00e9\"}\n",
        "auth:\n  distribution: {bearer: [ok, \"" MARK "\\0\"]}\n",
        "auth:\n  github: {bearer: " MARK "}\n",
        "auth:\n  harbor: {hmac_secret: " MARK "}\n",
        "auth:\n  github: {hmac_secret: \"" MARK "\\n\"}\n",
        "auth:\n  harbor: {header: {name: \"X Y\", value: \"" MARK "\"}}\n",
        "auth:\n  harbor: {header: {name: X-Y, value: \" " MARK "\"}}\n",
        "auth:\n  harbor: {header: {name: X-Y, value: \"" MARK "\\r\"}}\n",
        "auth:\n  harbor: {header: {value: " MARK "}}\n",
        "auth:\n  operator: {header: {name: X, value: " MARK "}}\n",
        "auth:\n  gitlab: {bearer: " MARK "}\n",
        "auth:\n  distribution: {bearr: " MARK "}\n",
        "auth:\n  distribution: {bearer: " MARK ", bearer: " MARK "}\n",
        "auth:\n  distribution: {bearer: " MARK ", bearer_file: nothere}\n",
        "auth:\n  distribution: {bearer: \"" MARK "\n",
        "auth:\n  distribution: {bearer: \"" MARK "\"}\n  operator: {bearer: \"" MARK " x\"}\n",
        /* in files: a bad line, a file readable by others */
        "auth:\n  distribution: {bearer_file: bad-line}\n",
        "auth:\n  distribution: {bearer_file: open-file}\n",
        "auth:\n  github: {hmac_secret_file: nul-file}\n",
};

START_TEST(secret_values_never_appear_in_errors)
{
	free(put("bad-line", "good\n" MARK " with a space\n", 0600));
	free(put("open-file", MARK "\n", 0644));
	{
		cleanup_free char *p = sc_path_join(tmp, "nul-file");
		int f = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ck_assert_int_eq(write(f, MARK "\0x\n", sizeof(MARK) + 2), (ssize_t)sizeof(MARK) + 2);
		close(f);
	}
	cleanup_free char *yaml = xasprintf("%s" MINIMAL "workers: 65\n", secret_cases[_i]);
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_int_lt(load(yaml, &c, &err), 0);
	const char *m = sconify_error_message(err);
	ck_assert_msg(strstr(m, "S3CR3T") == NULL, "secret in `%s'", m);
	ck_assert_msg(strstr(m, "serve.yaml:"), "no line in `%s'", m);
	cleanup_free char *path = sc_path_join(tmp, "serve.yaml");
	_cleanup_(strv_freep) char **all = sc_serve_config_check(path);
	ck_assert_ptr_nonnull(all[0]);
	for (size_t i = 0; all[i]; i++)
		ck_assert_msg(strstr(all[i], "S3CR3T") == NULL, "secret in `%s'", all[i]);
}
END_TEST

/* ---- what the service trusts ---- */

#define REGISTRY_REQUIRED                                                                                  \
	"rules[0].source: registry is required (the host[:port] this rule converts from; events name the " \
	"registry themselves, so a rule must say which it trusts)"

START_TEST(a_rule_without_a_registry_is_refused)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	/* no source at all: the rule's line */
	ck_assert_fails(load(HEAD DEST, &c, &err), err, SCONIFY_ERR_INVALID,
	                "serve.yaml:3: " REGISTRY_REQUIRED);
	ck_assert_ptr_null(c);
	sconify_error_free(&err);
	/* a source without one: the source's line */
	ck_assert_fails(load(HEAD DEST
	                     "    source: {from: distribution, repository: \"apps/*\", tag: \"*\"}\n",
	                     &c, &err),
	                err, SCONIFY_ERR_INVALID, "serve.yaml:4: " REGISTRY_REQUIRED);
	sconify_error_free(&err);
	ck_assert_fails(load(HEAD DEST "    source: {}\n", &c, &err), err, SCONIFY_ERR_INVALID,
	                "serve.yaml:4: " REGISTRY_REQUIRED);
	sconify_error_free(&err);
	/* in the second rule */
	ck_assert_fails(load(HEAD RULE
	                     "  - destination: \"{registry}/d/{repository}:{tag}\"\n    mode: sim\n",
	                     &c, &err),
	                err, SCONIFY_ERR_INVALID, "serve.yaml:5: rules[1].source: registry is required");
}
END_TEST

START_TEST(a_registry_may_be_a_pattern_or_a_star)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_ok(load(HEAD DEST "    source: {registry: \"127.0.0.1:*\"}\n" DEST
	                            "    source: {registry: \"*\", repository: \"apps/*\"}\n",
	                  &c, &err),
	             err);
	ck_assert_str_eq(c->rules[0].registry, "127.0.0.1:*");
	ck_assert_str_eq(c->rules[1].registry, "*");
	sc_serve_push p = {.source = SC_SOURCE_GITHUB,
	                   .registry = "127.0.0.1:5000",
	                   .repository = "x",
	                   .tag = "v1",
	                   .digest = DIGEST};
	ck_assert(sc_serve_rule_matches(&c->rules[0], &p));
	p.registry = "evil.example";
	ck_assert(!sc_serve_rule_matches(&c->rules[0], &p));
	p.repository = "apps/x";
	ck_assert(sc_serve_rule_matches(&c->rules[1], &p));
	/* a rule made by hand without a registry trusts no one */
	sc_serve_rule r = {.name = (char *)"r", .from = -1, .repository = (char *)"**", .tag = (char *)"*"};
	ck_assert(!sc_serve_rule_matches(&r, &p));
}
END_TEST

#define OPEN_ENDPOINTS                                                                                    \
	"is not a loopback address: configure auth.operator (GET /v1/jobs and /metrics would be open to " \
	"anyone who reaches it)"

START_TEST(listening_beyond_loopback_needs_an_operator_credential)
{
	static const char *const open[] = {
	        "0.0.0.0:8080",         "\"[::]:8080\"",       "192.168.1.2:80", "example.com:80",
	        "127.0.0.1.example:80", "localhost.example:1", "\"[::2]:80\"",   "\"[::ffff:10.0.0.1]:80\"",
	        "128.0.0.1:80"};
	for (size_t i = 0; i < sizeof(open) / sizeof(open[0]); i++) {
		cleanup_free char *yaml = xasprintf("workers: 1\nlisten: %s\n" MINIMAL, open[i]);
		cleanup_free char *unquoted = xstrdup(open[i][0] == '"' ? open[i] + 1 : open[i]);
		if (unquoted[strlen(unquoted) - 1] == '"')
			unquoted[strlen(unquoted) - 1] = '\0';
		cleanup_free char *needle = xasprintf("serve.yaml:2: listen: `%s' " OPEN_ENDPOINTS, unquoted);
		cleanup_error sconify_error_t err = NULL;
		_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
		ck_assert_fails(load(yaml, &c, &err), err, SCONIFY_ERR_INVALID, needle);
		ck_assert_ptr_null(c);
		/* with the operator's credential, the same address is fine */
		cleanup_free char *with = xasprintf("auth: {operator: {bearer: op}}\n%s", yaml);
		sconify_error_free(&err);
		ck_assert_ok(load(with, &c, &err), err);
		ck_assert(c->operator_.configured);
	}
	static const char *const loopback[] = {"127.0.0.1:0",       "127.1.2.3:8080",
	                                       "localhost:8080",    "LocalHost:1",
	                                       "\"[::1]:0\"",       "\"[::ffff:127.0.0.1]:80\"",
	                                       "127.255.255.255:80"};
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
		cleanup_free char *yaml = xasprintf("listen: %s\n" MINIMAL, loopback[i]);
		cleanup_error sconify_error_t err = NULL;
		_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
		ck_assert_ok(load(yaml, &c, &err), err);
		ck_assert(!c->operator_.configured);
	}
	/* the default address is loopback */
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_ok(load(MINIMAL, &c, &err), err);
	ck_assert_str_eq(c->listen, "127.0.0.1:8080");
}
END_TEST

START_TEST(job_and_queue_limits_have_defaults_and_ranges)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	ck_assert_ok(load(MINIMAL, &c, &err), err);
	ck_assert_uint_eq(c->job_timeout_ms, 3600 * 1000);
	ck_assert_uint_eq(c->max_queued, 100000);
	ck_assert_uint_eq(c->max_body, 256 * 1024);
	ck_assert_uint_eq(c->max_per_ip, 64);
	sc_serve_config_free(c);
	c = NULL;
	ck_assert_ok(load("limits: {job: 10, queue: 1}\n" MINIMAL, &c, &err), err);
	ck_assert_uint_eq(c->job_timeout_ms, 10000);
	ck_assert_uint_eq(c->max_queued, 1);
	sc_serve_config_free(c);
	c = NULL;
	ck_assert_ok(load("limits: {job: 604800, queue: 10000000}\n" MINIMAL, &c, &err), err);
	ck_assert_uint_eq(c->job_timeout_ms, 604800u * 1000);
	ck_assert_uint_eq(c->max_queued, 10000000);
	sc_serve_config_free(c);
	c = NULL;
	/* a default per_ip follows fewer connections; one given must fit */
	ck_assert_ok(load("limits: {connections: 16}\n" MINIMAL, &c, &err), err);
	ck_assert_uint_eq(c->max_connections, 16);
	ck_assert_uint_eq(c->max_per_ip, 16);
	sc_serve_config_free(c);
	c = NULL;
	static const struct {
		const char *yaml, *needle;
	} cases[] = {
	        {"limits: {job: 9.999}\n",
	         "serve.yaml:1: limits.job: out of range (10.000 to 604800 seconds)"},
	        {"limits: {job: 604800.001}\n", "serve.yaml:1: limits.job: out of range"},
	        {"limits: {job: 1h}\n", "serve.yaml:1: limits.job: `1h' is not a number of seconds"},
	        {"limits:\n  queue: 0\n", "serve.yaml:2: limits.queue: 0 is out of range (1 to 10000000)"},
	        {"limits:\n  queue: 10000001\n", "serve.yaml:2: limits.queue: 10000001 is out of range"},
	        {"limits:\n  queue: [1]\n", "serve.yaml:2: limits.queue: expected a string"},
	        {"limits: {connections: 16, per_ip: 17}\n",
	         "serve.yaml:1: limits: per_ip (17) is more than connections (16)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_free char *yaml = xasprintf("%s" MINIMAL, cases[i].yaml);
		ck_assert_fails(load(yaml, &c, &err), err, SCONIFY_ERR_INVALID, cases[i].needle);
		ck_assert_ptr_null(c);
		sconify_error_free(&err);
	}
}
END_TEST

/* A destination no rule below takes its images from. */
#define ELSEWHERE "  - destination: \"other.example/c/{repository}:{tag}\"\n"

START_TEST(session_templates_are_tried_with_dotted_tags_and_nested_repositories)
{
	cleanup_error sconify_error_t err = NULL;
	_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
	/* {tag} holds `.' for a tag like v1.0 */
	ck_assert_fails(load(HEAD ELSEWHERE
	                     "    source: {registry: \"registry.example:5000\", repository: \"**\"}\n"
	                     "    session: \"{name}-{tag}\"\n",
	                     &c, &err),
	                err, SCONIFY_ERR_INVALID,
	                "serve.yaml:5: rules[0].session: `{name}-{tag}' is not a session name (for a push of "
	                "registry.example:5000/team/sub/app:v1.0 it expands to `app-v1.0'; a name is "
	                "[namespace/]name of letters, digits, `_' and `-'; tags may hold `.': use "
	                "{digest_hex} or a template without {tag})");
	sconify_error_free(&err);
	/* the first sample passes, the nested one does not */
	ck_assert_fails(load(HEAD ELSEWHERE
	                     "    source: {registry: \"registry.example:5000\", repository: \"**\"}\n"
	                     "    session: \"{repository}_{tag}\"\n",
	                     &c, &err),
	                err, SCONIFY_ERR_INVALID, "it expands to `team/sub/app_v1.0'");
	sconify_error_free(&err);
	/* the hint is for {tag} only */
	ck_assert_fails(load(HEAD RULE "    session: \"{registry}\"\n", &c, &err), err, SCONIFY_ERR_INVALID,
	                "letters, digits, `_' and `-')");
	sconify_error_free(&err);
	/* nested repositories are namespaces; digests and names are fine */
	static const char *const good[] = {"{repository}", "{name}-{digest_hex}", "{rule}/{name}", "fixed"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cleanup_free char *yaml =
		        xasprintf(HEAD ELSEWHERE
		                  "    source: {registry: \"registry.example:5000\", repository: \"**\"}\n"
		                  "    session: \"%s\"\n",
		                  good[i]);
		ck_assert_ok(load(yaml, &c, &err), err);
		sc_serve_config_free(c);
		c = NULL;
	}
	/* the samples are fitted to the rule: no tag it converts has a `.' */
	ck_assert_ok(load(HEAD ELSEWHERE
	                  "    source: {registry: \"registry.example:5000\", repository: "
	                  "\"**\", tag: \"v[0-9]\"}\n"
	                  "    session: \"{name}-{tag}\"\n" ELSEWHERE
	                  "    source: {registry: \"registry.example:5000\", repository: \"**\", "
	                  "tag: latest}\n"
	                  "    session: \"{name}-{tag}\"\n",
	                  &c, &err),
	             err);
}
END_TEST

START_TEST(session_names_are_checked_for_the_runner)
{
	ck_assert(sc_serve_session_name_valid("app"));
	ck_assert(sc_serve_session_name_valid("team/sub/app_v1-0"));
	ck_assert(!sc_serve_session_name_valid("app-v1.0"));
	ck_assert(!sc_serve_session_name_valid(""));
	ck_assert(!sc_serve_session_name_valid("a//b"));
	ck_assert(!sc_serve_session_name_valid("/a"));
	ck_assert(!sc_serve_session_name_valid("a/"));
	ck_assert(!sc_serve_session_name_valid("registry.example:5000"));
	ck_assert(!sc_serve_session_name_valid(NULL));
}
END_TEST

#define OWN_OUTPUT "the service would convert its own output"

START_TEST(a_destination_its_rules_would_convert_again_is_refused)
{
	static const struct {
		const char *yaml, *needle;
	} cases[] = {
	        /* inside its own patterns */
	        {HEAD "  - destination: \"{registry}/apps/c/{name}:{tag}\"\n"
	              "    source: {registry: \"registry.example:5000\", repository: \"apps/**\"}\n",
	         "serve.yaml:3: rules[0].destination: its images would match rules[0]'s source: " OWN_OUTPUT
	         " (a push of registry.example:5000/apps/web:v1 goes to "
	         "`registry.example:5000/apps/c/web:v1')"},
	        /* the catch-all */
	        {HEAD "  - destination: \"{registry}/confidential/{repository}:{tag}\"\n"
	              "    source: {registry: \"*\", repository: \"**\"}\n",
	         "serve.yaml:3: rules[0].destination: its images would match rules[0]'s source"},
	        /* only the tag changes */
	        {HEAD "  - destination: \"{registry}/apps/web:{tag}-scone\"\n"
	              "    source: {registry: \"reg.example\", repository: apps/web}\n",
	         "serve.yaml:3: rules[0].destination: its images would match rules[0]'s source: " OWN_OUTPUT
	         " (a push of reg.example/apps/web:v1 goes to `reg.example/apps/web:v1-scone')"},
	        /* one rule feeding another, whichever comes first */
	        {HEAD "  - destination: \"{registry}/mirror/{name}:{tag}\"\n"
	              "    source: {registry: \"registry.example:5000\", repository: \"apps/*\"}\n"
	              "  - destination: \"{registry}/final/{name}:{tag}\"\n"
	              "    source: {registry: \"*\", repository: \"mirror/*\"}\n",
	         "serve.yaml:3: rules[0].destination: its images would match rules[1]'s source: " OWN_OUTPUT},
	        {HEAD "  - destination: \"{registry}/final/{name}:{tag}\"\n"
	              "    source: {registry: \"*\", repository: \"mirror/*\"}\n"
	              "  - destination: \"{registry}/mirror/{name}:{tag}\"\n"
	              "    source: {registry: \"registry.example:5000\", repository: \"apps/*\"}\n",
	         "serve.yaml:5: rules[1].destination: its images would match rules[0]'s source"},
	        /* registries compare without case; a rule of any source matches any */
	        {HEAD
	         "  - destination: \"other.example/mirror/{name}:{tag}\"\n"
	         "    source: {from: harbor, registry: \"registry.example:5000\", repository: \"apps/*\"}\n"
	         "  - destination: \"{registry}/final/{name}:{tag}\"\n"
	         "    source: {registry: \"OTHER.example\", repository: \"mirror/*\"}\n",
	         "serve.yaml:3: rules[0].destination: its images would match rules[1]'s source"},
	        /* a loop only the nested, dotted sample shows */
	        {HEAD
	         "  - destination: \"other.example/mirror/{repository}:{tag}\"\n"
	         "    source: {registry: \"registry.example:5000\", repository: \"**\"}\n"
	         "  - destination: \"{registry}/final/{name}:{tag}\"\n"
	         "    source: {registry: \"other.example\", repository: \"mirror/*/*/**\", tag: \"*.*\"}\n",
	         "serve.yaml:3: rules[0].destination: its images would match rules[1]'s source: " OWN_OUTPUT
	         " (a push of registry.example:5000/team/sub/app:v1.0 goes to "
	         "`other.example/mirror/team/sub/app:v1.0')"},
	        /* samples are fitted to the source's patterns */
	        {HEAD "  - destination: \"{registry}/{repository}/c:{tag}\"\n"
	              "    source: {registry: \"127.0.0.1:*\", repository: \"team/**\", tag: \"v[0-9]*\"}\n",
	         "(a push of 127.0.0.1:5000/team/x:v1 goes to `127.0.0.1:5000/team/x/c:v1')"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_error sconify_error_t err = NULL;
		_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
		ck_assert_fails(load(cases[i].yaml, &c, &err), err, SCONIFY_ERR_INVALID, cases[i].needle);
		ck_assert_ptr_null(c);
	}
}
END_TEST

START_TEST(destinations_no_rule_matches_are_fine)
{
	static const char *const ok[] = {
	        /* the issue's example: confidential/ is outside apps/ */
	        HEAD "  - destination: \"{registry}/confidential/{repository}:{tag}\"\n"
	             "    source: {registry: \"registry.example:5000\", repository: \"apps/*\"}\n",
	        /* another registry */
	        HEAD "  - destination: \"other.example/mirror/{name}:{tag}\"\n"
	             "    source: {registry: \"registry.example:5000\", repository: \"apps/**\"}\n"
	             "  - destination: \"{registry}/final/{name}:{tag}\"\n"
	             "    source: {registry: \"registry.example:5000\", repository: \"mirror/*\"}\n",
	        /* another source: GitHub does not report what Harbor's registry holds */
	        HEAD "  - destination: \"{registry}/mirror/{name}:{tag}\"\n"
	             "    source: {from: harbor, registry: \"*\", repository: \"apps/*\"}\n"
	             "  - destination: \"{registry}/final/{name}:{tag}\"\n"
	             "    source: {from: github, registry: \"*\", repository: \"mirror/*\"}\n",
	        /* tags the source does not take */
	        HEAD "  - destination: \"{registry}/{repository}:{tag}-scone\"\n"
	             "    source: {registry: \"*\", repository: \"**\", tag: \"v[0-9]*[0-9]\"}\n",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cleanup_error sconify_error_t err = NULL;
		_cleanup_(sc_serve_config_freep) sc_serve_config *c = NULL;
		ck_assert_ok(load(ok[i], &c, &err), err);
	}
	/* the pushed image itself is said once, not again as a loop */
	cleanup_free char *path = put("serve.yaml",
	                              HEAD "  - destination: \"{registry}/{repository}:{tag}\"\n"
	                                   "    source: {registry: \"*\", repository: \"**\"}\n",
	                              0600);
	_cleanup_(strv_freep) char **p = sc_serve_config_check(path);
	ck_assert_ptr_nonnull(p[0]);
	ck_assert_ptr_nonnull(strstr(p[0],
	                             "serve.yaml:3: rules[0].destination: `{registry}/{repository}:{tag}' "
	                             "is the pushed image itself"));
	ck_assert_ptr_null(p[1]);
}
END_TEST

/* ---- matching ---- */

static sc_serve_rule rule_of(const char *registry, const char *repository, const char *tag)
{
	return (sc_serve_rule){
	        .name = (char *)"r",
	        .from = -1,
	        .registry = (char *)registry,
	        .repository = (char *)repository,
	        .tag = (char *)tag,
	};
}

static bool repo_matches(const char *pattern, const char *repository)
{
	sc_serve_rule r = rule_of("*", pattern, "*");
	sc_serve_push p = {.registry = "h", .repository = repository, .tag = "t", .digest = DIGEST};
	return sc_serve_rule_matches(&r, &p);
}

START_TEST(star_and_question_mark_stay_inside_a_component)
{
	ck_assert(repo_matches("apps/*", "apps/web"));
	ck_assert(!repo_matches("apps/*", "apps/web/api"));
	ck_assert(!repo_matches("apps/*", "apps"));
	ck_assert(!repo_matches("apps/*", "other/web"));
	ck_assert(repo_matches("*", "web"));
	ck_assert(!repo_matches("*", "apps/web"));
	ck_assert(repo_matches("*/*", "apps/web"));
	ck_assert(repo_matches("apps/w?b", "apps/web"));
	ck_assert(!repo_matches("apps?web", "apps/web"));
	ck_assert(repo_matches("apps/*-api", "apps/web-api"));
	ck_assert(!repo_matches("apps/*-api", "apps/x/web-api"));
	ck_assert(repo_matches("a*b*c", "aXbYc"));
	ck_assert(!repo_matches("a*b*c", "aXb/c"));
	ck_assert(repo_matches("apps/web", "apps/web"));
	ck_assert(!repo_matches("apps/web", "apps/webx"));
}
END_TEST

START_TEST(double_star_crosses_components)
{
	ck_assert(repo_matches("**", "web"));
	ck_assert(repo_matches("**", "a/b/c"));
	ck_assert(repo_matches("apps/**", "apps/web"));
	ck_assert(repo_matches("apps/**", "apps/a/b/web"));
	ck_assert(!repo_matches("apps/**", "apps"));
	ck_assert(!repo_matches("apps/**", "other/web"));
	/* a whole `**' component may stand for none */
	ck_assert(repo_matches("apps/**/web", "apps/web"));
	ck_assert(repo_matches("apps/**/web", "apps/x/web"));
	ck_assert(repo_matches("apps/**/web", "apps/x/y/web"));
	ck_assert(!repo_matches("apps/**/web", "apps/x/y/webx"));
	ck_assert(!repo_matches("apps/**/web", "appsweb"));
	ck_assert(repo_matches("**/web", "web"));
	ck_assert(repo_matches("**/web", "a/b/web"));
	ck_assert(!repo_matches("**/web", "a/bweb"));
	/* inside a component, `**' is a star that crosses `/' */
	ck_assert(repo_matches("a**z", "a/b/z"));
	ck_assert(repo_matches("team-**", "team-a/b"));
}
END_TEST

START_TEST(classes_and_escapes_follow_fnmatch)
{
	ck_assert(repo_matches("app[0-9]", "app7"));
	ck_assert(!repo_matches("app[0-9]", "appx"));
	ck_assert(repo_matches("app[!0-9]", "appx"));
	ck_assert(repo_matches("app[^0-9]", "appx"));
	ck_assert(!repo_matches("app[^0-9]", "app1"));
	ck_assert(!repo_matches("a[!x]b", "a/b"));
	ck_assert(repo_matches("a[]]b", "a]b"));
	ck_assert(repo_matches("a[-x]b", "a-b"));
	ck_assert(repo_matches("a[x-]b", "a-b"));
	ck_assert(repo_matches("a\\*b", "a*b"));
	ck_assert(!repo_matches("a\\*b", "axb"));
	ck_assert(repo_matches("a\\?", "a?"));
	ck_assert(repo_matches("a[b", "a[b")); /* no `]': a literal `[' */
	ck_assert(repo_matches("a[\\]]b", "a]b"));
}
END_TEST

START_TEST(match_takes_source_registry_and_tag)
{
	sc_serve_rule r = rule_of("Registry.Example:*", "apps/*", "v[0-9]*");
	sc_serve_push p = {.source = SC_SOURCE_HARBOR,
	                   .registry = "registry.example:5000",
	                   .repository = "apps/web",
	                   .tag = "v1.2",
	                   .digest = DIGEST};
	ck_assert(sc_serve_rule_matches(&r, &p));
	p.registry = "REGISTRY.example:443";
	ck_assert(sc_serve_rule_matches(&r, &p));
	p.registry = "registry.example";
	ck_assert(!sc_serve_rule_matches(&r, &p));
	p.registry = "registry.example:5000";
	p.tag = "latest";
	ck_assert(!sc_serve_rule_matches(&r, &p));
	p.tag = "v1.2";
	r.from = SC_SOURCE_HARBOR;
	ck_assert(sc_serve_rule_matches(&r, &p));
	r.from = SC_SOURCE_DISTRIBUTION;
	ck_assert(!sc_serve_rule_matches(&r, &p));
	/* tags are case-sensitive; missing fields match as "" */
	sc_serve_rule any = rule_of("*", "*", "V*");
	sc_serve_push q = {.registry = NULL, .repository = "x", .tag = "v1"};
	ck_assert(!sc_serve_rule_matches(&any, &q));
	any.tag = (char *)"*";
	ck_assert(sc_serve_rule_matches(&any, &q));
	q.tag = NULL;
	ck_assert(sc_serve_rule_matches(&any, &q));
}
END_TEST

START_TEST(matching_is_not_exponential)
{
	/* Backtracking matchers take forever on these; the table does not. */
	char pat[200] = "", s[200] = "";
	for (int i = 0; i < 30; i++)
		strcat(pat, "*a");
	strcat(pat, "b");
	memset(s, 'a', 150);
	ck_assert(!repo_matches(pat, s));
	char pat2[200] = "";
	for (int i = 0; i < 30; i++)
		strcat(pat2, "**a");
	strcat(pat2, "b");
	ck_assert(!repo_matches(pat2, s));
}
END_TEST

/* ---- expansion ---- */

START_TEST(expand_substitutes_every_word)
{
	sc_serve_rule r = rule_of("*", "*", "*");
	r.name = (char *)"web";
	sc_serve_push p = {
	        .registry = "localhost:5000", .repository = "apps/team/api", .tag = "v1", .digest = DIGEST};
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *out = NULL;
	ck_assert_ok(sc_serve_expand("{registry}/{repository}:{tag}@{digest} {digest_hex} {name} {rule} x",
	                             &r, &p, &out, &err),
	             err);
	ck_assert_str_eq(out, "localhost:5000/apps/team/api:v1@" DIGEST " " DIGEST_HEX " api web x");
	free(out);
	p.repository = "solo";
	ck_assert_ok(sc_serve_expand("{name}", &r, &p, &out, &err), err);
	ck_assert_str_eq(out, "solo");
	free(out);
	ck_assert_ok(sc_serve_expand("", &r, &p, &out, &err), err);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(expand_refuses_unknown_words_and_unbalanced_braces)
{
	sc_serve_rule r = rule_of("*", "*", "*");
	sc_serve_push p = {.registry = "h", .repository = "a/b", .tag = "v1", .digest = DIGEST};
	static const struct {
		const char *t, *needle;
	} cases[] = {
	        {"{nope}", "template `{nope}': unknown `{nope}'"},
	        {"{}", "unknown `{}'"},
	        {"{Registry}", "unknown `{Registry}'"},
	        {"{registry", "`{' without `}'"},
	        {"{reg{istry}", "`{' without `}'"},
	        {"registry}", "`}' without `{'"},
	        {"{tag}}", "`}' without `{'"},
	        {"a{", "`{' without `}'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_error sconify_error_t err = NULL;
		char *out = NULL;
		ck_assert_fails(sc_serve_expand(cases[i].t, &r, &p, &out, &err), err, SCONIFY_ERR_INVALID,
		                cases[i].needle);
		ck_assert_ptr_null(out);
	}
	/* a push without a digest cannot fill {digest} */
	p.digest = NULL;
	cleanup_error sconify_error_t err = NULL;
	char *out = NULL;
	ck_assert_fails(sc_serve_expand("x:{digest_hex}", &r, &p, &out, &err), err, SCONIFY_ERR_INVALID,
	                "no value for `{digest_hex}'");
	sconify_error_free(&err);
	ck_assert_fails(sc_serve_expand("{rule}", NULL, &p, &out, &err), err, SCONIFY_ERR_INVALID,
	                "no value for `{rule}'");
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("serve-config");
	TCase *tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, accepts_the_issue_example_with_defaults);
	tcase_add_test(tc, accepts_every_field);
	tcase_add_test(tc, the_example_in_testdata_loads);
	tcase_add_test(tc, relative_names_resolve_against_the_config_directory);
	tcase_add_test(tc, parse_takes_text_and_a_base_directory);
	tcase_add_test(tc, crlf_line_ends_and_tabs_between_tokens_are_fine);
	tcase_add_test(tc, tabs_inside_values_are_control_characters);
	tcase_add_test(tc, tab_indentation_is_an_error_with_its_line);
	tcase_add_test(tc, anchors_aliases_tags_and_documents_are_refused);
	tcase_add_loop_test(tc, bad_configs_name_line_key_and_problem, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, load_reports_the_first_problem_and_counts_the_rest);
	tcase_add_test(tc, check_lists_every_problem_sorted_by_line);
	tcase_add_test(tc, check_of_a_valid_config_is_empty);
	tcase_add_test(tc, a_missing_config_file_is_not_found);
	tcase_add_test(tc, caps_are_enforced);
	suite_add_tcase(s, tc);

	tc = tcase_create("trust");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_rule_without_a_registry_is_refused);
	tcase_add_test(tc, a_registry_may_be_a_pattern_or_a_star);
	tcase_add_test(tc, listening_beyond_loopback_needs_an_operator_credential);
	tcase_add_test(tc, job_and_queue_limits_have_defaults_and_ranges);
	tcase_add_test(tc, session_templates_are_tried_with_dotted_tags_and_nested_repositories);
	tcase_add_test(tc, session_names_are_checked_for_the_runner);
	tcase_add_test(tc, a_destination_its_rules_would_convert_again_is_refused);
	tcase_add_test(tc, destinations_no_rule_matches_are_fine);
	suite_add_tcase(s, tc);

	tc = tcase_create("secrets");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, named_files_must_exist_with_the_line);
	tcase_add_test(tc, secret_files_readable_by_others_are_refused);
	tcase_add_test(tc, empty_secret_files_are_refused);
	tcase_add_test(tc, secret_files_hold_one_secret_a_line_for_rotation);
	tcase_add_loop_test(tc, secret_values_never_appear_in_errors, 0,
	                    sizeof(secret_cases) / sizeof(secret_cases[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_test(tc, star_and_question_mark_stay_inside_a_component);
	tcase_add_test(tc, double_star_crosses_components);
	tcase_add_test(tc, classes_and_escapes_follow_fnmatch);
	tcase_add_test(tc, match_takes_source_registry_and_tag);
	tcase_add_test(tc, matching_is_not_exponential);
	tcase_add_test(tc, expand_substitutes_every_word);
	tcase_add_test(tc, expand_refuses_unknown_words_and_unbalanced_braces);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(config_suite());
}
