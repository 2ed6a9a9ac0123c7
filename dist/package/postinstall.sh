#!/bin/sh
# dpm-netconf, after its files are in place (deb: postinst configure [OLD];
# rpm: %post 1|2). Takes over from the original DPM image tools where they
# were placed by hand, enables the unit by its preset on the first install
# only (an admin's later disable stays), reloads systemd and udev.
set -e
first=false
case "$1" in
configure) [ -n "$2" ] || first=true ;;
1) first=true ;;
2) ;;
*) exit 0 ;;
esac

# The original tools' udev rule and unit would run beside ours.
off=.dpm-netconf-disabled
if [ -e /etc/udev/rules.d/80-setmac.rules ]; then
    mv /etc/udev/rules.d/80-setmac.rules "/etc/udev/rules.d/80-setmac.rules$off"
    echo "dpm-netconf: moved the original tools' udev rule to /etc/udev/rules.d/80-setmac.rules$off: 80-dpm-netconf.rules takes its place"
fi
# A unit file of that name in /etc would hide our alias of it.
u=/etc/systemd/system/autoconfigure_networking.service
if [ -f "$u" ] && [ ! -L "$u" ]; then
    mv "$u" "$u$off"
    echo "dpm-netconf: moved the original tools' unit to $u$off: autoconfigure_networking.service is now an alias of dpm-netconf.service"
fi
# Removing the package puts these back (postremove.sh): remember the links.
for l in /etc/systemd/system/*.wants/autoconfigure_networking.service; do
    [ -L "$l" ] || continue
    mkdir -p /var/backups/dpm-netconf
    printf '%s %s\n' "$l" "$(readlink "$l")" >>/var/backups/dpm-netconf/wants-links
    rm -f "$l"
    echo "dpm-netconf: removed $l (the original tools' unit was enabled there); dpm-netconf.service is enabled instead"
    first=true
done

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
if $first && command -v systemctl >/dev/null 2>&1; then
    systemctl preset dpm-netconf.service || true
fi
if [ -d /run/udev ] && command -v udevadm >/dev/null 2>&1; then
    udevadm control --reload || true
fi
case "$1" in
1 | 2)
    # rpm: regenerating the initramfs is the admin's call.
    echo "dpm-netconf: to configure the NICs in the initramfs too, rebuild it (dracut -f); until then dpm-netconf.service does it in the real root"
    ;;
esac
exit 0
