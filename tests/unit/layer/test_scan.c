/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layer scanner. Tars are written here, header by header, so that the
 * hostile ones (which libarchive's writer refuses to make) can be built too.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "digest/digest.h"
#include "layer/scan.h"
#include "support.h"
#include "tarbuild.h"

/* ---- running the scanner ----------------------------------------------------- */

static sconify_limits_t limits;

static void setup(void)
{
	memset(&limits, 0, sizeof(limits));
	sc_limits_fill(&limits);
}

static const char *type_name(sc_entry_type t)
{
	static const char *names[] = {"file", "dir", "symlink", "hardlink", "char", "block", "fifo"};
	return names[t];
}

/* Records every entry as "path type [-> link] [wh=kind:target]\n". */
static int record(void *userdata, const sc_layer_entry *e, sconify_error_t *err)
{
	(void)err;
	sc_buf *b = userdata;
	sc_buf_printf(b, "%s %s", e->path[0] ? e->path : ".", type_name(e->type));
	if (e->link)
		sc_buf_printf(b, " -> %s", e->link);
	if (e->type == SC_ENTRY_FILE && e->size)
		sc_buf_printf(b, " size=%llu", (unsigned long long)e->size);
	if (e->whiteout != SC_WH_NONE)
		sc_buf_printf(b, " wh=%s:%s",
		              e->whiteout == SC_WH_FILE     ? "file"
		              : e->whiteout == SC_WH_OPAQUE ? "opaque"
		                                            : "meta",
		              e->whiteout_target ? e->whiteout_target : "-");
	sc_buf_putc(b, '\n');
	return 0;
}

/* Scans data; on success *out (if given) holds the recorded entries. */
static int scan(const void *data, size_t len, sc_buf *out, sconify_error_t *err)
{
	cleanup_reader sc_reader *r = sc_mem_reader_new(data, len);
	sc_layer_scan_opts o = {
	        .limits = &limits,
	        .on_entry = out ? record : NULL,
	        .userdata = out,
	        .what = "layer L",
	};
	return sc_layer_scan(r, &o, NULL, NULL, err);
}

static int scan_tb(tarb *b, sc_buf *out, sconify_error_t *err)
{
	return scan(b->data, b->len, out, err);
}

/* Scans b and frees it, asserting success and the listing "path type\n"... */
static void expect_listing(tarb *b, const char *want)
{
	cleanup_buf sc_buf out;
	sc_buf_init(&out, SIZE_MAX);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan_tb(b, &out, &err), err);
	ck_assert_str_eq(out.data, want);
	free(b->data);
}

#define FAILS(b, kind, needle)                                                  \
	do {                                                                    \
		cleanup_error sconify_error_t err_ = NULL;                      \
		ck_assert_fails(scan_tb((b), NULL, &err_), err_, kind, needle); \
		free((b)->data);                                                \
	} while (0)

/* ---- normal layers --------------------------------------------------------------- */

START_TEST(scan_reports_every_entry_type)
{
	tarb b = {0};
	tb_dir(&b, "./");
	tb_dir(&b, "etc/");
	tb_file(&b, "etc/hosts", "127.0.0.1 localhost\n");
	tb_link(&b, "etc/hosts.allow", "etc/hosts");
	tb_symlink(&b, "etc/mtab", "../proc/self/mounts");
	tb_entry(&b, "dev/null", '3', NULL, 0, NULL, 0666);
	tb_entry(&b, "dev/sda", '4', NULL, 0, NULL, 0660);
	tb_entry(&b, "run/fifo", '6', NULL, 0, NULL, 0600);
	tb_end(&b);
	expect_listing(&b, ". dir\n"
	                   "etc dir\n"
	                   "etc/hosts file size=20\n"
	                   "etc/hosts.allow hardlink -> etc/hosts\n"
	                   "etc/mtab symlink -> ../proc/self/mounts\n"
	                   "dev/null char\n"
	                   "dev/sda block\n"
	                   "run/fifo fifo\n");
}
END_TEST

static int check_attrs(void *userdata, const sc_layer_entry *e, sconify_error_t *err)
{
	(void)userdata, (void)err;
	ck_assert_str_eq(e->path, "bin/su");
	ck_assert_uint_eq(e->mode, 04755);
	ck_assert_uint_eq(e->size, 3);
	ck_assert_ptr_nonnull(e->ae);
	return 0;
}

START_TEST(scan_reports_mode_with_setuid_bits)
{
	tarb b = {0};
	tb_entry(&b, "bin/su", '0', "abc", 3, NULL, 04755);
	tb_end(&b);
	cleanup_reader sc_reader *r = sc_mem_reader_new(b.data, b.len);
	sc_layer_scan_opts o = {.limits = &limits, .on_entry = check_attrs};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_layer_scan(r, &o, NULL, NULL, &err), err);
	free(b.data);
}
END_TEST

START_TEST(scan_normalises_paths)
{
	tarb b = {0};
	tb_dir(&b, ".");
	tb_dir(&b, "./a/");
	tb_file(&b, "./a//b", "");
	tb_file(&b, "a/./c", "");
	tb_dir(&b, "a/d///");
	tb_file(&b, ".//a/./d/./e", "");
	tb_end(&b);
	expect_listing(&b, ". dir\na dir\na/b file\na/c file\na/d dir\na/d/e file\n");
}
END_TEST

START_TEST(scan_tee_receives_exact_input_and_diff_id_is_its_sha256)
{
	/* larger than the scanner's chunks, with data and zero padding after
	 * the end marker */
	tarb b = {0};
	char *big = xmalloc(3 << 20);
	for (size_t i = 0; i < (3u << 20); i++)
		big[i] = (char)(i * 7 + (i >> 13));
	tb_dir(&b, "d/");
	tb_entry(&b, "d/big", '0', big, (3u << 20) - 5, NULL, 0644);
	tb_file(&b, "d/small", "x");
	tb_end(&b);
	tb_raw(&b, NULL, 10240 - b.len % 10240);
	free(big);

	cleanup_reader sc_reader *r = sc_mem_reader_new(b.data, b.len);
	sc_writer *hw = sc_hash_writer_new(NULL, SC_SHA256);
	sc_layer_scan_opts o = {.limits = &limits, .tee = hw};
	sc_digest diff_id, want, teed;
	uint64_t n = 0, teed_n = 0;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_layer_scan(r, &o, &diff_id, &n, &err), err);
	sc_hash_writer_result(hw, &teed, &teed_n);
	sc_writer_free(hw);
	sc_digest_of(SC_SHA256, b.data, b.len, &want);
	ck_assert_str_eq(diff_id.str, want.str);
	ck_assert_str_eq(teed.str, want.str);
	ck_assert_uint_eq(n, b.len);
	ck_assert_uint_eq(teed_n, b.len);
	free(b.data);
}
END_TEST

