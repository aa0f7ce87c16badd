/* SPDX-License-Identifier: Apache-2.0 */
#include "retry.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "strutil.h"

#define DEFAULT_RETRIES 4
#define DEFAULT_BASE_MS 250L
#define CAP_MS 15000L

int sc_retry_count(int retries)
{
	return retries < 0 ? 0 : retries == 0 ? DEFAULT_RETRIES : retries;
}

static long base_ms(void)
{
	unsigned long long v;
	const char *e = getenv("SCONIFY_RETRY_BASE_MS");
	return e && sc_parse_u64(e, &v) && v > 0 && v < 60000 ? (long)v : DEFAULT_BASE_MS;
}

long sc_backoff_ms(unsigned attempt)
{
	static atomic_uint seed;
	unsigned s = atomic_fetch_add(&seed, 0x9e3779b9u) ^ (unsigned)time(NULL);
	s ^= s << 13, s ^= s >> 17, s ^= s << 5;
	long d = base_ms();
	for (unsigned i = 0; i < attempt && d < CAP_MS; i++)
		d *= 2;
	/* +-50% jitter, so that clients that failed together do not return
	 * together; then the cap. */
	d = d / 2 + (long)(s % (unsigned long)(d + 1));
	return d > CAP_MS ? CAP_MS : d;
}

void sc_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
