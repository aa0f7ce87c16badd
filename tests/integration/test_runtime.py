# SPDX-License-Identifier: Apache-2.0
"""The enclave runtime (enclave-runtime/, docs/runtime.md) run as PID 1 under
bubblewrap in root file systems assembled here: the file shield serves
injected files through seccomp user notification to busybox, glibc and musl
programs; PID 1 forwards signals, reaps orphans and passes exit codes on."""

import json
import os
import shutil
import signal
import struct
import subprocess
import unittest

import harness

RUNTIME = os.environ.get("SCONIFY_RUNTIME_BIN",
                         os.path.join(harness.BUILD_ROOT, "enclave-runtime", "sconify-runtime"))
OPENFILE_SRC = os.path.join(harness.SOURCE_ROOT, "testdata", "runtime", "openfile.c")
SECRET = "TOP SECRET 42\n"
MODE_LINE = "sconify-runtime: mode sim: NO hardware protection"

_built = {}


def missing_tools():
    for tool in ("bwrap", "busybox", "gcc"):
        if shutil.which(tool) is None:
            return tool
    return None


def helper(kind):
    """openfile.c built once per run: 'glibc' (dynamic) or 'musl' (static)."""
    if kind not in _built:
        out = os.path.join(harness.BUILD_ROOT, "runtime-tests")
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, f"openfile-{kind}")
        cc = ["gcc"] if kind == "glibc" else ["musl-gcc", "-static"]
        harness.run([*cc, "-O2", "-o", path, OPENFILE_SRC, "-pthread"], check=True)
        _built[kind] = path
    return _built[kind]


def copy_with_libs(binary, rootfs, dest):
    """Copies a dynamically linked binary to dest in rootfs, with every
    library ldd names (and the loader) at the same path."""
    os.makedirs(os.path.dirname(rootfs + dest), exist_ok=True)
    shutil.copy(binary, rootfs + dest)
    out = harness.run(["ldd", binary], check=True).stdout_text
    for line in out.splitlines():
        parts = line.split()
        lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if not lib.startswith("/"):
            continue
        os.makedirs(os.path.dirname(rootfs + lib), exist_ok=True)
        shutil.copy(lib, rootfs + lib)


def has_interpreter(path):
    """True when the ELF file has a PT_INTERP program header (is dynamic)."""
    with open(path, "rb") as f:
        elf = f.read()
    assert elf[:4] == b"\x7fELF" and elf[4] == 2, "not a 64-bit ELF"
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    return any(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == 3 for i in range(phnum))


