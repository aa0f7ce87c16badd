/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE /* memmem */
#include <string.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/xalloc.h"
#include "digest/digest.h"
#include "policy/policy.h"
#include "support.h"

#define H64 "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define K64 "3f7a9c1e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a"
#define HEAD "name: s\nversion: \"0.3\"\n"
#define SVC "services:\n  - name: app\n"
#define CMD "    command: [/bin/true]\n"
#define MEAS "    measurements: [" H64 "]\n"
#define MINIMAL HEAD SVC CMD MEAS

static int parse_str(const char *doc, sc_policy **ret, sconify_error_t *err)
{
	return sc_policy_parse(doc, strlen(doc), "x.yml", ret, err);
}

static void strv_freep(char ***v)
{
	sc_strv_free(*v);
}

/* ---- good documents ---- */

START_TEST(parse_accepts_minimal_policy_with_defaults)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;
	ck_assert_ok(parse_str(MINIMAL, &p, &err), err);
	ck_assert_str_eq(p->name, "s");
	ck_assert_ptr_null(p->predecessor);
	ck_assert_int_eq(p->n_read, 1);
	ck_assert_str_eq(p->read[0], "CREATOR");
	ck_assert_str_eq(p->update[0], "CREATOR");
	ck_assert_int_eq(p->mode, SC_POLICY_MODE_HARDWARE);
	ck_assert_int_eq(p->n_services, 1);
	ck_assert_int_eq(p->services[0].argc, 1);
	ck_assert_str_eq(p->services[0].argv[0], "/bin/true");
	ck_assert(!p->services[0].has_fspf);
}
END_TEST

static const char *const examples[] = {"example-sim.yml", "example-hw.yml", "session-template.yml"};

START_TEST(examples_validate_and_round_trip)
{
	cleanup_free char *path = sc_path_join(SC_POLICIES_DIR, examples[_i]);
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *data = NULL;
	size_t len = 0;
	ck_assert_ok(sc_read_file(path, SC_POLICY_MAX_BYTES, &data, &len, &err), err);
	_cleanup_(strv_freep) char **problems = sc_policy_validate(data, len, examples[_i]);
	ck_assert_msg(problems[0] == NULL, "%s", problems[0]);
	cleanup_policy sc_policy *p = NULL, *q = NULL;
	ck_assert_ok(sc_policy_parse(data, len, examples[_i], &p, &err), err);
	cleanup_free char *text = NULL;
	size_t tlen = 0;
	ck_assert_ok(sc_policy_emit(p, &text, &tlen, &err), err);
	ck_assert_ok(sc_policy_parse(text, tlen, "emitted", &q, &err), err);
	ck_assert(sc_policy_equal(p, q));
}
END_TEST

START_TEST(command_string_is_split_on_spaces_and_list_kept_exact)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;
	ck_assert_ok(parse_str(HEAD SVC "    command: \"  python3\t-c  'print(1)' \"\n" MEAS, &p, &err), err);
	ck_assert_int_eq(p->services[0].argc, 3);
	ck_assert_str_eq(p->services[0].argv[0], "python3");
	ck_assert_str_eq(p->services[0].argv[1], "-c");
	ck_assert_str_eq(p->services[0].argv[2], "'print(1)'");
	ck_assert_ptr_null(p->services[0].argv[3]);
	sc_policy_free(steal_pointer(&p));
	ck_assert_ok(
	        parse_str(HEAD SVC "    command: [sh, -c, \"echo  two  spaces\", \"\"]\n" MEAS, &p, &err),
	        err);
	ck_assert_int_eq(p->services[0].argc, 4);
	ck_assert_str_eq(p->services[0].argv[2], "echo  two  spaces");
	ck_assert_str_eq(p->services[0].argv[3], "");
}
END_TEST

START_TEST(scalars_are_strings_without_type_conversion)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;
	ck_assert_ok(parse_str(HEAD SVC CMD MEAS
	                       "    environment:\n      A: 0x10\n      B: yes\n      C: null\n"
	                       "      D:\n      E: 1.50\n",
	                       &p, &err),
	             err);
	const sc_policy_service *s = &p->services[0];
	ck_assert_int_eq(s->n_env, 5);
	ck_assert_str_eq(s->env[0].value, "0x10");
	ck_assert_str_eq(s->env[1].value, "yes");
	ck_assert_str_eq(s->env[2].value, "null");
	ck_assert_str_eq(s->env[3].value, "");
	ck_assert_str_eq(s->env[4].value, "1.50");
}
END_TEST

START_TEST(session_names_take_namespaces)
{
	ck_assert(sc_policy_valid_session_name("ns/app"));
	ck_assert(sc_policy_valid_session_name("a-b_c/D-9/e"));
	ck_assert(!sc_policy_valid_session_name("ns/"));
	ck_assert(!sc_policy_valid_session_name("/app"));
	ck_assert(!sc_policy_valid_session_name("ns//app"));
	ck_assert(!sc_policy_valid_session_name("a.b"));
	ck_assert(!sc_policy_valid_session_name(""));
	ck_assert(sc_policy_valid_name("svc-1_x"));
	ck_assert(!sc_policy_valid_name("ns/svc"));
}
END_TEST

/* ---- every field's bad values name the line and the field ---- */

