#!/usr/bin/env bash
# The whole test suite, as the README's second command and CI run it:
# installs what the tests need, then format, lint, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
cargo nextest run --workspace --locked --no-fail-fast
