/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The library's one error type. A failure is made where it happens with
 * sc_error() (kind, errno, message naming the input) and wrapped on the way up
 * with sc_error_wrap() ("reading `x': <inner>"). Both return -1 so that
 * `return sc_error(...)` ends a function. Secrets never go into a message.
 */
#ifndef SC_ERROR_H
#define SC_ERROR_H

#include <stdbool.h>

#include "sconify.h"

struct sconify_error_s {
	sconify_error_kind_t kind;
	int errno_;
	char *msg;
	/* Only doing it all over again can mend this (a streamed body was lost
	 * on the way): retried by whoever can start over, nobody else. */
	bool restartable;
};

__attribute__((format(printf, 4, 5))) int sc_error(sconify_error_t *err, sconify_error_kind_t kind,
                                                   int errno_, const char *fmt, ...);
/* Prefixes the message already in *err with "<context>: ". */
__attribute__((format(printf, 2, 3))) int sc_error_wrap(sconify_error_t *err, const char *fmt, ...);
/* The same for a failed system call: kind IO, message "<context>: strerror(errno)". */
#define sc_error_errno(err, errno_, ...) sc_error(err, SCONIFY_ERR_IO, errno_, __VA_ARGS__)

static inline void sc_error_set_restartable(sconify_error_t *err)
{
	if (err && *err)
		(*err)->restartable = true;
}

static inline bool sc_error_restartable(sconify_error_t err)
{
	return err && err->restartable;
}

/* Moves *src into *dst (dst must be empty). */
void sc_error_move(sconify_error_t *dst, sconify_error_t *src);

#endif
