/* SPDX-License-Identifier: Apache-2.0 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/tarindex.h"
#include "archive/tarwriter.h"
#include "core/cleanup.h"
#include "core/fsutil.h"
#include "core/limits.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "support.h"

#define HEX128                                                                             \
	"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a8" \
	"36ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
#define LONG_NAME "blobs/sha512/" HEX128 /* 141 bytes */
#define LONG_TARGET "../../" LONG_NAME

static char *tmpdir;

static void setup(void)
{
	tmpdir = sc_test_tmpdir();
}

static void teardown(void)
{
	sc_test_tmpdir_cleanup(tmpdir);
	tmpdir = NULL;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *cmd = xvasprintf(fmt, ap);
	va_end(ap);
	return system(cmd);
}

static char *slurp(const char *path)
{
	char *d = NULL;
	size_t n;
	cleanup_error sconify_error_t err = NULL;
	ck_assert_ok(sc_read_file(path, 64 << 20, &d, &n, &err), err);
	return d;
}

/* The big content of "stream": 1 MiB + 3 bytes, written in odd chunks. */
#define STREAM_LEN ((1 << 20) + 3)
static char stream_byte(size_t i)
{
	return (char)('a' + (i * 7) % 26);
}

static bool is_stream(const char *d, size_t n)
{
	if (n != STREAM_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (d[i] != stream_byte(i))
			return false;
	return true;
}

/* Writes the sample archive used by the interop tests to path. */
static void write_sample(const char *path)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	cleanup_tar_writer sc_tar_writer *w = sc_tar_writer_new(fd);
	ck_assert_ok(sc_tar_writer_add_dir(w, "blobs", 0755, &err), err);
	ck_assert_ok(sc_tar_writer_add_dir(w, "blobs/sha512", 0755, &err), err);
	ck_assert_ok(sc_tar_writer_add_bytes(w, "oci-layout", 0644, "{\"imageLayoutVersion\":\"1.0.0\"}", 30,
	                                     &err),
	             err);
	ck_assert_ok(sc_tar_writer_add_bytes(w, "empty", 0600, "", 0, &err), err);
	sc_writer *c = NULL;
	ck_assert_ok(sc_tar_writer_begin_file(w, LONG_NAME, 0644, &c, &err), err);
	ck_assert_ok(sc_writer_write(c, "long name content", 17, &err), err);
	ck_assert_ok(sc_tar_writer_end_file(w, &err), err);
	ck_assert_ok(sc_tar_writer_begin_file(w, "stream", 0644, &c, &err), err);
	cleanup_free char *buf = xmalloc(STREAM_LEN);
	for (size_t i = 0; i < STREAM_LEN; i++)
		buf[i] = stream_byte(i);
	for (size_t off = 0; off < STREAM_LEN;) {
		size_t n = STREAM_LEN - off < 65521 ? STREAM_LEN - off : 65521;
		ck_assert_ok(sc_writer_write(c, buf + off, n, &err), err);
		off += n;
	}
	ck_assert_ok(sc_tar_writer_end_file(w, &err), err);
	ck_assert_ok(sc_tar_writer_add_symlink(w, "link", "oci-layout", &err), err);
	ck_assert_ok(sc_tar_writer_add_symlink(w, "dir/longlink", LONG_TARGET, &err), err);
	ck_assert_ok(sc_tar_writer_finish(w, &err), err);
}

/* Collapses runs of spaces (tar -tv pads its columns). */
static void squeeze(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++)
		if (!(*p == ' ' && o > s && o[-1] == ' '))
			*o++ = *p;
	*o = '\0';
}

static const struct {
	const char *name; /* as tar tools print it */
	char type;
	mode_t mode;
	int64_t size;
	const char *target;
} sample[] = {
        {"blobs/", 'd', 0755, 0, NULL},       {"blobs/sha512/", 'd', 0755, 0, NULL},
        {"oci-layout", '-', 0644, 30, NULL},  {"empty", '-', 0600, 0, NULL},
        {LONG_NAME, '-', 0644, 17, NULL},     {"stream", '-', 0644, STREAM_LEN, NULL},
        {"link", 'l', 0777, 0, "oci-layout"}, {"dir/longlink", 'l', 0777, 0, LONG_TARGET},
};
#define NSAMPLE (sizeof(sample) / sizeof(sample[0]))

