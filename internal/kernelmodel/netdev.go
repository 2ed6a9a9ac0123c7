package kernelmodel

import (
	"bytes"
	"fmt"
	"net"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
)

// netdev is a registered network interface, owned by a qeth group or a
// virtio-net-ccw device.
type netdev struct {
	index int
	name  string
	mac   net.HardwareAddr
	group *group
	dev   *ccwDev
}

// newLinkLocked registers a netdev (register_netdevice): a new ifindex,
// and the name "eth<N>" with the lowest N no interface has now
// (dev_alloc_name), so a name freed by a rename is given out again.
func (m *Model) newLinkLocked(mac net.HardwareAddr, g *group, d *ccwDev) int {
	idx := m.nextIndex
	m.nextIndex++
	n := 0
	for m.linkByNameLocked("eth"+strconv.Itoa(n)) != nil {
		n++
	}
	l := &netdev{index: idx, name: "eth" + strconv.Itoa(n), mac: append(net.HardwareAddr(nil), mac...), group: g, dev: d}
	m.links[idx] = l
	m.emitLocked("add", m.netdevPathLocked(l), "net", "INTERFACE", l.name, "IFINDEX", strconv.Itoa(idx))
	return idx
}

func (m *Model) removeLinkLocked(index int) {
	l := m.links[index]
	if l == nil {
		return
	}
	m.emitLocked("remove", m.netdevPathLocked(l), "net", "INTERFACE", l.name, "IFINDEX", strconv.Itoa(index))
	delete(m.links, index)
}

func (m *Model) linkByNameLocked(name string) *netdev {
	for _, l := range m.links {
		if l.name == name {
			return l
		}
	}
	return nil
}

func (m *Model) sortedLinkNamesLocked() []string {
	var names []string
	for _, l := range m.links {
		names = append(names, l.name)
	}
	sort.Strings(names)
	return names
}

// netdevPathLocked is the netdev's DEVPATH: below the group device, or
// below the virtio device of a virtio-net-ccw device.
func (m *Model) netdevPathLocked(l *netdev) string {
	switch {
	case l.group != nil:
		return l.group.devPath() + "/net/" + l.name
	case l.dev != nil && l.dev.vdev >= 0:
		return l.dev.devPath() + "/" + l.dev.virtioName() + "/net/" + l.name
	}
	return "/devices/virtual/net/" + l.name
}

// Rename renames a network interface (what udev does after it appears);
// a "move" uevent goes out.
func (m *Model) Rename(oldName, newName string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.linkByNameLocked(oldName)
	if l == nil || m.linkByNameLocked(newName) != nil {
		return
	}
	old := m.netdevPathLocked(l)
	l.name = newName
	m.emitLocked("move", m.netdevPathLocked(l), "net", "DEVPATH_OLD", old, "INTERFACE", newName, "IFINDEX", strconv.Itoa(l.index))
}

// MAC returns the current MAC of the interface of a device (read bus id).
func (m *Model) MAC(busID string) (net.HardwareAddr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	idx := 0
	if g := m.groups[busID]; g != nil {
		idx = g.netdev
	} else if d := m.devs[busID]; d != nil {
		idx = d.netdev
	}
	if l := m.links[idx]; l != nil {
		return append(net.HardwareAddr(nil), l.mac...), true
	}
	return nil, false
}

// LinkByIndex implements link.Netlink.
func (m *Model) LinkByIndex(index int) (link.Link, error) { return m.linkByIndex("", index) }

func (m *Model) linkByIndex(who string, index int) (link.Link, error) {
	m.turn(who, fmt.Sprintf("getlink %d", index))
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[index]
	if !ok {
		return link.Link{}, unix.ENODEV
	}
	return link.Link{Index: l.index, Name: l.name, MAC: append(net.HardwareAddr(nil), l.mac...)}, nil
}

// SetHardwareAddr implements link.Netlink: RTM_SETLINK with IFLA_ADDRESS.
// do_setlink refuses a short address (EINVAL); eth_prepare_mac_addr_change
// and qeth_l2_set_mac_address refuse a zero or multicast one
// (EADDRNOTAVAIL). For a qeth netdev the current address is accepted
// without asking the adapter; otherwise the OSA adapter refuses an address
// without the locally administered bit (not authorised: EADDRNOTAVAIL, EPERM
// up to 5.6) and one that another online qeth netdev on the same CHPID and
// port has (EADDRINUSE, EEXIST up to 5.6); Fail("mac", id, err) injects
// other answers.
func (m *Model) SetHardwareAddr(index int, mac net.HardwareAddr) error {
	return m.setHardwareAddr("", index, mac)
}

func (m *Model) setHardwareAddr(who string, index int, mac net.HardwareAddr) error {
	if m.BeforeSetMAC != nil {
		m.BeforeSetMAC()
	}
	m.turn(who, fmt.Sprintf("setlink %d %s", index, mac))
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[index]
	if !ok {
		return unix.ENODEV
	}
	if len(mac) < 6 {
		return unix.EINVAL
	}
	mac = mac[:6]
	if m.Kernel >= Linux612 && bytes.Equal(l.mac, mac) {
		return nil // dev_set_mac_address: the driver is not asked
	}
	if mac[0]&1 != 0 || bytes.Equal(mac, make([]byte, 6)) {
		return unix.EADDRNOTAVAIL
	}
	if g := l.group; g != nil {
		if bytes.Equal(l.mac, mac) {
			return nil // "don't register the same address twice"
		}
		if err := m.failures["mac "+g.id]; err != nil {
			return err
		}
		if mac[0]&2 == 0 {
			if m.OldMACErrnos {
				return unix.EPERM
			}
			return unix.EADDRNOTAVAIL
		}
		for _, o := range m.groups {
			if o == g || o.netdev == 0 || !o.up || o.portno != g.portno || o.members[0].chpid != g.members[0].chpid {
				continue
			}
			if ol := m.links[o.netdev]; ol != nil && bytes.Equal(ol.mac, mac) {
				if m.OldMACErrnos {
					return unix.EEXIST
				}
				return unix.EADDRINUSE
			}
		}
	} else if d := l.dev; d != nil {
		if err := m.failures["mac "+d.busID]; err != nil {
			return err
		}
	}
	l.mac = append(net.HardwareAddr(nil), mac...)
	return nil
}
