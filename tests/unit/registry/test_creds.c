/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Credential lookup against HOME / XDG / DOCKER_CONFIG trees built in a
 * temporary directory, with fake docker-credential-* helpers written as shell
 * scripts into a temporary $PATH directory. Check forks each test, so the
 * environment set here stays in the test.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/xalloc.h"
#include "registry/creds.h"
#include "support.h"

/* Must never show up in an error message. */
#define SECRET "s3cr3t-Pw0rd"

static char *root;

static char *at(const char *rel)
{
	return xasprintf("%s/%s", root, rel);
}

static void write_at(const char *rel, const char *content, mode_t mode)
{
	cleanup_free char *path = at(rel);
	cleanup_free char *dir = sc_dirname(path);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_mkdir_p(dir, 0755, &err), err);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(content, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void write_file(const char *rel, const char *content)
{
	write_at(rel, content, 0600);
}

/* A helper docker-credential-<name> in $PATH running body under /bin/sh. */
static void write_helper(const char *name, const char *body)
{
	cleanup_free char *rel = xasprintf("bin/docker-credential-%s", name);
	cleanup_free char *script = xasprintf("#!/bin/sh\n[ \"$1\" = get ] || exit 99\n%s\n", body);
	write_at(rel, script, 0755);
}

static char *read_at(const char *rel)
{
	cleanup_free char *path = at(rel);
	char *data = NULL;
	size_t len = 0;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_read_file(path, 1 << 20, &data, &len, &err), err);
	return data;
}

static char *b64(const char *s)
{
	size_t n = strlen(s);
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

/* {"auths":{"<key>":{"auth":base64("<user>:<password>")}}} */
static char *auths_file(const char *key, const char *user, const char *password)
{
	cleanup_free char *up = xasprintf("%s:%s", user, password);
	cleanup_free char *a = b64(up);
	return xasprintf("{\"auths\":{\"%s\":{\"auth\":\"%s\"}}}", key, a);
}

static void write_auths(const char *rel, const char *key, const char *user, const char *password)
{
	cleanup_free char *content = auths_file(key, user, password);
	write_file(rel, content);
}

static void setup(void)
{
	root = sc_test_tmpdir();
	cleanup_free char *home = at("home");
	cleanup_free char *run = at("run");
	cleanup_free char *bin = at("bin");
	cleanup_free char *path = xasprintf("%s:/usr/bin:/bin", bin);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_mkdir_p(home, 0700, &err), err);
	ck_assert_ok(sc_mkdir_p(run, 0700, &err), err);
	ck_assert_ok(sc_mkdir_p(bin, 0700, &err), err);
	setenv("HOME", home, 1);
	setenv("XDG_RUNTIME_DIR", run, 1);
	setenv("PATH", path, 1);
	setenv("SCTEST_ROOT", root, 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("DOCKER_CONFIG");
	unsetenv("REGISTRY_AUTH_FILE");
	/* Anything a shell would run by mistake lands here, where tests look. */
	ck_assert_int_eq(chdir(root), 0);
}

static void teardown(void)
{
	if (chdir("/") != 0)
		abort();
	sc_test_tmpdir_cleanup(root);
	root = NULL;
}

static int lookup(const sc_creds_options *o, const char *registry, const char *repo, sc_credentials *c,
                  sconify_error_t *err)
{
	memset(c, 0xa5, sizeof(*c)); /* must be written on success, whatever was there */
	int r = sc_credentials_lookup(o, registry, repo, c, err);
	if (r < 0)
		memset(c, 0, sizeof(*c));
	return r;
}

static void assert_user(const sc_credentials *c, const char *user, const char *password)
{
	ck_assert_ptr_nonnull(c->username);
	ck_assert_str_eq(c->username, user);
	ck_assert_ptr_nonnull(c->password);
	ck_assert_str_eq(c->password, password);
}

static void assert_anonymous(const sc_credentials *c)
{
	ck_assert(sc_credentials_empty(c));
	ck_assert_ptr_null(c->username);
	ck_assert_ptr_null(c->password);
	ck_assert_ptr_null(c->identity_token);
	ck_assert_ptr_null(c->source);
}

static void assert_no_secret(sconify_error_t err)
{
	cleanup_free char *enc = b64("user:" SECRET);
	const char *msg = sconify_error_message(err);
	ck_assert_msg(strstr(msg, SECRET) == NULL, "secret in `%s'", msg);
	ck_assert_msg(strstr(msg, enc) == NULL, "encoded secret in `%s'", msg);
}

/* ---- --creds ------------------------------------------------------------- */

START_TEST(creds_option_wins_over_every_file)
{
	/* Not even read: a broken file does not matter. */
	write_file("run/containers/auth.json", "{not json");
	write_auths("home/.docker/config.json", "reg.example", "fileuser", "filepw");
	sc_creds_options o = {.creds = "me:pa:ss", .authfile = "/nonexistent/auth.json"};
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(&o, "reg.example", "ns/repo", &c, &err), err);
	assert_user(&c, "me", "pa:ss");
	ck_assert_str_eq(c.source, "--creds");
	ck_assert_ptr_null(c.identity_token);
}
END_TEST

START_TEST(creds_option_allows_an_empty_password)
{
	sc_creds_options o = {.creds = "me:"};
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(&o, "reg.example", NULL, &c, &err), err);
	assert_user(&c, "me", "");
}
END_TEST

