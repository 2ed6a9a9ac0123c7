package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
)

// BenchmarkApply configures fresh, cio_ignored OSA NICs on the model where
// online takes 200 ms (a real OSA takes a good part of a second) and the
// kernel's hostile habits are on: modules register their drivers 20 ms
// after loading starts, and every step is read back. Concurrent: 12 NICs
// cost about what one does. Sequential (the old scripts' way): 12 times.
//
//	go test -run '^$' -bench Apply -benchtime 5x ./internal/apply/
func BenchmarkApply(b *testing.B) {
	for _, mode := range []string{"concurrent", "sequential"} {
		for _, n := range []int{1, 12} {
			b.Run(fmt.Sprintf("%s/nics=%d", mode, n), func(b *testing.B) {
				var list strings.Builder
				for i := 0; i < n; i++ {
					fmt.Fprintf(&list, "%04x,0,0a00000000%02x;", 0x100+4*i, i)
				}
				nics := parse(b, list.String())
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					m := kernelmodel.New()
					m.OnlineDelay = 200 * time.Millisecond
					m.LoadDelay = 20 * time.Millisecond
					for i := 0; i < n; i++ {
						id := fmt.Sprintf("0.0.%04x", 0x100+4*i)
						m.AddOSA(id, fmt.Sprintf("%02x", i))
						m.Ignore(id, offsetID(id, 1), offsetID(id, 2))
					}
					cfg := newConfig(b, m)
					cfg.Sequential = mode == "sequential"
					b.StartTimer()
					if rs := Apply(context.Background(), cfg, nics); failed(rs) {
						b.Fatalf("%+v", rs)
					}
				}
			})
		}
	}
}

// BenchmarkWakeOnEvent measures, in the model, the time from a device's
// appearance (the model sends its kernel events as it adds the devices)
// to the waiting worker's next write (the group). With events the worker
// wakes at once; with the safety poll alone it wakes when its backoff
// (up to 200 ms) runs out.
//
//	go test -run '^$' -bench WakeOnEvent -benchtime 200x ./internal/apply/
func BenchmarkWakeOnEvent(b *testing.B) {
	for _, events := range []bool{true, false} {
		name := "events"
		if !events {
			name = "poll-only"
		}
		b.Run(name, func(b *testing.B) {
			var lat []time.Duration
			for i := 0; i < b.N; i++ {
				m := kernelmodel.New()
				m.NoCIOIgnore()
				m.LoadModules("ccwgroup", "qeth", "qeth_l2")
				cfg := newConfig(b, m)
				if !events {
					cfg.Events = nil
				}
				var mu sync.Mutex
				var added, wrote time.Time
				m.BeforeWrite = func(file, _ string) {
					mu.Lock()
					if wrote.IsZero() && strings.HasSuffix(file, "/group") {
						wrote = time.Now()
					}
					mu.Unlock()
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				done := make(chan []Report)
				go func() { done <- Apply(ctx, cfg, parse(b, "0100,0;")) }()
				// Let the worker settle into its wait (its backoff grows).
				time.Sleep(150 * time.Millisecond)
				mu.Lock()
				added = time.Now()
				mu.Unlock()
				m.AddOSA("0.0.0100", "0a")
				rs := <-done
				cancel()
				if failed(rs) {
					b.Fatalf("%+v", rs)
				}
				mu.Lock()
				lat = append(lat, wrote.Sub(added))
				mu.Unlock()
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
