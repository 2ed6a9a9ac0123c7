package ccw

import (
	"fmt"
	"strings"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/busid"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

// IgnoreList is the cio_ignore list as /proc/cio_ignore reads: one bus id
// or range ("0.0.0000-0.0.00ff") a line (drivers/s390/cio/blacklist.c,
// cio_ignore_proc_seq_show).
type IgnoreList []busRange

type busRange struct{ from, to uint32 } // css<<24 | ssid<<16 | devno

// ParseIgnoreList reads the list; a line it cannot read is an error
// naming it.
func ParseIgnoreList(text string) (IgnoreList, error) {
	var l IgnoreList
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(line, "-")
		from, err := packedBusID(lo)
		if err != nil {
			return nil, fmt.Errorf("cio_ignore line %d %q: %w", i+1, line, err)
		}
		to := from
		if isRange {
			if to, err = packedBusID(hi); err != nil {
				return nil, fmt.Errorf("cio_ignore line %d %q: %w", i+1, line, err)
			}
		}
		if to < from {
			return nil, fmt.Errorf("cio_ignore line %d %q: range ends before it starts", i+1, line)
		}
		l = append(l, busRange{from, to})
	}
	return l, nil
}

// Contains reports whether the list ignores busID.
func (l IgnoreList) Contains(busID string) bool {
	id, err := packedBusID(busID)
	if err != nil {
		return false
	}
	for _, r := range l {
		if r.from <= id && id <= r.to {
			return true
		}
	}
	return false
}

// IgnoreList reads /proc/cio_ignore.
func (s Sys) IgnoreList() (IgnoreList, error) {
	text, err := sysfs.ReadString(s.FS, CIOIgnore)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", CIOIgnore, err)
	}
	return ParseIgnoreList(text)
}

// packedBusID orders a bus id as a number (css, ssid, devno).
func packedBusID(s string) (uint32, error) {
	id, err := busid.Parse(s)
	return id.Packed(), err
}
