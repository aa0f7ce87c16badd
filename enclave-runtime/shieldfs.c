/* SPDX-License-Identifier: Apache-2.0 */
#include "shieldfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/stream.h"
#include "core/strutil.h"
#include "core/xalloc.h"

typedef struct {
	const sc_shield_entry *entry;
	int memfd;
} cached;

struct sc_rt_shield {
	sc_shield_key *key;
	sc_shield_metadata *md;
	cached *cache; /* verified files, by entry (hard links share one) */
	size_t n_cache, cap_cache;
	unsigned threads; /* for verifying one large file */
};

static unsigned usable_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

void sc_rt_shield_free(sc_rt_shield *sh)
{
	if (sh == NULL)
		return;
	for (size_t i = 0; i < sh->n_cache; i++)
		close(sh->cache[i].memfd);
	free(sh->cache);
	sc_shield_metadata_free(sh->md);
	sc_shield_key_free(sh->key);
	free(sh);
}

const sc_shield_metadata *sc_rt_shield_metadata(const sc_rt_shield *sh)
{
	return sh->md;
}

int sc_rt_shield_open(const char *path, const uint8_t key[SC_SHIELD_KEY_BYTES],
                      const uint8_t pin[SC_SHIELD_PIN_BYTES], sc_rt_shield **ret, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return sc_error_errno(err, errno, "shield metadata `%s'", q);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sc_error_errno(err, errno, "shield metadata `%s'", q);
	if (!S_ISREG(st.st_mode))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "shield metadata `%s' is not a regular file", q);
	cleanup_reader sc_reader *r = sc_fd_reader_new(fd, false, 0, -1);
	cleanup_free char *data = NULL;
	size_t len = 0;
	cleanup_free char *what = xasprintf("shield metadata `%s'", q);
	if (sc_reader_read_all(r, SC_RT_METADATA_MAX, what, &data, &len, err) < 0)
		return -1;

	cleanup_free sc_rt_shield *sh = xzalloc(sizeof(*sh));
	sc_shield_pin p;
	memcpy(p.bytes, pin, sizeof(p.bytes));
	sh->key = sc_shield_key_new(key);
	sh->threads = usable_cpus();
	if (sc_shield_metadata_open(sh->key, data, len, &p, &sh->md, err) < 0) {
		sc_shield_key_free(sh->key);
		return sc_error_wrap(err, "fspf_path `%s'", q);
	}
	*ret = steal_pointer(&sh);
	return 0;
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 */
#endif
#define SC_RT_HUGE_PAGE (2u << 20)

/* Gives the memfd of a large file 2 MiB pages (transparent huge pages)
 * before it is filled, where the kernel allows it: with 4 KiB pages the
 * kernel allocates, charges and later looks up every page one by one, when
 * the plaintext is written (pwrite) and again on each of the application's
 * reads of it, which made both cost 3-4 times as much CPU as with huge pages
 * (docs/runtime.md). memfds take huge pages only when the machine's shmem
 * policy says so (/sys/kernel/mm/transparent_hugepage/shmem_enabled, "never"
 * by default), but MADV_COLLAPSE (Linux 6.1) builds them regardless of that
 * policy: every whole 2 MiB extent gets one page touched, is mapped at an
 * aligned address and collapsed. Best effort: an older kernel (EINVAL), no
 * free huge page (ENOMEM, EAGAIN) or no memory for the mapping leave 4 KiB
 * pages, which work the same. The memfd keeps the file's size, so the shield
 * writes into these pages instead of truncating (shield.h). The kernel
 * clears each new huge page: the extents are split over the threads that
 * decrypt the file next. */
typedef struct {
	char *at;
	size_t len;
} collapse_job;

static void *collapse(void *arg)
{
	collapse_job *j = arg;
	(void)madvise(j->at, j->len, MADV_COLLAPSE);
	return NULL;
}

