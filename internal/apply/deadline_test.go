package apply

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
)

// The caller has control at the deadline plus the grace (and, for workers
// without a write of ours in the kernel, the late grace): one each, shared
// by every NIC, whatever number of workers is stuck and wherever. On the
// bubble's fake clock that is an exact figure.
func TestDeadlineHoldsForStuckWorkers(t *testing.T) {
	const deadline = time.Second
	for _, kind := range []string{"helper write", "netlink", "finit_module", "sysfs read"} {
		for _, n := range []int{1, 2, 12} {
			t.Run(fmt.Sprintf("%d stuck in %s", n, kind), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { stuckWorkers(t, kind, n, deadline) })
			})
		}
	}
}

func stuckWorkers(t *testing.T, kind string, n int, deadline time.Duration) {
	m := kernelmodel.New()
	release := make(chan struct{})
	var list strings.Builder
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("0.0.%04x", 0x100+4*i)
		if kind == "helper write" || kind == "finit_module" {
			m.AddOSA(id, fmt.Sprintf("%02x", i))
		} else {
			m.AddVirtioNet(id, fmt.Sprintf("52:54:00:00:01:%02x", i))
		}
		fmt.Fprintf(&list, "%s,0,0a00000001%02x;", id[4:], i)
	}
	switch kind {
	case "helper write": // a qeth online that never answers
		m.LoadModules("ccwgroup", "qeth", "qeth_l2")
		m.OnlineDelay = time.Hour
	case "netlink": // RTM_SETLINK waiting for rtnl_lock (a qeth SETVMAC holds it)
		m.LoadModules("virtio_net")
		m.BeforeSetMAC = func() { <-release }
	case "finit_module": // a module init that never ends
		m.LoadDelay = time.Hour
	case "sysfs read": // a read during a device's removal
		m.LoadModules("virtio_net")
		m.BeforeRead = func(name string) {
			if strings.HasSuffix(name, "/online") {
				<-release
			}
		}
	}
	cfg := newConfig(t, m)
	start := time.Now()
	rs := applyWithin(t, cfg, deadline, list.String())
	limit := deadline + 50*time.Millisecond + lateGrace // Grace's default
	t.Logf("returned after %v", time.Since(start))
	if el := time.Since(start); el > limit {
		t.Errorf("%d workers stuck in %s: apply returned %v after its start, want at most %v", n, kind, el, limit)
	}
	// The outcome says what is true: in progress only for our write that
	// a helper finishes after we exit; anything stuck in our own process
	// is abandoned at exit, so FAILED, naming the call.
	want := map[string]string{
		"helper write": "our write goes on in a helper process",
		"netlink":      "stuck in RTM_SETLINK (set MAC) at the deadline",
		"finit_module": "stuck in finit_module (load ",
		"sysfs read":   "stuck in a read of /sys/bus/ccw/devices/0.0.",
	}[kind]
	named := 0
	for _, r := range rs {
		if r.OK || r.InProgress != (kind == "helper write") {
			t.Errorf("report %+v: ok or in progress while stuck in our process", r)
		}
		if strings.Contains(r.Error, want) {
			named++
		}
	}
	// Workers that wait for another one's module load (their own loader's
	// wait, no kernel call) fail with what they waited for.
	if named == 0 || kind != "finit_module" && named != n {
		t.Errorf("%d of %d reports name the call (%q): %+v", named, n, want, rs)
	}
	close(release)
	time.Sleep(24 * time.Hour) // what is stuck ends (a module chain of 1 h loads): the bubble can end
	synctest.Wait()
}