START_TEST(scan_accepts_empty_stream_as_empty_layer)
{
	cleanup_reader sc_reader *r = sc_mem_reader_new("", 0);
	sc_layer_scan_opts o = {.limits = &limits};
	sc_digest d;
	uint64_t n = 1;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_layer_scan(r, &o, &d, &n, &err), err);
	ck_assert_str_eq(d.str, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(scan_accepts_trailing_zero_padding_up_to_the_cap)
{
	limits.max_trailing_bytes = 8192;
	tarb b = {0};
	tb_file(&b, "a", "a");
	tb_end(&b);
	tb_raw(&b, NULL, 8192);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan_tb(&b, NULL, &err), err);
	tb_raw(&b, NULL, 1);
	FAILS(&b, SCONIFY_ERR_LIMIT, "data after the end of the archive");
}
END_TEST

START_TEST(scan_rejects_default_cap_of_trailing_zeros_plus_one)
{
	tarb b = {0};
	tb_file(&b, "a", "a");
	tb_end(&b);
	tb_raw(&b, NULL, limits.max_trailing_bytes);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan_tb(&b, NULL, &err), err);
	tb_raw(&b, NULL, 512);
	FAILS(&b, SCONIFY_ERR_LIMIT, "data after the end of the archive");
}
END_TEST

START_TEST(scan_rejects_entry_hidden_after_single_zero_block)
{
	/* libarchive stops at the first zero block; GNU tar -i would go on */
	tarb b = {0};
	tb_file(&b, "a", "a");
	tb_raw(&b, NULL, 512);
	tb_file(&b, "hidden", "x");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "data after the end of the archive");
}
END_TEST

START_TEST(scan_rejects_nonzero_bytes_after_end_marker)
{
	tarb b = {0};
	tb_file(&b, "a", "a");
	tb_end(&b);
	tb_raw(&b, "x", 1);
	FAILS(&b, SCONIFY_ERR_INVALID, "data after the end of the archive");
}
END_TEST

START_TEST(scan_accepts_archive_without_end_marker)
{
	/* Go's archive/tar and libarchive both end at a block boundary */
	tarb b = {0};
	tb_file(&b, "a", "a");
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan_tb(&b, NULL, &err), err);
	free(b.data);
}
END_TEST

START_TEST(scan_accepts_pax_global_header)
{
	/* git archive writes one with the commit id */
	tarb b = {0};
	tb_pax(&b, 'g', "comment", "0123abcd", (size_t)8, NULL);
	tb_file(&b, "a", "a");
	tb_pax(&b, 'g', "comment", "again", (size_t)5, NULL);
	tb_end(&b);
	expect_listing(&b, "a file size=1\n");
}
END_TEST

START_TEST(scan_reads_gnu_long_names)
{
	char name[300];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	name[150] = '/';
	tarb b = {0};
	tb_block(&b, "././@LongLink", 13, 'L', strlen(name) + 1, NULL, 0644, GNU);
	tb_raw(&b, name, strlen(name) + 1);
	tb_pad(&b);
	tb_block(&b, name, 100, '0', 0, NULL, 0644, GNU);
	tb_end(&b);
	cleanup_buf sc_buf out;
	sc_buf_init(&out, SIZE_MAX);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan_tb(&b, &out, &err), err);
	ck_assert_uint_eq(out.len, strlen(name) + strlen(" file\n"));
	ck_assert(strncmp(out.data, name, strlen(name)) == 0);
	free(b.data);
}
END_TEST

START_TEST(scan_keeps_utf8_pax_names_as_bytes)
{
	/* libarchive warns that the name does not convert to the C locale;
	 * the scanner takes the bytes as they are */
	tarb b = {0};
	const char *name = "caf\xc3\xa9/\xe2\x82\xac";
	tb_pax(&b, 'x', "path", name, strlen(name), NULL);
	tb_block(&b, "x", 1, '0', 0, NULL, 0644, USTAR);
	tb_entry(&b, "latin1-\xe9", '0', NULL, 0, NULL, 0644);
	tb_end(&b);
	expect_listing(&b, "caf\xc3\xa9/\xe2\x82\xac file\nlatin1-\xe9 file\n");
}
END_TEST

START_TEST(scan_accepts_old_regular_typeflag_with_trailing_slash_as_directory)
{
	tarb b = {0};
	tb_block(&b, "d/", 2, '\0', 0, NULL, 0755, USTAR);
	tb_block(&b, "f", 1, '\0', 0, NULL, 0644, USTAR);
	tb_end(&b);
	expect_listing(&b, "d dir\nf file\n");
}
END_TEST

/* ---- whiteouts --------------------------------------------------------------------- */

START_TEST(scan_classifies_whiteouts)
{
	tarb b = {0};
	tb_file(&b, ".wh.etc", "");
	tb_file(&b, "usr/.wh.lib", "");
	tb_file(&b, "usr/share/.wh..wh..opq", "");
	tb_file(&b, ".wh..wh..opq", "");
	tb_file(&b, ".wh..wh.plnk", "");
	tb_file(&b, "a/.wh..wh.aufs", "");
	tb_file(&b, ".wh.etc/somefile", "data");
	tb_file(&b, "a/.wh..hidden", "");
	tb_end(&b);
	expect_listing(&b, ".wh.etc file wh=file:etc\n"
	                   "usr/.wh.lib file wh=file:usr/lib\n"
	                   "usr/share/.wh..wh..opq file wh=opaque:usr/share\n"
	                   ".wh..wh..opq file wh=opaque:\n"
	                   ".wh..wh.plnk file wh=meta:-\n"
	                   "a/.wh..wh.aufs file wh=meta:-\n"
	                   ".wh.etc/somefile file size=4\n"
	                   "a/.wh..hidden file wh=file:a/.hidden\n");
}
END_TEST

static const char *bad_whiteouts[] = {
        ".wh.",         /* names nothing */
        "etc/.wh.",     /* the same below the root */
        ".wh...",       /* containerd WhiteoutRootParent: the parent of the root */
        "etc/.wh...",   /* WhiteoutParent */
        ".wh..",        /* WhiteoutRoot */
        "etc/.wh..",    /* WhiteoutCurrentDirectory */
        "etc/.wh../x/", /* only the last component counts, but it must be valid */
};

