# SPDX-License-Identifier: Apache-2.0
"""`sconify image` (issue 4): images built here with several layers (protected
files replaced, deleted and hidden in later layers), converted to OCI layouts
and registries, and the output read back with umoci and skopeo. The
guarantees checked: no plaintext window of any protected file in any blob,
the key in no blob or message, unprotected layers keep their digests,
reproducible runs repeat, failures leave no tag."""

import gzip
import json
import os
import re
import subprocess

import harness
import imagebuild as ib
from harness import sconify
from registryenv import FaultProxy, Registry

E = ib.Entry
RUNTIME = os.environ.get("SCONIFY_RUNTIME_BIN") or os.path.join(
    os.environ.get("SCONIFY_BUILD_ROOT", "build"), "enclave-runtime", "sconify-runtime")

# Made at test time, random: a window of them cannot occur anywhere by chance.
SECRET_A = b"alpha secret: " + os.urandom(3000)
SECRET_B = b"beta secret, replaced later by gamma: " + os.urandom(2100)
SECRET_C = b"gamma secret, the one that survives in /app/b: " + os.urandom(70000)
SECRET_D = b"delta secret, deleted by a whiteout: " + os.urandom(1500)
SECRET_E = b"epsilon secret, hidden by an opaque directory: " + os.urandom(1500)
CONFIG = b"authenticated: not secret but must not change\n" * 50


def base_layers():
    """Four layers: a tool layer, protected files, replacements and
    deletions, unprotected files."""
    l0 = ib.with_dirs([ib.host_file("/bin/busybox", "bin/busybox"), E("bin/sh", "symlink", target="busybox"),
                       E("bin/cat", "symlink", target="busybox"), E("etc/motd", data=b"hello\n")])
    l1 = ib.with_dirs([E("app/a.txt", data=SECRET_A), E("app/b.txt", data=SECRET_B),
                       E("app/d.txt", data=SECRET_D), E("app/hidden/e.txt", data=SECRET_E),
                       E("etc/app/conf.ini", data=CONFIG)])
    l2 = ib.with_dirs([E("app/b.txt", data=SECRET_C), E("app/.wh.d.txt"),
                       E("app/hidden/.wh..wh..opq")])
    l3 = ib.with_dirs([E("usr/share/doc/readme", data=b"plain documentation\n")])
    return [l0, l1, l2, l3]


def plaintexts():
    return [SECRET_A, SECRET_B, SECRET_C, SECRET_D, SECRET_E]


def blobs_of(layout):
    """Every blob of an OCI layout: (digest, raw bytes, decompressed bytes)."""
    out = []
    d = os.path.join(layout, "blobs", "sha256")
    for name in os.listdir(d):
        with open(os.path.join(d, name), "rb") as f:
            raw = f.read()
        plain = raw
        if raw[:2] == b"\x1f\x8b":
            plain = gzip.decompress(raw)
        elif raw[:4] == b"\x28\xb5\x2f\xfd":
            plain = subprocess.run(["zstd", "-dc"], input=raw, capture_output=True, check=True).stdout
        out.append(("sha256:" + name, raw, plain))
    return out


def windows(data, n=16, step=7):
    """16-byte windows of data (every 7th start, plus the end)."""
    starts = list(range(0, max(1, len(data) - n + 1), step)) + [max(0, len(data) - n)]
    return {data[i:i + n] for i in starts}