static void huge_pages(int memfd, uint64_t size, unsigned threads)
{
	uint64_t whole = size / SC_RT_HUGE_PAGE * SC_RT_HUGE_PAGE;
	if (whole == 0 || whole > SIZE_MAX - SC_RT_HUGE_PAGE || ftruncate(memfd, (off_t)size) < 0)
		return;
	/* An extent with no page at all is not collapsed (the kernel takes it
	 * for truncated): one zero byte in each. */
	for (uint64_t off = 0; off < whole; off += SC_RT_HUGE_PAGE)
		if (pwrite(memfd, "", 1, (off_t)off) != 1)
			return;
	/* A huge page can back a mapping only at a 2 MiB aligned address. */
	size_t span = (size_t)whole + SC_RT_HUGE_PAGE;
	void *area = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (area == MAP_FAILED)
		return;
	uintptr_t at = ((uintptr_t)area + SC_RT_HUGE_PAGE - 1) & ~(uintptr_t)(SC_RT_HUGE_PAGE - 1);
	char *m = mmap((void *)at, (size_t)whole, PROT_READ, MAP_SHARED | MAP_FIXED, memfd, 0);
	if (m != MAP_FAILED) {
		uint64_t extents = whole / SC_RT_HUGE_PAGE;
		if (threads > SC_SHIELD_THREADS_MAX)
			threads = SC_SHIELD_THREADS_MAX;
		if (threads > extents)
			threads = (unsigned)extents;
		if (threads < 1)
			threads = 1;
		collapse_job jobs[SC_SHIELD_THREADS_MAX];
		pthread_t tids[SC_SHIELD_THREADS_MAX];
		bool started[SC_SHIELD_THREADS_MAX] = {false};
		uint64_t next = 0;
		for (unsigned t = 0; t < threads; t++) {
			uint64_t count = extents / threads + (t < extents % threads);
			jobs[t] = (collapse_job){.at = m + next * SC_RT_HUGE_PAGE,
			                         .len = (size_t)(count * SC_RT_HUGE_PAGE)};
			next += count;
		}
		for (unsigned t = 1; t < threads; t++)
			started[t] = pthread_create(&tids[t], NULL, collapse, &jobs[t]) == 0;
		collapse(&jobs[0]);
		for (unsigned t = 1; t < threads; t++)
			if (started[t])
				pthread_join(tids[t], NULL);
			else
				collapse(&jobs[t]);
	}
	munmap(area, span);
}

/* Opens a path the walk resolved (every link already followed, so none is
 * left in it) without following any: a link the host puts on the way after
 * the walk fails the open (ELOOP) instead of leading elsewhere. */
