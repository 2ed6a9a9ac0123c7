package vmtests

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hugelgupf/vmtest/qemu"

	"github.com/dpm-guest-image-tools/dpm-netconf/vmtests/vm"
)

// The distro tests boot a real Debian 12 s390x system (systemd, udev,
// dracut, cloud-init) whose initramfs dracut built with our module, with
// `make install` of this tree in its root (vmtests/distro/build-image.sh;
// `make vmtest-dracut` builds it and runs them).

const distroList = "0001,1,0a0000000011;0004,0;0010,0,0e1122334455;"

// emulatorArgs keep QEMU 7.2's TCG from stalling the guest for minutes
// (docs/testing.md, "Emulator stalls"): with address-space randomization
// every process maps the same shared-library pages at other addresses, and
// TCG keeps translated blocks per physical page and virtual address, so the
// pages collect thousands of them; once such a page is reused (a task's
// kernel stack), every store to it walks them all. norandmaps maps them at
// the same addresses in every process. Nothing of dpm-netconf's depends on
// address-space randomization.
const emulatorArgs = "norandmaps"

// cpacfModules are the modules Debian's s390x kernel loads for CPU features
// (modules.alias "cpu:type:*:feature:*"): the test needs none of them.
const cpacfModules = "chacha_s390,aes_s390,des_s390,prng,sha1_s390,sha256_s390,sha512_s390,s390_trng,uvdevice"

type distroBoot struct {
	// "systemd" or "shell": which dracut initramfs of DPM_DISTRO_IMAGE;
	// "initramfs-tools": the image in DPM_DISTRO_ITOOLS_IMAGE.
	flavour string
	args    string // more kernel parameters
	// bare: no emulatorArgs (make bootstats measures with and without).
	bare bool
	// After the boot's report, what the host does through QMP while the
	// guest's report script watches (its dpmtest=): "late" plugs in
	// 0.0.0020; "readd" unplugs 0.0.0001 and plugs it in again with QEMU's
	// MAC, then plugs in unlisted 0.0.0030.
	hotplug string
	// kernel612: the image of the same root built with Debian 13's kernel
	// 6.12 (DPM_DISTRO_IMAGE_612, DPM_DISTRO_ITOOLS_IMAGE_612), not
	// Debian 12's 6.1.
	kernel612 bool
}

type distroResult struct {
	console string   // the console up to the boot's report (READY)
	lines   []string // its DPMDISTRO lines, without the prefix
	after   []string // the DPMDISTRO lines of the hot-plug phase, READY to END
	took    time.Duration
	dir     string // the image's folder
	// consoleLog is the console's file; jit QEMU's translator figures at
	// the report (vm.JITSummary).
	consoleLog, jit string
}

func requireDistro(t *testing.T, env string) string {
	t.Helper()
	requireVM(t)
	dir := os.Getenv(env)
	if dir == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is unset: run the distro tests with make vmtest-distro", env)
		}
		t.Skipf("skipped outside CI: %s is unset; run: make vmtest-distro (builds the images)", env)
	}
	return dir
}

func (b distroBoot) run(t *testing.T) distroResult {
	t.Helper()
	res, err := b.boot(t)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("booted to the report in %v (console in %s)", res.took.Round(time.Second), res.consoleLog)
	return res
}

