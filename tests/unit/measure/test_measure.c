/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/xalloc.h"
#include "measure/measure.h"
#include "support.h"

/* ---- a base input set and its variations ---- */

typedef struct {
	uint8_t runtime[32];
	const char *exe_path;
	const char *exe_content;
	bool no_pin;
	uint8_t pin[32];
	const char *argv[8];
	const char *env[8];
	const char *cwd;
	struct {
		sc_measure_region_kind kind;
		const char *path;
	} regions[8];
} inputs;

static inputs base_inputs(void)
{
	inputs in = {
	        .exe_path = "/usr/bin/python3.11",
	        .exe_content = "print('hi')\n",
	        .argv = {"python3", "/app/main.py"},
	        .env = {"PATH=/usr/bin:/bin", "HOME=/root"},
	        .cwd = "/app",
	        .regions = {{SC_MEASURE_REGION_ENCRYPTED, "/app/secrets"},
	                    {SC_MEASURE_REGION_NOT_PROTECTED, "/"},
	                    {SC_MEASURE_REGION_AUTHENTICATED, "/usr/lib/python3.11"}},
	};
	memset(in.runtime, 0x11, 32);
	memset(in.pin, 0x22, 32);
	return in;
}

static sc_measure *build(const inputs *in)
{
	cleanup_error sconify_error_t err = NULL;
	sc_measure *m = sc_measure_new();
	sc_measure_set_runtime(m, in->runtime);
	ck_assert_ok(sc_measure_set_exe_path(m, in->exe_path, &err), err);
	/* Streamed in two pieces: the value must not depend on the split. */
	size_t n = strlen(in->exe_content);
	sc_measure_exe_update(m, in->exe_content, n / 2);
	sc_measure_exe_update(m, in->exe_content + n / 2, n - n / 2);
	sc_measure_set_pin(m, in->no_pin ? NULL : in->pin);
	for (size_t i = 0; in->argv[i]; i++)
		ck_assert_ok(sc_measure_add_arg(m, in->argv[i], &err), err);
	for (size_t i = 0; in->env[i]; i++)
		ck_assert_ok(sc_measure_add_env(m, in->env[i], &err), err);
	ck_assert_ok(sc_measure_set_cwd(m, in->cwd, &err), err);
	for (size_t i = 0; in->regions[i].path; i++)
		ck_assert_ok(sc_measure_add_region(m, in->regions[i].kind, in->regions[i].path, &err), err);
	return m;
}

static void measure_hex(const inputs *in, char out[SC_MEASURE_HEX + 1])
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_measure sc_measure *m = build(in);
	uint8_t v[SC_MEASURE_BYTES];
	ck_assert_ok(sc_measure_finish(m, v, &err), err);
	sc_measure_hex(v, out);
}

/* ---- known answer ---- */

/* The base set's value, computed independently with Python's hashlib and
 * struct from docs/measurement.md:
 *   s = lambda b: struct.pack('>I', len(b)) + b
 *   enc = s(b"sconify-measurement-v1") + b"\x11"*32 + s(b"/usr/bin/python3.11")
 *       + sha256(b"print('hi')\n") + b"\x22"*32
 *       + be32(2) + s(b"python3") + s(b"/app/main.py")
 *       + be32(2) + s(b"HOME=/root") + s(b"PATH=/usr/bin:/bin") + s(b"/app")
 *       + be32(3) + b"\0" + s(b"/") + b"\1" + s(b"/app/secrets") + b"\2" + s(b"/usr/lib/python3.11")
 */
#define BASE_MEASUREMENT "2998da2ecef3687bd8095bc012e6cc3245a4a3a5683426068f9a57eaca7c2d12"

