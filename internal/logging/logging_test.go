package logging

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	l := New(Options{Root: root, Stderr: &stderr, Tag: "apply"})
	l.Infof("0.0.0001: grouped")
	l.Errorf("0.0.0004: layer2 refused")
	l.Debugf("not shown without -v")
	l.Infof("%s", strings.Repeat("x", 2000))
	l.Close()

	got, err := os.ReadFile(kmsg)
	if err != nil {
		t.Fatal(err)
	}
	// A file, not the kernel's /dev/kmsg: the records follow each other
	// (the recorder below counts the opens).
	wantKmsg := "<6>dpm-netconf: apply: 0.0.0001: grouped\n<3>dpm-netconf: apply: error: 0.0.0004: layer2 refused\n<6>dpm-netconf: apply: xxx"
	if !strings.HasPrefix(string(got), wantKmsg) {
		t.Errorf("kmsg = %.120q, want prefix %q", got, wantKmsg)
	}
	want := "dpm-netconf: apply: 0.0.0001: grouped\ndpm-netconf: apply: error: 0.0.0004: layer2 refused\n"
	if !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr = %q, want prefix %q", stderr.String(), want)
	}
}

// recorder is a kernel log that keeps each open's records.
type recorder struct {
	mu     sync.Mutex
	opens  int
	recs   []string
	failAt int // each open's write that fails (0: none)
}

type recFile struct {
	r       *recorder
	written int // records through this open
	failAt  int // the write that fails (0: none)
}

func (f *recFile) Write(b []byte) (int, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.written++
	if f.written > kmsgBurst {
		return 0, fmt.Errorf("record %d through one open: the kernel would drop it", f.written)
	}
	if f.written == f.failAt {
		return 0, errors.New("refused")
	}
	f.r.recs = append(f.r.recs, string(b))
	return len(b), nil
}
func (f *recFile) Close() error { return nil }

func (r *recorder) open() (io.WriteCloser, error) {
	r.mu.Lock()
	r.opens++
	r.mu.Unlock()
	return &recFile{r: r, failAt: r.failAt}, nil
}

// TestLoggerRecordsPerOpen: at most the kernel's burst of records goes
// through one open of /dev/kmsg, then it is opened again; after a failed
// write too.
func TestLoggerRecordsPerOpen(t *testing.T) {
	for _, tc := range []struct {
		name          string
		lines, failAt int
		opens, recs   int
	}{
		{"one line", 1, 0, 1, 1},
		{"the burst", kmsgBurst, 0, 1, kmsgBurst},
		{"one more than the burst", kmsgBurst + 1, 0, 2, kmsgBurst + 1},
		{"25 lines (12 NICs)", 25, 0, 3, 25},
		{"a failed write opens again", 3, 2, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{failAt: tc.failAt}
			l := New(Options{Kmsg: r.open, Tag: "apply"})
			for i := range tc.lines {
				l.Infof("line %d", i)
			}
			l.Close()
			if r.opens != tc.opens || len(r.recs) != tc.recs {
				t.Errorf("%d opens, %d records; want %d, %d", r.opens, len(r.recs), tc.opens, tc.recs)
			}
		})
	}
	r := &recorder{}
	l := New(Options{Kmsg: r.open, Tag: "setmac"})
	l.Infof("a\nb")
	l.Errorf("c")
	want := []string{"<6>dpm-netconf: setmac: a\n", "<6>dpm-netconf: setmac: b\n", "<3>dpm-netconf: setmac: error: c\n"}
	if r.opens != 1 || strings.Join(r.recs, "") != strings.Join(want, "") {
		t.Errorf("%d opens, records %q; want 1 open, %q", r.opens, r.recs, want)
	}
	long := New(Options{Kmsg: r.open})
	long.Infof("%s", strings.Repeat("x", 2000))
	if last := r.recs[len(r.recs)-1]; len(last) > kmsgMax+4 {
		t.Errorf("long record not cut: %d bytes", len(last))
	}
}

func TestLoggerUnderJournalSkipsKmsg(t *testing.T) {
	r := &recorder{}
	var stderr bytes.Buffer
	l := New(Options{Kmsg: r.open, Stderr: &stderr, Journal: true})
	l.Infof("x")
	if r.opens != 0 || stderr.String() != "dpm-netconf: x\n" {
		t.Errorf("under the journal: %d kmsg opens, stderr %q", r.opens, stderr.String())
	}
}

func TestUnderJournal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	t.Setenv("JOURNAL_STREAM", "")
	if UnderJournal(f) {
		t.Error("no JOURNAL_STREAM: under the journal")
	}
	t.Setenv("JOURNAL_STREAM", "1:2")
	if UnderJournal(f) {
		t.Error("JOURNAL_STREAM of another stream: under the journal")
	}
	t.Setenv("JOURNAL_STREAM", journalID(t, fi))
	if !UnderJournal(f) {
		t.Error("JOURNAL_STREAM of this stream: not under the journal")
	}
}

func TestLoggerWithoutKmsgAndVerbose(t *testing.T) {
	var stderr bytes.Buffer
	l := New(Options{Root: t.TempDir(), Stderr: &stderr, Verbose: true})
	l.Debugf("detail %d", 1)
	if stderr.String() != "dpm-netconf: detail 1\n" {
		t.Errorf("stderr = %q", stderr.String())
	}
}
