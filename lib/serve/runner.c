/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Running the queue's jobs (docs/serve.md, "Jobs"). Each worker slot runs
 * one job at a time as child processes of the service's own executable:
 *
 *   sconify image --from docker://REGISTRY/REPOSITORY@DIGEST --to DEST ...
 *
 * with the rule's options, `--output json' on stdout (the job's result) and
 * the error, if any, as the last line of stderr. A process per conversion
 * keeps a conversion's memory, file descriptors and any crash away from the
 * service, and is what a Kubernetes Job would run instead.
 *
 * `sconify image --digest-file STATE_DIR/runs/<job>.digest' writes the
 * result's digest, durably, before it uploads the session and moves the
 * tag. A run that finds that file from an earlier run (the service died, was
 * stopped, or the run failed late) first asks the destination
 * (`sconify inspect') whether its tag names that digest: then the conversion
 * is complete but perhaps for its signature, which `sconify sign' adds to
 * exactly that digest (signing twice adds nothing). Only a digest this
 * service's own child wrote is ever signed this way: an image someone else
 * pushed to the destination never is. A conversion is therefore pushed once
 * even when the service is killed in the middle of it.
 *
 * Children are in a process group of their own and, on Linux, die with the
 * service (PR_SET_PDEATHSIG): a restarted service never races an orphaned
 * conversion of the job it resumes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/fsutil.h"
#include "core/hex.h"
#include "core/json-util.h"
#include "core/secret.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "serve-internal.h"

extern char **environ;

#define MAX_STDOUT (4u << 20)
#define STDERR_TAIL 16384
#define DIGEST_MAX 200

typedef struct {
	char **v;
	size_t n;
} strv;

static void add(strv *a, const char *s)
{
	a->v = xreallocarray(a->v, a->n + 2, sizeof(char *));
	a->v[a->n++] = xstrdup(s);
	a->v[a->n] = NULL;
}

__attribute__((format(printf, 2, 3))) static void addf(strv *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	add(a, s);
	free(s);
}

static void strv_clear(strv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

/* The destination side's registry options, for inspect and sign. */
static void dest_options(strv *a, const sc_serve_rule *r)
{
	addf(a, "--tls-verify=%s", r->dest_tls_verify ? "true" : "false");
	if (r->authfile) {
		add(a, "--authfile");
		add(a, r->authfile);
	}
	if (r->dest_cert_dir) {
		add(a, "--cert-dir");
		add(a, r->dest_cert_dir);
	}
}

static void convert_args(const sc_run *run, strv *a);

/* Where a run writes its result's digest before the tag moves:
 * runs/<job>-<key>.digest, the key a hash of every argument of the
 * conversion (source digest, destination, the rule's options). A file is
 * only ever taken for the very conversion that wrote it: not for another job
 * that got the same id (a recreated queue), nor after the rule changed. */
static char *digest_path(sc_serve *s, const sc_run *run)
{
	strv a = {0};
	convert_args(run, &a);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		abort();
	for (size_t i = 0; i < a.n; i++)
		EVP_DigestUpdate(md, a.v[i], strlen(a.v[i]) + 1); /* with its NUL: no two lists hash alike */
	uint8_t h[32];
	EVP_DigestFinal_ex(md, h, NULL);
	EVP_MD_CTX_free(md);
	strv_clear(&a);
	char key[17];
	sc_hex_encode(h, 8, key);
	return xasprintf("%s/runs/%lld-%s.digest", s->cfg->state_dir, (long long)run->job->id, key);
}

/* The digest an earlier run of this conversion wrote, or NULL. */
static char *earlier_digest(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	sconify_error_t err = NULL;
	if (sc_read_file(path, DIGEST_MAX, &data, &len, &err) < 0) {
		sconify_error_free(&err);
		return NULL;
	}
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	if (!sc_startswith(data, "sha256:") || len != strlen("sha256:") + 64) {
		free(data);
		return NULL;
	}
	return data;
}

static void convert_argv(sc_serve *s, const sc_run *run, strv *a)
{
	add(a, s->o->self_exe);
	add(a, "image");
	addf(a, "--digest-file=%s", run->digest_file);
	convert_args(run, a);
}

/* The conversion's arguments but for the executable and --digest-file. */
static void convert_args(const sc_run *run, strv *a)
{
	const sc_serve_rule *r = run->rule;
	const sc_job *j = run->job;
	addf(a, "--from=docker://%s/%s@%s", j->registry, j->repository, j->digest);
	addf(a, "--to=docker://%s", j->destination);
	add(a, "--output=json");
	add(a, "--quiet");
	for (size_t i = 0; i < r->n_dir; i++)
		addf(a, "--dir=%s", r->dir[i]);
	for (size_t i = 0; i < r->n_authenticated; i++)
		addf(a, "--authenticated=%s", r->authenticated[i]);
	for (size_t i = 0; i < r->n_env; i++)
		addf(a, "--env=%s", r->env[i]);
	if (r->command)
		addf(a, "--command=%s", r->command);
	addf(a, "--mode=%s", r->mode ? r->mode : "hw");
	if (r->cas)
		addf(a, "--cas=%s", r->cas);
	if (r->cas_key_hash)
		addf(a, "--cas-key-hash=%s", r->cas_key_hash);
	if (r->identity)
		addf(a, "--identity=%s", r->identity);
	if (j->session)
		addf(a, "--name=%s", j->session);
	if (r->namespace_)
		addf(a, "--namespace=%s", r->namespace_);
	if (r->service_name)
		addf(a, "--service-name=%s", r->service_name);
	if (r->sign_key)
		addf(a, "--sign-key=%s", r->sign_key);
	if (r->platform)
		addf(a, "--platform=%s", r->platform);
	if (r->all)
		add(a, "--all");
	addf(a, "--src-tls-verify=%s", r->src_tls_verify ? "true" : "false");
	addf(a, "--dest-tls-verify=%s", r->dest_tls_verify ? "true" : "false");
	if (r->authfile)
		addf(a, "--authfile=%s", r->authfile);
	if (r->src_cert_dir)
		addf(a, "--src-cert-dir=%s", r->src_cert_dir);
	if (r->dest_cert_dir)
		addf(a, "--dest-cert-dir=%s", r->dest_cert_dir);
}

/* ---- child processes ---- */

static void close_from(int lowest)
{
#if defined(__linux__) && defined(SYS_close_range)
	if (syscall(SYS_close_range, (unsigned)lowest, ~0u, 0) == 0)
		return;
#endif
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = lowest; fd < max; fd++)
		close(fd);
}

static int cloexec_pipe(int p[2])
{
	if (pipe(p) < 0)
		return -1;
	for (int i = 0; i < 2; i++)
		fcntl(p[i], F_SETFD, FD_CLOEXEC);
	fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
	return 0;
}

static void maybe_finished(sc_run *r);

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	sc_run *r = arg;
	bool is_out = fd == r->out_fd;
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			event_free(is_out ? r->out_ev : r->err_ev);
			close(fd);
			if (is_out)
				r->out_ev = NULL, r->out_fd = -1;
			else
				r->err_ev = NULL, r->err_fd = -1;
			maybe_finished(r);
			return;
		}
		if (is_out) {
			if (r->out.len + (size_t)n <= MAX_STDOUT)
				sc_buf_append(&r->out, buf, (size_t)n, "stdout", NULL);
		} else {
			/* Keep the tail: the error is the last line. */
			size_t m = (size_t)n;
			const char *p = buf;
			if (m >= STDERR_TAIL) {
				p += m - STDERR_TAIL;
				m = STDERR_TAIL;
				r->err_len = 0;
			} else if (r->err_len + m > STDERR_TAIL) {
				size_t drop = r->err_len + m - STDERR_TAIL;
				memmove(r->err, r->err + drop, r->err_len - drop);
				r->err_len -= drop;
			}
			memcpy(r->err + r->err_len, p, m);
			r->err_len += m;
		}
	}
}

/* Environment of a child: ours, COSIGN_PASSWORD replaced by the rule's. */
static char **child_env(const char *password_assignment)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = xcalloc(n + 2, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!sc_startswith(environ[i], "COSIGN_PASSWORD="))
			env[k++] = environ[i];
	if (password_assignment)
		env[k++] = (char *)password_assignment;
	env[k] = NULL;
	return env;
}

static int spawn(sc_run *r, char **argv, sconify_error_t *err)
{
	sc_serve *s = r->s;
	cleanup_secret sc_secret pw = {0};
	if (r->phase != RUN_CHECK && r->rule->sign_key && r->rule->sign_password_file) {
		if (sc_secret_append(&pw, "COSIGN_PASSWORD=", strlen("COSIGN_PASSWORD="), 4096) == false ||
		    sc_read_secret_file(r->rule->sign_password_file, 4096, "sign_password_file", &pw, NULL,
		                        err) < 0)
			return -1;
		/* One line: a trailing newline is not part of the password. */
		while (pw.len && (pw.data[pw.len - 1] == '\n' || pw.data[pw.len - 1] == '\r'))
			pw.data[--pw.len] = '\0';
	}
	int out[2] = {-1, -1}, errp[2] = {-1, -1};
	if (cloexec_pipe(out) < 0 || cloexec_pipe(errp) < 0) {
		int e = errno;
		for (int i = 0; i < 2; i++) {
			if (out[i] >= 0)
				close(out[i]);
			if (errp[i] >= 0)
				close(errp[i]);
		}
		return sc_error_errno(err, e, "creating a pipe for a job");
	}
	cleanup_free char **env = child_env(pw.data);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls from here to execve. */
		setpgid(0, 0);
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
#else
		(void)parent;
#endif
		signal(SIGPIPE, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out[1], 1) < 0 || dup2(errp[1], 2) < 0)
			_exit(127);
		close_from(3);
		execve(argv[0], argv, env);
		_exit(127);
	}
	int e = errno;
	close(out[1]);
	close(errp[1]);
	if (pid > 0)
		setpgid(pid, pid); /* as the child does: whichever runs first, kill(-pid) finds the group */
	if (pid < 0) {
		close(out[0]);
		close(errp[0]);
		return sc_error_errno(err, e, "starting a job's process");
	}
	r->pid = pid;
	r->exited = false;
	r->out_fd = out[0];
	r->err_fd = errp[0];
	sc_buf_free(&r->out);
	sc_buf_init(&r->out, MAX_STDOUT);
	r->err_len = 0;
	r->out_ev = event_new(s->base, r->out_fd, EV_READ | EV_PERSIST, read_cb, r);
	r->err_ev = event_new(s->base, r->err_fd, EV_READ | EV_PERSIST, read_cb, r);
	event_add(r->out_ev, NULL);
	event_add(r->err_ev, NULL);
	return 0;
}

/* ---- a run's life ---- */

static void slot_reset(sc_run *r)
{
	if (r->timer)
		evtimer_del(r->timer);
	r->timed_out = r->forget = false;
	sc_job_free(r->job);
	r->job = NULL;
	r->rule = NULL;
	r->pid = 0;
	r->exited = r->aborted = false;
	free(r->found_digest);
	r->found_digest = NULL;
	free(r->digest_file);
	r->digest_file = NULL;
	r->phase = RUN_IDLE;
}

static void written_cb(void *arg, sconify_error_t err)
{
	sc_run *r = arg;
	sc_serve *s = r->s;
	if (err)
		sc_serve_log(s, "error", "job state not stored (requeued once the queue takes writes again)",
		             json_pack("{s:I,s:s}", "job", (json_int_t)r->job->id, "error",
		                       sconify_error_message(err)));
	else if (r->forget && r->digest_file)
		unlink(r->digest_file);
	slot_reset(r);
	event_active(s->kick, 0, 0);
	sc_serve_check_stopped(s);
}

static double run_seconds(const sc_run *r)
{
	return (double)(sc_serve_now_ms() - r->started_ms) / 1000.0;
}

static void succeed(sc_run *r, const char *result, char **outputs, size_t n_outputs)
{
	sc_serve *s = r->s;
	sc_serve_observe_run(s, JOB_DONE, run_seconds(r));
	sc_serve_log(s, "info", "job done",
	             json_pack("{s:I,s:s,s:s,s:s,s:f}", "job", (json_int_t)r->job->id, "rule", r->rule->name,
	                       "destination", r->job->destination, "digest", n_outputs ? outputs[0] : "",
	                       "seconds", run_seconds(r)));
	r->phase = RUN_FINISHING;
	r->forget = true;
	sc_queue_succeed_async(s->q, r->job->id, result, (const char *const *)outputs, n_outputs,
	                       sc_serve_now_ms(), written_cb, r);
}

static void fail(sc_run *r, const char *error)
{
	sc_serve *s = r->s;
	const sc_serve_config *c = s->cfg;
	int64_t now = sc_serve_now_ms();
	int64_t retry_at = -1;
	if (r->rule && r->job->attempts < c->max_attempts) {
		uint64_t delay = c->backoff_ms;
		for (unsigned i = 1; i < r->job->attempts && delay < c->max_backoff_ms; i++)
			delay *= 2;
		if (delay > c->max_backoff_ms)
			delay = c->max_backoff_ms;
		/* Jitter of up to a fifth, so jobs that failed together do not
		 * retry together. */
		uint32_t rnd = 0;
		RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
		delay += delay / 5 * (rnd % 1000) / 1000;
		retry_at = now + (int64_t)delay;
	}
	sc_serve_observe_run(s, retry_at < 0 ? JOB_FAILED : JOB_RETRY, run_seconds(r));
	sc_serve_log(s, retry_at < 0 ? "error" : "warn",
	             retry_at < 0 ? "job failed" : "job failed, will retry",
	             json_pack("{s:I,s:s?,s:s,s:i,s:s}", "job", (json_int_t)r->job->id, "rule",
	                       r->rule ? r->rule->name : NULL, "destination", r->job->destination, "attempts",
	                       (int)r->job->attempts, "error", error));
	r->phase = RUN_FINISHING;
	r->forget = retry_at < 0;
	sc_queue_fail_async(s->q, r->job->id, error, now, retry_at, written_cb, r);
}

static void requeue(sc_run *r)
{
	sc_serve *s = r->s;
	sc_serve_observe_run(s, JOB_REQUEUED, 0);
	sc_serve_log(s, "info", "job requeued", json_pack("{s:I}", "job", (json_int_t)r->job->id));
	r->phase = RUN_FINISHING;
	sc_queue_requeue_async(s->q, r->job->id, sc_serve_now_ms(), written_cb, r);
}

static void start_phase(sc_run *r, sc_run_phase phase)
{
	sc_serve *s = r->s;
	strv a = {0};
	r->phase = phase;
	if (phase == RUN_CONVERT) {
		convert_argv(s, r, &a);
	} else if (phase == RUN_CHECK) {
		add(&a, s->o->self_exe);
		add(&a, "inspect");
		dest_options(&a, r->rule);
		addf(&a, "docker://%s", r->job->destination);
	} else {
		add(&a, s->o->self_exe);
		add(&a, "sign");
		addf(&a, "--key=%s", r->rule->sign_key);
		add(&a, "--recursive");
		dest_options(&a, r->rule);
		addf(&a, "docker://%s@%s", r->job->destination, r->found_digest);
	}
	sconify_error_t err = NULL;
	int rc = spawn(r, a.v, &err);
	strv_clear(&a);
	if (rc < 0) {
		fail(r, sconify_error_message(err));
		sconify_error_free(&err);
	}
}

/* The last line that says what went wrong. */
static char *error_of(sc_run *r)
{
	const char *what = r->phase == RUN_CONVERT ? "sconify image"
	                   : r->phase == RUN_SIGN  ? "sconify sign"
	                                           : "sconify inspect";
	char *text = xstrndup(r->err ? r->err : "", r->err_len);
	char *best = NULL;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (strstr(line, "error:"))
			best = line;
		else if (best == NULL || !strstr(best, "error:"))
			best = *line ? line : best;
	}
	char *msg;
	if (best)
		msg = sc_quote_n(best, strlen(best), 1000);
	else if (WIFSIGNALED(r->status))
		msg = xasprintf("%s was killed by signal %d", what, WTERMSIG(r->status));
	else
		msg = xasprintf("%s exited with status %d and no message", what, WEXITSTATUS(r->status));
	free(text);
	return msg;
}

/* The digests a conversion's result names: the top one and each image's. */
static size_t result_digests(json_t *res, char ***ret)
{
	char **v = NULL;
	size_t n = 0;
	const char *d = json_string_value(json_object_get(res, "digest"));
	if (d) {
		v = xreallocarray(v, n + 1, sizeof(char *));
		v[n++] = xstrdup(d);
	}
	size_t i;
	json_t *img;
	json_array_foreach (json_object_get(res, "images"), i, img) {
		const char *id = json_string_value(json_object_get(img, "digest"));
		if (id && (d == NULL || strcmp(id, d) != 0)) {
			v = xreallocarray(v, n + 1, sizeof(char *));
			v[n++] = xstrdup(id);
		}
	}
	*ret = v;
	return n;
}

static void free_strs(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void convert_finished(sc_run *r)
{
	cleanup_json json_t *res = NULL;
	sconify_error_t err = NULL;
	if (sc_json_parse(r->out.data ? r->out.data : "", r->out.len, "the result of sconify image", &res,
	                  &err) < 0) {
		cleanup_free char *msg = xasprintf("sconify image succeeded but printed no result: %s",
		                                   sconify_error_message(err));
		sconify_error_free(&err);
		fail(r, msg);
		return;
	}
	char **outs = NULL;
	size_t n = result_digests(res, &outs);
	cleanup_free char *text = sc_json_dump(res, NULL);
	succeed(r, text, outs, n);
	free_strs(outs, n);
}

/* RUN_CHECK: `sconify inspect' of the destination. Complete when its tag
 * names the digest an earlier run of this job wrote (r->found_digest). */
static void check_finished(sc_run *r, int code)
{
	cleanup_json json_t *info = NULL;
	sconify_error_t err = NULL;
	const char *digest = NULL;
	if (code == 0 &&
	    sc_json_parse(r->out.data ? r->out.data : "", r->out.len, "inspect", &info, &err) == 0) {
		digest = json_string_value(json_object_get(info, "IndexDigest"));
		if (digest == NULL)
			digest = json_string_value(json_object_get(info, "Digest"));
	}
	sconify_error_free(&err);
	if (code != 0) {
		/* The destination could not be asked (a registry down, say):
		 * converting again now could replace a finished conversion. */
		cleanup_free char *msg = error_of(r);
		if (strstr(msg, "not found") == NULL && strstr(msg, "unknown") == NULL) {
			fail(r, msg);
			return;
		}
	}
	if (digest == NULL || strcmp(digest, r->found_digest) != 0) {
		free(r->found_digest);
		r->found_digest = NULL;
		start_phase(r, RUN_CONVERT);
		return;
	}
	sc_serve_log(r->s, "info", "job resumed: the destination holds its conversion",
	             json_pack("{s:I,s:s,s:s}", "job", (json_int_t)r->job->id, "destination",
	                       r->job->destination, "digest", digest));
	if (r->rule->sign_key) {
		start_phase(r, RUN_SIGN);
		return;
	}
	cleanup_json json_t *res = json_pack("{s:s,s:s,s:s,s:b}", "source", r->job->digest, "destination",
	                                     r->job->destination, "digest", digest, "resumed", 1);
	cleanup_free char *text = sc_json_dump(res, NULL);
	char *outs[1] = {r->found_digest};
	succeed(r, text, outs, 1);
}

static void sign_finished(sc_run *r)
{
	/* One line a signed digest: DIGEST SIGNATURE-REFERENCE. */
	json_t *sigs = json_array();
	char *text = xstrndup(r->out.data ? r->out.data : "", r->out.len);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *sp = strchr(line, ' ');
		json_t *l = json_string(sp ? sp + 1 : line);
		if (l)
			json_array_append_new(sigs, l);
	}
	free(text);
	cleanup_json json_t *res =
	        json_pack("{s:s,s:s,s:s,s:b,s:o}", "source", r->job->digest, "destination",
	                  r->job->destination, "digest", r->found_digest, "resumed", 1, "signatures", sigs);
	cleanup_free char *out = sc_json_dump(res, NULL);
	char *outs[1] = {r->found_digest};
	succeed(r, out, outs, 1);
}

