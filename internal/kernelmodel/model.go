// Package kernelmodel is an in-memory model of the parts of a Linux 6.x s390
// kernel that dpm-netconf talks to, hostile parts included, so the apply
// logic can be tested and benchmarked on a host without an s390 machine. It
// implements sysfs.FS and link.Netlink, and answers the way the kernel does
// (../shared/notes/kernel-abi.md; each rule names its kernel source in
// model_test.go).
//
// Modelled:
//   - sysfs as a tree with the kernel's symbolic links: /sys/bus/*/devices
//     entries, a CCW device's driver and group_device links, a group's
//     cdev0..2 and driver links, /sys/class/net; ".." after a link is
//     resolved physically. Directories read as EISDIR, read-only attributes
//     refuse writes with EACCES, write-only ones refuse reads with EACCES.
//   - cio_ignore and cio_settle (drivers/s390/cio/blacklist.c, css.c): freed
//     devices appear at the next settle, each below a subchannel of its own.
//   - Modules (kernel/module/main.c): finit_module with modules.dep
//     dependencies (ENOENT when one is missing; a wait while one is coming,
//     EBUSY after 30 s),
//     EEXIST for a live or coming module, /sys/module/<m>/initstate reading
//     "coming" while LoadDelay passes, driver registration and device binding
//     in the module's init, and the module's uevent only once it is live.
//   - CCW devices (drivers/s390/cio/device.c): online_store with its onoff
//     guard (EAGAIN), EINVAL without a driver that can set devices online or
//     when already in the wanted state; qeth's CCW driver binds OSA and
//     HiperSockets devices, built-in virtio_ccw binds virtio devices and
//     sets them online by itself, asynchronously, after AutoOnlineDelay
//     (drivers/s390/virtio/virtio_ccw.c).
//   - Grouping, ungrouping and group online (drivers/s390/cio/ccwgroup.c):
//     the group file exists once qeth's ccwgroup driver is registered; every
//     refusal is EINVAL; the group directory appears before its links.
//     Online and offline writes hold the device lock, so a second writer
//     waits and then gets the answer for the new state (EINVAL for online=1
//     on an online group, and for online=0 on an offline one); meanwhile the
//     onoff guard answers EAGAIN to ungroup.
//   - qeth (drivers/s390/net/qeth_core_sys.c, qeth_core_main.c,
//     qeth_l2_main.c): layer2 and portno (EPERM unless DOWN; a writer waits
//     for an online in flight, which holds the card's mutexes), the
//     discipline chosen at online when none was, discipline modules that
//     must be live, state DOWN/SOFTSETUP (6.x has no HARDSETUP), the
//     "change" uevent sent before online reads 1, the netdev created at the
//     first online and kept, member CCW devices online with the group.
//   - Netdevs: ifindex never reused, names "eth<lowest free>" (so names race
//     with udev's renames), MAC rules of eth_prepare_mac_addr_change and the
//     OSA adapter (qeth_l2_setdelmac_makerc), for 6.x or, with OldMACErrnos,
//     5.6 and older.
//   - /dev/kmsg (kernel/printk/printk.c): per-open rate limit, 10 records
//     per 5 s, and the "suppressed" record on close.
//   - Kernel uevents to subscribers (Subscribe), never blocking the model.
//
// Not modelled: hot-unplug and CHPID loss (and the ungrouping they cause),
// qeth recovery, IFF_UP and the "UP (LAN ...)" state, enforced layers
// (z/VM, OSM, OSX), layer-3 MAC rules, device recognition (boxed devices,
// online "force"), virtio_ccw's no_auto parameter, cio_ignore "add" and
// "purge", udev itself, network namespaces, and any attribute not listed
// above.
package kernelmodel

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/uevent/ueventtest"
)

// Kernel names the kernel line whose answers the model gives where the two
// Debian kernels the VM tests boot differ. Everything else of the contract
// (the qeth, ccwgroup and cio_ignore attributes, their errnos and locks)
// reads the same in both sources.
type Kernel int

