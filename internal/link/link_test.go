package link_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link/linktest"
)

var want = net.HardwareAddr{0x0a, 0, 0, 0, 0, 0x11}

func TestGetAndSetOverNetlink(t *testing.T) {
	e := linktest.New(t, "eth0")
	idx := index(t, e, "eth0")
	l, err := e.Kernel.LinkByIndex(idx)
	if err != nil || l.Name != "eth0" || l.Index != idx || l.MAC.String() != e.MAC(t, "eth0") {
		t.Fatalf("LinkByIndex(%d) = %+v, %v", idx, l, err)
	}
	if err := e.Kernel.SetHardwareAddr(idx, want); err != nil {
		t.Fatal(err)
	}
	if got := e.MAC(t, "eth0"); got != want.String() {
		t.Errorf("sysfs reads %s, want %s", got, want)
	}
	if _, err := e.Kernel.LinkByIndex(9999); !errors.Is(err, unix.ENODEV) {
		t.Errorf("LinkByIndex of a missing index: %v, want ENODEV", err)
	}
	if err := e.Kernel.SetHardwareAddr(9999, want); !errors.Is(err, unix.ENODEV) {
		t.Errorf("SetHardwareAddr of a missing index: %v, want ENODEV", err)
	}
}

// A rename (udev's) between looking a link up and setting its MAC cannot
// redirect the change: RTM_SETLINK goes by index.
func TestSetByIndexSurvivesRename(t *testing.T) {
	e := linktest.New(t, "eth0", "eth1")
	idx := index(t, e, "eth0")
	if err := e.Rename(idx, "enc9"); err != nil {
		t.Fatal(err)
	}
	if err := e.Kernel.SetHardwareAddr(idx, want); err != nil {
		t.Fatal(err)
	}
	if got := e.MAC(t, "enc9"); got != want.String() {
		t.Errorf("renamed eth0 has %s, want %s", got, want)
	}
	if got := e.MAC(t, "eth1"); got == want.String() {
		t.Error("eth1 got the MAC too")
	}
}

func TestSetRejectedByTheKernel(t *testing.T) {
	e := linktest.New(t, "eth0")
	multicast := net.HardwareAddr{0x03, 0, 0, 0, 0, 1}
	err := e.Kernel.SetHardwareAddr(index(t, e, "eth0"), multicast)
	if !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Errorf("err = %v, want EADDRNOTAVAIL", err)
	}
}

func index(t *testing.T, e *linktest.Netns, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.LinkDir(name), "ifindex"))
	if err != nil {
		t.Fatal(err)
	}
	i, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// TestMACErrorHints covers every answer a MAC change gets from the kernel:
// the qeth driver's since Linux 5.7 (EADDRINUSE, EADDRNOTAVAIL) and up to
// 5.6 (EEXIST, EPERM), and the others (ENOSPC, EOPNOTSUPP, EIO, EBUSY).
func TestMACErrorHints(t *testing.T) {
	const (
		prefix     = "set MAC of enc1 (index 3) to 0a:00:00:00:00:11: netlink RTM_SETLINK: "
		inUse      = ": the address is already registered on this adapter port (another NIC, or another partition)"
		notAllowed = ": the adapter or hypervisor does not allow this address (user-chosen MACs not authorised, or not a locally administered unicast address)"
	)
	for _, tc := range []struct {
		kind string
		err  error
		want string
	}{
		{"virtio", unix.EINVAL, "EINVAL (invalid argument): the host refused the address (the virtio-net device's host side, e.g. its MAC filter or a macvtap backend, does not allow a change)"},
		{"virtio", unix.EIO, "EIO (input/output error)"},
		{"qeth", unix.ETIME, "ETIME (timer expired): the adapter did not answer the set-MAC command in time (the qeth driver waits 45 s): check the adapter and its CHPID"},
		{"virtio", unix.EINTR, "EINTR (interrupted system call): the request was interrupted (a signal); running dpm-netconf again retries it"},
		{"virtio", &netlink.OpError{Op: "receive", Err: unix.EINVAL, Message: "Invalid MAC address"},
			`EINVAL (invalid argument) (kernel: "Invalid MAC address"): the host refused the address (the virtio-net device's host side, e.g. its MAC filter or a macvtap backend, does not allow a change)`},
		{"qeth", unix.EADDRINUSE, "EADDRINUSE (address already in use)" + inUse},
		{"qeth", unix.EEXIST, "EEXIST (file exists)" + inUse},
		{"qeth", unix.EADDRNOTAVAIL, "EADDRNOTAVAIL (cannot assign requested address)" + notAllowed},
		{"qeth", unix.EPERM, "EPERM (operation not permitted)" + notAllowed + "; or dpm-netconf lacks CAP_NET_ADMIN"},
		{"qeth", unix.ENOSPC, "ENOSPC (no space left on device): the adapter's MAC address table is full (too many addresses registered on this port)"},
		{"qeth", unix.EOPNOTSUPP, "EOPNOTSUPP (operation not supported): this device type does not allow changing its MAC (qeth on an OSM or OSX CHPID, an adapter without the set-MAC command, virtio-net with the failover standby feature)"},
		{"qeth", unix.EIO, "EIO (input/output error): the adapter refused the command with a return code the qeth driver has no specific errno for"},
		{"qeth", unix.EBUSY, "EBUSY (device or resource busy): the interface is busy (a driver that cannot change the MAC while up)"},
		{"qeth", unix.EINVAL, "EINVAL (invalid argument): the kernel refused the address for this interface (length or format)"},
		{"qeth", fmt.Errorf("netlink receive: %w", unix.EADDRINUSE), "EADDRINUSE (address already in use)" + inUse},
		{"qeth", errors.New("netlink: connection closed"), "netlink: connection closed"},
	} {
		e := &link.MACError{Name: "enc1", Index: 3, MAC: want, Kind: tc.kind, Err: tc.err}
		if got := e.Error(); got != prefix+tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.err, got, prefix+tc.want)
		}
		if !errors.Is(e, tc.err) {
			t.Errorf("%v: errors.Is(MACError, err) = false", tc.err)
		}
	}
}
