# SPDX-License-Identifier: Apache-2.0
"""Small OCI images for the conversion and runtime tests, written with
testdata/fixturelib.py (byte-exact tar, gzip, layouts): layers are lists of
fixturelib.Entry, or host files copied in (a static busybox, a glibc program
and its libraries, the machine's own python3)."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("SCONIFY_SOURCE_ROOT",
                                               os.path.join(os.path.dirname(__file__), "..", "..")),
                                "testdata"))
import fixturelib as fl  # noqa: E402

Entry = fl.Entry


def dirs_for(paths):
    """Directory entries for every parent of paths, parents first."""
    seen = set()
    out = []
    for p in paths:
        parts = p.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in seen:
                seen.add(d)
                out.append(Entry(d + "/", "dir"))
    return out


def host_file(src, dst=None, mode=None):
    """An entry holding a file of this machine (symlinks followed)."""
    with open(src, "rb") as f:
        data = f.read()
    st = os.stat(src)
    return Entry((dst or src).lstrip("/"), data=data, mode=mode if mode is not None else st.st_mode & 0o7777)


def with_dirs(entries):
    """entries preceded by the directories they need (if not given)."""
    have = {e.path.rstrip("/") for e in entries if e.kind == "dir"}
    need = [d for d in dirs_for([e.path for e in entries]) if d.path.rstrip("/") not in have]
    return need + entries


def ldd_libs(binary):
    """The shared libraries a dynamic program loads (with the loader)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(parts[2])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def _add_image(lay, layers, *, entrypoint=None, cmd=None, env=None, workdir=None, user=None,
               compression="gzip", arch="amd64", labels=None):
    """Writes one image's blobs into lay; returns its manifest descriptor."""
    descs, diff_ids = [], []
    for entries in layers:
        tar = fl.tar_bytes(entries)
        blob = fl.compress(tar, compression)
        lay.add(blob)
        descs.append(fl.descriptor(fl.LAYER_MEDIA_TYPES[compression], blob))
        diff_ids.append("sha256:" + fl.sha256_hex(tar))
    cfg = {"created": fl.EPOCH, "architecture": arch, "os": "linux", "config": {},
           "rootfs": {"type": "layers", "diff_ids": diff_ids},
           "history": [{"created": fl.EPOCH, "created_by": "layer %d" % i} for i in range(len(layers))]}
    c = cfg["config"]
    c["Env"] = env if env is not None else ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    if entrypoint is not None:
        c["Entrypoint"] = entrypoint
    if cmd is not None:
        c["Cmd"] = cmd
    if workdir:
        c["WorkingDir"] = workdir
    if user:
        c["User"] = user
    if labels:
        c["Labels"] = labels
    cfg_data = fl.dumps(cfg)
    lay.add(cfg_data)
    manifest = {"schemaVersion": 2, "mediaType": fl.MT_OCI_MANIFEST,
                "config": fl.descriptor(fl.MT_OCI_CONFIG, cfg_data), "layers": descs}
    m_data = fl.dumps(manifest)
    lay.add(m_data)
    return fl.descriptor(fl.MT_OCI_MANIFEST, m_data)


def write_image(path, layers, *, tag="latest", **kw):
    """An OCI layout at path with one image of these layers; returns the
    reference `oci:PATH:TAG'. kw: entrypoint, cmd, env, workdir, user,
    compression, arch, labels."""
    lay = fl.Layout(path)
    desc = _add_image(lay, layers, **kw)
    lay.write_index(fl.index_of([fl.tagged(desc, tag)]))
    return "oci:%s:%s" % (path, tag)


def write_multi(path, images, *, tag="latest", **kw):
    """An OCI layout whose tag names an index of one image per (arch,
    layers) in images; returns `oci:PATH:TAG'."""
    lay = fl.Layout(path)
    descs = []
    for arch, layers in images:
        d = _add_image(lay, layers, arch=arch, **kw)
        d["platform"] = {"architecture": arch, "os": "linux"}
        descs.append(d)
    index = {"schemaVersion": 2, "mediaType": fl.MT_OCI_INDEX, "manifests": descs}
    i_data = fl.dumps(index)
    lay.add(i_data)
    lay.write_index(fl.index_of([fl.tagged(fl.descriptor(fl.MT_OCI_INDEX, i_data), tag)]))
    return "oci:%s:%s" % (path, tag)


# Parts of the standard library that no test or benchmark program imports:
# tests, bundled wheels, GUIs, the build configuration.
PYTHON_STDLIB_SKIP = ("test", "site-packages", "dist-packages", "idlelib", "tkinter", "turtledemo", "ensurepip",
                      "lib2to3", "pydoc_data", "unittest/test", "config-3")


SYSTEM_PYTHON = "/usr/bin/python3"


def python_stdlib(python=SYSTEM_PYTHON):
    """The standard library directory of python (e.g. /usr/lib/python3.11)."""
    out = subprocess.run([python, "-c", "import os; print(os.path.dirname(os.__file__))"], capture_output=True,
                         text=True, check=True).stdout
    return os.path.realpath(out.strip())


def python_entries(python=SYSTEM_PYTHON, pycache_dir=None):
    """Entries for this machine's own python3: its binary at /usr/bin/python3
    (and the versioned name it links to), the libraries ldd names with the
    loader, and its standard library directory without PYTHON_STDLIB_SKIP and
    without the distribution's .pyc files (they pin the host's mtimes, ours
    are 0). With pycache_dir (an empty scratch directory), hash-based .pyc
    files (PEP 552, unchecked, as distributions can ship them) are compiled
    there by that python and added. Returns (entries, stdlib directory)."""
    exe = os.path.realpath(python)
    name = os.path.basename(exe)
    entries = [host_file(exe, "usr/bin/" + name, mode=0o755)]
    if name != "python3":
        entries.append(Entry("usr/bin/python3", "symlink", target=name))
    entries += [host_file(lib, lib.lstrip("/")) for lib in ldd_libs(exe)]
    stdlib = python_stdlib(python)
    files = []
    for dirpath, dirnames, filenames in os.walk(stdlib):
        rel = os.path.relpath(dirpath, stdlib)
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not any(
            (rel + "/" + d if rel != "." else d).startswith(s) for s in PYTHON_STDLIB_SKIP))
        for fn in sorted(filenames):
            src = os.path.join(dirpath, fn)
            if not os.path.islink(src) and os.path.isfile(src):
                files.append(src)
    entries += [host_file(src) for src in files]
    if pycache_dir is not None:
        import shutil
        copy = os.path.join(pycache_dir, "lib")
        for src in files:
            if src.endswith(".py"):
                dst = copy + src
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
        subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                        "-s", copy, copy + stdlib], capture_output=True, check=False)
        for dirpath, _, filenames in os.walk(copy):
            if os.path.basename(dirpath) == "__pycache__":
                entries += [host_file(os.path.join(dirpath, fn), os.path.join(dirpath[len(copy):], fn))
                            for fn in sorted(filenames)]
    return with_dirs(entries), stdlib
