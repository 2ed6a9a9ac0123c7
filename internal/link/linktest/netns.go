// Package linktest gives tests a network namespace of their own with tap
// links standing in for NICs (a host kernel may lack dummy and veth), and
// that namespace's sysfs mounted, so sysfs and netlink describe the same
// links as they do in a guest.
package linktest

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
)

// Netns is a test's network namespace.
type Netns struct {
	FD     int
	Kernel *link.Kernel
	// Sysfs is where the namespace's sysfs is mounted.
	Sysfs string
}

// New creates the namespace with the named tap links. It needs root: the
// test fails in CI without it and is skipped elsewhere.
func New(t testing.TB, taps ...string) *Netns {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must run this test as root: it creates a network namespace")
		}
		t.Skip("needs root to create a network namespace and tap links; run: make unit as root (CI does)")
	}
	e := &Netns{Sysfs: t.TempDir()}
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
			e.FD = fd
			for _, name := range taps {
				if err := addTap(name); err != nil {
					return err
				}
			}
			// sysfs shows the network namespace of the task that mounts it.
			return unix.Mount("sysfs", e.Sysfs, "sysfs", 0, "")
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("set up network namespace with taps %v: %v", taps, err)
	}
	var err error
	if e.Kernel, err = link.OpenIn(e.FD); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = unix.Unmount(e.Sysfs, unix.MNT_DETACH)
		e.Kernel.Close()
		unix.Close(e.FD) // the namespace and its taps go with the last reference
	})
	return e
}

// Rename renames a link in the namespace, as udev does (RTM_SETLINK with
// IFLA_IFNAME).
func (e *Netns) Rename(index int, name string) error {
	c, err := rtnetlink.Dial(&netlink.Config{NetNS: e.FD})
	if err != nil {
		return err
	}
	defer c.Close()
	req := &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(index), Attributes: &rtnetlink.LinkAttributes{Name: name}}
	_, err = c.Execute(req, unix.RTM_SETLINK, netlink.Request|netlink.Acknowledge)
	return err
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

// Links lists the namespace's links other than lo, as its sysfs shows them
// now (renames included).
func (e *Netns) Links() []string {
	entries, _ := os.ReadDir(filepath.Join(e.Sysfs, "devices/virtual/net"))
	var names []string
	for _, en := range entries {
		if en.Name() != "lo" {
			names = append(names, en.Name())
		}
	}
	return names
}

// LinkDir is a link's directory in the namespace's sysfs.
func (e *Netns) LinkDir(name string) string {
	return filepath.Join(e.Sysfs, "devices/virtual/net", name)
}

// MAC reads a link's MAC from the namespace's sysfs, independently of the
// netlink code under test.
func (e *Netns) MAC(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.Sysfs, "class/net", name, "address"))
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}
