package vm

import (
	"context"
	"sync/atomic"
	"time"
)

// Waker pokes a guest whose console has been quiet: one XON byte (^Q) on the
// console, which reaches the guest as an SCLP input event, an external
// interrupt. Under QEMU 7.2's TCG an idle s390x guest sometimes does not get
// its clock-comparator (timer) interrupt: every process waiting on a timer
// then sleeps until some other interrupt comes — seen as stalls of 2 to 13
// minutes in the distro boots (systemd between two log lines, a service's
// first command), ended by unrelated events such as slirp's router
// advertisements every 200–600 s. Any interrupt ends such a stall, because
// the kernel then finds its expired timers. XON is what a tty swallows when
// output is not stopped (IXON, the default), and a login prompt ignores it.
type Waker struct {
	Quiet time.Duration // poke after this long without a console line

	last     atomic.Int64 // unix ns of the last console line
	poked    atomic.Int64 // unix ns of an unanswered poke, or 0
	pokes    atomic.Int64
	answered atomic.Int64
}

// Line records a console line; call it for every line the guest prints.
func (w *Waker) Line() {
	now := time.Now().UnixNano()
	w.last.Store(now)
	if p := w.poked.Swap(0); p != 0 && now-p < int64(2*time.Second) {
		w.answered.Add(1)
	}
}

// Run pokes through send while ctx lasts, whenever the console has been
// quiet for Quiet (then again after each further Quiet).
func (w *Waker) Run(ctx context.Context, send func(string) error, note func(string)) {
	w.last.CompareAndSwap(0, time.Now().UnixNano())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			quiet := now.Sub(time.Unix(0, w.last.Load()))
			p := w.poked.Load()
			if quiet < w.Quiet || (p != 0 && now.Sub(time.Unix(0, p)) < w.Quiet) {
				continue
			}
			if send("\x11") != nil {
				return
			}
			w.poked.Store(now.UnixNano())
			w.pokes.Add(1)
			note("console quiet for " + quiet.Round(time.Second).String() + ": poked (XON)")
		}
	}
}

// Stats says how often Run poked and how often a console line followed
// within 2 s (a sign the guest was stalled rather than busy).
func (w *Waker) Stats() (pokes, answered int64) { return w.pokes.Load(), w.answered.Load() }
