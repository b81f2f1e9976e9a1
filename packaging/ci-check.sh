#!/usr/bin/env bash
# CI check of the packages, run as root on a Debian 12 machine (after the tests, so that
# `cargo build --release` is done once and shared):
#
#   1. builds the .deb and the .rpm (packaging/build.sh); lintian (overrides in
#      packaging/debian/lintian-overrides) and rpmlint (packaging/rpm/rpmlint.toml) find nothing;
#      the binary links nothing beyond a base system's libraries, and the .rpm requires no
#      symbol version newer than Rocky 9.0 ships (glibc 2.34, OpenSSL 3.0);
#   2. installs a previous build of the .deb (this one repacked with a lower version and another
#      shipped configuration), edits the conffile as an administrator would, upgrades to this
#      build: the edit is kept and the new file is put next to it (.dpkg-dist); then checks what
#      the package put where: service user, folders and their owners, conffile, units, man page,
#      mapping tables;
#   3. as the service user: --version, check-config, mappings check, and `test` + a few seconds
#      of `run` against the FMC simulator, with the client PKCS12 and password installed in
#      /etc/estreamer-cef the way the README says (root:estreamer-cef, 0640);
#   4. reinstalls over a modified configuration: the modification stays;
#   5. systemd-analyze verify on both installed units, systemd-analyze security (offline) with
#      the exposure score printed, failing above 2.0;
#   6. dpkg --purge: the user, group, /etc/estreamer-cef, /var/lib/estreamer-cef,
#      /var/log/estreamer-cef and every file of the package are gone;
#   7. rpm -qlp lists the expected files and folders of the .rpm (config file marked noreplace,
#      licenses marked %license, scriptlets);
#   8. the .rpm installed with `rpm --root` into a copy of a minimal Debian root
#      (.test-deps/rpm-root, made by tests/install-deps.sh), its scriptlets run there: service
#      user, folders, the binary runs; `rpm -e` runs the scriptlets and leaves none of the
#      package's files and folders.
#
# Leaves the machine as it found it: the package is purged even when a check fails.
# shellcheck disable=SC2015
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=estreamer-cef
USER_NAME=estreamer-cef
# A free loopback port for the simulator (a fixed one may be taken on a shared machine).
SIM_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MAX_EXPOSURE=2.0

target=${CARGO_TARGET_DIR:-target}
out=$target/packages
work=$(mktemp -d /tmp/estreamer-cef-ci.XXXXXX)
sim_pid=

step() { printf '\n==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
fail() {
    printf '\nci-check FAILED: %s\n' "$*" >&2
    exit 1
}
as_service_user() { runuser -u "$USER_NAME" -- "$@"; }

cleanup() {
    local rc=$?
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
    if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'installed\|config-files'; then
        echo "==> cleanup: dpkg --purge $PKG"
        dpkg --purge "$PKG" >/dev/null || true
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || fail "run as root (dpkg -i, runuser)"
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q installed; then
    fail "$PKG is already installed here; this check installs and purges it: remove it first"
fi

step "tools (apt): rpm, help2man, systemd-analyze, dpkg-shlibdeps, lintian, rpmlint"
missing=()
command -v rpm >/dev/null || missing+=(rpm)
command -v lintian >/dev/null || missing+=(lintian)
command -v rpmlint >/dev/null || missing+=(rpmlint)
command -v adduser >/dev/null || missing+=(adduser)
command -v help2man >/dev/null || missing+=(help2man)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
systemd-analyze --version | head -1
rpm_root_template=.test-deps/rpm-root
[ -f "$rpm_root_template/.complete" ] ||
    fail "no minimal Debian root in $rpm_root_template for the .rpm install: run tests/install-deps.sh"

step "1. build the packages"
packaging/build.sh
version=$(awk -F'"' '/^version *=/ {print $2; exit}' Cargo.toml)
deb=$(ls "$out"/${PKG}_"$version"-*_*.deb)
rpmfile=$(ls "$out"/${PKG}-"$version"-*.rpm)
depends=$(dpkg-deb -f "$deb" Depends)
grep -q 'libssl3' <<<"$depends" && grep -q 'libc6' <<<"$depends" ||
    fail "the .deb's Depends lacks libc6 or libssl3: \"$depends\""
grep -q 'adduser' <<<"$depends" || fail "the .deb's Depends lacks adduser (its postinst uses it): \"$depends\""
ok "$deb (Depends: $depends)"
# librdkafka (the Kafka output) is linked in statically: the binary needs only libraries every
# Debian 12 and Rocky 9 base has (libc, libm, libgcc_s, libssl3/libcrypto, zlib).
needed=$(objdump -p target/release/packaging/estreamer-cef | awk '/NEEDED/ {print $2}' | sort | tr '\n' ' ')
for lib in $needed; do
    case "$lib" in
    libc.so.6 | libm.so.6 | libgcc_s.so.1 | libssl.so.3 | libcrypto.so.3 | libz.so.1 | ld-linux-x86-64.so.2) ;;
    *) fail "the binary needs $lib, which a base Debian 12 / Rocky 9 may lack (NEEDED: $needed)" ;;
    esac