static void free_archive_read(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

START_TEST(libarchive_reads_what_the_writer_wrote)
{
	cleanup_free char *path = sc_path_join(tmpdir, "w.tar");
	write_sample(path);
	_cleanup_(free_archive_read) struct archive *a = archive_read_new();
	archive_read_support_format_all(a);
	ck_assert_int_eq(archive_read_open_filename(a, path, 10240), ARCHIVE_OK);
	struct archive_entry *e;
	size_t i = 0;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		ck_assert_uint_lt(i, NSAMPLE);
		ck_assert_str_eq(archive_entry_pathname(e), sample[i].name);
		unsigned want_type = sample[i].type == 'd'   ? AE_IFDIR
		                     : sample[i].type == 'l' ? AE_IFLNK
		                                             : AE_IFREG;
		ck_assert_uint_eq(archive_entry_filetype(e), want_type);
		ck_assert_uint_eq(archive_entry_perm(e), sample[i].mode);
		ck_assert_int_eq(archive_entry_size(e), sample[i].size);
		ck_assert_int_eq(archive_entry_mtime(e), 0);
		ck_assert_int_eq(archive_entry_uid(e), 0);
		ck_assert_int_eq(archive_entry_gid(e), 0);
		ck_assert(archive_entry_uname(e) == NULL || archive_entry_uname(e)[0] == '\0');
		if (sample[i].target)
			ck_assert_str_eq(archive_entry_symlink(e), sample[i].target);
		if (want_type == AE_IFREG) {
			cleanup_free char *d = xmalloc((size_t)sample[i].size + 1);
			ck_assert_int_eq(archive_read_data(a, d, (size_t)sample[i].size + 1), sample[i].size);
			if (strcmp(sample[i].name, "stream") == 0) {
				ck_assert(is_stream(d, STREAM_LEN));
			} else if (strcmp(sample[i].name, LONG_NAME) == 0) {
				ck_assert_int_eq(memcmp(d, "long name content", 17), 0);
			}
		}
		i++;
	}
	ck_assert_int_eq(r, ARCHIVE_EOF);
	ck_assert_uint_eq(i, NSAMPLE);
	ck_assert_int_eq(archive_format(a) & ARCHIVE_FORMAT_BASE_MASK, ARCHIVE_FORMAT_TAR);
}
END_TEST

START_TEST(gnu_tar_lists_and_extracts_what_the_writer_wrote)
{
	cleanup_free char *path = sc_path_join(tmpdir, "w.tar");
	write_sample(path);
	ck_assert_int_eq(run("cd '%s' && TZ=UTC tar --numeric-owner -tvf w.tar >list 2>errors", tmpdir), 0);
	cleanup_free char *errors_path = sc_path_join(tmpdir, "errors");
	cleanup_free char *errors = slurp(errors_path);
	ck_assert_str_eq(errors, ""); /* no "unknown header" or checksum warnings */
	cleanup_free char *list_path = sc_path_join(tmpdir, "list");
	cleanup_free char *list = slurp(list_path);
	squeeze(list);
	/* "drwxr-xr-x 0/0 0 1970-01-01 00:00 blobs/" */
	char *line = list;
	for (size_t i = 0; i < NSAMPLE; i++) {
		char *nl = strchr(line, '\n');
		ck_assert_ptr_nonnull(nl);
		*nl = '\0';
		ck_assert_int_eq(line[0], sample[i].type);
		cleanup_free char *want = xasprintf(
		        " 0/0 %lld 1970-01-01 00:00 %s%s%s", (long long)sample[i].size, sample[i].name,
		        sample[i].target ? " -> " : "", sample[i].target ? sample[i].target : "");
		ck_assert_msg(sc_endswith(line, want), "line `%s' lacks `%s'", line, want);
		line = nl + 1;
	}
	ck_assert_str_eq(line, "");

	ck_assert_int_eq(run("cd '%s' && tar -xOf w.tar '%s' >out && tar -xOf w.tar oci-layout >>out", tmpdir,
	                     LONG_NAME),
	                 0);
	cleanup_free char *out_path = sc_path_join(tmpdir, "out");
	cleanup_free char *out = slurp(out_path);
	ck_assert_str_eq(out, "long name content{\"imageLayoutVersion\":\"1.0.0\"}");

	/* and a full extraction gives the tree back */
	ck_assert_int_eq(
	        run("cd '%s' && mkdir x && tar -C x -xf w.tar && test -d x/blobs/sha512 && "
	            "test -f x/empty && ! test -s x/empty && test \"$(readlink x/link)\" = oci-layout && "
	            "test \"$(readlink x/dir/longlink)\" = '%s' && "
	            "printf 'long name content' | cmp x/'%s' - && test $(stat -c %%s x/stream) = %d",
	            tmpdir, LONG_TARGET, LONG_NAME, STREAM_LEN),
	        0);
}
END_TEST

