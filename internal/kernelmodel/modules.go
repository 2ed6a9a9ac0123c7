package kernelmodel

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// modulesDep is modules.dep of Debian's 6.1 s390x kernel for the modules
// dpm-netconf needs (depmod's format: module: dependencies, deepest last).
var modulesDep = []string{
	"kernel/drivers/s390/cio/ccwgroup.ko:",
	"kernel/drivers/s390/net/qeth.ko: kernel/drivers/s390/cio/ccwgroup.ko",
	"kernel/drivers/s390/net/qeth_l2.ko: kernel/drivers/s390/net/qeth.ko kernel/drivers/s390/cio/ccwgroup.ko kernel/net/bridge/bridge.ko kernel/net/802/stp.ko kernel/net/llc/llc.ko",
	"kernel/drivers/s390/net/qeth_l3.ko: kernel/drivers/s390/net/qeth.ko kernel/drivers/s390/cio/ccwgroup.ko",
	"kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko",
	"kernel/net/802/stp.ko: kernel/net/llc/llc.ko",
	"kernel/net/llc/llc.ko:",
	"kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko",
	"kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko",
	"kernel/net/core/failover.ko:",
}

// WriteModulesTree writes lib/modules/<release>/modules.dep (and empty
// module files) below root, as depmod would for the modules above.
func WriteModulesTree(root, release string) error {
	dir := filepath.Join(root, "lib/modules", release)
	for _, line := range modulesDep {
		mod, _, _ := strings.Cut(line, ":")
		p := filepath.Join(dir, mod)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/s390/virtio/virtio_ccw.ko\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(strings.Join(modulesDep, "\n")+"\n"), 0o644)
}

// moduleName is the kernel's name for a module file: its base name without
// ".ko", with '-' as '_'.
func moduleName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(path.Base(file), ".ko"), "-", "_")
}

// moduleDeps lists the modules a module needs loaded, from modulesDep.
func moduleDeps(name string) []string {
	for _, line := range modulesDep {
		mod, deps, _ := strings.Cut(line, ":")
		if moduleName(mod) != name {
			continue
		}
		var out []string
		for _, d := range strings.Fields(deps) {
			out = append(out, moduleName(d))
		}
		return out
	}
	return nil
}

// module is a loaded module: MODULE_STATE_COMING until its init has run,
// then MODULE_STATE_LIVE.
type module struct {
	live   bool
	liveCh chan struct{} // closed when live
}

// symbolWait is how long the loader waits for a dependency that is still
// coming (resolve_symbol_wait) before it gives up with EBUSY.
const symbolWait = 30 * time.Second

// Insmod is finit_module of a module file (kernel/module/main.c): the module
// name is the file's base name. It fails with ENOENT (unknown symbol) when a
// modules.dep dependency is not loaded, waits while one is coming, and
// answers EEXIST for a module that is live, or coming (after waiting for it
// to be live). Otherwise /sys/module/<m> appears at once reading "coming",
// the init runs after LoadDelay (registering drivers, binding devices), and
// the module is live when Insmod returns.
func (m *Model) Insmod(file string) error { return m.insmod("", file) }

func (m *Model) insmod(who, file string) error {
	m.turn(who, "finit_module "+file)
	name := moduleName(file)
	deps := moduleDeps(name)
	var deadline <-chan time.Time
	for {
		m.mu.Lock()
		if mod := m.modules[name]; mod != nil {
			// module_patient_check_exists: wait for a coming module, then
			// find it loaded. From 6.5 a load of the same file in flight
			// is joined instead, and its answer is this one's.
			ch, joined := mod.liveCh, !mod.live && m.Kernel >= Linux612
			m.mu.Unlock()
			<-ch
			if joined {
				m.turn(who, "finit_module "+file+": joined the load in flight")
				return nil
			}
			m.turn(who, "finit_module "+file+": exists")
			return unix.EEXIST
		}
		var wait chan struct{}
		for _, d := range deps {
			dm := m.modules[d]
			if dm == nil {
				m.mu.Unlock()
				return unix.ENOENT
			}
			if !dm.live {
				wait = dm.liveCh
				break
			}
		}
		if wait != nil {
			m.mu.Unlock()
			if deadline == nil {
				deadline = time.After(symbolWait)
			}
			select {
			case <-wait:
				m.turn(who, "finit_module "+file+": dependency live")
				continue
			case <-deadline:
				return unix.EBUSY
			}
		}
		mod := &module{liveCh: make(chan struct{})}
		m.modules[name] = mod
		delay := m.LoadDelay
		m.mu.Unlock()
		time.Sleep(delay)
		m.turn(kernelActor, "init "+name)
		m.initModule(name)
		m.liveModule(name, mod)
		return nil
	}
}

// LoadModules marks modules as loaded (built in, or loaded earlier), at
// once and without checking dependencies; their drivers bind devices.
func (m *Model) LoadModules(names ...string) {
	for _, n := range names {
		m.mu.Lock()
		if m.modules[n] != nil {
			m.mu.Unlock()
			continue
		}
		mod := &module{liveCh: make(chan struct{})}
		m.modules[n] = mod
		m.mu.Unlock()
		m.initModule(n)
		m.liveModule(n, mod)
	}
}

// Loaded reports whether a module is loaded and live.
func (m *Model) Loaded(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	mod := m.modules[name]
	return mod != nil && mod.live
}

func (m *Model) liveModule(name string, mod *module) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mod.live = true
	close(mod.liveCh)
	// do_init_module: "Delay uevent until module has finished its init
	// routine" (since 5.11).
	m.emitLocked("add", "/module/"+name, "module")
}

// initModule runs a module's init function, each registration a step of
// its own that other actors can see before the next one.
func (m *Model) initModule(name string) {
	switch name {
	case "ccwgroup": // init_ccwgroup: bus_register
		m.mu.Lock()
		m.ccwgroupBus = true
		m.emitLocked("add", "/bus/ccwgroup", "bus")
		m.mu.Unlock()
	case "qeth": // qeth_core_init: the CCW driver, then the ccwgroup driver
		m.mu.Lock()
		m.drivers["ccw/qeth"] = true
		m.emitLocked("add", "/bus/ccw/drivers/qeth", "drivers")
		for _, d := range m.sortedDevs() {
			if d.visible {
				m.probeLocked(d)
			}
		}
		m.mu.Unlock()
		m.mu.Lock()
		m.drivers["ccwgroup/qeth"] = true
		if m.ccwgroupBus {
			m.emitLocked("add", "/bus/ccwgroup/drivers/qeth", "drivers")
		}
		m.mu.Unlock()
	case "virtio_net": // register_virtio_driver, probing registered devices
		m.mu.Lock()
		m.drivers["virtio/virtio_net"] = true
		m.emitLocked("add", "/bus/virtio/drivers/virtio_net", "drivers")
		for _, d := range m.sortedDevs() {
			if d.vdev >= 0 && d.netdev == 0 {
				m.virtioNetProbeLocked(d)
			}
		}
		m.mu.Unlock()
	}
}

// qethGroupDriverLocked reports whether /sys/bus/ccwgroup/drivers/qeth
// exists.
func (m *Model) qethGroupDriverLocked() bool {
	return m.ccwgroupBus && m.drivers["ccwgroup/qeth"]
}

// moduleLiveLocked reports whether a module is live: a discipline can be
// used only then (symbol_get fails for a coming module).
func (m *Model) moduleLiveLocked(name string) bool {
	mod := m.modules[name]
	return mod != nil && mod.live
}
