#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The enclave runtime against the same image run without it (issue 5,
deliverable 6), under bubblewrap in both cases. Numbers, never assertions.

Three images, each converted by `sconify image --mode sim` (the runtime
measures its command, so each measured program gets its own image) and
unpacked with umoci; "native" runs the unconverted image's root file system
with the same command and no runtime:
  start-up  python3 -c 'import json' from this machine's python3, standard
            library (with hash-based .pyc files, as a distribution ships
            them) in an --authenticated region; REPEAT runs, median wall time
            of the whole bwrap command;
  open      a static C program (compiled here) doing OPENS open+close of
            an unprotected file (/data/plain.txt) while /app is an encrypted
            region: ns per open, the runtime's added cost per open; and the
            floor of the mechanism: the same opens in a process whose filter
            sends openat to a parent that answers CONTINUE at once;
  read      the same program reading a SIZE_MIB (default 1024) file of an
            encrypted region (/secret/big.bin) with 1 MiB reads: the first
            open (verified and decrypted into a memfd by the runtime), the
            read of the served memfd, and both together (median of READS
            runs, default 3, each a fresh runtime), against a native read
            of the plain file (page cache warm).
The load average is printed at the start and the end: on a shared machine
the figures move with it. ONLY=read (or --only read, repeatable) runs one
case.
Prints the numbers, the ratios and the issue's goals: start-up at most 2x
native, at most 10 us added per unprotected open, encrypted reads at 1 GB/s
or more.

    bench/runtime.sh [BUILD_DIR]     (default build-rtbench)
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import imagebuild as ib  # noqa: E402

fl = ib.fl
GOAL_STARTUP = 2.0
GOAL_OPEN_US = 10.0
GOAL_READ_GBS = 1.0

DRIVER = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double opens(const char *path, long n)
{
	for (int i = 0; i < 1000; i++) /* warm the caches */
		close(open(path, O_RDONLY | O_CLOEXEC));
	double t = now();
	for (long i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			perror(path);
			exit(1);
		}
		close(fd);
	}
	return (now() - t) * 1e9 / n;
}

/* The floor of any seccomp-notification shield: the child opens under a
 * filter that sends openat to its parent, which answers CONTINUE at once
 * (the runtime's flags: SYNC_WAKE_UP, a blocking RECV); nothing is looked
 * at. The difference to the same opens without the filter is what the
 * mechanism itself costs on this machine. */
