#!/bin/sh
# Builds sconify-runtime for aarch64 with Debian's cross compiler, outside
# meson (a meson build has one host machine; the runtime is one static
# executable per architecture). Needs, once (Debian 12):
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install gcc-aarch64-linux-gnu libc6-dev:arm64 libyaml-dev:arm64 libssl-dev:arm64 \
#       qemu-user-static
# and, for the unit tests of the runtime's logic, check:arm64 (libsubunit-dev:arm64).
# Usage: enclave-runtime/build-aarch64.sh [OUTDIR]   (default build-aarch64/)
# Writes OUTDIR/sconify-runtime-arm64 (the name `sconify image --runtime-dir
# OUTDIR' takes for linux/arm64 images) and OUTDIR/sconify-runtime-aarch64 (a
# link to it). With qemu-aarch64-static present (and NO_RUN unset) it also
# runs the result's --version and the unit tests. The seccomp filter itself cannot run there:
# qemu-user answers seccomp(2) with ENOSYS, so the runtime refuses to start
# (as it must).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/build-aarch64}
cc=${CC:-aarch64-linux-gnu-gcc}
version=$(sed -n "s/^  version: '\(.*\)',$/\1/p" "$src/meson.build")
# The sources of enclave-runtime/meson.build's target (runtime_core_sources
# and runtime_logic_sources), with the same warnings.
logic="provider.c resolve.c linkcache.c session.c shieldfs.c supervisor.c pid1.c launch.c agent.c"
core="core/buf.c core/error.c core/stream.c core/secret.c core/strutil.c core/xalloc.c core/base64.c core/hex.c measure/measure.c policy/parse.c
policy/policy.c policy/yamltree.c shield/chunk.c shield/key.c shield/metadata.c cas/access.c cas/attest.c cas/config.c"
srcs=
for f in $logic; do srcs="$srcs $src/enclave-runtime/$f"; done
for f in $core; do srcs="$srcs $src/lib/$f"; done
flags="-std=gnu11 -Wall -Wextra -Werror -fno-strict-aliasing -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE
-DSCONIFY_RUNTIME_VERSION=\"$version\" -I$src/enclave-runtime -I$src/lib -I$src/lib/include"
mkdir -p "$out"
# shellcheck disable=SC2086
$cc $flags -O2 -g "$src/enclave-runtime/main.c" $srcs -static -lyaml -lssl -lcrypto -ljansson -pthread -ldl \
	-o "$out/sconify-runtime-arm64"
ln -sf sconify-runtime-arm64 "$out/sconify-runtime-aarch64"
echo "built $out/sconify-runtime-arm64"
unit=
if [ -e /usr/lib/aarch64-linux-gnu/libcheck.a ]; then
	# shellcheck disable=SC2086
	$cc $flags -O1 -g -I"$src/tests/unit" "$src/enclave-runtime/tests/test_runtime_unit.c" $srcs \
		-static -lcheck -lsubunit -lyaml -lssl -lcrypto -ljansson -lm -lrt -pthread -ldl -o "$out/test_runtime_unit-arm64"
	unit="$out/test_runtime_unit-arm64"
	echo "built $unit"
fi
if [ -z "${NO_RUN:-}" ] && command -v qemu-aarch64-static >/dev/null 2>&1; then
	qemu-aarch64-static "$out/sconify-runtime-arm64" --version
	if [ -n "$unit" ]; then
		CK_FORK=yes qemu-aarch64-static "$unit"
	fi
fi
