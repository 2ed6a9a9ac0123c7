// Package kmod loads the kernel modules a NIC needs, with their
// dependencies from modules.dep, by finit_module(2): early userspace (u-root,
// a minimal initramfs) has no modprobe. The kernel decompresses compressed
// modules where it can; u-root's pkg/kmodule decompresses them where it
// cannot. The dependency order is read here
// from modules.dep, not with kmodule's Prober: its parallel probe marks a
// dependency done for the whole run even when the load failed, and holds a
// lock across loads that other callers then wait on without a deadline.
package kmod

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/errno"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/trace"
)

// Modules each kind of NIC needs, in load order.
var (
	Qeth   = []string{"ccwgroup", "qeth", "qeth_l2"}
	Virtio = []string{"virtio_net"}
)

// Loader loads modules once per name; it is safe for concurrent use, so
// every NIC's worker may ask for the same modules.
type Loader struct {
	// Root is the directory holding lib/modules/<release> ("/" live).
	Root string
	// Release is the kernel release; empty means uname -r, or the only
	// release under Root/lib/modules when Root is not "/".
	Release string
	// FS shows /sys/module, to skip modules that are already live.
	FS sysfs.FS
	// Insmod, when set, replaces finit_module (tests load into a model).
	Insmod func(path string) error

	// mu guards the fields below; it is never held across a load (a
	// finit_module can take seconds): a module being loaded by one worker
	// has a channel in loading that the others wait on.
	mu      sync.Mutex
	tree    *depTree
	treeErr error
	ok      map[string]bool          // module files loaded or found live: only successes are kept
	ours    map[string]bool          // modules our finit_module loaded, by name
	loading map[string]chan struct{} // closed when that load ends
	builtin map[string]bool          // modules.builtin, read once
	noTree  bool                     // no modules.dep: a kernel without loadable modules
}

// Retries of a load that met another loader's (udev's) load of the same
// module: the kernel answers EBUSY or EAGAIN while that one is going.
const (
	concurrentTries = 5
	concurrentWait  = 20 * time.Millisecond
)

// Load loads each module that is not live yet (or built in), with its
// dependencies from modules.dep, deepest first. A module that someone
// else is loading at the same moment (udev's coldplug by modalias) makes
// finit_module wait for it and answer EEXIST: that is success here, but
// not ours. Whether the module's driver is usable is for the caller to
// read in sysfs. It reports the modules among names that this loader
// loaded, in this call or for an earlier caller: which of several workers
// asking at once makes the call is chance, what was loaded for each is not.
// A failure is not remembered: the next call tries again.
func (l *Loader) Load(names ...string) (loaded []string, err error) {
	defer trace.Spanf("load modules %v", names)()
	for _, name := range names {
		// Live first, then ours: a load of ours that made it live in
		// between is then seen (or waited for) by loadedByUs.
		live := l.moduleLive(name)
		if l.loadedByUs(name) {
			loaded = append(loaded, name)
			continue
		}
		if live || l.isBuiltin(name) {
			continue
		}
		files, err := l.files(name)
		if err != nil {
			return loaded, fmt.Errorf("load module %s: %w", name, err)
		}
		for i, file := range files {
			ours, err := l.loadFile(file)
			if err != nil {
				return loaded, fmt.Errorf("load module %s: %w", name, err)
			}
			if ours && i == len(files)-1 {
				loaded = append(loaded, name)
			}
		}
	}
	return loaded, nil
}

// files is what loading name takes, in order: its dependencies' files from
// modules.dep (which lists them so that the last is loaded first), then
// its own.
func (l *Loader) files(name string) ([]string, error) {
	tree, err := l.depTree()
	if err != nil {
		return nil, err
	}
	e, ok := tree.entries[name]
	if !ok {
		return nil, fmt.Errorf("not in %s", tree.file)
	}
	files := make([]string, 0, len(e.deps)+1)
	for i := len(e.deps) - 1; i >= 0; i-- {
		files = append(files, e.deps[i])
	}
	return append(files, e.file), nil
}

