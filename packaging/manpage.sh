#!/usr/bin/env bash
# Writes the man page estreamer-cef(1) from the binary's own --help texts, with help2man:
# the top-level help, then every subcommand's full --help (so the page documents every option),
# then FILES, ENVIRONMENT, SIGNALS and SEE ALSO.
#
#   packaging/manpage.sh BINARY OUTPUT.1
#
# Needs help2man (Debian/Ubuntu: apt-get install help2man).
set -euo pipefail

bin=${1:?usage: manpage.sh BINARY OUTPUT.1}
out=${2:?usage: manpage.sh BINARY OUTPUT.1}
command -v help2man >/dev/null || {
    echo "manpage.sh: help2man is not installed: apt-get install help2man (or dnf install help2man)" >&2
    exit 1
}

include=$(mktemp)
trap 'rm -f "$include"' EXIT

# Help text as preformatted roff: backslashes escaped, lines that would read as requests guarded.
roff_verbatim() {
    printf '.nf\n'
    sed -e 's/\\/\\e/g' -e 's/^\([.'"'"']\)/\\\&\1/'
    printf '.fi\n'
}

# Subcommands as listed by the binary (the "Commands:" block of --help), "help" left out.
subcommands() {
    "$1" ${2:+"$2"} --help | awk '/^Commands:/{on=1; next} on && /^[^ ]/{on=0} on && NF {print $1}' |
        grep -vx help
}

{
    echo '[COMMANDS]'
    for cmd in $(subcommands "$bin"); do
        echo ".SS \"$cmd\""
        "$bin" "$cmd" --help | roff_verbatim
        for sub in $(subcommands "$bin" "$cmd"); do
            echo ".SS \"$cmd $sub\""
            "$bin" "$cmd" "$sub" --help | roff_verbatim
        done
    done
    cat <<'EOF'
[FILES]
.TP
.I /etc/estreamer-cef/estreamer-cef.toml
The configuration (every setting commented, with its default). The package never overwrites it;
.I /usr/share/doc/estreamer-cef/estreamer-cef.toml.example
is the current reference.
.TP
.I /etc/estreamer-cef/client.pkcs12, /etc/estreamer-cef/client.pass
The client certificate the FMC issued, and its password (root:estreamer-cef, mode 0640).
.TP
.I /etc/estreamer-cef/<name>.toml
Configuration of the instance estreamer-cef@<name>.service (one per FMC).
.TP
.I /etc/estreamer-cef/mappings/
Mapping tables that replace or extend the built-in ones, one file per record type.
.TP
.I /usr/share/estreamer-cef/mappings/
Copies of the built-in mapping tables (the binary embeds them) and their language reference,
README.md.
.TP
.I /usr/share/estreamer-cef/examples/sample.estreamer
A recorded eStreamer stream (every event type, with the metadata that names them):
.B estreamer-cef decode --cef
shows its CEF lines,
.B estreamer-cef replay
sends it to the configured outputs.
.TP
.I /var/lib/estreamer-cef/<fmc host>-<port>/
State per FMC: bookmark.json (how far every output has delivered) and metadata.cache.
.TP
.I /var/log/estreamer-cef/
Writable by the service: for a [tap] file or file outputs.
[ENVIRONMENT]
.TP
.B ESTREAMER_CEF_<SECTION>__<KEY>
Overrides a configuration key, e.g. ESTREAMER_CEF_FMC__HOST, ESTREAMER_CEF_FMC__PKCS12_PASSWORD.
Command-line flags win over the environment, the environment over the file.
.TP
.B RUST_LOG
Log filter (e.g. "debug", "estreamer_cef=trace"); overrides \-v and \-q.
.TP
.B NOTIFY_SOCKET, WATCHDOG_USEC
Set by systemd: "run" reports READY=1 once the FMC session is up and feeds the watchdog while it
makes progress.
[SIGNALS]
.TP
.B SIGTERM, SIGINT
"run" stops cleanly: outputs deliver what they hold (shutdown_timeout), the bookmark and the
metadata cache are saved.
.TP
.B SIGHUP
"run" reloads the mapping tables; a table with errors is reported and the previous tables stay in
use (systemctl reload estreamer-cef).
[EXIT STATUS]
0 success; 1 a check failed ("test", "mappings check"); 2 an error (configuration, files, network).
[SEE ALSO]
.BR systemd.service (5),
.BR systemd.exec (5),
/usr/share/doc/estreamer-cef/README.md,
/usr/share/estreamer-cef/mappings/README.md
EOF
} >"$include"

help2man --no-info --section 1 --source "estreamer-cef" --manual "User Commands" \
    --name "forward Cisco FMC eStreamer events to ArcSight as CEF over syslog" \
    --include "$include" --output "$out" "$bin"
