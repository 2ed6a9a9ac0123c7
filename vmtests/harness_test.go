package vmtests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	expect "github.com/Netflix/go-expect"
	"github.com/hugelgupf/vmtest/qemu"
	"github.com/u-root/mkuimage/cpio"
)

// vmtest has no s390x; its arch list is an exported slice.
const s390x = qemu.Arch("s390x")

func init() { qemu.SupportedArches = append(qemu.SupportedArches, s390x) }

const qemuCmd = "qemu-system-s390x -M s390-ccw-virtio -cpu max -m 1024 -no-reboot"

// setup is what every VM test needs, made once: the kernel that
// `make kernel` unpacked, and the user's u-root image (`make uimage`) with
// the test's probe appended as a second cpio archive (the kernel unpacks
// concatenated archives in order).
type setup struct {
	kernelDir string // unpacked kernel package: vmlinuz, release, root/
	release   string
	initramfs string // user image + probe
	err       error
	skip      string
}

var (
	once sync.Once
	env  setup
)

// repo is the repository root (tests run in vmtests/).
func repo() string { return ".." }

func requireVM(t *testing.T) *setup {
	t.Helper()
	once.Do(func() { env = prepare() })
	if env.skip != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("VM tests must run in CI: %s", env.skip)
		}
		t.Skipf("skipped outside CI: %s", env.skip)
	}
	if env.err != nil {
		t.Fatal(env.err)
	}
	return &env
}

func prepare() setup {
	var s setup
	if _, err := exec.LookPath("qemu-system-s390x"); err != nil {
		s.skip = "qemu-system-s390x is not installed (apt-get install qemu-system-misc, or make vmtest)"
		return s
	}
	s.kernelDir = os.Getenv("DPM_KERNEL_DIR")
	if s.kernelDir == "" {
		s.kernelDir = filepath.Join(repo(), ".cache/kernel/current")
	}
	image := os.Getenv("DPM_UIMAGE")
	if image == "" {
		image = filepath.Join(repo(), ".cache/uimage/dpm-netconf-s390x.cpio")
	}
	rel, err := os.ReadFile(filepath.Join(s.kernelDir, "release"))
	if err != nil {
		s.skip = fmt.Sprintf("no s390x kernel in %s (make kernel, or make vmtest)", s.kernelDir)
		return s
	}
	s.release = strings.TrimSpace(string(rel))
	base, err := os.ReadFile(image)
	if err != nil {
		s.skip = fmt.Sprintf("no u-root image %s (make uimage, or make vmtest)", image)
		return s
	}
	dir, err := os.MkdirTemp("", "dpm-vmtest-")
	if err != nil {
		s.err = err
		return s
	}
	probe := filepath.Join(dir, "dpmprobe")
	build := exec.Command("go", "build", "-trimpath", "-o", probe, "./guest/dpmprobe")
	build.Env = append(os.Environ(), "GOARCH=s390x", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		s.err = fmt.Errorf("build dpmprobe: %v\n%s", err, out)
		return s
	}
	overlay, err := cpioWith(map[string]string{"bin/dpmprobe": probe})
	if err != nil {
		s.err = err
		return s
	}
	s.initramfs = filepath.Join(dir, "initramfs.cpio")
	s.err = os.WriteFile(s.initramfs, append(base, overlay...), 0o644)
	return s
}

// cpioWith makes a newc archive holding files (archive path: host path).
func cpioWith(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	var recs []cpio.Record
	for dst, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		recs = append(recs, cpio.StaticFile(dst, string(b), 0o755))
	}
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		return nil, err
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// nicDev is a virtio-net-ccw NIC QEMU gives the guest.
type nicDev struct {
	devno string // 4 hex digits
	mac   string
}

func virtioNICs(devnos ...string) []nicDev {
	var n []nicDev
	for _, d := range devnos {
		v, _ := strconv.ParseUint(d, 16, 16)
		n = append(n, nicDev{devno: d, mac: fmt.Sprintf("52:54:00:00:%02x:%02x", v>>8, v&0xff)})
	}
	return n
}

// guest is a booted VM with its console.
type guest struct {
	t       *testing.T
	vm      *qemu.VM
	started time.Time
}

