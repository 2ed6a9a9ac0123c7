package apply

import (
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
)

// ForDevice finds the listed NIC a device names: a udev %p path of its
// CCW device, ccwgroup device or interface, a bus id, or a devno. With
// triplet, the write and data devices of a qeth NIC (devno+1, devno+2) name
// it too (a udev event for any of its CCW devices), unless sysfs shows the
// device is no qeth device: a virtio-net-ccw NIC at devno+1 of a listed one
// is a NIC of its own. ok is false for a device that is not on a CCW
// device of css 0, subchannel set 0 (virtio-net-pci, anything else a udev
// rule matches) and for one that is not listed; why is a sentence for -v
// logs. It reads at most one sysfs file (the device's cutype), so a udev
// rule can ask it about every device it sees.
func ForDevice(sys ccw.Sys, list cmdline.List, device string, triplet bool) (nic cmdline.NIC, ok bool, why string) {
	devno, err := ccw.BusIDFromPath(device)
	if err != nil {
		return cmdline.NIC{}, false, err.Error() + ": not a DPM NIC, nothing to do"
	}
	if n, found := list.Lookup(devno); found {
		return n, true, ""
	}
	busID := cmdline.BusID(devno)
	if triplet {
		for _, n := range list.NICs {
			if devno > n.Devno && devno-n.Devno <= 2 {
				if cutype, err := sys.CUType(busID); err == nil && !ccw.IsQeth(cutype) {
					return cmdline.NIC{}, false, busID + " (" + cutype + ") is not a qeth device, so not " + n.BusID() + "'s write or data device, and not listed: nothing to do"
				}
				return n, true, ""
			}
		}
	}
	return cmdline.NIC{}, false, busID + " is not listed on the kernel command line: nothing to do"
}
