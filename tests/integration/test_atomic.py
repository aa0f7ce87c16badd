# SPDX-License-Identifier: Apache-2.0
"""Writes are atomic: a failed copy leaves the destination exactly as it was
(an existing layout keeps every byte, an existing archive file is untouched,
a new destination does not appear); a successful copy into a layout adds
its image and keeps the others."""

import json
import os
import shutil

import harness
from harness import sconify


class Atomic(harness.TestCase):
    def good(self, name="oci/layers"):
        fx = next(f for f in harness.fixture_list() if f["name"] == name)
        return harness.absref(fx["ref"])

    def hostile(self, name):
        case = next(c for c in harness.hostile_cases() if c["name"] == name)
        return harness.absref(case["ref"])

    def late_failing_image(self):
        """oci/layers with its last layer blob corrupted (same size): a
        sequential copy writes the first layers, then fails."""
        src = os.path.join(self.tmp, "src")
        if os.path.exists(src):
            return f"oci:{src}:latest"
        self.last_layer = None
        shutil.copytree(self.good().split(":")[1], src)
        index = json.load(open(os.path.join(src, "index.json")))
        mdigest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(open(os.path.join(src, "blobs", "sha256", mdigest)))
        self.last_layer = manifest["layers"][-1]["digest"]
        last = os.path.join(src, "blobs", "sha256", self.last_layer.split(":")[1])
        data = bytearray(open(last, "rb").read())
        data[len(data) // 2] ^= 0xFF
        os.chmod(last, 0o644)
        open(last, "wb").write(data)
        return f"oci:{src}:latest"

    def test_failed_copy_into_existing_layout_changes_nothing(self):
        layout = os.path.join(self.tmp, "layout")
        sconify("copy", "-q", self.good("oci/uncompressed"), f"oci:{layout}:keep", check=True)
        before = harness.snapshot(layout)
        bad = self.late_failing_image()
        for extra in ([], ["--dest-compress", "gzip"]):
            with self.subTest(extra=extra):
                p = sconify("copy", "--jobs", "1", *extra, bad, f"oci:{layout}:new")
                # The last layer fails, so the first ones were written before...
                self.assertFailsWith(p, ["digest mismatch"], names=self.last_layer)
                # ...and taken back.
                self.assertEqual(harness.snapshot(layout), before)
        for case in ("config-altered", "gzip-ratio-bomb"):
            with self.subTest(case=case):
                p = sconify("copy", "-q", "--dest-compress", "zstd", self.hostile(case), f"oci:{layout}:new")
                self.assertEqual(p.returncode, 1, p.stderr_text)
                self.assertEqual(harness.snapshot(layout), before)

    def test_failed_copy_leaves_existing_archive_untouched(self):
        for transport in ("oci-archive", "docker-archive"):
            with self.subTest(transport=transport):
                path = os.path.join(self.tmp, f"{transport}.tar")
                sconify("copy", "-q", self.good(), f"{transport}:{path}", check=True)
                before = harness.snapshot(path)
                p = sconify("copy", "-q", self.late_failing_image(), f"{transport}:{path}")
                self.assertEqual(p.returncode, 1)
                self.assertEqual(harness.snapshot(path), before)
                self.assertEqual(sorted(os.listdir(self.tmp)),
                                 sorted(n for n in os.listdir(self.tmp) if not n.startswith(".")))

    def test_failed_copy_into_empty_directory_leaves_it_empty(self):
        empty = os.path.join(self.tmp, "empty")
        os.makedirs(empty)
        p = sconify("copy", "-q", self.late_failing_image(), f"oci:{empty}:x")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(os.listdir(empty), [])

    def test_copy_into_layout_adds_and_replaces_by_name(self):
        layout = os.path.join(self.tmp, "layout")
        sconify("copy", "-q", self.good(), f"oci:{layout}:a", check=True)
        sconify("copy", "-q", self.good("oci/uncompressed"), f"oci:{layout}:b", check=True)
        sconify("copy", "-q", self.good("oci/uncompressed"), f"oci:{layout}:a", check=True)
        index = json.load(open(os.path.join(layout, "index.json")))
        names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
        self.assertEqual(sorted(names), ["a", "b"])
        digests = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
                   for m in index["manifests"]}
        self.assertEqual(digests["a"], digests["b"])
        # skopeo reads the layout with both names
        for n in ("a", "b"):
            harness.run(["skopeo", "inspect", f"oci:{layout}:{n}"], check=True)
        leftovers = [n for n in os.listdir(os.path.join(layout, "blobs")) if n.startswith(".")]
        self.assertEqual(leftovers, [])

    def test_digestfile_names_what_the_destination_holds(self):
        out = os.path.join(self.tmp, "o")
        df = os.path.join(self.tmp, "digest")
        sconify("copy", "-q", "--digestfile", df, self.good(), f"oci:{out}:x", check=True)
        index = json.load(open(os.path.join(out, "index.json")))
        self.assertEqual(open(df).read(), index["manifests"][0]["digest"])

    def test_destination_in_missing_directory_fails_cleanly(self):
        path = os.path.join(self.tmp, "no", "such", "dir", "x.tar")
        p = sconify("copy", "-q", self.good(), f"oci-archive:{path}")
        self.assertFailsWith(p, ["No such file"], names=path)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "no")))


if __name__ == "__main__":
    harness.main()
