# estreamer-cef %post: a systemd reload. The service is neither enabled nor started: it needs the
# FMC's client PKCS12 first (see /usr/share/doc/estreamer-cef/README.md, "First run").
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || :
fi
exit 0
