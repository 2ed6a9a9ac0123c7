#!/bin/sh
# dpm-netconf, before its files are unpacked (deb: preinst install|upgrade;
# rpm: %pre 1|2). The original DPM image tools' scripts, placed by hand at
# the paths our compatibility links take, are replaced: keep a copy and
# say so.
set -e
case "$1" in
install | upgrade | 1 | 2) ;;
*) exit 0 ;;
esac
for f in /usr/bin/autoconfigure_networking.sh /usr/bin/setmac.sh; do
    if [ -f "$f" ] && [ ! -L "$f" ]; then
        mkdir -p /var/backups/dpm-netconf
        cp -p "$f" /var/backups/dpm-netconf/
        echo "dpm-netconf: $f (the original DPM tools' script) becomes a link to dpm-netconf; a copy is in /var/backups/dpm-netconf/"
    fi
done
exit 0
