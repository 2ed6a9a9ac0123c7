package detach

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary is its own helper, as dpm-netconf is; with
// DPM_DETACH_CALLER it is also a caller that exits while its write blocks.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == Command {
		os.Exit(Child(os.Args[2:]))
	}
	if spec := os.Getenv("DPM_DETACH_CALLER"); spec != "" {
		os.Exit(caller(spec))
	}
	os.Exit(m.Run())
}

// caller writes "1" to FILE through a Writer with a 200 ms deadline and
// exits without Close, as dpm-netconf does at its deadline. spec: ROOT FILE.
func caller(spec string) int {
	root, file, _ := strings.Cut(spec, " ")
	exe, _ := os.Executable()
	w := &Writer{Exe: exe, Argv0: "dpm-netconf", Root: root}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := w.Write(ctx, file, "1"); !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(os.Stderr, "Write = %v, want the deadline\n", err)
		return 1
	}
	return 0
}

func writer(t *testing.T) (*Writer, string) {
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
	w := &Writer{Exe: exe, Argv0: "dpm-netconf", Root: root}
	t.Cleanup(w.Close)
	return w, root
}

// mkfifo makes root/online a FIFO nobody reads: a write to it blocks, as
// an online blocks in ccw_device_set_online, until releaseFIFO.
func mkfifo(t *testing.T, root string) string {
	t.Helper()
	fifo := filepath.Join(root, "online")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	return fifo
}

func emptyFile(t *testing.T, name string) string {
	t.Helper()
	if err := os.WriteFile(name, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestWriteAnswers(t *testing.T) {
	w, root := writer(t)
	file := emptyFile(t, filepath.Join(root, "attr"))
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
	if w.starts != 1 {
		t.Errorf("%d helper processes for three writes, want 1", w.starts)
	}
}

// One helper takes every write of a run, concurrently: a write blocked in
// the kernel (a FIFO nobody reads) holds up none of the others.
func TestOneHelperWritesConcurrently(t *testing.T) {
	w, root := writer(t)
	fifo := mkfifo(t, root)
	blocked := make(chan error, 1)
	go func() { blocked <- w.Write(context.Background(), fifo, "1") }()
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			file := emptyFile(t, filepath.Join(root, fmt.Sprintf("attr%d", i)))
			if err := w.Write(context.Background(), file, fmt.Sprint(i)); err != nil {
				t.Errorf("write %d: %v", i, err)
			}
			if b, _ := os.ReadFile(file); string(b) != fmt.Sprint(i) {
				t.Errorf("attr%d holds %q", i, b)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-blocked:
		t.Fatalf("the blocked write returned %v with nobody reading", err)
	default:
	}
	r, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := <-blocked; err != nil {
		t.Errorf("the blocked write, let through: %v", err)
	}
	if w.starts != 1 {
		t.Errorf("%d helper processes for 13 writes, want 1", w.starts)
	}
}

// waitKmsg waits for the kernel log below root to hold want.
func waitKmsg(t *testing.T, root, want string) {
	t.Helper()
	kmsg := filepath.Join(root, "dev/kmsg")
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(kmsg)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel log %q, want %q", b, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// releaseFIFO lets a blocked write through, as the adapter finally
// answering, and returns what was written.
func releaseFIFO(t *testing.T, fifo string) string {
	t.Helper()
	r, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 8)
	n, _ := r.Read(buf)
	return string(buf[:n])
}

// A write that blocks (here: opening a FIFO nobody reads, as an online
// blocks in ccw_device_set_online) returns control at the deadline; the
// helper goes on, finishes when the kernel lets it, and its outcome goes
// to the kernel log, since nobody waits for its answer any more.
func TestWriteOutlivesDeadline(t *testing.T) {
	w, root := writer(t)
	fifo := mkfifo(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// The FIFO has no reader until Write has returned: Write can only
	// return by the deadline, never by the write finishing.
	err := w.Write(ctx, fifo, "1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write = %v, want the deadline", err)
	}
	if got := releaseFIFO(t, fifo); got != "1" {
		t.Errorf("the helper wrote %q", got)
	}
	waitKmsg(t, root, "dpm-netconf: write: write \"1\" to "+fifo+" finished after")
	waitKmsg(t, root, "after dpm-netconf's deadline: ok")
}

// The caller exits at its deadline (without Close, as at a deadline): the
// helper finishes the write and logs its outcome itself, then ends.
func TestHelperFinishesAfterCallerExits(t *testing.T) {
	_, root := writer(t)
	fifo := mkfifo(t, root)
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "DPM_DETACH_CALLER="+root+" "+fifo)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("caller: %v\n%s", err, out)
	}
	if got := releaseFIFO(t, fifo); got != "1" {
		t.Errorf("the helper wrote %q", got)
	}
	waitKmsg(t, root, "dpm-netconf: write: write \"1\" to "+fifo+" finished after")
}

