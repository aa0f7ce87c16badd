#!/bin/sh
# The runtime's unit suite built for aarch64 (enclave-runtime/build-aarch64.sh
# BUILD/aarch64, which scripts/test.sh runs), under qemu-user. Skipped (77)
# when nobody built it; fails when the build was tried and failed (its log
# is in BUILD/aarch64/FAILED), so a broken cross build is never a skip.
set -u
out=$1/aarch64
if [ -e "$out/FAILED" ]; then
	echo "the aarch64 build failed:" >&2
	cat "$out/FAILED" >&2
	exit 1
fi
if [ ! -x "$out/test_runtime_unit-arm64" ]; then
	echo "no $out/test_runtime_unit-arm64: run enclave-runtime/build-aarch64.sh $out" >&2
	exit 77
fi
src=$(cd "$(dirname "$0")/../.." && pwd)
newer=$(find "$src/enclave-runtime" "$src/lib" -name '*.[ch]' -newer "$out/test_runtime_unit-arm64" | head -n 1)
if [ -n "$newer" ]; then
	echo "$out/test_runtime_unit-arm64 is older than $newer: run enclave-runtime/build-aarch64.sh $out" >&2
	exit 77
fi
if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
	echo "qemu-aarch64-static is not installed" >&2
	exit 77
fi
qemu-aarch64-static "$out/sconify-runtime-arm64" --version || exit 1
CK_FORK=yes exec qemu-aarch64-static "$out/test_runtime_unit-arm64"
