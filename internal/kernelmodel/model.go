// Package kernelmodel is an in-memory model of the parts of the Linux s390
// kernel that dpm-netconf talks to: CCW devices and cio_ignore
// (drivers/s390/cio), ccwgroup grouping and the qeth attributes
// (drivers/s390/net/qeth_core_sys.c), virtio-net-ccw, modules, and the
// netlink link calls. It answers writes the way the kernel does
// (../shared/notes/kernel-abi.md), so the apply logic can be tested and
// benchmarked on a host without an s390 machine.
//
// It implements sysfs.FS and link.Netlink.
package kernelmodel

import (
	"fmt"
	"io/fs"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
)

// Model is one simulated kernel. The zero value is not usable; call New.
type Model struct {
	// OnlineDelay is how long a qeth online write blocks (real OSA: up to
	// seconds).
	OnlineDelay time.Duration
	// Ports is the number of ports each OSA adapter reports (default 2).
	Ports int
	// BeforeSetMAC, when set, runs before each SetHardwareAddr (to inject a
	// rename race).
	BeforeSetMAC func()

	mu        sync.Mutex
	devs      map[string]*ccwDev
	groups    map[string]*group
	links     map[int]*link.Link
	modules   map[string]bool
	cioIgnore bool
	failures  map[string]error
	nextIndex int
	nextEth   int
	writes    []string
}

type ccwDev struct {
	busID   string
	cutype  string
	chpid   string
	visible bool // absent from sysfs while cio_ignored
	freed   bool // freed from cio_ignore, visible after the next settle
	online  bool
	grouped bool
	virtio  bool
	mac     net.HardwareAddr
	netdev  int // ifindex, 0 when none
}

type group struct {
	id       string
	members  [3]*ccwDev
	layer2   int
	portno   int
	online   bool
	netdev   int
	cardType string
}

// New returns a model with no devices, cio_ignore present but empty, and
// no modules loaded.
func New() *Model {
	return &Model{
		Ports:     2,
		devs:      map[string]*ccwDev{},
		groups:    map[string]*group{},
		links:     map[int]*link.Link{},
		modules:   map[string]bool{},
		failures:  map[string]error{},
		cioIgnore: true,
		nextIndex: 2, // 1 is lo
	}
}

// AddCCW adds a CCW device with a control-unit type on a CHPID.
func (m *Model) AddCCW(busID, cutype, chpid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.devs[busID] = &ccwDev{busID: busID, cutype: cutype, chpid: chpid, visible: true}
}

// AddOSA adds an OSA-Express (OSD) triplet read, read+1, read+2 on a CHPID.
func (m *Model) AddOSA(readBusID, chpid string) {
	for i := 0; i < 3; i++ {
		m.AddCCW(offset(readBusID, i), "1731/01", chpid)
	}
}

// AddVirtioNet adds a virtio-net-ccw device with the MAC QEMU gave it. It
// is online at once, as virtio_ccw's auto-online makes it.
func (m *Model) AddVirtioNet(busID, mac string) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &ccwDev{busID: busID, cutype: "3832/01", chpid: "00", visible: true, online: true, virtio: true, mac: hw}
	m.devs[busID] = d
	if m.modules["virtio_net"] {
		m.addVirtioNetdevLocked(d)
	}
}

// Ignore puts devices on the cio_ignore list: they vanish from sysfs.
func (m *Model) Ignore(busIDs ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range busIDs {
		if d := m.devs[id]; d != nil {
			d.visible, d.freed = false, false
		}
	}
}

// NoCIOIgnore removes /proc/cio_ignore (a kernel without it).
func (m *Model) NoCIOIgnore() { m.mu.Lock(); m.cioIgnore = false; m.mu.Unlock() }

// Fail makes an operation fail with err: op is a step ("group", "layer2",
// "portno", "online", "mac") and target a bus id (for "mac": the read
// device's bus id).
func (m *Model) Fail(op, target string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures[op+" "+target] = err
}

