package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/errno"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/trace"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/uevent"
)

// A step is one part of a NIC's configuration, held as data: how to read
// its state, the one write that moves it on, and what the state means.
type step struct {
	name string
	// observe reads the state the step is about. It never writes.
	observe func(w *worker) observation
	// act is the step's one write. It runs only when observe found the
	// step neither done nor busy.
	act func(ctx context.Context, w *worker) error
	// ambiguous errors may come from another actor's change that is not
	// visible yet (a group being created by zdev answers EINVAL while the
	// qeth probe runs, before its directory exists; virtio's auto-online
	// answers EINVAL before online reads 1): they are retried for
	// ambiguousFor before being reported.
	ambiguous func(err error) bool
	// expired says why the step was not done by the deadline (nil: the
	// generic "deadline reached" message).
	expired func(w *worker, o observation) error
}

// An observation is what a step's read found.
type observation struct {
	done bool // nothing left to do
	// busy: a change is in flight (the kernel's own work, another actor,
	// a driver registering) or there is nothing to write but waiting
	// (a device not there yet). The worker waits and does not write.
	busy bool
	// conflict: the system holds another configuration than the list's.
	// It is left as it is and reported.
	conflict error
	// note says what was seen (for -v logs and deadline messages).
	note string
	// restart: what earlier steps set up is gone (the group vanished when
	// a member device went away): run the NIC's steps again from the top.
	restart bool
}

// ambiguousFor bounds how long an ambiguous error is retried: longer than
// a real OSA's qeth probe (channel I/O) takes while another actor groups.
const ambiguousFor = 5 * time.Second

// maxRestarts bounds how often a NIC's steps start again from the top;
// restartPause is the first pause before a restart (it doubles).
const (
	maxRestarts  = 3
	restartPause = 100 * time.Millisecond
)

// errRestart asks configure to run the NIC's steps again.
var errRestart = errors.New("restart")

// worker configures one NIC.
type worker struct {
	cfg     *Config
	sys     ccw.Sys // over a cachedFS over a trackedFS, as links and modules (calls.go)
	cache   *readCache
	links   link.Netlink
	modules ModuleLoader
	nic     cmdline.NIC
	mode    mode
	ids     [3]string // read, write, data (write and data only matter for qeth)

	wake     chan struct{}
	finished chan struct{}

	mu       sync.Mutex
	kind     Kind
	step     string
	done     []string
	iface    string
	err      error
	inFlight bool   // a slow write is under way
	slowCall string // which
	call     string // the kernel call under way in our process, if any

	// Set before the workers start (plan).
	planErr error
	freed   bool // the read device was freed from cio_ignore
	freedWD bool // write and data were freed
	// settledAt is when a cio_settle of ours returned after which the NIC's
	// absent devices were known to the kernel if they existed: on s390 the
	// channel subsystem has then sensed every subchannel, so absence is
	// final after a short grace (absentGrace). Zero: no settle worked (a
	// --root tree), and an absent device is waited for until the deadline.
	settledAt time.Time
	// absentFinal: reported absent after a settle (absent.go records it).
	absentFinal bool
	loaded      bool // this worker asked for its modules
	macSince    time.Time
	macSeen     string // the interface's MAC before we set it
	macIndex    int    // the interface index the mac step observed
	netDir      string // a virtio device's net directory, once found
}

func newWorker(cfg *Config, n cmdline.NIC, md mode) *worker {
	w := &worker{
		cfg: cfg, nic: n, mode: md,
		wake: make(chan struct{}, 1), finished: make(chan struct{}),
		kind: KindMissing, step: "free",
	}
	w.cache = &readCache{}
	w.sys = ccw.Sys{FS: cachedFS{w.cache, trackedFS{w.enter, cfg.FS}}}
	w.links = trackedLinks{w, cfg.Links}
	w.modules = trackedModules{w, cfg.Modules}
	w.ids[0] = n.BusID()
	// Entries whose triplet would wrap past ffff are refused by the parser;
	// a devno near the end still gets distinct ids here.
	for i := 1; i < 3; i++ {
		w.ids[i] = cmdline.BusID(n.Devno + uint16(i))
	}
	return w
}

func (w *worker) busID() string { return w.ids[0] }

func (w *worker) set(f func()) {
	w.mu.Lock()
	f()
	w.mu.Unlock()
}

func (w *worker) setKind(k Kind) { w.set(func() { w.kind = k }) }

