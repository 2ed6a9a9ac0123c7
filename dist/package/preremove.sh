#!/bin/sh
# dpm-netconf, before its files go (deb: prerm remove|upgrade; rpm: %preun
# 0|1): on removal (not on upgrade) the unit is disabled.
set -e
case "$1" in
remove | 0)
    if command -v systemctl >/dev/null 2>&1; then
        systemctl --no-reload disable dpm-netconf.service >/dev/null 2>&1 || true
    fi
    ;;
esac
exit 0
