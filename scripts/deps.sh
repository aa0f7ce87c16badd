#!/bin/sh
# Installs the Debian packages sconify needs. One script for README, CI and developers.
#   scripts/deps.sh build   compiler, meson and the libraries libsconify links
#   scripts/deps.sh demo    build + what scripts/demo.sh needs to make its sample image
#   scripts/deps.sh test    build + what the tests drive (skopeo, umoci, python3, ...)
#   scripts/deps.sh bench   test + the load generators bench/ drives (wrk)
#   scripts/deps.sh aarch64 the cross compiler and arm64 libraries for
#                           enclave-runtime/build-aarch64.sh, and qemu-user
set -eu

profile=${1:-test}

build_pkgs="gcc libc6-dev meson ninja-build pkg-config
  libarchive-dev libjansson-dev libssl-dev libzstd-dev zlib1g-dev libdeflate-dev libcurl4-openssl-dev
  libsodium-dev libseccomp-dev libyaml-dev libevent-dev libsqlite3-dev"
demo_pkgs="python3 zstd docker-registry skopeo umoci bubblewrap busybox-static gzip"
test_pkgs="check python3 skopeo umoci zstd gzip clang-format time docker-registry apache2-utils openssl
  bubblewrap busybox-static musl-tools python3-nacl python3-cryptography slowhttptest"

bench_pkgs="wrk"

aarch64_pkgs="gcc-aarch64-linux-gnu libc6-dev:arm64 libyaml-dev:arm64 libssl-dev:arm64 libjansson-dev:arm64 qemu-user-static
  check:arm64 libsubunit-dev:arm64"

case "$profile" in
build) pkgs=$build_pkgs ;;
aarch64)
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		if [ "$(id -u)" -eq 0 ]; then dpkg --add-architecture arm64; else sudo dpkg --add-architecture arm64; fi
	fi
	pkgs="$build_pkgs $aarch64_pkgs"
	;;
demo) pkgs="$build_pkgs $demo_pkgs" ;;
test) pkgs="$build_pkgs $test_pkgs" ;;
bench) pkgs="$build_pkgs $test_pkgs $bench_pkgs" ;;
*)
	echo "usage: $0 [build|demo|test|bench|aarch64]" >&2
	exit 2
	;;
esac

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
echo "installing:$missing" >&2
$sudo apt-get update -q
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
