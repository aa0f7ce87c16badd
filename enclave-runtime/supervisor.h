/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shield's mechanism: a seccomp filter in the application that hands
 * open, openat, openat2 (and creat) to this process through a user
 * notification listener (Linux >= 5.9), and the supervisor that answers each
 * one: it reads the path from the caller's memory, resolves it (resolve.h),
 * asks the provider (provider.h) and replies continue, an errno, or a
 * descriptor installed in the caller (SECCOMP_IOCTL_NOTIF_ADDFD).
 */
#ifndef SC_RT_SUPERVISOR_H
#define SC_RT_SUPERVISOR_H

#include "core/error.h"
#include "provider.h"

/* Fails with a clear message on a kernel that cannot notify (before 5.5) or
 * when seccomp is not available at all. Call before starting anything. */
int sc_rt_notify_check(sconify_error_t *err);

/* In the application's process, right before execve: sets no_new_privs and
 * installs the filter (inherited by every child, thread and exec). Returns the
 * listener fd in *ret_listener. Uses only async-signal-safe calls. */
int sc_rt_filter_install(int *ret_listener, sconify_error_t *err);

typedef struct sc_rt_supervisor sc_rt_supervisor;
typedef void (*sc_rt_log_fn)(void *userdata, const char *msg);

/* Takes listener (closed by _free); probes that it can install descriptors
 * (SECCOMP_IOCTL_NOTIF_ADDFD, Linux 5.9) and fails clearly otherwise. Borrows
 * provider. log receives one line per refused or failed open worth knowing. */
int sc_rt_supervisor_new(int listener, sc_rt_provider *provider, sc_rt_log_fn log, void *log_userdata,
                         sc_rt_supervisor **ret, sconify_error_t *err);
void sc_rt_supervisor_free(sc_rt_supervisor *s);
SC_DEFINE_CLEANUP(sc_rt_supervisor *, sc_rt_supervisor_free)
#define cleanup_supervisor _cleanup_(sc_rt_supervisor_freep)

int sc_rt_supervisor_fd(sc_rt_supervisor *s);
/* Receives and answers one notification (call when the fd is readable). A
 * caller that died meanwhile is not an error. Fails only when the listener
 * itself broke. After sc_rt_supervisor_start, the fd is the serving thread's:
 * readable when it failed (handle then returns its error), hung up when no
 * process uses the filter any more. */
int sc_rt_supervisor_handle(sc_rt_supervisor *s, sconify_error_t *err);

/* Serves notifications on a thread of its own that waits in
 * SECCOMP_IOCTL_NOTIF_RECV, instead of in the caller's poll loop: one system
 * call less per open, and with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP the caller
 * hands its CPU to that thread directly. Uses SIGRTMIN+3 to interrupt it
 * (sc_rt_supervisor_stop, _free). On failure nothing changed: serve from the
 * poll loop. */
int sc_rt_supervisor_start(sc_rt_supervisor *s, sconify_error_t *err);
/* Ends the serving thread (after the notification at hand); _free does it. */
void sc_rt_supervisor_stop(sc_rt_supervisor *s);

#endif
