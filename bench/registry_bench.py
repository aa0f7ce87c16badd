#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Registry-to-registry copy: sconify against skopeo, on loopback registries
(tests/integration/registryenv.py). Numbers, never assertions.

Generates an image of SIZE_MIB (default 1280) uncompressed in LAYERS (default
5) layers of half-random files (gzip shrinks them about 2:1), pushes it to
registry A, then measures for each tool, REPEAT times (default 3):
  cold   A/bench:1 -> a fresh, empty registry B
  warm   A/bench:1 -> B/bench:warm (B already holds every blob)
  mount  A/bench:1 -> A/<new repo>:1 (cross-repository blob mounts)
and prints the median wall time and the peak RSS (/usr/bin/time %M) per tool
and case, the ratios sconify/skopeo and the goals of the issue next to them.
Each copy is checked: the destination must serve the source's manifest
digest. Until sconify has the docker:// transport, only skopeo is measured.

    bench/registry.sh [BUILD_DIR]     (default build-release)
"""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import registryenv  # noqa: E402

GOALS = {"cold": 0.8, "warm": 1.0, "mount": 1.0}
RSS_GOAL_MIB = 64
MANIFEST_TYPES = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                            "application/vnd.oci.image.index.v1+json",
                            "application/vnd.docker.distribution.manifest.v2+json",
                            "application/vnd.docker.distribution.manifest.list.v2+json"])


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class _HashingFile:
    def __init__(self, f):
        self.f, self.h, self.size = f, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.size += len(b)
        return self.f.write(b)


def write_layout(out, size_mib, layers, tag="bench"):
    """An OCI layout of uncompressed layers; files of 4 MiB, the first half
    random and the second zeros."""
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs)

    def put_bytes(data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    descs, diff_ids = [], []
    per_layer = max(1, size_mib // layers)
    zeros = bytes(2 << 20)
    for i in range(layers):
        tmp = os.path.join(out, "layer.tmp")
        with open(tmp, "wb") as raw:
            hf = _HashingFile(raw)
            with tarfile.open(fileobj=hf, mode="w|", format=tarfile.PAX_FORMAT) as t:
                for j in range(max(1, per_layer // 4)):
                    info = tarfile.TarInfo(f"layer{i}/file{j}.bin")
                    info.size = 4 << 20
                    info.mtime = 1
                    t.addfile(info, _Chunks([os.urandom(2 << 20), zeros]))
        d = hf.h.hexdigest()
        os.rename(tmp, os.path.join(blobs, d))
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + d,
                      "size": hf.size})
        diff_ids.append("sha256:" + d)
    cfg = put_bytes(json.dumps({"architecture": "amd64", "os": "linux",
                                "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
    man = put_bytes(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                                "layers": descs}).encode())
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                      **man,
                                                      "annotations": {"org.opencontainers.image.ref.name": tag}}]},
                  f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')


class _Chunks:
    def __init__(self, parts):
        self.data = b"".join(parts)
        self.pos = 0

    def read(self, n=-1):
        n = len(self.data) - self.pos if n < 0 else n
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def run(args, check=True, quiet=False):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"registry_bench: {' '.join(args)} failed ({p.returncode}):\n{p.stderr}")
    return p


def manifest_digest(host, repo, ref):
    h, port = host.rsplit(":", 1)
    conn = http.client.HTTPConnection(h, int(port), timeout=30)
    try:
        conn.request("HEAD", f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_TYPES})
        r = conn.getresponse()
        r.read()
        return r.getheader("Docker-Content-Digest") if r.status == 200 else None
    finally:
        conn.close()


class Tool:
    def __init__(self, name, argv):
        self.name, self.argv = name, argv  # argv: the copy command without the two references

    def copy(self, src, dst):
        return [*self.argv, src, dst]


def probe_sconify(sconify, reg, tmp):
    """The sconify copy command line that copies docker:// -> docker://,
    or (None, why)."""
    if not os.access(sconify, os.X_OK):
        return None, f"{sconify} is not built"
    why = []
    for flags in (["--src-tls-verify=false", "--dest-tls-verify=false"], ["--tls-verify=false"], []):
        argv = [sconify, "copy", "-q", *flags]
        dst = f"probe/tiny-{len(flags)}"
        p = run([*argv, f"docker://{reg.host}/probe/tiny:1", f"docker://{reg.host}/{dst}:1"], check=False)
        if p.returncode == 0 and manifest_digest(reg.host, dst, "1"):
            return argv, ""
        lines = [l.strip() for l in p.stderr.splitlines() if l.strip()]
        why.append(f"{' '.join(flags) or 'no TLS flag'}: "
                   f"{lines[0] if lines else f'exit {p.returncode} and no message'}")
    return None, "; ".join(why)


def measure(cmd, tmp):
    """(wall seconds, peak RSS KiB) of cmd under /usr/bin/time."""
    tf = os.path.join(tmp, "time.out")
    os.sync()
    p = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", tf, *cmd], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    with open(tf) as f:
        secs, kib = f.read().split()[-2:]
    return float(secs), int(kib)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build-release")
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("REPEAT", "3")))
    ap.add_argument("--size-mib", type=int, default=int(os.environ.get("SIZE_MIB", "1280")))
    ap.add_argument("--layers", type=int, default=int(os.environ.get("LAYERS", "5")))
    args = ap.parse_args()
    for tool in (registryenv.REGISTRY_BIN, "skopeo", "openssl"):
        if not shutil.which(tool):
            raise SystemExit(f"registry_bench: {tool} is not installed")
    if not os.access("/usr/bin/time", os.X_OK):
        raise SystemExit("registry_bench: GNU time (/usr/bin/time) is not installed")
    sconify = os.path.join(args.build, "cmd", "sconify", "sconify")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="sconify-regbench-")
    servers = []
    try:
        t = time.monotonic()
        log(f"generating a {args.size_mib} MiB image ({args.layers} layers) in {tmp} ...")
        plain = os.path.join(tmp, "plain")
        write_layout(plain, args.size_mib, args.layers)
        tiny = os.path.join(tmp, "tiny")
        write_layout(tiny, 4, 1, tag="tiny")
        reg_a = registryenv.Registry(tmp)
        servers.append(reg_a)
        if os.access(sconify, os.X_OK):  # sconify's parallel gzip, then a plain push
            gz = os.path.join(tmp, "gz")
            run([sconify, "copy", "-q", "--dest-compress", "gzip", f"oci:{plain}:bench", f"oci:{gz}:bench"])
            shutil.rmtree(plain)
            run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{gz}:bench",
                 f"docker://{reg_a.host}/bench:1"])
            shutil.rmtree(gz)
        else:  # skopeo gzips the plain layers on the push
            run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-compress-format", "gzip",
                 f"oci:{plain}:bench", f"docker://{reg_a.host}/bench:1"])
            shutil.rmtree(plain)
        run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{tiny}:tiny",
             f"docker://{reg_a.host}/probe/tiny:1"])
        src_digest = manifest_digest(reg_a.host, "bench", "1")
        man = json.loads(run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                              f"docker://{reg_a.host}/bench:1"]).stdout)
        gz_mib = sum(layer["size"] for layer in man["layers"]) / (1 << 20)
        log(f"registry A {reg_a.host}: bench:1 {src_digest}, {len(man['layers'])} gzip layers, "
            f"{gz_mib:.0f} MiB ({time.monotonic() - t:.0f} s to make)")

        tools = [Tool("skopeo", ["skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false"])]
        argv, why = probe_sconify(sconify, reg_a, tmp)
        if argv:
            tools.append(Tool("sconify", argv))
        else:
            print(f"sconify: the docker:// transport is not available ({why}): measuring skopeo only", flush=True)

        results = {}  # (case, tool) -> [(secs, kib)]
        bad = []
        for rep in range(args.repeat):
            order = tools if rep % 2 == 0 else tools[::-1]
            for tool in order:
                reg_b = registryenv.Registry(tmp)
                servers.append(reg_b)
                cases = [("cold", f"docker://{reg_b.host}/bench:1", reg_b.host, "bench", "1"),
                         ("warm", f"docker://{reg_b.host}/bench:warm", reg_b.host, "bench", "warm"),
                         ("mount", f"docker://{reg_a.host}/mount-{tool.name}-{rep}/bench:1", reg_a.host,
                          f"mount-{tool.name}-{rep}/bench", "1")]
                for case, dst, host, repo, ref in cases:
                    secs, kib = measure(tool.copy(f"docker://{reg_a.host}/bench:1", dst), tmp)
                    results.setdefault((case, tool.name), []).append((secs, kib))
                    got = manifest_digest(host, repo, ref)
                    if got != src_digest:
                        bad.append(f"{tool.name} {case} #{rep + 1}: destination serves {got}, not {src_digest}")
                    log(f"  #{rep + 1} {tool.name:8} {case:6} {secs:7.2f} s {kib / 1024:7.1f} MiB")
                reg_b.stop()
                servers.remove(reg_b)
                shutil.rmtree(reg_b.dir)

        print(f"\nimage: {args.size_mib} MiB in {args.layers} layers, {gz_mib:.0f} MiB gzip; "
              f"median of {args.repeat} runs; peak RSS is the largest of the runs")
        print(f"{'case':7} {'tool':8} {'wall s':>8} {'peak RSS MiB':>13}")
        med = {}
        for case in GOALS:
            for tool in tools:
                runs = results[(case, tool.name)]
                med[(case, tool.name)] = (statistics.median(s for s, _ in runs), max(k for _, k in runs) / 1024)
                s, m = med[(case, tool.name)]
                print(f"{case:7} {tool.name:8} {s:8.2f} {m:13.1f}")
        print()
        for case, goal in GOALS.items():
            if len(tools) < 2:
                print(f"{case:7} sconify/skopeo wall n/a (goal <= {goal:.1f}x); sconify peak RSS n/a "
                      f"(goal < {RSS_GOAL_MIB} MiB)")
                continue
            (ss, sm), (os_, om) = med[(case, "skopeo")], med[(case, "sconify")]
            ratio = os_ / ss if ss > 0 else float("inf")
            print(f"{case:7} sconify/skopeo wall {ratio:5.2f}x (goal <= {goal:.1f}x: "
                  f"{'met' if ratio <= goal else 'NOT met'}); peak RSS {om / sm:5.2f}x, sconify {om:.1f} MiB "
                  f"(goal < {RSS_GOAL_MIB} MiB: {'met' if om < RSS_GOAL_MIB else 'NOT met'})")
        for b in bad:
            print(f"WRONG RESULT: {b}")
        return 1 if bad else 0
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
