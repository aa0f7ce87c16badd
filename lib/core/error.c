/* SPDX-License-Identifier: Apache-2.0 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

int sc_error(sconify_error_t *err, sconify_error_kind_t kind, int errno_, const char *fmt, ...)
{
	if (err == NULL)
		return -1;

	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);

	if (errno_ != 0) {
		char *full = xasprintf("%s: %s", msg, strerror(errno_));
		free(msg);
		msg = full;
	}

	/* A second error replaces the first: the newest is where we failed. */
	sconify_error_free(err);
	struct sconify_error_s *e = xzalloc(sizeof(*e));
	e->kind = kind;
	e->errno_ = errno_;
	e->msg = msg;
	*err = e;
	return -1;
}

int sc_error_wrap(sconify_error_t *err, const char *fmt, ...)
{
	if (err == NULL || *err == NULL)
		return -1;

	va_list ap;
	va_start(ap, fmt);
	char *ctx = xvasprintf(fmt, ap);
	va_end(ap);

	char *msg = xasprintf("%s: %s", ctx, (*err)->msg);
	free(ctx);
	free((*err)->msg);
	(*err)->msg = msg;
	return -1;
}

void sc_error_move(sconify_error_t *dst, sconify_error_t *src)
{
	sconify_error_free(dst);
	*dst = *src;
	*src = NULL;
}

const char *sconify_error_message(sconify_error_t err)
{
	return err ? err->msg : "no error";
}

sconify_error_kind_t sconify_error_kind(sconify_error_t err)
{
	return err ? err->kind : SCONIFY_ERR_GENERIC;
}

int sconify_error_errno(sconify_error_t err)
{
	return err ? err->errno_ : 0;
}

void sconify_error_free(sconify_error_t *err)
{
	if (err == NULL || *err == NULL)
		return;
	free((*err)->msg);
	free(*err);
	*err = NULL;
}
