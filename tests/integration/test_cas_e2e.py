# SPDX-License-Identifier: Apache-2.0
"""End to end with a CAS (issue 6): a loopback registry (docker-registry) and
sconify-cas; a source image pushed with skopeo, converted registry to registry
by `sconify image --mode sim --dir /app`, its session uploaded to the CAS
(over mutual TLS, as its owner), the result pulled with skopeo, unpacked with
umoci and run under bubblewrap with SCONE_CAS_ADDR: the runtime attests with
sim evidence and runs the configuration the CAS releases (docs/runtime.md,
docs/attestation.md). Refusals: a replaced runtime or application, a
measurement the policy does not list, a policy without sim, a replayed
challenge, no pin or a wrong one, hw mode; and a CAS that is down: bounded
retries, then a clear failure, the application never started.

Who may read or update a session (owner only) is test_cas.py's
test_owner_only_read_and_update."""

import base64
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

import harness
import imagebuild as ib
from registryenv import Registry
from test_cas import Cas, make_client

RUNTIME = os.environ.get("SCONIFY_RUNTIME_BIN",
                         os.path.join(harness.BUILD_ROOT, "enclave-runtime", "sconify-runtime"))
SECRET = "TOP SECRET 42\n"
INJECTED = "Inj3ctedS3cretValue"
INSECURE = ("--src-tls-verify=false", "--dest-tls-verify=false")


def with_secret(doc, mode="sim"):
    """The session sconify image wrote, with an injected file that holds a
    secret: `$$SCONE::pw$$' is expanded by the CAS."""
    assert "- name: service\n" in doc and "security:\n" in doc, doc
    doc = doc.replace("- name: service\n", "- name: service\n  image_name: app\n", 1)
    extra = ("images:\n- name: app\n  injection_files:\n  - path: /run/secret.conf\n"
             '    content: "password=$$SCONE::pw$$\\n"\n'
             f"secrets:\n- name: pw\n  kind: ascii\n  value: {INJECTED}\n")
    doc = doc.replace("security:\n", extra + "security:\n", 1)
    if mode != "sim":
        doc = re.sub(r"mode: sim\s*$", f"mode: {mode}\n", doc)
    return doc