// loadFile loads one module file unless it is live, or waits for the load
// another of our callers is making of it. ours: our finit_module loaded it.
func (l *Loader) loadFile(file string) (ours bool, err error) {
	name := moduleName(file)
	for {
		l.mu.Lock()
		if l.ok[file] {
			ours = l.ours[name]
			l.mu.Unlock()
			return ours, nil
		}
		if ch := l.loading[file]; ch != nil {
			l.mu.Unlock()
			<-ch
			continue // it may have failed: then it is ours to try
		}
		ch := make(chan struct{})
		if l.loading == nil {
			l.loading, l.ok, l.ours = map[string]chan struct{}{}, map[string]bool{}, map[string]bool{}
		}
		l.loading[file] = ch
		l.mu.Unlock()

		ours, err = l.insmodRetrying(name, file)

		l.mu.Lock()
		delete(l.loading, file)
		if err == nil {
			l.ok[file] = true
			l.ours[name] = ours
		}
		close(ch)
		l.mu.Unlock()
		return ours, err
	}
}

// insmodRetrying loads a file that is not live. EEXIST: someone else
// loaded it (the kernel waited for that load to finish). EBUSY and EAGAIN:
// another load of it is going or has just failed; its state is read again
// and the load retried.
func (l *Loader) insmodRetrying(name, file string) (ours bool, err error) {
	for try := 1; ; try++ {
		if l.moduleLive(name) {
			return false, nil
		}
		err = l.insmod(file)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EEXIST):
			return false, nil
		case (errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN)) && try < concurrentTries:
			time.Sleep(concurrentWait << (try - 1))
		case errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN):
			return false, fmt.Errorf("finit_module %s: %w: another load of it at the same moment (udev's?) kept it busy %d times; see the kernel log",
				filepath.Base(file), errno.Err(err), try)
		default:
			return false, fmt.Errorf("finit_module %s: %w", filepath.Base(file), errno.Err(err))
		}
	}
}

func (l *Loader) insmod(file string) error {
	if l.Insmod != nil {
		return l.Insmod(file)
	}
	return finit(file)
}

// loadedByUs tells whether this loader loaded the module (in this call or
// an earlier one): every caller that needs it then reports it, whichever
// of them happened to make the finit_module call.
// A load of it that another caller is making is waited for: the module
// may be live in sysfs before that caller has noted it as ours.
func (l *Loader) loadedByUs(name string) bool {
	for {
		l.mu.Lock()
		ours := l.ours[name]
		var going chan struct{}
		for file, ch := range l.loading {
			if moduleName(file) == name {
				going = ch
			}
		}
		l.mu.Unlock()
		if ours || going == nil {
			return ours
		}
		<-going
	}
}

// depTree is modules.dep, read once: for each module name, its file and
// the files of everything it needs.
type depTree struct {
	file    string
	entries map[string]depEntry
}

type depEntry struct {
	file string
	deps []string
}

func (l *Loader) depTree() (*depTree, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tree == nil && l.treeErr == nil {
		l.tree, l.treeErr = l.readDepTree()
	}
	return l.tree, l.treeErr
}

func (l *Loader) readDepTree() (*depTree, error) {
	release, err := l.release()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(l.Root, "lib/modules", release)
	t := &depTree{file: filepath.Join(dir, "modules.dep"), entries: map[string]depEntry{}}
	b, err := os.ReadFile(t.file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.file, err)
	}
	abs := func(f string) string {
		if filepath.IsAbs(f) {
			return filepath.Join(l.Root, f)
		}
		return filepath.Join(dir, f)
	}
	for _, line := range strings.Split(string(b), "\n") {
		mod, deps, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		e := depEntry{file: abs(strings.TrimSpace(mod))}
		for _, d := range strings.Fields(deps) {
			e.deps = append(e.deps, abs(d))
		}
		t.entries[moduleName(mod)] = e
	}
	return t, nil
}

