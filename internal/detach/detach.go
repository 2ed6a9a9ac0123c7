// Package detach runs a kernel write that can block for long (a qeth
// online: seconds on a real OSA, more when the adapter's IDX activation is
// slow) in a helper process that outlives dpm-netconf.
//
// Why a process and not a goroutine: ccw_device_set_online waits
// uninterruptibly, so a goroutine stuck in write(2) would hold our exit
// back, and when the process does exit, the kernel interrupts qeth's
// interruptible waits inside the online and aborts it. A child in its own
// session is neither waited for nor killed by our exit: the caller (dracut
// hook, unit, uinit) regains control at the deadline and the online
// finishes. The child reports its outcome over a pipe while we wait, and
// to the kernel log if we have gone.
package detach

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/errno"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/logging"
)

// Command is the hidden subcommand the helper process runs.
const Command = "__write"

// Writer starts one helper process per write.
type Writer struct {
	// Exe is the binary to run (os.Executable()); Argv0 its name for
	// busybox-style dispatch (u-root's bb).
	Exe, Argv0 string
	// Root is passed on for the helper's kernel log (<Root>/dev/kmsg).
	Root string
}

// OutlivesCaller: the helper process finishes the write after we exit.
func (Writer) OutlivesCaller() bool { return true }

// Write writes value to file in a helper process and waits for its answer
// until ctx ends; then it returns ctx's error and the helper goes on.
func (w Writer) Write(ctx context.Context, file, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pipe for the write helper: %w", err)
	}
	defer r.Close()
	cmd := &exec.Cmd{
		Path:       w.Exe,
		Args:       []string{w.Argv0, Command, w.Root, file, value},
		ExtraFiles: []*os.File{pw}, // fd 3
		// Its own session: no signal to our process group reaches it.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return fmt.Errorf("start the write helper %s: %w", w.Exe, err)
	}
	answer := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, 256))
		answer <- string(b)
	}()
	select {
	case a := <-answer:
		_ = cmd.Wait()
		return decode(a)
	case <-ctx.Done():
		// Reap it if it ends while we are still here; never wait for it.
		go func() { _ = cmd.Wait() }()
		return ctx.Err()
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

// Child is the helper's side: args are Root, file, value. It writes,
// answers on fd 3, and logs the outcome to the kernel log when nobody
// reads the answer any more. Its exit status is 0 when the write worked.
func Child(args []string) int {
	if len(args) != 3 {
		fmt.Fprintf(os.Stderr, "dpm-netconf %s: want ROOT FILE VALUE, got %q\n", Command, args)
		return 2
	}
	root, file, value := args[0], args[1], args[2]
	// Finish the write whatever happens to the caller: a stop of its unit,
	// a hang-up of its session. (SIGKILL still ends it: nothing can help
	// that, and systemd sends it only at shutdown.)
	signal.Ignore(syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
	start := time.Now()
	err := write(file, value)
	answer := "ok"
	var e unix.Errno
	switch {
	case errors.As(err, &e):
		answer = "errno " + strconv.Itoa(int(e))
	case err != nil:
		answer = "error " + err.Error()
	}
	out := os.NewFile(3, "answer")
	_, werr := io.WriteString(out, answer)
	if werr != nil {
		// The caller's deadline has passed and it has gone: the kernel log
		// is the only place this outcome can be seen.
		log := logging.New(logging.Options{Root: root, Tag: "write"})
		outcome := "ok"
		if err != nil {
			outcome = errno.Words(err)
		}
		line := fmt.Sprintf("write %q to %s finished after %s, after dpm-netconf's deadline: %s", value, file, time.Since(start).Round(time.Millisecond), outcome)
		if err != nil {
			log.Errorf("%s", line)
		} else {
			log.Infof("%s", line)
		}
	}
	if err != nil {
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
