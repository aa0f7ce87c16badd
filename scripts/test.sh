#!/bin/sh
# Runs every test of sconify on a fresh Debian 12 machine: installs the packages,
# builds under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/) and
# without sanitizers (build-release/, whose binary the memory-bound tests
# measure), then runs all suites. Ends with "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."

scripts/deps.sh test

setup() {
	dir=$1
	shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

setup build-release --buildtype=release -Dwerror=true -Dtests=disabled
ninja -C build-release
setup build-asan -Db_sanitize=address,undefined -Dwerror=true
ninja -C build-asan

# The aarch64 runtime (for linux/arm64 images) and its unit suite, cross-built;
# the suites `unit-runtime-arm64' and `runtime' run them. A failure here is
# recorded for them to report, not a reason to skip the other tests.
rm -rf build-asan/aarch64
mkdir -p build-asan/aarch64
if ! { scripts/deps.sh aarch64 && NO_RUN=1 enclave-runtime/build-aarch64.sh build-asan/aarch64 &&
	test -x build-asan/aarch64/test_runtime_unit-arm64; } >build-asan/aarch64/build.log 2>&1; then
	tail -n 40 build-asan/aarch64/build.log >build-asan/aarch64/FAILED
	echo "test.sh: the aarch64 build failed (build-asan/aarch64/build.log)" >&2
fi

export SCONIFY_RELEASE_BIN="$PWD/build-release/cmd/sconify/sconify"
status=0
meson test -C build-asan --print-errorlogs --num-processes 2 "$@" || status=$?

python3 - build-asan/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["result"] in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r["result"] != "SKIP":
        failed += 1
print(f"{passed} passed, {failed} failed")
PY
exit $status