// boot boots the image and waits for its report (and the hot-plug phase);
// an error says what did not come, with the console's path, or names an
// emulator stall (vm.StallWatch).
func (b distroBoot) boot(t *testing.T) (distroResult, error) {
	t.Helper()
	env := "DPM_DISTRO_IMAGE"
	if b.flavour == "initramfs-tools" {
		env = "DPM_DISTRO_ITOOLS_IMAGE"
	}
	if b.kernel612 {
		env += "_612"
	}
	dir := requireDistro(t, env)
	tmp := t.TempDir()
	qmpSock, stallSock := filepath.Join(tmp, "qmp.sock"), filepath.Join(tmp, "stall.sock")
	logPath := filepath.Join(consoleDir(), strings.ReplaceAll(t.Name(), "/", "_")+".console")
	logf, err := os.Create(logPath)
	if err != nil {
		return distroResult{}, err
	}
	defer logf.Close()
	// The disks are thrown away (snapshot=on), so the guest's flushes need
	// not reach the host's disk (cache=unsafe): the guest's I/O never waits
	// on the host's writeback.
	args := []string{
		"-drive", "file=" + filepath.Join(dir, "root.ext4") + ",if=none,id=d0,format=raw,snapshot=on,cache=unsafe",
		"-device", "virtio-blk-ccw,drive=d0,devno=fe.0.0100",
		"-drive", "file=" + filepath.Join(dir, "seed.img") + ",if=none,id=d1,format=raw,snapshot=on,cache=unsafe",
		"-device", "virtio-blk-ccw,drive=d1,devno=fe.0.0101",
		"-netdev", "user,id=hp",
	}
	args = append(args, vm.QMPArgs(qmpSock)...)
	args = append(args, vm.QMPArgs(stallSock)...)
	args = append(args, vm.NICArgs(vm.VirtioNICs("0001", "0004", "0010"))...)
	kargs := b.args
	if !b.bare {
		kargs = emulatorArgs + " " + kargs
	}
	if b.hotplug != "" {
		kargs += " dpmtest=" + b.hotplug
	}
	start := time.Now()
	watch := &vm.StallWatch{Quiet: 3 * time.Minute, QMP: stallSock, Report: logPath + ".stall"}
	v, err := qemu.Start(vm.S390x,
		qemu.WithQEMUCommand(vm.QEMUCommand()),
		qemu.WithKernel(filepath.Join(dir, "vmlinuz")),
		qemu.WithInitramfs(filepath.Join(dir, "initrd-"+b.flavour+".img")),
		// udev autoloads the CPACF crypto modules by CPU feature; under TCG
		// chacha_s390 crashes and others can leave a udev worker looping
		// in page faults (seen: an RCU stall in the real root's coldplug).
		qemu.WithAppendKernel("root=LABEL=root rw console=ttysclp0 module_blacklist="+cpacfModules+" "+kargs+" "+distroList),
		qemu.ArbitraryArgs(args...),
		qemu.WithVMTimeout(17*time.Minute),
		qemu.LogSerialByLine(func(line string) { watch.Line(); fmt.Fprintln(logf, line) }),
	)
	if err != nil {
		return distroResult{}, err
	}
	g := &vm.Guest{VM: v, Started: start}
	defer g.Close()
	ctx, stop := context.WithCancel(context.Background())
	watch.OnStall = func() { _ = v.Kill() }
	watched := make(chan struct{})
	go func() { defer close(watched); watch.Run(ctx) }()
	defer func() {
		stop()
		<-watched
	}()
	// failed names a stall if there was one: the kill that ended the
	// guest is what made the wait fail.
	failed := func(err error) error {
		<-watched
		if st := watch.Stalled(); st != nil {
			return st
		}
		return fmt.Errorf("%v (console in %s)", err, logPath)
	}
	// A boot takes 1–1.5 minutes. Under TCG the guest has had stalls of
	// minutes after dpm-netconf's work: cloud-init's Python once needed 3
	// more minutes to start (seen in CI), and once (2026-11-27, 1 of 7 make
	// test runs) cloud-init-local started at 212 s and networking.service
	// then spent 7.7 minutes raising the interfaces, the report coming at
	// 11.6 minutes; the cause is not found yet. Hence the headroom.
	_, out, err := g.Expect(15*time.Minute, `DPMDISTRO READY`)
	if err != nil {
		stop()
		return distroResult{}, failed(err)
	}
	res := distroResult{console: out, lines: reportLines(out), took: time.Since(start), dir: dir, consoleLog: logPath}
	if b.hotplug != "" {
		after, err := b.plug(g, qmpSock)
		if err != nil {
			stop()
			return res, failed(err)
		}
		res.after = reportLines(after)
	}
	if mon, err := vm.DialQMP(stallSock); err == nil {
		jit, _ := mon.HMP("info jit")
		res.jit = vm.JITSummary(jit)
		mon.Close()
	}
	return res, nil
}

// plug does the host's part of the hot-plug phase through QMP and returns
// the console from the boot's report to the guest's END.
func (b distroBoot) plug(g *vm.Guest, qmpSock string) (string, error) {
	mon, err := vm.DialQMP(qmpSock)
	if err != nil {
		return "", err
	}
	defer mon.Close()
	var out string
	switch b.hotplug {
	case "late":
		err = mon.DeviceAdd(map[string]any{"driver": "virtio-net-ccw", "netdev": "hp", "devno": "fe.0.0020", "mac": "52:54:00:00:00:20", "id": "nic0020"})
	case "readd":
		if _, out, err = g.Expect(6*time.Minute, `DPMDISTRO hotplug-ready `); err != nil {
			return out, err
		}
		// NICArgs gave 0.0.0001 the backend n0: it takes the device again.
		if err = mon.DeviceDel(vm.NIC{Devno: "0001"}.ID(), time.Minute); err != nil {
			return "", err
		}
		var more string
		if _, more, err = g.Expect(3*time.Minute, `DPMDISTRO gone `); err != nil {
			return out + more, err
		}
		out += more
		if err = mon.DeviceAdd(map[string]any{"driver": "virtio-net-ccw", "netdev": "n0", "devno": "fe.0.0001", "id": "nic0001"}); err != nil {
			return out, err
		}
		err = mon.DeviceAdd(map[string]any{"driver": "virtio-net-ccw", "netdev": "hp", "devno": "fe.0.0030", "mac": "52:54:00:00:00:30", "id": "nic0030"})
	default:
		err = fmt.Errorf("unknown hot-plug test %q", b.hotplug)
	}
	if err != nil {
		return out, err
	}
	_, more, err := g.Expect(5*time.Minute, `DPMDISTRO END`)
	return out + more, err
}

