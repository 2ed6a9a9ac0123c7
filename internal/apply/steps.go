package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/errno"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
)

// The steps of each kind of NIC, in order. findStep (free the read device
// and learn the kind) comes first in apply; identifyStep in setmac.
// The qeth order is chzdev's: group, layer2, other offline-only attributes
// (portno), online (s390-tools zdev/src/qeth.c).
var (
	qethSteps    = []step{freeTripletStep, qethModulesStep, groupStep, layer2Step, portnoStep, qethOnlineStep, interfaceStep, macStep}
	virtioSteps  = []step{virtioModulesStep, virtioOnlineStep, interfaceStep, macStep}
	setMACSteps  = []step{interfaceStep, macStep}
	notAnOSA     = "not an OSA (" + ccw.CUTypeOSA + "), HiperSockets (" + ccw.CUTypeIQD + ") or virtio-net (" + ccw.CUTypeVirtio + ") device"
	errNoDriver  = errors.New("driver not registered")
	freeDeadline = "device %s not found by the deadline (not in /sys/bus/ccw/devices%s): is the devno right and the device attached to this partition?"
	freeSettled  = "device %s not found (not in /sys/bus/ccw/devices%s; the channel subsystem has sensed every device): is the devno right and the device attached to this partition?"
	// absentGrace is how long a device may still be missing after a settle
	// of ours before that is final: the settle returns once the kernel has
	// registered what it found, so this only covers a slow CPU.
	absentGrace = 2 * time.Second
)

// settledAbsent: the NIC's devices were settled for absentGrace ago and
// are still absent: waiting longer will not bring them (a device attached
// later is udev's and dpm-netconf@.service's to configure).
func (w *worker) settledAbsent() bool {
	return !w.settledAt.IsZero() && time.Since(w.settledAt) >= absentGrace
}

// kindOf classifies a NIC by what sysfs shows now ("" while absent).
func kindOf(sys ccw.Sys, busID string) (kind Kind, cutype string) {
	if sys.Grouped(busID) {
		return KindQeth, ""
	}
	cutype, err := sys.CUType(busID)
	switch {
	case err != nil:
		return "", ""
	case ccw.IsQeth(cutype):
		return KindQeth, cutype
	case cutype == ccw.CUTypeVirtio:
		return KindVirtio, cutype
	}
	return KindOther, cutype
}

// ignored: whether cio_ignore lists any of ids (or cannot be read): only
// then does freeing them (and the settle after it) help an absent device.
func (w *worker) ignored(ids ...string) bool {
	l, err := w.sys.IgnoreList()
	return err != nil || slices.ContainsFunc(ids, l.Contains)
}

// findStep frees the read device from cio_ignore when it is not there, and
// learns the NIC's kind.
var findStep = step{
	name: "free",
	observe: func(w *worker) observation {
		kind, cutype := kindOf(w.sys, w.busID())
		switch kind {
		case "":
			if w.freed || !w.sys.HasCIOIgnore() || !w.ignored(w.busID()) {
				if w.settledAbsent() {
					w.set(func() { w.absentFinal = true })
					return observation{conflict: fmt.Errorf(freeSettled, w.busID(), w.absentWhy())}
				}
				return observation{busy: true, note: "device absent"}
			}
			return observation{note: "device absent"}
		case KindOther:
			w.setKind(KindOther)
			return observation{conflict: fmt.Errorf("device %s has CU type %s: %s", w.busID(), cutype, notAnOSA)}
		}
		w.setKind(kind)
		if w.freed {
			w.did("free", "freed from cio_ignore")
		}
		return observation{done: true}
	},
	act: func(ctx context.Context, w *worker) error {
		if err := w.sys.Unignore(w.busID()); err != nil {
			return err
		}
		w.freed = true
		return w.settle(ctx)
	},
	expired: func(w *worker, _ observation) error {
		return fmt.Errorf(freeDeadline, w.busID(), w.absentWhy())
	},
}

// absentWhy completes the message for an absent read device.
func (w *worker) absentWhy() string {
	switch {
	case w.freed:
		return ", even after freeing it from cio_ignore"
	case w.sys.HasCIOIgnore() && !w.ignored(w.busID()):
		return "; cio_ignore does not list it"
	}
	return ""
}

// identifyStep is setmac's first step: the device must be there already
// (udev saw its interface) and, for qeth, grouped.
var identifyStep = step{
	name: "find",
	observe: func(w *worker) observation {
		kind, cutype := kindOf(w.sys, w.busID())
		switch {
		case kind == "":
			return observation{busy: true, note: "device absent"}
		case kind == KindOther:
			w.setKind(kind)
			return observation{conflict: fmt.Errorf("device %s has CU type %s: not a qeth or virtio-net device", w.busID(), cutype)}
		case kind == KindQeth && !w.sys.Grouped(w.busID()):
			w.setKind(kind)
			return observation{conflict: fmt.Errorf("qeth device %s is not grouped: run dpm-netconf apply first", w.busID())}
		}
		w.setKind(kind)
		return observation{done: true}
	},
	expired: func(w *worker, _ observation) error {
		return fmt.Errorf("device %s not found by the deadline", w.busID())
	},
}

