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
	/* Whether path lies in a protected region (1) or not (0); in one,
	 * *ret_target is the target of the symlink the image's metadata
	 * records at path, or NULL when it records none. May be NULL: nothing
	 * is protected. */
	int (*protected_link)(void *ctx, const char *path, const char **ret_target);
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
 * -ENAMETOOLONG; -ENOENT for an empty path or an empty link target.
 *
 * In a protected region the disk is not trusted to say where a name leads:
 * a component there is followed as a symlink only when the metadata records
 * that link and the disk holds the very same target, and a symlink the
 * metadata does not record (a name or a directory replaced by a link) stops
 * the walk. Either mismatch returns -EIO with *ret a message (malloc'd)
 * naming the component, for the log; any other failure leaves *ret alone
 * (an -EIO from the file system too). */
int sc_rt_resolve(const sc_rt_fsops *ops, const char *root, const char *base, const char *path, int flags,
                  char **ret);

#endif
