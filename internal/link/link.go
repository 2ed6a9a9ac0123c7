// Package link sets a network interface's MAC address over rtnetlink, by
// ifindex, after checking that the interface sysfs named is the one netlink
// has at that index: names race with udev's renames, indexes do not.
package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/errno"
)

// Link is a network interface as netlink reports it.
type Link struct {
	Index int
	Name  string
	MAC   net.HardwareAddr
}

// Netlink is the part of rtnetlink dpm-netconf needs.
type Netlink interface {
	LinkByIndex(index int) (Link, error)
	SetHardwareAddr(index int, mac net.HardwareAddr) error
}

// Kernel is rtnetlink in one network namespace. It decodes only the
// attributes it knows (mdlayher/netlink's attribute decoder), so newer
// kernels' attributes, or a qemu-user translation that leaves them in host
// byte order, do not break it.
type Kernel struct{ c *rtnetlink.Conn }

// Open returns rtnetlink in the caller's network namespace.
func Open() (*Kernel, error) { return OpenIn(0) }

// OpenIn returns rtnetlink in the network namespace the file descriptor nsFD
// refers to (0: the caller's).
func OpenIn(nsFD int) (*Kernel, error) {
	c, err := rtnetlink.Dial(&netlink.Config{NetNS: nsFD})
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink socket: %w", err)
	}
	return &Kernel{c: c}, nil
}

// Close releases the socket.
func (k *Kernel) Close() { k.c.Close() }

// LinkByIndex implements Netlink (RTM_GETLINK).
func (k *Kernel) LinkByIndex(index int) (Link, error) {
	msgs, err := k.c.Execute(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(index)}, unix.RTM_GETLINK, netlink.Request)
	if err != nil {
		return Link{}, err
	}
	if len(msgs) != 1 {
		return Link{}, fmt.Errorf("link %d: %d answers: %w", index, len(msgs), unix.ENODEV)
	}
	m, ok := msgs[0].(*rtnetlink.LinkMessage)
	if !ok {
		return Link{}, fmt.Errorf("link %d: answer of type %T", index, msgs[0])
	}
	l := Link{Index: int(m.Index)}
	if m.Attributes != nil {
		l.Name, l.MAC = m.Attributes.Name, m.Attributes.Address
	}
	return l, nil
}

// SetHardwareAddr implements Netlink: RTM_SETLINK with IFLA_ADDRESS. Only
// the index identifies the link, so a rename in between cannot redirect
// the change; RTM_SETLINK never creates a link.
func (k *Kernel) SetHardwareAddr(index int, mac net.HardwareAddr) error {
	req := &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(index), Attributes: &rtnetlink.LinkAttributes{Address: mac}}
	_, err := k.c.Execute(req, unix.RTM_SETLINK, netlink.Request|netlink.Acknowledge)
	return err
}

// Rename renames a link (tests use it to play udev).
func (k *Kernel) Rename(index int, name string) error {
	req := &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(index), Attributes: &rtnetlink.LinkAttributes{Name: name}}
	_, err := k.c.Execute(req, unix.RTM_SETLINK, netlink.Request|netlink.Acknowledge)
	return err
}

// Sysfs is what sysfs says about a device's interface, read fresh on each
// call: name and ifindex.
type Sysfs func() (name string, index int, err error)

// ErrNamespaceMismatch means sysfs and netlink describe different
// interfaces at the same index for longer than a rename takes: the root
// tree is not this network namespace's.
var ErrNamespaceMismatch = errors.New("sysfs and netlink disagree on this interface")

// Result says what SetMAC found and did.
type Result struct {
	Name    string
	Index   int
	Before  net.HardwareAddr
	After   net.HardwareAddr
	Changed bool
}

