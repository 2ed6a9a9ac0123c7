// Package cmdline extracts the NIC list that nova-dpm appends to the kernel
// command line, e.g. "0001,1,0a0000000011;0004,0;".
//
// Parsing never touches the system: it turns text into NICs and precise
// errors (entry text, byte offset in the command line, reason). An invalid
// entry is dropped whole; the valid ones still stand, so one typo does not
// take every NIC of a partition offline.
//
// It also reads dpm-netconf's own boot parameters (BootOptions: turned off,
// deadline) and the durations they and --timeout take (ParseDuration).
package cmdline

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// NIC is one valid entry of the NIC list.
type NIC struct {
	Devno  uint16           // device number of the read (or only) CCW device
	Port   int              // adapter port, 0 or 1
	MAC    net.HardwareAddr // nil when the entry names none
	Entry  string           // the entry as written
	Offset int              // byte offset of the entry in the command line
}

// DevnoString is the devno as 4 lower-case hex digits ("0001").
func (n NIC) DevnoString() string { return fmt.Sprintf("%04x", n.Devno) }

// BusID is the CCW bus id of the read device ("0.0.0001"). DPM uses channel
// subsystem 0 and subchannel set 0.
func (n NIC) BusID() string { return BusID(n.Devno) }

// BusID formats a devno in css 0, subchannel set 0.
func BusID(devno uint16) string { return fmt.Sprintf("0.0.%04x", devno) }

// Error is an entry that was rejected.
type Error struct {
	Entry   string `json:"entry"`
	Offset  int    `json:"offset"`
	Message string `json:"message"`
}

func (e Error) Error() string {
	return fmt.Sprintf("entry %q at offset %d: %s", e.Entry, e.Offset, e.Message)
}

// List is the outcome of parsing: the NICs to configure, in command-line
// order, and the entries that were rejected.
type List struct {
	NICs   []NIC
	Errors []Error
}

// Lookup returns the listed NIC with the given devno.
func (l List) Lookup(devno uint16) (NIC, bool) {
	for _, n := range l.NICs {
		if n.Devno == devno {
			return n, true
		}
	}
	return NIC{}, false
}

// Param is one kernel parameter with the byte offset in the command line of
// each of its bytes (quotes are removed, so offsets are not contiguous).
type Param struct {
	Text    string
	Offsets []int
}

// Split divides a command line into parameters the way the kernel does:
// parameters are separated by white space outside double quotes, and the
// quotes themselves are not part of the parameter.
func Split(cmdline string) []Param {
	var (
		params  []Param
		cur     []byte
		offs    []int
		inQuote bool
		started bool
	)
	flush := func() {
		if started {
			params = append(params, Param{Text: string(cur), Offsets: offs})
		}
		cur, offs, started = nil, nil, false
	}
	for i := 0; i < len(cmdline); i++ {
		c := cmdline[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			started = true
		case isSpace(c) && !inQuote:
			flush()
		default:
			cur = append(cur, c)
			offs = append(offs, i)
			started = true
		}
	}
	flush()
	return params
}

// isSpace is the kernel's isspace() for the ASCII range the command line uses.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// IsNICList reports whether a parameter is a nova-dpm NIC list: it starts
// with 4 hex digits and a comma.
func IsNICList(param string) bool {
	if len(param) < 5 || param[4] != ',' {
		return false
	}
	for i := 0; i < 4; i++ {
		if !isHex(param[i]) {
			return false
		}
	}
	return true
}

// Parse reads every NIC-list parameter of a kernel command line. Several
// NIC-list parameters merge, in order.
func Parse(cmdline string) List {
	var l List
	seen := map[uint16]NIC{}
	for _, p := range Split(cmdline) {
		if !IsNICList(p.Text) {
			continue
		}
		start := 0
		for i := 0; i <= len(p.Text); i++ {
			if i < len(p.Text) && p.Text[i] != ';' {
				continue
			}
			if i > start {
				l.add(p.Text[start:i], p.Offsets[start], seen)
			}
			start = i + 1
		}
	}
	if l.Errors == nil {
		l.Errors = []Error{}
	}
	return l
}

