package busid

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ID
		ok   bool
	}{
		{"0.0.1234", ID{0, 0, 0x1234}, true},
		{"0.1.fffe", ID{0, 1, 0xfffe}, true},
		{"fe.0.0001", ID{0xfe, 0, 1}, true},
		{"0.0.123", ID{}, false},
		{"0.0.12345", ID{}, false},
		{"0.0.ABCD", ID{}, false},
		{"0.0", ID{}, false},
		{"0..1234", ID{}, false},
		{"100.0.1234", ID{}, false},
		{"0.0.+123", ID{}, false},
		{"0.0.1234.5", ID{}, false},
		{"virtio3", ID{}, false},
		{"00.0.1234", ID{}, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("%q round trip: %s", tc.in, got)
		}
	}
	a, _ := Parse("0.0.ffff")
	b, _ := Parse("0.1.0000")
	if a.Packed() >= b.Packed() {
		t.Errorf("0.0.ffff packs after 0.1.0000")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0.0.1234", "fe.0.0001", "0.0.ABCD", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err == nil && id.String() != s {
			t.Errorf("Parse(%q) = %v: not the same text", s, id)
		}
	})
}
