# SPDX-License-Identifier: Apache-2.0
"""`sconify serve` (issue 8) against the real CNCF registry: docker-registry
on loopback with `notifications.endpoints` pointing at the service, images
pushed with skopeo, conversions checked with skopeo and `sconify verify`.

Covered: a push produces a converted, signed image in the destination
repository and the service's own pushes start nothing; duplicate deliveries
convert once; `kill -9` of the service during a conversion, then a restart:
the job completes and the destination holds one conversion; SIGTERM requeues
a running job; refused deliveries (bad secret, bad HMAC, replayed delivery,
oversized, malformed) queue nothing; Harbor and GitHub deliveries; the
operations endpoints and JSON logs; `--check` with line numbers."""

import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import time

import harness
import imagebuild as ib
from registryenv import Registry, free_port

RUNTIME = os.environ.get("SCONIFY_RUNTIME_BIN",
                         os.path.join(harness.BUILD_ROOT, "enclave-runtime", "sconify-runtime"))
TOKEN = "distribution-token-" + os.urandom(8).hex()
HMAC_SECRET = "github-secret-" + os.urandom(8).hex()
HARBOR_TOKEN = "harbor-token-" + os.urandom(8).hex()
PASSWORD = "serve-key-pass"
SKOPEO_TLS = ("--dest-tls-verify=false",)
WAIT = 240  # seconds a conversion may take under the sanitizers


def http_request(addr, method, path, body=None, headers=None, timeout=30):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, data, dict(r.getheaders())
    finally:
        conn.close()


def distribution_envelope(registry, repository, tag, digest, ua="skopeo/1.9.3", event_id=None):
    return json.dumps({"events": [{
        "id": event_id or os.urandom(8).hex(), "timestamp": "2026-11-25T12:00:00Z", "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1234,
                   "length": 1234, "repository": repository,
                   "url": f"http://{registry}/v2/{repository}/manifests/{digest}", "tag": tag},
        "request": {"id": "r1", "addr": "127.0.0.1:1", "host": registry, "method": "PUT", "useragent": ua},
        "actor": {}, "source": {"addr": "x:5000", "instanceID": "i"}}]}).encode()


