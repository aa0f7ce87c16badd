# SPDX-License-Identifier: Apache-2.0
"""docker:// against the CNCF registry on loopback (tests/integration/
registryenv.py): plain, Basic (htpasswd), Bearer tokens, TLS; through a
fault-injecting proxy; cross-checked with skopeo and umoci."""

import base64
import json
import os
import pty
import subprocess

import harness
from harness import run, sconify
from registryenv import FaultProxy, Registry, credential_helper, docker_config

INSECURE = ("--src-tls-verify=false", "--dest-tls-verify=false")
FAST = {"SCONIFY_RETRY_BASE_MS": "50", "SCONIFY_STALL_TIMEOUT_MS": "2000"}


def fixture(name):
    fx = next(f for f in harness.fixture_list() if f["name"] == name)
    return fx, harness.absref(fx["ref"])


def sconify_env(*args, env=None, check=False):
    e = dict(os.environ)
    e.update(FAST)
    e.update(env or {})
    return run([harness.SCONIFY, *args], env=e, check=check)


def scopes(rec):
    """The scopes a token request asked for, as strings."""
    return rec["query"].get("scope", []) or (rec.get("form") or {}).get("scope", "").split()


def skopeo(*args, check=True):
    return run(["skopeo", *args], check=check)


class RegistryTests(harness.TestCase):
    def raw(self, ref, *opts):
        return sconify("inspect", "--raw", *opts, ref, check=True).stdout

    def umoci_of(self, ref, *skopeo_opts):
        work = os.path.join(self.tmp, f"u{len(os.listdir(self.tmp))}")
        os.makedirs(work)
        layout = os.path.join(work, "gz")
        skopeo("copy", "--quiet", *skopeo_opts, "--dest-compress", "--dest-compress-format", "gzip", ref,
               f"oci:{layout}:x")
        return harness.umoci_tree(layout, "x", work)

    # ---- plain registry ----

    def test_push_then_skopeo_pulls_the_same_digests_and_tree(self):
        fx, src = fixture("oci/layers")
        with Registry(self.tmp) as reg:
            dest = f"docker://{reg.host}/t/layers:v1"
            sconify("copy", "-q", *INSECURE, src, dest, check=True)
            theirs = skopeo("inspect", "--raw", "--tls-verify=false", dest).stdout
            self.assertEqual(theirs, self.raw(src))
            self.assertEqual(self.umoci_of(dest, "--src-tls-verify=false"), harness.expected_tree(fx))

    def test_skopeo_pushes_then_we_pull_identical_bytes(self):
        fx, src = fixture("oci/layers")
        with Registry(self.tmp) as reg:
            ref = f"docker://{reg.host}/s/layers:v1"
            skopeo("copy", "--quiet", "--dest-tls-verify=false", src, ref)
            out = os.path.join(self.tmp, "pulled")
            sconify("copy", "-q", *INSECURE, ref, f"oci:{out}:x", check=True)
            self.assertEqual(self.raw(f"oci:{out}:x"), skopeo("inspect", "--raw", "--tls-verify=false", ref).stdout)
            self.assertEqual(self.umoci_of(f"oci:{out}:x"), harness.expected_tree(fx))
            ours = json.loads(sconify("inspect", "--tls-verify=false", ref, check=True).stdout)
            theirs = json.loads(skopeo("inspect", "--tls-verify=false", ref).stdout)
            for key in ("Digest", "Layers", "Architecture", "Os", "Env", "Labels"):
                self.assertEqual(ours[key], theirs[key], key)

    def test_two_platform_index_pushed_and_pulled_whole(self):
        _, src = fixture("oci/multiarch")
        with Registry(self.tmp) as reg:
            ref = f"docker://{reg.host}/multi/app:all"
            sconify("copy", "-q", "--all", *INSECURE, src, ref, check=True)
            self.assertEqual(skopeo("inspect", "--raw", "--tls-verify=false", ref).stdout, self.raw(src))
            for platform in ("linux/amd64", "linux/arm64"):
                p = skopeo("inspect", "--tls-verify=false", "--override-arch", platform.split("/")[1], ref)
                self.assertEqual(json.loads(p.stdout)["Architecture"], platform.split("/")[1])
            out = os.path.join(self.tmp, "back")
            sconify("copy", "-q", "--all", *INSECURE, ref, f"oci:{out}:all", check=True)
            self.assertEqual(self.raw(f"oci:{out}:all"), self.raw(src))

    def test_lying_content_digest_header_is_refused(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            sconify("copy", "-q", *INSECURE, src, f"docker://{reg.host}/lie/app:1", check=True)
            proxy.set_header("GET", r"/manifests/", "Docker-Content-Digest", "sha256:" + "0" * 64)
            p = sconify_env("inspect", "--tls-verify=false", f"docker://{proxy.host}/lie/app:1")
            self.assertFailsWith(p, ["digest mismatch"], names="lie/app")

    def test_relative_upload_locations_are_followed(self):
        _, src = fixture("oci/large")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            proxy.add_rule("relative_location", None, r"/blobs/uploads/", None)
            p = sconify_env("copy", "-q", *INSECURE, src, f"docker://{proxy.host}/rel/app:1")
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertTrue(proxy.find("PATCH"))
            self.assertEqual(self.raw(f"docker://{reg.host}/rel/app:1", "--tls-verify=false"), self.raw(src))

    def test_refused_mount_falls_back_to_upload(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            sconify("copy", "-q", *INSECURE, src, f"docker://{reg.host}/m1/app:1", check=True)
            # the registry answers mounts with 202: "upload it instead"
            mounts = proxy.fail("POST", r"/blobs/uploads/\?mount=", status=202, times=None)
            p = sconify_env("copy", "-q", *INSECURE, f"docker://{proxy.host}/m1/app:1",
                            f"docker://{proxy.host}/m2/app:1")
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertEqual(mounts.hits, 3)
            uploads = [r for r in proxy.find("POST", r"/m2/app/blobs/uploads/$") if "mount=" not in r["query"]]
            self.assertEqual(len(uploads), 4)  # 3 layers + the config
            self.assertEqual(self.raw(f"docker://{reg.host}/m2/app:1", "--tls-verify=false"), self.raw(src))

    def test_proxy_from_the_environment(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            sconify("copy", "-q", *INSECURE, src, f"docker://{reg.host}/px/app:1", check=True)
            # nothing listens on port 1: only the proxy (which forwards to the
            # registry whatever host was asked for) makes this work
            p = sconify_env("inspect", "--tls-verify=false", "docker://127.0.0.1:1/px/app:1",
                            env={"http_proxy": f"http://{proxy.host}", "no_proxy": ""})
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertTrue(proxy.find("GET", r"/manifests/1$"))

    def test_token_answers_with_either_field(self):
        _, src = fixture("oci/layers")
        for answer in ("token", "access_token"):
            with self.subTest(answer=answer), Registry(self.tmp, auth="token", users={"bob": "pa55"},
                                                       token_options={"answer": answer}) as reg:
                p = sconify("copy", "-q", *INSECURE, "--dest-creds", "bob:pa55", src,
                            f"docker://{reg.host}/bob/app:1")
                self.assertEqual(p.returncode, 0, p.stderr_text)

    def test_warm_copy_skips_existing_blobs_and_same_registry_mounts(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            a = f"docker://{proxy.host}/a/app:1"
            sconify_env("copy", "-q", *INSECURE, src, a, check=True)
            uploads = len(proxy.find("POST", r"/blobs/uploads/$"))
            # warm: everything is there, nothing is uploaded again
            sconify_env("copy", "-q", *INSECURE, src, f"docker://{proxy.host}/a/app:2", check=True)
            self.assertEqual(len(proxy.find("POST", r"/blobs/uploads/$")), uploads)
            self.assertEqual(len(proxy.find("PATCH")), 0 if uploads else 0)
            # another repository of the same registry: layers are mounted
            sconify_env("copy", "-q", *INSECURE, a, f"docker://{proxy.host}/b/app:1", check=True)
            mounts = [r for r in proxy.find("POST", r"/v2/b/app/blobs/uploads/") if "mount=" in r["query"]]
            self.assertEqual(len(mounts), 3)
            self.assertTrue(all(r["status"] == 201 for r in mounts), mounts)
            self.assertEqual(self.raw(f"docker://{reg.host}/b/app:1", "--tls-verify=false"), self.raw(src))

    # ---- authentication ----

    def test_htpasswd_needs_and_takes_credentials(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, auth="htpasswd", users={"alice": "s3cret-pw"}) as reg:
            dest = f"docker://{reg.host}/alice/app:1"
            p = sconify("copy", "-q", *INSECURE, src, dest)
            self.assertFailsWith(p, ["needs credentials"], names="alice/app")
            p = sconify("copy", "-q", *INSECURE, "--dest-creds", "alice:wrong-pw", src, dest)
            self.assertFailsWith(p, ["credentials were refused"], names="alice/app")
            self.assertNotIn("wrong-pw", p.stderr_text)
            p = sconify("copy", "--debug", *INSECURE, "--dest-creds", "alice:s3cret-pw", src, dest)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertIn("authorization: <redacted>", p.stderr_text.lower())
            self.assertNotIn("s3cret-pw", p.stderr_text)
            self.assertNotIn(base64.b64encode(b"alice:s3cret-pw").decode(), p.stderr_text)
            skopeo("inspect", "--tls-verify=false", "--creds", "alice:s3cret-pw", dest)

    def test_token_auth_with_credentials_and_anonymous_pull(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, auth="token", users={"bob": "pa55"},
                      token_options={"anonymous": True}) as reg:
            dest = f"docker://{reg.host}/bob/app:1"
            sconify("copy", "-q", *INSECURE, "--dest-creds", "bob:pa55", src, dest, check=True)
            gets = [r for r in reg.issuer.requests if r["method"] == "GET"]
            self.assertTrue(any(r["user"] == "bob" and "repository:bob/app:pull,push" in scopes(r) for r in gets),
                            gets)
            # anonymous pull: a token without credentials
            out = os.path.join(self.tmp, "anon")
            sconify("copy", "-q", *INSECURE, dest, f"oci:{out}:x", check=True)
            self.assertTrue(any(r["user"] is None for r in reg.issuer.requests))
            # anonymous push is refused, naming the repository
            p = sconify("copy", "-q", *INSECURE, src, f"docker://{reg.host}/bob/other:1")
            self.assertFailsWith(p, ["denied", "needs credentials", "refused"], names="bob/other")

    def test_mount_token_covers_both_repositories_with_repeated_scopes(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, auth="token", users={"bob": "pa55"}) as reg:
            creds = ("--src-creds", "bob:pa55", "--dest-creds", "bob:pa55")
            sconify("copy", "-q", *INSECURE, *creds, src, f"docker://{reg.host}/one/app:1", check=True)
            sconify("copy", "-q", *INSECURE, *creds, f"docker://{reg.host}/one/app:1",
                    f"docker://{reg.host}/two/app:1", check=True)
            both = [r for r in reg.issuer.requests
                    if "repository:two/app:pull,push" in scopes(r) and "repository:one/app:pull" in scopes(r)]
            self.assertTrue(both, reg.issuer.requests)
            self.assertEqual(len(both[0]["query"]["scope"]), 2)  # one parameter per scope

    def test_identity_token_is_refreshed_by_post_and_falls_back_to_get(self):
        _, src = fixture("oci/layers")
        for post in ("oauth", "404"):
            with self.subTest(post=post), Registry(self.tmp, auth="token", users={"carol": "pw"}, token_options={
                    "refresh_tokens": {"refresh-abc": "carol"}, "post": post}) as reg:
                # docker keeps the login next to the identity token; the GET
                # fallback (a realm without the OAuth2 endpoint) can only use the former
                authfile = os.path.join(self.tmp, f"auth-{post}.json")
                with open(authfile, "w") as f:
                    json.dump({"auths": {reg.host: {"auth": base64.b64encode(b"carol:pw").decode(),
                                                    "identitytoken": "refresh-abc"}}}, f)
                dest = f"docker://{reg.host}/carol/app:1"
                p = sconify("copy", "-q", *INSECURE, "--authfile", authfile, src, dest)
                self.assertEqual(p.returncode, 0, p.stderr_text)
                posts = [r for r in reg.issuer.requests if r["method"] == "POST"]
                self.assertTrue(posts)
                self.assertEqual(posts[0]["form"]["grant_type"], "refresh_token")
                if post == "404":
                    self.assertTrue(any(r["method"] == "GET" and r["user"] == "carol" for r in reg.issuer.requests))
                else:
                    self.assertFalse(any(r["method"] == "GET" for r in reg.issuer.requests))

    def test_expired_tokens_are_renewed(self):
        # The destination's tokens live one second; every source blob is held
        # back three seconds, so the push must ask for a new one.
        _, src = fixture("oci/layers")
        with Registry(self.tmp) as plain, Registry(self.tmp, auth="token", users={"bob": "pa55"},
                                                   token_options={"expires_in": 1}) as reg, \
                FaultProxy(plain.host) as proxy:
            skopeo("copy", "--quiet", "--dest-tls-verify=false", src, f"docker://{plain.host}/s/app:1")
            # the config is read first, before any push: hold back the first layer too
            proxy.stall("GET", r"/blobs/sha256:", after=0, seconds=3, times=2)
            p = sconify_env("copy", "-q", *INSECURE, "--jobs", "1", "--dest-creds", "bob:pa55",
                            f"docker://{proxy.host}/s/app:1", f"docker://{reg.host}/bob/app:1",
                            env={"SCONIFY_STALL_TIMEOUT_MS": "10000"})
            self.assertEqual(p.returncode, 0, p.stderr_text)
            # a token for the same scopes was asked for again once it expired
            asked = [" ".join(scopes(r)) for r in reg.issuer.requests]
            self.assertTrue(any(asked.count(s) >= 2 for s in asked), asked)

    def test_rejected_token_is_renewed_once(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, auth="token", users={"bob": "pa55"},
                      token_options={"expired_first": 1}) as reg:
            p = sconify("copy", "-q", *INSECURE, "--dest-creds", "bob:pa55", src, f"docker://{reg.host}/bob/app:1")
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertGreaterEqual(len(reg.issuer.requests), 2)

    def test_hostile_token_lifetime_is_clamped(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, auth="token", users={"bob": "pa55"},
                      token_options={"expires_in": 9223372036854775807, "lifetime": 300}) as reg:
            p = sconify("copy", "-q", *INSECURE, "--dest-creds", "bob:pa55", src, f"docker://{reg.host}/bob/app:1")
            self.assertEqual(p.returncode, 0, p.stderr_text)

    def test_upload_location_on_another_origin_gets_no_credentials(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, auth="htpasswd", users={"alice": "s3cret"}) as reg, FaultProxy(reg.host) as proxy:
            for trick in ("HTTP://{h}/stolen", "Http://{h}/stolen", "http:/{h}/stolen", "//{h}/stolen"):
                with self.subTest(location=trick):
                    proxy.clear_rules()
                    proxy.set_header("POST", r"/blobs/uploads/$", "Location", trick.format(h=proxy.storage_host))
                    p = sconify_env("copy", "-q", *INSECURE, "--dest-creds", "alice:s3cret", src,
                                    f"docker://{proxy.host}/alice/app:1")
                    self.assertEqual(p.returncode, 1, p.stderr_text)
                    self.assertEqual(proxy.find(redirected=True), [])

    def test_challenge_from_a_redirect_target_is_not_followed(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, auth="htpasswd", users={"alice": "s3cret"}) as reg:
            ref = f"docker://{reg.host}/alice/app:1"
            sconify("copy", "-q", *INSECURE, "--dest-creds", "alice:s3cret", src, ref, check=True)
            with FaultProxy(reg.host) as evil_realm, FaultProxy(
                    reg.host, storage_challenge=f'Bearer realm="http://{reg.host}/evil",service="x"') as proxy:
                proxy.storage_challenge = f'Bearer realm="http://{evil_realm.host}/token",service="x"'
                proxy.redirect()
                out = os.path.join(self.tmp, "out")
                p = sconify_env("copy", "-q", "--src-tls-verify=false", "--src-creds", "alice:s3cret",
                                f"docker://{proxy.host}/alice/app:1", f"oci:{out}:x")
                self.assertEqual(p.returncode, 1, p.stderr_text)
                self.assertEqual(evil_realm.requests, [])
                self.assertFalse(os.path.exists(out))

    def test_endless_response_body_is_cut_at_the_cap(self):
        import http.server
        import threading

        class Endless(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    for _ in range(200000):  # 12 GiB, far more than any cap
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except OSError:
                    pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            host = f"127.0.0.1:{server.server_address[1]}"
            p = sconify_env("inspect", "--tls-verify=false", f"docker://{host}/x/y:1")
            self.assertEqual(p.returncode, 1, p.stderr_text)
        finally:
            server.shutdown()

    def test_refused_upload_says_why_and_is_not_repeated(self):
        _, src = fixture("oci/large")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            proxy.fail("PATCH", r"/blobs/uploads/", status=403, times=None)
            p = sconify_env("copy", "-q", *INSECURE, src, f"docker://{proxy.host}/quota/app:1")
            self.assertFailsWith(p, ["was denied"], names="quota/app")
            self.assertEqual(len(proxy.find("PATCH")), 1)

    def test_retry_times_zero_means_no_retry(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            sconify("copy", "-q", *INSECURE, src, f"docker://{reg.host}/r0/app:1", check=True)
            proxy.fail("GET", r"/manifests/", status=500, times=1)
            p = sconify_env("copy", "-q", *INSECURE, "--retry-times", "0", f"docker://{proxy.host}/r0/app:1",
                            f"oci:{self.tmp}/r0:x")
            self.assertFailsWith(p, ["kept failing"])
            self.assertEqual(len(proxy.find("GET", r"/manifests/")), 1)

    def test_debug_trace_hides_queries_and_credentials(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, auth="htpasswd", users={"alice": "s3cret"}) as reg:
            p = sconify("copy", "--debug", *INSECURE, "--dest-creds", "alice:s3cret", src,
                        f"docker://{reg.host}/alice/app:1")
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertIn("?...", p.stderr_text)
            self.assertNotIn("_state=", p.stderr_text)
            self.assertNotIn("s3cret", p.stderr_text)

    def test_credential_helper_from_docker_config(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, auth="htpasswd", users={"dave": "helper-pw"}) as reg:
            home = os.path.join(self.tmp, "home")
            helper = credential_helper(os.path.join(self.tmp, "bin"), "sctest", {reg.host: ("dave", "helper-pw")})
            docker_config(os.path.join(home, ".docker"), creds_store="sctest")
            env = helper.env({"HOME": home, "DOCKER_CONFIG": os.path.join(home, ".docker")})
            env = {k: v for k, v in env.items() if k in ("HOME", "DOCKER_CONFIG", "PATH")}
            p = sconify_env("copy", "-q", *INSECURE, src, f"docker://{reg.host}/dave/app:1", env=env)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertIn(reg.host, helper.asked())
            self.assertNotIn("helper-pw", p.stderr_text)

    # ---- TLS ----

    def test_tls_verified_by_default_and_cert_dir_or_ssl_cert_file_trusted(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, tls=True) as reg:
            dest = f"docker://{reg.host}/tls/app:1"
            p = sconify("copy", "-q", src, dest)
            self.assertFailsWith(p, ["certificate"])
            sconify("copy", "-q", "--dest-cert-dir", reg.cert_dir, src, dest, check=True)
            p = sconify_env("inspect", dest, env={"SSL_CERT_FILE": reg.ca_file})
            self.assertEqual(p.returncode, 0, p.stderr_text)
            p = sconify("inspect", "--cert-dir", reg.untrusted_cert_dir, dest)
            self.assertFailsWith(p, ["certificate"])
            sconify("inspect", "--tls-verify=false", dest, check=True)

    def test_client_certificate_from_cert_dir(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, tls=True, client_ca=True) as reg:
            dest = f"docker://{reg.host}/mtls/app:1"
            p = sconify("copy", "-q", "--dest-cert-dir", reg.cert_dir, src, dest)
            self.assertEqual(p.returncode, 1, p.stderr_text)
            sconify("copy", "-q", "--dest-cert-dir", reg.tls.client_cert_dir(), src, dest, check=True)
            sconify("inspect", "--cert-dir", reg.tls.client_cert_dir(), dest, check=True)

    def test_bad_certificates_are_refused_even_with_the_ca(self):
        for which in ("expired", "wrong-san"):
            with self.subTest(cert=which), Registry(self.tmp, tls=True, tls_cert=which) as reg:
                p = sconify("inspect", "--cert-dir", reg.cert_dir, f"docker://{reg.host}/x/y:1")
                self.assertEqual(p.returncode, 1, p.stderr_text)
                self.assertRegex(p.stderr_text, "certificate|SSL|subject")

    # ---- faults ----

    def test_transient_errors_are_retried_and_drops_resumed(self):
        fx, src = fixture("oci/large")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            ref = f"docker://{reg.host}/big/app:1"
            skopeo("copy", "--quiet", "--dest-tls-verify=false", src, ref)
            via = f"docker://{proxy.host}/big/app:1"
            proxy.fail("GET", r"/manifests/", status=500, times=1)
            proxy.throttle("HEAD", r"/blobs/", times=1)
            proxy.cut("GET", r"/blobs/sha256:", after=3 << 20, times=2)
            proxy.stall("GET", r"/blobs/sha256:", after=1 << 20, seconds=5, times=1)
            out = os.path.join(self.tmp, "out")
            p = sconify_env("copy", "-q", "--src-tls-verify=false", via, f"oci:{out}:x")
            self.assertEqual(p.returncode, 0, p.stderr_text)
            blob_gets = proxy.find("GET", r"/blobs/sha256:")
            self.assertEqual(sum(r["rule"] == "cut" for r in blob_gets), 2)
            # resumed where the connection dropped: partial content, not the whole blob again
            self.assertTrue(any(r["status"] == 206 for r in blob_gets), blob_gets)
            self.assertEqual(self.raw(f"oci:{out}:x"), self.raw(src))
            self.assertEqual(self.umoci_of(f"oci:{out}:x"), harness.expected_tree(fx))

    def test_resume_with_the_wrong_range_is_refused(self):
        _, src = fixture("oci/large")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            ref = f"docker://{reg.host}/wr/app:1"
            skopeo("copy", "--quiet", "--dest-tls-verify=false", src, ref)
            big = json.loads(self.raw(ref, "--tls-verify=false"))["layers"][0]["digest"]
            proxy.cut("GET", f"/blobs/{big}$", after=1 << 20, times=1)
            proxy.set_header("GET", f"/blobs/{big}$", "Content-Range", "bytes 0-9/10", times=None)
            out = os.path.join(self.tmp, "out")
            p = sconify_env("copy", "-q", "--retry-times", "2", "--src-tls-verify=false",
                            f"docker://{proxy.host}/wr/app:1", f"oci:{out}:x")
            self.assertFailsWith(p, ["wrong range"], names=big)
            self.assertFalse(os.path.exists(out))

    def test_redirected_blob_downloads_carry_no_credentials(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp, auth="token", users={"bob": "pa55"}) as reg, FaultProxy(reg.host) as proxy:
            ref = f"docker://{reg.host}/r/app:1"
            sconify("copy", "-q", *INSECURE, "--dest-creds", "bob:pa55", src, ref, check=True)
            proxy.redirect()
            out = os.path.join(self.tmp, "out")
            p = sconify_env("copy", "-q", "--src-tls-verify=false", "--src-creds", "bob:pa55",
                            f"docker://{proxy.host}/r/app:1", f"oci:{out}:x")
            self.assertEqual(p.returncode, 0, p.stderr_text)
            redirected = proxy.find(redirected=True)
            self.assertTrue(redirected)
            self.assertTrue(all(r["auth"] is None for r in redirected), redirected)
            self.assertEqual(self.raw(f"oci:{out}:x"), self.raw(src))

    def test_failed_push_leaves_no_tag(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            proxy.fail("PUT", r"/manifests/sha256:", status=500, times=None)
            dest = f"docker://{proxy.host}/fail/app:1"
            p = sconify_env("copy", "-q", *INSECURE, "--retry-times", "1", src, dest)
            self.assertFailsWith(p, ["kept failing"], names="fail/app")
            self.assertFalse(proxy.find("PUT", r"/manifests/1$"))
            q = skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/fail/app:1", check=False)
            self.assertNotEqual(q.returncode, 0)
            self.assertIn("manifest unknown", q.stderr_text)

    def test_failed_upload_is_retried_as_a_whole(self):
        _, src = fixture("oci/large")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            proxy.fail("PATCH", r"/blobs/uploads/", status=500, times=1)
            dest = f"docker://{proxy.host}/retry/app:1"
            p = sconify_env("copy", "-q", *INSECURE, src, dest)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            self.assertGreaterEqual(len(proxy.find("PATCH")), 2)
            self.assertEqual(self.raw(f"docker://{reg.host}/retry/app:1", "--tls-verify=false"), self.raw(src))

    def test_lost_answer_to_the_closing_put_is_not_a_failure(self):
        # The registry stores the blob, its answer is lost; the retried PUT
        # finds the upload session gone (404) and the blob there.
        _, src = fixture("oci/layers")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            proxy.lose("PUT", r"/blobs/uploads/", times=1)
            dest = f"docker://{proxy.host}/lost/app:1"
            p = sconify_env("copy", "-q", *INSECURE, src, dest)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            puts = proxy.find("PUT", r"/blobs/uploads/")
            self.assertEqual(puts[0]["rule"], "lose")
            self.assertIn(404, [r["status"] for r in puts])
            self.assertEqual(self.raw(f"docker://{reg.host}/lost/app:1", "--tls-verify=false"), self.raw(src))

    def test_chunked_upload_when_the_registry_asks(self):
        _, src = fixture("oci/large")
        with Registry(self.tmp) as reg, FaultProxy(reg.host) as proxy:
            proxy.add_header("POST", r"/blobs/uploads/$", "OCI-Chunk-Min-Length", str(1 << 20))
            dest = f"docker://{proxy.host}/chunks/app:1"
            p = sconify_env("copy", "-q", *INSECURE, src, dest)
            self.assertEqual(p.returncode, 0, p.stderr_text)
            patches = proxy.find("PATCH")
            self.assertGreater(len(patches), 3)
            self.assertFalse(any(r["chunked"] for r in patches))
            self.assertEqual(self.raw(f"docker://{reg.host}/chunks/app:1", "--tls-verify=false"), self.raw(src))

    # ---- output ----

    def test_progress_only_on_a_terminal(self):
        _, src = fixture("oci/layers")
        with Registry(self.tmp) as reg:
            p = sconify("copy", *INSECURE, src, f"docker://{reg.host}/p/app:1")
            self.assertEqual(p.returncode, 0)
            self.assertEqual(p.stderr_text, "")
            # on a terminal: one line per blob
            master, slave = pty.openpty()
            proc = subprocess.Popen([harness.SCONIFY, "copy", *INSECURE, src, f"docker://{reg.host}/p/app:2"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
            os.close(slave)
            out = b""
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            os.close(master)
            self.assertEqual(proc.wait(), 0)
            text = out.decode("utf-8", "replace")
            self.assertIn("sha256:", text)
            self.assertRegex(text, "Copied|Exists|Mounted")


if __name__ == "__main__":
    harness.main()
