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
//	                           DPMPROBE-END and powers the guest off
//
// Installed as /bbin/uinit it runs /etc/dpmprobe.script at boot: guests
// whose console takes no input (Hercules' SCLP line mode) run their
// scenario this way.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
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
		fmt.Fprintln(os.Stderr, "usage: dpmprobe report | run CMD... | iploop IF=MAC...")
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
		// Base64 in short lines: Hercules' SCLP line-mode console turns
		// brackets into other characters and wraps long lines.
		b, _ := json.Marshal(r)
		enc := base64.StdEncoding.EncodeToString(b)
		for len(enc) > 0 {
			n := min(len(enc), 64)
			fmt.Printf("DPMPROBE64 %s\n", enc[:n])
			enc = enc[n:]
		}
		fmt.Println("DPMPROBE64 .")
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
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			fmt.Printf("DPMSTEP %s\n", line)
			do(f)
		}
	}
	fmt.Println("DPMPROBE-END")
	// Let the console drain: SCLP goes inactive at power-off and drops
	// what it still holds.
	time.Sleep(3 * time.Second)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
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
