// Package link reads and sets network interfaces over rtnetlink, by
// ifindex (names race with udev's renames, indexes do not), and words the
// kernel's and the adapter's answers to a MAC change.
package link

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/errno"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/trace"
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
// The socket is Strict: the kernel's extended acknowledgements (the text
// it gives with an error) reach MACError. Where the kernel or an emulator
// (qemu-user) refuses those socket options, it is opened without them.
func OpenIn(nsFD int) (*Kernel, error) {
	c, err := rtnetlink.Dial(&netlink.Config{NetNS: nsFD, Strict: true})
	if err != nil {
		c, err = rtnetlink.Dial(&netlink.Config{NetNS: nsFD})
	}
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink socket: %w", err)
	}
	return &Kernel{c: c}, nil
}

// Close releases the socket.
func (k *Kernel) Close() { k.c.Close() }

// LinkByIndex implements Netlink (RTM_GETLINK).
func (k *Kernel) LinkByIndex(index int) (Link, error) {
	defer trace.Spanf("RTM_GETLINK %d", index)()
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
	defer trace.Spanf("RTM_SETLINK %d", index)()
	req := &rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(index), Attributes: &rtnetlink.LinkAttributes{Address: mac}}
	_, err := k.c.Execute(req, unix.RTM_SETLINK, netlink.Request|netlink.Acknowledge)
	return err
}

// ErrNamespaceMismatch means sysfs and netlink describe different
// interfaces at the same index for longer than a rename takes: the root
// tree is not this network namespace's.
var ErrNamespaceMismatch = errors.New("sysfs and netlink disagree on this interface")

// MACError is a MAC change the kernel or the adapter refused.
type MACError struct {
	Name  string
	Index int
	MAC   net.HardwareAddr
	Kind  string // "qeth" or "virtio": what the hint speaks of
	Err   error
}

func (e *MACError) Error() string {
	msg := fmt.Sprintf("set MAC of %s (index %d) to %s: netlink RTM_SETLINK: %s", e.Name, e.Index, e.MAC, errno.Words(e.Err))
	// The kernel's own words, when it gave any (extended acknowledgement).
	var oe *netlink.OpError
	if errors.As(e.Err, &oe) && oe.Message != "" {
		msg += fmt.Sprintf(" (kernel: %q)", oe.Message)
	}
	if h := macHint(e.Kind, e.Err); h != "" {
		msg += ": " + h
	}
	return msg
}

// macHints say what the kernel's answers to a MAC change usually mean, for
// a kind of NIC ("" for any). The qeth driver (qeth_l2_setdelmac_makerc)
// answers the adapter's "duplicate" with EADDRINUSE since Linux 5.7 and
// EEXIST up to 5.6, its "not authorised by the hypervisor or adapter" with
// EADDRNOTAVAIL since 5.7 and EPERM up to 5.6, an adapter that does not
// answer with ETIME (qeth_send_ipa_cmd: QETH_IPA_TIMEOUT, 45 s); the
// kernel's own check of the address (zero or multicast) is EADDRNOTAVAIL
// too. virtio_net asks the host (VIRTIO_NET_CTRL_MAC_ADDR_SET) and answers
// its refusal with EINVAL (virtnet_set_mac_address).
var macHints = []struct {
	kind  string
	errno unix.Errno
	hint  string
}{
	{"", unix.EADDRINUSE, macInUse},
	{"", unix.EEXIST, macInUse},
	{"", unix.EADDRNOTAVAIL, macNotAllowed},
	{"", unix.EPERM, macNotAllowed + "; or dpm-netconf lacks CAP_NET_ADMIN"},
	{"qeth", unix.ENOSPC, "the adapter's MAC address table is full (too many addresses registered on this port)"},
	{"", unix.EOPNOTSUPP, "this device type does not allow changing its MAC (qeth on an OSM or OSX CHPID, an adapter without the set-MAC command, virtio-net with the failover standby feature)"},
	{"qeth", unix.EIO, "the adapter refused the command with a return code the qeth driver has no specific errno for"},
	{"qeth", unix.ETIME, "the adapter did not answer the set-MAC command in time (the qeth driver waits 45 s): check the adapter and its CHPID"},
	{"virtio", unix.EINVAL, "the host refused the address (the virtio-net device's host side, e.g. its MAC filter or a macvtap backend, does not allow a change)"},
	{"", unix.EINVAL, "the kernel refused the address for this interface (length or format)"},
	{"", unix.EINTR, "the request was interrupted (a signal); running dpm-netconf again retries it"},
	{"", unix.EBUSY, "the interface is busy (a driver that cannot change the MAC while up)"},
}

const (
	macInUse      = "the address is already registered on this adapter port (another NIC, or another partition)"
	macNotAllowed = "the adapter or hypervisor does not allow this address (user-chosen MACs not authorised, or not a locally administered unicast address)"
)

// macHint says what an error from setting a MAC usually means, or "" when
// there is nothing to add to the errno.
func macHint(kind string, err error) string {
	for _, h := range macHints {
		if (h.kind == "" || h.kind == kind) && errors.Is(err, h.errno) {
			return h.hint
		}
	}
	return ""
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
	l.once.Do(func() {
		defer trace.Span("rtnetlink dial")()
		l.k, l.err = Open()
	})
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
