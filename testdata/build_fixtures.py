#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the test images and the hostile-input corpus, deterministically and
offline:

    python3 testdata/build_fixtures.py OUT

writes OUT/oci/<name>/ (OCI layouts, ref "latest"), OUT/docker/<name>.tar
(docker-archive), OUT/oci-archive/<name>.tar, OUT/fixtures.json (the good
fixtures), OUT/hostile/... and OUT/hostile/cases.json (the hostile corpus).
Two runs give byte-identical files. testdata/README.md describes every
fixture and case; testdata/check_fixtures.py proves determinism and checks
the good fixtures with skopeo and umoci.
"""

import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
import zlib

sys.dont_write_bytecode = True  # keep testdata/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fixturelib import (  # noqa: E402
    BLOCK, EPOCH, LAYER_MEDIA_TYPES, MT_DOCKER_CONFIG, MT_DOCKER_LAYER_GZIP, MT_DOCKER_LIST,
    MT_DOCKER_MANIFEST, MT_OCI_CONFIG, MT_OCI_INDEX, MT_OCI_LAYER, MT_OCI_LAYER_GZIP, MT_OCI_MANIFEST,
    REF_ANNOTATION, ZSTD, Entry, GzipWriter, Layout, apply_layers, compress, descriptor, dumps,
    end_of_archive, gzip_bytes, iter_tar, gzip_header, gzip_trailer, index_of, pad, sha256_hex, tagged, tar_bytes,
    tar_header, write_file, zstd_bytes)

OUTPUT_NAMES = ("oci", "docker", "oci-archive", "hostile", "fixtures.json")
MiB = 1 << 20
GiB = 1 << 30
REPO_TAG = "example.com/fixture:latest"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# ---- common image pieces ---------------------------------------------------------


def image_config(diff_ids, *, arch="amd64", variant=None, name="fixture", history=None):
    cfg = {"created": EPOCH, "architecture": arch}
    if variant:
        cfg["variant"] = variant
    cfg["os"] = "linux"
    cfg["config"] = {
        "User": "1000:1000",
        "Env": [PATH_ENV, "FIXTURE=" + name],
        "Entrypoint": ["/usr/bin/tool"],
        "Cmd": ["--help"],
        "WorkingDir": "/app",
        "Labels": {"org.example.fixture": name},
    }
    cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    cfg["history"] = history or [{"created": EPOCH, "created_by": "layer %d" % i} for i in range(len(diff_ids))]
    return cfg


def manifest_of(config_desc, layer_descs, media_type=MT_OCI_MANIFEST, annotations=None):
    m = {"schemaVersion": 2, "mediaType": media_type, "config": config_desc, "layers": layer_descs}
    if annotations:
        m["annotations"] = annotations
    return m


class Layer:
    """A layer: its entries, uncompressed tar and the blob as stored."""

    def __init__(self, entries, compression, level=None):
        self.entries = entries
        self.tar = tar_bytes(entries)
        self.diff_id = "sha256:" + sha256_hex(self.tar)
        self.compression = compression
        self.blob = compress(self.tar, compression, level)
        self.media_type = LAYER_MEDIA_TYPES[compression]

    def desc(self, media_type=None):
        return descriptor(media_type or self.media_type, self.blob)


def write_image(layout, layers, config, *, config_mt=MT_OCI_CONFIG, manifest_mt=MT_OCI_MANIFEST,
                layer_mt=None, annotations=None):
    """Stores layers, config and manifest; returns the manifest descriptor."""
    for lay in layers:
        layout.add(lay.blob)
    cfg = dumps(config)
    layout.add(cfg)
    man = manifest_of(descriptor(config_mt, cfg), [lay.desc(layer_mt) for lay in layers], manifest_mt,
                      annotations)
    mb = dumps(man)
    layout.add(mb)
    return descriptor(manifest_mt, mb)


# ---- good fixtures: content ------------------------------------------------------


def layer0_entries():
    return [
        Entry("etc/", "dir"),
        Entry("etc/config", data=b"name=original\n"),
        Entry("etc/secret", mode=0o600, data=b"mode 0600\n"),
        Entry("usr/", "dir"),
        Entry("usr/bin/", "dir"),
        Entry("usr/bin/tool", mode=0o755, data=b"#!/bin/sh\necho tool \"$@\"\n"),
        Entry("usr/bin/tool-link", "hardlink", target="usr/bin/tool", mode=0o755),
        Entry("usr/bin/rel", "symlink", target="tool"),
        Entry("usr/bin/suid", mode=0o4755, data=b"setuid binary stand-in\n"),
        Entry("bin", "symlink", target="/usr/bin"),
        Entry("app/", "dir"),
        Entry("app/owned.txt", uid=1000, gid=1000, data=b"owned by 1000:1000\n"),
        Entry("app/xattr.txt", data=b"has a user xattr\n", xattrs={"user.sconify": "hello"}),
        Entry("app/fifo", "fifo", mode=0o644),
        Entry("app/remove-me", data=b"removed by a whiteout in layer 1\n"),
        Entry("app/opaque/", "dir"),
        Entry("app/opaque/x", data=b"x: hidden by the opaque marker of layer 2\n"),
        Entry("app/opaque/y", data=b"y: hidden by the opaque marker of layer 2\n"),
        Entry("data/", "dir"),
        Entry("data/olddir/", "dir"),
        Entry("data/olddir/a", data=b"a\n"),
        Entry("data/olddir/b", data=b"b\n"),
        Entry("data/dir2/", "dir"),
        Entry("data/dir2/f", data=b"dir2 becomes a file in layer 1\n"),
        Entry("data/file3", data=b"file3 becomes a directory in layer 2\n"),
        Entry("tmp/", "dir", mode=0o1777),
    ]


def layer1_entries():
    return [
        Entry("etc/", "dir"),
        Entry("etc/config", data=b"name=replaced-by-layer-1\n"),
        Entry("app/", "dir"),
        Entry("app/new.txt", data=b"added by layer 1\n"),
        Entry("app/.wh.remove-me"),
        Entry("data/", "dir"),
        Entry("data/.wh.olddir"),
        Entry("data/dir2", data=b"dir2 is a regular file now\n"),
    ]


def layer2_entries():
    return [
        Entry("app/", "dir"),
        Entry("app/opaque/", "dir"),
        Entry("app/opaque/z", data=b"z: the only child of app/opaque\n"),
        Entry("app/opaque/.wh..wh..opq"),  # after its sibling on purpose
        Entry("data/", "dir"),
        Entry("data/file3/", "dir"),
        Entry("data/file3/inner", data=b"file3 is a directory now\n"),
    ]


def layers_history():
    return [
        {"created": EPOCH, "created_by": "layer 0: base tree (gzip)"},
        {"created": EPOCH, "created_by": "ENV FIXTURE=layers", "empty_layer": True},
        {"created": EPOCH, "created_by": "layer 1: whiteouts, replacements (uncompressed)"},
        {"created": EPOCH, "created_by": "layer 2: opaque dir, file to dir (zstd)", "comment": "zstd"},
    ]


# ---- good fixtures: OCI layouts ---------------------------------------------------


def build_oci_layers(out, fixtures):
    layers = [Layer(layer0_entries(), "gzip"), Layer(layer1_entries(), "none"), Layer(layer2_entries(), "zstd")]
    cfg = image_config([lay.diff_id for lay in layers], name="layers", history=layers_history())
    lo = Layout(os.path.join(out, "oci", "layers"))
    md = write_image(lo, layers, cfg, annotations={"org.opencontainers.image.title": "layers"})
    lo.write_index(index_of([tagged(md)]))
    fixtures.append({
        "name": "oci/layers", "ref": "oci:oci/layers:latest", "platforms": ["linux/amd64"],
        "compressions": ["gzip", "none", "zstd"],
        "features": ["dir modes incl. sticky 01777", "setuid 04755", "mode 0600", "owner 1000:1000",
                     "hard link", "relative symlink", "absolute symlink", "pax xattr SCHILY.xattr.user.sconify",
                     "fifo", "file whiteout", "directory whiteout", "opaque whiteout after its sibling",
                     "dir replaced by file", "file replaced by dir", "file replaced across layers",
                     "uncompressed layer", "zstd layer", "history with empty_layer", "Env Entrypoint Cmd "
                     "WorkingDir User Labels"],
        "tree": apply_layers([lay.entries for lay in layers]),
    })
    return layers


def big_entries():
    """big.bin: 80 MiB of deterministic random bytes; sparse.bin: 64 MiB of
    zeros with a few markers. Contents are generated while streaming."""
    markers = {0: b"SCONIFY-SPARSE-START", 32 * MiB + 17: b"SCONIFY-SPARSE-MIDDLE"}
    end_marker = b"SCONIFY-SPARSE-END"
    markers[64 * MiB - len(end_marker)] = end_marker

    def big():
        r = random.Random(20240601)
        for _ in range(80):
            yield r.randbytes(MiB)

    def sparse():
        for i in range(64):
            chunk = bytearray(MiB)
            for off, m in markers.items():
                if i * MiB <= off < (i + 1) * MiB:
                    o = off - i * MiB
                    chunk[o:o + len(m)] = m
            yield bytes(chunk)

    def hashed(gen):
        h = hashlib.sha256()
        for c in gen():
            h.update(c)
        return h.hexdigest()

    return [
        Entry("big.bin", size=80 * MiB, sha256=hashed(big), chunks=big),
        Entry("sparse.bin", size=64 * MiB, sha256=hashed(sparse), chunks=sparse),
    ]


def write_stream_layer(layout, items, compression, level=None, raw_tail=()):
    """Streams a tar of items into a blob; returns (desc, diff_id)."""
    uh = hashlib.sha256()

    def produce(f):
        if compression == "gzip":
            g = GzipWriter(f, 9 if level is None else level)
            sink = g.write
        else:
            assert compression == "none"
            g, sink = None, f.write
        for c in iter_tar(items):
            uh.update(c)
            sink(c)
        if g:
            g.close()

    digest, size = layout.add_stream(produce)
    return descriptor(LAYER_MEDIA_TYPES[compression], digest=digest, size=size), "sha256:" + uh.hexdigest()


def build_oci_large(out, fixtures):
    entries = big_entries()
    lo = Layout(os.path.join(out, "oci", "large"))
    ldesc, diff_id = write_stream_layer(lo, entries, "gzip", level=1)
    cfg = dumps(image_config([diff_id], name="large"))
    lo.add(cfg)
    mb = dumps(manifest_of(descriptor(MT_OCI_CONFIG, cfg), [ldesc]))
    lo.add(mb)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))
    fixtures.append({
        "name": "oci/large", "ref": "oci:oci/large:latest", "platforms": ["linux/amd64"],
        "compressions": ["gzip"],
        "features": ["80 MiB incompressible file", "64 MiB mostly-zero file", "144 MiB uncompressed layer",
                     "gzip level 1"],
        "tree": apply_layers([entries]),
    })


PLATFORMS = [("amd64", None), ("arm64", "v8"), ("arm", "v7")]


def build_oci_multiarch(out, fixtures):
    lo = Layout(os.path.join(out, "oci", "multiarch"))
    shared = Layer([Entry("etc/", "dir"), Entry("etc/shared", data=b"shared by every platform\n")], "gzip")
    descs, trees = [], {}
    for arch, variant in PLATFORMS:
        plat = "linux/" + arch + ("/" + variant if variant else "")
        own = Layer([Entry("etc/", "dir"), Entry("etc/platform", data=plat.encode() + b"\n")], "gzip")
        cfg = image_config([shared.diff_id, own.diff_id], arch=arch, variant=variant, name="multiarch")
        md = write_image(lo, [shared, own], cfg)
        p = {"architecture": arch, "os": "linux"}
        if variant:
            p["variant"] = variant
        md["platform"] = p
        descs.append(md)
        trees[plat] = apply_layers([shared.entries, own.entries])
    ib = dumps(index_of(descs, {"org.example.fixture": "multiarch", "org.opencontainers.image.title": "multiarch"}))
    lo.add(ib)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_INDEX, ib))]))
    fixtures.append({
        "name": "oci/multiarch", "ref": "oci:oci/multiarch:latest",
        "platforms": ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"], "compressions": ["gzip"],
        "features": ["nested image index under index.json", "index annotations", "platform variant",
                     "layer shared by all platforms", "per-platform layer"],
        "trees": trees,
    })


def build_oci_docker_types(out, fixtures, l0):
    lo = Layout(os.path.join(out, "oci", "docker-types"))
    cfg = image_config([l0.diff_id], name="docker-types")
    md = write_image(lo, [l0], cfg, config_mt=MT_DOCKER_CONFIG, manifest_mt=MT_DOCKER_MANIFEST,
                     layer_mt=MT_DOCKER_LAYER_GZIP)
    lo.write_index(index_of([tagged(md)]))
    fixtures.append({
        "name": "oci/docker-types", "ref": "oci:oci/docker-types:latest", "platforms": ["linux/amd64"],
        "compressions": ["gzip"],
        "features": ["docker schema 2 manifest in an OCI layout", "docker config and layer media types"],
        "tree": apply_layers([l0.entries]),
    })

    lo = Layout(os.path.join(out, "oci", "docker-list"))
    descs, trees = [], {}
    for arch, variant in PLATFORMS[:2]:
        own = Layer([Entry("etc/", "dir"), Entry("etc/arch", data=arch.encode() + b"\n")], "gzip")
        cfg = image_config([l0.diff_id, own.diff_id], arch=arch, variant=variant, name="docker-list")
        md = write_image(lo, [l0, own], cfg, config_mt=MT_DOCKER_CONFIG, manifest_mt=MT_DOCKER_MANIFEST,
                         layer_mt=MT_DOCKER_LAYER_GZIP)
        p = {"architecture": arch, "os": "linux"}
        if variant:
            p["variant"] = variant
        md["platform"] = p
        descs.append(md)
        trees["linux/" + arch + ("/" + variant if variant else "")] = apply_layers([l0.entries, own.entries])
    lb = dumps({"schemaVersion": 2, "mediaType": MT_DOCKER_LIST, "manifests": descs})
    lo.add(lb)
    lo.write_index(index_of([tagged(descriptor(MT_DOCKER_LIST, lb))]))
    fixtures.append({
        "name": "oci/docker-list", "ref": "oci:oci/docker-list:latest",
        "platforms": ["linux/amd64", "linux/arm64/v8"], "compressions": ["gzip"],
        "features": ["docker manifest list in an OCI layout", "docker schema 2 manifests"],
        "trees": trees,
    })


def build_oci_uncompressed(out, fixtures):
    layers = [Layer(layer0_entries(), "none"), Layer(layer1_entries(), "none")]
    cfg = image_config([lay.diff_id for lay in layers], name="uncompressed")
    lo = Layout(os.path.join(out, "oci", "uncompressed"))
    md = write_image(lo, layers, cfg)
    lo.write_index(index_of([tagged(md)]))
    fixtures.append({
        "name": "oci/uncompressed", "ref": "oci:oci/uncompressed:latest", "platforms": ["linux/amd64"],
        "compressions": ["none"], "features": ["plain tar layers (layer digest == diff_id)", "whiteouts"],
        "tree": apply_layers([lay.entries for lay in layers]),
    })
    return layers, cfg


# ---- tar containers (docker-archive, oci-archive) --------------------------------


class Archive:
    """Members of a tar container; render() gives the bytes and where each
    member's header and data start."""

    def __init__(self):
        self.members = []

    def dir(self, name):
        self.members.append(Entry(name.rstrip("/") + "/", "dir"))

    def file(self, name, data):
        self.members.append(Entry(name, data=data))

    def symlink(self, name, target):
        self.members.append(Entry(name, "symlink", target=target))

    def remove(self, name):
        self.members = [m for m in self.members if m.path != name]

    def render(self):
        out, where = bytearray(), {}
        for m in self.members:
            h = m.header()
            where.setdefault(m.path, (len(out), len(out) + len(h), m.size))
            out += h
            if m.size:
                out += m.data + pad(m.size)
        out += end_of_archive(len(out))
        return bytes(out), where