static void put32(sc_buf *b, uint32_t v)
{
	char x[4] = {(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};
	sc_buf_append(b, x, 4, "test", NULL);
}

static void putstr(sc_buf *b, const char *s)
{
	put32(b, (uint32_t)strlen(s));
	sc_buf_puts(b, s);
}

static void putfill(sc_buf *b, int c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sc_buf_putc(b, (char)c);
}

START_TEST(known_answer_matches_independent_computation)
{
	inputs in = base_inputs();
	char hex[SC_MEASURE_HEX + 1];
	measure_hex(&in, hex);
	ck_assert_str_eq(hex, BASE_MEASUREMENT);
}
END_TEST

START_TEST(encoding_matches_the_documented_bytes)
{
	cleanup_error sconify_error_t err = NULL;
	/* The encoding written out by hand, field by field, as the doc states it. */
	cleanup_buf sc_buf want;
	sc_buf_init(&want, SIZE_MAX);
	putstr(&want, "sconify-measurement-v1");
	putfill(&want, 0x11, 32);
	putstr(&want, "/usr/bin/python3.11");
	uint8_t exe[32];
	unsigned int n = 0;
	ck_assert_int_eq(EVP_Digest("print('hi')\n", 12, exe, &n, EVP_sha256(), NULL), 1);
	sc_buf_append(&want, exe, 32, "test", NULL);
	putfill(&want, 0x22, 32);
	put32(&want, 2);
	putstr(&want, "python3");
	putstr(&want, "/app/main.py");
	put32(&want, 2);
	putstr(&want, "HOME=/root");
	putstr(&want, "PATH=/usr/bin:/bin");
	putstr(&want, "/app");
	put32(&want, 3);
	sc_buf_putc(&want, 0);
	putstr(&want, "/");
	sc_buf_putc(&want, 1);
	putstr(&want, "/app/secrets");
	sc_buf_putc(&want, 2);
	putstr(&want, "/usr/lib/python3.11");
	ck_assert_uint_eq(want.len, 275);

	inputs in = base_inputs();
	cleanup_measure sc_measure *m = build(&in);
	cleanup_free uint8_t *got = NULL;
	size_t got_len = 0;
	ck_assert_ok(sc_measure_encode(m, &got, &got_len, &err), err);
	ck_assert_uint_eq(got_len, want.len);
	ck_assert(memcmp(got, want.data, want.len) == 0);

	/* and the measurement is SHA-256 of exactly these bytes */
	uint8_t v[32];
	char hex[SC_MEASURE_HEX + 1];
	ck_assert_int_eq(EVP_Digest(want.data, want.len, v, &n, EVP_sha256(), NULL), 1);
	sc_measure_hex(v, hex);
	ck_assert_str_eq(hex, BASE_MEASUREMENT);
}
END_TEST

/* ---- every input counts ---- */

static void vary(int i, inputs *in)
{
	switch (i) {
	case 0:
		in->runtime[31] ^= 1;
		break;
	case 1:
		in->exe_path = "/usr/bin/python3";
		break;
	case 2:
		in->exe_content = "print('hi')\r";
		break;
	case 3:
		in->pin[0] ^= 0x80;
		break;
	case 4:
		in->no_pin = true;
		break;
	case 5:
		in->argv[0] = "python";
		break;
	case 6:
		in->argv[1] = "/app/main.pyc";
		break;
	case 7:
		in->argv[2] = "-v";
		break;
	case 8:
		in->argv[2] = "";
		break; /* an empty argument is an argument */
	case 9:
		in->argv[1] = NULL;
		break;
	case 10:
		in->env[0] = "PATH=/usr/bin";
		break;
	case 11:
		in->env[2] = "LANG=C";
		break;
	case 12:
		in->env[2] = "EMPTY=";
		break;
	case 13:
		in->env[1] = NULL;
		break;
	case 14:
		in->cwd = "/";
		break;
	case 15:
		in->cwd = "/app/x";
		break;
	case 16:
		in->regions[0].kind = SC_MEASURE_REGION_AUTHENTICATED;
		break;
	case 17:
		in->regions[1].kind = SC_MEASURE_REGION_ENCRYPTED;
		break;
	case 18:
		in->regions[0].path = "/app/secret";
		break;
	case 19:
		in->regions[2].path = NULL;
		break;
	case 20:
		in->regions[0].path = NULL;
		break; /* no regions but `/' */
	default:
		ck_abort_msg("no variation %d", i);
	}
}
#define N_VARIATIONS 21

START_TEST(each_input_changes_the_value)
{
	inputs a = base_inputs(), b = base_inputs();
	vary(_i, &b);
	char ha[SC_MEASURE_HEX + 1], hb[SC_MEASURE_HEX + 1];
	measure_hex(&a, ha);
	measure_hex(&b, hb);
	ck_assert_msg(strcmp(ha, hb) != 0, "variation %d did not change the measurement", _i);
}
END_TEST

START_TEST(all_variations_differ_from_each_other)
{
	char hex[N_VARIATIONS][SC_MEASURE_HEX + 1];
	for (int i = 0; i < N_VARIATIONS; i++) {
		inputs in = base_inputs();
		vary(i, &in);
		measure_hex(&in, hex[i]);
		for (int j = 0; j < i; j++)
			ck_assert_msg(strcmp(hex[i], hex[j]) != 0, "variations %d and %d collide", i, j);
	}
}
END_TEST

static const char *splits[][5] = {
        {"sh", "-c", "a b", NULL}, {"sh", "-c", "a", "b", NULL},  {"sh", "-ca b", NULL},
        {"sh-c", "a b", NULL},     {"sh", "-c", "a b", "", NULL}, {"sh", "", "-c", "a b", NULL},
};

START_TEST(argv_split_differently_gives_another_value)
{
	size_t n = sizeof(splits) / sizeof(splits[0]);
	char hex[sizeof(splits) / sizeof(splits[0])][SC_MEASURE_HEX + 1];
	for (size_t i = 0; i < n; i++) {
		inputs in = base_inputs();
		memset(in.argv, 0, sizeof(in.argv));
		memcpy(in.argv, splits[i], sizeof(splits[i]));
		measure_hex(&in, hex[i]);
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(strcmp(hex[i], hex[j]) != 0, "argv splits %zu and %zu collide", i, j);
	}
}
END_TEST

START_TEST(env_order_does_not_matter)
{
	inputs a = base_inputs(), b = base_inputs();
	a.env[2] = "LANG=C";
	b.env[0] = "LANG=C";
	b.env[1] = "HOME=/root";
	b.env[2] = "PATH=/usr/bin:/bin";
	char ha[SC_MEASURE_HEX + 1], hb[SC_MEASURE_HEX + 1];
	measure_hex(&a, ha);
	measure_hex(&b, hb);
	ck_assert_str_eq(ha, hb);
}
END_TEST

START_TEST(region_order_does_not_matter)
{
	inputs a = base_inputs(), b = base_inputs();
	b.regions[0] = a.regions[2];
	b.regions[2] = a.regions[0];
	char ha[SC_MEASURE_HEX + 1], hb[SC_MEASURE_HEX + 1];
	measure_hex(&a, ha);
	measure_hex(&b, hb);
	ck_assert_str_eq(ha, hb);
}
END_TEST

/* ---- the executable's content ---- */

START_TEST(exe_content_streamed_written_or_given_agree)
{
	cleanup_error sconify_error_t err = NULL;
	inputs in = base_inputs();
	char want[SC_MEASURE_HEX + 1];
	measure_hex(&in, want);
	const char *content = in.exe_content;
	size_t n = strlen(content);

	/* one byte at a time, after build() streamed an empty start */
	inputs e = in;
	e.exe_content = "";
	cleanup_measure sc_measure *m1 = build(&e);
	uint8_t v[32];
	char hex[SC_MEASURE_HEX + 1];
	for (size_t i = 0; i < n; i++)
		sc_measure_exe_update(m1, content + i, 1);
	ck_assert_ok(sc_measure_finish(m1, v, &err), err);
	sc_measure_hex(v, hex);
	ck_assert_str_eq(hex, want);

	/* through the writer, passing the bytes on */
	cleanup_measure sc_measure *m2 = build(&e);
	cleanup_writer sc_writer *next = sc_null_writer_new();
	cleanup_writer sc_writer *w = sc_measure_exe_writer_new(m2, next);
	cleanup_reader sc_reader *r = sc_mem_reader_new(content, n);
	uint64_t pumped = 0;
	ck_assert_ok(sc_stream_pump(r, w, &pumped, &err), err);
	ck_assert_uint_eq(pumped, n);
	ck_assert_ok(sc_measure_finish(m2, v, &err), err);
	sc_measure_hex(v, hex);
	ck_assert_str_eq(hex, want);

	/* as a known hash: a fresh builder that never streams */
	cleanup_measure sc_measure *m3 = sc_measure_new();
	uint8_t exe[32];
	unsigned int dn = 0;
	ck_assert_int_eq(EVP_Digest(content, n, exe, &dn, EVP_sha256(), NULL), 1);
	sc_measure_set_runtime(m3, in.runtime);
	ck_assert_ok(sc_measure_set_exe_path(m3, in.exe_path, &err), err);
	sc_measure_set_exe_sha256(m3, exe);
	sc_measure_set_pin(m3, in.pin);
	for (size_t i = 0; in.argv[i]; i++)
		ck_assert_ok(sc_measure_add_arg(m3, in.argv[i], &err), err);
	for (size_t i = 0; in.env[i]; i++)
		ck_assert_ok(sc_measure_add_env(m3, in.env[i], &err), err);
	ck_assert_ok(sc_measure_set_cwd(m3, in.cwd, &err), err);
	for (size_t i = 0; in.regions[i].path; i++)
		ck_assert_ok(sc_measure_add_region(m3, in.regions[i].kind, in.regions[i].path, &err), err);
	ck_assert_ok(sc_measure_finish(m3, v, &err), err);
	sc_measure_hex(v, hex);
	ck_assert_str_eq(hex, want);
}
END_TEST

START_TEST(exe_content_streamed_and_given_is_refused)
{
	cleanup_error sconify_error_t err = NULL;
	inputs in = base_inputs();
	cleanup_measure sc_measure *m = build(&in);
	uint8_t h[32] = {0}, v[32];
	sc_measure_set_exe_sha256(m, h);
	ck_assert_fails(sc_measure_finish(m, v, &err), err, SCONIFY_ERR_USAGE, "both streamed and given");
}
END_TEST

/* ---- refusals ---- */

START_TEST(env_duplicates_are_refused)
{
	static const char *dups[][3] = {
	        {"A=1", "A=2", NULL},
	        {"A=1", "A=1", NULL},
	        {"A=", "A-B=x", "A=y"}, /* with a longer name beside them */
	};
	for (size_t i = 0; i < sizeof(dups) / sizeof(dups[0]); i++) {
		cleanup_error sconify_error_t err = NULL;
		inputs in = base_inputs();
		for (size_t j = 0; j < 3; j++)
			in.env[2 + j] = dups[i][j];
		cleanup_measure sc_measure *m = build(&in);
		uint8_t v[32];
		ck_assert_fails(sc_measure_finish(m, v, &err), err, SCONIFY_ERR_INVALID,
		                "duplicate environment variable `A'");
	}
	/* names that only share a prefix are not duplicates */
	inputs in = base_inputs();
	in.env[2] = "A=1";
	in.env[3] = "AB=1";
	in.env[4] = "A_=1";
	char hex[SC_MEASURE_HEX + 1];
	measure_hex(&in, hex);
}
END_TEST

START_TEST(env_entries_without_a_name_are_refused)
{
	static const char *bad[] = {"NOEQUALS", "=value", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cleanup_error sconify_error_t err = NULL;
		cleanup_measure sc_measure *m = sc_measure_new();
		ck_assert_fails(sc_measure_add_env(m, bad[i], &err), err, SCONIFY_ERR_INVALID,
		                "is not NAME=value");
	}
}
END_TEST

START_TEST(duplicate_regions_are_refused)
{
	cleanup_error sconify_error_t err = NULL;
	inputs in = base_inputs();
	in.regions[3].kind = SC_MEASURE_REGION_AUTHENTICATED;
	in.regions[3].path = "/app/secrets";
	cleanup_measure sc_measure *m = build(&in);
	uint8_t v[32];
	ck_assert_fails(sc_measure_finish(m, v, &err), err, SCONIFY_ERR_INVALID,
	                "duplicate region `/app/secrets'");
}
END_TEST

static const struct {
	int field; /* 0 exe path, 1 cwd, 2 region */
	const char *path;
	sconify_error_kind_t kind;
	const char *needle;
} bad_paths[] = {
        {0, "usr/bin/x", SCONIFY_ERR_INVALID, "executable path `usr/bin/x' is not an absolute normal path"},
        {0, "/usr/bin/../x", SCONIFY_ERR_INVALID, "not an absolute normal path"},
        {0, "/usr//bin/x", SCONIFY_ERR_INVALID, "not an absolute normal path"},
        {0, "/usr/./x", SCONIFY_ERR_INVALID, "not an absolute normal path"},
        {0, "/usr/bin/", SCONIFY_ERR_INVALID, "not an absolute normal path"},
        {0, "", SCONIFY_ERR_INVALID, "not an absolute normal path"},
        {0, "/", SCONIFY_ERR_INVALID, "names the root directory"},
        {1, "app", SCONIFY_ERR_INVALID, "working directory `app' is not an absolute normal path"},
        {1, "/app/", SCONIFY_ERR_INVALID, "not an absolute normal path"},
        {2, "/a/..", SCONIFY_ERR_INVALID, "region `/a/..' is not an absolute normal path"},
        {2, "//", SCONIFY_ERR_INVALID, "not an absolute normal path"},
};

START_TEST(paths_must_be_absolute_and_normal)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_measure sc_measure *m = sc_measure_new();
	int r = bad_paths[_i].field == 0 ? sc_measure_set_exe_path(m, bad_paths[_i].path, &err)
	        : bad_paths[_i].field == 1
	                ? sc_measure_set_cwd(m, bad_paths[_i].path, &err)
	                : sc_measure_add_region(m, SC_MEASURE_REGION_ENCRYPTED, bad_paths[_i].path, &err);
	ck_assert_fails(r, err, bad_paths[_i].kind, bad_paths[_i].needle);
}
END_TEST

