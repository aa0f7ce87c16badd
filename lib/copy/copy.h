/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the copy engine and inspect. */
#ifndef SC_COPY_H
#define SC_COPY_H

#include "image/document.h"
#include "image/platform.h"
#include "transport/transport.h"

/* Follows indexes from top down to the image for want (top may already be
 * an image; *ret is then a copy of it). */
int sc_select_platform(sc_source *src, const sc_document *top, const sc_platform *want, sc_document **ret,
                       sconify_error_t *err);
/* platform NULL means the host's. */
int sc_platform_option(const char *platform, sc_platform *ret, sconify_error_t *err);
int sc_online_cpus(void);

#endif
