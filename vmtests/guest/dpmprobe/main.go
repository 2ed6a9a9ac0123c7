// Command dpmprobe runs inside the s390x test guest. It reports what the
// guest's kernel says about its NICs — sysfs and rtnetlink read directly,
// independently of dpm-netconf's code — and times commands, so the host-side
// VM tests assert on the guest's own state, not on dpm-netconf's summary.
//
//	dpmprobe report            JSON, base64 in lines: DPMPROBE64 <chunk>,
//	                           ending with DPMPROBE64 .
//	dpmprobe run CMD ARGS...   runs CMD, then: DPMRUN exit=N ms=T
//	dpmprobe iploop IF=MAC...  u-root's ip link set dev IF address MAC for
//	                           each, one after the other: DPMIPLOOP n=N ms=T
//	dpmprobe script FILE       runs FILE's lines (run ..., report,
//	                           write PATH VALUE, sleep DURATION,
//	                           setenv NAME VALUE), prints
//	                           DPMPROBE-END and powers the guest off; a
//	                           line "shell" ends the script there and
//	                           lets init go on to its shell instead
//	dpmprobe actor BUSID...    what another actor at boot does to the
//	                           devices: free them from cio_ignore, settle,
//	                           write online=1 to each; one line per write:
//	                           DPMACTOR +T write FILE "VALUE": RESULT
//	dpmprobe zdev BUSID...     what s390-tools' zdev does to a qeth NIC at
//	                           boot (its udev rules, chzdev's order): for
//	                           each read device BUSID, free the triplet
//	                           from cio_ignore, settle, wait until the
//	                           three devices are bound to qeth, group them
//	                           (unless grouped), write layer2=1, portno=0,
//	                           online=1; one DPMACTOR line per write or wait
//	dpmprobe race N ACTOR CMD ARGS...
//	                           starts N copies of CMD ARGS and an actor at
//	                           the same instant, waits for all, then
//	                           reports each one's output, exit status and
//	                           times as JSON, base64 in lines: DPMRACE64
//	                           <chunk>, ending with DPMRACE64 . ACTOR is
//	                           BUSIDS (comma-separated: "actor BUSID..."),
//	                           zdev:BUSIDS ("zdev BUSID...", reported
//	                           last, like the actor) or - (no actor)
//
// Installed as the image's uinit (/bin/uinit, in place of dpm-netconf) it
// runs /etc/dpmprobe.script at boot: guests whose console takes no input
// (Hercules' SCLP line mode) run their scenario this way, and a scenario
// that must start from devices nobody configured yet ends its script with
// "shell".
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/vmtests/probewire"
)

// NIC is one network interface of a CCW device.
type NIC struct {
	BusID      string `json:"bus_id"`
	Kind       string `json:"kind"` // virtio or qeth
	Online     string `json:"online"`
	Interface  string `json:"interface"`
	Index      int    `json:"index"`
	SysfsMAC   string `json:"sysfs_mac"`
	NetlinkMAC string `json:"netlink_mac"`
	Layer2     string `json:"layer2,omitempty"`
	Port       string `json:"port,omitempty"`
	State      string `json:"state,omitempty"`
	DevPath    string `json:"devpath"` // as udev's %p: /devices/.../net/<if>
}

// Report is the guest's state.
type Report struct {
	CCW       []string `json:"ccw"`        // visible CCW devices
	NICs      []NIC    `json:"nics"`       // with an interface
	Modules   []string `json:"modules"`    // /proc/modules
	CIOIgnore []string `json:"cio_ignore"` // still ignored
	Groups    []Group  `json:"groups"`     // ccwgroup (qeth) devices
}

// Group is a ccwgroup device, with or without an interface.
type Group struct {
	BusID  string `json:"bus_id"`
	Online string `json:"online"`
	Layer2 string `json:"layer2"`
	Port   string `json:"port"`
	State  string `json:"state"`
}