START_TEST(overlong_inputs_hit_the_limits)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_measure sc_measure *m = sc_measure_new();
	cleanup_free char *big = xmalloc(SC_MEASURE_STRING_MAX + 2);
	memset(big, 'x', SC_MEASURE_STRING_MAX + 1);
	big[SC_MEASURE_STRING_MAX + 1] = '\0';
	ck_assert_fails(sc_measure_add_arg(m, big, &err), err, SCONIFY_ERR_LIMIT, "larger than the limit");
	sconify_error_free(&err);
	big[0] = 'A';
	big[1] = '=';
	ck_assert_fails(sc_measure_add_env(m, big, &err), err, SCONIFY_ERR_LIMIT, "larger than the limit");
	sconify_error_free(&err);
	big[0] = '/';
	big[SC_MEASURE_PATH_MAX + 1] = '\0';
	ck_assert_fails(sc_measure_set_cwd(m, big, &err), err, SCONIFY_ERR_LIMIT, "path longer than");
	sconify_error_free(&err);
	ck_assert_fails(sc_measure_add_region(m, (sc_measure_region_kind)3, "/x", &err), err,
	                SCONIFY_ERR_INVALID, "unknown kind 3");
}
END_TEST

START_TEST(too_many_arguments_are_refused)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_measure sc_measure *m = sc_measure_new();
	for (unsigned i = 0; i < SC_MEASURE_LIST_MAX; i++)
		ck_assert_ok(sc_measure_add_arg(m, "a", &err), err);
	ck_assert_fails(sc_measure_add_arg(m, "a", &err), err, SCONIFY_ERR_LIMIT, "too many argument");
}
END_TEST

