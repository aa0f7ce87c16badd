# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the integration tests: the binaries under test, the
fixture corpus (built once per build directory), independent tools (skopeo,
umoci) and a file-tree comparison. Python standard library only."""

import fcntl
import hashlib
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

SOURCE_ROOT = os.environ.get("SCONIFY_SOURCE_ROOT",
                             os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_ROOT = os.environ.get("SCONIFY_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
SCONIFY = os.environ.get("SCONIFY_BIN", os.path.join(BUILD_ROOT, "cmd", "sconify", "sconify"))
# The memory-bound tests measure a build without sanitizers (ASan's shadow
# memory and quarantine are not what users run).
RELEASE_SCONIFY = os.environ.get("SCONIFY_RELEASE_BIN")
BUILDER = os.path.join(SOURCE_ROOT, "testdata", "build_fixtures.py")


def run(args, check=False, env=None, timeout=900):
    """Runs a command, returns CompletedProcess with text stdout/stderr."""
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=timeout)
    p.stdout_text = p.stdout.decode("utf-8", "replace")
    p.stderr_text = p.stderr.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed with {p.returncode}:\n{p.stderr_text}")
    return p


def sconify(*args, check=False, binary=None):
    return run([binary or SCONIFY, *args], check=check)


def fixtures():
    """Builds the fixture corpus once per builder version; returns its directory."""
    with open(BUILDER, "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:16]
    base = os.path.join(BUILD_ROOT, "fixtures")
    os.makedirs(base, exist_ok=True)
    out = os.path.join(base, key)
    with open(os.path.join(base, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(out, ".complete")):
            shutil.rmtree(out, ignore_errors=True)
            run([sys.executable, BUILDER, out], check=True)
            open(os.path.join(out, ".complete"), "w").close()
    return out


def absref(ref, base=None):
    """A fixture reference (relative to the fixture directory) made absolute."""
    base = base or fixtures()
    transport, rest = ref.split(":", 1)
    return f"{transport}:{os.path.join(base, rest)}"


def fixture_list():
    return load_json(os.path.join(fixtures(), "fixtures.json"))


def hostile_cases():
    return load_json(os.path.join(fixtures(), "hostile", "cases.json"))


def load_json(path):
    with open(path) as f:
        return json.load(f)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def snapshot(path):
    """Every file below path (or path itself) with its type and content hash:
    used to prove a failed run changed nothing."""
    if not os.path.lexists(path):
        return None
    if not os.path.isdir(path):
        return {"": sha256_file(path)}
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, path)
            st = os.lstat(p)
            out[rel] = sha256_file(p) if stat.S_ISREG(st.st_mode) else stat.S_IFMT(st.st_mode)
    return out


def tree(rootfs):
    """Describes an unpacked root file system: per path its type, mode, owner,
    link target, content hash and xattrs; hard links as groups of names."""
    out = {}
    inodes = {}
    for root, dirs, files in os.walk(rootfs):
        for name in sorted(dirs + files):
            p = os.path.join(root, name)
            rel = os.path.relpath(p, rootfs)
            st = os.lstat(p)
            entry = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
                     "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISLNK(st.st_mode):
                entry["link"] = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                entry["sha256"] = sha256_file(p)
                entry["size"] = st.st_size
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            try:
                names = sorted(os.listxattr(p, follow_symlinks=False))
                entry["xattrs"] = {n: os.getxattr(p, n, follow_symlinks=False).hex()
                                   for n in names if not n.startswith("security.")}
            except OSError:
                pass
            out[rel] = entry
    out["<hardlinks>"] = sorted(sorted(g) for g in inodes.values())
    return out


_TYPES = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "symlink": stat.S_IFLNK, "fifo": stat.S_IFIFO,
          "char": stat.S_IFCHR, "block": stat.S_IFBLK}


def expected_tree(fx, platform=None):
    """The tree testdata/build_fixtures.py computed for a fixture (its own
    model of the layer rules), in tree()'s format."""
    model = fx["trees"][platform] if platform else fx["tree"]
    out = {}
    groups = {}
    for path, e in model.items():
        entry = {"type": _TYPES[e["type"]], "mode": int(e.get("mode", "777"), 8), "uid": e["uid"],
                 "gid": e["gid"]}
        if e["type"] == "symlink":
            entry["link"] = e["target"]
        if e["type"] == "file":
            entry["sha256"] = e["sha256"]
            entry["size"] = e["size"]
            if "link" in e:
                groups.setdefault(e["link"], {e["link"]}).add(path)
        entry["xattrs"] = {k: v.encode().hex() for k, v in e.get("xattrs", {}).items()}
        out[path] = entry
    out["<hardlinks>"] = sorted(sorted(g) for g in groups.values())
    return out


