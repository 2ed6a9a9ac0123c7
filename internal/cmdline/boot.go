package cmdline

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// The kernel parameters that control dpm-netconf itself. The rd. ones count
// only inside the initramfs.
const (
	// OffParam=0 (or no, off, false) turns dpm-netconf off everywhere:
	// dracut hook, systemd unit, udev rule.
	OffParam = "dpm_netconf"
	// TimeoutParam sets the deadline of every run without --timeout.
	TimeoutParam = "dpm_netconf.timeout"
	// InitrdOffParam=0 turns dpm-netconf off inside the initramfs only.
	InitrdOffParam = "rd.dpm_netconf"
	// InitrdTimeoutParam sets the deadline inside the initramfs; there it
	// wins over TimeoutParam.
	InitrdTimeoutParam = "rd.dpm_netconf.timeout"
)

// DefaultTimeout is the deadline when neither --timeout nor a kernel
// parameter sets one.
const DefaultTimeout = 60 * time.Second

// Boot is what the kernel command line says about dpm-netconf itself.
type Boot struct {
	// Off: the command line turns dpm-netconf off; OffBy names the
	// parameter that did, as written, with its offset
	// ("dpm_netconf=0 at offset 12").
	Off   bool
	OffBy string
	// Timeout is the deadline the command line sets, or DefaultTimeout;
	// TimeoutFrom says where it came from
	// ("rd.dpm_netconf.timeout=30 at offset 40", or "default").
	Timeout     time.Duration
	TimeoutFrom string
	// Problems are the parameters whose values were not understood, in
	// command-line order (each a *ParamError). None is fatal: each says
	// what was done instead.
	Problems []error
}

// ParamError is a dpm-netconf parameter whose value was not understood.
type ParamError struct {
	Param  string // the parameter as written ("dpm_netconf.timeout=soon")
	Offset int    // byte offset of the parameter in the command line
	Err    error  // what is wrong with the value
	Then   string // what was done instead ("ignored")
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("%s at offset %d: %v; %s", e.Param, e.Offset, e.Err, e.Then)
}

func (e *ParamError) Unwrap() error { return e.Err }

// occurrence is the last occurrence of a parameter.
type occurrence struct {
	text   string // as written, quotes removed
	value  string
	offset int
}

func (o *occurrence) String() string { return fmt.Sprintf("%s at offset %d", o.text, o.offset) }

// BootOptions reads dpm-netconf's own parameters from a kernel command line.
// initrd says whether dpm-netconf runs inside the initramfs, where the rd.
// parameters count too. As for other kernel parameters, the last
// occurrence of each parameter counts.
//
//   - Off: dpm_netconf=0|no|off|false (any case) turns dpm-netconf off;
//     inside the initramfs rd.dpm_netconf=0 does too. 1, yes, on, true or
//     no value leave it on; another value leaves it on and is a problem.
//   - Timeout: inside the initramfs rd.dpm_netconf.timeout=, else (and
//     when it is absent or bad) dpm_netconf.timeout=, else DefaultTimeout.
//     A value ParseDuration rejects is a problem and ignored, as if that
//     parameter were absent (earlier occurrences stay overridden).
func BootOptions(cmdline string, initrd bool) Boot {
	last := map[string]*occurrence{}
	for _, p := range Split(cmdline) {
		name, value, _ := strings.Cut(p.Text, "=")
		switch name {
		case OffParam, TimeoutParam, InitrdOffParam, InitrdTimeoutParam:
			last[name] = &occurrence{text: p.Text, value: value, offset: p.Offsets[0]}
		}
	}
	b := Boot{Timeout: DefaultTimeout, TimeoutFrom: "default"}
	problem := func(o *occurrence, err error, then string) {
		b.Problems = append(b.Problems, &ParamError{Param: o.text, Offset: o.offset, Err: err, Then: then})
	}

	offParams := []string{OffParam}
	timeoutParams := []string{TimeoutParam} // lowest precedence first
	if initrd {
		offParams = append(offParams, InitrdOffParam)
		timeoutParams = append(timeoutParams, InitrdTimeoutParam)
	}
	for _, name := range offParams {
		o := last[name]
		if o == nil {
			continue
		}
		off, err := parseBool(o.value)
		if err != nil {
			problem(o, err, "taken as on")
		}
		if off && !b.Off {
			b.Off, b.OffBy = true, o.String()
		}
	}
	for _, name := range timeoutParams {
		o := last[name]
		if o == nil {
			continue
		}
		d, err := ParseDuration(o.value)
		if err != nil {
			problem(o, err, "ignored")
			continue
		}
		b.Timeout, b.TimeoutFrom = d, o.String()
	}
	sort.Slice(b.Problems, func(i, j int) bool {
		return b.Problems[i].(*ParamError).Offset < b.Problems[j].(*ParamError).Offset
	})
	return b
}

// parseBool reads an on/off value the way dracut's getargbool does (0, no
// and off are off; no value is on), and also false, true, yes, on, 1, in
// any case. Other values are on, with an error.
func parseBool(v string) (off bool, err error) {
	switch strings.ToLower(v) {
	case "0", "no", "off", "false":
		return true, nil
	case "", "1", "yes", "on", "true":
		return false, nil
	}
	return false, fmt.Errorf("%q is neither off (0, no, off, false) nor on (1, yes, on, true)", v)
}

// Deadline gives the overall deadline and where it came from: the
// --timeout flag when it was given (flagSet), else the kernel parameter
// BootOptions found, else DefaultTimeout. The caller checks the flag's
// value itself (ParseDuration).
func (b Boot) Deadline(flag time.Duration, flagSet bool) (time.Duration, string) {
	switch {
	case flagSet:
		return flag, "--timeout"
	case b.Timeout > 0:
		return b.Timeout, b.TimeoutFrom
	}
	return DefaultTimeout, "default"
}