static const struct {
	const char *doc;
	sconify_error_kind_t kind;
	const char *needle;
} bad[] = {
        {HEAD "bogus: 1\n" SVC CMD MEAS, SCONIFY_ERR_INVALID, "x.yml:3: unknown field `bogus'"},
        {"name: s\nversion: \"0.2\"\n", SCONIFY_ERR_UNSUPPORTED,
         "x.yml:2: version: unsupported version `0.2'"},
        {"version: \"0.3\"\n", SCONIFY_ERR_INVALID, "x.yml:1: name: missing"},
        {"name: s\n", SCONIFY_ERR_INVALID, "x.yml:1: version: missing"},
        {"name: a/b/\nversion: \"0.3\"\n", SCONIFY_ERR_INVALID, "x.yml:1: name: invalid session name `a/b/'"},
        {"name: [a]\nversion: \"0.3\"\n", SCONIFY_ERR_INVALID,
         "x.yml:1: name: expected a string, found a list"},
        {HEAD "predecessor: abc\n", SCONIFY_ERR_INVALID, "x.yml:3: predecessor: not 64 lowercase hex digits"},
        {HEAD "access_policy:\n  read: [BOSS]\n", SCONIFY_ERR_INVALID,
         "x.yml:4: access_policy.read[0]: `BOSS' is not CREATOR, ANY, NONE"},
        {HEAD "access_policy:\n  update: []\n", SCONIFY_ERR_INVALID,
         "x.yml:4: access_policy.update: empty list"},
        {HEAD "access_policy:\n  read: [NONE, ANY]\n", SCONIFY_ERR_INVALID,
         "x.yml:4: access_policy.read: NONE cannot be combined"},
        {HEAD "access_policy:\n  owner: [ANY]\n", SCONIFY_ERR_INVALID,
         "x.yml:4: access_policy: unknown field `owner'"},
        {HEAD "services:\n  - name: a b\n" CMD MEAS, SCONIFY_ERR_INVALID,
         "x.yml:4: services[0].name: invalid name"},
        {HEAD SVC "    image_name: nope\n" CMD MEAS, SCONIFY_ERR_INVALID,
         "x.yml:5: services[0].image_name: no image `nope' in images"},
        {HEAD SVC MEAS, SCONIFY_ERR_INVALID, "x.yml:4: services[0].command: missing"},
        {HEAD SVC "    command: []\n" MEAS, SCONIFY_ERR_INVALID,
         "x.yml:5: services[0].command: empty command"},
        {HEAD SVC "    command: \"  \"\n" MEAS, SCONIFY_ERR_INVALID,
         "x.yml:5: services[0].command: empty command"},
        {HEAD SVC "    command: {a: b}\n" MEAS, SCONIFY_ERR_INVALID,
         "x.yml:5: services[0].command: expected a string or a list of strings"},
        {HEAD SVC "    command: [a, [b]]\n" MEAS, SCONIFY_ERR_INVALID,
         "x.yml:5: services[0].command[1]: expected a string, found a list"},
        {HEAD SVC CMD MEAS "    environment: [a]\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0].environment: expected a mapping, found a list"},
        {HEAD SVC CMD MEAS "    environment:\n      \"A=B\": x\n", SCONIFY_ERR_INVALID,
         "x.yml:8: services[0].environment.A=B: invalid variable name"},
        {HEAD SVC CMD MEAS "    environment:\n      A: {b: c}\n", SCONIFY_ERR_INVALID,
         "x.yml:8: services[0].environment.A: expected a string, found a mapping"},
        {HEAD SVC CMD MEAS "    pwd: relative\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0].pwd: `relative' is not an absolute path"},
        {HEAD SVC CMD MEAS "    pwd: /a/../b\n", SCONIFY_ERR_INVALID, "x.yml:7: services[0].pwd: `/a/../b'"},
        {HEAD SVC CMD MEAS "    user: \"\"\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0].user: invalid user `'"},
        {HEAD SVC CMD MEAS "    user: \"a\\tb\"\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0].user: invalid user"},
        {HEAD SVC CMD MEAS "    user: \"a\\x7f\"\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0].user: invalid user"},
        {HEAD SVC CMD MEAS "    user: a:b:c\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0].user: invalid user `a:b:c'"},
        {HEAD SVC CMD MEAS "    user: \":0\"\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0].user: invalid user `:0'"},
        {HEAD SVC CMD MEAS "    user: \"0:\"\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0].user: invalid user `0:'"},
        {HEAD SVC CMD MEAS "    user: a b\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0].user: invalid user `a b'"},
        {HEAD SVC CMD MEAS "    user: [0]\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0].user: expected a string, found a list"},
        {HEAD SVC CMD MEAS "    fspf_path: /f\n", SCONIFY_ERR_INVALID,
         "x.yml:4: services[0]: fspf_path, fspf_key and fspf_tag go together"},
        {HEAD SVC CMD MEAS "    fspf_path: f\n    fspf_key: " K64 "\n    fspf_tag: " H64 "\n",
         SCONIFY_ERR_INVALID, "x.yml:7: services[0].fspf_path: `f' is not an absolute path"},
        {HEAD SVC CMD MEAS "    fspf_path: /f\n    fspf_key: abcd\n    fspf_tag: " H64 "\n",
         SCONIFY_ERR_INVALID, "x.yml:8: services[0].fspf_key: not 64 lowercase hex digits"},
        {HEAD SVC CMD MEAS "    fspf_path: /f\n    fspf_key: " K64 "\n    fspf_tag: abc\n",
         SCONIFY_ERR_INVALID, "x.yml:9: services[0].fspf_tag: not 32 or 64 lowercase hex digits"},
        {HEAD SVC CMD "    measurements: [xyz]\n", SCONIFY_ERR_INVALID,
         "x.yml:6: services[0].measurements[0]: not 64 lowercase hex digits"},
        {HEAD SVC CMD MEAS "    mrenclaves: [" K64 "0]\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0].mrenclaves[0]: not 64 lowercase hex digits"},
        {HEAD SVC CMD, SCONIFY_ERR_INVALID, "x.yml:4: services[0]: no accepted measurement"},
        {HEAD SVC CMD MEAS "    heap: 1G\n", SCONIFY_ERR_INVALID,
         "x.yml:7: services[0]: unknown field `heap'"},
        {HEAD "services: {}\n", SCONIFY_ERR_INVALID, "x.yml:3: services: expected a list, found a mapping"},
        {MINIMAL "  - name: app\n" CMD MEAS, SCONIFY_ERR_INVALID,
         "x.yml:7: services[1].name: duplicate service `app'"},
        {HEAD "secrets:\n  - name: s\n    kind: bogus\n    size: 8\n", SCONIFY_ERR_UNSUPPORTED,
         "x.yml:5: secrets[0].kind: unsupported kind `bogus'"},
        {HEAD "secrets:\n  - name: s\n    size: 8\n", SCONIFY_ERR_INVALID,
         "x.yml:4: secrets[0].kind: missing"},
        {HEAD "secrets:\n  - name: s\n    kind: ascii\n    size: 8\n    value: abc\n", SCONIFY_ERR_INVALID,
         "x.yml:4: secrets[0]: needs exactly one of `value' and `size'"},
        {HEAD "secrets:\n  - name: s\n    kind: ascii\n", SCONIFY_ERR_INVALID,
         "x.yml:4: secrets[0]: needs exactly one of `value' and `size'"},
        {HEAD "secrets:\n  - name: s\n    kind: ascii\n    size: 0\n", SCONIFY_ERR_INVALID,
         "x.yml:6: secrets[0].size: not a number from 1 to"},
        {HEAD "secrets:\n  - name: s\n    kind: ascii\n    size: \"8\"\n", SCONIFY_ERR_INVALID,
         "x.yml:6: secrets[0].size: not a number"},
        {HEAD "secrets:\n  - name: s\n    kind: hex\n    value: abc\n", SCONIFY_ERR_INVALID,
         "x.yml:6: secrets[0].value: not an even number of hex digits"},
        {HEAD "secrets:\n  - name: s\n    kind: binary\n    value: \"a b=\"\n", SCONIFY_ERR_INVALID,
         "x.yml:6: secrets[0].value: not base64"},
        {HEAD "secrets:\n  - name: s\n    kind: binary\n    value: QQ==\n  - name: s\n    kind: ascii\n    "
              "size: 1\n",
         SCONIFY_ERR_INVALID, "x.yml:7: secrets[1].name: duplicate secret `s'"},
        {HEAD "secrets:\n  - name: s\n    kind: ascii\n    size: 1\n    export: [x]\n", SCONIFY_ERR_INVALID,
         "x.yml:7: secrets[0]: unknown field `export'"},
        {HEAD "images:\n  - name: i\n    injection_files:\n      - path: etc/x\n        content: a\n",
         SCONIFY_ERR_INVALID, "x.yml:6: images[0].injection_files[0].path: `etc/x' is not an absolute path"},
        {HEAD "images:\n  - name: i\n    injection_files:\n      - path: /etc/../x\n        content: a\n",
         SCONIFY_ERR_INVALID, "x.yml:6: images[0].injection_files[0].path: `/etc/../x'"},
        {HEAD "images:\n  - name: i\n    injection_files:\n      - path: /etc/x/\n        content: a\n",
         SCONIFY_ERR_INVALID, "x.yml:6: images[0].injection_files[0].path: `/etc/x/'"},
        {HEAD "images:\n  - name: i\n    injection_files:\n      - path: /x\n", SCONIFY_ERR_INVALID,
         "x.yml:6: images[0].injection_files[0].content: missing"},
        {HEAD "images:\n  - name: i\n    injection_files:\n      - path: /x\n        content: a\n"
              "      - path: /x\n        content: b\n",
         SCONIFY_ERR_INVALID, "x.yml:8: images[0].injection_files[1].path: duplicate injection file `/x'"},
        {HEAD "images:\n  - name: i\n    volumes: []\n", SCONIFY_ERR_INVALID,
         "x.yml:5: images[0]: unknown field `volumes'"},
        {HEAD "security:\n  attestation:\n    mode: none\n", SCONIFY_ERR_UNSUPPORTED,
         "x.yml:5: security.attestation.mode: unsupported mode `none'"},
        {HEAD "security:\n  attestation:\n    tolerate: [everything]\n", SCONIFY_ERR_INVALID,
         "x.yml:5: security.attestation.tolerate[0]: unknown toleration `everything'"},
        {HEAD "security:\n  attestation:\n    ignore_advisories: \"*\"\n", SCONIFY_ERR_INVALID,
         "x.yml:5: security.attestation: unknown field `ignore_advisories'"},
        {HEAD SVC "    command: [run, \"$$SCONE::$$\"]\n" MEAS, SCONIFY_ERR_INVALID,
         "x.yml:5: services[0].command[1]: malformed secret reference"},
        {HEAD SVC "    command: [run, \"$$SCONE::s:utf16$$\"]\n" MEAS
                  "secrets:\n  - name: s\n    kind: ascii\n    size: 4\n",
         SCONIFY_ERR_INVALID, "x.yml:5: services[0].command[1]: malformed secret reference"},
        {HEAD SVC CMD MEAS "    environment:\n      A: x$$SCONE::nope$$y\n", SCONIFY_ERR_INVALID,
         "x.yml:8: services[0].environment.A: reference to unknown secret `nope'"},
        {HEAD SVC "    command: run $$SCONE::nope$$\n" MEAS, SCONIFY_ERR_INVALID,
         "x.yml:5: services[0].command: reference to unknown secret `nope'"},
        {HEAD "images:\n  - name: i\n    injection_files:\n      - path: /x\n        content: "
              "\"$$SCONE::nope:hex$$\"\n",
         SCONIFY_ERR_INVALID,
         "x.yml:7: images[0].injection_files[0].content: reference to unknown secret `nope'"},
        {"- a\n- b\n", SCONIFY_ERR_INVALID, "x.yml:1: expected a mapping, found a list"},
        {"", SCONIFY_ERR_INVALID, "x.yml:1: empty document"},
        {"# only a comment\n", SCONIFY_ERR_INVALID, "x.yml:1: empty document"},
        {"a: 1\n---\nb: 2\n", SCONIFY_ERR_INVALID, "x.yml:2: more than one YAML document"},
        {"name: s\nversion: [\n", SCONIFY_ERR_INVALID, "x.yml:3: not valid YAML"},
        {"name: s\n\tversion: 1\n", SCONIFY_ERR_INVALID, "x.yml:2: not valid YAML"},
        {"? [a]\n: b\n", SCONIFY_ERR_INVALID, "x.yml:1: mapping keys must be plain strings"},
};

