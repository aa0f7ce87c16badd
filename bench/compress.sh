#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Throughput of the layer compression code (lib/layer/compress.c) against the
# command line tools, on a ~200 MiB half-random file. Numbers, never
# assertions. Builds nothing: give it a configured and built build directory
# (default build-release; without sanitizers, or the numbers mean little):
#
#   meson setup build-release --buildtype=release && ninja -C build-release
#   bench/compress.sh [BUILD_DIR]
#
# SIZE_MIB=50 bench/compress.sh shrinks the test file. MB/s are 10^6 bytes of
# uncompressed data per second of wall time, for compressors and decompressors;
# output is the size of what the command wrote, in % of the input.
set -euo pipefail

build=${1:-build-release}
driver=$build/bench/compress_driver
if [ ! -x "$driver" ]; then
	echo "compress.sh: $driver is missing: build $build first" >&2
	exit 1
fi
for tool in gzip zstd; do
	command -v $tool >/dev/null || { echo "compress.sh: $tool is not installed" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sconify-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$driver" gen $((${SIZE_MIB:-200} * 1024 * 1024)) >"$tmp/data"
bytes=$(wc -c <"$tmp/data")

# run LABEL OUTPUT COMMAND...: runs COMMAND (stdin: the data or OUTPUT of an
# earlier run), its stdout to OUTPUT, and prints the rate by wall time and the
# CPU seconds it used (user + system; on a loaded machine the better guide).
run() {
	local label=$1 out=$2
	shift 2
	local TIMEFORMAT='%R %U %S' t size
	t=$({ time "$@" >"$out"; } 2>&1)
	size=$(wc -c <"$out")
	awk -v b="$bytes" -v t="$t" -v l="$label" -v s="$size" 'BEGIN {
		split(t, x, " ")
		printf "%-32s %7.1f MB/s %6.2f s wall %6.2f s cpu", l, b / 1e6 / x[1], x[1], x[2] + x[3]
		if (s > 0)
			printf "  output %5.1f%%", 100 * s / b
		printf "\n" }'
}

echo "input: $bytes bytes ($(nproc 2>/dev/null || echo ?) cores), $(gzip --version | head -1), zstd $(zstd -V | sed 's/.* v\([0-9.]*\).*/\1/')"
echo "-- compress"
run "sconify gzip -6, 1 thread" "$tmp/ours1.gz" "$driver" compress gzip 1 <"$tmp/data"
run "sconify gzip, 2 threads" "$tmp/ours2.gz" "$driver" compress gzip 2 <"$tmp/data"
run "sconify zstd -3, 1 thread" "$tmp/ours1.zst" "$driver" compress zstd 1 <"$tmp/data"
run "sconify zstd -3, 2 threads" "$tmp/ours2.zst" "$driver" compress zstd 2 <"$tmp/data"
run "gzip -6" "$tmp/cli6.gz" gzip -6 -c <"$tmp/data"
run "gzip -1" "$tmp/cli1.gz" gzip -1 -c <"$tmp/data"
run "zstd -3" "$tmp/cli.zst" zstd -q -3 -c <"$tmp/data"
run "zstd -3 -T2" "$tmp/cli2.zst" zstd -q -3 -T2 -c <"$tmp/data"
cmp -s "$tmp/ours1.gz" "$tmp/ours2.gz" || echo "!! gzip output differs between 1 and 2 threads"
cmp -s "$tmp/ours1.zst" "$tmp/ours2.zst" || echo "!! zstd output differs between 1 and 2 threads"
echo "-- decompress (rate of uncompressed bytes, written to /dev/null)"
run "sconify gzip reader (ours)" /dev/null "$driver" decompress gzip <"$tmp/ours1.gz"
run "sconify gzip reader (gzip -6)" /dev/null "$driver" decompress gzip <"$tmp/cli6.gz"
run "sconify zstd reader (ours)" /dev/null "$driver" decompress zstd <"$tmp/ours1.zst"
run "sconify zstd reader (zstd -3)" /dev/null "$driver" decompress zstd <"$tmp/cli.zst"
run "gzip -dc (ours)" /dev/null gzip -dc <"$tmp/ours1.gz"
run "gzip -dc (gzip -6)" /dev/null gzip -dc <"$tmp/cli6.gz"
run "zstd -dc (ours)" /dev/null zstd -q -dc <"$tmp/ours1.zst"
"$driver" decompress gzip <"$tmp/ours1.gz" | cmp -s - "$tmp/data" || echo "!! our gzip does not round trip"
"$driver" decompress zstd <"$tmp/ours1.zst" | cmp -s - "$tmp/data" || echo "!! our zstd does not round trip"
