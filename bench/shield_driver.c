/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Driver for bench/shield.sh: throughput of the file shield (lib/shield/) on
 * one buffer in memory, one thread. Prints one line per operation, MB/s in
 * 10^6 bytes of plaintext per second. The timed encryption reads one 1 MiB
 * buffer and writes another, over and over (as a layer rewrite does with its
 * stream buffers), so that it measures the cipher, not memory bandwidth; the
 * file's plaintext is that 1 MiB repeated.
 *
 *   shield_driver [MIB]   (default 256)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/xalloc.h"
#include "shield/shield.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *what, size_t bytes, double secs)
{
	printf("%-44s %8.1f MB/s %7.3f s\n", what, (double)bytes / 1e6 / secs, secs);
}

static void die(sconify_error_t err)
{
	fprintf(stderr, "shield_driver: %s\n", sconify_error_message(err));
	exit(1);
}

/* Output of the decryption: tmpfs when there is one, as the runtime's memfd. */
static int out_file(void)
{
	const char *dirs[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
	for (size_t i = 0; i < 3; i++) {
		if (dirs[i] == NULL)
			continue;
		char *t = xasprintf("%s/shield-bench-XXXXXX", dirs[i]);
		int fd = mkstemp(t);
		if (fd >= 0) {
			unlink(t);
			free(t);
			return fd;
		}
		free(t);
	}
	perror("mkstemp");
	exit(1);
}

int main(int argc, char **argv)
{
	size_t size = (size_t)(argc > 1 ? atoi(argv[1]) : 256) << 20;
	sconify_error_t err = NULL;
	const size_t step = 1 << 20;
	if (size < step)
		size = step;
	uint8_t *plain = xmalloc(size), *ct = xmalloc(size), *out = xmalloc(SC_SHIELD_CHUNK_MAX);
	uint8_t *ct_step = xmalloc(step);
	uint64_t s = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < step; i += 8) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		memcpy(plain + i, &s, 8);
	}
	for (size_t i = step; i < size; i += step)
		memcpy(plain + i, plain, size - i < step ? size - i : step);
	cleanup_shield_key sc_shield_key *key = NULL;
	uint8_t id[SC_SHIELD_FILE_ID_BYTES];
	if (sc_shield_key_generate(&key, &err) < 0 || sc_shield_file_id_random(id, &err) < 0)
		die(err);
	printf("buffer: %zu MiB, chunks of %u bytes, one thread\n", size >> 20, SC_SHIELD_CHUNK_DEFAULT);

	for (int round = 0; round < 2; round++) {
		/* encrypt, in 1 MiB update calls as a layer rewrite feeds it, from
		 * and to the same two 1 MiB buffers */
		double t0 = now();
		cleanup_shield_encoder sc_shield_encoder *enc = NULL;
		sc_shield_entry *e = NULL;
		if (sc_shield_encryptor_new(key, id, size, 0, &enc, &err) < 0)
			die(err);
		for (size_t off = 0; off < size; off += step) {
			size_t n = size - off < step ? size - off : step;
			if (sc_shield_encoder_update(enc, plain, n, ct_step, &err) < 0)
				die(err);
		}
		if (sc_shield_encoder_finish(enc, &e, &err) < 0)
			die(err);
		double t1 = now();
		report("encrypt (encoder_update, 1 MiB calls)", size, t1 - t0);
		sc_shield_entry_free(e);
		e = NULL;

		/* the whole ciphertext, untimed, for the decryption below (the
		 * same key and id give the same ciphertext and tags) */
		cleanup_shield_encoder sc_shield_encoder *full = NULL;
		if (sc_shield_encryptor_new(key, id, size, 0, &full, &err) < 0 ||
		    sc_shield_encoder_update(full, plain, size, ct, &err) < 0 ||
		    sc_shield_encoder_finish(full, &e, &err) < 0)
			die(err);

		/* decrypt + verify every chunk in memory (random access path) */
		cleanup_shield_file sc_shield_file *f = NULL;
		if (sc_shield_file_new(key, e, &f, &err) < 0)
			die(err);
		t0 = now();
		for (uint64_t i = 0; i < e->n_chunks; i++) {
			size_t off = (size_t)i * e->chunk_size;
			size_t n = size - off < e->chunk_size ? size - off : e->chunk_size;
			if (sc_shield_file_read_chunk(f, i, ct + off, n, out, &err) < 0)
				die(err);
		}
		t1 = now();
		report("decrypt (read_chunk, every chunk, in memory)", size, t1 - t0);

		/* decrypt the whole file into a tmpfs file (the runtime's memfd path) */
		int fd = out_file();
		cleanup_reader sc_reader *r = sc_mem_reader_new(ct, size);
		t0 = now();
		if (sc_shield_file_to_fd(f, r, fd, &err) < 0)
			die(err);
		t1 = now();
		report("decrypt (file_to_fd into tmpfs)", size, t1 - t0);
		close(fd);
		sc_shield_entry_free(e);

		/* authenticated: hash, then verify into tmpfs */
		cleanup_shield_encoder sc_shield_encoder *h = NULL;
		t0 = now();
		if (sc_shield_hasher_new(size, 0, &h, &err) < 0 ||
		    sc_shield_encoder_update(h, plain, size, NULL, &err) < 0 ||
		    sc_shield_encoder_finish(h, &e, &err) < 0)
			die(err);
		t1 = now();
		report("authenticate (hasher)", size, t1 - t0);
		cleanup_shield_file sc_shield_file *af = NULL;
		fd = out_file();
		cleanup_reader sc_reader *pr = sc_mem_reader_new(plain, size);
		t0 = now();
		if (sc_shield_file_new(NULL, e, &af, &err) < 0 || sc_shield_file_to_fd(af, pr, fd, &err) < 0)
			die(err);
		t1 = now();
		report("verify authenticated (file_to_fd into tmpfs)", size, t1 - t0);
		close(fd);
		sc_shield_entry_free(e);
	}
	free(plain);
	free(ct);
	free(ct_step);
	free(out);
	return 0;
}
