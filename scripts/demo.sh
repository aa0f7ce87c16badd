#!/bin/sh
# The main job end to end on a fresh Debian 12 machine: installs what it needs,
# builds sconify (build-release/), builds the bundled sample image
# (testdata/build_fixtures.py --sample: three layers, gzip, plain and zstd,
# with whiteouts, an opaque directory, links and an xattr) and moves it
# through every transport, recompressing on the way, then inspects the result.
# Then it pushes the sample to a registry it starts on loopback, signs it the
# way cosign does with a key made on the spot, and verifies the signature.
# Last, the main job: a CAS is started on loopback, and a small application
# image is converted into a confidential one (its /app encrypted, the enclave
# runtime injected, sim mode since this machine has no TEE), its session
# uploaded to the CAS, the image signed, pulled back with skopeo, unpacked
# with umoci and run under bubblewrap: the runtime attests to the CAS, which
# releases the key; the registry holds only ciphertext of /app, the
# application prints the plaintext.
set -eu
cd "$(dirname "$0")/.."

scripts/deps.sh demo

if [ -d build-release ]; then
	meson setup --reconfigure build-release --buildtype=release >/dev/null
else
	meson setup build-release --buildtype=release -Dtests=disabled >/dev/null
fi
ninja -C build-release >/dev/null
runtime=build-release/enclave-runtime/sconify-runtime
cas_bin=build-release/cmd/sconify-cas/sconify-cas
sconify=build-release/cmd/sconify/sconify
out=build-release/demo
rm -rf "$out"
mkdir -p "$out"

python3 testdata/build_fixtures.py --sample "$out/sample"
sample="oci:$out/sample/oci/layers:latest"

step() {
	printf '\n$ %s\n' "$*"
	"$@"
}

step "$sconify" inspect "$sample"
step "$sconify" copy --dest-compress zstd "$sample" "oci-archive:$out/sample-zstd.tar:latest"
step "$sconify" copy "oci-archive:$out/sample-zstd.tar:latest" "docker-archive:$out/sample-docker.tar:example.com/sample:1"
step "$sconify" copy --dest-compress gzip "docker-archive:$out/sample-docker.tar:example.com/sample:1" "oci:$out/sample-gzip:latest"
step "$sconify" inspect --config "oci:$out/sample-gzip:latest"
printf '\n\nThe sample went oci -> oci-archive (zstd) -> docker-archive -> oci (gzip);\n'
printf 'its config and diff_ids are unchanged. Outputs are in %s/.\n' "$out"

# A registry on loopback, for the push and the signature.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$out/registry.yml" <<EOF
version: 0.1
storage: {filesystem: {rootdirectory: $PWD/$out/registry}}
http: {addr: 127.0.0.1:$port}
log: {level: error}
EOF
docker-registry serve "$out/registry.yml" >"$out/registry.log" 2>&1 &
registry_pid=$!
cas_pid=
trap 'kill $registry_pid $cas_pid 2>/dev/null' EXIT INT TERM
i=0
until python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 50 ] || {
		echo "the demo registry did not start (see $out/registry.log)" >&2
		exit 1
	}
	sleep 0.1
done
image="127.0.0.1:$port/demo/sample:1"

# The demo key's password is made here and forgotten at the end.
COSIGN_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
export COSIGN_PASSWORD
step "$sconify" copy --dest-tls-verify=false "$sample" "docker://$image"
step "$sconify" keygen --prefix "$out/demo"
step "$sconify" sign --key "$out/demo.key" --tls-verify=false -a pipeline=demo "$image"
step "$sconify" verify --key "$out/demo.pub" --tls-verify=false -a pipeline=demo "$image"
printf '\nThe sample is in a registry, signed the way cosign signs (tag sha256-<digest>.sig),\n'
printf 'and the signature verifies with %s.\n' "$out/demo.pub"

# ---- the main job: a CAS, convert, upload, sign, run ----
cas_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$out/cas"
chmod 700 "$out/cas"
"$cas_bin" serve --listen "127.0.0.1:$cas_port" --data "$out/cas" --allow-sim >"$out/cas.log" 2>&1 &
cas_pid=$!
i=0
until grep -q "^listening:" "$out/cas.log" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || {
		echo "the demo CAS did not start (see $out/cas.log)" >&2
		exit 1
	}
	sleep 0.1
done
printf '\n$ %s serve --listen 127.0.0.1:%s --data %s --allow-sim\n' "$cas_bin" "$cas_port" "$out/cas"
cat "$out/cas.log"
# The demo's client identity and the CAS key learnt on first use stay in $out.
export XDG_CONFIG_HOME="$PWD/$out/config"

python3 testdata/build_demo_image.py "$out/app"
app="127.0.0.1:$port/demo/app"
step skopeo copy --quiet --dest-tls-verify=false "oci:$out/app:latest" "docker://$app:1"
step "$sconify" image --from "docker://$app:1" --to "docker://$app:confidential" --tls-verify=false \
	--dir /app --mode sim --name demo --runtime "$runtime" --cas "127.0.0.1:$cas_port" \
	--sign-key "$out/demo.key"
step "$sconify" verify --key "$out/demo.pub" --tls-verify=false "$app:confidential" >/dev/null

# What the registry holds: no blob contains the message.
step skopeo copy --quiet --src-tls-verify=false "docker://$app:confidential" "oci:$out/pulled:conf"
if grep -rqa "decrypted inside the enclave" "$out/pulled/blobs" ||
	for b in "$out"/pulled/blobs/sha256/*; do gzip -dc "$b" 2>/dev/null; done | grep -qa "decrypted inside the enclave"; then
	echo "demo: the message is readable in the registry" >&2
	exit 1
fi
printf '\nNo blob of %s contains the message: /app is ciphertext there.\n' "$app:confidential"

# Run it: the runtime attests to the CAS named in the image, which releases
# the command and the key only for the measurement the policy accepts.
step umoci unpack --rootless --image "$out/pulled:conf" "$out/bundle"
env_args=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["process"]["env"]; print(" ".join("--setenv %s %s" % tuple(e.split("=", 1)) for e in c if e.startswith("SCONE_") and not e.endswith("=")))' "$out/bundle/config.json")
# shellcheck disable=SC2086
step bwrap --bind "$out/bundle/rootfs" / --proc /proc --dev /dev --unshare-pid --die-with-parent \
	--clearenv $env_args /.sconify/runtime
printf '\nThe confidential image ran: the runtime attested to the CAS (sim evidence), the CAS\n'
printf 'checked the measurement against the session policy and released the key, and the\n'
printf 'runtime served the encrypted /app/message.txt to the application as plaintext.\n'
