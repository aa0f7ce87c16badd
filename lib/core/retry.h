/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One retry policy for everything that talks to the network: how many more
 * attempts (the user's --retry-times), and how long to wait before each.
 */
#ifndef SC_RETRY_H
#define SC_RETRY_H

/* The number of further attempts for the public `retries' convention:
 * < 0 none, 0 the default (4), > 0 that many. */
int sc_retry_count(int retries);
/* Waiting time before the attempt-th retry (0-based): SCONIFY_RETRY_BASE_MS
 * (default 250 ms) doubling, +-50% jitter, at most 15 s. Thread-safe. */
long sc_backoff_ms(unsigned attempt);
void sc_sleep_ms(long ms);

#endif
