package vm

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FindHercules looks for SDL Hyperion (Hercules 4 or later): $DPM_HERCULES,
// else hercules on PATH. Debian's hercules 3.13 has only a stub QETH
// device, so an older version is reported as not ready.
func FindHercules() (string, string, error) {
	path := os.Getenv("DPM_HERCULES")
	if path == "" {
		var err error
		if path, err = exec.LookPath("hercules"); err != nil {
			return "", "", ErrNotReady{"no hercules on PATH and DPM_HERCULES unset: build SDL Hyperion 4.x (github.com/SDL-Hercules-390/hyperion) by its own instructions and put its bin/ on PATH"}
		}
	}
	out, _ := exec.Command(path, "--version").CombinedOutput()
	m := regexp.MustCompile(`[Vv]ersion (\d+)\.(\d+)[.\d]*`).FindStringSubmatch(string(out))
	if m == nil {
		return "", "", ErrNotReady{fmt.Sprintf("%s --version printed no version: %.200q", path, out)}
	}
	if major, _ := strconv.Atoi(m[1]); major < 4 {
		return "", "", ErrNotReady{fmt.Sprintf("%s is Hercules %s.%s: its QETH device is a stub; SDL Hyperion 4.x is needed", path, m[1], m[2])}
	}
	return path, strings.TrimPrefix(m[0], "version "), nil
}

// QETH is one emulated OSA-Express (read, write, data devices from Devno).
type QETH struct {
	Devno string // 4 hex digits, e.g. "0600"
	CHPID string // 2 hex digits
}

// HerculesRun is one boot of the guest under Hercules.
type HerculesRun struct {
	Console string        // everything Hercules printed
	Took    time.Duration // Hercules start to the end marker
}

// Action is what the host does to a running guest through Hercules'
// console: when a console line contains When, the Commands are typed into
// Hercules (e.g. "detach 0600"), each once.
type Action struct {
	When     string
	Commands []string
}

