/* SPDX-License-Identifier: Apache-2.0 */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/strutil.h"
#include "core/xalloc.h"

void sc_rt_launch_free(sc_rt_launch *l)
{
	if (l == NULL)
		return;
	free(l->exe_path);
	if (l->exe_fd >= 0)
		close(l->exe_fd);
	sc_rt_user_clear(&l->user);
	free(l);
}

/* The executable's plaintext, hashed from a descriptor that is then the one
 * executed (protected), or from the file at its resolved path. */
static int hash_exe(sc_rt_launch *l, sc_rt_shield *sh, uint8_t sha[SC_MEASURE_BYTES], sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(l->exe_path, SC_QUOTE_MAX);
	sc_shield_kind kind = SC_SHIELD_NOT_PROTECTED;
	const sc_shield_entry *e = NULL;
	if (sh && sc_shield_lookup(sc_rt_shield_metadata(sh), l->exe_path, &kind, &e, err) < 0)
		return sc_error_wrap(err, "executable `%s'", q);
	if (kind != SC_SHIELD_NOT_PROTECTED && e == NULL)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
		                "executable `%s' lies in a protected region but the shield metadata does not "
		                "list it",
		                q);
	cleanup_close int fd = -1;
	if (e) {
		int memfd = -1;
		if (sc_rt_shield_plaintext(sh, l->exe_path, e, &memfd, err) < 0)
			return sc_error_wrap(err, "executable `%s'", q);
		/* Its own open file description: the offset is ours. */
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", memfd);
		fd = open(proc, O_RDONLY | O_CLOEXEC);
	} else {
		fd = open(l->exe_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	}
	if (fd < 0)
		return sc_error_errno(err, errno, "executable `%s'", q);
	char magic[2] = {0};
	if (pread(fd, magic, 2, 0) == 2 && magic[0] == '#' && magic[1] == '!')
		l->script = true;
	if (sc_measure_hash_fd(fd, sha, err) < 0)
		return sc_error_wrap(err, "executable `%s'", q);
	if (e)
		l->exe_fd = steal_fd(&fd);
	return 0;
}

/* The runtime's own hash, taken on a second thread while the executable is
 * resolved and hashed: both are megabytes of SHA-256 on the start-up path. */
typedef struct {
	const char *self;
	uint8_t sha[SC_MEASURE_BYTES];
	sconify_error_t err;
	int r;
} self_hash;

static void *hash_self(void *arg)
{
	self_hash *h = arg;
	h->r = sc_measure_hash_file(h->self, h->sha, &h->err);
	return NULL;
}

static int resolve_and_hash_exe(const sc_rt_session *s, sc_rt_shield *sh, sc_rt_launch *l, sc_measure *m,
                                sconify_error_t *err)
{
	uint8_t sha[SC_MEASURE_BYTES];
	const char *path_env = sc_measure_env_path((const char *const *)s->env, s->n_env);
	if (sc_measure_resolve_command(s->argv[0], path_env, s->workdir, sc_measure_fs_check, NULL,
	                               &l->exe_path, err) < 0)
		return -1;
	if (sc_measure_set_exe_path(m, l->exe_path, err) < 0 || hash_exe(l, sh, sha, err) < 0)
		return -1;
	sc_measure_set_exe_sha256(m, sha);
	return 0;
}

int sc_rt_launch_prepare(const sc_rt_session *s, sc_rt_shield *sh, const char *self, sc_rt_launch **ret,
                         sconify_error_t *err)
{
	cleanup_launch sc_rt_launch *l = xzalloc(sizeof(*l));
	l->exe_fd = -1;
	cleanup_measure sc_measure *m = sc_measure_new();
	uint8_t sha[SC_MEASURE_BYTES];

	self_hash h = {.self = self};
	pthread_t tid;
	bool threaded = pthread_create(&tid, NULL, hash_self, &h) == 0;
	if (!threaded)
		hash_self(&h);
	int r = resolve_and_hash_exe(s, sh, l, m, err);
	if (threaded)
		pthread_join(tid, NULL);
	/* The runtime's failure first, as when it was measured first. */
	if (h.r < 0) {
		if (err == NULL) {
			sconify_error_free(&h.err);
			return -1;
		}
		sc_error_move(err, &h.err);
		return sc_error_wrap(err, "measuring the runtime");
	}
	if (r < 0)
		return -1;
	sc_measure_set_runtime(m, h.sha);

	/* The pin is the policy's, and the metadata verified against it. */
	if (sh) {
		uint8_t pin[SC_MEASURE_BYTES];
		memcpy(pin, s->fspf_pin, sizeof(pin));
		sc_measure_set_pin(m, pin);
	} else {
		sc_measure_set_pin(m, NULL);
	}
	for (size_t i = 0; i < s->argc; i++)
		if (sc_measure_add_arg(m, s->argv[i], err) < 0)
			return -1;
	for (size_t i = 0; i < s->n_env; i++)
		if (sc_measure_add_env(m, s->env[i], err) < 0)
			return -1;
	if (sc_measure_set_cwd(m, s->workdir, err) < 0)
		return -1;
	if (sh) {
		const sc_shield_metadata *md = sc_rt_shield_metadata(sh);
		for (size_t i = 0; i < sc_shield_metadata_regions(md); i++) {
			const char *path;
			sc_shield_kind kind;
			sc_shield_metadata_region(md, i, &path, &kind);
			if (sc_measure_add_region(m, (sc_measure_region_kind)kind, path, err) < 0)
				return -1;
		}
	}
	if (sc_measure_finish(m, sha, err) < 0)
		return sc_error_wrap(err, "measuring");
	sc_measure_hex(sha, l->measurement);
	*ret = steal_pointer(&l);
	return 0;
}

