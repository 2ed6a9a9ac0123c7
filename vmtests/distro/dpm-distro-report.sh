#!/bin/bash
# Test-only (make vmtest-dracut puts it into the test image, never into
# make install): once cloud-init's network stage is done, print what the
# guest's own tools say, for the host to assert on; then wait for a NIC
# hot-plugged by the host and print its MAC.
say() { echo "DPMDISTRO $*" > /dev/console; }
say "uptime $(cut -d' ' -f1 /proc/uptime)"
ip -o link show | while read -r line; do say "link $line"; done
ip -4 -o addr show | while read -r line; do say "addr $line"; done
say "unit $(systemctl show -p ActiveState,Result,ExecMainStatus dpm-netconf.service | xargs)"
journalctl -b -o short-monotonic --no-pager | grep 'dpm-netconf' | while read -r line; do say "journal $line"; done
journalctl -b -o short-monotonic --no-pager | grep -E 'Switching root|cloud-init.*(Cloud-init v|running .init-local|running .init )' | while read -r line; do say "timeline $line"; done
for u in dpm-netconf cloud-init-local cloud-init; do
  say "timestamp $u $(systemctl show -p ExecMainStartTimestampMonotonic,ExecMainExitTimestampMonotonic --value $u.service | xargs)"
done
say "READY"
# Hot-plug: the host adds 0.0.0020 now; udev's rule gives it its MAC.
for _ in $(seq 1 240); do
  for n in /sys/bus/ccw/devices/0.0.0020/virtio*/net/*; do
    [ -e "$n/address" ] || continue
    if [ "$(cat "$n/address")" = "0a:00:00:00:00:20" ]; then
      say "hotplug $(basename "$n") $(cat "$n/address")"
      # The MAC is set a moment before setmac's ok line reaches the journal.
      for _ in $(seq 1 40); do
        journalctl -b --no-pager | grep -q 'dpm-netconf: setmac: 0\.0\.0020: ok: ' && break
        sleep 0.5
      done
      # The udev rule's work: the lines of setmac runs (apply's are the unit's).
      journalctl -b -o short-monotonic --no-pager | grep 'dpm-netconf: setmac: ' | while read -r line; do say "journal $line"; done
      say "END"
      exit 0
    fi
  done
  sleep 0.5
done
for n in /sys/bus/ccw/devices/0.0.0020/virtio*/net/*; do say "hotplug-timeout $(basename "$n") $(cat "$n/address" 2>/dev/null)"; done
journalctl -b -o short-monotonic --no-pager | grep -i 'setmac\|0.0.0020' | while read -r line; do say "journal $line"; done
say "END"
