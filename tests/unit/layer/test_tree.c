/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The final file tree: layers written here header by header (the same small
 * writer as test_scan.c) and applied in order; the walk's output is the
 * assertion. Names of containerd's archive/tar_test.go cases are given where
 * a test ports one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "layer/tree.h"
#include "support.h"
#include "tarbuild.h"

/* ---- applying layers and looking at the result ------------------------------ */

static sconify_limits_t limits;
static sc_tree *tree;

static void setup(void)
{
	memset(&limits, 0, sizeof(limits));
	sc_limits_fill(&limits);
	tree = sc_tree_new(&limits);
}

static void teardown(void)
{
	sc_tree_free(tree);
	tree = NULL;
}

/* Applies b as the next layer and frees it. */
static int add(tarb *b, sconify_error_t *err)
{
	tb_end(b);
	cleanup_reader sc_reader *r = sc_mem_reader_new(b->data, b->len);
	int ret = sc_tree_add_layer(tree, r, "layer L", err);
	free(b->data);
	*b = (tarb){0};
	return ret;
}

#define ADD_OK(b)                                          \
	do {                                               \
		cleanup_error sconify_error_t err_ = NULL; \
		ck_assert_ok(add((b), &err_), err_);       \
	} while (0)

#define ADD_FAILS(b, kind, needle)                                        \
	do {                                                              \
		cleanup_error sconify_error_t err_ = NULL;                \
		ck_assert_fails(add((b), &err_), err_, (kind), (needle)); \
	} while (0)

static const char *type_name(sc_entry_type t)
{
	static const char *names[] = {"file", "dir", "symlink", "hardlink", "char", "block", "fifo"};
	return names[t];
}

/* "path type mode L<layer> [-> link] [size] [nlink=n]" per node */
static int dump_item(void *userdata, const sc_tree_item *it, sconify_error_t *err)
{
	(void)err;
	sc_buf *b = userdata;
	sc_buf_printf(b, "%s %s %o L%u", it->path[0] ? it->path : ".", type_name(it->type), it->mode,
	              it->layer);
	if (it->link)
		sc_buf_printf(b, " -> %s", it->link);
	if (it->type == SC_ENTRY_FILE)
		sc_buf_printf(b, " %llu", (unsigned long long)it->size);
	if (it->nlink > 1)
		sc_buf_printf(b, " nlink=%u", it->nlink);
	sc_buf_putc(b, '\n');
	return 0;
}

static void expect_walk(const char *want)
{
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_tree_walk(tree, dump_item, &b, &err), err);
	ck_assert_str_eq(b.data, want);
}

static bool exists(const char *path)
{
	return sc_tree_lookup(tree, path) != NULL;
}

static uint64_t size_of(const char *path)
{
	const sc_tree_item *it = sc_tree_lookup(tree, path);
	ck_assert_msg(it != NULL, "`%s' is missing", path);
	return it->size;
}

static bool same_inode(const char *a, const char *b)
{
	const sc_tree_item *ia = sc_tree_lookup(tree, a);
	ck_assert_msg(ia != NULL, "`%s' is missing", a);
	uint64_t inode = ia->inode;
	const sc_tree_item *ib = sc_tree_lookup(tree, b);
	ck_assert_msg(ib != NULL, "`%s' is missing", b);
	return ib->inode == inode;
}

static void expect_resolve(const char *path, const char *want)
{
	cleanup_free char *got = NULL;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_tree_resolve(tree, path, &got, &err), err);
	ck_assert_str_eq(got, want);
}

/* ---- containerd TestBreakouts, with this tree's rules ------------------------ */

START_TEST(tree_file_through_absolute_symlink_lands_inside_root)
{
	/* SymlinkAbsolute (its absolute entry name fails in the scanner) */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_symlink(&b, "localetc", "/etc");
	tb_file(&b, "localetc/unbroken", "unbroken");
	ADD_OK(&b);
	ck_assert_uint_eq(size_of("etc/unbroken"), 8);
	ck_assert(!exists("localetc/unbroken"));
}
END_TEST

START_TEST(tree_absolute_symlink_with_dotdot_stays_inside_root)
{
	/* SymlinkUpAndOut */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_dir(&b, "dummy");
	tb_symlink(&b, "localetc", "/dummy/../etc");
	tb_file(&b, "localetc/unbroken", "unbroken");
	ADD_OK(&b);
	ck_assert_uint_eq(size_of("etc/unbroken"), 8);
}
END_TEST

START_TEST(tree_symlink_chains_resolve_inside_root)
{
	/* SymlinkMultipleAbsolute and SymlinkMultipleRelative */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_dir(&b, "dummy");
	tb_symlink(&b, "dummy/etc", "/etc");
	tb_symlink(&b, "localetc", "/dummy/etc");
	tb_symlink(&b, "localetc2", "./dummy/etc");
	tb_file(&b, "dummy/etc/unbroken", "unbroken");
	tb_file(&b, "localetc/a", "a");
	tb_file(&b, "localetc2/b", "b");
	ADD_OK(&b);
	ck_assert(exists("etc/unbroken") && exists("etc/a") && exists("etc/b"));
	expect_resolve("localetc2/x", "etc/x");
}
END_TEST

