#!/usr/bin/env bash
# The units under a real systemd: boots a minimal Debian 12 in a container (debootstrap +
# systemd-nspawn, private network) with the .deb installed and an FMC simulator running as a
# unit, then checks what `systemd-analyze verify` cannot: Type=notify readiness, the hardening
# letting the program work (TLS to the FMC, state, logs), the watchdog, reload, a clean stop,
# an instance of estreamer-cef@.service, and a purge while the services run.
#
#   packaging/boot-check.sh [ROOTFS]      (default /var/tmp/estreamer-cef-bootcheck)
#
# Not part of ci-check.sh: it needs network access once (debootstrap from deb.debian.org; the
# root file system is kept and reused), the apt packages debootstrap and systemd-container, and
# about 4 minutes (the watchdog check waits 100 s). Run as root, after packaging/build.sh.
# `A && ok ... || bad ...` is meant: ok() always succeeds.
# shellcheck disable=SC2015,SC2012
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:-/var/tmp/estreamer-cef-bootcheck}
deb=$(ls "${CARGO_TARGET_DIR:-target}"/packages/estreamer-cef_*_*.deb 2>/dev/null | tail -1)
[ -n "$deb" ] || { echo "boot-check: no .deb in target/packages: run packaging/build.sh first" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "boot-check: run as root" >&2; exit 1; }
for tool in debootstrap systemd-nspawn nsenter; do
    command -v "$tool" >/dev/null || { echo "boot-check: $tool is missing (apt-get install debootstrap systemd-container)" >&2; exit 1; }
done

failures=()
ok() { printf '    ok: %s\n' "$*"; }
bad() { printf '    FAILED: %s\n' "$*"; failures+=("$*"); }

if [ ! -x "$root/lib/systemd/systemd" ]; then
    echo "==> debootstrap bookworm into $root (once)"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,libssl3,adduser,passwd,procps \
        bookworm "$root" http://deb.debian.org/debian >/dev/null
    printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
fi

echo "==> install $deb, an FMC simulator unit and a configuration"
cp "$deb" "$root/root/estreamer-cef.deb"
# The simulator is not in the package: the one built from the source tree (tests/fmc-sim).
cargo build --release --locked -p estreamer-cef-sim
install -m 0755 target/release/estreamer-cef-sim "$root/usr/local/bin/estreamer-cef-sim"
chroot "$root" sh -ec '
    dpkg --purge estreamer-cef >/dev/null 2>&1 || true
    rm -rf /root/pki /root/good.toml
    dpkg -i /root/estreamer-cef.deb >/dev/null
    estreamer-cef-sim simulate --init /root/pki >/dev/null
    install -m 0640 -o root -g estreamer-cef /root/pki/client.pkcs12 /etc/estreamer-cef/client.pkcs12
    install -m 0640 -o root -g estreamer-cef /root/pki/client.pass /etc/estreamer-cef/client.pass
    { printf "[fmc]\nhost = \"127.0.0.1\"\n\n[monitor]\nperiod = \"10s\"\n\n"
      printf "[[output]]\ntransport = \"file\"\npath = \"/var/log/estreamer-cef/events.cef\"\n\n"
      cat /etc/estreamer-cef/estreamer-cef.toml; } >/root/good.toml
    cp /root/good.toml /etc/estreamer-cef/estreamer-cef.toml
    sed "s|events.cef|dc1.cef|; 0,/^host = \"127.0.0.1\"/s//host = \"localhost\"/" /root/good.toml \
        >/etc/estreamer-cef/dc1.toml
    printf "[Unit]\nDescription=FMC simulator\nBefore=estreamer-cef.service estreamer-cef@dc1.service\n[Service]\nExecStart=/usr/local/bin/estreamer-cef-sim simulate --pki /root/pki --listen 127.0.0.1:8302 --record-types 71 --loop --rate 20\n[Install]\nWantedBy=multi-user.target\n" \
        >/etc/systemd/system/fmc-sim.service
    systemctl enable fmc-sim.service estreamer-cef.service >/dev/null 2>&1
'

echo "==> boot the container"
booted=$(date +%s)
log=$(mktemp)
# --keep-unit --register=no: no systemd (machined, scopes) needed on the host.
systemd-nspawn -D "$root" --boot --register=no --keep-unit --private-network --console=passive \
    >"$log" 2>&1 &
