package apply

import (
	"context"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link/linktest"
)

// netnsFS shows one virtio-net-ccw device, 0.0.0001, whose interface is the
// tap link of a test network namespace, read from that namespace's real
// sysfs: udev-like renames done over netlink show in it as in a guest.
type netnsFS struct{ e *linktest.Netns }

const netnsDev = "/sys/bus/ccw/devices/0.0.0001"

func (f netnsFS) ReadFile(name string) ([]byte, error) {
	switch name {
	case netnsDev + "/cutype":
		return []byte("3832/01\n"), nil
	case netnsDev + "/online":
		return []byte("1\n"), nil
	}
	if rest, ok := strings.CutPrefix(name, netnsDev+"/virtio0/net/"); ok {
		ifname, attr, _ := strings.Cut(rest, "/")
		return os.ReadFile(path.Join(f.e.LinkDir(ifname), attr))
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (f netnsFS) ReadDir(name string) ([]string, error) {
	switch name {
	case netnsDev:
		return []string{"cutype", "online", "virtio0"}, nil
	case netnsDev + "/virtio0/net":
		return f.e.Links(), nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (f netnsFS) Exists(name string) bool {
	_, err := f.ReadFile(name)
	return err == nil || name == netnsDev
}

func (f netnsFS) WriteFile(name string, _ []byte) error {
	return &fs.PathError{Op: "write", Path: name, Err: fs.ErrPermission}
}

func (f netnsFS) ReadLink(name string) (string, error) {
	if name == netnsDev+"/driver" {
		return "../../../../bus/ccw/drivers/virtio_ccw", nil
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrNotExist}
}

// renamer plays udev: it renames the link at a chosen moment.
type renamer struct {
	link.Netlink
	once   sync.Once
	on     string // "get" or "set"
	rename func()
}

func (r *renamer) LinkByIndex(i int) (link.Link, error) {
	if r.on == "get" {
		r.once.Do(r.rename)
	}
	return r.Netlink.LinkByIndex(i)
}

func (r *renamer) SetHardwareAddr(i int, mac net.HardwareAddr) error {
	if r.on == "set" {
		r.once.Do(r.rename)
	}
	return r.Netlink.SetHardwareAddr(i, mac)
}

// The engine's MAC step against the real kernel's rtnetlink, with udev's
// rename falling between the sysfs read and the netlink look-up, and
// between the look-up and the set: the MAC lands on the right link.
func TestMACStepOverRealNetlinkWithRenames(t *testing.T) {
	for _, on := range []string{"get", "set"} {
		t.Run("rename before "+on, func(t *testing.T) {
			e := linktest.New(t, "eth0", "eth1")
			// Only eth0 is the device's; eth1 must stay as it is.
			fsys := netnsFS{e}
			other := "eth1"
			idx := 0
			for _, n := range e.Links() {
				if n == other {
					continue
				}
				b, _ := os.ReadFile(path.Join(e.LinkDir(n), "ifindex"))
				idx = atoi(t, string(b))
			}
			otherMAC := e.MAC(t, other)
			// Hide eth1 from the device's net directory.
			fs := onlyLink{fsys, other}
			nl := &renamer{Netlink: e.Kernel, on: on, rename: func() {
				if err := e.Rename(idx, "enc1"); err != nil {
					t.Error(err)
				}
			}}
			cfg := Config{FS: fs, Links: nl, RenameSettle: time.Second}
			nic := parse(t, "0001,0,0a0000000011;")[0]
			r := SetMAC(context.Background(), cfg, nic)
			if !r.OK || r.Interface != "enc1" {
				t.Fatalf("report %+v", r)
			}
			if got := e.MAC(t, "enc1"); got != "0a:00:00:00:00:11" {
				t.Errorf("enc1 has %s", got)
			}
			if got := e.MAC(t, other); got != otherMAC {
				t.Errorf("%s changed from %s to %s", other, otherMAC, got)
			}
		})
	}
}

// onlyLink hides one link of the namespace from the device's net dir.
type onlyLink struct {
	netnsFS
	hide string
}

func (o onlyLink) ReadDir(name string) ([]string, error) {
	names, err := o.netnsFS.ReadDir(name)
	if name != netnsDev+"/virtio0/net" {
		return names, err
	}
	var out []string
	for _, n := range names {
		if n != o.hide {
			out = append(out, n)
		}
	}
	return out, err
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	for _, c := range strings.TrimSpace(s) {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = 10*n + int(c-'0')
	}
	return n
}

// A --root tree that names an interface this namespace has under another
// name at that index is refused after RenameSettle, and nothing changes.
func TestMACStepNamespaceMismatchOverRealNetlink(t *testing.T) {
	e := linktest.New(t)
	cfg := Config{FS: loAsEth7{}, Links: e.Kernel, RenameSettle: 100 * time.Millisecond}
	before := e.MAC(t, "lo")
	r := SetMAC(context.Background(), cfg, parse(t, "0001,0,0a0000000011;")[0])
	if r.OK || r.Step != "mac" || !strings.Contains(r.Error, "sysfs has eth7 at index 1, netlink has link lo there") {
		t.Errorf("report %+v", r)
	}
	if e.MAC(t, "lo") != before {
		t.Error("lo was changed")
	}
}

type loAsEth7 struct{}

func (loAsEth7) ReadFile(name string) ([]byte, error) {
	switch name {
	case netnsDev + "/cutype":
		return []byte("3832/01\n"), nil
	case netnsDev + "/online":
		return []byte("1\n"), nil
	case netnsDev + "/virtio0/net/eth7/ifindex":
		return []byte("1\n"), nil
	case netnsDev + "/virtio0/net/eth7/address":
		return []byte("00:00:00:00:00:00\n"), nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}
func (loAsEth7) ReadDir(name string) ([]string, error) {
	switch name {
	case netnsDev:
		return []string{"virtio0"}, nil
	case netnsDev + "/virtio0/net":
		return []string{"eth7"}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}
func (l loAsEth7) Exists(name string) bool { _, err := l.ReadFile(name); return err == nil }
func (loAsEth7) WriteFile(name string, _ []byte) error {
	return &fs.PathError{Op: "write", Path: name, Err: fs.ErrPermission}
}
func (loAsEth7) ReadLink(name string) (string, error) {
	return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrNotExist}
}
