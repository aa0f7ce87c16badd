# SPDX-License-Identifier: Apache-2.0
"""Memory does not grow with layer size: a layer expanding to 1 GiB, legit or
hostile, never makes sconify (or the final-tree function) use more than
256 MiB. Measured on the build without sanitizers (SCONIFY_RELEASE_BIN)."""

import hashlib
import json
import os
import random
import subprocess
import tarfile

import harness

LIMIT_KIB = 256 * 1024
RELEASE = harness.RELEASE_SCONIFY
RELEASE_TREE = os.environ.get("SCONIFY_RELEASE_LAYER_TREE") or (
    os.path.join(os.path.dirname(RELEASE), "..", "..", "tests", "tools", "layer_tree") if RELEASE else None)


def write_gib_layer_image(path):
    """An OCI layout whose one zstd layer is a tar holding a 1 GiB file that
    alternates fresh pseudorandom MiBs with zero MiBs (about 2:1, like real
    layers), so it really expands to 1 GiB."""
    os.makedirs(os.path.join(path, "blobs", "sha256"))
    rng = random.Random(7)
    zeros = bytes(1 << 20)
    layer_tmp = os.path.join(path, "layer.zst")
    zstd = subprocess.Popen(["zstd", "-q", "-1", "-T2", "-c"], stdin=subprocess.PIPE,
                            stdout=open(layer_tmp, "wb"))
    diff = hashlib.sha256()

    class Tee:
        def write(self, b):
            diff.update(b)
            zstd.stdin.write(b)
            return len(b)

    class Gib:
        left = 1 << 30

        def read(self, n):
            n = min(n, self.left, 1 << 20)
            mib = (1 << 30) - self.left
            self.left -= n
            return rng.randbytes(n) if (mib >> 20) % 2 else zeros[:n]

    with tarfile.open(fileobj=Tee(), mode="w|", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("big.bin")
        info.size = 1 << 30
        t.addfile(info, Gib())
    zstd.stdin.close()
    assert zstd.wait() == 0

    def put(data_or_path):
        h = hashlib.sha256()
        if isinstance(data_or_path, bytes):
            h.update(data_or_path)
            size = len(data_or_path)
        else:
            with open(data_or_path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            size = os.path.getsize(data_or_path)
        target = os.path.join(path, "blobs", "sha256", h.hexdigest())
        if isinstance(data_or_path, bytes):
            open(target, "wb").write(data_or_path)
        else:
            os.rename(data_or_path, target)
        return {"digest": "sha256:" + h.hexdigest(), "size": size}

    layer = put(layer_tmp)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff.hexdigest()]}}).encode()
    c = put(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **c},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                                       **layer}]}).encode()
    m = put(manifest)
    json.dump({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
         "annotations": {"org.opencontainers.image.ref.name": "gib"}}]},
        open(os.path.join(path, "index.json"), "w"))
    open(os.path.join(path, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
    return f"oci:{path}:gib", os.path.join(path, "blobs", "sha256", layer["digest"].split(":")[1])


class Memory(harness.TestCase):
    def setUp(self):
        super().setUp()
        if not RELEASE:
            self.skipTest("SCONIFY_RELEASE_BIN is not set (scripts/test.sh sets it)")

    def test_gib_layer_recompressed_in_bounded_memory(self):
        ref, layer = write_gib_layer_image(os.path.join(self.tmp, "gib"))
        out = os.path.join(self.tmp, "out")
        code, err, rss = harness.max_rss_kib([RELEASE, "copy", "-q", "--dest-compress", "gzip", ref,
                                              f"oci:{out}:x"])
        self.assertEqual(code, 0, err)
        print(f"# 1 GiB layer zstd -> gzip: peak RSS {rss // 1024} MiB", flush=True)
        self.assertLess(rss, LIMIT_KIB)
        code, err, rss = harness.max_rss_kib([RELEASE_TREE, layer])
        self.assertEqual(code, 0, err)
        print(f"# final tree of the 1 GiB layer: peak RSS {rss // 1024} MiB", flush=True)
        self.assertLess(rss, LIMIT_KIB)

    def test_bombs_fail_in_bounded_memory(self):
        base = harness.fixtures()
        for case in harness.hostile_cases():
            if case["name"] not in ("gzip-ratio-bomb", "zstd-ratio-bomb", "gzip-zero-stream", "zstd-window-bomb"):
                continue
            with self.subTest(case=case["name"]):
                out = os.path.join(self.tmp, "bomb")
                other = "gzip" if case["compression"] == "zstd" else "zstd"
                code, err, rss = harness.max_rss_kib([RELEASE, "copy", "-q", "--dest-compress", other,
                                                      harness.absref(case["ref"]), f"oci:{out}:x"])
                self.assertEqual(code, 1, err)
                self.assertTrue(any(e in err for e in case["expect"]), err)
                self.assertLess(rss, LIMIT_KIB)
                code, err, rss = harness.max_rss_kib([RELEASE_TREE, os.path.join(base, case["layer"])])
                self.assertEqual(code, 1, err)
                self.assertLess(rss, LIMIT_KIB)


if __name__ == "__main__":
    harness.main()
