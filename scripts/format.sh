#!/bin/sh
# Formats our C sources with .clang-format; --check only reports differences.
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find lib cmd tests bench enclave-runtime -name '*.[ch]')
if [ "${1:-}" = "--check" ]; then
	bad=0
	for f in $files; do
		if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
			echo "needs formatting: $f" >&2
			bad=1
		fi
	done
	[ $bad -eq 0 ] && echo "formatting ok: $(echo "$files" | wc -w) files"
	exit $bad
fi
# shellcheck disable=SC2086
clang-format -i $files