const (
	// Linux61 is Debian 12's kernel (6.1), the zero value.
	Linux61 Kernel = iota
	// Linux612 is Debian 13's kernel (6.12). From 6.5 on:
	//   - finit_module of a file whose load is in flight waits for that
	//     load and returns its answer (0), not EEXIST
	//     (kernel/module/main.c, idempotent_init_module: keyed by the
	//     file's inode; the model takes one module's files as one file);
	//   - RTM_SETLINK with the address the netdev has returns 0 without
	//     asking the driver (net/core/dev.c, dev_set_mac_address), so
	//     neither qeth's SETVMAC nor a refusal of the device is met.
	// Its modules are xz-compressed (.ko.xz), which the kernel
	// decompresses when finit_module is given MODULE_INIT_COMPRESSED_FILE
	// (ENOEXEC without it): that is package kmod's to choose (its tests and
	// the VM tests on 6.12); the model takes a module file as loadable.
	// Its uevents may reach a listener out of SEQNUM order
	// (lib/kobject_uevent.c takes the number outside the mutex), which
	// nothing of dpm-netconf reads.
	Linux612
)

func (k Kernel) String() string {
	if k == Linux612 {
		return "6.12"
	}
	return "6.1"
}

// Model is one simulated kernel. The zero value is not usable; call New.
// Set the exported fields before the model is shared between goroutines.
type Model struct {
	// OnlineDelay is how long a qeth group online write blocks (real OSA:
	// up to seconds).
	OnlineDelay time.Duration
	// LoadDelay is how long a module loaded with Insmod stays "coming"
	// before its init function runs.
	LoadDelay time.Duration
	// AutoOnlineDelay is how long virtio_ccw's asynchronous auto-online of
	// a freed virtio device takes; meanwhile the device reads online=0 and
	// an online write gets EAGAIN.
	AutoOnlineDelay time.Duration
	// Ports is the number of ports each OSA adapter reports (default 2).
	Ports int
	// OldMACErrnos makes the adapter's MAC refusals those of kernels up to
	// 5.6: EEXIST for a duplicate, EPERM for an address not authorised.
	OldMACErrnos bool
	// Kernel is the kernel line the model answers as where Debian 12's
	// and Debian 13's kernels differ (see Kernel).
	Kernel Kernel
	// DevkmsgOn is printk.devkmsg=on: /dev/kmsg writes are not rate-limited.
	DevkmsgOn bool
	// BeforeSetMAC, when set, runs before each SetHardwareAddr (to inject a
	// rename race).
	BeforeSetMAC func()
	// Sched, when set, orders every goroutine's entry into the model and
	// the model's own asynchronous steps (see Scheduler).
	Sched *Scheduler
	// BeforeWrite, when set, runs at the start of every WriteFile, without
	// the model's lock: another actor can act between a read and a write.
	BeforeWrite func(file, value string)
	// BeforeRead, when set, runs at the start of every ReadFile, without
	// the model's lock (to hold a reader up, as a starved CPU would).
	BeforeRead func(file string)

	mu   sync.Mutex
	devs map[string]*ccwDev
	// ignoredAbsent: device numbers on the cio_ignore list that no device
	// has (absent, or not attached yet).
	ignoredAbsent map[string]bool
	groups        map[string]*group
	links         map[int]*netdev
	modules       map[string]*module
	drivers       map[string]bool // "ccw/qeth", "ccwgroup/qeth", "virtio/virtio_net"
	ccwgroupBus   bool
	cioIgnore     bool
	failures      map[string]error
	nextIndex     int
	nextSch       int
	virtioIdx     map[int]bool
	writes        []string
	subs          []*ueventtest.Chan
	seqnum        uint64
	klog          []string
}

