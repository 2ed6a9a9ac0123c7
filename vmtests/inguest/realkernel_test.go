// Package inguest holds the parts of the unit tests that need a real s390x
// kernel: module loading by finit_module, the kernel's answers to grouping,
// cio_ignore, and rtnetlink on real virtio-net-ccw NICs. govmtest
// (vmtests.TestInGuest) cross-compiles them and runs them inside the guest,
// which boots with cio_ignore=all,!condev and virtio-net-ccw NICs 0.0.0001,
// 0.0.0002, 0.0.0003 and 0.0.0004. Outside that guest every test skips and
// says why (`go test` on the host must not load modules, write to
// /proc/cio_ignore or change links there).
package inguest

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/apply"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw/ccwtest"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kmod"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

// notInGuest says why this is not the test guest, or "" when it is.
func notInGuest() string {
	// vmtest puts VMTEST_IN_GUEST=1 on the guest's kernel command line.
	if os.Getenv("VMTEST_IN_GUEST") != "1" {
		return "VMTEST_IN_GUEST is not 1"
	}
	if runtime.GOARCH != "s390x" {
		return "GOARCH is " + runtime.GOARCH + ", not s390x"
	}
	if _, err := os.Stat("/proc/cio_ignore"); err != nil {
		return "no /proc/cio_ignore (not an s390 kernel)"
	}
	return ""
}

// inGuest skips t outside the guest.
func inGuest(t *testing.T) {
	t.Helper()
	if why := notInGuest(); why != "" {
		t.Skipf("not inside the dpm-netconf test guest: %s; runs in: make vmtest (TestInGuest)", why)
	}
}

var (
	root = sysfs.Root("/")
	sys  = ccw.Sys{FS: root}
)

func loadedModules(t *testing.T) []string {
	b, err := os.ReadFile("/proc/modules")
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			mods = append(mods, f[0])
		}
	}
	return mods
}

func TestModulesLoadWithoutModprobe(t *testing.T) {
	inGuest(t)
	for _, p := range []string{"/sbin/modprobe", "/bin/modprobe", "/usr/sbin/modprobe"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists: the test must prove loading without it", p)
		}
	}
	if sys.QethRegistered() {
		t.Fatal("qeth already loaded before the test")
	}
	l := &kmod.Loader{Root: "/", FS: root}
	loaded, err := l.Load(kmod.Qeth...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(loaded, kmod.Qeth) {
		t.Errorf("loaded %v, want %v", loaded, kmod.Qeth)
	}
	mods := loadedModules(t)
	for _, m := range []string{"ccwgroup", "qeth", "qeth_l2", "bridge", "stp", "llc"} {
		if !slices.Contains(mods, m) {
			t.Errorf("module %s not loaded; /proc/modules: %v", m, mods)
		}
	}
	if !sys.QethRegistered() {
		t.Errorf("%s missing after loading qeth", ccw.QethGroup)
	}
	// Loading again is a no-op.
	if again, err := (&kmod.Loader{Root: "/", FS: root}).Load(kmod.Qeth...); err != nil || len(again) != 0 {
		t.Errorf("second load: %v, %v", again, err)
	}
}

func TestGroupAbsentDevices(t *testing.T) {
	inGuest(t)
	err := ccwtest.Group(root, "0.0.0100", "0.0.0101", "0.0.0102")
	want := `group 0.0.0100: write "0.0.0100,0.0.0101,0.0.0102" to /sys/bus/ccwgroup/drivers/qeth/group: EINVAL (invalid argument): a device of the triplet is missing, cio_ignored, already grouped or not an OSA device`
	if !errors.Is(err, unix.EINVAL) || err.Error() != want {
		t.Errorf("group of absent devices: %v\nwant %s", err, want)
	}
}