func reportLines(console string) []string {
	var lines []string
	for _, m := range regexp.MustCompile(`DPMDISTRO ([^\r\n]*)`).FindAllStringSubmatch(console, -1) {
		lines = append(lines, m[1])
	}
	return lines
}

// with returns the report lines starting with prefix.
func (r distroResult) with(prefix string) []string {
	var out []string
	for _, l := range r.lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, strings.TrimPrefix(l, prefix))
		}
	}
	return out
}

// ifaceWith finds the interface that has mac, from `ip -o link`.
func (r distroResult) ifaceWith(mac string) string {
	for _, l := range r.with("link ") {
		if strings.Contains(l, "link/ether "+mac) {
			if f := strings.Fields(l); len(f) > 1 {
				return strings.TrimSuffix(f[1], ":")
			}
		}
	}
	return ""
}

func (r distroResult) addrOn(iface, addr string) bool {
	for _, l := range r.with("addr ") {
		if f := strings.Fields(l); len(f) > 3 && f[1] == iface && f[3] == addr {
			return true
		}
	}
	return false
}

// stamps returns the kernel timestamps (seconds since boot) of console and
// journal lines matching re; journal lines carry the same monotonic clock.
func (r distroResult) stamps(re string) []float64 {
	var out []float64
	for _, m := range regexp.MustCompile(`\[\s*([0-9]+\.[0-9]+)\][^\r\n]*`+re).FindAllStringSubmatch(r.console, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		out = append(out, v)
	}
	return out
}

func (r distroResult) switchRoot(t *testing.T) float64 {
	t.Helper()
	s := r.stamps(`Switching root`)
	if len(s) == 0 {
		t.Fatalf("no switch root in the console or the journal")
	}
	return s[0]
}

// stampedOK is an ok line of dpm-netconf with its kernel timestamp.
type stampedOK struct {
	at float64
	vm.OK
}

// oks returns the ok lines of runs of cmd (apply: the dracut hook and the
// unit; setmac: the udev rule) that carry a kernel timestamp, from the
// console and the journal, in order of appearance.
func (r distroResult) oks(cmd string) []stampedOK {
	var out []stampedOK
	for _, m := range regexp.MustCompile(`\[\s*([0-9]+\.[0-9]+)\]([^\r\n]*)`).FindAllStringSubmatch(r.console, -1) {
		at, _ := strconv.ParseFloat(m[1], 64)
		for _, o := range vm.OKLines(m[2], cmd) {
			out = append(out, stampedOK{at, o})
		}
	}
	return out
}

// unitDone returns the closing line of dpm-netconf.service's apply: the
// first one after the switch root.
func (r distroResult) unitDone(t *testing.T) (vm.Done, bool) {
	t.Helper()
	sw := r.switchRoot(t)
	for _, m := range regexp.MustCompile(`\[\s*([0-9]+\.[0-9]+)\]([^\r\n]*)`).FindAllStringSubmatch(r.console, -1) {
		if at, _ := strconv.ParseFloat(m[1], 64); at > sw {
			if d, ok := vm.ParseDone(m[2], "apply"); ok {
				return d, true
			}
		}
	}
	return vm.Done{}, false
}

// macSetAt returns when a run of cmd first reported that it set mac
// (its ok line lists the step mac), or -1.
func (r distroResult) macSetAt(cmd, mac string) float64 {
	var s []float64
	for _, o := range r.oks(cmd) {
		if o.MAC == mac && o.SetMAC() {
			s = append(s, o.at)
		}
	}
	if len(s) == 0 {
		return -1
	}
	return slices.Min(s)
}

// beforeSwitchRoot checks that the initramfs (dracut's hook: apply) set
// each MAC before the switch to the real root.
func beforeSwitchRoot(t *testing.T, r distroResult) {
	t.Helper()
	sw := r.switchRoot(t)
	for _, mac := range []string{"0a:00:00:00:00:11", "0e:11:22:33:44:55"} {
		if at := r.macSetAt("apply", mac); at < 0 || at > sw {
			t.Errorf("the initramfs did not report setting %s before the switch root (set at %.2fs, switch at %.2fs)", mac, at, sw)
		} else {
			t.Logf("%s set at %.2fs, switch root at %.2fs", mac, at, sw)
		}
	}
}

