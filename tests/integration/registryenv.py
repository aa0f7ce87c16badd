# SPDX-License-Identifier: Apache-2.0
"""Loopback registries for the docker:// tests and benchmark (Python standard
library only; the registry is CNCF distribution's `docker-registry`, certs are
made with the openssl CLI).

    with Registry(workdir) as reg:                      # plain HTTP, no auth
        skopeo copy ... docker://{reg.host}/repo:tag --dest-tls-verify=false
    Registry(workdir, auth="htpasswd", users={"alice": "s3cret"})
    Registry(workdir, auth="token", token_options={"anonymous": True})  # reg.issuer
    Registry(workdir, tls=True)                         # reg.cert_dir, reg.ca_file
    Registry(workdir, tls=True, tls_cert="expired")     # or "wrong-san", "untrusted"
    with FaultProxy(reg.host) as proxy:                 # fault injection in front of it
        proxy.fail("GET", r"/manifests/", status=500, times=1)
    docker_config(dir, auths={reg.host: ("alice", "s3cret")})
    credential_helper(dir, "test", {reg.host: ("alice", "s3cret")})

Every server listens on 127.0.0.1 on a free port and is stopped by stop(),
by leaving its `with` block, or at interpreter exit at the latest. Files go
below the workdir given (the caller removes it); nothing else is written.
"""

import atexit
import base64
import fnmatch
import http.client
import http.server
import json
import os
import re
import secrets
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid

REGISTRY_BIN = os.environ.get("SCONIFY_DOCKER_REGISTRY", "docker-registry")
START_TIMEOUT = 10.0
SERVICE = "sconify-test-registry"
ISSUER = "sconify-test-issuer"

_live = set()  # everything started and not yet stopped (strong: stopped at exit at the latest)


@atexit.register
def _stop_all():
    for obj in list(_live):
        try:
            obj.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


