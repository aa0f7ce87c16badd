# SPDX-License-Identifier: Apache-2.0
"""`sconify keygen`, `sconify sign` and `sconify verify` (issue 7) against
loopback registries, checked both ways against cosignref.py: an independent
cosign-format signer and verifier (openssl CLI, plain HTTP, PyNaCl + scrypt;
no project code). Debian's skopeo and podman are built without sigstore, so
they cannot be the independent check. Keys are made here with openssl,
except the key made by the real cosign in ../shared/testvectors/cosign/."""

import base64
import http.client
import http.server
import json
import os
import pty
import re
import select
import stat
import subprocess
import termios
import threading
import time

import cosignref as ref
import harness
from registryenv import FaultProxy, Registry

REG = ("--tls-verify=false",)
# The key made by the real cosign (empty password) and its public key: in the
# source tree once the lead copies them there, else the shared test vectors.
VECTOR_DIR = os.environ.get("SCONIFY_COSIGN_VECTORS") or next(
    (d for d in (os.path.join(harness.SOURCE_ROOT, "testdata", "cosign"), "/work/shared/testvectors/cosign")
     if os.path.exists(os.path.join(d, "cosign-empty-password.key"))), "testdata/cosign")
VECTOR_KEY = os.path.join(VECTOR_DIR, "cosign-empty-password.key")
VECTOR_PUB = os.path.join(VECTOR_DIR, "cosign-empty-password.pub")
SIG_LINE = re.compile(r"^(sha256:[0-9a-f]{64}) (\S+):(sha256-[0-9a-f]{64}\.sig)$")


def fixture_ref(name):
    fx = next(f for f in harness.fixture_list() if f["name"] == name)
    return harness.absref(fx["ref"])


