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
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kmod"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
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
	d, err := sys.Device(busID)
	switch {
	case err != nil:
		return "", ""
	case ccw.IsQeth(d.CUType):
		return KindQeth, d.CUType
	case d.CUType == ccw.CUTypeVirtio:
		return KindVirtio, d.CUType
	}
	return KindOther, d.CUType
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

// freeTripletStep makes the write and data devices visible (freeing them
// from cio_ignore) unless the group exists already.
var freeTripletStep = step{
	name: "free",
	observe: func(w *worker) observation {
		if w.sys.Grouped(w.busID()) {
			return observation{done: true}
		}
		for _, id := range w.ids[1:] {
			if !w.sys.FS.Exists(ccw.DevicePath(id)) && !w.sys.Grouped(w.busID()) {
				if w.freedWD || !w.sys.HasCIOIgnore() || !w.ignored(w.ids[1], w.ids[2]) {
					if w.settledAbsent() {
						w.set(func() { w.absentFinal = true })
						return observation{conflict: w.missingMember()}
					}
					return observation{busy: true, note: "device " + id + " absent"}
				}
				return observation{}
			}
		}
		if w.freedWD {
			w.did("free", "freed %s-%s from cio_ignore", w.ids[1], w.ids[2])
		}
		return observation{done: true}
	},
	act: func(ctx context.Context, w *worker) error {
		if err := w.sys.Unignore(w.ids[1] + "-" + w.ids[2]); err != nil {
			return err
		}
		w.freedWD = true
		return w.settle(ctx)
	},
	expired: func(w *worker, _ observation) error { return w.missingMember() },
}

