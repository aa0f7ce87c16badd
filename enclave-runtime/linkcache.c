/* SPDX-License-Identifier: Apache-2.0 */
#include "linkcache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/strutil.h"
#include "core/xalloc.h"
#include "session.h"

enum {
	KNOWN = 1 << 0,   /* exists, not a symbolic link */
	WATCHED = 1 << 1, /* a directory whose names are watched (wd) */
};

typedef struct node {
	struct node *next;
	uint64_t hash;
	int wd;
	unsigned flags;
	char path[];
} node;

#define BUCKETS 16384u /* a power of two */
#define WATCH_MASK                                                                                          \
	(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | \
	 IN_DONT_FOLLOW)

struct sc_rt_linkcache {
	int ino;       /* -1: the cache is off (not started, or off for good) */
	unsigned wait; /* syncs until it starts; 0: started, or off for good */
	int signo;     /* armed: the signal the thread tid gets on a change */
	pid_t tid;
	node **buckets;
	size_t names, watches;
	char **wd_path; /* wd -> the directory it watches, as walked */
	size_t wd_cap;
};

static uint64_t hash_path(const char *s)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static node **slot(sc_rt_linkcache *c, const char *path, uint64_t h)
{
	node **p = &c->buckets[h & (BUCKETS - 1)];
	while (*p && ((*p)->hash != h || strcmp((*p)->path, path) != 0))
		p = &(*p)->next;
	return p;
}

static node *get(sc_rt_linkcache *c, const char *path, bool create)
{
	uint64_t h = hash_path(path);
	node **p = slot(c, path, h);
	if (*p == NULL && create) {
		size_t len = strlen(path);
		node *n = xzalloc(sizeof(*n) + len + 1);
		n->hash = h;
		n->wd = -1;
		memcpy(n->path, path, len + 1);
		*p = n;
	}
	return *p;
}

/* Clears flags of the node at path; it goes when nothing is left. */
static void clear(sc_rt_linkcache *c, const char *path, unsigned flags)
{
	uint64_t h = hash_path(path);
	node **p = slot(c, path, h);
	node *n = *p;
	if (n == NULL)
		return;
	if ((n->flags & KNOWN) && (flags & KNOWN))
		c->names--;
	n->flags &= ~flags;
	if (n->flags == 0) {
		*p = n->next;
		free(n);
	}
}

/* Forgets dir and every name below it: a directory that moved or went. Its
 * watches stay in the kernel (events from them only make us forget more),
 * but no longer count as watching these paths. */
static void forget_tree(sc_rt_linkcache *c, const char *dir)
{
	size_t len = strlen(dir);
	for (size_t b = 0; b < BUCKETS; b++) {
		node **p = &c->buckets[b];
		while (*p) {
			node *n = *p;
			bool below = strncmp(n->path, dir, len) == 0 &&
			             (n->path[len] == '\0' || n->path[len] == '/');
			if (!below) {
				p = &n->next;
				continue;
			}
			if (n->flags & KNOWN)
				c->names--;
			*p = n->next;
			free(n);
		}
	}
}

static void drop_all(sc_rt_linkcache *c)
{
	for (size_t b = 0; b < BUCKETS; b++)
		while (c->buckets[b]) {
			node *n = c->buckets[b];
			c->buckets[b] = n->next;
			free(n);
		}
	for (size_t i = 0; i < c->wd_cap; i++) {
		free(c->wd_path[i]);
		c->wd_path[i] = NULL;
	}
	c->names = c->watches = 0;
}

/* Set by the signal handler of an armed cache (one per process: the
 * supervisor's). */
static volatile sig_atomic_t changed = 1;

static void on_change(int sig)
{
	(void)sig;
	changed = 1;
}

static bool arm_fd(sc_rt_linkcache *c)
{
	struct f_owner_ex owner = {.type = F_OWNER_TID, .pid = c->tid};
	int fl = fcntl(c->ino, F_GETFL);
	return fl >= 0 && fcntl(c->ino, F_SETSIG, c->signo) == 0 && fcntl(c->ino, F_SETOWN_EX, &owner) == 0 &&
	       fcntl(c->ino, F_SETFL, fl | O_ASYNC) == 0;
}

static void start(sc_rt_linkcache *c)
{
	c->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (c->ino >= 0 && c->signo && !arm_fd(c))
		c->signo = 0; /* sync asks each time */
	changed = 1;          /* nothing can have been signalled before */
}

/* Starts again empty, with a new inotify instance (which drops the old
 * one's watches at once). */
static void reset(sc_rt_linkcache *c)
{
	drop_all(c);
	if (c->ino >= 0)
		close(c->ino);
	start(c);
}

bool sc_rt_linkcache_arm(sc_rt_linkcache *c, int signo)
{
	if (c->ino < 0 && c->wait == 0) /* off for good */
		return false;
	struct sigaction sa = {.sa_handler = on_change, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	if (sigaction(signo, &sa, NULL) < 0 || sigaction(SIGIO, &sa, NULL) < 0)
		return false;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, signo);
	sigaddset(&set, SIGIO);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	c->tid = (pid_t)syscall(SYS_gettid);
	c->signo = signo;
	if (c->ino >= 0 && !arm_fd(c)) { /* else start() arms it */
		c->signo = 0;
		return false;
	}
	changed = 1; /* what was queued before this signals nothing */
	return true;
}

