/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parses the input as a docker reference. What parses must print back to a
 * string that parses to itself, and its familiar form must name the same
 * reference.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "digest/digest.h"
#include "ref/reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *reparse(const char *s)
{
	sconify_error_t err = NULL;
	sc_docker_ref *r = NULL;
	if (sc_docker_ref_parse(s, &r, &err) < 0)
		__builtin_trap();
	char *out = sc_docker_ref_string(r);
	sc_docker_ref_free(r);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	sconify_error_t err = NULL;
	sc_docker_ref *r = NULL;
	if (sc_docker_ref_parse(s, &r, &err) == 0) {
		if (r->domain[0] == '\0' || r->path[0] == '\0' || (r->tag == NULL && r->digest == NULL))
			__builtin_trap();
		if (r->tag && !sc_tag_valid(r->tag))
			__builtin_trap();
		if (r->digest && !sc_digest_valid(r->digest))
			__builtin_trap();
		char *str = sc_docker_ref_string(r);
		char *again = reparse(str);
		char *familiar = sc_docker_ref_familiar(r);
		char *from_familiar = reparse(familiar);
		if (strcmp(str, again) != 0 || strcmp(str, from_familiar) != 0)
			__builtin_trap();
		char *name = sc_docker_ref_name(r);
		if (strlen(name) > 255)
			__builtin_trap();
		free(name);
		free(from_familiar);
		free(familiar);
		free(again);
		free(str);
		sc_docker_ref_free(r);
	} else if (err == NULL) {
		__builtin_trap();
	}
	sconify_error_free(&err);
	free(s);
	return 0;
}
