#!/usr/bin/env bash
# Packs built binaries for the GPU machine: pack-gpu.sh DEST BUILD_DIR target-path... writes
# DEST/bins.tar.xz (stripped binaries + libgomp, xz: the static OpenBLAS makes each binary ~30 MB,
# and a run carries at most 64 MiB). There: `tar xJf DEST/bins.tar.xz -C DEST` and
# `export LD_LIBRARY_PATH=$PWD/DEST/lib`.
set -euo pipefail
dest="$1"; build="$2"; shift 2
tmp="$(mktemp -d)"
mkdir -p "$tmp/lib"
for t in "$@"; do cp "$build/$t" "$tmp/"; done
strip "$tmp"/* 2>/dev/null || true
cp -L "$(ldconfig -p | awk '$1=="libgomp.so.1"{print $NF; exit}')" "$tmp/lib/"
rm -rf "$dest" && mkdir -p "$dest"
tar cJf "$dest/bins.tar.xz" -C "$tmp" .
rm -rf "$tmp"
du -sh "$dest"
