// Package ccw speaks the s390 channel-subsystem sysfs ABI that a qeth or
// virtio-net-ccw NIC needs: CCW devices, cio_ignore, ccwgroup grouping, the
// qeth group attributes and the network device each NIC creates.
//
// Every lookup goes straight to a bus id's own directory: nothing here scans
// all devices, so the cost does not grow with the size of the I/O
// configuration (znetconf scans every CCW device; we do not).
package ccw

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/busid"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/errno"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

// Control-unit types that matter here.
const (
	CUTypeOSA    = "1731/01" // OSA-Express in QDIO mode (OSD)
	CUTypeIQD    = "1731/05" // HiperSockets
	CUTypeVirtio = "3832/01" // virtio-ccw
)

// IsQeth reports whether a control-unit type is driven by qeth.
func IsQeth(cutype string) bool { return cutype == CUTypeOSA || cutype == CUTypeIQD }

// Well-known files.
const (
	CIOIgnore  = "/proc/cio_ignore"
	CIOSettle  = "/proc/cio_settle"
	QethGroup  = "/sys/bus/ccwgroup/drivers/qeth/group"
	ccwDevices = "/sys/bus/ccw/devices/"
	grpDevices = "/sys/bus/ccwgroup/devices/"
)

// Sys is the CCW side of the kernel, seen through an FS.
type Sys struct{ FS sysfs.FS }

// Device is one CCW device as sysfs shows it.
type Device struct {
	BusID  string
	CUType string
	Online bool
	CHPIDs string // of the parent subchannel, e.g. "0a 00 00 00 00 00 00 00"
}

// DevicePath is the sysfs directory of a CCW device.
func DevicePath(busID string) string { return ccwDevices + busID }

// GroupPath is the sysfs directory of a ccwgroup (qeth) device.
func GroupPath(busID string) string { return grpDevices + busID }

// Device reads a CCW device; an absent (or cio_ignored) device gives an
// error for which sysfs.IsNotExist is true.
func (s Sys) Device(busID string) (Device, error) {
	dir := DevicePath(busID)
	cutype, err := s.CUType(busID)
	if err != nil {
		return Device{}, fmt.Errorf("read %s/cutype: %w", dir, err)
	}
	online, err := sysfs.ReadString(s.FS, dir+"/online")
	if err != nil {
		return Device{}, fmt.Errorf("read %s/online: %w", dir, err)
	}
	// chpids belongs to the parent subchannel; ".." is resolved through the
	// bus symlink by the kernel.
	chpids, err := sysfs.ReadString(s.FS, dir+"/../chpids")
	if err != nil && !sysfs.IsNotExist(err) {
		return Device{}, fmt.Errorf("read %s/../chpids: %w", dir, err)
	}
	return Device{BusID: busID, CUType: cutype, Online: online == "1", CHPIDs: chpids}, nil
}

// Online reads whether a CCW device is online.
func (s Sys) Online(busID string) (bool, error) {
	v, err := sysfs.ReadString(s.FS, DevicePath(busID)+"/online")
	return v == "1", err
}

// CUType reads a CCW device's control-unit type ("1731/01").
func (s Sys) CUType(busID string) (string, error) {
	return sysfs.ReadString(s.FS, DevicePath(busID)+"/cutype")
}

// Grouped reports whether a ccwgroup device with this bus id exists.
func (s Sys) Grouped(busID string) bool { return s.FS.Exists(GroupPath(busID)) }

// HasCIOIgnore reports whether the kernel has a cio_ignore list to free
// devices from.
func (s Sys) HasCIOIgnore() bool { return s.FS.Exists(CIOIgnore) }

// Unignore removes a bus id or range ("0.0.0002-0.0.0003") from the
// cio_ignore list without waiting for the probing (apply then writes
// cio_settle through its write helper: it can block).
func (s Sys) Unignore(spec string) error {
	return s.write("free", spec, CIOIgnore, "free "+spec)
}

// Driver directories: a driver can be used once its directory exists
// (the module's init has registered it), not when /sys/module/<name>
// appears (that is at the start of loading).
const (
	QethDriver      = "/sys/bus/ccwgroup/drivers/qeth"
	VirtioNetDriver = "/sys/bus/virtio/drivers/virtio_net"
	ccwGroupDevLink = "group_device"
	ccwDriverLink   = "driver"
	moduleDir       = "/sys/module/"
	moduleStateLive = "live"
	moduleStateFile = "/initstate"
)

// QethRegistered reports whether the qeth ccwgroup driver is registered.
func (s Sys) QethRegistered() bool { return s.FS.Exists(QethDriver) }

// VirtioNetRegistered reports whether the virtio_net driver is registered.
func (s Sys) VirtioNetRegistered() bool { return s.FS.Exists(VirtioNetDriver) }

