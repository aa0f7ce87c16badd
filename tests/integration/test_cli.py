# SPDX-License-Identifier: Apache-2.0
"""The command line contract: help, version, exit codes, one error line."""

import os

import harness
from harness import sconify


class Cli(harness.TestCase):
    def test_help_for_every_command_exits_zero(self):
        for args in (["--help"], ["copy", "--help"], ["inspect", "--help"]):
            p = sconify(*args)
            self.assertEqual(p.returncode, 0, args)
            self.assertIn("Usage: sconify", p.stdout_text)

    def test_version_prints_the_version(self):
        p = sconify("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout_text, r"^sconify \d+\.\d+\.\d+\n$")

    def test_usage_errors_exit_two(self):
        for args in ([], ["frobnicate"], ["copy"], ["copy", "oci:a"], ["copy", "--bogus", "oci:a", "oci:b"],
                     ["copy", "--dest-compress", "lz4", "oci:a", "oci:b"],
                     ["copy", "--all", "--platform", "linux/amd64", "oci:a", "oci:b"],
                     ["copy", "--jobs", "0", "oci:a", "oci:b"], ["inspect"],
                     ["inspect", "--raw", "--config", "oci:a"]):
            p = sconify(*args)
            self.assertEqual(p.returncode, 2, f"{args}: {p.stderr_text}")
            self.assertIn("sconify", p.stderr_text)

    def test_bad_reference_fails_once_naming_it(self):
        p = sconify("inspect", "oci:")
        self.assertFailsWith(p, ["no path given"], names="oci:")
        p = sconify("inspect", "dir:/tmp/x")
        self.assertFailsWith(p, ["not supported"], names="dir:/tmp/x")
        p = sconify("inspect", "oci:/tmp/x:bad ref")
        self.assertFailsWith(p, ["invalid image name"], names="bad ref")

    def test_missing_source_is_named(self):
        missing = os.path.join(self.tmp, "nope")
        p = sconify("copy", f"oci:{missing}", f"oci:{self.tmp}/out")
        self.assertFailsWith(p, ["No such file", "not found"], names=missing)
        self.assertFalse(os.path.exists(f"{self.tmp}/out"))

    def test_destination_that_is_a_foreign_directory_is_refused(self):
        foreign = os.path.join(self.tmp, "foreign")
        os.makedirs(foreign)
        with open(os.path.join(foreign, "precious.txt"), "w") as f:
            f.write("keep me")
        src = os.path.join(harness.fixtures(), "oci", "layers")
        p = sconify("copy", f"oci:{src}:latest", f"oci:{foreign}")
        self.assertFailsWith(p, ["not an OCI layout"], names=foreign)
        self.assertEqual(os.listdir(foreign), ["precious.txt"])


if __name__ == "__main__":
    harness.main()