func (l *List) add(entry string, offset int, seen map[uint16]NIC) {
	nic, msg := parseEntry(entry)
	if msg == "" {
		if first, dup := seen[nic.Devno]; dup {
			if first.Port == nic.Port && first.MAC.String() == nic.MAC.String() {
				return // the same NIC listed twice: one NIC
			}
			msg = fmt.Sprintf("devno %s is already listed with other values as %q at offset %d; the first entry stands",
				nic.DevnoString(), first.Entry, first.Offset)
		}
	}
	if msg != "" {
		l.Errors = append(l.Errors, Error{Entry: entry, Offset: offset, Message: msg})
		return
	}
	nic.Entry, nic.Offset = entry, offset
	seen[nic.Devno] = nic
	l.NICs = append(l.NICs, nic)
}

const entryForm = "<devno>,<port>[,<mac>]"

// LastDevno is the highest devno an entry may name: a qeth NIC is the
// triplet read, write, data = devno, devno+1, devno+2, and device numbers
// end at ffff, so fffe and ffff would wrap around.
const LastDevno = 0xfffd

// parseEntry parses "<devno>,<port>[,<mac>]"; a non-empty message says why
// the entry is invalid.
func parseEntry(entry string) (NIC, string) {
	fields := strings.Split(entry, ",")
	if len(fields) < 2 {
		return NIC{}, "missing port: an entry is " + entryForm
	}
	if len(fields) > 3 {
		return NIC{}, fmt.Sprintf("too many fields (%d): an entry is %s", len(fields), entryForm)
	}
	devno, err := parseDevno(fields[0])
	if err != "" {
		return NIC{}, err
	}
	if devno > LastDevno {
		d := int(devno)
		return NIC{}, fmt.Sprintf("devno %04x leaves no room for its write and data devices (%04x, %04x, %04x): the last usable devno is %04x",
			d, d, d+1, d+2, LastDevno)
	}
	if fields[1] != "0" && fields[1] != "1" {
		return NIC{}, "port must be 0 or 1"
	}
	nic := NIC{Devno: devno, Port: int(fields[1][0] - '0')}
	if len(fields) == 3 {
		mac, err := ParseMAC(fields[2])
		if err != nil {
			return NIC{}, err.Error()
		}
		nic.MAC = mac
	}
	return nic, ""
}

func parseDevno(s string) (uint16, string) {
	if len(s) != 4 {
		return 0, fmt.Sprintf("devno %q must be exactly 4 hex digits", s)
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return 0, fmt.Sprintf("devno %q must be exactly 4 hex digits", s)
		}
	}
	v, _ := strconv.ParseUint(s, 16, 16)
	return uint16(v), ""
}

// ParseMAC accepts 12 hex digits or the colon form and requires a unicast,
// locally administered address: OSA adapters accept nothing else, and the
// kernel does not check the locally administered bit itself.
func ParseMAC(s string) (net.HardwareAddr, error) {
	hex := s
	if len(s) == 17 {
		var b strings.Builder
		for i := 0; i < 17; i++ {
			if i%3 == 2 {
				if s[i] != ':' {
					return nil, fmt.Errorf("mac %q must be 12 hex digits or aa:bb:cc:dd:ee:ff", s)
				}
				continue
			}
			b.WriteByte(s[i])
		}
		hex = b.String()
	}
	if len(hex) != 12 {
		return nil, fmt.Errorf("mac %q must be 12 hex digits or aa:bb:cc:dd:ee:ff", s)
	}
	mac := make(net.HardwareAddr, 6)
	for i := range mac {
		v, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("mac %q must be 12 hex digits or aa:bb:cc:dd:ee:ff", s)
		}
		mac[i] = byte(v)
	}
	if mac[0]&0x01 != 0 {
		return nil, fmt.Errorf("mac %s is a multicast address: a NIC needs a unicast address (first octet even)", mac)
	}
	if mac[0]&0x02 == 0 {
		return nil, fmt.Errorf("mac %s is not locally administered: OSA accepts only locally administered addresses (first octet with bit 0x02 set, e.g. 02:…, 0a:…, 0e:…)", mac)
	}
	return mac, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
