package trace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		name  string
		marks []mark
		want  []string // the lines after the first, without the times' columns
	}{
		{"no marks", nil, nil},
		{"two marks", []mark{{1_500_000, "main"}, {4_000_000, "plan {"}}, []string{"1.500    1.500 main", "4.000    2.500 plan {"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := strings.Split(strings.TrimSuffix(format(0, tc.marks), "\n"), "\n")
			if !strings.Contains(lines[0], "trace package initialised") {
				t.Errorf("first line %q", lines[0])
			}
			if len(lines)-1 != len(tc.want) {
				t.Fatalf("%d lines after the first, want %d:\n%s", len(lines)-1, len(tc.want), strings.Join(lines, "\n"))
			}
			for i, w := range tc.want {
				if !strings.HasSuffix(lines[i+1], w) {
					t.Errorf("line %d = %q, want it to end %q", i+1, lines[i+1], w)
				}
			}
		})
	}
}

// TestOff: without the environment variable nothing is kept or written.
func TestOff(t *testing.T) {
	if On() {
		t.Skipf("%s is set in this environment", Env)
	}
	Mark("x")
	Span("y")()
	if len(marks) != 0 {
		t.Errorf("marks kept while off: %v", marks)
	}
	if err := Write(""); err != nil {
		t.Errorf("Write while off: %v", err)
	}
}

func TestWrite(t *testing.T) {
	old := file
	t.Cleanup(func() { file, marks = old, nil })
	file = filepath.Join(t.TempDir(), "trace")
	Mark("main")
	Spanf("RTM_GETLINK %d", 2)()
	if err := Write(".helper"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file + ".helper")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{" main\n", " RTM_GETLINK 2 {\n", " } RTM_GETLINK 2\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("trace lacks %q:\n%s", want, b)
		}
	}
}