def docker_config(diff_ids, name):
    cfg = image_config(diff_ids, name=name)
    return cfg


def v1_ids(diff_ids, image_id):
    ids, parent = [], ""
    for d in diff_ids:
        parent = sha256_hex(("%s\n%s\n%s" % (parent, d, image_id)).encode())
        ids.append(parent)
    return ids


def v1_json(v1id, parent):
    j = {"id": v1id}
    if parent:
        j["parent"] = parent
    j["created"] = EPOCH
    j["container_config"] = {"Cmd": None}
    j["os"] = "linux"
    return dumps(j)


def docker_legacy(images):
    """images: list of (repo_tags, [Layer], config bytes). Legacy docker save:
    <v1id>/{VERSION,json,layer.tar}, <id>.json, manifest.json, repositories."""
    a, manifest, repos = Archive(), [], {}
    for tags, layers, cfg in images:
        image_id = sha256_hex(cfg)
        ids = v1_ids([lay.diff_id for lay in layers], image_id)
        for i, (v1, lay) in enumerate(zip(ids, layers)):
            if any(m.path == v1 + "/" for m in a.members):
                continue
            a.dir(v1)
            a.file(v1 + "/VERSION", b"1.0")
            a.file(v1 + "/json", v1_json(v1, ids[i - 1] if i else ""))
            a.file(v1 + "/layer.tar", lay.tar)
        a.file(image_id + ".json", cfg)
        manifest.append({"Config": image_id + ".json", "RepoTags": tags, "Layers": [v + "/layer.tar" for v in ids]})
        for t in tags:
            repo, tag = t.rsplit(":", 1)
            repos.setdefault(repo, {})[tag] = ids[-1]
    a.file("manifest.json", dumps(manifest))
    a.file("repositories", dumps(repos))
    return a