START_TEST(scan_rejects_whiteout_naming_no_file)
{
	tarb b = {0};
	const char *name = bad_whiteouts[_i];
	if (name[strlen(name) - 1] == '/') {
		/* ".wh.." as a directory component is fine; as the last it is not */
		tb_dir(&b, "etc/.wh../x/");
		tb_file(&b, "etc/.wh../x/.wh..", "");
	} else {
		tb_file(&b, name, "");
	}
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "invalid whiteout");
}
END_TEST

START_TEST(scan_rejects_whiteout_with_dotdot_in_its_path)
{
	/* containerd WhiteoutRelativePath: "dne/../.wh.etc" removes /etc there */
	tarb b = {0};
	tb_file(&b, "dne/../.wh.etc", "");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "path has a `..' component");
}
END_TEST

/* ---- paths ----------------------------------------------------------------------------- */

START_TEST(scan_rejects_absolute_path)
{
	/* containerd SymlinkAbsolute writes "/localetc/unbroken" */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_symlink(&b, "localetc", "/etc");
	tb_file(&b, "/localetc/unbroken", "unbroken");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "layer L: entry `/localetc/unbroken': absolute path");
}
END_TEST

START_TEST(scan_rejects_dotdot_component)
{
	static const char *names[] = {"../x", "a/../../x", "a/..", "..", "./../x"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		tarb b = {0};
		tb_file(&b, names[i], "");
		tb_end(&b);
		FAILS(&b, SCONIFY_ERR_INVALID, "path has a `..' component");
	}
}
END_TEST

START_TEST(scan_rejects_symlink_named_dotdot)
{
	/* containerd SymlinkParentDirectory and SymlinkParentRelative */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_symlink(&b, "..", "/etc/");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "path has a `..' component");
	b = (tarb){0};
	tb_symlink(&b, "localetc/sub/..", "/etc/");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "path has a `..' component");
}
END_TEST

START_TEST(scan_rejects_empty_path)
{
	/* containerd SymlinkEmptyFilename */
	tarb b = {0};
	tb_symlink(&b, "", "/etc/");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "empty path");
}
END_TEST

START_TEST(scan_rejects_pax_path_of_one_mib)
{
	size_t n = 1u << 20;
	char *name = xmalloc(n);
	memset(name, 'a', n);
	for (size_t i = 100; i < n; i += 100)
		name[i] = '/';
	tarb b = {0};
	tb_pax(&b, 'x', "path", name, n, NULL);
	tb_block(&b, "short", 5, '0', 0, NULL, 0644, USTAR);
	tb_end(&b);
	free(name);
	FAILS(&b, SCONIFY_ERR_LIMIT, "path longer than");
}
END_TEST

START_TEST(scan_rejects_path_longer_than_the_limit)
{
	limits.max_path_bytes = 200;
	char name[202];
	memset(name, 'a', 201);
	name[201] = '\0';
	tarb b = {0};
	tb_file(&b, name, "");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_LIMIT, "path longer than 200 bytes");
}
END_TEST

START_TEST(scan_rejects_path_300_components_deep)
{
	char name[601];
	for (int i = 0; i < 300; i++)
		memcpy(name + 2 * i, "d/", 2);
	name[599] = '\0';
	tarb b = {0};
	tb_file(&b, name, "");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_LIMIT, "path deeper than 256");
}
END_TEST

START_TEST(scan_rejects_too_many_entries)
{
	limits.max_entries = 1000;
	tarb b = {0};
	char name[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		tb_file(&b, name, "");
	}
	size_t len = b.len;
	tb_end(&b);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan_tb(&b, NULL, &err), err);
	b.len = len;
	tb_file(&b, "f1000", "");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_LIMIT, "too many entries");
}
END_TEST

/* ---- the root -------------------------------------------------------------------------- */

START_TEST(scan_rejects_root_that_is_not_a_directory)
{
	/* umoci CVE-2021-29136: "." as a symlink redirected later layers */
	static const struct {
		const char *name;
		char type;
		const char *link;
	} roots[] = {{".", '2', "/host"}, {".", '0', NULL}, {"/", '2', "x"}, {".", '1', "etc"}};
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		tarb b = {0};
		tb_dir(&b, "etc");
		tb_entry(&b, roots[i].name, roots[i].type, NULL, 0, roots[i].link, 0777);
		tb_end(&b);
		FAILS(&b, SCONIFY_ERR_INVALID,
		      roots[i].name[0] == '/' ? "absolute path" : "root must be a directory");
	}
}
END_TEST

/* ---- links ------------------------------------------------------------------------------- */

START_TEST(scan_rejects_empty_symlink_target)
{
	tarb b = {0};
	tb_symlink(&b, "l", "");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "empty symlink target");
}
END_TEST

static const struct {
	const char *name, *target; /* containerd TestBreakouts cases with relative targets */
} escaping_symlinks[] = {
        {"breakouts/d1", "../../etc"},                 /* HardlinkRelative */
        {"breakouts/d1", "../downandout/../../etc"},   /* HardlinkDownAndOut */
        {"localetc", "../../../../../../../etc"},      /* HardlinkRelativeLong */
        {"localetc", "upandout/../../../etc"},         /* HardlinkRelativeUpAndOut */
        {"localetc", "../../etc"},                     /* SymlinkOverrideDirectoryRelative */
        {"passwdlink", "../../../../../etc/passwd"},   /* HardlinkSymlinkRelative */
        {"home/derek/breakout", "../../../breakout"},  /* TestRelativeSymlinks */
        {"breakout", "etc/../../upandout"},            /* TestRelativeSymlinks */
        {"home/breakout", "derek/../../../downandout"} /* TestRelativeSymlinks */
};

START_TEST(scan_rejects_symlink_target_escaping_the_root)
{
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_symlink(&b, escaping_symlinks[_i].name, escaping_symlinks[_i].target);
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "symlink target escapes the root");
}
END_TEST

