# SPDX-License-Identifier: Apache-2.0
"""Driver of bench/serve.sh: see there. Numbers, never assertions."""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import imagebuild as ib  # noqa: E402
from registryenv import Registry, free_port  # noqa: E402

TOKEN = "bench-token-" + os.urandom(8).hex()
WRK_SCRIPT = r"""
-- setup runs in the main state; `tid' is then a global of each thread's own
-- state, so the threads' digests never collide.
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local counter = 0
request = function()
  counter = counter + 1
  local digest = string.format("sha256:%08x%056d", tid, counter)
  local body = '{"events":[{"id":"' .. counter .. '","timestamp":"2026-11-25T12:00:00Z","action":"push",' ..
    '"target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"' .. digest ..
    '","size":1234,"length":1234,"repository":"apps/bench","url":"http://127.0.0.1:5000/v2/apps/bench/manifests/' ..
    digest .. '","tag":"v' .. counter .. '"},"request":{"id":"r","addr":"127.0.0.1:1","host":"127.0.0.1:5000",' ..
    '"method":"PUT","useragent":"skopeo/1.9.3"},"actor":{},"source":{"addr":"x","instanceID":"i"}}]}'
  return wrk.format("POST", "/v1/events/distribution", {["Authorization"] = "Bearer @TOKEN@",
    ["Content-Type"] = "application/vnd.docker.distribution.events.v2+json"}, body)
end
"""


def config(dir, port, workers, key=None, password_file=None):
    # The queue cap well above what the run queues: every answer a real accept.
    lines = [f"listen: 127.0.0.1:{port}", f"state_dir: {os.path.join(dir, 'state')}", f"workers: {workers}",
             "limits: {queue: 10000000}",
             "auth:", f"  distribution: {{bearer: \"{TOKEN}\"}}",
             "rules:", "  - source: {registry: \"127.0.0.1:*\", repository: \"apps/*\", tag: \"*\"}",
             "    destination: \"{registry}/confidential/{repository}:{tag}\"",
             "    dir: [/app]", "    mode: sim", "    tls_verify: false"]
    if key:
        lines += [f"    sign_key: {key}", f"    sign_password_file: {password_file}"]
    path = os.path.join(dir, "serve.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start(args, cfg, dir, cpu=None):
    env = dict(os.environ)
    env["SCONIFY_RUNTIME_DIR"] = os.path.join(dir, "runtimes")
    os.makedirs(env["SCONIFY_RUNTIME_DIR"], exist_ok=True)
    link = os.path.join(env["SCONIFY_RUNTIME_DIR"], "sconify-runtime-amd64")
    if not os.path.exists(link):
        os.symlink(os.path.abspath(args.runtime), link)
    cmd = [args.sconify, "serve", "--config", cfg]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    log = open(os.path.join(dir, "serve.log"), "ab")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env)
    line = p.stdout.readline().decode()
    if not line.startswith("listening:"):
        raise SystemExit(f"serve did not start: {line!r}")
    return p


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(120)


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def events_per_second(args, dir):
    port = free_port()
    cfg = config(dir, port, workers=0)
    p = start(args, cfg, dir, cpu=0)
    script = os.path.join(dir, "events.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT.replace("@TOKEN@", TOKEN))
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t2", f"-c{args.conns}", f"-d{args.seconds}s", "--latency",
                          "-s", script, f"http://127.0.0.1:{port}"], capture_output=True, text=True).stdout
    if "Requests/sec" not in out or "99%" not in out:
        stop(p)
        raise SystemExit(f"wrk failed:\n{out}")
    rss = peak_rss_mib(p.pid)
    stop(p)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))
    p99 = ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    jobs = subprocess.run(["sqlite3", os.path.join(dir, "state", "queue.db"), "select count(*) from jobs"],
                          capture_output=True, text=True).stdout.strip() if shutil.which("sqlite3") else "?"
    print(f"events accepted: {rate:.0f}/s with {args.conns} connections for {args.seconds} s "
          f"(goal >= 2000/s: {rate / 2000:.2f}x of the goal)")
    print(f"  latency p50 {p50:.2f} ms, p99 {p99:.2f} ms (goal p99 < 20 ms)")
    print(f"  non-2xx answers: {non2xx.group(1) if non2xx else 0}; socket errors: "
          f"{errors.group(1) if errors else 'none'}; jobs on disk: {jobs}")
    print(f"  service peak RSS: {rss:.1f} MiB")


def twenty_images(args, dir):
    key = os.path.join(dir, "cosign")
    subprocess.run([args.sconify, "keygen", "--prefix", key], env={**os.environ, "COSIGN_PASSWORD": "bench"},
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    pw = os.path.join(dir, "pw")
    with open(os.open(pw, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write("bench\n")
    port = free_port()
    cfg = config(dir, port, workers=2, key=key + ".key", password_file=pw)
    p = start(args, cfg, dir)
    extra = "\n".join(["notifications:", "  endpoints:", "    - name: sconify",
                       f"      url: http://127.0.0.1:{port}/v1/events/distribution",
                       "      headers:", f"        Authorization: [\"Bearer {TOKEN}\"]",
                       "      timeout: 5s", "      threshold: 3", "      backoff: 1s"]) + "\n"
    reg = Registry(dir, extra_yaml=extra)
    try:
        busybox = shutil.which("busybox")
        refs = []
        for i in range(args.images):
            entries = ib.with_dirs([ib.Entry("app/message.txt", data=f"image {i}\n".encode()),
                                    ib.Entry("app/data.bin", data=os.urandom(4 << 20)),
                                    ib.host_file(busybox, "bin/busybox", 0o755)])
            refs.append(ib.write_image(os.path.join(dir, f"img{i}"), [entries], entrypoint=["/bin/busybox"]))
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.images) as ex:
            list(ex.map(lambda a: subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", a[1],
                                                   f"docker://{reg.host}/apps/img{a[0]}:v1"], check=True),
                        enumerate(refs)))
        pushed = time.monotonic() - t0
        import http.client
        while True:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/v1/jobs?limit=1000")
            jobs = json.loads(c.getresponse().read())["jobs"]
            c.close()
            done = [j for j in jobs if j["state"] in ("done", "failed")]
            if len(done) >= args.images:
                break
            if time.monotonic() - t0 > 1800:
                raise SystemExit("20 images: not converted within 30 minutes")
            time.sleep(0.2)
        total = time.monotonic() - t0
        failed = sum(j["state"] == "failed" for j in jobs)
        rss = peak_rss_mib(p.pid)
        print(f"{args.images} images pushed at once (4 MiB encrypted each, signed): pushes took {pushed:.1f} s, "
              f"all converted {total:.1f} s after the first push ({total / args.images:.2f} s an image, 2 workers); "
              f"failed: {failed}; service peak RSS {rss:.1f} MiB")
    finally:
        stop(p)
        reg.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sconify", required=True)
    ap.add_argument("--runtime", required=True)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--images", type=int, default=20)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sconify-serve-bench-") as d:
        os.makedirs(os.path.join(d, "a"))
        os.makedirs(os.path.join(d, "b"))
        events_per_second(a, os.path.join(d, "a"))
        if a.images:
            twenty_images(a, os.path.join(d, "b"))


if __name__ == "__main__":
    main()
