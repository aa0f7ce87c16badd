/* SPDX-License-Identifier: Apache-2.0 */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/kcmp.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/strutil.h"
#include "core/xalloc.h"
#include "linkcache.h"
#include "resolve.h"
#include "session.h"

#if defined(__x86_64__)
#define SC_RT_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SC_RT_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "sconify-runtime supports x86_64 and aarch64"
#endif

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif

int sc_rt_notify_check(sconify_error_t *err)
{
	uint32_t action = SECCOMP_RET_USER_NOTIF;
	if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0)
		return 0;
	int e = errno;
	if (e == ENOSYS)
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, e,
		                "the kernel has no seccomp: the file shield needs seccomp user notification "
		                "(Linux 5.9 or later)");
	return sc_error(
	        err, SCONIFY_ERR_UNSUPPORTED, e,
	        "the kernel has no seccomp user notification: the file shield needs Linux 5.9 or later");
}

#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JEQ(k, jt, jf) ((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf))

int sc_rt_filter_install(int *ret_listener, sconify_error_t *err)
{
	/* Hand-written: a dozen checks do not need libseccomp, and the runtime then
	 * builds for any architecture with nothing but a C library. */
	struct sock_filter f[48];
	unsigned n = 0;
	f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	/* A syscall of another ABI (i386 int 0x80, arm32 compat) would open
	 * files behind the shield's back: such a process is killed. */
	f[n++] = JEQ(SC_RT_AUDIT_ARCH, 1, 0);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
	/* x32 numbers share the x86_64 audit arch: same reason. */
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[n++] = JEQ(SYS_open, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	f[n++] = JEQ(SYS_creat, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
#endif
	f[n++] = JEQ(SYS_openat, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	f[n++] = JEQ(SYS_openat2, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	/* The kernel reads an executable without open(2): a protected one is
	 * redirected to its verified plaintext (exec_served below). */
	f[n++] = JEQ(SYS_execve, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	f[n++] = JEQ(SYS_execveat, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	/* A working directory reached through a tampered link would make every
	 * relative path start in the host's directory. */
	f[n++] = JEQ(SYS_chdir, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	/* A mount changes what names lead to without an inotify event: the
	 * supervisor then stops trusting what it learnt (linkcache.h). */
	f[n++] = JEQ(SYS_mount, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	f[n++] = JEQ(SYS_umount2, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	f[n++] = JEQ(SYS_move_mount, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	/* io_uring opens files in kernel threads that seccomp never sees;
	 * programs fall back to plain syscalls on ENOSYS. */
	f[n++] = JEQ(SYS_io_uring_setup, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	/* open_tree gives a descriptor of any path without an open: an
	 * authenticated file read through it, or a protected one run by
	 * fexecve, would be the stored bytes. Mount tools use it, not
	 * applications. */
	f[n++] = JEQ(SYS_open_tree, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return sc_error_errno(err, errno, "setting no_new_privs");
	/* Killable wait (5.19): once the supervisor holds a request, a signal
	 * to the application does not restart the open under its feet. */
	long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	                  SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
	if (fd < 0 && errno == EINVAL)
		fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (fd < 0)
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, errno,
		                "installing the seccomp user notification filter (Linux 5.9 or later)");
	*ret_listener = (int)fd;
	return 0;
}

struct sc_rt_supervisor {
	int listener;
	sc_rt_provider *provider;
	sc_rt_log_fn log;
	void *log_userdata;
	bool addfd_send; /* SECCOMP_ADDFD_FLAG_SEND (5.14); else ADDFD then SEND */
	struct seccomp_notif_sizes sizes;
	struct seccomp_notif *req;
	struct seccomp_notif_resp *resp;
	char *path;             /* SC_RT_PATH_MAX + 1 */
	char *base;             /* SC_RT_PATH_MAX + 1 */
	char *target;           /* SC_RT_PATH_MAX + 1 */
	sc_rt_linkcache *links; /* names known not to be symlinks */
	bool dev_fd;            /* /dev/fd/N may stand for a descriptor (dev_fd_trusted) */
	/* Directories in or above a protected region that the application
	 * entered or opened, sorted: a relative path from one of them that now
	 * bears a name outside the regions (the host renamed it) is refused. */
	struct held_dir *held;
	size_t n_held, cap_held;
	bool held_full_said;
	/* Serving on a thread of its own (sc_rt_supervisor_start). */
	bool threaded;
	pthread_t thread;
	atomic_bool stop;
	int done[2];           /* pipe: a byte when the thread failed, EOF when it ended */
	sconify_error_t error; /* the thread's failure */
};

static bool dev_fd_trusted(void);

/* SCONIFY_LINK_CACHE_AFTER=N: the name cache starts after N opens (0: at
 * once) instead of SC_RT_LINKCACHE_START; for tests and tuning, harmless
 * whatever its value (the cache changes speed, never an answer). */
static unsigned link_cache_start(void)
{
	const char *v = getenv("SCONIFY_LINK_CACHE_AFTER");
	if (v == NULL || *v < '0' || *v > '9' || strlen(v) > 9)
		return SC_RT_LINKCACHE_START;
	return (unsigned)strtoul(v, NULL, 10);
}

static int probe_addfd(int listener, uint32_t flags)
{
	/* Notification id 0 is never pending: a kernel that knows ADDFD and
	 * the flags looks it up and answers ENOENT. */
	struct seccomp_notif_addfd a = {.id = 0, .flags = flags, .srcfd = (uint32_t)listener};
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a) >= 0)
		return 0;
	return errno == ENOENT ? 0 : -errno;
}

int sc_rt_supervisor_new(int listener, sc_rt_provider *provider, sc_rt_log_fn log, void *log_userdata,
                         sc_rt_supervisor **ret, sconify_error_t *err)
{
	cleanup_close int fd = listener;
	bool send = true;
	int r = probe_addfd(fd, SECCOMP_ADDFD_FLAG_SEND);
	if (r < 0) {
		send = false;
		r = probe_addfd(fd, 0);
	}
	if (r < 0)
		return sc_error(err, SCONIFY_ERR_UNSUPPORTED, -r,
		                "the kernel cannot install descriptors for seccomp notifications "
		                "(SECCOMP_IOCTL_NOTIF_ADDFD): the file shield needs Linux 5.9 or later");
	/* Linux 6.6: the waiting caller hands its CPU straight to the
	 * supervisor and back, instead of two scheduler wake-ups per open.
	 * Most of an unprotected open's added cost is this round trip (see
	 * docs/runtime.md); older kernels answer EINVAL and keep the default. */
	(void)ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0);
	struct seccomp_notif_sizes sizes;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
		return sc_error_errno(err, errno, "SECCOMP_GET_NOTIF_SIZES");

	sc_rt_supervisor *s = xzalloc(sizeof(*s));
	s->listener = steal_fd(&fd);
	s->provider = provider;
	s->log = log;
	s->log_userdata = log_userdata;
	s->addfd_send = send;
	s->sizes = sizes;
	/* The kernel may have grown the structures: use its sizes. */
	s->req = xzalloc(sizes.seccomp_notif > sizeof(*s->req) ? sizes.seccomp_notif : sizeof(*s->req));
	s->resp = xzalloc(sizes.seccomp_notif_resp > sizeof(*s->resp) ? sizes.seccomp_notif_resp
	                                                              : sizeof(*s->resp));
	s->path = xmalloc(SC_RT_PATH_MAX + 1);
	s->base = xmalloc(SC_RT_PATH_MAX + 1);
	s->target = xmalloc(SC_RT_PATH_MAX + 1);
	s->links = sc_rt_linkcache_new(link_cache_start());
	s->dev_fd = dev_fd_trusted();
	s->done[0] = s->done[1] = -1;
	*ret = s;
	return 0;
}

void sc_rt_supervisor_free(sc_rt_supervisor *s)
{
	if (s == NULL)
		return;
	sc_rt_supervisor_stop(s);
	if (s->done[0] >= 0)
		close(s->done[0]);
	sconify_error_free(&s->error);
	if (s->listener >= 0)
		close(s->listener);
	free(s->req);
	free(s->resp);
	free(s->path);
	free(s->base);
	free(s->target);
	free(s->held);
	sc_rt_linkcache_free(s->links);
	free(s);
}

int sc_rt_supervisor_fd(sc_rt_supervisor *s)
{
	return s->threaded ? s->done[0] : s->listener;
}

static void logf_(sc_rt_supervisor *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(sc_rt_supervisor *s, const char *fmt, ...)
{
	if (s->log == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	s->log(s->log_userdata, msg);
}

static bool id_valid(sc_rt_supervisor *s, uint64_t id)
{
	return ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* Reads size bytes at addr of process pid with process_vm_readv(2): one
 * system call, where opening /proc/<pid>/mem per notification cost a path
 * walk in procfs. The access check is the same (ptrace read access); the
 * caller checks SECCOMP_IOCTL_NOTIF_ID_VALID afterwards, so the pid was the
 * waiting caller's all along. Returns the bytes read (short at an unmapped
 * page), or -errno. */
static ssize_t read_remote(pid_t pid, uint64_t addr, void *buf, size_t size)
{
	if (addr > (uint64_t)INTPTR_MAX || size > (uint64_t)INTPTR_MAX - addr)
		return -EFAULT;
	struct iovec local = {.iov_base = buf, .iov_len = size};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = size};
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	return n < 0 ? -errno : n;
}

/* A NUL-terminated string at addr in the caller. process_vm_readv stops
 * at the first unmapped page, so a string ending right before one reads.
 * The kernel pins every page it reads from, so the first read takes at most
 * SC_RT_PATH_FIRST bytes and no read crosses a (4 KiB) page boundary: a
 * typical path costs one pinned page, not the two a 4 KiB read touches. */
#define SC_RT_PATH_FIRST 256
#define SC_RT_PAGE_MIN 4096u
static int read_cstring(pid_t pid, uint64_t addr, char *buf, size_t size)
{
	size_t got = 0;
	while (got < size) {
		uint64_t a = addr + got;
		if (a < addr)
			return -EFAULT;
		size_t want = SC_RT_PAGE_MIN - (size_t)(a & (SC_RT_PAGE_MIN - 1));
		if (got == 0 && want > SC_RT_PATH_FIRST)
			want = SC_RT_PATH_FIRST;
		if (want > size - got)
			want = size - got;
		ssize_t n = read_remote(pid, a, buf + got, want);
		if (n == -EPERM || n == -ESRCH)
			return (int)n;
		if (n <= 0)
			return -EFAULT;
		if (memchr(buf + got, '\0', (size_t)n))
			return 0;
		got += (size_t)n;
	}
	return -ENAMETOOLONG;
}

static int read_exact(pid_t pid, uint64_t addr, void *buf, size_t size)
{
	ssize_t n = read_remote(pid, addr, buf, size);
	if (n == -EPERM || n == -ESRCH)
		return (int)n;
	return n == (ssize_t)size ? 0 : -EFAULT;
}

/* The file system as the caller sees it. The supervisor shares its mount
 * namespace and root; only /proc/self and /proc/thread-self name another
 * process here than there. */
typedef struct {
	pid_t tid;
	sc_rt_linkcache *links;
	sc_rt_provider *provider;
} target_ctx;

/* The walk asks only "a symlink or not" (resolve.h): readlink(2) with a
 * one-byte buffer answers that (EINVAL: not a link) without the inode
 * attributes and the struct stat that lstat(2) fetches and copies, on the
 * path of every unprotected open. */
static int fs_lstat_type(void *ctx, const char *path, mode_t *ret_type)
{
	target_ctx *t = ctx;
	/* What is known costs no system call; what is learnt is kept while
	 * its directory is watched (the watch comes first). */
	if (sc_rt_linkcache_known(t->links, path)) {
		*ret_type = 0;
		return 0;
	}
	bool keep = sc_rt_linkcache_prepare(t->links, path);
	char byte;
	if (readlink(path, &byte, 1) >= 0) {
		*ret_type = S_IFLNK;
		return 0;
	}
	if (errno == EACCES || errno == EPERM) {
		/* readlink of /proc/<pid>/{fd/N,cwd,root} checks ptrace access,
		 * lstat does not: ask lstat, so such a link still counts as one
		 * (and its target is refused) instead of as missing. */
		struct stat st;
		if (lstat(path, &st) < 0)
			return -errno;
		*ret_type = st.st_mode & S_IFMT;
		if (keep && !S_ISLNK(st.st_mode))
			sc_rt_linkcache_add(t->links, path);
		return 0;
	}
	if (errno != EINVAL)
		return -errno;
	*ret_type = 0;
	if (keep)
		sc_rt_linkcache_add(t->links, path);
	return 0;
}

static int fs_protected_link(void *ctx, const char *path, const char **ret_target)
{
	target_ctx *t = ctx;
	return t->provider->protected_link(t->provider, path, ret_target);
}

static bool is_proc_pid_path(const char *path)
{
	if (!sc_startswith(path, "/proc/"))
		return false;
	const char *p = path + 6;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	return *p == '/';
}

static int fs_readlink(void *ctx, const char *path, char *buf, size_t size)
{
	target_ctx *t = ctx;
	/* Thread ids name the thread's own view of cwd and fds in /proc. */
	if (strcmp(path, "/proc/self") == 0) {
		snprintf(buf, size, "%d", (int)t->tid);
		return 0;
	}
	if (strcmp(path, "/proc/thread-self") == 0) {
		snprintf(buf, size, "%d/task/%d", (int)t->tid, (int)t->tid);
		return 0;
	}
	ssize_t n = readlink(path, buf, size - 1);
	if (n < 0)
		return -errno;
	if ((size_t)n >= size - 1)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	/* Magic links (fd/N, cwd, exe) name pipes, sockets and deleted files
	 * in ways that are no path: the kernel follows them, not us. */
	if (is_proc_pid_path(path) && (buf[0] != '/' || sc_endswith(buf, " (deleted)")))
		return -EXDEV;
	return 0;
}

struct held_dir {
	dev_t dev;
	ino_t ino;
};

#define SC_RT_HELD_MAX 65536u

static int held_cmp(const struct held_dir *a, dev_t dev, ino_t ino)
{
	if (a->dev != dev)
		return a->dev < dev ? -1 : 1;
	return a->ino < ino ? -1 : a->ino > ino;
}

/* Binary search: true when held, *pos where it is or would go. */
static bool held_find(const sc_rt_supervisor *s, dev_t dev, ino_t ino, size_t *pos)
{
	size_t lo = 0, hi = s->n_held;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = held_cmp(&s->held[mid], dev, ino);
		if (c == 0) {
			*pos = mid;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return false;
}

static void hold_dir(sc_rt_supervisor *s, const struct stat *st)
{
	size_t pos;
	if (!S_ISDIR(st->st_mode) || held_find(s, st->st_dev, st->st_ino, &pos))
		return;
	if (s->n_held == SC_RT_HELD_MAX) {
		if (!s->held_full_said)
			logf_(s,
			      "more than %u protected directories opened: relative paths from the "
			      "others are no longer checked against a rename",
			      SC_RT_HELD_MAX);
		s->held_full_said = true;
		return;
	}
	if (s->n_held == s->cap_held) {
		s->cap_held = s->cap_held ? 2 * s->cap_held : 64;
		s->held = xreallocarray(s->held, s->cap_held, sizeof(*s->held));
	}
	memmove(&s->held[pos + 1], &s->held[pos], (s->n_held - pos) * sizeof(*s->held));
	s->held[pos] = (struct held_dir){st->st_dev, st->st_ino};
	s->n_held++;
}

/* The directory a relative path starts from, into s->base: 0, or an errno
 * answer, or 1 when the kernel should decide (the fd is no directory).
 * When the application holds protected directories, *ret_moved says
 * whether this one is such a directory that now bears a name outside the
 * regions. */
static int caller_dir(sc_rt_supervisor *s, pid_t tid, int dirfd, int *ret_errno, bool *ret_moved)
{
	*ret_moved = false;
	char link[64];
	if (dirfd == AT_FDCWD)
		snprintf(link, sizeof(link), "/proc/%d/cwd", (int)tid);
	else
		snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)tid, dirfd);
	ssize_t n = readlink(link, s->base, SC_RT_PATH_MAX);
	if (n < 0) {
		*ret_errno = dirfd == AT_FDCWD || errno != ENOENT ? EACCES : EBADF;
		return -1;
	}
	if (n >= SC_RT_PATH_MAX) {
		*ret_errno = ENAMETOOLONG;
		return -1;
	}
	s->base[n] = '\0';
	/* Not a directory (a pipe, a memfd we served), or a removed one where
	 * nothing can be opened any more: the kernel answers ENOTDIR/ENOENT. */
	if (s->base[0] != '/' || sc_endswith(s->base, " (deleted)"))
		return 1;
	struct stat st;
	size_t pos;
	const char *target;
	if (s->n_held > 0 && s->provider->protected_link && stat(link, &st) == 0 &&
	    held_find(s, st.st_dev, st.st_ino, &pos) &&
	    s->provider->protected_link(s->provider, s->base, &target) == 0)
		*ret_moved = true;
	return 0;
}

typedef struct {
	uint64_t path_addr;
	int dirfd;
	uint64_t flags;
	uint64_t resolve;
	uint64_t how_addr;
	uint64_t how_size;
	bool exec;         /* execve/execveat: flags stand for the exec's read */
	bool chdir;        /* chdir: walked like an open of a directory, then continued */
	uint64_t argv;     /* execve/execveat: the argument vector */
	uint64_t at_flags; /* execveat: AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW */
} open_call;

/* The caller's memory for writing, through /proc/<pid>/mem, which (unlike
 * process_vm_writev) also writes a read-only mapping such as a string
 * literal, copy-on-write as a debugger does. Checked to be the waiting
 * caller's once open: a descriptor, or -errno (-ESRCH: the caller is gone). */
static int open_mem(sc_rt_supervisor *s)
{
	char mem[64];
	snprintf(mem, sizeof(mem), "/proc/%d/mem", (int)s->req->pid);
	int fd = open(mem, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!id_valid(s, s->req->id)) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

static int write_mem(int mem, uint64_t addr, const void *buf, size_t size)
{
	if (addr > (uint64_t)INT64_MAX)
		return -EFAULT;
	ssize_t n = pwrite(mem, buf, size, (off_t)addr);
	if (n < 0)
		return -errno;
	return (size_t)n == size ? 0 : -EFAULT;
}

/* The stack pointer of thread tid, waiting in a system call, from
 * /proc/<tid>/syscall ("NR ARG1 .. ARG6 SP PC"): 0 and *ret_sp, or -1. */
static int caller_sp(pid_t tid, uint64_t *ret_sp)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)tid);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	unsigned long long v[9];
	if (sscanf(buf, "%llu %llx %llx %llx %llx %llx %llx %llx %llx", &v[0], &v[1], &v[2], &v[3], &v[4],
	           &v[5], &v[6], &v[7], &v[8]) != 9)
		return -1;
	*ret_sp = v[7];
	return 0;
}

/* Whether thread tid shares its memory with its parent process: a vfork
 * child, or posix_spawn's (CLONE_VM | CLONE_VFORK), whose parent runs on
 * once the exec is done. True also when it cannot be told. */
static bool shares_parent_memory(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	const char *after = strrchr(buf, ')'); /* the name may hold anything */
	char state;
	int ppid;
	if (after == NULL || sscanf(after + 1, " %c %d", &state, &ppid) != 2 || ppid <= 0)
		return true;
	long r = syscall(SYS_kcmp, tid, (pid_t)ppid, KCMP_VM, 0, 0);
	return r != 1 && r != 2; /* 0: one address space; -1: unknown */
}

/* Overwriting the path in place also overwrites argv[0] when both are one
 * string, as in execv(argv[0], argv) (shells do this), and programs such as
 * busybox tell what to do by argv[0]. Such an argv[0] (its text is still in
 * s->path) is copied below the caller's stack pointer (beyond the x86-64 red
 * zone; with a killable wait the caller runs no code until the exec is over)
 * and its slot in the argument vector pointed at the copy. Not when the
 * caller shares its memory with its parent, which would be left with a slot
 * pointing into a stack that is gone. Best effort: argv[0] is then the new
 * path. */
static void keep_argv0(sc_rt_supervisor *s, const open_call *c, int mem, size_t overwritten)
{
	uint64_t argv0 = 0, sp = 0;
	if (c->argv == 0 || read_exact(s->req->pid, c->argv, &argv0, sizeof(argv0)) < 0)
		return;
	if (argv0 < c->path_addr || argv0 - c->path_addr >= overwritten)
		return;
	if (shares_parent_memory(s->req->pid))
		return;
	const char *text = s->path + (argv0 - c->path_addr);
	size_t size = strlen(text) + 1;
	if (caller_sp(s->req->pid, &sp) < 0 || sp < 512 + size)
		return;
	uint64_t copy = (sp - 256 - size) & ~(uint64_t)15;
	struct iovec local = {.iov_base = (void *)text, .iov_len = size};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)copy, .iov_len = size};
	/* process_vm_writev: only memory the caller could write itself (not a
	 * guard page, which /proc/<pid>/mem would write, and the exec then not
	 * read). The pid was checked when mem was opened; the caller waits. */
	if (process_vm_writev(s->req->pid, &local, 1, &remote, 1, 0) != (ssize_t)size)
		return;
	(void)write_mem(mem, c->argv, &copy, sizeof(copy));
}

/* /dev/fd/N names the caller's descriptor only while /dev/fd is the kernel's
 * link in a /dev of its own, not a name the image (the disk) provides. */
static bool dev_fd_trusted(void)
{
	struct stat root, dev;
	char target[32];
	ssize_t n = readlink("/dev/fd", target, sizeof(target) - 1);
	if (n < 0 || stat("/", &root) < 0 || stat("/dev", &dev) < 0)
		return false;
	target[n] = '\0';
	return root.st_dev != dev.st_dev && strcmp(target, "/proc/self/fd") == 0;
}

/* An exec of a file the provider serves (fd, a description of a sealed
 * memfd): the kernel would load the stored file (ciphertext, or an
 * unverified one). The verified descriptor is installed in the caller, and
 * the path it passed is overwritten in its memory, in place, with that
 * descriptor's /proc/thread-self/fd/N, /proc/self/fd/N or (the shortest)
 * /dev/fd/N before the exec continues: the kernel then loads the plaintext.
 * docs/runtime.md has the limits (the path must be long enough; the
 * caller's string is changed). */
static void exec_served(sc_rt_supervisor *s, const open_call *c, const char *resolved, int fd,
                        sc_rt_answer *ret)
{
	cleanup_close int owned = fd;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) { /* a directory of a region */
		*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EACCES};
		return;
	}
	/* The stored file's execute bits decide, as they would without us (an
	 * injected file has none on disk: it may run). */
	struct stat disk;
	if (stat(resolved, &disk) == 0 && (disk.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) {
		*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EACCES};
		return;
	}
	size_t room = strlen(s->path);
	size_t shortest = s->dev_fd ? sizeof("/dev/fd/N") - 1 : sizeof("/proc/self/fd/N") - 1;
	const char *why = NULL;
	if (c->at_flags & AT_SYMLINK_NOFOLLOW)
		why = "AT_SYMLINK_NOFOLLOW cannot be kept for a redirected exec";
	else if (room < shortest)
		why = s->dev_fd ? "the path passed is shorter than the /dev/fd/N that would replace it"
		                : "the path passed is shorter than the /proc/self/fd/N that would replace it "
		                  "(/dev/fd is not the kernel's)";
	int n = -1;
	if (why == NULL) {
		/* Close-on-exec until the redirect is done: a refused exec
		 * leaves nothing the next exec would inherit. */
		struct seccomp_notif_addfd addfd = {
		        .id = s->req->id, .srcfd = (uint32_t)fd, .newfd_flags = O_CLOEXEC};
		do
			n = ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
		while (n < 0 && errno == EINTR);
		if (n < 0) { /* ENOENT: the caller is gone; EMFILE: out of descriptors */
			*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO,
			                      .error = errno == ENOENT ? EINTR : errno};
			return;
		}
	}
	char with[48] = "";
	if (n >= 0) {
		snprintf(with, sizeof(with), "/proc/thread-self/fd/%d", n);
		if (strlen(with) > room)
			snprintf(with, sizeof(with), "/proc/self/fd/%d", n);
		if (strlen(with) > room && s->dev_fd)
			snprintf(with, sizeof(with), "/dev/fd/%d", n);
		if (strlen(with) > room)
			why = "the path passed is shorter than the descriptor path that would replace it";
	}
	int mem = -1;
	if (why == NULL) {
		mem = open_mem(s);
		if (mem == -ESRCH) {
			*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EINTR};
			return;
		}
		int r = mem < 0 ? mem : write_mem(mem, c->path_addr, with, strlen(with) + 1);
		if (r < 0)
			why = strerror(-r);
	}
	if (why) {
		if (id_valid(s, s->req->id)) {
			cleanup_free char *qp = sc_quote(s->path, SC_QUOTE_MAX);
			cleanup_free char *q = sc_quote(resolved, SC_QUOTE_MAX);
			logf_(s, "exec of `%s' (`%s') refused: %s", qp, q, why);
		}
		if (mem >= 0)
			close(mem);
		*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EACCES};
		return;
	}
	keep_argv0(s, c, mem, strlen(with) + 1);
	close(mem);
	/* A script's interpreter opens the path it is given: the descriptor
	 * must survive the exec, as for the entry command (launch.c). */
	char head[2];
	if (pread(fd, head, 2, 0) == 2 && head[0] == '#' && head[1] == '!') {
		struct seccomp_notif_addfd keep = {.id = s->req->id,
		                                   .flags = SECCOMP_ADDFD_FLAG_SETFD,
		                                   .srcfd = (uint32_t)fd,
		                                   .newfd = (uint32_t)n,
		                                   .newfd_flags = 0};
		int r;
		do
			r = ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &keep);
		while (r < 0 && errno == EINTR);
	}
	*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
}