static int floor_case(const char *path, long n)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return perror("socketpair"), 1;
	pid_t pid = fork();
	if (pid == 0) {
		double native = opens(path, n);
		struct sock_filter f[] = {
		        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 1),
		        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = {.len = 4, .filter = f};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			return perror("no_new_privs"), 1;
		int lfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
		if (lfd < 0)
			return perror("seccomp"), 1;
		char c = 0;
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} u;
		struct iovec iov = {.iov_base = &c, .iov_len = 1};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &lfd, sizeof(int));
		if (sendmsg(sv[1], &m, 0) != 1)
			return perror("sendmsg"), 1;
		close(lfd);
		double filtered = opens(path, n);
		printf("{\"native_ns\": %.1f, \"notify_ns\": %.1f}\n", native, filtered);
		fflush(stdout);
		_exit(0);
	}
	close(sv[1]);
	char c;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
	if (recvmsg(sv[0], &m, 0) != 1)
		return fprintf(stderr, "floor: the child sent no listener\n"), 1;
	int lfd;
	memcpy(&lfd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
	(void)ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0);
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	for (;;) {
		memset(&req, 0, sizeof(req));
		if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
			struct pollfd p = {.fd = lfd, .events = POLLIN};
			if (errno == ENOENT && poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) && !(p.revents & POLLIN))
				break;
			continue;
		}
		resp = (struct seccomp_notif_resp){.id = req.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE};
		ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "open") == 0) {
		printf("{\"open_ns\": %.1f}\n", opens(argv[2], atol(argv[3])));
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "floor") == 0)
		return floor_case(argv[2], atol(argv[3]));
	if (argc == 3 && strcmp(argv[1], "read") == 0) {
		static char buf[1 << 20];
		double t0 = now();
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			perror(argv[2]);
			return 1;
		}
		double t1 = now();
		long long total = 0;
		ssize_t k;
		while ((k = read(fd, buf, sizeof(buf))) > 0)
			total += k;
		if (k < 0) {
			perror("read");
			return 1;
		}
		double t2 = now();
		close(fd);
		printf("{\"bytes\": %lld, \"open_s\": %.6f, \"read_s\": %.6f}\n", total, t1 - t0, t2 - t1);
		return 0;
	}
	fprintf(stderr, "usage: rtbench open PATH N | floor PATH N | read PATH\n");
	return 2;
}
"""


def run(args, check=False, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=check, **kw)


def write_image(path, layers, cmd):
    """An OCI layout with one image of uncompressed layers, written as
    streams (the 1 GiB layer never sits in memory); returns oci:PATH:bench."""
    lay = fl.Layout(path)
    descs, diff_ids = [], []
    for entries in layers:
        digest, size = lay.add_stream(lambda f, e=entries: [f.write(c) for c in fl.iter_tar(e)])
        descs.append({"mediaType": fl.LAYER_MEDIA_TYPES["none"], "digest": digest, "size": size})
        diff_ids.append(digest)
    cfg = {"created": fl.EPOCH, "architecture": "amd64" if os.uname().machine == "x86_64" else "arm64",
           "os": "linux", "config": {"Env": ["PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"], "Cmd": cmd},
           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cfg_data = fl.dumps(cfg)
    lay.add(cfg_data)
    manifest = {"schemaVersion": 2, "mediaType": fl.MT_OCI_MANIFEST,
                "config": fl.descriptor(fl.MT_OCI_CONFIG, cfg_data), "layers": descs}
    m_data = fl.dumps(manifest)
    lay.add(m_data)
    lay.write_index(fl.index_of([fl.tagged(fl.descriptor(fl.MT_OCI_MANIFEST, m_data), "bench")]))
    return f"oci:{path}:bench"


def big_entry(path, size_mib):
    block = random.Random(5).randbytes(1 << 20)
    import hashlib
    h = hashlib.sha256()
    for _ in range(size_mib):
        h.update(block)
    return fl.Entry(path, size=size_mib << 20, sha256=h.hexdigest(), chunks=lambda: (block for _ in range(size_mib)))


class Bench:
    def __init__(self, build, tmp):
        self.sconify = os.path.join(build, "cmd", "sconify", "sconify")
        self.runtime = os.path.join(build, "enclave-runtime", "sconify-runtime")
        self.tmp = tmp

    def image(self, name, layers, cmd, dirs=(), authenticated=()):
        """Builds, converts and unpacks: (native rootfs, converted rootfs,
        session file, converted env)."""
        src = write_image(os.path.join(self.tmp, name), layers, cmd)
        out = os.path.join(self.tmp, name + "-conf")
        session = os.path.join(self.tmp, name + ".yml")
        args = [self.sconify, "image", "--from", src, "--to", f"oci:{out}:conf", "--mode", "sim", "--runtime",
                self.runtime, "--session-out", session]
        for d in dirs:
            args += ["--dir", d]
        for d in authenticated:
            args += ["--authenticated", d]
        t = time.monotonic()
        p = run(args)
        if p.returncode != 0:
            sys.exit(f"runtime_bench: sconify image failed: {p.stderr.decode()}")
        conv = time.monotonic() - t
        roots = []
        for layout, tag, b in ((os.path.join(self.tmp, name), "bench", name + "-native"),
                               (out, "conf", name + "-bundle")):
            bundle = os.path.join(self.tmp, b)
            run(["umoci", "unpack", "--rootless", "--image", f"{layout}:{tag}", bundle], check=True)
            roots.append(bundle)
        with open(os.path.join(roots[1], "config.json")) as f:
            env = dict(e.split("=", 1) for e in json.load(f)["process"]["env"])
        print(f"  {name}: converted in {conv:.1f} s", flush=True)
        return os.path.join(roots[0], "rootfs"), os.path.join(roots[1], "rootfs"), session, env

    @staticmethod
    def bwrap(rootfs):
        return ["bwrap", "--bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                "--unshare-pid", "--as-pid-1", "--die-with-parent"]

    def native(self, rootfs, cmd):
        t = time.monotonic()
        p = run(self.bwrap(rootfs) + cmd, env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
        dt = time.monotonic() - t
        if p.returncode != 0:
            sys.exit(f"runtime_bench: native {cmd} failed: {p.stderr.decode()}")
        return dt, p.stdout.decode()

    def converted(self, rootfs, session, env):
        args = self.bwrap(rootfs) + ["--ro-bind", session, "/run/session.yml", "/.sconify/runtime"]
        t = time.monotonic()
        p = run(args, env={**env, "SCONIFY_SESSION_FILE": "/run/session.yml"})
        dt = time.monotonic() - t
        if p.returncode != 0:
            sys.exit(f"runtime_bench: converted run failed: {p.stderr.decode()}")
        return dt, p.stdout.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-rtbench")
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("REPEAT", "15")))
    ap.add_argument("--opens", type=int, default=int(os.environ.get("OPENS", "200000")))
    ap.add_argument("--size-mib", type=int, default=int(os.environ.get("SIZE_MIB", "1024")))
    ap.add_argument("--reads", type=int, default=int(os.environ.get("READS", "3")),
                    help="runs of the read case (each a fresh runtime: the first open decrypts); the median")
    ap.add_argument("--only", choices=("startup", "open", "read"), action="append",
                    help="run only this case (repeatable; or ONLY=read,open)")
    a = ap.parse_args()
    want = set(a.only or os.environ.get("ONLY", "startup,open,read").split(","))
    build = os.path.abspath(a.build)
    tmp = tempfile.mkdtemp(prefix="runtime-bench-")
    try:
        b = Bench(build, tmp)
        driver = os.path.join(tmp, "rtbench")
        with open(driver + ".c", "w") as f:
            f.write(DRIVER)
        run(["gcc", "-O2", "-static", "-o", driver, driver + ".c"], check=True)
        drv = ib.host_file(driver, "bin/rtbench", mode=0o755)
        print(f"sconify-runtime benchmark ({build}), {os.cpu_count()} cores, kernel {os.uname().release}")

        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")

        if "startup" in want:
            startup(a, b, tmp)
        if "open" in want:
            opens(a, b, drv)
        if "read" in want:
            reads(a, b, drv)
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def startup(a, b, tmp):
    """python3 -c 'import json', stdlib authenticated: median wall times."""
    pydir = os.path.join(tmp, "pyc")
    os.makedirs(pydir)
    py, stdlib = ib.python_entries(pycache_dir=pydir)
    cmd = ["python3", "-c", "import json"]
    nat, conv, session, env = b.image("python", [py], cmd, authenticated=(stdlib,))
    b.native(nat, cmd), b.converted(conv, session, env)  # warm the page cache
    tn = statistics.median(b.native(nat, cmd)[0] for _ in range(a.repeat))
    tc = statistics.median(b.converted(conv, session, env)[0] for _ in range(a.repeat))
    print(f"start-up  python3 -c 'import json', {stdlib} authenticated, median of {a.repeat}:")
    print(f"  native {tn * 1e3:.1f} ms   converted {tc * 1e3:.1f} ms   ratio {tc / tn:.2f}x   "
          f"(goal <= {GOAL_STARTUP:.0f}x: {'met' if tc / tn <= GOAL_STARTUP else 'NOT met'})")


def opens(a, b, drv):
    """open+close of an unprotected path: ns per open, best of 3 runs."""
    layer = ib.with_dirs([drv, fl.Entry("data/plain.txt", data=b"plain\n"),
                          fl.Entry("app/secret.txt", data=b"secret\n")])
    cmd = ["/bin/rtbench", "open", "/data/plain.txt", str(a.opens)]
    nat, conv, session, env = b.image("open", [layer], cmd, dirs=("/app",))
    on = min(json.loads(b.native(nat, cmd)[1])["open_ns"] for _ in range(3))
    oc = min(json.loads(b.converted(conv, session, env)[1])["open_ns"] for _ in range(3))
    added = (oc - on) / 1e3
    floor = [json.loads(b.native(nat, ["/bin/rtbench", "floor", "/data/plain.txt", str(a.opens)])[1])
             for _ in range(3)]
    fl_added = min(f["notify_ns"] - f["native_ns"] for f in floor) / 1e3
    print(f"open      open+close of an unprotected path, {a.opens} times, best of 3:")
    print(f"  native {on / 1e3:.2f} us   converted {oc / 1e3:.2f} us   added {added:.2f} us per open   "
          f"(goal <= {GOAL_OPEN_US:.0f} us: {'met' if added <= GOAL_OPEN_US else 'NOT met'})")
    print(f"  floor: a supervisor that answers every openat with CONTINUE at once, looking at nothing "
          f"(same kernel flags), adds {fl_added:.2f} us per open on this machine; the runtime adds "
          f"{added - fl_added:.2f} us more")


def reads(a, b, drv):
    """The first open (verify+decrypt) and the read of a large encrypted
    file, each run a fresh runtime: the median of READS runs."""
    layer = ib.with_dirs([drv, big_entry("secret/big.bin", a.size_mib)])
    cmd = ["/bin/rtbench", "read", "/secret/big.bin"]
    nat, conv, session, env = b.image("read", [layer], cmd, dirs=("/secret",))
    b.native(nat, cmd)  # page cache
    rn = min((json.loads(b.native(nat, cmd)[1]) for _ in range(a.reads)),
             key=lambda r: r["open_s"] + r["read_s"])
    b.converted(conv, session, env)  # page cache of the stored file
    runs = sorted((json.loads(b.converted(conv, session, env)[1]) for _ in range(a.reads)),
                  key=lambda r: r["open_s"] + r["read_s"])
    rc = runs[len(runs) // 2]
    gb = rn["bytes"] / 1e9
    print(f"read      {a.size_mib} MiB, 1 MiB reads (page cache warm), median of {a.reads} runs:")
    print(f"  native    open+read {gb / (rn['open_s'] + rn['read_s']):.2f} GB/s (best of {a.reads})")
    total = rc["open_s"] + rc["read_s"]
    print(f"  converted open (verify+decrypt into a memfd) {rc['open_s']:.2f} s = {gb / rc['open_s']:.2f} GB/s, "
          f"read of the memfd {gb / rc['read_s']:.2f} GB/s, together {gb / total:.2f} GB/s   "
          f"(goal >= {GOAL_READ_GBS:.0f} GB/s: {'met' if gb / total >= GOAL_READ_GBS else 'NOT met'})")
    print("  all runs, together: " + ", ".join(f"{gb / (r['open_s'] + r['read_s']):.2f}" for r in runs) + " GB/s")
    print(f"  ratio converted/native (together) {(gb / total) / (gb / (rn['open_s'] + rn['read_s'])):.2f}")


if __name__ == "__main__":
    main()