static const struct {
	const char *creds;
	const char *needle;
} bad_creds[] = {
        {"user-" SECRET, "no `:'"},
        {":" SECRET, "empty user name"},
        {"", "is empty"},
};

START_TEST(creds_option_without_colon_or_user_fails_without_echo)
{
	sc_creds_options o = {.creds = bad_creds[_i].creds};
	sc_credentials c;
	cleanup_error sconify_error_t err = NULL;
	int r = lookup(&o, "reg.example", NULL, &c, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, bad_creds[_i].needle);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "USER:PASSWORD");
	assert_no_secret(err);
}
END_TEST

/* ---- which files, in which order ---------------------------------------- */

START_TEST(files_are_searched_in_order_and_the_first_with_an_entry_wins)
{
	write_auths("run/containers/auth.json", "reg.example", "runtime", "pw1");
	write_auths("home/.config/containers/auth.json", "reg.example", "config", "pw2");
	write_auths("home/.docker/config.json", "reg.example", "docker", "pw3");
	write_file("home/.dockercfg", "{\"https://reg.example/v1/\":{\"auth\":\"bGVnYWN5OnB3NA==\"}}");
	const char *order[] = {"run/containers/auth.json", "home/.config/containers/auth.json",
	                       "home/.docker/config.json", "home/.dockercfg"};
	const char *users[] = {"runtime", "config", "docker", "legacy"};
	for (size_t i = 0; i < 4; i++) {
		cleanup_credentials sc_credentials c = {0};
		cleanup_error sconify_error_t err = NULL;
		ck_assert_ok(lookup(NULL, "reg.example", "ns/repo", &c, &err), err);
		ck_assert_str_eq(c.username, users[i]);
		cleanup_free char *path = at(order[i]);
		ck_assert_str_eq(c.source, path);
		ck_assert_int_eq(unlink(path), 0);
	}
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", "ns/repo", &c, &err), err);
	assert_anonymous(&c);
}
END_TEST

START_TEST(a_file_without_an_entry_for_the_registry_is_passed_over)
{
	write_auths("run/containers/auth.json", "other.example", "runtime", "pw1");
	write_auths("home/.docker/config.json", "reg.example", "docker", "pw3");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", "ns/repo", &c, &err), err);
	assert_user(&c, "docker", "pw3");
}
END_TEST

START_TEST(xdg_config_home_and_docker_config_move_the_files)
{
	write_auths("home/.config/containers/auth.json", "reg.example", "ignored", "x");
	write_auths("home/.docker/config.json", "other.example", "ignored", "x");
	write_auths("xdg/containers/auth.json", "reg.example", "xdg", "pw");
	write_auths("dockercfg/config.json", "other.example", "dockerconfig", "pw");
	cleanup_free char *xdg = at("xdg");
	cleanup_free char *dc = at("dockercfg");
	setenv("XDG_CONFIG_HOME", xdg, 1);
	setenv("DOCKER_CONFIG", dc, 1);

	cleanup_credentials sc_credentials c = {0};
	cleanup_credentials sc_credentials d = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
	assert_user(&c, "xdg", "pw");
	ck_assert_ok(lookup(NULL, "other.example", NULL, &d, &err), err);
	assert_user(&d, "dockerconfig", "pw");
}
END_TEST

START_TEST(no_files_at_all_is_anonymous)
{
	/* HOME stays set: the password database's home would be the real one. */
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", "ns/repo", &c, &err), err);
	assert_anonymous(&c);
}
END_TEST

START_TEST(registry_auth_file_is_the_only_file_read)
{
	write_auths("elsewhere/auth.json", "other.example", "elsewhere", "pw");
	write_auths("run/containers/auth.json", "reg.example", "runtime", "pw");
	write_auths("home/.docker/config.json", "reg.example", "docker", "pw");
	cleanup_free char *authfile = at("elsewhere/auth.json");
	setenv("REGISTRY_AUTH_FILE", authfile, 1);

	cleanup_credentials sc_credentials c = {0};
	cleanup_credentials sc_credentials d = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", "ns/repo", &c, &err), err);
	assert_anonymous(&c);
	ck_assert_ok(lookup(NULL, "other.example", "ns/repo", &d, &err), err);
	assert_user(&d, "elsewhere", "pw");
	ck_assert_str_eq(d.source, authfile);
}
END_TEST

START_TEST(authfile_option_wins_over_registry_auth_file)
{
	write_auths("a.json", "reg.example", "from-option", "pw");
	write_auths("b.json", "reg.example", "from-env", "pw");
	cleanup_free char *a = at("a.json");
	cleanup_free char *b = at("b.json");
	setenv("REGISTRY_AUTH_FILE", b, 1);
	sc_creds_options o = {.authfile = a};
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(&o, "reg.example", NULL, &c, &err), err);
	assert_user(&c, "from-option", "pw");
	ck_assert_str_eq(c.source, a);
}
END_TEST

