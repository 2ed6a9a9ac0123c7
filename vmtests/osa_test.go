package vmtests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/vmtests/vm"
)

// The OSA tests boot Debian's s390x kernel under SDL Hyperion (Hercules
// 4.x), whose QETH device the real qeth driver drives: group, layer2,
// portno, online and MAC registration with the (emulated) adapter. QEMU
// has no OSA. Hyperion is not in Debian's archive, so CI cannot have it:
// without it these tests skip and say why — the one exception to running
// everything in CI. `make vmtest-osa` runs them.

// osaBoot is one Hercules boot running a scenario script in the guest.
type osaBoot struct {
	kernelArgs string
	qeths      []vm.QETH
	script     string            // dpmprobe script, run as the guest's uinit
	files      map[string]string // more files for the initramfs
	modules    []string          // more module files (paths below lib/modules/<release>/)
	actions    []vm.Action       // Hercules commands at the script's marks
}

func requireHercules(t *testing.T) (*vm.Env, string) {
	t.Helper()
	e := requireVM(t)
	h, version, err := vm.FindHercules()
	if err != nil {
		t.Skipf("no SDL Hyperion (not in Debian's archive, so not in CI): %v; run: make vmtest-osa with hercules 4.x on PATH or DPM_HERCULES (docs/testing.md)", err)
	}
	t.Logf("emulator: %s, Hercules %s", h, version)
	return e, h
}

// run boots and returns the output of each script step, in order.
func (b osaBoot) run(t *testing.T) []string {
	t.Helper()
	steps, _ := b.runConsole(t)
	return steps
}

// runConsole is run, also returning the whole console (Hercules' own
// messages with the guest's).
func (b osaBoot) runConsole(t *testing.T) ([]string, string) {
	t.Helper()
	e, h := requireHercules(t)
	// dpmprobe as the image's uinit runs the script, then powers off.
	files, err := e.ProbeAsUinit(b.script)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range b.files {
		files[k] = []byte(v)
	}
	for _, m := range b.modules {
		data, err := os.ReadFile(filepath.Join(e.KernelDir, "root/lib/modules", e.Release, m))
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Join("lib/modules", e.Release, m)] = data
	}
	initrd, err := e.InitramfsWith(strings.ReplaceAll(t.Name(), "/", "_")+".cpio", files)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(consoleDir(), strings.ReplaceAll(t.Name(), "/", "_")+".console")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The kernel's defaults, /dev/kmsg's rate limit included: nothing here
	// depends on dpm-netconf's kernel-log lines, the probe's run step
	// reports its stdout and stderr.
	res, err := e.Hercules(ctx, h, initrd, b.kernelArgs, b.qeths, logf, b.actions...)
	if err != nil {
		t.Fatalf("%v (console in %s):\n%s", err, logPath, tail(res.Console, 40))
	}
	t.Logf("Hercules boot to scenario end: %v (console in %s)", res.Took.Round(100*time.Millisecond), logPath)
	return vm.Steps(res.Console), res.Console
}

