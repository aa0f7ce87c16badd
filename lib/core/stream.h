/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Byte streams. Sources are pulled (sc_reader), destinations are pushed
 * (sc_writer); sc_stream_pump() joins the two. Streams are how blobs move
 * through the library: nothing holds a whole layer in memory.
 *
 * A reader returns > 0 bytes read, 0 at the end, < 0 on failure (err set).
 * Readers that verify (digests, sizes, caps) report a failure at the latest on
 * the read that would return 0, so a consumer must read to the end before it
 * trusts what it got.
 */
#ifndef SC_STREAM_H
#define SC_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"
#include "error.h"

typedef struct sc_reader sc_reader;
struct sc_reader_ops {
	ssize_t (*read)(sc_reader *r, void *buf, size_t len, sconify_error_t *err);
	void (*free)(sc_reader *r);
};
struct sc_reader {
	const struct sc_reader_ops *ops;
};

ssize_t sc_reader_read(sc_reader *r, void *buf, size_t len, sconify_error_t *err);
/* Reads until len bytes or the end; *ret_got says how many arrived. */
int sc_reader_read_full(sc_reader *r, void *buf, size_t len, size_t *ret_got, sconify_error_t *err);
/* Reads the whole stream into memory, failing past cap bytes. what names the
 * content in error messages. The result is NUL-terminated. */
int sc_reader_read_all(sc_reader *r, size_t cap, const char *what, char **ret_data, size_t *ret_len,
                       sconify_error_t *err);
void sc_reader_free(sc_reader *r);
static inline void sc_reader_freep(sc_reader **r)
{
	sc_reader_free(*r);
}
#define cleanup_reader _cleanup_(sc_reader_freep)

/* Reads fd from offset for length bytes (length < 0: to the end of the file)
 * with pread, so several readers can share one fd. Closes fd on free if own. */
sc_reader *sc_fd_reader_new(int fd, bool own, int64_t offset, int64_t length);
/* Reads a buffer the caller keeps alive. */
sc_reader *sc_mem_reader_new(const void *data, size_t len);

typedef struct sc_writer sc_writer;
struct sc_writer_ops {
	int (*write)(sc_writer *w, const void *buf, size_t len, sconify_error_t *err);
	/* no more data: flush what is buffered (optional) */
	int (*finish)(sc_writer *w, sconify_error_t *err);
	void (*free)(sc_writer *w);
};
struct sc_writer {
	const struct sc_writer_ops *ops;
};

int sc_writer_write(sc_writer *w, const void *buf, size_t len, sconify_error_t *err);
int sc_writer_finish(sc_writer *w, sconify_error_t *err);
void sc_writer_free(sc_writer *w);
static inline void sc_writer_freep(sc_writer **w)
{
	sc_writer_free(*w);
}
#define cleanup_writer _cleanup_(sc_writer_freep)

/* Writes to fd at its current position, retrying short writes. */
sc_writer *sc_fd_writer_new(int fd, bool own);
/* Counts and discards. */
sc_writer *sc_null_writer_new(void);

/* Size of the buffers streams are pumped with. */
#define SC_STREAM_CHUNK (256 * 1024)

/* Copies r to w until r ends; returns the byte count through ret_n (may be NULL).
 * Does not finish w. */
int sc_stream_pump(sc_reader *r, sc_writer *w, uint64_t *ret_n, sconify_error_t *err);

#endif