/* execveat(fd, "", ..., AT_EMPTY_PATH) (fexecve) runs what fd is. One the
 * shield served is a memfd. Every other way to a descriptor went through an
 * open the shield answered (open_tree is refused by the filter), so a
 * descriptor naming a file of a region came from elsewhere (passed in by a
 * process outside the filter, say) and would run its stored bytes: it is
 * refused, as is one whose name is not the file it holds (a detached
 * mount). */
static void exec_descriptor(sc_rt_supervisor *s, int dirfd, sc_rt_answer *ret)
{
	*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
	char link[64];
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)s->req->pid, dirfd);
	ssize_t n = readlink(link, s->base, SC_RT_PATH_MAX);
	if (n <= 0 || n >= SC_RT_PATH_MAX) /* no such descriptor: the kernel says EBADF */
		return;
	s->base[n] = '\0';
	if (s->base[0] != '/' || sc_endswith(s->base, " (deleted)"))
		return; /* a memfd, a pipe, a removed file */
	struct stat held, named;
	bool same = stat(link, &held) == 0 && stat(s->base, &named) == 0 && held.st_dev == named.st_dev &&
	            held.st_ino == named.st_ino;
	cleanup_error sconify_error_t err = NULL;
	sc_rt_answer a = {.verdict = SC_RT_CONTINUE};
	int r = s->provider->open(s->provider, s->base, O_RDONLY | O_CLOEXEC, &a, &err);
	if (a.verdict == SC_RT_FD)
		close(a.fd);
	if (same && r == 0 && a.verdict == SC_RT_CONTINUE)
		return;
	if (id_valid(s, s->req->id)) {
		cleanup_free char *q = sc_quote(s->base, SC_QUOTE_MAX);
		logf_(s, "exec of descriptor %d (`%s') refused: a protected file runs by its path", dirfd, q);
	}
	*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EACCES};
}

