// Package vmtests boots Debian's s390x kernel under qemu-system-s390x with
// the u-root image whose uinit is dpm-netconf, and asserts on what the
// guest's own sysfs and rtnetlink report. `make vmtest` prepares the kernel
// and the image and runs them.
package vmtests

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/vmtests/vm"
)

const threeNICs = "0001,1,0a0000000011;0004,0;0010,0,0e1122334455;"

// wantMACs checks the guest's MACs for the given bus ids.
func wantMACs(t *testing.T, r vm.Report, want map[string]string) {
	t.Helper()
	got := macs(t, r)
	for id, mac := range want {
		if got[id] != mac {
			t.Errorf("%s: MAC %q, want %s (guest reports %v)", id, got[id], mac, got)
		}
	}
}

// Scenario 1: three virtio-net-ccw NICs configured from the DPM list.
func TestThreeVirtioNICs(t *testing.T) {
	g := boot(t, threeNICs, vm.VirtioNICs("0001", "0004", "0010"))
	a := g.waitApplied(2 * time.Minute)
	if a.Exit != 0 || a.Configured != 3 || a.Total != 3 {
		t.Errorf("apply at boot: %+v", a)
	}
	r := g.report()
	wantMACs(t, r, map[string]string{
		"0.0.0001": "0a:00:00:00:00:11",
		"0.0.0004": "52:54:00:00:00:04", // no MAC listed: QEMU's stays
		"0.0.0010": "0e:11:22:33:44:55",
	})
	out, code, _ := g.run(30*time.Second, "dpm-netconf status --json")
	if code != 0 {
		t.Errorf("status exit %d:\n%s", code, out)
	}
	m := regexp.MustCompile(`(\{"nics":.*\})\r*\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no status JSON in:\n%s", out)
	}
	var st struct {
		NICs []struct {
			BusID string `json:"bus_id"`
			Kind  string `json:"kind"`
			MAC   string `json:"mac"`
			OK    bool   `json:"ok"`
		} `json:"nics"`
	}
	if err := json.Unmarshal([]byte(m[1]), &st); err != nil {
		t.Fatal(err)
	}
	got := macs(t, r)
	for _, n := range st.NICs {
		if !n.OK || n.Kind != "virtio" || n.MAC != got[n.BusID] {
			t.Errorf("status %+v disagrees with the guest (%s)", n, got[n.BusID])
		}
	}
}

// Scenario 2: the devices start cio_ignored; dpm-netconf frees exactly the
// listed ones.
func TestCIOIgnored(t *testing.T) {
	nics := vm.VirtioNICs("0001", "0004", "0010", "0020") // 0020 is not listed
	g := boot(t, "cio_ignore=all,!condev "+threeNICs, nics)
	a := g.waitApplied(2 * time.Minute)
	if a.Exit != 0 || a.Configured != 3 {
		t.Errorf("apply at boot: %+v", a)
	}
	// Each listed NIC's ok line says this run freed it.
	ok := okLines(a.Console, "apply")
	for _, id := range []string{"0.0.0001", "0.0.0004", "0.0.0010"} {
		if len(ok[id]) == 0 || !slices.Contains(ok[id][0].Steps, "free") {
			t.Errorf("%s: no ok line with step free: %v", id, ok[id])
		}
	}
	r := g.report()
	wantMACs(t, r, map[string]string{"0.0.0001": "0a:00:00:00:00:11", "0.0.0004": "52:54:00:00:00:04", "0.0.0010": "0e:11:22:33:44:55"})
	if slices.Contains(r.CCW, "0.0.0020") {
		t.Errorf("unlisted device 0.0.0020 was freed too: %v", r.CCW)
	}
	for _, id := range []string{"0.0.0001", "0.0.0004", "0.0.0010"} {
		if !slices.Contains(r.CCW, id) {
			t.Errorf("%s not visible: %v", id, r.CCW)
		}
	}
}

// Scenario 3: a qeth entry whose devices do not exist next to a valid
// virtio one: reported missing once the channel subsystem has settled (the
// message says so; the 10 s deadline is not waited out), exit 1, the boot
// goes on.
func TestMissingQethNextToVirtio(t *testing.T) {
	g := boot(t, "uroot.uinitargs=--timeout=10s 0100,0,0a0000000022;0001,0,0a0000000011;", vm.VirtioNICs("0001"))
	a := g.waitApplied(2 * time.Minute)
	if a.Exit != 1 || a.Configured != 1 || a.Total != 2 {
		t.Errorf("apply at boot: %+v", a)
	}
	t.Logf("apply took %s with a missing NIC (deadline 10s)", a.Took)
	want := vm.ErrorPrefix("apply") + "0.0.0100: FAILED at free: device 0.0.0100 not found (not in /sys/bus/ccw/devices; cio_ignore does not list it; the channel subsystem has sensed every device): is the devno right and the device attached to this partition?"
	if !strings.Contains(a.Console, want) {
		t.Errorf("console lacks %q", want)
	}
	// The guest went on to its shell: the probe answers.
	wantMACs(t, g.report(), map[string]string{"0.0.0001": "0a:00:00:00:00:11"})
}

// Scenario 5: malformed entries: exact text and offset, nothing changed.
func TestMalformedEntries(t *testing.T) {
	list := "0001,7;0004,0;zzzz,1;0010,0,030000000001;"
	cmdline := "quiet " + list
	g := boot(t, cmdline, vm.VirtioNICs("0001", "0004", "0010"))
	a := g.waitApplied(2 * time.Minute)
	if a.Exit != 1 || a.Invalid != 3 || a.Configured != 1 || a.Total != 1 {
		t.Errorf("apply at boot: %+v", a)
	}
	for _, e := range []struct{ entry, msg string }{
		{"0001,7", "port must be 0 or 1"},
		{"zzzz,1", `devno "zzzz" must be exactly 4 hex digits`},
		{"0010,0,030000000001", "mac 03:00:00:00:00:01 is a multicast address: a NIC needs a unicast address (first octet even)"},
	} {
		want := vm.ErrorPrefix("apply") + fmt.Sprintf("entry %q at offset %d: %s (entry not applied)", e.entry, strings.Index(cmdline, e.entry), e.msg)
		if !strings.Contains(a.Console, want) {
			t.Errorf("console lacks %s", want)
		}
	}
	// Nothing of the rejected entries was done.
	wantMACs(t, g.report(), map[string]string{"0.0.0001": "52:54:00:00:00:01", "0.0.0004": "52:54:00:00:00:04", "0.0.0010": "52:54:00:00:00:10"})
}

// Scenario 6: apply a second time changes nothing and exits 0.
func TestApplyTwice(t *testing.T) {
	g := boot(t, threeNICs, vm.VirtioNICs("0001", "0004", "0010"))
	if a := g.waitApplied(2 * time.Minute); a.Exit != 0 {
		t.Fatalf("first apply: %+v", a)
	}
	before := g.report()
	out, code, _ := g.run(time.Minute, "dpm-netconf apply")
	if code != 0 {
		t.Errorf("second apply (exit %d):\n%s", code, out)
	}
	wantUnchanged(t, out, "apply", "0.0.0001", "0.0.0004", "0.0.0010")
	wantDone(t, out, "apply", 3, 3, 0, 0)
	after := g.report()
	if fmt.Sprint(macs(t, before)) != fmt.Sprint(macs(t, after)) {
		t.Errorf("MACs changed: %v -> %v", macs(t, before), macs(t, after))
	}
}

// Scenario 7: setmac with the udev-style path of one virtio NIC sets that
// NIC's MAC only.
func TestSetmacUdevPath(t *testing.T) {
	// --cmdline=/dev/null: the boot's apply sees no list and does nothing,
	// as in an image where only the udev rule acts; u-root's init loads
	// virtio_net (modules_load=), so both interfaces exist as udev sees them.
	g := boot(t, "uroot.uinitargs=--cmdline=/dev/null modules_load=virtio_net 0001,0,0a0000000011;0004,0,0a0000000044;", vm.VirtioNICs("0001", "0004"))
	if a := g.waitApplied(2 * time.Minute); a.Exit != 0 || a.Total != 0 {
		t.Fatalf("boot apply: %+v", a)
	}
	r := g.report()
	var path string
	for _, n := range r.NICs {
		if n.BusID == "0.0.0001" {
			path = n.DevPath
		}
	}
	if !regexp.MustCompile(`^/devices/css0/0\.0\.[0-9a-f]{4}/0\.0\.0001/virtio\d+/net/eth\d+$`).MatchString(path) {
		t.Fatalf("udev path of 0.0.0001: %q", path)
	}
	out, code, _ := g.run(time.Minute, "dpm-netconf setmac "+path)
	if code != 0 {
		t.Errorf("setmac exit %d:\n%s", code, out)
	}
	// Its lines are setmac's, not apply's.
	if ok := okLines(out, "setmac")["0.0.0001"]; len(ok) == 0 || !ok[0].SetMAC() || ok[0].MAC != "0a:00:00:00:00:11" {
		t.Errorf("setmac: no ok line that sets 0.0.0001's MAC to 0a:00:00:00:00:11 in:\n%s", out)
	}
	if len(vm.OKLines(out, "apply")) > 0 {
		t.Errorf("setmac printed apply lines:\n%s", out)
	}
	wantDone(t, out, "setmac", 1, 1, 0, 0)
	wantMACs(t, g.report(), map[string]string{"0.0.0001": "0a:00:00:00:00:11", "0.0.0004": "52:54:00:00:00:04"})
}

// Scenario 8: twelve NICs (nova-dpm's maximum), and the time dpm-netconf
// takes against a loop of u-root's ip over the same NICs.
func TestTwelveNICs(t *testing.T) {
	var devnos []string
	var list strings.Builder
	want := map[string]string{}
	for i := 1; i <= 12; i++ {
		d := fmt.Sprintf("%04x", i*4)
		devnos = append(devnos, d)
		fmt.Fprintf(&list, "%s,0,0a00000000%02x;", d, i)
		want["0.0."+d] = fmt.Sprintf("0a:00:00:00:00:%02x", i)
	}
	if list.Len() > 256 {
		t.Fatalf("list of %d bytes does not fit nova-dpm's 256", list.Len())
	}
	g := boot(t, list.String(), vm.VirtioNICs(devnos...))
	a := g.waitApplied(2 * time.Minute)
	if a.Exit != 0 || a.Configured != 12 {
		t.Errorf("apply at boot: %+v", a)
	}
	r := g.report()
	wantMACs(t, r, want)

	// Timing: put other MACs on with ip, then let dpm-netconf set all 12
	// back; both start from existing interfaces. DPM_TIMING_PAIRS=N
	// measures N such pairs (default 1); DPM_TIMING_TRACE=N adds N traced
	// applies whose traces (internal/trace) go to the log.
	var args []string
	for i, n := range r.NICs {
		args = append(args, fmt.Sprintf("%s=0a:00:00:00:01:%02x", n.Interface, i))
	}
	pairs, _ := strconv.Atoi(os.Getenv("DPM_TIMING_PAIRS"))
	for range max(pairs, 1) {
		g.send("dpmprobe iploop " + strings.Join(args, " "))
		m := g.expect(time.Minute, `DPMIPLOOP n=(\d+) ms=([0-9.]+)\r*\n`)
		g.prompt()
		out, code, ms := g.run(time.Minute, "dpm-netconf apply")
		setBack := 0
		for id, ok := range okLines(out, "apply") {
			if ok[0].SetMAC() && ok[0].MAC == want[id] {
				setBack++
			}
		}
		if code != 0 || setBack != 12 {
			t.Errorf("apply after the ip loop (exit %d) set %d MACs back, want 12:\n%s", code, setBack, out)
		}
		wantMACs(t, g.report(), want)
		loop, _ := strconv.ParseFloat(m[2], 64)
		t.Logf("12 NICs: dpm-netconf apply exec-to-exit %.1f ms (setting 12 MACs; at boot, with module loading: %s); loop of u-root ip link set over %s NICs: %s ms; ratio %.2f",
			ms, a.Took, m[1], m[2], ms/loop)
	}
	traces, _ := strconv.Atoi(os.Getenv("DPM_TIMING_TRACE"))
	for range traces {
		g.send("dpmprobe iploop " + strings.Join(args, " "))
		g.expect(time.Minute, `DPMIPLOOP n=(\d+) ms=([0-9.]+)\r*\n`)
		g.prompt()
		g.send("DPM_NETCONF_TRACE=/tmp/trace dpmprobe run dpm-netconf apply")
		m := g.expect(time.Minute, `DPMRUN exit=(-?\d+) ms=([0-9.]+)\r*\n`)
		g.prompt()
		t.Logf("traced apply: exec-to-exit %s ms", m[2])
		out, _, _ := g.run(time.Minute, "cat /tmp/trace")
		t.Logf("trace:\n%s", out)
	}
	if traces > 0 {
		for _, c := range []string{"dpm-netconf version", "dpm-netconf version", "dpm-netconf version", "dpmprobe nothing", "dpmprobe nothing", "true", "true"} {
			_, _, ms := g.run(time.Minute, c)
			t.Logf("exec-to-exit of %s: %.1f ms", c, ms)
		}
	}
}

// Scenario 9: convergence under other actors. The guest boots with
// cio_ignore=all,!condev and nothing configures the NICs at boot (the
// probe replaces the image's uinit); then, in the guest, two `dpm-netconf
// apply` and an actor that frees the same devices from cio_ignore, settles
// and writes online=1 to them start at the same instant — while the
// kernel's virtio_ccw sets freed devices online by itself, asynchronously.
// Both applies must converge on the listed state and exit 0.
func TestConcurrentApplies(t *testing.T) {
	e := requireVM(t)
	const list = "0001,0,0a0000000011;0004,1,0a0000000044;0010,0,0e1122334455;"
	busIDs := []string{"0.0.0001", "0.0.0004", "0.0.0010"}
	want := map[string]string{"0.0.0001": "0a:00:00:00:00:11", "0.0.0004": "0a:00:00:00:00:44", "0.0.0010": "0e:11:22:33:44:55"}
	files, err := e.ProbeAsUinit("shell\n")
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := e.InitramfsWith("concurrent.cpio", files)
	if err != nil {
		t.Fatal(err)
	}
	g := bootImage(t, initrd, "cio_ignore=all,!condev "+list, vm.VirtioNICs("0001", "0004", "0010"))
	_, out, err := g.Expect(2*time.Minute, `DPMSTEP shell\r*\n`)
	if err != nil {
		t.Fatal(err)
	}
	g.prompt()
	if strings.Contains(out, "dpm-netconf: ") {
		t.Fatalf("dpm-netconf ran at boot:\n%s", out)
	}
	before := g.report()
	for _, id := range busIDs {
		if slices.Contains(before.CCW, id) {
			t.Fatalf("%s is visible before the race: %v", id, before.CCW)
		}
	}

	procs, err := g.Race(3*time.Minute, 2, busIDs, "dpm-netconf apply")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		t.Logf("%q: started +%.1fms, exit %d at +%.1fms:\n%s", p.Args, p.StartMS, p.Exit, p.EndMS, strings.TrimRight(p.Output, "\n"))
	}
	for i, p := range procs[:2] {
		if p.Exit != 0 {
			t.Errorf("apply #%d exited %d, want 0", i+1, p.Exit)
		}
		wantDone(t, p.Output, "apply", 3, 3, 0, 0)
		ok := okLines(p.Output, "apply")
		for _, id := range busIDs {
			if len(ok[id]) == 0 || ok[id][0].MAC != want[id] {
				t.Errorf("apply #%d: no ok line for %s with mac %s", i+1, id, want[id])
			}
		}
	}
	r := g.report()
	wantMACs(t, r, want)
	for _, n := range r.NICs {
		if n.Online != "1" {
			t.Errorf("%s is not online: %+v", n.BusID, n)
		}
	}
	for _, id := range busIDs {
		if !slices.Contains(r.CCW, id) {
			t.Errorf("%s not visible after the race: %v", id, r.CCW)
		}
	}
}
