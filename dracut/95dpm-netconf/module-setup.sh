#!/bin/bash
# dracut module: dpm-netconf configures, in the initramfs, the NICs that
# OpenStack's DPM driver lists on the kernel command line, before udev's
# coldplug, so that network root, dracut's network modules and udev's
# naming see the final MACs. See docs/design.md, "In a dracut initramfs".

# Include it on s390x hosts (DPM partitions are IBM Z), elsewhere only when
# asked for with --add dpm-netconf.
check() {
    require_binaries @BINDIR@/dpm-netconf || return 1
    [[ $(uname -m) == s390x ]] && return 0
    return 255
}

depends() {
    return 0
}

# The modules dpm-netconf loads itself with finit_module (no modprobe
# needed): not only the host's loaded ones, whatever hostonly says.
installkernel() {
    hostonly='' instmods ccwgroup qeth qeth_l2 virtio_net
}

install() {
    inst_binary @BINDIR@/dpm-netconf /usr/bin/dpm-netconf
    # pre-udev: before udevd starts, so before coldplug, before the
    # initqueue where network and root-mount work happens, and without
    # udev renaming interfaces under our feet. Both dracut flavours run it
    # (the systemd one from dracut-pre-udev.service).
    inst_hook pre-udev 20 "$moddir/dpm-netconf-hook.sh"
    # A listed NIC's device that appears later in the initramfs (a slow
    # channel path, hot-plug) is configured there too: udev's rule wants
    # dpm-netconf@BUSID.service under systemd and runs the one-NIC apply
    # itself in the shell flavour (it tests for /run/systemd/system).
    inst_rules 80-dpm-netconf.rules
    if dracut_module_included "systemd"; then
        inst_simple "${systemdsystemunitdir:-/usr/lib/systemd/system}/dpm-netconf@.service"
    fi
}
