package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/trace"
)

// plan runs once before the workers start. It frees every listed read
// device that is not visible with one cio_ignore write and one settle (not
// one per NIC), then the write and data devices of the qeth NICs the same
// way, and decides which entries overlap, so that no worker ever waits for
// another.
func plan(ctx context.Context, cfg *Config, ws []*worker) {
	defer trace.Span("plan")()
	planFS := trackedFS{enterAll(ws), cfg.FS}
	sys := ccw.Sys{FS: planFS}
	// A NIC's own reads go through its worker's cache, so that its first
	// steps do not read again what the plan has just read.
	nicSys := func(w *worker) ccw.Sys { return ccw.Sys{FS: cachedFS{w.cache, planFS}} }
	startWriter(cfg, nicSys, ws)
	trace.Mark("plan: writer started or not needed")
	// Only devices cio_ignore lists are freed; one settle covers every
	// absent device, freed or not, after which its absence is final. The
	// list is read only when a device is absent: the kernel walks every
	// possible device number to print it (65536 per subchannel set), which
	// took 100 ms on an emulated CPU (Hyperion).
	ignoreList := sync.OnceValues(sys.IgnoreList)
	onList := func(ids ...string) bool {
		ignored, listErr := ignoreList()
		return listErr != nil || slices.ContainsFunc(ids, ignored.Contains)
	}
	var absent, ignoredAbsent []string
	for _, w := range ws {
		// Absent: neither grouped nor a readable CU type; the kinds are
		// read again below through the same cache, so this costs no
		// read of its own unless devices are freed in between.
		if kind, _ := kindOf(nicSys(w), w.busID()); kind == "" {
			absent = append(absent, w.busID())
			if sys.HasCIOIgnore() && onList(w.busID()) {
				ignoredAbsent = append(ignoredAbsent, w.busID())
			}
		}
	}
	if freeAll(ctx, cfg, sys, ignoredAbsent, ws) {
		for _, w := range ws {
			w.freed = slices.Contains(ignoredAbsent, w.busID())
		}
	}
	// A device absent but not ignored, and no settle yet: one for all of
	// them, so that the channel subsystem's first scan is over.
	if len(absent) > len(ignoredAbsent) && ws[0].settledAt.IsZero() {
		settleOnce(ctx, cfg, ws)
	}
	// Absent in the initramfs after its settle, and still: final at once.
	known := readAbsent(cfg.AbsentFile)
	for _, w := range ws {
		if known[w.busID()] && slices.Contains(absent, w.busID()) && !w.settledAt.IsZero() {
			w.settledAt = w.settledAt.Add(-absentGrace)
		}
	}
	trace.Mark("plan: frees and settle done")
	kinds := make([]Kind, len(ws))
	for i, w := range ws {
		kinds[i], _ = kindOf(nicSys(w), w.busID())
		if kinds[i] != "" {
			w.setKind(kinds[i])
		}
	}
	// The write and data devices of the qeth NICs, again in one write.
	if sys.HasCIOIgnore() {
		var ranges []string
		for i, w := range ws {
			if s := nicSys(w); kinds[i] == KindQeth && !s.Grouped(w.busID()) && (!s.FS.Exists(ccw.DevicePath(w.ids[1])) || !s.FS.Exists(ccw.DevicePath(w.ids[2]))) &&
				onList(w.ids[1], w.ids[2]) {
				ranges = append(ranges, w.ids[1]+"-"+w.ids[2])
			}
		}
		if freeAll(ctx, cfg, sys, ranges, ws) {
			for i, w := range ws {
				w.freedWD = kinds[i] == KindQeth && slices.Contains(ranges, w.ids[1]+"-"+w.ids[2])
			}
		}
	}
	// The earlier entry stands. Only what is known now decides; a device
	// that appears later and collides is caught by the group step, which
	// refuses devices grouped elsewhere.
	for i, b := range ws {
		for j, a := range ws[:i] {
			if err := overlap(a.nic, kinds[j], b.nic, kinds[i]); err != nil && b.planErr == nil {
				b.planErr = err
				b.set(func() { b.step = "overlap" })
			}
		}
	}
}

// freeAll frees bus ids or ranges with one cio_ignore write and waits for
// the probing once. On failure each worker frees its own devices and
// reports in its own words.
func freeAll(ctx context.Context, cfg *Config, sys ccw.Sys, specs []string, ws []*worker) bool {
	if len(specs) == 0 {
		return false
	}
	forgetAll(ws)
	if err := sys.Unignore(strings.Join(specs, ",")); err != nil {
		cfg.Log.Debugf("%v", err)
		return false
	}
	settleOnce(ctx, cfg, ws)
	return true
}

// startWriter starts the blocking-write helper now, if the Writer has one
// and a NIC's device is not online (so writes will come: a settle, a group,
// an online), so that the process's start overlaps the frees and the
// module loads instead of delaying the first write. A NIC already online
// costs no process.
func startWriter(cfg *Config, nicSys func(*worker) ccw.Sys, ws []*worker) {
	s, ok := cfg.Slow.(interface{ Start() error })
	if !ok {
		return
	}
	for _, w := range ws {
		if online, err := nicSys(w).Online(w.busID()); err != nil || !online {
			go func() {
				defer trace.Span("start the write helper")()
				if err := s.Start(); err != nil {
					cfg.Log.Debugf("start the write helper early: %v", err)
				}
			}()
			return
		}
	}
}

// settleOnce writes cio_settle and, when it worked, marks the time on every
// worker whose devices it settled (all: one settle covers the system).
func settleOnce(ctx context.Context, cfg *Config, ws []*worker) {
	forgetAll(ws)
	if err := cfg.Slow.Write(ctx, ccw.CIOSettle, "1"); err != nil {
		cfg.Log.Debugf("settle: %v", err)
		return
	}
	now := time.Now()
	for _, w := range ws {
		w.settledAt = now
	}
}

// forgetAll empties every worker's read cache: the plan writes.
func forgetAll(ws []*worker) {
	for _, w := range ws {
		w.cache.forget()
	}
}

// overlap decides whether entry b, listed after a, collides with a's
// devices (a qeth NIC uses devno, devno+1 and devno+2).
func overlap(a cmdline.NIC, aKind Kind, b cmdline.NIC, bKind Kind) error {
	triplet := func(n cmdline.NIC) string {
		return fmt.Sprintf("devices %s-%s", n.BusID(), cmdline.BusID(n.Devno+2))
	}
	switch {
	case aKind == KindQeth && b.Devno > a.Devno && b.Devno-a.Devno <= 2:
		return fmt.Errorf("NIC %s is device %s of qeth NIC %s (%s) listed earlier at offset %d; the earlier one stands",
			b.BusID(), b.BusID(), a.BusID(), triplet(a), a.Offset)
	case bKind == KindQeth && aKind != "" && a.Devno > b.Devno && a.Devno-b.Devno <= 2:
		return fmt.Errorf("qeth NIC %s (%s) overlaps NIC %s listed earlier at offset %d; the earlier one stands",
			b.BusID(), triplet(b), a.BusID(), a.Offset)
	}
	return nil
}
