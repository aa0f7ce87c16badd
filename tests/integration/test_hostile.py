# SPDX-License-Identifier: Apache-2.0
"""Every hostile input of testdata/ (hostile/cases.json) ends with exit 1, one
error line naming the input and the problem, and nothing at the destination,
wherever it is read: inspect, a plain copy, a recompressing copy (which reads
layer contents) and the final-tree function."""

import os

import harness
from harness import sconify

LAYER_TREE = os.environ.get("SCONIFY_LAYER_TREE")


def other_compression(case):
    """A compression different from the layer's, so the copy must read it."""
    return "gzip" if case.get("compression") == "zstd" else "zstd"


class Hostile(harness.TestCase):
    def cases(self, *kinds):
        return [c for c in harness.hostile_cases() if c["kind"] in kinds]

    def check_copy(self, case, dest_kind, extra=()):
        ref = harness.absref(case["ref"])
        out = os.path.join(self.tmp, f"out-{dest_kind}")
        dest = {"oci": f"oci:{out}:x", "oci-archive": f"oci-archive:{out}.tar:x",
                "docker-archive": f"docker-archive:{out}.tar:x/y:z"}[dest_kind]
        p = sconify("copy", "-q", *extra, ref, dest)
        self.assertFailsWith(p, case["expect"])
        # The message names the input as the user wrote it.
        self.assertIn(ref.split(":", 2)[1], p.stderr_text)
        self.assertFalse(os.path.exists(out), f"{case['name']}: {out} left behind")
        self.assertFalse(os.path.exists(out + ".tar"), f"{case['name']}: {out}.tar left behind")
        leftovers = [n for n in os.listdir(self.tmp) if n.startswith(".")]
        self.assertEqual(leftovers, [], f"{case['name']}: temporary files left: {leftovers}")

    def test_documents_and_archives_fail_on_inspect(self):
        for case in self.cases("document", "archive"):
            if case.get("stage") != "inspect":
                continue
            with self.subTest(case=case["name"]):
                p = sconify("inspect", harness.absref(case["ref"]))
                self.assertFailsWith(p, case["expect"])
                self.assertEqual(p.stdout_text, "")

    def test_documents_and_archives_fail_on_copy_to_every_transport(self):
        for case in self.cases("document", "archive"):
            # A config whose diff_id lies is only seen when layers are read.
            extra = ("--dest-compress", "zstd") if case.get("stage") == "copy" else ()
            for dest in ("oci", "oci-archive", "docker-archive"):
                with self.subTest(case=case["name"], dest=dest):
                    self.check_copy(case, dest, extra)

    def test_layer_contents_fail_on_recompressing_copy(self):
        for case in self.cases("layer"):
            if case.get("tree_only") or case.get("limits"):
                continue
            for dest in ("oci", "oci-archive"):
                with self.subTest(case=case["name"], dest=dest):
                    self.check_copy(case, dest, ("--dest-compress", other_compression(case)))

    def test_layer_contents_fail_in_the_final_tree(self):
        self.assertTrue(LAYER_TREE, "SCONIFY_LAYER_TREE is not set")
        base = harness.fixtures()
        for case in self.cases("layer"):
            with self.subTest(case=case["name"]):
                args = [LAYER_TREE]
                if "max_entries" in case.get("limits", {}):
                    args += ["--max-entries", str(case["limits"]["max_entries"])]
                p = harness.run(args + [os.path.join(base, case["layer"])])
                self.assertEqual(p.returncode, 1, p.stderr_text)
                self.assertTrue(any(e in p.stderr_text for e in case["expect"]),
                                f"{case['expect']} not in {p.stderr_text}")
                self.assertEqual(p.stdout_text, "")

    def test_plain_copy_does_not_read_layer_contents(self):
        """A copy that keeps compression passes layers by digest: hostile
        contents go through untouched (they are data), digests still checked."""
        case = next(c for c in self.cases("layer") if c["name"] == "dotdot-path")
        out = os.path.join(self.tmp, "plain")
        p = sconify("copy", "-q", harness.absref(case["ref"]), f"oci:{out}:x")
        self.assertEqual(p.returncode, 0, p.stderr_text)


if __name__ == "__main__":
    harness.main()