nspawn=$!
cleanup() {
    kill "$nspawn" 2>/dev/null || true
    wait "$nspawn" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT
init=
for _ in $(seq 100); do
    init=$(pgrep -P "$nspawn" | head -1 || true)
    [ -n "$init" ] && nsenter -t "$init" -m -u -i -n -p -- systemctl is-system-running >/dev/null 2>&1 && break
    sleep 0.3
done
[ -n "$init" ] || { cat "$log"; echo "boot-check: the container did not boot" >&2; exit 1; }
inside() { nsenter -t "$init" -m -u -i -n -p -- "$@"; }
prop() { inside systemctl show -P "$2" "$1"; }
sleep 5

echo "==> checks"
[ "$(prop estreamer-cef ActiveState)" = active ] && [ "$(prop estreamer-cef StatusText)" = streaming ] &&
    ok "estreamer-cef.service active with Status \"streaming\" (READY=1 after the FMC session)" ||
    bad "estreamer-cef.service: $(prop estreamer-cef ActiveState), status \"$(prop estreamer-cef StatusText)\""
user=$(inside ps -o user= -p "$(prop estreamer-cef MainPID)" || true)
[ "$user" = estreamer-cef ] && ok "runs as estreamer-cef" || bad "runs as \"$user\""
lines=$(inside sh -c 'grep -c "^CEF:0|" /var/log/estreamer-cef/events.cef' || true)
[ "${lines:-0}" -gt 0 ] && ok "$lines CEF lines in /var/log/estreamer-cef/events.cef" || bad "no CEF line written"
inside systemctl reload estreamer-cef
sleep 1
journal=$(inside journalctl -u estreamer-cef -o cat --since "@$booted")
grep -q "mapping tables reloaded" <<<"$journal" &&
    ok "systemctl reload: mapping tables reloaded" || bad "systemctl reload did not reload the mapping tables"
score=$(inside systemd-analyze security --threshold=20 estreamer-cef | tail -1) &&
    ok "${score#→ }" || bad "exposure above 2.0: $score"
inside systemctl start estreamer-cef@dc1
[ "$(prop estreamer-cef@dc1 ActiveState)" = active ] && inside test -d /var/lib/estreamer-cef/localhost-8302 &&
    ok "estreamer-cef@dc1 active next to estreamer-cef, state in /var/lib/estreamer-cef/localhost-8302" ||
    bad "estreamer-cef@dc1: $(prop estreamer-cef@dc1 ActiveState)"
inside systemctl stop estreamer-cef estreamer-cef@dc1
[ "$(prop estreamer-cef Result)" = success ] && [ "$(prop estreamer-cef ExecMainStatus)" = 0 ] &&
    ok "systemctl stop: clean exit (status 0)" ||
    bad "systemctl stop: result $(prop estreamer-cef Result), status $(prop estreamer-cef ExecMainStatus)"
mode=$(inside stat -c '%U %a' /var/lib/estreamer-cef/127.0.0.1-8302/bookmark.json 2>/dev/null || true)
[ "$mode" = "estreamer-cef 600" ] && ok "bookmark.json: estreamer-cef, mode 600 (UMask=0077)" ||
    bad "bookmark.json: \"$mode\""

echo "==> watchdog with the receiver down (100 s)"
# The receiver refuses connections and the replay buffer holds one message: reading from the
# FMC pauses at once. The service must wait, not be killed by the watchdog (WatchdogSec=60).
inside sh -c 'printf "[fmc]\nhost = \"127.0.0.1\"\n\n[[output]]\ntransport = \"tcp\"\nhost = \"127.0.0.1\"\nport = 5999\nreplay_buffer_bytes = 8224\n" >/etc/estreamer-cef/estreamer-cef.toml'
inside systemctl start estreamer-cef
sleep 100
restarts=$(prop estreamer-cef NRestarts)
result=$(inside journalctl -u estreamer-cef -o cat --since "@$booted" | grep -c "Watchdog timeout" || true)
[ "$restarts" = 0 ] && [ "$result" = 0 ] && ok "still running, no watchdog restart" ||
    bad "killed by the watchdog while the receiver was down ($restarts restarts): the worker stops feeding the watchdog while it waits for room in an output (src/pipeline/worker.rs, Worker::send)"
inside systemctl stop estreamer-cef
inside cp /root/good.toml /etc/estreamer-cef/estreamer-cef.toml

echo "==> dpkg --purge while the services run"
inside systemctl enable estreamer-cef@dc1 >/dev/null 2>&1
inside systemctl start estreamer-cef estreamer-cef@dc1
inside dpkg --purge estreamer-cef >/dev/null
left=$(inside sh -c 'pgrep -a -u estreamer-cef 2>/dev/null; find /etc/systemd/system -name "estreamer-cef*"; getent passwd estreamer-cef; ls -d /etc/estreamer-cef /var/lib/estreamer-cef /var/log/estreamer-cef 2>/dev/null' || true)
[ -z "$left" ] && ok "services stopped; no process, enablement link, user or folder left" || bad "left after purge: $left"

if [ ${#failures[@]} -gt 0 ]; then
    printf '\nboot-check: %d check(s) FAILED:\n' ${#failures[@]}
    printf '  - %s\n' "${failures[@]}"
    exit 1
fi
printf '\nboot-check passed\n'