func TestCIOIgnoreFreeAndSettle(t *testing.T) {
	inGuest(t)
	if _, err := sys.Device("0.0.0004"); !sysfs.IsNotExist(err) {
		t.Fatalf("0.0.0004 should start cio_ignored: %v", err)
	}
	if err := ccwtest.Free(root, "0.0.0004", "0.0.0004"); err != nil {
		t.Fatal(err)
	}
	// Settle has waited for the probe: the device is there at once.
	d, err := sys.Device("0.0.0004")
	if err != nil {
		t.Fatal(err)
	}
	if d.CUType != ccw.CUTypeVirtio {
		t.Errorf("freed device: %+v", d)
	}
	// virtio_ccw sets the device online by itself, asynchronously
	// (async_schedule(virtio_ccw_auto_online)): right after settle it may
	// still read online=0.
	for deadline := time.Now().Add(10 * time.Second); !d.Online; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("freed virtio device not online after 10s: %+v", d)
		}
		if d, err = sys.Device("0.0.0004"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sys.Device("0.0.0005"); !sysfs.IsNotExist(err) {
		t.Errorf("0.0.0005 is visible: %v", err)
	}
}

func TestGroupNonOSADevices(t *testing.T) {
	inGuest(t)
	if err := ccwtest.Free(root, "0.0.0001", "0.0.0003"); err != nil {
		t.Fatal(err)
	}
	err := ccwtest.Group(root, "0.0.0001", "0.0.0002", "0.0.0003")
	want := `group 0.0.0001: write "0.0.0001,0.0.0002,0.0.0003" to /sys/bus/ccwgroup/drivers/qeth/group: EINVAL (invalid argument): a device of the triplet is missing, cio_ignored, already grouped or not an OSA device`
	if !errors.Is(err, unix.EINVAL) || err.Error() != want {
		t.Errorf("group of virtio devices: %v\nwant %s", err, want)
	}
}

func TestSetMACOnRealVirtioNIC(t *testing.T) {
	inGuest(t)
	if _, err := (&kmod.Loader{Root: "/", FS: root}).Load(kmod.Virtio...); err != nil {
		t.Fatal(err)
	}
	nd, err := sys.VirtioNetdev("0.0.0001")
	if err != nil {
		t.Fatal(err)
	}
	k, err := link.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	mac := net.HardwareAddr{0x0a, 0, 0, 0, 0, 0x01}
	if err := k.SetHardwareAddr(nd.Index, mac); err != nil {
		t.Fatalf("set MAC of %s: %v", nd.Name, err)
	}
	if l, err := k.LinkByIndex(nd.Index); err != nil || l.Name != nd.Name || l.MAC.String() != mac.String() {
		t.Errorf("netlink reads %+v, %v; want %s with %s", l, err, nd.Name, mac)
	}
	if got, _ := sysfs.ReadString(root, "/sys/class/net/"+nd.Name+"/address"); got != mac.String() {
		t.Errorf("sysfs reads %s, want %s", got, mac)
	}
	// The kernel refuses a multicast address.
	if err := k.SetHardwareAddr(nd.Index, net.HardwareAddr{0x03, 0, 0, 0, 0, 1}); !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Errorf("multicast MAC: %v, want EADDRNOTAVAIL", err)
	}
}

func TestApplyOnRealKernel(t *testing.T) {
	inGuest(t)
	l := cmdline.Parse("0002,0,0a0000000002;0100,0;")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	k, err := link.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	rs := apply.Apply(ctx, apply.Config{FS: root, Links: k, Modules: &kmod.Loader{Root: "/", FS: root}}, l.NICs)
	if !rs[0].OK || rs[0].Kind != apply.KindVirtio {
		t.Errorf("0.0.0002: %+v", rs[0])
	}
	if rs[1].OK || rs[1].Kind != apply.KindMissing || rs[1].Step != "free" {
		t.Errorf("0.0.0100: %+v", rs[1])
	}
	nd, err := sys.VirtioNetdev("0.0.0002")
	if err != nil || nd.MAC != "0a:00:00:00:00:02" {
		t.Errorf("0.0.0002 after apply: %+v, %v", nd, err)
	}
}
