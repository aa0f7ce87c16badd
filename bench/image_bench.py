#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`sconify image` registry to registry against `skopeo copy` (issue 4,
deliverable 8), on loopback registries (tests/integration/registryenv.py).
Numbers, never assertions.

Generates an image of SIZE_MIB (default 1280) uncompressed in LAYERS (default
5) layers of 4 MiB files, half random and half zeros (gzip shrinks them about
2:1), with /srv/secret holding SECRET_PCT (default 10) percent of the bytes in
one layer, and an executable /bin/app as the entrypoint; pushes it gzip to
registry A. Then, REPEAT times (default 3), each run into a fresh registry B
so that nothing is mounted or skipped:
  skopeo      skopeo copy A/bench:1 -> B/bench:1
  a gzip      sconify image --dir /srv/secret            (gzip output)
  a zstd      sconify image --dir /srv/secret --dest-compress zstd
  b gzip      sconify image --dir /                      (everything encrypted)
  b zstd      sconify image --dir / --dest-compress zstd
and, to see where the time goes:
  copy        sconify copy A -> B (pass-through of every layer)
  dry a/b     sconify image --dry-run (pass 1 only: every layer decompressed
              and planned)
  phases      one --debug run of each conversion case with the time of the
              first request to B (end of pass 1) and of every finished blob
Prints the median wall time, the peak RSS (/usr/bin/time %M, largest of the
runs), the ratios against skopeo with the issue's goals next to them, and the
shield's single-thread encryption throughput (bench/shield_driver) next to
`openssl speed -evp aes-256-gcm` on one core, each the best of 3 alternating
runs (on a loaded machine single runs of either vary by 2x).

    bench/image.sh [BUILD_DIR]     (default build-bench)
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import registryenv  # noqa: E402
from registry_bench import manifest_digest, measure  # noqa: E402

SECRET_DIR = "/srv/secret"
FILE_MIB = 4
# The goals: wall time against skopeo copy, peak RSS, encryption
# against openssl's single-core AES-256-GCM.
GOALS = {"a gzip": 1.3, "a zstd": 1.3, "b gzip": 2.0, "b zstd": 1.3}
RSS_GOAL_MIB = 128
ENCRYPT_GOAL = 0.70
APP = b"#!/bin/sh\necho sconify bench\n"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(args, check=True):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"image_bench: {' '.join(args)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p


class _HashingFile:
    def __init__(self, f):
        self.f, self.h, self.size = f, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.size += len(b)
        return self.f.write(b)


class _Bytes:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, n=-1):
        n = len(self.data) - self.pos if n < 0 else n
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def _dir(t, name):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1
    t.addfile(info)


