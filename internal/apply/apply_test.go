package apply

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kmod"
)

const release = "6.1.0-test-s390x"

// The adapter's answers to a MAC, as link.MACError words them.
const (
	hintNotAllowed = "the adapter or hypervisor does not allow this address (user-chosen MACs not authorised, or not a locally administered unicast address)"
	hintInUse      = "the address is already registered on this adapter port (another NIC, or another partition)"
)

// newConfig wires apply to a kernel model, with the real module loader
// reading a modules.dep tree and "loading" into the model.
func newConfig(t testing.TB, m *kernelmodel.Model) Config {
	t.Helper()
	root := t.TempDir()
	if err := kernelmodel.WriteModulesTree(root, release); err != nil {
		t.Fatal(err)
	}
	return Config{
		Slow:         helperWriter{fsWriter{m}},
		FS:           m,
		Links:        m,
		Modules:      &kmod.Loader{Root: root, Release: release, FS: m, Insmod: m.Insmod},
		Events:       m.Subscribe(1024),
		RenameSettle: 100 * time.Millisecond,
	}
}

// helperWriter is the model's stand-in for the write helper that
// production uses (detach.Writer): a write blocked at our exit is finished
// by it, not abandoned.
type helperWriter struct{ fsWriter }

func (helperWriter) OutlivesCaller() bool { return true }

// failed reports whether any report is not OK.
func failed(reports []Report) bool {
	for _, r := range reports {
		if !r.OK {
			return true
		}
	}
	return false
}

func parse(t testing.TB, s string) []cmdline.NIC {
	t.Helper()
	l := cmdline.Parse(s)
	if len(l.Errors) > 0 {
		t.Fatalf("parse %q: %v", s, l.Errors)
	}
	return l.NICs
}

func applyWithin(t testing.TB, cfg Config, timeout time.Duration, list string) []Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return Apply(ctx, cfg, parse(t, list))
}

func wantMAC(t *testing.T, m *kernelmodel.Model, busID, want string) {
	t.Helper()
	got, ok := m.MAC(busID)
	if !ok || got.String() != want {
		t.Errorf("%s: MAC = %v (netdev %v), want %s", busID, got, ok, want)
	}
}