START_TEST(scan_accepts_symlink_targets_inside_the_root)
{
	tarb b = {0};
	tb_symlink(&b, "localetc", "/etc");             /* SymlinkAbsolute */
	tb_symlink(&b, "localetc2", "/dummy/../etc");   /* SymlinkUpAndOut */
	tb_symlink(&b, "localetc3", "./dummy/etc");     /* SymlinkMultipleRelative */
	tb_symlink(&b, "home/derek/other", "../other"); /* TestRelativeSymlinks */
	tb_symlink(&b, "home/derek/etc", "../../etc");  /* TestRelativeSymlinks */
	tb_symlink(&b, "home/derek/updown", "up/../../other");
	tb_symlink(&b, "abs", "/../../../../etc"); /* absolute: resolves inside */
	tb_symlink(&b, "dot", ".");
	tb_end(&b);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan_tb(&b, NULL, &err), err);
	free(b.data);
}
END_TEST

START_TEST(scan_rejects_hardlink_with_absolute_target)
{
	/* containerd HardlinkDirectAbsolute and HardlinkAbsolute */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_file(&b, "etc/passwd", "inside");
	tb_link(&b, "localpasswd", "/etc/passwd");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "hard link target `/etc/passwd' is absolute");
}
END_TEST

START_TEST(scan_rejects_hardlink_with_dotdot_target)
{
	/* containerd HardlinkDirectRelative */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_file(&b, "etc/passwd", "inside");
	tb_link(&b, "localpasswd", "../../../../../etc/passwd");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID,
	      "hard link target `../../../../../etc/passwd': path has a `..' component");
}
END_TEST

START_TEST(scan_rejects_hardlink_to_the_root)
{
	tarb b = {0};
	tb_link(&b, "l", "./");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "is a directory");
	b = (tarb){0};
	tb_link(&b, "l", "");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "hard link target");
}
END_TEST

START_TEST(scan_rejects_absolute_hardlink_name_of_symlink_chmod_breakout)
{
	/* containerd HardlinkSymlinkChmod (CVE-2021-32760) uses host paths as
	 * names; both entries fail here before anything could follow them */
	tarb b = {0};
	tb_symlink(&b, "/tmp/td/also-exists-outside-root", "/tmp/td/perm400");
	tb_link(&b, "sketchylink", "/tmp/td/also-exists-outside-root");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "absolute path");
}
END_TEST

/* ---- what libarchive and Go's archive/tar would read differently -------------------------------- */

START_TEST(scan_rejects_unknown_typeflag)
{
	/* libarchive reads it as a regular file, containerd refuses it */
	static const char types[] = {'Z', '7', '8', 'D', 'M', 'N'};
	for (size_t i = 0; i < sizeof(types); i++) {
		tarb b = {0};
		tb_entry(&b, "x", types[i], "abc", 3, NULL, 0644);
		tb_end(&b);
		FAILS(&b, SCONIFY_ERR_UNSUPPORTED, "unsupported entry type");
	}
}
END_TEST

START_TEST(scan_rejects_volume_header)
{
	/* libarchive drops it silently, ignoring its size */
	tarb b = {0};
	tb_block(&b, "label", 5, 'V', 0, NULL, 0644, GNU);
	tb_file(&b, "a", "");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_UNSUPPORTED, "unsupported entry type");
}
END_TEST

START_TEST(scan_rejects_gnu_sparse_entry)
{
	tarb b = {0};
	unsigned char h[512];
	tb_block(&b, "sparse", 6, 'S', 512, NULL, 0644, GNU);
	/* one map entry: offset 0, 512 bytes; realsize 4096 */
	memcpy(h, b.data + b.len - 512, 512);
	memset(h + 386, 0, 512 - 386);
	snprintf((char *)h + 386, 12, "%011o", 0);
	snprintf((char *)h + 398, 12, "%011o", 512);
	snprintf((char *)h + 483, 12, "%011o", 4096);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	memcpy(b.data + b.len - 512, h, 512);
	tb_raw(&b, NULL, 512);
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_UNSUPPORTED, "sparse entries are not supported");
}
END_TEST

START_TEST(scan_rejects_pax_sparse_entry)
{
	tarb b = {0};
	tb_pax(&b, 'x', "GNU.sparse.size", "4096", (size_t)4, "GNU.sparse.numblocks", "1", (size_t)1,
	       "GNU.sparse.offset", "0", (size_t)1, "GNU.sparse.numbytes", "512", (size_t)3, NULL);
	tb_entry(&b, "sparse", '0', NULL, 0, NULL, 0644);
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_UNSUPPORTED, "sparse entries are not supported");
}
END_TEST

START_TEST(scan_rejects_pax_path_with_nul)
{
	/* libarchive 3.6.2 cuts the path at the NUL (here to "a"), Go refuses it */
	tarb b = {0};
	tb_pax(&b, 'x', "path", "a\0/../../etc/passwd", (size_t)19, NULL);
	tb_block(&b, "plain", 5, '0', 0, NULL, 0644, USTAR);
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "pax `path' has a NUL byte");
	b = (tarb){0};
	tb_pax(&b, 'x', "linkpath", "t\0x", (size_t)3, NULL);
	tb_block(&b, "l", 1, '2', 0, "t", 0777, USTAR);
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "pax `linkpath' has a NUL byte");
}
END_TEST

START_TEST(scan_rejects_pax_size_on_directory)
{
	/* libarchive would skip 512 bytes as the directory's data, Go reads
	 * them as the next header: an entry only one of them sees */
	tarb b = {0};
	tb_pax(&b, 'x', "size", "512", (size_t)3, NULL);
	tb_block(&b, "d", 1, '5', 0, NULL, 0755, USTAR);
	tb_file(&b, "smuggled", "");
	tb_file(&b, "g", "");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_UNSUPPORTED, "unsupported entry type");
}
END_TEST

START_TEST(scan_rejects_hardlink_with_data)
{
	/* in a pax archive libarchive obeys a hard link's size; Go ignores it */
	tarb b = {0};
	tb_pax(&b, 'x', "mtime", "1", (size_t)1, NULL);
	tb_file(&b, "f", "");
	tb_block(&b, "l", 1, '1', 512, "f", 0644, USTAR);
	tb_file(&b, "smuggled", "");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_UNSUPPORTED, "unsupported entry type");
}
END_TEST

START_TEST(scan_rejects_regular_typeflag_with_trailing_slash)
{
	/* libarchive reads "x/" with typeflag '0' as a directory, Go as a file */
	tarb b = {0};
	tb_block(&b, "x/", 2, '0', 0, NULL, 0644, USTAR);
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_UNSUPPORTED, "unsupported entry type");
}
END_TEST