START_TEST(bad_values_name_line_and_field)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;
	ck_assert_fails(parse_str(bad[_i].doc, &p, &err), err, bad[_i].kind, bad[_i].needle);
	ck_assert_ptr_null(p);
	/* validate lists the same problem */
	_cleanup_(strv_freep) char **problems = sc_policy_validate(bad[_i].doc, strlen(bad[_i].doc), "x.yml");
	bool found = false;
	for (char **e = problems; *e; e++)
		found |= strstr(*e, bad[_i].needle) != NULL;
	ck_assert_msg(found, "validate misses `%s' (first: %s)", bad[_i].needle,
	              problems[0] ? problems[0] : "none");
}
END_TEST

START_TEST(validate_collects_every_error_sorted_by_line)
{
	const char *doc = "name: \"a b\"\n"               /* 1 */
	                  "version: \"0.3\"\n"            /* 2 */
	                  "bogus: 1\n"                    /* 3 */
	                  "services:\n"                   /* 4 */
	                  "  - name: app\n"               /* 5 */
	                  "    command: [x]\n"            /* 6 */
	                  "    measurements: [no]\n"      /* 7 */
	                  "    pwd: rel\n"                /* 8 */
	                  "security:\n"                   /* 9 */
	                  "  attestation: {mode: tdx}\n"; /* 10 */
	_cleanup_(strv_freep) char **problems = sc_policy_validate(doc, strlen(doc), "v.yml");
	const char *want[] = {"v.yml:1: name: invalid session name", "v.yml:3: unknown field `bogus'",
	                      "v.yml:7: services[0].measurements[0]:", "v.yml:8: services[0].pwd:",
	                      "v.yml:10: security.attestation.mode: unsupported mode `tdx'"};
	size_t n = 0;
	while (problems[n])
		n++;
	ck_assert_int_eq(n, 5);
	for (size_t i = 0; i < 5; i++)
		ck_assert_msg(strstr(problems[i], want[i]), "%zu: `%s' lacks `%s'", i, problems[i], want[i]);
	/* parse reports the first and counts the rest */
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;
	ck_assert_fails(parse_str(doc, &p, &err), err, SCONIFY_ERR_INVALID, "(and 4 more problems)");
}
END_TEST