// unitUnchanged checks that the unit's apply in the real root (its ok
// lines after the switch root) found every listed NIC configured and
// changed nothing.
func unitUnchanged(t *testing.T, r distroResult, busIDs ...string) {
	t.Helper()
	sw := r.switchRoot(t)
	seen := map[string]bool{}
	for _, o := range r.oks("apply") {
		if o.at <= sw {
			continue
		}
		seen[o.BusID] = true
		if o.Steps != nil {
			t.Errorf("dpm-netconf.service changed %s at %.2fs: %s", o.BusID, o.at, o.Line)
		}
	}
	for _, id := range busIDs {
		if !seen[id] {
			t.Errorf("dpm-netconf.service reported nothing for %s after the switch root at %.2fs", id, sw)
		}
	}
}

func wantCloudInitAddrs(t *testing.T, r distroResult) {
	t.Helper()
	for mac, addr := range map[string]string{"0a:00:00:00:00:11": "192.0.2.11/24", "0e:11:22:33:44:55": "192.0.2.12/24"} {
		iface := r.ifaceWith(mac)
		if iface == "" {
			t.Errorf("no interface has MAC %s: %q", mac, r.with("link "))
			continue
		}
		if !r.addrOn(iface, addr) {
			t.Errorf("cloud-init did not put %s on %s (MAC %s): %q", addr, iface, mac, r.with("addr "))
		}
	}
}

// sameFields compares space-separated fields regardless of order.
func sameFields(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	slices.Sort(fa)
	slices.Sort(fb)
	return slices.Equal(fa, fb)
}

// unitTimes returns a unit's start and exit, in µs since boot.
func (r distroResult) unitTimes(unit string) (int64, int64) {
	for _, l := range r.with("timestamp " + unit + " ") {
		f := strings.Fields(l)
		if len(f) == 2 {
			a, _ := strconv.ParseInt(f[0], 10, 64)
			b, _ := strconv.ParseInt(f[1], 10, 64)
			return a, b
		}
	}
	return -1, -1
}

// timeline logs the boot's milestones from the console's kernel timestamps.
func (r distroResult) timeline(t *testing.T) {
	t.Helper()
	// One log entry, named by the test and the kernel: parallel boots'
	// lines would interleave.
	var b strings.Builder
	fmt.Fprintf(&b, "timeline of %s, kernel %s:", t.Name(), regexp.MustCompile(`Linux version (\S+)`).FindStringSubmatch(r.console + "Linux version ?")[1])
	for _, m := range []string{"Run /init as init process", vm.Prefix("apply") + "done in", "Switching root", "): mounted filesystem"} {
		if l := regexp.MustCompile(`\[\s*([0-9.]+)\][^\n]*` + regexp.QuoteMeta(m) + `[^\r\n]*`).FindString(r.console); l != "" {
			fmt.Fprintf(&b, "\n\t%s", strings.TrimSpace(l))
		}
	}
	for _, u := range []string{"dpm-netconf", "cloud-init-local", "cloud-init"} {
		from, to := r.unitTimes(u)
		fmt.Fprintf(&b, "\n\t%s.service %.2fs -> %.2fs after boot", u, float64(from)/1e6, float64(to)/1e6)
	}
	t.Log(b.String())
}

// 1-3: the systemd-flavoured initramfs sets the MACs before the switch
// root, the unit then changes nothing, cloud-init configures the NICs.
// Then the NICs that come back (issue 9): see hotplugReadd.
func TestDistroDracutSystemd(t *testing.T) { dracutSystemd(t, false) }

// TestDistroDracutSystemdKernel612 is the same boot, hot-plug included, on
// Debian 13's kernel 6.12, whose modules are .ko.xz: dpm-netconf has the
// kernel decompress them (finit_module's MODULE_INIT_COMPRESSED_FILE).
func TestDistroDracutSystemdKernel612(t *testing.T) { dracutSystemd(t, true) }