class RegistryError(RuntimeError):
    pass


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args, input=None, cwd=None):
    p = subprocess.run(args, input=input, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RegistryError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return p.stdout


def _q(value):
    """A YAML scalar: JSON strings are valid double-quoted YAML."""
    return json.dumps(value)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _auth_scheme(value):
    """The scheme of an Authorization header value (never the credentials)."""
    if value is None:
        return None
    value = value.decode("latin-1") if isinstance(value, bytes) else value
    return value.strip().split(" ", 1)[0] or None


# --------------------------------------------------------------------------
# certificates


class CA:
    """A certificate authority made with the openssl CLI (EC P-256) in dir:
    dir/ca.crt and dir/ca.key; issue() makes server certificates."""

    def __init__(self, dir, name="sconify test CA"):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        self.cert = os.path.join(dir, "ca.crt")
        self.key = os.path.join(dir, "ca.key")
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", f"/CN={name}",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def cert_dir(self, dir=None):
        """A directory holding only this CA as ca.crt, the way skopeo's
        --cert-dir (and containers/image's certs.d) expects it."""
        dir = dir or os.path.join(self.dir, "certs.d")
        os.makedirs(dir, exist_ok=True)
        shutil.copyfile(self.cert, os.path.join(dir, "ca.crt"))
        return dir

    def issue(self, name="server", sans=("IP:127.0.0.1", "DNS:localhost"), expired=False, cn="localhost",
              usage="serverAuth"):
        """Issues a server certificate; returns (cert path, key path).
        expired=True makes one whose validity ended in 2020."""
        cert = os.path.join(self.dir, f"{name}.crt")
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        _run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", key, "-out", csr, "-subj", f"/CN={cn}"])
        work = os.path.join(self.dir, f"{name}.ca")
        os.makedirs(work, exist_ok=True)
        open(os.path.join(work, "index.txt"), "w").close()
        with open(os.path.join(work, "serial"), "w") as f:
            f.write(f"{secrets.randbits(60) | 1 << 60:X}\n")
        with open(os.path.join(work, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = tca\n[tca]\n"
                    f"database = {work}/index.txt\nnew_certs_dir = {work}\nserial = {work}/serial\n"
                    "default_md = sha256\npolicy = pol\nunique_subject = no\nx509_extensions = ext\n"
                    "[pol]\ncommonName = supplied\n"
                    "[ext]\nbasicConstraints = critical,CA:FALSE\n"
                    f"keyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = {usage}\n"
                    + (f"subjectAltName = {','.join(sans)}\n" if sans else ""))
        if expired:
            dates = ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"]
        else:
            dates = ["-days", "2"]
        _run(["openssl", "ca", "-batch", "-notext", "-config", os.path.join(work, "ca.cnf"), "-cert", self.cert,
              "-keyfile", self.key, "-in", csr, "-out", cert, *dates])
        shutil.rmtree(work)
        os.unlink(csr)
        return cert, key

    def issue_expired(self, name="expired"):
        return self.issue(name, expired=True)

    def issue_wrong_san(self, name="wrong-san", sans=("DNS:wrong.invalid",)):
        return self.issue(name, sans=sans, cn="wrong.invalid")


class TLSFiles:
    """What a TLS registry needs: a trusted CA (ca, ca_file, cert_dir), a
    second CA nobody trusts (untrusted_ca, untrusted_cert_dir), and server
    certificates: good, expired, wrong SAN and one from the untrusted CA."""

    def __init__(self, dir):
        self.dir = dir
        self.ca = CA(os.path.join(dir, "ca"))
        self.untrusted_ca = CA(os.path.join(dir, "untrusted-ca"), name="sconify untrusted CA")
        self.ca_file = self.ca.cert
        self.cert_dir = self.ca.cert_dir(os.path.join(dir, "certs.d"))
        self.untrusted_cert_dir = self.untrusted_ca.cert_dir(os.path.join(dir, "untrusted-certs.d"))
        self.server = self.ca.issue("server")
        self._made = {"good": self.server}

    def client_cert_dir(self, dir=None):
        """A --cert-dir with the CA and a client certificate (client.cert +
        client.key, skopeo's names) the registry accepts when it wants one."""
        dir = dir or os.path.join(self.dir, "client-certs.d")
        if not os.path.exists(dir):
            self.ca.cert_dir(dir)
            cert, key = self.ca.issue("client", sans=(), cn="sconify test client", usage="clientAuth")
            shutil.copy(cert, os.path.join(dir, "client.cert"))
            shutil.copy(key, os.path.join(dir, "client.key"))
        return dir

    def server_cert(self, which="good"):
        """(cert, key) for which: good | expired | wrong-san | untrusted."""
        if which not in self._made:
            if which == "expired":
                self._made[which] = self.ca.issue_expired()
            elif which == "wrong-san":
                self._made[which] = self.ca.issue_wrong_san()
            elif which == "untrusted":
                self._made[which] = self.untrusted_ca.issue("server")
            else:
                raise ValueError(f"unknown server certificate {which!r}")
        return self._made[which]


# --------------------------------------------------------------------------
# Python servers


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A threaded TCP server on 127.0.0.1:0 that, when stopped, also closes
    every connection still open and joins its threads."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, handler, owner, ssl_context=None):
        self.owner = owner
        self.ssl_context = ssl_context
        self._conns = set()
        self._workers = []
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_context:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request, client_address):
        with self._lock:
            self._conns.add(request)
            self._workers = [t for t in self._workers if t.is_alive()]
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        with self._lock:
            self._workers.append(t)
        t.start()

    def shutdown_request(self, request):
        with self._lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # a client that went away is not our problem

    def track(self, sock):
        with self._lock:
            self._conns.add(sock)

    def untrack(self, sock):
        with self._lock:
            self._conns.discard(sock)

    def stop(self):
        self.shutdown()
        self._thread.join()
        with self._lock:
            conns, threads = list(self._conns), list(self._workers)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()
        for t in threads:
            t.join(5)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120

    def setup(self):
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def log_message(self, *args):
        pass

    def read_body(self, limit=1 << 20):
        """The request body, Content-Length or chunked (Go clients send
        chunked form posts), at most limit bytes."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline(4096).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                if len(out) + size > limit:
                    raise ValueError("request body too large")
                out += self.rfile.read(size)
                self.rfile.readline(4096)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def send(self, status, body=b"", headers=(), content_type="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# --------------------------------------------------------------------------
# token issuer


def parse_scopes(values):
    """Parses token scopes ("repository:name:pull,push"; several may be
    space-separated in one value; names may contain ':port') into
    [(type, name, [actions])]."""
    out = []
    for value in values:
        for s in value.split():
            typ, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            if not typ or not name:
                continue
            out.append((typ, name, [a for a in actions.split(",") if a]))
    return out


class TokenIssuer:
    """The token server of `auth: token` (Docker token spec + its OAuth2
    variant), serving `realm` = {url}/token.

    users: {name: password} checked against Basic credentials (GET) or the
      password grant (POST).
    anonymous: requests without credentials get a token with at most `pull`.
    rules: None grants every action asked; else {user: {repo glob: [actions]}}
      (the anonymous user is None) or a callable (user, type, name, actions) ->
      granted actions. Anonymous tokens never get more than `pull`.
    expires_in: what the answer says; lifetime: exp - iat in the JWT (default
      expires_in; the registry accepts tokens up to 60 s after exp).
    answer: "both" | "token" | "access_token": which fields GET answers.
    post: "oauth" answers the OAuth2 POST form; "404" answers POST with 404.
    expired_first: the first N tokens are already expired (the registry
      rejects them), to test renewal on 401.
    refresh_tokens: {refresh token: user} accepted by grant_type=refresh_token;
      offline_token=true (GET) and access_type=offline (POST) hand one out.
    tls_cert: (cert, key) to serve HTTPS instead of HTTP.

    requests: one dict per request: method, path, query ({name: [values]}),
      auth (header scheme or None), user (who authenticated, None if nobody),
      form (POST fields, password replaced by "<redacted>"), status, scopes,
      access (what the token granted)."""

    def __init__(self, workdir, users=None, service=SERVICE, issuer=ISSUER, anonymous=False, rules=None,
                 expires_in=300, lifetime=None, answer="both", post="oauth", refresh_tokens=None,
                 tls_cert=None, expired_first=0):
        if answer not in ("both", "token", "access_token"):
            raise ValueError(f"answer must be both, token or access_token, not {answer!r}")
        if post not in ("oauth", "404"):
            raise ValueError(f"post must be oauth or 404, not {post!r}")
        self.dir = os.path.join(workdir, f"token-issuer-{uuid.uuid4().hex[:8]}")
        os.makedirs(self.dir)
        self.users = dict(users or {})
        self.service, self.issuer = service, issuer
        self.anonymous, self.rules = anonymous, rules
        self.expires_in, self.lifetime = expires_in, lifetime
        self.answer, self.post = answer, post
        self.refresh_tokens = dict(refresh_tokens or {})
        self.expired_first = expired_first
        self.requests = []
        self._lock = threading.Lock()
        # The signing certificate is the registry's whole rootcertbundle.
        self.cert = os.path.join(self.dir, "signing.crt")
        self.key = os.path.join(self.dir, "signing.key")
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=sconify test token issuer"])
        self._x5c = base64.b64encode(_run(["openssl", "x509", "-in", self.cert, "-outform", "DER"])).decode()
        ctx = None
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls_cert)
        self._server = _Server(_TokenHandler, self, ctx)
        self.host = f"127.0.0.1:{self._server.port}"
        self.url = f"{'https' if tls_cert else 'http'}://{self.host}"
        self.realm = f"{self.url}/token"
        _live.add(self)

    def stop(self):
        if self._server:
            self._server.stop()
            self._server = None
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _record(self, rec):
        with self._lock:
            self.requests.append(rec)

    # -- tokens

    def granted(self, user, typ, name, actions):
        """The actions of one scope this issuer grants to user (None: anonymous)."""
        if user is None and not self.anonymous:
            return []
        if callable(self.rules):
            allowed = list(self.rules(user, typ, name, actions))
        elif self.rules is not None:
            allowed = []
            for pattern, acts in self.rules.get(user, {}).items():
                if fnmatch.fnmatchcase(name, pattern):
                    allowed += acts
            allowed = [a for a in actions if a in allowed or "*" in allowed]
        else:
            allowed = list(actions)
        if user is None:
            allowed = [a for a in allowed if a == "pull"]
        return [a for a in actions if a in allowed]

    def make_token(self, user, scopes, lifetime=None):
        """A signed JWT for user with the access granted for scopes."""
        now = int(time.time())
        access = []
        for typ, name, actions in scopes:
            acts = self.granted(user, typ, name, actions)
            if acts:
                access.append({"type": typ, "name": name, "actions": acts})
        life = lifetime if lifetime is not None else (self.lifetime if self.lifetime is not None
                                                     else self.expires_in)
        with self._lock:
            if self.expired_first > 0:
                # past the registry's 60 s leeway: it answers 401 to this one
                self.expired_first -= 1
                life = -120
        header = {"alg": "ES256", "typ": "JWT", "x5c": [self._x5c]}
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service, "exp": now + life,
                  "nbf": now - 1, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        der = _run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode())
        return signing_input + "." + _b64url(_der_ecdsa_to_raw(der)), access

    @staticmethod
    def decode(token):
        """(header, claims) of a JWT, unverified: for assertions."""
        h, c, _ = token.split(".")
        pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
        return (json.loads(base64.urlsafe_b64decode(pad(h))), json.loads(base64.urlsafe_b64decode(pad(c))))


def _der_ecdsa_to_raw(der, size=32):
    """DER ECDSA-Sig-Value (SEQUENCE {r INTEGER, s INTEGER}) -> r||s, each
    big-endian, zero-padded to size bytes (JWS ES256)."""
    if len(der) < 8 or der[0] != 0x30:
        raise RegistryError("openssl dgst: not a DER ECDSA signature")
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        if der[i] != 0x02:
            raise RegistryError("openssl dgst: not a DER ECDSA signature")
        n = der[i + 1]
        out += int.from_bytes(der[i + 2:i + 2 + n], "big").to_bytes(size, "big")
        i += 2 + n
    return out


class _TokenHandler(_Handler):
    def _authenticate(self):
        """(user, scheme, ok): ok False when credentials were given but wrong."""
        value = self.headers.get("Authorization")
        scheme = _auth_scheme(value)
        if value is None:
            return None, None, True
        if scheme.lower() != "basic":
            return None, scheme, False
        try:
            user, _, password = base64.b64decode(value.split(" ", 1)[1].strip()).decode().partition(":")
        except (ValueError, IndexError, UnicodeDecodeError):
            return None, scheme, False
        issuer = self.server.owner
        if user in issuer.users and secrets.compare_digest(issuer.users[user], password):
            return user, scheme, True
        return None, scheme, False

    def _path(self):
        u = urllib.parse.urlsplit(self.path)
        return u.path, urllib.parse.parse_qs(u.query, keep_blank_values=True)

    def do_GET(self):
        issuer = self.server.owner
        path, query = self._path()
        user, scheme, ok = self._authenticate()
        rec = {"method": "GET", "path": path, "query": query, "auth": scheme, "user": user, "form": None,
               "scopes": [], "access": [], "status": None}
        try:
            if path != "/token":
                return self._answer(rec, 404, {"errors": [{"code": "NOT_FOUND", "message": "no such path"}]})
            if not ok or (user is None and not issuer.anonymous):
                return self._answer(rec, 401, {"errors": [{"code": "UNAUTHORIZED",
                                                           "message": "authentication required"}]},
                                    [("WWW-Authenticate", 'Basic realm="sconify-test-issuer"')])
            if query.get("service", [issuer.service])[0] != issuer.service:
                return self._answer(rec, 400, {"errors": [{"code": "DENIED", "message": "unknown service"}]})
            rec["scopes"] = parse_scopes(query.get("scope", []))
            token, rec["access"] = issuer.make_token(user, rec["scopes"])
            body = {"expires_in": issuer.expires_in, "issued_at": _rfc3339(time.time())}
            if issuer.answer in ("both", "token"):
                body["token"] = token
            if issuer.answer in ("both", "access_token"):
                body["access_token"] = token
            if query.get("offline_token", ["false"])[0] == "true" and user is not None:
                body["refresh_token"] = _new_refresh_token(issuer, user)
            self._answer(rec, 200, body)
        finally:
            if getattr(self, "_recorded", None) is not rec:
                self.server.owner._record(rec)

    def do_POST(self):
        issuer = self.server.owner
        path, query = self._path()
        raw = self.read_body()
        fields = urllib.parse.parse_qs(raw.decode(errors="replace"), keep_blank_values=True)
        # one field each, except scope: containers/image repeats it, the spec space-separates it
        form = {k: (" ".join(v) if k == "scope" else v[0]) for k, v in fields.items()}
        shown = dict(form)
        if "password" in shown:
            shown["password"] = "<redacted>"
        rec = {"method": "POST", "path": path, "query": query,
               "auth": _auth_scheme(self.headers.get("Authorization")), "user": None, "form": shown,
               "scopes": [], "access": [], "status": None}
        try:
            if path != "/token" or issuer.post == "404":
                return self._answer(rec, 404, b"404 page not found\n", content_type="text/plain")
            grant = form.get("grant_type")
            user = None
            if grant == "password":
                name, password = form.get("username", ""), form.get("password", "")
                if name in issuer.users and secrets.compare_digest(issuer.users[name], password):
                    user = name
            elif grant == "refresh_token":
                user = issuer.refresh_tokens.get(form.get("refresh_token", ""))
            else:
                return self._answer(rec, 400, {"error": "unsupported_grant_type"})
            if user is None:
                return self._answer(rec, 401, {"error": "invalid_grant"})
            rec["user"] = user
            if form.get("service", issuer.service) != issuer.service:
                return self._answer(rec, 400, {"error": "invalid_request", "error_description": "unknown service"})
            rec["scopes"] = parse_scopes([form.get("scope", "")])
            token, rec["access"] = issuer.make_token(user, rec["scopes"])
            body = {"access_token": token, "scope": form.get("scope", ""), "expires_in": issuer.expires_in,
                    "issued_at": _rfc3339(time.time())}
            if grant == "refresh_token":
                body["refresh_token"] = form["refresh_token"]
            elif form.get("access_type") == "offline":
                body["refresh_token"] = _new_refresh_token(issuer, user)
            self._answer(rec, 200, body)
        finally:
            if getattr(self, "_recorded", None) is not rec:
                issuer._record(rec)

    def _answer(self, rec, status, body, headers=(), content_type="application/json"):
        """Records the request, then answers (a client that got the answer
        finds the record)."""
        rec["status"] = status
        self.server.owner._record(rec)
        self._recorded = rec
        self.send(status, body, headers, content_type)


def _new_refresh_token(issuer, user):
    tok = "rt-" + secrets.token_hex(12)
    issuer.refresh_tokens[tok] = user
    return tok


def _rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


# --------------------------------------------------------------------------
# the registry


class Registry:
    """CNCF distribution (`docker-registry serve`) on 127.0.0.1:<free port>,
    storage and config below a fresh directory in workdir.

    users: {name: password} for htpasswd and token auth (default alice: s3cret).
    auth: None | "htpasswd" | "token" (then `issuer` is a TokenIssuer built
      with users and token_options, stopped with the registry; over HTTPS when
      the registry uses TLS, unless token_options says tls=False).
    tls: serve HTTPS with certificates made now (see TLSFiles); tls_cert picks
      the server certificate: good | expired | wrong-san | untrusted.
    extra_yaml: text appended to config.yml (e.g. a notifications section).

    Attributes: host ("127.0.0.1:PORT"), url, dir, storage_dir, config_file,
    log_file, startup_seconds; with tls: tls (TLSFiles), ca_file, cert_dir,
    untrusted_cert_dir. stop() ends it (files stay), restart() starts it
    again on the same port and storage, log() returns its log so far."""

    def __init__(self, workdir, auth=None, tls=False, users=None, token_options=None, tls_cert="good",
                 log_level="warn", extra_yaml="", client_ca=False):
        if auth not in (None, "htpasswd", "token"):
            raise ValueError(f"auth must be None, htpasswd or token, not {auth!r}")
        self.auth = auth
        self.client_ca = client_ca  # with tls: clients must present a certificate from the CA
        self.users = dict(users if users is not None else {"alice": "s3cret"})
        self.dir = os.path.join(workdir, f"registry-{uuid.uuid4().hex[:8]}")
        os.makedirs(self.dir)
        self.storage_dir = os.path.join(self.dir, "storage")
        self.config_file = os.path.join(self.dir, "config.yml")
        self.log_file = os.path.join(self.dir, "registry.log")
        self.issuer = None
        self.tls = None
        self._proc = None
        self._log_level = log_level
        self._extra_yaml = extra_yaml
        _live.add(self)
        try:
            if tls:
                self.tls = TLSFiles(os.path.join(self.dir, "tls"))
                self.ca_file = self.tls.ca_file
                self.cert_dir = self.tls.cert_dir
                self.untrusted_cert_dir = self.tls.untrusted_cert_dir
                self._server_cert = self.tls.server_cert(tls_cert)
            if auth == "htpasswd":
                self.htpasswd_file = os.path.join(self.dir, "htpasswd")
                for i, (name, password) in enumerate(self.users.items()):
                    _run(["htpasswd", "-B", "-C", "4", "-i", *(["-c"] if i == 0 else []), self.htpasswd_file,
                          name], input=password.encode())
                if not self.users:
                    open(self.htpasswd_file, "w").close()
            elif auth == "token":
                opts = dict(token_options or {})
                use_tls = opts.pop("tls", bool(tls))
                if use_tls and "tls_cert" not in opts:
                    if not self.tls:
                        raise ValueError("token_options tls=True needs tls=True on the registry")
                    opts["tls_cert"] = self.tls.server
                self.issuer = TokenIssuer(self.dir, users=self.users, **opts)
            self.start()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def _write_config(self, port):
        lines = ["version: 0.1",
                 "log:", f"  level: {self._log_level}", "  formatter: text", "  accesslog:", "    disabled: true",
                 "storage:", "  filesystem:", f"    rootdirectory: {_q(self.storage_dir)}",
                 "  delete:", "    enabled: true",
                 "  maintenance:", "    uploadpurging:", "      enabled: false",
                 "http:", f"  addr: {_q(f'127.0.0.1:{port}')}", f"  secret: {_q(secrets.token_hex(16))}"]
        if self.tls:
            cert, key = self._server_cert
            lines += ["  tls:", f"    certificate: {_q(cert)}", f"    key: {_q(key)}"]
            if self.client_ca:
                lines += ["    clientcas:", f"      - {_q(self.tls.ca_file)}"]
        if self.auth == "htpasswd":
            lines += ["auth:", "  htpasswd:", "    realm: sconify-test", f"    path: {_q(self.htpasswd_file)}"]
        elif self.auth == "token":
            i = self.issuer
            lines += ["auth:", "  token:", f"    realm: {_q(i.realm)}", f"    service: {_q(i.service)}",
                      f"    issuer: {_q(i.issuer)}", f"    rootcertbundle: {_q(i.cert)}"]
        with open(self.config_file, "w") as f:
            f.write("\n".join(lines) + "\n" + self._extra_yaml)

    def start(self):
        """Starts the registry (again, after stop()) and waits until it answers."""
        if self._proc:
            return
        for attempt in range(3):
            # a restart keeps the port when it can (clients hold the address)
            old = getattr(self, "host", None)
            port = int(old.rsplit(":", 1)[1]) if attempt == 0 and old else free_port()
            self.host = f"127.0.0.1:{port}"
            self._write_config(port)
            t0 = time.monotonic()
            with open(self.log_file, "ab") as log:
                self._proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config_file], stdin=subprocess.DEVNULL,
                                              stdout=log, stderr=log)
            _live.add(self)
            status = self._wait_ready(port)
            if status == "ready":
                self.startup_seconds = time.monotonic() - t0
                return
            self._kill()
            if status == "port taken" and attempt < 2:
                continue
            raise RegistryError(f"docker-registry did not come up on {self.host} ({status}); "
                                f"its log:\n{self.log()}")

    def _wait_ready(self, port):
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # readiness only; tests check verification
            if self.client_ca:
                d = self.tls.client_cert_dir()
                ctx.load_cert_chain(os.path.join(d, "client.cert"), os.path.join(d, "client.key"))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                if "address already in use" in self.log():
                    return "port taken"
                return f"exited with {self._proc.returncode}"
            try:
                if ctx:
                    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=ctx)
                else:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                try:
                    conn.request("GET", "/v2/")
                    if conn.getresponse().status in (200, 401):
                        return "ready"
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.01)
        return f"no answer within {START_TIMEOUT:.0f} s"

    def _kill(self):
        p, self._proc = self._proc, None
        if p and p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop(self):
        """Stops the registry (and its token issuer). Files stay in self.dir."""
        self._kill()
        if self.issuer:
            self.issuer.stop()
        _live.discard(self)

    def restart(self):
        """Stops and starts the registry: same storage, same port if free."""
        self._kill()
        self.start()

    def log(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# fault-injecting proxy


class Rule:
    """One fault rule of a FaultProxy; hits counts how often it fired."""

    def __init__(self, kind, method, path, times, **args):
        self.kind, self.method, self.path, self.times = kind, method, re.compile(path), times
        self.args = args
        self.hits = 0

    def matches(self, method, path):
        return ((self.method is None or self.method == method) and self.path.search(path) is not None
                and (self.times is None or self.hits < self.times))

    def __repr__(self):
        return f"Rule({self.kind}, {self.method}, {self.path.pattern!r}, times={self.times}, hits={self.hits})"


class _Cut(Exception):
    pass


class FaultProxy:
    """A plain-HTTP reverse proxy on its own port in front of target_host
    (a plain-HTTP registry), forwarding bytes unchanged: request line and
    headers as sent (Host, Authorization included), request bodies of either
    framing (Content-Length or chunked), responses as received with
    WWW-Authenticate; a Location naming the target is rewritten to the proxy.

    Rules, added at run time, match method (None: any) and a regex searched
    in the path (with "?query" when there is one); each fires for the first `times` matches (None: always), the
    first live matching rule wins:
      fail(status=500)       answer it here with an error
      throttle()             answer 429 with Retry-After: 1
      cut(after=K)           forward, cut the connection after K response body bytes
      stall(after=K, seconds=S)  forward, pause S seconds after K body bytes
      redirect()             answer 307 to the proxy's storage port, which
                             serves the same blob by fetching it from the
                             registry with the Authorization of the redirected
                             request (a presigned URL, in effect)
      add_header(name, value) forward, add a response header
      set_header(name, value) forward, replace a response header
      add_rule("relative_location", ...)  forward, Location made relative
      lose()                 forward, then drop the connection unanswered

    A request with `Expect: 100-continue` gets the registry's interim 100
    before its body is forwarded; a rule answering it locally closes the
    connection after the answer. A TLS ClientHello (clients that try HTTPS
    first) is answered the way Go's plain HTTP server does, and counted in
    tls_probes.

    requests / redirect_requests: one dict per request on either port:
    method, path, query (raw string), auth (Authorization scheme or None),
    chunked (request body was chunked), rule (kind of the rule that fired or
    None), status (answer sent; None if the connection failed), and with
    keep_bodies the body forwarded to the registry (a bytearray, framing
    removed)."""

    def __init__(self, target_host, storage_rejects_auth=False, storage_challenge=None, keep_bodies=False):
        self.keep_bodies = keep_bodies
        self.storage_challenge = storage_challenge
        self.target_host = target_host
        t_host, t_port = target_host.rsplit(":", 1)
        self._target = (t_host, int(t_port))
        self.storage_rejects_auth = storage_rejects_auth
        self.rules = []
        self.requests = []
        self.redirect_requests = []
        self.tls_probes = 0
        self._presigned = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(_ProxyHandler, self)
        self._storage = _Server(_StorageHandler, self)
        self.host = f"127.0.0.1:{self._server.port}"
        self.url = f"http://{self.host}"
        self.storage_host = f"127.0.0.1:{self._storage.port}"
        _live.add(self)

    # -- rules

    def add_rule(self, kind, method, path, times=1, **args):
        rule = Rule(kind, method, path, times, **args)
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail(self, method, path, status=500, times=1):
        return self.add_rule("fail", method, path, times, status=status)

    def throttle(self, method, path, times=1, retry_after="1"):
        return self.add_rule("throttle", method, path, times, retry_after=retry_after)

    def cut(self, method, path, after, times=1):
        return self.add_rule("cut", method, path, times, after=after)

    def stall(self, method, path, after, seconds, times=1):
        return self.add_rule("stall", method, path, times, after=after, seconds=seconds)

    def redirect(self, method="GET", path=r"/blobs/sha256:[0-9a-f]{64}$", times=None):
        return self.add_rule("redirect", method, path, times)

    def set_header(self, method, path, name, value, times=None):
        """Forward, replacing a response header (e.g. a hostile Location)."""
        return self.add_rule("set_header", method, path, times, name=name, value=value)

    def lose(self, method, path, times=1):
        """Forward the request, then drop the connection instead of answering:
        the registry acted, the client cannot know."""
        return self.add_rule("lose", method, path, times)

    def add_header(self, method, path, name, value, times=None):
        return self.add_rule("add_header", method, path, times, name=name, value=value)

    def clear_rules(self):
        with self._lock:
            self.rules.clear()

    def _match(self, method, path):
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def find(self, method=None, path=None, redirected=False):
        """Recorded requests with this method and a path matching regex path."""
        recs = self.redirect_requests if redirected else self.requests
        with self._lock:
            recs = list(recs)
        return [r for r in recs if (method is None or r["method"] == method)
                and (path is None or re.search(path, r["path"]))]

    def _record(self, rec, redirected=False):
        with self._lock:
            (self.redirect_requests if redirected else self.requests).append(rec)

    def stop(self):
        self._stopping.set()
        for s in (self._server, self._storage):
            if s:
                s.stop()
        self._server = self._storage = None
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class _Stream:
    """Buffered reading over a socket plus raw writes."""

    def __init__(self, sock):
        self.sock = sock
        self.rf = sock.makefile("rb", buffering=65536)

    def readline(self, limit=65537):
        line = self.rf.readline(limit)
        if len(line) >= limit:
            raise EOFError("line too long")
        return line

    def read_head(self):
        """Start line + header lines (raw, CRLF kept) up to the blank line;
        None on a clean EOF before any byte."""
        first = self.rf.readline(65537)
        if not first:
            return None
        lines, total = [first], len(first)
        while True:
            line = self.readline()
            if not line:
                raise EOFError("connection closed inside a header")
            total += len(line)
            if total > 1 << 20:
                raise EOFError("header too large")
            if line in (b"\r\n", b"\n"):
                return lines
            lines.append(line)

    def read1(self, n):
        return self.rf.read1(n)

    def write(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.rf.close()
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _header(lines, name):
    name = name.lower().encode()
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip().decode("latin-1")
    return None


def _framing(lines, is_response=False, method=None, status=None):
    """("chunked", None) | ("length", n) | ("close", None) | ("none", None)."""
    if is_response and (method == "HEAD" or status in (204, 304) or 100 <= status < 200):
        return "none", None
    te = _header(lines, "Transfer-Encoding")
    if te and "chunked" in te.lower():
        return "chunked", None
    cl = _header(lines, "Content-Length")
    if cl is not None:
        return "length", int(cl)
    return ("close", None) if is_response else ("none", None)


def _copy_n(src, write, n):
    while n > 0:
        data = src.read1(min(n, 65536))
        if not data:
            raise EOFError("connection closed inside a body")
        write(data)
        n -= len(data)


def _copy_body(src, write, framing):
    kind, n = framing
    if kind == "length":
        _copy_n(src, write, n)
    elif kind == "chunked":
        while True:
            line = src.readline(4096)
            if not line:
                raise EOFError("connection closed inside a chunked body")
            write(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers up to the blank line
                    t = src.readline()
                    if not t:
                        raise EOFError("connection closed inside trailers")
                    write(t)
                    if t in (b"\r\n", b"\n"):
                        return
            _copy_n(src, write, size + 2)
    elif kind == "close":
        while True:
            data = src.read1(65536)
            if not data:
                return
            write(data)


class _BodyWriter:
    """Writes response body bytes to the client, applying cut / stall."""

    def __init__(self, client, rule, stopping):
        self.client, self.rule, self.stopping = client, rule, stopping
        self.sent = 0

    def __call__(self, data):
        rule = self.rule
        if rule and rule.kind in ("cut", "stall"):
            k = rule.args["after"]
            if self.sent <= k < self.sent + len(data):
                head, data = data[:k - self.sent], data[k - self.sent:]
                if head:
                    self.client.write(head)
                    self.sent += len(head)
                if rule.kind == "cut":
                    raise _Cut()
                self.stopping.wait(rule.args["seconds"])
                self.rule = None
        if data:
            self.client.write(data)
            self.sent += len(data)


_TLS_ANSWER = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"


class _ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self):
        proxy = self.server.owner
        self.request.settimeout(120)
        try:
            first = self.request.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b"\x16":  # a TLS ClientHello: answer as Go's plain HTTP server does
            with proxy._lock:
                proxy.tls_probes += 1
            try:
                self.request.sendall(_TLS_ANSWER)
            except OSError:
                pass
            return
        client = _Stream(self.request)
        self.upstream = None
        try:
            while not proxy._stopping.is_set():
                if not self._exchange(proxy, client):
                    break
        except (OSError, EOFError, ValueError, _Cut):
            pass
        finally:
            if self.upstream:
                self.server.untrack(self.upstream.sock)
                self.upstream.close()
            client.close()

    def _connect(self):
        proxy = self.server.owner
        sock = socket.create_connection(proxy._target, timeout=120)
        self.server.track(sock)
        self.upstream = _Stream(sock)

    def _exchange(self, proxy, client):
        """Serves one request; False when the client connection must close."""
        head = client.read_head()
        if head is None:
            return False
        method, target, version = head[0].decode("latin-1").split(" ", 2)
        url = urllib.parse.urlsplit(target)
        framing = _framing(head)
        # rules see the query too: a mount is a POST .../uploads/?mount=...
        rule = proxy._match(method, url.path + ("?" + url.query if url.query else ""))
        rec = {"method": method, "path": url.path, "query": url.query,
               "auth": _auth_scheme(_header(head, "Authorization")), "chunked": framing[0] == "chunked",
               "rule": rule.kind if rule else None, "status": None}
        proxy._record(rec)
        body = None
        if proxy.keep_bodies:
            body = rec["body"] = bytearray()

        def upstream_write(b):
            self.upstream.write(b)
            if body is not None:
                body.extend(b)
        keep = version.strip() == "HTTP/1.1" and (_header(head, "Connection") or "").lower() != "close"
        expect = (_header(head, "Expect") or "").lower() == "100-continue" and framing[0] != "none"

        if rule and rule.kind in ("fail", "throttle", "redirect"):
            if expect:
                keep = False  # answered before the body was sent: close rather than guess
            else:
                _copy_body(client, lambda b: None, framing)
            if rule.kind == "fail":
                status, extra = rule.args["status"], []
                body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "fault injected by FaultProxy"}]})
            elif rule.kind == "throttle":
                status, extra = 429, [("Retry-After", rule.args["retry_after"])]
                body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS",
                                               "message": "fault injected: slow down"}]})
            else:
                key = secrets.token_hex(8)
                with proxy._lock:
                    proxy._presigned[key] = _header(head, "Authorization")
                status, body = 307, ""
                extra = [("Location", f"http://{proxy.storage_host}/{key}{target}")]
            body = body.encode()
            out = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'Error')}",
                   "Content-Type: application/json", f"Content-Length: {len(body)}",
                   "Docker-Distribution-Api-Version: registry/2.0"] + [f"{k}: {v}" for k, v in extra]
            if not keep:
                out.append("Connection: close")
            rec["status"] = status
            client.write(("\r\n".join(out) + "\r\n\r\n").encode() + (body if method != "HEAD" else b""))
            return keep

        # forward
        raw_head = b"".join(head) + b"\r\n"
        for attempt in range(2):
            if self.upstream is None:
                self._connect()
            reused = attempt == 0 and getattr(self, "_used", False)
            try:
                self.upstream.write(raw_head)
                if expect:
                    # the client sends its body after an interim 100: pass
                    # that on first; a final answer instead ends the exchange
                    resp = self.upstream.read_head()
                    if resp is not None and int(resp[0].split(b" ", 2)[1]) == 100:
                        client.write(b"".join(resp) + b"\r\n")
                        _copy_body(client, upstream_write, framing)
                        resp = self.upstream.read_head()
                    elif resp is not None:
                        keep = False
                else:
                    _copy_body(client, upstream_write, framing)
                    resp = self.upstream.read_head()
            except (OSError, EOFError):
                resp = None
                if framing[0] != "none":
                    raise
            if resp is not None or not reused:
                break
            self.server.untrack(self.upstream.sock)  # a stale keep-alive connection: retry once
            self.upstream.close()
            self.upstream = None
        if resp is None:
            raise EOFError("upstream closed the connection")
        self._used = True
        while True:
            status = int(resp[0].split(b" ", 2)[1])
            if not (100 <= status < 200 and status != 101):
                break
            client.write(b"".join(resp) + b"\r\n")
            resp = self.upstream.read_head()
        resp = self._rewrite(proxy, resp, rule)
        rec["status"] = status
        if rule and rule.kind == "lose":
            # the registry did the work; its answer never reaches the client
            _copy_body(self.upstream, lambda b: None, _framing(resp, True, method, status))
            rec["status"] = None
            raise _Cut()
        client.write(b"".join(resp) + b"\r\n")
        rframing = _framing(resp, True, method, status)
        _copy_body(self.upstream, _BodyWriter(client, rule, proxy._stopping), rframing)
        if rframing[0] == "close" or (_header(resp, "Connection") or "").lower() == "close":
            return False
        if not keep:
            self.server.untrack(self.upstream.sock)  # the upstream may still wait for a body
            self.upstream.close()
            self.upstream = None
        return keep

    def _rewrite(self, proxy, resp, rule):
        out = [resp[0]]
        for line in resp[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"location":
                loc = v.strip().decode("latin-1")
                for scheme in ("http://", "https://"):
                    if loc.startswith(scheme + proxy.target_host):
                        loc = proxy.url + loc[len(scheme + proxy.target_host):]
                        line = k + b": " + loc.encode("latin-1") + b"\r\n"
            out.append(line)
        if rule and rule.kind == "relative_location":
            out = [line.replace(proxy.url.encode("latin-1"), b"", 1)
                   if line.partition(b":")[0].strip().lower() == b"location" else line for line in out]
        if rule and rule.kind == "set_header":
            name = rule.args["name"].lower().encode("latin-1")
            out = [line for line in out if line.partition(b":")[0].strip().lower() != name]
        if rule and rule.kind in ("add_header", "set_header"):
            out.append(f"{rule.args['name']}: {rule.args['value']}\r\n".encode("latin-1"))
        return out


class _StorageHandler(_Handler):
    """The redirect target: /<key>/v2/<name>/blobs/<digest> served by
    fetching the blob from the registry with the redirected request's
    Authorization (Range passed on)."""

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        proxy = self.server.owner
        url = urllib.parse.urlsplit(self.path)
        auth = self.headers.get("Authorization")
        rec = {"method": self.command, "path": url.path, "query": url.query, "auth": _auth_scheme(auth),
               "chunked": False, "rule": None, "status": None}
        proxy._record(rec, redirected=True)
        key, _, rest = url.path.lstrip("/").partition("/")
        with proxy._lock:
            known = key in proxy._presigned
            upstream_auth = proxy._presigned.get(key)
        if not known:
            rec["status"] = 403
            return self.send(403, b"<Error><Code>AccessDenied</Code></Error>", content_type="application/xml")
        if proxy.storage_challenge:
            # a redirect target that asks for credentials of its own choosing
            rec["status"] = 401
            return self.send(401, b"", headers=[("WWW-Authenticate", proxy.storage_challenge)])
        if auth and proxy.storage_rejects_auth:
            rec["status"] = 400
            return self.send(400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed"
                             b"</Message></Error>", content_type="application/xml")
        conn = http.client.HTTPConnection(*proxy._target, timeout=120)
        try:
            headers = {}
            if upstream_auth:
                headers["Authorization"] = upstream_auth
            if self.headers.get("Range"):
                headers["Range"] = self.headers["Range"]
            conn.request(self.command, "/" + rest + (f"?{url.query}" if url.query else ""), headers=headers)
            r = conn.getresponse()
            rec["status"] = r.status
            self.send_response(r.status)
            for k in ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Docker-Content-Digest",
                      "ETag"):
                if r.getheader(k) is not None:
                    self.send_header(k, r.getheader(k))
            if r.getheader("Content-Length") is None:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            while self.command != "HEAD":
                data = r.read(65536)
                if not data:
                    break
                self.wfile.write(data)
        finally:
            conn.close()


# --------------------------------------------------------------------------
# client credentials


def docker_config(dir, auths=None, cred_helpers=None, creds_store=None):
    """Writes dir/config.json in docker's format and returns its path.
    auths: {key: (user, password) | (user, password, identitytoken) |
    {"auth": .., "identitytoken": ..} | str} (a str is the base64 `auth` value
    as is; containers/image reads an identitytoken only next to an `auth` that
    decodes to user:password, so pass (user, "", token) as docker writes it);
    cred_helpers: {host: suffix};
    creds_store: a helper suffix for every host."""
    os.makedirs(dir, exist_ok=True)
    cfg = {}
    if auths is not None:
        cfg["auths"] = {}
        for key, value in auths.items():
            if isinstance(value, tuple):
                user, password, *token = value
                value = {"auth": base64.b64encode(f"{user}:{password or ''}".encode()).decode()}
                if token:
                    value["identitytoken"] = token[0]
            elif isinstance(value, str):
                value = {"auth": value}
            cfg["auths"][key] = value
    if cred_helpers is not None:
        cfg["credHelpers"] = dict(cred_helpers)
    if creds_store is not None:
        cfg["credsStore"] = creds_store
    path = os.path.join(dir, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    os.chmod(path, 0o600)
    return path


def _shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


class CredentialHelper:
    """A docker-credential-<name> script in dir. path, log_path; asked()
    lists the server URLs `get` was asked for; env() puts dir first in PATH."""

    def __init__(self, dir, name, answers):
        os.makedirs(dir, exist_ok=True)
        self.dir, self.name = dir, name
        self.path = os.path.join(dir, f"docker-credential-{name}")
        self.log_path = self.path + ".log"
        cases = []
        for url, (user, secret) in answers.items():
            body = json.dumps({"ServerURL": url, "Username": user, "Secret": secret})
            cases.append(f"    {_shq(url)}) printf '%s\\n' {_shq(body)} ;;")
        listing = json.dumps({url: user for url, (user, _) in answers.items()})
        script = f"""#!/bin/sh
# docker credential helper made by registryenv.py for tests: `get' answers from a table
log={_shq(self.log_path)}
case "$1" in
get)
    url=$(cat)
    printf 'get %s\\n' "$url" >>"$log"
    case "$url" in
{chr(10).join(cases)}
    *) echo 'credentials not found in native keychain'; exit 1 ;;
    esac ;;
list) printf '%s\\n' {_shq(listing)} ;;
store) cat >/dev/null; echo store >>"$log" ;;
erase) printf 'erase %s\\n' "$(cat)" >>"$log" ;;
version) echo 'registryenv test helper 1' ;;
*) echo "unknown command: $1"; exit 1 ;;
esac
"""
        with open(self.path, "w") as f:
            f.write(script)
        os.chmod(self.path, 0o755)
        open(self.log_path, "a").close()

    def asked(self):
        with open(self.log_path) as f:
            return [line[4:].rstrip("\n") for line in f if line.startswith("get ")]

    def env(self, base=None):
        env = dict(os.environ if base is None else base)
        env["PATH"] = self.dir + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        return env


def credential_helper(dir, name, answers):
    """Writes an executable docker-credential-<name> in dir implementing
    `get` from answers ({server URL as sent on stdin: (user, secret)}; user
    "<token>" means secret is an identity token), "credentials not found in
    native keychain" + exit 1 otherwise; logs what it was asked. Returns a
    CredentialHelper."""
    return CredentialHelper(dir, name, answers)