START_TEST(tarindex_reads_back_what_the_writer_wrote)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *path = sc_path_join(tmpdir, "w.tar");
	write_sample(path);
	sconify_limits_t limits = {0};
	sc_limits_fill(&limits);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(sc_tar_index_open(path, &limits, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_count(ix), NSAMPLE);
	for (size_t i = 0; i < NSAMPLE; i++) {
		const sc_tar_entry *e = sc_tar_index_entry(ix, i);
		cleanup_free char *want =
		        xstrndup(sample[i].name, strlen(sample[i].name) - (sample[i].type == 'd' ? 1 : 0));
		ck_assert_str_eq(e->name, want);
		sc_tar_type t = sample[i].type == 'd'   ? SC_TAR_DIR
		                : sample[i].type == 'l' ? SC_TAR_SYMLINK
		                                        : SC_TAR_FILE;
		ck_assert_int_eq(e->type, t);
		ck_assert_uint_eq(e->size, (uint64_t)sample[i].size);
		if (sample[i].target)
			ck_assert_str_eq(e->link, sample[i].target);
	}
	const sc_tar_entry *e;
	ck_assert_ok(sc_tar_index_lookup(ix, "stream", &e, &err), err);
	cleanup_reader sc_reader *r = sc_tar_index_open_entry(ix, e);
	char *d;
	size_t n;
	ck_assert_ok(sc_reader_read_all(r, 2 << 20, "stream", &d, &n, &err), err);
	cleanup_free char *data = d;
	ck_assert(is_stream(data, n));
	ck_assert_ok(sc_tar_index_lookup(ix, "link", &e, &err), err);
	ck_assert_str_eq(e->name, "oci-layout");
}
END_TEST

START_TEST(writer_output_is_deterministic)
{
	cleanup_free char *a = sc_path_join(tmpdir, "a.tar");
	cleanup_free char *b = sc_path_join(tmpdir, "b.tar");
	write_sample(a);
	sleep(1); /* a clock in the output would now differ */
	write_sample(b);
	ck_assert_int_eq(run("cmp -s '%s' '%s'", a, b), 0);

	/* the fixed fields of the first header */
	cleanup_free char *d = slurp(a);
	ck_assert_int_eq(memcmp(d, "blobs/\0", 7), 0);
	/* mode, uid, gid, size and mtime, each ended by a NUL */
	static const char fields[] = "0000755\0"
	                             "0000000\0"
	                             "0000000\0"
	                             "00000000000\0"
	                             "00000000000";
	ck_assert_int_eq(memcmp(d + 100, fields, sizeof(fields)), 0);
	ck_assert_int_eq(d[156], '5');
	static const char magic[8] = {'u', 's', 't', 'a', 'r', '\0', '0', '0'};
	ck_assert_int_eq(memcmp(d + 257, magic, sizeof(magic)), 0);
	for (int i = 265; i < 329; i++)
		ck_assert_int_eq(d[i], 0); /* user and group names */

	/* the archive ends with exactly two zero blocks */
	struct stat st;
	ck_assert_int_eq(stat(a, &st), 0);
	ck_assert_int_eq(st.st_size % 512, 0);
	for (off_t i = st.st_size - 1024; i < st.st_size; i++)
		ck_assert_int_eq(d[i], 0);
	ck_assert_int_ne(d[st.st_size - 1024 - 512], 0); /* the last header */
}
END_TEST

START_TEST(writer_puts_long_names_in_a_pax_header)
{
	cleanup_free char *path = sc_path_join(tmpdir, "w.tar");
	write_sample(path);
	cleanup_free char *d = slurp(path);
	/* blobs/, blobs/sha512/, oci-layout (+ data), empty: the pax header is the 6th block */
	const char *x = d + 5 * 512;
	ck_assert_int_eq(x[156], 'x');
	ck_assert_int_eq(memcmp(x, "blobs/sha512/PaxHeaders.0/" HEX128, 100), 0);
	ck_assert_str_eq(x + 512, "151 path=" LONG_NAME "\n");
	/* the ustar header after it keeps the first 100 bytes of the name */
	const char *h = x + 1024;
	ck_assert_int_eq(h[156], '0');
	ck_assert_int_eq(memcmp(h, LONG_NAME, 100), 0);
}
END_TEST

