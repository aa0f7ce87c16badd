#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the file shield's test vectors (testdata/shield/vectors/) from an
implementation of docs/shield.md that shares no code with lib/shield/: Python's
`cryptography' package (HKDF, HMAC, AES-GCM). tests/unit/shield reads them back,
decrypts them with the C code and re-encrypts them byte for byte in
reproducible mode, so the two implementations and the document agree.

Deterministic: run it again and nothing changes.
    python3 testdata/shield/make_vectors.py [OUTDIR]
"""
import hashlib
import hmac
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY = bytes(range(32))
CHUNK = 4096
DIFF_ID = "sha256:" + "ab" * 32
REGIONS = [("/", 0), ("/app", 1), ("/app/public", 0), ("/lib", 2)]
KIND = {"not-protected": 0, "encrypted": 1, "authenticated": 2}
# (path, kind, size, offset of the entry's data in the layer); links after
FILES = [
    ("/app/empty", "encrypted", 0, 512),
    ("/app/one", "encrypted", 1, 1536),
    ("/app/exact", "encrypted", 2 * CHUNK, 2560),
    ("/app/three", "encrypted", 3 * CHUNK + 100, 11776),
    ("/lib/libx.so", "authenticated", CHUNK + 904, (1 << 32) + 512),
]
LINKS = [("/app/z-link", "/app/three")]
# symbolic links in protected regions: (path, target as stored)
SYMLINKS = [("/lib/libx.so.1", "libx.so"), ("/app/cfg", "/app/three")]


def hkdf(label, ctx=b""):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label + ctx).derive(KEY)


def plaintext(path, size):
    seed = hashlib.sha256(path.encode()).digest()
    out = b""
    i = 0
    while len(out) < size:
        out += hashlib.sha256(seed + struct.pack(">I", i)).digest()
        i += 1
    return out[:size]


def file_id(path, offset):
    k = hkdf(b"sconify-shield v1 file id")
    msg = (struct.pack(">I", len(DIFF_ID)) + DIFF_ID.encode() + struct.pack(">QI", offset, len(path))
           + path.encode())
    return hmac.new(k, msg, hashlib.sha256).digest()[:16]


def n_chunks(size):
    return 1 if size == 0 else (size + CHUNK - 1) // CHUNK


def encrypt(fid, data):
    aead = AESGCM(hkdf(b"sconify-shield v1 file key", fid))
    aad = fid + struct.pack(">QI", len(data), CHUNK)
    n = n_chunks(len(data))
    ct, tags = b"", b""
    for i in range(n):
        nonce = struct.pack(">Q", i) + bytes([0, 0, 0, 1 if i == n - 1 else 0])
        out = aead.encrypt(nonce, data[i * CHUNK:(i + 1) * CHUNK], aad)
        ct += out[:-16]
        tags += out[-16:]
    return ct, tags


def hashes_of(data):
    return b"".join(hashlib.sha256(data[i * CHUNK:(i + 1) * CHUNK]).digest() for i in range(n_chunks(len(data))))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "key"), "w") as f:
        f.write("sconify-shield-key-v1:" + KEY.hex() + "\n")
    entries = {}
    listing = []
    for path, kind, size, offset in FILES:
        name = path.strip("/").replace("/", "_")
        data = plaintext(path, size)
        with open(os.path.join(out, name + ".plain"), "wb") as f:
            f.write(data)
        if kind == "encrypted":
            fid = file_id(path, offset)
            ct, macs = encrypt(fid, data)
            with open(os.path.join(out, name + ".cipher"), "wb") as f:
                f.write(ct)
            entries[path] = struct.pack(">BQ", 1, size) + fid + macs
        else:
            entries[path] = struct.pack(">BQ", 2, size) + hashes_of(data)
        listing.append(f"file {kind} {path} {name} {offset}")
    for path, target in LINKS:
        listing.append(f"link {path} {target}")
    for path, target in SYMLINKS:
        listing.append(f"symlink {path} {target}")

    body = struct.pack(">II", CHUNK, len(REGIONS))
    for path, kind in sorted(REGIONS, key=lambda r: r[0].encode()):
        body += struct.pack(">BH", kind, len(path)) + path.encode()
    target_of = {p: p for p, _, _, _ in FILES} | dict(LINKS)
    paths = sorted(target_of, key=str.encode)
    order = []
    for p in paths:
        if target_of[p] not in order:
            order.append(target_of[p])
    body += struct.pack(">I", len(order)) + b"".join(entries[t] for t in order)
    body += struct.pack(">I", len(paths))
    for p in paths:
        body += struct.pack(">H", len(p)) + p.encode() + struct.pack(">I", order.index(target_of[p]))
    body += struct.pack(">I", len(SYMLINKS))
    for p, t in sorted(SYMLINKS, key=lambda s: s[0].encode()):
        body += struct.pack(">H", len(p)) + p.encode() + struct.pack(">H", len(t)) + t.encode()

    nonce = hmac.new(hkdf(b"sconify-shield v1 metadata nonce"), body, hashlib.sha256).digest()[:12]
    header = b"SCSHIELD" + struct.pack(">I", 2) + nonce
    sealed = header + AESGCM(hkdf(b"sconify-shield v1 metadata key")).encrypt(nonce, body, header)
    with open(os.path.join(out, "metadata"), "wb") as f:
        f.write(sealed)
    with open(os.path.join(out, "metadata.pin"), "w") as f:
        f.write(hashlib.sha256(sealed).hexdigest() + "\n")
    with open(os.path.join(out, "files"), "w") as f:
        f.write(f"chunk-size {CHUNK}\ndiff-id {DIFF_ID}\n")
        for path, kind in REGIONS:
            f.write(f"region {[k for k, v in KIND.items() if v == kind][0]} {path}\n")
        f.write("\n".join(listing) + "\n")


if __name__ == "__main__":
    main()