done
objdump -p target/release/packaging/estreamer-cef | grep -q 'NEEDED.*librdkafka' &&
    fail "the binary links librdkafka dynamically; it must be built in (rdkafka feature cmake-build)"
ok "the binary needs only $needed(librdkafka built in)"
# No Rocky 9 root can be had here (no Rocky mirror, no container engine), so its ABI is checked
# from the versions it ships: the packages are built on Debian 12 (glibc 2.36), and one new libc
# call can make the binary need a symbol version Rocky 9.0 lacks. Ceilings: glibc 2.34, OpenSSL
# 3.0 (9.0 ships 3.0.1; 3.2 came with 9.5), zlib 1.2.11, gcc 11's libgcc_s.
rpm -qp --requires "$rpmfile" >"$work/rpm-requires" 2>/dev/null
above_ceiling() { # $1 = symbol-set prefix, $2 = ceiling: prints the required versions above it
    sed -n "s/.*(${1}_\([0-9.]*\))(64bit)\$/\1/p" "$work/rpm-requires" | sort -uV |
        while read -r v; do
            [ "$(printf '%s\n%s\n' "$v" "$2" | sort -V | tail -1)" = "$2" ] || echo "${1}_$v"
        done
}
too_new=$(above_ceiling GLIBC 2.34; above_ceiling OPENSSL 3.0.0; above_ceiling ZLIB 1.2.11; above_ceiling GCC 11.0.0)
[ -z "$too_new" ] ||
    fail "the .rpm requires symbol versions Rocky 9 does not have: $(echo $too_new) (see rpm -qp --requires)"
grep -q 'GLIBC_' "$work/rpm-requires" || fail "rpm -qp --requires lists no glibc symbol versions: the check above saw nothing"
ok "$rpmfile (symbol versions within Rocky 9's: newest $(sed -n 's/.*(\(GLIBC_[0-9.]*\)).*/\1/p' "$work/rpm-requires" | sort -V | tail -1))"
lintian --fail-on error,warning --info "$deb" >"$work/lintian.log" 2>&1 || {
    cat "$work/lintian.log"
    fail "lintian found errors or warnings in $deb (justified exceptions go in packaging/debian/lintian-overrides)"
}
ok "lintian: no errors, no warnings"
rpmlint -c packaging/rpm/rpmlint.toml "$rpmfile" >"$work/rpmlint.log" 2>&1 || true
grep -q ' 0 errors, 0 warnings' "$work/rpmlint.log" || {
    cat "$work/rpmlint.log"
    fail "rpmlint found errors or warnings in $rpmfile (justified exceptions go in packaging/rpm/rpmlint.toml)"
}
ok "rpmlint: no errors, no warnings"