static void maybe_finished(sc_run *r)
{
	if (!r->exited || r->out_ev || r->err_ev)
		return;
	int code = WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128 + WTERMSIG(r->status);
	r->pid = 0;
	/* The timer may fire between a child's exit and its reaping: only a
	 * run its SIGKILL ended timed out. */
	if (r->timed_out && WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGKILL) {
		cleanup_free char *msg =
		        xasprintf("the run took longer than %u s (limits.job) and was stopped",
		                  r->s->cfg->job_timeout_ms / 1000);
		fail(r, msg);
	} else if (r->aborted && !(code == 0 && r->phase == RUN_CONVERT)) {
		/* A conversion that finished anyway is kept, not redone. */
		requeue(r);
	} else if (r->phase == RUN_CHECK) {
		check_finished(r, code);
	} else if (code != 0) {
		cleanup_free char *msg = error_of(r);
		fail(r, msg);
	} else if (r->phase == RUN_CONVERT) {
		convert_finished(r);
	} else {
		sign_finished(r);
	}
}

void sc_runner_reap(sc_serve *s)
{
	for (unsigned i = 0; i < s->cfg->workers; i++) {
		sc_run *r = &s->runs[i];
		if (r->pid <= 0 || r->exited)
			continue;
		int st = 0;
		pid_t p = waitpid(r->pid, &st, WNOHANG);
		if (p == r->pid) {
			r->status = st;
			r->exited = true;
			maybe_finished(r);
		}
	}
}