def docker_skopeo(images):
    """containers/image shape: <diffid hex>.tar files, <v1id>/layer.tar
    symlinks to ../<hex>.tar, <config hex>.json, manifest.json naming the
    <hex>.tar files, repositories."""
    a, manifest, repos = Archive(), [], {}
    for tags, layers, cfg in images:
        image_id = sha256_hex(cfg)
        ids = v1_ids([lay.diff_id for lay in layers], image_id)
        for i, (v1, lay) in enumerate(zip(ids, layers)):
            phys = lay.diff_id.split(":")[1] + ".tar"
            if not any(m.path == phys for m in a.members):
                a.file(phys, lay.tar)
            if not any(m.path == v1 + "/" for m in a.members):
                a.dir(v1)
                a.file(v1 + "/VERSION", b"1.0")
                a.file(v1 + "/json", v1_json(v1, ids[i - 1] if i else ""))
                a.symlink(v1 + "/layer.tar", "../" + phys)
        a.file(image_id + ".json", cfg)
        manifest.append({"Config": image_id + ".json", "RepoTags": tags,
                         "Layers": [lay.diff_id.split(":")[1] + ".tar" for lay in layers]})
        for t in tags:
            repo, tag = t.rsplit(":", 1)
            repos.setdefault(repo, {})[tag] = ids[-1]
    a.file("manifest.json", dumps(manifest))
    a.file("repositories", dumps(repos))
    return a


def docker_moby(tags, layers, cfg):
    """moby 25+ docker save: an OCI layout (uncompressed layers named by
    diff_id) plus manifest.json and repositories."""
    a = Archive()
    a.dir("blobs")
    a.dir("blobs/sha256")
    for lay in layers:
        a.file("blobs/sha256/" + lay.diff_id.split(":")[1], lay.tar)
    cfg_hex = sha256_hex(cfg)
    a.file("blobs/sha256/" + cfg_hex, cfg)
    man = dumps(manifest_of(descriptor(MT_OCI_CONFIG, cfg), [descriptor(MT_OCI_LAYER, lay.tar) for lay in layers]))
    a.file("blobs/sha256/" + sha256_hex(man), man)
    repo, tag = tags[0].rsplit(":", 1)
    idx = index_of([descriptor(MT_OCI_MANIFEST, man, annotations={"io.containerd.image.name": tags[0],
                                                                    REF_ANNOTATION: tag})])
    a.file("index.json", dumps(idx))
    a.file("manifest.json", dumps([{"Config": "blobs/sha256/" + cfg_hex, "RepoTags": tags,
                                    "Layers": ["blobs/sha256/" + lay.diff_id.split(":")[1] for lay in layers]}]))
    a.file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    a.file("repositories", dumps({repo: {tag: layers[-1].diff_id.split(":")[1]}}))
    return a