START_TEST(scan_rejects_conflicting_long_name_and_pax_path)
{
	/* libarchive takes the outermost, Go the GNU long name */
	tarb b = {0};
	tb_pax(&b, 'x', "path", "from-pax", (size_t)8, NULL);
	tb_block(&b, "././@LongLink", 13, 'L', 10, NULL, 0644, GNU);
	tb_raw(&b, "from-gnu\0\0", 10);
	tb_pad(&b);
	tb_block(&b, "plain", 5, '0', 0, NULL, 0644, GNU);
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "conflicting extended headers");
}
END_TEST

/* Rewrites the checksum of the header block at b->data + off. */
static void tb_rechecksum(tarb *b, size_t off)
{
	unsigned char *h = (unsigned char *)b->data + off;
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

START_TEST(scan_joins_ustar_prefix_and_name)
{
	tarb b = {0};
	tb_file(&b, "name", "");
	memcpy(b.data + 345, "some/prefix", 11);
	tb_rechecksum(&b, 0);
	tb_end(&b);
	expect_listing(&b, "some/prefix/name file\n");
}
END_TEST

START_TEST(scan_rejects_prefix_that_go_would_ignore_or_cut)
{
	/* magic "ustar " without GNU's version: libarchive joins the prefix,
	 * Go reads a v7 header and does not */
	tarb b = {0};
	tb_file(&b, "name", "");
	memcpy(b.data + 257, "ustar 00", 8);
	memcpy(b.data + 345, "hidden", 6);
	tb_rechecksum(&b, 0);
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_UNSUPPORTED, "unsupported entry type");
	/* a star header: Go takes 131 bytes of the prefix, libarchive 155 */
	b = (tarb){0};
	tb_file(&b, "name", "");
	memset(b.data + 345, 'p', 140);
	memcpy(b.data + 508, "tar", 4);
	tb_rechecksum(&b, 0);
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_UNSUPPORTED, "unsupported entry type");
}
END_TEST

START_TEST(scan_rejects_negative_size)
{
	/* libarchive reads it as 0 and warns, Go refuses the header */
	tarb b = {0};
	tb_file(&b, "a", "");
	memset(b.data + 124, 0xff, 12);
	tb_rechecksum(&b, 0);
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "not a tar archive");
}
END_TEST

START_TEST(scan_rejects_long_chain_of_extended_headers)
{
	tarb b = {0};
	for (int i = 0; i < 9; i++)
		tb_pax(&b, 'g', "comment", "x", (size_t)1, NULL);
	tb_file(&b, "a", "");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "conflicting extended headers");
}
END_TEST

START_TEST(scan_rejects_malformed_pax_record)
{
	/* the record's last byte is its '=' (found by fuzzing: read past the body) */
	tarb b = {0};
	tb_block(&b, "PaxHeaders/x", 12, 'x', 7, NULL, 0644, USTAR);
	tb_raw(&b, "7 path=", 7);
	tb_pad(&b);
	tb_file(&b, "a", "");
	tb_end(&b);
	FAILS(&b, SCONIFY_ERR_INVALID, "not a tar archive");
}
END_TEST

/* ---- broken archives ----------------------------------------------------------------------------- */

START_TEST(scan_rejects_data_that_is_not_tar)
{
	char junk[2048];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 31 + 7);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_fails(scan(junk, sizeof(junk), NULL, &err), err, SCONIFY_ERR_INVALID, "not a tar archive");
	sconify_error_free(&err);
	/* gzip: layers reach the scanner decompressed */
	static const unsigned char gz[] = {0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3,
	                                   3,    0,    0,    0, 0, 0, 0, 0, 0, 0};
	ck_assert_fails(scan(gz, sizeof(gz), NULL, &err), err, SCONIFY_ERR_INVALID, "not a tar archive");
}
END_TEST

START_TEST(scan_rejects_truncated_archive)
{
	tarb b = {0};
	tb_file(&b, "a", "0123456789");
	tb_entry(&b, "b", '0', NULL, 0, NULL, 0644);
	cleanup_error sconify_error_t err = NULL;
	/* inside the data of "a" */
	ck_assert_fails(scan(b.data, 512 + 5, NULL, &err), err, SCONIFY_ERR_INVALID, "truncated");
	sconify_error_free(&err);
	/* inside the header of "b" */
	ck_assert_fails(scan(b.data, 1024 + 100, NULL, &err), err, SCONIFY_ERR_INVALID, "truncated");
	free(b.data);
}
END_TEST

START_TEST(scan_rejects_corrupt_header_checksum)
{
	tarb b = {0};
	tb_file(&b, "a", "");
	tb_file(&b, "b", "");
	tb_end(&b);
	b.data[512 + 10] ^= 1;
	FAILS(&b, SCONIFY_ERR_INVALID, "not a tar archive");
}
END_TEST

/* ---- plumbing ---------------------------------------------------------------------------------------- */

static int refuse(void *userdata, const sc_layer_entry *e, sconify_error_t *err)
{
	(void)userdata;
	if (strcmp(e->path, "b") == 0)
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "entry `b': refused by the callback");
	return 0;
}

START_TEST(scan_stops_at_callback_failure)
{
	tarb b = {0};
	tb_file(&b, "a", "");
	tb_file(&b, "b", "");
	tb_end(&b);
	cleanup_reader sc_reader *r = sc_mem_reader_new(b.data, b.len);
	sc_layer_scan_opts o = {.limits = &limits, .on_entry = refuse, .what = "layer L"};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_fails(sc_layer_scan(r, &o, NULL, NULL, &err), err, SCONIFY_ERR_INVALID,
	                "layer L: entry `b': refused by the callback");
	free(b.data);
}
END_TEST

struct failing_reader {
	sc_reader base;
	sc_reader *inner;
	size_t left;
};

static ssize_t failing_read(sc_reader *base, void *buf, size_t len, sconify_error_t *err)
{
	struct failing_reader *r = (struct failing_reader *)base;
	if (r->left == 0)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "blob x: digest mismatch");
	if (len > r->left)
		len = r->left;
	ssize_t n = sc_reader_read(r->inner, buf, len, err);
	if (n > 0)
		r->left -= (size_t)n;
	return n;
}

static void failing_free(sc_reader *base)
{
	struct failing_reader *r = (struct failing_reader *)base;
	sc_reader_free(r->inner);
	free(r);
}

static const struct sc_reader_ops failing_ops = {.read = failing_read, .free = failing_free};