static void omit(int i, sc_measure *m, const inputs *in)
{
	cleanup_error sconify_error_t err = NULL;
	if (i != 0)
		sc_measure_set_runtime(m, in->runtime);
	if (i != 1)
		ck_assert_ok(sc_measure_set_exe_path(m, in->exe_path, &err), err);
	if (i != 2)
		sc_measure_exe_update(m, "x", 1);
	if (i != 3)
		sc_measure_set_pin(m, NULL);
	if (i != 4)
		ck_assert_ok(sc_measure_add_arg(m, "x", &err), err);
	if (i != 5)
		ck_assert_ok(sc_measure_set_cwd(m, "/", &err), err);
}

START_TEST(missing_inputs_are_refused)
{
	static const char *needles[] = {
	        "the runtime's hash is missing",
	        "the executable's path is missing",
	        "the executable's content is missing",
	        "the shield metadata pin is missing",
	        "empty command",
	        "the working directory is missing",
	};
	cleanup_error sconify_error_t err = NULL;
	inputs in = base_inputs();
	cleanup_measure sc_measure *m = sc_measure_new();
	omit(_i, m, &in);
	uint8_t v[32];
	ck_assert_fails(sc_measure_finish(m, v, &err), err, SCONIFY_ERR_USAGE, needles[_i]);
}
END_TEST

