// Command dpm-netconf configures the NICs that OpenStack's DPM driver lists
// on the kernel command line of an IBM Z partition: it frees each device
// from cio_ignore, groups qeth devices, sets layer2, the adapter port and
// online, and gives each interface its MAC. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/apply"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/detach"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/logging"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/trace"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // an entry invalid or a NIC not configured
	exitUsage = 2
	// exitInProgress: nothing failed, but the deadline came while the
	// kernel was still bringing a NIC online; the write helper finishes it.
	// The unit counts it as success, so systemd leaves the helper alone.
	exitInProgress = 3
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

type options struct {
	cmdline    string
	root       string
	timeout    time.Duration
	timeoutSet bool // --timeout was given: it wins over the kernel's
	json       bool
	verbose    bool
	sequential bool
}

const usage = `usage: dpm-netconf [flags] [apply [DEVICE] | plan | status | setmac DEVICE | nic DEVICE | version]

Configures the NICs listed on the kernel command line by OpenStack's DPM driver
("<devno>,<port>[,<mac>];..."): frees, groups, layer2, portno, online, MAC.

commands:
  apply          configure every listed NIC (the default)
  apply DEVICE   configure only the listed NIC DEVICE belongs to (DEVICE as for
                 setmac; also its write or data device); unlisted: exit 0
  plan           parse and validate, print what apply would do, change nothing
  status         show each listed NIC's state against the list
  setmac DEVICE  set only the MAC of one listed NIC; DEVICE is a sysfs path as
                 udev's %p gives it, a bus id (0.0.0001) or a devno (0001)
  nic DEVICE     print the bus id of the listed NIC DEVICE belongs to (DEVICE as
                 for apply); exit 1, silently, if none or turned off (udev's
                 rule asks this before it wants dpm-netconf@BUSID.service)
  version        print the version

flags (before or after the command):
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 1 && args[1] == detach.Command {
		return detach.Child(args[2:])
	}
	trace.Mark("main")
	defer func() {
		if err := trace.Write(""); err != nil {
			fmt.Fprintf(stderr, "dpm-netconf: trace: %v\n", err)
		}
	}()
	o, cmd, pos, code := parseArgs(args, stderr)
	if code >= 0 {
		return code
	}
	if cmd == "version" {
		fmt.Fprintf(stdout, "dpm-netconf %s\n", version)
		return exitOK
	}
	text, err := cmdline.Read(o.root, o.cmdline, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "dpm-netconf: %v\n", err)
		return exitUsage
	}
	list := cmdline.Parse(text)
	trace.Mark("command line read and parsed")
	if cmd == "nic" {
		return nicOf(list, o, text, pos[0], stdout)
	}
	journal := false
	if f, ok := stderr.(*os.File); ok && o.root == "/" {
		journal = logging.UnderJournal(f)
	}
	log := logging.New(logging.Options{Root: o.root, Stderr: stderr, Verbose: o.verbose, Tag: cmd, Journal: journal})
	defer log.Close()
	switch cmd {
	case "plan":
		return plan(list, o, stdout)
	case "status":
		return status(list, o, stdout)
	}
	return configure(o, cmd, pos, text, list, log, stdout)
}

// parseArgs reads the flags (before or after the command), the command
// (the default apply, or the name the binary was called by) and its
// arguments. code is the exit status when there is nothing more to do
// (help, a usage error), else -1.
func parseArgs(args []string, stderr io.Writer) (o options, cmd string, pos []string, code int) {
	code = -1
	fs := flag.NewFlagSet("dpm-netconf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.cmdline, "cmdline", "", "read the kernel command line from `FILE` (- = stdin) instead of /proc/cmdline")
	fs.StringVar(&o.root, "root", "/", "look for sys/, proc/, dev/ and lib/modules/ under `DIR`")
	o.timeout = cmdline.DefaultTimeout
	fs.Func("timeout", "overall deadline: seconds (30, 2.5) or a duration (90s, 1m30s); default: dpm_netconf.timeout= (rd.dpm_netconf.timeout= in the initramfs) or 60s", func(v string) error {
		d, err := cmdline.ParseDuration(v)
		o.timeout = d
		return err
	})
	fs.BoolVar(&o.json, "json", false, "print results as JSON on stdout")
	fs.BoolVar(&o.verbose, "v", false, "verbose log")
	fs.BoolVar(&o.sequential, "sequential", false, "configure NICs one after the other (for measurements)")
	var showVersion bool
	fs.BoolVar(&showVersion, "version", false, "print the version (as the version command)")
	fs.BoolVar(&showVersion, "V", false, "print the version (as the version command)")
	fs.Usage = func() {
		_, _ = io.WriteString(stderr, usage)
		fs.PrintDefaults()
	}

	// Flags may follow the command: parse, take one positional, repeat.
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return o, "", nil, exitOK
			}
			return o, "", nil, exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}

	fs.Visit(func(f *flag.Flag) { o.timeoutSet = o.timeoutSet || f.Name == "timeout" })
	if showVersion {
		return o, "version", nil, -1
	}
	cmd = "apply"
	switch strings.TrimSuffix(filepath.Base(args[0]), ".sh") {
	case "autoconfigure_networking":
		cmd = "apply"
	case "setmac":
		cmd = "setmac"
	default:
		if len(pos) > 0 {
			cmd, pos = pos[0], pos[1:]
		}
	}
	wantArgs := map[string][2]int{"apply": {0, 1}, "plan": {0, 0}, "status": {0, 0}, "version": {0, 0}, "setmac": {1, 1}, "nic": {1, 1}}
	n, known := wantArgs[cmd]
	switch {
	case !known:
		fmt.Fprintf(stderr, "dpm-netconf: unknown command %q\n", cmd)
		fs.Usage()
		return o, cmd, pos, exitUsage
	case len(pos) < n[0] || len(pos) > n[1]:
		want := fmt.Sprint(n[0])
		if n[1] != n[0] {
			want = fmt.Sprintf("%d or %d", n[0], n[1])
		}
		fmt.Fprintf(stderr, "dpm-netconf: %s takes %s argument(s), got %d: %q\n", cmd, want, len(pos), pos)
		return o, cmd, pos, exitUsage
	}
	return o, cmd, pos, -1
}

// configure is apply and setmac: the listed NICs (or the one DEVICE
// belongs to) under the deadline, a line per NIC and a closing line.
func configure(o options, cmd string, pos []string, text string, list cmdline.List, log *logging.Logger, stdout io.Writer) int {
	boot := cmdline.ReadBoot(o.root, text)
	for _, p := range boot.Problems {
		log.Errorf("%v", p)
	}
	if boot.Off {
		log.Infof("turned off by %s on the kernel command line: nothing done", boot.OffBy)
		return exitOK
	}
	var timeoutFrom string
	o.timeout, timeoutFrom = boot.Deadline(o.timeout, o.timeoutSet)
	log.Debugf("deadline %v (%s)", o.timeout, timeoutFrom)
	var nics []cmdline.NIC
	if len(pos) == 1 {
		// setmac and apply DEVICE answer for the one NIC they were asked
		// about (udev runs them per device): not for the list's invalid
		// entries (apply and plan report those), and not for devices that
		// are no listed DPM NIC.
		nic, ok, why := apply.ForDevice(ccw.Sys{FS: sysfs.Root(o.root)}, list, pos[0], cmd == "apply")
		if !ok {
			log.Debugf("%s", why)
			return exitOK
		}
		if cmd == "setmac" && nic.MAC == nil {
			log.Debugf("%s is listed without a MAC: nothing to do", nic.BusID())
			return exitOK
		}
		nics = []cmdline.NIC{nic}
		list.Errors = nil
	} else {
		for _, e := range list.Errors {
			log.Errorf("%s (entry not applied)", e.Error())
		}
		nics = list.NICs
		if len(nics) == 0 {
			log.Debugf("no NIC listed on the command line")
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	endSys := trace.Span("NewSystem")
	sys := apply.NewSystem(o.root, log)
	endSys()
	defer sys.Close()
	cfg := sys.Config
	cfg.Sequential = o.sequential
	// A run over the whole list records the devices it found absent after
	// its settle; every run reads the record (apply.Config.AbsentFile).
	cfg.RecordAbsent = len(pos) == 0

	var reports []apply.Report
	if cmd == "setmac" {
		reports = []apply.Report{apply.SetMAC(ctx, cfg, nics[0])}
	} else {
		reports = apply.Apply(ctx, cfg, nics)
	}
	if o.json {
		writeJSON(stdout, struct {
			NICs   []apply.Report  `json:"nics"`
			Errors []cmdline.Error `json:"errors"`
		}{nonNil(reports), list.Errors})
	}
	trace.Mark("reports")
	code := exitCode(reports, len(list.Errors))
	configured := 0
	for _, r := range reports {
		if r.OK {
			configured++
		}
	}
	// One closing line: early-userspace consoles show whether the boot's
	// NICs are ready, and how long it took.
	log.Infof("done in %s: %d of %d NICs configured, %d invalid entries; exit status %d",
		time.Since(start).Round(100*time.Microsecond), configured, len(reports), len(list.Errors), code)
	return code
}

// nicOf answers udev's rule: the bus id of the listed NIC that device
// belongs to, on stdout, exit 0; exit 1 and silent for an unlisted device
// or when dpm-netconf is turned off (dpm_netconf=0; rd.dpm_netconf=0 in
// the initramfs). udev runs it for every OSA and virtio-net device event,
// so it only reads the command line and at most one sysfs file: no
// logger, no event listener, no netlink.
func nicOf(list cmdline.List, o options, text, device string, stdout io.Writer) int {
	if cmdline.ReadBoot(o.root, text).Off {
		return exitFail
	}
	nic, ok, _ := apply.ForDevice(ccw.Sys{FS: sysfs.Root(o.root)}, list, device, true)
	if !ok {
		return exitFail
	}
	fmt.Fprintln(stdout, nic.BusID())
	return exitOK
}

func exitCode(reports []apply.Report, invalid int) int {
	code := exitOK
	for _, r := range reports {
		switch {
		case r.OK:
		case r.InProgress && code == exitOK:
			code = exitInProgress
		case !r.InProgress:
			code = exitFail
		}
	}
	if invalid > 0 {
		code = exitFail
	}
	return code
}

func plan(list cmdline.List, o options, stdout io.Writer) int {
	list.WritePlan(stdout, o.json)
	if len(list.Errors) > 0 {
		return exitFail
	}
	return exitOK
}

func status(list cmdline.List, o options, stdout io.Writer) int {
	st := apply.ReadStatus(sysfs.Root(o.root), list.NICs)
	apply.WriteStatus(stdout, st, list.Errors, o.json)
	for _, s := range st {
		if !s.OK {
			return exitFail
		}
	}
	if len(list.Errors) > 0 {
		return exitFail
	}
	return exitOK
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(w, "{\"error\":%q}\n", err.Error())
	}
}

func nonNil(r []apply.Report) []apply.Report {
	if r == nil {
		return []apply.Report{}
	}
	return r
}
