package kernelmodel

import (
	"net"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/busid"
)

// qethMaxPortno is QETH_MAX_PORTNO.
const qethMaxPortno = 15

// parseBusID is __get_next_id of drivers/s390/cio/ccwgroup.c
// ("%2x.%1x.%04x"), giving the bus id as sysfs spells it.
func parseBusID(s string) (string, bool) {
	parts := strings.Split(s, ".")
	if len(s) > 9 || len(parts) != 3 || len(parts[0]) > 2 || len(parts[1]) != 1 || len(parts[2]) > 4 {
		return "", false
	}
	var v [3]uint64
	for i, p := range parts {
		n, err := kstrtoul(p, 16)
		if err != nil || strings.HasPrefix(p, "+") {
			return "", false
		}
		v[i] = n
	}
	// get_ccwdev_by_dev_id looks devices up by ssid and devno only.
	return busid.ID{SSID: uint8(v[1]), Devno: uint16(v[2])}.String(), true
}

// group is a write to /sys/bus/ccwgroup/drivers/qeth/group:
// ccwgroup_create_dev with qeth_core_probe_device. Every refusal is EINVAL.
// The group directory appears (device_add: "add" and "bind" events) before
// the cdev and group_device links are made.
func (m *Model) group(value string) error {
	m.mu.Lock()
	if !m.qethGroupDriverLocked() {
		m.mu.Unlock()
		return unix.ENOENT
	}
	ids := strings.Split(value, ",")
	var members [3]*ccwDev
	for i := range members {
		if i >= len(ids) { // "Check for sufficient number of bus ids."
			m.mu.Unlock()
			return unix.EINVAL
		}
		id, ok := parseBusID(ids[i])
		d := m.devs[id]
		// A missing device, one without a driver, or one of another driver
		// or card type than the first cannot be grouped; nor can a device
		// that already belongs to a group.
		if !ok || d == nil || !d.visible || d.driver == "" ||
			(i > 0 && (d.driver != members[0].driver || d.cutype != members[0].cutype)) ||
			d.group != nil {
			m.mu.Unlock()
			return unix.EINVAL
		}
		for _, o := range members[:i] {
			if o == d {
				m.mu.Unlock()
				return unix.EINVAL
			}
		}
		members[i] = d
	}
	// "Check for trailing stuff."
	if len(ids) > 3 {
		m.mu.Unlock()
		return unix.EINVAL
	}
	// "Check if the devices are bound to the required ccw driver."
	if members[0].driver != "qeth" {
		m.mu.Unlock()
		return unix.EINVAL
	}
	if err := m.failures["group "+members[0].busID]; err != nil {
		m.mu.Unlock()
		return err
	}
	g := &group{id: members[0].busID, members: members, layer2: -1, cardType: "OSD_Express"}
	if members[0].cutype == "1731/05" {
		g.cardType = "HiperSockets"
	}
	for _, d := range members {
		d.group = g
	}
	m.groups[g.id] = g
	m.emitLocked("add", g.devPath(), "ccwgroup")
	m.emitLocked("bind", g.devPath(), "ccwgroup", "DRIVER", "qeth")
	m.mu.Unlock()

	// __ccwgroup_create_symlinks, after device_add.
	m.mu.Lock()
	g.linked = true
	m.mu.Unlock()
	return nil
}

// groupAttr is a write to a qeth group device's attribute.
func (m *Model) groupAttr(id, attr, value string) error {
	m.mu.Lock()
	g := m.groups[id]
	var err error
	if g == nil {
		err = unix.ENOENT
	} else {
		err = m.failures[attr+" "+id]
	}
	m.mu.Unlock()
	if err != nil {
		return err
	}
	switch attr {
	case "layer2":
		return m.setLayer2(g, value)
	case "portno":
		return m.setPortno(g, value)
	case "online":
		return m.groupOnlineStore(g, value)
	case "ungroup":
		return m.ungroup(g)
	}
	return unix.EACCES
}

// lockCardLocked waits, without the model's lock, until no online or
// offline holds the card's discipline and configuration mutexes; it
// returns with the lock held.
func (m *Model) lockCardLocked(g *group) {
	for g.cardBusy != nil {
		ch := g.cardBusy
		m.mu.Unlock()
		<-ch
		m.mu.Lock()
	}
}

