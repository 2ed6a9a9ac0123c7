package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	const events = `{"Action":"run","Package":"example.com/p","Test":"TestA"}
{"Action":"output","Package":"example.com/p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"example.com/p","Test":"TestA","Output":"    a_test.go:12: no emulator: hercules not on PATH; run: make vmtest-osa\n"}
{"Action":"output","Package":"example.com/p","Test":"TestA","Output":"--- SKIP: TestA (0.00s)\n"}
{"Action":"skip","Package":"example.com/p","Test":"TestA"}
{"Action":"output","Package":"example.com/p","Test":"TestA/sub","Output":"    a_test.go:20: skipped with its parent\n"}
{"Action":"skip","Package":"example.com/p","Test":"TestA/sub"}
{"Action":"output","Package":"example.com/p","Test":"TestB","Output":"    b_test.go:3: needs root\n"}
{"Action":"skip","Package":"example.com/p","Test":"TestB"}
{"Action":"pass","Package":"example.com/p","Test":"TestC"}
{"Action":"output","Package":"example.com/p","Test":"TestD","Output":"    d_test.go:3: not in the guest; runs in: make vmtest\n"}
{"Action":"skip","Package":"example.com/p","Test":"TestD"}
not json: a build line
`
	got, err := read(strings.NewReader(events), "unit")
	if err != nil {
		t.Fatal(err)
	}
	want := []skipped{
		{run: "unit", test: "example.com/p.TestA", why: "no emulator: hercules not on PATH", how: "make vmtest-osa"},
		{run: "unit", test: "example.com/p.TestB", why: "needs root", how: "see the test's message"},
		{run: "unit", test: "example.com/p.TestD", why: "not in the guest", how: "make vmtest", elsewhere: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	var b bytes.Buffer
	writeTable(&b, got)
	if !strings.Contains(b.String(), "2 tests did not run") || !strings.Contains(b.String(), "make vmtest-osa") ||
		!strings.Contains(b.String(), "(1 tests: unit skipped them; they run in make vmtest)") {
		t.Errorf("table:\n%s", b.String())
	}
	b.Reset()
	writeTable(&b, nil)
	if !strings.Contains(b.String(), "every test ran") {
		t.Errorf("empty table: %s", b.String())
	}
}