// LoadModules marks modules as loaded (built in or loaded earlier).
func (m *Model) LoadModules(names ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range names {
		m.loadLocked(n)
	}
}

// Insmod is a module-file load (the finit_module stand-in for kmod tests).
func (m *Model) Insmod(file string) {
	name := strings.TrimSuffix(path.Base(file), ".ko")
	m.LoadModules(strings.ReplaceAll(name, "-", "_"))
}

// Loaded reports whether a module is loaded.
func (m *Model) Loaded(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.modules[name]
}

func (m *Model) loadLocked(name string) {
	m.modules[name] = true
	if name == "virtio_net" {
		for _, d := range m.sortedDevs() {
			if d.virtio && d.visible && d.netdev == 0 {
				m.addVirtioNetdevLocked(d)
			}
		}
	}
}

// Writes lists every write the model accepted or refused, "file value", in
// order: tests use it to check ordering and that nothing was done.
func (m *Model) Writes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.writes...)
}

// Rename renames a network interface (what udev does after it appears).
func (m *Model) Rename(oldName, newName string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.links {
		if l.Name == oldName {
			l.Name = newName
		}
	}
}

// SetGroupState makes a grouped, online qeth device as a previous boot or
// another tool would leave it.
func (m *Model) SetGroupState(readBusID string, layer2, port int, online bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := &group{id: readBusID, layer2: layer2, portno: port, cardType: "OSD_Express"}
	for i := 0; i < 3; i++ {
		d := m.devs[offset(readBusID, i)]
		d.grouped = true
		g.members[i] = d
	}
	m.groups[readBusID] = g
	if online {
		m.onlineLocked(g)
	}
}

func (m *Model) sortedDevs() []*ccwDev {
	ids := make([]string, 0, len(m.devs))
	for id := range m.devs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]*ccwDev, len(ids))
	for i, id := range ids {
		out[i] = m.devs[id]
	}
	return out
}

func (m *Model) addVirtioNetdevLocked(d *ccwDev) {
	d.netdev = m.newLinkLocked(d.mac)
}

func (m *Model) newLinkLocked(mac net.HardwareAddr) int {
	idx := m.nextIndex
	m.nextIndex++
	m.links[idx] = &link.Link{Index: idx, Name: fmt.Sprintf("eth%d", m.nextEth), MAC: append(net.HardwareAddr(nil), mac...)}
	m.nextEth++
	return idx
}

func offset(busID string, n int) string {
	v, err := strconv.ParseUint(busID[4:], 16, 16)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%s%04x", busID[:4], v+uint64(n))
}

// --- link.Netlink ---

// LinkByIndex implements link.Netlink.
func (m *Model) LinkByIndex(index int) (link.Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[index]
	if !ok {
		return link.Link{}, unix.ENODEV
	}
	return link.Link{Index: l.Index, Name: l.Name, MAC: append(net.HardwareAddr(nil), l.MAC...)}, nil
}

// SetHardwareAddr implements link.Netlink with the checks of
// eth_prepare_mac_addr_change and the OSA answers injected with Fail.
func (m *Model) SetHardwareAddr(index int, mac net.HardwareAddr) error {
	if m.BeforeSetMAC != nil {
		m.BeforeSetMAC()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[index]
	if !ok {
		return unix.ENODEV
	}
	if len(mac) != 6 || mac[0]&1 != 0 || string(mac) == string(make([]byte, 6)) {
		return unix.EADDRNOTAVAIL
	}
	for _, g := range m.groups {
		if g.netdev == index {
			if err := m.failures["mac "+g.id]; err != nil {
				return err
			}
		}
	}
	for _, d := range m.devs {
		if d.netdev == index {
			if err := m.failures["mac "+d.busID]; err != nil {
				return err
			}
		}
	}
	l.MAC = append(net.HardwareAddr(nil), mac...)
	return nil
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
		return l.MAC, true
	}
	return nil, false
}