// setLayer2 is qeth_dev_layer2_store (6.x): parse, then under the
// discipline mutex EPERM unless DOWN, nothing for the current value, and
// the discipline module must be live (request_module has no modprobe to
// run in early userspace).
func (m *Model) setLayer2(g *group, value string) error {
	v, err := kstrtoul(value, 16)
	if err != nil {
		return err
	}
	if v > 1 {
		return unix.EINVAL
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lockCardLocked(g)
	if g.up {
		return unix.EPERM
	}
	if int(v) == g.layer2 {
		return nil
	}
	if !m.moduleLiveLocked(discipline(int(v))) {
		return unix.EINVAL
	}
	g.layer2 = int(v)
	return nil
}

func discipline(layer2 int) string {
	if layer2 == 1 {
		return "qeth_l2"
	}
	return "qeth_l3"
}

// setPortno is qeth_dev_portno_store (6.x).
func (m *Model) setPortno(g *group, value string) error {
	v, err := kstrtoul(value, 16)
	if err != nil {
		return err
	}
	if v > qethMaxPortno {
		return unix.EINVAL
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lockCardLocked(g)
	if g.up {
		return unix.EPERM
	}
	limit := m.Ports - 1
	if m.Ports == 0 {
		limit = 0
	}
	if int(v) > limit {
		return unix.EINVAL
	}
	g.portno = int(v)
	return nil
}

// groupOnlineStore is ccwgroup_online_store: under the device lock (a
// second writer waits for the first), kstrtoul base 0, then
// ccwgroup_set_online or ccwgroup_set_offline.
func (m *Model) groupOnlineStore(g *group, value string) error {
	m.mu.Lock()
	for g.devLock != nil {
		ch := g.devLock
		m.mu.Unlock()
		<-ch
		m.mu.Lock()
	}
	if m.groups[g.id] != g { // ungrouped meanwhile
		m.mu.Unlock()
		return unix.ENODEV
	}
	g.devLock = make(chan struct{})
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		close(g.devLock)
		g.devLock = nil
		m.mu.Unlock()
	}()
	v, err := kstrtoul(value, 0)
	if err != nil {
		return err
	}
	switch v {
	case 1:
		return m.groupSetOnline(g)
	case 0:
		return m.groupSetOffline(g)
	}
	return unix.EINVAL
}

// groupSetOnline is ccwgroup_set_online with qeth_core_set_online: EAGAIN
// while another on/offline or an ungroup holds onoff, EINVAL when online;
// the discipline is chosen when none was (L2 for OSA, L3 for HiperSockets)
// and must be live; the card's mutexes are held for OnlineDelay, the
// members go online, the netdev is registered at the first online, the
// card is SOFTSETUP and a "change" uevent goes out; only then does the
// group read online=1.
func (m *Model) groupSetOnline(g *group) error {
	m.mu.Lock()
	if g.onoff {
		m.mu.Unlock()
		return unix.EAGAIN
	}
	if g.online {
		m.mu.Unlock()
		return unix.EINVAL
	}
	if g.layer2 == -1 {
		want := 1
		if g.cardType == "HiperSockets" {
			want = 0
		}
		if !m.moduleLiveLocked(discipline(want)) {
			m.mu.Unlock()
			return unix.EINVAL
		}
		g.layer2 = want
	} else if !m.moduleLiveLocked(discipline(g.layer2)) {
		m.mu.Unlock()
		return unix.EINVAL
	}
	g.onoff = true
	busy := make(chan struct{})
	g.cardBusy = busy
	delay := m.OnlineDelay
	// The members' channels start first (qeth_start_channel →
	// ccw_device_set_online, early in hardsetup): for most of the online
	// the members read online=1 while the group still reads 0 and the card
	// DOWN.
	for _, d := range g.members {
		d.online = true
	}
	m.mu.Unlock()

	time.Sleep(delay)
	m.turn(kernelActor, "online "+g.id+": card up")

	m.mu.Lock()
	m.cardUpLocked(g)
	m.emitLocked("change", g.devPath(), "ccwgroup")
	g.cardBusy = nil
	close(busy)
	m.mu.Unlock()
	m.turn(kernelActor, "online "+g.id+": online=1")

	m.mu.Lock()
	g.online = true
	g.onoff = false
	m.mu.Unlock()
	return nil
}

// cardUpLocked is qeth_set_online's effect: members online, the netdev
// registered at the first online (qeth_l2_main.c keeps it afterwards),
// the card SOFTSETUP.
func (m *Model) cardUpLocked(g *group) {
	for _, d := range g.members {
		d.online = true
	}
	if g.netdev == 0 {
		n, _ := devno(g.id)
		g.netdev = m.newLinkLocked(net.HardwareAddr{0x00, 0x0a, 0x00, 0x00, byte(n >> 8), byte(n)}, g, nil)
	}
	g.up = true
}

// groupSetOffline is ccwgroup_set_offline with qeth_set_offline: EAGAIN
// while onoff is held, EINVAL when already offline; the "change" uevent
// goes out before the group reads online=0.
func (m *Model) groupSetOffline(g *group) error {
	m.mu.Lock()
	if g.onoff {
		m.mu.Unlock()
		return unix.EAGAIN
	}
	if !g.online {
		m.mu.Unlock()
		return unix.EINVAL
	}
	g.onoff = true
	for _, d := range g.members {
		d.online = false
	}
	g.up = false
	m.emitLocked("change", g.devPath(), "ccwgroup")
	m.mu.Unlock()

	m.mu.Lock()
	g.online = false
	g.onoff = false
	m.mu.Unlock()
	return nil
}

// ungroup is ccwgroup_ungroup_store: EAGAIN while onoff is held (an
// online or offline in flight), EINVAL unless offline; the group device,
// its links and its netdev go away.
func (m *Model) ungroup(g *group) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g.onoff {
		return unix.EAGAIN
	}
	if g.online {
		return unix.EINVAL
	}
	if m.groups[g.id] != g {
		return unix.ENODEV
	}
	if g.netdev != 0 {
		m.removeLinkLocked(g.netdev)
		g.netdev = 0
	}
	for _, d := range g.members {
		d.group = nil
	}
	g.linked = false
	delete(m.groups, g.id)
	m.emitLocked("unbind", g.devPath(), "ccwgroup", "DRIVER", "qeth")
	m.emitLocked("remove", g.devPath(), "ccwgroup")
	return nil
}