class CasEndToEnd(harness.TestCase):
    def setUp(self):
        super().setUp()
        for tool in ("bwrap", "busybox", "skopeo", "umoci", "docker-registry"):
            if shutil.which(tool) is None:
                self.skipTest(f"{tool} is not installed")
        if os.geteuid() != 0:
            self.skipTest("bwrap runs the root file systems as root here")
        self.reg = Registry(self.tmp)
        # refusals are counted and written every --audit-flush ms
        self.cas = Cas(os.path.join(self.tmp, "data"), "--challenge-ttl", "5000", "--audit-flush", "100").start()
        self.owner = make_client(self.tmp, "owner")

    def tearDown(self):
        self.cas.stop()
        self.reg.stop()
        with open(os.path.join(self.tmp, "cas.stderr"), "rb") as f:
            log = f.read().decode("utf-8", "replace")
        super().tearDown()
        self.assertNotIn("Sanitizer", log)
        self.assertNotIn("runtime error", log)

    # ---- the pipeline ----

    def convert(self, name, mode="sim"):
        """Source image pushed with skopeo, converted registry to registry,
        session uploaded, result pulled with skopeo and unpacked with umoci.
        Returns (rootfs, env of the image config + what the image will carry)."""
        base = [ib.host_file("/bin/busybox", "bin/busybox"), ib.Entry("bin/sh", "symlink", target="busybox"),
                ib.Entry("bin/cat", "symlink", target="busybox")]
        app = [ib.Entry("app/secret.txt", data=SECRET.encode())]
        src = ib.write_image(os.path.join(self.tmp, name + "-src"), [ib.with_dirs(base), ib.with_dirs(app)],
                             cmd=["/bin/cat", "secret.txt", "/run/secret.conf"], workdir="/app")
        repo = f"docker://{self.reg.host}/{name}"
        harness.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", src, repo + ":src"], check=True)
        session = os.path.join(self.tmp, name + ".yml")
        harness.sconify("image", *INSECURE, "--from", repo + ":src", "--to", repo + ":conf", "--mode", "sim",
                        "--runtime", RUNTIME, "--dir", "/app", "--name", name, "--session-out", session,
                        check=True)
        with open(session) as f:
            doc = with_secret(f.read(), mode)
        # Until `sconify image --cas' uploads it: the owner uploads it here.
        st, j = self.cas.request("POST", "/v1/sessions", doc, client=self.owner)
        self.assertEqual(st, 201, j)

        layout = os.path.join(self.tmp, name + "-pulled")
        harness.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", repo + ":conf", f"oci:{layout}:conf"],
                    check=True)
        bundle = os.path.join(self.tmp, name + "-bundle")
        harness.run(["umoci", "unpack", "--rootless", "--image", f"{layout}:conf", bundle], check=True)
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        self.assertEqual(spec["process"]["args"], ["/.sconify/runtime"])
        env = dict(e.split("=", 1) for e in spec["process"]["env"])
        cfg = json.loads(harness.run(["skopeo", "inspect", "--config", "--tls-verify=false", repo + ":conf"],
                                     check=True).stdout)
        measurement = cfg["config"]["Labels"]["dev.sconify.measurement"]
        # What the image carries once `sconify image --cas' writes it.
        env.setdefault("SCONE_CAS_ADDR", f"127.0.0.1:{self.cas.port}")
        env.setdefault("SCONE_CAS_KEY_HASH", self.cas.key_hash)
        env.setdefault("SCONE_MEASUREMENT", measurement)
        self.assertEqual(env["SCONE_CONFIG_ID"], f"{name}/service")
        return os.path.join(bundle, "rootfs"), env

    def run_image(self, rootfs, env, timeout=120):
        args = ["bwrap", "--bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                "--unshare-pid", "--as-pid-1", "--die-with-parent", "/.sconify/runtime"]
        env = {k: v for k, v in env.items() if v is not None}
        p = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        p.stdout_text = p.stdout.decode("utf-8", "replace")
        p.stderr_text = p.stderr.decode("utf-8", "replace")
        return p

    def refused(self, p, phrase):
        self.assertEqual(p.returncode, 125, p.stderr_text)
        self.assertEqual(p.stdout_text, "", "the application never starts")
        self.assertIn(phrase, p.stderr_text)
        self.assertNotIn(INJECTED, p.stderr_text)

    def audit(self):
        import sqlite3
        db = sqlite3.connect(f"file:{os.path.join(self.cas.data, 'cas.db')}?mode=ro", uri=True)
        try:
            return db.execute("SELECT action, target, outcome, detail FROM audit ORDER BY id").fetchall()
        finally:
            db.close()

    def wait_for_audit(self, outcome, seconds=10):
        """Whether a row with this outcome shows up (refusals are flushed
        periodically, not at once)."""
        import time
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(row[2] == outcome for row in self.audit()):
                return True
            time.sleep(0.1)
        return False

    # ---- the tests ----

    def test_runs_with_the_configuration_the_cas_releases(self):
        rootfs, env = self.convert("demo")
        p = self.run_image(rootfs, env)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertEqual(p.stdout_text, SECRET + f"password={INJECTED}\n")
        self.assertIn("sconify-runtime: mode sim: NO hardware protection, configuration from the CAS", p.stderr_text)
        self.assertNotIn(INJECTED, p.stderr_text)
        self.assertIn(("attest", "demo/service", "released"), [a[:3] for a in self.audit()])
        # Plaintext inside the application only: neither in the converted
        # image's blobs in the registry (decompressed) nor on disk.
        manifest = json.loads(harness.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                           f"docker://{self.reg.host}/demo:conf"], check=True).stdout)
        blobs = os.path.join(self.reg.storage_dir, "docker", "registry", "v2", "blobs", "sha256")
        for d in [manifest["config"]] + manifest["layers"]:
            h = d["digest"].split(":", 1)[1]
            with open(os.path.join(blobs, h[:2], h, "data"), "rb") as f:
                data = f.read()
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):
                pass
            self.assertFalse(SECRET.encode() in data, f"plaintext in blob {d['digest']}")
        with open(os.path.join(rootfs, "app", "secret.txt"), "rb") as f:
            self.assertNotIn(SECRET.encode(), f.read())
        self.assertFalse(os.path.exists(os.path.join(rootfs, "run", "secret.conf")))

    def test_a_replaced_runtime_or_application_never_starts(self):
        rootfs, env = self.convert("demo")
        # A replaced binary: the CAS releases to the claim, the runtime then
        # measures what it would run and refuses the difference.
        for path in (os.path.join(rootfs, ".sconify", "runtime"), os.path.join(rootfs, "bin", "busybox")):
            shutil.copy(path, path + ".orig")
            with open(path, "ab") as f:
                f.write(b"\0")
            self.refused(self.run_image(rootfs, env), "measurement mismatch")
            os.replace(path + ".orig", path)
        self.assertEqual(self.run_image(rootfs, env).returncode, 0)
        # The measurement of another image (what a replaced binary measures):
        # the CAS refuses it, 403, nothing is released.
        other = "11" * 32
        p = self.run_image(rootfs, {**env, "SCONE_MEASUREMENT": other})
        self.refused(p, "is not accepted by the policy")
        self.assertIn("403", p.stderr_text)
        self.assertNotIn("try 2", p.stderr_text, "a refusal is not retried")
        self.assertTrue(self.wait_for_audit("refused"), self.audit()[-3:])

    def test_a_policy_without_sim_refuses_sim_evidence(self):
        rootfs, env = self.convert("hwonly", mode="hardware")
        p = self.run_image(rootfs, env)
        self.refused(p, "requires hardware attestation")
        self.assertIn("403", p.stderr_text)

    def test_a_replayed_challenge_is_refused(self):
        rootfs, env = self.convert("demo")
        st, j = self.cas.request("POST", "/v1/attest/challenge")
        self.assertEqual(st, 200, j)
        ch = base64.b64decode(j["challenge"])

        def attest():
            priv = x25519.X25519PrivateKey.generate()
            pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            body = {"challenge": base64.b64encode(ch).decode(), "config_id": "demo/service", "provider": "sim",
                    "evidence": {"measurement": env["SCONE_MEASUREMENT"],
                                 "report_data": hashlib.sha256(ch + pub).hexdigest()},
                    "public_key": base64.b64encode(pub).decode()}
            return self.cas.request("POST", "/v1/attest", json.dumps(body))

        st, j = attest()
        self.assertEqual(st, 200, j)
        st, j = attest()
        self.assertEqual(st, 401, j)
        self.assertIn("unknown or already used", j["error"])

    def test_the_cas_is_pinned(self):
        rootfs, env = self.convert("demo")
        p = self.run_image(rootfs, {**env, "SCONE_CAS_KEY_HASH": None})
        self.refused(p, "SCONE_CAS_KEY_HASH is not set")
        p = self.run_image(rootfs, {**env, "SCONE_CAS_KEY_HASH": "ab" * 32})
        self.refused(p, "not the CAS this image trusts")
        self.assertIn(self.cas.key_hash, p.stderr_text)
        p = self.run_image(rootfs, {**env, "SCONE_CAS_KEY_HASH": None, "SCONIFY_CAS_INSECURE": "1"})
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertIn("the CAS's identity is NOT checked", p.stderr_text)
        self.assertEqual(p.stdout_text, SECRET + f"password={INJECTED}\n")

    def test_hw_mode_has_no_provider_here(self):
        rootfs, env = self.convert("demo")
        self.refused(self.run_image(rootfs, {**env, "SCONE_MODE": "hw"}), "no hardware provider on this machine")

    def test_cas_down_bounded_retries_then_a_clear_failure(self):
        rootfs, env = self.convert("demo")
        self.cas.stop()
        for tries, extra in ((3, {"SCONIFY_CAS_RETRIES": "3"}), (6, {})):
            p = self.run_image(rootfs, {**env, **extra})
            self.refused(p, f"after {tries} tries")
            attempts = re.findall(r"CAS try (\d+) of (\d+) failed", p.stderr_text)
            self.assertEqual(attempts, [(str(i), str(tries)) for i in range(1, tries)], p.stderr_text)
            self.assertIn("no service configuration for `demo/service' from the CAS", p.stderr_text)
            self.assertIn("Connection refused", p.stderr_text)
        # Back up: the same image runs.
        self.cas.start(self.cas.port)
        self.assertEqual(self.run_image(rootfs, env).stdout_text, SECRET + f"password={INJECTED}\n")


if __name__ == "__main__":
    harness.main()
