# SPDX-License-Identifier: Apache-2.0
"""registryenv.py works: each piece proven with skopeo as the client (a small
OCI layout made here is pushed and pulled back): no auth, htpasswd, token
auth (GET, OAuth2 POST, anonymous, per-user rules), TLS (trusted, insecure,
untrusted, expired, wrong SAN), the fault proxy (pass-through, every rule,
the redirect to its storage port) and docker credentials (config.json,
credential helpers). Prints the registry start-up time and the total
runtime as TAP comments."""

import atexit
import gzip
import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import tarfile
import time
import urllib.error
import urllib.request

import harness
import registryenv
from registryenv import FaultProxy, Registry, TokenIssuer, credential_helper, docker_config

T0 = time.monotonic()
STARTUPS = []
NOTES = []
HAVE_TOOLS = all(shutil.which(t) for t in (registryenv.REGISTRY_BIN, "skopeo", "openssl", "htpasswd"))


def make_layout(path, tag="t", plain_layer=True):
    """An OCI layout with a gzip layer (pushed as is) and, when plain_layer,
    an uncompressed one (skopeo gzips it on a push, streaming it with
    Transfer-Encoding: chunked). Returns {"diff_ids": [...], "gzip_layer":
    digest, "gzip_size": n, "gzip_bytes": that blob}."""
    os.makedirs(os.path.join(path, "blobs", "sha256"))

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(path, "blobs", "sha256", d), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    def tar(name, data):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1
            t.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    tars = [tar("a.bin", os.urandom(150_000) + bytes(150_000))]
    if plain_layer:
        tars.append(tar("b.bin", os.urandom(100_000) + bytes(400_000)))
    # compressed once: gzip.compress() writes the time into the header, so
    # two calls a second apart differ
    gzip_bytes = gzip.compress(tars[0], 1, mtime=0)
    layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(gzip_bytes)}]
    if plain_layer:
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", **put(tars[1])})
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]
    config = put(json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
    manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                               "layers": layers}).encode())
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                      **manifest,
                                                      "annotations": {"org.opencontainers.image.ref.name": tag}}]},
                  f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return {"diff_ids": diff_ids, "gzip_layer": layers[0]["digest"], "gzip_size": layers[0]["size"],
            "gzip_bytes": gzip_bytes}


def layout_diff_ids(path, tag="x"):
    """The sha256 of each layer of path:tag, decompressed: what a pull must
    give back whatever compression the registry holds."""
    with open(os.path.join(path, "index.json")) as f:
        index = json.load(f)
    desc = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag)

    def blob(d):
        with open(os.path.join(path, "blobs", *d.split(":")), "rb") as f:
            return f.read()

    manifest = json.loads(blob(desc["digest"]))
    out = []
    for layer in manifest["layers"]:
        data = blob(layer["digest"])
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        out.append("sha256:" + hashlib.sha256(data).hexdigest())
    return out


def blobs_of(path):
    d = os.path.join(path, "blobs", "sha256")
    return {name: harness.sha256_file(os.path.join(d, name)) for name in os.listdir(d)}


