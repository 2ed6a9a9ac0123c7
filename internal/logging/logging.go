// Package logging writes dpm-netconf's log lines to the kernel log
// (/dev/kmsg, so they land in dmesg, on the console of an early-userspace
// boot and in the journal) and to stderr.
//
// /dev/kmsg limits each open file to a burst of 10 records per 5 s unless
// the kernel command line has printk.devkmsg=on (kernel/printk/printk.c,
// devkmsg_write): a boot with 12 NICs would lose most of its summary
// lines. The Logger writes at most that burst through one open file and
// then opens /dev/kmsg again, so no line meets the limit (dracut's own
// logging opens it for each line; an open and a close cost more than the
// write on an emulated CPU).
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/trace"
)

// Syslog priorities used in /dev/kmsg records.
const (
	prioErr  = 3
	prioInfo = 6
	prioDbg  = 7
)

// kmsgMax keeps a record under the kernel's per-record limit
// (LOG_LINE_MAX), which would otherwise reject the write with EINVAL.
const kmsgMax = 900

// kmsgBurst is how many records the kernel takes from one open file of
// /dev/kmsg in its rate limit's interval (DEFAULT_RATELIMIT_BURST, 10 in
// 5 s; ratelimit_default_init in devkmsg_open).
const kmsgBurst = 10

// Options say where a Logger writes.
type Options struct {
	// Root holds dev/kmsg ("/" live).
	Root string
	// Stderr gets every line too (nil: nowhere).
	Stderr io.Writer
	// Verbose adds debug lines.
	Verbose bool
	// Tag names the command in every line ("apply", "setmac"), so the
	// unit's work and the udev rule's are told apart in one log.
	Tag string
	// Kmsg opens the kernel log for one record; nil opens <Root>/dev/kmsg.
	Kmsg func() (io.WriteCloser, error)
	// Journal: stderr is already the journal (systemd's JOURNAL_STREAM),
	// which also reads the kernel log; writing both would log every line
	// twice.
	Journal bool
}

// Logger is safe for concurrent use; each call writes whole lines. Close
// closes its kernel log file.
type Logger struct {
	mu     sync.Mutex
	o      Options
	prefix string
	kmsg   io.WriteCloser // open, with room for kmsgBurst-records more
	recs   int
}

// New returns a Logger for the options.
func New(o Options) *Logger {
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Kmsg == nil {
		name := strings.TrimSuffix(o.Root, "/") + "/dev/kmsg"
		o.Kmsg = func() (io.WriteCloser, error) { return os.OpenFile(name, os.O_WRONLY, 0) }
	}
	prefix := "dpm-netconf: "
	if o.Tag != "" {
		prefix += o.Tag + ": "
	}
	return &Logger{o: o, prefix: prefix}
}

// UnderJournal reports whether stderr is systemd's journal stream: systemd
// sets JOURNAL_STREAM to the device and inode of the stream it connected.
func UnderJournal(stderr *os.File) bool {
	v := os.Getenv("JOURNAL_STREAM")
	if v == "" || stderr == nil {
		return false
	}
	fi, err := stderr.Stat()
	if err != nil {
		return false
	}
	return journalStreamMatches(v, fi)
}

// Discard is a Logger that writes nowhere (benchmarks).
func Discard() *Logger {
	return &Logger{o: Options{Stderr: io.Discard, Kmsg: func() (io.WriteCloser, error) { return nil, os.ErrNotExist }}}
}

// Infof logs a step.
func (l *Logger) Infof(format string, args ...any) { l.log(prioInfo, format, args...) }

// Errorf logs a failure.
func (l *Logger) Errorf(format string, args ...any) { l.log(prioErr, format, args...) }

// Debugf logs only with -v.
func (l *Logger) Debugf(format string, args ...any) {
	if l.o.Verbose {
		l.log(prioDbg, format, args...)
	}
}

func (l *Logger) log(prio int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(msg, "\n") {
		text := l.prefix
		if prio == prioErr {
			text += "error: "
		}
		text += line
		trace.Mark("log line {")
		fmt.Fprintf(l.o.Stderr, "%s\n", text)
		trace.Mark("log line: stderr written")
		if l.o.Journal {
			continue
		}
		rec := fmt.Sprintf("<%d>%s", prio, text)
		if len(rec) > kmsgMax {
			rec = rec[:kmsgMax] + "..."
		}
		l.writeKmsg(rec + "\n")
		trace.Mark("} log line: kmsg written")
	}
}

// writeKmsg writes one record, opening /dev/kmsg again after kmsgBurst
// records. A failure here must not stop the boot (stderr still has the
// line); a file that failed a write is not used again.
func (l *Logger) writeKmsg(rec string) {
	if l.kmsg != nil && l.recs >= kmsgBurst {
		l.kmsg.Close()
		l.kmsg = nil
	}
	if l.kmsg == nil {
		f, err := l.o.Kmsg()
		if err != nil {
			return
		}
		l.kmsg, l.recs = f, 0
	}
	l.recs++
	if _, err := io.WriteString(l.kmsg, rec); err != nil { // one write is one record
		l.kmsg.Close()
		l.kmsg = nil
	}
}

// Close closes the kernel log file, if one is open.
func (l *Logger) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kmsg != nil {
		l.kmsg.Close()
		l.kmsg = nil
	}
}
