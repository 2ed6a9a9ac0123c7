package apply

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw/ccwtest"
	cmdlinepkg "github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kmod"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/logging"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

// chaosSeeds is how many interleavings TestChaos tries: DPM_CHAOS_SEEDS, or
// 1000 (make unit); make test-s390x sets its own count.
func chaosSeeds(t *testing.T) int {
	if s := os.Getenv("DPM_CHAOS_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("DPM_CHAOS_SEEDS=%q: %v", s, err)
		}
		return n
	}
	return 1000
}

// A chaosNIC is one NIC of a seed's system, and what the other actors do
// to it.
type chaosNIC struct {
	busID, chpid string
	qeth         bool
	ignored      bool
	port         int
	mac          string
	// zdev: a zdev-like configurer also frees, groups, sets the layer,
	// the port and online; conflicting: with another layer or port than
	// the list's (a genuine conflict apply must report, not hide).
	zdev, conflicting bool
}

// TestChaos runs apply on the kernel model while other actors act on the
// same devices at random moments: a zdev-like configurer, a udev-like
// module loader, virtio's own auto-online, and a second apply. Each run
// must end with every NIC either in the wanted state and reported ok, or
// reported with a precise error for a genuine conflict: never ok when it
// is not, never a transient answer reported as a failure.
//
// Each seed runs in its own synctest bubble: every sleep, timer and
// deadline (the actors', the model's delays, apply's) is on the bubble's
// fake clock, which moves only when every goroutine in it is blocked. So
// a seed's plan is also its interleaving, and DPM_CHAOS_SEED=N replays
// a failure (TestChaosReplays checks that it does).
func TestChaos(t *testing.T) {
	root := t.TempDir()
	if err := kernelmodel.WriteModulesTree(root, release); err != nil {
		t.Fatal(err)
	}
	n := chaosSeeds(t)
	var mu sync.Mutex
	var failed []uint64
	var total chaosStats
	t.Run("seeds", func(t *testing.T) {
		for seed := uint64(1); seed <= uint64(n); seed++ {
			t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					res := chaosRun(root, seed)
					mu.Lock()
					defer mu.Unlock()
					total.add(res.stats)
					if res.problem != "" {
						failed = append(failed, seed)
						t.Errorf("seed %d (replay: DPM_CHAOS_SEED=%d go test -run TestChaosSeed ./internal/apply/, without -race):\n%s", seed, seed, res.problem)
					}
				})
			})
		}
	})
	t.Logf("%d seeds, %d failed %v; what the actors caused: %s", n, len(failed), failed, total)
	// The test proves something only if the actors really got in the way.
	if n >= 200 && (total.byAnother == 0 || total.again == 0 || total.conflicts == 0) {
		t.Errorf("the actors never collided with apply: %s", total)
	}
}

// TestChaosSeed reruns one seed (DPM_CHAOS_SEED) for a failure's report.
func TestChaosSeed(t *testing.T) {
	s := os.Getenv("DPM_CHAOS_SEED")
	if s == "" {
		t.Skip("replays one seed of TestChaos (DPM_CHAOS_SEED unset); run: DPM_CHAOS_SEED=N go test -run TestChaosSeed ./internal/apply/")
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := kernelmodel.WriteModulesTree(root, release); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		res := chaosRun(root, seed)
		t.Logf("%s\n%s", res.stats, res.trace)
		if res.problem != "" {
			t.Fatal(res.problem)
		}
	})
}

// A seed replays: run three times, it makes the same kernel writes in the same
// order and ends with the same reports. Not under -race, which shuffles
// the scheduler on purpose: make unit runs the chaos tests once more
// without it.
func TestChaosReplays(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector shuffles the scheduler on purpose; runs in: make unit (its run without -race)")
	}
	root := t.TempDir()
	if err := kernelmodel.WriteModulesTree(root, release); err != nil {
		t.Fatal(err)
	}
	// The runs differ in what the Go scheduler may choose: one or all
	// CPUs for the bubble's goroutines (the test runs alone: it is not
	// parallel, so the process-wide setting touches no other test).
	procs := []int{runtime.GOMAXPROCS(0), 1, max(4, runtime.GOMAXPROCS(0))}
	defer runtime.GOMAXPROCS(procs[0])
	for seed := uint64(1); seed <= 40; seed++ {
		traces := make([]string, len(procs))
		for i, n := range procs {
			runtime.GOMAXPROCS(n)
			synctest.Test(t, func(t *testing.T) { traces[i] = chaosRun(root, seed).trace })
		}
		for i := 1; i < len(traces); i++ {
			if traces[i] != traces[0] {
				t.Errorf("seed %d ran two ways:\n--- GOMAXPROCS=%d\n%s\n--- GOMAXPROCS=%d\n%s", seed, procs[0], traces[0], procs[i], traces[i])
				break
			}
		}
	}
}

