package logging

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoggerWritesKmsgRecordsAndStderr(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	kmsg := filepath.Join(root, "dev", "kmsg")
	if err := os.WriteFile(kmsg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	l := New(root, &stderr, false)
	l.Infof("0.0.0001: grouped")
	l.Errorf("0.0.0004: layer2 refused")
	l.Debugf("not shown without -v")
	l.Infof("%s", strings.Repeat("x", 2000))
	l.Close()

	got, err := os.ReadFile(kmsg)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("kmsg has %d records, want 3:\n%s", len(lines), got)
	}
	if lines[0] != "<6>dpm-netconf: 0.0.0001: grouped" || lines[1] != "<3>dpm-netconf: 0.0.0004: layer2 refused" {
		t.Errorf("kmsg records = %q", lines[:2])
	}
	if len(lines[2]) > kmsgMax+3 {
		t.Errorf("long record not cut: %d bytes", len(lines[2]))
	}
	want := "dpm-netconf: 0.0.0001: grouped\ndpm-netconf: error: 0.0.0004: layer2 refused\n"
	if !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr = %q, want prefix %q", stderr.String(), want)
	}
}

func TestLoggerWithoutKmsgAndVerbose(t *testing.T) {
	var stderr bytes.Buffer
	l := New(t.TempDir(), &stderr, true)
	l.Debugf("detail %d", 1)
	l.Close()
	if stderr.String() != "dpm-netconf: detail 1\n" {
		t.Errorf("stderr = %q", stderr.String())
	}
}