START_TEST(validate_of_valid_policy_is_empty)
{
	_cleanup_(strv_freep) char **problems = sc_policy_validate(MINIMAL, strlen(MINIMAL), "x.yml");
	ck_assert_ptr_null(problems[0]);
}
END_TEST

START_TEST(duplicate_keys_are_refused)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;
	ck_assert_fails(parse_str(MINIMAL "name: t\n", &p, &err), err, SCONIFY_ERR_INVALID,
	                "x.yml:7: duplicate key `name' (first on line 1)");
	sconify_error_free(&err);
	ck_assert_fails(parse_str(HEAD SVC CMD MEAS "    environment:\n      K: a\n      K: b\n", &p, &err),
	                err, SCONIFY_ERR_INVALID, "x.yml:9: duplicate key `K'");
	sconify_error_free(&err);
	/* the same key spelled two ways is still the same key */
	ck_assert_fails(parse_str("name: s\n\"name\": t\n", &p, &err), err, SCONIFY_ERR_INVALID,
	                "duplicate key");
}
END_TEST

START_TEST(anchors_and_aliases_are_refused)
{
	/* billion laughs */
	const char *doc = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	                  "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	                  "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n";
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;
	ck_assert_fails(parse_str(doc, &p, &err), err, SCONIFY_ERR_INVALID,
	                "x.yml:1: YAML anchors and aliases are not allowed");
	sconify_error_free(&err);
	ck_assert_fails(parse_str(HEAD "predecessor: *x\n", &p, &err), err, SCONIFY_ERR_INVALID,
	                "x.yml:3: YAML anchors and aliases are not allowed");
	sconify_error_free(&err);
	ck_assert_fails(parse_str(HEAD "x: &anchor\n  - 1\n", &p, &err), err, SCONIFY_ERR_INVALID,
	                "anchors and aliases are not allowed");
}
END_TEST

START_TEST(tags_are_refused)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;
	ck_assert_fails(parse_str("name: !!str s\nversion: \"0.3\"\n", &p, &err), err, SCONIFY_ERR_INVALID,
	                "x.yml:1: YAML tags are not allowed");
	sconify_error_free(&err);
	ck_assert_fails(parse_str(HEAD "services: !!seq []\n", &p, &err), err, SCONIFY_ERR_INVALID,
	                "x.yml:3: YAML tags are not allowed");
	sconify_error_free(&err);
	ck_assert_fails(parse_str("%TAG !e! tag:example.com,2000:\n---\nname: !e!x s\n", &p, &err), err,
	                SCONIFY_ERR_INVALID, "YAML tags are not allowed");
	sconify_error_free(&err);
	ck_assert_fails(parse_str("!python/object:os.system\nname: s\n", &p, &err), err, SCONIFY_ERR_INVALID,
	                "YAML tags are not allowed");
}
END_TEST

/* ---- secrets stay out of messages ---- */

#define SECRET "Sup3rSecretValue"
#define SECRET_HEX "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec"

static const char *const secret_docs[] = {
        HEAD "secrets:\n  - name: s\n    kind: ascii\n    value: \"" SECRET "\\x01\"\n",
        HEAD "secrets:\n  - name: s\n    kind: ascii\n    value: \"" SECRET "\\u00e9\"\n",
        HEAD "secrets:\n  - name: s\n    kind: hex\n    value: " SECRET "\n",
        HEAD "secrets:\n  - name: s\n    kind: binary\n    value: " SECRET "=\n",
        HEAD "secrets:\n  - name: s\n    kind: ascii\n    value: [" SECRET "]\n",
        HEAD "secrets:\n  - name: s\n    kind: ascii\n    value: " SECRET "\n    size: 3\n",
        HEAD "secrets:\n  - name: s\n    kind: aes\n    value: " SECRET "\n",
        HEAD "secrets:\n  - name: \"bad name\"\n    kind: ascii\n    value: " SECRET "\n",
        HEAD SVC CMD MEAS "    fspf_path: /f\n    fspf_key: " SECRET "\n    fspf_tag: " H64 "\n",
        HEAD SVC CMD MEAS "    fspf_path: /f\n    fspf_key: " SECRET_HEX "\n    fspf_tag: " H64 "\n",
        HEAD SVC CMD MEAS "    fspf_path: /f\n    fspf_key: " SECRET_HEX "00\n    fspf_tag: " H64 "\n",
        HEAD SVC CMD MEAS "    fspf_path: /f\n    fspf_key: \"" SECRET_HEX "\\0\"\n    fspf_tag: " H64 "\n",
        HEAD SVC CMD MEAS "    fspf_key: " SECRET_HEX "e\n",
        HEAD SVC CMD MEAS "    fspf_key: {" SECRET_HEX "e: 1}\n",
};

