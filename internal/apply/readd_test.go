package apply

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/logging"
)

// syncBuilder is a strings.Builder for concurrent writers.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A member device that goes away takes the group with it (ccwgroup
// ungroups); the worker starts the NIC's steps again when its devices come
// back, after a pause that grows with each restart, and gives up after
// maxRestarts. On the bubble's fake clock the pauses are exact.
func TestGroupVanishes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		vanishes int // how many of our online writes find the write device going away
		ok       bool
	}{
		{"once", 1, true},
		{"three times", 3, true},
		{"a flapping member", 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := kernelmodel.New()
				m.AddOSA("0.0.0001", "0a")
				var onlines []time.Duration
				start := time.Now()
				left := tc.vanishes
				m.BeforeWrite = func(file, value string) {
					if file != grp+"online" || value != "1" {
						return
					}
					onlines = append(onlines, time.Since(start))
					if left == 0 {
						return
					}
					left--
					// The write device goes away as the online starts, and
					// comes back (offline, ungrouped) 10 ms later.
					m.RemoveDevice("0.0.0002")
					go func() {
						time.Sleep(10 * time.Millisecond)
						m.AddCCW("0.0.0002", "1731/01", "0a")
					}()
				}
				var log syncBuilder
				cfg := newConfig(t, m)
				cfg.Log = logging.New(logging.Options{Stderr: &log, Verbose: true, Kmsg: noKmsg})
				r := applyWithin(t, cfg, time.Minute, "0001,0,0a0000000011;")[0]
				if r.OK != tc.ok {
					t.Fatalf("report %+v\n%s\nwrites %q", r, log.String(), m.Writes())
				}
				restarts := min(tc.vanishes, maxRestarts+1)
				if n := strings.Count(log.String(), "the group device vanished: configuring it again"); n != min(restarts, maxRestarts) {
					t.Errorf("%d restarts logged, want %d:\n%s", n, min(restarts, maxRestarts), log.String())
				}
				if tc.ok {
					wantMAC(t, m, "0.0.0001", "0a:00:00:00:00:11")
				} else if !strings.Contains(r.Error, "vanished 4 times") {
					t.Errorf("flapping: %+v", r)
				}
				// Between two onlines, at least the pause before that restart.
				for i := 1; i < len(onlines); i++ {
					if gap, pause := onlines[i]-onlines[i-1], restartPause<<(i-1); gap < pause {
						t.Errorf("online %d came %v after the one before, want a pause of at least %v", i+1, gap, pause)
					}
				}
				time.Sleep(time.Second) // the last re-add: the bubble can end
			})
		})
	}
}