START_TEST(missing_authfile_fails)
{
	sc_creds_options o = {.authfile = "/nonexistent/auth.json"};
	sc_credentials c;
	cleanup_error sconify_error_t err = NULL;
	int r = lookup(&o, "reg.example", NULL, &c, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_NOT_FOUND,
	                "auth file `/nonexistent/auth.json' (--authfile) does not exist");

	cleanup_error sconify_error_t err2 = NULL;
	setenv("REGISTRY_AUTH_FILE", "/nonexistent/env.json", 1);
	r = lookup(NULL, "reg.example", NULL, &c, &err2);
	ck_assert_fails(r, err2, SCONIFY_ERR_NOT_FOUND,
	                "`/nonexistent/env.json' ($REGISTRY_AUTH_FILE) does not exist");
}
END_TEST

START_TEST(empty_file_has_no_entries)
{
	write_file("run/containers/auth.json", " \n");
	write_auths("home/.docker/config.json", "reg.example", "docker", "pw");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
	assert_user(&c, "docker", "pw");
}
END_TEST

static const struct {
	const char *content;
	const char *needle;
} malformed[] = {
        {"{\"auths\":{\"reg.example\":{\"auth\":\"" SECRET "\"", "is not valid JSON (premature end of input"},
        {"{\"auths\":{\"reg.example\":{\"auth\":" SECRET "}}}",
         "is not valid JSON (a syntax error at line 1"},
        {"{\"auths\":{\"reg.example\":{\"password\":\"" SECRET "\"},\"reg.example\":{}}}", "duplicate key"},
        {"[\"" SECRET "\"]", "is not a JSON object"},
        {"{\"auths\":[\"" SECRET "\"]}", "`auths' is not an object"},
        {"{\"auths\":{\"reg.example\":\"" SECRET "\"}}", "entry `reg.example' is not an object"},
        {"{\"auths\":{\"other\":{\"auth\":42}}}", "entry `other': `auth' is not a string"},
        {"{\"credHelpers\":{\"reg.example\":true}}", "`credHelpers' entry `reg.example' is not a string"},
        {"{\"credsStore\":{}}", "`credsStore' is not a string"},
        {"{\"auths\":{}}\n{\"" SECRET "\":1}", "data after the JSON value"},
};

START_TEST(malformed_file_fails_naming_it_without_secret)
{
	/* Earlier in the order than a good file: the search stops at the error. */
	write_file("run/containers/auth.json", malformed[_i].content);
	write_auths("home/.docker/config.json", "reg.example", "docker", "pw");
	sc_credentials c;
	cleanup_error sconify_error_t err = NULL;
	int r = lookup(NULL, "reg.example", "ns/repo", &c, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, malformed[_i].needle);
	cleanup_free char *path = at("run/containers/auth.json");
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, path);
	assert_no_secret(err);
}
END_TEST

START_TEST(unreadable_file_fails_naming_it)
{
	cleanup_free char *dir = at("run/containers/auth.json");
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_mkdir_p(dir, 0700, &err), err);
	sc_credentials c;
	int r = lookup(NULL, "reg.example", NULL, &c, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "is a directory");
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, dir);

	if (geteuid() == 0)
		return; /* root reads mode 000 files */
	write_file("home/.docker/config.json", "{}");
	cleanup_free char *path = at("home/.docker/config.json");
	ck_assert_int_eq(chmod(path, 0), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	cleanup_error sconify_error_t err2 = NULL;
	r = lookup(NULL, "reg.example", NULL, &c, &err2);
	ck_assert_fails(r, err2, SCONIFY_ERR_IO, "Permission denied");
	ck_assert_fails(r, err2, SCONIFY_ERR_IO, path);
}
END_TEST

/* ---- keys within a file -------------------------------------------------- */

START_TEST(most_specific_key_wins)
{
	cleanup_free char *host = b64("host:pw");
	cleanup_free char *ns = b64("ns:pw");
	cleanup_free char *repo = b64("repo:pw");
	cleanup_free char *content = xasprintf("{\"auths\":{\"reg.example\":{\"auth\":\"%s\"},"
	                                       "\"reg.example/ns\":{\"auth\":\"%s\"},"
	                                       "\"reg.example/ns/repo\":{\"auth\":\"%s\"}}}",
	                                       host, ns, repo);
	write_file("run/containers/auth.json", content);
	const struct {
		const char *repo;
		const char *user;
	} cases[] = {
	        {"ns/repo", "repo"}, {"ns/repo/sub", "repo"}, {"ns/other", "ns"}, {"ns-admin/repo", "host"},
	        {"nsx", "host"},     {"other/x", "host"},     {NULL, "host"},     {"", "host"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_credentials sc_credentials c = {0};
		cleanup_error sconify_error_t err = NULL;
		ck_assert_ok(lookup(NULL, "reg.example", cases[i].repo, &c, &err), err);
		ck_assert_msg(strcmp(c.username, cases[i].user) == 0, "%s: got %s, wanted %s",
		              cases[i].repo ? cases[i].repo : "(null)", c.username, cases[i].user);
	}
}
END_TEST

static const struct {
	const char *key;
	const char *registry;
} url_keys[] = {
        {"http://localhost:5000/v2/", "localhost:5000"},
        {"https://reg.example/", "reg.example"},
        {"https://reg.example", "reg.example"},
        {"https://reg.example:443/v1/", "reg.example:443"},
        {"https://registry-1.docker.io/v2/", "docker.io"},
};

START_TEST(url_keys_match_by_host_and_port)
{
	write_auths("home/.docker/config.json", url_keys[_i].key, "urluser", "pw");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, url_keys[_i].registry, "ns/repo", &c, &err), err);
	assert_user(&c, "urluser", "pw");
}
END_TEST

