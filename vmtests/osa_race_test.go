package vmtests

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dpm-guest-image-tools/dpm-netconf/vmtests/vm"
)

// Convergence on a real qeth driver: dpm-netconf is never alone on a NIC at
// boot. The probe is the image's uinit, so nothing configures the NIC
// before the scenario; `dpmprobe race` starts its processes at one
// instant (see vmtests/guest/dpmprobe).

// stepRace decodes a race step: the copies of the command first, then the
// actor, if any.
func stepRace(t *testing.T, step string, n int) []vm.RaceProc {
	t.Helper()
	if strings.Contains(step, "DPMRACE-HUNG") {
		var hung []string
		for _, l := range strings.Split(step, "\n") {
			if !strings.HasPrefix(l, "DPMRACE64 ") {
				hung = append(hung, l)
			}
		}
		t.Errorf("the race did not finish in time:\n%s", strings.Join(hung, "\n"))
	}
	var procs []vm.RaceProc
	if err := vm.Decode64(step, "DPMRACE64", &procs); err != nil {
		t.Fatalf("%v in step:\n%s", err, step)
	}
	if len(procs) != n {
		t.Fatalf("race reported %d processes, want %d:\n%s", len(procs), n, step)
	}
	for _, p := range procs {
		t.Logf("%q: exec at +%.1fms, exit %d at +%.1fms (exec-to-exit %.1f ms):\n%s",
			p.Args, p.StartMS, p.Exit, p.EndMS, p.EndMS-p.StartMS, strings.TrimRight(p.Output, "\n"))
	}
	return procs
}

// applyOK checks that one apply of one NIC exited 0, configured it with
// the MAC and returns what it says it did (nil: "already configured,
// nothing changed").
func applyOK(t *testing.T, name, out string, code int, busID, mac string) []string {
	t.Helper()
	if code != 0 {
		t.Errorf("%s exited %d, want 0:\n%s", name, code, out)
	}
	d := wantDone(t, out, "apply", 1, 1, 0, 0)
	ok := okLines(out, "apply")[busID]
	if len(ok) == 0 {
		t.Errorf("%s: no ok line for %s:\n%s", name, busID, out)
		return nil
	}
	if ok[0].MAC != mac {
		t.Errorf("%s: %s, want mac %s", name, ok[0].Line, mac)
	}
	t.Logf("%s: dpm-netconf's own figure %s, did %v", name, d.Took, ok[0].Steps)
	return ok[0].Steps
}

// wantRegistered checks that Hercules' emulated OSA registered mac for
// the guest and did not drop it again.
func wantRegistered(t *testing.T, console, mac string) {
	t.Helper()
	re := regexp.MustCompile(`(?i)HHC0380[13]I \S+ QETH: \S+: (Register|Unregister) guest MAC address ` + regexp.QuoteMeta(mac))
	var last string
	n := 0
	for _, m := range re.FindAllStringSubmatch(console, -1) {
		last = m[1]
		if strings.EqualFold(m[1], "Register") {
			n++
		}
	}
	switch {
	case n == 0:
		t.Errorf("Hercules did not register %s (no %q in the console)", mac, "Register guest MAC address "+mac)
	case !strings.EqualFold(last, "Register"):
		t.Errorf("Hercules unregistered %s after registering it", mac)
	default:
		t.Logf("Hercules registered guest MAC %s (%d registration(s))", mac, n)
	}
}

// The actor's lines: DPMACTOR +T write FILE "VALUE": RESULT.
var actorWriteRE = regexp.MustCompile(`DPMACTOR \+([0-9.]+)ms write (\S+) "([^"]*)": (.*?)\r?\n`)

// actorWrites maps each file the actor wrote to the result ("ok" or the
// errno).
func actorWrites(out string) map[string]string {
	m := map[string]string{}
	for _, w := range actorWriteRE.FindAllStringSubmatch(out, -1) {
		m[w[2]] = w[4]
	}
	return m
}

// exactlyOne checks that one and only one of the racers did a step the
// kernel allows once (a second group or online=1 of the same device is
// refused: EINVAL, or EAGAIN while the first is in flight).
func exactlyOne(t *testing.T, what string, by map[string]bool) {
	t.Helper()
	var who []string
	for k, did := range by {
		if did {
			who = append(who, k)
		}
	}
	slices.Sort(who)
	if len(who) != 1 {
		t.Errorf("%s done by %v, want exactly one of them", what, who)
	}
}

// Issue: two concurrent applies of one fresh OSA NIC (not grouped, modules
// not loaded, nothing at boot) both exit 0 and converge.
func TestOSATwoApplies(t *testing.T) {
	const busID, mac = "0.0.0600", "0a:00:00:00:06:00"
	steps, console := osaBoot{
		kernelArgs: "0600,0," + strings.ReplaceAll(mac, ":", "") + ";",
		qeths:      threeOSA[:1],
		script:     "report\nrace 2 - dpm-netconf apply\nreport\n",
	}.runConsole(t)
	if len(steps) != 3 {
		t.Fatalf("%d script steps, want 3", len(steps))
	}
	if boot, _, _ := strings.Cut(console, "DPMSTEP "); strings.Contains(boot, "dpm-netconf: ") || strings.Contains(steps[0], "dpm-netconf: ") {
		t.Fatalf("dpm-netconf ran before the race:\n%s", boot+steps[0])
	}
	before := stepReport(t, steps[0])
	if len(before.Groups) != 0 || slices.Contains(before.Modules, "qeth") {
		t.Fatalf("not fresh before the race: groups %+v, modules %v", before.Groups, before.Modules)
	}
	procs := stepRace(t, steps[1], 2)
	did := map[string]map[string]bool{"group": {}, "online": {}}
	for i, p := range procs {
		name := fmt.Sprintf("apply #%d", i+1)
		ds := applyOK(t, name, p.Output, p.Exit, busID, mac)
		for step := range did {
			did[step][name] = slices.Contains(ds, step)
		}
	}
	exactlyOne(t, "group", did["group"])
	exactlyOne(t, "online", did["online"])
	wantOSA(t, stepReport(t, steps[2]), busID, mac)
	wantRegistered(t, console, mac)
}