func dracutSystemd(t *testing.T, kernel612 bool) {
	t.Parallel() // two guests at a time on two cores (go test -parallel)
	r := distroBoot{flavour: "systemd", hotplug: "readd", kernel612: kernel612}.run(t)
	r.wantKernel(t, kernel612)
	beforeSwitchRoot(t, r)
	if u := r.with("unit "); len(u) != 1 || !sameFields(u[0], "ActiveState=active ExecMainStatus=0 Result=success") {
		t.Errorf("dpm-netconf.service: %q", u)
	}
	// The initramfs's kmsg lines made it to the journal.
	journal := distroResult{console: strings.Join(r.with("journal "), "\n")}
	sw := r.switchRoot(t)
	for _, mac := range []string{"0a:00:00:00:00:11", "0e:11:22:33:44:55"} {
		if at := journal.macSetAt("apply", mac); at < 0 || at > sw {
			t.Errorf("journalctl -b lacks the initramfs's line setting %s (found at %.2fs, switch root %.2fs):\n%s", mac, at, sw, journal.console)
		}
	}
	// The unit, and the per-NIC instances udev's coldplug wants (in the
	// initramfs and in the real root), find the initramfs's work done.
	unitUnchanged(t, r, "0.0.0001", "0.0.0004", "0.0.0010")
	wantCloudInitAddrs(t, r)
	r.timeline(t)
	hotplugReadd(t, r)
}

// hotplugReadd checks the hot-plug phase of dpmtest=readd: (a) listed
// 0.0.0001 unplugged and plugged in again with QEMU's MAC gets the listed
// MAC back from the instance its add event started (the time it took is
// logged, not asserted: under TCG it varies, 1.5–2.2 s so far); (c)
// unlisted 0.0.0030 plugged in is left alone, silently; (d) five add events at once for 0.0.0010 never
// run two applies at a time and leave its MAC right; no unit failed; and
// the original tools' names work.
func hotplugReadd(t *testing.T, r distroResult) {
	t.Helper()
	if a := r.afterWith("readd "); len(a) != 1 || len(strings.Fields(a[0])) != 4 || strings.Fields(a[0])[3] != "0a:00:00:00:00:11" {
		t.Errorf("(a) re-added 0.0.0001: %q (timeout: %q)", a, r.afterWith("readd-timeout "))
	} else {
		// From the kernel's add event (udevadm monitor's monotonic clock)
		// to the instance's ok line (the MAC set and read back; journal
		// timestamps, the same clock).
		back := r.lastAdd("/0.0.0001 (ccw)")
		set := instanceSetMAC(r.afterWith("instance "), "0a:00:00:00:00:11")
		t.Logf("(a) 0.0.0001 added again at %.2fs (uevent), its MAC 0a:00:00:00:00:11 set and read back by dpm-netconf@0.0.0001 at %.2fs: %.2fs later (the guest's own poll saw it at %ss)", back, set, set-back, strings.Fields(a[0])[1])
		if back < 0 || set < back {
			t.Errorf("(a) no add event (%.2fs) or no instance setting 0a:00:00:00:00:11 after it (%.2fs):\n%s", back, set, strings.Join(r.afterWith("instance "), "\n"))
		}
	}
	if u := r.afterWith("unlisted "); len(u) != 1 || !strings.HasSuffix(u[0], " 52:54:00:00:00:30") {
		t.Errorf("(c) unlisted 0.0.0030: %q, want QEMU's MAC 52:54:00:00:00:30 left alone", u)
	}
	for _, l := range append(r.afterWith("instance "), r.afterWith("units ")...) {
		if strings.Contains(l, "0.0.0030") {
			t.Errorf("(c) unlisted 0.0.0030 got an instance: %s", l)
		}
		if strings.Contains(l, vm.Prefix("apply")+"error: ") {
			t.Errorf("an instance logged an error: %s", l)
		}
	}
	if b := r.afterWith("burst "); len(b) != 1 || !strings.HasSuffix(b[0], " 0e:11:22:33:44:55") {
		t.Errorf("(d) after five add events, 0.0.0010: %q", b)
	}
	runs := r.instanceRuns("0.0.0010")
	for i := 1; i < len(runs); i++ {
		if runs[i].from < runs[i-1].to {
			t.Errorf("(d) two applies for 0.0.0010 at once: %+v and %+v", runs[i-1], runs[i])
		}
	}
	t.Logf("(d) applies for 0.0.0010 over the boot and the burst: %+v", runs)
	if f := r.afterWith("failed "); len(f) != 0 || len(r.afterWith("failed-end")) != 1 {
		t.Errorf("systemctl --failed: %q", f)
	}
	for _, tc := range []struct{ key, want string }{
		{"enabled-by-preset", "enabled"},
		{"after-disable", "disabled"},
		{"setmac.sh", "0"},
		{"autoconfigure_networking.sh", "0"},
	} {
		if got := r.afterWith(tc.key + " "); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: %q, want %q", tc.key, got, tc.want)
		}
	}
	// systemctl enable by the original name enables our unit.
	if got := r.afterWith("after-enable-alias "); len(got) != 1 || strings.Fields(got[0])[0] != "enabled" {
		t.Errorf("systemctl enable autoconfigure_networking.service: %q (it said %q)", got, r.afterWith("enable-said "))
	} else {
		t.Logf("after systemctl enable autoconfigure_networking.service: dpm-netconf.service, autoconfigure_networking.service: %s", got[0])
	}
}