// missingMember names the first absent write or data device of a qeth NIC.
func (w *worker) missingMember() error {
	role := [3]string{"read", "write", "data"}
	when := "by the deadline"
	if w.settledAbsent() {
		when = "(the channel subsystem has sensed every device)"
	}
	for i, id := range w.ids[1:] {
		if !w.sys.FS.Exists(ccw.DevicePath(id)) {
			return fmt.Errorf("%s device %s of qeth NIC %s not found %s: a qeth NIC needs read, write and data devices %s,%s,%s",
				role[i+1], id, w.ids[0], when, w.ids[0], w.ids[1], w.ids[2])
		}
	}
	return nil
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

var qethModulesStep = modulesStep(kmod.Qeth, func(w *worker) (bool, string) {
	switch {
	case !w.sys.QethRegistered():
		return false, "no " + ccw.QethDriver
	case !w.modules.Live("qeth_l2"):
		return false, "module qeth_l2 not live (" + or(w.sys.ModuleState("qeth_l2"), "absent") + ")"
	}
	return true, ""
})

var virtioModulesStep = modulesStep(kmod.Virtio, func(w *worker) (bool, string) {
	if !w.sys.VirtioNetRegistered() {
		return false, "no " + ccw.VirtioNetDriver
	}
	return true, ""
})

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// groupStep creates the qeth group device. Before writing it checks that
// the three devices are one adapter's and free.
var groupStep = step{
	name: "group",
	observe: func(w *worker) observation {
		if w.sys.Grouped(w.busID()) {
			return observation{done: true}
		}
		var devs [3]ccw.Device
		role := [3]string{"read", "write", "data"}
		for i, id := range w.ids {
			d, err := w.sys.Device(id)
			if err != nil {
				// Gone again (a detach, or another actor's group in flight).
				return observation{busy: true, note: fmt.Sprintf("%s device %s: %v", role[i], id, err)}
			}
			devs[i] = d
			if g := w.sys.GroupOf(id); g != "" && g != w.busID() {
				return observation{conflict: fmt.Errorf("%s device %s of qeth NIC %s is already in group %s: the devices %s,%s,%s cannot form NIC %s (left as it is)",
					role[i], id, w.busID(), g, w.ids[0], w.ids[1], w.ids[2], w.busID())}
			}
		}
		for i, d := range devs[1:] {
			if d.CUType != devs[0].CUType {
				return observation{conflict: fmt.Errorf("%s device %s has CU type %s, read device %s has %s: they are not one qeth NIC", role[i+1], d.BusID, d.CUType, devs[0].BusID, devs[0].CUType)}
			}
			if d.CHPIDs != devs[0].CHPIDs {
				return observation{conflict: fmt.Errorf("%s device %s is on CHPIDs %q, read device %s on %q: they are not one qeth NIC", role[i+1], d.BusID, d.CHPIDs, devs[0].BusID, devs[0].CHPIDs)}
			}
		}
		for i, id := range w.ids {
			if drv := w.sys.DriverOf(id); drv != "qeth" {
				return observation{busy: true, note: fmt.Sprintf("%s device %s is bound to %q, not (yet) to qeth", role[i], id, drv)}
			}
		}
		return observation{}
	},
	act: func(ctx context.Context, w *worker) error {
		// The qeth probe does channel I/O: a write that can block.
		ids := w.ids[0] + "," + w.ids[1] + "," + w.ids[2]
		if err := w.slowWrite(ctx, "group", ccw.QethGroup, ids); err != nil {
			return err
		}
		w.did("group", "grouped %s", ids)
		return nil
	},
	// Another actor's group of the same devices answers EINVAL before its
	// directory exists.
	ambiguous: func(err error) bool { return errors.Is(err, unix.EINVAL) },
}

// qethState reads the group's state and turns an online card with another
// layer or port into a conflict (drift: left alone, reported).
func qethState(w *worker) (ccw.Qeth, observation) {
	q, err := w.sys.QethState(w.busID())
	if err != nil {
		if sysfs.IsNotExist(err) {
			// ccwgroup ungroups when a member device goes away.
			return q, observation{restart: true, note: "group device absent"}
		}
		return q, observation{conflict: err}
	}
	if q.Online && (q.Layer2 != 1 || q.Port != w.nic.Port) {
		id := w.busID()
		return q, observation{conflict: fmt.Errorf("device %s is already online with layer2=%d portno=%d, but layer2=1 portno=%d is wanted: left as it is (set it offline, e.g. echo 0 > /sys/bus/ccwgroup/devices/%s/online, and run apply again to reconfigure it)",
			id, q.Layer2, q.Port, w.nic.Port, id)}
	}
	note := fmt.Sprintf("online=%v layer2=%d portno=%d state=%s", q.Online, q.Layer2, q.Port, q.State)
	if q.Changing() {
		return q, observation{busy: true, note: note + " (an online or offline is in flight)"}
	}
	return q, observation{note: note}
}

// offlineAttrStep sets a qeth attribute that can only change while the
// card is DOWN.
func offlineAttrStep(attr string, want func(*worker) int, get func(ccw.Qeth) int) step {
	return step{
		name: attr,
		observe: func(w *worker) observation {
			q, o := qethState(w)
			if o.conflict != nil || o.busy || o.restart {
				return o
			}
			o.done = q.Online || get(q) == want(w)
			return o
		},
		act: func(ctx context.Context, w *worker) error {
			// qeth takes the card's mutexes, which an online in flight
			// holds: a write that can block.
			v := want(w)
			if err := w.slowWrite(ctx, attr, ccw.GroupPath(w.busID())+"/"+attr, fmt.Sprint(v)); err != nil {
				return err
			}
			w.did(attr, "%s=%d", attr, v)
			return nil
		},
	}
}

var (
	layer2Step = offlineAttrStep("layer2", func(*worker) int { return 1 }, func(q ccw.Qeth) int { return q.Layer2 })
	portnoStep = offlineAttrStep("portno", func(w *worker) int { return w.nic.Port }, func(q ccw.Qeth) int { return q.Port })
)

var qethOnlineStep = step{
	name: "online",
	observe: func(w *worker) observation {
		q, o := qethState(w)
		if o.conflict != nil || o.busy || o.restart {
			return o
		}
		if !q.Online && (q.Layer2 != 1 || q.Port != w.nic.Port) {
			// Another actor changed the attributes back while offline:
			// the earlier steps must run again, which a new apply does.
			return observation{conflict: fmt.Errorf("device %s changed to layer2=%d portno=%d by someone else before it went online (layer2=1 portno=%d wanted): left as it is",
				w.busID(), q.Layer2, q.Port, w.nic.Port)}
		}
		o.done = q.Online
		return o
	},
	act: func(ctx context.Context, w *worker) error {
		if err := w.slowWrite(ctx, "online", ccw.GroupPath(w.busID())+"/online", "1"); err != nil {
			return err
		}
		w.did("online", "online")
		return nil
	},
}

var virtioOnlineStep = step{
	name: "online",
	observe: func(w *worker) observation {
		d, err := w.sys.Device(w.busID())
		if err != nil {
			return observation{busy: true, note: err.Error()}
		}
		if d.Online {
			return observation{done: true}
		}
		if drv := w.sys.DriverOf(w.busID()); drv == "" {
			return observation{busy: true, note: "no driver bound yet"}
		}
		return observation{note: "offline"}
	},
	act: func(ctx context.Context, w *worker) error {
		if err := w.slowWrite(ctx, "online", ccw.DevicePath(w.busID())+"/online", "1"); err != nil {
			return err
		}
		w.did("online", "online")
		return nil
	},
	// virtio_ccw's own auto-online answers EINVAL to a second online
	// before online reads 1 (ccw_device_online: state not OFFLINE).
	ambiguous: func(err error) bool { return errors.Is(err, unix.EINVAL) },
}

// slowWrite makes a kernel write that can block (it waits for channel
// I/O or for locks an online in flight holds) through the Writer that
// outlives our deadline, so that the caller regains control in time and the
// kernel's work is not aborted.
func (w *worker) slowWrite(ctx context.Context, attr, file, value string) error {
	w.set(func() { w.inFlight, w.slowCall = true, "a write of "+value+" to "+file })
	err := w.cfg.Slow.Write(ctx, file, value)
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return err // the Writer gave up waiting: still under way, the report says so
	}
	w.set(func() { w.inFlight = false })
	if err != nil {
		return &ccw.AttrError{Step: attr, Device: w.busID(), File: file, Value: value, Err: err}
	}
	return nil
}

