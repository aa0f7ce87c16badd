# SPDX-License-Identifier: Apache-2.0
"""bench/cas.sh: sconify-cas attestation throughput and latency (issue 6,
deliverable 7). Starts the CAS (release build) with --allow-sim, creates a sim
session, then CLIENTS processes each doing challenge + attest for SECONDS:
attestations/s, p50, p99, errors, the CAS's peak RSS and CPU, the clients'
own CPU (they share the 2 cores with the CAS), and the CAS's group commit
(transactions, writes per transaction, time per transaction; from its
SCONIFY_CAS_STATS line at exit). Two client kinds: keep-alive (challenge and
attest on one connection, reused for the next attestation) and a new TLS
connection per attestation (challenge + attest on it, then closed): a runtime
attests once at start, so the second is the realistic case. Then the same
while slowhttptest holds SLOW slow connections: once with the default
per-address cap (32, which turns most of them away) and once with the cap
raised so that they fill the global cap and only the eviction of idle
connections lets real clients in. The real clients connect from 127.0.0.2,
slowhttptest from 127.0.0.1. Prints numbers next to the goals; asserts nothing."""

import argparse
import base64
import hashlib
import http.client
import json
import multiprocessing as mp
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

MEAS = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
POLICY = f"""name: bench
version: "0.3"
services:
  - name: app
    image_name: img
    command: [/bin/app]
    measurements: [{MEAS}]
images:
  - name: img
secrets:
  - name: pw
    kind: ascii
    size: 20
security:
  attestation:
    mode: sim
"""


def ctx(cert=None):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    if cert:
        c.load_cert_chain(*cert)
    return c


def connect(port, source="127.0.0.2", cert=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    # As libcurl does: without it, http.client's request line and headers and
    # its body leave in two writes and the body waits for the CAS's delayed
    # ACK (40 ms an attestation, measuring the client, not the CAS).
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # A context of our own: HTTPSConnection's default one loads the system's
    # CA store, about 40 ms of client CPU a connection.
    cx = ctx(cert)
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=cx)
    c.sock = cx.wrap_socket(raw)
    return c


def worker(port, seconds, out, fresh=False):
    lat, errors, n = [], 0, 0
    c = None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            if fresh and c is not None:
                c.close()
                c = None
            if c is None:
                c = connect(port)
            c.request("POST", "/v1/attest/challenge")
            r = c.getresponse()
            ch = base64.b64decode(json.loads(r.read())["challenge"])
            priv = x25519.X25519PrivateKey.generate()
            pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            body = json.dumps({"challenge": base64.b64encode(ch).decode(), "config_id": "bench/app",
                               "provider": "sim",
                               "evidence": {"measurement": MEAS,
                                            "report_data": hashlib.sha256(ch + pub).hexdigest()},
                               "public_key": base64.b64encode(pub).decode()})
            c.request("POST", "/v1/attest", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                errors += 1
                c.close()
                c = None
                continue
        except (OSError, ssl.SSLError, http.client.HTTPException, ValueError, KeyError):
            errors += 1
            if c:
                c.close()
            c = None
            continue
        lat.append(time.monotonic() - t0)
        n += 1
    out.put((lat, errors))


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_clients(port, clients, seconds, fresh=False, cas_pid=None):
    q = mp.Queue()
    before = os.times()
    cas_before = cpu_s(cas_pid) if cas_pid else 0
    procs = [mp.Process(target=worker, args=(port, seconds, q, fresh)) for _ in range(clients)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.monotonic() - t0
    after = os.times()
    cas_cpu = (cpu_s(cas_pid) - cas_before) / wall if cas_pid else float("nan")
    lat = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
    return {"n": len(lat), "rate": len(lat) / seconds, "p50": pct(0.5), "p99": pct(0.99), "errors": errors,
            "client_cpu": cpu / wall, "cas_cpu": cas_cpu}


def rss_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def start_cas(cas, data, *extra):
    p = subprocess.Popen([cas, "serve", "--listen", "127.0.0.1:0", "--data", data, "--allow-sim", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, SCONIFY_CAS_STATS="1"))
    p.stdout.readline()
    port = int(p.stdout.readline().decode().rsplit(":", 1)[1])
    return p, port


def create_session(port, tmp):
    key, crt = os.path.join(tmp, "c.key"), os.path.join(tmp, "c.crt")
    if not os.path.exists(crt):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", crt, "-subj", "/CN=bench", "-days", "2"], check=True,
                       capture_output=True)
    c = connect(port, cert=(crt, key))
    c.request("POST", "/v1/sessions", body=POLICY)
    r = c.getresponse()
    r.read()
    c.close()
    if r.status not in (200, 201, 409):
        sys.exit(f"cas_bench: creating the session: {r.status}")


def report(title, r, rss_peak):
    print(f"{title}:")
    print(f"  attestations/s  {r['rate']:8.0f}      goal >= 500 on 2 cores")
    print(f"  p50             {r['p50']:8.1f} ms")
    print(f"  p99             {r['p99']:8.1f} ms   goal < 50 ms")
    print(f"  errors          {r['errors']:8d}      goal 0")
    print(f"  CAS peak RSS    {rss_peak / 1024:8.1f} MiB  goal: bounded")
    print(f"  CAS CPU         {r['cas_cpu']:8.2f} cores")
    print(f"  client CPU      {r['client_cpu']:8.2f} cores (of the machine's {os.cpu_count()}, shared with the CAS)")
    sys.stdout.flush()


def stop_cas(p):
    p.terminate()
    _, err = p.communicate()
    for line in err.decode(errors="replace").splitlines():
        if "stats:" in line:
            print("  group commit   " + line.split("stats:", 1)[1].strip())
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cas", required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--only", type=int, default=0, help="run only the first N scenarios")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="casbench.")
    try:
        data = os.path.join(tmp, "data")
        scenarios = [("no slow clients, keep-alive clients", [], False, False),
                     ("no slow clients, a new TLS connection per attestation", [], False, True),
                     (f"slowhttptest holding {a.slow} slow connections, keep-alive clients", [], True, False),
                     (f"slowhttptest holding {a.slow} slow connections (default per-address cap 32)", [], True, True),
                     (f"slowhttptest holding {a.slow} slow connections (per-address cap 100000: global cap and "
                      "eviction only)", ["--max-connections-per-ip", "100000"], True, True)]
        if a.only:
            scenarios = scenarios[:a.only]
        for title, extra, slow, fresh in scenarios:
            p, port = start_cas(a.cas, data, *extra)
            sl = None
            try:
                create_session(port, tmp)
                if slow:
                    if shutil.which("slowhttptest") is None:
                        print(f"{title}: skipped, slowhttptest is not installed (apt-get install slowhttptest)")
                        continue
                    sl = subprocess.Popen(["slowhttptest", "-H", "-c", str(a.slow), "-r", "500", "-i", "5", "-x", "20",
                                           "-p", "5", "-l", str(int(a.seconds + 20)), "-u",
                                           f"https://127.0.0.1:{port}/v1/health"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(4)
                    print(f"  (CAS threads' open fds while slow clients connect: "
                          f"{len(os.listdir(f'/proc/{p.pid}/fd'))})")
                r = run_clients(port, a.clients, a.seconds, fresh, p.pid)
                report(title, r, rss_kib(p.pid, "VmHWM:"))
            finally:
                if sl:
                    sl.terminate()
                    sl.wait()
                stop_cas(p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
