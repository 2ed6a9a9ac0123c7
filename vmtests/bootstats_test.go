package vmtests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestDistroBootStats is a measurement, not a check: it boots the dracut
// (systemd) distro image DPM_BOOTSTATS times, one after the other, and
// writes per boot the time to the report, or the stall, and QEMU's
// translator figures to bootstats.tsv in the consoles folder. make
// bootstats runs it. The boots are bare (no emulatorArgs): DPM_QEMU
// (another QEMU command line) and DPM_GUEST_ARGS (kernel parameters, e.g.
// norandmaps) set what is measured.
// docs/testing.md gives the figures that chose the emulator's options.
func TestDistroBootStats(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("DPM_BOOTSTATS"))
	if n <= 0 {
		t.Skip("a measurement, not a check (DPM_BOOTSTATS unset); run: make bootstats N=20")
	}
	path := filepath.Join(consoleDir(), "bootstats.tsv")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	setup := fmt.Sprintf("qemu=%q guest_args=%q", os.Getenv("DPM_QEMU"), os.Getenv("DPM_GUEST_ARGS"))
	stalls := 0
	for i := 1; i <= n; i++ {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			res, err := distroBoot{flavour: "systemd", args: os.Getenv("DPM_GUEST_ARGS"), bare: true}.boot(t)
			outcome, jit := "", res.jit
			if err != nil {
				stalls++
				outcome = "FAILED: " + err.Error()
			} else {
				outcome = fmt.Sprintf("%.0f", res.took.Seconds())
			}
			fmt.Fprintf(f, "%s\t%d\t%s\t%s\t%s\n", time.Now().UTC().Format(time.RFC3339), i, outcome, jit, setup)
			t.Logf("boot %d: %s; %s", i, outcome, jit)
		})
	}
	t.Logf("%d boots, %d without a report (%s); figures in %s", n, stalls, setup, path)
}