step "2. dpkg -i of a previous build, a local edit, the upgrade to this build"
conffile=/etc/estreamer-cef/estreamer-cef.toml
prev=$work/prev
dpkg-deb -R "$deb" "$prev"
sed -i "s/^Version: .*/Version: $version-0/" "$prev/DEBIAN/control"
echo "# shipped by the previous build" >>"$prev$conffile"
dpkg-deb --root-owner-group -b "$prev" "$work/prev.deb" >/dev/null
dpkg -i "$work/prev.deb" >/dev/null
[ "$(dpkg-query -W -f='${Version}' "$PKG")" = "$version-0" ] || fail "the previous build did not install"
echo "# local change by ci-check" >>"$conffile"
# --force-confold: keep the administrator's file without asking, as unattended upgrades do.
dpkg --force-confold -i "$deb"
[ "$(dpkg-query -W -f='${Version}' "$PKG")" = "$(dpkg-deb -f "$deb" Version)" ] ||
    fail "the upgrade did not install $deb"
grep -q '^# local change by ci-check$' "$conffile" || fail "the upgrade lost the local edit of $conffile"
cmp -s "$conffile.dpkg-dist" packaging/estreamer-cef.toml ||
    fail "the upgrade did not put the new $conffile next to the edited one as $conffile.dpkg-dist"
ok "upgraded from $version-0: the edited $conffile kept, the new one in $conffile.dpkg-dist"
getent passwd "$USER_NAME" >/dev/null || fail "no user $USER_NAME after install"
getent group "$USER_NAME" >/dev/null || fail "no group $USER_NAME after install"
uid=$(id -u "$USER_NAME")
[ "$uid" -lt 1000 ] || fail "$USER_NAME has uid $uid: not a system user"
shell=$(getent passwd "$USER_NAME" | cut -d: -f7)
case "$shell" in */nologin | */false) ;; *) fail "$USER_NAME has a login shell: $shell" ;; esac
ok "system user $USER_NAME (uid $uid, shell $shell)"

expect_dir() { # path owner:group mode
    [ -d "$1" ] || fail "$1 is missing"
    local got
    got=$(stat -c '%U:%G %a' "$1")
    [ "$got" = "$2 $3" ] || fail "$1 is $got, expected $2 $3"
    ok "$1 $got"
}
expect_dir /var/lib/estreamer-cef "$USER_NAME:$USER_NAME" 750
expect_dir /var/log/estreamer-cef "$USER_NAME:$USER_NAME" 750
expect_dir /etc/estreamer-cef/mappings root:root 755
[ -z "$(ls -A /etc/estreamer-cef/mappings)" ] || fail "/etc/estreamer-cef/mappings is not empty"

dpkg-query --showformat='${Conffiles}\n' --show "$PKG" | grep -q '^ /etc/estreamer-cef/estreamer-cef.toml ' ||
    fail "/etc/estreamer-cef/estreamer-cef.toml is not a conffile"
ok "/etc/estreamer-cef/estreamer-cef.toml is a conffile"
for f in /usr/bin/estreamer-cef /lib/systemd/system/estreamer-cef.service \
    /lib/systemd/system/estreamer-cef@.service /usr/share/doc/estreamer-cef/README.md \
    /usr/share/doc/estreamer-cef/estreamer-cef.toml.example; do
    dpkg -L "$PKG" | grep -qx "$f" || fail "$f is not in the package"
done
for f in mappings/*.toml mappings/README.md mappings/profiles/*/*.toml; do
    [ -f "$f" ] || continue
    cmp -s "$f" "/usr/share/estreamer-cef/$f" || fail "/usr/share/estreamer-cef/$f differs from $f or is missing"
done
for f in README.md; do
    [ -f "$f" ] || continue
    cmp -s "$f" "/usr/share/doc/estreamer-cef/$f" || fail "/usr/share/doc/estreamer-cef/$f differs from $f or is missing"
