// Package detach runs the kernel writes that can block for long (a qeth
// online: seconds on a real OSA, more when the adapter's IDX activation is
// slow; a group; cio_settle) in a helper process that outlives dpm-netconf.
//
// Why a process and not a goroutine: ccw_device_set_online waits
// uninterruptibly, so a goroutine stuck in write(2) would hold our exit
// back, and when the process does exit, the kernel interrupts qeth's
// interruptible waits inside the online and aborts it. A child in its own
// session is neither waited for nor killed by our exit: the caller (dracut
// hook, unit, uinit) regains control at the deadline and the online
// finishes.
//
// Why one process per run: starting a static Go binary costs more than the
// write itself on a slow machine (measured on Hyperion: one process per
// write doubled a NIC's time). The helper is started once, on the first
// write or earlier by Start (while the modules load), and runs every write
// it is sent concurrently, each in its own goroutine (a write blocked in
// the kernel holds only its thread). It answers each over a pipe while we
// wait; an answer nobody waits for any more, and every answer after we
// have gone, goes to the kernel log. When we close the request pipe (Close,
// or our exit), it finishes the writes it has and ends.
package detach

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/errno"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/logging"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/trace"
)

// Command is the hidden subcommand the helper process runs.
const Command = "__write"

// Writer sends blocking writes to one helper process per run. Its zero
// value is not usable: set Exe, Argv0 and Root. It is safe for concurrent
// use; Close ends it.
type Writer struct {
	// Exe is the binary to run (os.Executable()); Argv0 its name for
	// busybox-style dispatch (u-root's bb).
	Exe, Argv0 string
	// Root is passed on for the kernel log (<Root>/dev/kmsg).
	Root string

	mu     sync.Mutex
	helper *helper // nil until started, or after the last one ended
	nextID uint64
	closed bool
	starts int // helper processes started, for tests
}

// request and response are the pipe protocol, one line each: the id, then
// Go-quoted strings ("1 \"/sys/.../online\" \"1\"").
type request struct {
	ID          uint64
	File, Value string
}

type response struct {
	ID     uint64
	Answer string // "ok", "errno N" or "error TEXT"
	Took   string
}

func (r request) line() string {
	return fmt.Sprintf("%d %s %s\n", r.ID, strconv.Quote(r.File), strconv.Quote(r.Value))
}

func (r response) line() string {
	return fmt.Sprintf("%d %s %s\n", r.ID, strconv.Quote(r.Answer), strconv.Quote(r.Took))
}

// parseLine reads "ID QUOTED QUOTED". A line whose id reads but whose
// strings do not still gives the id, so that its request can be answered.
func parseLine(line string) (id uint64, a, b string, err error) {
	head, rest, _ := strings.Cut(line, " ")
	if id, err = strconv.ParseUint(head, 10, 64); err != nil {
		return 0, "", "", fmt.Errorf("bad line %q", line)
	}
	fields := make([]string, 2)
	for i := range fields {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return id, "", "", fmt.Errorf("bad line %q", line)
		}
		fields[i], _ = strconv.Unquote(q)
		rest = strings.TrimPrefix(rest[len(q):], " ")
	}
	return id, fields[0], fields[1], nil
}

// helper is one running helper process as the caller sees it.
type helper struct {
	requests *os.File   // our end of its request pipe
	sendMu   sync.Mutex // one request line at a time
	mu       sync.Mutex
	waiting  map[uint64]*pending // writes sent and not answered yet
	ended    chan struct{}       // closed when its answer pipe is at EOF
	pid      int
}

// pending is a write sent to the helper. Its answer goes to answer (room
// for one: the reader never blocks), or to the kernel log once the writer
// has stopped waiting (abandoned).
type pending struct {
	file, value string
	answer      chan string
	abandoned   bool
}

// OutlivesCaller: the helper process finishes the write after we exit.
func (*Writer) OutlivesCaller() bool { return true }

