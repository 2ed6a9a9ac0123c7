package cmdline

import (
	"fmt"
	"strings"
	"time"
)

// MaxDuration is the longest duration ParseDuration accepts: dpm-netconf's
// deadline holds up the boot, and more than an hour is a typo, not a wish.
const MaxDuration = time.Hour

// durationForms is what ParseDuration accepts, for its error messages.
const durationForms = `seconds ("30", "2.5") or a Go duration ("30s", "1m30s", "500ms"; units ns, us, ms, s, m, h)`

// ParseDuration reads a duration as systemd and dracut users write them
// and as Go writes them: a bare decimal number is seconds ("30" = 30s,
// "2.5" = 2.5s), anything else is a Go duration ("30s", "1m30s", "500ms").
// The duration must be positive and at most MaxDuration. Errors quote the
// text and say what is wrong with it.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration: give %s", durationForms)
	}
	text := s
	bare := isDecimal(s)
	if bare {
		text += "s"
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		if !bare && !isGoDuration(s) {
			return 0, fmt.Errorf("duration %q is neither %s", s, durationForms)
		}
		// Well formed, but beyond what a time.Duration holds (292 years).
		if s[0] == '-' {
			return 0, fmt.Errorf("duration %q must be positive", s)
		}
		return 0, tooLong(s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	if d > MaxDuration {
		return 0, tooLong(s)
	}
	return d, nil
}

func tooLong(s string) error {
	return fmt.Errorf("duration %q is too long: the maximum is %s (a deadline that long would hold up the boot)",
		s, shortDuration(MaxDuration))
}

// isDecimal reports whether s is a decimal number with an optional sign:
// "30", "+2.5", "-1", ".5", "5.".
func isDecimal(s string) bool {
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	n, ok := number(s)
	return ok && n == len(s)
}

// isGoDuration reports whether s has the form time.ParseDuration reads
// ([sign] (number unit)+), whatever its size: when ParseDuration rejects
// such a text, the value overflowed.
func isGoDuration(s string) bool {
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for s != "" {
		n, ok := number(s)
		if !ok {
			return false
		}
		s = s[n:]
		unit := false
		for _, u := range []string{"ns", "us", "µs", "μs", "ms", "s", "m", "h"} {
			if strings.HasPrefix(s, u) {
				s, unit = s[len(u):], true
				break
			}
		}
		if !unit {
			return false
		}
	}
	return true
}

// number returns the length of the decimal number ("30", "2.5", ".5",
// "5.") at the start of s.
func number(s string) (int, bool) {
	i, digits := 0, 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
			digits++
		}
	}
	return i, digits > 0
}

// shortDuration writes 1h for 1h0m0s and 1m30s for 1m30s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
