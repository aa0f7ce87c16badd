# SPDX-License-Identifier: Apache-2.0
"""Every fixture round-trips through `sconify copy` between all transports,
and an independent implementation (umoci, after skopeo where umoci cannot read
the transport or zstd) unpacks the result to the same tree as the input."""

import gzip
import json
import os

import harness
from harness import run, sconify

TRANSPORTS = ("oci", "oci-archive", "docker-archive")


def dest_ref(transport, path):
    return {"oci": f"oci:{path}:rt", "oci-archive": f"oci-archive:{path}.tar:rt",
            "docker-archive": f"docker-archive:{path}.tar:example.com/rt:1"}[transport]


class RoundTrip(harness.TestCase):
    _trees = {}

    def independent_tree(self, ref):
        """umoci's view of ref: skopeo makes a gzip OCI layout of it first
        (umoci reads neither archives nor zstd)."""
        work = os.path.join(self.tmp, f"u{len(os.listdir(self.tmp))}")
        os.makedirs(work)
        if ref.endswith(".tar.gz"):
            # skopeo 1.9.3 cannot read a compressed docker-archive: gunzip it for skopeo.
            plain = os.path.join(work, "plain.tar")
            with open(plain, "wb") as f:
                f.write(gzip.decompress(open(ref.split(":", 1)[1], "rb").read()))
            ref = f"docker-archive:{plain}"
        layout = harness.skopeo_to_gzip_oci(ref, work)
        t = harness.umoci_tree(f"{layout}", "x", work)
        run(["rm", "-rf", work], check=True)
        return t

    def test_fixture_model_agrees_with_umoci(self):
        """The fixtures' expected trees (testdata's own model of the layer
        rules) are what umoci unpacks from the inputs, so comparing our
        output with them compares it with umoci's view of the input. skopeo
        1.9.3 cannot read Docker-typed entries of an OCI index.json, so the
        docker-types fixtures are checked only through our conversion."""
        for fx in self.single_platform_fixtures():
            if fx["name"] in ("oci/docker-types",):
                continue
            with self.subTest(fixture=fx["name"]):
                self.assertEqual(self.independent_tree(harness.absref(fx["ref"])), harness.expected_tree(fx))

    def raw(self, ref, *extra):
        p = sconify("inspect", "--raw", *extra, ref, check=True)
        return p.stdout

    def selected(self, ref, platform):
        """The selected image's layers, and its digest unless a Docker
        manifest was converted to OCI on the way (which changes it)."""
        p = json.loads(sconify("inspect", "--platform", platform, ref, check=True).stdout)
        return p["Layers"], p["Digest"] if p["MediaType"].startswith("application/vnd.oci") else None

    def single_platform_fixtures(self):
        return [f for f in harness.fixture_list() if len(f["platforms"]) == 1]

    def test_every_fixture_through_every_transport_pair(self):
        for fx in self.single_platform_fixtures():
            src = harness.absref(fx["ref"])
            want = harness.expected_tree(fx)
            for t1 in TRANSPORTS:
                safe = fx["name"].replace("/", "_").replace(":", "_")
                mid = dest_ref(t1, os.path.join(self.tmp, f"{safe}-{t1}"))
                sconify("copy", "-q", src, mid, check=True)
                for t2 in TRANSPORTS:
                    if fx["name"] == "oci/large" and t2 != "oci":
                        continue  # the large image crosses every transport once, as t1
                    with self.subTest(fixture=fx["name"], via=t1, to=t2):
                        out = dest_ref(t2, os.path.join(self.tmp, f"back-{t2}"))
                        sconify("copy", "-q", mid, out, check=True)
                        self.assertEqual(self.independent_tree(out), want)
                        run(["rm", "-rf", os.path.join(self.tmp, f"back-{t2}"),
                             os.path.join(self.tmp, f"back-{t2}.tar")], check=True)

    def test_plain_copy_keeps_the_manifest_digest(self):
        for fx in harness.fixture_list():
            if not fx["ref"].startswith(("oci:", "oci-archive:")) or fx["name"] == "oci/docker-types" \
                    or fx["name"] == "oci/docker-list":
                continue
            src = harness.absref(fx["ref"])
            for t in ("oci", "oci-archive"):
                with self.subTest(fixture=fx["name"], to=t):
                    out = dest_ref(t, os.path.join(self.tmp, f"keep-{t}"))
                    sconify("copy", "-q", "--all", src, out, check=True)
                    self.assertEqual(self.raw(out), self.raw(src))
                    # and every blob is byte-identical, by digest
                    p = sconify("inspect", "--config", out, check=True)
                    self.assertEqual(p.stdout, sconify("inspect", "--config", src, check=True).stdout)

    def test_multi_platform_index_copies_whole_or_per_platform(self):
        for fx in harness.fixture_list():
            if len(fx["platforms"]) < 2:
                continue
            src = harness.absref(fx["ref"])
            out = os.path.join(self.tmp, "all")
            sconify("copy", "-q", "--all", src, f"oci:{out}:all", check=True)
            index = json.loads(self.raw(f"oci:{out}:all"))
            self.assertEqual(len(index["manifests"]), len(fx["platforms"]))
            for platform in fx["platforms"]:
                with self.subTest(fixture=fx["name"], platform=platform):
                    # --platform copies that image only; both routes agree with skopeo's view.
                    one = os.path.join(self.tmp, "one-" + platform.replace("/", "_"))
                    sconify("copy", "-q", "--platform", platform, src, f"docker-archive:{one}.tar", check=True)
                    p = run(["skopeo", "inspect", f"docker-archive:{one}.tar"], check=True)
                    arch = platform.split("/")[1]
                    self.assertEqual(json.loads(p.stdout)["Architecture"], arch)
                    # The index kept every image: the same manifest is selected from both.
                    copied, original = self.selected(f"oci:{out}:all", platform), self.selected(src, platform)
                    self.assertEqual(copied[0], original[0])
                    if original[1]:
                        self.assertEqual(copied[1], original[1])

    def test_docker_archive_cannot_take_a_whole_index(self):
        fx = next(f for f in harness.fixture_list() if len(f["platforms"]) > 1)
        out = os.path.join(self.tmp, "d.tar")
        p = sconify("copy", "--all", harness.absref(fx["ref"]), f"docker-archive:{out}")
        self.assertFailsWith(p, ["--platform"])
        self.assertFalse(os.path.exists(out))

    def test_docker_types_become_oci_with_the_same_content(self):
        fx = next(f for f in harness.fixture_list() if f["name"] == "oci/docker-types")
        src = harness.absref(fx["ref"])
        out = os.path.join(self.tmp, "conv")
        sconify("copy", "-q", src, f"oci:{out}:c", check=True)
        m = json.loads(self.raw(f"oci:{out}:c"))
        self.assertEqual(m["mediaType"], "application/vnd.oci.image.manifest.v1+json")
        self.assertEqual(m["config"]["mediaType"], "application/vnd.oci.image.config.v1+json")
        self.assertTrue(all(l["mediaType"].startswith("application/vnd.oci.image.layer.v1.tar")
                            for l in m["layers"]))
        orig = json.loads(self.raw(src))
        self.assertEqual([l["digest"] for l in m["layers"]], [l["digest"] for l in orig["layers"]])
        self.assertEqual(self.independent_tree(f"oci:{out}:c"), harness.expected_tree(fx))


if __name__ == "__main__":
    harness.main()
