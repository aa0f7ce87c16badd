#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sconify serve under load (issue 8, deliverable 6):
#   1. events accepted per second: wrk (CONNS connections, default 64, for
#      SECONDS_ seconds, default 15) posts valid distribution envelopes, each
#      a new image digest, so every accepted event is a job written to the
#      queue on disk; p50, p99, errors and the service's peak RSS. The service
#      runs with `workers: 0' (accept and queue only) and is pinned to CPU 0,
#      wrk to CPU 1.
#   2. the time for IMAGES (default 20) images pushed at once with skopeo to a
#      docker-registry that notifies the service to be converted and signed
#      (2 workers).
# Prints the numbers next to the goal (>= 2000 events/s on 2 cores, p99 < 20
# ms); never asserts.
#
#   scripts/deps.sh bench
#   meson setup build-release --buildtype=release && ninja -C build-release
#   bench/serve.sh [BUILD_DIR]
set -euo pipefail

build=${1:-build-release}
here=$(cd "$(dirname "$0")" && pwd)
sconify="$build/cmd/sconify/sconify"
runtime="$build/enclave-runtime/sconify-runtime"
[ -x "$sconify" ] || { echo "serve.sh: $sconify is missing: build $build first" >&2; exit 1; }
command -v wrk >/dev/null || { echo "serve.sh: wrk is not installed (scripts/deps.sh bench)" >&2; exit 1; }
exec python3 "$here/serve_bench.py" --sconify "$sconify" --runtime "$runtime" \
	--conns "${CONNS:-64}" --seconds "${SECONDS_:-15}" --images "${IMAGES:-20}"