START_TEST(tree_file_through_symlink_replaces_lower_file)
{
	/* SymlinkEmptyFile, as two layers */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_file(&b, "etc/emptied", "notempty");
	tb_symlink(&b, "localetc", "/etc");
	ADD_OK(&b);
	tb_file(&b, "localetc/emptied", "");
	ADD_OK(&b);
	ck_assert_uint_eq(size_of("etc/emptied"), 0);
}
END_TEST

START_TEST(tree_rejects_duplicate_through_symlink_in_one_layer)
{
	/* SymlinkEmptyFile as containerd writes it: one layer names etc/emptied twice */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_file(&b, "etc/emptied", "notempty");
	tb_symlink(&b, "localetc", "/etc");
	tb_file(&b, "localetc/emptied", "");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "duplicate entry");
}
END_TEST

START_TEST(tree_hardlink_through_symlinked_parent_shares_inode)
{
	/* HardlinkAbsolute with a relative link name */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_file(&b, "etc/passwd", "inside");
	tb_symlink(&b, "localetc", "/etc");
	tb_link(&b, "localpasswd", "localetc/passwd");
	ADD_OK(&b);
	ck_assert(same_inode("localpasswd", "etc/passwd"));
	ck_assert_uint_eq(sc_tree_lookup(tree, "etc/passwd")->nlink, 2);
}
END_TEST

START_TEST(tree_hardlink_into_slash_ended_directory)
{
	/* SymlinkSlashEnded */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_file(&b, "etc/passwd", "inside");
	tb_dir(&b, "localetc/");
	tb_link(&b, "localetc/localpasswd", "etc/passwd");
	ADD_OK(&b);
	ck_assert(same_inode("localetc/localpasswd", "etc/passwd"));
}
END_TEST

START_TEST(tree_symlink_over_directory_redirects_later_entries)
{
	/* SymlinkOverrideDirectory */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_file(&b, "etc/passwd", "inside");
	tb_dir(&b, "localetc");
	tb_file(&b, "localetc/old", "old");
	ADD_OK(&b);
	tb_symlink(&b, "localetc", "/etc");
	tb_link(&b, "localetc/localpasswd", "etc/passwd");
	ADD_OK(&b);
	ck_assert(same_inode("etc/localpasswd", "etc/passwd"));
	ck_assert(!exists("localetc/old"));
	ck_assert_int_eq(sc_tree_lookup(tree, "localetc")->type, SC_ENTRY_SYMLINK);
}
END_TEST

START_TEST(tree_directory_over_symlink_replaces_the_link)
{
	/* DirectoryOverrideSymlink */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_file(&b, "etc/passwd", "inside");
	tb_symlink(&b, "localetc", "/etc");
	ADD_OK(&b);
	tb_dir(&b, "localetc/");
	tb_link(&b, "localetc/localpasswd", "etc/passwd");
	ADD_OK(&b);
	ck_assert_int_eq(sc_tree_lookup(tree, "localetc")->type, SC_ENTRY_DIR);
	ck_assert(same_inode("localetc/localpasswd", "etc/passwd"));
	ck_assert(!exists("etc/localpasswd"));
}
END_TEST

START_TEST(tree_directory_over_symlink_keeps_hardlink_made_through_it)
{
	/* DirectoryOverrideSymlinkAndHardlink */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_file(&b, "etc/passwd", "inside");
	tb_symlink(&b, "localetc", "etc");
	tb_link(&b, "localetc/localpasswd", "etc/passwd");
	ADD_OK(&b);
	tb_dir(&b, "localetc/");
	tb_file(&b, "localetc/localpasswd", "different");
	ADD_OK(&b);
	ck_assert(!same_inode("localetc/localpasswd", "etc/passwd"));
	ck_assert(same_inode("etc/localpasswd", "etc/passwd"));
	ck_assert_uint_eq(size_of("localetc/localpasswd"), 9);
}
END_TEST

START_TEST(tree_hardlink_to_symlink_shares_the_symlink)
{
	/* HardlinkSymlinkAbsolute and HardlinkSymlinkBeforeCreateTarget: the
	 * new name is the symlink itself, never what it points to */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_symlink(&b, "localpasswd", "/etc/passwd");
	tb_link(&b, "localpasswd-dup", "localpasswd");
	tb_file(&b, "etc/passwd", "after");
	tb_symlink(&b, "passwdlink", "/etc/passwd");
	tb_link(&b, "localpasswd2", "passwdlink");
	ADD_OK(&b);
	ck_assert(same_inode("localpasswd-dup", "localpasswd"));
	ck_assert(same_inode("localpasswd2", "passwdlink"));
	const sc_tree_item *it = sc_tree_lookup(tree, "localpasswd-dup");
	ck_assert_int_eq(it->type, SC_ENTRY_SYMLINK);
	ck_assert_str_eq(it->link, "/etc/passwd");
	/* resolving through the shared link reaches the file it names */
	cleanup_free char *got = NULL;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_fails(sc_tree_resolve(tree, "localpasswd-dup/x", &got, &err), err, SCONIFY_ERR_INVALID,
	                "parent is not a directory (at `etc/passwd')");
}
END_TEST