// settle waits for the channel subsystem to finish probing freed devices
// (cio_settle waits uninterruptibly). It is a barrier, not a step: if it
// fails, the devices still show up, and their kernel events wake us.
func (w *worker) settle(ctx context.Context) error {
	if err := w.cfg.Slow.Write(ctx, ccw.CIOSettle, "1"); err != nil && ctx.Err() == nil {
		w.cfg.Log.Debugf("%s: settle: %s", w.busID(), errno.Words(err))
	}
	return nil
}

// netdev re-reads the NIC's interface from sysfs.
func (w *worker) netdev() (ccw.Netdev, error) {
	if w.getKind() == KindQeth {
		return w.sys.QethNetdev(w.busID())
	}
	return w.sys.VirtioNetdev(w.busID())
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
	act: func(_ context.Context, w *worker) error {
		nd, err := w.netdev()
		if err != nil {
			return err
		}
		l, err := w.links.LinkByIndex(nd.Index)
		if err != nil {
			return err
		}
		if bytes.Equal(l.MAC, w.nic.MAC) {
			return nil // set by another actor since observe: nothing to write
		}
		if err := w.links.SetHardwareAddr(nd.Index, w.nic.MAC); err != nil {
			return &link.MACError{Name: nd.Name, Index: nd.Index, MAC: w.nic.MAC, Kind: string(w.getKind()), Err: err}
		}
		w.macSeen = l.MAC.String()
		return nil
	},
}