done
ok "binary, units, READMEs, and every mappings/*.toml (+ README.md, profiles) in /usr/share/estreamer-cef/mappings"
# Every relative link of the installed README leads to an installed file.
links=$(grep -o '](\([^)#:]*\))' /usr/share/doc/estreamer-cef/README.md | sed 's/^](\(.*\))$/\1/' | sort -u)
for l in $links; do
    [ -f "/usr/share/doc/estreamer-cef/$l" ] ||
        fail "the installed README links to $l, which is not in /usr/share/doc/estreamer-cef"
    cmp -s "$l" "/usr/share/doc/estreamer-cef/$l" || fail "/usr/share/doc/estreamer-cef/$l differs from $l"
done
[ -n "$links" ] || fail "found no relative link in the installed README: the check above saw nothing"
ok "the installed README's links lead to installed files: $(echo $links)"

# The README's Install section: CEF at once from the shipped sample, with the packaged
# configuration, before any FMC or receiver exists.
sample=/usr/share/estreamer-cef/examples/sample.estreamer
dpkg -L "$PKG" | grep -qx "$sample" || fail "$sample is not in the package"
as_service_user estreamer-cef decode --cef "$sample" >"$work/sample.cef" ||
    fail "estreamer-cef decode --cef $sample failed"
sample_lines=$(cut -f2- "$work/sample.cef" | grep -c '^CEF:0|' || true)
[ "$sample_lines" -gt 50 ] && [ "$sample_lines" -eq "$(wc -l <"$work/sample.cef")" ] ||
    fail "decode --cef $sample printed $sample_lines CEF lines of $(wc -l <"$work/sample.cef")"
ok "decode --cef $sample: $sample_lines CEF lines"

manpage=/usr/share/man/man1/estreamer-cef.1.gz
dpkg -L "$PKG" | grep -qx "$manpage" || fail "no man page in the package"
man_check=--man=yes
if [ -f "$manpage" ]; then
    # The page documents every subcommand with its full --help.
    for cmd in $(estreamer-cef --help | awk '/^Commands:/{on=1; next} on && /^[^ ]/{on=0} on && NF {print $1}' | grep -vx help); do
        zcat "$manpage" | grep -q "^\.SS \"$cmd\"" || fail "the man page has no section for \"$cmd\""
    done
    ok "man page with a section per subcommand"
else
    # Minimal images (Docker's Debian) exclude /usr/share/man through dpkg's path-exclude.
    echo "    note: $manpage is in the package but dpkg excluded it here (path-exclude); man pages not checked"
    man_check=--man=no
fi

step "3. as the service user"
v=$(as_service_user estreamer-cef --version)
[ "$v" = "estreamer-cef $version" ] || fail "--version printed \"$v\", expected \"estreamer-cef $version\""
ok "$v"
as_service_user estreamer-cef check-config >"$work/effective.toml" ||
    fail "check-config as $USER_NAME failed"
head -1 "$work/effective.toml" | grep -q '/etc/estreamer-cef/estreamer-cef.toml' ||
    fail "check-config did not read /etc/estreamer-cef/estreamer-cef.toml: $(head -1 "$work/effective.toml")"
ok "check-config reads the packaged configuration"
as_service_user estreamer-cef mappings check || fail "mappings check as $USER_NAME failed"

# The first-run steps of the README against the simulator: PKCS12 and password in /etc, owned
# root:estreamer-cef with mode 0640, an instance configuration, `test`, then `run`.
# The simulator is not in the package: it is built from the source tree (tests/fmc-sim).
cargo build --release --locked -p estreamer-cef-sim
sim=target/release/estreamer-cef-sim
"$sim" simulate --init "$work/pki" >/dev/null
install -m 0640 -o root -g "$USER_NAME" "$work/pki/client.pkcs12" /etc/estreamer-cef/client.pkcs12
install -m 0640 -o root -g "$USER_NAME" "$work/pki/client.pass" /etc/estreamer-cef/client.pass
cat >/etc/estreamer-cef/ci.toml <<EOF
[fmc]
host = "127.0.0.1"
port = $SIM_PORT
start = "genesis"

[[output]]
transport = "file"
path = "/var/log/estreamer-cef/ci.cef"
EOF
: >"$work/sim.log"
"$sim" simulate --pki "$work/pki" --listen "127.0.0.1:$SIM_PORT" --events-per-type 2 \
    >"$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 50); do
    grep -q listening "$work/sim.log" && break
    sleep 0.1
