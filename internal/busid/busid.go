// Package busid is the CCW bus id as the kernel writes it in sysfs, uevents
// and /proc/cio_ignore: "css.ssid.devno" in lower-case hex, the devno
// always 4 digits ("0.0.1234"; drivers/s390/cio/device.c: "%x.%x.%04x").
// One parser for all of dpm-netconf; the kernel model keeps its own
// lenient one, for what the kernel accepts when written to.
package busid

import (
	"fmt"
	"strconv"
	"strings"
)

// ID is a parsed bus id.
type ID struct {
	CSS, SSID uint8
	Devno     uint16
}

// Parse accepts a bus id in the kernel's form: css and ssid of one or two
// hex digits, a devno of exactly four, lower case.
func Parse(s string) (ID, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[2]) != 4 || s != strings.ToLower(s) {
		return ID{}, fmt.Errorf("%q is not a bus id (css.ssid.devno, e.g. 0.0.1234)", s)
	}
	var v [3]uint64
	for i, bits := range []int{8, 8, 16} {
		n, err := strconv.ParseUint(parts[i], 16, bits)
		if err != nil || parts[i] == "" || len(parts[i]) > bits/4 || strings.HasPrefix(parts[i], "+") {
			return ID{}, fmt.Errorf("%q is not a bus id (css.ssid.devno, e.g. 0.0.1234)", s)
		}
		v[i] = n
	}
	id := ID{CSS: uint8(v[0]), SSID: uint8(v[1]), Devno: uint16(v[2])}
	if id.String() != s { // "00.0.1234": not how the kernel writes it
		return ID{}, fmt.Errorf("%q is not a bus id (css.ssid.devno, e.g. 0.0.1234)", s)
	}
	return id, nil
}

// Valid reports whether s is a bus id in the kernel's form.
func Valid(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// String is the kernel's form.
func (id ID) String() string { return fmt.Sprintf("%x.%x.%04x", id.CSS, id.SSID, id.Devno) }

// Packed orders bus ids as numbers: css, ssid, devno.
func (id ID) Packed() uint32 { return uint32(id.CSS)<<24 | uint32(id.SSID)<<16 | uint32(id.Devno) }