static void decide(sc_rt_supervisor *s, sc_rt_answer *ret, int *ret_flags)
{
	const struct seccomp_notif *req = s->req;
	open_call c = {.dirfd = AT_FDCWD};
	switch (req->data.nr) {
#if defined(__x86_64__)
	case SYS_open:
		c.path_addr = req->data.args[0];
		c.flags = req->data.args[1];
		break;
	case SYS_creat:
		c.path_addr = req->data.args[0];
		c.flags = O_CREAT | O_WRONLY | O_TRUNC;
		break;
#endif
	case SYS_openat:
		c.dirfd = (int)req->data.args[0];
		c.path_addr = req->data.args[1];
		c.flags = req->data.args[2];
		break;
	case SYS_openat2:
		c.dirfd = (int)req->data.args[0];
		c.path_addr = req->data.args[1];
		c.how_addr = req->data.args[2];
		c.how_size = req->data.args[3];
		break;
	case SYS_execve:
		c.path_addr = req->data.args[0];
		c.argv = req->data.args[1];
		c.exec = true;
		break;
	case SYS_execveat:
		c.dirfd = (int)req->data.args[0];
		c.path_addr = req->data.args[1];
		c.argv = req->data.args[2];
		c.at_flags = req->data.args[4];
		c.exec = true;
		break;
	case SYS_chdir:
		c.path_addr = req->data.args[0];
		c.flags = O_RDONLY | O_DIRECTORY;
		c.chdir = true;
		break;
	case SYS_mount:
	case SYS_umount2:
	case SYS_move_mount:
		sc_rt_linkcache_disable(s->links);
		*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
		return;
	default:
		*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
		return;
	}
	/* open(2) flags are an int. */
	if (req->data.nr != SYS_openat2)
		c.flags &= 0xffffffffu;
	/* An exec reads the file as an O_RDONLY open would. */
	if (c.exec)
		c.flags = O_RDONLY | O_CLOEXEC | ((c.at_flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0);
	const char *what = c.exec ? "exec" : c.chdir ? "chdir" : "open";

	int r = read_cstring(req->pid, c.path_addr, s->path, SC_RT_PATH_MAX + 1);
	if (r == 0 && req->data.nr == SYS_openat2) {
		struct open_how how;
		if (c.how_size < sizeof(how)) {
			*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE}; /* EINVAL from the kernel */
			return;
		}
		r = read_exact(req->pid, c.how_addr, &how, sizeof(how));
		c.flags = how.flags;
		c.resolve = how.resolve;
	}
	/* What was read belongs to the process that asked only if it still
	 * waits, not to one that reused its pid after it died. The answer needs
	 * no check of its own: the kernel delivers it (SEND, ADDFD) only to the
	 * notification's id, i.e. to a caller that has been waiting since
	 * RECV, so whatever was read by its pid was its own. Only what we do
	 * besides answering (a log line) checks first. */
	if ((r == -EPERM || r == -ESRCH) && !id_valid(s, req->id)) {
		*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EINTR};
		return;
	}
	if (r == -EPERM || r == -ESRCH) {
		logf_(s, "cannot read the memory of process %d (%s): %s refused", (int)req->pid, strerror(-r),
		      what);
		*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EACCES};
		return;
	}
	if (r < 0) {
		*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = -r};
		return;
	}
	if (c.exec && s->path[0] == '\0' && (c.at_flags & AT_EMPTY_PATH)) {
		exec_descriptor(s, c.dirfd, ret);
		return;
	}
	/* Flags or resolve bits this kernel rejects (EINVAL) open nothing. */
	if (c.flags > 0xffffffffu) {
		*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
		return;
	}

	const char *root = "/";
	int rflags = 0;
	if (c.flags & O_NOFOLLOW)
		rflags |= SC_RT_RESOLVE_NOFOLLOW;
	if (c.resolve & RESOLVE_NO_SYMLINKS)
		rflags |= SC_RT_RESOLVE_NO_SYMLINKS;
	bool scoped = c.resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH);
	if (s->path[0] != '/' || scoped) {
		int e = 0;
		bool moved = false;
		r = caller_dir(s, req->pid, c.dirfd, &e, &moved);
		if (r < 0) {
			*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = e};
			return;
		}
		if (moved) { /* a protected directory the host renamed out of its region */
			if (id_valid(s, req->id)) {
				cleanup_free char *q = sc_quote(s->path, SC_QUOTE_MAX);
				cleanup_free char *qb = sc_quote(s->base, SC_QUOTE_MAX);
				logf_(s,
				      "%s of `%s' refused: it starts from `%s', a protected directory moved "
				      "out "
				      "of its region",
				      what, q, qb);
			}
			*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EIO};
			return;
		}
		if (r > 0) {
			*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
			return;
		}
		if (scoped)
			root = s->base;
		if (c.resolve & RESOLVE_BENEATH) {
			rflags |= SC_RT_RESOLVE_BENEATH;
			if (s->path[0] == '/') { /* EXDEV from the kernel */
				*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
				return;
			}
		}
	} else {
		strcpy(s->base, "/");
	}

	sc_rt_linkcache_sync(s->links);
	target_ctx t = {.tid = req->pid, .links = s->links, .provider = s->provider};
	sc_rt_fsops ops = {.lstat_type = fs_lstat_type,
	                   .readlink = fs_readlink,
	                   .protected_link = s->provider->protected_link ? fs_protected_link : NULL,
	                   .ctx = &t};
	cleanup_free char *resolved = NULL;
	r = sc_rt_resolve(&ops, root, s->base, s->path, rflags, &resolved);
	/* Everything above read the caller's memory and /proc entries by pid:
	 * valid only if the caller is still the one waiting, which the kernel
	 * checks when it takes the answer (above). */
	if (r == -EXDEV) {
		*ret = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
		return;
	}
	if (r == -EIO && resolved) { /* the image's links were tampered with: resolved is the message */
		if (id_valid(s, req->id)) {
			cleanup_free char *q = sc_quote(s->path, SC_QUOTE_MAX);
			logf_(s, "%s of `%s' refused: %s", what, q, resolved);
		}
		*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EIO};
		return;
	}
	if (r < 0) {
		*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = -r};
		return;
	}

	cleanup_error sconify_error_t err = NULL;
	sc_rt_answer a = {.verdict = SC_RT_CONTINUE};
	if (s->provider->open(s->provider, resolved, (int)c.flags, &a, &err) < 0) {
		if (!id_valid(s, req->id)) { /* not the caller's path: no log line */
			*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EINTR};
			return;
		}
		cleanup_free char *q = sc_quote(resolved, SC_QUOTE_MAX);
		logf_(s, "%s of `%s' failed: %s", what, q, sconify_error_message(err));
		*ret = (sc_rt_answer){.verdict = SC_RT_ERRNO, .error = EIO};
		return;
	}
	if (err && id_valid(s, req->id)) { /* an answer with something to say: verification failed */
		cleanup_free char *q = sc_quote(resolved, SC_QUOTE_MAX);
		logf_(s, "%s of `%s' refused: %s", what, q, sconify_error_message(err));
	}
	if (c.exec && a.verdict == SC_RT_FD) {
		exec_served(s, &c, resolved, a.fd, ret);
		return;
	}
	/* Directories of the protected regions (and above them) that the
	 * application may start relative paths from, by chdir or descriptor. */
	struct stat st;
	const char *target;
	if (a.verdict == SC_RT_FD && fstat(a.fd, &st) == 0 && S_ISDIR(st.st_mode))
		hold_dir(s, &st);
	else if (a.verdict == SC_RT_CONTINUE && s->provider->protected_link &&
	         s->provider->protected_link(s->provider, resolved, &target) > 0 && lstat(resolved, &st) == 0)
		hold_dir(s, &st);               /* lstat: a link not followed (O_NOFOLLOW) holds nothing */
	if (c.chdir && a.verdict == SC_RT_FD) { /* a directory: the kernel changes into it */
		close(a.fd);
		a = (sc_rt_answer){.verdict = SC_RT_CONTINUE};
	}
	*ret_flags = (int)c.flags;
	*ret = a;
}