START_TEST(secret_values_never_appear_in_errors)
{
	const char *doc = secret_docs[_i];
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;
	ck_assert_int_lt(parse_str(doc, &p, &err), 0);
	ck_assert_msg(!strstr(sconify_error_message(err), "Sup3r"), "leaks: %s", sconify_error_message(err));
	ck_assert_msg(!strstr(sconify_error_message(err), "5ec7e75ec7"), "leaks: %s",
	              sconify_error_message(err));
	_cleanup_(strv_freep) char **problems = sc_policy_validate(doc, strlen(doc), "x.yml");
	ck_assert_ptr_nonnull(problems[0]);
	for (char **e = problems; *e; e++) {
		ck_assert_msg(!strstr(*e, "Sup3r") && !strstr(*e, "5ec7e75ec7"), "leaks: %s", *e);
		ck_assert_msg(strstr(*e, "x.yml:"), "no line: %s", *e);
	}
}
END_TEST

START_TEST(check_of_built_policy_never_shows_secrets)
{
	cleanup_policy sc_policy *p = sc_policy_new("s");
	sc_policy_service *s = sc_policy_add_service(p, "app");
	sc_policy_service_set_argv(s, (const char *const[]){"/bin/true", NULL});
	sc_policy_service_add_measurement(s, H64);
	sc_policy_add_secret(p, "pw", SC_POLICY_SECRET_ASCII, SECRET "\n", strlen(SECRET) + 1);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_fails(sc_policy_check(p, &err), err, SCONIFY_ERR_INVALID,
	                "secrets[0].value: not printable ASCII");
	ck_assert(!strstr(sconify_error_message(err), "Sup3r"));
}
END_TEST

/* ---- caps ---- */

START_TEST(caps_are_enforced)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = NULL;

	/* the document itself */
	size_t big = SC_POLICY_MAX_BYTES + 1;
	cleanup_free char *huge = xmalloc(big);
	memset(huge, '#', big);
	ck_assert_fails(sc_policy_parse(huge, big, "x.yml", &p, &err), err, SCONIFY_ERR_LIMIT,
	                "larger than the limit");
	sconify_error_free(&err);

	/* a service's user */
	{
		sc_buf u;
		sc_buf_init(&u, SIZE_MAX);
		sc_buf_puts(&u,
		            HEAD "services:\n  - {name: a, command: [x], measurements: [" H64 "], user: ");
		for (int i = 0; i <= SC_POLICY_MAX_USER; i++)
			sc_buf_puts(&u, "u");
		sc_buf_puts(&u, "}\n");
		ck_assert_fails(parse_str(u.data, &p, &err), err, SCONIFY_ERR_LIMIT,
		                "services[0].user: longer than 256 bytes");
		sconify_error_free(&err);
		sc_buf_free(&u);
	}

	/* services */
	sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, HEAD "services:\n");
	for (int i = 0; i <= SC_POLICY_MAX_SERVICES; i++)
		sc_buf_printf(&b, "  - {name: s%d, command: [x], measurements: [" H64 "]}\n", i);
	ck_assert_fails(parse_str(b.data, &p, &err), err, SCONIFY_ERR_LIMIT,
	                "x.yml:4: services: too many services");
	sc_buf_free(&b);
	sconify_error_free(&err);

	/* secrets */
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, HEAD "secrets:\n");
	for (int i = 0; i <= SC_POLICY_MAX_SECRETS; i++)
		sc_buf_printf(&b, "  - {name: s%d, kind: ascii, size: 8}\n", i);
	ck_assert_fails(parse_str(b.data, &p, &err), err, SCONIFY_ERR_LIMIT, "secrets: too many secrets");
	sc_buf_free(&b);
	sconify_error_free(&err);

	/* injection files across images */
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, HEAD "images:\n");
	for (int i = 0; i < 3; i++) {
		sc_buf_printf(&b, "  - name: i%d\n    injection_files:\n", i);
		for (int k = 0; k < SC_POLICY_MAX_FILES / 2; k++)
			sc_buf_printf(&b, "      - {path: /f%d, content: x}\n", k);
	}
	ck_assert_fails(parse_str(b.data, &p, &err), err, SCONIFY_ERR_LIMIT, "too many injection files");
	sc_buf_free(&b);
	sconify_error_free(&err);

	/* a name */
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, "version: \"0.3\"\nname: ");
	for (int i = 0; i <= SC_POLICY_MAX_NAME; i++)
		sc_buf_putc(&b, 'n');
	ck_assert_fails(parse_str(b.data, &p, &err), err, SCONIFY_ERR_LIMIT,
	                "x.yml:2: name: longer than 128 bytes");
	sc_buf_free(&b);
	sconify_error_free(&err);

	/* any string */
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, HEAD SVC CMD MEAS "    environment:\n      A: ");
	for (size_t i = 0; i <= SC_POLICY_MAX_STRING; i++)
		sc_buf_putc(&b, 'v');
	ck_assert_fails(parse_str(b.data, &p, &err), err, SCONIFY_ERR_LIMIT,
	                "x.yml:8: services[0].environment.A: longer than 65536 bytes");
	sc_buf_free(&b);
	sconify_error_free(&err);

	/* nesting */
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, "a: ");
	for (int i = 0; i < 100000; i++)
		sc_buf_putc(&b, '[');
	ck_assert_fails(parse_str(b.data, &p, &err), err, SCONIFY_ERR_LIMIT, "nested deeper than 16 levels");
	sc_buf_free(&b);
	sconify_error_free(&err);

	/* nodes */
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, "a: [");
	for (int i = 0; i <= SC_POLICY_MAX_NODES; i++)
		sc_buf_puts(&b, "1,");
	sc_buf_puts(&b, "1]\n");
	ck_assert_fails(parse_str(b.data, &p, &err), err, SCONIFY_ERR_LIMIT, "too many YAML nodes");
	sc_buf_free(&b);
	sconify_error_free(&err);

	/* keys of one mapping (duplicates are searched among them) */
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, HEAD SVC CMD MEAS "    environment:\n");
	for (int i = 0; i <= SC_POLICY_MAX_KEYS; i++)
		sc_buf_printf(&b, "      K%d: v\n", i);
	ck_assert_fails(parse_str(b.data, &p, &err), err, SCONIFY_ERR_LIMIT,
	                "x.yml:4104: too many keys in one mapping (more than 4096)");
	sc_buf_free(&b);
	sconify_error_free(&err);

	/* a secret */
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_printf(&b, HEAD "secrets:\n  - {name: s, kind: ascii, size: %u}\n",
	              SC_POLICY_MAX_SECRET_BYTES + 1);
	ck_assert_fails(parse_str(b.data, &p, &err), err, SCONIFY_ERR_INVALID,
	                "secrets[0].size: not a number from 1 to 65536");
	sc_buf_free(&b);
}
END_TEST

