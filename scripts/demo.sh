#!/bin/sh
# The main job end to end on a fresh Debian 12 machine: installs what it needs,
# builds sconify (build-release/), builds the bundled sample image
# (testdata/build_fixtures.py --sample: three layers, gzip, plain and zstd,
# with whiteouts, an opaque directory, links and an xattr) and moves it
# through every transport, recompressing on the way, then inspects the result.
set -eu
cd "$(dirname "$0")/.."

scripts/deps.sh demo

if [ -d build-release ]; then
	meson setup --reconfigure build-release --buildtype=release >/dev/null
else
	meson setup build-release --buildtype=release -Dtests=disabled >/dev/null
fi
ninja -C build-release >/dev/null
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