/* Receives and answers one notification: 0, or 1 when no process uses the
 * filter any more (only when the listener is read without poll), or -1. */
static int serve_one(sc_rt_supervisor *s, sconify_error_t *err)
{
	memset(s->req, 0, s->sizes.seccomp_notif);
	if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_RECV, s->req) < 0) {
		/* ENOENT: the caller died (or was interrupted) before we got it,
		 * or nobody is left to ask: the listener then says POLLHUP. */
		if (errno == ENOENT) {
			struct pollfd p = {.fd = s->listener, .events = POLLIN};
			return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) && !(p.revents & POLLIN) ? 1 : 0;
		}
		if (errno == EINTR || errno == EAGAIN)
			return 0;
		return sc_error_errno(err, errno, "receiving a seccomp notification");
	}
	sc_rt_answer a = {.verdict = SC_RT_CONTINUE};
	int flags = 0;
	decide(s, &a, &flags);

	memset(s->resp, 0, s->sizes.seccomp_notif_resp);
	s->resp->id = s->req->id;
	if (a.verdict == SC_RT_FD) {
		struct seccomp_notif_addfd addfd = {
		        .id = s->req->id,
		        .flags = s->addfd_send ? SECCOMP_ADDFD_FLAG_SEND : 0,
		        .srcfd = (uint32_t)a.fd,
		        .newfd_flags = (flags & O_CLOEXEC) ? O_CLOEXEC : 0,
		};
		/* The serving thread's wake signal (or any signal) may interrupt
		 * the ioctl: an interrupted ADDFD installed nothing, so retry. */
		int r;
		do
			r = ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
		while (r < 0 && errno == EINTR);
		int e = errno;
		close(a.fd);
		if (r >= 0 && s->addfd_send)
			return 0;
		if (r < 0 && e == ENOENT)
			return 0;
		if (r >= 0) {
			s->resp->val = r;
		} else {
			s->resp->error = -e; /* EMFILE: the caller is out of descriptors */
		}
	} else if (a.verdict == SC_RT_ERRNO) {
		s->resp->error = -a.error;
	} else {
		s->resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	}
	int r;
	do
		r = ioctl(s->listener, SECCOMP_IOCTL_NOTIF_SEND, s->resp);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno != ENOENT)
		return sc_error_errno(err, errno, "answering a seccomp notification");
	return 0;
}