/* A pax record counts its own length digits: check the lengths where the
 * count gains a digit, through our index (which checks them) and libarchive. */
START_TEST(writer_pax_record_lengths_are_exact)
{
	cleanup_error sconify_error_t err = NULL;
	static const size_t lens[] = {101, 989, 990, 991, 992, 993, 3000};
	cleanup_free char *path = sc_path_join(tmpdir, "w.tar");
	char names[7][3001];
	{
		cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		cleanup_tar_writer sc_tar_writer *w = sc_tar_writer_new(fd);
		for (size_t i = 0; i < 7; i++) {
			memset(names[i], 'a' + (char)i, lens[i]);
			for (size_t k = 25; k + 1 < lens[i]; k += 50)
				names[i][k] = '/';
			names[i][lens[i]] = '\0';
			ck_assert_ok(sc_tar_writer_add_symlink(w, names[i], names[i], &err), err);
		}
		ck_assert_ok(sc_tar_writer_finish(w, &err), err);
	}
	sconify_limits_t limits = {0};
	sc_limits_fill(&limits);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(sc_tar_index_open(path, &limits, &ix, &err), err);
	for (size_t i = 0; i < 7; i++) {
		ck_assert_str_eq(sc_tar_index_entry(ix, i)->name, names[i]);
		ck_assert_str_eq(sc_tar_index_entry(ix, i)->link, names[i]);
	}
	_cleanup_(free_archive_read) struct archive *a = archive_read_new();
	archive_read_support_format_all(a);
	ck_assert_int_eq(archive_read_open_filename(a, path, 10240), ARCHIVE_OK);
	struct archive_entry *e;
	for (size_t i = 0; i < 7; i++) {
		ck_assert_int_eq(archive_read_next_header(a, &e), ARCHIVE_OK);
		ck_assert_str_eq(archive_entry_pathname(e), names[i]);
		ck_assert_str_eq(archive_entry_symlink(e), names[i]);
	}
	ck_assert_int_eq(archive_read_next_header(a, &e), ARCHIVE_EOF);
}
END_TEST

START_TEST(writer_streams_content_to_the_fd)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *path = sc_path_join(tmpdir, "w.tar");
	cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cleanup_tar_writer sc_tar_writer *w = sc_tar_writer_new(fd);
	sc_writer *c;
	ck_assert_ok(sc_tar_writer_begin_file(w, "big", 0644, &c, &err), err);
	cleanup_free char *buf = xzalloc(1 << 20);
	ck_assert_ok(sc_writer_write(c, buf, 1 << 20, &err), err);
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 512 + (1 << 20)); /* nothing held back */
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0);   /* pwrite only */
	ck_assert_ok(sc_tar_writer_end_file(w, &err), err);
	ck_assert_ok(sc_tar_writer_finish(w, &err), err);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 512 + (1 << 20) + 1024);
}
END_TEST

START_TEST(writer_finish_truncates_old_content)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *path = sc_path_join(tmpdir, "w.tar");
	ck_assert_ok(sc_write_file_atomic(path, "x", 1, 0644, &err), err);
	ck_assert_int_eq(truncate(path, 100000), 0);
	cleanup_close int fd = open(path, O_RDWR);
	cleanup_tar_writer sc_tar_writer *w = sc_tar_writer_new(fd);
	ck_assert_ok(sc_tar_writer_add_bytes(w, "a", 0644, "1", 1, &err), err);
	ck_assert_ok(sc_tar_writer_finish(w, &err), err);
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 2048);
}
END_TEST