static void started_cb(void *arg, sconify_error_t err)
{
	sc_run *r = arg;
	sc_serve *s = r->s;
	if (err) {
		sc_serve_log(s, "error", "job not started",
		             json_pack("{s:I,s:s}", "job", (json_int_t)r->job->id, "error",
		                       sconify_error_message(err)));
		slot_reset(r);
		sc_serve_check_stopped(s);
		return;
	}
	r->job->attempts++;
	r->job->state = SC_JOB_RUNNING;
	r->started_ms = sc_serve_now_ms();
	if (s->stopping) {
		requeue(r);
		return;
	}
	if (r->job->attempts > s->cfg->max_attempts) {
		/* Runs cut short by the service's death count: a job that kills
		 * the service each time ends here instead of looping. */
		cleanup_free char *msg = xasprintf("%u runs were cut short (the service stopped during each)",
		                                   r->job->attempts - 1);
		fail(r, msg);
		return;
	}
	if (r->rule == NULL) {
		r->job->attempts = s->cfg->max_attempts; /* no retry can mend it */
		cleanup_free char *q = sc_quote(r->job->rule, 80);
		cleanup_free char *msg = xasprintf("rule `%s' is no longer in the configuration", q);
		fail(r, msg);
		return;
	}
	sc_serve_log(s, "info", "job started",
	             json_pack("{s:I,s:s,s:s,s:s,s:i}", "job", (json_int_t)r->job->id, "rule", r->rule->name,
	                       "source", r->job->digest, "destination", r->job->destination, "attempt",
	                       (int)r->job->attempts));
	struct timeval tv = {.tv_sec = s->cfg->job_timeout_ms / 1000,
	                     .tv_usec = (s->cfg->job_timeout_ms % 1000) * 1000};
	evtimer_add(r->timer, &tv);
	r->digest_file = digest_path(s, r);
	r->found_digest = earlier_digest(r->digest_file);
	start_phase(r, r->found_digest ? RUN_CHECK : RUN_CONVERT);
}

