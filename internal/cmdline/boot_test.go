package cmdline

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBootOptions(t *testing.T) {
	const (
		forms   = `seconds ("30", "2.5") or a Go duration ("30s", "1m30s", "500ms"; units ns, us, ms, s, m, h)`
		notBool = `is neither off (0, no, off, false) nor on (1, yes, on, true); taken as on`
	)
	def := func(b Boot) Boot {
		if b.Timeout == 0 {
			b.Timeout, b.TimeoutFrom = DefaultTimeout, "default"
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		cmdline  string
		initrd   bool
		want     Boot
		problems []string
	}{
		{name: "nothing", cmdline: "root=/dev/dasda1 0001,0;"},
		{name: "nothing in the initramfs", cmdline: "", initrd: true},

		// Turned off.
		{name: "dpm_netconf=0", cmdline: "ro dpm_netconf=0 0001,0;", want: Boot{Off: true, OffBy: "dpm_netconf=0 at offset 3"}},
		{name: "dpm_netconf=off", cmdline: "dpm_netconf=off", want: Boot{Off: true, OffBy: "dpm_netconf=off at offset 0"}},
		{name: "dpm_netconf=NO", cmdline: "dpm_netconf=NO", want: Boot{Off: true, OffBy: "dpm_netconf=NO at offset 0"}},
		{name: "dpm_netconf=false", cmdline: "dpm_netconf=false", want: Boot{Off: true, OffBy: "dpm_netconf=false at offset 0"}},
		{name: "dpm_netconf=0 in the initramfs", cmdline: "dpm_netconf=0", initrd: true, want: Boot{Off: true, OffBy: "dpm_netconf=0 at offset 0"}},
		{name: "quoted", cmdline: `a "dpm_netconf=0"`, want: Boot{Off: true, OffBy: "dpm_netconf=0 at offset 3"}},
		{name: "last one counts: on", cmdline: "dpm_netconf=0 dpm_netconf=1"},
		{name: "last one counts: off", cmdline: "dpm_netconf=yes dpm_netconf=0", want: Boot{Off: true, OffBy: "dpm_netconf=0 at offset 16"}},
		{name: "no value is on", cmdline: "dpm_netconf=0 dpm_netconf"},
		{name: "other names", cmdline: "xdpm_netconf=0 dpm_netconf_x=0 dpm_netconf.off=0 rd.dpm_netconf.x=0"},
		{name: "unknown value is on", cmdline: "dpm_netconf=maybe",
			problems: []string{`dpm_netconf=maybe at offset 0: "maybe" ` + notBool}},
		{name: "rd.dpm_netconf=0 outside the initramfs", cmdline: "rd.dpm_netconf=0"},
		{name: "rd.dpm_netconf=0 inside", cmdline: "rd.dpm_netconf=0", initrd: true, want: Boot{Off: true, OffBy: "rd.dpm_netconf=0 at offset 0"}},
		{name: "rd.dpm_netconf=1 does not override dpm_netconf=0", cmdline: "dpm_netconf=0 rd.dpm_netconf=1", initrd: true,
			want: Boot{Off: true, OffBy: "dpm_netconf=0 at offset 0"}},
		{name: "both off: the global one is named", cmdline: "rd.dpm_netconf=off dpm_netconf=0", initrd: true,
			want: Boot{Off: true, OffBy: "dpm_netconf=0 at offset 19"}},
		{name: "bad rd.dpm_netconf outside the initramfs is not read", cmdline: "rd.dpm_netconf=maybe"},
		{name: "bad rd.dpm_netconf inside", cmdline: "rd.dpm_netconf=maybe", initrd: true,
			problems: []string{`rd.dpm_netconf=maybe at offset 0: "maybe" ` + notBool}},

		// Deadline.
		{name: "Go duration", cmdline: "dpm_netconf.timeout=15s 0001,0;",
			want: Boot{Timeout: 15 * time.Second, TimeoutFrom: "dpm_netconf.timeout=15s at offset 0"}},
		{name: "bare seconds", cmdline: "ro dpm_netconf.timeout=30",
			want: Boot{Timeout: 30 * time.Second, TimeoutFrom: "dpm_netconf.timeout=30 at offset 3"}},
		{name: "fractional seconds", cmdline: "dpm_netconf.timeout=2.5",
			want: Boot{Timeout: 2500 * time.Millisecond, TimeoutFrom: "dpm_netconf.timeout=2.5 at offset 0"}},
		{name: "last timeout counts", cmdline: "dpm_netconf.timeout=1m dpm_netconf.timeout=2s",
			want: Boot{Timeout: 2 * time.Second, TimeoutFrom: "dpm_netconf.timeout=2s at offset 23"}},
		{name: "an overridden bad value is no problem", cmdline: "dpm_netconf.timeout=soon dpm_netconf.timeout=5",
			want: Boot{Timeout: 5 * time.Second, TimeoutFrom: "dpm_netconf.timeout=5 at offset 25"}},
		{name: "bad value: default", cmdline: "ro dpm_netconf.timeout=soon",
			problems: []string{`dpm_netconf.timeout=soon at offset 3: duration "soon" is neither ` + forms + "; ignored"}},
		{name: "a bad last value does not revive an earlier one", cmdline: "dpm_netconf.timeout=30 dpm_netconf.timeout=-1s",
			problems: []string{`dpm_netconf.timeout=-1s at offset 23: duration "-1s" must be positive; ignored`}},
		{name: "zero", cmdline: "dpm_netconf.timeout=0",
			problems: []string{`dpm_netconf.timeout=0 at offset 0: duration "0" must be positive; ignored`}},
		{name: "too long", cmdline: "dpm_netconf.timeout=2h",
			problems: []string{`dpm_netconf.timeout=2h at offset 0: duration "2h" is too long: the maximum is 1h (a deadline that long would hold up the boot); ignored`}},
		{name: "no value", cmdline: "dpm_netconf.timeout= x dpm_netconf.timeout",
			problems: []string{`dpm_netconf.timeout at offset 23: empty duration: give ` + forms + "; ignored"}},
		{name: "rd timeout outside the initramfs is not read", cmdline: "rd.dpm_netconf.timeout=5 dpm_netconf.timeout=10",
			want: Boot{Timeout: 10 * time.Second, TimeoutFrom: "dpm_netconf.timeout=10 at offset 25"}},
		{name: "bad rd timeout outside the initramfs is no problem", cmdline: "rd.dpm_netconf.timeout=soon"},
		{name: "rd timeout wins inside", cmdline: "rd.dpm_netconf.timeout=5 dpm_netconf.timeout=10", initrd: true,
			want: Boot{Timeout: 5 * time.Second, TimeoutFrom: "rd.dpm_netconf.timeout=5 at offset 0"}},
		{name: "rd timeout alone inside", cmdline: "rd.dpm_netconf.timeout=500ms", initrd: true,
			want: Boot{Timeout: 500 * time.Millisecond, TimeoutFrom: "rd.dpm_netconf.timeout=500ms at offset 0"}},
		{name: "global timeout inside without rd", cmdline: "dpm_netconf.timeout=1m30s", initrd: true,
			want: Boot{Timeout: 90 * time.Second, TimeoutFrom: "dpm_netconf.timeout=1m30s at offset 0"}},
		{name: "bad rd timeout inside: the global one", cmdline: "dpm_netconf.timeout=10 rd.dpm_netconf.timeout=5x", initrd: true,
			want:     Boot{Timeout: 10 * time.Second, TimeoutFrom: "dpm_netconf.timeout=10 at offset 0"},
			problems: []string{`rd.dpm_netconf.timeout=5x at offset 23: duration "5x" is neither ` + forms + "; ignored"}},
		{name: "both bad inside: default, problems in command-line order", cmdline: "rd.dpm_netconf.timeout=0 dpm_netconf.timeout=x", initrd: true,
			problems: []string{
				`rd.dpm_netconf.timeout=0 at offset 0: duration "0" must be positive; ignored`,
				`dpm_netconf.timeout=x at offset 25: duration "x" is neither ` + forms + "; ignored",
			}},
		{name: "off and a timeout", cmdline: `dpm_netconf=0 "dpm_netconf.timeout=5"`,
			want: Boot{Off: true, OffBy: "dpm_netconf=0 at offset 0", Timeout: 5 * time.Second, TimeoutFrom: "dpm_netconf.timeout=5 at offset 15"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := BootOptions(tc.cmdline, tc.initrd)
			var problems []string
			for _, p := range got.Problems {
				var pe *ParamError
				if !errors.As(p, &pe) {
					t.Errorf("problem %v is a %T, not a *ParamError", p, p)
				} else if !strings.HasPrefix(tc.cmdline[pe.Offset:], pe.Param) {
					t.Errorf("offset %d does not point at %q in %q", pe.Offset, pe.Param, tc.cmdline)
				}
				problems = append(problems, p.Error())
			}
			if !reflect.DeepEqual(problems, tc.problems) {
				t.Errorf("problems:\n%q\nwant\n%q", problems, tc.problems)
			}
			got.Problems = nil
			if want := def(tc.want); !reflect.DeepEqual(got, want) {
				t.Errorf("BootOptions(%q, %v) = %+v\nwant %+v", tc.cmdline, tc.initrd, got, want)
			}
		})
	}
}

func TestBootOptionsOffsetsOfQuotedParams(t *testing.T) {
	// Quotes are removed, so the offset is that of the parameter's first
	// byte after the quote.
	b := BootOptions(`x "dpm_netconf.timeout=soon"`, false)
	var pe *ParamError
	if len(b.Problems) != 1 || !errors.As(b.Problems[0], &pe) || pe.Offset != 3 || pe.Param != "dpm_netconf.timeout=soon" {
		t.Errorf("problems = %v", b.Problems)
	}
}

func TestDeadline(t *testing.T) {
	fromParam := BootOptions("rd.dpm_netconf.timeout=30 dpm_netconf.timeout=10", true)
	for _, tc := range []struct {
		name    string
		boot    Boot
		flag    time.Duration
		flagSet bool
		want    time.Duration
		from    string
	}{
		{name: "flag beats the parameter", boot: fromParam, flag: 5 * time.Second, flagSet: true, want: 5 * time.Second, from: "--timeout"},
		{name: "flag equal to the default still counts as given", boot: fromParam, flag: DefaultTimeout, flagSet: true, want: DefaultTimeout, from: "--timeout"},
		{name: "parameter beats the flag's default", boot: fromParam, flag: DefaultTimeout, want: 30 * time.Second, from: "rd.dpm_netconf.timeout=30 at offset 0"},
		{name: "default", boot: BootOptions("", true), flag: DefaultTimeout, want: DefaultTimeout, from: "default"},
		{name: "bad parameter: default", boot: BootOptions("dpm_netconf.timeout=soon", false), want: DefaultTimeout, from: "default"},
		{name: "zero Boot: default", boot: Boot{}, want: DefaultTimeout, from: "default"},
	} {
		d, from := tc.boot.Deadline(tc.flag, tc.flagSet)
		if d != tc.want || from != tc.from {
			t.Errorf("%s: Deadline(%v, %v) = %v, %q; want %v, %q", tc.name, tc.flag, tc.flagSet, d, from, tc.want, tc.from)
		}
	}
}
