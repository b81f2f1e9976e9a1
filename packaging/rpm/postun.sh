# estreamer-cef %postun: reload systemd; after an upgrade, restart what was running (it saves its
# bookmark when it stops). The package's folders go with it on erase (rpm removes those it owns
# when they are empty); the service user is kept, as RPM packages do.
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart estreamer-cef.service 'estreamer-cef@*.service' >/dev/null 2>&1 || :
    fi
fi
exit 0