START_TEST(a_finished_builder_cannot_finish_again)
{
	cleanup_error sconify_error_t err = NULL;
	inputs in = base_inputs();
	cleanup_measure sc_measure *m = build(&in);
	uint8_t v[32];
	ck_assert_ok(sc_measure_finish(m, v, &err), err);
	ck_assert_fails(sc_measure_finish(m, v, &err), err, SCONIFY_ERR_USAGE, "already finished");
}
END_TEST

/* ---- hex ---- */

START_TEST(hex_round_trips_and_rejects_bad_text)
{
	cleanup_error sconify_error_t err = NULL;
	uint8_t v[32];
	char hex[SC_MEASURE_HEX + 1];
	ck_assert_ok(sc_measure_parse_hex(BASE_MEASUREMENT, v, &err), err);
	sc_measure_hex(v, hex);
	ck_assert_str_eq(hex, BASE_MEASUREMENT);
	static const char *bad[] = {
	        "",
	        "2998DA2ECEF3687BD8095BC012E6CC3245A4A3A5683426068F9A57EACA7C2D12",
	        "2998da2ecef3687bd8095bc012e6cc3245a4a3a5683426068f9a57eaca7c2d1",
	        "2998da2ecef3687bd8095bc012e6cc3245a4a3a5683426068f9a57eaca7c2d120",
	        "sha256:2998da2ecef3687bd8095bc012e6cc3245a4a3a5683426068f9a57eaca7c2d12",
	        "2998da2ecef3687bd8095bc012e6cc3245a4a3a5683426068f9a57eaca7c2d1g",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t keep[32] = {7};
		ck_assert_fails(sc_measure_parse_hex(bad[i], keep, &err), err, SCONIFY_ERR_INVALID,
		                "not 64 lowercase hex digits");
		ck_assert_uint_eq(keep[0], 7); /* ret_* untouched on failure */
		sconify_error_free(&err);
	}
}
END_TEST