def fetch(host, method, path, headers=None, body=None, timeout=30):
    """One request with http.client: (response, body bytes or the partial
    bytes of an IncompleteRead, whether the body was complete)."""
    h, p = host.rsplit(":", 1)
    conn = http.client.HTTPConnection(h, int(p), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        try:
            return r, r.read(), True
        except http.client.IncompleteRead as e:
            return r, e.partial, False
    finally:
        conn.close()


class RegistryEnv(harness.TestCase):
    def setUp(self):
        if not HAVE_TOOLS:
            self.skipTest("needs docker-registry, skopeo, openssl and htpasswd")
        super().setUp()
        self.servers = []
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(self.home, "run"))
        self.layout = os.path.join(self.tmp, "layout")
        self.image = make_layout(self.layout)
        self.src = f"oci:{self.layout}:t"

    def tearDown(self):
        for s in reversed(getattr(self, "servers", [])):
            s.stop()
        super().tearDown()

    def start(self, obj):
        self.servers.append(obj)
        if isinstance(obj, Registry):
            STARTUPS.append(obj.startup_seconds)
        return obj

    def registry(self, **kw):
        return self.start(Registry(self.tmp, **kw))

    def env(self, **extra):
        """skopeo's environment: no auth file of this machine's user is read."""
        env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG",
                                                                  "XDG_CONFIG_HOME")}
        env.update(HOME=self.home, XDG_RUNTIME_DIR=os.path.join(self.home, "run"))
        env.update(extra)
        return env

    def skopeo(self, *args, ok=True, env=None):
        p = harness.run(["skopeo", *args], env=env or self.env(), timeout=120)
        if ok is True:
            self.assertEqual(p.returncode, 0, f"skopeo {' '.join(args)}:\n{p.stderr_text}")
        elif ok is False:
            self.assertNotEqual(p.returncode, 0, f"skopeo {' '.join(args)} succeeded")
        return p

    def push(self, host, *opts, ok=True, name="test/img:1", src=None, env=None):
        return self.skopeo("copy", "--retry-times", "0", *opts, src or self.src, f"docker://{host}/{name}",
                           ok=ok, env=env)

    def pull(self, host, out, *opts, ok=True, name="test/img:1", env=None):
        return self.skopeo("copy", "--retry-times", "0", *opts, f"docker://{host}/{name}",
                           f"oci:{os.path.join(self.tmp, out)}:x", ok=ok, env=env)

    def assertPulled(self, out):
        self.assertEqual(layout_diff_ids(os.path.join(self.tmp, out)), self.image["diff_ids"])

    # -- registry

    def test_registry_without_auth_pushes_and_pulls(self):
        reg = self.registry()
        self.assertRegex(reg.host, r"^127\.0\.0\.1:\d+$")
        self.assertEqual(reg.url, f"http://{reg.host}")
        self.push(reg.host, "--dest-tls-verify=false")
        self.pull(reg.host, "out", "--src-tls-verify=false")
        self.assertPulled("out")
        # the gzip layer went through unchanged
        self.assertIn(self.image["gzip_layer"].split(":")[1], blobs_of(os.path.join(self.tmp, "out")))
        with open(reg.config_file) as f:
            config = f.read()
        self.assertIn("delete:\n    enabled: true", config)
        self.assertIn(reg.storage_dir, config)
        self.assertTrue(os.path.isdir(os.path.join(reg.storage_dir, "docker", "registry", "v2", "repositories",
                                                   "test", "img")))
        self.assertIsInstance(reg.log(), str)
        # a deleted manifest is gone (delete is enabled)
        digest = json.loads(self.skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/test/img:1")
                            .stdout_text)["Digest"]
        self.skopeo("delete", "--tls-verify=false", f"docker://{reg.host}/test/img@{digest}")
        self.skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/test/img:1", ok=False)
        reg.stop()
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", int(reg.host.split(":")[1])), timeout=2).close()

    def test_registry_restart_keeps_port_and_content(self):
        reg = self.registry(auth="htpasswd")
        host = reg.host
        self.push(reg.host, "--dest-tls-verify=false", "--dest-creds", "alice:s3cret")
        reg.restart()
        self.assertEqual(reg.host, host)
        self.pull(reg.host, "out", "--src-tls-verify=false", "--src-creds", "alice:s3cret")
        self.assertPulled("out")

    def test_registry_that_does_not_start_reports_its_log(self):
        t = time.monotonic()
        with self.assertRaises(registryenv.RegistryError) as cm:
            Registry(self.tmp, extra_yaml="storage: [this is not a mapping\n")
        self.assertLess(time.monotonic() - t, 11)
        self.assertIn("did not come up", str(cm.exception))
        self.assertIn("its log:", str(cm.exception))
        self.assertRegex(str(cm.exception), "(?i)yaml|configuration|parse")

    def test_htpasswd_accepts_right_credentials_only(self):
        reg = self.registry(auth="htpasswd", users={"alice": "s3cret", "bob": "hunter2"})
        self.push(reg.host, "--dest-tls-verify=false", "--dest-creds", "alice:s3cret")
        self.pull(reg.host, "out", "--src-tls-verify=false", "--src-creds", "bob:hunter2")
        self.assertPulled("out")
        p = self.pull(reg.host, "bad", "--src-tls-verify=false", "--src-creds", "alice:wrong", ok=False)
        self.assertRegex(p.stderr_text, "(?i)401|unauthorized")
        p = self.pull(reg.host, "none", "--src-tls-verify=false", ok=False)
        self.assertRegex(p.stderr_text, "(?i)401|unauthorized|authentication required")

    # -- token auth

    def test_token_auth_with_credentials(self):
        reg = self.registry(auth="token")
        issuer = reg.issuer
        self.push(reg.host, "--dest-tls-verify=false", "--dest-creds", "alice:s3cret")
        self.pull(reg.host, "out", "--src-tls-verify=false", "--src-creds", "alice:s3cret")
        self.assertPulled("out")
        gets = [r for r in issuer.requests if r["method"] == "GET" and r["status"] == 200]
        self.assertTrue(gets)
        self.assertTrue(all(r["user"] == "alice" and r["auth"] == "Basic" for r in gets))
        self.assertIn(("repository", "test/img", ["pull", "push"]), [s for r in gets for s in r["scopes"]])
        self.assertNotIn("s3cret", repr(issuer.requests))
        # the token is what the registry expects
        token, access = issuer.make_token("alice", [("repository", "test/img", ["pull"])])
        header, claims = TokenIssuer.decode(token)
        self.assertEqual((header["alg"], header["typ"], len(header["x5c"])), ("ES256", "JWT", 1))
        self.assertEqual((claims["iss"], claims["aud"], claims["sub"]), (issuer.issuer, issuer.service, "alice"))
        self.assertEqual(claims["access"], [{"type": "repository", "name": "test/img", "actions": ["pull"]}])
        self.assertTrue(claims["nbf"] <= claims["iat"] < claims["exp"])
        r, body, _ = fetch(reg.host, "GET", "/v2/test/img/tags/list", {"Authorization": f"Bearer {token}"})
        self.assertEqual((r.status, json.loads(body)["tags"]), (200, ["1"]))
        r, _, _ = fetch(reg.host, "GET", "/v2/test/img/tags/list")
        self.assertEqual(r.status, 401)
        self.assertIn(f'realm="{issuer.realm}"', r.getheader("WWW-Authenticate"))
        # wrong password: the issuer refuses, so does skopeo
        self.pull(reg.host, "bad", "--src-tls-verify=false", "--src-creds", "alice:wrong", ok=False)
        self.assertEqual(issuer.requests[-1]["status"], 401)
        self.assertIsNone(issuer.requests[-1]["user"])
        # and anonymous tokens are off by default
        self.pull(reg.host, "anon", "--src-tls-verify=false", ok=False)

    def test_token_anonymous_pull_only_and_user_rules(self):
        reg = self.registry(auth="token", users={"alice": "s3cret", "bob": "pw"},
                            token_options={"anonymous": True,
                                           "rules": {"alice": {"*": ["pull", "push"]}, "bob": {"test/*": ["pull"]},
                                                     None: {"*": ["pull"]}}})
        self.push(reg.host, "--dest-tls-verify=false", ok=False)  # anonymous: pull only
        self.push(reg.host, "--dest-tls-verify=false", "--dest-creds", "bob:pw", ok=False)  # bob: pull only
        self.push(reg.host, "--dest-tls-verify=false", "--dest-creds", "alice:s3cret")
        self.pull(reg.host, "anon", "--src-tls-verify=false")
        self.assertPulled("anon")
        self.pull(reg.host, "bob", "--src-tls-verify=false", "--src-creds", "bob:pw")
        anon = [r for r in reg.issuer.requests if r["user"] is None and r["status"] == 200]
        self.assertTrue(anon)
        self.assertTrue(all(a["actions"] == ["pull"] for r in anon for a in r["access"]))
        bob = [r for r in reg.issuer.requests if r["user"] == "bob"]
        self.assertTrue(all(a["actions"] == ["pull"] for r in bob for a in r["access"]))

    def test_token_answer_with_only_token_or_only_access_token(self):
        for answer in ("token", "access_token"):
            with self.subTest(answer=answer):
                reg = self.registry(auth="token", token_options={"answer": answer})
                req = urllib.request.Request(f"{reg.issuer.realm}?service={reg.issuer.service}"
                                             f"&scope=repository:a/b:pull&scope=repository:c/d:push",
                                             headers={"Authorization": "Basic YWxpY2U6czNjcmV0"})
                with urllib.request.urlopen(req) as r:
                    body = json.load(r)
                self.assertEqual(sorted(body), sorted([answer, "expires_in", "issued_at"]))
                _, claims = TokenIssuer.decode(body[answer])
                self.assertEqual(claims["access"], [{"type": "repository", "name": "a/b", "actions": ["pull"]},
                                                    {"type": "repository", "name": "c/d", "actions": ["push"]}])
                self.push(reg.host, "--dest-tls-verify=false", "--dest-creds", "alice:s3cret")
                self.pull(reg.host, f"out-{answer}", "--src-tls-verify=false", "--src-creds", "alice:s3cret")

    def test_token_oauth_post_refresh_and_password_grants(self):
        reg = self.registry(auth="token", token_options={"refresh_tokens": {"rt-alice": "alice"}})
        issuer = reg.issuer
        # containers/image uses the OAuth2 POST when it has an identity token
        auth = docker_config(os.path.join(self.tmp, "cfg"), auths={reg.host: ("alice", "", "rt-alice")})
        self.push(reg.host, "--dest-tls-verify=false", "--authfile", auth)
        posts = [r for r in issuer.requests if r["method"] == "POST"]
        self.assertTrue(posts)
        self.assertEqual(posts[0]["form"]["grant_type"], "refresh_token")
        self.assertEqual((posts[0]["user"], posts[0]["status"]), ("alice", 200))
        self.assertIn("repository:test/img:pull,push", posts[0]["form"]["scope"])

        def post(form):
            data = "&".join(f"{k}={v}" for k, v in form.items()).encode()
            try:
                with urllib.request.urlopen(urllib.request.Request(issuer.realm, data=data)) as r:
                    return r.status, json.load(r)
            except urllib.error.HTTPError as e:
                return e.code, e.read()

        status, body = post({"grant_type": "password", "username": "alice", "password": "s3cret",
                             "service": issuer.service, "client_id": "t", "scope": "repository:test/img:pull",
                             "access_type": "offline"})
        self.assertEqual(status, 200)
        self.assertIn("access_token", body)
        self.assertIn("refresh_token", body)
        self.assertEqual(TokenIssuer.decode(body["access_token"])[1]["access"][0]["actions"], ["pull"])
        self.assertEqual(post({"grant_type": "password", "username": "alice", "password": "no",
                               "client_id": "t"})[0], 401)
        self.assertEqual(post({"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                               "client_id": "t"})[0], 200)
        self.assertEqual(issuer.requests[-3]["form"]["password"], "<redacted>")
        self.assertNotIn("s3cret", repr(issuer.requests))

        # POST answered with 404: clients must fall back to GET; short expires_in
        with TokenIssuer(self.tmp, users={"alice": "s3cret"}, post="404", expires_in=2) as i2:
            req = urllib.request.Request(i2.realm, data=b"grant_type=password&username=alice&password=s3cret")
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(req)
            self.assertEqual(cm.exception.code, 404)
            req = urllib.request.Request(f"{i2.realm}?service={i2.service}&scope=repository:x:pull",
                                         headers={"Authorization": "Basic YWxpY2U6czNjcmV0"})
            with urllib.request.urlopen(req) as r:
                body = json.load(r)
            self.assertEqual(body["expires_in"], 2)
            claims = TokenIssuer.decode(body["token"])[1]
            self.assertEqual(claims["exp"] - claims["iat"], 2)
            self.assertEqual([r["status"] for r in i2.requests], [404, 200])

    # -- TLS

    def test_tls_with_cert_dir_and_without_verification(self):
        reg = self.registry(tls=True)
        self.assertEqual(reg.url, f"https://{reg.host}")
        self.assertEqual(os.listdir(reg.cert_dir), ["ca.crt"])
        self.push(reg.host, "--dest-cert-dir", reg.cert_dir)
        self.pull(reg.host, "out", "--src-cert-dir", reg.cert_dir)
        self.assertPulled("out")
        self.pull(reg.host, "insecure", "--src-tls-verify=false")
        self.assertPulled("insecure")
        p = self.pull(reg.host, "untrusted", "--src-cert-dir", reg.untrusted_cert_dir, ok=False)
        self.assertIn("certificate signed by unknown authority", p.stderr_text)
        p = self.pull(reg.host, "nocert", ok=False)
        self.assertIn("certificate signed by unknown authority", p.stderr_text)
        # the certificate is what the tests rely on: SANs and the CA
        text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", reg.tls.server[0]],
                              capture_output=True, text=True).stdout
        self.assertIn("IP Address:127.0.0.1", text)
        self.assertIn("DNS:localhost", text)

    def test_tls_bad_server_certificates_fail(self):
        for which, phrase in (("expired", "certificate has expired"),
                              ("wrong-san", "doesn't contain any IP SANs"),
                              ("untrusted", "certificate signed by unknown authority")):
            with self.subTest(cert=which):
                reg = self.registry(tls=True, tls_cert=which)
                p = self.push(reg.host, "--dest-cert-dir", reg.cert_dir, ok=False)
                self.assertIn(phrase, p.stderr_text)
                self.push(reg.host, "--dest-tls-verify=false")  # it does serve

    def test_tls_registry_with_token_realm_over_https(self):
        reg = self.registry(tls=True, auth="token")
        self.assertTrue(reg.issuer.realm.startswith("https://127.0.0.1:"))
        self.push(reg.host, "--dest-cert-dir", reg.cert_dir, "--dest-creds", "alice:s3cret")
        self.pull(reg.host, "out", "--src-cert-dir", reg.cert_dir, "--src-creds", "alice:s3cret")
        self.assertPulled("out")
        self.assertEqual({r["user"] for r in reg.issuer.requests}, {"alice"})

    # -- fault proxy

    def proxied(self, **kw):
        reg = self.registry(**kw)
        proxy = self.start(FaultProxy(reg.host))
        return reg, proxy

    def test_proxy_passes_push_and_pull_through_unchanged(self):
        reg, proxy = self.proxied(auth="token")
        creds = "alice:s3cret"
        self.push(proxy.host, "--dest-tls-verify=false", "--dest-creds", creds)
        self.pull(proxy.host, "via", "--src-tls-verify=false", "--src-creds", creds)
        self.pull(reg.host, "direct", "--src-tls-verify=false", "--src-creds", creds)
        self.assertPulled("via")
        self.assertEqual(blobs_of(os.path.join(self.tmp, "via")), blobs_of(os.path.join(self.tmp, "direct")))
        raw = [self.skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds,
                           f"docker://{h}/test/img:1").stdout for h in (proxy.host, reg.host)]
        self.assertEqual(raw[0], raw[1])
        methods = {r["method"] for r in proxy.requests}
        self.assertTrue({"GET", "HEAD", "POST", "PATCH", "PUT"} <= methods, methods)
        # the challenge went through (401 + WWW-Authenticate), then Bearer tokens
        self.assertIn(401, [r["status"] for r in proxy.requests])
        self.assertIn("Bearer", {r["auth"] for r in proxy.requests})
        # skopeo gzips the plain layer on the fly: a chunked PATCH went through
        self.assertTrue(any(r["method"] == "PATCH" and r["chunked"] and r["status"] == 202
                            for r in proxy.requests), proxy.requests)
        self.assertTrue(all(r["status"] is not None and r["rule"] is None for r in proxy.requests))
        self.assertFalse(proxy.redirect_requests)

    def test_proxy_rule_fail_answers_500(self):
        reg, proxy = self.proxied()
        self.push(reg.host, "--dest-tls-verify=false")
        rule = proxy.fail("GET", r"/manifests/", status=500, times=1)
        r, body, _ = fetch(proxy.host, "GET", "/v2/test/img/manifests/1")
        self.assertEqual((r.status, json.loads(body)["errors"][0]["code"]), (500, "UNKNOWN"))
        r, _, _ = fetch(proxy.host, "GET", "/v2/test/img/manifests/1",
                        {"Accept": "application/vnd.oci.image.manifest.v1+json"})
        self.assertEqual(r.status, 200)  # times=1
        self.assertEqual(rule.hits, 1)
        proxy.fail("GET", r"/manifests/", status=500, times=1)
        p = self.skopeo("copy", "--retry-times", "1", "--src-tls-verify=false",
                        f"docker://{proxy.host}/test/img:1", f"oci:{self.tmp}/o:x", ok=None)
        recs = proxy.find("GET", r"/manifests/")
        self.assertEqual([(r["status"], r["rule"]) for r in recs][:3], [(500, "fail"), (200, None), (500, "fail")])
        NOTES.append(f"fail 500 on the first manifest GET: skopeo --retry-times 1 exit {p.returncode}, "
                     f"manifest GETs {[r['status'] for r in recs[2:]]}")

    def test_proxy_rule_throttle_answers_429_with_retry_after(self):
        reg, proxy = self.proxied()
        self.push(reg.host, "--dest-tls-verify=false")
        rule = proxy.throttle(None, r"/blobs/sha256:", times=1)
        r, body, _ = fetch(proxy.host, "HEAD", f"/v2/test/img/blobs/{self.image['gzip_layer']}")
        self.assertEqual((r.status, r.getheader("Retry-After")), (429, "1"))
        r, body, _ = fetch(proxy.host, "GET", f"/v2/test/img/blobs/{self.image['gzip_layer']}")
        self.assertEqual((r.status, body), (200, self.image["gzip_bytes"]))
        self.assertEqual(rule.hits, 1)
        proxy.throttle("GET", r"/blobs/sha256:", times=1)
        p = self.skopeo("copy", "--retry-times", "1", "--src-tls-verify=false",
                        f"docker://{proxy.host}/test/img:1", f"oci:{self.tmp}/o:x", ok=None)
        statuses = [r["status"] for r in proxy.find("GET", r"/blobs/")[1:]]
        self.assertIn(429, statuses)
        NOTES.append(f"429 on the first blob GET: skopeo --retry-times 1 exit {p.returncode}, "
                     f"blob GETs {statuses}")

    def test_proxy_rule_cut_drops_the_download(self):
        reg, proxy = self.proxied()
        self.push(reg.host, "--dest-tls-verify=false")
        path = f"/v2/test/img/blobs/{self.image['gzip_layer']}"
        rule = proxy.cut("GET", r"/blobs/sha256:", after=1000, times=1)
        r, body, complete = fetch(proxy.host, "GET", path)
        self.assertEqual((r.status, len(body), complete), (200, 1000, False))
        self.assertEqual(body, self.image["gzip_bytes"][:1000])
        r, body, complete = fetch(proxy.host, "GET", path)
        self.assertEqual((body, complete), (self.image["gzip_bytes"], True))
        self.assertEqual(rule.hits, 1)
        proxy.cut("GET", r"/blobs/sha256:", after=4096, times=1)
        p = self.skopeo("copy", "--retry-times", "1", "--src-tls-verify=false",
                        f"docker://{proxy.host}/test/img:1", f"oci:{self.tmp}/o:x", ok=None)
        cut = [r for r in proxy.find("GET", r"/blobs/") if r["rule"] == "cut"]
        self.assertEqual(len(cut), 2)
        NOTES.append(f"cut after 4096 bytes of the first blob GET: skopeo --retry-times 1 exit {p.returncode}")

    def test_proxy_rule_stall_pauses_mid_body(self):
        reg, proxy = self.proxied()
        self.push(reg.host, "--dest-tls-verify=false")
        rule = proxy.stall("GET", r"/blobs/sha256:", after=2000, seconds=1.5, times=1)
        t = time.monotonic()
        r, body, complete = fetch(proxy.host, "GET", f"/v2/test/img/blobs/{self.image['gzip_layer']}")
        elapsed = time.monotonic() - t
        self.assertEqual((r.status, body, complete), (200, self.image["gzip_bytes"], True))
        self.assertGreaterEqual(elapsed, 1.4)
        self.assertEqual(rule.hits, 1)
        # times=1: the second GET is forwarded without the rule (a record, not a clock, since a
        # loaded machine may take a second for a plain GET)
        r, body, complete = fetch(proxy.host, "GET", f"/v2/test/img/blobs/{self.image['gzip_layer']}")
        self.assertEqual((r.status, body, complete), (200, self.image["gzip_bytes"], True))
        self.assertEqual(rule.hits, 1)
        gets = proxy.find("GET", r"/blobs/sha256:")
        self.assertEqual([g["rule"] for g in gets[-2:]], ["stall", None])

    def test_proxy_rule_redirect_serves_the_blob_from_the_storage_port(self):
        reg, proxy = self.proxied(auth="token")
        creds = "alice:s3cret"
        self.push(reg.host, "--dest-tls-verify=false", "--dest-creds", creds)
        rule = proxy.redirect()
        self.pull(proxy.host, "via", "--src-tls-verify=false", "--src-creds", creds)
        self.assertPulled("via")
        gets = proxy.find("GET", r"/blobs/sha256:")
        self.assertTrue(gets)
        self.assertTrue(all(r["status"] == 307 and r["rule"] == "redirect" for r in gets))
        self.assertEqual(rule.hits, len(gets))
        served = proxy.find("GET", r"/blobs/sha256:", redirected=True)
        self.assertEqual(len(served), len(gets))
        self.assertTrue(all(r["status"] == 200 for r in served))
        NOTES.append(f"redirected blob GETs: skopeo sent Authorization to the storage port: "
                     f"{sorted({str(r['auth']) for r in served})}")
        # what a client sees: 307 to the storage port, which serves the bytes
        token = reg.issuer.make_token("alice", [("repository", "test/img", ["pull"])])[0]
        r, _, _ = fetch(proxy.host, "GET", f"/v2/test/img/blobs/{self.image['gzip_layer']}",
                        {"Authorization": f"Bearer {token}"})
        self.assertEqual(r.status, 307)
        loc = r.getheader("Location")
        self.assertTrue(loc.startswith(f"http://{proxy.storage_host}/"), loc)
        r, body, _ = fetch(proxy.storage_host, "GET", loc.split(proxy.storage_host, 1)[1])
        self.assertEqual((r.status, body), (200, self.image["gzip_bytes"]))
        self.assertEqual(r.getheader("Docker-Content-Digest"), self.image["gzip_layer"])
        r, body, _ = fetch(proxy.storage_host, "GET", loc.split(proxy.storage_host, 1)[1], {"Range": "bytes=0-9"})
        self.assertEqual((r.status, body), (206, self.image["gzip_bytes"][:10]))
        r, _, _ = fetch(proxy.storage_host, "GET", "/unknownkey/v2/test/img/blobs/" + self.image["gzip_layer"])
        self.assertEqual(r.status, 403)
        # S3's refusal of a forwarded Authorization, when asked for
        proxy.storage_rejects_auth = True
        r, body, _ = fetch(proxy.storage_host, "GET", loc.split(proxy.storage_host, 1)[1],
                           {"Authorization": f"Bearer {token}"})
        self.assertEqual(r.status, 400)
        self.assertIn(b"Only one auth mechanism allowed", body)

    def test_proxy_rule_add_header_on_upload_posts(self):
        reg, proxy = self.proxied()
        rule = proxy.add_header("POST", r"/blobs/uploads/$", "OCI-Chunk-Min-Length", "1048576")
        r, _, _ = fetch(proxy.host, "POST", "/v2/test/other/blobs/uploads/", {"Content-Length": "0"})
        self.assertEqual((r.status, r.getheader("OCI-Chunk-Min-Length")), (202, "1048576"))
        self.assertTrue(r.getheader("Location"))
        self.push(proxy.host, "--dest-tls-verify=false")
        posts = proxy.find("POST", r"/blobs/uploads/$")
        self.assertEqual(rule.hits, len(posts))
        self.assertTrue(all(r["rule"] == "add_header" for r in posts))
        self.pull(reg.host, "out", "--src-tls-verify=false")
        self.assertPulled("out")

    def test_proxy_passes_expect_100_continue(self):
        reg, proxy = self.proxied()
        r, _, _ = fetch(proxy.host, "POST", "/v2/test/up/blobs/uploads/", {"Content-Length": "0"})
        loc = r.getheader("Location").split(proxy.host, 1)[-1]
        data = b"hello blob"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        conn = socket.create_connection(("127.0.0.1", int(proxy.host.split(":")[1])), timeout=10)
        conn.sendall(f"PUT {loc}&digest={digest} HTTP/1.1\r\nHost: {proxy.host}\r\nContent-Length: {len(data)}\r\n"
                     "Content-Type: application/octet-stream\r\nExpect: 100-continue\r\n\r\n".encode())
        self.assertTrue(conn.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n"))
        conn.sendall(data)
        self.assertTrue(conn.recv(4096).startswith(b"HTTP/1.1 201 Created\r\n"))
        conn.close()
        r, body, _ = fetch(reg.host, "GET", f"/v2/test/up/blobs/{digest}")
        self.assertEqual((r.status, body), (200, data))
        # a fault answered before the body: no 100, the answer, then the connection closes
        proxy.fail("PUT", r"/blobs/uploads/", status=500)
        conn = socket.create_connection(("127.0.0.1", int(proxy.host.split(":")[1])), timeout=10)
        conn.sendall(f"PUT {loc}&digest={digest} HTTP/1.1\r\nHost: {proxy.host}\r\nContent-Length: {len(data)}\r\n"
                     "Expect: 100-continue\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
        conn.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), answer)
        self.assertIn(b"Connection: close\r\n", answer)

    def test_proxy_stop_closes_open_connections(self):
        reg, proxy = self.proxied()
        conn = socket.create_connection(("127.0.0.1", int(proxy.host.split(":")[1])), timeout=5)
        conn.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"\r\n\r\n{}"):  # the registry answers {} to /v2/
            answer += conn.recv(4096)
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer)
        t = time.monotonic()
        proxy.stop()
        self.assertLess(time.monotonic() - t, 3)
        self.assertEqual(conn.recv(4096), b"")  # keep-alive connection closed by stop()
        conn.close()
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", int(proxy.host.split(":")[1])), timeout=2).close()

    # -- credentials

    def test_docker_config_via_authfile(self):
        reg = self.registry(auth="htpasswd")
        good = docker_config(os.path.join(self.tmp, "good"), auths={reg.host: ("alice", "s3cret")})
        bad = docker_config(os.path.join(self.tmp, "bad"), auths={reg.host: ("alice", "nope")})
        with open(good) as f:
            self.assertEqual(json.load(f), {"auths": {reg.host: {"auth": "YWxpY2U6czNjcmV0"}}})
        self.push(reg.host, "--dest-tls-verify=false", "--authfile", good)
        self.pull(reg.host, "out", "--src-tls-verify=false", "--authfile", bad, ok=False)
        # DOCKER_CONFIG is read when no other auth file exists
        self.pull(reg.host, "env", "--src-tls-verify=false", env=self.env(DOCKER_CONFIG=os.path.dirname(good)))
        self.assertPulled("env")

    def test_credential_helper_used_by_skopeo(self):
        reg = self.registry(auth="htpasswd")
        d = os.path.join(self.tmp, "dc")
        helper = credential_helper(d, "sconifytest", {reg.host: ("alice", "s3cret")})
        cfg = docker_config(d, cred_helpers={reg.host: "sconifytest"})
        env = self.env(DOCKER_CONFIG=d, PATH=helper.env()["PATH"])
        self.push(reg.host, "--dest-tls-verify=false", env=env)
        self.assertIn(reg.host, helper.asked())
        self.pull(reg.host, "out", "--src-tls-verify=false", "--authfile", cfg, env=env)
        self.assertPulled("out")
        # a helper that knows nothing: asked, and the pull fails
        d2 = os.path.join(self.tmp, "dc2")
        empty = credential_helper(d2, "empty", {})
        docker_config(d2, cred_helpers={reg.host: "empty"})
        self.pull(reg.host, "none", "--src-tls-verify=false",
                  env=self.env(DOCKER_CONFIG=d2, PATH=empty.env()["PATH"]), ok=False)
        self.assertEqual(empty.asked(), [reg.host])
        # credsStore is written as docker does; skopeo 1.9.3 (containers/image)
        # does not read it, so only the file is checked here
        with open(docker_config(os.path.join(self.tmp, "dc3"), creds_store="empty")) as f:
            self.assertEqual(json.load(f), {"credsStore": "empty"})

    def test_credential_helper_protocol(self):
        d = os.path.join(self.tmp, "h")
        helper = credential_helper(d, "t", {"127.0.0.1:5000": ("alice", "it's $ecret"),
                                            "https://index.docker.io/v1/": ("<token>", "idtok")})
        self.assertTrue(os.access(helper.path, os.X_OK))
        self.assertEqual(os.path.basename(helper.path), "docker-credential-t")
        p = subprocess.run([helper.path, "get"], input=b"127.0.0.1:5000", capture_output=True)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(json.loads(p.stdout), {"ServerURL": "127.0.0.1:5000", "Username": "alice",
                                                "Secret": "it's $ecret"})
        p = subprocess.run([helper.path, "get"], input=b"https://index.docker.io/v1/\n", capture_output=True)
        self.assertEqual(json.loads(p.stdout)["Username"], "<token>")
        p = subprocess.run([helper.path, "get"], input=b"other:1", capture_output=True)
        self.assertEqual((p.returncode, p.stdout), (1, b"credentials not found in native keychain\n"))
        p = subprocess.run([helper.path, "list"], capture_output=True)
        self.assertEqual(json.loads(p.stdout)["127.0.0.1:5000"], "alice")
        self.assertEqual(helper.asked(), ["127.0.0.1:5000", "https://index.docker.io/v1/", "other:1"])
        with open(helper.log_path) as f:
            self.assertNotIn("ecret", f.read())


def _report():
    if STARTUPS:
        print(f"# registry start-up: median {statistics.median(STARTUPS) * 1000:.0f} ms, "
              f"max {max(STARTUPS) * 1000:.0f} ms over {len(STARTUPS)} starts", flush=True)
    for note in NOTES:
        print(f"# {note}", flush=True)
    print(f"# total runtime: {time.monotonic() - T0:.1f} s", flush=True)


if __name__ == "__main__":
    atexit.register(_report)
    harness.main()