// 3, the other half: without dpm-netconf the same boot gets no addresses.
func TestDistroTurnedOff(t *testing.T) {
	t.Parallel() // two guests at a time on two cores (go test -parallel)
	r := distroBoot{flavour: "systemd", args: "dpm_netconf=0"}.run(t)
	if r.ifaceWith("0a:00:00:00:00:11") != "" || r.ifaceWith("0e:11:22:33:44:55") != "" {
		t.Errorf("MACs were set although dpm_netconf=0: %q", r.with("link "))
	}
	for _, l := range r.with("addr ") {
		if strings.Contains(l, "192.0.2.") {
			t.Errorf("cloud-init configured %s without the listed MACs", l)
		}
	}
}

// 4: with the dracut hook off, the systemd unit alone configures the NICs
// before cloud-init.
func TestDistroUnitAlone(t *testing.T) {
	t.Parallel() // two guests at a time on two cores (go test -parallel)
	r := distroBoot{flavour: "systemd", args: "rd.dpm_netconf=0"}.run(t)
	sw := r.switchRoot(t)
	for _, o := range r.oks("apply") {
		if o.at < sw {
			t.Errorf("apply ran in the initramfs although rd.dpm_netconf=0: %.2fs %s", o.at, o.Line)
		}
	}
	// In the real root the unit sets each MAC: the instances udev's
	// coldplug wants are ordered after it.
	for _, mac := range []string{"0a:00:00:00:00:11", "0e:11:22:33:44:55"} {
		if at, byInstance := r.macSetAt("apply", mac), instanceSetMAC(r.with("instance "), mac); at < 0 || byInstance >= 0 {
			t.Errorf("%s: set by an apply at %.2fs, by an instance at %.2fs; want the unit:\n%s", mac, at, byInstance, strings.Join(r.with("journal "), "\n"))
		} else {
			t.Logf("%s set by dpm-netconf.service at %.2fs, switch root at %.2fs", mac, at, sw)
		}
	}
	unitOK := map[string]bool{}
	for _, o := range r.oks("apply") {
		unitOK[o.BusID] = true
	}
	for _, id := range []string{"0.0.0001", "0.0.0004", "0.0.0010"} {
		if !unitOK[id] {
			t.Errorf("dpm-netconf.service has no ok line for %s", id)
		}
	}
	if d, ok := r.unitDone(t); !ok || d.Exit != 0 || d.Configured != 3 || d.Total != 3 {
		t.Errorf("dpm-netconf.service's closing line: %+v (found: %v)", d, ok)
	}
	_, unitDone := r.unitTimes("dpm-netconf")
	cloudStart, _ := r.unitTimes("cloud-init-local")
	if unitDone <= 0 || cloudStart <= 0 || unitDone > cloudStart {
		t.Errorf("dpm-netconf.service finished at %dµs, cloud-init-local started at %dµs", unitDone, cloudStart)
	}
	wantCloudInitAddrs(t, r)
	r.timeline(t)
}