func TestApplyFreshOSA(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	cfg := newConfig(t, m)
	r := applyWithin(t, cfg, 5*time.Second, "0001,1,0a0000000011;")[0]
	if !r.OK {
		t.Fatalf("report %+v", r)
	}
	if r.Kind != KindQeth || r.Interface != "eth0" || !slices.Equal(r.Done, []string{"modules", "group", "layer2", "portno", "online", "mac"}) {
		t.Errorf("report %+v", r)
	}
	// chzdev's order: group, layer2, portno, online.
	want := []string{
		"/sys/bus/ccwgroup/drivers/qeth/group 0.0.0001,0.0.0002,0.0.0003",
		"/sys/bus/ccwgroup/devices/0.0.0001/layer2 1",
		"/sys/bus/ccwgroup/devices/0.0.0001/portno 1",
		"/sys/bus/ccwgroup/devices/0.0.0001/online 1",
	}
	if got := m.Writes(); !slices.Equal(got, want) {
		t.Errorf("writes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantMAC(t, m, "0.0.0001", "0a:00:00:00:00:11")
	for _, mod := range []string{"ccwgroup", "qeth", "qeth_l2", "bridge", "stp", "llc"} {
		if !m.Loaded(mod) {
			t.Errorf("module %s not loaded", mod)
		}
	}
}

func TestApplyTwiceChangesNothing(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	m.AddVirtioNet("0.0.0010", "52:54:00:00:00:10")
	cfg := newConfig(t, m)
	list := "0001,0,0a0000000011;0010,0,0e1122334455;"
	if rs := applyWithin(t, cfg, 5*time.Second, list); failed(rs) {
		t.Fatalf("first apply: %+v", rs)
	}
	before := len(m.Writes())
	rs := applyWithin(t, cfg, 5*time.Second, list)
	for _, r := range rs {
		if !r.OK || len(r.Done) != 0 {
			t.Errorf("second apply: %+v", r)
		}
	}
	if w := m.Writes()[before:]; len(w) != 0 {
		t.Errorf("second apply wrote %v", w)
	}
	for _, s := range ReadStatus(m, parse(t, list)) {
		if !s.OK {
			t.Errorf("status %+v", s)
		}
	}
}

func TestApplyAlreadyConfiguredElsewhere(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	m.LoadModules("ccwgroup", "qeth", "qeth_l2")
	m.SetGroupState("0.0.0001", 1, 0, true)
	r := applyWithin(t, newConfig(t, m), 5*time.Second, "0001,0;")[0]
	if !r.OK || len(r.Done) != 0 || len(m.Writes()) != 0 {
		t.Errorf("report %+v, writes %v", r, m.Writes())
	}
}

func TestApplyDrift(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	m.LoadModules("ccwgroup", "qeth", "qeth_l2")
	m.SetGroupState("0.0.0001", 1, 1, true)
	r := applyWithin(t, newConfig(t, m), 5*time.Second, "0001,0,0a0000000011;")[0]
	if r.OK || r.Step != "layer2" || !strings.Contains(r.Error, "already online with layer2=1 portno=1, but layer2=1 portno=0 is wanted: left as it is") {
		t.Errorf("report %+v", r)
	}
	if len(m.Writes()) != 0 {
		t.Errorf("drift must leave the device alone, wrote %v", m.Writes())
	}
	wantMAC(t, m, "0.0.0001", "00:0a:00:00:00:01") // not changed either
}

func TestApplyMissingDevice(t *testing.T) { synctest.Test(t, testApplyMissingDevice) }

// On the bubble's fake clock apply returns exactly at its deadline.
func testApplyMissingDevice(t *testing.T) {
	m := kernelmodel.New()
	m.AddVirtioNet("0.0.0004", "52:54:00:00:00:04")
	start := time.Now()
	rs := applyWithin(t, newConfig(t, m), 300*time.Millisecond, "0100,0,0a0000000022;0004,0,0a0000000044;")
	if el := time.Since(start); el != 300*time.Millisecond {
		t.Errorf("apply returned %v after its start with a 300ms deadline", el)
	}
	if r := rs[0]; r.OK || r.Kind != KindMissing || r.Step != "free" ||
		r.Error != "device 0.0.0100 not found by the deadline (not in /sys/bus/ccw/devices; cio_ignore does not list it): is the devno right and the device attached to this partition?" {
		t.Errorf("missing NIC: %+v", r)
	}
	if r := rs[1]; !r.OK {
		t.Errorf("virtio NIC next to the missing one: %+v", r)
	}
	wantMAC(t, m, "0.0.0004", "0a:00:00:00:00:44")
	// cio_ignore does not list it: nothing to free; one settle, so that its
	// absence is final.
	if w := m.Writes(); !slices.Equal(w, []string{"/proc/cio_settle 1"}) {
		t.Errorf("writes %q, want only one cio_settle", w)
	}
}

// A wrong devno costs seconds, not the deadline: after our settle the
// channel subsystem has sensed every device, so a device still absent
// absentGrace later is reported then (fake clock: exact).
func TestApplyMissingDeviceFailsAfterSettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, ignored := range []bool{false, true} {
			m := kernelmodel.New()
			m.AddVirtioNet("0.0.0004", "52:54:00:00:00:04")
			if ignored {
				m.Ignore("0.0.0100")
			}
			start := time.Now()
			rs := applyWithin(t, newConfig(t, m), time.Minute, "0100,0,0a0000000022;0004,0,0a0000000044;")
			if el := time.Since(start); el < absentGrace || el > absentGrace+250*time.Millisecond {
				t.Errorf("ignored=%v: apply returned %v after its start, want %v after the settle (+ one poll)", ignored, el, absentGrace)
			}
			why := "; cio_ignore does not list it"
			if ignored {
				why = ", even after freeing it from cio_ignore"
			}
			want := "device 0.0.0100 not found (not in /sys/bus/ccw/devices" + why + "; the channel subsystem has sensed every device): is the devno right and the device attached to this partition?"
			if r := rs[0]; r.OK || r.InProgress || r.Step != "free" || r.Error != want {
				t.Errorf("ignored=%v: missing NIC %+v, want %q", ignored, r, want)
			}
			if !rs[1].OK {
				t.Errorf("ignored=%v: the NIC beside it: %+v", ignored, rs[1])
			}
		}
	})
}

