package apply

import (
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
)

// ForDevice finds the listed NIC a device names: a udev %p path of its
// CCW device, ccwgroup device or interface, a bus id, or a devno. With
// triplet, the write and data devices of a qeth NIC (devno+1, devno+2) name
// it too (a udev event for any of its CCW devices). ok is false for a
// device that is not on a CCW device of css 0, subchannel set 0
// (virtio-net-pci, anything else a udev rule matches) and for one that is
// not listed; why is a sentence for -v logs.
func ForDevice(list cmdline.List, device string, triplet bool) (nic cmdline.NIC, ok bool, why string) {
	devno, err := ccw.BusIDFromPath(device)
	if err != nil {
		return cmdline.NIC{}, false, err.Error() + ": not a DPM NIC, nothing to do"
	}
	if n, found := list.Lookup(devno); found {
		return n, true, ""
	}
	if triplet {
		for _, n := range list.NICs {
			if devno > n.Devno && devno-n.Devno <= 2 {
				return n, true, ""
			}
		}
	}
	return cmdline.NIC{}, false, cmdline.BusID(devno) + " is not listed on the kernel command line: nothing to do"
}
