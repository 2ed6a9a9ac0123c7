package cmdline

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

type nicWant struct {
	devno string
	port  int
	mac   string
	off   int
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cmdline string
		nics    []nicWant
		errs    []Error
	}{
		{name: "nova-dpm example", cmdline: "root=/dev/sda1 0001,1,0a0000000011;0004,0; quiet",
			nics: []nicWant{{"0001", 1, "0a:00:00:00:00:11", 15}, {"0004", 0, "", 35}}},
		{name: "empty", cmdline: ""},
		{name: "no NIC list", cmdline: "root=/dev/vda ro console=ttysclp0 1234 abcd;"},
		{name: "last semicolon missing", cmdline: "0001,0",
			nics: []nicWant{{"0001", 0, "", 0}}},
		{name: "empty entries ignored", cmdline: "0001,0;;;0002,1;;",
			nics: []nicWant{{"0001", 0, "", 0}, {"0002", 1, "", 9}}},
		{name: "upper case devno and mac normalised", cmdline: "ABCD,1,0A1B2C3D4E5F;",
			nics: []nicWant{{"abcd", 1, "0a:1b:2c:3d:4e:5f", 0}}},
		{name: "colon mac", cmdline: "0001,1,02:00:00:00:00:01",
			nics: []nicWant{{"0001", 1, "02:00:00:00:00:01", 0}}},
		{name: "several lists merge in order", cmdline: "0001,0; ro 0002,1,020000000002; 0003,0",
			nics: []nicWant{{"0001", 0, "", 0}, {"0002", 1, "02:00:00:00:00:02", 11}, {"0003", 0, "", 32}}},
		{name: "quoted parameter", cmdline: `a "0001,0;0002,1" b`,
			nics: []nicWant{{"0001", 0, "", 3}, {"0002", 1, "", 10}}},
		{name: "quotes group white space into a parameter", cmdline: `"0001,0; 0002,1"`,
			nics: []nicWant{{"0001", 0, "", 1}}, errs: []Error{{Entry: " 0002,1", Offset: 8, Message: `devno " 0002" must be exactly 4 hex digits`}}},
		{name: "tabs and newlines separate", cmdline: "x\t0001,0;\n0002,1\n",
			nics: []nicWant{{"0001", 0, "", 2}, {"0002", 1, "", 10}}},
		{name: "key=value is not a list", cmdline: "dpm=0001,0; ip=0001,1"},
		{name: "bad port", cmdline: "0001,1,0a0000000011;0004,0;0005,2;",
			nics: []nicWant{{"0001", 1, "0a:00:00:00:00:11", 0}, {"0004", 0, "", 20}},
			errs: []Error{{Entry: "0005,2", Offset: 27, Message: "port must be 0 or 1"}}},
		{name: "port 7", cmdline: "0001,7;", errs: []Error{{Entry: "0001,7", Offset: 0, Message: "port must be 0 or 1"}}},
		{name: "empty port", cmdline: "0001,;", errs: []Error{{Entry: "0001,", Offset: 0, Message: "port must be 0 or 1"}}},
		{name: "port 01", cmdline: "0001,01;", errs: []Error{{Entry: "0001,01", Offset: 0, Message: "port must be 0 or 1"}}},
		{name: "bad devno after a good entry", cmdline: "0001,1;zzzz,1;",
			nics: []nicWant{{"0001", 1, "", 0}},
			errs: []Error{{Entry: "zzzz,1", Offset: 7, Message: `devno "zzzz" must be exactly 4 hex digits`}}},
		{name: "short devno", cmdline: "0001,1;001,1;",
			nics: []nicWant{{"0001", 1, "", 0}},
			errs: []Error{{Entry: "001,1", Offset: 7, Message: `devno "001" must be exactly 4 hex digits`}}},
		{name: "long devno", cmdline: "0001,1;00001,1;",
			nics: []nicWant{{"0001", 1, "", 0}},
			errs: []Error{{Entry: "00001,1", Offset: 7, Message: `devno "00001" must be exactly 4 hex digits`}}},
		{name: "missing port", cmdline: "0001,0;0002;",
			nics: []nicWant{{"0001", 0, "", 0}},
			errs: []Error{{Entry: "0002", Offset: 7, Message: "missing port: an entry is <devno>,<port>[,<mac>]"}}},
		{name: "too many fields", cmdline: "0001,0,020000000001,x;",
			errs: []Error{{Entry: "0001,0,020000000001,x", Offset: 0, Message: "too many fields (4): an entry is <devno>,<port>[,<mac>]"}}},
		{name: "multicast mac", cmdline: "0001,0,030000000001;",
			errs: []Error{{Entry: "0001,0,030000000001", Offset: 0, Message: "mac 03:00:00:00:00:01 is a multicast address: a NIC needs a unicast address (first octet even)"}}},
		{name: "universally administered mac", cmdline: "0001,0,001122334455;",
			errs: []Error{{Entry: "0001,0,001122334455", Offset: 0, Message: "mac 00:11:22:33:44:55 is not locally administered: OSA accepts only locally administered addresses (first octet with bit 0x02 set, e.g. 02:…, 0a:…, 0e:…)"}}},
		{name: "short mac", cmdline: "0001,0,0200000001;",
			errs: []Error{{Entry: "0001,0,0200000001", Offset: 0, Message: `mac "0200000001" must be 12 hex digits or aa:bb:cc:dd:ee:ff`}}},
		{name: "non-hex mac", cmdline: "0001,0,02000000000g;",
			errs: []Error{{Entry: "0001,0,02000000000g", Offset: 0, Message: `mac "02000000000g" must be 12 hex digits or aa:bb:cc:dd:ee:ff`}}},
		{name: "signed hex mac", cmdline: "0001,0,+20000000001;",
			errs: []Error{{Entry: "0001,0,+20000000001", Offset: 0, Message: `mac "+20000000001" must be 12 hex digits or aa:bb:cc:dd:ee:ff`}}},
		{name: "mac with dashes", cmdline: "0001,0,02-00-00-00-00-01;",
			errs: []Error{{Entry: "0001,0,02-00-00-00-00-01", Offset: 0, Message: `mac "02-00-00-00-00-01" must be 12 hex digits or aa:bb:cc:dd:ee:ff`}}},
		{name: "devno fffd is the last usable one", cmdline: "fffd,0;FFFD,0",
			nics: []nicWant{{"fffd", 0, "", 0}}},
		{name: "devno fffe wraps", cmdline: "0001,0;fffe,0;",
			nics: []nicWant{{"0001", 0, "", 0}},
			errs: []Error{{Entry: "fffe,0", Offset: 7, Message: "devno fffe leaves no room for its write and data devices (fffe, ffff, 10000): the last usable devno is fffd"}}},
		{name: "devno FFFF wraps", cmdline: "x FFFF,1,0a0000000011 y",
			errs: []Error{{Entry: "FFFF,1,0a0000000011", Offset: 2, Message: "devno ffff leaves no room for its write and data devices (ffff, 10000, 10001): the last usable devno is fffd"}}},
		{name: "devno ffff with a bad port: the devno is reported", cmdline: "ffff,7;",
			errs: []Error{{Entry: "ffff,7", Offset: 0, Message: "devno ffff leaves no room for its write and data devices (ffff, 10000, 10001): the last usable devno is fffd"}}},
		{name: "devno fffe twice: two errors, no NIC", cmdline: "fffe,0;fffe,0;",
			errs: []Error{
				{Entry: "fffe,0", Offset: 0, Message: "devno fffe leaves no room for its write and data devices (fffe, ffff, 10000): the last usable devno is fffd"},
				{Entry: "fffe,0", Offset: 7, Message: "devno fffe leaves no room for its write and data devices (fffe, ffff, 10000): the last usable devno is fffd"},
			}},
		{name: "same devno same values is one NIC", cmdline: "0001,0,020000000001;0001,0,02:00:00:00:00:01;",
			nics: []nicWant{{"0001", 0, "02:00:00:00:00:01", 0}}},
		{name: "same devno other values: first stands", cmdline: "0001,0;0001,1;",
			nics: []nicWant{{"0001", 0, "", 0}},
			errs: []Error{{Entry: "0001,1", Offset: 7, Message: `devno 0001 is already listed with other values as "0001,0" at offset 0; the first entry stands`}}},
		{name: "same devno different case other mac", cmdline: "abcd,0,020000000001; ABCD,0,020000000002",
			nics: []nicWant{{"abcd", 0, "02:00:00:00:00:01", 0}},
			errs: []Error{{Entry: "ABCD,0,020000000002", Offset: 21, Message: `devno abcd is already listed with other values as "abcd,0,020000000001" at offset 0; the first entry stands`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(tc.cmdline)
			var nics []nicWant
			for _, n := range got.NICs {
				mac := ""
				if n.MAC != nil {
					mac = n.MAC.String()
				}
				nics = append(nics, nicWant{n.DevnoString(), n.Port, mac, n.Offset})
				if tc.cmdline[n.Offset:n.Offset+4] != n.Entry[:4] {
					t.Errorf("offset %d does not point at entry %q in %q", n.Offset, n.Entry, tc.cmdline)
				}
			}
			if !reflect.DeepEqual(nics, tc.nics) {
				t.Errorf("NICs = %+v, want %+v", nics, tc.nics)
			}
			if tc.errs == nil {
				tc.errs = []Error{}
			}
			if !reflect.DeepEqual(got.Errors, tc.errs) {
				t.Errorf("errors = %+v\nwant     %+v", got.Errors, tc.errs)
			}
		})
	}
}

