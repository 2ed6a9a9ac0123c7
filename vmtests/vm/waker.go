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
// Why: under QEMU 7.2's TCG the distro boots stalled now and then for 2 to
// 13 minutes: systemd between two log lines, a service's first command,
// cloud-init's Python start, journalctl, once a process that even SIGKILL
// did not end, while other processes and systemd's own timeouts ran on
// time. The cause is not found (README, "The distro boots"). Were it a lost
// wakeup, in the guest or in QEMU's main loop, any interrupt or main-loop
// event would end it. With the waker 1 of 20 boots stalled, without it 6 of
// 20: too few boots to be sure it helps. XON is what a tty swallows when
// output is not stopped (IXON, its default); the boots' consoles show no
// trace of it.
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