START_TEST(put_number_switches_to_base256_at_8_gib)
{
	char f[12];
	sc_tar_put_number(f, 12, (8ull << 30) - 1);
	ck_assert_int_eq(memcmp(f, "77777777777\0", 12), 0);
	sc_tar_put_number(f, 12, 8ull << 30);
	static const unsigned char want[12] = {0x80, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0};
	ck_assert_int_eq(memcmp(f, want, 12), 0);
	sc_tar_put_number(f, 12, UINT64_MAX);
	static const unsigned char want_max[12] = {0x80, 0,    0,    0,    0xff, 0xff,
	                                           0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	ck_assert_int_eq(memcmp(f, want_max, 12), 0);
	char m[8];
	sc_tar_put_number(m, 8, 0755);
	ck_assert_int_eq(memcmp(m, "0000755\0", 8), 0);
}
END_TEST

static void set_checksum(unsigned char *h)
{
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

/* What end_file writes for a blob over 8 GiB, read by GNU tar, libarchive and
 * our index. The content is a hole, so the test costs no disk space. */
START_TEST(base256_sizes_are_read_by_other_tools)
{
	cleanup_error sconify_error_t err = NULL;
	uint64_t big = (8ull << 30) + 5;
	cleanup_free char *path = sc_path_join(tmpdir, "big.tar");
	cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	{
		cleanup_tar_writer sc_tar_writer *w = sc_tar_writer_new(fd);
		sc_writer *c;
		ck_assert_ok(sc_tar_writer_begin_file(w, "big", 0644, &c, &err), err);
		ck_assert_ok(sc_writer_write(c, "x", 1, &err), err);
		ck_assert_ok(sc_tar_writer_end_file(w, &err), err);
	}
	unsigned char h[512];
	ck_assert_int_eq(pread(fd, h, 512, 0), 512);
	sc_tar_put_number((char *)h + 124, 12, big);
	set_checksum(h);
	ck_assert_int_eq(pwrite(fd, h, 512, 0), 512);
	uint64_t end = 512 + (big + 511) / 512 * 512;
	static const char zeros[1024];
	ck_assert_int_eq(pwrite(fd, zeros, 1024, (off_t)end), 1024);

	ck_assert_int_eq(run("cd '%s' && TZ=UTC tar --numeric-owner -tvf big.tar >list 2>&1", tmpdir), 0);
	cleanup_free char *list_path = sc_path_join(tmpdir, "list");
	cleanup_free char *list = slurp(list_path);
	squeeze(list);
	ck_assert_str_eq(list, "-rw-r--r-- 0/0 8589934597 1970-01-01 00:00 big\n");

	_cleanup_(free_archive_read) struct archive *a = archive_read_new();
	archive_read_support_format_all(a);
	ck_assert_int_eq(archive_read_open_filename(a, path, 10240), ARCHIVE_OK);
	struct archive_entry *e;
	ck_assert_int_eq(archive_read_next_header(a, &e), ARCHIVE_OK);
	ck_assert_int_eq(archive_entry_size(e), (la_int64_t)big);

	sconify_limits_t limits = {0};
	sc_limits_fill(&limits);
	cleanup_tar_index sc_tar_index *ix = NULL;
	ck_assert_ok(sc_tar_index_open(path, &limits, &ix, &err), err);
	ck_assert_uint_eq(sc_tar_index_entry(ix, 0)->size, big);
}
END_TEST

START_TEST(writer_abort_file_drops_the_open_file)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *path = sc_path_join(tmpdir, "w.tar");
	cleanup_free char *ref = sc_path_join(tmpdir, "ref.tar");
	{
		cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		cleanup_tar_writer sc_tar_writer *w = sc_tar_writer_new(fd);
		ck_assert_ok(sc_tar_writer_add_bytes(w, "a", 0644, "1", 1, &err), err);
		sc_writer *c;
		ck_assert_ok(sc_tar_writer_begin_file(w, LONG_NAME, 0644, &c, &err), err);
		cleanup_free char *junk = xzalloc(100000);
		ck_assert_ok(sc_writer_write(c, junk, 100000, &err), err);
		sc_tar_writer_abort_file(w);
		sc_tar_writer_abort_file(w); /* no file open: nothing happens */
		ck_assert_ok(sc_tar_writer_add_bytes(w, "b", 0644, "2", 1, &err), err);
		ck_assert_ok(sc_tar_writer_finish(w, &err), err);
	}
	{
		cleanup_close int fd = open(ref, O_RDWR | O_CREAT | O_TRUNC, 0644);
		cleanup_tar_writer sc_tar_writer *w = sc_tar_writer_new(fd);
		ck_assert_ok(sc_tar_writer_add_bytes(w, "a", 0644, "1", 1, &err), err);
		ck_assert_ok(sc_tar_writer_add_bytes(w, "b", 0644, "2", 1, &err), err);
		ck_assert_ok(sc_tar_writer_finish(w, &err), err);
	}
	ck_assert_int_eq(run("cmp -s '%s' '%s'", path, ref), 0);
}
END_TEST

START_TEST(writer_rejects_bad_names)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *path = sc_path_join(tmpdir, "w.tar");
	cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cleanup_tar_writer sc_tar_writer *w = sc_tar_writer_new(fd);
	static const struct {
		const char *name, *needle;
	} bad[] = {
	        {"", "empty path"},       {"/abs", "absolute path"},        {"a/../b", "`..' component"},
	        {"..", "`..' component"}, {"a//b", "empty path component"}, {"a/", "empty path component"},
	        {"./a", "`.' component"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_fails(sc_tar_writer_add_bytes(w, bad[i].name, 0644, "", 0, &err), err,
		                SCONIFY_ERR_INVALID, bad[i].needle);
		ck_assert_fails(sc_tar_writer_add_dir(w, bad[i].name, 0755, &err), err, SCONIFY_ERR_INVALID,
		                bad[i].needle);
	}
	ck_assert_fails(sc_tar_writer_add_symlink(w, "l", "", &err), err, SCONIFY_ERR_INVALID,
	                "empty symlink target");
	/* nothing was written */
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
}
END_TEST

START_TEST(writer_refuses_calls_out_of_order)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *path = sc_path_join(tmpdir, "w.tar");
	cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cleanup_tar_writer sc_tar_writer *w = sc_tar_writer_new(fd);
	ck_assert_fails(sc_tar_writer_end_file(w, &err), err, SCONIFY_ERR_USAGE, "no file is open");
	sc_writer *c;
	ck_assert_ok(sc_tar_writer_begin_file(w, "a", 0644, &c, &err), err);
	sc_writer *c2;
	ck_assert_fails(sc_tar_writer_begin_file(w, "b", 0644, &c2, &err), err, SCONIFY_ERR_USAGE,
	                "a file is still open");
	ck_assert_fails(sc_tar_writer_add_dir(w, "d", 0755, &err), err, SCONIFY_ERR_USAGE, "still open");
	ck_assert_fails(sc_tar_writer_finish(w, &err), err, SCONIFY_ERR_USAGE, "still open");
	ck_assert_ok(sc_tar_writer_end_file(w, &err), err);
	ck_assert_fails(sc_writer_write(c, "late", 4, &err), err, SCONIFY_ERR_USAGE, "no file is open");
	ck_assert_ok(sc_tar_writer_finish(w, &err), err);
	ck_assert_fails(sc_tar_writer_add_bytes(w, "x", 0644, "", 0, &err), err, SCONIFY_ERR_USAGE,
	                "finished");
}
END_TEST