void sc_runner_schedule(sc_serve *s)
{
	if (s->stopping)
		return;
	size_t idle = 0;
	for (unsigned i = 0; i < s->cfg->workers; i++)
		idle += s->runs[i].phase == RUN_IDLE;
	if (idle == 0)
		return;
	sc_job **jobs = NULL;
	size_t n = 0;
	sconify_error_t err = NULL;
	if (sc_queue_runnable(s->q, sc_serve_now_ms(), idle + sc_runner_busy(s), &jobs, &n, &err) < 0) {
		sc_serve_log(s, "error", "queue read failed",
		             json_pack("{s:s}", "error", sconify_error_message(err)));
		sconify_error_free(&err);
		return;
	}
	for (size_t k = 0; k < n && idle; k++) {
		bool taken = false;
		sc_run *free_slot = NULL;
		for (unsigned i = 0; i < s->cfg->workers; i++) {
			sc_run *r = &s->runs[i];
			if (r->phase != RUN_IDLE && r->job && r->job->id == jobs[k]->id)
				taken = true;
			if (r->phase == RUN_IDLE && free_slot == NULL)
				free_slot = r;
		}
		if (taken || free_slot == NULL)
			continue;
		free_slot->job = jobs[k];
		jobs[k] = NULL;
		free_slot->rule = sc_serve_config_rule(s->cfg, free_slot->job->rule);
		free_slot->phase = RUN_CLAIMING;
		idle--;
		sc_queue_start_async(s->q, free_slot->job->id, sc_serve_now_ms(), started_cb, free_slot);
	}
	sc_jobs_free(jobs, n);
}