// A worker that is late past the deadline without a write of its own in
// the kernel (its CPU starved: seen under Hercules) is waited for: a
// missing device is reported missing (failed), not "in progress", which
// the unit would count as success.
func TestApplyLateWorkerIsNotInProgress(t *testing.T) {
	m := kernelmodel.New()
	var once sync.Once
	m.BeforeRead = func(file string) {
		if strings.HasSuffix(file, "/0.0.0100/cutype") {
			once.Do(func() { time.Sleep(600 * time.Millisecond) })
		}
	}
	cfg := newConfig(t, m)
	rs := applyWithin(t, cfg, 300*time.Millisecond, "0100,0;")
	if r := rs[0]; r.OK || r.InProgress || r.Step != "free" || !strings.Contains(r.Error, "not found by the deadline") {
		t.Errorf("late worker: %+v", r)
	}
}

func TestApplyCIOIgnored(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	m.AddVirtioNet("0.0.0010", "52:54:00:00:00:10")
	m.Ignore("0.0.0001", "0.0.0002", "0.0.0003", "0.0.0010")
	rs := applyWithin(t, newConfig(t, m), 5*time.Second, "0001,0,0a0000000011;0010,0,0e1122334455;")
	for _, r := range rs {
		if !r.OK || r.Done[0] != "free" {
			t.Errorf("report %+v", r)
		}
	}
	// Each free is followed by a settle (the NICs run concurrently, so
	// their writes interleave).
	var frees []string
	settles := 0
	for _, w := range m.Writes() {
		if f, ok := strings.CutPrefix(w, "/proc/cio_ignore "); ok {
			frees = append(frees, f)
		}
		if w == "/proc/cio_settle 1" {
			settles++
		}
	}
	slices.Sort(frees)
	// The listed devices in one write (one settle, not one per NIC), then
	// the qeth NIC's write and data devices.
	if want := []string{"free 0.0.0001,0.0.0010", "free 0.0.0002-0.0.0003"}; !slices.Equal(frees, want) || settles != 2 {
		t.Errorf("frees %q and %d settles, want %q and 2 settles", frees, settles, want)
	}
	wantMAC(t, m, "0.0.0001", "0a:00:00:00:00:11")
	wantMAC(t, m, "0.0.0010", "0e:11:22:33:44:55")
}

func TestApplyVirtio(t *testing.T) {
	m := kernelmodel.New()
	m.AddVirtioNet("0.0.0001", "52:54:00:00:00:01")
	m.AddVirtioNet("0.0.0004", "52:54:00:00:00:04")
	rs := applyWithin(t, newConfig(t, m), 5*time.Second, "0001,1,0a0000000011;0004,0;")
	if !rs[0].OK || rs[0].Kind != KindVirtio || !slices.Equal(rs[0].Done, []string{"modules", "mac"}) && !slices.Equal(rs[0].Done, []string{"mac"}) {
		t.Errorf("report %+v", rs[0])
	}
	if !rs[1].OK {
		t.Errorf("report %+v", rs[1])
	}
	wantMAC(t, m, "0.0.0001", "0a:00:00:00:00:11")
	wantMAC(t, m, "0.0.0004", "52:54:00:00:00:04")
	if !m.Loaded("virtio_net") || !m.Loaded("failover") {
		t.Error("virtio_net and its dependencies not loaded")
	}
}

func TestApplyFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(m *kernelmodel.Model)
		list  string
		step  string
		err   string
	}{
		{name: "wrong CU type", list: "0001,0;",
			setup: func(m *kernelmodel.Model) { m.AddCCW("0.0.0001", "3390/0c", "0a") },
			step:  "free", err: "device 0.0.0001 has CU type 3390/0c: not an OSA (1731/01), HiperSockets (1731/05) or virtio-net (3832/01) device"},
		{name: "triplet member of another CU type", list: "0001,0;",
			setup: func(m *kernelmodel.Model) {
				m.AddCCW("0.0.0001", "1731/01", "0a")
				m.AddCCW("0.0.0002", "1731/01", "0a")
				m.AddCCW("0.0.0003", "3390/0c", "0a")
			},
			step: "group", err: "data device 0.0.0003 has CU type 3390/0c, read device 0.0.0001 has 1731/01: they are not one qeth NIC"},
		{name: "triplet on two CHPIDs", list: "0001,0;",
			setup: func(m *kernelmodel.Model) {
				m.AddCCW("0.0.0001", "1731/01", "0a")
				m.AddCCW("0.0.0002", "1731/01", "0b")
				m.AddCCW("0.0.0003", "1731/01", "0a")
			},
			step: "group", err: `write device 0.0.0002 is on CHPIDs "0b 00 00 00 00 00 00 00", read device 0.0.0001 on "0a 00 00 00 00 00 00 00": they are not one qeth NIC`},
		{name: "triplet with a missing member", list: "0001,0;",
			setup: func(m *kernelmodel.Model) {
				m.AddCCW("0.0.0001", "1731/01", "0a")
				m.AddCCW("0.0.0002", "1731/01", "0a")
			},
			step: "free", err: "data device 0.0.0003 of qeth NIC 0.0.0001 not found by the deadline: a qeth NIC needs read, write and data devices 0.0.0001,0.0.0002,0.0.0003"},
		{name: "group refused", list: "0001,0;",
			setup: func(m *kernelmodel.Model) { m.AddOSA("0.0.0001", "0a"); m.Fail("group", "0.0.0001", unix.EINVAL) },
			step:  "group", err: `group 0.0.0001: write "0.0.0001,0.0.0002,0.0.0003" to /sys/bus/ccwgroup/drivers/qeth/group: EINVAL (invalid argument): a device of the triplet is missing, cio_ignored, already grouped or not an OSA device`},
		{name: "layer2 refused (enforced layer)", list: "0001,0;",
			setup: func(m *kernelmodel.Model) { m.AddOSA("0.0.0001", "0a"); m.Fail("layer2", "0.0.0001", unix.EOPNOTSUPP) },
			step:  "layer2", err: `layer2 0.0.0001: write "1" to /sys/bus/ccwgroup/devices/0.0.0001/layer2: EOPNOTSUPP (operation not supported): the layer is enforced by the hypervisor or adapter (z/VM VSWITCH, OSM) and cannot be chosen`},
		{name: "layer2 while online", list: "0001,0;",
			setup: func(m *kernelmodel.Model) { m.AddOSA("0.0.0001", "0a"); m.Fail("layer2", "0.0.0001", unix.EPERM) },
			step:  "layer2", err: `layer2 0.0.0001: write "1" to /sys/bus/ccwgroup/devices/0.0.0001/layer2: EPERM (operation not permitted): the device is online; this attribute can only change while it is offline`},
		{name: "port beyond the adapter's", list: "0001,1;",
			setup: func(m *kernelmodel.Model) { m.AddOSA("0.0.0001", "0a"); m.Ports = 1 },
			step:  "portno", err: `portno 0.0.0001: write "1" to /sys/bus/ccwgroup/devices/0.0.0001/portno: EINVAL (invalid argument): the adapter has no port 1`},
		{name: "online failing", list: "0001,0;",
			setup: func(m *kernelmodel.Model) { m.AddOSA("0.0.0001", "0a"); m.Fail("online", "0.0.0001", unix.EIO) },
			step:  "online", err: `online 0.0.0001: write "1" to /sys/bus/ccwgroup/devices/0.0.0001/online: EIO (input/output error): the adapter did not come up: check that the CHPID is online and the adapter port is cabled and active`},
		{name: "MAC not authorised (>= 5.7)", list: "0001,0,0a0000000011;",
			setup: func(m *kernelmodel.Model) { m.AddOSA("0.0.0001", "0a"); m.Fail("mac", "0.0.0001", unix.EADDRNOTAVAIL) },
			step:  "mac", err: "set MAC of eth0 (index 2) to 0a:00:00:00:00:11: netlink RTM_SETLINK: EADDRNOTAVAIL (cannot assign requested address): " + hintNotAllowed},
		{name: "MAC not authorised (<= 5.6)", list: "0001,0,0a0000000011;",
			setup: func(m *kernelmodel.Model) { m.AddOSA("0.0.0001", "0a"); m.Fail("mac", "0.0.0001", unix.EPERM) },
			step:  "mac", err: "set MAC of eth0 (index 2) to 0a:00:00:00:00:11: netlink RTM_SETLINK: EPERM (operation not permitted): " + hintNotAllowed + "; or dpm-netconf lacks CAP_NET_ADMIN"},
		{name: "MAC in use (<= 5.6)", list: "0001,0,0a0000000011;",
			setup: func(m *kernelmodel.Model) { m.AddOSA("0.0.0001", "0a"); m.Fail("mac", "0.0.0001", unix.EEXIST) },
			step:  "mac", err: "set MAC of eth0 (index 2) to 0a:00:00:00:00:11: netlink RTM_SETLINK: EEXIST (file exists): " + hintInUse},
		{name: "MAC table full", list: "0001,0,0a0000000011;",
			setup: func(m *kernelmodel.Model) { m.AddOSA("0.0.0001", "0a"); m.Fail("mac", "0.0.0001", unix.ENOSPC) },
			step:  "mac", err: "set MAC of eth0 (index 2) to 0a:00:00:00:00:11: netlink RTM_SETLINK: ENOSPC (no space left on device): "},
		{name: "MAC on OSM", list: "0001,0,0a0000000011;",
			setup: func(m *kernelmodel.Model) { m.AddOSA("0.0.0001", "0a"); m.Fail("mac", "0.0.0001", unix.EOPNOTSUPP) },
			step:  "mac", err: "set MAC of eth0 (index 2) to 0a:00:00:00:00:11: netlink RTM_SETLINK: EOPNOTSUPP (operation not supported): "},
		{name: "overlapping triplets", list: "0001,0;0002,0;",
			setup: func(m *kernelmodel.Model) { m.AddOSA("0.0.0001", "0a"); m.AddCCW("0.0.0004", "1731/01", "0a") },
			step:  "overlap", err: "NIC 0.0.0002 is device 0.0.0002 of qeth NIC 0.0.0001 (devices 0.0.0001-0.0.0003) listed earlier at offset 0; the earlier one stands"},
		{name: "qeth NIC over an earlier virtio NIC", list: "0002,0;0001,0;",
			setup: func(m *kernelmodel.Model) {
				m.AddOSA("0.0.0001", "0a")
				m.AddVirtioNet("0.0.0004", "52:54:00:00:00:04")
			},
			step: "overlap", err: "qeth NIC 0.0.0001 (devices 0.0.0001-0.0.0003) overlaps NIC 0.0.0002 listed earlier at offset 0; the earlier one stands"},
		{name: "member grouped elsewhere", list: "0002,0;",
			setup: func(m *kernelmodel.Model) {
				m.AddOSA("0.0.0001", "0a")
				m.AddCCW("0.0.0004", "1731/01", "0a")
				m.LoadModules("ccwgroup", "qeth", "qeth_l2")
				m.SetGroupState("0.0.0001", 1, 0, false)
			},
			step: "group", err: "read device 0.0.0002 of qeth NIC 0.0.0002 is already in group 0.0.0001: the devices 0.0.0002,0.0.0003,0.0.0004 cannot form NIC 0.0.0002 (left as it is)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := kernelmodel.New()
			tc.setup(m)
			rs := applyWithin(t, newConfig(t, m), 500*time.Millisecond, tc.list)
			r := rs[len(rs)-1]
			if r.OK || r.Step != tc.step || !strings.HasPrefix(r.Error, tc.err) {
				t.Errorf("report %+v\nwant step %q error:\n%s", r, tc.step, tc.err)
			}
		})
	}
}

