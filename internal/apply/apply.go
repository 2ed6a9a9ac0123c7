// Package apply configures the NICs of a parsed NIC list: it finds each
// device (freeing it from cio_ignore), groups and configures qeth devices,
// sets them online and gives each interface its MAC. NICs are configured
// concurrently under one deadline, so the time grows with the slowest NIC,
// not with their number.
package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kmod"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/logging"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

// Kinds of NIC.
const (
	KindQeth    = "qeth"
	KindVirtio  = "virtio"
	KindMissing = "missing"
	KindOther   = "other"
)

// ModuleLoader loads kernel modules (kmod.Loader).
type ModuleLoader interface {
	Load(names ...string) ([]string, error)
}

// Config is the system apply works on.
type Config struct {
	FS      sysfs.FS
	Links   link.Netlink
	Modules ModuleLoader
	Log     *logging.Logger
	// Sequential configures one NIC after the other (for measurements
	// against the concurrent default).
	Sequential bool
	// RenameSettle is how long sysfs and netlink may disagree on an
	// interface's name before that is an error (default 2s).
	RenameSettle time.Duration
}

// Report is the outcome for one NIC.
type Report struct {
	Devno     string   `json:"devno"`
	BusID     string   `json:"bus_id"`
	Kind      string   `json:"kind"`
	Port      int      `json:"port"`
	Interface string   `json:"interface,omitempty"`
	MAC       string   `json:"mac,omitempty"`
	Done      []string `json:"done"`
	OK        bool     `json:"ok"`
	Step      string   `json:"failed_step,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// Apply configures every NIC and returns one report per NIC, in list
// order. It returns by the context's deadline even if a kernel write is
// still blocked; such a NIC is reported as not finished.
func Apply(ctx context.Context, cfg Config, nics []cmdline.NIC) []Report {
	return run(ctx, cfg, nics, (*job).apply)
}

// SetMAC only sets the MAC of one listed NIC, waiting for its interface to
// appear (the udev role: the rule runs when the netdev is added).
func SetMAC(ctx context.Context, cfg Config, nic cmdline.NIC) Report {
	return run(ctx, cfg, []cmdline.NIC{nic}, (*job).setMAC)[0]
}

func run(ctx context.Context, cfg Config, nics []cmdline.NIC, do func(*job, context.Context) error) []Report {
	if cfg.Log == nil {
		cfg.Log = logging.Discard()
	}
	if cfg.RenameSettle == 0 {
		cfg.RenameSettle = 2 * time.Second
	}
	jobs := make([]*job, len(nics))
	for i, n := range nics {
		jobs[i] = &job{cfg: &cfg, sys: ccw.Sys{FS: cfg.FS}, nic: n, all: jobs, pos: i,
			kindKnown: make(chan struct{}), finished: make(chan struct{})}
		jobs[i].setStep("start")
	}
	start := func(j *job) {
		defer close(j.finished)
		defer j.setKind(j.kindOrMissing())
		err := do(j, ctx)
		j.mu.Lock()
		j.err = err
		j.mu.Unlock()
	}
	if cfg.Sequential {
		go func() {
			for _, j := range jobs {
				start(j)
			}
		}()
	} else {
		for _, j := range jobs {
			go start(j)
		}
	}
	reports := make([]Report, len(jobs))
	// A kernel write can block past the deadline (a hanging online); the
	// boot must not wait for it. One short grace after the deadline lets
	// workers that are just returning report; it is shared by all NICs.
	var grace <-chan time.Time
	for i, j := range jobs {
		select {
		case <-j.finished:
		case <-ctx.Done():
			if grace == nil {
				grace = time.After(50 * time.Millisecond)
			}
			select {
			case <-j.finished:
			case <-grace:
			}
		}
		reports[i] = j.report(ctx)
		r := reports[i]
		if r.OK {
			cfg.Log.Infof("%s: ok: %s", r.BusID, summary(r))
		} else {
			cfg.Log.Errorf("%s: FAILED at %s: %s", r.BusID, r.Step, r.Error)
		}
	}
	return reports
}

func summary(r Report) string {
	s := r.Kind
	if r.Interface != "" {
		s += " " + r.Interface
	}
	if r.Kind == KindQeth {
		s += fmt.Sprintf(" layer2 port %d", r.Port)
	}
	if r.MAC != "" {
		s += " mac " + r.MAC
	}
	if len(r.Done) == 0 {
		return s + " (already configured, nothing changed)"
	}
	return s + " (" + strings.Join(r.Done, ", ") + ")"
}

// job is one NIC's worker.
type job struct {
	cfg *Config
	sys ccw.Sys
	nic cmdline.NIC
	all []*job // every job, to check triplet overlaps with earlier NICs
	pos int

	kindOnce  sync.Once
	kind      string
	kindKnown chan struct{}
	finished  chan struct{}
	step      atomic.Pointer[string]

	mu    sync.Mutex
	done  []string
	iface string
	err   error
}

func (j *job) busID() string { return j.nic.BusID() }

func (j *job) setStep(s string) { j.step.Store(&s) }

func (j *job) setKind(k string) {
	j.kindOnce.Do(func() { j.kind = k; close(j.kindKnown) })
}

func (j *job) kindOrMissing() string {
	select {
	case <-j.kindKnown:
		return j.kind
	default:
		return KindMissing
	}
}

func (j *job) did(action, format string, args ...any) {
	j.mu.Lock()
	if !slices.Contains(j.done, action) { // freeing read, then write+data, is one "free"
		j.done = append(j.done, action)
	}
	j.mu.Unlock()
	j.cfg.Log.Infof("%s: %s", j.busID(), fmt.Sprintf(format, args...))
}

func (j *job) report(ctx context.Context) Report {
	r := Report{Devno: j.nic.DevnoString(), BusID: j.busID(), Kind: j.kindOrMissing(), Port: j.nic.Port}
	if j.nic.MAC != nil {
		r.MAC = j.nic.MAC.String()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	r.Done = append([]string{}, j.done...)
	r.Interface = j.iface
	select {
	case <-j.finished:
		if j.err == nil {
			r.OK = true
			return r
		}
		r.Step, r.Error = *j.step.Load(), j.err.Error()
	default:
		r.Step = *j.step.Load()
		r.Error = fmt.Sprintf("deadline reached (%v) while at step %s", ctx.Err(), r.Step)
	}
	return r
}

// apply is the whole sequence for one NIC.
func (j *job) apply(ctx context.Context) error {
	dev, grouped, err := j.find(ctx)
	if err != nil {
		return err
	}
	switch {
	case grouped || ccw.IsQeth(dev.CUType):
		j.setKind(KindQeth)
		if err := j.qeth(ctx, dev, grouped); err != nil {
			return err
		}
	case dev.CUType == ccw.CUTypeVirtio:
		j.setKind(KindVirtio)
		if err := j.virtio(dev); err != nil {
			return err
		}
	default:
		j.setKind(KindOther)
		j.setStep("find")
		return fmt.Errorf("device %s has CU type %s: not an OSA (%s), HiperSockets (%s) or virtio-net (%s) device",
			j.busID(), dev.CUType, ccw.CUTypeOSA, ccw.CUTypeIQD, ccw.CUTypeVirtio)
	}
	return j.mac(ctx)
}

// setMAC is the udev role: the device exists and has (or is about to have)
// its interface; only the MAC is set.
func (j *job) setMAC(ctx context.Context) error {
	j.setStep("find")
	switch {
	case j.sys.Grouped(j.busID()):
		j.setKind(KindQeth)
	default:
		dev, err := j.sys.Device(j.busID())
		if err != nil {
			return fmt.Errorf("device %s: %w", j.busID(), err)
		}
		switch {
		case dev.CUType == ccw.CUTypeVirtio:
			j.setKind(KindVirtio)
		case ccw.IsQeth(dev.CUType):
			j.setKind(KindQeth)
			return fmt.Errorf("qeth device %s is not grouped: run dpm-netconf apply first", j.busID())
		default:
			j.setKind(KindOther)
			return fmt.Errorf("device %s has CU type %s: not a qeth or virtio-net device", j.busID(), dev.CUType)
		}
	}
	return j.mac(ctx)
}

// find waits for the read device (or the existing group device), freeing
// it from cio_ignore once.
func (j *job) find(ctx context.Context) (ccw.Device, bool, error) {
	j.setStep("find")
	freed := false
	var dev ccw.Device
	var grouped bool
	err := poll(ctx, func() (bool, error) {
		if j.sys.Grouped(j.busID()) {
			grouped = true
			return true, nil
		}
		d, err := j.sys.Device(j.busID())
		if err == nil {
			dev = d
			return true, nil
		}
		if !sysfs.IsNotExist(err) {
			return false, err
		}
		if !freed && j.sys.HasCIOIgnore() {
			j.setStep("free")
			if err := j.sys.Free(j.busID(), j.busID()); err != nil {
				return false, err
			}
			freed = true
			j.setStep("find")
			return false, nil
		}
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			j.setKind(KindMissing)
			return dev, false, fmt.Errorf("device %s not found by the deadline (not in /sys/bus/ccw/devices%s): is the devno right and the device attached to this partition?",
				j.busID(), map[bool]string{true: ", even after freeing it from cio_ignore", false: ""}[freed])
		}
		return dev, false, err
	}
	if freed {
		j.did("free", "freed from cio_ignore")
	}
	return dev, grouped, nil
}

// qeth configures an OSA or HiperSockets device in chzdev's order: group,
// layer2, portno, online.
func (j *job) qeth(ctx context.Context, read ccw.Device, grouped bool) error {
	id := j.busID()
	ids := [3]string{id, cmdline.BusID(j.nic.Devno + 1), cmdline.BusID(j.nic.Devno + 2)}
	if err := j.checkOverlap(ctx); err != nil {
		return err
	}
	if !grouped {
		if err := j.checkTriplet(ctx, read, ids); err != nil {
			return err
		}
	}
	if err := j.loadModules(kmod.Qeth); err != nil {
		return err
	}
	if !grouped {
		j.setStep("group")
		if err := j.sys.Group(ids[0], ids[1], ids[2]); err != nil {
			return err
		}
		j.did("group", "grouped %s,%s,%s", ids[0], ids[1], ids[2])
	}
	j.setStep("state")
	st, err := j.sys.QethState(id)
	if err != nil {
		return err
	}
	if st.Online {
		if st.Layer2 != 1 || st.Port != j.nic.Port {
			return fmt.Errorf("device %s is already online with layer2=%d portno=%d, but layer2=1 portno=%d is wanted: left as it is (set it offline, e.g. echo 0 > /sys/bus/ccwgroup/devices/%s/online, and run apply again to reconfigure it)",
				id, st.Layer2, st.Port, j.nic.Port, id)
		}
		j.cfg.Log.Debugf("%s: already online in layer2 on port %d", id, st.Port)
	} else {
		if st.Layer2 != 1 {
			j.setStep("layer2")
			if err := j.sys.SetAttr(id, "layer2", "1"); err != nil {
				return err
			}
			j.did("layer2", "layer2=1")
		}
		if st.Port != j.nic.Port {
			j.setStep("portno")
			if err := j.sys.SetAttr(id, "portno", fmt.Sprint(j.nic.Port)); err != nil {
				return err
			}
			j.did("portno", "portno=%d", j.nic.Port)
		}
		j.setStep("online")
		if err := j.sys.SetAttr(id, "online", "1"); err != nil {
			return err
		}
	}
	nd, err := j.waitNetdev(ctx, func() (ccw.Netdev, error) { return j.sys.QethNetdev(id) })
	if err != nil {
		return err
	}
	if !st.Online {
		j.did("online", "online as %s", nd.Name)
	}
	return nil
}

// checkTriplet makes sure the write and data devices exist (freeing them
// from cio_ignore) and belong to the same adapter as the read device.
func (j *job) checkTriplet(ctx context.Context, read ccw.Device, ids [3]string) error {
	j.setStep("triplet")
	var others [2]ccw.Device
	freed := false
	err := poll(ctx, func() (bool, error) {
		for i, id := range ids[1:] {
			d, err := j.sys.Device(id)
			if sysfs.IsNotExist(err) {
				if !freed && j.sys.HasCIOIgnore() {
					freed = true
					return false, j.sys.Free(ids[1], ids[2])
				}
				return false, nil
			}
			if err != nil {
				return false, err
			}
			others[i] = d
		}
		return true, nil
	})
	role := [2]string{"write", "data"}
	if err != nil {
		if ctx.Err() == nil {
			return err
		}
		for i, id := range ids[1:] {
			if _, err := j.sys.Device(id); err != nil {
				return fmt.Errorf("%s device %s of qeth NIC %s not found by the deadline: a qeth NIC needs read, write and data devices %s,%s,%s",
					role[i], id, ids[0], ids[0], ids[1], ids[2])
			}
		}
		return err
	}
	if freed {
		j.did("free", "freed %s-%s from cio_ignore", ids[1], ids[2])
	}
	for i, d := range others {
		if d.CUType != read.CUType {
			return fmt.Errorf("%s device %s has CU type %s, read device %s has %s: they are not one qeth NIC", role[i], d.BusID, d.CUType, read.BusID, read.CUType)
		}
		if d.CHPIDs != read.CHPIDs {
			return fmt.Errorf("%s device %s is on CHPIDs %q, read device %s on %q: they are not one qeth NIC", role[i], d.BusID, d.CHPIDs, read.BusID, read.CHPIDs)
		}
	}
	return nil
}

// checkOverlap refuses a qeth NIC whose triplet overlaps a qeth NIC listed
// earlier: the earlier one stands.
func (j *job) checkOverlap(ctx context.Context) error {
	j.setStep("overlap")
	for _, o := range j.all[:j.pos] {
		if d := int(j.nic.Devno) - int(o.nic.Devno); d < -2 || d > 2 {
			continue
		}
		select {
		case <-o.kindKnown:
		case <-ctx.Done():
			return fmt.Errorf("waiting for NIC %s to check for overlapping triplets: %w", o.busID(), ctx.Err())
		}
		if o.kind == KindQeth {
			return fmt.Errorf("qeth NIC %s (devices %s-%s) overlaps qeth NIC %s (devices %s-%s) listed earlier at offset %d; the earlier one stands",
				j.busID(), j.busID(), cmdline.BusID(j.nic.Devno+2), o.busID(), o.busID(), cmdline.BusID(o.nic.Devno+2), o.nic.Offset)
		}
	}
	return nil
}

func (j *job) virtio(dev ccw.Device) error {
	if j.nic.Port != 0 {
		j.cfg.Log.Debugf("%s: port %d ignored: virtio-net has no adapter ports", j.busID(), j.nic.Port)
	}
	if err := j.loadModules(kmod.Virtio); err != nil {
		return err
	}
	if !dev.Online {
		j.setStep("online")
		if err := j.sys.SetOnline(j.busID()); err != nil {
			return err
		}
		j.did("online", "online")
	}
	return nil
}

// loadModules loads the modules a kind of NIC needs; the loader does each
// module once for all NICs.
func (j *job) loadModules(names []string) error {
	j.setStep("modules")
	loaded, err := j.cfg.Modules.Load(names...)
	if err != nil {
		return err
	}
	if len(loaded) > 0 {
		j.did("modules", "loaded modules %s", strings.Join(loaded, ", "))
	}
	return nil
}

// netdev re-reads the NIC's interface from sysfs.
func (j *job) netdev() (ccw.Netdev, error) {
	if j.kind == KindQeth {
		return j.sys.QethNetdev(j.busID())
	}
	return j.sys.VirtioNetdev(j.busID())
}

func (j *job) waitNetdev(ctx context.Context, get func() (ccw.Netdev, error)) (ccw.Netdev, error) {
	j.setStep("interface")
	var nd ccw.Netdev
	var last error
	err := poll(ctx, func() (bool, error) {
		nd, last = get()
		return last == nil, nil
	})
	if err != nil {
		return nd, fmt.Errorf("no network interface for %s by the deadline: %w", j.busID(), last)
	}
	j.mu.Lock()
	j.iface = nd.Name
	j.mu.Unlock()
	return nd, nil
}

func (j *job) mac(ctx context.Context) error {
	nd, err := j.waitNetdev(ctx, j.netdev)
	if err != nil {
		return err
	}
	if j.nic.MAC == nil {
		j.cfg.Log.Debugf("%s: %s keeps MAC %s (none listed)", j.busID(), nd.Name, nd.MAC)
		return nil
	}
	j.setStep("mac")
	res, err := link.SetMAC(ctx, j.cfg.Links, func() (string, int, error) {
		nd, err := j.netdev()
		return nd.Name, nd.Index, err
	}, j.nic.MAC, j.cfg.RenameSettle)
	if res.Name != "" {
		j.mu.Lock()
		j.iface = res.Name
		j.mu.Unlock()
	}
	if err != nil {
		return err
	}
	if res.Changed {
		j.did("mac", "MAC of %s (index %d) set %s -> %s", res.Name, res.Index, res.Before, res.After)
	} else {
		j.cfg.Log.Debugf("%s: %s already has MAC %s", j.busID(), res.Name, res.After)
	}
	return nil
}

// poll calls check until it reports done, fails or the context ends,
// backing off from 5 ms to 200 ms: fast for devices that are nearly there,
// cheap for ones that never come.
func poll(ctx context.Context, check func() (bool, error)) error {
	wait := 5 * time.Millisecond
	for {
		ok, err := check()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// Failed reports whether any report is not OK.
func Failed(reports []Report) bool {
	for _, r := range reports {
		if !r.OK {
			return true
		}
	}
	return false
}
