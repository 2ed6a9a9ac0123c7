package ccw

import (
	"fmt"
	"strconv"
	"strings"

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
		from, err := packBusID(lo)
		if err != nil {
			return nil, fmt.Errorf("cio_ignore line %d %q: %w", i+1, line, err)
		}
		to := from
		if isRange {
			if to, err = packBusID(hi); err != nil {
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
	id, err := packBusID(busID)
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

// packBusID reads "css.ssid.devno" (hex) into one comparable number.
func packBusID(s string) (uint32, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return 0, fmt.Errorf("%q is not a bus id (css.ssid.devno)", s)
	}
	var v [3]uint64
	for i, bits := range []int{8, 8, 16} {
		n, err := strconv.ParseUint(parts[i], 16, bits)
		if err != nil || parts[i] == "" {
			return 0, fmt.Errorf("%q is not a bus id (css.ssid.devno)", s)
		}
		v[i] = n
	}
	return uint32(v[0]<<24 | v[1]<<16 | v[2]), nil
}