/* ---- hashing files ---- */

START_TEST(hash_file_and_fd_match_sha256)
{
	cleanup_error sconify_error_t err = NULL;
	char *dir = sc_test_tmpdir();
	cleanup_free char *path = sc_path_join(dir, "exe");
	/* larger than one read buffer */
	size_t n = SC_STREAM_CHUNK + 12345;
	cleanup_free char *data = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 7 + i / 251);
	ck_assert_ok(sc_write_file_atomic(path, data, n, 0755, &err), err);
	uint8_t want[32], got[32];
	unsigned int dn = 0;
	ck_assert_int_eq(EVP_Digest(data, n, want, &dn, EVP_sha256(), NULL), 1);
	ck_assert_ok(sc_measure_hash_file(path, got, &err), err);
	ck_assert(memcmp(got, want, 32) == 0);
	cleanup_close int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	memset(got, 0, 32);
	ck_assert_ok(sc_measure_hash_fd(fd, got, &err), err);
	ck_assert(memcmp(got, want, 32) == 0);

	cleanup_free char *missing = sc_path_join(dir, "nope");
	ck_assert_fails(sc_measure_hash_file(missing, got, &err), err, SCONIFY_ERR_NOT_FOUND, "nope");
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

/* ---- resolving the command ---- */

/* A file tree as the conversion sees it: candidate -> canonical path of an
 * executable regular file; everything else is missing. Records the calls. */
typedef struct {
	const char *files[8][2];
	const char *fail_on; /* a candidate whose check fails hard */
	char log[1024];
} fake_fs;

static int fake_check(void *ctx, const char *path, char **ret_real, sconify_error_t *err)
{
	fake_fs *fs = ctx;
	strncat(fs->log, path, sizeof(fs->log) - strlen(fs->log) - 2);
	strcat(fs->log, ";");
	if (fs->fail_on && strcmp(path, fs->fail_on) == 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "too many levels of symbolic links");
	for (size_t i = 0; i < 8 && fs->files[i][0]; i++)
		if (strcmp(fs->files[i][0], path) == 0) {
			*ret_real = xstrdup(fs->files[i][1] ? fs->files[i][1] : path);
			return 1;
		}
	return 0;
}

START_TEST(resolve_takes_an_absolute_command_as_is)
{
	cleanup_error sconify_error_t err = NULL;
	fake_fs fs = {.files = {{"/opt/app/run", NULL}, {"/usr/bin/run", NULL}}};
	cleanup_free char *p = NULL;
	ck_assert_ok(sc_measure_resolve_command("/opt/app/run", "/usr/bin", "/", fake_check, &fs, &p, &err),
	             err);
	ck_assert_str_eq(p, "/opt/app/run");
	ck_assert_str_eq(fs.log, "/opt/app/run;"); /* PATH is not searched */
}
END_TEST

START_TEST(resolve_takes_a_relative_command_with_slash_from_cwd)
{
	cleanup_error sconify_error_t err = NULL;
	fake_fs fs = {.files = {{"/app/./bin/run", "/app/bin/run"}, {"/usr/bin/bin/run", NULL}}};
	cleanup_free char *p = NULL;
	ck_assert_ok(sc_measure_resolve_command("./bin/run", "/usr/bin", "/app", fake_check, &fs, &p, &err),
	             err);
	ck_assert_str_eq(p, "/app/bin/run");
	ck_assert_str_eq(fs.log, "/app/./bin/run;");

	/* from the root, without a doubled slash */
	fake_fs root = {.files = {{"/bin/run", NULL}}};
	cleanup_free char *p2 = NULL;
	ck_assert_ok(sc_measure_resolve_command("bin/run", NULL, "/", fake_check, &root, &p2, &err), err);
	ck_assert_str_eq(p2, "/bin/run");
}
END_TEST

START_TEST(resolve_searches_path_in_order)
{
	cleanup_error sconify_error_t err = NULL;
	fake_fs fs = {.files = {{"/bin/python3", NULL}, {"/usr/bin/python3", "/usr/bin/python3.11"}}};
	cleanup_free char *p = NULL;
	ck_assert_ok(sc_measure_resolve_command("python3", "/usr/local/bin:/usr/bin/:/bin", "/app",
	                                        fake_check, &fs, &p, &err),
	             err);
	ck_assert_str_eq(p, "/usr/bin/python3.11"); /* the canonical path, symlinks resolved */
	ck_assert_str_eq(fs.log, "/usr/local/bin/python3;/usr/bin/python3;");
}
END_TEST