// boot starts the guest with the user's image: its init runs
// "dpm-netconf apply" (plus uroot.uinitargs from kernelArgs), then a shell.
func boot(t *testing.T, kernelArgs string, nics []nicDev) *guest {
	s := requireVM(t)
	var qargs []string
	for i, n := range nics {
		qargs = append(qargs,
			"-netdev", fmt.Sprintf("user,id=n%d", i),
			"-device", fmt.Sprintf("virtio-net-ccw,netdev=n%d,devno=fe.0.%s,mac=%s", i, n.devno, n.mac))
	}
	g := &guest{t: t, started: time.Now()}
	g.vm = qemu.StartT(t, t.Name(), s390x,
		qemu.WithQEMUCommand(qemuCmd),
		qemu.WithKernel(filepath.Join(s.kernelDir, "vmlinuz")),
		qemu.WithInitramfs(s.initramfs),
		qemu.WithAppendKernel(kernelArgs),
		qemu.ArbitraryArgs(qargs...),
		qemu.WithVMTimeout(4*time.Minute),
	)
	t.Cleanup(func() {
		_ = g.vm.Kill()
		_ = g.vm.Wait() // drains the console; an error is the kill
	})
	return g
}

// expect waits for a regular expression on the console and returns its
// submatches.
func (g *guest) expect(timeout time.Duration, re string) []string {
	g.t.Helper()
	rx := regexp.MustCompile(re)
	out, err := g.vm.Console.Expect(expect.Regexp(rx), expect.WithTimeout(timeout))
	if err != nil {
		g.t.Fatalf("waiting %v for %q on the console: %v", timeout, re, err)
	}
	return rx.FindStringSubmatch(out)
}

// applied is the closing line of the boot's dpm-netconf run.
type applied struct {
	exit        int
	configured  int
	total       int
	invalid     int
	took        string
	bootToReady time.Duration
	console     string
}

func (g *guest) waitApplied(timeout time.Duration) applied {
	g.t.Helper()
	rx := regexp.MustCompile(`dpm-netconf: apply done in (\S+): (\d+) of (\d+) NICs configured, (\d+) invalid entries; exit status (\d+)`)
	out, err := g.vm.Console.Expect(expect.Regexp(rx), expect.WithTimeout(timeout))
	if err != nil {
		g.t.Fatalf("dpm-netconf did not finish within %v: %v", timeout, err)
	}
	m := rx.FindStringSubmatch(out)
	a := applied{took: m[1], bootToReady: time.Since(g.started), console: out}
	a.configured, _ = strconv.Atoi(m[2])
	a.total, _ = strconv.Atoi(m[3])
	a.invalid, _ = strconv.Atoi(m[4])
	a.exit, _ = strconv.Atoi(m[5])
	g.t.Logf("dpm-netconf at boot: exit %d, %d/%d configured, %d invalid, exec-to-exit %s, QEMU start to done %v",
		a.exit, a.configured, a.total, a.invalid, a.took, a.bootToReady.Round(10*time.Millisecond))
	g.prompt()
	return a
}

// prompt waits for the shell u-root's init starts after the uinit.
func (g *guest) prompt() {
	g.t.Helper()
	g.expect(30*time.Second, `(?m)^\$ `)
}

func (g *guest) send(line string) {
	g.t.Helper()
	if _, err := g.vm.Console.SendLine(line); err != nil {
		g.t.Fatalf("send %q: %v", line, err)
	}
}

// Report is dpmprobe's view of the guest.
type Report struct {
	CCW  []string `json:"ccw"`
	NICs []struct {
		BusID      string `json:"bus_id"`
		Kind       string `json:"kind"`
		Online     string `json:"online"`
		Interface  string `json:"interface"`
		Index      int    `json:"index"`
		SysfsMAC   string `json:"sysfs_mac"`
		NetlinkMAC string `json:"netlink_mac"`
		DevPath    string `json:"devpath"`
	} `json:"nics"`
	Modules   []string `json:"modules"`
	CIOIgnore []string `json:"cio_ignore"`
}

// report asks the guest's probe for sysfs and netlink readings.
func (g *guest) report() Report {
	g.t.Helper()
	g.send("dpmprobe report")
	m := g.expect(30*time.Second, `DPMPROBE (\{.*\})\r*\n`)
	var r Report
	if err := json.Unmarshal([]byte(m[1]), &r); err != nil {
		g.t.Fatalf("probe report %q: %v", m[1], err)
	}
	g.prompt()
	return r
}

// macs maps bus id to MAC, checking that sysfs and netlink agree.
func (r Report) macs(t *testing.T) map[string]string {
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

// run runs a command in the guest through the probe and returns its output
// and exit status.
func (g *guest) run(timeout time.Duration, cmd string) (string, int, float64) {
	g.t.Helper()
	g.send("dpmprobe run " + cmd)
	rx := regexp.MustCompile(`DPMRUN exit=(-?\d+) ms=([0-9.]+)\r*\n`)
	out, err := g.vm.Console.Expect(expect.Regexp(rx), expect.WithTimeout(timeout))
	if err != nil {
		g.t.Fatalf("%s: %v", cmd, err)
	}
	m := rx.FindStringSubmatch(out)
	code, _ := strconv.Atoi(m[1])
	ms, _ := strconv.ParseFloat(m[2], 64)
	g.prompt()
	return out, code, ms
}
