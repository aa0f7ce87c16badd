# SPDX-License-Identifier: Apache-2.0
"""An independent cosign (legacy `.sig` tag format) signer and verifier for the
signing tests. It uses no project code: the Python standard library, the
`openssl` command line for every ECDSA operation, plain HTTP (http.client)
for the registry, and PyNaCl (python3-nacl) with hashlib.scrypt for cosign's
encrypted private keys (a small pure-Python secretbox stands in when PyNaCl
cannot be imported; secretbox_backends() lists both so a test can compare).

    key = gen_key(dir, "a")                       # PEM PKCS#8 P-256 (+ a.pub)
    c = Client("127.0.0.1:5000", creds=("alice", "pw"))
    digest = c.digest("repo", "tag")
    sign(c, "repo", digest, key, optional={"k": "v"})
    payloads = verify(c, "repo", "tag", "a.pub", annotations={"k": "v"})

The format (../shared/reference/protocols.md §4.1): tag `sha256-<hex>.sig` in
the image's repository; an OCI image manifest with one layer per signature
(media type application/vnd.dev.cosign.simplesigning.v1+json, blob = the
payload, annotation dev.cosignproject.cosign/signature = base64 of the DER
ECDSA signature over SHA-256(payload)); config = go-containerregistry's empty
image config with rootfs.diff_ids = the layer digests."""

import base64
import hashlib
import http.client
import json
import os
import struct
import subprocess
import sys
import tempfile
import urllib.parse

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
PAYLOAD_TYPE = "cosign container image signature"
ACCEPT = ", ".join([MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST])
KEY_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
ZERO_TIME = "0001-01-01T00:00:00Z"


class VerifyError(Exception):
    """A signature check failed; the message says why."""


class HTTPError(Exception):
    def __init__(self, status, method, path, body):
        super().__init__(f"{method} {path}: HTTP {status}: {body[:200]!r}")
        self.status = status


# --------------------------------------------------------------------------
# openssl