START_TEST(resolve_skips_empty_and_relative_path_entries)
{
	cleanup_error sconify_error_t err = NULL;
	/* POSIX's legacy reading would find /app/run through the empty entries */
	fake_fs fs = {.files = {{"/app/run", NULL}, {"/app/bin/run", NULL}, {"/sbin/run", NULL}}};
	cleanup_free char *p = NULL;
	ck_assert_ok(sc_measure_resolve_command("run", ":.:bin::/sbin:", "/app", fake_check, &fs, &p, &err),
	             err);
	ck_assert_str_eq(p, "/sbin/run");
	ck_assert_str_eq(fs.log, "/sbin/run;");
}
END_TEST

START_TEST(resolve_uses_the_default_path_without_one)
{
	cleanup_error sconify_error_t err = NULL;
	fake_fs fs = {.files = {{"/bin/sh", NULL}}};
	cleanup_free char *p = NULL;
	ck_assert_ok(sc_measure_resolve_command("sh", NULL, "/", fake_check, &fs, &p, &err), err);
	ck_assert_str_eq(p, "/bin/sh");
	ck_assert_str_eq(fs.log,
	                 "/usr/local/sbin/sh;/usr/local/bin/sh;/usr/sbin/sh;/usr/bin/sh;/sbin/sh;/bin/sh;");

	/* an empty PATH is a PATH: nothing is searched */
	fake_fs fs2 = {.files = {{"/bin/sh", NULL}}};
	cleanup_free char *p2 = NULL;
	ck_assert_fails(sc_measure_resolve_command("sh", "", "/", fake_check, &fs2, &p2, &err), err,
	                SCONIFY_ERR_NOT_FOUND, "command `sh' not found in PATH `'");
	ck_assert_str_eq(fs2.log, "");
	ck_assert_ptr_null(p2);
}
END_TEST

START_TEST(resolve_not_found_names_the_command)
{
	cleanup_error sconify_error_t err = NULL;
	fake_fs fs = {.files = {{"/usr/bin/other", NULL}}};
	char *p = NULL;
	ck_assert_fails(sc_measure_resolve_command("my\x1b"
	                                           "app",
	                                           "/usr/bin:/bin", "/", fake_check, &fs, &p, &err),
	                err, SCONIFY_ERR_NOT_FOUND, "command `my\\x1bapp' not found in PATH `/usr/bin:/bin'");
	ck_assert_ptr_null(p);
	sconify_error_free(&err);
	ck_assert_fails(sc_measure_resolve_command("sh", NULL, "/", fake_check, &fs, &p, &err), err,
	                SCONIFY_ERR_NOT_FOUND, "the environment has no PATH");
	sconify_error_free(&err);
	ck_assert_fails(sc_measure_resolve_command("./run", "/usr/bin", "/app", fake_check, &fs, &p, &err),
	                err, SCONIFY_ERR_NOT_FOUND,
	                "command `./run' not found: `/app/./run' is not an executable regular file");
	sconify_error_free(&err);
	ck_assert_fails(sc_measure_resolve_command("", "/usr/bin", "/", fake_check, &fs, &p, &err), err,
	                SCONIFY_ERR_INVALID, "empty command");
	ck_assert_ptr_null(p);
}
END_TEST

START_TEST(resolve_stops_on_a_check_failure)
{
	cleanup_error sconify_error_t err = NULL;
	fake_fs fs = {.files = {{"/bin/run", NULL}}, .fail_on = "/usr/bin/run"};
	char *p = NULL;
	ck_assert_fails(sc_measure_resolve_command("run", "/usr/bin:/bin", "/", fake_check, &fs, &p, &err),
	                err, SCONIFY_ERR_INVALID,
	                "resolving command `run': too many levels of symbolic links");
	ck_assert_str_eq(fs.log, "/usr/bin/run;");
	ck_assert_ptr_null(p);
}
END_TEST

START_TEST(resolve_refuses_a_check_answer_that_is_not_normal)
{
	cleanup_error sconify_error_t err = NULL;
	fake_fs fs = {.files = {{"/bin/run", "/bin/../opt/run"}}};
	char *p = NULL;
	ck_assert_fails(sc_measure_resolve_command("run", "/bin", "/", fake_check, &fs, &p, &err), err,
	                SCONIFY_ERR_INVALID,
	                "resolved to `/bin/../opt/run', which is not an absolute normal path");
	ck_assert_ptr_null(p);
}
END_TEST

