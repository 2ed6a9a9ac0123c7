package kernelmodel

import (
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The /dev/kmsg rate limit of kernel/printk/printk.c devkmsg_open:
// ratelimit_default_init (DEFAULT_RATELIMIT_INTERVAL 5 s, _BURST 10) with
// RATELIMIT_MSG_ON_RELEASE, so what was dropped is reported on close.
const (
	kmsgInterval  = 5 * time.Second
	kmsgBurst     = 10
	kmsgRecordMax = 1024 // PRINTKRB_RECORD_MAX
	kmsgComm      = "dpm-netconf"
)

// OpenKmsg opens /dev/kmsg for writing. Each Write is one record; a "<N>"
// priority prefix and the trailing newline are not part of it. Each open
// file has its own rate limit unless DevkmsgOn: beyond 10 records in 5 s,
// records are dropped while Write still succeeds, and Close adds
// "dpm-netconf: N output lines suppressed due to ratelimiting".
func (m *Model) OpenKmsg() (io.WriteCloser, error) {
	return &kmsgFile{m: m}, nil
}

// KernelLog returns the records that reached the kernel log, in order.
func (m *Model) KernelLog() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.klog...)
}

type kmsgFile struct {
	m       *Model
	mu      sync.Mutex
	begin   time.Time
	printed int
	missed  int
	closed  bool
}

// allow is ___ratelimit (lib/ratelimit.c).
func (f *kmsgFile) allow(now time.Time) bool {
	if f.begin.IsZero() || now.Sub(f.begin) > kmsgInterval {
		f.begin, f.printed = now, 0
	}
	if f.printed < kmsgBurst {
		f.printed++
		return true
	}
	f.missed++
	return false
}

// Write is devkmsg_write.
func (f *kmsgFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	if len(p) > kmsgRecordMax {
		return 0, unix.EINVAL
	}
	if !f.m.DevkmsgOn && !f.allow(time.Now()) {
		return len(p), nil
	}
	line := string(p)
	// "Extract and skip the syslog prefix <[0-9]*>."
	if strings.HasPrefix(line, "<") {
		if end := strings.IndexByte(line, '>'); end > 0 {
			if _, err := strconv.ParseUint(line[1:end], 10, 32); err == nil || end == 1 {
				line = line[end+1:]
			}
		}
	}
	line = strings.TrimSuffix(line, "\n")
	f.m.mu.Lock()
	f.m.klog = append(f.m.klog, line)
	f.m.mu.Unlock()
	return len(p), nil
}

// Close is devkmsg_release: ratelimit_state_exit reports what was dropped.
func (f *kmsgFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	f.closed = true
	if f.missed > 0 {
		f.m.mu.Lock()
		f.m.klog = append(f.m.klog, kmsgComm+": "+strconv.Itoa(f.missed)+" output lines suppressed due to ratelimiting")
		f.m.mu.Unlock()
	}
	return nil
}
