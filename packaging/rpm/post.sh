# estreamer-cef %post: the state and log folders (the service user's only), the empty folder for
# local mapping tables, and a systemd reload. The service is neither enabled nor started: it needs
# the FMC's client PKCS12 first (see /usr/share/doc/estreamer-cef/README.md, "First run").
install -d -m 0750 -o estreamer-cef -g estreamer-cef /var/lib/estreamer-cef /var/log/estreamer-cef
install -d -m 0755 /etc/estreamer-cef/mappings
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || :
fi
exit 0