func main() {
	if filepath.Base(os.Args[0]) == "uinit" {
		script("/etc/dpmprobe.script")
		return
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dpmprobe report | run CMD... | insmod FILE... | plain BUSID PORT MAC | mark NAME | waitpath present|gone PATH TIMEOUT | iploop IF=MAC... | script FILE | actor BUSID... | zdev BUSID... | race N BUSIDS|zdev:BUSIDS|- CMD...")
		os.Exit(2)
	}
	os.Exit(do(os.Args[1:]))
}

// do runs one command and returns its exit status.
func do(args []string) int {
	switch args[0] {
	case "script":
		script(args[1])
	case "write":
		err := os.WriteFile(args[1], []byte(args[2]), 0)
		fmt.Printf("DPMWRITE %s %q: %v\n", args[1], args[2], err)
	case "sleep":
		d, _ := time.ParseDuration(args[1])
		time.Sleep(d)
	case "mark":
		// Nothing: its DPMSTEP line is what the host acts on.
	case "setenv":
		// For the commands run after it (a trace file: internal/trace).
		if err := os.Setenv(args[1], args[2]); err != nil {
			fmt.Printf("DPMPROBE-ERROR %v\n", err)
			return 1
		}
	case "waitpath":
		return waitPath(args[1], args[2], args[3])
	case "report":
		r, err := report()
		if err != nil {
			fmt.Printf("DPMPROBE-ERROR %v\n", err)
			return 1
		}
		print64("DPMPROBE64", r)
	case "actor":
		return actor(args[1:])
	case "zdev":
		return zdev(args[1:])
	case "race":
		return race(args[1:])
	case "run":
		start := time.Now()
		cmd := exec.Command(args[1], args[2:]...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		err := cmd.Run()
		ms := float64(time.Since(start).Microseconds()) / 1000
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
			fmt.Println(err)
		}
		fmt.Printf("DPMRUN exit=%d ms=%.1f\n", code, ms)
	case "insmod":
		return insmod(args[1:])
	case "plain":
		return plain(args[1:])
	case "iploop":
		ip, err := exec.LookPath("ip")
		if err != nil {
			fmt.Println("DPMIPLOOP-ERROR", err)
			return 1
		}
		start := time.Now()
		for _, a := range args[1:] {
			ifname, mac, _ := strings.Cut(a, "=")
			if out, err := exec.Command(ip, "link", "set", "dev", ifname, "address", mac).CombinedOutput(); err != nil {
				fmt.Printf("DPMIPLOOP-ERROR %s: %v: %s\n", ifname, err, out)
				return 1
			}
		}
		fmt.Printf("DPMIPLOOP n=%d ms=%.1f\n", len(args)-1, float64(time.Since(start).Microseconds())/1000)
	default:
		fmt.Fprintf(os.Stderr, "dpmprobe: unknown command %q\n", args[0])
		return 2
	}
	return 0
}

