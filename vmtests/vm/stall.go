package vm

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// StallWatch watches a guest's console and, when no line has come for
// Quiet, samples the emulator over its own QMP socket: the guest's PSW
// (info registers) a few times and the translator's state (info jit). It
// writes them to Report and calls OnStall, which ends the guest, so that a
// test never waits silently on an emulator that has stopped making
// progress (docs/testing.md, "Emulator stalls").
type StallWatch struct {
	Quiet   time.Duration
	QMP     string // a QMP socket of its own (QMPArgs), not the test's
	Report  string // where the samples go
	OnStall func()

	last    atomic.Int64 // unix nanoseconds of the last console line
	mu      sync.Mutex
	stalled error
}

// Line is called for every console line.
func (w *StallWatch) Line() { w.last.Store(time.Now().UnixNano()) }

// Run watches until ctx ends or the guest stalls.
func (w *StallWatch) Run(ctx context.Context) {
	w.Line()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		quiet := time.Since(time.Unix(0, w.last.Load()))
		if quiet < w.Quiet {
			continue
		}
		summary := w.sample()
		w.mu.Lock()
		w.stalled = fmt.Errorf("emulator stall: the guest's console was quiet for %v; %s; samples in %s (QEMU TCG, not the product: docs/testing.md)",
			quiet.Round(time.Second), summary, w.Report)
		w.mu.Unlock()
		if w.OnStall != nil {
			w.OnStall()
		}
		return
	}
}

// Stalled is the stall Run found, or nil.
func (w *StallWatch) Stalled() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stalled
}

var pswLine = regexp.MustCompile(`PSW=mask ([0-9a-f]+) addr ([0-9a-f]+)`)

// sample takes 10 PSW samples a second apart and info jit; it returns a
// one-line summary.
func (w *StallWatch) sample() string {
	var b strings.Builder
	mon, err := DialQMP(w.QMP)
	if err != nil {
		return fmt.Sprintf("no samples: %v", err)
	}
	defer mon.Close()
	var addrs []string
	for i := 0; i < 10; i++ {
		regs, err := mon.HMP("info registers")
		if err != nil {
			fmt.Fprintf(&b, "info registers: %v\n", err)
			break
		}
		fmt.Fprintf(&b, "== info registers, sample %d\n%s\n", i+1, regs)
		if m := pswLine.FindStringSubmatch(regs); m != nil {
			addrs = append(addrs, m[2])
		}
		time.Sleep(time.Second)
	}
	jit, err := mon.HMP("info jit")
	if err != nil {
		jit = err.Error()
	}
	fmt.Fprintf(&b, "== info jit\n%s\n", jit)
	if err := os.WriteFile(w.Report, []byte(b.String()), 0o644); err != nil {
		return fmt.Sprintf("samples not written: %v", err)
	}
	return fmt.Sprintf("PSW addresses %s; %s", strings.Join(addrs, " "), JITSummary(jit))
}

var jitFields = regexp.MustCompile(`(?m)^(gen code size|TB count|TB flush count|TB invalidate count)\s+(\S+)`)

// JITSummary picks the translator's figures from info jit: code buffer
// use, translated blocks, flushes, invalidations.
func JITSummary(jit string) string {
	var parts []string
	for _, m := range jitFields.FindAllStringSubmatch(jit, -1) {
		parts = append(parts, m[1]+" "+m[2])
	}
	if len(parts) == 0 {
		return "info jit: no figures"
	}
	return strings.Join(parts, ", ")
}
