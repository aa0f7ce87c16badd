/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test program for tests/integration/test_runtime.py, built at test time with
 * gcc (dynamic glibc) and musl-gcc -static. It opens a file the way a mode
 * says and prints its content, or "error: NAME" with the errno's name.
 *   openfile read PATH         open(2) through libc
 *   openfile openat DIR NAME   openat() relative to a directory descriptor
 *   openfile openat2 PATH      the openat2 system call
 *   openfile write PATH        open for writing
 *   openfile thread PATH       open and read in a second thread
 *   openfile int80 PATH        the i386 open system call (x86_64 only)
 *   openfile spawn PATH ARG..  posix_spawn(PATH) with argv[0] the same string as
 *                              the path (as shells pass it), then prints the
 *                              parent's argv[0] after the child ran
 *   openfile fexec PATH ARG..  open(PATH), then fexecve of that descriptor
 *   openfile opentree PATH ARG.. open_tree(PATH) (no open(2) at all), then
 *                              execveat(fd, "", AT_EMPTY_PATH)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct how {
	uint64_t flags, mode, resolve;
};

static const char *errname(int e)
{
	static const struct {
		int e;
		const char *name;
	} names[] = {{ENOENT, "ENOENT"},   {EROFS, "EROFS"}, {EACCES, "EACCES"},  {EEXIST, "EEXIST"},
	             {ENOTDIR, "ENOTDIR"}, {ELOOP, "ELOOP"}, {EIO, "EIO"},        {ENOSYS, "ENOSYS"},
	             {EPERM, "EPERM"},     {EBADF, "EBADF"}, {ENOEXEC, "ENOEXEC"}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == e)
			return names[i].name;
	return "other";
}

static int fail(int e)
{
	printf("error: %s\n", errname(e));
	return 1;
}

static int dump(int fd)
{
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	if (n < 0)
		return fail(errno);
	close(fd);
	return 0;
}

static void *thread_main(void *arg)
{
	int fd = open(arg, O_RDONLY | O_CLOEXEC);
	return (void *)(intptr_t)(fd < 0 ? fail(errno) : dump(fd));
}

extern char **environ;

/* argv + 2 (PATH ARG..) as a new vector whose [0] is a copy the path points
 * into too: one string, as execv(argv[0], argv) passes it. */
static char **exec_args(int argc, char **argv, char **ret_path)
{
	char **v = calloc((size_t)argc - 1, sizeof(*v));
	v[0] = strdup(argv[2]);
	for (int i = 3; i < argc; i++)
		v[i - 2] = argv[i];
	*ret_path = v[0];
	return v;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	const char *mode = argv[1], *path = argv[2];
	int fd;
	if (strcmp(mode, "spawn") == 0) {
		char *p;
		char **v = exec_args(argc, argv, &p);
		pid_t pid;
		int e = posix_spawn(&pid, p, NULL, NULL, v, environ);
		if (e != 0)
			return fail(e);
		int st;
		waitpid(pid, &st, 0);
		fflush(stdout);
		/* The slot still names a readable string (the path, rewritten). */
		printf("parent argv0 %zu bytes, child status %d\n", strlen(v[0]), WEXITSTATUS(st));
		return 0;
	}
	if (strcmp(mode, "fexec") == 0 || strcmp(mode, "opentree") == 0) {
		char *p;
		char **v = exec_args(argc, argv, &p);
		if (mode[0] == 'f') {
			fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				return fail(errno);
			fexecve(fd, v, environ);
		} else {
			fd = (int)syscall(428 /* open_tree */, AT_FDCWD, p, O_CLOEXEC);
			if (fd < 0)
				return fail(errno);
			syscall(SYS_execveat, fd, "", v, environ, AT_EMPTY_PATH);
		}
		return fail(errno);
	}
	if (strcmp(mode, "read") == 0) {
		fd = open(path, O_RDONLY);
	} else if (strcmp(mode, "openat") == 0 && argc == 4) {
		int dir = open(path, O_RDONLY | O_DIRECTORY);
		if (dir < 0)
			return fail(errno);
		fd = openat(dir, argv[3], O_RDONLY);
	} else if (strcmp(mode, "openat2") == 0) {
		struct how how = {.flags = O_RDONLY | O_CLOEXEC};
		fd = (int)syscall(437, AT_FDCWD, path, &how, sizeof(how));
	} else if (strcmp(mode, "write") == 0) {
		fd = open(path, O_WRONLY);
	} else if (strcmp(mode, "thread") == 0) {
		pthread_t t;
		void *r;
		if (pthread_create(&t, NULL, thread_main, (void *)path) != 0)
			return 3;
		pthread_join(t, &r);
		return (int)(intptr_t)r;
#if defined(__x86_64__)
	} else if (strcmp(mode, "int80") == 0) {
		long r;
		/* i386 open (5) through the compat entry point. */
		__asm__ volatile("int $0x80" : "=a"(r) : "a"(5L), "b"(path), "c"(0L) : "memory");
		fd = (int)r;
		if (fd < 0)
			return fail((int)-r);
#endif
	} else {
		return 2;
	}
	if (fd < 0)
		return fail(errno);
	return dump(fd);
}