def docker_crane(tags, layers, cfg):
    """go-containerregistry tarball.Write: sha256:<config hex>, <hex>.tar.gz
    (named by the compressed digest), manifest.json."""
    a = Archive()
    a.file("sha256:" + sha256_hex(cfg), cfg)
    names = []
    for lay in layers:
        gz = gzip_bytes(lay.tar, 9)
        names.append(sha256_hex(gz) + ".tar.gz")
        a.file(names[-1], gz)
    a.file("manifest.json", dumps([{"Config": "sha256:" + sha256_hex(cfg), "RepoTags": tags, "Layers": names}]))
    return a


def oci_archive_of(layout_dir):
    """Tar of an OCI layout directory (oci-layout, index.json, blobs sorted)."""
    a = Archive()
    a.file("oci-layout", read(os.path.join(layout_dir, "oci-layout")))
    a.file("index.json", read(os.path.join(layout_dir, "index.json")))
    a.dir("blobs")
    a.dir("blobs/sha256")
    d = os.path.join(layout_dir, "blobs", "sha256")
    for name in sorted(os.listdir(d)):
        a.file("blobs/sha256/" + name, read(os.path.join(d, name)))
    return a


def read(path):
    with open(path, "rb") as f:
        return f.read()


def build_docker(out, fixtures):
    l0, l1 = Layer(layer0_entries(), "none"), Layer(layer1_entries(), "none")
    cfg = dumps(docker_config([l0.diff_id, l1.diff_id], "docker"))
    tree = apply_layers([l0.entries, l1.entries])
    img = ([REPO_TAG], [l0, l1], cfg)
    d = os.path.join(out, "docker")
    legacy = docker_legacy([img]).render()[0]
    write_file(os.path.join(d, "legacy.tar"), legacy)
    write_file(os.path.join(d, "skopeo.tar"), docker_skopeo([img]).render()[0])
    write_file(os.path.join(d, "moby.tar"), docker_moby(*img).render()[0])
    write_file(os.path.join(d, "crane.tar"), docker_crane(*img).render()[0])
    write_file(os.path.join(d, "outer.tar.gz"), gzip_bytes(legacy, 9))
    cfg_a = dumps(docker_config([l0.diff_id], "multi-a"))
    multi = docker_skopeo([(["example.com/a:1"], [l0], cfg_a), (["example.com/b:2"], [l0, l1], cfg)])
    write_file(os.path.join(d, "multi.tar"), multi.render()[0])

    common = {"platforms": ["linux/amd64"], "compressions": ["none"], "tree": tree}
    for name, ref, comp, feats in [
        ("docker/legacy", "docker-archive:docker/legacy.tar", "none",
         ["legacy docker save: <v1id>/layer.tar, json, VERSION, <id>.json, repositories"]),
        ("docker/skopeo", "docker-archive:docker/skopeo.tar", "none",
         ["containers/image shape: <hex>.tar, <v1id>/layer.tar symlinks to ../<hex>.tar"]),
        ("docker/moby", "docker-archive:docker/moby.tar", "none",
         ["moby 25+ shape: OCI layout inside, Config blobs/sha256/<hex>, uncompressed layer blobs"]),
        ("docker/crane", "docker-archive:docker/crane.tar", "gzip",
         ["crane shape: <hex>.tar.gz gzip layers, Config named sha256:<hex>, no repositories"]),
        ("docker/outer", "docker-archive:docker/outer.tar.gz", "none",
         ["whole archive gzip-compressed (docker save | gzip) around the legacy shape"]),
    ]:
        f = dict(common, name=name, ref=ref, compressions=[comp], features=feats)
        fixtures.append({k: f[k] for k in ("name", "ref", "platforms", "compressions", "features", "tree")})
    fixtures.append({"name": "docker/multi:a", "ref": "docker-archive:docker/multi.tar:example.com/a:1",
                     "platforms": ["linux/amd64"], "compressions": ["none"],
                     "features": ["two images in one archive (select by RepoTag)", "shared layer file"],
                     "tree": apply_layers([l0.entries])})
    fixtures.append({"name": "docker/multi:b", "ref": "docker-archive:docker/multi.tar:example.com/b:2",
                     "platforms": ["linux/amd64"], "compressions": ["none"],
                     "features": ["two images in one archive (select by RepoTag)", "shared layer file"],
                     "tree": tree})
    return l0, l1, cfg


def build_oci_archive(out, fixtures, tree):
    a = oci_archive_of(os.path.join(out, "oci", "uncompressed"))
    write_file(os.path.join(out, "oci-archive", "uncompressed.tar"), a.render()[0])
    fixtures.append({"name": "oci-archive/uncompressed", "ref": "oci-archive:oci-archive/uncompressed.tar:latest",
                     "platforms": ["linux/amd64"], "compressions": ["none"],
                     "features": ["oci-archive: tar of the oci/uncompressed layout"], "tree": tree})


# ---- hostile: documents ----------------------------------------------------------


class DocBase:
    """A small valid image whose parts the document cases break one at a time."""

    def __init__(self):
        self.layer_tar = tar_bytes([Entry("hello.txt", data=b"hello from the hostile corpus\n")])
        self.diff_id = "sha256:" + sha256_hex(self.layer_tar)
        self.layer = gzip_bytes(self.layer_tar, 9)
        self.config = dumps(image_config([self.diff_id], name="hostile"))

    def manifest(self, **over):
        m = manifest_of(descriptor(MT_OCI_CONFIG, self.config), [descriptor(MT_OCI_LAYER_GZIP, self.layer)],
                        annotations={"org.example.note": "aaaa"})
        m.update(over)
        return m


# Document cases whose problem is in a layer blob: inspect (index, manifest,
# config) does not read it, only a copy does.
COPY_STAGE = {"layer-content-changed", "layer-byte-prepended", "layer-nul-appended", "layer-regzipped",
              "layer-size-smaller", "missing-layer-blob", "diff-id-mismatch"}


