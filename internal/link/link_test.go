package link

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netnsEnv is a network namespace of the test's own with tap links standing
// in for NICs (this host's kernel has no dummy or veth), and a sysfs
// mounted from inside it, so sysfs and netlink describe the same links as
// they do in a guest.
type netnsEnv struct {
	nsFD  int
	k     *Kernel
	sysfs string
}

func newNetns(t *testing.T, taps ...string) *netnsEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must run this test as root: it creates a network namespace")
		}
		t.Skip("skipped: needs root to create a network namespace and tap links (CI runs it)")
	}
	e := &netnsEnv{sysfs: t.TempDir()}
	errc := make(chan error, 1)
	// A thread of its own enters the new namespace and is never handed back
	// to the Go scheduler (it exits with the goroutine still locked).
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return err
			}
			fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			e.nsFD = fd
			for _, name := range taps {
				if err := addTap(name); err != nil {
					return err
				}
			}
			// sysfs shows the network namespace of the task that mounts it.
			return unix.Mount("sysfs", e.sysfs, "sysfs", 0, "")
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("set up network namespace with taps %v: %v", taps, err)
	}
	var err error
	if e.k, err = OpenIn(e.nsFD); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = unix.Unmount(e.sysfs, unix.MNT_DETACH)
		e.k.Close()
		unix.Close(e.nsFD) // the namespace and its taps go with the last reference
	})
	return e
}

// addTap creates a persistent tap link with TUNSETIFF and TUNSETPERSIST.
func addTap(name string) error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return err
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETPERSIST, 1); errno != 0 {
		return errno
	}
	return nil
}

// sysfsOf reads a link's name and index the way apply does: the one
// interface listed in a device's net directory (for taps:
// devices/virtual/net), then its ifindex file.
func (e *netnsEnv) sysfsOf() (string, int, error) {
	dir := filepath.Join(e.sysfs, "devices/virtual/net")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", 0, err
	}
	for _, en := range entries {
		if en.Name() == "lo" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, en.Name(), "ifindex"))
		if err != nil {
			return "", 0, err
		}
		i, err := strconv.Atoi(strings.TrimSpace(string(b)))
		return en.Name(), i, err
	}
	return "", 0, errors.New("no tap in sysfs")
}

// macOf reads a link's MAC from the namespace's sysfs, independently of
// the netlink code under test.
func (e *netnsEnv) macOf(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.sysfs, "class/net", name, "address"))
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

var want = net.HardwareAddr{0x0a, 0, 0, 0, 0, 0x11}

func TestSetMACOverNetlink(t *testing.T) {
	e := newNetns(t, "eth0")
	ctx := context.Background()
	res, err := SetMAC(ctx, e.k, e.sysfsOf, want, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Name != "eth0" || res.After.String() != want.String() || res.Before.String() == want.String() {
		t.Errorf("result %+v", res)
	}
	if got := e.macOf(t, "eth0"); got != want.String() {
		t.Errorf("sysfs reads %s, want %s", got, want)
	}
	// Again: nothing to change.
	res, err = SetMAC(ctx, e.k, e.sysfsOf, want, time.Second)
	if err != nil || res.Changed {
		t.Errorf("second SetMAC: %+v, %v", res, err)
	}
}

// renamer wraps the kernel to rename the link at a chosen moment, as udev
// does when it gives an interface its predictable name.
type renamer struct {
	Netlink
	before func(op string)
}

func (r renamer) LinkByIndex(i int) (Link, error) { r.before("get"); return r.Netlink.LinkByIndex(i) }
func (r renamer) SetHardwareAddr(i int, mac net.HardwareAddr) error {
	r.before("set")
	return r.Netlink.SetHardwareAddr(i, mac)
}

func TestSetMACRenameAfterSysfsLookup(t *testing.T) {
	e := newNetns(t, "eth0")
	name, index, err := e.sysfsOf()
	if err != nil || name != "eth0" {
		t.Fatal(name, err)
	}
	stale := true
	// sysfs said eth0; before netlink is asked, udev renames it to enc1. The
	// first look sees a disagreement and reads sysfs again.
	nl := renamer{e.k, func(op string) {
		if op == "get" && stale {
			stale = false
			if err := e.k.Rename(index, "enc1"); err != nil {
				t.Error(err)
			}
		}
	}}
	first := true
	sysfs := func() (string, int, error) {
		if first {
			first = false
			return name, index, nil // read before the rename
		}
		return e.sysfsOf()
	}
	res, err := SetMAC(context.Background(), nl, sysfs, want, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "enc1" || res.Index != index {
		t.Errorf("result %+v, want enc1 at %d", res, index)
	}
	if got := e.macOf(t, "enc1"); got != want.String() {
		t.Errorf("enc1 has %s, want %s", got, want)
	}
}

func TestSetMACRenameBetweenCheckAndSet(t *testing.T) {
	e := newNetns(t, "eth0", "eth1")
	name, index, err := e.sysfsOf()
	if err != nil {
		t.Fatal(err)
	}
	// The link is renamed after the check and before the set; the set goes
	// by index, so it still changes that link and no other.
	done := false
	nl := renamer{e.k, func(op string) {
		if op == "set" && !done {
			done = true
			if err := e.k.Rename(index, "enc9"); err != nil {
				t.Error(err)
			}
		}
	}}
	if _, err := SetMAC(context.Background(), nl, e.sysfsOf, want, time.Second); err != nil {
		t.Fatal(err)
	}
	if got := e.macOf(t, "enc9"); got != want.String() {
		t.Errorf("renamed %s has %s, want %s", name, got, want)
	}
	other := "eth1"
	if name == "eth1" {
		other = "eth0"
	}
	if got := e.macOf(t, other); got == want.String() {
		t.Errorf("%s got the MAC too", other)
	}
}

func TestSetMACNamespaceMismatch(t *testing.T) {
	e := newNetns(t, "eth0")
	// A --root tree that names an interface this namespace has under
	// another name at that index (lo is index 1 in every namespace).
	sysfs := func() (string, int, error) { return "eth7", 1, nil }
	start := time.Now()
	_, err := SetMAC(context.Background(), e.k, sysfs, want, 100*time.Millisecond)
	if !errors.Is(err, ErrNamespaceMismatch) || !strings.Contains(err.Error(), "sysfs has eth7 at index 1, netlink has link lo there") {
		t.Errorf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("gave up after %v", time.Since(start))
	}
	if got := e.macOf(t, "lo"); got == want.String() {
		t.Error("lo was changed")
	}
}

func TestSetMACRejected(t *testing.T) {
	e := newNetns(t, "eth0")
	multicast := net.HardwareAddr{0x03, 0, 0, 0, 0, 1}
	_, err := SetMAC(context.Background(), e.k, e.sysfsOf, multicast, time.Second)
	var me *MACError
	if !errors.As(err, &me) || !errors.Is(err, unix.EADDRNOTAVAIL) ||
		!strings.Contains(err.Error(), "EADDRNOTAVAIL (cannot assign requested address): the adapter rejected the address") {
		t.Errorf("err = %v", err)
	}
}

func TestSetMACDeadline(t *testing.T) {
	e := newNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	sysfs := func() (string, int, error) { return "eth0", 999, nil } // never appears
	_, err := SetMAC(ctx, e.k, sysfs, want, time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}