type ccwDev struct {
	busID      string
	cutype     string
	chpid      string
	sch        int
	visible    bool // absent from sysfs while cio_ignored
	freed      bool // freed from cio_ignore, visible after the next settle
	online     bool
	autoOnline bool   // virtio_ccw_auto_online scheduled: the device FSM is busy
	autoSeq    uint64 // which scheduling autoOnline belongs to
	driver     string // bound CCW driver: "", "qeth", "virtio_ccw"
	group      *group // the group device it belongs to (drvdata)
	virtio     bool
	mac        net.HardwareAddr
	vdev       int // virtio device index, -1 while none is registered
	netdev     int // ifindex, 0 when none
}

type group struct {
	id       string
	members  [3]*ccwDev
	layer2   int
	portno   int
	online   bool // gdev->state == CCWGROUP_ONLINE
	up       bool // card->state == CARD_STATE_SOFTSETUP
	onoff    bool // ccwgroup's onoff guard
	linked   bool // cdev0..2 and group_device links created
	devLock  chan struct{}
	cardBusy chan struct{}
	netdev   int
	cardType string
}

// New returns a model with no devices, cio_ignore present but empty, and
// no modules loaded.
func New() *Model {
	return &Model{
		Ports: 2,
		devs:  map[string]*ccwDev{}, ignoredAbsent: map[string]bool{},
		groups:    map[string]*group{},
		links:     map[int]*netdev{},
		modules:   map[string]*module{},
		drivers:   map[string]bool{},
		failures:  map[string]error{},
		virtioIdx: map[int]bool{},
		cioIgnore: true,
		nextIndex: 2, // 1 is lo
	}
}

// AddCCW adds a CCW device with a control-unit type on a CHPID, present at
// boot (bound at once when its driver is registered).
func (m *Model) AddCCW(busID, cutype, chpid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &ccwDev{busID: busID, cutype: cutype, chpid: chpid, sch: m.nextSch, visible: true, vdev: -1}
	m.nextSch++
	m.devs[busID] = d
	m.announceDevLocked(d)
}

// RemoveDevice takes CCW devices away (a CHPID varied off, a device
// detached from the partition): each vanishes from sysfs with a "remove"
// event. A group one of them belonged to is ungrouped first, online or not
// (ccwgroup.c: the notifier on a member's driver unbind unregisters the
// group; qeth's remove sets it offline and unregisters the netdev). AddCCW
// and AddOSA bring devices back, offline and ungrouped.
func (m *Model) RemoveDevice(busIDs ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range busIDs {
		d := m.devs[id]
		if d == nil {
			continue
		}
		if g := d.group; g != nil && m.groups[g.id] == g {
			g.online, g.onoff = false, false
			if g.netdev != 0 {
				m.removeLinkLocked(g.netdev)
				g.netdev = 0
			}
			for _, member := range g.members {
				member.group, member.online = nil, false
			}
			g.linked = false
			delete(m.groups, g.id)
			m.emitLocked("unbind", g.devPath(), "ccwgroup", "DRIVER", "qeth")
			m.emitLocked("remove", g.devPath(), "ccwgroup")
		}
		if d.netdev != 0 {
			m.removeLinkLocked(d.netdev)
		}
		delete(m.devs, id)
		if d.visible {
			m.emitLocked("remove", d.devPath(), "ccw")
		}
	}
}

// AddOSA adds an OSA-Express (OSD) triplet read, read+1, read+2 on a CHPID.
func (m *Model) AddOSA(readBusID, chpid string) {
	for i := 0; i < 3; i++ {
		m.AddCCW(offset(readBusID, i), "1731/01", chpid)
	}
}

// AddVirtioNet adds a virtio-net-ccw device with the MAC QEMU gave it. It
// is online at once, as virtio_ccw's auto-online at boot leaves it.
func (m *Model) AddVirtioNet(busID, mac string) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &ccwDev{busID: busID, cutype: "3832/01", chpid: "00", sch: m.nextSch, visible: true, virtio: true, mac: hw, vdev: -1}
	m.nextSch++
	m.devs[busID] = d
	m.announceDevLocked(d)
	m.virtioOnlineLocked(d)
}

