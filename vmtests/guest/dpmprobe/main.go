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
//	                           write PATH VALUE, sleep DURATION), prints
//	                           DPMPROBE-END and powers the guest off; a
//	                           line "shell" ends the script there and
//	                           lets init go on to its shell instead
//	dpmprobe actor BUSID...    what another actor at boot does to the
//	                           devices: free them from cio_ignore, settle,
//	                           write online=1 to each; one line per write:
//	                           DPMACTOR +T write FILE "VALUE": RESULT
//	dpmprobe race N BUSIDS CMD ARGS...
//	                           starts N copies of CMD ARGS and one actor
//	                           for BUSIDS (comma-separated) at the same
//	                           instant, waits for all, then reports each
//	                           one's output, exit status and times as JSON,
//	                           base64 in lines: DPMRACE64 <chunk>, ending
//	                           with DPMRACE64 .
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
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
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
		fmt.Fprintln(os.Stderr, "usage: dpmprobe report | run CMD... | iploop IF=MAC... | script FILE | actor BUSID... | race N BUSIDS CMD...")
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
	case "report":
		r, err := report()
		if err != nil {
			fmt.Printf("DPMPROBE-ERROR %v\n", err)
			return 1
		}
		print64("DPMPROBE64", r)
	case "actor":
		return actor(args[1:])
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
	start := time.Now()
	write := func(file, value string) {
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
	write("/proc/cio_ignore", "free "+strings.Join(busIDs, ","))
	write("/proc/cio_settle", "1")
	for _, id := range busIDs {
		write("/sys/bus/ccw/devices/"+id+"/online", "1")
	}
	return 0
}

// RaceProc is one process of a race.
type RaceProc struct {
	Args    []string `json:"args"`
	StartMS float64  `json:"start_ms"` // from the common release to exec
	EndMS   float64  `json:"end_ms"`   // from the common release to exit
	Exit    int      `json:"exit"`     // -1: could not start or was killed
	Output  string   `json:"output"`   // stdout and stderr, interleaved
}

// race starts n copies of a command and an actor at one instant: every
// process is prepared first, then one channel releases them all.
func race(args []string) int {
	var n int
	if len(args) < 3 {
		fmt.Println("DPMRACE-ERROR usage: race N BUSIDS CMD ARGS...")
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
	argvs = append(argvs, append([]string{self, "actor"}, strings.Split(args[1], ",")...))
	procs := make([]RaceProc, len(argvs))
	release := make(chan struct{})
	var t0 time.Time
	var wg sync.WaitGroup
	for i, argv := range argvs {
		var out bytes.Buffer
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = &out, &out
		procs[i].Args = argv
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			p := &procs[i]
			err := cmd.Start()
			p.StartMS = float64(time.Since(t0).Microseconds()) / 1000
			if err == nil {
				err = cmd.Wait()
			}
			p.EndMS = float64(time.Since(t0).Microseconds()) / 1000
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				p.Exit = ee.ExitCode()
			case err != nil:
				p.Exit = -1
				fmt.Fprintf(&out, "DPMRACE-ERROR %v\n", err)
			}
			p.Output = out.String()
		}()
	}
	t0 = time.Now()
	close(release)
	wg.Wait()
	print64("DPMRACE64", procs)
	return 0
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
