#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the demo application image as an OCI layout: this machine's static
busybox, and /app holding a message that must stay confidential; the
command prints it. Used by scripts/demo.sh.

    testdata/build_demo_image.py OUT_DIR
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixturelib as fl  # noqa: E402

MESSAGE = b"This line was encrypted in the registry and decrypted inside the enclave runtime.\n"


def main():
    out = sys.argv[1]
    with open("/bin/busybox", "rb") as f:
        busybox = f.read()
    E = fl.Entry
    tools = [E("bin/", "dir"), E("bin/busybox", data=busybox, mode=0o755),
             E("bin/sh", "symlink", target="busybox"), E("bin/cat", "symlink", target="busybox")]
    app = [E("app/", "dir"), E("app/message.txt", data=MESSAGE)]
    lay = fl.Layout(out)
    descs, diff_ids = [], []
    for entries in (tools, app):
        tar = fl.tar_bytes(entries)
        blob = fl.compress(tar, "gzip")
        lay.add(blob)
        descs.append(fl.descriptor(fl.MT_OCI_LAYER_GZIP, blob))
        diff_ids.append("sha256:" + fl.sha256_hex(tar))
    cfg = fl.dumps({"created": fl.EPOCH, "architecture": "amd64", "os": "linux",
                    "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/cat", "/app/message.txt"]},
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    lay.add(cfg)
    m = fl.dumps({"schemaVersion": 2, "mediaType": fl.MT_OCI_MANIFEST,
                  "config": fl.descriptor(fl.MT_OCI_CONFIG, cfg), "layers": descs})
    lay.add(m)
    lay.write_index(fl.index_of([fl.tagged(fl.descriptor(fl.MT_OCI_MANIFEST, m), "latest")]))


if __name__ == "__main__":
    main()