done
grep -q listening "$work/sim.log" || fail "the simulator did not start: $(cat "$work/sim.log")"
if ! as_service_user estreamer-cef -c /etc/estreamer-cef/ci.toml test >"$work/test.out"; then
    cat "$work/test.out"
    fail "estreamer-cef test as $USER_NAME against the simulator failed"
fi
ok "estreamer-cef test: $(tail -1 "$work/test.out")"
# setpriv execs the binary itself, so timeout's SIGTERM reaches it (a clean stop, exit 0).
rc=0
timeout --preserve-status -s TERM 6 setpriv --reuid="$USER_NAME" --regid="$USER_NAME" --init-groups -- \
    estreamer-cef -c /etc/estreamer-cef/ci.toml run 2>"$work/run.log" || rc=$?
[ "$rc" -eq 0 ] || {
    cat "$work/run.log"
    fail "run as $USER_NAME ended with exit code $rc after SIGTERM (expected a clean stop, 0)"
}
lines=$(grep -c '^CEF:0|' /var/log/estreamer-cef/ci.cef || true)
[ "$lines" -gt 0 ] || fail "run as $USER_NAME wrote no CEF line to /var/log/estreamer-cef/ci.cef"
bookmark=/var/lib/estreamer-cef/127.0.0.1-$SIM_PORT/bookmark.json
[ "$(stat -c %U "$bookmark" 2>/dev/null)" = "$USER_NAME" ] || fail "no bookmark written by $USER_NAME at $bookmark"
ok "run as $USER_NAME: $lines CEF lines, bookmark $bookmark, clean stop on SIGTERM"
# replay sends the shipped sample through the configured outputs as `run` would, and touches
# no state: the bookmark stays as run left it.
before=$(cat "$bookmark")
as_service_user estreamer-cef -c /etc/estreamer-cef/ci.toml replay "$sample" 2>"$work/replay.log" || {
    cat "$work/replay.log"
    fail "replay of $sample as $USER_NAME failed"
}
after_replay=$(grep -c '^CEF:0|' /var/log/estreamer-cef/ci.cef || true)
[ "$after_replay" -eq $((lines + sample_lines)) ] ||
    fail "replay added $((after_replay - lines)) CEF lines to /var/log/estreamer-cef/ci.cef, expected $sample_lines"
[ "$(cat "$bookmark")" = "$before" ] || fail "replay changed the bookmark $bookmark"
ok "replay $sample: $sample_lines events to the file output, bookmark untouched"
kill "$sim_pid" 2>/dev/null || true
wait "$sim_pid" 2>/dev/null || true
sim_pid=

step "4. reinstall over a modified configuration"
echo "# local change by ci-check" >>/etc/estreamer-cef/estreamer-cef.toml
dpkg -i "$deb" >/dev/null
grep -q '^# local change by ci-check$' /etc/estreamer-cef/estreamer-cef.toml ||
    fail "reinstalling the package overwrote /etc/estreamer-cef/estreamer-cef.toml"
[ -f "$bookmark" ] || fail "reinstalling the package lost the state in /var/lib/estreamer-cef"
ok "configuration and state kept"

step "5. systemd-analyze verify and security"
# verify also checks that ExecStart's binary exists (it does: installed) and, with --man=yes,
# that man:estreamer-cef(1) opens.
instance_dir=$work/units
mkdir -p "$instance_dir"
cp /lib/systemd/system/estreamer-cef@.service "$instance_dir/estreamer-cef@ci.service"
for unit in /lib/systemd/system/estreamer-cef.service /lib/systemd/system/estreamer-cef@.service \
    "$instance_dir/estreamer-cef@ci.service"; do
    if ! systemd-analyze verify "$man_check" "$unit" 2>"$work/verify.log" || [ -s "$work/verify.log" ]; then
        cat "$work/verify.log"
        fail "systemd-analyze verify $unit"
    fi
    ok "systemd-analyze verify $unit: no findings"