func TestBusID(t *testing.T) {
	l := Parse("FE0A,0")
	if got := l.NICs[0].BusID(); got != "0.0.fe0a" {
		t.Errorf("BusID = %q, want 0.0.fe0a", got)
	}
}

func TestIsNICList(t *testing.T) {
	for s, want := range map[string]bool{
		"0001,": true, "abcd,1": true, "0001": false, "0001;": false, "00g1,1": false, "=0001,1": false, "": false,
	} {
		if got := IsNICList(s); got != want {
			t.Errorf("IsNICList(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestErrorJSON(t *testing.T) {
	b, err := json.Marshal(Parse("0005,2").Errors)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"entry":"0005,2","offset":0,"message":"port must be 0 or 1"}]`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

// FuzzParse checks the invariants every parse must keep, whatever the input:
// no panic, offsets point at the entry's text in the command line, every NIC
// is valid and unique, and the valid NICs survive being re-parsed.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"0001,1,0a0000000011;0004,0;", `x "0001,0;0002,1" y`, "0001,7;zzzz,1;", "0001,0,03:00:00:00:00:01",
		"0001,0;0001,1;", "\"", "0001,0\"\" ;", "fffd,0;fffe,1;FFFF,0,0a0000000011;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := Parse(s)
		seen := map[uint16]bool{}
		var rebuilt []string
		for _, n := range l.NICs {
			if n.Devno > LastDevno {
				t.Fatalf("devno %s accepted: its triplet wraps past ffff", n.DevnoString())
			}
			if seen[n.Devno] {
				t.Fatalf("devno %s listed twice", n.DevnoString())
			}
			seen[n.Devno] = true
			if n.Port != 0 && n.Port != 1 {
				t.Fatalf("port %d", n.Port)
			}
			if n.MAC != nil && (n.MAC[0]&3 != 2 || len(n.MAC) != 6) {
				t.Fatalf("invalid mac %s accepted", n.MAC)
			}
			if n.Offset < 0 || n.Offset >= len(s) || s[n.Offset] != n.Entry[0] {
				t.Fatalf("offset %d does not point at %q", n.Offset, n.Entry)
			}
			e := n.DevnoString() + "," + string(rune('0'+n.Port))
			if n.MAC != nil {
				e += "," + n.MAC.String()
			}
			rebuilt = append(rebuilt, e)
		}
		for _, e := range l.Errors {
			if e.Offset < 0 || e.Offset >= len(s) || e.Message == "" || e.Entry == "" {
				t.Fatalf("bad error %+v", e)
			}
		}
		again := Parse(strings.Join(rebuilt, ";"))
		if len(again.NICs) != len(l.NICs) || len(again.Errors) != 0 {
			t.Fatalf("re-parse of %q gave %+v", rebuilt, again)
		}
	})
}
