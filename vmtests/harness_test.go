package vmtests

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hugelgupf/vmtest/qemu"

	"github.com/dpm-guest-image-tools/dpm-netconf/vmtests/vm"
)

// The environment every VM test needs, prepared once: the kernel that
// `make kernel` unpacked and the user's image (`make uimage`) with the probe.
var (
	once   sync.Once
	env    *vm.Env
	envErr error
)

func requireVM(t *testing.T) *vm.Env {
	t.Helper()
	once.Do(func() {
		kernel := os.Getenv("DPM_KERNEL_DIR")
		if kernel == "" {
			kernel = "../.cache/kernel/debian12"
		}
		image := os.Getenv("DPM_UIMAGE")
		if image == "" { // make uimage names it by a hash of its inputs
			images, _ := filepath.Glob("../.cache/uimage/dpm-netconf-s390x-debian12-*.cpio")
			image = "../.cache/uimage/dpm-netconf-s390x-debian12-<hash>.cpio"
			if len(images) == 1 {
				image = images[0]
			}
		}
		env, envErr = vm.Prepare(kernel, image, filepath.Join("guest", "dpmprobe"))
	})
	var nr vm.ErrNotReady
	if errors.As(envErr, &nr) {
		if os.Getenv("CI") != "" {
			t.Fatalf("VM tests must run in CI: %v", nr)
		}
		t.Skipf("skipped outside CI: %v; run: make vmtest", nr)
	}
	if envErr != nil {
		t.Fatal(envErr)
	}
	return env
}

// guest wraps vm.Guest for a test: failures end the test, the console goes
// to the test log, the guest is stopped at the end.
type guest struct {
	t *testing.T
	*vm.Guest
}

func boot(t *testing.T, kernelArgs string, nics []vm.NIC) *guest {
	return bootImage(t, requireVM(t).Initramfs, kernelArgs, nics)
}

// bootImage boots another initramfs (from vm.Env.InitramfsWith).
func bootImage(t *testing.T, initramfs, kernelArgs string, nics []vm.NIC) *guest {
	e := requireVM(t)
	g, err := e.BootImage(initramfs, kernelArgs, nics, qemu.LogSerialByLine(qemu.DefaultPrint(t.Name(), t.Logf)))
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Cleanup(func() {
		g.Close()
		t.Logf("QEMU command line: %s", g.VM.CmdlineQuoted())
	})
	return &guest{t, g}
}

func (g *guest) expect(timeout time.Duration, re string) []string {
	g.t.Helper()
	m, _, err := g.Expect(timeout, re)
	if err != nil {
		g.t.Fatal(err)
	}
	return m
}

func (g *guest) prompt() {
	g.t.Helper()
	if err := g.Prompt(); err != nil {
		g.t.Fatal(err)
	}
}

func (g *guest) send(line string) {
	g.t.Helper()
	if err := g.Send(line); err != nil {
		g.t.Fatal(err)
	}
}

func (g *guest) waitApplied(timeout time.Duration) vm.Applied {
	g.t.Helper()
	a, err := g.WaitApplied(timeout)
	if err != nil {
		g.t.Fatalf("dpm-netconf at boot: %v", err)
	}
	g.t.Logf("dpm-netconf at boot: exit %d, %d/%d configured, %d invalid, exec-to-exit %s, QEMU start to done %v",
		a.Exit, a.Configured, a.Total, a.Invalid, a.Took, a.BootToDone.Round(10*time.Millisecond))
	return a
}

func (g *guest) report() vm.Report {
	g.t.Helper()
	r, err := g.Report()
	if err != nil {
		g.t.Fatal(err)
	}
	return r
}

func (g *guest) run(timeout time.Duration, cmd string) (string, int, float64) {
	g.t.Helper()
	out, code, ms, err := g.Run(timeout, cmd)
	if err != nil {
		g.t.Fatalf("%s: %v", cmd, err)
	}
	return out, code, ms
}

// okLines returns the ok lines of a run of cmd in out by bus id (a line
// may be there twice: from stderr and from the kernel log).
func okLines(out, cmd string) map[string][]vm.OK {
	m := map[string][]vm.OK{}
	for _, o := range vm.OKLines(out, cmd) {
		m[o.BusID] = append(m[o.BusID], o)
	}
	return m
}

// wantUnchanged checks that a run of cmd reported each bus id configured
// already and changed nothing at all.
func wantUnchanged(t *testing.T, out, cmd string, busIDs ...string) {
	t.Helper()
	ok := okLines(out, cmd)
	for _, id := range busIDs {
		if len(ok[id]) == 0 {
			t.Errorf("%s: no ok line for %s in:\n%s", cmd, id, out)
		}
	}
	for id, lines := range ok {
		for _, o := range lines {
			if o.Steps != nil {
				t.Errorf("%s changed %s, want %q: %s", cmd, id, vm.Unchanged, o.Line)
			}
		}
	}
}

// wantDone checks the closing line of a run of cmd in out.
func wantDone(t *testing.T, out, cmd string, configured, total, invalid, exit int) vm.Done {
	t.Helper()
	d, ok := vm.ParseDone(out, cmd)
	if !ok {
		t.Errorf("no closing line %q in:\n%s", vm.Prefix(cmd)+"done in ...", out)
	} else if d.Configured != configured || d.Total != total || d.Invalid != invalid || d.Exit != exit {
		t.Errorf("%s: %d of %d NICs configured, %d invalid, exit status %d; want %d of %d, %d, %d",
			cmd, d.Configured, d.Total, d.Invalid, d.Exit, configured, total, invalid, exit)
	}
	return d
}

// macs maps bus id to MAC, checking that sysfs and netlink agree.
func macs(t *testing.T, r vm.Report) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range r.NICs {
		if n.SysfsMAC != n.NetlinkMAC {
			t.Errorf("%s (%s): sysfs says %s, netlink %s", n.BusID, n.Interface, n.SysfsMAC, n.NetlinkMAC)
		}
		m[n.BusID] = n.NetlinkMAC
	}
	return m
}

// consoleDir is where whole guest consoles are kept ($DPM_CONSOLE_DIR, as
// make vmtest sets it, else the temporary folder).
func consoleDir() string {
	if d := os.Getenv("DPM_CONSOLE_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	return os.TempDir()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		env.Close()
	}
	os.Exit(code)
}