def _openssl(*args, input=None):
    p = subprocess.run(["openssl", *args], input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {p.stderr.decode(errors='replace')}")
    return p.stdout


def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def gen_key(dir, name, form="pkcs8"):
    """Makes an ECDSA P-256 key with openssl: dir/name.pem (form "pkcs8":
    PEM PRIVATE KEY, "sec1": PEM EC PRIVATE KEY) and dir/name.pub (PEM
    PUBLIC KEY). Returns the private key path."""
    key = os.path.join(dir, f"{name}.pem")
    if form == "pkcs8":
        pem = _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    elif form == "sec1":
        pem = _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout")
    else:
        raise ValueError(form)
    _write_private(key, pem)
    with open(os.path.join(dir, f"{name}.pub"), "wb") as f:
        f.write(public_pem(key))
    return key


def public_pem(private_key_path):
    """The PEM PUBLIC KEY (SPKI) of a PEM private key, derived by openssl."""
    return _openssl("pkey", "-in", private_key_path, "-pubout")


def public_der(pub_pem_path):
    """The DER SPKI of a PEM public key: compares keys whatever their PEM layout."""
    return _openssl("pkey", "-pubin", "-in", pub_pem_path, "-outform", "DER")


def public_curve(pub_pem_path):
    """The curve name openssl reports for a public key (e.g. prime256v1)."""
    text = _openssl("pkey", "-pubin", "-in", pub_pem_path, "-noout", "-text").decode()
    for line in text.splitlines():
        if "ASN1 OID:" in line:
            return line.split(":", 1)[1].strip()
    return None


def ecdsa_sign(private_key_path, data):
    """DER ECDSA signature over SHA-256(data) (openssl dgst -sha256 -sign)."""
    return _openssl("dgst", "-sha256", "-sign", private_key_path, input=data)


def ecdsa_verify(pub_pem_path, data, signature, hash="sha256"):
    """True when signature (DER) is a valid signature of SHA-256(data) (or
    the hash given: cosign uses SHA-384 for P-384, SHA-512 for P-521) by the
    public key (openssl dgst -sha256 -verify; RSA PKCS#1 v1.5 keys too)."""
    with tempfile.NamedTemporaryFile(prefix="cosignref-sig-") as f:
        f.write(signature)
        f.flush()
        p = subprocess.run(["openssl", "dgst", f"-{hash}", "-verify", pub_pem_path, "-signature", f.name],
                           input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode == 0 and b"Verified OK" in p.stdout


# --------------------------------------------------------------------------
# secretbox (XSalsa20-Poly1305) and cosign's encrypted key files


def _import_nacl():
    try:
        import nacl.secret
        return nacl.secret
    except ImportError:
        pass
    # Debian's python3-nacl lives in the system site directory, which a
    # Python from elsewhere (pyenv) does not search; it is built for the
    # stable ABI, so any CPython 3 of the same platform loads it.
    dist = "/usr/lib/python3/dist-packages"
    if os.path.isdir(os.path.join(dist, "nacl")) and dist not in sys.path:
        sys.path.append(dist)
        try:
            import nacl.secret
            return nacl.secret
        except ImportError:
            pass
    return None


_nacl_secret = _import_nacl()
MASK32 = 0xFFFFFFFF


def _rotl(v, c):
    return ((v << c) & MASK32) | (v >> (32 - c))


def _salsa_rounds(x):
    x = list(x)
    for _ in range(10):
        for a, b, c, d in ((0, 4, 8, 12), (5, 9, 13, 1), (10, 14, 2, 6), (15, 3, 7, 11),
                           (0, 1, 2, 3), (5, 6, 7, 4), (10, 11, 8, 9), (15, 12, 13, 14)):
            x[b] ^= _rotl((x[a] + x[d]) & MASK32, 7)
            x[c] ^= _rotl((x[b] + x[a]) & MASK32, 9)
            x[d] ^= _rotl((x[c] + x[b]) & MASK32, 13)
            x[a] ^= _rotl((x[d] + x[c]) & MASK32, 18)
    return x


_SIGMA = struct.unpack("<4I", b"expand 32-byte k")


def _salsa_input(key, nonce16):
    k = struct.unpack("<8I", key)
    n = struct.unpack("<4I", nonce16)
    return [_SIGMA[0], k[0], k[1], k[2], k[3], _SIGMA[1], n[0], n[1], n[2], n[3], _SIGMA[2], k[4], k[5], k[6],
            k[7], _SIGMA[3]]


def _hsalsa20(key, nonce16):
    x = _salsa_rounds(_salsa_input(key, nonce16))
    return struct.pack("<8I", *(x[i] for i in (0, 5, 10, 15, 6, 7, 8, 9)))


def _salsa20_stream(key, nonce8, length):
    out = bytearray()
    counter = 0
    while len(out) < length:
        inp = _salsa_input(key, nonce8 + struct.pack("<Q", counter))
        x = _salsa_rounds(inp)
        out += struct.pack("<16I", *((a + b) & MASK32 for a, b in zip(x, inp)))
        counter += 1
    return bytes(out[:length])


def _poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    p = (1 << 130) - 5
    acc = 0
    for i in range(0, len(msg), 16):
        block = msg[i:i + 16] + b"\x01"
        acc = (acc + int.from_bytes(block, "little")) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def _py_secretbox_open(key, nonce, box):
    if len(box) < 16:
        raise ValueError("secretbox: too short")
    subkey = _hsalsa20(key, nonce[:16])
    stream = _salsa20_stream(subkey, nonce[16:], 32 + len(box) - 16)
    tag, ct = box[:16], box[16:]
    if _poly1305(stream[:32], ct) != tag:
        raise ValueError("secretbox: authentication failed")
    return bytes(a ^ b for a, b in zip(ct, stream[32:]))


def _py_secretbox_seal(key, nonce, plain):
    subkey = _hsalsa20(key, nonce[:16])
    stream = _salsa20_stream(subkey, nonce[16:], 32 + len(plain))
    ct = bytes(a ^ b for a, b in zip(plain, stream[32:]))
    return _poly1305(stream[:32], ct) + ct


def _nacl_open(key, nonce, box):
    try:
        return _nacl_secret.SecretBox(key).decrypt(box, nonce)
    except Exception as e:  # nacl.exceptions.CryptoError
        raise ValueError(f"secretbox: {e}") from None


def _nacl_seal(key, nonce, plain):
    return _nacl_secret.SecretBox(key).encrypt(plain, nonce).ciphertext


def secretbox_backends():
    """{name: (open, seal)}: PyNaCl when importable, and the pure-Python one."""
    out = {"python": (_py_secretbox_open, _py_secretbox_seal)}
    if _nacl_secret:
        out["pynacl"] = (_nacl_open, _nacl_seal)
    return out


def _secretbox():
    return secretbox_backends()["pynacl" if _nacl_secret else "python"]


def pem_decode(text, want_type):
    """The bytes of the one PEM block of type want_type in text."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    begin, end = f"-----BEGIN {want_type}-----", f"-----END {want_type}-----"
    if begin not in text or end not in text:
        raise ValueError(f"no PEM block {want_type}")
    body = text.split(begin, 1)[1].split(end, 1)[0]
    return base64.b64decode("".join(body.split()), validate=True)


def pem_encode(data, typ):
    b64 = base64.b64encode(data).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return (f"-----BEGIN {typ}-----\n" + "\n".join(lines) + f"\n-----END {typ}-----\n").encode()


def _scrypt(password, salt, n, r, p):
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=256 * r * n + (1 << 20), dklen=32)


def read_cosign_key_document(path):
    """The JSON document inside a cosign encrypted key file (PEM type
    ENCRYPTED SIGSTORE PRIVATE KEY or the legacy ENCRYPTED COSIGN PRIVATE KEY)."""
    with open(path, "rb") as f:
        text = f.read().decode("ascii")
    for typ in (KEY_PEM_TYPE, "ENCRYPTED COSIGN PRIVATE KEY"):
        if f"-----BEGIN {typ}-----" in text:
            return json.loads(pem_decode(text, typ)), typ
    raise ValueError(f"{path}: not a cosign encrypted private key")


def decrypt_cosign_key(path, password):
    """Decrypts a cosign key file; returns the PKCS#8 DER private key.
    Raises ValueError on a wrong password."""
    doc, _ = read_cosign_key_document(path)
    kdf, cipher = doc["kdf"], doc["cipher"]
    if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
        raise ValueError(f"unsupported kdf/cipher {kdf['name']}/{cipher['name']}")
    params = kdf["params"]
    key = _scrypt(password, base64.b64decode(kdf["salt"]), params["N"], params["r"], params["p"])
    nonce = base64.b64decode(cipher["nonce"])
    if len(nonce) != 24:
        raise ValueError("nonce is not 24 bytes")
    return _secretbox()[0](key, nonce, base64.b64decode(doc["ciphertext"]))


def cosign_key_to_pem(path, password, out):
    """Decrypts a cosign key file into out as PEM PKCS#8 (for openssl); returns out."""
    der = decrypt_cosign_key(path, password)
    _write_private(out, _openssl("pkey", "-inform", "DER", "-outform", "PEM", input=der))
    return out


def encrypt_cosign_key(private_pem_path, password, out, n=65536, r=8, p=1):
    """Writes private_pem_path encrypted the way cosign does into out."""
    der = _openssl("pkcs8", "-topk8", "-nocrypt", "-in", private_pem_path, "-outform", "DER")
    salt, nonce = os.urandom(32), os.urandom(24)
    box = _secretbox()[1](_scrypt(password, salt, n, r, p), nonce, der)
    doc = {"kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": base64.b64encode(salt).decode()},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
           "ciphertext": base64.b64encode(box).decode()}
    _write_private(out, pem_encode(json.dumps(doc, separators=(",", ":")).encode(), KEY_PEM_TYPE))
    return out


# --------------------------------------------------------------------------
# registry (plain HTTP, Basic or Bearer)


def _parse_challenge(value):
    scheme, _, rest = value.partition(" ")
    params = {}
    for part in _split_params(rest):
        k, _, v = part.partition("=")
        params[k.strip().lower()] = v.strip().strip('"')
    return scheme.lower(), params


def _split_params(s):
    out, cur, quoted = [], "", False
    for ch in s:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


class Client:
    """A minimal OCI distribution client: plain HTTP, or HTTPS trusting
    only the CA file ca_file."""

    def __init__(self, host, creds=None, ca_file=None):
        self.host = host
        self.creds = creds
        self.ca_file = ca_file
        self._auth = {}  # scope -> Authorization value

    def _connect(self, netloc, scheme=None):
        scheme = scheme or ("https" if self.ca_file else "http")
        if scheme == "https":
            import ssl
            ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else _insecure_ctx()
            return http.client.HTTPSConnection(netloc, timeout=60, context=ctx)
        return http.client.HTTPConnection(netloc, timeout=60)

    def _basic(self):
        user, pw = self.creds
        return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()

    def _token(self, params, scope):
        q = {"service": params.get("service", "")}
        if scope:
            q["scope"] = scope
        url = urllib.parse.urlsplit(params["realm"])
        conn = self._connect(url.netloc, url.scheme)
        headers = {"Authorization": self._basic()} if self.creds else {}
        try:
            conn.request("GET", f"{url.path}?{urllib.parse.urlencode(q)}", headers=headers)
            r = conn.getresponse()
            body = r.read()
        finally:
            conn.close()
        if r.status != 200:
            raise HTTPError(r.status, "GET", params["realm"], body)
        doc = json.loads(body)
        return "Bearer " + (doc.get("token") or doc["access_token"])

    def request(self, method, path, body=None, headers=None, scope=None, ok=(200,)):
        """One request with authentication as challenged; returns (status,
        headers, body). Raises HTTPError for a status outside ok."""
        headers = dict(headers or {})
        for attempt in range(2):
            h = dict(headers)
            if scope in self._auth:
                h["Authorization"] = self._auth[scope]
            conn = self._connect(self.host)
            try:
                conn.request(method, path, body=body, headers=h)
                r = conn.getresponse()
                data = r.read()
            finally:
                conn.close()
            if r.status == 401 and attempt == 0:
                scheme, params = _parse_challenge(r.getheader("WWW-Authenticate", ""))
                if scheme == "basic" and self.creds:
                    self._auth[scope] = self._basic()
                    continue
                if scheme == "bearer":
                    self._auth[scope] = self._token(params, scope)
                    continue
            if r.status not in ok:
                raise HTTPError(r.status, method, path, data)
            return r.status, r, data
        raise HTTPError(401, method, path, b"")

    def _scope(self, repo, push=False):
        return f"repository:{repo}:pull,push" if push else f"repository:{repo}:pull"

    def manifest(self, repo, ref):
        """(bytes, media type, digest computed here) of a manifest, or None if absent."""
        try:
            _, r, data = self.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT},
                                      scope=self._scope(repo))
        except HTTPError as e:
            if e.status == 404:
                return None
            raise
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if ref.startswith("sha256:") and ref != digest:
            raise VerifyError(f"manifest {ref}: registry served other content ({digest})")
        return data, r.getheader("Content-Type", "").split(";")[0].strip(), digest

    def digest(self, repo, ref):
        m = self.manifest(repo, ref)
        if m is None:
            raise VerifyError(f"{repo}:{ref}: not found")
        return m[2]

    def blob(self, repo, digest):
        _, _, data = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=self._scope(repo))
        return data

    def tags(self, repo):
        try:
            _, _, data = self.request("GET", f"/v2/{repo}/tags/list", scope=self._scope(repo))
        except HTTPError as e:
            if e.status == 404:
                return []
            raise
        return sorted(json.loads(data).get("tags") or [])

    def catalog(self):
        _, _, data = self.request("GET", "/v2/_catalog", scope="registry:catalog:*")
        return sorted(json.loads(data).get("repositories") or [])

    def put_blob(self, repo, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        scope = self._scope(repo, push=True)
        _, r, _ = self.request("POST", f"/v2/{repo}/blobs/uploads/", body=b"", scope=scope, ok=(202,))
        base = f"{'https' if self.ca_file else 'http'}://{self.host}/"
        loc = urllib.parse.urlsplit(urllib.parse.urljoin(base, r.getheader("Location")))
        query = urllib.parse.parse_qsl(loc.query) + [("digest", digest)]
        self.request("PUT", f"{loc.path}?{urllib.parse.urlencode(query)}", body=data,
                     headers={"Content-Type": "application/octet-stream"}, scope=scope, ok=(201,))
        return {"digest": digest, "size": len(data)}

    def put_manifest(self, repo, ref, data, media_type=MT_OCI_MANIFEST):
        self.request("PUT", f"/v2/{repo}/manifests/{ref}", body=data, headers={"Content-Type": media_type},
                     scope=self._scope(repo, push=True), ok=(201,))
        return "sha256:" + hashlib.sha256(data).hexdigest()


def _insecure_ctx():
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --------------------------------------------------------------------------
# the signature format


def sig_tag(digest):
    """`sha256-<hex>.sig` for sha256:<hex>."""
    alg, hexpart = digest.split(":", 1)
    return f"{alg}-{hexpart}.sig"


def payload(docker_reference, digest, optional=None):
    """The simple-signing payload as cosign (Go encoding/json) writes it:
    compact, struct fields in order, map keys (optional) sorted."""
    if optional is not None:
        optional = dict(sorted(optional.items()))
    doc = {"critical": {"identity": {"docker-reference": docker_reference},
                        "image": {"docker-manifest-digest": digest}, "type": PAYLOAD_TYPE},
           "optional": optional}
    return json.dumps(doc, separators=(",", ":")).encode()


def empty_config(diff_ids):
    """go-containerregistry's empty image config with these diff_ids (233
    bytes for one layer, as cosign writes it)."""
    doc = {"architecture": "", "created": ZERO_TIME, "history": [{"created": ZERO_TIME} for _ in diff_ids],
           "os": "", "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}, "config": {}}
    return json.dumps(doc, separators=(",", ":")).encode()


def sig_manifest(client, repo, digest):
    """The parsed `.sig` manifest of digest, or None."""
    m = client.manifest(repo, sig_tag(digest))
    return json.loads(m[0]) if m else None


def push_signature_layers(client, repo, digest, layers):
    """Writes the `.sig` manifest of digest with exactly these layer
    descriptors (their blobs must exist) and a matching config."""
    config = client.put_blob(repo, empty_config([l["digest"] for l in layers]))
    manifest = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
                "config": {"mediaType": MT_OCI_CONFIG, **config}, "layers": layers}
    return client.put_manifest(repo, sig_tag(digest), json.dumps(manifest, separators=(",", ":")).encode())


def add_signature(client, repo, digest, body, signature_b64, replace=False):
    """Appends a layer (blob body, annotation signature_b64 verbatim) to
    the `.sig` manifest of digest, creating it when absent (replace: drop
    the layers already there)."""
    existing = None if replace else sig_manifest(client, repo, digest)
    layers = list(existing["layers"]) if existing else []
    desc = client.put_blob(repo, body)
    layers.append({"mediaType": MT_SIMPLESIGNING, **desc, "annotations": {SIG_ANNOTATION: signature_b64}})
    return push_signature_layers(client, repo, digest, layers)


def sign(client, repo, digest, private_key_path, optional=None, body=None, docker_reference=None, replace=False,
         mangle=None):
    """Signs digest the way cosign does. For the failure tests: body signs
    these bytes instead of the proper payload, mangle(base64) changes the
    annotation, replace drops the signatures already there. Returns the
    payload."""
    if body is None:
        body = payload(docker_reference or f"{client.host}/{repo}", digest, optional)
    sig = base64.b64encode(ecdsa_sign(private_key_path, body)).decode()
    add_signature(client, repo, digest, body, mangle(sig) if mangle else sig, replace=replace)
    return body


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k}")
        out[k] = v
    return out