void sc_runner_abort(sc_serve *s, bool hard)
{
	int sig = hard ? SIGKILL : SIGTERM;
	for (unsigned i = 0; i < s->cfg->workers; i++) {
		sc_run *r = &s->runs[i];
		if (r->pid > 0 && !r->exited) {
			r->aborted = true;
			if (kill(-r->pid, sig) < 0)
				kill(r->pid, sig);
		}
	}
}

/* Jobs the queue says are running but no slot holds: their last state
 * write failed (a locked or full disk). They go back to the queue; the
 * digest file lets the next run find a finished conversion. */
void sc_runner_sweep(sc_serve *s)
{
	if (s->stopping)
		return;
	sc_job **jobs = NULL;
	size_t n = 0;
	sconify_error_t err = NULL;
	if (sc_queue_list(s->q, SC_JOB_RUNNING, 0, 256, &jobs, &n, &err) < 0) {
		sconify_error_free(&err);
		return;
	}
	for (size_t k = 0; k < n; k++) {
		bool held = false;
		for (unsigned i = 0; i < s->cfg->workers; i++)
			if (s->runs[i].phase != RUN_IDLE && s->runs[i].job &&
			    s->runs[i].job->id == jobs[k]->id)
				held = true;
		if (!held) {
			sc_serve_log(s, "warn", "job requeued: no worker holds it",
			             json_pack("{s:I}", "job", (json_int_t)jobs[k]->id));
			sc_queue_requeue_async(s->q, jobs[k]->id, sc_serve_now_ms(), NULL, NULL);
		}
	}
	sc_jobs_free(jobs, n);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	sc_run *r = arg;
	if (r->pid > 0 && !r->exited) {
		r->timed_out = true;
		if (kill(-r->pid, SIGKILL) < 0)
			kill(r->pid, SIGKILL);
	}
}

