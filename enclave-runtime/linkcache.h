/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the supervisor's path walk (resolve.h) has learnt about the file
 * system: paths that exist and are not symbolic links. Every unprotected
 * open walks its path one component at a time, one readlink(2) each; a path
 * known here costs nothing. A fact is kept only while nothing can have
 * changed it: the directory holding the name is watched with inotify (the
 * watch is placed before the name is looked at), and a name created, moved
 * or removed there forgets the name and everything below it. The events are
 * queued by the kernel inside the system call that changed the name, before
 * that call returns, so an open that follows it (as a cause follows its
 * effect) finds them: sc_rt_linkcache_sync() applies them first.
 *
 * Only the application's own changes need to be seen: whatever the host
 * does to names outside the protected regions, it could have done to the
 * files there. Names in pseudo file systems (/proc, /sys, /dev), whose
 * changes inotify does not report, are never kept; nor is anything once the
 * application mounts (sc_rt_linkcache_disable()).
 */
#ifndef SC_RT_LINKCACHE_H
#define SC_RT_LINKCACHE_H

#include <stdbool.h>

#include "core/cleanup.h"

/* At most this many names and watched directories: the cache starts again
 * empty when either is full. */
#define SC_RT_LINKCACHE_NAMES 16384u
#define SC_RT_LINKCACHE_WATCHES 4096u
/* The supervisor's cache starts after this many opens. Closing an inotify
 * instance that has watches waits for an SRCU grace period in the kernel
 * (7-14 ms here), which the runtime's exit pays: a short-lived application
 * would lose more there than the cache saves it (a few microseconds per
 * open), one that opens this many files has gained it back. */
#define SC_RT_LINKCACHE_START 8192u

typedef struct sc_rt_linkcache sc_rt_linkcache;

/* An empty cache that starts to learn at the start_after-th sync (at once
 * for 0); one that knows nothing and learns nothing when inotify is not
 * available (no descriptor, no instance left). */
sc_rt_linkcache *sc_rt_linkcache_new(unsigned start_after);
void sc_rt_linkcache_free(sc_rt_linkcache *c);
SC_DEFINE_CLEANUP(sc_rt_linkcache *, sc_rt_linkcache_free)

/* Applies the changes reported since the last call. Call before the
 * lookups of each open. Costs one system call when nothing changed, none
 * once armed. */
void sc_rt_linkcache_sync(sc_rt_linkcache *c);

/* Asks the kernel to signal the calling thread (signo, and SIGIO should its
 * queue of signals overflow) whenever a change is reported; sync then looks
 * only after a signal. The signal interrupts the thread's next wait, so it
 * has been handled before the thread takes the open that follows the change.
 * Call from the one thread that uses c; false (and sync keeps asking) when
 * the descriptor cannot be set up so. */
bool sc_rt_linkcache_arm(sc_rt_linkcache *c, int signo);

/* Whether path (absolute, normalised) is known to exist and not to be a
 * symbolic link. */
bool sc_rt_linkcache_known(sc_rt_linkcache *c, const char *path);

/* Before path is looked at: watches the directory that holds it. True when
 * what is then learnt about path may be kept (sc_rt_linkcache_add). */
bool sc_rt_linkcache_prepare(sc_rt_linkcache *c, const char *path);

/* path exists and is not a symbolic link (after a true prepare). */
void sc_rt_linkcache_add(sc_rt_linkcache *c, const char *path);

/* Forgets everything and learns nothing more (the application mounted). */
void sc_rt_linkcache_disable(sc_rt_linkcache *c);

#endif
