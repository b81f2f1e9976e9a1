#!/usr/bin/env bash
# Builds the release binary, the man page, and the .deb and .rpm packages into target/packages/.
#
#   packaging/build.sh
#
# Installs the packaging tools if they are missing: cargo-deb (with `cargo install --locked`, at
# the version pinned below), help2man, dpkg-dev and rpm (for rpmbuild) (apt, when run as root).
# The .deb's contents are described in Cargo.toml, [package.metadata.deb], the .rpm's in
# packaging/rpm/estreamer-cef.spec; the maintainer scripts are in packaging/debian and
# packaging/rpm. The sample eStreamer stream (examples/sample.estreamer) is written by the
# simulator (`estreamer-cef-sim sample`, tests/fmc-sim), which is built for it but not shipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# Versions known to build with Rust 1.95 (cargo-deb 3.8 needs Rust >= 1.85).
CARGO_DEB_VERSION=3.8.0

target=${CARGO_TARGET_DIR:-target}
out=$target/packages
# Generated assets live under target/release/ so that both tools map them to the real target
# directory (their sources say "target/release/packaging/...").
stage=$target/release/packaging

say() { printf '==> %s\n' "$*"; }

need_cargo_tool() { # crate subcommand version
    local have
    have=$(cargo "$2" --version 2>/dev/null | awk '{print $2}') || true
    if [ "$have" != "$3" ]; then
        say "installing $1 $3 (found: ${have:-none})"
        cargo install --locked "$1" --version "$3"
    fi
}

need_cargo_tool cargo-deb deb "$CARGO_DEB_VERSION"
# help2man writes the man page; dpkg-shlibdeps (dpkg-dev) gives the .deb its library
# dependencies (cargo-deb's "$auto": without it the package would depend on nothing).
apt_missing=()
command -v help2man >/dev/null || apt_missing+=(help2man)
command -v dpkg-shlibdeps >/dev/null || apt_missing+=(dpkg-dev)
command -v rpmbuild >/dev/null || apt_missing+=(rpm)
if [ ${#apt_missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        say "installing ${apt_missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
    else
        echo "build.sh: ${apt_missing[*]} needed: apt-get install ${apt_missing[*]}" >&2
        exit 1
    fi
fi

say "cargo build --release"
cargo build --release --locked
cargo build --release --locked -p estreamer-cef-sim

say "staging the binary (stripped) and the man page in $stage"
rm -rf "$stage"
mkdir -p "$stage" "$out"
strip --strip-all --remove-section=.comment -o "$stage/estreamer-cef" "$target/release/estreamer-cef"
packaging/manpage.sh "$stage/estreamer-cef" "$stage/estreamer-cef.1"
gzip -9 -n -f "$stage/estreamer-cef.1"
# Reference copies of the built-in mapping tables and their language reference, and the README.
for f in mappings/README.md README.md; do
    [ -f "$f" ] || { echo "build.sh: $f is missing: the packages ship it" >&2; exit 1; }
done
mkdir -p "$stage/mappings" "$stage/doc"
cp mappings/*.toml mappings/README.md "$stage/mappings/"
# The profiles' patch files ([cef] profile), one folder per profile.
for p in mappings/profiles/*/; do
    mkdir -p "$stage/$p"
    cp "$p"*.toml "$stage/$p"
done
cp README.md "$stage/doc/"
# The documents README.md links to, at the same relative paths beside the installed README, so
# that its links work in /usr/share/doc/estreamer-cef (packaging/ci-check.sh follows them).
for f in $(grep -o '](\([^)#:]*\))' README.md | sed 's/^](\(.*\))$/\1/' | sort -u); do
    [ -f "$f" ] || { echo "build.sh: README.md links to $f, which is missing" >&2; exit 1; }
    mkdir -p "$stage/doc-linked/$(dirname "$f")"
    cp "$f" "$stage/doc-linked/$f"
done
# A recorded stream to see CEF at once after installing: `estreamer-cef decode --cef` or
# `estreamer-cef replay` on /usr/share/estreamer-cef/examples/sample.estreamer.
"$target/release/estreamer-cef-sim" sample "$stage/examples/sample.estreamer" >/dev/null
cp packaging/estreamer-cef.toml "$stage/doc/estreamer-cef.toml.example"
# What the spec installs besides (cargo-deb reads these from their places in the source).
cp packaging/estreamer-cef.toml LICENSE-MIT LICENSE-APACHE systemd/estreamer-cef.service \
    systemd/estreamer-cef@.service "$stage/"

say "cargo deb"
rm -f "$out"/estreamer-cef_*.deb "$out"/estreamer-cef-*.rpm
cargo deb --no-build --no-strip --output "$out/"
say "rpmbuild"
version=$(awk -F'"' '/^version *=/ {print $2; exit}' Cargo.toml)
rpmtop=$(realpath -m "$target/rpmbuild")
rm -rf "$rpmtop"
# --nodeps: the build dependencies are not in this (Debian) machine's rpm database.
rpmbuild -bb --nodeps --quiet \
    --define "_topdir $rpmtop" \
    --define "pkg_version $version" \
    --define "stage $(realpath "$stage")" \
    --define "scripts $PWD/packaging/rpm" \
    packaging/rpm/estreamer-cef.spec
mv "$rpmtop"/RPMS/*/estreamer-cef-"$version"-*.rpm "$out/"

ls -l "$out"