// --- sysfs.FS ---

var errNotExist = fs.ErrNotExist

// ReadFile implements sysfs.FS.
func (m *Model) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.readLocked(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return []byte(v + "\n"), nil
}

func (m *Model) readLocked(name string) (string, error) {
	p := strings.Split(strings.TrimPrefix(name, "/"), "/")
	switch {
	case name == "/proc/cio_ignore" && m.cioIgnore:
		var ign []string
		for _, d := range m.sortedDevs() {
			if !d.visible && !d.freed {
				ign = append(ign, d.busID)
			}
		}
		return strings.Join(ign, "\n"), nil
	case hasPrefix(p, "sys", "bus", "ccw", "devices") && len(p) >= 6:
		d := m.devs[p[4]]
		if d == nil || !d.visible {
			return "", errNotExist
		}
		switch {
		case len(p) == 6 && p[5] == "cutype":
			return d.cutype, nil
		case len(p) == 6 && p[5] == "online":
			return boolStr(d.online), nil
		case len(p) == 7 && p[5] == ".." && p[6] == "chpids":
			return d.chpid + " 00 00 00 00 00 00 00", nil
		case len(p) == 9 && strings.HasPrefix(p[5], "virtio") && p[6] == "net" && d.netdev != 0:
			return m.linkAttrLocked(d.netdev, p[7], p[8:])
		}
	case hasPrefix(p, "sys", "bus", "ccwgroup", "devices") && len(p) >= 6:
		g := m.groups[p[4]]
		if g == nil {
			return "", errNotExist
		}
		if len(p) == 6 {
			switch p[5] {
			case "online":
				return boolStr(g.online), nil
			case "layer2":
				return strconv.Itoa(g.layer2), nil
			case "portno":
				return strconv.Itoa(g.portno), nil
			case "state":
				if g.online {
					return "SOFTSETUP", nil
				}
				return "DOWN", nil
			case "card_type":
				return g.cardType, nil
			}
		}
		if len(p) == 8 && p[5] == "net" && g.netdev != 0 {
			return m.linkAttrLocked(g.netdev, p[6], p[7:])
		}
	case hasPrefix(p, "sys", "class", "net") && len(p) == 5:
		for idx, l := range m.links {
			if l.Name == p[3] {
				return m.linkAttrLocked(idx, p[3], p[4:])
			}
		}
	}
	return "", errNotExist
}

func (m *Model) linkAttrLocked(index int, name string, rest []string) (string, error) {
	l := m.links[index]
	if l == nil || l.Name != name || len(rest) != 1 {
		return "", errNotExist
	}
	switch rest[0] {
	case "ifindex":
		return strconv.Itoa(index), nil
	case "address":
		return l.MAC.String(), nil
	}
	return "", errNotExist
}

// ReadDir implements sysfs.FS.
func (m *Model) ReadDir(name string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := strings.Split(strings.TrimPrefix(name, "/"), "/")
	switch {
	case hasPrefix(p, "sys", "bus", "ccw", "devices") && len(p) >= 5:
		d := m.devs[p[4]]
		if d == nil || !d.visible {
			break
		}
		if len(p) == 5 {
			names := []string{"cutype", "online"}
			if d.virtio {
				names = append(names, "virtio"+strconv.Itoa(m.virtioNumberLocked(d)))
			}
			return names, nil
		}
		if len(p) == 7 && strings.HasPrefix(p[5], "virtio") && p[6] == "net" && d.netdev != 0 {
			return []string{m.links[d.netdev].Name}, nil
		}
	case hasPrefix(p, "sys", "bus", "ccwgroup", "devices") && len(p) == 6 && p[5] == "net":
		if g := m.groups[p[4]]; g != nil && g.netdev != 0 {
			return []string{m.links[g.netdev].Name}, nil
		}
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: errNotExist}
}

