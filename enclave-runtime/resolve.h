/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where an open(2) of the application lands: the path it passed, taken
 * relative to its working directory or dirfd, walked one component at a time
 * the way the kernel walks it (`..' after a symlink goes to the link target's
 * parent, at most 40 links), so that a symlink or a `..' cannot carry an open
 * into a protected region unseen. Components that do not exist on disk are
 * taken as written (injected files need not exist). The file system is reached
 * through callbacks so that the walk can be tested without one.
 */
#ifndef SC_RT_RESOLVE_H
#define SC_RT_RESOLVE_H

#include <stdbool.h>
#include <sys/types.h>

#define SC_RT_MAX_SYMLINKS 40

typedef struct {
	/* The S_IFMT bits of path without following a last symlink, or -errno.
	 * The walk only tells S_IFLNK from the rest: any other value (0) may
	 * stand for "exists and is not a symlink". */
	int (*lstat_type)(void *ctx, const char *path, mode_t *ret_type);
	/* The target of symlink path, NUL-terminated into buf, or -errno.
	 * -EXDEV means "not a file system path" (a magic link to a pipe, a
	 * deleted file): the walk stops and the caller lets the kernel decide. */
	int (*readlink)(void *ctx, const char *path, char *buf, size_t size);
	void *ctx;
} sc_rt_fsops;

enum {
	SC_RT_RESOLVE_NOFOLLOW = 1 << 0,    /* O_NOFOLLOW: a last component that is a link stays */
	SC_RT_RESOLVE_NO_SYMLINKS = 1 << 1, /* openat2 RESOLVE_NO_SYMLINKS: stop at any link */
	SC_RT_RESOLVE_BENEATH = 1 << 2,     /* openat2 RESOLVE_BENEATH: stop when leaving root */
};

/* root: absolute, normalised; `..' never goes above it and absolute paths and
 * absolute link targets start from it ("/" unless openat2 RESOLVE_IN_ROOT).
 * base: absolute, normalised directory that a relative path starts from.
 * Returns 0 and *ret (malloc'd, absolute, normalised); -EXDEV when the walk
 * met something that is not a path or left root under BENEATH; -ELOOP;
 * -ENAMETOOLONG; -ENOENT for an empty path or an empty link target. */
int sc_rt_resolve(const sc_rt_fsops *ops, const char *root, const char *base, const char *path, int flags,
                  char **ret);

#endif
