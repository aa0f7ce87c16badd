/* SPDX-License-Identifier: Apache-2.0 */
#include "pid1.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

static void noop_handler(int sig)
{
	(void)sig;
}

int sc_rt_signals_setup(sc_rt_signals *ret, sconify_error_t *err)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
		sigaddset(&set, forwarded[i]);
		/* PID 1 never receives a signal left at SIG_DFL from inside
		 * its namespace: a handler makes sure it is queued. */
		struct sigaction sa = {.sa_handler = noop_handler};
		sigemptyset(&sa.sa_mask);
		if (sigaction(forwarded[i], &sa, NULL) < 0)
			return sc_error_errno(err, errno, "sigaction");
	}
	sc_rt_signals s;
	if (sigprocmask(SIG_BLOCK, &set, &s.old_mask) < 0)
		return sc_error_errno(err, errno, "sigprocmask");
	s.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s.sigfd < 0)
		return sc_error_errno(err, errno, "signalfd");
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		close(s.sigfd);
		return sc_error_errno(err, errno, "becoming a child subreaper");
	}
	*ret = s;
	return 0;
}

void sc_rt_signals_reset_in_child(const sc_rt_signals *sig)
{
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		signal(forwarded[i], SIG_DFL);
	sigprocmask(SIG_SETMASK, &sig->old_mask, NULL);
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

int sc_rt_pid1_run(const sc_rt_signals *sig, pid_t child, sc_rt_supervisor *sup, int *ret_code,
                   sconify_error_t *err)
{
	bool listening = sup != NULL;
	for (;;) {
		struct pollfd p[2] = {{.fd = sig->sigfd, .events = POLLIN},
		                      {.fd = listening ? sc_rt_supervisor_fd(sup) : -1, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return sc_error_errno(err, errno, "poll");
		}
		if (p[1].revents & POLLIN) {
			if (sc_rt_supervisor_handle(sup, err) < 0)
				return -1;
		} else if (p[1].revents & (POLLHUP | POLLERR | POLLNVAL)) {
			/* No process uses the filter any more. */
			listening = false;
		}
		if (!(p[0].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		ssize_t n;
		while ((n = read(sig->sigfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGCHLD)
				continue;
			/* The terminal (SI_KERNEL) signals the whole foreground
			 * group: the application already has its own copy. */
			if (si.ssi_code == SI_KERNEL && getpgid(child) == getpgrp())
				continue;
			/* ESRCH: it is gone, its SIGCHLD comes next. */
			kill(child, (int)si.ssi_signo);
		}
		/* SIGCHLD coalesces: reap everything that has ended. */
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid < 0 && errno == EINTR)
				continue;
			if (pid <= 0)
				break;
			if (pid == child) {
				*ret_code = exit_code(status);
				return 0;
			}
		}
	}
}
