# estreamer-cef %preun: on erase (not upgrade), stop the service and every instance.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl stop estreamer-cef.service 'estreamer-cef@*.service' >/dev/null 2>&1 || :
fi
exit 0
