package apply

// The qeth (OSA, HiperSockets) NIC's own steps: its write and data
// devices, its modules, the group, layer2 and portno, online.

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kmod"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

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

var qethModulesStep = modulesStep(kmod.Qeth, func(w *worker) (bool, string) {
	switch {
	case !w.sys.QethRegistered():
		return false, "no " + ccw.QethDriver
	case !w.modules.Live("qeth_l2"):
		return false, "module qeth_l2 not live (" + or(w.sys.ModuleState("qeth_l2"), "absent") + ")"
	}
	return true, ""
})

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
