package vm

import (
	"slices"
	"testing"
)

// The lines as dpm-netconf prints them (stderr), as the kernel log shows
// them on a console, and as journalctl -o short-monotonic shows them.
const sample = "dpm-netconf: apply: 0.0.0001: ok: virtio eth0 mac 0a:00:00:00:00:11 (online, mac)\r\n" +
	"[    5.100000] dpm-netconf: apply: 0.0.0004: ok: virtio eth1 (already configured, nothing changed)\r\n" +
	"[   12.512345] dpm-guest dpm-netconf[321]: dpm-netconf: apply: 0.0.0600: ok: qeth enc600 layer2 port 1 mac 0a:00:00:00:06:00 (group, layer2, portno, online, mac)\n" +
	"dpm-netconf: apply: error: 0.0.0100: FAILED at free: write \"free 0.0.0100\" to /proc/cio_ignore: EINVAL (invalid argument)\n" +
	"dpm-netconf: setmac: 0.0.0020: ok: virtio eth3 mac 0a:00:00:00:00:20 (mac)\n" +
	"dpm-netconf: apply: done in 412.3ms: 3 of 4 NICs configured, 0 invalid entries; exit status 1\n" +
	"dpm-netconf: setmac: done in 20ms: 1 of 1 NICs configured, 0 invalid entries; exit status 0\n"

func TestParseDone(t *testing.T) {
	d, ok := ParseDone(sample, "apply")
	if want := (Done{Took: "412.3ms", Configured: 3, Total: 4, Invalid: 0, Exit: 1}); !ok || d != want {
		t.Errorf("apply: %+v, %v; want %+v", d, ok, want)
	}
	d, ok = ParseDone(sample, "setmac")
	if want := (Done{Took: "20ms", Configured: 1, Total: 1, Exit: 0}); !ok || d != want {
		t.Errorf("setmac: %+v, %v; want %+v", d, ok, want)
	}
	if _, ok := ParseDone(sample, "status"); ok {
		t.Error("status: found a closing line")
	}
}

func TestOKLines(t *testing.T) {
	got := OKLines(sample, "apply")
	if len(got) != 3 {
		t.Fatalf("%d apply ok lines: %+v", len(got), got)
	}
	if o := got[0]; o.BusID != "0.0.0001" || o.MAC != "0a:00:00:00:00:11" || !slices.Equal(o.Steps, []string{"online", "mac"}) || !o.SetMAC() {
		t.Errorf("first: %+v", o)
	}
	if o := got[1]; o.BusID != "0.0.0004" || o.MAC != "" || o.Steps != nil || o.SetMAC() {
		t.Errorf("unchanged: %+v", o)
	}
	if o := got[2]; o.BusID != "0.0.0600" || o.MAC != "0a:00:00:00:06:00" || len(o.Steps) != 5 || o.Summary != "qeth enc600 layer2 port 1 mac 0a:00:00:00:06:00" {
		t.Errorf("qeth from the journal: %+v", o)
	}
	set := OKLines(sample, "setmac")
	if len(set) != 1 || set[0].BusID != "0.0.0020" || !set[0].SetMAC() {
		t.Errorf("setmac: %+v", set)
	}
}

// Lines without the command's prefix (the format before it) are not
// dpm-netconf's lines any more.
func TestOldFormatRejected(t *testing.T) {
	old := "dpm-netconf: 0.0.0001: ok: virtio eth0 mac 0a:00:00:00:00:11 (mac)\n" +
		"dpm-netconf: apply done in 280.3ms: 3 of 3 NICs configured, 0 invalid entries; exit status 0\n" +
		"dpm-netconf: error: 0.0.0100: FAILED at find: not found\n"
	if o := OKLines(old, "apply"); len(o) != 0 {
		t.Errorf("old ok line taken: %+v", o)
	}
	if d, ok := ParseDone(old, "apply"); ok {
		t.Errorf("old closing line taken: %+v", d)
	}
}