// 1 in the shell flavour, and a NIC that comes late (issue 9 (b)).
// 0.0.0020 is listed but absent at boot: the initramfs and the unit report
// it missing after 5 s, and the boot goes on; plugged in later, its
// instance configures it. In the shell initramfs udev's rule runs the
// one-NIC apply itself at coldplug.
func TestDistroDracutShellAndHotplug(t *testing.T) {
	t.Parallel() // two guests at a time on two cores (go test -parallel)
	// 0.0.0020 is listed but absent, with the default 60 s deadline: its
	// absence must cost seconds (the channel subsystem has settled), not
	// two deadlines.
	r := distroBoot{
		flavour: "shell",
		args:    "0020,0,0a0000000020;",
		hotplug: "late",
	}.run(t)
	beforeSwitchRoot(t, r)
	wantCloudInitAddrs(t, r)
	sw := r.switchRoot(t)
	var missing []float64
	for _, m := range regexp.MustCompile(`\[\s*([0-9]+\.[0-9]+)\][^\r\n]*`+regexp.QuoteMeta(vm.ErrorPrefix("apply")+"0.0.0020: FAILED at ")+`\w+: device 0\.0\.0020 not found`).FindAllStringSubmatch(r.console, -1) {
		at, _ := strconv.ParseFloat(m[1], 64)
		missing = append(missing, at)
	}
	if len(missing) == 0 || slices.Min(missing) > sw || slices.Max(missing) < sw {
		t.Errorf("0.0.0020 was not reported missing by both the initramfs and the unit (at %v, switch root %.2fs)", missing, sw)
	}
	if n := strings.Count(r.console, "device 0.0.0020 not found (not in /sys/bus/ccw/devices; cio_ignore does not list it; the channel subsystem has sensed every device)"); n < 2 {
		t.Errorf("0.0.0020's absence was reported final after the settle %d times, want the hook's and the unit's", n)
	}
	// What the absent NIC cost: the runs that failed on it (the hook's and
	// the unit's), by their own closing lines; logged, not asserted (the
	// emulator's speed varies): that neither waited for its deadline is
	// the message above, which only the report after the settle gives.
	// The console shows each line up to three times (stderr, the kernel
	// log, the report's journal): a run is its distinct duration.
	var cost time.Duration
	runs := map[string]bool{}
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(vm.Prefix("apply"))+`done in (\S+): 3 of 4 NICs configured, 0 invalid entries; exit status 1`).FindAllStringSubmatch(r.console, -1) {
		if runs[m[1]] {
			continue
		}
		runs[m[1]] = true
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Errorf("a run with the absent 0.0.0020: closing line's duration %q: %v", m[1], err)
		}
		cost += d
	}
	if len(runs) != 2 {
		t.Errorf("%d runs closed with the absent 0.0.0020 (%v), want the hook's and the unit's", len(runs), runs)
	}
	t.Logf("the runs that met the absent 0.0.0020 took %v in all (the hook's and the unit's: %v)", cost, runs)
	if u := r.with("unit "); len(u) != 1 || !sameFields(u[0], "ActiveState=failed ExecMainStatus=1 Result=exit-code") {
		t.Errorf("dpm-netconf.service: %q, want failed with exit status 1 (the absent NIC)", u)
	}
	if f := r.with("boot-failed "); !slices.ContainsFunc(f, func(l string) bool { return strings.HasPrefix(l, "dpm-netconf.service ") }) {
		t.Errorf("systemctl --failed: %q, want dpm-netconf.service", f)
	}
	// udev's RUN fallback: one-NIC applies (closing line "1 of 1") in the
	// initramfs, after the hook's run.
	var oneNIC []float64
	for _, m := range regexp.MustCompile(`\[\s*([0-9]+\.[0-9]+)\][^\r\n]*`+regexp.QuoteMeta(vm.Prefix("apply"))+`done in \S+: 1 of 1 NICs configured`).FindAllStringSubmatch(r.console, -1) {
		if at, _ := strconv.ParseFloat(m[1], 64); at < sw {
			oneNIC = append(oneNIC, at)
		}
	}
	if len(oneNIC) == 0 {
		t.Errorf("no one-NIC apply ran from udev's rule in the shell initramfs (switch root %.2fs)", sw)
	} else {
		t.Logf("udev's rule ran %d one-NIC applies in the shell initramfs (at %v)", len(oneNIC), oneNIC)
	}
	if l := r.afterWith("late "); len(l) != 1 || len(strings.Fields(l[0])) != 4 || strings.Fields(l[0])[3] != "0a:00:00:00:00:20" {
		t.Errorf("(b) late 0.0.0020: %q (timeout: %q), instances:\n%s", l, r.afterWith("late-timeout "), strings.Join(r.afterWith("instance "), "\n"))
	} else {
		f := strings.Fields(l[0])
		plugged, set := parseSeconds(f[0]), parseSeconds(f[1])
		t.Logf("(b) 0.0.0020 plugged in at %.2fs, MAC %s set at %.2fs: %.2fs later", plugged, f[3], set, set-plugged)
		if at := instanceSetMAC(r.afterWith("instance "), "0a:00:00:00:00:20"); at < plugged {
			t.Errorf("(b) dpm-netconf@0.0.0020 did not report setting the MAC (at %.2fs):\n%s", at, strings.Join(r.afterWith("instance "), "\n"))
		}
	}
}

// lastAdd returns the timestamp of the last kernel add event (as udevadm
// monitor printed it) whose line ends with suffix, or -1.
func (r distroResult) lastAdd(suffix string) float64 {
	at := -1.0
	for _, l := range r.afterWith("uevent ") {
		if m := regexp.MustCompile(`^KERNEL\[([0-9.]+)\] add\s+(\S+ \(\w+\))`).FindStringSubmatch(l); m != nil && strings.HasSuffix(m[2], suffix) {
			at = parseSeconds(m[1])
		}
	}
	return at
}

// afterWith returns the hot-plug phase's report lines starting with prefix.
func (r distroResult) afterWith(prefix string) []string {
	return distroResult{lines: r.after}.with(prefix)
}

// instanceSetMAC returns when a dpm-netconf@ instance first reported
// setting mac in its journal lines (the report's "instance" lines), or -1.
func instanceSetMAC(lines []string, mac string) float64 {
	return distroResult{console: strings.Join(lines, "\n")}.macSetAt("apply", mac)
}