START_TEST(writer_reports_write_errors)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *path = sc_path_join(tmpdir, "w.tar");
	ck_assert_ok(sc_write_file_atomic(path, "", 0, 0644, &err), err);
	cleanup_close int fd = open(path, O_RDONLY);
	cleanup_tar_writer sc_tar_writer *w = sc_tar_writer_new(fd);
	ck_assert_fails(sc_tar_writer_add_dir(w, "d", 0755, &err), err, SCONIFY_ERR_IO,
	                "writing the archive");
	ck_assert_fails(sc_tar_writer_add_dir(w, "d", 0755, &err), err, SCONIFY_ERR_USAGE,
	                "an earlier write failed");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tarwriter");
	TCase *tc = tcase_create("tarwriter");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, libarchive_reads_what_the_writer_wrote);
	tcase_add_test(tc, gnu_tar_lists_and_extracts_what_the_writer_wrote);
	tcase_add_test(tc, tarindex_reads_back_what_the_writer_wrote);
	tcase_add_test(tc, writer_output_is_deterministic);
	tcase_add_test(tc, writer_puts_long_names_in_a_pax_header);
	tcase_add_test(tc, writer_pax_record_lengths_are_exact);
	tcase_add_test(tc, writer_streams_content_to_the_fd);
	tcase_add_test(tc, writer_finish_truncates_old_content);
	tcase_add_test(tc, put_number_switches_to_base256_at_8_gib);
	tcase_add_test(tc, base256_sizes_are_read_by_other_tools);
	tcase_add_test(tc, writer_abort_file_drops_the_open_file);
	tcase_add_test(tc, writer_rejects_bad_names);
	tcase_add_test(tc, writer_refuses_calls_out_of_order);
	tcase_add_test(tc, writer_reports_write_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return sc_test_run(suite());
}