// Ignore puts devices on the cio_ignore list: they vanish from sysfs. The
// list is of device numbers, whether a device has them or not
// (blacklist.c keeps a bitmap of all of them).
func (m *Model) Ignore(busIDs ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range busIDs {
		if m.devs[id] == nil {
			m.ignoredAbsent[id] = true
		}
		if d := m.devs[id]; d != nil {
			d.visible, d.freed, d.driver, d.autoOnline = false, false, "", false
			if d.online && d.virtio {
				m.virtioOfflineLocked(d)
			}
			d.online = false
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

// Writes lists every write the model accepted or refused, "file value", in
// order: tests use it to check ordering and that nothing was done.
func (m *Model) Writes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.writes...)
}

// SetGroupState makes a grouped qeth device, online or not, as a previous
// boot or another tool would leave it.
func (m *Model) SetGroupState(readBusID string, layer2, port int, online bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := &group{id: readBusID, layer2: layer2, portno: port, cardType: "OSD_Express", linked: true}
	for i := 0; i < 3; i++ {
		d := m.devs[offset(readBusID, i)]
		d.group, d.driver = g, "qeth"
		g.members[i] = d
	}
	if g.members[0].cutype == "1731/05" {
		g.cardType = "HiperSockets"
	}
	m.groups[readBusID] = g
	if online {
		m.cardUpLocked(g)
		g.online = true
	}
}

func (m *Model) sortedDevs() []*ccwDev  { return sortedValues(m.devs) }
func (m *Model) sortedGroups() []*group { return sortedValues(m.groups) }

// sortedValues orders a map's values by key, so the model's answers do not
// depend on map order.
func sortedValues[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

func (d *ccwDev) schID() string   { return fmt.Sprintf("0.0.%04x", d.sch) }
func (d *ccwDev) devPath() string { return "/devices/css0/" + d.schID() + "/" + d.busID }
func (d *ccwDev) virtioName() string {
	return "virtio" + strconv.Itoa(d.vdev)
}
func (g *group) devPath() string { return "/devices/qeth/" + g.id }

// qethCU reports whether qeth's CCW driver matches a control-unit type
// (qeth_ids in qeth_core_main.c: OSD and IQD are what DPM defines).
func qethCU(cutype string) bool { return cutype == "1731/01" || cutype == "1731/05" }

func devtype(cutype string) string {
	switch cutype {
	case "1731/01":
		return "1732/01"
	case "1731/05":
		return "1732/05"
	}
	return "n/a"
}

func offset(busID string, n int) string {
	v, err := strconv.ParseUint(busID[4:], 16, 16)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%s%04x", busID[:4], v+uint64(n))
}

func devno(busID string) (uint64, error) {
	if len(busID) != 8 || !strings.HasPrefix(busID, "0.0.") {
		return 0, unix.EINVAL
	}
	return strconv.ParseUint(busID[4:], 16, 16)
}

// kstrtoul parses as the kernel's kstrtoul does: an optional '+', a radix
// prefix ("0x" for base 16; "0x" or "0" for base 0), digits and nothing
// else (the one trailing newline it allows is already gone). Overflow is
// ERANGE, anything else malformed EINVAL.
func kstrtoul(s string, base int) (uint64, error) {
	s = strings.TrimPrefix(s, "+")
	hex := len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')
	switch {
	case base == 16 && hex:
		s = s[2:]
	case base == 0 && hex:
		s, base = s[2:], 16
	case base == 0 && len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	case base == 0:
		base = 10
	}
	if s == "" || strings.ContainsAny(s, "+-_") {
		return 0, unix.EINVAL
	}
	v, err := strconv.ParseUint(s, base, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, unix.ERANGE
	}
	if err != nil {
		return 0, unix.EINVAL
	}
	return v, nil
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

func is(p []string, want ...string) bool { return len(p) == len(want) && hasPrefix(p, want...) }

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
