package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/apply"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
)

type result struct {
	code           int
	stdout, stderr string
}

func runWith(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestPlanJSONShape(t *testing.T) {
	// The example: offset 57 is the byte offset of "0005,2".
	cl := "root=/dev/dasda1 ro quiet net 0001,1,0a0000000011;0004,0;0005,2;"
	if i := strings.Index(cl, "0005,2"); i != 57 {
		t.Fatalf("test command line: entry at %d", i)
	}
	r := runWith(t, cl, "dpm-netconf", "plan", "--json", "--cmdline", "-")
	want := `{"nics":[{"devno":"0001","bus_id":"0.0.0001","port":1,"mac":"0a:00:00:00:00:11"},{"devno":"0004","bus_id":"0.0.0004","port":0}],"errors":[{"entry":"0005,2","offset":57,"message":"port must be 0 or 1"}]}` + "\n"
	if r.code != 1 || r.stdout != want {
		t.Errorf("plan --json = %d\n%s\nwant 1\n%s", r.code, r.stdout, want)
	}
	r = runWith(t, "0001,0;", "dpm-netconf", "--json", "plan", "--cmdline=-")
	if r.code != 0 || r.stdout != `{"nics":[{"devno":"0001","bus_id":"0.0.0001","port":0}],"errors":[]}`+"\n" {
		t.Errorf("plan --json without errors = %d %s", r.code, r.stdout)
	}
}

func TestPlanText(t *testing.T) {
	r := runWith(t, "0001,1,0a0000000011;0007,3;", "dpm-netconf", "plan", "--cmdline", "-")
	if r.code != 1 ||
		!strings.Contains(r.stdout, `0.0.0001 (entry "0001,1,0a0000000011" at offset 0): free from cio_ignore if ignored; if OSA/HiperSockets: group 0.0.0001,0.0.0002,0.0.0003, layer2=1, portno=1, online; if virtio-net: online; then set MAC 0a:00:00:00:00:11`) ||
		!strings.Contains(r.stdout, `invalid: entry "0007,3" at offset 20: port must be 0 or 1: not applied`) {
		t.Errorf("plan = %d\n%s", r.code, r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"dpm-netconf", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"dpm-netconf", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"dpm-netconf", "setmac"}, "setmac takes 1 argument(s), got 0"},
		{[]string{"dpm-netconf", "apply", "0001", "extra"}, "apply takes 0 or 1 argument(s), got 2"},
		{[]string{"dpm-netconf", "plan", "--cmdline", "/nonexistent/cmdline"}, "read command line: open /nonexistent/cmdline: no such file or directory"},
		{[]string{"dpm-netconf", "--root", "/nonexistent", "apply"}, "read kernel command line: open /nonexistent/proc/cmdline"},
		{[]string{"dpm-netconf", "--timeout", "0s"}, `invalid value "0s" for flag -timeout`},
		{[]string{"dpm-netconf", "--timeout", "soon"}, `invalid value "soon" for flag -timeout`},
	} {
		r := runWith(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.err) {
			t.Errorf("%q = %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.err)
		}
	}
}

func TestVersion(t *testing.T) {
	if r := runWith(t, "", "dpm-netconf", "version"); r.code != 0 || r.stdout != "dpm-netconf dev\n" {
		t.Errorf("version = %+v", r)
	}
	for _, flag := range []string{"--version", "-V", "-version"} {
		if r := runWith(t, "", "dpm-netconf", flag); r.code != 0 || r.stdout != "dpm-netconf dev\n" || r.stderr != "" {
			t.Errorf("%s = %+v", flag, r)
		}
	}
}

// newTree is a --root tree: a virtio-net NIC whose ifindex (1) is lo's in
// every network namespace, so a MAC change must be refused.
func newTree(t *testing.T, cmdline string) string {
	tr := &kernelmodel.Tree{Root: t.TempDir()}
	if err := tr.VirtioNet("0.0.0001", "eth0", 1, "52:54:00:00:00:01"); err != nil {
		t.Fatal(err)
	}
	if err := tr.File("proc/cmdline", cmdline+"\n"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"sys/module/virtio_net/initstate", "sys/bus/virtio/drivers/virtio_net/uevent"} {
		if err := tr.File(f, "live\n"); err != nil {
			t.Fatal(err)
		}
	}
	return tr.Root
}

func TestStatusOnTree(t *testing.T) {
	root := newTree(t, "ro 0001,0,0a0000000011;0100,0;")
	r := runWith(t, "", "dpm-netconf", "status", "--root", root, "--json")
	var got struct {
		NICs []struct {
			BusID, Kind, Interface, MAC string
			WantMAC                     string `json:"wanted_mac"`
			OK                          bool
			Differs                     []string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if r.code != 1 || len(got.NICs) != 2 ||
		got.NICs[0].Kind != "virtio" || got.NICs[0].Interface != "eth0" || got.NICs[0].MAC != "52:54:00:00:00:01" || got.NICs[0].WantMAC != "0a:00:00:00:00:11" ||
		strings.Join(got.NICs[0].Differs, ";") != "MAC 52:54:00:00:00:01, want 0a:00:00:00:00:11" ||
		got.NICs[1].Kind != "missing" {
		t.Errorf("status = %d %+v", r.code, got)
	}
	r = runWith(t, "", "dpm-netconf", "status", "--root", root)
	lines := strings.Split(r.stdout, "\n")
	if len(lines) < 3 || strings.Join(strings.Fields(lines[1]), " ") != "0.0.0001 virtio yes - - eth0 0a:00:00:00:00:11 52:54:00:00:00:01 MAC 52:54:00:00:00:01, want 0a:00:00:00:00:11" {
		t.Errorf("status table:\n%s", r.stdout)
	}
}

func TestApplyRefusesForeignTree(t *testing.T) {
	// The tree says index 1 is eth0; this namespace's index 1 is lo.
	root := newTree(t, "0001,0,0a0000000011;")
	r := runWith(t, "", "dpm-netconf", "apply", "--root", root, "--timeout", "5s", "--json")
	if r.code != 1 || !strings.Contains(r.stderr, "0.0.0001: FAILED at mac: sysfs and netlink disagree on this interface: sysfs has eth0 at index 1, netlink has link lo there") {
		t.Errorf("apply = %d\nstderr %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, `"failed_step":"mac"`) {
		t.Errorf("apply --json: %s", r.stdout)
	}
}

func TestTurnedOff(t *testing.T) {
	root := newTree(t, "dpm_netconf=0 0001,0,0a0000000011;0100,0;")
	for _, args := range [][]string{{"dpm-netconf", "apply"}, {"setmac.sh", "0001"}} {
		r := runWith(t, "", append(args, "--root", root, "--timeout", "200ms")...)
		if r.code != 0 || !strings.Contains(r.stderr, "turned off by dpm_netconf=0 at offset 0 on the kernel command line: nothing done") {
			t.Errorf("%v = %+v", args, r)
		}
	}
	// plan and status still read the list.
	if r := runWith(t, "", "dpm-netconf", "plan", "--root", root); !strings.Contains(r.stdout, "0.0.0001") {
		t.Errorf("plan = %+v", r)
	}
}

func TestApplyNothingListed(t *testing.T) {
	root := newTree(t, "root=/dev/vda ro")
	if r := runWith(t, "", "dpm-netconf", "--root", root); r.code != 0 {
		t.Errorf("apply with no NIC listed = %+v", r)
	}
}

func TestApplyMissingAndInvalid(t *testing.T) {
	root := newTree(t, "0001,0;0100,0;0002,9;")
	r := runWith(t, "", "autoconfigure_networking.sh", "--root", root, "--timeout", "300ms")
	for _, want := range []string{
		`dpm-netconf: apply: error: entry "0002,9" at offset 14: port must be 0 or 1 (entry not applied)`,
		"dpm-netconf: apply: 0.0.0001: ok: virtio eth0 (already configured, nothing changed)",
		"dpm-netconf: apply: error: 0.0.0100: FAILED at free: device 0.0.0100 not found by the deadline",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
}

// The deadline apply uses, and where it came from, is what its verbose log
// says (no wall-clock measure: a wrong 1h deadline would instead hold the
// test until go test's own timeout ends it).
func TestTimeoutFromKernelCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name, cmdline string
		args          []string
		initrd        bool
		deadline      string // the log line that names the deadline used
		stderr        string
	}{
		{name: "dpm_netconf.timeout", cmdline: "dpm_netconf.timeout=300ms 0100,0;", deadline: "deadline 300ms (dpm_netconf.timeout=300ms at offset 0)"},
		{name: "bare seconds", cmdline: "dpm_netconf.timeout=0.3 0100,0;", deadline: "deadline 300ms (dpm_netconf.timeout=0.3 at offset 0)"},
		{name: "--timeout wins", cmdline: "dpm_netconf.timeout=1h 0100,0;", args: []string{"--timeout", "0.2"}, deadline: "deadline 200ms (--timeout)"},
		{name: "rd. form in the initramfs", cmdline: "rd.dpm_netconf.timeout=0.3 dpm_netconf.timeout=1h 0100,0;", initrd: true, deadline: "deadline 300ms (rd.dpm_netconf.timeout=0.3 at offset 0)"},
		{name: "rd. form outside is not ours", cmdline: "rd.dpm_netconf.timeout=1h dpm_netconf.timeout=0.3 0100,0;", deadline: "deadline 300ms (dpm_netconf.timeout=0.3 at offset 26)"},
		{name: "bad value: default, and said", cmdline: "dpm_netconf.timeout=soon 0100,0;", args: []string{"--timeout", "0.2"}, deadline: "deadline 200ms (--timeout)",
			stderr: `dpm_netconf.timeout=soon at offset 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newTree(t, tc.cmdline)
			if tc.initrd {
				if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, "etc/initrd-release"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r := runWith(t, "", append([]string{"dpm-netconf", "apply", "-v", "--root", root}, tc.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, "apply: "+tc.deadline+"\n") || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("want exit 1, %q and %q in stderr: %+v", tc.deadline, tc.stderr, r)
			}
		})
	}
}

func TestSetmacAlias(t *testing.T) {
	root := newTree(t, "0001,0,0a0000000011;")
	// Not listed: nothing to do, exit 0 (udev runs it for every NIC).
	r := runWith(t, "", "setmac.sh", "--root", root, "/devices/css0/0.0.0005/0.0.0009/virtio3/net/eth3")
	if r.code != 0 {
		t.Errorf("setmac of an unlisted device = %+v", r)
	}
	// Not on a CCW device (virtio-net-pci, lo): exit 0, silent.
	for _, p := range []string{"/devices/virtual/net/lo", "/devices/pci0000:00/0000:00:03.0/virtio0/net/eth0", "0.1.0001"} {
		r = runWith(t, "", "setmac", "--root", root, p)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("setmac of non-DPM %s = %+v", p, r)
		}
	}
	// Invalid entries are apply's and plan's to report, not every udev
	// event's: setmac answers only for the NIC it was asked about.
	r = runWith(t, "", "setmac", "--root", newTree(t, "0001,9;0002,0;"), "0.0.0009")
	if r.code != 0 || r.stderr != "" {
		t.Errorf("setmac of an unlisted NIC next to an invalid entry = %+v", r)
	}
	// Listed: it acts on 0.0.0001 only (and here refuses the foreign tree).
	r = runWith(t, "", "dpm-netconf", "setmac", "/devices/css0/0.0.0000/0.0.0001/virtio0/net/eth0", "--root", root, "--timeout", "5s")
	if r.code != 1 || !strings.Contains(r.stderr, "dpm-netconf: setmac: error: 0.0.0001: FAILED at mac: sysfs and netlink disagree") {
		t.Errorf("setmac = %+v", r)
	}
}

// apply DEVICE configures the one listed NIC the device belongs to (its
// read device, its write or data device, its interface); an unlisted one
// is nothing to do, silently, whatever else the list holds.
func TestApplyOneDevice(t *testing.T) {
	root := newTree(t, "0001,0;0100,0;0002,9;")
	for _, dev := range []string{"0001", "0.0.0001", "/devices/css0/0.0.0000/0.0.0001", "/devices/css0/0.0.0000/0.0.0001/virtio0/net/eth0"} {
		r := runWith(t, "", "dpm-netconf", "apply", dev, "--root", root, "--timeout", "2s")
		if r.code != 0 || !strings.Contains(r.stderr, "dpm-netconf: apply: 0.0.0001: ok: virtio eth0") || strings.Contains(r.stderr, "0.0.0100") || strings.Contains(r.stderr, "0002,9") {
			t.Errorf("apply %s = %+v", dev, r)
		}
	}
	// The write device of listed 0100 names it (a udev event of any of a
	// qeth NIC's devices): it is missing here, so that fails, alone.
	r := runWith(t, "", "dpm-netconf", "apply", "/devices/css0/0.0.0007/0.0.0101", "--root", root, "--timeout", "200ms")
	if r.code != 1 || !strings.Contains(r.stderr, "0.0.0100: FAILED at free") || strings.Contains(r.stderr, "0.0.0001") {
		t.Errorf("apply of 0100's write device = %+v", r)
	}
	for _, dev := range []string{"0.0.0009", "/devices/virtual/net/lo", "/devices/pci0000:00/0000:00:03.0/virtio0/net/eth0"} {
		r := runWith(t, "", "dpm-netconf", "apply", dev, "--root", root, "--timeout", "2s")
		if r.code != 0 || r.stderr != "" {
			t.Errorf("apply of unlisted %s = %+v", dev, r)
		}
	}
}

func TestExitCode(t *testing.T) {
	ok, failed, inProgress := apply.Report{OK: true}, apply.Report{Error: "x"}, apply.Report{InProgress: true, Error: "x"}
	for _, tc := range []struct {
		reports []apply.Report
		invalid int
		want    int
	}{
		{nil, 0, exitOK},
		{[]apply.Report{ok, ok}, 0, exitOK},
		{[]apply.Report{ok, inProgress}, 0, exitInProgress},
		{[]apply.Report{inProgress, failed}, 0, exitFail},
		{[]apply.Report{failed, inProgress}, 0, exitFail},
		{[]apply.Report{ok, inProgress}, 1, exitFail},
	} {
		if got := exitCode(tc.reports, tc.invalid); got != tc.want {
			t.Errorf("exitCode(%+v, %d) = %d, want %d", tc.reports, tc.invalid, got, tc.want)
		}
	}
}

// nic DEVICE is what udev's rule asks: it prints the listed NIC's bus id
// for any of that NIC's devices and answers nothing, with exit 1, for the
// rest, and when dpm-netconf is turned off.
func TestNICOfDevice(t *testing.T) {
	root := newTree(t, "ro 0001,0,0a0000000011;0600,1;")
	tr := &kernelmodel.Tree{Root: root}
	for _, d := range []struct{ busID, cutype string }{
		{"0.0.0600", "1731/01"}, {"0.0.0601", "1731/01"}, {"0.0.0602", "1731/01"}, {"0.0.0002", "3832/01"},
	} {
		if _, err := tr.CCW(d.busID, d.cutype, "f0", false); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		device, want string
	}{
		{"0.0.0001", "0.0.0001"},
		{"/devices/css0/0.0.0000/0.0.0001/virtio0/net/eth0", "0.0.0001"},
		{"/devices/css0/0.0.0003/0.0.0601", "0.0.0600"},
		{"0.0.0602", "0.0.0600"},
		{"/devices/qeth/0.0.0600", "0.0.0600"},
		{"/devices/qeth/0.0.0600/net/enc600", "0.0.0600"},
		{"0603", ""},     // past the triplet
		{"0.0.0002", ""}, // a virtio-net NIC next to listed 0001 is not its write device
		{"0.1.0600", ""}, // another subchannel set
		{"/devices/virtual/net/lo", ""},
	} {
		r := runWith(t, "", "dpm-netconf", "nic", tc.device, "--root", root)
		wantCode := exitOK
		if tc.want == "" {
			wantCode = exitFail
		} else {
			tc.want += "\n"
		}
		if r.code != wantCode || r.stdout != tc.want || r.stderr != "" {
			t.Errorf("nic %s = %+v, want exit %d, stdout %q, no stderr", tc.device, r, wantCode, tc.want)
		}
	}
	for _, cl := range []string{"dpm_netconf=0 0001,0;", "0001,0; dpm_netconf=0"} {
		if r := runWith(t, "", "dpm-netconf", "nic", "0.0.0001", "--root", newTree(t, cl)); r.code != exitFail || r.stdout != "" || r.stderr != "" {
			t.Errorf("nic with %q = %+v", cl, r)
		}
	}
	// In the initramfs rd.dpm_netconf=0 turns it off too; in the real root not.
	initrd := newTree(t, "rd.dpm_netconf=0 0001,0;")
	if r := runWith(t, "", "dpm-netconf", "nic", "0001", "--root", initrd); r.code != exitOK {
		t.Errorf("nic with rd.dpm_netconf=0 in the real root = %+v", r)
	}
	if err := (&kernelmodel.Tree{Root: initrd}).File("etc/initrd-release", ""); err != nil {
		t.Fatal(err)
	}
	if r := runWith(t, "", "dpm-netconf", "nic", "0001", "--root", initrd); r.code != exitFail || r.stdout != "" {
		t.Errorf("nic with rd.dpm_netconf=0 in the initramfs = %+v", r)
	}
}