def parse_payload(body, digest):
    """The payload parsed strictly (as containers/image does): top level
    exactly critical + optional, the type exact, docker-manifest-digest equal
    to digest. Raises VerifyError naming the problem."""
    try:
        doc = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as e:
        raise VerifyError(f"malformed payload: {e}") from None
    if not isinstance(doc, dict) or set(doc) != {"critical", "optional"}:
        raise VerifyError("malformed payload: top level is not exactly critical and optional")
    crit, opt = doc["critical"], doc["optional"]
    if not isinstance(crit, dict) or set(crit) != {"identity", "image", "type"}:
        raise VerifyError("malformed payload: critical is not exactly identity, image and type")
    if crit["type"] != PAYLOAD_TYPE:
        raise VerifyError(f"malformed payload: type {crit['type']!r}")
    if not isinstance(crit["identity"], dict) or not isinstance(crit["identity"].get("docker-reference"), str):
        raise VerifyError("malformed payload: critical.identity.docker-reference")
    if not isinstance(crit["image"], dict) or set(crit["image"]) != {"docker-manifest-digest"}:
        raise VerifyError("malformed payload: critical.image")
    if opt is not None and not isinstance(opt, dict):
        raise VerifyError("malformed payload: optional is neither null nor an object")
    if crit["image"]["docker-manifest-digest"] != digest:
        raise VerifyError(f"payload is for {crit['image']['docker-manifest-digest']}, not {digest}")
    return doc