func TestApplyModuleMissing(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	cfg := newConfig(t, m)
	cfg.Modules = &kmod.Loader{Root: t.TempDir(), Release: release, FS: m, Insmod: m.Insmod}
	r := applyWithin(t, cfg, time.Second, "0001,0;")[0]
	if r.OK || r.Step != "modules" || !strings.Contains(r.Error, "load module ccwgroup: read ") || !strings.Contains(r.Error, "modules.dep") {
		t.Errorf("report %+v", r)
	}
	if len(m.Writes()) != 0 {
		t.Errorf("wrote %v", m.Writes())
	}
}

func TestApplyDeadline(t *testing.T) { synctest.Test(t, testApplyDeadline) }

func testApplyDeadline(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	m.OnlineDelay = 3 * time.Second // a hanging adapter
	start := time.Now()
	r := applyWithin(t, newConfig(t, m), 200*time.Millisecond, "0001,0;")[0]
	if el := time.Since(start); el != 200*time.Millisecond {
		t.Errorf("apply returned %v after its start with a 200ms deadline (fake clock)", el)
	}
	if r.OK || !r.InProgress || r.Step != "online" || r.Error != "deadline reached (context deadline exceeded) while at step online; our write goes on in a helper process: the kernel is still working on it" {
		t.Errorf("report %+v", r)
	}
	// Without a helper the write is abandoned at our exit: FAILED, naming it.
	m2 := kernelmodel.New()
	m2.AddOSA("0.0.0001", "0a")
	m2.OnlineDelay = 3 * time.Second
	cfg := newConfig(t, m2)
	cfg.Slow = fsWriter{m2}
	r = applyWithin(t, cfg, 200*time.Millisecond, "0001,0;")[0]
	if r.OK || r.InProgress || r.Step != "online" || r.Error != "stuck in a write of 1 to /sys/bus/ccwgroup/devices/0.0.0001/online at the deadline; it is abandoned when dpm-netconf exits" {
		t.Errorf("no helper: report %+v", r)
	}
	time.Sleep(3 * time.Second) // the adapter answers at last: the bubble ends
	synctest.Wait()
}

