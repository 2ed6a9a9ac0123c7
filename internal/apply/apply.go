// Package apply configures the NICs of a parsed NIC list. Each NIC's
// configuration is a list of steps held as data (steps.go); a worker per NIC
// runs them in order, each one observe → act → verify (engine.go), because
// at boot dpm-netconf is never alone: udev, s390-tools' zdev, the kernel's
// own asynchronous work and a second run of dpm-netconf act on the same
// devices. NICs are configured concurrently under one deadline, so the time
// grows with the slowest NIC, not with their number.
package apply

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/logging"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/uevent"
)

// Kind is what a listed NIC turned out to be.
type Kind string

// Kinds of NIC.
const (
	KindQeth    Kind = "qeth"
	KindVirtio  Kind = "virtio"
	KindMissing Kind = "missing"
	KindOther   Kind = "other"
)

// ModuleLoader loads kernel modules (kmod.Loader).
type ModuleLoader interface {
	// Load loads modules with their dependencies and names those it
	// loaded itself.
	Load(names ...string) ([]string, error)
	// Live reports whether a module finished its init or is built in.
	Live(name string) bool
}

// Writer performs a kernel write that may block for long (a qeth online
// takes seconds on a real OSA). It returns by ctx's end even if the write
// goes on; the write is not aborted.
type Writer interface {
	Write(ctx context.Context, file, value string) error
	// OutlivesCaller reports whether a write still blocked when our
	// process exits is finished by someone (a helper process) rather
	// than abandoned with us.
	OutlivesCaller() bool
}

// Config is the system apply works on.
type Config struct {
	FS      sysfs.FS
	Links   link.Netlink
	Modules ModuleLoader
	Log     *logging.Logger
	// Events wakes workers when the kernel reports a change on one of
	// their devices; nil means polling only.
	Events uevent.Source
	// Slow performs the writes that can block (online); nil means a
	// goroutine per write over FS.
	Slow Writer
	// Sequential configures one NIC after the other (for measurements
	// against the concurrent default).
	Sequential bool
	// RenameSettle is how long sysfs and netlink may disagree on an
	// interface's name before that is an error (default 2s).
	RenameSettle time.Duration
	// Grace is how long after the deadline the reports wait for workers
	// that are just returning (default 50ms).
	Grace time.Duration
	// AbsentFile names the record of devices found absent after a settle
	// (absent.go): read before the plan, and written at the end when
	// RecordAbsent (a run over the whole list: the initramfs's, for the
	// real root's). "" for none.
	AbsentFile   string
	RecordAbsent bool
}

// Report is the outcome for one NIC.
type Report struct {
	Devno     string   `json:"devno"`
	BusID     string   `json:"bus_id"`
	Kind      Kind     `json:"kind"`
	Port      int      `json:"port"`
	Interface string   `json:"interface,omitempty"`
	MAC       string   `json:"mac,omitempty"`
	Done      []string `json:"done"`
	OK        bool     `json:"ok"`
	// InProgress: the deadline came while a step was still under way (a
	// kernel write may still finish it).
	InProgress bool   `json:"in_progress,omitempty"`
	Step       string `json:"failed_step,omitempty"`
	Error      string `json:"error,omitempty"`
}

// lateGrace bounds the wait for a worker that is past the deadline and the
// grace without a write in flight (it should return at once).
const lateGrace = 2 * time.Second

// Apply configures every NIC and returns one report per NIC, in list
// order. It returns by the context's deadline plus Grace (plus lateGrace
// when a worker has no write of ours in the kernel), whatever is stuck: a
// NIC whose write goes on in the helper is reported in progress, one stuck
// in our own process failed, naming the call.
func Apply(ctx context.Context, cfg Config, nics []cmdline.NIC) []Report {
	return run(ctx, cfg, nics, modeApply)
}

// SetMAC only sets the MAC of one listed NIC, waiting for its interface to
// appear (the udev role: the rule runs when the netdev is added).
func SetMAC(ctx context.Context, cfg Config, nic cmdline.NIC) Report {
	return run(ctx, cfg, []cmdline.NIC{nic}, modeSetMAC)[0]
}

type mode int

const (
	modeApply mode = iota
	modeSetMAC
)

func run(ctx context.Context, cfg Config, nics []cmdline.NIC, md mode) []Report {
	if cfg.Log == nil {
		cfg.Log = logging.Discard()
	}
	if cfg.RenameSettle == 0 {
		cfg.RenameSettle = 2 * time.Second
	}
	if cfg.Grace == 0 {
		cfg.Grace = 50 * time.Millisecond
	}
	if cfg.Slow == nil {
		cfg.Slow = fsWriter{cfg.FS}
	}
	ws := make([]*worker, len(nics))
	for i, n := range nics {
		ws[i] = newWorker(&cfg, n, md)
	}
	// Events are read from before the first observation, so that nothing
	// that happens between a read and the wait is missed.
	stop := dispatch(cfg.Events, ws)
	defer stop()
	// The plan's cio_settle can block; the deadline below still holds.
	go func() {
		if md == modeApply {
			plan(ctx, &cfg, ws)
		}
		if cfg.Sequential {
			for _, w := range ws {
				w.run(ctx)
			}
			return
		}
		for _, w := range ws {
			go w.run(ctx)
		}
	}()
	reports := make([]Report, len(ws))
	// A kernel write can block past the deadline (a hanging online); the
	// boot must not wait for it. One short grace after the deadline lets
	// workers that are just returning report, and one late grace after it
	// waits for workers with no write of ours in the kernel (late only: a
	// starved CPU, seen under an emulator). Both are instants shared by all
	// NICs, so the caller has control at deadline + Grace + lateGrace
	// whatever number of workers is stuck.
	var graceOver, lateOver <-chan struct{}
	for i, w := range ws {
		select {
		case <-w.finished:
		case <-ctx.Done():
			if graceOver == nil {
				graceOver, lateOver = closedAfter(cfg.Grace), closedAfter(cfg.Grace+lateGrace)
			}
			select {
			case <-w.finished:
			case <-graceOver:
				if !w.writing() {
					select {
					case <-w.finished:
					case <-lateOver:
					}
				}
			}
		}
		reports[i] = w.report(ctx)
		r := reports[i]
		switch {
		case r.OK:
			cfg.Log.Infof("%s: ok: %s", r.BusID, summary(r))
		case r.InProgress:
			cfg.Log.Errorf("%s: IN PROGRESS at %s: %s", r.BusID, r.Step, r.Error)
		default:
			cfg.Log.Errorf("%s: FAILED at %s: %s", r.BusID, r.Step, r.Error)
		}
	}
	if cfg.RecordAbsent && cfg.AbsentFile != "" && md == modeApply {
		if err := writeAbsent(cfg.AbsentFile, ws); err != nil {
			cfg.Log.Debugf("record of absent devices: %v", err)
		}
	}
	return reports
}

// closedAfter returns a channel closed after d: unlike a timer's channel,
// every receiver sees it, as often as it looks.
func closedAfter(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	time.AfterFunc(d, func() { close(ch) })
	return ch
}

func summary(r Report) string {
	s := string(r.Kind)
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

// fsWriter runs a blocking write in a goroutine, so the caller regains
// control at its deadline; the write itself goes on.
type fsWriter struct{ fs sysfs.FS }

// OutlivesCaller: the goroutine ends with our process.
func (fsWriter) OutlivesCaller() bool { return false }

func (f fsWriter) Write(ctx context.Context, file, value string) error {
	done := make(chan error, 1)
	go func() { done <- sysfs.WriteString(f.fs, file, value) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
