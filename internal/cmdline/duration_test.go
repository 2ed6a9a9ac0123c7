package cmdline

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	const forms = `seconds ("30", "2.5") or a Go duration ("30s", "1m30s", "500ms"; units ns, us, ms, s, m, h)`
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "30", want: 30 * time.Second},
		{in: "2.5", want: 2500 * time.Millisecond},
		{in: "0.5", want: 500 * time.Millisecond},
		{in: ".5", want: 500 * time.Millisecond},
		{in: "5.", want: 5 * time.Second},
		{in: "+30", want: 30 * time.Second},
		{in: "0030", want: 30 * time.Second},
		{in: "3600", want: time.Hour},
		{in: "30s", want: 30 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "1h", want: time.Hour},
		{in: "1.5m", want: 90 * time.Second},
		{in: "1ns", want: time.Nanosecond},
		{in: "250µs", want: 250 * time.Microsecond},

		{in: "", err: "empty duration: give " + forms},
		{in: "soon", err: `duration "soon" is neither ` + forms},
		{in: "30 s", err: `duration "30 s" is neither ` + forms},
		{in: "1min", err: `duration "1min" is neither ` + forms},
		{in: "1e3", err: `duration "1e3" is neither ` + forms},
		{in: "0x10", err: `duration "0x10" is neither ` + forms},
		{in: "1.2.3", err: `duration "1.2.3" is neither ` + forms},
		{in: ".", err: `duration "." is neither ` + forms},
		{in: "s", err: `duration "s" is neither ` + forms},
		{in: "--5", err: `duration "--5" is neither ` + forms},
		{in: "inf", err: `duration "inf" is neither ` + forms},
		{in: "0", err: `duration "0" must be positive`},
		{in: "0s", err: `duration "0s" must be positive`},
		{in: "0.0000000001", err: `duration "0.0000000001" must be positive`},
		{in: "-1", err: `duration "-1" must be positive`},
		{in: "-1s", err: `duration "-1s" must be positive`},
		{in: "-99999999999999999999h", err: `duration "-99999999999999999999h" must be positive`},
		{in: "3600.001", err: `duration "3600.001" is too long: the maximum is 1h (a deadline that long would hold up the boot)`},
		{in: "2h", err: `duration "2h" is too long: the maximum is 1h (a deadline that long would hold up the boot)`},
		{in: "61m", err: `duration "61m" is too long: the maximum is 1h (a deadline that long would hold up the boot)`},
		{in: "99999999999999999999", err: `duration "99999999999999999999" is too long: the maximum is 1h (a deadline that long would hold up the boot)`},
		{in: "3000000h", err: `duration "3000000h" is too long: the maximum is 1h (a deadline that long would hold up the boot)`},
	} {
		got, err := ParseDuration(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || err.Error() != tc.err || got != 0):
			t.Errorf("ParseDuration(%q) = %v, %v\nwant error %s", tc.in, got, err, tc.err)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", time.Minute: "1m", 2 * time.Second: "2s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// FuzzParseDuration checks, whatever the text: no panic; an accepted
// duration is in (0, MaxDuration] and reads back the same from its Go
// form; bare seconds mean the same as with an "s" appended; an error quotes
// the text.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30", "2.5", "1m30s", "500ms", "-1s", "0", "2h", "99999999999999999999", "1.2.3", "µs", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("ParseDuration(%q) = %v with error %v", s, d, err)
			}
			if s != "" && !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("error for %q does not quote it: %v", s, err)
			}
			return
		}
		if d <= 0 || d > MaxDuration {
			t.Fatalf("ParseDuration(%q) = %v, outside (0, %v]", s, d, MaxDuration)
		}
		if again, err := ParseDuration(d.String()); err != nil || again != d {
			t.Fatalf("ParseDuration(%q) = %v, but its Go form %q reads as %v, %v", s, d, d.String(), again, err)
		}
		if isDecimal(s) {
			if withUnit, err := ParseDuration(s + "s"); err != nil || withUnit != d {
				t.Fatalf("ParseDuration(%q) = %v, but %q reads as %v, %v", s, d, s+"s", withUnit, err)
			}
		}
	})
}