START_TEST(env_path_finds_the_path_entry)
{
	const char *env[] = {"PATHX=/no", "HOME=/root", "PATH=/usr/bin:/bin"};
	ck_assert_str_eq(sc_measure_env_path(env, 3), "/usr/bin:/bin");
	ck_assert_ptr_null(sc_measure_env_path(env, 2));
}
END_TEST

START_TEST(fs_check_answers_from_the_real_file_system)
{
	cleanup_error sconify_error_t err = NULL;
	char *dir = sc_test_tmpdir();
	cleanup_free char *real_dir = realpath(dir, NULL); /* $TMPDIR may itself be a link */
	cleanup_free char *bin = sc_path_join(dir, "bin");
	ck_assert_int_eq(mkdir(bin, 0755), 0);
	cleanup_free char *exe = sc_path_join(bin, "app.real");
	cleanup_free char *plain = sc_path_join(bin, "data");
	cleanup_free char *link = sc_path_join(bin, "app");
	ck_assert_ok(sc_write_file_atomic(exe, "#!/bin/sh\n", 10, 0755, &err), err);
	ck_assert_ok(sc_write_file_atomic(plain, "x", 1, 0644, &err), err);
	ck_assert_int_eq(symlink("app.real", link), 0);

	cleanup_free char *p = NULL;
	ck_assert_ok(sc_measure_resolve_command("app", bin, "/", sc_measure_fs_check, NULL, &p, &err), err);
	cleanup_free char *want = xasprintf("%s/bin/app.real", real_dir);
	ck_assert_str_eq(p, want);

	char *q = NULL;
	ck_assert_fails(sc_measure_resolve_command("data", bin, "/", sc_measure_fs_check, NULL, &q, &err),
	                err, SCONIFY_ERR_NOT_FOUND, "command `data' not found");
	sconify_error_free(&err);
	ck_assert_fails(sc_measure_resolve_command("./bin", bin, dir, sc_measure_fs_check, NULL, &q, &err),
	                err, SCONIFY_ERR_NOT_FOUND, "is not an executable regular file");
	ck_assert_ptr_null(q);
	sc_test_tmpdir_cleanup(dir);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("measure");
	TCase *tc = tcase_create("encoding");
	tcase_add_test(tc, known_answer_matches_independent_computation);
	tcase_add_test(tc, encoding_matches_the_documented_bytes);
	tcase_add_loop_test(tc, each_input_changes_the_value, 0, N_VARIATIONS);
	tcase_add_test(tc, all_variations_differ_from_each_other);
	tcase_add_test(tc, argv_split_differently_gives_another_value);
	tcase_add_test(tc, env_order_does_not_matter);
	tcase_add_test(tc, region_order_does_not_matter);
	tcase_add_test(tc, exe_content_streamed_written_or_given_agree);
	tcase_add_test(tc, exe_content_streamed_and_given_is_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("refusals");
	tcase_add_test(tc, env_duplicates_are_refused);
	tcase_add_test(tc, env_entries_without_a_name_are_refused);
	tcase_add_test(tc, duplicate_regions_are_refused);
	tcase_add_loop_test(tc, paths_must_be_absolute_and_normal, 0,
	                    sizeof(bad_paths) / sizeof(bad_paths[0]));
	tcase_add_test(tc, overlong_inputs_hit_the_limits);
	tcase_add_test(tc, too_many_arguments_are_refused);
	tcase_add_loop_test(tc, missing_inputs_are_refused, 0, 6);
	tcase_add_test(tc, a_finished_builder_cannot_finish_again);
	tcase_add_test(tc, hex_round_trips_and_rejects_bad_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("files and commands");
	tcase_add_test(tc, hash_file_and_fd_match_sha256);
	tcase_add_test(tc, resolve_takes_an_absolute_command_as_is);
	tcase_add_test(tc, resolve_takes_a_relative_command_with_slash_from_cwd);
	tcase_add_test(tc, resolve_searches_path_in_order);
	tcase_add_test(tc, resolve_skips_empty_and_relative_path_entries);
	tcase_add_test(tc, resolve_uses_the_default_path_without_one);
	tcase_add_test(tc, resolve_not_found_names_the_command);
	tcase_add_test(tc, resolve_stops_on_a_check_failure);
	tcase_add_test(tc, resolve_refuses_a_check_answer_that_is_not_normal);
	tcase_add_test(tc, env_path_finds_the_path_entry);
	tcase_add_test(tc, fs_check_answers_from_the_real_file_system);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