START_TEST(tree_hardlink_to_outside_symlink_never_follows_it)
{
	/* HardlinkSymlinkChmod (CVE-2021-32760) with names inside the root */
	tarb b = {0};
	tb_symlink(&b, "also-exists-outside-root", "/tmp/td/perm400");
	tb_link(&b, "sketchylink", "also-exists-outside-root");
	ADD_OK(&b);
	const sc_tree_item *it = sc_tree_lookup(tree, "sketchylink");
	ck_assert_int_eq(it->type, SC_ENTRY_SYMLINK);
	ck_assert_uint_eq(it->nlink, 2);
	ck_assert(!exists("tmp"));
}
END_TEST

/* ---- whiteouts (security.md §1.2) ------------------------------------------------- */

static void lower_etc(const char *localetc_target)
{
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_file(&b, "etc/passwd", "all users");
	tb_file(&b, "etc/whitedout", "ahhhh whiteout");
	if (localetc_target)
		tb_symlink(&b, "localetc", localetc_target);
	ADD_OK(&b);
}

START_TEST(tree_whiteout_of_symlink_removes_only_the_link)
{
	/* WhiteoutSymlink */
	lower_etc("/etc");
	tarb b = {0};
	tb_file(&b, ".wh.localetc", "");
	ADD_OK(&b);
	ck_assert(!exists("localetc"));
	ck_assert_uint_eq(size_of("etc/passwd"), 9);
	ck_assert(exists("etc/whitedout"));
}
END_TEST

START_TEST(tree_whiteout_through_symlinked_parent_removes_target)
{
	/* WhiteoutSymlinkPath */
	lower_etc("/etc");
	tarb b = {0};
	tb_file(&b, "localetc/.wh.whitedout", "");
	ADD_OK(&b);
	ck_assert(!exists("etc/whitedout"));
	ck_assert(exists("etc/passwd"));
	ck_assert(exists("localetc"));
}
END_TEST

START_TEST(tree_whiteout_prefix_on_a_directory_is_data)
{
	/* WhiteoutDirectoryName */
	lower_etc("/etc");
	tarb b = {0};
	tb_file(&b, ".wh.etc/somefile", "non-empty");
	ADD_OK(&b);
	ck_assert(exists("etc/passwd"));
	ck_assert_uint_eq(size_of(".wh.etc/somefile"), 9);
}
END_TEST

START_TEST(tree_whiteout_under_dead_symlink_parent_is_noop)
{
	/* WhiteoutDeadSymlinkParent */
	lower_etc("/dne");
	tarb b = {0};
	tb_file(&b, "localetc/.wh.etc", "");
	ADD_OK(&b);
	ck_assert(exists("etc/passwd"));
	ck_assert(!exists("dne"));
}
END_TEST

START_TEST(tree_whiteout_of_missing_name_is_noop)
{
	lower_etc(NULL);
	tarb b = {0};
	tb_file(&b, "etc/.wh.nothing", "");
	tb_file(&b, "nowhere/.wh.nothing", "");
	ADD_OK(&b);
	ck_assert(exists("etc/passwd"));
	ck_assert(!exists("nowhere"));
}
END_TEST

START_TEST(tree_whiteout_removes_directory_and_subtree)
{
	lower_etc(NULL);
	tarb b = {0};
	tb_file(&b, ".wh.etc", "");
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n");
	ck_assert_uint_eq(sc_tree_count(tree), 1);
}
END_TEST

START_TEST(tree_whiteout_of_own_layer_entry_is_duplicate)
{
	tarb b = {0};
	tb_file(&b, "a", "");
	tb_file(&b, ".wh.a", "");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "duplicate entry");
}
END_TEST

START_TEST(tree_whiteout_of_directory_holding_own_layer_entry_is_duplicate)
{
	lower_etc(NULL);
	tarb b = {0};
	tb_file(&b, "etc/new", "");
	tb_file(&b, ".wh.etc", "");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "duplicate entry");
}
END_TEST

START_TEST(tree_whiteout_before_entry_recreates_the_path)
{
	lower_etc(NULL);
	tarb b = {0};
	tb_file(&b, ".wh.etc", "");
	tb_dir(&b, "etc");
	tb_file(&b, "etc/fresh", "");
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n"
	            "etc dir 755 L1\n"
	            "etc/fresh file 644 L1 0\n");
}
END_TEST