// ModuleState is /sys/module/<name>/initstate: "live", "coming" or
// "going" for a loadable module, "" when there is none (not loaded, or
// built in).
func (s Sys) ModuleState(name string) string {
	st, _ := sysfs.ReadString(s.FS, moduleDir+name+moduleStateFile)
	return st
}

// DriverOf names the driver bound to a CCW device ("" when none).
func (s Sys) DriverOf(busID string) string {
	l, err := s.FS.ReadLink(DevicePath(busID) + "/" + ccwDriverLink)
	if err != nil {
		return ""
	}
	return path.Base(l)
}

// GroupOf names the ccwgroup device a CCW device belongs to ("" when none).
func (s Sys) GroupOf(busID string) string {
	l, err := s.FS.ReadLink(DevicePath(busID) + "/" + ccwGroupDevLink)
	if err != nil {
		return ""
	}
	return path.Base(l)
}

// Attr reads a qeth group attribute (layer2, portno, online, state, ...).
func (s Sys) Attr(busID, attr string) (string, error) {
	p := GroupPath(busID) + "/" + attr
	v, err := sysfs.ReadString(s.FS, p)
	if err != nil {
		return "", fmt.Errorf("%s %s: read %s: %w", attr, busID, p, err)
	}
	return v, nil
}

// Qeth is the state of a qeth group device that decides what apply does.
type Qeth struct {
	Online bool
	Layer2 int // -1 (not chosen yet), 0 or 1
	Port   int
	State  string // DOWN, SOFTSETUP, UP (6.x; 4.19 also HARDSETUP)
	// MembersOnline: a member CCW device reads online=1.
	MembersOnline bool
}

// Down reports whether the card is DOWN: only then can layer2 and portno
// change.
func (q Qeth) Down() bool { return q.State == "DOWN" || q.State == "" && !q.Online }

// Changing reports whether an online or offline of the card is in flight.
// The group reads online=0 until its online has finished (ccwgroup sets its
// state after the driver's set_online returns), and the card stays DOWN
// through the slow part (hardsetup, IDX); but the members' channels are
// started first (qeth_start_channel sets them online), so an offline group
// with an online member is mid-change.
func (q Qeth) Changing() bool { return !q.Online && (!q.Down() || q.MembersOnline) }

// QethState reads online, layer2, portno and state of a group device.
func (s Sys) QethState(busID string) (Qeth, error) {
	var q Qeth
	var vals [3]int
	for i, attr := range []string{"online", "layer2", "portno"} {
		v, err := s.Attr(busID, attr)
		if err != nil {
			return q, err
		}
		if vals[i], err = strconv.Atoi(v); err != nil {
			return q, fmt.Errorf("%s %s: unexpected value %q", attr, busID, v)
		}
	}
	q.Online, q.Layer2, q.Port = vals[0] == 1, vals[1], vals[2]
	q.State, _ = s.Attr(busID, "state")
	if !q.Online {
		for i := 0; i < 3; i++ {
			if v, err := s.Attr(busID, fmt.Sprintf("cdev%d/online", i)); err == nil && v == "1" {
				q.MembersOnline = true
				break
			}
		}
	}
	return q, nil
}

// Netdev is a network interface as sysfs shows it.
type Netdev struct {
	Name  string
	Index int
	MAC   string // lower-case colon form
}

// QethNetdev finds the interface of a qeth group device; it exists from the
// first online on.
func (s Sys) QethNetdev(busID string) (Netdev, error) {
	return s.NetdevIn(QethNetDir(busID))
}

// QethNetDir is the net directory of a qeth group device.
func QethNetDir(busID string) string { return GroupPath(busID) + "/net" }

// VirtioNetdev finds the interface of a virtio-net-ccw device, which sits
// below the device's virtio<N> child.
func (s Sys) VirtioNetdev(busID string) (Netdev, error) {
	netDir, err := s.VirtioNetDir(busID)
	if err != nil {
		return Netdev{}, err
	}
	return s.NetdevIn(netDir)
}

// VirtioNetDir is the net directory below a virtio-net-ccw device's
// virtio<N> child (which stays as long as the device does).
func (s Sys) VirtioNetDir(busID string) (string, error) {
	dir := DevicePath(busID)
	names, err := s.FS.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", dir, err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "virtio") {
			return dir + "/" + n + "/net", nil
		}
	}
	return "", fmt.Errorf("no virtio device below %s: %w", dir, unix.ENOENT)
}

// NetdevIn reads the one interface below a device's net directory, with
// its MAC.
func (s Sys) NetdevIn(netDir string) (Netdev, error) {
	nd, err := s.InterfaceIn(netDir)
	if err != nil {
		return nd, err
	}
	dir := netDir + "/" + nd.Name
	if nd.MAC, err = sysfs.ReadString(s.FS, dir+"/address"); err != nil {
		return Netdev{}, fmt.Errorf("read %s/address: %w", dir, err)
	}
	return nd, nil
}

