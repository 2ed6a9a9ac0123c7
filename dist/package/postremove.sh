#!/bin/sh
# dpm-netconf, after its files went (deb: postrm remove|purge|upgrade...;
# rpm: %postun 0|1): systemd and udev forget them; purge removes what the
# preset or an admin's enable left in /etc.
set -e
case "$1" in
remove | purge | 0)
    if [ "$1" = purge ]; then
        for l in /etc/systemd/system/*.wants/dpm-netconf.service /etc/systemd/system/autoconfigure_networking.service; do
            case "$(readlink "$l" 2>/dev/null)" in
            */dpm-netconf.service) rm -f "$l" ;;
            esac
        done
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
    fi
    if [ -d /run/udev ] && command -v udevadm >/dev/null 2>&1; then
        udevadm control --reload || true
    fi
    ;;
esac
exit 0