def doc_cases(out, cases):
    base = DocBase()
    root = os.path.join(out, "hostile", "oci")

    def case(name, expect, note, ref="latest"):
        stage = "copy" if name in COPY_STAGE else "inspect"
        cases.append({"name": name, "kind": "document", "ref": "oci:hostile/oci/%s:%s" % (name, ref),
                      "expect": expect, "stage": stage, "note": note})
        return Layout(os.path.join(root, name))

    def std(lo, manifest=None, layer=True, config=True):
        if layer:
            lo.add(base.layer)
        if config:
            lo.add(base.config)
        mb = manifest if isinstance(manifest, bytes) else dumps(manifest or base.manifest())
        lo.add(mb)
        return mb

    lo = case("bad-digest-index", ["invalid digest"],
              "index.json descriptor digest is sha256:../../etc/passwd (path traversal through the blob path)")
    mb = std(lo)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb, digest="sha256:../../etc/passwd"))]))

    lo = case("uppercase-digest", ["invalid digest"],
              "index.json digest in uppercase hex (the blob exists under the lowercase name)")
    mb = std(lo)
    d = descriptor(MT_OCI_MANIFEST, mb)
    d["digest"] = "sha256:" + d["digest"][7:].upper()
    lo.write_index(index_of([tagged(d)]))

    lo = case("short-digest", ["invalid digest"], "index.json digest has 63 hex characters")
    mb = std(lo)
    d = descriptor(MT_OCI_MANIFEST, mb)
    d["digest"] = d["digest"][:-1]
    lo.write_index(index_of([tagged(d)]))

    lo = case("md5-digest", ["unsupported digest algorithm"],
              "index.json digest is md5:<hex of the manifest>; blobs/md5/<hex> exists")
    mb = std(lo)
    md5 = hashlib.md5(mb).hexdigest()
    write_file(os.path.join(lo.root, "blobs", "md5", md5), mb)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb, digest="md5:" + md5))]))

    lo = case("bad-digest-layer", ["invalid digest"], "the manifest's layer digest is sha256:zzzz... (64 z)")
    m = base.manifest()
    m["layers"][0]["digest"] = "sha256:" + "z" * 64
    mb = std(lo, m)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    # Layer blob changed in place: the gzip header's MTIME bytes, so the blob
    # is still a valid gzip of the same tar and only the digest tells.
    lo = case("layer-content-changed", ["digest mismatch"],
              "layer blob rewritten with the same size (gzip MTIME bytes changed: still valid gzip, same diff_id)")
    lo.add(base.config)
    bad = bytearray(base.layer)
    bad[4:8] = b"\x01\x02\x03\x04"
    lo.add(bytes(bad), name="sha256:" + sha256_hex(base.layer))
    mb = dumps(base.manifest())
    lo.add(mb)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("layer-byte-prepended", ["size mismatch"],
              "layer blob has one extra byte (0x1f) before the gzip stream; the descriptor keeps size and digest")
    lo.add(base.config)
    lo.add(b"\x1f" + base.layer, name="sha256:" + sha256_hex(base.layer))
    mb = dumps(base.manifest())
    lo.add(mb)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("layer-nul-appended", ["size mismatch"],
              "layer blob has a NUL byte appended after the gzip stream; the descriptor keeps size and digest")
    lo.add(base.config)
    lo.add(base.layer + b"\0", name="sha256:" + sha256_hex(base.layer))
    mb = dumps(base.manifest())
    lo.add(mb)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("layer-regzipped", ["digest mismatch"],
              "layer re-gzipped at level 1 (same tar, same diff_id, other bytes) and stored under the old digest; "
              "the descriptor keeps the old digest but carries the new size, so only the digest is wrong")
    lo.add(base.config)
    regz = gzip_bytes(base.layer_tar, 1)
    assert regz != base.layer
    lo.add(regz, name="sha256:" + sha256_hex(base.layer))
    m = base.manifest()
    m["layers"][0]["size"] = len(regz)
    mb = dumps(m)
    lo.add(mb)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("layer-size-smaller", ["size mismatch"], "layer descriptor size is 10 bytes smaller than the blob")
    m = base.manifest()
    m["layers"][0]["size"] -= 10
    mb = std(lo, m)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("config-altered", ["digest mismatch"],
              "config blob changed in place (one character of a label value), same size, still valid JSON")
    lo.add(base.layer)
    bad = base.config.replace(b'"org.example.fixture":"hostile"', b'"org.example.fixture":"hostilE"')
    assert bad != base.config and len(bad) == len(base.config)
    lo.add(bad, name="sha256:" + sha256_hex(base.config))
    mb = dumps(base.manifest())
    lo.add(mb)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("manifest-altered", ["digest mismatch"],
              "manifest blob changed in place (annotation aaaa -> aaab), same size, still valid JSON")
    lo.add(base.layer)
    lo.add(base.config)
    mb = dumps(base.manifest())
    bad = mb.replace(b'"aaaa"', b'"aaab"')
    assert bad != mb
    lo.add(bad, name="sha256:" + sha256_hex(mb))
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("missing-layer-blob", ["not found"], "the layer blob is absent from blobs/sha256/")
    mb = std(lo, layer=False)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("manifest-with-manifests", ["ambiguous"],
              "an image manifest that also carries a `manifests' array (CVE-2021-41190 shape)")
    other = std(lo)
    mb = dumps(base.manifest(manifests=[descriptor(MT_OCI_MANIFEST, other, platform={"architecture": "amd64",
                                                                                     "os": "linux"})]))
    lo.add(mb)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("index-with-layers", ["ambiguous"], "index.json (an image index) also carries a `layers' array")
    mb = std(lo)
    idx = index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))])
    idx["layers"] = [descriptor(MT_OCI_LAYER_GZIP, base.layer)]
    lo.write_index(idx)

    lo = case("index-type-manifest-body", ["media type"],
              "index.json descriptor says image index media type; the blob is an image manifest whose mediaType "
              "says manifest")
    mb = std(lo)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_INDEX, mb))]))

    lo = case("huge-manifest", ["larger than the limit"],
              "5 MiB manifest (a 5 MiB annotation), over max_document_bytes (4 MiB); digest and size are right")
    mb = std(lo, base.manifest(annotations={"org.example.padding": "x" * (5 * MiB)}))
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("manifest-not-json", ["not valid JSON"], "manifest blob is plain text; digest and size are right")
    mb = std(lo, b"this is not JSON {\n")
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("manifest-duplicate-key", ["duplicate key"],
              "manifest with `layers' twice: first [] then the real layer (last-wins and first-wins parsers "
              "disagree)")
    m = base.manifest()
    raw = (b'{"schemaVersion":2,"mediaType":"' + MT_OCI_MANIFEST.encode() + b'","config":'
           + dumps(m["config"]) + b',"layers":[],"layers":' + dumps(m["layers"]) + b"}")
    mb = std(lo, raw)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("too-many-layers", ["too many"],
              "manifest with 10001 layer descriptors (max_descriptors is 10000); all name the same real blob")
    m = base.manifest()
    m["layers"] = m["layers"] * 10001
    mb = std(lo, m)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("schema-version-1", ["schemaVersion"], "OCI manifest with schemaVersion 1")
    mb = std(lo, base.manifest(schemaVersion=1))
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("missing-oci-layout", ["oci-layout"], "valid layout except that the oci-layout file is missing")
    os.remove(os.path.join(lo.root, "oci-layout"))
    mb = std(lo)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("oci-layout-version-2", ["oci-layout"], 'oci-layout says {"imageLayoutVersion":"2.0.0"}')
    write_file(os.path.join(lo.root, "oci-layout"), b'{"imageLayoutVersion":"2.0.0"}')
    mb = std(lo)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("diff-id-mismatch", ["diff_id"],
              "config rootfs.diff_ids[0] is not the sha256 of the decompressed layer (every blob digest is "
              "right); only detected when the layer is decompressed, i.e. by a copy, not by inspect")
    lo.add(base.layer)
    cfg = dumps(image_config(["sha256:" + sha256_hex(b"some other layer")], name="hostile"))
    lo.add(cfg)
    m = base.manifest()
    m["config"] = descriptor(MT_OCI_CONFIG, cfg)
    mb = dumps(m)
    lo.add(mb)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))

    lo = case("nested-index-20", ["too many"],
              "index.json -> 20 nested image indexes -> the manifest (nesting cap)")
    mb = std(lo)
    d = descriptor(MT_OCI_MANIFEST, mb)
    for _ in range(20):
        ib = dumps(index_of([d]))
        lo.add(ib)
        d = descriptor(MT_OCI_INDEX, ib)
    lo.write_index(index_of([tagged(d)]))

    lo = case("unknown-tag", ["not found"], "valid layout; the ref asks for tag `nope' which index.json lacks",
              ref="nope")
    mb = std(lo)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))


