#!/bin/sh
# dpm-netconf, after its files went (deb: postrm remove|purge|upgrade|
# abort-install...; rpm: %postun 0|1): on removal the original DPM tools'
# files that the install took over come back; systemd and udev forget ours;
# purge removes what the preset or an admin's enable left in /etc.
set -e

# restore_original_tools undoes postinstall.sh's takeover, from what it kept
# in /var/backups/dpm-netconf, and says each step.
restore_original_tools() {
    b=/var/backups/dpm-netconf
    off=.dpm-netconf-disabled
    [ -d "$b" ] || return 0
    for f in autoconfigure_networking.sh setmac.sh; do
        if [ -f "$b/$f" ] && [ ! -e "/usr/bin/$f" ] && [ ! -L "/usr/bin/$f" ]; then
            cp -p "$b/$f" "/usr/bin/$f"
            echo "dpm-netconf: restored the original DPM tools' /usr/bin/$f"
        fi
    done
    for f in /etc/udev/rules.d/80-setmac.rules /etc/systemd/system/autoconfigure_networking.service; do
        [ -e "$f$off" ] || continue
        # A link left to our unit (the alias) would stand in the way.
        case "$(readlink "$f" 2>/dev/null)" in
        */dpm-netconf.service) rm -f "$f" ;;
        esac
        if [ ! -e "$f" ] && [ ! -L "$f" ]; then
            mv "$f$off" "$f"
            echo "dpm-netconf: restored the original DPM tools' $f"
        fi
    done
    if [ -f "$b/wants-links" ]; then
        while read -r l t; do
            [ -n "$l" ] && [ -n "$t" ] || continue
            if [ ! -e "$l" ] && [ ! -L "$l" ]; then
                mkdir -p "${l%/*}"
                ln -s "$t" "$l"
                echo "dpm-netconf: enabled the original DPM tools' unit again: $l"
            fi
        done <"$b/wants-links"
    fi
    rm -rf "$b"
}

case "$1" in
remove | purge | abort-install | 0)
    if [ "$1" != purge ]; then
        restore_original_tools
    fi
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