// Start starts the helper process unless it runs: a caller that knows it
// will write soon starts it early, so that its start overlaps other work.
func (w *Writer) Start() error {
	_, err := w.running()
	return err
}

// running returns the helper, started if need be.
func (w *Writer) running() (*helper, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errors.New("the write helper is closed")
	}
	if w.helper != nil {
		select {
		case <-w.helper.ended:
			w.helper = nil // it died (killed?): a new one takes the next writes
		default:
			return w.helper, nil
		}
	}
	h, err := w.start()
	if err != nil {
		return nil, err
	}
	w.helper = h
	return h, nil
}

func (w *Writer) start() (*helper, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe for the write helper: %w", err)
	}
	ansR, ansW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, fmt.Errorf("pipe for the write helper: %w", err)
	}
	cmd := &exec.Cmd{
		Path:       w.Exe,
		Args:       []string{w.Argv0, Command, w.Root},
		ExtraFiles: []*os.File{reqR, ansW}, // fd 3, fd 4
		// Its own session: no signal to our process group reaches it.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	endStart := trace.Span("exec the write helper")
	err = cmd.Start()
	endStart()
	reqR.Close()
	ansW.Close()
	if err != nil {
		reqW.Close()
		ansR.Close()
		return nil, fmt.Errorf("start the write helper %s: %w", w.Exe, err)
	}
	h := &helper{requests: reqW, waiting: map[uint64]*pending{}, ended: make(chan struct{}), pid: cmd.Process.Pid}
	w.starts++
	go h.readAnswers(ansR, w.Root)
	// Reaped if it ends while we are still here; never waited for.
	go func() { _ = cmd.Wait() }()
	return h, nil
}

// readAnswers hands each answer to its waiter; one that nobody waits for
// any more (the deadline passed) goes to the kernel log, as the helper's
// own would after our exit. At EOF (the helper ended), every waiter gets
// "ended without an answer".
func (h *helper) readAnswers(r *os.File, root string) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		id, answer, took, err := parseLine(sc.Text())
		if err != nil {
			continue
		}
		h.mu.Lock()
		p, ok := h.waiting[id]
		delete(h.waiting, id)
		h.mu.Unlock()
		switch {
		case !ok:
		case p.abandoned:
			trace.Markf("helper answer %d (abandoned): %s", id, answer)
			logLate(root, p.file, p.value, took, decode(answer))
		default:
			trace.Markf("helper answer %d: %s", id, answer)
			p.answer <- answer
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.ended)
	for id, p := range h.waiting {
		delete(h.waiting, id)
		if !p.abandoned {
			p.answer <- ""
		}
	}
}

// Write writes value to file in the helper process and waits for its
// answer until ctx ends; then it returns ctx's error and the helper goes
// on.
func (w *Writer) Write(ctx context.Context, file, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := w.running()
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.nextID++
	id := w.nextID
	w.mu.Unlock()
	p := &pending{file: file, value: value, answer: make(chan string, 1)}
	h.mu.Lock()
	select {
	case <-h.ended:
		h.mu.Unlock()
		return errors.New("the write helper ended without an answer")
	default:
	}
	h.waiting[id] = p
	h.mu.Unlock()
	h.sendMu.Lock()
	trace.Markf("helper request %d: %s > %s", id, value, file)
	_, err = io.WriteString(h.requests, request{ID: id, File: file, Value: value}.line())
	h.sendMu.Unlock()
	if err != nil {
		h.mu.Lock()
		delete(h.waiting, id)
		h.mu.Unlock()
		return fmt.Errorf("send a write to the helper: %w", err)
	}
	select {
	case a := <-p.answer:
		return decode(a)
	case <-ctx.Done():
		h.mu.Lock()
		_, still := h.waiting[id]
		if still {
			p.abandoned = true // read by readAnswers after it takes p out
		}
		h.mu.Unlock()
		if still {
			return ctx.Err() // the helper goes on; its answer goes to the kernel log
		}
		return decode(<-p.answer) // it has just come: the kernel's answer wins
	}
}