// chaosStats counts what the other actors made apply meet.
type chaosStats struct {
	byAnother, again, conflicts, runs int
}

func (s *chaosStats) add(o chaosStats) {
	s.byAnother += o.byAnother
	s.again += o.again
	s.conflicts += o.conflicts
	s.runs += o.runs
}

func (s chaosStats) String() string {
	return fmt.Sprintf("%d applies, %d steps done by another actor, %d transient answers retried, %d conflicts reported",
		s.runs, s.byAnother, s.again, s.conflicts)
}

// lineCounter counts apply's debug lines by what they say.
type lineCounter struct {
	mu sync.Mutex
	st chaosStats
}

func (l *lineCounter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(line, "done by another actor"):
			l.st.byAnother++
		case strings.HasSuffix(line, ": again"):
			l.st.again++
		case strings.Contains(line, "FAILED") && strings.Contains(line, "left as it is"):
			l.st.conflicts++
		}
	}
	return len(b), nil
}

// chaosResult is what one seed did: problem is "" or what went wrong;
// trace is the model's writes with their fake times, and the reports.
type chaosResult struct {
	problem, trace string
	stats          chaosStats
}

// chaosRun is one seed. It must run in a synctest bubble (its sleeps are
// the plan's moments).
func chaosRun(modRoot string, seed uint64) chaosResult {
	counter := &lineCounter{}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	ms := func(max int) time.Duration { return time.Duration(rng.IntN(max*1000)) * time.Microsecond }
	m := kernelmodel.New()
	m.Sched = kernelmodel.NewScheduler(seed)
	defer m.Sched.Stop()
	// Odd seeds answer as Debian 13's 6.12, even ones as Debian 12's 6.1.
	m.Kernel = kernelmodel.Kernel(seed % 2)
	m.OnlineDelay = ms(3)
	m.LoadDelay = ms(2)
	m.AutoOnlineDelay = ms(2)

	var nics []*chaosNIC
	var list strings.Builder
	nQeth, nVirtio := rng.IntN(3), rng.IntN(3)
	if nQeth+nVirtio == 0 {
		nQeth = 1
	}
	for i := 0; i < nQeth; i++ {
		c := &chaosNIC{busID: fmt.Sprintf("0.0.%04x", 0x100+4*i), chpid: fmt.Sprintf("%02x", 0x10+i), qeth: true,
			ignored: rng.IntN(2) == 0, port: rng.IntN(2), mac: fmt.Sprintf("0a:00:00:00:01:%02x", i)}
		c.zdev = rng.IntN(3) > 0
		c.conflicting = c.zdev && rng.IntN(8) == 0
		m.AddOSA(c.busID, c.chpid)
		nics = append(nics, c)
	}
	for i := 0; i < nVirtio; i++ {
		c := &chaosNIC{busID: fmt.Sprintf("0.0.%04x", 0x200+i), ignored: rng.IntN(2) == 0, mac: fmt.Sprintf("0a:00:00:00:02:%02x", i)}
		c.zdev = rng.IntN(2) == 0 // here: an actor that frees it and writes online
		m.AddVirtioNet(c.busID, fmt.Sprintf("52:54:00:00:02:%02x", i))
		nics = append(nics, c)
	}
	if rng.IntN(2) == 0 {
		m.LoadModules("virtio_net") // built in, or loaded by the initramfs
	}
	if rng.IntN(2) == 0 {
		m.LoadModules("ccwgroup", "qeth", "qeth_l3") // a layer 3 setup loaded them
	}
	for _, c := range nics {
		if c.ignored {
			if c.qeth {
				m.Ignore(c.busID, offsetID(c.busID, 1), offsetID(c.busID, 2))
			} else {
				m.Ignore(c.busID)
			}
		}
		fmt.Fprintf(&list, "%s,%d,%s;", c.busID[4:], c.port, strings.ReplaceAll(c.mac, ":", ""))
	}
	parsed := cmdlinepkg.Parse(list.String())
	if len(parsed.Errors) > 0 {
		return chaosResult{problem: fmt.Sprintf("list %q: %v", list.String(), parsed.Errors)}
	}
	listed := parsed.NICs

	var actors sync.WaitGroup
	act := func(delay time.Duration, f func()) {
		actors.Add(1)
		go func() {
			defer actors.Done()
			time.Sleep(delay)
			f()
		}()
	}
	for _, c := range nics {
		if !c.zdev {
			continue
		}
		layer2, port := 1, c.port
		if c.conflicting {
			if rng.IntN(2) == 0 {
				layer2 = 0
			} else {
				port = 1 - c.port
			}
		}
		delay := ms(4)
		if c.conflicting && rng.IntN(2) == 0 {
			delay = 0 // first, so that the conflict often stands
		}
		act(delay, func() { zdevLike(m.As("zdev "+c.busID), c, layer2, port) })
	}
	if rng.IntN(2) == 0 {
		udev := m.As("udev")
		loader := &kmod.Loader{Root: modRoot, Release: release, FS: udev, Insmod: udev.Insmod}
		mods := kmod.Qeth
		if rng.IntN(2) == 0 {
			mods = kmod.Virtio
		}
		act(ms(3), func() { _, _ = loader.Load(mods...) })
	}
	run := func(name string) []Report {
		k := m.As(name)
		log := logging.New(logging.Options{Stderr: counter, Verbose: true, Kmsg: noKmsg})
		counter.mu.Lock()
		counter.st.runs++
		counter.mu.Unlock()
		cfg := Config{FS: k, Links: k, Events: m.Subscribe(1024), Log: log,
			Modules:      &kmod.Loader{Root: modRoot, Release: release, FS: k, Insmod: k.Insmod},
			RenameSettle: time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return Apply(ctx, cfg, listed)
	}
	var second []Report
	if rng.IntN(2) == 0 {
		act(ms(4), func() { second = run("apply 2") })
	}
	first := run("apply 1")
	actors.Wait()

	var problems []string
	for _, rs := range [][]Report{first, second} {
		for i, r := range rs {
			c := nics[i]
			wantOK := !c.conflicting
			state := chaosState(m, c)
			switch {
			case r.OK && state != "":
				problems = append(problems, fmt.Sprintf("%s reported ok but %s", c.busID, state))
			case !r.OK && wantOK:
				problems = append(problems, fmt.Sprintf("%s failed with no conflict: at %s: %s", c.busID, r.Step, r.Error))
			case !r.OK && !strings.Contains(r.Error, "left as it is"):
				problems = append(problems, fmt.Sprintf("%s: conflict reported imprecisely: at %s: %s", c.busID, r.Step, r.Error))
			}
		}
	}
	counter.mu.Lock()
	res := chaosResult{stats: counter.st, trace: fmt.Sprintf("kernel "+m.Kernel.String()+"\nturns\n\t%s\nwrites %q\nreports %+v\nsecond %+v", strings.Join(m.Sched.Picks(), "\n\t"), m.Writes(), first, second)}
	counter.mu.Unlock()
	if len(problems) > 0 {
		res.problem = fmt.Sprintf("NICs %+v\n%s", nics, strings.Join(problems, "\n"))
	}
	return res
}

// zdevLike does what s390-tools' zdev auto-configuration does through udev
// rules, fire and forget: free, group, layer2, portno, online (for virtio:
// free and online). Errors are ignored, as udev's RUN does.
func zdevLike(fs sysfs.FS, c *chaosNIC, layer2, port int) {
	sys := ccw.Sys{FS: fs}
	if !c.qeth {
		_ = ccwtest.Free(fs, c.busID, c.busID)
		_ = sysfs.WriteString(fs, ccw.DevicePath(c.busID)+"/online", "1")
		return
	}
	_ = ccwtest.Free(fs, c.busID, offsetID(c.busID, 2))
	for i := 0; i < 200 && !sys.QethRegistered(); i++ {
		time.Sleep(50 * time.Microsecond) // zdev's rule fires when the driver is there
	}
	_ = ccwtest.Group(fs, c.busID, offsetID(c.busID, 1), offsetID(c.busID, 2))
	_ = ccwtest.SetAttr(fs, c.busID, "layer2", strconv.Itoa(layer2))
	_ = ccwtest.SetAttr(fs, c.busID, "portno", strconv.Itoa(port))
	_ = ccwtest.SetAttr(fs, c.busID, "online", "1")
}

// chaosState is "" when the NIC is as the list wants, else what differs.
func chaosState(m *kernelmodel.Model, c *chaosNIC) string {
	sys := ccw.Sys{FS: m}
	var diffs []string
	if c.qeth {
		q, err := sys.QethState(c.busID)
		if err != nil {
			return "not grouped: " + err.Error()
		}
		if !q.Online || q.Layer2 != 1 || q.Port != c.port {
			diffs = append(diffs, fmt.Sprintf("online=%v layer2=%d portno=%d", q.Online, q.Layer2, q.Port))
		}
	} else if d, err := sys.Device(c.busID); err != nil || !d.Online {
		diffs = append(diffs, fmt.Sprintf("virtio device %+v %v", d, err))
	}
	if mac, ok := m.MAC(c.busID); !ok || mac.String() != c.mac {
		diffs = append(diffs, fmt.Sprintf("MAC %v (netdev %v)", mac, ok))
	}
	return strings.Join(diffs, "; ")
}

func noKmsg() (io.WriteCloser, error) { return nil, os.ErrNotExist }

func offsetID(busID string, n int) string {
	v, _ := strconv.ParseUint(busID[4:], 16, 16)
	return fmt.Sprintf("0.0.%04x", v+uint64(n))
}