// Hercules boots the kernel and initramfs under Hyperion with the QETH
// devices and runs until the guest prints DPMPROBE-END (its scenario
// script ran) or the deadline passes, doing the actions on the way.
// Hercules does not exit when the guest powers off, so it is always killed
// at the end.
func (e *Env) Hercules(ctx context.Context, hercules, initramfs, kernelArgs string, qeths []QETH, consoleLog io.Writer, actions ...Action) (HerculesRun, error) {
	dir, err := os.MkdirTemp(e.tmp, "hercules-")
	if err != nil {
		return HerculesRun{}, err
	}
	st, err := os.Stat(initramfs)
	if err != nil {
		return HerculesRun{}, err
	}
	// Hercules runs in dir: every path it reads must be absolute.
	kernel, err := filepath.EvalSymlinks(filepath.Join(e.KernelDir, "vmlinuz"))
	if err != nil {
		return HerculesRun{}, err
	}
	if kernel, err = filepath.Abs(kernel); err != nil {
		return HerculesRun{}, err
	}
	if initramfs, err = filepath.Abs(initramfs); err != nil {
		return HerculesRun{}, err
	}
	// .ins entries are read relative to the .ins file's folder, and
	// Hercules refuses files (symlinks too) that resolve outside it.
	for name, src := range map[string]string{"vmlinuz": kernel, "initrd": initramfs} {
		b, err := os.ReadFile(src)
		if err != nil {
			return HerculesRun{}, err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return HerculesRun{}, err
		}
	}
	be := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	const initrdAddr = 0x02000000
	files := map[string][]byte{
		// The s390 boot protocol: initrd address and size at 0x10408 and
		// 0x10410, the NUL-terminated parameter line at 0x10480.
		"initrd.addr": be(initrdAddr),
		"initrd.size": be(uint64(st.Size())),
		"parm":        append([]byte(kernelArgs), 0),
		"boot.ins":    []byte(fmt.Sprintf("vmlinuz 0x00000000\ninitrd 0x%08x\ninitrd.addr 0x00010408\ninitrd.size 0x00010410\nparm 0x00010480\n", initrdAddr)),
		"hercules.rc": nil,
	}
	files["hercules.rc"] = []byte("ipl " + filepath.Join(dir, "boot.ins") + "\n")
	var conf strings.Builder
	conf.WriteString("ARCHLVL z/Arch\nCPUMODEL 2964\nMAINSIZE 1024\nNUMCPU 1\nFACILITY ENABLE 129\nOSTAILOR LINUX\nLOGOPT NOTIMESTAMP\n")
	for i, q := range qeths {
		fmt.Fprintf(&conf, "%s.3 QETH ifname dpmtap%d chpid %s\n", q.Devno, i, q.CHPID)
	}
	files["hercules.cnf"] = []byte(conf.String())
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return HerculesRun{}, err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, hercules, "-n", "-f", filepath.Join(dir, "hercules.cnf"))
	cmd.Dir = dir
	// Hercules finds its hercifc helper (which sets up the taps) on PATH.
	cmd.Env = append(os.Environ(), "HERCULES_RC="+filepath.Join(dir, "hercules.rc"),
		"PATH="+filepath.Dir(hercules)+":"+os.Getenv("PATH"))
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	// Hercules reads commands from stdin and shuts down at its end: keep
	// it open (and silent) until the run is over.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return HerculesRun{}, err
	}
	defer stdin.Close()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return HerculesRun{}, err
	}
	var (
		mu    sync.Mutex
		sb    strings.Builder
		ended = make(chan struct{})
		once  sync.Once
	)
	pending := actions
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			// In order: an action waits for its marker after the one before.
			if len(pending) > 0 && strings.Contains(line, pending[0].When) {
				for _, c := range pending[0].Commands {
					fmt.Fprintf(consoleLogOr(consoleLog), "DPMHOST %s\n", c)
					_, _ = io.WriteString(stdin, c+"\n")
				}
				pending = pending[1:]
			}
			mu.Lock()
			sb.WriteString(line + "\n")
			mu.Unlock()
			if consoleLog != nil {
				fmt.Fprintln(consoleLog, line)
			}
			if strings.Contains(line, "DPMPROBE-END") {
				once.Do(func() { close(ended) })
			}
			if strings.Contains(line, "SCLP console interface inactive") {
				once.Do(func() { close(ended) }) // powered off; checked below
			}
		}
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait(); pw.Close() }()
	var runErr error
	select {
	case <-ended:
	case err := <-waited:
		runErr = fmt.Errorf("hercules exited before the guest finished: %v", err)
	case <-ctx.Done():
		runErr = fmt.Errorf("the guest did not finish its scenario: %w", ctx.Err())
	}
	took := time.Since(start)
	cancel() // kills Hercules
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	console := sb.String()
	if runErr == nil && !strings.Contains(console, "DPMPROBE-END") {
		runErr = errors.New("the guest powered off before its scenario's end marker reached the console")
	}
	return HerculesRun{Console: console, Took: took}, runErr
}

func consoleLogOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Steps splits a scripted guest's console into the output of each script
// step (DPMSTEP lines), in order.
func Steps(console string) []string {
	parts := strings.Split(console, "DPMSTEP ")
	if len(parts) <= 1 {
		return nil
	}
	return parts[1:]
}

// ParseRun finds a DPMRUN line in text: exit status and milliseconds.
func ParseRun(text string) (int, float64, error) {
	m := regexp.MustCompile(`DPMRUN exit=(-?\d+) ms=([0-9.]+)`).FindStringSubmatch(text)
	if m == nil {
		return 0, 0, errors.New("no DPMRUN line")
	}
	code, _ := strconv.Atoi(m[1])
	ms, _ := strconv.ParseFloat(m[2], 64)
	return code, ms, nil
}