START_TEST(validate_stops_listing_after_the_cap)
{
	sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	sc_buf_puts(&b, HEAD);
	for (int i = 0; i < 2 * SC_POLICY_MAX_ERRORS; i++)
		sc_buf_printf(&b, "bogus%d: 1\n", i);
	_cleanup_(strv_freep) char **problems = sc_policy_validate(b.data, b.len, "x.yml");
	sc_buf_free(&b);
	size_t n = 0;
	while (problems[n])
		n++;
	ck_assert_int_eq(n, SC_POLICY_MAX_ERRORS + 1);
	ck_assert(strstr(problems[n - 1], "x.yml: 100 more problems not shown"));
}
END_TEST

/* ---- emitting ---- */

static const uint8_t fspf_key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* A policy using every field and the awkward strings a YAML writer can get
 * wrong. */
static sc_policy *full_policy(bool reverse_env)
{
	sc_policy *p = sc_policy_new("ns/app");
	p->predecessor = xstrdup(H64);
	sc_strv_free(p->create_sessions);
	p->create_sessions = xcalloc(3, sizeof(char *));
	p->create_sessions[0] = xstrdup("ANY");
	p->create_sessions[1] = xstrdup(K64);
	p->n_create_sessions = 2;
	p->mode = SC_POLICY_MODE_SIM;
	sc_strv_free(p->tolerate);
	p->tolerate = xcalloc(3, sizeof(char *));
	p->tolerate[0] = xstrdup("debug-mode");
	p->tolerate[1] = xstrdup("outdated-tcb");
	p->n_tolerate = 2;

	sc_policy_image *img = sc_policy_add_image(p, "img");
	const char content[] = "line 1\n  indented \n\ttab\n\xc3\xa9t\xc3\xa9 $$SCONE::pw$$\n\0nul\n\n";
	sc_policy_image_add_file(img, "/etc/app.conf", content, sizeof(content) - 1);
	sc_policy_image_add_file(img, "/empty", "", 0);
	sc_policy_image_add_file(img, "/no-newline", " lead and trail ", 16);
	sc_policy_add_image(p, "bare");

	sc_policy_service *s = sc_policy_add_service(p, "app");
	s->image_name = xstrdup("img");
	sc_policy_service_set_argv(s, (const char *const[]){"/usr/bin/env", "two words", "", "- dash",
	                                                    "#hash", "key: value", "null", "true", "0.3",
	                                                    "'q'", "\"dq\"", "$$SCONE::pw$$", NULL});
	const char *keys[] = {"PATH", "EMPTY", "NULLISH", "NUM", "UNI", "REF", "SPACE"};
	const char *vals[] = {"/usr/bin:/bin",          "",   "~", "08", "\xe2\x9c\x93",
	                      "x$$SCONE::bin:base64$$", " x "};
	for (size_t i = 0; i < 7; i++) {
		size_t k = reverse_env ? 6 - i : i;
		sc_policy_service_setenv(s, keys[k], vals[k]);
	}
	s->pwd = xstrdup("/srv/app");
	s->user = xstrdup("1000:1000");
	uint8_t tag[16];
	memset(tag, 0xab, sizeof(tag));
	sc_policy_service_set_fspf(s, "/.sconify/fspf", fspf_key, tag, sizeof(tag));
	sc_policy_service_add_measurement(s, H64);
	sc_policy_service_add_measurement(s, K64);
	sc_policy_service *s2 = sc_policy_add_service(p, "worker");
	sc_policy_service_set_argv(s2, (const char *const[]){"w", NULL});
	s2->mrenclaves = xreallocarray(s2->mrenclaves, 2, sizeof(char *));
	s2->mrenclaves[0] = xstrdup(K64);
	s2->mrenclaves[1] = NULL;
	s2->n_mrenclaves = 1;

	sc_policy_add_secret(p, "pw", SC_POLICY_SECRET_ASCII, "p@ss: word #1", 13);
	uint8_t all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	sc_policy_add_secret(p, "bin", SC_POLICY_SECRET_BINARY, all, sizeof(all));
	sc_policy_add_secret(p, "hx", SC_POLICY_SECRET_HEX, "\x00\xff", 2);
	sc_policy_add_secret(p, "gen", SC_POLICY_SECRET_BINARY, NULL, 32);
	return p;
}

START_TEST(round_trip_parse_of_emit_equals_policy)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = full_policy(false);
	ck_assert_ok(sc_policy_check(p, &err), err);
	cleanup_free char *t1 = NULL, *t2 = NULL;
	size_t n1 = 0, n2 = 0;
	ck_assert_ok(sc_policy_emit(p, &t1, &n1, &err), err);
	cleanup_policy sc_policy *q = NULL;
	ck_assert_ok(sc_policy_parse(t1, n1, "emitted", &q, &err), err);
	ck_assert(sc_policy_equal(p, q));
	ck_assert_ok(sc_policy_emit(q, &t2, &n2, &err), err);
	ck_assert_int_eq(n1, n2);
	ck_assert(memcmp(t1, t2, n1) == 0);
	/* spot checks of the model after the trip */
	const sc_policy_service *s = sc_policy_find_service(q, "app");
	ck_assert_str_eq(s->argv[1], "two words");
	ck_assert_str_eq(s->argv[2], "");
	ck_assert_str_eq(s->argv[8], "0.3");
	ck_assert_int_eq(q->images[0].files[0].len, p->images[0].files[0].len);
	ck_assert_int_eq(q->secrets[1].len, 256);
	ck_assert(q->secrets[3].generated);
	ck_assert_int_eq(q->secrets[3].size, 32);
	ck_assert(memcmp(q->services[0].fspf_key, fspf_key, 32) == 0);
	ck_assert_str_eq(s->user, "1000:1000");
	ck_assert_ptr_null(q->services[1].user);
	/* emitted right after pwd */
	const char *nl = strstr(t1, "pwd: /srv/app\n");
	ck_assert_ptr_nonnull(nl);
	nl += strlen("pwd: /srv/app\n");
	nl += strspn(nl, " ");
	ck_assert(strncmp(nl, "user: ", 6) == 0);
	/* anything changed is no longer equal */
	free(q->services[0].user);
	q->services[0].user = xstrdup("1000");
	ck_assert(!sc_policy_equal(p, q));
	free(q->services[0].user);
	q->services[0].user = NULL;
	ck_assert(!sc_policy_equal(p, q));
	q->services[0].user = xstrdup("1000:1000");
	ck_assert(sc_policy_equal(p, q));
	q->services[0].fspf_key[31] ^= 1;
	ck_assert(!sc_policy_equal(p, q));
}
END_TEST