// Close closes the request pipe: the helper finishes the writes it has,
// logs the outcome of those nobody waits for, and ends. Writes after Close
// fail.
func (w *Writer) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.helper != nil {
		w.helper.requests.Close()
	}
}

// decode turns the helper's answer ("ok" or "errno N" or "error TEXT")
// back into an error.
func decode(a string) error {
	a = strings.TrimSpace(a)
	switch {
	case a == "ok":
		return nil
	case strings.HasPrefix(a, "errno "):
		n, err := strconv.Atoi(strings.TrimPrefix(a, "errno "))
		if err == nil {
			return unix.Errno(n)
		}
	case strings.HasPrefix(a, "error "):
		return errors.New(strings.TrimPrefix(a, "error "))
	case a == "":
		return errors.New("the write helper ended without an answer")
	}
	return fmt.Errorf("the write helper answered %q", a)
}

func encode(err error) string {
	var e unix.Errno
	switch {
	case errors.As(err, &e):
		return "errno " + strconv.Itoa(int(e))
	case err != nil:
		return "error " + err.Error()
	}
	return "ok"
}

// logLate puts the outcome of a write that finished after the caller's
// deadline into the kernel log: nobody else will see it.
func logLate(root, file, value, took string, err error) {
	log := logging.New(logging.Options{Root: root, Tag: "write"})
	defer log.Close()
	outcome := "ok"
	if err != nil {
		outcome = errno.Words(err)
	}
	line := fmt.Sprintf("write %q to %s finished after %s, after dpm-netconf's deadline: %s", value, file, took, outcome)
	if err != nil {
		log.Errorf("%s", line)
	} else {
		log.Infof("%s", line)
	}
}

// Child is the helper's side: args are Root. It reads requests on fd 3,
// runs each write at once in its own goroutine, and answers on fd 4; an
// answer it cannot give (the caller has gone) goes to the kernel log. At
// the end of the requests it waits for its writes and ends; its exit status
// is 0 when every write worked.
func Child(args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "dpm-netconf %s: want ROOT, got %q\n", Command, args)
		return 2
	}
	root := args[0]
	trace.Mark("helper: Child")
	defer func() { _ = trace.Write(".helper") }()
	// Finish the writes whatever happens to the caller: a stop of its unit,
	// a hang-up of its session. (SIGKILL still ends it: nothing can help
	// that, and systemd sends it only at shutdown.)
	signal.Ignore(syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
	for fd := 3; fd <= 4; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			fmt.Fprintf(os.Stderr, "dpm-netconf %s: no request and answer pipes (fd 3, 4): %v\n", Command, err)
			return 2
		}
	}
	in, out := os.NewFile(3, "requests"), os.NewFile(4, "answers")
	var (
		wg     sync.WaitGroup
		outMu  sync.Mutex
		failed atomic.Bool
	)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		id, file, value, err := parseLine(sc.Text())
		if err != nil {
			// Never from our caller; answered all the same, so that
			// nobody waits for it.
			outMu.Lock()
			_, _ = io.WriteString(out, response{ID: id, Answer: encode(err), Took: "0s"}.line())
			outMu.Unlock()
			continue
		}
		req := request{ID: id, File: file, Value: value}
		trace.Markf("helper: request %d", id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := write(req.File, req.Value)
			took := time.Since(start).Round(time.Millisecond).String()
			trace.Markf("helper: request %d written: %v", req.ID, err)
			outMu.Lock()
			_, werr := io.WriteString(out, response{ID: req.ID, Answer: encode(err), Took: took}.line())
			outMu.Unlock()
			if werr != nil {
				// The caller has gone: the kernel log is the only place
				// this outcome can be seen.
				logLate(root, req.File, req.Value, took, err)
			}
			if err != nil {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		return 1
	}
	return 0
}

func write(file, value string) error {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte(value))
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}
