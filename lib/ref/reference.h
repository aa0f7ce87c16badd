/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Docker image references ("alpine", "host:5000/ns/repo:tag@sha256:..."):
 * parsed with distribution's grammar, validated and normalised the way docker
 * and skopeo do ("alpine" -> "docker.io/library/alpine:latest").
 */
#ifndef SC_REFERENCE_H
#define SC_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/cleanup.h"
#include "sconify.h"

typedef struct {
	char *domain; /* "docker.io", "localhost:5000", "[::1]:5000" */
	char *path;   /* "library/alpine" */
	char *tag;    /* NULL when none was given and a digest was */
	char *digest; /* validated (digest/digest.h), or NULL */
} sc_docker_ref;

/* Parses and normalises s: a missing domain becomes docker.io, a one-component
 * docker.io path gets "library/", index.docker.io becomes docker.io, a missing
 * tag becomes "latest" unless a digest is given. Fails (SCONIFY_ERR_INVALID,
 * quoting s and naming the problem) on uppercase repository names, a bad tag,
 * a bad digest (before it is used anywhere), empty components, and a name
 * (domain/path) over 255 bytes. */
int sc_docker_ref_parse(const char *s, sc_docker_ref **ret, sconify_error_t *err);
void sc_docker_ref_free(sc_docker_ref *r);
SC_DEFINE_CLEANUP(sc_docker_ref *, sc_docker_ref_free)
#define cleanup_docker_ref _cleanup_(sc_docker_ref_freep)

/* "domain/path[:tag][@digest]" */
char *sc_docker_ref_string(const sc_docker_ref *r);
/* "domain/path" */
char *sc_docker_ref_name(const sc_docker_ref *r);
/* docker's short form: "alpine:latest", "user/app:1", "host:5000/x:y" */
char *sc_docker_ref_familiar(const sc_docker_ref *r);

bool sc_tag_valid(const char *tag);

/* The grammar's pieces, for names that arrive apart (webhook events), with
 * no length caps. The domain: (domain-name | "[" ipv6 "]") [":" digits]. */
bool sc_ref_domain_valid(const char *s);
/* The path: components of [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* joined by `/'.
 * Returns NULL when path is valid, else its first bad component, of *ret_len
 * bytes (0: an empty component). */
const char *sc_ref_path_bad_component(const char *path, size_t *ret_len);

#endif