done
max=$(awk -v m="$MAX_EXPOSURE" 'BEGIN {print m * 10}')
for unit in /lib/systemd/system/estreamer-cef.service "$instance_dir/estreamer-cef@ci.service"; do
    rc=0
    systemd-analyze security --offline=yes --threshold="$max" "$unit" >"$work/security.log" 2>&1 || rc=$?
    grep '✗' "$work/security.log" | sed 's/^/    /' || true
    score=$(grep 'Overall exposure level' "$work/security.log") || {
        cat "$work/security.log"
        fail "systemd-analyze security printed no exposure level for $unit"
    }
    echo "    $score"
    [ "$rc" -eq 0 ] || fail "$unit: exposure above $MAX_EXPOSURE"
done

step "6. dpkg --purge"
dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's|^\./|/|' | grep -v '/$' >"$work/deb-files"
dpkg --purge "$PKG"
! getent passwd "$USER_NAME" >/dev/null || fail "user $USER_NAME is still there after purge"
! getent group "$USER_NAME" >/dev/null || fail "group $USER_NAME is still there after purge"
for p in /etc/estreamer-cef /var/lib/estreamer-cef /var/log/estreamer-cef /usr/bin/estreamer-cef \
    /usr/share/estreamer-cef /lib/systemd/system/estreamer-cef.service; do
    [ ! -e "$p" ] || fail "$p is still there after purge"
done
while read -r f; do
    [ ! -e "$f" ] || fail "$f (from the package) is still there after purge"
done <"$work/deb-files"
ok "user, group, /etc/estreamer-cef, /var/lib/estreamer-cef, /var/log/estreamer-cef, $(wc -l <"$work/deb-files") files gone"

step "7. rpm -qlp"
expected=$work/rpm-expected
{
    printf '%s\n' /usr/bin/estreamer-cef /etc/estreamer-cef/estreamer-cef.toml \
        /usr/lib/systemd/system/estreamer-cef.service /usr/lib/systemd/system/estreamer-cef@.service \
        /usr/share/man/man1/estreamer-cef.1.gz /usr/share/doc/estreamer-cef/README.md \
        /usr/share/doc/estreamer-cef/estreamer-cef.toml.example \
        /usr/share/estreamer-cef/examples/sample.estreamer \
        /usr/share/licenses/estreamer-cef/LICENSE-MIT /usr/share/licenses/estreamer-cef/LICENSE-APACHE
    # The folders it owns, so that `rpm -e` removes them.
    printf '%s\n' /etc/estreamer-cef /etc/estreamer-cef/mappings /usr/share/estreamer-cef \
        /usr/share/estreamer-cef/mappings /usr/share/estreamer-cef/examples /usr/share/doc/estreamer-cef /usr/share/licenses/estreamer-cef \
        /var/lib/estreamer-cef /var/log/estreamer-cef
    for d in mappings/profiles mappings/profiles/*/; do
        if [ -d "$d" ]; then echo "/usr/share/estreamer-cef/${d%/}"; fi
    done
    for f in mappings/*.toml mappings/README.md mappings/profiles/*/*.toml; do
        if [ -f "$f" ]; then echo "/usr/share/estreamer-cef/$f"; fi
    done
    # What README.md links to, and the folders holding it, beside the README.
    for l in $(grep -o '](\([^)#:]*\))' README.md | sed 's/^](\(.*\))$/\1/' | sort -u); do
        printf '%s\n' "/usr/share/doc/estreamer-cef/$l" "/usr/share/doc/estreamer-cef/$(dirname "$l")"
    done
} | sort -u >"$expected"
rpm -qlp "$rpmfile" 2>/dev/null | sort >"$work/rpm-actual"
diff -u "$expected" "$work/rpm-actual" || fail "the .rpm's file list differs from the expected one (- expected, + actual)"
ok "$(wc -l <"$work/rpm-actual") files as expected"
flags=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpmfile" 2>/dev/null |
    awk '$1 == "/etc/estreamer-cef/estreamer-cef.toml" {print $2}')
