#!/usr/bin/env bash
# Installs hardkv's build and test dependencies from Debian packages (idempotent).
set -euo pipefail
pkgs=(build-essential cmake ninja-build ccache pkg-config git ca-certificates
      nlohmann-json3-dev libpcre2-dev libutf8proc-dev libcli11-dev libfmt-dev libopenblas-dev
      libxxhash-dev libgtest-dev libgmock-dev libbenchmark-dev nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from outside Debian on some machines: accept any working npm.
if command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "install-deps: apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