START_TEST(emit_is_deterministic_and_sorts_environment)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *a = full_policy(false), *b = full_policy(true);
	cleanup_free char *ta = NULL, *ta2 = NULL, *tb = NULL;
	size_t na = 0, na2 = 0, nb = 0;
	ck_assert_ok(sc_policy_emit(a, &ta, &na, &err), err);
	ck_assert_ok(sc_policy_emit(a, &ta2, &na2, &err), err);
	ck_assert_ok(sc_policy_emit(b, &tb, &nb, &err), err);
	ck_assert(na == na2 && memcmp(ta, ta2, na) == 0);
	ck_assert(na == nb && memcmp(ta, tb, na) == 0);
	/* sorted by key, bytewise */
	const char *order[] = {"EMPTY:", "NULLISH:", "NUM:", "PATH:", "REF:", "SPACE:", "UNI:"};
	const char *prev = strstr(ta, "environment:");
	ck_assert_ptr_nonnull(prev);
	for (size_t i = 0; i < 7; i++) {
		const char *at = strstr(prev, order[i]);
		ck_assert_msg(at != NULL, "%s missing or out of order", order[i]);
		prev = at;
	}
	/* a hand-filled, unsorted array is emitted sorted too */
	sc_policy_service *s = &b->services[0];
	sc_policy_env t = s->env[0];
	s->env[0] = s->env[s->n_env - 1];
	s->env[s->n_env - 1] = t;
	cleanup_free char *tc = NULL;
	size_t nc = 0;
	ck_assert_ok(sc_policy_emit(b, &tc, &nc, &err), err);
	ck_assert(na == nc && memcmp(ta, tc, na) == 0);
}
END_TEST

START_TEST(emit_quotes_what_yaml_would_misread)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = full_policy(false);
	cleanup_free char *t = NULL;
	size_t n = 0;
	ck_assert_ok(sc_policy_emit(p, &t, &n, &err), err);
	ck_assert(strstr(t, "version: \"0.3\"\n"));
	ck_assert(strstr(t, "- \"null\"\n"));
	ck_assert(strstr(t, "- \"true\"\n"));
	ck_assert(strstr(t, "name: ns/app\n"));
	ck_assert(strstr(t, "mode: sim\n"));
	ck_assert(strstr(t, "size: 32\n"));
	ck_assert(!strstr(t, "predecessor: " H64)); /* starts with a digit: quoted */
}
END_TEST

START_TEST(emit_refuses_what_yaml_cannot_carry)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = sc_policy_new("s");
	sc_policy_image *img = sc_policy_add_image(p, "i");
	sc_policy_image_add_file(img, "/bin", "\xff\xfe", 2);
	cleanup_free char *t = NULL;
	size_t n = 0;
	ck_assert_fails(sc_policy_emit(p, &t, &n, &err), err, SCONIFY_ERR_INVALID,
	                "images.injection_files.content: not UTF-8 text");
}
END_TEST

START_TEST(check_refuses_bad_built_policy)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = sc_policy_new("bad name");
	ck_assert_fails(sc_policy_check(p, &err), err, SCONIFY_ERR_INVALID, "name: invalid session name");
	sconify_error_free(&err);
	free(p->name);
	p->name = xstrdup("ok");
	sc_policy_service *s = sc_policy_add_service(p, "app");
	sc_policy_service_add_measurement(s, H64);
	ck_assert_fails(sc_policy_check(p, &err), err, SCONIFY_ERR_INVALID,
	                "services[0].command: empty command");
	sconify_error_free(&err);
	sc_policy_service_set_argv(s, (const char *const[]){"$$SCONE::missing$$", NULL});
	ck_assert_fails(sc_policy_check(p, &err), err, SCONIFY_ERR_INVALID,
	                "reference to unknown secret `missing'");
}
END_TEST

/* ---- hash ---- */

START_TEST(hash_is_sha256_of_emitted_text)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = full_policy(false), *q = full_policy(true);
	char h1[SC_POLICY_HASH_HEX + 1], h2[SC_POLICY_HASH_HEX + 1];
	ck_assert_ok(sc_policy_hash(p, h1, &err), err);
	ck_assert_ok(sc_policy_hash(q, h2, &err), err);
	ck_assert_str_eq(h1, h2);
	cleanup_free char *t = NULL;
	size_t n = 0;
	ck_assert_ok(sc_policy_emit(p, &t, &n, &err), err);
	sc_digest d;
	sc_digest_of(SC_SHA256, t, n, &d);
	ck_assert_str_eq(h1, sc_digest_hex(&d));
	/* a generated secret's value is not part of the document */
	sc_policy_secret_set_value(&q->secrets[3], "0123456789abcdef0123456789abcdef", 32);
	ck_assert_ok(sc_policy_hash(q, h2, &err), err);
	ck_assert_str_eq(h1, h2);
	/* but every field is */
	q->services[1].argv[0][0] = 'W';
	ck_assert_ok(sc_policy_hash(q, h2, &err), err);
	ck_assert_str_ne(h1, h2);
}
END_TEST

/* ---- secret references ---- */