int sc_rt_supervisor_handle(sc_rt_supervisor *s, sconify_error_t *err)
{
	if (!s->threaded)
		return serve_one(s, err) < 0 ? -1 : 0;
	/* The serving thread wrote a byte: it failed, and has ended. */
	char byte;
	ssize_t n = read(s->done[0], &byte, 1);
	if (n == 1 && s->error) {
		sc_error_move(err, &s->error);
		return -1;
	}
	return 0;
}

/* Interrupts the serving thread's wait in SECCOMP_IOCTL_NOTIF_RECV. */
#define SC_RT_WAKE_SIGNAL (SIGRTMIN + 3)
/* Tells the serving thread that names changed (linkcache.h). */
#define SC_RT_LINKS_SIGNAL (SIGRTMIN + 4)

static void wake_handler(int sig)
{
	(void)sig;
}

static void *serve(void *arg)
{
	sc_rt_supervisor *s = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SC_RT_WAKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/* Changes to names reach this thread as a signal: no system call per
	 * open to ask for them (else one). */
	(void)sc_rt_linkcache_arm(s->links, SC_RT_LINKS_SIGNAL);
	int r = 0;
	while (r == 0 && !atomic_load(&s->stop))
		r = serve_one(s, &s->error);
	if (r < 0) {
		ssize_t n;
		do
			n = write(s->done[1], "E", 1);
		while (n < 0 && errno == EINTR);
	}
	/* EOF: the main loop stops listening (or learns of the failure). */
	close(s->done[1]);
	s->done[1] = -1;
	return NULL;
}

