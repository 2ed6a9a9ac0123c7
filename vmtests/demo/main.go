// Command demo boots the s390x guest with three virtio-net-ccw NICs and a
// sample DPM command line, shows dpm-netconf's log as the guest prints it
// and a table of the NICs (MAC before -> after, read in the guest), then
// powers the guest off. `make demo` builds what it needs and runs it (in
// vmtests/, the tooling module; the defaults are relative to that folder).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hugelgupf/vmtest/qemu"

	"github.com/dpm-guest-image-tools/dpm-netconf/vmtests/vm"
)

const sample = "cio_ignore=all,!condev 0001,1,0a0000000011;0004,0;0010,0,0e1122334455;"

func main() {
	kernel := flag.String("kernel", "../.cache/kernel/current", "unpacked kernel (make kernel)")
	image := flag.String("image", "../.cache/uimage/dpm-netconf-s390x.cpio", "u-root image (make uimage)")
	consoleLog := flag.String("console", "../.cache/demo-console.log", "where the whole guest console goes")
	probe := flag.String("probe", filepath.Join("guest", "dpmprobe"), "the guest probe's package folder")
	flag.Parse()
	if err := run(*kernel, *image, *consoleLog, *probe); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(kernel, image, consoleLog, probe string) error {
	fmt.Println("demo: building the guest's probe")
	env, err := vm.Prepare(kernel, image, probe)
	if err != nil {
		return err
	}
	defer env.Close()
	logf, err := os.Create(consoleLog)
	if err != nil {
		return err
	}
	defer logf.Close()

	nics := vm.VirtioNICs("0001", "0004", "0010")
	fmt.Printf("demo: booting Debian's s390x kernel %s under qemu-system-s390x (TCG) with virtio-net-ccw NICs", env.Release)
	for _, n := range nics {
		fmt.Printf(" 0.0.%s", n.Devno)
	}
	fmt.Printf("\ndemo: kernel command line: %s\ndemo: whole console in %s\n\n", sample, consoleLog)
	start := time.Now()
	// dpm-netconf's lines are shown as they come; the rest goes to the log.
	g, err := env.Boot(sample, nics, qemu.LogSerialByLine(func(line string) {
		fmt.Fprintln(logf, line)
		if i := strings.Index(line, "dpm-netconf: "); i >= 0 {
			fmt.Printf("  [%5.1fs] %s\n", time.Since(start).Seconds(), line[i:])
		}
	}))
	if err != nil {
		return err
	}
	defer g.Close()
	a, err := g.WaitApplied(2 * time.Minute)
	if err != nil {
		return err
	}
	r, err := g.Report()
	if err != nil {
		return err
	}
	before := map[string]string{}
	for _, n := range nics {
		before["0.0."+n.Devno] = n.MAC
	}
	fmt.Println("\nThe NICs as the guest's sysfs and netlink report them:")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  BUS ID\tINTERFACE\tMAC BEFORE\t\tMAC AFTER\tNETLINK AGREES")
	for _, n := range r.NICs {
		agree := "yes"
		if n.SysfsMAC != n.NetlinkMAC {
			agree = "NO: " + n.NetlinkMAC
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t->\t%s\t%s\n", n.BusID, n.Interface, before[n.BusID], n.SysfsMAC, agree)
	}
	tw.Flush()
	fmt.Printf("\ndemo: dpm-netconf exit status %d, %d of %d NICs configured in %s; QEMU start to configured: %.1fs\n",
		a.Exit, a.Configured, a.Total, a.Took, a.BootToDone.Seconds())

	fmt.Println("demo: powering the guest off")
	if err := g.Send("poweroff"); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- g.VM.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the guest did not power off within 30s")
	}
	if a.Exit != 0 {
		return fmt.Errorf("dpm-netconf exited %d", a.Exit)
	}
	return nil
}