func TestApplyTwelveNICs(t *testing.T) {
	m := kernelmodel.New()
	m.OnlineDelay = 50 * time.Millisecond
	var list strings.Builder
	for i := 0; i < 12; i++ {
		m.AddOSA(fmt.Sprintf("0.0.%04x", 0x100+4*i), fmt.Sprintf("%02x", i))
		fmt.Fprintf(&list, "%04x,%d,0a00000000%02x;", 0x100+4*i, i%2, i)
	}
	rs := applyWithin(t, newConfig(t, m), 5*time.Second, list.String())
	if len(rs) != 12 {
		t.Fatalf("%d reports", len(rs))
	}
	for i, r := range rs {
		if !r.OK {
			t.Errorf("report %+v", r)
		}
		wantMAC(t, m, r.BusID, fmt.Sprintf("0a:00:00:00:00:%02x", i))
	}
	for _, s := range ReadStatus(m, parse(t, list.String())) {
		if !s.OK {
			t.Errorf("status %+v", s)
		}
	}
}

func TestApplyRenameRace(t *testing.T) {
	m := kernelmodel.New()
	m.AddVirtioNet("0.0.0001", "52:54:00:00:00:01")
	m.LoadModules("virtio_net")
	renamed := false
	// udev renames eth0 to enc1 after sysfs was read and before the set:
	// the set goes by index, so it still lands on the right interface.
	m.BeforeSetMAC = func() {
		if !renamed {
			renamed = true
			m.Rename("eth0", "enc1")
		}
	}
	r := applyWithin(t, newConfig(t, m), 5*time.Second, "0001,0,0a0000000011;")[0]
	if !r.OK {
		t.Fatalf("report %+v", r)
	}
	wantMAC(t, m, "0.0.0001", "0a:00:00:00:00:11")
}

func TestApplyNamespaceMismatch(t *testing.T) {
	m := kernelmodel.New()
	m.AddVirtioNet("0.0.0001", "52:54:00:00:00:01")
	other := kernelmodel.New() // another network namespace: index 2 is another link
	other.AddVirtioNet("0.0.0009", "52:54:00:00:00:09")
	other.LoadModules("virtio_net")
	other.Rename("eth0", "wlan0")
	cfg := newConfig(t, m)
	cfg.Links = other
	r := applyWithin(t, cfg, 5*time.Second, "0001,0,0a0000000011;")[0]
	if r.OK || r.Step != "mac" || r.Error != "sysfs and netlink disagree on this interface: sysfs has eth0 at index 2, netlink has link wlan0 there (is --root this network namespace's /sys?)" {
		t.Errorf("report %+v", r)
	}
	if mac, _ := other.MAC("0.0.0009"); mac.String() != "52:54:00:00:00:09" {
		t.Errorf("the other namespace's link was changed to %s", mac)
	}
}

