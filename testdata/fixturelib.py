# SPDX-License-Identifier: Apache-2.0
"""Byte-exact builders for the test fixtures: tar headers, gzip, zstd, JSON,
OCI layouts and the expected file tree of a layer stack.

Everything here is deterministic: fixed mtimes (0), fixed owners, no host
names, gzip with mtime 0 and no file name, zstd through the CLI with fixed
flags. Tar headers are written by hand (not with tarfile) so hostile headers
can be produced byte by byte; checksums are correct unless asked otherwise.
Python 3.11 standard library only.
"""

import hashlib
import json
import os
import struct
import subprocess
import zlib

BLOCK = 512
RECORD = 10240  # tar pads the archive to a whole record, like GNU tar and tarfile

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = MT_OCI_LAYER + "+gzip"
MT_OCI_LAYER_ZSTD = MT_OCI_LAYER + "+zstd"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_ANNOTATION = "org.opencontainers.image.ref.name"

LAYER_MEDIA_TYPES = {"none": MT_OCI_LAYER, "gzip": MT_OCI_LAYER_GZIP, "zstd": MT_OCI_LAYER_ZSTD}

EPOCH = "1970-01-01T00:00:00Z"


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def dumps(obj):
    """Compact JSON, keys in insertion order (deterministic)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# ---- tar -------------------------------------------------------------------

TYPEFLAGS = {
    "file": b"0",
    "hardlink": b"1",
    "symlink": b"2",
    "char": b"3",
    "block": b"4",
    "dir": b"5",
    "fifo": b"6",
}


def _octal(value, width):
    """NUL-terminated zero-padded octal of width bytes (width-1 digits)."""
    s = b"%0*o" % (width - 1, value)
    if len(s) > width - 1:
        raise ValueError("value %d does not fit %d octal digits" % (value, width - 1))
    return s + b"\0"


def _field(value, width):
    if isinstance(value, str):
        value = value.encode()
    if len(value) > width:
        raise ValueError("field %r longer than %d" % (value[:40], width))
    return value + b"\0" * (width - len(value))


def header_checksum(block):
    return sum(block[:148]) + 8 * 32 + sum(block[156:512])


def tar_header(name, *, typeflag=b"0", size=0, mode=0o644, uid=0, gid=0, mtime=0, linkname="",
               uname="", gname="", devmajor=0, devminor=0, magic=b"ustar\x0000", prefix="",
               patches=None, checksum=None):
    """One 512-byte ustar header. patches = {offset: bytes} overwrite raw bytes
    before the checksum is computed (for GNU sparse fields and the like);
    checksum = int forces a (wrong) stored checksum."""
    h = bytearray(BLOCK)
    h[0:100] = _field(name, 100)
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(uid, 8)
    h[116:124] = _octal(gid, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(mtime, 12)
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    h[157:257] = _field(linkname, 100)
    h[257:265] = magic
    h[265:297] = _field(uname, 32)
    h[297:329] = _field(gname, 32)
    h[329:337] = _octal(devmajor, 8)
    h[337:345] = _octal(devminor, 8)
    h[345:500] = _field(prefix, 155)
    for off, raw in (patches or {}).items():
        h[off:off + len(raw)] = raw
    chk = header_checksum(h) if checksum is None else checksum
    h[148:156] = b"%06o\0 " % chk
    return bytes(h)


def pad(n):
    return b"\0" * ((BLOCK - n % BLOCK) % BLOCK)


def pax_records(records):
    """records: list of (key, value str|bytes) -> pax extended header data."""
    out = bytearray()
    for key, value in records:
        if isinstance(value, str):
            value = value.encode()
        body = b" " + key.encode() + b"=" + value + b"\n"
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n = len(str(n)) + len(body)
        out += str(n).encode() + body
    return bytes(out)


def pax_header(records, name="././@PaxHeader"):
    data = pax_records(records)
    return tar_header(name, typeflag=b"x", size=len(data), mode=0o644) + data + pad(len(data))


class Entry:
    """One layer entry. kind: file | dir | symlink | hardlink | fifo | char | block.
    Large files give size + sha256 + chunks (a callable returning an iterator
    of bytes) instead of data."""

    def __init__(self, path, kind="file", *, mode=None, uid=0, gid=0, data=b"", target="", xattrs=None,
                 size=None, sha256=None, chunks=None, pax=None):
        self.path = path
        self.kind = kind
        if mode is None:
            mode = 0o755 if kind == "dir" else 0o777 if kind == "symlink" else 0o644
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.data = data
        self.target = target
        self.xattrs = xattrs or {}
        self.pax = pax or []
        self.chunks = chunks
        if chunks is not None:
            self.size = size
            self.sha256 = sha256
        else:
            self.size = len(data) if kind == "file" else 0
            self.sha256 = sha256_hex(data) if kind == "file" else None

    def header(self):
        records = list(self.pax)
        for k in sorted(self.xattrs):
            records.append(("SCHILY.xattr." + k, self.xattrs[k]))
        name = self.path
        if len(name.encode()) > 100:
            records.append(("path", name))
            name = name.encode()[:100]
        if len(self.target.encode()) > 100:
            records.append(("linkpath", self.target))
        out = pax_header(records) if records else b""
        return out + tar_header(name, typeflag=TYPEFLAGS[self.kind], size=self.size, mode=self.mode,
                                uid=self.uid, gid=self.gid,
                                linkname=self.target if len(self.target.encode()) <= 100 else "")

    def iter_bytes(self):
        yield self.header()
        if self.chunks is not None:
            n = 0
            for c in self.chunks():
                n += len(c)
                yield c
            assert n == self.size, (self.path, n, self.size)
        elif self.size:
            yield self.data
        yield pad(self.size)


def end_of_archive(length_so_far):
    """Two zero blocks, then zeros up to the next whole record."""
    n = length_so_far + 2 * BLOCK
    return b"\0" * (2 * BLOCK + (RECORD - n % RECORD) % RECORD)


def iter_tar(items):
    """items: Entry objects or raw bytes (already formatted headers/data)."""
    n = 0
    for it in items:
        chunks = it.iter_bytes() if isinstance(it, Entry) else (it,)
        for c in chunks:
            n += len(c)
            yield c
    yield end_of_archive(n)


def tar_bytes(items):
    return b"".join(iter_tar(items))


# ---- compression -------------------------------------------------------------


def gzip_header(level):
    xfl = 2 if level == 9 else 4 if level == 1 else 0
    # magic, deflate, no flags (no name), mtime 0, xfl, OS 255 (unknown)
    return b"\x1f\x8b\x08\x00" + b"\0\0\0\0" + bytes([xfl, 255])


def gzip_trailer(crc, size):
    return struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)


class GzipWriter:
    """Streaming gzip member with mtime 0, no file name."""

    def __init__(self, out, level=9):
        self.out = out
        self.z = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
        self.crc = 0
        self.size = 0
        out.write(gzip_header(level))

    def write(self, data):
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        self.out.write(self.z.compress(data))

    def close(self):
        self.out.write(self.z.flush())
        self.out.write(gzip_trailer(self.crc, self.size))


class _Buf:
    def __init__(self):
        self.parts = []

    def write(self, b):
        self.parts.append(b)


def gzip_bytes(data, level=9):
    b = _Buf()
    g = GzipWriter(b, level)
    g.write(data)
    g.close()
    return b"".join(b.parts)


ZSTD = ["zstd", "-q", "--no-progress", "-T1", "-c"]


def zstd_bytes(data, level=19, extra=()):
    """zstd from stdin (so the frame has no content size), single thread."""
    r = subprocess.run(ZSTD + ["-%d" % level, *extra], input=data, stdout=subprocess.PIPE, check=True)
    return r.stdout


def compress(data, compression, level=None):
    if compression == "gzip":
        return gzip_bytes(data, 9 if level is None else level)
    if compression == "zstd":
        return zstd_bytes(data, 19 if level is None else level)
    assert compression == "none"
    return data


# ---- OCI layout ----------------------------------------------------------------


def descriptor(media_type, data=None, *, digest=None, size=None, **extra):
    d = {"mediaType": media_type,
         "digest": digest or "sha256:" + sha256_hex(data),
         "size": len(data) if size is None else size}
    d.update(extra)
    return d


class Layout:
    """An OCI image layout directory being written."""

    def __init__(self, root, *, oci_layout=b'{"imageLayoutVersion":"1.0.0"}'):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
        if oci_layout is not None:
            write_file(os.path.join(root, "oci-layout"), oci_layout)

    def blob_path(self, digest):
        alg, hexpart = digest.split(":", 1)
        return os.path.join(self.root, "blobs", alg, hexpart)

    def add(self, data, name=None):
        """Stores data as a blob (under name = 'alg:hex' if given, else its
        sha256) and returns its 'sha256:hex' digest."""
        digest = "sha256:" + sha256_hex(data)
        path = self.blob_path(name or digest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_file(path, data)
        return digest

    def add_json(self, obj):
        return self.add(dumps(obj))

    def add_stream(self, write_fn):
        """write_fn(f) writes the blob; returns (digest, size)."""
        tmp = os.path.join(self.root, "blobs", "sha256", ".incoming")
        with open(tmp, "wb") as f:
            hf = HashingFile(f)
            write_fn(hf)
        digest = "sha256:" + hf.h.hexdigest()
        os.replace(tmp, self.blob_path(digest))
        return digest, hf.n

    def write_index(self, index):
        data = index if isinstance(index, bytes) else dumps(index)
        write_file(os.path.join(self.root, "index.json"), data)


class HashingFile:
    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        self.f.write(b)


def write_file(path, data):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def index_of(manifests, annotations=None):
    idx = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": manifests}
    if annotations:
        idx["annotations"] = annotations
    return idx


def tagged(desc, ref="latest"):
    d = dict(desc)
    ann = dict(d.get("annotations", {}))
    ann[REF_ANNOTATION] = ref
    d["annotations"] = ann
    return d


# ---- expected tree -------------------------------------------------------------

WH = ".wh."
OPQ = ".wh..wh..opq"


def norm(path):
    return "/".join(c for c in path.split("/") if c not in ("", "."))


def apply_layers(layers):
    """Applies lists of Entry (lowest first) like image-spec layer.md says and
    returns {path: description} of the final tree (whiteouts hidden)."""
    tree = {}

    def remove(p):
        for k in [k for k in tree if k == p or k.startswith(p + "/")]:
            del tree[k]

    for entries in layers:
        lower = set(tree)
        for e in entries:  # opaque markers first, whatever their position
            p = norm(e.path)
            if p.rsplit("/", 1)[-1] == OPQ:
                d = p.rsplit("/", 1)[0] if "/" in p else ""
                for k in [k for k in lower if k.startswith(d + "/" if d else "")]:
                    tree.pop(k, None)
        for e in entries:
            p = norm(e.path)
            base = p.rsplit("/", 1)[-1]
            parent = p.rsplit("/", 1)[0] if "/" in p else ""
            if base == OPQ:
                continue
            if base.startswith(WH):
                remove((parent + "/" if parent else "") + base[len(WH):])
                continue
            old = tree.get(p)
            if not (old and old["type"] == "dir" and e.kind == "dir"):
                remove(p)
            d = {"type": e.kind, "mode": "%04o" % e.mode, "uid": e.uid, "gid": e.gid}
            if e.kind == "file":
                d["size"] = e.size
                d["sha256"] = e.sha256
            elif e.kind == "symlink":
                d["target"] = e.target
                del d["mode"]
            elif e.kind == "hardlink":
                tgt = tree[norm(e.target)]
                d = dict(tgt)
                d["link"] = norm(e.target)
            if e.xattrs:
                d["xattrs"] = dict(sorted(e.xattrs.items()))
            tree[p] = d
    return dict(sorted(tree.items()))