func tail(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func stepRun(t *testing.T, step string) (int, float64) {
	t.Helper()
	code, ms, err := vm.ParseRun(step)
	if err != nil {
		t.Fatalf("%v in step:\n%s", err, step)
	}
	return code, ms
}

func stepReport(t *testing.T, step string) vm.Report {
	t.Helper()
	r, err := vm.ParseReport(step)
	if err != nil {
		t.Fatalf("%v in step:\n%s", err, step)
	}
	return r
}

// wantOSA checks a qeth NIC as the real driver reports it.
func wantOSA(t *testing.T, r vm.Report, busID, mac string) {
	t.Helper()
	for _, n := range r.NICs {
		if n.BusID != busID {
			continue
		}
		if n.Kind != "qeth" || n.Online != "1" || n.Layer2 != "1" || n.Port != "0" || (n.State != "SOFTSETUP" && n.State != "UP") {
			t.Errorf("%s: %+v, want qeth online layer2=1 port 0 in SOFTSETUP or UP", busID, n)
		}
		if n.SysfsMAC != mac || n.NetlinkMAC != mac {
			t.Errorf("%s: MAC sysfs %s netlink %s, want %s", busID, n.SysfsMAC, n.NetlinkMAC, mac)
		}
		return
	}
	t.Errorf("%s has no interface: %+v", busID, r)
}

var threeOSA = []vm.QETH{{Devno: "0600", CHPID: "00"}, {Devno: "0700", CHPID: "01"}, {Devno: "0800", CHPID: "02"}}

const threeOSAList = "0600,0,0a0000000600;0700,0,0a0000000700;0800,0,0a0000000800;"

// Fresh devices, then apply again (idempotent).
func TestOSAFresh(t *testing.T) {
	steps := osaBoot{
		kernelArgs: threeOSAList,
		qeths:      threeOSA,
		script:     "run dpm-netconf apply\nreport\nrun dpm-netconf apply\nreport\n",
	}.run(t)
	if code, ms := stepRun(t, steps[0]); code != 0 {
		t.Errorf("apply exit %d:\n%s", code, steps[0])
	} else {
		t.Logf("3 fresh OSA NICs: apply exec-to-exit %.1f ms (with module loading)", ms)
	}
	r := stepReport(t, steps[1])
	for _, d := range []string{"0600", "0700", "0800"} {
		wantOSA(t, r, "0.0."+d, "0a:00:00:00:"+d[:2]+":"+d[2:])
	}
	if code, _ := stepRun(t, steps[2]); code != 0 {
		t.Errorf("second apply (exit %d):\n%s", code, steps[2])
	}
	wantUnchanged(t, steps[2], "apply", "0.0.0600", "0.0.0700", "0.0.0800")
	if fmt.Sprint(stepReport(t, steps[3]).NICs) != fmt.Sprint(r.NICs) {
		t.Errorf("second apply changed the NICs")
	}
}

func TestOSACIOIgnored(t *testing.T) {
	steps := osaBoot{
		kernelArgs: "cio_ignore=all,!condev 0600,0,0a0000000600;0700,0,0a0000000700;",
		qeths:      threeOSA,
		script:     "report\nrun dpm-netconf apply\nreport\n",
	}.run(t)
	before := stepReport(t, steps[0])
	if len(before.CCW) != 0 {
		t.Errorf("devices visible before apply: %v", before.CCW)
	}
	if code, _ := stepRun(t, steps[1]); code != 0 {
		t.Errorf("apply:\n%s", steps[1])
	}
	r := stepReport(t, steps[2])
	wantOSA(t, r, "0.0.0600", "0a:00:00:00:06:00")
	wantOSA(t, r, "0.0.0700", "0a:00:00:00:07:00")
	for _, id := range r.CCW {
		if strings.HasPrefix(id, "0.0.08") {
			t.Errorf("unlisted %s was freed", id)
		}
	}
}

// The emulated adapter has one port: port 1 is refused with EINVAL, which
// must read as "no such port"; the other NIC still comes up.
func TestOSAPortOne(t *testing.T) {
	steps := osaBoot{
		kernelArgs: "0600,1,0a0000000600;0700,0,0a0000000700;",
		qeths:      threeOSA[:2],
		script:     "run dpm-netconf apply\nreport\n",
	}.run(t)
	code, _ := stepRun(t, steps[0])
	want := vm.ErrorPrefix("apply") + `0.0.0600: FAILED at portno: portno 0.0.0600: write "1" to /sys/bus/ccwgroup/devices/0.0.0600/portno: EINVAL (invalid argument): the adapter has no port 1`
	if code != 1 || !strings.Contains(steps[0], want) {
		t.Errorf("apply exit %d, want 1 and %q:\n%s", code, want, steps[0])
	}
	wantOSA(t, stepReport(t, steps[1]), "0.0.0700", "0a:00:00:00:07:00")
}

// A device already online in another layer (as another tool or an earlier
// boot left it) is left alone and reported.
func TestOSADrift(t *testing.T) {
	e := requireVM(t)
	l3 := moduleFile(t, e, "qeth_l3")
	steps := osaBoot{
		kernelArgs: "0600,0,0a0000000600;0700,0,0a0000000700;",
		qeths:      threeOSA[:2],
		files:      map[string]string{"etc/dpm-0700": "0700,0,0a0000000700;"},
		modules:    []string{l3},
		script: strings.Join([]string{
			"run dpm-netconf apply --cmdline /etc/dpm-0700",
			"insmod /lib/modules/" + e.Release + "/" + l3,
			"write /sys/bus/ccwgroup/drivers/qeth/group 0.0.0600,0.0.0601,0.0.0602",
			"write /sys/bus/ccwgroup/devices/0.0.0600/layer2 0",
			"write /sys/bus/ccwgroup/devices/0.0.0600/online 1",
			"run dpm-netconf apply",
			"report",
		}, "\n"),
	}.run(t)
	for i, s := range steps[2:5] {
		if !strings.Contains(s, ": <nil>") {
			t.Fatalf("setting up the drift, step %d failed:\n%s", i+2, s)
		}
	}
	code, _ := stepRun(t, steps[5])
	// Whichever step reads the card's state first reports the drift.
	want := regexp.QuoteMeta(vm.ErrorPrefix("apply")+"0.0.0600: FAILED at ") + `\w+: ` +
		regexp.QuoteMeta("device 0.0.0600 is already online with layer2=0 portno=0, but layer2=1 portno=0 is wanted: left as it is")
	if code != 1 || !regexp.MustCompile(want).MatchString(steps[5]) {
		t.Errorf("apply exit %d, want 1 and %s:\n%s", code, want, steps[5])
	}
	r := stepReport(t, steps[6])
	for _, g := range r.Groups {
		if g.BusID == "0.0.0600" && (g.Layer2 != "0" || g.Online != "1") {
			t.Errorf("the drifted device was changed: %+v", g)
		}
	}
	wantOSA(t, r, "0.0.0700", "0a:00:00:00:07:00")
}

// setmac with the udev path of a qeth interface.
func TestOSASetmac(t *testing.T) {
	steps := osaBoot{
		kernelArgs: "0600,0,0a0000000600;",
		qeths:      threeOSA[:1],
		files:      map[string]string{"etc/dpm-nomac": "0600,0;"},
		script:     "run dpm-netconf apply --cmdline /etc/dpm-nomac\nreport\nrun dpm-netconf setmac /devices/qeth/0.0.0600/net/eth0\nreport\n",
	}.run(t)
	if code, _ := stepRun(t, steps[0]); code != 0 {
		t.Fatalf("apply without MAC:\n%s", steps[0])
	}
	if r := stepReport(t, steps[1]); len(r.NICs) != 1 || r.NICs[0].Interface != "eth0" || r.NICs[0].SysfsMAC == "0a:00:00:00:06:00" {
		t.Fatalf("before setmac: %+v", r.NICs)
	}
	if code, _ := stepRun(t, steps[2]); code != 0 {
		t.Errorf("setmac:\n%s", steps[2])
	}
	wantOSA(t, stepReport(t, steps[3]), "0.0.0600", "0a:00:00:00:06:00")
}

// Time from dpm-netconf start to all NICs online, 1 and 3 OSA devices,
// concurrent and --sequential, on fresh (ungrouped) devices each time, and
// the baseline: the same four writes and the MAC by a plain loop (dpmprobe
// plain) in the same guest. It logs figures and asserts no time.
func TestOSATiming(t *testing.T) {
	teardown := func(ids ...string) string {
		var s []string
		for _, id := range ids {
			s = append(s, "write /sys/bus/ccwgroup/devices/0.0."+id+"/online 0", "write /sys/bus/ccwgroup/devices/0.0."+id+"/ungroup 1")
		}
		return strings.Join(s, "\n")
	}
	script := strings.Join([]string{
		"run dpm-netconf apply", // loads the modules: not measured
		teardown("0600", "0700", "0800"),
		"run dpm-netconf apply --cmdline /etc/dpm-one",
		teardown("0600"),
		"run dpm-netconf apply --sequential --cmdline /etc/dpm-one",
		teardown("0600"),
		// The baseline: the same writes and MAC by a plain loop.
		"run dpmprobe plain 0.0.0600 0 0a:00:00:00:06:00",
		teardown("0600"),
		"run dpm-netconf apply",
		teardown("0600", "0700", "0800"),
		"run dpm-netconf apply --sequential",
		"report",
	}, "\n")
	// DPM_TIMING_PAIRS=N: N-1 more pairs of the one-NIC apply and the plain
	// loop; DPM_TIMING_TRACE=1: then a traced one-NIC apply (internal/trace)
	// and the start of the binary alone, in the log.
	pairs, _ := strconv.Atoi(os.Getenv("DPM_TIMING_PAIRS"))
	extra := []string{}
	for range pairs - 1 {
		extra = append(extra, teardown("0600"), "run dpm-netconf apply --cmdline /etc/dpm-one", teardown("0600"), "run dpmprobe plain 0.0.0600 0 0a:00:00:00:06:00")
	}
	if os.Getenv("DPM_TIMING_TRACE") != "" {
		extra = append(extra, teardown("0600"), "setenv DPM_NETCONF_TRACE /tmp/trace", "run dpm-netconf apply --cmdline /etc/dpm-one",
			"setenv DPM_NETCONF_TRACE /tmp/trace-version", "run dpm-netconf version", "run dpm-netconf version", "run dpmprobe nothing", "run dpmprobe nothing",
			"run cat /tmp/trace", "run cat /tmp/trace.helper", "run cat /tmp/trace-version")
	}
	if len(extra) > 0 {
		script += "\n" + strings.Join(extra, "\n")
	}
	steps := osaBoot{
		kernelArgs: threeOSAList,
		qeths:      threeOSA,
		files:      map[string]string{"etc/dpm-one": "0600,0,0a0000000600;"},
		script:     script,
	}.run(t)
	var runs, extraRuns []string
	report := ""
	for _, s := range steps {
		switch {
		case strings.HasPrefix(s, "report"):
			report = s
		case strings.HasPrefix(s, "run ") && report == "":
			runs = append(runs, s)
		case strings.HasPrefix(s, "run "):
			extraRuns = append(extraRuns, s)
		}
	}
	names := []string{"", "1 NIC concurrent", "1 NIC sequential", "1 NIC by a plain loop (the baseline)", "3 NICs concurrent", "3 NICs sequential"}
	if len(runs) != len(names) {
		t.Fatalf("%d runs, want %d", len(runs), len(names))
	}
	ms := make([]float64, len(runs))
	for i, s := range runs[1:] {
		code, took := stepRun(t, s)
		ms[i+1] = took
		if code != 0 {
			t.Errorf("%s: exit %d:\n%s", names[i+1], code, s)
		}
		if d, ok := vm.ParseDone(s, "apply"); ok {
			t.Logf("OSA timing: %s: exec-to-exit %.1f ms (dpm-netconf's own figure %s)", names[i+1], took, d.Took)
		} else {
			t.Logf("OSA timing: %s: exec-to-exit %.1f ms", names[i+1], took)
		}
	}
	// Figures, not checks: a benchmark on one emulated CPU.
	t.Logf("OSA timing: 1 NIC: apply %.2f x the plain loop; 3 NICs: concurrent %.2f x sequential", ms[1]/ms[3], ms[4]/ms[5])
	for i := 0; i+1 < len(extraRuns) && i < 2*(pairs-1); i += 2 {
		_, a := stepRun(t, extraRuns[i])
		_, p := stepRun(t, extraRuns[i+1])
		t.Logf("OSA timing: 1 NIC again: apply %.1f ms, the plain loop %.1f ms: %.2f x", a, p, a/p)
	}
	for _, s := range extraRuns[max(2*(pairs-1), 0):] {
		t.Logf("OSA timing, traced: %s", s)
	}
	r := stepReport(t, report)
	for _, d := range []string{"0600", "0700", "0800"} {
		wantOSA(t, r, "0.0."+d, "0a:00:00:00:"+d[:2]+":"+d[2:])
	}
}