def manifest_and_config(layout, tag):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    desc = next(m for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    def blob(digest):
        with open(os.path.join(layout, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
            return json.load(f)
    m = blob(desc["digest"])
    return desc["digest"], m, blob(m["config"]["digest"])


class ImageTests(harness.TestCase):
    def build(self, layers=None, **kw):
        kw.setdefault("cmd", ["/bin/cat", "/app/a.txt"])
        return ib.write_image(os.path.join(self.tmp, "src"), layers or base_layers(), **kw)

    def convert(self, src, dest, *opts, check=True):
        p = sconify("image", "--from", src, "--to", dest, "--runtime", RUNTIME, "--mode", "sim",
                    "--output", "json", *opts)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr_text)
            return json.loads(p.stdout_text), p
        return None, p

    def test_no_plaintext_window_of_a_protected_file_survives_in_any_blob(self):
        src = self.build()
        out = os.path.join(self.tmp, "out")
        key_out = os.path.join(self.tmp, "vol.key")
        res, p = self.convert(src, f"oci:{out}:conf", "--dir", "/app", "--authenticated", "/etc/app",
                              "--key-out", key_out)
        img = res["images"][0]
        self.assertEqual(img["dropped_entries"], 3)  # the old b, d and e
        self.assertEqual({f["path"]: f["region"] for f in img["files"]},
                         {"/app/a.txt": "encrypted", "/app/b.txt": "encrypted",
                          "/etc/app/conf.ini": "authenticated"})
        wins = set()
        for s in plaintexts():
            wins |= windows(s)
        for digest, raw, plain in blobs_of(out):
            found = [w.hex() for w in wins if w in raw or w in plain]
            self.assertEqual(found, [], f"plaintext windows in blob {digest}")
        # The authenticated file is there, as it was.
        self.assertTrue(any(CONFIG in plain for _, _, plain in blobs_of(out)), "the authenticated file is gone")

    def test_the_key_is_in_no_blob_label_or_message(self):
        src = self.build()
        out = os.path.join(self.tmp, "out")
        key_out = os.path.join(self.tmp, "vol.key")
        session = os.path.join(self.tmp, "s.yml")
        res, p = self.convert(src, f"oci:{out}:conf", "--dir", "/app", "--key-out", key_out,
                              "--session-out", session, "--debug")
        with open(key_out) as f:
            key_hex = f.read().strip().split(":")[-1]
        key = bytes.fromhex(key_hex)
        self.assertEqual(os.stat(key_out).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(session).st_mode & 0o777, 0o600)
        for digest, raw, plain in blobs_of(out):
            for needle in (key, key_hex.encode(), key_hex.upper().encode()):
                self.assertFalse(needle in raw or needle in plain, f"the key is in blob {digest}")
        self.assertNotIn(key_hex, p.stdout_text + p.stderr_text)
        # the policy does carry it: that is what the CAS releases
        with open(session) as f:
            self.assertIn(key_hex, f.read())
        v = sconify("policy", "validate", session)
        self.assertEqual(v.returncode, 0, v.stdout_text + v.stderr_text)

    def test_unprotected_layers_keep_their_digests(self):
        src = self.build()
        out = os.path.join(self.tmp, "out")
        self.convert(src, f"oci:{out}:conf", "--dir", "/app")
        _, m_in, _ = manifest_and_config(os.path.join(self.tmp, "src"), "latest")
        _, m_out, cfg = manifest_and_config(out, "conf")
        ins = [l["digest"] for l in m_in["layers"]]
        outs = [l["digest"] for l in m_out["layers"]]
        self.assertEqual(len(outs), len(ins) + 1)
        self.assertEqual(outs[0], ins[0])   # the tool layer
        self.assertNotEqual(outs[1], ins[1])  # protected files
        self.assertNotEqual(outs[2], ins[2])  # replacements of protected files
        self.assertEqual(outs[3], ins[3])   # unprotected
        self.assertEqual(len(cfg["rootfs"]["diff_ids"]), len(outs))

    def test_config_moves_the_command_into_the_policy(self):
        src = self.build(env=["PATH=/bin", "APP_MODE=demo"], workdir="/app", entrypoint=["/bin/cat"],
                         cmd=["/app/a.txt"])
        out = os.path.join(self.tmp, "out")
        session = os.path.join(self.tmp, "s.yml")
        res, _ = self.convert(src, f"oci:{out}:conf", "--dir", "/app", "--name", "demo", "--namespace", "team",
                              "--cas", "cas.example:8081", "--no-upload", "--env", "EXTRA=1", "--session-out", session)
        _, _, cfg = manifest_and_config(out, "conf")
        c = cfg["config"]
        self.assertEqual(c["Entrypoint"], ["/.sconify/runtime"])
        self.assertNotIn("Cmd", c)
        self.assertEqual(sorted(c["Env"]), ["SCONE_CAS_ADDR=cas.example:8081", "SCONE_CONFIG_ID=team/demo/service",
                                            "SCONE_MEASUREMENT=" + res["images"][0]["measurement"],
                                            "SCONE_MODE=sim"])
        labels = c["Labels"]
        self.assertEqual(labels["org.opencontainers.image.base.name"], src)
        self.assertTrue(labels["org.opencontainers.image.base.digest"].startswith("sha256:"))
        self.assertEqual(labels["dev.sconify.measurement"], res["images"][0]["measurement"])
        self.assertEqual(cfg["history"][-1]["created_by"], "sconify image")
        with open(session) as f:
            text = f.read()
        for want in ("name: team/demo", "- /bin/cat", "- /app/a.txt", "APP_MODE: demo", "EXTRA:", "pwd: /app",
                     "mode: sim", res["images"][0]["measurement"]):
            self.assertIn(want, text)
        self.assertNotIn("APP_MODE", json.dumps(cfg))  # the environment is in the policy only

    def test_the_user_moves_from_the_config_into_the_policy(self):
        src = self.build(user="1000:1000")
        out = os.path.join(self.tmp, "out")
        session = os.path.join(self.tmp, "s.yml")
        self.convert(src, f"oci:{out}:u", "--session-out", session)
        _, _, cfg = manifest_and_config(out, "u")
        self.assertNotIn("User", cfg["config"])  # the runtime starts as root and switches
        with open(session) as f:
            text = f.read()
        self.assertRegex(text, r"\n +user: ['\"]?1000:1000['\"]?\n")
        # no User: no user in the policy
        src2 = ib.write_image(os.path.join(self.tmp, "src2"), base_layers(), cmd=["/bin/cat", "/app/a.txt"])
        session2 = os.path.join(self.tmp, "s2.yml")
        self.convert(src2, f"oci:{out}:n", "--session-out", session2)
        with open(session2) as f:
            self.assertNotIn("user:", f.read())
        # a User the runtime could not switch to stops the conversion
        src3 = ib.write_image(os.path.join(self.tmp, "src3"), base_layers(), cmd=["/bin/cat", "/app/a.txt"],
                              user="a b")
        _, p = self.convert(src3, f"oci:{out}:bad", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("User `a b'", p.stderr_text)

    def test_reproducible_runs_give_identical_digests(self):
        src = self.build()
        key = os.path.join(self.tmp, "vol.key")
        digests = []
        for i in range(2):
            out = os.path.join(self.tmp, f"out{i}")
            key_opts = ("--key-out", key) if i == 0 else ("--key-file", key)
            res, _ = self.convert(src, f"oci:{out}:conf", "--dir", "/app", "--authenticated", "/etc/app",
                                  "--reproducible", "--name", "same", *key_opts)
            digests.append(res["digest"])
        self.assertEqual(digests[0], digests[1])
        self.assertEqual(harness.snapshot(os.path.join(self.tmp, "out0", "blobs")),
                         harness.snapshot(os.path.join(self.tmp, "out1", "blobs")))
        # without --reproducible, the same key gives other ciphertext (random file ids)
        res, _ = self.convert(src, f"oci:{os.path.join(self.tmp, 'out2')}:conf", "--dir", "/app",
                              "--name", "same", "--key-file", key)
        self.assertNotEqual(res["digest"], digests[0])

    def test_umoci_and_skopeo_read_the_output_and_only_protected_contents_differ(self):
        src = self.build()
        out = os.path.join(self.tmp, "out")
        self.convert(src, f"oci:{out}:conf", "--dir", "/app")
        before = harness.umoci_tree(os.path.join(self.tmp, "src"), "latest", self.tmp)
        after = harness.umoci_tree(out, "conf", self.tmp)
        harness.run(["skopeo", "inspect", f"oci:{out}:conf"], check=True)
        harness.run(["skopeo", "copy", f"oci:{out}:conf", f"oci:{self.tmp}/via-skopeo:x"], check=True)
        added = {k for k in after if k.startswith(".sconify")}
        self.assertEqual(added, {".sconify", ".sconify/runtime", ".sconify/fspf"})
        for path in before:
            if path == "<hardlinks>":
                continue
            b, a = dict(before[path]), dict(after[path])
            if path in ("app/a.txt", "app/b.txt"):
                self.assertNotEqual(a.pop("sha256"), b.pop("sha256"), path)
            self.assertEqual(a, b, path)
        self.assertEqual(set(after) - added, set(before))

    def test_dry_run_plans_and_writes_nothing(self):
        src = self.build()
        out = os.path.join(self.tmp, "out")
        p = sconify("image", "--dry-run", "--from", src, "--to", f"oci:{out}:conf", "--dir", "/app",
                    "--key-out", os.path.join(self.tmp, "k"), "--session-out", os.path.join(self.tmp, "s"))
        self.assertEqual(p.returncode, 0, p.stderr_text)
        plan = json.loads(p.stdout_text)
        self.assertTrue(plan["dry_run"])
        self.assertEqual([l["action"] for l in plan["images"][0]["layers"]], ["pass", "rewrite", "rewrite", "pass"])
        self.assertEqual(plan["images"][0]["executable"], "/bin/busybox")
        self.assertEqual(sorted(os.listdir(self.tmp)), ["src"])

    def test_digest_file_is_written_before_the_tag_and_a_failure_moves_no_tag(self):
        src = self.build()
        out = os.path.join(self.tmp, "out")
        dfile = os.path.join(self.tmp, "digest")
        res, _ = self.convert(src, f"oci:{out}:conf", "--dir", "/app", "--digest-file", dfile)
        with open(dfile) as f:
            self.assertEqual(f.read(), res["digest"] + "\n")
        self.assertEqual(manifest_and_config(out, "conf")[0], res["digest"])
        # An unwritable digest file stops the conversion before the tag moves.
        _, p = self.convert(src, f"oci:{out}:other", "--dir", "/app", "--digest-file",
                            os.path.join(self.tmp, "missing", "digest"), check=False)
        self.assertFailsWith(p, ["--digest-file"])
        with open(os.path.join(out, "index.json")) as f:
            tags = [m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                    for m in json.load(f)["manifests"]]
        self.assertNotIn("other", tags)

    def test_no_region_gives_attestation_only(self):
        src = self.build()
        out = os.path.join(self.tmp, "out")
        res, _ = self.convert(src, f"oci:{out}:conf")
        img = res["images"][0]
        self.assertEqual(img["files"], [])
        self.assertEqual({l["action"] for l in img["layers"]}, {"pass"})
        after = harness.umoci_tree(out, "conf", self.tmp)
        self.assertIn(".sconify/runtime", after)
        self.assertNotIn(".sconify/fspf", after)

    def test_hard_link_between_regions_is_refused(self):
        layers = base_layers()
        layers.append(ib.with_dirs([E("app/key", data=b"k" * 64), E("tmp/key", "hardlink", target="app/key")]))
        src = self.build(layers)
        out = os.path.join(self.tmp, "out")
        _, p = self.convert(src, f"oci:{out}:conf", "--dir", "/app", check=False)
        self.assertFailsWith(p, ["hard link joins"], names="/app/key")
        self.assertFalse(os.path.exists(out))

    def test_missing_command_and_bad_options_fail_clearly(self):
        src = self.build(cmd=["/bin/nope"])
        out = os.path.join(self.tmp, "out")
        _, p = self.convert(src, f"oci:{out}:conf", "--dir", "/app", check=False)
        self.assertFailsWith(p, ["not in the image", "not found"], names="/bin/nope")
        _, p = self.convert(self.build(), f"oci:{out}:conf", "--dir", "app", check=False)
        self.assertFailsWith(p, ["--dir"])
        self.assertFalse(os.path.exists(out))

    def test_an_index_gives_an_index_with_one_runtime_per_platform(self):
        runtimes = os.path.join(self.tmp, "runtimes")
        os.makedirs(runtimes)
        with open(RUNTIME, "rb") as f:
            amd64 = f.read()
        # the arm64 runtime is not built here: any file shows which one each platform gets
        arm64 = b"stand-in for the arm64 runtime\n"
        for arch, data in (("amd64", amd64), ("arm64", arm64)):
            with open(os.path.join(runtimes, "sconify-runtime-" + arch), "wb") as f:
                f.write(data)
        layers = base_layers()
        src = ib.write_multi(os.path.join(self.tmp, "src"), [("amd64", layers), ("arm64", layers)],
                             cmd=["/bin/cat", "/app/a.txt"])
        out = os.path.join(self.tmp, "out")
        session = os.path.join(self.tmp, "s.yml")
        p = sconify("image", "--from", src, "--to", f"oci:{out}:conf", "--all", "--dir", "/app", "--mode", "sim",
                    "--runtime-dir", runtimes, "--session-out", session, "--output", "json")
        self.assertEqual(p.returncode, 0, p.stderr_text)
        res = json.loads(p.stdout_text)
        self.assertEqual([i["service"] for i in res["images"]], ["service-amd64", "service-arm64"])
        with open(os.path.join(out, "index.json")) as f:
            top = json.load(f)["manifests"][0]
        self.assertEqual(top["mediaType"], "application/vnd.oci.image.index.v1+json")
        with open(os.path.join(out, "blobs", "sha256", top["digest"][7:])) as f:
            index = json.load(f)
        self.assertEqual([m["platform"]["architecture"] for m in index["manifests"]], ["amd64", "arm64"])
        for m, want in zip(index["manifests"], (amd64, arm64)):
            with open(os.path.join(out, "blobs", "sha256", m["digest"][7:])) as f:
                last = json.load(f)["layers"][-1]
            with open(os.path.join(out, "blobs", "sha256", last["digest"][7:]), "rb") as f:
                self.assertIn(want, gzip.decompress(f.read()))
        with open(session) as f:
            text = f.read()
        self.assertIn("name: service-amd64", text)
        self.assertIn("name: service-arm64", text)

    def test_hostile_layers_stop_the_conversion_with_no_output(self):
        cases = [c for c in harness.hostile_cases() if c["kind"] == "layer" and not c.get("tree_only")
                 and not c.get("limits")][:12]
        self.assertTrue(cases)
        for case in cases:
            with self.subTest(case=case["name"]):
                out = os.path.join(self.tmp, "out-" + case["name"])
                p = sconify("image", "--from", harness.absref(case["ref"]), "--to", f"oci:{out}:x",
                            "--dir", "/", "--runtime", RUNTIME, "--mode", "sim", "--command", "/x")
                self.assertFailsWith(p, case["expect"])
                self.assertFalse(os.path.exists(out))

    def test_registry_to_registry_mounts_unprotected_layers_and_tags_last(self):
        src = self.build()
        with Registry(self.tmp) as reg:
            harness.run(["skopeo", "copy", "--dest-tls-verify=false", src, f"docker://{reg.host}/apps/web:1"],
                        check=True)
            dest = f"docker://{reg.host}/confidential/web:1"
            # a failure (no runtime) leaves no tag
            p = sconify("image", "--from", f"docker://{reg.host}/apps/web:1", "--to", dest, "--tls-verify=false",
                        "--dir", "/app", "--mode", "sim", "--runtime", os.path.join(self.tmp, "missing"))
            self.assertFailsWith(p, ["runtime"])
            tags = harness.run(["skopeo", "list-tags", "--tls-verify=false", f"docker://{reg.host}/confidential/web"])
            self.assertNotIn('"1"', tags.stdout_text)
            res, _ = self.convert(f"docker://{reg.host}/apps/web:1", dest, "--tls-verify=false", "--dir", "/app")
            got = harness.run(["skopeo", "inspect", "--tls-verify=false", dest], check=True)
            self.assertEqual(json.loads(got.stdout_text)["Digest"], res["digest"])
            pulled = os.path.join(self.tmp, "pulled")
            harness.run(["skopeo", "copy", "--src-tls-verify=false", dest, f"oci:{pulled}:x"], check=True)
            tree = harness.umoci_tree(pulled, "x", self.tmp)
            self.assertIn(".sconify/runtime", tree)

    def test_between_registries_layers_that_pass_are_read_once_and_nothing_protected_is_sent_early(self):
        # Pass 1 uploads each layer while it reads it. The layer holding the
        # protected file starts with more unprotected data than an upload
        # chunk (8 MiB), so its upload is under way when the planner meets
        # /app/secret.bin: the registry must get no byte of it, and the
        # upload must be deleted.
        secret = b"sent-early secret: " + os.urandom(1 << 20)  # random: stored as is by gzip
        passed = os.urandom(3 << 20)
        # every layer above 1 MiB: smaller ones go in one request in pass 2
        layers = [base_layers()[0] + ib.with_dirs([E("usr/lib/big0.bin", data=os.urandom(2 << 20))]),
                  ib.with_dirs([E("srv/pub/before.bin", data=os.urandom(10 << 20)), E("app/secret.bin", data=secret),
                                E("srv/pub/after.bin", data=os.urandom(8 << 20))]),
                  ib.with_dirs([E("usr/share/big.bin", data=passed)])]
        # busybox by its own name: pass 1 hashes it, so its layer is not read again
        src = self.build(layers, cmd=["/bin/busybox", "cat", "/app/secret.bin"])
        with Registry(self.tmp) as reg_a, Registry(self.tmp) as reg_b:
            harness.run(["skopeo", "copy", "--dest-tls-verify=false", src, f"docker://{reg_a.host}/apps/web:1"],
                        check=True)
            man = json.loads(harness.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                          f"docker://{reg_a.host}/apps/web:1"], check=True).stdout_text)
            layer_digests = [layer["digest"] for layer in man["layers"]]
            proxy_a, proxy_b = FaultProxy(reg_a.host), FaultProxy(reg_b.host, keep_bodies=True)
            try:
                res, _ = self.convert(f"docker://{proxy_a.host}/apps/web:1", f"docker://{proxy_b.host}/conf/web:1",
                                      "--tls-verify=false", "--dir", "/app")
            finally:
                proxy_a.stop()
                proxy_b.stop()
            # Layers that pass through were read once, in pass 1; the one
            # rewritten twice (the count means what it says).
            gets = {d: len(proxy_a.find("GET", f"^/v2/apps/web/blobs/{d}$")) for d in layer_digests}
            self.assertEqual(gets, {d: 2 if i == 1 else 1 for i, d in enumerate(layer_digests)})
            # The upload of the protected layer sent data, then was cancelled
            # and its data deleted (docker-registry keeps an empty hash state).
            def uploads(method):
                return {r["path"] for r in proxy_b.find(method, r"^/v2/conf/web/blobs/uploads/[0-9a-f-]{36}$")}
            self.assertTrue(uploads("PATCH") & uploads("DELETE"), "no upload was sent to and cancelled")
            left = os.path.join(reg_b.storage_dir, "docker", "registry", "v2", "repositories", "conf", "web",
                                "_uploads")
            kept = [os.path.relpath(os.path.join(d, f), left) for d, _, fs in os.walk(left) for f in fs
                    if f in ("data", "startedat")]
            self.assertEqual(kept, [])
            # No window of the protected file went to the destination. gzip
            # keeps random data as it is, in stored blocks of up to 64 KiB:
            # a window every 2 KiB finds any piece of them that got out.
            wins = windows(secret, step=2048)
            # (the bodies are there: the passed layer's data is found in them)
            self.assertTrue(any(passed[1 << 20:(1 << 20) + 16] in r["body"] for r in proxy_b.requests))
            for r in proxy_b.requests:
                found = [w.hex() for w in wins if w in r["body"]]
                self.assertEqual(found, [], f"plaintext windows sent to the destination ({r['method']} {r['path']})")
            # And the result is whole: every layer is there, the passed ones unchanged.
            got = json.loads(harness.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                          f"docker://{reg_b.host}/conf/web:1"], check=True).stdout_text)
            out = [layer["digest"] for layer in got["layers"]]
            self.assertEqual(len(out), len(layer_digests) + 1)
            self.assertEqual([d for i, d in enumerate(out[:-1]) if i != 1],
                             [d for i, d in enumerate(layer_digests) if i != 1])
            self.assertNotEqual(out[1], layer_digests[1])
            self.assertEqual(res["digest"], json.loads(harness.run(
                ["skopeo", "inspect", "--tls-verify=false", f"docker://{reg_b.host}/conf/web:1"],
                check=True).stdout_text)["Digest"])
            pulled = os.path.join(self.tmp, "pulled")
            harness.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{reg_b.host}/conf/web:1",
                         f"oci:{pulled}:x"], check=True)
            for digest, raw, plain in blobs_of(pulled):
                self.assertFalse([w for w in wins if w in raw or w in plain], f"plaintext in blob {digest}")

    def test_an_upload_during_pass_1_the_registry_refuses_leaves_the_layer_to_pass_2(self):
        # The first chunk sent during pass 1 gets a 500: that upload is
        # dropped, the layer is copied in pass 2, and the result is whole.
        layers = [base_layers()[0] + ib.with_dirs([E("usr/lib/big0.bin", data=os.urandom(3 << 20))]),
                  ib.with_dirs([E("app/secret.bin", data=SECRET_A)]),
                  ib.with_dirs([E("usr/share/big.bin", data=os.urandom(3 << 20))])]
        src = self.build(layers, cmd=["/bin/busybox", "cat", "/app/secret.bin"])
        with Registry(self.tmp) as reg_a, Registry(self.tmp) as reg_b:
            harness.run(["skopeo", "copy", "--dest-tls-verify=false", src, f"docker://{reg_a.host}/apps/web:1"],
                        check=True)
            proxy_b = FaultProxy(reg_b.host)
            refused = proxy_b.fail("PATCH", r"/blobs/uploads/", status=500, times=1)
            try:
                res, _ = self.convert(f"docker://{reg_a.host}/apps/web:1", f"docker://{proxy_b.host}/conf/web:1",
                                      "--tls-verify=false", "--dir", "/app")
            finally:
                proxy_b.stop()
            self.assertEqual(refused.hits, 1)
            # the refused chunk was a pass-1 upload's: that one was cancelled
            first = next(r for r in proxy_b.requests if r["method"] == "PATCH")
            self.assertEqual(first["status"], 500)
            self.assertTrue(proxy_b.find("DELETE", "^" + re.escape(first["path"]) + "$"), "the upload was not cancelled")
            dest = f"docker://{reg_b.host}/conf/web:1"
            got = json.loads(harness.run(["skopeo", "inspect", "--tls-verify=false", dest], check=True).stdout_text)
            self.assertEqual(got["Digest"], res["digest"])
            pulled = os.path.join(self.tmp, "pulled")
            harness.run(["skopeo", "copy", "--src-tls-verify=false", dest, f"oci:{pulled}:x"], check=True)
            self.assertIn(".sconify/runtime", harness.umoci_tree(pulled, "x", self.tmp))

    def test_sign_key_signs_the_result(self):
        src = self.build()
        keys = os.path.join(self.tmp, "keys")
        os.makedirs(keys)
        env = dict(os.environ, COSIGN_PASSWORD="pw")
        harness.run([harness.SCONIFY, "keygen", "--prefix", os.path.join(keys, "c")], check=True, env=env)
        with Registry(self.tmp) as reg:
            dest = f"docker://{reg.host}/signed/app:1"
            p = harness.run([harness.SCONIFY, "image", "--from", src, "--to", dest, "--tls-verify=false", "--dir",
                             "/app", "--mode", "sim", "--runtime", RUNTIME, "--sign-key",
                             os.path.join(keys, "c.key"), "--output", "json"], env=env)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertTrue(json.loads(p.stdout_text)["signatures"])
            v = sconify("verify", "--tls-verify=false", "--key", os.path.join(keys, "c.pub"), dest)
            self.assertEqual(v.returncode, 0, v.stderr_text)
            # a wrong password stops the run before anything is pushed
            bad = dict(env, COSIGN_PASSWORD="wrong")
            p = harness.run([harness.SCONIFY, "image", "--from", src, "--to", f"docker://{reg.host}/signed/other:1",
                             "--tls-verify=false", "--dir", "/app", "--mode", "sim", "--runtime", RUNTIME,
                             "--sign-key", os.path.join(keys, "c.key")], env=bad)
            self.assertFailsWith(p, ["wrong password"])
            tags = harness.run(["skopeo", "list-tags", "--tls-verify=false", f"docker://{reg.host}/signed/other"])
            self.assertNotIn('"1"', tags.stdout_text)


if __name__ == "__main__":
    harness.main()
