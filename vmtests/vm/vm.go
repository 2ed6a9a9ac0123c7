// Package vm boots the s390x test guest — Debian's kernel under
// qemu-system-s390x with the u-root image whose uinit is dpm-netconf, plus
// the dpmprobe helper — and talks to it over its console. The VM tests and
// `make demo` share it.
package vm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	expect "github.com/Netflix/go-expect"
	"github.com/hugelgupf/vmtest/qemu"
	"github.com/u-root/mkuimage/cpio"

	"github.com/dpm-guest-image-tools/dpm-netconf/vmtests/probewire"
)

// S390x is the guest architecture; vmtest has none, but its arch list is an
// exported slice.
const S390x = qemu.Arch("s390x")

func init() { qemu.SupportedArches = append(qemu.SupportedArches, S390x) }

// QEMU is the machine every guest gets.
const QEMU = "qemu-system-s390x -M s390-ccw-virtio -cpu max -m 1024 -no-reboot"

// QEMUCommand is QEMU, or DPM_QEMU when set: another QEMU binary or
// other accelerator options, for measuring them (make bootstats).
func QEMUCommand() string {
	if c := os.Getenv("DPM_QEMU"); c != "" {
		return c
	}
	return QEMU
}

// ErrNotReady means the kernel, the image or QEMU is missing: the caller
// decides whether that skips or fails.
type ErrNotReady struct{ Why string }

func (e ErrNotReady) Error() string { return e.Why }

// Env is what every boot needs.
type Env struct {
	KernelDir string // an unpacked kernel package: vmlinuz, release, root/
	Release   string
	Initramfs string // the user's image with dpmprobe appended
	tmp       string
	base      []byte // the user's image
	probe     string // dpmprobe built for s390x
}

// Prepare checks for QEMU, the kernel (make kernel) and the image (make
// uimage), builds dpmprobe for s390x (from probeDir, a package path
// directory) and appends it to the image as a second cpio archive (the
// kernel unpacks concatenated archives in order).
func Prepare(kernelDir, image, probeDir string) (*Env, error) {
	if _, err := exec.LookPath("qemu-system-s390x"); err != nil {
		return nil, ErrNotReady{"qemu-system-s390x is not installed (apt-get install qemu-system-misc, or make vmtest)"}
	}
	rel, err := os.ReadFile(filepath.Join(kernelDir, "release"))
	if err != nil {
		return nil, ErrNotReady{fmt.Sprintf("no s390x kernel in %s (make kernel, or make vmtest)", kernelDir)}
	}
	base, err := os.ReadFile(image)
	if err != nil {
		return nil, ErrNotReady{fmt.Sprintf("no u-root image %s (make uimage, or make vmtest)", image)}
	}
	e := &Env{KernelDir: kernelDir, Release: strings.TrimSpace(string(rel)), base: base}
	if e.tmp, err = os.MkdirTemp("", "dpm-vm-"); err != nil {
		return nil, err
	}
	e.probe = filepath.Join(e.tmp, "dpmprobe")
	build := exec.Command("go", "build", "-trimpath", "-o", e.probe, ".")
	build.Dir = probeDir
	build.Env = append(os.Environ(), "GOARCH=s390x", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build dpmprobe: %v\n%s", err, out)
	}
	e.Initramfs, err = e.InitramfsWith("initramfs.cpio", nil)
	return e, err
}

// Probe returns dpmprobe built for s390x.
func (e *Env) Probe() ([]byte, error) { return os.ReadFile(e.probe) }

// ProbeAsUinit returns the initramfs files that make dpmprobe the image's
// uinit in place of dpm-netconf: u-root's init runs /bbin/uinit, then
// /bin/uinit (the image's link to dpm-netconf), then its shell, so the
// probe goes to /bin/uinit, replacing the link (a later cpio archive
// replaces an earlier one's entry). At boot it runs script (dpmprobe
// script): steps, then power-off, or, when the script ends with "shell",
// init's shell. dpm-netconf does not run at boot.
func (e *Env) ProbeAsUinit(script string) (map[string][]byte, error) {
	probe, err := e.Probe()
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"bin/uinit": probe, "etc/dpmprobe.script": []byte(script)}, nil
}

