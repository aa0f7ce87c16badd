# SPDX-License-Identifier: Apache-2.0
"""The enclave runtime (enclave-runtime/, docs/runtime.md) run as PID 1 under
bubblewrap. Runtime: root file systems assembled here with a session policy
written here (its measurement computed independently, in Python): the shield
serves injected files through seccomp user notification to busybox, glibc
and musl programs; PID 1 forwards signals, reaps orphans and passes exit codes
on. ConvertedImages: images built with imagebuild.py, converted by `sconify
image`, unpacked with umoci and run as they are: encrypted and authenticated
files served, tampering detected, the measurement enforced."""

import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import unittest

import harness
import imagebuild as ib

RUNTIME = os.environ.get("SCONIFY_RUNTIME_BIN",
                         os.path.join(harness.BUILD_ROOT, "enclave-runtime", "sconify-runtime"))
OPENFILE_SRC = os.path.join(harness.SOURCE_ROOT, "testdata", "runtime", "openfile.c")
SECRET = "TOP SECRET 42\n"
MODE_LINE = "sconify-runtime: mode sim: NO hardware protection"
CONFIG_ID = "test/app"


def _s(b):
    return struct.pack(">I", len(b)) + b


def in_root(root, path):
    """path (absolute, in root) with every symlink resolved inside root."""
    parts, out, links = [p for p in path.split("/") if p], [], 0
    while parts:
        p = parts.pop(0)
        if p in ("", "."):
            continue
        if p == "..":
            out = out[:-1]
            continue
        cand = "/" + "/".join(out + [p])
        if os.path.islink(root + cand):
            links += 1
            assert links < 40, path
            t = os.readlink(root + cand)
            if t.startswith("/"):
                out = []
            parts = [x for x in t.split("/") if x] + parts
            continue
        out.append(p)
    return "/" + "/".join(out)


