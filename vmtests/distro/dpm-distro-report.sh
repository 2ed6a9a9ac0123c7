#!/bin/bash
# Test-only (make vmtest-dracut puts it into the test image, never into
# make install): once cloud-init's network stage is done, print what the
# guest's own tools say, for the host to assert on; then, as the kernel
# parameter dpmtest= asks, watch what the host does to the NICs through
# QEMU's monitor (hot-plug) and report how the guest took it.
#   dpmtest=late   0.0.0020, listed but absent at boot, is plugged in
#   dpmtest=readd  0.0.0001 is unplugged and plugged in again with QEMU's
#                  MAC, unlisted 0.0.0030 is plugged in, then five udev add
#                  events in a burst for 0.0.0010; then the unit's names
say() { echo "DPMDISTRO $*" > /dev/console; }
up() { local u _; read -r u _ < /proc/uptime; echo "$u"; }
# The interface and MAC of a virtio-net-ccw device, or nothing.
nicof() {
  local n m
  for n in /sys/bus/ccw/devices/"$1"/virtio*/net/*; do
    [ -e "$n/address" ] && read -r m < "$n/address" && { echo "${n##*/} $m"; return 0; }
  done
  return 1
}
# wait_for SECONDS COMMAND...: poll every 50 ms until COMMAND succeeds, at
# most SECONDS of wall time (bash's SECONDS: under TCG a poll takes longer
# than its sleep).
wait_for() {
  local end=$((SECONDS + ${1%.*}))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.05
  done
}
hasmac() { [ "$(nicof "$1" | cut -d' ' -f2)" = "$2" ]; }
present() { [ -e "/sys/bus/ccw/devices/$1" ]; }
absent() { ! present "$1"; }
journal() { journalctl -b -o short-monotonic --no-pager "$@"; }
# Lines of the per-NIC instances (systemd's own and dpm-netconf's).
instances() { journal -u 'dpm-netconf@*' | while read -r line; do say "instance $line"; done; }
# appears TAG SECONDS BUSID MAC: once BUSID is there, wait for its MAC;
# say "TAG <seen at> <MAC seen at> <interface> <MAC>" (TAG-timeout if the
# MAC does not come within a minute); false if BUSID never came.
appears() {
  wait_for "$2" present "$3" || return 1
  local t0
  t0=$(up)
  if wait_for 60 hasmac "$3" "$4"; then
    say "$1 $t0 $(up) $(nicof "$3")"
  else
    say "$1-timeout $t0 $(up) $(nicof "$3")"
  fi
}
# Until systemd runs no job but this report's (jobs that wait, for it or
# for multi-user.target, as cloud-final's does, are not running).
boot_done() { ! systemctl list-jobs --no-legend | awk '$4 == "running"' | grep -v -e dpm-distro-report -e '\.target' | grep -q .; }
# Until no dpm-netconf@ instance is starting or running.
instances_idle() { ! systemctl list-units --no-legend --plain --state=activating,deactivating 'dpm-netconf@*' | grep -q .; }

say "uptime $(cut -d' ' -f1 /proc/uptime)"
ip -o link show | while read -r line; do say "link $line"; done
ip -4 -o addr show | while read -r line; do say "addr $line"; done
say "unit $(systemctl show -p ActiveState,Result,ExecMainStatus dpm-netconf.service | xargs)"
systemctl --failed --no-legend --plain | while read -r line; do say "boot-failed $line"; done
journal | grep 'dpm-netconf' | while read -r line; do say "journal $line"; done
journal | grep -E 'Switching root|cloud-init.*(Cloud-init v|running .init-local|running .init )' | while read -r line; do say "timeline $line"; done
for u in dpm-netconf cloud-init-local cloud-init; do
  say "timestamp $u $(systemctl show -p ExecMainStartTimestampMonotonic,ExecMainExitTimestampMonotonic --value $u.service | xargs)"
done
instances
say "READY"

test=$(sed -n 's/.*dpmtest=\([a-z]*\).*/\1/p' /proc/cmdline)
case "$test" in
late)
  # The host plugs in 0.0.0020 now; udev wants its instance.
  appears late 240 0.0.0020 0a:00:00:00:00:20 || say "late-absent"
  wait_for 60 instances_idle
  instances
  ;;
readd)
  # The rest of the boot (cloud-init's config and final stages) first: the
  # hot-plug timings should not measure a guest busy with them.
  end=$((SECONDS + 240))
  until boot_done || [ "$SECONDS" -ge "$end" ]; do sleep 1; done
  # The kernel's CCW events, with their monotonic timestamps.
  udevadm monitor --kernel --subsystem-match=ccw > /run/dpm-ccw-events &
  monitor=$!
  sleep 1
  say "hotplug-ready $(up)"
  # (a) The host unplugs 0.0.0001, then plugs it in again with QEMU's MAC.
  # "gone" once the kernel removed its subchannel too and udev is done: a
  # device_add of the same devno while the old subchannel is still being
  # unregistered left the new device's online hanging in the kernel
  # (ccw_device_set_online from virtio_ccw_auto_online, blocked > 120 s).
  sch=$(readlink -f /sys/bus/ccw/devices/0.0.0001/..)
  if wait_for 120 absent 0.0.0001 && wait_for 60 test ! -e "$sch"; then
    udevadm settle -t 30
    say "gone 0.0.0001 $(up)"
  fi
  appears readd 120 0.0.0001 0a:00:00:00:00:11
  # (c) Unlisted 0.0.0030, plugged in with 52:54:00:00:00:30: left alone.
  if wait_for 120 nicof 0.0.0030 >/dev/null; then
    udevadm settle -t 30
    sleep 3
    wait_for 60 instances_idle
    say "unlisted $(nicof 0.0.0030)"
  else
    say "unlisted-absent"
  fi
  # (d) Five add events at once for listed 0.0.0010.
  # (wait for these, not for the udevadm monitor still running)
  triggers=()
  for _ in 1 2 3 4 5; do
    udevadm trigger --action=add /sys/bus/ccw/devices/0.0.0010 &
    triggers+=($!)
  done
  wait "${triggers[@]}"
  udevadm settle -t 30
  sleep 2
  wait_for 60 instances_idle
  say "burst $(nicof 0.0.0010)"
  instances
  kill "$monitor"
  grep -a 'add ' /run/dpm-ccw-events | while read -r line; do say "uevent $line"; done
  systemctl list-units --all --no-legend --plain 'dpm-netconf*' | while read -r line; do say "units $line"; done
  systemctl --failed --no-legend --plain | while read -r line; do say "failed $line"; done
  say "failed-end"
  # The original tools' names.
  say "enabled-by-preset $(systemctl is-enabled dpm-netconf.service)"
  systemctl disable -q dpm-netconf.service
  say "after-disable $(systemctl is-enabled dpm-netconf.service)"
  systemctl enable -q autoconfigure_networking.service 2>&1 | while read -r line; do say "enable-said $line"; done
  say "after-enable-alias $(systemctl is-enabled dpm-netconf.service) $(systemctl is-enabled autoconfigure_networking.service)"
  /usr/bin/setmac.sh 0.0.0001 >/dev/null 2>&1
  say "setmac.sh $?"
  /usr/bin/autoconfigure_networking.sh >/dev/null 2>&1
  say "autoconfigure_networking.sh $?"
  ;;
esac
say "END"
