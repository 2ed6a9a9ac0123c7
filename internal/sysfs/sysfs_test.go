package sysfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// ReadFile reads what os.ReadFile reads, with the same errors, through its
// own open/read/close: empty, one page, more than a page (a long
// cio_ignore list), a directory, nothing.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	r := Root(dir)
	for _, size := range []int{0, 1, 4095, 4096, 4097, 3*4096 + 17} {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		name := filepath.Join("/", "f"+strconv.Itoa(size))
		if err := os.WriteFile(dir+name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadFile(name)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("ReadFile of %d bytes: %d bytes, %v", size, len(got), err)
		}
	}
	_, err := r.ReadFile("/absent")
	var pe *fs.PathError
	if !IsNotExist(err) || !errors.As(err, &pe) || pe.Op != "open" || pe.Path != dir+"/absent" {
		t.Errorf("ReadFile of a missing file: %#v", err)
	}
	if _, err := r.ReadFile("/"); !errors.Is(err, unix.EISDIR) {
		t.Errorf("ReadFile of a directory: %v, want EISDIR", err)
	}
	// Below /sys/ a read that leaves room is the whole attribute; one
	// that fills the buffer is read on.
	if err := os.MkdirAll(dir+"/sys", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 2, 4095, 4096, 4097, 9000} {
		b := bytes.Repeat([]byte{'x'}, size)
		name := "/sys/attr" + strconv.Itoa(size)
		if err := os.WriteFile(dir+name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := r.ReadFile(name); err != nil || !bytes.Equal(got, b) {
			t.Errorf("ReadFile of a %d-byte file below /sys: %d bytes, %v", size, len(got), err)
		}
	}
}

// ReadDir lists what os.ReadDir lists, sorted, with the same errors.
func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	r := Root(dir)
	var want []string
	for i := range 300 { // more than one getdents buffer
		n := "e" + strconv.Itoa(i)
		want = append(want, n)
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)
	for _, tc := range []struct {
		name string
		want []string
		err  error
	}{
		{"/", want, nil},
		{"/e1", nil, unix.ENOTDIR},
		{"/absent", nil, fs.ErrNotExist},
	} {
		got, err := r.ReadDir(tc.name)
		if !slices.Equal(got, tc.want) || (tc.err == nil) != (err == nil) || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("ReadDir(%q) = %d names, %v; want %d names, %v", tc.name, len(got), err, len(tc.want), tc.err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadDir("/empty"); len(got) != 0 || err != nil {
		t.Errorf("ReadDir of an empty folder = %v, %v", got, err)
	}
}
