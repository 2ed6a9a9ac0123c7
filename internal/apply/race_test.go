package apply

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kmod"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/logging"
)

// These tests put another actor between apply's read and its write, at
// the exact moment, through the model's BeforeWrite hook: the kernel's
// answers (EPERM, EINVAL, EAGAIN) are the model's own, not injected.

// actBefore runs f once, before the first write to file (by anyone else
// than f itself).
func actBefore(m *kernelmodel.Model, file string, f func()) {
	var once sync.Once
	var acting atomic.Bool
	m.BeforeWrite = func(name, _ string) {
		if name == file && !acting.Load() {
			once.Do(func() {
				acting.Store(true)
				f()
				acting.Store(false)
			})
		}
	}
}

func write(t *testing.T, m *kernelmodel.Model, file, value string) {
	t.Helper()
	if err := m.WriteFile(file, []byte(value)); err != nil {
		t.Errorf("actor: write %s to %s: %v", value, file, err)
	}
}

// verboseLog records apply's lines, debug ones included.
type verboseLog struct {
	mu    sync.Mutex
	lines []string
}

func (v *verboseLog) Write(b []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lines = append(v.lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	return len(b), nil
}

func (v *verboseLog) has(sub string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.ContainsFunc(v.lines, func(l string) bool { return strings.Contains(l, sub) })
}

func withLog(cfg Config) (Config, *verboseLog) {
	v := &verboseLog{}
	cfg.Log = logging.New(logging.Options{Stderr: v, Verbose: true, Kmsg: noKmsg})
	return cfg, v
}

const grp = "/sys/bus/ccwgroup/devices/0.0.0001/"

// zdev groups nothing here: it sets layer2, the port and online just
// before apply writes layer2; apply's write gets EPERM (the card is no
// longer DOWN), apply reads again and finds the wanted state.
func TestRaceLayer2AfterZdevOnline(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	actBefore(m, grp+"layer2", func() {
		write(t, m, grp+"layer2", "1")
		write(t, m, grp+"portno", "1")
		write(t, m, grp+"online", "1")
	})
	cfg, log := withLog(newConfig(t, m))
	r := applyWithin(t, cfg, 5*time.Second, "0001,1,0a0000000011;")[0]
	if !r.OK || slices.Contains(r.Done, "layer2") || slices.Contains(r.Done, "online") {
		t.Fatalf("report %+v", r)
	}
	if !log.has("0.0.0001: layer2: done by another actor (our write got EPERM") {
		t.Errorf("no EPERM met; log:\n%s", strings.Join(log.lines, "\n"))
	}
	wantMAC(t, m, "0.0.0001", "0a:00:00:00:00:11")
}

// The same race, but zdev chose the other port: a genuine conflict, left
// as it is and reported.
func TestRaceZdevChoseAnotherPort(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	actBefore(m, grp+"layer2", func() {
		write(t, m, grp+"layer2", "1")
		write(t, m, grp+"portno", "0")
		write(t, m, grp+"online", "1")
	})
	r := applyWithin(t, newConfig(t, m), 5*time.Second, "0001,1,0a0000000011;")[0]
	if r.OK || r.Step != "layer2" || !strings.Contains(r.Error, "already online with layer2=1 portno=0, but layer2=1 portno=1 is wanted: left as it is") {
		t.Errorf("report %+v", r)
	}
}

// zdev's online lands between apply's read of online=0 and its write:
// the kernel answers EINVAL (already online); apply reads again: done.
func TestRaceOnlineAlreadyOnline(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	actBefore(m, grp+"online", func() { write(t, m, grp+"online", "1") })
	cfg, log := withLog(newConfig(t, m))
	r := applyWithin(t, cfg, 5*time.Second, "0001,0;")[0]
	if !r.OK || slices.Contains(r.Done, "online") {
		t.Fatalf("report %+v", r)
	}
	if !log.has("online: done by another actor (our write got EINVAL") {
		t.Errorf("no EINVAL met; log:\n%s", strings.Join(log.lines, "\n"))
	}
}

// Another actor's group of the same triplet wins: ours gets EINVAL (the
// devices are grouped), and the group is there when read again.
func TestRaceGroupedByAnother(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	const group = "/sys/bus/ccwgroup/drivers/qeth/group"
	actBefore(m, group, func() { write(t, m, group, "0.0.0001,0.0.0002,0.0.0003") })
	r := applyWithin(t, newConfig(t, m), 5*time.Second, "0001,0;")[0]
	if !r.OK || slices.Contains(r.Done, "group") {
		t.Fatalf("report %+v", r)
	}
}

// virtio_ccw's own asynchronous online is in flight when apply writes
// online=1: EAGAIN, retried, then done by the kernel.
func TestRaceVirtioAutoOnline(t *testing.T) {
	m := kernelmodel.New()
	m.AutoOnlineDelay = 100 * time.Millisecond
	m.AddVirtioNet("0.0.0001", "52:54:00:00:00:01")
	m.Ignore("0.0.0001")
	m.LoadModules("virtio_net")
	cfg, log := withLog(newConfig(t, m))
	r := applyWithin(t, cfg, 5*time.Second, "0001,0,0a0000000011;")[0]
	if !r.OK {
		t.Fatalf("report %+v", r)
	}
	if !slices.Contains(m.Writes(), "/sys/bus/ccw/devices/0.0.0001/online 1") {
		t.Errorf("apply never met the in-flight online: writes %v", m.Writes())
	}
	if !log.has("EAGAIN") && !log.has("done by another actor") {
		t.Errorf("log:\n%s", strings.Join(log.lines, "\n"))
	}
	wantMAC(t, m, "0.0.0001", "0a:00:00:00:00:11")
}

// udev's coldplug is loading qeth (by modalias) when apply starts:
// /sys/module/qeth exists, the driver does not yet. Apply waits for the
// driver instead of writing to a group file that is not there.
func TestRaceModuleLoadedByUdev(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	m.LoadDelay = 100 * time.Millisecond
	cfg := newConfig(t, m)
	udev := &kmod.Loader{Root: cfg.Modules.(*kmod.Loader).Root, Release: release, FS: m, Insmod: m.Insmod}
	started := make(chan struct{})
	go func() {
		close(started)
		if _, err := udev.Load("qeth"); err != nil {
			t.Errorf("udev's load: %v", err)
		}
	}()
	<-started
	for !m.Exists("/sys/module/qeth") {
		time.Sleep(time.Millisecond)
	}
	r := applyWithin(t, cfg, 5*time.Second, "0001,0;")[0]
	if !r.OK {
		t.Fatalf("report %+v", r)
	}
	for _, w := range m.Writes() {
		if strings.HasSuffix(w, "group 0.0.0001,0.0.0002,0.0.0003") {
			break
		}
		if strings.Contains(w, "ccwgroup") {
			t.Errorf("wrote %q before grouping", w)
		}
	}
}

// Two applies at once on the same NICs: both exit ok, nothing is
// reported as failed because the other was faster.
func TestTwoAppliesAtOnce(t *testing.T) {
	m := kernelmodel.New()
	m.OnlineDelay = 20 * time.Millisecond
	m.AutoOnlineDelay = 5 * time.Millisecond
	m.LoadDelay = 5 * time.Millisecond
	m.AddOSA("0.0.0001", "0a")
	m.AddVirtioNet("0.0.0010", "52:54:00:00:00:10")
	m.Ignore("0.0.0001", "0.0.0002", "0.0.0003", "0.0.0010")
	list := "0001,0,0a0000000011;0010,0,0a0000000012;"
	var wg sync.WaitGroup
	reports := make([][]Report, 2)
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i] = applyWithin(t, newConfig(t, m), 5*time.Second, list)
		}()
	}
	wg.Wait()
	for i, rs := range reports {
		for _, r := range rs {
			if !r.OK {
				t.Errorf("apply %d: %+v", i, r)
			}
		}
	}
	wantMAC(t, m, "0.0.0001", "0a:00:00:00:00:11")
	wantMAC(t, m, "0.0.0010", "0a:00:00:00:00:12")
}

