package ccw

import (
	"strings"
	"testing"
)

func TestIgnoreList(t *testing.T) {
	l, err := ParseIgnoreList("0.0.0000-0.0.0005\n0.0.0100\n0.1.0000-0.1.ffff\n")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{
		"0.0.0000": true, "0.0.0005": true, "0.0.0006": false, "0.0.0100": true, "0.0.0101": false,
		"0.1.0600": true, "0.2.0000": false, "bogus": false,
	} {
		if got := l.Contains(id); got != want {
			t.Errorf("Contains(%s) = %v, want %v", id, got, want)
		}
	}
	if l, err := ParseIgnoreList(""); err != nil || l.Contains("0.0.0000") {
		t.Errorf("empty list: %v %v", l, err)
	}
	for _, bad := range []string{"0.0.0005-0.0.0001", "0.0", "0.0.10000", "x.0.0000", "0.0.0001-", "0..0001"} {
		if _, err := ParseIgnoreList("0.0.0000\n" + bad + "\n"); err == nil || !strings.Contains(err.Error(), "line 2 ") {
			t.Errorf("ParseIgnoreList(%q) = %v, want an error naming line 2", bad, err)
		}
	}
}

func FuzzParseIgnoreList(f *testing.F) {
	for _, s := range []string{"0.0.0000-0.0.ffff\n", "0.0.0001\n0.0.0003-0.0.0004\n", "", "0.0.0001-0.0.0000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseIgnoreList(s)
		if err != nil {
			return
		}
		for _, r := range l {
			if r.from > r.to {
				t.Fatalf("range %v ends before it starts", r)
			}
		}
		_ = l.Contains("0.0.0001")
	})
}