// waitPath polls (every 10 ms, up to timeout) until path is "present" or
// "gone" and says when, in ms since it began.
func waitPath(want, path, timeout string) int {
	d, err := time.ParseDuration(timeout)
	if err != nil {
		fmt.Printf("DPMWAIT-ERROR %v\n", err)
		return 2
	}
	start := time.Now()
	for {
		_, err := os.Stat(path)
		if (want == "present") == (err == nil) {
			fmt.Printf("DPMWAIT %s %s ms=%.1f\n", want, path, float64(time.Since(start).Microseconds())/1000)
			return 0
		}
		if time.Since(start) > d {
			fmt.Printf("DPMWAIT-TIMEOUT %s %s after %v\n", want, path, d)
			return 1
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// script runs a scenario file line by line, then powers off.
func script(file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Printf("DPMPROBE-ERROR %v\n", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		fmt.Printf("DPMSTEP %s\n", line)
		if f[0] == "shell" {
			// Back to init, which starts its shell: the test goes on over
			// the console.
			return
		}
		do(f)
	}
	fmt.Println("DPMPROBE-END")
	// Let the console drain: SCLP goes inactive at power-off and drops
	// what it still holds.
	time.Sleep(3 * time.Second)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// print64 prints v as JSON, base64 in short lines tagged tag, ending with
// "tag .": Hercules' SCLP line-mode console turns brackets into other
// characters and wraps long lines, and kernel messages may come between
// lines on any console.
func print64(tag string, v any) {
	b, _ := json.Marshal(v)
	enc := base64.StdEncoding.EncodeToString(b)
	for len(enc) > 0 {
		n := min(len(enc), 64)
		fmt.Printf("%s %s\n", tag, enc[:n])
		enc = enc[n:]
	}
	fmt.Printf("%s .\n", tag)
}

// actor does what another tool at boot (s390-tools' zdev rules, an admin's
// script, the kernel's own virtio_ccw auto-online) may do to the devices
// dpm-netconf configures at the same time: free them from cio_ignore, wait
// for the probing, set them online. Its own failures are reported, not
// fatal: another actor does not care either.
func actor(busIDs []string) int {
	if len(busIDs) == 0 {
		fmt.Println("DPMACTOR-ERROR no bus ids")
		return 2
	}
	write := actorWriter(time.Now())
	write("/proc/cio_ignore", "free "+strings.Join(busIDs, ","))
	write("/proc/cio_settle", "1")
	for _, id := range busIDs {
		write("/sys/bus/ccw/devices/"+id+"/online", "1")
	}
	return 0
}

// actorWriter returns a function that writes value to file and prints
// one line, times from start: DPMACTOR +T write FILE "VALUE": ok|ERRNO (...).
func actorWriter(start time.Time) func(file, value string) {
	return func(file, value string) {
		err := os.WriteFile(file, []byte(value), 0)
		res := "ok"
		if err != nil {
			res = err.Error()
			var errno unix.Errno
			if errors.As(err, &errno) {
				res = unix.ErrnoName(errno) + " (" + err.Error() + ")"
			}
		}
		fmt.Printf("DPMACTOR +%.1fms write %s %q: %s\n", float64(time.Since(start).Microseconds())/1000, file, value, res)
	}
}

// zdev does what s390-tools' zdev does to a persistently configured qeth
// NIC at boot, in chzdev's order (zdev/src/qeth.c): its dracut hook frees
// the devices from cio_ignore; its udev rule, once the three CCW devices
// are bound to qeth, groups them; then it writes layer2, the other
// attributes that need the card offline (portno), and online. Like zdev,
// it does not look at what is there already except the group, and its
// failures are reported, not fatal. The modules are udev's business
// (modalias; qeth_l2 by request_module): load them before.
func zdev(busIDs []string) int {
	if len(busIDs) == 0 {
		fmt.Println("DPMACTOR-ERROR no bus ids")
		return 2
	}
	start := time.Now()
	write := actorWriter(start)
	say := func(format string, args ...any) {
		fmt.Printf("DPMACTOR +%.1fms %s\n", float64(time.Since(start).Microseconds())/1000, fmt.Sprintf(format, args...))
	}
	// waitFor polls (as a udev rule would wait for its event) up to 30 s.
	waitFor := func(what string, ok func() bool) bool {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			if ok() {
				say("%s", what)
				return true
			}
			if time.Now().After(deadline) {
				say("NOT %s after 30s", what)
				return false
			}
		}
	}
	var triplets [][3]string
	var all []string
	for _, id := range busIDs {
		var css, ssid, devno uint32
		if _, err := fmt.Sscanf(id, "%x.%x.%x", &css, &ssid, &devno); err != nil {
			fmt.Printf("DPMACTOR-ERROR bus id %q: %v\n", id, err)
			return 2
		}
		var t [3]string
		for i := range t {
			t[i] = fmt.Sprintf("%x.%x.%04x", css, ssid, devno+uint32(i))
		}
		triplets = append(triplets, t)
		all = append(all, t[:]...)
	}
	write("/proc/cio_ignore", "free "+strings.Join(all, ","))
	write("/proc/cio_settle", "1")
	for _, t := range triplets {
		group := "/sys/bus/ccwgroup/devices/" + t[0]
		bound := func() bool {
			for _, id := range t {
				drv, err := os.Readlink("/sys/bus/ccw/devices/" + id + "/driver")
				if err != nil || filepath.Base(drv) != "qeth" {
					return false
				}
			}
			return true
		}
		grouped := func() bool { _, err := os.Stat(group); return err == nil }
		if grouped() {
			say("%s is grouped already: no group write", t[0])
		} else if waitFor(strings.Join(t[:], ",")+" bound to qeth", func() bool { return bound() || grouped() }) && !grouped() {
			write("/sys/bus/ccwgroup/drivers/qeth/group", strings.Join(t[:], ","))
		}
		if !waitFor(group+" there", grouped) {
			continue
		}
		write(group+"/layer2", "1")
		write(group+"/portno", "0")
		write(group+"/online", "1")
	}
	return 0
}

// plain configures one qeth NIC as a hand-written loop would: group,
// layer2, portno, online by plain sysfs writes, then the MAC over
// rtnetlink; no reads first, no retries, no helper process, no deadline.
// TestOSATiming's baseline for apply (args: BUSID PORT MAC).
func plain(args []string) int {
	if len(args) != 3 {
		fmt.Println("DPMPLAIN-ERROR usage: plain BUSID PORT MAC")
		return 2
	}
	id, port := args[0], args[1]
	mac, err := net.ParseMAC(args[2])
	var css, ssid, devno uint32
	if _, serr := fmt.Sscanf(id, "%x.%x.%x", &css, &ssid, &devno); serr != nil || err != nil {
		fmt.Printf("DPMPLAIN-ERROR bus id %q or MAC %q\n", id, args[2])
		return 2
	}
	start := time.Now()
	group := "/sys/bus/ccwgroup/devices/" + id
	for _, w := range [][2]string{
		{"/sys/bus/ccwgroup/drivers/qeth/group", fmt.Sprintf("%s,%x.%x.%04x,%x.%x.%04x", id, css, ssid, devno+1, css, ssid, devno+2)},
		{group + "/layer2", "1"},
		{group + "/portno", port},
		{group + "/online", "1"},
	} {
		if err := os.WriteFile(w[0], []byte(w[1]), 0); err != nil {
			fmt.Printf("DPMPLAIN-ERROR write %q to %s: %v\n", w[1], w[0], err)
			return 1
		}
	}
	nets, _ := os.ReadDir(group + "/net")
	if len(nets) != 1 {
		fmt.Printf("DPMPLAIN-ERROR %s/net holds %d interfaces\n", group, len(nets))
		return 1
	}
	ifi, err := net.InterfaceByName(nets[0].Name())
	if err == nil {
		var c *rtnetlink.Conn
		if c, err = rtnetlink.Dial(nil); err == nil {
			err = c.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(ifi.Index), Attributes: &rtnetlink.LinkAttributes{Address: mac}})
			c.Close()
		}
	}
	if err != nil {
		fmt.Printf("DPMPLAIN-ERROR MAC of %s: %v\n", nets[0].Name(), err)
		return 1
	}
	fmt.Printf("DPMPLAIN ms=%.1f\n", float64(time.Since(start).Microseconds())/1000)
	return 0
}

// RaceProc is one process of a probe race.
type RaceProc = probewire.RaceProc

// race starts n copies of a command and an actor (or none) at one
// instant: every process is prepared first, then one channel releases them
// all.
func race(args []string) int {
	var n int
	if len(args) < 3 {
		fmt.Println("DPMRACE-ERROR usage: race N BUSIDS|zdev:BUSIDS|- CMD ARGS...")
		return 2
	}
	if _, err := fmt.Sscan(args[0], &n); err != nil || n < 1 {
		fmt.Printf("DPMRACE-ERROR copies %q: %v\n", args[0], err)
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Printf("DPMRACE-ERROR %v\n", err)
		return 1
	}
	var argvs [][]string
	for range n {
		argvs = append(argvs, args[2:])
	}
	switch a := args[1]; {
	case a == "-":
	case strings.HasPrefix(a, "zdev:"):
		argvs = append(argvs, append([]string{"dpmprobe", "zdev"}, strings.Split(strings.TrimPrefix(a, "zdev:"), ",")...))
	default:
		argvs = append(argvs, append([]string{"dpmprobe", "actor"}, strings.Split(a, ",")...))
	}
	procs := make([]RaceProc, len(argvs))
	outs := make([]*lockedBuffer, len(argvs))
	running := make([]*os.Process, len(argvs)) // started, not yet waited for
	release := make(chan struct{})
	var (
		t0 time.Time
		mu sync.Mutex // procs
		wg sync.WaitGroup
	)
	for i, argv := range argvs {
		outs[i] = &lockedBuffer{}
		cmd := exec.Command(argv[0], argv[1:]...)
		if argv[0] == "dpmprobe" {
			// This binary, named dpmprobe: as uinit (its name when it is
			// the image's /bin/uinit) it would run the script again.
			cmd = exec.Command(self, argv[1:]...)
			cmd.Args[0] = "dpmprobe"
		}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		// A process that leaves a child holding its output open (a write
		// helper) does not hold the race.
		cmd.WaitDelay = 2 * time.Second
		procs[i].Args, procs[i].Exit = argv, -1
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			err := cmd.Start()
			startMS := float64(time.Since(t0).Microseconds()) / 1000
			mu.Lock()
			procs[i].StartMS = startMS
			if err == nil {
				running[i] = cmd.Process
			}
			mu.Unlock()
			if err == nil {
				err = cmd.Wait()
			}
			mu.Lock()
			defer mu.Unlock()
			running[i] = nil
			p := &procs[i]
			p.EndMS = float64(time.Since(t0).Microseconds()) / 1000
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				p.Exit = ee.ExitCode()
			case err != nil:
				fmt.Fprintf(outs[i], "DPMRACE-ERROR %v\n", err)
			default:
				p.Exit = 0
			}
		}()
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	t0 = time.Now()
	close(release)
	select {
	case <-all:
	case <-time.After(raceTimeout):
		// Say where everything is stuck, end what can be ended, and report
		// what there is: the test fails with the evidence instead of
		// waiting for its own deadline.
		fmt.Printf("DPMRACE-HUNG not finished after %v; processes:\n", raceTimeout)
		dumpProcesses()
		mu.Lock()
		for i, p := range running {
			if p != nil {
				fmt.Printf("DPMRACE-HUNG killing %q (pid %d); its output so far:\n%s\n", argvs[i], p.Pid, outs[i].String())
				_ = p.Kill()
			}
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			fmt.Println("DPMRACE-HUNG still not finished 10s after SIGKILL")
		}
	}
	mu.Lock()
	for i := range procs {
		procs[i].Output = outs[i].String()
	}
	print64("DPMRACE64", procs)
	mu.Unlock()
	return 0
}