START_TEST(tree_whiteout_under_file_parent_fails)
{
	lower_etc(NULL);
	tarb b = {0};
	tb_file(&b, "etc/passwd/.wh.x", "");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "parent is not a directory");
}
END_TEST

START_TEST(tree_meta_whiteouts_leave_no_trace)
{
	tarb b = {0};
	tb_file(&b, ".wh..wh.plnk", "");
	tb_dir(&b, ".wh..wh.aufs");
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n");
}
END_TEST

/* ---- opaque directories ------------------------------------------------------------------ */

static void lower_tree(void)
{
	tarb b = {0};
	tb_dir(&b, "d");
	tb_file(&b, "d/old", "old");
	tb_dir(&b, "d/sub");
	tb_file(&b, "d/sub/deep", "deep");
	tb_dir(&b, "d/keep");
	tb_file(&b, "d/keep/lower", "lower");
	tb_file(&b, "other", "other");
	ADD_OK(&b);
}

static const char *opaque_result = ". dir 755 L0\n"
                                   "d dir 755 L0\n"
                                   "d/keep dir 755 L1\n"
                                   "d/keep/upper file 644 L1 5\n"
                                   "d/new file 644 L1 3\n"
                                   "other file 644 L0 5\n";

START_TEST(tree_opaque_marker_before_siblings_hides_lower_children)
{
	lower_tree();
	tarb b = {0};
	tb_file(&b, "d/.wh..wh..opq", "");
	tb_file(&b, "d/new", "new");
	tb_file(&b, "d/keep/upper", "upper");
	ADD_OK(&b);
	expect_walk(opaque_result);
}
END_TEST

START_TEST(tree_opaque_marker_after_siblings_still_hides_lower_children)
{
	lower_tree();
	tarb b = {0};
	tb_file(&b, "d/new", "new");
	tb_file(&b, "d/keep/upper", "upper");
	tb_file(&b, "d/.wh..wh..opq", "");
	ADD_OK(&b);
	expect_walk(opaque_result);
}
END_TEST

START_TEST(tree_opaque_keeps_directories_the_layer_names)
{
	lower_tree();
	tarb b = {0};
	tb_dir(&b, "d/sub");
	tb_file(&b, "d/.wh..wh..opq", "");
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n"
	            "d dir 755 L0\n"
	            "d/sub dir 755 L0\n"
	            "other file 644 L0 5\n");
}
END_TEST

START_TEST(tree_opaque_marker_on_missing_directory_creates_it)
{
	tarb b = {0};
	tb_file(&b, "a/b/.wh..wh..opq", "");
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n"
	            "a dir 755 L0\n"
	            "a/b dir 755 L0\n");
}
END_TEST

START_TEST(tree_opaque_marker_through_symlink_applies_to_target)
{
	lower_tree();
	tarb b = {0};
	tb_symlink(&b, "link", "d");
	ADD_OK(&b);
	tb_file(&b, "link/.wh..wh..opq", "");
	ADD_OK(&b);
	ck_assert(exists("link") && exists("d") && !exists("d/old") && !exists("d/keep"));
}
END_TEST

START_TEST(tree_opaque_root_hides_everything_lower)
{
	lower_tree();
	tarb b = {0};
	tb_file(&b, ".wh..wh..opq", "");
	tb_file(&b, "fresh", "");
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n"
	            "fresh file 644 L1 0\n");
}
END_TEST

/* ---- replacing, duplicates, parents ----------------------------------------------------- */

START_TEST(tree_directory_over_directory_keeps_children_and_updates_attributes)
{
	lower_tree();
	tarb b = {0};
	tb_entry(&b, "d", '5', NULL, 0, NULL, 0700);
	ADD_OK(&b);
	const sc_tree_item *it = sc_tree_lookup(tree, "d");
	ck_assert_uint_eq(it->mode, 0700);
	ck_assert_uint_eq(it->layer, 0);
	ck_assert(exists("d/sub/deep"));
}
END_TEST

START_TEST(tree_file_over_directory_removes_its_subtree)
{
	lower_tree();
	tarb b = {0};
	tb_file(&b, "d", "now a file");
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n"
	            "d file 644 L1 10\n"
	            "other file 644 L0 5\n");
}
END_TEST

START_TEST(tree_rejects_duplicate_file_in_one_layer)
{
	tarb b = {0};
	tb_file(&b, "a", "1");
	tb_file(&b, "a", "2");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "duplicate entry");
	sc_tree_free(tree);
	tree = sc_tree_new(&limits);
	tb_dir(&b, "a");
	tb_file(&b, "a", "2");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "duplicate entry");
	sc_tree_free(tree);
	tree = sc_tree_new(&limits);
	tb_file(&b, "a/b", "");
	tb_file(&b, "a", "");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "duplicate entry");
}
END_TEST

START_TEST(tree_accepts_duplicate_directory_in_one_layer)
{
	tarb b = {0};
	tb_dir(&b, "a");
	tb_file(&b, "a/x", "");
	tb_entry(&b, "a/", '5', NULL, 0, NULL, 0711);
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n"
	            "a dir 711 L0\n"
	            "a/x file 644 L0 0\n");
}
END_TEST