// Live reports whether a module can be relied on: it finished its init
// (/sys/module/<m>/initstate reads "live"), or it is built into the
// kernel (modules.builtin lists it, or the kernel has no module tree at
// all). /sys/module/<m> alone is not enough: it appears when loading
// starts, before initstate does, and built-in modules often have none.
func (l *Loader) Live(name string) bool {
	// Without a module tree nothing can be loaded: what the kernel lacks,
	// its own answers will say.
	return l.moduleLive(name) || l.isBuiltin(name) || l.noModuleTree()
}

func (l *Loader) isBuiltin(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.readBuiltin()
	return l.builtin[name]
}

func (l *Loader) noModuleTree() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.readBuiltin()
	return l.noTree
}

// moduleLive: /sys/module/<name>/initstate reads "live".
func (l *Loader) moduleLive(name string) bool {
	if l.FS == nil {
		return false
	}
	st, err := sysfs.ReadString(l.FS, "/sys/module/"+name+"/initstate")
	return err == nil && st == "live"
}

// readBuiltin reads modules.builtin once (l.mu held). A kernel without a module tree
// (no modules.dep: a monolithic kernel, as u-root images often boot) has
// everything it has built in.
func (l *Loader) readBuiltin() {
	if l.builtin != nil {
		return
	}
	l.builtin = map[string]bool{}
	release, err := l.release()
	if err != nil {
		l.noTree = true
		return
	}
	dir := filepath.Join(l.Root, "lib/modules", release)
	if _, err := os.Stat(filepath.Join(dir, "modules.dep")); err != nil {
		l.noTree = true
	}
	b, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return
	}
	for _, line := range strings.Fields(string(b)) {
		l.builtin[moduleName(line)] = true
	}
}

// moduleName is the module a file path names: "kernel/net/802/stp.ko.xz"
// is stp, "qeth-l2.ko" is qeth_l2.
func moduleName(file string) string {
	base := filepath.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// The system calls of a load; tests replace them.
var (
	finitModule = unix.FinitModule
	initModule  = unix.InitModule
)

// finit loads a module file with finit_module(2). A compressed one
// (Debian 13's kernel ships .ko.xz) goes with MODULE_INIT_COMPRESSED_FILE,
// so the kernel decompresses it (Linux 5.17+ built with
// CONFIG_MODULE_DECOMPRESS; kernel/module/decompress.c): under QEMU TCG
// that took dpm-netconf's boot-time run for three virtio NICs from 4.3 s
// (xz decoded in Go) to 0.46 s. A kernel that cannot (EINVAL: the flag is unknown, before 5.17, or
// the format is not the one it was built for; EOPNOTSUPP: built without
// it) gets the module decompressed here and loaded by init_module(2).
func finit(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	compressed := !strings.HasSuffix(file, ".ko")
	flags := 0
	if compressed {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	err = finitModule(int(f.Fd()), "", flags)
	if !compressed || !(errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r, err := kmodule.CompressionReader(f)
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	image, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	return initModule(image, "")
}

func (l *Loader) release() (string, error) {
	if l.Release != "" {
		return l.Release, nil
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	if l.Root == "" || l.Root == "/" {
		return rel, nil
	}
	// A --root tree holds another kernel's modules than the one running.
	dir := filepath.Join(l.Root, "lib/modules")
	if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
		return rel, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("no kernel modules: %w", err)
	}
	var rels []string
	for _, e := range entries {
		if e.IsDir() {
			rels = append(rels, e.Name())
		}
	}
	if len(rels) != 1 {
		return "", fmt.Errorf("%s holds %d kernel releases (%s), none is %s", dir, len(rels), strings.Join(rels, ", "), rel)
	}
	return rels[0], nil
}
