// Package logging writes dpm-netconf's log lines to the kernel log
// (/dev/kmsg, so they land in dmesg, on the console of an early-userspace
// boot and in the journal) and to stderr.
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
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

// Logger is safe for concurrent use; each call writes whole lines.
type Logger struct {
	mu      sync.Mutex
	stderr  io.Writer
	kmsg    io.WriteCloser
	verbose bool
}

// New logs to stderr and, when it can be opened for writing, to
// <root>/dev/kmsg.
func New(root string, stderr io.Writer, verbose bool) *Logger {
	l := &Logger{stderr: stderr, verbose: verbose}
	if f, err := os.OpenFile(strings.TrimSuffix(root, "/")+"/dev/kmsg", os.O_WRONLY, 0); err == nil {
		l.kmsg = f
	}
	return l
}

// Discard is a Logger that writes nowhere (benchmarks).
func Discard() *Logger { return &Logger{stderr: io.Discard} }

// Close closes /dev/kmsg.
func (l *Logger) Close() {
	if l.kmsg != nil {
		l.kmsg.Close()
	}
}

// Infof logs a step.
func (l *Logger) Infof(format string, args ...any) { l.log(prioInfo, format, args...) }

// Errorf logs a failure.
func (l *Logger) Errorf(format string, args ...any) { l.log(prioErr, format, args...) }

// Debugf logs only with -v.
func (l *Logger) Debugf(format string, args ...any) {
	if l.verbose {
		l.log(prioDbg, format, args...)
	}
}

func (l *Logger) log(prio int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(msg, "\n") {
		prefix := "dpm-netconf: "
		if prio == prioErr {
			prefix += "error: "
		}
		fmt.Fprintf(l.stderr, "%s%s\n", prefix, line)
		if l.kmsg != nil {
			rec := fmt.Sprintf("<%d>dpm-netconf: %s", prio, line)
			if len(rec) > kmsgMax {
				rec = rec[:kmsgMax] + "..."
			}
			// One write is one record; a failure here must not stop the boot
			// (stderr still has the line).
			_, _ = io.WriteString(l.kmsg, rec+"\n")
		}
	}
}