int sc_rt_launch_check(const sc_rt_launch *l, const sc_rt_session *s, sconify_error_t *err)
{
	for (size_t i = 0; i < s->n_measurements; i++)
		if (strcmp(s->measurements[i], l->measurement) == 0)
			return 0;
	/* Both values, so that a mismatch can be told from a typo. */
	size_t shown = s->n_measurements < 4 ? s->n_measurements : 4;
	char accepted[4 * (SC_MEASURE_HEX + 2) + 16] = "";
	for (size_t i = 0; i < shown; i++) {
		strcat(accepted, i ? ", " : "");
		strncat(accepted, s->measurements[i], SC_MEASURE_HEX);
	}
	if (s->n_measurements > shown)
		strcat(accepted, ", ...");
	return sc_error(err, SCONIFY_ERR_INTEGRITY, 0,
	                "measurement mismatch: what would run measures %s, service `%s' accepts %s%s%s",
	                l->measurement, s->service, s->n_measurements ? "" : "nothing", accepted,
	                s->n_measurements ? " (docs/measurement.md)" : "");
}

void sc_rt_launch_exec(const sc_rt_launch *l, const sc_rt_session *s, int *ret_errno)
{
	if (l->exe_fd < 0) {
		execve(l->exe_path, s->argv, s->env);
		*ret_errno = errno;
		return;
	}
	/* A script's interpreter opens /dev/fd/N (the supervisor lets that
	 * magic link through to the memfd): it must survive the exec. An ELF
	 * file needs no descriptor afterwards. */
	if (l->script && fcntl(l->exe_fd, F_SETFD, 0) < 0) {
		*ret_errno = errno;
		return;
	}
	syscall(SYS_execveat, l->exe_fd, "", s->argv, s->env, AT_EMPTY_PATH);
	*ret_errno = errno;
}

/* ---- the user ---- */

void sc_rt_user_clear(sc_rt_user *u)
{
	free(u->groups);
	u->groups = NULL;
	u->n_groups = 0;
}

/* A decimal id: digits only, below (id_t)-1 (which means "unchanged"). */
static bool parse_id(const char *s, size_t n, uint32_t *ret)
{
	if (n == 0 || n > 10)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >= UINT32_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

static bool all_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/* One line of a colon-separated file split into at most max fields (the last
 * field keeps the rest); returns the number of fields. */
typedef struct {
	const char *p;
	size_t n;
} span;

static size_t split_line(const char *line, size_t len, span *f, size_t max)
{
	size_t k = 0, start = 0;
	for (size_t i = 0; i <= len && k < max; i++) {
		if (i == len || (line[i] == ':' && k + 1 < max)) {
			f[k].p = line + start;
			f[k].n = i - start;
			k++;
			start = i + 1;
		}
	}
	return k;
}

static bool span_is(span s, const char *str)
{
	return s.n == strlen(str) && memcmp(s.p, str, s.n) == 0;
}

/* Calls fn for each line's fields; stops when fn returns true. */
static bool each_line(const char *text, size_t len, size_t nf, bool (*fn)(const span *f, size_t n, void *ctx),
                      void *ctx)
{
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
		span f[4];
		size_t n = split_line(text + pos, ll, f, nf);
		if (ll > 0 && text[pos] != '#' && fn(f, n, ctx))
			return true;
		pos += ll + 1;
	}
	return false;
}

typedef struct {
	const char *name; /* or NULL: by uid */
	uint32_t uid;
	bool found;
	char *found_name;
	uint32_t found_uid, found_gid;
} pw_query;