sc_rt_linkcache *sc_rt_linkcache_new(unsigned start_after)
{
	sc_rt_linkcache *c = xzalloc(sizeof(*c));
	c->buckets = xcalloc(BUCKETS, sizeof(*c->buckets));
	c->ino = -1;
	c->wait = start_after;
	if (start_after == 0)
		start(c);
	return c;
}

void sc_rt_linkcache_free(sc_rt_linkcache *c)
{
	if (c == NULL)
		return;
	drop_all(c);
	if (c->ino >= 0)
		close(c->ino);
	free(c->buckets);
	free(c->wd_path);
	free(c);
}

void sc_rt_linkcache_disable(sc_rt_linkcache *c)
{
	drop_all(c);
	if (c->ino >= 0)
		close(c->ino);
	c->ino = -1;
	c->wait = 0;
}

static const char *wd_dir(sc_rt_linkcache *c, int wd)
{
	return wd >= 0 && (size_t)wd < c->wd_cap ? c->wd_path[wd] : NULL;
}

static void apply(sc_rt_linkcache *c, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW) { /* events were lost: nothing is sure */
		reset(c);
		return;
	}
	const char *dir = wd_dir(c, ev->wd);
	if (dir == NULL)
		return;
	if (ev->mask & IN_IGNORED) { /* the watch is gone (its directory was removed) */
		node *n = get(c, dir, false);
		if (n && n->wd == ev->wd)
			clear(c, dir, WATCHED);
		free(c->wd_path[ev->wd]);
		c->wd_path[ev->wd] = NULL;
		c->watches--;
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		forget_tree(c, dir);
		return;
	}
	if (ev->len == 0)
		return;
	/* A name created, moved or removed in dir: whatever it is now is not
	 * what we knew. What lay below it is forgotten by its own watch. */
	cleanup_free char *child =
	        strcmp(dir, "/") == 0 ? xasprintf("/%s", ev->name) : xasprintf("%s/%s", dir, ev->name);
	clear(c, child, KNOWN);
}

void sc_rt_linkcache_sync(sc_rt_linkcache *c)
{
	if (c->ino < 0) {
		if (c->wait > 0 && --c->wait == 0)
			start(c); /* nothing is known yet: nothing to apply */
		return;
	}
	if (c->signo) {
		if (!changed)
			return;
		changed = 0; /* before reading: a change from now on signals again */
	} else {
		int avail = 0;
		if (ioctl(c->ino, FIONREAD, &avail) < 0 || avail <= 0)
			return;
	}
	_Alignas(struct inotify_event) char buf[16384];
	for (;;) {
		ssize_t n = read(c->ino, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
			apply(c, ev);
			if (c->ino < 0)
				return;
			off += (ssize_t)(sizeof(*ev) + ev->len);
		}
	}
}

bool sc_rt_linkcache_known(sc_rt_linkcache *c, const char *path)
{
	if (c->ino < 0)
		return false;
	node *n = get(c, path, false);
	return n && (n->flags & KNOWN);
}

bool sc_rt_linkcache_prepare(sc_rt_linkcache *c, const char *path)
{
	if (c->ino < 0 || path[0] != '/' || sc_rt_path_kernel_fs(path))
		return false;
	const char *slash = strrchr(path, '/');
	cleanup_free char *dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
	node *n = get(c, dir, false);
	if (n && (n->flags & WATCHED))
		return true;
	if (c->watches >= SC_RT_LINKCACHE_WATCHES) {
		reset(c);
		if (c->ino < 0)
			return false;
	}
	int wd = inotify_add_watch(c->ino, dir, WATCH_MASK);
	if (wd < 0)
		return false;
	if ((size_t)wd >= c->wd_cap) {
		size_t cap = c->wd_cap ? c->wd_cap : 64;
		while (cap <= (size_t)wd)
			cap *= 2;
		c->wd_path = xreallocarray(c->wd_path, cap, sizeof(*c->wd_path));
		memset(c->wd_path + c->wd_cap, 0, (cap - c->wd_cap) * sizeof(*c->wd_path));
		c->wd_cap = cap;
	}
	/* The same directory (inode) under another name gets its old wd. */
	if (c->wd_path[wd] == NULL)
		c->watches++;
	free(c->wd_path[wd]);
	c->wd_path[wd] = xstrdup(dir);
	n = get(c, dir, true);
	n->flags |= WATCHED;
	n->wd = wd;
	return true;
}

void sc_rt_linkcache_add(sc_rt_linkcache *c, const char *path)
{
	if (c->ino < 0)
		return;
	if (c->names >= SC_RT_LINKCACHE_NAMES) {
		reset(c); /* its watches went with it: nothing may be kept now */
		return;
	}
	node *n = get(c, path, true);
	if (!(n->flags & KNOWN))
		c->names++;
	n->flags |= KNOWN;
}