// raceTimeout bounds a race (well within the host's deadline for a whole
// Hercules boot).
const raceTimeout = 60 * time.Second

// lockedBuffer is an output buffer that may be read while a process writes
// to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// dumpProcesses prints every user process with its state, wait channel
// and kernel stack (each thread's): DPMRACE-HUNG lines.
func dumpProcesses() {
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range pids {
		cmdline := strings.ReplaceAll(strings.TrimRight(read(p+"/cmdline"), "\x00"), "\x00", " ")
		if cmdline == "" {
			continue // a kernel thread
		}
		state := ""
		for _, l := range strings.Split(read(p+"/status"), "\n") {
			if strings.HasPrefix(l, "State:") {
				state = strings.TrimSpace(strings.TrimPrefix(l, "State:"))
			}
		}
		fmt.Printf("DPMRACE-HUNG pid %s %q state %s\n", filepath.Base(p), cmdline, state)
		tasks, _ := filepath.Glob(p + "/task/[0-9]*")
		for _, t := range tasks {
			stack := read(t + "/stack")
			if w := read(t + "/wchan"); w != "" && w != "0" || stack != "" {
				fmt.Printf("DPMRACE-HUNG   task %s wchan %s\n", filepath.Base(t), read(t+"/wchan"))
				for _, l := range strings.Split(stack, "\n") {
					if l != "" {
						fmt.Printf("DPMRACE-HUNG     %s\n", l)
					}
				}
			}
		}
	}
}

