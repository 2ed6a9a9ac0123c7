// Package ccwtest makes the writes that other actors make on CCW devices
// (an admin by hand, s390-tools' zdev through its udev rules): tests use
// it to put the kernel, or the kernel model, into a state, or to race
// apply. apply makes its own writes through its steps, never through here.
package ccwtest

import (
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

// Free removes the bus ids from..to from the cio_ignore list and waits for
// the channel subsystem to finish probing them (Settle).
func Free(fs sysfs.FS, from, to string) error {
	spec := from
	if to != from {
		spec += "-" + to
	}
	if err := write(fs, "free", spec, ccw.CIOIgnore, "free "+spec); err != nil {
		return err
	}
	return Settle(fs)
}

// Settle blocks until queued channel-subsystem work is done.
func Settle(fs sysfs.FS) error { return write(fs, "settle", "", ccw.CIOSettle, "1") }

// Group creates the qeth group device from its read, write and data devices.
func Group(fs sysfs.FS, read, writeDev, data string) error {
	return write(fs, "group", read, ccw.QethGroup, read+","+writeDev+","+data)
}

// SetAttr writes a qeth group attribute (layer2, portno, online).
func SetAttr(fs sysfs.FS, busID, attr, value string) error {
	return write(fs, attr, busID, ccw.GroupPath(busID)+"/"+attr, value)
}

// write fails with the error apply's steps give for the same write, the
// kernel's answer explained (ccw.AttrError).
func write(fs sysfs.FS, step, device, file, value string) error {
	if err := sysfs.WriteString(fs, file, value); err != nil {
		return &ccw.AttrError{Step: step, Device: device, File: file, Value: value, Err: err}
	}
	return nil
}
