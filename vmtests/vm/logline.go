package vm

import (
	"regexp"
	"strconv"
	"strings"
)

// dpm-netconf's log lines, as every VM test reads them. Every line a run of
// command C (apply, setmac, status, ...) prints starts "dpm-netconf: C: ";
// failure lines go on "error: ":
//
//	dpm-netconf: apply: 0.0.0001: ok: virtio eth0 mac 0a:00:00:00:00:11 (online, mac)
//	dpm-netconf: apply: error: 0.0.0100: FAILED at free: ...
//	dpm-netconf: apply: done in 412.3ms: 3 of 3 NICs configured, 0 invalid entries; exit status 0
//
// The lines may come from the process's stderr (line-initial on a console)
// or from the kernel log (after a "[ 12.3456]" timestamp, or after the
// journal's host and identifier), so the patterns are not anchored.

// Prefix is the start of every line a run of cmd prints.
func Prefix(cmd string) string { return "dpm-netconf: " + cmd + ": " }

// ErrorPrefix is the start of every failure line a run of cmd prints.
func ErrorPrefix(cmd string) string { return Prefix(cmd) + "error: " }

// Done is a run's closing line.
type Done struct {
	Took                             string // dpm-netconf's own exec-to-exit time, e.g. "412.3ms"
	Configured, Total, Invalid, Exit int
}

// DonePattern matches the closing line of a run of cmd; its submatches are
// Done's fields in order.
func DonePattern(cmd string) string {
	return regexp.QuoteMeta(Prefix(cmd)) + `done in (\S+): (\d+) of (\d+) NICs configured, (\d+) invalid entries; exit status (\d+)`
}

// ParseDone finds the first closing line of a run of cmd in text.
func ParseDone(text, cmd string) (Done, bool) {
	m := regexp.MustCompile(DonePattern(cmd)).FindStringSubmatch(text)
	if m == nil {
		return Done{}, false
	}
	return doneFrom(m), true
}

func doneFrom(m []string) Done {
	d := Done{Took: m[1]}
	d.Configured, _ = strconv.Atoi(m[2])
	d.Total, _ = strconv.Atoi(m[3])
	d.Invalid, _ = strconv.Atoi(m[4])
	d.Exit, _ = strconv.Atoi(m[5])
	return d
}

// OK is a NIC's summary line after a run that configured it:
// "dpm-netconf: C: <bus id>: ok: <kind> [<interface>] [layer2 port N] [mac M] (<steps>)".
type OK struct {
	BusID   string
	Summary string   // between "ok: " and the parenthesis
	MAC     string   // the "mac M" of the summary, "" when none is listed
	Steps   []string // what this run did; none when it changed nothing
	Line    string   // the whole match
}

// Unchanged is the steps text of a NIC the run found configured.
const Unchanged = "already configured, nothing changed"

// SetMAC reports whether this run set the NIC's MAC.
func (o OK) SetMAC() bool {
	for _, s := range o.Steps {
		if s == "mac" {
			return true
		}
	}
	return false
}

var okRE = regexp.MustCompile(`dpm-netconf: ([a-z]+): (0\.[0-3]\.[0-9a-f]{4}): ok: ([^()\r\n]*) \(([^()\r\n]*)\)`)

// OKLines returns every ok line of a run of cmd in text, in order. The
// same line may be there twice (stderr and the kernel log).
func OKLines(text, cmd string) []OK {
	var out []OK
	for _, m := range okRE.FindAllStringSubmatch(text, -1) {
		if m[1] != cmd {
			continue
		}
		o := OK{BusID: m[2], Summary: m[3], Line: m[0]}
		if f := strings.Fields(m[3]); len(f) >= 2 && f[len(f)-2] == "mac" {
			o.MAC = f[len(f)-1]
		}
		if m[4] != Unchanged {
			o.Steps = strings.Split(m[4], ", ")
		}
		out = append(out, o)
	}
	return out
}