START_TEST(tree_creates_missing_parents_as_implicit_directories)
{
	tarb b = {0};
	tb_file(&b, "x", "");
	ADD_OK(&b);
	tb_file(&b, "a/b/c", "c");
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n"
	            "a dir 755 L1\n"
	            "a/b dir 755 L1\n"
	            "a/b/c file 644 L1 1\n"
	            "x file 644 L0 0\n");
	const sc_tree_item *it = sc_tree_lookup(tree, "a/b");
	ck_assert_uint_eq(it->uid, 0);
	ck_assert_int_eq(it->mtime, 0);
}
END_TEST

START_TEST(tree_rejects_entry_under_a_file)
{
	tarb b = {0};
	tb_file(&b, "f", "");
	tb_file(&b, "f/x", "");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "parent is not a directory");
}
END_TEST

START_TEST(tree_rejects_symlink_loop)
{
	tarb b = {0};
	tb_symlink(&b, "a", "b");
	tb_symlink(&b, "b", "a");
	tb_file(&b, "a/x", "");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "too many levels of symbolic links");
}
END_TEST

START_TEST(tree_follows_forty_symlinks_but_not_forty_one)
{
	char name[16], target[16];
	tarb b = {0};
	tb_dir(&b, "d");
	tb_symlink(&b, "l0", "d");
	for (int i = 1; i <= 40; i++) {
		snprintf(name, sizeof(name), "l%d", i);
		snprintf(target, sizeof(target), "l%d", i - 1);
		tb_symlink(&b, name, target);
	}
	tb_file(&b, "l39/ok", "");
	ADD_OK(&b);
	ck_assert(exists("d/ok"));
	tb_file(&b, "l40/no", "");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "too many levels of symbolic links");
}
END_TEST

START_TEST(tree_dotdot_at_the_root_stays_at_the_root)
{
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_symlink(&b, "up", "/../../../etc");
	tb_dir(&b, "a");
	tb_symlink(&b, "a/up", "../etc");
	tb_file(&b, "up/one", "");
	tb_file(&b, "a/up/two", "");
	ADD_OK(&b);
	ck_assert(exists("etc/one") && exists("etc/two"));
	expect_resolve("/../../up/x", "etc/x");
}
END_TEST

START_TEST(tree_resolves_symlink_targets_lexically_like_containerd)
{
	/* "d/../etc" is cleaned to "etc" before d is looked at, as
	 * containerd's filepath.Join does; the kernel would follow d first */
	tarb b = {0};
	tb_dir(&b, "etc");
	tb_dir(&b, "x/y");
	tb_symlink(&b, "d", "x/y");
	tb_symlink(&b, "l", "d/../etc");
	ADD_OK(&b);
	expect_resolve("l/f", "etc/f");
}
END_TEST

START_TEST(tree_writes_through_usrmerge_symlink)
{
	/* distroless/usrmerge: lib -> usr/lib in a lower layer */
	tarb b = {0};
	tb_dir(&b, "usr/lib");
	tb_symlink(&b, "lib", "usr/lib");
	tb_symlink(&b, "lib64", "/usr/lib64");
	ADD_OK(&b);
	tb_dir(&b, "lib/");
	tb_file(&b, "lib/x86_64-linux-gnu/libc.so.6", "libc");
	tb_file(&b, "lib64/ld-linux-x86-64.so.2", "ld");
	ADD_OK(&b);
	/* "lib/" as a directory entry replaces the link (final component) */
	ck_assert_int_eq(sc_tree_lookup(tree, "lib")->type, SC_ENTRY_DIR);
	ck_assert(exists("lib/x86_64-linux-gnu/libc.so.6"));
	ck_assert(exists("usr/lib64/ld-linux-x86-64.so.2"));
}
END_TEST

START_TEST(tree_hardlink_to_missing_target_fails)
{
	tarb b = {0};
	tb_link(&b, "l", "nothing");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "hard link target `nothing' is missing");
	sc_tree_free(tree);
	tree = sc_tree_new(&limits);
	tb_symlink(&b, "dead", "/nowhere");
	tb_link(&b, "l", "dead/x");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "is missing");
}
END_TEST

START_TEST(tree_hardlink_to_directory_fails)
{
	tarb b = {0};
	tb_dir(&b, "d");
	tb_link(&b, "l", "d");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "hard link target `d' is a directory");
}
END_TEST

START_TEST(tree_hardlink_to_itself_fails)
{
	tarb b = {0};
	tb_file(&b, "a", "");
	ADD_OK(&b);
	tb_link(&b, "a", "a");
	ADD_FAILS(&b, SCONIFY_ERR_INVALID, "is missing");
}
END_TEST