// modulesStep loads a kind's modules unless its driver is registered.
// "Registered" is the driver's directory under /sys/bus/*/drivers (and a
// live discipline module), not /sys/module: that appears when loading
// starts, before the module's init has run.
func modulesStep(names []string, ready func(*worker) (bool, string)) step {
	return step{
		name: "modules",
		observe: func(w *worker) observation {
			ok, note := ready(w)
			switch {
			case ok:
				return observation{done: true}
			case w.loaded:
				// Loaded (or found loading by someone else): the init is
				// still registering the driver.
				return observation{busy: true, note: note}
			}
			for _, n := range names {
				if w.sys.ModuleState(n) == "coming" {
					return observation{busy: true, note: "module " + n + " is being loaded by someone else"}
				}
			}
			return observation{note: note}
		},
		act: func(_ context.Context, w *worker) error {
			loaded, err := w.modules.Load(names...)
			if len(loaded) > 0 {
				w.did("modules", "loaded modules %s", strings.Join(loaded, ", "))
			}
			// A failed load is final (the loader says why); a load that
			// worked leaves the driver's registration to wait for.
			w.loaded = err == nil
			return err
		},
		expired: func(w *worker, o observation) error {
			return fmt.Errorf("%s by the deadline: %s", errNoDriver, o.note)
		},
	}
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// netdev re-reads the NIC's interface (name and index) from sysfs. A
// virtio device's net directory (below its virtio<N> child) is looked up
// once and read again directly after that; if it fails, it is looked up
// again.
func (w *worker) netdev() (ccw.Netdev, error) {
	if w.getKind() == KindQeth {
		return w.sys.InterfaceIn(ccw.QethNetDir(w.busID()))
	}
	if w.netDir != "" {
		if nd, err := w.sys.InterfaceIn(w.netDir); err == nil {
			return nd, nil
		}
	}
	dir, err := w.sys.VirtioNetDir(w.busID())
	if err != nil {
		w.netDir = ""
		return ccw.Netdev{}, err
	}
	w.netDir = dir
	return w.sys.InterfaceIn(dir)
}

var interfaceStep = step{
	name: "interface",
	observe: func(w *worker) observation {
		nd, err := w.netdev()
		if err != nil {
			return observation{busy: true, note: err.Error()}
		}
		w.set(func() { w.iface = nd.Name })
		return observation{done: true}
	},
	expired: func(w *worker, o observation) error {
		return fmt.Errorf("no network interface for %s by the deadline: %s", w.busID(), o.note)
	},
}

// macStep sets the listed MAC by ifindex over rtnetlink. sysfs names the
// interface; netlink must agree on the name at that index (a udev rename
// in flight makes them differ for a moment; for longer, --root is not this
// network namespace's /sys).
var macStep = step{
	name: "mac",
	observe: func(w *worker) observation {
		if w.nic.MAC == nil {
			return observation{done: true}
		}
		nd, err := w.netdev()
		if err != nil {
			return observation{busy: true, note: err.Error()}
		}
		w.set(func() { w.iface = nd.Name })
		l, err := w.links.LinkByIndex(nd.Index)
		if err != nil && !errors.Is(err, unix.ENODEV) {
			return observation{conflict: fmt.Errorf("netlink get link %d (%s): %s", nd.Index, nd.Name, errno.Words(err))}
		}
		if err != nil || l.Name != nd.Name {
			got := "no link"
			if err == nil {
				got = "link " + l.Name
			}
			if w.macSince.IsZero() {
				w.macSince = time.Now()
			} else if time.Since(w.macSince) > w.cfg.RenameSettle {
				return observation{conflict: fmt.Errorf("%w: sysfs has %s at index %d, netlink has %s there (is --root this network namespace's /sys?)",
					link.ErrNamespaceMismatch, nd.Name, nd.Index, got)}
			}
			return observation{busy: true, note: fmt.Sprintf("sysfs has %s at index %d, netlink has %s (a rename in flight)", nd.Name, nd.Index, got)}
		}
		w.macSince = time.Time{}
		w.macIndex = nd.Index
		if bytes.Equal(l.MAC, w.nic.MAC) {
			if w.macSeen != "" {
				w.did("mac", "MAC of %s (index %d) set %s -> %s", l.Name, l.Index, w.macSeen, l.MAC)
			}
			return observation{done: true}
		}
		if w.macSeen != "" {
			// Ours was accepted, yet another address is there: the kernel
			// ignored it, or another tool set its own.
			return observation{conflict: fmt.Errorf("set MAC of %s (index %d): the kernel accepted %s but reports %s", l.Name, l.Index, w.nic.MAC, l.MAC)}
		}
		return observation{note: fmt.Sprintf("%s (index %d) has %s", l.Name, l.Index, l.MAC)}
	},
	// The index observe has just read (and matched by name with netlink):
	// an index is never reused for another interface while this one lives,
	// and the read after the write checks name and MAC again. The link is
	// read once more right before the write: another actor may have set
	// the MAC since, and then we write nothing and claim nothing.
	act: func(_ context.Context, w *worker) error {
		l, err := w.links.LinkByIndex(w.macIndex)
		if err != nil {
			return err
		}
		if bytes.Equal(l.MAC, w.nic.MAC) {
			return nil // set by another actor since observe: nothing to write
		}
		if err := w.links.SetHardwareAddr(l.Index, w.nic.MAC); err != nil {
			return &link.MACError{Name: l.Name, Index: l.Index, MAC: w.nic.MAC, Kind: string(w.getKind()), Err: err}
		}
		w.macSeen = l.MAC.String()
		return nil
	},
}
