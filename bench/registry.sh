#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Registry-to-registry copy, sconify against skopeo, on loopback registries
# (docker-registry): cold (A -> a fresh registry B), warm (B already holds
# every blob) and mount (A/repo -> A/other). Generates an image of SIZE_MIB
# (default 1280 MiB uncompressed, LAYERS=5 layers, half random: ~2:1 gzip),
# runs each case REPEAT times (default 3), prints the median wall time and the
# peak RSS per tool and case, the ratios sconify/skopeo and the issue's goals
# (cold <= 0.8x, warm and mount <= 1.0x, RSS < 64 MiB). Numbers, never
# assertions. Until sconify has the docker:// transport it measures skopeo
# alone and says so.
#
#   meson setup build-release --buildtype=release && ninja -C build-release
#   bench/registry.sh [BUILD_DIR]
#
# Needs docker-registry, skopeo, openssl and GNU time; about 3 GiB free in
# ${TMPDIR:-/tmp}.
set -euo pipefail

build=${1:-build-release}
here=$(cd "$(dirname "$0")" && pwd)
for tool in docker-registry skopeo openssl python3; do
	command -v "$tool" >/dev/null || { echo "registry.sh: $tool is not installed" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "registry.sh: GNU time (/usr/bin/time) is not installed" >&2; exit 1; }
[ -x "$build/cmd/sconify/sconify" ] ||
	echo "registry.sh: $build/cmd/sconify/sconify is missing: measuring skopeo only" >&2

exec python3 "$here/registry_bench.py" --build "$build"
