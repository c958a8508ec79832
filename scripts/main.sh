#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, and generates text with the embedded
# default model. Until the project's own trained model lands, the default model is a random-weight
# checkpoint made by `hardkv make-model --preset tiny` (its text is therefore gibberish).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
build="${HARDKV_BUILD_DIR:-build}"
model="${HARDKV_MODEL:-$build/models/tiny-random}"
if [ ! -f "$model/config.json" ]; then
  "$build/hardkv" make-model --preset tiny --random --out "$model" --seed 0
fi
"$build/hardkv" generate -m "$model" -p "${1:-The meaning of life is}" --max-tokens 64 --temperature 0
