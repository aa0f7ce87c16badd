/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-layer progress display of copy: one line per blob, redrawn in place
 * on a terminal (at most ten times a second). Only used when stderr is a
 * terminal: logs of pipelines get nothing of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

struct line {
	char digest[24]; /* "sha256:" + 12 hex */
	const char *state;
	uint64_t done, total;
};

struct cli_progress {
	struct line *lines;
	size_t n, alloc;
	size_t drawn; /* lines on screen from the last draw */
	struct timespec last;
};

cli_progress *cli_progress_new(void)
{
	cli_progress *p = calloc(1, sizeof(*p));
	if (p == NULL)
		abort();
	return p;
}

static struct line *find(cli_progress *p, const char *digest)
{
	for (size_t i = 0; i < p->n; i++)
		if (strncmp(p->lines[i].digest, digest, sizeof(p->lines[i].digest) - 1) == 0)
			return &p->lines[i];
	if (p->n == p->alloc) {
		p->alloc = p->alloc ? p->alloc * 2 : 16;
		p->lines = realloc(p->lines, p->alloc * sizeof(*p->lines));
		if (p->lines == NULL)
			abort();
	}
	struct line *l = &p->lines[p->n++];
	memset(l, 0, sizeof(*l));
	snprintf(l->digest, sizeof(l->digest), "%s", digest);
	return l;
}

static void human(char *buf, size_t n, uint64_t v)
{
	if (v >= (1ull << 30))
		snprintf(buf, n, "%.1f GiB", (double)v / (1ull << 30));
	else if (v >= (1ull << 20))
		snprintf(buf, n, "%.1f MiB", (double)v / (1ull << 20));
	else
		snprintf(buf, n, "%.1f KiB", (double)v / 1024);
}

static void draw(cli_progress *p)
{
	if (p->drawn)
		fprintf(stderr, "\033[%zuA", p->drawn);
	for (size_t i = 0; i < p->n; i++) {
		struct line *l = &p->lines[i];
		char d[32], t[32];
		human(d, sizeof(d), l->done);
		human(t, sizeof(t), l->total);
		fprintf(stderr, "\r\033[K%-12s %s  %s / %s\n", l->state, l->digest, d, t);
	}
	p->drawn = p->n;
	fflush(stderr);
}

void cli_progress_event(void *userdata, sconify_event_t ev, const char *digest, uint64_t done, uint64_t total)
{
	cli_progress *p = userdata;
	const char *state = NULL;
	switch (ev) {
	case SCONIFY_EVENT_BLOB:
	case SCONIFY_EVENT_BLOB_PROGRESS:
		state = "Copying";
		break;
	case SCONIFY_EVENT_BLOB_DONE:
		state = "Copied";
		break;
	case SCONIFY_EVENT_BLOB_SKIP:
		state = "Exists";
		break;
	case SCONIFY_EVENT_BLOB_MOUNTED:
		state = "Mounted";
		break;
	case SCONIFY_EVENT_CONFIG:
		state = "Config";
		break;
	case SCONIFY_EVENT_MANIFEST:
		state = "Manifest";
		break;
	case SCONIFY_EVENT_INDEX:
		state = "Index";
		break;
	}
	struct line *l = find(p, digest);
	l->state = state;
	l->done = done;
	l->total = total;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - p->last.tv_sec) * 1000 + (now.tv_nsec - p->last.tv_nsec) / 1000000;
	if (ev != SCONIFY_EVENT_BLOB_PROGRESS || ms >= 100) {
		p->last = now;
		draw(p);
	}
}

void cli_progress_free(cli_progress *p)
{
	if (p == NULL)
		return;
	free(p->lines);
	free(p);
}