static int open_resolved(const char *path, int flags)
{
	struct open_how how = {.flags = (uint64_t)flags | O_NOFOLLOW,
	                       .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd;
	/* Linux 5.6 has it, and the runtime needs 5.9: only an outer seccomp
	 * profile or an emulator (qemu-user) says ENOSYS. What is opened is
	 * still verified against the metadata; only the check against a link
	 * put on the way after the walk is lost, and that is said once. */
	static bool warned;
	if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
		fprintf(stderr,
		        "sconify-runtime: warning: openat2 is refused here (ENOSYS): protected files are "
		        "opened without its check that no link was put on the way\n");
	return open(path, flags | O_NOFOLLOW);
}

static int decrypt(sc_rt_shield *sh, const char *path, const sc_shield_entry *e, int *ret_memfd,
                   sconify_error_t *err)
{
	cleanup_close int in = open_resolved(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (in < 0)
		return sc_error_errno(err, errno, "the stored file");
	struct stat st;
	if (fstat(in, &st) < 0)
		return sc_error_errno(err, errno, "the stored file");
	if (!S_ISREG(st.st_mode))
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "the stored file is not a regular file");
	cleanup_close int memfd = sc_rt_memfd_create(strrchr(path, '/') + 1);
	if (memfd < 0)
		return sc_error_errno(err, errno, "memfd_create");
	cleanup_shield_file sc_shield_file *f = NULL;
	if (sc_shield_file_new(sh->key, e, &f, err) < 0)
		return -1;
	/* The memfd is nobody else's until sealed: to_fd leaves it empty on
	 * failure, and it is closed then anyway. A large file is split over
	 * the CPUs we may run on: the application waits for all of it. */
	unsigned threads = e->size >= SC_RT_PARALLEL_MIN ? sh->threads : 1;
	if (e->size >= SC_RT_PARALLEL_MIN)
		huge_pages(memfd, e->size, threads);
	if (sc_shield_file_to_fd_parallel(f, in, memfd, threads, err) < 0)
		return -1;
	if (fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		return sc_error_errno(err, errno, "sealing a memfd");
	*ret_memfd = steal_fd(&memfd);
	return 0;
}

int sc_rt_shield_plaintext(sc_rt_shield *sh, const char *path, const sc_shield_entry *e, int *ret_memfd,
                           sconify_error_t *err)
{
	for (size_t i = 0; i < sh->n_cache; i++)
		if (sh->cache[i].entry == e) {
			*ret_memfd = sh->cache[i].memfd;
			return 0;
		}
	int memfd = -1;
	if (decrypt(sh, path, e, &memfd, err) < 0)
		return -1;
	if (sh->n_cache == sh->cap_cache) {
		sh->cap_cache = sh->cap_cache ? 2 * sh->cap_cache : 16;
		sh->cache = xreallocarray(sh->cache, sh->cap_cache, sizeof(*sh->cache));
	}
	sh->cache[sh->n_cache++] = (cached){.entry = e, .memfd = memfd};
	*ret_memfd = memfd;
	return 0;
}

typedef struct {
	sc_rt_provider base;
	sc_rt_shield *sh;
} shield_provider;

static int shield_open(sc_rt_provider *p, const char *path, int flags, sc_rt_answer *ret,
                       sconify_error_t *err)
{
	sc_rt_shield *sh = ((shield_provider *)p)->sh;
	sc_shield_kind kind;
	const sc_shield_entry *e = NULL;
	if (sc_shield_lookup(sh->md, path, &kind, &e, err) < 0)
		return -1;
	/* The kernel's file systems are never protected, whatever the regions say:
	 * with `--dir /' the application still reaches /proc/self and /dev/null. */
	if (kind == SC_SHIELD_NOT_PROTECTED || sc_rt_path_kernel_fs(path)) {
		*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
		return 0;
	}
	bool writing = (flags & (O_CREAT | O_TRUNC)) || (flags & O_ACCMODE) != O_RDONLY;
	const char *link = NULL;
	if (e == NULL && (link = sc_shield_symlink_at(sh->md, path)) != NULL) {
		/* A recorded link reached without following it (O_NOFOLLOW):
		 * the kernel's answer for a link. An O_PATH descriptor of it
		 * opens no content (a reopen through /proc comes back here). */
		*ret = (flags & O_PATH) ? (sc_rt_answer){.verdict = SC_RT_CONTINUE}
		                        : (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = ELOOP};
		return 0;
	}
	if (e) {
		/* Refused before any work: writable protected regions are a
		 * later feature. */
		bool refused = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) ||
		               (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL) ||
		               (flags & O_DIRECTORY) == O_DIRECTORY;
		if (refused) /* answered from the flags alone */
			return sc_rt_serve_memfd(-1, flags, ret, err);
		int memfd = -1;
		if (sc_rt_shield_plaintext(sh, path, e, &memfd, err) < 0) {
			/* An answer, not a failure of ours: the message (which
			 * never holds the key) goes to the log. */
			*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EIO};
			return 0;
		}
		return sc_rt_serve_memfd(memfd, flags, ret, err);
	}
	/* Directories may be listed and used as dirfds: every open below them
	 * comes back here. With O_DIRECTORY the kernel refuses anything else. */
	if ((flags & O_DIRECTORY) == O_DIRECTORY && (flags & O_CREAT) == 0) {
		*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
		return 0;
	}
	/* Without O_DIRECTORY (`cat dir', fstat after open), a directory is
	 * opened here, so that what was checked is what the caller gets: a
	 * file swapped in meanwhile is never opened. */
	if (!writing) {
		int fd = open_resolved(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (flags & O_NONBLOCK));
		if (fd >= 0) {
			*ret = (sc_rt_answer){.verdict = SC_RT_FD, .fd = fd};
			return 0;
		}
	}
	/* The protected view holds exactly what the metadata lists: a file
	 * planted on disk there does not exist. Creating one would write
	 * plaintext to disk: read-only file system. */
	*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = writing ? EROFS : ENOENT};
	return 0;
}

static int shield_protected_link(sc_rt_provider *p, const char *path, const char **ret_target)
{
	sc_rt_shield *sh = ((shield_provider *)p)->sh;
	*ret_target = NULL;
	return !sc_rt_path_kernel_fs(path) && sc_shield_walk_checks(sh->md, path, ret_target);
}

static void shield_free(sc_rt_provider *p)
{
	free(p);
}

sc_rt_provider *sc_rt_shield_provider_new(sc_rt_shield *sh)
{
	shield_provider *sp = xzalloc(sizeof(*sp));
	sp->base.open = shield_open;
	sp->base.protected_link = shield_protected_link;
	sp->base.free = shield_free;
	sp->sh = sh;
	return &sp->base;
}