func (m *Model) virtioNumberLocked(d *ccwDev) int {
	n := 0
	for _, o := range m.sortedDevs() {
		if o == d {
			return n
		}
		if o.virtio {
			n++
		}
	}
	return n
}

// Exists implements sysfs.FS.
func (m *Model) Exists(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := strings.Split(strings.TrimPrefix(name, "/"), "/")
	switch {
	case name == "/proc/cio_ignore" || name == "/proc/cio_settle":
		return m.cioIgnore
	case name == "/sys/bus/ccwgroup/drivers/qeth/group" || name == "/sys/bus/ccwgroup/drivers/qeth":
		return m.modules["qeth"] && m.modules["ccwgroup"]
	case hasPrefix(p, "sys", "module") && len(p) == 3:
		return m.modules[p[2]]
	case hasPrefix(p, "sys", "bus", "ccw", "devices") && len(p) == 5:
		d := m.devs[p[4]]
		return d != nil && d.visible
	case hasPrefix(p, "sys", "bus", "ccwgroup", "devices") && len(p) == 5:
		return m.groups[p[4]] != nil
	}
	_, err := m.readLocked(name)
	return err == nil
}

// WriteFile implements sysfs.FS with the kernel's answers.
func (m *Model) WriteFile(name string, data []byte) error {
	value := strings.TrimSuffix(string(data), "\n")
	m.mu.Lock()
	m.writes = append(m.writes, name+" "+value)
	m.mu.Unlock()
	err := m.write(name, value)
	if err != nil {
		return &fs.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}

func (m *Model) write(name, value string) error {
	p := strings.Split(strings.TrimPrefix(name, "/"), "/")
	switch {
	case name == "/proc/cio_ignore":
		return m.cioIgnoreWrite(value)
	case name == "/proc/cio_settle":
		return m.settle()
	case name == "/sys/bus/ccwgroup/drivers/qeth/group":
		return m.group(value)
	case hasPrefix(p, "sys", "bus", "ccwgroup", "devices") && len(p) == 6:
		return m.groupAttr(p[4], p[5], value)
	case hasPrefix(p, "sys", "bus", "ccw", "devices") && len(p) == 6 && p[5] == "online":
		m.mu.Lock()
		defer m.mu.Unlock()
		d := m.devs[p[4]]
		if d == nil || !d.visible {
			return errNotExist
		}
		if value != "1" && value != "0" {
			return unix.EINVAL
		}
		d.online = value == "1"
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.readLocked(name); err == nil {
		return unix.EACCES // a read-only attribute
	}
	return errNotExist
}

// cioIgnoreWrite accepts "free <range>[,<range>...]" (drivers/s390/cio/blacklist.c).
func (m *Model) cioIgnoreWrite(value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.cioIgnore {
		return errNotExist
	}
	spec, ok := strings.CutPrefix(value, "free ")
	if !ok {
		return unix.EINVAL
	}
	for _, r := range strings.Split(spec, ",") {
		from, to, isRange := strings.Cut(r, "-")
		if !isRange {
			to = from
		}
		lo, err1 := devno(from)
		hi, err2 := devno(to)
		if err1 != nil || err2 != nil || hi < lo {
			return unix.EINVAL
		}
		for _, d := range m.devs {
			if n, _ := devno(d.busID); n >= lo && n <= hi && !d.visible {
				d.freed = true
			}
		}
	}
	return nil
}

func devno(busID string) (uint64, error) {
	if len(busID) != 8 || !strings.HasPrefix(busID, "0.0.") {
		return 0, unix.EINVAL
	}
	return strconv.ParseUint(busID[4:], 16, 16)
}

// settle finishes the probing of freed devices: they become visible, and
// virtio devices come online (virtio_ccw auto-online) with their netdev if
// virtio_net is loaded.
func (m *Model) settle() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.cioIgnore {
		return errNotExist
	}
	for _, d := range m.sortedDevs() {
		if d.freed {
			d.visible, d.freed = true, false
			if d.virtio && m.modules["virtio_net"] && d.netdev == 0 {
				m.addVirtioNetdevLocked(d)
			}
		}
	}
	return nil
}

// group implements ccwgroup_create_dev + qeth_core_probe_device: every
// failure is EINVAL.
func (m *Model) group(value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.modules["qeth"] || !m.modules["ccwgroup"] {
		return errNotExist
	}
	ids := strings.Split(value, ",")
	if len(ids) != 3 {
		return unix.EINVAL
	}
	var g group
	for i, id := range ids {
		d := m.devs[id]
		if d == nil || !d.visible || d.grouped || (d.cutype != "1731/01" && d.cutype != "1731/05") {
			return unix.EINVAL
		}
		g.members[i] = d
	}
	if err := m.failures["group "+ids[0]]; err != nil {
		return err
	}
	for _, d := range g.members {
		d.grouped = true
	}
	g.id, g.layer2, g.cardType = ids[0], -1, "OSD_Express"
	if g.members[0].cutype == "1731/05" {
		g.cardType = "HiperSockets"
	}
	m.groups[ids[0]] = &g
	return nil
}

func (m *Model) groupAttr(id, attr, value string) error {
	m.mu.Lock()
	g := m.groups[id]
	if g == nil {
		m.mu.Unlock()
		return errNotExist
	}
	if err := m.failures[attr+" "+id]; err != nil {
		m.mu.Unlock()
		return err
	}
	switch attr {
	case "layer2":
		defer m.mu.Unlock()
		v, err := strconv.ParseUint(value, 16, 8)
		if err != nil || v > 1 {
			return unix.EINVAL
		}
		if g.online {
			return unix.EPERM
		}
		if int(v) == g.layer2 {
			return nil
		}
		// The discipline module is requested here; without modprobe in
		// early userspace that only works when it is already loaded.
		if (v == 1 && !m.modules["qeth_l2"]) || (v == 0 && !m.modules["qeth_l3"]) {
			return unix.EINVAL
		}
		g.layer2 = int(v)
		return nil
	case "portno":
		defer m.mu.Unlock()
		v, err := strconv.ParseUint(value, 16, 32)
		if err != nil {
			return unix.EINVAL
		}
		if g.online {
			return unix.EPERM
		}
		if int(v) >= m.Ports {
			return unix.EINVAL
		}
		g.portno = int(v)
		return nil
	case "online":
		switch value {
		case "0":
			g.online = false
			m.mu.Unlock()
			return nil
		case "1":
		default:
			m.mu.Unlock()
			return unix.EINVAL
		}
		if g.online {
			m.mu.Unlock()
			return nil
		}
		if g.layer2 == -1 {
			// qeth picks L2 for OSA, L3 for HiperSockets.
			want := "qeth_l2"
			if g.cardType == "HiperSockets" {
				want = "qeth_l3"
			}
			if !m.modules[want] {
				m.mu.Unlock()
				return unix.EINVAL
			}
			g.layer2 = map[string]int{"qeth_l2": 1, "qeth_l3": 0}[want]
		}
		m.mu.Unlock()
		time.Sleep(m.OnlineDelay)
		m.mu.Lock()
		defer m.mu.Unlock()
		m.onlineLocked(g)
		return nil
	}
	m.mu.Unlock()
	return unix.EACCES
}

// onlineLocked brings a group online; its netdev is created at the first
// online and kept afterwards (qeth_l2_main.c).
func (m *Model) onlineLocked(g *group) {
	g.online = true
	if g.netdev == 0 {
		n, _ := devno(g.id)
		g.netdev = m.newLinkLocked(net.HardwareAddr{0x00, 0x0a, 0x00, 0x00, byte(n >> 8), byte(n)})
	}
}

func hasPrefix(p []string, prefix ...string) bool {
	if len(p) < len(prefix) {
		return false
	}
	for i, s := range prefix {
		if p[i] != s {
			return false
		}
	}
	return true
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
