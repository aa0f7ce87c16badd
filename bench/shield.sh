#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Throughput of the file shield (lib/shield/) on a 256 MiB buffer, one thread:
# encryption, decryption of every chunk in memory and into a tmpfs file (what
# the runtime does for an open), hashing and verification of authenticated
# files; next to `openssl speed -evp aes-256-gcm' on 64 KiB blocks (the chunk
# size). Numbers, never assertions. Builds nothing: give it a configured and
# built build directory without sanitizers:
#
#   meson setup build-release --buildtype=release && ninja -C build-release
#   bench/shield.sh [BUILD_DIR]
#
# SIZE_MIB=64 shrinks the buffer. Each operation runs twice; the second line is
# the warm one.
set -euo pipefail

build=${1:-build-release}
driver=${SHIELD_DRIVER:-$build/bench/shield_driver}
if [ ! -x "$driver" ]; then
	echo "shield.sh: $driver is missing: build $build first" >&2
	exit 1
fi

echo "$(uname -m), $(nproc 2>/dev/null || echo ?) cores, $(openssl version)"
taskset -c 0 "$driver" "${SIZE_MIB:-256}" 2>/dev/null || "$driver" "${SIZE_MIB:-256}"
if command -v openssl >/dev/null; then
	echo "-- openssl speed -evp aes-256-gcm, 64 KiB blocks, one core"
	openssl speed -evp aes-256-gcm -bytes 65536 -seconds 3 2>/dev/null |
		awk 'tolower($1) == "aes-256-gcm" { printf "openssl aes-256-gcm %44.1f MB/s\n", ($2 + 0) / 1000 }'
	echo "-- openssl speed -evp sha256, 64 KiB blocks, one core"
	openssl speed -evp sha256 -bytes 65536 -seconds 3 2>/dev/null |
		awk 'tolower($1) == "sha256" { printf "openssl sha256 %49.1f MB/s\n", ($2 + 0) / 1000 }'
fi