// run is one dpm-netconf process's span in the journal.
type run struct {
	pid      string
	from, to float64
}

// instanceRuns returns the spans of the instances' applies that named
// busID, in order of start.
func (r distroResult) instanceRuns(busID string) []run {
	spans := map[string]*run{}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`\[\s*([0-9]+\.[0-9]+)\] \S+ dpm-netconf\[(\d+)\]: (.*)`).FindAllStringSubmatch(strings.Join(r.afterWith("instance "), "\n"), -1) {
		at, pid := parseSeconds(m[1]), m[2]
		if sp, ok := spans[pid]; ok {
			sp.to = max(sp.to, at)
		} else {
			spans[pid] = &run{pid, at, at}
		}
		named[pid] = named[pid] || strings.Contains(m[3], busID)
	}
	var out []run
	for pid, sp := range spans {
		if named[pid] {
			out = append(out, *sp)
		}
	}
	slices.SortFunc(out, func(a, b run) int { return cmp.Compare(a.from, b.from) })
	return out
}

func parseSeconds(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// Debian's own initramfs builder (issue 10): a root without dracut where
// the original DPM tools' files were placed by hand, our .deb installed by
// dpkg, the initramfs built by update-initramfs. The init-premount script
// sets the MACs before the root is mounted; cloud-init configures the NICs
// by MAC; the original tools' rule and unit never run, and dpkg said what
// it took over.
func TestDistroInitramfsTools(t *testing.T) { initramfsTools(t, false) }

// TestDistroInitramfsToolsKernel612: the same on Debian 13's kernel 6.12
// (initramfs-tools copies its .ko.xz modules as they are).
func TestDistroInitramfsToolsKernel612(t *testing.T) { initramfsTools(t, true) }

func initramfsTools(t *testing.T, kernel612 bool) {
	t.Parallel() // two guests at a time on two cores (go test -parallel)
	r := distroBoot{flavour: "initramfs-tools", kernel612: kernel612}.run(t)
	r.wantKernel(t, kernel612)
	// The root disk is vda or vdb: virtio-blk probes the two disks in
	// either order.
	mounted := r.stamps(`EXT4-fs \(vd[a-z]\): mounted filesystem`)
	if len(mounted) == 0 {
		t.Fatalf("no root mount in the console")
	}
	for _, mac := range []string{"0a:00:00:00:00:11", "0e:11:22:33:44:55"} {
		if at := r.macSetAt("apply", mac); at < 0 || at > mounted[0] {
			t.Errorf("the initramfs did not report setting %s before the root was mounted (set at %.2fs, mounted at %.2fs)", mac, at, mounted[0])
		} else {
			t.Logf("%s set at %.2fs, root mounted at %.2fs", mac, at, mounted[0])
		}
	}
	if u := r.with("unit "); len(u) != 1 || !sameFields(u[0], "ActiveState=active ExecMainStatus=0 Result=success") {
		t.Errorf("dpm-netconf.service: %q", u)
	}
	wantCloudInitAddrs(t, r)
	r.timeline(t)
	if strings.Contains(r.console, "DPMORIGINAL") {
		t.Errorf("an original tool ran: %q", regexp.MustCompile(`DPMORIGINAL[^\r\n]*`).FindAllString(r.console, -1))
	}
	log, err := os.ReadFile(filepath.Join(r.dir, "dpkg-install.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"/usr/bin/autoconfigure_networking.sh (the original DPM tools' script) becomes a link to dpm-netconf; a copy is in /var/backups/dpm-netconf/",
		"/usr/bin/setmac.sh (the original DPM tools' script) becomes a link to dpm-netconf",
		"moved the original tools' udev rule to /etc/udev/rules.d/80-setmac.rules.dpm-netconf-disabled",
		"moved the original tools' unit to /etc/systemd/system/autoconfigure_networking.service.dpm-netconf-disabled",
		"removed /etc/systemd/system/multi-user.target.wants/autoconfigure_networking.service",
	} {
		if !strings.Contains(string(log), want) {
			t.Errorf("dpkg's output lacks %q:\n%s", want, log)
		}
	}
	t.Logf("dpkg -i said:\n%s", log)
}

// wantKernel fails the test unless the guest ran the kernel line asked for:
// an image built with the other kernel would prove nothing about this one.
func (r distroResult) wantKernel(t *testing.T, kernel612 bool) {
	t.Helper()
	want := "Linux version 6.1."
	if kernel612 {
		want = "Linux version 6.12."
	}
	if !strings.Contains(r.console, want) {
		t.Errorf("the guest's kernel is not %q: %q", want, regexp.MustCompile(`Linux version [^\r\n]*`).FindString(r.console))
	}
}