START_TEST(url_keys_do_not_match_other_hosts_or_ports)
{
	write_file("home/.docker/config.json", "{\"auths\":{"
	                                       "\"http://localhost:5000/v2/\":{\"auth\":\"dTpw\"},"
	                                       "\"reg.example/ns\":{\"auth\":\"dTpw\"},"
	                                       "\"https://reg.example.evil/\":{\"auth\":\"dTpw\"}}}");
	const char *registries[] = {"localhost", "localhost:5001", "reg.example", "localhost:500"};
	for (size_t i = 0; i < sizeof(registries) / sizeof(registries[0]); i++) {
		cleanup_credentials sc_credentials c = {0};
		cleanup_error sconify_error_t err = NULL;
		ck_assert_ok(lookup(NULL, registries[i], "x/y", &c, &err), err);
		ck_assert_msg(sc_credentials_empty(&c), "%s matched", registries[i]);
	}
}
END_TEST

START_TEST(exact_key_wins_over_url_key)
{
	cleanup_free char *url = b64("url:pw");
	cleanup_free char *exact = b64("exact:pw");
	cleanup_free char *content = xasprintf("{\"auths\":{\"https://reg.example/v2/"
	                                       "\":{\"auth\":\"%s\"},\"reg.example\":{\"auth\":\"%s\"}}}",
	                                       url, exact);
	write_file("run/containers/auth.json", content);
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", "ns/repo", &c, &err), err);
	assert_user(&c, "exact", "pw");
}
END_TEST

static const char *hub_keys[] = {"docker.io",
                                 "index.docker.io",
                                 "registry-1.docker.io",
                                 "https://index.docker.io/v1/",
                                 "docker.io/library/alpine",
                                 "docker.io/library"};

START_TEST(docker_hub_matches_its_aliases)
{
	write_auths("home/.docker/config.json", hub_keys[_i], "hubuser", "pw");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "docker.io", "library/alpine", &c, &err), err);
	assert_user(&c, "hubuser", "pw");
}
END_TEST

START_TEST(docker_hub_keys_do_not_match_other_registries)
{
	write_auths("home/.docker/config.json", "https://index.docker.io/v1/", "hubuser", "pw");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "quay.io", "library/alpine", &c, &err), err);
	assert_anonymous(&c);
}
END_TEST

START_TEST(docker_hub_prefers_dockers_own_key)
{
	cleanup_free char *idx = b64("index:pw");
	cleanup_free char *v1 = b64("v1:pw");
	cleanup_free char *content = xasprintf("{\"auths\":{\"index.docker.io\":{\"auth\":\"%s\"},\"https://"
	                                       "index.docker.io/v1/\":{\"auth\":\"%s\"}}}",
	                                       idx, v1);
	write_file("home/.docker/config.json", content);
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "docker.io", "library/alpine", &c, &err), err);
	assert_user(&c, "v1", "pw");
}
END_TEST

/* ---- auths entries ------------------------------------------------------- */

