/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sconify-runtime: the entrypoint of a converted image. Obtains the service
 * configuration (from the CAS after attestation, agent.h; or the sim-only
 * session policy), says at start which mode it runs in, opens the shield metadata against the pinned tag,
 * measures what it is about to run and refuses a value the policy does not accept, starts the application
 * under the file shield and stays as its PID 1. Exit codes: the application's (128+N after signal N); 125
 * when the runtime itself failed; 126/127 when the command cannot run or is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "launch.h"
#include "pid1.h"
#include "provider.h"
#include "session.h"
#include "shieldfs.h"
#include "supervisor.h"

#define EXIT_RUNTIME 125
#define EXIT_CANNOT_RUN 126
#define EXIT_NOT_FOUND 127

static void print_error(sconify_error_t err)
{
	fprintf(stderr, "sconify-runtime: error: %s\n", sconify_error_message(err));
}

static void log_line(void *userdata, const char *msg)
{
	(void)userdata;
	fprintf(stderr, "sconify-runtime: %s\n", msg);
}

static int send_fd(int sock, int fd)
{
	char byte = 'L';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr m = {
	        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = {
	        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	ssize_t n;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The application's side of the fork: never returns. */
static void run_child(const sc_rt_session *s, const sc_rt_launch *l, const sc_rt_signals *sig, int sock)
{
	cleanup_error sconify_error_t err = NULL;
	sc_rt_signals_reset_in_child(sig);
	int listener = -1;
	if (sc_rt_filter_install(&listener, &err) < 0) {
		print_error(err);
		_exit(EXIT_RUNTIME);
	}
	if (send_fd(sock, listener) < 0)
		_exit(EXIT_RUNTIME);
	close(listener);
	/* Nothing runs until the supervisor is ready to answer (and has
	 * checked that it can): a refused start never runs application code. */
	char go = 0;
	ssize_t n;
	do
		n = read(sock, &go, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || go != 'G')
		_exit(EXIT_RUNTIME);
	close(sock);
	/* Under the filter: the walk checks the way there like any path. */
	if (chdir(s->workdir) < 0) {
		cleanup_free char *q = sc_quote(s->workdir, SC_QUOTE_MAX);
		sc_error_errno(&err, errno, "working directory `%s'", q);
		print_error(err);
		_exit(EXIT_RUNTIME);
	}
	/* The policy's user (resolved before the fork): the last step as root. */
	if (sc_rt_launch_switch_user(l, &err) < 0) {
		cleanup_free char *qu = sc_quote(s->user, SC_QUOTE_MAX);
		sc_error_wrap(&err, "cannot switch to user `%s'", qu);
		print_error(err);
		_exit(EXIT_RUNTIME);
	}
	/* Exactly what was measured: never a PATH search again. */
	int e = 0;
	sc_rt_launch_exec(l, s, &e);
	cleanup_free char *q = sc_quote(l->exe_path, SC_QUOTE_MAX);
	sc_error_errno(&err, e, "cannot run `%s'", q);
	print_error(err);
	_exit(e == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN);
}

static int wait_code(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return EXIT_RUNTIME;
	return WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : EXIT_RUNTIME;
}

/* The configuration from the sim-only session file. */
static sc_rt_session *session_from_file(const char *session_path, const char *config_id)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_free char *q = sc_quote(session_path, SC_QUOTE_MAX);
	fprintf(stderr,
	        "sconify-runtime: mode sim: NO hardware protection, configuration from SCONIFY_SESSION_FILE "
	        "`%s' (development only)\n",
	        q);
	sc_rt_session *s = NULL;
	if (sc_rt_session_load(session_path, config_id, &s, &err) < 0) {
		print_error(err);
		return NULL;
	}
	return s;
}

/* The configuration released by the CAS after attestation (agent.h). */
static sc_rt_session *session_from_cas(void)
{
	cleanup_error sconify_error_t err = NULL;
	const char *mode = getenv("SCONE_MODE");
	if (mode && strcmp(mode, "hw") == 0) {
		fprintf(stderr,
		        "sconify-runtime: error: SCONE_MODE is `hw' but there is no hardware provider on "
		        "this machine: sim is the only evidence provider yet (docs/attestation.md)\n");
		return NULL;
	}
	if (mode == NULL || strcmp(mode, "sim") != 0) {
		cleanup_free char *q = sc_quote(mode ? mode : "", SC_QUOTE_MAX);
		fprintf(stderr, "sconify-runtime: error: SCONE_MODE is `%s', not `sim' or `hw'\n", q);
		return NULL;
	}
	sc_rt_agent_options o;
	if (sc_rt_agent_options_from_env(&o, &err) < 0) {
		print_error(err);
		return NULL;
	}
	cleanup_free char *qa = sc_quote(o.addr, SC_QUOTE_MAX);
	fprintf(stderr,
	        "sconify-runtime: mode sim: NO hardware protection, configuration from the CAS `%s' for sim "
	        "evidence (development only)\n",
	        qa);
	if (o.insecure && o.key_hash == NULL)
		fprintf(stderr,
		        "sconify-runtime: SCONIFY_CAS_INSECURE=1: the CAS's identity is NOT checked\n");
	o.log = log_line;
	/* OpenSSL writes to the socket with write(2): a CAS that closes early
	 * must give an error, not SIGPIPE. Restored before the application
	 * starts, which would otherwise inherit the ignored signal. */
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;
	sigaction(SIGPIPE, &ign, &old);
	sc_rt_session *s = NULL;
	int r = sc_rt_agent_fetch(&o, &s, &err);
	sigaction(SIGPIPE, &old, NULL);
	if (r < 0) {
		cleanup_free char *qid = sc_quote(o.config_id, SC_QUOTE_MAX);
		sc_error_wrap(&err, "no service configuration for `%s' from the CAS `%s'", qid, qa);
		print_error(err);
		return NULL;
	}
	return s;
}

static int run(sc_rt_session *session)
{
	cleanup_error sconify_error_t err = NULL;
	cleanup_session sc_rt_session *s = session;
	if (s == NULL)
		return EXIT_RUNTIME;
	if (sc_rt_notify_check(&err) < 0) {
		print_error(err);
		return EXIT_RUNTIME;
	}
	/* The supervisor reads callers' memory and reopens memfds through /proc;
	 * the measurement hashes /proc/self/exe. */
	if (access("/proc/self/fd", X_OK) < 0) {
		sc_error_errno(&err, errno, "the file shield needs /proc mounted (/proc/self/fd)");
		print_error(err);
		return EXIT_RUNTIME;
	}
	cleanup_rt_shield sc_rt_shield *shield = NULL;
	if (s->fspf_path && sc_rt_shield_open(s->fspf_path, s->fspf_key, s->fspf_pin, &shield, &err) < 0) {
		print_error(err);
		return EXIT_RUNTIME;
	}
	cleanup_launch sc_rt_launch *launch = NULL;
	if (sc_rt_launch_prepare(s, shield, "/proc/self/exe", &launch, &err) < 0) {
		int code = sconify_error_kind(err) == SCONIFY_ERR_NOT_FOUND ? EXIT_NOT_FOUND : EXIT_RUNTIME;
		print_error(err);
		return code;
	}
	if (sc_rt_launch_check(launch, s, &err) < 0) {
		print_error(err);
		return EXIT_RUNTIME;
	}
	if (sc_rt_launch_user(launch, s, shield, "", &err) < 0) {
		print_error(err);
		return EXIT_RUNTIME;
	}
	cleanup_provider sc_rt_provider *provider =
	        sc_rt_files_provider_new(s, shield ? sc_rt_shield_provider_new(shield) : NULL);

	sc_rt_signals sig;
	if (sc_rt_signals_setup(&sig, &err) < 0) {
		print_error(err);
		return EXIT_RUNTIME;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		sc_error_errno(&err, errno, "socketpair");
		print_error(err);
		return EXIT_RUNTIME;
	}
	fflush(stderr);
	pid_t child = fork();
	if (child < 0) {
		sc_error_errno(&err, errno, "fork");
		print_error(err);
		return EXIT_RUNTIME;
	}
	if (child == 0) {
		close(sv[0]);
		close(sig.sigfd);
		run_child(s, launch, &sig, sv[1]);
	}
	close(sv[1]);
	cleanup_close int sock = sv[0];

	int listener = recv_fd(sock);
	if (listener < 0) /* the child said why */
		return wait_code(child);
	cleanup_supervisor sc_rt_supervisor *sup = NULL;
	if (sc_rt_supervisor_new(listener, provider, log_line, NULL, &sup, &err) < 0) {
		print_error(err);
		kill(child, SIGKILL);
		wait_code(child);
		return EXIT_RUNTIME;
	}
	/* Served on a thread of its own (one system call less per open); by
	 * the loop below when the thread cannot start. */
	(void)sc_rt_supervisor_start(sup, NULL);
	if (write(sock, "G", 1) != 1) {
		sc_error_errno(&err, errno, "starting the application");
		print_error(err);
		kill(child, SIGKILL);
		wait_code(child);
		return EXIT_RUNTIME;
	}
	close(steal_fd(&sock));

	int code = 0;
	if (sc_rt_pid1_run(&sig, child, sup, &code, &err) < 0) {
		print_error(err);
		kill(child, SIGKILL);
		return EXIT_RUNTIME;
	}
	return code;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("sconify-runtime %s\n", SCONIFY_RUNTIME_VERSION);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "sconify-runtime: error: takes no arguments: the command, its arguments and "
		                "environment come from the service configuration (docs/runtime.md)\n");
		return EXIT_RUNTIME;
	}
	const char *session = getenv("SCONIFY_SESSION_FILE");
	const char *cas = getenv("SCONE_CAS_ADDR");
	if ((session == NULL || session[0] == '\0') && cas && cas[0] != '\0')
		return run(session_from_cas());
	if (session == NULL || session[0] == '\0') {
		fprintf(stderr,
		        "sconify-runtime: error: no service configuration: neither SCONE_CAS_ADDR (the "
		        "CAS to attest to) nor, for a development run in sim mode, SCONIFY_SESSION_FILE "
		        "(the session policy) is set (docs/runtime.md)\n");
		return EXIT_RUNTIME;
	}
	/* The host names the file: only a sim-mode image may take it. */
	const char *mode = getenv("SCONE_MODE");
	if (mode == NULL || strcmp(mode, "sim") != 0) {
		cleanup_free char *q = sc_quote(mode ? mode : "", SC_QUOTE_MAX);
		fprintf(stderr,
		        "sconify-runtime: error: SCONIFY_SESSION_FILE is accepted in sim mode only, and "
		        "SCONE_MODE is `%s', not `sim'\n",
		        q);
		return EXIT_RUNTIME;
	}
	const char *config_id = getenv("SCONE_CONFIG_ID");
	if (config_id == NULL || config_id[0] == '\0') {
		fprintf(stderr, "sconify-runtime: error: SCONE_CONFIG_ID is not set: it names the service "
		                "([namespace/]session/service)\n");
		return EXIT_RUNTIME;
	}
	return run(session_from_file(session, config_id));
}
