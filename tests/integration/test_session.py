# SPDX-License-Identifier: Apache-2.0
"""The client side of the CAS (docs/cas.md, "Clients"): `sconify image --cas`
converts into a registry and uploads the session, a second run updates it
with its predecessor, `sconify session get|update|delete` for the owner only,
the CAS pinned by its key hash (trusted on first use, or given), the client
identity made once (0600) and reused, and no volume key in any output."""

import hashlib
import json
import os
import sqlite3
import stat

import harness
import imagebuild as ib
from registryenv import Registry
from test_cas import Cas, make_client

E = ib.Entry
RUNTIME = os.environ.get("SCONIFY_RUNTIME_BIN") or os.path.join(
    os.environ.get("SCONIFY_BUILD_ROOT", "build"), "enclave-runtime", "sconify-runtime")
SECRET = b"protected by the shield: " + os.urandom(64).hex().encode()


def write_policy(path, name):
    with open(path, "w") as f:
        f.write(f'name: {name}\nversion: "0.3"\nservices:\n  - name: app\n    command: [/bin/app]\n'
                f'    measurements: ["{"ab" * 32}"]\nsecurity:\n  attestation:\n    mode: sim\n')


class SessionTests(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.cfg = os.path.join(self.tmp, "config")
        self.env = dict(os.environ, XDG_CONFIG_HOME=self.cfg)
        self.cas = Cas(os.path.join(self.tmp, "data")).start()
        self.url = f"127.0.0.1:{self.cas.port}"
        self.outputs = []  # every command's stdout and stderr, checked for the key

    def tearDown(self):
        self.cas.stop()
        with open(os.path.join(self.tmp, "cas.stderr"), "rb") as f:
            log = f.read().decode("utf-8", "replace")
        super().tearDown()
        self.assertNotIn("Sanitizer", log)

    def run_sconify(self, *args, env=None):
        p = harness.run([harness.SCONIFY, *args], env=env or self.env)
        self.outputs.append(p.stdout + p.stderr)
        self.assertNotIn("Sanitizer", p.stderr_text)
        return p

    def identity_file(self, name):
        """Another client: key and certificate in one PEM file, 0600."""
        c = make_client(self.tmp, name)
        path = os.path.join(self.tmp, name + ".pem")
        with open(path, "wb") as out:
            for part in (c["cert"][1], c["cert"][0]):
                with open(part, "rb") as f:
                    out.write(f.read())
        os.chmod(path, 0o600)
        c["pem"] = path
        return c

    def source(self, reg):
        layers = [ib.with_dirs([ib.host_file("/bin/busybox", "bin/busybox"),
                                E("bin/cat", "symlink", target="busybox"), E("app/secret.txt", data=SECRET)])]
        src = ib.write_image(os.path.join(self.tmp, "src"), layers, cmd=["/bin/cat", "/app/secret.txt"])
        harness.run(["skopeo", "copy", "--dest-tls-verify=false", src, f"docker://{reg.host}/apps/web:1"],
                    check=True)
        return f"docker://{reg.host}/apps/web:1"

    def convert(self, reg, *opts, to="confidential/web:1"):
        return self.run_sconify("image", "--from", self.source(reg), "--to", f"docker://{reg.host}/{to}",
                                "--tls-verify=false", "--runtime", RUNTIME, "--mode", "sim", "--dir", "/app",
                                "--name", "web", "--output", "json", "--cas", self.url, *opts)

    def image_env(self, reg, ref="confidential/web:1"):
        p = harness.run(["skopeo", "inspect", "--tls-verify=false", "--config", f"docker://{reg.host}/{ref}"],
                        check=True)
        return json.loads(p.stdout_text)["config"]["Env"]

    def volume_key(self, path):
        """The hex of a --key-out file ("sconify-shield-key-v1:HEX")."""
        with open(path) as f:
            key = f.read().strip().rsplit(":", 1)[-1].lower()
        self.assertRegex(key, "^[0-9a-f]{64}$")
        return key

    def assert_no_key_in_outputs(self, key_hex):
        for out in self.outputs:
            self.assertNotIn(key_hex.encode(), out.lower())
            self.assertNotIn(SECRET, out)

    # ---- sconify image --cas ----

    def test_image_uploads_then_updates_with_the_predecessor(self):
        key_out = os.path.join(self.tmp, "vol.key")
        with Registry(self.tmp) as reg:
            p = self.convert(reg, "--key-out", key_out)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            res = json.loads(p.stdout_text)
            self.assertEqual(p.stdout_text.count('"session":'), 1, p.stdout_text)  # one member, the CAS's facts
            s1 = res["session"]
            self.assertEqual((s1["name"], s1["created"]), ("web", True))
            self.assertEqual(s1["cas"], f"https://{self.url}")
            self.assertRegex(s1["hash"], "^[0-9a-f]{64}$")
            self.assertIn("first use", p.stderr_text)
            self.assertIn(self.cas.key_hash, p.stderr_text)
            # The image names the CAS and pins it.
            env = self.image_env(reg)
            self.assertIn(f"SCONE_CAS_ADDR={self.url}", env)
            self.assertIn(f"SCONE_CAS_KEY_HASH={self.cas.key_hash}", env)
            self.assertIn("SCONE_CONFIG_ID=web/service", env)

            # Again: the session exists and is ours, so it is updated with
            # the stored hash as predecessor; the pin is remembered now.
            p = self.convert(reg)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            s2 = json.loads(p.stdout_text)["session"]
            self.assertEqual((s2["name"], s2["created"]), ("web", False))
            self.assertNotEqual(s2["hash"], s1["hash"])
            self.assertNotIn("first use", p.stderr_text)

        out = os.path.join(self.tmp, "got.yml")
        p = self.run_sconify("session", "get", "web", "--cas", self.url, "--output", out)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertEqual(p.stdout_text.split(), ["web", s2["hash"]])
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        with open(out, "rb") as f:
            text = f.read()
        self.assertEqual(hashlib.sha256(text).hexdigest(), s2["hash"])
        self.assertRegex(text.decode(), f'\npredecessor: "?{s1["hash"]}"?\n')
        first_key = self.volume_key(key_out)
        self.assert_no_key_in_outputs(first_key)

    def test_wrong_pinned_hash_is_refused_before_anything_is_sent(self):
        wrong = "ab" * 32
        with Registry(self.tmp) as reg:
            p = self.convert(reg, "--cas-key-hash", wrong)
            self.assertEqual(p.returncode, 1, p.stderr_text)
            self.assertIn("does not match the pinned key hash", p.stderr_text)
            # Checked before the conversion: no tag was written.
            tags = harness.run(["skopeo", "list-tags", "--tls-verify=false",
                                f"docker://{reg.host}/confidential/web"])
            self.assertNotEqual(tags.returncode, 0, tags.stdout_text)
        doc = os.path.join(self.tmp, "p.yml")
        write_policy(doc, "pinned")
        p = self.run_sconify("session", "update", doc, "--cas", self.url, "--cas-key-hash", wrong)
        self.assertEqual(p.returncode, 1)
        self.assertIn("does not match the pinned key hash", p.stderr_text)
        # The CAS saw no request: nothing created, nothing in its audit log.
        p = self.run_sconify("session", "get", "pinned", "--cas", self.url, "--cas-key-hash", self.cas.key_hash)
        self.assertEqual(p.returncode, 1)
        self.assertIn("HTTP 404", p.stderr_text)
        self.cas.stop()
        db = sqlite3.connect(os.path.join(self.cas.data, "cas.db"))
        self.assertEqual(db.execute("SELECT COUNT(*) FROM audit").fetchone()[0], 0)
        db.close()
        self.cas.start()

    def test_identity_is_created_once_0600_and_reused(self):
        doc = os.path.join(self.tmp, "p.yml")
        write_policy(doc, "mine")
        p = self.run_sconify("session", "update", doc, "--cas", self.url, "--cas-key-hash", self.cas.key_hash)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        path = os.path.join(self.cfg, "sconify", "identity.pem")
        self.assertIn("created the client identity", p.stderr_text)
        self.assertIn(path, p.stderr_text)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode), 0o700)
        with open(path, "rb") as f:
            first = f.read()
        self.assertIn(b"PRIVATE KEY", first)
        self.assertIn(b"CERTIFICATE", first)
        # Reused: same file, and the CAS knows us (an update, allowed for CREATOR only).
        p = self.run_sconify("session", "update", doc, "--cas", self.url)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertNotIn("created the client identity", p.stderr_text)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), first)
        # Group-readable identities are refused.
        os.chmod(path, 0o640)
        p = self.run_sconify("session", "get", "mine", "--cas", self.url)
        self.assertEqual(p.returncode, 1)
        self.assertIn("readable by group or others", p.stderr_text)
        # An --identity that does not exist is not made up.
        p = self.run_sconify("session", "get", "mine", "--cas", self.url, "--identity",
                             os.path.join(self.tmp, "none.pem"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("none.pem", p.stderr_text)

    def test_another_identity_can_neither_get_nor_update_nor_delete(self):
        key_out = os.path.join(self.tmp, "vol.key")
        with Registry(self.tmp) as reg:
            p = self.convert(reg, "--key-out", key_out)
            self.assertEqual(p.returncode, 0, p.stderr_text)
        h = json.loads(p.stdout_text)["session"]["hash"]
        owner = os.path.join(self.tmp, "owner.yml")
        p = self.run_sconify("session", "get", "web", "--cas", self.url, "-o", owner)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        bob = self.identity_file("bob")
        # To bob, who may not read it, `web' looks like a session that does not
        # exist (get, delete); his update is then a create of a taken name.
        for args, want in ((["get", "web"], "HTTP 404"), (["update", owner], "HTTP 403"),
                           (["delete", "web"], "HTTP 404")):
            p = self.run_sconify("session", *args, "--cas", self.url, "--identity", bob["pem"])
            self.assertEqual(p.returncode, 1, args)
            self.assertIn(want, p.stderr_text)
            self.assertIn(f"https://{self.url}", p.stderr_text)
            if want == "HTTP 404":
                self.assertIn("not found, or this client may not read it", p.stderr_text)
            else:
                self.assertIn("this client may not update it", p.stderr_text)
        # Still there, unchanged, for the owner, who may delete it.
        p = self.run_sconify("session", "get", "web", "--cas", self.url, "-o", os.path.join(self.tmp, "again.yml"))
        self.assertEqual(p.stdout_text.split(), ["web", h])
        p = self.run_sconify("session", "delete", "web", "--cas", self.url)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        p = self.run_sconify("session", "get", "web", "--cas", self.url)
        self.assertEqual(p.returncode, 1)
        self.assertIn("HTTP 404", p.stderr_text)
        self.assert_no_key_in_outputs(self.volume_key(key_out))

    def test_refused_upload_leaves_the_tag_where_it_was(self):
        # The session goes to the CAS before the tag moves: another identity
        # converting into `web' (owned by the first) is refused by the CAS,
        # and the destination tag still names the first conversion.
        with Registry(self.tmp) as reg:
            p = self.convert(reg)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            first = json.loads(p.stdout_text)["digest"]
            bob = self.identity_file("bob")
            p = self.convert(reg, "--identity", bob["pem"])
            self.assertEqual(p.returncode, 1, p.stderr_text)
            self.assertIn("HTTP 403", p.stderr_text)
            self.assertIn("tag did not move", p.stderr_text)
            raw = harness.run(["skopeo", "inspect", "--tls-verify=false", "--raw",
                               f"docker://{reg.host}/confidential/web:1"], check=True).stdout
            self.assertEqual("sha256:" + hashlib.sha256(raw).hexdigest(), first)
            # A fresh destination gets no tag at all.
            p = self.convert(reg, "--identity", bob["pem"], to="confidential/other:1")
            self.assertEqual(p.returncode, 1, p.stderr_text)
            q = harness.run(["skopeo", "inspect", "--tls-verify=false", "--raw",
                             f"docker://{reg.host}/confidential/other:1"])
            self.assertNotEqual(q.returncode, 0)

    def test_session_get_prints_the_policy_for_its_owner(self):
        doc = os.path.join(self.tmp, "p.yml")
        write_policy(doc, "printed")
        p = self.run_sconify("session", "update", doc, "--cas", self.url)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        name, h = p.stdout_text.split()
        p = self.run_sconify("session", "get", "printed", "--cas", self.url)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertEqual(hashlib.sha256(p.stdout).hexdigest(), h)
        self.assertIn("name: printed", p.stdout_text)

    def test_plain_http_and_bad_hashes_are_usage_errors(self):
        p = self.run_sconify("session", "get", "x", "--cas", f"http://{self.url}")
        self.assertEqual(p.returncode, 1)
        self.assertIn("only https://", p.stderr_text)
        p = self.run_sconify("session", "get", "x", "--cas", self.url, "--cas-key-hash", "XYZ")
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    harness.main()
