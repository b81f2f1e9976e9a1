#!/usr/bin/env bash
# Installs what the test suite needs on a Debian 12 / Ubuntu machine:
#   - syslog-ng (with its Python module) and liblognorm's lognormalizer: real CEF/syslog receivers,
#   - the openssl CLI: makes the legacy PKCS12 fixtures,
#   - the PyPI CEF parser cefp 0.0.2, into .test-deps/pylib (importable by syslog-ng's Python),
#     and, there too, pyVRL 0.0.2 (Vector's VRL parse_cef) and cefevent 0.5.6 (CEF dictionary),
#   - for packaging/ci-check.sh: lintian and rpmlint (package checks), adduser (the .deb's
#     dependency), and a minimal Debian root made by debootstrap in .test-deps/rpm-root, which the
#     .rpm is installed into and erased from with `rpm --root` (its scriptlets need /bin/sh,
#     useradd, getent; the binary needs libssl3),
#   - for the Kafka output: cmake (the build compiles librdkafka from the rdkafka crate's bundled
#     sources) and libcurl4-openssl-dev, kcat (reads a topic back by hand), and the Kafka-protocol
#     broker `tansu` 0.6.0 from crates.io (about 9 minutes to build on 2 cores; installed only when
#     `tansu` is not on PATH, so CI caches ~/.cargo/bin).
# Safe to run again. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pkgs=(syslog-ng-core syslog-ng-mod-python liblognorm-utils openssl libssl-dev pkg-config python3 python3-pip ca-certificates rpm
  lintian rpmlint debootstrap adduser cmake libcurl4-openssl-dev kcat socat)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # Keep the package from starting syslog-ng as the system logger: tests run their own instances.
  echo 'exit 101' | sudo_if_needed tee /usr/sbin/policy-rc.d >/dev/null
  sudo_if_needed chmod +x /usr/sbin/policy-rc.d
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  sudo_if_needed rm -f /usr/sbin/policy-rc.d
fi

pylib=.test-deps/pylib
# Each PyPI package once, pinned: its import path in $pylib tells whether it is there.
pip_install() { # PACKAGE==VERSION
  mkdir -p "$pylib"
  pip=$(command -v pip3 || command -v pip)
  "$pip" install --quiet --disable-pip-version-check --target "$pylib" "$1" \
    || python3 -m pip install --quiet --break-system-packages --target "$pylib" "$1"
}
if [ ! -f "$pylib/cefp/__init__.py" ] && [ ! -f "$pylib/cefp.py" ]; then pip_install cefp==0.0.2; fi
# Vector's VRL parse_cef (VRL 0.15; CPython 3.11 x86-64 wheel) and the ArcSight dictionary as
# cefevent checks it: tests/cef_third_party.rs.
if [ ! -f "$pylib/pyvrl/__init__.py" ]; then pip_install pyVRL==0.0.2; fi
if [ ! -f "$pylib/cefevent/extensions.py" ]; then pip_install cefevent==0.5.6; fi
# About 40 MB from the Debian mirror apt uses, once; a few minutes on a slow machine.
rpmroot=.test-deps/rpm-root
if [ ! -f "$rpmroot/.complete" ]; then
  mirror=${DEBOOTSTRAP_MIRROR:-http://deb.debian.org/debian}
  echo "making $rpmroot (debootstrap --variant=minbase bookworm from $mirror)"
  sudo_if_needed rm -rf "$rpmroot" "$rpmroot.tmp"
  sudo_if_needed debootstrap --variant=minbase --include=libssl3 bookworm "$rpmroot.tmp" "$mirror" >/dev/null
  sudo_if_needed touch "$rpmroot.tmp/.complete"
  sudo_if_needed mv "$rpmroot.tmp" "$rpmroot"
fi
# The broker the Kafka tests start (tests/kafka_*.rs). Its sqlite storage survives kill -9.
if ! command -v tansu >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tansu" ]; then
  echo "installing tansu 0.6.0 (cargo install; about 9 minutes on 2 cores)"
  cargo install tansu --version 0.6.0 --locked --features dynostore,libsql
fi
echo "test dependencies ready (cefp, pyVRL, cefevent in $pylib, rpm root in $rpmroot, tansu)"