// writing: a slow write of the worker's is blocked in the kernel now.
func (w *worker) writing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inFlight
}

func (w *worker) getKind() Kind {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.kind
}

// did records an action for the report and logs it.
func (w *worker) did(action, format string, args ...any) {
	w.set(func() {
		if !slices.Contains(w.done, action) { // freeing read, then write+data, is one "free"
			w.done = append(w.done, action)
		}
	})
	w.cfg.Log.Infof("%s: %s", w.busID(), fmt.Sprintf(format, args...))
}

// poke wakes the worker; it never blocks (one pending wake is enough).
func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run(ctx context.Context) {
	defer close(w.finished)
	defer trace.Span(w.busID() + ": worker")()
	err := w.configure(ctx)
	w.set(func() { w.err = err })
}

func (w *worker) configure(ctx context.Context) error {
	if w.planErr != nil {
		return w.planErr
	}
	first := findStep
	if w.mode == modeSetMAC {
		first = identifyStep
	}
	if err := w.runStep(ctx, first); err != nil {
		return err
	}
	var steps []step
	switch k := w.getKind(); {
	case w.mode == modeSetMAC:
		steps = setMACSteps
	case k == KindQeth:
		steps = qethSteps
	default:
		steps = virtioSteps
	}
	pause := backoff{next: restartPause, max: 8 * restartPause}
	for restarts := 0; ; restarts++ {
		err := w.runSteps(ctx, steps)
		if !errors.Is(err, errRestart) {
			return err
		}
		if restarts == maxRestarts {
			return fmt.Errorf("the group device of %s vanished %d times while it was being configured (its devices are going away and coming back)", w.busID(), restarts+1)
		}
		// A member that flaps (a CHPID going off and on) would otherwise
		// use up the restarts in microseconds: the pause grows each time,
		// and no event cuts it short.
		d := pause.step()
		w.cfg.Log.Infof("%s: the group device vanished: configuring it again in %v", w.busID(), d)
		w.cache.forget()
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return fmt.Errorf("the group device of %s vanished while it was being configured, and the deadline came before it could be configured again (%w)", w.busID(), ctx.Err())
		}
	}
}

