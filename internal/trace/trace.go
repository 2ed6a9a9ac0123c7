// Package trace records when the parts of a run happen, to find where a
// run's time goes (docs/performance.md). It is off unless the environment
// names a file in DPM_NETCONF_TRACE: then every Mark is kept in memory with
// its CLOCK_MONOTONIC time (the clock of other processes' stamps, so a
// caller's exec and the helper process's marks line up), and Write puts
// them in that file in one write when the process is done, so that tracing
// costs the run only the marks themselves. The write helper process writes
// its own marks to the same file name with ".helper" appended.
package trace

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Env names the environment variable that turns tracing on.
const Env = "DPM_NETCONF_TRACE"

var (
	file = os.Getenv(Env)
	// start is when this package was initialised: after the Go runtime's
	// start and the standard packages' initialisation, before this
	// program's own packages and its third-party ones.
	start = now()
	mu    sync.Mutex
	marks []mark
)

type mark struct {
	ns   int64
	what string
}

func now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// On reports whether marks are kept: callers that build a mark's text
// check it first.
func On() bool { return file != "" }

// Mark records that what happens now.
func Mark(what string) {
	if file == "" {
		return
	}
	t := now()
	mu.Lock()
	marks = append(marks, mark{t, what})
	mu.Unlock()
}

// Markf records a formatted mark.
func Markf(format string, args ...any) {
	if file == "" {
		return
	}
	Mark(fmt.Sprintf(format, args...))
}

// Span marks what's start and returns the func that marks its end.
func Span(what string) func() {
	if file == "" {
		return func() {}
	}
	Mark(what + " {")
	return func() { Mark("} " + what) }
}

// Spanf is Span with a formatted name.
func Spanf(format string, args ...any) func() {
	if file == "" {
		return func() {}
	}
	return Span(fmt.Sprintf(format, args...))
}

// Write writes the marks to the trace file, with suffix appended to its
// name ("" for the main process); nothing when tracing is off.
func Write(suffix string) error {
	if file == "" {
		return nil
	}
	Mark("trace written; " + threads() + "; " + faults())
	mu.Lock()
	defer mu.Unlock()
	return os.WriteFile(file+suffix, []byte(format(start, marks)), 0o644)
}

// threads says how many threads the process has (each costs a clone and
// a stack: the Go runtime starts one when a goroutine blocks in a system
// call for long).
func threads() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "threads: " + err.Error()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Threads:") {
			return "threads: " + strings.TrimSpace(strings.TrimPrefix(l, "Threads:"))
		}
	}
	return "threads: ?"
}

// faults says how many page faults the process has taken (a fresh page of
// heap is one: without a garbage collection every allocation touches new
// memory) and its resident memory.
func faults() string {
	s := "minor faults: ?"
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		// After the command's parenthesis: state is field 3, minflt field 10.
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			if f := strings.Fields(string(b)[i+1:]); len(f) > 7 {
				s = "minor faults: " + f[7]
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				s += ", peak resident " + strings.Join(strings.Fields(strings.TrimPrefix(l, "VmHWM:")), " ")
			}
		}
	}
	return s
}

// format gives one line per mark: its CLOCK_MONOTONIC time in seconds, the
// milliseconds since the package's start and since the mark before, and
// the mark.
func format(start int64, ms []mark) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%.6f %9.3f %8.3f %s\n", float64(start)/1e9, 0.0, 0.0, "trace package initialised (pid "+fmt.Sprint(os.Getpid())+")")
	prev := start
	for _, m := range ms {
		fmt.Fprintf(&b, "%.6f %9.3f %8.3f %s\n", float64(m.ns)/1e9, float64(m.ns-start)/1e6, float64(m.ns-prev)/1e6, m.what)
		prev = m.ns
	}
	return b.String()
}