// InitramfsWith writes the user's image plus dpmprobe (as /bin/dpmprobe)
// and files (archive path: contents) to a new file in the Env's folder.
func (e *Env) InitramfsWith(name string, files map[string][]byte) (string, error) {
	probe, err := os.ReadFile(e.probe)
	if err != nil {
		return "", err
	}
	all := map[string][]byte{"bin/dpmprobe": probe}
	for k, v := range files {
		all[k] = v
	}
	overlay, err := cpioWith(all)
	if err != nil {
		return "", err
	}
	p := filepath.Join(e.tmp, name)
	return p, os.WriteFile(p, append(append([]byte(nil), e.base...), overlay...), 0o644)
}

// Close removes the prepared files.
func (e *Env) Close() { os.RemoveAll(e.tmp) }

// cpioWith makes a newc archive holding files (archive path: contents).
func cpioWith(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	var recs []cpio.Record
	for dst, b := range files {
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

// NIC is a virtio-net-ccw NIC QEMU gives the guest.
type NIC struct {
	Devno string // 4 hex digits
	MAC   string
}

// ID is the NIC's QEMU device id (for device_del): "nic" and its devno.
func (n NIC) ID() string { return "nic" + n.Devno }

// VirtioNICs gives each devno a predictable QEMU MAC, 52:54:00:00:<devno>.
func VirtioNICs(devnos ...string) []NIC {
	var n []NIC
	for _, d := range devnos {
		v, _ := strconv.ParseUint(d, 16, 16)
		n = append(n, NIC{Devno: d, MAC: fmt.Sprintf("52:54:00:00:%02x:%02x", v>>8, v&0xff)})
	}
	return n
}

// NICArgs are QEMU's arguments for the NICs.
func NICArgs(nics []NIC) []string {
	var a []string
	for i, n := range nics {
		dev := fmt.Sprintf("virtio-net-ccw,netdev=n%d,devno=fe.0.%s,id=%s", i, n.Devno, n.ID())
		if n.MAC != "" {
			dev += ",mac=" + n.MAC
		}
		a = append(a, "-netdev", fmt.Sprintf("user,id=n%d", i), "-device", dev)
	}
	return a
}

// Guest is a booted VM with its console.
type Guest struct {
	VM      *qemu.VM
	Started time.Time
}

// Boot starts the guest: its init runs "dpm-netconf apply" (plus
// uroot.uinitargs from kernelArgs), then a shell. fns add QEMU options, e.g.
// where the console goes.
func (e *Env) Boot(kernelArgs string, nics []NIC, fns ...qemu.Fn) (*Guest, error) {
	return e.BootImage(e.Initramfs, kernelArgs, nics, fns...)
}

// BootImage is Boot with another initramfs (one from InitramfsWith).
func (e *Env) BootImage(initramfs, kernelArgs string, nics []NIC, fns ...qemu.Fn) (*Guest, error) {
	g := &Guest{Started: time.Now()}
	var err error
	g.VM, err = qemu.Start(S390x, append([]qemu.Fn{
		qemu.WithQEMUCommand(QEMU),
		qemu.WithKernel(filepath.Join(e.KernelDir, "vmlinuz")),
		qemu.WithInitramfs(initramfs),
		qemu.WithAppendKernel(kernelArgs),
		qemu.ArbitraryArgs(NICArgs(nics)...),
		qemu.WithVMTimeout(4 * time.Minute),
	}, fns...)...)
	return g, err
}

// Close stops the guest and drains its console.
func (g *Guest) Close() {
	_ = g.VM.Kill()
	_ = g.VM.Wait() // an error here is the kill
}

// Expect waits for a regular expression on the console; it returns the
// submatches and everything read up to the match.
func (g *Guest) Expect(timeout time.Duration, re string) ([]string, string, error) {
	rx := regexp.MustCompile(re)
	out, err := g.VM.Console.Expect(expect.Regexp(rx), expect.WithTimeout(timeout))
	if err != nil {
		return nil, out, fmt.Errorf("waiting %v for %q on the console: %w", timeout, re, err)
	}
	return rx.FindStringSubmatch(out), out, nil
}

// Prompt waits for the shell u-root's init starts after the uinit.
func (g *Guest) Prompt() error {
	_, _, err := g.Expect(30*time.Second, `(?m)^\$ `)
	return err
}

// Send types a line on the console.
func (g *Guest) Send(line string) error {
	_, err := g.VM.Console.SendLine(line)
	return err
}

// Applied is the closing line of a dpm-netconf apply on the console.
type Applied struct {
	Done
	BootToDone time.Duration // QEMU start to that line
	Console    string        // the console up to it
}

// WaitApplied waits for the boot's dpm-netconf to finish, then for the shell.
func (g *Guest) WaitApplied(timeout time.Duration) (Applied, error) {
	m, out, err := g.Expect(timeout, DonePattern("apply"))
	if err != nil {
		return Applied{Console: out}, err
	}
	a := Applied{Done: doneFrom(m), BootToDone: time.Since(g.Started), Console: out}
	return a, g.Prompt()
}

// Report is dpmprobe's view of the guest: sysfs and netlink read directly.
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
		Layer2     string `json:"layer2"`
		Port       string `json:"port"`
		State      string `json:"state"`
	} `json:"nics"`
	Modules   []string `json:"modules"`
	CIOIgnore []string `json:"cio_ignore"`
	Groups    []struct {
		BusID  string `json:"bus_id"`
		Online string `json:"online"`
		Layer2 string `json:"layer2"`
		Port   string `json:"port"`
		State  string `json:"state"`
	} `json:"groups"`
}