START_TEST(auth_is_split_at_the_first_colon_and_nuls_trimmed)
{
	/* base64("user:pa:ss\0\0") */
	write_file("run/containers/auth.json",
	           "{\"auths\":{\"reg.example\":{\"auth\":\"dXNlcjpwYTpzcwAA\"}}}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
	assert_user(&c, "user", "pa:ss");
}
END_TEST

START_TEST(auth_with_line_breaks_is_accepted)
{
	/* Go's decoder skips CR and LF: "dXNlcjpwdw==" split. */
	write_file("run/containers/auth.json",
	           "{\"auths\":{\"reg.example\":{\"auth\":\"dXNl\\r\\ncjpwdw==\\n\"}}}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
	assert_user(&c, "user", "pw");
}
END_TEST

START_TEST(username_and_password_fields_are_read)
{
	write_file("run/containers/auth.json", "{\"auths\":{\"reg.example\":{\"username\":\"plain\","
	                                       "\"password\":\"pw\",\"email\":\"x@y\"}}}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
	assert_user(&c, "plain", "pw");
}
END_TEST

START_TEST(identity_token_from_auths_keeps_the_user)
{
	cleanup_free char *a = b64("tokenuser:pw");
	cleanup_free char *content = xasprintf(
	        "{\"auths\":{\"reg.example\":{\"auth\":\"%s\",\"identitytoken\":\"refresh-tok\"}}}", a);
	write_file("run/containers/auth.json", content);
	write_file("home/.docker/config.json",
	           "{\"auths\":{\"only.token\":{\"identitytoken\":\"just-tok\"},\"empty\":{}}}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_credentials sc_credentials d = {0};
	cleanup_credentials sc_credentials e = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
	assert_user(&c, "tokenuser", "pw");
	ck_assert_str_eq(c.identity_token, "refresh-tok");
	ck_assert_ok(lookup(NULL, "only.token", NULL, &d, &err), err);
	ck_assert_ptr_null(d.username);
	ck_assert_str_eq(d.identity_token, "just-tok");
	ck_assert(!sc_credentials_empty(&d));
	ck_assert_ok(lookup(NULL, "empty", NULL, &e, &err), err);
	assert_anonymous(&e);
}
END_TEST

static const struct {
	const char *entry;
	const char *needle;
} bad_entries[] = {
        {"{\"auth\":\"" SECRET "!\"}", "entry `reg.example': `auth' is not valid base64"},
        {"{\"auth\":\"dXNlcjpzM2NyM3QtUHcwcmQ\"}", "`auth' is not valid base64"}, /* padding missing */
        {"{\"auth\":\"dXNlcjpzM2NyM3QtUHcwcmQ===\"}", "`auth' is not valid base64"},
        {"{\"auth\":\"dXNlcjpzM2NyM3QtUHcwcmQ=dTpw\"}", "`auth' is not valid base64"},
        {"{\"auth\":\"dXNlci1zM2NyM3QtUHcwcmQ=\"}", "`auth' does not decode to USER:PASSWORD"}, /* no ':' */
        {"{\"auth\":\"OnMzY3IzdC1QdzByZA==\"}", "(empty user name)"},         /* ":secret" */
        {"{\"auth\":\"dQB4OnMzY3IzdC1QdzByZA==\"}", "`auth' has a NUL byte"}, /* "u\0x:secret" */
        {"{\"password\":\"" SECRET "\"}", "entry `reg.example' has a password but no username"},
};

START_TEST(bad_auths_entry_fails_naming_file_and_key_without_secret)
{
	cleanup_free char *content = xasprintf("{\"auths\":{\"reg.example\":%s}}", bad_entries[_i].entry);
	write_file("run/containers/auth.json", content);
	sc_credentials c;
	cleanup_error sconify_error_t err = NULL;
	int r = lookup(NULL, "reg.example", NULL, &c, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, bad_entries[_i].needle);
	cleanup_free char *path = at("run/containers/auth.json");
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, path);
	assert_no_secret(err);
}
END_TEST

/* ---- helpers ------------------------------------------------------------- */

#define HELPER_OK(user, secret)                                                                           \
	"cat > /dev/null; printf '{\"ServerURL\":\"x\",\"Username\":\"%s\",\"Secret\":\"%s\"}\\n' '" user \
	"' '" secret "'"
#define HELPER_NOT_FOUND "cat > /dev/null; echo 'credentials not found in native keychain'; exit 1"

START_TEST(cred_helpers_win_over_auths_over_creds_store)
{
	write_helper("specific", HELPER_OK("from-credhelpers", "pw1"));
	write_helper("store", HELPER_OK("from-credsstore", "pw3"));
	cleanup_free char *a = b64("from-auths:pw2");
	cleanup_free char *all =
	        xasprintf("{\"credsStore\":\"store\",\"credHelpers\":{\"reg.example\":\"specific\"},"
	                  "\"auths\":{\"reg.example\":{\"auth\":\"%s\"}}}",
	                  a);
	cleanup_free char *no_helper =
	        xasprintf("{\"credsStore\":\"store\",\"credHelpers\":{\"other.example\":\"specific\"},"
	                  "\"auths\":{\"reg.example\":{\"auth\":\"%s\"}}}",
	                  a);
	const char *store_only =
	        "{\"credsStore\":\"store\",\"auths\":{\"other.example\":{\"auth\":\"dTpw\"}}}";
	cleanup_free char *path = at("home/.docker/config.json");

	write_file("home/.docker/config.json", all);
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", "ns/repo", &c, &err), err);
	assert_user(&c, "from-credhelpers", "pw1");
	cleanup_free char *src = xasprintf("docker-credential-specific (credHelpers in %s)", path);
	ck_assert_str_eq(c.source, src);

	write_file("home/.docker/config.json", no_helper);
	cleanup_credentials sc_credentials d = {0};
	ck_assert_ok(lookup(NULL, "reg.example", "ns/repo", &d, &err), err);
	assert_user(&d, "from-auths", "pw2");

	write_file("home/.docker/config.json", store_only);
	cleanup_credentials sc_credentials e = {0};
	ck_assert_ok(lookup(NULL, "reg.example", "ns/repo", &e, &err), err);
	assert_user(&e, "from-credsstore", "pw3");
	cleanup_free char *src2 = xasprintf("docker-credential-store (credsStore in %s)", path);
	ck_assert_str_eq(e.source, src2);
}
END_TEST

START_TEST(empty_auths_entry_falls_through_to_creds_store)
{
	/* What docker login writes when a credsStore keeps the secret. */
	write_helper("desktop", HELPER_OK("hubuser", "pw"));
	write_file("home/.docker/config.json",
	           "{\"auths\":{\"https://index.docker.io/v1/\":{}},\"credsStore\":\"desktop\"}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "docker.io", "library/alpine", &c, &err), err);
	assert_user(&c, "hubuser", "pw");
}
END_TEST

START_TEST(empty_helper_name_is_no_helper)
{
	write_file("home/.docker/config.json",
	           "{\"credsStore\":\"\",\"credHelpers\":{\"reg.example\":\"\"},\"auths\":{\"reg.example\":"
	           "{\"auth\":\"dTpwdw==\"}}}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
	assert_user(&c, "u", "pw");
}
END_TEST

START_TEST(helper_gets_the_server_url_on_stdin)
{
	write_helper("log",
	             "cat >> \"$SCTEST_ROOT/urls\"; echo >> \"$SCTEST_ROOT/urls\"\n" HELPER_OK("u", "pw"));
	write_file("run/containers/auth.json", "{\"credHelpers\":{\"reg.example:5000\":\"log\"}}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example:5000", "ns/repo", &c, &err), err);
	assert_user(&c, "u", "pw");
	cleanup_free char *urls = read_at("urls");
	ck_assert_str_eq(urls, "reg.example:5000\n");
}
END_TEST

START_TEST(helper_is_asked_for_docker_hub_under_dockers_url_then_docker_io)
{
	write_helper("hub",
	             "url=$(cat); echo \"$url\" >> \"$SCTEST_ROOT/urls\"\n"
	             "if [ \"$url\" = docker.io ]; then " HELPER_OK(
	                     "hubuser", "pw") "; exit 0; fi\n"
	                                      "echo 'credentials not found in native keychain'; exit 1");
	write_file("home/.docker/config.json", "{\"credsStore\":\"hub\"}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "docker.io", "library/alpine", &c, &err), err);
	assert_user(&c, "hubuser", "pw");
	cleanup_free char *urls = read_at("urls");
	ck_assert_str_eq(urls, "https://index.docker.io/v1/\ndocker.io\n");
}
END_TEST

START_TEST(cred_helpers_key_docker_io_serves_docker_hub)
{
	write_helper("hub", HELPER_OK("hubuser", "pw"));
	write_file("run/containers/auth.json", "{\"credHelpers\":{\"docker.io\":\"hub\"}}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "docker.io", "library/alpine", &c, &err), err);
	assert_user(&c, "hubuser", "pw");
}
END_TEST

START_TEST(identity_token_from_helper)
{
	write_helper("tok", HELPER_OK("<token>", "refresh-tok"));
	write_file("run/containers/auth.json", "{\"credsStore\":\"tok\"}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
	ck_assert_ptr_null(c.username);
	ck_assert_ptr_null(c.password);
	ck_assert_str_eq(c.identity_token, "refresh-tok");
	ck_assert(!sc_credentials_empty(&c));
}
END_TEST

START_TEST(helper_field_names_match_case_insensitively)
{
	write_helper(
	        "lower",
	        "cat >/dev/null; echo '{\"serverurl\":\"x\",\"username\":\"u\",\"secret\":\"pw\"} trailing'");
	write_file("run/containers/auth.json", "{\"credsStore\":\"lower\"}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
	assert_user(&c, "u", "pw");
}
END_TEST

START_TEST(helper_not_found_is_anonymous_for_that_file)
{
	write_helper("none", HELPER_NOT_FOUND);
	/* credsStore says not found: anonymous. */
	write_file("home/.docker/config.json", "{\"credsStore\":\"none\"}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
	assert_anonymous(&c);

	/* A credHelpers entry that says not found is final for its file, not
	 * for the search: the next file still counts. */
	cleanup_free char *a = b64("fileuser:pw");
	cleanup_free char *content = xasprintf(
	        "{\"credHelpers\":{\"reg.example\":\"none\"},\"auths\":{\"reg.example\":{\"auth\":\"%s\"}}}",
	        a);
	write_file("run/containers/auth.json", content);
	write_auths("home/.docker/config.json", "reg.example", "docker", "pw");
	cleanup_credentials sc_credentials d = {0};
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &d, &err), err);
	assert_user(&d, "docker", "pw");
}
END_TEST

START_TEST(helper_with_empty_answer_is_anonymous)
{
	write_helper("blank",
	             "cat >/dev/null; echo '{\"ServerURL\":\"\",\"Username\":\"\",\"Secret\":\"\"}'");
	write_file("home/.docker/config.json", "{\"credsStore\":\"blank\"}");
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
	assert_anonymous(&c);
}
END_TEST

static const struct {
	const char *body;
	sconify_error_kind_t kind;
	const char *needle;
	const char *needle2;
} failing_helpers[] = {
        /* The protocol's error channel is stdout: its first line is shown. */
        {"cat >/dev/null; echo 'keychain is locked'; echo '" SECRET "'; echo '" SECRET "' >&2; exit 3",
         SCONIFY_ERR_GENERIC, "failed with exit status 3: `keychain is locked'", NULL},
        /* Nothing on stdout: the first line of stderr. */
        {"cat >/dev/null; echo 'no dbus session' >&2; echo '" SECRET "' >&2; exit 1", SCONIFY_ERR_GENERIC,
         "failed with exit status 1: `no dbus session'", NULL},
        /* JSON on stdout is never shown, even on failure. */
        {"cat >/dev/null; echo '{\"Username\":\"u\",\"Secret\":\"" SECRET "\"}'; exit 1", SCONIFY_ERR_GENERIC,
         "failed with exit status 1", NULL},
        {"cat >/dev/null; kill -9 $$", SCONIFY_ERR_GENERIC, "killed by signal 9", NULL},
        {"cat >/dev/null; printf '{\"Username\":\"u\",\"Secret\":\"" SECRET "'", SCONIFY_ERR_INVALID,
         "its output is not valid JSON (premature end of input", NULL},
        {"cat >/dev/null; echo '[\"" SECRET "\"]'", SCONIFY_ERR_INVALID, "its output is not a JSON object",
         NULL},
        {"cat >/dev/null; echo '{\"Username\":1,\"Secret\":\"" SECRET "\"}'", SCONIFY_ERR_INVALID,
         "`Username' in its output is not a string", NULL},
        {"cat >/dev/null; echo '{\"Username\":\"\",\"Secret\":\"" SECRET "\"}'", SCONIFY_ERR_INVALID,
         "returned a secret without a user name", NULL},
        {"cat >/dev/null; head -c 2000000 /dev/zero | tr '\\0' a", SCONIFY_ERR_LIMIT,
         "output larger than 1048576 bytes", NULL},
};

START_TEST(failing_helper_fails_naming_it_without_secret)
{
	write_helper("bad", failing_helpers[_i].body);
	write_file("home/.docker/config.json", "{\"credsStore\":\"bad\"}");
	sc_credentials c;
	cleanup_error sconify_error_t err = NULL;
	int r = lookup(NULL, "reg.example", NULL, &c, &err);
	ck_assert_fails(r, err, failing_helpers[_i].kind, failing_helpers[_i].needle);
	cleanup_free char *path = at("home/.docker/config.json");
	cleanup_free char *what =
	        xasprintf("credential helper `docker-credential-bad' (credsStore in `%s')", path);
	ck_assert_fails(r, err, failing_helpers[_i].kind, what);
	assert_no_secret(err);
}
END_TEST

static int open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

START_TEST(helper_that_ignores_stdin_leaves_no_descriptor_open)
{
	/* Exits without reading its input: no SIGPIPE for us, no leaked pipe. */
	write_helper("deaf", "printf '{\"Username\":\"u\",\"Secret\":\"pw\"}'");
	write_helper("fail", "exit 1");
	write_file("home/.docker/config.json",
	           "{\"credsStore\":\"deaf\",\"credHelpers\":{\"bad.example\":\"fail\"}}");
	int before = open_fds();
	for (int i = 0; i < 3; i++) {
		cleanup_credentials sc_credentials c = {0};
		cleanup_error sconify_error_t err = NULL;
		ck_assert_ok(lookup(NULL, "reg.example", NULL, &c, &err), err);
		assert_user(&c, "u", "pw");
		sc_credentials d;
		cleanup_error sconify_error_t err2 = NULL;
		int r = lookup(NULL, "bad.example", NULL, &d, &err2);
		ck_assert_fails(r, err2, SCONIFY_ERR_GENERIC, "failed with exit status 1");
	}
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

START_TEST(missing_helper_fails_naming_it)
{
	write_file("run/containers/auth.json", "{\"credHelpers\":{\"reg.example\":\"nope\"}}");
	sc_credentials c;
	cleanup_error sconify_error_t err = NULL;
	int r = lookup(NULL, "reg.example", NULL, &c, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_NOT_FOUND,
	                "credential helper `docker-credential-nope' (credHelpers in");
	ck_assert_fails(r, err, SCONIFY_ERR_NOT_FOUND, "not found in $PATH");
}
END_TEST

START_TEST(helper_in_a_relative_path_entry_is_not_run)
{
	/* An empty PATH entry means the current directory to execvp; like Go's
	 * exec.LookPath, only absolute directories count. */
	write_helper("here", "cat >/dev/null; touch ran; " HELPER_OK("u", "pw"));
	cleanup_free char *bin = at("bin");
	ck_assert_int_eq(chdir(bin), 0);
	setenv("PATH", ":.:bin:/usr/bin:/bin", 1);
	write_file("home/.docker/config.json", "{\"credsStore\":\"here\"}");
	sc_credentials c;
	cleanup_error sconify_error_t err = NULL;
	int r = lookup(NULL, "reg.example", NULL, &c, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_NOT_FOUND, "not found in $PATH");
	ck_assert_int_eq(access("ran", F_OK), -1);
}
END_TEST

START_TEST(helper_name_with_a_slash_is_rejected)
{
	write_helper("x", HELPER_OK("u", "pw"));
	write_file("home/.docker/config.json", "{\"credsStore\":\"../bin/docker-credential-x\"}");
	sc_credentials c;
	cleanup_error sconify_error_t err = NULL;
	int r = lookup(NULL, "reg.example", NULL, &c, &err);
	ck_assert_fails(r, err, SCONIFY_ERR_INVALID, "the name contains a `/'");
}
END_TEST

START_TEST(shell_metacharacters_are_passed_verbatim)
{
	const char *registry =
	        "reg;touch pwned1`touch pwned2`$(touch pwned3)|touch pwned4&'\"*?<>${IFS}x:5000";
	write_helper("echo", "cat > \"$SCTEST_ROOT/stdin\"; " HELPER_OK("u", "pw"));
	cleanup_free char *content = xasprintf("{\"credsStore\":\"echo\"}");
	write_file("home/.docker/config.json", content);
	cleanup_credentials sc_credentials c = {0};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(lookup(NULL, registry, "ns/repo", &c, &err), err);
	assert_user(&c, "u", "pw");
	cleanup_free char *got = read_at("stdin");
	ck_assert_str_eq(got, registry);

	/* A helper name with metacharacters is only ever a file name. */
	write_file("home/.docker/config.json", "{\"credsStore\":\"echo;touch pwned5\"}");
	sc_credentials d;
	cleanup_error sconify_error_t err2 = NULL;
	int r = lookup(NULL, "reg.example", NULL, &d, &err2);
	ck_assert_fails(r, err2, SCONIFY_ERR_NOT_FOUND, "`docker-credential-echo;touch pwned5'");

	for (int i = 1; i <= 5; i++) {
		cleanup_free char *p = xasprintf("pwned%d", i);
		ck_assert_msg(access(p, F_OK) < 0, "%s was created", p);
	}
}
END_TEST

START_TEST(registry_that_is_not_a_host_is_rejected)
{
	const char *bad[] = {"", "reg.example/ns", "reg\nexample"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sc_credentials c;
		cleanup_error sconify_error_t err = NULL;
		ck_assert_int_lt(lookup(NULL, bad[i], NULL, &c, &err), 0);
		ck_assert_ptr_nonnull(err);
	}
}
END_TEST

START_TEST(clear_frees_and_zeroes)
{
	sc_credentials c = {.username = xstrdup("u"),
	                    .password = xstrdup(SECRET),
	                    .identity_token = xstrdup("tok"),
	                    .source = xstrdup("--creds")};
	ck_assert(!sc_credentials_empty(&c));
	sc_credentials_clear(&c);
	ck_assert_ptr_null(c.username);
	ck_assert_ptr_null(c.password);
	ck_assert_ptr_null(c.identity_token);
	ck_assert_ptr_null(c.source);
	ck_assert(sc_credentials_empty(&c));
	sc_credentials_clear(&c);
	sc_credentials_clear(NULL);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("creds");
	TCase *tc = tcase_create("creds");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, creds_option_wins_over_every_file);
	tcase_add_test(tc, creds_option_allows_an_empty_password);
	tcase_add_loop_test(tc, creds_option_without_colon_or_user_fails_without_echo, 0,
	                    sizeof(bad_creds) / sizeof(bad_creds[0]));
	tcase_add_test(tc, files_are_searched_in_order_and_the_first_with_an_entry_wins);
	tcase_add_test(tc, a_file_without_an_entry_for_the_registry_is_passed_over);
	tcase_add_test(tc, xdg_config_home_and_docker_config_move_the_files);
	tcase_add_test(tc, no_files_at_all_is_anonymous);
	tcase_add_test(tc, registry_auth_file_is_the_only_file_read);
	tcase_add_test(tc, authfile_option_wins_over_registry_auth_file);
	tcase_add_test(tc, missing_authfile_fails);
	tcase_add_test(tc, empty_file_has_no_entries);
	tcase_add_loop_test(tc, malformed_file_fails_naming_it_without_secret, 0,
	                    sizeof(malformed) / sizeof(malformed[0]));
	tcase_add_test(tc, unreadable_file_fails_naming_it);
	tcase_add_test(tc, most_specific_key_wins);
	tcase_add_loop_test(tc, url_keys_match_by_host_and_port, 0, sizeof(url_keys) / sizeof(url_keys[0]));
	tcase_add_test(tc, url_keys_do_not_match_other_hosts_or_ports);
	tcase_add_test(tc, exact_key_wins_over_url_key);
	tcase_add_loop_test(tc, docker_hub_matches_its_aliases, 0, sizeof(hub_keys) / sizeof(hub_keys[0]));
	tcase_add_test(tc, docker_hub_keys_do_not_match_other_registries);
	tcase_add_test(tc, docker_hub_prefers_dockers_own_key);
	tcase_add_test(tc, auth_is_split_at_the_first_colon_and_nuls_trimmed);
	tcase_add_test(tc, auth_with_line_breaks_is_accepted);
	tcase_add_test(tc, username_and_password_fields_are_read);
	tcase_add_test(tc, identity_token_from_auths_keeps_the_user);
	tcase_add_loop_test(tc, bad_auths_entry_fails_naming_file_and_key_without_secret, 0,
	                    sizeof(bad_entries) / sizeof(bad_entries[0]));
	tcase_add_test(tc, cred_helpers_win_over_auths_over_creds_store);
	tcase_add_test(tc, empty_auths_entry_falls_through_to_creds_store);
	tcase_add_test(tc, empty_helper_name_is_no_helper);
	tcase_add_test(tc, helper_gets_the_server_url_on_stdin);
	tcase_add_test(tc, helper_is_asked_for_docker_hub_under_dockers_url_then_docker_io);
	tcase_add_test(tc, cred_helpers_key_docker_io_serves_docker_hub);
	tcase_add_test(tc, identity_token_from_helper);
	tcase_add_test(tc, helper_field_names_match_case_insensitively);
	tcase_add_test(tc, helper_not_found_is_anonymous_for_that_file);
	tcase_add_test(tc, helper_with_empty_answer_is_anonymous);
	tcase_add_loop_test(tc, failing_helper_fails_naming_it_without_secret, 0,
	                    sizeof(failing_helpers) / sizeof(failing_helpers[0]));
	tcase_add_test(tc, helper_that_ignores_stdin_leaves_no_descriptor_open);
	tcase_add_test(tc, missing_helper_fails_naming_it);
	tcase_add_test(tc, helper_in_a_relative_path_entry_is_not_run);
	tcase_add_test(tc, helper_name_with_a_slash_is_rejected);
	tcase_add_test(tc, shell_metacharacters_are_passed_verbatim);
	tcase_add_test(tc, registry_that_is_not_a_host_is_rejected);
	tcase_add_test(tc, clear_frees_and_zeroes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