// A helper that dies (killed) fails the writes it had, and the next write
// starts another.
func TestHelperDeathFailsItsWritesAndRestarts(t *testing.T) {
	w, root := writer(t)
	fifo := mkfifo(t, root)
	blocked := make(chan error, 1)
	go func() { blocked <- w.Write(context.Background(), fifo, "1") }()
	var h *helper
	for h == nil {
		time.Sleep(10 * time.Millisecond)
		w.mu.Lock()
		h = w.helper
		w.mu.Unlock()
	}
	if err := syscall.Kill(h.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-blocked; err == nil || !strings.Contains(err.Error(), "ended without an answer") {
		t.Errorf("write in a killed helper: %v", err)
	}
	file := emptyFile(t, filepath.Join(root, "attr"))
	if err := w.Write(context.Background(), file, "1"); err != nil {
		t.Errorf("write after the helper died: %v", err)
	}
	if w.starts != 2 {
		t.Errorf("%d helper processes, want 2", w.starts)
	}
}

// Close ends the helper once its writes are done; later writes fail.
func TestCloseEndsHelper(t *testing.T) {
	w, root := writer(t)
	if err := w.Write(context.Background(), emptyFile(t, filepath.Join(root, "a")), "1"); err != nil {
		t.Fatal(err)
	}
	h := w.helper
	w.Close()
	select {
	case <-h.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the helper still runs 10 s after Close")
	}
	if err := w.Write(context.Background(), filepath.Join(root, "a"), "1"); err == nil {
		t.Error("a write after Close worked")
	}
}

func TestChildUsage(t *testing.T) {
	if code := Child([]string{"x", "y"}); code != 2 {
		t.Errorf("Child with two arguments: %d", code)
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

func TestLineRoundTrip(t *testing.T) {
	for _, r := range []request{
		{1, "/sys/bus/ccwgroup/devices/0.0.0600/online", "1"},
		{2, "/sys/bus/ccwgroup/drivers/qeth/group", "0.0.0600,0.0.0601,0.0.0602"},
		{3, "/a b/\"quoted\"", "tab\tnew\nline \\ back"},
		{18446744073709551615, "", ""},
	} {
		line := r.line()
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
			t.Errorf("%+v: not one line: %q", r, line)
		}
		id, file, value, err := parseLine(strings.TrimSuffix(line, "\n"))
		if err != nil || (request{id, file, value}) != r {
			t.Errorf("parseLine(%q) = %d %q %q %v, want %+v", line, id, file, value, err, r)
		}
	}
	for _, bad := range []string{"", "x \"a\" \"b\"", "7 a b", "7 \"a\"", "7 \"a\" b"} {
		id, _, _, err := parseLine(bad)
		if err == nil {
			t.Errorf("parseLine(%q) took it", bad)
		}
		if strings.HasPrefix(bad, "7") && id != 7 {
			t.Errorf("parseLine(%q): id %d, want 7 (to answer it)", bad, id)
		}
	}
}