// Issue: s390-tools' zdev (persistent configuration, applied at boot by its
// dracut hook and udev rules) grouped the NIC and set it online in layer 2
// first; apply only sets the MAC and exits 0. Then the same with zdev
// still at work when apply starts: the two race on every step.
func TestOSAZdevFirst(t *testing.T) {
	e := requireVM(t)
	// udev loads these at boot (qeth by modalias, qeth_l2 by the kernel's
	// request_module); u-root has no udev and no modprobe.
	var script []string
	for _, m := range []string{"llc", "stp", "bridge", "ccwgroup", "qeth", "qeth_l2"} {
		script = append(script, "insmod /lib/modules/"+e.Release+"/"+moduleFile(t, e, m))
	}
	nmod := len(script)
	script = append(script,
		"zdev 0.0.0600",
		"report",
		"run dpm-netconf apply -v --cmdline /etc/dpm-0600",
		"race 1 zdev:0.0.0700 dpm-netconf apply -v --cmdline /etc/dpm-0700",
		"report",
	)
	steps, console := osaBoot{
		kernelArgs: "cio_ignore=all,!condev 0600,0,0a0000000600;0700,0,0a0000000700;",
		qeths:      threeOSA[:2],
		files:      map[string]string{"etc/dpm-0600": "0600,0,0a0000000600;", "etc/dpm-0700": "0700,0,0a0000000700;"},
		script:     strings.Join(script, "\n"),
	}.runConsole(t)
	if len(steps) != len(script) {
		t.Fatalf("%d script steps, want %d", len(steps), len(script))
	}
	for _, s := range steps[:nmod] {
		if code, _ := stepRun(t, s); code != 0 {
			t.Fatalf("loading the modules as udev would:\n%s", s)
		}
	}
	steps = steps[nmod:]

	// zdev first, alone.
	for file, res := range actorWrites(steps[0]) {
		if res != "ok" {
			t.Fatalf("zdev's write to %s: %s:\n%s", file, res, steps[0])
		}
	}
	if n := len(actorWrites(steps[0])); n != 6 {
		t.Fatalf("zdev made %d writes, want 6 (free, settle, group, layer2, portno, online):\n%s", n, steps[0])
	}
	r := stepReport(t, steps[1])
	var zdevd bool
	for _, g := range r.Groups {
		if g.BusID == "0.0.0600" {
			zdevd = g.Online == "1" && g.Layer2 == "1" && g.Port == "0"
		}
	}
	if !zdevd {
		t.Fatalf("after zdev, 0.0.0600 is not online in layer 2 on port 0: %+v", r.Groups)
	}
	code, ms := stepRun(t, steps[2])
	if ds := applyOK(t, "apply after zdev", steps[2], code, "0.0.0600", "0a:00:00:00:06:00"); !slices.Equal(ds, []string{"mac"}) {
		t.Errorf("apply after zdev did %v, want only the MAC (zdev did the rest)", ds)
	}
	t.Logf("apply after zdev: exec-to-exit %.1f ms", ms)

	// zdev and apply at once.
	procs := stepRace(t, steps[3], 2)
	apply, actor := procs[0], procs[1]
	ds := applyOK(t, "apply racing zdev", apply.Output, apply.Exit, "0.0.0700", "0a:00:00:00:07:00")
	if !slices.Contains(ds, "mac") {
		t.Errorf("apply racing zdev did %v, want the MAC among them (zdev sets none)", ds)
	}
	zw := actorWrites(actor.Output)
	t.Logf("zdev's writes: %v", zw)
	exactlyOne(t, "group 0.0.0700", map[string]bool{"apply": slices.Contains(ds, "group"), "zdev": zw["/sys/bus/ccwgroup/drivers/qeth/group"] == "ok"})
	exactlyOne(t, "online 0.0.0700", map[string]bool{"apply": slices.Contains(ds, "online"), "zdev": zw["/sys/bus/ccwgroup/devices/0.0.0700/online"] == "ok"})
	if apply.StartMS >= actor.EndMS {
		t.Errorf("apply started at +%.1fms, after zdev's end at +%.1fms: no race", apply.StartMS, actor.EndMS)
	}
	for _, l := range strings.Split(apply.Output, "\n") {
		if strings.Contains(l, "done by another actor") || strings.Contains(l, "in flight") {
			t.Logf("apply racing zdev: %s", l)
		}
	}

	r = stepReport(t, steps[4])
	wantOSA(t, r, "0.0.0600", "0a:00:00:00:06:00")
	wantOSA(t, r, "0.0.0700", "0a:00:00:00:07:00")
	wantRegistered(t, console, "0a:00:00:00:06:00")
	wantRegistered(t, console, "0a:00:00:00:07:00")
}
