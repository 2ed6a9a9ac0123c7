// Package sysfs is the narrow window through which dpm-netconf talks to the
// kernel's pseudo-files (/sys, /proc). The real implementation reads and
// writes files below a root directory; tests substitute a model of the
// kernel that gives the kernel's answers (EINVAL, EPERM, ...) to writes.
package sysfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// FS is the kernel's file interface. Paths are absolute ("/sys/bus/...") and
// may contain ".." after a symbolic link, which the kernel resolves
// physically (e.g. "/sys/bus/ccw/devices/0.0.0001/../chpids").
type FS interface {
	// ReadFile returns a file's contents.
	ReadFile(name string) ([]byte, error)
	// WriteFile writes data with one write(2) to an existing file, as sysfs
	// attributes expect, and returns the kernel's errno.
	WriteFile(name string, data []byte) error
	// ReadDir lists the names in a directory.
	ReadDir(name string) ([]string, error)
	// Exists reports whether a path exists.
	Exists(name string) bool
	// ReadLink returns the target of a symbolic link (a device's "driver"
	// or "group_device" link), as the kernel wrote it (relative).
	ReadLink(name string) (string, error)
}

// Root is the system's files below a root directory: "/" on a live system,
// a prepared tree in tests (like the old scripts' ROOT_DIR).
type Root string

// path joins without cleaning, so ".." keeps its physical meaning.
func (r Root) path(name string) string {
	if r == "" || r == "/" {
		return name
	}
	return strings.TrimSuffix(string(r), "/") + name
}

// ReadFile implements FS by open, read until the end, close. A pseudo-file
// has no size to stat for, and on a slow CPU (an emulator, a busy boot)
// every system call counts: os.ReadFile makes six for a sysfs attribute
// (open, two fstat, two reads, close), this three, and no os.File. A sysfs
// attribute is one show() into a page (fs/sysfs/file.c), so one read that
// leaves room in the buffer has it all; below /proc (seq_files such as
// cio_ignore, which may come in pieces) it reads until read says the end.
func (r Root) ReadFile(name string) ([]byte, error) {
	oneShow := strings.HasPrefix(name, "/sys/")
	p := r.path(name)
	fd, err := open(p, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	// The page is a reused one and the answer a copy of what it holds: a
	// process that never collects garbage takes a page fault (about 50 µs
	// under QEMU TCG) for every fresh page it allocates.
	page := pages.Get().(*[]byte)
	defer pages.Put(page)
	buf := (*page)[:0:pageSize]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, &fs.PathError{Op: "read", Path: p, Err: err}
		case n == 0:
			return bytes.Clone(buf), nil
		}
		buf = buf[:len(buf)+n]
		if oneShow && len(buf) < cap(buf) {
			return bytes.Clone(buf), nil
		}
	}
}

// open opens p (close-on-exec), again when a signal interrupted it.
func open(p string, flags int) (int, error) {
	for {
		fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return -1, &fs.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
}

// pageSize is the size of the reused read buffers: one page holds a sysfs
// attribute, and a folder's names in a few getdents calls.
const pageSize = 4096

var pages = sync.Pool{New: func() any { b := make([]byte, pageSize); return &b }}

// WriteFile implements FS.
func (r Root) WriteFile(name string, data []byte) error {
	f, err := os.OpenFile(r.path(name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// ReadDir implements FS: the names, sorted, by open, getdents until the
// end, close (os.ReadDir adds an fstat and an os.File).
func (r Root) ReadDir(name string) ([]string, error) {
	p := r.path(name)
	fd, err := open(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var names []string
	page := pages.Get().(*[]byte)
	defer pages.Put(page)
	buf := *page
	for {
		n, err := unix.Getdents(fd, buf)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return names, &fs.PathError{Op: "readdirent", Path: p, Err: err}
		case n <= 0:
			slices.Sort(names)
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// Exists implements FS.
func (r Root) Exists(name string) bool {
	_, err := os.Stat(r.path(name))
	return err == nil
}

// ReadLink implements FS.
func (r Root) ReadLink(name string) (string, error) { return os.Readlink(r.path(name)) }

// ReadString returns a file's contents without the trailing newline.
func ReadString(f FS, name string) (string, error) {
	b, err := f.ReadFile(name)
	return strings.TrimSpace(string(b)), err
}

// WriteString writes s to an attribute.
func WriteString(f FS, name, s string) error { return f.WriteFile(name, []byte(s)) }

// IsNotExist reports whether err means a file is absent.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