int sc_rt_supervisor_start(sc_rt_supervisor *s, sconify_error_t *err)
{
	if (s->threaded)
		return 0;
	struct sigaction sa = {.sa_handler = wake_handler}; /* no SA_RESTART: RECV ends with EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SC_RT_WAKE_SIGNAL, &sa, NULL) < 0)
		return sc_error_errno(err, errno, "sigaction");
	/* Only the serving thread takes the signal (sent to it alone). */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SC_RT_WAKE_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	if (pipe2(s->done, O_CLOEXEC) < 0)
		return sc_error_errno(err, errno, "pipe");
	atomic_store(&s->stop, false);
	int e = pthread_create(&s->thread, NULL, serve, s);
	if (e != 0) {
		close(s->done[0]);
		close(s->done[1]);
		s->done[0] = s->done[1] = -1;
		return sc_error_errno(err, e, "starting the supervisor thread");
	}
	s->threaded = true;
	return 0;
}

void sc_rt_supervisor_stop(sc_rt_supervisor *s)
{
	if (s == NULL || !s->threaded)
		return;
	atomic_store(&s->stop, true);
	/* A signal that lands just before the thread enters RECV is lost:
	 * send it again until the thread has ended. */
	for (;;) {
		pthread_kill(s->thread, SC_RT_WAKE_SIGNAL);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 5 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		int e = pthread_timedjoin_np(s->thread, NULL, &ts);
		if (e == 0 || e != ETIMEDOUT)
			break;
	}
	s->threaded = false;
}