// A hanging online: apply returns at the deadline (plus its grace), says
// the NIC is in progress, and the online is not aborted: it completes.
func TestDeadlineLeavesOnlineRunning(t *testing.T) { synctest.Test(t, testDeadlineLeavesOnlineRunning) }

func testDeadlineLeavesOnlineRunning(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	m.OnlineDelay = 600 * time.Millisecond
	start := time.Now()
	r := applyWithin(t, newConfig(t, m), 200*time.Millisecond, "0001,0;")[0]
	if el := time.Since(start); el != 200*time.Millisecond {
		t.Errorf("apply returned %v after its start with a 200ms deadline (fake clock)", el)
	}
	if r.OK || !r.InProgress || r.Step != "online" {
		t.Errorf("report %+v", r)
	}
	// Everything else in the bubble runs to its end: the online finishes.
	synctest.Wait()
	time.Sleep(time.Second)
	synctest.Wait()
	if v, _ := m.ReadFile(grp + "online"); strings.TrimSpace(string(v)) != "1" {
		t.Fatal("the online was aborted or never finished")
	}
}

// A listed neighbour that never appears (0100) does not hold up the qeth
// NIC next to it: overlaps are decided before the workers start.
func TestMissingNeighbourDoesNotHoldUp(t *testing.T) {
	synctest.Test(t, testMissingNeighbourDoesNotHoldUp)
}