static bool pw_match(const span *f, size_t n, void *ctx)
{
	pw_query *q = ctx;
	uint32_t uid, gid;
	/* name:password:uid:gid:... */
	if (n < 4 || f[0].n == 0 || !parse_id(f[2].p, f[2].n, &uid))
		return false;
	const char *end = memchr(f[3].p, ':', f[3].n);
	if (!parse_id(f[3].p, end ? (size_t)(end - f[3].p) : f[3].n, &gid))
		return false;
	if (q->name ? !span_is(f[0], q->name) : uid != q->uid)
		return false;
	q->found = true;
	q->found_name = xstrndup(f[0].p, f[0].n);
	q->found_uid = uid;
	q->found_gid = gid;
	return true;
}

typedef struct {
	const char *name; /* group name to find, or NULL */
	bool found;
	uint32_t gid;
	const char *member; /* collect groups listing member */
	gid_t *groups;
	size_t n_groups;
	bool too_many;
} gr_query;

static bool gr_match(const span *f, size_t n, void *ctx)
{
	gr_query *q = ctx;
	uint32_t gid;
	/* name:password:gid:member,member,... */
	if (n < 3 || f[0].n == 0 || !parse_id(f[2].p, f[2].n, &gid))
		return false;
	if (q->name) {
		if (!span_is(f[0], q->name))
			return false;
		q->found = true;
		q->gid = gid;
		return true;
	}
	if (n < 4 || q->member == NULL)
		return false;
	size_t ml = strlen(q->member), pos = 0;
	while (pos <= f[3].n) {
		const char *c = memchr(f[3].p + pos, ',', f[3].n - pos);
		size_t l = c ? (size_t)(c - (f[3].p + pos)) : f[3].n - pos;
		if (l == ml && memcmp(f[3].p + pos, q->member, ml) == 0) {
			for (size_t i = 0; i < q->n_groups; i++)
				if (q->groups[i] == (gid_t)gid)
					return false;
			if (q->n_groups >= SC_RT_USER_MAX_GROUPS) {
				q->too_many = true;
				return true;
			}
			q->groups = xreallocarray(q->groups, q->n_groups + 1, sizeof(gid_t));
			q->groups[q->n_groups++] = (gid_t)gid;
			return false;
		}
		pos += l + 1;
	}
	return false;
}

int sc_rt_user_lookup(const char *user, const char *passwd, size_t passwd_len, const char *group,
                      size_t group_len, sc_rt_user *ret, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(user, SC_QUOTE_MAX);
	if (!sc_policy_valid_user(user))
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "user `%s': not \"uid[:gid]\" or \"name[:group]\"", q);
	const char *colon = strchr(user, ':');
	cleanup_free char *u = xstrndup(user, colon ? (size_t)(colon - user) : strlen(user));
	const char *g = colon ? colon + 1 : NULL;

	pw_query pq = {0};
	uint32_t uid = 0, gid = 0;
	if (all_digits(u)) {
		if (!parse_id(u, strlen(u), &uid))
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "user `%s': uid out of range", q);
		pq.uid = uid;
	} else {
		pq.name = u;
	}
	each_line(passwd, passwd_len, 4, pw_match, &pq);
	cleanup_free char *name = pq.found_name;
	if (pq.name && !pq.found)
		return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "user `%s': `%s' not found in /etc/passwd", q,
		                u);
	if (pq.found) {
		uid = pq.found_uid;
		gid = pq.found_gid;
	}
	if (g) {
		if (all_digits(g)) {
			if (!parse_id(g, strlen(g), &gid))
				return sc_error(err, SCONIFY_ERR_INVALID, 0, "user `%s': gid out of range",
				                q);
		} else {
			gr_query gq = {.name = g};
			each_line(group, group_len, 4, gr_match, &gq);
			if (!gq.found)
				return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0,
				                "user `%s': group `%s' not found in /etc/group", q, g);
			gid = gq.gid;
		}
	}
	gr_query mq = {.member = name};
	if (name)
		each_line(group, group_len, 4, gr_match, &mq);
	if (mq.too_many) {
		free(mq.groups);
		return sc_error(err, SCONIFY_ERR_LIMIT, 0, "user `%s': in more than %u groups", q,
		                SC_RT_USER_MAX_GROUPS);
	}
	ret->uid = (uid_t)uid;
	ret->gid = (gid_t)gid;
	ret->groups = mq.groups;
	ret->n_groups = mq.n_groups;
	return 0;
}

