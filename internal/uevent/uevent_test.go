package uevent

import (
	"slices"
	"strings"
	"testing"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/busid"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Event
		err      string
	}{
		{name: "ccw add", in: "add@/devices/css0/0.0.0003/0.0.0001\x00ACTION=add\x00DEVPATH=/devices/css0/0.0.0003/0.0.0001\x00SUBSYSTEM=ccw\x00CU_TYPE=3832\x00SEQNUM=812\x00",
			want: Event{Action: "add", DevPath: "/devices/css0/0.0.0003/0.0.0001", Subsystem: "ccw",
				Vars: map[string]string{"ACTION": "add", "DEVPATH": "/devices/css0/0.0.0003/0.0.0001", "SUBSYSTEM": "ccw", "CU_TYPE": "3832", "SEQNUM": "812"}}},
		{name: "module, no vars", in: "add@/module/qeth",
			want: Event{Action: "add", DevPath: "/module/qeth", Vars: map[string]string{}}},
		{name: "udev re-broadcast", in: "libudev\x00\xfe\xed\xca\xfe", err: "a udev message"},
		{name: "no @", in: "add /devices/x\x00", err: `header "add /devices/x" is not ACTION@DEVPATH`},
		{name: "relative path", in: "add@devices/x\x00", err: "is not ACTION@DEVPATH"},
		{name: "field without =", in: "add@/devices/x\x00ACTION\x00", err: `field "ACTION" is not KEY=VALUE`},
		{name: "disagreeing action", in: "add@/devices/x\x00ACTION=remove\x00", err: "ACTION=remove disagrees with the header"},
		{name: "disagreeing path", in: "add@/devices/x\x00DEVPATH=/devices/y\x00", err: "DEVPATH=/devices/y disagrees with the header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse = %+v, %v; want error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Action != tc.want.Action || got.DevPath != tc.want.DevPath || got.Subsystem != tc.want.Subsystem || len(got.Vars) != len(tc.want.Vars) {
				t.Fatalf("Parse = %+v, want %+v", got, tc.want)
			}
			for k, v := range tc.want.Vars {
				if got.Vars[k] != v {
					t.Errorf("%s = %q, want %q", k, got.Vars[k], v)
				}
			}
		})
	}
}

func TestBusIDs(t *testing.T) {
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/devices/css0/0.0.0003/0.0.0001/virtio1/net/eth0", []string{"0.0.0003", "0.0.0001"}},
		{"/devices/qeth/0.0.0600/net/enc600", []string{"0.0.0600"}},
		{"/module/qeth_l2", nil},
		{"/bus/ccwgroup/drivers/qeth", nil},
		{"/devices/css0/0.0.00AB", nil}, // the kernel writes lower case
		{"/devices/css0/0.0.000", nil},
	} {
		if got := (Event{DevPath: tc.path}).BusIDs(); !slices.Equal(got, tc.want) {
			t.Errorf("BusIDs(%s) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"add@/devices/css0/0.0.0003/0.0.0001\x00ACTION=add\x00SUBSYSTEM=ccw\x00",
		"change@/devices/qeth/0.0.0600\x00ACTION=change\x00",
		"libudev\x00",
		"@\x00=\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			return
		}
		if e.Action == "" || !strings.HasPrefix(e.DevPath, "/") {
			t.Fatalf("accepted %q as %+v", b, e)
		}
		for _, id := range e.BusIDs() {
			if !busid.Valid(id) || !strings.Contains(e.DevPath, id) {
				t.Fatalf("bus id %q of %q", id, e.DevPath)
			}
		}
	})
}