START_TEST(tree_hardlink_names_survive_each_other)
{
	tarb b = {0};
	tb_file(&b, "a", "content");
	tb_link(&b, "b", "a");
	tb_link(&b, "c", "b");
	ADD_OK(&b);
	ck_assert(same_inode("a", "b") && same_inode("a", "c"));
	ck_assert_uint_eq(sc_tree_lookup(tree, "c")->nlink, 3);
	tb_file(&b, ".wh.a", "");
	tb_file(&b, "b", "replaced");
	ADD_OK(&b);
	ck_assert(!exists("a"));
	ck_assert(!same_inode("b", "c"));
	ck_assert_uint_eq(sc_tree_lookup(tree, "c")->nlink, 1);
	ck_assert_uint_eq(size_of("c"), 7);
}
END_TEST

START_TEST(tree_hardlink_over_directory_holding_its_target)
{
	tarb b = {0};
	tb_dir(&b, "d");
	tb_file(&b, "d/f", "f");
	ADD_OK(&b);
	tb_link(&b, "d", "d/f");
	ADD_OK(&b);
	const sc_tree_item *it = sc_tree_lookup(tree, "d");
	ck_assert_int_eq(it->type, SC_ENTRY_FILE);
	ck_assert_uint_eq(it->nlink, 1);
	ck_assert_uint_eq(it->size, 1);
}
END_TEST

START_TEST(tree_rejects_too_many_nodes)
{
	limits.max_entries = 5;
	sc_tree_free(tree);
	tree = sc_tree_new(&limits);
	tarb b = {0};
	tb_file(&b, "a/b/c/d", "");
	tb_file(&b, "a/e", "");
	ADD_OK(&b);
	tb_file(&b, "a/f", "");
	ADD_FAILS(&b, SCONIFY_ERR_LIMIT, "too many entries");
}
END_TEST

START_TEST(tree_walk_orders_by_bytes_of_the_full_path)
{
	tarb b = {0};
	tb_file(&b, "a/b", "");
	tb_file(&b, "a-b", "");
	tb_file(&b, "a.c/x", "");
	tb_file(&b, "a0", "");
	tb_file(&b, "B", "");
	tb_file(&b, "\xc3\xa9", "");
	tb_file(&b, "a/a", "");
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n"
	            "B file 644 L0 0\n"
	            "a dir 755 L0\n"
	            "a-b file 644 L0 0\n"
	            "a.c dir 755 L0\n"
	            "a.c/x file 644 L0 0\n"
	            "a/a file 644 L0 0\n"
	            "a/b file 644 L0 0\n"
	            "a0 file 644 L0 0\n"
	            "\xc3\xa9 file 644 L0 0\n");
}
END_TEST

START_TEST(tree_resolve_reports_missing_and_dead_parts_lexically)
{
	tarb b = {0};
	tb_dir(&b, "usr/lib");
	tb_symlink(&b, "lib", "usr/lib");
	tb_symlink(&b, "dead", "/gone/away");
	tb_file(&b, "file", "");
	ADD_OK(&b);
	expect_resolve("lib/x", "usr/lib/x");
	expect_resolve("lib", "lib");
	expect_resolve("./lib/./a/b", "usr/lib/a/b");
	expect_resolve("dead/x", "gone/away/x");
	expect_resolve("", "");
	expect_resolve("/", "");
	cleanup_free char *got = NULL;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_fails(sc_tree_resolve(tree, "file/x", &got, &err), err, SCONIFY_ERR_INVALID,
	                "parent is not a directory");
}
END_TEST

START_TEST(tree_lookup_does_not_follow_symlinks)
{
	tarb b = {0};
	tb_dir(&b, "usr/lib");
	tb_file(&b, "usr/lib/x", "");
	tb_symlink(&b, "lib", "usr/lib");
	ADD_OK(&b);
	ck_assert_ptr_null(sc_tree_lookup(tree, "lib/x"));
	ck_assert_ptr_nonnull(sc_tree_lookup(tree, "usr/lib/x"));
	ck_assert_str_eq(sc_tree_lookup(tree, "")->path, "");
	ck_assert_str_eq(sc_tree_lookup(tree, "usr//lib/")->path, "usr/lib");
}
END_TEST

START_TEST(tree_layers_must_come_in_order)
{
	cleanup_error sconify_error_t err = NULL;
	ck_assert_fails(sc_tree_begin_layer(tree, 1, &err), err, SCONIFY_ERR_USAGE, "out of order");
	sconify_error_free(&err);
	ck_assert_ok(sc_tree_begin_layer(tree, 0, &err), err);
	ck_assert_fails(sc_tree_begin_layer(tree, 1, &err), err, SCONIFY_ERR_USAGE, "out of order");
	sconify_error_free(&err);
	ck_assert_ok(sc_tree_end_layer(tree, &err), err);
	ck_assert_ok(sc_tree_begin_layer(tree, 1, &err), err);
	ck_assert_ok(sc_tree_end_layer(tree, &err), err);
	ck_assert_fails(sc_tree_end_layer(tree, &err), err, SCONIFY_ERR_USAGE, "no layer");
}
END_TEST

