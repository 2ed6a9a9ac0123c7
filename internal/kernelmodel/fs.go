package kernelmodel

import (
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The model's sysfs and procfs are a tree computed from its state at each
// look-up: canonical objects live under /sys/devices; /sys/bus/*/devices,
// driver directories and /sys/class/net hold relative symbolic links to
// them, as the kernel's do.

type nodeKind int

const (
	kFile nodeKind = iota + 1
	kDir
	kLink
)

type node struct {
	kind     nodeKind
	value    string          // a readable file's contents, without the newline
	readable bool            // a file has a show method
	writable bool            // a file has a store method
	list     func() []string // a directory's names
	target   string          // a link's target
}

func roFile(v string) *node                    { return &node{kind: kFile, value: v, readable: true} }
func rwFile(v string) *node                    { return &node{kind: kFile, value: v, readable: true, writable: true} }
func woFile() *node                            { return &node{kind: kFile, writable: true} }
func symlink(target string) *node              { return &node{kind: kLink, target: target} }
func dirFunc(list func() []string) *node       { return &node{kind: kDir, list: list} }
func dirOf(names ...string) *node              { return dirFunc(func() []string { return names }) }
func (n *node) names() []string                { return n.list() }
func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// nodeLocked returns the object at a canonical path (no link in it), or nil.
func (m *Model) nodeLocked(p []string) *node {
	if len(p) == 0 {
		return dirOf("proc", "sys")
	}
	switch p[0] {
	case "proc":
		return m.procNodeLocked(p[1:])
	case "sys":
		return m.sysNodeLocked(p[1:])
	}
	return nil
}

func (m *Model) procNodeLocked(p []string) *node {
	switch {
	case len(p) == 0:
		if m.cioIgnore {
			return dirOf("cio_ignore", "cio_settle")
		}
		return dirOf()
	case !m.cioIgnore || len(p) > 1:
		return nil
	case p[0] == "cio_ignore":
		return rwFile(m.cioIgnoreListLocked())
	case p[0] == "cio_settle":
		return woFile()
	}
	return nil
}

func (m *Model) sysNodeLocked(p []string) *node {
	if len(p) == 0 {
		return dirOf("bus", "class", "devices", "module")
	}
	switch p[0] {
	case "module":
		return m.moduleNodeLocked(p[1:])
	case "class":
		switch {
		case len(p) == 1:
			return dirOf("net")
		case p[1] != "net":
			return nil
		case len(p) == 2:
			return dirFunc(m.sortedLinkNamesLocked)
		case len(p) == 3:
			if l := m.linkByNameLocked(p[2]); l != nil {
				return symlink("../.." + m.netdevPathLocked(l))
			}
		}
		return nil
	case "bus":
		return m.busNodeLocked(p[1:])
	case "devices":
		return m.devicesNodeLocked(p[1:])
	}
	return nil
}

func (m *Model) moduleNodeLocked(p []string) *node {
	if len(p) == 0 {
		return dirFunc(func() []string {
			var names []string
			for n := range m.modules {
				names = append(names, n)
			}
			return sorted(names)
		})
	}
	mod := m.modules[p[0]]
	switch {
	case mod == nil:
		return nil
	case len(p) == 1:
		return dirOf("initstate")
	case len(p) == 2 && p[1] == "initstate":
		if mod.live {
			return roFile("live")
		}
		return roFile("coming")
	}
	return nil
}

func (m *Model) visibleDevLocked(id string) *ccwDev {
	if d := m.devs[id]; d != nil && d.visible {
		return d
	}
	return nil
}

func (m *Model) busNodeLocked(p []string) *node {
	if len(p) == 0 {
		if m.ccwgroupBus {
			return dirOf("ccw", "ccwgroup", "virtio")
		}
		return dirOf("ccw", "virtio")
	}
	switch p[0] {
	case "ccw":
		return m.ccwBusNodeLocked(p[1:])
	case "ccwgroup":
		if m.ccwgroupBus {
			return m.ccwgroupBusNodeLocked(p[1:])
		}
	case "virtio":
		return m.virtioBusNodeLocked(p[1:])
	}
	return nil
}

func (m *Model) ccwBusNodeLocked(p []string) *node {
	switch {
	case len(p) == 0:
		return dirOf("devices", "drivers")
	case p[0] == "devices" && len(p) == 1:
		return dirFunc(func() []string { return m.devIDsLocked("") })
	case p[0] == "devices" && len(p) == 2:
		if d := m.visibleDevLocked(p[1]); d != nil {
			return symlink("../../.." + d.devPath())
		}
	case p[0] == "drivers" && len(p) == 1:
		if m.drivers["ccw/qeth"] {
			return dirOf("qeth", "virtio_ccw")
		}
		return dirOf("virtio_ccw")
	case p[0] == "drivers" && (p[1] == "virtio_ccw" || p[1] == "qeth" && m.drivers["ccw/qeth"]):
		drv := p[1]
		if len(p) == 2 {
			return dirFunc(func() []string { return m.devIDsLocked(drv) })
		}
		if d := m.visibleDevLocked(p[2]); d != nil && len(p) == 3 && d.driver == drv {
			return symlink("../../../.." + d.devPath())
		}
	}
	return nil
}

// devIDsLocked lists visible devices, those bound to drv when it is given.
func (m *Model) devIDsLocked(drv string) []string {
	var ids []string
	for _, d := range m.sortedDevs() {
		if d.visible && (drv == "" || d.driver == drv) {
			ids = append(ids, d.busID)
		}
	}
	return ids
}

func (m *Model) groupIDsLocked() []string {
	var ids []string
	for _, g := range m.sortedGroups() {
		ids = append(ids, g.id)
	}
	return ids
}

func (m *Model) ccwgroupBusNodeLocked(p []string) *node {
	switch {
	case len(p) == 0:
		return dirOf("devices", "drivers")
	case p[0] == "devices" && len(p) == 1:
		return dirFunc(m.groupIDsLocked)
	case p[0] == "devices" && len(p) == 2:
		if g := m.groups[p[1]]; g != nil {
			return symlink("../../.." + g.devPath())
		}
	case p[0] == "drivers" && len(p) == 1:
		if m.qethGroupDriverLocked() {
			return dirOf("qeth")
		}
		return dirOf()
	case p[0] == "drivers" && p[1] == "qeth" && m.qethGroupDriverLocked():
		switch {
		case len(p) == 2:
			return dirFunc(func() []string { return append([]string{"group"}, m.groupIDsLocked()...) })
		case len(p) == 3 && p[2] == "group":
			return woFile()
		case len(p) == 3 && m.groups[p[2]] != nil:
			return symlink("../../../.." + m.groups[p[2]].devPath())
		}
	}
	return nil
}

func (m *Model) virtioDevsLocked() []*ccwDev {
	var out []*ccwDev
	for _, d := range m.sortedDevs() {
		if d.visible && d.vdev >= 0 {
			out = append(out, d)
		}
	}
	return out
}

func (m *Model) virtioBusNodeLocked(p []string) *node {
	byName := func(name string) *ccwDev {
		for _, d := range m.virtioDevsLocked() {
			if d.virtioName() == name {
				return d
			}
		}
		return nil
	}
	switch {
	case len(p) == 0:
		return dirOf("devices", "drivers")
	case p[0] == "devices" && len(p) == 1:
		return dirFunc(func() []string {
			var names []string
			for _, d := range m.virtioDevsLocked() {
				names = append(names, d.virtioName())
			}
			return sorted(names)
		})
	case p[0] == "devices" && len(p) == 2:
		if d := byName(p[1]); d != nil {
			return symlink("../../.." + d.devPath() + "/" + d.virtioName())
		}
	case p[0] == "drivers" && len(p) == 1:
		if m.drivers["virtio/virtio_net"] {
			return dirOf("virtio_net")
		}
		return dirOf()
	case p[0] == "drivers" && p[1] == "virtio_net" && m.drivers["virtio/virtio_net"]:
		if len(p) == 2 {
			return dirFunc(func() []string {
				var names []string
				for _, d := range m.virtioDevsLocked() {
					if d.netdev != 0 {
						names = append(names, d.virtioName())
					}
				}
				return sorted(names)
			})
		}
		if d := byName(p[2]); d != nil && len(p) == 3 && d.netdev != 0 {
			return symlink("../../../.." + d.devPath() + "/" + d.virtioName())
		}
	}
	return nil
}

func (m *Model) devicesNodeLocked(p []string) *node {
	if len(p) == 0 {
		if m.drivers["ccw/qeth"] || len(m.groups) > 0 {
			return dirOf("css0", "qeth")
		}
		return dirOf("css0")
	}
	switch p[0] {
	case "css0":
		if len(p) == 1 {
			return dirFunc(func() []string {
				var names []string
				for _, d := range m.sortedDevs() {
					if d.visible {
						names = append(names, d.schID())
					}
				}
				return sorted(names)
			})
		}
		var d *ccwDev
		for _, o := range m.devs {
			if o.visible && o.schID() == p[1] {
				d = o
			}
		}
		switch {
		case d == nil:
			return nil
		case len(p) == 2:
			return dirOf("chpids", d.busID)
		case len(p) == 3 && p[2] == "chpids":
			return roFile(strings.ToLower(d.chpid) + " 00 00 00 00 00 00 00")
		case p[2] == d.busID:
			return m.ccwNodeLocked(d, p[3:])
		}
	case "qeth":
		if len(p) == 1 {
			return dirFunc(m.groupIDsLocked)
		}
		if g := m.groups[p[1]]; g != nil {
			return m.groupNodeLocked(g, p[2:])
		}
	}
	return nil
}

func (m *Model) ccwNodeLocked(d *ccwDev, p []string) *node {
	if len(p) == 0 {
		return dirFunc(func() []string {
			names := []string{"cutype", "devtype", "online"}
			if d.driver != "" {
				names = append(names, "driver")
			}
			if d.group != nil && d.group.linked {
				names = append(names, "group_device")
			}
			if d.vdev >= 0 {
				names = append(names, d.virtioName())
			}
			return sorted(names)
		})
	}
	if len(p) == 1 {
		switch p[0] {
		case "cutype":
			return roFile(d.cutype)
		case "devtype":
			return roFile(devtype(d.cutype))
		case "online":
			return rwFile(boolStr(d.online))
		case "driver":
			if d.driver != "" {
				return symlink("../../../../bus/ccw/drivers/" + d.driver)
			}
			return nil
		case "group_device":
			if d.group != nil && d.group.linked {
				return symlink("../../../qeth/" + d.group.id)
			}
			return nil
		}
	}
	if d.vdev < 0 || p[0] != d.virtioName() {
		return nil
	}
	// The virtio device.
	switch {
	case len(p) == 1:
		if d.netdev != 0 {
			return dirOf("driver", "net")
		}
		return dirOf()
	case d.netdev == 0:
		return nil
	case len(p) == 2 && p[1] == "driver":
		return symlink("../../../../../bus/virtio/drivers/virtio_net")
	case p[1] == "net":
		return m.netDirNodeLocked(d.netdev, p[2:])
	}
	return nil
}

// netDirNodeLocked is a device's net directory and the interface in it.
func (m *Model) netDirNodeLocked(index int, p []string) *node {
	l := m.links[index]
	switch {
	case l == nil:
		return nil
	case len(p) == 0:
		return dirOf(l.name)
	case p[0] != l.name:
		return nil
	case len(p) == 1:
		return dirOf("address", "ifindex")
	case len(p) == 2 && p[1] == "address":
		return roFile(l.mac.String())
	case len(p) == 2 && p[1] == "ifindex":
		return roFile(strconv.Itoa(l.index))
	}
	return nil
}

func (m *Model) groupNodeLocked(g *group, p []string) *node {
	if len(p) == 0 {
		return dirFunc(func() []string {
			names := []string{"card_type", "chpid", "driver", "if_name", "layer2", "online", "portno", "state", "ungroup"}
			if g.linked {
				names = append(names, "cdev0", "cdev1", "cdev2")
			}
			if g.netdev != 0 {
				names = append(names, "net")
			}
			return sorted(names)
		})
	}
	if p[0] == "net" && g.netdev != 0 {
		return m.netDirNodeLocked(g.netdev, p[1:])
	}
	if len(p) != 1 {
		return nil
	}
	switch p[0] {
	case "online":
		return rwFile(boolStr(g.online))
	case "layer2":
		return rwFile(strconv.Itoa(g.layer2))
	case "portno":
		return rwFile(strconv.Itoa(g.portno))
	case "ungroup":
		return woFile()
	case "state":
		// qeth_dev_state_show (6.x): card states are DOWN and SOFTSETUP.
		if g.up {
			return roFile("SOFTSETUP")
		}
		return roFile("DOWN")
	case "card_type":
		return roFile(g.cardType)
	case "chpid":
		return roFile(strings.ToUpper(g.members[0].chpid))
	case "if_name":
		if l := m.links[g.netdev]; l != nil {
			return roFile(l.name)
		}
		return roFile("eth%d") // alloc_netdev's template until registration
	case "driver":
		return symlink("../../../bus/ccwgroup/drivers/qeth")
	case "cdev0", "cdev1", "cdev2":
		if g.linked {
			d := g.members[p[0][4]-'0']
			return symlink("../.." + strings.TrimPrefix(d.devPath(), "/devices"))
		}
	}
	return nil
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func splitPath(name string) []string {
	var out []string
	for _, c := range strings.Split(name, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// resolveLocked walks a path as the VFS does: symbolic links in the middle
// are followed (and the last one when followLast), ".." is physical. It
// returns the canonical path and the object there.
func (m *Model) resolveLocked(name string, followLast bool) ([]string, *node, error) {
	comps := splitPath(name)
	var cur []string
	hops := 0
	for i := 0; i < len(comps); i++ {
		c := comps[i]
		if c == ".." {
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
			}
			continue
		}
		next := append(append([]string(nil), cur...), c)
		n := m.nodeLocked(next)
		if n == nil {
			return nil, nil, unix.ENOENT
		}
		last := i == len(comps)-1
		if n.kind == kLink && (!last || followLast) {
			if hops++; hops > 40 {
				return nil, nil, unix.ELOOP
			}
			rest := comps[i+1:]
			comps = append(append(append([]string(nil), cur...), splitPath(n.target)...), rest...)
			cur, i = nil, -1
			continue
		}
		if !last && n.kind != kDir {
			return nil, nil, unix.ENOTDIR
		}
		cur = next
		if last {
			return cur, n, nil
		}
	}
	return cur, m.nodeLocked(cur), nil
}

// ReadFile implements sysfs.FS.
func (m *Model) ReadFile(name string) ([]byte, error) { return m.readFile("", name) }

func (m *Model) readFile(who, name string) ([]byte, error) {
	m.turn(who, "read "+name)
	if h := m.BeforeRead; h != nil {
		h(name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, n, err := m.resolveLocked(name, true)
	switch {
	case err != nil:
	case n.kind == kDir:
		err = unix.EISDIR
	case !n.readable:
		err = unix.EACCES // kernfs_fop_open: no show method
	default:
		return []byte(n.value + "\n"), nil
	}
	return nil, pathErr("open", name, err)
}

// ReadDir implements sysfs.FS: the names in a directory, sorted.
func (m *Model) ReadDir(name string) ([]string, error) { return m.readDir("", name) }

func (m *Model) readDir(who, name string) ([]string, error) {
	m.turn(who, "readdir "+name)
	m.mu.Lock()
	defer m.mu.Unlock()
	_, n, err := m.resolveLocked(name, true)
	if err == nil && n.kind != kDir {
		err = unix.ENOTDIR
	}
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return sorted(n.names()), nil
}

// Exists implements sysfs.FS (stat: links are followed).
func (m *Model) Exists(name string) bool { return m.exists("", name) }

func (m *Model) exists(who, name string) bool {
	m.turn(who, "stat "+name)
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _, err := m.resolveLocked(name, true)
	return err == nil
}

// ReadLink implements sysfs.FS: the target of a symbolic link as the kernel
// wrote it (relative). A missing link is ENOENT, another object EINVAL.
func (m *Model) ReadLink(name string) (string, error) { return m.readLink("", name) }

func (m *Model) readLink(who, name string) (string, error) {
	m.turn(who, "readlink "+name)
	m.mu.Lock()
	defer m.mu.Unlock()
	_, n, err := m.resolveLocked(name, false)
	if err == nil && n.kind != kLink {
		err = unix.EINVAL
	}
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	return n.target, nil
}

// WriteFile implements sysfs.FS with the kernel's answers. BeforeWrite runs
// first, without the lock; every write is recorded (Writes).
func (m *Model) WriteFile(name string, data []byte) error { return m.writeFile("", name, data) }

func (m *Model) writeFile(who, name string, data []byte) error {
	value := strings.TrimSuffix(string(data), "\n")
	if h := m.BeforeWrite; h != nil {
		h(name, value)
	}
	m.turn(who, "write "+name+" "+value)
	m.mu.Lock()
	m.writes = append(m.writes, name+" "+value)
	p, n, err := m.resolveLocked(name, true)
	m.mu.Unlock()
	if err == nil {
		err = m.write(p, n, value)
	}
	if err != nil {
		return pathErr("write", name, err)
	}
	return nil
}

func (m *Model) write(p []string, n *node, value string) error {
	switch {
	case n.kind == kDir:
		return unix.EISDIR
	case !n.writable:
		return unix.EACCES // kernfs_fop_open: no store method
	case is(p, "proc", "cio_ignore"):
		return m.cioIgnoreWrite(value)
	case is(p, "proc", "cio_settle"):
		return m.settle()
	case is(p, "sys", "bus", "ccwgroup", "drivers", "qeth", "group"):
		return m.group(value)
	case len(p) == 5 && hasPrefix(p, "sys", "devices", "qeth"):
		return m.groupAttr(p[3], p[4], value)
	case len(p) == 6 && hasPrefix(p, "sys", "devices", "css0") && p[5] == "online":
		return m.ccwOnline(p[4], value)
	}
	return unix.EACCES
}