// Report asks the guest's probe for its readings.
func (g *Guest) Report() (Report, error) {
	var r Report
	if err := g.Send("dpmprobe report"); err != nil {
		return r, err
	}
	_, out, err := g.Expect(30*time.Second, `DPMPROBE64 \.\r*\n`)
	if err != nil {
		return r, err
	}
	if r, err = ParseReport(out); err != nil {
		return r, err
	}
	return r, g.Prompt()
}

// ParseReport decodes the last complete probe report in a console's text.
func ParseReport(text string) (Report, error) {
	var r Report
	err := Decode64(text, "DPMPROBE64", &r)
	return r, err
}

// Decode64 decodes into v the last complete JSON block the probe printed
// base64-encoded in lines "tag <chunk>", ending with "tag .".
func Decode64(text, tag string, v any) error {
	var chunks []string
	var last string
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(tag)+` (\S+)`).FindAllStringSubmatch(text, -1) {
		if m[1] == "." {
			last, chunks = strings.Join(chunks, ""), nil
			continue
		}
		chunks = append(chunks, m[1])
	}
	if last == "" {
		return fmt.Errorf("no complete %s block", tag)
	}
	b, err := base64.StdEncoding.DecodeString(last)
	if err != nil {
		return fmt.Errorf("%s: %w", tag, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %s: %w", tag, b, err)
	}
	return nil
}

// RaceProc is one process of a probe race.
type RaceProc = probewire.RaceProc

// Race starts copies of cmd (e.g. "dpm-netconf apply") and the probe's
// actor for busIDs in the guest at one instant, and returns every process,
// the copies first, the actor last.
func (g *Guest) Race(timeout time.Duration, copies int, busIDs []string, cmd string) ([]RaceProc, error) {
	if err := g.Send(fmt.Sprintf("dpmprobe race %d %s %s", copies, strings.Join(busIDs, ","), cmd)); err != nil {
		return nil, err
	}
	_, out, err := g.Expect(timeout, `DPMRACE64 \.\r*\n`)
	if err != nil {
		return nil, err
	}
	var procs []RaceProc
	if err := Decode64(out, "DPMRACE64", &procs); err != nil {
		return nil, err
	}
	if len(procs) != copies+1 {
		return procs, fmt.Errorf("race reported %d processes, want %d", len(procs), copies+1)
	}
	return procs, g.Prompt()
}

// Run runs a command in the guest through the probe and returns its
// output, exit status and exec-to-exit time in ms.
func (g *Guest) Run(timeout time.Duration, cmd string) (string, int, float64, error) {
	if err := g.Send("dpmprobe run " + cmd); err != nil {
		return "", 0, 0, err
	}
	m, out, err := g.Expect(timeout, `DPMRUN exit=(-?\d+) ms=([0-9.]+)\r*\n`)
	if err != nil {
		return out, 0, 0, err
	}
	code, _ := strconv.Atoi(m[1])
	ms, _ := strconv.ParseFloat(m[2], 64)
	return out, code, ms, g.Prompt()
}
