/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scope-bound ownership. Every owned resource lives in a cleanup variable;
 * ownership leaves a scope only through steal_pointer()/steal_fd().
 * Helpers for external types live beside the code that wraps them
 * (json-util.h, openssl-util.h, archive-util.h).
 */
#ifndef SC_CLEANUP_H
#define SC_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sconify.h"

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void sc_freep(void *p)
{
	free(*(void **)p);
}

static inline void sc_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void sc_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

/* A NULL-terminated array of malloc'd strings. */
static inline void sc_strv_free(char **strv)
{
	if (strv == NULL)
		return;
	for (char **s = strv; *s; s++)
		free(*s);
	free(strv);
}

static inline void sc_strv_freep(char ***strv)
{
	sc_strv_free(*strv);
}

#define cleanup_free _cleanup_(sc_freep)
#define cleanup_close _cleanup_(sc_closep)
#define cleanup_fclose _cleanup_(sc_fclosep)
#define cleanup_strv _cleanup_(sc_strv_freep)
#define cleanup_error _cleanup_(sconify_error_free)

static inline void *sc_steal_pointer(void *pp)
{
	void **p = pp;
	void *r = *p;
	*p = NULL;
	return r;
}
#define steal_pointer(pp) ((__typeof__(*(pp)))sc_steal_pointer(pp))

static inline int steal_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

/* Defines NAME##p for a free function that takes a pointer, for use with _cleanup_. */
#define SC_DEFINE_CLEANUP(type, func)       \
	static inline void func##p(type *p) \
	{                                   \
		if (*p)                     \
			func(*p);           \
	}

#endif
