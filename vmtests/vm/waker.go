package vm

import (
	"context"
	"sync/atomic"
	"time"
)

// Waker pokes a TCG guest at a steady pace: one XON byte (^Q) on the
// console, which wakes QEMU's main loop (its console input is ready) and
// reaches the guest as an SCLP input event, an external interrupt.
//
// Why: under QEMU 7.2's TCG the distro boots stalled now and then for 2 to 13
// minutes — systemd between two log lines, a service's first command,
// cloud-init's Python start, a process in the kernel that even SIGKILL did
// not end — while other processes and systemd's own timeouts ran on time.
// The stalls ended by themselves on some unrelated event (slirp's router
// advertisements come every 200–600 s). A lost wakeup, in the guest's
// timer or in QEMU's completion of an I/O, is ended by any interrupt and by
// any main-loop event, so a poke every few seconds bounds a stall to that.
// The console keeps printing during such stalls (systemd's progress lines),
// hence a steady pace, not a poke after quiet. XON is what a tty swallows
// when output is not stopped (IXON, its default), and agetty's login prompt
// ignores non-printing characters.
type Waker struct {
	Every time.Duration
	pokes atomic.Int64
}

// Run pokes through send every Every while ctx lasts.
func (w *Waker) Run(ctx context.Context, send func(string) error) {
	tick := time.NewTicker(w.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if send("\x11") != nil {
				return
			}
			w.pokes.Add(1)
		}
	}
}

// Pokes is how many pokes Run sent.
func (w *Waker) Pokes() int64 { return w.pokes.Load() }
