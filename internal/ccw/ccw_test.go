package ccw

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

func TestDeviceOnTree(t *testing.T) {
	tr := &kernelmodel.Tree{Root: t.TempDir()}
	if _, err := tr.CCW("0.0.0001", CUTypeOSA, "0a", false); err != nil {
		t.Fatal(err)
	}
	if err := tr.VirtioNet("0.0.0004", "enc4", 3, "52:54:00:00:00:04"); err != nil {
		t.Fatal(err)
	}
	s := Sys{FS: sysfs.Root(tr.Root)}
	d, err := s.Device("0.0.0001")
	if err != nil {
		t.Fatal(err)
	}
	// chpids comes from the parent subchannel, through the bus symlink.
	if d != (Device{BusID: "0.0.0001", CUType: CUTypeOSA, CHPIDs: "0a 00 00 00 00 00 00 00"}) {
		t.Errorf("Device = %+v", d)
	}
	if _, err := s.Device("0.0.0002"); !sysfs.IsNotExist(err) {
		t.Errorf("absent device: err = %v, want not-exist", err)
	}
	nd, err := s.VirtioNetdev("0.0.0004")
	if err != nil || nd != (Netdev{Name: "enc4", Index: 3, MAC: "52:54:00:00:00:04"}) {
		t.Errorf("VirtioNetdev = %+v, %v", nd, err)
	}
	dir, err := s.VirtioNetDir("0.0.0004")
	if err != nil {
		t.Fatal(err)
	}
	// Name and index only: apply takes the MAC from netlink.
	if nd, err := s.InterfaceIn(dir); err != nil || nd != (Netdev{Name: "enc4", Index: 3}) {
		t.Errorf("InterfaceIn = %+v, %v", nd, err)
	}
	if _, err := s.QethNetdev("0.0.0001"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("QethNetdev of an ungrouped device: %v", err)
	}
}

func TestBusIDFromPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
		err  string
	}{
		{in: "/devices/qeth/0.0.0001/net/enc1", want: 1},
		{in: "/devices/css0/0.0.0000/0.0.0001/virtio0/net/eth0", want: 1},
		{in: "/sys/devices/css0/0.0.0003/0.0.fe0a/virtio1/net/enc1", want: 0xfe0a},
		{in: "0.0.0600", want: 0x600},
		{in: "0600", want: 0x600},
		{in: "ABCD", want: 0xabcd},
		{in: "/devices/virtual/net/lo", err: `"/devices/virtual/net/lo" names no CCW device: want a sysfs device path, a bus id (0.0.0001) or a devno (0001)`},
		{in: "0.1.0001", err: `"0.1.0001": device 0.1.0001 is not in channel subsystem 0, subchannel set 0, where DPM NICs live`},
		{in: "", err: `"" names no CCW device: want a sysfs device path, a bus id (0.0.0001) or a devno (0001)`},
	} {
		got, err := BusIDFromPath(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("BusIDFromPath(%q) error = %v, want %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("BusIDFromPath(%q) = %04x, %v; want %04x", tc.in, got, err, tc.want)
		}
	}
}

// BenchmarkDeviceLookup shows that finding a listed device costs the same
// in an I/O configuration of 5,000 unrelated CCW devices as in one without:
// lookups go to the bus id's own directory and never list the bus.
func BenchmarkDeviceLookup(b *testing.B) {
	for _, others := range []int{0, 5000} {
		b.Run(fmt.Sprintf("unrelated=%d", others), func(b *testing.B) {
			tr := &kernelmodel.Tree{Root: b.TempDir()}
			for i := 0; i < others; i++ {
				if _, err := tr.CCW(fmt.Sprintf("0.0.%04x", 0x1000+i), "3390/0c", "10", true); err != nil {
					b.Fatal(err)
				}
			}
			if err := tr.VirtioNet("0.0.0004", "enc4", 3, "52:54:00:00:00:04"); err != nil {
				b.Fatal(err)
			}
			s := Sys{FS: sysfs.Root(tr.Root)}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if s.Grouped("0.0.0004") {
					b.Fatal("grouped")
				}
				if _, err := s.Device("0.0.0004"); err != nil {
					b.Fatal(err)
				}
				if _, err := s.VirtioNetdev("0.0.0004"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The hint for a failed online speaks of the NIC's kind: CHPIDs and
// cabling for an OSA's group, the hypervisor's device for virtio.
func TestOnlineHintByKind(t *testing.T) {
	for _, tc := range []struct {
		file string
		err  error
		want string
	}{
		{GroupPath("0.0.0001") + "/online", unix.EIO, "check that the CHPID is online"},
		{GroupPath("0.0.0001") + "/online", unix.ETIME, "check that the CHPID is online"},
		{DevicePath("0.0.0004") + "/online", unix.EIO, "its host side (the hypervisor's virtio device) failed"},
		{DevicePath("0.0.0004") + "/online", unix.ENODEV, "its host side (the hypervisor's virtio device) failed"},
	} {
		e := &AttrError{Step: "online", Device: "0.0.0001", File: tc.file, Value: "1", Err: tc.err}
		if got := e.Error(); !strings.Contains(got, tc.want) || (strings.Contains(tc.file, "/ccw/") && strings.Contains(got, "CHPID")) {
			t.Errorf("%s %v: %s, want %q", tc.file, tc.err, got, tc.want)
		}
	}
}
