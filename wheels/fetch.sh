#!/usr/bin/env bash
# Fetch the wheels the Blender extension imports inside Blender (listed in blender_manifest.toml).
# plyfile 1.1.3 is pure Python (1.1.4+ require numpy>=2, Blender ships numpy 1.x up to 5.0);
# zstandard is compiled: cp311 (Blender 4.2-5.0) and cp313 (Blender 5.1+) for Linux x86_64,
# macOS arm64 / x86_64 and Windows amd64. Usage: bash wheels/fetch.sh [python]
# (python defaults to ../.venv/bin/python, else python3; it only needs pip).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${1:-$here/../.venv/bin/python}"
[ -x "$py" ] || py=python3
ZSTD=0.25.0
get() { "$py" -m pip download -q --only-binary=:all: --no-deps -d "$here" "$@"; }
get plyfile==1.1.3
for pv in 311 313; do
  get --python-version "$pv" --platform manylinux_2_17_x86_64 "zstandard==$ZSTD"
  get --python-version "$pv" --platform macosx_11_0_arm64 "zstandard==$ZSTD"
  get --python-version "$pv" --platform win_amd64 "zstandard==$ZSTD"
done
# macOS x86_64: cp311 wheels target 10.9, cp313 wheels 10.13.
get --python-version 311 --platform macosx_10_9_x86_64 "zstandard==$ZSTD"
get --python-version 313 --platform macosx_10_13_x86_64 "zstandard==$ZSTD"
ls -1 "$here"/*.whl
