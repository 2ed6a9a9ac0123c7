package sysfs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRoot(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sys/devices/css0/0.0.0000/0.0.0001"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sys/devices/css0/0.0.0000/chpids"), []byte("0a 00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sys/bus/ccw/devices"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../devices/css0/0.0.0000/0.0.0001", filepath.Join(dir, "sys/bus/ccw/devices/0.0.0001")); err != nil {
		t.Fatal(err)
	}
	r := Root(dir + "/")
	// ".." after a symlink is resolved physically, as the kernel does.
	if got, err := ReadString(r, "/sys/bus/ccw/devices/0.0.0001/../chpids"); err != nil || got != "0a 00" {
		t.Errorf("ReadString through ..: %q, %v", got, err)
	}
	if !r.Exists("/sys/bus/ccw/devices/0.0.0001") || r.Exists("/sys/bus/ccw/devices/0.0.0002") {
		t.Error("Exists")
	}
	if names, err := r.ReadDir("/sys/devices/css0/0.0.0000"); err != nil || !slices.Equal(names, []string{"0.0.0001", "chpids"}) {
		t.Errorf("ReadDir = %v, %v", names, err)
	}
	// Attributes are written, never created.
	err := WriteString(r, "/sys/bus/ccw/devices/0.0.0001/online", "1")
	if !IsNotExist(err) || !errors.Is(err, unix.ENOENT) {
		t.Errorf("write to a missing attribute: %v", err)
	}
	if err := WriteString(r, "/sys/devices/css0/0.0.0000/chpids", "x"); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadString(r, "/sys/devices/css0/0.0.0000/chpids"); got != "xa 00" {
		t.Errorf("write must not truncate (sysfs semantics are the kernel's): %q", got)
	}
}
