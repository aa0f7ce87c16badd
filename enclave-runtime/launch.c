/* SPDX-License-Identifier: Apache-2.0 */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
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