def verify_manifest(client, repo, digest, manifest, pub_pem_path, annotations=None):
    """Checks the layers of a `.sig` manifest (parsed) against digest and a
    public key; returns the payloads that verified, raises VerifyError with
    every layer's reason when none did."""
    good, reasons = [], []
    for i, layer in enumerate(manifest.get("layers") or []):
        try:
            if layer.get("mediaType") != MT_SIMPLESIGNING:
                raise VerifyError(f"media type {layer.get('mediaType')!r}")
            b64 = (layer.get("annotations") or {}).get(SIG_ANNOTATION)
            if b64 is None:
                raise VerifyError("no signature annotation")
            try:
                sig = base64.b64decode(b64, validate=True)
            except ValueError as e:
                raise VerifyError(f"signature is not base64: {e}") from None
            body = client.blob(repo, layer["digest"])
            if "sha256:" + hashlib.sha256(body).hexdigest() != layer["digest"]:
                raise VerifyError("payload blob digest mismatch")
            if not ecdsa_verify(pub_pem_path, body, sig):
                raise VerifyError("signature does not verify with the key")
            doc = parse_payload(body, digest)
            for k, v in (annotations or {}).items():
                if (doc["optional"] or {}).get(k) != v:
                    raise VerifyError(f"annotation {k}={v} missing")
            good.append(doc)
        except VerifyError as e:
            reasons.append(f"layer {i}: {e}")
    if not good:
        raise VerifyError(f"no signature of {digest} verified: " + "; ".join(reasons))
    return good


def verify(client, repo, ref, pub_pem_path, annotations=None, digest=None):
    """Verifies repo:ref (a tag or digest) as `cosign verify --key` does
    (signature, blob digest, strict payload, digest, annotations). digest
    overrides the digest the signatures must cover. Returns the payloads."""
    digest = digest or client.digest(repo, ref)
    manifest = sig_manifest(client, repo, digest)
    if manifest is None:
        raise VerifyError(f"no signatures for {digest}")
    return verify_manifest(client, repo, digest, manifest, pub_pem_path, annotations)


def copy_signatures(client, repo, from_digest, to_digest):
    """Puts the `.sig` manifest of from_digest under to_digest's tag as is."""
    m = client.manifest(repo, sig_tag(from_digest))
    client.put_manifest(repo, sig_tag(to_digest), m[0], m[1] or MT_OCI_MANIFEST)
