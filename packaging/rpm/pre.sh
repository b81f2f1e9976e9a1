# estreamer-cef %pre: the service user and group (the package's files and folders name them).
getent group estreamer-cef >/dev/null || groupadd --system estreamer-cef
getent passwd estreamer-cef >/dev/null || \
    useradd --system --gid estreamer-cef --home-dir /var/lib/estreamer-cef --no-create-home \
        --shell /sbin/nologin --comment "estreamer-cef service" estreamer-cef
exit 0