def _file(t, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 1
    t.addfile(info, _Bytes(data))


def write_layout(out, size_mib, layers, secret_pct, tag="bench"):
    """An OCI layout of uncompressed layers. Every layer holds size_mib /
    layers of 4 MiB files (half random, half zeros) under /layerN; the middle
    layer holds secret_pct of all bytes under /srv/secret instead of as many
    of its own. Returns (layer index of the secret, secret MiB)."""
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs)

    def put_bytes(data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    per_layer = max(1, size_mib // layers // FILE_MIB)  # files
    secret_files = max(1, round(size_mib * secret_pct / 100 / FILE_MIB))
    secret_layer = layers // 2
    half = (FILE_MIB << 20) // 2
    zeros = bytes(half)
    descs, diff_ids = [], []
    for i in range(layers):
        tmp = os.path.join(out, "layer.tmp")
        with open(tmp, "wb") as raw:
            hf = _HashingFile(raw)
            with tarfile.open(fileobj=hf, mode="w|", format=tarfile.PAX_FORMAT) as t:
                if i == 0:
                    _dir(t, "bin")
                    _file(t, "bin/app", APP, 0o755)
                _dir(t, f"layer{i}")
                own = per_layer
                if i == secret_layer:
                    _dir(t, "srv")
                    _dir(t, SECRET_DIR[1:])
                    for j in range(secret_files):
                        _file(t, f"{SECRET_DIR[1:]}/file{j}.bin", os.urandom(half) + zeros)
                    own = max(0, per_layer - secret_files)
                for j in range(own):
                    _file(t, f"layer{i}/file{j}.bin", os.urandom(half) + zeros)
        d = hf.h.hexdigest()
        os.rename(tmp, os.path.join(blobs, d))
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + d,
                      "size": hf.size})
        diff_ids.append("sha256:" + d)
    cfg = put_bytes(json.dumps({"architecture": "amd64", "os": "linux",
                                "config": {"Entrypoint": ["/bin/app"], "Env": ["PATH=/usr/bin:/bin"],
                                           "WorkingDir": "/"},
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
    return secret_layer, secret_files * FILE_MIB


def push_source(sconify, plain, reg_a, tmp):
    """The layout, gzip, to A/bench:1: sconify's parallel gzip straight to
    the registry, else through a layout and skopeo."""
    tls = ["--dest-tls-verify=false"]
    p = run([sconify, "copy", "-q", "--dest-compress", "gzip", *tls, f"oci:{plain}:bench",
             f"docker://{reg_a.host}/bench:1"], check=False)
    if p.returncode == 0 and manifest_digest(reg_a.host, "bench", "1"):
        return
    log(f"sconify copy to the registry failed ({p.stderr.strip()[:200]}): going through a layout")
    gz = os.path.join(tmp, "gz")
    run([sconify, "copy", "-q", "--dest-compress", "gzip", f"oci:{plain}:bench", f"oci:{gz}:bench"])
    run(["skopeo", "copy", "-q", *tls, f"oci:{gz}:bench", f"docker://{reg_a.host}/bench:1"])
    shutil.rmtree(gz)


def raw_manifest(host, repo, ref):
    return json.loads(run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                           f"docker://{host}/{repo}:{ref}"]).stdout)


def check_output(case, man_src, man_out, secret_layer):
    """What is wrong with the converted manifest, or None: one layer more
    than the source; in case a every layer but the secret one kept."""
    src = [l["digest"] for l in man_src["layers"]]
    out = [l["digest"] for l in man_out["layers"]]
    if len(out) != len(src) + 1:
        return f"{len(out)} layers, expected {len(src) + 1}"
    if case.startswith("a"):
        for i, d in enumerate(src):
            kept = out[i] == d
            if kept == (i == secret_layer):
                return f"layer {i} {'kept' if kept else 'rewritten'}"
    elif case.startswith("b") and any(o == s for o, s in zip(out, src)):
        return "a layer was passed through although everything is encrypted"
    return None


def debug_phases(cmd):
    """Runs cmd (with --debug) and returns (wall s, first request to B s,
    [finished blob upload times s]) from the timestamps of its debug lines."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
    first_b, done, tail = None, [], []

    def reader():
        nonlocal first_b
        for line in p.stderr:
            t = time.monotonic() - t0
            tail.append(line)
            del tail[:-20]
            # pass 1 only GETs from A; pass 2 starts with a HEAD (pass
            # through) or a POST (rewrite) of a blob on B
            if first_b is None and ("> HEAD " in line or "> POST " in line) and "/blobs/" in line:
                first_b = t
            # the PUT that closes an upload comes after its data
            if "> PUT " in line and "/blobs/uploads/" in line:
                done.append(t)

    th = threading.Thread(target=reader)
    th.start()
    rc = p.wait()
    th.join()
    wall = time.monotonic() - t0
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}):\n{''.join(tail)}")
    return wall, first_b, done


def shield_speed(build, rounds=3):
    """(shield encrypt MB/s, openssl aes-256-gcm MB/s), one core each, the
    best of `rounds` alternating runs (other load on the machine only ever
    slows a run down); None where a figure is missing."""
    driver = os.path.join(build, "bench", "shield_driver")
    taskset = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    enc = ossl = None
    for _ in range(rounds):
        if os.access(driver, os.X_OK):
            p = run([*taskset, driver, os.environ.get("SHIELD_MIB", "256")], check=False)
            for line in p.stdout.splitlines():
                if line.startswith("encrypt"):  # two lines: cold and warm
                    enc = max(enc or 0, float(line.split("MB/s")[0].split()[-1]))
        p = run([*taskset, "openssl", "speed", "-evp", "aes-256-gcm", "-bytes", "65536", "-seconds", "2"],
                check=False)
        for line in p.stdout.splitlines():
            f = line.split()
            if f and f[0].lower() == "aes-256-gcm" and len(f) >= 2:
                # openssl prints 1000s of bytes per second
                ossl = max(ossl or 0, float(f[1].rstrip("k")) / 1000)
    return enc, ossl


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("REPEAT", "3")))
    ap.add_argument("--size-mib", type=int, default=int(os.environ.get("SIZE_MIB", "1280")))
    ap.add_argument("--layers", type=int, default=int(os.environ.get("LAYERS", "5")))
    ap.add_argument("--secret-pct", type=float, default=float(os.environ.get("SECRET_PCT", "10")))
    ap.add_argument("--no-phases", action="store_true", help="skip copy, dry-run and --debug runs")
    ap.add_argument("--baseline", metavar="BUILD_DIR",
                    help="also run the conversions with this build's sconify, interleaved with the "
                         "others, as 'base a gzip' etc. (a before/after under the same load)")
    args = ap.parse_args()
    for tool in (registryenv.REGISTRY_BIN, "skopeo", "openssl"):
        if not shutil.which(tool):
            raise SystemExit(f"image_bench: {tool} is not installed")
    if not os.access("/usr/bin/time", os.X_OK):
        raise SystemExit("image_bench: GNU time (/usr/bin/time) is not installed")
    sconify = os.path.join(args.build, "cmd", "sconify", "sconify")
    runtime = os.path.join(args.build, "enclave-runtime", "sconify-runtime")
    for f in (sconify, runtime):
        if not os.access(f, os.X_OK):
            raise SystemExit(f"image_bench: {f} is not built")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="sconify-imgbench-")
    servers = []

    def fresh_registry():
        r = registryenv.Registry(tmp)
        servers.append(r)
        return r

    def drop_registry(r):
        r.stop()
        servers.remove(r)
        shutil.rmtree(r.dir, ignore_errors=True)

    try:
        t = time.monotonic()
        log(f"generating a {args.size_mib} MiB image ({args.layers} layers, {args.secret_pct:g}% under "
            f"{SECRET_DIR}) in {tmp} ...")
        plain = os.path.join(tmp, "plain")
        secret_layer, secret_mib = write_layout(plain, args.size_mib, args.layers, args.secret_pct)
        reg_a = fresh_registry()
        push_source(sconify, plain, reg_a, tmp)
        shutil.rmtree(plain)
        src = f"docker://{reg_a.host}/bench:1"
        man_src = raw_manifest(reg_a.host, "bench", "1")
        gz_mib = sum(layer["size"] for layer in man_src["layers"]) / (1 << 20)
        log(f"registry A {reg_a.host}: bench:1, {len(man_src['layers'])} gzip layers, {gz_mib:.0f} MiB; "
            f"{SECRET_DIR}: {secret_mib} MiB in layer {secret_layer} ({time.monotonic() - t:.0f} s to make)")

        tls = ["--src-tls-verify=false", "--dest-tls-verify=false"]
        conv = [sconify, "image", "-q", "--mode", "sim", "--runtime", runtime, *tls]
        base_conv = None
        if args.baseline:
            base_conv = [os.path.join(args.baseline, "cmd", "sconify", "sconify"), *conv[1:]]
        regions = {"a": ["--dir", SECRET_DIR], "b": ["--dir", "/"]}
        comp = {"gzip": [], "zstd": ["--dest-compress", "zstd"]}

        def cmd(case, dst):
            if case == "skopeo":
                return ["skopeo", "copy", "-q", *tls, src, dst]
            if case == "copy":
                return [sconify, "copy", "-q", *tls, src, dst]
            if case.startswith("dry"):
                return [*conv, "--dry-run", *regions[case[-1]], "--from", src, "--to", dst]
            if case.startswith("base "):
                r, c = case.split()[1:]
                return [*base_conv, *regions[r], *comp[c], "--from", src, "--to", dst]
            r, c = case.split()
            return [*conv, *regions[r], *comp[c], "--from", src, "--to", dst]

        cases = ["skopeo", *GOALS]
        if base_conv:
            cases += [f"base {c}" for c in GOALS]
        extra = [] if args.no_phases else ["copy", "dry a", "dry b"]
        results, bad = {}, []
        for rep in range(args.repeat):
            order = cases + extra if rep % 2 == 0 else (cases + extra)[::-1]
            for case in order:
                reg_b = None if case.startswith("dry") else fresh_registry()
                dst = f"docker://{reg_b.host if reg_b else '127.0.0.1:1'}/bench:1"
                secs, kib = measure(cmd(case, dst), tmp)
                results.setdefault(case, []).append((secs, kib))
                if case in GOALS or case.startswith("base "):
                    why = check_output(case.removeprefix("base "), man_src, raw_manifest(reg_b.host, "bench", "1"), secret_layer)
                    if why:
                        bad.append(f"{case} #{rep + 1}: {why}")
                elif reg_b and manifest_digest(reg_b.host, "bench", "1") != manifest_digest(
                        reg_a.host, "bench", "1"):
                    bad.append(f"{case} #{rep + 1}: B does not serve the source's manifest")
                log(f"  #{rep + 1} {case:12} {secs:7.2f} s {kib / 1024:7.1f} MiB")
                if reg_b:
                    drop_registry(reg_b)

        phases = {}
        if not args.no_phases:
            for case in GOALS:
                reg_b = fresh_registry()
                dst = f"docker://{reg_b.host}/bench:1"
                c = cmd(case, dst)
                phases[case] = debug_phases([*c[:2], "--debug", *c[2:]])
                drop_registry(reg_b)
                log(f"  phases {case}: {phases[case][0]:.2f} s")

        log("shield and openssl throughput ...")
        enc, ossl = shield_speed(args.build)

        print(f"\nimage: {args.size_mib} MiB in {args.layers} layers, {gz_mib:.0f} MiB gzip; {SECRET_DIR} "
              f"{secret_mib} MiB in layer {secret_layer}; {os.cpu_count()} cores; median of {args.repeat} "
              f"runs; peak RSS is the largest of the runs")
        print(f"{'case':12} {'wall s':>8} {'peak RSS MiB':>13} {'x skopeo':>9} {'goal':>6}")
        med = {}
        for case in cases + extra:
            runs = results[case]
            med[case] = (statistics.median(s for s, _ in runs), max(k for _, k in runs) / 1024)
        base = med["skopeo"][0]
        for case in cases + extra:
            s, m = med[case]
            goal = f"{GOALS[case]:.1f}x" if case in GOALS else ""
            ratio = s / base if base > 0 else float("inf")
            print(f"{case:12} {s:8.2f} {m:13.1f} {ratio:8.2f}x {goal:>6}")
        print()
        for case, goal in GOALS.items():
            s, m = med[case]
            ratio = s / base if base > 0 else float("inf")
            print(f"{case:8} sconify/skopeo wall {ratio:5.2f}x (goal <= {goal:.1f}x: "
                  f"{'met' if ratio <= goal else 'NOT met'}); peak RSS {m:.1f} MiB "
                  f"(goal < {RSS_GOAL_MIB} MiB: {'met' if m < RSS_GOAL_MIB else 'NOT met'})")
        if phases:
            print("\nphases (one --debug run each; pass 1 ends at the first blob request to B):")
            print(f"{'case':8} {'wall s':>8} {'pass 1 s':>9} {'pass 2 s':>9}  blob uploads done at (s)")
            for case, (wall, first_b, done) in phases.items():
                p1 = f"{first_b:9.2f}" if first_b is not None else f"{'?':>9}"
                p2 = f"{wall - first_b:9.2f}" if first_b is not None else f"{'?':>9}"
                print(f"{case:8} {wall:8.2f} {p1} {p2}  {' '.join(f'{d:.1f}' for d in done)}")
        print()
        if enc and ossl:
            met = "met" if enc / ossl >= ENCRYPT_GOAL else "NOT met"
            print(f"encryption, one core, best of 3: shield {enc:.1f} MB/s, openssl aes-256-gcm {ossl:.1f} MB/s: "
                  f"{enc / ossl:.2f}x (goal >= {ENCRYPT_GOAL:.2f}x: {met})")
        else:
            print(f"encryption, one core: shield {enc or 'n/a'} MB/s, openssl aes-256-gcm {ossl or 'n/a'} MB/s")
        for b in bad:
            print(f"WRONG RESULT: {b}")
        return 1 if bad else 0
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
