#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sconify-cas under load (issue 6, deliverable 7): CLIENTS (default 8)
# processes doing challenge + attest against a sim session for SECONDS
# (default 10): attestations/s, p50, p99, errors, the CAS's peak RSS and the
# clients' own CPU; then the same while slowhttptest holds SLOW (default 1000)
# slow connections. Prints numbers next to the goals (>= 500/s on 2 cores, no
# errors, p99 < 50 ms, bounded memory, slow clients do not starve real ones);
# never asserts.
#
#   meson setup build-casbench --buildtype=release -Dtests=disabled && ninja -C build-casbench
#   bench/cas.sh [BUILD_DIR]
#
# Needs python3 with `cryptography', openssl and slowhttptest (Debian package).
set -euo pipefail

build=${1:-build-casbench}
here=$(cd "$(dirname "$0")" && pwd)
cas="$build/cmd/sconify-cas/sconify-cas"
[ -x "$cas" ] || { echo "cas.sh: $cas is missing: build $build first" >&2; exit 1; }
command -v slowhttptest >/dev/null || echo "cas.sh: slowhttptest is not installed: the slow-client runs are skipped" >&2
exec python3 "$here/cas_bench.py" --cas "$cas" --clients "${CLIENTS:-8}" --seconds "${SECONDS_:-10}" --slow "${SLOW:-1000}"