func read(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

func report() (Report, error) {
	r := Report{CCW: []string{}, NICs: []NIC{}, Modules: []string{}, CIOIgnore: []string{}, Groups: []Group{}}
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return r, err
	}
	defer c.Close()
	links, err := c.Link.List()
	if err != nil {
		return r, err
	}
	macByIndex := map[int]string{}
	for _, l := range links {
		if l.Attributes != nil {
			macByIndex[int(l.Index)] = l.Attributes.Address.String()
		}
	}
	ents, _ := os.ReadDir("/sys/bus/ccw/devices")
	for _, e := range ents {
		r.CCW = append(r.CCW, e.Name())
		dev := "/sys/bus/ccw/devices/" + e.Name()
		nets, _ := filepath.Glob(dev + "/virtio*/net/*")
		for _, n := range nets {
			r.NICs = append(r.NICs, nic(e.Name(), "virtio", read(dev+"/online"), n, macByIndex))
		}
	}
	groups, _ := os.ReadDir("/sys/bus/ccwgroup/devices")
	for _, g := range groups {
		dev := "/sys/bus/ccwgroup/devices/" + g.Name()
		r.Groups = append(r.Groups, Group{BusID: g.Name(), Online: read(dev + "/online"), Layer2: read(dev + "/layer2"),
			Port: read(dev + "/portno"), State: read(dev + "/state")})
		nets, _ := filepath.Glob(dev + "/net/*")
		for _, n := range nets {
			x := nic(g.Name(), "qeth", read(dev+"/online"), n, macByIndex)
			x.Layer2, x.Port, x.State = read(dev+"/layer2"), read(dev+"/portno"), read(dev+"/state")
			r.NICs = append(r.NICs, x)
		}
	}
	sort.Slice(r.NICs, func(i, j int) bool { return r.NICs[i].BusID < r.NICs[j].BusID })
	for _, line := range strings.Split(read("/proc/modules"), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			r.Modules = append(r.Modules, f[0])
		}
	}
	sort.Strings(r.Modules)
	for _, line := range strings.Split(read("/proc/cio_ignore"), "\n") {
		if line != "" {
			r.CIOIgnore = append(r.CIOIgnore, line)
		}
	}
	return r, nil
}

