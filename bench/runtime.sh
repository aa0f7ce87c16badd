#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The enclave runtime against native, under bubblewrap in both cases (issue
# 5, deliverable 6): start-up of `python3 -c 'import json'' with the standard
# library authenticated, the cost of one open(2) of an unprotected path, and
# the read throughput of a 1 GiB encrypted file (SIZE_MIB), against the same
# unconverted image. Prints numbers, ratios and the goals (start-up <= 2x;
# <= 10 us added per unprotected open; encrypted reads >= 1 GB/s); never
# asserts. REPEAT (default 15) start-up runs, OPENS (default 200000) opens.
#
#   meson setup build-rtbench --buildtype=release -Dtests=disabled && ninja -C build-rtbench
#   bench/runtime.sh [BUILD_DIR]
#
# Runs as root (bwrap binds the unpacked root file systems); needs bwrap,
# umoci, gcc (static glibc) and /usr/bin/python3; about 3 GiB free in
# ${TMPDIR:-/tmp} and as much RAM (the decrypted file lives in a memfd).
set -euo pipefail

build=${1:-build-rtbench}
here=$(cd "$(dirname "$0")" && pwd)
for tool in bwrap umoci gcc python3; do
	command -v "$tool" >/dev/null || { echo "runtime.sh: $tool is not installed" >&2; exit 1; }
done
for f in cmd/sconify/sconify enclave-runtime/sconify-runtime; do
	[ -x "$build/$f" ] || { echo "runtime.sh: $build/$f is missing: build $build first" >&2; exit 1; }
done

exec python3 "$here/runtime_bench.py" --build "$build"