bool sc_runner_idle(sc_serve *s)
{
	return sc_runner_busy(s) == 0;
}

size_t sc_runner_busy(sc_serve *s)
{
	size_t n = 0;
	for (unsigned i = 0; s->runs && i < s->cfg->workers; i++)
		n += s->runs[i].phase != RUN_IDLE;
	return n;
}

void sc_runner_init(sc_serve *s)
{
	s->runs = xcalloc(s->cfg->workers, sizeof(sc_run));
	for (unsigned i = 0; i < s->cfg->workers; i++) {
		s->runs[i].s = s;
		s->runs[i].out_fd = s->runs[i].err_fd = -1;
		s->runs[i].err = xmalloc(STDERR_TAIL);
		s->runs[i].timer = evtimer_new(s->base, timeout_cb, &s->runs[i]);
		sc_buf_init(&s->runs[i].out, MAX_STDOUT);
	}
}

void sc_runner_free(sc_serve *s)
{
	if (s->runs == NULL)
		return;
	for (unsigned i = 0; i < s->cfg->workers; i++) {
		sc_run *r = &s->runs[i];
		if (r->pid > 0 && !r->exited) {
			kill(-r->pid, SIGKILL);
			waitpid(r->pid, NULL, 0);
		}
		if (r->out_ev)
			event_free(r->out_ev);
		if (r->err_ev)
			event_free(r->err_ev);
		if (r->out_fd >= 0)
			close(r->out_fd);
		if (r->err_fd >= 0)
			close(r->err_fd);
		sc_buf_free(&r->out);
		free(r->err);
		slot_reset(r);
		if (r->timer)
			event_free(r->timer);
	}
	free(s->runs);
	s->runs = NULL;
}