# ---- hostile: layers -------------------------------------------------------------


def raw_entry(name, data=b"", **kw):
    """Header (+ data + padding) written by hand, for names tarfile refuses."""
    kw.setdefault("size", len(data))
    return tar_header(name, **kw) + data + pad(len(data))


def single_layer_layout(out, name, desc, diff_id):
    lo = Layout(os.path.join(out, "hostile", "oci", name))
    cfg = dumps(image_config([diff_id], name=name))
    lo.add(cfg)
    mb = dumps(manifest_of(descriptor(MT_OCI_CONFIG, cfg), [desc]))
    lo.add(mb)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))
    return lo


def layer_cases(out, cases):
    def case(name, expect, note, items=None, compression="gzip", blob=None, diff_id=None, desc=None, **extra):
        """items: list of Entry/raw bytes for a tar (gzip level 9), or blob +
        diff_id, or a finished desc (blob already in the layout)."""
        if items is not None:
            t = tar_bytes(items)
            diff_id = "sha256:" + sha256_hex(t)
            blob = compress(t, compression)
        if desc is None:
            desc = descriptor(LAYER_MEDIA_TYPES[compression], blob)
            lo = single_layer_layout(out, name, desc, diff_id)
            lo.add(blob)
        c = {"name": name, "kind": "layer", "ref": "oci:hostile/oci/%s:latest" % name, "expect": expect,
             "layer": "hostile/oci/%s/blobs/sha256/%s" % (name, desc["digest"][7:]), "compression": compression,
             "stage": "copy", "note": note}
        c.update(extra)
        cases.append(c)

    hello = b"escaped\n"
    case("dotdot-path", ["path has a `..' component"], "file entry `../escape'",
         [raw_entry("../escape", hello)])
    case("inner-dotdot-path", ["path has a `..' component"], "dir `a/' then file `a/../../escape'",
         [raw_entry("a/", typeflag=b"5", mode=0o755), raw_entry("a/../../escape", hello)])
    case("absolute-path", ["absolute path"], "file entry `/etc/passwd'",
         [raw_entry("/etc/passwd", b"root::0:0::/root:/bin/sh\n")])
    case("root-symlink", ["root must be a directory"],
         "entry `.' is a symlink to /etc, then file `passwd' (umoci CVE-2021-29136 shape)",
         [raw_entry(".", typeflag=b"2", linkname="/etc", mode=0o777), raw_entry("passwd", b"owned\n")])
    case("hardlink-absolute", ["hard link target"], "hard link `passwd' -> `/etc/passwd' (target is absolute)",
         [raw_entry("passwd", typeflag=b"1", linkname="/etc/passwd")])
    case("hardlink-dotdot", ["hard link target"],
         "hard link `passwd' -> `../../etc/passwd' (target has a `..' component)",
         [raw_entry("passwd", typeflag=b"1", linkname="../../etc/passwd")])
    case("hardlink-missing", ["hard link target"],
         "hard link `link' -> `missing.txt' which no layer has (target is missing); a single layer may link to a "
         "lower layer's file, so only the final tree can tell",
         [raw_entry("link", typeflag=b"1", linkname="missing.txt")], tree_only=True)
    case("symlink-escape", ["symlink target escapes the root"], "symlink `evil' -> `../../../etc'",
         [raw_entry("evil", typeflag=b"2", linkname="../../../etc", mode=0o777)])
    case("symlink-follow", ["symlink target escapes the root", "parent is not a directory"],
         "symlink `link' -> `../../..', then file `link/passwd' written through it",
         [raw_entry("link", typeflag=b"2", linkname="../../..", mode=0o777),
          raw_entry("link/passwd", b"owned\n")])
    case("whiteout-empty", ["invalid whiteout"], "whiteout `.wh.' (no name)", [raw_entry(".wh.")])
    case("whiteout-dot", ["invalid whiteout"], "whiteout `.wh..' (would remove the root)", [raw_entry(".wh..")])
    case("whiteout-dotdot", ["invalid whiteout"], "whiteout `.wh...' (would remove the root's parent)",
         [raw_entry(".wh...")])
    case("whiteout-etc-dot", ["invalid whiteout"], "dir `etc/' then whiteout `etc/.wh..' (would remove etc)",
         [raw_entry("etc/", typeflag=b"5", mode=0o755), raw_entry("etc/.wh..")])
    case("duplicate-entry", ["duplicate entry"], "file `dup.txt' twice with different contents",
         [raw_entry("dup.txt", b"first\n"), raw_entry("dup.txt", b"second\n")], tree_only=True)

    # Old GNU sparse header: typeflag S, map entry at 386, realsize at 483.
    four_g = 4 * GiB
    sparse_hdr = tar_header("sparse.bin", typeflag=b"S", size=BLOCK, magic=b"ustar  \0", patches={
        386: b"%011o\0" % (four_g - BLOCK) + b"%011o\0" % BLOCK,  # sparse[0] offset, numbytes
        482: b"\0",  # isextended
        483: b"%011o\0" % four_g,  # realsize
    })
    case("gnu-sparse-4g", ["sparse entries are not supported"],
         "old GNU sparse entry (typeflag S) declaring a 4 GiB file with 512 stored bytes",
         [sparse_hdr + b"S" * BLOCK])
    case("pax-path-1mib", ["path longer than"],
         "pax `path' record of 1 MiB (one component); the pax header itself is also over max_pax_bytes",
         [Entry("p" * MiB, data=b"long\n")])
    deep = "/".join(["d"] * 299 + ["f"])
    case("path-300-deep", ["path deeper than"], "file path of 300 components (d/d/.../f, via pax path)",
         [Entry(deep, data=b"deep\n")])
    case("many-entries", ["too many entries"],
         "1001 empty files; the unit tests lower max_entries to 1000 (the default would accept it)",
         [Entry("f%04d" % i) for i in range(1001)], limits={"max_entries": 1000})

    bomb_cases(out, case)

    r = random.Random(31)
    payload = r.randbytes(3 * MiB)
    t = tar_bytes([Entry("random.bin", data=payload)])
    blob = zstd_bytes(t, 3, extra=["--long=31"])
    case("zstd-window-bomb", ["window"],
         "3 MiB zstd frame made with --long=31 from stdin: the frame header declares a 2 GiB window "
         "(over the 128 MiB default windowLogMax 27); the tar inside is valid",
         blob=blob, diff_id="sha256:" + sha256_hex(t), compression="zstd")


