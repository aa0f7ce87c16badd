/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Builds tar streams byte by byte for the tests, including headers that
 * libarchive's writer refuses to make (hostile names, links, whiteouts).
 */
#ifndef SC_TEST_TARBUILD_H
#define SC_TEST_TARBUILD_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	char *data;
	size_t len, alloc;
} tarb;

#define USTAR "ustar\00000"
#define GNU "ustar  "

/* Appends n bytes (zeros when p is NULL). */
void tb_raw(tarb *b, const void *p, size_t n);
/* Pads to the next 512-byte block. */
void tb_pad(tarb *b);
/* One header block: name and link are copied as they are (at most 100 bytes). */
void tb_block(tarb *b, const char *name, size_t name_len, char type, uint64_t size, const char *link,
              unsigned mode, const char *magic);
/* A pax 'x' (or 'g') header with the records given as key, value, length
 * triples, ended by a NULL key. */
void tb_pax(tarb *b, int type, ...);
/* An entry; names and links over 100 bytes go into a pax header. */
void tb_entry(tarb *b, const char *name, char type, const void *data, size_t size, const char *link,
              unsigned mode);
void tb_file(tarb *b, const char *name, const char *content);
void tb_dir(tarb *b, const char *name);
void tb_symlink(tarb *b, const char *name, const char *target);
void tb_link(tarb *b, const char *name, const char *target);
/* The end-of-archive marker (two zero blocks). */
void tb_end(tarb *b);

#endif