[ "$flags" = cn ] || fail "/etc/estreamer-cef/estreamer-cef.toml in the .rpm has flags \"$flags\", expected cn (%config(noreplace))"
ok "/etc/estreamer-cef/estreamer-cef.toml is %config(noreplace)"
licenses=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpmfile" 2>/dev/null | awk '$2 == "l" {print $1}' | sort | tr '\n' ' ')
[ "$licenses" = "/usr/share/licenses/estreamer-cef/LICENSE-APACHE /usr/share/licenses/estreamer-cef/LICENSE-MIT " ] ||
    fail "the .rpm's %license files are \"$licenses\", expected LICENSE-APACHE and LICENSE-MIT"
ok "%license LICENSE-APACHE LICENSE-MIT"
[ "$(rpm -qp --qf '%{DESCRIPTION}' "$rpmfile" 2>/dev/null)" != "$(rpm -qp --qf '%{SUMMARY}' "$rpmfile" 2>/dev/null)" ] ||
    fail "the .rpm's description only repeats its summary"
scripts=$(rpm -qp --scripts "$rpmfile" 2>/dev/null)
for want in 'preinstall scriptlet' 'useradd --system' 'postinstall scriptlet' 'preuninstall scriptlet' \
    'postuninstall scriptlet'; do
    grep -q -- "$want" <<<"$scripts" || fail "the .rpm's scriptlets lack \"$want\""
done
ok "scriptlets: %pre creates the user, %post/%preun/%postun handle systemd"

step "8. rpm --root: install and erase in a minimal Debian root"
# The root's rpm database knows none of its Debian libraries: --nodeps (the binary's libraries,
# libssl3 and libc6, are there).
rroot=$work/rpm-root
cp -a "$rpm_root_template" "$rroot"
in_root() { chroot "$rroot" "$@"; }
rpm --root "$rroot" -i --nodeps "$rpmfile" 2>&1 | grep -v 'use Alien\|know what you are doing' || true
rpm --root "$rroot" -q "$PKG" >/dev/null || fail "rpm --root -i did not install $PKG"
in_root getent passwd "$USER_NAME" >/dev/null || fail "%pre did not create the user $USER_NAME"
for d in /var/lib/estreamer-cef /var/log/estreamer-cef; do
    got=$(in_root stat -c '%U:%G %a' "$d")
    [ "$got" = "$USER_NAME:$USER_NAME 750" ] || fail "$d in the rpm root is $got, expected $USER_NAME:$USER_NAME 750"
done
v=$(in_root runuser -u "$USER_NAME" -- /usr/bin/estreamer-cef --version) ||
    fail "the installed binary does not run in the rpm root"
in_root runuser -u "$USER_NAME" -- /usr/bin/estreamer-cef mappings check >/dev/null ||
    fail "mappings check as $USER_NAME in the rpm root failed"
rpm_sample=$(in_root runuser -u "$USER_NAME" -- /usr/bin/estreamer-cef decode --cef "$sample" | cut -f2- | grep -c '^CEF:0|' || true)
[ "$rpm_sample" -eq "$sample_lines" ] ||
    fail "decode --cef $sample in the rpm root printed $rpm_sample CEF lines, expected $sample_lines"
ok "decode --cef $sample in the rpm root: $rpm_sample CEF lines"
ok "installed: user $USER_NAME, /var/lib and /var/log folders 0750, \"$v\" runs as $USER_NAME"
rpm --root "$rroot" -e "$PKG" 2>&1 | grep -v 'use Alien\|know what you are doing' || true
! rpm --root "$rroot" -q "$PKG" >/dev/null || fail "rpm --root -e did not erase $PKG"
while read -r f; do
    [ ! -e "$rroot$f" ] || fail "$f is still in the rpm root after rpm -e"
done <"$work/rpm-actual"
ok "erased: none of the $(wc -l <"$work/rpm-actual") files and folders is left"

printf '\nci-check passed\n'