START_TEST(scan_passes_reader_errors_unchanged)
{
	tarb b = {0};
	char *big = xcalloc(1, 3 << 20);
	tb_entry(&b, "big", '0', big, 3 << 20, NULL, 0644);
	tb_end(&b);
	free(big);
	struct failing_reader *fr = xzalloc(sizeof(*fr));
	fr->base.ops = &failing_ops;
	fr->inner = sc_mem_reader_new(b.data, b.len);
	fr->left = 2 << 20;
	cleanup_reader sc_reader *r = &fr->base;
	sc_layer_scan_opts o = {.limits = &limits, .what = "layer L"};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_fails(sc_layer_scan(r, &o, NULL, NULL, &err), err, SCONIFY_ERR_INTEGRITY,
	                "blob x: digest mismatch");
	ck_assert_str_eq(sconify_error_message(err), "blob x: digest mismatch");
	free(b.data);
}
END_TEST

START_TEST(scan_accepts_libarchive_written_layer)
{
	/* a layer as libarchive's own pax writer makes it, xattrs included */
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	size_t cap = 1 << 20, used = 0;
	char *buf = xmalloc(cap);
	ck_assert_int_eq(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "usr/bin/ping");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0755);
	archive_entry_set_size(e, 4);
	archive_entry_xattr_add_entry(e, "security.capability", "\x01\x00\x00\x02", 4);
	ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_data(a, "ping", 4), 4);
	archive_entry_free(e);
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	cleanup_buf sc_buf out;
	sc_buf_init(&out, SIZE_MAX);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan(buf, used, &out, &err), err);
	ck_assert_str_eq(out.data, "usr/bin/ping file size=4\n");
	free(buf);
}
END_TEST

/* ---- entry data ------------------------------------------------------------------------------------ */

/* Test content: no two offsets of a file (nor two files) alike over short runs. */
static char *pattern(size_t n, unsigned seed)
{
	char *p = xmalloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(i * 131 + (i >> 9) * 7 + seed * 17 + 1);
	return p;
}

#define MAX_ASKED 16

/* What the scan handed over: entries whose path starts with ask asked for
 * their data (on_entry returned SC_SCAN_WANT_DATA). */
struct collect {
	const char *ask;
	size_t fail_at; /* on_data fails on this call (from 1); 0: never */
	size_t entries, data_calls;
	size_t n; /* entries that asked */
	char *path[MAX_ASKED];
	uint64_t size[MAX_ASKED], data_offset[MAX_ASKED];
	char *data[MAX_ASKED];
	size_t got[MAX_ASKED], pieces[MAX_ASKED];
};

static void collect_free(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->path[i]);
		free(c->data[i]);
	}
}

/* The entry that asked last has all its data (none unless it is a regular
 * file) by the time the next entry is reported. */
static void assert_previous_complete(const struct collect *c)
{
	if (c->n > 0)
		ck_assert_msg(c->got[c->n - 1] == c->size[c->n - 1],
		              "`%s': %zu of %llu bytes before the next entry", c->path[c->n - 1],
		              c->got[c->n - 1], (unsigned long long)c->size[c->n - 1]);
}

static int ask_entry(void *userdata, const sc_layer_entry *e, sconify_error_t *err)
{
	(void)err;
	struct collect *c = userdata;
	c->entries++;
	assert_previous_complete(c);
	if (strncmp(e->path, c->ask, strlen(c->ask)) != 0)
		return 0;
	ck_assert_uint_lt(c->n, MAX_ASKED);
	size_t i = c->n++;
	c->path[i] = xstrdup(e->path);
	c->size[i] = e->type == SC_ENTRY_FILE ? e->size : 0;
	c->data_offset[i] = e->data_offset;
	c->data[i] = xmalloc(c->size[i] ? c->size[i] : 1);
	return SC_SCAN_WANT_DATA;
}

static int take_data(void *userdata, const void *buf, size_t len, sconify_error_t *err)
{
	struct collect *c = userdata;
	c->data_calls++;
	ck_assert_uint_gt(c->n, 0);
	size_t i = c->n - 1;
	ck_assert_uint_gt(len, 0);
	ck_assert_msg(c->got[i] + len <= c->size[i], "`%s': %zu bytes past its size %llu", c->path[i],
	              c->got[i] + len - (size_t)c->size[i], (unsigned long long)c->size[i]);
	memcpy(c->data[i] + c->got[i], buf, len);
	c->got[i] += len;
	c->pieces[i]++;
	if (c->data_calls == c->fail_at)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "`%s': refused by on_data", c->path[i]);
	return 0;
}

static int scan_collect(const tarb *b, struct collect *c, sc_digest *ret_diff_id, sconify_error_t *err)
{
	cleanup_reader sc_reader *r = sc_mem_reader_new(b->data, b->len);
	sc_layer_scan_opts o = {.limits = &limits,
	                        .on_entry = ask_entry,
	                        .on_data = take_data,
	                        .userdata = c,
	                        .what = "layer L"};
	return sc_layer_scan(r, &o, ret_diff_id, NULL, err);
}

/* Asked entry i is path, got exactly content, and its data_offset points at
 * content in the stream. */
static void assert_got(const struct collect *c, const tarb *b, size_t i, const char *path,
                       const char *content, size_t size)
{
	ck_assert_uint_lt(i, c->n);
	ck_assert_str_eq(c->path[i], path);
	ck_assert_uint_eq(c->got[i], size);
	ck_assert_msg(size == 0 || memcmp(c->data[i], content, size) == 0, "`%s': wrong bytes", path);
	ck_assert_uint_le(c->data_offset[i] + size, b->len);
	ck_assert_msg(size == 0 || memcmp(b->data + c->data_offset[i], content, size) == 0,
	              "`%s': data_offset does not point at its data", path);
}

/* The scanner reads 1 MiB chunks; libarchive's data blocks never span two. */
static const size_t data_sizes[] = {
        0, 1, 511, 512, 513, 100000, (1u << 20) - 1, (1u << 20) + 1, (5u << 20) + 333,
};

