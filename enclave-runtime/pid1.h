/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PID 1 duties: the runtime starts the application as its one child, forwards
 * TERM, INT, HUP, QUIT, USR1, USR2 and WINCH to it, reaps every process that
 * ends up orphaned on it (it is PID 1 or a child subreaper), keeps serving the
 * shield's notifications meanwhile, and ends with the application's status.
 */
#ifndef SC_RT_PID1_H
#define SC_RT_PID1_H

#include <signal.h>
#include <sys/types.h>

#include "core/error.h"
#include "supervisor.h"

typedef struct {
	int sigfd;
	sigset_t old_mask; /* restored in the child before exec */
} sc_rt_signals;

/* Blocks the forwarded signals and SIGCHLD and reads them from a signalfd;
 * makes this process a child subreaper when it is not PID 1. */
int sc_rt_signals_setup(sc_rt_signals *ret, sconify_error_t *err);
/* In the child: default dispositions and the original mask back. */
void sc_rt_signals_reset_in_child(const sc_rt_signals *sig);

/* Serves sup (may be NULL) and signals until child ends; returns the exit
 * code to end with: the child's, or 128+N when signal N killed it. */
int sc_rt_pid1_run(const sc_rt_signals *sig, pid_t child, sc_rt_supervisor *sup, int *ret_code,
                   sconify_error_t *err);

#endif
