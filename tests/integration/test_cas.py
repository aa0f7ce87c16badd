# SPDX-License-Identifier: Apache-2.0
"""sconify-cas on loopback (docs/cas.md, docs/attestation.md): sessions over
mutual TLS with access policies and namespaces, request caps and slow
clients, sim attestation with the configuration decrypted by an independent
client (python `cryptography'), crash safety under kill -9, sealed rows and
the audit log. The clients are Python's ssl/http.client with certificates
made by openssl at test time."""

import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import harness

CAS = os.environ.get("SCONIFY_CAS_BIN", os.path.join(harness.BUILD_ROOT, "cmd", "sconify-cas", "sconify-cas"))

MEAS = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
OTHER_MEAS = "11" * 32
FSPF_KEY = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7"
FSPF_TAG = "9e107d9d372bb6826bd81d3542a419d6" * 2
GIVEN_SECRET = "Sup3rS3cretGivenValue"


def policy(name, mode="sim", read="[CREATOR]", update="[CREATOR]", create=None, predecessor=None,
           measurement=MEAS):
    doc = f'name: {name}\nversion: "0.3"\n'
    if predecessor:
        doc += f"predecessor: {predecessor}\n"
    doc += f"access_policy:\n  read: {read}\n  update: {update}\n"
    if create:
        doc += f"  create_sessions: {create}\n"
    doc += f"""\
services:
  - name: app
    image_name: img
    command: [/bin/app, --password, "$$SCONE::pw$$", "two words"]
    environment:
      TOKEN: $$SCONE::given$$
    pwd: /app
    user: app:staff
    fspf_path: /.sconify/fspf
    fspf_key: {FSPF_KEY}
    fspf_tag: {FSPF_TAG}
    measurements: [{measurement}]
images:
  - name: img
    injection_files:
      - path: /etc/app.conf
        content: "pw=$$SCONE::pw$$"
secrets:
  - name: pw
    kind: ascii
    size: 20
  - name: given
    kind: ascii
    value: {GIVEN_SECRET}
security:
  attestation:
    mode: {mode}
"""
    return doc


def public_policy(name, read="[ANY]", update="[CREATOR]", create=None):
    """A policy without a volume key, secrets or injected files: the only kind
    whose access lists may name ANY."""
    doc = f'name: {name}\nversion: "0.3"\naccess_policy:\n  read: {read}\n  update: {update}\n'
    if create:
        doc += f"  create_sessions: {create}\n"
    return doc + f"""\
services:
  - name: app
    command: [/bin/app]
    measurements: [{MEAS}]
security:
  attestation:
    mode: sim
"""


def make_client(d, name):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    harness.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", crt, "-subj", "/CN=" + name, "-days", "2"], check=True)
    with open(crt, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"cert": (crt, key), "id": hashlib.sha256(spki).hexdigest()}


class Cas:
    """allow_sim: the tests attest with the sim provider, which the CAS refuses
    unless started with --allow-sim."""

    def __init__(self, data, *args, key_file=None, allow_sim=True):
        self.data, self.args, self.key_file = data, list(args), key_file
        if allow_sim:
            self.args.append("--allow-sim")
        self.proc = None

    def start(self, port=0):
        cmd = [CAS, "serve", "--listen", f"127.0.0.1:{port}", "--data", self.data, *self.args]
        if self.key_file:
            cmd += ["--db-key-file", self.key_file]
        self.stderr = open(os.path.join(os.path.dirname(self.data), "cas.stderr"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr)
        self.key_hash = self._line("key-hash: ")
        hostport = self._line("listening: ")
        self.port = int(hostport.rsplit(":", 1)[1])
        return self

    def _line(self, prefix):
        line = self.proc.stdout.readline().decode()
        if not line.startswith(prefix):
            self.proc.wait(timeout=10)
            raise AssertionError(f"sconify-cas said {line!r} (exit {self.proc.returncode})")
        return line[len(prefix):].strip()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        if self.proc:
            self.proc.stdout.close()
            self.stderr.close()
        self.proc = None

    def context(self, client=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # pinned below, by key hash
        if client:
            ctx.load_cert_chain(*client["cert"])
        return ctx

    def connect(self, client=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(client), timeout=30)
        c.connect()
        der = c.sock.getpeercert(binary_form=True)
        spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert hashlib.sha256(spki).hexdigest() == self.key_hash, "CAS key does not match the pinned hash"
        return c

    def connect_from(self, source, client=None):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=30, source_address=(source, 0))
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(client), timeout=30)
        c.sock = self.context(client).wrap_socket(raw)
        return c

    def request(self, method, path, body=None, client=None, headers=None, source=None):
        c = self.connect(client) if source is None else self.connect_from(source, client)
        try:
            if isinstance(body, str):
                body = body.encode()
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            try:
                return r.status, json.loads(data)
            except ValueError:
                return r.status, {"raw": data.decode("utf-8", "replace")}
        finally:
            c.close()