START_TEST(scan_on_data_receives_exactly_the_file_bytes)
{
	/* before and after: unasked files, the first of an odd size so that the
	 * asked file's data straddle the scanner's chunks differently per size */
	size_t size = data_sizes[_i];
	cleanup_free char *before = pattern(700001, 1), *content = pattern(size, 2),
	                  *after = pattern(3000, 3);
	tarb b = {0};
	tb_entry(&b, "before", '0', before, 700001, NULL, 0644);
	tb_entry(&b, "ask/x", '0', content, size, NULL, 0755);
	tb_entry(&b, "after", '0', after, 3000, NULL, 0644);
	tb_end(&b);
	struct collect c = {.ask = "ask/"};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan_collect(&b, &c, NULL, &err), err);
	ck_assert_uint_eq(c.entries, 3);
	ck_assert_uint_eq(c.n, 1);
	assert_got(&c, &b, 0, "ask/x", content, size);
	if (size == 0)
		ck_assert_uint_eq(c.data_calls, 0); /* nothing to hand over */
	if (size > (1u << 20))
		ck_assert_uint_gt(c.pieces[0], 1); /* the multi-block path was taken */
	collect_free(&c);
	free(b.data);
}
END_TEST

START_TEST(scan_on_data_gets_only_the_entries_that_asked)
{
	/* asked and unasked files interleaved, large ones among them: each asked
	 * file gets its own bytes, the others' data are skipped as before */
	cleanup_free char *big = pattern((3u << 20) + 5, 4), *skipped = pattern((2u << 20) + 77, 5);
	cleanup_free char *mid = pattern(4097, 6);
	tarb b = {0};
	tb_dir(&b, "ask/");
	tb_file(&b, "ask/one", "1");
	tb_entry(&b, "no/skipped", '0', skipped, (2u << 20) + 77, NULL, 0755);
	tb_entry(&b, "ask/big", '0', big, (3u << 20) + 5, NULL, 0755);
	tb_file(&b, "no/small", "not asked");
	tb_entry(&b, "ask/mid", '0', mid, 4097, NULL, 0644);
	tb_entry(&b, "no/big", '0', big, (3u << 20) + 5, NULL, 0644);
	tb_file(&b, "ask/last", "the end");
	tb_end(&b);
	struct collect c = {.ask = "ask"}; /* the directory is "ask" */
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan_collect(&b, &c, NULL, &err), err);
	ck_assert_uint_eq(c.entries, 8);
	ck_assert_uint_eq(c.n, 5);
	assert_got(&c, &b, 0, "ask", NULL, 0); /* a directory: no data */
	assert_got(&c, &b, 1, "ask/one", "1", 1);
	assert_got(&c, &b, 2, "ask/big", big, (3u << 20) + 5);
	assert_got(&c, &b, 3, "ask/mid", mid, 4097);
	assert_got(&c, &b, 4, "ask/last", "the end", 7);
	size_t pieces = 0;
	for (size_t i = 0; i < c.n; i++)
		pieces += c.pieces[i];
	ck_assert_uint_eq(c.data_calls, pieces);
	collect_free(&c);
	free(b.data);
}
END_TEST

START_TEST(scan_on_data_is_not_called_for_entries_without_data)
{
	/* asking for a directory's, a link's, a device's or an empty file's
	 * data is harmless: there is none */
	tarb b = {0};
	tb_file(&b, "ask/target", "");
	tb_dir(&b, "ask/dir/");
	tb_symlink(&b, "ask/sym", "target");
	tb_link(&b, "ask/hard", "ask/target");
	tb_entry(&b, "ask/null", '3', NULL, 0, NULL, 0666);
	tb_entry(&b, "ask/fifo", '6', NULL, 0, NULL, 0600);
	tb_file(&b, "ask/.wh.gone", "");
	tb_file(&b, "ask/after", "data after them");
	tb_end(&b);
	struct collect c = {.ask = "ask/"};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan_collect(&b, &c, NULL, &err), err);
	ck_assert_uint_eq(c.n, 8);
	for (size_t i = 0; i < 7; i++)
		ck_assert_msg(c.pieces[i] == 0, "`%s' got data", c.path[i]);
	assert_got(&c, &b, 7, "ask/after", "data after them", 15);
	ck_assert_uint_eq(c.data_calls, 1);
	collect_free(&c);
	free(b.data);
}
END_TEST

static int want_everything(void *userdata, const sc_layer_entry *e, sconify_error_t *err)
{
	record(userdata, e, err);
	return SC_SCAN_WANT_DATA;
}

START_TEST(scan_without_on_data_ignores_want_data)
{
	/* on_data NULL: asking changes nothing, the listing and the diff_id are
	 * the same as without asking */
	cleanup_free char *big = pattern((2u << 20) + 9, 7);
	tarb b = {0};
	tb_file(&b, "a", "abc");
	tb_entry(&b, "big", '0', big, (2u << 20) + 9, NULL, 0755);
	tb_file(&b, "z", "xyz");
	tb_end(&b);
	cleanup_buf sc_buf out;
	sc_buf_init(&out, SIZE_MAX);
	cleanup_reader sc_reader *r = sc_mem_reader_new(b.data, b.len);
	sc_layer_scan_opts o = {.limits = &limits, .on_entry = want_everything, .userdata = &out};
	sc_digest diff_id, want;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_layer_scan(r, &o, &diff_id, NULL, &err), err);
	ck_assert_str_eq(out.data, "a file size=3\nbig file size=2097161\nz file size=3\n");
	sc_digest_of(SC_SHA256, b.data, b.len, &want);
	ck_assert_str_eq(diff_id.str, want.str);
	free(b.data);
}
END_TEST

START_TEST(scan_reading_data_keeps_diff_id_and_later_offsets)
{
	/* the bytes on_data took still count in the diff_id, and the entries
	 * after a large asked file are found where they are */
	cleanup_free char *big = pattern((4u << 20) + 1000, 8), *tail = pattern(1234, 9);
	tarb b = {0};
	tb_entry(&b, "ask/big", '0', big, (4u << 20) + 1000, NULL, 0755);
	tb_entry(&b, "ask/tail", '0', tail, 1234, NULL, 0644);
	tb_end(&b);
	tb_raw(&b, NULL, 10240 - b.len % 10240);
	struct collect c = {.ask = "ask/"};
	sc_digest diff_id, want;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(scan_collect(&b, &c, &diff_id, &err), err);
	sc_digest_of(SC_SHA256, b.data, b.len, &want);
	ck_assert_str_eq(diff_id.str, want.str);
	assert_got(&c, &b, 0, "ask/big", big, (4u << 20) + 1000);
	assert_got(&c, &b, 1, "ask/tail", tail, 1234);
	collect_free(&c);
	free(b.data);
}
END_TEST