def umoci_tree(layout, ref, workdir):
    """Unpacks layout:ref with umoci (an independent implementation) and
    returns tree() of the result."""
    bundle = tempfile.mkdtemp(dir=workdir, prefix="bundle-")
    os.rmdir(bundle)
    run(["umoci", "unpack", "--image", f"{layout}:{ref}", bundle], check=True)
    return tree(os.path.join(bundle, "rootfs"))


def skopeo_to_gzip_oci(src, workdir, name="gz"):
    """skopeo copies src into a fresh OCI layout with gzip layers (umoci
    cannot read zstd)."""
    out = os.path.join(workdir, name)
    run(["skopeo", "copy", "--quiet", "--dest-compress", "--dest-compress-format", "gzip",
         src, f"oci:{out}:x"], check=True)
    return out


def max_rss_kib(args):
    """Runs args and returns (CompletedProcess, peak RSS in KiB of that child)."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_RDWR)
        errfile = os.open(os.path.join(tempfile.gettempdir(), f"sconify-rss-{os.getpid()}.err"),
                          os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(devnull, 1)
        os.dup2(errfile, 2)
        try:
            os.execv(args[0], args)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    errpath = os.path.join(tempfile.gettempdir(), f"sconify-rss-{pid}.err")
    with open(errpath) as f:
        stderr = f.read()
    os.unlink(errpath)
    return os.waitstatus_to_exitcode(status), stderr, usage.ru_maxrss


class TestCase(unittest.TestCase):
    """Gives each test a scratch directory."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sconify-it-")

    def tearDown(self):
        os.environ.get("KEEP_TMP") or shutil.rmtree(self.tmp, ignore_errors=True)

    def assertFailsWith(self, p, phrases, names=None):
        """p failed with exit 1, printed one error line containing one of
        phrases and (when given) naming `names`."""
        self.assertEqual(p.returncode, 1, f"expected exit 1, got {p.returncode}; stderr: {p.stderr_text}")
        errors = [l for l in p.stderr_text.splitlines() if l.startswith("sconify: error:")]
        self.assertEqual(len(errors), 1, f"expected one error line: {p.stderr_text}")
        self.assertTrue(any(ph in errors[0] for ph in phrases),
                        f"error lacks any of {phrases}: {errors[0]}")
        if names:
            self.assertIn(names, errors[0])


def main():
    """Runs the calling module's tests and reports them as TAP for meson."""
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(sys.modules["__main__"])
    tests = list(_flatten(suite))
    print(f"1..{len(tests)}", flush=True)
    failed = 0
    for i, t in enumerate(tests, 1):
        result = unittest.TestResult()
        t.run(result)
        name = t.id().split(".", 1)[-1]
        if result.skipped:
            print(f"ok {i} - {name} # SKIP {result.skipped[0][1]}", flush=True)
        elif result.wasSuccessful():
            print(f"ok {i} - {name}", flush=True)
        else:
            failed += 1
            print(f"not ok {i} - {name}", flush=True)
            for _, tb in result.errors + result.failures:
                for line in tb.splitlines():
                    print(f"# {line}", flush=True)
    sys.exit(1 if failed else 0)


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t
