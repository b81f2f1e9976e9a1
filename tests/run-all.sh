#!/usr/bin/env bash
# The test command (README, and .ci/run): installs what the tests need, then runs every test.
#
#   1. tests/install-deps.sh: apt packages (syslog-ng with its Python module, liblognorm's
#      lognormalizer, openssl, rpm, lintian, rpmlint, debootstrap, build dependencies), the PyPI
#      CEF parser cefp 0.0.2, pyVRL 0.0.2 and cefevent 0.5.6, and a minimal Debian root for the .rpm install test;
#   2. cargo test --release --workspace (the forwarder and the simulator crate, tests/fmc-sim): unit, integration, golden, conformance, fuzz (bounded), real
#      receivers, delivery across outages and restarts;
#   3. packaging/ci-check.sh (when present): builds the deb and rpm, lints both, upgrades the deb
#      from a previous build, runs it as the service user, verifies the systemd units, purges it,
#      installs and erases the rpm in a scratch root (rpm --root).
#
# Needs root or sudo for apt and for the package check.
set -euo pipefail
cd "$(dirname "$0")/.."

tests/install-deps.sh
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs) and run again" >&2
  exit 1
fi
echo "== cargo test (release)"
cargo test --release --workspace --all-targets --no-fail-fast
if [ -x packaging/ci-check.sh ]; then
  echo "== packaging checks"
  packaging/ci-check.sh
fi
echo "all tests passed"