START_TEST(scan_stops_at_on_data_failure)
{
	/* the first piece of a small file, then the second piece of a large
	 * one: the scan fails with on_data's error and reports nothing after */
	cleanup_free char *big = pattern((3u << 20) + 1, 10);
	tarb b = {0};
	tb_file(&b, "ask/a", "first");
	tb_entry(&b, "ask/big", '0', big, (3u << 20) + 1, NULL, 0755);
	tb_file(&b, "ask/never", "not reached");
	tb_end(&b);
	struct collect c = {.ask = "ask/", .fail_at = 1};
	cleanup_error sconify_error_t err = NULL;
	ck_assert_fails(scan_collect(&b, &c, NULL, &err), err, SCONIFY_ERR_INTEGRITY,
	                "layer L: `ask/a': refused by on_data");
	ck_assert_uint_eq(c.entries, 1);
	ck_assert_uint_eq(c.data_calls, 1);
	collect_free(&c);
	sconify_error_free(&err);

	struct collect c2 = {.ask = "ask/", .fail_at = 3};
	ck_assert_fails(scan_collect(&b, &c2, NULL, &err), err, SCONIFY_ERR_INTEGRITY,
	                "layer L: `ask/big': refused by on_data");
	ck_assert_uint_eq(c2.entries, 2);
	ck_assert_uint_eq(c2.data_calls, 3);
	ck_assert_uint_eq(c2.pieces[1], 2);
	ck_assert_uint_lt(c2.got[1], (3u << 20) + 1);
	collect_free(&c2);
	free(b.data);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("layer-scan");
	TCase *tc = tcase_create("scan");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, scan_reports_every_entry_type);
	tcase_add_test(tc, scan_reports_mode_with_setuid_bits);
	tcase_add_test(tc, scan_normalises_paths);
	tcase_add_test(tc, scan_tee_receives_exact_input_and_diff_id_is_its_sha256);
	tcase_add_test(tc, scan_accepts_empty_stream_as_empty_layer);
	tcase_add_test(tc, scan_accepts_trailing_zero_padding_up_to_the_cap);
	tcase_add_test(tc, scan_rejects_default_cap_of_trailing_zeros_plus_one);
	tcase_add_test(tc, scan_rejects_entry_hidden_after_single_zero_block);
	tcase_add_test(tc, scan_rejects_nonzero_bytes_after_end_marker);
	tcase_add_test(tc, scan_accepts_archive_without_end_marker);
	tcase_add_test(tc, scan_accepts_pax_global_header);
	tcase_add_test(tc, scan_reads_gnu_long_names);
	tcase_add_test(tc, scan_keeps_utf8_pax_names_as_bytes);
	tcase_add_test(tc, scan_accepts_old_regular_typeflag_with_trailing_slash_as_directory);
	tcase_add_test(tc, scan_classifies_whiteouts);
	tcase_add_loop_test(tc, scan_rejects_whiteout_naming_no_file, 0,
	                    sizeof(bad_whiteouts) / sizeof(bad_whiteouts[0]));
	tcase_add_test(tc, scan_rejects_whiteout_with_dotdot_in_its_path);
	tcase_add_test(tc, scan_rejects_absolute_path);
	tcase_add_test(tc, scan_rejects_dotdot_component);
	tcase_add_test(tc, scan_rejects_symlink_named_dotdot);
	tcase_add_test(tc, scan_rejects_empty_path);
	tcase_add_test(tc, scan_rejects_pax_path_of_one_mib);
	tcase_add_test(tc, scan_rejects_path_longer_than_the_limit);
	tcase_add_test(tc, scan_rejects_path_300_components_deep);
	tcase_add_test(tc, scan_rejects_too_many_entries);
	tcase_add_test(tc, scan_rejects_root_that_is_not_a_directory);
	tcase_add_test(tc, scan_rejects_empty_symlink_target);
	tcase_add_loop_test(tc, scan_rejects_symlink_target_escaping_the_root, 0,
	                    sizeof(escaping_symlinks) / sizeof(escaping_symlinks[0]));
	tcase_add_test(tc, scan_accepts_symlink_targets_inside_the_root);
	tcase_add_test(tc, scan_rejects_hardlink_with_absolute_target);
	tcase_add_test(tc, scan_rejects_hardlink_with_dotdot_target);
	tcase_add_test(tc, scan_rejects_hardlink_to_the_root);
	tcase_add_test(tc, scan_rejects_absolute_hardlink_name_of_symlink_chmod_breakout);
	tcase_add_test(tc, scan_rejects_unknown_typeflag);
	tcase_add_test(tc, scan_rejects_volume_header);
	tcase_add_test(tc, scan_rejects_gnu_sparse_entry);
	tcase_add_test(tc, scan_rejects_pax_sparse_entry);
	tcase_add_test(tc, scan_rejects_pax_path_with_nul);
	tcase_add_test(tc, scan_rejects_pax_size_on_directory);
	tcase_add_test(tc, scan_rejects_hardlink_with_data);
	tcase_add_test(tc, scan_rejects_regular_typeflag_with_trailing_slash);
	tcase_add_test(tc, scan_rejects_conflicting_long_name_and_pax_path);
	tcase_add_test(tc, scan_joins_ustar_prefix_and_name);
	tcase_add_test(tc, scan_rejects_prefix_that_go_would_ignore_or_cut);
	tcase_add_test(tc, scan_rejects_malformed_pax_record);
	tcase_add_test(tc, scan_rejects_negative_size);
	tcase_add_test(tc, scan_rejects_long_chain_of_extended_headers);
	tcase_add_test(tc, scan_rejects_data_that_is_not_tar);
	tcase_add_test(tc, scan_rejects_truncated_archive);
	tcase_add_test(tc, scan_rejects_corrupt_header_checksum);
	tcase_add_test(tc, scan_stops_at_callback_failure);
	tcase_add_test(tc, scan_passes_reader_errors_unchanged);
	tcase_add_test(tc, scan_accepts_libarchive_written_layer);
	tcase_add_loop_test(tc, scan_on_data_receives_exactly_the_file_bytes, 0,
	                    sizeof(data_sizes) / sizeof(data_sizes[0]));
	tcase_add_test(tc, scan_on_data_gets_only_the_entries_that_asked);
	tcase_add_test(tc, scan_on_data_is_not_called_for_entries_without_data);
	tcase_add_test(tc, scan_without_on_data_ignores_want_data);
	tcase_add_test(tc, scan_reading_data_keeps_diff_id_and_later_offsets);
	tcase_add_test(tc, scan_stops_at_on_data_failure);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
