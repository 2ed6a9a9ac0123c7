package logging

import (
	"bytes"
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

	got, err := os.ReadFile(kmsg)
	if err != nil {
		t.Fatal(err)
	}
	// A file, not the kernel's /dev/kmsg: each open starts at offset 0, so
	// the records overwrite each other; the opener below counts them.
	if !strings.HasPrefix(string(got), "<6>dpm-netconf: apply: xxx") {
		t.Errorf("kmsg = %.60q", got)
	}
	want := "dpm-netconf: apply: 0.0.0001: grouped\ndpm-netconf: apply: error: 0.0.0004: layer2 refused\n"
	if !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr = %q, want prefix %q", stderr.String(), want)
	}
}

// recorder is a kernel log that keeps each open's records.
type recorder struct {
	mu    sync.Mutex
	opens int
	recs  []string
}

type recFile struct {
	r *recorder
}

func (f recFile) Write(b []byte) (int, error) {
	f.r.mu.Lock()
	f.r.recs = append(f.r.recs, string(b))
	f.r.mu.Unlock()
	return len(b), nil
}
func (f recFile) Close() error { return nil }

func (r *recorder) open() (io.WriteCloser, error) {
	r.mu.Lock()
	r.opens++
	r.mu.Unlock()
	return recFile{r}, nil
}

func TestLoggerOneRecordPerOpen(t *testing.T) {
	r := &recorder{}
	l := New(Options{Kmsg: r.open, Tag: "setmac"})
	l.Infof("a\nb")
	l.Errorf("c")
	want := []string{"<6>dpm-netconf: setmac: a\n", "<6>dpm-netconf: setmac: b\n", "<3>dpm-netconf: setmac: error: c\n"}
	if r.opens != 3 || strings.Join(r.recs, "") != strings.Join(want, "") {
		t.Errorf("%d opens, records %q; want 3 opens, %q", r.opens, r.recs, want)
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
