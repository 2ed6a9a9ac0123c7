// Package kmod loads the kernel modules a NIC needs, with their
// dependencies from modules.dep, by finit_module(2): early userspace (u-root,
// a minimal initramfs) has no modprobe. It uses u-root's pkg/kmodule.
package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/errno"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
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

	mu      sync.Mutex
	prober  *kmodule.Prober
	done    map[string]error
	errMu   sync.Mutex
	errs    []error
	fresh   map[string]bool // modules our own finit_module loaded
	builtin map[string]bool // modules.builtin, read once
	noTree  bool            // no modules.dep: a kernel without loadable modules
}

// Load loads each module that is not live yet (or built in), with its
// dependencies from modules.dep (u-root's kmodule resolves them). A module
// that someone else is loading at the same moment (udev's coldplug by
// modalias) makes finit_module wait for it and answer EEXIST: that is
// success here, but not ours. Whether the module's driver is usable is for
// the caller to read in sysfs. It reports the modules it loaded itself.
func (l *Loader) Load(names ...string) (loaded []string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		l.done = map[string]error{}
	}
	for _, name := range names {
		if err, ok := l.done[name]; ok {
			if err != nil {
				return loaded, err
			}
			continue
		}
		if l.loadedLocked(name) {
			l.done[name] = nil
			continue
		}
		err := l.probe(name)
		l.done[name] = err
		if err != nil {
			return loaded, err
		}
		if l.fresh[name] {
			loaded = append(loaded, name)
		}
	}
	return loaded, nil
}

// Live reports whether a module can be relied on: it finished its init
// (/sys/module/<m>/initstate reads "live"), or it is built into the
// kernel (modules.builtin lists it, or the kernel has no module tree at
// all). /sys/module/<m> alone is not enough: it appears when loading
// starts, before initstate does, and built-in modules often have none.
func (l *Loader) Live(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.liveLocked(name)
}

func (l *Loader) liveLocked(name string) bool {
	// Without a module tree nothing can be loaded: what the kernel lacks,
	// its own answers will say.
	return l.loadedLocked(name) || l.noTree
}

// loadedLocked: live, or listed as built in.
func (l *Loader) loadedLocked(name string) bool {
	if l.FS != nil {
		if st, err := sysfs.ReadString(l.FS, "/sys/module/"+name+"/initstate"); err == nil {
			return st == "live"
		}
	}
	l.readBuiltin()
	return l.builtin[name]
}

// readBuiltin reads modules.builtin once. A kernel without a module tree
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

func (l *Loader) probe(name string) error {
	if l.prober == nil {
		release, err := l.release()
		if err != nil {
			return fmt.Errorf("load module %s: %w", name, err)
		}
		// kmodule resolves the dependencies and their order; the load itself
		// is ours, so that its errors reach the caller (kmodule's dry-run
		// hook is where it hands over each file, deepest dependency first).
		opts := kmodule.ProbeOpts{RootDir: l.Root, KVer: release, IgnoreProcMods: true, DryRunCB: l.insmod}
		p, err := kmodule.NewProber(opts)
		if err != nil {
			return fmt.Errorf("load module %s: read %s: %w", name, l.depFile(release), err)
		}
		l.prober = p
	}
	l.errMu.Lock()
	l.errs = nil
	l.errMu.Unlock()
	if err := l.prober.Probe(name, ""); err != nil {
		return fmt.Errorf("load module %s (dependencies from modules.dep): %w", name, err)
	}
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if len(l.errs) > 0 {
		return fmt.Errorf("load module %s: %w", name, errors.Join(l.errs...))
	}
	return nil
}

// insmod loads one module file; kmodule calls it for dependencies in
// parallel.
func (l *Loader) insmod(file string) {
	var err error
	if l.Insmod != nil {
		err = l.Insmod(file)
	} else {
		err = finit(file)
	}
	l.errMu.Lock()
	defer l.errMu.Unlock()
	switch {
	case err == nil:
		if l.fresh == nil {
			l.fresh = map[string]bool{}
		}
		l.fresh[moduleName(file)] = true
	case errors.Is(err, unix.EEXIST):
		// Loaded by someone else meanwhile (the kernel waited for it).
	case errors.Is(err, unix.EBUSY):
		l.errs = append(l.errs, fmt.Errorf("finit_module %s: %s: another load of it at the same moment (udev's?) failed; see the kernel log", filepath.Base(file), errno.Words(err)))
	default:
		l.errs = append(l.errs, fmt.Errorf("finit_module %s: %s", filepath.Base(file), errno.Words(err)))
	}
}

func finit(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return kmodule.FileInit(f, "", 0)
}

func (l *Loader) depFile(release string) string {
	return filepath.Join(l.Root, "lib/modules", release, "modules.dep")
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