def sc(*args, password=None, cwd=None, env=None, timeout=300):
    """Runs sconify without a terminal (its own session, stdin /dev/null) and
    with COSIGN_PASSWORD set only when password is not None."""
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    env.update(extra)
    if password is not None:
        env["COSIGN_PASSWORD"] = password
    p = subprocess.run([harness.SCONIFY, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, cwd=cwd, timeout=timeout, start_new_session=True)
    p.stdout_text = p.stdout.decode("utf-8", "replace")
    p.stderr_text = p.stderr.decode("utf-8", "replace")
    return p


def push(reg, src, repo, tag, creds=None):
    """skopeo copies src (all platforms) to reg as repo:tag; returns the
    manifest digest the registry serves."""
    opts = ["--dest-creds", f"{creds[0]}:{creds[1]}"] if creds else []
    harness.run(["skopeo", "copy", "--quiet", "--all", "--dest-tls-verify=false", *opts, src,
                 f"docker://{reg.host}/{repo}:{tag}"], check=True)
    return ref.Client(reg.host, creds).digest(repo, tag)


def push_docker_types(reg, src, repo, tag):
    """Pushes a fixture with Docker media types; skopeo 1.9 does not find
    those in an OCI layout, so sconify's copy (tested elsewhere) does it.
    Returns the manifest digest the registry serves."""
    harness.run([harness.SCONIFY, "copy", "-q", "--all", "--dest-tls-verify=false", src,
                 f"docker://{reg.host}/{repo}:{tag}"], check=True)
    return ref.Client(reg.host).digest(repo, tag)


class SwapProxy:
    """A read-only plain-HTTP proxy in front of a registry that answers GETs
    of the paths in `swap` with other bytes (a registry serving a blob whose
    content does not match its digest)."""

    def __init__(self, target_host, swap):
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._forward(head=True)

            def do_GET(self):
                self._forward(head=False)

            def _forward(self, head):
                conn = http.client.HTTPConnection(target_host, timeout=30)
                try:
                    conn.request(self.command, self.path, headers={k: v for k, v in self.headers.items()
                                                                  if k.lower() != "host"})
                    r = conn.getresponse()
                    body = r.read()
                finally:
                    conn.close()
                path = self.path.split("?", 1)[0]
                if path in swap and r.status == 200:
                    body = swap[path]
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


class SignTests(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.keys = os.path.join(self.tmp, "keys")
        os.makedirs(self.keys)

    def key(self, name, form="pkcs8"):
        """A fresh P-256 key made by openssl: (private PEM, public PEM)."""
        return ref.gen_key(self.keys, name, form), os.path.join(self.keys, f"{name}.pub")

    def sign(self, image, key, *opts, password=None):
        """sconify sign; asserts exit 0; returns [(digest, docker ref, tag)]."""
        p = sc("sign", *REG, "--key", key, *opts, image, password=password)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        lines = p.stdout_text.splitlines()
        self.assertTrue(lines, "sign printed nothing")
        out = []
        for line in lines:
            m = SIG_LINE.match(line)
            self.assertTrue(m, f"sign output line {line!r} is not `<digest> <repo>:sha256-<hex>.sig'")
            self.assertEqual(m.group(3), ref.sig_tag(m.group(1)))
            out.append(m.groups())
        return out

    def verify(self, image, pub, *opts):
        return sc("verify", *REG, "--key", pub, *opts, image)

    def assertVerifies(self, image, pub, payloads, *opts):
        p = self.verify(image, pub, *opts)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        got = json.loads(p.stdout_text)
        self.assertIsInstance(got, list)
        self.assertCountEqual([json.dumps(x, sort_keys=True) for x in got],
                              [json.dumps(json.loads(x), sort_keys=True) for x in payloads])

    def assertFailsMatching(self, p, pattern, names=None):
        """Exit 1 with one `sconify: error:` line matching pattern (a regex)."""
        self.assertEqual(p.returncode, 1, f"expected exit 1, got {p.returncode}; stderr: {p.stderr_text}")
        errors = [l for l in p.stderr_text.splitlines() if l.startswith("sconify: error:")]
        self.assertEqual(len(errors), 1, f"expected one error line: {p.stderr_text}")
        self.assertRegex(errors[0], pattern)
        if names:
            self.assertIn(names, errors[0])

    def assertIndependentlyVerified(self, client, repo, digest, pub, optional=None, host=None):
        """cosignref finds a layer of digest's .sig signed by pub over the
        proper payload (identity host/repo, optional as given)."""
        docs = ref.verify(client, repo, digest, pub, digest=digest)
        want = json.loads(ref.payload(f"{host or client.host}/{repo}", digest, optional))
        self.assertIn(want, docs)

    # ---- the reference module against itself and the cosign vector ----

    def test_reference_reads_the_cosign_vector_key(self):
        for name, (open_box, _) in ref.secretbox_backends().items():
            with self.subTest(secretbox=name):
                pem = os.path.join(self.tmp, f"vector-{name}.pem")
                doc, typ = ref.read_cosign_key_document(VECTOR_KEY)
                self.assertEqual(typ, "ENCRYPTED SIGSTORE PRIVATE KEY")
                p = doc["kdf"]["params"]
                box_key = ref._scrypt(b"", base64.b64decode(doc["kdf"]["salt"]), p["N"], p["r"], p["p"])
                der = open_box(box_key, base64.b64decode(doc["cipher"]["nonce"]),
                               base64.b64decode(doc["ciphertext"]))
                self.assertEqual(der, ref.decrypt_cosign_key(VECTOR_KEY, b""))
                ref.cosign_key_to_pem(VECTOR_KEY, b"", pem)
                derived = os.path.join(self.tmp, f"vector-{name}.pub")
                with open(derived, "wb") as f:
                    f.write(ref.public_pem(pem))
                self.assertEqual(ref.public_der(derived), ref.public_der(VECTOR_PUB))
        with self.assertRaises(ValueError):
            ref.decrypt_cosign_key(VECTOR_KEY, b"not the password")

    def test_reference_signer_and_verifier_agree_and_reject_other_digests(self):
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            a = push(reg, fixture_ref("oci/layers"), "self/app", "a")
            b = push(reg, fixture_ref("oci/uncompressed"), "self/app", "b")
            key, pub = self.key("k")
            enc = ref.encrypt_cosign_key(key, b"pw", os.path.join(self.keys, "k.key"))
            again = ref.cosign_key_to_pem(enc, b"pw", os.path.join(self.keys, "k2.pem"))
            body = ref.sign(c, "self/app", a, again, optional={"x": "y"})
            self.assertEqual(ref.verify(c, "self/app", "a", pub, annotations={"x": "y"}), [json.loads(body)])
            config = json.loads(c.manifest("self/app", ref.sig_tag(a))[0])["config"]
            self.assertEqual(config["size"], 233)  # go-containerregistry's size for one layer
            with self.assertRaisesRegex(ref.VerifyError, "no signatures"):
                ref.verify(c, "self/app", "b", pub)
            ref.copy_signatures(c, "self/app", a, b)
            with self.assertRaisesRegex(ref.VerifyError, "not " + b):
                ref.verify(c, "self/app", "b", pub)
            _, other = self.key("other")
            with self.assertRaisesRegex(ref.VerifyError, "does not verify"):
                ref.verify(c, "self/app", "a", other)

    # ---- keygen ----

    def test_keygen_writes_a_cosign_key_that_decrypts_independently(self):
        p = sc("keygen", "--prefix", "mine", password="correct horse", cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        key, pub = os.path.join(self.tmp, "mine.key"), os.path.join(self.tmp, "mine.pub")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        doc, typ = ref.read_cosign_key_document(key)
        self.assertEqual(typ, "ENCRYPTED SIGSTORE PRIVATE KEY")
        self.assertEqual(doc["kdf"]["name"], "scrypt")
        self.assertEqual(doc["kdf"]["params"], {"N": 65536, "r": 8, "p": 1})
        self.assertEqual(len(base64.b64decode(doc["kdf"]["salt"], validate=True)), 32)
        self.assertEqual(doc["cipher"]["name"], "nacl/secretbox")
        self.assertEqual(len(base64.b64decode(doc["cipher"]["nonce"], validate=True)), 24)
        with open(pub) as f:
            self.assertTrue(f.read().startswith("-----BEGIN PUBLIC KEY-----\n"))
        self.assertEqual(ref.public_curve(pub), "prime256v1")
        pem = ref.cosign_key_to_pem(key, b"correct horse", os.path.join(self.tmp, "mine.pem"))
        derived = os.path.join(self.tmp, "derived.pub")
        with open(derived, "wb") as f:
            f.write(ref.public_pem(pem))
        self.assertEqual(ref.public_der(derived), ref.public_der(pub))
        with self.assertRaises(ValueError):
            ref.decrypt_cosign_key(key, b"wrong horse")
        # and the key signs what its .pub verifies
        sig = ref.ecdsa_sign(pem, b"payload")
        self.assertTrue(ref.ecdsa_verify(pub, b"payload", sig))

    def test_keygen_default_prefix_is_cosign_and_empty_password_works(self):
        p = sc("keygen", password="", cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertEqual(sorted(os.listdir(self.tmp)), ["cosign.key", "cosign.pub", "keys"])
        pem = ref.cosign_key_to_pem(os.path.join(self.tmp, "cosign.key"), b"", os.path.join(self.keys, "c.pem"))
        derived = os.path.join(self.keys, "c.pub")
        with open(derived, "wb") as f:
            f.write(ref.public_pem(pem))
        self.assertEqual(ref.public_der(derived), ref.public_der(os.path.join(self.tmp, "cosign.pub")))

    def test_keygen_refuses_to_overwrite_unless_forced(self):
        for existing in ("k.key", "k.pub"):
            with self.subTest(existing=existing):
                d = os.path.join(self.tmp, existing.replace(".", "-"))
                os.makedirs(d)
                with open(os.path.join(d, existing), "w") as f:
                    f.write("keep me\n")
                before = harness.snapshot(d)
                p = sc("keygen", "--prefix", "k", password="pw", cwd=d)
                self.assertFailsMatching(p, r"\S", names=existing)
                self.assertEqual(harness.snapshot(d), before)
                p = sc("keygen", "--prefix", "k", "--force", password="pw", cwd=d)
                self.assertEqual(p.returncode, 0, p.stderr_text)
                ref.decrypt_cosign_key(os.path.join(d, "k.key"), b"pw")
                self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "k.key")).st_mode), 0o600)
                self.assertEqual(ref.public_curve(os.path.join(d, "k.pub")), "prime256v1")

    def test_keygen_without_terminal_or_password_fails_and_writes_nothing(self):
        p = sc("keygen", "--prefix", "k", cwd=self.tmp)
        self.assertEqual(p.returncode, 1, p.stderr_text)
        self.assertIn("COSIGN_PASSWORD", p.stderr_text)
        self.assertEqual(os.listdir(self.tmp), ["keys"])

    def _keygen_on_a_terminal(self, answers):
        """Runs keygen with a pseudo-terminal as its controlling terminal and
        no COSIGN_PASSWORD; answers each password prompt in turn. Returns
        (exit code, everything it wrote to the terminal)."""
        env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.chdir(self.tmp)
                os.execve(harness.SCONIFY, [harness.SCONIFY, "keygen", "--prefix", "tty"], env)
            finally:
                os._exit(127)
        out, answered = b"", 0
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 0.05)
                if r:
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    out += chunk
                prompts = len(re.findall(rb"(?i)password[^\n]*:", out))
                # answer once the prompt is out and echo is off (the
                # master reports the terminal's settings): typing earlier
                # would be echoed, and flushed by a TCSAFLUSH
                if answered < len(answers) and prompts > answered and not termios.tcgetattr(fd)[3] & termios.ECHO:
                    os.write(fd, answers[answered].encode() + b"\n")
                    answered += 1
        finally:
            if time.monotonic() >= deadline:
                os.kill(pid, 9)
            _, status = os.waitpid(pid, 0)
            os.close(fd)
        return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")

    def test_keygen_prompts_twice_on_the_terminal(self):
        code, text = self._keygen_on_a_terminal(["tty-pass", "tty-pass"])
        self.assertEqual(code, 0, text)
        self.assertNotIn("tty-pass", text)  # no echo
        ref.decrypt_cosign_key(os.path.join(self.tmp, "tty.key"), b"tty-pass")
        for name in ("tty.key", "tty.pub"):
            os.unlink(os.path.join(self.tmp, name))
        code, text = self._keygen_on_a_terminal(["one", "two"])
        self.assertEqual(code, 1, text)
        self.assertEqual(os.listdir(self.tmp), ["keys"])

    # ---- sign, checked by the independent verifier ----

    def test_pkcs8_signature_is_accepted_by_the_independent_verifier(self):
        key, pub = self.key("p8")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "plain/app", "v1")
            [(digest, repo, tag)] = self.sign(f"docker://{reg.host}/plain/app:v1", key)
            self.assertEqual((digest, repo, tag), (d, f"{reg.host}/plain/app", ref.sig_tag(d)))
            self.assertEqual(ref.verify(c, "plain/app", "v1", pub),
                             [json.loads(ref.payload(f"{reg.host}/plain/app", d, None))])
            # the layout cosign writes: one simple-signing layer, the empty config
            raw, media_type, _ = c.manifest("plain/app", tag)
            m = json.loads(raw)
            self.assertEqual(media_type, ref.MT_OCI_MANIFEST)
            self.assertEqual(m["schemaVersion"], 2)
            self.assertEqual(m["config"]["mediaType"], ref.MT_OCI_CONFIG)
            [layer] = m["layers"]
            self.assertEqual(layer["mediaType"], ref.MT_SIMPLESIGNING)
            base64.b64decode(layer["annotations"][ref.SIG_ANNOTATION], validate=True)
            self.assertEqual(c.blob("plain/app", m["config"]["digest"]), ref.empty_config([layer["digest"]]))
            # the bytes cosign (Go encoding/json) writes for this payload
            self.assertEqual(c.blob("plain/app", layer["digest"]), ref.payload(f"{reg.host}/plain/app", d))

    def test_sec1_key_signs_by_digest_and_without_transport(self):
        key, pub = self.key("sec1", form="sec1")
        with open(key) as f:
            self.assertIn("BEGIN EC PRIVATE KEY", f.read())
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "sec/app", "v1")
            for image in (f"docker://{reg.host}/sec/app@{d}", f"{reg.host}/sec/app:v1"):
                with self.subTest(image=image):
                    [(digest, repo, _)] = self.sign(image, key)
                    self.assertEqual((digest, repo), (d, f"{reg.host}/sec/app"))
            self.assertIndependentlyVerified(c, "sec/app", d, pub)

    def test_other_key_types_sign_with_cosigns_hashes(self):
        # beyond P-256: what cosign itself signs with (protocols.md §4.1)
        kinds = {"P-384": (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], "sha384"),
                 "P-521": (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], "sha512"),
                 "RSA-2048": (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "sha256")}
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "kinds/app", "v1")
            image = f"docker://{reg.host}/kinds/app:v1"
            for name, (args, hash) in kinds.items():
                with self.subTest(key=name):
                    key, pub = os.path.join(self.keys, f"{name}.pem"), os.path.join(self.keys, f"{name}.pub")
                    harness.run(["openssl", "genpkey", *args, "-out", key], check=True)
                    harness.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True)
                    self.sign(image, key)
                    layer = ref.sig_manifest(c, "kinds/app", d)["layers"][-1]
                    body = c.blob("kinds/app", layer["digest"])
                    self.assertEqual(body, ref.payload(f"{reg.host}/kinds/app", d))
                    sig = base64.b64decode(layer["annotations"][ref.SIG_ANNOTATION], validate=True)
                    self.assertTrue(ref.ecdsa_verify(pub, body, sig, hash=hash))
                    p = self.verify(image, pub)
                    self.assertEqual(p.returncode, 0, p.stderr_text)
            ed = os.path.join(self.keys, "ed.pem")
            harness.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", ed], check=True)
            before = ref.sig_manifest(c, "kinds/app", d)
            self.assertFailsMatching(sc("sign", *REG, "--key", ed, image), r"(?i)ed25519", names=ed)
            self.assertEqual(ref.sig_manifest(c, "kinds/app", d), before)

    def test_old_signature_is_rejected_once_the_tag_moves(self):
        key, pub = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            image = f"docker://{reg.host}/moving/app:latest"
            old = push(reg, fixture_ref("oci/layers"), "moving/app", "latest")
            self.sign(image, key)
            self.assertVerifies(image, pub, [ref.payload(f"{reg.host}/moving/app", old)])
            new = push(reg, fixture_ref("oci/uncompressed"), "moving/app", "latest")
            self.assertNotEqual(old, new)
            with self.assertRaisesRegex(ref.VerifyError, "no signatures"):
                ref.verify(c, "moving/app", "latest", pub)
            # the old signature does not cover the new digest
            with self.assertRaisesRegex(ref.VerifyError, "not " + new):
                ref.verify_manifest(c, "moving/app", new, ref.sig_manifest(c, "moving/app", old), pub)
            self.assertFailsMatching(self.verify(image, pub), "no signatures")
            # still good for the digest it was made for
            self.assertVerifies(f"docker://{reg.host}/moving/app@{old}", pub,
                                [ref.payload(f"{reg.host}/moving/app", old)])

    def test_reference_signature_is_accepted_by_verify(self):
        key, pub = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "theirs/app", "v1")
            body = ref.sign(c, "theirs/app", d, key, optional={"by": "cosignref"})
            self.assertVerifies(f"docker://{reg.host}/theirs/app:v1", pub, [body])
            self.assertVerifies(f"{reg.host}/theirs/app@{d}", pub, [body], "-a", "by=cosignref")

    def test_cosign_vector_key_signs_with_empty_password(self):
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "vec/app", "v1")
            image = f"docker://{reg.host}/vec/app:v1"
            self.sign(image, VECTOR_KEY, password="")
            self.assertIndependentlyVerified(c, "vec/app", d, VECTOR_PUB)
            self.assertVerifies(image, VECTOR_PUB, [ref.payload(f"{reg.host}/vec/app", d)])

    def test_key_encrypted_by_the_reference_signs(self):
        key, pub = self.key("k")
        enc = ref.encrypt_cosign_key(key, b"s3cret pass", os.path.join(self.keys, "k.key"))
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "enc/app", "v1")
            self.sign(f"docker://{reg.host}/enc/app:v1", enc, password="s3cret pass")
            self.assertIndependentlyVerified(c, "enc/app", d, pub)

    def test_two_keys_signatures_coexist(self):
        (k1, p1), (k2, p2), (_, p3) = self.key("one"), self.key("two"), self.key("three")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "two/app", "v1")
            image = f"docker://{reg.host}/two/app:v1"
            self.sign(image, k1)
            self.sign(image, k2)
            m = ref.sig_manifest(c, "two/app", d)
            self.assertEqual(len(m["layers"]), 2)
            config = json.loads(c.blob("two/app", m["config"]["digest"]))
            self.assertEqual(config["rootfs"], {"type": "layers", "diff_ids": [l["digest"] for l in m["layers"]]})
            want = ref.payload(f"{reg.host}/two/app", d)
            for pub in (p1, p2):
                self.assertIndependentlyVerified(c, "two/app", d, pub)
                self.assertVerifies(image, pub, [want])
            self.assertFailsMatching(self.verify(image, p3), r"no signature.*verif")

    def test_sign_appends_to_signatures_made_elsewhere(self):
        (k1, p1), (k2, p2) = self.key("theirs"), self.key("ours")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "app/end", "v1")
            theirs = ref.sign(c, "app/end", d, k1, optional={"by": "cosignref"})
            before = ref.sig_manifest(c, "app/end", d)["layers"]
            self.sign(f"docker://{reg.host}/app/end:v1", k2)
            after = ref.sig_manifest(c, "app/end", d)["layers"]
            self.assertEqual(len(after), 2)
            self.assertEqual(after[0], before[0])  # kept as it was, annotations included
            self.assertIndependentlyVerified(c, "app/end", d, p2)
            self.assertVerifies(f"docker://{reg.host}/app/end:v1", p1, [theirs])

    def test_sign_and_verify_over_tls_with_cert_dir(self):
        key, pub = self.key("k")
        with Registry(self.tmp, tls=True) as reg:
            c = ref.Client(reg.host, ca_file=reg.ca_file)
            harness.run(["skopeo", "copy", "--quiet", "--dest-cert-dir", reg.cert_dir, fixture_ref("oci/layers"),
                         f"docker://{reg.host}/tls/app:v1"], check=True)
            d = c.digest("tls/app", "v1")
            image = f"docker://{reg.host}/tls/app:v1"
            p = sc("sign", "--key", key, image)  # the registry's CA is not trusted
            self.assertEqual(p.returncode, 1, p.stderr_text)
            p = sc("sign", "--key", key, "--cert-dir", reg.untrusted_cert_dir, image)
            self.assertEqual(p.returncode, 1, p.stderr_text)
            self.assertEqual(c.tags("tls/app"), ["v1"])
            p = sc("sign", "--key", key, "--cert-dir", reg.cert_dir, image)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertIndependentlyVerified(c, "tls/app", d, pub)
            p = sc("verify", "--key", pub, "--cert-dir", reg.cert_dir, image)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertEqual(json.loads(p.stdout_text), [json.loads(ref.payload(f"{reg.host}/tls/app", d))])

    def test_annotations_are_signed_and_must_match(self):
        key, pub = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "ann/app", "v1")
            image = f"docker://{reg.host}/ann/app:v1"
            self.sign(image, key, "-a", "env=prod", "-a", "team=blue=green")
            optional = {"env": "prod", "team": "blue=green"}
            self.assertIndependentlyVerified(c, "ann/app", d, pub, optional=optional)
            want = [ref.payload(f"{reg.host}/ann/app", d, optional)]
            self.assertVerifies(image, pub, want)
            self.assertVerifies(image, pub, want, "-a", "env=prod")
            self.assertVerifies(image, pub, want, "-a", "env=prod", "-a", "team=blue=green")
            for pairs in (("env=dev",), ("env=prod", "owner=me"), ("team=blue",)):
                with self.subTest(annotations=pairs):
                    opts = [x for a in pairs for x in ("-a", a)]
                    self.assertFailsMatching(self.verify(image, pub, *opts), r"no signature.*verif")
            # a signature without annotations (optional null) matches no -a
            push(reg, fixture_ref("oci/uncompressed"), "ann/app", "plain")
            plain = f"docker://{reg.host}/ann/app:plain"
            self.sign(plain, key)
            self.assertFailsMatching(self.verify(plain, pub, "-a", "env=prod"), r"no signature.*verif")

    def test_signing_again_with_the_same_key_adds_nothing(self):
        key, pub = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "again/app", "v1")
            image = f"docker://{reg.host}/again/app:v1"
            self.sign(image, key)
            self.sign(image, key)
            self.assertEqual(len(ref.sig_manifest(c, "again/app", d)["layers"]), 1)
            # other annotations are another payload: a second signature
            self.sign(image, key, "-a", "env=prod")
            self.assertEqual(len(ref.sig_manifest(c, "again/app", d)["layers"]), 2)

    def test_annotations_that_no_verifier_reads_alike_are_refused(self):
        key, pub = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "odd/app", "v1")
            image = f"docker://{reg.host}/odd/app:v1"
            for bad, pattern in ((b"env\xff=prod", r"not UTF-8"), (b"timestamp=soon", r"timestamp")):
                with self.subTest(annotation=bad):
                    arg = bad.decode("utf-8", "surrogateescape")
                    self.assertFailsMatching(sc("sign", *REG, "--key", key, "-a", arg, image), pattern)
                    self.assertFailsMatching(self.verify(image, pub, "-a", arg), pattern)
            self.assertIsNone(ref.sig_manifest(c, "odd/app", d))
            # a timestamp is written as an integer, which containers/image requires
            self.sign(image, key, "-a", "timestamp=1700000000")
            got = json.loads(self.verify(image, pub, "-a", "timestamp=1700000000").stdout_text)
            self.assertEqual(got[0]["optional"], {"timestamp": 1700000000})

    def test_keygen_force_keeps_the_old_key_when_the_new_pair_cannot_be_written(self):
        d = os.path.join(self.tmp, "pair")
        os.makedirs(d)
        p = sc("keygen", "--prefix", "k", password="old", cwd=d)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        with open(os.path.join(d, "k.key"), "rb") as f:
            old = f.read()
        os.remove(os.path.join(d, "k.pub"))
        os.makedirs(os.path.join(d, "k.pub", "in-the-way"))  # rename over a non-empty directory fails
        p = sc("keygen", "--prefix", "k", "--force", password="new", cwd=d)
        self.assertEqual(p.returncode, 1, p.stderr_text)
        with open(os.path.join(d, "k.key"), "rb") as f:
            self.assertEqual(f.read(), old)
        self.assertEqual(sorted(os.listdir(d)), ["k.key", "k.pub"])

    def test_recursive_signs_the_index_and_each_manifest(self):
        key, pub = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            for fixture, index_type in (("oci/multiarch", ref.MT_OCI_INDEX), ("oci/docker-list", ref.MT_DOCKER_LIST)):
                with self.subTest(fixture=fixture):
                    src = fixture_ref(fixture)
                    repo, flat = f"{fixture}/rec", f"{fixture}/flat"
                    copy = push if index_type == ref.MT_OCI_INDEX else push_docker_types
                    index = copy(reg, src, repo, "all")
                    copy(reg, src, flat, "all")
                    raw, media_type, _ = c.manifest(repo, "all")
                    self.assertEqual(media_type, index_type)
                    children = [m["digest"] for m in json.loads(raw)["manifests"]]
                    self.assertGreaterEqual(len(children), 2)
                    lines = self.sign(f"docker://{reg.host}/{repo}:all", key, "--recursive")
                    self.assertCountEqual([l[0] for l in lines], [index, *children])
                    self.assertEqual({l[1] for l in lines}, {f"{reg.host}/{repo}"})
                    for d in (index, *children):
                        self.assertIndependentlyVerified(c, repo, d, pub)
                        self.assertVerifies(f"docker://{reg.host}/{repo}@{d}", pub,
                                            [ref.payload(f"{reg.host}/{repo}", d)])
                    # without --recursive only the index is signed
                    [(d, _, _)] = self.sign(f"docker://{reg.host}/{flat}:all", key)
                    self.assertEqual(d, index)
                    self.assertIndependentlyVerified(c, flat, index, pub)
                    for child in children:
                        self.assertIsNone(ref.sig_manifest(c, flat, child))

    def test_docker_schema2_image_signs(self):
        key, pub = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push_docker_types(reg, fixture_ref("oci/docker-types"), "dock/app", "v1")
            self.assertEqual(c.manifest("dock/app", "v1")[1], ref.MT_DOCKER_MANIFEST)
            [(digest, _, _)] = self.sign(f"docker://{reg.host}/dock/app:v1", key)
            self.assertEqual(digest, d)
            self.assertIndependentlyVerified(c, "dock/app", d, pub)
            self.assertVerifies(f"docker://{reg.host}/dock/app:v1", pub, [ref.payload(f"{reg.host}/dock/app", d)])

    def test_transient_registry_errors_are_retried(self):
        key, pub = self.key("k")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "retry/app", "v1")
            image = f"docker://{proxy.host}/retry/app:v1"
            env_fast = {"SCONIFY_RETRY_BASE_MS": "50"}
            proxy.fail("PUT", r"/manifests/sha256-[0-9a-f]{64}\.sig$", status=503, times=None)
            p = sc("sign", *REG, "--retry-times", "1", "--key", key, image, env=env_fast)
            self.assertEqual(p.returncode, 1, p.stderr_text)
            self.assertIsNone(ref.sig_manifest(c, "retry/app", d))
            proxy.clear_rules()
            failing = proxy.fail("PUT", r"/manifests/sha256-[0-9a-f]{64}\.sig$", status=503, times=1)
            resolve = proxy.fail("GET", r"/manifests/v1$", status=502, times=1)
            p = sc("sign", *REG, "--retry-times", "2", "--key", key, image, env=env_fast)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertEqual((failing.hits, resolve.hits), (1, 1))
            self.assertIndependentlyVerified(c, "retry/app", d, pub, host=proxy.host)

    # ---- failures ----

    def test_wrong_password_fails_and_pushes_nothing(self):
        key, _ = self.key("k")
        enc = ref.encrypt_cosign_key(key, b"right", os.path.join(self.keys, "k.key"))
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            push(reg, fixture_ref("oci/layers"), "pw/app", "v1")
            for key_file, password in ((enc, "Xq7-not-it"), (VECTOR_KEY, "Zk9-not-empty")):
                with self.subTest(key=key_file):
                    p = sc("sign", *REG, "--key", key_file, f"docker://{reg.host}/pw/app:v1", password=password)
                    self.assertFailsMatching(p, r"(?i)password|decrypt")
                    self.assertNotIn(password, p.stderr_text)
            self.assertEqual(c.tags("pw/app"), ["v1"])

    def test_wrong_public_key_fails(self):
        key, _ = self.key("signer")
        _, other = self.key("other")
        with Registry(self.tmp) as reg:
            push(reg, fixture_ref("oci/layers"), "wk/app", "v1")
            image = f"docker://{reg.host}/wk/app:v1"
            self.sign(image, key)
            p = self.verify(image, other)
            self.assertFailsMatching(p, r"no signature.*verif")
            self.assertEqual(p.stdout_text.strip(), "")
            self.assertFailsMatching(self.verify(image, VECTOR_PUB), r"no signature.*verif")

    def test_missing_signature_fails(self):
        _, pub = self.key("k")
        with Registry(self.tmp) as reg:
            push(reg, fixture_ref("oci/layers"), "unsigned/app", "v1")
            self.assertFailsMatching(self.verify(f"docker://{reg.host}/unsigned/app:v1", pub), "no signatures")

    def test_signature_over_another_digest_fails(self):
        key, pub = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            a = push(reg, fixture_ref("oci/layers"), "swap/app", "a")
            b = push(reg, fixture_ref("oci/uncompressed"), "swap/app", "b")
            self.sign(f"docker://{reg.host}/swap/app:a", key)
            ref.copy_signatures(c, "swap/app", a, b)
            with self.assertRaises(ref.VerifyError):
                ref.verify(c, "swap/app", "b", pub)
            self.assertFailsMatching(self.verify(f"docker://{reg.host}/swap/app:b", pub), r"no signature.*verif")
            # a payload properly signed but naming the other digest, too
            ref.sign(c, "swap/app", b, key, body=ref.payload(f"{reg.host}/swap/app", a), replace=True)
            self.assertFailsMatching(self.verify(f"docker://{reg.host}/swap/app:b", pub), r"no signature.*verif")

    def test_malformed_payload_fails(self):
        key, pub = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "bad/app", "v1")
            image = f"docker://{reg.host}/bad/app:v1"
            good = json.loads(ref.payload(f"{reg.host}/bad/app", d))
            extra = dict(good, extra=1)
            no_optional = {"critical": good["critical"]}
            wrong_type = json.loads(json.dumps(good))
            wrong_type["critical"]["type"] = "cosign container image signature v2"
            capitalised = json.loads(json.dumps(good))
            capitalised["critical"]["image"] = {"Docker-manifest-digest": d}
            cases = {"not JSON": b"{\"critical\": ", "not an object": b"[]", "extra top-level key": extra,
                     "no optional": no_optional, "wrong type": wrong_type,
                     "capitalised digest key": capitalised,
                     "duplicate key": ref.payload(f"{reg.host}/bad/app", d)[:-1] + b",\"optional\":null}"}
            for name, body in cases.items():
                with self.subTest(case=name):
                    if not isinstance(body, bytes):
                        body = json.dumps(body, separators=(",", ":")).encode()
                    ref.sign(c, "bad/app", d, key, body=body, replace=True)
                    with self.assertRaises(ref.VerifyError):
                        ref.verify(c, "bad/app", "v1", pub)
                    self.assertFailsMatching(self.verify(image, pub), r"(?i)payload")

    def test_payload_blob_must_match_its_digest(self):
        # The layer names blob X; the registry serves a properly signed
        # payload instead. Only the blob's digest check rejects it.
        key, pub = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "swapblob/app", "v1")
            good = ref.payload(f"{reg.host}/swapblob/app", d)
            other = good.replace(b"swapblob/app", b"swapblob/xyz")  # same size, other digest
            desc = c.put_blob("swapblob/app", other)
            sig = base64.b64encode(ref.ecdsa_sign(key, good)).decode()
            ref.push_signature_layers(c, "swapblob/app", d, [{"mediaType": ref.MT_SIMPLESIGNING, **desc,
                                                              "annotations": {ref.SIG_ANNOTATION: sig}}])
            with SwapProxy(reg.host, {f"/v2/swapblob/app/blobs/{desc['digest']}": good}) as proxy:
                self.assertEqual(ref.Client(proxy.host).blob("swapblob/app", desc["digest"]), good)
                with self.assertRaisesRegex(ref.VerifyError, "blob digest mismatch"):
                    ref.verify(ref.Client(proxy.host), "swapblob/app", "v1", pub)
                p = self.verify(f"docker://{proxy.host}/swapblob/app:v1", pub)
                self.assertFailsMatching(p, "digest mismatch")

    def test_corrupted_base64_signature_fails(self):
        key, pub = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            d = push(reg, fixture_ref("oci/layers"), "b64/app", "v1")
            image = f"docker://{reg.host}/b64/app:v1"
            for name, mangle in (("bad character", lambda s: "*" + s[1:]), ("cut short", lambda s: s[:-5]),
                                 ("not base64 at all", lambda s: "not base64!")):
                with self.subTest(case=name):
                    ref.sign(c, "b64/app", d, key, replace=True, mangle=mangle)
                    with self.assertRaises(ref.VerifyError):
                        ref.verify(c, "b64/app", "v1", pub)
                    self.assertFailsMatching(self.verify(image, pub), r"(?i)base64")

    # ---- registries ----

    def test_sign_and_verify_with_credentials(self):
        key, pub = self.key("k")
        users = {"alice": "s3cret-pw"}
        for auth in ("htpasswd", "token"):
            with self.subTest(auth=auth), Registry(self.tmp, auth=auth, users=users) as reg:
                creds = ("alice", "s3cret-pw")
                c = ref.Client(reg.host, creds)
                d = push(reg, fixture_ref("oci/layers"), "alice/app", "v1", creds=creds)
                image = f"docker://{reg.host}/alice/app:v1"
                p = sc("sign", *REG, "--key", key, image)
                self.assertEqual(p.returncode, 1, p.stderr_text)
                self.assertEqual(c.tags("alice/app"), ["v1"])
                enc = ref.encrypt_cosign_key(key, b"key-pass-77", os.path.join(self.keys, f"{auth}.key"))
                p = sc("sign", *REG, "--debug", "--key", enc, "--creds", "alice:s3cret-pw", image,
                       password="key-pass-77")
                self.assertEqual(p.returncode, 0, p.stderr_text)
                for secret in ("s3cret-pw", base64.b64encode(b"alice:s3cret-pw").decode(), "key-pass-77"):
                    self.assertNotIn(secret, p.stderr_text + p.stdout_text)
                self.assertIndependentlyVerified(c, "alice/app", d, pub)
                self.assertVerifies(image, pub, [ref.payload(f"{reg.host}/alice/app", d)],
                                    "--creds", "alice:s3cret-pw")
                authfile = os.path.join(self.tmp, f"auth-{auth}.json")
                with open(authfile, "w") as f:
                    json.dump({"auths": {reg.host: {"auth": base64.b64encode(b"alice:s3cret-pw").decode()}}}, f)
                self.assertVerifies(image, pub, [ref.payload(f"{reg.host}/alice/app", d)], "--authfile", authfile)

    def test_signing_a_missing_tag_fails_and_pushes_nothing(self):
        key, _ = self.key("k")
        with Registry(self.tmp) as reg:
            c = ref.Client(reg.host)
            push(reg, fixture_ref("oci/layers"), "here/app", "v1")
            before = (c.catalog(), c.tags("here/app"))
            for image, names in ((f"docker://{reg.host}/here/app:nope", "here/app"),
                                 (f"docker://{reg.host}/nowhere/app:v1", "nowhere/app"),
                                 (f"docker://{reg.host}/here/app@sha256:{'ab' * 32}", "here/app")):
                with self.subTest(image=image):
                    p = sc("sign", *REG, "--key", key, image)
                    self.assertFailsMatching(p, r"not found|unknown|does not exist", names=names)
                    self.assertEqual(p.stdout_text, "")
                    self.assertEqual((c.catalog(), c.tags("here/app")), before)


if __name__ == "__main__":
    harness.main()