START_TEST(tree_add_layer_uses_a_layer_the_caller_began)
{
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_tree_begin_layer(tree, 0, &err), err);
	tarb b = {0};
	tb_file(&b, "a", "");
	ADD_OK(&b);
	tb_file(&b, "b", "");
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n"
	            "a file 644 L0 0\n"
	            "b file 644 L1 0\n");
}
END_TEST

/* ---- a realistic stack ------------------------------------------------------------------- */

START_TEST(tree_realistic_stack_gives_the_expected_walk)
{
	tarb b = {0};
	/* 0: a usrmerged base */
	tb_dir(&b, "./");
	tb_symlink(&b, "bin", "usr/bin");
	tb_symlink(&b, "lib", "usr/lib");
	tb_entry(&b, "etc/", '5', NULL, 0, NULL, 0755);
	tb_file(&b, "etc/hostname", "base");
	tb_file(&b, "etc/passwd", "root:x:0:0");
	tb_entry(&b, "etc/shadow", '0', "root:*", 6, NULL, 0640);
	tb_dir(&b, "etc/alternatives/");
	tb_symlink(&b, "etc/alternatives/editor", "/usr/bin/vi");
	tb_dir(&b, "usr/");
	tb_dir(&b, "usr/bin/");
	tb_entry(&b, "usr/bin/vi", '0', "vi-1", 4, NULL, 0755);
	tb_link(&b, "usr/bin/view", "usr/bin/vi");
	tb_dir(&b, "usr/lib/");
	tb_file(&b, "usr/lib/libc.so.6", "libc");
	tb_symlink(&b, "usr/lib/libc.so", "libc.so.6");
	tb_dir(&b, "usr/share/doc/a/");
	tb_file(&b, "usr/share/doc/a/README", "a");
	tb_dir(&b, "usr/share/doc/b/");
	tb_file(&b, "usr/share/doc/b/README", "b");
	tb_dir(&b, "var/cache/apt/");
	tb_file(&b, "var/cache/apt/pkgcache.bin", "cache");
	tb_entry(&b, "tmp/", '5', NULL, 0, NULL, 01777);
	ADD_OK(&b);
	/* 1: replaces files, writes through bin/ and lib/ */
	tb_entry(&b, "etc/", '5', NULL, 0, NULL, 0750);
	tb_file(&b, "etc/hostname", "layer1");
	tb_entry(&b, "usr/bin/vi", '0', "vi-2!", 5, NULL, 0755);
	tb_file(&b, "lib/libssl.so.3", "ssl");
	tb_entry(&b, "bin/app", '0', "app", 3, NULL, 0755);
	ADD_OK(&b);
	/* 2: whiteouts of a file, a directory and a directory through a parent link */
	tb_file(&b, "etc/.wh.shadow", "");
	tb_file(&b, "usr/share/doc/.wh.b", "");
	tb_symlink(&b, "cache", "/var/cache");
	tb_file(&b, "cache/.wh.apt", "");
	ADD_OK(&b);
	/* 3: an opaque directory, a replaced link, a new hard link */
	tb_file(&b, "usr/share/doc/c/README", "c");
	tb_file(&b, "usr/share/doc/.wh..wh..opq", "");
	tb_symlink(&b, "etc/alternatives/editor", "../../usr/bin/nano");
	tb_entry(&b, "bin/nano", '0', "nano", 4, NULL, 0755);
	tb_link(&b, "usr/bin/rnano", "bin/nano");
	ADD_OK(&b);
	expect_walk(". dir 755 L0\n"
	            "bin symlink 777 L0 -> usr/bin\n"
	            "cache symlink 777 L2 -> /var/cache\n"
	            "etc dir 750 L0\n"
	            "etc/alternatives dir 755 L0\n"
	            "etc/alternatives/editor symlink 777 L3 -> ../../usr/bin/nano\n"
	            "etc/hostname file 644 L1 6\n"
	            "etc/passwd file 644 L0 10\n"
	            "lib symlink 777 L0 -> usr/lib\n"
	            "tmp dir 1777 L0\n"
	            "usr dir 755 L0\n"
	            "usr/bin dir 755 L0\n"
	            "usr/bin/app file 755 L1 3\n"
	            "usr/bin/nano file 755 L3 4 nlink=2\n"
	            "usr/bin/rnano file 755 L3 4 nlink=2\n"
	            "usr/bin/vi file 755 L1 5\n"
	            "usr/bin/view file 755 L0 4\n"
	            "usr/lib dir 755 L0\n"
	            "usr/lib/libc.so symlink 777 L0 -> libc.so.6\n"
	            "usr/lib/libc.so.6 file 644 L0 4\n"
	            "usr/lib/libssl.so.3 file 644 L1 3\n"
	            "usr/share dir 755 L0\n"
	            "usr/share/doc dir 755 L0\n"
	            "usr/share/doc/c dir 755 L3\n"
	            "usr/share/doc/c/README file 644 L3 1\n"
	            "var dir 755 L0\n"
	            "var/cache dir 755 L0\n");
	ck_assert(same_inode("usr/bin/nano", "usr/bin/rnano"));
	expect_resolve("bin/nano", "usr/bin/nano");
	expect_resolve("cache/apt/x", "var/cache/apt/x");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("layer-tree");
	TCase *tc = tcase_create("tree");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, tree_file_through_absolute_symlink_lands_inside_root);
	tcase_add_test(tc, tree_absolute_symlink_with_dotdot_stays_inside_root);
	tcase_add_test(tc, tree_symlink_chains_resolve_inside_root);
	tcase_add_test(tc, tree_file_through_symlink_replaces_lower_file);
	tcase_add_test(tc, tree_rejects_duplicate_through_symlink_in_one_layer);
	tcase_add_test(tc, tree_hardlink_through_symlinked_parent_shares_inode);
	tcase_add_test(tc, tree_hardlink_into_slash_ended_directory);
	tcase_add_test(tc, tree_symlink_over_directory_redirects_later_entries);
	tcase_add_test(tc, tree_directory_over_symlink_replaces_the_link);
	tcase_add_test(tc, tree_directory_over_symlink_keeps_hardlink_made_through_it);
	tcase_add_test(tc, tree_hardlink_to_symlink_shares_the_symlink);
	tcase_add_test(tc, tree_hardlink_to_outside_symlink_never_follows_it);
	tcase_add_test(tc, tree_whiteout_of_symlink_removes_only_the_link);
	tcase_add_test(tc, tree_whiteout_through_symlinked_parent_removes_target);
	tcase_add_test(tc, tree_whiteout_prefix_on_a_directory_is_data);
	tcase_add_test(tc, tree_whiteout_under_dead_symlink_parent_is_noop);
	tcase_add_test(tc, tree_whiteout_of_missing_name_is_noop);
	tcase_add_test(tc, tree_whiteout_removes_directory_and_subtree);
	tcase_add_test(tc, tree_whiteout_of_own_layer_entry_is_duplicate);
	tcase_add_test(tc, tree_whiteout_of_directory_holding_own_layer_entry_is_duplicate);
	tcase_add_test(tc, tree_whiteout_before_entry_recreates_the_path);
	tcase_add_test(tc, tree_whiteout_under_file_parent_fails);
	tcase_add_test(tc, tree_meta_whiteouts_leave_no_trace);
	tcase_add_test(tc, tree_opaque_marker_before_siblings_hides_lower_children);
	tcase_add_test(tc, tree_opaque_marker_after_siblings_still_hides_lower_children);
	tcase_add_test(tc, tree_opaque_keeps_directories_the_layer_names);
	tcase_add_test(tc, tree_opaque_marker_on_missing_directory_creates_it);
	tcase_add_test(tc, tree_opaque_marker_through_symlink_applies_to_target);
	tcase_add_test(tc, tree_opaque_root_hides_everything_lower);
	tcase_add_test(tc, tree_directory_over_directory_keeps_children_and_updates_attributes);
	tcase_add_test(tc, tree_file_over_directory_removes_its_subtree);
	tcase_add_test(tc, tree_rejects_duplicate_file_in_one_layer);
	tcase_add_test(tc, tree_accepts_duplicate_directory_in_one_layer);
	tcase_add_test(tc, tree_creates_missing_parents_as_implicit_directories);
	tcase_add_test(tc, tree_rejects_entry_under_a_file);
	tcase_add_test(tc, tree_rejects_symlink_loop);
	tcase_add_test(tc, tree_follows_forty_symlinks_but_not_forty_one);
	tcase_add_test(tc, tree_dotdot_at_the_root_stays_at_the_root);
	tcase_add_test(tc, tree_resolves_symlink_targets_lexically_like_containerd);
	tcase_add_test(tc, tree_writes_through_usrmerge_symlink);
	tcase_add_test(tc, tree_hardlink_to_missing_target_fails);
	tcase_add_test(tc, tree_hardlink_to_directory_fails);
	tcase_add_test(tc, tree_hardlink_to_itself_fails);
	tcase_add_test(tc, tree_hardlink_names_survive_each_other);
	tcase_add_test(tc, tree_hardlink_over_directory_holding_its_target);
	tcase_add_test(tc, tree_rejects_too_many_nodes);
	tcase_add_test(tc, tree_walk_orders_by_bytes_of_the_full_path);
	tcase_add_test(tc, tree_resolve_reports_missing_and_dead_parts_lexically);
	tcase_add_test(tc, tree_lookup_does_not_follow_symlinks);
	tcase_add_test(tc, tree_layers_must_come_in_order);
	tcase_add_test(tc, tree_add_layer_uses_a_layer_the_caller_began);
	tcase_add_test(tc, tree_realistic_stack_gives_the_expected_walk);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