func TestSetMAC(t *testing.T) {
	m := kernelmodel.New()
	m.AddVirtioNet("0.0.0001", "52:54:00:00:00:01")
	m.AddVirtioNet("0.0.0004", "52:54:00:00:00:04")
	m.AddOSA("0.0.0010", "0a")
	m.LoadModules("virtio_net")
	nics := parse(t, "0001,0,0a0000000011;0004,0,0a0000000044;0010,0,0a0000000010")
	ctx := context.Background()
	cfg := newConfig(t, m)
	if r := SetMAC(ctx, cfg, nics[0]); !r.OK || !slices.Equal(r.Done, []string{"mac"}) {
		t.Errorf("setmac: %+v", r)
	}
	wantMAC(t, m, "0.0.0001", "0a:00:00:00:00:11")
	wantMAC(t, m, "0.0.0004", "52:54:00:00:00:04") // only the one asked for
	if len(m.Writes()) != 0 {
		t.Errorf("setmac wrote %v", m.Writes())
	}
	r := SetMAC(ctx, newConfig(t, m), nics[2])
	if r.OK || r.Error != "qeth device 0.0.0010 is not grouped: run dpm-netconf apply first" {
		t.Errorf("setmac on an ungrouped qeth device: %+v", r)
	}
}

func TestApplySequentialSameResult(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	m.AddOSA("0.0.0004", "0b")
	cfg := newConfig(t, m)
	cfg.Sequential = true
	for _, r := range applyWithin(t, cfg, 5*time.Second, "0001,0,0a0000000011;0004,1;") {
		if !r.OK {
			t.Errorf("report %+v", r)
		}
	}
}

func TestStatusBeforeApply(t *testing.T) {
	m := kernelmodel.New()
	m.AddOSA("0.0.0001", "0a")
	m.AddVirtioNet("0.0.0004", "52:54:00:00:00:04")
	m.LoadModules("virtio_net")
	st := ReadStatus(m, parse(t, "0001,1,0a0000000011;0004,0,0a0000000044;0100,0;"))
	want := []struct {
		kind    Kind
		differs string
	}{
		{KindQeth, "not grouped"},
		{KindVirtio, "MAC 52:54:00:00:00:04, want 0a:00:00:00:00:44"},
		{KindMissing, "no device 0.0.0100 (absent or cio_ignored)"},
	}
	for i, w := range want {
		if st[i].OK || st[i].Kind != w.kind || strings.Join(st[i].Differs, "; ") != w.differs {
			t.Errorf("status %+v, want kind %s differs %q", st[i], w.kind, w.differs)
		}
	}
}

// The initramfs run records the devices it found absent after its settle;
// the real root's run reports such a device, still absent, at once (the
// boot pays for a wrong devno once), and one that came meanwhile is
// configured.
func TestAbsentRecordedForTheRealRoot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := kernelmodel.New()
		m.AddVirtioNet("0.0.0004", "52:54:00:00:00:04")
		record := filepath.Join(t.TempDir(), "run/dpm-netconf/absent")
		cfg := newConfig(t, m)
		cfg.AbsentFile, cfg.RecordAbsent = record, true
		list := "0100,0;0200,0;0004,0;"
		applyWithin(t, cfg, time.Minute, list)
		if b, err := os.ReadFile(record); err != nil || string(b) != "0.0.0100\n0.0.0200\n" {
			t.Fatalf("record %q, %v", b, err)
		}
		m.AddVirtioNet("0.0.0200", "52:54:00:00:02:00") // attached meanwhile
		cfg = newConfig(t, m)
		cfg.AbsentFile = record
		start := time.Now()
		rs := applyWithin(t, cfg, time.Minute, list)
		if el := time.Since(start); el >= absentGrace {
			t.Errorf("the real root's run took %v (fake clock) for a device the initramfs found absent", el)
		}
		if rs[0].OK || !strings.Contains(rs[0].Error, "the channel subsystem has sensed every device") || !rs[1].OK || !rs[2].OK {
			t.Errorf("reports %+v", rs)
		}
	})
}