class Serve:
    """`sconify serve --config` on a fixed loopback port, log in dir/serve.log."""

    def __init__(self, dir, config_text, port=None, log_format="text", grace=5):
        self.dir = dir
        self.port = port or free_port()
        self.config = os.path.join(dir, "serve.yaml")
        with open(self.config, "w") as f:
            f.write(config_text.replace("@PORT@", str(self.port)))
        self.log_file = os.path.join(dir, "serve.log")
        self.log_format = log_format
        self.grace = grace
        self.proc = None
        self.start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        env = dict(os.environ)
        env["SCONIFY_RUNTIME_DIR"] = os.path.join(self.dir, "runtimes")
        os.makedirs(env["SCONIFY_RUNTIME_DIR"], exist_ok=True)
        link = os.path.join(env["SCONIFY_RUNTIME_DIR"], "sconify-runtime-amd64")
        if not os.path.exists(link):
            os.symlink(RUNTIME, link)
        env.pop("COSIGN_PASSWORD", None)
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen([harness.SCONIFY, "serve", "--config", self.config, "--log-format",
                                      self.log_format, "--grace", str(self.grace)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env)
        log.close()
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening: "):
            self.proc.wait(10)
            raise AssertionError(f"sconify serve did not start: {line!r}\n{self.log()}")

    def log(self):
        with open(self.log_file, errors="replace") as f:
            return f.read()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.proc.stdout.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()

    def post(self, source, body, headers=None):
        headers = dict(headers or {})
        if source == "distribution" and "Content-Type" not in headers:
            headers["Content-Type"] = "application/vnd.docker.distribution.events.v2+json"
        return http_request(self.addr, "POST", f"/v1/events/{source}", body, headers)

    def jobs(self, **query):
        q = "&".join(f"{k}={v}" for k, v in query.items())
        status, data, _ = http_request(self.addr, "GET", "/v1/jobs" + (f"?{q}" if q else ""))
        assert status == 200, data
        return json.loads(data)["jobs"]

    def job(self, id):
        status, data, _ = http_request(self.addr, "GET", f"/v1/jobs/{id}")
        assert status == 200, data
        return json.loads(data)

    def metrics(self):
        status, data, headers = http_request(self.addr, "GET", "/metrics")
        assert status == 200, data
        return data.decode(), headers

    def wait_job(self, id, states=("done", "failed"), timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            j = self.job(id)
            if j["state"] in states:
                return j
            time.sleep(0.1)
        raise AssertionError(f"job {id} not {states} within {timeout} s: {self.job(id)}\n{self.log()}")


def metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{re.escape(name)}{{{re.escape(want)}}} (\S+)$" if labels else rf"^{re.escape(name)} (\S+)$",
                  text, re.M)
    return float(m.group(1)) if m else None


class ServeTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("skopeo", "docker-registry"):
            if shutil.which(tool) is None:
                raise AssertionError(f"{tool} is not installed (scripts/deps.sh test)")
        if not os.path.exists(RUNTIME):
            raise AssertionError(f"no runtime at {RUNTIME}")

    def setUp(self):
        super().setUp()
        self.servers = []
        self.registries = []
        self.key = os.path.join(self.tmp, "cosign")
        p = subprocess.run([harness.SCONIFY, "keygen", "--prefix", self.key], stdin=subprocess.DEVNULL,
                           capture_output=True, env={**os.environ, "COSIGN_PASSWORD": PASSWORD})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.password_file = os.path.join(self.tmp, "cosign.password")
        with open(os.open(self.password_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(PASSWORD + "\n")
        self.hmac_file = os.path.join(self.tmp, "github.secret")
        with open(os.open(self.hmac_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(HMAC_SECRET + "\n")

    def tearDown(self):
        for s in self.servers:
            s.stop()
        for r in self.registries:
            r.stop()
        super().tearDown()

    # ---- set-up helpers ----

    def config(self, repository="apps/*", sign=True, extra_rule="", limits=""):
        rule = [f'  - name: confidential',
                f'    source: {{registry: "*", repository: "{repository}", tag: "*"}}',
                '    destination: "{registry}/confidential/{repository}:{tag}"',
                '    dir: [/app]',
                '    mode: sim',
                '    tls_verify: false']
        if sign:
            rule += [f'    sign_key: {self.key}.key', f'    sign_password_file: {self.password_file}']
        return "\n".join([
            "listen: 127.0.0.1:@PORT@",
            f"state_dir: {os.path.join(self.tmp, 'state')}",
            "workers: 2",
            "retry: {attempts: 3, backoff: 1}",
            limits,
            "auth:",
            f"  distribution: {{bearer: \"{TOKEN}\"}}",
            f"  harbor: {{header: {{name: Authorization, value: \"{HARBOR_TOKEN}\"}}}}",
            f"  github: {{hmac_secret_file: {self.hmac_file}}}",
            "rules:", *rule, extra_rule]) + "\n"

    def serve(self, config, **kw):
        s = Serve(self.tmp, config, **kw)
        self.servers.append(s)
        return s

    def registry(self, notify=None):
        extra = ""
        if notify:
            extra = "\n".join([
                "notifications:",
                "  endpoints:",
                "    - name: sconify",
                f"      url: http://{notify.addr}/v1/events/distribution",
                "      headers:",
                f"        Authorization: [\"Bearer {TOKEN}\"]",
                "      timeout: 5s",
                "      threshold: 3",
                "      backoff: 1s"]) + "\n"
        r = Registry(self.tmp, extra_yaml=extra)
        self.registries.append(r)
        return r

    def source_image(self, name="src", payload=b"", message=b"secret message\n"):
        entries = ib.with_dirs([ib.Entry("app/message.txt", data=message),
                                ib.Entry("app/data.bin", data=payload),
                                ib.host_file(shutil.which("busybox"), "bin/busybox", 0o755)])
        return ib.write_image(os.path.join(self.tmp, name), [entries], entrypoint=["/bin/busybox", "cat"],
                              cmd=["/app/message.txt"])

    def push(self, layout_ref, reg, repo_tag):
        p = harness.run(["skopeo", "copy", "--quiet", *SKOPEO_TLS, layout_ref, f"docker://{reg.host}/{repo_tag}"])
        self.assertEqual(p.returncode, 0, p.stderr_text)
        p = harness.run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{reg.host}/{repo_tag}"],
                        check=True)
        return "sha256:" + hashlib.sha256(p.stdout).hexdigest()

    def wait_jobs(self, serve, n, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = serve.jobs()
            if len(jobs) >= n:
                return jobs
            time.sleep(0.1)
        raise AssertionError(f"fewer than {n} jobs within {timeout} s: {serve.jobs()}\n{serve.log()}")

    def tags(self, reg, repo):
        status, data, _ = http_request(reg.host, "GET", f"/v2/{repo}/tags/list")
        return sorted(json.loads(data).get("tags") or []) if status == 200 else []

    def check_converted(self, reg, repo_tag, source_digest, signed=True):
        p = harness.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{reg.host}/{repo_tag}"], check=True)
        info = json.loads(p.stdout)
        self.assertEqual(info["Labels"]["org.opencontainers.image.base.digest"], source_digest)
        self.assertEqual(info["Env"] and any(e.startswith("SCONE_MODE=") for e in info["Env"]), True)
        if signed:
            v = harness.run([harness.SCONIFY, "verify", "--tls-verify=false", "--key", self.key + ".pub",
                             f"docker://{reg.host}/{repo_tag}"])
            self.assertEqual(v.returncode, 0, v.stderr_text)
        return info

    # ---- tests ----

    def test_push_produces_a_signed_confidential_image_and_own_pushes_start_nothing(self):
        s = self.serve(self.config())
        reg = self.registry(notify=s)
        digest = self.push(self.source_image(), reg, "apps/web:v1")
        jobs = self.wait_jobs(s, 1)
        j = s.wait_job(jobs[-1]["id"])
        self.assertEqual(j["state"], "done", j)
        self.assertEqual((j["digest"], j["repository"], j["tag"], j["rule"]), (digest, "apps/web", "v1", "confidential"))
        self.check_converted(reg, "confidential/apps/web:v1", digest)
        self.assertIn(j["result"]["digest"], [d for d in [j["result"]["digest"]]])
        tags = self.tags(reg, "confidential/apps/web")
        self.assertIn("v1", tags)
        self.assertTrue(any(t.endswith(".sig") for t in tags), tags)
        # The registry reports the service's pushes (the image, its
        # signature) too; wait until it has delivered them, then: still one job.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text, _ = s.metrics()
            if (metric(text, "sconify_serve_pushes_total", source="distribution", outcome="self") or 0) >= 2:
                break
            time.sleep(0.2)
        self.assertGreaterEqual(metric(text, "sconify_serve_pushes_total", source="distribution", outcome="self"), 2,
                                text)
        self.assertEqual(len(s.jobs()), 1, s.jobs())
        # Harbor and GitHub name no user agent: a delivery naming the
        # service's destination (or a digest it produced) is its own too.
        out = j["result"]["digest"]
        body = json.dumps({"type": "PUSH_ARTIFACT", "occur_at": 1764072000, "operator": "admin", "event_data": {
            "resources": [{"digest": out, "tag": "v1", "resource_url": f"{reg.host}/confidential/apps/web:v1"}],
            "repository": {"name": "web", "namespace": "confidential", "repo_full_name": "confidential/apps/web",
                           "repo_type": "private"}}}).encode()
        status, data, _ = s.post("harbor", body, {"Authorization": HARBOR_TOKEN})
        self.assertEqual(status, 202, data)
        self.assertEqual((json.loads(data)["self"], json.loads(data)["queued"]), (1, 0), data)
        # A rule whose output its own source pattern would match is refused
        # at load: Harbor and GitHub deliveries carry no user agent to tell.
        loop = os.path.join(self.tmp, "loop.yaml")
        with open(loop, "w") as f:
            f.write(self.config(repository="**").replace("@PORT@", "8080"))
        p = harness.sconify("serve", "--check", loop)
        self.assertEqual(p.returncode, 1, p.stdout_text)
        self.assertIn("convert its own output", p.stderr_text)

    def test_a_planted_destination_image_is_never_signed(self):
        # Someone who can push to the destination plants an image there,
        # labelled as the conversion of a digest that a delivery then names.
        # The conversion of that (missing) source fails and is retried; no
        # run may take the planted image for its own and sign it.
        s = self.serve(self.config())
        reg = self.registry()
        fake = "sha256:" + "ef" * 32
        planted = ib.write_image(os.path.join(self.tmp, "planted"),
                                 [ib.with_dirs([ib.Entry("app/evil", data=b"evil\n")])], entrypoint=["/app/evil"],
                                 labels={"org.opencontainers.image.base.digest": fake})
        self.push(planted, reg, "confidential/apps/web:v1")
        status, data, _ = s.post("distribution", distribution_envelope(reg.host, "apps/web", "v1", fake),
                                 {"Authorization": f"Bearer {TOKEN}"})
        self.assertEqual(status, 202, data)
        j = s.wait_job(json.loads(data)["jobs"][0], states=("failed",))
        self.assertEqual(j["attempts"], 3)
        self.assertFalse([t for t in self.tags(reg, "confidential/apps/web") if t.endswith(".sig")])
        self.assertNotIn("job resumed", s.log())

    def test_an_already_confidential_image_is_not_converted_again(self):
        s = self.serve(self.config(sign=False))
        reg = self.registry()
        digest = self.push(self.source_image(), reg, "apps/once:v1")
        status, data, _ = s.post("distribution", distribution_envelope(reg.host, "apps/once", "v1", digest),
                                 {"Authorization": f"Bearer {TOKEN}"})
        j = s.wait_job(json.loads(data)["jobs"][0])
        self.assertEqual(j["state"], "done", j)
        # Its output copied back under apps/ (by someone else: skopeo's user
        # agent) is a confidential image: the conversion refuses it.
        harness.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                     f"docker://{reg.host}/confidential/apps/once:v1", f"docker://{reg.host}/apps/again:v1"],
                    check=True)
        p = harness.run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{reg.host}/apps/again:v1"],
                        check=True)
        again = "sha256:" + hashlib.sha256(p.stdout).hexdigest()
        status, data, _ = s.post("distribution", distribution_envelope(reg.host, "apps/again", "v1", again),
                                 {"Authorization": f"Bearer {TOKEN}"})
        r = json.loads(data)
        self.assertEqual((r["self"], r["queued"]), (1, 0), r)  # the digest is one the service produced
        # Whoever converts it anyway is refused: the runtime would wrap itself.
        p = harness.sconify("image", "--from", f"docker://{reg.host}/apps/again:v1", "--to",
                            f"docker://{reg.host}/apps/twice:v1", "--tls-verify=false", "--mode", "sim",
                            "--runtime", RUNTIME)
        self.assertFailsWith(p, ["already a confidential image"])
        self.assertEqual(self.tags(reg, "apps/twice"), [])

    def test_duplicate_deliveries_convert_once(self):
        s = self.serve(self.config())
        reg = self.registry()
        digest = self.push(self.source_image(), reg, "apps/dup:v1")
        body = distribution_envelope(reg.host, "apps/dup", "v1", digest)
        ids = set()
        for i in range(5):
            status, data, _ = s.post("distribution", body, {"Authorization": f"Bearer {TOKEN}",
                                                             "Content-Type": "application/json"})
            self.assertEqual(status, 202, data)
            r = json.loads(data)
            ids.update(r["jobs"])
            self.assertEqual((r["queued"], r["repeats"]), (1, 0) if i == 0 else (0, 1), r)
        self.assertEqual(len(ids), 1)
        j = s.wait_job(ids.pop())
        self.assertEqual(j["state"], "done", j)
        self.assertEqual(j["deliveries"], 5)
        self.assertEqual(j["attempts"], 1)
        # No session template: the destination's name and a hash of it.
        self.assertRegex(j["session"], r"^confidential-apps-dup-v1-[0-9a-f]{16}$")
        # Delivered again after it is done: still that one job, not run again.
        status, data, _ = s.post("distribution", body, {"Authorization": f"Bearer {TOKEN}"})
        self.assertEqual((status, json.loads(data)["queued"]), (202, 0))
        time.sleep(1.5)
        self.assertEqual([(x["id"], x["attempts"], x["state"]) for x in s.jobs()], [(j["id"], 1, "done")])
        self.check_converted(reg, "confidential/apps/dup:v1", digest)

    def test_kill_9_during_conversion_then_restart_completes_the_job_once(self):
        s = self.serve(self.config())
        reg = self.registry(notify=s)
        # A large encrypted file keeps the conversion running long enough to
        # be caught in the middle.
        digest = self.push(self.source_image(payload=os.urandom(96 << 20)), reg, "apps/big:v1")
        deadline = time.monotonic() + WAIT
        caught = None
        while time.monotonic() < deadline and caught is None:
            for j in s.jobs():
                if j["state"] == "running":
                    caught = j
                elif j["state"] in ("done", "failed"):
                    raise AssertionError(f"the conversion ended before it was caught running: {j}")
            time.sleep(0.02)
        self.assertIsNotNone(caught, s.log())
        s.kill9()
        # Its child died with it (PR_SET_PDEATHSIG): nothing converts now.
        time.sleep(0.5)
        ps = harness.run(["pgrep", "-f", f"image --from=docker://{reg.host}/apps/big"])
        self.assertNotEqual(ps.returncode, 0, ps.stdout_text)
        s.start()
        j = s.wait_job(caught["id"])
        self.assertEqual(j["state"], "done", j)
        self.assertGreaterEqual(j["attempts"], 2)
        self.assertEqual(len(s.jobs()), 1)
        self.check_converted(reg, "confidential/apps/big:v1", digest)
        tags = self.tags(reg, "confidential/apps/big")
        self.assertEqual([t for t in tags if not t.endswith(".sig")], ["v1"])
        sigs = [t for t in tags if t.endswith(".sig")]
        self.assertEqual(len(sigs), 1, tags)
        # The tag's manifest is the one the job reports.
        p = harness.run(["skopeo", "inspect", "--tls-verify=false", "--raw",
                         f"docker://{reg.host}/confidential/apps/big:v1"], check=True)
        self.assertEqual("sha256:" + hashlib.sha256(p.stdout).hexdigest(), j["result"]["digest"])

    def test_sigterm_requeues_a_running_job_and_a_restart_finishes_it(self):
        s = self.serve(self.config(sign=False), grace=0)
        reg = self.registry()
        digest = self.push(self.source_image(payload=os.urandom(96 << 20)), reg, "apps/term:v1")
        status, data, _ = s.post("distribution", distribution_envelope(reg.host, "apps/term", "v1", digest),
                                 {"Authorization": f"Bearer {TOKEN}"})
        self.assertEqual(status, 202, data)
        id = json.loads(data)["jobs"][0]
        s.wait_job(id, states=("running", "done", "failed"))
        s.proc.send_signal(signal.SIGTERM)
        self.assertEqual(s.proc.wait(60), 0, s.log())
        s.proc.stdout.close()
        self.assertIn("stopping", s.log())
        s.start()
        j = s.job(id)
        if j["state"] != "done":  # it may have finished before the signal
            self.assertIn("job requeued", s.log())
            j = s.wait_job(id)
        self.assertEqual(j["state"], "done", j)
        self.check_converted(reg, "confidential/apps/term:v1", digest, signed=False)

    def test_refused_deliveries_queue_nothing(self):
        s = self.serve(self.config(limits="limits: {body: 4096}"))
        reg = "127.0.0.1:1"
        digest = "sha256:" + "ab" * 32
        good = distribution_envelope(reg, "apps/x", "v1", digest)
        cases = [
            ("no credentials", "distribution", good, {}, 401),
            ("bad bearer", "distribution", good, {"Authorization": "Bearer wrong"}, 401),
            ("bad harbor header", "harbor", b"{}", {"Authorization": "nope"}, 401),
            ("oversized", "distribution", b'{"events":[' + b" " * 8192 + b"]}",
             {"Authorization": f"Bearer {TOKEN}"}, 413),
            ("not json", "distribution", b"{nope", {"Authorization": f"Bearer {TOKEN}"}, 400),
            ("no events", "distribution", b'{"foo":1}', {"Authorization": f"Bearer {TOKEN}"}, 400),
            ("bad digest", "distribution", good.replace(digest.encode(), b"sha256:xyz"),
             {"Authorization": f"Bearer {TOKEN}"}, 400),
        ]
        gh_body = json.dumps({"action": "published", "registry_package": {
            "name": "web", "package_type": "CONTAINER", "namespace": "octo", "owner": {"login": "octo"},
            "package_version": {"name": digest, "package_url": "ghcr.io/octo/web:v1",
                                "container_metadata": {"tag": {"name": "v1", "digest": digest}}}}}).encode()
        sig = "sha256=" + hmac.new(HMAC_SECRET.encode(), gh_body, hashlib.sha256).hexdigest()
        cases += [
            ("bad hmac", "github", gh_body, {"X-GitHub-Event": "registry_package", "X-GitHub-Delivery": "d-1",
                                              "X-Hub-Signature-256": "sha256=" + "00" * 32}, 401),
            ("hmac of another body", "github", gh_body + b" ", {"X-GitHub-Event": "registry_package",
                                                                 "X-GitHub-Delivery": "d-1",
                                                                 "X-Hub-Signature-256": sig}, 401),
            ("no signature", "github", gh_body, {"X-GitHub-Event": "registry_package",
                                                  "X-GitHub-Delivery": "d-1"}, 401),
        ]
        for what, source, body, headers, want in cases:
            with self.subTest(what):
                status, data, _ = s.post(source, body, headers)
                self.assertEqual(status, want, data)
                if status != 413:
                    self.assertIn("error", json.loads(data))
                self.assertNotIn(TOKEN, data.decode(errors="replace"))
        self.assertEqual(s.jobs(), [])
        # A correctly signed GitHub delivery is accepted once; its replay is refused.
        h = {"X-GitHub-Event": "registry_package", "X-GitHub-Delivery": "d-2", "X-Hub-Signature-256": sig}
        status, data, _ = s.post("github", gh_body, h)
        self.assertEqual(status, 202, data)
        self.assertEqual(json.loads(data)["queued"], 0)  # ghcr.io/octo/web matches no apps/* rule
        status, data, _ = s.post("github", gh_body, h)
        self.assertEqual(status, 409, data)
        self.assertEqual(s.jobs(), [])
        text, _ = s.metrics()
        self.assertEqual(metric(text, "sconify_serve_events_total", source="distribution", outcome="unauthorized"), 2)
        self.assertEqual(metric(text, "sconify_serve_events_total", source="github", outcome="replayed"), 1)
        self.assertEqual(metric(text, "sconify_serve_events_total", source="distribution", outcome="malformed"), 3)
        log = s.log()
        for secret in (TOKEN, HMAC_SECRET, HARBOR_TOKEN, PASSWORD):
            self.assertNotIn(secret, log)
        # The replay protection survives a restart.
        s.kill9()
        s.start()
        status, data, _ = s.post("github", gh_body, h)
        self.assertEqual(status, 409, data)

    def test_harbor_and_github_deliveries_start_conversions(self):
        extra = "\n".join([
            "  - name: gh",
            "    source: {from: github, registry: \"*\", repository: \"octo/*\"}",
            "    destination: \"{registry}/confidential/{repository}:{tag}\"",
            "    mode: sim",
            "    tls_verify: false"])
        s = self.serve(self.config(sign=False, extra_rule=extra))
        reg = self.registry()
        digest = self.push(self.source_image(), reg, "apps/harbor:v2")
        body = json.dumps({"type": "PUSH_ARTIFACT", "occur_at": 1764072000, "operator": "admin", "event_data": {
            "resources": [{"digest": digest, "tag": "v2", "resource_url": f"{reg.host}/apps/harbor:v2"}],
            "repository": {"date_created": 1764072000, "name": "harbor", "namespace": "apps",
                           "repo_full_name": "apps/harbor", "repo_type": "private"}}}).encode()
        status, data, _ = s.post("harbor", body, {"Authorization": HARBOR_TOKEN, "Content-Type": "application/json"})
        self.assertEqual(status, 202, data)
        j = s.wait_job(json.loads(data)["jobs"][0])
        self.assertEqual((j["state"], j["source"]), ("done", "harbor"), j)
        self.check_converted(reg, "confidential/apps/harbor:v2", digest, signed=False)

        gdigest = self.push(self.source_image(name="gsrc", message=b"gh\n"), reg, "octo/tool:v3")
        gh = json.dumps({"action": "published", "registry_package": {
            "name": "tool", "package_type": "CONTAINER", "namespace": "octo", "owner": {"login": "octo"},
            "package_version": {"name": gdigest, "package_url": f"{reg.host}/octo/tool:v3",
                                "container_metadata": {"tag": {"name": "v3", "digest": gdigest}}}}}).encode()
        sig = "sha256=" + hmac.new(HMAC_SECRET.encode(), gh, hashlib.sha256).hexdigest()
        status, data, _ = s.post("github", gh, {"X-GitHub-Event": "registry_package", "X-GitHub-Delivery": "g-1",
                                                "X-Hub-Signature-256": sig})
        self.assertEqual(status, 202, data)
        j = s.wait_job(json.loads(data)["jobs"][0])
        self.assertEqual((j["state"], j["rule"]), ("done", "gh"), j)
        self.check_converted(reg, "confidential/octo/tool:v3", gdigest, signed=False)

    def test_failing_job_retries_with_backoff_then_stays_failed(self):
        s = self.serve(self.config(sign=False))
        # Nothing listens at this registry: every attempt fails.
        port = free_port()
        body = distribution_envelope(f"127.0.0.1:{port}", "apps/gone", "v1", "sha256:" + "cd" * 32)
        status, data, _ = s.post("distribution", body, {"Authorization": f"Bearer {TOKEN}"})
        self.assertEqual(status, 202, data)
        j = s.wait_job(json.loads(data)["jobs"][0], states=("failed",))
        self.assertEqual(j["attempts"], 3)
        self.assertTrue(j["last_error"], j)
        self.assertNotIn("result", j)
        text, _ = s.metrics()
        self.assertEqual(metric(text, "sconify_serve_job_runs_total", outcome="retry"), 2)
        self.assertEqual(metric(text, "sconify_serve_job_runs_total", outcome="failed"), 1)
        self.assertEqual(metric(text, "sconify_serve_queue_jobs", state="failed"), 1)

    def test_queue_cap_answers_503_and_a_second_service_is_refused(self):
        s = self.serve(self.config(limits="limits: {queue: 1}").replace("workers: 2", "workers: 0"))
        h = {"Authorization": f"Bearer {TOKEN}"}
        status, data, _ = s.post("distribution", distribution_envelope("127.0.0.1:1", "apps/a", "v1", "sha256:" + "a1" * 32), h)
        self.assertEqual((status, json.loads(data)["queued"]), (202, 1), data)
        status, data, headers = s.post("distribution",
                                       distribution_envelope("127.0.0.1:1", "apps/b", "v1", "sha256:" + "b2" * 32), h)
        self.assertEqual(status, 503, data)
        self.assertIn("queue is full", json.loads(data)["error"])
        self.assertEqual(headers.get("Retry-After"), "5")
        self.assertEqual(len(s.jobs()), 1)
        # The state directory is this service's: a second one is refused.
        p = harness.run([harness.SCONIFY, "serve", "--config", s.config], timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout_text)
        self.assertIn("in use by another sconify serve", p.stderr_text)

    def test_a_run_past_limits_job_is_stopped_and_fails(self):
        # A source registry that accepts connections and never answers.
        import socket
        tarpit = socket.socket()
        tarpit.bind(("127.0.0.1", 0))
        tarpit.listen(16)
        port = tarpit.getsockname()[1]
        try:
            cfg = self.config(sign=False, limits="limits: {job: 10}").replace("attempts: 3", "attempts: 1")
            s = self.serve(cfg)
            status, data, _ = s.post("distribution", distribution_envelope(f"127.0.0.1:{port}", "apps/slow", "v1",
                                                                           "sha256:" + "c3" * 32),
                                     {"Authorization": f"Bearer {TOKEN}"})
            self.assertEqual(status, 202, data)
            j = s.wait_job(json.loads(data)["jobs"][0], states=("failed",), timeout=120)
            self.assertIn("took longer than 10 s", j["last_error"])
            ps = harness.run(["pgrep", "-f", f"--from=docker://127.0.0.1:{port}/"])
            self.assertNotEqual(ps.returncode, 0, ps.stdout_text)
        finally:
            tarpit.close()

    def test_operations_endpoints_and_json_logs(self):
        s = self.serve(self.config(), log_format="json")
        status, data, _ = http_request(s.addr, "GET", "/healthz")
        self.assertEqual((status, json.loads(data)["status"]), (200, "ok"))
        text, headers = s.metrics()
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        for name in ("sconify_serve_events_total", "sconify_serve_queue_depth",
                     "sconify_serve_job_duration_seconds_bucket"):
            self.assertIn(f"# TYPE {name.replace('_bucket', '')}", text)
        self.assertEqual(metric(text, "sconify_serve_queue_depth"), 0)
        self.assertEqual(http_request(s.addr, "GET", "/v1/jobs/abc")[0], 400)
        self.assertEqual(http_request(s.addr, "GET", "/v1/jobs/12345")[0], 404)
        self.assertEqual(http_request(s.addr, "GET", "/v1/jobs?state=bogus")[0], 400)
        self.assertEqual(http_request(s.addr, "POST", "/v1/events/gitlab", b"{}")[0], 404)
        self.assertEqual(http_request(s.addr, "GET", "/v1/events/distribution")[0], 405)
        s.post("distribution", b"{}", {"Authorization": "Bearer nope"})
        s.stop()
        lines = [json.loads(l) for l in s.log().splitlines() if l.strip()]
        self.assertTrue(all({"time", "level", "msg"} <= set(l) for l in lines), lines)
        self.assertIn("listening", [l["msg"] for l in lines])
        refused = [l for l in lines if l["msg"] == "delivery refused"]
        self.assertEqual(refused[0]["status"], 401)

    def test_check_validates_and_reports_line_numbers(self):
        good = os.path.join(self.tmp, "good.yaml")
        with open(good, "w") as f:
            f.write(self.config().replace("@PORT@", "8080"))
        p = harness.sconify("serve", "--check", good)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertIn("1 rule", p.stdout_text)
        bad = os.path.join(self.tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write(self.config().replace("@PORT@", "8080").replace("mode: sim", "mode: simm"))
        p = harness.sconify("serve", "--check", bad)
        self.assertEqual(p.returncode, 1)
        line = next(i for i, l in enumerate(open(bad).read().splitlines(), 1) if "simm" in l)
        self.assertIn(f"bad.yaml:{line}:", p.stderr_text)
        self.assertIn("simm", p.stderr_text)


if __name__ == "__main__":
    harness.main()
