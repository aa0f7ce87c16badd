# SPDX-License-Identifier: Apache-2.0
"""Independent tools agree with us: skopeo reads what we write and reports
what we report; recompressed images unpack (umoci) to the same tree with the
same diff_ids; our docker-archive reading agrees with skopeo's; reruns give
the same digests."""

import json
import os

import harness
from harness import run, sconify


class Interop(harness.TestCase):
    def fx(self, name):
        return next(f for f in harness.fixture_list() if f["name"] == name)

    def test_skopeo_inspect_agrees_with_ours(self):
        for fx in harness.fixture_list():
            if fx["name"] in ("oci/docker-types", "oci/docker-list", "docker/outer"):
                continue  # skopeo 1.9.3 cannot read these (see testdata/README.md)
            src = harness.absref(fx["ref"])
            for t in ("oci", "oci-archive", "docker-archive"):
                with self.subTest(fixture=fx["name"], transport=t):
                    out = os.path.join(self.tmp, f"i-{t}")
                    dest = {"oci": f"oci:{out}:x", "oci-archive": f"oci-archive:{out}.tar:x",
                            "docker-archive": f"docker-archive:{out}.tar:example.com/i:1"}[t]
                    sconify("copy", "-q", src, dest, check=True)
                    ours = json.loads(sconify("inspect", dest, check=True).stdout)
                    theirs = json.loads(run(["skopeo", "inspect", dest], check=True).stdout)
                    for key in ("Architecture", "Os", "Env", "Labels"):
                        self.assertEqual(ours[key], theirs[key], key)
                    if t == "docker-archive":
                        # skopeo describes docker-archive layers uncompressed (it
                        # decompresses them when read): its layers are our diff_ids.
                        self.assertEqual(ours["DiffIDs"], theirs["Layers"])
                        # and it finds the image by the tag we wrote
                        run(["skopeo", "inspect", f"{dest.rsplit(':', 2)[0]}:example.com/i:1"], check=True)
                    else:
                        self.assertEqual(ours["Digest"], theirs["Digest"])
                        self.assertEqual(ours["Layers"], theirs["Layers"])
                    run(["rm", "-rf", out, out + ".tar"], check=True)

    def test_recompression_keeps_tree_and_diff_ids(self):
        fx = self.fx("oci/layers")
        src = harness.absref(fx["ref"])
        config = json.loads(sconify("inspect", "--config", src, check=True).stdout)
        for fmt in ("gzip", "zstd", "none"):
            with self.subTest(compression=fmt):
                out = os.path.join(self.tmp, fmt)
                sconify("copy", "-q", "--dest-compress", fmt, src, f"oci:{out}:x", check=True)
                m = json.loads(sconify("inspect", "--raw", f"oci:{out}:x", check=True).stdout)
                suffix = {"gzip": "+gzip", "zstd": "+zstd", "none": ""}[fmt]
                for layer in m["layers"]:
                    self.assertEqual(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar" + suffix)
                # the config (and so its diff_ids) is untouched
                self.assertEqual(json.loads(sconify("inspect", "--config", f"oci:{out}:x").stdout), config)
                # skopeo verifies every blob of it while copying; umoci unpacks it
                work = os.path.join(self.tmp, f"w-{fmt}")
                os.makedirs(work)
                gz = harness.skopeo_to_gzip_oci(f"oci:{out}:x", work)
                self.assertEqual(harness.umoci_tree(gz, "x", work), harness.expected_tree(fx))
                if fmt != "zstd":  # umoci reads gzip and plain layers directly
                    self.assertEqual(harness.umoci_tree(out, "x", work), harness.expected_tree(fx))

    def test_recompressed_output_is_reproducible(self):
        src = harness.absref(self.fx("oci/layers")["ref"])
        for fmt in ("gzip", "zstd"):
            with self.subTest(compression=fmt):
                digests = []
                for i, jobs in enumerate(("1", "2")):
                    out = os.path.join(self.tmp, f"r-{fmt}-{i}")
                    sconify("copy", "-q", "--jobs", jobs, "--dest-compress", fmt, src, f"oci:{out}:x",
                            check=True)
                    digests.append(json.loads(sconify("inspect", f"oci:{out}:x", check=True).stdout)["Digest"])
                self.assertEqual(digests[0], digests[1])

    def test_docker_archive_reading_agrees_with_skopeo(self):
        for fx in harness.fixture_list():
            if not fx["ref"].startswith("docker-archive:") or fx["name"] == "docker/outer":
                continue
            with self.subTest(fixture=fx["name"]):
                src = harness.absref(fx["ref"])
                ours = os.path.join(self.tmp, "ours-" + fx["name"].replace("/", "_").replace(":", "_"))
                sconify("copy", "-q", src, f"oci:{ours}:x", check=True)
                work = os.path.join(self.tmp, "w-" + os.path.basename(ours))
                os.makedirs(work)
                theirs = harness.skopeo_to_gzip_oci(src, work)
                self.assertEqual(harness.umoci_tree(ours, "x", work), harness.umoci_tree(theirs, "x", work))
                ours_cfg = sconify("inspect", "--config", f"oci:{ours}:x", check=True).stdout
                theirs_cfg = json.loads(run(["skopeo", "inspect", "--config", src], check=True).stdout)
                self.assertEqual(json.loads(ours_cfg)["rootfs"], theirs_cfg["rootfs"])

    def test_skopeo_round_trips_our_archives(self):
        src = harness.absref(self.fx("oci/layers")["ref"])
        for t in ("oci-archive", "docker-archive"):
            with self.subTest(transport=t):
                ours = os.path.join(self.tmp, f"{t}.tar")
                sconify("copy", "-q", src, f"{t}:{ours}", check=True)
                back = os.path.join(self.tmp, f"back-{t}")
                run(["skopeo", "copy", "--quiet", f"{t}:{ours}", f"oci:{back}:x"], check=True)
                work = os.path.join(self.tmp, f"wb-{t}")
                os.makedirs(work)
                gz = harness.skopeo_to_gzip_oci(f"oci:{back}:x", work)
                self.assertEqual(harness.umoci_tree(gz, "x", work), harness.expected_tree(self.fx("oci/layers")))


if __name__ == "__main__":
    harness.main()