// SetMAC gives the interface that sysfs names the MAC mac. It looks the
// interface up by index, and retries while the name netlink reports differs
// from sysfs's (a rename by udev in flight); it gives up with
// ErrNamespaceMismatch after settle has passed without agreement. After
// setting, it reads the address back over netlink.
func SetMAC(ctx context.Context, nl Netlink, sysfs Sysfs, mac net.HardwareAddr, settle time.Duration) (Result, error) {
	var (
		res        Result
		disagreeAt time.Time
		wait       = 5 * time.Millisecond
	)
	for {
		name, index, err := sysfs()
		if err != nil {
			return res, err
		}
		l, err := nl.LinkByIndex(index)
		if err != nil && !errors.Is(err, unix.ENODEV) {
			return res, fmt.Errorf("netlink get link %d (%s): %s", index, name, errno.Words(err))
		}
		if err == nil && l.Name == name {
			res = Result{Name: name, Index: index, Before: l.MAC}
			break
		}
		got := "no link"
		if err == nil {
			got = "link " + l.Name
		}
		if disagreeAt.IsZero() {
			disagreeAt = time.Now()
		} else if time.Since(disagreeAt) > settle {
			return res, fmt.Errorf("%w: sysfs has %s at index %d, netlink has %s there (is --root this network namespace's /sys?)",
				ErrNamespaceMismatch, name, index, got)
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%s at index %d: waiting for sysfs and netlink to agree (netlink has %s): %w", name, index, got, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
	if bytes.Equal(res.Before, mac) {
		res.After = res.Before
		return res, nil
	}
	if err := nl.SetHardwareAddr(res.Index, mac); err != nil {
		return res, &MACError{Name: res.Name, Index: res.Index, MAC: mac, Err: err}
	}
	l, err := nl.LinkByIndex(res.Index)
	if err != nil {
		return res, fmt.Errorf("netlink get link %d (%s) after setting MAC: %s", res.Index, res.Name, errno.Words(err))
	}
	res.After, res.Changed = l.MAC, true
	if !bytes.Equal(l.MAC, mac) {
		return res, fmt.Errorf("set MAC of %s (index %d): the kernel accepted %s but reports %s", res.Name, res.Index, mac, l.MAC)
	}
	return res, nil
}

// MACError is a MAC change the kernel or the adapter refused.
type MACError struct {
	Name  string
	Index int
	MAC   net.HardwareAddr
	Err   error
}

func (e *MACError) Error() string {
	msg := fmt.Sprintf("set MAC of %s (index %d) to %s: netlink RTM_SETLINK: %s", e.Name, e.Index, e.MAC, errno.Words(e.Err))
	switch {
	case errors.Is(e.Err, unix.EADDRNOTAVAIL), errors.Is(e.Err, unix.EPERM):
		msg += ": the adapter rejected the address (not authorised for user-chosen MACs, or not a valid unicast address)"
	case errors.Is(e.Err, unix.EEXIST):
		msg += ": the adapter reports the address as already in use on this port"
	case errors.Is(e.Err, unix.ENOSPC):
		msg += ": the adapter's MAC table is full"
	case errors.Is(e.Err, unix.EOPNOTSUPP):
		msg += ": this device type does not allow changing its MAC"
	case errors.Is(e.Err, unix.EBUSY):
		msg += ": the interface is busy (a driver that cannot change the MAC while up)"
	}
	return msg
}

func (e *MACError) Unwrap() error { return e.Err }

// Lazy is rtnetlink in the caller's network namespace, opened on first use:
// runs that set no MAC (plan, status, a list without MACs) open nothing.
type Lazy struct {
	once sync.Once
	k    *Kernel
	err  error
}

func (l *Lazy) get() (*Kernel, error) {
	l.once.Do(func() { l.k, l.err = Open() })
	return l.k, l.err
}

// LinkByIndex implements Netlink.
func (l *Lazy) LinkByIndex(index int) (Link, error) {
	k, err := l.get()
	if err != nil {
		return Link{}, err
	}
	return k.LinkByIndex(index)
}

// SetHardwareAddr implements Netlink.
func (l *Lazy) SetHardwareAddr(index int, mac net.HardwareAddr) error {
	k, err := l.get()
	if err != nil {
		return err
	}
	return k.SetHardwareAddr(index, mac)
}

// Close releases the socket if one was opened.
func (l *Lazy) Close() {
	if l.k != nil {
		l.k.Close()
	}
}