def decode_config(b):
    """docs/attestation.md, "The configuration"."""
    pos = 0

    def u32():
        nonlocal pos
        v = struct.unpack(">I", b[pos:pos + 4])[0]
        pos += 4
        return v

    def s():
        nonlocal pos
        n = u32()
        v = b[pos:pos + n]
        pos += n
        return v

    out = {"magic": s(), "config_id": s().decode(), "session_hash": s().decode()}
    out["argv"] = [s() for _ in range(u32())]
    out["env"] = [s() for _ in range(u32())]
    out["pwd"] = s()
    out["user"] = s()
    out["fspf_path"] = s()
    if out["fspf_path"]:
        out["fspf_key"] = b[pos:pos + 32]
        pos += 32
        out["fspf_tag"] = s()
    out["files"] = [(s(), s()) for _ in range(u32())]
    assert pos == len(b), "trailing bytes"
    return out


class CasTest(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.a, self.b, self.c = (make_client(self.tmp, n) for n in ("alice", "bob", "carol"))
        self.cas = Cas(os.path.join(self.tmp, "data"), "--challenge-ttl", "2000", "--request-timeout", "3000",
                       "--max-body", "65536").start()

    def tearDown(self):
        self.cas.stop()
        with open(os.path.join(self.tmp, "cas.stderr"), "rb") as f:
            log = f.read().decode("utf-8", "replace")
        super().tearDown()
        self.assertNotIn("Sanitizer", log)
        self.assertNotIn("runtime error", log)

    def create(self, doc, client=None, want=201):
        st, j = self.cas.request("POST", "/v1/sessions", doc, client or self.a)
        self.assertEqual(st, want, j)
        return j

    # ---- identity and basics ----

    def test_first_start_creates_identity_and_keys_0600(self):
        for f in ("identity.key", "identity.crt", "db.key", "cas.db"):
            p = os.path.join(self.cas.data, f)
            self.assertTrue(os.path.exists(p), f)
            if f != "cas.db":
                self.assertEqual(os.stat(p).st_mode & 0o777, 0o600, f)
        st, j = self.cas.request("GET", "/v1/health")
        self.assertEqual((st, j), (200, {"status": "ok"}))
        st, j = self.cas.request("GET", "/v1/version")
        self.assertEqual(st, 200)
        self.assertEqual(j["api"], "v1")
        # Same identity after a restart.
        h = self.cas.key_hash
        self.cas.stop()
        self.cas.start()
        self.assertEqual(self.cas.key_hash, h)

    def test_unknown_path_and_method_are_json_errors(self):
        st, j = self.cas.request("GET", "/v1/nothing")
        self.assertEqual(st, 404)
        self.assertIn("error", j)
        st, j = self.cas.request("GET", "/v1/sessions", client=self.a)
        self.assertEqual(st, 405)

    # ---- sessions ----

    def test_create_read_update_delete(self):
        j = self.create(policy("s1"))
        self.assertEqual(j["name"], "s1")
        h1 = j["hash"]
        self.assertRegex(h1, "^[0-9a-f]{64}$")
        st, j = self.cas.request("GET", "/v1/sessions/s1", client=self.a)
        self.assertEqual(st, 200)
        self.assertEqual(j["hash"], h1)
        self.assertEqual(hashlib.sha256(j["session"].encode()).hexdigest(), h1)
        # Creating again without predecessor: conflict.
        self.create(policy("s1"), want=409)
        # Wrong predecessor: conflict.
        st, j = self.cas.request("POST", "/v1/sessions", policy("s1", predecessor="ab" * 32), self.a)
        self.assertEqual(st, 409)
        self.assertIn("predecessor", j["error"])
        # Right predecessor: updated.
        j = self.create(policy("s1", predecessor=h1, measurement=OTHER_MEAS), want=200)
        h2 = j["hash"]
        self.assertNotEqual(h1, h2)
        # The old hash no longer works.
        st, _ = self.cas.request("POST", "/v1/sessions", policy("s1", predecessor=h1), self.a)
        self.assertEqual(st, 409)
        st, _ = self.cas.request("DELETE", "/v1/sessions/s1", client=self.a)
        self.assertEqual(st, 200)
        st, _ = self.cas.request("GET", "/v1/sessions/s1", client=self.a)
        self.assertEqual(st, 404)

    def test_invalid_policy_is_400_without_secrets(self):
        doc = policy("bad").replace("kind: ascii\n    value", "kind: hex\n    value")
        st, j = self.cas.request("POST", "/v1/sessions", doc, self.a)
        self.assertEqual(st, 400)
        self.assertNotIn(GIVEN_SECRET, j["error"])

    def test_sessions_need_a_client_certificate(self):
        st, j = self.cas.request("POST", "/v1/sessions", policy("s"))
        self.assertEqual(st, 401)
        self.assertIn("client certificate", j["error"])

    def test_owner_only_read_and_update(self):
        h = self.create(policy("mine"))["hash"]
        for who in (self.b, self.c):
            st, _ = self.cas.request("GET", "/v1/sessions/mine", client=who)
            self.assertEqual(st, 404)  # as if it did not exist
            st, _ = self.cas.request("POST", "/v1/sessions", policy("mine", predecessor=h), who)
            self.assertEqual(st, 403)
            st, _ = self.cas.request("DELETE", "/v1/sessions/mine", client=who)
            self.assertEqual(st, 404)
        st, j = self.cas.request("GET", "/v1/sessions/mine", client=self.a)
        self.assertEqual((st, j["hash"]), (200, h))

    def test_access_any_none_and_key_hashes(self):
        h = self.create(public_policy("open", read="[ANY]", update="[NONE]"))["hash"]
        st, j = self.cas.request("GET", "/v1/sessions/open", client=self.c)
        self.assertEqual((st, j.get("hash")), (200, h))
        st, _ = self.cas.request("POST", "/v1/sessions", public_policy("open") + f"predecessor: {h}\n", self.a)
        self.assertEqual(st, 403)  # NONE: not even the creator
        self.create(policy("shared", read=f"[CREATOR, {self.b['id']}]", update=f"[{self.b['id']}]"))
        st, _ = self.cas.request("GET", "/v1/sessions/shared", client=self.b)
        self.assertEqual(st, 200)
        st, _ = self.cas.request("GET", "/v1/sessions/shared", client=self.c)
        self.assertEqual(st, 404)
        st, j = self.cas.request("GET", "/v1/sessions/shared", client=self.a)
        hs = j["hash"]
        st, _ = self.cas.request("POST", "/v1/sessions", policy("shared", predecessor=hs), self.a)
        self.assertEqual(st, 403)  # the creator is not in update
        st, _ = self.cas.request("POST", "/v1/sessions", policy("shared", predecessor=hs), self.b)
        self.assertEqual(st, 200)

    def test_namespaces(self):
        st, j = self.cas.request("POST", "/v1/sessions", policy("ns/app"), self.b)
        self.assertEqual(st, 404)
        self.assertIn("namespace", j["error"])
        self.create(policy("ns", create=f"[{self.b['id']}]"))
        self.create(policy("ns/app"), client=self.b)
        st, _ = self.cas.request("POST", "/v1/sessions", policy("ns/other"), self.c)
        self.assertEqual(st, 403)
        # The creator of a session in a namespace owns it.
        st, _ = self.cas.request("GET", "/v1/sessions/ns/app", client=self.b)
        self.assertEqual(st, 200)
        st, _ = self.cas.request("GET", "/v1/sessions/ns/app", client=self.a)
        self.assertEqual(st, 404)  # the namespace's creator does not own it
        st, j = self.cas.request("DELETE", "/v1/sessions/ns", client=self.a)
        self.assertEqual(st, 409)

    # ---- keys and secrets are never public ----

    def test_any_in_read_or_update_of_a_session_with_secrets_is_refused_at_upload(self):
        cases = [(policy("leaky", read="[ANY]"), "read", "the volume key (fspf_key) of service `app'"),
                 (policy("leaky", update="[ANY]"), "update", "the volume key"),
                 (policy("leaky", read="[CREATOR, ANY]"), "read", "the volume key")]
        no_key = public_policy("leaky") + """\
secrets:
  - name: given
    kind: ascii
    value: """ + GIVEN_SECRET + "\n"
        cases.append((no_key, "read", "the value of secret `given'"))
        cases.append((public_policy("leaky", read="[CREATOR]", update="[ANY]") +
                      "secrets:\n  - name: pw\n    kind: hex\n    size: 16\n", "update",
                      "secret `pw', generated by the CAS"))
        files = public_policy("leaky").replace("    command: [/bin/app]\n",
                                               "    image_name: img\n    command: [/bin/app]\n")
        files += "images:\n  - name: img\n    injection_files:\n      - path: /etc/a\n        content: x\n"
        cases.append((files, "read", "injected files of image `img'"))
        for doc, lst, part in cases:
            st, j = self.cas.request("POST", "/v1/sessions", doc, self.a)
            self.assertEqual(st, 400, (doc, j))
            self.assertIn(f"access_policy.{lst} lists ANY, but the session holds {part}", j["error"])
            self.assertNotIn(GIVEN_SECRET, j["error"])
            self.assertNotIn(FSPF_KEY, j["error"])
        st, _ = self.cas.request("GET", "/v1/sessions/leaky", client=self.a)
        self.assertEqual(st, 404)  # nothing was stored
        # An update cannot open a session with secrets to ANY either.
        h = self.create(policy("closed"))["hash"]
        st, j = self.cas.request("POST", "/v1/sessions", policy("closed", read="[ANY]", predecessor=h), self.a)
        self.assertEqual(st, 400, j)
        st, j = self.cas.request("GET", "/v1/sessions/closed", client=self.b)
        self.assertEqual(st, 404)
        st, j = self.cas.request("GET", "/v1/sessions/closed", client=self.a)
        self.assertEqual((st, j["hash"]), (200, h))

    def test_secrets_are_read_only_by_clients_named_in_read(self):
        self.create(policy("named", read=f"[CREATOR, {self.b['id']}]"))
        for who in (self.a, self.b):
            st, j = self.cas.request("GET", "/v1/sessions/named", client=who)
            self.assertEqual(st, 200, j)
            self.assertIn(FSPF_KEY, j["session"])
        st, j = self.cas.request("GET", "/v1/sessions/named", client=self.c)
        self.assertEqual(st, 404)
        self.assertNotIn("session", j)

    # ---- names are not enumerable ----

    def assert_same_answer(self, method, path, other_path, client):
        """The same status and message (but for the name) for both paths."""
        st1, j1 = self.cas.request(method, path, client=client)
        st2, j2 = self.cas.request(method, other_path, client=client)
        name1, name2 = path.rsplit("/", 1)[-1], other_path.rsplit("/", 1)[-1]
        self.assertEqual((st1, j1["error"].replace(name1, "NAME")), (st2, j2["error"].replace(name2, "NAME")))
        return st1, j1

    def test_a_session_the_client_may_not_read_is_answered_like_a_missing_one(self):
        self.create(policy("hidden"))
        for method in ("GET", "DELETE"):
            st, j = self.assert_same_answer(method, "/v1/sessions/hidden", "/v1/sessions/absent", self.b)
            self.assertEqual(st, 404)
            self.assertIn("not found, or this client may not read it", j["error"])
        # The owner still tells them apart.
        st, _ = self.cas.request("GET", "/v1/sessions/hidden", client=self.a)
        self.assertEqual(st, 200)
        # A reader without the update right knows it exists: 403 on delete.
        self.create(policy("readable", read=f"[CREATOR, {self.b['id']}]"))
        st, j = self.cas.request("DELETE", "/v1/sessions/readable", client=self.b)
        self.assertEqual(st, 403, j)
        self.assertIn("may not delete it", j["error"])
        # Refused reads of an existing session are audited (counted).
        self.cas.stop()
        db = sqlite3.connect(os.path.join(self.cas.data, "cas.db"))
        rows = db.execute("SELECT client, target FROM audit WHERE action = 'session.read' "
                          "AND outcome = 'refused'").fetchall()
        db.close()
        self.assertEqual(rows, [(self.b["id"], "hidden")])

    def test_namespace_hides_its_sessions_from_clients_that_may_not_create_there(self):
        self.create(policy("ns", create=f"[CREATOR, {self.b['id']}]"))
        h = self.create(policy("ns/app"), client=self.b)["hash"]
        # carol has no right in `ns': a taken name and a free one get the same answers.
        for taken, free in ((policy("ns/app"), policy("ns/free")),
                            (policy("ns/app", predecessor=h), policy("ns/free", predecessor=h))):
            st1, j1 = self.cas.request("POST", "/v1/sessions", taken, self.c)
            st2, j2 = self.cas.request("POST", "/v1/sessions", free, self.c)
            self.assertEqual((st1, j1), (st2, j2))
            self.assertEqual(st1, 403)
            self.assertIn("namespace `ns': this client may not create sessions in it", j1["error"])
        for method in ("GET", "DELETE"):
            st, _ = self.assert_same_answer(method, "/v1/sessions/ns/app", "/v1/sessions/ns/free", self.c)
            self.assertEqual(st, 404)
        # alice may create there, so a taken name is a 403 to her.
        st, j = self.cas.request("POST", "/v1/sessions", policy("ns/app"), self.a)
        self.assertEqual(st, 403, j)
        self.assertIn("may not update it", j["error"])
        # Nested: whether `ns/app' (a namespace?) exists is not told to carol
        # by creating below it either: `ns/app/x' and `ns/none/x' answer alike.
        st1, j1 = self.cas.request("POST", "/v1/sessions", policy("ns/app/x"), self.c)
        st2, j2 = self.cas.request("POST", "/v1/sessions", policy("ns/none/x"), self.c)
        self.assertEqual((st1, st2), (403, 403), (j1, j2))
        self.assertEqual(j1["error"].replace("ns/app", "N"), j2["error"].replace("ns/none", "N"))
        # bob may create in `ns': he learns that `ns/none' is missing.
        st, j = self.cas.request("POST", "/v1/sessions", policy("ns/none/x"), self.b)
        self.assertEqual(st, 404, j)

    # ---- caps and slow clients ----

    def test_body_and_header_caps_413(self):
        st, _ = self.cas.request("POST", "/v1/sessions", "x" * 70000, self.a)
        self.assertEqual(st, 413)
        st, _ = self.cas.request("GET", "/v1/health", headers={f"X-H{i}": "v" for i in range(100)})
        self.assertEqual(st, 413)
        st, _ = self.cas.request("GET", "/v1/health", headers={"X-Big": "v" * 20000})
        self.assertEqual(st, 413)
        # Past four times the cap evhttp stops reading: 400 or a closed connection.
        try:
            st, _ = self.cas.request("GET", "/v1/health", headers={"X-Huge": "v" * 100000})
            self.assertEqual(st, 400)
        except (OSError, ssl.SSLError, http.client.HTTPException):
            pass
        st, _ = self.cas.request("GET", "/v1/health")
        self.assertEqual(st, 200)

    def test_slow_client_is_closed(self):
        ctx = self.cas.context()
        raw = socket.create_connection(("127.0.0.1", self.cas.port))
        s = ctx.wrap_socket(raw)
        s.settimeout(1)
        idle = socket.create_connection(("127.0.0.1", self.cas.port))  # never handshakes
        idle.settimeout(1)
        start = time.monotonic()
        closed = None
        request = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
        for i in range(len(request)):
            try:
                s.send(request[i:i + 1])
                time.sleep(0.2)
            except (OSError, ssl.SSLError):
                closed = time.monotonic() - start
                break
        self.assertIsNotNone(closed, "the slow client was never closed")
        self.assertLess(closed, 10)
        try:
            self.assertEqual(idle.recv(1), b"")
        except ConnectionResetError:
            pass
        # Real clients are still served.
        st, _ = self.cas.request("GET", "/v1/health")
        self.assertEqual(st, 200)
        s.close()
        idle.close()

    # ---- attestation ----

    def challenge(self):
        st, j = self.cas.request("POST", "/v1/attest/challenge")
        self.assertEqual(st, 200, j)
        self.assertGreater(j["expires_in"], 0)
        ch = base64.b64decode(j["challenge"])
        self.assertEqual(len(ch), 32)
        return ch

    def attest(self, config_id="s/app", ch=None, p256=False, measurement=MEAS, report_data=None, provider="sim"):
        ch = ch if ch is not None else self.challenge()
        if p256:
            priv = ec.generate_private_key(ec.SECP256R1())
            pub = priv.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)
        else:
            priv = x25519.X25519PrivateKey.generate()
            pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        rd = report_data or hashlib.sha256(ch + pub).hexdigest()
        body = {"challenge": base64.b64encode(ch).decode(), "config_id": config_id, "provider": provider,
                "evidence": {"measurement": measurement, "report_data": rd},
                "public_key": base64.b64encode(pub).decode()}
        st, j = self.cas.request("POST", "/v1/attest", json.dumps(body))
        return st, j, (priv, pub, ch, config_id)

    def open_envelope(self, j, keys):
        priv, pub, ch, config_id = keys
        spub = base64.b64decode(j["ephemeral_public_key"])
        if isinstance(priv, x25519.X25519PrivateKey):
            shared = priv.exchange(x25519.X25519PublicKey.from_public_bytes(spub))
        else:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), spub)
            shared = priv.exchange(ec.ECDH(), peer)
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=ch,
                   info=b"sconify-cas v1 config key" + pub + spub).derive(shared)
        plain = AESGCM(key).decrypt(base64.b64decode(j["nonce"]), base64.b64decode(j["ciphertext"]),
                                    config_id.encode())
        return decode_config(plain)

    def test_sim_attestation_releases_the_configuration(self):
        h = self.create(policy("s"))["hash"]
        for p256 in (False, True):
            st, j, keys = self.attest(p256=p256)
            self.assertEqual(st, 200, j)
            self.assertEqual(j["session_hash"], h)
            cfg = self.open_envelope(j, keys)
            self.assertEqual(cfg["magic"], b"sconify-cas-config-v2")
            self.assertEqual(cfg["config_id"], "s/app")
            self.assertEqual(cfg["session_hash"], h)
            argv = cfg["argv"]
            self.assertEqual(argv[0], b"/bin/app")
            self.assertEqual(argv[3], b"two words")
            pw = argv[2]
            self.assertRegex(pw.decode(), "^[A-Za-z0-9]{20}$")  # generated by the CAS
            self.assertEqual(cfg["env"], [b"TOKEN=" + GIVEN_SECRET.encode()])
            self.assertEqual(cfg["pwd"], b"/app")
            self.assertEqual(cfg["user"], b"app:staff")
            self.assertEqual(cfg["fspf_path"], b"/.sconify/fspf")
            self.assertEqual(cfg["fspf_key"].hex(), FSPF_KEY)
            self.assertEqual(cfg["fspf_tag"].hex(), FSPF_TAG)
            self.assertEqual(cfg["files"], [(b"/etc/app.conf", b"pw=" + pw)])
            if not p256:
                first_pw = pw
        self.assertEqual(pw, first_pw, "a generated secret keeps its value")
        # ... across a restart and an update too.
        self.cas.stop()
        self.cas.start()
        self.create(policy("s", predecessor=h), want=200)
        st, j, keys = self.attest()
        self.assertEqual(st, 200, j)
        self.assertEqual(self.open_envelope(j, keys)["argv"][2], first_pw)

    def test_replayed_challenge_refused(self):
        self.create(policy("s"))
        ch = self.challenge()
        st, j, _ = self.attest(ch=ch)
        self.assertEqual(st, 200, j)
        st, j, _ = self.attest(ch=ch)
        self.assertEqual(st, 401)
        self.assertIn("unknown or already used", j["error"])
        # A failed attempt uses the challenge up too.
        ch = self.challenge()
        st, _, _ = self.attest(ch=ch, measurement=OTHER_MEAS)
        self.assertEqual(st, 403)
        st, j, _ = self.attest(ch=ch)
        self.assertEqual(st, 401)
        st, j, _ = self.attest(ch=os.urandom(32))
        self.assertEqual(st, 401)

    def test_expired_challenge_refused(self):
        self.create(policy("s"))
        ch = self.challenge()
        time.sleep(2.5)
        st, j, _ = self.attest(ch=ch)
        self.assertEqual(st, 401)
        self.assertIn("expired", j["error"])

    def test_wrong_measurement_refused(self):
        self.create(policy("s"))
        st, j, _ = self.attest(measurement=OTHER_MEAS)
        self.assertEqual(st, 403)
        self.assertIn("not accepted", j["error"])
        self.assertNotIn("ciphertext", j)

    def test_report_data_must_bind_challenge_and_key(self):
        self.create(policy("s"))
        st, j, _ = self.attest(report_data="00" * 32)
        self.assertEqual(st, 403)
        self.assertIn("report_data", j["error"])

    def test_sim_evidence_against_hardware_policy_refused(self):
        self.create(policy("hw", mode="hardware"))
        st, j, _ = self.attest(config_id="hw/app")
        self.assertEqual(st, 403)
        self.assertIn("hardware", j["error"])

    def test_unknown_provider_service_and_session(self):
        self.create(policy("s"))
        st, j, _ = self.attest(provider="sgx-magic")
        self.assertEqual(st, 400)
        st, j, _ = self.attest(config_id="s/nope")
        self.assertEqual(st, 404)
        st, j, _ = self.attest(config_id="nope/app")
        self.assertEqual(st, 404)
        st, j = self.cas.request("POST", "/v1/attest", "{not json")
        self.assertEqual(st, 400)

    def test_challenge_flood_does_not_lock_out_and_used_set_is_bounded(self):
        self.cas.stop()
        self.cas = Cas(self.cas.data, "--max-challenges", "3").start()
        self.create(policy("s"))
        c = self.cas.connect()
        for _ in range(200):  # one keep-alive connection asking in a loop (review item 2)
            c.request("POST", "/v1/attest/challenge")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        c.close()
        for _ in range(3):
            st, j, _ = self.attest()
            self.assertEqual(st, 200, j)
        # Three used challenges within their lifetime fill the used-set.
        st, j, _ = self.attest()
        self.assertEqual(st, 503, j)
        self.assertIn("too many attestations in flight", j["error"])

    def test_sim_evidence_refused_without_allow_sim(self):
        self.cas.stop()
        self.cas = Cas(self.cas.data, allow_sim=False).start()
        self.create(policy("s"))
        st, j, _ = self.attest()
        self.assertEqual(st, 403, j)
        self.assertIn("--allow-sim", j["error"])
        self.assertNotIn("ciphertext", j)

    def test_mode_change_regenerates_generated_secrets(self):
        h = self.create(policy("s"))["hash"]
        st, j, keys = self.attest()
        self.assertEqual(st, 200, j)
        pw1 = self.open_envelope(j, keys)["argv"][2]
        h = self.create(policy("s", mode="hardware", predecessor=h), want=200)["hash"]
        self.create(policy("s", mode="sim", predecessor=h), want=200)
        st, j, keys = self.attest()
        self.assertEqual(st, 200, j)
        self.assertNotEqual(self.open_envelope(j, keys)["argv"][2], pw1)

    def test_refusals_are_counted_not_one_row_each(self):
        self.create(policy("s"))
        for _ in range(5):
            st, _, _ = self.attest(measurement=OTHER_MEAS)
            self.assertEqual(st, 403)
        self.cas.stop()  # flushes the counted refusals
        db = sqlite3.connect(os.path.join(self.cas.data, "cas.db"))
        rows = db.execute("SELECT detail FROM audit WHERE action = 'attest' AND outcome = 'refused'").fetchall()
        db.close()
        self.assertEqual(len(rows), 1, rows)
        self.assertIn("(5 times since", rows[0][0])
        self.assertIn("from 127.0.0.1", rows[0][0])

    # ---- connections ----

    def test_per_ip_cap_closes_the_newest(self):
        self.cas.stop()
        self.cas = Cas(self.cas.data, "--max-connections-per-ip", "4").start()
        idle = [socket.create_connection(("127.0.0.1", self.cas.port)) for _ in range(4)]
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", self.cas.port))
        extra.settimeout(5)
        try:
            self.assertEqual(extra.recv(1), b"")
        except ConnectionResetError:
            pass
        # Another address is served.
        st, _ = self.cas.request("GET", "/v1/health", source="127.0.0.2")
        self.assertEqual(st, 200)
        for s in idle + [extra]:
            s.close()

    def test_idle_connections_do_not_keep_real_clients_out(self):
        self.cas.stop()
        self.cas = Cas(self.cas.data, "--max-connections", "8", "--max-connections-per-ip", "100").start()
        idle = [socket.create_connection(("127.0.0.1", self.cas.port)) for _ in range(8)]
        time.sleep(0.3)
        for _ in range(3):  # at the cap, the oldest idle one makes room
            st, _ = self.cas.request("GET", "/v1/health")
            self.assertEqual(st, 200)
        closed = 0
        for s in idle:
            s.settimeout(2)
            try:
                closed += s.recv(1) == b""
            except (ConnectionResetError, socket.timeout):
                pass
            s.close()
        self.assertGreaterEqual(closed, 1)

    def test_data_dir_for_others_refused_and_files_0600(self):
        for f in ("cas.db", "cas.db-wal"):
            p = os.path.join(self.cas.data, f)
            if os.path.exists(p):
                self.assertEqual(os.stat(p).st_mode & 0o077, 0, f)
        self.cas.stop()
        os.chmod(self.cas.data, 0o755)
        p = harness.run([CAS, "serve", "--listen", "127.0.0.1:0", "--data", self.cas.data], timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("accessible by group or others", p.stderr_text)
        os.chmod(self.cas.data, 0o700)

    # ---- store ----

    def test_kill9_after_acknowledged_write_loses_nothing(self):
        h = self.create(policy("durable"))["hash"]
        for i in range(5):
            self.cas.stop(signal.SIGKILL)
            self.cas.start()
            st, j = self.cas.request("GET", "/v1/sessions/durable", client=self.a)
            self.assertEqual((st, j["hash"]), (200, h))
            h = self.create(policy("durable", predecessor=h, measurement=f"{i:02x}" * 32), want=200)["hash"]
        self.cas.stop(signal.SIGKILL)
        self.cas.start()
        st, j = self.cas.request("GET", "/v1/sessions/durable", client=self.a)
        self.assertEqual((st, j["hash"]), (200, h))

    def test_concurrent_writes_all_land_and_survive_kill9_after_their_replies(self):
        """Group commit (docs/cas.md, "The store"): creates, conflicting
        updates and key releases from many clients at once share
        transactions; every acknowledged one is on disk when the CAS is
        killed right after the last reply, and of concurrent updates naming
        the same predecessor exactly one wins."""
        import concurrent.futures as cf
        h = self.create(policy("s"))["hash"]

        def create(i):
            st, j = self.cas.request("POST", "/v1/sessions", policy(f"c{i}"), self.a)
            return ("create", f"c{i}", st, j)

        def update(i):
            reader = f"{i + 0x20:02x}" * 32  # each update a different document
            st, j = self.cas.request("POST", "/v1/sessions", policy("s", predecessor=h, read=f"[CREATOR, {reader}]"),
                                     self.a)
            return ("update", i, st, j)

        def attest(i):
            st, j, _ = self.attest()
            return ("attest", i, st, j)

        jobs = [create] * 12 + [update] * 6 + [attest] * 30
        with cf.ThreadPoolExecutor(max_workers=24) as ex:
            results = list(ex.map(lambda fi: fi[1](fi[0]), enumerate(jobs)))
        self.cas.stop(signal.SIGKILL)
        created = [r[1] for r in results if r[0] == "create"]
        self.assertEqual([r[2] for r in results if r[0] == "create"], [201] * 12, results)
        updates = [r for r in results if r[0] == "update"]
        winners = [r for r in updates if r[2] == 200]
        self.assertEqual(len(winners), 1, updates)
        self.assertEqual(sorted(r[2] for r in updates), [200] + [409] * 5)
        released = [r for r in results if r[0] == "attest" and r[2] == 200]
        self.assertEqual(len(released), 30, [r for r in results if r[0] == "attest" and r[2] != 200])
        db = sqlite3.connect(os.path.join(self.cas.data, "cas.db"))
        names = {n for (n,) in db.execute("SELECT name FROM sessions")}
        (n_released,) = db.execute(
            "SELECT count(*) FROM audit WHERE action = 'attest' AND outcome = 'released'").fetchone()
        (stored_hash,) = db.execute("SELECT hash FROM sessions WHERE name = 's'").fetchone()
        (n_changes,) = db.execute(
            "SELECT count(*) FROM audit WHERE action IN ('session.create', 'session.update') AND outcome = 'ok'"
        ).fetchone()
        db.close()
        self.assertTrue(set(created) <= names, set(created) - names)
        self.assertEqual(n_released, 30)
        self.assertEqual(stored_hash, winners[0][3]["hash"])
        self.assertEqual(n_changes, 1 + 12 + 1)
        self.cas.start()
        st, j = self.cas.request("GET", "/v1/sessions/s", client=self.a)
        self.assertEqual((st, j["hash"]), (200, winners[0][3]["hash"]))

    def test_flipped_byte_in_a_row_is_detected(self):
        self.create(policy("s"))
        self.create(policy("t"))
        self.cas.stop()
        db = sqlite3.connect(os.path.join(self.cas.data, "cas.db"))
        (blob,) = db.execute("SELECT sealed FROM sessions WHERE name = 's'").fetchone()
        blob = bytearray(blob)
        blob[len(blob) // 2] ^= 1
        db.execute("UPDATE sessions SET sealed = ? WHERE name = 's'", (bytes(blob),))
        # A row moved to another name does not open either.
        db.execute("UPDATE sessions SET name = 'u' WHERE name = 't'")
        db.commit()
        db.close()
        self.cas.start()
        st, j = self.cas.request("GET", "/v1/sessions/s", client=self.a)
        self.assertEqual(st, 500)
        self.assertIn("does not verify", j["error"])
        st, j, _ = self.attest()
        self.assertEqual(st, 500)
        st, j = self.cas.request("GET", "/v1/sessions/u", client=self.a)
        self.assertEqual(st, 500)
        self.assertIn("does not verify", j["error"])

    def test_another_database_key_is_refused(self):
        self.create(policy("s"))
        self.cas.stop()
        other = os.path.join(self.tmp, "other.key")
        with open(other, "w") as f:
            f.write("ab" * 32 + "\n")
        os.chmod(other, 0o600)
        p = harness.run([CAS, "serve", "--listen", "127.0.0.1:0", "--data", self.cas.data, "--db-key-file",
                         other], timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("database key", p.stderr_text)
        os.chmod(other, 0o644)
        p = harness.run([CAS, "serve", "--listen", "127.0.0.1:0", "--data", self.cas.data, "--db-key-file",
                         other], timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("readable by others", p.stderr_text)

    def test_secrets_are_sealed_and_audit_log_holds_no_secret(self):
        h = self.create(policy("s"))["hash"]
        st, j, keys = self.attest()
        self.assertEqual(st, 200, j)
        pw = self.open_envelope(j, keys)["argv"][2]
        self.attest(measurement=OTHER_MEAS)
        self.create(policy("s", predecessor=h), want=200)
        self.cas.request("DELETE", "/v1/sessions/s", client=self.b)
        self.cas.stop()
        db = sqlite3.connect(os.path.join(self.cas.data, "cas.db"))
        rows = db.execute("SELECT time, client, action, target, outcome, detail FROM audit ORDER BY id").fetchall()
        db.close()
        events = [(r[1], r[2], r[4]) for r in rows]
        self.assertIn((self.a["id"], "session.create", "ok"), events)
        self.assertIn((self.a["id"], "session.update", "ok"), events)
        self.assertIn(("-", "attest", "released"), events)
        self.assertIn(("-", "attest", "refused"), events)
        self.assertIn((self.b["id"], "session.delete", "refused"), events)
        for r in rows:
            self.assertRegex(r[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        files = b""
        for root, _, names in os.walk(self.cas.data):
            for n in names:
                if n not in ("db.key", "identity.key"):
                    with open(os.path.join(root, n), "rb") as f:
                        files += f.read()
        with open(os.path.join(self.tmp, "cas.stderr"), "rb") as f:
            files += f.read()
        for secret in (GIVEN_SECRET.encode(), pw, FSPF_KEY.encode(), bytes.fromhex(FSPF_KEY)):
            self.assertNotIn(secret, files)
            self.assertNotIn(secret, repr(rows).encode())


if __name__ == "__main__":
    harness.main()