func (w *worker) runSteps(ctx context.Context, steps []step) error {
	for _, s := range steps {
		if err := w.runStep(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// runStep is observe → act → verify until the step is done, fails, or
// the deadline comes.
func (w *worker) runStep(ctx context.Context, s step) error {
	w.set(func() { w.step = s.name })
	bo := backoff{next: 2 * time.Millisecond, max: 200 * time.Millisecond}
	var (
		last      observation
		actErr    error
		retried   error     // the last answer retried as transient or ambiguous
		ambiguous time.Time // when the first ambiguous answer came
	)
	for {
		o := s.observe(w)
		if trace.On() {
			trace.Markf("%s: %s: observed done=%v busy=%v conflict=%v %s", w.busID(), s.name, o.done, o.busy, o.conflict != nil, o.note)
		}
		last = o
		switch {
		case o.restart:
			return errRestart
		case o.conflict != nil:
			return o.conflict
		case o.done:
			if actErr != nil {
				w.cfg.Log.Debugf("%s: %s: done by another actor (our write got %s)", w.busID(), s.name, errno.Words(actErr))
			}
			return nil
		case actErr != nil:
			// The write failed and the state is not the wanted one.
			switch {
			case errors.Is(actErr, unix.EAGAIN), errors.Is(actErr, unix.EINTR),
				o.busy && transientWhileBusy(actErr):
				w.cfg.Log.Debugf("%s: %s: %s while a change is in flight (%s): again", w.busID(), s.name, errno.Words(actErr), o.note)
			case s.ambiguous != nil && s.ambiguous(actErr) && (ambiguous.IsZero() || time.Since(ambiguous) < ambiguousFor):
				if ambiguous.IsZero() {
					ambiguous = time.Now()
				}
				w.cfg.Log.Debugf("%s: %s: %s, maybe another actor's change not visible yet: again", w.busID(), s.name, errno.Words(actErr))
			default:
				return actErr
			}
			retried, actErr = actErr, nil
		case !o.busy:
			// An act reads fresh and is verified by fresh reads: its
			// writes go through the write helper, past the cache.
			w.cache.forget()
			err := s.act(ctx, w)
			w.cache.forget()
			if trace.On() {
				trace.Markf("%s: %s: acted: %v", w.busID(), s.name, err)
			}
			if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
				// Given up at the deadline; a kernel answer that came as
				// the deadline passed is an answer, judged below.
				return w.deadline(ctx, s, last)
			}
			actErr = err
			continue // verify at once: read again
		}
		err := w.wait(ctx, &bo)
		w.cache.forget()
		if err != nil {
			if retried != nil {
				return fmt.Errorf("%w (retried until the deadline)", retried)
			}
			return w.deadline(ctx, s, last)
		}
	}
}

// transientWhileBusy: answers that only mean "not now" while the state
// shows a change in flight.
func transientWhileBusy(err error) bool {
	for _, e := range []error{unix.EBUSY, unix.EINVAL, unix.ENOENT, unix.EPERM, unix.ENODEV} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (w *worker) deadline(ctx context.Context, s step, o observation) error {
	if s.expired != nil {
		if err := s.expired(w, o); err != nil {
			return err
		}
	}
	msg := fmt.Sprintf("deadline reached (%v) while at step %s", ctx.Err(), s.name)
	if o.note != "" {
		msg += ": " + o.note
	}
	return errors.New(msg)
}

// wait returns when a kernel event concerns the NIC, the backoff's safety
// poll expires, or the deadline comes.
func (w *worker) wait(ctx context.Context, bo *backoff) error {
	t := time.NewTimer(bo.step())
	defer t.Stop()
	select {
	case <-w.wake:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is the safety poll between kernel events: fast for a change that
// is nearly there, cheap for one that never comes. It is the only retry
// timing in dpm-netconf.
type backoff struct{ next, max time.Duration }

func (b *backoff) step() time.Duration {
	d := b.next
	b.next = min(2*b.next, b.max)
	return d
}

// report is the NIC's outcome so far.
func (w *worker) report(ctx context.Context) Report {
	r := Report{Devno: w.nic.DevnoString(), BusID: w.busID(), Port: w.nic.Port}
	if w.nic.MAC != nil {
		r.MAC = w.nic.MAC.String()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r.Kind = w.kind
	r.Done = append([]string{}, w.done...)
	r.Interface = w.iface
	finished := false
	select {
	case <-w.finished:
		finished = true
	default:
	}
	r.Step = w.step
	switch {
	case finished && w.err == nil:
		r.Step, r.OK = "", true
	case finished && !w.inFlight:
		r.Error = w.err.Error()
	case w.inFlight && w.cfg.Slow.OutlivesCaller():
		// Our write is blocked in the kernel, in a helper that finishes it
		// after we exit (and logs its outcome): it may still succeed.
		r.InProgress = true
		r.Error = fmt.Sprintf("deadline reached (%v) while at step %s; our write goes on in a helper process: the kernel is still working on it", ctx.Err(), w.step)
	case w.inFlight:
		r.Error = fmt.Sprintf("stuck in %s at the deadline; it is abandoned when dpm-netconf exits", w.slowCall)
	case w.call != "":
		r.Error = fmt.Sprintf("stuck in %s at the deadline; it is abandoned when dpm-netconf exits", w.call)
	default:
		r.Error = fmt.Sprintf("not done by the deadline: still at step %s and in no kernel call (the CPU was busy?)", w.step)
	}
	return r
}

// wakesAll: a module loaded or unloaded, a bus or a driver registered: any worker
// may be waiting for it.
func wakesAll(e uevent.Event) bool {
	return e.Subsystem == "module" || e.Subsystem == "drivers" || e.Subsystem == "bus"
}

// dispatch fans kernel events out to the workers whose devices they name;
// a module's or a driver's event (a driver registering) wakes every
// worker. Any other event (a coldplug storm has hundreds: CPUs, ttys,
// block devices) wakes none, so a worker's work grows with its own
// devices' events, not with the system's.
func dispatch(src uevent.Source, ws []*worker) (stop func()) {
	if src == nil {
		return func() {}
	}
	byID := map[string][]*worker{}
	for _, w := range ws {
		for _, id := range w.ids {
			byID[id] = append(byID[id], w)
		}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case e, ok := <-src.Events():
				if !ok {
					return
				}
				if wakesAll(e) {
					for _, w := range ws {
						w.poke()
					}
					continue
				}
				for _, id := range e.BusIDs() {
					for _, w := range byID[id] {
						w.poke()
					}
				}
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}
