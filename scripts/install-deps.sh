#!/usr/bin/env bash
# Installs what bm's tests need on a fresh Debian machine with the Rust
# toolchain. Safe to run again: it only installs what is missing.
set -euo pipefail

need_apt=()
# Debian packages the test suite uses (more arrive with sandboxes, IPMI, …).
for pkg in git; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
