package dpmpackage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The manual page renders with man -l, without a groff warning, and has
// the sections an admin looks for.
func TestManualPageRenders(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("man is not installed (make deps installs man-db)")
		}
		t.Skip("man is not installed; run: make deps, then make package-test")
	}
	pages, _ := filepath.Glob("../man/*.[1-8]")
	if len(pages) == 0 {
		t.Fatal("no manual page in dist/man")
	}
	for _, page := range pages {
		cmd := exec.Command("man", "--warnings", "-l", "-E", "UTF-8", page)
		cmd.Env = []string{"MANWIDTH=80", "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"} // plain text: no MAN_KEEP_FORMATTING
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("man -l %s: %v\n%s", page, err, stderr.String())
		}
		if stderr.Len() > 0 {
			t.Errorf("man -l %s warns:\n%s", page, stderr.String())
		}
		for _, section := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMAND-LINE FORMAT", "COMMANDS", "OPTIONS", "KERNEL PARAMETERS", "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"} {
			if !strings.Contains(stdout.String(), "\n"+section+"\n") {
				t.Errorf("%s has no %s section", page, section)
			}
		}
	}
}
