#!/bin/sh
# Builds sconify-runtime for aarch64 with Debian's cross compiler, outside
# meson (a meson build has one host machine; the runtime is one static
# executable per architecture). Needs, once:
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install gcc-aarch64-linux-gnu libjansson-dev:arm64 qemu-user-static
# and, for the unit tests of the runtime's logic, check:arm64.
# Usage: enclave-runtime/build-aarch64.sh [OUTDIR]   (default build-aarch64/)
# With qemu-aarch64-static present it also runs the result's --version and the
# unit tests. The seccomp filter itself cannot run there: qemu-user answers
# seccomp(2) with ENOSYS, so the runtime refuses to start (as it must).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/build-aarch64}
cc=${CC:-aarch64-linux-gnu-gcc}
version=$(sed -n "s/^  version: '\(.*\)',$/\1/p" "$src/meson.build")
mkdir -p "$out"
# The same sources and warnings as enclave-runtime/meson.build's target.
# shellcheck disable=SC2086
$cc -std=gnu11 -O2 -g -Wall -Wextra -Werror -fno-strict-aliasing -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE \
	-DSCONIFY_RUNTIME_VERSION="\"$version\"" \
	-I"$src/enclave-runtime" -I"$src/lib" -I"$src/lib/include" \
	"$src"/enclave-runtime/main.c "$src"/enclave-runtime/provider.c "$src"/enclave-runtime/resolve.c \
	"$src"/enclave-runtime/session.c "$src"/enclave-runtime/supervisor.c "$src"/enclave-runtime/pid1.c \
	"$src"/lib/core/buf.c "$src"/lib/core/error.c "$src"/lib/core/json-util.c "$src"/lib/core/strutil.c \
	"$src"/lib/core/xalloc.c \
	-static -ljansson -o "$out/sconify-runtime-aarch64"
echo "built $out/sconify-runtime-aarch64"
unit=
if [ -e /usr/lib/aarch64-linux-gnu/libcheck.a ]; then
	$cc -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -DSCONIFY_RUNTIME_VERSION="\"$version\"" \
		-I"$src/enclave-runtime" -I"$src/lib" -I"$src/lib/include" -I"$src/tests/unit" \
		"$src"/enclave-runtime/tests/test_runtime_unit.c "$src"/enclave-runtime/provider.c \
		"$src"/enclave-runtime/resolve.c "$src"/enclave-runtime/session.c \
		"$src"/enclave-runtime/supervisor.c "$src"/enclave-runtime/pid1.c \
		"$src"/lib/core/buf.c "$src"/lib/core/error.c "$src"/lib/core/json-util.c \
		"$src"/lib/core/strutil.c "$src"/lib/core/xalloc.c \
		-static -lcheck -lsubunit -ljansson -lm -lrt -pthread -o "$out/test_runtime_unit-aarch64"
	unit="$out/test_runtime_unit-aarch64"
	echo "built $unit"
fi
if command -v qemu-aarch64-static >/dev/null 2>&1; then
	qemu-aarch64-static "$out/sconify-runtime-aarch64" --version
	if [ -n "$unit" ]; then
		CK_FORK=yes qemu-aarch64-static "$unit"
	fi
fi
