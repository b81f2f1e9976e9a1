# estreamer-cef %postun: reload systemd; after an upgrade, restart what was running (it saves its
# bookmark when it stops). The service user, /etc/estreamer-cef and the state in
# /var/lib/estreamer-cef are kept on erase, as RPM packages do: remove them by hand if wanted.
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart estreamer-cef.service 'estreamer-cef@*.service' >/dev/null 2>&1 || :
    fi
fi
exit 0