def measure(root, runtime, argv, env, cwd="/", pin=None, regions=(), exe_plain=None):
    """docs/measurement.md, computed here from the root file system."""
    envd = dict(e.split("=", 1) for e in env)
    if "/" in argv[0]:
        cands = [argv[0] if argv[0].startswith("/") else cwd.rstrip("/") + "/" + argv[0]]
    else:
        cands = [d.rstrip("/") + "/" + argv[0] for d in envd.get(
            "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":")
            if d.startswith("/")]
    for c in cands:
        real = in_root(root, c)
        if os.path.isfile(root + real) and os.stat(root + real).st_mode & 0o111:
            break
    else:
        raise AssertionError(f"{argv[0]} not found")
    if exe_plain is None:
        with open(root + real, "rb") as f:
            exe_plain = f.read()
    with open(runtime, "rb") as f:
        rt = hashlib.sha256(f.read()).digest()
    enc = (_s(b"sconify-measurement-v1") + rt + _s(real.encode()) + hashlib.sha256(exe_plain).digest()
           + (pin or b"\0" * 32))
    enc += struct.pack(">I", len(argv)) + b"".join(_s(a.encode()) for a in argv)
    envs = sorted(e.encode() for e in env)
    enc += struct.pack(">I", len(envs)) + b"".join(map(_s, envs))
    enc += _s(cwd.encode())
    regs = sorted((p.encode(), k) for p, k in regions)
    enc += struct.pack(">I", len(regs)) + b"".join(bytes([k]) + _s(p) for p, k in regs)
    return hashlib.sha256(enc).hexdigest()


def policy_doc(command, env, files=None, workdir=None, measurements=(), mode="sim", name="test",
               service="app"):
    """A session policy (docs/policy.md), written as JSON (a YAML subset)."""
    svc = {"name": service, "command": list(command),
           "environment": dict(e.split("=", 1) for e in env), "measurements": list(measurements)}
    if workdir:
        svc["pwd"] = workdir
    doc = {"name": name, "version": "0.3", "services": [svc], "security": {"attestation": {"mode": mode}}}
    if files:
        svc["image_name"] = "img"
        doc["images"] = [{"name": "img", "injection_files": [{"path": k, "content": v}
                                                             for k, v in files.items()]}]
    return json.dumps(doc, indent=1)

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

    def session(self, command, files=None, env=("PATH=/bin",), workdir=None, measurements=None, **kw):
        if measurements is None:
            measurements = [measure(self.root, RUNTIME, command, env, workdir or "/")]
        doc = policy_doc(command, env, files if files is not None else {"/etc/secret": SECRET}, workdir,
                         measurements, **kw)
        path = os.path.join(self.tmp, "session.yml")
        with open(path, "w") as f:
            f.write(doc)
        return path

    def bwrap(self, session_path=None, extra=()):
        args = ["bwrap", "--bind", self.root, "/", "--proc", "/proc", "--dev", "/dev",
                "--unshare-pid", "--as-pid-1", "--die-with-parent", *extra]
        env = {"SCONE_MODE": "sim", "SCONE_CONFIG_ID": CONFIG_ID, "SCONE_CAS_ADDR": ""}
        if session_path:
            args += ["--ro-bind", session_path, "/run/session.yml"]
            env["SCONIFY_SESSION_FILE"] = "/run/session.yml"
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
        p = self.run_app(["/bin/sh", "-c", "cat secret; cat ../data/link-to-secret; cat ./../etc/../etc/secret"],
                         workdir="/etc")
        self.assertEqual(p.stdout_text, SECRET * 3, p.stderr_text)

    def test_opening_an_injected_file_for_writing_fails_with_erofs(self):
        copy_with_libs(helper("glibc"), self.root, "/bin/openfile")
        p = self.run_app(["/bin/openfile", "write", "/etc/secret"])
        self.assertEqual((p.returncode, p.stdout_text), (1, "error: EROFS\n"), p.stderr_text)
        p = self.run_app(["/bin/sh", "-c", "echo x > /etc/secret"])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Read-only file system", p.stderr_text)

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
        p = self.run_app(["/bin/nonexistent"], measurements=["0" * 64])
        self.assertEqual(p.returncode, 127, p.stderr_text)
        self.assertIn("`/bin/nonexistent' is not an executable regular file", p.stderr_text)

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
        env["SCONIFY_SESSION_FILE"] = "/run/nope.yml"
        p = harness.run(args, env=env)
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn("sconify-runtime: error: session file `/run/nope.yml': No such file", p.stderr_text)
        bad = os.path.join(self.tmp, "bad.yml")
        with open(bad, "w") as f:
            f.write(policy_doc(["/bin/true"], [], measurements=["0" * 64]).replace('"command"', '"comand"'))
        args, env = self.bwrap(bad)
        p = harness.run(args, env=env)
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn("services[0].command: missing", p.stderr_text)
        self.assertIn("session file `/run/session.yml':", p.stderr_text)

    def test_without_session_file_or_cas_nothing_runs(self):
        args, env = self.bwrap()
        p = harness.run(args, env=env)
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn("neither SCONE_CAS_ADDR", p.stderr_text)
        self.assertIn("SCONIFY_SESSION_FILE", p.stderr_text)

    def test_session_file_is_refused_outside_sim_mode(self):
        marker = ["/bin/sh", "-c", "echo started > /tmp/marker"]
        args, env = self.bwrap(self.session(marker))
        env["SCONE_MODE"] = "hw"
        p = harness.run(args, env=env)
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn("accepted in sim mode only", p.stderr_text)
        args, env = self.bwrap(self.session(marker, mode="hardware"))
        p = harness.run(args, env=env)
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn("allows sim mode", p.stderr_text)
        args, env = self.bwrap(self.session(marker))
        env["SCONE_CONFIG_ID"] = "other/app"
        p = harness.run(args, env=env)
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn("is not the session `other'", p.stderr_text)
        self.assertFalse(os.path.exists(os.path.join(self.root, "tmp", "marker")))

    def test_a_measurement_the_policy_does_not_list_is_refused(self):
        cmd = ["/bin/sh", "-c", "echo started > /tmp/marker"]
        good = measure(self.root, RUNTIME, cmd, ["PATH=/bin"])
        args, env = self.bwrap(self.session(cmd, measurements=["1" * 64]))
        p = harness.run(args, env=env)
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn(f"measurement mismatch: what would run measures {good}", p.stderr_text)
        self.assertIn("1" * 64, p.stderr_text)
        self.assertFalse(os.path.exists(os.path.join(self.root, "tmp", "marker")))
        self.assertModeLine(p)

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



class ConvertedImages(harness.TestCase):
    """Images converted by `sconify image`, unpacked with umoci, run as they are."""

    def setUp(self):
        super().setUp()
        tool = missing_tools() or next((t for t in ("umoci",) if shutil.which(t) is None), None)
        if tool:
            self.skipTest(f"{tool} is not installed")
        if os.geteuid() != 0:
            self.skipTest("bwrap runs the root file systems as root here")

    def convert(self, layers, cmd, dirs=("/app",), authenticated=(), name="img", **kw):
        """Builds, converts and unpacks an image: (rootfs, session file, env).
        kw goes to imagebuild.write_image (env, compression); the converted
        OCI layout is self.tmp/NAME-conf."""
        src = ib.write_image(os.path.join(self.tmp, name), layers, cmd=cmd, **kw)
        out = os.path.join(self.tmp, name + "-conf")
        session = os.path.join(self.tmp, name + ".yml")
        args = ["image", "--from", src, "--to", f"oci:{out}:conf", "--mode", "sim", "--runtime", RUNTIME,
                "--session-out", session]
        for d in dirs:
            args += ["--dir", d]
        for d in authenticated:
            args += ["--authenticated", d]
        p = harness.sconify(*args)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        bundle = os.path.join(self.tmp, name + "-bundle")
        harness.run(["umoci", "unpack", "--rootless", "--image", f"{out}:conf", bundle], check=True)
        with open(os.path.join(bundle, "config.json")) as f:
            cfg = json.load(f)
        env = dict(e.split("=", 1) for e in cfg["process"]["env"])
        self.assertEqual(cfg["process"]["args"], ["/.sconify/runtime"])
        return os.path.join(bundle, "rootfs"), session, env

    def run_image(self, rootfs, session, env, extra=()):
        args = ["bwrap", "--bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                "--unshare-pid", "--as-pid-1", "--die-with-parent", "--ro-bind", session, "/run/session.yml",
                *extra, "/.sconify/runtime"]
        p = subprocess.run(args, env={**env, "SCONIFY_SESSION_FILE": "/run/session.yml"},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        p.stdout_text = p.stdout.decode("utf-8", "replace")
        p.stderr_text = p.stderr.decode("utf-8", "replace")
        return p

    def busybox_image(self, cmd, extra=(), **kw):
        base = [ib.host_file("/bin/busybox", "bin/busybox"), ib.Entry("bin/sh", "symlink", target="busybox"),
                ib.Entry("bin/cat", "symlink", target="busybox")]
        app = [ib.Entry("app/secret.txt", data=SECRET.encode()),
               ib.Entry("app/other.txt", data=b"OTHER SECRET 43\n"), *extra]
        return self.convert([ib.with_dirs(base), ib.with_dirs(app)], cmd, **kw)

    def assertNoPlaintextOnDisk(self, rootfs, text):
        for dirpath, _, names in os.walk(rootfs):
            for n in names:
                path = os.path.join(dirpath, n)
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, "rb") as f:
                        self.assertNotIn(text.encode(), f.read(), path)

    def flip(self, path, offset=3):
        with open(path, "r+b") as f:
            f.seek(offset)
            b = f.read(1)
            f.seek(offset)
            f.write(bytes([b[0] ^ 0x55]))

    # ---- the policy's user ----

    # Root in the sandbox with the capabilities a container runtime gives
    # PID 1 (bwrap run by root keeps them; said explicitly here).
    AS_ROOT = ("--uid", "0", "--gid", "0", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID")

    def user_image(self, user, name):
        extra = [ib.Entry("bin/id", "symlink", target="busybox"),
                 ib.Entry("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/app:/bin/sh\n"),
                 ib.Entry("etc/group", data=b"root:x:0:\napp:x:2345:\nextra:x:3456:root,app\n")]
        rootfs, session, env = self.busybox_image(["/bin/sh", "-c", "id -u; id -g; id -G"], extra=extra,
                                                  user=user, name=name)
        with open(session) as f:
            self.assertIn("user: ", f.read())
        return rootfs, session, env

    def test_a_numeric_user_runs_the_application_as_that_uid_and_gid(self):
        rootfs, session, env = self.user_image("1000:1000", "num")
        p = self.run_image(rootfs, session, env, self.AS_ROOT)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertEqual(p.stdout_text.split("\n")[:3], ["1000", "1000", "1000"], p.stderr_text)

    def test_a_user_name_is_resolved_from_the_images_passwd_and_group(self):
        rootfs, session, env = self.user_image("app", "name")
        p = self.run_image(rootfs, session, env, self.AS_ROOT)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        uid, gid, groups = p.stdout_text.split("\n")[:3]
        self.assertEqual((uid, gid), ("1234", "2345"), p.stderr_text)
        self.assertEqual(sorted(groups.split()), ["2345", "3456"])  # primary + supplementary from /etc/group

    def test_an_unknown_user_name_stops_before_the_application_starts(self):
        rootfs, session, env = self.user_image("ghost", "ghost")
        p = self.run_image(rootfs, session, env, self.AS_ROOT)
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn("`ghost' not found in /etc/passwd", p.stderr_text)
        self.assertEqual(p.stdout_text, "")

    def test_without_the_capability_to_switch_the_user_nothing_runs(self):
        rootfs, session, env = self.user_image("1000:1000", "nocap")
        p = self.run_image(rootfs, session, env, ("--uid", "0", "--gid", "0", "--cap-drop", "ALL"))
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertIn("cannot switch to user `1000:1000'", p.stderr_text)
        self.assertEqual(p.stdout_text, "")

    # ---- served ----

    def test_static_busybox_cats_a_file_of_an_encrypted_dir(self):
        rootfs, session, env = self.busybox_image(["/bin/cat", "/app/secret.txt"])
        self.assertNoPlaintextOnDisk(rootfs, SECRET)
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text), (0, SECRET), p.stderr_text)
        self.assertEqual(sum(l.startswith(MODE_LINE) for l in p.stderr_text.splitlines()), 1, p.stderr_text)

    def test_glibc_dynamic_program_cats_a_file_of_an_encrypted_dir(self):
        libs = [ib.host_file(l, l.lstrip("/")) for l in ib.ldd_libs("/bin/cat")]
        base = ib.with_dirs([ib.host_file("/bin/cat", "usr/bin/gnucat"), *libs])
        app = ib.with_dirs([ib.Entry("app/secret.txt", data=SECRET.encode())])
        rootfs, session, env = self.convert([base, app], ["/usr/bin/gnucat", "/app/secret.txt"])
        self.assertTrue(has_interpreter(os.path.join(rootfs, "usr", "bin", "gnucat")))
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text), (0, SECRET), p.stderr_text)

    def test_musl_static_program_reads_a_file_of_an_encrypted_dir(self):
        if shutil.which("musl-gcc") is None:
            self.skipTest("musl-gcc is not installed")
        base = ib.with_dirs([ib.host_file(helper("musl"), "bin/openfile", mode=0o755)])
        app = ib.with_dirs([ib.Entry("app/secret.txt", data=SECRET.encode())])
        rootfs, session, env = self.convert([base, app], ["/bin/openfile", "openat2", "/app/secret.txt"])
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text), (0, SECRET), p.stderr_text)

    def test_encrypted_executable_runs_from_its_verified_plaintext(self):
        # The program lies in the encrypted dir: a static busybox, and a
        # script (its interpreter, loaded by the kernel, lies outside).
        base = ib.with_dirs([ib.host_file("/bin/busybox", "bin/busybox")])
        app = ib.with_dirs([ib.host_file("/bin/busybox", "app/busybox"),
                            ib.Entry("app/run.sh", data=b"#!/bin/busybox sh\ncat /app/secret.txt\n",
                                     mode=0o755),
                            ib.Entry("app/secret.txt", data=SECRET.encode())])
        rootfs, session, env = self.convert([base, app], ["/app/busybox", "cat", "/app/secret.txt"])
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text), (0, SECRET), p.stderr_text)
        rootfs, session, env = self.convert([base, app], ["/app/run.sh"], name="script")
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text), (0, SECRET), p.stderr_text)

    def exec_image(self, script):
        """busybox sh outside the regions runs script; /app (encrypted) holds a
        busybox and a #! script, /opt (authenticated) a busybox and a link bb to it."""
        base = [ib.host_file("/bin/busybox", "bin/busybox"), ib.Entry("bin/sh", "symlink", target="busybox")]
        app = [ib.host_file("/bin/busybox", "app/bin/busybox"),
               ib.Entry("app/bin/show.sh", data=b"#!/bin/busybox sh\necho \"script: $(cat /app/secret.txt)\"\n",
                        mode=0o755),
               ib.Entry("app/secret.txt", data=SECRET.encode()),
               ib.host_file("/bin/busybox", "opt/busybox"),
               ib.Entry("opt/bb", "symlink", target="busybox")]
        return self.convert([ib.with_dirs(base), ib.with_dirs(app)], ["/bin/sh", "-c", script],
                            authenticated=("/opt",), name="exec")

    def test_the_application_execs_protected_executables_from_their_plaintext(self):
        # An ELF file and a #! script in the encrypted dir, and an ELF file in
        # the authenticated one (/opt/busybox: redirected to the shorter /dev/fd/N), each run by the shell (fork + execve): the
        # kernel never loads the stored file.
        rootfs, session, env = self.exec_image(
            "/app/bin/busybox cat /app/secret.txt; /app/bin/show.sh; /opt/busybox echo authenticated; "
            "/opt/busybox readlink /proc/self/exe; "
            "cd /app/bin && /app/bin/../bin/busybox echo dotdot && ./busybox echo relative")
        p = self.run_image(rootfs, session, env)
        # /opt/busybox on disk would run as well: /proc/self/exe shows it ran
        # from the memfd; ./busybox (9 bytes) just fits /dev/fd/N.
        self.assertEqual((p.returncode, p.stdout_text),
                         (0, SECRET + "script: " + SECRET + "authenticated\n/memfd:sconify:busybox (deleted)\n"
                          "dotdot\nrelative\n"), p.stderr_text)
        self.assertNoPlaintextOnDisk(rootfs, SECRET.strip())

    def test_a_tampered_or_planted_executable_is_never_run(self):
        rootfs, session, env = self.exec_image(
            "/app/bin/busybox echo ran-app; echo app=$?; /opt/busybox echo ran-opt; echo opt=$?; "
            "/app/planted; echo planted=$?")
        self.flip(os.path.join(rootfs, "app", "bin", "busybox"), offset=100)
        self.flip(os.path.join(rootfs, "opt", "busybox"), offset=100)
        with open(os.path.join(rootfs, "app", "planted"), "w") as f:
            f.write("#!/bin/busybox sh\necho ran-planted\n")
        os.chmod(os.path.join(rootfs, "app", "planted"), 0o755)
        p = self.run_image(rootfs, session, env)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertNotIn("ran-", p.stdout_text)
        self.assertIn("app=126", p.stdout_text)  # EIO: the shell says 126 (cannot execute)
        self.assertIn("opt=126", p.stdout_text)
        self.assertIn("planted=127", p.stdout_text)  # not listed: does not exist
        for path in ("/app/bin/busybox", "/opt/busybox"):
            logs = [l for l in p.stderr_text.splitlines() if f"exec of `{path}' refused" in l]
            self.assertEqual(len(logs), 1, p.stderr_text)

    def test_an_exec_path_too_short_to_redirect_is_refused_clearly(self):
        # ./bb (a symlink to busybox) is shorter than /dev/fd/N: it cannot be rewritten in place.
        rootfs, session, env = self.exec_image("cd /opt && ./bb echo ran; echo rc=$?")
        p = self.run_image(rootfs, session, env)
        self.assertNotIn("ran", p.stdout_text.replace("rc=", ""))
        self.assertIn("rc=126", p.stdout_text)
        self.assertIn("exec of `./bb' (`/opt/busybox') refused: the path passed is shorter", p.stderr_text)

    def test_names_the_application_changes_are_walked_again(self):
        # The supervisor keeps what it learnt about names (not symlinks)
        # while inotify says nothing changed. A directory walked once, then
        # replaced by a symlink into the encrypted dir (created, or renamed
        # into place): the next open follows the link and gets plaintext.
        bb = "/bin/busybox"
        script = (f"{bb} mkdir /tmp/d && echo plain > /tmp/d/secret.txt && cat /tmp/d/secret.txt && "
                  f"{bb} rm -r /tmp/d && {bb} ln -s /app /tmp/d && cat /tmp/d/secret.txt && "
                  f"{bb} ln -s /app /tmp/l && {bb} mkdir /tmp/e && echo plain2 > /tmp/e/other.txt && "
                  f"cat /tmp/e/other.txt && {bb} rm -r /tmp/e && {bb} mv /tmp/l /tmp/e && cat /tmp/e/other.txt")
        rootfs, session, env = self.busybox_image(["/bin/sh", "-c", script], name="links")
        p = self.run_image(rootfs, session, {**env, "SCONIFY_LINK_CACHE_AFTER": "0"})
        self.assertEqual((p.returncode, p.stdout_text), (0, "plain\n" + SECRET + "plain2\nOTHER SECRET 43\n"),
                         p.stderr_text)

    def test_a_file_planted_in_an_encrypted_dir_does_not_exist(self):
        rootfs, session, env = self.busybox_image(
            ["/bin/sh", "-c", "cat /app/planted; ls /app; echo x > /app/new"])
        with open(os.path.join(rootfs, "app", "planted"), "w") as f:
            f.write("planted by the host\n")
        p = self.run_image(rootfs, session, env)
        self.assertNotIn("planted by the host", p.stdout_text)
        self.assertIn("can't open '/app/planted': No such file", p.stderr_text)
        self.assertIn("secret.txt", p.stdout_text)
        self.assertIn("Read-only file system", p.stderr_text)
        self.assertFalse(os.path.exists(os.path.join(rootfs, "app", "new")))

    # ---- tampering ----

    def test_a_flipped_byte_gives_eio_and_a_log_line(self):
        rootfs, session, env = self.busybox_image(["/bin/sh", "-c", "cat /app/secret.txt; cat /app/other.txt"])
        self.flip(os.path.join(rootfs, "app", "secret.txt"))
        p = self.run_image(rootfs, session, env)
        self.assertNotIn(SECRET, p.stdout_text)
        self.assertIn("OTHER SECRET 43", p.stdout_text)
        self.assertIn("Input/output error", p.stderr_text)
        logs = [l for l in p.stderr_text.splitlines() if "open of `/app/secret.txt' refused" in l]
        self.assertEqual(len(logs), 1, p.stderr_text)
        with open(session) as f:
            key = [l.split(":", 1)[1].strip().strip('"') for l in f if "fspf_key" in l][0]
        self.assertNotIn(key, p.stderr_text)

    def test_two_protected_files_swapped_both_fail(self):
        rootfs, session, env = self.busybox_image(["/bin/sh", "-c", "cat /app/secret.txt; cat /app/other.txt"])
        a, b = os.path.join(rootfs, "app", "secret.txt"), os.path.join(rootfs, "app", "other.txt")
        os.rename(a, a + ".tmp")
        os.rename(b, a)
        os.rename(a + ".tmp", b)
        p = self.run_image(rootfs, session, env)
        self.assertEqual(p.stdout_text, "", p.stderr_text)
        self.assertEqual(p.stderr_text.count("Input/output error"), 2, p.stderr_text)

    def test_symlinks_in_a_region_are_followed_only_as_the_image_has_them(self):
        # /app/current -> v1 (relative), /app/conf -> /etc/app (leaves the
        # region), /data/notes -> /app/v1 (into it from outside)
        extra = [ib.Entry("app/v1/secret.txt", data=b"LINKED SECRET 47\n"),
                 ib.Entry("app/current", "symlink", target="v1"),
                 ib.Entry("app/conf", "symlink", target="/etc/app"),
                 ib.Entry("etc/app/settings", data=b"public settings\n"),
                 ib.Entry("data/notes", "symlink", target="/app/v1")]
        cmd = ["/bin/sh", "-c", "for f in /app/current/secret.txt /app/conf/settings /app/extra/secret.txt "
                                "/data/notes/secret.txt /app/other.txt; do cat $f; done"]
        rootfs, session, env = self.busybox_image(cmd, extra=extra)
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text),
                         (0, "LINKED SECRET 47\npublic settings\nLINKED SECRET 47\nOTHER SECRET 43\n"),
                         p.stderr_text)
        self.assertIn("can't open '/app/extra/secret.txt': No such file", p.stderr_text)

        # The host points the protected names at its own files: a link
        # retargeted, a directory replaced by a link, a link planted.
        planted = os.path.join(rootfs, "tmp-planted")
        os.makedirs(planted)
        for n in ("secret.txt", "settings"):
            with open(os.path.join(planted, n), "w") as f:
                f.write("PLANTED BY THE HOST\n")
        app = os.path.join(rootfs, "app")
        os.unlink(os.path.join(app, "conf"))
        os.symlink("/tmp-planted", os.path.join(app, "conf"))
        os.rename(os.path.join(app, "v1"), os.path.join(app, "v1-moved"))
        os.symlink("/tmp-planted", os.path.join(app, "v1"))
        os.symlink("/tmp-planted", os.path.join(app, "extra"))
        p = self.run_image(rootfs, session, env)
        self.assertNotIn("PLANTED", p.stdout_text)
        self.assertEqual(p.stdout_text, "OTHER SECRET 43\n", p.stderr_text)
        self.assertEqual(p.stderr_text.count("Input/output error"), 4, p.stderr_text)
        for name, why, n in (("/app/current/secret.txt", "`/app/v1' is a symlink the image's metadata does not list", 1),
                             ("/data/notes/secret.txt", "`/app/v1' is a symlink the image's metadata does not list", 1),
                             ("/app/conf/settings", "`/app/conf' is not the symlink the image's metadata lists", 1),
                             ("/app/extra/secret.txt", "`/app/extra' is a symlink the image's metadata does not list", 1)):
            line = f"open of `{name}' refused: {why}"
            self.assertEqual(p.stderr_text.count(line), n, p.stderr_text)

    def test_a_working_directory_through_a_tampered_link_is_refused(self):
        # The policy's working directory and a `cd' by the application walk
        # the same way as an open: through a retargeted link they fail.
        extra = [ib.Entry("app/v1/secret.txt", data=b"LINKED SECRET 47\n"),
                 ib.Entry("app/current", "symlink", target="v1")]
        rootfs, session, env = self.busybox_image(
            ["/bin/sh", "-c", "cat secret.txt; cd /app/current && cat secret.txt; echo rc=$?"],
            extra=extra, workdir="/app/current", name="wd")
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text), (0, "LINKED SECRET 47\nLINKED SECRET 47\nrc=0\n"),
                         p.stderr_text)
        planted = os.path.join(rootfs, "tmp-planted")
        os.makedirs(planted)
        with open(os.path.join(planted, "secret.txt"), "w") as f:
            f.write("PLANTED BY THE HOST\n")
        os.unlink(os.path.join(rootfs, "app", "current"))
        os.symlink("/tmp-planted", os.path.join(rootfs, "app", "current"))
        p = self.run_image(rootfs, session, env)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.stdout_text, "")
        self.assertIn("chdir of `/app/current' refused: `/app/current' is not the symlink the image's "
                      "metadata lists", p.stderr_text)
        self.assertIn("working directory `/app/current': Input/output error", p.stderr_text)

        # A `cd' of the application: the policy's directory is / this time.
        rootfs, session, env = self.busybox_image(
            ["/bin/sh", "-c", "cd /app/current; cat secret.txt"], extra=extra, name="cd")
        os.makedirs(os.path.join(rootfs, "tmp-planted"))
        with open(os.path.join(rootfs, "tmp-planted", "secret.txt"), "w") as f:
            f.write("PLANTED BY THE HOST\n")
        os.unlink(os.path.join(rootfs, "app", "current"))
        os.symlink("/tmp-planted", os.path.join(rootfs, "app", "current"))
        p = self.run_image(rootfs, session, env)
        self.assertNotIn("PLANTED", p.stdout_text)
        self.assertIn("chdir of `/app/current' refused", p.stderr_text)

    def test_a_protected_working_directory_renamed_by_the_host_is_refused(self):
        # The application works in /app and opens relative paths; while it
        # runs, the host renames /app and plants a file in it. The name of
        # the working directory is now outside the regions, its inode is not.
        script = ("cat secret.txt; echo ready > /run-flag/ready; "
                  "while [ ! -e /run-flag/go ]; do sleep 0.05; done; cat secret.txt; cat planted.txt; echo done")
        rootfs, session, env = self.busybox_image(["/bin/sh", "-c", script], workdir="/app", name="moved",
                                                  extra=[ib.Entry("run-flag/", "dir")])
        flag = os.path.join(rootfs, "run-flag")
        args = ["bwrap", "--bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                "--unshare-pid", "--as-pid-1", "--die-with-parent", "--ro-bind", session, "/run/session.yml",
                "/.sconify/runtime"]
        proc = subprocess.Popen(args, env={**env, "SCONIFY_SESSION_FILE": "/run/session.yml"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(flag, "ready")):
                self.assertIsNone(proc.poll(), "the application ended early")
                self.assertLess(time.monotonic(), deadline, "the application never got ready")
                time.sleep(0.05)
            os.rename(os.path.join(rootfs, "app"), os.path.join(rootfs, "moved"))
            with open(os.path.join(rootfs, "moved", "planted.txt"), "w") as f:
                f.write("PLANTED BY THE HOST\n")
            with open(os.path.join(flag, "go"), "w"):
                pass
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out, err = out.decode(), err.decode()
        self.assertEqual(out, SECRET + "done\n", err)
        self.assertNotIn("PLANTED", out)
        for name in ("secret.txt", "planted.txt"):
            self.assertIn(f"open of `{name}' refused: it starts from `/moved', a protected directory moved "
                          "out of its region", err)

    def test_a_link_above_a_region_is_refused_and_a_region_named_through_a_link_is_too(self):
        base = ib.with_dirs([ib.host_file("/bin/busybox", "bin/busybox"),
                             ib.Entry("bin/cat", "symlink", target="busybox"),
                             ib.Entry("srv/data/app/secret.txt", data=SECRET.encode()),
                             ib.Entry("data", "symlink", target="srv/data")])
        rootfs, session, env = self.convert([base], ["/bin/cat", "/srv/data/app/secret.txt"],
                                            dirs=("/srv/data/app",), name="above")
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text), (0, SECRET), p.stderr_text)
        # the host moves the region by replacing a directory above it
        os.rename(os.path.join(rootfs, "srv"), os.path.join(rootfs, "srv-moved"))
        os.makedirs(os.path.join(rootfs, "tmp-planted", "data", "app"))
        with open(os.path.join(rootfs, "tmp-planted", "data", "app", "secret.txt"), "w") as f:
            f.write("PLANTED BY THE HOST\n")
        os.symlink("/tmp-planted", os.path.join(rootfs, "srv"))
        p = self.run_image(rootfs, session, env)
        self.assertNotIn("PLANTED", p.stdout_text)
        self.assertIn("`/srv' is a symlink the image's metadata does not list", p.stderr_text)

        # a link in a region whose target the metadata cannot hold (readlink
        # returns at most 4095 bytes): refused, nothing written
        bad = ib.with_dirs([*base, ib.Entry("srv/data/app/long", "symlink", target="x" * 4096)])
        src = ib.write_image(os.path.join(self.tmp, "emptylink"), [bad], cmd=["/bin/cat", "/data/app/secret.txt"])
        out = os.path.join(self.tmp, "emptylink-conf")
        p = harness.sconify("image", "--from", src, "--to", f"oci:{out}:conf", "--mode", "sim", "--runtime",
                            RUNTIME, "--dir", "/srv/data/app")
        self.assertFailsWith(p, ["symlink `/srv/data/app/long': a target of 4096 bytes cannot be protected"])
        self.assertFalse(os.path.exists(out))

        # --dir through a link would protect nothing: refused, nothing written
        src = ib.write_image(os.path.join(self.tmp, "thru"), [base], cmd=["/bin/cat", "/data/app/secret.txt"])
        out = os.path.join(self.tmp, "thru-conf")
        p = harness.sconify("image", "--from", src, "--to", f"oci:{out}:conf", "--mode", "sim", "--runtime",
                            RUNTIME, "--dir", "/data/app")
        self.assertFailsWith(p, ["--dir `/data/app': `/data' is a symlink in the image (to `srv/data')"])
        self.assertFalse(os.path.exists(out))

    def test_everything_encrypted_still_reaches_proc_and_dev(self):
        # --dir /: every file of the image is protected, every link listed;
        # the kernel's file systems are not the image's and stay reachable.
        rootfs, session, env = self.busybox_image(
            ["/bin/sh", "-c", "cat /app/secret.txt; echo x > /dev/null && test -r /proc/self/status && "
                              "echo kernel-fs-ok"], dirs=("/",), name="all")
        self.assertNoPlaintextOnDisk(rootfs, SECRET.strip())
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text), (0, SECRET + "kernel-fs-ok\n"), p.stderr_text)

    def test_a_flipped_byte_in_an_authenticated_dir_gives_eio(self):
        rootfs, session, env = self.busybox_image(["/bin/cat", "/data/notes.txt"], dirs=(),
                                                  authenticated=("/data",),
                                                  extra=[ib.Entry("data/notes.txt", data=b"public notes\n")])
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text), (0, "public notes\n"), p.stderr_text)
        self.flip(os.path.join(rootfs, "data", "notes.txt"))
        p = self.run_image(rootfs, session, env)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.stdout_text, "")
        self.assertIn("Input/output error", p.stderr_text)

    def assertNoPlaintextInBlobs(self, layout, texts):
        """No blob of the OCI layout holds any of texts, compressed or not."""
        blobs = os.path.join(layout, "blobs", "sha256")
        for name in os.listdir(blobs):
            with open(os.path.join(blobs, name), "rb") as f:
                data = f.read()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            for t in texts:
                self.assertFalse(t.encode() in data, f"{t!r} in blob {name}")

    # ---- platforms ----

    def test_an_arm64_image_gets_the_arm64_runtime(self):
        # Optional: the runtime built by enclave-runtime/build-aarch64.sh
        # BUILD/aarch64 (or SCONIFY_RUNTIME_DIR_ARM64).
        d = os.environ.get("SCONIFY_RUNTIME_DIR_ARM64") or os.path.join(harness.BUILD_ROOT, "aarch64")
        if not os.path.isfile(os.path.join(d, "sconify-runtime-arm64")):
            self.skipTest(f"no {d}/sconify-runtime-arm64 (enclave-runtime/build-aarch64.sh {d})")
        layer = ib.with_dirs([ib.Entry("bin/app", data=b"#!/bin/sh\necho app\n", mode=0o755),
                              ib.Entry("app/secret.txt", data=SECRET.encode())])
        src = ib.write_image(os.path.join(self.tmp, "arm"), [layer], cmd=["/bin/app"], arch="arm64")
        out = os.path.join(self.tmp, "arm-conf")
        p = harness.sconify("image", "--from", src, "--to", f"oci:{out}:conf", "--mode", "sim", "--runtime-dir", d,
                            "--dir", "/app", "--session-out", os.path.join(self.tmp, "arm.yml"))
        self.assertEqual(p.returncode, 0, p.stderr_text)
        bundle = os.path.join(self.tmp, "arm-bundle")
        harness.run(["umoci", "unpack", "--rootless", "--image", f"{out}:conf", bundle], check=True)
        rt = os.path.join(bundle, "rootfs", ".sconify", "runtime")
        with open(rt, "rb") as f:
            head = f.read(20)
        self.assertEqual(head[:4], b"\x7fELF")
        self.assertEqual(struct.unpack_from("<H", head, 18)[0], 183, "e_machine is not EM_AARCH64")
        if shutil.which("qemu-aarch64-static"):
            p = harness.run(["qemu-aarch64-static", rt, "--version"])
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertTrue(p.stdout_text.startswith("sconify-runtime "), p.stdout_text)

    # ---- python ----

    def test_python_imports_an_encrypted_module_with_the_stdlib_authenticated(self):
        if not os.access(ib.SYSTEM_PYTHON, os.X_OK):
            self.skipTest(f"{ib.SYSTEM_PYTHON} is not installed")
        base, stdlib = ib.python_entries()
        data = "PYTHON SECRET DATA 44"
        mod = ("import os\n\n\ndef load():\n    # MODULE SECRET 45\n"
               "    with open(os.path.join(os.path.dirname(__file__), 'data.txt')) as f:\n        return f.read()\n")
        main = "import json\nimport mod\n# MAIN SECRET 46\nprint(json.dumps({'data': mod.load()}))\n"
        app = ib.with_dirs([ib.Entry("app/main.py", data=main.encode()), ib.Entry("app/mod.py", data=mod.encode()),
                            ib.Entry("app/data.txt", data=data.encode())])
        env = ["PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"]
        rootfs, session, env = self.convert([base, app], ["python3", "/app/main.py"], dirs=("/app",),
                                            authenticated=(stdlib,), name="py", env=env)
        self.assertNoPlaintextInBlobs(os.path.join(self.tmp, "py-conf"),
                                      [data, "MODULE SECRET 45", "MAIN SECRET 46"])
        self.assertNoPlaintextOnDisk(rootfs, data)
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text), (0, json.dumps({"data": data}) + "\n"), p.stderr_text)
        # A flipped byte in a standard library file that json imports, then
        # in the encrypted module: the import fails with EIO, one log line.
        for path in (stdlib + "/json/decoder.py", "/app/mod.py"):
            self.flip(rootfs + path, offset=10)
            p = self.run_image(rootfs, session, env)
            self.assertNotEqual(p.returncode, 0, p.stderr_text)
            self.assertNotIn(data, p.stdout_text)
            self.assertIn("[Errno 5] Input/output error", p.stderr_text)
            logs = [l for l in p.stderr_text.splitlines() if f"open of `{path}' refused" in l]
            self.assertEqual(len(logs), 1, p.stderr_text)
            self.flip(rootfs + path, offset=10)

    def test_posix_spawn_fexecve_and_open_tree_of_a_protected_executable(self):
        # posix_spawn (its child shares the parent's memory) with argv[0] the
        # path's own string; fexecve of a served descriptor; open_tree, which
        # would give a descriptor of the stored file without an open: ENOSYS.
        prog = helper("glibc")
        libs = [ib.host_file(l, l.lstrip("/")) for l in ib.ldd_libs(prog)]
        base = ib.with_dirs([ib.host_file("/bin/busybox", "bin/busybox"),
                             ib.Entry("bin/sh", "symlink", target="busybox"),
                             ib.host_file(prog, "usr/bin/openfile", mode=0o755), *libs])
        app = ib.with_dirs([ib.host_file(prog, "app/bin/openfile", mode=0o755),
                            ib.Entry("app/secret.txt", data=SECRET.encode())])
        run = "/usr/bin/openfile {} /app/bin/openfile read /app/secret.txt; echo rc=$?"
        rootfs, session, env = self.convert(
            [base, app], ["/bin/sh", "-c", "; ".join(run.format(m) for m in ("spawn", "fexec", "opentree"))],
            name="spawn")
        p = self.run_image(rootfs, session, env)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertRegex(p.stdout_text, "^" + re.escape(SECRET) + r"parent argv0 \d+ bytes, child status 0\nrc=0\n"
                         + re.escape(SECRET) + r"rc=0\nerror: ENOSYS\nrc=1\n$")

    def test_python_subprocess_runs_an_encrypted_script(self):
        # subprocess (vfork + execve on Linux, a path and argv of their own)
        # runs a #! script of the encrypted dir whose interpreter lies outside.
        if not os.access(ib.SYSTEM_PYTHON, os.X_OK):
            self.skipTest(f"{ib.SYSTEM_PYTHON} is not installed")
        base, stdlib = ib.python_entries()
        tool = f"#!{ib.SYSTEM_PYTHON}\nprint('tool says', open('/app/data.txt').read())\n"
        main = ("import subprocess\n"
                "r = subprocess.run(['/app/bin/tool.py'], capture_output=True, text=True)\n"
                "print(r.returncode, r.stdout.strip())\n")
        app = ib.with_dirs([ib.Entry("app/main.py", data=main.encode()),
                            ib.Entry("app/bin/tool.py", data=tool.encode(), mode=0o755),
                            ib.Entry("app/data.txt", data=b"SUBPROCESS SECRET 47")])
        env = ["PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"]
        rootfs, session, env = self.convert([base, app], ["python3", "/app/main.py"], dirs=("/app",),
                                            authenticated=(stdlib,), name="pysub", env=env)
        p = self.run_image(rootfs, session, env)
        self.assertEqual((p.returncode, p.stdout_text), (0, "0 tool says SUBPROCESS SECRET 47\n"), p.stderr_text)

    def refused(self, p):
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertEqual(p.stdout_text, "")

    def test_a_replaced_runtime_or_application_is_refused_by_the_measurement(self):
        rootfs, session, env = self.busybox_image(["/bin/cat", "/app/secret.txt"])
        rt = os.path.join(rootfs, ".sconify", "runtime")
        with open(rt, "ab") as f:
            f.write(b"\0")
        p = self.run_image(rootfs, session, env)
        self.refused(p)
        self.assertIn("measurement mismatch", p.stderr_text)
        shutil.copy(RUNTIME, rt)
        self.assertEqual(self.run_image(rootfs, session, env).stdout_text, SECRET)
        bb = os.path.join(rootfs, "bin", "busybox")
        with open(bb, "ab") as f:
            f.write(b"\0")
        p = self.run_image(rootfs, session, env)
        self.refused(p)
        self.assertIn("measurement mismatch", p.stderr_text)

    def test_an_edited_command_in_the_policy_is_refused(self):
        rootfs, session, env = self.busybox_image(["/bin/cat", "/app/secret.txt"])
        with open(session) as f:
            doc = f.read()
        with open(session, "w") as f:
            f.write(doc.replace("- /app/secret.txt", "- /app/other.txt"))
        p = self.run_image(rootfs, session, env)
        self.refused(p)
        self.assertIn("measurement mismatch", p.stderr_text)

    def test_a_wrong_tag_or_key_is_refused(self):
        rootfs, session, env = self.busybox_image(["/bin/cat", "/app/secret.txt"])
        with open(session) as f:
            doc = f.read()
        for field in ("fspf_tag", "fspf_key"):
            lines = doc.splitlines(keepends=True)
            for i, l in enumerate(lines):
                if l.strip().startswith(field + ":"):
                    v = l.split(":", 1)[1].strip().strip('"')
                    lines[i] = l.replace(v, ("0" if v[0] != "0" else "1") + v[1:])
            with open(session, "w") as f:
                f.write("".join(lines))
            p = self.run_image(rootfs, session, env)
            self.refused(p)
            self.assertIn("shield metadata", p.stderr_text)
            self.assertIn("does not match the pinned value" if field == "fspf_tag" else "authentication failed",
                          p.stderr_text)


if __name__ == "__main__":
    harness.main()
