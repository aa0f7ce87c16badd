#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks testdata/build_fixtures.py:

  1. builds the fixtures twice into fresh directories, times both runs and
     compares the sha256 of every file (determinism);
  2. checks every good fixture with `skopeo inspect' and `skopeo copy' (to an
     oci: layout), unpacks it with `umoci unpack' (the fixture itself when it
     has no zstd layer and is a single OCI image, else skopeo's OCI copy, made
     with gzip layers) and compares the rootfs with the expected tree in
     fixtures.json (type, mode, owner, size, sha256, symlink target, user
     xattrs, hard links);
  3. checks the hostile corpus is what cases.json says: every referenced file
     exists, every layer case's layout diff_id is the sha256 of its
     decompressed layer (bombs included: 1 GiB streams), the zstd window bomb
     is refused by a default zstd, the GNU sparse header declares 4 GiB; then
     shows what skopeo says about each case (information, not a verdict).

    python3 testdata/check_fixtures.py [--keep DIR] [--skip-hostile-skopeo]

Needs root for umoci (owners, setuid, xattrs). Exit status 0 when all checks pass.
"""

import argparse
import gzip
import hashlib
import json
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "build_fixtures.py")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def hash_tree(root):
    out = {}
    for dp, dns, fns in os.walk(root):
        dns.sort()
        for fn in sorted(fns):
            p = os.path.join(dp, fn)
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for c in iter(lambda: f.read(1 << 20), b""):
                    h.update(c)
            out[os.path.relpath(p, root)] = h.hexdigest()
    return out


def absref(out, ref):
    transport, rest = ref.split(":", 1)
    return transport + ":" + os.path.join(out, rest)


def platform_args(plat):
    parts = plat.split("/")
    args = ["--override-os", parts[0], "--override-arch", parts[1]]
    if len(parts) > 2:
        args += ["--override-variant", parts[2]]
    return args


def actual_tree(rootfs):
    tree, inodes = {}, {}
    for dp, dns, fns in os.walk(rootfs):
        dns.sort()
        for name in sorted(dns + fns):
            p = os.path.join(dp, name)
            rel = os.path.relpath(p, rootfs)
            st = os.lstat(p)
            d = {"uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISLNK(st.st_mode):
                d = {"type": "symlink", **d, "target": os.readlink(p)}
            else:
                kind = ("dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode)
                        else "fifo" if stat.S_ISFIFO(st.st_mode) else "other")
                d = {"type": kind, "mode": "%04o" % stat.S_IMODE(st.st_mode), **d}
                if kind == "file":
                    with open(p, "rb") as f:
                        d["size"] = st.st_size
                        d["sha256"] = hashlib.sha256(f.read()).hexdigest()
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1:
                        if key in inodes:
                            d["link"] = inodes[key]
                        else:
                            inodes[key] = rel
                xattrs = {k: os.getxattr(p, k).decode() for k in sorted(os.listxattr(p)) if k.startswith("user.")}
                if xattrs:
                    d["xattrs"] = xattrs
            tree[rel] = d
    return dict(sorted(tree.items()))


def compare_trees(what, expected, actual):
    exp = {}
    for k, v in expected.items():
        v = dict(v)
        if v.get("type") == "hardlink":
            v["type"] = "file"
        exp[k] = v
    if exp == actual:
        return True
    for k in sorted(set(exp) | set(actual)):
        if exp.get(k) != actual.get(k):
            fail("%s: %s expected %s got %s" % (what, k, exp.get(k), actual.get(k)))
    return False


def dir_view(out, fx, work):
    """containers/image's oci: transport only follows index.json descriptors of
    OCI media types, so a Docker-typed image in an OCI layout is checked through
    a dir: copy made of the very same blobs (manifest.json = the top manifest,
    <hex>.manifest.json = the instances of a list, <hex> = the other blobs)."""
    layout = os.path.join(out, fx["ref"].split(":")[1])
    top = json.load(open(os.path.join(layout, "index.json")))["manifests"][0]["digest"][7:]
    d = os.path.join(work, fx["name"].replace("/", "_") + "_dir")
    os.makedirs(d)
    with open(os.path.join(d, "version"), "w") as f:
        f.write("Directory Transport Version: 1.1\n")
    blobs = os.path.join(layout, "blobs", "sha256")
    top_body = json.load(open(os.path.join(blobs, top)))
    instances = {m["digest"][7:] for m in top_body.get("manifests", [])}
    for hexname in os.listdir(blobs):
        dst = "manifest.json" if hexname == top else hexname + ".manifest.json" if hexname in instances else hexname
        os.link(os.path.join(blobs, hexname), os.path.join(d, dst))
    return "dir:" + d


def gunzip_view(out, fx, work):
    """skopeo 1.9.3 cannot read a compressed docker-archive (it fails with
    `loading tar component manifest.json: unexpected EOF' even on `gzip -n`
    output), so the check reads the gunzipped archive."""
    src = os.path.join(out, fx["ref"].split(":", 1)[1])
    dst = os.path.join(work, os.path.basename(src)[:-3])
    with open(dst, "wb") as f:
        subprocess.run(["gzip", "-dc", src], stdout=f, check=True)
    return "docker-archive:" + dst


def check_good(out, work):
    fixtures = json.load(open(os.path.join(out, "fixtures.json")))
    for fx in fixtures:
        name, ref = fx["name"], absref(out, fx["ref"])
        if "docker schema 2 manifest in an OCI layout" in fx["features"] or name == "oci/docker-list":
            ref = dir_view(out, fx, work)
        elif fx["ref"].endswith(".gz"):
            ref = gunzip_view(out, fx, work)
        safe = name.replace("/", "_").replace(":", "_")
        plats = fx["platforms"]
        for plat in plats:
            pa = platform_args(plat) if len(plats) > 1 else []
            r = run(["skopeo", "inspect", *pa, ref])
            if r.returncode:
                fail("%s: skopeo inspect (%s): %s" % (name, plat, r.stderr.strip()))
                continue
            info = json.loads(r.stdout)
            want_arch = plat.split("/")[1]
            if info.get("Architecture") != want_arch:
                fail("%s: skopeo inspect arch %s, want %s" % (name, info.get("Architecture"), want_arch))
            dest = os.path.join(work, safe + "_" + plat.replace("/", "_"))
            extra = ["--dest-compress", "--dest-compress-format", "gzip"] if "zstd" in fx["compressions"] else []
            r = run(["skopeo", "copy", "-q", *pa, *extra, ref, "oci:" + dest + ":latest"])
            if r.returncode:
                fail("%s: skopeo copy (%s): %s" % (name, plat, r.stderr.strip()))
                continue
            direct = (ref.startswith("oci:") and len(plats) == 1 and "zstd" not in fx["compressions"])
            image = ref[len("oci:"):] if direct else dest + ":latest"
            bundle = os.path.join(work, safe + "_" + plat.replace("/", "_") + "_bundle")
            r = run(["umoci", "unpack", "--image", image, bundle])
            if r.returncode:
                fail("%s: umoci unpack %s: %s" % (name, image, r.stderr.strip()))
                continue
            expected = fx["tree"] if "tree" in fx else fx["trees"][plat]
            ok = compare_trees("%s (%s)" % (name, plat), expected, actual_tree(os.path.join(bundle, "rootfs")))
            print("good %-26s %-15s skopeo inspect+copy of %s ok, umoci unpack of %s: tree %s"
                  % (name, plat, ref.split(":")[0] + (" view" if ref != absref(out, fx["ref"]) else ""),
                     "fixture" if direct else "skopeo copy", "matches" if ok else "DIFFERS"))
        if len(plats) > 1:
            r = run(["skopeo", "copy", "-q", "--all", ref, "oci:" + os.path.join(work, safe + "_all") + ":latest"])
            if r.returncode:
                fail("%s: skopeo copy --all: %s" % (name, r.stderr.strip()))
            else:
                print("good %-26s all platforms copied with skopeo copy --all" % name)


def stream_sha256(cmd):
    h = hashlib.sha256()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for c in iter(lambda: p.stdout.read(1 << 20), b""):
        h.update(c)
    err = p.stderr.read()
    return ("sha256:" + h.hexdigest()) if p.wait() == 0 else None, err.decode()


def check_hostile(out, work, with_skopeo):
    cases = json.load(open(os.path.join(out, "hostile", "cases.json")))
    for c in cases:
        ref = c["ref"]
        transport, rest = ref.split(":", 1)
        path = rest if transport == "docker-archive" else rest.rsplit(":", 1)[0]
        if not os.path.exists(os.path.join(out, path)):
            fail("%s: %s does not exist" % (c["name"], path))
        if c["kind"] == "layer":
            layer = os.path.join(out, c["layer"])
            magic = open(layer, "rb").read(4)
            comp = c["compression"]
            if (comp == "gzip") != magic.startswith(b"\x1f\x8b") or (comp == "zstd") != (magic == b"\x28\xb5\x2f\xfd"):
                fail("%s: compression %s but magic %s" % (c["name"], comp, magic.hex()))
            lo = os.path.join(out, path)
            idx = json.load(open(os.path.join(lo, "index.json")))
            man = json.load(open(os.path.join(lo, "blobs", "sha256", idx["manifests"][0]["digest"][7:])))
            cfg = json.load(open(os.path.join(lo, "blobs", "sha256", man["config"]["digest"][7:])))
            if man["layers"][0]["digest"][7:] != os.path.basename(layer):
                fail("%s: layer path is not the manifest's layer" % c["name"])
            cmd = {"gzip": ["gzip", "-dc", layer], "zstd": ["zstd", "-dcq", "--long=31", layer],
                   "none": ["cat", layer]}[comp]
            t = time.monotonic()
            got, err = stream_sha256(cmd)
            if got != cfg["rootfs"]["diff_ids"][0]:
                fail("%s: decompressed sha256 %s != config diff_id (%s)" % (c["name"], got, err.strip()))
            else:
                print("hostile %-28s layer decompresses to its diff_id (%.1f s)" % (c["name"], time.monotonic() - t))
            if c["name"] == "zstd-window-bomb":
                r = run(["zstd", "-dc", layer, "-o", "/dev/null"])
                if r.returncode == 0 or "Window size larger than maximum" not in r.stderr:
                    fail("zstd-window-bomb: default zstd did not refuse the window: %s" % r.stderr)
            if c["name"] == "gnu-sparse-4g":
                with tarfile.open(fileobj=gzip.open(layer)) as tf:
                    m = tf.getmembers()[0]
                    if not (m.issparse() and m.size == 4 << 30):
                        fail("gnu-sparse-4g: tarfile sees size %d sparse %s" % (m.size, m.issparse()))
        if with_skopeo:
            try:
                dest = "dir:" + tempfile.mkdtemp(prefix="hostile-", dir=work)
                r = run(["skopeo", "copy", "-q", absref(out, ref), dest], timeout=60)
                msg = ((r.stderr.strip().splitlines() or ["(no message)"])[-1] if r.returncode else "(accepted)")
            except subprocess.TimeoutExpired:
                msg = "(still running after 60 s, stopped)"
            print("skopeo %-32s %s" % (c["name"], msg[-150:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="build into this directory and keep it")
    ap.add_argument("--skip-hostile-skopeo", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fixtures-check-") as tmp:
        dirs = [args.keep or os.path.join(tmp, "a"), os.path.join(tmp, "b")]
        hashes = []
        for d in dirs:
            t = time.monotonic()
            r = subprocess.run([sys.executable, BUILD, d])
            took = time.monotonic() - t
            if r.returncode:
                fail("build into %s failed" % d)
                return 1
            hashes.append(hash_tree(d))
            size = sum(os.path.getsize(os.path.join(d, f)) for f in hashes[-1])
            print("build %s: %.1f s wall, %d files, %.1f MiB" % (d, took, len(hashes[-1]), size / (1 << 20)))
            if took > 60:
                fail("build took %.1f s (limit 60 s)" % took)
        if hashes[0] != hashes[1]:
            for f in sorted(set(hashes[0]) | set(hashes[1])):
                if hashes[0].get(f) != hashes[1].get(f):
                    fail("not deterministic: " + f)
        else:
            print("determinism: both runs identical (%d files, sha256 of every file compared)" % len(hashes[0]))
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        check_good(dirs[0], work)
        check_hostile(dirs[0], work, not args.skip_hostile_skopeo)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
