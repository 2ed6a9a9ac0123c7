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
			kernel = "../.cache/kernel/current"
		}
		image := os.Getenv("DPM_UIMAGE")
		if image == "" {
			image = "../.cache/uimage/dpm-netconf-s390x.cpio"
		}
		env, envErr = vm.Prepare(kernel, image, filepath.Join("guest", "dpmprobe"))
	})
	var nr vm.ErrNotReady
	if errors.As(envErr, &nr) {
		if os.Getenv("CI") != "" {
			t.Fatalf("VM tests must run in CI: %v", nr)
		}
		t.Skipf("skipped outside CI: %v", nr)
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
	e := requireVM(t)
	g, err := e.Boot(kernelArgs, nics, qemu.LogSerialByLine(qemu.DefaultPrint(t.Name(), t.Logf)))
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
