package apply

import (
	"context"
	"fmt"
	"strings"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
)

// plan runs once before the workers start. It frees every listed read
// device that is not visible with one cio_ignore write and one settle (not
// one per NIC), then decides which entries overlap, so that no worker
// ever waits for another.
func plan(_ context.Context, cfg *Config, ws []*worker) {
	sys := ccw.Sys{FS: cfg.FS}
	if sys.HasCIOIgnore() {
		var absent []string
		for _, w := range ws {
			if !sys.Grouped(w.busID()) && !sys.FS.Exists(ccw.DevicePath(w.busID())) {
				absent = append(absent, w.busID())
			}
		}
		if len(absent) > 0 {
			if err := sys.FreeList(absent); err != nil {
				// Each worker frees its own device then, and reports a
				// failure in its own words.
				cfg.Log.Debugf("free %s: %v", strings.Join(absent, ","), err)
			} else {
				for _, w := range ws {
					for _, id := range absent {
						if id == w.busID() {
							w.freed = true
						}
					}
				}
			}
		}
	}
	kinds := make([]string, len(ws))
	for i, w := range ws {
		kinds[i], _ = kindOf(sys, w.busID())
		if kinds[i] != "" {
			w.setKind(kinds[i])
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

// overlap decides whether entry b, listed after a, collides with a's
// devices (a qeth NIC uses devno, devno+1 and devno+2).
func overlap(a cmdline.NIC, aKind string, b cmdline.NIC, bKind string) error {
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
