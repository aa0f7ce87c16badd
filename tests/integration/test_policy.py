# SPDX-License-Identifier: Apache-2.0
"""`sconify policy`: validate prints one line per problem with its line and
field and exits 1, or "FILE: valid" and exits 0; hash and format work on the
templates; secrets never reach the output of a failed check."""

import hashlib
import os

import harness
from harness import sconify

H64 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
KEY = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7"
POLICIES = os.path.join(harness.SOURCE_ROOT, "policies")

GOOD = f"""\
name: ns/app
version: "0.3"
services:
  - name: app
    command: /bin/app --flag
    environment:
      TOKEN: $$SCONE::token$$
    measurements: [{H64}]
secrets:
  - name: token
    kind: ascii
    size: 16
security:
  attestation:
    mode: sim
"""

BAD = f"""\
name: ns/app
version: "0.3"
colour: blue
services:
  - name: app
    command: [/bin/app]
    environment:
      TOKEN: $$SCONE::nope$$
    pwd: relative
    fspf_path: /fspf
    fspf_key: {KEY}0
    fspf_tag: {H64}
    measurements: [{H64}]
secrets:
  - name: pw
    kind: ascii
    value: "hunter2-is-secret\\x01"
security:
  attestation:
    mode: tdx
"""


class Policy(harness.TestCase):
    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_templates_validate(self):
        files = sorted(os.path.join(POLICIES, f) for f in os.listdir(POLICIES) if f.endswith(".yml"))
        self.assertGreaterEqual(len(files), 2)
        p = sconify("policy", "validate", *files)
        self.assertEqual(p.returncode, 0, p.stdout_text + p.stderr_text)
        self.assertEqual(p.stdout_text.splitlines(), [f"{f}: valid" for f in files])
        self.assertEqual(p.stderr_text, "")

    def test_good_file_prints_valid_and_exits_zero(self):
        path = self.write("good.yml", GOOD)
        p = sconify("policy", "validate", path)
        self.assertEqual(p.returncode, 0, p.stderr_text)
        self.assertEqual(p.stdout_text, f"{path}: valid\n")

    def test_bad_file_prints_every_problem_with_line_and_field(self):
        path = self.write("bad.yml", BAD)
        p = sconify("policy", "validate", path)
        self.assertEqual(p.returncode, 1)
        lines = p.stdout_text.splitlines()
        want = [
            f"{path}:3: unknown field `colour'",
            f"{path}:8: services[0].environment.TOKEN: reference to unknown secret `nope'",
            f"{path}:9: services[0].pwd: `relative' is not an absolute path",
            f"{path}:11: services[0].fspf_key: not 64 lowercase hex digits",
            f"{path}:17: secrets[0].value: not printable ASCII",
            f"{path}:20: security.attestation.mode: unsupported mode `tdx'",
        ]
        self.assertEqual(len(lines), len(want), p.stdout_text)
        for line, prefix in zip(lines, want):
            self.assertTrue(line.startswith(prefix), f"{line!r} does not start with {prefix!r}")
        out = p.stdout_text + p.stderr_text
        self.assertNotIn("hunter2", out)
        self.assertNotIn(KEY[:16], out)

    def test_several_files_exit_one_when_any_is_bad(self):
        good = self.write("good.yml", GOOD)
        bad = self.write("bad.yml", "name: x\nversion: \"0.3\"\nx: &a 1\n")
        p = sconify("policy", "validate", good, bad)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout_text.splitlines(),
                         [f"{good}: valid", f"{bad}:3: YAML anchors and aliases are not allowed"])

    def test_hostile_yaml_is_refused(self):
        cases = {
            "laughs.yml": ("a: &a [lol, lol, lol]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
                           ":1: YAML anchors and aliases are not allowed"),
            "tag.yml": ("name: !!python/object:os.system x\n", ":1: YAML tags are not allowed"),
            "dup.yml": ("name: a\nversion: \"0.3\"\nname: b\n", ":3: duplicate key `name'"),
            "deep.yml": ("a: " + "[" * 50 + "]" * 50 + "\n", ":1: nested deeper than"),
            "two.yml": ("name: a\n---\nname: b\n", ":2: more than one YAML document"),
        }
        for name, (text, phrase) in cases.items():
            path = self.write(name, text)
            p = sconify("policy", "validate", path)
            self.assertEqual(p.returncode, 1, name)
            lines = p.stdout_text.splitlines()
            self.assertEqual(len(lines), 1, f"{name}: {p.stdout_text}")
            self.assertTrue(lines[0].startswith(f"{path}{phrase}"), f"{name}: {lines[0]}")

    def test_missing_or_huge_file_fails_once(self):
        p = sconify("policy", "validate", os.path.join(self.tmp, "nope.yml"))
        self.assertFailsWith(p, ["No such file"], names="nope.yml")
        big = os.path.join(self.tmp, "big.yml")
        with open(big, "w") as f:
            f.write("#" * (4 << 20) + "\n")
        p = sconify("policy", "validate", big)
        self.assertFailsWith(p, ["larger than"], names="big.yml")

    def test_usage_errors_exit_two(self):
        for args in (["policy"], ["policy", "frobnicate", "x"], ["policy", "validate"], ["policy", "hash"],
                     ["policy", "hash", "a", "b"], ["policy", "--bogus"]):
            p = sconify(*args)
            self.assertEqual(p.returncode, 2, f"{args}: {p.stderr_text}")
        p = sconify("policy", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("Usage: sconify policy", p.stdout_text)

    def test_hash_is_sha256_of_the_canonical_form(self):
        path = self.write("good.yml", GOOD)
        f = sconify("policy", "format", path, check=True)
        h = sconify("policy", "hash", path, check=True)
        self.assertEqual(h.stdout_text, hashlib.sha256(f.stdout).hexdigest() + "\n")
        # the canonical form is a fixed point and validates
        canon = self.write("canon.yml", f.stdout_text)
        self.assertEqual(sconify("policy", "format", canon, check=True).stdout, f.stdout)
        self.assertEqual(sconify("policy", "hash", canon, check=True).stdout, h.stdout)
        self.assertIn("- /bin/app\n  - \"--flag\"\n", f.stdout_text)

    def test_hash_of_invalid_policy_fails_with_the_first_problem(self):
        path = self.write("bad.yml", BAD)
        p = sconify("policy", "hash", path)
        self.assertFailsWith(p, [f"{path}:3: unknown field `colour' (and 5 more problems)"])
        self.assertNotIn("hunter2", p.stderr_text)


if __name__ == "__main__":
    harness.main()
