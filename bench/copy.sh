#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sconify copy against skopeo copy, on a generated image of 5 gzip layers
# (SIZE_MIB in all, default 1280 MiB uncompressed, half random so it
# compresses like real layers): oci -> oci and oci -> docker-archive, run in
# turn, each REPEAT times (default 3). Prints the median wall time and the
# peak RSS of each, and our ratio to skopeo. Numbers, never assertions.
#
#   meson setup build-release --buildtype=release && ninja -C build-release
#   bench/copy.sh [BUILD_DIR]
#
# skopeo writes docker-archive layers uncompressed, so it decompresses every
# layer; sconify keeps them as they are unless --dest-compress none asks for
# the same work: both are measured.
set -euo pipefail

build=${1:-build-release}
sconify=$build/cmd/sconify/sconify
[ -x "$sconify" ] || { echo "copy.sh: $sconify is missing: build $build first" >&2; exit 1; }
command -v skopeo >/dev/null || { echo "copy.sh: skopeo is not installed" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "copy.sh: GNU time (/usr/bin/time) is not installed" >&2; exit 1; }
size_mib=${SIZE_MIB:-1280}
repeat=${REPEAT:-3}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sconify-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "generating a ${size_mib} MiB image (5 layers) in $tmp ..." >&2
python3 - "$tmp/plain" "$size_mib" <<'PY'
import hashlib, io, json, os, random, sys, tarfile
out, size_mib = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{out}/blobs/sha256")
rng = random.Random(1)
def put(path_or_bytes):
    h = hashlib.sha256()
    if isinstance(path_or_bytes, bytes):
        h.update(path_or_bytes); size = len(path_or_bytes)
        open(f"{out}/blobs/sha256/{h.hexdigest()}", "wb").write(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            for c in iter(lambda: f.read(1 << 20), b""): h.update(c)
        size = os.path.getsize(path_or_bytes)
        os.rename(path_or_bytes, f"{out}/blobs/sha256/{h.hexdigest()}")
    return {"digest": "sha256:" + h.hexdigest(), "size": size}
layers, diff_ids = [], []
per_layer = size_mib // 5
for i in range(5):
    tmp = f"{out}/layer.tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as t:
        for j in range(per_layer // 4):  # files of 4 MiB: half random, half zeros
            data = rng.randbytes(2 << 20) + bytes(2 << 20)
            info = tarfile.TarInfo(f"layer{i}/file{j}.bin"); info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    d = put(tmp); diff_ids.append(d["digest"])
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", **d})
cfg = put(json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
man = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                      "layers": layers}).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
          **man, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
          open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
"$sconify" copy -q --dest-compress gzip "oci:$tmp/plain:bench" "oci:$tmp/src:bench"
rm -rf "$tmp/plain"
echo "source: $(du -sm "$tmp/src" | cut -f1) MiB of gzip layers" >&2

# measure NAME DEST-PATH COMMAND...: runs COMMAND, appends "NAME seconds kib" to results.
measure() {
	local name=$1 dest=$2
	shift 2
	rm -rf "$dest"
	sync
	/usr/bin/time -f "%e %M" -o "$tmp/time" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
	echo "$name $(cat "$tmp/time")" >>"$tmp/results"
}

src="oci:$tmp/src:bench"
for _ in $(seq "$repeat"); do
	measure "oci->oci sconify" "$tmp/o1" "$sconify" copy -q "$src" "oci:$tmp/o1:x"
	measure "oci->oci skopeo" "$tmp/o2" skopeo copy -q "$src" "oci:$tmp/o2:x"
	measure "oci->docker-archive sconify" "$tmp/d1.tar" "$sconify" copy -q "$src" "docker-archive:$tmp/d1.tar:b:1"
	measure "oci->docker-archive(uncompressed) sconify" "$tmp/d2.tar" \
		"$sconify" copy -q --dest-compress none "$src" "docker-archive:$tmp/d2.tar:b:1"
	measure "oci->docker-archive skopeo" "$tmp/d3.tar" skopeo copy -q "$src" "docker-archive:$tmp/d3.tar:b:1"
done

python3 - "$tmp/results" "$repeat" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    *name, secs, kib = line.split()
    runs.setdefault(" ".join(name), []).append((float(secs), int(kib)))
med = {k: (statistics.median(s for s, _ in v), max(m for _, m in v)) for k, v in runs.items()}
print(f"{'copy':45} {'wall s (median of ' + sys.argv[2] + ')':>22} {'peak RSS MiB':>13}")
for k, (s, m) in med.items():
    print(f"{k:45} {s:22.2f} {m / 1024:13.1f}")
print()
for ours, theirs in (("oci->oci sconify", "oci->oci skopeo"),
                     ("oci->docker-archive sconify", "oci->docker-archive skopeo"),
                     ("oci->docker-archive(uncompressed) sconify", "oci->docker-archive skopeo")):
    print(f"{ours} / skopeo: wall {med[ours][0] / med[theirs][0]:.2f}x, "
          f"peak RSS {med[ours][1] / med[theirs][1]:.2f}x")
PY