/* One of /etc/passwd, /etc/group as the application would see it. */
static int read_user_file(const sc_rt_session *s, sc_rt_shield *sh, const char *root, const char *path,
                          char **ret, size_t *ret_len, sconify_error_t *err)
{
	for (size_t i = 0; i < s->n_files; i++)
		if (strcmp(s->files[i].path, path) == 0) {
			if (s->files[i].len > SC_RT_USER_FILE_MAX)
				return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s: larger than %u bytes", path,
				                SC_RT_USER_FILE_MAX);
			*ret = xmemdup(s->files[i].data, s->files[i].len + 1);
			(*ret)[s->files[i].len] = 0;
			*ret_len = s->files[i].len;
			return 0;
		}
	cleanup_close int fd = -1;
	sc_shield_kind kind = SC_SHIELD_NOT_PROTECTED;
	const sc_shield_entry *e = NULL;
	if (sh && sc_shield_lookup(sc_rt_shield_metadata(sh), path, &kind, &e, err) < 0)
		return sc_error_wrap(err, "%s", path);
	if (e) {
		int memfd = -1;
		if (sc_rt_shield_plaintext(sh, path, e, &memfd, err) < 0)
			return sc_error_wrap(err, "%s", path);
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", memfd);
		fd = open(proc, O_RDONLY | O_CLOEXEC);
	} else if (kind != SC_SHIELD_NOT_PROTECTED) {
		fd = -1;
		errno = ENOENT; /* in a region, not listed: the application sees none */
	} else {
		cleanup_free char *full = xasprintf("%s%s", root, path);
		fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	}
	if (fd < 0 && errno == ENOENT) {
		*ret = xstrdup("");
		*ret_len = 0;
		return 0;
	}
	if (fd < 0)
		return sc_error_errno(err, errno, "%s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sc_error_errno(err, errno, "%s", path);
	if (!S_ISREG(st.st_mode))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "%s: not a regular file", path);
	cleanup_free char *buf = xmalloc(SC_RT_USER_FILE_MAX + 2);
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf + got, SC_RT_USER_FILE_MAX + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sc_error_errno(err, errno, "%s", path);
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > SC_RT_USER_FILE_MAX)
			return sc_error(err, SCONIFY_ERR_LIMIT, 0, "%s: larger than %u bytes", path,
			                SC_RT_USER_FILE_MAX);
	}
	buf[got] = 0;
	*ret = steal_pointer(&buf);
	*ret_len = got;
	return 0;
}

int sc_rt_launch_user(sc_rt_launch *l, const sc_rt_session *s, sc_rt_shield *sh, const char *root,
                      sconify_error_t *err)
{
	if (s->user == NULL)
		return 0;
	cleanup_free char *q = sc_quote(s->user, SC_QUOTE_MAX);
	cleanup_free char *pw = NULL, *gr = NULL;
	size_t pw_len = 0, gr_len = 0;
	sc_rt_user u = {0};
	if (read_user_file(s, sh, root, "/etc/passwd", &pw, &pw_len, err) < 0 ||
	    read_user_file(s, sh, root, "/etc/group", &gr, &gr_len, err) < 0 ||
	    sc_rt_user_lookup(s->user, pw, pw_len, gr, gr_len, &u, err) < 0)
		return sc_error_wrap(err, "service `%s': cannot run as user `%s'", s->service, q);
	if (geteuid() != 0) {
		bool same = u.uid == geteuid() && u.gid == getegid();
		if (!same) {
			sc_error(err, SCONIFY_ERR_USAGE, 0,
			         "service `%s': cannot run as user `%s' (uid %u, gid %u): the runtime runs "
			         "as uid "
			         "%u, gid %u, not root, and can only run the application as itself",
			         s->service, q, (unsigned)u.uid, (unsigned)u.gid, (unsigned)geteuid(),
			         (unsigned)getegid());
			sc_rt_user_clear(&u);
			return -1;
		}
		sc_rt_user_clear(&u); /* already that user: nothing to switch */
		return 0;
	}
	sc_rt_user_clear(&l->user);
	l->user = u;
	l->switch_user = true;
	return 0;
}

int sc_rt_launch_switch_user(const sc_rt_launch *l, sconify_error_t *err)
{
	if (!l->switch_user)
		return 0;
	if (setgroups(l->user.n_groups, l->user.groups) < 0)
		return sc_error_errno(err, errno, "setgroups (%zu groups)", l->user.n_groups);
	if (setgid(l->user.gid) < 0)
		return sc_error_errno(err, errno, "setgid(%u)", (unsigned)l->user.gid);
	if (setuid(l->user.uid) < 0)
		return sc_error_errno(err, errno, "setuid(%u)", (unsigned)l->user.uid);
	return 0;
}
