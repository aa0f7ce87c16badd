#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `sconify image' from one loopback registry to another (docker-registry),
# against `skopeo copy' of the same image between the same registries (issue
# 4, deliverable 8). Generates an image of SIZE_MIB (default 1280 MiB
# uncompressed, LAYERS=5 layers, half random: ~2:1 gzip) with /srv/secret
# holding SECRET_PCT=10 % of its bytes, and measures, REPEAT times (default 3)
# into a fresh registry each time: (a) --dir /srv/secret and (b) --dir /, each
# with gzip output and with --dest-compress zstd, in sim mode with the runtime
# of the build directory. Prints the median wall time, the peak RSS, the
# ratios against skopeo and the issue's goals ((a) <= 1.3x; (b) <= 2.0x gzip,
# <= 1.3x zstd; RSS < 128 MiB), where the time goes (sconify copy, --dry-run =
# pass 1 only, timestamps of a --debug run), and the shield's encryption
# throughput next to `openssl speed -evp aes-256-gcm' on one core (goal: 70 %).
# Numbers, never assertions. NO_PHASES=1 skips the profiling runs.
# BASELINE=BUILD_DIR also runs that build's conversions, interleaved (a
# before/after under the same load).
#
# Both registries run on this machine, and a registry's share of the CPU is
# large: docker-registry 2.8 (go1.19: SHA-256 without the SHA extensions)
# spends about 7 ms of CPU per MiB it receives, hashing and writing. Case (b)
# sends twice skopeo's bytes (ciphertext does not compress), so registry B
# alone then costs about as much CPU as skopeo's whole copy: on two cores the
# ratios of (b) cannot get near 1.3x whatever sconify does.
#
#   meson setup build-bench --buildtype=release -Dtests=disabled && ninja -C build-bench
#   bench/image.sh [BUILD_DIR]
#
# Needs docker-registry, skopeo, openssl and GNU time; about 4 GiB free in
# ${TMPDIR:-/tmp}.
set -euo pipefail

build=${1:-build-bench}
here=$(cd "$(dirname "$0")" && pwd)
for tool in docker-registry skopeo openssl python3; do
	command -v "$tool" >/dev/null || { echo "image.sh: $tool is not installed" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "image.sh: GNU time (/usr/bin/time) is not installed" >&2; exit 1; }
for f in cmd/sconify/sconify enclave-runtime/sconify-runtime bench/shield_driver; do
	[ -x "$build/$f" ] || { echo "image.sh: $build/$f is missing: build $build first" >&2; exit 1; }
done

exec python3 "$here/image_bench.py" --build "$build" ${NO_PHASES:+--no-phases} ${BASELINE:+--baseline "$BASELINE"}
