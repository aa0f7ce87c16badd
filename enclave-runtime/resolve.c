/* SPDX-License-Identifier: Apache-2.0 */
#include "resolve.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/cleanup.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "session.h"

/* The path still to walk: a copy we can splice link targets into. */
typedef struct {
	char *buf;
	size_t pos;
} todo;

static int splice(todo *t, const char *target)
{
	size_t rest = strlen(t->buf + t->pos);
	size_t tlen = strlen(target);
	if (tlen + 1 + rest > 2 * SC_RT_PATH_MAX)
		return -ENAMETOOLONG;
	char *n = xmalloc(tlen + 1 + rest + 1);
	memcpy(n, target, tlen);
	n[tlen] = '/';
	memcpy(n + tlen + 1, t->buf + t->pos, rest + 1);
	free(t->buf);
	t->buf = n;
	t->pos = 0;
	return 0;
}

static int mismatch(char **msg, const char *path, const char *what)
{
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	*msg = xasprintf("`%s' %s", q, what);
	return -EIO;
}

int sc_rt_resolve(const sc_rt_fsops *ops, const char *root, const char *base, const char *path, int flags,
                  char **ret)
{
	if (path[0] == '\0')
		return -ENOENT;
	size_t rootlen = strcmp(root, "/") == 0 ? 0 : strlen(root);
	if (rootlen > SC_RT_PATH_MAX || strlen(base) > SC_RT_PATH_MAX || strlen(path) > SC_RT_PATH_MAX)
		return -ENAMETOOLONG;

	/* resolved[0..len) is the walked prefix, "" meaning "/", with links
	 * already followed, so `..' is a plain pop. */
	cleanup_free char *resolved = xmalloc(SC_RT_PATH_MAX + 2);
	size_t len;
	if (path[0] == '/') {
		memcpy(resolved, root, rootlen);
		len = rootlen;
	} else {
		len = strcmp(base, "/") == 0 ? 0 : strlen(base);
		memcpy(resolved, base, len);
	}
	resolved[len] = '\0';

	todo t = {.buf = xstrdup(path), .pos = 0};
	cleanup_free char *target = xmalloc(SC_RT_PATH_MAX + 1);
	int links = 0;
	int missing = 0; /* -errno of the first component not on disk */
	char *msg = NULL;
	int r = 0;
	for (;;) {
		char *p = t.buf + t.pos;
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		char *end = strchrnul(p, '/');
		size_t clen = (size_t)(end - p);
		char *after = end;
		while (*after == '/')
			after++;
		bool last = *after == '\0';
		bool trailing_slash = last && *end == '/';
		t.pos = (size_t)(after - t.buf);

		if (clen == 1 && p[0] == '.')
			continue;
		if (clen == 2 && p[0] == '.' && p[1] == '.') {
			/* The kernel cannot walk through a name that is not
			 * there: its error, not the parent of what was written. */
			if (missing) {
				r = missing;
				break;
			}
			if (len <= rootlen) {
				if (flags & SC_RT_RESOLVE_BENEATH) {
					r = -EXDEV;
					break;
				}
				continue;
			}
			while (len > rootlen && resolved[len - 1] != '/')
				len--;
			if (len > rootlen)
				len--;
			resolved[len] = '\0';
			continue;
		}
		if (len + 1 + clen > SC_RT_PATH_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		size_t oldlen = len;
		resolved[len++] = '/';
		memcpy(resolved + len, p, clen);
		len += clen;
		resolved[len] = '\0';
		if (missing)
			continue;
		/* A last component that is not followed needs no look: nothing
		 * comes after it. */
		if (last && !trailing_slash && (flags & SC_RT_RESOLVE_NOFOLLOW))
			continue;

		const char *want = NULL;
		int s = ops->protected_link ? ops->protected_link(ops->ctx, resolved, &want) : 0;
		bool have_target = false;
		if (s > 0) {
			/* Protected: read the link itself (never a cached answer)
			 * and hold it against the metadata. */
			s = ops->readlink(ops->ctx, resolved, target, SC_RT_PATH_MAX + 1);
			if (s == -ENAMETOOLONG || (s < 0 && s != -EINVAL && s != -ENOENT && s != -ENOTDIR &&
			                           s != -EACCES && s != -ELOOP)) {
				r = s; /* what the kernel would answer; an I/O error is no verdict */
				break;
			}
			bool is_link = s == 0;
			if (want == NULL && is_link) {
				r = mismatch(&msg, resolved,
				             "is a symlink the image's metadata does not list");
				break;
			}
			if (want != NULL && (s < 0 || strcmp(target, want) != 0)) {
				r = mismatch(&msg, resolved,
				             s == -ENOENT ? "is missing: the image's metadata lists a symlink"
				                          : "is not the symlink the image's metadata lists");
				break;
			}
			if (want == NULL) {
				if (s != -EINVAL)
					missing = s; /* as below */
				continue;
			}
			have_target = true;
		} else {
			mode_t type = 0;
			s = ops->lstat_type(ops->ctx, resolved, &type);
			if (s < 0) {
				/* Below a missing or inaccessible component nothing
				 * exists on disk; the rest is taken as written. */
				missing = s;
				continue;
			}
			if (!S_ISLNK(type))
				continue;
		}
		bool follow = !last || trailing_slash || !(flags & SC_RT_RESOLVE_NOFOLLOW);
		if (!follow)
			continue;
		if (flags & SC_RT_RESOLVE_NO_SYMLINKS) {
			r = -ELOOP;
			break;
		}
		if (++links > SC_RT_MAX_SYMLINKS) {
			r = -ELOOP;
			break;
		}
		if (!have_target) {
			s = ops->readlink(ops->ctx, resolved, target, SC_RT_PATH_MAX + 1);
			if (s < 0) {
				r = s;
				break;
			}
		}
		if (target[0] == '\0') {
			r = -ENOENT;
			break;
		}
		/* The link replaces its own component. */
		len = oldlen;
		resolved[len] = '\0';
		if (target[0] == '/') {
			if (flags & SC_RT_RESOLVE_BENEATH) {
				r = -EXDEV;
				break;
			}
			memcpy(resolved, root, rootlen);
			len = rootlen;
			resolved[len] = '\0';
		}
		r = splice(&t, target);
		if (r < 0)
			break;
	}
	free(t.buf);
	if (msg) {
		*ret = msg;
		return -EIO;
	}
	if (r < 0)
		return r;
	if (len == 0) {
		resolved[0] = '/';
		resolved[1] = '\0';
	}
	*ret = steal_pointer(&resolved);
	return 0;
}
