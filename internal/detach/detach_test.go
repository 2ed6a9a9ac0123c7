package detach

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary is its own helper, as dpm-netconf is.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == Command {
		os.Exit(Child(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func writer(t *testing.T) (Writer, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "dev/kmsg"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return Writer{Exe: exe, Argv0: "dpm-netconf", Root: root}, root
}

func TestWriteAnswers(t *testing.T) {
	w, root := writer(t)
	file := filepath.Join(root, "attr")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), file, "1"); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "1" {
		t.Errorf("file holds %q", b)
	}
	// The kernel's errno comes back as an errno, for errors.Is.
	err := w.Write(context.Background(), root, "1")
	if !errors.Is(err, unix.EISDIR) {
		t.Errorf("write to a directory: %v, want EISDIR", err)
	}
	err = w.Write(context.Background(), filepath.Join(root, "absent"), "1")
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("write to a missing file: %v, want ENOENT", err)
	}
}

// A write that blocks (here: opening a FIFO nobody reads, as an online
// blocks in ccw_device_set_online) returns control at the deadline; the
// helper goes on, finishes when the kernel lets it, and logs its outcome
// to the kernel log, since nobody waits for its answer any more.
func TestWriteOutlivesDeadline(t *testing.T) {
	w, root := writer(t)
	fifo := filepath.Join(root, "online")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// The FIFO has no reader until Write has returned: Write can only
	// return by the deadline, never by the write finishing.
	err := w.Write(ctx, fifo, "1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write = %v, want the deadline", err)
	}
	// Let the blocked write through, as the adapter finally answering.
	r, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 8)
	n, _ := r.Read(buf)
	if string(buf[:n]) != "1" {
		t.Errorf("the helper wrote %q", buf[:n])
	}
	kmsg := filepath.Join(root, "dev/kmsg")
	for deadline := time.Now().Add(5 * time.Second); ; {
		b, _ := os.ReadFile(kmsg)
		if strings.Contains(string(b), "dpm-netconf: write: write \"1\" to "+fifo+" finished after") && strings.Contains(string(b), "after dpm-netconf's deadline: ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel log: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChildUsage(t *testing.T) {
	if code := Child([]string{"x"}); code != 2 {
		t.Errorf("Child with one argument: %d", code)
	}
}

func TestDecode(t *testing.T) {
	for in, want := range map[string]string{
		"ok":         "",
		"errno 22":   "invalid argument",
		"error boom": "boom",
		"":           "the write helper ended without an answer",
		"what":       `the write helper answered "what"`,
	} {
		err := decode(in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("decode(%q) = %q, want %q", in, got, want)
		}
	}
}