func nic(busID, kind, online, netDir string, macByIndex map[int]string) NIC {
	n := NIC{BusID: busID, Kind: kind, Online: online, Interface: filepath.Base(netDir), SysfsMAC: read(netDir + "/address")}
	fmt.Sscan(read(netDir+"/ifindex"), &n.Index)
	if real, err := filepath.EvalSymlinks(netDir); err == nil {
		n.DevPath = strings.TrimPrefix(real, "/sys")
	}
	n.NetlinkMAC = macByIndex[n.Index]
	return n
}

// insmod loads module files one after the other as udev's kmod (31 and
// later) does: finit_module, a compressed file with
// MODULE_INIT_COMPRESSED_FILE so the kernel decompresses it. (u-root's
// insmod decompresses in Go, which on an emulated CPU takes seconds per
// module.) It prints a DPMRUN line, as run does.
func insmod(files []string) int {
	start := time.Now()
	code := 0
	for _, f := range files {
		if err := finit(f); err != nil {
			fmt.Printf("insmod %s: %v\n", f, err)
			code = 1
			break
		}
	}
	fmt.Printf("DPMRUN exit=%d ms=%.1f\n", code, float64(time.Since(start).Microseconds())/1000)
	return code
}

func finit(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if !strings.HasSuffix(file, ".ko") {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	return unix.FinitModule(int(f.Fd()), "", flags)
}