// InterfaceIn reads the name and index of the one interface below a
// device's net directory, not its MAC (netlink gives that: one sysfs read
// less).
func (s Sys) InterfaceIn(netDir string) (Netdev, error) {
	names, err := s.FS.ReadDir(netDir)
	if err != nil {
		return Netdev{}, fmt.Errorf("read %s: %w", netDir, err)
	}
	if len(names) == 0 {
		return Netdev{}, fmt.Errorf("no interface in %s: %w", netDir, unix.ENOENT)
	}
	dir := netDir + "/" + names[0]
	idx, err := sysfs.ReadString(s.FS, dir+"/ifindex")
	if err != nil {
		return Netdev{}, fmt.Errorf("read %s/ifindex: %w", dir, err)
	}
	index, err := strconv.Atoi(idx)
	if err != nil {
		return Netdev{}, fmt.Errorf("read %s/ifindex: unexpected value %q", dir, idx)
	}
	return Netdev{Name: names[0], Index: index}, nil
}

// BusIDFromPath finds the device a sysfs path (as udev's %p gives it) or a
// bus id or a devno names, and returns its devno. For
// /devices/css0/0.0.0000/0.0.0001/virtio0/net/eth0 that is the CCW device
// 0.0.0001, not the subchannel 0.0.0000 before it.
func BusIDFromPath(p string) (uint16, error) {
	if len(p) == 4 {
		if v, err := strconv.ParseUint(p, 16, 16); err == nil {
			return uint16(v), nil
		}
	}
	var found string
	for _, part := range strings.Split(path.Clean("/"+p), "/") {
		if busid.Valid(part) {
			found = part
		}
	}
	if found == "" {
		return 0, fmt.Errorf("%q names no CCW device: want a sysfs device path, a bus id (0.0.0001) or a devno (0001)", p)
	}
	if !strings.HasPrefix(found, "0.0.") {
		return 0, fmt.Errorf("%q: device %s is not in channel subsystem 0, subchannel set 0, where DPM NICs live", p, found)
	}
	v, _ := strconv.ParseUint(found[4:], 16, 16)
	return uint16(v), nil
}

// AttrError is a write to a kernel file that the kernel refused.
type AttrError struct {
	Step   string // group, layer2, portno, online, free, settle
	Device string // bus id, or cio_ignore spec
	File   string
	Value  string
	Err    error
}

func (e *AttrError) Error() string {
	msg := fmt.Sprintf("%s %s: write %q to %s: %s", e.Step, e.Device, e.Value, e.File, errno.Words(e.Err))
	if h := hint(e.Step, e.File, e.Value, e.Err); h != "" {
		msg += ": " + h
	}
	return msg
}

func (e *AttrError) Unwrap() error { return e.Err }

func (s Sys) write(step, device, file, value string) error {
	if err := sysfs.WriteString(s.FS, file, value); err != nil {
		return &AttrError{Step: step, Device: device, File: file, Value: value, Err: err}
	}
	return nil
}

// hint says what the kernel's answer to a step usually means
// (drivers/s390/cio/ccwgroup.c, drivers/s390/net/qeth_core_sys.c).
func hint(step, file, value string, err error) string {
	switch {
	case sysfs.IsNotExist(err):
		switch step {
		case "group":
			return "the qeth driver is not loaded (no ccwgroup qeth driver directory)"
		case "free", "settle":
			return "the kernel has no cio_ignore support"
		}
		return "the device is gone"
	case errors.Is(err, unix.EINVAL):
		switch step {
		case "group":
			return "a device of the triplet is missing, cio_ignored, already grouped or not an OSA device"
		case "layer2":
			return "the kernel could not load the qeth_l2 discipline (module qeth_l2 missing from this system?)"
		case "portno":
			return "the adapter has no port " + value
		case "online":
			return "no driver is bound to the device, or the adapter refused to start"
		case "free":
			return "the kernel did not accept the device range"
		}
	case errors.Is(err, unix.EPERM):
		switch step {
		case "layer2", "portno":
			return "the device is online; this attribute can only change while it is offline"
		}
	case errors.Is(err, unix.EOPNOTSUPP):
		if step == "layer2" {
			return "the layer is enforced by the hypervisor or adapter (z/VM VSWITCH, OSM) and cannot be chosen"
		}
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EBUSY):
		return "another state change of the device is in flight"
	case errors.Is(err, unix.EIO), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ETIME), errors.Is(err, unix.ETIMEDOUT):
		switch {
		case step == "online" && strings.Contains(file, "/ccwgroup/"):
			return "the adapter did not come up: check that the CHPID is online and the adapter port is cabled and active"
		case step == "online":
			return "the device did not come online: its host side (the hypervisor's virtio device) failed; see the kernel log"
		}
	}
	return ""
}