class Runtime(harness.TestCase):
    def setUp(self):
        super().setUp()
        tool = missing_tools()
        if tool:
            self.skipTest(f"{tool} is not installed")
        if os.geteuid() != 0:
            self.skipTest("bwrap runs the root file systems as root here")
        self.root = os.path.join(self.tmp, "rootfs")
        for d in ("bin", "etc", "proc", "dev", "tmp", "secrets", "data"):
            os.makedirs(os.path.join(self.root, d))
        shutil.copy("/bin/busybox", os.path.join(self.root, "bin", "busybox"))
        for applet in ("sh", "cat", "echo", "sleep", "kill", "ls", "env", "true"):
            os.symlink("busybox", os.path.join(self.root, "bin", applet))
        shutil.copy(RUNTIME, os.path.join(self.root, "sconify-runtime"))
        with open(os.path.join(self.root, "secrets", "key"), "w") as f:
            f.write("ciphertext on disk\n")
        with open(os.path.join(self.root, "data", "plain.txt"), "w") as f:
            f.write("plain data\n")

    def session(self, command, files=None, regions=("/secrets",), env=("PATH=/bin",), workdir=None):
        doc = {"sconify_runtime_session": 1, "mode": "sim", "command": list(command), "env": list(env),
               "injected_files": files if files is not None else {"/etc/secret": SECRET},
               "protected_regions": list(regions)}
        if workdir:
            doc["workdir"] = workdir
        path = os.path.join(self.tmp, "session.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def bwrap(self, session_path=None, extra=()):
        args = ["bwrap", "--bind", self.root, "/", "--proc", "/proc", "--dev", "/dev",
                "--unshare-pid", "--as-pid-1", "--die-with-parent", *extra]
        env = {}
        if session_path:
            args += ["--ro-bind", session_path, "/run/session.json"]
            env["SCONIFY_SESSION_FILE"] = "/run/session.json"
        return args + ["/sconify-runtime"], env

    def run_app(self, command, input=None, **kw):
        args, env = self.bwrap(self.session(command, **kw))
        p = subprocess.run(args, env=env, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        p.stdout_text = p.stdout.decode("utf-8", "replace")
        p.stderr_text = p.stderr.decode("utf-8", "replace")
        return p

    def assertModeLine(self, p):
        lines = [l for l in p.stderr_text.splitlines() if l.startswith("sconify-runtime: mode")]
        self.assertEqual(len(lines), 1, p.stderr_text)
        self.assertTrue(lines[0].startswith(MODE_LINE), lines[0])

    # ---- the binary ----

    def test_runtime_is_statically_linked(self):
        self.assertFalse(has_interpreter(RUNTIME), "sconify-runtime has an ELF interpreter")
        p = harness.run(["ldd", RUNTIME])
        self.assertIn("not a dynamic executable", p.stdout_text + p.stderr_text)

    # ---- the shield ----

    def test_busybox_cat_reads_an_injected_file_that_is_not_on_disk(self):
        p = self.run_app(["/bin/cat", "/etc/secret"])
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertEqual(p.stdout_text, SECRET)
        self.assertModeLine(p)
        self.assertFalse(os.path.lexists(os.path.join(self.root, "etc", "secret")))
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                path = os.path.join(dirpath, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, "rb") as f:
                        self.assertNotIn(SECRET.encode(), f.read(), path)

    def test_glibc_dynamic_programs_read_an_injected_file(self):
        copy_with_libs("/bin/cat", self.root, "/usr/bin/gnucat")
        copy_with_libs(helper("glibc"), self.root, "/usr/bin/openfile")
        self.assertTrue(has_interpreter(os.path.join(self.root, "usr", "bin", "gnucat")))
        p = self.run_app(["/usr/bin/gnucat", "/etc/secret"])
        self.assertEqual((p.returncode, p.stdout_text), (0, SECRET), p.stderr_text)
        for mode in (["read", "/etc/secret"], ["openat2", "/etc/secret"], ["openat", "/etc", "secret"],
                     ["thread", "/etc/secret"]):
            p = self.run_app(["/usr/bin/openfile", *mode])
            self.assertEqual((p.returncode, p.stdout_text), (0, SECRET), f"{mode}: {p.stderr_text}")

    def test_musl_static_program_reads_an_injected_file(self):
        if shutil.which("musl-gcc") is None:
            self.skipTest("musl-gcc is not installed")
        shutil.copy(helper("musl"), os.path.join(self.root, "bin", "openfile"))
        for mode in (["read", "/etc/secret"], ["openat2", "/etc/secret"], ["thread", "/etc/secret"]):
            p = self.run_app(["/bin/openfile", *mode])
            self.assertEqual((p.returncode, p.stdout_text), (0, SECRET), f"{mode}: {p.stderr_text}")

    def test_relative_paths_and_symlinks_are_resolved_before_answering(self):
        os.symlink("/etc/secret", os.path.join(self.root, "data", "link-to-secret"))
        os.symlink("../secrets", os.path.join(self.root, "data", "link-to-region"))
        p = self.run_app(["/bin/sh", "-c", "cat secret; cat ../data/link-to-secret; cat ./../etc/../etc/secret;"
                          " cat /data/link-to-region/key"], workdir="/etc")
        self.assertEqual(p.stdout_text, SECRET * 3, p.stderr_text)
        self.assertIn("No such file", p.stderr_text)
        self.assertNotIn("ciphertext", p.stdout_text)

    def test_opening_an_injected_file_for_writing_fails_with_erofs(self):
        copy_with_libs(helper("glibc"), self.root, "/bin/openfile")
        p = self.run_app(["/bin/openfile", "write", "/etc/secret"])
        self.assertEqual((p.returncode, p.stdout_text), (1, "error: EROFS\n"), p.stderr_text)
        p = self.run_app(["/bin/sh", "-c", "echo x > /etc/secret"])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Read-only file system", p.stderr_text)

    def test_unlisted_path_under_a_protected_region_is_refused(self):
        p = self.run_app(["/bin/cat", "/secrets/key"])
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout_text, "")
        self.assertIn("No such file", p.stderr_text)
        # Listing the region is allowed; creating in it is not.
        p = self.run_app(["/bin/sh", "-c", "ls /secrets; echo new > /secrets/new"])
        self.assertEqual(p.stdout_text, "key\n", p.stderr_text)
        self.assertIn("Read-only file system", p.stderr_text)
        self.assertFalse(os.path.exists(os.path.join(self.root, "secrets", "new")))

    def test_plain_file_outside_regions_reads_normally(self):
        p = self.run_app(["/bin/sh", "-c", "cat /data/plain.txt; echo more >> /data/plain.txt"])
        self.assertEqual((p.returncode, p.stdout_text), (0, "plain data\n"), p.stderr_text)
        with open(os.path.join(self.root, "data", "plain.txt")) as f:
            self.assertEqual(f.read(), "plain data\nmore\n")

    def test_child_processes_are_served(self):
        p = self.run_app(["/bin/sh", "-c", "sh -c 'cat /etc/secret' && (cat /etc/secret &) ; sleep 0.2"])
        self.assertEqual((p.returncode, p.stdout_text), (0, SECRET * 2), p.stderr_text)

    def test_foreign_abi_system_calls_kill_the_process(self):
        if os.uname().machine != "x86_64":
            self.skipTest("int 0x80 is x86_64's compat entry")
        copy_with_libs(helper("glibc"), self.root, "/bin/openfile")
        p = self.run_app(["/bin/openfile", "int80", "/etc/secret"])
        self.assertEqual(p.returncode, 128 + signal.SIGSYS, p.stderr_text)
        self.assertEqual(p.stdout_text, "")

    def test_app_gets_exactly_the_session_environment_and_stdin(self):
        p = self.run_app(["/bin/sh", "-c", "env | sort; cat"], env=["PATH=/bin", "GREETING=hello world"],
                         input=b"from stdin\n")
        self.assertEqual(p.returncode, 0, p.stderr_text)
        lines = p.stdout_text.splitlines()
        self.assertIn("GREETING=hello world", lines)
        self.assertIn("from stdin", lines)
        self.assertFalse(any(l.startswith("SCONIFY_SESSION_FILE") for l in lines), lines)

    # ---- PID 1 ----

    def test_exit_status_passes_through(self):
        p = self.run_app(["/bin/sh", "-c", "exit 7"])
        self.assertEqual(p.returncode, 7, p.stderr_text)
        p = self.run_app(["/bin/sh", "-c", "kill -TERM $$"])
        self.assertEqual(p.returncode, 143, p.stderr_text)
        p = self.run_app(["/bin/nonexistent"])
        self.assertEqual(p.returncode, 127, p.stderr_text)
        self.assertIn("cannot run `/bin/nonexistent'", p.stderr_text)

    def test_term_sent_to_the_runtime_reaches_the_app(self):
        args, env = self.bwrap(self.session(
            ["/bin/sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done"]))
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(proc.stdout.readline(), b"ready\n")
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                children = f.read().split()
            self.assertEqual(len(children), 1, children)
            with open(f"/proc/{children[0]}/cmdline", "rb") as f:
                self.assertEqual(f.read(), b"/sconify-runtime\0")
            os.kill(int(children[0]), signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=60), 42)
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()

    def test_orphaned_grandchildren_are_reaped(self):
        # The subshell exits at once; its background child is orphaned onto
        # PID 1 and exits; the app then looks for zombies.
        script = ("(sh -c 'exit 3' &); (sleep 0.1 &); sleep 0.5; "
                  "for s in /proc/[0-9]*/stat; do read line < $s; echo \"$line\"; done")
        p = self.run_app(["/bin/sh", "-c", script])
        self.assertEqual(p.returncode, 0, p.stderr_text)
        states = [line.rsplit(")", 1)[1].split()[0] for line in p.stdout_text.splitlines() if ")" in line]
        self.assertTrue(states, p.stdout_text)
        self.assertNotIn("Z", states, p.stdout_text)

    # ---- refusing to start ----

    def test_missing_or_invalid_session_file_is_a_clear_error(self):
        args, env = self.bwrap()
        env["SCONIFY_SESSION_FILE"] = "/run/nope.json"
        p = harness.run(args, env=env)
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn("sconify-runtime: error: session file `/run/nope.json': No such file", p.stderr_text)
        bad = os.path.join(self.tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"sconify_runtime_session": 1, "mode": "sim", "command": ["/bin/true"], "comand": 1}')
        args, env = self.bwrap(bad)
        p = harness.run(args, env=env)
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn("unknown key `comand'", p.stderr_text)
        args, env = self.bwrap()
        p = harness.run(args, env=env)
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn("no service configuration", p.stderr_text)
        self.assertIn("SCONIFY_SESSION_FILE", p.stderr_text)

    def test_missing_proc_is_a_clear_error(self):
        args, env = self.bwrap(self.session(["/bin/sh", "-c", "echo started > /tmp/marker"]))
        i = args.index("--proc")
        del args[i:i + 2]
        p = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 125, p.stderr)
        self.assertIn(b"the file shield needs /proc mounted", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "tmp", "marker")))

    def test_kernel_without_user_notification_never_starts_the_app(self):
        # A filter in front of the runtime answers every seccomp(2) with
        # EOPNOTSUPP, as a kernel without SECCOMP_RET_USER_NOTIF does.
        if os.uname().machine != "x86_64":
            self.skipTest("the filter below is for x86_64")
        ld, jeq, ret = 0x20, 0x15, 0x06
        prog = [(ld, 0, 0, 4), (jeq, 0, 3, 0xC000003E), (ld, 0, 0, 0), (jeq, 0, 1, 317),
                (ret, 0, 0, 0x00050000 | 95), (ret, 0, 0, 0x7FFF0000)]
        bpf = os.path.join(self.tmp, "no-notify.bpf")
        with open(bpf, "wb") as f:
            f.write(b"".join(struct.pack("<HBBI", *i) for i in prog))
        fd = os.open(bpf, os.O_RDONLY)
        try:
            args, env = self.bwrap(self.session(["/bin/sh", "-c", "echo started > /tmp/marker"]),
                                   extra=["--seccomp", str(fd)])
            p = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                               pass_fds=[fd])
        finally:
            os.close(fd)
        stderr = p.stderr.decode()
        self.assertEqual(p.returncode, 125, stderr)
        self.assertIn("seccomp user notification", stderr)
        self.assertIn("Linux 5.9 or later", stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "tmp", "marker")))


if __name__ == "__main__":
    harness.main()
