#!/bin/sh
# dracut pre-udev hook (sourced by dracut, so it returns, never exits):
# configure the DPM NICs. rd.dpm_netconf=0 turns the hook off. The hook
# passes no options: dpm-netconf reads its own parameters from the kernel
# command line (dpm_netconf=0, rd.dpm_netconf.timeout=, dpm_netconf.timeout=),
# so no value written there can turn into a usage error. A failure is
# logged and the boot goes on: no emergency shell.

type getargbool >/dev/null 2>&1 || . /lib/dracut-lib.sh

if ! getargbool 1 rd.dpm_netconf; then
    info "dpm-netconf: turned off by rd.dpm_netconf=0"
else
    /usr/bin/dpm-netconf apply
    _dpm_rc=$?
    # 1 (failed) and 3 (a write still going on in the kernel) are warned
    # about alike, and neither stops the boot (as initramfs-tools' script).
    case "$_dpm_rc" in
    0) ;;
    3) warn "dpm-netconf: exit status 3: a NIC's write is still going on in the kernel (its lines are above); the boot goes on" ;;
    *) warn "dpm-netconf: exit status $_dpm_rc (its error lines are above); the boot goes on" ;;
    esac
    unset _dpm_rc
fi