def bomb_cases(out, case):
    """The 1 GiB streams: made from repeated compressed chunks, hashed while
    generated, never held in memory."""
    # Uncompressed stream: one header then only zeros (file data, end of
    # archive and record padding are all zero bytes).
    hdr = tar_header("zeros.bin", size=GiB)
    nzeros = GiB + len(end_of_archive(BLOCK + GiB))
    total = BLOCK + nzeros
    chunk = 16 * MiB
    zeros = bytes(chunk)

    # gzip ratio bomb: raw deflate chunks from fresh compressors ending in a
    # full flush (byte aligned, no back-references across chunks) concatenate
    # into one valid deflate stream; a final empty block closes it.
    def deflate(data):
        z = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
        return z.compress(data) + z.flush(zlib.Z_FULL_FLUSH)

    first = deflate(hdr + zeros[:chunk - BLOCK])
    rest = nzeros - (chunk - BLOCK)
    full = deflate(zeros)
    tail = deflate(zeros[:rest % chunk]) if rest % chunk else b""
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()

    sha = hashlib.sha256(hdr)
    crc = zlib.crc32(hdr)
    zpath = os.path.join(out, "hostile", ".zstd-bomb")
    with open(zpath, "wb") as zf:
        p = subprocess.Popen(ZSTD + ["-3"], stdin=subprocess.PIPE, stdout=zf)
        p.stdin.write(hdr)
        left = nzeros
        while left:
            n = min(left, chunk)
            piece = zeros[:n]
            sha.update(piece)
            crc = zlib.crc32(piece, crc)
            p.stdin.write(piece)
            left -= n
        p.stdin.close()
        if p.wait() != 0:
            raise SystemExit("zstd failed")
    diff_id = "sha256:" + sha.hexdigest()

    lo_name = "gzip-ratio-bomb"
    lo = Layout(os.path.join(out, "hostile", "oci", lo_name))

    def gz(f):
        f.write(gzip_header(9))
        f.write(first)
        for _ in range(rest // chunk):
            f.write(full)
        f.write(tail)
        f.write(final)
        f.write(gzip_trailer(crc, total))

    digest, size = lo.add_stream(gz)
    desc = descriptor(MT_OCI_LAYER_GZIP, digest=digest, size=size)
    lo2 = single_layer_layout(out, lo_name, desc, diff_id)
    assert lo2.root == lo.root
    case(lo_name, ["expands more than"],
         "valid gzip of a valid tar holding one 1 GiB all-zero file: %d bytes compressed, ratio %.0f:1 "
         "(deflate cannot exceed ~1032:1; max_expansion_ratio is 1000)" % (size, total / size), desc=desc)

    lo_name = "zstd-ratio-bomb"
    lo = Layout(os.path.join(out, "hostile", "oci", lo_name))
    zdata = read(zpath)
    os.remove(zpath)
    zd = lo.add(zdata)
    desc = descriptor(LAYER_MEDIA_TYPES["zstd"], digest=zd, size=len(zdata))
    single_layer_layout(out, lo_name, desc, diff_id)
    case(lo_name, ["expands more than"],
         "valid zstd (level 3, from stdin) of the same 1 GiB tar: %d bytes compressed, ratio %.0f:1"
         % (len(zdata), total / len(zdata)), compression="zstd", desc=desc)

    # gzip zero stream: member 1 is a complete small tar (one file + the 1 KiB
    # end-of-archive, no record padding); then 1024 members of 1 MiB zeros.
    small = raw_entry("hello.txt", b"hello\n") + b"\0" * (2 * BLOCK)
    member1 = gzip_bytes(small, 9)
    zmember = gzip_bytes(bytes(MiB), 9)
    sha = hashlib.sha256(small)
    mzero = bytes(MiB)
    for _ in range(1024):
        sha.update(mzero)
    lo_name = "gzip-zero-stream"
    lo = Layout(os.path.join(out, "hostile", "oci", lo_name))

    def zs(f):
        f.write(member1)
        for _ in range(1024):
            f.write(zmember)

    digest, size = lo.add_stream(zs)
    desc = descriptor(MT_OCI_LAYER_GZIP, digest=digest, size=size)
    single_layer_layout(out, lo_name, desc, "sha256:" + sha.hexdigest())
    case(lo_name, ["data after the end of the archive", "expands more than"],
         "gzip member 1: a valid tar (one file + 1 KiB end-of-archive); then 1024 more gzip members of 1 MiB "
         "of zeros each (1 GiB of zeros after the end of the archive, max_trailing_bytes is 1 MiB); %d bytes, "
         "ratio %.0f:1 (under 1000: the trailing data is what must stop it)"
         % (size, (len(small) + GiB) / size), desc=desc)


# ---- hostile: archives -----------------------------------------------------------


def archive_cases(out, cases, l0, l1, cfg):
    d = os.path.join(out, "hostile", "docker")
    img = ([REPO_TAG], [l0, l1], cfg)

    def case(name, file, expect, note, data, stage="inspect"):
        write_file(os.path.join(d, file), data)
        cases.append({"name": name, "kind": "archive", "ref": "docker-archive:hostile/docker/" + file,
                      "expect": expect, "stage": stage, "note": note})

    a = docker_legacy([img])
    man = [{"Config": sha256_hex(cfg) + ".json", "RepoTags": [REPO_TAG],
            "Layers": ["../../etc/passwd", v1_ids([l0.diff_id, l1.diff_id], sha256_hex(cfg))[1] + "/layer.tar"]}]
    a.remove("manifest.json")
    a.file("manifest.json", dumps(man))
    case("docker-layers-path-outside", "layers-path-outside.tar", ["outside the archive"],
         "manifest.json Layers[0] is `../../etc/passwd'", a.render()[0], stage="copy")

    a = docker_skopeo([img])
    v1 = v1_ids([l0.diff_id, l1.diff_id], sha256_hex(cfg))
    a.members = [m if m.path != v1[0] + "/layer.tar" else Entry(m.path, "symlink", target="../../outside")
                 for m in a.members]
    man = [{"Config": sha256_hex(cfg) + ".json", "RepoTags": [REPO_TAG],
            "Layers": [v1[0] + "/layer.tar", l1.diff_id[7:] + ".tar"]}]
    a.remove("manifest.json")
    a.file("manifest.json", dumps(man))
    case("docker-layer-symlink-outside", "layer-symlink-outside.tar", ["outside the archive"],
         "Layers[0] is `<v1id>/layer.tar', a symlink to `../../outside' (skopeo shape)", a.render()[0], stage="copy")

    a = docker_skopeo([img])
    a.remove(l1.diff_id[7:] + ".tar")
    a.remove(v1[1] + "/layer.tar")
    case("docker-missing-layer", "missing-layer.tar", ["not found"],
         "manifest.json names `<hex>.tar' for layer 1, which the archive lacks", a.render()[0], stage="copy")

    a = docker_legacy([img])
    a.remove("manifest.json")
    case("docker-no-manifest-json", "no-manifest-json.tar", ["manifest.json"],
         "legacy archive without manifest.json (repositories and <v1id>/json only: pre-1.10 docker save)",
         a.render()[0])

    data, where = docker_legacy([img]).render()
    _, data_off, size = where[v1[1] + "/layer.tar"]
    case("docker-truncated", "truncated.tar", ["truncated"],
         "legacy archive cut in the middle of layer 1's layer.tar data (no end-of-archive)",
         data[:data_off + size // 2])

    data, where = docker_legacy([img]).render()
    hoff = where["manifest.json"][0]
    bad = bytearray(data)
    stored = int(bad[hoff + 148:hoff + 154], 8)
    bad[hoff + 148:hoff + 156] = b"%06o\0 " % (stored + 1)
    case("docker-bad-checksum", "bad-checksum.tar", ["checksum"],
         "the manifest.json header's stored checksum is off by one (not the first header)", bytes(bad))

    changed = [Entry(e.path, e.kind, mode=e.mode, uid=e.uid, gid=e.gid, target=e.target, xattrs=e.xattrs,
                     data=e.data.replace(b"replaced-by-layer-1", b"REPLACED-by-layer-1")) for e in l1.entries]
    l1bad = Layer(changed, "none")
    assert len(l1bad.tar) == len(l1.tar) and l1bad.tar != l1.tar
    a = docker_skopeo([img])
    a.members = [m if m.path != l1.diff_id[7:] + ".tar" else Entry(m.path, data=l1bad.tar) for m in a.members]
    case("docker-layer-diff-id-mismatch", "layer-diff-id-mismatch.tar", ["digest mismatch", "diff_id"],
         "layer 1 `<hex>.tar' is a valid tar of the same size whose sha256 is not its name nor the config diff_id "
         "(one file's content changed)", a.render()[0], stage="copy")

    cfg_a = dumps(docker_config([l0.diff_id], "two-a"))
    a = docker_skopeo([(["example.com/a:1"], [l0], cfg_a), (["example.com/b:2"], [l0, l1], cfg)])
    case("docker-two-images-no-ref", "two-images.tar", ["more than one image"],
         "two images (example.com/a:1, example.com/b:2) and the reference names none", a.render()[0])

    a = docker_legacy([img])
    a.remove("manifest.json")
    man = [{"Config": sha256_hex(cfg) + ".json", "RepoTags": [REPO_TAG], "Layers": [v + "/layer.tar" for v in v1],
            "Comment": "x" * (5 * MiB)}]
    a.file("manifest.json", dumps(man))
    case("docker-huge-manifest-json", "huge-manifest-json.tar", ["larger than the limit"],
         "manifest.json of 5 MiB (a 5 MiB extra field), over max_document_bytes (4 MiB)", a.render()[0])

    # oci-archive cases, on the tar of a small uncompressed OCI layout.
    base = DocBase()
    tmp = os.path.join(out, "hostile", ".oci-archive-base")
    lo = Layout(tmp)
    lo.add(base.layer)
    lo.add(base.config)
    mb = dumps(base.manifest())
    lo.add(mb)
    lo.write_index(index_of([tagged(descriptor(MT_OCI_MANIFEST, mb))]))
    oa = oci_archive_of(tmp)
    shutil.rmtree(tmp)
    od = os.path.join(out, "hostile", "oci-archive")
    layer_name = "blobs/sha256/" + sha256_hex(base.layer)

    def ocase(name, file, expect, note, data):
        write_file(os.path.join(od, file), data)
        cases.append({"name": name, "kind": "archive", "ref": "oci-archive:hostile/oci-archive/%s:latest" % file,
                      "expect": expect, "stage": "inspect", "note": note})

    dup = Archive()
    dup.members = list(oa.members)
    other = bytearray(base.layer)
    other[4:8] = b"\x09\x09\x09\x09"  # still a valid gzip, other digest, same size
    dup.file(layer_name, bytes(other))
    ocase("oci-archive-duplicate-blob", "duplicate-blob.tar", ["duplicate"],
          "the layer's blobs/sha256/<hex> appears twice; the second copy has other bytes (first-wins and "
          "last-wins readers disagree)", dup.render()[0])

    data, where = oa.render()
    _, data_off, size = where[layer_name]
    ocase("oci-archive-truncated", "truncated.tar", ["truncated"],
          "oci-archive cut in the middle of the layer blob's data", data[:data_off + size // 2])


# ---- main ----------------------------------------------------------------------


def main(argv):
    if len(argv) == 3 and argv[1] == "--sample":
        # Only the sample image of README's first command: oci/layers.
        out = argv[2]
        shutil.rmtree(os.path.join(out, "oci", "layers"), ignore_errors=True)
        build_oci_layers(out, [])
        return 0
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.stderr.write("usage: build_fixtures.py OUT\n       build_fixtures.py --sample OUT\n")
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    for n in OUTPUT_NAMES:  # only what this script writes
        p = os.path.join(out, n)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    start = time.monotonic()
    fixtures, cases = [], []
    layers = build_oci_layers(out, fixtures)
    build_oci_large(out, fixtures)
    build_oci_multiarch(out, fixtures)
    build_oci_docker_types(out, fixtures, layers[0])
    _, ucfg = build_oci_uncompressed(out, fixtures)
    l0, l1, dcfg = build_docker(out, fixtures)
    build_oci_archive(out, fixtures, apply_layers([l0.entries, l1.entries]))
    doc_cases(out, cases)
    layer_cases(out, cases)
    archive_cases(out, cases, l0, l1, dcfg)
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    write_file(os.path.join(out, "fixtures.json"), dumps(fixtures) + b"\n")
    write_file(os.path.join(out, "hostile", "cases.json"), dumps(cases) + b"\n")
    sys.stderr.write("build_fixtures: %d fixtures, %d hostile cases in %.1f s\n"
                     % (len(fixtures), len(cases), time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