START_TEST(expand_replaces_references_with_values)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = full_policy(false);
	const char *in =
	        "a=$$SCONE::pw$$ b=$$SCONE::hx$$ c=$$SCONE::hx:base64$$ d=$$SCONE::pw:hex$$ $$ $$SCONE";
	char *out = NULL;
	size_t n = 0;
	ck_assert_ok(sc_policy_expand(p, in, strlen(in), false, &out, &n, &err), err);
	ck_assert_str_eq(out, "a=p@ss: word #1 b=00ff c=AP8= d=704073733a20776f7264202331 $$ $$SCONE");
	ck_assert_int_eq(n, strlen(out));
	sc_policy_wipe_free(out);
	/* raw binary holding a NUL: only where NUL may go */
	const char *bin = "$$SCONE::bin$$";
	ck_assert_fails(sc_policy_expand(p, bin, strlen(bin), false, &out, &n, &err), err,
	                SCONIFY_ERR_INVALID, "NUL byte");
	sconify_error_free(&err);
	ck_assert_ok(sc_policy_expand(p, bin, strlen(bin), true, &out, &n, &err), err);
	ck_assert_int_eq(n, 256);
	ck_assert_int_eq((unsigned char)out[255], 255);
	sc_policy_wipe(out, n);
	free(out);
	/* a generated secret without its value yet */
	const char *gen = "$$SCONE::gen:hex$$";
	ck_assert_fails(sc_policy_expand(p, gen, strlen(gen), false, &out, &n, &err), err,
	                SCONIFY_ERR_INVALID, "secret `gen' has no value yet");
	sconify_error_free(&err);
	sc_policy_secret_set_value(&p->secrets[3], "\x01\x02", 2);
	ck_assert_ok(sc_policy_expand(p, gen, strlen(gen), false, &out, &n, &err), err);
	ck_assert_str_eq(out, "0102");
	sc_policy_wipe_free(out);
	const char *unknown = "x$$SCONE::nope$$";
	ck_assert_fails(sc_policy_expand(p, unknown, strlen(unknown), false, &out, &n, &err), err,
	                SCONIFY_ERR_INVALID, "reference to unknown secret `nope'");
}
END_TEST

START_TEST(resolve_gives_expanded_service_configuration)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_policy sc_policy *p = full_policy(false);
	cleanup_policy_config sc_policy_config *c = NULL;
	ck_assert_ok(sc_policy_resolve(p, "app", &c, &err), err);
	ck_assert_str_eq(c->argv[0], "/usr/bin/env");
	ck_assert_str_eq(c->argv[11], "p@ss: word #1");
	ck_assert_ptr_null(c->argv[12]);
	ck_assert_str_eq(c->env[0], "EMPTY=");
	ck_assert(strncmp(c->env[4], "REF=xAAECAwQF", 13) == 0);
	ck_assert_str_eq(c->pwd, "/srv/app");
	ck_assert_str_eq(c->user, "1000:1000");
	ck_assert_int_eq(c->n_files, 3);
	ck_assert(memmem(c->files[0].content, c->files[0].len, "p@ss: word #1\n\0nul", 18) != NULL);
	ck_assert_str_eq(c->fspf_path, "/.sconify/fspf");
	ck_assert(memcmp(c->fspf_key, fspf_key, 32) == 0);
	ck_assert_int_eq(c->fspf_tag_len, 16);
	cleanup_policy_config sc_policy_config *w = NULL;
	ck_assert_ok(sc_policy_resolve(p, "worker", &w, &err), err);
	ck_assert_ptr_null(w->user);
	cleanup_policy_config sc_policy_config *none = NULL;
	ck_assert_fails(sc_policy_resolve(p, "nope", &none, &err), err, SCONIFY_ERR_NOT_FOUND,
	                "service `nope' not found");
}
END_TEST

START_TEST(split_command_has_no_quoting)
{
	size_t n = 0;
	char **v = sc_policy_split_command(" a \"b c\"\t d\\ e ", &n);
	ck_assert_int_eq(n, 5);
	ck_assert_str_eq(v[0], "a");
	ck_assert_str_eq(v[1], "\"b");
	ck_assert_str_eq(v[2], "c\"");
	ck_assert_str_eq(v[3], "d\\");
	ck_assert_str_eq(v[4], "e");
	ck_assert_ptr_null(v[5]);
	sc_strv_free(v);
	v = sc_policy_split_command("   ", &n);
	ck_assert_int_eq(n, 0);
	ck_assert_ptr_null(v[0]);
	sc_strv_free(v);
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, parse_accepts_minimal_policy_with_defaults);
	tcase_add_loop_test(tc, examples_validate_and_round_trip, 0, sizeof(examples) / sizeof(examples[0]));
	tcase_add_test(tc, command_string_is_split_on_spaces_and_list_kept_exact);
	tcase_add_test(tc, scalars_are_strings_without_type_conversion);
	tcase_add_test(tc, session_names_take_namespaces);
	tcase_add_loop_test(tc, bad_values_name_line_and_field, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, validate_collects_every_error_sorted_by_line);
	tcase_add_test(tc, validate_of_valid_policy_is_empty);
	tcase_add_test(tc, duplicate_keys_are_refused);
	tcase_add_test(tc, anchors_and_aliases_are_refused);
	tcase_add_test(tc, tags_are_refused);
	tcase_add_loop_test(tc, secret_values_never_appear_in_errors, 0,
	                    sizeof(secret_docs) / sizeof(secret_docs[0]));
	tcase_add_test(tc, check_of_built_policy_never_shows_secrets);
	tcase_add_test(tc, caps_are_enforced);
	tcase_add_test(tc, validate_stops_listing_after_the_cap);
	suite_add_tcase(s, tc);

	tc = tcase_create("emit");
	tcase_add_test(tc, round_trip_parse_of_emit_equals_policy);
	tcase_add_test(tc, emit_is_deterministic_and_sorts_environment);
	tcase_add_test(tc, emit_quotes_what_yaml_would_misread);
	tcase_add_test(tc, emit_refuses_what_yaml_cannot_carry);
	tcase_add_test(tc, check_refuses_bad_built_policy);
	tcase_add_test(tc, hash_is_sha256_of_emitted_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("secrets");
	tcase_add_test(tc, expand_replaces_references_with_values);
	tcase_add_test(tc, resolve_gives_expanded_service_configuration);
	tcase_add_test(tc, split_command_has_no_quoting);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(policy_suite());
}