// On the bubble's fake clock nothing of the model takes time here: the MAC
// is set at the start, not at the neighbour's deadline.
func testMissingNeighbourDoesNotHoldUp(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0101", "0a")
	var macSet atomic.Int64
	macSet.Store(-1)
	start := time.Now()
	m.BeforeSetMAC = func() { macSet.CompareAndSwap(-1, int64(time.Since(start))) }
	rs := applyWithin(t, newConfig(t, m), 2*time.Second, "0100,0;0101,0,0a0000000011;")
	if rs[0].OK || !rs[1].OK {
		t.Fatalf("reports %+v", rs)
	}
	if d := time.Duration(macSet.Load()); d != 0 {
		t.Errorf("0.0.0101's MAC set %v after the start (fake clock): it waited for its missing neighbour", d)
	}
}

// Every NIC's summary line reaches the kernel log on a default command
// line (no printk.devkmsg=on), which keeps 10 records per 5 s for each
// open file.
func TestSummaryLinesReachTheKernelLog(t *testing.T) {
	m := kernelmodel.New()
	var list strings.Builder
	for i := 0; i < 12; i++ {
		id := fmt.Sprintf("0.0.%04x", 0x100+i)
		m.AddVirtioNet(id, fmt.Sprintf("52:54:00:00:01:%02x", i))
		fmt.Fprintf(&list, "%04x,0,0a00000001%02x;", 0x100+i, i)
	}
	cfg := newConfig(t, m)
	cfg.Log = logging.New(logging.Options{Kmsg: m.OpenKmsg, Tag: "apply"})
	rs := applyWithin(t, cfg, 5*time.Second, list.String())
	got := 0
	for _, rec := range m.KernelLog() {
		if strings.Contains(rec, ": ok: virtio") {
			got++
		}
	}
	if got != len(rs) {
		t.Errorf("%d of %d summary lines in the kernel log:\n%s", got, len(rs), strings.Join(m.KernelLog(), "\n"))
	}
	// The same lines through one open file lose most: the model does
	// limit, so the count above means something.
	m2 := kernelmodel.New()
	f, err := m2.OpenKmsg()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 13; i++ {
		fmt.Fprintf(f, "<6>line %d\n", i)
	}
	f.Close()
	if n := len(m2.KernelLog()); n >= 13 {
		t.Errorf("one open file kept %d of 13 records: the model does not rate-limit", n)
	}
}

// Another apply sets the MAC between this one's read and its write: this
// one writes nothing and does not claim the change.
func TestRaceMACSetByAnother(t *testing.T) {
	m := kernelmodel.New()
	m.AddVirtioNet("0.0.0001", "52:54:00:00:00:01")
	m.LoadModules("virtio_net")
	calls := 0
	cfg := newConfig(t, m)
	// The first look-up is the step's read; the second, its write's.
	cfg.Links = &racingLinks{Model: m, before: func() {
		if calls++; calls == 2 {
			if err := m.SetHardwareAddr(2, []byte{0x0a, 0, 0, 0, 0, 0x11}); err != nil {
				t.Error(err)
			}
		}
	}}
	r := applyWithin(t, cfg, 5*time.Second, "0001,0,0a0000000011;")[0]
	if !r.OK || slices.Contains(r.Done, "mac") {
		t.Errorf("report %+v: the MAC was another's doing", r)
	}
}

// racingLinks lets another actor act just before each look-up.
type racingLinks struct {
	*kernelmodel.Model
	before func()
}

func (l *racingLinks) LinkByIndex(i int) (link.Link, error) {
	l.before()
	return l.Model.LinkByIndex(i)
}

// zdev's online is in flight when apply reads the card: the group reads
// online=0 and the card DOWN for most of it, but its members are already
// online. Apply sees the change in flight and waits instead of writing
// (its write would block on the device lock and then get EINVAL).
func TestOnlineInFlightIsSeen(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	m.LoadModules("ccwgroup", "qeth", "qeth_l2")
	m.OnlineDelay = 300 * time.Millisecond
	write(t, m, "/sys/bus/ccwgroup/drivers/qeth/group", "0.0.0001,0.0.0002,0.0.0003")
	go func() { _ = m.WriteFile(grp+"online", []byte("1")) }()
	for deadline := time.Now().Add(time.Second); ; time.Sleep(time.Millisecond) {
		if v, _ := m.ReadFile(grp + "cdev0/online"); strings.TrimSpace(string(v)) == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the members never went online")
		}
	}
	r := applyWithin(t, newConfig(t, m), 5*time.Second, "0001,0;")[0]
	if !r.OK || len(r.Done) != 0 {
		t.Fatalf("report %+v", r)
	}
	n := 0
	for _, w := range m.Writes() {
		if strings.HasPrefix(w, grp) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d writes to the card, want only zdev's online: %v", n, m.Writes())
	}
}
